// A finance team closing a month: each unit the API answers carries `local_date`, the date of its opening on
// its WABA's clock (accounts file), and `month=YYYY-MM` chooses the units billed in that month by each WABA's
// clock — the selection of `wameter rate --month` — in /v1/units, /v1/units.csv and /v1/totals, on SQLite and
// PostgreSQL.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { KEY_ALL, KEY_W1, serviceOn, type TestService } from '../../test/server-kit.js';
import { runWameter } from '../../test/support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-local-month-'));
const accountsPath = join(dir, 'accounts.json');
// W1 in São Paulo (UTC-3), W2 in Kolkata (UTC+5:30); W3 is not listed: UTC, as the contract's default.
writeFileSync(
  accountsPath,
  JSON.stringify({
    accounts: [
      { waba: 'W1', timezone: 'America/Sao_Paulo' },
      { waba: 'W2', timezone: 'Asia/Kolkata' },
    ],
  }),
);

/** A utility template delivered at `deliveredAt` to its own user: one unit, `u_<id>`, opened then. */
const charge = (waba: string, user: string, id: string, deliveredAt: string) => ({
  kind: 'outbound',
  at: new Date(Date.parse(deliveredAt) - 2000).toISOString(),
  waba,
  business: `PN_${waba}`,
  user,
  id,
  template: 'utility',
  delivered_at: deliveredAt,
});

const CHARGES = [
  // São Paulo's evening of September 30 (October 1 in UTC), mid-October, and October 31 late (November in UTC).
  charge('W1', '5511987650001', 'sp.sep30', '2025-10-01T00:54:06Z'),
  charge('W1', '5511987650002', 'sp.oct15', '2025-10-15T12:00:00Z'),
  charge('W1', '5511987650003', 'sp.oct31', '2025-11-01T02:30:00Z'),
  // Kolkata: 23:30 on September 30, then 00:30 on October 1 (both September 30 in UTC).
  charge('W2', '919876500001', 'in.sep30', '2025-09-30T18:00:00Z'),
  charge('W2', '919876500002', 'in.oct01', '2025-09-30T19:00:00Z'),
  // Unlisted, so UTC: the last minute of September, the first of October.
  charge('W3', '919876500101', 'utc.sep30', '2025-09-30T23:59:00Z'),
  charge('W3', '919876500102', 'utc.oct01', '2025-10-01T00:00:00Z'),
];

type UnitJson = { id: string; waba: string; opened_at: string; local_date?: string; amount: string | null };

let service: TestService;
afterEach(async () => {
  await service?.close();
});

async function ok(path: string, key = KEY_ALL): Promise<Record<string, unknown>> {
  const response = await service.get(path, key);
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

/** Every unit /v1/units answers to `query`, read two a page unless it says (the cursor keeps the month). */
async function unitsOf(query: string, key = KEY_ALL): Promise<UnitJson[]> {
  const units: UnitJson[] = [];
  let cursor: string | null = null;
  do {
    const params = new URLSearchParams(query);
    if (!params.has('limit')) params.set('limit', '2');
    if (cursor !== null) params.set('cursor', cursor);
    const page = await ok(`/v1/units?${params.toString()}`, key);
    units.push(...(page.units as UnitJson[]));
    cursor = page.next_cursor as string | null;
  } while (cursor !== null);
  return units;
}

const ids = (units: readonly { id: string }[]) => units.map((unit) => unit.id).sort();
const micros = (amount: string | null) => Math.round(Number(amount ?? '0') * 1_000_000);

describe.each(['SQLite', 'PostgreSQL'] as const)("a month's bill by each WABA's clock (%s)", (engine) => {
  async function start(): Promise<void> {
    service = await serviceOn(engine, 'wameter_local_month', { accountsPath });
    const posted = await service.postEvents(CHARGES);
    expect(posted.status).toBe(200);
  }

  it("gives each unit its local_date, in JSON and as the CSV's last column", async () => {
    await start();
    const units = await unitsOf('waba=W1');
    expect(units.map((unit) => [unit.id, unit.opened_at, unit.local_date])).toEqual([
      ['u_sp.sep30', '2025-10-01T00:54:06Z', '2025-09-30'],
      ['u_sp.oct15', '2025-10-15T12:00:00Z', '2025-10-15'],
      ['u_sp.oct31', '2025-11-01T02:30:00Z', '2025-10-31'],
    ]);
    const dates = Object.fromEntries((await unitsOf('')).map((u) => [u.id, u.local_date]));
    expect(dates).toMatchObject({
      'u_in.sep30': '2025-09-30',
      'u_in.oct01': '2025-10-01',
      'u_utc.sep30': '2025-09-30',
      'u_utc.oct01': '2025-10-01',
    });
    const csv = await (await service.get('/v1/units.csv', KEY_ALL)).text();
    const [header, ...rows] = csv.trim().split('\r\n');
    const columns = header!.split(',');
    expect(columns.at(-1)).toBe('local_date');
    const csvDates = Object.fromEntries(
      rows.map((row) => row.split(',')).map((cells) => [cells[0], cells[columns.indexOf('local_date')]]),
    );
    expect(csvDates).toEqual(dates);
  });

  it('month=YYYY-MM lists, exports and totals the units billed in that month, each by its WABA’s clock', async () => {
    await start();
    const september = await unitsOf('month=2025-09');
    const october = await unitsOf('month=2025-10');
    expect(ids(september)).toEqual(['u_in.sep30', 'u_sp.sep30', 'u_utc.sep30']);
    expect(ids(october)).toEqual(['u_in.oct01', 'u_sp.oct15', 'u_sp.oct31', 'u_utc.oct01']);
    expect(await unitsOf('month=2025-08')).toEqual([]);
    expect(await unitsOf('month=2025-11')).toEqual([]);
    // With the other filters and a key's scope.
    expect(ids(await unitsOf('month=2025-09&waba=W2'))).toEqual(['u_in.sep30']);
    expect(ids(await unitsOf('month=2025-10', KEY_W1))).toEqual(['u_sp.oct15', 'u_sp.oct31']);

    for (const [month, units] of [
      ['2025-09', september],
      ['2025-10', october],
    ] as const) {
      const { totals } = (await ok(`/v1/totals?month=${month}`)) as {
        totals: Record<string, { amount: string; units: number }>;
      };
      expect(totals.USD!.units).toBe(units.length);
      expect(micros(totals.USD!.amount)).toBe(units.reduce((sum, unit) => sum + micros(unit.amount), 0));
      const csv = await (await service.get(`/v1/units.csv?month=${month}`, KEY_ALL)).text();
      const rows = csv.trim().split('\r\n').slice(1);
      expect(rows.map((row) => row.split(',')[0]).sort()).toEqual(ids(units));
    }
    const whole = (await ok('/v1/totals')) as { totals: Record<string, { amount: string; units: number }> };
    expect(whole.totals.USD!.units).toBe(september.length + october.length);
  });

  it('refuses a month that is none, or one given with from/to, on every route that takes it (400)', async () => {
    await start();
    for (const route of ['/v1/units', '/v1/units.csv', '/v1/totals']) {
      for (const month of ['2025-13', '2025-9', 'September', '2025-09-01']) {
        const response = await service.get(`${route}?month=${encodeURIComponent(month)}`, KEY_ALL);
        expect(response.status, `${route} ${month}`).toBe(400);
        expect(await response.json()).toEqual({
          error: {
            code: 'BAD_QUERY',
            message: `A query parameter or request field is invalid. "month": ${JSON.stringify(month)} is not a month: write it YYYY-MM (2025-07).`,
          },
        });
      }
      const both = await service.get(`${route}?month=2025-09&from=2025-09-01T00:00:00Z`, KEY_ALL);
      expect(both.status, route).toBe(400);
      expect(((await both.json()) as { error: { message: string } }).error).toEqual({
        code: 'BAD_QUERY',
        message:
          'A query parameter or request field is invalid. "month" chooses the units billed in a month by each WABA\'s clock, "from" and "to" instants in UTC: give one or the other, not both.',
      });
    }
  });
  it('POST /v1/rerate refuses a day for "from"/"to" (instants), saying the instant it begins on the WABAs\' clock', async () => {
    await start();
    const rerate = (body: object, key = KEY_ALL) =>
      service.app.request('/v1/rerate', {
        method: 'POST',
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ dry_run: true, ...body }),
      });
    const prefix = 'A query parameter or request field is invalid. ';
    for (const [body, key] of [
      [{ from: '2025-07-01', wabas: ['W1'] }, KEY_ALL],
      [{ from: '2025-07-01' }, KEY_W1],
    ] as const) {
      const response = await rerate(body, key);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        error: {
          code: 'BAD_QUERY',
          message:
            `${prefix}"from": "2025-07-01" is a day, and "from" takes an instant (units opened at or after it are ` +
            'reported). 2025-07-01 begins at 2025-07-01T03:00:00Z on the clock of the WABA re-rated ' +
            '(America/Sao_Paulo: W1): write "from": "2025-07-01T03:00:00Z"',
        },
      });
    }
    const all = await rerate({ to: '2025-09-30' });
    expect(all.status).toBe(400);
    expect(((await all.json()) as { error: { message: string } }).error.message).toBe(
      `${prefix}"to": "2025-09-30" is a day, and "to" takes an instant (units opened before it are reported). ` +
        'To report the whole of 2025-09-30, give the instant 2025-10-01 begins, another on each clock of the ' +
        'WABAs re-rated: 2025-09-30T18:30:00Z (Asia/Kolkata: W2), 2025-10-01T00:00:00Z (UTC: W3), ' +
        '2025-10-01T03:00:00Z (America/Sao_Paulo: W1); one period is reported for all: write the instant of ' +
        'the clock you mean (the latest, "to": "2025-10-01T03:00:00Z", takes in the whole day on every clock), ' +
        'or give "wabas" to re-rate one WABA\'s portfolio',
    );
  });
});

describe('month= chooses what `wameter rate --month` chooses', () => {
  const example = join(import.meta.dirname, '..', '..', 'examples', 'month');
  it("the bundled example month (three WABAs: São Paulo, Kolkata, Jakarta), each month's units and totals alike", async () => {
    service = await serviceOn('SQLite', 'wameter_local_month', {
      accountsPath: join(example, 'accounts.json'),
    });
    const lines = readFileSync(join(example, 'events.ndjson'), 'utf8').trim().split('\n');
    for (let at = 0; at < lines.length; at += 1000) {
      expect((await service.postEvents(lines.slice(at, at + 1000).join('\n'))).status).toBe(200);
    }
    const pairs = (units: readonly { waba: string; id: string }[]) =>
      units.map((unit) => `${unit.waba} ${unit.id}`).sort();
    for (const month of ['2025-09', '2025-10']) {
      const batch = await runWameter([
        'rate',
        join(example, 'events.ndjson'),
        '--accounts',
        join(example, 'accounts.json'),
        '--month',
        month,
        '--format',
        'json',
      ]);
      const bill = JSON.parse(batch.out) as { units: UnitJson[]; totals: unknown };
      const live = await unitsOf(`month=${month}&limit=1000`);
      expect(live.length, month).toBeGreaterThan(0);
      expect(pairs(live), month).toEqual(pairs(bill.units));
      expect((await ok(`/v1/totals?month=${month}`)).totals, month).toEqual(bill.totals);
    }
  });
});
