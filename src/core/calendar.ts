// Calendar questions (which local day and month an instant falls in, in a WABA's time zone) and instant
// parsing. The only module in core that knows about time zones; it never reads the clock.

import { err, ok, type Result } from './result.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
// Every time zone offset in use is a multiple of 15 minutes, so a local date cannot change inside one
// quarter hour of UTC: the quarter hour is an exact cache key.
const QUARTER_HOUR_MS = 15 * MINUTE_MS;

const formatters = new Map<string, Intl.DateTimeFormat>();
const dayCaches = new Map<string, Map<number, string>>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The local calendar date ("YYYY-MM-DD") of an instant in an IANA time zone. */
export function localDate(atMs: number, timeZone: string): string {
  let cache = dayCaches.get(timeZone);
  if (!cache) {
    cache = new Map();
    dayCaches.set(timeZone, cache);
  }
  const key = Math.floor(atMs / QUARTER_HOUR_MS);
  let date = cache.get(key);
  if (date === undefined) {
    if (timeZone === 'UTC') {
      date = new Date(atMs).toISOString().slice(0, 10);
    } else {
      const parts = formatterFor(timeZone).formatToParts(new Date(atMs));
      const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
      date = `${part('year')}-${part('month')}-${part('day')}`;
    }
    if (cache.size > 200_000) cache.clear();
    cache.set(key, date);
  }
  return date;
}

/** The local calendar month ("YYYY-MM") of an instant in an IANA time zone. */
export function localMonth(atMs: number, timeZone: string): string {
  return localDate(atMs, timeZone).slice(0, 7);
}

export type InstantError = { code: 'BAD_TIMESTAMP'; message: string };

/**
 * An instant as epoch milliseconds, from an ISO-8601 string with an offset, Unix seconds (number), or
 * Unix seconds as a string of digits (how Meta's webhooks write them).
 */
export function parseInstant(value: unknown): Result<number, InstantError> {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return ok(secondsToMs(value));
  } else if (typeof value === 'string') {
    if (isUnixSeconds(value)) return ok(secondsToMs(Number(value)));
    const ms = parseIsoWithOffset(value);
    if (ms !== undefined) return ok(ms);
  }
  return err({
    code: 'BAD_TIMESTAMP',
    message: `${JSON.stringify(value)} is not an instant: use ISO-8601 with an offset (2024-03-01T10:00:00Z) or Unix seconds`,
  });
}

function isUnixSeconds(value: string): boolean {
  if (value.length === 0 || value.length > 20) return false;
  let dots = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === 46 /* . */ && i > 0 && dots === 0) dots += 1;
    else if (code < 48 || code > 57) return false;
  }
  return value.charCodeAt(value.length - 1) !== 46;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * `YYYY-MM-DDTHH:MM[:SS[.fraction]](Z|±HH:MM|±HHMM)` → epoch ms, or undefined. Hand-written because it runs
 * once per event (Date.parse and a regex cost a sixth of reading a file), and stricter than Date.parse:
 * 2024-02-30 or 24:00 are refused, not rolled over.
 */
function parseIsoWithOffset(text: string): number | undefined {
  if (
    text.length < 17 ||
    text.charCodeAt(4) !== 45 /* - */ ||
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 84 /* T */ ||
    text.charCodeAt(13) !== 58 /* : */
  ) {
    return undefined;
  }
  const year = twoDigitsAt(text, 0) * 100 + twoDigitsAt(text, 2);
  const month = twoDigitsAt(text, 5);
  const day = twoDigitsAt(text, 8);
  const hour = twoDigitsAt(text, 11);
  const minute = twoDigitsAt(text, 14);
  let second = 0;
  let milliseconds = 0;
  let at = 16;
  if (text[at] === ':') {
    second = twoDigitsAt(text, at + 1);
    at += 3;
    if (text[at] === '.') {
      at += 1;
      let places = 0;
      while (places < 9 && !Number.isNaN(digitAt(text, at))) {
        if (places < 3) milliseconds = milliseconds * 10 + digitAt(text, at);
        places += 1;
        at += 1;
      }
      if (places === 0) return undefined;
      for (let pad = places; pad < 3; pad++) milliseconds *= 10;
    }
  }
  let offsetMinutes = 0;
  const sign = text[at];
  if (sign === 'Z') {
    at += 1;
  } else if (sign === '+' || sign === '-') {
    const offsetHours = twoDigitsAt(text, at + 1);
    const hasColon = text[at + 3] === ':';
    const offsetMins = twoDigitsAt(text, at + (hasColon ? 4 : 3));
    if (!(offsetHours <= 23 && offsetMins <= 59)) return undefined;
    offsetMinutes = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
    at += hasColon ? 6 : 5;
  } else {
    return undefined;
  }
  if (at !== text.length) return undefined;
  const isLeap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = month === 2 && isLeap ? 29 : DAYS_IN_MONTH[month - 1];
  // NaN (a non-digit) fails every comparison below.
  if (!(
    year >= 1000 &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    monthDays !== undefined &&
    day <= monthDays
  )) {
    return undefined;
  }
  if (!(hour <= 23 && minute <= 59 && second <= 59)) return undefined;
  const localMs = daysFromCivil(year, month, day) * DAY_MS + ((hour * 60 + minute) * 60 + second) * 1000;
  return localMs + milliseconds - offsetMinutes * 60_000;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

function digitAt(text: string, at: number): number {
  const code = text.charCodeAt(at) - 48;
  return code >= 0 && code <= 9 ? code : NaN;
}

function twoDigitsAt(text: string, at: number): number {
  return digitAt(text, at) * 10 + digitAt(text, at + 1);
}

/** Epoch milliseconds → "2024-03-01T10:05:03Z" (milliseconds shown only when present). */
export function formatInstant(atMs: number): string {
  const iso = new Date(atMs).toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, 19)}Z` : iso;
}

/** Unix seconds (possibly fractional) → epoch milliseconds, to the nearest millisecond. */
function secondsToMs(seconds: number): number {
  return Math.floor(seconds * 1000 + 0.5);
}
