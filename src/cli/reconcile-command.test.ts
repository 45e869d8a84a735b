import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { messagesWebhook } from '../../test/support/webhook-body.js';
import { localDate } from '../core/calendar.js';
import { DIFFERENCE_CAUSES } from '../core/reconcile.js';
import { EXIT } from './exit-codes.js';

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/webhooks');

function cli(args: string[]) {
  return runWameter(['reconcile', ...args]);
}

const dir = mkdtempSync(join(tmpdir(), 'wameter-reconcile-'));
const sendLog = join(dir, 'sends.ndjson');
writeFileSync(
  sendLog,
  `${JSON.stringify({ kind: 'outbound', at: 1698266940, waba: '5467539754836534', business: '1122334455667', user: '972987654321', id: 'wamid.xyzxyz', template: null })}\n`,
);

/** A utility template as the send log says it was sent, and Meta's status pricing it as marketing. */
const UTILITY_SENT = JSON.stringify({
  kind: 'outbound',
  at: '2025-10-08T06:00:00Z',
  waba: 'W1',
  business: 'PN1',
  user: '919876543210',
  id: 'm1',
  template: 'utility',
});
const PRICED_AS_MARKETING = JSON.stringify({
  kind: 'status',
  at: '2025-10-08T06:00:03Z',
  id: 'm1',
  status: 'delivered',
  pricing: { pricing_model: 'PMP', category: 'marketing', type: 'regular' },
});

describe('wameter reconcile', () => {
  it('exits 0 and says so when wameter and Meta agree', async () => {
    const result = await cli([sendLog, join(FIXTURES, 'pywa/status_delivered.json')]);
    expect(result.code).toBe(EXIT.OK);
    expect(result.out).toContain('agree');
  });

  it('exits 4 and lists the difference with its cause when they disagree', async () => {
    const utility = join(dir, 'utility.ndjson');
    writeFileSync(utility, `${UTILITY_SENT}\n` + `${PRICED_AS_MARKETING}\n`);
    const result = await cli([utility, '--format', 'json']);
    expect(result.code).toBe(EXIT.DIFFERENCES);
    const json = JSON.parse(result.out);
    expect(json.differences).toEqual([
      expect.objectContaining({ message: 'm1', cause: 'TEMPLATE_RECATEGORISED' }),
    ]);
    expect(json.checked).toEqual({ messages: 1, unverifiable: 0, category_from_webhook: 0, buckets: 0 });
    const table = await cli([utility]);
    expect(table.out).toContain('TEMPLATE_RECATEGORISED  message m1');
  });

  it("two WABAs' messages of one id are each compared with their own WABA's verdict", async () => {
    // Two clients' send logs name one id (MESSAGE_OF_TWO_WABAS): W1's utility message, priced utility by
    // Meta's webhook of W1, and W2's marketing message. Each decision was W1's record's, so W2's message was
    // compared as W1's with W1's verdict: a false TEMPLATE_RECATEGORISED, and W2's message counted for W1.
    const line = (fields: Record<string, unknown>) =>
      JSON.stringify({ at: '2025-10-09T12:00:00Z', ...fields });
    const shared = join(dir, 'shared-id.ndjson');
    writeFileSync(
      shared,
      [
        line({
          kind: 'outbound',
          waba: 'W1',
          business: 'PN1',
          user: '919800000502',
          id: 'wamid.X',
          template: 'utility',
        }),
        line({
          kind: 'status',
          at: '2025-10-09T12:00:05Z',
          waba: 'W1',
          id: 'wamid.X',
          status: 'delivered',
          pricing: { pricing_model: 'PMP', category: 'utility', type: 'regular' },
        }),
        line({
          kind: 'outbound',
          at: '2025-10-09T13:00:00Z',
          waba: 'W2',
          business: 'PN2',
          user: '919800000503',
          id: 'wamid.X',
          template: 'marketing',
        }),
        line({ kind: 'status', at: '2025-10-09T13:00:05Z', waba: 'W2', id: 'wamid.X', status: 'delivered' }),
      ].join('\n') + '\n',
    );
    const result = await cli([shared, '--format', 'json']);
    const json = JSON.parse(result.out);
    expect(json.differences).toEqual([]);
    expect(result.code).toBe(EXIT.OK);
  });

  it('a category word that names a property of every JavaScript object is no template family', async () => {
    const odd = join(dir, 'odd-category.ndjson');
    writeFileSync(odd, `${UTILITY_SENT}\n${PRICED_AS_MARKETING.replace('"marketing"', '"constructor"')}\n`);
    const json = JSON.parse((await cli([odd, '--format', 'json'])).out);
    expect(json.differences.map((d: { cause: string }) => d.cause)).not.toContain('TEMPLATE_RECATEGORISED');
  });

  it('refuses a missing only source (exit 1): nothing is compared', async () => {
    const { code, out, err } = await cli([join(dir, 'nope.ndjson'), '--analytics', join(dir, 'nope.json')]);
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toContain(`no such file or folder: '${join(dir, 'nope.ndjson')}'; nothing was read`);
  });

  it('an analytics file that is not an export is refused with a clear error (exit 1)', async () => {
    const bogus = join(dir, 'bogus.json');
    writeFileSync(bogus, '{"units":[]}');
    const result = await cli([sendLog, '--analytics', bogus]);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.err).toContain('UNRECOGNISED_ANALYTICS');
    const missing = await cli([sendLog, '--analytics', join(dir, 'nope.json')]);
    expect(missing.err).toContain('ANALYTICS_UNREADABLE');
  });

  it('an analytics file cut short or empty is placed by line and column, or said to be empty (exit 1)', async () => {
    // An export saved while the download was still running: its last data point cut off.
    const cut = join(dir, 'cut.json');
    writeFileSync(cut, '{\n  "data": [\n    {\n      "data_points": [\n        {"start": 1748736000, "end"');
    const result = await cli([sendLog, '--analytics', cut]);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.err).toContain(
      `UNRECOGNISED_ANALYTICS: ${cut} is not JSON at line 5, column 36: the text ends before the JSON value is complete`,
    );
    expect(result.err).not.toContain('position');
    const empty = join(dir, 'empty-export.json');
    writeFileSync(empty, '');
    const emptied = await cli([sendLog, '--analytics', empty]);
    expect(emptied.code).toBe(EXIT.USAGE);
    expect(emptied.err).toContain(
      `UNRECOGNISED_ANALYTICS: ${empty} is empty: check that it is the file you meant`,
    );
  });

  it('an analytics file that is not UTF-8 is refused naming the byte (exit 1), never read with U+FFFD', async () => {
    const latin1 = join(dir, 'latin1.json');
    writeFileSync(latin1, Buffer.from('{"data":[{"data_points":[],"caf\u00e9":1}]}', 'latin1'));
    const result = await cli([sendLog, '--analytics', latin1]);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.out).toBe('');
    expect(result.err).toContain(
      `ANALYTICS_UNREADABLE: cannot read analytics export ${latin1}: it is not UTF-8: line 1, column 32 holds byte 0xE9 (offset 31)`,
    );
  });

  it("Meta's analytics example reads, and the buckets it has that wameter lacks are reported", async () => {
    const result = await cli([
      sendLog,
      '--analytics',
      join(FIXTURES, 'meta-docs/analytics_pricing_daily_tier_category_type_country.json'),
      '--format',
      'json',
    ]);
    const json = JSON.parse(result.out);
    expect(json.checked.buckets).toBeGreaterThan(0);
    expect(json.differences.every((d: { cause: string }) => d.cause === 'MISSING_WEBHOOK')).toBe(true);
    expect(result.code).toBe(EXIT.DIFFERENCES);
  });

  it('a --waba the input has no events of is refused, naming the WABAs it has, as rerate does', async () => {
    const two = join(dir, 'two-wabas.ndjson');
    writeFileSync(
      two,
      `${UTILITY_SENT}\n${PRICED_AS_MARKETING}\n` +
        `${UTILITY_SENT.replace('"W1"', '"W2"').replace('"m1"', '"m2"')}\n` +
        `${PRICED_AS_MARKETING.replace('"m1"', '"m2"')}\n`,
    );
    const refusal =
      "wameter: WABA_NOT_IN_EVENTS: the input holds no events of WABA NOPE: nothing was compared; it holds events of 2 WABA(s): W1, W2 (give --waba one of them, or feed that WABA's events too)\n";
    const alone = await cli([two, '--waba', 'NOPE']);
    expect(alone.code).toBe(EXIT.USAGE);
    expect(alone.out).toBe('');
    expect(alone.err).toBe(refusal);
    const analytics = join(FIXTURES, 'meta-docs/analytics_pricing_daily_tier_category_type_country.json');
    const withExport = await cli([two, '--waba', 'NOPE', '--analytics', analytics, '--format', 'json']);
    expect(withExport.code).toBe(EXIT.USAGE);
    expect(withExport.out).toBe('');
    expect(withExport.err).toBe(refusal);
  });

  it('a --waba of the input without --analytics compares every WABA, and says that --waba chose nothing', async () => {
    const utility = join(dir, 'utility-w1.ndjson');
    writeFileSync(utility, `${UTILITY_SENT}\n${PRICED_AS_MARKETING}\n`);
    const result = await cli([utility, '--waba', 'W1']);
    expect(result.code).toBe(EXIT.DIFFERENCES);
    expect(result.err).toContain(
      'wameter: note: --waba only says which WABA an --analytics export describes; without one, the messages of every WABA were compared\n',
    );
  });

  it('nothing verifiable: says so and why on stderr, claims no agreement, exits 1', async () => {
    const unpriced = join(dir, 'unpriced.ndjson');
    writeFileSync(
      unpriced,
      `${UTILITY_SENT}\n` +
        `${JSON.stringify({ kind: 'status', at: '2025-10-08T06:00:03Z', id: 'm1', status: 'delivered' })}\n`,
    );
    const table = await cli([unpriced]);
    expect(table.code).toBe(EXIT.USAGE);
    expect(table.out).not.toContain('agree on');
    expect(table.out).toContain('no agreement is claimed');
    expect(table.err).toContain('nothing could be checked against Meta');
    expect(table.err).toContain(
      "none of the 1 delivered message(s) has a status webhook with Meta's pricing",
    );
    expect(table.err).toContain('no analytics export was given (--analytics)');
    const json = await cli([unpriced, '--format', 'json']);
    expect(json.code).toBe(EXIT.USAGE);
    expect(JSON.parse(json.out)).toEqual({
      differences: [],
      checked: { messages: 1, unverifiable: 1, category_from_webhook: 0, buckets: 0 },
    });
    const empty = join(dir, 'empty.ndjson');
    writeFileSync(empty, '\n');
    const none = await cli([empty]);
    expect(none.code).toBe(EXIT.USAGE);
    expect(none.err).toContain('the input holds no delivered business message');
  });

  it('differences win over malformed lines (exit 4), and the malformed lines are still named', async () => {
    const mixed = join(dir, 'mixed.ndjson');
    writeFileSync(mixed, `${UTILITY_SENT}\n` + `{"kind":"outbound",\n` + `${PRICED_AS_MARKETING}\n`);
    const result = await cli([mixed, '--format', 'json']);
    expect(result.code).toBe(EXIT.DIFFERENCES);
    expect(result.err).toContain(`${mixed}:2: MALFORMED_LINE`);
    expect(JSON.parse(result.out).differences).toHaveLength(1);
  });

  it('a message that differs from Meta only by its conversation is labelled CONVERSATION_MISMATCH', async () => {
    const rode = join(dir, 'conversation.ndjson');
    const status = (id: string, at: string, conversation: string) =>
      JSON.stringify({
        kind: 'status',
        at,
        id,
        status: 'delivered',
        pricing: { billable: true, pricing_model: 'CBP', category: 'utility' },
        conversation: { id: conversation, origin: { type: 'utility' } },
      });
    const sent = (id: string, at: string) =>
      JSON.stringify({
        kind: 'outbound',
        at,
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
        id,
        template: 'utility',
      });
    writeFileSync(
      rode,
      [
        sent('m4', '2023-07-02T02:00:00Z'),
        status('m4', '2023-07-02T02:00:05Z', 'C3'),
        sent('m5', '2023-07-02T03:00:00Z'),
        status('m5', '2023-07-02T03:00:05Z', 'C4'),
      ].join('\n') + '\n',
    );
    const result = await cli([rode, '--format', 'json']);
    expect(result.code).toBe(EXIT.DIFFERENCES);
    expect(JSON.parse(result.out).differences).toEqual([
      expect.objectContaining({ message: 'm5', differs: ['conversation'], cause: 'CONVERSATION_MISMATCH' }),
    ]);
    const table = await cli([rode]);
    expect(table.out).toContain('CONVERSATION_MISMATCH  message m5');
    expect(table.out).not.toContain('CATEGORY_MISMATCH');
  });

  it('--help names every cause a difference can have', async () => {
    const { out } = await cli(['--help']);
    for (const cause of DIFFERENCE_CAUSES) expect(out, cause).toContain(cause);
  });

  it('malformed lines and everything checked agrees: exit 2', async () => {
    const agreeing = join(dir, 'agreeing.ndjson');
    writeFileSync(
      agreeing,
      `${UTILITY_SENT}\n` +
        `not json\n` +
        `${JSON.stringify({ kind: 'status', at: '2025-10-08T06:00:03Z', id: 'm1', status: 'delivered', pricing: { pricing_model: 'PMP', category: 'utility', type: 'regular' } })}\n`,
    );
    const result = await cli([agreeing]);
    expect(result.code).toBe(EXIT.BAD_INPUT);
    expect(result.out).toContain('agree');
    expect(result.err).toContain(`${agreeing}:2: MALFORMED_LINE`);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The month example against Meta-shaped exports built from wameter's own units (as Meta would answer for
// WABA 291612946114990, whose days are cut in Asia/Kolkata)

const MONTH = join(import.meta.dirname, '../../examples/month');
const MONTH_WABA = '291612946114990';
const month = [join(MONTH, 'events.ndjson'), '--accounts', join(MONTH, 'accounts.json')];

interface RatedUnit {
  waba: string;
  opened_at: string;
  country: string;
  category: string;
  type: string;
  amount: string | null;
}

/**
 * Meta's DAILY pricing_analytics answer for the month WABA, from wameter's units (costs × `factor`), its days
 * cut at midnight in `zone` (`offset` its UTC offset in October 2025): by default the WABA's own, Asia/Kolkata.
 */
async function monthExport(
  name: string,
  options: { skipDays?: string[]; factor?: number; zone?: string; offset?: string } = {},
): Promise<string> {
  const { zone = 'Asia/Kolkata', offset = '+05:30' } = options;
  const rated = await runWameter(['rate', ...month, '--format', 'json']);
  const units = (JSON.parse(rated.out) as { units: RatedUnit[] }).units;
  const points = new Map<string, { day: string; volume: number; micros: number; [k: string]: unknown }>();
  for (const unit of units) {
    if (unit.waba !== MONTH_WABA) continue;
    const day = localDate(Date.parse(unit.opened_at), zone);
    if (options.skipDays?.includes(day)) continue;
    const category = unit.type === 'free_entry_point' ? 'SERVICE' : unit.category.toUpperCase();
    const key = `${day}|${unit.country}|${category}|${unit.type}`;
    const point = points.get(key) ?? {
      day,
      volume: 0,
      micros: 0,
      country: unit.country,
      pricing_category: category,
      pricing_type: unit.type.toUpperCase(),
    };
    point.volume += 1;
    point.micros += Math.round(Number(unit.amount ?? 0) * 1_000_000);
    points.set(key, point);
  }
  const factor = options.factor ?? 1;
  const data_points = [...points.values()].map(({ day, micros, ...rest }) => ({
    ...rest,
    start: Date.parse(`${day}T00:00:00${offset}`) / 1000,
    end: Date.parse(`${day}T00:00:00${offset}`) / 1000 + 86_400,
    cost: Number(((micros * factor) / 1_000_000).toFixed(6)),
  }));
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ pricing_analytics: { data: [{ data_points }] }, id: MONTH_WABA }));
  return path;
}

describe('wameter reconcile --analytics: the period, what is compared, totals, currency', () => {
  it("an export without its last or first day: wameter's units of that day are differences (exit 4)", async () => {
    for (const day of ['2025-10-31', '2025-10-01']) {
      const exported = await monthExport(`no-${day}.json`, { skipDays: [day] });
      const table = await cli([...month, '--analytics', exported]);
      expect(table.code, day).toBe(EXIT.DIFFERENCES);
      expect(table.out, day).not.toContain('agree on everything');
      expect(table.out, day).toContain(`META_COUNTS_FEWER  ${day} `);
      expect(table.out, day).toContain('2025-10-01..2025-10-31');
      const json = JSON.parse((await cli([...month, '--analytics', exported, '--format', 'json'])).out);
      expect(json.analytics.period).toMatchObject({
        from: '2025-10-01',
        to: '2025-10-31',
        time_zone: 'Asia/Kolkata',
      });
      const days = json.differences.map((d: { bucket?: { day: string } }) => d.bucket?.day);
      expect(new Set(days), day).toEqual(new Set([day]));
    }
  });

  it('the whole month agrees (exit 0); --from/--to narrow the period and say what was left out', async () => {
    const exported = await monthExport('whole.json');
    const whole = await cli([...month, '--analytics', exported]);
    expect(whole.code).toBe(EXIT.OK);
    expect(whole.out).toContain('agree on everything checked');
    // pricing_analytics counts every unit: none is left out for its pricing model.
    expect(whole.out + whole.err).not.toContain('billed per message');
    const narrow = await cli([
      ...month,
      '--analytics',
      exported,
      '--from',
      '2025-10-10',
      '--to',
      '2025-10-20',
      '--format',
      'json',
    ]);
    expect(narrow.code).toBe(EXIT.OK);
    const json = JSON.parse(narrow.out);
    expect(json.analytics.period).toMatchObject({ from: '2025-10-10', to: '2025-10-20', basis: 'requested' });
    expect(json.analytics.not_compared.outside_period.units).toBeGreaterThan(0);
    expect(json.analytics.not_compared.meta_outside_period.units).toBe(
      json.analytics.not_compared.outside_period.units,
    );
  });

  it('bad --from/--to values are refused (exit 1)', async () => {
    const exported = await monthExport('flags.json');
    for (const args of [
      ['--from', '2025-13-01'],
      ['--from', '2025-10-20', '--to', '2025-10-10'],
    ]) {
      const result = await cli([...month, '--analytics', exported, ...args]);
      expect(result.code, args.join(' ')).toBe(EXIT.USAGE);
    }
    const withoutExport = await cli([...month, '--from', '2025-10-01']);
    expect(withoutExport.code).toBe(EXIT.USAGE);
    expect(withoutExport.err).toContain('--analytics');
  });

  it('counts only what was compared, and the units of the WABAs the export does not describe', async () => {
    const exported = await monthExport('count.json');
    const table = await cli([...month, '--analytics', exported]);
    expect(table.out).not.toMatch(/Checked: 936 message/);
    // The messages delivered in the period compared (October on the WABA's clock, Asia/Kolkata): two
    // delivered 2025-10-31 after 18:30Z are November's there.
    expect(table.out).toContain('0 of 934 delivered message(s) of 2025-10-01..2025-10-31');
    expect(table.out).toContain(`420 unit(s) of WABA ${MONTH_WABA}`);
    expect(table.out).toMatch(/Not compared: +516 unit\(s\) of 2 other WABA\(s\)/);
    const json = JSON.parse((await cli([...month, '--analytics', exported, '--format', 'json'])).out);
    expect(json.checked).toMatchObject({ messages: 934, unverifiable: 934 });
    expect(json.analytics.units).toBe(420);
    expect(json.analytics.not_compared.other_wabas).toMatchObject({ wabas: 2, units: 516 });
  });

  it("Meta's amounts claim no currency; one ratio across the cost differences points at the currency", async () => {
    const exported = await monthExport('inr.json', { factor: 88 });
    const table = await cli([...month, '--analytics', exported]);
    expect(table.code).toBe(EXIT.DIFFERENCES);
    expect(table.out).not.toMatch(/Meta: +units=\d+ amount=[\d.]+ currency=USD/);
    expect(table.out).toContain(
      "no currency in Meta's export; wameter bills this WABA in USD per the accounts file",
    );
    expect(table.out).toContain('CURRENCY_MISMATCH');
    expect(table.out).not.toContain('COST_DIFFERS');
    expect(table.out).not.toContain("import Meta's official rate card");
    const json = JSON.parse((await cli([...month, '--analytics', exported, '--format', 'json'])).out);
    expect(json.analytics.currency_ratio.meta_per_wameter).toBe('88');
  });

  it("days Meta cut in another time zone than the accounts file's: says so, with the clock its points start at", async () => {
    // The WABA's days cut at midnight in America/Los_Angeles (07:00Z in October), 12.5 hours off Asia/Kolkata:
    // every unit sits on a neighbouring day, and the period takes in a month more. Without a word of the
    // cause, dozens of META_COUNTS_FEWER ("messages Meta did not bill") hid a wrong time zone.
    const exported = await monthExport('los-angeles.json', { zone: 'America/Los_Angeles', offset: '-07:00' });
    const table = await cli([...month, '--analytics', exported]);
    expect(table.code).toBe(EXIT.DIFFERENCES);
    const said =
      "Meta's data points start at 12:30 in Asia/Kolkata (07:00 UTC), not at its midnight: Meta cuts this WABA's days in another time zone than the accounts file's";
    expect(table.out).toContain(said);
    expect(table.out).toContain(
      "set the WABA's time zone in the accounts file to the one in Meta Business Manager",
    );
    expect(table.err).toContain(said);
    const json = await cli([...month, '--analytics', exported, '--format', 'json']);
    expect(JSON.parse(json.out).analytics.meta_day_start).toEqual({
      local: '12:30',
      utc: '07:00',
      points: expect.any(Number),
    });
    expect(json.err).toContain(said);
    // Cut at the WABA's own midnight, nothing is said.
    const own = await cli([...month, '--analytics', await monthExport('own-zone.json'), '--format', 'json']);
    expect(own.code).toBe(EXIT.OK);
    expect(JSON.parse(own.out).analytics.meta_day_start).toBeUndefined();
    expect(own.err).not.toContain('not at its midnight');
  });

  it("Meta's conversation_analytics of October 2025 counts none of its messages, billed per message: no wall of differences", async () => {
    // Meta's conversation_analytics answers October 2025 with a zero day (per-message pricing: no conversation).
    const start = Date.parse('2025-10-15T00:00:00+05:30') / 1000;
    const zero = join(dir, 'october-conversations.json');
    writeFileSync(
      zero,
      JSON.stringify({
        conversation_analytics: {
          data: [{ data_points: [{ start, end: start + 86_400, conversation: 0, cost: 0 }] }],
        },
        id: MONTH_WABA,
      }),
    );
    const json = await cli([...month, '--analytics', zero, '--format', 'json']);
    expect(json.code).toBe(EXIT.OK);
    const answer = JSON.parse(json.out);
    expect(answer.differences).toEqual([]);
    expect(answer.analytics).toMatchObject({ kind: 'conversation_analytics', units: 0 });
    expect(answer.analytics.not_compared.other_pricing_model).toEqual({
      units: 420,
      by_currency: { USD: { units: 420, amount: expect.stringMatching(/^\d+\.\d+$/) as unknown } },
      reason: expect.stringContaining("Meta's conversation_analytics does not count them") as unknown,
    });
    expect(json.err).toContain(
      "not compared: 516 unit(s) of other WABA(s), 0 outside the period, 420 billed per message (Meta's pricing_analytics counts them)",
    );
    const note = `every unit of WABA ${MONTH_WABA} in 2025-10-01..2025-10-31 (420) was billed per message, which Meta's conversation_analytics does not count, so none of them was compared: compare them with Meta's pricing_analytics export of those days`;
    expect(json.err).toContain(`wameter: note: ${note}`);
    const table = await cli([...month, '--analytics', zero]);
    expect(table.code).toBe(EXIT.OK);
    expect(table.out).toContain(`Note:           ${note}`);
    expect(table.out).toMatch(
      /Not compared: +420 unit\(s\) of this WABA in the period billed per message \([\d.]+ USD\), which Meta's conversation_analytics does not count: compare them with its pricing_analytics export/,
    );
    // An empty answer over --from/--to: nothing compared, and it says why, naming the export to give instead.
    const empty = join(dir, 'october-no-conversations.json');
    writeFileSync(empty, JSON.stringify({ conversation_analytics: { data: [] }, id: MONTH_WABA }));
    const none = await cli([...month, '--analytics', empty, '--from', '2025-10-01', '--to', '2025-10-31']);
    expect(none.code).toBe(EXIT.USAGE);
    expect(none.out).not.toMatch(/META_COUNTS_FEWER|agree on everything/);
    expect(none.err).toContain(
      `the 420 unit(s) of WABA ${MONTH_WABA} in the period were billed per message, which Meta's conversation_analytics does not count`,
    );
  });

  it("prints wameter's total, Meta's total and the difference for the WABA", async () => {
    const exported = await monthExport('short.json', { skipDays: ['2025-10-31'] });
    const json = JSON.parse((await cli([...month, '--analytics', exported, '--format', 'json'])).out);
    const [totals] = json.analytics.totals;
    expect(totals).toMatchObject({ waba: MONTH_WABA, currency: 'USD', ours: { units: 420 } });
    expect(totals.meta.units).toBeLessThan(420);
    expect(totals.difference.units).toBe(totals.meta.units - 420);
    const table = await cli([...month, '--analytics', exported]);
    expect(table.out).toMatch(/wameter: +420 unit\(s\), [\d.]+ USD/);
    expect(table.out).toMatch(/Meta − wameter: +-\d+ unit\(s\), -[\d.]+ \(Meta's amount read as USD\)/);
  });
});

describe('wameter reconcile --analytics: a half-hour export in Asia/Kathmandu (UTC+05:45)', () => {
  // Two marketing conversations at 23:55 on 5 July and 00:05 on 6 July (local), and Meta's HALF_HOUR point
  // 18:00Z–18:30Z (23:45–00:15 local) counting both: the auditor's reproduction.
  const nepal = mkdtempSync(join(tmpdir(), 'wameter-reconcile-nepal-'));
  const accounts = join(nepal, 'accounts.json');
  const events = join(nepal, 'ev.ndjson');
  const analytics = join(nepal, 'an.json');
  writeFileSync(
    accounts,
    JSON.stringify({ accounts: [{ waba: 'W1', timezone: 'Asia/Kathmandu', currency: 'USD' }] }),
  );
  writeFileSync(
    events,
    [
      ['m1', '919876543210', '2023-07-05T18:10:00Z'],
      ['m2', '919876543211', '2023-07-05T18:20:00Z'],
    ]
      .map(([id, user, at]) =>
        JSON.stringify({
          kind: 'outbound',
          at,
          waba: 'W1',
          business: 'PN1',
          user,
          id,
          template: 'marketing',
          delivered_at: at,
        }),
      )
      .join('\n') + '\n',
  );
  const exportOf = (conversation: number, cost: number) =>
    JSON.stringify({
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
                conversation,
                cost,
              },
            ],
          },
        ],
      },
      id: 'W1',
    });
  const args = [events, '--accounts', accounts, '--analytics', analytics];

  it('the half hour across local midnight agrees: both local days compared, exit 0', async () => {
    writeFileSync(analytics, exportOf(2, 0.0198));
    const table = await cli(args);
    expect(table.out).toContain('agree on everything checked');
    expect(table.out).toContain('2023-07-05..2023-07-06 (local days in Asia/Kathmandu');
    expect(table.out).not.toContain('TIME_ZONE_DAY_EDGE');
    expect(table.code).toBe(EXIT.OK);
    const requested = await cli([...args, '--from', '2023-07-05', '--to', '2023-07-06']);
    expect(requested.out).not.toContain('TIME_ZONE_DAY_EDGE');
    expect(requested.code).toBe(EXIT.OK);
  });

  it('a conversation Meta counts in that half hour and wameter lacks is still found (exit 4)', async () => {
    writeFileSync(analytics, exportOf(3, 0.0297));
    const result = await cli([...args, '--format', 'json']);
    expect(result.code).toBe(EXIT.DIFFERENCES);
    const json = JSON.parse(result.out);
    expect(json.differences).toEqual([
      expect.objectContaining({
        bucket: expect.objectContaining({ day: '2023-07-05..2023-07-06' }),
        cause: 'MISSING_WEBHOOK',
      }),
    ]);
    expect(json.analytics.period).toMatchObject({ from: '2023-07-05', to: '2023-07-06' });
  });
});

describe('wameter reconcile --analytics: an export without a category dimension', () => {
  const line = (value: object) => JSON.stringify(value);
  const sent = (id: string, at: string, user: string, template: string | null) =>
    line({ kind: 'outbound', at, waba: 'W1', business: 'PN1', user, id, template, delivered_at: at });
  const adClick = (id: string, at: string, user: string) =>
    line({ kind: 'inbound', at, waba: 'W1', business: 'PN1', user, id, referral: { source_type: 'ad' } });
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const day = (iso: string) => Date.parse(`${iso}T00:00:00Z`) / 1000;
  const daily = (iso: string, fields: object) => ({ start: day(iso), end: day(iso) + 86_400, ...fields });

  // PMP: a marketing and a utility template, and the answer to a user who came from an ad (free entry point).
  const pmp = write(
    'pmp-no-category.ndjson',
    [
      sent('m1', '2025-10-10T10:00:00Z', '919876543210', 'marketing'),
      sent('m2', '2025-10-11T10:00:00Z', '919876543211', 'utility'),
      adClick('i4', '2025-10-13T10:00:00Z', '919876543213'),
      sent('m4', '2025-10-13T10:01:00Z', '919876543213', null),
    ].join('\n') + '\n',
  );
  const byPricingType = (entryPoints: number) =>
    write(
      `by-pricing-type-${entryPoints}.json`,
      line({
        pricing_analytics: {
          data: [
            {
              data_points: [
                daily('2025-10-10', { pricing_type: 'REGULAR', volume: 1, cost: 0.0107 }),
                daily('2025-10-11', { pricing_type: 'REGULAR', volume: 1, cost: 0.0014 }),
                daily('2025-10-13', { pricing_type: 'FREE_ENTRY_POINT', volume: entryPoints, cost: 0 }),
              ],
            },
          ],
        },
        id: 'W1',
      }),
    );

  it('by pricing type only (PMP): matching units and cost agree, exit 0', async () => {
    const result = await cli([pmp, '--analytics', byPricingType(1), '--format', 'json']);
    expect(JSON.parse(result.out).differences).toEqual([]);
    expect(result.code).toBe(EXIT.OK);
  });

  it('by pricing type only (PMP): a free entry point more at Meta is one difference, named by its type', async () => {
    const result = await cli([pmp, '--analytics', byPricingType(2), '--format', 'json']);
    expect(result.code).toBe(EXIT.DIFFERENCES);
    expect(JSON.parse(result.out).differences).toEqual([
      expect.objectContaining({
        bucket: { waba: 'W1', day: '2025-10-13', country: '*', category: '*', type: 'free_entry_point' },
        ours: expect.objectContaining({ units: 1 }),
        meta: expect.objectContaining({ units: 2 }),
        cause: 'MISSING_WEBHOOK',
      }),
    ]);
    // The table names the bucket by its type, not by a category the export does not have.
    const table = await cli([pmp, '--analytics', byPricingType(2)]);
    expect(table.out).toContain('MISSING_WEBHOOK  2025-10-13 * free_entry_point (WABA W1)');
  });

  it('by conversation type only (CBP-2022, a monthly export shaped as Meta documents it): agree, exit 0', async () => {
    const events = write(
      'cbp2022-no-category.ndjson',
      [
        sent('b1', '2022-02-10T10:00:00Z', '919876543210', 'marketing'),
        sent('b2', '2022-02-11T10:00:00Z', '919876543211', 'utility'),
        line({
          kind: 'inbound',
          at: '2022-02-12T10:00:00Z',
          waba: 'W1',
          business: 'PN1',
          user: '919876543212',
          id: 'i3',
        }),
        sent('b3', '2022-02-12T10:01:00Z', '919876543212', null),
        adClick('i4', '2022-02-13T10:00:00Z', '919876543213'),
        sent('b4', '2022-02-13T10:01:00Z', '919876543213', null),
      ].join('\n') + '\n',
    );
    const month = { start: day('2022-02-01'), end: day('2022-03-01') };
    const exported = write(
      'cbp2022-by-type.json',
      line({
        data: [
          {
            data_points: [
              { ...month, conversation: 0, conversation_type: 'REGULAR', cost: 0 },
              { ...month, conversation: 3, conversation_type: 'FREE_TIER', cost: 0.0 },
              { ...month, conversation: 1, conversation_type: 'FREE_ENTRY_POINT', cost: 0.0 },
            ],
          },
        ],
      }),
    );
    const result = await cli([events, '--analytics', exported, '--format', 'json']);
    expect(JSON.parse(result.out).differences).toEqual([]);
    expect(result.code).toBe(EXIT.OK);
  });

  it("conversation_analytics' FREE_ENTRY is a free entry point (pricing_analytics' FREE_ENTRY_POINT): agree, exit 0", async () => {
    // Meta's conversation_analytics writes conversation_type FREE_ENTRY, FREE_TIER or REGULAR.
    const events = [
      line({
        kind: 'inbound',
        at: '2024-03-05T10:00:00Z',
        waba: 'W5',
        business: 'PN5',
        user: '919876500001',
        id: 'in1',
        referral: { source_type: 'ad' },
      }),
      line({
        kind: 'outbound',
        at: '2024-03-05T10:05:00Z',
        waba: 'W5',
        business: 'PN5',
        user: '919876500001',
        id: 'o1',
        template: 'marketing',
      }),
      line({ kind: 'status', at: '2024-03-05T10:05:03Z', id: 'o1', status: 'delivered' }),
      line({
        kind: 'outbound',
        at: '2024-03-05T11:00:00Z',
        waba: 'W5',
        business: 'PN5',
        user: '919876500002',
        id: 'o2',
        template: 'marketing',
      }),
      line({ kind: 'status', at: '2024-03-05T11:00:03Z', id: 'o2', status: 'delivered' }),
    ];
    const cbp = write('cbp-free-entry.ndjson', events.join('\n') + '\n');
    const point = (type: string, direction: string, cost: number) =>
      daily('2024-03-05', {
        conversation: 1,
        cost,
        country: 'IN',
        conversation_type: type,
        conversation_direction: direction,
      });
    const exported = write(
      'cbp-free-entry.json',
      line({
        conversation_analytics: {
          data: [
            {
              data_points: [
                point('FREE_ENTRY', 'USER_INITIATED', 0),
                point('REGULAR', 'BUSINESS_INITIATED', 0.0099),
              ],
            },
          ],
        },
        id: 'W5',
      }),
    );
    const result = await cli([cbp, '--analytics', exported, '--format', 'json']);
    expect(JSON.parse(result.out).differences).toEqual([]);
    expect(result.code).toBe(EXIT.OK);
  });

  it('by conversation direction only (CBP-2023): agree, exit 0; a conversation more is named by its direction', async () => {
    const events = write(
      'cbp2023-no-category.ndjson',
      [
        sent('c1', '2024-03-10T10:00:00Z', '919876543210', 'marketing'),
        sent('c2', '2024-03-10T11:00:00Z', '919876543210', 'utility'),
      ].join('\n') + '\n',
    );
    const byDirection = (conversations: number, cost: number) =>
      write(
        `cbp2023-by-direction-${conversations}.json`,
        line({
          conversation_analytics: {
            data: [
              {
                data_points: [
                  daily('2024-03-10', {
                    conversation_direction: 'BUSINESS_INITIATED',
                    conversation: 2,
                    cost: 0.0141,
                  }),
                  daily('2024-03-10', {
                    conversation_direction: 'USER_INITIATED',
                    conversation: conversations,
                    cost,
                  }),
                ],
              },
            ],
          },
          id: 'W1',
        }),
      );
    const agree = await cli([events, '--analytics', byDirection(0, 0), '--format', 'json']);
    expect(JSON.parse(agree.out).differences).toEqual([]);
    expect(agree.code).toBe(EXIT.OK);
    const more = await cli([events, '--analytics', byDirection(1, 0.0042), '--format', 'json']);
    expect(more.code).toBe(EXIT.DIFFERENCES);
    expect(JSON.parse(more.out).differences).toEqual([
      expect.objectContaining({
        bucket: { waba: 'W1', day: '2024-03-10', country: '*', category: '*', direction: 'user_initiated' },
        cause: 'MISSING_WEBHOOK',
      }),
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// What a difference is accounted for by, and what was really checked

describe('wameter reconcile: what was checked, and what accounts for a difference', () => {
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const accounts = write(
    'accounts-w1.json',
    JSON.stringify({
      accounts: [
        { waba: 'W1', timezone: 'Asia/Kolkata', currency: 'USD', portfolio: 'P1', primary_country: 'IN' },
      ],
    }),
  );
  /** Meta's DAILY pricing_analytics point of 2025-10-08 (Asia/Kolkata) for India. */
  const point = (category: string, cost: number) => ({
    start: 1_759_861_800,
    end: 1_759_948_200,
    country: 'IN',
    pricing_type: 'REGULAR',
    pricing_category: category,
    volume: 1,
    cost,
  });
  const exportOf = (name: string, id: string, points: object[]) =>
    write(name, JSON.stringify({ pricing_analytics: { data: [{ data_points: points }] }, id }));

  it("a bucket's cost that a message's pricing type accounts for names the message, with no rate-card advice", async () => {
    // The user wrote at 05:00: wameter holds the 06:00 utility template free in the window; Meta charged it.
    const events = write(
      'charged-in-window.ndjson',
      [
        JSON.stringify({
          kind: 'inbound',
          at: '2025-10-08T05:00:00Z',
          waba: 'W1',
          business: 'PN1',
          user: '919876543210',
          id: 'in1',
        }),
        UTILITY_SENT,
        PRICED_AS_MARKETING.replace('"marketing"', '"utility"'),
      ].join('\n') + '\n',
    );
    const exported = exportOf('charged-in-window.json', 'W1', [point('UTILITY', 0.0014)]);
    const args = [events, '--accounts', accounts, '--analytics', exported];
    const json = await cli([...args, '--format', 'json']);
    expect(json.code).toBe(EXIT.DIFFERENCES);
    expect(JSON.parse(json.out).differences).toEqual([
      expect.objectContaining({ message: 'm1', cause: 'PRICING_TYPE_MISMATCH' }),
      expect.objectContaining({
        bucket: { waba: 'W1', day: '2025-10-08', country: 'IN', category: 'utility' },
        cause: 'PRICING_TYPE_MISMATCH',
        messages: ['m1'],
      }),
    ]);
    const table = await cli(args);
    expect(table.out).toContain('PRICING_TYPE_MISMATCH  2025-10-08 IN utility (WABA W1)');
    expect(table.out).toContain('  messages: m1');
    expect(table.out).not.toContain('COST_DIFFERS');
    expect(table.out).not.toContain("import Meta's official rate card");
  });

  it('a bucket only a message difference names, empty on both sides, is not counted in table nor JSON', async () => {
    // Meta's webhook says marketing, its export utility (as wameter): the marketing bucket of that day holds
    // nothing on either side, so one unit was compared in one bucket, not two.
    const events = write('recategorised.ndjson', `${UTILITY_SENT}\n${PRICED_AS_MARKETING}\n`);
    const exported = exportOf('utility-only.json', 'W1', [point('UTILITY', 0.0014)]);
    const args = [events, '--accounts', accounts, '--analytics', exported];
    const json = await cli([...args, '--format', 'json']);
    const reconciliation = JSON.parse(json.out);
    expect(reconciliation.differences).toEqual([
      expect.objectContaining({ message: 'm1', cause: 'TEMPLATE_RECATEGORISED' }),
    ]);
    expect(reconciliation.checked.buckets).toBe(1);
    const table = await cli(args);
    expect(table.out).toContain('1 unit(s) of wameter in 1 bucket(s).');
    expect(table.out).toContain('1 unit(s) of WABA W1 in 1 analytics bucket(s).');
    expect(table.err).toContain('1 bucket(s)) with Meta');
  });

  it("only Meta's webhook bodies: their categories are Meta's own, so nothing is checked (exit 1), and it says why", async () => {
    const webhook = (id: string, timestamp: number, category: string) =>
      JSON.stringify(
        messagesWebhook('W1', {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: '15550783881', phone_number_id: 'PN1' },
          statuses: [
            {
              id,
              status: 'delivered',
              timestamp: String(timestamp),
              recipient_id: '919876543210',
              pricing: { billable: true, pricing_model: 'PMP', category, type: 'regular' },
            },
          ],
        }),
      );
    const events = write(
      'webhooks-only.ndjson',
      `${webhook('wamid.w1', 1_759_903_203, 'utility')}\n${webhook('wamid.w2', 1_759_906_803, 'marketing')}\n`,
    );
    const table = await cli([events, '--accounts', accounts]);
    expect(table.code).toBe(EXIT.USAGE);
    expect(table.out).not.toContain('agree on');
    expect(table.out).toContain('no agreement is claimed');
    expect(table.out).toContain(
      "Checked: 0 of 2 delivered message(s) against Meta's status webhooks (0 without Meta's pricing: unverifiable; 2 rated from Meta's own category, with no send log line: not checked);",
    );
    expect(table.err).toContain('compared 0 of 2 message(s)');
    expect(table.err).toContain(
      "2 delivered message(s) were rated from Meta's own category (no send log line",
    );
    expect(table.err).toContain('Feed the send log (outbound lines)');
    const json = await cli([events, '--accounts', accounts, '--format', 'json']);
    expect(json.code).toBe(EXIT.USAGE);
    expect(JSON.parse(json.out).checked).toEqual({
      messages: 2,
      unverifiable: 0,
      category_from_webhook: 2,
      buckets: 0,
    });
  });

  it('an export whose id names a WABA the events do not hold is refused, naming both (exit 1)', async () => {
    const events = write(
      'w1-agreeing.ndjson',
      `${UTILITY_SENT}\n${PRICED_AS_MARKETING.replace('"marketing"', '"utility"')}\n`,
    );
    const exported = exportOf('w9.json', 'W9', [point('UTILITY', 0.0014)]);
    const result = await cli([events, '--accounts', accounts, '--analytics', exported, '--format', 'json']);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.out).toBe('');
    expect(result.err).toContain(
      'ANALYTICS_WABA_UNKNOWN: the analytics export names WABA W9, which is not in the events, and the events hold 1 WABA(s) (W1)',
    );
    const named = await cli([events, '--accounts', accounts, '--analytics', exported, '--waba', 'W1']);
    expect(named.code).toBe(EXIT.OK);
  });
});
