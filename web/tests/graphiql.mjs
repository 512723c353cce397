// GraphiQL as the gateway serves it to a browser at GET /graphql, with the network cut off: every
// request to a host other than the gateway is aborted, as on a machine without internet. The
// page must need none (its scripts, styles, fonts and Monaco's workers are web/'s build, served
// by the gateway), render its editors without a Content-Security-Policy violation, show the
// schema in the docs explorer, run a query with the token set in the header editor, and run a
// subscription over the gateway's WebSocket with that token.
// Started by tests/dashboard/ with the demo seeded.
//
// Environment: DASHBOARD_URL (the gateway's origin), ADMIN_TOKEN, SCREENSHOT_DIR, CHROMIUM.
import { check, launch, logger, required, screenshots } from './browser.mjs';

const base = required('DASHBOARD_URL').replace(/\/$/, '');
const adminToken = required('ADMIN_TOKEN');
const log = logger('graphiql test');
const shot = screenshots(required('SCREENSHOT_DIR'), log);
const origin = new URL(base).origin;

/** Replaces the text of a Monaco editor with `text`, dropping the brackets it auto-closed. */
async function replaceText(editor, text) {
  const page = editor.page();
  await editor.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.insertText(text);
  await page.keyboard.press('Shift+ControlOrMeta+End');
  await page.keyboard.press('Delete');
  await page.keyboard.press('Escape'); // a suggestion list, if one opened
  const shown = () => editor.locator('.view-lines').innerText().then((t) => t.replace(/\s+/g, ' ').trim());
  for (let tries = 0; (await shown()) !== text; tries++) {
    check(tries < 50, `the editor shows ${JSON.stringify(await shown())}, not ${JSON.stringify(text)}`);
    await page.waitForTimeout(100);
  }
}

const browser = await launch();
const { context } = browser;

const aborted = [];
const problems = [];
const queries = [];
try {
  // The whole browser context: Monaco's workers request their scripts through it too.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin || url.startsWith('data:') || url.startsWith('blob:')) {
      return route.continue();
    }
    aborted.push(url);
    return route.abort('internetdisconnected');
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() === 'error' || /Content Security Policy/i.test(text)) problems.push(`console: ${text}`);
  });
  const sockets = [];
  page.on('websocket', (socket) => sockets.push(socket.url()));
  page.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/graphql') {
      const body = JSON.parse(request.postData() ?? '{}');
      queries.push({ query: body.query ?? '', authorization: request.headers().authorization });
    }
  });

  const response = await page.goto(`${base}/graphql`);
  check(response?.ok(), `GET /graphql answered ${response?.status()}`);
  check(/text\/html/.test(response.headers()['content-type'] ?? ''), 'GET /graphql is not a page');
  await page.locator('.graphiql-container').waitFor({ timeout: 20_000 });
  await page.locator('.graphiql-query-editor .monaco-editor').waitFor({ timeout: 20_000 });
  log('rendered');

  // The docs explorer, from the schema the page introspected through the gateway.
  await page.locator('button[aria-label="Show Documentation Explorer"]').click();
  await page.locator('.graphiql-doc-explorer-root-type', { hasText: 'Query' }).waitFor({ timeout: 15_000 });
  await page.locator('[data-cy="doc-explorer-input"]').fill('Conference');
  await page.locator('[data-cy="doc-explorer-option"]').filter({ hasText: /^Conference$/ }).click();
  await page.locator('.graphiql-doc-explorer-title', { hasText: /^Conference$/ }).waitFor({ timeout: 10_000 });
  log('the docs explorer shows the Conference type');
  await shot(page, 'graphiql-docs');

  // The token in the header editor, a query in the query editor, and run.
  await page.getByRole('tab', { name: 'Headers' }).or(page.getByRole('button', { name: 'Headers' })).first().click();
  const headerEditor = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .monaco-editor').last();
  await replaceText(headerEditor, JSON.stringify({ Authorization: `Bearer ${adminToken}` }));
  await replaceText(page.locator('.graphiql-query-editor .monaco-editor'), '{ conferences(first: 1) { nodes { name } } }');
  const before = queries.length;
  await page.locator('.graphiql-execute-button').click();
  const result = page.locator('.graphiql-response .monaco-editor .view-lines');
  await result.filter({ hasText: 'conferences' }).waitFor({ timeout: 15_000 });
  const text = (await result.innerText()).replace(/\u00a0/g, ' ');
  check(text.includes('"name"') && !text.includes('"errors"'), `the query's result: ${text}`);
  const sent = queries.slice(before).find((q) => q.query.includes('conferences(first: 1)'));
  check(sent, 'the query was not POSTed to /graphql');
  check(sent.authorization === `Bearer ${adminToken}`, `the query went with Authorization ${JSON.stringify(sent.authorization)}`);
  log('the query ran with the header editor\'s token:', text.replace(/\s+/g, ' '));
  await shot(page, 'graphiql-query');

  // A subscription over graphql-ws on the same path, the header editor's token as the socket's
  // credential (ticketEvents needs events:read): from the first event on, the log is replayed.
  const first = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ query: '{ ticketEvents(first: 1) { edges { cursor } } }' }),
  }).then((r) => r.json());
  const cursor = first.data?.ticketEvents?.edges?.[0]?.cursor;
  check(cursor, `no ticket event to start from: ${JSON.stringify(first)}`);
  await replaceText(
    page.locator('.graphiql-query-editor .monaco-editor'),
    `subscription { ticketEvents(after: ${JSON.stringify(cursor)}) { __typename id } }`,
  );
  await page.locator('.graphiql-execute-button').click();
  await result.filter({ hasText: 'ticketEvents' }).waitFor({ timeout: 15_000 });
  const event = (await result.innerText()).replace(/\u00a0/g, ' ');
  check(event.includes('"id"') && !event.includes('"errors"'), `the subscription's event: ${event}`);
  check(
    sockets.length > 0 && sockets.every((url) => new URL(url).host === new URL(base).host && new URL(url).pathname === '/graphql'),
    `the subscription's sockets: ${sockets.join(', ')}`,
  );
  check(!queries.some((q) => q.query.startsWith('subscription')), 'the subscription was POSTed instead');
  log('a subscription event arrived over', sockets[0]);
  await shot(page, 'graphiql-subscription');

  check(aborted.length === 0, `GraphiQL requested ${aborted.length} resources from other hosts: ${aborted.join(', ')}`);
  check(problems.length === 0, `the page reported:\n${problems.join('\n')}`);
  console.log('result ok');
} catch (error) {
  // What the page showed and said when it failed.
  for (const page of context.pages()) await shot(page, 'graphiql-failed').catch(() => {});
  if (problems.length) log(`the page reported:\n${problems.join('\n')}`);
  log('sent over HTTP:', queries.map((q) => q.query.slice(0, 80)));
  throw error;
} finally {
  await browser.close();
}
