// Builds the rater's pricing inputs (accounts, rate cards, market table) once at start, from the paths in
// the service configuration; the bundled cards and market table when none are given. Errors name the file.

import { createMarketResolver } from '../core/market.js';
import type { RateBook } from '../core/pricing-context.js';
import { createRateBook } from '../core/rate-card.js';
import { err, ok, type Result } from '../core/result.js';
import { loadAccountsFile } from '../ingest/accounts-file.js';
import { loadBundledMarketTable, loadBundledRateCards, loadRateCards } from '../ingest/rate-card-files.js';
import type { PricingSetup } from './rating-service.js';

/** Rate cards from paths (or the bundled ones) as a book, with their ids for the rating history. */
export async function loadRateBook(
  paths: readonly string[],
): Promise<Result<{ rateBook: RateBook; ids: string[] }, string>> {
  const cards = paths.length === 0 ? await loadBundledRateCards() : await loadRateCards(paths);
  if (!cards.ok) return err(cards.error.message);
  const book = createRateBook(cards.value);
  if (!book.ok) return err(book.error.message);
  return ok({ rateBook: book.value, ids: cards.value.map((card) => card.id) });
}

export async function loadPricingSetup(input: {
  accountsPath: string | null;
  rateCardPaths: readonly string[];
  isReportedRulesEnabled?: boolean;
}): Promise<Result<PricingSetup, string>> {
  const accounts = input.accountsPath === null ? ok([]) : await loadAccountsFile(input.accountsPath);
  if (!accounts.ok) return err(accounts.error.message);
  const rates = await loadRateBook(input.rateCardPaths);
  if (!rates.ok) return rates;
  const table = await loadBundledMarketTable();
  if (!table.ok) return err(table.error.message);
  const isReportedRulesEnabled = input.isReportedRulesEnabled ?? true;
  return ok({
    accounts: accounts.value,
    rateBook: rates.value.rateBook,
    rateCardIds: rates.value.ids,
    markets: createMarketResolver(table.value, { isReportedRulesEnabled }),
    isReportedRulesEnabled,
  });
}
