// Apollo Client with PersistedQueryLink in front of HttpLink (automatic persisted queries): a
// request first carries only the document's SHA-256; the gateway answers an unknown hash with
// PersistedQueryNotFound, the link sends the document with the hash, and from then on the
// hash alone is enough. Once over POST, once over GET (`useGETForHashedQueries`, the form a
// CDN can cache), each with its own document so that each starts unknown. The subscription
// goes through the same links, so over multipart HTTP and persisted too.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ApolloClient, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';

import {
  apolloCache,
  multipartFetch,
  organiserHttpLink,
  streamOpened,
  subscribeToPurchases,
} from './apollo-common.mjs';
import {
  CONFERENCE_QUERY,
  PURCHASE_EVENTS,
  checkConference,
  checkPurchaseEvent,
  fixture,
  purchaseMade,
  ready,
  recordingFetch,
  run,
} from './lib.mjs';

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

function persistedClient(wire, options = {}) {
  return new ApolloClient({
    link: new PersistedQueryLink({ sha256, ...options }).concat(organiserHttpLink(wire.fetch)),
    cache: apolloCache(),
  });
}

/** The GraphQL request an exchange carried, from its JSON body or its GET parameters. */
function sent(exchange) {
  if (exchange.method !== 'GET') return exchange.body;
  const parameters = Object.fromEntries(exchange.url.searchParams);
  for (const name of ['variables', 'extensions']) {
    if (name in parameters) parameters[name] = JSON.parse(parameters[name]);
  }
  return parameters;
}

function hashOf(exchange) {
  const persisted = sent(exchange).extensions?.persistedQuery;
  assert.equal(persisted?.version, 1, `no persisted query in ${JSON.stringify(sent(exchange))}`);
  assert.match(persisted.sha256Hash, /^[0-9a-f]{64}$/);
  return persisted.sha256Hash;
}

/** A request with the hash and without the document. */
function assertHashOnly(exchange, method) {
  assert.equal(exchange.method, method);
  const request = sent(exchange);
  assert.ok(!('query' in request), `the document was sent: ${JSON.stringify(request)}`);
  return hashOf(exchange);
}

/** The gateway did not know the hash, and said so in the way the link retries on. */
function assertMiss(exchange) {
  // Any other status would make the link give persisted queries up for good.
  assert.equal(exchange.status, 200);
  assert.equal(exchange.answer.data, undefined);
  assert.deepStrictEqual(
    exchange.answer.errors.map((e) => [e.message, e.extensions?.code]),
    [['PersistedQueryNotFound', 'PERSISTED_QUERY_NOT_FOUND']],
  );
}

/** The retry: the document with its hash, over POST whatever the first attempt used. */
function assertRetry(exchange, hash) {
  assert.equal(exchange.method, 'POST');
  const { query } = sent(exchange);
  assert.equal(typeof query, 'string', 'the retry did not send the document');
  assert.equal(hashOf(exchange), hash);
  assert.equal(sha256(query), hash, 'the hash is not the hash of the document sent');
}

function assertAnswered(exchange) {
  assert.equal(exchange.status, 200);
  assert.equal(exchange.answer.errors, undefined, JSON.stringify(exchange.answer));
  assert.ok(exchange.answer.data, 'no data in the answer');
}

/**
 * Runs `document` twice through a fresh client: a miss and a retry, then a hit on the hash
 * alone, with `method` for the hash-only requests. Checks the data both times.
 */
async function missThenHit(document, method) {
  const wire = recordingFetch();
  const client = persistedClient(wire, { useGETForHashedQueries: method === 'GET' });
  const query = () =>
    client.query({
      query: gql(document),
      variables: { id: fixture.conferenceId },
      // Both times from the gateway: the second must not come from Apollo's cache.
      fetchPolicy: 'network-only',
    });

  const first = await query();
  assert.equal(first.error, undefined);
  assert.equal(wire.exchanges.length, 2, 'expected a miss and a retry');
  const [miss, retry] = wire.exchanges;
  const hash = assertHashOnly(miss, method);
  assertMiss(miss);
  assertRetry(retry, hash);
  assertAnswered(retry);
  checkConference(first.data);

  const second = await query();
  assert.equal(second.error, undefined);
  assert.equal(wire.exchanges.length, 3, 'expected one request for a known hash');
  const hit = wire.exchanges[2];
  assert.equal(assertHashOnly(hit, method), hash);
  assertAnswered(hit);
  checkConference(second.data);
}

/**
 * The shared operation under a name of this script's own. The gateway remembers hashes for
 * every client: with its own documents, this script meets them unknown at first whatever the
 * other scripts sent.
 */
function renamed(document, from, to) {
  const copy = document.replace(from, to);
  assert.notEqual(copy, document, `no ${from} to rename`);
  return copy;
}

run('apollo-persisted', async () => {
  await missThenHit(
    renamed(CONFERENCE_QUERY, 'ConferenceForClients', 'ConferencePersistedOverPost'),
    'POST',
  );
  await missThenHit(
    renamed(CONFERENCE_QUERY, 'ConferenceForClients', 'ConferencePersistedOverGet'),
    'GET',
  );

  // The subscription's hash is unknown too: a miss answered as JSON, then the retry with the
  // document is answered with the multipart stream.
  const wire = multipartFetch();
  const client = persistedClient(wire);
  const purchases = subscribeToPurchases(
    client,
    renamed(PURCHASE_EVENTS, 'PurchaseEventsForClients', 'PurchaseEventsPersisted'),
  );
  const stream = await streamOpened(wire, purchases);
  assert.equal(wire.exchanges.length, 2, 'expected a miss and a retry');
  const hash = assertHashOnly(wire.exchanges[0], 'POST');
  assertMiss(wire.exchanges[0]);
  assert.equal(stream, wire.exchanges[1]);
  assertRetry(stream, hash);
  assert.equal(stream.status, 200);
  ready();

  const [purchaseId, received] = await Promise.all([purchaseMade(), purchases.event]);
  checkPurchaseEvent(received, purchaseId);
  purchases.unsubscribe();
});
