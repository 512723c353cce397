// Apollo Client 4 with nothing but HttpLink: no WebSocket link, so the client sends its
// subscription over HTTP too, asking for a multipart/mixed stream (the protocol Apollo Router
// speaks), and reads one `{"payload": ...}` part per event.

import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { gql } from '@apollo/client';

import {
  httpOnlyClient,
  multipartFetch,
  streamOpened,
  subscribeToPurchases,
} from './apollo-common.mjs';
import {
  CONFERENCE_QUERY,
  checkConference,
  checkPurchaseEvent,
  fixture,
  purchaseMade,
  ready,
  run,
} from './lib.mjs';

// The gateway sends an idle stream a heartbeat part every 5 s. An event must reach the
// application when it arrives, not when the next part shows the client where it ended: the
// bound sits well under the heartbeat interval and well over the event's way through the
// outbox relay and NATS.
const PROMPT_DELIVERY_MS = 2_000;

run('apollo-multipart', async () => {
  const wire = multipartFetch();
  const client = httpOnlyClient(wire.fetch);

  const { data, error } = await client.query({
    query: gql(CONFERENCE_QUERY),
    variables: { id: fixture.conferenceId },
  });
  assert.equal(error, undefined);
  checkConference(data);
  // Only a subscription is streamed: the query was answered with plain JSON.
  assert.match(wire.exchanges[0].contentType, /^application\/(graphql-response\+)?json/);

  const purchases = subscribeToPurchases(client);
  const stream = await streamOpened(wire, purchases);
  // Apollo asked for the subscription protocol, and the gateway answered in it.
  assert.equal(stream.method, 'POST');
  assert.equal(stream.body.operationName, 'PurchaseEventsForClients');
  assert.match(stream.headers.get('accept'), /multipart\/mixed;[^,]*subscriptionSpec=1\.0/);
  assert.equal(stream.status, 200);
  assert.match(stream.contentType, /^multipart\/mixed;.*boundary="?graphql"?/);
  assert.match(stream.contentType, /subscriptionSpec="?1\.0"?/);
  ready();

  const purchaseId = await purchaseMade();
  const bought = performance.now();
  const received = await purchases.event;
  const waited = performance.now() - bought;
  checkPurchaseEvent(received, purchaseId);
  assert.ok(
    waited < PROMPT_DELIVERY_MS,
    `the event reached the client ${Math.round(waited)} ms after the purchase, ` +
      `over the ${PROMPT_DELIVERY_MS} ms bound`,
  );
  // One stream carried the subscription: Apollo neither retried nor fell back.
  assert.equal(wire.exchanges.length, 2);
  purchases.unsubscribe();
});
