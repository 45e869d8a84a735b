// Builds what the rater needs from files: accounts, rate cards (bundled or given) and the market table.
// Shared by the command line and the service so that both price with exactly the same inputs.

import type { Account } from '../core/events.js';
import { createMarketResolver } from '../core/market.js';
import type { MarketResolver, RateBook, RateCard } from '../core/pricing-context.js';
import { createRateBook } from '../core/rate-card.js';
import { err, ok, type Result } from '../core/result.js';
import { createAccountBook, loadAccountsFile, type AccountBook } from '../ingest/accounts-file.js';
import { loadBundledMarketTable, loadBundledRateCards, loadRateCards } from '../ingest/rate-card-files.js';

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

/** Rate cards from files and folders (the bundled cards when none are given), as a book. */
export async function loadRateBook(
  paths: readonly string[],
): Promise<Result<{ cards: RateCard[]; rateBook: RateBook }, SetupError>> {
  const cards = paths.length > 0 ? await loadRateCards([...paths]) : await loadBundledRateCards();
  if (!cards.ok) return err(cards.error);
  const rateBook = createRateBook(cards.value);
  if (!rateBook.ok) return err(rateBook.error);
  return ok({ cards: cards.value, rateBook: rateBook.value });
}

export async function loadRatingSetup(input: RatingSetupInput): Promise<Result<RatingSetup, SetupError>> {
  let accounts: Account[] = [];
  if (input.accountsPath) {
    const loaded = await loadAccountsFile(input.accountsPath);
    if (!loaded.ok) return err(loaded.error);
    accounts = loaded.value;
  }
  const rates = await loadRateBook(input.rateCardPaths ?? []);
  if (!rates.ok) return rates;
  const table = await loadBundledMarketTable();
  if (!table.ok) return err(table.error);
  const isReportedRulesEnabled = input.isReportedRulesEnabled ?? true;
  return ok({
    accounts,
    accountBook: createAccountBook(accounts),
    cards: rates.value.cards,
    rateBook: rates.value.rateBook,
    markets: createMarketResolver(table.value, { isReportedRulesEnabled }),
    isReportedRulesEnabled,
  });
}
