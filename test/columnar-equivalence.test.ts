// The columnar rater (src/core/columnar) against the Rater: for any input it either bails out, having called
// its sink nothing, or gives exactly the Rater's sink calls (units and pending messages, in order) and summary.
// Generated traffic of several shapes, hand-made corners, the golden scenarios and Meta's webhook fixtures.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureJsonFiles } from './support/fixture-files.js';
import { generateAccounts, generateTraffic, type TrafficOptions } from '../bench/generate-traffic.js';
import {
  BYTES_PER_ID,
  ColumnarRater,
  MAX_PRESIZED_IDS,
  TEMPLATE_CODES,
} from '../src/core/columnar/columnar-rater.js';
import type { CoreEvent, MetaPricingEvidence, OutboundEvent, StatusEvent } from '../src/core/events.js';
import { createMarketResolver, parseMarketTable } from '../src/core/market.js';
import type { RateCard } from '../src/core/pricing-context.js';
import { createRateBook } from '../src/core/rate-card.js';
import { Rater, type RaterSummary } from '../src/core/rate-events.js';
import { readEventSources } from '../src/ingest/read-events.js';
import { loadRatingSetup, type RatingSetup } from '../src/use-cases/load-rating-setup.js';
import { ratingOptionsFor } from '../src/use-cases/rate-sources.js';

const scratch = mkdtempSync(join(tmpdir(), 'wameter-columnar-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

type Call = ['unit' | 'pending', unknown];

async function setupOf(input: Parameters<typeof loadRatingSetup>[0] = {}): Promise<RatingSetup> {
  const setup = await loadRatingSetup(input);
  if (!setup.ok) throw new Error(setup.error.message);
  return setup.value;
}

async function eventsOf(paths: string[]): Promise<CoreEvent[]> {
  const events: CoreEvent[] = [];
  await readEventSources(paths, { onEvents: (read) => events.push(...read), onError: () => undefined });
  return events;
}

/** Both engines over the same events: the Rater's calls and summary, the columnar rater's calls and outcome. */
function rateBoth(events: readonly CoreEvent[], setup: RatingSetup, isReportedRulesEnabled?: boolean) {
  const options = ratingOptionsFor(setup);
  if (isReportedRulesEnabled !== undefined) options.isReportedRulesEnabled = isReportedRulesEnabled;
  const run = <T>(make: (sink: { unit(u: unknown): void; pending(p: unknown): void }) => T) => {
    const calls: Call[] = [];
    const engine = make({
      unit: (unit) => calls.push(['unit', unit]),
      pending: (message) => calls.push(['pending', message]),
    });
    return { calls, engine };
  };
  const rater = run((sink) => new Rater(options, sink));
  for (const event of events) rater.engine.add(event);
  const summary: RaterSummary = rater.engine.finish();
  const columnar = run((sink) => new ColumnarRater(options, sink));
  for (const event of events) columnar.engine.add(event);
  const outcome = columnar.engine.finish();
  // A size hint presizes its columns (for 2,000 ids: more than most inputs here hold, fewer than the
  // largest): the same calls and outcome, whether its columns grow from the hint's size or never grow.
  const hinted = run((sink) => new ColumnarRater(options, sink, { bytes: 2_000 * BYTES_PER_ID }));
  for (const event of events) hinted.engine.add(event);
  const hintedOutcome = hinted.engine.finish();
  expect(hinted.calls).toEqual(columnar.calls);
  expect(hintedOutcome).toEqual(outcome);
  return { rater: { calls: rater.calls, summary }, columnar: { calls: columnar.calls, outcome } };
}

/** Bailed (and said nothing), or exactly the Rater's output: the bail reason, or `undefined` when it rated. */
function expectEquivalent(both: ReturnType<typeof rateBoth>): string | undefined {
  const { rater, columnar } = both;
  if ('bail' in columnar.outcome) {
    expect(columnar.calls).toEqual([]);
    return columnar.outcome.bail;
  }
  expect(columnar.calls.length).toBe(rater.calls.length);
  expect(columnar.calls).toEqual(rater.calls);
  expect(columnar.outcome).toEqual(rater.summary);
  expect(columnar.outcome.decisions).toEqual([]);
  expect(columnar.outcome.timeline).toEqual([]);
  return undefined;
}

async function generated(name: string, options: TrafficOptions) {
  const path = join(scratch, `${name}.ndjson`);
  writeFileSync(path, [...generateTraffic(options)].join('\n') + '\n');
  const accountsPath = join(scratch, `${name}.accounts.json`);
  writeFileSync(accountsPath, JSON.stringify(generateAccounts(options)));
  return { events: await eventsOf([path]), setup: await setupOf({ accountsPath }) };
}

describe('columnar rater: generated traffic is rated as the Rater rates it, or given up', () => {
  const shapes: [string, TrafficOptions, string | undefined][] = [
    ['default shape', { seed: 11, eventsTarget: 12_000, users: 600 }, undefined],
    ['another seed', { seed: 12, eventsTarget: 12_000, users: 2_000 }, undefined],
    [
      'disorder and duplicates',
      { seed: 13, eventsTarget: 8_000, users: 150, disorder: 0.5, duplicates: 0.3 },
      undefined,
    ],
    [
      'far disorder',
      { seed: 14, eventsTarget: 6_000, users: 100, disorder: 1, disorderMaxMinutes: 3_000 },
      undefined,
    ],
    ['webhooks only', { seed: 15, eventsTarget: 8_000, users: 400, webhookFraction: 1, days: 3 }, undefined],
    ['no webhooks', { seed: 16, eventsTarget: 8_000, users: 400, webhookFraction: 0 }, undefined],
    ['time-ordered', { seed: 17, eventsTarget: 8_000, users: 300, timeOrdered: true }, undefined],
    ['mid-PMP-2025', { seed: 18, eventsTarget: 8_000, start: '2026-02-20T00:00:00Z', days: 40 }, undefined],
    [
      'across 2025-07-01',
      { seed: 19, eventsTarget: 6_000, start: '2025-06-25T00:00:00Z', days: 10 },
      'era before PMP-2025',
    ],
    [
      'into PMP-2026-10',
      { seed: 20, eventsTarget: 6_000, start: '2026-09-25T00:00:00Z', days: 10 },
      'era PMP-2026-10',
    ],
  ];
  for (const [name, options, bail] of shapes) {
    it(`${name}: ${bail === undefined ? 'rated, exactly as the Rater' : `given up (${bail})`}`, async () => {
      const { events, setup } = await generated(name.replaceAll(' ', '-'), options);
      const both = rateBoth(events, setup);
      expect(expectEquivalent(both)).toBe(bail);
      if (bail === undefined) expect(both.rater.summary.stats.units).toBeGreaterThan(500);
    });
  }
});

const W = '100000000000001';
const W2 = '100000000000002';
const B = '106540352242922';
const U = '919876543210';
const T0 = Date.parse('2025-10-06T10:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;

const inbound = (id: string, atMs: number, more: Partial<CoreEvent> = {}): CoreEvent =>
  ({ kind: 'inbound', atMs, waba: W, business: B, user: U, id, hasReferral: false, ...more }) as CoreEvent;
const outbound = (id: string, atMs: number, template: string | null, more: Partial<CoreEvent> = {}) =>
  ({ kind: 'outbound', atMs, waba: W, business: B, user: U, id, template, ...more }) as CoreEvent;
/** The recipient a status names, for its send log. */
const pick = (event: StatusEvent) => ({ waba: event.waba, business: event.business, user: event.user });
const status = (id: string, word: string, atMs: number, more: Partial<CoreEvent> = {}): CoreEvent =>
  ({ kind: 'status', atMs, id, status: word, ...more }) as CoreEvent;

describe('columnar rater: hand-made corners of its class, as the Rater rates them', () => {
  const corners: [string, CoreEvent[]][] = [
    [
      'a non-template outside any window (NO_WINDOW_IN_INPUT), twice in a pair, in two pairs',
      [
        inbound('i0', T0 + 9 * HOUR, { user: '14155550123' }),
        outbound('m1', T0 + HOUR, null),
        status('m1', 'delivered', T0 + HOUR),
        outbound('m2', T0, null),
        status('m2', 'delivered', T0 + 1000),
        outbound('m3', T0 + 2 * HOUR, null, { user: '5511987654321' }),
        status('m3', 'read', T0 + 2 * HOUR),
      ],
    ],
    [
      'delivered and failed; delivered before sent; a delivery from the send log; a failure from it',
      [
        outbound('m1', T0, 'marketing'),
        status('m1', 'failed', T0 + 5000),
        status('m1', 'delivered', T0 + 9000),
        outbound('m2', T0 + HOUR, 'utility'),
        status('m2', 'delivered', T0 + HOUR - 20 * MIN),
        outbound('m3', T0 + 2 * HOUR, 'authentication', { deliveredAtMs: T0 + 2 * HOUR + 4000 } as never),
        outbound('m4', T0 + 3 * HOUR, 'marketing', { isFailed: true } as never),
        outbound('m5', T0 + 4 * HOUR, 'marketing'),
        status('m5', 'sent', T0 + 4 * HOUR + 1000),
      ],
    ],
    [
      'an ad click, its answer, a message inside the free entry point, a second click answered in it',
      [
        inbound('i1', T0, { hasReferral: true } as never),
        outbound('m1', T0 + 10 * MIN, null),
        status('m1', 'delivered', T0 + 10 * MIN + 2000),
        outbound('m2', T0 + 30 * HOUR, 'marketing'),
        status('m2', 'read', T0 + 30 * HOUR + 5000),
        inbound('i2', T0 + 40 * HOUR, { hasReferral: true } as never),
        outbound('m3', T0 + 41 * HOUR, 'utility'),
        status('m3', 'delivered', T0 + 41 * HOUR + 1000),
        outbound('m4', T0 + 200 * HOUR, 'utility'),
        status('m4', 'delivered', T0 + 200 * HOUR + 1000),
        outbound('m5', T0 + 201 * HOUR, 'authentication'),
        status('m5', 'played', T0 + 201 * HOUR + 1000),
      ],
    ],
    [
      'an answer sent before the click, a late answer, utility in and out of the window',
      [
        outbound('m0', T0 - 10 * MIN, 'marketing'),
        inbound('i1', T0, { hasReferral: true } as never),
        status('m0', 'delivered', T0 + MIN),
        outbound('m1', T0 + 25 * HOUR, 'utility'),
        status('m1', 'delivered', T0 + 25 * HOUR),
        inbound('i2', T0 + 26 * HOUR),
        outbound('m2', T0 + 27 * HOUR, 'utility'),
        status('m2', 'delivered', T0 + 27 * HOUR),
        outbound('m3', T0 + 27 * HOUR, 'utility', { user: '919876543211' }),
        status('m3', 'delivered', T0 + 27 * HOUR),
      ],
    ],
    [
      'one instant: inbound before deliveries, deliveries by id; copies of an inbound and a send log merged',
      [
        outbound('mb', T0, null),
        outbound('ma', T0, 'utility'),
        status('mb', 'delivered', T0 + HOUR),
        status('ma', 'delivered', T0 + HOUR),
        inbound('i1', T0 + HOUR),
        inbound('i1', T0 + HOUR - 5000, { hasReferral: true } as never),
        outbound('mc', T0 + 2 * HOUR, 'marketing', { templateName: 'promo' } as never),
        outbound('mc', T0 + 2 * HOUR - 1000, 'marketing'),
        status('mc', 'delivered', T0 + 2 * HOUR + 1000),
        status('mc', 'delivered', T0 + 2 * HOUR + 1000),
      ],
    ],
    [
      "Meta's webhook statuses naming the send log's recipient, before and after it; a Brazilian number two ways",
      [
        status('m1', 'delivered', T0 + 1000, { waba: W, business: B, user: '551187654321' }),
        outbound('m1', T0, 'marketing', { user: '5511987654321' }),
        status('m1', 'read', T0 + 9000, { waba: W, business: B, user: '5511987654321' }),
        inbound('i1', T0 + HOUR, { user: '551187654321' }),
        outbound('m2', T0 + 2 * HOUR, 'utility', { user: '5511987654321' }),
        status('m2', 'delivered', T0 + 2 * HOUR, { waba: W, business: B, user: '5511987654321' }),
      ],
    ],
    [
      "deliveries at a free entry point's end and a window's end, to the millisecond",
      [
        inbound('i1', T0, { hasReferral: true } as never),
        outbound('m1', T0 + MIN, null),
        status('m1', 'delivered', T0 + 2 * MIN),
        outbound('m2', T0 + 72 * HOUR, 'marketing'),
        status('m2', 'delivered', T0 + 2 * MIN + 72 * HOUR),
        inbound('i2', T0 + 100 * HOUR),
        outbound('m3', T0 + 123 * HOUR, 'utility'),
        status('m3', 'delivered', T0 + 124 * HOUR),
      ],
    ],
    [
      'copies of an inbound message: the earliest instant opens the window',
      [
        inbound('i1', T0 + 25 * HOUR),
        inbound('i1', T0 + HOUR),
        outbound('m1', T0 + 24 * HOUR, 'utility'),
        status('m1', 'delivered', T0 + 24 * HOUR + 30 * MIN),
      ],
    ],
    [
      'numbers placed by their calling code alone (MARKET_FROM_CALLING_CODE): units whose market is inferred',
      [
        outbound('m1', T0, 'marketing', { user: '1242555' }),
        status('m1', 'delivered', T0 + 1000),
        outbound('m2', T0 + HOUR, 'utility', { user: '77' }),
        status('m2', 'delivered', T0 + HOUR + 1000),
        outbound('m3', T0 + 2 * HOUR, 'marketing'),
        status('m3', 'delivered', T0 + 2 * HOUR + 1000),
      ],
    ],
    [
      'a WABA the accounts file does not list (ACCOUNT_NOT_LISTED), pending messages in order',
      [
        outbound('m1', T0, 'marketing', { waba: W2, business: '106540352242923' }),
        status('m1', 'sent', T0 + 1000),
        outbound('m0', T0, 'marketing'),
        outbound('m2', T0 - HOUR, 'utility'),
        outbound('m3', T0 + HOUR, 'authentication'),
        status('m3', 'delivered', T0 + HOUR + 1000),
      ],
    ],
  ];
  for (const [name, events] of corners) {
    it(name, async () => {
      const setup = await setupOf();
      const listed = {
        ...setup,
        accounts: [{ waba: W, timeZone: 'Asia/Kolkata', currency: 'USD', portfolio: 'p' }],
      };
      for (const one of [setup, listed]) {
        const both = rateBoth(events, one);
        expect(expectEquivalent(both)).toBeUndefined();
      }
    });
  }

  it('the corners say the findings they are about (so that the comparison covers them)', async () => {
    const setup = await setupOf();
    const codes = corners.flatMap(([, events]) =>
      rateBoth(events, setup).rater.summary.findings.map((finding) => finding.code),
    );
    for (const code of [
      'NO_WINDOW_IN_INPUT',
      'DELIVERED_AND_FAILED',
      'DELIVERED_BEFORE_SENT',
      'MARKET_FROM_CALLING_CODE',
    ])
      expect(codes).toContain(code);
  });
});

describe('columnar rater: a user placed once per local day, as the market table is versioned by day', () => {
  it("a country that changes market overnight: each unit has its day's market, as the Rater's", async () => {
    const table = parseMarketTable(
      'country,calling_code,area_codes,market,valid_from,valid_to,source\n' +
        'IN,91,,India,,2025-10-07,meta\nIN,91,,Rest of Asia Pacific,2025-10-07,,meta\nUS,1,,North America,,,meta\n',
    );
    if (!table.ok) throw new Error(table.error.message);
    const setup = {
      ...(await setupOf()),
      markets: createMarketResolver(table.value, { isReportedRulesEnabled: true }),
    };
    const events = [
      outbound('m1', T0, 'marketing'),
      status('m1', 'delivered', T0 + 1000),
      outbound('m2', T0 + 2 * HOUR, 'utility'),
      status('m2', 'delivered', T0 + 2 * HOUR + 1000),
      outbound('m3', T0 + 24 * HOUR, 'marketing'),
      status('m3', 'delivered', T0 + 24 * HOUR + 1000),
      outbound('m4', T0 + 25 * HOUR, 'marketing', { user: '14155550123' }),
      status('m4', 'delivered', T0 + 25 * HOUR + 1000),
    ];
    const both = rateBoth(events, setup);
    expect(expectEquivalent(both)).toBeUndefined();
    const markets = both.rater.calls.map(([, unit]) => (unit as { market: string }).market);
    expect(markets).toEqual(['India', 'India', 'Rest of Asia Pacific', 'North America']);
    // A resolver without `placerOf` (any MarketResolver may lack it): asked `resolve` on each new day.
    const resolver = setup.markets;
    const bare = { ...setup, markets: { resolve: resolver.resolve.bind(resolver) } };
    const bareBoth = rateBoth(events, bare);
    expect(expectEquivalent(bareBoth)).toBeUndefined();
    expect(bareBoth.columnar.calls).toEqual(both.columnar.calls);
  });
});

describe("columnar rater: each WABA's account and card, as the Rater's", () => {
  it('two WABAs of two currencies, units of one day in turn, across a change of card', async () => {
    const setup = await setupOf();
    const usd = setup.cards.find((card) => card.id === 'usd-2025-10-01')!;
    // A card of another currency, in force on every day here, its rates twice the USD card's.
    const eur: RateCard = {
      ...usd,
      id: 'eur-2025-07-01',
      currency: 'EUR',
      effectiveDate: '2025-07-01',
      rates: new Map(
        [...usd.rates].map(([market, rates]) => [
          market,
          Object.fromEntries(Object.entries(rates).map(([category, micros]) => [category, micros * 2])),
        ]),
      ),
    };
    const book = createRateBook([...setup.cards, eur]);
    if (!book.ok) throw new Error(book.error.message);
    const twoCurrencies = {
      ...setup,
      cards: [...setup.cards, eur],
      rateBook: book.value,
      accounts: [
        { waba: W, timeZone: 'Asia/Kolkata', currency: 'USD', portfolio: 'p' },
        { waba: W2, timeZone: 'Asia/Kolkata', currency: 'EUR', portfolio: 'p' },
      ],
    };
    const other = { waba: W2, business: '106540352242923' };
    const events: CoreEvent[] = [];
    // 2025-09-30 and 2025-10-01 in Kolkata: the USD card changes overnight, the EUR card does not.
    for (const [n, atMs] of [T0 - 6 * 24 * HOUR, T0 - 5 * 24 * HOUR].entries()) {
      events.push(
        outbound(`a${n}`, atMs, 'marketing'),
        status(`a${n}`, 'delivered', atMs + 1000),
        outbound(`b${n}`, atMs + 2000, 'marketing', other),
        status(`b${n}`, 'delivered', atMs + 3000),
        outbound(`c${n}`, atMs + 4000, 'marketing'),
        status(`c${n}`, 'delivered', atMs + 5000),
      );
    }
    const both = rateBoth(events, twoCurrencies);
    expect(expectEquivalent(both)).toBeUndefined();
    const priced = both.rater.calls.map(([, unit]) => {
      const { currency, rateCard } = unit as { currency: string; rateCard: string };
      return `${currency} ${rateCard}`;
    });
    expect(priced).toEqual([
      'USD usd-2024-11-01',
      'EUR eur-2025-07-01',
      'USD usd-2024-11-01',
      'USD usd-2025-10-01',
      'EUR eur-2025-07-01',
      'USD usd-2025-10-01',
    ]);
  });
});

describe('columnar rater: random small traffic of its class (fast-check, fixed seed)', () => {
  // A few pairs whose lines often meet at one instant, windows and free entry points opening and closing.
  const PAIRS = [
    { waba: W, business: B, user: U },
    { waba: W, business: B, user: '5511987654321' },
    { waba: W, business: '106540352242929', user: U },
    { waba: W2, business: '106540352242923', user: '14155550123' },
  ];
  /** Most lines in two pairs of one WABA, some in a third and in another WABA's. */
  const pairOf = (index: number) => PAIRS[[0, 1, 0, 1, 0, 1, 2, 3][index % 8]!]!;
  /** A Brazilian number as Meta may write it (without its ninth digit): one user for the Rater. */
  const spelled = (user: string, isShort: boolean) =>
    isShort && user.startsWith('55') ? `${user.slice(0, 4)}${user.slice(5)}` : user;
  // Instants around a few anchors, at the rules' edges (the 5 min skew, the 24 h window, the 72 h entry point).
  const SECOND = 1000;
  const EDGES = [0, SECOND, 5 * MIN - SECOND, 5 * MIN, 5 * MIN + SECOND, 24 * HOUR - SECOND, 24 * HOUR];
  const offset = fc.oneof(
    fc.constantFrom(...EDGES, 24 * HOUR + SECOND, 72 * HOUR - SECOND, 72 * HOUR, 72 * HOUR + SECOND),
    fc.integer({ min: 0, max: 8 * 60 }).map((minutes) => minutes * 10 * MIN),
  );
  const instant = fc
    .tuple(fc.integer({ min: 0, max: 2 }), offset, fc.boolean())
    .map(([anchor, by, isBefore]) => T0 + anchor * 12 * HOUR + (isBefore ? -by : by));
  const PRICINGS: MetaPricingEvidence[] = [
    { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
    { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' },
    { billable: false, pricing_model: 'PMP', category: 'utility', type: 'free_customer_service' },
    { billable: false, pricing_model: 'PMP', category: 'service', type: 'free_customer_service' },
    { billable: false, pricing_model: 'PMP', category: 'marketing', type: 'free_entry_point' },
    { billable: true, pricing_model: 'PMP', category: 'authentication', type: 'regular' },
    { billable: true, pricing_model: 'PMP', category: 'authentication_international', type: 'regular' },
    { billable: true, pricing_model: 'CBP', category: 'marketing' },
    { category: 'utility' },
  ];
  const line = fc.oneof(
    fc.record({
      kind: fc.constant('outbound' as const),
      message: fc.integer({ min: 0, max: 15 }),
      atMs: instant,
      delivered: fc.option(offset, { freq: 4 }),
      isFailed: fc.integer({ min: 0, max: 5 }).map((roll) => roll === 0),
      isShort: fc.boolean(),
    }),
    fc.record({
      kind: fc.constant('inbound' as const),
      inbound: fc.integer({ min: 0, max: 7 }),
      atMs: instant,
      hasReferral: fc.boolean(),
      isShort: fc.boolean(),
    }),
    fc.record({
      kind: fc.constant('status' as const),
      message: fc.integer({ min: 0, max: 15 }),
      atMs: instant,
      word: fc.constantFrom('sent', 'delivered', 'delivered', 'read', 'failed', 'played'),
      pricing: fc.option(fc.constantFrom(...PRICINGS), { freq: 2 }),
      isNamed: fc.boolean(),
      isShort: fc.boolean(),
    }),
  );
  type Line = typeof line extends fc.Arbitrary<infer T> ? T : never;
  const TEMPLATES = [null, 'marketing', 'utility', 'authentication'] as const;
  /**
   * Each message and inbound id keeps its pair (and a message its template); its lines differ in instants,
   * copies, words and spellings. A message with statuses and no send log gets one, a minute before them.
   */
  const toEvents = (lines: readonly Line[]): CoreEvent[] => {
    const events: CoreEvent[] = [];
    const sentAt = new Map<number, number>();
    const statusAt = new Map<number, number>();
    for (const l of lines) {
      if (l.kind === 'inbound') {
        const pair = pairOf(l.inbound);
        const user = spelled(pair.user, l.isShort);
        events.push({
          kind: 'inbound',
          atMs: l.atMs,
          ...pair,
          user,
          id: `i${l.inbound}`,
          hasReferral: l.hasReferral,
        });
        continue;
      }
      const pair = pairOf(l.message);
      const id = `m${l.message}`;
      if (l.kind === 'outbound') {
        const template = TEMPLATES[Math.floor(l.message / 4)]!;
        const event: OutboundEvent = {
          kind: 'outbound',
          atMs: l.atMs,
          ...pair,
          user: spelled(pair.user, l.isShort),
          id,
          template,
        };
        if (l.delivered !== null) event.deliveredAtMs = l.atMs + l.delivered - 5 * MIN;
        if (l.isFailed) event.isFailed = true;
        events.push(event);
        sentAt.set(l.message, l.atMs);
        continue;
      }
      const event: StatusEvent = { kind: 'status', atMs: l.atMs, id, status: l.word };
      if (l.pricing !== null) event.pricing = l.pricing;
      events.push(l.isNamed ? { ...event, ...pair, user: spelled(pair.user, l.isShort) } : event);
      statusAt.set(l.message, Math.min(statusAt.get(l.message) ?? Infinity, l.atMs));
    }
    for (const [message, atMs] of statusAt) {
      if (sentAt.has(message)) continue;
      const pair = pairOf(message);
      const template = TEMPLATES[Math.floor(message / 4)]!;
      events.push({ kind: 'outbound', atMs: atMs - MIN, ...pair, id: `m${message}`, template });
    }
    return events;
  };

  it('each run is rated exactly as the Rater rates it, or given up; most are rated', async () => {
    const setup = await setupOf();
    const listed = {
      ...setup,
      accounts: [{ waba: W, timeZone: 'Asia/Kolkata', currency: 'USD', portfolio: 'p' }],
    };
    let runs = 0;
    let rated = 0;
    let disagreeing = 0;
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 40 }), fc.boolean(), (lines, isListed) => {
        runs += 1;
        const both = rateBoth(toEvents(lines), isListed ? listed : setup);
        if (expectEquivalent(both) !== undefined) return;
        rated += 1;
        if (both.rater.summary.findings.some((finding) => finding.code === 'META_DISAGREES'))
          disagreeing += 1;
      }),
      { seed: 40_2026, numRuns: 1_000 },
    );
    expect(rated).toBeGreaterThan(runs / 2);
    // Meta's pricing on the statuses: often a word that is not wameter's (META_DISAGREES), compared alike.
    expect(disagreeing).toBeGreaterThan(runs / 10);
  });
});

describe('columnar rater: input outside its class is given up, the sink told nothing', () => {
  const base = [outbound('m1', T0, 'marketing'), status('m1', 'delivered', T0 + 1000)];
  const cases: [string, CoreEvent[], string][] = [
    [
      "Meta's pricing on the statuses of a message with no send log (its category, an ad click inferred)",
      [
        status('m9', 'delivered', T0, {
          waba: W,
          business: B,
          user: U,
          pricing: { billable: false, pricing_model: 'PMP', category: 'marketing', type: 'free_entry_point' },
        } as never),
      ],
      'statuses without a send log',
    ],
    [
      "Meta's conversation on the status of a message with no send log",
      [
        status('m9', 'read', T0, {
          waba: W,
          business: B,
          user: U,
          conversation: { origin: { type: 'utility' } },
        }),
      ],
      'statuses without a send log',
    ],
    [
      'a delivery before 2025-06-30 (UTC)',
      [
        outbound('m1', Date.parse('2025-03-01T10:00:00Z'), 'marketing'),
        status('m1', 'delivered', Date.parse('2025-03-01T10:00:01Z')),
      ],
      'era before PMP-2025',
    ],
    [
      'an account update',
      [
        ...base,
        {
          kind: 'account_update',
          atMs: T0,
          waba: W,
          event: 'BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE',
          primaryCountry: 'IN',
        },
      ],
      'account update',
    ],
    [
      'a template category update',
      [
        ...base,
        { kind: 'template_category_update', atMs: T0, waba: W, templateName: 'x', newCategory: 'UTILITY' },
      ],
      'template category update',
    ],
    [
      'a status naming another user than the send log',
      [...base, status('m1', 'read', T0 + 2000, { waba: W, business: B, user: '14155550123' })],
      'statuses name another recipient than the send log',
    ],
    ['statuses alone, no send log', [status('m9', 'delivered', T0)], 'statuses without a send log'],
    [
      'one message id in two WABAs',
      [...base, outbound('m1', T0, 'marketing', { waba: W2 })],
      'message of two WABAs',
    ],
    ['copies of a send log disagreeing', [...base, outbound('m1', T0, 'utility')], 'copies disagree'],
    [
      'an inbound message in two pairs',
      [inbound('i1', T0), inbound('i1', T0, { user: '14155550123' })],
      'inbound copies name two pairs',
    ],
    [
      'a country hint',
      [inbound('i1', T0, { userCountryHint: 'IN' } as never)],
      'country hint or business-scoped id',
    ],
    [
      'a group status',
      [...base, status('m1', 'read', T0, { recipientType: 'group' } as never)],
      'group, country hint or business-scoped id',
    ],
    [
      'a business number of two WABAs',
      [...base, outbound('m2', T0, 'marketing', { waba: W2 })],
      'business number of two WABAs',
    ],
    ['an undocumented status word', [...base, status('m1', 'deleted', T0)], 'status word'],
  ];
  for (const [name, events, reason] of cases) {
    it(`${name}: ${reason}`, async () => {
      const both = rateBoth(events, await setupOf());
      expect(expectEquivalent(both)).toBe(reason);
    });
  }

  it("a delivery on 2025-06-30 by its WABA's clock, after it by UTC's: era CBP-2024-11, found by the walk", async () => {
    const setup = await setupOf();
    const west = {
      ...setup,
      accounts: [{ waba: W, timeZone: 'America/Los_Angeles', currency: 'USD', portfolio: 'p' }],
    };
    const events = [
      outbound('m1', Date.parse('2025-07-01T03:00:00Z'), 'marketing'),
      status('m1', 'delivered', Date.parse('2025-07-01T03:00:01Z')),
    ];
    expect(expectEquivalent(rateBoth(events, west))).toBe('era CBP-2024-11');
    expect(expectEquivalent(rateBoth(events, setup))).toBeUndefined();
  });

  it('a delivery surely under PMP-2026-10 (reported rules on), or PMP-2025 with them off', async () => {
    const events = [
      outbound('m1', Date.parse('2026-10-03T03:00:00Z'), 'marketing'),
      status('m1', 'delivered', Date.parse('2026-10-03T03:00:01Z')),
    ];
    expect(expectEquivalent(rateBoth(events, await setupOf()))).toBe('era PMP-2026-10');
    expect(expectEquivalent(rateBoth(events, await setupOf(), false))).toBeUndefined();
  });

  it('a what-if, a trace, decisions or a stream: not a plain batch', async () => {
    const options = ratingOptionsFor(await setupOf());
    for (const more of [
      { asOfRules: 'PMP-2025' },
      { withDecisions: true },
      { trace: { user: U } },
      { maxLatenessMs: 1 },
    ]) {
      const calls: unknown[] = [];
      const rater = new ColumnarRater({ ...options, ...more } as never, {
        unit: (u) => calls.push(u),
        pending: (p) => calls.push(p),
      });
      for (const event of [outbound('m1', T0, 'marketing'), status('m1', 'delivered', T0 + 1000)])
        rater.add(event);
      expect(rater.finish()).toEqual({ bail: 'not a plain batch' });
      expect(calls).toEqual([]);
    }
  });
});

describe('columnar rater: the golden scenarios and the webhook fixtures, rated alike or given up', () => {
  const GOLDEN = join(import.meta.dirname, 'golden');
  // What each golden scenario is for the columnar rater: rated (undefined), or its bail reason.
  const expected: Record<string, string | undefined> = {
    'authentication-international-exceptions': undefined,
    'cbp-2023-shop-day': 'era before PMP-2025',
    'free-entry-point-across-eras': 'era before PMP-2025',
    'notification-to-cbp-2022': 'era before PMP-2025',
    'pmp-2026-10-reported-off': undefined,
    'pmp-2026-10-reported-on': 'era PMP-2026-10',
    'portfolio-tiers-across-midnight': undefined,
    'switch-to-pmp-2025-07-01': 'era CBP-2024-11',
  };
  const scenarios = readdirSync(GOLDEN, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  it('every scenario is listed here', () => {
    expect(scenarios).toEqual(Object.keys(expected).sort());
  });
  for (const name of scenarios) {
    it(`${name}: ${expected[name] ?? 'rated, exactly as the Rater'}`, async () => {
      const folder = join(GOLDEN, name);
      const cliArgs =
        (JSON.parse(readFileSync(join(folder, 'expected.json'), 'utf8')) as { cli_args?: string[] })
          .cli_args ?? [];
      const setup = await setupOf({
        ...(existsSync(join(folder, 'accounts.json')) ? { accountsPath: join(folder, 'accounts.json') } : {}),
        ...(existsSync(join(folder, 'rate-cards')) ? { rateCardPaths: [join(folder, 'rate-cards')] } : {}),
        ...(cliArgs.includes('--no-reported') ? { isReportedRulesEnabled: false } : {}),
      });
      const both = rateBoth(await eventsOf([join(folder, 'events.ndjson')]), setup);
      expect(expectEquivalent(both)).toBe(expected[name]);
    });
  }

  it('each webhook fixture file, and all of them at once', async () => {
    const files = fixtureJsonFiles();
    expect(files.length).toBeGreaterThan(40);
    const setup = await setupOf();
    const outcomes = new Map<string, number>();
    for (const file of [...files.map((one) => [one]), files]) {
      const reason = expectEquivalent(rateBoth(await eventsOf(file), setup)) ?? 'rated';
      outcomes.set(reason, (outcomes.get(reason) ?? 0) + 1);
    }
    // Files of no business message are "rated" (nothing to rate); the others name what they hold.
    expect(Object.fromEntries(outcomes)).toEqual({
      'account update': 3,
      'country hint or business-scoped id': 6,
      'era before PMP-2025': 1,
      'group, country hint or business-scoped id': 8,
      rated: 36,
      'statuses without a send log': 3,
      'template category update': 2,
    });
  });

  it("every pricing and conversation object of the fixtures, on a webhook's statuses", async () => {
    const files = fixtureJsonFiles();
    // Meta's evidence objects as the fixtures give them (a status's, a snippet's), each once.
    const evidence = new Map<string, { pricing?: unknown; conversation?: unknown }>();
    const isObject = (value: unknown): value is Record<string, unknown> =>
      typeof value === 'object' && value !== null && !Array.isArray(value);
    const visit = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(visit);
      if (!isObject(value)) return;
      if (isObject(value.pricing) || isObject(value.conversation)) {
        const found = { pricing: value.pricing, conversation: value.conversation };
        evidence.set(JSON.stringify(found), found);
      }
      Object.values(value).forEach(visit);
    };
    for (const file of files) visit(JSON.parse(readFileSync(file, 'utf8')));
    expect(evidence.size).toBeGreaterThan(6);
    // Meta's webhook of a sent status carrying each evidence object, and its delivered status 5 s on.
    const body = readFileSync(
      files.find((file) =>
        file.endsWith(join('meta-docs', 'status_sent_marketing_pmp_with_conversation.json')),
      )!,
      'utf8',
    );
    const setup = await setupOf();
    const outcomes = new Map<string, number>();
    let disagreeing = 0;
    let index = 0;
    for (const found of evidence.values()) {
      for (const template of TEMPLATE_CODES) {
        const webhook = JSON.parse(body) as {
          entry: { changes: { value: { statuses: Record<string, unknown>[] } }[] }[];
        };
        const statuses = webhook.entry[0]!.changes[0]!.value.statuses;
        const sent = { ...statuses[0]!, timestamp: String(T0 / 1000), ...found };
        statuses.splice(0, 1, sent, { ...sent, status: 'delivered', timestamp: String(T0 / 1000 + 5) });
        const path = join(scratch, `evidence-${index++}.json`);
        writeFileSync(path, JSON.stringify(webhook));
        const events = await eventsOf([path]);
        const named = events.find((event): event is StatusEvent => event.kind === 'status')!;
        const both = rateBoth([outbound(named.id, T0 - MIN, template, pick(named)), ...events], setup);
        const reason = expectEquivalent(both) ?? 'rated';
        outcomes.set(reason, (outcomes.get(reason) ?? 0) + 1);
        const codes = both.rater.summary.findings.map((finding) => finding.code);
        if (reason === 'rated' && codes.includes('META_DISAGREES')) disagreeing += 1;
      }
    }
    expect(Object.fromEntries(outcomes)).toEqual({ rated: evidence.size * TEMPLATE_CODES.length });
    expect(disagreeing).toBe(19);
  });
});

describe("columnar rater: Meta's pricing on the statuses of messages with a send log, as the Rater's", () => {
  type Unit = { messages: string[]; category: string; type: string };
  /** Meta's pricing of each message as the Rater's own units word it (a free entry point: its type). */
  const agreeing = (events: readonly CoreEvent[], setup: RatingSetup): Map<string, MetaPricingEvidence> => {
    const words = new Map<string, MetaPricingEvidence>();
    for (const event of events) {
      if (event.kind !== 'outbound') continue;
      const category = event.template ?? 'service';
      words.set(event.id, { billable: true, pricing_model: 'PMP', category, type: 'regular' });
    }
    const { rater } = rateBoth(events, setup);
    for (const [kind, unit] of rater.calls) {
      if (kind !== 'unit') continue;
      const { messages, category, type } = unit as Unit;
      const said = words.get(messages[0]!)!;
      const isFep = category === 'referral_conversion';
      words.set(messages[0]!, {
        billable: type === 'regular',
        pricing_model: 'PMP',
        category: isFep ? said.category! : category,
        type,
      });
    }
    return words;
  };
  /** Every status naming its WABA (Meta's webhook) given the pricing `wordOf` says for its message. */
  const withPricing = (
    events: readonly CoreEvent[],
    wordOf: (event: StatusEvent, index: number) => MetaPricingEvidence | undefined,
  ): CoreEvent[] =>
    events.map((event, index) => {
      if (event.kind !== 'status' || event.waba === undefined) return event;
      const pricing = wordOf(event, index);
      return pricing === undefined ? event : { ...event, pricing };
    });
  const metaDisagrees = (both: ReturnType<typeof rateBoth>) =>
    both.rater.summary.findings.filter((finding) => finding.code === 'META_DISAGREES').length;
  /** Meta's words that disagree with wameter's, or that it cannot compare. */
  const OTHER_WORDS: MetaPricingEvidence[] = [
    { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
    { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' },
    { billable: false, pricing_model: 'PMP', category: 'utility', type: 'free_customer_service' },
    { billable: false, pricing_model: 'PMP', category: 'service', type: 'free_customer_service' },
    { billable: false, pricing_model: 'PMP', category: 'marketing', type: 'free_entry_point' },
    { billable: false, pricing_model: 'PMP', category: 'referral_conversion', type: 'free_entry_point' },
    { billable: true, pricing_model: 'PMP', category: 'authentication_international', type: 'regular' },
    { billable: true, pricing_model: 'PMP', category: 'authentication-international', type: 'regular' },
    { billable: true, pricing_model: 'PMP', category: 'marketing_lite', type: 'regular' },
    { billable: true, pricing_model: 'CBP', category: 'marketing' },
    { billable: true, category: 'authentication' },
    { billable: false, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
    { pricing_model: 'PMP', category: 'not_a_category', type: 'regular' },
    { pricing_model: 'PMP', type: 'regular' },
    { billable: true, pricing_model: 'PMP', category: 'user_initiated', type: 'regular' },
    { billable: true, pricing_model: 'PMP', category: 'MARKETING', type: 'REGULAR', extra: 'x' } as never,
  ];
  const shapes: [string, TrafficOptions][] = [
    ['default shape', { seed: 41, eventsTarget: 8_000, users: 400 }],
    [
      'disorder and duplicates',
      { seed: 42, eventsTarget: 6_000, users: 150, disorder: 0.5, duplicates: 0.3 },
    ],
    ['webhooks only', { seed: 43, eventsTarget: 6_000, users: 300, webhookFraction: 1, days: 3 }],
  ];
  for (const [name, options] of shapes) {
    it(`${name}: agreeing words are rated, exactly as the Rater (no META_DISAGREES)`, async () => {
      const { events, setup } = await generated(`pricing-${name.replaceAll(' ', '-')}`, options);
      const words = agreeing(events, setup);
      const priced = withPricing(events, (event) => words.get(event.id));
      expect(priced.filter((event) => event.kind === 'status' && event.pricing).length).toBeGreaterThan(500);
      const both = rateBoth(priced, setup);
      expect(expectEquivalent(both)).toBeUndefined();
      expect(metaDisagrees(both)).toBe(0);
      expect(both.rater.summary.stats.units).toBeGreaterThan(300);
    });

    it(`${name}: disagreeing words, other models, billable:false, conversations: alike`, async () => {
      const { events, setup } = await generated(`pricing-${name.replaceAll(' ', '-')}`, options);
      const words = agreeing(events, setup);
      const priced = withPricing(events, (event, index) =>
        index % 3 === 0 ? OTHER_WORDS[index % OTHER_WORDS.length] : words.get(event.id),
      ).map((event, index) =>
        event.kind === 'status' && index % 5 === 0
          ? { ...event, conversation: { id: 'c', origin: { type: 'referral_conversion' } } }
          : event,
      );
      const both = rateBoth(priced, setup);
      expect(expectEquivalent(both)).toBeUndefined();
      expect(metaDisagrees(both)).toBeGreaterThan(3);
    });

    it(`${name}: statuses repeated with other words, at one rank and at others, alike`, async () => {
      const { events, setup } = await generated(`pricing-${name.replaceAll(' ', '-')}`, options);
      const words = agreeing(events, setup);
      const priced = withPricing(events, (event) => words.get(event.id));
      const repeated: CoreEvent[] = [];
      priced.forEach((event, index) => {
        // Copies before and after, of the same word (preferredEvidence) and of another (EVIDENCE_RANK).
        if (event.kind === 'status' && event.waba !== undefined && index % 2 === 0) {
          const other = OTHER_WORDS[index % OTHER_WORDS.length]!;
          const word = ['sent', 'delivered', 'read', 'failed', 'played'][index % 5]!;
          repeated.push({ ...event, pricing: other });
          repeated.push(event);
          repeated.push({ ...event, status: word, pricing: OTHER_WORDS[(index + 7) % OTHER_WORDS.length]! });
        } else repeated.push(event);
      });
      const both = rateBoth(repeated, setup);
      expect(expectEquivalent(both)).toBeUndefined();
      expect(metaDisagrees(both)).toBeGreaterThan(3);
    });
  }

  it('authentication-international units against Meta saying authentication, and the reverse', async () => {
    const folder = join(import.meta.dirname, 'golden', 'authentication-international-exceptions');
    const setup = await setupOf({ accountsPath: join(folder, 'accounts.json') });
    const events = await eventsOf([join(folder, 'events.ndjson')]);
    const named = events.map((event) => {
      if (event.kind !== 'status') return event;
      const send = events.find((one) => one.kind === 'outbound' && one.id === event.id) as OutboundEvent;
      return { ...event, waba: send.waba, business: send.business, user: send.user };
    });
    const codes: string[] = [];
    for (const category of ['authentication', 'authentication_international']) {
      const priced = withPricing(named, () => ({ pricing_model: 'PMP', category, type: 'regular' }));
      const both = rateBoth(priced, setup);
      expect(expectEquivalent(both)).toBeUndefined();
      codes.push(...both.rater.summary.findings.map((finding) => `${finding.code} ${finding.message}`));
    }
    expect(codes.filter((code) => code.includes('authentication-international rate')).length).toBe(2);
  });
});

describe('columnar rater: a size hint presizes its columns, within a bound', () => {
  it('room for one id per BYTES_PER_ID bytes, at most MAX_PRESIZED_IDS; none without a hint', async () => {
    const options = ratingOptionsFor(await setupOf());
    const sink = { unit: () => undefined, pending: () => undefined };
    expect(new ColumnarRater(options, sink).idCapacity).toBe(0);
    expect(new ColumnarRater(options, sink, { bytes: 0 }).idCapacity).toBe(0);
    expect(new ColumnarRater(options, sink, { bytes: 5_000 * BYTES_PER_ID }).idCapacity).toBe(5_000);
    expect(new ColumnarRater(options, sink, { bytes: 2 ** 40 }).idCapacity).toBe(MAX_PRESIZED_IDS);
    // Ids beyond the presized room: the columns grow as without a hint.
    const small = new ColumnarRater(options, sink, { bytes: 1_500 * BYTES_PER_ID });
    small.addStatus(small.ids.internString('m'), 1, Date.UTC(2025, 7, 1), -1, -1, -1);
    for (let i = 0; i < 1_600; i++) small.ids.internString(`id-${i}`);
    small.addStatus(1_600, 1, Date.UTC(2025, 7, 1), -1, -1, -1);
    expect(small.idCapacity).toBe(3_000);
  });
});
