// The dashboard in a real browser (Debian's Chromium driven by playwright-core) against a real
// system: ticketing, the CRM and the gateway serving web/dist, started by the Rust test
// tests/dashboard/ with the demo seeded. The Rust side owns the gateway, so stopping and
// restarting it is asked for on stdout (`control stop-gateway`) and acknowledged on stdin.
//
// Environment: DASHBOARD_URL (the gateway's origin), ADMIN_TOKEN, TICKETING_URL (ticketing's own
// /graphql, for buying while the gateway is down), SCREENSHOT_DIR, CHROMIUM (default
// /usr/bin/chromium). Helpers shared with the other browser tests are in browser.mjs.
import { createInterface } from 'node:readline';
import { check, launch, logger, open as openTab, required, screenshots } from './browser.mjs';

const base = required('DASHBOARD_URL').replace(/\/$/, '');
const adminToken = required('ADMIN_TOKEN');
const ticketingUrl = required('TICKETING_URL');
const log = logger('dashboard test');
const shot = screenshots(required('SCREENSHOT_DIR'), log);

// Control lines to the Rust test, answered one line each on stdin.
const control_ = createInterface({ input: process.stdin });
const answers = control_[Symbol.asyncIterator]();
async function control(command) {
  console.log(`control ${command}`);
  const { value, done } = await answers.next();
  check(!done && value.trim() === 'ok', `control ${command} was answered ${JSON.stringify(value)}`);
}

async function graphql(url, query, variables, token) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  check(!body.errors, `${query.slice(0, 40)}…: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/** Every ticket event id in the log, read through the gateway. */
async function ticketEventLog() {
  const ids = [];
  let after = null;
  for (;;) {
    const data = await graphql(
      `${base}/graphql`,
      'query($after: String) { ticketEvents(after: $after, first: 100) { pageInfo { hasNextPage } edges { cursor node { id } } } }',
      { after },
      adminToken,
    );
    const edges = data.ticketEvents.edges;
    ids.push(...edges.map((e) => e.node.id));
    if (!data.ticketEvents.pageInfo.hasNextPage || edges.length === 0) return ids;
    after = edges[edges.length - 1].cursor;
  }
}

async function sold(page, ticketType) {
  return Number(await page.locator(`g[data-ticket-type="${ticketType}"]`).getAttribute('data-sold'));
}

async function feedIds(page, stream) {
  return page.locator(`ol.feed li[data-stream="${stream}"]`).evaluateAll((items) => items.map((li) => li.dataset.eventId));
}

function open(context, path) {
  return openTab(context, `${base}${path}`, log);
}

const browser = await launch();
const { context } = browser;

try {
  // The URL `conftools up` prints: the token goes into storage and out of the address bar.
  const sales = context.pages()[0] ?? (await context.newPage());
  await sales.goto(`${base}/?token=${encodeURIComponent(adminToken)}`);
  await sales.locator('[data-testid="connection"][data-state="live"]').waitFor({ timeout: 15_000 });
  check(!sales.url().includes('token='), `the token stayed in the address bar: ${sales.url()}`);
  await sales.locator('g[data-ticket-type="Regular"]').waitFor();
  await sales.locator('[data-testid="revenue"] strong').waitFor();
  await shot(sales, 'sales');

  // 1. A purchase moves the chart and the feed, open in other tabs, through the subscription.
  const feed = await open(context, '/feed');
  await feed.locator('ol.feed li').first().waitFor();
  const buy = await open(context, '/buy');
  const soldBefore = await sold(sales, 'Regular');
  const revenueBefore = await sales.locator('[data-testid="awaiting-payment"] strong').textContent();
  await buy.locator('select[name="ticketType"] option', { hasText: 'Regular' }).waitFor({ state: 'attached' });
  const regular = await buy.locator('select[name="ticketType"] option', { hasText: 'Regular' }).getAttribute('value');
  await buy.selectOption('select[name="ticketType"]', regular);
  await buy.fill('input[name="quantity"]', '2');
  await buy.fill('input[name="name"]', 'Playwright Buyer');
  await buy.fill('input[name="email"]', 'playwright@example.org');
  await buy.click('button[type="submit"]');
  await buy.locator('[data-testid="purchase-outcome"] .success').waitFor();
  const bought = Date.now();
  await sales.waitForFunction(
    ({ before }) => Number(document.querySelector('g[data-ticket-type="Regular"]')?.getAttribute('data-sold')) === before + 2,
    { before: soldBefore },
    { timeout: 3_000, polling: 20 },
  );
  const latency = Date.now() - bought;
  log(`sales chart updated ${latency} ms after the purchase`);
  check(latency < 2_000, `the sales chart took ${latency} ms to show the purchase`);
  const revenueAfter = await sales.locator('[data-testid="awaiting-payment"] strong').textContent();
  check(revenueAfter !== revenueBefore, `awaiting payment stayed ${revenueAfter}`);
  await feed
    .locator('ol.feed li[data-type="TicketPurchaseCreated"]', { hasText: 'Playwright Buyer' })
    .waitFor({ timeout: 3_000 });
  // The buyer reads their own purchase back with the access token that came with it (the
  // page sends no bearer token), and may cancel it while it is unpaid.
  const own = buy.locator('[data-testid="own-purchase"]', { hasText: 'Playwright Buyer' });
  await own.waitFor({ timeout: 3_000 });
  check((await own.getAttribute('data-status')) === 'PENDING_PAYMENT', 'the own purchase is not shown as awaiting payment');
  const ownText = await own.textContent();
  check(ownText.includes('2 × Regular'), `the own purchase reads ${ownText}`);
  const held = await buy.evaluate(() => JSON.parse(localStorage.getItem('conftools.purchases') ?? '[]'));
  check(held.length >= 1 && typeof held[0].accessToken === 'string' && held[0].accessToken.length >= 32, 'no access token kept');
  // The id alone opens nothing.
  const byIdOnly = await buy.evaluate(async (id) => {
    const response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query($id: ID!) { ticketPurchase(id: $id) { id purchaser { email } } }', variables: { id } }),
    });
    return response.json();
  }, held[0].id);
  check(byIdOnly.data?.ticketPurchase == null, `the purchase id alone read ${JSON.stringify(byIdOnly)}`);
  await shot(buy, 'buy');

  // The errors a buyer can hit, in plain words.
  const dinner = await buy.locator('select[name="ticketType"] option', { hasText: "Speakers' dinner" }).getAttribute('value');
  await buy.selectOption('select[name="ticketType"]', dinner);
  await buy.fill('input[name="quantity"]', '1');
  await buy.click('button[type="submit"]');
  const soldOut = buy.locator('[data-testid="purchase-outcome"] .error');
  await soldOut.waitFor();
  check((await soldOut.getAttribute('data-code')) === 'SOLD_OUT', `expected SOLD_OUT, got ${await soldOut.textContent()}`);
  check(/sold out/i.test(await soldOut.textContent()), `sold out not said plainly: ${await soldOut.textContent()}`);
  await shot(buy, 'buy-sold-out');
  await buy.selectOption('select[name="ticketType"]', regular);
  await buy.fill('input[name="email"]', 'not-an-email');
  await buy.click('button[type="submit"]');
  const badEmail = buy.locator('[data-testid="purchase-outcome"] .error[data-code="BAD_USER_INPUT"]');
  await badEmail.waitFor();
  check(/mail/i.test(await badEmail.textContent()), `bad e-mail not said plainly: ${await badEmail.textContent()}`);
  await shot(buy, 'buy-bad-email');
  await buy.close();

  // 2. Paying a sponsor's last invoice onboards it; the CRM books its tickets through
  // ticketing, and the booking shows in the feed with the sponsor's name.
  const sponsors = await open(context, '/sponsors');
  const card = sponsors.locator('article[data-sponsor="Crab Cloud"]');
  await card.waitFor();
  check((await card.getAttribute('data-stage')) === 'invoiced', `Crab Cloud is ${await card.getAttribute('data-stage')}`);
  await shot(sponsors, 'sponsors');
  await card.locator('button[data-action="mark-paid"]').click();
  await sponsors.locator('article[data-sponsor="Crab Cloud"][data-stage="tickets-booked"]').waitFor({ timeout: 15_000 });
  await feed
    .locator('ol.feed li[data-type="TicketPurchaseCreated"] .sponsor[data-sponsor="Crab Cloud"]')
    .waitFor({ timeout: 5_000 });
  // An admin changes a sponsor's level: the card follows, with the new allowance.
  await sponsors.selectOption('article[data-sponsor="Borrow & Co"] select', 'Silver');
  await sponsors.locator('article[data-sponsor="Borrow & Co"] .allocation', { hasText: '0/3' }).waitFor({ timeout: 5_000 });
  await shot(sponsors, 'sponsors-booked');
  await shot(feed, 'feed');
  await sponsors.close();
  await sales.close();

  // 3. The gateway stops and comes back on the same port while ticketing keeps selling: the
  // page reconnects by itself and resumes from its cursor, no gap and no duplicate.
  await control('stop-gateway');
  await feed.locator('[data-testid="connection"][data-state="reconnecting"]').waitFor({ timeout: 15_000 });
  const buyer = (n) => ({
    input: {
      purchaser: { name: `Outage Buyer ${n}`, email: `outage${n}@example.org` },
      lines: [{ ticketTypeId: regular, quantity: 1 }],
    },
  });
  for (const n of [1, 2]) {
    await graphql(ticketingUrl, 'mutation($input: CreateTicketPurchaseInput!) { createTicketPurchase(input: $input) { id } }', buyer(n));
  }
  await shot(feed, 'feed-reconnecting');
  await control('start-gateway');
  await feed.locator('[data-testid="connection"][data-state="live"]').waitFor({ timeout: 15_000 });
  for (const n of [1, 2]) {
    await feed.locator('ol.feed li[data-type="TicketPurchaseCreated"]', { hasText: `Outage Buyer ${n}` }).waitFor({ timeout: 10_000 });
  }
  const log_ = await ticketEventLog();
  // Give a straggler (a duplicate, if there were one) the chance to show before counting.
  await feed.waitForTimeout(500);
  const shown = await feedIds(feed, 'tickets');
  check(new Set(shown).size === shown.length, `the feed shows an event twice: ${shown.length} items, ${new Set(shown).size} distinct`);
  const missing = log_.filter((id) => !shown.includes(id));
  const extra = shown.filter((id) => !log_.includes(id));
  check(missing.length === 0, `the feed misses ${missing.length} of ${log_.length} ticket events: ${missing.join(', ')}`);
  check(extra.length === 0, `the feed shows events not in the log: ${extra.join(', ')}`);
  log(`after the restart the feed holds all ${log_.length} ticket events, each once`);
  await shot(feed, 'feed-resumed');

  console.log('result ok');
} finally {
  await browser.close();
  // An open stdin would keep node running after the last step.
  control_.close();
  process.stdin.destroy();
}
