// A unit's volume-tier count is its portfolio's running count (pricing-rules.md §5.3): a key for some WABAs of
// a shared portfolio must not read it, or it learns how many charged messages its mates — other clients —
// sent, and when (docs/dashboard.md: their counts are never shown). Such a key gets the band and the month,
// `count: null` (an empty `tier_count` cell in CSV, the band alone in an estimate's words); a key for every
// WABA of the portfolio, or `*`, gets the count as before. Real service, real SQLite, the dashboard mounted.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  bundledCardsWithTiers,
  createDashboardService,
  KEY_ALL,
  type TestService,
  deliveredUtility,
} from '../../test/server-kit.js';

const KEY_ONE = 'key-tiers-w1';
const KEY_TWO = 'key-tiers-w2';
const KEY_BOTH = 'key-tiers-w1-w2';
const KEY_THREE = 'key-tiers-w3';
const KEY_FOUR = 'key-tiers-w4';

// W1 and W2 share portfolio P1; W3 is alone in P3; W4 shares P4 with W5, which has sent nothing (yet).
const dir = mkdtempSync(join(tmpdir(), 'wameter-tier-counts-'));
const accountsPath = join(dir, 'accounts.json');
writeFileSync(
  accountsPath,
  JSON.stringify({
    accounts: [
      { waba: 'W1', timezone: 'UTC', currency: 'USD', portfolio: 'P1' },
      { waba: 'W2', timezone: 'UTC', currency: 'USD', portfolio: 'P1' },
      { waba: 'W3', timezone: 'UTC', currency: 'USD', portfolio: 'P3' },
      { waba: 'W4', timezone: 'UTC', currency: 'USD', portfolio: 'P4' },
      { waba: 'W5', timezone: 'UTC', currency: 'USD', portfolio: 'P4' },
    ],
  }),
);
// India's October 2025 utility bands, small enough for a few messages to cross them.
const cardsDir = bundledCardsWithTiers(dir, [
  'India,$US,Utility,1,3,0.0014',
  'India,$US,Utility,4,6,0.0012',
  'India,$US,Utility,7,,0.0010',
]);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let service: TestService;

/** A utility template of `waba` to an Indian user, delivered at once (a tiered charge). */
const sent = deliveredUtility;

beforeEach(async () => {
  service = await createDashboardService({
    accountsPath,
    rateCardPaths: [cardsDir],
    apiKeys: [
      { name: 'admin', key: KEY_ALL, wabas: '*' },
      { name: 'one', key: KEY_ONE, wabas: ['W1'] },
      { name: 'two', key: KEY_TWO, wabas: ['W2'] },
      { name: 'both', key: KEY_BOTH, wabas: ['W1', 'W2'] },
      { name: 'three', key: KEY_THREE, wabas: ['W3'] },
      { name: 'four', key: KEY_FOUR, wabas: ['W4'] },
    ],
  });
  service.clock.nowMs = Date.parse('2025-10-20T12:00:00Z');
  const posted = await service.postEvents([
    // P1's October utility: W1's three (counts 1–3), then W2's two (counts 4 and 5, band 4:6).
    sent('W1', 'a1', '2025-10-02T10:00:00Z', '919810000001'),
    sent('W1', 'a2', '2025-10-03T10:00:00Z', '919810000002'),
    sent('W1', 'a3', '2025-10-04T10:00:00Z', '919810000003'),
    sent('W2', 'b1', '2025-10-10T10:00:00Z', '919820000001'),
    sent('W2', 'b2', '2025-10-11T10:00:00Z', '919820000002'),
    // P3's and P4's own counts: 1 and 2, and 1.
    sent('W3', 'c1', '2025-10-05T10:00:00Z', '919830000001'),
    sent('W3', 'c2', '2025-10-06T10:00:00Z', '919830000002'),
    sent('W4', 'd1', '2025-10-07T10:00:00Z', '919840000001'),
  ]);
  expect(posted.status).toBe(200);
});

afterEach(async () => {
  await service.close();
});

interface UnitTier {
  waba: string;
  id: string;
  tier?: { count: number | null; band: string; month: string };
}

async function unitsOf(key: string): Promise<UnitTier[]> {
  const response = await service.get('/v1/units?limit=100', key);
  expect(response.status).toBe(200);
  return ((await response.json()) as { units: UnitTier[] }).units;
}

const tiersById = (units: readonly UnitTier[]) =>
  Object.fromEntries(units.map((unit) => [unit.id.replace(/^u_/, ''), unit.tier]));

describe('tier counts of a shared portfolio', () => {
  it("GET /v1/units: a key for some WABAs of a shared portfolio gets the band and month, never the portfolio's count", async () => {
    expect(tiersById(await unitsOf(KEY_TWO))).toEqual({
      b1: { count: null, band: '4:6', month: '2025-10' },
      b2: { count: null, band: '4:6', month: '2025-10' },
    });
    // W1's counts are its own so far (1–3), but they are its portfolio's: withheld all the same.
    expect(tiersById(await unitsOf(KEY_ONE))).toEqual({
      a1: { count: null, band: '1:3', month: '2025-10' },
      a2: { count: null, band: '1:3', month: '2025-10' },
      a3: { count: null, band: '1:3', month: '2025-10' },
    });
    // A mate listed in the accounts file that has sent nothing yet: withheld too, so that the answer does not
    // change (and tell) when it starts.
    expect(tiersById(await unitsOf(KEY_FOUR))).toEqual({
      d1: { count: null, band: '1:3', month: '2025-10' },
    });
    // A key for every WABA of the portfolio, a `*` key and a key alone in its portfolio see the counts.
    const p1 = {
      a1: { count: 1, band: '1:3', month: '2025-10' },
      a2: { count: 2, band: '1:3', month: '2025-10' },
      a3: { count: 3, band: '1:3', month: '2025-10' },
      b1: { count: 4, band: '4:6', month: '2025-10' },
      b2: { count: 5, band: '4:6', month: '2025-10' },
    };
    expect(tiersById(await unitsOf(KEY_BOTH))).toEqual(p1);
    expect(tiersById(await unitsOf(KEY_THREE))).toEqual({
      c1: { count: 1, band: '1:3', month: '2025-10' },
      c2: { count: 2, band: '1:3', month: '2025-10' },
    });
    expect(tiersById(await unitsOf(KEY_ALL))).toMatchObject({
      ...p1,
      c1: { count: 1 },
      c2: { count: 2 },
      d1: { count: 1 },
    });
  });

  it('GET /v1/units.csv: the tier_count cell is empty for such a key, the band and month kept', async () => {
    const rows = async (key: string) => {
      const response = await service.get('/v1/units.csv', key);
      expect(response.status).toBe(200);
      const [header, ...lines] = (await response.text()).trim().split('\r\n');
      const columns = header!.split(',');
      return lines.map((line) => {
        const cells = line.split(',');
        const cell = (name: string) => cells[columns.indexOf(name)];
        return [cell('id'), cell('tier_count'), cell('tier_band'), cell('tier_month')].join(' ');
      });
    };
    expect(await rows(KEY_TWO)).toEqual(['u_b1  4:6 2025-10', 'u_b2  4:6 2025-10']);
    expect((await rows(KEY_BOTH)).filter((row) => row.startsWith('u_b'))).toEqual([
      'u_b1 4 4:6 2025-10',
      'u_b2 5 4:6 2025-10',
    ]);
  });

  it("GET /v1/explain: the user's units carry the band without the portfolio's count", async () => {
    const explained = async (key: string) => {
      const response = await service.get('/v1/explain?user=919820000002', key);
      expect(response.status).toBe(200);
      const report = (await response.json()) as { units: UnitTier[] };
      return report.units.map((unit) => unit.tier);
    };
    expect(await explained(KEY_TWO)).toEqual([{ count: null, band: '4:6', month: '2025-10' }]);
    expect(await explained(KEY_BOTH)).toEqual([{ count: 5, band: '4:6', month: '2025-10' }]);
    expect(await explained(KEY_ALL)).toEqual([{ count: 5, band: '4:6', month: '2025-10' }]);
  });

  it("POST /v1/estimate: the quote's words say the band, not the send's place among the mates' charges", async () => {
    const reasonFor = async (key: string, at: string) => {
      const response = await service.app.request('/v1/estimate', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
        body: JSON.stringify({ phones: ['919899999999'], template: 'utility', waba: 'W2', at }),
      });
      expect(response.status).toBe(200);
      return ((await response.json()) as { lines: { reason: string; price: string }[] }).lines[0]!;
    };
    // Before W2 sent anything: its first charge would be the portfolio's 4th, after W1's three.
    const first = await reasonFor(KEY_TWO, '2025-10-05T00:00:00Z');
    expect(first.price).toBe('0.0012');
    expect(first.reason).toContain('volume tier 4:6 in 2025-10');
    expect(first.reason).not.toMatch(/message \d+ of/);
    const later = await reasonFor(KEY_TWO, '2025-10-20T00:00:00Z');
    expect(later.reason).toContain('volume tier 4:6 in 2025-10');
    expect(later.reason).not.toMatch(/message \d+ of/);
    // A key for the whole portfolio is told where the send stands.
    expect((await reasonFor(KEY_BOTH, '2025-10-05T00:00:00Z')).reason).toContain(
      'volume tier 4:6, message 4 of 2025-10',
    );
    expect((await reasonFor(KEY_ALL, '2025-10-20T00:00:00Z')).reason).toContain(
      'volume tier 4:6, message 6 of 2025-10',
    );
  });

  it("POST /v1/estimate: a campaign's lines do not move through the bands for such a key, which would give the count", async () => {
    const pricesFor = async (key: string, at: string) => {
      const response = await service.app.request('/v1/estimate', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
        body: JSON.stringify({
          phones: ['919899999991', '919899999992', '919899999993', '919899999994'],
          template: 'utility',
          waba: 'W2',
          at,
        }),
      });
      expect(response.status).toBe(200);
      const { lines } = (await response.json()) as { lines: { price: string }[] };
      return lines.map((line) => line.price);
    };
    // The portfolio had counted 3 by October 5 and 5 by October 20. Quoted moving through the bands (4:6 at
    // 0.0012, then 7: at 0.0010), the line where the price drops would give W2's key the count, and asked at
    // each instant, when each of W1's charges came. Such a key is quoted every line at the band of the
    // portfolio's next charge: what a one-recipient quote tells it, and no more.
    expect(await pricesFor(KEY_TWO, '2025-10-05T00:00:00Z')).toEqual([
      '0.0012',
      '0.0012',
      '0.0012',
      '0.0012',
    ]);
    expect(await pricesFor(KEY_TWO, '2025-10-20T00:00:00Z')).toEqual([
      '0.0012',
      '0.0012',
      '0.0012',
      '0.0012',
    ]);
    // A key for the whole portfolio is quoted the campaign as it would be charged.
    expect(await pricesFor(KEY_BOTH, '2025-10-05T00:00:00Z')).toEqual([
      '0.0012',
      '0.0012',
      '0.0012',
      '0.001',
    ]);
    expect(await pricesFor(KEY_ALL, '2025-10-20T00:00:00Z')).toEqual(['0.0012', '0.001', '0.001', '0.001']);
  });

  it("GET /v1/findings: META_TIER_AHEAD's words give the portfolio's count only to a key for all of it", async () => {
    // Meta says P1 reached India utility's band from 7 on October 12; wameter had counted 5 by then, so W2's
    // next charge is the 6th it counted: "but wameter counted 6" — a number that holds W1's three.
    const statement = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: 'W2',
          time: Date.parse('2025-10-12T10:00:00Z') / 1000,
          changes: [
            {
              field: 'account_update',
              value: {
                event: 'VOLUME_BASED_PRICING_TIER_UPDATE',
                volume_tier_info: {
                  tier_update_time: Date.parse('2025-10-12T10:00:00Z') / 1000,
                  pricing_category: 'UTILITY',
                  tier: '7:MAX',
                  effective_month: '2025-10',
                  region: 'India',
                },
              },
            },
          ],
        },
      ],
    });
    expect((await service.postWebhook(statement)).status).toBe(200);
    expect(
      (await service.postEvents([sent('W2', 'b3', '2025-10-13T10:00:00Z', '919820000003')])).status,
    ).toBe(200);
    const wordsFor = async (key: string) => {
      const response = await service.get('/v1/findings?code=META_TIER_AHEAD', key);
      expect(response.status).toBe(200);
      return ((await response.json()) as { findings: { message: string }[] }).findings.map((f) => f.message);
    };
    expect(await wordsFor(KEY_BOTH)).toEqual([expect.stringContaining('but wameter counted 6:')]);
    expect(await wordsFor(KEY_ALL)).toEqual([expect.stringContaining('but wameter counted 6:')]);
    // Before, the key for W2 alone read the 6 too.
    expect(await wordsFor(KEY_TWO)).toEqual([expect.stringContaining('but wameter counted fewer:')]);
    expect((await wordsFor(KEY_TWO)).join()).not.toMatch(/counted \d/);
  });
});
