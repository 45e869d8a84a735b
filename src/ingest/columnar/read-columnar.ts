// The columnar byte reader (stage 2 of the columnar design): reads files of NDJSON through `LineSplitter`
// into a `ColumnarRater`. A contract line `scanContractLine` accepts goes to the rater's integer API, its
// keys interned from the bytes (no string, no `CoreEvent`), and so does a webhook body of statuses
// `scanWebhookBody` accepts; any other line is decoded and read as
// `readEventSources` reads such a line alone (`eventsOfQuietValue`), each of its events given to `add`. It
// reads a source only while it is sure the reader reads it the same way and says nothing of it — no error, no
// note; otherwise it stops and says why (`needsReader`), and the caller has the reader read all the sources
// instead.

import { closeSync, openSync, readSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import {
  NO_KEY,
  STATUS_WORD_CODES,
  TEMPLATE_CODES,
  type ColumnarRater,
} from '../../core/columnar/columnar-rater.js';
import { isPlainJsonText } from '../parse-event.js';
import { eventsOfQuietValue, READ_CHUNK_BYTES, type ReadSummary } from '../read-events.js';
import { LineSplitter } from './line-splitter.js';
import { pricingOf, ScannedBody, scanWebhookBody } from './scan-webhook-body.js';
import {
  LINE_INBOUND,
  LINE_OUTBOUND,
  ScannedLine,
  scanContractLine,
  STATUS_DELIVERED,
  STATUS_FAILED,
  STATUS_READ,
  STATUS_SENT,
  TEMPLATE_AUTHENTICATION,
  TEMPLATE_MARKETING,
  TEMPLATE_UTILITY,
} from './scan-contract-line.js';

/**
 * The sources read (their summary, as `readEventSources` gives it), the rater's bail, or why the reader must
 * read them (`readerSays`: the reader surely says an error or a note of a line, so that a columnar rater fed
 * its events would give them up too).
 */
export type ColumnarReadOutcome =
  { read: ReadSummary } | { bail: string } | { needsReader: string; readerSays?: true };

/**
 * Blank lines before a source's first value, in bytes, beyond which the reader is left to read it (it holds
 * them while it decides NDJSON from one document, up to MAX_DOCUMENT_BYTES).
 */
const MAX_BLANK_PREFIX_BYTES = 1 << 20;
const CR = 0x0d;

/** The scanner's template codes as the rater's (by name), and its status codes as the rater's words. */
const TEMPLATE_OF_SCANNED = new Int8Array(4);
TEMPLATE_OF_SCANNED[0] = TEMPLATE_CODES.indexOf(null);
TEMPLATE_OF_SCANNED[TEMPLATE_MARKETING] = TEMPLATE_CODES.indexOf('marketing');
TEMPLATE_OF_SCANNED[TEMPLATE_UTILITY] = TEMPLATE_CODES.indexOf('utility');
TEMPLATE_OF_SCANNED[TEMPLATE_AUTHENTICATION] = TEMPLATE_CODES.indexOf('authentication');
const WORD_OF_SCANNED = new Int8Array(5).fill(-1);
WORD_OF_SCANNED[STATUS_SENT] = STATUS_WORD_CODES.get('sent')!;
WORD_OF_SCANNED[STATUS_DELIVERED] = STATUS_WORD_CODES.get('delivered')!;
WORD_OF_SCANNED[STATUS_READ] = STATUS_WORD_CODES.get('read')!;
WORD_OF_SCANNED[STATUS_FAILED] = STATUS_WORD_CODES.get('failed')!;

/**
 * Reads `sources` (paths of files; a directory or anything not a regular file is the reader's) in order into
 * `rater`, calling `onEvent` once per event read, in the reader's order. Stops at the rater's bail.
 */
export async function readFilesColumnar(
  sources: readonly string[],
  rater: ColumnarRater,
  onEvent: () => void,
): Promise<ColumnarReadOutcome> {
  const read: ReadSummary = { lines: 0, events: 0, errors: 0, ignored: 0, files: [] };
  // One buffer read into again and again (the splitter copies what it keeps of a chunk): a new Buffer per
  // chunk, as a read stream gives, is memory outside V8's heap, whose growth set off a full collection every
  // few megabytes read (26 in two warm runs over the bench's 1M-line file, 11 without). Read synchronously:
  // each read of the thread pool's cost a round trip between threads, and on a busy machine a wait for a core
  // (warm runs over that file 2.3–3.7 s with it, 1.8–2.2 s without, in turns, a core taken by another
  // process). Rating a chunk blocks the event loop longer than reading it does; `wameter rate` and `explain`
  // run nothing beside.
  const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  for (const source of sources) {
    try {
      if (!(await stat(source)).isFile()) return { needsReader: 'not a regular file' };
    } catch {
      return { needsReader: 'a source that cannot be looked at' };
    }
    const file = new FileLines(rater, onEvent);
    const splitter = new LineSplitter((bytes, start, end) => file.line(bytes, start, end));
    let lastByte = -1;
    let fd = -1;
    try {
      fd = openSync(source, 'r');
      for (;;) {
        const bytesRead = readSync(fd, chunk, 0, chunk.length, null);
        if (bytesRead === 0) break;
        const bytes = bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead);
        lastByte = bytes[bytesRead - 1]!;
        splitter.push(bytes);
        if (splitter.needsReader !== undefined || file.needsReader !== undefined) break;
        if (rater.bailedBecause !== undefined) return { bail: rater.bailedBecause };
      }
    } catch {
      return { needsReader: 'a read error' };
    } finally {
      if (fd !== -1) closeSync(fd);
    }
    splitter.end();
    const needsReader =
      splitter.needsReader ??
      file.needsReader ??
      // A CR last: whether the reader reads it as a line end depends on what it decided of the file's lines.
      (lastByte === CR ? 'a CR at the end' : undefined) ??
      // Nothing but blank lines (or no byte): the reader says a note of it.
      (file.hasValue ? undefined : 'no value');
    if (needsReader !== undefined) return { needsReader, ...(file.readerSays ? { readerSays: true } : {}) };
    if (rater.bailedBecause !== undefined) return { bail: rater.bailedBecause };
    read.files.push({ file: source, lines: splitter.lines, events: file.events, errors: 0, ignored: 0 });
    read.lines += splitter.lines;
    read.events += file.events;
  }
  return { read };
}

/** The lines of one source, as `LineSplitter` hands them over. */
class FileLines {
  events = 0;
  /** A line held a value (the reader has decided the source is NDJSON). */
  hasValue = false;
  needsReader: string | undefined;
  /** The reader surely says an error or a note of the line that stopped the reading. */
  readerSays = false;
  private blankBytes = 0;
  private readonly scanned = new ScannedLine();
  private readonly body = new ScannedBody();
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(
    private readonly rater: ColumnarRater,
    private readonly onEvent: () => void,
  ) {}

  line(bytes: Buffer, start: number, end: number): void {
    if (this.needsReader !== undefined) return;
    if (start === end) {
      if (!this.hasValue && (this.blankBytes += 2) > MAX_BLANK_PREFIX_BYTES) this.needsReader = 'blank lines';
      return;
    }
    this.hasValue = true;
    const s = this.scanned;
    if (scanContractLine(bytes, start, end, s)) {
      this.addScanned(bytes, s);
      this.events += 1;
      this.onEvent();
      return;
    }
    const body = this.body;
    if (scanWebhookBody(bytes, start, end, body)) {
      this.addBody(bytes, body);
      return;
    }
    const lineBytes = bytes.subarray(start, end);
    let value: unknown;
    try {
      value = JSON.parse(this.decoder.decode(lineBytes));
    } catch {
      // Not UTF-8, or not one JSON value (a blank line of spaces, a document spread over lines…).
      this.needsReader = 'a line that does not parse alone';
      return;
    }
    const events = eventsOfQuietValue(value, isPlainJsonText(lineBytes));
    if (events === undefined || events === 'says') {
      this.needsReader = events === 'says' ? 'a line the reader says something of' : 'an array';
      this.readerSays = events === 'says';
      return;
    }
    for (const event of events) {
      this.rater.add(event);
      this.onEvent();
    }
    this.events += events.length;
  }

  /**
   * As `ColumnarRater.add` adds each event `toStatusEvents` makes of the body, in turn: the same keys, same
   * order (the conversation is not read: `add` does not read it either).
   */
  private addBody(bytes: Buffer, b: ScannedBody): void {
    const rater = this.rater;
    for (let k = 0; k < b.count; k++) {
      rater.addStatus(
        rater.ids.intern(bytes, b.idStart[k]!, b.idEnd[k]!),
        WORD_OF_SCANNED[b.status[k]!]!,
        b.atMs[k]!,
        rater.wabas.intern(bytes, b.wabaStart, b.wabaEnd),
        rater.businesses.intern(bytes, b.businessStart, b.businessEnd),
        rater.userOfBytes(bytes, b.userStart[k]!, b.userEnd[k]!),
        pricingOf(bytes, b, k),
      );
      this.onEvent();
    }
    this.events += b.count;
  }

  /** As `ColumnarRater.add` adds the event `toCoreEvent` makes of the line: the same keys, same order. */
  private addScanned(bytes: Buffer, s: ScannedLine): void {
    const rater = this.rater;
    if (s.kind === LINE_INBOUND) {
      rater.addInbound(
        rater.wabas.intern(bytes, s.wabaStart, s.wabaEnd),
        rater.businesses.intern(bytes, s.businessStart, s.businessEnd),
        rater.userOfBytes(bytes, s.userStart, s.userEnd),
        rater.ids.intern(bytes, s.idStart, s.idEnd),
        s.atMs,
        s.hasReferral,
      );
    } else if (s.kind === LINE_OUTBOUND) {
      rater.addOutbound(
        rater.wabas.intern(bytes, s.wabaStart, s.wabaEnd),
        rater.businesses.intern(bytes, s.businessStart, s.businessEnd),
        rater.userOfBytes(bytes, s.userStart, s.userEnd),
        rater.ids.intern(bytes, s.idStart, s.idEnd),
        s.atMs,
        TEMPLATE_OF_SCANNED[s.template]!,
        s.templateNameStart === -1
          ? NO_KEY
          : rater.templateNames.intern(bytes, s.templateNameStart, s.templateNameEnd),
        s.deliveredAtMs === -1 ? Infinity : s.deliveredAtMs,
        s.isFailed,
      );
    } else {
      rater.addStatus(
        rater.ids.intern(bytes, s.idStart, s.idEnd),
        WORD_OF_SCANNED[s.status]!,
        s.atMs,
        s.wabaStart === -1 ? NO_KEY : rater.wabas.intern(bytes, s.wabaStart, s.wabaEnd),
        s.businessStart === -1 ? NO_KEY : rater.businesses.intern(bytes, s.businessStart, s.businessEnd),
        s.userStart === -1 ? NO_KEY : rater.userOfBytes(bytes, s.userStart, s.userEnd),
      );
    }
  }
}
