// Calendar questions (which local day and month an instant falls in, in a WABA's time zone) and instant
// parsing. The only module in core that knows about time zones; it never reads the clock.

import { err, ok, type Result } from './result.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
// Every time zone offset in use is a multiple of 15 minutes, so a local date cannot change inside one
// quarter hour of UTC: the quarter hour is an exact cache key (for the days `DayDates` does not cut in two).
const QUARTER_HOUR_MS = 15 * MINUTE_MS;

const formatters = new Map<string, Intl.DateTimeFormat>();
/**
 * The most time-zone names cached at once. IANA has about 600 and their aliases, but a name is matched in any
 * case (`aSIA/kolkata` is valid), so an API client naming new spellings without end would grow the caches
 * without end (an API review, fifteenth session): past this many, they start again empty.
 */
const MAX_CACHED_TIME_ZONES = 1_000;

/** How many time-zone names the caches hold (tests). */
export function cachedTimeZones(): number {
  return Math.max(formatters.size, dayCaches.size, offsetFormatters.size);
}

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    if (formatters.size >= MAX_CACHED_TIME_ZONES) formatters.clear();
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

/**
 * Names ICU takes for zones that IANA does not have: Java's old three-letter ids, and the `SystemV/` zones tzdata
 * dropped in 2020. Each abbreviation names zones of several countries — ICU reads `IST` as India (Israel and
 * Ireland write IST too), `CST` as Chicago (China Standard Time too), `BST` as Dhaka (British Summer Time) — so
 * a WABA given one would have its days, months, eras and cards cut in another country's time. The IANA names
 * of three letters (`EST`, `MST`, `HST`, `CET`, `EET`, `MET`, `WET`, `GMT`, `UTC`, `UCT`, `PRC`, `ROC`, `ROK`)
 * are not among them.
 */
const JAVA_ZONE_IDS =
  'ACT AET AGT ART AST BET BST CAT CNT CST CTT EAT ECT IET IST JST MIT NET NST PLT PNT PRT PST SST VST';
const ICU_ONLY_ZONE_IDS = new Set(JAVA_ZONE_IDS.split(' '));

/** What an error says of such a name (`"timezone" is "IST" (an abbreviation, …)`). */
export const ABBREVIATION_NOTE = 'an abbreviation, which names zones of several countries';

/** Whether a name ICU reads as a zone is one of its own abbreviations, which IANA does not name (above). */
export function isTimeZoneAbbreviation(timeZone: string): boolean {
  const upper = timeZone.toUpperCase();
  return ICU_ONLY_ZONE_IDS.has(upper) || upper.startsWith('SYSTEMV/');
}

export function isValidTimeZone(timeZone: string): boolean {
  if (isTimeZoneAbbreviation(timeZone)) return false;
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The local date of `at` as `formatter` gives its parts: "YYYY-MM-DD". */
function dateFromParts(formatter: Intl.DateTimeFormat, at: Date): string {
  const parts = formatter.formatToParts(at);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year')}-${part('month')}-${part('day')}`;
}

const formatsTheDate = new WeakMap<Intl.DateTimeFormat, boolean>();

/**
 * Whether `formatter.format` writes the same "YYYY-MM-DD" as its parts joined (`en-CA`'s pattern in the ICU of
 * Node 20): a third of the cost of `formatToParts` at each date not cached yet (`DayDates`: two a zone and
 * day). Checked once a formatter, on a day after the 12th (so that day and month cannot be mistaken), for
 * an ICU whose pattern for `en-CA` is another.
 */
function isFormatTheDate(formatter: Intl.DateTimeFormat): boolean {
  let is = formatsTheDate.get(formatter);
  if (is === undefined) {
    const probe = new Date(Date.UTC(2025, 9, 23, 12));
    is = formatter.format(probe) === dateFromParts(formatter, probe);
    formatsTheDate.set(formatter, is);
  }
  return is;
}

/**
 * What one zone's instants of one UTC day (`Math.floor(atMs / DAY_MS)`) fall on: `before` from the day's start
 * to `splitMs`, `after` from there (a zone's offset is constant over nearly every day, so its local midnight
 * cuts the day once at most). A day whose offset changes, or is not a multiple of 15 minutes (a zone's local
 * mean time, before 1972), keeps a date a quarter hour in `quarters`, as every day was cached before.
 */
class DayDates {
  constructor(
    readonly splitMs: number,
    readonly before: string,
    readonly after: string,
    readonly quarters: Map<number, string> | undefined,
  ) {}
}

const dayCaches = new Map<string, Map<number, DayDates>>();
const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

/** The local date of `atMs` as the formatter writes it, worked out afresh (nothing cached). */
function formatDate(atMs: number, timeZone: string): string {
  if (timeZone === 'UTC') return new Date(atMs).toISOString().slice(0, 10);
  const formatter = formatterFor(timeZone);
  return isFormatTheDate(formatter)
    ? formatter.format(new Date(atMs))
    : dateFromParts(formatter, new Date(atMs));
}

/** The zone's offset from UTC at `atMs`, a whole second (ms): its local time read as UTC, less the instant. */
function offsetAt(atMs: number, timeZone: string): number {
  let formatter = offsetFormatters.get(timeZone);
  if (!formatter) {
    if (offsetFormatters.size >= MAX_CACHED_TIME_ZONES) offsetFormatters.clear();
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    offsetFormatters.set(timeZone, formatter);
  }
  const at = new Date(atMs);
  let year = 0;
  let month = 0;
  let day = 0;
  let hour = 0;
  let minute = 0;
  let second = 0;
  for (const part of formatter.formatToParts(at)) {
    if (part.type === 'year') year = Number(part.value);
    else if (part.type === 'month') month = Number(part.value);
    else if (part.type === 'day') day = Number(part.value);
    else if (part.type === 'hour') hour = Number(part.value) % 24;
    else if (part.type === 'minute') minute = Number(part.value);
    else if (part.type === 'second') second = Number(part.value);
  }
  const local = new Date(0);
  local.setUTCFullYear(year, month - 1, day);
  local.setUTCHours(hour, minute, second, 0);
  return local.getTime() - (atMs - (((atMs % 1000) + 1000) % 1000));
}

/**
 * The dates of UTC day `day` in `timeZone`. The offset is read at the day's first and last second: where they
 * are one offset, a multiple of 15 minutes, the day's dates are the one before its local midnight and the one
 * from it (no zone has changed its offset twice within one day). Four formatter calls a zone and day, where a
 * cache by quarter hour made 96 (≈ 30,000 over the 1M bench file).
 */
function datesOfDay(day: number, timeZone: string): DayDates {
  const startMs = day * DAY_MS;
  const offsetMs = offsetAt(startMs, timeZone);
  if (offsetMs % QUARTER_HOUR_MS !== 0 || offsetAt(startMs + DAY_MS - 1000, timeZone) !== offsetMs) {
    return new DayDates(startMs, '', '', new Map());
  }
  const midnightMs = startMs + (((-offsetMs % DAY_MS) + DAY_MS) % DAY_MS);
  const before = formatDate(startMs, timeZone);
  const after = midnightMs === startMs ? before : formatDate(midnightMs, timeZone);
  return new DayDates(midnightMs === startMs ? startMs + DAY_MS : midnightMs, before, after, undefined);
}

/** The local calendar date ("YYYY-MM-DD") of an instant in an IANA time zone. */
export function localDate(atMs: number, timeZone: string): string {
  let cache = dayCaches.get(timeZone);
  if (!cache) {
    if (dayCaches.size >= MAX_CACHED_TIME_ZONES) dayCaches.clear();
    cache = new Map();
    dayCaches.set(timeZone, cache);
  }
  const day = Math.floor(atMs / DAY_MS);
  let dates = cache.get(day);
  if (dates === undefined) {
    if (cache.size > 50_000) cache.clear();
    dates = datesOfDay(day, timeZone);
    cache.set(day, dates);
  }
  if (dates.quarters === undefined) return atMs < dates.splitMs ? dates.before : dates.after;
  const quarter = Math.floor(atMs / QUARTER_HOUR_MS);
  let date = dates.quarters.get(quarter);
  if (date === undefined) {
    date = formatDate(atMs, timeZone);
    dates.quarters.set(quarter, date);
  }
  return date;
}

/** Whether `text` is a calendar month written "YYYY-MM" (Meta's `effective_month`). */
export function isMonth(text: string): boolean {
  return /^\d{4}-(?:0[1-9]|1[0-2])$/.test(text);
}

/** The local calendar month ("YYYY-MM") of an instant in an IANA time zone. */
export function localMonth(atMs: number, timeZone: string): string {
  return localDate(atMs, timeZone).slice(0, 7);
}

/**
 * The instants whose local month (`localMonth`) in `timeZone` is `month` ("YYYY-MM"): `[fromMs, toMs)`, from the
 * first quarter hour of its first day to that of the next month's. Found with `localDate` itself, so a filter on
 * these instants chooses exactly the units `localMonth` puts in the month (a zone whose date went back across a
 * month's edge, which none has done at one, would not be one range).
 */
export function localMonthRange(month: string, timeZone: string): { fromMs: number; toMs: number } {
  if (!isMonth(month)) throw new Error(`not a month: ${month}`);
  const year = Number(month.slice(0, 4));
  const number = Number(month.slice(5, 7));
  // No instant wameter reads (MIN_INSTANT_MS to MAX_INSTANT_MS) is before 1969-12-31 or after 9999-12-31 anywhere.
  if (year < 1969) return { fromMs: MIN_INSTANT_MS, toMs: MIN_INSTANT_MS };
  const next = number === 12 ? `${year + 1}-01` : `${year}-${String(number + 1).padStart(2, '0')}`;
  return {
    fromMs: firstInstantOfDay(`${month}-01`, timeZone),
    toMs: year === 9999 && number === 12 ? MAX_INSTANT_MS + 1 : firstInstantOfDay(`${next}-01`, timeZone),
  };
}

/** Whether `text` is a calendar day written `YYYY-MM-DD` (one that exists: not 2025-02-30). */
export function isCalendarDay(text: unknown): text is string {
  if (typeof text !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const [year, month, day] = [Number(text.slice(0, 4)), Number(text.slice(5, 7)), Number(text.slice(8, 10))];
  const isLeap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = month === 2 && isLeap ? 29 : DAYS_IN_MONTH[month - 1];
  return monthDays !== undefined && day >= 1 && day <= monthDays;
}

/**
 * The first instant whose local date in `timeZone` is `date` (`YYYY-MM-DD`) or later — its local midnight, or
 * the first quarter hour after a midnight that summer time skipped: a quarter hour (offsets are multiples of
 * one), searched for within a day of the date's UTC midnight (offsets lie within ±14 h).
 */
export function firstInstantOfDay(date: string, timeZone: string): number {
  const utcMidnightMs =
    daysFromCivil(Number(date.slice(0, 4)), Number(date.slice(5, 7)), Number(date.slice(8, 10))) * DAY_MS;
  let low = Math.floor((utcMidnightMs - DAY_MS) / QUARTER_HOUR_MS); // its date is before `date`
  let high = Math.floor((utcMidnightMs + DAY_MS) / QUARTER_HOUR_MS); // its date is `date` or later
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (localDate(middle * QUARTER_HOUR_MS, timeZone) >= date) high = middle;
    else low = middle;
  }
  return high * QUARTER_HOUR_MS;
}

export type InstantError = { code: 'BAD_TIMESTAMP'; message: string };

/**
 * The instants wameter accepts, whatever their form: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, the
 * years formatInstant (ISO-8601) can print and core's calendar can place. Outside them a timestamp is a bad
 * input, refused where it enters (a later `new Date(…).toISOString()` would throw instead).
 */
export const MIN_INSTANT_MS = 0;
export const MAX_INSTANT_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
/**
 * Unix seconds must be below this (1e11 s is 5138-11-16): a larger number is almost surely milliseconds
 * (1e11 ms is 1973-03-03), so it is refused with that hint rather than read as a date thousands of years ahead.
 */
export const MAX_UNIX_SECONDS = 100_000_000_000;

const ACCEPTED_RANGE =
  'accepted: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, or Unix seconds from 0 to 99999999999';

/**
 * An instant as epoch milliseconds, from an ISO-8601 string with an offset, Unix seconds (number), or
 * Unix seconds as a string of digits (how Meta's webhooks write them); `undefined` when `value` is not an
 * instant or is outside the accepted range (parseInstant says which). The one rule for every instant that
 * enters wameter; allocation-free, for the per-event path.
 */
export function instantMs(value: unknown): number | undefined {
  let ms: number | undefined;
  if (typeof value === 'number') {
    ms = unixSecondsToMs(value);
  } else if (typeof value === 'string') {
    // A dash after four characters is an ISO date's (Unix seconds hold none): not scanned twice.
    ms =
      value.charCodeAt(4) !== 45 /* - */ && isUnixSeconds(value)
        ? unixSecondsToMs(Number(value))
        : parseIsoWithOffset(value);
  }
  return ms !== undefined && ms >= MIN_INSTANT_MS && ms <= MAX_INSTANT_MS ? ms : undefined;
}

/** instantMs as a Result whose error says what is wrong: not an instant, milliseconds, or out of range. */
export function parseInstant(value: unknown): Result<number, InstantError> {
  const ms = instantMs(value);
  if (ms !== undefined) return ok(ms);
  return err({ code: 'BAD_TIMESTAMP', message: whyNotAnInstant(value) });
}

/** Unix seconds in range → epoch ms, to the nearest millisecond; NaN, ±Infinity and the rest → undefined. */
function unixSecondsToMs(seconds: number): number | undefined {
  return seconds >= 0 && seconds < MAX_UNIX_SECONDS ? Math.floor(seconds * 1000 + 0.5) : undefined;
}

/** What is wrong with a value instantMs refuses: not an instant, milliseconds, or out of range (error paths). */
export function whyNotAnInstant(value: unknown): string {
  const shown = quote(value);
  const number =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && isUnixSeconds(value)
        ? Number(value)
        : NaN;
  if (number >= MAX_UNIX_SECONDS && unixSecondsToMs(number / 1000) !== undefined) {
    return (
      `${shown} looks like milliseconds; timestamps here take Unix seconds: ` +
      `write ${String(number / 1000)} (${formatInstant(Math.floor(number + 0.5))}) or an ISO-8601 instant`
    );
  }
  const isOutOfRange =
    typeof value === 'number' ||
    !Number.isNaN(number) ||
    (typeof value === 'string' && parseIsoWithOffset(value) !== undefined);
  if (isOutOfRange) return `${shown} is outside the range of instants wameter reads (${ACCEPTED_RANGE})`;
  return `${shown} is not an instant: use ISO-8601 with an offset (2024-03-01T10:00:00Z) or Unix seconds`;
}

/** A value as JSON for a message, shortened; numbers as JavaScript prints them (Infinity, not null). */
function quote(value: unknown): string {
  if (typeof value === 'number') return String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isUnixSeconds(value: string): boolean {
  if (value.length === 0) return false;
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
 * `YYYY-MM-DDTHH:MM[:SS[.fraction]](Z|±HH:MM|±HHMM|±HH)` → epoch ms, or undefined; `t` and `z` in lower case
 * too (RFC 3339 §5.6 allows them; Python's and Go's formatters write upper case, some loggers lower).
 * Hand-written because it runs once per event (Date.parse and a regex cost a sixth of reading a file), and
 * stricter than Date.parse: 2024-02-30 or 24:00 are refused, not rolled over. Character codes and small
 * integers only (a pair of digits that is not one is -1, where NaN was): ≈ 15 % fewer instructions a call.
 */
function parseIsoWithOffset(text: string): number | undefined {
  const length = text.length;
  if (
    length < 17 ||
    text.charCodeAt(4) !== 45 /* - */ ||
    text.charCodeAt(7) !== 45 ||
    (text.charCodeAt(10) !== 84 /* T */ && text.charCodeAt(10) !== 116) /* t */ ||
    text.charCodeAt(13) !== 58 /* : */
  ) {
    return undefined;
  }
  const century = twoDigitsAt(text, 0);
  const yearOfCentury = twoDigitsAt(text, 2);
  const month = twoDigitsAt(text, 5);
  const day = twoDigitsAt(text, 8);
  const hour = twoDigitsAt(text, 11);
  const minute = twoDigitsAt(text, 14);
  if ((century | yearOfCentury | month | day | hour | minute) < 0) return undefined;
  const year = century * 100 + yearOfCentury;
  let second = 0;
  let milliseconds = 0;
  let at = 16;
  if (at < length && text.charCodeAt(at) === 58 /* : */) {
    second = at + 2 < length ? twoDigitsAt(text, at + 1) : -1;
    if (second < 0) return undefined;
    at += 3;
    if (at < length && text.charCodeAt(at) === 46 /* . */) {
      at += 1;
      let places = 0;
      while (places < 9 && at < length && isDigitAt(text, at)) {
        if (places < 3) milliseconds = milliseconds * 10 + (text.charCodeAt(at) - 48);
        places += 1;
        at += 1;
      }
      if (places === 0) return undefined;
      for (let pad = places; pad < 3; pad++) milliseconds *= 10;
    }
  }
  if (at >= length) return undefined;
  let offsetMinutes = 0;
  const sign = text.charCodeAt(at);
  if (sign === 90 /* Z */ || sign === 122 /* z */) {
    at += 1;
  } else if (sign === 43 /* + */ || sign === 45 /* - */) {
    const offsetHours = at + 2 < length ? twoDigitsAt(text, at + 1) : -1;
    // ISO 8601's hours alone (`+05`), else minutes after a colon or not.
    const isHoursOnly = at + 3 === length;
    const hasColon = !isHoursOnly && at + 3 < length && text.charCodeAt(at + 3) === 58; /* : */
    const minutesAt = at + (hasColon ? 4 : 3);
    const offsetMins = isHoursOnly ? 0 : minutesAt + 1 < length ? twoDigitsAt(text, minutesAt) : -1;
    if (!(offsetHours >= 0 && offsetHours <= 23 && offsetMins >= 0 && offsetMins <= 59)) return undefined;
    offsetMinutes = (sign === 45 ? -1 : 1) * (offsetHours * 60 + offsetMins);
    at += isHoursOnly ? 3 : hasColon ? 6 : 5;
  } else {
    return undefined;
  }
  if (at !== length) return undefined;
  const isLeap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = month === 2 && isLeap ? 29 : DAYS_IN_MONTH[month - 1];
  if (!(month >= 1 && month <= 12 && day >= 1 && monthDays !== undefined && day <= monthDays)) {
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

/** Whether the character at `at` (inside `text`) is an ASCII digit. */
function isDigitAt(text: string, at: number): boolean {
  const code = text.charCodeAt(at);
  return code >= 48 && code <= 57;
}

/** The number the two digits at `at` and `at + 1` (both inside `text`) write, or -1 when either is none. */
function twoDigitsAt(text: string, at: number): number {
  const high = text.charCodeAt(at) - 48;
  const low = text.charCodeAt(at + 1) - 48;
  return high >= 0 && high <= 9 && low >= 0 && low <= 9 ? high * 10 + low : -1;
}

/** An instant as the clock of `timeZone` reads it, to the minute: "2025-07-01 08:00". */
export function localClock(atMs: number, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(atMs));
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year')}-${part('month')}-${part('day')} ${part('hour')}:${part('minute')}`;
}

/** Epoch milliseconds → "2024-03-01T10:05:03Z" (milliseconds shown only when present). */
export function formatInstant(atMs: number): string {
  const iso = new Date(atMs).toISOString();
  // Past year 9999 the ISO form has six digits and a sign (`+010000-…`): cut the milliseconds from the end.
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}
