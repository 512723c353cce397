// Apollo Client with BatchHttpLink: queries issued together travel as one HTTP request whose
// body is a JSON array of operations, answered by one JSON array in the same order. Here the
// two halves of CONFERENCE_QUERY, one per service, are two queries of one batch.
// BatchHttpLink cannot carry a subscription (it waits for one JSON answer per batch), so the
// subscription goes over a plain HttpLink, as multipart HTTP.

import assert from 'node:assert/strict';
import { ApolloClient, ApolloLink, HttpLink, gql } from '@apollo/client';
import { BatchHttpLink } from '@apollo/client/link/batch-http';
import { isSubscriptionOperation } from '@apollo/client/utilities';

import {
  apolloCache,
  multipartFetch,
  streamOpened,
  subscribeToPurchases,
} from './apollo-common.mjs';
import {
  checkConference,
  checkPurchaseEvent,
  fixture,
  gatewayUrl,
  organiserToken,
  purchaseMade,
  ready,
  recordingFetch,
  run,
} from './lib.mjs';

// What ticketing answers.
const CONFERENCE = gql`
  query ConferenceInBatch($id: ID!) {
    conference(id: $id) {
      id
      name
      currency
      startsOn
      endsOn
      ticketTypes { id name price { amount currency } capacity visibility }
    }
  }
`;

// What the CRM answers.
const SPONSORSHIP_LEVELS = gql`
  query SponsorshipLevelsInBatch {
    sponsorshipLevels { name ticketAllowance rank }
  }
`;

run('apollo-batch', async () => {
  const headers = { Authorization: `Bearer ${organiserToken}` };
  const batches = recordingFetch();
  const subscriptions = multipartFetch();
  const client = new ApolloClient({
    link: ApolloLink.split(
      ({ query }) => isSubscriptionOperation(query),
      new HttpLink({ uri: gatewayUrl, headers, fetch: subscriptions.fetch }),
      new BatchHttpLink({
        uri: gatewayUrl,
        headers,
        fetch: batches.fetch,
        // The batch goes out as soon as it holds both queries; the long interval only keeps
        // a slow event loop from sending the first one alone.
        batchMax: 2,
        batchInterval: 1_000,
      }),
    ),
    cache: apolloCache(),
  });

  const [conference, levels] = await Promise.all([
    client.query({ query: CONFERENCE, variables: { id: fixture.conferenceId } }),
    client.query({ query: SPONSORSHIP_LEVELS }),
  ]);
  assert.equal(conference.error, undefined);
  assert.equal(levels.error, undefined);

  // Both queries went in one request, as an array, and came back as one array.
  assert.equal(batches.exchanges.length, 1, 'the two queries took more than one request');
  const [batch] = batches.exchanges;
  assert.equal(batch.method, 'POST');
  assert.ok(
    Array.isArray(batch.body),
    `the request body is not a batch: ${JSON.stringify(batch.body)}`,
  );
  assert.deepStrictEqual(batch.body.map((operation) => operation.operationName).sort(), [
    'ConferenceInBatch',
    'SponsorshipLevelsInBatch',
  ]);
  assert.equal(batch.status, 200);
  assert.ok(
    Array.isArray(batch.answer),
    `the answer is not a batch: ${JSON.stringify(batch.answer)}`,
  );
  assert.equal(batch.answer.length, 2);
  for (const answer of batch.answer) {
    assert.equal(answer.errors, undefined, `an operation failed: ${JSON.stringify(answer)}`);
  }
  checkConference({
    conference: conference.data.conference,
    sponsorshipLevels: levels.data.sponsorshipLevels,
  });

  const purchases = subscribeToPurchases(client);
  await streamOpened(subscriptions, purchases);
  ready();

  const [purchaseId, received] = await Promise.all([purchaseMade(), purchases.event]);
  checkPurchaseEvent(received, purchaseId);
  purchases.unsubscribe();
});
