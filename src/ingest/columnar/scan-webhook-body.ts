// A strict byte scanner of one Meta webhook body of message statuses, written on one line of NDJSON, for
// the columnar byte reader (read-columnar.ts), beside `scanContractLine`. Webhook bodies were the one kind of
// line the byte reader still gave to JSON.parse and parse-event, ≈ 4 µs a body with `ColumnarRater.add`:
// 13 % of the bench file's lines, a third of its reading time (≈ 1 µs here). As `scanContractLine` does, it
// ACCEPTS a body only when it is certain that `readEventSources` reads that line, alone in NDJSON, as the
// status events `toStatusEvents` makes of it, in that order, with no error and no note; anything else it
// REFUSES (returns false), and the caller reads the line the reader's way. Accepting a body the reader reads
// otherwise would be a money bug; refusing one costs only speed.
//
// What it accepts, exactly (anything else is refused), in the shape Meta posts (webhooks.md):
//   {"object":"whatsapp_business_account","entry":[{"id":WABA,"changes":[{"field":"messages","value":
//     {"messaging_product":…,"metadata":{"display_phone_number":…,"phone_number_id":NUMBER},
//      "statuses":[STATUS, …]}}]}]}
// - The members of each object in any order, each at most once, with spaces and tabs around the tokens as
//   `scanContractLine` allows them; only the keys above and the status's below (an unknown key may be one the
//   reader reads or notes: refused). One entry, one change, one to MAX_SCANNED_STATUSES statuses; no
//   `messages`, `contacts` or `errors` in the value (the reader reads or notes them).
// - Strings as `scanContractLine` reads them: printable ASCII without a backslash, so that the line is plain
//   (parse-event's `isPlainJsonText`): no string the reader refuses, marks or rewrites for its characters.
// - WABA (`entry[].id`), business number (`phone_number_id`), a status's `id` and `recipient_id`: non-empty
//   strings of at most MAX_ID_BYTES; `recipient_id` one the reader keeps as written (`isUserKeptAsWritten`).
//   `messaging_product` and `display_phone_number` (read by nobody) strings.
// - A status: `id`, `status` (sent, delivered, read or failed: the words the rater knows), `timestamp` (as
//   `scanContractLine` reads `at`: calendar's `instantMs`) and `recipient_id`, all required; `pricing` and
//   `conversation` an object of valid JSON nested at most MAX_EVIDENCE_DEPTH deep, or null; `errors` and
//   `biz_opaque_callback_data` (which the reader does not read) any valid JSON value as deep. Not
//   `recipient_type` (a group's status is another event), `recipient_user_id` or the participants' ids.
// - At most MAX_SCANNED_BODY_BYTES bytes: fewer than half the values the reader allows a body
//   (MAX_WEBHOOK_VALUES; every value takes two bytes at least), so its count never refuses one accepted.

import type { MetaConversationEvidence, MetaPricingEvidence, StatusEvent } from '../../core/events.js';
import { conversationEvidence, MAX_ID_BYTES, MAX_WEBHOOK_VALUES, pricingEvidence } from '../parse-event.js';
import {
  CLOSE_BRACE,
  CLOSE_BRACKET,
  COLON,
  COMMA,
  instantAt,
  isUserKeptAsWritten,
  isWordAt,
  jsonValueEnd,
  OPEN_BRACE,
  OPEN_BRACKET,
  plainString,
  QUOTE,
  skipSpace,
  STATUS_WORDS,
  valueEnd,
  WORD_NULL,
  wordAt,
} from './scan-contract-line.js';

/** The most statuses of one body the scanner takes (Meta batches at most 1,000 updates in a webhook). */
export const MAX_SCANNED_STATUSES = 1000;
/** The longest body the scanner takes, in bytes (see the first comment). */
export const MAX_SCANNED_BODY_BYTES = MAX_WEBHOOK_VALUES;
/** The deepest `pricing`, `conversation`, `errors` or `biz_opaque_callback_data` may nest (itself 1). */
export const MAX_EVIDENCE_DEPTH = 16;

const STATUS_NAMES = ['', 'sent', 'delivered', 'read', 'failed'] as const;

/**
 * What `scanWebhookBody` read of an accepted body, reused body after body. Byte ranges are offsets in the
 * scanned buffer; a status's `pricing` and `conversation` ranges are -1 when absent or null. The status
 * codes are `scanContractLine`'s (STATUS_SENT…).
 */
export class ScannedBody {
  wabaStart = -1;
  wabaEnd = -1;
  businessStart = -1;
  businessEnd = -1;
  /** Statuses read, in the body's order. */
  count = 0;
  idStart = new Int32Array(4);
  idEnd = new Int32Array(4);
  userStart = new Int32Array(4);
  userEnd = new Int32Array(4);
  pricingStart = new Int32Array(4);
  pricingEnd = new Int32Array(4);
  conversationStart = new Int32Array(4);
  conversationEnd = new Int32Array(4);
  status = new Uint8Array(4);
  atMs = new Float64Array(4);

  /** Room for status `k` (k ≤ MAX_SCANNED_STATUSES), its ranges reset to absent. */
  room(k: number): void {
    if (k >= this.idStart.length) {
      const size = Math.min(this.idStart.length * 4, MAX_SCANNED_STATUSES);
      const grownInt = (old: Int32Array) => {
        const grown = new Int32Array(size);
        grown.set(old);
        return grown;
      };
      this.idStart = grownInt(this.idStart);
      this.idEnd = grownInt(this.idEnd);
      this.userStart = grownInt(this.userStart);
      this.userEnd = grownInt(this.userEnd);
      this.pricingStart = grownInt(this.pricingStart);
      this.pricingEnd = grownInt(this.pricingEnd);
      this.conversationStart = grownInt(this.conversationStart);
      this.conversationEnd = grownInt(this.conversationEnd);
      const status = new Uint8Array(size);
      status.set(this.status);
      this.status = status;
      const atMs = new Float64Array(size);
      atMs.set(this.atMs);
      this.atMs = atMs;
    }
    this.pricingStart[k] = this.pricingEnd[k] = -1;
    this.conversationStart[k] = this.conversationEnd[k] = -1;
  }
}

/**
 * An object's keys, in bytes, after an unused first (`wordAt`'s numbering: a key's number is its index), and
 * by first byte the number of the one key starting with it (0: none; -1: several, looked for in turn).
 */
interface Keys {
  words: readonly Uint8Array[];
  byFirstByte: Int8Array;
}
function keysOf(...names: string[]): Keys {
  const words = ['', ...names].map((name) => Buffer.from(name, 'latin1'));
  const byFirstByte = new Int8Array(256);
  for (let k = 1; k < words.length; k++) {
    const first = words[k]![0]!;
    byFirstByte[first] = byFirstByte[first] === 0 ? k : -1;
  }
  return { words, byFirstByte };
}
const BODY_KEYS = keysOf('object', 'entry');
const ENTRY_KEYS = keysOf('id', 'changes');
const CHANGE_KEYS = keysOf('field', 'value');
const VALUE_KEYS = keysOf('messaging_product', 'metadata', 'statuses');
const METADATA_KEYS = keysOf('display_phone_number', 'phone_number_id');
const STATUS_KEYS = keysOf(
  'id',
  'status',
  'timestamp',
  'recipient_id',
  'pricing',
  'conversation',
  'errors',
  'biz_opaque_callback_data',
);
const S_ID = 1;
const S_STATUS = 2;
const S_TIMESTAMP = 3;
const S_RECIPIENT = 4;
const S_PRICING = 5;
const S_CONVERSATION = 6;
const STATUS_REQUIRED = (1 << S_ID) | (1 << S_STATUS) | (1 << S_TIMESTAMP) | (1 << S_RECIPIENT);
const OBJECT_WORDS = ['', 'whatsapp_business_account'].map((word) => Buffer.from(word, 'latin1'));
const FIELD_WORDS = ['', 'messages'].map((word) => Buffer.from(word, 'latin1'));

/** Where the value of the member `keyOfMember` read last starts (after its colon and white space). */
let valueAt = 0;
/** Whether `afterMember` met the container's end (else a comma, and another member or item follows). */
let isClosed = false;

/**
 * The number of the key of the member written at `at` (its opening quote) among `keys`, with `valueAt`
 * where its value starts; 0 for any other key, or for no member there.
 */
function keyOfMember(bytes: Uint8Array, at: number, end: number, keys: Keys): number {
  if (bytes[at] !== QUOTE) return 0;
  const candidate = keys.byFirstByte[bytes[at + 1]!]!;
  let key = 0;
  if (candidate > 0) {
    const word = keys.words[candidate]!;
    const stop = at + 1 + word.length;
    if (stop < end && bytes[stop] === QUOTE && isWordAt(bytes, at + 1, end, word)) {
      key = candidate;
      valueAt = stop + 1;
    }
  } else if (candidate < 0) {
    key = wordAt(bytes, at + 1, end, keys.words);
    valueAt = valueEnd;
  }
  if (key === 0) return 0;
  const colon = skipSpace(bytes, valueAt, end);
  if (bytes[colon] !== COLON) return 0;
  valueAt = skipSpace(bytes, colon + 1, end);
  return key;
}

/**
 * After a value ending at `at`: past a comma and white space (`isClosed` false), or past `close` (true); else
 * -1.
 */
function afterMember(bytes: Uint8Array, at: number, end: number, close: number): number {
  const i = skipSpace(bytes, at, end);
  if (bytes[i] === COMMA) {
    isClosed = false;
    return skipSpace(bytes, i + 1, end);
  }
  if (bytes[i] !== close) return -1;
  isClosed = true;
  return i + 1;
}

/** The end of an id's content (a plain string at `at`: non-empty, at most MAX_ID_BYTES), or -1. */
function idEnd(bytes: Uint8Array, at: number, end: number): number {
  if (bytes[at] !== QUOTE) return -1;
  const stop = plainString(bytes, at, end);
  return stop === -1 || stop === at + 1 || stop - at - 1 > MAX_ID_BYTES ? -1 : stop;
}

/** Past a plain string at `at` (any length), or -1. */
function afterPlainString(bytes: Uint8Array, at: number, end: number): number {
  return bytes[at] === QUOTE && plainString(bytes, at, end) !== -1 ? valueEnd : -1;
}

/** An array at `at` of exactly one object, scanned by `scan` (from its `{`): past the `]`, or -1. */
function afterOneObject(
  bytes: Uint8Array,
  at: number,
  end: number,
  out: ScannedBody,
  scan: (bytes: Uint8Array, at: number, end: number, out: ScannedBody) => number,
): number {
  if (bytes[at] !== OPEN_BRACKET) return -1;
  const i = skipSpace(bytes, at + 1, end);
  if (bytes[i] !== OPEN_BRACE) return -1;
  const after = scan(bytes, i, end, out);
  if (after === -1) return -1;
  const close = skipSpace(bytes, after, end);
  return bytes[close] === CLOSE_BRACKET ? close + 1 : -1;
}

/**
 * Scans the line `bytes[start, end)` (without its line end). True, with `out` filled, when the line is a
 * webhook body of statuses the reader reads as `toStatusEvents(bytes, out)` and nothing else; false when it
 * is anything else or anything unusual (see this module's first comment).
 */
export function scanWebhookBody(bytes: Uint8Array, start: number, end: number, out: ScannedBody): boolean {
  if (start >= end || bytes[start] !== OPEN_BRACE || end - start > MAX_SCANNED_BODY_BYTES) return false;
  out.wabaStart = out.wabaEnd = out.businessStart = out.businessEnd = -1;
  out.count = 0;
  let i = skipSpace(bytes, start + 1, end);
  let seen = 0;
  for (;;) {
    const key = keyOfMember(bytes, i, end, BODY_KEYS);
    if (key === 0 || (seen & (1 << key)) !== 0) return false;
    seen |= 1 << key;
    i = valueAt;
    if (key === 1) {
      if (bytes[i] !== QUOTE || wordAt(bytes, i + 1, end, OBJECT_WORDS) === 0) return false;
      i = valueEnd;
    } else {
      i = afterOneObject(bytes, i, end, out, scanEntry);
      if (i === -1) return false;
    }
    i = afterMember(bytes, i, end, CLOSE_BRACE);
    if (i === -1) return false;
    if (isClosed) break;
  }
  return seen === 0b110 && skipSpace(bytes, i, end) === end;
}

/** `entry[0]`, from its `{`: past its `}`, or -1. */
function scanEntry(bytes: Uint8Array, at: number, end: number, out: ScannedBody): number {
  let i = skipSpace(bytes, at + 1, end);
  let seen = 0;
  for (;;) {
    const key = keyOfMember(bytes, i, end, ENTRY_KEYS);
    if (key === 0 || (seen & (1 << key)) !== 0) return -1;
    seen |= 1 << key;
    i = valueAt;
    if (key === 1) {
      const stop = idEnd(bytes, i, end);
      if (stop === -1) return -1;
      out.wabaStart = i + 1;
      out.wabaEnd = stop;
      i = valueEnd;
    } else {
      i = afterOneObject(bytes, i, end, out, scanChange);
      if (i === -1) return -1;
    }
    i = afterMember(bytes, i, end, CLOSE_BRACE);
    if (i === -1) return -1;
    if (isClosed) return seen === 0b110 ? i : -1;
  }
}

/** `changes[0]`, from its `{`: past its `}`, or -1. */
function scanChange(bytes: Uint8Array, at: number, end: number, out: ScannedBody): number {
  let i = skipSpace(bytes, at + 1, end);
  let seen = 0;
  for (;;) {
    const key = keyOfMember(bytes, i, end, CHANGE_KEYS);
    if (key === 0 || (seen & (1 << key)) !== 0) return -1;
    seen |= 1 << key;
    i = valueAt;
    if (key === 1) {
      if (bytes[i] !== QUOTE || wordAt(bytes, i + 1, end, FIELD_WORDS) === 0) return -1;
      i = valueEnd;
    } else {
      if (bytes[i] !== OPEN_BRACE) return -1;
      i = scanValue(bytes, i, end, out);
      if (i === -1) return -1;
    }
    i = afterMember(bytes, i, end, CLOSE_BRACE);
    if (i === -1) return -1;
    if (isClosed) return seen === 0b110 ? i : -1;
  }
}

/** The change's `value`, from its `{`: past its `}`, or -1. */
function scanValue(bytes: Uint8Array, at: number, end: number, out: ScannedBody): number {
  let i = skipSpace(bytes, at + 1, end);
  let seen = 0;
  for (;;) {
    const key = keyOfMember(bytes, i, end, VALUE_KEYS);
    if (key === 0 || (seen & (1 << key)) !== 0) return -1;
    seen |= 1 << key;
    i = valueAt;
    if (key === 1) i = afterPlainString(bytes, i, end);
    else if (key === 2) i = bytes[i] === OPEN_BRACE ? scanMetadata(bytes, i, end, out) : -1;
    else i = scanStatuses(bytes, i, end, out);
    if (i === -1) return -1;
    i = afterMember(bytes, i, end, CLOSE_BRACE);
    if (i === -1) return -1;
    if (isClosed) return (seen & 0b1100) === 0b1100 ? i : -1;
  }
}

/** The value's `metadata`, from its `{`: past its `}`, or -1. */
function scanMetadata(bytes: Uint8Array, at: number, end: number, out: ScannedBody): number {
  let i = skipSpace(bytes, at + 1, end);
  let seen = 0;
  for (;;) {
    const key = keyOfMember(bytes, i, end, METADATA_KEYS);
    if (key === 0 || (seen & (1 << key)) !== 0) return -1;
    seen |= 1 << key;
    i = valueAt;
    if (key === 1) i = afterPlainString(bytes, i, end);
    else {
      const stop = idEnd(bytes, i, end);
      if (stop === -1) return -1;
      out.businessStart = i + 1;
      out.businessEnd = stop;
      i = valueEnd;
    }
    if (i === -1) return -1;
    i = afterMember(bytes, i, end, CLOSE_BRACE);
    if (i === -1) return -1;
    if (isClosed) return (seen & 0b100) !== 0 ? i : -1;
  }
}

/** The value's `statuses`, from its `[`: past its `]`, or -1. */
function scanStatuses(bytes: Uint8Array, at: number, end: number, out: ScannedBody): number {
  if (bytes[at] !== OPEN_BRACKET) return -1;
  let i = skipSpace(bytes, at + 1, end);
  for (;;) {
    if (bytes[i] !== OPEN_BRACE || out.count === MAX_SCANNED_STATUSES) return -1;
    i = scanStatus(bytes, i, end, out, out.count);
    if (i === -1) return -1;
    out.count++;
    i = afterMember(bytes, i, end, CLOSE_BRACKET);
    if (i === -1) return -1;
    if (isClosed) return i;
  }
}

/** Status `k`, from its `{`: past its `}`, or -1. */
function scanStatus(bytes: Uint8Array, at: number, end: number, out: ScannedBody, k: number): number {
  out.room(k);
  let i = skipSpace(bytes, at + 1, end);
  let seen = 0;
  for (;;) {
    const key = keyOfMember(bytes, i, end, STATUS_KEYS);
    if (key === 0 || (seen & (1 << key)) !== 0) return -1;
    seen |= 1 << key;
    i = valueAt;
    if (key === S_ID || key === S_RECIPIENT) {
      const stop = idEnd(bytes, i, end);
      if (stop === -1) return -1;
      if (key === S_ID) {
        out.idStart[k] = i + 1;
        out.idEnd[k] = stop;
      } else {
        if (!isUserKeptAsWritten(bytes, i + 1, stop)) return -1;
        out.userStart[k] = i + 1;
        out.userEnd[k] = stop;
      }
      i = valueEnd;
    } else if (key === S_STATUS) {
      const word = bytes[i] === QUOTE ? wordAt(bytes, i + 1, end, STATUS_WORDS) : 0;
      if (word === 0) return -1;
      out.status[k] = word;
      i = valueEnd;
    } else if (key === S_TIMESTAMP) {
      const ms = instantAt(bytes, i, end);
      if (ms === -1) return -1;
      out.atMs[k] = ms;
      i = valueEnd;
    } else if (key === S_PRICING || key === S_CONVERSATION) {
      if (isWordAt(bytes, i, end, WORD_NULL)) i += WORD_NULL.length;
      else {
        if (bytes[i] !== OPEN_BRACE) return -1;
        const stop = jsonValueEnd(bytes, i, end, MAX_EVIDENCE_DEPTH);
        if (stop === -1) return -1;
        if (key === S_PRICING) {
          out.pricingStart[k] = i;
          out.pricingEnd[k] = stop;
        } else {
          out.conversationStart[k] = i;
          out.conversationEnd[k] = stop;
        }
        i = stop;
      }
    } else {
      // errors, biz_opaque_callback_data: unread, any valid JSON.
      i = jsonValueEnd(bytes, i, end, MAX_EVIDENCE_DEPTH);
      if (i === -1) return -1;
    }
    i = afterMember(bytes, i, end, CLOSE_BRACE);
    if (i === -1) return -1;
    if (isClosed) return (seen & STATUS_REQUIRED) === STATUS_REQUIRED ? i : -1;
  }
}

/** Status `k`'s pricing, as the reader keeps it (parsed from its bytes: plain ASCII), or undefined. */
export function pricingOf(bytes: Buffer, out: ScannedBody, k: number): MetaPricingEvidence | undefined {
  const start = out.pricingStart[k]!;
  if (start === -1) return undefined;
  return pricingEvidence(
    JSON.parse(bytes.toString('latin1', start, out.pricingEnd[k])) as Record<string, unknown>,
  );
}

/** Status `k`'s conversation, as the reader keeps it, or undefined (the rater does not read it). */
export function conversationOf(
  bytes: Buffer,
  out: ScannedBody,
  k: number,
): MetaConversationEvidence | undefined {
  const start = out.conversationStart[k]!;
  if (start === -1) return undefined;
  return conversationEvidence(
    JSON.parse(bytes.toString('latin1', start, out.conversationEnd[k])) as Record<string, unknown>,
  );
}

/**
 * The events the reader makes of a body `scanWebhookBody` accepted into `out`, with their fields in its
 * order.
 */
export function toStatusEvents(bytes: Buffer, out: ScannedBody): StatusEvent[] {
  const text = (start: number, end: number) => bytes.toString('latin1', start, end);
  const events: StatusEvent[] = [];
  for (let k = 0; k < out.count; k++) {
    const event: StatusEvent = {
      kind: 'status',
      atMs: out.atMs[k]!,
      id: text(out.idStart[k]!, out.idEnd[k]!),
      status: STATUS_NAMES[out.status[k]!]!,
      waba: text(out.wabaStart, out.wabaEnd),
      business: text(out.businessStart, out.businessEnd),
      user: text(out.userStart[k]!, out.userEnd[k]!),
    };
    const pricing = pricingOf(bytes, out, k);
    if (pricing !== undefined) event.pricing = pricing;
    const conversation = conversationOf(bytes, out, k);
    if (conversation !== undefined) event.conversation = conversation;
    events.push(event);
  }
  return events;
}
