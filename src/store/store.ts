// The one storage interface. sqlite/ and postgres/ implement it; everything outside those folders is
// engine-agnostic. A contract suite (store.contract.ts) runs unchanged against both real engines.

import { META_STATUS_WORDS, type CoreEvent } from '../core/events.js';
import type { Micros } from '../core/money.js';
import type { MicrosTotals } from '../core/report.js';
import type { BillableUnit, Era, Finding, PendingMessage, PricingType, UnitCategory } from '../core/units.js';

/** A webhook POST body exactly as received: the only evidence Meta ever gives, so it is kept verbatim. */
export interface RawWebhookInput {
  receivedAtMs: number;
  /** The exact bytes Meta signed. */
  body: Uint8Array;
  /** Hex SHA-256 of `body`: an identical redelivery is recognised by it. */
  sha256: string;
  /** Why the body could not be read (bad JSON…), or null. Such bodies are kept for inspection. */
  parseError: string | null;
  /**
   * The business numbers the body names with their display number (`metadata.display_phone_number` beside
   * `metadata.phone_number_id`), kept (`businessNumbers`) when the body is stored, not when it is a redelivery.
   * Only a writer trusted to tie numbers to WABAs (a signed webhook of an unbound secret) gives them.
   */
  businessNumbers?: readonly BusinessNumber[];
}

/**
 * A body as `Store.ingestWebhook` takes it: its `sha256` may be left out, and the store then computes it from
 * the bytes (engine-checks.ts `withSha256`); one given is checked against them.
 */
export type WebhookBodyInput = Omit<RawWebhookInput, 'sha256'> & { sha256?: string };

/**
 * A business number's display number, as Meta's analytics answer it for the PHONE dimension and read it in
 * `phone_numbers`: the number's digits only (`15550783881`), from the webhooks of its WABA.
 */
export interface BusinessNumber {
  waba: string;
  /** The phone_number_id (`business` everywhere else). */
  business: string;
  displayNumber: string;
}

/**
 * SQL, the same in SQLite and PostgreSQL, for a WABA column escaped as `eventKey` (core/events.ts) escapes it
 * at the head of an idempotency key: `\` → `\\`, then `:` → `\:`.
 */
export function escapedWabaSql(column: string): string {
  return `replace(replace(${column}, '\\', '\\\\'), ':', '\\:')`;
}

/**
 * Migration 3 of both stores: stored idempotency keys rewritten as `eventKey` now builds them (the event's
 * WABA, escaped, leads; `:` alone when it names none), so a redelivery after the upgrade is still a duplicate.
 */
export const EVENT_KEYS_PER_WABA_SQL = `UPDATE events SET key = CASE
  WHEN waba IS NULL THEN ':' || key
  ELSE ${escapedWabaSql('waba')} || ':' || key
END;`;

/**
 * Meta's status words that make a message of a WABA known from a status naming that WABA alone (a business
 * that sends through Meta's API and keeps no send log): a status naming no WABA joins it as the rater joins
 * it (`recordFor`: any record of its id). Every word Meta documents for a message's status is here
 * (`deleted`: a message the user deleted; `warning`: a catalog message's item); a status of a word Meta
 * never documented joins nothing here (the rater joins it: docs/storage.md).
 */
export const MESSAGE_STATUS_WORDS: readonly string[] = META_STATUS_WORDS;

/**
 * SQL, both engines: the idempotency keys of the outbound and the inbound message `messageId` of `waba`, and
 * of the statuses naming `waba` that make the message known (`MESSAGE_STATUS_WORDS`).
 */
export function messageKeysSql(waba: string, messageId: string): string {
  return `${recordKeysSql(waba, messageId)}, ${inboundKeySql(waba, messageId)}`;
}

/**
 * SQL, both engines: the idempotency keys of the events that make message `messageId` a business message of
 * `waba` — its outbound, and the statuses naming `waba` with one of `MESSAGE_STATUS_WORDS` (the rater's records:
 * `recordFor`).
 */
export function recordKeysSql(waba: string, messageId: string): string {
  const escaped = escapedWabaSql(waba);
  return [
    `${escaped} || ':outbound:' || ${messageId}`,
    ...MESSAGE_STATUS_WORDS.map((word) => `${escaped} || ':status:' || ${messageId} || ':${word}'`),
  ].join(', ');
}

/** SQL, both engines: the idempotency key of the inbound message `messageId` of `waba`. */
export function inboundKeySql(waba: string, messageId: string): string {
  return `${escapedWabaSql(waba)} || ':inbound:' || ${messageId}`;
}

/**
 * SQL, both engines: status `s`, naming no WABA, is listed with a WABA of `listing_scope(waba)` by its message
 * (`messageJoinsStatusSql` decides which stored messages count), as the rater gives it one:
 * - to every WABA whose outbound, or status naming the WABA with a word that makes the message known, is of
 *   its id (each such WABA has a record of the id: `recordFor`; MESSAGE_OF_TWO_WABAS when several);
 * - else, when no WABA at all has such a message, to the smallest WABA (byte order: `collate` in PostgreSQL)
 *   that has an inbound message of its id (Meta's ids are unique: `wabasOfInboundIds`), only that one — where
 *   each WABA with such an inbound listed it, two portfolios billed it twice.
 * Both need `stored_wabas` (`STORED_WABAS_CTE`) in the statement.
 */
export function messageInScopeJoinsStatusSql(s: string, collate = ''): string {
  const id = `${s}.message_id`;
  return `(EXISTS (SELECT 1 FROM listing_scope w, events m
                   WHERE m.key IN (${recordKeysSql('w.waba', id)}) AND ${messageJoinsStatusSql('m', s)})
     OR EXISTS (SELECT 1 FROM listing_scope w, events m
                WHERE m.key = ${inboundKeySql('w.waba', id)} AND ${messageJoinsStatusSql('m', s)}
                  AND NOT EXISTS (SELECT 1 FROM stored_wabas v, events r
                                  WHERE v.waba IS NOT NULL AND r.key IN (${recordKeysSql('v.waba', id)})
                                    AND ${messageJoinsStatusSql('r', s)})
                  AND NOT EXISTS (SELECT 1 FROM stored_wabas v, events r
                                  WHERE v.waba${collate} < w.waba${collate}
                                    AND r.key = ${inboundKeySql('v.waba', id)}
                                    AND ${messageJoinsStatusSql('r', s)})))`;
}

/**
 * SQL, both engines: the WABAs whose stored inbound of status `s`'s message id joins `s` (`v.waba`, gathered by
 * the engine's `aggregate`): those that may list `s` by its message (`messageInScopeJoinsStatusSql`), and lose
 * it once a business message of its id, or an inbound of a smaller WABA, is stored.
 */
export function inboundWabasSql(s: string, aggregate: (column: string) => string): string {
  return `(SELECT ${aggregate('v.waba')} FROM stored_wabas v, events m
           WHERE v.waba IS NOT NULL AND m.key = ${inboundKeySql('v.waba', `${s}.message_id`)}
             AND ${messageJoinsStatusSql('m', s)})`;
}

/**
 * SQL, both engines: a `WITH RECURSIVE` term listing every WABA that has events (`stored_wabas`, with one NULL
 * row), computed once per statement and read from the index on `events (waba)` one WABA at a time (a loose
 * index scan: a few index lookups per WABA, however many events each has).
 */
export const STORED_WABAS_CTE = `stored_wabas(waba) AS MATERIALIZED (
  SELECT min(waba) FROM events
  UNION ALL
  SELECT (SELECT min(e.waba) FROM events e WHERE e.waba > a.waba) FROM stored_wabas a WHERE a.waba IS NOT NULL)`;

/**
 * Migration 8 of both stores: which stored rows a trusted writer stored (`events.is_trusted`, added false). Only
 * what the rows prove: a webhook's or an import's rows (`source` not an API key's), and an inbound or outbound
 * that tied its business number (`business`: only a trusted copy ever tied one, migration 7). Any other row an
 * API key wrote stays untrusted, since nothing says whether that key was limited to some WABAs: it is trusted
 * once a trusted writer stores it again (the copy is a duplicate that makes the stored row trusted).
 */
export const EVENT_TRUST_BACKFILL_SQL = `UPDATE events SET is_trusted = TRUE
WHERE source NOT LIKE 'api:%' OR business IS NOT NULL;`;

/**
 * SQL, both engines: stored inbound or outbound `m` (of status `s`'s message id) joins status `s`, which names no
 * WABA: when a trusted writer stored a copy of `m` (`events.is_trusted`: a signed webhook, an import, a key for
 * every WABA), or else when `s` is the very same untrusted writer's (the same `source`, both untrusted: a key
 * limited to some WABAs, its own message and its own status). So such a key, which may write any message id
 * on its own WABA's lines, never takes a status another writer stored into its scope. A status a trusted
 * writer stored a copy of is that writer's, and joins only trusted messages (a limited key cannot claim one by
 * storing its copy first).
 */
export function messageJoinsStatusSql(m: string, s: string): string {
  return `(${m}.is_trusted OR (NOT ${s}.is_trusted AND ${m}.source = ${s}.source))`;
}

/**
 * SQL, both engines: status `s`'s message (an inbound or outbound with its id) is stored in some WABA, by a
 * writer it joins (`messageJoinsStatusSql`): a message only another limited key stored counts as stored nowhere.
 */
export function messageStoredSql(s: string): string {
  return `EXISTS (SELECT 1 FROM stored_wabas w, events m
                  WHERE w.waba IS NOT NULL AND m.key IN (${messageKeysSql('w.waba', `${s}.message_id`)})
                    AND ${messageJoinsStatusSql('m', s)})`;
}

/**
 * SQL, both engines: a `WITH` term `joined_statuses(key)`, the statuses naming no WABA whose message is
 * stored in some WABA by a writer they join (`messageStoredSql`, the other way round): every stored message
 * (an event whose own key is one of `messageKeysSql` of its WABA and id) seeks the statuses of its id in
 * `events_unnamed_status` (`indexedBy`: SQLite's `INDEXED BY`, since without statistics it would rather scan
 * `events_waba` for `waba IS NULL`, every status naming no WABA, than seek a partial index; PostgreSQL needs
 * no hint). One pass over the events, instead of a look-up in every stored WABA for every status (statuses ×
 * WABAs × 9 key seeks: 16 s of a 52 s import of 190,000 events in PostgreSQL).
 */
export function joinedStatusesSql(indexedBy: (index: string) => string = () => ''): string {
  return `joined_statuses(key) AS MATERIALIZED (
    SELECT s.key FROM events m CROSS JOIN events s ${indexedBy('events_unnamed_status')}
    WHERE m.waba IS NOT NULL AND m.message_id IS NOT NULL
      AND m.key IN (${messageKeysSql('m.waba', 'm.message_id')})
      AND s.message_id = m.message_id AND s.waba IS NULL AND s.kind = 'status'
      AND ${messageJoinsStatusSql('m', 's')})`;
}

/**
 * SQL, both engines: the WABA that owns the statuses naming no WABA of business number `number` (an SQL
 * expression) whose message is stored nowhere: the smallest WABA (byte order; `collate` says so in PostgreSQL)
 * whose trusted events tie that number (`events.business`, filled only for those: `EventInput.isBusinessTied`),
 * read with one seek of the index on `events (business, waba)`; NULL when no event ties it.
 */
export function numberOwnerSql(number: string, collate = ''): string {
  return `(SELECT min(b.waba${collate}) FROM events b WHERE b.business = ${number})`;
}

/**
 * SQL, PostgreSQL's: the smallest WABA (byte order) whose trusted events tie business number `number` with
 * user `user` (`events.business` and `events.tied_user`: the pair the rater keeps them in), read with one
 * seek of the index on `events (business, tied_user, waba)`; NULL when none does (or `user` is NULL). SQLite
 * finds the same WABA through its one index of the ties (`sqlitePairOwnerSql`, its migration 20).
 */
export function pairOwnerSql(number: string, user: string, collate = ''): string {
  return `(SELECT min(p.waba${collate}) FROM events p WHERE p.business = ${number} AND p.tied_user = ${user})`;
}

/**
 * SQL, PostgreSQL's (SQLite's `sqliteStatusPlacementSql` is the same with its own pair look-up): the WABA a
 * status naming no WABA, whose message is stored nowhere, is listed with — the rater's placement
 * (docs/decisions.md, "Statuses alone that name no WABA"): the WABA of the pair its business number and user
 * have (`pairOwnerSql`), else its number's owner (`numberOwnerSql`). `user` is the status's user as the rater
 * pairs it (`canonicalUser`, in the engine's SQL).
 */
export function statusPlacementSql(number: string, user: string, collate = ''): string {
  return `coalesce(${pairOwnerSql(number, user, collate)}, ${numberOwnerSql(number, collate)})`;
}

/*
 * The listing's candidates (`listEvents` of some WABAs, both engines): the statuses naming no WABA that a
 * listing of a scope may hold — a superset the listing's own predicate then decides on
 * (`messageInScopeJoinsStatusSql`, else the placement), so that it looks up only these, not every status
 * naming no WABA of the store (on a store of send logs, nearly every status: the listing took seconds a WABA,
 * however few events it had). A status joins such a listing in one of two ways only:
 * - its message is stored in a WABA of the scope (`messageKeysSql`: a key of that WABA and the status's
 *   message id), so the message id is an id of an event of the scope;
 * - it is placed there (`statusPlacementSql`): the WABA named ties the business number of one of the statuses
 *   of its message naming no WABA (the smallest), so that number is tied (`events.business`) by an event of
 *   the scope (found through the index `events_unnamed_business`).
 * Each engine gathers them its own way, and lists at once those a trusted record of the scope joins:
 * SQLite's `SCOPE_UNNAMED_STATUSES_SQL` (one pass over the scope's events), PostgreSQL's `LISTING_MESSAGES_SQL`
 * (the scope's message ids once, each with whether such a record is among them).
 */

/**
 * SQL of `canonicalUser` (core/phone.ts) for engine `engine`, over the text expression `user` (NULL stays NULL):
 * a Brazilian mobile without its ninth digit gets it, a Mexican mobile with `521` loses the 1. The user of a
 * pair as the rater keys it, for rows stored before `events.tied_user` and for statuses naming no WABA.
 */
export function canonicalUserSql(user: string, engine: 'sqlite' | 'postgres'): string {
  const [brazil, mexico] =
    engine === 'sqlite'
      ? [`${user} GLOB '55[1-9][1-9][6-9]${'[0-9]'.repeat(7)}'`, `${user} GLOB '521${'[0-9]'.repeat(10)}'`]
      : [`${user} ~ '^55[1-9]{2}[6-9][0-9]{7}$'`, `${user} ~ '^521[0-9]{10}$'`];
  return `(CASE WHEN length(${user}) = 12 AND ${brazil} THEN substr(${user}, 1, 4) || '9' || substr(${user}, 5)
    WHEN length(${user}) = 13 AND ${mexico} THEN '52' || substr(${user}, 4) ELSE ${user} END)`;
}

export interface StoredRawWebhook extends RawWebhookInput {
  id: number;
}

export interface EventInput {
  /** Idempotency key (`eventKey` in core/events.ts): the same key twice is stored once. */
  key: string;
  event: CoreEvent;
  receivedAtMs: number;
  /** Where it came from: `webhook:<raw id>`, `api:<key name>`, `import:<file>`. */
  source: string;
  /**
   * Whether this event's writer is trusted (default true) to say which business number its WABA uses, and which
   * message ids are its WABA's. An inbound or outbound so written ties its business number to its WABA
   * (`events.business`), which decides the WABA a status naming no WABA, whose message is stored nowhere, is
   * rated with (`listEvents`), and which WABAs `listWabas(business)` names; and it joins any writer's status
   * naming no WABA that has its id (`events.is_trusted`). False for an API key limited to some WABAs: it may
   * write any business number and any message id on its own WABA's lines, and must not take another client's
   * statuses (or hide its numbers) so: its inbound or outbound joins only the statuses naming no WABA that the
   * same key (`source`) wrote (`messageJoinsStatusSql`). Signed webhooks, imports and keys for every WABA are
   * trusted. A status ties only when it names its WABA, a number and a user (Meta's status webhook), whatever its
   * message's send log says: the rater keeps that pair whatever the order of the lines.
   */
  isBusinessTied?: boolean;
}

export interface IngestOutcome {
  /** Events newly stored (as given). */
  inserted: CoreEvent[];
  /**
   * Events whose key was already stored, or came earlier in the same call: copies of a stored event. Each is
   * merged into the stored copy (`mergeCopies`, core/event-copies.ts), which changes only when it adds what the
   * stored copy lacked (see `merged`).
   */
  duplicates: number;
  /**
   * The stored events a copy among `duplicates` changed, as they are stored now (merged): once per key, its
   * last state in this call. Their WABAs must be rated again, as for `inserted`. An identical copy, or one
   * that adds nothing, changes nothing and is not listed.
   */
  merged: CoreEvent[];
  /**
   * The WABAs, besides those of `inserted` and `merged`, whose listing (`listEvents`) this ingest may have
   * changed, sorted: a status naming no WABA moved into or out of their scope. So a caller that rates again the
   * WABAs of `inserted`, `merged` and these leaves no stored bill behind (`relistedWabas`, relisted-wabas.ts):
   * - a business number's owner before and after, when a tie (`events.business`) made a smaller WABA own it
   *   (an inbound from a number another WABA owned) or took the owner's last tie away;
   * - a message's WABA when its row came to join statuses naming no WABA without changing its event (a trusted
   *   copy of what a limited key stored: `events.is_trusted`), and the owners of those statuses' numbers,
   *   which lose them (also when the message is new: a send log arriving after its statuses);
   * - when a status naming no WABA was stored, the WABAs holding an event of its message id and those tying a
   *   number its id's statuses give (`unnamedStatusWabasOf`); every stored WABA when one was rewritten, or past
   *   `UNNAMED_LOOKUP_LIMIT`.
   * Computed inside the ingest's transaction, over the group it was committed with (`ingestBatch`): what the
   * whole group changed, named with each item whose events took part in it. A status naming its WABA, or an
   * event another kind, never adds one: webhooks of statuses cost no look-up. Not computed, and `[]`, for an
   * ingest that said it does not need it (`IngestEventsOptions.isRelistingNeeded: false`: `wameter import`).
   */
  relistedWabas: string[];
}

/**
 * One ingest among a group committed together: a webhook body with the events read from it, or events alone
 * (`raw: null`: the API, imports).
 */
export interface IngestItem {
  raw: RawWebhookInput | null;
  events: EventInput[];
  /**
   * For events alone (`raw` null): the display numbers of the Meta webhook bodies they were read from (POST
   * /v1/events, `wameter import`), kept as a stored body's `RawWebhookInput.businessNumbers` are — from writers
   * trusted to tie numbers to WABAs only. Kept even when every event is a copy of a stored one. A body's own
   * are `raw.businessNumbers`.
   */
  businessNumbers?: readonly BusinessNumber[];
  /** `IngestEventsOptions.isRelistingNeeded` of the call that queued the item (default true). */
  isRelistingNeeded?: boolean;
}

/** `Store.ingestEvents`' options. */
export interface IngestEventsOptions {
  /**
   * The display numbers of the Meta webhook bodies the events were read from (`IngestItem.businessNumbers`),
   * kept in the same transaction, the last given for a number winning.
   */
  businessNumbers?: readonly BusinessNumber[];
  /**
   * Whether the caller reads `IngestOutcome.relistedWabas` (default true). False for a caller that rates every
   * stored WABA after its writes anyway (`wameter import`: `RatingService.rateAll`): the ingest then skips the
   * look-ups that name them (the owners of the numbers its events tie before and after, the WABAs that may list
   * its statuses naming no WABA: relisted-wabas.ts `ListingFacts`), and its outcome's `relistedWabas` is `[]`,
   * meaning NOT COMPUTED, never "none". Everything written is the same either way: the events, their ties, the
   * display numbers, and the marks the database keeps of what changed (`readEventChanges`). In a group with
   * items that need them (`ingestBatch`), the look-ups are made for the group, and this item's list is `[]`.
   */
  isRelistingNeeded?: boolean;
}

/** The display numbers an ingest item keeps: its body's when it has one, else those given with its events. */
export function businessNumbersOfItem(item: IngestItem): readonly BusinessNumber[] {
  return (item.raw === null ? item.businessNumbers : item.raw.businessNumbers) ?? [];
}

export interface IngestItemOutcome extends IngestOutcome {
  /** The stored (or already stored) body's id; null for events alone. */
  rawId: number | null;
  /** The body was already stored: nothing was written for this item. */
  isDuplicate: boolean;
}

/** A stored unit or pending message: ids are unique within a WABA only (two WABAs may name one message). */
export interface RowKey {
  waba: string;
  id: string;
}

/**
 * What changed between the stored rating of a scope and a new one: only these rows are written — units and
 * pending messages to upsert, and the (WABA, id) of those to delete; `findings` is the scope's full list when
 * it changed (undefined: unchanged).
 */
export interface RatingDiff {
  units: { upsert: BillableUnit[]; delete: RowKey[] };
  pending: { upsert: PendingMessage[]; delete: RowKey[] };
  findings?: Finding[];
}

export interface UnitFilter {
  /** The WABAs the caller may read; `undefined` = all (a `*` key). Always applied. */
  wabas?: readonly string[];
  waba?: string;
  business?: string;
  user?: string;
  /**
   * With `user`, a business-scoped user id: the number the rating joined it to (Meta gave them together), under
   * which the id's units are stored (one window, one set of conversations). Units of either user match.
   */
  joinedNumber?: string;
  category?: UnitCategory;
  type?: PricingType;
  market?: string;
  /** Units opened at or after this instant. */
  fromMs?: number;
  /** Units opened before this instant. */
  toMs?: number;
  /**
   * Units opened within one calendar period (a month: `month=`) of their own WABA's clock, which only the caller
   * knows (the accounts file): a WABA of one of `zones` in that zone's instants `[fromMs, toMs)`, any other WABA
   * in `others`' (UTC's, the accounts' default). Pending messages, by their sending. Built by `localMonthFilter`
   * (server/unit-filter.ts).
   */
  localPeriod?: LocalPeriod;
}

/** A calendar period on each WABA's clock, as instants per time zone (`UnitFilter.localPeriod`). */
export interface LocalPeriod {
  zones: readonly { wabas: readonly string[]; fromMs: number; toMs: number }[];
  others: { fromMs: number; toMs: number };
}

/**
 * The orders units are listed in (`Store.queryUnits`, `exportUnits`; GET /v1/units's `order`):
 * - `opened_at` (the default): by opening time, then id, then WABA.
 * - `amount_desc`: the dearest first. Amounts of different currencies are never compared: units are grouped
 *   by currency (in code order, byte by byte), each currency's largest amount first, units that could not be
 *   priced (no amount) after its free ones; equal amounts in `opened_at` order, so the order is total and a
 *   cursor continues it exactly.
 */
export const UNIT_ORDERS = ['opened_at', 'amount_desc'] as const;
export type UnitOrder = (typeof UNIT_ORDERS)[number];

/** Units per page of `Store.exportUnits` unless the caller says otherwise. */
export const EXPORT_PAGE_SIZE = 1000;

export interface UnitPage {
  units: BillableUnit[];
  /** Opaque; pass back as `cursor` for the next page; null at the end. */
  nextCursor: string | null;
}

/** Totals per currency, as contract §4 `totals` but in micros (`unpriced`: units with no amount). */
export type CurrencyTotals = MicrosTotals;

export type Granularity = 'HALF_HOUR' | 'DAILY' | 'MONTHLY';
/**
 * `tier`: the volume-tier band of the unit's tier position as stored (`TierPosition.band`, "1:100000",
 * "100001:" for an open end), null for a unit without one (free, marketing, a market without tier bands).
 */
export type AnalyticsDimension =
  'waba' | 'business' | 'country' | 'market' | 'category' | 'type' | 'currency' | 'direction' | 'tier';

/** Meta's conversation_direction of a unit (`dimensionSql('direction')`). */
export type AnalyticsDirection = 'BUSINESS_INITIATED' | 'USER_INITIATED';

export interface AnalyticsQuery extends UnitFilter {
  granularity: Granularity;
  dimensions: readonly AnalyticsDimension[];
  /**
   * Meta's list filters (`phone_numbers`, `country_codes`, `pricing_categories`, `pricing_types`,
   * `conversation_directions`): a unit matches when its value is one of the list's (each list ANDed with the
   * rest). An empty list matches nothing; undefined filters nothing.
   */
  businesses?: readonly string[];
  countries?: readonly string[];
  categories?: readonly UnitCategory[];
  types?: readonly PricingType[];
  directions?: readonly AnalyticsDirection[];
  /**
   * The eras whose units are counted (`BillableUnit.era`, the rules that rated each unit): Meta's
   * conversation_analytics counts the conversations of the conversation-based eras only. Undefined: every era.
   */
  eras?: readonly Era[];
  /** Time zone in which DAILY / MONTHLY buckets are cut (default UTC). */
  timeZone?: string;
}

export interface AnalyticsPoint {
  startMs: number;
  endMs: number;
  units: number;
  /**
   * Of `units`, those that could not be priced (`amountMicros` null, as `totals` counts them): `amountMicros`
   * holds nothing for them, so it is a lower bound whenever this is above 0.
   */
  unpriced: number;
  /** Exact: a bigint past 2^53 micros. */
  amountMicros: Micros;
  /** Values of the asked dimensions. */
  dimensions: Partial<Record<AnalyticsDimension, string | null>>;
}

/**
 * Why a rating ran: an arrival (`live`), a re-rate asked for (`rerate`), or a new version of wameter re-rating
 * the stored bill (`upgrade`).
 */
export const RATING_REASONS = ['live', 'rerate', 'upgrade'] as const;
export type RatingReason = (typeof RATING_REASONS)[number];
/** The reason of a re-rate stored by `wameter rerate` (`rerate` is `POST /v1/rerate`'s): both are re-rates. */
export const CLI_RERATE_REASON = 'rerate (cli)';

/** One run of the rater over a scope, kept as history (what was rated, under which rules and cards). */
export interface RatingRecord {
  id: string;
  ratedAtMs: number;
  /** One of RATING_REASONS (a string: a store may hold others an older version wrote). */
  reason: string;
  /** WABAs whose units this rating replaced. */
  wabas: string[];
  /** The era forced with --as-of-rules, or null for the rules of each date. */
  asOfRules: string | null;
  rateCards: string[];
  /** Totals of the scope after this rating, per currency. */
  totals: Record<string, CurrencyTotals>;
  /**
   * The same totals per WABA of the scope, so that a key for some of its WABAs can be shown their share
   * (store migration 6; `undefined` in records written before it).
   */
  totalsByWaba?: Record<string, Record<string, CurrencyTotals>>;
  /**
   * What the rating priced with from the accounts (each WABA's time zone, currency, portfolio…), as a digest
   * (`accountsDigest`, src/core/events.ts): a re-rate under other accounts says so (migration 6).
   */
  accountsDigest?: string;
  /**
   * What the rating priced with from the rate cards (every rate and band, `rateCardsDigest` in
   * src/use-cases/load-rating-setup.ts): a card edited under the same id is told apart (migration 11 of
   * SQLite, 12 of PostgreSQL; `undefined` in records written before it).
   */
  rateCardsDigest?: string;
  /**
   * The rating code that made it, as a digest (`engineDigest`, src/use-cases/engine-digest.ts): a start under
   * other code (an upgrade) re-rates the bill as a reported re-rate (migration 12 of SQLite, 13 of
   * PostgreSQL; `undefined` in records written before it).
   */
  engineDigest?: string;
  /**
   * What else the rating priced with (`ratingSetupDigest`, src/use-cases/rating-setup-digest.ts: the reported
   * rules setting and the time zone data of the runtime), as a digest (migration 18 of SQLite, 20 of
   * PostgreSQL; `undefined` in records written before it).
   */
  setupDigest?: string;
  /**
   * The store's event change counter (`EventChanges.seq`) read before the rating listed its events: every
   * event stored or rewritten since has a higher mark (migration 18 of SQLite, 20 of PostgreSQL). Live ratings
   * and re-rates (an upgrade's too) keep it — a re-rate of several portfolios the lowest its ratings read;
   * `undefined` in records written before. A start re-rates no portfolio whose last rating is provably current
   * (docs/decisions.md, "A start rates only the portfolios whose stored rating is not current").
   */
  eventsSeq?: number;
  /**
   * For a re-rate: what changed in total (counts, totals old and new, the period) — without the changed units
   * themselves, which are `changedUnits`.
   */
  changes?: unknown;
  /**
   * For a re-rate, when written: every changed unit, old and new (`{unit, old, new}`), kept beside the rating
   * and read a page at a time (`listRatingChanges`): a large store's re-rate changes hundreds of thousands of
   * units. Never set by `listRatings`.
   */
  changedUnits?: readonly unknown[];
}

/**
 * Where the events of a store last changed, kept by the database itself (triggers on `events`, migration 18
 * of SQLite, 20 of PostgreSQL; SQLite's inserts and rewrites by the ingest since its migrations 21 and 22, once
 * a group after them) in the transaction that writes them, so that no crash between storing an event and
 * rating it loses the mark. Every insert or rewrite (a merged duplicate) of an event advances `seq`
 * (PostgreSQL once a transaction, SQLite once a group) and marks its WABA with it, and so does
 * a deletion (by hand only; migration 19 of SQLite, 21 of PostgreSQL); a change that may move a status naming
 * no WABA from one portfolio's listing to another's (such a status itself, or a message or business-number
 * tie of another WABA that may join or place one) marks `unnamedSeq` instead of naming every WABA it could
 * touch.
 */
export interface EventChanges {
  /** The counter: the mark of the last change committed (0 before any). Commit order is mark order. */
  seq: number;
  /** WABA → the mark of the last change to one of its events. A WABA never changed since is absent. */
  byWaba: ReadonlyMap<string, number>;
  /** The mark of the last change that may move a status naming no WABA between listings (0: none). */
  unnamedSeq: number;
}

/**
 * The cursor of the rating listing (`Store.listRatings`, `GET /v1/ratings`) that continues after the rating
 * `ratingId`: `["ratings", id]`, as base64url JSON. It holds only the id of a rating the listing gave (never
 * its place in the whole history, which would say how many ratings other clients had meanwhile).
 */
export function ratingsCursor(ratingId: string): string {
  return Buffer.from(JSON.stringify(['ratings', ratingId])).toString('base64url');
}

/** What a cursor (base64url of JSON) holds, or undefined when it holds no JSON: each listing checks its shape. */
export function cursorValue(cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The rating a `ratingsCursor` continues after; anything else is refused (BAD_CURSOR). */
export function ratingOfCursor(cursor: string): string {
  const value = cursorValue(cursor);
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    value[0] === 'ratings' &&
    typeof value[1] === 'string' &&
    value[1] !== '' &&
    !value[1].includes('\u0000')
  ) {
    return value[1];
  }
  throw badRatingsCursor();
}

/**
 * A ratings cursor that is none, or names a rating the listing cannot continue after: one answer for all (a
 * key learns nothing of ratings it may not read by trying theirs).
 */
export function badRatingsCursor(): StoreInputError {
  return new StoreInputError(
    'BAD_CURSOR',
    'cursor is not one this listing of ratings returned: pass next_cursor back unchanged, with the same reason',
  );
}

/** One page of a re-rate's changed units (`Store.listRatingChanges`). */
export interface RatingChangesPage {
  /** `{unit, old, new}` documents as the re-rate wrote them, in its order. */
  units: unknown[];
  /** Opaque; pass back as `cursor` for the next page; null at the end. */
  nextCursor: string | null;
}

/** The tables `Store.refreshStatistics` analyses: `events`, or the rating's (units, pending messages, findings). */
export type StatisticsOf = 'events' | 'bill';

/** `Store.ingestGroups`: group commits and the ingest calls they held. */
export interface IngestGroupCounts {
  groups: number;
  items: number;
}

export interface Store {
  /** Creates or upgrades the schema. Runs at start; safe to run again. */
  migrate(): Promise<void>;
  /** Cheap round trip to check the store is reachable (/healthz). */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * The group commits of `ingestWebhook` and `ingestEvents` since the store opened, and the calls they held
   * (the service's /metrics: items ÷ groups is how well commits batch). A group retried item by item after
   * it failed is not counted, nor are `ingestBatch`'s own transactions.
   */
  ingestGroups(): IngestGroupCounts;

  /**
   * Stores a webhook body and the events read from it in ONE transaction, durable when the promise
   * resolves (answer 200 only after). An identical body already stored → `isDuplicate`, nothing written
   * (`merged: []`, `relistedWabas: []`). Its `sha256` left out, the store hashes the bytes itself; given, it is
   * checked against them (a wrong one is refused, nothing stored).
   */
  ingestWebhook(
    raw: WebhookBodyInput,
    events: EventInput[],
  ): Promise<IngestOutcome & { rawId: number; isDuplicate: boolean }>;
  /**
   * Stores events (API, imports) idempotently, in one transaction: a key already stored (or repeated in the
   * call) is a duplicate, merged into the stored copy (`IngestOutcome.merged`). `options.businessNumbers`: the
   * display numbers the events came with; `options.isRelistingNeeded: false`: `relistedWabas` not computed
   * (`IngestEventsOptions`).
   */
  ingestEvents(events: EventInput[], options?: IngestEventsOptions): Promise<IngestOutcome>;
  /**
   * Group commit: stores every item in ONE transaction, durable when the promise resolves, with the outcome
   * of each (in order) exactly as if each had been ingested alone, one after the other (a body or event key
   * repeated within the group is a duplicate of its first occurrence; an event's copy is merged into it).
   * `ingestWebhook` and `ingestEvents` queue their calls and commit whatever is queued together through this.
   */
  ingestBatch(items: readonly IngestItem[]): Promise<IngestItemOutcome[]>;
  getRawWebhook(id: number): Promise<StoredRawWebhook | undefined>;
  /** Raw bodies kept with a parse error, newest first. */
  listUnreadableWebhooks(limit: number): Promise<StoredRawWebhook[]>;

  /**
   * Every stored event of these WABAs (all when undefined), in any order, each once. A status that names no
   * WABA is listed with a scope holding a WABA that stores its message (a stored inbound or outbound with its
   * id, in any WABA, that joins it: a trusted writer's, or the status's own untrusted writer's,
   * `messageJoinsStatusSql`); when no WABA stores its message so, with the one scope holding the WABA the rater
   * places it with (`statusPlacementSql`: the smallest WABA whose trusted events tie its business number with its
   * user, else the smallest tying that number, `numberOwnerSql`), so that two portfolios never both bill it
   * (docs/storage.md).
   */
  listEvents(wabas?: readonly string[]): Promise<CoreEvent[]>;
  /**
   * WABAs that have events, sorted; with `business`, only those whose trusted inbound, outbound or status naming
   * its WABA tie that business number (`events.business`; see `EventInput.isBusinessTied`), in byte order.
   */
  listWabas(business?: string): Promise<string[]>;
  /**
   * The WABAs besides their message's that list, or listed before a message of their id was stored, the stored
   * statuses naming no WABA of these message ids (any writer's), sorted: where each is placed while no message
   * joins it (`statusPlacementSql`: its number and user's pair owner, else its number's owner), and the WABAs
   * whose stored inbound of its id joins it (`inboundWabasSql`). What the ingest that stored such a message, or
   * made it a trusted writer's, re-listed (`IngestOutcome.relistedWabas`), for a caller that can no longer ask
   * it: a write whose answer was lost, retried and found a duplicate. One seek of the index of statuses naming
   * no WABA per id, however many ids (one statement): a webhook's or a send log's thousands.
   */
  listPlacingWabas(messageIds: readonly string[]): Promise<string[]>;
  /**
   * The WABAs that may list the stored statuses naming no WABA of these message ids, sorted: those holding an
   * event of the id that makes its message known there or is its inbound (any writer's), and those tying a
   * business number one of the id's statuses naming no WABA gives, or gave before a copy merged into it
   * (`unnamedStatusWabasOf`). What storing or rewriting such a status re-listed (`IngestOutcome.relistedWabas`),
   * for a caller that can no longer ask it: a write whose answer was lost, retried and found a duplicate. Every
   * stored WABA past the ingest's bound on the look-ups (more ids × stored WABAs than `UNNAMED_LOOKUP_LIMIT`).
   */
  listUnnamedStatusWabas(messageIds: readonly string[]): Promise<string[]>;
  /**
   * Statuses that name no WABA and that no `listEvents(wabas)` lists, whatever its scope: no stored inbound or
   * outbound of any WABA that joins them has their message id (`messageJoinsStatusSql`), and no trusted inbound,
   * outbound or status of a WABA ties their business number, or they name none. Nothing rates them until such an
   * event is stored.
   */
  countUnattributedStatuses(): Promise<number>;
  /**
   * Brings the query planner's statistics up to date after many rows were written at once (an import): of
   * `events` after storing them, of the `bill` (units, pending messages, findings) after rating them.
   * Without them PostgreSQL plans a table never analysed from its size alone, each filter's share guessed:
   * the joins of statuses naming no WABA ran as a nested loop over the whole table for each status (an import
   * of 20,000 bench events, half of them such statuses, timed out (60 s) counting them, where 0.25 s sufficed
   * once analysed), and a page of a category's or two WABAs' units dearest first sorted them all instead of
   * reading units_amount (docs/storage.md). SQLite: `PRAGMA optimize` for events; nothing for the bill, whose
   * pages its planner reads through their indexes without statistics (the same plans once analysed).
   */
  refreshStatistics(of: StatisticsOf): Promise<void>;
  /**
   * Where the stored events last changed (`EventChanges`): a start compares it with each portfolio's last
   * rating (`RatingRecord.eventsSeq`) to tell whether anything the rating read has changed since.
   */
  readEventChanges(): Promise<EventChanges>;

  /** Replaces, in one transaction, the current units, pending messages and findings of `rating.wabas`. */
  replaceRating(
    rating: RatingRecord,
    result: { units: BillableUnit[]; pending: PendingMessage[]; findings: Finding[] },
  ): Promise<void>;
  /**
   * Records `rating` and, in one transaction, applies only what changed since the stored rating of
   * `rating.wabas`: units and pending messages upserted by id or deleted by id (ids outside the scope are
   * left alone), findings replaced when given. Applied to what `replaceRating` stored for the old result,
   * it leaves exactly what `replaceRating` would store for the new one.
   */
  applyRatingDiff(rating: RatingRecord, diff: RatingDiff): Promise<void>;
  /**
   * The rating history, newest first; with `wabas`, only ratings whose scope holds at least one of them (a
   * key's view: filtered in the query, so a busy store's other clients never push a key's ratings off a page).
   * A re-rate's `changes` come without their units (`listRatingChanges` pages them); `isWithoutChanges`
   * leaves even those unread, for callers that look only at digests and totals. With `reasons`, only ratings
   * of those reasons (`rerate`, `upgrade`: a busy store's live ratings never push its re-rates off a page).
   * Read newest first through an index (store migrations 15 / 17): never a sort of the whole history.
   * With `cursor` (`ratingsCursor` of a rating of this listing), only the ratings after that one in this
   * order: a cursor that is none, or names a rating the listing does not hold (unknown, of no WABA of
   * `wabas`, of another reason), is refused (BAD_CURSOR), alike.
   */
  listRatings(
    limit: number,
    wabas?: readonly string[],
    options?: { isWithoutChanges?: boolean; reasons?: readonly string[]; cursor?: string },
  ): Promise<RatingRecord[]>;
  /** The rating `id` (as `listRatings` gives it: `changes` without its units), or undefined. */
  getRating(id: string): Promise<RatingRecord | undefined>;
  /**
   * One page of the changed units a re-rate was written with (`changedUnits`), in their order after `cursor`;
   * none for an unknown rating or one that changed none. A cursor from another rating is refused (BAD_CURSOR).
   */
  listRatingChanges(ratingId: string, page: { limit: number; cursor?: string }): Promise<RatingChangesPage>;

  /**
   * One page of the units matching `filter`, in `order` (default `opened_at`, see UNIT_ORDERS), after
   * `cursor` (a `nextCursor` of the same order: one of another order, or none this store issued, is refused,
   * BAD_CURSOR).
   */
  queryUnits(
    filter: UnitFilter,
    page: { limit: number; cursor?: string; order?: UnitOrder },
  ): Promise<UnitPage>;
  /**
   * Every unit matching `filter`, in `queryUnits` order (`order`, default `opened_at`), read in ONE snapshot: the bill as it stood when the
   * export began, each unit once, whatever ratings write meanwhile (a late delivery moving a unit's
   * `openedAtMs` across the cursor, a unit added or deleted). `queryUnits` pages, read one request after
   * another, promise none of that. `onPage` gets each non-empty page in order (at most `pageSize` units,
   * default `EXPORT_PAGE_SIZE`); a promise it returns is awaited before the next page is handed over. Resolves
   * to the number of units exported; an `onPage` that throws or rejects ends the export with its error.
   *
   * SQLite reads every page in one synchronous read transaction, after any write in progress on the store's
   * connection commits (a rating written in chunks is never read half done), and holds its writes back only
   * for that read: pages handed over after an `onPage` that returned a promise wait in memory. PostgreSQL
   * reads page by page in a `REPEATABLE READ READ ONLY` transaction on one pooled connection, held until the
   * last page is handed over (a slow `onPage` keeps it open; it never blocks a writer). `onPage` may await a
   * write to the store: the export never sees it (docs/storage.md).
   */
  exportUnits(
    filter: UnitFilter,
    onPage: (units: BillableUnit[]) => void | Promise<void>,
    pageSize?: number,
    order?: UnitOrder,
  ): Promise<number>;
  /** Aggregated in the store, never by loading every unit. */
  totals(filter: UnitFilter): Promise<Record<string, CurrencyTotals>>;
  analytics(query: AnalyticsQuery): Promise<AnalyticsPoint[]>;
  /**
   * The display numbers of the business numbers of these WABAs (`undefined`: every WABA), as the webhooks
   * last named them, sorted by WABA then number. A number no stored webhook named is not listed.
   */
  businessNumbers(filter: { wabas?: readonly string[] }): Promise<BusinessNumber[]>;
  listPending(filter: UnitFilter): Promise<PendingMessage[]>;
  listFindings(filter: { wabas?: readonly string[] }): Promise<Finding[]>;
}

/**
 * The writer fence of a PostgreSQL store opened by the holder of the single-writer lock (`openWriterStore`,
 * docs/storage.md "One writer per database"). The schema's one-row `writer_fence` table holds an epoch that
 * each new holder of the lock advances, from the lock's own session, once it has the lock. Every write
 * transaction of the store (ingests, ratings) first reads that row `FOR SHARE`, in the statement that opens
 * it, and is refused unless the epoch is `epoch`: a new holder's advance waits for every write transaction
 * under way to end, and a write starting after the advance sees another epoch. So no write of a process that
 * lost the lock commits after another process took it over, whether or not this process noticed the loss.
 */
export interface WriterFence {
  /** The epoch this process's lock advanced the fence to; undefined until then (every write refused). */
  epoch: number | undefined;
  /** The error a write is refused with when the fence is at `found` (undefined: no fence row). */
  fencedOut(found: number | undefined): Error;
}

/**
 * A caller's input the store cannot use (a cursor it did not issue, an unknown time zone, a filter value
 * holding a NUL character): the caller's mistake, not the store's, so the server answers 400 with `code`.
 */
export class StoreInputError extends Error {
  constructor(
    readonly code: 'BAD_CURSOR' | 'BAD_TIME_ZONE' | 'BAD_LIMIT' | 'BAD_FILTER',
    message: string,
  ) {
    super(message);
    this.name = 'StoreInputError';
  }
}

/**
 * An operation the database did not finish within its bound: silent (a network partition drops packets and
 * says nothing), or held up on a lock. A write (`PostgresStoreOptions.writeTimeoutMs`): whether it committed is
 * unknown when the answer to COMMIT was what did not come; the caller treats it as not acknowledged (503, Meta
 * retries) and rates its WABAs again either way (a retry of a write that did commit is a duplicate). A read
 * or a rating's statement (`readTimeoutMs`, `ratingTimeoutMs`): nothing of it was kept; the caller may retry.
 */
export class StoreTimeoutError extends Error {
  /** The client stopped waiting while its connection still awaited the server: that connection is dropped. */
  readonly isConnectionLost: boolean;

  constructor(
    readonly timeoutMs: number,
    options: { isConnectionLost: boolean; cause?: unknown; operation?: 'write' | 'read' | 'ping' },
  ) {
    const what =
      options.operation === 'read'
        ? 'answer the read'
        : options.operation === 'ping'
          ? 'answer the ping'
          : 'finish the write';
    super(`the database did not ${what} within ${timeoutMs / 1000} s`, { cause: options.cause });
    this.name = 'StoreTimeoutError';
    this.isConnectionLost = options.isConnectionLost;
  }
}

/**
 * A store opened read-only (`isReadOnly`: commands that only read it) that is not there to read: no wameter
 * store at all (`NO_STORE`: a mistyped path, an empty file or schema), or one an older wameter left, which
 * this version must migrate before reading (`STORE_NEEDS_MIGRATION`). A read-only open never creates or
 * migrates anything, so the caller says what to run instead.
 */
export class ReadOnlyOpenError extends Error {
  constructor(
    readonly code: 'NO_STORE' | 'STORE_NEEDS_MIGRATION',
    message: string,
  ) {
    super(message);
    this.name = 'ReadOnlyOpenError';
  }
}

/**
 * A database given as the store that holds another program's tables and no wameter store (a SQLite file, a
 * PostgreSQL schema): refused before anything is written to it — wameter never adds its tables to another
 * program's data. The message names it, and what to give instead (the caller adds the setting to check).
 */
export class ForeignStoreError extends Error {
  readonly code = 'NOT_A_WAMETER_STORE';
  constructor(
    /** "the SQLite file /var/lib/app.db", "the schema "public" of the PostgreSQL database at …". */
    readonly where: string,
    readonly tables: readonly string[],
    /** What to give wameter instead: "a file of its own (…)". */
    instead: string,
  ) {
    super(
      `${where} is not a wameter ${where.startsWith('the SQLite file') ? 'database' : 'store'} (it holds other tables: ${tables.slice(0, 5).join(', ')}${tables.length > 5 ? ', …' : ''}): another program's data, left as it is; give wameter ${instead}`,
    );
    this.name = 'ForeignStoreError';
  }
}
