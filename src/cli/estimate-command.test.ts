import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { NO_TRAFFIC_WARNING } from './estimate-command.js';
import { EXIT } from './exit-codes.js';

const NOW = Date.parse('2025-10-15T12:00:00Z');

function cli(args: string[]) {
  return runWameter(['estimate', ...args], { now: () => NOW });
}

const dir = mkdtempSync(join(tmpdir(), 'wameter-estimate-'));
const events = join(dir, 'events.ndjson');
writeFileSync(
  events,
  `${JSON.stringify({ kind: 'inbound', at: '2025-10-15T10:00:00Z', waba: 'W1', business: 'PN1', user: '919876543210', id: 'in1' })}\n`,
);
const recipients = join(dir, 'recipients.csv');
writeFileSync(recipients, 'name,phone\nAsha,+91 98765 43210\nRavi,919800000001\nNobody,not-a-number\n');

describe('wameter estimate', () => {
  it('prints the contract document with --format json, at the injected clock by default', async () => {
    const result = await cli([recipients, '--template', 'utility', '--events', events, '--format', 'json']);
    expect(result.code).toBe(EXIT.OK);
    const json = JSON.parse(result.out);
    expect(Object.keys(json)).toEqual(['lines', 'invalid', 'totals']);
    expect(json.lines).toEqual([
      expect.objectContaining({ phone: '919876543210', name: 'Asha', free: true, market: 'India' }),
      expect.objectContaining({ phone: '919800000001', name: 'Ravi', free: false, currency: 'USD' }),
    ]);
    expect(json.invalid).toEqual([expect.objectContaining({ line: 4, phone: 'not-a-number' })]);
    expect(json.totals).toMatchObject({ count: 2, free: 1, charged: 1 });
  });

  it('refuses --events none of which exists (exit 1) rather than quoting as if nothing had been sent', async () => {
    const missing = join(dir, 'nope.ndjson');
    const result = await cli([recipients, '--template', 'utility', '--events', missing, '--format', 'json']);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.out).toBe('');
    expect(result.err).toContain(`no such file or folder: '${missing}'; nothing was read`);
  });

  it('exits 3 when a charged send has no known price, saying why in the warnings; 0 with --allow-unpriced', async () => {
    const bd = join(dir, 'bd.csv');
    writeFileSync(bd, 'phone\n8801712345678\n');
    const args = [bd, '--template', 'marketing', '--events', events, '--at', '2026-10-05T12:00:00Z'];
    const result = await cli([...args, '--format', 'json']);
    expect(result.code).toBe(EXIT.UNPRICED);
    expect(JSON.parse(result.out).totals.unpriced).toBe(1);
    expect(result.err).toContain('wameter: warning: NO_RATE: no row for market "Bangladesh"');
    expect(result.err).toContain(
      'wameter: 1 charged send(s) have no known price (see the warnings): the total is a floor; pass --allow-unpriced to accept',
    );
    const accepted = await cli([...args, '--format', 'json', '--allow-unpriced']);
    expect(accepted.code).toBe(EXIT.OK);
    expect(accepted.out).toBe(result.out);
  });

  it('refuses --events from which not one event could be read (exit 1): no quote as if nothing was sent', async () => {
    const broken = join(dir, 'broken.ndjson');
    writeFileSync(broken, 'not json\n');
    const result = await cli([recipients, '--template', 'utility', '--events', broken, '--format', 'json']);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.out).toBe('');
    expect(result.err).toContain(`${broken}:1:`);
    expect(result.err).toContain('no event could be read from the sources');
  });

  it('--at moves the send: after the window closes the utility template is charged', async () => {
    const result = await cli([
      recipients,
      '--template',
      'utility',
      '--events',
      events,
      '--at',
      '2025-10-16T11:00:00Z',
      '--format',
      'json',
    ]);
    expect(JSON.parse(result.out).totals).toMatchObject({ free: 0, charged: 2 });
  });

  it('table and csv formats; invalid numbers named on stderr', async () => {
    const table = await cli([recipients, '--template', 'marketing', '--events', events]);
    expect(table.out).toContain('Totals: 2 recipient(s)');
    expect(table.err).toContain('recipients.csv:4: invalid number');
    const csv = await cli([recipients, '--template', 'marketing', '--events', events, '--format', 'csv']);
    expect(csv.out.split('\n')[0]).toBe('phone,country,market,price,currency,free,reason,name');
  });

  it('without events and without --waba it asks for the sender, without speaking of events never given', async () => {
    const result = await cli([recipients, '--template', 'marketing']);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.out).toBe('');
    expect(result.err).toBe(
      'wameter: no traffic given (no --events source and no --db), so there is no sending account to default to: pass --waba and --business (the WABA and the phone_number_id that would send), or give the traffic with --events PATHS… or --db URL\n',
    );
    const noBusiness = await cli([recipients, '--template', 'marketing', '--waba', 'W1']);
    expect(noBusiness.code).toBe(EXIT.USAGE);
    expect(noBusiness.err).toContain('pass --business (the WABA and the phone_number_id');
    expect(noBusiness.err).not.toContain('the events');
  });

  it('without events, the sender named: quoted at list price with a warning that no traffic was read', async () => {
    const args = [recipients, '--template', 'utility', '--waba', 'W1', '--business', 'PN1'];
    const table = await cli(args);
    expect(table.code).toBe(EXIT.OK);
    expect(table.err).toContain(`wameter: warning: ${NO_TRAFFIC_WARNING}\n`);
    expect(NO_TRAFFIC_WARNING).toBe(
      'no traffic read (no --events source and no --db): quoted as if no customer service window, free entry point or conversation were open, none of the free allowance used and no volume-tier count reached; give --events or --db for the current state',
    );
    // Asha's window, open in the events, is not known here: her utility template is charged.
    const json = JSON.parse((await cli([...args, '--format', 'json'])).out);
    expect(json.warnings[0]).toBe(NO_TRAFFIC_WARNING);
    expect(json.totals).toMatchObject({ count: 2, free: 0, charged: 2 });
    // With the events, no such warning.
    const withEvents = await cli([...args, '--events', events, '--format', 'json']);
    expect(withEvents.err).not.toContain('no traffic read');
    expect(JSON.parse(withEvents.out).warnings).toBeUndefined();
  });

  it('names the template with the right article on stderr: an authentication template, a utility template', async () => {
    const authentication = await cli([recipients, '--template', 'authentication', '--events', events]);
    expect(authentication.err).toContain(
      'wameter: quoted 2 recipient(s) for an authentication template from WABA W1, number PN1; 1 invalid\n',
    );
    const utility = await cli([recipients, '--template', 'utility', '--events', events]);
    expect(utility.err).toContain('wameter: quoted 2 recipient(s) for a utility template from WABA W1');
  });

  it('a bad --template or --at is refused', async () => {
    expect((await cli([recipients, '--template', 'promo'])).code).toBe(EXIT.USAGE);
    expect((await cli([recipients, '--template', 'utility', '--at', 'tomorrow'])).code).toBe(EXIT.USAGE);
    // Milliseconds are said to be such, with the seconds to write, as `rerate --from` says it.
    const millis = await cli([recipients, '--template', 'utility', '--at', '1759406400000']);
    expect(millis.code).toBe(EXIT.USAGE);
    expect(millis.err).toContain(
      '1759406400000" looks like milliseconds; timestamps here take Unix seconds: write 1759406400',
    );
  });

  it('a compressed recipients file is refused as such, not for its header of binary noise', async () => {
    const gz = join(dir, 'recipients.csv.gz');
    writeFileSync(gz, gzipSync(readFileSync(recipients)));
    const result = await cli([gz, '--template', 'utility', '--waba', 'W1', '--business', 'PN1']);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.err).toBe(
      `wameter: recipients ${gz}: not a text file: its first bytes look binary (gzip signature, NUL bytes, invalid UTF-8); if it is compressed, decompress it first (gzip: gunzip -k FILE)\n`,
    );
  });

  it('a recipients file that is not UTF-8 is refused naming the byte, never echoed with U+FFFD', async () => {
    // "José" saved as Latin-1 (Excel's plain "CSV" on Windows): its name column came out as "Jos\ufffd".
    const latin1 = join(dir, 'recipients-latin1.csv');
    writeFileSync(latin1, Buffer.from('phone,name\n919876543210,Jos\u00e9\n', 'latin1'));
    const result = await cli([latin1, '--template', 'utility', '--waba', 'W1', '--business', 'PN1']);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.out).toBe('');
    expect(result.err).toBe(
      `wameter: recipients ${latin1} is not UTF-8: line 2, column 17 holds byte 0xE9 (offset 27), which starts no UTF-8 character, so it cannot be read as written; save the file as UTF-8 (from Windows-1252 or Latin-1: iconv -f WINDOWS-1252 -t UTF-8 FILE)\n`,
    );
    // Saved as UTF-8 (with the byte-order mark of Excel's "CSV UTF-8"), the name is echoed as written.
    const utf8 = join(dir, 'recipients-utf8.csv');
    writeFileSync(utf8, '\ufeffphone,name\n919876543210,Jos\u00e9\n');
    const read = await cli([utf8, '--template', 'utility', '--events', events, '--format', 'json']);
    expect(read.code).toBe(EXIT.OK);
    expect(JSON.parse(read.out).lines).toEqual([
      expect.objectContaining({ phone: '919876543210', name: 'Jos\u00e9' }),
    ]);
  });

  it('an empty recipients path (an unset variable in a script) is refused saying what to give', async () => {
    const result = await cli(['', '--template', 'utility', '--waba', 'W1', '--business', 'PN1']);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.out).toBe('');
    expect(result.err).toBe(
      'wameter: the recipients path is empty (an unset variable in a script?): give the recipients CSV, or - for stdin\n',
    );
  });

  it('--help explains with examples', async () => {
    const result = await cli(['--help']);
    expect(result.out).toContain('Examples:');
    expect(result.out).toContain('--db <url>');
  });

  it('--events is repeatable and leaves the recipients file after it unambiguous', async () => {
    const more = join(dir, 'more.ndjson');
    writeFileSync(
      more,
      `${JSON.stringify({ kind: 'inbound', at: '2025-10-15T11:00:00Z', waba: 'W1', business: 'PN1', user: '919800000001', id: 'in2' })}\n`,
    );
    const first = await cli(['--events', events, recipients, '--template', 'utility', '--format', 'json']);
    expect(first.code).toBe(EXIT.OK);
    expect(JSON.parse(first.out).totals).toMatchObject({ count: 2, free: 1, charged: 1 });
    const both = await cli([
      '--events',
      events,
      '--events',
      more,
      recipients,
      '--template',
      'utility',
      '--format',
      'json',
    ]);
    expect(both.code).toBe(EXIT.OK);
    expect(JSON.parse(both.out).totals).toMatchObject({ count: 2, free: 2, charged: 0 });
  });

  describe('several event sources after one --events (contract §6: --events FILES…)', () => {
    const more = join(dir, 'more-events.ndjson');
    writeFileSync(
      more,
      `${JSON.stringify({ kind: 'inbound', at: '2025-10-15T11:00:00Z', waba: 'W1', business: 'PN1', user: '919800000001', id: 'in2' })}\n`,
    );
    const folder = mkdtempSync(join(dir, 'events-folder-'));
    writeFileSync(
      join(folder, 'late.ndjson'),
      `${JSON.stringify({ kind: 'inbound', at: '2025-10-15T11:30:00Z', waba: 'W1', business: 'PN1', user: '919800000003', id: 'in3' })}\n`,
    );
    const list = join(dir, 'three.csv');
    writeFileSync(list, 'phone\n919876543210\n919800000001\n919800000003\n');
    const quoted = (out: string) => JSON.parse(out).totals as { count: number; free: number };

    it('reads every source listed after one --events, as the contract writes it', async () => {
      const result = await cli([
        list,
        '--template',
        'utility',
        '--events',
        events,
        more,
        folder,
        '--format',
        'json',
      ]);
      expect(result.err).not.toContain('one recipients file only');
      expect(result.code).toBe(EXIT.OK);
      expect(quoted(result.out)).toMatchObject({ count: 3, free: 3 });
    });

    it('keeps a recipients CSV written after the event sources as the recipients, not as an event source', async () => {
      const result = await cli(['--events', events, more, list, '--template', 'utility', '--format', 'json']);
      expect(result.code).toBe(EXIT.OK);
      expect(quoted(result.out)).toMatchObject({ count: 3, free: 2 });
      expect(result.err).not.toMatch(/three\.csv:\d+/);
    });

    it('still takes the flag repeated, alone or mixed with lists', async () => {
      const repeated = await cli([
        ...['--events', events, '--events', more, '--events', folder],
        ...[list, '--template', 'utility', '--format', 'json'],
      ]);
      expect(repeated.code).toBe(EXIT.OK);
      expect(quoted(repeated.out)).toMatchObject({ count: 3, free: 3 });
      const mixed = await cli([
        ...['--events', events, more, '--events', folder, list],
        ...['--template', 'utility', '--format', 'json'],
      ]);
      expect(mixed.code).toBe(EXIT.OK);
      expect(quoted(mixed.out)).toMatchObject({ count: 3, free: 3 });
    });

    it('says what to do when the recipients file after --events has no .csv name, in one line', async () => {
      const txt = join(dir, 'recipients.txt');
      writeFileSync(txt, 'phone\n919876543210\n');
      const result = await cli(['--events', events, txt, '--template', 'utility']);
      expect(result.code).toBe(EXIT.USAGE);
      expect(result.out).toBe('');
      expect(result.err).toBe(
        `wameter: no recipients file: --events took ${txt} as an event source (it takes every path up to the next flag); put the recipients file before --events, or name it *.csv\n`,
      );
      // Before the flag it is the recipients, whatever its name.
      const first = await cli([txt, '--events', events, '--template', 'utility', '--format', 'json']);
      expect(first.code).toBe(EXIT.OK);
      expect(quoted(first.out)).toMatchObject({ count: 1, free: 1 });
    });

    it('refuses a second recipients file, after --events or on its own', async () => {
      const second = join(dir, 'second.csv');
      writeFileSync(second, 'phone\n919800000001\n');
      const afterFlag = await cli([recipients, '--template', 'utility', '--events', events, second]);
      expect(afterFlag.code).toBe(EXIT.USAGE);
      expect(afterFlag.err).toBe(`wameter: one recipients file only, not also ${second}\n`);
      const twoAfterFlag = await cli(['--events', events, recipients, second, '--template', 'utility']);
      expect(twoAfterFlag.code).toBe(EXIT.USAGE);
      expect(twoAfterFlag.err).toBe(`wameter: one recipients file only, not also ${second}\n`);
      // An event file after the recipients, with no flag before it: say where event sources go.
      const loose = await cli([recipients, more, '--template', 'utility', '--events', events]);
      expect(loose.code).toBe(EXIT.USAGE);
      expect(loose.err).toBe(
        `wameter: one recipients file only, not also ${more}: give event sources after --events (--events ${more} …)\n`,
      );
    });

    it('speaks of rate cards only for an argument after --rate-cards', async () => {
      const second = join(dir, 'other.csv');
      writeFileSync(second, 'phone\n919800000001\n');
      // Two recipients files: nothing to do with rate cards.
      const two = await cli([recipients, second, '--template', 'utility', '--events', events]);
      expect(two.code).toBe(EXIT.USAGE);
      expect(two.err).toBe(`wameter: one recipients file only, not also ${second}\n`);
      // A word after a flag that takes one value: that flag is named, not --rate-cards.
      const afterWaba = await cli([
        recipients,
        '--template',
        'utility',
        '--events',
        events,
        '--waba',
        'W1',
        'json',
      ]);
      expect(afterWaba.code).toBe(EXIT.USAGE);
      expect(afterWaba.err).toBe(
        'wameter: one recipients file only, not also json: --waba takes one value, so json was read as a second recipients file\n',
      );
      // The reviewer's case: the WABA left out, --format taken for it.
      const noWaba = await cli([
        recipients,
        '--events',
        events,
        '--waba',
        '--format',
        'json',
        '--template',
        'utility',
      ]);
      expect(noWaba.code).toBe(EXIT.USAGE);
      expect(noWaba.err).toContain('"--format" is an option, not a WABA id');
      for (const result of [two, afterWaba, noWaba]) expect(result.err).not.toContain('--rate-cards');
    });

    it('without a recipients file at all, says it is missing', async () => {
      for (const args of [
        ['--template', 'utility'],
        ['--template', 'utility', '--events', events, folder],
      ]) {
        const result = await cli(args);
        expect(result.code).toBe(EXIT.USAGE);
        expect(result.err).toContain("error: missing required argument 'recipients'");
      }
    });

    it('--help shows the list form and the flag repeated', async () => {
      const help = await cli(['--help']);
      expect(help.out).toContain('--events <paths...>');
      expect(help.out).toContain(
        'wameter estimate customers.csv --template utility --events sends.ndjson webhooks/',
      );
      expect(help.out).toContain('Usage: wameter estimate [options] <recipients>');
    });
  });

  it('a past --at is quoted against the events up to it, not against what came after', async () => {
    // examples/month: 918461283671 writes to 827790422848843 at 2025-10-31T23:22:34Z, 22 minutes after --at.
    const month = join(import.meta.dirname, '..', '..', 'examples', 'month');
    const list = join(dir, 'late-writer.csv');
    writeFileSync(list, 'phone\n918461283671\n');
    const args = [
      list,
      '--template',
      'utility',
      '--events',
      join(month, 'events.ndjson'),
      '--accounts',
      join(month, 'accounts.json'),
      '--waba',
      '953306147105484',
      '--business',
      '827790422848843',
      '--format',
      'json',
    ];
    const before = await cli([...args, '--at', '2025-10-31T23:00:00Z']);
    expect(before.code).toBe(EXIT.OK);
    const [line] = JSON.parse(before.out).lines;
    expect(line.free).toBe(false);
    expect(line.reason).not.toContain('2025-10-31T23:22:34Z');
    const after = await cli([...args, '--at', '2025-10-31T23:30:00Z']);
    expect(JSON.parse(after.out).lines[0]).toMatchObject({ free: true });
    expect(JSON.parse(after.out).lines[0].reason).toContain('user wrote 2025-10-31T23:22:34Z');
  });

  it("--business of another WABA is refused with BUSINESS_NOT_OF_WABA, naming the WABA's own numbers", async () => {
    const two = join(dir, 'two-wabas.ndjson');
    writeFileSync(
      two,
      [
        {
          kind: 'inbound',
          at: '2025-10-15T10:00:00Z',
          waba: 'W1',
          business: 'PN1',
          user: '919800000002',
          id: 'a',
        },
        {
          kind: 'inbound',
          at: '2025-10-15T10:00:00Z',
          waba: 'W2',
          business: 'PN2',
          user: '919876543210',
          id: 'b',
        },
      ]
        .map((event) => JSON.stringify(event))
        .join('\n'),
    );
    const result = await cli([
      recipients,
      '--template',
      'utility',
      '--events',
      two,
      '--waba',
      'W1',
      '--business',
      'PN2',
    ]);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.out).toBe('');
    expect(result.err).toContain('BUSINESS_NOT_OF_WABA');
    expect(result.err).toContain('--business (PN1)');
  });

  describe('the CSV output and the columns kept', () => {
    it("echoes a column named like a line's field as input_<name>, in CSV and JSON, and says so once on stderr", async () => {
      const own = join(dir, 'own-fields.csv');
      writeFileSync(own, 'phone,price,currency,country\n919876543210,99,EUR,FR\n');
      const said =
        'wameter: warning: columns of the recipients CSV named like a field of the estimate or an earlier column are echoed renamed, never overwritten: price as input_price, currency as input_currency, country as input_country\n';
      const csv = await cli([own, '--template', 'utility', '--events', events, '--format', 'csv']);
      expect(csv.code).toBe(EXIT.OK);
      const [header, row] = csv.out.split('\n');
      expect(header).toBe(
        'phone,country,market,price,currency,free,reason,input_price,input_currency,input_country',
      );
      expect(row).toMatch(/^919876543210,IN,India,0,USD,true,.*,99,EUR,FR$/);
      expect(csv.err.split(said)).toHaveLength(2);
      const json = await cli([own, '--template', 'utility', '--events', events, '--format', 'json']);
      const document = JSON.parse(json.out);
      expect(document.lines[0]).toMatchObject({
        country: 'IN',
        currency: 'USD',
        price: '0',
        input_price: '99',
        input_currency: 'EUR',
        input_country: 'FR',
      });
      expect(document.warnings).toContain(said.replace(/^wameter: warning: /, '').trimEnd());
      expect(json.err.split(said)).toHaveLength(2);
    });

    it('quotes and escapes the header cells as it does the data cells', async () => {
      const odd = join(dir, 'odd-header.csv');
      writeFileSync(odd, 'phone,"Name, full","=cmd|x",note\n919876543210,"Doe, J",a,b\n');
      const result = await cli([odd, '--template', 'utility', '--events', events, '--format', 'csv']);
      expect(result.code).toBe(EXIT.OK);
      const [header, row] = result.out.split('\n');
      expect(header).toBe(`phone,country,market,price,currency,free,reason,"Name, full",'=cmd|x,note`);
      expect(row).toMatch(/,"Doe, J",a,b$/);
    });
  });

  describe('recipients from stdin (-)', () => {
    const piped = (args: string[], stdin: string) =>
      runWameter(['estimate', ...args], { now: () => NOW, stdin });

    it('reads the recipients CSV from stdin when the file is -, naming its lines <stdin>', async () => {
      const list = 'name,phone\nAsha,+91 98765 43210\nNobody,not-a-number\n';
      const json = await piped(['-', '--template', 'utility', '--events', events, '--format', 'json'], list);
      expect(json.code).toBe(EXIT.OK);
      expect(JSON.parse(json.out).lines).toEqual([
        expect.objectContaining({ phone: '919876543210', name: 'Asha', free: true }),
      ]);
      const table = await piped(['-', '--template', 'utility', '--events', events], list);
      expect(table.err).toContain('wameter: <stdin>:3: invalid number');
    });

    it('refuses - for both the recipients and --events: stdin is read once', async () => {
      const result = await piped(['-', '--template', 'utility', '--events', '-'], 'phone\n919876543210\n');
      expect(result.code).toBe(EXIT.USAGE);
      expect(result.out).toBe('');
      expect(result.err).toBe(
        'wameter: stdin can be read once: give the recipients (-) or the events (--events -) on stdin, not both\n',
      );
    });

    it('reads the events from stdin with --events -', async () => {
      const list = join(dir, 'asha.csv');
      writeFileSync(list, 'phone\n919876543210\n');
      const event = { kind: 'inbound', at: '2025-10-15T10:00:00Z', waba: 'W1', business: 'PN1' };
      const result = await piped(
        [list, '--template', 'utility', '--events', '-', '--format', 'json'],
        `${JSON.stringify({ ...event, user: '919876543210', id: 'in1' })}\n`,
      );
      expect(result.code).toBe(EXIT.OK);
      expect(JSON.parse(result.out).lines[0]).toMatchObject({ free: true });
    });

    it('--help says - reads stdin', async () => {
      expect((await cli(['--help'])).out).toMatch(/recipients +CSV with a "phone" column, or - for stdin/);
    });
  });
});

describe('wameter estimate: a currency with no priced send', () => {
  it('its total carries the unpriced count and no amount (JSON), and says so in the table', async () => {
    const accounts = join(dir, 'accounts-inr.json');
    writeFileSync(
      accounts,
      JSON.stringify({
        accounts: [
          { waba: 'W1', timezone: 'Asia/Kolkata', currency: 'INR', portfolio: 'P1', primary_country: 'IN' },
        ],
      }),
    );
    const sent = join(dir, 'sent-inr.ndjson');
    writeFileSync(
      sent,
      `${JSON.stringify({ kind: 'outbound', at: '2025-10-08T06:00:00Z', waba: 'W1', business: 'PN1', user: '919876543210', id: 'o1', template: 'utility', delivered_at: '2025-10-08T06:00:03Z' })}\n`,
    );
    const one = join(dir, 'one-inr.csv');
    writeFileSync(one, 'phone\n919876543212\n');
    const args = [one, '--template', 'utility', '--at', '2025-10-20T00:00:00Z', '--events', sent];
    const json = await cli([...args, '--accounts', accounts, '--format', 'json']);
    expect(json.code).toBe(EXIT.UNPRICED);
    expect(JSON.parse(json.out).totals).toEqual({
      count: 1,
      free: 0,
      charged: 1,
      unpriced: 1,
      by_currency: { INR: { count: 1, free: 0, charged: 1, unpriced: 1, amount: null } },
    });
    const table = await cli([...args, '--accounts', accounts]);
    expect(table.out).toMatch(/ {2}INR +unknown {2}for 1 charged of 1: no price known for 1 of them\n/);
    expect(table.out).not.toMatch(/INR +0 /);
  });
});

describe('wameter estimate --db: the pricing of the stored bill', () => {
  const accounts = join(dir, 'accounts.json');
  writeFileSync(
    accounts,
    JSON.stringify({
      accounts: [
        {
          waba: 'W1',
          timezone: 'Asia/Kolkata',
          primary_country: 'ID',
          auth_international: { start: '2024-07-01T00:00:00Z' },
        },
      ],
    }),
  );
  const db = `sqlite:${join(dir, 'priced.db')}`;
  const estimateAuth = (extra: string[]) =>
    cli([recipients, '--template', 'authentication', '--db', db, '--format', 'json', ...extra]);

  it('warns when the quote is priced with other accounts or rate cards than the bill was; not when the same', async () => {
    const saved = process.env.WAMETER_ACCOUNTS;
    process.env.WAMETER_ACCOUNTS = accounts;
    try {
      expect((await runWameter(['import', events, '--db', db])).code).toBe(EXIT.OK);
    } finally {
      if (saved === undefined) delete process.env.WAMETER_ACCOUNTS;
      else process.env.WAMETER_ACCOUNTS = saved;
    }

    // Without the service's accounts: an authentication-international WABA quoted at the domestic rate.
    const bare = await estimateAuth([]);
    expect(bare.code).toBe(EXIT.OK);
    const bareWarnings = JSON.parse(bare.out).warnings as string[];
    expect(bareWarnings).toEqual([
      expect.stringMatching(
        /^the accounts \(time zones, currencies, portfolios, authentication-international\) differ from those the stored bill of WABA W1 was last priced with \(rating .+\): these quotes may not match it; no accounts file was given \(--accounts\): give the service's accounts file/,
      ),
    ]);
    expect(bare.err).toContain('wameter: warning: the accounts (time zones');

    const same = await estimateAuth(['--accounts', accounts]);
    expect(JSON.parse(same.out).warnings ?? []).toEqual([]);
    expect(JSON.parse(same.out).lines[0].price).not.toBe(JSON.parse(bare.out).lines[0].price);

    const oneCard = await estimateAuth([
      '--accounts',
      accounts,
      '--rate-cards',
      join('data', 'rate-cards', 'usd-2025-10-01.csv'),
    ]);
    expect(JSON.parse(oneCard.out).warnings).toEqual([
      expect.stringContaining(
        'the rate cards (--rate-cards data/rate-cards/usd-2025-10-01.csv) differ from those the stored bill of WABA W1 was last priced with',
      ),
    ]);

    // The bundled cards again, one of them edited under its own file name: the ids match, the rates do not.
    const edited = join(dir, 'edited-cards');
    mkdirSync(edited);
    for (const name of readdirSync(join('data', 'rate-cards'))) {
      const text = readFileSync(join('data', 'rate-cards', name), 'utf8');
      writeFileSync(join(edited, name), text.replace(/^India,\$US,([\d.]+),/m, 'India,$US,0.5000,'));
    }
    const sameIds = await estimateAuth(['--accounts', accounts, '--rate-cards', edited]);
    expect(JSON.parse(sameIds.out).warnings).toEqual([
      expect.stringContaining(`the rate cards (--rate-cards ${edited}) differ from those the stored bill`),
    ]);
    const bundledCopy = join(dir, 'bundled-copy');
    mkdirSync(bundledCopy);
    for (const name of readdirSync(join('data', 'rate-cards'))) {
      copyFileSync(join('data', 'rate-cards', name), join(bundledCopy, name));
    }
    const copied = await estimateAuth(['--accounts', accounts, '--rate-cards', bundledCopy]);
    expect(JSON.parse(copied.out).warnings ?? []).toEqual([]);
  });
});

describe('wameter estimate --db: volume tiers of a portfolio', () => {
  it("counts the portfolio mates' stored messages toward the tier, as --events and the service do", async () => {
    const here = mkdtempSync(join(tmpdir(), 'wameter-estimate-portfolio-'));
    const accounts = join(here, 'accounts.json');
    writeFileSync(
      accounts,
      JSON.stringify({
        accounts: [{ waba: 'W1', portfolio: 'P1' }, { waba: 'W2', portfolio: 'P1' }, { waba: 'W3' }],
      }),
    );
    // Utility templates delivered in India outside any service window: W1 one, W2 two, W3 (another
    // portfolio) three.
    const lines = (['W1', 'W2', 'W2', 'W3', 'W3', 'W3'] as const).flatMap((waba, i) => [
      {
        kind: 'outbound',
        at: `2025-10-0${i + 1}T09:00:00Z`,
        waba,
        business: `PN-${waba}`,
        user: `9198000000${10 + i}`,
        id: `u${i}`,
        template: 'utility',
      },
      { kind: 'status', at: `2025-10-0${i + 1}T09:00:05Z`, waba, id: `u${i}`, status: 'delivered' },
    ]);
    const traffic = join(here, 'events.ndjson');
    writeFileSync(traffic, lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
    const cards = join(here, 'cards');
    mkdirSync(cards);
    copyFileSync(join('data', 'rate-cards', 'usd-2025-10-01.csv'), join(cards, 'usd-2025-10-01.csv'));
    writeFileSync(
      join(cards, 'usd-2025-10-01-tiers.csv'),
      'Volume tiers in USD, effective October 1, 2025\nMarket,Currency,Category,From,To,Rate\n' +
        'India,$US,Utility,1,3,0.0014\nIndia,$US,Utility,4,,0.0010\n',
    );
    const db = `sqlite:${join(here, 'store.db')}`;
    const saved = [process.env.WAMETER_ACCOUNTS, process.env.WAMETER_RATE_CARDS] as const;
    process.env.WAMETER_ACCOUNTS = accounts;
    process.env.WAMETER_RATE_CARDS = cards;
    try {
      const imported = await runWameter(['import', traffic, '--db', db]);
      expect(imported.code, imported.err).toBe(EXIT.OK);
    } finally {
      for (const [name, value] of [
        ['WAMETER_ACCOUNTS', saved[0]],
        ['WAMETER_RATE_CARDS', saved[1]],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    const quote = async (state: string[]) => {
      const result = await cli([
        recipients,
        '--template',
        'utility',
        '--waba',
        'W1',
        '--business',
        'PN-W1',
        '--accounts',
        accounts,
        '--rate-cards',
        cards,
        '--format',
        'json',
        ...state,
      ]);
      expect(result.code, result.err).toBe(EXIT.OK);
      return (JSON.parse(result.out) as { lines: { price: string; reason: string }[] }).lines[0]!;
    };
    const fromStore = await quote(['--db', db]);
    const fromFile = await quote(['--events', traffic]);
    expect(fromStore).toEqual(fromFile);
    // The quoted send is the portfolio's fourth utility message of the month in India, not W1's second.
    // The quoted send is the portfolio's fourth utility message of the month in India (W3 is of another
    // portfolio), past the first band: not W1's second, at the list rate.
    expect(fromStore.price).toBe('0.001');
    expect(fromStore.reason).toMatch(/volume tier 4:, message 4 of 2025-10/);
  });
});
