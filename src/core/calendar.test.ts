import { describe, expect, it } from 'vitest';
import { formatInstant, localDate, localMonth, parseInstant } from './calendar.js';

describe('calendar', () => {
  it('places an instant on the local date of the WABA time zone', () => {
    const ms = Date.parse('2025-06-30T20:00:00Z');
    expect(localDate(ms, 'UTC')).toBe('2025-06-30');
    expect(localDate(ms, 'Asia/Kolkata')).toBe('2025-07-01'); // 01:30 the next day
    expect(localDate(ms, 'America/Los_Angeles')).toBe('2025-06-30');
    expect(localMonth(ms, 'Asia/Kolkata')).toBe('2025-07');
  });

  it('is exact at local midnight, including half-hour and quarter-hour zones', () => {
    const midnightIst = Date.parse('2025-06-30T18:30:00Z');
    expect(localDate(midnightIst - 1, 'Asia/Kolkata')).toBe('2025-06-30');
    expect(localDate(midnightIst, 'Asia/Kolkata')).toBe('2025-07-01');
    const midnightNepal = Date.parse('2025-06-30T18:15:00Z');
    expect(localDate(midnightNepal - 1, 'Asia/Kathmandu')).toBe('2025-06-30');
    expect(localDate(midnightNepal, 'Asia/Kathmandu')).toBe('2025-07-01');
  });

  it('reads ISO instants with offsets and Unix seconds as number or string', () => {
    expect(parseInstant('2024-03-01T10:00:00Z')).toEqual({
      ok: true,
      value: Date.parse('2024-03-01T10:00:00Z'),
    });
    expect(parseInstant('2024-03-01T15:30:00+05:30')).toEqual({
      ok: true,
      value: Date.parse('2024-03-01T10:00:00Z'),
    });
    expect(parseInstant(1750030073)).toEqual({ ok: true, value: 1750030073000 });
    expect(parseInstant('1750030073')).toEqual({ ok: true, value: 1750030073000 });
  });

  it('refuses instants without an offset or that are not instants', () => {
    for (const bad of ['2024-03-01T10:00:00', '2024-03-01', 'yesterday', -5, null, undefined, {}]) {
      expect(parseInstant(bad).ok, String(bad)).toBe(false);
    }
  });

  it('prints instants as ISO UTC', () => {
    expect(formatInstant(Date.parse('2024-03-01T10:05:03Z'))).toBe('2024-03-01T10:05:03Z');
  });
});
