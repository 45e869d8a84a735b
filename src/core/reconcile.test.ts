import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyticsCategory, metaCostToMicros, parseAnalyticsExport } from './reconcile.js';

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

  it("normalises Meta's category words of every era", () => {
    expect(analyticsCategory('MARKETING_LITE', 'REGULAR')).toBe('marketing');
    expect(analyticsCategory('authentication-international', undefined)).toBe('authentication_international');
    expect(analyticsCategory('SERVICE', 'FREE_ENTRY_POINT')).toBe('service');
    expect(analyticsCategory(undefined, undefined, 'USER_INITIATED')).toBe('user_initiated');
  });
});
