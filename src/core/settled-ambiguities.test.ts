// Open questions of pricing-rules.md that a rules review (2026-12-05) settled: each test pins the behaviour
// docs/decisions.md describes ("Rating", items named in each describe), so that it cannot drift unnoticed.
import { describe, expect, it } from 'vitest';
import { rateByReference } from '../../test/reference-rater.js';
import { INDIA, at, hours, inbound, loadPricing, rate, send } from '../../test/support/engine.js';
import { defaultAccount, type CoreEvent, type TemplateCategory } from './events.js';
import { createMarketResolver, parseMarketTable, placeRecipient } from './market.js';
import { attachVolumeTiers, createRateBook, parseRateCardCsv, parseVolumeTierCsv } from './rate-card.js';
import type { RateCard } from './pricing-context.js';
import type { BillableUnit } from './units.js';

/** A send log line that already knows its delivery. */
function logged(iso: string, id: string, template: TemplateCategory | null, user = INDIA): CoreEvent {
  const atMs = at(iso);
  return { kind: 'outbound', atMs, id, waba: 'W1', business: 'PN1', user, template, deliveredAtMs: atMs };
}

function brief(units: readonly BillableUnit[]) {
  return units.map((u) => ({
    messages: u.messages.join('+'),
    category: u.category,
    type: u.type,
    rule: u.rule,
    rate: u.rateMicros,
    amount: u.amountMicros,
  }));
}

async function referenceOf(events: CoreEvent[], cards?: RateCard[]) {
  const pricing = await loadPricing();
  const book = createRateBook(cards ?? pricing.cards);
  if (!book.ok) throw new Error(book.error.message);
  return rateByReference(events, {
    accountFor: defaultAccount,
    rateBook: book.value,
    markets: pricing.markets,
  });
}

/** The reference rater of the property tests (written from the spec) decides the same, field by field. */
async function expectReferenceAgrees(events: CoreEvent[], cards?: RateCard[]) {
  const engine = await rate(events, cards ? { cards } : {});
  const reference = await referenceOf(events, cards);
  expect(engine.units.map(comparable)).toEqual(reference.units.map(comparable));
}

function comparable(u: {
  id: string;
  category: string;
  type: string;
  messages: string[];
  openedAtMs: number;
  expiresAtMs: number | null;
  closedAtMs?: number;
  rateMicros: number | null;
  amountMicros: number | null;
}) {
  return [
    u.id,
    u.category,
    u.type,
    u.messages.join('+'),
    u.openedAtMs,
    u.expiresAtMs,
    u.closedAtMs,
    u.rateMicros,
    u.amountMicros,
  ];
}

describe('(a) CBP-2022: an ad click answered while a conversation is open', () => {
  // May 2022, usd-2022-02-01-partial, India: business-initiated 0.0066, user-initiated 0.0040; the first
  // 1,000 conversations of the month are free (§4), so the charged ones show as free_tier.
  const events: CoreEvent[] = [
    logged('2022-05-10T10:00:00Z', 't1', 'marketing'), // a business-initiated conversation, until 05-11 10:00
    inbound(at('2022-05-10T12:00:00Z'), 'ad', {}, true),
    logged('2022-05-10T13:00:00Z', 'a1', null), // the answer: a free entry point, 24 h (before 2023-03-01)
    logged('2022-05-11T12:00:00Z', 't2', 'marketing'), // after t1's conversation would have ended: free
    logged('2022-05-11T13:00:00Z', 't3', 'marketing'), // the free entry point has ended: a new conversation
  ];

  it('the answer opens a free entry point that closes the open conversation (as §3.2 says of later eras)', async () => {
    const { units } = await rate(events);
    expect(brief(units)).toEqual([
      {
        messages: 't1',
        category: 'business_initiated',
        type: 'free_tier',
        rule: 'CBP2022_BUSINESS_INITIATED+FREE_TIER(1/1000)',
        rate: 6600,
        amount: 0,
      },
      {
        messages: 'a1+t2',
        category: 'referral_conversion',
        type: 'free_entry_point',
        rule: 'FEP_OPEN',
        rate: 4000, // the user-initiated conversation it would have been
        amount: 0,
      },
      {
        messages: 't3',
        category: 'business_initiated',
        type: 'free_tier',
        rule: 'CBP2022_BUSINESS_INITIATED+FREE_TIER(2/1000)',
        rate: 6600,
        amount: 0,
      },
    ]);
    expect(units[0]!.closedAtMs).toBe(at('2022-05-10T13:00:00Z'));
    expect(units[1]!.expiresAtMs! - units[1]!.openedAtMs).toBe(24 * 3_600_000);
  });

  it('the reference rater agrees', async () => {
    await expectReferenceAgrees(events);
  });
});

describe("(b) PMP-2026-10 (reported): a free entry point's service messages and the 1,000 a month", () => {
  const day = '2026-10-05T00:00:00Z';
  const OTHER = '919800000077';

  it('are free entry point messages: they draw nothing from the allowance', async () => {
    const events: CoreEvent[] = [
      inbound(hours(day, 0), 'ad', {}, true),
      ...send(hours(day, 1), 'a1', null), // the answer: opens the window
      ...send(hours(day, 2), 'a2', null), // inside it
      inbound(hours(day, 3), 'in-b', { user: OTHER }),
      ...send(hours(day, 4), 'b1', null, { user: OTHER }), // the number's first service message of the month
    ];
    const { units } = await rate(events);
    expect(brief(units)).toEqual([
      {
        messages: 'a1',
        category: 'referral_conversion',
        type: 'free_entry_point',
        rule: 'FEP_OPEN',
        rate: 1400,
        amount: 0,
      },
      {
        messages: 'a2',
        category: 'referral_conversion',
        type: 'free_entry_point',
        rule: 'FEP_WINDOW',
        rate: 1400,
        amount: 0,
      },
      {
        messages: 'b1',
        category: 'service',
        type: 'free_tier',
        rule: 'PMP2026_SERVICE+FREE_TIER(1/1000)',
        rate: 1400,
        amount: 0,
      },
    ]);
    await expectReferenceAgrees(events);
  });
});

/** India with utility list rate 0.0020 and bands 1–3 at 0.0020, 4 at 0.0015, 5 on at 0.0010 (test data). */
function tieredIndia(): RateCard[] {
  const card = parseRateCardCsv(
    'TEST DATA, effective October 1, 2025\nMarket,Currency,Marketing,Utility,Authentication,Authentication-International,Service\nIndia,$US,0.0107,0.0020,0.0030,0.0300,0.0000\n',
    'test-usd-2025-10-01.csv',
  );
  const tiers = parseVolumeTierCsv(
    'TEST DATA tiers, effective October 1, 2025\nMarket,Currency,Category,From,To,Rate\nIndia,USD,Utility,1,3,0.0020\nIndia,USD,Utility,4,4,0.0015\nIndia,USD,Utility,5,,0.0010\n',
    'test-usd-2025-10-01-tiers.csv',
  );
  if (!card.ok || !tiers.ok) throw new Error('test card');
  const cards = attachVolumeTiers([card.value], tiers.value);
  if (!cards.ok) throw new Error(cards.error.message);
  return cards.value;
}

describe('(c) a free utility template inside the customer service window, under volume tiers', () => {
  it('shows the list rate, has no tier, and does not count toward the portfolio’s utility volume', async () => {
    const user = (n: number) => `91980000000${n}`;
    const events: CoreEvent[] = [
      logged('2025-10-10T10:00:00Z', 'u1', 'utility', user(1)),
      logged('2025-10-10T11:00:00Z', 'u2', 'utility', user(2)),
      logged('2025-10-10T12:00:00Z', 'u3', 'utility', user(3)),
      inbound(at('2025-10-10T13:00:00Z'), 'in', { user: user(4) }),
      logged('2025-10-10T13:30:00Z', 'free', 'utility', user(4)), // inside the window: free
      logged('2025-10-10T14:00:00Z', 'u4', 'utility', user(5)), // the 4th charged: band 4
    ];
    const { units } = await rate(events, { cards: tieredIndia() });
    expect(units.map((u) => [u.messages[0], u.type, u.tier?.count, u.rateMicros, u.amountMicros])).toEqual([
      ['u1', 'regular', 1, 2000, 2000],
      ['u2', 'regular', 2, 2000, 2000],
      ['u3', 'regular', 3, 2000, 2000],
      // Were it charged, it would be the 4th (0.0015): the list rate is shown, not a band.
      ['free', 'free_customer_service', undefined, 2000, 0],
      ['u4', 'regular', 4, 1500, 1500],
    ]);
    await expectReferenceAgrees(events, tieredIndia());
  });
});

describe('(d) per-message pricing (PMP-2025): a template delivered inside an open customer service window', () => {
  it('marketing and authentication are charged, utility and non-templates free (§5.1)', async () => {
    // October 2025, usd-2025-10-01, India: marketing 0.0107, utility 0.0014, authentication 0.0014.
    const events: CoreEvent[] = [
      inbound(at('2025-10-10T10:00:00Z'), 'in'),
      logged('2025-10-10T10:10:00Z', 'mkt', 'marketing'),
      logged('2025-10-10T10:20:00Z', 'util', 'utility'),
      logged('2025-10-10T10:30:00Z', 'auth', 'authentication'),
      logged('2025-10-10T10:40:00Z', 'text', null),
      logged('2025-10-11T10:00:00Z', 'util-after', 'utility'), // the window closed at 10:00: charged
      // Sent inside the window, delivered after it closed: judged at its delivery (§5.1, §3.4), charged.
      {
        ...logged('2025-10-11T09:59:00Z', 'util-late', 'utility'),
        deliveredAtMs: at('2025-10-11T10:30:00Z'),
      } as CoreEvent,
    ];
    const { units } = await rate(events);
    expect(units.map((u) => [u.messages[0], u.category, u.type, u.amountMicros])).toEqual([
      ['mkt', 'marketing', 'regular', 10_700],
      ['util', 'utility', 'free_customer_service', 0],
      ['auth', 'authentication', 'regular', 1_400],
      ['text', 'service', 'free_customer_service', 0],
      ['util-after', 'utility', 'regular', 1_400],
      ['util-late', 'utility', 'regular', 1_400],
    ]);
    await expectReferenceAgrees(events);
  });
});

describe('(e) §7: a number the library cannot place', () => {
  it('takes the country its leading digits name under a shared calling code, before the main country', () => {
    // +7 7… is Kazakhstan and +1 242 the Bahamas (§7 "mind the shared codes"), also when the number is too
    // short to be valid; the main country (Russia, the US) only when nothing narrower is known.
    expect(placeRecipient('77012345')).toEqual({ country: 'KZ', callingCode: '7', isFromCallingCode: true });
    expect(placeRecipient('1242555')).toEqual({ country: 'BS', callingCode: '1', isFromCallingCode: true });
    expect(placeRecipient('7999123')).toEqual({ country: 'RU', callingCode: '7', isFromCallingCode: true });
    expect(placeRecipient('1999555123')).toEqual({
      country: 'US',
      callingCode: '1',
      isFromCallingCode: true,
    });
  });

  it('prices it so, with MARKET_FROM_CALLING_CODE naming the country; no calling code: UNKNOWN_RECIPIENT', async () => {
    const table = parseMarketTable(
      'country,calling_code,area_codes,market,valid_from,valid_to,source\nUS,1,,North America,,,meta\nRU,7,,Russia,,,meta\n',
    );
    if (!table.ok) throw new Error(table.error.message);
    const markets = createMarketResolver(table.value, { isReportedRulesEnabled: true });
    expect(markets.resolve('1242555', '2025-10-10')).toMatchObject({
      country: 'BS',
      market: 'Other', // not North America, the US's
      finding: { code: 'MARKET_FROM_CALLING_CODE', country: 'BS', calling_code: '1' },
    });
    expect(markets.resolve('99912345', '2025-10-10')).toMatchObject({
      country: null,
      market: null,
      finding: { code: 'UNKNOWN_RECIPIENT', number: '99912345' },
    });
  });
});

describe('(f) a free entry point opened before 2023-03-01 and still open after it', () => {
  it('keeps the 24 h of the day it opened on; one opened from 2023-03-01 lasts 72 h (§2, §4)', async () => {
    const events: CoreEvent[] = [
      inbound(at('2023-02-28T10:00:00Z'), 'ad', {}, true),
      logged('2023-02-28T20:00:00Z', 'a1', null), // opens 24 h, until 03-01 20:00
      logged('2023-03-01T19:59:59Z', 't1', 'marketing'), // inside it: free
      logged('2023-03-01T20:00:00Z', 't2', 'marketing'), // it ended (half-open): a new conversation
      inbound(at('2023-03-02T10:00:00Z'), 'ad2', {}, true),
      logged('2023-03-02T11:00:00Z', 'a2', null), // after the switch: 72 h, until 03-05 11:00
      logged('2023-03-05T10:59:59Z', 't3', 'marketing'), // inside it: free
    ];
    const { units } = await rate(events);
    expect(
      units.map((u) => [u.messages.join('+'), u.category, (u.expiresAtMs! - u.openedAtMs) / 3_600_000]),
    ).toEqual([
      ['a1+t1', 'referral_conversion', 24],
      ['t2', 'business_initiated', 24],
      ['a2+t3', 'referral_conversion', 72],
    ]);
    await expectReferenceAgrees(events);
  });
});

describe('(g) template_category_update: when a new category takes effect', () => {
  const change: CoreEvent = {
    kind: 'template_category_update',
    atMs: at('2025-10-10T12:00:00Z'),
    waba: 'W1',
    templateName: 'order_update',
    templateId: '111',
    templateLanguage: 'en_US',
    previousCategory: 'utility',
    newCategory: 'marketing',
  };
  const named = (iso: string, id: string): CoreEvent =>
    ({ ...logged(iso, id, 'utility'), templateName: 'order_update' }) as CoreEvent;

  it('from the completed change on, never before it: earlier sends keep the category they were sent under', async () => {
    // PMP-2025, October 2025, India: utility 0.0014, marketing 0.0107; sent outside any window.
    const events = [
      named('2025-10-10T11:59:59Z', 'before'),
      named('2025-10-10T12:00:00Z', 'same-instant'),
      named('2025-10-11T09:00:00Z', 'after'),
      change,
    ];
    const { units, findings } = await rate(events);
    expect(units.map((u) => [u.messages[0], u.category, u.amountMicros])).toEqual([
      ['before', 'utility', 1_400],
      ['same-instant', 'marketing', 10_700],
      ['after', 'marketing', 10_700],
    ]);
    expect(findings.filter((f) => f.code === 'TEMPLATE_RECATEGORISED')).toHaveLength(1);
  });

  it("Meta's previous_category differing from the category a send was rated under is said, no amount changed", async () => {
    // The send log says utility; Meta's completed change says the template was marketing until 12:00 (a change
    // wameter was not fed, or a stale send log): the send before it stays utility, with a finding naming both.
    const fromMarketing = { ...change, previousCategory: 'marketing', newCategory: 'utility' } as CoreEvent;
    const events = [
      named('2025-10-09T09:00:00Z', 'b1'),
      named('2025-10-10T11:59:59Z', 'b2'),
      named('2025-10-10T12:00:00Z', 'a1'),
      fromMarketing,
    ];
    for (const order of [events, [...events].reverse()]) {
      const { units, findings } = await rate(order);
      expect(units.map((u) => [u.messages[0], u.category, u.amountMicros])).toEqual([
        ['b1', 'utility', 1_400],
        ['b2', 'utility', 1_400],
        ['a1', 'utility', 1_400],
      ]);
      expect(findings.filter((f) => f.code === 'PREVIOUS_CATEGORY_DISAGREES')).toEqual([
        {
          code: 'PREVIOUS_CATEGORY_DISAGREES',
          message:
            "WABA W1: sends of template \"order_update\" (first: b1, sent 2025-10-09T09:00:00Z) were rated utility, but Meta's template_category_update of 2025-10-10T12:00:00Z says the template was marketing until then (previous_category): the send log's category, or a change of category wameter was not fed, is wrong for some of them; they stay rated utility: check the send log and feed Meta's template_category_update webhooks, then re-rate",
          waba: 'W1',
          template: 'order_update',
          category: 'utility',
          previous_category: 'marketing',
          changed_at: '2025-10-10T12:00:00Z',
          message_id: 'b1',
          count: 2,
        },
      ]);
    }
    // A stream whose lateness covers the change says the same (one that rated a send before reading the change
    // says nothing of that send: docs/decisions.md, (g)).
    const stream = await rate(
      [...events].sort((a, b) => a.atMs - b.atMs),
      { maxLatenessMs: 2 * 86_400_000, flushEveryEvents: 1 },
    );
    expect(stream.findings).toEqual((await rate(events)).findings);
    // Agreeing with what wameter had (or no previous_category at all): nothing said.
    for (const agreeing of [change, { ...change, previousCategory: undefined }] as CoreEvent[]) {
      const { findings } = await rate([named('2025-10-10T11:00:00Z', 'b'), agreeing]);
      expect(findings.map((f) => f.code)).not.toContain('PREVIOUS_CATEGORY_DISAGREES');
    }
    // Templates of the name in several languages: the send log names none, so nothing is compared.
    const spanish = {
      ...fromMarketing,
      templateId: '222',
      templateLanguage: 'es',
      previousCategory: 'utility',
    };
    const { findings } = await rate([
      named('2025-10-10T11:00:00Z', 'b'),
      fromMarketing,
      spanish as CoreEvent,
    ]);
    expect(findings.map((f) => f.code)).not.toContain('PREVIOUS_CATEGORY_DISAGREES');
  });

  it('by the send, not the delivery: a message sent before the change and delivered after it keeps its category', async () => {
    const sentBefore = {
      ...named('2025-10-10T11:00:00Z', 'late'),
      deliveredAtMs: at('2025-10-10T13:00:00Z'),
    } as CoreEvent;
    const { units } = await rate([sentBefore, change]);
    expect(units.map((u) => [u.messages[0], u.category, u.amountMicros])).toEqual([
      ['late', 'utility', 1_400],
    ]);
  });
});

describe("(h) a country's first date of authentication-international rates, in the WABA's time zone", () => {
  it("is read as the eras are: the delivery's local date, not UTC nor the recipient's (§2, §5.4)", async () => {
    // An Indonesian business in Pacific/Chatham (UTC+12:45 in June), eligible since 2024-01-01: India's rate
    // applies from 2024-07-01, which begins there at 2024-06-30T11:15Z — still June 30th in UTC and in India.
    const chatham = {
      waba: 'W1',
      timeZone: 'Pacific/Chatham',
      currency: 'USD',
      portfolio: 'P1',
      primaryCountry: 'ID',
      authInternational: { startMs: at('2024-01-01T00:00:00Z'), exceptionsMs: {} },
    };
    const events = [
      logged('2024-06-30T11:14:59Z', 'before', 'authentication'), // 2024-06-30 23:59:59 there
      logged('2024-06-30T11:15:00Z', 'after', 'authentication', '919812345678'), // 2024-07-01 00:00 there
    ];
    const { units } = await rate(events, { accounts: [chatham] });
    expect(units.map((u) => [u.messages[0], u.era, u.category])).toEqual([
      ['before', 'CBP-2023', 'authentication'],
      ['after', 'CBP-2023', 'authentication_international'],
    ]);
    // The business's own start time is an instant: a later one holds the rate back whatever the date.
    const later = {
      ...chatham,
      authInternational: { startMs: at('2024-06-30T12:00:00Z'), exceptionsMs: {} },
    };
    const held = await rate(events, { accounts: [later] });
    expect(held.units.map((u) => u.category)).toEqual(['authentication', 'authentication']);
  });
});

describe("the bundled cards' known gaps are left unpriced, never guessed (docs/rate-cards.md)", () => {
  it('Egypt authentication-international from 2025-02-01 to 2025-09-30: NO_RATE; from 2025-10-01: the card', async () => {
    const abroad = {
      ...defaultAccount('W1'),
      primaryCountry: 'IN',
      authInternational: { startMs: at('2025-01-01T00:00:00Z'), exceptionsMs: {} },
    };
    const EGYPT = '201001234567';
    const events = [
      logged('2025-03-10T10:00:00Z', 'mar', 'authentication', EGYPT), // CBP-2024-11
      logged('2025-08-10T10:00:00Z', 'aug', 'authentication', EGYPT), // PMP-2025, priced from usd-2024-11-01
      logged('2025-10-10T10:00:00Z', 'oct', 'authentication', EGYPT), // usd-2025-10-01: 0.0650
    ];
    const { units, findings } = await rate(events, { accounts: [abroad] });
    expect(units.map((u) => [u.messages[0], u.category, u.rateCard, u.amountMicros])).toEqual([
      ['mar', 'authentication_international', 'usd-2024-11-01', null],
      ['aug', 'authentication_international', 'usd-2024-11-01', null],
      ['oct', 'authentication_international', 'usd-2025-10-01', 65_000],
    ]);
    expect(findings.find((f) => f.code === 'NO_RATE')).toMatchObject({
      market: 'Egypt',
      category: 'authentication_international',
      date: '2025-03-10',
      last_date: '2025-08-10',
      count: 2,
    });
  });
});
