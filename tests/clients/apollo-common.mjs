// What every Apollo Client script sets up the same way, whatever its links: the cache, the
// organiser's HttpLink and the purchase-event subscription. The links are what each script is
// about.

import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';

import {
  PURCHASE_EVENTS,
  afterCursor,
  deferred,
  gatewayUrl,
  organiserToken,
  recordingFetch,
} from './lib.mjs';

/** An HttpLink to the gateway with the organiser's token, sending through `fetch`. */
export function organiserHttpLink(fetch) {
  return new HttpLink({
    uri: gatewayUrl,
    headers: { Authorization: `Bearer ${organiserToken}` },
    fetch,
  });
}

/**
 * A client whose only link is `organiserHttpLink(fetch)`: queries and subscriptions both go
 * over HTTP. `options` add to the client's own (an incremental handler, say).
 */
export function httpOnlyClient(fetch, options = {}) {
  return new ApolloClient({ link: organiserHttpLink(fetch), cache: apolloCache(), ...options });
}

export function apolloCache() {
  return new InMemoryCache({
    // The cache must know the interface's members to match `... on TicketPurchaseCreated`.
    possibleTypes: {
      TicketEvent: [
        'ConferenceCreated',
        'TicketAssigned',
        'TicketPurchaseCancelled',
        'TicketPurchaseCreated',
        'TicketPurchaseExpired',
        'TicketPurchasePaid',
        'TicketTypeAvailableAgain',
        'TicketTypeCreated',
      ],
    },
  });
}

/**
 * Subscribes to PURCHASE_EVENTS (or `document`, a copy of it under another name) after the
 * test's cursor. `event` settles with the first `ticketEvents` the client delivers, or fails
 * with its first error or an early end.
 */
export function subscribeToPurchases(client, document = PURCHASE_EVENTS) {
  const event = deferred();
  const subscription = client
    .subscribe({ query: gql(document), variables: { after: afterCursor } })
    .subscribe({
      next: (result) =>
        result.error ? event.reject(result.error) : event.resolve(result.data?.ticketEvents),
      error: (error) => event.reject(error),
      complete: () => event.reject(new Error('the subscription completed without an event')),
    });
  return { event: event.promise, unsubscribe: () => subscription.unsubscribe() };
}

/**
 * A recording fetch (lib.mjs) for a link that subscribes over multipart HTTP, with `streaming`:
 * the exchange of the first answer that is a multipart stream. The gateway answers once it has
 * started the subscription, so this is the moment to tell the test `ready`.
 */
export function multipartFetch() {
  const streaming = deferred();
  const wire = recordingFetch({
    onResponse: (exchange) => {
      if (/^multipart\/mixed\b/i.test(exchange.contentType)) streaming.resolve(exchange);
    },
  });
  return { ...wire, streaming: streaming.promise };
}

/**
 * Waits for the subscription's stream to open (`multipartFetch().streaming`), failing as soon
 * as the subscription does instead of at the script's deadline.
 */
export function streamOpened(wire, purchases) {
  return Promise.race([
    wire.streaming,
    purchases.event.then((event) => {
      throw new Error(`an event came before the stream was open: ${JSON.stringify(event)}`);
    }),
  ]);
}
