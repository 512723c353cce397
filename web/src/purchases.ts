// What an anonymous buyer holds: for each purchase made in this browser, its id and the
// access token ticketing returned with it, the purchase's only credential. They live in this
// browser's storage (like a booking confirmation link would in a mailbox); anyone with both
// may read and cancel the purchase, nobody without the token can.
const STORAGE_KEY = 'conftools.purchases';

export interface HeldPurchase {
  id: string;
  accessToken: string;
}

export function heldPurchases(): HeldPurchase[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '[]');
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (p): p is HeldPurchase =>
        typeof p === 'object' && p !== null && typeof p.id === 'string' && typeof p.accessToken === 'string',
    );
  } catch {
    return [];
  }
}

export function keepPurchase(held: HeldPurchase): void {
  const all = heldPurchases().filter((p) => p.id !== held.id);
  all.unshift(held);
  // A browser is not an archive: the latest few are enough to pay, check or cancel.
  localStorage.setItem(STORAGE_KEY, JSON.stringify(all.slice(0, 20)));
}

export function forgetPurchase(id: string): void {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(heldPurchases().filter((p) => p.id !== id)));
}
