// The event feed: ticketing's and the CRM's events as they happen, newest first, each told in
// the organiser's words with what the other service knows (a purchase names its sponsor, a
// booked allocation its purchase).
import type { Page } from '../main';
import type { FeedPurchaseFragment } from '../gql/graphql';
import { debounce, h } from '../dom';
import { money, time } from '../format';
import { onEvent, recentEvents, sponsorEvents, ticketEvents, type LiveEvent } from '../live';

/** Sponsor names by id, learnt from the CRM's own events (allocation requests carry only ids). */
function sponsorNames(): Map<string, string> {
  const names = new Map<string, string>();
  for (const event of sponsorEvents.history) {
    if ('sponsor' in event && event.sponsor) names.set(event.sponsor.id, event.sponsor.name);
    if ('invoice' in event && event.invoice?.sponsor) names.set(event.invoice.sponsor.id, event.invoice.sponsor.name);
  }
  return names;
}

function tickets(n: number): string {
  return `${n} ticket${n === 1 ? '' : 's'}`;
}

function purchaseText(verb: string, purchase: FeedPurchaseFragment): (string | HTMLElement)[] {
  const lines = purchase.lines.map((l) => `${l.quantity} × ${l.ticketType?.name ?? 'ticket'}`).join(', ');
  const who = purchase.sponsor
    ? h('span', { class: 'sponsor', 'data-sponsor': purchase.sponsor.name }, `${purchase.sponsor.name}${purchase.sponsor.level ? ` (${purchase.sponsor.level.name})` : ''}`)
    : purchase.purchaser?.name ?? 'A buyer';
  const price = purchase.complimentary ? 'complimentary' : money(purchase.total);
  return [who, ` ${verb} `, h('strong', {}, lines), ` · ${price}`];
}

function describe(event: LiveEvent, names: Map<string, string>): { kind: string; text: (string | HTMLElement)[] } {
  const sponsorOf = (id: string) => names.get(id) ?? 'a sponsor';
  switch (event.__typename) {
    case 'TicketPurchaseCreated':
      return { kind: 'sale', text: purchaseText(event.purchase.sponsor ? 'was booked' : 'reserved', event.purchase) };
    case 'TicketPurchasePaid':
      // Complimentary purchases are confirmed at once, with nothing to pay.
      return event.purchase.complimentary
        ? { kind: 'sale', text: ['Confirmed: ', ...purchaseText('holds', event.purchase)] }
        : { kind: 'money', text: ['Payment received: ', ...purchaseText('paid for', event.purchase)] };
    case 'TicketPurchaseCancelled':
      return { kind: 'warn', text: ['Cancelled: ', ...purchaseText('had', event.purchase)] };
    case 'TicketPurchaseExpired':
      return { kind: 'warn', text: ['Expired unpaid: ', ...purchaseText('had reserved', event.purchase)] };
    case 'TicketAssigned': {
      const sponsor = event.ticket.purchase?.sponsor;
      return {
        kind: 'info',
        text: [`${event.ticket.ticketType?.name ?? 'Ticket'} assigned to ${event.ticket.attendee?.name ?? 'an attendee'}`, sponsor ? ` (${sponsor.name})` : ''],
      };
    }
    case 'TicketTypeCreated':
      return { kind: 'info', text: [`Ticket type ${event.ticketType.name} created: ${event.ticketType.capacity} seats`] };
    case 'TicketTypeUpdated':
      return { kind: 'info', text: [`Ticket type ${event.ticketType.name} changed: ${event.ticketType.capacity} seats`] };
    case 'TicketTypeSoldOut':
      return { kind: 'warn', text: [h('strong', {}, event.ticketType.name), ' is sold out'] };
    case 'TicketTypeAvailableAgain':
      return { kind: 'info', text: [`${event.ticketType.name} is available again: ${event.ticketType.remaining} left`] };
    case 'ConferenceCreated':
      return { kind: 'info', text: [`Conference ${event.conference.name} created`] };
    case 'SponsorCreated':
      return { kind: 'crm', text: [h('span', { class: 'sponsor' }, event.sponsor.name), ` signed up as ${event.sponsor.level?.name ?? 'sponsor'}`] };
    case 'ContractSent':
      return { kind: 'crm', text: [`Contract sent to ${event.sponsor.name}`] };
    case 'ContractSigned':
      return { kind: 'crm', text: [h('span', { class: 'sponsor' }, event.sponsor.name), ' signed the contract'] };
    case 'ContractCancelled':
      return { kind: 'warn', text: [`Contract with ${event.sponsor.name} cancelled`] };
    case 'SponsorOnboarded':
      return { kind: 'crm', text: [h('span', { class: 'sponsor' }, event.sponsor.name), ' is onboarded: booking their tickets'] };
    case 'SponsorLevelChanged':
      return { kind: 'crm', text: [`${event.sponsor.name} is now ${event.sponsor.level?.name ?? 'without a level'}`] };
    case 'TicketAllowanceOverrideSet':
      return { kind: 'crm', text: [`${event.sponsor.name}'s ticket allowance set to ${event.sponsor.ticketAllowanceOverride ?? 'the level default'}`] };
    case 'TicketAllowanceExceeded':
      return { kind: 'warn', text: [`${event.sponsor.name} holds ${event.excessTickets} more tickets than allowed: needs review`] };
    case 'InvoiceIssued':
      return { kind: 'crm', text: [`Invoice of ${money(event.invoice.amount)} issued to ${event.invoice.sponsor?.name ?? 'a sponsor'}`] };
    case 'InvoicePaid':
      return { kind: 'money', text: [h('span', { class: 'sponsor' }, event.invoice.sponsor?.name ?? 'A sponsor'), ` paid an invoice of ${money(event.invoice.amount)}`] };
    case 'InvoiceVoided':
      return { kind: 'warn', text: [`Invoice of ${money(event.invoice.amount)} to ${event.invoice.sponsor?.name ?? 'a sponsor'} voided`] };
    case 'TicketAllocationRequested':
      return { kind: 'crm', text: [`Booking ${tickets(event.request.quantity)} for ${sponsorOf(event.request.sponsorId)}`] };
    case 'TicketAllocationBooked':
      return {
        kind: 'sale',
        text: [
          h('span', { class: 'sponsor' }, sponsorOf(event.request.sponsorId)),
          `: ${tickets(event.request.purchase?.ticketCount ?? event.request.quantity)} booked`,
        ],
      };
    case 'TicketAllocationFailed':
      return { kind: 'error', text: [`Booking for ${sponsorOf(event.request.sponsorId)} failed: ${event.request.reason ?? 'unknown reason'}`] };
    case 'TicketAllocationRetried':
      return { kind: 'crm', text: [`Retrying the booking for ${sponsorOf(event.request.sponsorId)}`] };
    case 'SponsorshipLevelUpdated':
      return { kind: 'crm', text: [`Level ${event.level.name} now gives ${event.level.ticketAllowance} tickets`] };
    case 'SponsorConferenceConfigured':
      return { kind: 'crm', text: ['Sponsor tickets configured for the conference'] };
    default:
      return { kind: 'info', text: [(event as { __typename?: string }).__typename ?? 'event'] };
  }
}

export const feedPage: Page = (root, { signedIn }) => {
  const list = h('ol', { class: 'feed', 'data-testid': 'feed' });
  const problems = h('p', { class: 'error', hidden: true });
  root.append(h('h1', {}, 'Event feed'), problems, list);
  if (!signedIn) {
    list.replaceWith(h('p', { class: 'muted' }, 'The event feed needs the admin token (events:read, crm:read).'));
    return () => {};
  }
  // Events seen live (not history) are highlighted for a moment.
  const fresh = new Set<string>();
  const render = () => {
    const names = sponsorNames();
    list.replaceChildren(
      ...recentEvents().map((event) => {
        const { kind, text } = describe(event, names);
        return h(
          'li',
          { class: `event ${kind}${fresh.has(event.id) ? ' fresh' : ''}`, 'data-event-id': event.id, 'data-type': event.__typename, 'data-stream': event.stream },
          h('time', { datetime: event.occurredAt }, time(event.occurredAt)),
          h('span', { class: 'badge' }, event.stream === 'tickets' ? 'tickets' : 'sponsors'),
          h('span', { class: 'text' }, ...text),
        );
      }),
    );
    const errors = [ticketEvents.error, sponsorEvents.error].filter(Boolean);
    problems.hidden = errors.length === 0;
    problems.textContent = errors.join(' · ');
  };
  const refresh = debounce(render, 30);
  render();
  const unsubscribe = onEvent((event, replayed) => {
    if (!replayed) {
      fresh.add(event.id);
      setTimeout(() => {
        fresh.delete(event.id);
        refresh();
      }, 4000);
    }
    refresh();
  });
  return unsubscribe;
};
