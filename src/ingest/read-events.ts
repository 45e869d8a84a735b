// Reads event sources (files, directories, stdin) as streams and hands their core events to a sink.
// A bad line is reported with its file and line, then reading goes on: one bad line never costs the others.
// Duplicates are not this module's business (the engine dedupes); it never throws for bad input.

import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { CoreEvent } from '../core/events.js';
import { parseContractLine, parseEventValue } from './parse-event.js';

/** How stdin is named in errors and summaries. */
export const STDIN_NAME = '<stdin>';
/** One JSON document (not NDJSON) is parsed whole; above this size it must be split into lines. */
export const MAX_DOCUMENT_BYTES = 256 * 1024 * 1024;
const EVENT_FILE_EXTENSIONS = ['.json', '.ndjson', '.jsonl'];
/** Bytes read from a file at a time (the bench's parse-only baseline reads in the same chunks). */
export const READ_CHUNK_BYTES = 64 * 1024;
const BATCH_SIZE = 4096;

export type SourceError =
  | {
      /** MALFORMED_LINE: not JSON. BAD_EVENT: JSON, but not a readable event line or webhook body. */
      code: 'MALFORMED_LINE' | 'BAD_EVENT';
      file: string;
      line: number;
      message: string;
    }
  | {
      /** UNREADABLE_SOURCE: missing, not permitted, or a directory without event files. */
      code: 'UNREADABLE_SOURCE' | 'DOCUMENT_TOO_LARGE';
      file: string;
      message: string;
    };

export interface IgnoredNote {
  file: string;
  line: number;
  reason: string;
  count: number;
}

export interface EventSink {
  /** Events in file order, in batches; the array is the sink's to keep. */
  onEvents(events: CoreEvent[]): void;
  onError(error: SourceError): void;
  /** Valid items that are not billing events (group statuses, system messages, unknown fields…). */
  onIgnored?(note: IgnoredNote): void;
}

export interface ReadOptions {
  /** The stream read for the source `-` (default: process.stdin). */
  stdin?: NodeJS.ReadableStream;
  /** Cap for a file that is one JSON document rather than NDJSON (default 256 MiB). */
  maxDocumentBytes?: number;
}

export interface SourceSummary {
  /** The file read (a directory source lists each of its files), or `<stdin>`. */
  file: string;
  /** Physical lines read, blank ones included. */
  lines: number;
  events: number;
  errors: number;
  ignored: number;
}

export interface ReadSummary {
  lines: number;
  events: number;
  errors: number;
  ignored: number;
  files: SourceSummary[];
}

/**
 * Reads every source in order — a file, a directory (its `.json` / `.ndjson` / `.jsonl` files, recursively,
 * sorted by name) or `-` for stdin — and streams their events to `sink`. Resolves once all are read.
 */
export async function readEventSources(
  sources: readonly string[],
  sink: EventSink,
  options: ReadOptions = {},
): Promise<ReadSummary> {
  const summary: ReadSummary = { lines: 0, events: 0, errors: 0, ignored: 0, files: [] };
  const maxDocumentBytes = options.maxDocumentBytes ?? MAX_DOCUMENT_BYTES;
  const read = async (file: string, stream: () => NodeJS.ReadableStream) => {
    const reader = new SourceReader(file, sink, maxDocumentBytes);
    await reader.read(stream);
    summary.files.push(reader.summary);
    summary.lines += reader.summary.lines;
    summary.events += reader.summary.events;
    summary.errors += reader.summary.errors;
    summary.ignored += reader.summary.ignored;
  };
  const unreadable = (file: string, message: string) => {
    sink.onError({ code: 'UNREADABLE_SOURCE', file, message });
    summary.files.push({ file, lines: 0, events: 0, errors: 1, ignored: 0 });
    summary.errors += 1;
  };

  for (const source of sources) {
    if (source === '-') {
      await read(STDIN_NAME, () => options.stdin ?? process.stdin);
      continue;
    }
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(source)).isDirectory();
    } catch (error) {
      unreadable(source, describeFsError(error));
      continue;
    }
    if (!isDirectory) {
      await read(source, () => createReadStream(source, { highWaterMark: READ_CHUNK_BYTES }));
      continue;
    }
    let files: string[];
    try {
      files = await listEventFiles(source);
    } catch (error) {
      unreadable(source, describeFsError(error));
      continue;
    }
    if (files.length === 0) {
      unreadable(
        source,
        `directory holds no event files (${EVENT_FILE_EXTENSIONS.join(', ')}): check the path`,
      );
      continue;
    }
    for (const file of files) {
      await read(file, () => createReadStream(file, { highWaterMark: READ_CHUNK_BYTES }));
    }
  }
  return summary;
}

/** Event files under `directory`, depth first, each folder's entries sorted by name; dot-entries skipped. */
async function listEventFiles(directory: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    const entries = await readdir(folder, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const path = join(folder, entry.name);
      let isDirectory = entry.isDirectory();
      if (entry.isSymbolicLink()) isDirectory = (await stat(path)).isDirectory();
      if (isDirectory) await walk(path);
      else if (isEventFileName(entry.name)) files.push(path);
    }
  };
  await walk(directory);
  return files;
}

function isEventFileName(name: string): boolean {
  const lower = name.toLowerCase();
  return EVENT_FILE_EXTENSIONS.some((extension) => lower.endsWith(extension));
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file or directory: check the path';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied: make the file readable for this user';
  if (code === 'EISDIR') return 'is a directory where a file was expected';
  return error instanceof Error ? error.message : String(error);
}

function isBlank(text: string): boolean {
  return text.trim() === '';
}

function firstNonBlankChar(text: string): string {
  const trimmed = text.trimStart();
  return trimmed.charAt(0) === '\uFEFF' ? trimmed.slice(1).trimStart().charAt(0) : trimmed.charAt(0);
}

/** JSON.parse's "at position N", when the engine says it. */
function parsePosition(error: unknown): number | undefined {
  const message = error instanceof Error ? error.message : '';
  const at = message.lastIndexOf('at position ');
  if (at === -1) return undefined;
  const position = Number.parseInt(message.slice(at + 'at position '.length), 10);
  return Number.isFinite(position) ? position : undefined;
}

function jsonErrorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

type Mode = 'undecided' | 'lines' | 'document';

/** Reads one file or stream: NDJSON line by line, or one JSON document (pretty-printed body or array). */
class SourceReader {
  readonly summary: SourceSummary;
  private batch: CoreEvent[] = [];
  private mode: Mode = 'undecided';
  /** The text read so far while the mode is undecided or a document is being collected. */
  private held: string[] = [];
  private heldLength = 0;
  private lineNo = 0;

  constructor(
    private readonly file: string,
    private readonly sink: EventSink,
    private readonly maxDocumentBytes: number,
  ) {
    this.summary = { file, lines: 0, events: 0, errors: 0, ignored: 0 };
  }

  async read(open: () => NodeJS.ReadableStream): Promise<void> {
    const decoder = new StringDecoder('utf8');
    let carry = '';
    try {
      for await (const chunk of open()) {
        const chunkText = typeof chunk === 'string' ? chunk : decoder.write(chunk);
        if (this.mode !== 'lines') {
          // Held until the first line tells NDJSON from one document (sizes counted in UTF-16 units).
          this.held.push(chunkText);
          this.heldLength += chunkText.length;
        }
        if (this.mode !== 'document') carry = this.splitLines(carry === '' ? chunkText : carry + chunkText);
        if (carry.length > this.maxDocumentBytes) return this.tooLarge();
        if (this.mode !== 'lines' && this.heldLength > this.maxDocumentBytes) return this.tooLarge();
        this.flush();
      }
      const tail = decoder.end();
      if (this.mode === 'document') this.held.push(tail);
      else carry += tail;
    } catch (error) {
      this.flush();
      const where = this.lineNo > 0 ? ` (stopped after line ${this.lineNo})` : '';
      this.fail({ code: 'UNREADABLE_SOURCE', file: this.file, message: describeFsError(error) + where });
      return;
    }
    if (this.mode !== 'document' && carry !== '') this.acceptLine(carry);
    if (this.mode === 'document') this.readDocument(this.held.join(''));
    this.held = [];
    this.summary.lines = this.lineNo;
    this.flush();
  }

  /** Handles every complete line of `text`; returns the unfinished rest. */
  private splitLines(text: string): string {
    let start = 0;
    for (;;) {
      const newline = text.indexOf('\n', start);
      if (newline === -1) return text.slice(start);
      this.acceptLine(text.slice(start, newline));
      start = newline + 1;
      if (this.mode === 'document') return '';
    }
  }

  private acceptLine(raw: string): void {
    this.lineNo++;
    let line = raw.charCodeAt(raw.length - 1) === 13 ? raw.slice(0, -1) : raw;
    if (line.length === 0) return;
    if (this.mode === 'lines') {
      this.readLine(line, this.lineNo);
      return;
    }
    // Undecided: the first non-blank line tells NDJSON from one JSON document spread over lines.
    if (this.lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    if (isBlank(line)) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      const first = firstNonBlankChar(line);
      if (first === '{' || first === '[') {
        this.mode = 'document';
        return;
      }
      this.mode = 'lines';
      this.held = [];
      this.readLine(line, this.lineNo);
      return;
    }
    this.mode = 'lines';
    this.held = [];
    this.readValue(value, this.lineNo, '');
  }

  private readLine(line: string, lineNo: number): void {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      if (isBlank(line)) return;
      const position = parsePosition(error);
      const column = position === undefined ? '' : ` (column ${position + 1})`;
      this.fail({
        code: 'MALFORMED_LINE',
        file: this.file,
        line: lineNo,
        message: `line ${lineNo} is not valid JSON: ${jsonErrorMessage(error)}${column}; fix or remove that line`,
      });
      return;
    }
    this.readValue(value, lineNo, '');
  }

  /** The whole file as one JSON document (a webhook body pretty-printed, or an array of bodies/lines). */
  private readDocument(withBom: string): void {
    const text = withBom.charCodeAt(0) === 0xfeff ? withBom.slice(1) : withBom;
    this.lineNo = countLines(text);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      // NDJSON whose first line is broken: the other lines stand alone, so read it line by line.
      if (secondValueStandsAlone(text)) {
        this.mode = 'lines';
        this.lineNo = 0;
        const rest = this.splitLines(text);
        if (rest !== '') this.acceptLine(rest);
        return;
      }
      const position = parsePosition(error);
      const at = position === undefined ? undefined : lineAndColumn(text, position);
      const where = at === undefined ? '' : ` (line ${at.line}, column ${at.column})`;
      this.fail({
        code: 'MALFORMED_LINE',
        file: this.file,
        line: at === undefined ? firstNonBlankLine(text) : at.line,
        message: `the file is one JSON document that does not parse: ${jsonErrorMessage(error)}${where}`,
      });
      return;
    }
    this.readValue(value, firstNonBlankLine(text), 'the document');
  }

  private readValue(value: unknown, lineNo: number, what: string): void {
    if (Array.isArray(value)) {
      const prefix = what === '' ? 'the array' : what;
      for (let i = 0; i < value.length; i++) this.readOne(value[i], lineNo, `${prefix}[${i}]: `);
    } else {
      this.readOne(value, lineNo, '');
    }
  }

  private readOne(value: unknown, lineNo: number, prefix: string): void {
    const line = parseContractLine(value);
    if (line !== undefined) {
      if ('code' in line) {
        this.fail({ code: 'BAD_EVENT', file: this.file, line: lineNo, message: prefix + line.message });
        return;
      }
      this.batch.push(line);
      this.summary.events += 1;
      if (this.batch.length >= BATCH_SIZE) this.flush();
      return;
    }
    const parsed = parseEventValue(value);
    if (!parsed.ok) {
      this.fail({ code: 'BAD_EVENT', file: this.file, line: lineNo, message: prefix + parsed.error.message });
      return;
    }
    const { events, ignored, rejected } = parsed.value;
    for (let i = 0; i < events.length; i++) this.batch.push(events[i]!);
    this.summary.events += events.length;
    if (this.batch.length >= BATCH_SIZE) this.flush();
    for (let i = 0; i < ignored.length; i++) {
      const item = ignored[i]!;
      this.summary.ignored += item.count;
      this.sink.onIgnored?.({ file: this.file, line: lineNo, reason: item.reason, count: item.count });
    }
    for (let i = 0; i < rejected.length; i++) {
      this.fail({ code: 'BAD_EVENT', file: this.file, line: lineNo, message: prefix + rejected[i]!.message });
    }
  }

  private tooLarge(): void {
    this.held = [];
    this.summary.lines = this.lineNo;
    const mib = Math.round(this.maxDocumentBytes / (1024 * 1024));
    this.fail({
      code: 'DOCUMENT_TOO_LARGE',
      file: this.file,
      message:
        `a single JSON document or line over ${mib} MiB cannot be read whole; ` +
        `write it as NDJSON, one event or webhook body per line (e.g. jq -c '.[]' FILE)`,
    });
  }

  private fail(error: SourceError): void {
    this.flush();
    this.summary.errors++;
    this.sink.onError(error);
  }

  private flush(): void {
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.sink.onEvents(batch);
  }
}

function countLines(text: string): number {
  if (text === '') return 0;
  let count = 1;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++;
  return text.endsWith('\n') ? count - 1 : count;
}

function lineAndColumn(text: string, position: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let at = text.indexOf('\n'); at !== -1 && at < position; at = text.indexOf('\n', at + 1)) {
    line++;
    lineStart = at + 1;
  }
  return { line, column: position - lineStart + 1 };
}

function firstNonBlankLine(text: string): number {
  let line = 1;
  let start = 0;
  for (;;) {
    const end = text.indexOf('\n', start);
    const content = text.slice(start, end === -1 ? text.length : end);
    if (!isBlank(content) || end === -1) return line;
    line++;
    start = end + 1;
  }
}

/** Whether the second non-blank line of `text` is a JSON object or array on its own (so: NDJSON). */
function secondValueStandsAlone(text: string): boolean {
  let seen = 0;
  let start = 0;
  while (start < text.length) {
    const end = text.indexOf('\n', start);
    const line = text.slice(start, end === -1 ? text.length : end).trim();
    start = end === -1 ? text.length : end + 1;
    if (line === '') continue;
    if (++seen < 2) continue;
    if (line.charAt(0) !== '{' && line.charAt(0) !== '[') return false;
    try {
      JSON.parse(line);
      return true;
    } catch {
      return false;
    }
  }
  return false;
}
