import { describe, expect, it } from 'vitest';
import { TotalsAccumulator, csvField } from './report.js';
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
