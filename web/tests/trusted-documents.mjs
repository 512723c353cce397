// The dashboard against a gateway that runs only trusted documents (`--trusted-documents-only`
// with the manifest the build wrote, dist/trusted-documents.json): every page still loads its
// data, a purchase arrives live, and every document the pages sent, over HTTP and over the
// WebSocket, is byte for byte one of the manifest's. An ad-hoc query and an ad-hoc
// subscription are refused with PERSISTED_QUERY_NOT_IN_LIST; a trusted document sent by id runs.
// Started by tests/dashboard/ with the demo seeded (the launcher's merged manifest trusts the
// demo's operations too).
//
// Environment: DASHBOARD_URL (the gateway's origin), ADMIN_TOKEN, SCREENSHOT_DIR, CHROMIUM.
import { check, launch, logger, open as openTab, required, screenshots } from './browser.mjs';

const base = required('DASHBOARD_URL').replace(/\/$/, '');
const adminToken = required('ADMIN_TOKEN');
const log = logger('trusted documents test');
const shot = screenshots(required('SCREENSHOT_DIR'), log);

// The manifest as the gateway serves it beside the page: the build's own file.
const manifestResponse = await fetch(`${base}/trusted-documents.json`);
check(manifestResponse.ok, `GET /trusted-documents.json answered ${manifestResponse.status}`);
const manifest = await manifestResponse.json();
const trusted = new Map(Object.entries(manifest).map(([id, body]) => [body, id]));
check(trusted.size > 0, 'the manifest is empty');

// Every document the pages send: HTTP bodies, and graphql-ws `subscribe` messages.
const sent = { http: [], ws: [] };
function watch(page) {
  page.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/graphql') {
      sent.http.push(JSON.parse(request.postData() ?? '{}').query);
    }
  });
  page.on('websocket', (socket) => {
    socket.on('framesent', ({ payload }) => {
      const message = JSON.parse(typeof payload === 'string' ? payload : payload.toString());
      if (message.type === 'subscribe') sent.ws.push(message.payload.query);
    });
  });
}

const browser = await launch();
const { context } = browser;
for (const page of context.pages()) watch(page);
context.on('page', watch);
const open = (path) => openTab(context, `${base}${path}`, log);

try {
  const sales = await open(`/?token=${encodeURIComponent(adminToken)}`);
  await sales.locator('g[data-ticket-type="Regular"]').waitFor();
  await sales.locator('[data-testid="revenue"] strong').waitFor();
  await shot(sales, 'trusted-sales');
  const feed = await open('/feed');
  await feed.locator('ol.feed li').first().waitFor();
  const sponsors = await open('/sponsors');
  await sponsors.locator('article[data-sponsor="Crab Cloud"]').waitFor();
  await shot(sponsors, 'trusted-sponsors');

  // A purchase on the public form reaches the other tabs through their subscriptions.
  const buy = await open('/buy');
  const soldBefore = Number(await sales.locator('g[data-ticket-type="Regular"]').getAttribute('data-sold'));
  const regular = buy.locator('select[name="ticketType"] option', { hasText: 'Regular' });
  await regular.waitFor({ state: 'attached' });
  await buy.selectOption('select[name="ticketType"]', await regular.getAttribute('value'));
  await buy.fill('input[name="quantity"]', '1');
  await buy.fill('input[name="name"]', 'Trusted Buyer');
  await buy.fill('input[name="email"]', 'trusted@example.org');
  await buy.click('button[type="submit"]');
  await buy.locator('[data-testid="purchase-outcome"] .success').waitFor();
  await buy.locator('[data-testid="own-purchase"]', { hasText: 'Trusted Buyer' }).waitFor({ timeout: 5_000 });
  await sales.waitForFunction(
    ({ before }) => Number(document.querySelector('g[data-ticket-type="Regular"]')?.getAttribute('data-sold')) === before + 1,
    { before: soldBefore },
    { timeout: 5_000, polling: 20 },
  );
  await feed
    .locator('ol.feed li[data-type="TicketPurchaseCreated"]', { hasText: 'Trusted Buyer' })
    .waitFor({ timeout: 5_000 });
  await shot(feed, 'trusted-feed');

  // What the pages sent is the manifest's text, not merely equivalent to it: the gateway
  // compares bytes.
  check(sent.http.length > 0, 'no GraphQL request over HTTP was seen');
  check(sent.ws.length >= 2, `${sent.ws.length} subscriptions were seen, expected both event streams`);
  for (const [transport, documents] of Object.entries(sent)) {
    for (const document of documents) {
      check(trusted.has(document), `the page sent over ${transport} a document not in the manifest: ${document}`);
    }
  }
  const distinct = new Set([...sent.http, ...sent.ws]);
  log(`${sent.http.length} HTTP requests and ${sent.ws.length} subscriptions, ${distinct.size} distinct documents, all in the manifest`);

  // From the page, as a script injected into it would try: ad-hoc documents are refused, over
  // HTTP and over the WebSocket; a trusted one runs by its id alone.
  const probes = await buy.evaluate(
    async ({ token, conferencesId }) => {
      const post = async (body) => {
        const response = await fetch('/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(body),
        });
        return response.json();
      };
      const adHoc = await post({ query: '{ conferences(first: 1) { nodes { id name } } }' });
      const byId = await post({ documentId: conferencesId, variables: {} });
      const subscription = await new Promise((resolve, reject) => {
        const url = new URL('/graphql', window.location.href);
        url.protocol = 'ws:';
        const socket = new WebSocket(url, 'graphql-transport-ws');
        const timer = setTimeout(() => reject(new Error('no answer to the ad-hoc subscription')), 5_000);
        socket.onopen = () => socket.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${token}` } }));
        socket.onmessage = ({ data }) => {
          const message = JSON.parse(data);
          if (message.type === 'connection_ack') {
            socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { ticketEvents { __typename } }' } }));
          } else if (message.id === '1') {
            clearTimeout(timer);
            socket.close();
            resolve(message);
          }
        };
        socket.onclose = ({ code, reason }) => reject(new Error(`socket closed ${code} ${reason}`));
      });
      return { adHoc, byId, subscription };
    },
    { token: adminToken, conferencesId: trusted.get([...trusted.keys()].find((body) => body.startsWith('query Conferences '))) },
  );
  check(
    probes.adHoc.errors?.[0]?.extensions?.code === 'PERSISTED_QUERY_NOT_IN_LIST' && probes.adHoc.data == null,
    `an ad-hoc query over HTTP got ${JSON.stringify(probes.adHoc)}`,
  );
  check(
    probes.subscription.type === 'error' && probes.subscription.payload?.[0]?.extensions?.code === 'PERSISTED_QUERY_NOT_IN_LIST',
    `an ad-hoc subscription got ${JSON.stringify(probes.subscription)}`,
  );
  check(Array.isArray(probes.byId.data?.conferences?.nodes), `a trusted document by id got ${JSON.stringify(probes.byId)}`);
  log('ad-hoc query and subscription refused with PERSISTED_QUERY_NOT_IN_LIST; a trusted document ran by id');

  console.log('result ok');
} finally {
  await browser.close();
}
