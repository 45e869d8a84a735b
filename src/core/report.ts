// The public JSON shapes of contract.md §4: units, pending messages, totals and findings as users script
// against them (snake_case, decimal strings for money, ISO instants). Pure formatting, no rating here.

import { formatInstant, localDate } from './calendar.js';
import { exactMicros, formatMicros, sumMicros, type Micros } from './money.js';
import type { BillableUnit, Finding, PendingMessage, RatingResult } from './units.js';

export interface UnitJson {
  id: string;
  unit: BillableUnit['unit'];
  pricing_model: BillableUnit['pricingModel'];
  era: BillableUnit['era'];
  waba: string;
  business: string;
  user: string;
  country: string | null;
  market: string | null;
  category: BillableUnit['category'];
  type: BillableUnit['type'];
  opened_at: string;
  /**
   * The date (YYYY-MM-DD) of `opened_at` on the clock of the unit's WABA (its accounts-file time zone): the
   * date that chose its era, rate card, free allowance and tier month, and the month whose bill it is on
   * (`rate --month`, `month=`). Given wherever units are answered with their WABA's time zone known.
   */
  local_date?: string;
  expires_at: string | null;
  closed_at?: string;
  messages: string[];
  rate: string | null;
  amount: string | null;
  currency: string;
  rate_card: string | null;
  /**
   * The volume-tier position of a tiered charge. `count` is the portfolio's running count of its market ×
   * category × month; the service answers it `null` to an API key that may not read every WABA of the
   * portfolio (the count holds the mates' charges: `withheldTierCount`).
   */
  tier?: { count: number | null; band: string; month: string };
  market_inferred?: boolean;
  /** The category came from Meta's status webhook, not from a send log line (finding CATEGORY_FROM_WEBHOOK). */
  category_from_webhook?: boolean;
  rule: string;
}

export interface TotalsJson {
  [currency: string]: {
    amount: string;
    units: number;
    /** Units that could not be priced (see findings): counted in `units`, nothing in `amount`. Only when > 0. */
    unpriced?: number;
    by_category: Record<string, { units: number; unpriced?: number; amount: string }>;
  };
}

export interface PendingJson {
  id: string;
  waba: string;
  business: string;
  user: string;
  sent_at: string;
}

export interface RatingJson {
  units: UnitJson[];
  pending: PendingJson[];
  totals: TotalsJson;
  findings: Finding[];
}

/**
 * A unit as contract §4 writes it; with `timeZone`, its WABA's (the one the rating used), its `local_date`.
 * The date is worked out here, from the instant and the zone, with the rater's own `localDate`: never stored,
 * so the stored bill and a re-rate's comparison of units hold nothing that could disagree with the instant.
 */
export function unitToJson(unit: BillableUnit, timeZone?: string): UnitJson {
  const json: UnitJson = {
    id: unit.id,
    unit: unit.unit,
    pricing_model: unit.pricingModel,
    era: unit.era,
    waba: unit.waba,
    business: unit.business,
    user: unit.user,
    country: unit.country,
    market: unit.market,
    category: unit.category,
    type: unit.type,
    opened_at: formatInstant(unit.openedAtMs),
    ...(timeZone === undefined ? {} : { local_date: localDate(unit.openedAtMs, timeZone) }),
    expires_at: unit.expiresAtMs === null ? null : formatInstant(unit.expiresAtMs),
    messages: unit.messages,
    rate: unit.rateMicros === null ? null : formatMicros(unit.rateMicros),
    amount: unit.amountMicros === null ? null : formatMicros(unit.amountMicros),
    currency: unit.currency,
    rate_card: unit.rateCard,
    rule: unit.rule,
  };
  if (unit.closedAtMs !== undefined) json.closed_at = formatInstant(unit.closedAtMs);
  if (unit.tier) json.tier = { ...unit.tier };
  if (unit.isMarketInferred) json.market_inferred = true;
  if (unit.isCategoryFromWebhook) json.category_from_webhook = true;
  return json;
}

/**
 * A unit's JSON with its tier count withheld (`tier.count: null`), the band and month kept: what the service
 * answers a key that may not read every WABA of the unit's portfolio, whose count holds the mates' charges.
 */
export function withheldTierCount(json: UnitJson): UnitJson {
  return json.tier === undefined ? json : { ...json, tier: { ...json.tier, count: null } };
}

export function pendingToJson(pending: PendingMessage): PendingJson {
  return {
    id: pending.id,
    waba: pending.waba,
    business: pending.business,
    user: pending.user,
    sent_at: formatInstant(pending.sentAtMs),
  };
}

/**
 * Running totals per currency in micros; units that could not be priced count as units and as `unpriced`,
 * but add nothing (a total with unpriced units is a floor, not the bill).
 */
export class TotalsAccumulator {
  // Sums are bigints: a month of millions of messages in a currency such as IDR passes 2^53 micros.
  private readonly byCurrency = new Map<
    string,
    {
      amountMicros: bigint;
      units: number;
      unpriced: number;
      byCategory: Map<string, { units: number; unpriced: number; amountMicros: bigint }>;
    }
  >();

  add(unit: BillableUnit): void {
    let currency = this.byCurrency.get(unit.currency);
    if (!currency) {
      currency = { amountMicros: 0n, units: 0, unpriced: 0, byCategory: new Map() };
      this.byCurrency.set(unit.currency, currency);
    }
    const amountMicros = BigInt(unit.amountMicros ?? 0);
    const unpriced = unit.amountMicros === null ? 1 : 0;
    currency.units += 1;
    currency.unpriced += unpriced;
    currency.amountMicros += amountMicros;
    let category = currency.byCategory.get(unit.category);
    if (!category) {
      category = { units: 0, unpriced: 0, amountMicros: 0n };
      currency.byCategory.set(unit.category, category);
    }
    category.units += 1;
    category.unpriced += unpriced;
    category.amountMicros += amountMicros;
  }

  /** Totals per currency in micros, the shape the store aggregates (exact: bigints past 2^53 micros). */
  toMicros(): Record<string, MicrosTotals> {
    const plain: Record<string, MicrosTotals> = {};
    for (const [currency, totals] of this.byCurrency) {
      const byCategory: Record<string, CategoryTotals> = {};
      for (const [category, entry] of totals.byCategory) {
        byCategory[category] = { ...entry, amountMicros: exactMicros(entry.amountMicros) };
      }
      plain[currency] = {
        amountMicros: exactMicros(totals.amountMicros),
        units: totals.units,
        unpriced: totals.unpriced,
        byCategory,
      };
    }
    return plain;
  }

  toJson(): TotalsJson {
    return totalsToJson(
      Object.fromEntries(
        [...this.byCurrency].map(([currency, totals]) => [
          currency,
          { ...totals, byCategory: Object.fromEntries(totals.byCategory) },
        ]),
      ),
    );
  }
}

export interface CategoryTotals {
  units: number;
  /** Of `units`, those that could not be priced (amount null); absent in ratings stored before it was counted. */
  unpriced?: number;
  /** Exact: a bigint past 2^53 micros. */
  amountMicros: Micros;
}

/** Totals per currency in micros (what the store aggregates), before formatting. */
export interface MicrosTotals {
  /** Exact: a bigint past 2^53 micros. */
  amountMicros: Micros;
  units: number;
  /** Of `units`, those that could not be priced (amount null): `amountMicros` holds nothing for them. */
  unpriced?: number;
  byCategory: Record<string, CategoryTotals>;
}

/** Per-currency totals added up exactly (a WABA absent from a rating's units adds nothing). */
export function sumTotals(
  parts: readonly (Record<string, MicrosTotals> | undefined)[],
): Record<string, MicrosTotals> {
  const sum: Record<string, MicrosTotals> = {};
  for (const part of parts) {
    for (const [currency, entry] of Object.entries(part ?? {})) {
      const into = (sum[currency] ??= { amountMicros: 0, units: 0, byCategory: {} });
      into.amountMicros = sumMicros(into.amountMicros, entry.amountMicros);
      into.units += entry.units;
      if (entry.unpriced) into.unpriced = (into.unpriced ?? 0) + entry.unpriced;
      for (const [category, item] of Object.entries(entry.byCategory)) {
        const to = (into.byCategory[category] ??= { units: 0, amountMicros: 0 });
        to.amountMicros = sumMicros(to.amountMicros, item.amountMicros);
        to.units += item.units;
        if (item.unpriced) to.unpriced = (to.unpriced ?? 0) + item.unpriced;
      }
    }
  }
  return sum;
}

/** Contract §4 `totals`: currencies and categories sorted, amounts as exact decimal strings. */
export function totalsToJson(totals: Record<string, MicrosTotals>): TotalsJson {
  const json: TotalsJson = {};
  for (const currency of Object.keys(totals).sort()) {
    const entry = totals[currency]!;
    const byCategory: TotalsJson[string]['by_category'] = {};
    for (const category of Object.keys(entry.byCategory).sort()) {
      const item = entry.byCategory[category]!;
      byCategory[category] = {
        units: item.units,
        ...(item.unpriced ? { unpriced: item.unpriced } : {}),
        amount: formatMicros(item.amountMicros),
      };
    }
    json[currency] = {
      amount: formatMicros(entry.amountMicros),
      units: entry.units,
      ...(entry.unpriced ? { unpriced: entry.unpriced } : {}),
      by_category: byCategory,
    };
  }
  return json;
}

export function totalsOf(units: Iterable<BillableUnit>): TotalsJson {
  const accumulator = new TotalsAccumulator();
  for (const unit of units) accumulator.add(unit);
  return accumulator.toJson();
}

/** A rating as contract §4's document; `timeZoneOf` gives each WABA's time zone (its units' `local_date`). */
export function ratingToJson(result: RatingResult, timeZoneOf: (waba: string) => string): RatingJson {
  return {
    units: result.units.map((unit) => unitToJson(unit, timeZoneOf(unit.waba))),
    pending: result.pending.map(pendingToJson),
    totals: totalsOf(result.units),
    findings: result.findings,
  };
}

/**
 * Columns of a unit as a CSV row: the fields of contract §4 (messages space-separated), then what JSON gives
 * only on some units — the volume tier (count, band, month) and the two flags, `true` or `false` — so that a
 * spreadsheet user sees as much as a JSON one; then `local_date`, the opening's date on the WABA's clock
 * (the UTC `opened_at` puts a São Paulo evening on the next day, or the next month). New columns go at the
 * end: scripts reading by position keep working.
 */
export const CSV_COLUMNS = [
  'id',
  'unit',
  'pricing_model',
  'era',
  'waba',
  'business',
  'user',
  'country',
  'market',
  'category',
  'type',
  'opened_at',
  'expires_at',
  'closed_at',
  'messages',
  'rate',
  'amount',
  'currency',
  'rate_card',
  'rule',
  'tier_count',
  'tier_band',
  'tier_month',
  'market_inferred',
  'category_from_webhook',
  'local_date',
] as const;

/**
 * One CSV cell (RFC 4180 quoting). Text that a spreadsheet would run as a formula (it starts with `=`, `+`,
 * `-`, `@`, a tab or a carriage return: a business name or id a client wrote) is kept as text with a leading
 * `'` (OWASP's CSV-injection advice); numbers are written as they are.
 */
export function csvField(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  const plain = String(value);
  const text = typeof value === 'string' && /^[=+\-@\t\r]/.test(plain) ? `'${plain}` : plain;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A unit as a CSV row; `timeZone` is its WABA's, for the `local_date` column (`unitToJson`). */
export function unitCsvRow(unit: BillableUnit, timeZone: string): string {
  return unitJsonCsvRow(unitToJson(unit, timeZone));
}

/** A unit's JSON (`unitToJson`, maybe `withheldTierCount`) as a CSV row: a withheld count is an empty cell. */
export function unitJsonCsvRow(json: UnitJson): string {
  return CSV_COLUMNS.map((column) => {
    switch (column) {
      case 'messages':
        return csvField(json.messages.join(' '));
      case 'tier_count':
        return csvField(json.tier?.count);
      case 'tier_band':
        return csvField(json.tier?.band);
      case 'tier_month':
        return csvField(json.tier?.month);
      case 'market_inferred':
        return csvField(json.market_inferred === true);
      case 'category_from_webhook':
        return csvField(json.category_from_webhook === true);
      default:
        return csvField(json[column]);
    }
  }).join(',');
}

/** Words after a total that holds unpriced units: the amount is a floor, and the findings say why. */
export function unpricedNote(unpriced: number | undefined): string {
  return unpriced ? ` (${unpriced} not priced, not in the amount: see findings)` : '';
}
