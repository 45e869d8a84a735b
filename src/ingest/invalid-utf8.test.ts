// Bytes that are not UTF-8 in event sources: each line or document holding one is named (file:line, column)
// and skipped, never read with U+FFFD in the bad byte's place (two ids differing only there would be one id).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { messagesWebhook } from '../../test/support/webhook-body.js';
import type { CoreEvent } from '../core/events.js';
import {
  READ_CHUNK_BYTES,
  readEventSources,
  STDIN_NAME,
  type ReadOptions,
  type ReadSummary,
  type SourceError,
} from './read-events.js';

async function collect(
  sources: string[],
  options?: ReadOptions,
): Promise<{ events: CoreEvent[]; errors: SourceError[]; summary: ReadSummary }> {
  const events: CoreEvent[] = [];
  const errors: SourceError[] = [];
  const summary = await readEventSources(
    sources,
    { onEvents: (batch) => events.push(...batch), onError: (error) => errors.push(error) },
    options,
  );
  return { events, errors, summary };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wameter-invalid-utf8-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, content: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

const ids = (events: CoreEvent[]) => events.map((event) => ('id' in event ? event.id : event.kind));

const inbound = (id: string, user = 'U1') =>
  JSON.stringify({ kind: 'inbound', at: '2024-03-01T10:00:00Z', waba: 'W1', business: 'PN1', user, id });
/** The reviewer's line: a marketing template delivered to an Indian number (priced without an accounts file). */
const outbound = (id: string) =>
  JSON.stringify({
    kind: 'outbound',
    at: '2025-08-01T10:00:00Z',
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    id,
    template: 'marketing',
    delivered_at: '2025-08-01T10:00:05Z',
  });
const statusBody = (id: string) =>
  messagesWebhook('W1', {
    metadata: { phone_number_id: 'PN1' },
    statuses: [{ id, status: 'sent', timestamp: '1750030073', recipient_id: 'U1' }],
  });
const pretty = (value: unknown) => JSON.stringify(value, null, 2);
/** A status webhook body, pretty-printed (26 lines). */
const body = (id: string) => pretty(statusBody(id));

/** 0xE9: `é` in Latin-1, the usual stray byte of a file exported in another encoding. */
const LATIN1_E_ACUTE = [0xe9];

/**
 * `text` as UTF-8 bytes with its one `@` replaced by `raw`, and where `@` was: its line (1-based) and the
 * column an error names (counted as the text's characters, as in every other error of the reader).
 */
function withBytes(text: string, raw: number[]): { bytes: Buffer; line: number; column: number } {
  const at = text.indexOf('@');
  if (at === -1 || text.indexOf('@', at + 1) !== -1) throw new Error('the text needs exactly one @');
  const before = text.slice(0, at);
  const lineStart = Math.max(before.lastIndexOf('\n'), before.lastIndexOf('\r')) + 1;
  return {
    bytes: Buffer.concat([Buffer.from(before), Buffer.from(raw), Buffer.from(text.slice(at + 1))]),
    line: before.split(/\r\n|\r|\n/).length,
    column: at - lineStart + 1,
  };
}

/** `a byte that is not valid UTF-8 (WHERE)`, or `N bytes that are … (the first at WHERE)`. */
const badBytes = (count: number, where: string) =>
  count === 1
    ? `a byte that is not valid UTF-8 (${where})`
    : `${count} bytes that are not valid UTF-8 (the first at ${where})`;

const lineError = (file: string, line: number, column: number, count = 1) => ({
  code: 'MALFORMED_LINE',
  file,
  line,
  message:
    `line ${line} holds ${badBytes(count, `column ${column}`)}, so its ids cannot be read as written; ` +
    `save the file as UTF-8, or fix or remove that line`,
});

describe('a line holding bytes that are not UTF-8', () => {
  it('is named as file:line with its column and skipped; the lines around it are read', async () => {
    const bad = withBytes(outbound('wamid.caf@'), LATIN1_E_ACUTE);
    const file = await write(
      'bad-id.ndjson',
      Buffer.concat([Buffer.from(`${inbound('in1')}\n`), bad.bytes, Buffer.from(`\n${inbound('in3')}\n`)]),
    );
    const { events, errors, summary } = await collect([file]);
    expect(errors).toEqual([lineError(file, 2, bad.column)]);
    expect(ids(events)).toEqual(['in1', 'in3']);
    expect(summary).toMatchObject({ lines: 3, events: 2, errors: 1 });
  });

  it('two messages whose ids differ only in a bad byte are not merged: `rate` names both lines and exits 2', async () => {
    const e9 = withBytes(outbound('wamid.caf@'), [0xe9]);
    const e8 = withBytes(outbound('wamid.caf@'), [0xe8]);
    const file = await write(
      'two-bad-ids.ndjson',
      Buffer.concat([e9.bytes, Buffer.from('\n'), e8.bytes, Buffer.from(`\n${outbound('wamid.ok')}\n`)]),
    );
    const { code, out, err } = await runWameter(['rate', file, '--format', 'json']);
    expect(code).toBe(2);
    expect(err).toContain(
      `${file}:1: MALFORMED_LINE: line 1 holds a byte that is not valid UTF-8 (column ${e9.column})`,
    );
    expect(err).toContain(
      `${file}:2: MALFORMED_LINE: line 2 holds a byte that is not valid UTF-8 (column ${e8.column})`,
    );
    const units = (JSON.parse(out) as { units: Array<{ messages: string[] }> }).units;
    expect(units.map((unit) => unit.messages)).toEqual([['wamid.ok']]);
  });

  it('a Latin-1 file: each line with an accented byte is named, the others are read', async () => {
    const latin1 = Buffer.from(`${inbound('in1', 'Zo\u00eb')}\n${inbound('in2')}\n`, 'latin1');
    const file = await write('latin1.ndjson', latin1);
    const { events, errors } = await collect([file]);
    expect(errors).toEqual([lineError(file, 1, inbound('in1', 'Zo\u00eb').indexOf('\u00eb') + 1)]);
    expect(ids(events)).toEqual(['in2']);
  });

  it('several bad bytes in one line are one error, counted, at the first', async () => {
    // A surrogate written as UTF-8 (ED A0 80) and an overlong slash (C0 AF): 5 bytes, none of them UTF-8.
    const bad = withBytes(inbound('in@', 'U1'), [0xed, 0xa0, 0x80, 0xc0, 0xaf]);
    const file = await write(
      'many-bad.ndjson',
      Buffer.concat([bad.bytes, Buffer.from(`\n${inbound('in2')}`)]),
    );
    const { events, errors } = await collect([file]);
    expect(errors).toEqual([lineError(file, 1, bad.column, 5)]);
    expect(ids(events)).toEqual(['in2']);
  });

  it('a character cut by the end of the file (a file cut while written) is reported, not read as U+FFFD', async () => {
    // The last line ends inside `ë` (C3 of C3 AB): no line end, no more bytes.
    const cut = Buffer.from(`${inbound('in1')}\n{"kind":"inbound","user":"Zo`);
    const file = await write('cut-at-end.ndjson', Buffer.concat([cut, Buffer.from([0xc3])]));
    const { events, errors } = await collect([file]);
    expect(errors).toEqual([lineError(file, 2, '{"kind":"inbound","user":"Zo'.length + 1)]);
    expect(ids(events)).toEqual(['in1']);
  });

  it('a genuine U+FFFD (valid bytes) is read as it is, also beside a bad byte; so is a U+FFFF', async () => {
    const clean = await write(
      'genuine.ndjson',
      Buffer.from(`${inbound('wamid.caf\ufffd')}\n${inbound('wamid.caf\uffff')}\n`),
    );
    const bad = withBytes(inbound('wamid.caf@'), LATIN1_E_ACUTE);
    const mixed = await write(
      'genuine-and-bad.ndjson',
      Buffer.concat([
        Buffer.from(`${inbound('in1 \ufffd')}\n`),
        bad.bytes,
        Buffer.from(`\n${inbound('in3 \ufffd \uffff')}\n`),
      ]),
    );
    const { events, errors } = await collect([clean, mixed]);
    expect(errors).toEqual([lineError(mixed, 2, bad.column)]);
    // A genuine U+FFFF in the chunk of a bad byte too (the mark is a lone surrogate, which no UTF-8 decodes to).
    expect(ids(events)).toEqual(['wamid.caf\ufffd', 'wamid.caf\uffff', 'in1 \ufffd', 'in3 \ufffd \uffff']);
  });

  it('line ends CRLF or CR alone, and a byte-order mark, keep lines and columns right', async () => {
    for (const end of ['\r\n', '\r']) {
      const bad = withBytes(`${inbound('in1')}${end}${inbound('in@')}${end}${inbound('in3')}${end}`, [0xff]);
      const file = await write('line-ends.ndjson', Buffer.concat([Buffer.from('\ufeff'), bad.bytes]));
      const { events, errors } = await collect([file]);
      expect(bad.line).toBe(2);
      expect(errors, JSON.stringify(end)).toEqual([lineError(file, 2, bad.column)]);
      expect(ids(events)).toEqual(['in1', 'in3']);
    }
    const first = withBytes(`\ufeff${inbound('in@')}\r\n${inbound('in2')}\r\n`, LATIN1_E_ACUTE);
    const file = await write('bad-first-line.ndjson', first.bytes);
    const { events, errors } = await collect([file]);
    // Columns as an editor shows them: the byte-order mark is not one.
    expect(errors).toEqual([lineError(file, 1, first.column - 1)]);
    expect(ids(events)).toEqual(['in2']);
  });
});

describe('bytes that are not UTF-8 where a read chunk ends', () => {
  /**
   * A file whose byte `READ_CHUNK_BYTES - k` starts the `@` of `line` (given as its bytes), so that the first
   * read chunk ends k bytes into what replaces `@`: a filler line padded with spaces, `line`, one more line.
   */
  function straddling(line: { bytes: Buffer; at: number }, k: number): Buffer {
    const fillerLength = READ_CHUNK_BYTES - k - line.at;
    const filler = Buffer.from(`${inbound('filler').padEnd(fillerLength - 1)}\n`);
    return Buffer.concat([filler, line.bytes, Buffer.from(`\n${inbound('after')}\n`)]);
  }
  const lineWith = (template: string, raw: Buffer) => {
    const at = Buffer.from(template.slice(0, template.indexOf('@'))).length;
    return {
      bytes: Buffer.concat([Buffer.from(template.slice(0, at)), raw, Buffer.from(template.slice(at + 1))]),
      at,
    };
  };

  it('a valid character cut by the end of a chunk is read whole, wherever the cut falls in it', async () => {
    for (const character of ['\u00eb', '\u20ac', '\u{1f600}']) {
      const encoded = Buffer.from(character);
      for (let k = 1; k < encoded.length; k++) {
        const file = await write('split-char.ndjson', straddling(lineWith(inbound('in', 'Zo@'), encoded), k));
        const { events, errors } = await collect([file]);
        expect(errors, `${character} cut after ${k} byte(s)`).toEqual([]);
        expect(events.map((event) => 'user' in event && event.user)).toEqual(['U1', `Zo${character}`, 'U1']);
      }
    }
  });

  it('a bad byte ending a chunk, and a character cut there and never finished, are reported', async () => {
    const cases = [
      { raw: [0xe9], k: 1 }, // Latin-1 é, the chunk's last byte
      { raw: [0xe2, 0x82], k: 2 }, // € without its last byte, cut by the chunk's end
      { raw: [0xf0, 0x9f, 0x98], k: 1 }, // 😀 without its last byte, the cut after its first byte
    ];
    for (const { raw, k } of cases) {
      const template = inbound('in', 'Zo@');
      const file = await write(
        'bad-at-chunk-end.ndjson',
        straddling(lineWith(template, Buffer.from(raw)), k),
      );
      const { events, errors } = await collect([file]);
      expect(errors, raw.join(' ')).toEqual([lineError(file, 2, template.indexOf('@') + 1, raw.length)]);
      expect(ids(events)).toEqual(['filler', 'after']);
    }
  });

  it('a line several chunks long is read whole, or named once for a bad byte deep inside it', async () => {
    // Characters of 2, 3 and 4 bytes, so that chunk ends fall inside them at every offset.
    const note = '\u00e9\u20ac\u{1f600}'.repeat(30_000);
    const long = (id: string, text: string) => `{"kind":"inbound","note":"${text}",${inbound(id).slice(1)}`;
    const valid = Buffer.from(`${long('long', note)}\n${inbound('after')}\n`);
    expect(valid.length).toBeGreaterThan(4 * READ_CHUNK_BYTES);
    const file = await write('long-line.ndjson', valid);
    const read = await collect([file]);
    expect(read.errors).toEqual([]);
    expect(ids(read.events)).toEqual(['long', 'after']);

    const half = note.slice(0, 60_001);
    const bad = withBytes(
      `${inbound('before')}\n${long('long', `${half}@${note}`)}\n${inbound('after')}\n`,
      [0x80],
    );
    const badFile = await write('long-line-bad.ndjson', bad.bytes);
    const { events, errors } = await collect([badFile]);
    expect(errors).toEqual([lineError(badFile, 2, bad.column)]);
    expect(ids(events)).toEqual(['before', 'after']);
  });
});

describe('bytes that are not UTF-8 in a webhook body written over several lines', () => {
  it('a .json file of one body: named at the bad byte, with its line and column; nothing read', async () => {
    const bad = withBytes(body('wamid.caf@'), LATIN1_E_ACUTE);
    const file = await write('body.json', bad.bytes);
    const { events, errors } = await collect([file]);
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file,
        line: bad.line,
        message:
          `the file is one JSON document that holds a byte that is not valid UTF-8 (line ${bad.line}, column ` +
          `${bad.column}), so its ids cannot be read as written; save the file as UTF-8`,
      },
    ]);
    expect(events).toEqual([]);
  });

  it('bodies one after the other (cat a.json b.json): only the one with the bad byte is named', async () => {
    const bad = withBytes(`${body('s1')}\n${body('wamid.caf@')}\n${body('s3')}\n`, LATIN1_E_ACUTE);
    const file = await write('bodies.json', bad.bytes);
    const { events, errors } = await collect([file]);
    const bodyLines = body('s1').split('\n').length;
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file,
        line: bad.line,
        message:
          `the JSON document at lines ${bodyLines + 1}–${2 * bodyLines} (one of several in this file) holds a ` +
          `byte that is not valid UTF-8 (line ${bad.line}, column ${bad.column}), so its ids cannot be read as ` +
          `written; save the file as UTF-8; the documents before and after it were read`,
      },
    ]);
    expect(ids(events)).toEqual(['s1', 's3']);
  });

  it('a body pretty-printed among NDJSON lines: named at the bad byte; the lines around it are read', async () => {
    const bad = withBytes(`${inbound('in1')}\n${body('wamid.caf@')}\n${inbound('in2')}\n`, LATIN1_E_ACUTE);
    const file = await write('body-among-lines.ndjson', bad.bytes);
    const { events, errors } = await collect([file]);
    const last = 1 + body('x').split('\n').length;
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file,
        line: bad.line,
        message:
          `lines 2–${last} look like one JSON document spread over several lines, which holds a byte that is not ` +
          `valid UTF-8 (line ${bad.line}, column ${bad.column}), so its ids cannot be read as written; save the ` +
          `file as UTF-8`,
      },
    ]);
    expect(ids(events)).toEqual(['in1', 'in2']);
  });

  it('an array written one element per line: the element is named, the other elements are read', async () => {
    const bad = withBytes(`[\n  ${inbound('in1')},\n  ${inbound('in@')},\n  ${inbound('in3')}\n]\n`, [0xfe]);
    const file = await write('array.json', bad.bytes);
    const { events, errors } = await collect([file]);
    expect(errors).toEqual([
      {
        code: 'MALFORMED_LINE',
        file,
        line: 3,
        message:
          `line 3 (element 1 of the array at lines 1–5) holds a byte that is not valid UTF-8 (column ` +
          `${bad.column}), so its ids cannot be read as written; save the file as UTF-8; the other elements were read`,
      },
    ]);
    expect(ids(events)).toEqual(['in1', 'in3']);
  });
});

describe('bytes that are not UTF-8 on stdin', () => {
  it('arriving one, two or three bytes at a time: the same lines are named, the same events read', async () => {
    const bad = withBytes(
      [inbound('in1', 'Zo\u00eb \u{1f600}'), inbound('in@'), inbound('in3 \ufffd \u20ac'), body('s4')].join(
        '\n',
      ),
      [0xf0, 0x28], // a 4-byte lead followed by ASCII
    );
    for (const size of [1, 2, 3]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < bad.bytes.length; at += size) chunks.push(bad.bytes.subarray(at, at + size));
      const { events, errors } = await collect(['-'], { stdin: Readable.from(chunks) });
      expect(errors, `chunks of ${size}`).toEqual([lineError(STDIN_NAME, 2, bad.column)]);
      expect(ids(events)).toEqual(['in1', 'in3 \ufffd \u20ac', 's4']);
      expect(events[0]).toEqual(expect.objectContaining({ user: 'Zo\u00eb \u{1f600}' }));
    }
  });
});
