// What the rater needs from the outside world to put a price on a unit: where a recipient's number is
// billed (market) and which rate card is in force. Implemented by market.ts and rate-card.ts.

import type { Finding, RateCategory } from './units.js';

export interface MarketResolution {
  /** ISO 3166 alpha-2 country of the recipient, or `null` when not even the calling code is known. */
  country: string | null;
  /** Meta's pricing market ("India", "Rest of Africa", "Other"…), or `null` when the country is unknown. */
  market: string | null;
  /** MARKET_FROM_CALLING_CODE, UNKNOWN_RECIPIENT or MARKET_INFERRED, naming the number. */
  finding?: Finding;
}

export interface MarketResolver {
  /**
   * The market of a recipient on a local date (the table is versioned). `waId` is the user's number in
   * E.164 digits without '+'; when it is not a number (business-scoped user ids), `countryHint` (Meta's
   * `contacts[].profile.country_code`) is used and the resolution carries a MARKET_INFERRED finding.
   */
  resolve(waId: string, localDate: string, countryHint?: string): MarketResolution;
  /**
   * `resolve` of one recipient (no country hint) on any local date, the number placed once: a batch keeps it
   * per user and does not look the number up again for each of its units.
   */
  placerOf?(waId: string): (localDate: string) => MarketResolution;
  /** Every market a unit can be placed in, whatever the date (the table's, and `Other`). */
  readonly names?: readonly string[];
  /** The same table with its reported rows off (the market splits of PMP-2026-10), for a what-if of another era. */
  withoutReported?(): MarketResolver;
}

export interface TierBand {
  /** First monthly count (1-based, inclusive) the band applies to. */
  fromCount: number;
  /** Last monthly count (inclusive), or `null` for an open end. */
  toCount: number | null;
  rateMicros: number;
}

export interface RateCard {
  /** File name without extension, e.g. "usd-2024-11-01". */
  id: string;
  /** ISO 4217, e.g. "USD". */
  currency: string;
  /** First local day the card is in force, "YYYY-MM-DD". */
  effectiveDate: string;
  title: string | null;
  provenance: string | null;
  /** market → category → rate in micros; a missing category is `n/a` on the card. */
  rates: ReadonlyMap<string, Partial<Record<RateCategory, number>>>;
  /** `${market}|${category}` → graduated bands (utility, authentication, authentication_international). */
  tiers: ReadonlyMap<string, readonly TierBand[]>;
}

export interface RateBook {
  readonly cards: readonly RateCard[];
  /** The card of this currency with the latest effective date on or before `localDate`. */
  cardInForce(currency: string, localDate: string): RateCard | undefined;
}
