// Apollo Client 4 with HttpLink and its handler for `@defer` (deferSpec=20220824, the format
// Apollo Router speaks): the query defers the CRM's part, so the client first holds the
// conference from ticketing alone and then the whole result, from one multipart/mixed
// response. Its subscription goes over multipart HTTP too, as HttpLink sends it.

import assert from 'node:assert/strict';
import { ApolloClient, HttpLink, gql } from '@apollo/client';
import { Defer20220824Handler } from '@apollo/client/incremental';

import {
  apolloCache,
  multipartFetch,
  streamOpened,
  subscribeToPurchases,
} from './apollo-common.mjs';
import {
  checkConference,
  checkPurchaseEvent,
  deferred,
  fixture,
  gatewayUrl,
  organiserToken,
  purchaseMade,
  ready,
  recordingFetch,
  run,
  withoutTypenames,
} from './lib.mjs';

// CONFERENCE_QUERY with the sponsorship levels (the CRM's) deferred.
const DEFERRED_CONFERENCE_QUERY = `
  query ConferenceDeferredForClients($id: ID!) {
    conference(id: $id) {
      id
      name
      currency
      startsOn
      endsOn
      ticketTypes { id name price { amount currency } capacity visibility }
    }
    ... @defer(label: "levels") {
      sponsorshipLevels { name ticketAllowance rank }
    }
  }
`;

run('apollo-defer', async () => {
  // The query's exchange is recorded apart from the subscription's stream.
  const queryWire = recordingFetch();
  const subscriptionWire = multipartFetch();
  const client = new ApolloClient({
    link: new HttpLink({
      uri: gatewayUrl,
      headers: { Authorization: `Bearer ${organiserToken}` },
      fetch: (input, init) =>
        /^\s*subscription\b/.test(JSON.parse(init.body).query ?? '')
          ? subscriptionWire.fetch(input, init)
          : queryWire.fetch(input, init),
    }),
    cache: apolloCache(),
    incrementalHandler: new Defer20220824Handler(),
  });

  // Every result the client shows the application, up to the complete one.
  const results = [];
  const complete = deferred();
  const watching = client
    .watchQuery({ query: gql(DEFERRED_CONFERENCE_QUERY), variables: { id: fixture.conferenceId } })
    .subscribe({
      next: (result) => {
        if (result.error) complete.reject(result.error);
        results.push(result);
        if (result.dataState === 'complete') complete.resolve(result.data);
      },
      error: (error) => complete.reject(error),
    });
  const data = await complete.promise;
  watching.unsubscribe();
  checkConference(data);

  // Before the whole result, the application had the conference without the CRM's part.
  const streaming = results.filter((r) => r.dataState === 'streaming');
  assert.ok(streaming.length > 0, `no partial result: ${JSON.stringify(results)}`);
  const partial = withoutTypenames(streaming[0].data);
  assert.deepStrictEqual(partial.conference, fixture.query.conference);
  assert.equal(partial.sponsorshipLevels, undefined);
  // One request, answered as a multipart stream in the format the client asked for.
  assert.equal(queryWire.exchanges.length, 1);
  const [exchange] = queryWire.exchanges;
  assert.match(exchange.headers.get('accept'), /multipart\/mixed;\s*deferSpec=20220824/);
  assert.equal(exchange.status, 200);
  assert.match(exchange.contentType, /^multipart\/mixed;.*deferSpec=20220824/);

  const purchases = subscribeToPurchases(client);
  await streamOpened(subscriptionWire, purchases);
  ready();
  const [purchaseId, received] = await Promise.all([purchaseMade(), purchases.event]);
  checkPurchaseEvent(received, purchaseId);
  purchases.unsubscribe();
});
