// Reads event sources (files, directories, stdin) as streams and hands their core events to a sink.
// A bad line is reported with its file and line, then reading goes on: one bad line never costs the others.
// Duplicates are not this module's business (the engine dedupes); it never throws for bad input.
// The per-line fast path is one JSON.parse per NDJSON line: extra work happens once per file or on error paths.

import { createReadStream, type Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { META_STATUS_WORDS, type CoreEvent } from '../core/events.js';
import { JsonTextIndex, offsetOfError } from './error-position.js';
import {
  isPlainJsonText,
  parseContractLine,
  parseEventValue,
  unknownLineFieldWords,
  unknownLineFields,
} from './parse-event.js';
import {
  binarySignatureOf,
  decodeUtf8MarkingInvalid,
  INVALID_UTF8_MARK,
  utf16WithoutMark,
  utf16WithoutMarkWords,
  withoutByteOrderMark,
} from './utf8.js';

/** How stdin is named in errors and summaries. */
export const STDIN_NAME = '<stdin>';
/** One JSON document (not NDJSON) is parsed whole; above this size it must be split into lines. */
export const MAX_DOCUMENT_BYTES = 256 * 1024 * 1024;
const EVENT_FILE_EXTENSIONS = ['.json', '.ndjson', '.jsonl'];
/** Bytes read from a file at a time (the bench's parse-only baseline reads in the same chunks). */
export const READ_CHUNK_BYTES = 64 * 1024;
const BATCH_SIZE = 4096;
/** How an empty source's note begins (`IgnoredNote.reason`). */
export const EMPTY_SOURCE_REASON = 'no events: the source is empty';

export type SourceError =
  | {
      /** MALFORMED_LINE: not JSON. BAD_EVENT: JSON, but not a readable event line or webhook body. */
      code: 'MALFORMED_LINE' | 'BAD_EVENT';
      file: string;
      line: number;
      message: string;
    }
  | {
      /**
       * UNREADABLE_SOURCE: missing, not permitted, not text (binary or compressed bytes, UTF-16), or a directory
       * without event files. Nothing is read from such a source.
       */
      code: 'UNREADABLE_SOURCE' | 'DOCUMENT_TOO_LARGE';
      file: string;
      message: string;
    };

/**
 * Something read that bills nothing, told so that it is not lost silently. Besides ignored items, a source
 * with nothing in it — an empty file or one of blank lines only — gives one note with `line: 0` (the whole
 * file), `count: 0` and a reason starting with `EMPTY_SOURCE_REASON`: a warning, not an input error.
 */
export interface IgnoredNote {
  file: string;
  /** The line the item was on (a document's first line); 0 for a note about the whole source. */
  line: number;
  reason: string;
  count: number;
  /** A field of an event line that the contract does not name: the line was read without it, not skipped. */
  isUnreadField?: boolean;
  /** An item read and kept that decides nothing: a webhook status of a word Meta does not document. */
  isWithoutEffect?: boolean;
}

export interface EventSink {
  /** Events in file order, in batches; the array is the sink's to keep. */
  onEvents(events: CoreEvent[]): void;
  onError(error: SourceError): void;
  /** Valid items that are not billing events (group statuses, system messages…), and empty sources. */
  onIgnored?(note: IgnoredNote): void;
  /**
   * Each value read as a Meta webhook body (not a contract event line), once it parsed, before its events are
   * handed to `onEvents`: for a reader keeping more of a body than its events (its display numbers).
   */
  onWebhookBody?(value: unknown): void;
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
 * sorted by name, and compressed ones such as `.ndjson.gz`, each refused as compressed) or `-` for stdin —
 * and streams their events to `sink`. Resolves once all are read.
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
    let passedOver: PassedOver;
    try {
      ({ files, passedOver } = await listEventFiles(source));
    } catch (error) {
      unreadable(source, describeFsError(error, 'folder'));
      continue;
    }
    // A subfolder this user may not list: its events are missing, an input problem named as its own source.
    for (const { path, why } of passedOver.unreadableFolders) unreadable(path, why);
    const skippedNote = describePassedOver(passedOver, files.length > 0);
    if (files.length === 0 && passedOver.unreadableFolders.length > 0) continue;
    if (files.length === 0) {
      unreadable(
        source,
        `directory holds no event files (${EVENT_FILE_EXTENSIONS.join(', ')}): check the path` +
          (skippedNote ? ` (${skippedNote})` : ''),
      );
      continue;
    }
    // Said, so that a file of events with another name is never left out without a word.
    if (skippedNote) sink.onIgnored?.({ file: source, line: 0, reason: skippedNote, count: 0 });
    for (const file of files) {
      await read(file, () => createReadStream(file, { highWaterMark: READ_CHUNK_BYTES }));
    }
  }
  return summary;
}

/**
 * The events `readEventSources` reads from `value`, the one JSON value of a line of NDJSON (read as
 * `SourceReader.readOne` reads it), when it says nothing else of it; `'says'` when it surely says something
 * of it (an error or a note); undefined for an array (read element by element). For the columnar byte reader
 * (ingest/columnar), which lets the reader read the sources unless the value is quiet.
 */
export function eventsOfQuietValue(
  value: unknown,
  isTextPlain: boolean,
): readonly CoreEvent[] | 'says' | undefined {
  if (Array.isArray(value)) return undefined;
  const line = parseContractLine(value, isTextPlain);
  if (line !== undefined) {
    if ('code' in line || unknownLineFields(line, value) !== undefined) return 'says';
    return [line];
  }
  const parsed = parseEventValue(value, isTextPlain);
  if (!parsed.ok) return 'says';
  const { events, ignored, rejected } = parsed.value;
  if (ignored.length > 0 || rejected.length > 0) return 'says';
  for (const event of events) {
    if (event.kind === 'status' && !META_STATUS_WORDS.includes(event.status)) return 'says';
  }
  return events;
}

/**
 * Whether `sources` surely hold no event, known without reading a byte of them: none is stdin (`-`), and each
 * is missing or cannot be looked at, is an empty file (no bytes), or is a folder that holds no event file, as
 * `readEventSources` lists them, or only empty ones. `readEventSources` then reads nothing of them and says
 * why, in its words; a caller may ask before it creates anything (`wameter import`'s store). False when one
 * source may hold an event (a file of blank lines only is known to be empty only once read).
 */
export async function isSurelyWithoutEvents(sources: readonly string[]): Promise<boolean> {
  const isEmptyFile = async (path: string) => {
    try {
      const found = await stat(path);
      return found.isFile() && found.size === 0;
    } catch {
      return true;
    }
  };
  for (const source of sources) {
    if (source === '-') return false;
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(source)).isDirectory();
    } catch {
      continue;
    }
    if (!isDirectory) {
      if (await isEmptyFile(source)) continue;
      return false;
    }
    let files: string[];
    try {
      ({ files } = await listEventFiles(source));
    } catch {
      continue;
    }
    for (const file of files) if (!(await isEmptyFile(file))) return false;
  }
  return true;
}

/**
 * True when `sources` (files and folders, no stdin) hold at most `maxBytes` of event files in all and reading
 * them finds no event (blank lines only, malformed lines only): a caller may then refuse them before it
 * creates anything, as it refuses `isSurelyWithoutEvents` sources. False otherwise, for larger sources, which
 * are not read twice, and for any source that is no regular file or folder (stdin, a named pipe, `<(…)`).
 * Says nothing: the caller's own reading names the problems.
 */
export async function holdsNoEventWithin(sources: readonly string[], maxBytes: number): Promise<boolean> {
  let bytes = 0;
  for (const source of sources) {
    if (source === '-') return false;
    let found: Awaited<ReturnType<typeof stat>>;
    try {
      found = await stat(source);
    } catch {
      continue;
    }
    // A named pipe or a shell's `<(…)` is read once only: never before the caller's own reading.
    if (!found.isFile() && !found.isDirectory()) return false;
    let files = [source];
    if (found.isDirectory()) {
      try {
        ({ files } = await listEventFiles(source));
      } catch {
        continue;
      }
    }
    for (const file of files) {
      try {
        bytes += (await stat(file)).size;
      } catch {
        continue;
      }
      if (bytes > maxBytes) return false;
    }
  }
  let events = 0;
  await readEventSources(sources, {
    onEvents: (read) => void (events += read.length),
    onError: () => {},
    onIgnored: () => {},
  });
  return events === 0;
}

/** Entries of a directory source that were not read: hidden ones, files of other kinds, bad links (paths). */
interface PassedOver {
  hidden: string[];
  otherFiles: string[];
  /** Symbolic links that lead nowhere (a missing target) or to themselves (a chain of links in a ring). */
  brokenLinks: { path: string; why: string }[];
  /** Links to a folder already read: a loop back to a folder above (`sub/up -> ..`), or a second way in. */
  foldersAgain: { path: string; folder: string }[];
  /** Entries named as event files that are no regular file: a named pipe (reading it waits for a writer), a socket, a device. */
  notFiles: string[];
  /** Subfolders that could not be listed (another user's, `chmod 700`), each with why. */
  unreadableFolders: { path: string; why: string }[];
}

/**
 * Event files under `directory`, depth first, each folder's entries sorted by name; dot-entries (`.git`,
 * `.DS_Store`), files of other kinds, broken links and links to a folder already read are passed over, and
 * listed so that the reader can say so. A bad entry never costs the rest of the folder; each folder is read
 * once, so a link back to a folder above ends there instead of recursing until the path is too long.
 */
async function listEventFiles(directory: string): Promise<{ files: string[]; passedOver: PassedOver }> {
  const files: string[] = [];
  const passedOver: PassedOver = {
    hidden: [],
    otherFiles: [],
    brokenLinks: [],
    foldersAgain: [],
    notFiles: [],
    unreadableFolders: [],
  };
  /** Folders read, by device and inode (what a link resolves to), each with the path it was read under. */
  const foldersRead = new Map<string, string>();
  const walk = async (folder: string, identity: string): Promise<void> => {
    foldersRead.set(identity, folder);
    let entries: Dirent[];
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (error) {
      // The folder given itself: the caller names it. A subfolder never costs the rest of the folder.
      if (folder === directory) throw error;
      passedOver.unreadableFolders.push({ path: folder, why: describeFsError(error, 'folder') });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (entry.name.startsWith('.')) {
        passedOver.hidden.push(path);
        continue;
      }
      let isDirectory = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        try {
          const target = await stat(path);
          isDirectory = target.isDirectory();
          isFile = target.isFile();
        } catch (error) {
          passedOver.brokenLinks.push({ path, why: describeBrokenLink(error) });
          continue;
        }
      }
      if (isDirectory) {
        const identity = folderIdentity(await stat(path));
        const readAs = foldersRead.get(identity);
        if (readAs === undefined) await walk(path, identity);
        else passedOver.foldersAgain.push({ path, folder: readAs });
      } else if (!isFile) {
        // A named pipe would hold the whole command until something writes to it (never, in a folder).
        passedOver.notFiles.push(path);
      } else if (isEventFileName(entry.name) || isEventFileName(withoutCompression(entry.name))) {
        // A compressed event file is listed too: reading it says it is compressed (one error), never skipped.
        files.push(path);
      } else passedOver.otherFiles.push(path);
    }
  };
  await walk(directory, folderIdentity(await stat(directory)));
  return { files, passedOver };
}

function folderIdentity(folder: { dev: number; ino: number }): string {
  return `${folder.dev}:${folder.ino}`;
}

/** Why a symbolic link could not be followed, in the words of the passed-over warning. */
function describeBrokenLink(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'its target does not exist';
  if (code === 'ELOOP') return 'it leads back to itself';
  return describeFsError(error);
}

/** The warning for what a directory source did not read, or undefined when it read everything. */
function describePassedOver(
  { hidden, otherFiles, brokenLinks, foldersAgain, notFiles }: PassedOver,
  hasEventFiles: boolean,
): string | undefined {
  const parts: string[] = [];
  const advice: string[] = [];
  if (otherFiles.length > 0) {
    parts.push(
      `${otherFiles.length} ${otherFiles.length === 1 ? 'file' : 'files'} not named ${EVENT_FILE_EXTENSIONS.join(', ')} (first: ${otherFiles[0]})`,
    );
  }
  if (hidden.length > 0) {
    parts.push(`${hidden.length} hidden ${hidden.length === 1 ? 'entry' : 'entries'} (first: ${hidden[0]})`);
  }
  const isCardsOnly =
    !hasEventFiles &&
    hidden.length === 0 &&
    otherFiles.length > 0 &&
    otherFiles.every((file) => /\.csv$/i.test(file));
  if (isCardsOnly) {
    // Events are never CSV: a folder of .csv files is rate cards given where events go (after a card's path).
    advice.push(
      'a folder of .csv files holds rate cards, not events: give it with its own --rate-cards flag',
    );
  } else if (parts.length > 0) {
    advice.push('rename a file of events to .ndjson, or name it as a source of its own');
  }
  if (brokenLinks.length > 0) {
    const [first] = brokenLinks;
    parts.push(
      `${brokenLinks.length} broken ${brokenLinks.length === 1 ? 'link' : 'links'} (first: ${first!.path}: ${first!.why})`,
    );
    advice.push('fix or remove a broken link');
  }
  if (notFiles.length > 0) {
    parts.push(
      `${notFiles.length} ${notFiles.length === 1 ? 'entry' : 'entries'} that ${notFiles.length === 1 ? 'is' : 'are'} no regular file (first: ${notFiles[0]}: a named pipe, socket or device; give a pipe as a source of its own)`,
    );
  }
  if (foldersAgain.length > 0) {
    const [first] = foldersAgain;
    parts.push(
      `${foldersAgain.length} ${foldersAgain.length === 1 ? 'link' : 'links'} to a folder already read (first: ${first!.path}, which is ${first!.folder})`,
    );
  }
  if (parts.length === 0) return undefined;
  return `not read: ${parts.join('; ')}${advice.length > 0 ? `; ${advice.join('; ')}` : ''}`;
}

/** `events.ndjson.gz` → `events.ndjson`; any other name unchanged. */
function withoutCompression(name: string): string {
  return name.replace(/\.(gz|gzip|bz2|xz|zst|zip|br|lz4)$/i, '');
}

function isEventFileName(name: string): boolean {
  const lower = name.toLowerCase();
  return EVENT_FILE_EXTENSIONS.some((extension) => lower.endsWith(extension));
}

function describeFsError(error: unknown, what: 'file' | 'folder' = 'file'): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file or directory: check the path';
  if (code === 'EACCES' || code === 'EPERM')
    return `permission denied: make the ${what} readable for this user`;
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

/** The note for a webhook status of a word Meta does not document (`Delivered`, `delivred`). */
function unknownStatusWordWords(word: string): string {
  const lower = word.toLowerCase();
  const meant = META_STATUS_WORDS.find(
    (known) => known === lower || (lower.length > 3 && known.startsWith(lower.slice(0, 4))),
  );
  const hint = meant === undefined ? '' : `; did you mean "${meant}"?`;
  return `status word ${JSON.stringify(word)} of Meta's webhooks, which Meta does not document: its message is neither delivered nor failed by it${hint}`;
}

function jsonErrorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * `lines`: NDJSON, one JSON.parse per line (the fast path). `run`: NDJSON lines that failed alone and may be
 * one document spread over several lines, held until it is clear. `document`: the whole file held as JSON,
 * because its first line opens an object or array without closing it — until two lines in a row that are
 * whole JSON values on their own prove it is NDJSON after all (see `peekDocumentLine`).
 */
type Mode = 'undecided' | 'lines' | 'run' | 'document';

/** Consecutive NDJSON lines that fail alone, the first opening an object or array left open at its end. */
interface BrokenRun {
  firstLine: number;
  /** The physical lines from `firstLine` on (blank ones as ''), without line ends. */
  lines: string[];
  chars: number;
  /** Brackets still open at the end of the last line. */
  depth: number;
  /**
   * The run opened with a line that is `[` alone and every line since starts with `{` or `[` (an element) or
   * is `]`: an array written one element per line, whose elements start in column 1 without being new lines.
   */
  isArrayOfLines: boolean;
}

/** Reads one file or stream: NDJSON line by line, or JSON documents (pretty-printed bodies, arrays). */
class SourceReader {
  readonly summary: SourceSummary;
  private batch: CoreEvent[] = [];
  private mode: Mode = 'undecided';
  /** The text read so far while the mode is undecided or a document is being collected. */
  private held: string[] = [];
  private heldLength = 0;
  private lineNo = 0;
  private run: BrokenRun | undefined;
  /** In `document` mode: non-blank lines in a row, just seen, that are each a whole JSON object or array. */
  private valuesInARow = 0;
  /** Set by `peekDocumentLine`: the text held so far is to be read again, as NDJSON, from its first line. */
  private isReplaying = false;
  /** How lines end, decided once per source from its first line end (see `lineEndsOf`). */
  private lineEnds: LineEnds = 'unknown';
  private readonly decoder = new ChunkDecoder();

  constructor(
    private readonly file: string,
    private readonly sink: EventSink,
    private readonly maxDocumentBytes: number,
  ) {
    this.summary = { file, lines: 0, events: 0, errors: 0, ignored: 0 };
  }

  async read(open: () => NodeJS.ReadableStream): Promise<void> {
    const decoder = this.decoder;
    // The unfinished last line, in pieces: a line longer than a chunk is joined once, when its end comes.
    // (Joined chunk by chunk, every chunk scanned the whole line again: a 40 MB line took minutes.)
    let carry: string[] = [];
    let carryLength = 0;
    /** Every piece of `carry` is plain text (`isPlainJsonText`): so is each line split from it. */
    let isCarryPlain = true;
    let isSniffed = false;
    // Only the stream's own failure (a file deleted while read, a connection reset) makes the source
    // unreadable. An error thrown while handling what was read — by the sink, such as a stdout that cannot be
    // written — is no fault of the source: it goes on up, and reading stops.
    let handlingFailure: { error: unknown } | undefined;
    try {
      for await (const chunk of open()) {
        try {
          if (!isSniffed && chunk.length > 0) {
            // Once per file: a compressed or binary file would otherwise give one error per "line" of noise.
            isSniffed = true;
            const notText = describeNotText(chunk as Buffer | string);
            if (notText !== undefined) return this.notText(notText);
          }
          // A string chunk was decoded by the stream itself: a U+FFFD in it can no longer be told from a bad byte.
          let chunkText = typeof chunk === 'string' ? chunk : decoder.write(chunk as Uint8Array);
          const isChunkPlain = typeof chunk !== 'string' && decoder.isLastPlain;
          if (this.lineEnds !== 'lf') {
            // Until decided, and in a file whose lines end with CR alone: every CR becomes a line end, so that
            // lines are counted (and errors placed) as the user's editor shows them. A raw CR inside a JSON
            // string is invalid JSON anyway, so no valid value changes.
            if (this.lineEnds === 'unknown') {
              // With what is carried: a chunk may end at a CR whose next character only the next chunk shows.
              const last = carry.at(-1) ?? '';
              this.lineEnds = lineEndsOf(last === '' ? chunkText : last.slice(-1) + chunkText);
              if (this.lineEnds === 'cr') {
                carry = carry.map((text) => text.replaceAll('\r', '\n'));
                this.held = this.held.map((text) => text.replaceAll('\r', '\n'));
              }
            }
            if (this.lineEnds === 'cr') chunkText = chunkText.replaceAll('\r', '\n');
          }
          const isHolding = this.mode === 'undecided' || this.mode === 'document';
          if (isHolding) {
            // Held until the first line tells NDJSON from one document (sizes counted in UTF-16 units).
            this.held.push(chunkText);
            this.heldLength += chunkText.length;
          }
          const newline = chunkText.indexOf('\n');
          if (newline === -1) {
            carry.push(chunkText);
            carryLength += chunkText.length;
            isCarryPlain &&= isChunkPlain;
          } else {
            // The line carried ends in this chunk: it alone is joined, never the whole chunk to it (a copy of
            // every chunk: 165 of the 1,549 MB a batch rating of the 1M bench file allocated).
            let rest: string;
            if (carry.length === 0) rest = this.splitLines(chunkText, isChunkPlain);
            else {
              carry.push(chunkText.slice(0, newline));
              this.acceptLine(carry.join(''), isCarryPlain && isChunkPlain);
              rest = this.isReplaying
                ? this.replayAsLines()
                : this.splitLines(chunkText, isChunkPlain, newline + 1);
            }
            carry = rest === '' ? [] : [rest];
            carryLength = rest.length;
            // The rest is the end of this chunk (the text ends with it, and it holds a line end).
            isCarryPlain = isChunkPlain;
          }
          if (carryLength > this.maxDocumentBytes) return this.tooLarge();
          if (isHolding && this.heldLength > this.maxDocumentBytes) return this.tooLarge();
          this.flush();
        } catch (error) {
          handlingFailure = { error };
          throw error;
        }
      }
      const tail = decoder.end();
      if (this.mode === 'document') this.held.push(tail);
      else carry.push(tail);
    } catch (error) {
      if (handlingFailure) throw handlingFailure.error;
      if (this.mode === 'run') this.resolveRun();
      this.flush();
      const where = this.lineNo > 0 ? ` (stopped after line ${this.lineNo})` : '';
      this.fail({ code: 'UNREADABLE_SOURCE', file: this.file, message: describeFsError(error) + where });
      return;
    }
    const lastLine = carry.join('');
    if (this.mode !== 'document' && lastLine !== '') this.acceptLine(lastLine);
    else if (lastLine !== '') {
      // The last line of a held document is looked at too: it may prove the file NDJSON (CR-only lines).
      this.acceptLine(lastLine);
      if (this.isReplaying) {
        const rest = this.replayAsLines();
        if (rest !== '') this.acceptLine(rest);
      }
    }
    if (this.mode === 'document') this.readDocument(this.held.join(''));
    if (this.mode === 'run') this.resolveRun();
    this.held = [];
    this.summary.lines = this.lineNo;
    this.flush();
    // Still undecided at the end: not one non-blank line. Likely the wrong file, so say so, as a note — an
    // empty file is not malformed input (README's exit codes), and nothing in it can be billed.
    if (this.mode === 'undecided') {
      const what = this.lineNo === 0 ? 'it has no bytes' : `its ${this.lineNo} line(s) are all blank`;
      this.sink.onIgnored?.({
        file: this.file,
        line: 0,
        reason: `${EMPTY_SOURCE_REASON} (${what}); check that it is the file you meant`,
        count: 0,
      });
    }
  }

  /**
   * Handles every complete line of `text` from offset `from` (a line's start); returns the unfinished rest.
   * `isTextPlain`: `text` is plain text (`isPlainJsonText`), and so is every line of it.
   */
  private splitLines(text: string, isTextPlain = false, from = 0): string {
    let start = from;
    for (;;) {
      const newline = text.indexOf('\n', start);
      if (newline === -1) return text.slice(start);
      this.acceptLine(text.slice(start, newline), isTextPlain);
      start = newline + 1;
      if (this.isReplaying) return this.replayAsLines();
    }
  }

  /** `isTextPlain`: the line is plain text (`isPlainJsonText`). */
  private acceptLine(raw: string, isTextPlain = false): void {
    this.lineNo++;
    let line = raw.charCodeAt(raw.length - 1) === 13 ? raw.slice(0, -1) : raw;
    if (line.length === 0) return;
    if (this.mode === 'lines') {
      this.readLine(line, this.lineNo, true, isTextPlain);
      return;
    }
    if (this.mode === 'run') {
      this.continueRun(line, this.lineNo);
      return;
    }
    if (this.mode === 'document') {
      this.peekDocumentLine(line);
      return;
    }
    // Undecided: the first non-blank line tells NDJSON from one JSON document spread over lines.
    if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    if (isBlank(line)) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      const first = firstNonBlankChar(line);
      if (line.includes('\r') && crSeparatedPieces(line)?.kind === 'pieces') {
        // Files joined with `cat`, the first with CR-only line ends (a broken line among them).
        this.mode = 'lines';
        this.held = [];
        this.readCrSeparated(line, this.lineNo);
        return;
      }
      if (first === '{' || first === '[') {
        this.mode = 'document';
        this.valuesInARow = 0;
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

  /**
   * A line of a file held as one document. Two non-blank lines in a row that are each a whole JSON object or
   * array prove the file is not one document — JSON never puts two values side by side, and no token spans
   * a line break — so it is NDJSON whose first line is broken: it is read again line by line from the start,
   * and the rest is no longer held (a large NDJSON file never meets the document cap for one bad line).
   * Whenever the whole file could still be one document, nothing changes. Cheap: a line of a pretty-printed
   * document rarely starts with a bracket and ends with one, and only such a line is parsed.
   */
  private peekDocumentLine(line: string): void {
    let start = 0;
    let end = line.length - 1;
    while (start <= end && isJsonSpace(line.charCodeAt(start))) start++;
    if (start > end) return;
    while (isJsonSpace(line.charCodeAt(end))) end--;
    if (isWholeValue(line, start, end)) {
      if (++this.valuesInARow >= 2) this.isReplaying = true;
      return;
    }
    this.valuesInARow = 0;
    // Two whole values a CR alone separates on one line prove it too: lines of a CR-only file joined to a
    // document cut short (`cat cut.json mac.ndjson`), which would otherwise be lost with it.
    if (line.includes('\r') && wholePiecesOf(line) >= 2) this.isReplaying = true;
  }

  /** Reads everything held so far as NDJSON, from line 1; returns the unfinished rest (the new carry). */
  private replayAsLines(): string {
    const text = this.held.join('');
    this.isReplaying = false;
    this.held = [];
    this.heldLength = 0;
    this.mode = 'lines';
    this.lineNo = 0;
    return this.splitLines(text);
  }

  /** `isTextPlain`: the line is plain text (`isPlainJsonText`); told to the parser when it parses alone. */
  private readLine(line: string, lineNo: number, mayOpenRun = true, isTextPlain = false): void {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      // A byte-order mark at the start of a line (files concatenated with `cat`) is no content: skipped.
      if (line.charCodeAt(0) === 0xfeff) {
        this.readLine(line.slice(1), lineNo, mayOpenRun);
        return;
      }
      if (isBlank(line)) return;
      // Before a held run: a broken line of a CR-only file, joined to the next by its CR, opens a document too.
      if (this.readCrSeparated(line, lineNo)) return;
      // A line that opens an object or array and leaves it open may be the first line of a document spread
      // over several lines (a pretty-printed webhook body pasted into NDJSON): hold it and see.
      if (this.readDocumentsOfLine(line, lineNo)) return;
      if (mayOpenRun && opensDocument(line)) {
        this.run = {
          firstLine: lineNo,
          lines: [line],
          chars: line.length,
          depth: bracketDepth(line, 0),
          isArrayOfLines: line.trim() === '[',
        };
        this.mode = 'run';
        return;
      }
      this.malformedLine(line, lineNo, error);
      return;
    }
    this.readValue(value, lineNo, '', undefined, isTextPlain);
  }

  /**
   * A line holding several whole JSON documents one after the other (`{…}{…}`: `cat` of files whose last
   * line has no line end) is read as them, as the first line of a source is; false, reading nothing, when
   * it is not one such.
   */
  private readDocumentsOfLine(line: string, lineNo: number): boolean {
    const first = firstNonBlankChar(line);
    if (first !== '{' && first !== '[') return false;
    const documents = splitDocuments(line, false);
    if (documents.length < 2 || !documents.every((piece) => parses(line.slice(piece.start, piece.end))))
      return false;
    this.readSequence(line, documents, lineNo, 'lines');
    return true;
  }

  /**
   * A line of an LF file that holds values separated by a CR alone (`crSeparatedPieces`): each piece is read
   * at this line number, and one that does not parse is reported on its own — a broken line of the CR-only
   * part never costs the lines beside it; or whole documents cut by their brackets, each read. False, reading
   * nothing, when the line is not one such. `isOpenEndFinal`: the lines after it do not continue it.
   */
  private readCrSeparated(line: string, lineNo: number, isOpenEndFinal = false): boolean {
    const split = crSeparatedPieces(line, isOpenEndFinal);
    if (split === undefined) return false;
    if (split.kind === 'documents') {
      this.readSequence(line, split.documents, lineNo, 'lines');
      return true;
    }
    const { pieces } = split;
    for (const [i, piece] of pieces.entries()) {
      if (piece === undefined) continue;
      if ('value' in piece) this.readValue(piece.value, lineNo, '');
      else
        this.malformedLine(
          piece.text,
          lineNo,
          piece.error,
          ` (part ${i + 1} of ${pieces.length}: CR alone ends lines there)`,
        );
    }
    return true;
  }

  /**
   * The next line while a broken run is held. The run goes on while its brackets are open, except at a line
   * that starts with `{` or `[` in column 1: that is the next NDJSON line or document (a pretty-printer
   * indents what is inside), so one truncated line never swallows the lines after it.
   */
  private continueRun(line: string, lineNo: number): void {
    const run = this.run!;
    if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    const first = line.charCodeAt(0);
    if (run.isArrayOfLines && !isBlank(line)) {
      let last = run.lines.length - 1;
      while (last > 0 && isBlank(run.lines[last]!)) last--;
      const previous = run.lines[last]!;
      if (previous.trim() === ']') {
        // The array closed on the line before (its brackets may not balance when an element is broken).
        this.resolveRun();
        this.readLine(line, lineNo);
        return;
      }
      if (!isNextArrayLine(previous, line)) {
        // Elements that end with their commas, then a line that is none (nor the inside of a pretty-printed
        // document): an array never closed (cut, or its `]` lost), named at its `[`, its elements read.
        // Without a comma it was a stray `[` before NDJSON lines.
        const hasComma = run.lines.some((held, i) => i > 0 && held.trimEnd().endsWith(','));
        if (hasComma && !isInsideDocumentLine(line)) {
          this.resolveRun();
          this.readLine(line, lineNo);
          return;
        }
        run.isArrayOfLines = false;
      }
    }
    // An element of an array written one element per line starts in column 1 too: it goes on the run, and
    // the array goes on, whatever its brackets (a broken element may close more than it opens), to its `]`.
    const isNewDocument = (first === OPEN_BRACE || first === OPEN_BRACKET) && !run.isArrayOfLines;
    const isClosed = run.depth <= 0 && !run.isArrayOfLines;
    if (isNewDocument || isClosed || run.chars > this.maxDocumentBytes) {
      this.resolveRun();
      this.readLine(line, lineNo);
      return;
    }
    while (run.firstLine + run.lines.length < lineNo) run.lines.push('');
    run.lines.push(line);
    run.chars += line.length + 1;
    run.depth = bracketDepth(line, run.depth);
  }

  /**
   * Decision: a run of lines that fail alone but parse together is read, as the documents they spell. That
   * is safe because JSON ignores line breaks between tokens, so the lines can only join into the value they
   * were written as; a break inside a string (a cut line) never parses, and is reported. What does not parse
   * is reported once for the whole run, naming its lines, with what to do.
   */
  private resolveRun(): void {
    const run = this.run!;
    this.run = undefined;
    this.mode = 'lines';
    if (run.lines.length === 1) {
      // A broken line of a CR-only part whose last piece opened a document that the next line did not go on.
      if (this.readCrSeparated(run.lines[0]!, run.firstLine, true)) return;
      this.malformedLine(run.lines[0]!, run.firstLine);
      return;
    }
    const text = run.lines.join('\n');
    if (run.isArrayOfLines) {
      // An array written one element per line: read whole, or element by element when one is broken.
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        if (this.readArrayOfLines(text, run.firstLine, 'the array', true)) return;
      }
      if (value !== undefined) {
        this.readValue(value, run.firstLine, '', new ValuePlace(text, 0, text.length, run.firstLine));
        return;
      }
    }
    const documents = splitDocuments(text);
    const isRead = documents.every((piece) => parses(text.slice(piece.start, piece.end)));
    if (!isRead && run.lines.slice(1).some(standsAlone)) {
      // Not one document after all: a truncated first line whose brackets never close, then lines that are
      // events on their own (indented, or holding pieces a CR alone ends). The first line is the broken one;
      // the others are read again, each as a line of the file — none is lost with the first.
      // A broken line among them opens no run of its own: each line is read again once, never again and
      // again (a file of truncated lines would otherwise be read in time quadratic in its length). A first
      // line of a CR-only part (events a CR alone ends, then the broken one) keeps its events: the lines after
      // it do not continue what it leaves open.
      if (!this.readCrSeparated(run.lines[0]!, run.firstLine, true))
        this.malformedLine(run.lines[0]!, run.firstLine);
      for (let i = 1; i < run.lines.length; i++) {
        const line = run.lines[i]!;
        if (line.length !== 0) this.readLine(line, run.firstLine + i, false);
      }
      return;
    }
    this.readSequence(text, documents, run.firstLine, 'lines');
  }

  /**
   * The offset of the first INVALID_BYTE in `text[start, end)`, or -1. Only a source that had a bad byte is
   * searched: for any other (the usual one) this costs nothing.
   */
  private invalidBytesAt(text: string, start = 0, end = text.length): number {
    if (!this.decoder.hasInvalid) return -1;
    // Searched in a slice (no copy), so that one of many documents never costs a search to the file's end.
    return (end === text.length ? text : text.slice(0, end)).indexOf(INVALID_BYTE, start);
  }

  /**
   * `piece`: where in line `lineNo` the text is, when it is not the whole line (` (part 2 of 3: CR alone ends
   * lines there)`, `readCrSeparated`); columns then count from the piece's start.
   */
  private malformedLine(line: string, lineNo: number, error: unknown = parseError(line), piece = ''): void {
    const invalid = this.invalidBytesAt(line);
    if (invalid !== -1) {
      this.fail({
        code: 'MALFORMED_LINE',
        file: this.file,
        line: lineNo,
        message:
          `line ${lineNo}${piece} holds ${invalidBytesWords(line, invalid, line.length, `column ${invalid + 1}`)}, ` +
          `${UNREAD_LINE_FOR_BAD_BYTES}`,
      });
      return;
    }
    const position = parsePosition(error);
    const column = position === undefined ? '' : ` (column ${position + 1})`;
    this.fail({
      code: 'MALFORMED_LINE',
      file: this.file,
      line: lineNo,
      message: `line ${lineNo}${piece} is not valid JSON: ${jsonErrorMessage(error)}${column}; fix or remove that line`,
    });
  }

  /** The whole file as one JSON document (a webhook body pretty-printed, or an array of bodies/lines). */
  private readDocument(withBom: string): void {
    const text = withoutByteOrderMark(withBom);
    this.lineNo = countLines(text);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      // An array never closed is read too (its `[` named): the file may have been cut after any element.
      if (this.readArrayOfLines(text, 1, 'the document', true)) return;
      if (this.readIndentedArray(text, error)) return;
      // NDJSON whose first line is broken: the other lines stand alone, so read it line by line. So is a file
      // whose line holds a value a CR alone ends beside a broken piece: a CR-only file joined to a document
      // cut short (`cat cut.json mac.ndjson`); read as documents, the value would be lost with the broken one.
      if (secondValueStandsAlone(text) || holdsCrEndedValue(text)) {
        this.mode = 'lines';
        this.lineNo = 0;
        const rest = this.splitLines(text);
        if (rest !== '') this.acceptLine(rest);
        return;
      }
      // Several documents one after the other (`cat a.json b.json`): each is read on its own. Cut by their
      // brackets (a body wrapped by hand may start a line with `{`); a piece that does not parse so is cut
      // again where a line starts with `{` in column 1, so that a broken one costs no other. An array written
      // one element per line among them is read element by element (`splitDocumentsOfFile`).
      const documents = splitDocumentsOfFile(text);
      if (documents.length > 1) {
        this.readSequence(text, documents, 1, 'document');
        return;
      }
      const invalid = this.invalidBytesAt(text);
      if (invalid !== -1) {
        const at = lineAndColumn(text, invalid);
        const where = `line ${at.line}, column ${at.column}`;
        this.fail({
          code: 'MALFORMED_LINE',
          file: this.file,
          line: at.line,
          message: `the file is one JSON document that holds ${invalidBytesWords(text, invalid, text.length, where)}, ${UNREAD_FOR_BAD_BYTES}`,
        });
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
    const firstLine = firstNonBlankLine(text);
    this.readValue(
      value,
      firstLine,
      'the document',
      new ValuePlace(text, skipBlank(text, 0), text.length, firstLine),
    );
  }

  /**
   * A pretty-printed array that does not parse (`JSON.stringify(events, null, 2)`, `json.dumps(…, indent=2)`):
   * `[` alone on its first line, each element starting on a line of its own at one indentation (the first
   * element's), `]` alone on the last line. Cut at those lines, each element is read on its own, so that a
   * broken one is one error at its line and column and costs nothing else. False, reading nothing, when the
   * text is not shaped so; `error` is the whole document's, said when no element shows what broke it.
   */
  private readIndentedArray(text: string, error: unknown): boolean {
    const lines = text.split('\n');
    let first = 0;
    while (first < lines.length && isBlank(lines[first]!)) first++;
    let last = lines.length - 1;
    while (last > first && isBlank(lines[last]!)) last--;
    if (lines[first]!.trim() !== '[' || lines[last]!.trim() !== ']') return false;
    let start = first + 1;
    while (start < last && isBlank(lines[start]!)) start++;
    const opener = lines[start]?.trimStart() ?? '';
    if (start >= last || (opener !== '{' && opener !== '[')) return false;
    const indent = lines[start]!.slice(0, lines[start]!.length - opener.length);
    const isStart = (line: string) =>
      line.startsWith(indent) && (line.charAt(indent.length) === '{' || line.charAt(indent.length) === '[');
    const starts: number[] = [];
    for (let i = start; i < last; i++) if (isStart(lines[i]!)) starts.push(i);
    if (starts.length < 2) return false;
    const array = `the array at lines ${first + 1}–${last + 1}`;
    let isBreakSaid = false;
    for (let k = 0; k < starts.length; k++) {
      const lineNo = starts[k]! + 1;
      const piece = lines
        .slice(starts[k], starts[k + 1] ?? last)
        .join('\n')
        .trimEnd();
      const hasComma = piece.endsWith(',');
      const element = hasComma ? piece.slice(0, -1) : piece;
      let value: unknown;
      try {
        value = JSON.parse(element);
      } catch (elementError) {
        const position = parsePosition(elementError);
        const at = position === undefined ? undefined : lineAndColumn(element, position);
        const where = at === undefined ? '' : ` (line ${lineNo + at.line - 1}, column ${at.column})`;
        isBreakSaid = true;
        this.fail({
          code: 'MALFORMED_LINE',
          file: this.file,
          line: at === undefined ? lineNo : lineNo + at.line - 1,
          message: `element ${k} of ${array}, from line ${lineNo}, is not valid JSON: ${jsonErrorMessage(elementError).replace(/ at position \d+/, '')}${where}; the other elements were read`,
        });
        continue;
      }
      this.readOne(value, lineNo, `the document[${k}]: `);
      const isLast = k === starts.length - 1;
      if (hasComma === !isLast) continue;
      isBreakSaid = true;
      this.fail({
        code: 'MALFORMED_LINE',
        file: this.file,
        line: lineNo,
        message: isLast
          ? `element ${k} of ${array}, from line ${lineNo}: a comma after the last element (JSON allows none); the element was read`
          : `element ${k} of ${array}, from line ${lineNo}: a comma is missing after it; the element was read`,
      });
    }
    if (!isBreakSaid) {
      // Every element parses, yet the whole does not: say what JSON.parse said of the whole.
      const position = parsePosition(error);
      const at = position === undefined ? undefined : lineAndColumn(text, position);
      this.fail({
        code: 'MALFORMED_LINE',
        file: this.file,
        line: at?.line ?? first + 1,
        message: `${array} does not parse: ${jsonErrorMessage(error)}${at === undefined ? '' : ` (line ${at.line}, column ${at.column})`}; its elements were read`,
      });
    }
    return true;
  }

  /**
   * A document that does not parse but is an array written one element per line — `[`, then lines that each
   * start with `{` or `[` (one element, and its comma), then `]` — is read element by element, so that one
   * broken element is one error at its line and costs nothing else. Answers false, reading nothing, when
   * `text` is not shaped so (a pretty-printed element spreads over lines that start otherwise). `text` starts
   * at line `firstLine` of the file (a run of NDJSON lines, one of its documents, or the whole file); `what`
   * names it in errors; `isOpenEndRead`: an array no `]` line closes is read too, with one error at its `[`.
   */
  private readArrayOfLines(
    text: string,
    firstLine = 1,
    what = 'the document',
    isOpenEndRead = false,
  ): boolean {
    const lines = text.split('\n');
    let first = 0;
    while (first < lines.length && isBlank(lines[first]!)) first++;
    let last = lines.length - 1;
    while (last > first && isBlank(lines[last]!)) last--;
    if (first >= last) return false;
    const elements: Array<{ lineNo: number; text: string; indent: number }> = [];
    /** Adds the element `piece` of line `i` (its text after `skipped` characters of the line); false if none. */
    const add = (i: number, piece: string, skipped = 0): boolean => {
      const element = piece.trim();
      if (element === '') return true;
      if (element.charAt(0) !== '{' && element.charAt(0) !== '[') return false;
      elements.push({
        lineNo: firstLine + i,
        text: element,
        indent: skipped + piece.length - piece.trimStart().length,
      });
      return true;
    };
    // `[` alone on its line, or before the first element on it (`[{…},`: JSON.stringify's, jq's arrays cut
    // after each comma, Python's json.dumps with a newline separator).
    const opening = lines[first]!;
    const bracketAt = opening.indexOf('[');
    if (bracketAt === -1 || opening.slice(0, bracketAt).trim() !== '') return false;
    const afterBracket = opening.slice(bracketAt + 1);
    if (afterBracket.trim() !== '' && !add(first, afterBracket, bracketAt + 1)) return false;
    // `]` alone on its line or after the last element on it (`{…}]`). Never closed (the file ended, or the next
    // line was no element): its elements, and one error for that.
    const closing = lines[last]!.trimEnd();
    const isOpenEnd = !closing.endsWith(']') || (closing.trim() !== ']' && parses(closing.replace(/,$/, '')));
    if (isOpenEnd && !isOpenEndRead) return false;
    for (let i = first + 1; i < last; i++) {
      if (!add(i, lines[i]!)) return false;
    }
    if (!add(last, isOpenEnd ? closing : closing.slice(0, -1))) return false;
    if (elements.length === 0) return false;
    if (isOpenEnd) {
      this.fail({
        code: 'MALFORMED_LINE',
        file: this.file,
        line: firstLine + first,
        message: `line ${firstLine + first} opens an array, one element a line, that no "]" line closes; its elements (lines ${elements[0]!.lineNo}–${firstLine + last}) were read: add the "]"`,
      });
    }
    const array = isOpenEnd
      ? `the array opened at line ${firstLine + first}`
      : `the array at lines ${firstLine + first}–${firstLine + last}`;
    for (let k = 0; k < elements.length; k++) {
      const { lineNo, text: element, indent } = elements[k]!;
      const hasComma = element.endsWith(',');
      let value: unknown;
      try {
        value = JSON.parse(hasComma ? element.slice(0, -1) : element);
      } catch (error) {
        const invalid = this.invalidBytesAt(element);
        const position = parsePosition(error);
        const column = position === undefined ? '' : ` (column ${indent + position + 1})`;
        const why = jsonErrorMessage(error).replace(/ at position \d+/, '');
        this.fail({
          code: 'MALFORMED_LINE',
          file: this.file,
          line: lineNo,
          message:
            invalid === -1
              ? `line ${lineNo} (element ${k} of ${array}) is not valid JSON: ${why}${column}; the other elements were read`
              : `line ${lineNo} (element ${k} of ${array}) holds ` +
                `${invalidBytesWords(element, invalid, element.length, `column ${indent + invalid + 1}`)}, ` +
                `${UNREAD_FOR_BAD_BYTES}; the other elements were read`,
        });
        continue;
      }
      this.readOne(value, lineNo, `${what}[${k}]: `);
      const isLast = k === elements.length - 1;
      // An array never closed may have been cut after any element: its last one's comma is no fault.
      if (hasComma === !isLast || (isOpenEnd && isLast)) continue;
      this.fail({
        code: 'MALFORMED_LINE',
        file: this.file,
        line: lineNo,
        message: isLast
          ? `line ${lineNo}: a comma after the last element of ${array} (JSON allows none); the element was read`
          : `line ${lineNo}: a comma is missing after the array element on line ${lineNo} (${array}); the element was read`,
      });
    }
    return true;
  }

  /**
   * `text` (starting at line `firstLine` of the file) as a sequence of JSON documents: each one that parses
   * is read; each one that does not is reported with its lines, line and column, and costs nothing else.
   */
  private readSequence(
    text: string,
    documents: ReadonlyArray<DocumentPiece>,
    firstLine: number,
    context: 'document' | 'lines',
  ): void {
    const cursor = new LineCursor(text, firstLine);
    let lastReportedLine = 0;
    for (const { start, end, isArrayOfLines } of documents) {
      const startLine = cursor.locate(start).line;
      if (isArrayOfLines === true) {
        // Its lines do not parse together: each element at its own line, a broken one named alone.
        const what = context === 'document' ? 'the document' : 'the array';
        if (this.readArrayOfLines(text.slice(start, end), startLine, what, true)) continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(text.slice(start, end));
      } catch (error) {
        const endLine = cursor.locate(lastNonBlank(text, start, end)).line;
        if (context === 'lines' && startLine === endLine) {
          // One NDJSON line that is simply broken: the usual message, once per line.
          if (startLine !== lastReportedLine) {
            lastReportedLine = startLine;
            this.malformedLine(
              text.slice(text.lastIndexOf('\n', start) + 1, lineEnd(text, start)),
              startLine,
            );
          }
          continue;
        }
        const lines = startLine === endLine ? `line ${startLine}` : `lines ${startLine}–${endLine}`;
        const invalid = this.invalidBytesAt(text, start, end);
        if (invalid !== -1) {
          const at = cursor.locate(invalid);
          const bad = invalidBytesWords(
            text,
            invalid,
            end,
            startLine === endLine ? `column ${at.column}` : `line ${at.line}, column ${at.column}`,
          );
          let message: string;
          if (startLine === endLine) {
            message = `line ${startLine} holds ${bad}, ${UNREAD_LINE_FOR_BAD_BYTES}`;
          } else if (context === 'lines') {
            message = `${lines} look like one JSON document spread over several lines, which holds ${bad}, ${UNREAD_FOR_BAD_BYTES}`;
          } else {
            message =
              `the JSON document at ${lines} (one of several in this file) holds ${bad}, ` +
              `${UNREAD_FOR_BAD_BYTES}; the documents before and after it were read`;
          }
          this.fail({ code: 'MALFORMED_LINE', file: this.file, line: at.line, message });
          continue;
        }
        // The engine's "at position N" counts from the document's start: say line and column instead.
        const position = parsePosition(error);
        const at = position === undefined ? undefined : cursor.locate(start + position);
        const why =
          jsonErrorMessage(error).replace(/ at position \d+/, '') +
          (at === undefined ? '' : ` (line ${at.line}, column ${at.column})`);
        this.fail({
          code: 'MALFORMED_LINE',
          file: this.file,
          line: at?.line ?? startLine,
          message:
            context === 'lines'
              ? `${lines} look like one JSON document spread over several lines (e.g. a pretty-printed webhook ` +
                `body) and it does not parse: ${why}; write it on one line, or put it in its own .json file`
              : `the JSON document at ${lines} (one of several in this file) does not parse: ${why}; ` +
                `the documents before and after it were read`,
        });
        continue;
      }
      const place = new ValuePlace(text, start, end, startLine);
      this.readValue(value, startLine, context === 'document' ? 'the document' : '', place);
    }
  }

  /**
   * `place`, for a value read from a document: where its text is, looked at only when the value has an
   * error, so that the error names the line of the field at fault rather than the value's first line.
   */
  private readValue(
    value: unknown,
    lineNo: number,
    what: string,
    place?: ValuePlace,
    isTextPlain = false,
  ): void {
    if (Array.isArray(value)) {
      const prefix = what === '' ? 'the array' : what;
      for (let i = 0; i < value.length; i++) {
        this.readOne(value[i], lineNo, `${prefix}[${i}]: `, place, i, isTextPlain);
      }
    } else {
      this.readOne(value, lineNo, '', place, undefined, isTextPlain);
    }
  }

  /** `isTextPlain`: the value was parsed from plain text (`isPlainJsonText`). */
  private readOne(
    value: unknown,
    lineNo: number,
    prefix: string,
    place?: ValuePlace,
    element?: number,
    isTextPlain = false,
  ): void {
    const line = parseContractLine(value, isTextPlain);
    if (line !== undefined) {
      if ('code' in line) {
        this.badEvent(lineNo, prefix, line.message, place, element);
        return;
      }
      this.batch.push(line);
      this.summary.events += 1;
      if (this.batch.length >= BATCH_SIZE) this.flush();
      // Told, never read: the event is rated as if the field were not there (a note, not an input error).
      const unknown = unknownLineFields(line, value);
      if (unknown !== undefined) {
        for (const field of unknown) {
          const reason = unknownLineFieldWords(field);
          this.sink.onIgnored?.({ file: this.file, line: lineNo, reason, count: 1, isUnreadField: true });
        }
      }
      return;
    }
    const parsed = parseEventValue(value, isTextPlain);
    if (!parsed.ok) {
      this.badEvent(lineNo, prefix, parsed.error.message, place, element);
      return;
    }
    this.sink.onWebhookBody?.(value);
    const { events, ignored, rejected } = parsed.value;
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      this.batch.push(event);
      // Kept (its idempotency key holds it), but a word Meta never wrote decides nothing: said, not silent.
      if (event.kind === 'status' && !META_STATUS_WORDS.includes(event.status)) {
        const reason = unknownStatusWordWords(event.status);
        this.sink.onIgnored?.({ file: this.file, line: lineNo, reason, count: 1, isWithoutEffect: true });
      }
    }
    this.summary.events += events.length;
    if (this.batch.length >= BATCH_SIZE) this.flush();
    for (let i = 0; i < ignored.length; i++) {
      const item = ignored[i]!;
      this.summary.ignored += item.count;
      this.sink.onIgnored?.({ file: this.file, line: lineNo, reason: item.reason, count: item.count });
    }
    for (let i = 0; i < rejected.length; i++) {
      this.badEvent(lineNo, prefix, rejected[i]!.message, place, element);
    }
  }

  /**
   * A BAD_EVENT error at the line of the field its message names, when the value spreads over several lines
   * (contract §3: file and line); where that field cannot be found, at the value's first line, saying so.
   */
  private badEvent(
    lineNo: number,
    prefix: string,
    message: string,
    place: ValuePlace | undefined,
    element: number | undefined,
  ): void {
    let line = lineNo;
    let said = prefix + message;
    if (place?.isSpread()) {
      const at = place.lineOf(message, element);
      if (at === undefined) said += ` (in the JSON document starting at line ${lineNo})`;
      else line = at;
    }
    this.fail({ code: 'BAD_EVENT', file: this.file, line, message: said });
  }

  private tooLarge(): void {
    if (this.mode === 'run') this.resolveRun();
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

  private notText(message: string): void {
    this.fail({ code: 'UNREADABLE_SOURCE', file: this.file, message });
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

/**
 * Whether the second non-blank line of `text` stands alone (`standsAlone`: a JSON object or array, or pieces a
 * CR alone separates): so the text is NDJSON, not one document.
 */
function secondValueStandsAlone(text: string): boolean {
  let seen = 0;
  let start = 0;
  while (start < text.length) {
    const end = text.indexOf('\n', start);
    const line = text.slice(start, end === -1 ? text.length : end).trim();
    start = end === -1 ? text.length : end + 1;
    if (line === '') continue;
    if (++seen < 2) continue;
    // Pieces a CR alone separates count too: a broken first line, then a CR-only file joined with `cat`.
    return standsAlone(line);
  }
  return false;
}

/** Whether `line[start..end]` is a JSON object or array on its own; parses only what is bracketed at both ends. */
function isWholeValue(line: string, start: number, end: number): boolean {
  const first = line.charCodeAt(start);
  const last = line.charCodeAt(end);
  if (!((first === OPEN_BRACE && last === CLOSE_BRACE) || (first === OPEN_BRACKET && last === CLOSE_BRACKET)))
    return false;
  try {
    JSON.parse(line.slice(start, end + 1));
    return true;
  } catch {
    return false;
  }
}

/** JSON's white space, and a byte-order mark (files concatenated with `cat`). */
function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a || c === 0xfeff;
}

/**
 * `lf`: lines end with LF (or CRLF: the CR is dropped with the line end). `cr`: with CR alone (classic Mac
 * OS, some exporters). `unknown`: no line end seen yet.
 */
type LineEnds = 'unknown' | 'lf' | 'cr';

/**
 * Decided from the first text that shows a line end: any LF means `lf`; a CR followed by something other
 * than LF, with no LF anywhere in that text, means `cr`. (Misjudged only for a first line longer than a read
 * chunk that holds a CR as white space between JSON tokens and no LF: not a file anyone writes.) A CR at the
 * very end of the text may be the first half of a CRLF: still undecided.
 */
function lineEndsOf(text: string): LineEnds {
  if (text.includes('\n')) return 'lf';
  const cr = text.indexOf('\r');
  return cr !== -1 && cr < text.length - 1 ? 'cr' : 'unknown';
}

/** A piece of a line between CRs (`crSeparatedPieces`): its value, or why it does not parse; blank: undefined. */
type CrPiece = { value: unknown } | { text: string; error: unknown } | undefined;

/**
 * How a line of an LF file that CR-only line ends separate is read (a CR-only file joined to an LF one: the
 * last line of the one and the first of the other are one line): its `pieces` between CRs, or its whole
 * `documents` cut by their brackets (a CR-only array written one element per line: its elements end in commas,
 * so the pieces alone do not parse). Undefined when it is neither:
 * - fewer than two non-blank pieces, or none a whole JSON object or array (an event line, a webhook body);
 * - a piece does not parse and the last piece opens a document left open, which the next lines may finish
 *   (`cat mac.ndjson body.json`: the body's `{` is on this line) — unless `isOpenEndFinal` says they do not.
 * Only asked of a line that does not parse: inside a valid line a CR is white space between tokens.
 */
function crSeparatedPieces(
  line: string,
  isOpenEndFinal = false,
):
  | { kind: 'pieces'; pieces: CrPiece[] }
  | { kind: 'documents'; documents: Array<{ start: number; end: number }> }
  | undefined {
  if (!line.includes('\r')) return undefined;
  let count = 0;
  let isAnyRead = false;
  let isAnyBroken = false;
  let last = '';
  const pieces = line.split('\r').map((piece): CrPiece => {
    // A byte-order mark at a piece's start: a file joined with `cat` after a CR-only one (no content).
    const text = withoutByteOrderMark(piece);
    if (isBlank(text)) return undefined;
    count++;
    last = text;
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null) isAnyRead = true;
      return { value };
    } catch (error) {
      isAnyBroken = true;
      return { text, error };
    }
  });
  if (count < 2 || !isAnyRead) return undefined;
  if (!isAnyBroken) return { kind: 'pieces', pieces };
  if (!isOpenEndFinal && opensDocument(last)) return undefined;
  const documents = splitDocuments(line, false);
  if (documents.length > 1 && documents.every((piece) => parses(line.slice(piece.start, piece.end)))) {
    return { kind: 'documents', documents };
  }
  return { kind: 'pieces', pieces };
}

/**
 * Whether a line of `text` holds, after a CR alone, a whole JSON object or array: a line of a CR-only file
 * starts there. Asked only of a document that does not parse: inside a valid one a CR is white space.
 */
function holdsCrEndedValue(text: string): boolean {
  if (!text.includes('\r')) return false;
  for (const line of text.split('\n')) {
    const cr = line.indexOf('\r');
    if (cr !== -1 && wholePiecesOf(line.slice(cr + 1)) >= 1) return true;
  }
  return false;
}

/** How many of the pieces a CR alone separates in `line` are each a whole JSON object or array. */
function wholePiecesOf(line: string): number {
  let whole = 0;
  for (const piece of line.split('\r')) {
    let start = 0;
    let end = piece.length - 1;
    while (start <= end && isJsonSpace(piece.charCodeAt(start))) start++;
    while (end > start && isJsonSpace(piece.charCodeAt(end))) end--;
    if (start <= end && !isEmptyValue(piece, start, end) && isWholeValue(piece, start, end)) whole++;
  }
  return whole;
}

function parseError(text: string): unknown {
  try {
    JSON.parse(text);
  } catch (error) {
    return error;
  }
  return undefined;
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;

/** Whether `line` starts an object or array and leaves it open: maybe the first line of a longer document. */
/**
 * Whether a line read on its own gives an event or body: a whole JSON object or array (white space around it
 * allowed), or pieces a CR alone separates of which one is.
 */
function standsAlone(line: string): boolean {
  let start = 0;
  let end = line.length - 1;
  while (start <= end && isJsonSpace(line.charCodeAt(start))) start++;
  while (end > start && isJsonSpace(line.charCodeAt(end))) end--;
  // `{}` and `[]` alone are lines of pretty-printed bodies too (an empty element): they prove nothing.
  if (start <= end && !isEmptyValue(line, start, end) && isWholeValue(line, start, end)) return true;
  return crSeparatedPieces(line, true)?.kind === 'pieces';
}

/** Whether `line[start..end]` is `{}` or `[]`, white space inside allowed. */
function isEmptyValue(line: string, start: number, end: number): boolean {
  let inner = start + 1;
  while (inner < end && isJsonSpace(line.charCodeAt(inner))) inner++;
  return inner === end;
}

/**
 * Whether `line` can follow `previous` in an array written one element per line: `]`, or an element starting
 * with `{` or `[` after the array's `[` or an element ending with its comma, or itself ending with one (so that
 * NDJSON lines after a stray `[`, which end with none, end the run at the second of them).
 */
export function isNextArrayLine(previous: string, line: string): boolean {
  const trimmed = line.trim();
  if (trimmed === ']') return true;
  if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) return false;
  // `{` or `[` alone opens a document spread over lines (a pretty-printed body), never a whole element.
  if (trimmed.length === 1) return false;
  const before = previous.trimEnd();
  // An element ending with its comma is inside an array too, whatever the line before missed (named later).
  return before.endsWith(',') || before.trim() === '[' || trimmed.endsWith(',');
}

/**
 * Whether `line` can only be the inside or the end of a document spread over lines: it starts with white space
 * (a pretty-printer indents what is inside) or closes a bracket (`}`, `],`). A line that ends an array written
 * one element per line never is one: an NDJSON line, or anything else in column 1.
 */
export function isInsideDocumentLine(line: string): boolean {
  const first = line.charCodeAt(0);
  return first === 0x20 || first === 0x09 || first === CLOSE_BRACE || first === CLOSE_BRACKET;
}

function opensDocument(line: string): boolean {
  const first = firstNonBlankChar(line);
  return (first === '{' || first === '[') && bracketDepth(line, 0) > 0;
}

/**
 * `depth` plus the brackets `line` opens minus those it closes, outside strings. A string still open at the
 * end of the line ends there: JSON strings cannot hold a raw line break.
 */
function bracketDepth(line: string, depth: number): number {
  let isInString = false;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (isInString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) isInString = false;
    } else if (c === QUOTE) isInString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return depth;
}

/**
 * Cuts `text` into consecutive JSON documents, as [start, end) offsets of their non-blank text. A document
 * that is an object or array ends at the bracket that closes its first one. `isRecovering`: one left open
 * ends where a line starts with `{` or `[` in column 1 (the next document: pretty-printers indent what is
 * inside), so that one broken document never costs the ones after it; so does text that is neither. Cutting
 * starts at `from`.
 */
function splitDocuments(text: string, isRecovering = true, from = 0): Array<{ start: number; end: number }> {
  const documents: Array<{ start: number; end: number }> = [];
  let at = skipBlank(text, from);
  while (at < text.length) {
    const end = documentEnd(text, at, isRecovering);
    documents.push({ start: at, end });
    at = skipBlank(text, end);
  }
  return documents;
}

/** A document of a file or run, as `splitDocuments` cuts them. */
interface DocumentPiece {
  start: number;
  end: number;
  /** The piece is such an array, which does not parse whole (a broken element, a comma missing, no `]`). */
  isArrayOfLines?: boolean;
}

/**
 * Cuts a file that is not one document into its documents: by their brackets, a piece that does not parse so
 * cut again as `splitDocuments` recovers. A piece starting with a line that is `[` alone, then elements one a
 * line (`arrayOfLinesEnd`), is that array, to its `]` line or its last element: when it does not parse it is
 * read element by element, never cut at each element's `{` (which would name every element's comma).
 * Linear: each line is looked at a bounded number of times.
 */
function splitDocumentsOfFile(text: string): DocumentPiece[] {
  const pieces: DocumentPiece[] = [];
  /** Pushes the array of lines at `at`, if one starts there; returns where the next piece starts, or -1. */
  const array = (at: number): number => {
    const end = arrayOfLinesEnd(text, at);
    if (end === -1) return -1;
    pieces.push(parses(text.slice(at, end)) ? { start: at, end } : { start: at, end, isArrayOfLines: true });
    return skipBlank(text, end);
  };
  let at = skipBlank(text, 0);
  while (at < text.length) {
    const next = array(at);
    if (next !== -1) {
      at = next;
      continue;
    }
    const end = documentEnd(text, at, false);
    if (parses(text.slice(at, end))) {
      pieces.push({ start: at, end });
      at = skipBlank(text, end);
      continue;
    }
    // Cut again within the piece, as `splitDocuments(text.slice(0, end), true, at)` does; an array of lines
    // that starts inside it is read whole, and the cutting goes on after it.
    const within = text.slice(0, end);
    const first = at;
    let from = at;
    at = -1;
    while (from < end) {
      const afterArray = from === first ? -1 : array(from);
      if (afterArray !== -1) {
        at = afterArray;
        break;
      }
      const pieceEnd = documentEnd(within, from, true);
      pieces.push({ start: from, end: pieceEnd });
      from = skipBlank(within, pieceEnd);
    }
    if (at === -1) at = skipBlank(text, end);
  }
  return pieces;
}

/**
 * Where the array written one element per line that starts at `at` ends: `at` is a `[` alone on its line,
 * the lines after it elements (`isNextArrayLine`: each starts with `{` or `[`, after the `[` or a comma, or
 * ends with a comma), blank lines allowed between; it ends after its `]` line, or, never closed, after its
 * last element (the next line is no element of it, or the text ends). -1 when `at` starts no such array.
 */
function arrayOfLinesEnd(text: string, at: number): number {
  if (text.charCodeAt(at) !== OPEN_BRACKET) return -1;
  for (let before = at - 1; before >= 0 && text.charCodeAt(before) !== NEWLINE; before--) {
    if (!isJsonSpace(text.charCodeAt(before))) return -1;
  }
  let lineEndAt = lineEnd(text, at);
  if (text.slice(at + 1, lineEndAt).trim() !== '') return -1;
  let previous = '[';
  let end = -1;
  while (lineEndAt < text.length) {
    const start = lineEndAt + 1;
    lineEndAt = lineEnd(text, start);
    const line = text.slice(start, lineEndAt);
    if (isBlank(line)) continue;
    if (!isNextArrayLine(previous, line)) {
      // Indented, or closing what an element opened: a pretty-printed document, not such an array.
      if (isInsideDocumentLine(line)) return -1;
      break;
    }
    if (line.trim() === ']') return end === -1 ? -1 : start + line.indexOf(']') + 1;
    previous = line;
    end = start + line.trimEnd().length;
  }
  return end;
}

/** Whether `text` is one JSON document. */
export function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Where the document at `start` ends; without `isRecovering`, a container ends at its closing bracket only. */
function documentEnd(text: string, start: number, isRecovering: boolean): number {
  const opener = text.charCodeAt(start);
  const isContainer = opener === OPEN_BRACE || opener === OPEN_BRACKET;
  let depth = 0;
  let isInString = false;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === NEWLINE) {
      isInString = false;
      const next = text.charCodeAt(i + 1);
      if ((next === OPEN_BRACE || next === OPEN_BRACKET) && (isRecovering || !isContainer)) return i + 1;
    } else if (!isContainer) {
      continue;
    } else if (isInString) {
      if (c === BACKSLASH && text.charCodeAt(i + 1) !== NEWLINE) i++;
      else if (c === QUOTE) isInString = false;
    } else if (c === QUOTE) {
      isInString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (--depth === 0) return i + 1;
    }
  }
  return text.length;
}

function skipBlank(text: string, from: number): number {
  let at = from;
  while (at < text.length) {
    const c = text.charCodeAt(at);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0xfeff) break;
    at++;
  }
  return at;
}

/** The offset of the last non-blank character in [start, end). */
function lastNonBlank(text: string, start: number, end: number): number {
  let at = end - 1;
  while (at > start && isBlank(text.charAt(at))) at--;
  return at;
}

function lineEnd(text: string, from: number): number {
  const newline = text.indexOf('\n', from);
  return newline === -1 ? text.length : newline;
}

/**
 * Where a value read from a document is written: `text` from `start` to `end`, its first line `firstLine`.
 * Made for every document, looked at only for one with an error; the text is then indexed once (however
 * many errors the value has) and lines counted from the value's start, not the file's.
 */
class ValuePlace {
  private index: JsonTextIndex | undefined;
  private cursor: LineCursor | undefined;

  constructor(
    private readonly text: string,
    private readonly start: number,
    private readonly end: number,
    private readonly firstLine: number,
  ) {}

  /** The value is written over more than one line (else its first line is the line of any field). */
  isSpread(): boolean {
    const newline = this.text.indexOf('\n', this.start);
    return newline !== -1 && newline < lastNonBlank(this.text, this.start, this.end);
  }

  /**
   * The line of the field `message` names (parse-event's words), in the value or, for an array, in its
   * element `element`; `undefined` when it cannot be told.
   */
  lineOf(message: string, element: number | undefined): number | undefined {
    this.index ??= new JsonTextIndex(this.text, this.start, this.end);
    const offset = offsetOfError(this.index, element === undefined ? [] : [element], message);
    if (offset === undefined) return undefined;
    this.cursor ??= new LineCursor(this.text, this.firstLine, this.start);
    return this.cursor.locate(offset).line;
  }
}

/** Line and column of offsets in `text`; asked mostly in increasing order, each costs only the text since the last. */
class LineCursor {
  private offset: number;
  private line: number;
  private lineStart: number;

  /** `from`: an offset on line `firstLine` (0: the text's start), where counting starts; none before it is asked. */
  constructor(
    private readonly text: string,
    private readonly firstLine: number,
    private readonly from = 0,
  ) {
    this.offset = from;
    this.line = firstLine;
    this.lineStart = from;
  }

  locate(offset: number): { line: number; column: number } {
    if (offset < this.offset) {
      this.offset = this.from;
      this.line = this.firstLine;
      this.lineStart = this.from;
    }
    for (let at = this.text.indexOf('\n', this.offset); at !== -1 && at < offset;) {
      this.line++;
      this.lineStart = at + 1;
      at = this.text.indexOf('\n', at + 1);
    }
    this.offset = offset;
    return { line: this.line, column: offset - this.lineStart + 1 };
  }
}

/**
 * What a byte that is not UTF-8 becomes in the text read, instead of the U+FFFD a decoder puts there without a
 * word (two ids differing only in that byte would become one id: two messages merged, a charge lost). It is
 * SUB, ASCII's character for one found invalid; JSON allows no raw control character, so a line or document
 * holding it never parses, whichever way it is read, and is reported (`invalidBytesAt`). Looked for only in a
 * source that had a bad byte: a genuine SUB there (never valid JSON either) is reported as one too.
 */
const INVALID_BYTE = '\u001a';

/** Why what holds a bad byte is not read, and what to do (after the words of `invalidBytesWords`). */
const UNREAD_FOR_BAD_BYTES = 'so its ids cannot be read as written; save the file as UTF-8';
/** The same, for one line. */
const UNREAD_LINE_FOR_BAD_BYTES = `${UNREAD_FOR_BAD_BYTES}, or fix or remove that line`;

/** `a byte that is not valid UTF-8 (WHERE)`, or `N bytes … (the first at WHERE)`: those in `text[first, end)`. */
function invalidBytesWords(text: string, first: number, end: number, where: string): string {
  const within = end === text.length ? text : text.slice(0, end);
  let count = 0;
  for (let at = first; at !== -1; at = within.indexOf(INVALID_BYTE, at + 1)) count++;
  return count === 1
    ? `a byte that is not valid UTF-8 (${where})`
    : `${count} bytes that are not valid UTF-8 (the first at ${where})`;
}

/**
 * Decodes a source's bytes chunk by chunk. A character cut by a chunk's end waits for the next chunk, so only
 * bytes that are not UTF-8 — a sequence cut by the end of the source included — become INVALID_BYTE, one each.
 * The usual chunk costs the native decoder and one scan for U+FFFD (see `decodeUtf8MarkingInvalid`).
 */
class ChunkDecoder {
  /** Whether a bad byte was found: until then no text is searched for INVALID_BYTE. */
  hasInvalid = false;
  /** Whether the text the last `write` gave is plain (`isPlainJsonText`): its chunk's, with no cut before. */
  isLastPlain = false;
  /** The first 1–3 bytes of a character cut by the end of the last chunk. */
  private cut: Uint8Array | undefined;

  write(chunk: Uint8Array): string {
    this.isLastPlain = this.cut === undefined && isPlainJsonText(chunk);
    const bytes = this.cut === undefined ? chunk : Buffer.concat([this.cut, chunk]);
    const end = endOfWholeCharacters(bytes);
    this.cut = end === bytes.length ? undefined : Buffer.from(bytes.subarray(end)); // a copy: 1–3 bytes
    return this.decode(end === bytes.length ? bytes : bytes.subarray(0, end));
  }

  /** What the last chunk left cut: a character the source ends inside of, so bytes that are not UTF-8. */
  end(): string {
    const cut = this.cut;
    this.cut = undefined;
    return cut === undefined ? '' : this.decode(cut);
  }

  private decode(bytes: Uint8Array): string {
    const { text, hasInvalid } = decodeUtf8MarkingInvalid(bytes);
    if (!hasInvalid) return text;
    this.hasInvalid = true;
    return text.replaceAll(INVALID_UTF8_MARK, INVALID_BYTE);
  }
}

/**
 * Where the last character that `bytes` holds whole ends: before a lead byte in the last three whose
 * sequence needs more bytes than are left. Cut there, `bytes` decodes as it would with what follows, since
 * no sequence, well-formed or not, reaches across the cut. Any other cut byte is left for the decoder to mark.
 */
function endOfWholeCharacters(bytes: Uint8Array): number {
  const length = bytes.length;
  for (let back = 1; back <= 3 && back <= length; back++) {
    const byte = bytes[length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: its lead is further back
    const needs = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needs > back ? length - back : length;
  }
  return length;
}

/** Bytes looked at to tell text from binary: enough for any file signature and a fair sample. */
const SNIFF_BYTES = 512;

/**
 * Why the first chunk of a source is not UTF-8 text, or undefined when it is. Binary means: a known
 * signature, a NUL byte (never in JSON text), or a quarter of the sample not UTF-8. A few stray Latin-1
 * bytes are not enough: such a file is still read, and its lines with bad bytes are reported one by one.
 */
export function describeNotText(chunk: Buffer | string): string | undefined {
  if (typeof chunk === 'string') {
    const sample = chunk.slice(0, SNIFF_BYTES);
    let replaced = 0;
    for (let i = 0; i < sample.length; i++) if (sample.charCodeAt(i) === 0xfffd) replaced++;
    if (startsLikeJson(sample)) return undefined;
    const evidence = [];
    if (sample.includes('\u0000')) evidence.push('NUL bytes');
    if (replaced * 4 > sample.length) evidence.push('invalid UTF-8');
    return evidence.length === 0 ? undefined : notTextMessage(evidence);
  }
  const sample = chunk.subarray(0, SNIFF_BYTES);
  if ((sample[0] === 0xff && sample[1] === 0xfe) || (sample[0] === 0xfe && sample[1] === 0xff)) {
    return 'not a UTF-8 text file: it starts with a UTF-16 byte-order mark; convert it to UTF-8 first (e.g. iconv -f UTF-16 -t UTF-8 FILE)';
  }
  const endianness = utf16WithoutMark(sample);
  if (endianness !== undefined) return `not a UTF-8 text file but ${utf16WithoutMarkWords(endianness)}`;
  const signature = binarySignatureOf(sample);
  // Text that starts as JSON does is events, whatever a later line holds (a NUL left by a crash, a Latin-1
  // line): each bad line is named on its own, and the rest read.
  if (signature === undefined && startsLikeJson(sample.toString('latin1'))) return undefined;
  const evidence = signature === undefined ? [] : [`${signature.name} signature`];
  if (sample.includes(0)) evidence.push('NUL bytes');
  if (invalidUtf8Bytes(sample) * 4 > sample.length) evidence.push('invalid UTF-8');
  if (evidence.length === 0) return undefined;
  const how = signature?.decompress === undefined ? '' : ` (${signature.name}: ${signature.decompress})`;
  return notTextMessage(evidence) + how;
}

/**
 * Whether `text` starts as a JSON object or array of events does (a byte-order mark and white space allowed
 * before): `{` or `[`, then `"`, `{`, `[`, `}` or `]` — not the NUL of UTF-16 without its mark.
 */
function startsLikeJson(text: string): boolean {
  const match = /^(?:\ufeff|\u00ef\u00bb\u00bf)?[ \t\r\n]*[{[][ \t\r\n]*(.)/.exec(text);
  return match !== null && '"{[}]'.includes(match[1]!);
}

function notTextMessage(evidence: string[]): string {
  return (
    `not a text file: its first bytes look binary (${evidence.join(', ')}); ` +
    `if it is compressed, decompress it first`
  );
}

/** Bytes of `bytes` that are not part of a well-formed UTF-8 sequence (a sequence cut by the end is fine). */
function invalidUtf8Bytes(bytes: Uint8Array): number {
  let invalid = 0;
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    const length =
      lead < 0x80
        ? 1
        : lead >= 0xc2 && lead <= 0xdf
          ? 2
          : lead >= 0xe0 && lead <= 0xef
            ? 3
            : lead >= 0xf0 && lead <= 0xf4
              ? 4
              : 0;
    if (length === 0) {
      invalid++;
      i++;
      continue;
    }
    let k = 1;
    while (k < length && i + k < bytes.length && (bytes[i + k]! & 0xc0) === 0x80) k++;
    if (k < length && i + k < bytes.length) {
      invalid++;
      i++;
      continue;
    }
    i += k;
  }
  return invalid;
}
