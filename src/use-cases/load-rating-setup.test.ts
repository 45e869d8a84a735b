import { describe, expect, it } from 'vitest';
import type { RateCard } from '../core/pricing-context.js';
import { loadRatingSetup, rateCardsDigest } from './load-rating-setup.js';

describe('rateCardsDigest: what pricing takes from the rate cards', () => {
  const card = (overrides: Partial<RateCard> = {}): RateCard => ({
    id: 'usd-2025-10-01',
    currency: 'USD',
    effectiveDate: '2025-10-01',
    title: 'Meta rates',
    provenance: 'transcribed',
    rates: new Map([
      ['India', { marketing: 10_700, utility: 1_400 }],
      ['Brazil', { marketing: 62_500 }],
    ]),
    tiers: new Map([['India|utility', [{ fromCount: 1, toCount: null, rateMicros: 1_400 }]]]),
    ...overrides,
  });

  it('is the same for the same rates, whatever the titles, notes and orders', () => {
    const digest = rateCardsDigest([card()]);
    expect(digest).toMatch(/^[0-9a-f]{16}$/);
    const reordered = card({
      title: 'another title',
      provenance: null,
      rates: new Map([
        ['Brazil', { marketing: 62_500 }],
        ['India', { utility: 1_400, marketing: 10_700 }],
      ]),
    });
    expect(rateCardsDigest([reordered])).toBe(digest);
    const other = card({ id: 'usd-2024-11-01', effectiveDate: '2024-11-01' });
    expect(rateCardsDigest([card(), other])).toBe(rateCardsDigest([other, card()]));
  });

  it('differs when a rate, a band, the currency, the date or the id differs', () => {
    const digest = rateCardsDigest([card()]);
    const variants: Partial<RateCard>[] = [
      {
        rates: new Map([
          ['India', { marketing: 10_701, utility: 1_400 }],
          ['Brazil', { marketing: 62_500 }],
        ]),
      },
      { tiers: new Map([['India|utility', [{ fromCount: 1, toCount: null, rateMicros: 1_300 }]]]) },
      { currency: 'EUR' },
      { effectiveDate: '2025-10-02' },
      { id: 'usd-2025-10-01-b' },
    ];
    for (const variant of variants) expect(rateCardsDigest([card(variant)])).not.toBe(digest);
  });

  it('of the bundled cards, loaded twice: the same', async () => {
    const [first, second] = await Promise.all([loadRatingSetup({}), loadRatingSetup({})]);
    if (!first.ok || !second.ok) throw new Error('the bundled cards did not load');
    expect(rateCardsDigest(first.value.cards)).toBe(rateCardsDigest(second.value.cards));
  });
});

describe('loadRatingSetup', () => {
  it('an empty accounts path is refused as unreadable, never taken as "no accounts file" (UTC, USD)', async () => {
    const setup = await loadRatingSetup({ accountsPath: '' });
    expect(setup).toMatchObject({ ok: false, error: { code: 'UNREADABLE_SOURCE', file: '' } });
  });
});
