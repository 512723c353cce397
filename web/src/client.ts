// The dashboard's only way out: the gateway's `/graphql`, over HTTP for queries and mutations
// and over WebSocket (graphql-transport-ws, the graphql-ws package) for subscriptions. The page
// is served by the gateway itself, so both are same-origin and need no CORS.
import { createClient, type Client } from 'graphql-ws';
import type { TypedDocumentString } from './gql/graphql';
import manifest from './gql/persisted-documents.json';
import { token } from './auth';

export const GRAPHQL_PATH = '/graphql';

const trustedDocuments: Readonly<Record<string, string>> = manifest;

/**
 * The text to send for an operation: the body of the build's trusted documents manifest under
 * the operation's id, so it is byte for byte what a gateway enforcing that manifest accepts
 * (it compares text exactly). Sending the text rather than only the id keeps the page working
 * against a gateway that has no manifest loaded, or an older one (`npm run dev` next to a
 * running `conftools up`), with no retry round trip.
 */
export function documentText(document: { __meta__?: { hash?: string } }): string {
  const id = document.__meta__?.hash;
  const text = id === undefined ? undefined : trustedDocuments[id];
  if (text === undefined) {
    // Only a build whose src/gql/ is half regenerated could get here.
    throw new Error(`operation ${id ?? '(without id)'} is not in the trusted documents manifest`);
  }
  return text;
}

/** A GraphQL error as the services report it, with its `extensions.code`. */
export class GraphQLRequestError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly errors: ReadonlyArray<{ message: string; extensions?: { code?: string } }>,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  /** `false`: send no token, as an anonymous buyer would. */
  authenticated?: boolean;
}

export async function request<R, V>(
  document: TypedDocumentString<R, V>,
  variables: V,
  options: RequestOptions = {},
): Promise<R> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/graphql-response+json, application/json',
  };
  const bearer = options.authenticated === false ? null : token();
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  let response: Response;
  try {
    response = await fetch(GRAPHQL_PATH, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query: documentText(document), variables }),
    });
  } catch {
    throw new GraphQLRequestError('The gateway cannot be reached.', 'NETWORK', []);
  }
  let body: { data?: R | null; errors?: GraphQLRequestError['errors'] };
  try {
    body = await response.json();
  } catch {
    throw new GraphQLRequestError(`The gateway answered ${response.status}.`, 'NETWORK', []);
  }
  // Partial data is still an error here: each caller asked for all of it.
  if (body.errors?.length || body.data == null) {
    const errors = body.errors ?? [];
    const first = errors[0];
    throw new GraphQLRequestError(
      first?.message ?? `The gateway answered ${response.status}.`,
      first?.extensions?.code,
      errors,
    );
  }
  return body.data;
}

export type ConnectionState = 'connecting' | 'live' | 'reconnecting';

const stateListeners = new Set<(state: ConnectionState) => void>();
let state: ConnectionState = 'connecting';
let everConnected = false;

export function connectionState(): ConnectionState {
  return state;
}

export function onConnectionState(listener: (state: ConnectionState) => void): () => void {
  stateListeners.add(listener);
  listener(state);
  return () => stateListeners.delete(listener);
}

function setState(next: ConnectionState) {
  state = next;
  for (const listener of stateListeners) listener(next);
}

let socket: Client | null = null;

/**
 * The one WebSocket, opened at start and kept open: graphql-ws retries for ever after a lost
 * connection (a gateway restart), a second apart at most, and then resubscribes every open
 * subscription with the variables it holds then. The live event streams keep their `after`
 * cursor there, so the resubscription resumes where the page left off.
 */
export function subscriptions(): Client {
  if (socket) return socket;
  const url = new URL(GRAPHQL_PATH, window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  socket = createClient({
    url: url.toString(),
    lazy: false,
    // Token read at each (re)connect, so a pasted token counts from the next connection.
    connectionParams: () => {
      const bearer = token();
      return bearer ? { Authorization: `Bearer ${bearer}` } : {};
    },
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    retryWait: async (retries) => {
      await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** retries, 1000)));
    },
    // A ping every few seconds notices a half-open connection (a gateway killed without
    // closing its sockets) instead of waiting for TCP to give up.
    keepAlive: 5000,
    on: {
      connecting: () => setState(everConnected ? 'reconnecting' : 'connecting'),
      connected: () => {
        everConnected = true;
        setState('live');
      },
      closed: () => {
        if (everConnected) setState('reconnecting');
      },
    },
  });
  return socket;
}
