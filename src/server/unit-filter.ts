// The units filters of the query API (`waba, business, user, category, type, market, from, to`), read once
// for every route that takes them, always limited to the WABAs the caller's key may read; and the limit on
// the range /v1/analytics answers.

import {
  ABBREVIATION_NOTE,
  isMonth,
  isTimeZoneAbbreviation,
  isValidTimeZone,
  localMonthRange,
  parseInstant,
} from '../core/calendar.js';
import { canonicalUser, normalisePhone } from '../core/phone.js';
import { err, ok, type Result } from '../core/result.js';
import { PRICING_TYPES, UNIT_CATEGORIES, type PricingType, type UnitCategory } from '../core/units.js';
import {
  UNIT_ORDERS,
  type Granularity,
  type LocalPeriod,
  type UnitFilter,
  type UnitOrder,
} from '../store/store.js';
import type { ApiKey } from './config.js';
import type { ErrorCode } from './errors.js';

export interface FilterProblem {
  code: Extract<ErrorCode, 'BAD_QUERY' | 'FORBIDDEN_WABA'>;
  message: string;
}

/** The WABAs a key may read; `undefined` = every WABA. */
export function scopeOfKey(apiKey: ApiKey): readonly string[] | undefined {
  return apiKey.wabas === '*' ? undefined : apiKey.wabas;
}

export function mayKeyAccess(apiKey: ApiKey, waba: string): boolean {
  const scope = scopeOfKey(apiKey);
  return scope === undefined || scope.includes(waba);
}

/**
 * An instant whose offset's `+` a URL decoder read as a space (`2025-07-01T00:00:00 05:30`): curl and a browser
 * send a `+` typed in a query as it is, and the query string's rules make it a space.
 */
const PLUS_READ_AS_SPACE = /\d{2}:\d{2}(:\d{2}(\.\d+)?)? \d{2}(:?\d{2})?$/;

/** An optional instant parameter (ISO-8601 with offset or Unix seconds). */
export function instantQuery(
  query: (name: string) => string | undefined,
  name: string,
): Result<number | undefined, FilterProblem> {
  const text = query(name);
  if (text === undefined || text === '') return ok(undefined);
  const parsed = parseInstant(text);
  if (parsed.ok) return ok(parsed.value);
  const plus = PLUS_READ_AS_SPACE.test(text)
    ? ` (a "+" in a URL's query is read as a space: write it as %2B, as in ${name}=2025-07-01T00:00:00%2B05:30, or give the instant in UTC with Z)`
    : '';
  return err({ code: 'BAD_QUERY', message: `"${name}": ${parsed.error.message}${plus}.` });
}

/**
 * The `time_zone` parameter (/v1/analytics, /v1/dashboard/overview): an IANA name, or absent. A name the
 * runtime does not know is refused naming the parameter, before the store is asked (which would say only
 * that the value is no time zone).
 */
export function timeZoneQuery(
  query: (name: string) => string | undefined,
): Result<string | undefined, FilterProblem> {
  const text = query('time_zone');
  if (text === undefined || text === '') return ok(undefined);
  if (isValidTimeZone(text)) return ok(text);
  const shown = text.length > 64 ? `${text.slice(0, 61)}...` : text;
  return err({
    code: 'BAD_QUERY',
    message: `"time_zone": ${JSON.stringify(shown)} is not an IANA time zone${
      isTimeZoneAbbreviation(text) ? ` but ${ABBREVIATION_NOTE}` : ''
    } (e.g. UTC, Asia/Kolkata, America/Sao_Paulo).`,
  });
}

/**
 * A `user` parameter as the units name users: a phone number written as people write it (+, spaces, dashes, a
 * leading 00) becomes Meta's wa_id digits, in the one form units name the user by (canonicalUser), as `wameter
 * explain --user` reads it; anything else (a
 * business-scoped user id) is taken as given.
 */
export function userQuery(text: string): string {
  const phone = normalisePhone(text);
  return phone.ok ? canonicalUser(phone.value) : text.trim();
}

/** Letters, a period, then letters and digits (`user.9373795779eb…`): shaped like a user id, whatever its prefix. */
const SCOPED_ID_LIKE = /^[A-Za-z]+(\.[A-Za-z0-9]+)+$/;

/**
 * Joins `filter`'s `user`, when it is shaped as a business-scoped id, to the number the rating joined
 * it to — Meta gave them together (`from_user_id`, `contacts[].user_id`) in its portfolio, and the id's units
 * are stored under the number —, found by `joinedNumberOf` as GET /v1/explain finds it for the caller's key
 * (RatingService.joinedNumber): then units of either match (`UnitFilter.joinedNumber`). Asked once the bill is
 * current.
 */
export async function joinScopedUser(
  filter: UnitFilter,
  joinedNumberOf: (user: string) => Promise<string | undefined>,
): Promise<void> {
  // Only an id shaped as Meta's are: `abc` or `12` (a mistake, refused unless a unit names it) costs no rating.
  if (filter.user === undefined || !SCOPED_ID_LIKE.test(filter.user.trim())) return;
  const number = await joinedNumberOf(filter.user);
  if (number !== undefined && number !== filter.user) filter.joinedNumber = number;
}

/**
 * Meta's business-scoped user id (BSUID, sent for users who hide their number behind a username): a two-letter
 * country code, a period, and letters and digits (`US.13491208655302741918`; a parent id `US.ENT.1181…`).
 */
const BUSINESS_SCOPED_USER_ID = /^[A-Za-z]{2}(\.[A-Za-z0-9]+)+$/;

/**
 * Why `text` names no user by its form — neither a phone number as `userQuery` reads one nor a business-scoped
 * user id — or undefined when it does. Users are stored as their events wrote them (a client's event line may
 * name one in any words), so such a value is refused only when no event the caller may read names it
 * (GET /v1/explain): a form alone never refuses a user the store holds.
 */
export function userFormProblem(text: string): string | undefined {
  const phone = normalisePhone(text);
  if (phone.ok || BUSINESS_SCOPED_USER_ID.test(text.trim())) return undefined;
  const shown = JSON.stringify(text.length > 64 ? `${text.slice(0, 61)}...` : text);
  const asPhone = /^[\s\d+\-.()\u00a0]+$/.test(text) ? phone.error.replace(JSON.stringify(text), shown) : '';
  return (
    `"user" ${shown} is neither a phone number (its digits with the country code; +, spaces, dashes and a ` +
    `leading 00 are read${asPhone === '' ? '' : `: ${asPhone}`}) nor a business-scoped user id ` +
    `("US.13491208655302741918")`
  );
}

/**
 * Why a units filter's `user` (`given` as the request wrote it, read into `filter.user`) is refused, or
 * undefined: a value that is no phone number nor business-scoped id (`abc`, `12`, `0981…`) and names
 * no unit the key may read is a mistake, refused as GET /v1/explain refuses it — never answered with an empty
 * page or `{"totals":{}}`, which read as "nothing billed to this user". A user a client's lines named in other
 * words is still found (`hasUnits` asks the store, limited to the key's WABAs), and an id written as Meta's
 * documentation writes scoped ids (`user.9373…`) is never refused: the rating may have joined it to a number,
 * under which its units are stored. Asked once the bill is current.
 */
export async function unnamedUserProblem(
  given: string | undefined,
  filter: UnitFilter,
  hasUnits: (filter: UnitFilter) => Promise<boolean>,
): Promise<FilterProblem | undefined> {
  if (given === undefined || filter.user === undefined) return undefined;
  const problem = userFormProblem(given);
  if (problem === undefined || SCOPED_ID_LIKE.test(given.trim())) return undefined;
  const named = await hasUnits({
    ...(filter.wabas === undefined ? {} : { wabas: filter.wabas }),
    user: filter.user,
    ...(filter.joinedNumber === undefined ? {} : { joinedNumber: filter.joinedNumber }),
  });
  return named
    ? undefined
    : { code: 'BAD_QUERY', message: `${problem}, and no unit of this key's WABAs names such a user.` };
}

/**
 * `market` as units name it: one of `names` (a market table's), whatever its case; anything else is refused
 * rather than answered with nothing. Without `names`, taken as given.
 */
function marketQuery(text: string, names: readonly string[] | undefined): Result<string, FilterProblem> {
  if (names === undefined || names.includes(text)) return ok(text);
  const wanted = text.trim().toLowerCase();
  const named = names.find((name) => name.toLowerCase() === wanted);
  if (named !== undefined) return ok(named);
  return err({
    code: 'BAD_QUERY',
    message: `"market" ${JSON.stringify(text)} is no market of the table; markets: ${names.join(', ')}.`,
  });
}

export function parseUnitFilter(
  query: (name: string) => string | undefined,
  apiKey: ApiKey,
  marketNames?: readonly string[],
): Result<UnitFilter, FilterProblem> {
  const filter: UnitFilter = {};
  const scope = scopeOfKey(apiKey);
  if (scope !== undefined) filter.wabas = scope;
  const waba = query('waba');
  if (waba) {
    if (!mayKeyAccess(apiKey, waba)) {
      return err({
        code: 'FORBIDDEN_WABA',
        message: `WABA ${JSON.stringify(waba)} is not one of this key's.`,
      });
    }
    filter.waba = waba;
  }
  const business = query('business');
  if (business) filter.business = business;
  const market = query('market');
  if (market) {
    const named = marketQuery(market, marketNames);
    if (!named.ok) return named;
    filter.market = named.value;
  }
  const user = query('user');
  if (user) filter.user = userQuery(user);
  // In any letter case, as `market` and the analytics' `granularity` and `dimensions`: Meta's own API and
  // exports write them in capitals (MARKETING, FREE_CUSTOMER_SERVICE).
  const category = query('category')?.toLowerCase();
  if (category) {
    if (!(UNIT_CATEGORIES as readonly string[]).includes(category)) {
      return err({
        code: 'BAD_QUERY',
        message: `"category" must be one of ${UNIT_CATEGORIES.join(', ')} (in any letter case).`,
      });
    }
    filter.category = category as UnitCategory;
  }
  const type = query('type')?.toLowerCase();
  if (type) {
    if (!(PRICING_TYPES as readonly string[]).includes(type)) {
      return err({
        code: 'BAD_QUERY',
        message: `"type" must be one of ${PRICING_TYPES.join(', ')} (in any letter case).`,
      });
    }
    filter.type = type as PricingType;
  }
  const from = instantQuery(query, 'from');
  if (!from.ok) return from;
  const to = instantQuery(query, 'to');
  if (!to.ok) return to;
  if (from.value !== undefined) filter.fromMs = from.value;
  if (to.value !== undefined) filter.toMs = to.value;
  if (from.value !== undefined && to.value !== undefined && to.value < from.value) {
    return err({ code: 'BAD_QUERY', message: '"to" is before "from".' });
  }
  return ok(filter);
}

/**
 * The `month` parameter (/v1/units, /v1/units.csv, /v1/totals): a month, `YYYY-MM`, or absent. Not with `from`
 * or `to`: those are UTC instants, a month is each WABA's own, and which one was meant cannot be told.
 */
export function monthQuery(
  query: (name: string) => string | undefined,
): Result<string | undefined, FilterProblem> {
  const text = query('month');
  if (text === undefined || text === '') return ok(undefined);
  if (!isMonth(text)) {
    const shown = text.length > 64 ? `${text.slice(0, 61)}...` : text;
    return err({
      code: 'BAD_QUERY',
      message: `"month": ${JSON.stringify(shown)} is not a month: write it YYYY-MM (2025-07).`,
    });
  }
  if (query('from') || query('to')) {
    return err({
      code: 'BAD_QUERY',
      message:
        '"month" chooses the units billed in a month by each WABA\'s clock, "from" and "to" instants in UTC: give one or the other, not both.',
    });
  }
  return ok(text);
}

/**
 * The `order` parameter (/v1/units, /v1/units.csv): one of UNIT_ORDERS, in any letter case (`opened_at` when
 * absent); another value is refused naming them, never answered in the default order, which would read as
 * sorted.
 */
export function unitOrderQuery(
  query: (name: string) => string | undefined,
): Result<UnitOrder, FilterProblem> {
  const text = query('order');
  if (text === undefined || text === '') return ok('opened_at');
  const order = text.trim().toLowerCase();
  if ((UNIT_ORDERS as readonly string[]).includes(order)) return ok(order as UnitOrder);
  const shown = text.length > 64 ? `${text.slice(0, 61)}...` : text;
  return err({
    code: 'BAD_QUERY',
    message: `"order" ${JSON.stringify(shown)} is no order of the units: give opened_at (the default, by opening time) or amount_desc (the dearest first, per currency).`,
  });
}

/**
 * The instants of `month` on the clock of each of `wabas` (`timeZoneOf`: the accounts file's zone), grouped by
 * zone for the store (`UnitFilter.localPeriod`): the units a WABA opened in that month by its own clock, as
 * `wameter rate --month` chooses them. WABAs whose month is UTC's are left to `others` (no list to send).
 */
export function localMonthFilter(
  month: string,
  wabas: readonly string[],
  timeZoneOf: (waba: string) => string,
): LocalPeriod {
  const others = localMonthRange(month, 'UTC');
  const byRange = new Map<string, { wabas: string[]; fromMs: number; toMs: number }>();
  const rangeOfZone = new Map<string, { fromMs: number; toMs: number }>();
  for (const waba of wabas) {
    const zone = timeZoneOf(waba);
    let range = rangeOfZone.get(zone);
    if (range === undefined) rangeOfZone.set(zone, (range = localMonthRange(month, zone)));
    if (range.fromMs === others.fromMs && range.toMs === others.toMs) continue;
    const key = `${range.fromMs}:${range.toMs}`;
    const group = byRange.get(key);
    if (group === undefined) byRange.set(key, { wabas: [waba], ...range });
    else group.wabas.push(waba);
  }
  return { zones: [...byRange.values()], others };
}

/** The granularities of /v1/analytics, finest first. */
export const ANALYTICS_GRANULARITIES: readonly Granularity[] = ['HALF_HOUR', 'DAILY', 'MONTHLY'];

/**
 * The most buckets (half hours, days, months) one /v1/analytics request may span: 208 days of half hours,
 * 27 years of days, 800 years of months. Every realistic request is answered; a range of millions is not:
 * the SQLite store lists a range's local days or months one by one, in the server's thread (DAILY over
 * 1970–9999, 3 million days, took 38 s, and every webhook waited; 10,000 days take about 0.3 s).
 */
export const MAX_ANALYTICS_BUCKETS = 10_000;

/** A bucket's length for counting them (a month: the Gregorian average), so counts are "about". */
const BUCKET_MS: Record<Granularity, number> = {
  HALF_HOUR: 30 * 60_000,
  DAILY: 86_400_000,
  MONTHLY: (365.2425 / 12) * 86_400_000,
};
const BUCKET_WORDS: Record<Granularity, string> = {
  HALF_HOUR: 'half hours',
  DAILY: 'days',
  MONTHLY: 'months',
};

/**
 * Why /v1/analytics refuses a range of `rangeMs` (start to end, narrowed by from and to) in `granularity`'s
 * buckets — more than MAX_ANALYTICS_BUCKETS — saying what to ask instead; undefined when it is answered.
 */
export function analyticsRangeRefusal(rangeMs: number, granularity: Granularity): string | undefined {
  const count = (g: Granularity) => Math.ceil(rangeMs / BUCKET_MS[g]);
  if (count(granularity) <= MAX_ANALYTICS_BUCKETS) return undefined;
  const coarser = ANALYTICS_GRANULARITIES.slice(ANALYTICS_GRANULARITIES.indexOf(granularity) + 1).filter(
    (g) => count(g) <= MAX_ANALYTICS_BUCKETS,
  );
  return (
    `The range asked (start to end, narrowed by from and to) spans about ${count(granularity)} ` +
    `${granularity} buckets (${BUCKET_WORDS[granularity]}); at most ${MAX_ANALYTICS_BUCKETS} are answered: ` +
    `narrow the range${coarser.length === 0 ? '' : `, or use a coarser granularity (${coarser.join(' or ')})`}.`
  );
}
