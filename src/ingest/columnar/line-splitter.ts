// Splits a source's bytes, read in chunks, into NDJSON lines handed over as byte ranges of a Buffer: no string,
// no copy for a line that lies within one chunk. For the columnar byte reader (stage 2, read-columnar.ts). It
// reads lines as `readEventSources` numbers them in a file of LF (or CRLF) line ends, and says so when a source
// may be read otherwise (see `needsReader`); it never judges what a line holds.

import { describeNotText, MAX_DOCUMENT_BYTES } from '../read-events.js';

const LF = 0x0a;
const CR = 0x0d;

/**
 * Called for each line: its bytes are `bytes[start, end)`, without its line end (LF, or CR LF), and without a
 * UTF-8 byte-order mark at the start of the source; `lineNo` counts from 1, blank lines included. `bytes` is
 * the caller's chunk or a joined copy: valid only during the call.
 */
export type LineHandler = (bytes: Buffer, start: number, end: number, lineNo: number) => void;

export interface LineSplitterOptions {
  /** The longest line held: a longer one stops the splitting (`needsReader`). Default MAX_DOCUMENT_BYTES. */
  maxLineBytes?: number;
}

/**
 * Feed it the chunks in order (`push`), then `end()`. A line cut by a chunk's end is kept in pieces (each a
 * copy: the caller may reuse its buffer) and joined once, when its end comes: a line longer than many chunks
 * is never joined again chunk by chunk.
 */
export class LineSplitter {
  /** Physical lines handed over so far. */
  lines = 0;
  /**
   * Why this source must be read by `readEventSources` instead, once known (then no more lines are handed
   * over): its first bytes are not text (`describeNotText`: the reader reads nothing of it); a line is longer
   * than `maxLineBytes`; or a CR that is not part of a CR LF (the reader may then read CR alone as a line
   * end, or see other lines). Undefined while the lines handed over are the lines the reader reads.
   */
  needsReader: string | undefined;
  private readonly carry: Buffer[] = [];
  private carryBytes = 0;
  private isSniffed = false;
  /** The last chunk ended with a CR: whether it was part of a CR LF only the next chunk's first byte tells. */
  private isCrPending = false;
  private readonly maxLineBytes: number;

  constructor(
    private readonly onLine: LineHandler,
    options: LineSplitterOptions = {},
  ) {
    this.maxLineBytes = options.maxLineBytes ?? MAX_DOCUMENT_BYTES;
  }

  push(chunk: Buffer): void {
    if (this.needsReader !== undefined || chunk.length === 0) return;
    if (!this.isSniffed) {
      this.isSniffed = true;
      this.needsReader = describeNotText(chunk);
      if (this.needsReader !== undefined) return;
    }
    if (this.hasLoneCr(chunk)) {
      this.needsReader = 'a CR that does not end a line with LF';
      return;
    }
    let from = 0;
    let newline = chunk.indexOf(LF);
    if (newline === -1) {
      this.hold(chunk, 0);
      return;
    }
    if (this.carry.length > 0) {
      this.carry.push(chunk.subarray(0, newline));
      const joined = Buffer.concat(this.carry, this.carryBytes + newline);
      this.carry.length = 0;
      this.carryBytes = 0;
      this.line(joined, 0, joined.length);
      from = newline + 1;
      newline = chunk.indexOf(LF, from);
    }
    while (newline !== -1) {
      this.line(chunk, from, newline);
      from = newline + 1;
      newline = chunk.indexOf(LF, from);
    }
    if (from < chunk.length) this.hold(chunk, from);
  }

  /** The source has ended: its last line, when it has no line end. */
  end(): void {
    if (this.needsReader !== undefined || this.carryBytes === 0) return;
    const last = Buffer.concat(this.carry, this.carryBytes);
    this.carry.length = 0;
    this.carryBytes = 0;
    this.line(last, 0, last.length);
  }

  private hold(chunk: Buffer, from: number): void {
    this.carryBytes += chunk.length - from;
    if (this.carryBytes > this.maxLineBytes) {
      this.needsReader = `a line longer than ${this.maxLineBytes} bytes`;
      this.carry.length = 0;
      return;
    }
    this.carry.push(Buffer.from(chunk.subarray(from)));
  }

  private line(bytes: Buffer, start: number, lineEnd: number): void {
    const lineNo = ++this.lines;
    let end = lineEnd;
    if (end > start && bytes[end - 1] === CR) end--;
    // The source's byte-order mark (the reader drops it from the first line).
    if (
      lineNo === 1 &&
      end - start >= 3 &&
      bytes[start] === 0xef &&
      bytes[start + 1] === 0xbb &&
      bytes[start + 2] === 0xbf
    )
      start += 3;
    this.onLine(bytes, start, end, lineNo);
  }

  /** Whether `chunk` (after the chunks before it) holds a CR not followed by an LF; one at its end waits. */
  private hasLoneCr(chunk: Buffer): boolean {
    if (this.isCrPending && chunk[0] !== LF) return true;
    this.isCrPending = false;
    for (let cr = chunk.indexOf(CR); cr !== -1; cr = chunk.indexOf(CR, cr + 1)) {
      if (cr === chunk.length - 1) this.isCrPending = true;
      else if (chunk[cr + 1] !== LF) return true;
    }
    return false;
  }
}
