// Builds the real pricing context (bundled market table and rate cards) and readable event builders for
// rating tests. No doubles: the rater is always tested with the data users get.

import {
  defaultAccount,
  type Account,
  type CoreEvent,
  type TemplateCategory,
} from '../../src/core/events.js';
import { createMarketResolver } from '../../src/core/market.js';
import { createRateBook } from '../../src/core/rate-card.js';
import type { RateCard } from '../../src/core/pricing-context.js';
import { rateEvents, type RatingOptions, type RatingOutput } from '../../src/core/rate-events.js';
import { loadBundledMarketTable, loadBundledRateCards } from '../../src/ingest/rate-card-files.js';

export interface Pricing {
  cards: RateCard[];
  markets: ReturnType<typeof createMarketResolver>;
  marketsWithoutReported: ReturnType<typeof createMarketResolver>;
}

let cached: Promise<Pricing> | undefined;

export function loadPricing(): Promise<Pricing> {
  cached ??= (async () => {
    const table = await loadBundledMarketTable();
    if (!table.ok) throw new Error(table.error.message);
    const cards = await loadBundledRateCards();
    if (!cards.ok) throw new Error(cards.error.message);
    return {
      cards: cards.value,
      markets: createMarketResolver(table.value, { isReportedRulesEnabled: true }),
      marketsWithoutReported: createMarketResolver(table.value, { isReportedRulesEnabled: false }),
    };
  })();
  return cached;
}

export interface RateOptions extends Partial<Omit<RatingOptions, 'accountFor'>> {
  accounts?: Account[];
  cards?: RateCard[];
}

export async function rate(events: CoreEvent[], options: RateOptions = {}): Promise<RatingOutput> {
  const pricing = await loadPricing();
  const book = createRateBook(options.cards ?? pricing.cards);
  if (!book.ok) throw new Error(book.error.message);
  const accounts = new Map((options.accounts ?? []).map((a) => [a.waba, a]));
  const { accounts: _a, cards: _c, ...rest } = options;
  return rateEvents(events, {
    accountFor: (waba) => accounts.get(waba) ?? defaultAccount(waba),
    rateBook: book.value,
    markets: options.isReportedRulesEnabled === false ? pricing.marketsWithoutReported : pricing.markets,
    ...rest,
  });
}

/** Event builders: `at` is an ISO instant; ids are readable. */
export const INDIA = '919876543210';
export const at = (iso: string): number => Date.parse(iso);
export const hours = (base: string, h: number): number => Date.parse(base) + h * 3_600_000;

export interface Party {
  waba?: string;
  business?: string;
  user?: string;
}

export function inbound(atMs: number, id: string, party: Party = {}, hasReferral = false): CoreEvent {
  return {
    kind: 'inbound',
    atMs,
    id,
    waba: party.waba ?? 'W1',
    business: party.business ?? 'PN1',
    user: party.user ?? INDIA,
    hasReferral,
  };
}

/** A business message and its delivery one second later (or `failed` / never, with `outcome`). */
export function send(
  atMs: number,
  id: string,
  template: TemplateCategory | null,
  party: Party = {},
  outcome: 'delivered' | 'failed' | 'pending' | 'read' = 'delivered',
): CoreEvent[] {
  const events: CoreEvent[] = [
    {
      kind: 'outbound',
      atMs,
      id,
      waba: party.waba ?? 'W1',
      business: party.business ?? 'PN1',
      user: party.user ?? INDIA,
      template,
    },
  ];
  if (outcome !== 'pending') events.push({ kind: 'status', atMs: atMs + 1000, id, status: outcome });
  return events;
}

/** A fixed shuffle (a linear congruential generator): another order of the same lines, the same for a seed. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const copy = [...items];
  let state = seed;
  for (let i = copy.length - 1; i > 0; i--) {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    const j = state % (i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/** Every order of the items (n! of them: for a handful). */
export function permutationsOf<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, index) =>
    permutationsOf([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]),
  );
}

/** The events in time order (a stream's order). */
export const byTime = (events: readonly CoreEvent[]): CoreEvent[] =>
  [...events].sort((a, b) => a.atMs - b.atMs);
