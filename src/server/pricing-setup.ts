// The service's pricing inputs (accounts, rate cards, market table), built once at start from the paths in
// its configuration by the same use-case as the command line, so both price with exactly the same inputs.

import type { Account } from '../core/events.js';
import { createMarketResolver } from '../core/market.js';
import type { RateCard } from '../core/pricing-context.js';
import { createRateBook } from '../core/rate-card.js';
import {
  BUNDLED_MARKET_TABLE_NAME,
  loadBundledMarketTable,
  parseRateCardTexts,
  type MarketTableSource,
  type RateCardText,
} from '../ingest/rate-card-files.js';
import { err, ok, type Result } from '../core/result.js';
import { loadRateBook as loadCards, loadRatingSetup } from '../use-cases/load-rating-setup.js';
import type { PricingSetup } from './rating-service.js';

/** The bundled market table, under the service's rules, as the cards are checked against it. */
async function bundledMarkets(isReportedRulesEnabled: boolean): Promise<Result<MarketTableSource, string>> {
  const table = await loadBundledMarketTable();
  if (!table.ok) return err(table.error.message);
  return ok({ table: table.value, name: BUNDLED_MARKET_TABLE_NAME, isReportedRulesEnabled });
}

/**
 * Rate cards from paths (or the bundled ones), checked to form a book (no two in force on one day) and against
 * the market table under the service's rules (a market only the reported rules split off: MARKET_NOT_IN_FORCE).
 */
export async function loadRateCards(
  paths: readonly string[],
  isReportedRulesEnabled = true,
): Promise<Result<RateCard[], string>> {
  const markets = await bundledMarkets(isReportedRulesEnabled);
  if (!markets.ok) return markets;
  const rates = await loadCards(paths, markets.value);
  if (!rates.ok) return err(rates.error.message);
  return ok(rates.value.cards);
}

/**
 * Rate cards from their texts (`POST /v1/rerate`'s `rate_cards`), checked as `loadRateCards` checks files: a text
 * named with "tiers" is a volume-tier file.
 */
export async function parseRateCards(
  texts: readonly RateCardText[],
  isReportedRulesEnabled = true,
): Promise<Result<RateCard[], string>> {
  const markets = await bundledMarkets(isReportedRulesEnabled);
  if (!markets.ok) return markets;
  const cards = parseRateCardTexts(texts, markets.value);
  if (!cards.ok) return err(`${cards.error.code}: ${cards.error.message}`);
  return ok(cards.value);
}

export async function loadPricingSetup(input: {
  accountsPath: string | null;
  rateCardPaths: readonly string[];
  isReportedRulesEnabled?: boolean;
}): Promise<Result<PricingSetup, string>> {
  const setup = await loadRatingSetup({
    ...(input.accountsPath === null ? {} : { accountsPath: input.accountsPath }),
    rateCardPaths: input.rateCardPaths,
    ...(input.isReportedRulesEnabled === undefined
      ? {}
      : { isReportedRulesEnabled: input.isReportedRulesEnabled }),
  });
  if (!setup.ok) return err(setup.error.message);
  return ok({
    accounts: setup.value.accounts,
    rateBook: setup.value.rateBook,
    cards: setup.value.cards,
    markets: setup.value.markets,
    isReportedRulesEnabled: setup.value.isReportedRulesEnabled,
  });
}

/** A PricingSetup from accounts and cards already loaded (a worker thread's copy of the server's). */
export async function pricingSetupFrom(input: {
  accounts: readonly Account[];
  cards: readonly RateCard[];
  isReportedRulesEnabled: boolean;
}): Promise<Result<PricingSetup, string>> {
  const rateBook = createRateBook([...input.cards]);
  if (!rateBook.ok) return err(rateBook.error.message);
  const table = await loadBundledMarketTable();
  if (!table.ok) return err(table.error.message);
  return ok({
    accounts: input.accounts,
    rateBook: rateBook.value,
    cards: input.cards,
    markets: createMarketResolver(table.value, { isReportedRulesEnabled: input.isReportedRulesEnabled }),
    isReportedRulesEnabled: input.isReportedRulesEnabled,
  });
}

/** How many days after its effective date the newest card of a currency may be the one in force, unsaid. */
export const STALE_RATE_CARD_DAYS = 183;

const DAY_MS = 86_400_000;

/**
 * A warning for each currency whose newest loaded card took effect more than STALE_RATE_CARD_DAYS before
 * `nowMs`: the service prices today's traffic from it, whatever Meta charges today, and nothing else says so
 * (the bundled community cards end in October 2025). Meta publishes new rates several times a year.
 */
export function staleRateCardWarnings(cards: readonly RateCard[], nowMs: number): string[] {
  const newest = new Map<string, RateCard>();
  for (const card of cards) {
    const kept = newest.get(card.currency);
    if (kept === undefined || card.effectiveDate > kept.effectiveDate) newest.set(card.currency, card);
  }
  const warnings: string[] = [];
  for (const card of [...newest.values()].sort((a, b) => a.currency.localeCompare(b.currency))) {
    const days = Math.floor((nowMs - Date.parse(`${card.effectiveDate}T00:00:00Z`)) / DAY_MS);
    if (!(days > STALE_RATE_CARD_DAYS)) continue;
    warnings.push(
      `the newest ${card.currency} rate card loaded, ${card.id}, took effect ${card.effectiveDate}, ${days} days ago: ` +
        `today's ${card.currency} charges are priced from it, whatever Meta charges now; load Meta's current ` +
        `rate cards (WAMETER_RATE_CARDS or the config file's "rateCards"; docs/rate-cards.md)`,
    );
  }
  return warnings;
}
