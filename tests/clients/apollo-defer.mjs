// Apollo Client 4 with HttpLink and its handlers for `@defer`: deferSpec=20220824 (the format
// Apollo Router speaks) and graphql-js 17's incrementalSpec=v0.2. The query defers the CRM's
// part, so the client first holds the conference from ticketing alone and then the whole
// result, from one multipart/mixed response. Its subscription goes over multipart HTTP too,
// as HttpLink sends it.

import assert from 'node:assert/strict';
import { gql } from '@apollo/client';
import { Defer20220824Handler, GraphQL17Alpha9Handler } from '@apollo/client/incremental';

import {
  httpOnlyClient,
  multipartFetch,
  streamOpened,
  subscribeToPurchases,
} from './apollo-common.mjs';
import {
  checkConference,
  checkPurchaseEvent,
  deferred,
  fixture,
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

/**
 * Runs the deferred query through a fresh client with `incrementalHandler` and checks what
 * the application saw: a partial result without the CRM's part, then the whole. Returns the
 * whole data and the one exchange on the wire.
 */
async function deferredQuery(incrementalHandler) {
  const wire = recordingFetch();
  const client = httpOnlyClient(wire.fetch, { incrementalHandler });
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
  // Before the whole result, the application had the conference without the CRM's part.
  const streaming = results.filter((r) => r.dataState === 'streaming');
  assert.ok(streaming.length > 0, `no partial result: ${JSON.stringify(results)}`);
  const partial = withoutTypenames(streaming[0].data);
  assert.deepStrictEqual(partial.conference, fixture.query.conference);
  assert.equal(partial.sponsorshipLevels, undefined);
  // One request, answered as a multipart stream.
  assert.equal(wire.exchanges.length, 1);
  const [exchange] = wire.exchanges;
  assert.equal(exchange.status, 200);
  return { data, exchange };
}

run('apollo-defer', async () => {
  // graphql-js 17's format first; its data is checked like the other's.
  const alpha9 = await deferredQuery(new GraphQL17Alpha9Handler());
  assert.match(alpha9.exchange.headers.get('accept'), /multipart\/mixed;\s*incrementalSpec=v0\.2/);
  assert.match(alpha9.exchange.contentType, /^multipart\/mixed;.*incrementalSpec=v0\.2/);
  assert.deepStrictEqual(withoutTypenames(alpha9.data), fixture.query);

  const { data, exchange } = await deferredQuery(new Defer20220824Handler());
  assert.match(exchange.headers.get('accept'), /multipart\/mixed;\s*deferSpec=20220824/);
  assert.match(exchange.contentType, /^multipart\/mixed;.*deferSpec=20220824/);
  checkConference(data);

  const subscriptionWire = multipartFetch();
  const client = httpOnlyClient(subscriptionWire.fetch);
  const purchases = subscribeToPurchases(client);
  await streamOpened(subscriptionWire, purchases);
  ready();
  const [purchaseId, received] = await Promise.all([purchaseMade(), purchases.event]);
  checkPurchaseEvent(received, purchaseId);
  purchases.unsubscribe();
});
