// Live sales: seats sold against capacity per ticket type, and revenue. Nothing polls: every
// ticket event from the subscription (a purchase, a payment, a cancellation, a new type)
// refetches the figures, so the chart moves within moments of a purchase.
import type { Page } from '../main';
import type { PurchasesQuery as Purchases, SalesQuery as Sales } from '../gql/graphql';
import { request } from '../client';
import { debounce, h, svg } from '../dom';
import { money } from '../format';
import { onEvent } from '../live';
import { PurchasesQuery, SalesQuery } from '../operations';

type TicketType = NonNullable<Sales['conference']>['ticketTypes'][number];

interface Revenue {
  paid: number;
  awaitingPayment: number;
  complimentaryTickets: number;
}

async function revenue(conferenceId: string): Promise<Revenue> {
  const totals: Revenue = { paid: 0, awaitingPayment: 0, complimentaryTickets: 0 };
  let after: string | null = null;
  for (;;) {
    const page: Purchases = await request(PurchasesQuery, { conferenceId, after });
    for (const purchase of page.ticketPurchases.nodes) {
      if (purchase.complimentary) continue;
      if (purchase.status === 'PAID') totals.paid += purchase.total.amount;
      if (purchase.status === 'PENDING_PAYMENT') totals.awaitingPayment += purchase.total.amount;
    }
    if (!page.ticketPurchases.pageInfo.hasNextPage) return totals;
    after = page.ticketPurchases.pageInfo.endCursor ?? null;
  }
}

const COLORS = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#0891b2', '#dc2626'];

function chart(types: TicketType[]): SVGElement {
  const rowHeight = 46;
  const labelWidth = 170;
  const width = 760;
  const barWidth = width - labelWidth - 110;
  const height = Math.max(rowHeight * types.length + 10, 60);
  const rows = types.map((type, index) => {
    const y = index * rowHeight + 8;
    const fraction = type.capacity > 0 ? Math.min(type.sold / type.capacity, 1) : 0;
    const color = type.remaining === 0 ? '#dc2626' : COLORS[index % COLORS.length];
    return svg(
      'g',
      { 'data-ticket-type': type.name, 'data-sold': type.sold, 'data-capacity': type.capacity },
      svg('text', { x: 0, y: y + 18, class: 'label' }, type.name),
      svg('text', { x: 0, y: y + 34, class: 'sublabel' }, `${money(type.price)}${type.visibility === 'RESTRICTED' ? ' · sponsors' : ''}`),
      svg('rect', { x: labelWidth, y: y + 4, width: barWidth, height: 26, rx: 5, class: 'capacity' }),
      svg('rect', { x: labelWidth, y: y + 4, width: Math.max(fraction * barWidth, fraction > 0 ? 3 : 0), height: 26, rx: 5, fill: color, class: 'sold' }),
      svg('text', { x: labelWidth + barWidth + 10, y: y + 22, class: 'figure' }, `${type.sold} / ${type.capacity}`),
    );
  });
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': 'Tickets sold against capacity per ticket type' }, ...rows);
}

export const salesPage: Page = (root, { conference, signedIn }) => {
  const figures = h('div', { class: 'figures' });
  const chartBox = h('div', { class: 'card chart-card' });
  const note = h('p', { class: 'muted small' });
  root.append(h('h1', {}, `Live sales · ${conference.name}`), figures, chartBox, note);

  let stopped = false;
  let loads = 0;
  const load = async () => {
    const generation = ++loads;
    try {
      const [sales, totals] = await Promise.all([
        request(SalesQuery, { conferenceId: conference.id }),
        signedIn ? revenue(conference.id) : Promise.resolve(null),
      ]);
      // An older, slower answer must not overwrite a newer one.
      if (stopped || generation !== loads) return;
      const types = sales.conference?.ticketTypes ?? [];
      const sold = types.reduce((n, t) => n + t.sold, 0);
      const capacity = types.reduce((n, t) => n + t.capacity, 0);
      const currency = conference.currency;
      figures.replaceChildren(
        ...[
        figure('Tickets sold', `${sold} / ${capacity}`, 'tickets-sold'),
        totals
          ? figure('Revenue (paid)', money({ amount: totals.paid, currency }), 'revenue')
          : figure('Revenue', 'needs the admin token', 'revenue'),
        totals ? figure('Awaiting payment', money({ amount: totals.awaitingPayment, currency }), 'awaiting-payment') : null,
        figure('Sold out', String(types.filter((t) => t.remaining === 0).length), 'sold-out'),
        ].filter((f): f is HTMLElement => f !== null),
      );
      chartBox.replaceChildren(types.length ? chart(types) : h('p', { class: 'muted' }, 'No ticket types yet.'));
      note.textContent = `Updated ${new Date().toLocaleTimeString()} from the live event stream.`;
      root.dataset.updatedAt = String(Date.now());
    } catch (error) {
      if (!stopped) note.textContent = `Cannot load sales: ${(error as Error).message}`;
    }
  };
  const refresh = debounce(() => void load(), 60);
  void load();
  const unsubscribe = onEvent((event, replayed) => {
    if (event.stream === 'tickets' && !replayed) refresh();
  });
  return () => {
    stopped = true;
    unsubscribe();
  };
};

function figure(label: string, value: string, id: string): HTMLElement {
  return h('div', { class: 'card figure', 'data-testid': id }, h('span', { class: 'muted' }, label), h('strong', {}, value));
}
