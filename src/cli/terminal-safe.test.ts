// What wameter prints for a person must not drive the reader's terminal: an id holding a control character (a
// line feed that would forge a line of output, an escape sequence that would clear the screen) is refused by
// the reader, and what else reaches a terminal (file names, on stderr) has its control characters written
// as \uXXXX. JSON and CSV keep their values as they are.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { processIo, terminalSafe } from './io.js';

const ESC = '\u001b';
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

const outbound = (fields: Record<string, string>) =>
  JSON.stringify({
    kind: 'outbound',
    at: '2025-08-01T10:00:00Z',
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    id: 'm1',
    template: 'marketing',
    delivered_at: '2025-08-01T10:00:05Z',
    ...fields,
  });

describe('control characters of the input on a terminal', () => {
  it('are written as \\uXXXX, line feeds and tabs kept', () => {
    expect(terminalSafe(`a${ESC}[2Jb\u0007\r\n\tc\u009b`)).toBe('a\\u001b[2Jb\\u0007\\u000d\n\tc\\u009b');
    expect(terminalSafe('plain text\n')).toBe('plain text\n');
  });

  it('an id holding one is refused by its line, naming the character; the other lines are rated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-terminal-'));
    const file = join(dir, 'events.ndjson');
    writeFileSync(
      file,
      [
        outbound({ waba: 'W1\nwameter: all good, nothing charged' }),
        outbound({ id: `m${ESC}[2J` }),
        outbound({ id: 'm3' }),
      ].join('\n'),
    );
    const { code, out, err } = await runWameter(['rate', file]);
    expect(code).toBe(2);
    expect(err).toContain(`${file}:1: BAD_EVENT: outbound line "waba" holds a control character (U+000A)`);
    expect(err).toContain(`${file}:2: BAD_EVENT: outbound line "id" holds a control character (U+001B)`);
    expect(out).not.toContain('all good');
    for (const text of [out, err]) expect(text).not.toMatch(CONTROL);
  });

  it("the process's stderr gets them escaped (a file name holding one, say)", () => {
    let written = '';
    const stderr = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written += chunk.toString();
        done();
      },
    });
    const io = processIo({ stdout: new PassThrough(), stderr, stdin: new PassThrough() });
    io.writeError(`wameter: /tmp/e${ESC}]0;owned\u0007.ndjson:2: MALFORMED_LINE\n`);
    expect(written).toBe('wameter: /tmp/e\\u001b]0;owned\\u0007.ndjson:2: MALFORMED_LINE\n');
  });
});
