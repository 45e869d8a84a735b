import { describe, expect, it } from 'vitest';
import { CSV_COLUMNS, TotalsAccumulator, csvField, unitCsvRow, unitToJson } from './report.js';
import type { BillableUnit } from './units.js';
import { billableUnit } from '../../test/support/units.js';

describe('csvField', () => {
  it('quotes commas, quotes and line breaks (RFC 4180)', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
  });

  it('keeps text a spreadsheet would run as a formula as text, with a leading quote', () => {
    expect(csvField('=HYPERLINK("http://x","y")')).toBe('"\'=HYPERLINK(""http://x"",""y"")"');
    for (const start of ['+', '-', '@', '\t']) expect(csvField(`${start}1+1`)).toBe(`'${start}1+1`);
    expect(csvField('\rcmd')).toBe('"\'\rcmd"');
    expect(csvField('0.0014')).toBe('0.0014');
    expect(csvField('919876543210')).toBe('919876543210');
  });

  it('writes numbers and booleans as they are', () => {
    expect(csvField(-5)).toBe('-5');
    expect(csvField(12)).toBe('12');
    expect(csvField(true)).toBe('true');
  });
});

describe('unitCsvRow', () => {
  it('gives what JSON gives: the volume tier and the two flags, in columns after the contract fields', () => {
    const tiered = billableUnit({
      id: 'u_a1',
      category: 'authentication',
      tier: { count: 250_001, band: '250001:2000000', month: '2025-10' },
      isMarketInferred: true,
      isCategoryFromWebhook: true,
    });
    const row = Object.fromEntries(
      CSV_COLUMNS.map((column, i) => [column, unitCsvRow(tiered, 'UTC').split(',')[i]]),
    );
    expect(row).toMatchObject({
      id: 'u_a1',
      tier_count: '250001',
      tier_band: '250001:2000000',
      tier_month: '2025-10',
      market_inferred: 'true',
      category_from_webhook: 'true',
    });
    const plain = Object.fromEntries(
      CSV_COLUMNS.map((column, i) => [column, unitCsvRow(billableUnit({ id: 'u_b' }), 'UTC').split(',')[i]]),
    );
    expect(plain).toMatchObject({
      tier_count: '',
      tier_band: '',
      tier_month: '',
      market_inferred: 'false',
      category_from_webhook: 'false',
    });
    // The contract's fields keep their places: scripts reading by position still work.
    expect(CSV_COLUMNS.slice(0, 20).join(',')).toBe(
      'id,unit,pricing_model,era,waba,business,user,country,market,category,type,opened_at,expires_at,closed_at,messages,rate,amount,currency,rate_card,rule',
    );
  });
});

describe('local_date', () => {
  // 2025-10-01T00:54Z: an evening of September 30 in São Paulo (UTC-3), the morning of October 1 in UTC.
  const evening = billableUnit({ id: 'u_sp', openedAtMs: Date.parse('2025-10-01T00:54:06Z') });

  it("is the date of the unit's opening on its WABA's clock, in JSON and as the last CSV column", () => {
    expect(unitToJson(evening, 'America/Sao_Paulo').local_date).toBe('2025-09-30');
    expect(unitToJson(evening, 'Asia/Kolkata').local_date).toBe('2025-10-01');
    expect(unitToJson(evening, 'UTC').local_date).toBe('2025-10-01');
    expect(CSV_COLUMNS.at(-1)).toBe('local_date');
    expect(unitCsvRow(evening, 'America/Sao_Paulo').split(',').at(-1)).toBe('2025-09-30');
    // Placed after the columns that came before it: scripts reading by position keep working.
    expect(CSV_COLUMNS.indexOf('category_from_webhook')).toBe(CSV_COLUMNS.length - 2);
  });
});

describe('TotalsAccumulator', () => {
  const unit = (amountMicros: number | null): BillableUnit =>
    billableUnit({
      id: `u_${String(amountMicros)}`,
      user: '6281234567890',
      country: 'ID',
      market: 'Indonesia',
      category: 'marketing',
      rateMicros: amountMicros,
      amountMicros,
      currency: 'IDR',
      rateCard: 'idr',
    });

  it('adds exactly past 2^53 micros (9 billion IDR in a month), and the store shape keeps them exact', () => {
    const totals = new TotalsAccumulator();
    totals.add(unit(5_000_000_000_000_800));
    totals.add(unit(5_000_000_000_000_000));
    totals.add(unit(null));
    expect(totals.toJson()).toEqual({
      IDR: {
        amount: '10000000000.0008',
        units: 3,
        unpriced: 1,
        by_category: { marketing: { units: 3, unpriced: 1, amount: '10000000000.0008' } },
      },
    });
    expect(totals.toMicros()).toEqual({
      IDR: {
        amountMicros: 10_000_000_000_000_800n,
        units: 3,
        unpriced: 1,
        byCategory: { marketing: { units: 3, unpriced: 1, amountMicros: 10_000_000_000_000_800n } },
      },
    });
  });
});
