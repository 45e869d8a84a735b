// The service's pricing inputs (accounts, rate cards, market table), built once at start from the paths in
// its configuration by the same use-case as the command line, so both price with exactly the same inputs.

import type { RateBook } from '../core/pricing-context.js';
import { err, ok, type Result } from '../core/result.js';
import { loadRateBook as loadCards, loadRatingSetup } from '../use-cases/load-rating-setup.js';
import type { PricingSetup } from './rating-service.js';

/** Rate cards from paths (or the bundled ones) as a book, with their ids for the rating history. */
export async function loadRateBook(
  paths: readonly string[],
): Promise<Result<{ rateBook: RateBook; ids: string[] }, string>> {
  const rates = await loadCards(paths);
  if (!rates.ok) return err(rates.error.message);
  return ok({ rateBook: rates.value.rateBook, ids: rates.value.cards.map((card) => card.id) });
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
    rateCardIds: setup.value.cards.map((card) => card.id),
    markets: setup.value.markets,
    isReportedRulesEnabled: setup.value.isReportedRulesEnabled,
  });
}
