import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { billableUnit } from '../../test/support/units.js';
import { localDate } from './calendar.js';
import {
  DIFFERENCE_CAUSES,
  analyticsCategory,
  comparedPeriod,
  metaCostToMicros,
  normaliseMetaType,
  parseAnalyticsExport,
  reconcile,
  type AnalyticsExport,
  type BucketDifference,
  type ComparedPeriod,
  type ReconcileInput,
  type ReconciliationJson,
} from './reconcile.js';
import type { BillableUnit } from './units.js';

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/webhooks');

describe("Meta's words and numbers", () => {
  it('every analytics example of Meta parses', () => {
    const files = readdirSync(join(FIXTURES, 'meta-docs')).filter((f) => f.startsWith('analytics_'));
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const file of files) {
      const parsed = parseAnalyticsExport(
        JSON.parse(readFileSync(join(FIXTURES, 'meta-docs', file), 'utf8')),
      );
      expect(parsed.ok, file).toBe(true);
      if (parsed.ok) expect(parsed.value.points.length, file).toBeGreaterThan(0);
    }
  });

  it('reads the pricing export with its categories, types, countries and exact costs', () => {
    const parsed = parseAnalyticsExport(
      JSON.parse(
        readFileSync(
          join(FIXTURES, 'meta-docs/analytics_pricing_daily_tier_category_type_country.json'),
          'utf8',
        ),
      ),
    );
    if (!parsed.ok) throw new Error(parsed.error.message);
    expect(parsed.value.kind).toBe('pricing_analytics');
    const lite = parsed.value.points.find(
      (p) => p.costMicros === 10_000_000 && p.count === 1 && p.country === 'US',
    );
    expect(lite).toBeDefined();
    expect(parsed.value.points.map((p) => p.category)).toContain('authentication_international');
    expect(parsed.value.points.some((p) => p.category === 'marketing_lite')).toBe(false);
    expect(parsed.value.points.find((p) => p.type === 'free_entry_point')?.category).toBe('service');
  });

  it('the unwrapped conversation export parses and keeps the WABA id when given', () => {
    const unwrapped = parseAnalyticsExport(
      JSON.parse(
        readFileSync(
          join(FIXTURES, 'meta-docs/analytics_conversation_monthly_by_type_unwrapped.json'),
          'utf8',
        ),
      ),
    );
    expect(unwrapped.ok && unwrapped.value.kind).toBe('conversation_analytics');
    expect(unwrapped.ok && unwrapped.value.points[0]!.costMicros).toBe(88_101_000);
    const wrapped = parseAnalyticsExport(
      JSON.parse(
        readFileSync(join(FIXTURES, 'meta-docs/analytics_conversation_half_hour_by_category.json'), 'utf8'),
      ),
    );
    expect(wrapped.ok && wrapped.value.waba).toBe('102290129340398');
  });

  it('an unrecognised export is refused with what was expected', () => {
    expect(parseAnalyticsExport({ units: [] })).toMatchObject({
      ok: false,
      error: { code: 'UNRECOGNISED_ANALYTICS' },
    });
    expect(parseAnalyticsExport({ data: [{ data_points: [{ start: 1, end: 2 }] }] })).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('neither "conversation"') },
    });
    // Meta's error answer saved in place of the data says so, with Meta's own message.
    const refused = {
      error: { message: '(#100) Tried accessing nonexisting field', type: 'OAuthException', code: 100 },
    };
    expect(parseAnalyticsExport(refused)).toMatchObject({
      ok: false,
      error: {
        message: expect.stringContaining(
          `error answer of Meta's Graph API, not analytics data ("(#100) Tried accessing nonexisting field", code 100)`,
        ),
      },
    });
    // A count written as text is named as such, not as missing.
    const text = [{ start: 1, end: 2, volume: '3', cost: 0.1 }];
    expect(parseAnalyticsExport({ data: [{ data_points: text }] })).toMatchObject({
      ok: false,
      error: {
        message:
          'data[0].data_points[0] has a "volume" that is not a number ("3"): save Meta\'s Graph API answer as it came',
      },
    });
  });

  it('an export asked without metric_types COST (no point has a cost) is refused, never read as free', () => {
    const counts = [{ start: 1, end: 2, volume: 3, pricing_category: 'MARKETING' }];
    expect(parseAnalyticsExport({ pricing_analytics: { data: [{ data_points: counts }] } })).toMatchObject({
      ok: false,
      error: {
        code: 'UNRECOGNISED_ANALYTICS',
        message: expect.stringContaining('metric_types COST and VOLUME'),
      },
    });
    // A point without a cost among points with costs is read as 0, as before (a free point's cost left out).
    const mixed = [...counts, { start: 1, end: 2, volume: 1, pricing_category: 'SERVICE', cost: 0 }];
    const parsed = parseAnalyticsExport({ pricing_analytics: { data: [{ data_points: mixed }] } });
    expect(parsed.ok && parsed.value.points.map((p) => p.costMicros)).toEqual([0, 0]);
  });

  it("Meta's float cost becomes micros from its decimal form, rounded half up at the sixth decimal", () => {
    expect(metaCostToMicros(0.0432)).toBe(43_200);
    expect(metaCostToMicros(88.101)).toBe(88_101_000);
    expect(metaCostToMicros(0.1 + 0.2)).toBe(300_000); // 0.30000000000000004
    expect(metaCostToMicros(0.0000005)).toBe(1); // 5e-7
    expect(metaCostToMicros(0.0000004)).toBe(0);
    expect(metaCostToMicros(0)).toBe(0);
    expect(metaCostToMicros(1234.5678915)).toBe(1_234_567_892);
  });

  it('reads a cost past 2^53 micros exactly (a month of rupiah), never failing as a broken invariant', () => {
    expect(metaCostToMicros(12_345_678_901.25)).toBe(12_345_678_901_250_000n);
    expect(metaCostToMicros(-12_345_678_901.25)).toBe(-12_345_678_901_250_000n);
    expect(metaCostToMicros(1e21)).toBe(10n ** 27n);
    const parsed = parseAnalyticsExport({
      pricing_analytics: { data: [{ data_points: [{ start: 1, end: 2, volume: 1, cost: 10_000_000_000 }] }] },
    });
    expect(parsed.ok && parsed.value.points[0]!.costMicros).toBe(10_000_000_000_000_000n);
  });

  it("normalises Meta's category words of every era", () => {
    expect(analyticsCategory('MARKETING_LITE', 'REGULAR')).toBe('marketing');
    expect(analyticsCategory('authentication-international', undefined)).toBe('authentication_international');
    expect(analyticsCategory('SERVICE', 'FREE_ENTRY_POINT')).toBe('service');
    expect(analyticsCategory('MARKETING', 'FREE_ENTRY_POINT')).toBe('service');
    expect(analyticsCategory('MARKETING', 'FREE_ENTRY')).toBe('service'); // conversation_analytics' word
  });

  it("reads conversation_analytics' FREE_ENTRY as the free_entry_point of webhooks and pricing_analytics", () => {
    expect(normaliseMetaType('FREE_ENTRY')).toBe('free_entry_point');
    expect(normaliseMetaType('FREE_ENTRY_POINT')).toBe('free_entry_point');
    expect(normaliseMetaType('FREE_TIER')).toBe('free_tier');
    expect(normaliseMetaType('UNKNOWN')).toBeUndefined();
  });

  it('never makes up a category from a pricing type or a conversation direction', () => {
    expect(analyticsCategory(undefined, 'FREE_ENTRY_POINT')).toBeUndefined();
    expect(analyticsCategory('UNKNOWN', 'FREE_ENTRY_POINT')).toBeUndefined();
    const parsed = parseAnalyticsExport({
      data: [
        {
          data_points: [
            { start: 1, end: 2, conversation: 1, cost: 0, conversation_type: 'FREE_ENTRY_POINT' },
            { start: 1, end: 2, conversation: 1, cost: 0, conversation_direction: 'USER_INITIATED' },
            { start: 1, end: 2, conversation: 1, cost: 0, conversation_direction: 'UNKNOWN' },
          ],
        },
      ],
    });
    expect(
      parsed.ok && parsed.value.points.map(({ category, type, direction }) => [category, type, direction]),
    ).toEqual([
      [undefined, 'free_entry_point', undefined],
      [undefined, undefined, 'user_initiated'],
      [undefined, undefined, undefined],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Analytics: the compared period, what is left out, totals, Meta's currency

const TZ = 'Asia/Kolkata';
/** Unix seconds of local midnight in Kolkata (UTC+05:30, no DST). */
const kolkataMidnight = (day: string) => Date.parse(`${day}T00:00:00+05:30`) / 1000;

function unitAt(id: string, openedAt: string, over: Partial<BillableUnit> = {}): BillableUnit {
  return billableUnit({ id, openedAtMs: Date.parse(openedAt), ...over });
}

interface PointSpec {
  day: string;
  volume: number;
  cost: number;
  country?: string;
  category?: string;
  seconds?: number;
}

function dailyExport(points: PointSpec[], waba = 'W1'): AnalyticsExport {
  const parsed = parseAnalyticsExport({
    pricing_analytics: {
      data: [
        {
          data_points: points.map((p) => ({
            start: kolkataMidnight(p.day),
            end: kolkataMidnight(p.day) + (p.seconds ?? 86_400),
            volume: p.volume,
            cost: p.cost,
            country: p.country ?? 'IN',
            pricing_category: p.category ?? 'UTILITY',
            pricing_type: 'REGULAR',
          })),
        },
      ],
    },
    id: waba,
  });
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

function reconcileUnits(
  units: BillableUnit[],
  exported: AnalyticsExport,
  extra: Partial<ReconcileInput> & { period?: ComparedPeriod } = {},
): ReconciliationJson {
  const { period, ...rest } = extra;
  return reconcile({
    decisions: [],
    units,
    evidence: {
      sentIds: new Set(),
      statusIds: new Set(),
      wabasWithSendLog: new Set(),
      wabasWithPricedStatuses: new Set(),
    },
    timeZoneOf: () => TZ,
    billingCurrencyOf: () => ({ currency: 'USD', source: 'accounts' }),
    analytics: { export: exported, waba: 'W1', ...(period ? { period } : {}) },
    ...rest,
  });
}

/** A unit's fields under CBP-2023: a conversation, which conversation_analytics counts. */
const CBP_2023 = { unit: 'conversation', pricingModel: 'CBP', era: 'CBP-2023' } as const;

const bucketsOf = (result: ReconciliationJson) =>
  result.differences
    .filter((d): d is BucketDifference => 'bucket' in d)
    .map((d) => [d.bucket.day, d.cause, d.ours.units, d.meta.units]);

describe('the period compared with an analytics export', () => {
  // 05:30 UTC is 11:00 in Kolkata: each unit sits well inside its local day.
  const units = [
    unitAt('first', '2025-10-01T05:30:00Z'),
    unitAt('middle', '2025-10-15T05:30:00Z'),
    unitAt('last', '2025-10-31T05:30:00Z'),
  ];

  it("wameter's units on the first and last days Meta does not list are differences, not left out", () => {
    const result = reconcileUnits(units, dailyExport([{ day: '2025-10-15', volume: 1, cost: 0.0014 }]));
    expect(bucketsOf(result)).toEqual([
      ['2025-10-01', 'META_COUNTS_FEWER', 1, 0],
      ['2025-10-31', 'META_COUNTS_FEWER', 1, 0],
    ]);
    expect(result.analytics?.period).toEqual({
      from: '2025-10-01',
      to: '2025-10-31',
      time_zone: TZ,
      basis: 'export_months',
    });
    expect(result.analytics?.units).toBe(3);
  });

  it('a missing middle day is a difference too (as before)', () => {
    const result = reconcileUnits(
      units,
      dailyExport([
        { day: '2025-10-01', volume: 1, cost: 0.0014 },
        { day: '2025-10-31', volume: 1, cost: 0.0014 },
      ]),
    );
    expect(bucketsOf(result)).toEqual([['2025-10-15', 'META_COUNTS_FEWER', 1, 0]]);
  });

  it("a zero point of Meta's counts as a compared bucket: Meta said nothing was billed there, and wameter agrees", () => {
    const result = reconcileUnits(
      units,
      dailyExport([
        { day: '2025-10-01', volume: 1, cost: 0.0014 },
        { day: '2025-10-15', volume: 1, cost: 0.0014 },
        { day: '2025-10-20', volume: 0, cost: 0 },
        { day: '2025-10-31', volume: 1, cost: 0.0014 },
      ]),
    );
    expect(result.differences).toEqual([]);
    expect(result.analytics?.units).toBe(3);
    expect(result.checked.buckets).toBe(4);
    // A quiet period: Meta's export states zero, wameter has no unit — checked, and in agreement.
    const quiet = reconcileUnits([], dailyExport([{ day: '2025-10-20', volume: 0, cost: 0 }]));
    expect(quiet.differences).toEqual([]);
    expect(quiet.checked.buckets).toBe(1);
  });

  it("units outside the period, and other WABAs' units, are counted as not compared with their amounts", () => {
    const result = reconcileUnits(
      [
        ...units,
        unitAt('november', '2025-10-31T19:00:00Z'), // 00:30 on 1 November in Kolkata
        unitAt('other', '2025-10-15T05:30:00Z', { waba: 'W2', amountMicros: 25_000 }),
        unitAt('other-2', '2025-10-16T05:30:00Z', { waba: 'W3', currency: 'BRL', amountMicros: 5_000 }),
      ],
      dailyExport([
        { day: '2025-10-01', volume: 1, cost: 0.0014 },
        { day: '2025-10-15', volume: 1, cost: 0.0014 },
        { day: '2025-10-31', volume: 1, cost: 0.0014 },
      ]),
    );
    expect(result.differences).toEqual([]);
    expect(result.analytics?.units).toBe(3);
    expect(result.analytics?.not_compared).toEqual({
      outside_period: { units: 1, by_currency: { USD: { units: 1, amount: '0.0014' } } },
      other_wabas: {
        wabas: 2,
        units: 2,
        by_currency: { BRL: { units: 1, amount: '0.005' }, USD: { units: 1, amount: '0.025' } },
      },
      other_pricing_model: { units: 0, by_currency: {} },
      meta_outside_period: { units: 0, amount: '0' },
    });
  });

  it('--from/--to choose the period: what lies outside is not compared, on either side', () => {
    const exported = dailyExport([
      { day: '2025-10-15', volume: 1, cost: 0.0014 },
      { day: '2025-10-25', volume: 2, cost: 0.0028 },
    ]);
    const period = comparedPeriod(exported, TZ, { from: '2025-10-10', to: '2025-10-20' });
    expect(period).toEqual({
      ok: true,
      value: { from: '2025-10-10', to: '2025-10-20', basis: 'requested' },
    });
    if (!period.ok) return;
    const result = reconcileUnits(units, exported, { period: period.value });
    expect(result.differences).toEqual([]);
    expect(result.analytics?.units).toBe(1);
    expect(result.analytics?.not_compared.outside_period.units).toBe(2);
    expect(result.analytics?.not_compared.meta_outside_period).toEqual({ units: 2, amount: '0.0028' });
  });

  it('a period that cuts a monthly data point, ends before it starts, or is unknown is refused', () => {
    const monthly = dailyExport([{ day: '2025-10-01', volume: 3, cost: 0.0042, seconds: 31 * 86_400 }]);
    expect(comparedPeriod(monthly, TZ, { from: '2025-10-10' })).toMatchObject({
      ok: false,
      error: { code: 'ANALYTICS_PERIOD_CUTS_POINT' },
    });
    expect(comparedPeriod(monthly, TZ, { from: '2025-10-10', to: '2025-10-01' })).toMatchObject({
      ok: false,
      error: { code: 'BAD_PERIOD' },
    });
    const empty = parseAnalyticsExport({ pricing_analytics: { data: [{ data_points: [] }] } });
    if (!empty.ok) throw new Error(empty.error.message);
    expect(comparedPeriod(empty.value, TZ)).toMatchObject({
      ok: false,
      error: { code: 'ANALYTICS_PERIOD_UNKNOWN' },
    });
    expect(comparedPeriod(empty.value, TZ, { from: '2025-10-01', to: '2025-10-31' })).toMatchObject({
      ok: true,
      value: { basis: 'requested' },
    });
    expect(comparedPeriod(monthly, TZ)).toEqual({
      ok: true,
      value: { from: '2025-10-01', to: '2025-10-31', basis: 'export_months' },
    });
  });

  it('an unwrapped export without data points is an empty answer: compared over the period given, its kind the period’s', () => {
    for (const data of [[{ data_points: [] }], []]) {
      const empty = parseAnalyticsExport({ data });
      if (!empty.ok) throw new Error(empty.error.message);
      expect(empty.value).toEqual({ points: [] });
      expect(comparedPeriod(empty.value, TZ)).toMatchObject({
        ok: false,
        error: { code: 'ANALYTICS_PERIOD_UNKNOWN' },
      });
      const october = { from: '2025-10-01', to: '2025-10-31', basis: 'requested' } as const;
      const result = reconcileUnits(units, empty.value, { period: october });
      expect(result.analytics).toMatchObject({ kind: 'pricing_analytics', period: { from: '2025-10-01' } });
      // wameter's charges of October are differences Meta's empty answer lacks.
      expect(result.differences.length).toBeGreaterThan(0);
      const march2024 = { from: '2024-03-01', to: '2024-03-31', basis: 'requested' } as const;
      expect(reconcileUnits(units, empty.value, { period: march2024 }).analytics?.kind).toBe(
        'conversation_analytics',
      );
    }
  });

  it('a half-hour export is compared over the whole days it spans', () => {
    const halfHour = dailyExport([{ day: '2025-10-15', volume: 1, cost: 0.0014, seconds: 1800 }]);
    const result = reconcileUnits(units, halfHour);
    expect(result.analytics?.period).toMatchObject({
      from: '2025-10-15',
      to: '2025-10-15',
      basis: 'export_days',
    });
    expect(result.differences).toEqual([]);
    expect(result.analytics?.not_compared.outside_period.units).toBe(2);
  });
});

// Meta's conversation_analytics counts conversations only (the conversation-based eras); from 2025-07-01 in
// the WABA's time zone Meta bills per delivered message, which its pricing_analytics alone counts.

describe("a conversation_analytics export against wameter's units billed per message", () => {
  const conversation = (id: string, openedAt: string) =>
    unitAt(id, openedAt, {
      unit: 'conversation',
      pricingModel: 'CBP',
      era: 'CBP-2024-11',
      category: 'marketing',
      rateMicros: 10_700,
      amountMicros: 10_700,
      rule: 'CBP_OPENED',
    });
  /** Meta's DAILY conversation_analytics points of marketing conversations in India. */
  function conversationExport(points: { day: string; conversations: number; cost: number }[]) {
    const parsed = parseAnalyticsExport({
      conversation_analytics: {
        data: [
          {
            data_points: points.map((p) => ({
              start: kolkataMidnight(p.day),
              end: kolkataMidnight(p.day) + 86_400,
              conversation: p.conversations,
              cost: p.cost,
              country: 'IN',
              conversation_category: 'MARKETING',
            })),
          },
        ],
      },
      id: 'W1',
    });
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value;
  }
  const june = [conversation('c1', '2025-06-15T05:30:00Z'), conversation('c2', '2025-06-30T05:30:00Z')];
  // 20:00Z on 30 June is 01:30 on 1 July in Kolkata: billed per message, though still June in UTC.
  const perMessage = [unitAt('m1', '2025-06-30T20:00:00Z'), unitAt('m2', '2025-07-15T05:30:00Z')];
  const junePoints = [
    { day: '2025-06-15', conversations: 1, cost: 0.0107 },
    { day: '2025-06-30', conversations: 1, cost: 0.0107 },
  ];

  it('a period reaching past 2025-07-01 compares the conversations only; the messages are not compared', () => {
    const exported = conversationExport(junePoints);
    const period = comparedPeriod(exported, TZ, { from: '2025-06-01', to: '2025-07-31' });
    if (!period.ok) throw new Error(period.error.message);
    const result = reconcileUnits([...june, ...perMessage], exported, { period: period.value });
    expect(result.differences).toEqual([]);
    expect(result.analytics?.units).toBe(2);
    expect(result.analytics?.totals[0]).toMatchObject({
      ours: { units: 2, amount: '0.0214' },
      difference: { units: 0, amount: '0' },
    });
    expect(result.analytics?.not_compared.other_pricing_model).toEqual({
      units: 2,
      by_currency: { USD: { units: 2, amount: '0.0028' } },
      reason: expect.stringContaining(
        "Meta's conversation_analytics does not count them; its pricing_analytics does",
      ) as unknown,
    });
    expect(result.analytics?.not_compared.outside_period.units).toBe(0);
  });

  it("an export whose points reach into July (a zero point) compares June's conversations only", () => {
    const exported = conversationExport([...junePoints, { day: '2025-07-02', conversations: 0, cost: 0 }]);
    const result = reconcileUnits([...june, ...perMessage], exported);
    expect(result.analytics?.period).toMatchObject({ from: '2025-06-01', to: '2025-07-31' });
    expect(result.differences).toEqual([]);
    expect(result.analytics?.not_compared.other_pricing_model.units).toBe(2);
  });

  it('a period wholly billed per message is no wall of differences: nothing of it is compared', () => {
    const empty = parseAnalyticsExport({ conversation_analytics: { data: [] }, id: 'W1' });
    if (!empty.ok) throw new Error(empty.error.message);
    const july = { from: '2025-07-01', to: '2025-07-31', basis: 'requested' } as const;
    const units = [unitAt('a', '2025-07-03T05:30:00Z'), unitAt('b', '2025-07-04T05:30:00Z'), perMessage[1]!];
    const result = reconcileUnits(units, empty.value, { period: july });
    expect(result.differences).toEqual([]);
    expect(result.checked.buckets).toBe(0);
    expect(result.analytics).toMatchObject({
      kind: 'conversation_analytics',
      units: 0,
      not_compared: { other_pricing_model: { units: 3 } },
    });
    // The same export against conversations of that period: they are compared (and Meta has none of them).
    const late = conversation('late', '2025-07-03T05:30:00Z');
    expect(bucketsOf(reconcileUnits([late], empty.value, { period: july }))).toEqual([
      ['2025-07-03', 'META_COUNTS_FEWER', 1, 0],
    ]);
  });

  it('a pricing_analytics export compares every unit, conversations too (as /v1/analytics?metric=pricing)', () => {
    const exported = dailyExport([
      { day: '2025-06-15', volume: 1, cost: 0.0107, category: 'MARKETING' },
      { day: '2025-06-30', volume: 1, cost: 0.0107, category: 'MARKETING' },
      { day: '2025-07-01', volume: 1, cost: 0.0014 },
      { day: '2025-07-15', volume: 1, cost: 0.0014 },
    ]);
    const result = reconcileUnits([...june, ...perMessage], exported);
    expect(result.differences).toEqual([]);
    expect(result.analytics?.units).toBe(4);
    expect(result.analytics?.not_compared.other_pricing_model).toEqual({ units: 0, by_currency: {} });
  });
});

describe('totals and currency of an analytics comparison', () => {
  it("prints wameter's total, Meta's total and the difference for the WABA", () => {
    const result = reconcileUnits(
      [
        unitAt('a', '2025-10-02T05:30:00Z'),
        unitAt('b', '2025-10-02T06:30:00Z'),
        unitAt('c', '2025-10-03T05:30:00Z', { amountMicros: null }),
      ],
      dailyExport([
        { day: '2025-10-02', volume: 2, cost: 0.0028 },
        { day: '2025-10-03', volume: 2, cost: 0.0107 },
      ]),
    );
    expect(result.analytics?.totals).toEqual([
      {
        waba: 'W1',
        currency: 'USD',
        ours: { units: 3, amount: '0.0028', unpriced_units: 1 },
        meta: { units: 4, amount: '0.0135', currency_stated: false },
        difference: { units: 1, amount: '0.0107' },
      },
    ]);
  });

  it('adds totals past 2^53 micros exactly (billions of rupiah)', () => {
    const idr = { currency: 'IDR', rateMicros: 5_000_000_000_000_000, amountMicros: 5_000_000_000_000_000 };
    const result = reconcileUnits(
      [unitAt('a', '2025-10-02T05:30:00Z', idr), unitAt('b', '2025-10-03T05:30:00Z', idr)],
      dailyExport([
        { day: '2025-10-02', volume: 1, cost: 5_000_000_000 },
        { day: '2025-10-03', volume: 1, cost: 5_000_000_001.25 },
      ]),
      { billingCurrencyOf: () => ({ currency: 'IDR', source: 'accounts' }) },
    );
    expect(result.analytics?.totals).toEqual([
      {
        waba: 'W1',
        currency: 'IDR',
        ours: { units: 2, amount: '10000000000' },
        meta: { units: 2, amount: '10000000001.25', currency_stated: false },
        difference: { units: 0, amount: '1.25' },
      },
    ]);
  });

  it("Meta's side of a bucket says its export states no currency", () => {
    const result = reconcileUnits(
      [unitAt('a', '2025-10-02T05:30:00Z')],
      dailyExport([{ day: '2025-10-02', volume: 1, cost: 0.002 }]),
    );
    const [difference] = result.differences as BucketDifference[];
    expect(difference?.cause).toBe('COST_DIFFERS');
    expect(difference?.meta).toMatchObject({ amount: '0.002', currency_stated: false });
    expect(result.analytics).toMatchObject({ currency: 'USD', currency_source: 'accounts' });
    expect(result.analytics?.currency_ratio).toBeUndefined();
  });

  it('one ratio Meta/wameter across the cost differences, far from 1, is blamed on the currency, not the rates', () => {
    const days = ['2025-10-02', '2025-10-03', '2025-10-04', '2025-10-05'];
    const result = reconcileUnits(
      days.map((day, i) =>
        unitAt(`u${i}`, `${day}T05:30:00Z`, { amountMicros: 1400 * (i + 1), rateMicros: 1400 * (i + 1) }),
      ),
      // Meta's amounts are in INR: 88 times wameter's USD amounts (to the rounding of its export).
      dailyExport(days.map((day, i) => ({ day, volume: 1, cost: Number((0.1232 * (i + 1)).toFixed(4)) }))),
    );
    const causes = result.differences.map((d) => d.cause);
    expect(causes).toEqual([
      'CURRENCY_MISMATCH',
      'CURRENCY_MISMATCH',
      'CURRENCY_MISMATCH',
      'CURRENCY_MISMATCH',
    ]);
    expect(result.differences[0]!.note).toContain('currency');
    expect(result.differences[0]!.note).not.toContain("import Meta's official rate card");
    expect(result.analytics?.currency_ratio).toEqual({
      meta_per_wameter: '88',
      cost_differences: 4,
      matching: 4,
    });
  });

  it('cost differences without one common ratio stay COST_DIFFERS', () => {
    const days = ['2025-10-02', '2025-10-03', '2025-10-04'];
    const result = reconcileUnits(
      days.map((day, i) => unitAt(`u${i}`, `${day}T05:30:00Z`)),
      dailyExport(days.map((day, i) => ({ day, volume: 1, cost: [0.0028, 0.0107, 0.0042][i]! }))),
    );
    expect(result.differences.map((d) => d.cause)).toEqual(['COST_DIFFERS', 'COST_DIFFERS', 'COST_DIFFERS']);
    expect(result.analytics?.currency_ratio).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------
// A time zone whose midnight falls inside one of Meta's half hours (Asia/Kathmandu, UTC+05:45): Meta's
// HALF_HOUR points are cut on the clock (18:00Z–18:30Z), so one of them crosses local midnight (23:45–00:15).

describe("a half-hour data point across the WABA's local midnight (Asia/Kathmandu, UTC+05:45)", () => {
  const KATHMANDU = 'Asia/Kathmandu';
  /** A marketing conversation of CBP-2023, as conversation_analytics counts them. */
  const marketing: Partial<BillableUnit> = {
    ...CBP_2023,
    category: 'marketing',
    amountMicros: 9_900,
    rateMicros: 9_900,
  };
  /** Meta's HALF_HOUR conversation_analytics points: [start ISO, conversations, cost]. */
  const halfHours = (points: [string, number, number][]): AnalyticsExport => {
    const parsed = parseAnalyticsExport({
      conversation_analytics: {
        data: [
          {
            data_points: points.map(([start, conversation, cost]) => ({
              start: Date.parse(start) / 1000,
              end: Date.parse(start) / 1000 + 1800,
              country: 'IN',
              conversation_type: 'REGULAR',
              conversation_category: 'MARKETING',
              conversation,
              cost,
            })),
          },
        ],
      },
      id: 'W1',
    });
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value;
  };
  const inKathmandu = { timeZoneOf: () => KATHMANDU };
  // 18:10Z is 23:55 on 5 July in Kathmandu, 18:20Z is 00:05 on 6 July: both inside Meta's 18:00Z–18:30Z point.
  const acrossMidnight = [
    unitAt('before', '2023-07-05T18:10:00Z', marketing),
    unitAt('after', '2023-07-05T18:20:00Z', marketing),
  ];

  it('the default period holds both local days the half hour touches', () => {
    const exported = halfHours([['2023-07-05T18:00:00Z', 2, 0.0198]]);
    expect(comparedPeriod(exported, KATHMANDU)).toEqual({
      ok: true,
      value: { from: '2023-07-05', to: '2023-07-06', basis: 'export_days' },
    });
  });

  it("wameter's units of that half hour, on either side of midnight, agree with Meta's point", () => {
    const exported = halfHours([['2023-07-05T18:00:00Z', 2, 0.0198]]);
    const result = reconcileUnits(acrossMidnight, exported, inKathmandu);
    expect(result.differences).toEqual([]);
    expect(result.analytics?.period).toEqual({
      from: '2023-07-05',
      to: '2023-07-06',
      time_zone: KATHMANDU,
      basis: 'export_days',
    });
    expect(result.analytics?.units).toBe(2);
    expect(result.analytics?.not_compared.outside_period.units).toBe(0);
    expect(result.analytics?.totals[0]?.difference).toEqual({ units: 0, amount: '0' });
  });

  it('agrees too over a requested period holding both days, and refuses one holding only one of them', () => {
    const exported = halfHours([['2023-07-05T18:00:00Z', 2, 0.0198]]);
    const period = comparedPeriod(exported, KATHMANDU, { from: '2023-07-05', to: '2023-07-06' });
    if (!period.ok) throw new Error(period.error.message);
    expect(
      reconcileUnits(acrossMidnight, exported, { ...inKathmandu, period: period.value }).differences,
    ).toEqual([]);
    for (const requested of [{ from: '2023-07-06' }, { to: '2023-07-05' }]) {
      expect(comparedPeriod(exported, KATHMANDU, requested), JSON.stringify(requested)).toMatchObject({
        ok: false,
        error: { code: 'ANALYTICS_PERIOD_CUTS_POINT' },
      });
    }
  });

  it('a real difference in that half hour, or beside it, is still found', () => {
    const exported = halfHours([
      ['2023-07-05T17:30:00Z', 1, 0.0099], // 23:15–23:45 on 5 July
      ['2023-07-05T18:00:00Z', 2, 0.0198], // 23:45–00:15, across midnight
    ]);
    const result = reconcileUnits(
      [
        unitAt('late-evening', '2023-07-05T17:40:00Z', marketing),
        unitAt('after', '2023-07-05T18:20:00Z', marketing),
        unitAt('past-midnight', '2023-07-05T18:40:00Z', marketing), // 00:25 on 6 July: Meta has no point
      ],
      exported,
      inKathmandu,
    );
    expect(bucketsOf(result)).toEqual([
      ['2023-07-05..2023-07-06', 'MISSING_WEBHOOK', 1, 2],
      ['2023-07-06', 'META_COUNTS_FEWER', 1, 0],
    ]);
    expect(result.analytics?.totals[0]?.difference).toEqual({ units: 0, amount: '0' });
  });

  it('a half hour inside one local day adds into that day as before', () => {
    const exported = halfHours([
      ['2023-07-05T17:00:00Z', 1, 0.0099],
      ['2023-07-05T17:30:00Z', 1, 0.0099],
    ]);
    const result = reconcileUnits(
      [unitAt('a', '2023-07-05T17:10:00Z', marketing), unitAt('b', '2023-07-05T17:20:00Z', marketing)],
      exported,
      inKathmandu,
    );
    expect(result.differences).toEqual([]);
    expect(result.checked.buckets).toBe(1);
    expect(result.analytics?.period).toMatchObject({ from: '2023-07-05', to: '2023-07-05' });
  });
});

describe("Meta's half-hour points against wameter's units of the same half hours, in any time zone", () => {
  const SEED = 20_230_705;
  const HALF_HOUR_S = 1800;
  // Zones whose midnight falls on the hour, the half hour (Kolkata, St John's) and the quarter (Kathmandu,
  // Chatham, Eucla): in the last ones one of Meta's half hours crosses every local midnight.
  const zones = [
    'UTC',
    'Asia/Kolkata',
    'America/St_Johns',
    'Asia/Kathmandu',
    'Pacific/Chatham',
    'Australia/Eucla',
  ];
  const scenario = fc.record({
    timeZone: fc.constantFrom(...zones),
    /** Half hours after 2023-07-04T00:00Z with traffic, and the conversations opened in each. */
    halfHours: fc.uniqueArray(fc.record({ index: fc.nat(200), count: fc.integer({ min: 1, max: 3 }) }), {
      minLength: 1,
      maxLength: 12,
      selector: (h) => h.index,
    }),
    dropped: fc.nat(),
  });
  const base = Date.parse('2023-07-04T00:00:00Z') / 1000;
  const build = (halfHours: { index: number; count: number }[]) => {
    const points = halfHours.map((h) => ({
      start: base + h.index * HALF_HOUR_S,
      end: base + (h.index + 1) * HALF_HOUR_S,
      country: 'IN',
      conversation_category: 'MARKETING',
      conversation: h.count,
      cost: Number((0.0099 * h.count).toFixed(4)),
    }));
    const parsed = parseAnalyticsExport({ conversation_analytics: { data: [{ data_points: points }] } });
    if (!parsed.ok) throw new Error(parsed.error.message);
    const units = halfHours.flatMap((h) =>
      Array.from({ length: h.count }, (_, k) =>
        billableUnit({
          ...CBP_2023,
          id: `u${h.index}-${k}`,
          openedAtMs: (base + h.index * HALF_HOUR_S) * 1000 + k * 10 * 60_000 + 60_000,
          category: 'marketing',
          amountMicros: 9_900,
          rateMicros: 9_900,
        }),
      ),
    );
    return { exported: parsed.value, units };
  };

  it(`agree when they count the same, and one unit fewer is one difference (seed ${SEED})`, () => {
    fc.assert(
      fc.property(scenario, ({ timeZone, halfHours, dropped }) => {
        const { exported, units } = build(halfHours);
        const inZone = { timeZoneOf: () => timeZone };
        const agreeing = reconcileUnits(units, exported, inZone);
        expect(agreeing.differences).toEqual([]);
        expect(agreeing.analytics?.units).toBe(units.length);
        const missing = reconcileUnits(
          units.filter((_, i) => i !== dropped % units.length),
          exported,
          inZone,
        );
        expect(
          bucketsOf(missing).map(([, cause, ours, meta]) => [cause, Number(meta) - Number(ours)]),
        ).toEqual([['MISSING_WEBHOOK', 1]]);
        const { from, to } = missing.analytics!.period;
        for (const [day] of bucketsOf(missing)) {
          for (const end of String(day).split('..')) expect(end >= from && end <= to, `${day}`).toBe(true);
        }
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});

describe('a daily data point cut a few hours off the accounts file’s time zone', () => {
  // Meta cut the day at midnight UTC+08:00 (16:00Z, 21:30 in Kolkata the day before); the accounts file says
  // Asia/Kolkata. The point is the day it mostly covers, in the period and in its bucket alike.
  const dayAtPlus8 = (day: string) => Date.parse(`${day}T00:00:00+08:00`) / 1000;
  const exported = (() => {
    const parsed = parseAnalyticsExport({
      pricing_analytics: {
        data: [
          {
            data_points: ['2025-10-15', '2025-10-16'].map((day) => ({
              start: dayAtPlus8(day),
              end: dayAtPlus8(day) + 86_400,
              volume: 1,
              cost: 0.0014,
              country: 'IN',
              pricing_category: 'UTILITY',
              pricing_type: 'REGULAR',
            })),
          },
        ],
      },
      id: 'W1',
    });
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value;
  })();

  it('a unit far from either midnight agrees with the point of its day', () => {
    const period = comparedPeriod(exported, TZ, { from: '2025-10-15', to: '2025-10-16' });
    if (!period.ok) throw new Error(period.error.message);
    const result = reconcileUnits(
      [unitAt('a', '2025-10-15T05:30:00Z'), unitAt('b', '2025-10-16T05:30:00Z')],
      exported,
      { period: period.value },
    );
    expect(result.differences).toEqual([]);
    expect(result.analytics?.not_compared.meta_outside_period.units).toBe(0);
  });

  it('a unit between the two midnights is a time-zone day edge', () => {
    // 2025-10-15T17:00Z is 22:30 on the 15th in Kolkata and 01:00 on the 16th at UTC+08:00.
    const result = reconcileUnits(
      [unitAt('a', '2025-10-15T05:30:00Z'), unitAt('b', '2025-10-15T17:00:00Z')],
      exported,
    );
    expect(bucketsOf(result)).toEqual([
      ['2025-10-15', 'TIME_ZONE_DAY_EDGE', 2, 1],
      ['2025-10-16', 'TIME_ZONE_DAY_EDGE', 0, 1],
    ]);
  });
});

describe('every combination of dimensions an export of Meta can carry', () => {
  type Dimension = 'category' | 'type' | 'direction' | 'country' | 'phone' | 'tier';
  interface Era {
    name: string;
    kind: NonNullable<AnalyticsExport['kind']>;
    dimensions: Dimension[];
    units: BillableUnit[];
    /** A charged unit, which Meta's side files as a free entry point in the last test. */
    charged: string;
  }
  const phoneOf: Record<string, string> = { PN1: '15550001111', PN2: '15550002222' };
  const unit =
    (era: BillableUnit['era'], days: [string, string]) =>
    (
      id: string,
      second: boolean,
      country: string,
      business: string,
      category: BillableUnit['category'],
      type: BillableUnit['type'],
      amountMicros: number,
    ) =>
      unitAt(id, `${days[second ? 1 : 0]}T05:30:00Z`, {
        era,
        pricingModel: era.startsWith('PMP') ? 'PMP' : 'CBP',
        unit: era.startsWith('PMP') ? 'message' : 'conversation',
        country,
        business,
        category,
        type,
        amountMicros,
      });
  const pmp = unit('PMP-2025', ['2025-10-10', '2025-10-20']);
  const cbp2023 = unit('CBP-2023', ['2024-03-10', '2024-03-20']);
  const cbp2022 = unit('CBP-2022', ['2022-06-10', '2022-06-20']);
  const eras: Era[] = [
    {
      name: 'pricing_analytics (PMP)',
      kind: 'pricing_analytics',
      dimensions: ['category', 'type', 'country', 'phone', 'tier'],
      charged: 'p1',
      units: [
        pmp('p1', false, 'IN', 'PN1', 'marketing', 'regular', 10_700),
        pmp('p2', false, 'IN', 'PN2', 'marketing', 'regular', 10_700),
        pmp('p3', false, 'BR', 'PN1', 'utility', 'regular', 6_800),
        pmp('p4', false, 'IN', 'PN1', 'utility', 'free_customer_service', 0),
        pmp('p5', true, 'IN', 'PN1', 'service', 'free_customer_service', 0),
        pmp('p6', true, 'BR', 'PN2', 'authentication_international', 'regular', 20_000),
        pmp('p7', true, 'IN', 'PN2', 'referral_conversion', 'free_entry_point', 0),
      ],
    },
    {
      name: 'conversation_analytics (CBP-2023)',
      kind: 'conversation_analytics',
      dimensions: ['category', 'type', 'direction', 'country', 'phone'],
      charged: 'c1',
      units: [
        cbp2023('c1', false, 'IN', 'PN1', 'marketing', 'regular', 9_900),
        cbp2023('c2', false, 'IN', 'PN2', 'marketing', 'regular', 9_900),
        cbp2023('c3', false, 'BR', 'PN1', 'utility', 'regular', 8_000),
        cbp2023('c4', false, 'IN', 'PN1', 'service', 'free_tier', 0),
        cbp2023('c5', true, 'IN', 'PN1', 'service', 'regular', 4_000),
        cbp2023('c6', true, 'BR', 'PN2', 'authentication', 'regular', 31_500),
        cbp2023('c7', true, 'IN', 'PN2', 'referral_conversion', 'free_entry_point', 0),
      ],
    },
    {
      name: 'conversation_analytics (CBP-2022)',
      kind: 'conversation_analytics',
      dimensions: ['type', 'direction', 'country', 'phone'],
      charged: 'b2',
      units: [
        cbp2022('b1', false, 'IN', 'PN1', 'business_initiated', 'free_tier', 0),
        cbp2022('b2', false, 'IN', 'PN2', 'business_initiated', 'regular', 7_300),
        cbp2022('b3', false, 'BR', 'PN1', 'user_initiated', 'regular', 3_000),
        cbp2022('b4', true, 'IN', 'PN1', 'user_initiated', 'free_tier', 0),
        cbp2022('b5', true, 'IN', 'PN2', 'referral_conversion', 'free_entry_point', 0),
      ],
    },
  ];

  /** What Meta writes for a unit in each dimension (free entry points under SERVICE, as its examples do). */
  function metaWords(u: BillableUnit, index: number): Record<Dimension, string> {
    const isFep = u.type === 'free_entry_point';
    const isUser = isFep || u.category === 'service' || u.category === 'user_initiated';
    return {
      category: isFep ? 'SERVICE' : u.category.toUpperCase(),
      type: u.type.toUpperCase(),
      direction: isUser ? 'USER_INITIATED' : 'BUSINESS_INITIATED',
      country: u.country!,
      phone: phoneOf[u.business]!,
      tier: index % 2 === 0 ? '0:1' : '1:MAX',
    };
  }

  /** Meta's export of `units` broken down by `dimensions` (and day), as the Graph API answers. */
  function metaExport(era: Era, units: BillableUnit[], dimensions: Dimension[]): AnalyticsExport {
    const isPricing = era.kind === 'pricing_analytics';
    const field: Record<Dimension, string> = {
      category: isPricing ? 'pricing_category' : 'conversation_category',
      type: isPricing ? 'pricing_type' : 'conversation_type',
      direction: 'conversation_direction',
      country: 'country',
      phone: isPricing ? 'phone' : 'phone_number',
      tier: 'tier',
    };
    const points = new Map<string, Record<string, string | number>>();
    units.forEach((u, index) => {
      const words = metaWords(u, index);
      const day = localDate(u.openedAtMs, TZ);
      const key = [day, ...dimensions.map((d) => words[d])].join('|');
      const point = points.get(key) ?? {
        start: kolkataMidnight(day),
        end: kolkataMidnight(day) + 86_400,
        count: 0,
        micros: 0,
        ...Object.fromEntries(dimensions.map((d) => [field[d], words[d]])),
      };
      point.count = Number(point.count) + 1;
      point.micros = Number(point.micros) + (u.amountMicros ?? 0);
      points.set(key, point);
    });
    const data_points = [...points.values()].map(({ count, micros, ...rest }) => ({
      ...rest,
      [isPricing ? 'volume' : 'conversation']: count,
      cost: Number(micros) / 1_000_000,
    }));
    const parsed = parseAnalyticsExport({ [era.kind]: { data: [{ data_points }] }, id: 'W1' });
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value;
  }

  const subsets = (dimensions: Dimension[]): Dimension[][] =>
    dimensions.reduce<Dimension[][]>((all, d) => [...all, ...all.map((s) => [...s, d])], [[]]);
  const cases = eras.flatMap((era) => subsets(era.dimensions).map((dimensions) => ({ era, dimensions })));
  const label = ({ era, dimensions }: (typeof cases)[number]) =>
    `${era.name} by ${dimensions.length > 0 ? dimensions.join(' × ') : 'day only'}`;

  it('covers every subset of each kind of export', () => {
    expect(cases).toHaveLength(32 + 32 + 16);
  });

  it('the same units and costs agree in every combination', () => {
    for (const c of cases) {
      const result = reconcileUnits(c.era.units, metaExport(c.era, c.era.units, c.dimensions));
      expect(result.differences, label(c)).toEqual([]);
      expect(result.checked.buckets, label(c)).toBeGreaterThan(0);
    }
  });

  it('a unit Meta counts that wameter lacks is one difference, in the bucket of the dimensions compared', () => {
    for (const c of cases) {
      const lacking = c.era.units.at(-1)!; // the free entry point
      const has = (d: Dimension) => c.dimensions.includes(d);
      const result = reconcileUnits(
        c.era.units.filter((u) => u !== lacking),
        metaExport(c.era, c.era.units, c.dimensions),
      );
      const byCategory = has('category');
      expect(result.differences, label(c)).toEqual([
        expect.objectContaining({
          bucket: {
            waba: 'W1',
            day: localDate(lacking.openedAtMs, TZ),
            country: has('country') ? lacking.country : '*',
            category: byCategory ? 'service' : '*',
            ...(!byCategory && has('type') ? { type: 'free_entry_point' } : {}),
            ...(!byCategory && has('direction') ? { direction: 'user_initiated' } : {}),
          },
          cause: 'MISSING_WEBHOOK',
        }),
      ]);
    }
  });

  it('a charged unit Meta filed as a free entry point is found: by count where a dimension tells, else by cost', () => {
    for (const c of cases) {
      const metaUnits = c.era.units.map((u) =>
        u.id === c.era.charged
          ? {
              ...u,
              category: 'referral_conversion' as const,
              type: 'free_entry_point' as const,
              amountMicros: 0,
            }
          : u,
      );
      const result = reconcileUnits(c.era.units, metaExport(c.era, metaUnits, c.dimensions));
      const causes = result.differences.map((d) => d.cause).sort();
      const isTold = c.dimensions.some((d) => d === 'category' || d === 'type' || d === 'direction');
      expect(causes, label(c)).toEqual(isTold ? ['META_COUNTS_FEWER', 'MISSING_WEBHOOK'] : ['COST_DIFFERS']);
    }
  });
});

describe('cause codes', () => {
  it('every cause a difference can have is documented with what to do', () => {
    const docs = readFileSync(join(import.meta.dirname, '../../docs/estimate-and-reconcile.md'), 'utf8');
    const documented = [...docs.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(new Set(documented)).toEqual(new Set(DIFFERENCE_CAUSES));
    expect(DIFFERENCE_CAUSES).toContain('CONVERSATION_MISMATCH');
  });
});
