// The public purchase form, as an anonymous buyer uses it: no token is sent, whatever the
// organiser has pasted. Ticketing's errors (sold out, a bad e-mail address, sale closed) are
// shown in plain words next to the form; ticketing stays the judge of what is valid.
import type { Page } from '../main';
import type { PublicTicketTypesQuery as PublicTypes } from '../gql/graphql';
import { GraphQLRequestError, request } from '../client';
import { h } from '../dom';
import { money } from '../format';
import {
  BuyTicketMutation,
  CancelOwnPurchaseMutation,
  OwnPurchaseQuery,
  PublicTicketTypesQuery,
} from '../operations';
import { forgetPurchase, heldPurchases, keepPurchase } from '../purchases';

type TicketType = NonNullable<PublicTypes['conference']>['ticketTypes'][number];

function plainError(error: unknown, type: TicketType | undefined): string {
  if (!(error instanceof GraphQLRequestError)) return `Something went wrong: ${String(error)}`;
  switch (error.code) {
    case 'SOLD_OUT':
      return type && type.remaining > 0
        ? `Only ${type.remaining} ${type.name} ticket${type.remaining === 1 ? '' : 's'} left: choose fewer.`
        : `Sorry, ${type?.name ?? 'this ticket type'} is sold out.`;
    case 'SALE_CLOSED':
      return `Sales for ${type?.name ?? 'this ticket type'} are closed.`;
    case 'NETWORK':
      return 'The ticket shop cannot be reached right now. Please try again in a moment.';
    case 'BAD_USER_INPUT':
      // Ticketing names the field and what is wrong with it; a buyer knows the form's labels.
      return error.message
        .replace(/^purchaser\.email /, 'The e-mail address ')
        .replace(/^purchaser\.name /, 'The name ')
        .replace(/^lines\.\d+\.quantity /, 'The number of tickets ');
    default:
      return error.message;
  }
}

/** `crypto.randomUUID` exists only in secure contexts; a dashboard opened over plain HTTP on
 * a LAN address is not one, and still needs keys. */
function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export const buyPage: Page = (root, { conference }) => {
  const select = h('select', { name: 'ticketType', required: true, 'aria-label': 'Ticket type' });
  const quantity = h('input', { name: 'quantity', type: 'number', min: 1, max: 10, value: 1, required: true });
  const name = h('input', { name: 'name', type: 'text', autocomplete: 'name', required: true, placeholder: 'Ada Lovelace' });
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'email', required: true, placeholder: 'ada@example.org' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Buy');
  const outcome = h('div', { class: 'outcome', 'data-testid': 'purchase-outcome', role: 'status', 'aria-live': 'polite' });
  // The browser's own checks would hide ticketing's answer behind a tooltip: `novalidate`
  // lets every mistake come back from ticketing and be shown the same way.
  const form = h(
    'form',
    { class: 'card buy', novalidate: true },
    h('label', {}, 'Ticket', select),
    h('label', {}, 'How many', quantity),
    h('label', {}, 'Your name', name),
    h('label', {}, 'E-mail', email),
    submit,
  );
  const mine = h('ul', { class: 'own-purchases', 'data-testid': 'own-purchases' });
  root.append(
    h('h1', {}, `Buy a ticket · ${conference.name}`),
    form,
    outcome,
    h('h2', {}, 'Your purchases'),
    mine,
  );

  // Each purchase this browser made, read back from ticketing with its access token.
  const showOwnPurchases = async () => {
    const items = await Promise.all(
      heldPurchases().map(async (held) => {
        try {
          const data = await request(OwnPurchaseQuery, held, { authenticated: false });
          return { held, purchase: data.ticketPurchase };
        } catch {
          return { held, purchase: null };
        }
      }),
    );
    mine.replaceChildren(
      ...items.map(({ held, purchase }) => {
        if (!purchase) {
          return h('li', { class: 'muted', 'data-purchase-id': held.id }, 'A purchase that can no longer be read.');
        }
        const tickets = purchase.lines.map((l) => `${l.quantity} × ${l.ticketType?.name ?? 'ticket'}`).join(', ');
        const item = h(
          'li',
          { 'data-purchase-id': purchase.id, 'data-status': purchase.status, 'data-testid': 'own-purchase' },
          `${purchase.purchaser?.name ?? ''}: ${tickets}, ${money(purchase.total)} · ${purchase.status.replace('_', ' ').toLowerCase()}`,
        );
        if (purchase.status === 'PENDING_PAYMENT') {
          const cancel = h('button', { type: 'button' }, 'Cancel');
          cancel.addEventListener('click', async () => {
            cancel.disabled = true;
            try {
              await request(CancelOwnPurchaseMutation, held, { authenticated: false });
            } catch (error) {
              outcome.replaceChildren(h('p', { class: 'error' }, plainError(error, undefined)));
            }
            void showOwnPurchases();
            void loadTypes().catch(() => {});
          });
          item.append(' ', cancel);
        } else if (purchase.status !== 'PAID') {
          const forget = h('button', { type: 'button' }, 'Forget');
          forget.addEventListener('click', () => {
            forgetPurchase(purchase.id);
            void showOwnPurchases();
          });
          item.append(' ', forget);
        }
        return item;
      }),
    );
  };

  let types: TicketType[] = [];
  // One key per intended purchase: a double click or a retry after a lost answer books once.
  let idempotencyKey = newKey();
  form.addEventListener('input', () => {
    idempotencyKey = newKey();
  });

  const loadTypes = async () => {
    const data = await request(PublicTicketTypesQuery, { conferenceId: conference.id }, { authenticated: false });
    const previous = select.value;
    types = (data.conference?.ticketTypes ?? []).filter((t) => t.visibility === 'PUBLIC');
    select.replaceChildren(
      ...types.map((t) =>
        h(
          'option',
          { value: t.id },
          `${t.name} · ${money(t.price)}${t.remaining === 0 ? ' · sold out' : ` · ${t.remaining} left`}${t.onSale ? '' : ' · not on sale'}`,
        ),
      ),
    );
    if (types.some((t) => t.id === previous)) select.value = previous;
  };
  void loadTypes().catch((error) => {
    outcome.replaceChildren(h('p', { class: 'error' }, plainError(error, undefined)));
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const type = types.find((t) => t.id === select.value);
    submit.disabled = true;
    outcome.replaceChildren(h('p', { class: 'muted' }, 'Booking…'));
    try {
      const data = await request(
        BuyTicketMutation,
        {
          input: {
            purchaser: { name: name.value, email: email.value },
            lines: [{ ticketTypeId: select.value, quantity: Number(quantity.value) || 0 }],
          },
          idempotencyKey,
        },
        { authenticated: false },
      );
      const purchase = data.createTicketPurchase;
      if (purchase.accessToken) keepPurchase({ id: purchase.id, accessToken: purchase.accessToken });
      outcome.replaceChildren(
        h('p', { class: 'success', 'data-purchase-id': purchase.id },
          `Booked: ${purchase.ticketCount} ticket${purchase.ticketCount === 1 ? '' : 's'}, ${money(purchase.total)}.`,
          purchase.expiresAt ? ` Please pay by ${new Date(purchase.expiresAt).toLocaleString()}; the seats are held until then.` : '',
        ),
      );
      idempotencyKey = newKey();
    } catch (error) {
      outcome.replaceChildren(h('p', { class: 'error', 'data-code': error instanceof GraphQLRequestError ? error.code ?? '' : '' }, plainError(error, type)));
    } finally {
      submit.disabled = false;
      void loadTypes().catch(() => {});
      void showOwnPurchases();
    }
  });
  void showOwnPurchases();
  return () => {};
};
