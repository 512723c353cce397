// The sponsor pipeline: each sponsor in the column of the step it has reached, from contract
// to tickets booked, with the admin action that moves it on. The CRM decides the steps; this
// page only reads them and refreshes when the CRM (or ticketing, for bookings) reports a change.
import type { Page } from '../main';
import type { BoardSponsorFragment, SponsorBoardQuery } from '../gql/graphql';
import { request } from '../client';
import { debounce, h } from '../dom';
import { money } from '../format';
import { onEvent } from '../live';
import {
  ChangeSponsorLevelMutation,
  IssueInvoiceMutation,
  MarkInvoicePaidMutation,
  RetryTicketAllocationMutation,
  SendContractMutation,
  SignContractMutation,
  SponsorBoardQuery as BoardQuery,
} from '../operations';

type Level = SponsorBoardQuery['sponsorshipLevels'][number];

const STAGES = [
  { id: 'new', title: 'New' },
  { id: 'contract-sent', title: 'Contract sent' },
  { id: 'signed', title: 'Signed' },
  { id: 'invoiced', title: 'Invoiced' },
  { id: 'paid', title: 'Paid' },
  { id: 'onboarded', title: 'Onboarded' },
  { id: 'tickets-booked', title: 'Tickets booked' },
  { id: 'failed', title: 'Booking failed' },
] as const;

type Stage = (typeof STAGES)[number]['id'] | 'cancelled';

/** The furthest step a sponsor has reached, as the CRM's own rules define onboarding. */
export function stageOf(sponsor: BoardSponsorFragment): Stage {
  if (sponsor.contract.status === 'CANCELLED') return 'cancelled';
  if (sponsor.onboarded) {
    if (sponsor.ticketAllocation.status === 'BOOKED') return 'tickets-booked';
    if (sponsor.ticketAllocation.status === 'FAILED') return 'failed';
    return 'onboarded';
  }
  const live = sponsor.invoices.filter((i) => i.status !== 'VOID');
  // Paid up but not yet signed: onboarding waits for the signature.
  if (live.length > 0 && live.every((i) => i.status === 'PAID')) return 'paid';
  if (live.some((i) => i.status === 'ISSUED')) return 'invoiced';
  if (sponsor.contract.status === 'SIGNED') return 'signed';
  if (sponsor.contract.status === 'SENT') return 'contract-sent';
  return 'new';
}

function inDays(days: number): string {
  const date = new Date(Date.now() + days * 86_400_000);
  return date.toISOString().slice(0, 10);
}

export const sponsorsPage: Page = (root, { conference, signedIn }) => {
  const message = h('p', { class: 'notice', hidden: true, role: 'status' });
  const board = h('div', { class: 'board', 'data-testid': 'sponsor-board' });
  root.append(h('h1', {}, `Sponsors · ${conference.name}`), message, board);
  if (!signedIn) {
    board.replaceWith(h('p', { class: 'muted' }, 'The sponsor pipeline needs the admin token (crm:read, crm:write, crm:admin).'));
    return () => {};
  }

  let stopped = false;
  let levels: Level[] = [];

  const show = (text: string, error = false) => {
    message.hidden = false;
    message.textContent = text;
    message.className = error ? 'notice error' : 'notice';
  };

  // Each action reports plainly and leaves the refresh to the event it causes.
  const act = (label: string, run: () => Promise<unknown>) => async (event: Event) => {
    const button = event.currentTarget as HTMLButtonElement | HTMLSelectElement;
    button.disabled = true;
    try {
      await run();
      show(`${label}: done`);
      refresh();
    } catch (error) {
      show(`${label}: ${(error as Error).message}`, true);
      button.disabled = false;
    }
  };

  const card = (sponsor: BoardSponsorFragment, stage: Stage): HTMLElement => {
    const allocation = sponsor.ticketAllocation;
    const actions: HTMLElement[] = [];
    if (sponsor.contract.status === 'DRAFT') {
      actions.push(h('button', { onclick: act(`Send contract to ${sponsor.name}`, () => request(SendContractMutation, { sponsorId: sponsor.id })) }, 'Send contract'));
    }
    if (sponsor.contract.status === 'SENT') {
      actions.push(h('button', { onclick: act(`${sponsor.name} signs`, () => request(SignContractMutation, { sponsorId: sponsor.id })) }, 'Sign contract'));
    }
    // One invoice for the level's price; a sponsor already invoiced is followed up, not re-billed.
    if (!sponsor.onboarded && sponsor.contract.status !== 'CANCELLED' && !sponsor.invoices.some((i) => i.status !== 'VOID')) {
      const amount = sponsor.level?.price ?? { amount: 0, currency: conference.currency };
      actions.push(
        h('button', {
          onclick: act(`Invoice ${sponsor.name}`, () =>
            request(IssueInvoiceMutation, { input: { sponsorId: sponsor.id, amount: { amount: amount.amount, currency: amount.currency }, dueOn: inDays(30) } }),
          ),
        }, `Invoice ${money(amount)}`),
      );
    }
    for (const invoice of sponsor.invoices.filter((i) => i.status === 'ISSUED')) {
      actions.push(
        h('button', { class: 'primary', 'data-action': 'mark-paid', onclick: act(`${sponsor.name} paid`, () => request(MarkInvoicePaidMutation, { id: invoice.id })) }, `Mark ${money(invoice.amount)} paid`),
      );
    }
    if (allocation.status === 'FAILED') {
      actions.push(h('button', { class: 'primary', onclick: act(`Retry booking for ${sponsor.name}`, () => request(RetryTicketAllocationMutation, { sponsorId: sponsor.id })) }, 'Retry allocation'));
    }
    const levelPicker = h(
      'select',
      {
        'aria-label': `Level of ${sponsor.name}`,
        onchange: (event: Event) => {
          const level = (event.currentTarget as HTMLSelectElement).value;
          void act(`${sponsor.name} moves to ${level}`, () => request(ChangeSponsorLevelMutation, { sponsorId: sponsor.id, level }))(event);
        },
      },
      ...levels.map((l) => h('option', { value: l.name, selected: l.name === sponsor.level?.name }, l.name)),
    );
    const tickets = sponsor.ticketPurchases.flatMap((p) => p.tickets);
    return h(
      'article',
      { class: `sponsor-card ${stage}`, 'data-sponsor': sponsor.name, 'data-stage': stage },
      h('header', {}, h('strong', {}, sponsor.name), levelPicker),
      h('p', { class: 'muted small' }, `${sponsor.contactName ?? '—'} · contract ${sponsor.contract.status.toLowerCase()}`),
      sponsor.invoices.length
        ? h('ul', { class: 'invoices small' }, ...sponsor.invoices.map((i) => h('li', { class: i.status.toLowerCase() }, `${money(i.amount)} ${i.status.toLowerCase()}`)))
        : null,
      h(
        'p',
        { class: 'small allocation', 'data-allocation': allocation.status },
        `Tickets ${allocation.ticketsBooked}/${allocation.ticketsAllowed} booked`,
        allocation.status === 'PENDING' ? ` · booking (attempt ${allocation.attempts})` : '',
        allocation.reason ? h('span', { class: 'reason' }, ` · ${allocation.reason}`) : null,
      ),
      tickets.length
        ? h('details', { class: 'small' },
            h('summary', {}, `${tickets.length} ticket${tickets.length === 1 ? '' : 's'} in ${sponsor.ticketPurchases.length} booking${sponsor.ticketPurchases.length === 1 ? '' : 's'}`),
            h('ul', {}, ...tickets.map((t) => h('li', {}, t.attendee ? `Assigned to ${t.attendee.name}` : `Unassigned · ${t.id.slice(0, 8)}`))),
          )
        : null,
      actions.length ? h('div', { class: 'actions' }, ...actions) : null,
    );
  };

  const load = async () => {
    try {
      const data = await request(BoardQuery, { conferenceId: conference.id });
      if (stopped) return;
      levels = [...data.sponsorshipLevels].sort((a, b) => a.rank - b.rank);
      const byStage = new Map<Stage, BoardSponsorFragment[]>();
      for (const sponsor of data.sponsors.nodes) {
        const stage = stageOf(sponsor);
        byStage.set(stage, [...(byStage.get(stage) ?? []), sponsor]);
      }
      const columns: { id: Stage; title: string }[] = [...STAGES];
      if (byStage.has('cancelled')) columns.push({ id: 'cancelled', title: 'Cancelled' });
      board.replaceChildren(
        ...columns.map(({ id, title }) =>
          h(
            'section',
            { class: 'column', 'data-column': id },
            h('h2', {}, title, h('span', { class: 'count' }, String(byStage.get(id)?.length ?? 0))),
            ...(byStage.get(id) ?? []).map((s) => card(s, id)),
          ),
        ),
      );
      root.dataset.updatedAt = String(Date.now());
    } catch (error) {
      if (!stopped) show(`Cannot load sponsors: ${(error as Error).message}`, true);
    }
  };
  const refresh = debounce(() => void load(), 80);
  void load();
  // Sponsor events move cards; ticket events bring the bookings (and their tickets) in.
  const unsubscribe = onEvent((_event, replayed) => {
    if (!replayed) refresh();
  });
  return () => {
    stopped = true;
    unsubscribe();
  };
};
