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

const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * An instant as epoch milliseconds, from an ISO-8601 string with an offset, Unix seconds (number), or
 * Unix seconds as a string of digits (how Meta's webhooks write them).
 */
export function parseInstant(value: unknown): Result<number, InstantError> {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return ok(secondsToMs(value));
  } else if (typeof value === 'string') {
    if (isUnixSeconds(value)) return ok(secondsToMs(Number(value)));
    // Cheap shape checks first (this runs once per event); the full pattern only confirms.
    if (
      value.length >= 17 &&
      value.charCodeAt(10) === 84 /* T */ &&
      hasOffset(value) &&
      ISO_WITH_OFFSET.test(value)
    ) {
      const ms = Date.parse(value);
      if (Number.isFinite(ms)) return ok(ms);
    }
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

function hasOffset(value: string): boolean {
  const last = value.charCodeAt(value.length - 1);
  if (last === 90 /* Z */) return true;
  const sign = value.charCodeAt(value.length - 6);
  const compactSign = value.charCodeAt(value.length - 5);
  return sign === 43 || sign === 45 || compactSign === 43 || compactSign === 45;
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
