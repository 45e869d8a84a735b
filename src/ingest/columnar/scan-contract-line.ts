// A strict byte scanner of one contract event line (contract.md §1: kind inbound, outbound or status), for the
// columnar byte reader of stage 2 (read-columnar.ts, behind `rateSources`). It reads the line where it lies in
// a Buffer: no JSON.parse, no string, no object. It ACCEPTS a line only when it is certain that `readEventSources` reads
// that line, alone in NDJSON, as the one event `toCoreEvent` makes, with no error and no note; anything else it
// REFUSES (returns false), and the caller reads the line the reader's way. Accepting a line the reader reads
// otherwise would be a money bug; refusing one costs only speed.
//
// What it accepts, exactly (anything else is refused):
// - `{`, at the line's first byte, then members `"key":value` separated by `,`, then `}`; spaces and tabs
//   around the tokens (never a CR or another white space); nothing after the `}` but spaces and tabs.
// - Keys: the contract's fields of the line's kind (`LINE_FIELDS` of parse-event.ts), each once, written
//   plainly. An unknown field (the reader says a note of it), a repeated one (JSON.parse keeps the last) or one
//   of another kind: refused.
// - Strings: printable ASCII (0x20–0x7E) without a backslash (so no escape, no control character, no byte
//   that is not UTF-8, no lone surrogate: nothing parse-event refuses or the reader marks).
// - Ids (`waba`, `business`, `user`, `id`): non-empty strings of at most MAX_ID_BYTES; on a status line
//   `waba`, `business` and `user` may be absent or null. A `user` the reader would rewrite as a phone number
//   (digits with `+ - . ( )` or spaces, or digits starting with 0: parse-event's `waIdOf`) is refused; one of
//   digits not starting with 0, or holding any other character, is kept as written, as the reader keeps it.
// - `at`, `delivered_at`: an ISO-8601 string with an offset, read as calendar's `instantMs` reads it; Unix
//   seconds as a JSON integer (no sign, fraction or exponent) or a string of digits (leading zeros allowed, as
//   `Number` reads them); within instantMs's range. A fraction of a second in Unix seconds: refused.
// - `kind`, `status` (sent, delivered, read, failed), `template` (marketing, utility, authentication or null):
//   the contract's words exactly; `template_name` a non-empty string of at most MAX_TEMPLATE_NAME_BYTES or
//   null; `failed` true, false or null; `delivered_at` null too; `referral` an object (of valid JSON: any
//   members, strings as above, numbers as JSON writes them, nesting at most MAX_REFERRAL_DEPTH) or null;
//   `pricing` and `conversation` null only (Meta's evidence objects are kept by the reader: refused).
//
// What the caller must do besides (stage 2): read a source through `LineSplitter` (it says when the reader is
// needed instead), and give every refused line to the reader's own path; the reader reads a line otherwise
// only when a line before it does not parse alone (a document or a run of lines held, read-events.ts), so a
// caller meeting such a line must let the reader read the whole source.

import type {
  CoreEvent,
  InboundEvent,
  OutboundEvent,
  StatusEvent,
  TemplateCategory,
} from '../../core/events.js';
import { MAX_INSTANT_MS, MAX_UNIX_SECONDS } from '../../core/calendar.js';
import { MAX_ID_BYTES, MAX_TEMPLATE_NAME_BYTES } from '../parse-event.js';

export const LINE_INBOUND = 1;
export const LINE_OUTBOUND = 2;
export const LINE_STATUS = 3;
/** `template` codes; 0 is null or absent (a non-template message). */
export const TEMPLATE_MARKETING = 1;
export const TEMPLATE_UTILITY = 2;
export const TEMPLATE_AUTHENTICATION = 3;
/** `status` codes of a status line. */
export const STATUS_SENT = 1;
export const STATUS_DELIVERED = 2;
export const STATUS_READ = 3;
export const STATUS_FAILED = 4;
/** The deepest a `referral` object may nest (itself 1) and still be accepted; deeper ones are refused. */
export const MAX_REFERRAL_DEPTH = 16;

const TEMPLATES: readonly (TemplateCategory | null)[] = [null, 'marketing', 'utility', 'authentication'];
const STATUSES = ['', 'sent', 'delivered', 'read', 'failed'] as const;

/**
 * What `scanContractLine` read of an accepted line, reused line after line (one object, no allocation). Byte
 * ranges are offsets in the scanned buffer, `-1` when the field is absent or null.
 */
export class ScannedLine {
  /** LINE_INBOUND, LINE_OUTBOUND or LINE_STATUS. */
  kind = 0;
  atMs = 0;
  idStart = -1;
  idEnd = -1;
  wabaStart = -1;
  wabaEnd = -1;
  businessStart = -1;
  businessEnd = -1;
  userStart = -1;
  userEnd = -1;
  /** Outbound: TEMPLATE_* or 0 (null or absent). */
  template = 0;
  templateNameStart = -1;
  templateNameEnd = -1;
  /** Outbound: the instant of `delivered_at`, or -1 when absent or null. */
  deliveredAtMs = -1;
  isFailed = false;
  /** Status: STATUS_*. */
  status = 0;
  /** Inbound: `referral` is an object. */
  hasReferral = false;
}

// Fields, as bits.
const F_KIND = 1 << 0;
const F_AT = 1 << 1;
const F_WABA = 1 << 2;
const F_BUSINESS = 1 << 3;
const F_USER = 1 << 4;
const F_ID = 1 << 5;
const F_REFERRAL = 1 << 6;
const F_TEMPLATE = 1 << 7;
const F_TEMPLATE_NAME = 1 << 8;
const F_DELIVERED_AT = 1 << 9;
const F_FAILED = 1 << 10;
const F_STATUS = 1 << 11;
const F_PRICING = 1 << 12;
const F_CONVERSATION = 1 << 13;

const COMMON = F_KIND | F_AT | F_WABA | F_BUSINESS | F_USER | F_ID;
/** parse-event's LINE_FIELDS, as bits: a field outside its kind's is a note, so the line is refused. */
const FIELDS_OF_KIND = [
  0,
  COMMON | F_REFERRAL,
  COMMON | F_TEMPLATE | F_TEMPLATE_NAME | F_DELIVERED_AT | F_FAILED,
  COMMON | F_STATUS | F_PRICING | F_CONVERSATION,
];
/** The fields without which the reader refuses the line (a status may omit waba, business and user). */
const REQUIRED_OF_KIND = [0, COMMON, COMMON, F_KIND | F_AT | F_ID | F_STATUS];

const KEYS: readonly (readonly [string, number])[] = [
  ['kind', F_KIND],
  ['at', F_AT],
  ['waba', F_WABA],
  ['business', F_BUSINESS],
  ['user', F_USER],
  ['id', F_ID],
  ['referral', F_REFERRAL],
  ['template', F_TEMPLATE],
  ['template_name', F_TEMPLATE_NAME],
  ['delivered_at', F_DELIVERED_AT],
  ['failed', F_FAILED],
  ['status', F_STATUS],
  ['pricing', F_PRICING],
  ['conversation', F_CONVERSATION],
];
const KEY_BYTES = KEYS.map(([name, bit]) => ({ bytes: Buffer.from(name, 'latin1'), bit }));

export const QUOTE = 0x22;
const BACKSLASH = 0x5c;
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const OPEN_BRACE = 0x7b;
export const CLOSE_BRACE = 0x7d;
export const OPEN_BRACKET = 0x5b;
export const CLOSE_BRACKET = 0x5d;
const SPACE = 0x20;
const TAB = 0x09;

export const WORD_NULL = Buffer.from('null', 'latin1');
const WORD_TRUE = Buffer.from('true', 'latin1');
const WORD_FALSE = Buffer.from('false', 'latin1');
const KIND_WORDS = ['', 'inbound', 'outbound', 'status'].map((word) => Buffer.from(word, 'latin1'));
const TEMPLATE_WORDS = ['', 'marketing', 'utility', 'authentication'].map((word) =>
  Buffer.from(word, 'latin1'),
);
export const STATUS_WORDS = STATUSES.map((word) => Buffer.from(word, 'latin1'));

/**
 * Where the value read last ends (`stringEnd` for a string: the offset of its closing quote), shared by the
 * small readers below instead of returning pairs.
 */
export let valueEnd = 0;

/** Skips spaces and tabs from `at`. */
export function skipSpace(bytes: Uint8Array, at: number, end: number): number {
  while (at < end && (bytes[at] === SPACE || bytes[at] === TAB)) at++;
  return at;
}

/**
 * A plain string starting at its opening quote `at`: its content's end (the closing quote's offset), with
 * `valueEnd` after the quote; -1 when it holds anything but printable ASCII without a backslash, or never ends.
 */
export function plainString(bytes: Uint8Array, at: number, end: number): number {
  let i = at + 1;
  while (i < end && IS_PLAIN[bytes[i]!] === 1) i++;
  if (i >= end || bytes[i] !== QUOTE) return -1;
  valueEnd = i + 1;
  return i;
}

/** 1 for the bytes a plain string holds (printable ASCII but the quote and the backslash), else 0. */
const IS_PLAIN = new Uint8Array(256);
for (let c = 0x20; c <= 0x7e; c++) if (c !== QUOTE && c !== BACKSLASH) IS_PLAIN[c] = 1;

/** Whether `word` is written at `at` (the byte after it is looked at by the caller). */
export function isWordAt(bytes: Uint8Array, at: number, end: number, word: Uint8Array): boolean {
  if (at + word.length > end) return false;
  for (let i = 0; i < word.length; i++) if (bytes[at + i] !== word[i]) return false;
  return true;
}

/**
 * The index in `words` (from 1) of the word written at `at` and ended there by a quote, with `valueEnd` after
 * the quote; 0 when none is.
 */
export function wordAt(bytes: Uint8Array, at: number, end: number, words: readonly Uint8Array[]): number {
  for (let k = 1; k < words.length; k++) {
    const word = words[k]!;
    const stop = at + word.length;
    if (stop < end && bytes[stop] === QUOTE && isWordAt(bytes, at, end, word)) {
      valueEnd = stop + 1;
      return k;
    }
  }
  return 0;
}

/** The keys by their first byte: each byte's candidates (at most two). */
const KEYS_BY_FIRST_BYTE: readonly (readonly { bytes: Uint8Array; bit: number }[])[] = Array.from(
  { length: 256 },
  (_, byte) => KEY_BYTES.filter((key) => key.bytes[0] === byte),
);

/**
 * The bit of the key written at `at` (after its opening quote) and ended by its closing quote, with `valueEnd`
 * after that quote; 0 for any other key (one no contract line has, or one written with an escape).
 */
function keyBitAt(bytes: Uint8Array, at: number, end: number): number {
  const keys = KEYS_BY_FIRST_BYTE[bytes[at]!];
  if (keys === undefined) return 0;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    const stop = at + key.bytes.length;
    if (stop < end && bytes[stop] === QUOTE && isWordAt(bytes, at, end, key.bytes)) {
      valueEnd = stop + 1;
      return key.bit;
    }
  }
  return 0;
}

/**
 * A JSON number as JSON writes one, from `at`: where it ends, or -1 when it is not one (valid JSON only: a
 * leading zero, a lone minus, a dot without digits are refused as JSON.parse refuses them).
 */
function jsonNumberEnd(bytes: Uint8Array, at: number, end: number): number {
  let i = at;
  if (bytes[i] === 0x2d) i++;
  if (i >= end) return -1;
  if (bytes[i] === 0x30) i++;
  else if (isDigit(bytes[i]!)) while (i < end && isDigit(bytes[i]!)) i++;
  else return -1;
  if (i < end && bytes[i] === 0x2e) {
    i++;
    if (!(i < end && isDigit(bytes[i]!))) return -1;
    while (i < end && isDigit(bytes[i]!)) i++;
  }
  if (i < end && (bytes[i] === 0x65 || bytes[i] === 0x45)) {
    i++;
    if (i < end && (bytes[i] === 0x2b || bytes[i] === 0x2d)) i++;
    if (!(i < end && isDigit(bytes[i]!))) return -1;
    while (i < end && isDigit(bytes[i]!)) i++;
  }
  return i;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Where the JSON value starting at `at` ends, having checked it is valid JSON of the accepted kind (strings
 * plain, white space spaces and tabs), or -1. Iterative: nesting deeper than `maxDepth` is refused.
 */
export function jsonValueEnd(bytes: Uint8Array, at: number, end: number, maxDepth: number): number {
  // Each open container: true for an object. Its state: a value expected next (after `[`, `:` or `,`).
  const isObject: boolean[] = [];
  let i = at;
  for (;;) {
    i = skipSpace(bytes, i, end);
    if (i >= end) return -1;
    // A value.
    const c = bytes[i]!;
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (isObject.length >= maxDepth) return -1;
      const isObj = c === OPEN_BRACE;
      isObject.push(isObj);
      i = skipSpace(bytes, i + 1, end);
      if (bytes[i] === (isObj ? CLOSE_BRACE : CLOSE_BRACKET)) {
        isObject.pop();
        i++;
      } else {
        if (isObj) {
          i = memberKey(bytes, i, end);
          if (i === -1) return -1;
        }
        continue;
      }
    } else if (c === QUOTE) {
      if (plainString(bytes, i, end) === -1) return -1;
      i = valueEnd;
    } else if (c === 0x74 || c === 0x66 || c === 0x6e) {
      const word = c === 0x74 ? WORD_TRUE : c === 0x66 ? WORD_FALSE : WORD_NULL;
      if (!isWordAt(bytes, i, end, word)) return -1;
      i += word.length;
    } else {
      i = jsonNumberEnd(bytes, i, end);
      if (i === -1) return -1;
    }
    // After a value: close containers, or a comma and the next value.
    for (;;) {
      if (isObject.length === 0) return i;
      i = skipSpace(bytes, i, end);
      const d = bytes[i];
      const inObject = isObject[isObject.length - 1]!;
      if (d === COMMA) {
        i = skipSpace(bytes, i + 1, end);
        if (inObject) {
          i = memberKey(bytes, i, end);
          if (i === -1) return -1;
        }
        break;
      }
      if (d !== (inObject ? CLOSE_BRACE : CLOSE_BRACKET)) return -1;
      isObject.pop();
      i++;
    }
  }
}

/** A member's `"key" :` at `at` (after white space); where its value may start, or -1. */
function memberKey(bytes: Uint8Array, at: number, end: number): number {
  if (bytes[at] !== QUOTE || plainString(bytes, at, end) === -1) return -1;
  const i = skipSpace(bytes, valueEnd, end);
  return bytes[i] === COLON ? i + 1 : -1;
}

/** The number the digits `bytes[start, stop)` write, or -1 when one is no digit or it reaches `limit`. */
function digitsValue(bytes: Uint8Array, start: number, stop: number, limit: number): number {
  if (start >= stop) return -1;
  let value = 0;
  for (let i = start; i < stop; i++) {
    const c = bytes[i]!;
    if (!isDigit(c)) return -1;
    value = value * 10 + (c - 0x30);
    if (value >= limit) return -1;
  }
  return value;
}

/** The byte at `at`, or -1 from `stop` on (where calendar's `charCodeAt` gives NaN). */
function byteAt(bytes: Uint8Array, at: number, stop: number): number {
  return at < stop ? bytes[at]! : -1;
}

/** Two digits at `at` as a number, or -1 (calendar's `twoDigitsAt`). */
function twoDigits(bytes: Uint8Array, at: number): number {
  const high = bytes[at]! - 0x30;
  const low = bytes[at + 1]! - 0x30;
  return high >= 0 && high <= 9 && low >= 0 && low <= 9 ? high * 10 + low : -1;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const DAY_MS = 86_400_000;

/** Days since 1970-01-01 of a proleptic Gregorian date (calendar's `daysFromCivil`, H. Hinnant's). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

/**
 * calendar's `parseIsoWithOffset` over bytes, step for step (`YYYY-MM-DDTHH:MM[:SS[.fraction]](Z|±HH:MM|±HHMM
 * |±HH)`, `t` and `z` too): epoch ms, or -1 where it answers undefined.
 */
function isoMs(bytes: Uint8Array, start: number, stop: number): number {
  const length = stop - start;
  if (
    length < 17 ||
    byteAt(bytes, start + 4, stop) !== 45 ||
    byteAt(bytes, start + 7, stop) !== 45 ||
    (byteAt(bytes, start + 10, stop) !== 84 && byteAt(bytes, start + 10, stop) !== 116) ||
    byteAt(bytes, start + 13, stop) !== 58
  )
    return -1;
  const century = twoDigits(bytes, start);
  const yearOfCentury = twoDigits(bytes, start + 2);
  const month = twoDigits(bytes, start + 5);
  const day = twoDigits(bytes, start + 8);
  const hour = twoDigits(bytes, start + 11);
  const minute = twoDigits(bytes, start + 14);
  if ((century | yearOfCentury | month | day | hour | minute) < 0) return -1;
  const year = century * 100 + yearOfCentury;
  let second = 0;
  let milliseconds = 0;
  let at = 16;
  if (at < length && byteAt(bytes, start + at, stop) === 58) {
    second = at + 2 < length ? twoDigits(bytes, start + at + 1) : -1;
    if (second < 0) return -1;
    at += 3;
    if (at < length && byteAt(bytes, start + at, stop) === 46) {
      at += 1;
      let places = 0;
      while (places < 9 && at < length && isDigit(byteAt(bytes, start + at, stop))) {
        if (places < 3) milliseconds = milliseconds * 10 + (byteAt(bytes, start + at, stop) - 48);
        places += 1;
        at += 1;
      }
      if (places === 0) return -1;
      for (let pad = places; pad < 3; pad++) milliseconds *= 10;
    }
  }
  if (at >= length) return -1;
  let offsetMinutes = 0;
  const sign = byteAt(bytes, start + at, stop);
  if (sign === 90 || sign === 122) {
    at += 1;
  } else if (sign === 43 || sign === 45) {
    const offsetHours = at + 2 < length ? twoDigits(bytes, start + at + 1) : -1;
    const isHoursOnly = at + 3 === length;
    const hasColon = !isHoursOnly && at + 3 < length && byteAt(bytes, start + at + 3, stop) === 58;
    const minutesAt = at + (hasColon ? 4 : 3);
    const offsetMins = isHoursOnly ? 0 : minutesAt + 1 < length ? twoDigits(bytes, start + minutesAt) : -1;
    if (!(offsetHours >= 0 && offsetHours <= 23 && offsetMins >= 0 && offsetMins <= 59)) return -1;
    offsetMinutes = (sign === 45 ? -1 : 1) * (offsetHours * 60 + offsetMins);
    at += isHoursOnly ? 3 : hasColon ? 6 : 5;
  } else {
    return -1;
  }
  if (at !== length) return -1;
  const isLeap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = month === 2 && isLeap ? 29 : DAYS_IN_MONTH[month - 1];
  if (!(month >= 1 && month <= 12 && day >= 1 && monthDays !== undefined && day <= monthDays)) return -1;
  if (!(hour <= 23 && minute <= 59 && second <= 59)) return -1;
  const localMs = daysFromCivil(year, month, day) * DAY_MS + ((hour * 60 + minute) * 60 + second) * 1000;
  return localMs + milliseconds - offsetMinutes * 60_000;
}

/** The day `utcSecondMs` read last (year × 10,000 + month × 100 + day, -1 for none), and its epoch ms. */
let lastDay = -1;
let lastDayMs = 0;

/**
 * `isoMs` of the one form most lines write, `YYYY-MM-DDTHH:MM:SSZ` (20 bytes, the last a `Z`), with the epoch
 * ms of the last day read kept: consecutive lines mostly share their day, whose check and count from 1970
 * `isoMs` would make anew. Any other text of 20 bytes ending in `Z` is `isoMs`'s.
 */
function utcSecondMs(bytes: Uint8Array, start: number, stop: number): number {
  if (
    bytes[start + 4] !== 45 ||
    bytes[start + 7] !== 45 ||
    bytes[start + 10] !== 84 ||
    bytes[start + 13] !== 58 ||
    bytes[start + 16] !== 58
  )
    return isoMs(bytes, start, stop);
  const century = twoDigits(bytes, start);
  const yearOfCentury = twoDigits(bytes, start + 2);
  const month = twoDigits(bytes, start + 5);
  const day = twoDigits(bytes, start + 8);
  const hour = twoDigits(bytes, start + 11);
  const minute = twoDigits(bytes, start + 14);
  const second = twoDigits(bytes, start + 17);
  if ((century | yearOfCentury | month | day | hour | minute | second) < 0) return -1;
  if (!(hour <= 23 && minute <= 59 && second <= 59)) return -1;
  const year = century * 100 + yearOfCentury;
  const dayKey = year * 10_000 + month * 100 + day;
  if (dayKey !== lastDay) {
    const isLeap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
    const monthDays = month === 2 && isLeap ? 29 : DAYS_IN_MONTH[month - 1];
    if (!(month >= 1 && month <= 12 && day >= 1 && monthDays !== undefined && day <= monthDays)) return -1;
    lastDayMs = daysFromCivil(year, month, day) * DAY_MS;
    lastDay = dayKey;
  }
  return lastDayMs + ((hour * 60 + minute) * 60 + second) * 1000;
}

/**
 * calendar's `instantMs` of a JSON string whose content is `bytes[start, stop)`: ISO-8601, or Unix seconds as
 * digits; -1 for anything it refuses, and for Unix seconds with a fraction (left to the reader's path).
 */
export function instantMsOfStringBytes(bytes: Uint8Array, start: number, stop: number): number {
  let ms: number;
  if (stop - start === 20 && bytes[start + 19] === 0x5a) ms = utcSecondMs(bytes, start, stop);
  else if (stop - start > 4 && bytes[start + 4] === 45) ms = isoMs(bytes, start, stop);
  else {
    // Digits only (calendar also reads one dot: refused here); never 1e11 seconds or more (out of range).
    const seconds = digitsValue(bytes, start, stop, MAX_UNIX_SECONDS);
    ms = seconds === -1 ? -1 : seconds * 1000;
  }
  return ms >= 0 && ms <= MAX_INSTANT_MS ? ms : -1;
}

/**
 * The instant of the JSON value at `at` (its first byte), as calendar's `instantMs` reads it, with `valueEnd`
 * after it: a string (`instantMsOfStringBytes`; every byte up to the next quote is read as part of the instant,
 * so none needs a look of its own) or Unix seconds as a JSON integer (no sign, no leading zero, no fraction or
 * exponent); -1 for anything else.
 */
export function instantAt(bytes: Uint8Array, at: number, end: number): number {
  if (bytes[at] === QUOTE) {
    let stop = at + 1;
    while (stop < end && bytes[stop] !== QUOTE) stop++;
    if (stop === end) return -1;
    valueEnd = stop + 1;
    return instantMsOfStringBytes(bytes, at + 1, stop);
  }
  let stop = at;
  while (stop < end && isDigit(bytes[stop]!)) stop++;
  if (stop === at || (bytes[at] === 0x30 && stop - at > 1)) return -1;
  const seconds = digitsValue(bytes, at, stop, MAX_UNIX_SECONDS);
  if (seconds === -1) return -1;
  valueEnd = stop;
  return seconds * 1000;
}

/** `+ - . ( )` and space: what parse-event's `waIdOf` reads as the writing of a phone number besides digits. */
function isPhonePunctuation(c: number): boolean {
  return c === 0x2b || c === 0x2d || c === 0x2e || c === 0x28 || c === 0x29 || c === SPACE;
}

/**
 * Whether parse-event's `waIdOf` keeps the (plain ASCII) user `bytes[start, stop)` as written: digits not
 * starting with 0, or holding a character that is neither a digit nor phone punctuation.
 */
export function isUserKeptAsWritten(bytes: Uint8Array, start: number, stop: number): boolean {
  let isDigitsOnly = true;
  for (let i = start; i < stop; i++) {
    const c = bytes[i]!;
    if (isDigit(c)) continue;
    if (!isPhonePunctuation(c)) return true;
    isDigitsOnly = false;
  }
  return isDigitsOnly && bytes[start] !== 0x30;
}

/**
 * Scans the line `bytes[start, end)` (without its line end). True, with `out` filled, when the line is a
 * contract event line the reader reads as `toCoreEvent(bytes, out)` and nothing else; false when it is
 * anything else or anything unusual (see this module's first comment).
 */
export function scanContractLine(bytes: Uint8Array, start: number, end: number, out: ScannedLine): boolean {
  if (start >= end || bytes[start] !== OPEN_BRACE) return false;
  out.kind = 0;
  out.atMs = -1;
  out.idStart = out.idEnd = out.wabaStart = out.wabaEnd = -1;
  out.businessStart = out.businessEnd = out.userStart = out.userEnd = -1;
  out.template = 0;
  out.templateNameStart = out.templateNameEnd = -1;
  out.deliveredAtMs = -1;
  out.isFailed = false;
  out.status = 0;
  out.hasReferral = false;
  /** Fields given (null included), and those given as a string (the ids, which null does not give). */
  let seen = 0;
  let given = 0;
  let i = skipSpace(bytes, start + 1, end);
  for (;;) {
    if (bytes[i] !== QUOTE) return false;
    const bit = keyBitAt(bytes, i + 1, end);
    if (bit === 0 || (seen & bit) !== 0) return false;
    seen |= bit;
    i = skipSpace(bytes, valueEnd, end);
    if (bytes[i] !== COLON) return false;
    i = skipSpace(bytes, i + 1, end);
    if (i >= end) return false;
    const c = bytes[i]!;
    const isNull = c === 0x6e;
    if (isNull) {
      if (!isWordAt(bytes, i, end, WORD_NULL)) return false;
      // null is "not given" for every field that may be absent; kind, at, id and status refuse it (the ids
      // of messages too: `given` below).
      if (bit === F_KIND || bit === F_AT || bit === F_ID || bit === F_STATUS) return false;
      i += 4;
    } else if (c === QUOTE) {
      const valueStart = i + 1;
      given |= bit;
      if (bit === F_KIND || bit === F_STATUS || bit === F_TEMPLATE) {
        // A word of the contract, then the closing quote (anything else: refused).
        const words = bit === F_KIND ? KIND_WORDS : bit === F_STATUS ? STATUS_WORDS : TEMPLATE_WORDS;
        const word = wordAt(bytes, valueStart, end, words);
        if (word === 0) return false;
        if (bit === F_KIND) out.kind = word;
        else if (bit === F_STATUS) out.status = word;
        else out.template = word;
        i = valueEnd;
      } else if (bit === F_AT || bit === F_DELIVERED_AT) {
        const ms = instantAt(bytes, i, end);
        if (ms === -1) return false;
        if (bit === F_AT) out.atMs = ms;
        else out.deliveredAtMs = ms;
        i = valueEnd;
      } else if (bit === F_WABA || bit === F_BUSINESS || bit === F_USER || bit === F_ID) {
        const stop = plainString(bytes, i, end);
        if (stop === -1) return false;
        i = valueEnd;
        if (stop === valueStart || stop - valueStart > MAX_ID_BYTES) return false;
        if (bit === F_WABA) {
          out.wabaStart = valueStart;
          out.wabaEnd = stop;
        } else if (bit === F_BUSINESS) {
          out.businessStart = valueStart;
          out.businessEnd = stop;
        } else if (bit === F_USER) {
          if (!isUserKeptAsWritten(bytes, valueStart, stop)) return false;
          out.userStart = valueStart;
          out.userEnd = stop;
        } else {
          out.idStart = valueStart;
          out.idEnd = stop;
        }
      } else if (bit === F_TEMPLATE_NAME) {
        const stop = plainString(bytes, i, end);
        if (stop === -1 || stop === valueStart || stop - valueStart > MAX_TEMPLATE_NAME_BYTES) return false;
        i = valueEnd;
        out.templateNameStart = valueStart;
        out.templateNameEnd = stop;
      } else return false; // failed, referral, pricing, conversation: never a string
    } else if (bit === F_AT || bit === F_DELIVERED_AT) {
      const ms = instantAt(bytes, i, end);
      if (ms === -1) return false;
      if (bit === F_AT) out.atMs = ms;
      else out.deliveredAtMs = ms;
      i = valueEnd;
    } else if (bit === F_FAILED) {
      if (isWordAt(bytes, i, end, WORD_TRUE)) {
        out.isFailed = true;
        i += 4;
      } else if (isWordAt(bytes, i, end, WORD_FALSE)) i += 5;
      else return false;
    } else if (bit === F_REFERRAL) {
      if (c !== OPEN_BRACE) return false;
      i = jsonValueEnd(bytes, i, end, MAX_REFERRAL_DEPTH);
      if (i === -1) return false;
      out.hasReferral = true;
    } else return false;
    i = skipSpace(bytes, i, end);
    if (bytes[i] === COMMA) {
      i = skipSpace(bytes, i + 1, end);
      continue;
    }
    if (bytes[i] !== CLOSE_BRACE) return false;
    if (skipSpace(bytes, i + 1, end) !== end) return false;
    break;
  }
  const kind = out.kind;
  if (kind === 0 || (seen & ~FIELDS_OF_KIND[kind]!) !== 0) return false;
  const required = REQUIRED_OF_KIND[kind]!;
  // Required fields given as values (null refused above for kind, at and id; here for the others).
  const requiredIds = required & (F_WABA | F_BUSINESS | F_USER | F_ID);
  if ((seen & required) !== required || (given & requiredIds) !== requiredIds) return false;
  return true;
}

/** The event the reader makes of a line `scanContractLine` accepted into `scanned`, with its fields in its order. */
export function toCoreEvent(bytes: Buffer, scanned: ScannedLine): CoreEvent {
  const text = (start: number, end: number) => bytes.toString('latin1', start, end);
  const id = text(scanned.idStart, scanned.idEnd);
  if (scanned.kind === LINE_STATUS) {
    const event: StatusEvent = { kind: 'status', atMs: scanned.atMs, id, status: STATUSES[scanned.status]! };
    if (scanned.wabaStart !== -1) event.waba = text(scanned.wabaStart, scanned.wabaEnd);
    if (scanned.businessStart !== -1) event.business = text(scanned.businessStart, scanned.businessEnd);
    if (scanned.userStart !== -1) event.user = text(scanned.userStart, scanned.userEnd);
    return event;
  }
  const atMs = scanned.atMs;
  const waba = text(scanned.wabaStart, scanned.wabaEnd);
  const business = text(scanned.businessStart, scanned.businessEnd);
  const user = text(scanned.userStart, scanned.userEnd);
  if (scanned.kind === LINE_INBOUND) {
    const event: InboundEvent = {
      kind: 'inbound',
      atMs,
      waba,
      business,
      user,
      id,
      hasReferral: scanned.hasReferral,
    };
    return event;
  }
  const event: OutboundEvent = {
    kind: 'outbound',
    atMs,
    waba,
    business,
    user,
    id,
    template: TEMPLATES[scanned.template]!,
  };
  if (scanned.templateNameStart !== -1) {
    event.templateName = text(scanned.templateNameStart, scanned.templateNameEnd);
  }
  if (scanned.deliveredAtMs !== -1) event.deliveredAtMs = scanned.deliveredAtMs;
  if (scanned.isFailed) event.isFailed = true;
  return event;
}
