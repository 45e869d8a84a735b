import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { messagesWebhook } from '../../test/support/webhook-body.js';
import type { CoreEvent } from '../core/events.js';
import { IGNORED } from './parse-event.js';
import {
  EMPTY_SOURCE_REASON,
  readEventSources,
  STDIN_NAME,
  type IgnoredNote,
  type ReadOptions,
  type ReadSummary,
  type SourceError,
} from './read-events.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/webhooks/', import.meta.url));

interface Collected {
  events: CoreEvent[];
  errors: SourceError[];
  ignored: IgnoredNote[];
  batches: number;
  summary: ReadSummary;
}

async function collect(sources: string[], options?: ReadOptions): Promise<Collected> {
  const events: CoreEvent[] = [];
  const errors: SourceError[] = [];
  const ignored: IgnoredNote[] = [];
  let batches = 0;
  const summary = await readEventSources(
    sources,
    {
      onEvents: (batch) => {
        batches++;
        for (const event of batch) events.push(event);
      },
      onError: (error) => errors.push(error),
      onIgnored: (note) => ignored.push(note),
    },
    options,
  );
  return { events, errors, ignored, batches, summary };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wameter-read-events-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, content: string | Buffer): Promise<string> {
  const path = join(dir, name);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  return path;
}

const inbound = (id: string, user = 'U1') =>
  JSON.stringify({ kind: 'inbound', at: '2024-03-01T10:00:00Z', waba: 'W1', business: 'PN1', user, id });
const outbound = (id: string) =>
  JSON.stringify({
    kind: 'outbound',
    at: '2024-03-01T10:05:00Z',
    waba: 'W1',
    business: 'PN1',
    user: 'U1',
    id,
    template: 'utility',
  });
const delivered = (id: string) =>
  JSON.stringify({ kind: 'status', at: '2024-03-01T10:05:03Z', id, status: 'delivered' });

const ids = (events: CoreEvent[]) => events.map((event) => ('id' in event ? event.id : event.kind));

describe('every webhook fixture', () => {
  // Files under test/fixtures/webhooks that are not webhook bodies, and the one sample that keeps Meta's
  // placeholders instead of values. Each must give exactly the error named here, and nothing else may fail.
  const KNOWN_NOT_BODIES: Record<string, string> = {
    'meta-docs/analytics_conversation_half_hour_by_category.json': 'a Meta analytics export',
    'meta-docs/analytics_conversation_half_hour_by_category_and_type.json': 'a Meta analytics export',
    'meta-docs/analytics_conversation_monthly_all_dimensions.json': 'a Meta analytics export',
    'meta-docs/analytics_conversation_monthly_by_type_unwrapped.json': 'a Meta analytics export',
    'meta-docs/analytics_pricing_daily_tier_category_type_country.json': 'a Meta analytics export',
    'meta-docs/incoming_text_ctwa_referral_with_ref_placeholders.json':
      '"timestamp": "TIMESTAMP" is not an instant',
    'meta-docs-snippets/SOURCES.json': 'not an event line',
    'meta-docs-snippets/pricing_pmp_authentication_international.json': 'a fragment of a webhook',
    'meta-docs-snippets/pricing_pmp_free_customer_service_service.json': 'a fragment of a webhook',
    'meta-docs-snippets/pricing_pmp_free_customer_service_utility.json': 'a fragment of a webhook',
    'meta-docs-snippets/status_fragment_mm_lite_marketing_lite.json': 'a fragment of a webhook',
  };

  it('is read from the directory without error, except the named non-bodies', async () => {
    const { errors, summary, events } = await collect([FIXTURES]);
    const jsonFiles = (await readdir(FIXTURES, { recursive: true })).filter((f) => f.endsWith('.json'));
    expect(summary.files).toHaveLength(jsonFiles.length);
    const byFile = Object.fromEntries(errors.map((e) => [relative(FIXTURES, e.file), e]));
    expect(Object.keys(byFile).sort()).toEqual(Object.keys(KNOWN_NOT_BODIES).sort());
    for (const [file, expected] of Object.entries(KNOWN_NOT_BODIES)) {
      // Named at the line of the field at fault; a value that is no body at all, at its first line.
      const text = await readFile(join(FIXTURES, file), 'utf8');
      const field = /"timestamp": "TIMESTAMP"/.exec(text);
      const line = field === null ? 1 : text.slice(0, field.index).split('\n').length;
      expect(byFile[file]).toMatchObject({ code: 'BAD_EVENT', line });
      expect(byFile[file]!.message).toContain(expected);
    }
    expect(summary.errors).toBe(errors.length);
    expect(summary.events).toBe(events.length);
    expect(events.length).toBeGreaterThan(30);
  });

  it('files sorted by name are read in that order', async () => {
    const { summary } = await collect([FIXTURES]);
    const files = summary.files.map((f) => relative(FIXTURES, f.file));
    expect(files[0]).toBe('meta-docs/account_update_whatsapp_business_accounts_example.json');
    expect(files.indexOf('meta-docs-snippets/SOURCES.json')).toBeGreaterThan(
      files.indexOf('meta-docs/value_errors_130429_rate_limit.json'),
    );
    expect(files.at(-1)).toBe('pywa/template_category_update_marketing.json');
  });

  it('a pretty-printed status body gives a sent status with pricing evidence', async () => {
    const { events, errors, summary } = await collect([
      join(FIXTURES, 'meta-docs/status_sent_marketing_pmp_with_conversation.json'),
    ]);
    expect(errors).toEqual([]);
    expect(events).toEqual([
      expect.objectContaining({
        kind: 'status',
        status: 'sent',
        atMs: 1750030073000,
        user: '16505551234',
        pricing: { billable: true, pricing_model: 'PMP', type: 'regular', category: 'marketing' },
        conversation: expect.objectContaining({ id: '72b14d6bd5407799e66f64d1b338e567' }),
      }),
    ]);
    expect(summary.lines).toBe(41);
  });

  it.each([
    [
      'meta-docs/incoming_text_ctwa_referral.json',
      { kind: 'inbound', hasReferral: true, user: '16505551234' },
    ],
    [
      'meta-docs/status_delivered_marketing_pmp_bsuid_only_empty_recipient.json',
      {
        kind: 'status',
        user: 'user.9373795779eb6441c8adb2eaee5b848e7dd174ddd302d7db62142f4722d574b6',
        userCountryHint: 'US',
      },
    ],
    [
      'pywa/account_update_volume_tier_update.json',
      { kind: 'account_update', event: 'VOLUME_BASED_PRICING_TIER_UPDATE' },
    ],
    [
      'pywa/account_update_auth_intl_eligibility.json',
      { kind: 'account_update', event: 'AUTH_INTL_PRICE_ELIGIBILITY_UPDATE' },
    ],
    ['pywa/account_update_primary_business_location.json', { kind: 'account_update', primaryCountry: 'IN' }],
    [
      'meta-docs/template_category_update_changed.json',
      { kind: 'template_category_update', previousCategory: 'utility', newCategory: 'marketing' },
    ],
  ])('%s', async (path, expected) => {
    const { events, errors } = await collect([join(FIXTURES, path)]);
    expect(errors).toEqual([]);
    expect(events).toEqual([expect.objectContaining(expected)]);
  });

  it('ignored items are reported with file, line and reason', async () => {
    const { ignored, summary, errors } = await collect([join(FIXTURES, 'pywa/status_group.json')]);
    expect(errors).toEqual([]);
    expect(ignored).toEqual([
      { file: join(FIXTURES, 'pywa/status_group.json'), line: 1, reason: IGNORED.groupStatus, count: 1 },
    ]);
    expect(summary.ignored).toBe(1);
  });
});

describe('NDJSON files', () => {
  it('mixed contract lines and a one-line webhook body, CRLF, blank lines and a malformed line in the middle', async () => {
    const body = JSON.stringify(
      JSON.parse(
        await readFile(
          join(FIXTURES, 'meta-docs/status_delivered_marketing_pmp_bsuid_contacts.json'),
          'utf8',
        ),
      ),
    );
    const lines = [
      inbound('in1'),
      outbound('o1'),
      '',
      '{"kind":"status","at":',
      body,
      '   ',
      delivered('o1'),
      outbound('o2'),
    ];
    const file = await write('mixed.ndjson', lines.join('\r\n'));
    const { events, errors, summary } = await collect([file]);
    expect(ids(events)).toEqual([
      'in1',
      'o1',
      'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=',
      'o1',
      'o2',
    ]);
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file,
        line: 4,
        message: expect.stringMatching(/^line 4 is not valid JSON: Unexpected end of JSON input/),
      },
    ]);
    expect(summary).toEqual({
      lines: 8,
      events: 5,
      errors: 1,
      ignored: 0,
      files: [{ file, lines: 8, events: 5, errors: 1, ignored: 0 }],
    });
  });

  it("a malformed line's error carries JSON's parse position", async () => {
    const file = await write(
      'position.ndjson',
      `${inbound('in1')}\n{"kind": "inbound", "at" 1}\n${inbound('in2')}\n`,
    );
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['in1', 'in2']);
    expect(errors[0]).toMatchObject({ code: 'MALFORMED_LINE', file, line: 2 });
    expect(errors[0]!.message).toContain('at position 25 (column 26)');
  });

  it('a valid JSON line that is not a good event is BAD_EVENT with its line; the rest is kept', async () => {
    const badTemplate = outbound('o9').replace('"utility"', '"promo"');
    const file = await write(
      'bad-event.jsonl',
      [inbound('in1'), badTemplate, '[1,2]', delivered('o1')].join('\n'),
    );
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['in1', 'o1']);
    expect(errors).toEqual([
      {
        code: 'BAD_EVENT',
        file,
        line: 2,
        message:
          'outbound line "template" must be marketing, utility, authentication, or null for a non-template message; got "promo"',
      },
      {
        code: 'BAD_EVENT',
        file,
        line: 3,
        message: expect.stringContaining('the array[0]: expected an event line'),
      },
      {
        code: 'BAD_EVENT',
        file,
        line: 3,
        message: expect.stringContaining('the array[1]: expected an event line'),
      },
    ]);
  });

  it('an id holding a control character or a lone surrogate is refused by its line, however the bytes arrive in chunks', async () => {
    // Written raw (DEL, a C1 character: JSON.stringify escapes neither) or as an escape (ESC, an unpaired
    // surrogate). The reader spares the look at each string only for text it knows plain: a chunk of ASCII
    // without a backslash or DEL, and a line's pieces carried from the chunks before it.
    const lines = [
      inbound('in1'),
      outbound('o1').replace('"W1"', '"W\u007f1"'),
      inbound('in2'),
      outbound('o2').replace('"o2"', '"o\u00852"'),
      outbound('o3').replace('"o3"', '"o\\u001b3"'),
      delivered('o4').replace('"o4"', '"o\\ud8004"'),
      inbound('in3'),
    ];
    const text = Buffer.from(lines.join('\n') + '\n', 'utf8');
    const expected: Array<[number, string]> = [
      [2, 'outbound line "waba" holds a control character (U+007F)'],
      [4, 'outbound line "id" holds a control character (U+0085)'],
      [5, 'outbound line "id" holds a control character (U+001B)'],
      [6, 'status line "id" holds a lone UTF-16 surrogate'],
    ];
    for (const size of [1, 2, 3, 7, 16, 50, 151, 1000]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < text.length; at += size) chunks.push(text.subarray(at, at + size));
      const { events, errors } = await collect(['-'], { stdin: Readable.from(chunks) });
      expect(ids(events), `chunks of ${size} bytes`).toEqual(['in1', 'in2', 'in3']);
      expect(errors, `chunks of ${size} bytes`).toEqual(
        expected.map(([line, message]) => ({
          code: 'BAD_EVENT',
          file: STDIN_NAME,
          line,
          message: expect.stringContaining(message),
        })),
      );
    }
  });

  it('an instant out of range or in milliseconds, or a misspelt status word, is BAD_EVENT with its line; the rest is rated', async () => {
    const status = (at: string, word = 'delivered') =>
      `{"kind":"status","at":${at},"id":"o1","status":"${word}"}`;
    const webhookInMs = JSON.stringify(
      statusBody('s1', [sentStatus('s1', '1750030073000'), sentStatus('s2')]),
    );
    const lines = [
      outbound('o1'),
      status('1e20'),
      status('1709287560000'),
      status('"+275760-09-13T00:00:00Z"'),
      status('"2024-03-01T10:05:03Z"', 'deliverd'),
      status('"2024-03-01T10:05:03Z"', 'DELIVERED'),
      webhookInMs,
      delivered('o1'),
    ];
    const file = await write('bad-instants.ndjson', lines.join('\n') + '\n');
    const { events, errors, summary } = await collect([file]);
    expect(ids(events)).toEqual(['o1', 's2', 'o1']);
    expect(events[2]).toEqual({
      kind: 'status',
      atMs: Date.parse('2024-03-01T10:05:03Z'),
      id: 'o1',
      status: 'delivered',
    });
    const range =
      '(accepted: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, or Unix seconds from 0 to 99999999999)';
    expect(errors).toEqual([
      {
        code: 'BAD_EVENT',
        file,
        line: 2,
        message: `status line "at": 100000000000000000000 is outside the range of instants wameter reads ${range}`,
      },
      {
        code: 'BAD_EVENT',
        file,
        line: 3,
        message:
          'status line "at": 1709287560000 looks like milliseconds; timestamps here take Unix seconds: write 1709287560 (2024-03-01T10:06:00Z) or an ISO-8601 instant',
      },
      {
        code: 'BAD_EVENT',
        file,
        line: 4,
        message: expect.stringContaining('status line "at": "+275760-09-13T00:00:00Z" is not an instant'),
      },
      {
        code: 'BAD_EVENT',
        file,
        line: 5,
        message:
          'status line "status" must be sent, delivered, read or failed (in lower case), not "deliverd"; did you mean "delivered"?',
      },
      {
        code: 'BAD_EVENT',
        file,
        line: 6,
        message:
          'status line "status" must be sent, delivered, read or failed (in lower case), not "DELIVERED"; write it in lower case: "delivered"',
      },
      {
        code: 'BAD_EVENT',
        file,
        line: 7,
        message: expect.stringContaining(
          'entry[0].changes[0].value.statuses[0] "timestamp": "1750030073000" looks like milliseconds',
        ),
      },
    ]);
    expect(summary).toMatchObject({ lines: 8, events: 3, errors: 6 });
  });

  it('one bad status inside a webhook body line costs only that status', async () => {
    const bodyLine = JSON.stringify(
      statusBody('s1', [sentStatus('s1'), { status: 'sent', timestamp: '1750030073', recipient_id: 'U1' }]),
    );
    const file = await write('partial.ndjson', `${bodyLine}\n${delivered('s1')}\n`);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1', 's1']);
    expect(errors).toEqual([
      {
        code: 'BAD_EVENT',
        file,
        line: 1,
        message: 'entry[0].changes[0].value.statuses[1] needs "id" (the business message\'s wamid)',
      },
    ]);
  });

  it('an id longer than any real one, or holding NUL, is BAD_EVENT with its line and the limit; the rest is read', async () => {
    // /tmp/svc-audit/longuser2.ndjson and nul.ndjson: a store could not index the one, nor keep the other.
    const longUser = inbound('in2', `55${'3'.repeat(3000)}`);
    const nul = outbound('o1').replace('"o1"', '"wamid.nul\\u0000x"');
    const file = await write('long-ids.ndjson', [inbound('in1'), longUser, nul, delivered('o1')].join('\n'));
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['in1', 'o1']);
    expect(errors).toEqual([
      {
        code: 'BAD_EVENT',
        file,
        line: 2,
        message: expect.stringMatching(
          /^inbound line "user" is too long: 3002 bytes, where an id has at most 256 \(UTF-8; real ones are far shorter\); it begins "5533/,
        ),
      },
      {
        code: 'BAD_EVENT',
        file,
        line: 3,
        message:
          'outbound line "id" holds a NUL character (U+0000), which no real value has: "wamid.nul\\u0000x"',
      },
    ]);
  });

  it('`wameter rate` names the file and line of an over-long id and rates every other line', async () => {
    const longId = outbound('o2').replace('"o2"', `"wamid.${'9'.repeat(12_000)}"`);
    const file = await write('long-id-rate.ndjson', [outbound('o1'), longId, delivered('o1')].join('\n'));
    const { code, out, err } = await runWameter(['rate', file, '--format', 'json']);
    expect(code).toBe(2);
    expect(err).toContain(
      `wameter: ${file}:2: BAD_EVENT: outbound line "id" is too long: 12006 bytes, where an id has at most 256`,
    );
    expect(err).toContain('1 input problem(s); every other line was read and rated');
    const document = JSON.parse(out) as { units: { messages: string[] }[] };
    expect(document.units.map((unit) => unit.messages)).toEqual([['o1']]);
  });

  it('a final line without newline, a byte-order mark and an empty file', async () => {
    const file = await write('bom.ndjson', `\uFEFF${inbound('in1')}\n${inbound('in2')}`);
    expect(ids((await collect([file])).events)).toEqual(['in1', 'in2']);
    const empty = await write('empty.ndjson', '');
    expect(await collect([empty])).toMatchObject({ events: [], errors: [], summary: { lines: 0 } });
  });

  it('whose first line is broken are still read line by line', async () => {
    const file = await write(
      'first-broken.ndjson',
      `{"kind":"inbound",\n${inbound('in1')}\n${inbound('in2')}\n`,
    );
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['in1', 'in2']);
    expect(errors).toEqual([expect.objectContaining({ code: 'MALFORMED_LINE', line: 1 })]);
  });

  it('a first line that is not JSON at all does not stop the others', async () => {
    const file = await write('garbage-first.ndjson', `hello\n${inbound('in1')}\n`);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['in1']);
    expect(errors).toEqual([expect.objectContaining({ code: 'MALFORMED_LINE', line: 1 })]);
  });

  it('many events arrive in batches, in file order', async () => {
    const count = 10_000;
    const lines: string[] = [];
    for (let i = 0; i < count; i++) lines.push(inbound(`in${i}`));
    const file = await write('many.ndjson', lines.join('\n') + '\n');
    const { events, batches, summary } = await collect([file]);
    expect(events).toHaveLength(count);
    expect(ids(events)[count - 1]).toBe(`in${count - 1}`);
    expect(batches).toBeGreaterThan(1);
    expect(summary.lines).toBe(count);
  });
});

describe('single-document files', () => {
  it('an array of webhook bodies and event lines, pretty-printed', async () => {
    const body = JSON.parse(await readFile(join(FIXTURES, 'pywa/status_read.json'), 'utf8'));
    const file = await write(
      'array.json',
      JSON.stringify([body, JSON.parse(outbound('o1')), { kind: 'nope' }], null, 2),
    );
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['wamid.xyzxyz', 'o1']);
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'BAD_EVENT',
        // The line of the third element's "kind": the last line but two of the file.
        line: (await readFile(file, 'utf8')).split('\n').length - 2,
        message: expect.stringContaining('the document[2]: "kind"'),
      }),
    ]);
  });

  it('a pretty-printed document that does not parse reports its line and column', async () => {
    const text = '{\n  "object": "whatsapp_business_account",\n  "entry": [\n    {"id": "W1",}\n  ]\n}\n';
    const file = await write('broken-body.json', text);
    const { events, errors } = await collect([file]);
    expect(events).toEqual([]);
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file,
        line: 4,
        message: expect.stringMatching(/does not parse: .*at position \d+ \(line 4, column 17\)$/),
      },
    ]);
  });

  it('a document over the size cap is refused with what to do', async () => {
    const file = await write('huge.json', `{\n  "entry": [\n${'    "x",\n'.repeat(200)}  ]\n}\n`);
    const { errors } = await collect([file], { maxDocumentBytes: 1000 });
    expect(errors).toEqual([
      { code: 'DOCUMENT_TOO_LARGE', file, message: expect.stringContaining('write it as NDJSON') },
    ]);
  });
});

describe('sources', () => {
  it('stdin is read for "-", split across chunk boundaries inside a character', async () => {
    const text = Buffer.from(`${inbound('in1', 'Zoë 😀')}\r\n${delivered('o1')}`, 'utf8');
    const emoji = text.indexOf(Buffer.from('😀')) + 2;
    const stdin = Readable.from([text.subarray(0, emoji), text.subarray(emoji)]);
    const { events, errors, summary } = await collect(['-'], { stdin });
    expect(errors).toEqual([]);
    expect(events).toEqual([
      expect.objectContaining({ user: 'Zoë 😀' }),
      expect.objectContaining({ id: 'o1' }),
    ]);
    expect(summary.files[0]!.file).toBe(STDIN_NAME);
  });

  it('a pretty-printed body on stdin', async () => {
    const text = await readFile(join(FIXTURES, 'meta-docs/incoming_text_basic.json'));
    const stdin = Readable.from([text.subarray(0, 100), text.subarray(100)]);
    const { events, errors } = await collect(['-'], { stdin });
    expect(errors).toEqual([]);
    expect(events).toEqual([expect.objectContaining({ kind: 'inbound', user: '16505551234' })]);
  });

  it('a directory is read recursively, files sorted by name, other extensions skipped', async () => {
    const root = join(dir, 'tree');
    await write('tree/b.ndjson', inbound('b'));
    await write('tree/a/z.jsonl', inbound('az'));
    await write('tree/a/c.JSON', inbound('ac'));
    await write('tree/notes.txt', 'not events');
    await write('tree/.hidden/x.json', inbound('hidden'));
    const { events, errors, ignored, summary } = await collect([root]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['ac', 'az', 'b']);
    expect(summary.files.map((f) => relative(root, f.file))).toEqual(['a/c.JSON', 'a/z.jsonl', 'b.ndjson']);
    // What was not read is said, once, as a warning about the directory (never silently).
    expect(ignored).toEqual([
      {
        file: root,
        line: 0,
        count: 0,
        reason: `not read: 1 file not named .json, .ndjson, .jsonl (first: ${join(root, 'notes.txt')}); 1 hidden entry (first: ${join(root, '.hidden')}); rename a file of events to .ndjson, or name it as a source of its own`,
      },
    ]);
  });

  it('a broken or self-looping link in a folder is passed over and said; the rest of the folder is read', async () => {
    const root = join(dir, 'dangling');
    await write('dangling/a.ndjson', inbound('a'));
    await write('dangling/deeper/c.ndjson', inbound('c'));
    await symlink(join(dir, 'nonexistent.ndjson'), join(root, 'b-gone.ndjson'));
    await symlink('ring-2.ndjson', join(root, 'deeper', 'ring-1.ndjson'));
    await symlink('ring-1.ndjson', join(root, 'deeper', 'ring-2.ndjson'));
    const { events, errors, ignored } = await collect([root]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['a', 'c']);
    expect(ignored).toEqual([
      {
        file: root,
        line: 0,
        count: 0,
        reason: `not read: 3 broken links (first: ${join(root, 'b-gone.ndjson')}: its target does not exist); fix or remove a broken link`,
      },
    ]);
    const alone = await collect([join(root, 'deeper')]);
    expect(alone.ignored[0]!.reason).toBe(
      `not read: 2 broken links (first: ${join(root, 'deeper', 'ring-1.ndjson')}: it leads back to itself); fix or remove a broken link`,
    );
  });

  it('one stray .csv file in a folder of events gets the usual advice, not the rate cards one', async () => {
    const root = join(dir, 'events-and-csv');
    await write('events-and-csv/a.ndjson', inbound('a'));
    await write('events-and-csv/summary.csv', 'a,b\n');
    const { events, ignored } = await collect([root]);
    expect(ids(events)).toEqual(['a']);
    expect(ignored.map((note) => note.reason)).toEqual([
      `not read: 1 file not named .json, .ndjson, .jsonl (first: ${join(root, 'summary.csv')}); rename a file of events to .ndjson, or name it as a source of its own`,
    ]);
  });

  it('a named pipe in a folder, even named .ndjson, is passed over and said (reading it would wait for ever)', async () => {
    const root = join(dir, 'with-pipe');
    await write('with-pipe/a.ndjson', inbound('a'));
    const made = spawnSync('mkfifo', [join(root, 'pipe.ndjson')]);
    expect(made.status).toBe(0);
    const { events, errors, ignored } = await collect([root]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['a']);
    expect(ignored).toEqual([
      {
        file: root,
        line: 0,
        count: 0,
        reason: `not read: 1 entry that is no regular file (first: ${join(root, 'pipe.ndjson')}: a named pipe, socket or device; give a pipe as a source of its own)`,
      },
    ]);
  });

  it('a link back to a folder above is followed once: every file read once, the loop said, never an error', async () => {
    const root = join(dir, 'looping');
    await write('looping/a.ndjson', inbound('a'));
    await write('looping/sub/b.ndjson', inbound('b'));
    await symlink('..', join(root, 'sub', 'up'));
    // A second way into a folder already read is the same folder: read once too.
    await symlink('sub', join(root, 'sub-again'));
    const { events, errors, ignored, summary } = await collect([root]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['a', 'b']);
    expect(summary.files.map((f) => relative(root, f.file))).toEqual(['a.ndjson', 'sub/b.ndjson']);
    expect(ignored).toEqual([
      {
        file: root,
        line: 0,
        count: 0,
        reason: `not read: 2 links to a folder already read (first: ${join(root, 'sub', 'up')}, which is ${root})`,
      },
    ]);
  });

  it('an error thrown by the sink goes up: it is no fault of the source, never reported as unreadable', async () => {
    const path = await write('sink-fails.ndjson', `${inbound('a')}\n${inbound('b')}\n`);
    const full = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    const errors: SourceError[] = [];
    const reading = readEventSources([path, path], {
      onEvents: () => {
        throw full;
      },
      onError: (error) => errors.push(error),
    });
    await expect(reading).rejects.toBe(full);
    expect(errors).toEqual([]);
  });

  it('several sources are read in the order given, and one unreadable source loses nothing else', async () => {
    const first = await write('first.ndjson', inbound('first'));
    const last = await write('last.ndjson', inbound('last'));
    const missing = join(dir, 'missing.ndjson');
    const { events, errors, summary } = await collect([first, missing, last]);
    expect(ids(events)).toEqual(['first', 'last']);
    expect(errors).toEqual([
      { code: 'UNREADABLE_SOURCE', file: missing, message: 'no such file or directory: check the path' },
    ]);
    expect(summary.files.map((f) => f.errors)).toEqual([0, 1, 0]);
  });

  it('a directory with no event files is unreadable', async () => {
    const empty = join(dir, 'no-events');
    await write('no-events/readme.md', '# nothing');
    const { errors } = await collect([empty]);
    expect(errors).toEqual([
      {
        code: 'UNREADABLE_SOURCE',
        file: empty,
        message: expect.stringContaining(
          `directory holds no event files (.json, .ndjson, .jsonl): check the path (not read: 1 file not named .json, .ndjson, .jsonl (first: ${join(empty, 'readme.md')})`,
        ),
      },
    ]);
  });

  it('a stream that fails midway keeps what was read and says where it stopped', async () => {
    const stdin = new Readable({ read() {} });
    stdin.push(`${inbound('in1')}\n${inbound('in2')}\n`);
    setImmediate(() => stdin.destroy(new Error('connection reset')));
    const { events, errors } = await collect(['-'], { stdin });
    expect(ids(events)).toEqual(['in1', 'in2']);
    expect(errors).toEqual([
      { code: 'UNREADABLE_SOURCE', file: STDIN_NAME, message: 'connection reset (stopped after line 2)' },
    ]);
  });
});

const fixture = (path: string) => readFile(join(FIXTURES, path), 'utf8');
/** A webhook body of WABA W1's number PN1 carrying `statuses` (by default one sent status for `id`). */
function statusBody(id: string, statuses: object[] = [sentStatus(id)]) {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: 'W1',
        changes: [{ field: 'messages', value: { metadata: { phone_number_id: 'PN1' }, statuses } }],
      },
    ],
  };
}
function sentStatus(id: string, timestamp = '1750030073'): object {
  return { id, status: 'sent', timestamp, recipient_id: 'U1' };
}
const pretty = (value: unknown) => JSON.stringify(value, null, 2);
const lineCount = (text: string) => text.split('\n').length;
/** A pretty-printed body whose fourth line has a trailing comma: `{"id": "W1",}` (line 4, column 17). */
const BROKEN_BODY = '{\n  "object": "whatsapp_business_account",\n  "entry": [\n    {"id": "W1",}\n  ]\n}';

describe('several JSON documents in one file', () => {
  it('pretty-printed bodies concatenated (cat a.json b.json) are each read, in order', async () => {
    const a = await fixture('meta-docs/status_sent_marketing_pmp_with_conversation.json');
    const b = await fixture('meta-docs/incoming_text_basic.json');
    const file = await write('concat.json', a + b);
    const { events, errors, summary } = await collect([file]);
    expect(errors).toEqual([]);
    expect(events).toEqual([
      expect.objectContaining({ kind: 'status', status: 'sent', atMs: 1750030073000 }),
      expect.objectContaining({ kind: 'inbound', user: '16505551234' }),
    ]);
    expect(summary.lines).toBe(lineCount(a + b.trimEnd()));
  });

  it('documents glued on one line ("}{"), an array of bodies among them, a blank line between', async () => {
    const file = await write(
      'glued.json',
      pretty(statusBody('s1')) +
        pretty([statusBody('s2'), JSON.parse(delivered('s2'))]) +
        '\n\n' +
        pretty(statusBody('s3')),
    );
    const { events, errors } = await collect([file]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['s1', 's2', 's2', 's3']);
  });

  it('bodies wrapped by hand, an inner line starting with { in column 1, are each read whole', async () => {
    // Each status object on a line of its own, from column 1: no pretty-printer's indentation.
    const wrapped = (id: string) =>
      JSON.stringify(statusBody(id, [sentStatus(id), sentStatus(`${id}-b`)])).replace(
        /,\{"id":/g,
        ',\n{"id":',
      );
    const file = await write('wrapped.json', `${wrapped('s1')}\n${wrapped('s2')}\n`);
    expect(
      (await readFile(file, 'utf8')).split('\n').filter((line) => line.startsWith('{"id"')),
    ).toHaveLength(2);
    const { events, errors } = await collect([file]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['s1', 's1-b', 's2', 's2-b']);
  });

  it('a body wrapped by hand before a broken one is still read whole; the broken one is named', async () => {
    const wrapped = JSON.stringify(statusBody('s1', [sentStatus('s1'), sentStatus('s1-b')])).replace(
      /,\{"id":/g,
      ',\n{"id":',
    );
    const file = await write('wrapped-then-broken.json', `${wrapped}\n${BROKEN_BODY}\n`);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1', 's1-b']);
    expect(errors).toEqual([expect.objectContaining({ code: 'MALFORMED_LINE', line: 3 + 3 })]);
  });

  it('a broken document is reported with its lines, line and column; those before and after are read', async () => {
    const before = pretty(statusBody('s1'));
    const after = pretty(statusBody('s2'));
    const file = await write('concat-broken.json', `${before}\n${BROKEN_BODY}\n${after}\n`);
    const { events, errors, summary } = await collect([file]);
    expect(ids(events)).toEqual(['s1', 's2']);
    const first = lineCount(before) + 1;
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file,
        line: first + 3,
        message:
          `the JSON document at lines ${first}–${first + 5} (one of several in this file) does not parse: ` +
          `Expected double-quoted property name in JSON (line ${first + 3}, column 17); ` +
          'the documents before and after it were read',
      },
    ]);
    expect(summary).toMatchObject({ events: 2, errors: 1 });
  });

  it('a document left open (a missing closing brace) does not swallow the next one', async () => {
    const open = pretty(statusBody('s1')).replace(/\n}$/, '');
    const file = await write('unclosed.json', `${open}\n${pretty(statusBody('s2'))}\n`);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s2']);
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'MALFORMED_LINE',
        message: expect.stringMatching(/^the JSON document at lines 1–\d+ \(one of several in this file\)/),
      }),
    ]);
  });

  it('text after a body is reported with its line; the body is read', async () => {
    const body = pretty(statusBody('s1'));
    const file = await write('trailing.json', `${body}\nthat was the body\n`);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1']);
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'MALFORMED_LINE',
        line: lineCount(body) + 1,
        message: expect.stringContaining(`the JSON document at line ${lineCount(body) + 1}`),
      }),
    ]);
  });

  it('on stdin too', async () => {
    const text = Buffer.from(pretty(statusBody('s1')) + '\n' + pretty(statusBody('s2')));
    const stdin = Readable.from([text.subarray(0, 50), text.subarray(50)]);
    const { events, errors } = await collect(['-'], { stdin });
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['s1', 's2']);
  });
});

describe('a document spread over several lines inside NDJSON', () => {
  it('a pretty-printed webhook body between event lines is read as one document, at its first line', async () => {
    const body = await fixture('meta-docs/status_sent_marketing_pmp_with_conversation.json');
    const file = await write('embedded.ndjson', `${inbound('in1')}\n${body.trimEnd()}\n${delivered('o1')}\n`);
    const { events, errors, summary } = await collect([file]);
    expect(errors).toEqual([]);
    expect(events).toEqual([
      expect.objectContaining({ id: 'in1' }),
      expect.objectContaining({ kind: 'status', status: 'sent', atMs: 1750030073000 }),
      expect.objectContaining({ id: 'o1', status: 'delivered' }),
    ]);
    expect(summary.lines).toBe(lineCount(body.trimEnd()) + 2);
  });

  it('two pretty-printed bodies in a row, CRLF, a blank line inside, and a one-line body after', async () => {
    const a = pretty(statusBody('s1')).replace('"entry": [', '"entry": [\n');
    const lines = [inbound('in1'), a, pretty(statusBody('s2')), JSON.stringify(statusBody('s3'))];
    const file = await write('two-embedded.ndjson', lines.join('\n').replaceAll('\n', '\r\n'));
    const { events, errors } = await collect([file]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['in1', 's1', 's2', 's3']);
  });

  it('a pretty-printed body that does not parse: one error naming its lines and what to do; the rest is read', async () => {
    const file = await write(
      'embedded-broken.ndjson',
      `${inbound('in1')}\n${BROKEN_BODY}\n${inbound('in2')}\n`,
    );
    const { events, errors, summary } = await collect([file]);
    expect(ids(events)).toEqual(['in1', 'in2']);
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file,
        line: 5,
        message:
          'lines 2–7 look like one JSON document spread over several lines (e.g. a pretty-printed webhook body) ' +
          'and it does not parse: Expected double-quoted property name in JSON (line 5, column 17); ' +
          'write it on one line, or put it in its own .json file',
      },
    ]);
    expect(summary).toMatchObject({ lines: 8, events: 2, errors: 1 });
  });

  it('cut lines stay one error each and never swallow the lines after them', async () => {
    const file = await write(
      'cut-lines.ndjson',
      [
        inbound('in1'),
        '{"kind":"status","at":',
        '{"kind":"inbound",',
        inbound('in2'),
        '[1,',
        inbound('in3'),
      ].join('\n'),
    );
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['in1', 'in2', 'in3']);
    expect(errors.map((e) => ['line' in e && e.line, e.message])).toEqual([
      [2, expect.stringMatching(/^line 2 is not valid JSON: Unexpected end of JSON input/)],
      [3, expect.stringMatching(/^line 3 is not valid JSON: /)],
      [5, expect.stringMatching(/^line 5 is not valid JSON: /)],
    ]);
  });

  it('an indented line after a cut line joins it (as inside a pretty-printed body): one error for both', async () => {
    const file = await write(
      'cut-indented.ndjson',
      [inbound('in1'), '{"kind":"status","at":', '  {"kind":"inbound",', inbound('in2')].join('\n'),
    );
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['in1', 'in2']);
    expect(errors).toEqual([
      expect.objectContaining({
        line: 3,
        message: expect.stringMatching(/^lines 2–3 look like one JSON document spread over several lines/),
      }),
    ]);
  });
});

describe('files that are not text', () => {
  const notText = (file: string, evidence: string) => ({
    code: 'UNREADABLE_SOURCE',
    file,
    message: expect.stringMatching(
      new RegExp(
        `^not a text file: its first bytes look binary \\(.*${evidence}.*\\); if it is compressed, decompress it first`,
      ),
    ),
  });

  it('a gzip-compressed NDJSON file named .json is one error, and the next source is still read', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 20_000; i++) lines.push(inbound(`in${i}`, `U${i % 97}`));
    const gzipped = await write('events.json', gzipSync(lines.join('\n')));
    const next = await write('after-gzip.ndjson', inbound('next'));
    const { events, errors, summary } = await collect([gzipped, next]);
    expect(ids(events)).toEqual(['next']);
    expect(errors).toEqual([notText(gzipped, 'gzip signature, NUL bytes, invalid UTF-8')]);
    expect(errors[0]!.message).toContain('(gzip: gunzip -k FILE)');
    expect(summary.files[0]).toEqual({ file: gzipped, lines: 0, events: 0, errors: 1, ignored: 0 });
  });

  it('a compressed event file inside a folder is one error too, never skipped; other files are', async () => {
    const folder = join(dir, 'with-gzip');
    await write('with-gzip/a.ndjson', inbound('a'));
    const gzipped = await write('with-gzip/b.ndjson.gz', gzipSync(inbound('b')));
    await write('with-gzip/notes.txt.gz', gzipSync('not events'));
    await write('with-gzip/readme.txt', 'not events');
    const { events, errors } = await collect([folder]);
    expect(ids(events)).toEqual(['a']);
    expect(errors).toEqual([notText(gzipped, 'gzip signature, NUL bytes, invalid UTF-8')]);
  });

  it('a PNG image, bytes that are not UTF-8, and a NUL-padded file are one error each', async () => {
    const png = await write(
      'image.json',
      Buffer.from('89504e470d0a1a0a0000000d4948445200000010000000100806000000', 'hex'),
    );
    const noise = Buffer.alloc(300);
    for (let i = 0; i < noise.length; i++) noise[i] = 0x80 + ((i * 37) % 0x7f);
    const latin = await write('noise.ndjson', noise);
    const zeros = await write('zeros.ndjson', Buffer.alloc(4096));
    const { events, errors } = await collect([png, latin, zeros]);
    expect(events).toEqual([]);
    expect(errors).toEqual([
      notText(png, 'PNG image signature, NUL bytes'),
      notText(latin, 'invalid UTF-8'),
      notText(zeros, 'NUL bytes'),
    ]);
  });

  it('binary bytes on stdin', async () => {
    const stdin = Readable.from([gzipSync(inbound('in1'))]);
    const { errors } = await collect(['-'], { stdin });
    expect(errors).toEqual([notText(STDIN_NAME, 'gzip signature')]);
  });

  it('UTF-16 text (e.g. written by PowerShell) is refused with how to convert it', async () => {
    const file = await write('utf16.ndjson', Buffer.from(`\uFEFF${inbound('in1')}\n`, 'utf16le'));
    const { events, errors } = await collect([file]);
    expect(events).toEqual([]);
    expect(errors).toEqual([
      {
        code: 'UNREADABLE_SOURCE',
        file,
        message: expect.stringContaining('UTF-16 byte-order mark; convert it to UTF-8 first'),
      },
    ]);
  });

  it('UTF-16 text without a byte-order mark is refused as UTF-16, with the iconv that converts it', async () => {
    const file = await write('utf16le.ndjson', Buffer.from(`${inbound('in1')}\n`, 'utf16le'));
    const { events, errors } = await collect([file]);
    expect(events).toEqual([]);
    expect(errors).toEqual([
      {
        code: 'UNREADABLE_SOURCE',
        file,
        message:
          'not a UTF-8 text file but UTF-16 (little-endian, without a byte-order mark: a NUL byte after each of ' +
          'its first characters), so it cannot be read as written; save the file as UTF-8 (iconv -f UTF-16LE -t ' +
          'UTF-8 FILE)',
      },
    ]);
  });

  it('a few Latin-1 bytes, or NUL bytes late in a text file, do not make it binary: the good lines are read, the bad ones named', async () => {
    const latin1 = Buffer.from(`${inbound('in1', 'Zo\u00eb')}\n${inbound('in2')}\n`, 'latin1');
    const padded = Buffer.concat([
      Buffer.from(`${inbound('in3')}\n`.repeat(8)),
      Buffer.alloc(64),
      Buffer.from('\n'),
    ]);
    const first = await write('latin1.ndjson', latin1);
    const second = await write('nul-tail.ndjson', padded);
    const { events, errors } = await collect([first, second]);
    // The Latin-1 line is no UTF-8: named, never read with U+FFFD in the place of its byte (invalid-utf8.test.ts).
    expect(events).toHaveLength(9);
    expect(errors).toEqual([
      expect.objectContaining({ code: 'MALFORMED_LINE', file: first, line: 1 }),
      expect.objectContaining({ code: 'MALFORMED_LINE', file: second, line: 9 }),
    ]);
  });
});

describe('a broken line costs no line after it (a review: each of these lost the lines after it)', () => {
  it('a truncated line, then lines that start with white space: the truncated one named, the others read', async () => {
    const text = [
      ` ${inbound('a')}`,
      inbound('b').slice(0, -1),
      ` ${inbound('c')}`,
      `\t${outbound('d')}`,
    ].join('\n');
    const file = await write('indented-after-truncated.ndjson', text);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['a', 'c', 'd']);
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'MALFORMED_LINE',
        line: 2,
        message: expect.stringMatching(/^line 2 is not/),
      }),
    ]);
    // As the first line of the file too.
    const first = await write('indented-after-truncated-first.ndjson', text.split('\n').slice(1).join('\n'));
    const again = await collect([first]);
    expect(ids(again.events)).toEqual(['c', 'd']);
    expect(again.errors.map((e) => ['line' in e && e.line, e.code])).toEqual([[1, 'MALFORMED_LINE']]);
  });

  it('a line broken in two, then lines a CR alone ends (files joined with cat): the CR lines are read', async () => {
    const line = inbound('m0');
    const broken = `${line.slice(0, 40)}\n${line.slice(40)}\r${inbound('m1')}\r${delivered('m1')}\r`;
    for (const [name, text, expected] of [
      ['cr-after-broken-first.ndjson', broken, ['m1', 'm1']],
      ['cr-after-broken.ndjson', `${inbound('m9')}\n${broken}`, ['m9', 'm1', 'm1']],
    ] as const) {
      const file = await write(name, text);
      const { events, errors } = await collect([file]);
      expect(ids(events), name).toEqual(expected);
      expect(errors.length, name).toBe(2); // the two halves of the broken line
    }
  });

  it('a broken pretty-printed body holding an empty element on a line of its own is still one error', async () => {
    const body = JSON.stringify({ ...statusBody('s1'), extra: [{}] }, null, 2).replace(
      '"object"',
      '"bad": 1,,\n  "object"',
    );
    const file = await write('pretty-broken-empty.ndjson', `${inbound('a')}\n${body}\n${inbound('b')}\n`);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['a', 'b']);
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'MALFORMED_LINE',
        message: expect.stringMatching(/^lines 2–\d+ look like one JSON document spread over several lines/),
      }),
    ]);
  });

  it('two events on one line (cat of a file whose last line has no line end) are read on any line', async () => {
    const file = await write('two-on-a-line.ndjson', `${inbound('a')}\n${outbound('b')}${delivered('b')}\n`);
    const { events, errors } = await collect([file]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['a', 'b', 'b']);
  });

  it('a NUL byte in the first line of events makes the file no binary: that line named, the others read', async () => {
    const text = Buffer.concat([
      Buffer.from(`${inbound('a')}\n`),
      Buffer.from([0, 0, 0x0a]),
      Buffer.from(`${inbound('b')}\n`),
    ]);
    const file = await write('nul-early.ndjson', text);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['a', 'b']);
    expect(errors).toEqual([expect.objectContaining({ code: 'MALFORMED_LINE', line: 2 })]);
  });
});

describe('empty sources', () => {
  it('an empty file or one of blank lines is named in a note (not an error); nothing else is said', async () => {
    const empty = await write('nothing.ndjson', '');
    const blank = await write('blank.json', '\n  \r\n\t\n');
    const full = await write('something.ndjson', inbound('in1'));
    const { events, errors, ignored, summary } = await collect([empty, blank, full]);
    expect(ids(events)).toEqual(['in1']);
    expect(errors).toEqual([]);
    expect(ignored).toEqual([
      {
        file: empty,
        line: 0,
        count: 0,
        reason: `${EMPTY_SOURCE_REASON} (it has no bytes); check that it is the file you meant`,
      },
      {
        file: blank,
        line: 0,
        count: 0,
        reason: `${EMPTY_SOURCE_REASON} (its 3 line(s) are all blank); check that it is the file you meant`,
      },
    ]);
    expect(summary).toMatchObject({ events: 1, errors: 0, ignored: 0 });
  });

  it('empty stdin, and a file holding only a byte-order mark', async () => {
    const bom = await write('bom-only.json', '\uFEFF');
    const { ignored } = await collect(['-', bom], { stdin: Readable.from([]) });
    expect(ignored.map((note) => [note.file, note.reason.startsWith(EMPTY_SOURCE_REASON)])).toEqual([
      [STDIN_NAME, true],
      [bom, true],
    ]);
  });
});

describe('one bad line never costs a file its good lines', () => {
  const many = (count: number) => Array.from({ length: count }, (_, i) => outbound(`o${i}`));
  const TRAILING_COMMA = outbound('bad').replace(/}$/, ',}');

  it('a broken first line of an NDJSON file larger than the document cap: that line is an error, the rest is read', async () => {
    for (const first of [TRAILING_COMMA, '{"kind":"outbound","at":', '[{"kind":"outbound",']) {
      const text = [first, ...many(300)].join('\n') + '\n';
      expect(text.length).toBeGreaterThan(15 * 2000);
      const file = await write('bad-first-line-large.ndjson', text);
      const { events, errors, summary } = await collect([file], { maxDocumentBytes: 2000 });
      expect(errors, first).toEqual([
        {
          code: 'MALFORMED_LINE',
          file,
          line: 1,
          message: expect.stringMatching(/^line 1 is not valid JSON: /),
        },
      ]);
      expect(ids(events)).toEqual(many(300).map((_, i) => `o${i}`));
      expect(summary).toMatchObject({ lines: 301, events: 300, errors: 1 });
    }
  });

  it('the same on stdin, arriving in small chunks, after a few more bad lines and a byte-order mark', async () => {
    const text = Buffer.from(
      ['\uFEFF' + TRAILING_COMMA, 'oops', '', TRAILING_COMMA, ...many(300)].join('\n'),
      'utf8',
    );
    const chunks: Buffer[] = [];
    for (let at = 0; at < text.length; at += 97) chunks.push(text.subarray(at, at + 97));
    const { events, errors, summary } = await collect(['-'], {
      stdin: Readable.from(chunks),
      maxDocumentBytes: 2000,
    });
    expect(errors.map((e) => ['line' in e && e.line, e.code])).toEqual([
      [1, 'MALFORMED_LINE'],
      [2, 'MALFORMED_LINE'],
      [4, 'MALFORMED_LINE'],
    ]);
    expect(events).toHaveLength(300);
    expect(summary.lines).toBe(304);
  });

  it('a pretty-printed body whose lines are all short is still read as one document', async () => {
    const text = pretty([statusBody('s1'), statusBody('s2')]);
    const file = await write('pretty-array.json', text);
    const { events, errors } = await collect([file], { maxDocumentBytes: 100_000 });
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['s1', 's2']);
  });
});

describe('line ends and byte-order marks', () => {
  it('a byte-order mark at the start of a later line (two files concatenated) is skipped, silently', async () => {
    const file = await write(
      'cat-bom.ndjson',
      `\uFEFF${inbound('in1')}\n\uFEFF${inbound('in2')}\n\uFEFF${pretty(statusBody('s1'))}\n${inbound('in3')}\n`,
    );
    const { events, errors } = await collect([file]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['in1', 'in2', 's1', 'in3']);
  });

  it('CR alone ends lines (old Mac files): a bad line is reported at its own line', async () => {
    const file = await write(
      'cr-only.ndjson',
      [
        inbound('in1'),
        '{"kind":"status","at":',
        inbound('in2'),
        outbound('o9').replace('"utility"', '"x"'),
      ].join('\r'),
    );
    const { events, errors, summary } = await collect([file]);
    expect(ids(events)).toEqual(['in1', 'in2']);
    expect(errors.map((e) => ['line' in e && e.line, e.code])).toEqual([
      [2, 'MALFORMED_LINE'],
      [4, 'BAD_EVENT'],
    ]);
    expect(summary.lines).toBe(4);
  });

  it('CR alone ends lines also when every chunk of a stream ends at a CR (one line written at a time)', async () => {
    const lines = [inbound('in1'), '{"kind":"status","at":', inbound('in2'), inbound('in3')];
    const stdin = Readable.from(lines.map((line) => Buffer.from(`${line}\r`)));
    const { events, errors, summary } = await collect(['-'], { stdin });
    expect(ids(events)).toEqual(['in1', 'in2', 'in3']);
    expect(errors.map((e) => ['line' in e && e.line, e.code])).toEqual([[2, 'MALFORMED_LINE']]);
    expect(summary.lines).toBe(4);
  });

  it('pretty-printed bodies with CR line ends: a broken second body is reported at its line and column', async () => {
    const before = pretty(statusBody('s1'));
    const text = `${before}\n${BROKEN_BODY}\n`.replaceAll('\n', '\r');
    const file = await write('cr-only.json', text);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1']);
    const first = lineCount(before) + 1;
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'MALFORMED_LINE',
        line: first + 3,
        message: expect.stringContaining(`(line ${first + 3}, column 17)`),
      }),
    ]);
  });

  it('a CR-only file joined to an LF one: the lines its lone CRs end are each read, not lost as one', async () => {
    const file = await write(
      'joined.ndjson',
      `${inbound('in1')}\r\n${inbound('in2')}\r${inbound('in3')}\r{oops\n${inbound('in4')}\r${inbound('in5')}\n`,
    );
    const { events, errors } = await collect([file]);
    // A piece that is not JSON is reported on its own; the pieces beside it, whole objects, are read.
    expect(ids(events)).toEqual(['in1', 'in2', 'in3', 'in4', 'in5']);
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'MALFORMED_LINE',
        line: 2,
        message: expect.stringMatching(
          /^line 2 \(part 3 of 3: CR alone ends lines there\) is not valid JSON: /,
        ),
      }),
    ]);
    const clean = await write(
      'joined-clean.ndjson',
      `${inbound('in1')}\n${inbound('in2')}\r${inbound('in3')}\n`,
    );
    const read = await collect([clean]);
    expect(read.errors).toEqual([]);
    expect(ids(read.events)).toEqual(['in1', 'in2', 'in3']);
  });

  it('a document cut short, then a CR-only file (`cat cut.json mac.ndjson`): the CR-only lines are read', async () => {
    const cut = '{\n  "kind": "outbound",\n  "at": "202';
    for (const [name, text, expected] of [
      [
        'cut-then-mac.ndjson',
        `${cut}\r${inbound('in1')}\r${inbound('in2')}\r${inbound('in3')}\r`,
        ['in1', 'in2', 'in3'],
      ],
      [
        'mac-cut-mac.ndjson',
        `${inbound('in1')}\r${cut}\r${inbound('in2')}\r${inbound('in3')}\r`,
        ['in1', 'in2', 'in3'],
      ],
      ['cut-then-one.ndjson', `${cut}\r${inbound('in1')}\r`, ['in1']],
      ['mac-cut-one.ndjson', `${inbound('in1')}\r${cut}\r${inbound('in2')}\r`, ['in1', 'in2']],
      [
        'cut-at-indent.ndjson',
        `{\n  "object": "whatsapp_business_account",\n  "entry": [\n    \r${inbound('in1')}\r`,
        ['in1'],
      ],
      [
        'cut-mac-lf.ndjson',
        `${cut}\r${inbound('in1')}\r${inbound('in2')}\n${inbound('in3')}\n`,
        ['in1', 'in2', 'in3'],
      ],
    ] as const) {
      const { events, errors } = await collect([await write(name, text)]);
      expect(ids(events), name).toEqual(expected);
      // The cut document is named, at its lines.
      expect(errors.length, name).toBeGreaterThan(0);
      expect(
        errors.every((e) => e.code === 'MALFORMED_LINE' && 'line' in e && e.line <= 4),
        name,
      ).toBe(true);
    }
  });

  it('a CR-only file whose broken line holds a line feed (a raw LF in a string): the lines before it are read', async () => {
    // The LF makes the file an LF one: its first line holds in1, in2 and the broken line's start, left open.
    for (const [name, broken] of [
      ['lf-in-string.ndjson', '{"kind":"oo\r\nps"}'],
      ['lf-in-line.ndjson', '{"kind":"status",\n"x":1'],
    ]) {
      const file = await write(name!, `${inbound('in1')}\r${inbound('in2')}\r${broken}\r${inbound('in3')}\r`);
      const { events, errors } = await collect([file]);
      expect(ids(events)).toEqual(['in1', 'in2', 'in3']);
      expect(errors).toEqual([
        expect.objectContaining({
          code: 'MALFORMED_LINE',
          line: 1,
          message: expect.stringMatching(
            /^line 1 \(part 3 of 3: CR alone ends lines there\) is not valid JSON: /,
          ),
        }),
        expect.objectContaining({
          code: 'MALFORMED_LINE',
          line: 2,
          message: expect.stringMatching(
            /^line 2 \(part 1 of 2: CR alone ends lines there\) is not valid JSON: /,
          ),
        }),
      ]);
    }
  });

  it('a broken line of a CR-only file never costs the line its CR joins it to (first line, open brace, bad byte)', async () => {
    // `cat mac.ndjson unix.ndjson`, the broken line the CR-only file's first: the file's first line holds it.
    const cat = await write(
      'cat.ndjson',
      `{"kind":"inbound",\r${inbound('in1')}\r${inbound('in2')}\n${inbound('in3')}\n`,
    );
    const joined = await collect([cat]);
    expect(ids(joined.events)).toEqual(['in1', 'in2', 'in3']);
    expect(joined.errors.map((e) => ['line' in e && e.line, e.code])).toEqual([[1, 'MALFORMED_LINE']]);
    // A broken line that leaves a brace open, then the next line of the other file: not held as a document.
    const open = await write(
      'open.ndjson',
      `${inbound('in1')}\n{"kind":"status","at":\r${inbound('in2')}\n${inbound('in3')}\n`,
    );
    const opened = await collect([open]);
    expect(ids(opened.events)).toEqual(['in1', 'in2', 'in3']);
    expect(opened.errors.map((e) => ['line' in e && e.line, e.code])).toEqual([[2, 'MALFORMED_LINE']]);
    // A line of Latin-1 bytes ending in CR alone, then the LF file's line.
    const latin = Buffer.concat([
      Buffer.from(`${inbound('in1')}\n`),
      Buffer.from(inbound('in2').replace('in2', 'in\u00e9'), 'latin1'),
      Buffer.from(`\r${inbound('in3')}\n`),
    ]);
    const bytes = await collect([await write('latin.ndjson', latin)]);
    expect(ids(bytes.events)).toEqual(['in1', 'in3']);
    expect(bytes.errors).toEqual([
      expect.objectContaining({
        line: 2,
        message: expect.stringContaining(
          'line 2 (part 1 of 2: CR alone ends lines there) holds a byte that is not valid UTF-8',
        ),
      }),
    ]);
    // A CR-only file, then a pretty-printed body (its `{` joined to the CR-only file's last line), or a CR-only
    // array one element per line, then an LF line: read as documents, every event kept, as before.
    const body = await write(
      'cat-body.json',
      `${inbound('in1')}\r${inbound('in2')}\r${pretty(statusBody('s1'))}\n`,
    );
    const bodies = await collect([body]);
    expect(bodies.errors).toEqual([]);
    expect(ids(bodies.events)).toEqual(['in1', 'in2', 's1']);
    const array = await write(
      'cat-array.json',
      `[\r${inbound('in1')},\r${inbound('in2')}\r]\r${inbound('in3')}\n`,
    );
    const elements = await collect([array]);
    expect(elements.errors).toEqual([]);
    expect(ids(elements.events)).toEqual(['in1', 'in2', 'in3']);
    const later = await write(
      'later-array.json',
      `${inbound('in0')}\n[\r${inbound('in1')},\r${inbound('in2')}\r]\r${inbound('in3')}\n`,
    );
    expect(ids((await collect([later])).events)).toEqual(['in0', 'in1', 'in2', 'in3']);
    // A broken line of a CR-only file, then a file that starts with a byte-order mark: its first line is read.
    const bom = await write(
      'cat-bom-cr.ndjson',
      `{"kind":"status","at":\r${inbound('in1')}\r\uFEFF${inbound('in2')}\n`,
    );
    const marked = await collect([bom]);
    expect(ids(marked.events)).toEqual(['in1', 'in2']);
    expect(marked.errors.map((e) => ['line' in e && e.line, e.code])).toEqual([[1, 'MALFORMED_LINE']]);
    // Fragments of one document with CRs between its tokens, none an object on its own: one error, as before.
    const fragments = await write(
      'fragments.ndjson',
      `{"kind":\r"inbound",\r"at": oops}\n${inbound('in1')}\n`,
    );
    const one = await collect([fragments]);
    expect(ids(one.events)).toEqual(['in1']);
    expect(one.errors.map((e) => ['line' in e && e.line, e.code])).toEqual([[1, 'MALFORMED_LINE']]);
  });

  it('a CR inside a valid line is white space between tokens, not a line end', async () => {
    const file = await write('cr-space.ndjson', `${inbound('in1').replace(',', ',\r')}\n${inbound('in2')}\n`);
    const { events, errors } = await collect([file]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['in1', 'in2']);
  });

  it('CRLF split between two stdin chunks is one line end, not two', async () => {
    const stdin = Readable.from([`${inbound('in1')}\r`, `\n${inbound('in2')}\r\n{oops\r\n${inbound('in3')}`]);
    const { events, errors, summary } = await collect(['-'], { stdin });
    expect(ids(events)).toEqual(['in1', 'in2', 'in3']);
    expect(errors.map((e) => 'line' in e && e.line)).toEqual([3]);
    expect(summary.lines).toBe(4);
  });

  // A line longer than a chunk is held in pieces until its end comes (joined once, not at every chunk).
  const inSmallChunks = (text: string, size: number) => {
    const bytes = Buffer.from(text, 'utf8');
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
    return Readable.from(chunks);
  };
  const oneLineArray = (count: number) =>
    JSON.stringify(Array.from({ length: count }, (_, i) => statusBody(`s${i}`)));

  it('a one-line array spanning hundreds of chunks, then more lines, is read whole', async () => {
    const text = `${oneLineArray(40)}\n${inbound('in1')}\n{oops\n${inbound('in2')}`;
    const { events, errors, summary } = await collect(['-'], { stdin: inSmallChunks(text, 13) });
    expect(ids(events)).toEqual([...Array.from({ length: 40 }, (_, i) => `s${i}`), 'in1', 'in2']);
    expect(errors.map((e) => 'line' in e && e.line)).toEqual([3]);
    expect(summary.lines).toBe(4);
  });

  it('CR-only line ends first met after a line of hundreds of chunks (a CR at a chunk end included)', async () => {
    for (const size of [7, 11, 64]) {
      const text = `${oneLineArray(20)}\r${inbound('in1')}\r{oops\r${inbound('in2')}\r`;
      const { events, errors, summary } = await collect(['-'], { stdin: inSmallChunks(text, size) });
      expect(ids(events), `chunks of ${size}`).toEqual([
        ...Array.from({ length: 20 }, (_, i) => `s${i}`),
        'in1',
        'in2',
      ]);
      expect(errors.map((e) => 'line' in e && e.line)).toEqual([3]);
      expect(summary.lines).toBe(4);
    }
  });

  it('in chunks of any size, lines read as the whole file reads them, a document proved NDJSON included', async () => {
    // A line carried from the chunks before is joined to the start of the chunk that ends it, and the rest of
    // that chunk is split where it is: the held first line is proved no document at either (a replay).
    const broken = outbound('bad').replace(/}$/, ',}');
    const lines = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => outbound(`o${from + i}`));
    const text = [broken, 'oops', '', ...lines(0, 6), broken, ...lines(6, 3)].join('\r\n') + '\r\n';
    const whole = await collect([await write('carried-lines.ndjson', text)]);
    expect(ids(whole.events)).toEqual(Array.from({ length: 9 }, (_, i) => `o${i}`));
    const said = (errors: SourceError[]) => errors.map((e) => ['line' in e && e.line, e.code, e.message]);
    expect(said(whole.errors).map(([line]) => line)).toEqual([1, 2, 10]);
    for (let size = 1; size <= 160; size++) {
      const { events, errors, summary } = await collect(['-'], { stdin: inSmallChunks(text, size) });
      expect(events, `chunks of ${size}`).toEqual(whole.events);
      expect(said(errors), `chunks of ${size}`).toEqual(said(whole.errors));
      expect(summary.lines, `chunks of ${size}`).toBe(whole.summary.lines);
    }
  });

  it('a line longer than the document limit, arriving in pieces, is refused as too large', async () => {
    const text = `${inbound('in1')}\n${oneLineArray(40)}\n${inbound('in2')}\n`;
    const { events, errors } = await collect(['-'], {
      stdin: inSmallChunks(text, 50),
      maxDocumentBytes: 2000,
    });
    expect(ids(events)).toEqual(['in1']);
    expect(errors).toEqual([expect.objectContaining({ code: 'DOCUMENT_TOO_LARGE' })]);
  });
});

describe('an array written one element per line', () => {
  const element = (id: string) => JSON.stringify(statusBody(id));

  it('one broken element is one error at its line; the other elements are read', async () => {
    const broken = element('s3').replace('"status":"sent"', '"status":"sent",,');
    const text = ['[', `${element('s1')},`, `${element('s2')},`, `${broken},`, element('s4'), ']'].join('\n');
    const file = await write('array-lines.json', text + '\n');
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1', 's2', 's4']);
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file,
        line: 4,
        message: expect.stringMatching(
          /^line 4 \(element 2 of the array at lines 1–6\) is not valid JSON: .* \(column \d+\); the other elements were read$/,
        ),
      },
    ]);
  });

  it('a missing or extra comma between elements is named; the elements are read', async () => {
    const text = ['[', element('s1'), `${element('s2')},`, `${element('s3')},`, ']'].join('\n');
    const file = await write('array-commas.json', text);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1', 's2', 's3']);
    expect(errors.map((e) => ['line' in e && e.line, e.message])).toEqual([
      [2, expect.stringContaining('a comma is missing after the array element on line 2')],
      [4, expect.stringContaining('a comma after the last element of the array')],
    ]);
  });

  it('a valid array written that way is one document, with no error', async () => {
    const text = ['[', `${element('s1')},`, element('s2'), ']'].join('\n');
    const { events, errors } = await collect([await write('array-ok.json', text)]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['s1', 's2']);
  });

  // JSON.stringify's arrays cut after each comma, jq's, a log written so: `[` and `]` beside the elements.
  it('its "[" and "]" beside the first and last elements: a broken element is one error, the rest read', async () => {
    const broken = element('s3').replace('"status":"sent"', '"status":"sent",,');
    for (const [name, text, line] of [
      ['middle', [`[${element('s1')},`, ` ${element('s2')},`, ` ${broken},`, ` ${element('s4')}]`], 3],
      ['last', [`[${element('s1')},`, `${element('s2')},`, `${broken}]`], 3],
      ['first', [`[ ${broken},`, element('s2'), ']'], 1],
    ] as const) {
      const file = await write(`array-beside-${name}.json`, text.join('\n'));
      const { events, errors } = await collect([file]);
      const all = ['s1', 's2', 's3', 's4'].filter((id) => text.join('').includes(`"${id}"`));
      expect(ids(events), name).toEqual(all.filter((id) => id !== 's3'));
      expect(errors, name).toEqual([
        expect.objectContaining({
          code: 'MALFORMED_LINE',
          line,
          message: expect.stringMatching(
            new RegExp(
              `^line ${line} \\(element \\d of the array at lines 1–${text.length}\\) is not valid JSON: .*; the other elements were read$`,
            ),
          ),
        }),
      ]);
    }
  });

  it('never closed, its "[" beside the first element: every element read, one error at the "["', async () => {
    const text = [`[${element('s1')},`, `${element('s2')},`, element('s3')].join('\n');
    const { events, errors } = await collect([await write('array-beside-open.json', text)]);
    expect(ids(events)).toEqual(['s1', 's2', 's3']);
    expect(errors.map((e) => ['line' in e && e.line, e.message])).toEqual([
      [
        1,
        expect.stringContaining(
          'opens an array, one element a line, that no "]" line closes; its elements (lines 1–3) were read',
        ),
      ],
    ]);
  });
});

describe('a whole file that is one pretty-printed array, broken', () => {
  const body = (id: string) => JSON.stringify(statusBody(id), null, 2).replaceAll('\n', '\n  ');
  const array = (elements: string[], separator = ',\n  ') => `[\n  ${elements.join(separator)}\n]\n`;

  it('a broken element is one error at its line and column; the other elements are read', async () => {
    const broken = body('s2').replace('"status": "sent"', '"status": "sent",,');
    const text = array([body('s1'), broken, body('s3')]);
    const { events, errors } = await collect([await write('pretty-array-broken.json', text)]);
    expect(ids(events)).toEqual(['s1', 's3']);
    const brokenLine = text.split('\n').findIndex((line) => line.includes(',,')) + 1;
    const firstLine = text.split('\n').findIndex((line, i) => i > 1 && line === '  {') + 1;
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file: expect.any(String),
        line: brokenLine,
        message: expect.stringMatching(
          new RegExp(
            `^element 1 of the array at lines 1–${text.split('\n').length - 1}, from line ${firstLine}, is not valid JSON: .* \\(line ${brokenLine}, column \\d+\\); the other elements were read$`,
          ),
        ),
      },
    ]);
  });

  it('a missing comma between elements is named; every element is read', async () => {
    const text = array([body('s1'), body('s2')], '\n  ');
    const { events, errors } = await collect([await write('pretty-array-comma.json', text)]);
    expect(ids(events)).toEqual(['s1', 's2']);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(
        /^element 0 of the array at lines .*: a comma is missing after it; the element was read$/,
      ),
    ]);
  });

  it('a pretty-printed array that parses is read as before, with no error', async () => {
    const { events, errors } = await collect([
      await write('pretty-array-ok.json', array([body('s1'), body('s2')])),
    ]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['s1', 's2']);
  });
});

describe('an array written one element per line after NDJSON lines (elements in column 1)', () => {
  const element = (id: string) => JSON.stringify(statusBody(id));

  it('after a one-line array: every element of both arrays is read, with no error', async () => {
    const text = [`[${element('s1')},${element('s2')}]`, '[', `${element('s3')},`, element('s4'), ']'].join(
      '\n',
    );
    const { events, errors } = await collect([await write('arrays-one-then-lines.ndjson', text + '\n')]);
    expect(errors).toEqual([]);
    expect(ids(events)).toEqual(['s1', 's2', 's3', 's4']);
  });

  it('one broken element (brackets left unbalanced) is one error at its line; the rest is read', async () => {
    const broken = element('s3').replace('"status":"sent"', 'status":"sent"');
    const text = [
      element('s1'),
      '[',
      `${element('s2')},`,
      '  ',
      `${broken},`,
      element('s4'),
      ']',
      element('s5'),
    ].join('\n');
    const file = await write('array-lines-after-ndjson.ndjson', text);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1', 's2', 's4', 's5']);
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file,
        line: 5,
        message: expect.stringMatching(
          /^line 5 \(element 1 of the array at lines 2–7\) is not valid JSON: .*; the other elements were read$/,
        ),
      },
    ]);
  });

  it('a comma missing between elements is named; every element is read', async () => {
    const text = [element('s1'), '[', element('s2'), `${element('s3')},`, element('s4'), ']'].join('\n');
    const file = await write('array-missing-comma-after-ndjson.ndjson', text);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1', 's2', 's3', 's4']);
    expect(errors.map((e) => ['line' in e && e.line, e.message])).toEqual([
      [3, expect.stringContaining('a comma is missing after the array element on line 3')],
    ]);
  });

  it('a stray "[" line before NDJSON lines costs only itself', async () => {
    const text = [element('s1'), '[', element('s2'), element('s3'), element('s4')].join('\n');
    const file = await write('stray-bracket.ndjson', text);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1', 's2', 's3', 's4']);
    expect(errors.map((e) => ['line' in e && e.line, e.code])).toEqual([[2, 'MALFORMED_LINE']]);
  });

  it('an array never closed: its "[" is the one error, every element is read', async () => {
    const text = [element('s1'), '[', `${element('s2')},`, `${element('s3')},`].join('\n');
    const file = await write('array-open.ndjson', text);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1', 's2', 's3']);
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file,
        line: 2,
        message:
          'line 2 opens an array, one element a line, that no "]" line closes; its elements (lines 3–4) were read: add the "]"',
      },
    ]);
  });

  it('an array never closed, then a line that is no element of it: its "[" named, its elements and that line read', async () => {
    for (const after of [inbound('in1'), 'garbage']) {
      const text = [element('s1'), '[', `${element('s2')},`, element('s3'), after, element('s4')].join('\n');
      const file = await write('array-open-then-line.ndjson', text);
      const { events, errors } = await collect([file]);
      expect(ids(events)).toEqual(['s1', 's2', 's3', ...(after === 'garbage' ? [] : ['in1']), 's4']);
      expect(errors.map((e) => ['line' in e && e.line, e.message])).toEqual([
        [
          2,
          'line 2 opens an array, one element a line, that no "]" line closes; its elements (lines 3–4) were read: add the "]"',
        ],
        ...(after === 'garbage' ? [[5, expect.stringMatching(/^line 5 is not valid JSON/)]] : []),
      ]);
    }
  });

  it('a broken element that closes more brackets than it opens costs only its line', async () => {
    const text = [
      element('s1'),
      '[',
      `${element('s2')}},`,
      `${element('s3')},`,
      element('s4'),
      ']',
      element('s5'),
    ];
    const file = await write('array-element-closes-more.ndjson', text.join('\n'));
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1', 's3', 's4', 's5']);
    expect(errors.map((e) => ['line' in e && e.line, e.message])).toEqual([
      [3, expect.stringMatching(/^line 3 \(element 0 of the array at lines 2–6\) is not valid JSON/)],
    ]);
  });
});

describe('an array written one element per line among other documents of a file that starts one', () => {
  const element = (id: string) => JSON.stringify(statusBody(id));
  const array = ['[', `${element('s1')},`, '{bad},', `${element('s2')},`, element('s3'), ']'];
  const brokenAt = (errors: SourceError[]) => errors.map((e) => ['line' in e && e.line, e.message]);
  const elementError = (line: number, lines: string) =>
    expect.stringMatching(
      new RegExp(
        `^line ${line} \\(element 1 of the array at lines ${lines}\\) is not valid JSON: .*; the other elements were read$`,
      ),
    );

  it('then an NDJSON line: the broken element is the one error, every other element read', async () => {
    const text = [...array, inbound('in1')].join('\n');
    const { events, errors } = await collect([await write('array-then-line.ndjson', text + '\n')]);
    expect(ids(events)).toEqual(['s1', 's2', 's3', 'in1']);
    expect(brokenAt(errors)).toEqual([[3, elementError(3, '1–6')]]);
  });

  it('then a pretty-printed body, or after one: the broken element is the one error', async () => {
    const after = [...array, pretty(statusBody('s4'))].join('\n');
    const one = await collect([await write('array-then-body.json', after + '\n')]);
    expect(ids(one.events)).toEqual(['s1', 's2', 's3', 's4']);
    expect(brokenAt(one.errors)).toEqual([[3, elementError(3, '1–6')]]);
    const body = pretty(statusBody('s0'));
    const before = [body, ...array].join('\n');
    const two = await collect([await write('body-then-array.json', before + '\n')]);
    const first = body.split('\n').length + 1;
    expect(ids(two.events)).toEqual(['s0', 's1', 's2', 's3']);
    expect(brokenAt(two.errors)).toEqual([[first + 2, elementError(first + 2, `${first}–${first + 5}`)]]);
  });

  it('never closed, then a pretty-printed body: its "[" and the broken element named, the body read', async () => {
    const text = ['[', `${element('s1')},`, '{bad},', `${element('s2')},`, pretty(statusBody('s3'))].join(
      '\n',
    );
    const { events, errors } = await collect([await write('array-open-then-body.json', text + '\n')]);
    expect(ids(events)).toEqual(['s1', 's2', 's3']);
    expect(brokenAt(errors)).toEqual([
      [
        1,
        expect.stringMatching(
          /^line 1 opens an array, one element a line, that no "]" line closes; its elements \(lines 2–4\)/,
        ),
      ],
      [3, expect.stringMatching(/^line 3 \(element 1 of the array opened at line 1\) is not valid JSON/)],
    ]);
  });

  it('a pretty-printed array of arrays of one-line elements, after a line or a broken document, is read as before', async () => {
    const nested = [
      '[',
      '  [',
      `    ${element('s1')},`,
      `    ${element('s2')}`,
      '  ],',
      '  [',
      `    ${element('s3')}`,
      '  ]',
      ']',
    ];
    for (const first of [inbound('in1'), '{broken']) {
      const { errors } = await collect([await write('nested-arrays.ndjson', [first, ...nested].join('\n'))]);
      expect(errors.map((e) => e.code)).toEqual([
        ...(first === '{broken' ? ['MALFORMED_LINE'] : []),
        'BAD_EVENT',
        'BAD_EVENT',
      ]);
      expect(errors.filter((e) => e.code === 'BAD_EVENT').map((e) => e.message)).toEqual([
        expect.stringMatching(/\[0\]: expected an event line .* not an array$/),
        expect.stringMatching(/\[1\]: expected an event line .* not an array$/),
      ]);
    }
  });

  it('never closed: its "[" is the one error, every element read, with or without a last comma', async () => {
    for (const last of [element('s3'), `${element('s3')},`]) {
      const text = ['[', `${element('s1')},`, `${element('s2')},`, last].join('\n');
      const file = await write('array-open-first.ndjson', text + '\n');
      const { events, errors } = await collect([file]);
      expect(ids(events)).toEqual(['s1', 's2', 's3']);
      expect(errors).toEqual([
        {
          code: 'MALFORMED_LINE',
          file,
          line: 1,
          message:
            'line 1 opens an array, one element a line, that no "]" line closes; its elements (lines 2–4) were read: add the "]"',
        },
      ]);
    }
  });
});

describe('an error inside a body spread over several lines names the line of the field at fault', () => {
  /** The 1-based line of `text` where `needle` first occurs after `from` (a string, searched for as written). */
  const lineOf = (text: string, needle: string, from = 0) =>
    text.slice(0, text.indexOf(needle, from)).split('\n').length;

  it('two bodies joined with cat: the line of the second body’s bad "timestamp", not the body’s first line', async () => {
    const text =
      (await fixture('pywa/status_sent.json')) +
      (await fixture('meta-docs/incoming_text_ctwa_referral_with_ref_placeholders.json'));
    const file = await write('cat-two.json', text);
    const { errors } = await collect([file]);
    expect(errors).toEqual([
      {
        code: 'BAD_EVENT',
        file,
        line: lineOf(text, '"timestamp": "TIMESTAMP"'),
        message: expect.stringMatching(
          /^entry\[0\]\.changes\[0\]\.value\.messages\[0\] "timestamp": "TIMESTAMP" is not an instant/,
        ),
      },
    ]);
    expect(lineOf(text, '"timestamp": "TIMESTAMP"')).toBeGreaterThan(lineOf(text, '"object"', 10));
  });

  it('a file that is one pretty-printed body: the line of the field', async () => {
    const text = await fixture('meta-docs/incoming_text_ctwa_referral_with_ref_placeholders.json');
    const file = await write('one-body.json', text);
    const { errors } = await collect([file]);
    expect(errors).toEqual([expect.objectContaining({ line: lineOf(text, '"TIMESTAMP"') })]);
    expect(errors[0]!.message).not.toContain('starting at line');
  });

  it('a missing field is named at the line of the object that lacks it; each error at its own line', async () => {
    const noId = { status: 'sent', timestamp: '1750030073', recipient_id: 'U1' };
    const text = pretty(statusBody('s1', [sentStatus('s1'), noId, sentStatus('s3', 'soon')]));
    const file = await write('two-bad.json', text);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1']);
    const statusLines = text.split('\n').flatMap((line, i) => (line.trim() === '{' ? [i + 1] : []));
    expect(errors).toEqual([
      expect.objectContaining({
        line: statusLines.at(-2),
        message: expect.stringMatching(/^entry\[0\]\.changes\[0\]\.value\.statuses\[1\] needs "id"/),
      }),
      expect.objectContaining({
        line: lineOf(text, '"soon"'),
        message: expect.stringMatching(/^entry\[0\]\.changes\[0\]\.value\.statuses\[2\] "timestamp": "soon"/),
      }),
    ]);
  });

  it('an element of a pretty-printed array of bodies and event lines: the line in that element', async () => {
    const text = pretty([statusBody('s1'), statusBody('s2', [sentStatus('s2', 'later')]), { kind: 'nope' }]);
    const file = await write('array-bad.json', text);
    const { errors } = await collect([file]);
    expect(errors).toEqual([
      expect.objectContaining({
        line: lineOf(text, '"later"'),
        message: expect.stringContaining('the document[1]: entry[0]'),
      }),
      expect.objectContaining({
        line: lineOf(text, '"kind": "nope"'),
        message: expect.stringContaining('the document[2]: "kind"'),
      }),
    ]);
  });

  it('a pretty-printed body among NDJSON lines: the line of the field, counted in the file', async () => {
    const body = pretty(statusBody('s1', [sentStatus('s1', 'later')]));
    const text = `${inbound('in1')}\n${inbound('in2')}\n${body}\n${inbound('in3')}\n`;
    const file = await write('embedded-bad.ndjson', text);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['in1', 'in2', 'in3']);
    expect(errors).toEqual([expect.objectContaining({ code: 'BAD_EVENT', line: lineOf(text, '"later"') })]);
  });

  it("the entry of an item (its WABA id) and the change's metadata are named where they are written", async () => {
    const change = (phoneNumberId: unknown, id: string) => ({
      field: 'messages',
      value: { metadata: { phone_number_id: phoneNumberId }, statuses: [sentStatus(id)] },
    });
    const body = {
      object: 'whatsapp_business_account',
      entry: [
        { id: 'W1', changes: [change('PN1', 's1')] },
        { changes: [change('PN1', 's2')] },
        { id: 'W3', changes: [change(7, 's3')] },
      ],
    };
    const text = pretty(body);
    const file = await write('envelope-bad.json', text);
    const { events, errors } = await collect([file]);
    expect(ids(events)).toEqual(['s1']);
    // entry[1] starts on the line after the one closing entry[0] ("    },").
    const entryLines = text.split('\n').flatMap((line, i) => (line === '    {' ? [i + 1] : []));
    expect(errors).toEqual([
      expect.objectContaining({
        line: entryLines[1],
        message: expect.stringMatching(
          /^entry\[1\]\.changes\[0\]\.value\.statuses\[0\]: its entry needs "id"/,
        ),
      }),
      expect.objectContaining({
        line: lineOf(text, '"phone_number_id": 7'),
        message: expect.stringMatching(/: its value's "metadata\.phone_number_id" must be/),
      }),
    ]);
  });

  it('of a key written twice, the one JSON.parse keeps', async () => {
    const text = pretty(statusBody('s1')).replace(
      '"timestamp": "1750030073"',
      '"timestamp": "1750030073",\n"timestamp": "soon"',
    );
    const file = await write('twice.json', text);
    const { errors } = await collect([file]);
    expect(errors).toEqual([expect.objectContaining({ line: lineOf(text, '"soon"') })]);
  });

  it('a field that cannot be placed is named at the body’s first line, saying so', async () => {
    const message = { id: 'in1', timestamp: '1750030073', type: 'text', from_user_id: 'US.1' };
    const body = messagesWebhook('W1', {
      metadata: { phone_number_id: 'PN1' },
      contacts: [{ user_id: 'US.1', wa_id: 'x\u0000' }],
      messages: [message],
    });
    const text = `${inbound('in0')}\n${pretty(body)}\n`;
    const file = await write('unplaced.ndjson', text);
    const { errors } = await collect([file]);
    expect(errors).toEqual([
      expect.objectContaining({
        line: 2,
        message: expect.stringMatching(
          /"contacts\[\]\.wa_id" holds a NUL .* \(in the JSON document starting at line 2\)$/,
        ),
      }),
    ]);
  });

  it('a body on one line keeps its line and its message as they were', async () => {
    const file = await write(
      'one-line.ndjson',
      `${inbound('in1')}\n${JSON.stringify(statusBody('s1', [sentStatus('s1', 'later')]))}\n`,
    );
    const { errors } = await collect([file]);
    expect(errors).toEqual([
      expect.objectContaining({ line: 2, message: expect.not.stringContaining('starting at line') }),
    ]);
  });
});
