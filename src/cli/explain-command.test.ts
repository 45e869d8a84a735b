import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { EXIT } from './exit-codes.js';
import { readCsvRecords } from '../core/rate-card.js';

/** explain --format json's keys, in order: contract §4's with `totals_by_waba` after `totals`, then `findings` (additions the contract allows). */
const EXPLAIN_JSON_KEYS = [
  'user',
  'business',
  'entries',
  'units',
  'totals',
  'totals_by_waba',
  'pending',
  'failed',
  'findings',
];

function cli(args: string[]) {
  return runWameter(['explain', ...args]);
}

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'wameter-explain-'));
function eventsFile(name: string, lines: object[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.map((line) => JSON.stringify(line)).join('\n'));
  return path;
}

const USER = '919876500005';
const send = (id: string, at: string, extra: object = {}) => ({
  kind: 'outbound',
  at,
  waba: 'W1',
  business: 'PN1',
  user: USER,
  id,
  template: 'marketing',
  ...extra,
});
const status = (id: string, at: string, word: string) => ({ kind: 'status', at, id, status: word });

// Only sent: never delivered, so pending.
const onlyPending = eventsFile('pending.ndjson', [
  send('pd1', '2025-10-10T10:00:00Z'),
  status('pd1', '2025-10-10T10:00:05Z', 'sent'),
]);

// A window, a free utility message inside it, a pending and a failed marketing template.
const story = eventsFile('story.ndjson', [
  { kind: 'inbound', at: '2025-10-10T09:00:00Z', waba: 'W1', business: 'PN1', user: USER, id: 'in1' },
  send('ok1', '2025-10-10T09:30:00Z', { template: 'utility' }),
  status('ok1', '2025-10-10T09:30:02Z', 'delivered'),
  send('pd1', '2025-10-10T10:00:00Z'),
  status('pd1', '2025-10-10T10:00:05Z', 'sent'),
  status('f1', '2025-10-10T11:00:07Z', 'failed'), // before its send log line: order does not matter
  send('f1', '2025-10-10T11:00:00Z'),
  send('f2', '2025-10-10T12:00:00Z', { template: null, failed: true }),
  // Reported failed and delivered: the rater rates it as delivered, so it is not a failure here.
  send('df1', '2025-10-10T13:00:00Z', { template: 'utility' }),
  status('df1', '2025-10-10T13:00:01Z', 'failed'),
  status('df1', '2025-10-10T13:00:02Z', 'delivered'),
  // Another user's failure on another business number is not this user's story.
  send('x1', '2025-10-10T12:30:00Z', { user: '919876500009', business: 'PN2', failed: true }),
]);

describe('wameter explain: the WABA’s clock beside UTC', () => {
  it('shows each line of a WABA off UTC at its local time too, the date that decides era and month', async () => {
    // 2025-06-30T20:00Z is July 1st, 08:00 in Auckland: per-message pricing already, there.
    const auckland = eventsFile('auckland.ndjson', [
      send('nz1', '2025-06-30T20:00:00Z', { template: 'utility' }),
      status('nz1', '2025-06-30T20:00:02Z', 'delivered'),
    ]);
    const accounts = join(dir, 'auckland-accounts.json');
    writeFileSync(accounts, JSON.stringify({ accounts: [{ waba: 'W1', timezone: 'Pacific/Auckland' }] }));
    const local = await cli([auckland, '--accounts', accounts, '--user', USER]);
    expect(local.code).toBe(0);
    expect(local.out).toContain(
      '  2025-06-30T20:00:02Z (2025-07-01 08:00 Pacific/Auckland) [PN1]  utility template nz1',
    );
    // On UTC (no accounts file): no second clock.
    const utc = await cli([auckland, '--user', USER]);
    expect(utc.out).toContain('  2025-06-30T20:00:02Z [PN1]  utility template nz1');
  });

  it("gives each unit of the JSON its local_date, the date of its opening on its WABA's clock", async () => {
    const auckland = eventsFile('auckland-json.ndjson', [
      send('nz2', '2025-06-30T20:00:00Z', { template: 'utility' }),
      status('nz2', '2025-06-30T20:00:02Z', 'delivered'),
    ]);
    const accounts = join(dir, 'auckland-json-accounts.json');
    writeFileSync(accounts, JSON.stringify({ accounts: [{ waba: 'W1', timezone: 'Pacific/Auckland' }] }));
    const local = await cli([auckland, '--accounts', accounts, '--user', USER, '--format', 'json']);
    expect(local.code).toBe(0);
    expect((JSON.parse(local.out) as { units: unknown[] }).units).toEqual([
      expect.objectContaining({
        opened_at: '2025-06-30T20:00:02Z',
        local_date: '2025-07-01',
        era: 'PMP-2025',
      }),
    ]);
    const utc = await cli([auckland, '--user', USER, '--format', 'json']);
    expect((JSON.parse(utc.out) as { units: unknown[] }).units).toEqual([
      expect.objectContaining({ local_date: '2025-06-30' }),
    ]);
  });
});

describe('wameter explain: conversations named in words, never by their codes', () => {
  it('a business-initiated conversation closed by a free entry point, an authentication-international one ended', async () => {
    const events = eventsFile('words.ndjson', [
      send('b0', '2024-03-05T00:00:00Z', { template: 'utility', delivered_at: '2024-03-05T00:00:01Z' }),
      {
        ...send('ad', '2024-03-05T02:00:00Z'),
        kind: 'inbound',
        template: undefined,
        referral: { source_type: 'ad' },
      },
      send('b3', '2024-03-05T03:00:00Z', { template: null, delivered_at: '2024-03-05T03:00:01Z' }),
      send('a1', '2024-08-05T00:00:00Z', {
        template: 'authentication',
        delivered_at: '2024-08-05T00:00:01Z',
      }),
    ]);
    const accounts = join(dir, 'words-accounts.json');
    writeFileSync(
      accounts,
      '{"accounts":[{"waba":"W1","primary_country":"ID","auth_international":{"start":"2024-01-01T00:00:00Z"}}]}',
    );
    const cbp2022 = await cli([events, '--user', USER, '--accounts', accounts, '--as-of-rules', 'CBP-2022']);
    expect(cbp2022.out).toContain(
      '  business-initiated conversation u_b0 closed early by a free entry point\n',
    );
    const told = await cli([events, '--user', USER, '--accounts', accounts, '--allow-unpriced']);
    expect(told.out).toContain('  authentication-international conversation u_a1 ended\n');
    expect(told.out).not.toMatch(/_initiated|authentication_international conversation/);
  });
});

describe('wameter explain: messages never charged', () => {
  it('tells a message sent but never delivered instead of saying the user has none', async () => {
    const result = await cli([onlyPending, '--user', USER]);
    expect(result.code).toBe(EXIT.OK);
    expect(result.out).toContain(
      '2025-10-10T10:00:00Z [PN1]  marketing template pd1 sent, never delivered: not charged',
    );
    expect(result.out).toContain('Not charged: 1 message(s) sent but never delivered (pending), 0 failed');
    expect(result.out).not.toContain('no messages');
    expect(result.err).not.toContain('no messages');
  });

  it('gives pending and failed messages in JSON at their send time, in order with the rest', async () => {
    const result = await cli([story, '--user', USER, '--format', 'json']);
    expect(result.code).toBe(EXIT.OK);
    const json = JSON.parse(result.out);
    expect(
      json.entries.map((e: { at: string; kind: string; message_id?: string }) => [
        e.at,
        e.kind,
        e.message_id,
      ]),
    ).toEqual([
      ['2025-10-10T09:00:00Z', 'inbound', 'in1'],
      ['2025-10-10T09:30:02Z', 'message', 'ok1'],
      ['2025-10-10T10:00:00Z', 'pending', 'pd1'],
      ['2025-10-10T11:00:00Z', 'failed', 'f1'],
      ['2025-10-10T12:00:00Z', 'failed', 'f2'],
      ['2025-10-10T13:00:02Z', 'message', 'df1'],
    ]);
    const failed = json.entries.find((e: { message_id?: string }) => e.message_id === 'f1');
    expect(failed.text).toBe('marketing template f1 failed at 2025-10-10T11:00:07Z: never charged');
    expect(failed.cost).toBeUndefined();
    expect(json.entries.find((e: { message_id?: string }) => e.message_id === 'f2').text).toBe(
      'non-template message f2 failed at 2025-10-10T12:00:00Z: never charged',
    );
    expect(json.pending).toEqual([
      { id: 'pd1', waba: 'W1', business: 'PN1', user: USER, sent_at: '2025-10-10T10:00:00Z' },
    ]);
    expect(json.failed).toEqual([
      {
        id: 'f1',
        waba: 'W1',
        business: 'PN1',
        user: USER,
        sent_at: '2025-10-10T11:00:00Z',
        failed_at: '2025-10-10T11:00:07Z',
      },
      {
        id: 'f2',
        waba: 'W1',
        business: 'PN1',
        user: USER,
        sent_at: '2025-10-10T12:00:00Z',
        failed_at: '2025-10-10T12:00:00Z',
      },
    ]);
    // The contract's fields are all still there (additive change only).
    expect(Object.keys(json)).toEqual(EXPLAIN_JSON_KEYS);
  });

  it('gives them as CSV rows with the same columns', async () => {
    const result = await cli([story, '--user', USER, '--format', 'csv']);
    const rows = result.out.trim().split('\n');
    expect(rows[0]).toBe('at,kind,business,message_id,unit_id,era,rule,cost,text,amount,currency,waba');
    expect(rows).toContain(
      '2025-10-10T10:00:00Z,pending,PN1,pd1,,,,,"marketing template pd1 sent, never delivered: not charged",,,W1',
    );
    expect(rows).toContain(
      '2025-10-10T11:00:00Z,failed,PN1,f1,,,,,marketing template f1 failed at 2025-10-10T11:00:07Z: never charged,,,W1',
    );
  });

  it('tells them in the table, with a count apart from the charged total', async () => {
    const result = await cli([story, '--user', USER]);
    expect(result.out).toContain(
      '[PN1]  marketing template f1 failed at 2025-10-10T11:00:07Z: never charged',
    );
    expect(result.out).toContain('Not charged: 1 message(s) sent but never delivered (pending), 2 failed');
  });
});

describe('wameter explain: what is not in the input', () => {
  it('reads --user as estimate reads a number: +, spaces and dashes are ignored', async () => {
    const result = await cli([onlyPending, '--user', '+91 98765-00005', '--format', 'json']);
    expect(result.code).toBe(EXIT.OK);
    const json = JSON.parse(result.out);
    expect(json.user).toBe(USER);
    expect(json.entries).toHaveLength(1);
  });

  it('an unknown user: says the user is not in the input, exit 0', async () => {
    const result = await cli([story, '--user', '919800000001']);
    expect(result.code).toBe(EXIT.OK);
    expect(result.out).toContain('(no messages for this user in the input)');
    expect(result.err).toContain('no messages of user 919800000001 in the input: check the number');
  });

  it('an unknown --business: names the business number, not the user', async () => {
    const result = await cli([story, '--user', USER, '--business', 'PN9']);
    expect(result.code).toBe(EXIT.OK);
    expect(result.err).toContain('business number PN9 is not in the input (it has PN1, PN2)');
    expect(result.err).not.toContain(`no messages of user ${USER}`);
    expect(result.out).toContain('(no messages between this user and this business number in the input)');
  });

  it('a known business number the user never wrote to: names the numbers the user has', async () => {
    const result = await cli([story, '--user', USER, '--business', 'PN2']);
    expect(result.code).toBe(EXIT.OK);
    expect(result.err).toContain(
      `user ${USER} has no messages with business number PN2 in the input, only with PN1`,
    );
  });

  it('neither user nor business number known: says both', async () => {
    const result = await cli([story, '--user', '919800000001', '--business', 'PN9']);
    expect(result.err).toContain('business number PN9 is not in the input');
    expect(result.err).toContain('no messages of user 919800000001 in the input');
  });

  it('--business keeps only that number’s story, pending and failed messages included', async () => {
    const result = await cli([story, '--user', '919876500009', '--business', 'PN2', '--format', 'json']);
    const json = JSON.parse(result.out);
    expect(json.entries.map((e: { kind: string; message_id?: string }) => [e.kind, e.message_id])).toEqual([
      ['failed', 'x1'],
    ]);
    expect(result.err).toBe('');
  });
});

describe('wameter explain: the findings of the story, and its exit code', () => {
  const UK = '447700123456';
  const INDIA = '919876543210';
  const NOWHERE = '99900000001';
  const delivered = (id: string, at: string) => ({ kind: 'status', at, id, status: 'delivered' });
  const utility = (id: string, user: string, extra: object = {}) => ({
    kind: 'outbound',
    at: '2024-03-01T10:05:00Z',
    waba: 'W1',
    business: 'PN1',
    user,
    id,
    template: 'utility',
    ...extra,
  });
  const input = eventsFile('findings.ndjson', [
    // W1: a UK user the 2024 card has no rate for (NO_RATE), an Indian user priced.
    utility('uk1', UK),
    delivered('uk1', '2024-03-01T10:05:03Z'),
    utility('in1', INDIA),
    delivered('in1', '2024-03-01T10:05:04Z'),
    // W2: a number of no known country (UNKNOWN_RECIPIENT), and a delivery no send log line explains
    // (UNKNOWN_CATEGORY, of the whole WABA).
    utility('x1', NOWHERE, { waba: 'W2', business: 'PN2' }),
    delivered('x1', '2024-03-01T10:05:05Z'),
    { ...delivered('x2', '2024-03-01T10:06:00Z'), waba: 'W2', business: 'PN2', user: '919800000002' },
  ]);

  it('the table shows the findings that concern the user, exit 3 for a charged unit without a price', async () => {
    const result = await cli([input, '--user', UK]);
    expect(result.code).toBe(EXIT.UNPRICED);
    expect(result.out).toContain('charged, but no price is known');
    const section = result.out.slice(result.out.indexOf('\nFindings\n'));
    expect(section).toMatch(
      /^\nFindings\n {2}NO_RATE: WABA W1: no row for market "United Kingdom" in rate card usd-2023-06-01-partial \(USD, effective 2023-06-01\), so no utility rate on 2024-03-01: import Meta's USD card in force on 2024-03-01 \(--rate-cards; for the service, WAMETER_RATE_CARDS or "rateCards"\)\n/,
    );
    // Other users' and other WABAs' findings are not this story's.
    expect(section).not.toContain('UNKNOWN_RECIPIENT');
    expect(section).not.toContain('UNKNOWN_CATEGORY');
    expect(result.err).toContain(
      'wameter: 1 charged unit(s) could not be priced (see findings: unknown number, no rate or no rate card); pass --allow-unpriced to accept',
    );
    expect((await cli([input, '--user', UK, '--allow-unpriced'])).code).toBe(EXIT.OK);
  });

  it('JSON has a "findings" list after the contract fields; CSV says them on stderr', async () => {
    const json = await cli([input, '--user', UK, '--format', 'json']);
    const document = JSON.parse(json.out);
    expect(Object.keys(document)).toEqual(EXPLAIN_JSON_KEYS);
    expect(document.findings).toEqual([
      expect.objectContaining({ code: 'NO_RATE', market: 'United Kingdom', waba: 'W1' }),
    ]);
    const csv = await cli([input, '--user', UK, '--format', 'csv']);
    expect(csv.code).toBe(EXIT.UNPRICED);
    expect(csv.out).not.toContain('NO_RATE');
    expect(csv.err).toContain(
      `wameter: 1 finding(s), not in the CSV (--format json lists them too):\nwameter:   NO_RATE: WABA W1: ${document.findings[0].message}\n`,
    );
  });

  it("a finding of the WABA counted over several users says its count is the WABA's, and the story's own share", async () => {
    // Four UK users of W1 the 2024 card has no rate for: one NO_RATE of W1 ×4, one unit of which is UK's.
    const others = ['447700123457', '447700123458', '447700123459'];
    const many = eventsFile('many-uk.ndjson', [
      utility('uk1', UK),
      delivered('uk1', '2024-03-01T10:05:03Z'),
      ...others.flatMap((user, i) => [
        utility(`uk-${i}`, user),
        delivered(`uk-${i}`, '2024-03-01T10:05:06Z'),
      ]),
      // W2's delivery no send log line explains: UNKNOWN_CATEGORY ×2 of W2, whose share no unit tells.
      { ...delivered('x2', '2024-03-01T10:06:00Z'), waba: 'W2', business: 'PN2', user: '919800000002' },
      { ...delivered('x3', '2024-03-01T10:07:00Z'), waba: 'W2', business: 'PN2', user: '919800000003' },
      utility('x1', NOWHERE, { waba: 'W2', business: 'PN2' }),
      delivered('x1', '2024-03-01T10:05:05Z'),
    ]);
    const table = await cli([many, '--user', UK]);
    const section = table.out.slice(table.out.indexOf('\nFindings\n'));
    expect(section).toMatch(/\n {2}NO_RATE: WABA W1: .* \(×1 in this story, of ×4 in WABA W1\)\n/);
    expect(section).not.toContain('(×4)');
    const json = JSON.parse((await cli([many, '--user', UK, '--format', 'json'])).out);
    expect(json.findings).toEqual([expect.objectContaining({ code: 'NO_RATE', count: 4, story_count: 1 })]);
    const csv = await cli([many, '--user', UK, '--format', 'csv']);
    expect(csv.err).toContain('(×1 in this story, of ×4 in WABA W1)');
    // A finding whose share of the story its units cannot tell: the count is said to be the WABA's.
    const nowhere = await cli([many, '--user', NOWHERE]);
    expect(nowhere.out).toMatch(/\n {2}UNKNOWN_CATEGORY: .* \(×2 in WABA W2\)\n/);
  });

  it('a priced story shows no findings of others and exits 0', async () => {
    const result = await cli([input, '--user', INDIA, '--format', 'json']);
    expect(result.code).toBe(EXIT.OK);
    expect(JSON.parse(result.out).findings).toEqual([]);
    const table = await cli([input, '--user', INDIA]);
    expect(table.out).not.toContain('Findings');
    expect(table.err).toBe('');
  });

  it('a story of a WABA with delivered messages that could not be rated: its number’s and its WABA’s findings, exit 3', async () => {
    const result = await cli([input, '--user', NOWHERE, '--format', 'json']);
    expect(result.code).toBe(EXIT.UNPRICED);
    const codes = JSON.parse(result.out).findings.map((f: { code: string }) => f.code);
    expect(codes.sort()).toEqual(['UNKNOWN_CATEGORY', 'UNKNOWN_RECIPIENT']);
    expect(result.err).toContain('1 delivered message(s) could not be rated');
  });

  it('a malformed line besides: both said, exit 2', async () => {
    const broken = join(dir, 'broken.ndjson');
    writeFileSync(broken, 'not json\n');
    const result = await cli([input, broken, '--user', UK]);
    expect(result.code).toBe(EXIT.BAD_INPUT);
    expect(result.err).toContain(`${broken}:1:`);
    expect(result.err).toContain('1 charged unit(s) could not be priced');
  });

  it('takes a --user that is no phone number as written: a business-scoped user id, as the README says', async () => {
    const scoped = 'US.13491208655302741918';
    const file = eventsFile('scoped.ndjson', [
      { kind: 'inbound', at: '2025-10-10T09:00:00Z', waba: 'W1', business: 'PN1', user: scoped, id: 'bs1' },
    ]);
    const result = await cli([file, '--user', ` ${scoped} `, '--format', 'json']);
    expect(result.code).toBe(EXIT.OK);
    expect(JSON.parse(result.out)).toMatchObject({ user: scoped, entries: [expect.anything()] });
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('### `wameter explain'),
      readme.indexOf('### `wameter estimate'),
    );
    const said = section.replace(/\s+/g, ' ');
    expect(said).not.toContain('is read like a recipient of `estimate`');
    expect(said).toContain('a business-scoped user id');
    expect(said).toContain('exactly as written');
    expect(said).toContain('`abc` is accepted');
  });

  it('refuses to run without a source whatever stdin is: stdin is read only with -', async () => {
    const said = 'wameter: give event files or folders, or - to read stdin (see wameter explain --help)\n';
    const lines = readFileSync(story, 'utf8');
    for (const stdin of [undefined, lines, '']) {
      const result = await runWameter(['explain', '--user', USER], stdin === undefined ? {} : { stdin });
      expect(result.code, JSON.stringify(stdin)).toBe(EXIT.USAGE);
      expect(result.out).toBe('');
      expect(result.err).toBe(said);
    }
    const piped = await runWameter(['explain', '-', '--user', USER, '--format', 'json'], { stdin: lines });
    expect(piped.code).toBe(EXIT.OK);
    expect(JSON.parse(piped.out).user).toBe(USER);
  });

  it('refuses a missing only source (exit 1) rather than telling an empty story', async () => {
    const { code, out, err } = await cli(['/nonexistent/events.ndjson', '--user', USER]);
    expect(code).toBe(EXIT.USAGE);
    expect(out).toBe('');
    expect(err).toContain("no such file or folder: '/nonexistent/events.ndjson'; nothing was read");
  });

  it("two WABAs naming one message id: each line shows its own unit's cost, and the lines add up to the total", async () => {
    const sentBy = (waba: string, business: string, at: string, template: string) => ({
      kind: 'outbound',
      at,
      waba,
      business,
      user: '919876543210',
      id: 'X',
      template,
      delivered_at: at.replace(':00Z', ':05Z'),
    });
    const file = eventsFile('shared-id.ndjson', [
      sentBy('W1', 'PN1', '2024-03-04T10:00:00Z', 'marketing'),
      sentBy('W2', 'PN2', '2024-03-04T11:00:00Z', 'utility'),
    ]);
    const { out } = await cli([file, '--user', '919876543210', '--format', 'json']);
    const story = JSON.parse(out) as {
      entries: { business: string; cost?: string; amount?: string | null; currency?: string }[];
      totals: Record<string, { amount: string }>;
    };
    // CBP-2023, India: marketing 0.0099, utility 0.0042 (usd-2023-06-01-partial).
    expect(story.entries.filter((e) => e.cost).map((e) => [e.business, e.cost])).toEqual([
      ['PN1', '0.0099 USD'],
      ['PN2', '0.0042 USD'],
    ]);
    // The same as data, which a script (or a spreadsheet, from the CSV) can add up.
    expect(story.entries.filter((e) => e.cost).map((e) => [e.amount, e.currency])).toEqual([
      ['0.0099', 'USD'],
      ['0.0042', 'USD'],
    ]);
    expect(story.totals.USD!.amount).toBe('0.0141');
    const csv = await cli([file, '--user', '919876543210', '--format', 'csv']);
    const records = readCsvRecords(csv.out);
    if (!records.ok) throw new Error(records.error.message);
    const [header, ...rows] = records.value.map((record) => record.cells);
    const amounts = rows
      .map((cells) => [cells[header!.indexOf('amount')], cells[header!.indexOf('currency')]])
      .filter(([amount]) => amount !== '');
    expect(amounts).toEqual([
      ['0.0099', 'USD'],
      ['0.0042', 'USD'],
    ]);
  });

  it('an empty --user is refused with what to give', async () => {
    for (const user of ['', '   ']) {
      const result = await cli([input, '--user', user]);
      expect(result.code, JSON.stringify(user)).toBe(EXIT.USAGE);
      expect(result.err, JSON.stringify(user)).toContain(
        "the value is empty (an unset variable in a script?): the flag needs a user's WhatsApp id",
      );
      expect(result.out).toBe('');
    }
  });

  it('the --help example tells a story from the bundled example month', async () => {
    const help = await runWameter(['explain', '--help']);
    const example = help.out
      .split('\n')
      .map((line) => line.trim())
      .find((line) => line.startsWith('wameter explain '));
    expect(example).toBeDefined();
    const args = example!.split(/\s+/).slice(1);
    const result = await runWameter(args.map((arg) => (arg.startsWith('examples/') ? join(ROOT, arg) : arg)));
    expect(result.code).toBe(EXIT.OK);
    expect(result.out).not.toContain('no messages');
    expect(result.err).not.toContain('no messages');
    expect(result.out).toMatch(/Total: [\d.]+ \w+ over [1-9]\d* unit\(s\)/);
  });
});

describe('wameter explain: a user written two ways', () => {
  it("tells a Brazilian user's story asked in either form, the webhook's and the send log's in one window", async () => {
    const file = eventsFile('brazil.ndjson', [
      // Meta's wa_id without the ninth digit; the send log writes the number with it.
      {
        kind: 'inbound',
        at: '2025-10-10T09:00:00Z',
        waba: 'W1',
        business: 'PN1',
        user: '552187654321',
        id: 'bi1',
      },
      { ...send('bo1', '2025-10-10T09:30:00Z', { template: 'utility' }), user: '5521987654321' },
      status('bo1', '2025-10-10T09:30:02Z', 'delivered'),
      { ...send('bf1', '2025-10-10T10:00:00Z'), user: '552187654321' },
      status('bf1', '2025-10-10T10:00:07Z', 'failed'),
    ]);
    for (const asked of ['552187654321', '+55 21 98765-4321']) {
      const result = await cli([file, '--user', asked, '--format', 'json']);
      expect(result.code).toBe(EXIT.OK);
      const story = JSON.parse(result.out) as {
        user: string;
        units: { amount: string }[];
        failed: { id: string }[];
      };
      expect(story.user).toBe('5521987654321');
      // The utility template inside the user's window is free (PMP): one window, not two users.
      expect(story.units.map((unit) => unit.amount)).toEqual(['0']);
      expect(story.failed.map((message) => message.id)).toEqual(['bf1']);
    }
  });
});

describe('explain --user with a business-scoped user id Meta joined to a number', () => {
  // Meta's real payload gives the number 972987654321 and its business-scoped id together; the business's
  // answer is then addressed to the id alone (`recipient_id` empty, `recipient_user_id`), as Meta documents.
  const fixtures = join(ROOT, 'test', 'fixtures', 'webhooks', 'pywa');
  const scopedId = 'US.13491208655302741918';
  const inbound = readFileSync(join(fixtures, 'incoming_text.json'), 'utf8');
  const answer = JSON.parse(readFileSync(join(fixtures, 'status_delivered.json'), 'utf8')) as {
    entry: {
      id: string;
      changes: { value: { contacts: object[]; statuses: Record<string, unknown>[] } }[];
    }[];
  };
  answer.entry[0]!.id = '1234567890987654321'; // the inbound's WABA
  const [status] = answer.entry[0]!.changes[0]!.value.statuses;
  Object.assign(status!, {
    id: 'wamid.answer',
    timestamp: '1697043300',
    recipient_id: '',
    recipient_user_id: scopedId,
    pricing: { billable: false, pricing_model: 'CBP', category: 'service' },
  });
  answer.entry[0]!.changes[0]!.value.contacts = [
    { profile: { name: 'Test Name' }, wa_id: '', user_id: scopedId },
  ];
  // A message to the number that failed: the number's story lists it, whoever asks.
  const failure = JSON.parse(readFileSync(join(fixtures, 'status_failed.json'), 'utf8')) as {
    entry: { id: string; changes: { value: { statuses: Record<string, unknown>[] } }[] }[];
  };
  failure.entry[0]!.id = '1234567890987654321';
  Object.assign(failure.entry[0]!.changes[0]!.value.statuses[0]!, {
    id: 'wamid.failed',
    timestamp: '1697043400',
  });
  const bodies = join(dir, 'scoped-id.ndjson');
  writeFileSync(
    bodies,
    `${JSON.stringify(JSON.parse(inbound))}\n${JSON.stringify(answer)}\n${JSON.stringify(failure)}\n`,
  );

  it('tells the story of the number Meta joined the id to, and says so, in JSON and words', async () => {
    const byNumber = await cli([bodies, '--user', '972987654321', '--format', 'json']);
    expect(byNumber.code, byNumber.err).toBe(EXIT.OK);
    const byId = await cli([bodies, '--user', scopedId, '--format', 'json']);
    expect(byId.code, byId.err).toBe(EXIT.OK);
    const number = JSON.parse(byNumber.out) as Record<string, unknown> & {
      entries: { message_id?: string }[];
    };
    const id = JSON.parse(byId.out) as Record<string, unknown>;
    expect(number.entries.flatMap((entry) => entry.message_id ?? [])).toEqual([
      'wamid.xyzxyz',
      'wamid.answer',
      'wamid.failed',
    ]);
    expect(Object.keys(id)).toEqual(['user', 'scoped_user', ...EXPLAIN_JSON_KEYS.slice(1)]);
    expect((number.failed as { id: string }[]).map((message) => message.id)).toEqual(['wamid.failed']);
    expect(id).toEqual({ ...number, scoped_user: scopedId });
    expect(id.user).toBe('972987654321');
    const words = await cli([bodies, '--user', scopedId]);
    expect(words.code).toBe(EXIT.OK);
    expect(words.out).toContain(
      `Timeline of user 972987654321\n  (business-scoped user ${scopedId} is this number`,
    );
    expect(words.out).toContain('wamid.answer');
    expect(words.err).not.toContain('check the number');
  });

  // The number's own failures are read from the sources a second time: never from what can be read once.
  it('from stdin or a named pipe: told without reading twice (no wait for ever), and stderr says what is not listed', async () => {
    const said = (source: string) =>
      `wameter: ${scopedId} is joined to 972987654321: failed messages sent to 972987654321 itself are not listed, because ${source} can be read only once; give the events as a file to list them\n`;
    const text = readFileSync(bodies, 'utf8');
    const piped = await runWameter(['explain', '-', '--user', scopedId, '--format', 'json'], { stdin: text });
    expect(piped.code, piped.err).toBe(EXIT.OK);
    expect(piped.err).toContain(said('stdin'));
    expect(JSON.parse(piped.out)).toMatchObject({ user: '972987654321', scoped_user: scopedId, failed: [] });
    const fifo = join(mkdtempSync(join(tmpdir(), 'wameter-fifo-')), 'events.fifo');
    execFileSync('mkfifo', [fifo]);
    createWriteStream(fifo).end(text);
    const fromPipe = await cli([fifo, '--user', scopedId, '--format', 'json']);
    expect(fromPipe.code, fromPipe.err).toBe(EXIT.OK);
    expect(fromPipe.err).toContain(said(`${fifo} (a pipe or device)`));
    expect(JSON.parse(fromPipe.out)).toEqual(JSON.parse(piped.out));
  });
});

describe('wameter explain: a user messaged by two client WABAs', () => {
  // A provider's two clients (WABAs W1 and W2, both billed in USD) message one customer: the story is the
  // customer's, but each client is re-billed its own share, so the story says whose each line and amount is.
  const twoClients = eventsFile('two-clients.ndjson', [
    send('w1a', '2025-10-10T09:00:00Z'),
    status('w1a', '2025-10-10T09:00:05Z', 'delivered'),
    send('w2a', '2025-10-11T09:00:00Z', { waba: 'W2', business: 'PN2' }),
    status('w2a', '2025-10-11T09:00:05Z', 'delivered'),
    send('w2b', '2025-10-12T09:00:00Z', { waba: 'W2', business: 'PN2', template: 'utility' }),
    status('w2b', '2025-10-12T09:00:05Z', 'delivered'),
  ]);

  it("gives each WABA's own totals beside the story's (By WABA, totals_by_waba), which add up to them", async () => {
    const json = await cli([twoClients, '--user', USER, '--format', 'json']);
    expect(json.code, json.err).toBe(EXIT.OK);
    const document = JSON.parse(json.out) as {
      totals: Record<string, { amount: string; units: number }>;
      totals_by_waba: Record<string, Record<string, { amount: string; units: number }>>;
      units: { waba: string; amount: string }[];
    };
    expect(Object.keys(document.totals_by_waba)).toEqual(['W1', 'W2']);
    for (const waba of ['W1', 'W2']) {
      const own = document.units.filter((unit) => unit.waba === waba);
      expect(document.totals_by_waba[waba]!.USD!.units).toBe(own.length);
      const micros = own.reduce((sum, unit) => sum + Math.round(Number(unit.amount) * 1e6), 0);
      expect(Math.round(Number(document.totals_by_waba[waba]!.USD!.amount) * 1e6)).toBe(micros);
    }
    expect(document.totals.USD!.units).toBe(3);

    const table = await cli([twoClients, '--user', USER]);
    expect(table.code, table.err).toBe(EXIT.OK);
    const byWaba = table.out.slice(table.out.indexOf('\nBy WABA\n'));
    expect(table.out).toContain('\nBy WABA\n');
    for (const waba of ['W1', 'W2']) {
      const usd = document.totals_by_waba[waba]!.USD!;
      expect(byWaba).toMatch(
        new RegExp(`\\n  ${waba} +USD +${usd.amount.replace('.', '\\.')}  over ${usd.units} unit\\(s\\)`),
      );
    }
    // Each line names its WABA beside its business number, so that a client's lines can be told apart.
    expect(table.out).toContain('[WABA W1, number PN1]');
    expect(table.out).toContain('[WABA W2, number PN2]');
    const entries = (JSON.parse(json.out) as { entries: { waba: string; business: string }[] }).entries;
    expect(entries.map((entry) => `${entry.waba} ${entry.business}`)).toEqual(['W1 PN1', 'W2 PN2', 'W2 PN2']);
    const csv = (await cli([twoClients, '--user', USER, '--format', 'csv'])).out.trim().split('\n');
    expect(csv[0]!.split(',').at(-1)).toBe('waba');
    expect(csv.slice(1).map((row) => row.split(',').at(-1))).toEqual(entries.map((entry) => entry.waba));
  });

  it('says nothing of WABAs when the story has one (JSON: its totals under its WABA)', async () => {
    const json = await cli([twoClients, '--user', USER, '--business', 'PN2', '--format', 'json']);
    const document = JSON.parse(json.out) as { totals: object; totals_by_waba: Record<string, object> };
    expect(document.totals_by_waba).toEqual({ W2: document.totals });
    const table = await cli([twoClients, '--user', USER]);
    const one = await cli([twoClients, '--user', USER, '--business', 'PN2']);
    expect(one.out).not.toContain('By WABA');
    expect(one.out).not.toContain('[WABA');
    expect(table.out).toContain('By WABA');
  });
});

describe("wameter explain: a finding of the WABA never names another user's unit or message", () => {
  const REPORTED = '919812345678';
  const SEPTEMBER = '916313906162';
  const OCTOBER = '919800000003';
  const template = (id: string, user: string, at: string) => [
    { kind: 'outbound', at, waba: 'W1', business: 'PN1', user, id, template: 'utility' },
    { kind: 'status', at: at.replace(':00Z', ':02Z'), id, status: 'delivered' },
  ];
  const input = eventsFile('reported-rules-of-one-user.ndjson', [
    // The WABA's first unit under the reported PMP-2026-10 rules, reported delivered and failed: another user's.
    ...template('wamid.reported', REPORTED, '2026-10-05T10:00:00Z'),
    { kind: 'status', at: '2026-10-05T10:00:09Z', id: 'wamid.reported', status: 'failed' },
    // All of this user's charges were PMP-2025.
    ...template('wamid.sept', SEPTEMBER, '2026-09-20T10:00:00Z'),
    ...template('wamid.c1', OCTOBER, '2026-10-07T08:00:00Z'),
    ...template('wamid.c2', OCTOBER, '2026-10-08T08:00:00Z'),
  ]);
  const findingsOf = async (user: string) => {
    const result = await cli([input, '--user', user, '--format', 'json', '--allow-unpriced']);
    expect(result.code, result.err).toBe(EXIT.OK);
    return JSON.parse(result.out) as { findings: Record<string, unknown>[] };
  };

  it('a story of PMP-2025 charges is not told of the reported rules, nor of the other user', async () => {
    const document = await findingsOf(SEPTEMBER);
    expect(document.findings.map((finding) => finding.code)).not.toContain('REPORTED_RULES');
    // The WABA's feed's delivered-and-failed report is told, its example withheld.
    expect(document.findings).toContainEqual(
      expect.objectContaining({
        code: 'DELIVERED_AND_FAILED',
        message:
          "WABA W1: messages were reported both delivered and failed (first: [not this user's]): rated as delivered",
      }),
    );
    expect(JSON.stringify(document)).not.toContain('wamid.reported');
    expect(JSON.stringify(document)).not.toContain(REPORTED);
    const table = await cli([input, '--user', SEPTEMBER, '--allow-unpriced']);
    expect(table.out).not.toContain('wamid.reported');
    expect(table.out).not.toContain('REPORTED_RULES');
  });

  it('a story of units under the reported rules is told of them, naming its own first unit', async () => {
    const document = await findingsOf(OCTOBER);
    expect(document.findings.filter((finding) => finding.code === 'REPORTED_RULES')).toEqual([
      expect.objectContaining({ unit_id: 'u_wamid.c1', date: '2026-10-07', count: 3, story_count: 2 }),
    ]);
    const reported = document.findings.find((finding) => finding.code === 'REPORTED_RULES')!;
    expect(reported.message).toMatch(
      /^WABA W1: messages \(first: unit u_wamid\.c1, on 2026-10-07\) were rated/,
    );
    expect(JSON.stringify(document)).not.toContain('wamid.reported');
    // The user whose unit it names hears it as the rating said it.
    const own = await findingsOf(REPORTED);
    expect(own.findings).toContainEqual(
      expect.objectContaining({ code: 'REPORTED_RULES', unit_id: 'u_wamid.reported', date: '2026-10-05' }),
    );
    expect(own.findings).toContainEqual(
      expect.objectContaining({ code: 'DELIVERED_AND_FAILED', message_id: 'wamid.reported' }),
    );
  });
});
