// graphql-sse's own client in distinct connections mode: one streaming HTTP request per
// operation to the GraphQL endpoint (Accept: text/event-stream), with the bearer token as a
// header; a query and a subscription.

import assert from 'node:assert/strict';
import { createClient } from 'graphql-sse';

import {
  CONFERENCE_QUERY,
  PURCHASE_EVENTS,
  afterCursor,
  checkConference,
  checkPurchaseEvent,
  deferred,
  fixture,
  gatewayUrl,
  organiserToken,
  purchaseMade,
  ready,
  run,
} from './lib.mjs';

run('graphql-sse', async () => {
  const connected = deferred();
  const client = createClient({
    url: gatewayUrl,
    singleConnection: false,
    headers: { Authorization: `Bearer ${organiserToken}` },
    retryAttempts: 0,
  });

  // A query over the same transport: one `next` event, then `complete`.
  const results = [];
  for await (const result of client.iterate({
    query: CONFERENCE_QUERY,
    variables: { id: fixture.conferenceId },
  })) {
    results.push(result);
  }
  assert.equal(results.length, 1, `one result, got ${JSON.stringify(results)}`);
  assert.equal(results[0].errors, undefined);
  checkConference(results[0].data);

  const event = deferred();
  const unsubscribe = client.subscribe(
    { query: PURCHASE_EVENTS, variables: { after: afterCursor } },
    {
      next: (result) =>
        result.errors
          ? event.reject(new Error(`errors: ${JSON.stringify(result.errors)}`))
          : event.resolve(result.data?.ticketEvents),
      error: (error) => {
        connected.reject(error);
        event.reject(error);
      },
      complete: () => event.reject(new Error('the stream completed without an event')),
    },
    // The response's headers are in: the gateway accepted the operation.
    { connected: () => connected.resolve() },
  );
  await connected.promise;
  ready();

  const [purchaseId, received] = await Promise.all([purchaseMade(), event.promise]);
  assert.equal(received.__typename, 'TicketPurchaseCreated');
  checkPurchaseEvent(received, purchaseId);
  unsubscribe();
  client.dispose();
});
