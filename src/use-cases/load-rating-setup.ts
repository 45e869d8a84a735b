// Builds what the rater needs from files: accounts, rate cards (bundled or given) and the market table.
// Shared by the command line and the service so that both price with exactly the same inputs.

import { createHash } from 'node:crypto';
import type { Account } from '../core/events.js';
import { createMarketResolver } from '../core/market.js';
import type { MarketResolver, RateBook, RateCard } from '../core/pricing-context.js';
import { createRateBook } from '../core/rate-card.js';
import { err, ok, type Result } from '../core/result.js';
import { createAccountBook, loadAccountsFile, type AccountBook } from '../ingest/accounts-file.js';
import {
  BUNDLED_MARKET_TABLE_NAME,
  loadBundledMarketTable,
  loadBundledRateCards,
  loadRateCards,
  type MarketTableSource,
} from '../ingest/rate-card-files.js';

export interface RatingSetupInput {
  accountsPath?: string;
  /** Files or directories of rate cards; the bundled cards when empty or absent. */
  rateCardPaths?: readonly string[];
  isReportedRulesEnabled?: boolean;
}

export interface RatingSetup {
  accounts: Account[];
  accountBook: AccountBook;
  cards: RateCard[];
  rateBook: RateBook;
  markets: MarketResolver;
  isReportedRulesEnabled: boolean;
}

export interface SetupError {
  code: string;
  message: string;
}

/**
 * A rate card or market table problem as the user reads it: the command line and the service print the
 * message as is, so it leads with the documented code (docs/rate-cards.md), e.g. "BAD_RATE: usd.csv line 4: …".
 */
function withCode(error: SetupError): SetupError {
  return { ...error, message: `${error.code}: ${error.message}` };
}

/**
 * Rate cards from files and folders (the bundled cards when none are given), as a book. The cards are checked
 * against the market table they will be priced with (the bundled one unless given), so a misspelt market
 * stops loading instead of leaving that market unpriced.
 */
export async function loadRateBook(
  paths: readonly string[],
  marketTable?: MarketTableSource,
): Promise<Result<{ cards: RateCard[]; rateBook: RateBook }, SetupError>> {
  let markets = marketTable;
  if (!markets) {
    const loaded = await loadBundledMarketTable();
    if (!loaded.ok) return err(withCode(loaded.error));
    markets = { table: loaded.value, name: BUNDLED_MARKET_TABLE_NAME };
  }
  const cards =
    paths.length > 0 ? await loadRateCards([...paths], markets) : await loadBundledRateCards(markets);
  if (!cards.ok) return err(withCode(cards.error));
  const rateBook = createRateBook(cards.value);
  if (!rateBook.ok) return err(withCode(rateBook.error));
  return ok({ cards: cards.value, rateBook: rateBook.value });
}

export async function loadRatingSetup(input: RatingSetupInput): Promise<Result<RatingSetup, SetupError>> {
  let accounts: Account[] = [];
  // An empty path is a path (refused as unreadable), never "no accounts file": that would bill every WABA in
  // UTC and USD without a word.
  if (input.accountsPath !== undefined) {
    const loaded = await loadAccountsFile(input.accountsPath);
    if (!loaded.ok) return err(loaded.error);
    accounts = loaded.value;
  }
  const table = await loadBundledMarketTable();
  if (!table.ok) return err(withCode(table.error));
  const isReportedRulesEnabled = input.isReportedRulesEnabled ?? true;
  // Cards are checked under the rules they will price with (a market split only reported: MARKET_NOT_IN_FORCE).
  const rates = await loadRateBook(input.rateCardPaths ?? [], {
    table: table.value,
    name: BUNDLED_MARKET_TABLE_NAME,
    isReportedRulesEnabled,
  });
  if (!rates.ok) return rates;
  return ok({
    accounts,
    accountBook: createAccountBook(accounts),
    cards: rates.value.cards,
    rateBook: rates.value.rateBook,
    markets: createMarketResolver(table.value, { isReportedRulesEnabled }),
    isReportedRulesEnabled,
  });
}

/**
 * A digest of what pricing takes from the accounts file: each WABA's time zone, currency, portfolio, primary
 * country and authentication-international dates, in WABA order with sorted keys (the file's order and
 * layout do not matter). Stored with each rating, so that a re-rate under other accounts is said.
 */
export function accountsDigest(accounts: readonly Account[]): string {
  const sorted = [...accounts].sort((a, b) => (a.waba < b.waba ? -1 : a.waba > b.waba ? 1 : 0));
  const canonical = JSON.stringify(sorted, (_key, value: unknown) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/**
 * A digest of what pricing takes from the rate cards: each card's id, currency, effective date, every rate and
 * every volume-tier band, in card order by id with markets and categories sorted (a title or provenance note
 * changes nothing). Stored with each rating beside the card ids, so that a card edited under the same file
 * name — another rate, the same id — is told apart from the one the stored bill was priced with.
 */
export function rateCardsDigest(cards: readonly RateCard[]): string {
  const byKey = <T>(entries: Iterable<[string, T]>) =>
    [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const canonical = [...cards]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((card) => [
      card.id,
      card.currency,
      card.effectiveDate,
      byKey(card.rates).map(([market, rates]) => [
        market,
        byKey(Object.entries(rates)).map(([category, micros]) => [category, micros]),
      ]),
      byKey(card.tiers).map(([key, bands]) => [
        key,
        bands.map((band) => [band.fromCount, band.toCount, band.rateMicros]),
      ]),
    ]);
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 16);
}
