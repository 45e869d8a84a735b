// Corners of pricing-rules.md a review found the engine got wrong: a free entry point opened while another is
// open (§5.1 against §3.2), a CBP-2022 non-template with no window in the input (§4), and explain's words
// where no free entry point can open (§2, NBP) or none opens (an open one takes the answer).
import { describe, expect, it } from 'vitest';
import { rateByReference, type ReferenceUnit } from '../../test/reference-rater.js';
import { INDIA, at, inbound, loadPricing, rate, send } from '../../test/support/engine.js';
import { defaultAccount, type Account } from './events.js';
import { attachVolumeTiers, createRateBook, parseRateCardCsv, parseVolumeTierCsv } from './rate-card.js';
import type { CoreEvent, MetaConversationEvidence, MetaPricingEvidence, TemplateCategory } from './events.js';
import { costInWords, explainUser } from './explain.js';
import type { BillableUnit } from './units.js';

/** A send log line that already knows its delivery (as the review's reproductions give it). */
function logged(iso: string, id: string, template: TemplateCategory | null): CoreEvent {
  const atMs = at(iso);
  return {
    kind: 'outbound',
    atMs,
    id,
    waba: 'W1',
    business: 'PN1',
    user: INDIA,
    template,
    deliveredAtMs: atMs,
  };
}

/** Meta's delivered status for a message no send log line tells of. */
function statusAlone(
  iso: string,
  id: string,
  pricing: MetaPricingEvidence,
  conversation?: MetaConversationEvidence,
  user = INDIA,
): CoreEvent {
  return {
    kind: 'status',
    atMs: at(iso),
    id,
    status: 'delivered',
    waba: 'W1',
    business: 'PN1',
    user,
    pricing,
    ...(conversation ? { conversation } : {}),
  };
}

function brief(units: readonly BillableUnit[]) {
  return units.map((u) => ({
    messages: u.messages,
    category: u.category,
    type: u.type,
    rule: u.rule,
    amount: u.amountMicros,
  }));
}

/** The reasons of the traced user's story, by message id. */
async function reasonsOf(events: CoreEvent[], options: Parameters<typeof rate>[1] = {}) {
  const result = await rate(events, { ...options, trace: { user: INDIA } });
  return new Map(result.timeline.map((line) => [line.messageId, line.reason]));
}

// The review's reproduction (PMP-2025, October 2025: India marketing 0.0107 USD on usd-2025-10-01).
const SECOND_AD_CLICK: CoreEvent[] = [
  inbound(at('2025-10-10T00:00:00Z'), 'i1', {}, true),
  logged('2025-10-10T01:00:00Z', 'm1', null), // answer: window until 2025-10-13T01:00Z
  inbound(at('2025-10-12T12:00:00Z'), 'i2', {}, true), // a second ad click while that window is open
  logged('2025-10-12T13:00:00Z', 'm2', null), // its answer: a new window until 2025-10-15T13:00Z
  logged('2025-10-13T08:00:00Z', 'm3', 'marketing'),
];

describe('a free entry point opened while another is open', () => {
  it('PMP: the answer to a new ad click opens a new 72 h window from the answer, superseding the open one', async () => {
    const result = await rate([
      ...SECOND_AD_CLICK,
      logged('2025-10-15T12:59:59Z', 'm4', 'marketing'), // the last second of m2's window
      logged('2025-10-15T13:00:00Z', 'm5', 'marketing'), // windows are half-open: charged
    ]);
    expect(brief(result.units)).toEqual([
      {
        messages: ['m1'],
        category: 'referral_conversion',
        type: 'free_entry_point',
        rule: 'FEP_OPEN',
        amount: 0,
      },
      {
        messages: ['m2'],
        category: 'referral_conversion',
        type: 'free_entry_point',
        rule: 'FEP_OPEN',
        amount: 0,
      },
      {
        messages: ['m3'],
        category: 'referral_conversion',
        type: 'free_entry_point',
        rule: 'FEP_WINDOW',
        amount: 0,
      },
      {
        messages: ['m4'],
        category: 'referral_conversion',
        type: 'free_entry_point',
        rule: 'FEP_WINDOW',
        amount: 0,
      },
      { messages: ['m5'], category: 'marketing', type: 'regular', rule: 'PMP_CHARGED', amount: 10700 },
    ]);
    expect(result.findings).toEqual([]);
  });

  it('PMP: batch and stream rate a superseding free entry point alike', async () => {
    const later = [
      ...send(at('2025-10-20T09:00:00Z'), 'x1', 'marketing', { user: '919800000002' }),
      ...send(at('2025-10-25T09:00:00Z'), 'x2', 'utility', { user: '919800000003' }),
    ];
    const events = [...SECOND_AD_CLICK, ...later].sort((a, b) => a.atMs - b.atMs);
    const batch = await rate(events);
    for (const maxLatenessMs of [60_000, 3_600_000, 30 * 3_600_000]) {
      const stream = await rate(events, { maxLatenessMs, flushEveryEvents: 1 });
      expect(stream.stats.late, `lateness ${maxLatenessMs}`).toBe(0);
      expect(stream.units, `lateness ${maxLatenessMs}`).toEqual(batch.units);
      expect(stream.pending).toEqual(batch.pending);
      expect(stream.findings).toEqual(batch.findings);
    }
    expect(batch.units.find((u) => u.messages.includes('m3'))?.type).toBe('free_entry_point');
  });

  it('CBP: an ad click answered inside an open free entry point conversation rides on it and opens none (§3.2)', async () => {
    // March 2024 (CBP-2023): the conversation of m1 runs to 2024-03-04T01:00Z.
    const result = await rate([
      inbound(at('2024-03-01T00:00:00Z'), 'i1', {}, true),
      logged('2024-03-01T01:00:00Z', 'm1', null),
      inbound(at('2024-03-03T12:00:00Z'), 'i2', {}, true),
      logged('2024-03-03T13:00:00Z', 'm2', null), // rides; the ad click is answered
      logged('2024-03-04T08:00:00Z', 'm3', 'marketing'), // after the free entry point: a marketing conversation
    ]);
    expect(brief(result.units)).toEqual([
      {
        messages: ['m1', 'm2'],
        category: 'referral_conversion',
        type: 'free_entry_point',
        rule: 'FEP_OPEN',
        amount: 0,
      },
      { messages: ['m3'], category: 'marketing', type: 'regular', rule: 'CBP_OPEN', amount: 9900 },
    ]);
    expect(result.units[0]!.expiresAtMs).toBe(at('2024-03-04T01:00:00Z'));
  });

  it('a CBP free entry point conversation still open on 2025-07-01 is closed by the answer to a new ad click', async () => {
    // m1 opens a CBP-2024-11 free entry point conversation until 2025-07-03T21:00Z; the answer to the second
    // ad click comes under per-message pricing and opens a window until 2025-07-05T11:00Z.
    const events = [
      inbound(at('2025-06-30T20:00:00Z'), 'i1', {}, true),
      logged('2025-06-30T21:00:00Z', 'm1', 'marketing'),
      inbound(at('2025-07-02T10:00:00Z'), 'i2', {}, true),
      logged('2025-07-02T11:00:00Z', 'm2', null),
      logged('2025-07-04T10:00:00Z', 'm3', 'marketing'),
    ];
    const result = await rate(events, { trace: { user: INDIA } });
    expect(brief(result.units)).toEqual([
      {
        messages: ['m1'],
        category: 'referral_conversion',
        type: 'free_entry_point',
        rule: 'FEP_OPEN',
        amount: 0,
      },
      {
        messages: ['m2'],
        category: 'referral_conversion',
        type: 'free_entry_point',
        rule: 'FEP_OPEN',
        amount: 0,
      },
      {
        messages: ['m3'],
        category: 'referral_conversion',
        type: 'free_entry_point',
        rule: 'FEP_WINDOW',
        amount: 0,
      },
    ]);
    expect(result.units[0]!.closedAtMs).toBe(at('2025-07-02T11:00:00Z'));
    const story = explainUser(INDIA, undefined, result.timeline, result.units);
    const closed = story.entries.find((e) => e.kind === 'closed');
    expect(closed).toMatchObject({ at: '2025-07-02T11:00:00Z', unit_id: 'u_m1' });
    expect(closed!.text).toBe('free entry point u_m1 closed early by a new free entry point');
    expect(story.entries.find((e) => e.message_id === 'm2')!.text).toContain('it closes u_m1');
  });

  it("Meta's free_entry_point word on every message of one window (statuses alone) does not stretch the window", async () => {
    // Meta says free_entry_point for each message inside the window: those are not new ad clicks.
    const fep: MetaPricingEvidence = {
      pricing_model: 'PMP',
      category: 'referral_conversion',
      type: 'free_entry_point',
    };
    const result = await rate([
      statusAlone('2025-10-10T00:00:00Z', 'o1', fep), // window until 2025-10-13T00:00Z
      statusAlone('2025-10-12T12:00:00Z', 'o2', fep), // inside it
      statusAlone('2025-10-13T08:00:00Z', 'o3', {
        pricing_model: 'PMP',
        category: 'marketing',
        type: 'regular',
      }),
    ]);
    expect(result.units.map((u) => [u.messages[0], u.rule, u.amountMicros])).toEqual([
      ['o1', 'FEP_OPEN', 0],
      ['o2', 'FEP_WINDOW', 0],
      ['o3', 'PMP_CHARGED', 10700],
    ]);
  });
});

describe('CBP-2022: who opened the conversation (§4)', () => {
  it('a non-template delivered with no window in the input opens a user-initiated conversation, said by NO_WINDOW_IN_INPUT', async () => {
    // May 2022, usd-2022-02-01-partial: India user-initiated 0.0040, business-initiated 0.0066.
    const result = await rate([logged('2022-05-10T10:00:00Z', 'm1', null)]);
    expect(brief(result.units)).toEqual([
      {
        messages: ['m1'],
        category: 'user_initiated',
        type: 'free_tier',
        rule: 'CBP2022_USER_INITIATED+FREE_TIER(1/1000)',
        amount: 0,
      },
    ]);
    expect(result.units[0]!.rateMicros).toBe(4000);
    expect(result.findings.map((f) => [f.code, f.message_id, f.count])).toEqual([
      ['NO_WINDOW_IN_INPUT', 'm1', 1],
    ]);
  });

  it('a status alone that Meta calls user_initiated opens a user-initiated conversation', async () => {
    const result = await rate([
      statusAlone(
        '2022-05-10T10:00:00Z',
        'w1',
        { pricing_model: 'CBP', category: 'user_initiated', billable: true },
        { id: 'c1', origin: { type: 'user_initiated' } },
      ),
    ]);
    expect(result.units.map((u) => [u.category, u.rule, u.rateMicros])).toEqual([
      ['user_initiated', 'CBP2022_USER_INITIATED+FREE_TIER(1/1000)', 4000],
    ]);
    expect(result.findings.map((f) => f.code).sort()).toEqual([
      'CATEGORY_FROM_WEBHOOK',
      'NO_WINDOW_IN_INPUT',
    ]);
  });

  it('a template outside the window, or a status alone that Meta calls business_initiated, stays business-initiated', async () => {
    const result = await rate([
      logged('2022-05-10T10:00:00Z', 't1', 'utility'),
      statusAlone(
        '2022-05-10T10:00:00Z',
        'w2',
        { pricing_model: 'CBP', category: 'business_initiated', billable: true },
        { origin: { type: 'business_initiated' } },
        '919800000004', // another user: one conversation at a time per pair
      ),
    ]);
    expect(result.units.map((u) => [u.messages[0], u.category, u.rateMicros])).toEqual([
      ['t1', 'business_initiated', 6600],
      ['w2', 'business_initiated', 6600],
    ]);
    expect(result.findings.map((f) => f.code)).toEqual(['CATEGORY_FROM_WEBHOOK']);
  });

  it('explain says why a non-template with no window in the input is user-initiated', async () => {
    const reasons = await reasonsOf([logged('2022-05-10T10:00:00Z', 'm1', null)]);
    expect(reasons.get('m1')).toBe(
      'non-template message m1 with no conversation open: user-initiated conversation opens (a non-template is sent only inside the customer service window: the user\u2019s message is missing from the input) until 2022-05-11T10:00:00Z',
    );
  });
});

describe("explain's words say only what the rules in force do", () => {
  it('NBP: an ad click opens no free entry point, and explain does not promise one', async () => {
    const reasons = await reasonsOf([
      inbound(at('2021-10-10T00:00:00Z'), 'i1', {}, true),
      logged('2021-10-10T01:00:00Z', 'm1', 'marketing'),
    ]);
    expect(reasons.get('i1')).toBe(
      'user wrote: customer service window open until 2021-10-11T00:00:00Z; came through an ad / Page CTA, but notification pricing (before 2022-02-01) has no free entry point',
    );
    expect(reasons.get('m1')).toBe(
      'marketing template m1: charged per delivered template (notification pricing, before 2022-02-01)',
    );
  });

  it('an ad click on the eve of 2022-02-01 is answered under CBP-2022: explain says from when', async () => {
    const result = await rate(
      [inbound(at('2022-01-31T12:00:00Z'), 'i1', {}, true), logged('2022-02-01T01:00:00Z', 'm1', null)],
      { trace: { user: INDIA } },
    );
    expect(result.units.map((u) => u.rule)).toEqual(['FEP_OPEN']);
    expect(result.timeline[0]!.reason).toBe(
      "user wrote: customer service window open until 2022-02-01T12:00:00Z; came through an ad / Page CTA: the business's first answer before 2022-02-01T12:00:00Z opens a free entry point if it is delivered from 2022-02-01 (notification pricing, in force until then, has none)",
    );
  });

  it('a late delivery and a read without a delivered report: the words say where the message was placed', async () => {
    const sentLate: CoreEvent[] = [
      ...send(at('2024-03-02T12:00:00Z'), 'early', 'marketing'),
      ...send(at('2024-03-01T00:00:00Z'), 'late', 'marketing', {}, 'pending'),
      { kind: 'status', atMs: at('2024-03-03T00:00:00Z'), id: 'late', status: 'delivered' },
      ...send(at('2024-03-05T00:00:00Z'), 'read', 'utility', {}, 'read'),
      {
        kind: 'outbound',
        atMs: at('2024-03-05T02:00:00Z'),
        id: 'readLate',
        waba: 'W1',
        business: 'PN1',
        user: INDIA,
        template: 'authentication',
      },
      { kind: 'status', atMs: at('2024-03-05T06:00:00Z'), id: 'readLate', status: 'read' },
    ];
    const reasons = await reasonsOf(sentLate);
    expect(reasons.get('early')).toBe(
      'marketing template early with no marketing conversation open: a marketing conversation opens until 2024-03-03T12:00:01Z',
    );
    expect(reasons.get('late')).toBe(
      'marketing template late (sent 2024-03-01T00:00:00Z, rated at its delivery) inside open marketing conversation u_early: no charge',
    );
    expect(reasons.get('read')).toBe(
      'utility template read (no delivered report: rated at its read receipt) with no utility conversation open: a utility conversation opens until 2024-03-06T00:00:01Z',
    );
    expect(reasons.get('readLate')).toBe(
      'authentication template readLate (sent 2024-03-05T02:00:00Z, no delivered report: rated at its read receipt) with no authentication conversation open: an authentication conversation opens until 2024-03-06T06:00:00Z',
    );
  });

  it('a marketing template after 2025-07-01 inside a marketing conversation opened before: the words say why it is charged', async () => {
    const reasons = await reasonsOf([
      logged('2025-06-30T17:00:00Z', 'u0', 'utility'),
      logged('2025-06-30T17:30:00Z', 'm0', 'marketing'),
      logged('2025-07-01T10:00:00Z', 'u1', 'utility'),
      logged('2025-07-01T10:10:00Z', 'm1', 'marketing'),
      logged('2025-07-01T18:00:00Z', 'm2', 'marketing'),
    ]);
    expect(reasons.get('u1')).toBe(
      'utility template u1 inside utility conversation u_u0 opened before per-message pricing: free',
    );
    expect(reasons.get('m1')).toBe(
      'marketing template m1: charged per delivered message (open marketing conversation u_m0, opened before per-message pricing, does not cover it: only utility conversations carry over)',
    );
    expect(reasons.get('m2')).toBe('marketing template m2: charged per delivered message');
  });

  it('--as-of-rules NBP over 2024 traffic: the words name the what-if, not the dates before 2022-02-01', async () => {
    const reasons = await reasonsOf(
      [
        inbound(at('2024-03-01T00:00:00Z'), 'i1', {}, true),
        logged('2024-03-01T01:00:00Z', 'm1', 'marketing'),
        logged('2024-03-01T02:00:00Z', 'm2', null),
      ],
      { asOfRules: 'NBP' },
    );
    for (const reason of reasons.values()) expect(reason).not.toContain('before 2022-02-01');
    expect(reasons.get('i1')).toBe(
      'user wrote: customer service window open until 2024-03-02T00:00:00Z; came through an ad / Page CTA, but notification pricing (in the what-if applying NBP rules to every date) has no free entry point',
    );
    expect(reasons.get('m1')).toBe(
      'marketing template m1: charged per delivered template (notification pricing, in the what-if applying NBP rules to every date)',
    );
    expect(reasons.get('m2')).toBe(
      'non-template message m2: free reply (notification pricing, in the what-if applying NBP rules to every date)',
    );
  });

  it('--as-of-rules: other dated words name the what-if too', async () => {
    const service = await reasonsOf([logged('2023-08-01T10:00:00Z', 's1', null)], {
      asOfRules: 'CBP-2024-11',
    });
    expect(service.get('s1')).toBe(
      'non-template message s1 with no conversation open: a service conversation opens until 2023-08-02T10:00:00Z (free: every service conversation is free in the what-if applying CBP-2024-11 rules to every date)',
    );
    const reported = await reasonsOf(
      [inbound(at('2025-08-01T09:00:00Z'), 'i1'), logged('2025-08-01T10:00:00Z', 'u1', 'utility')],
      { asOfRules: 'PMP-2026-10' },
    );
    expect(reported.get('u1')).toBe(
      'utility template u1 inside the customer service window: charged in the what-if applying PMP-2026-10 rules to every date (reported rule)',
    );
  });

  it('CBP: an ad click while a free entry point lasts past its 24 h to answer is not said to open one', async () => {
    const reasons = await reasonsOf([
      inbound(at('2024-03-01T00:00:00Z'), 'i1', {}, true),
      logged('2024-03-01T01:00:00Z', 'm1', null), // free entry point until 2024-03-04T01:00Z
      inbound(at('2024-03-02T00:00:00Z'), 'i2', {}, true), // to answer before 2024-03-03T00:00Z
    ]);
    expect(reasons.get('i2')).toBe(
      'user wrote: customer service window open until 2024-03-03T00:00:00Z; came through an ad / Page CTA while free entry point u_m1 is open (until 2024-03-04T01:00:00Z), past the 24 h to answer: an answer rides on it and no new free entry point opens',
    );
  });

  it('CBP: an ad click while a free entry point ends within its 24 h to answer says both outcomes', async () => {
    const reasons = await reasonsOf([
      inbound(at('2024-03-01T00:00:00Z'), 'i1', {}, true),
      logged('2024-03-01T01:00:00Z', 'm1', null), // free entry point until 2024-03-04T01:00Z
      inbound(at('2024-03-03T12:00:00Z'), 'i2', {}, true), // to answer before 2024-03-04T12:00Z
    ]);
    expect(reasons.get('i2')).toBe(
      "user wrote: customer service window open until 2024-03-04T12:00:00Z; came through an ad / Page CTA while free entry point u_m1 is open (until 2024-03-04T01:00:00Z): the business's first answer before 2024-03-04T12:00:00Z rides on it if delivered while it is open, else opens a new free entry point",
    );
  });

  it("CBP: an ad click whose 24 h to answer cross 2025-07-01 names the switch in the WABA's time zone", async () => {
    const reasons = await reasonsOf([
      inbound(at('2025-06-28T12:00:00Z'), 'i1', {}, true),
      logged('2025-06-28T12:00:00Z', 'm1', null), // free entry point until 2025-07-01T12:00Z
      inbound(at('2025-06-30T10:00:00Z'), 'i2', {}, true), // to answer before 2025-07-01T10:00Z
    ]);
    expect(reasons.get('i2')).toBe(
      "user wrote: customer service window open until 2025-07-01T10:00:00Z; came through an ad / Page CTA while free entry point u_m1 is open (until 2025-07-01T12:00:00Z): the business's first answer before 2025-07-01T10:00:00Z rides on it if delivered while it is open and before 2025-07-01 in UTC, else opens a new free entry point",
    );
  });

  it('PMP: an ad click while a window is open says the answer opens a new one; the answer says what it replaces', async () => {
    const reasons = await reasonsOf(SECOND_AD_CLICK);
    expect(reasons.get('i2')).toBe(
      "user wrote: customer service window open until 2025-10-13T12:00:00Z; came through an ad / Page CTA, so the business's first answer before 2025-10-13T12:00:00Z opens a new free entry point, replacing free entry point u_m1 (open until 2025-10-13T01:00:00Z) if that is still open",
    );
    expect(reasons.get('m2')).toBe(
      "non-template message m2 is the first answer within 24 h to the user's ad / Page CTA message of 2025-10-12T12:00:00Z: free entry point opens until 2025-10-15T13:00:00Z, everything in it free; it replaces free entry point u_m1, open until 2025-10-13T01:00:00Z",
    );
    expect(reasons.get('m3')).toBe(
      'marketing template m3 inside the free entry point window (until 2025-10-15T13:00:00Z): free',
    );
  });
});

describe('the first answer to an ad click, delivered too late for a free entry point, says so', () => {
  it('PMP and CBP: at t + 24 h the answer is charged as any message, and its words name the click it missed', async () => {
    const late = " (the first answer to the user's ad / Page CTA message of";
    const pmp = await reasonsOf([
      inbound(at('2025-10-10T10:00:00Z'), 'i1', {}, true),
      logged('2025-10-11T10:00:00Z', 'm1', 'marketing'), // t + 24 h: outside the 24 h to answer
      logged('2025-10-11T12:00:00Z', 'm2', 'marketing'), // not the first answer: no such words
    ]);
    expect(pmp.get('m1')).toBe(
      "marketing template m1 (the first answer to the user's ad / Page CTA message of 2025-10-10T10:00:00Z, delivered 24 h or more after it: too late to open a free entry point): charged per delivered message",
    );
    expect(pmp.get('m2')).toBe('marketing template m2: charged per delivered message');
    const cbp = await reasonsOf([
      inbound(at('2024-03-10T10:00:00Z'), 'i1', {}, true),
      logged('2024-03-11T10:00:00Z', 'm1', 'marketing'),
    ]);
    expect(cbp.get('m1')).toBe(
      "marketing template m1 (the first answer to the user's ad / Page CTA message of 2024-03-10T10:00:00Z, delivered 24 h or more after it: too late to open a free entry point) with no marketing conversation open: a marketing conversation opens until 2024-03-12T10:00:00Z",
    );
    // In time (the last millisecond), the answer opens the free entry point and says that instead.
    const inTime = await reasonsOf([
      inbound(at('2025-10-10T10:00:00Z'), 'i1', {}, true),
      logged('2025-10-11T09:59:59.999Z', 'm1', 'marketing'),
    ]);
    expect(inTime.get('m1')).not.toContain(late);
    expect(inTime.get('m1')).toContain('is the first answer within 24 h');
    // No ad click, no such words.
    const plain = await reasonsOf([
      inbound(at('2025-10-10T10:00:00Z'), 'i1'),
      logged('2025-10-11T10:00:00Z', 'm1', 'marketing'),
    ]);
    expect(plain.get('m1')).toBe('marketing template m1: charged per delivered message');
  });
});

describe('the reference rater (test/reference-rater.ts) agrees on these corners', () => {
  // The generated traffic of test/rating-properties.test.ts rarely has two ad clicks of one pair within 72 h.
  const comparable = (u: BillableUnit | ReferenceUnit) => ({
    id: u.id,
    unit: u.unit,
    era: u.era,
    category: u.category,
    type: u.type,
    openedAtMs: u.openedAtMs,
    expiresAtMs: u.expiresAtMs,
    closedAtMs: u.closedAtMs,
    messages: u.messages,
    rateMicros: u.rateMicros,
    amountMicros: u.amountMicros,
    rateCard: u.rateCard,
  });
  const corners: Record<string, CoreEvent[]> = {
    'PMP, second ad click': [...SECOND_AD_CLICK, logged('2025-10-15T13:00:00Z', 'm5', 'marketing')],
    'CBP free entry point carried into PMP': [
      inbound(at('2025-06-30T20:00:00Z'), 'i1', {}, true),
      logged('2025-06-30T21:00:00Z', 'm1', 'marketing'),
      inbound(at('2025-07-02T10:00:00Z'), 'i2', {}, true),
      logged('2025-07-02T11:00:00Z', 'm2', null),
      logged('2025-07-04T10:00:00Z', 'm3', 'marketing'),
    ],
    'CBP, second ad click': [
      inbound(at('2024-03-01T00:00:00Z'), 'i1', {}, true),
      logged('2024-03-01T01:00:00Z', 'm1', null),
      inbound(at('2024-03-03T12:00:00Z'), 'i2', {}, true),
      logged('2024-03-03T13:00:00Z', 'm2', null),
      logged('2024-03-04T08:00:00Z', 'm3', 'marketing'),
    ],
    'CBP-2022 non-template, no window': [
      logged('2022-05-10T10:00:00Z', 'm1', null),
      logged('2022-05-12T10:00:00Z', 't1', 'utility'),
    ],
  };
  for (const [name, events] of Object.entries(corners)) {
    it(name, async () => {
      const pricing = await loadPricing();
      const book = createRateBook(pricing.cards);
      if (!book.ok) throw new Error(book.error.message);
      const reference = rateByReference(events, {
        accountFor: defaultAccount,
        rateBook: book.value,
        markets: pricing.markets,
      });
      const engine = await rate(events);
      expect(engine.units.map(comparable)).toEqual(reference.units.map(comparable));
    });
  }
});

describe('words a money review found incomplete', () => {
  it('"an authentication conversation" (CBP-2023), and an international rate says why it applied', async () => {
    const reasons = await reasonsOf([logged('2024-03-01T10:00:00Z', 'a1', 'authentication')]);
    expect(reasons.get('a1')).toBe(
      'authentication template a1 with no authentication conversation open: an authentication conversation opens until 2024-03-02T10:00:00Z',
    );
    const unit: BillableUnit = {
      id: 'u_a2',
      unit: 'message',
      pricingModel: 'PMP',
      era: 'PMP-2025',
      waba: 'W1',
      business: 'PN1',
      user: INDIA,
      country: 'IN',
      market: 'India',
      category: 'authentication_international',
      type: 'regular',
      openedAtMs: at('2025-10-01T10:00:00Z'),
      expiresAtMs: null,
      messages: ['a2'],
      rateMicros: 28_000,
      amountMicros: 28_000,
      currency: 'USD',
      rateCard: 'usd-2025-10-01',
      rule: 'PMP_CHARGED',
    };
    expect(costInWords(unit)).toBe(
      'charged 0.028 USD (authentication_international — the rate for a business located outside IN, eligible and past its start time there, India, rate card usd-2025-10-01)',
    );
    expect(costInWords({ ...unit, category: 'authentication' })).toBe(
      'charged 0.028 USD (authentication, India, rate card usd-2025-10-01)',
    );
  });

  it('ACCOUNT_NOT_LISTED: a WABA of the traffic the accounts file does not list is said, once', async () => {
    const of = (waba: string, id: string, iso: string): CoreEvent => ({
      ...logged(iso, id, 'marketing'),
      waba,
    });
    const traffic = [
      of('W1', 'm1', '2025-10-01T10:00:00Z'),
      of('W2', 'm2', '2025-10-01T11:00:00Z'),
      of('W2', 'm3', '2025-10-02T11:00:00Z'),
    ];
    const notListed = async (listedWabas?: ReadonlySet<string>) =>
      (await rate(traffic, listedWabas ? { listedWabas } : {})).findings.filter(
        (finding) => finding.code === 'ACCOUNT_NOT_LISTED',
      );
    expect(await notListed(new Set(['W1']))).toEqual([
      expect.objectContaining({
        code: 'ACCOUNT_NOT_LISTED',
        waba: 'W2',
        message: expect.stringMatching(
          /^WABA W2 is not in the accounts file: it is rated with the defaults \(time zone UTC, currency USD, a portfolio of its own\)/,
        ),
      }),
    ]);
    // A stream forgets W2's quiet pair between its sends, 10 days apart, and makes it again: still said once.
    const dayOf = (day: number, hour: number) =>
      new Date(at('2025-10-01T00:00:00Z') + day * 86_400_000 + hour * 3_600_000).toISOString();
    const sparse = [
      ...[0, 10, 20].map((day) => of('W2', `q${day}`, dayOf(day, 10))),
      // W1 (listed) every day: the stream flushes and sweeps as time goes by.
      ...Array.from({ length: 22 }, (_, day) => of('W1', `d${day}`, dayOf(day, 12))),
    ].sort((a, b) => a.atMs - b.atMs);
    for (const options of [{}, { maxLatenessMs: 3_600_000, flushEveryEvents: 1 }]) {
      const findings = (await rate(sparse, { listedWabas: new Set(['W1']), ...options })).findings;
      expect(findings.filter((f) => f.code === 'ACCOUNT_NOT_LISTED').map((f) => [f.waba, f.count])).toEqual([
        ['W2', 1],
      ]);
    }
    // No accounts file (nothing listed: every WABA on the defaults, as the quick start), or every WABA listed.
    expect(await notListed()).toEqual([]);
    expect(await notListed(new Set())).toEqual([]);
    expect(await notListed(new Set(['W1', 'W2']))).toEqual([]);
  });

  it("a conversation charged past the month's free allowance says so (1,000 free, all used: this is the 1,001st)", async () => {
    // CBP-2023: 1,000 free service conversations per WABA and month; 1,001 users answered in August 2023.
    const events: CoreEvent[] = [];
    for (let i = 0; i < 1001; i++) {
      const user = `9198765${String(i).padStart(5, '0')}`;
      const atMs = at('2023-08-01T10:00:00Z') + i * 60_000;
      events.push(inbound(atMs, `in${i}`, { waba: 'W1', business: 'PN1', user }));
      events.push({ ...logged(new Date(atMs + 1000).toISOString(), `s${i}`, null), user } as CoreEvent);
    }
    const { units } = await rate(events);
    const byType = units.map((unit) => unit.type);
    expect(byType.filter((type) => type === 'free_tier')).toHaveLength(1000);
    const charged = units.filter((unit) => unit.type === 'regular');
    expect(charged.map((unit) => unit.messages)).toEqual([['s1000']]);
    expect(charged[0]!.rule).toBe('CBP_OPEN_SERVICE+ALLOWANCE_USED(1001/1000)');
    expect(costInWords(charged[0]!)).toBe(
      "charged 0.004 USD, past the month's free allowance (1,000 free service conversations of WABA W1, all used: this is the 1,001st) (service, India, rate card usd-2023-06-01-partial)",
    );
  });

  it('a non-template sent inside the customer service window and delivered after it closed is no NO_WINDOW_IN_INPUT', async () => {
    // §1: a non-template is *sendable* inside an open window; §3.4: a pending message opens its conversation when
    // it is delivered, up to 30 days later. The user's message is in the input: nothing is missing from it.
    const late: CoreEvent = {
      kind: 'outbound',
      atMs: at('2023-06-30T10:01:00Z'),
      id: 'late',
      waba: 'W1',
      business: 'PN1',
      user: INDIA,
      template: null,
      deliveredAtMs: at('2023-07-01T17:00:00Z'),
    };
    const result = await rate([inbound(at('2023-06-30T10:00:00Z'), 'in'), late]);
    expect(brief(result.units)).toEqual([
      {
        messages: ['late'],
        category: 'service',
        type: 'free_tier',
        rule: 'CBP_OPEN_SERVICE+FREE_TIER(1/1000)',
        amount: 0,
      },
    ]);
    expect(result.findings.map((f) => f.code)).not.toContain('NO_WINDOW_IN_INPUT');
    // Sent after the window closed (or with no user message at all), it is still said.
    const sentLate = { ...late, atMs: at('2023-07-01T10:01:00Z') };
    for (const events of [[inbound(at('2023-06-30T10:00:00Z'), 'in'), sentLate], [late]]) {
      expect((await rate(events)).findings.map((f) => f.code)).toContain('NO_WINDOW_IN_INPUT');
    }
    // The user wrote again between the send and the delivery: the window the send was in is the earlier one.
    const wroteAgain = await rate([
      inbound(at('2023-06-30T10:00:00Z'), 'in'),
      inbound(at('2023-06-30T12:00:00Z'), 'in2'),
      { ...late, deliveredAtMs: at('2023-07-02T17:00:00Z') },
    ]);
    expect(wroteAgain.findings.map((f) => f.code)).not.toContain('NO_WINDOW_IN_INPUT');
  });

  it('the monthly free conversations: per WABA over its numbers, by delivery in its time zone, FEP not counted', async () => {
    // CBP-2023 (§3.3): 1,000 free service conversations per WABA and month (WABA time zone), across all its
    // numbers; marketing and utility never free. CBP-2022 (§4): 1,000 of either kind, free entry points not
    // counted. A conversation opens at its delivery (§3.4), so a late delivery counts in the month it lands in.
    const kolkata = { ...defaultAccount('W1'), timeZone: 'Asia/Kolkata' };
    const conversations = (era: 'CBP-2022' | 'CBP-2023', fromIso: string): CoreEvent[] => {
      const events: CoreEvent[] = [];
      for (let i = 0; i < 999; i++) {
        const user = `9198765${String(i).padStart(5, '0')}`;
        const atMs = at(fromIso) + i * 60_000;
        const party = { business: i % 2 === 0 ? 'PN1' : 'PN2', user };
        const template: TemplateCategory | null = era === 'CBP-2022' && i % 2 === 0 ? 'marketing' : null;
        if (template === null) events.push(inbound(atMs - 30_000, `in${i}`, party));
        events.push({ ...logged(new Date(atMs).toISOString(), `s${i}`, template), ...party } as CoreEvent);
      }
      return events;
    };
    const ad = (iso: string, template: TemplateCategory | null): CoreEvent[] => [
      inbound(at(iso), 'ad', { user: '919811111111' }, true),
      {
        ...logged(new Date(at(iso) + 60_000).toISOString(), 'fep', template),
        user: '919811111111',
      } as CoreEvent,
    ];
    // Sent at 23:50 on the last day (Kolkata), delivered at 00:10 on the first: the new month's.
    const late = (sentIso: string, deliveredIso: string, template: TemplateCategory | null): CoreEvent =>
      ({
        ...logged(sentIso, 'late', template),
        user: '919822222222',
        business: 'PN2',
        deliveredAtMs: at(deliveredIso),
      }) as CoreEvent;
    const cases = [
      {
        era: 'CBP-2023' as const,
        events: [
          ...conversations('CBP-2023', '2023-07-01T00:00:00Z'),
          ...ad('2023-07-01T17:00:00Z', null),
          { ...logged('2023-07-01T17:10:00Z', 'mkt', 'marketing'), user: '919833333333' } as CoreEvent,
          inbound(at('2023-06-30T18:19:00Z'), 'in-late', { user: '919822222222', business: 'PN2' }),
          late('2023-06-30T18:20:00Z', '2023-06-30T18:40:00Z', null),
          inbound(at('2023-07-01T17:20:00Z'), 'in-last', { user: '919844444444' }),
          { ...logged('2023-07-01T17:21:00Z', 'last', null), user: '919844444444' } as CoreEvent,
        ],
      },
      {
        era: 'CBP-2022' as const,
        events: [
          ...conversations('CBP-2022', '2022-07-01T00:00:00Z'),
          ...ad('2022-07-01T17:00:00Z', 'marketing'),
          late('2022-06-30T18:20:00Z', '2022-06-30T18:40:00Z', 'utility'),
          { ...logged('2022-07-01T17:21:00Z', 'last', 'utility'), user: '919844444444' } as CoreEvent,
        ],
      },
    ];
    for (const { era, events } of cases) {
      const { units } = await rate(events, { accounts: [kolkata] });
      const typeOf = (id: string) => units.find((unit) => unit.messages[0] === id)?.type;
      expect(units.every((unit) => unit.era === era)).toBe(true);
      expect(typeOf('late')).toBe('free_tier');
      expect(typeOf('fep')).toBe('free_entry_point');
      expect(units.filter((unit) => unit.type === 'free_tier')).toHaveLength(1000);
      expect(typeOf('s998')).toBe('free_tier'); // the 1,000th: the late one, then 999
      expect(typeOf('last')).toBe('regular'); // the 1,001st
      if (era === 'CBP-2023') expect(typeOf('mkt')).toBe('regular');
    }
  });

  it('a card from before 2022-02-01 lists rates per message: an NBP charge priced from it says nothing', async () => {
    // Notification pricing (pricing-rules §2) charged per delivered template, so its cards list rates per
    // message; a conversation (a what-if of CBP over that traffic) priced from one is what is of the other kind.
    const card = parseRateCardCsv(
      [
        'Cost per message in USD, effective January 1, 2021',
        '',
        'Market,Currency,Marketing,Utility,Authentication,Service',
        'India,$US,0.0050,0.0030,0.0020,0.0000',
      ].join('\n'),
      'usd-2021-01-01.csv',
    );
    if (!card.ok) throw new Error(card.error.message);
    const events = send(at('2021-06-01T10:00:00Z'), 'n1', 'marketing');
    const nbp = await rate(events, { cards: [card.value] });
    expect(nbp.units.map((u) => [u.unit, u.era, u.amountMicros, u.rateCard])).toEqual([
      ['message', 'NBP', 5000, 'usd-2021-01-01'],
    ]);
    expect(nbp.findings).toEqual([]);
    const whatIf = await rate(events, { cards: [card.value], asOfRules: 'CBP-2023' });
    expect(whatIf.findings).toEqual([
      expect.objectContaining({
        code: 'RATE_CARD_OF_OTHER_MODEL',
        rate_card: 'usd-2021-01-01',
        message: expect.stringContaining('which lists rates per delivered message'),
      }),
    ]);
  });

  it('STATUS_WITHOUT_USER says which of the user and the business number the statuses left out', async () => {
    const status = (id: string, names: { user?: string; business?: string }): CoreEvent => ({
      kind: 'status',
      atMs: at('2025-10-01T10:00:00Z'),
      id,
      status: 'delivered',
      waba: 'W1',
      ...names,
    });
    const wordsOf = async (event: CoreEvent) =>
      (await rate([event])).findings.find((f) => f.code === 'STATUS_WITHOUT_USER')?.message;
    await expect(wordsOf(status('s1', { user: INDIA }))).resolves.toBe(
      "delivered message s1 has no outbound line and its statuses name no business number: feed the send log or Meta's full webhook",
    );
    await expect(wordsOf(status('s2', {}))).resolves.toBe(
      "delivered message s2 has no outbound line and its statuses name neither the user nor the business number: feed the send log or Meta's full webhook",
    );
  });
});

describe('the rate a free entry point "would have cost" (contract §4) for an authentication template', () => {
  // A business located in Indonesia, eligible for authentication-international rates since 2024-01-01,
  // answers an Indian user's ad click with an authentication template: free, but outside the window the same
  // template is charged at the international rate (§3.5, §5.4: India 0.0280 USD on usd-2024-11-01 and
  // usd-2025-10-01), so that is the rate the free unit would have cost, not the domestic 0.0014.
  const abroad = {
    waba: 'W1',
    timeZone: 'UTC',
    currency: 'USD',
    portfolio: 'W1',
    primaryCountry: 'ID',
    authInternational: { startMs: at('2024-01-01T00:00:00Z'), exceptionsMs: {} },
  };
  const events: CoreEvent[] = [
    inbound(at('2024-11-10T10:00:00Z'), 'i1', {}, true),
    logged('2024-11-10T10:05:00Z', 'c1', 'authentication'), // CBP-2024-11: a free entry point conversation
    inbound(at('2025-10-10T10:00:00Z'), 'i2', {}, true),
    logged('2025-10-10T10:05:00Z', 'p1', 'authentication'), // PMP-2025: opens the free window
    logged('2025-10-10T11:05:00Z', 'p2', 'authentication'), // inside it
    logged('2025-10-14T11:05:00Z', 'p3', 'authentication'), // after it: charged
  ];
  const shown = (units: readonly BillableUnit[]) =>
    units.map((u) => [u.messages.join('+'), u.category, u.type, u.rateMicros, u.amountMicros]);

  it('is the authentication-international rate where §5.4 applies, in CBP and PMP alike', async () => {
    const result = await rate(events, { accounts: [abroad] });
    expect(shown(result.units)).toEqual([
      ['c1', 'referral_conversion', 'free_entry_point', 28_000, 0],
      ['p1', 'referral_conversion', 'free_entry_point', 28_000, 0],
      ['p2', 'referral_conversion', 'free_entry_point', 28_000, 0],
      ['p3', 'authentication_international', 'regular', 28_000, 28_000],
    ]);
  });

  it('stays the domestic rate at home, before the start time, or where the location is unknown (no finding)', async () => {
    const home = await rate(events, { accounts: [{ ...abroad, primaryCountry: 'IN' }] });
    const notYet = await rate(events, {
      accounts: [{ ...abroad, authInternational: { startMs: at('2026-01-01T00:00:00Z'), exceptionsMs: {} } }],
    });
    for (const result of [home, notYet]) {
      expect(shown(result.units).map((u) => u[3])).toEqual([1_400, 1_400, 1_400, 1_400]);
    }
    const { primaryCountry: _home, ...unlocated } = abroad;
    const unknown = await rate(events.slice(0, 5), { accounts: [unlocated] });
    expect(shown(unknown.units).map((u) => u[3])).toEqual([1_400, 1_400, 1_400]);
    // Only free units: nothing was priced at the domestic rate for want of the location.
    expect(unknown.findings.map((f) => f.code)).not.toContain('AUTH_INTERNATIONAL_NO_LOCATION');
  });

  it('the reference rater agrees', async () => {
    const pricing = await loadPricing();
    const book = createRateBook(pricing.cards);
    if (!book.ok) throw new Error(book.error.message);
    const reference = rateByReference(events, {
      accountFor: (waba) => (waba === 'W1' ? abroad : defaultAccount(waba)),
      rateBook: book.value,
      markets: pricing.markets,
    });
    const engine = await rate(events, { accounts: [abroad] });
    expect(engine.units.map((u) => [u.id, u.category, u.type, u.rateMicros, u.amountMicros])).toEqual(
      reference.units.map((u) => [u.id, u.category, u.type, u.rateMicros, u.amountMicros]),
    );
  });
});

// Thirty-ninth session (spec-oracle review): corners of pricing-rules.md no test held, each bill computed by
// hand from the spec alone (the reasoning: one comment per line), then run. Cards are the bundled ones: India
// marketing/utility/authentication 0.0107/0.0014/0.0014 USD on usd-2024-11-01 and usd-2025-10-01, 0.0099/0.0042
// on usd-2023-06-01-partial, business-/user-initiated 0.0066/0.0040 on usd-2022-02-01-partial.
describe('corners computed by hand from the spec (spec-oracle review, thirty-ninth session)', () => {
  const utcIn = (timeZone: string, extra: Partial<Account> = {}): Account[] => [
    { waba: 'W1', timeZone, currency: 'USD', portfolio: 'P1', ...extra },
  ];
  const userNo = (n: number) => `91987654321${n}`;
  /** A send log line that knows its delivery (`deliveredIso`, else the send itself). */
  const out = (
    iso: string,
    id: string,
    template: TemplateCategory | null,
    party: { user?: string; business?: string } = {},
    deliveredIso = iso,
  ): CoreEvent => ({
    kind: 'outbound',
    atMs: at(iso),
    id,
    waba: 'W1',
    business: party.business ?? 'PN1',
    user: party.user ?? INDIA,
    template,
    deliveredAtMs: at(deliveredIso),
  });
  /** A send log line without its outcome, and Meta's status of it at `statusIso`. */
  const late = (
    sentIso: string,
    id: string,
    template: TemplateCategory | null,
    statusIso: string,
    user = INDIA,
    word: 'delivered' | 'read' | 'failed' = 'delivered',
  ): CoreEvent[] => [
    { kind: 'outbound', atMs: at(sentIso), id, waba: 'W1', business: 'PN1', user, template },
    { kind: 'status', atMs: at(statusIso), id, status: word },
  ];
  const shown = (units: readonly BillableUnit[]) =>
    units.map((u) => [u.messages.join('+'), u.era, u.category, u.type, u.rateMicros, u.amountMicros]);
  const total = (units: readonly BillableUnit[]) => units.reduce((sum, u) => sum + (u.amountMicros ?? 0), 0);

  it('§1, §5.1: the customer service window is [t, t + 24 h) for a utility template; a user message at the same instant opens it first', async () => {
    // The user's line comes after the business's in the input: order of lines decides nothing (contract §1).
    const result = await rate(
      [
        out('2025-10-10T10:00:00Z', 'u0', 'utility'), // same instant as the user's message: inside, free
        inbound(at('2025-10-10T10:00:00Z'), 'in'),
        out('2025-10-11T09:59:59.999Z', 'u1', 'utility'), // the window's last millisecond: free
        out('2025-10-11T10:00:00Z', 'u2', 'utility'), // t + 24 h is outside: charged 0.0014
      ],
      { accounts: utcIn('UTC') },
    );
    expect(shown(result.units)).toEqual([
      ['u0', 'PMP-2025', 'utility', 'free_customer_service', 1_400, 0],
      ['u1', 'PMP-2025', 'utility', 'free_customer_service', 1_400, 0],
      ['u2', 'PMP-2025', 'utility', 'regular', 1_400, 1_400],
    ]);
    expect(result.findings).toEqual([]);
  });

  it('§4: CBP-2022 user-initiated within 24 h of the user, business-initiated from t + 24 h; same instant is inside', async () => {
    const result = await rate(
      [
        inbound(at('2022-06-10T10:00:00Z'), 'in1', { user: userNo(1) }),
        out('2022-06-10T10:00:00Z', 'v1', 'marketing', { user: userNo(1) }), // same instant: user-initiated
        inbound(at('2022-06-11T10:00:00Z'), 'in2', { user: userNo(2) }),
        out('2022-06-12T09:59:59.999Z', 'v2', 'marketing', { user: userNo(2) }), // last ms: user-initiated
        inbound(at('2022-06-11T10:00:00Z'), 'in3', { user: userNo(3) }),
        out('2022-06-12T10:00:00Z', 'v3', 'marketing', { user: userNo(3) }), // t + 24 h: business-initiated
      ],
      { accounts: utcIn('UTC') },
    );
    // The first 1,000 conversations of June (any kind) are free; each shows the rate it would have cost.
    expect(shown(result.units)).toEqual([
      ['v1', 'CBP-2022', 'user_initiated', 'free_tier', 4_000, 0],
      ['v2', 'CBP-2022', 'user_initiated', 'free_tier', 4_000, 0],
      ['v3', 'CBP-2022', 'business_initiated', 'free_tier', 6_600, 0],
    ]);
  });

  it('§2, §3.4, §4: a late delivery across 2022-02-01 is rated under CBP-2022; delivered then failed is delivered', async () => {
    const result = await rate(
      [
        out('2022-01-31T22:00:00Z', 'c0', 'marketing', { user: userNo(0) }), // NBP: per template, no card
        ...late('2022-01-31T23:00:00Z', 'c1', 'marketing', '2022-02-01T00:30:00Z', userNo(1)), // CBP-2022
        ...late('2022-02-10T10:00:00Z', 'c2', 'utility', '2022-02-10T10:00:05Z', userNo(2)),
        { kind: 'status', atMs: at('2022-02-10T10:00:10Z'), id: 'c2', status: 'failed' },
      ],
      { accounts: utcIn('UTC') },
    );
    expect(shown(result.units)).toEqual([
      ['c0', 'NBP', 'marketing', 'regular', null, null],
      ['c1', 'CBP-2022', 'business_initiated', 'free_tier', 6_600, 0], // February's 1st of 1,000
      ['c2', 'CBP-2022', 'business_initiated', 'free_tier', 6_600, 0], // 2nd
    ]);
    expect(result.units[1]!.openedAtMs).toBe(at('2022-02-01T00:30:00Z'));
    expect(result.findings.map((f) => f.code).sort()).toEqual(['DELIVERED_AND_FAILED', 'NO_RATE_CARD']);
  });

  it('§3.4, §3.6: late deliveries and a read without delivered across 2025-07-01 (UTC)', async () => {
    const A = userNo(0);
    const B = userNo(1);
    const result = await rate(
      [
        out('2025-06-30T20:00:00Z', 'a1', 'utility', { user: A }, '2025-06-30T20:00:01Z'), // CBP: 0.0014 to 07-01T20:00:01
        ...late('2025-06-30T23:00:00Z', 'a2', 'utility', '2025-07-01T19:00:00Z', A), // PMP, rides a1: free
        ...late('2025-06-30T23:30:00Z', 'a3', 'marketing', '2025-07-01T02:00:00Z', A), // PMP: 0.0107
        ...late('2025-07-01T19:30:00Z', 'a4', 'utility', '2025-07-01T20:00:01Z', A), // a1 has ended: 0.0014
        out('2025-06-30T23:00:00Z', 'b1', 'marketing', { user: B }), // CBP marketing conversation: 0.0107
        ...late('2025-06-30T23:59:00Z', 'b2', 'marketing', '2025-07-01T00:00:30Z', B, 'read'), // PMP: 0.0107
      ],
      { accounts: utcIn('UTC') },
    );
    expect(shown(result.units)).toEqual([
      ['a1+a2', 'CBP-2024-11', 'utility', 'regular', 1_400, 1_400],
      ['b1', 'CBP-2024-11', 'marketing', 'regular', 10_700, 10_700],
      ['b2', 'PMP-2025', 'marketing', 'regular', 10_700, 10_700],
      ['a3', 'PMP-2025', 'marketing', 'regular', 10_700, 10_700],
      ['a4', 'PMP-2025', 'utility', 'regular', 1_400, 1_400],
    ]);
    expect(total(result.units)).toBe(34_900);
  });

  it('§3.6 in a zone ahead of UTC: the switch and the carried utility conversation follow Kolkata time', async () => {
    const result = await rate(
      [
        out('2025-06-30T18:00:00Z', 'a1', 'utility'), // 23:30 on June 30 in Kolkata: CBP, until 07-01T18:00Z
        out('2025-06-30T18:30:00Z', 'a2', 'utility'), // 00:00 on July 1 there: PMP, rides a1
        out('2025-07-01T17:59:59.999Z', 'a3', 'utility'), // a1's last millisecond: rides
        out('2025-07-01T18:00:00Z', 'a4', 'utility'), // a1 has ended, no window: 0.0014
        out('2025-06-30T18:29:59.999Z', 'b1', 'marketing', { user: userNo(1) }), // CBP: a conversation
        out('2025-06-30T18:30:00Z', 'b2', 'marketing', { user: userNo(1) }), // PMP: not carried, 0.0107
        out('2025-06-30T18:30:00Z', 'c1', 'utility', { user: userNo(2) }), // PMP, nothing open: 0.0014
      ],
      { accounts: utcIn('Asia/Kolkata') },
    );
    expect(shown(result.units)).toEqual([
      ['a1+a2+a3', 'CBP-2024-11', 'utility', 'regular', 1_400, 1_400],
      ['b1', 'CBP-2024-11', 'marketing', 'regular', 10_700, 10_700],
      ['b2', 'PMP-2025', 'marketing', 'regular', 10_700, 10_700],
      ['c1', 'PMP-2025', 'utility', 'regular', 1_400, 1_400],
      ['a4', 'PMP-2025', 'utility', 'regular', 1_400, 1_400],
    ]);
    expect(total(result.units)).toBe(25_600);
  });

  it('§3.2, §5.1: the answer to an ad click must come before t + 24 h (half-open), under PMP and CBP', async () => {
    const ad = (iso: string, user: string) => inbound(at(iso), `ad-${user}`, { user }, true);
    const result = await rate(
      [
        ad('2025-10-10T10:00:00Z', userNo(0)),
        out('2025-10-11T10:00:00Z', 'p1', 'marketing', { user: userNo(0) }), // t + 24 h: no answer, 0.0107
        out('2025-10-11T12:00:00Z', 'p2', 'marketing', { user: userNo(0) }), // no window: 0.0107
        ad('2025-10-10T10:00:00Z', userNo(1)),
        out('2025-10-11T09:59:59.999Z', 'q1', 'marketing', { user: userNo(1) }), // answer: 72 h window
        out('2025-10-14T09:59:59.998Z', 'q2', 'marketing', { user: userNo(1) }), // inside: free
        out('2025-10-14T09:59:59.999Z', 'q3', 'marketing', { user: userNo(1) }), // its end: 0.0107
        ad('2024-03-10T10:00:00Z', userNo(2)),
        out('2024-03-11T10:00:00Z', 'r1', 'marketing', { user: userNo(2) }), // CBP-2023: a conversation, 0.0099
        ad('2024-03-10T10:00:00Z', userNo(3)),
        out('2024-03-11T09:59:59.999Z', 's1', 'marketing', { user: userNo(3) }), // free entry point, 72 h
        out('2024-03-14T09:59:59.998Z', 's2', 'utility', { user: userNo(3) }), // rides it
        out('2024-03-14T09:59:59.999Z', 's3', 'utility', { user: userNo(3) }), // it ended: 0.0042
      ],
      { accounts: utcIn('UTC') },
    );
    expect(shown(result.units)).toEqual([
      ['s1+s2', 'CBP-2023', 'referral_conversion', 'free_entry_point', 9_900, 0],
      ['r1', 'CBP-2023', 'marketing', 'regular', 9_900, 9_900],
      ['s3', 'CBP-2023', 'utility', 'regular', 4_200, 4_200],
      ['q1', 'PMP-2025', 'referral_conversion', 'free_entry_point', 10_700, 0],
      ['p1', 'PMP-2025', 'marketing', 'regular', 10_700, 10_700],
      ['p2', 'PMP-2025', 'marketing', 'regular', 10_700, 10_700],
      ['q2', 'PMP-2025', 'referral_conversion', 'free_entry_point', 10_700, 0],
      ['q3', 'PMP-2025', 'marketing', 'regular', 10_700, 10_700],
    ]);
  });

  it('§5.4: a per-country exception earlier than the general start applies from its own instant', async () => {
    const account = utcIn('Asia/Kolkata', {
      primaryCountry: 'ID',
      authInternational: {
        startMs: at('2025-12-01T00:00:00Z'),
        exceptionsMs: { IN: at('2025-10-10T00:00:00Z') },
      },
    });
    const EGYPT = '201001234567';
    const result = await rate(
      [
        out('2025-10-09T23:59:59Z', 'x1', 'authentication'), // before India's exception: domestic 0.0014
        out('2025-10-10T00:00:00Z', 'x2', 'authentication'), // from it: international 0.0280
        out('2025-10-11T00:00:00Z', 'x3', 'authentication', { user: EGYPT }), // before the general start: 0.0036
        out('2025-12-01T00:00:00Z', 'x4', 'authentication', { user: EGYPT }), // from it: 0.0650
        out('2025-12-01T00:00:00Z', 'x5', 'authentication', { user: '6281234567890' }), // at home: 0.0250
      ],
      { accounts: account },
    );
    expect(shown(result.units).map(([id, , category, , , amount]) => [id, category, amount])).toEqual([
      ['x1', 'authentication', 1_400],
      ['x2', 'authentication_international', 28_000],
      ['x3', 'authentication', 3_600],
      ['x4', 'authentication_international', 65_000],
      ['x5', 'authentication', 25_000],
    ]);
  });

  it("§2, §7, §8: Zimbabwe's move to Rest of Africa and the card of 2025-10-01 follow the WABA's date (Auckland)", async () => {
    const ZIMBABWE = '263771234567';
    const result = await rate(
      [
        out('2025-09-30T10:59:59Z', 'z1', 'marketing', { user: ZIMBABWE }), // 23:59:59 Sept 30 (NZDT): Other
        out('2025-09-30T11:00:00Z', 'z2', 'marketing', { user: ZIMBABWE }), // 00:00 Oct 1: Rest of Africa
      ],
      { accounts: utcIn('Pacific/Auckland') },
    );
    expect(result.units.map((u) => [u.messages[0], u.market, u.rateCard, u.amountMicros])).toEqual([
      ['z1', 'Other', 'usd-2024-11-01', 60_400],
      ['z2', 'Rest of Africa', 'usd-2025-10-01', 22_500],
    ]);
  });

  it('§6 (reported): late deliveries and a read without delivered across 2026-10-01', async () => {
    const result = await rate(
      [
        inbound(at('2026-09-30T20:00:00Z'), 'in'), // window until 2026-10-01T20:00Z
        ...late('2026-09-30T23:20:00Z', 'w1', 'utility', '2026-09-30T23:20:01Z'), // PMP-2025, in window: free
        ...late('2026-09-30T23:30:00Z', 'w2', null, '2026-09-30T23:30:01Z'), // PMP-2025: free
        ...late('2026-09-30T23:00:00Z', 'w3', null, '2026-10-01T00:30:00Z'), // PMP-2026-10: 1st of 1,000 free
        ...late('2026-09-30T23:10:00Z', 'w4', 'utility', '2026-10-01T00:40:00Z', INDIA, 'read'), // charged
      ],
      { accounts: utcIn('UTC') },
    );
    expect(shown(result.units)).toEqual([
      ['w1', 'PMP-2025', 'utility', 'free_customer_service', 1_400, 0],
      ['w2', 'PMP-2025', 'service', 'free_customer_service', 0, 0],
      ['w3', 'PMP-2026-10', 'service', 'free_tier', 1_400, 0],
      ['w4', 'PMP-2026-10', 'utility', 'regular', 1_400, 1_400],
    ]);
  });

  it('§6 (reported): 1,000 free service messages per business number and Kolkata month; the rest at the list utility rate, never tiered', async () => {
    // Bands on usd-2025-10-01 for India utility: 1–3 at 0.0014 (the list rate), from 4 at 0.0010.
    const pricing = await loadPricing();
    const tiers = parseVolumeTierCsv(
      'Volume tiers in USD, effective October 1, 2025\nMarket,Currency,Category,From,To,Rate\n' +
        'India,$US,Utility,1,3,0.0014\nIndia,$US,Utility,4,,0.0010\n',
      'usd-2025-10-01-tiers.csv',
    );
    if (!tiers.ok) throw new Error(tiers.error.message);
    const cards = attachVolumeTiers(pricing.cards, tiers.value);
    if (!cards.ok) throw new Error(cards.error.message);
    const events: CoreEvent[] = [
      inbound(at('2026-10-31T00:00:00Z'), 'in1'), // window until 2026-11-01T00:00Z (05:30 IST)
      inbound(at('2026-10-31T00:00:00Z'), 'in2', { business: 'PN2' }),
    ];
    for (let i = 1; i <= 1000; i++) {
      events.push(out(new Date(at('2026-10-31T01:00:00Z') + i * 1000).toISOString(), `n${i}`, null));
    }
    events.push(
      out('2026-10-31T02:00:00Z', 'u1', 'utility'), // in the window: charged, utility count 1
      out('2026-10-31T03:00:00Z', 'u2', 'utility'), // count 2
      out('2026-10-31T04:00:00Z', 'n1001', null), // allowance used: list utility rate, no tier, no count
      out('2026-10-31T05:00:00Z', 'u3', 'utility'), // count 3: still 0.0014
      out('2026-10-31T06:00:00Z', 'u4', 'utility'), // count 4: 0.0010
      out('2026-10-31T12:00:00Z', 'p1', null, { business: 'PN2' }), // PN2's own allowance: free
      out('2026-10-31T18:29:59.999Z', 'n1002', null), // 23:59:59.999 on Oct 31 in Kolkata: charged
      out('2026-10-31T18:30:00Z', 'n1003', null), // 00:00 on Nov 1 there: November's 1st, free
      out('2026-10-31T18:30:00.001Z', 'u5', 'utility'), // still in the window: November count 1, 0.0014
    );
    const accounts = utcIn('Asia/Kolkata');
    const result = await rate(events, { accounts, cards: cards.value });
    const charged = result.units.filter((u) => u.type === 'regular');
    expect(
      charged.map((u) => [u.messages[0], u.category, u.amountMicros, u.tier?.month, u.tier?.count]),
    ).toEqual([
      ['u1', 'utility', 1_400, '2026-10', 1],
      ['u2', 'utility', 1_400, '2026-10', 2],
      ['n1001', 'service', 1_400, undefined, undefined],
      ['u3', 'utility', 1_400, '2026-10', 3],
      ['u4', 'utility', 1_000, '2026-10', 4],
      ['n1002', 'service', 1_400, undefined, undefined],
      ['u5', 'utility', 1_400, '2026-11', 1],
    ]);
    const free = result.units.filter((u) => u.type !== 'regular');
    expect(free).toHaveLength(1002);
    expect(free.every((u) => u.type === 'free_tier' && u.rateMicros === 1_400)).toBe(true);
    const ruleOf = (id: string) => result.units.find((u) => u.messages[0] === id)!.rule;
    expect([ruleOf('n1000'), ruleOf('n1001'), ruleOf('p1'), ruleOf('n1003')]).toEqual([
      'PMP2026_SERVICE+FREE_TIER(1000/1000)',
      'PMP2026_SERVICE+ALLOWANCE_USED(1001/1000)',
      'PMP2026_SERVICE+FREE_TIER(1/1000)',
      'PMP2026_SERVICE+FREE_TIER(1/1000)',
    ]);
    expect(total(result.units)).toBe(9_400);
    // Without the reported rules every one of these is free (PMP-2025: non-templates and in-window utility).
    const official = await rate(events, { accounts, cards: cards.value, isReportedRulesEnabled: false });
    expect(total(official.units)).toBe(0);
  });

  it('§2, §3.3: the 1,001st service conversation at the last millisecond of October in São Paulo is charged; at 00:00 on November 1 there it is free', async () => {
    // 1,000 service conversations over two numbers on October 31 in São Paulo (UTC−3), each in a window.
    const events: CoreEvent[] = [];
    for (let i = 0; i < 1000; i++) {
      const iso = new Date(at('2024-10-31T03:00:00Z') + i * 60_000).toISOString();
      const party = { user: `9198765${String(i).padStart(5, '0')}`, business: i % 2 === 0 ? 'PN1' : 'PN2' };
      events.push(inbound(at(iso), `in${i}`, party), out(iso, `s${i}`, null, party));
    }
    events.push(
      inbound(at('2024-11-01T02:00:00Z'), 'in-a', { user: userNo(1), business: 'PN2' }),
      // 23:59:59.999 on October 31 there: CBP-2023, the month's 1,001st, service 0.0040 on usd-2023-06-01
      out('2024-11-01T02:59:59.999Z', 'last', null, { user: userNo(1), business: 'PN2' }),
      inbound(at('2024-11-01T02:00:00Z'), 'in-b', { user: userNo(2) }),
      // 00:00 on November 1 there: CBP-2024-11, every service conversation free
      out('2024-11-01T03:00:00Z', 'nov', null, { user: userNo(2) }),
    );
    const result = await rate(events, { accounts: utcIn('America/Sao_Paulo') });
    expect(result.units.filter((u) => u.type === 'free_tier')).toHaveLength(1000);
    expect(shown(result.units.slice(1000))).toEqual([
      ['last', 'CBP-2023', 'service', 'regular', 4_000, 4_000],
      ['nov', 'CBP-2024-11', 'service', 'free_customer_service', 0, 0],
    ]);
    expect(total(result.units)).toBe(4_000);
  });

  it('the reference rater agrees on these corners', async () => {
    // (Spot check of the rater written from the spec alone: the Kolkata switch and the ad click's deadline.)
    const pricing = await loadPricing();
    const book = createRateBook(pricing.cards);
    if (!book.ok) throw new Error(book.error.message);
    const accounts = utcIn('Asia/Kolkata');
    const events = [
      out('2025-06-30T18:00:00Z', 'a1', 'utility'),
      out('2025-06-30T18:30:00Z', 'a2', 'utility'),
      out('2025-07-01T18:00:00Z', 'a4', 'utility'),
      out('2025-06-30T18:29:59.999Z', 'b1', 'marketing', { user: userNo(1) }),
      out('2025-06-30T18:30:00Z', 'b2', 'marketing', { user: userNo(1) }),
      inbound(at('2025-10-10T04:30:00Z'), 'ad', { user: userNo(2) }, true),
      out('2025-10-11T04:30:00Z', 'p1', 'marketing', { user: userNo(2) }),
    ];
    const reference = rateByReference(events, {
      accountFor: (waba) => accounts.find((a) => a.waba === waba) ?? defaultAccount(waba),
      rateBook: book.value,
      markets: pricing.markets,
    });
    const engine = await rate(events, { accounts });
    expect(engine.units.map((u) => [u.id, u.era, u.category, u.type, u.amountMicros])).toEqual(
      reference.units.map((u) => [u.id, u.era, u.category, u.type, u.amountMicros]),
    );
  });
});
