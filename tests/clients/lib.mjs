// What every client script shares: the inputs the Rust test (tests/gateway_e2e/clients.rs)
// hands over, the operations, the checks on the data, and the line protocol on stdout/stdin.
//
// Inputs (environment):
//   GATEWAY_URL      the gateway's GraphQL endpoint, http://HOST:PORT/graphql
//   ORGANISER_TOKEN  a bearer token with events:read, tickets:read and crm:read
//   FIXTURE          JSON: { conferenceId, query, event } where `query` is the data
//                    CONFERENCE_QUERY must return and `event` the TicketPurchaseCreated
//                    event PURCHASE_EVENTS must deliver (its purchase id left null)
//   AFTER_CURSOR     the cursor of the newest ticket event when the script starts
//
// Protocol: a script prints `query <json>` for the data of a query it checked, `ready` once
// its subscription is open, then reads `purchase <id>` on stdin (the test has bought tickets),
// prints `event <json>` for the event it checked, and exits 0. Anything else is a failure:
// a message on stderr and exit code 1.
//
// A new client is one more script here that follows this protocol (through `run`, the checks
// and the operations below) and one more entry in SCRIPTS in clients.rs.

import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run this through tests/gateway_e2e/clients.rs`);
  }
  return value;
}

export const gatewayUrl = required('GATEWAY_URL');
// The gateway serves WebSockets on the same route as HTTP.
export const wsUrl = gatewayUrl.replace(/^http/, 'ws');
export const organiserToken = required('ORGANISER_TOKEN');
export const fixture = JSON.parse(required('FIXTURE'));
export const afterCursor = required('AFTER_CURSOR');

// One request, both services: the conference and its ticket types from ticketing (the
// restricted type only shows with the token), the sponsorship levels from the CRM (seeded by
// its migrations).
export const CONFERENCE_QUERY = `
  query ConferenceForClients($id: ID!) {
    conference(id: $id) {
      id
      name
      currency
      startsOn
      endsOn
      ticketTypes { id name price { amount currency } capacity visibility }
    }
    sponsorshipLevels { name ticketAllowance rank }
  }
`;

// Resuming after the cursor the test read before starting the script: the purchase event
// arrives whether the gateway's upstream subscription opened before or after the purchase.
export const PURCHASE_EVENTS = `
  subscription PurchaseEventsForClients($after: String) {
    ticketEvents(after: $after) {
      __typename
      cursor
      ... on TicketPurchaseCreated {
        purchase {
          id
          status
          ticketCount
          total { amount currency }
          purchaser { name }
          lines { ticketTypeId quantity unitPrice { amount currency } ticketType { name } }
        }
      }
    }
  }
`;

// Caching clients (Apollo, urql) add `__typename` to every selection set; the expectations
// are written without them. The event's own `__typename` is asked for explicitly and kept.
export function withoutTypenames(value) {
  if (Array.isArray(value)) return value.map(withoutTypenames);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => key !== '__typename')
        .map(([key, inner]) => [key, withoutTypenames(inner)]),
    );
  }
  return value;
}

/** Checks the data of CONFERENCE_QUERY against the fixture and reports it. */
export function checkConference(data) {
  assert.ok(data, 'the query returned no data');
  const plain = withoutTypenames(data);
  assert.deepStrictEqual(plain, fixture.query);
  report('query', plain);
}

/** Checks one `ticketEvents` payload: the TicketPurchaseCreated of the purchase just made. */
export function checkPurchaseEvent(event, purchaseId) {
  assert.ok(event, 'the subscription delivered no event');
  assert.equal(event.__typename, 'TicketPurchaseCreated', `unexpected event ${JSON.stringify(event)}`);
  assert.equal(typeof event.cursor, 'string');
  assert.notEqual(event.cursor, afterCursor, 'the event before the subscription was delivered');
  const { __typename, cursor, ...rest } = withoutTypenames(event);
  const expected = structuredClone(fixture.event);
  expected.purchase.id = purchaseId;
  assert.deepStrictEqual({ __typename: event.__typename, ...rest }, expected);
  report('event', { __typename: event.__typename, cursor, ...rest });
}

export function report(kind, value) {
  console.log(`${kind} ${JSON.stringify(value)}`);
}

/** Tells the test the subscription is open. */
export function ready() {
  console.log('ready');
}

let stdinLines;

/** The id of the purchase the test made after `ready`, read from stdin. */
export function purchaseMade() {
  stdinLines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  return stdinLines.next().then(({ value, done }) => {
    assert.ok(!done, 'stdin closed before the test named its purchase');
    const match = /^purchase (\S+)$/.exec(value.trim());
    assert.ok(match, `expected "purchase <id>" on stdin, got ${JSON.stringify(value)}`);
    return match[1];
  });
}

/**
 * A promise and its settle functions, for turning a client's callbacks into something to
 * await (Promise.withResolvers is Node 22+).
 */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * A `fetch` for a client to use that records every exchange, for scripts that prove how a
 * client used HTTP (how many requests, what they carried, what came back) and not only the
 * data it ended up with. Each exchange holds the request (`method`, `url` as a URL, `headers`,
 * `body` parsed from JSON) and, once answered, `status`, `contentType` and `answer`: the parsed
 * JSON body, or its text when it is not JSON. A multipart body is not read here (a copy would
 * only end with the stream): `onResponse(exchange, response)` sees every response as soon as
 * its headers arrive, for a script that wants to watch one.
 */
export function recordingFetch({ onResponse } = {}) {
  const exchanges = [];
  async function recordedFetch(input, init = {}) {
    const exchange = {
      method: (init.method ?? 'GET').toUpperCase(),
      url: new URL(String(input)),
      headers: new Headers(init.headers),
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
    };
    exchanges.push(exchange);
    const response = await fetch(input, init);
    exchange.status = response.status;
    exchange.contentType = response.headers.get('content-type') ?? '';
    if (!/^multipart\//i.test(exchange.contentType)) {
      const text = await response.clone().text();
      try {
        exchange.answer = JSON.parse(text);
      } catch {
        exchange.answer = text;
      }
    }
    onResponse?.(exchange, response);
    return response;
  }
  return { fetch: recordedFetch, exchanges };
}

/**
 * Runs a script's body with a deadline, then exits: clients keep sockets and timers open, and
 * the test waits for the process to end. Any failure is reported on stderr with exit code 1.
 */
export function run(name, body, { timeoutMs = 30_000 } = {}) {
  const deadline = setTimeout(() => {
    console.error(`${name}: no result within ${timeoutMs} ms`);
    process.exit(1);
  }, timeoutMs);
  body().then(
    () => {
      clearTimeout(deadline);
      process.exit(0);
    },
    (error) => {
      console.error(`${name} failed:`, error);
      process.exit(1);
    },
  );
}
