import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readEventSources, READ_CHUNK_BYTES, type SourceError } from '../read-events.js';
import { LineSplitter } from './line-splitter.js';

const SEED = 20261206;

interface Split {
  lines: { text: string; lineNo: number }[];
  needsReader: string | undefined;
}

/** `bytes` fed to a splitter in chunks of the given sizes (cycled), each chunk a buffer reused after the call. */
function split(bytes: Buffer, chunkSizes: readonly number[], maxLineBytes?: number): Split {
  const lines: Split['lines'] = [];
  const splitter = new LineSplitter(
    (buffer, start, end, lineNo) => lines.push({ text: buffer.toString('latin1', start, end), lineNo }),
    maxLineBytes === undefined ? {} : { maxLineBytes },
  );
  const reused = Buffer.alloc(Math.max(...chunkSizes));
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const size = Math.min(chunkSizes[k % chunkSizes.length]!, bytes.length - at);
    bytes.copy(reused, 0, at, at + size);
    splitter.push(reused.subarray(0, size));
    reused.fill(0x2a); // the splitter keeps no reference to a chunk it was given
    at += size;
  }
  splitter.end();
  return { lines, needsReader: splitter.needsReader };
}

/** The lines as the reader cuts an LF / CRLF file: LF ends a line, one CR before it goes too, a BOM at the start. */
function referenceLines(bytes: Buffer): Split['lines'] {
  const pieces = bytes.toString('latin1').split('\n');
  if (pieces.at(-1) === '') pieces.pop();
  // A file of a BOM alone is one line (the reader counts it), an empty one.
  if (pieces[0]?.startsWith('\u00ef\u00bb\u00bf')) pieces[0] = pieces[0].slice(3);
  return pieces.map((piece, i) => ({
    text: piece.endsWith('\r') ? piece.slice(0, -1) : piece,
    lineNo: i + 1,
  }));
}

const lineText = fc.string({
  unit: fc.constantFrom('{', '}', '"', 'a', ' ', 'é', '\u00ff', '\ufeff'),
  maxLength: 40,
});

describe('LineSplitter cuts lines as the reader does (fast-check, fixed seed)', () => {
  it('any lines, LF or CRLF ends, a BOM or not, a last line with or without its end, any chunk sizes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(lineText, fc.boolean()), { maxLength: 30 }),
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 5 }),
        (lines, hasBom, hasLastEnd, chunkSizes) => {
          let text =
            (hasBom ? '\ufeff' : '') +
            lines.map(([line, isCrLf]) => line + (isCrLf ? '\r\n' : '\n')).join('');
          if (!hasLastEnd && text.endsWith('\n')) text = text.slice(0, -1);
          const bytes = Buffer.from(text, 'utf8');
          const result = split(bytes, chunkSizes);
          expect(result.needsReader).toBeUndefined();
          expect(result.lines).toEqual(referenceLines(bytes));
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('numbers lines as the reader numbers them (its errors name the same lines)', async () => {
    const text = '\ufeffx\r\n\n  \nx\nx\r\n\r\nx';
    const bytes = Buffer.from(text, 'utf8');
    const errors: SourceError[] = [];
    await readEventSources(
      ['-'],
      { onEvents: () => undefined, onError: (error) => errors.push(error) },
      {
        stdin: Readable.from([bytes]),
      },
    );
    const readerLines = errors.map((error) => ('line' in error ? error.line : 0));
    const splitLines = split(bytes, [3])
      .lines.filter((line) => line.text === 'x')
      .map((line) => line.lineNo);
    expect(readerLines).toEqual([1, 4, 5, 7]);
    expect(splitLines).toEqual(readerLines);
  });

  it('counts the lines the reader counts', async () => {
    for (const text of ['', '\ufeff', 'x', 'x\n', 'x\n\n', '\n', 'x\r\n', '\ufeff\n{}\r\n\r\n', '{}\n{}']) {
      const bytes = Buffer.from(text, 'utf8');
      const summary = await readEventSources(
        ['-'],
        { onEvents: () => undefined, onError: () => undefined },
        {
          stdin: Readable.from([bytes]),
        },
      );
      const splitter = new LineSplitter(() => undefined);
      splitter.push(bytes);
      splitter.end();
      expect(splitter.lines, JSON.stringify(text)).toBe(summary.lines);
    }
  });

  it('a line longer than a chunk is handed over whole, once', () => {
    const long = 'y'.repeat(READ_CHUNK_BYTES * 3 + 5);
    const bytes = Buffer.from(`a\n${long}\nb`);
    const { lines } = split(bytes, [READ_CHUNK_BYTES]);
    expect(lines.map((line) => line.text)).toEqual(['a', long, 'b']);
  });

  it('says the reader is needed for a CR alone, a source that is not text, a line over the limit', () => {
    expect(split(Buffer.from('{"a":1}\r{"b":2}\n'), [100]).needsReader).toMatch(/CR/);
    expect(split(Buffer.from('{"a":1}\r'), [8]).needsReader).toBeUndefined();
    expect(split(Buffer.from('{"a":1}\r\n{"b":2}\r'), [8, 1]).needsReader).toBeUndefined();
    expect(split(Buffer.from('{"a":1}\r'), [7, 1]).needsReader).toBeUndefined();
    expect(split(Buffer.from('{"a":1}\rx'), [8, 1]).needsReader).toMatch(/CR/);
    expect(split(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]), [100]).needsReader).toMatch(/not a text file/);
    expect(split(Buffer.from([0xff, 0xfe, 0x7b, 0]), [100]).needsReader).toMatch(/UTF-16/);
    const tooLong = split(Buffer.from('ab\nabcdefghij\n'), [4], 5);
    expect(tooLong.needsReader).toMatch(/longer than 5 bytes/);
    expect(tooLong.lines.map((line) => line.text)).toEqual(['ab']);
  });
});
