import { describe, expect, it } from 'vitest';
import {
  cachedTimeZones,
  formatInstant,
  instantMs,
  isValidTimeZone,
  localDate,
  localMonth,
  localMonthRange,
  MAX_INSTANT_MS,
  parseInstant,
} from './calendar.js';

describe('calendar', () => {
  it('places an instant on the local date of the WABA time zone', () => {
    const ms = Date.parse('2025-06-30T20:00:00Z');
    expect(localDate(ms, 'UTC')).toBe('2025-06-30');
    expect(localDate(ms, 'Asia/Kolkata')).toBe('2025-07-01'); // 01:30 the next day
    expect(localDate(ms, 'America/Los_Angeles')).toBe('2025-06-30');
    expect(localMonth(ms, 'Asia/Kolkata')).toBe('2025-07');
  });

  it("gives a month's instants in a zone: exactly those localMonth puts in it", () => {
    const iso = (ms: number) => new Date(ms).toISOString();
    const range = (month: string, zone: string) => {
      const { fromMs, toMs } = localMonthRange(month, zone);
      return [iso(fromMs), iso(toMs)];
    };
    expect(range('2025-09', 'UTC')).toEqual(['2025-09-01T00:00:00.000Z', '2025-10-01T00:00:00.000Z']);
    expect(range('2025-09', 'America/Sao_Paulo')).toEqual([
      '2025-09-01T03:00:00.000Z',
      '2025-10-01T03:00:00.000Z',
    ]);
    expect(range('2025-12', 'Asia/Kolkata')).toEqual([
      '2025-11-30T18:30:00.000Z',
      '2025-12-31T18:30:00.000Z',
    ]);
    expect(range('2025-07', 'Asia/Kathmandu')).toEqual([
      '2025-06-30T18:15:00.000Z',
      '2025-07-31T18:15:00.000Z',
    ]);
    // Summer time: New York's March starts at UTC-5 and ends at UTC-4.
    expect(range('2025-03', 'America/New_York')).toEqual([
      '2025-03-01T05:00:00.000Z',
      '2025-04-01T04:00:00.000Z',
    ]);
    for (const zone of ['America/Sao_Paulo', 'Asia/Kolkata', 'Pacific/Kiritimati', 'Pacific/Pago_Pago']) {
      const { fromMs, toMs } = localMonthRange('2025-10', zone);
      expect([localMonth(fromMs - 1, zone), localMonth(fromMs, zone)], zone).toEqual(['2025-09', '2025-10']);
      expect([localMonth(toMs - 1, zone), localMonth(toMs, zone)], zone).toEqual(['2025-10', '2025-11']);
    }
    // The ends of the instants read: nothing before 1969's last day, nothing after 9999.
    expect(localMonthRange('1900-01', 'UTC')).toEqual({ fromMs: 0, toMs: 0 });
    expect(localMonthRange('9999-12', 'UTC').toMs).toBe(MAX_INSTANT_MS + 1);
  });

  it('is exact at local midnight, including half-hour and quarter-hour zones', () => {
    const midnightIst = Date.parse('2025-06-30T18:30:00Z');
    expect(localDate(midnightIst - 1, 'Asia/Kolkata')).toBe('2025-06-30');
    expect(localDate(midnightIst, 'Asia/Kolkata')).toBe('2025-07-01');
    const midnightNepal = Date.parse('2025-06-30T18:15:00Z');
    expect(localDate(midnightNepal - 1, 'Asia/Kathmandu')).toBe('2025-06-30');
    expect(localDate(midnightNepal, 'Asia/Kathmandu')).toBe('2025-07-01');
  });

  it("gives every zone's date as its parts say it, at each quarter hour of a day and across years", () => {
    // localDate writes the formatter's own text where that is the date (checked once a formatter): the
    // reference here joins the parts of an en-CA formatter of its own.
    const instants = [
      ...Array.from({ length: 96 }, (_, i) => Date.parse('2025-03-09T00:00:00Z') + i * 15 * 60_000),
      Date.parse('1970-01-01T00:00:00Z'),
      Date.parse('2024-02-29T23:59:59Z'),
      Date.parse('9999-12-31T12:00:00Z'),
    ];
    for (const zone of Intl.supportedValuesOf('timeZone')) {
      const parts = new Intl.DateTimeFormat('en-CA', {
        timeZone: zone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
      });
      for (const ms of instants) {
        const of = (type: string) => parts.formatToParts(new Date(ms)).find((p) => p.type === type)?.value;
        expect(localDate(ms, zone), `${zone} ${new Date(ms).toISOString()}`).toBe(
          `${of('year')}-${of('month')}-${of('day')}`,
        );
      }
    }
  });

  it('is exact on both sides of each local midnight and each change of offset (cached by UTC day)', () => {
    // A zone's dates are cached by UTC day, cut at its local midnight: around summer-time changes (Santiago
    // goes back from midnight to 23:00, Lord Howe moves by half an hour, Chatham is 12:45 ahead) every
    // quarter hour, and the millisecond before it, is the date the zone's own parts give.
    const zones = [
      'America/Santiago',
      'Australia/Lord_Howe',
      'Pacific/Chatham',
      'America/New_York',
      'Asia/Kolkata',
    ];
    const days = ['2025-04-04', '2025-04-05', '2025-04-06', '2025-09-06', '2025-09-07', '2025-10-05'];
    for (const zone of zones) {
      const parts = new Intl.DateTimeFormat('en-CA', {
        timeZone: zone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
      });
      const reference = (ms: number) => {
        const of = (type: string) => parts.formatToParts(new Date(ms)).find((p) => p.type === type)?.value;
        return `${of('year')}-${of('month')}-${of('day')}`;
      };
      for (const day of days) {
        for (let quarter = 0; quarter < 96; quarter++) {
          const ms = Date.parse(`${day}T00:00:00Z`) + quarter * 15 * 60_000;
          for (const at of [ms, ms - 1]) {
            expect(localDate(at, zone), `${zone} ${new Date(at).toISOString()}`).toBe(reference(at));
          }
        }
      }
    }
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

  it('reads RFC 3339’s lower-case t and z, and an offset of hours alone (ISO 8601’s ±HH)', () => {
    const at = Date.UTC(2024, 2, 1, 10, 0, 0);
    for (const [text, ms] of [
      ['2024-03-01t10:00:00z', at],
      ['2024-03-01t10:00:00Z', at],
      ['2024-03-01T10:00:00z', at],
      ['2024-03-01T15:00:00+05', at],
      ['2024-03-01T05:00:00.000-05', at],
      ['2024-03-01t15:30+05:30', at],
    ] as const) {
      expect(parseInstant(text), text).toEqual({ ok: true, value: ms });
    }
    for (const bad of [
      '2024-03-01T10:00:00+5',
      '2024-03-01T10:00:00+24',
      '2024-03-01x10:00:00Z',
      '2024-03-01T10:00:00+05:',
    ]) {
      expect(parseInstant(bad).ok, bad).toBe(false);
    }
  });

  it('refuses instants without an offset or that are not instants', () => {
    for (const bad of ['2024-03-01T10:00:00', '2024-03-01', 'yesterday', -5, null, undefined, {}]) {
      expect(parseInstant(bad).ok, String(bad)).toBe(false);
    }
  });

  it('prints instants as ISO UTC', () => {
    expect(formatInstant(Date.parse('2024-03-01T10:05:03Z'))).toBe('2024-03-01T10:05:03Z');
    expect(formatInstant(Date.parse('2024-03-01T10:05:03.250Z'))).toBe('2024-03-01T10:05:03.250Z');
    // Past 9999 (an expiry under a what-if of the year 9999): the seconds kept.
    expect(formatInstant(Date.UTC(10_000, 0, 1, 12, 0, 1))).toBe('+010000-01-01T12:00:01Z');
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

describe('the range of instants wameter reads (1970-01-01 to 9999-12-31; Unix seconds below 1e11)', () => {
  const messageOf = (value: unknown): string => {
    const parsed = parseInstant(value);
    if (parsed.ok) throw new Error(`expected ${String(value)} to be refused, got ${parsed.value}`);
    expect(parsed.error.code).toBe('BAD_TIMESTAMP');
    return parsed.error.message;
  };

  it('accepts both ends of the range, in every form', () => {
    expect(parseInstant(0)).toEqual({ ok: true, value: 0 });
    expect(parseInstant('0')).toEqual({ ok: true, value: 0 });
    expect(parseInstant('1970-01-01T00:00:00Z')).toEqual({ ok: true, value: 0 });
    expect(parseInstant('1970-01-01T05:30:00+05:30')).toEqual({ ok: true, value: 0 });
    expect(parseInstant('9999-12-31T23:59:59.999Z')).toEqual({ ok: true, value: MAX_INSTANT_MS });
    expect(MAX_INSTANT_MS).toBe(Date.parse('9999-12-31T23:59:59.999Z'));
    expect(parseInstant(99_999_999_999)).toEqual({ ok: true, value: 99_999_999_999_000 });
    expect(parseInstant('99999999999.5')).toEqual({ ok: true, value: 99_999_999_999_500 });
  });

  it('refuses instants before 1970 or after 9999, and says what range is accepted', () => {
    for (const bad of [
      -1,
      -0.001,
      1e20,
      1e400, // JSON.parse('1e400') is Infinity
      -Infinity,
      NaN,
      '100000000000000000000',
      '1969-12-31T23:59:59.999Z',
      '1970-01-01T00:30:00+01:00', // 1969-12-31T23:30:00Z
      '9999-12-31T23:59:59-00:01', // 10000-01-01T00:00:59Z
      '0001-01-01T00:00:00Z',
    ]) {
      expect(messageOf(bad), String(bad)).toContain(
        'is outside the range of instants wameter reads (accepted: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, or Unix seconds from 0 to 99999999999)',
      );
    }
    expect(messageOf(1e20)).toMatch(/^100000000000000000000 is outside/);
    expect(messageOf(Infinity)).toMatch(/^Infinity is outside/);
    expect(messageOf('1969-12-31T23:59:59.999Z')).toMatch(/^"1969-12-31T23:59:59.999Z" is outside/);
  });

  it('a number of seconds from 1e11 up whose thousandth is an instant is milliseconds, refused with the hint', () => {
    expect(messageOf(1709287560000)).toBe(
      '1709287560000 looks like milliseconds; timestamps here take Unix seconds: write 1709287560 (2024-03-01T10:06:00Z) or an ISO-8601 instant',
    );
    expect(messageOf('1709287560123')).toBe(
      '"1709287560123" looks like milliseconds; timestamps here take Unix seconds: write 1709287560.123 (2024-03-01T10:06:00.123Z) or an ISO-8601 instant',
    );
    expect(messageOf(100_000_000_000)).toContain('looks like milliseconds');
    expect(messageOf(1e17)).toContain('is outside the range'); // not milliseconds either
  });

  it('text that is no instant at all keeps its own message, huge-year ISO forms included', () => {
    for (const bad of [
      '1e20',
      'NaN',
      'Infinity',
      '',
      '-5',
      '+275760-09-13T00:00:00Z',
      '10000-01-01T00:00:00Z',
    ]) {
      expect(messageOf(bad), bad).toContain('is not an instant: use ISO-8601 with an offset');
    }
    expect(messageOf('x'.repeat(500)).length).toBeLessThan(200);
  });

  it('whatever is accepted, formatInstant prints and localDate places (seeded sweep)', () => {
    let seed = 20251002;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const candidates: unknown[] = [0, MAX_INSTANT_MS, 99_999_999_999, 100_000_000_000];
    for (let i = 0; i < 2000; i++) {
      const magnitude = 10 ** Math.floor(random() * 22);
      candidates.push(random() * magnitude, -random() * magnitude, String(Math.floor(random() * magnitude)));
    }
    for (const value of candidates) {
      const ms = instantMs(value);
      const parsed = parseInstant(value);
      expect(parsed.ok, `seed 20251002, value ${String(value)}`).toBe(ms !== undefined);
      if (ms === undefined) continue;
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThanOrEqual(MAX_INSTANT_MS);
      expect(parseInstant(formatInstant(ms)), `value ${String(value)}`).toEqual({ ok: true, value: ms });
      expect(localDate(ms, 'Asia/Kolkata')).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
  });
});

describe('time-zone names in any case', () => {
  it('are read alike, and new spellings without end never grow the caches without end', () => {
    const letters = 'asiakolkata';
    const at = Date.parse('2025-10-31T19:00:00Z'); // 2025-11-01 00:30 in Kolkata
    for (let mask = 0; mask < 2 ** letters.length; mask++) {
      const spelled = [...letters].map((c, i) => ((mask >> i) & 1 ? c.toUpperCase() : c)).join('');
      const zone = `${spelled.slice(0, 4)}/${spelled.slice(4)}`;
      expect(isValidTimeZone(zone)).toBe(true);
      expect(localDate(at, zone)).toBe('2025-11-01');
    }
    // 2,048 spellings were read; an API client could send millions.
    expect(cachedTimeZones()).toBeLessThanOrEqual(1_000);
  });
});

describe('time-zone abbreviations', () => {
  it('that ICU reads as a zone but IANA does not name are refused: IST, CST, BST name several zones', () => {
    // ICU takes Java's old three-letter ids: IST as India (Israel and Ireland write IST too), CST as Chicago
    // (China Standard Time too), BST as Dhaka (British Summer Time). A WABA's bill cut in another country's days.
    for (const name of ['IST', 'ist', 'CST', 'BST', 'PST', 'JST', 'AET', 'SystemV/AST4']) {
      expect(isValidTimeZone(name), name).toBe(false);
    }
  });

  it('that IANA names are still zones: EST, MST, HST, CET, GMT, UTC, PRC, NZ, GB and the old links', () => {
    for (const name of ['EST', 'MST', 'HST', 'CET', 'EET', 'WET', 'MET', 'GMT', 'UTC', 'UCT', 'PRC', 'ROK']) {
      expect(isValidTimeZone(name), name).toBe(true);
    }
    for (const name of ['NZ', 'GB', 'Asia/Calcutta', 'US/Pacific', 'Etc/GMT-5', 'EST5EDT', 'Zulu']) {
      expect(isValidTimeZone(name), name).toBe(true);
    }
  });
});
