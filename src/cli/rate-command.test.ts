import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { accountWebhook, messagesWebhook, tierStatementWebhook } from '../../test/support/webhook-body.js';

const ROOT = join(import.meta.dirname, '..', '..');
const EXAMPLE = join(ROOT, 'examples', 'month', 'events.ndjson');
const EXAMPLE_ACCOUNTS = join(ROOT, 'examples', 'month', 'accounts.json');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'webhooks');

async function run(args: string[], stdin?: string) {
  const { code, out, err } = await runWameter(args, stdin === undefined ? {} : { stdin });
  return { code, out, error: err };
}

function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-cli-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

let lateDelivery: string | undefined;

/**
 * A message sent at T0, then 60,000 other users' messages over 30 h, then the message's delivery report
 * (stamped T0 + 5 s): 30 h late in the file, the way a webhook Meta retried for a day arrives.
 */
function lateDeliveryFile(): string {
  if (lateDelivery) return lateDelivery;
  const t0 = Date.parse('2025-10-10T00:00:00Z');
  const iso = (ms: number) => new Date(ms).toISOString();
  const lines = [
    `{"kind":"outbound","at":"${iso(t0)}","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.late","template":"marketing"}`,
  ];
  for (let i = 0; i < 60_000; i++) {
    const user = `91980${String(i).padStart(7, '0')}`;
    lines.push(
      `{"kind":"inbound","at":"${iso(t0 + 60_000 + i * 1800)}","waba":"W1","business":"PN1","user":"${user}","id":"in${i}"}`,
    );
  }
  lines.push(`{"kind":"status","at":"${iso(t0 + 5000)}","id":"wamid.late","status":"delivered"}`);
  lateDelivery = tempFile('late.ndjson', lines.join('\n'));
  return lateDelivery;
}

const LINES = [
  '{"kind":"inbound","at":"2024-03-01T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.in1"}',
  '{"kind":"outbound","at":"2024-03-01T10:05:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.o1","template":"utility"}',
  '{"kind":"status","at":"2024-03-01T10:05:03Z","id":"wamid.o1","status":"delivered"}',
];

describe('wameter rate', () => {
  it('a rate card saved from Excel as a workbook (.xlsx, a zip) is said to be one, not to be converted from Windows-1252', async () => {
    const workbook = tempFile('rates.xlsx', '');
    writeFileSync(
      workbook,
      Buffer.concat([
        Buffer.from('PK\u0003\u0004\u0014\u0000\u0006\u0000'),
        Buffer.from([0xa2, 0x9f, 0x00, 0xd8]),
      ]),
    );
    const { code, out, error } = await run(['rate', EXAMPLE, '--rate-cards', workbook]);
    expect(out).toBe('');
    expect(error).toContain(`cannot read rate card ${workbook}: it is not a text file but a zip archive`);
    expect(error).toContain('as CSV UTF-8');
    expect(error).not.toContain('WINDOWS-1252');
    expect(code).toBe(1);
  });

  it('prints the contract JSON document with exact decimal amounts', async () => {
    const { code, out } = await run(['rate', tempFile('e.ndjson', LINES.join('\n')), '--format', 'json']);
    expect(code).toBe(0);
    const document = JSON.parse(out);
    expect(document.units).toHaveLength(1);
    expect(document.units[0]).toMatchObject({
      id: 'u_wamid.o1',
      unit: 'conversation',
      pricing_model: 'CBP',
      era: 'CBP-2023',
      market: 'India',
      category: 'utility',
      type: 'regular',
      opened_at: '2024-03-01T10:05:03Z',
      expires_at: '2024-03-02T10:05:03Z',
      messages: ['wamid.o1'],
      rate: '0.0042',
      amount: '0.0042',
      currency: 'USD',
      rate_card: 'usd-2023-06-01-partial',
    });
    expect(document.totals).toEqual({
      USD: { amount: '0.0042', units: 1, by_category: { utility: { units: 1, amount: '0.0042' } } },
    });
    expect(document.pending).toEqual([]);
    expect(document.findings).toEqual([]);
  });

  it('refuses to run without a source whatever stdin is: stdin is read only with -', async () => {
    const said = 'wameter: give event files or folders, or - to read stdin (see wameter rate --help)\n';
    // A terminal, a pipe with events (cron with an empty $FILES), an empty pipe (</dev/null): the same refusal.
    for (const stdin of [undefined, LINES.join('\n'), '']) {
      const { code, out, error } = await run(['rate', '--format', 'json'], stdin);
      expect(code, JSON.stringify(stdin)).toBe(1);
      expect(out).toBe('');
      expect(error).toBe(said);
    }
  });

  it('refuses an empty source among others (an unset variable in a script), nothing rated', async () => {
    const events = tempFile('e.ndjson', LINES.join('\n'));
    for (const command of ['rate', 'explain', 'reconcile']) {
      const extra = command === 'explain' ? ['--user', '919876543210'] : [];
      const { code, out, error } = await run([command, events, ' ', ...extra]);
      expect(code, command).toBe(1);
      expect(out).toBe('');
      expect(error).toBe(
        'wameter: source 2 is empty (an unset variable in a script?): give event files or folders, or - to read stdin\n',
      );
    }
  });

  it('says which WABAs of the traffic an accounts file given leaves on the defaults (ACCOUNT_NOT_LISTED)', async () => {
    const accounts = tempFile(
      'accounts.json',
      JSON.stringify({ accounts: [{ waba: '291612946114990', timezone: 'Asia/Kolkata', currency: 'USD' }] }),
    );
    const events = tempFile(
      'w.ndjson',
      [
        '{"kind":"outbound","at":"2025-10-01T10:00:00Z","waba":"29161294611499","business":"PN1","user":"919876543210","id":"m1","template":"marketing"}',
        '{"kind":"status","at":"2025-10-01T10:00:03Z","id":"m1","status":"delivered"}',
      ].join('\n'),
    );
    const { code, out } = await run(['rate', events, '--accounts', accounts, '--format', 'json']);
    expect(code).toBe(0);
    expect((JSON.parse(out) as { findings: object[] }).findings).toContainEqual(
      expect.objectContaining({
        code: 'ACCOUNT_NOT_LISTED',
        waba: '29161294611499',
        message: expect.stringContaining('is not in the accounts file: it is rated with the defaults'),
      }),
    );
  });

  it('reads stdin with -', async () => {
    const { code, out } = await run(['rate', '-', '--format', 'csv'], LINES.join('\n'));
    expect(code).toBe(0);
    const [header, row, ...rest] = out.trim().split('\n');
    expect(header).toContain('id,unit,pricing_model');
    expect(row).toContain('u_wamid.o1,conversation,CBP,CBP-2023');
    expect(rest).toEqual([]);
  });

  it('names the file and line of a malformed line, rates everything else and exits 2', async () => {
    const path = tempFile('bad.ndjson', [LINES[0], '{"kind":"outbound",', LINES[1], LINES[2]].join('\n'));
    const { code, out, error } = await run(['rate', path, '--format', 'json']);
    expect(code).toBe(2);
    expect(error).toContain(`${path}:2:`);
    expect(error).not.toMatch(/\n\s+at /); // no stack trace
    expect(JSON.parse(out).units).toHaveLength(1);
  });

  it('warns about an empty file by name and rates the others (exit 0: an empty file is not bad input)', async () => {
    const empty = tempFile('empty.ndjson', '\n\n');
    const good = tempFile('good.ndjson', LINES.join('\n'));
    const { code, out, error } = await run(['rate', empty, good, '--format', 'json']);
    expect(code).toBe(0);
    expect(JSON.parse(out).units).toHaveLength(1);
    expect(error).toContain(`wameter: ${empty}: warning: no events: the source is empty`);
    expect(error).not.toContain(good);
  });

  it('refuses sources that are all empty (exit 1, no empty bill printed): a truncated log is not "nothing charged"', async () => {
    const empty = tempFile('only-empty.ndjson', '');
    const blank = tempFile('only-blank.ndjson', '\n\n');
    for (const sources of [[empty], [empty, blank]]) {
      for (const format of ['table', 'json', 'csv']) {
        const { code, out, error } = await run(['rate', ...sources, '--format', format]);
        expect(code).toBe(1);
        expect(out).toBe('');
        expect(error).toContain(`wameter: ${empty}: warning: no events: the source is empty`);
        expect(error).toContain(
          `the sources hold no event (${sources.length === 1 ? empty : 'all 2'} empty, said above): nothing was rated`,
        );
      }
    }
    // Items that are not billing events are an answer: nothing billable happened (exit 0).
    const echoes = tempFile(
      'only-echoes.ndjson',
      JSON.stringify(
        messagesWebhook('W1', {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: '1', phone_number_id: 'PN1' },
          statuses: [
            {
              id: 'g1',
              status: 'delivered',
              timestamp: '1760000000',
              recipient_id: '120363000000000000',
              recipient_type: 'group',
            },
          ],
        }),
      ),
    );
    const skipped = await run(['rate', echoes, '--format', 'json']);
    expect(skipped.code, skipped.error).toBe(0);
    expect(skipped.error).toContain('skipped, not billing events');
  });

  it('refuses a missing only source (exit 1, no empty bill printed), with a message, not a stack trace', async () => {
    for (const format of ['table', 'json', 'csv']) {
      const { code, out, error } = await run(['rate', '/nonexistent/events.ndjson', '--format', format]);
      expect(code).toBe(1);
      expect(out).toBe('');
      expect(error).toContain("no such file or folder: '/nonexistent/events.ndjson'; nothing was read");
      expect(error).not.toMatch(/\n\s+at /);
    }
  });

  it('refuses sources from which not one event could be read (exit 1, no empty bill), naming each problem', async () => {
    const gzip = tempFile('events.ndjson', '');
    writeFileSync(gzip, gzipSync(LINES.join('\n')));
    const malformed = tempFile('broken.ndjson', 'phone,amount\n919876543210,3\n');
    for (const sources of [[gzip], [malformed], [gzip, malformed]]) {
      const { code, out, error } = await run(['rate', ...sources, '--format', 'json']);
      expect(code).toBe(1);
      expect(out).toBe('');
      expect(error).toContain(`${sources[0]}:`);
      expect(error).toContain(
        'no event could be read from the sources (each problem is named above): nothing was rated',
      );
      // Nothing was rated: the count of problems does not say every other line was.
      expect(error).toMatch(/input problem\(s\)\n/);
      expect(error).not.toContain('every other line was read and rated');
    }
    // One readable event beside them: rated, the problems named (exit 2).
    const good = tempFile('good.ndjson', LINES.join('\n'));
    const mixed = await run(['rate', gzip, good, '--format', 'json']);
    expect(mixed.code).toBe(2);
    expect(JSON.parse(mixed.out).units).toHaveLength(1);
    expect(mixed.error).toContain('1 input problem(s); every other line was read and rated');
  });

  it('the table shows opening times to the second, so rows line up whatever their milliseconds', async () => {
    const lines = LINES.map((line) => line.replace('10:05:03Z', '10:05:03.250Z'));
    const { out } = await run(['rate', tempFile('ms.ndjson', lines.join('\n'))]);
    const [header, row] = out.split('\n');
    expect(row).toMatch(/^2024-03-01T10:05:03Z W1 /);
    expect(row!.indexOf('W1')).toBe(header!.indexOf('waba'));
  });

  it('rates the sources that exist beside a missing one, naming it (exit 2)', async () => {
    const good = tempFile('e.ndjson', LINES.join('\n'));
    const { code, out, error } = await run(['rate', good, '/nonexistent/events.ndjson', '--format', 'json']);
    expect(code).toBe(2);
    expect(JSON.parse(out).units).toHaveLength(1);
    expect(error).toContain('/nonexistent/events.ndjson: UNREADABLE_SOURCE');
  });

  it('exits 3 and names market, category and date when a charged unit has no rate', async () => {
    const uk = LINES.map((line) => line.replace('919876543210', '447700123456'));
    const { code, out, error } = await run([
      'rate',
      tempFile('uk.ndjson', uk.join('\n')),
      '--format',
      'json',
    ]);
    expect(code).toBe(3);
    const finding = JSON.parse(out).findings.find((f: { code: string }) => f.code === 'NO_RATE');
    expect(finding.message).toContain('United Kingdom');
    expect(finding.message).toContain('2024-03-01');
    expect(finding.message).toContain('utility');
    expect(error).toContain('--allow-unpriced');
    // The total does not pass the unpriced unit off as free: it counts it apart.
    expect(JSON.parse(out).totals).toEqual({
      USD: {
        amount: '0',
        units: 1,
        unpriced: 1,
        by_category: { utility: { units: 1, unpriced: 1, amount: '0' } },
      },
    });
    const allowed = await run(['rate', tempFile('uk.ndjson', uk.join('\n')), '--allow-unpriced']);
    expect(allowed.code).toBe(0);
    expect(allowed.out).toContain(
      'USD             0  over 1 unit(s) (1 not priced, not in the amount: see findings)',
    );
  });

  it('a finding of each of two WABAs names its WABA: never two identical lines read as one problem said twice', async () => {
    const lines = ['WA', 'WB'].flatMap((waba, i) => [
      `{"kind":"outbound","at":"2025-10-1${i}T00:00:00Z","waba":"${waba}","business":"P${waba}","user":"999072528450","id":"u${i}","template":"marketing","delivered_at":"2025-10-1${i}T00:00:02Z"}`,
      `{"kind":"outbound","at":"2025-10-1${i}T00:00:00Z","waba":"${waba}","business":"P${waba}","user":"447700123456","id":"g${i}","template":"marketing","delivered_at":"2025-10-1${i}T00:00:02Z"}`,
    ]);
    const file = tempFile('two-wabas.ndjson', lines.join('\n'));
    const partial = join(ROOT, 'data', 'rate-cards', 'usd-2023-06-01-partial.csv');
    const { code, out } = await run(['rate', file, '--rate-cards', partial, '--allow-unpriced']);
    expect(code).toBe(0);
    const findings = out
      .slice(out.indexOf('\nFindings\n'))
      .split('\n')
      .filter((line) => line.startsWith('  '));
    expect(findings).toHaveLength(4);
    expect(new Set(findings).size).toBe(4);
    expect(findings).toContain(
      '  UNKNOWN_RECIPIENT: WABA WA: Recipient 999072528450 does not start with a known country calling code, so its market is unknown and its messages cannot be priced; check that user ids are E.164 digits (country code first, no "+")',
    );
    expect(
      findings.filter((line) => line.startsWith('  NO_RATE: WABA WB: no row for market "United Kingdom"')),
    ).toHaveLength(1);
    // The JSON keeps each message as the rater wrote it, its WABA in its own field.
    const json = JSON.parse((await run(['rate', file, '--rate-cards', partial, '--format', 'json'])).out);
    const noRate = json.findings.filter((f: { code: string }) => f.code === 'NO_RATE');
    expect(noRate.map((f: { waba: string }) => f.waba).sort()).toEqual(['WA', 'WB']);
    expect(noRate[0].message).toMatch(/^no row for market "United Kingdom"/);
  });

  it('exits 3 when a delivered message could not be rated (no category anywhere), 0 with --allow-unpriced', async () => {
    // A status alone, its category unknown to wameter, and no outbound line.
    const status = JSON.stringify({
      kind: 'status',
      at: '2024-03-01T10:05:03Z',
      id: 'wamid.x',
      status: 'delivered',
      waba: 'W1',
      business: 'PN1',
      user: '919876543210',
    });
    const file = tempFile('status.ndjson', status);
    const { code, out, error } = await run(['rate', file, '--format', 'json']);
    expect(code).toBe(3);
    expect(JSON.parse(out).findings.map((f: { code: string }) => f.code)).toContain('UNKNOWN_CATEGORY');
    expect(error).toContain('1 delivered message(s) could not be rated');
    expect((await run(['rate', file, '--allow-unpriced'])).code).toBe(0);
  });

  it('with --no-reported, a card naming a market only the reported rules split off is refused', async () => {
    const bundled = readFileSync(join(ROOT, 'data', 'rate-cards', 'usd-2025-10-01.csv'), 'utf8');
    const card = bundled
      .replace('effective October 1, 2025', 'effective October 1, 2026')
      .replace(/(\nMarket,[^\n]*\n)/, '$1Bangladesh,$US,0.0500,0.0100,0.0100,n/a,0.0000\n');
    const dir = mkdtempSync(join(tmpdir(), 'wameter-bd-'));
    writeFileSync(join(dir, 'usd-2026-10-01.csv'), card);
    const events = tempFile('e.ndjson', LINES.join('\n'));
    const refused = await run(['rate', events, '--rate-cards', dir, '--no-reported']);
    expect(refused.code).toBe(1);
    expect(refused.error).toContain('MARKET_NOT_IN_FORCE');
    expect(refused.error).toContain('Bangladesh');
    // Under the reported rules Bangladesh is its own market from 2026-10-01: the card loads (the 2024 events
    // then have no card in force, hence --allow-unpriced).
    expect((await run(['rate', events, '--rate-cards', dir, '--allow-unpriced'])).code).toBe(0);
  });

  it('--stream takes events up to 36 h out of order by default (Meta retries for 36 h), later with a finding', async () => {
    const file = lateDeliveryFile();
    const byDefault = await run(['rate', file, '--stream', '--format', 'json']);
    expect(byDefault.code).toBe(0);
    expect(JSON.parse(byDefault.out).units.map((u: { id: string }) => u.id)).toEqual(['u_wamid.late']);
    const strict = await run(['rate', file, '--stream', '--max-lateness', '24h', '--format', 'json']);
    const document = JSON.parse(strict.out);
    expect(document.units).toEqual([]);
    expect(document.findings.map((f: { code: string }) => f.code)).toContain('LATE_EVENT');
  });

  it('--stream exits 3 and says how many events were not rated when some came too late, even with --allow-unpriced', async () => {
    const file = lateDeliveryFile();
    const strict = await run(['rate', file, '--stream', '--max-lateness', '24h']);
    expect(strict.code).toBe(3);
    const lines = strict.error.split('\n').filter((line) => line.includes('were not rated'));
    expect(lines).toEqual([
      'wameter: 1 event(s) were not rated: they came more than 24h after newer ones (finding LATE_EVENT); rate without --stream, or raise --max-lateness',
    ]);
    // Late events are unread input, not units without a price: --allow-unpriced does not accept them.
    const allowed = await run(['rate', file, '--stream', '--max-lateness', '24h', '--allow-unpriced']);
    expect(allowed.code).toBe(3);
    expect(allowed.error).toContain('1 event(s) were not rated');
    // Either remedy the line names rates the event and exits 0, silently.
    for (const args of [['--stream', '--max-lateness', '48h'], []]) {
      const remedied = await run(['rate', file, ...args]);
      expect(remedied.code, args.join(' ')).toBe(0);
      expect(remedied.error, args.join(' ')).not.toContain('were not rated');
    }
  });

  it('explains flag mistakes', async () => {
    const era = await run(['rate', EXAMPLE, '--as-of-rules', 'PMP-2030']);
    expect(era.code).toBe(1);
    expect(era.error).toContain('not an era');
    const format = await run(['rate', EXAMPLE, '--format', 'xml']);
    expect(format.code).toBe(1);
    expect(format.error).toContain('table, json, csv');
    const lateness = await run(['rate', EXAMPLE, '--max-lateness', '24h']);
    expect(lateness.code).toBe(1);
    expect(lateness.error).toContain('--stream');
    const accounts = await run([
      'rate',
      EXAMPLE,
      '--accounts',
      tempFile('a.json', '{"accounts":[{"waba":"W1","timezone":"Mars/Olympus"}]}'),
    ]);
    expect(accounts.code).toBe(1);
    expect(accounts.error).toContain('Mars/Olympus');
    for (const command of ['rate', 'explain']) {
      const extra = command === 'explain' ? ['--user', '919876543210'] : [];
      const conflict = await run([
        command,
        EXAMPLE,
        ...extra,
        '--as-of-rules',
        'PMP-2026-10',
        '--no-reported',
      ]);
      expect(conflict.code, command).toBe(1);
      expect(conflict.error, command).toContain('drop one of the two');
    }
  });

  it('rates the bundled example month, and --stream gives the same units in one pass', async () => {
    const batch = await run(['rate', EXAMPLE, '--accounts', EXAMPLE_ACCOUNTS, '--format', 'json']);
    expect(batch.code).toBe(0);
    const stream = await run([
      'rate',
      EXAMPLE,
      '--accounts',
      EXAMPLE_ACCOUNTS,
      '--format',
      'json',
      '--stream',
    ]);
    expect(stream.code).toBe(0);
    const a = JSON.parse(batch.out);
    const b = JSON.parse(stream.out);
    expect(a.units.length).toBeGreaterThan(500);
    expect(b.units).toEqual(a.units);
    expect(b.totals).toEqual(a.totals);
    expect(b.pending).toEqual(a.pending);
  });

  it('reads every real webhook sample; only Meta’s own broken example is reported', async () => {
    const { out, error } = await run([
      'rate',
      join(FIXTURES, 'pywa'),
      join(FIXTURES, 'meta-docs'),
      '--format',
      'json',
      '--allow-unpriced',
    ]);
    const problems = error.split('\n').filter((line) => /MALFORMED_LINE|BAD_EVENT|UNREADABLE/.test(line));
    const files = problems.map((line) =>
      line
        .replace(/^wameter: ([^:]+):.*$/, '$1')
        .split('/')
        .pop(),
    );
    // analytics exports are not webhooks (reconcile --analytics reads them); one Meta example has a placeholder timestamp
    expect(
      files.every(
        (f) => f?.startsWith('analytics_') || f === 'incoming_text_ctwa_referral_with_ref_placeholders.json',
      ),
    ).toBe(true);
    const document = JSON.parse(out);
    expect(document.units.length).toBeGreaterThan(0);
  });

  it('tells how many items it skipped as not billing events, by reason, without failing', async () => {
    const { code, error } = await run(['rate', join(FIXTURES, 'pywa'), '--format', 'json']);
    expect(code).toBe(0);
    expect(error).toContain('skipped, not billing events: 1 × status of a message to a group');
    expect(error).toContain('skipped, not billing events: 1 × field "smb_message_echoes"');
    expect(error).toMatch(/skipped, not billing events: 2 × system message/);
  });

  describe("Meta's volume-tier statement and template recategorisation", () => {
    const send =
      '{"kind":"outbound","at":"2025-11-05T10:05:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"t1","template":"utility","template_name":"welcome","delivered_at":"2025-11-05T10:05:03Z"}';
    const cards = () => {
      const dir = mkdtempSync(join(tmpdir(), 'wameter-cards-'));
      writeFileSync(
        join(dir, 'usd-2025-11-01.csv'),
        'Title effective November 1, 2025\n\nMarket,Currency,Marketing,Utility,Authentication,Authentication-International,Service\nIndia,$US,0.0107,0.0014,0.0014,n/a,0\n',
      );
      writeFileSync(
        join(dir, 'usd-2025-11-01-tiers.csv'),
        'Volume tiers effective November 1, 2025\nMarket,Currency,Category,From,To,Rate\nIndia,$US,Utility,1,1,0.0014\nIndia,$US,Utility,2,,0.0012\n',
      );
      return dir;
    };
    const account = (field: string, value: Record<string, unknown>) =>
      JSON.stringify(accountWebhook('W1', field, value));
    const tierStatement = (fields: Record<string, string>) =>
      JSON.stringify(tierStatementWebhook('W1', fields));
    const rated = async (webhook: string, withCards = true) => {
      const file = tempFile('e.ndjson', `${send}\n${webhook}\n`);
      const { code, out, error } = await run([
        'rate',
        ...(withCards ? ['--rate-cards', cards()] : []),
        file,
        '--format',
        'json',
      ]);
      const { units, findings } = JSON.parse(out) as {
        units: { rate: string; category: string }[];
        findings: { code: string; message: string }[];
      };
      return { code, error, units, findings, codes: findings.map((f) => f.code) };
    };

    it('a region written "india" or "INDIA" is India: the message is priced at the band Meta states', async () => {
      for (const region of ['India', 'india', 'INDIA', ' India ']) {
        const { code, units, codes } = await rated(tierStatement({ region }));
        expect([code, units.map((unit) => unit.rate), codes], region).toEqual([
          0,
          ['0.0012'],
          ['META_TIER_AHEAD'],
        ]);
      }
    });

    it('a month or tier that cannot be used is an input problem naming the field (exit 2), the rest rated', async () => {
      for (const [fields, field] of [
        [{ effective_month: '2025-13' }, '"effective_month"'],
        [{ tier: 'two' }, '"tier"'],
      ] as const) {
        const { code, error, units } = await rated(tierStatement(fields));
        expect(code, field).toBe(2);
        expect(error, field).toContain(
          `e.ndjson:2: BAD_EVENT: entry[0].changes[0].value.volume_tier_info ${field} must be`,
        );
        expect(
          units.map((unit) => unit.rate),
          field,
        ).toEqual(['0.0014']);
      }
    });

    it('a region that is no market is said in a TIER_STATEMENT_NOT_APPLIED finding', async () => {
      const { code, findings, units, codes } = await rated(tierStatement({ region: 'Indai' }));
      expect([code, units.map((unit) => unit.rate), codes]).toEqual([
        0,
        ['0.0014'],
        ['TIER_STATEMENT_NOT_APPLIED'],
      ]);
      expect(findings[0]!.message).toContain(
        '"Indai" is no market of the market table (did you mean India?)',
      );
    });

    it("a template_category_update to no category of Meta's is an input problem (exit 2)", async () => {
      const update = (category: string) =>
        account('template_category_update', {
          message_template_id: 278077987957091,
          message_template_name: 'welcome',
          previous_category: 'UTILITY',
          new_category: category,
        });
      const marketing = await rated(update('MARKETING'), false);
      expect([marketing.code, marketing.units.map((unit) => unit.category), marketing.codes]).toEqual([
        0,
        ['marketing'],
        ['TEMPLATE_RECATEGORISED'],
      ]);
      const garbage = await rated(update('GARBAGE'), false);
      expect(garbage.code).toBe(2);
      expect(garbage.error).toContain(
        'e.ndjson:2: BAD_EVENT: entry[0].changes[0].value "new_category" must be MARKETING, UTILITY or AUTHENTICATION',
      );
      expect(garbage.units.map((unit) => unit.category)).toEqual(['utility']);
    });
  });

  it("a webhook's recipient_id written with + is the user of the send log's digits (one window)", async () => {
    const inbound =
      '{"kind":"inbound","at":"2025-11-05T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.in1"}';
    const delivered = (recipient: string) =>
      JSON.stringify(
        messagesWebhook('W1', {
          metadata: { display_phone_number: '15550783881', phone_number_id: 'PN1' },
          statuses: [
            {
              id: 'wamid.out1',
              status: 'delivered',
              timestamp: '1762337103',
              recipient_id: recipient,
              pricing: {
                billable: false,
                pricing_model: 'PMP',
                type: 'free_customer_service',
                category: 'utility',
              },
            },
          ],
        }),
      );
    const rated = async (recipient: string) => {
      const file = tempFile('e.ndjson', `${inbound}\n${delivered(recipient)}\n`);
      const { code, out } = await run(['rate', file, '--format', 'json']);
      expect(code).toBe(0);
      const document = JSON.parse(out) as { units: unknown[]; findings: { code: string }[] };
      return { units: document.units, codes: document.findings.map((f) => f.code) };
    };
    const digits = await rated('919876543210');
    expect(digits.units).toEqual([
      expect.objectContaining({ user: '919876543210', type: 'free_customer_service', amount: '0' }),
    ]);
    for (const written of ['+919876543210', '+91 98765-43210']) {
      const plus = await rated(written);
      expect(plus, written).toEqual(digits);
      expect(plus.codes, written).not.toContain('META_DISAGREES');
    }
  });
});

describe('wameter rate --rate-cards: the cards given replace the bundled ones', () => {
  it('says so when dates are left without a card (NO_RATE_CARD), and how to keep them priced', async () => {
    // A new card given alone, as one imports "the new rate card": the bundled cards no longer price March 2024.
    const card = tempFile(
      'usd-2025-07-01.csv',
      readFileSync(join(ROOT, 'data', 'rate-cards', 'usd-2025-10-01.csv'), 'utf8').replace(
        'effective October 1, 2025',
        'effective July 1, 2025',
      ),
    );
    const events = tempFile('march.ndjson', LINES.join('\n'));
    const alone = await run(['rate', events, '--rate-cards', card]);
    expect(alone.code, alone.error).toBe(3);
    expect(alone.out).toContain('NO_RATE_CARD');
    expect(alone.error).toContain(
      'wameter: --rate-cards replaces the bundled rate cards, it does not add to them: the dates of the NO_RATE_CARD finding(s) have no card among those given; give their cards too',
    );
    expect(alone.error).toContain(`--rate-cards ${join(ROOT, 'data', 'rate-cards')}`);
    // Beside the bundled cards it prices them, and nothing is said; nor without --rate-cards.
    const beside = await run([
      'rate',
      events,
      '--rate-cards',
      card,
      '--rate-cards',
      join(ROOT, 'data', 'rate-cards'),
    ]);
    expect(beside.code, beside.error).toBe(0);
    expect(beside.error).not.toContain('replaces');
    expect((await run(['rate', events])).error).not.toContain('replaces');
  });
});

describe("wameter rate: each WABA's own totals (re-billing each client)", () => {
  type Totals = Record<string, { amount: string; units: number; by_category: Record<string, unknown> }>;
  it('adds totals_by_waba to the JSON and "By WABA" to the table, which add up to the totals', async () => {
    const json = await run(['rate', EXAMPLE, '--accounts', EXAMPLE_ACCOUNTS, '--format', 'json']);
    const document = JSON.parse(json.out) as { totals: Totals; totals_by_waba: Record<string, Totals> };
    const wabas = Object.keys(document.totals_by_waba);
    expect(wabas.length).toBe(3);
    const unitsOf = (units: { waba: string }[], waba: string) => units.filter((u) => u.waba === waba).length;
    const units = (JSON.parse(json.out) as { units: { waba: string; amount: string; currency: string }[] })
      .units;
    const micros = (amount: string) => {
      const [whole, fraction = ''] = amount.split('.');
      return BigInt(whole!) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
    };
    let sum = 0n;
    let count = 0;
    for (const waba of wabas) {
      const usd = document.totals_by_waba[waba]!.USD!;
      expect(usd.units).toBe(unitsOf(units, waba));
      expect(micros(usd.amount)).toBeGreaterThan(0n);
      sum += micros(usd.amount);
      count += usd.units;
    }
    const total = document.totals.USD!;
    expect(count).toBe(total.units);
    expect(sum).toBe(micros(total.amount));

    const table = await run(['rate', EXAMPLE, '--accounts', EXAMPLE_ACCOUNTS]);
    const section = table.out.slice(table.out.indexOf('\nBy WABA\n'));
    for (const waba of wabas) {
      const usd = document.totals_by_waba[waba]!.USD!;
      expect(section).toMatch(
        new RegExp(`\\n  ${waba} +USD +${usd.amount.replace('.', '\\.')}  over ${usd.units} unit\\(s\\)`),
      );
    }
  });

  it('leaves "By WABA" out of the table when one WABA is billed', async () => {
    const file = tempFile(
      'one.ndjson',
      [
        '{"kind":"outbound","at":"2024-03-01T10:05:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.o1","template":"utility"}',
        '{"kind":"status","at":"2024-03-01T10:05:03Z","id":"wamid.o1","status":"delivered"}',
      ].join('\n'),
    );
    const table = await run(['rate', file]);
    expect(table.out).toContain('\nTotals\n');
    expect(table.out).not.toContain('By WABA');
    const document = JSON.parse((await run(['rate', file, '--format', 'json'])).out) as {
      totals: Totals;
      totals_by_waba: Record<string, Totals>;
    };
    expect(document.totals_by_waba).toEqual({ W1: document.totals });
  });
});

describe('wameter rate --as-of-rules CBP-2022 with cards that have no CBP-2022 columns', () => {
  // November 2025: the card in force is usd-2025-10-01 (Marketing, Utility, Authentication,
  // Authentication-International, Service). Under CBP-2022 rules the WABA's first 1,000 conversations of the
  // month are free; the 1,001st (business-initiated, to India) and the 1,002nd (user-initiated, a reply to a
  // North American user's message) are charged.
  const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const t0 = Date.parse('2025-11-03T00:00:00Z');
  const lines: object[] = [];
  const send = (atMs: number, id: string, user: string, template: string | null) =>
    lines.push(
      { kind: 'outbound', at: iso(atMs), waba: 'W1', business: 'PN1', user, id, template },
      { kind: 'status', at: iso(atMs + 1000), id, status: 'delivered' },
    );
  for (let i = 0; i < 1000; i++)
    send(t0 + i * 60_000, `free${i}`, `9198000${String(i).padStart(5, '0')}`, 'marketing');
  send(t0 + 1000 * 60_000, 'bi', '919876543210', 'marketing');
  lines.push({
    kind: 'inbound',
    at: iso(t0 + 1001 * 60_000),
    waba: 'W1',
    business: 'PN1',
    user: '14155552671',
    id: 'in',
  });
  send(t0 + 1002 * 60_000, 'ui', '14155552671', null);
  const file = tempFile('cbp-2022-what-if.ndjson', lines.map((line) => JSON.stringify(line)).join('\n'));

  it('leaves the charged conversations unpriced with a NO_RATE finding saying the card has no such rates (exit 3), and how to price them', async () => {
    const { code, out, error } = await run(['rate', file, '--as-of-rules', 'CBP-2022', '--format', 'json']);
    const document = JSON.parse(out) as {
      units: { messages: string[]; category: string; type: string; amount: string | null }[];
      findings: Record<string, unknown>[];
    };
    const charged = document.units.filter((unit) => unit.type === 'regular');
    expect(charged.map((unit) => [unit.messages[0], unit.category, unit.amount])).toEqual([
      ['bi', 'business_initiated', null],
      ['ui', 'user_initiated', null],
    ]);
    const advice =
      "business-initiated and user-initiated conversations are CBP-2022's, whose rates Meta's cards list only until June 2023; to price CBP-2022's rules (--as-of-rules CBP-2022) on later dates, give a USD card with Business-Initiated and User-Initiated columns in force on 2025-11-03 (--rate-cards; the card in force on a date is the latest one dated on or before it)";
    const columns = 'only Marketing, Utility, Authentication, Authentication-International, Service';
    expect(document.findings).toEqual([
      {
        code: 'NO_RATE',
        message: `no business_initiated rate for market "India" on 2025-11-03 in rate card usd-2025-10-01 (USD, effective 2025-10-01), nor for any other market: the card lists no business_initiated rates at all (${columns}): ${advice}`,
        market: 'India',
        category: 'business_initiated',
        date: '2025-11-03',
        last_date: '2025-11-03',
        rate_card: 'usd-2025-10-01',
        waba: 'W1',
        count: 1,
      },
      {
        code: 'NO_RATE',
        message: `no user_initiated rate for market "North America" on 2025-11-03 in rate card usd-2025-10-01 (USD, effective 2025-10-01), nor for any other market: the card lists no user_initiated rates at all (${columns}): ${advice}`,
        market: 'North America',
        category: 'user_initiated',
        date: '2025-11-03',
        last_date: '2025-11-03',
        rate_card: 'usd-2025-10-01',
        waba: 'W1',
        count: 1,
      },
    ]);
    expect(error).toContain('wameter: 2 charged unit(s) could not be priced');
    expect(code).toBe(3);

    // As the finding says: a card with those columns prices them (the only card given: in force in 2025).
    const card = join(ROOT, 'data', 'rate-cards', 'usd-2022-02-01-partial.csv');
    const priced = await run([
      'rate',
      file,
      '--as-of-rules',
      'CBP-2022',
      '--rate-cards',
      card,
      '--format',
      'json',
    ]);
    const pricedDocument = JSON.parse(priced.out) as typeof document;
    expect(
      pricedDocument.units
        .filter((unit) => unit.type === 'regular')
        .map((unit) => [unit.messages[0], unit.amount]),
    ).toEqual([
      ['bi', '0.0066'],
      ['ui', '0.0088'],
    ]);
    expect(pricedDocument.findings).toEqual([]);
    expect(priced.code).toBe(0);
  });
});

describe('wameter rate: what a CSV cannot hold, and bad entries of a folder', () => {
  const uk = LINES.map((line) => line.replace('919876543210', '447700123456'));
  const neverDelivered =
    '{"kind":"outbound","at":"2024-03-01T11:00:00Z","waba":"W1","business":"PN1","user":"447700123456","id":"wamid.p1","template":"marketing"}';

  it('--format csv keeps stdout to the units and says the findings and pending messages on stderr', async () => {
    const file = tempFile('uk.ndjson', [...uk, neverDelivered].join('\n'));
    const { code, out, error } = await run(['rate', file, '--format', 'csv']);
    expect(code).toBe(3);
    const rows = out.trim().split('\n');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^id,unit,pricing_model,/);
    expect(rows[1]).toMatch(/^u_wamid\.o1,conversation,/);
    const json = JSON.parse((await run(['rate', file, '--format', 'json'])).out);
    const [noRate] = json.findings;
    expect(json.findings).toHaveLength(1);
    expect(error).toContain(
      `wameter: 1 finding(s), not in the CSV (--format json lists them too):\nwameter:   NO_RATE: WABA W1: ${noRate.message}\n`,
    );
    expect(error).toContain(
      'wameter: 1 pending message(s): sent, never delivered, so not charged and not in the CSV (--format json lists them)\n',
    );
    expect(error).toContain('1 charged unit(s) could not be priced');
  });

  it('--format csv lists 20 findings, then counts the rest by code', async () => {
    // 25 users whose numbers have no known calling code: one UNKNOWN_RECIPIENT finding each.
    const lines = Array.from({ length: 25 }, (_, i) =>
      [
        `{"kind":"outbound","at":"2025-10-01T10:00:00Z","waba":"W1","business":"PN1","user":"999${String(i).padStart(8, '0')}","id":"m${i}","template":"marketing"}`,
        `{"kind":"status","at":"2025-10-01T10:00:03Z","id":"m${i}","status":"delivered"}`,
      ].join('\n'),
    );
    const { error } = await run(['rate', tempFile('unknown.ndjson', lines.join('\n')), '--format', 'csv']);
    expect(error).toContain('wameter: 25 finding(s), not in the CSV');
    expect(
      error.split('\n').filter((line) => line.startsWith('wameter:   UNKNOWN_RECIPIENT: ')),
    ).toHaveLength(20);
    expect(error).toContain('wameter:   … and 5 more: 5 × UNKNOWN_RECIPIENT\n');
  });

  it('a malformed line and units without a price: both are said, and the exit code is 2', async () => {
    const file = tempFile('both.ndjson', [uk[0], '{"kind":"outbound",', uk[1], uk[2]].join('\n'));
    for (const format of ['table', 'json', 'csv']) {
      const { code, error } = await run(['rate', file, '--format', format]);
      expect(code, format).toBe(2);
      expect(error, format).toContain(`${file}:2:`);
      expect(error, format).toContain(
        'wameter: 1 charged unit(s) could not be priced (see findings: unknown number, no rate or no rate card); pass --allow-unpriced to accept',
      );
    }
  });

  it('a broken link in a source folder is passed over with a warning; the rest of the folder is rated', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'wameter-dangling-'));
    writeFileSync(join(folder, 'events.ndjson'), LINES.join('\n'));
    symlinkSync('/nonexistent/zz.ndjson', join(folder, 'zz.ndjson'));
    const { code, out, error } = await run(['rate', folder, '--format', 'json']);
    expect(code).toBe(0);
    expect(JSON.parse(out).units).toHaveLength(1);
    expect(error).toContain(
      `wameter: ${folder}: warning: not read: 1 broken link (first: ${join(folder, 'zz.ndjson')}: its target does not exist); fix or remove a broken link\n`,
    );
    expect(error).not.toContain('UNREADABLE_SOURCE');
  });

  it('--help gives exit code 2 as the README does: malformed lines or a source unreadable', async () => {
    const { out } = await run(['rate', '--help']);
    expect(out.replace(/\s+/g, ' ')).toContain(
      '2 some input lines malformed or a source unreadable (each named on stderr, the rest rated)',
    );
    expect(out.replace(/\s+/g, ' ')).toContain('with both 2 and 3, both are said and the exit code is 2');
  });
});

describe('wameter explain', () => {
  it('tells a user’s timeline in words', async () => {
    const { code, out } = await run([
      'explain',
      tempFile('e.ndjson', LINES.join('\n')),
      '--user',
      '919876543210',
    ]);
    expect(code).toBe(0);
    expect(out).toContain('user wrote: customer service window open until 2024-03-02T10:00:00Z');
    expect(out).toContain('utility template wamid.o1 with no utility conversation open');
    expect(out).toContain('charged 0.0042 USD');
    expect(out).toContain('Total: 0.0042 USD over 1 unit(s)');
  });

  it('gives the same story as CSV, one row per line', async () => {
    const { code, out } = await run([
      'explain',
      tempFile('e.ndjson', LINES.join('\n')),
      '--user',
      '919876543210',
      '--format',
      'csv',
    ]);
    expect(code).toBe(0);
    const rows = out.trim().split('\n');
    expect(rows[0]).toBe('at,kind,business,message_id,unit_id,era,rule,cost,text,amount,currency,waba');
    expect(rows[1]).toMatch(/^2024-03-01T10:00:00Z,inbound,PN1,wamid\.in1,/);
    expect(rows[2]).toMatch(
      /^2024-03-01T10:05:03Z,message,PN1,wamid\.o1,u_wamid\.o1,CBP-2023,CBP_OPEN,0\.0042 USD,/,
    );
  });

  it('says so when the user is not in the input', async () => {
    const { error } = await run(['explain', tempFile('e.ndjson', LINES.join('\n')), '--user', '1555']);
    expect(error).toContain('no messages of user 1555');
  });

  it('needs --user', async () => {
    const { code, error } = await run(['explain', EXAMPLE]);
    expect(code).toBe(1);
    expect(error).toContain('--user');
  });
});

describe('the heap cap of a streaming run', () => {
  it('applies to rate --stream only, unless a cap was already chosen', async () => {
    const { streamingHeapCap } = await import('./program.js');
    expect(streamingHeapCap(['rate', 'f.ndjson', '--stream'], {}, [])).toBe(640);
    expect(streamingHeapCap(['rate', 'f.ndjson', '--stream'], { WAMETER_STREAM_HEAP_MB: '1024' }, [])).toBe(
      1024,
    );
    expect(streamingHeapCap(['rate', 'f.ndjson'], {}, [])).toBeUndefined();
    expect(streamingHeapCap(['serve'], {}, [])).toBeUndefined();
    expect(streamingHeapCap(['rate', '--stream'], {}, ['--max-old-space-size=2048'])).toBeUndefined();
    expect(
      streamingHeapCap(['rate', '--stream'], { NODE_OPTIONS: '--max-old-space-size=300' }, []),
    ).toBeUndefined();
    expect(streamingHeapCap(['rate', '--stream'], { WAMETER_HEAP_CAPPED: '1' }, [])).toBeUndefined();
  });

  it('refuses a WAMETER_STREAM_HEAP_MB that is not a whole number of MiB from 64 up, never replacing it silently', async () => {
    const { streamingHeapCap } = await import('./program.js');
    for (const setting of ['abc', 'lots', '512.5', '-1', '63', '1e3']) {
      expect(
        () => streamingHeapCap(['rate', 'f.ndjson', '--stream'], { WAMETER_STREAM_HEAP_MB: setting }, []),
        setting,
      ).toThrow(
        `WAMETER_STREAM_HEAP_MB must be a whole number of MiB, 64 or more, not "${setting}": fix it, or unset it for the default (640)`,
      );
    }
    // Set but empty is unset; and a run that does not stream never reads it.
    expect(streamingHeapCap(['rate', 'f.ndjson', '--stream'], { WAMETER_STREAM_HEAP_MB: '' }, [])).toBe(640);
    expect(streamingHeapCap(['rate', 'f.ndjson'], { WAMETER_STREAM_HEAP_MB: 'abc' }, [])).toBeUndefined();
  });
});

describe('wameter rate --month', () => {
  type Bill = {
    units: { waba: string; opened_at: string; amount: string | null }[];
    totals: Record<string, { amount: string; units: number }>;
  };
  const bill = async (month?: string): Promise<Bill> => {
    const args = ['rate', EXAMPLE, '--accounts', EXAMPLE_ACCOUNTS, '--format', 'json'];
    const { code, out } = await run(month === undefined ? args : [...args, '--month', month]);
    expect(code).toBe(0);
    return JSON.parse(out) as Bill;
  };
  const micros = (amount: string) => Math.round(Number(amount) * 1_000_000);

  it("lists and totals the units billed in that month by each WABA's clock, the months adding up to the whole", async () => {
    const [whole, september, october] = [await bill(), await bill('2025-09'), await bill('2025-10')];
    // 2025-10-01T00:54Z is still September 30 in São Paulo: on September's bill, though October in UTC.
    expect(september.units.map((unit) => [unit.waba, unit.opened_at])).toEqual([
      ['953306147105484', '2025-10-01T00:54:06Z'],
    ]);
    expect(september.totals.USD).toMatchObject({ amount: '0.0315', units: 1 });
    expect(october.units.length + september.units.length).toBe(whole.units.length);
    expect(october.units.some((unit) => unit.opened_at === '2025-10-01T00:54:06Z')).toBe(false);
    expect(micros(october.totals.USD!.amount) + micros(september.totals.USD!.amount)).toBe(
      micros(whole.totals.USD!.amount),
    );
    expect((await bill('2025-08')).units).toEqual([]);
  });

  it("gives each unit its local_date, the date of its opening on its WABA's clock, in JSON and CSV", async () => {
    const whole = (await bill()) as Bill & { units: { local_date: string }[] };
    const evening = whole.units.find((unit) => unit.opened_at === '2025-10-01T00:54:06Z');
    // São Paulo's evening of September 30: the date that put it on September's bill.
    expect(evening).toMatchObject({ waba: '953306147105484', local_date: '2025-09-30' });
    for (const month of ['2025-09', '2025-10']) {
      const units = (await bill(month)).units as { local_date?: string }[];
      expect(units.every((unit) => unit.local_date?.startsWith(month))).toBe(true);
    }
    const csv = await run(['rate', EXAMPLE, '--accounts', EXAMPLE_ACCOUNTS, '--format', 'csv']);
    const [header, ...rows] = csv.out.trim().split('\n');
    const columns = header!.split(',');
    expect(columns.at(-1)).toBe('local_date');
    const row = rows.find((line) => line.includes('2025-10-01T00:54:06Z'))!.split(',');
    expect(row[columns.indexOf('local_date')]).toBe('2025-09-30');
    expect(rows).toHaveLength(whole.units.length);
  });

  it('says what it left out on stderr, and refuses what is not a month', async () => {
    const { error } = await run(['rate', EXAMPLE, '--accounts', EXAMPLE_ACCOUNTS, '--month', '2025-09']);
    expect(error).toContain(
      "wameter: --month 2025-09: 1 unit(s) and 0 pending message(s) of that month by each WABA's clock are listed and totalled, 935 unit(s) of other months left out",
    );
    for (const month of ['2025-13', '2025-9', 'July']) {
      const refused = await run(['rate', EXAMPLE, '--month', month]);
      expect(refused.code, month).toBe(1);
      expect(refused.error, month).toContain(`"${month}" is not a month: write it YYYY-MM (2025-07)`);
    }
  });
});
