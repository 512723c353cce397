// The dashboard shell: header (conference, pages, connection, token), a client-side router
// over real paths (the gateway answers every unknown path with index.html) and the live event
// streams every page shares.
import './styles.css';
import { loadToken, setToken, token } from './auth';
import { onConnectionState, request, subscriptions } from './client';
import { h } from './dom';
import { startLive } from './live';
import { ConferencesQuery } from './operations';
import type { ConferencesQuery as Conferences } from './gql/graphql';
import { salesPage } from './pages/sales';
import { feedPage } from './pages/feed';
import { sponsorsPage } from './pages/sponsors';
import { buyPage } from './pages/buy';

export type Conference = Conferences['conferences']['nodes'][number];

export interface PageContext {
  conference: Conference;
  /** Whether a token is set: the organiser's pages need one, buying does not. */
  signedIn: boolean;
}

/** A page renders into `root` and returns how to stop (unsubscribe, timers). */
export type Page = (root: HTMLElement, context: PageContext) => () => void;

const PAGES: { path: string; title: string; page: Page }[] = [
  { path: '/', title: 'Live sales', page: salesPage },
  { path: '/feed', title: 'Event feed', page: feedPage },
  { path: '/sponsors', title: 'Sponsors', page: sponsorsPage },
  { path: '/buy', title: 'Buy a ticket', page: buyPage },
];

const CONFERENCE_KEY = 'conftools.conference';

let conferences: Conference[] = [];
let stopPage: () => void = () => {};

const app = document.getElementById('app') as HTMLElement;
const nav = h('nav', { class: 'pages' });
const status = h('span', { class: 'connection', 'data-testid': 'connection', 'data-state': 'connecting' }, 'connecting');
const conferencePicker = h('select', { class: 'conference', 'aria-label': 'Conference' });
const tokenField = h('form', { class: 'token' });
const main = h('main');

function renderTokenField() {
  tokenField.replaceChildren();
  if (token()) {
    tokenField.append(
      h('span', { class: 'muted' }, 'Organiser'),
      h('button', { type: 'button', class: 'link', onclick: () => { setToken(null); location.reload(); } }, 'sign out'),
    );
    return;
  }
  const input = h('input', {
    type: 'password',
    name: 'token',
    placeholder: 'Paste the admin token',
    'aria-label': 'Admin token',
    autocomplete: 'off',
  });
  tokenField.onsubmit = (event) => {
    event.preventDefault();
    setToken(input.value);
    location.reload();
  };
  tokenField.append(input, h('button', { type: 'submit' }, 'Use token'));
}

function currentPage() {
  return PAGES.find((p) => p.path === location.pathname) ?? PAGES[0];
}

function navigate(path: string) {
  if (path !== location.pathname) history.pushState(null, '', path);
  render();
}

function render() {
  const active = currentPage();
  document.title = `${active.title} · Conference Tools`;
  nav.replaceChildren(
    ...PAGES.map((p) =>
      h(
        'a',
        {
          href: p.path,
          class: p === active ? 'active' : null,
          onclick: (event: Event) => {
            event.preventDefault();
            navigate(p.path);
          },
        },
        p.title,
      ),
    ),
  );
  stopPage();
  main.replaceChildren();
  const conference = conferences.find((c) => c.id === conferencePicker.value) ?? conferences[0];
  if (!conference) {
    main.append(
      h('section', { class: 'empty' },
        h('h2', {}, 'No conference yet'),
        h('p', {}, 'Create one through the gateway (createConference), or start with ', h('code', {}, 'conftools up --demo'), ' for a demo conference.'),
      ),
    );
    stopPage = () => {};
    return;
  }
  const root = h('section', { class: 'page', 'data-page': active.path });
  main.append(root);
  stopPage = active.page(root, { conference, signedIn: token() !== null });
}

async function start() {
  loadToken();
  renderTokenField();
  app.append(
    h('header', {},
      h('div', { class: 'brand' }, h('strong', {}, 'Conference Tools'), conferencePicker),
      nav,
      h('div', { class: 'right' }, status, tokenField),
    ),
    main,
  );
  onConnectionState((state) => {
    status.dataset.state = state;
    status.textContent = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…' }[state];
    status.title =
      state === 'live' ? 'Subscribed to the gateway: events arrive as they happen' : 'Waiting for the gateway; the page resumes where it left off';
  });
  window.addEventListener('popstate', render);
  conferencePicker.addEventListener('change', () => {
    localStorage.setItem(CONFERENCE_KEY, conferencePicker.value);
    render();
  });

  subscriptions();
  try {
    conferences = (await request(ConferencesQuery, {})).conferences.nodes;
  } catch (error) {
    main.append(h('p', { class: 'error' }, `Cannot load conferences: ${(error as Error).message}`));
    return;
  }
  const remembered = localStorage.getItem(CONFERENCE_KEY);
  conferencePicker.replaceChildren(...conferences.map((c) => h('option', { value: c.id }, c.name)));
  conferencePicker.hidden = conferences.length < 2;
  if (remembered && conferences.some((c) => c.id === remembered)) conferencePicker.value = remembered;
  // The organiser's event logs need a token; a buyer without one still gets the purchase form.
  if (token()) void startLive();
  render();
}

void start();
