// The two event logs the dashboard follows: ticketing's and the CRM's. Each stream first reads
// its log from the start (a page at a time) to know the recent history and the newest cursor,
// then subscribes *after* that cursor. Every event that arrives moves the cursor forward in the
// subscription's own variables, which graphql-ws sends again when it resubscribes after a
// reconnect: so a restarted gateway replays exactly what the page missed, no more. Events are
// also keyed by id, so even a replayed event is shown once.
import type {
  SponsorEventFieldsFragment,
  TicketEventFieldsFragment,
  TypedDocumentString,
} from './gql/graphql';
import { documentText, request, subscriptions } from './client';
import {
  SponsorEventLogQuery,
  SponsorEventsSubscription,
  TicketEventLogQuery,
  TicketEventsSubscription,
} from './operations';

export type TicketEvent = TicketEventFieldsFragment & { stream: 'tickets' };
export type SponsorEvent = SponsorEventFieldsFragment & { stream: 'sponsors' };
export type LiveEvent = TicketEvent | SponsorEvent;

/** How much history the page keeps for the feed. */
const HISTORY = 200;

type Listener = (event: LiveEvent, replayed: boolean) => void;

interface LogEvent {
  id: string;
  cursor: string;
}

class EventStream<E extends LogEvent> {
  readonly history: E[] = [];
  private readonly seen = new Set<string>();
  private readonly variables: { after: string | null } = { after: null };
  private started = false;
  error: string | null = null;

  constructor(
    private readonly name: string,
    private readonly readPage: (after: string | null) => Promise<{ events: E[]; more: boolean }>,
    private readonly subscription: TypedDocumentString<unknown, { after?: string | null }>,
    private readonly pick: (data: unknown) => E | undefined,
    private readonly deliver: (event: E, replayed: boolean) => void,
  ) {}

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    try {
      for (let more = true; more; ) {
        const page = await this.readPage(this.variables.after);
        for (const event of page.events) this.accept(event, true);
        more = page.more && page.events.length > 0;
      }
    } catch (error) {
      this.started = false;
      this.error = `${this.name}: ${(error as Error).message}`;
      throw error;
    }
    // With an empty log there is no cursor yet: the subscription then starts at the log's
    // head, which is where reading it just ended.
    subscriptions().subscribe<unknown>(
      { query: documentText(this.subscription), variables: this.variables },
      {
        next: (result) => {
          if (result.errors?.length) {
            this.error = `${this.name}: ${result.errors[0].message}`;
            return;
          }
          const event = this.pick(result.data);
          if (event) this.accept(event, false);
        },
        error: (error) => {
          this.error = `${this.name}: ${describe(error)}`;
        },
        complete: () => {},
      },
    );
  }

  private accept(event: E, replayed: boolean) {
    if (this.seen.has(event.id)) return;
    this.seen.add(event.id);
    this.variables.after = event.cursor;
    this.history.push(event);
    if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
    this.deliver(event, replayed);
  }
}

function describe(error: unknown): string {
  if (Array.isArray(error)) return error.map((e) => (e as Error).message).join('; ');
  if (error instanceof Error) return error.message;
  if (error && typeof error === 'object' && 'reason' in error) {
    return String((error as CloseEvent).reason || 'connection closed');
  }
  return String(error);
}

const listeners = new Set<Listener>();

function deliver(event: LiveEvent, replayed: boolean) {
  for (const listener of listeners) listener(event, replayed);
}

export const ticketEvents = new EventStream<TicketEvent>(
  'ticket events',
  async (after) => {
    const data = await request(TicketEventLogQuery, { after });
    return {
      events: data.ticketEvents.nodes.map((e) => ({ ...e, stream: 'tickets' as const })),
      more: data.ticketEvents.pageInfo.hasNextPage,
    };
  },
  TicketEventsSubscription as TypedDocumentString<unknown, { after?: string | null }>,
  (data) => {
    const event = (data as { ticketEvents?: TicketEventFieldsFragment } | null)?.ticketEvents;
    return event ? { ...event, stream: 'tickets' } : undefined;
  },
  deliver,
);

export const sponsorEvents = new EventStream<SponsorEvent>(
  'sponsor events',
  async (after) => {
    const data = await request(SponsorEventLogQuery, { after });
    return {
      events: data.sponsorEvents.nodes.map((e) => ({ ...e, stream: 'sponsors' as const })),
      more: data.sponsorEvents.pageInfo.hasNextPage,
    };
  },
  SponsorEventsSubscription as TypedDocumentString<unknown, { after?: string | null }>,
  (data) => {
    const event = (data as { sponsorEvents?: SponsorEventFieldsFragment } | null)?.sponsorEvents;
    return event ? { ...event, stream: 'sponsors' } : undefined;
  },
  deliver,
);

/** Starts both streams (once); rejects if a log cannot be read, e.g. without a token. */
export function startLive(): Promise<unknown> {
  return Promise.allSettled([ticketEvents.start(), sponsorEvents.start()]);
}

/** Calls `listener` for every new event from now on; returns the unsubscribe. */
export function onEvent(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Recent events of both logs, newest first. */
export function recentEvents(): LiveEvent[] {
  // Newest first within each log, so events of the same instant keep their log order.
  const all: LiveEvent[] = [...ticketEvents.history].reverse();
  all.push(...[...sponsorEvents.history].reverse());
  // Two services, two clocks' formats: compare instants, not strings.
  return all.sort((a, b) => Date.parse(b.occurredAt) - Date.parse(a.occurredAt));
}
