// Amounts arrive in minor units (cents) with their currency, as both services keep them.
export interface Money {
  amount: number;
  currency: string;
}

export function money(value: Money): string {
  try {
    // Whole amounts without cents: "€199", "€10,000"; others in full: "€12.50".
    const whole = value.amount % 100 === 0;
    return new Intl.NumberFormat(undefined, {
      style: 'currency',
      currency: value.currency,
      minimumFractionDigits: whole ? 0 : 2,
      maximumFractionDigits: 2,
    }).format(value.amount / 100);
  } catch {
    return `${(value.amount / 100).toFixed(2)} ${value.currency}`;
  }
}

export function time(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
}
