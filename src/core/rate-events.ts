// PLACEHOLDER — the rater is being written; this file fixes its public signature so other modules compile.
import type { Account, CoreEvent } from './events.js';
import type { MarketResolver, RateBook } from './pricing-context.js';
import type { Era, MessageDecision, RatingResult } from './units.js';

export interface RatingOptions {
  /** The WABA's settings (time zone, currency, portfolio…); `defaultAccount(waba)` for unknown ones. */
  accountFor(waba: string): Account;
  rateBook: RateBook;
  markets: MarketResolver;
  /** Rate all traffic under this era's rules whatever its date (the what-if). */
  asOfRules?: Era;
  /** Apply rules marked (reported) in pricing-rules.md: the PMP-2026-10 era. Default true. */
  isReportedRulesEnabled?: boolean;
  /** Also return one decision per delivered business message (for explain). */
  withDecisions?: boolean;
}

export interface RatingOutput extends RatingResult {
  decisions: MessageDecision[];
}

/** Rates a whole set of events (any order, duplicates allowed) and returns every unit, sorted. */
export function rateEvents(_events: Iterable<CoreEvent>, _options: RatingOptions): RatingOutput {
  throw new Error('rateEvents: not implemented yet');
}
