import { describe, expect, it } from 'vitest';
import { MoneyRangeError, formatMicros, microsOf, parseMicros, sumMicros, type Micros } from './money.js';

describe('money', () => {
  it('parses rate strings exactly, without floats', () => {
    expect(parseMicros('0.0014')).toEqual({ ok: true, value: 1400 });
    expect(parseMicros('0.1')).toEqual({ ok: true, value: 100_000 });
    expect(parseMicros('12')).toEqual({ ok: true, value: 12_000_000 });
    expect(parseMicros('0.123456')).toEqual({ ok: true, value: 123_456 });
    expect(parseMicros('0.12345600')).toEqual({ ok: true, value: 123_456 });
    expect(parseMicros('-0.5')).toEqual({ ok: true, value: -500_000 });
  });

  it('refuses what is not an exact decimal', () => {
    for (const bad of ['', 'abc', '1e-3', '0.1234567', '1,5', '$0.01']) {
      const parsed = parseMicros(bad);
      expect(parsed.ok, bad).toBe(false);
    }
  });

  it('prints the shortest exact decimal', () => {
    expect(formatMicros(1400)).toBe('0.0014');
    expect(formatMicros(0)).toBe('0');
    expect(formatMicros(2_500_000)).toBe('2.5');
    expect(formatMicros(-1)).toBe('-0.000001');
    expect(formatMicros(10_000_000_000_000_800n)).toBe('10000000000.0008');
    expect(formatMicros(-2_500_000n)).toBe('-2.5');
    expect(formatMicros(0n)).toBe('0');
  });

  it('round-trips and sums exactly where floats would drift', () => {
    let total: Micros = 0;
    for (let i = 0; i < 10; i++) total = sumMicros(total, 100_000);
    expect(formatMicros(total)).toBe('1');
    // An amount read as a float past 2^53 (a driver's number) is refused, never taken rounded.
    expect(() => microsOf(Number.MAX_SAFE_INTEGER + 2)).toThrow(MoneyRangeError);
  });

  it('sums exactly past 2^53 micros as bigints, and back to numbers where those are exact', () => {
    expect(sumMicros(1, 2)).toBe(3);
    expect(sumMicros(Number.MAX_SAFE_INTEGER, 1)).toBe(9_007_199_254_740_992n);
    expect(sumMicros(9_007_199_254_740_992n, -1)).toBe(Number.MAX_SAFE_INTEGER);
    expect(sumMicros(5_000_000_000_000_800, 5_000_000_000_000_001)).toBe(10_000_000_000_000_801n);
    expect(microsOf('10000000000000801')).toBe(10_000_000_000_000_801n);
    expect(microsOf('-42')).toBe(-42);
    expect(microsOf(12n)).toBe(12);
    expect(() => microsOf(2 ** 60)).toThrow(MoneyRangeError);
    expect(() => microsOf('1.5')).toThrow('not an amount in micros: 1.5');
    expect(() => microsOf(null)).toThrow('not an amount in micros');
  });
});
