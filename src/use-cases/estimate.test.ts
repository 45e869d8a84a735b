import { beforeAll, describe, expect, it } from 'vitest';
import type { CoreEvent, TemplateCategory } from '../core/events.js';
import { parseMicros } from '../core/money.js';
import { normalisePhone } from '../core/phone.js';
import {
  EstimateSession,
  estimateList,
  estimateRecipients,
  parseRecipientsCsv,
  recipientsFromPhones,
  totalsOf,
  type EstimateJson,
  type EstimateLine,
  type EstimateRequest,
} from './estimate.js';
import { loadRatingSetup, type RatingSetup } from './load-rating-setup.js';

const at = (iso: string) => Date.parse(iso);
const HOUR = 3_600_000;
const W = 'W1';
const PN = 'PN1';

function inbound(atMs: number, user: string, id: string, hasReferral = false): CoreEvent {
  return { kind: 'inbound', atMs, waba: W, business: PN, user, id, hasReferral };
}
function delivered(atMs: number, user: string, id: string, template: TemplateCategory | null): CoreEvent {
  return { kind: 'outbound', atMs, waba: W, business: PN, user, id, template, deliveredAtMs: atMs + 2000 };
}

let setup: RatingSetup;
beforeAll(async () => {
  const loaded = await loadRatingSetup({});
  if (!loaded.ok) throw new Error(loaded.error.message);
  setup = loaded.value;
});

async function estimate(
  csv: string,
  events: CoreEvent[],
  request: Partial<EstimateRequest> & Pick<EstimateRequest, 'template' | 'atMs'>,
): Promise<EstimateJson> {
  const outcome = await estimateRecipients(
    csv,
    async (add) => {
      for (const event of events) add(event);
    },
    setup,
    { waba: W, business: PN, ...request },
  );
  if (!outcome.ok) throw new Error(outcome.error.message);
  return outcome.value.estimate;
}

function rateOf(market: string, category: 'marketing' | 'utility', date: string): string {
  const card = setup.rateBook.cardInForce('USD', date);
  const micros = card?.rates.get(market)?.[category];
  if (micros === undefined) throw new Error(`no ${category} rate for ${market} on ${date}`);
  return String(micros / 1_000_000);
}

function sumOfLines(result: EstimateJson): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const line of result.lines) {
    if (line.free || line.price === null) continue;
    const micros = parseMicros(line.price);
    if (!micros.ok) throw new Error(micros.error.message);
    sums[line.currency] = (sums[line.currency] ?? 0) + micros.value;
  }
  return sums;
}

const PMP_NOW = at('2025-10-15T12:00:00Z');
const IN_WINDOW = '919876543210';
const IN_FEP = '919876543211';
const OUTSIDE = '919876543212';

describe('estimate: per-message pricing (PMP-2025)', () => {
  const events = () => [
    inbound(PMP_NOW - 2 * HOUR, IN_WINDOW, 'in-csw'),
    inbound(PMP_NOW - 5 * HOUR, IN_FEP, 'in-ad', true),
    delivered(PMP_NOW - 4 * HOUR, IN_FEP, 'answer-ad', null),
  ];

  it('a utility template to a recipient inside an open customer service window is free', async () => {
    const result = await estimate(`phone\n+${IN_WINDOW}\n`, events(), { template: 'utility', atMs: PMP_NOW });
    expect(result.lines[0]).toMatchObject({ phone: IN_WINDOW, country: 'IN', market: 'India', free: true });
    expect(result.lines[0]!.price).toBe('0');
    expect(result.lines[0]!.reason).toContain('customer service window');
  });

  it('a Brazilian recipient written either way is inside the window its other form opened', async () => {
    for (const [user, written] of [
      ['552187654321', '+55 21 98765-4321'],
      ['5521987654321', '+55 21 8765-4321'],
    ] as const) {
      const result = await estimate(`phone\n${written}\n`, [inbound(PMP_NOW - 2 * HOUR, user, 'in-br')], {
        template: 'utility',
        atMs: PMP_NOW,
      });
      expect(result.lines[0]).toMatchObject({ country: 'BR', free: true, price: '0' });
      expect(result.lines[0]!.reason).toContain('customer service window');
    }
  });

  it('a marketing template inside an open free entry point window is free', async () => {
    const result = await estimate(`phone\n${IN_FEP}\n`, events(), { template: 'marketing', atMs: PMP_NOW });
    expect(result.lines[0]).toMatchObject({ free: true, price: '0', market: 'India' });
    expect(result.lines[0]!.reason).toContain('free entry point');
  });

  it('a recipient outside every window pays the market rate', async () => {
    const result = await estimate(`phone\n${OUTSIDE}\n`, events(), { template: 'utility', atMs: PMP_NOW });
    expect(result.lines[0]).toMatchObject({
      free: false,
      currency: 'USD',
      price: rateOf('India', 'utility', '2025-10-15'),
    });
    expect(result.lines[0]!.reason).toContain('outside any customer service window');
    // The planned send is no message of Meta's: the reason names it as the recipient's, not by a made-up id.
    expect(result.lines[0]!.reason).toMatch(/^utility template to this recipient outside/);
    expect(result.lines[0]!.reason).not.toContain('line-');
    const marketing = await estimate(`phone\n${IN_WINDOW}\n`, events(), {
      template: 'marketing',
      atMs: PMP_NOW,
    });
    expect(marketing.lines[0]!.price).toBe(rateOf('India', 'marketing', '2025-10-15'));
  });

  it('the window closes: the same recipient a day later pays', async () => {
    const result = await estimate(`phone\n${IN_WINDOW}\n`, events(), {
      template: 'utility',
      atMs: PMP_NOW + 23 * HOUR,
    });
    expect(result.lines[0]!.free).toBe(false);
  });

  it('a bad number is listed in invalid with its line, and the others are still quoted', async () => {
    const csv = `name,phone\nAsha,${IN_WINDOW}\nBad,hello\nShort,12345\nNowhere,+999 123 4567\n"Ravi, Jr.",00${OUTSIDE}\n`;
    const result = await estimate(csv, events(), { template: 'utility', atMs: PMP_NOW });
    expect(result.invalid.map((i) => [i.line, i.phone])).toEqual([
      [3, 'hello'],
      [4, '12345'],
      [5, '+999 123 4567'],
    ]);
    expect(result.invalid.every((i) => i.error.length > 0)).toBe(true);
    expect(result.lines.map((l) => [l.phone, l.name])).toEqual([
      [IN_WINDOW, 'Asha'],
      [OUTSIDE, 'Ravi, Jr.'],
    ]);
  });

  it('a national number without its country code is listed as invalid, not quoted as another country', async () => {
    // 9876543210 is an Indian mobile written without +91: by its first digits, +98 (Iran), priced as Other.
    const csv = `phone\n9876543210\n${OUTSIDE}\n`;
    const result = await estimate(csv, events(), { template: 'marketing', atMs: PMP_NOW });
    expect(result.invalid.map((i) => [i.line, i.phone])).toEqual([[2, '9876543210']]);
    expect(result.invalid[0]!.error).toBe(
      '9876543210 is not a valid number of any country (by its first digits it would be priced as IR): if it lacks its country code, write it with one (e.g. +91 98765 43210); if it has one, check the number — no number of IR is written so (unassigned, or a digit too many or too few)',
    );
    expect(result.lines.map((l) => l.phone)).toEqual([OUTSIDE]);
  });

  it('warns when the rate card in force is more than half a year older than the send date', async () => {
    const fresh = await estimate(`phone\n${OUTSIDE}\n`, events(), { template: 'marketing', atMs: PMP_NOW });
    expect(fresh.warnings).toBeUndefined();
    const later = await estimate(`phone\n${OUTSIDE}\n`, events(), {
      template: 'marketing',
      atMs: at('2026-12-02T12:00:00Z'),
    });
    expect(later.warnings).toEqual([
      expect.stringContaining(
        'the USD rate card in force on the send date 2026-12-02 (usd-2025-10-01, effective 2025-10-01) took effect 427 days before it',
      ),
      // Rules only reported by third parties are never applied without a word, in a quote either.
      expect.stringMatching(/^REPORTED_RULES: WABA W1: messages .* were rated under PMP-2026-10/),
    ]);
    // A past send date: the card in force then is named, never called the newest loaded (usd-2025-10-01 is).
    const past = await estimate(`phone\n${OUTSIDE}\n`, events(), {
      template: 'marketing',
      atMs: at('2025-09-15T12:00:00Z'),
    });
    expect(past.warnings).toEqual([
      'the USD rate card in force on the send date 2025-09-15 (usd-2024-11-01, effective 2024-11-01) took effect 318 days before it: Meta changes its rates every few months, so import its card in force on 2025-09-15 (--rate-cards; for the service, WAMETER_RATE_CARDS or "rateCards") before trusting these prices',
      expect.stringMatching(/^RATE_CARD_OF_OTHER_MODEL: /),
    ]);
  });

  it('a quote without a price says why in the warnings, which its reason points to', async () => {
    const result = await estimate(`phone\n8801712345678\n`, events(), {
      template: 'marketing',
      atMs: at('2026-10-05T12:00:00Z'),
    });
    expect(result.lines[0]).toMatchObject({ market: 'Bangladesh', price: null, free: false });
    expect(result.lines[0]!.reason).toMatch(
      /charged, but no price is known \(Bangladesh, rate card usd-2025-10-01\): see warnings$/,
    );
    expect(result.totals.unpriced).toBe(1);
    expect(result.warnings).toContainEqual(
      expect.stringMatching(
        /^NO_RATE: no row for market "Bangladesh" .*\(--no-reported; for the service, WAMETER_REPORTED_RULES=off or "reportedRules": false\) it is priced in its former region$/,
      ),
    );
  });

  it('totals equal the sum of the lines', async () => {
    const csv = ['phone', IN_WINDOW, IN_FEP, OUTSIDE, '919800000001', '14155550123', '447400123456'].join(
      '\n',
    );
    const result = await estimate(csv, events(), { template: 'utility', atMs: PMP_NOW });
    const { totals } = result;
    expect(totals.count).toBe(result.lines.length);
    expect(totals.free).toBe(result.lines.filter((l) => l.free).length);
    expect(totals.charged).toBe(result.lines.filter((l) => !l.free).length);
    expect(totals.free + totals.charged).toBe(totals.count);
    const sums = sumOfLines(result);
    for (const [currency, entry] of Object.entries(totals.by_currency)) {
      const amount = parseMicros(entry.amount ?? 'no amount');
      expect(amount.ok && amount.value).toBe(sums[currency] ?? 0);
    }
    expect(totals.free).toBe(2);
    expect(totals.charged).toBe(4);
  });

  it('a 5,000-recipient CSV is quoted', async () => {
    const rows = ['phone,segment'];
    for (let i = 0; i < 5000; i++) rows.push(`+91 98${String(i).padStart(8, '0')},s${i % 7}`);
    const result = await estimate(rows.join('\n'), events(), { template: 'marketing', atMs: PMP_NOW });
    expect(result.lines).toHaveLength(5000);
    expect(result.invalid).toEqual([]);
    expect(result.totals.count).toBe(5000);
    const sums = sumOfLines(result);
    const amount = parseMicros(result.totals.by_currency.USD!.amount ?? 'no amount');
    expect(amount.ok && amount.value).toBe(sums.USD);
  });
});

describe('estimate: conversation-based pricing', () => {
  it('a recipient with an open marketing conversation is free for another marketing template', async () => {
    const now = at('2024-03-12T12:00:00Z');
    const events = [delivered(now - 3 * HOUR, IN_WINDOW, 'promo', 'marketing')];
    const result = await estimate(`phone\n${IN_WINDOW}\n${OUTSIDE}\n`, events, {
      template: 'marketing',
      atMs: now,
    });
    expect(result.lines[0]).toMatchObject({ free: true, price: '0', market: 'India' });
    expect(result.lines[0]!.reason).toContain('open marketing conversation');
    expect(result.lines[1]!.free).toBe(false);
  });

  it("a number listed twice rides the conversation the campaign's first send opened, named by its line, not an id", async () => {
    const now = at('2024-03-12T12:00:00Z');
    const result = await estimate(`phone\n${OUTSIDE}\n${IN_WINDOW}\n${OUTSIDE}\n`, [], {
      template: 'utility',
      atMs: now,
    });
    expect(result.lines.map((line) => line.free)).toEqual([false, false, true]);
    expect(result.lines[2]!.reason).toBe(
      "utility template to this recipient inside open utility conversation opened by this campaign's send to the recipient on line 2: no charge",
    );
  });

  it('the monthly free allowance shows up as the reason, and the 1,001st conversation is charged', async () => {
    const now = at('2022-06-15T12:00:00Z'); // CBP-2022: 1,000 free conversations per WABA per month
    const rows = ['phone'];
    for (let i = 0; i < 1001; i++) rows.push(`9198${String(i).padStart(8, '0')}`);
    const result = await estimate(rows.join('\n'), [], { template: 'marketing', atMs: now });
    expect(result.lines[0]!.free).toBe(true);
    expect(result.lines[0]!.reason).toContain('monthly free allowance');
    expect(result.lines[999]!.free).toBe(true);
    expect(result.lines[1000]!.free).toBe(false);
    expect(result.totals).toMatchObject({ count: 1001, free: 1000, charged: 1 });
  });
});

describe('recipients', () => {
  it('normalises numbers as people write them', () => {
    expect(normalisePhone('+91 98765-43210')).toEqual({ ok: true, value: '919876543210' });
    expect(normalisePhone('0091 (98765) 43210')).toEqual({ ok: true, value: '919876543210' });
    expect(normalisePhone('1.415.555.0123')).toEqual({ ok: true, value: '14155550123' });
    // The error names every mark the reading drops (dots and brackets too), so the writer knows what is wrong.
    expect(normalisePhone('+91 98765 4321O')).toEqual({
      ok: false,
      error:
        '"+91 98765 4321O" is not a phone number: only digits, with +, a leading 00, spaces, dashes, dots or brackets',
    });
  });

  it('a number a spreadsheet or script wrote as a decimal (919876543210.0) is refused, never read as another number', async () => {
    const decimal = /as a decimal number: format the phone column as text, without decimals/;
    for (const written of ['919876543210.0', '+491701234567.00', '5511987654321.0']) {
      const read = normalisePhone(written);
      expect(read.ok, written).toBe(false);
      if (!read.ok) expect(read.error).toMatch(decimal);
    }
    // So is one between invisible marks (a number copied from WhatsApp: U+202A … U+202C), not read as 9198765432100.
    const marked = normalisePhone('\u202a919876543210.0\u202c');
    expect(marked.ok).toBe(false);
    if (!marked.ok) expect(marked.error).toMatch(decimal);
    expect(normalisePhone('\u202a+91 98765 43210\u202c')).toEqual({ ok: true, value: '919876543210' });
    // Dots that group digits are still read as people write them.
    expect(normalisePhone('+49 170.123.4560')).toEqual({ ok: true, value: '491701234560' });
    // 491701234567.0 read as 4917012345670 is a valid German number: someone else, quoted without a word.
    const result = await estimate('phone\n491701234567.0\n491701234567\n', [], {
      template: 'marketing',
      atMs: at('2025-10-15T12:00:00Z'),
    });
    expect(result.lines.map((line) => line.phone)).toEqual(['491701234567']);
    expect(result.invalid).toEqual([
      { line: 2, phone: '491701234567.0', error: expect.stringMatching(decimal) },
    ]);
  });

  it('a number a spreadsheet shows in scientific notation (9.19877E+11) is refused, saying its digits are lost', () => {
    for (const written of ['9.19877E+11', '9,19877E+11', '5.5119E+12', '9.19876543210e11']) {
      expect(normalisePhone(written)).toEqual({
        ok: false,
        error: `"${written}" is a number in scientific notation, as a spreadsheet shows a long number: its last digits are lost; format the phone column as text and copy the numbers in again from where they came from`,
      });
    }
  });

  it("a number after a spreadsheet's text mark ('+919876543210, as wameter's own CSVs write it) is read", async () => {
    const result = await estimate("phone\n'+919876543210\n' 91 98765 43211\n''+919876543212\n'abc\n", [], {
      template: 'marketing',
      atMs: at('2025-10-15T12:00:00Z'),
    });
    expect(result.lines.map((line) => line.phone)).toEqual(['919876543210', '919876543211']);
    // One mark only, and what follows it must be a number.
    expect(result.invalid.map((line) => line.phone)).toEqual(["''+919876543212", "'abc"]);
    const listed = recipientsFromPhones(["'+919876543210"]);
    expect(listed.recipients.map((recipient) => recipient.phone)).toEqual(['919876543210']);
  });

  it('a CSV without a phone column is refused with the columns it has', () => {
    const parsed = parseRecipientsCsv('name,mobile\nAsha,9198\n');
    expect(parsed).toMatchObject({ ok: false, error: { code: 'NO_PHONE_COLUMN' } });
    expect(!parsed.ok && parsed.error.message).toContain('name, mobile');
  });

  it.each(['', '\n\r\n', '\ufeff'])(
    'an empty CSV (%j) is refused as empty, not as a header without "phone"',
    (text) => {
      const parsed = parseRecipientsCsv(text);
      expect(parsed).toMatchObject({ ok: false, error: { code: 'NO_PHONE_COLUMN' } });
      expect(!parsed.ok && parsed.error.message).toBe(
        'the recipients CSV is empty: check that it is the file you meant (it needs a header row with a "phone" column, then a recipient a line)',
      );
    },
  );

  it.each([
    ['";"', 'phone;name\n+55 11 98765-4321;Ana\n'],
    ['a tab', 'Phone\tname\n+55 11 98765-4321\tAna\n'],
  ])(
    'a CSV separated by %s (a spreadsheet of a decimal-comma locale) is refused saying to save it with commas',
    (separator, text) => {
      const parsed = parseRecipientsCsv(text);
      expect(parsed).toMatchObject({ ok: false, error: { code: 'NO_PHONE_COLUMN' } });
      expect(!parsed.ok && parsed.error.message).toContain(
        `its columns are separated by ${separator}, not by commas: save the file as comma-separated CSV`,
      );
    },
  );

  it('a quoted field never closed is refused with its line: the rows after it are not swallowed into it', () => {
    const rows = Array.from({ length: 50 }, (_, i) => `91987654${String(3200 + i)},n${i}`);
    const parsed = parseRecipientsCsv(['phone,name', '919876543210,"Smith, J', ...rows].join('\n'));
    expect(parsed).toEqual({
      ok: false,
      error: {
        code: 'UNCLOSED_QUOTE',
        message:
          'the recipients CSV opens a quoted field on line 2 that is never closed, so every line after it would be part of that field: close the quote (a quote inside a quoted field is written twice, "")',
      },
    });
    // Closed (a quote inside written twice, a line break inside kept): every row read.
    const closed = parseRecipientsCsv(['phone,name', '919876543210,"Smith, ""J""\nJr"', ...rows].join('\n'));
    expect(closed.ok && closed.value.recipients.length).toBe(51);
    expect(closed.ok && closed.value.recipients[0]!.columns).toEqual({ name: 'Smith, "J"\nJr' });
  });

  it('several WABAs in the events and no --waba: an error asking for it', async () => {
    const events: CoreEvent[] = [
      inbound(PMP_NOW, IN_WINDOW, 'a'),
      { ...(inbound(PMP_NOW, IN_WINDOW, 'b') as object), waba: 'W2' } as CoreEvent,
    ];
    const outcome = await estimateRecipients(
      `phone\n${IN_WINDOW}\n`,
      async (add) => events.forEach(add),
      setup,
      { template: 'utility', atMs: PMP_NOW },
    );
    expect(outcome).toMatchObject({ ok: false, error: { code: 'WABA_REQUIRED' } });
  });

  it('one WABA and one number in the events: they are the default sender', async () => {
    const outcome = await estimateRecipients(
      `phone\n${IN_WINDOW}\n`,
      async (add) => add(inbound(PMP_NOW - HOUR, IN_WINDOW, 'a')),
      setup,
      { template: 'utility', atMs: PMP_NOW },
    );
    expect(outcome.ok && [outcome.value.waba, outcome.value.business]).toEqual([W, PN]);
    expect(outcome.ok && outcome.value.estimate.lines[0]!.free).toBe(true);
  });
});

describe('estimate: the state at the send time', () => {
  it('a user who writes after a past send time does not open a window for it', async () => {
    const sendAt = at('2025-10-31T23:00:00Z');
    const events = [inbound(sendAt + 22 * 60_000, IN_WINDOW, 'later')];
    const result = await estimate(`phone\n${IN_WINDOW}\n`, events, { template: 'utility', atMs: sendAt });
    expect(result.lines[0]).toMatchObject({ free: false, price: rateOf('India', 'utility', '2025-10-31') });
    expect(result.lines[0]!.reason).not.toContain('user wrote');
    // The same events, a send after the user wrote: the window is open.
    const later = await estimate(`phone\n${IN_WINDOW}\n`, events, {
      template: 'utility',
      atMs: sendAt + HOUR,
    });
    expect(later.lines[0]!.free).toBe(true);
  });

  it('a delivery known only after the send time has not opened a conversation yet (CBP)', async () => {
    const now = at('2024-03-12T12:00:00Z');
    const sentBefore: CoreEvent = {
      kind: 'outbound',
      atMs: now - 10 * 60_000,
      waba: W,
      business: PN,
      user: IN_WINDOW,
      id: 'promo',
      template: 'marketing',
      deliveredAtMs: now + 10 * 60_000,
    };
    const result = await estimate(`phone\n${IN_WINDOW}\n`, [sentBefore], {
      template: 'marketing',
      atMs: now,
    });
    expect(result.lines[0]!.reason).not.toContain('open marketing conversation');
    expect(result.lines[0]!.free).toBe(false);
    const after = await estimate(`phone\n${IN_WINDOW}\n`, [sentBefore], {
      template: 'marketing',
      atMs: now + HOUR,
    });
    expect(after.lines[0]!.reason).toContain('open marketing conversation');
  });

  it('a session told the send time later (no time up front) ignores the later events too', () => {
    const sendAt = at('2025-10-31T23:00:00Z');
    const session = new EstimateSession(setup);
    session.add(inbound(sendAt + 22 * 60_000, IN_WINDOW, 'later'));
    const outcome = session.finish(recipientsFromPhones([IN_WINDOW]), {
      template: 'utility',
      atMs: sendAt,
      waba: W,
      business: PN,
    });
    expect(outcome.ok && outcome.value.estimate.lines[0]!.free).toBe(false);
  });
});

describe('estimate: the sending business number belongs to the sending WABA', () => {
  const otherWaba = (event: CoreEvent): CoreEvent => ({ ...event, waba: 'W2', business: 'PN2' }) as CoreEvent;
  const events = () => [
    inbound(PMP_NOW - HOUR, OUTSIDE, 'own'),
    otherWaba(inbound(PMP_NOW - HOUR, IN_WINDOW, 'theirs')),
  ];

  it("another WABA's number is refused, never quoted against that WABA's users", async () => {
    const outcome = await estimateRecipients(
      `phone\n${IN_WINDOW}\n`,
      async (add) => events().forEach(add),
      setup,
      { template: 'utility', atMs: PMP_NOW, waba: W, business: 'PN2' },
    );
    expect(outcome).toMatchObject({ ok: false, error: { code: 'BUSINESS_NOT_OF_WABA', owners: ['W2'] } });
    expect(!outcome.ok && outcome.error.message).toContain('pass one of its numbers with --business (PN1)');
  });

  it('a number the events never show is quoted with no state by default, and refused when asked', async () => {
    const feed = async (add: (event: CoreEvent) => void) => events().forEach(add);
    const request = { template: 'utility' as const, atMs: PMP_NOW, waba: W, business: 'PN-NEW' };
    const accepted = await estimateRecipients(`phone\n${IN_WINDOW}\n`, feed, setup, request);
    expect(accepted.ok && accepted.value.estimate.lines[0]!.free).toBe(false);
    // Said, since a typo is quoted the same way: the quote knows nothing of the number's windows.
    expect(accepted.ok && accepted.value.estimate.warnings).toEqual([
      `business number PN-NEW sends in none of WABA ${W}'s traffic (its numbers: PN1): quoted with no open customer service window or free entry point, which are per business number; if it has sent before, check --business`,
    ]);
    const refused = await estimateRecipients(`phone\n${IN_WINDOW}\n`, feed, setup, {
      ...request,
      isUnknownBusinessAccepted: false,
    });
    expect(refused).toMatchObject({ ok: false, error: { code: 'BUSINESS_NOT_OF_WABA', owners: [] } });
  });

  it('a WABA the traffic never shows is quoted with no history, and said so; a number given as the WABA is refused', async () => {
    const feed = async (add: (event: CoreEvent) => void) => events().forEach(add);
    const request = { template: 'utility' as const, atMs: PMP_NOW, waba: 'W-TYPO', business: 'PN-TYPO' };
    const quoted = await estimateRecipients(`phone\n${IN_WINDOW}\n`, feed, setup, request);
    expect(quoted.ok && quoted.value.estimate.lines[0]!.free).toBe(false);
    expect(quoted.ok && quoted.value.estimate.warnings?.[0]).toBe(
      `WABA W-TYPO sends in none of the traffic given (it shows WABA ${[W, 'W2'].sort().join(', ')}): quoted as a sender with no history of its own (no open customer service window or free entry point); if it has sent before, check --waba`,
    );
    // The sender the traffic shows: nothing to say.
    const known = await estimateRecipients(`phone\n${IN_WINDOW}\n`, feed, setup, {
      ...request,
      waba: W,
      business: 'PN1',
    });
    expect(known.ok && known.value.estimate.warnings).toBeUndefined();
    // Without --business: a WABA the events never show is named so, and a business number taken for one too.
    const { business: _business, ...withoutBusiness } = request;
    const unknown = await estimateRecipients(`phone\n${IN_WINDOW}\n`, feed, setup, withoutBusiness);
    expect(!unknown.ok && unknown.error.message).toBe(
      `WABA W-TYPO sends in none of the events (they show WABA ${[W, 'W2'].sort().join(', ')}): check --waba, or, for a WABA that has never sent, pass --business (the phone_number_id that would send)`,
    );
    const number = await estimateRecipients(`phone\n${IN_WINDOW}\n`, feed, setup, {
      ...withoutBusiness,
      waba: 'PN2',
    });
    expect(!number.ok && number.error.message).toBe(
      'PN2 is a business number (of WABA W2), not a WABA: pass the WABA with --waba and the number with --business',
    );
  });

  it('messages name the inputs the way the caller does', async () => {
    const twoNumbers = [
      inbound(PMP_NOW, IN_WINDOW, 'a'),
      { ...inbound(PMP_NOW, OUTSIDE, 'b'), business: 'PN9' } as CoreEvent,
    ];
    const outcome = await estimateList(
      recipientsFromPhones([IN_WINDOW]),
      async (add) => twoNumbers.forEach(add),
      setup,
      { template: 'utility', atMs: PMP_NOW, senderNames: { waba: '"waba"', business: '"business"' } },
    );
    expect(outcome).toMatchObject({ ok: false, error: { code: 'BUSINESS_REQUIRED' } });
    expect(!outcome.ok && outcome.error.message).toContain('pass "business"');
    expect(!outcome.ok && outcome.error.message).not.toContain('--');
  });
});

describe('recipients from a list of phones', () => {
  it('numbers entries from 1 and lists a blank entry as invalid instead of dropping it', () => {
    const list = recipientsFromPhones(['+91 98765 43210', '', 'nope', '  ']);
    expect(list.recipients.map((r) => [r.line, r.phone])).toEqual([[1, '919876543210']]);
    expect(list.invalid.map((i) => [i.line, i.phone, i.error])).toEqual([
      [2, '', 'no phone number'],
      [3, 'nope', expect.stringContaining('not a phone number')],
      [4, '  ', 'no phone number'],
    ]);
  });
});

describe('recipients: what one list may ask (memory is bounded by the list, not columns × rows)', () => {
  const wideHeader = (columns: number) =>
    ['phone', ...Array.from({ length: columns - 1 }, (_, i) => `c${i}`)].join(',');

  it('a row keeps only the fields it has: a wide header never gives every row every column', () => {
    const parsed = parseRecipientsCsv(`${wideHeader(150)}\n+91 98765 43210\n+91 98765 43211,Asha\n`);
    if (!parsed.ok) throw new Error(parsed.error.message);
    expect(parsed.value.recipients.map((r) => r.columns)).toEqual([{}, { c0: 'Asha' }]);
  });

  it('a column named after a property of every JavaScript object ("__proto__") is kept as any other', () => {
    const parsed = parseRecipientsCsv('phone,__proto__,constructor\n+91 98765 43210,a,b\n');
    if (!parsed.ok) throw new Error(parsed.error.message);
    const { columns } = parsed.value.recipients[0]!;
    expect(Object.keys(columns)).toEqual(['__proto__', 'constructor']);
    expect(JSON.parse(JSON.stringify(columns))).toEqual(JSON.parse('{"__proto__":"a","constructor":"b"}'));
  });

  it('an estimate line echoes the fields its row has, and a full row echoes every column', async () => {
    const csv = `phone,name,segment\n${IN_WINDOW}\n${OUTSIDE},Ravi,gold\n${IN_FEP},"",\n`;
    const result = await estimate(csv, [], { template: 'utility', atMs: PMP_NOW });
    expect(result.lines.map((line) => [line.phone, line.name, line.segment])).toEqual([
      [IN_WINDOW, undefined, undefined],
      [OUTSIDE, 'Ravi', 'gold'],
      [IN_FEP, '', ''],
    ]);
    expect(Object.keys(result.lines[0]!)).not.toContain('name');
  });

  it("a column named like a line's own field is echoed as input_<name>, never overwritten, and said once", async () => {
    const csv = `phone,price,currency,country,input_country,free\n${OUTSIDE},99,EUR,FR,x,yes\n`;
    const parsed = parseRecipientsCsv(csv);
    if (!parsed.ok) throw new Error(parsed.error.message);
    expect(parsed.value.renamed).toEqual([
      { column: 'price', echoedAs: 'input_price' },
      { column: 'currency', echoedAs: 'input_currency' },
      // input_country is the CSV's own column: one more prefix until the name is free.
      { column: 'country', echoedAs: 'input_input_country' },
      { column: 'free', echoedAs: 'input_free' },
    ]);
    const result = await estimate(csv, [], { template: 'marketing', atMs: PMP_NOW });
    const [line] = result.lines;
    expect(line).toMatchObject({ phone: OUTSIDE, country: 'IN', currency: 'USD', free: false });
    expect(line!.price).toBe(rateOf('India', 'marketing', '2025-10-15'));
    expect(line).toMatchObject({
      input_price: '99',
      input_currency: 'EUR',
      input_country: 'x',
      input_input_country: 'FR',
      input_free: 'yes',
    });
    expect(result.warnings?.[0]).toBe(
      'columns of the recipients CSV named like a field of the estimate or an earlier column are echoed renamed, never overwritten: price as input_price, currency as input_currency, country as input_input_country, free as input_free',
    );
  });

  it('a second column named "phone" (the first, in any case, is the number read) is echoed as input_phone', async () => {
    const result = await estimate(`Phone,phone\n${OUTSIDE},their own\n`, [], {
      template: 'marketing',
      atMs: PMP_NOW,
    });
    expect(result.lines[0]).toMatchObject({ phone: OUTSIDE, input_phone: 'their own' });
    expect(result.warnings?.[0]).toContain('phone as input_phone');
  });

  it('a column named like an earlier one is echoed as input_<name>: both values kept', async () => {
    const result = await estimate(`phone,note,note\n${OUTSIDE},a,b\n`, [], {
      template: 'marketing',
      atMs: PMP_NOW,
    });
    expect(result.lines[0]).toMatchObject({ note: 'a', input_note: 'b' });
    expect(result.warnings?.[0]).toContain('note as input_note');
  });

  it('values in columns the header names not (or past its end) are said not echoed, never dropped silently', async () => {
    const result = await estimate(`phone,,note\n${OUTSIDE},x,a,extra\n${OUTSIDE},,b\n`, [], {
      template: 'marketing',
      atMs: PMP_NOW,
    });
    expect(result.lines[0]).toMatchObject({ note: 'a' });
    expect(result.warnings).toContain(
      "the recipients CSV's header names no column for values of some lines (column 2, column 4): they are not echoed; name those columns in the header to keep them",
    );
    // A trailing comma on every line (an empty column without values) is no loss: nothing said.
    const trailing = await estimate(`phone,note,\n${OUTSIDE},a,\n`, [], {
      template: 'marketing',
      atMs: PMP_NOW,
    });
    expect(trailing.warnings?.join('\n') ?? '').not.toContain('names no column');
  });

  it('a CSV without such columns has nothing renamed and no warning about it', async () => {
    const parsed = parseRecipientsCsv(`phone,name,input_price\n${OUTSIDE},Ravi,1\n`);
    expect(parsed.ok && parsed.value.renamed).toEqual([]);
    const result = await estimate(`phone,name,input_price\n${OUTSIDE},Ravi,1\n`, [], {
      template: 'marketing',
      atMs: PMP_NOW,
    });
    expect(result.lines[0]).toMatchObject({ name: 'Ravi', input_price: '1' });
    expect(result.warnings?.join('\n') ?? '').not.toContain('renamed');
  });

  it('a header of more than 200 named columns is refused with TOO_MANY_COLUMNS; 200 are read', () => {
    const refused = parseRecipientsCsv(`${wideHeader(201)}\n${IN_WINDOW}\n`);
    expect(refused).toMatchObject({ ok: false, error: { code: 'TOO_MANY_COLUMNS' } });
    expect(!refused.ok && refused.error.message).toContain('at most 200');
    const read = parseRecipientsCsv(`${wideHeader(200)},,,\n${IN_WINDOW},${'x,'.repeat(198)}y\n`);
    expect(read.ok && Object.keys(read.value.recipients[0]!.columns)).toHaveLength(199);
  });

  it('a recipient limit (the service asks one) refuses a longer list, naming the limit and to split it', () => {
    const rows = (n: number) =>
      ['phone', ...Array.from({ length: n }, (_, i) => `+91 98${String(i).padStart(8, '0')}`)].join('\n');
    expect(parseRecipientsCsv(rows(3), { maxRecipients: 3 }).ok).toBe(true);
    const refused = parseRecipientsCsv(`${rows(3)}\nnot a number\n`, { maxRecipients: 3 });
    expect(refused).toMatchObject({ ok: false, error: { code: 'TOO_MANY_RECIPIENTS' } });
    expect(!refused.ok && refused.error.message).toMatch(/more than 3 recipients.*split/);
  });

  it('an echo limit (the service asks one) refuses columns that would repeat into too large an answer', () => {
    const csv = `phone,${'n'.repeat(40)}\n${IN_WINDOW},a\n${OUTSIDE},b\n${IN_FEP},c\n`;
    expect(parseRecipientsCsv(csv, { maxEchoChars: 200 }).ok).toBe(true);
    const refused = parseRecipientsCsv(csv, { maxEchoChars: 100 });
    expect(refused).toMatchObject({ ok: false, error: { code: 'ECHO_TOO_LARGE' } });
    expect(!refused.ok && refused.error.message).toContain('only "phone" is needed');
  });
});

describe('estimate warnings name recipients by their CSV line', () => {
  const tenRecipients = [
    'phone',
    ...Array.from({ length: 10 }, (_, i) => `+91 98${String(i).padStart(8, '0')}`),
  ].join('\n');

  it('REPORTED_RULES names the first recipient by line number order, in words (not u_line-10)', async () => {
    const result = await estimate(tenRecipients, [], {
      template: 'marketing',
      atMs: at('2026-12-02T12:00:00Z'),
    });
    const reported = result.warnings?.find((warning) => warning.startsWith('REPORTED_RULES'));
    expect(reported).toContain('(first: the recipient on line 2, on 2026-12-02)');
    expect(result.warnings?.join('\n')).not.toMatch(/line-|u_/);
  });

  it('RATE_CARD_OF_OTHER_MODEL likewise (a per-conversation card pricing per-message charges)', async () => {
    const result = await estimate(tenRecipients, [], {
      template: 'marketing',
      atMs: at('2025-08-15T12:00:00Z'),
    });
    const other = result.warnings?.find((warning) => warning.startsWith('RATE_CARD_OF_OTHER_MODEL'));
    expect(other).toContain('(first: the recipient on line 2, on 2025-08-15)');
    expect(result.warnings?.join('\n')).not.toMatch(/line-|u_/);
  });
});

describe('estimate totals per currency', () => {
  const line = (currency: string, price: string | null, isFree = false): EstimateLine => ({
    phone: '919876543210',
    country: 'IN',
    market: 'India',
    price,
    currency,
    free: isFree,
    reason: 'test',
  });

  it('counts the charged sends of no known price per currency, and gives no amount where none was priced', () => {
    const totals = totalsOf([
      line('INR', null),
      line('USD', '0.0014'),
      line('USD', null),
      line('USD', '0', true),
      line('EUR', '0', true),
    ]);
    expect(totals).toEqual({
      count: 5,
      free: 2,
      charged: 3,
      unpriced: 2,
      by_currency: {
        INR: { count: 1, free: 0, charged: 1, unpriced: 1, amount: null },
        USD: { count: 3, free: 1, charged: 2, unpriced: 1, amount: '0.0014' },
        EUR: { count: 1, free: 1, charged: 0, unpriced: 0, amount: '0' },
      },
    });
  });

  it('adds a total past 2^53 micros exactly (billions of rupiah), as `rate` does, instead of refusing it', () => {
    const totals = totalsOf([line('IDR', '5000000000'), line('IDR', '5000000000.000001')]);
    expect(totals.by_currency.IDR?.amount).toBe('10000000000.000001');
  });
});
