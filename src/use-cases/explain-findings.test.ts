import { describe, expect, it } from 'vitest';
import type { BillableUnit, Finding } from '../core/units.js';
import { findingsOfStory, type StoryScope } from './explain-findings.js';
import { billableUnit } from '../../test/support/units.js';

/** An unpriced marketing message of the story (the fields a story's findings are judged by). */
const unit = (over: Partial<BillableUnit> = {}): BillableUnit =>
  billableUnit({
    id: 'u_m1',
    category: 'marketing',
    openedAtMs: Date.parse('2025-10-10T10:00:00Z'),
    messages: ['m1'],
    rateMicros: null,
    amountMicros: null,
    ...over,
  });

function story(units: BillableUnit[]): StoryScope {
  return {
    user: '919876543210',
    units,
    messageIds: new Set(units.flatMap((u) => u.messages)),
    businesses: new Set(units.map((u) => u.business)),
    wabas: new Set(units.map((u) => u.waba)),
    timeZoneOf: () => 'UTC',
  };
}

const finding = (code: Finding['code'], details: Record<string, unknown> = {}): Finding =>
  ({ code, message: `${code} in words`, ...details }) as Finding;

const codesOf = (findings: Finding[]) => findings.map((f) => `${f.code}${f.tag ? `:${f.tag}` : ''}`);

describe('the findings of one user’s story', () => {
  it('a missing price is told with the units it left unpriced only', () => {
    const findings = [
      finding('NO_RATE', {
        tag: 'mine',
        rate_card: 'usd-2025-10-01',
        market: 'India',
        category: 'marketing',
        waba: 'W1',
      }),
      // Each WABA has its own: another WABA's missing rate is not this story's.
      finding('NO_RATE', {
        tag: 'other-waba',
        rate_card: 'usd-2025-10-01',
        market: 'India',
        category: 'marketing',
        waba: 'W9',
      }),
      finding('NO_RATE', {
        tag: 'other-market',
        rate_card: 'usd-2025-10-01',
        market: 'Brazil',
        category: 'marketing',
        waba: 'W1',
      }),
      finding('NO_RATE', {
        tag: 'other-category',
        rate_card: 'usd-2025-10-01',
        market: 'India',
        category: 'utility',
        waba: 'W1',
      }),
      finding('NO_RATE_CARD', { tag: 'eur', currency: 'EUR', waba: 'W1' }),
    ];
    expect(codesOf(findingsOfStory(findings, story([unit()])))).toEqual(['NO_RATE:mine']);
    // Without a card in force, the card's absence is what the unit needs.
    const cardless = unit({ rateCard: null, currency: 'EUR' });
    expect(codesOf(findingsOfStory(findings, story([cardless])))).toEqual(['NO_RATE_CARD:eur']);
    // A priced unit needs neither.
    expect(findingsOfStory(findings, story([unit({ amountMicros: 25_000, rateMicros: 25_000 })]))).toEqual(
      [],
    );
  });

  it("a finding's count is its WABA's; the story's own share is story_count, where its units tell it", () => {
    const findings = [
      // The WABA's four unpriced marketing messages to India, one of which is this story's.
      finding('NO_RATE', {
        rate_card: 'usd-2025-10-01',
        market: 'India',
        category: 'marketing',
        waba: 'W1',
        count: 4,
      }),
      finding('CATEGORY_FROM_WEBHOOK', { waba: 'W1', count: 7 }),
      finding('UNKNOWN_RECIPIENT', { number: '919876543210', waba: 'W1', count: 2 }),
      // Of the whole WABA: what share is the story's, its units cannot tell.
      finding('NO_WINDOW_IN_INPUT', { waba: 'W1', count: 9 }),
    ];
    const told = findingsOfStory(
      findings,
      story([
        unit(),
        unit({ id: 'u_m2', messages: ['m2'], isCategoryFromWebhook: true }),
        unit({ id: 'u_m3', messages: ['m3'], market: null, rateCard: 'usd-2025-10-01' }),
      ]),
    );
    expect(told.map((f) => [f.code, f.count, f.story_count])).toEqual([
      ['NO_RATE', 4, 2],
      ['CATEGORY_FROM_WEBHOOK', 7, 1],
      ['UNKNOWN_RECIPIENT', 2, 1],
      ['NO_WINDOW_IN_INPUT', 9, undefined],
    ]);
    // The rating's finding is told as it is, its count unchanged.
    expect(findings[0]).not.toHaveProperty('story_count');
  });

  it('a card of the other pricing model is told with the units it priced, not with every story of the WABA', () => {
    const findings = [
      finding('RATE_CARD_OF_OTHER_MODEL', {
        tag: 'card',
        rate_card: 'usd-2024-11-01',
        unit_id: 'u_x',
        waba: 'W1',
      }),
    ];
    const priced = (rateCard: string, waba = 'W1') =>
      unit({ waba, rateCard, amountMicros: 25_000, rateMicros: 25_000 });
    expect(codesOf(findingsOfStory(findings, story([priced('usd-2024-11-01')])))).toEqual([
      'RATE_CARD_OF_OTHER_MODEL:card',
    ]);
    // Another user's charge was the first; this story's units came from another card, or another WABA.
    expect(findingsOfStory(findings, story([priced('usd-2025-10-01')]))).toEqual([]);
    expect(findingsOfStory(findings, story([priced('usd-2024-11-01', 'W2')]))).toEqual([]);
  });

  it("another user's number or message is not the story's; the story's own are", () => {
    const findings = [
      finding('UNKNOWN_RECIPIENT', { tag: 'other', number: '99900000001', waba: 'W1' }),
      finding('MARKET_FROM_CALLING_CODE', { tag: 'mine', number: '919876543210', waba: 'W1' }),
    ];
    const priced = unit({ amountMicros: 25_000, rateMicros: 25_000 });
    expect(codesOf(findingsOfStory(findings, story([priced])))).toEqual(['MARKET_FROM_CALLING_CODE:mine']);
  });

  it("findings counting a WABA's messages go with its stories, whichever message they name first", () => {
    const findings = [
      // One per WABA, naming its first message: told to every story of the WABA, not only to that message's.
      finding('DELIVERED_AND_FAILED', { tag: 'mine', message_id: 'm9', waba: 'W1' }),
      finding('DELIVERED_AND_FAILED', { tag: 'other', message_id: 'm5', waba: 'W2' }),
      // One per pair of WABAs: told to the stories of either.
      finding('MESSAGE_OF_TWO_WABAS', { tag: 'larger', message_id: 'm8', waba: 'W1', other_waba: 'W0' }),
      finding('MESSAGE_OF_TWO_WABAS', { tag: 'smaller', message_id: 'm8', waba: 'W3', other_waba: 'W1' }),
      finding('MESSAGE_OF_TWO_WABAS', { tag: 'other', message_id: 'm5', waba: 'W3', other_waba: 'W2' }),
    ];
    const priced = unit({ amountMicros: 25_000, rateMicros: 25_000 });
    expect(codesOf(findingsOfStory(findings, story([priced])))).toEqual([
      'DELIVERED_AND_FAILED:mine',
      'MESSAGE_OF_TWO_WABAS:larger',
      'MESSAGE_OF_TWO_WABAS:smaller',
    ]);
  });

  it('findings of a whole WABA go with its stories; of a business number, with that number’s', () => {
    const findings = [
      finding('NO_WINDOW_IN_INPUT', { tag: 'mine', waba: 'W1', message_id: 'm7' }),
      finding('NO_WINDOW_IN_INPUT', { tag: 'other', waba: 'W2', message_id: 'm8' }),
      finding('NUMBER_OF_TWO_WABAS', { tag: 'mine', business: 'PN1', waba: 'W2', other_waba: 'W1' }),
      finding('NUMBER_OF_TWO_WABAS', { tag: 'other', business: 'PN7', waba: 'W1', other_waba: 'W3' }),
      finding('LATE_EVENT', { tag: 'everyone' }),
    ];
    const priced = unit({ amountMicros: 25_000, rateMicros: 25_000 });
    expect(codesOf(findingsOfStory(findings, story([priced])))).toEqual([
      'NO_WINDOW_IN_INPUT:mine',
      'NUMBER_OF_TWO_WABAS:mine',
      'LATE_EVENT:everyone',
    ]);
  });

  it('tier, webhook-category and location findings go with units they describe', () => {
    const tiered = unit({
      category: 'authentication_international',
      amountMicros: 10_000,
      rateMicros: 10_000,
      tier: { count: 5, band: '1:100000', month: '2025-10' },
      isCategoryFromWebhook: true,
    });
    const findings = [
      finding('META_TIER_AHEAD', {
        tag: 'mine',
        market: 'India',
        category: 'authentication',
        month: '2025-10',
      }),
      finding('META_TIER_AHEAD', {
        tag: 'other-month',
        market: 'India',
        category: 'authentication',
        month: '2025-09',
      }),
      finding('CATEGORY_FROM_WEBHOOK', { tag: 'mine', waba: 'W1' }),
      finding('AUTH_INTERNATIONAL_NO_LOCATION', { tag: 'not-domestic', waba: 'W1' }),
    ];
    expect(codesOf(findingsOfStory(findings, story([tiered])))).toEqual([
      'META_TIER_AHEAD:mine',
      'CATEGORY_FROM_WEBHOOK:mine',
    ]);
  });

  it("Meta's category against wameter's is told with the story's units of that WABA and category only", () => {
    const findings = [
      finding('META_DISAGREES', { tag: 'mine', waba: 'W1', category: 'marketing', message_id: 'mX' }),
      finding('META_DISAGREES', { tag: 'utility', waba: 'W1', category: 'utility', message_id: 'mY' }),
      finding('META_DISAGREES', { tag: 'other-waba', waba: 'W2', category: 'marketing', message_id: 'mZ' }),
      finding('META_DISAGREES', { tag: 'named', waba: 'W1', category: 'utility', message_id: 'm1' }),
    ];
    expect(codesOf(findingsOfStory(findings, story([unit({ waba: 'W1' })])))).toEqual([
      'META_DISAGREES:mine',
      'META_DISAGREES:named',
    ]);
  });
});

describe("a story never names another user's unit or message", () => {
  const reportedMessage = (id: string, date: string) =>
    `WABA W1: messages (first: unit ${id}, on ${date}) were rated under PMP-2026-10, charged or free, rules reported by third parties`;
  const reported = finding('REPORTED_RULES', {
    message: reportedMessage('u_wamid.reported', '2026-10-05'),
    waba: 'W1',
    unit_id: 'u_wamid.reported',
    date: '2026-10-05',
    count: 3,
  });
  const oct = Date.parse('2026-10-07T08:00:00Z');

  it('REPORTED_RULES is told only with a story whose units were rated under PMP-2026-10, naming its own', () => {
    // All of this story's charges were PMP-2025: the reported rules changed none of them.
    const pmp2025 = unit({ era: 'PMP-2025', amountMicros: 25_000, rateMicros: 25_000 });
    expect(findingsOfStory([reported], story([pmp2025]))).toEqual([]);
    // Of another WABA: not this story's either.
    expect(findingsOfStory([reported], story([unit({ waba: 'W2', era: 'PMP-2026-10' })]))).toEqual([]);
    const mine = [
      unit({ id: 'u_late', messages: ['late'], era: 'PMP-2026-10', openedAtMs: oct + 3_600_000 }),
      unit({ id: 'u_first', messages: ['first'], era: 'PMP-2026-10', openedAtMs: oct }),
      pmp2025,
    ];
    const told = findingsOfStory([reported], story(mine));
    expect(told).toEqual([
      {
        ...reported,
        message: reportedMessage('u_first', '2026-10-07'),
        unit_id: 'u_first',
        date: '2026-10-07',
        story_count: 2,
      },
    ]);
    expect(JSON.stringify(told)).not.toContain('wamid.reported');
    // The story holding the unit it names is told it as it is.
    const named = unit({ id: 'u_wamid.reported', messages: ['wamid.reported'], era: 'PMP-2026-10' });
    expect(findingsOfStory([reported], story([named]))).toEqual([{ ...reported, story_count: 1 }]);
  });

  it("a finding of the WABA's feed told with a story withholds the message it names when that is another's", () => {
    const findings = [
      finding('NO_WINDOW_IN_INPUT', {
        message: 'WABA W1: non-template messages were delivered with no window (first: wamid.x1); feed them',
        waba: 'W1',
        message_id: 'wamid.x1',
      }),
      finding('DELIVERED_AND_FAILED', {
        message: 'WABA W1: messages were reported both delivered and failed (first: m1): rated as delivered',
        waba: 'W1',
        message_id: 'm1',
      }),
      finding('RATE_CARD_OF_OTHER_MODEL', {
        message:
          'WABA W1: charges per delivered message (first: u_wamid.x2, on 2026-10-02) were priced from card c',
        rate_card: 'c',
        unit_id: 'u_wamid.x2',
        date: '2026-10-02',
        waba: 'W1',
      }),
    ];
    const told = findingsOfStory(findings, story([unit({ rateCard: 'c' })]));
    expect(told.map((f) => [f.code, f.message, f.message_id, f.unit_id])).toEqual([
      [
        'NO_WINDOW_IN_INPUT',
        "WABA W1: non-template messages were delivered with no window (first: [not this user's]); feed them",
        undefined,
        undefined,
      ],
      // The story's own message, named as it is.
      ['DELIVERED_AND_FAILED', findings[1]!.message, 'm1', undefined],
      [
        'RATE_CARD_OF_OTHER_MODEL',
        "WABA W1: charges per delivered message (first: [not this user's], on 2026-10-02) were priced from card c",
        undefined,
        undefined,
      ],
    ]);
    expect(JSON.stringify(told)).not.toMatch(/wamid\.x/);
  });

  it("a message's other numbers are told only with its story; messages never rated, with the example withheld", () => {
    const findings = [
      finding('RECIPIENT_DISAGREES', {
        message:
          'WABA W1: the send log and statuses name different numbers (e.g. wamid.y, recipients 4477 and 9198)',
        waba: 'W1',
        message_id: 'wamid.y',
      }),
      finding('STATUS_WITHOUT_USER', {
        message: 'delivered message wamid.z has no outbound line',
        waba: 'W1',
        message_id: 'wamid.z',
      }),
      finding('UNKNOWN_CATEGORY', {
        message: 'WABA W1: cannot be rated (first: wamid.c)',
        waba: 'W1',
        message_id: 'wamid.c',
      }),
      // An id inside a longer word is not withheld: the finding is not told rather than told with it.
      finding('READ_RECEIPT_ONLY', {
        message: 'WABA W1: read receipts (first: xwamid.r)',
        waba: 'W1',
        message_id: 'wamid.r',
      }),
    ];
    expect(findingsOfStory(findings, story([unit()])).map((f) => [f.code, f.message, f.message_id])).toEqual([
      ['STATUS_WITHOUT_USER', "delivered message [not this user's] has no outbound line", undefined],
      ['UNKNOWN_CATEGORY', "WABA W1: cannot be rated (first: [not this user's])", undefined],
    ]);
    const mine = unit({ messages: ['wamid.y'] });
    expect(codesOf(findingsOfStory(findings.slice(0, 1), story([mine])))).toEqual(['RECIPIENT_DISAGREES']);
  });
});
