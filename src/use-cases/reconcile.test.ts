import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadRatingSetup, type RatingSetup } from './load-rating-setup.js';
import { ReconcileSession, whyNothingWasChecked } from './reconcile.js';
import { parseEventValue } from '../ingest/parse-event.js';
import { formatMicros } from '../core/money.js';
import { localDate } from '../core/calendar.js';
import { rateEvents } from '../core/rate-events.js';
import type { CoreEvent, StatusEvent, TemplateCategory } from '../core/events.js';
import {
  analyticsCategory,
  parseAnalyticsExport,
  type AnalyticsExport,
  type BucketDifference,
  type MessageDifference,
  type ReconciliationJson,
} from '../core/reconcile.js';

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/webhooks');
const HOUR = 3_600_000;
const at = (iso: string) => Date.parse(iso);

let bundled: RatingSetup;
beforeAll(async () => {
  const loaded = await loadRatingSetup({});
  if (!loaded.ok) throw new Error(loaded.error.message);
  bundled = loaded.value;
});

function webhookEvents(path: string): CoreEvent[] {
  const parsed = parseEventValue(JSON.parse(readFileSync(join(FIXTURES, path), 'utf8')));
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value.events;
}

function run(
  events: CoreEvent[],
  options: { setup?: RatingSetup; analytics?: AnalyticsExport; waba?: string } = {},
): ReconciliationJson {
  const session = new ReconcileSession(options.setup ?? bundled);
  for (const event of events) session.add(event);
  const finished = session.finish(options.analytics, options.waba);
  if (!finished.ok) throw new Error(finished.error.message);
  return finished.value.reconciliation;
}

/** The outbound line a sender's log would have for the message a webhook fixture reports. */
function sendLogFor(status: StatusEvent, template: TemplateCategory | null): CoreEvent {
  return {
    kind: 'outbound',
    atMs: status.atMs - 5000,
    waba: status.waba!,
    business: status.business!,
    user: status.user!,
    id: status.id,
    template,
  };
}

describe('real status webhooks against a send log', () => {
  it('service messages Meta priced as wameter did: no difference', () => {
    const pywa = webhookEvents('pywa/status_delivered.json');
    const legacy = webhookEvents('meta-docs/status_delivered_service_cbp_legacy.json');
    const events = [...pywa, ...legacy];
    const statuses = events.filter((e): e is StatusEvent => e.kind === 'status');
    expect(statuses).toHaveLength(2);
    expect(statuses.every((s) => s.pricing?.pricing_model === 'CBP')).toBe(true);
    const result = run([...events, ...statuses.map((s) => sendLogFor(s, null))]);
    expect(result.differences).toEqual([]);
    expect(result.checked).toMatchObject({ messages: 2, unverifiable: 0 });
  });

  it("Meta's sent and read webhooks (pricing on both) agree with a non-template reply", () => {
    const events = [...webhookEvents('pywa/status_sent.json'), ...webhookEvents('pywa/status_read.json')];
    const read = events.find((e): e is StatusEvent => e.kind === 'status' && e.status === 'read')!;
    const result = run([...events, sendLogFor(read, null)]);
    expect(result.differences).toEqual([]);
    expect(result.checked.messages).toBe(1);
  });

  it("a PMP verdict dated before per-message pricing began (Meta's docs sample) is an era boundary", () => {
    const events = [
      ...webhookEvents('meta-docs/status_sent_marketing_pmp_with_conversation.json'),
      ...webhookEvents('meta-docs/status_delivered_marketing_pmp_bsuid_contacts.json'),
    ];
    const status = events.find((e): e is StatusEvent => e.kind === 'status' && e.status === 'delivered')!;
    const result = run([...events, sendLogFor(status, 'marketing')]);
    expect(result.differences).toHaveLength(1);
    expect(result.differences[0]).toMatchObject({
      message: status.id,
      cause: 'ERA_BOUNDARY',
      ours: { pricing_model: 'CBP', category: 'marketing' },
      meta: { pricing_model: 'PMP', category: 'marketing', type: 'regular' },
    });
  });

  it('Meta says a utility template was free in a window the input lacks: PRICING_TYPE_MISMATCH', () => {
    const deliveredAtMs = at('2025-08-05T10:00:05Z');
    const sent: CoreEvent = {
      kind: 'outbound',
      atMs: deliveredAtMs - 5000,
      waba: 'W1',
      business: 'PN1',
      user: '919876543210',
      id: 'u1',
      template: 'utility',
    };
    const delivered: StatusEvent = {
      kind: 'status',
      atMs: deliveredAtMs,
      id: 'u1',
      status: 'delivered',
      waba: 'W1',
      pricing: { billable: false, pricing_model: 'PMP', category: 'utility', type: 'free_customer_service' },
    };
    const result = run([sent, delivered]);
    expect(result.differences).toEqual([
      expect.objectContaining({ message: 'u1', differs: ['type'], cause: 'PRICING_TYPE_MISMATCH' }),
    ]);
    expect((result.differences[0] as MessageDifference).note).toMatch(/customer service window/);
  });

  it("Meta billed marketing where the send log said utility and Meta's previous_category agrees: the note says so", () => {
    const sentAtMs = at('2025-10-08T06:00:00Z');
    const sent = {
      kind: 'outbound',
      atMs: sentAtMs,
      waba: 'W1',
      business: 'PN1',
      user: '919876543210',
      id: 'm1',
      template: 'utility',
      templateName: 'order_update',
    } as CoreEvent;
    const delivered: StatusEvent = {
      kind: 'status',
      atMs: sentAtMs + 3000,
      id: 'm1',
      status: 'delivered',
      waba: 'W1',
      pricing: { pricing_model: 'PMP', category: 'marketing', type: 'regular' },
    };
    // Meta's completed change a day later: the template was marketing until then (the send log is stale).
    const change: CoreEvent = {
      kind: 'template_category_update',
      atMs: sentAtMs + 24 * HOUR,
      waba: 'W1',
      templateName: 'order_update',
      templateId: '111',
      previousCategory: 'marketing',
      newCategory: 'utility',
    };
    const [difference] = run([sent, delivered, change]).differences as MessageDifference[];
    expect(difference).toMatchObject({ message: 'm1', cause: 'TEMPLATE_RECATEGORISED' });
    expect(difference!.note).toContain('a PREVIOUS_CATEGORY_DISAGREES finding');
    // Without Meta's change, the note is the cause's alone.
    const [alone] = run([sent, delivered]).differences as MessageDifference[];
    expect(alone!.note).not.toContain('PREVIOUS_CATEGORY_DISAGREES');
  });

  it('a delivered status without pricing (API v24) is unverifiable, not a difference', () => {
    const [sent] = webhookEvents(
      'meta-docs/status_sent_v24_no_conversation_no_pricing.json',
    ) as StatusEvent[];
    const delivered: StatusEvent = { ...sent!, status: 'delivered', atMs: sent!.atMs + 1000 };
    const result = run([sent!, delivered, sendLogFor(sent!, 'marketing')]);
    expect(result.differences).toEqual([]);
    expect(result.checked).toMatchObject({ messages: 1, unverifiable: 1 });
  });

  it("Meta's conversation ids tell a message that rode from one that opened a conversation", () => {
    const base = { waba: 'W1', business: 'PN1', user: '919876543210' };
    const t = at('2024-03-01T10:00:00Z');
    const events: CoreEvent[] = [
      { kind: 'outbound', atMs: t, ...base, id: 'm1', template: 'marketing' },
      { kind: 'outbound', atMs: t + HOUR, ...base, id: 'm2', template: 'marketing' },
      ...['m1', 'm2'].map((id, i): StatusEvent => ({
        kind: 'status',
        atMs: t + i * HOUR + 1000,
        id,
        status: 'delivered',
        pricing: { pricing_model: 'CBP', category: 'marketing', billable: true },
        conversation: { id: i === 0 ? 'c1' : 'c2', origin: { type: 'marketing' } },
      })),
    ];
    const result = run(events);
    expect(result.differences).toHaveLength(1);
    expect(result.differences[0]).toMatchObject({
      message: 'm2',
      differs: ['conversation'],
      ours: { conversation: 'rode' },
      meta: { conversation: 'opened', conversation_id: 'c2' },
      cause: 'CONVERSATION_MISMATCH',
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// A difference of conversation only (CBP): its cause says so

describe('a message whose only difference from Meta is the conversation', () => {
  const base = { waba: 'W1', business: 'PN1', user: '919876543210' };
  const t = at('2023-07-02T02:00:00Z');
  const sent = (id: string, atMs: number, template: TemplateCategory): CoreEvent => ({
    kind: 'outbound',
    atMs,
    ...base,
    id,
    template,
  });
  const metaSaid = (id: string, atMs: number, category: string, conversation: string): StatusEvent => ({
    kind: 'status',
    atMs: atMs + 5000,
    id,
    status: 'delivered',
    pricing: { pricing_model: 'CBP', category, billable: true },
    conversation: { id: conversation, origin: { type: category } },
  });

  it('Meta opened a new conversation where wameter rode: CONVERSATION_MISMATCH, not a category mismatch', () => {
    const result = run([
      sent('m4', t, 'utility'),
      metaSaid('m4', t, 'utility', 'C3'),
      sent('m5', t + HOUR, 'utility'),
      metaSaid('m5', t + HOUR, 'utility', 'C4'),
    ]);
    expect(result.differences).toEqual([
      expect.objectContaining({
        message: 'm5',
        ours: expect.objectContaining({ category: 'utility', conversation: 'rode' }),
        meta: expect.objectContaining({ category: 'utility', conversation: 'opened', conversation_id: 'C4' }),
        differs: ['conversation'],
        cause: 'CONVERSATION_MISMATCH',
        note: expect.stringContaining('conversation'),
      }),
    ]);
  });

  it('Meta rode on its conversation where wameter opened a new one: CONVERSATION_MISMATCH', () => {
    // 25 hours later wameter's utility conversation has expired; Meta's webhook names the same conversation.
    const later = t + 25 * HOUR;
    const result = run([
      sent('m4', t, 'utility'),
      metaSaid('m4', t, 'utility', 'C3'),
      sent('m5', later, 'utility'),
      metaSaid('m5', later, 'utility', 'C3'),
    ]);
    expect(result.differences).toEqual([
      expect.objectContaining({
        message: 'm5',
        ours: expect.objectContaining({ conversation: 'opened' }),
        meta: expect.objectContaining({ conversation: 'rode', conversation_id: 'C3' }),
        differs: ['conversation'],
        cause: 'CONVERSATION_MISMATCH',
      }),
    ]);
  });

  it('a category difference that comes with it keeps the category cause', () => {
    const result = run([
      sent('m4', t, 'utility'),
      metaSaid('m4', t, 'utility', 'C3'),
      sent('m5', t + HOUR, 'utility'),
      metaSaid('m5', t + HOUR, 'service', 'C4'),
    ]);
    expect(result.differences).toEqual([
      expect.objectContaining({
        message: 'm5',
        differs: ['category', 'conversation'],
        cause: 'CATEGORY_MISMATCH',
      }),
    ]);
  });

  it('the analytics bucket it accounts for takes the same cause and names the message', () => {
    const dayStart = Date.parse('2023-07-02T00:00:00Z') / 1000;
    const exported = parseAnalyticsExport({
      conversation_analytics: {
        data: [
          {
            data_points: [
              {
                start: dayStart,
                end: dayStart + 86_400,
                country: 'IN',
                conversation_type: 'REGULAR',
                conversation_category: 'UTILITY',
                conversation: 2,
                cost: 0.008,
              },
            ],
          },
        ],
      },
      id: 'W1',
    });
    if (!exported.ok) throw new Error(exported.error.message);
    const result = run(
      [
        sent('m4', t, 'utility'),
        metaSaid('m4', t, 'utility', 'C3'),
        sent('m5', t + HOUR, 'utility'),
        metaSaid('m5', t + HOUR, 'utility', 'C4'),
      ],
      { analytics: exported.value },
    );
    const bucket = result.differences.find((d): d is BucketDifference => 'bucket' in d);
    expect(bucket).toMatchObject({
      bucket: { day: '2023-07-02', country: 'IN', category: 'utility' },
      ours: { units: 1 },
      meta: { units: 2 },
      cause: 'CONVERSATION_MISMATCH',
      messages: ['m5'],
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Generated traffic with planted disagreements

const SEED = 20_251_006;

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const WABA = 'W1';
const PN = 'PN1';
const TZ = 'Asia/Kolkata';

interface Planted {
  events: CoreEvent[];
  analytics: AnalyticsExport;
  setup: RatingSetup;
  expectedMessages: [string, string][];
  expectedBuckets: [string, string, string, string][];
  unverifiable: number;
}

async function plantedTraffic(): Promise<Planted> {
  const setup: RatingSetup = {
    ...bundled,
    accounts: [{ waba: WABA, timeZone: TZ, currency: 'USD', portfolio: WABA }],
  };
  const random = mulberry32(SEED);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const users = [
    ...Array.from({ length: 30 }, (_, i) => `9198${String(10_000_000 + i * 7919).slice(0, 8)}`),
    ...Array.from({ length: 15 }, (_, i) => `62812${String(1_000_000 + i * 104_729).slice(0, 7)}`),
    ...Array.from({ length: 10 }, (_, i) => `4477009${String(10_000 + i * 37).slice(0, 5)}`),
  ];
  const start = at('2025-10-06T00:00:00Z');
  type Send = { atMs: number; user: string; id: string; template: TemplateCategory | null };
  const inbounds: CoreEvent[] = [];
  const sends: Send[] = [];
  let n = 0;
  for (const user of users) {
    const sessions = 1 + Math.floor(random() * 3);
    for (let s = 0; s < sessions; s++) {
      const t0 = start + Math.floor(random() * 6) * 24 * HOUR + Math.floor(random() * 20 * 60) * 60_000;
      if (random() < 0.5) {
        sends.push({
          atMs: t0,
          user,
          id: `g${n++}`,
          template: pick(['marketing', 'utility', 'authentication']),
        });
      } else {
        inbounds.push({
          kind: 'inbound',
          atMs: t0,
          waba: WABA,
          business: PN,
          user,
          id: `in${n++}`,
          hasReferral: false,
        });
        sends.push({ atMs: t0 + 10 * 60_000, user, id: `g${n++}`, template: null });
        if (random() < 0.5) sends.push({ atMs: t0 + 30 * 60_000, user, id: `g${n++}`, template: 'utility' });
      }
    }
  }
  // Dedicated users for the plants, so that no random traffic shares their buckets.
  const BRAZIL = '5511987654321';
  const MEXICO = '5215512345678';
  const SPAIN = '34612345678';
  const ITALY = '393471234567';
  sends.push({ atMs: at('2025-10-08T06:00:00Z'), user: BRAZIL, id: 'p-recategorised', template: 'utility' });
  inbounds.push({
    kind: 'inbound',
    atMs: at('2025-10-09T05:00:00Z'),
    waba: WABA,
    business: PN,
    user: MEXICO,
    id: 'p-ad-click',
    hasReferral: true,
  });
  sends.push({ atMs: at('2025-10-09T05:30:00Z'), user: MEXICO, id: 'p-fep', template: 'marketing' });
  // 18:20 UTC is 23:50 in Kolkata: Meta's export puts it on the next day.
  sends.push({ atMs: at('2025-10-11T18:20:00Z'), user: SPAIN, id: 'p-day-edge', template: 'marketing' });
  sends.push({ atMs: at('2025-10-10T09:00:00Z'), user: ITALY, id: 'p-no-webhook', template: 'marketing' });

  const DELIVERY_MS = 3000;
  const outbound = (send: Send, isDeliveredInLog: boolean): CoreEvent => ({
    kind: 'outbound',
    atMs: send.atMs,
    waba: WABA,
    business: PN,
    user: send.user,
    id: send.id,
    template: send.template,
    ...(isDeliveredInLog ? { deliveredAtMs: send.atMs + DELIVERY_MS } : {}),
  });

  // Meta's truth: the traffic as it really was (with the ad click), rated.
  const accounts = new Map(setup.accounts.map((a) => [a.waba, a]));
  const truth = rateEvents([...inbounds, ...sends.map((s) => outbound(s, true))], {
    accountFor: (waba) => accounts.get(waba)!,
    rateBook: setup.rateBook,
    markets: setup.markets,
    withDecisions: true,
  });
  const unitById = new Map(truth.units.map((u) => [u.id, u]));

  const statuses: CoreEvent[] = [];
  const points = new Map<
    string,
    { day: string; country: string; category: string; type: string; volume: number; micros: number }
  >();
  const unverifiableId = sends.find((s) => s.id.startsWith('g') && s.template === 'marketing')!.id;
  for (const decision of truth.decisions) {
    const unit = unitById.get(decision.unitId)!;
    let category: string = unit.type === 'free_entry_point' ? 'referral_conversion' : unit.category;
    let costMicros = unit.amountMicros ?? 0;
    if (decision.messageId === 'p-recategorised') {
      category = 'marketing'; // Meta recategorised the template: billed as marketing
      costMicros = setup.rateBook.cardInForce('USD', '2025-10-08')!.rates.get(unit.market!)!.marketing!;
    }
    if (decision.messageId !== 'p-no-webhook') {
      statuses.push({
        kind: 'status',
        atMs: decision.deliveredAtMs,
        id: decision.messageId,
        status: 'delivered',
        ...(decision.messageId === unverifiableId
          ? {}
          : {
              pricing: { billable: unit.type === 'regular', pricing_model: 'PMP', category, type: unit.type },
            }),
      });
    }
    let day = localDate(decision.deliveredAtMs, TZ);
    if (decision.messageId === 'p-day-edge') day = '2025-10-12';
    const bucketCategory = analyticsCategory(category, unit.type)!;
    const key = `${day}|${unit.country}|${bucketCategory}|${unit.type}`;
    const point = points.get(key) ?? {
      day,
      country: unit.country!,
      category: bucketCategory,
      type: unit.type,
      volume: 0,
      micros: 0,
    };
    point.volume += 1;
    point.micros += costMicros;
    points.set(key, point);
  }
  // A conversation Meta counted that wameter never saw, and a bucket Meta priced differently.
  points.set('extra', {
    day: '2025-10-10',
    country: 'DE',
    category: 'marketing',
    type: 'regular',
    volume: 1,
    micros: 136_500,
  });
  const priced = [...points.values()]
    .filter((p) => p.country === 'IN' && p.category === 'marketing')
    .sort((a, b) => (a.day < b.day ? -1 : 1))[0]!;
  priced.micros += 10_000;

  const dayStart = (day: string) => Date.parse(`${day}T00:00:00+05:30`) / 1000;
  const analyticsJson = {
    pricing_analytics: {
      data: [
        {
          data_points: [...points.values()].map((p) => ({
            start: dayStart(p.day),
            end: dayStart(p.day) + 86_400,
            country: p.country,
            pricing_type: p.type.toUpperCase(),
            pricing_category: p.category.toUpperCase(),
            volume: p.volume,
            cost: Number(formatMicros(p.micros)),
          })),
        },
      ],
    },
    id: WABA,
  };
  const analytics = parseAnalyticsExport(JSON.parse(JSON.stringify(analyticsJson)));
  if (!analytics.ok) throw new Error(analytics.error.message);

  // wameter's input: the send log (without the ad's referral, and without delivery except where Meta's
  // webhook never came) and Meta's status webhooks.
  const events: CoreEvent[] = [
    ...inbounds.map((e) =>
      e.kind === 'inbound' && e.id === 'p-ad-click' ? { ...e, hasReferral: false } : e,
    ),
    ...sends.map((s) => outbound(s, s.id === 'p-no-webhook')),
    ...statuses,
  ];
  return {
    events,
    analytics: analytics.value,
    setup,
    expectedMessages: [
      ['p-fep', 'FREE_ENTRY_POINT_MISSED'],
      ['p-no-webhook', 'MISSING_WEBHOOK'],
      ['p-recategorised', 'TEMPLATE_RECATEGORISED'],
    ],
    expectedBuckets: [
      [priced.day, 'IN', 'marketing', 'COST_DIFFERS'],
      ['2025-10-08', 'BR', 'marketing', 'TEMPLATE_RECATEGORISED'],
      ['2025-10-08', 'BR', 'utility', 'TEMPLATE_RECATEGORISED'],
      ['2025-10-09', 'MX', 'marketing', 'FREE_ENTRY_POINT_MISSED'],
      ['2025-10-09', 'MX', 'service', 'FREE_ENTRY_POINT_MISSED'],
      ['2025-10-10', 'DE', 'marketing', 'MISSING_WEBHOOK'],
      ['2025-10-11', 'ES', 'marketing', 'TIME_ZONE_DAY_EDGE'],
      ['2025-10-12', 'ES', 'marketing', 'TIME_ZONE_DAY_EDGE'],
    ],
    unverifiable: 1,
  };
}

describe(`generated traffic with planted disagreements (seed ${SEED})`, () => {
  it('finds every planted difference with its cause, and invents none', async () => {
    const planted = await plantedTraffic();
    const result = run(planted.events, { setup: planted.setup, analytics: planted.analytics });
    const messages = result.differences
      .filter((d): d is MessageDifference => 'message' in d)
      .map((d) => [d.message, d.cause])
      .sort();
    const buckets = result.differences
      .filter((d): d is BucketDifference => 'bucket' in d)
      .map((d) => [d.bucket.day, d.bucket.country, d.bucket.category, d.cause])
      .sort();
    expect(messages, `seed ${SEED}`).toEqual(planted.expectedMessages);
    expect(buckets, `seed ${SEED}`).toEqual([...planted.expectedBuckets].sort());
    expect(result.checked.unverifiable).toBe(planted.unverifiable);
    expect(result.checked.messages).toBeGreaterThan(80);
    expect(result.checked.buckets).toBeGreaterThan(20);
  });

  it('the planted recategorisation shows what each side said', async () => {
    const planted = await plantedTraffic();
    const result = run(planted.events, { setup: planted.setup, analytics: planted.analytics });
    const recategorised = result.differences.find((d) => 'message' in d && d.message === 'p-recategorised');
    expect(recategorised).toMatchObject({
      ours: { pricing_model: 'PMP', category: 'utility', type: 'regular' },
      meta: { pricing_model: 'PMP', category: 'marketing', type: 'regular' },
      differs: ['category'],
    });
    const bucket = result.differences.find(
      (d) => 'bucket' in d && d.bucket.country === 'BR' && d.bucket.category === 'marketing',
    );
    expect(bucket).toMatchObject({ ours: { units: 0 }, meta: { units: 1 }, messages: ['p-recategorised'] });
  });

  it('the same traffic without plants agrees everywhere', async () => {
    const planted = await plantedTraffic();
    const agreeing = planted.events.filter((e) => !('id' in e) || !String(e.id).startsWith('p-'));
    const result = run(agreeing, { setup: planted.setup });
    expect(result.differences).toEqual([]);
  });
});

describe('whyNothingWasChecked', () => {
  const json = (
    checked: Omit<ReconciliationJson['checked'], 'category_from_webhook'> & {
      category_from_webhook?: number;
    },
  ): ReconciliationJson => ({ differences: [], checked: { category_from_webhook: 0, ...checked } });

  it('is silent when a message or a bucket was compared', () => {
    expect(whyNothingWasChecked(json({ messages: 2, unverifiable: 1, buckets: 0 }), false)).toBeUndefined();
    expect(whyNothingWasChecked(json({ messages: 0, unverifiable: 0, buckets: 3 }), true)).toBeUndefined();
  });

  it('names what was missing: Meta’s pricing on the statuses, and an analytics export', () => {
    const why = whyNothingWasChecked(json({ messages: 2, unverifiable: 2, buckets: 0 }), false);
    expect(why).toContain("none of the 2 delivered message(s) has a status webhook with Meta's pricing");
    expect(why).toContain('no analytics export was given (--analytics)');
    const withExport = whyNothingWasChecked(json({ messages: 0, unverifiable: 0, buckets: 0 }), true);
    expect(withExport).toContain('the input holds no delivered business message');
    expect(withExport).toContain('the analytics export has no day × country × category bucket');
  });

  it('with an export, says no message was delivered in its period, not that the input holds none', () => {
    const period = { from: '2025-10-10', to: '2025-10-20', time_zone: 'UTC', basis: 'requested' as const };
    const why = whyNothingWasChecked(
      {
        ...json({ messages: 0, unverifiable: 0, buckets: 0 }),
        analytics: {
          period,
          not_compared: { other_pricing_model: { units: 0, by_currency: {} } },
        } as NonNullable<ReconciliationJson['analytics']>,
      },
      true,
    );
    expect(why).toContain(
      'no business message was delivered in the period compared (2025-10-10..2025-10-20)',
    );
    expect(why).not.toContain('the input holds no delivered business message');
  });

  it('a send log alone, rated and reconciled, checks nothing', () => {
    const sent: CoreEvent = {
      kind: 'outbound',
      atMs: at('2025-10-08T06:00:00Z'),
      waba: 'W1',
      business: 'PN1',
      user: '919876543210',
      id: 'm1',
      template: 'utility',
      deliveredAtMs: at('2025-10-08T06:00:03Z'),
    };
    expect(whyNothingWasChecked(run([sent]), false)).toContain('nothing could be checked against Meta');
  });
});

describe('an analytics export compared over a period', () => {
  const sent = (waba: string, id: string, atIso: string): CoreEvent => ({
    kind: 'outbound',
    atMs: at(atIso),
    waba,
    business: `PN-${waba}`,
    user: '919876543210',
    id,
    template: 'utility',
    deliveredAtMs: at(atIso) + 3000,
  });
  const exportOf = (waba: string, days: string[], seconds = 86_400): AnalyticsExport => {
    const parsed = parseAnalyticsExport({
      pricing_analytics: {
        data: [
          {
            data_points: days.map((day) => ({
              start: Date.parse(`${day}T00:00:00+05:30`) / 1000,
              end: Date.parse(`${day}T00:00:00+05:30`) / 1000 + seconds,
              volume: 1,
              cost: 0.0014,
              country: 'IN',
              pricing_category: 'UTILITY',
              pricing_type: 'REGULAR',
            })),
          },
        ],
      },
      id: waba,
    });
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value;
  };
  const setup = (): RatingSetup => ({
    ...bundled,
    accounts: [{ waba: 'W1', timeZone: TZ, currency: 'USD', portfolio: 'W1' }],
  });
  const events = [
    sent('W1', 'a', '2025-10-01T05:30:00Z'),
    sent('W1', 'b', '2025-10-15T05:30:00Z'),
    sent('W1', 'c', '2025-10-31T05:30:00Z'),
    sent('W9', 'z', '2025-10-15T05:30:00Z'),
  ];

  it("the last day Meta's export lacks is compared, and the WABA's currency is the accounts file's", () => {
    const result = run(events, { setup: setup(), analytics: exportOf('W1', ['2025-10-01', '2025-10-15']) });
    expect(result.analytics).toMatchObject({
      waba: 'W1',
      period: { from: '2025-10-01', to: '2025-10-31', time_zone: TZ, basis: 'export_months' },
      currency: 'USD',
      currency_source: 'accounts',
      units: 3,
      not_compared: { other_wabas: { wabas: 1, units: 1 } },
    });
    expect(result.differences).toEqual([
      expect.objectContaining({
        bucket: expect.objectContaining({ day: '2025-10-31' }),
        cause: 'META_COUNTS_FEWER',
      }),
    ]);
  });

  it('a WABA missing from the accounts file is billed in the default currency, and says so', () => {
    const result = run(events, { setup: setup(), analytics: exportOf('W9', ['2025-10-15']) });
    expect(result.analytics).toMatchObject({ waba: 'W9', currency: 'USD', currency_source: 'default' });
  });

  it('takes a requested period, and refuses one that cuts a monthly data point', () => {
    const session = new ReconcileSession(setup());
    for (const event of events) session.add(event);
    const finished = session.finish(exportOf('W1', ['2025-10-15']), undefined, {
      from: '2025-10-10',
      to: '2025-10-20',
    });
    expect(finished.ok && finished.value.reconciliation.differences).toEqual([]);
    expect(finished.ok && finished.value.reconciliation.analytics?.period.basis).toBe('requested');
    const monthly = new ReconcileSession(setup());
    for (const event of events) monthly.add(event);
    expect(
      monthly.finish(exportOf('W1', ['2025-10-01'], 31 * 86_400), undefined, { to: '2025-10-20' }),
    ).toMatchObject({ ok: false, error: { code: 'ANALYTICS_PERIOD_CUTS_POINT' } });
  });
});

describe('a conversation_analytics export and messages on either side of per-message pricing (2025-07-01)', () => {
  const setup = (): RatingSetup => ({
    ...bundled,
    accounts: [{ waba: 'W1', timeZone: TZ, currency: 'USD', portfolio: 'W1' }],
  });
  const sent = (id: string, atIso: string, deliveredAtMs?: number): CoreEvent => ({
    kind: 'outbound',
    atMs: at(atIso),
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    id,
    template: 'utility',
    ...(deliveredAtMs !== undefined ? { deliveredAtMs } : {}),
  });
  const delivered = (id: string, atIso: string, model: 'CBP' | 'PMP'): StatusEvent => ({
    kind: 'status',
    atMs: at(atIso) + 3000,
    id,
    status: 'delivered',
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    ...(model === 'CBP'
      ? {
          pricing: { billable: true, pricing_model: 'CBP', category: 'utility' },
          conversation: { id: `C-${id}`, origin: { type: 'utility' } },
        }
      : { pricing: { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' } }),
  });
  /** Meta's DAILY conversation_analytics points (Kolkata days) of utility conversations in India. */
  const conversations = (points: [string, number, number][]): AnalyticsExport => {
    const parsed = parseAnalyticsExport({
      conversation_analytics: {
        data: [
          {
            data_points: points.map(([day, conversation, cost]) => ({
              start: Date.parse(`${day}T00:00:00+05:30`) / 1000,
              end: Date.parse(`${day}T00:00:00+05:30`) / 1000 + 86_400,
              country: 'IN',
              conversation_category: 'UTILITY',
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
  const finish = (events: CoreEvent[], analytics: AnalyticsExport, period = {}) => {
    const session = new ReconcileSession(setup());
    for (const event of events) session.add(event);
    const finished = session.finish(analytics, undefined, period);
    if (!finished.ok) throw new Error(finished.error.message);
    return finished.value.reconciliation;
  };
  const buckets = (result: ReconciliationJson) =>
    result.differences.filter((d): d is BucketDifference => 'bucket' in d);

  it("Meta billed per message a message of a conversation of wameter's: its bucket is the era boundary", () => {
    // 28 June in Kolkata: a utility conversation for wameter; Meta's webhook says it billed the message (PMP),
    // so its conversation_analytics has no conversation that day.
    const result = finish(
      [sent('m1', '2025-06-28T05:30:00Z'), delivered('m1', '2025-06-28T05:30:00Z', 'PMP')],
      conversations([['2025-06-10', 0, 0]]),
    );
    expect(result.differences.map((d) => d.cause)).toEqual(['ERA_BOUNDARY', 'ERA_BOUNDARY']);
    expect(buckets(result)).toEqual([
      expect.objectContaining({
        bucket: { waba: 'W1', day: '2025-06-28', country: 'IN', category: 'utility' },
        ours: expect.objectContaining({ units: 1 }),
        meta: expect.objectContaining({ units: 0 }),
        messages: ['m1'],
      }),
    ]);
  });

  it("Meta opened a conversation with a message wameter billed per message: Meta's bucket is the era boundary", () => {
    // 2 July in Kolkata: billed per message for wameter, not compared with conversations; Meta's webhook
    // names a conversation, which its conversation_analytics counts.
    const result = finish(
      [sent('m2', '2025-07-02T05:30:00Z'), delivered('m2', '2025-07-02T05:30:00Z', 'CBP')],
      conversations([['2025-07-02', 1, 0.0042]]),
    );
    expect(result.analytics).toMatchObject({ units: 0, not_compared: { other_pricing_model: { units: 1 } } });
    expect(buckets(result)).toEqual([
      expect.objectContaining({
        bucket: { waba: 'W1', day: '2025-07-02', country: 'IN', category: 'utility' },
        ours: expect.objectContaining({ units: 0 }),
        meta: expect.objectContaining({ units: 1 }),
        cause: 'ERA_BOUNDARY',
        messages: ['m2'],
      }),
    ]);
  });

  it('a period wholly billed per message says so when nothing could be checked', () => {
    const empty = parseAnalyticsExport({ conversation_analytics: { data: [] }, id: 'W1' });
    if (!empty.ok) throw new Error(empty.error.message);
    // Delivered per the send log, with no status webhook: nothing of Meta's to compare the message with.
    const result = finish([sent('m3', '2025-07-05T05:30:00Z', at('2025-07-05T05:30:03Z'))], empty.value, {
      from: '2025-07-01',
      to: '2025-07-31',
    });
    expect(result.differences).toEqual([]);
    const why = whyNothingWasChecked(result, true);
    expect(why).toContain(
      "the 1 unit(s) of WABA W1 in the period were billed per message, which Meta's conversation_analytics does not count",
    );
    expect(why).toContain("give Meta's pricing_analytics export");
  });
});

describe('a half-hour export in a time zone whose midnight falls inside a half hour (Asia/Kathmandu)', () => {
  const setup = (): RatingSetup => ({
    ...bundled,
    accounts: [{ waba: 'W1', timeZone: 'Asia/Kathmandu', currency: 'USD', portfolio: 'W1' }],
  });
  const sent = (id: string, user: string, atIso: string): CoreEvent => ({
    kind: 'outbound',
    atMs: at(atIso),
    waba: 'W1',
    business: 'PN1',
    user,
    id,
    template: 'marketing',
    deliveredAtMs: at(atIso),
  });
  // 23:55 on 5 July and 00:05 on 6 July in Kathmandu (UTC+05:45).
  const events = [
    sent('m1', '919876543210', '2023-07-05T18:10:00Z'),
    sent('m2', '919876543211', '2023-07-05T18:20:00Z'),
  ];
  /** Meta's HALF_HOUR point 18:00Z–18:30Z (23:45–00:15 local), as in the auditor's export. */
  const exported = (conversations: number, cost: number): AnalyticsExport => {
    const parsed = parseAnalyticsExport({
      conversation_analytics: {
        data: [
          {
            data_points: [
              {
                start: 1_688_580_000,
                end: 1_688_581_800,
                country: 'IN',
                conversation_type: 'REGULAR',
                conversation_category: 'MARKETING',
                conversation: conversations,
                cost,
              },
            ],
          },
        ],
      },
      id: 'W1',
    });
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value;
  };
  const finish = (analytics: AnalyticsExport, period = {}) => {
    const session = new ReconcileSession(setup());
    for (const event of events) session.add(event);
    const finished = session.finish(analytics, undefined, period);
    if (!finished.ok) throw new Error(finished.error.message);
    return finished.value.reconciliation;
  };

  it('agrees over the default period, which holds both local days of the half hour', () => {
    const result = finish(exported(2, 0.0198));
    expect(result.differences).toEqual([]);
    expect(result.analytics).toMatchObject({
      period: { from: '2023-07-05', to: '2023-07-06', basis: 'export_days' },
      units: 2,
      not_compared: { outside_period: { units: 0 } },
      totals: [{ ours: { units: 2, amount: '0.0198' }, difference: { units: 0, amount: '0' } }],
    });
  });

  it('agrees over --from/--to holding both days, with no day-edge difference', () => {
    const result = finish(exported(2, 0.0198), { from: '2023-07-05', to: '2023-07-06' });
    expect(result.differences).toEqual([]);
    expect(result.analytics?.period.basis).toBe('requested');
  });

  it('a conversation Meta counts that wameter lacks is still a difference', () => {
    const result = finish(exported(3, 0.0297));
    expect(result.differences).toEqual([
      expect.objectContaining({
        bucket: { waba: 'W1', day: '2023-07-05..2023-07-06', country: 'IN', category: 'marketing' },
        ours: expect.objectContaining({ units: 2 }),
        meta: expect.objectContaining({ units: 3 }),
        cause: 'MISSING_WEBHOOK',
      }),
    ]);
  });
});

describe('an analytics export without a category dimension, against message differences', () => {
  const dayStart = Date.parse('2025-10-13T00:00:00Z') / 1000;
  const byType = (points: { type: string; volume: number; cost: number }[]): AnalyticsExport => {
    const parsed = parseAnalyticsExport({
      pricing_analytics: {
        data: [
          {
            data_points: points.map((p) => ({
              start: dayStart,
              end: dayStart + 86_400,
              pricing_type: p.type,
              volume: p.volume,
              cost: p.cost,
            })),
          },
        ],
      },
      id: 'W1',
    });
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value;
  };
  // The user's ad click never reached wameter: it charges a marketing template Meta counted as a free entry point.
  const deliveredAtMs = at('2025-10-13T10:01:03Z');
  const events: CoreEvent[] = [
    {
      kind: 'outbound',
      atMs: deliveredAtMs - 3000,
      waba: 'W1',
      business: 'PN1',
      user: '919876543213',
      id: 'm4',
      template: 'marketing',
    },
    {
      kind: 'status',
      atMs: deliveredAtMs,
      id: 'm4',
      status: 'delivered',
      waba: 'W1',
      pricing: { billable: false, pricing_model: 'PMP', category: 'marketing', type: 'free_entry_point' },
    },
  ];

  it('the two type buckets the missed free entry point moves take its cause and name it', () => {
    const result = run(events, { analytics: byType([{ type: 'FREE_ENTRY_POINT', volume: 1, cost: 0 }]) });
    expect(result.differences).toEqual([
      expect.objectContaining({ message: 'm4', cause: 'FREE_ENTRY_POINT_MISSED' }),
      expect.objectContaining({
        bucket: { waba: 'W1', day: '2025-10-13', country: '*', category: '*', type: 'free_entry_point' },
        ours: expect.objectContaining({ units: 0 }),
        meta: expect.objectContaining({ units: 1 }),
        cause: 'FREE_ENTRY_POINT_MISSED',
        messages: ['m4'],
      }),
      expect.objectContaining({
        bucket: { waba: 'W1', day: '2025-10-13', country: '*', category: '*', type: 'regular' },
        ours: expect.objectContaining({ units: 1 }),
        meta: expect.objectContaining({ units: 0 }),
        cause: 'FREE_ENTRY_POINT_MISSED',
        messages: ['m4'],
      }),
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// A bucket's cost difference accounted for by a message's pricing type

describe('a cost difference in an analytics bucket that a message difference accounts for', () => {
  // The user wrote at 05:00; wameter holds the utility template of 06:00 free inside that window, Meta charged it.
  const deliveredAtMs = at('2025-10-08T06:00:03Z');
  const events: CoreEvent[] = [
    {
      kind: 'inbound',
      atMs: at('2025-10-08T05:00:00Z'),
      waba: 'W1',
      business: 'PN1',
      user: '919876543210',
      id: 'in1',
      hasReferral: false,
    },
    {
      kind: 'outbound',
      atMs: deliveredAtMs - 3000,
      waba: 'W1',
      business: 'PN1',
      user: '919876543210',
      id: 'o1',
      template: 'utility',
    },
    {
      kind: 'status',
      atMs: deliveredAtMs,
      id: 'o1',
      status: 'delivered',
      waba: 'W1',
      pricing: { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' },
    },
  ];
  /** The rate of wameter's own (free) unit: what Meta charged, when it charged the message as wameter would have. */
  const utilityRateMicros = () => {
    const rated = rateEvents(events, {
      accountFor: () => ({ waba: 'W1', timeZone: 'UTC', currency: 'USD', portfolio: 'W1' }),
      rateBook: bundled.rateBook,
      markets: bundled.markets,
    });
    const [unit] = rated.units;
    expect(unit).toMatchObject({ type: 'free_customer_service', amountMicros: 0 });
    if (unit?.rateMicros == null) throw new Error('no utility rate for India on the bundled card');
    return unit.rateMicros;
  };
  const exportCosting = (costMicros: number): AnalyticsExport => {
    const dayStart = Date.parse('2025-10-08T00:00:00Z') / 1000;
    const parsed = parseAnalyticsExport({
      pricing_analytics: {
        data: [
          {
            data_points: [
              {
                start: dayStart,
                end: dayStart + 86_400,
                country: 'IN',
                pricing_type: 'REGULAR',
                pricing_category: 'UTILITY',
                volume: 1,
                cost: Number(formatMicros(costMicros)),
              },
            ],
          },
        ],
      },
      id: 'W1',
    });
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value;
  };

  it('same count, Meta charged what wameter held free: the bucket names the message and takes its cause', () => {
    const result = run(events, { analytics: exportCosting(utilityRateMicros()) });
    const bucket = result.differences.find((d): d is BucketDifference => 'bucket' in d);
    expect(bucket).toMatchObject({
      bucket: { waba: 'W1', day: '2025-10-08', country: 'IN', category: 'utility' },
      ours: { units: 1, amount: '0' },
      meta: { units: 1 },
      cause: 'PRICING_TYPE_MISMATCH',
      messages: ['o1'],
    });
    expect(bucket?.note).toContain('accounted for by the message difference(s) listed');
    expect(bucket?.note).not.toContain('rate card');
  });

  it('a cost the message difference does not account for stays COST_DIFFERS, naming no message', () => {
    const result = run(events, { analytics: exportCosting(utilityRateMicros() + 1000) });
    const bucket = result.differences.find((d): d is BucketDifference => 'bucket' in d);
    expect(bucket).toMatchObject({ cause: 'COST_DIFFERS', ours: { units: 1 }, meta: { units: 1 } });
    expect(bucket?.messages).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------
// Only Meta's webhooks: the category is Meta's own

describe("messages rated from Meta's own category (no send log line)", () => {
  const status = (id: string, atIso: string, category: string): StatusEvent => ({
    kind: 'status',
    atMs: at(atIso),
    id,
    status: 'delivered',
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    pricing: { billable: true, pricing_model: 'PMP', category, type: 'regular' },
  });
  const webhooksOnly = [
    status('w1', '2025-10-08T06:00:03Z', 'utility'),
    status('w2', '2025-10-08T07:00:03Z', 'marketing'),
  ];

  it('are not counted as checked against the webhook their category came from', () => {
    const result = run(webhooksOnly);
    expect(result.differences).toEqual([]);
    expect(result.checked).toEqual({ messages: 2, unverifiable: 0, category_from_webhook: 2, buckets: 0 });
  });

  it('with nothing else compared, nothing was checked: no agreement is claimed, and it says why', () => {
    const why = whyNothingWasChecked(run(webhooksOnly), false);
    expect(why).toContain('nothing could be checked against Meta');
    expect(why).toContain("2 delivered message(s) were rated from Meta's own category");
  });

  it('a message of the send log beside them is still checked', () => {
    const sent: CoreEvent = {
      kind: 'outbound',
      atMs: at('2025-10-09T06:00:00Z'),
      waba: 'W2',
      business: 'PN2',
      user: '919876543211',
      id: 'o1',
      template: 'utility',
    };
    const delivered: StatusEvent = { ...status('o1', '2025-10-09T06:00:03Z', 'utility'), waba: 'W2' };
    const result = run([...webhooksOnly, sent, delivered]);
    expect(result.checked).toEqual({ messages: 3, unverifiable: 0, category_from_webhook: 2, buckets: 0 });
    expect(whyNothingWasChecked(result, false)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------
// The WABA an analytics export describes

describe('an analytics export that names a WABA', () => {
  const sent: CoreEvent = {
    kind: 'outbound',
    atMs: at('2025-10-08T06:00:00Z'),
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    id: 'o1',
    template: 'utility',
  };
  const delivered: StatusEvent = {
    kind: 'status',
    atMs: at('2025-10-08T06:00:03Z'),
    id: 'o1',
    status: 'delivered',
    pricing: { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' },
  };
  const exportOf = (id?: string): AnalyticsExport => {
    const dayStart = Date.parse('2025-10-08T00:00:00Z') / 1000;
    const parsed = parseAnalyticsExport({
      pricing_analytics: {
        data: [{ data_points: [{ start: dayStart, end: dayStart + 86_400, volume: 1, cost: 0.0014 }] }],
      },
      ...(id !== undefined ? { id } : {}),
    });
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value;
  };
  const finish = (analytics: AnalyticsExport, waba?: string) => {
    const session = new ReconcileSession(bundled);
    for (const event of [sent, delivered]) session.add(event);
    return session.finish(analytics, waba);
  };

  it('another WABA than the events hold is refused, naming both, even when the events hold one WABA', () => {
    const finished = finish(exportOf('W9'));
    expect(finished.ok).toBe(false);
    if (finished.ok) return;
    expect(finished.error.code).toBe('ANALYTICS_WABA_UNKNOWN');
    expect(finished.error.message).toContain('names WABA W9');
    expect(finished.error.message).toContain('1 WABA(s) (W1)');
  });

  it('without an id it is the only WABA of the events; --waba overrides the id', () => {
    const unnamed = finish(exportOf());
    expect(unnamed.ok && unnamed.value.reconciliation.analytics?.waba).toBe('W1');
    const overridden = finish(exportOf('W9'), 'W1');
    expect(overridden.ok && overridden.value.reconciliation.analytics?.waba).toBe('W1');
  });
});

// ---------------------------------------------------------------------------------------------------------
// A conversation difference that follows from an earlier one

describe('both sides rode, on conversations that differ since an earlier message', () => {
  const t = at('2024-03-01T10:00:00Z');
  const sent = (id: string, atMs: number): CoreEvent => ({
    kind: 'outbound',
    atMs,
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    id,
    template: 'utility',
  });
  const metaSaid = (id: string, atMs: number, conversation: string): StatusEvent => ({
    kind: 'status',
    atMs: atMs + 3000,
    id,
    status: 'delivered',
    pricing: { billable: true, pricing_model: 'CBP', category: 'utility' },
    conversation: { id: conversation, origin: { type: 'utility' } },
  });

  it("the note says each side's case: Meta opened where wameter rode, then both rode on different ones", () => {
    const result = run([
      sent('o1', t),
      metaSaid('o1', t, 'c1'),
      sent('o2', t + 2 * HOUR),
      metaSaid('o2', t + 2 * HOUR, 'c2'),
      sent('o3', t + 3 * HOUR),
      metaSaid('o3', t + 3 * HOUR, 'c2'),
    ]);
    const [opened, rode] = result.differences as MessageDifference[];
    expect(opened).toMatchObject({ message: 'o2', cause: 'CONVERSATION_MISMATCH' });
    expect(opened!.note).toMatch(
      /^same category, but Meta opened a conversation where wameter rode on an open one:/,
    );
    expect(rode).toMatchObject({
      message: 'o3',
      ours: { conversation: 'rode' },
      meta: { conversation: 'rode', conversation_id: 'c2' },
      cause: 'CONVERSATION_MISMATCH',
    });
    expect(rode!.note).not.toContain('Meta opened a conversation where wameter rode');
    expect(rode!.note).toContain('both rode on an open conversation, but not on the same one');
    expect(rode!.note).toContain("Meta's c2 began with o2, wameter's u_o1 with o1");
    expect(rode!.note).toContain('they differ since o2');
  });
});
