// urql with its default exchanges: the document cache and fetch for queries (urql sends
// queries as GET when the URL is short enough), and subscriptionExchange over graphql-ws.

import assert from 'node:assert/strict';
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

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
  wsUrl,
} from './lib.mjs';

run('urql', async () => {
  const connected = deferred();
  const ws = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    // The token alone, as many urql set-ups pass it; the gateway makes it a bearer token.
    connectionParams: { authToken: organiserToken },
    on: { connected: () => connected.resolve(), error: (error) => connected.reject(error) },
    retryAttempts: 0,
  });
  const client = new Client({
    url: gatewayUrl,
    fetchOptions: () => ({
      headers: {
        authorization: `Bearer ${organiserToken}`,
        // urql's own Accept stays: it lists JSON beside text/event-stream and multipart/mixed,
        // and the gateway answers queries as JSON then.
      },
    }),
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' };
          return {
            subscribe(sink) {
              return { unsubscribe: ws.subscribe(input, sink) };
            },
          };
        },
      }),
    ],
  });

  const result = await client.query(CONFERENCE_QUERY, { id: fixture.conferenceId }).toPromise();
  assert.equal(result.error, undefined);
  assert.equal(result.data.conference.__typename, 'Conference');
  checkConference(result.data);

  const event = deferred();
  const subscription = client
    .subscription(PURCHASE_EVENTS, { after: afterCursor })
    .subscribe((result) =>
      result.error ? event.reject(result.error) : event.resolve(result.data?.ticketEvents),
    );
  await connected.promise;
  ready();

  const [purchaseId, received] = await Promise.all([purchaseMade(), event.promise]);
  checkPurchaseEvent(received, purchaseId);
  subscription.unsubscribe();
  await ws.dispose();
});
