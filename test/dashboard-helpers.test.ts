import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SWITCH_REPORTED_OFF } from '../src/core/price-unit.js';
import { UNIT_CATEGORIES as ENGINE_UNIT_CATEGORIES } from '../src/core/units.js';
import { rateLinesAsBatch } from './server-kit.js';

// The dashboard's own module (plain browser JavaScript, no DOM needed for this function).
interface DashboardHelpers {
  serviceWords(text: string): string;
  newestOnly(): () => () => boolean;
  axisTicks(
    minMs: number,
    maxMs: number,
    zone: string | undefined,
    everyHours: number,
  ): { ms: number; day: string; hour: number }[];
  addDecimals(amounts: string[]): string;
  groupThousands(decimal: string): string;
  UNIT_CATEGORIES: readonly string[];
}
const { serviceWords, axisTicks, newestOnly, addDecimals, groupThousands, UNIT_CATEGORIES } = (await import(
  pathToFileURL(new URL('../web/js/dom.js', import.meta.url).pathname).href
)) as DashboardHelpers;

const ticksOf = (from: string, to: string, zone: string | undefined, everyHours: number): string[] =>
  axisTicks(Date.parse(from), Date.parse(to), zone, everyHours).map(
    (tick) => `${tick.day} ${String(tick.hour).padStart(2, '0')} ${new Date(tick.ms).toISOString()}`,
  );

describe("the dashboard says a finding's advice as the service's user follows it", () => {
  it('rate cards: the server’s setting instead of --rate-cards', () => {
    expect(
      serviceWords(
        'import Meta\'s card in force on 2025-10-01 (--rate-cards; for the service, WAMETER_RATE_CARDS or "rateCards")',
      ),
    ).toBe(
      'import Meta\'s card in force on 2025-10-01 (the server’s rate cards: WAMETER_RATE_CARDS or "rateCards")',
    );
  });

  it('reported rules: the server’s setting instead of --no-reported, in the words the rater uses', () => {
    const words = `rates them under PMP-2025 (${SWITCH_REPORTED_OFF}); it is priced in its former region (${SWITCH_REPORTED_OFF})`;
    expect(serviceWords(words)).toBe(
      'rates them under PMP-2025 (the server’s setting: WAMETER_REPORTED_RULES=off or "reportedRules": false); ' +
        'it is priced in its former region (the server’s setting: WAMETER_REPORTED_RULES=off or "reportedRules": false)',
    );
  });

  it('reported rules: an era is chosen in the service by a re-rate, never by a command-line flag', async () => {
    // The rater's own REPORTED_RULES words, as a finding or an estimate's warning carries them.
    const rated = await rateLinesAsBatch(null, [
      {
        kind: 'outbound',
        at: '2026-10-05T10:00:00Z',
        waba: 'W1',
        business: 'B1',
        user: '919812345678',
        id: 'm1',
        template: 'utility',
      },
      { kind: 'status', at: '2026-10-05T10:00:02Z', id: 'm1', status: 'delivered' },
    ]);
    const words = rated.findings.find((finding) => finding.code === 'REPORTED_RULES')!.message;
    expect(words).toContain('--as-of-rules');
    const said = serviceWords(words);
    expect(said).not.toContain('--');
    expect(said).toContain(
      'unless a re-rate chose that era (POST /v1/rerate’s "as_of_rules"), switching those rules off ' +
        '(the server’s setting: WAMETER_REPORTED_RULES=off or "reportedRules": false) rates them under PMP-2025',
    );
  });

  it('leaves other words alone', () => {
    expect(serviceWords('add the WABA to the accounts file (--accounts)')).toBe(
      'add the WABA to the accounts file (--accounts)',
    );
    expect(serviceWords(undefined as unknown as string)).toBe('');
  });
});

describe('the explain timeline’s axis follows the WABA’s clock', () => {
  it('day ticks at local midnights: Auckland in summer time (UTC+13)', () => {
    expect(ticksOf('2025-09-30T00:00:00Z', '2025-10-02T12:00:00Z', 'Pacific/Auckland', 24)).toEqual([
      '2025-10-01 00 2025-09-30T11:00:00.000Z',
      '2025-10-02 00 2025-10-01T11:00:00.000Z',
      '2025-10-03 00 2025-10-02T11:00:00.000Z',
    ]);
  });

  it('6-hour ticks of a clock 5:45 ahead of UTC (Kathmandu)', () => {
    expect(ticksOf('2025-10-01T00:00:00Z', '2025-10-01T20:00:00Z', 'Asia/Kathmandu', 6)).toEqual([
      '2025-10-01 06 2025-10-01T00:15:00.000Z',
      '2025-10-01 12 2025-10-01T06:15:00.000Z',
      '2025-10-01 18 2025-10-01T12:15:00.000Z',
      '2025-10-02 00 2025-10-01T18:15:00.000Z',
    ]);
  });

  it('midnights on both sides of a change of offset (Berlin, end of summer time on 2025-10-26)', () => {
    expect(ticksOf('2025-10-25T12:00:00Z', '2025-10-27T12:00:00Z', 'Europe/Berlin', 24)).toEqual([
      '2025-10-26 00 2025-10-25T22:00:00.000Z',
      '2025-10-27 00 2025-10-26T23:00:00.000Z',
    ]);
  });

  it('a day whose midnight the clock skips starts at the change (Santiago, summer time from 2025-09-07)', () => {
    // 00:00 does not exist there that day: the clock goes from 23:59:59 (UTC−4) to 01:00 (UTC−3) at 04:00Z.
    expect(ticksOf('2025-09-06T12:00:00Z', '2025-09-08T12:00:00Z', 'America/Santiago', 24)).toEqual([
      '2025-09-07 00 2025-09-07T04:00:00.000Z',
      '2025-09-08 00 2025-09-08T03:00:00.000Z',
    ]);
    // Back to UTC−4 on 2026-04-05 at 00:00 local (03:00Z): 23:00 repeats, the day starts once, at 04:00Z.
    expect(ticksOf('2026-04-04T12:00:00Z', '2026-04-05T12:00:00Z', 'America/Santiago', 24)).toEqual([
      '2026-04-05 00 2026-04-05T04:00:00.000Z',
    ]);
  });

  it('a zone this runtime does not know is read as UTC, never a failure', () => {
    expect(ticksOf('2025-10-01T01:00:00Z', '2025-10-01T14:00:00Z', 'Nonsense/Zone', 6)).toEqual([
      '2025-10-01 06 2025-10-01T06:00:00.000Z',
      '2025-10-01 12 2025-10-01T12:00:00.000Z',
    ]);
  });

  it('UTC when the story has no single time zone', () => {
    expect(ticksOf('2025-10-01T01:00:00Z', '2025-10-01T14:00:00Z', undefined, 6)).toEqual([
      '2025-10-01 06 2025-10-01T06:00:00.000Z',
      '2025-10-01 12 2025-10-01T12:00:00.000Z',
    ]);
  });
});

describe('newestOnly: a page action started again makes the earlier run stale', () => {
  it('only the latest run is current; runs of another action are apart', () => {
    const begin = newestOnly();
    const first = begin();
    expect(first()).toBe(true);
    const second = begin();
    expect([first(), second()]).toEqual([false, true]);
    const other = newestOnly()();
    expect([second(), other()]).toEqual([true, true]);
  });
});

describe('the dashboard adds and shows amounts as the decimal strings they are', () => {
  it('sums exactly, whatever the decimals (never a float: 0.1 + 0.2 is 0.3)', () => {
    expect(addDecimals(['0.1', '0.2'])).toBe('0.3');
    expect(addDecimals(['1234567.1234567', '0.1'])).toBe('1234567.2234567');
    expect(addDecimals(['9007199254740993', '0.000000001'])).toBe('9007199254740993.000000001');
    expect(addDecimals(['-0.5', '0.25'])).toBe('-0.25');
    expect(addDecimals(['1.50', '2.50'])).toBe('4');
    expect(addDecimals([])).toBe('0');
  });

  it('groups the whole part by thousands and keeps every decimal', () => {
    expect(groupThousands('1234567.8901234')).toBe('1,234,567.8901234');
    expect(groupThousands('-1000')).toBe('-1,000');
    expect(groupThousands('999.99')).toBe('999.99');
    expect(groupThousands('0')).toBe('0');
  });
});

describe("the dashboard's copy of the engine's lists (plain JS in the browser cannot import the TypeScript)", () => {
  it("names the units' categories as the engine does, in its order", () => {
    expect(UNIT_CATEGORIES).toEqual(ENGINE_UNIT_CATEGORIES);
  });
});
