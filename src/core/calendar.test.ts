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

describe('ISO-8601 instants, parsed by hand', () => {
  it('agrees with Date.parse on every valid form (seeded sweep)', () => {
    let seed = 20251001;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const pad = (n: number, width = 2) => String(n).padStart(width, '0');
    for (let i = 0; i < 5000; i++) {
      const ms = Math.floor(Date.parse('2020-01-01T00:00:00Z') + random() * 7 * 365 * 86_400_000);
      const iso = new Date(ms).toISOString(); // 2024-03-01T10:05:03.123Z
      const offsetMinutes = Math.floor(random() * 27) * 30 - 12 * 60;
      const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 23);
      const sign = offsetMinutes < 0 ? '-' : '+';
      const offset = `${sign}${pad(Math.floor(Math.abs(offsetMinutes) / 60))}:${pad(Math.abs(offsetMinutes) % 60)}`;
      for (const text of [
        iso,
        iso.slice(0, 19) + 'Z',
        iso.slice(0, 16) + 'Z',
        local + offset,
        local + offset.replace(':', ''),
      ]) {
        expect(parseInstant(text), text).toEqual({ ok: true, value: Date.parse(text) });
      }
    }
  });

  it('refuses impossible dates and times instead of rolling them over', () => {
    for (const bad of [
      '2024-02-30T00:00:00Z',
      '2023-02-29T00:00:00Z',
      '2024-13-01T00:00:00Z',
      '2024-00-10T00:00:00Z',
      '2024-03-01T24:00:00Z',
      '2024-03-01T10:60:00Z',
      '2024-03-01T10:00:60Z',
      '2024-03-01T10:00:00+24:00',
      '2024-03-01T10:00:00.Z',
      '2024-03-01T10:00:00.1234567890Z',
      '2024-03-01T10:00:00ZZ',
      '2024-03-01T10:00:00+05:3',
      '2024-03-01 10:00:00Z',
      '2024-3-01T10:00:00Z',
    ]) {
      expect(parseInstant(bad).ok, bad).toBe(false);
    }
    expect(parseInstant('2024-02-29T23:59:59.999999999+00:00')).toEqual({
      ok: true,
      value: Date.parse('2024-02-29T23:59:59.999Z'),
    });
  });
});
