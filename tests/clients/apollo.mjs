// Apollo Client as a frontend sets it up: queries over HttpLink, subscriptions over
// GraphQLWsLink (graphql-ws), split by operation type, one InMemoryCache.

import assert from 'node:assert/strict';
import { ApolloClient, ApolloLink, HttpLink, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { isSubscriptionOperation } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { apolloCache, subscribeToPurchases } from './apollo-common.mjs';
import {
  CONFERENCE_QUERY,
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

run('apollo', async () => {
  const connected = deferred();
  const ws = createClient({
    url: wsUrl,
    // Node has no browser WebSocket before 22; `ws` is what Node apps pass.
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${organiserToken}` },
    on: { connected: () => connected.resolve(), error: (error) => connected.reject(error) },
    retryAttempts: 0,
  });
  const http = new HttpLink({
    uri: gatewayUrl,
    headers: { Authorization: `Bearer ${organiserToken}` },
  });
  const client = new ApolloClient({
    link: ApolloLink.split(({ query }) => isSubscriptionOperation(query), new GraphQLWsLink(ws), http),
    cache: apolloCache(),
  });

  const { data, error } = await client.query({
    query: gql(CONFERENCE_QUERY),
    variables: { id: fixture.conferenceId },
  });
  assert.equal(error, undefined);
  // Apollo asked for `__typename` everywhere on its own; the gateway answered with the types.
  assert.equal(data.conference.__typename, 'Conference');
  assert.ok(data.conference.ticketTypes.every((t) => t.__typename === 'TicketType'));
  assert.ok(data.sponsorshipLevels.every((l) => l.__typename === 'SponsorshipLevel'));
  checkConference(data);

  const purchases = subscribeToPurchases(client);
  await connected.promise;
  ready();

  const [purchaseId, received] = await Promise.all([purchaseMade(), purchases.event]);
  assert.equal(received.purchase.__typename, 'TicketPurchase');
  checkPurchaseEvent(received, purchaseId);
  purchases.unsubscribe();
  await ws.dispose();
});
