// META_DISAGREES: where Meta's status webhook puts a delivered message under another category than the one
// wameter rated it under, wameter keeps its own verdict (pricing-rules §9) and says so — one finding per
// WABA × (wameter's category, Meta's category), counted, naming the earliest message, in any order of the
// lines, in a batch and in a stream. It is a warning: it changes no exit code.

import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { at, byTime, hours, inbound, rate, send, shuffled } from '../../test/support/engine.js';
import { EXIT } from '../cli/exit-codes.js';
import type { Account, CoreEvent, MetaPricingEvidence, StatusEvent } from './events.js';
import { metaCategoryWord, metaDisagreesWith } from './rate-events.js';
import type { BillableUnit, Finding } from './units.js';

const AUGUST = '2025-08-04T10:00:00Z';
/** A stream that rates at every event, with an hour of lateness allowed. */
const STREAM = { maxLatenessMs: 3_600_000, flushEveryEvents: 1 };

const pmp = (category: string, type = 'regular'): MetaPricingEvidence => ({
  billable: true,
  pricing_model: 'PMP',
  category,
  type,
});

/** A business message of W1 as its send log says, delivered a second later with Meta's `pricing`. */
function logged(
  atMs: number,
  id: string,
  template: 'marketing' | 'utility' | 'authentication' | null,
  pricing: MetaPricingEvidence | undefined,
  party: { waba?: string; user?: string } = {},
): CoreEvent[] {
  const [outbound, delivered] = send(atMs, id, template, {
    waba: party.waba ?? 'W1',
    business: `PN_${party.waba ?? 'W1'}`,
    user: party.user ?? '919876543210',
  });
  return [outbound!, pricing ? { ...(delivered as StatusEvent), pricing } : delivered!];
}

const metaDisagrees = (findings: readonly Finding[]) => findings.filter((f) => f.code === 'META_DISAGREES');

/** The META_DISAGREES findings as JSON text in a fixed order: every word, field and count. */
const said = (findings: readonly Finding[]) =>
  metaDisagrees(findings)
    .map((f) => JSON.stringify(f))
    .sort();

describe("META_DISAGREES: Meta's category of a delivered message against wameter's", () => {
  it("A: the send log says utility, Meta's delivered status marketing: charged utility, and said", async () => {
    const result = await rate(logged(at(AUGUST), 'wamid.a1', 'utility', pmp('marketing')));
    expect(result.units).toMatchObject([{ category: 'utility', amountMicros: 1400 }]);
    expect(metaDisagrees(result.findings)).toEqual([
      {
        code: 'META_DISAGREES',
        message:
          "WABA W1: Meta's status webhooks give the category marketing to messages that wameter rated as utility (first: wamid.a1); wameter keeps its own verdict (pricing-rules §9): run `wameter reconcile` on the same input for each such message and what to check",
        waba: 'W1',
        category: 'utility',
        meta_category: 'marketing',
        message_id: 'wamid.a1',
        count: 1,
      },
    ]);
  });

  it("B: a status alone saying authentication-international, rated authentication: said, naming the accounts file's fields", async () => {
    const status: StatusEvent = {
      kind: 'status',
      atMs: at(AUGUST),
      id: 'wamid.b1',
      status: 'delivered',
      waba: 'W1',
      business: 'PN1',
      user: '919876543211',
      pricing: pmp('authentication-international'),
    };
    const result = await rate([status]);
    expect(result.units).toMatchObject([{ category: 'authentication', amountMicros: 1400 }]);
    expect(result.findings.map((f) => f.code)).toContain('CATEGORY_FROM_WEBHOOK');
    const [finding, ...others] = metaDisagrees(result.findings);
    expect(others).toEqual([]);
    expect(finding).toMatchObject({
      waba: 'W1',
      category: 'authentication',
      meta_category: 'authentication_international',
      message_id: 'wamid.b1',
      count: 1,
    });
    expect(finding!.message).toContain('wameter reconcile');
    expect(finding!.message).toContain('"auth_international"');
    expect(finding!.message).toContain('"primary_country"');
  });

  it('authentication-international the other way: wameter applies it (eligible), Meta says authentication', async () => {
    const eligible: Account = {
      waba: 'W1',
      timeZone: 'UTC',
      currency: 'USD',
      portfolio: 'W1',
      primaryCountry: 'ID',
      authInternational: { startMs: 0, exceptionsMs: {} },
    };
    const result = await rate(logged(at(AUGUST), 'wamid.ai1', 'authentication', pmp('authentication')), {
      accounts: [eligible],
    });
    expect(result.units).toMatchObject([{ category: 'authentication_international', amountMicros: 28_000 }]);
    const [finding, ...others] = metaDisagrees(result.findings);
    expect(others).toEqual([]);
    expect(finding).toMatchObject({
      category: 'authentication_international',
      meta_category: 'authentication',
    });
    expect(finding!.message).toContain('"auth_international"');
  });

  it('a what-if (--as-of-rules) is compared with nothing, even under the era of the dates', async () => {
    const events = logged(at(AUGUST), 'wamid.a1', 'utility', pmp('marketing'));
    expect(metaDisagrees((await rate(events)).findings)).toHaveLength(1);
    expect(metaDisagrees((await rate(events, { asOfRules: 'PMP-2026-10' })).findings)).toEqual([]);
    // Under the dates' own era too: its verdicts may rest on earlier traffic rated under the what-if's rules
    // (a June answer to an ad click opening a per-message window where CBP rode the open one), so they are
    // no verdict Meta shared (review: a marketing template said to disagree where Meta and wameter agree).
    expect(metaDisagrees((await rate(events, { asOfRules: 'PMP-2025' })).findings)).toEqual([]);
  });

  it("under per-message pricing, Meta's words that agree say nothing", async () => {
    const agreeing = [
      // Charged alike; Marketing Messages Lite is billed as marketing.
      ...logged(hours(AUGUST, 0), 'mkt', 'marketing', pmp('marketing')),
      ...logged(hours(AUGUST, 1), 'lite', 'marketing', pmp('MARKETING_LITE')),
      ...logged(hours(AUGUST, 2), 'auth', 'authentication', pmp('authentication')),
      // The user writes: a utility template and a text inside the window are free at both (Meta may call the
      // utility template's free message `service`: free of the same kind).
      inbound(hours(AUGUST, 3), 'in1', { business: 'PN_W1' }),
      ...logged(hours(AUGUST, 4), 'util-in-csw', 'utility', pmp('service', 'free_customer_service')),
      ...logged(hours(AUGUST, 5), 'text', null, pmp('service', 'free_customer_service')),
      // A status without pricing, and one with a word wameter does not know: nothing to compare.
      ...logged(hours(AUGUST, 6), 'bare', 'marketing', undefined),
      ...logged(hours(AUGUST, 7), 'group', 'marketing', pmp('group_marketing')),
    ];
    const result = await rate(agreeing);
    expect(result.units).toHaveLength(7);
    expect(metaDisagrees(result.findings)).toEqual([]);
  });

  it('a free entry point at both says nothing, whatever category Meta gives its message', async () => {
    const events = [
      inbound(hours(AUGUST, 0), 'ad-click', { business: 'PN_W1' }, true),
      ...logged(hours(AUGUST, 1), 'answer', 'utility', pmp('utility', 'free_entry_point')),
      ...logged(hours(AUGUST, 2), 'in-window', 'marketing', pmp('referral_conversion', 'free_entry_point')),
    ];
    const result = await rate(events);
    expect(result.units.map((u) => u.category)).toEqual(['referral_conversion', 'referral_conversion']);
    expect(metaDisagrees(result.findings)).toEqual([]);
  });

  it("under CBP the conversation's category is compared: a text riding on a marketing conversation agrees", async () => {
    const day = '2024-03-01T10:00:00Z';
    const cbp = (category: string) => ({ pricing_model: 'CBP', category, type: 'regular' });
    const events = [
      ...logged(hours(day, 0), 'opens', 'marketing', cbp('marketing')),
      inbound(hours(day, 1), 'in1', { business: 'PN_W1' }),
      ...logged(hours(day, 2), 'rides', null, cbp('marketing')),
      // Meta says a utility conversation where wameter rides on the marketing one: said.
      ...logged(hours(day, 3), 'rides-too', null, cbp('utility')),
    ];
    const result = await rate(events);
    expect(result.units).toHaveLength(1);
    expect(metaDisagrees(result.findings)).toMatchObject([
      { category: 'marketing', meta_category: 'utility', message_id: 'rides-too', count: 1 },
    ]);
  });

  it("CBP-2022's words are compared with CBP-2022's categories", async () => {
    const day = '2022-06-01T10:00:00Z';
    const cbp = (category: string) => ({ pricing_model: 'CBP', category });
    const result = await rate(
      logged(hours(day, 0), 'bi', 'marketing', cbp('user_initiated'), { user: '919800000001' }).concat(
        logged(hours(day, 0), 'bi2', 'marketing', cbp('business_initiated'), { user: '919800000002' }),
      ),
    );
    expect(result.units.map((u) => u.category)).toEqual(['business_initiated', 'business_initiated']);
    expect(metaDisagrees(result.findings)).toMatchObject([
      { category: 'business_initiated', meta_category: 'user_initiated', message_id: 'bi', count: 1 },
    ]);
  });
});

describe("META_DISAGREES: Meta's pricing type (free or charged) against wameter's", () => {
  const OCTOBER = '2025-10-06T10:05:00Z';
  /** Meta's status alone (no send log, no user message in the input): a utility template Meta calls free. */
  const freeAtMeta: StatusEvent = {
    kind: 'status',
    atMs: at(OCTOBER),
    id: 'wamid.fcs1',
    status: 'delivered',
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    pricing: { billable: false, pricing_model: 'PMP', category: 'utility', type: 'free_customer_service' },
  };

  it("Meta says free_customer_service, wameter charges (the user's message is not in the input): said", async () => {
    const result = await rate([freeAtMeta]);
    expect(result.units).toMatchObject([{ category: 'utility', type: 'regular', amountMicros: 1400 }]);
    const [finding, ...others] = metaDisagrees(result.findings);
    expect(others).toEqual([]);
    expect(finding).toMatchObject({
      waba: 'W1',
      category: 'utility',
      meta_category: 'utility',
      type: 'regular',
      meta_type: 'free_customer_service',
      message_id: 'wamid.fcs1',
      count: 1,
    });
    expect(finding!.message).toContain('Meta does not charge');
    expect(finding!.message).toContain('wameter charged');
    expect(finding!.message).toContain('(first: wamid.fcs1)');
  });

  it('Meta says regular where wameter holds a utility template free in the window: said, the other way', async () => {
    const events = [
      inbound(hours(AUGUST, 0), 'in1', { business: 'PN_W1' }),
      ...logged(hours(AUGUST, 1), 'util-in-csw', 'utility', pmp('utility', 'regular')),
    ];
    const result = await rate(events);
    expect(result.units).toMatchObject([{ type: 'free_customer_service', amountMicros: 0 }]);
    const [finding, ...others] = metaDisagrees(result.findings);
    expect(others).toEqual([]);
    expect(finding).toMatchObject({ type: 'free_customer_service', meta_type: 'regular', count: 1 });
    expect(finding!.message).toContain('Meta charges');
    expect(finding!.message).toContain('wameter holds free');
  });

  it('counted per WABA and pair of verdicts, the same in any order and in a stream; not in a what-if', async () => {
    const events: CoreEvent[] = [
      freeAtMeta,
      { ...freeAtMeta, id: 'wamid.fcs0', atMs: at(OCTOBER) + 5000, user: '919876543211' },
      { ...freeAtMeta, id: 'wamid.fcs2', atMs: at(OCTOBER) - 5000, user: '919876543212', waba: 'W2' },
      ...logged(at(OCTOBER) + 60_000, 'agree', 'utility', pmp('utility')),
    ];
    const expected = said((await rate(events)).findings);
    expect(metaDisagrees((await rate(events)).findings)).toMatchObject([
      { waba: 'W1', message_id: 'wamid.fcs1', count: 2 },
      { waba: 'W2', message_id: 'wamid.fcs2', count: 1 },
    ]);
    for (const seed of [1, 7, 42])
      expect(said((await rate(shuffled(events, seed))).findings)).toEqual(expected);
    expect(said((await rate(byTime(events), STREAM)).findings)).toEqual(expected);
    expect(metaDisagrees((await rate(events, { asOfRules: 'PMP-2025' })).findings)).toEqual([]);
  });

  it("Meta and wameter free or charged alike say nothing; a type Meta does not give or wameter's free tier are not compared", async () => {
    const events = [
      inbound(hours(AUGUST, 0), 'in1', { business: 'PN_W1' }),
      ...logged(hours(AUGUST, 1), 'free-both', 'utility', pmp('utility', 'free_customer_service')),
      ...logged(hours(AUGUST, 2), 'no-type', 'marketing', { pricing_model: 'PMP', category: 'marketing' }),
      ...logged(hours(AUGUST, 3), 'odd-type', 'marketing', pmp('marketing', 'free_something_new')),
      ...logged(hours(AUGUST, 4), 'charged-both', 'marketing', pmp('marketing', 'regular')),
    ];
    expect(metaDisagrees((await rate(events)).findings)).toEqual([]);
  });
});

describe('the mapping of Meta’s words (metaCategoryWord, metaDisagreesWith)', () => {
  const unit = (
    fields: Partial<BillableUnit>,
  ): Pick<BillableUnit, 'unit' | 'pricingModel' | 'category' | 'type'> => ({
    unit: 'message',
    pricingModel: 'PMP',
    category: 'utility',
    type: 'regular',
    ...fields,
  });
  const theirs = (pricing: object | undefined, ours: Partial<BillableUnit> = {}) => {
    const word = metaCategoryWord(pricing as MetaPricingEvidence | undefined);
    return word === undefined ? 'not comparable' : (metaDisagreesWith(unit(ours), word) ?? 'agrees');
  };

  it("normalises Meta's spellings as the rest of the engine does", () => {
    expect(theirs(pmp('authentication-international'), { category: 'authentication' })).toBe(
      'authentication_international',
    );
    expect(theirs(pmp('AUTHENTICATION_INTERNATIONAL'), { category: 'authentication' })).toBe(
      'authentication_international',
    );
    expect(theirs(pmp('marketing_lite'), { category: 'marketing' })).toBe('agrees');
    expect(
      theirs(
        { pricing_model: 'CBP', category: 'customer_initiated' },
        { pricingModel: 'CBP', category: 'user_initiated' },
      ),
    ).toBe('agrees');
  });

  it('compares nothing without a category word, or with one wameter does not know', () => {
    expect(theirs(undefined)).toBe('not comparable');
    expect(theirs({ pricing_model: 'PMP', type: 'regular' })).toBe('not comparable');
    expect(theirs({ category: 42 })).toBe('not comparable');
    expect(theirs(pmp('unknown'))).toBe('not comparable');
    expect(theirs(pmp('constructor'))).toBe('not comparable');
  });

  it('compares nothing across pricing models or across the vocabularies of CBP-2022 and later', () => {
    expect(theirs({ pricing_model: 'CBP', category: 'marketing' })).toBe('agrees');
    expect(theirs({ pricing_model: 'PMP', category: 'business_initiated' })).toBe('agrees');
    expect(theirs({ category: 'marketing' }, { pricingModel: 'CBP', category: 'business_initiated' })).toBe(
      'agrees',
    );
    // A free entry point is a word of every era.
    expect(
      theirs({ category: 'referral_conversion' }, { pricingModel: 'CBP', category: 'business_initiated' }),
    ).toBe('referral_conversion');
    expect(theirs(pmp('marketing'), { category: 'referral_conversion', type: 'free_entry_point' })).toBe(
      'marketing',
    );
  });

  it('free in the customer service window at both, per message, agrees whatever the category', () => {
    const free = { category: 'service' as const, type: 'free_customer_service' as const };
    expect(theirs(pmp('utility', 'free_customer_service'), free)).toBe('agrees');
    expect(theirs(pmp('service', 'free_customer_service'), { type: 'free_customer_service' })).toBe('agrees');
    // Meta charged a utility template where the send log says a free-form message: said.
    expect(theirs(pmp('utility'), free)).toBe('utility');
    // Under CBP a service conversation is not a utility one, free or not.
    expect(
      theirs(
        { pricing_model: 'CBP', category: 'utility', type: 'free_customer_service' },
        { ...free, unit: 'conversation', pricingModel: 'CBP' },
      ),
    ).toBe('utility');
  });
});

describe('META_DISAGREES counts messages: one finding per WABA and pair of categories', () => {
  // Three W1 messages logged utility that Meta calls marketing, sent in the reverse order of their ids (the
  // earliest delivered is the last id); one W1 message the other way round; two W2 messages.
  const events: CoreEvent[] = [
    ...logged(hours(AUGUST, 3), 'w1-a', 'utility', pmp('marketing'), { user: '919800000001' }),
    ...logged(hours(AUGUST, 2), 'w1-b', 'utility', pmp('marketing'), { user: '919800000002' }),
    ...logged(hours(AUGUST, 1), 'w1-c', 'utility', pmp('marketing'), { user: '919800000003' }),
    ...logged(hours(AUGUST, 4), 'w1-d', 'marketing', pmp('utility'), { user: '919800000004' }),
    ...logged(hours(AUGUST, 5), 'w1-e', 'marketing', pmp('marketing'), { user: '919800000005' }),
    ...logged(hours(AUGUST, 6), 'w2-a', 'utility', pmp('marketing'), { waba: 'W2' }),
    ...logged(hours(AUGUST, 6), 'w2-b', 'utility', pmp('marketing'), { waba: 'W2', user: '919800000009' }),
  ];

  it('three disagreeing messages make one finding with count 3, naming the first delivered', async () => {
    const findings = metaDisagrees((await rate(events)).findings);
    const of = (waba: string, category: string) =>
      findings.filter((f) => f.waba === waba && f.category === category);
    expect(findings).toHaveLength(3);
    expect(of('W1', 'utility')).toMatchObject([{ meta_category: 'marketing', message_id: 'w1-c', count: 3 }]);
    expect(of('W1', 'utility')[0]!.message).toContain('(first: w1-c)');
    expect(of('W1', 'marketing')).toMatchObject([{ meta_category: 'utility', message_id: 'w1-d', count: 1 }]);
    // Two delivered in the same millisecond: the smaller id is named.
    expect(of('W2', 'utility')).toMatchObject([{ meta_category: 'marketing', message_id: 'w2-a', count: 2 }]);
  });

  it('the same words and counts in any order of the lines, and in a stream', async () => {
    const expected = said((await rate(events)).findings);
    expect(expected).toHaveLength(3);
    for (const seed of [1, 7, 42, 2024]) {
      expect(said((await rate(shuffled(events, seed))).findings)).toEqual(expected);
    }
    expect(said((await rate([...events].reverse())).findings)).toEqual(expected);
    const streamed = await rate(byTime(events), STREAM);
    expect(streamed.stats.late).toBe(0);
    expect(said(streamed.findings)).toEqual(expected);
    const shuffledStream = await rate(shuffled(events, 5), { maxLatenessMs: 24 * 3_600_000 });
    expect(shuffledStream.stats.late).toBe(0);
    expect(said(shuffledStream.findings)).toEqual(expected);
  });

  it('a CBP conversation is compared once it is final, in a stream too', async () => {
    const day = '2024-03-01T10:00:00Z';
    const cbp = (category: string) => ({ pricing_model: 'CBP', category });
    const conversation = [
      ...logged(hours(day, 0), 'c-opens', 'utility', cbp('marketing')),
      ...logged(hours(day, 5), 'c-rides', 'utility', cbp('marketing')),
      ...logged(hours(day, 30), 'later', 'marketing', cbp('marketing'), { user: '919800000001' }),
    ];
    const expected = said((await rate(conversation)).findings);
    expect(metaDisagrees((await rate(conversation)).findings)).toMatchObject([
      { category: 'utility', meta_category: 'marketing', message_id: 'c-opens', count: 2 },
    ]);
    const streamed = await rate(byTime(conversation), STREAM);
    expect(said(streamed.findings)).toEqual(expected);
  });
});

describe('`wameter rate` tells it and still exits 0', () => {
  const LINES = [
    '{"kind":"outbound","at":"2025-08-04T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.o1","template":"utility"}',
    '{"kind":"status","at":"2025-08-04T10:00:03Z","id":"wamid.o1","status":"delivered","pricing":{"billable":true,"pricing_model":"PMP","category":"marketing","type":"regular"}}',
    '{"kind":"status","at":"2025-08-04T11:00:03Z","id":"wamid.b1","status":"delivered","waba":"W1","business":"PN1","user":"919876543211","pricing":{"pricing_model":"PMP","category":"authentication-international","type":"regular"}}',
  ];

  for (const stream of [[], ['--stream']]) {
    it(`rate ${stream.join(' ')} --format json`, async () => {
      const { code, out } = await runWameter(['rate', '-', '--format', 'json', ...stream], {
        stdin: LINES.join('\n'),
      });
      expect(code).toBe(EXIT.OK);
      const document = JSON.parse(out) as { units: { amount: string }[]; findings: Finding[] };
      expect(document.units.map((u) => u.amount)).toEqual(['0.0014', '0.0014']);
      expect(
        metaDisagrees(document.findings).map((f) => `${String(f.category)}/${String(f.meta_category)}`),
      ).toEqual(['authentication/authentication_international', 'utility/marketing']);
    });
  }
});
