// Checks and encodings every store engine shares (cursor, limits, scope, hashes), so that SQLite and
// PostgreSQL refuse the same inputs with the same errors and page the same way.

import { createHash } from 'node:crypto';
import { isValidTimeZone } from '../core/calendar.js';
import { isSameEvent, mergeCopies } from '../core/event-copies.js';
import { canonicalUser } from '../core/phone.js';
import type { CoreEvent } from '../core/events.js';
import { microsOf, sumMicros } from '../core/money.js';
import type { BillableUnit, Finding, PendingMessage, TierPosition } from '../core/units.js';
import {
  ReadOnlyOpenError,
  StoreInputError,
  cursorValue,
  type AnalyticsDimension,
  type AnalyticsQuery,
  type BusinessNumber,
  type AnalyticsPoint,
  type CurrencyTotals,
  type RatingChangesPage,
  type RatingRecord,
  type RawWebhookInput,
  type WebhookBodyInput,
  type UnitFilter,
  type UnitOrder,
} from './store.js';

/** A rating may only write rows of the WABAs it replaces; anything else would survive the next rating. */
export function assertInScope(
  rating: RatingRecord,
  result: { units: BillableUnit[]; pending: PendingMessage[]; findings: Finding[] },
): void {
  const scope = new Set(rating.wabas);
  const outside =
    result.units.find((u) => !scope.has(u.waba))?.waba ??
    result.pending.find((p) => !scope.has(p.waba))?.waba ??
    result.findings.map(findingWaba).find((w) => w !== null && !scope.has(w));
  if (outside !== undefined) {
    throw new Error(
      `rating ${rating.id} writes rows of WABA ${outside}, outside its scope [${rating.wabas.join(', ')}]`,
    );
  }
}

/**
 * `events.business` of an event stored as given: the business number it ties to its WABA — an inbound or an
 * outbound naming a user, or a status naming its WABA, a business number and a user (Meta's status webhook:
 * the entry's WABA and its phone_number_id), as the rater pairs them, when its writer is trusted
 * (`EventInput.isBusinessTied`) — or null. The rater keeps a pair of a status's WABA, number and user even when
 * its message's send log names another number (the send log wins for the message only).
 */
export function tiedBusinessOf(event: CoreEvent, isBusinessTied: boolean | undefined): string | null {
  if (isBusinessTied === false) return null;
  if (event.kind === 'inbound' || event.kind === 'outbound')
    return event.business !== '' && event.user !== '' ? event.business : null;
  if (event.kind === 'status' && event.waba !== undefined && event.business && event.user)
    return event.business;
  return null;
}

/**
 * An event as a listing gives it to the rater: marked `isUntied` when its row ties nothing (`events.business`
 * NULL) though its fields would (`tiedBusinessOf`): a writer not trusted with its number, or copies of which none
 * named the number the merge kept. The rater then counts no tie for it, as the stores' SQL counts none. The
 * event is the listing's own, just read: marked in place.
 */
export function withRowTie(event: CoreEvent, isRowUntied: boolean): CoreEvent {
  // Only inbound, outbound and status events may tie (tiedBusinessOf): those carry `isUntied`.
  if (isRowUntied && tiedBusinessOf(event, true) !== null) (event as { isUntied?: true }).isUntied = true;
  return event;
}

/**
 * `events.tied_user` of a row whose `events.business` is `tie`: the user of the pair it ties (`canonicalUser`,
 * as the rater keys pairs), or null when it ties nothing.
 */
export function tiedUserOf(event: CoreEvent, tie: string | null): string | null {
  if (tie === null || !('user' in event) || !event.user) return null;
  return canonicalUser(event.user);
}

/**
 * `events.business` of a stored row once a copy of its event is merged in (`merged`: the event as stored now,
 * merged or unchanged): its business number while a trusted copy named that very number — the row's own tie
 * (`storedTie`), or the copy's — else null. So an untrusted copy never turns a row into a tie, nor a tie into
 * one of another number (mergeCopies keeps the smaller of two numbers: a limited key's copy could choose it),
 * and a trusted copy ties the number it names; the same in any order of the copies.
 */
export function tiedBusinessAfterMerge(
  storedTie: string | null,
  merged: CoreEvent,
  copy: { event: CoreEvent; isBusinessTied?: boolean },
): string | null {
  const number = tiedBusinessOf(merged, true);
  if (number === null) return null;
  return storedTie === number || tiedBusinessOf(copy.event, copy.isBusinessTied) === number ? number : null;
}

/**
 * `events.is_trusted` of an event stored as given: whether its writer is trusted (`EventInput.isBusinessTied`
 * not false: a signed webhook, an import, a key for every WABA). Only a trusted writer's inbound or outbound
 * joins another writer's status naming no WABA (`messageJoinsStatusSql`, store.ts).
 */
export function isTrustedWriter(input: { isBusinessTied?: boolean }): boolean {
  return input.isBusinessTied !== false;
}

/**
 * `events.is_trusted` of a stored row once a copy of its event is merged in: true once any trusted copy was
 * stored, the row's or this one, so the same in any order of the copies; an untrusted copy never makes a row
 * trusted (nor changes its `source`, the first writer's, which an untrusted row joins statuses by).
 */
export function isTrustedAfterMerge(storedIsTrusted: boolean, copy: { isBusinessTied?: boolean }): boolean {
  return storedIsTrusted || isTrustedWriter(copy);
}

/**
 * A stored event with a copy of it (the same key) merged in (`mergeCopies`: the same whichever came first),
 * or undefined when the copy adds nothing to it (an identical redelivery, a bare copy of a fuller one).
 */
export function mergedCopy(stored: CoreEvent, copy: CoreEvent): CoreEvent | undefined {
  const merged = mergeCopies(stored, copy).event;
  return isSameEvent(merged, stored) ? undefined : merged;
}

/**
 * The body with the SHA-256 it is stored and found by (`raw_webhooks.sha256`, which finds a redelivery):
 * computed here from its bytes when the caller gives none, else the caller's, checked against them. Either
 * way no body is ever stored under another body's digest — the guarantee `checkedSha256` gives a caller that
 * passes one (a wrong digest would make a later redelivery of the same bytes a new body, and a different
 * body with that digest a duplicate of it). The webhook route gives none: its own hash and this check hashed
 * each body twice on the server's thread, the second time only to find the first right.
 */
export function withSha256(raw: WebhookBodyInput): RawWebhookInput {
  if (raw.sha256 === undefined)
    return { ...raw, sha256: createHash('sha256').update(raw.body).digest('hex') };
  return checkedSha256(raw as RawWebhookInput);
}

/**
 * `raw` with its digest checked against its bytes, and kept as their lower-case hex: a digest given in capitals
 * (accepted: hex is hex) was stored as given, so a redelivery of the same body, hashed in lower case, was not
 * found as its duplicate.
 */
export function checkedSha256(raw: RawWebhookInput): RawWebhookInput {
  const actual = createHash('sha256').update(raw.body).digest('hex');
  if (actual !== raw.sha256.toLowerCase()) {
    throw new Error(`raw webhook sha256 ${raw.sha256} does not match its body (${actual})`);
  }
  return raw.sha256 === actual ? raw : { ...raw, sha256: actual };
}
export function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new StoreInputError('BAD_LIMIT', `limit must be a positive integer, got ${limit}`);
  }
  return limit;
}
export function checkTimeZone(timeZone: string): string {
  if (!isValidTimeZone(timeZone)) {
    throw new StoreInputError(
      'BAD_TIME_ZONE',
      `"${timeZone}" is not an IANA time zone (e.g. UTC, Asia/Kolkata)`,
    );
  }
  return timeZone;
}
/** U+0000, which PostgreSQL keeps in no text (nor jsonb) and so no store is given in an id. */
const NUL = '\u0000';

/**
 * Where a page of units ends, in the order it was listed in (`UnitOrder`): the next page starts strictly
 * after this unit. Every order ends its key with (openedAtMs, id, waba), unique, so the order is total.
 */
export type UnitPosition =
  | { order: 'opened_at'; openedAtMs: number; id: string; waba: string }
  | {
      order: 'amount_desc';
      currency: string;
      /** null: the unit could not be priced (listed after its currency's priced units). */
      amountMicros: number | null;
      openedAtMs: number;
      id: string;
      waba: string;
    };

/**
 * SQL (both engines): a unit's place among its currency's units in `amount_desc` order, ascending — its
 * amount negated, and for a unit without an amount the largest 64-bit integer, after every priced one. One
 * key ascending, so that a page's cursor is a plain row comparison, `(currency, AMOUNT_DESC_KEY_SQL,
 * opened_at_ms, id, waba) > (…)`, which PostgreSQL answers with one seek of units_amount (units_waba_amount
 * within a WABA), SQLite with up to three (its unitPage) — a descending amount beside ascending columns made
 * it an OR the planners could only scan from the start: a page deep in 100,000 units took PostgreSQL 60–230
 * ms. Units' amounts are safe integers, so the negation cannot overflow. Spelt exactly as the indexes'
 * expression, which the planners match by its text.
 */
export const AMOUNT_DESC_KEY_SQL = 'coalesce(-amount_micros, 9223372036854775807)';

/** The words an order is named by in a refused cursor: the query parameter a client wrote. */
const ORDER_WORDS: Record<UnitOrder, string> = {
  opened_at: 'order=opened_at (the default: by opening time)',
  amount_desc: 'order=amount_desc',
};

/**
 * The cursor of a page of units that ends at `unit`, in `order`: `[openedAtMs, id, waba]` for `opened_at`
 * (the form earlier versions gave, so their clients' cursors still continue), `["amount_desc", currency,
 * amountMicros, openedAtMs, id, waba]` for `amount_desc`, as base64url JSON. It holds the sort key, so the
 * next page is one index seek past it, whatever was stored or deleted meanwhile.
 */
export function encodeUnitCursor(order: UnitOrder, unit: BillableUnit): string {
  const key =
    order === 'opened_at'
      ? [unit.openedAtMs, unit.id, unit.waba]
      : [order, unit.currency, unit.amountMicros, unit.openedAtMs, unit.id, unit.waba];
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/**
 * The unit a cursor of `order` continues after. A cursor of another order is refused naming both (its key is
 * not this order's: the page would start at a wrong place), as is one an earlier version gave, or one this
 * API never gave (BAD_CURSOR, a 400).
 */
export function decodeUnitCursor(cursor: string, order: UnitOrder): UnitPosition {
  const value = cursorValue(cursor);
  // A NUL character is in no id this API returns (the event parser refuses them), and PostgreSQL cannot
  // even compare one: a cursor holding one was made by hand.
  const isText = (item: unknown): item is string => typeof item === 'string' && !item.includes(NUL);
  let position: UnitPosition | undefined;
  if (
    Array.isArray(value) &&
    value.length === 3 &&
    Number.isSafeInteger(value[0]) &&
    isText(value[1]) &&
    isText(value[2])
  ) {
    position = { order: 'opened_at', openedAtMs: value[0] as number, id: value[1], waba: value[2] };
  } else if (
    Array.isArray(value) &&
    value.length === 6 &&
    value[0] === 'amount_desc' &&
    isText(value[1]) &&
    (value[2] === null || Number.isSafeInteger(value[2])) &&
    Number.isSafeInteger(value[3]) &&
    isText(value[4]) &&
    isText(value[5])
  ) {
    position = {
      order: 'amount_desc',
      currency: value[1],
      amountMicros: value[2] as number | null,
      openedAtMs: value[3] as number,
      id: value[4],
      waba: value[5],
    };
  }
  if (position !== undefined) {
    if (position.order === order) return position;
    throw new StoreInputError(
      'BAD_CURSOR',
      `cursor was returned for ${ORDER_WORDS[position.order]}, not ${ORDER_WORDS[order]}: pass it back with the order it came with, or start paging again without cursor`,
    );
  }
  // Versions before the units' order took in the WABA returned `[opened_at, id]`: the client did pass it
  // back unchanged, so it is told so, and what to do.
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    Number.isSafeInteger(value[0]) &&
    typeof value[1] === 'string'
  ) {
    throw new StoreInputError(
      'BAD_CURSOR',
      'cursor was returned by an earlier version of wameter, whose pages this one cannot continue: start paging again without cursor',
    );
  }
  throw new StoreInputError(
    'BAD_CURSOR',
    'cursor is not one this API returned: pass next_cursor back unchanged',
  );
}

/**
 * Text a store keeps that may quote what a client sent (a webhook's parse error quotes its body), with each
 * NUL character (U+0000) written as the six characters `\u0000`: PostgreSQL keeps NUL in no text column, and
 * both engines write the same text so that both give the same back. Raw bodies are bytes, kept with their NULs.
 */
export function storableText(text: string | null): string | null {
  return text === null || !text.includes(NUL) ? text : text.replaceAll(NUL, '\\u0000');
}

/**
 * Refuses a caller's filter value (`name`: the filter's field) holding a NUL character (U+0000): no stored
 * id, number or market holds one (the event parser refuses them), and PostgreSQL cannot even compare one. So
 * it is the caller's mistake on either engine (`BAD_FILTER`, a 400), never a store failure.
 */
export function checkFilterText(name: string, values: string | readonly string[] | undefined): void {
  if (values === undefined) return;
  for (const value of typeof values === 'string' ? [values] : values) {
    if (value.includes(NUL)) {
      throw new StoreInputError(
        'BAD_FILTER',
        `"${name}" holds a NUL character (U+0000), which no stored value has: ${JSON.stringify(value)}`,
      );
    }
  }
}

/** `checkFilterText` for every text field of a units or pending messages filter. */
export function checkFilter(filter: UnitFilter): void {
  checkFilterText('wabas', filter.wabas);
  checkFilterText('waba', filter.waba);
  checkFilterText('business', filter.business);
  checkFilterText('user', filter.user);
  checkFilterText('joinedNumber', filter.joinedNumber);
  checkFilterText('category', filter.category);
  checkFilterText('type', filter.type);
  checkFilterText('market', filter.market);
  for (const zone of filter.localPeriod?.zones ?? []) checkFilterText('localPeriod', zone.wabas);
}

/** `checkFilterText` for Meta's list filters of an analytics query (`AnalyticsQuery`). */
export function checkAnalyticsLists(query: AnalyticsQuery): void {
  checkFilterText('businesses', query.businesses);
  checkFilterText('countries', query.countries);
  checkFilterText('categories', query.categories);
  checkFilterText('types', query.types);
  checkFilterText('directions', query.directions);
  checkFilterText('eras', query.eras);
}

/**
 * The columns (SQL of units aliased `u`) Meta's list filters of an analytics query test, with their lists:
 * each engine writes `column IN list` in its own dialect. An empty list is kept (it matches nothing).
 */
export function analyticsListFilters(
  query: AnalyticsQuery,
  jsonText: JsonTextSql,
): Array<{ sql: string; values: readonly string[] }> {
  checkAnalyticsLists(query);
  const lists: Array<{ sql: string; values: readonly string[] | undefined }> = [
    { sql: 'u.business', values: query.businesses },
    { sql: 'u.country', values: query.countries },
    { sql: 'u.category', values: query.categories },
    { sql: 'u.type', values: query.types },
    { sql: dimensionSql('direction', jsonText), values: query.directions },
    { sql: 'u.era', values: query.eras },
  ];
  return lists.filter(
    (list): list is { sql: string; values: readonly string[] } => list.values !== undefined,
  );
}

/** Business numbers sorted by WABA, then number, compared by code unit (alike on both engines). */
export function sortedBusinessNumbers(numbers: BusinessNumber[]): BusinessNumber[] {
  const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return numbers.sort((a, b) => compare(a.waba, b.waba) || compare(a.business, b.business));
}

/**
 * A display number as Meta's analytics write it (`15550783881`): the digits of `metadata.display_phone_number`
 * (Meta writes them bare; a `+`, spaces or dashes are dropped), or undefined when it holds none or anything
 * other than digits and those signs.
 */
export function displayNumberDigits(value: unknown): string | undefined {
  if (typeof value !== 'string' || !/^[+\d\s().-]+$/.test(value)) return undefined;
  const digits = value.replace(/\D/g, '');
  return digits.length > 0 && digits.length <= 20 ? digits : undefined;
}

/**
 * A unit's tier position as read from its JSON column, its keys in the order `TierPosition` declares (the
 * rater's): PostgreSQL's jsonb gives them back sorted by length, and /v1/units answers it as read.
 */
export function tierFromStored(parsed: unknown): TierPosition {
  const tier = parsed as TierPosition;
  return { count: tier.count, band: tier.band, month: tier.month };
}

/** The next page of a re-rate's changed units: `[ratingId, seq]`, the first change it lists. */
export function encodeChangesCursor(ratingId: string, seq: number): string {
  return Buffer.from(JSON.stringify([ratingId, seq])).toString('base64url');
}

/**
 * The checked request of a page of the rating `ratingId`'s changed units: its `limit`, and `from`, the first
 * change it lists (0 without a cursor).
 */
export function changesPageRequest(
  ratingId: string,
  page: { limit: number; cursor?: string },
): { limit: number; from: number } {
  checkFilterText('id', ratingId);
  const limit = checkLimit(page.limit);
  return { limit, from: page.cursor === undefined ? 0 : decodeChangesCursor(page.cursor, ratingId) };
}

/**
 * A page of the rating `ratingId`'s changed units from the `limit + 1` read from `from` on (one more than the
 * page: whether another page follows).
 */
export function changesPage(
  read: unknown[],
  limit: number,
  from: number,
  ratingId: string,
): RatingChangesPage {
  return {
    units: read.slice(0, limit),
    nextCursor: read.length > limit ? encodeChangesCursor(ratingId, from + limit) : null,
  };
}

/** The largest `rating_changes.seq` (PostgreSQL's `integer`). */
const MAX_CHANGE_SEQ = 2_147_483_647;

/** The first change (`seq`) of the page `cursor` asks of the rating `ratingId`'s changed units. */
export function decodeChangesCursor(cursor: string, ratingId: string): number {
  const value = cursorValue(cursor);
  // A change's place is an integer column of 32 bits in PostgreSQL: a larger one came from no page of ours
  // (and would be a store error there, a 503, where SQLite answers an empty page).
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    Number.isSafeInteger(value[1]) &&
    value[1] >= 0 &&
    value[1] <= MAX_CHANGE_SEQ
  ) {
    if (value[0] === ratingId) return value[1] as number;
    if (typeof value[0] === 'string') {
      throw new StoreInputError(
        'BAD_CURSOR',
        `cursor pages another rating's changes (${value[0]}): pass next_cursor back with the rating it came from`,
      );
    }
  }
  throw new StoreInputError(
    'BAD_CURSOR',
    'cursor is not one this API returned: pass next_cursor back unchanged',
  );
}

export function findingWaba(finding: Finding): string | null {
  return typeof finding.waba === 'string' ? finding.waba : null;
}
/**
 * Analytics points by `startMs`, then by the asked dimensions in order (NULL first; tier bands by the count
 * they start at, so "4:5" comes before "10:"), whatever order the engine grouped them in.
 */
export function sortPoints(
  points: AnalyticsPoint[],
  dimensions: readonly AnalyticsDimension[],
): AnalyticsPoint[] {
  const compare = (a: string | null | undefined, b: string | null | undefined) =>
    a === b ? 0 : a == null ? -1 : b == null ? 1 : a < b ? -1 : 1;
  const bandStart = (band: string) => Number(band.split(':')[0]);
  const compareBands = (a: string | null | undefined, b: string | null | undefined) =>
    a == null || b == null ? compare(a, b) : bandStart(a) - bandStart(b) || compare(a, b);
  return points.sort((a, b) => {
    if (a.startMs !== b.startMs) return a.startMs - b.startMs;
    for (const d of dimensions) {
      const order = (d === 'tier' ? compareBands : compare)(a.dimensions[d], b.dimensions[d]);
      if (order !== 0) return order;
    }
    return 0;
  });
}
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Refuses a database that a newer wameter migrated (a rollback to an older binary): this version would
 * write rows in a layout the newer one changed. Thrown inside the migration's transaction: nothing changes.
 */
export function checkNoNewerMigrations(
  applied: ReadonlySet<number>,
  known: readonly { version: number }[],
): void {
  const newest = Math.max(0, ...known.map((migration) => migration.version));
  const newer = [...applied].filter((version) => version > newest).sort((a, b) => a - b);
  if (newer.length > 0) {
    throw new Error(
      `this database was migrated by a newer wameter (schema migration ${newer.join(', ')}; this version knows up to ${newest}): run that version or a newer one against it`,
    );
  }
}

/**
 * What a read-only open asks of a store's applied migrations (`undefined`: no `schema_migrations` table):
 * a wameter store, migrated exactly as far as this version knows. One a newer wameter migrated is refused as
 * a writing open refuses it. An older one is refused too rather than read: this version's queries need what
 * its missing migrations add (keys per WABA, new columns), and a read-only open must not apply them.
 * `where` names the store ("/var/lib/wameter.db"); `noTables` says why nothing is there.
 */
export function checkReadableMigrations(
  applied: ReadonlySet<number> | undefined,
  known: readonly { version: number }[],
  where: string,
  noTables: string,
): void {
  // Migrations commit with their record, so an empty schema_migrations holds no wameter tables either.
  if (applied === undefined || applied.size === 0) {
    throw new ReadOnlyOpenError('NO_STORE', `no wameter store in ${where}: ${noTables}`);
  }
  checkNoNewerMigrations(applied, known);
  const missing = known.map((migration) => migration.version).filter((version) => !applied.has(version));
  if (missing.length > 0) {
    throw new ReadOnlyOpenError(
      'STORE_NEEDS_MIGRATION',
      `the wameter store in ${where} is older than this wameter (schema migration ${missing.join(', ')} not applied yet), and a read-only open does not migrate it`,
    );
  }
}

/**
 * Folds (currency, category) rows from SQL — `units`, `unpriced`, `amount_micros` — into totals per currency;
 * exact integers throughout (an amount past 2^53 micros, read as a bigint or decimal text, stays a bigint).
 */
export function foldTotals(rows: readonly Record<string, unknown>[]): Record<string, CurrencyTotals> {
  const totals: Record<string, CurrencyTotals> = {};
  for (const row of rows) {
    const currency = String(row.currency);
    const units = Number(row.units);
    const unpriced = Number(row.unpriced);
    const amountMicros = microsOf(row.amount_micros);
    const entry = (totals[currency] ??= { amountMicros: 0, units: 0, unpriced: 0, byCategory: {} });
    entry.units += units;
    entry.unpriced = (entry.unpriced ?? 0) + unpriced;
    entry.amountMicros = sumMicros(entry.amountMicros, amountMicros);
    entry.byCategory[String(row.category)] = { units, unpriced, amountMicros };
  }
  return totals;
}

/**
 * A rating's totals as stored (JSON): an amount past 2^53 micros, a bigint here, is written as a decimal
 * string, which JSON numbers could not hold exactly.
 */
export function storedTotalsJson(
  totals: Record<string, CurrencyTotals> | Record<string, Record<string, CurrencyTotals>>,
): string {
  return JSON.stringify(totals, (_key, value: unknown) =>
    typeof value === 'bigint' ? value.toString() : value,
  );
}

/** Totals per WABA as `storedTotalsJson` wrote them (parsed). */
export function totalsByWabaFromStored(parsed: unknown): Record<string, Record<string, CurrencyTotals>> {
  const byWaba = parsed as Record<string, unknown>;
  return Object.fromEntries(Object.entries(byWaba).map(([waba, totals]) => [waba, totalsFromStored(totals)]));
}

/** A rating's totals as `storedTotalsJson` wrote them (parsed): string amounts back to bigints. */
export function totalsFromStored(parsed: unknown): Record<string, CurrencyTotals> {
  const totals = parsed as Record<string, CurrencyTotals>;
  for (const entry of Object.values(totals)) {
    entry.amountMicros = microsOf(entry.amountMicros);
    for (const category of Object.values(entry.byCategory))
      category.amountMicros = microsOf(category.amountMicros);
  }
  return totals;
}

/**
 * The SQL of an analytics point's unpriced units over units aliased `u`: those with no amount, the rule
 * `totals` counts `unpriced` by (a unit that could not be priced is the only one whose amount is NULL).
 */
export const UNPRICED_UNITS_SQL = 'count(*) - count(u.amount_micros)';

/**
 * The SQL of a text field of a JSON column, as each engine writes it (`u.tier` is TEXT in SQLite, jsonb in
 * PostgreSQL). Only fixed column and field names go in: user input never becomes SQL.
 */
export type JsonTextSql = (column: string, field: string) => string;

/**
 * The SQL (SQLite and PostgreSQL alike) of an analytics dimension over units aliased `u`. `direction` is
 * Meta's conversation_direction: user-initiated for what the user opened (service, CBP-2022 user-initiated,
 * a free entry point after the user's ad click), business-initiated for templates. `tier` is the band of the
 * unit's stored tier position (`TierPosition.band`), NULL without one; `jsonText` reads it in the engine's
 * JSON dialect.
 */
export function dimensionSql(dimension: AnalyticsDimension, jsonText: JsonTextSql): string {
  switch (dimension) {
    case 'waba':
    case 'business':
    case 'country':
    case 'market':
    case 'category':
    case 'type':
    case 'currency':
      return `u.${dimension}`;
    case 'direction':
      return `(CASE WHEN u.category IN ('service', 'user_initiated', 'referral_conversion') THEN 'USER_INITIATED' ELSE 'BUSINESS_INITIATED' END)`;
    case 'tier':
      return jsonText('u.tier', 'band');
  }
  throw new Error(`unknown analytics dimension ${String(dimension)}`);
}
