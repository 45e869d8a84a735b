// The Store on SQLite (better-sqlite3): one file, WAL, every commit fsynced before the promise resolves.
// It must never answer for a webhook before its body is on disk, and never aggregate units in JavaScript
// that SQL can aggregate.

import { existsSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import Database from 'better-sqlite3';
import { localDate } from '../../core/calendar.js';
import { microsOf } from '../../core/money.js';
import type { CoreEvent } from '../../core/events.js';
import type { BillableUnit, Finding, PendingMessage } from '../../core/units.js';
import {
  assertInScope,
  checkedSha256,
  checkFilter,
  checkFilterText,
  checkLimit,
  checkTimeZone,
  AMOUNT_DESC_KEY_SQL,
  decodeUnitCursor,
  dimensionSql,
  analyticsListFilters,
  sortedBusinessNumbers,
  UNPRICED_UNITS_SQL,
  changesPage,
  changesPageRequest,
  encodeUnitCursor,
  checkNoNewerMigrations,
  checkReadableMigrations,
  foldTotals,
  storedTotalsJson,
  totalsByWabaFromStored,
  totalsFromStored,
  findingWaba,
  isTrustedAfterMerge,
  isTrustedWriter,
  mergedCopy,
  tiedBusinessAfterMerge,
  tiedBusinessOf,
  withRowTie,
  tiedUserOf,
  sortPoints,
  storableText,
  tierFromStored,
  toBuffer,
} from '../engine-checks.js';
import { GroupCommitQueue } from '../group-commit.js';
import {
  type ListingFacts,
  type RowChange,
  type UnnamedStatus,
  unnamedStatusIds,
  unnamedStatusWabasOf,
  isRelistingNeededBy,
  UNNAMED_LOOKUP_LIMIT,
  isPlacingChange,
  isPlacingRow,
  joiningMessageIds,
  keysLosingTies,
  ownWabasOf,
  relistedWabas,
  rewrittenTieKeys,
  splitTieKey,
  tieKey,
  tiedKeysOf,
} from '../relisted-wabas.js';
import {
  type AnalyticsPoint,
  type AnalyticsQuery,
  type BusinessNumber,
  businessNumbersOfItem,
  type CurrencyTotals,
  type EventInput,
  type IngestEventsOptions,
  type IngestGroupCounts,
  type IngestItem,
  type IngestItemOutcome,
  type IngestOutcome,
  type RatingDiff,
  type RatingChangesPage,
  type RatingRecord,
  type WebhookBodyInput,
  ForeignStoreError,
  ReadOnlyOpenError,
  type EventChanges,
  type Store,
  type StoredRawWebhook,
  type UnitFilter,
  type UnitOrder,
  type UnitPage,
  EVENT_KEYS_PER_WABA_SQL,
  EXPORT_PAGE_SIZE,
  EVENT_TRUST_BACKFILL_SQL,
  STORED_WABAS_CTE,
  joinedStatusesSql,
  inboundWabasSql,
  messageInScopeJoinsStatusSql,
  messageJoinsStatusSql,
  messageKeysSql,
  messageStoredSql,
  recordKeysSql,
  numberOwnerSql,
  canonicalUserSql,
  badRatingsCursor,
  ratingOfCursor,
  type StatisticsOf,
} from '../store.js';
import { WalCheckpointer, walCheckpointWorkerScript } from './wal-checkpointer.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

/** Every column of `ratings` but `changes` (NULL in its place), for `listRatings(…, {isWithoutChanges})`. */
const RATING_COLUMNS_WITHOUT_CHANGES =
  'id, rated_at_ms, reason, wabas, as_of_rules, rate_cards, totals, NULL AS changes, totals_by_waba, ' +
  'accounts_digest, rate_cards_digest, engine_digest, setup_digest, events_seq';

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Migration 16's backfill: each stored readable body's (entry id, phone_number_id, display_phone_number)
 * whose number a trusted writer tied to that WABA, the display number's digits only. json_each walks only
 * objects and arrays (a body holding another shape where an entry or change should be gives nothing), and the
 * last body naming a pair wins, as the ingest keeps it.
 */
const BUSINESS_NUMBERS_BACKFILL_SQL = `
  INSERT OR REPLACE INTO business_numbers (waba, business, display_number)
  SELECT n.waba, n.business, n.display_number FROM (
    SELECT json_extract(CASE WHEN en.type = 'object' THEN en.value END, '$.id') AS waba,
           json_extract(CASE WHEN ch.type = 'object' THEN ch.value END, '$.value.metadata.phone_number_id')
             AS business,
           replace(replace(replace(replace(replace(replace(
             json_extract(CASE WHEN ch.type = 'object' THEN ch.value END,
                          '$.value.metadata.display_phone_number'),
             '+', ''), ' ', ''), '-', ''), '(', ''), ')', ''), '.', '') AS display_number,
           r.id AS raw_id
    FROM raw_webhooks r,
         json_each(CASE WHEN json_valid(CAST(r.body AS TEXT)) THEN CAST(r.body AS TEXT) ELSE '{}' END,
                   '$.entry') en,
         json_each(CASE WHEN en.type = 'object' THEN en.value ELSE '{}' END, '$.changes') ch
    WHERE r.parse_error IS NULL) n
  WHERE typeof(n.waba) = 'text' AND typeof(n.business) = 'text' AND typeof(n.display_number) = 'text'
    AND n.display_number <> '' AND length(n.display_number) <= 20 AND n.display_number NOT GLOB '*[^0-9]*'
    -- SQLite's text functions stop at a NUL (a \\u0000 the body escaped): the bytes must be as many as the digits.
    AND length(CAST(n.display_number AS BLOB)) = length(n.display_number)
    AND EXISTS (SELECT 1 FROM events e WHERE e.business = n.business AND e.waba = n.waba)
  ORDER BY n.raw_id;`;

/** Numbered, append-only: a released migration is never edited, a change is a new number. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      -- Webhook bodies exactly as Meta signed them: the only evidence of what was billed.
      CREATE TABLE raw_webhooks (
        id             INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: events name it in their source
        received_at_ms INTEGER NOT NULL,
        body           BLOB    NOT NULL,
        sha256         TEXT    NOT NULL UNIQUE,           -- an identical redelivery is found by it
        parse_error    TEXT
      ) STRICT;
      CREATE INDEX raw_webhooks_unreadable ON raw_webhooks (id) WHERE parse_error IS NOT NULL;

      -- Core events, one per idempotency key; payload is the CoreEvent as JSON.
      CREATE TABLE events (
        key            TEXT    PRIMARY KEY,
        kind           TEXT    NOT NULL,
        waba           TEXT,             -- NULL only for a status event that did not name its WABA
        message_id     TEXT,             -- inbound/outbound/status: links a status to its message
        at_ms          INTEGER NOT NULL,
        payload        TEXT    NOT NULL,
        received_at_ms INTEGER NOT NULL,
        source         TEXT    NOT NULL
      ) STRICT;
      CREATE INDEX events_waba ON events (waba);
      CREATE INDEX events_message ON events (message_id);

      -- History of ratings: what was rated, when, under which rules and cards.
      CREATE TABLE ratings (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT    NOT NULL UNIQUE,
        rated_at_ms INTEGER NOT NULL,
        reason      TEXT    NOT NULL,
        wabas       TEXT    NOT NULL, -- JSON array
        as_of_rules TEXT,
        rate_cards  TEXT    NOT NULL, -- JSON array
        totals      TEXT    NOT NULL, -- JSON
        changes     TEXT              -- JSON, or NULL when the rating recorded none
      ) STRICT;

      -- The current units of every WABA (replaced per WABA by each rating).
      CREATE TABLE units (
        id                 TEXT    PRIMARY KEY,
        waba               TEXT    NOT NULL,
        business           TEXT    NOT NULL,
        user_id            TEXT    NOT NULL,
        unit               TEXT    NOT NULL,
        pricing_model      TEXT    NOT NULL,
        era                TEXT    NOT NULL,
        country            TEXT,
        market             TEXT,
        category           TEXT    NOT NULL,
        type               TEXT    NOT NULL,
        opened_at_ms       INTEGER NOT NULL,
        expires_at_ms      INTEGER,
        closed_at_ms       INTEGER,
        messages           TEXT    NOT NULL, -- JSON array of message ids
        rate_micros        INTEGER,
        amount_micros      INTEGER,          -- NULL: could not be priced
        currency           TEXT    NOT NULL,
        rate_card          TEXT,
        tier               TEXT,             -- JSON TierPosition, or NULL
        is_market_inferred INTEGER,          -- NULL when the rater did not say
        rule               TEXT    NOT NULL,
        rating_id          TEXT    NOT NULL
      ) STRICT;
      CREATE INDEX units_opened ON units (opened_at_ms, id);
      CREATE INDEX units_waba_opened ON units (waba, opened_at_ms, id);
      CREATE INDEX units_business_user ON units (business, user_id, opened_at_ms);
      CREATE INDEX units_user ON units (user_id, opened_at_ms);
      CREATE INDEX units_category ON units (category, opened_at_ms);
      CREATE INDEX units_type ON units (type, opened_at_ms);
      CREATE INDEX units_market ON units (market, opened_at_ms);

      CREATE TABLE pending_messages (
        id         TEXT    PRIMARY KEY,
        waba       TEXT    NOT NULL,
        business   TEXT    NOT NULL,
        user_id    TEXT    NOT NULL,
        sent_at_ms INTEGER NOT NULL,
        rating_id  TEXT    NOT NULL
      ) STRICT;
      CREATE INDEX pending_messages_waba ON pending_messages (waba, sent_at_ms);

      CREATE TABLE findings (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        rating_id TEXT    NOT NULL,
        waba      TEXT,             -- the finding's own "waba" field; NULL when it names none
        code      TEXT    NOT NULL,
        payload   TEXT    NOT NULL  -- the Finding as JSON
      ) STRICT;
      CREATE INDEX findings_waba ON findings (waba);
      CREATE INDEX findings_rating ON findings (rating_id);
    `,
  },
  {
    version: 2,
    name: 'events without the message_id index',
    // Every event went into two indexes of random keys (key, message_id), and each commit rewrites every
    // index page it touched: the second index nearly doubled ingestion's cost. Its one query (a status
    // that names no WABA finds its message) looks the message up by its key instead.
    sql: `DROP INDEX IF EXISTS events_message;`,
  },
  {
    version: 3,
    name: 'idempotency keys per WABA',
    // One WABA's events must never make another's look like duplicates (see EVENT_KEYS_PER_WABA_SQL).
    sql: EVENT_KEYS_PER_WABA_SQL,
  },
  {
    version: 4,
    name: 'unit and pending ids per WABA',
    // A unit's id is its first message's (u_<wamid>): ids Meta never repeats, but a client's API key could
    // write another client's message id under its own WABA. Keyed per WABA, its unit can never take the
    // place of the other client's.
    sql: `
      CREATE TABLE units_by_waba (
        id                 TEXT    NOT NULL,
        waba               TEXT    NOT NULL,
        business           TEXT    NOT NULL,
        user_id            TEXT    NOT NULL,
        unit               TEXT    NOT NULL,
        pricing_model      TEXT    NOT NULL,
        era                TEXT    NOT NULL,
        country            TEXT,
        market             TEXT,
        category           TEXT    NOT NULL,
        type               TEXT    NOT NULL,
        opened_at_ms       INTEGER NOT NULL,
        expires_at_ms      INTEGER,
        closed_at_ms       INTEGER,
        messages           TEXT    NOT NULL, -- JSON array of message ids
        rate_micros        INTEGER,
        amount_micros      INTEGER,          -- NULL: could not be priced
        currency           TEXT    NOT NULL,
        rate_card          TEXT,
        tier               TEXT,             -- JSON TierPosition, or NULL
        is_market_inferred INTEGER,          -- NULL when the rater did not say
        rule               TEXT    NOT NULL,
        rating_id          TEXT    NOT NULL,
        PRIMARY KEY (waba, id)
      ) STRICT;
      INSERT INTO units_by_waba SELECT * FROM units;
      DROP TABLE units;
      ALTER TABLE units_by_waba RENAME TO units;
      CREATE INDEX units_opened ON units (opened_at_ms, id, waba);
      CREATE INDEX units_waba_opened ON units (waba, opened_at_ms, id);
      CREATE INDEX units_business_user ON units (business, user_id, opened_at_ms);
      CREATE INDEX units_user ON units (user_id, opened_at_ms);
      CREATE INDEX units_category ON units (category, opened_at_ms);
      CREATE INDEX units_type ON units (type, opened_at_ms);
      CREATE INDEX units_market ON units (market, opened_at_ms);

      CREATE TABLE pending_by_waba (
        id         TEXT    NOT NULL,
        waba       TEXT    NOT NULL,
        business   TEXT    NOT NULL,
        user_id    TEXT    NOT NULL,
        sent_at_ms INTEGER NOT NULL,
        rating_id  TEXT    NOT NULL,
        PRIMARY KEY (waba, id)
      ) STRICT;
      INSERT INTO pending_by_waba SELECT * FROM pending_messages;
      DROP TABLE pending_messages;
      ALTER TABLE pending_by_waba RENAME TO pending_messages;
      CREATE INDEX pending_messages_waba ON pending_messages (waba, sent_at_ms);
    `,
  },
  {
    version: 5,
    name: 'units say when their category came from the webhook',
    sql: `ALTER TABLE units ADD COLUMN is_category_from_webhook INTEGER; -- 1, or NULL: from the send log`,
  },
  {
    version: 6,
    name: 'ratings keep totals per WABA and the digest of the accounts they priced with',
    sql: `
      ALTER TABLE ratings ADD COLUMN totals_by_waba TEXT;  -- JSON {waba: totals}, or NULL (older ratings)
      ALTER TABLE ratings ADD COLUMN accounts_digest TEXT; -- or NULL (older ratings)
    `,
  },
  {
    version: 7,
    name: 'events keep the business number a trusted writer tied to their WABA',
    // A status that names no WABA, and whose message is stored nowhere, belongs to the smallest WABA whose
    // trusted inbound or outbound events name its business number (listEvents): the column, and an index to
    // find those WABAs by. Rows an API key wrote are not trusted (a key limited to some WABAs may name any
    // number): they tie once a key for every WABA, a webhook or an import stores them again. The index holds
    // only the rows that tie (statuses never do); its leading values are few (a WABA's numbers), so new rows
    // land at the end of their range: cheap to keep.
    sql: `
      ALTER TABLE events ADD COLUMN business TEXT; -- inbound, outbound: the number a trusted writer tied, or NULL
      UPDATE events SET business = json_extract(payload, '$.business')
      WHERE kind IN ('inbound', 'outbound') AND source NOT LIKE 'api:%'
        AND coalesce(json_extract(payload, '$.business'), '') <> ''
        AND coalesce(json_extract(payload, '$.user'), '') <> '';
      CREATE INDEX events_business ON events (business, waba) WHERE business IS NOT NULL;
    `,
  },
  {
    version: 8,
    name: 'events say whether a trusted writer stored them',
    // A key limited to some WABAs may write any message id on its own WABA's lines: its inbound or outbound
    // must join no other writer's status naming no WABA (messageJoinsStatusSql), or it would take another
    // client's status into its scope and out of that client's bill. 0 until a trusted writer stores the event;
    // rows of earlier versions are trusted only where they prove it (EVENT_TRUST_BACKFILL_SQL).
    sql: `
      ALTER TABLE events ADD COLUMN is_trusted INTEGER NOT NULL DEFAULT 0; -- 1: a trusted writer stored a copy
      ${EVENT_TRUST_BACKFILL_SQL}
    `,
  },
  {
    version: 9,
    name: 'statuses naming no WABA are found by their message id',
    // A message stored, or made a trusted writer's, takes the statuses naming no WABA of its id from their
    // number's owner, which the ingest must then name to be re-rated (relistedWabas): those statuses are found
    // with one seek of this index. It holds only them (every other event names its WABA), so no other event
    // pays for it.
    sql: `CREATE INDEX events_unnamed_status ON events (message_id) WHERE waba IS NULL;`,
  },
  {
    version: 10,
    name: 'events keep the user of the pair they tie, and statuses naming their WABA tie too',
    // A status naming no WABA, whose message is stored nowhere, is placed as the rater places it: with the WABA
    // of the pair its business number and user have (the smallest), else its number's owner
    // (statusPlacementSql). The user a tie pairs the number with (canonicalUser), and an index to find the
    // pair's WABAs by. A trusted status naming its WABA, a number and a user ties them as an inbound does
    // (Meta's status webhook names the WABA and its phone_number_id): stored ones are filled here.
    sql: `
      ALTER TABLE events ADD COLUMN tied_user TEXT; -- the canonical user of the pair \`business\` ties, or NULL
      UPDATE events SET business = json_extract(payload, '$.business')
      WHERE kind = 'status' AND waba IS NOT NULL AND is_trusted = 1
        AND coalesce(json_extract(payload, '$.business'), '') <> ''
        AND coalesce(json_extract(payload, '$.user'), '') <> '';
      UPDATE events SET tied_user = ${canonicalUserSql("json_extract(payload, '$.user')", 'sqlite')}
      WHERE business IS NOT NULL;
      CREATE INDEX events_business_user ON events (business, tied_user, waba) WHERE business IS NOT NULL;
    `,
  },
  {
    version: 11,
    name: 'ratings keep the digest of the rate cards they priced with',
    sql: `ALTER TABLE ratings ADD COLUMN rate_cards_digest TEXT; -- or NULL (older ratings)`,
  },
  {
    version: 12,
    name: 'ratings keep the digest of the rating code that made them',
    sql: `ALTER TABLE ratings ADD COLUMN engine_digest TEXT; -- or NULL (older ratings)`,
  },
  {
    version: 13,
    name: "a re-rate's changed units are kept beside it, a row each",
    // They were the `units` array inside `ratings.changes`: tens of MB a row on a large store, read whole by
    // every listing of the history. Each moves to its own row, in its order, and leaves `changes`.
    sql: `
      CREATE TABLE IF NOT EXISTS rating_changes (
        rating_id TEXT    NOT NULL,
        seq       INTEGER NOT NULL, -- the change's place in the re-rate's list, from 0
        change    TEXT    NOT NULL, -- JSON {unit, old, new}
        PRIMARY KEY (rating_id, seq)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO rating_changes (rating_id, seq, change)
        SELECT r.id, j.key, json_quote(j.value) FROM ratings r, json_each(r.changes, '$.units') j
        WHERE json_type(r.changes, '$.units') = 'array';
      UPDATE ratings SET changes = json_remove(changes, '$.units') WHERE json_type(changes, '$.units') = 'array';
    `,
  },
  {
    version: 14,
    name: 'statuses naming no WABA are found by their business number',
    // A listing of some WABAs looks only at the statuses naming no WABA that its own events can bring in
    // (the listing's candidates, store.ts): those of its messages' ids, and those of messages whose statuses name a number
    // its events tie, found with one seek of this index. Like events_unnamed_status it holds only them, and
    // only those naming a number: a look-up of a message's statuses by its id (STATUS_PLACEMENT_SQL) must
    // never take it for events_unnamed_status (PostgreSQL without statistics did: a scan of it each time).
    sql: `CREATE INDEX IF NOT EXISTS events_unnamed_business ON events (json_extract(payload, '$.business'))
      WHERE waba IS NULL AND kind = 'status' AND json_extract(payload, '$.business') IS NOT NULL;`,
  },
  {
    version: 15,
    name: 'the rating history is read newest first through an index',
    // Every listing (GET /v1/ratings, a re-rate's look at the last rating) sorted the whole history: each
    // arrival adds a live rating, and a million of them made a listing 1.5 s of the server's thread. The second
    // index finds the ratings of some reasons (re-rates) among them.
    sql: `
      CREATE INDEX IF NOT EXISTS ratings_newest ON ratings (rated_at_ms DESC, seq DESC);
      CREATE INDEX IF NOT EXISTS ratings_newest_by_reason ON ratings (reason, rated_at_ms DESC, seq DESC);
    `,
  },
  {
    version: 16,
    name: 'business numbers keep the display number the webhooks give them',
    // Meta's analytics answer a number's display number for PHONE (and read it in phone_numbers), which only
    // the webhooks carry (metadata.display_phone_number beside phone_number_id). Filled from the stored
    // bodies here, where a trusted writer tied the number to the entry's WABA (events.business): a bound
    // secret's body may name any number, and ties none.
    sql: `
      CREATE TABLE IF NOT EXISTS business_numbers (
        waba           TEXT NOT NULL,
        business       TEXT NOT NULL, -- the phone_number_id
        display_number TEXT NOT NULL, -- its digits only (15550783881), as Meta's analytics write it
        PRIMARY KEY (waba, business)
      ) STRICT, WITHOUT ROWID;
      ${BUSINESS_NUMBERS_BACKFILL_SQL}
    `,
  },
  {
    version: 17,
    name: 'units are read dearest first through an index',
    // GET /v1/units?order=amount_desc (the dashboard's Units page sorted by amount): without an index each
    // page sorted every unit the filters match — 30–75 ms a page over 100,000 units, in the server's thread.
    // Within one WABA (the page's usual filter) the second index serves the order. Expression: engine-checks'
    // AMOUNT_DESC_KEY_SQL, spelt alike.
    sql: `
      CREATE INDEX IF NOT EXISTS units_amount
        ON units (currency, coalesce(-amount_micros, 9223372036854775807), opened_at_ms, id, waba);
      CREATE INDEX IF NOT EXISTS units_waba_amount
        ON units (waba, currency, coalesce(-amount_micros, 9223372036854775807), opened_at_ms, id);
    `,
  },
  {
    version: 18,
    name: 'the events keep a mark of where they last changed, and ratings the mark they read',
    // A start re-rated every portfolio, even when nothing had changed since its stored rating (tens of seconds
    // on a large store). The database marks every insert or rewrite of an event itself, in the transaction
    // that writes it (a crash between storing and rating loses nothing), so that a start can tell a current
    // rating from a stale one (EventChanges, docs/decisions.md). '' marks a change that may move a status naming
    // no WABA between listings: such a status, and a message or tie of a WABA that one may join or be placed by.
    sql: `
      CREATE TABLE IF NOT EXISTS event_clock (
        id  INTEGER PRIMARY KEY CHECK (id = 1), -- the one row
        seq INTEGER NOT NULL                    -- the mark of the last change to an event
      ) STRICT;
      INSERT OR IGNORE INTO event_clock (id, seq) VALUES (1, 0);
      CREATE TABLE IF NOT EXISTS event_changes (
        waba TEXT    PRIMARY KEY, -- '': a change that may move a status naming no WABA
        seq  INTEGER NOT NULL     -- the mark of its last change
      ) STRICT, WITHOUT ROWID;
      ${eventChangeTriggerSql('INSERT')}
      ${eventChangeTriggerSql('UPDATE')}
      ALTER TABLE ratings ADD COLUMN events_seq INTEGER;  -- the mark the rating read before its events, or NULL
      ALTER TABLE ratings ADD COLUMN setup_digest TEXT;   -- or NULL (older ratings)
    `,
  },
  {
    version: 19,
    name: 'events deleted are marked as stored ones are',
    // No wameter code deletes events, but the clean-up of docs/storage.md does, by hand: its portfolio's stored
    // rating then looked current to the next start, which kept a bill of events no longer stored. Marked as a
    // rewrite marks the old row; no cost to inserts or rewrites (a trigger of its own).
    sql: eventChangeTriggerSql('DELETE'),
  },
  {
    version: 20,
    name: "one index finds a number's owner and a pair's",
    // Every status a webhook stores ties its number and user (migration 10), so each went into two indexes
    // of the ties: events_business (number, WABA) and events_business_user (number, user, WABA). A group of
    // ten one-status webhooks wrote ≈ 10 WAL pages into each (a leaf for each row; ≈ 74 pages in all).
    // One index ordered (number, WABA, user) serves both look-ups: a number's owner is its first entry, as
    // before; a pair's owner is that WABA when it holds the pair (a seek), else the first of the number's
    // other WABAs that does, two seeks for each of them (a number has one WABA, or a few:
    // sqlitePairOwnerSql).
    sql: `
      CREATE INDEX IF NOT EXISTS events_business_waba_user ON events (business, waba, tied_user)
        WHERE business IS NOT NULL;
      DROP INDEX IF EXISTS events_business_user;
      DROP INDEX IF EXISTS events_business;
    `,
  },
  {
    version: 21,
    name: 'an ingest marks the events it inserts once, after them, not a row at a time',
    // Migration 18's trigger on INSERT did for every row what a group needs once: the clock advanced, the row's
    // WABA marked (again), the two look-ups for a status naming no WABA run — about a third of `wameter import`'s
    // CPU in insertEvents, and a statement journal for every INSERT. The one code that inserts events, the
    // ingest's group (writeGroupIn), now writes the same marks itself, in the same transaction, after its
    // inserts (markInserted): one advance, each WABA inserted marked with it, and '' on the same condition,
    // evaluated over the group's rows. Rewrites and deletions keep their triggers (migrations 18 and 19).
    sql: `DROP TRIGGER IF EXISTS events_changed_on_insert;`,
  },
  {
    version: 22,
    name: 'an ingest marks the events it rewrites once, with those it inserts, not a row at a time',
    // Migration 18's trigger on UPDATE did for every rewrite (a copy merged into a stored row, a row made
    // trusted or tied) what migration 21 made the group do once for its inserts, and forced a statement journal
    // on every such UPDATE. The only code that updates events is the ingest's group (insertEvents, in
    // writeGroupIn; the backfills that update events are migrations 3–10, before any trigger): it notes each
    // rewrite's WABA, message id and both ties, the old and the new, and writes their marks with its inserts'
    // (markChanged). Deletions keep their trigger (migration 19: the clean-up by hand).
    sql: `DROP TRIGGER IF EXISTS events_changed_on_update;`,
  },
];

/**
 * Migration 18's trigger on `event` (INSERT or UPDATE; migration 19's on DELETE) of `events` — the one on
 * INSERT dropped by migration 21, the one on UPDATE by migration 22, their marks written by the ingest after
 * its writes (`markChanged`): the clock advances a row at a time, and the row's WABA (its old one too, for a
 * rewrite; a deleted row's) takes the new mark, and so does '' when the row may move a status naming no WABA between listings (store.ts,
 * `EventChanges`): it is one, or it is a message of a message id such a status reports on (which may join it:
 * `messageJoinsStatusSql`), or it ties a business number such a status names (its placement:
 * `statusPlacementSql`). A status stored after its message marks '' itself. Exported for the tests, whose
 * reference for `markChanged` is the released triggers.
 */
export function eventChangeTriggerSql(event: 'INSERT' | 'UPDATE' | 'DELETE'): string {
  const rows = { INSERT: ['NEW'], UPDATE: ['NEW', 'OLD'], DELETE: ['OLD'] }[event];
  // A row naming no WABA has marked '' already (its own WABA's mark).
  const mayMoveUnnamed = (row: string) => `(${row}.waba IS NOT NULL AND (
      (${row}.message_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM events u WHERE u.message_id = ${row}.message_id AND u.waba IS NULL))
      OR (${row}.business IS NOT NULL
          AND EXISTS (SELECT 1 FROM events u
                      WHERE json_extract(u.payload, '$.business') = ${row}.business || ''
                        AND u.waba IS NULL AND u.kind = 'status'))))`;
  const mark = (waba: string, condition = 'TRUE') => `
      INSERT INTO event_changes (waba, seq) SELECT ${waba}, seq FROM event_clock WHERE id = 1 AND ${condition}
        ON CONFLICT (waba) DO UPDATE SET seq = excluded.seq;`;
  return `CREATE TRIGGER IF NOT EXISTS events_changed_on_${event.toLowerCase()} AFTER ${event} ON events
    BEGIN
      UPDATE event_clock SET seq = seq + 1 WHERE id = 1;
      ${rows.map((row) => mark(`coalesce(${row}.waba, '')`)).join('')}
      ${mark("''", rows.map(mayMoveUnnamed).join(' OR '))}
    END;`;
}

/**
 * What the events a group inserted or rewrote mark (`markChanged`; inserts since migration 21, rewrites since
 * 22): the WABA of each ('' for a status naming none), and for the rows naming their WABA, what the triggers
 * looked up a status naming no WABA by — their message id (`events.message_id`) and the business number they
 * tie (`events.business`): a rewrite's both, the OLD row's and the NEW's, as the trigger on UPDATE looked up
 * each (a rewrite never changes a row's WABA or message id, so those are the same in both).
 */
interface ChangeMarks {
  wabas: Set<string>;
  messageIds: Set<string>;
  numbers: Set<string>;
}

function newChangeMarks(): ChangeMarks {
  return { wabas: new Set(), messageIds: new Set(), numbers: new Set() };
}

/**
 * Notes a row inserted or rewritten, by the values insertEvents wrote in (or left in) its `waba` and
 * `message_id`, and each value its `business` held: the tie inserted, or a rewrite's tie before and after.
 */
function noteChanged(
  marks: ChangeMarks,
  waba: string | null,
  messageId: string | null,
  ...ties: (string | null)[]
): void {
  marks.wabas.add(waba ?? '');
  // Once '' is marked, the look-ups decide nothing.
  if (marks.wabas.has('')) return;
  if (messageId !== null) marks.messageIds.add(messageId);
  for (const tie of ties) if (tie !== null) marks.numbers.add(tie);
}

/**
 * SQL: the business number of a status `s` naming no WABA (`events.business` is only ever a tie, never such a
 * status's), and (in the placement below) its user as the rater pairs it — as the rater reads them, from every
 * status of its message naming no WABA: the smallest of each (a `sent` naming the number and a `delivered` naming the user are one
 * message to that user of that number). A seek of events_unnamed_status each.
 */
const STATUS_BUSINESS_SQL = `(SELECT min(json_extract(t.payload, '$.business')) FROM events t
  WHERE t.waba IS NULL AND t.message_id = s.message_id AND t.kind = 'status')`;
/**
 * SQL: `pairOwnerSql` (store.ts) as SQLite reads it through migration 20's index on `events (business, waba,
 * tied_user)`: the number's owner (`numberOwnerSql`) when it ties business number `number` with user `user`
 * (a seek), else the first of the number's other WABAs, read one after another, that does (two seeks each; a
 * number has one WABA, or a few); NULL when none does (or `user` is NULL). The same WABA as `pairOwnerSql`'s,
 * where an index led by the user was one more index to write at every tie stored. `owner`: the number's owner
 * as SQL, when read already.
 */
function sqlitePairOwnerSql(number: string, user: string, owner = numberOwnerSql(number)): string {
  return `coalesce(
    (SELECT f.waba FROM events f
     WHERE f.business = ${number} AND f.waba = ${owner} AND f.tied_user = ${user}),
    CASE WHEN ${user} IS NOT NULL
              AND EXISTS (SELECT 1 FROM events g WHERE g.business = ${number} AND g.waba > ${owner})
    THEN (WITH RECURSIVE pair_wabas(waba) AS (
            SELECT min(b.waba) FROM events b WHERE b.business = ${number} AND b.waba > ${owner}
            UNION ALL
            SELECT (SELECT min(b.waba) FROM events b WHERE b.business = ${number} AND b.waba > pw.waba)
            FROM pair_wabas pw WHERE pw.waba IS NOT NULL)
          SELECT min(pw.waba) FROM pair_wabas pw
          WHERE EXISTS (SELECT 1 FROM events p
                        WHERE p.business = ${number} AND p.waba = pw.waba AND p.tied_user = ${user}))
    END)`;
}

/** SQL: `statusPlacementSql` (store.ts) with SQLite's look-up of a pair's owner (`sqlitePairOwnerSql`). */
function sqliteStatusPlacementSql(number: string, user: string): string {
  return `coalesce(${sqlitePairOwnerSql(number, user)}, ${numberOwnerSql(number)})`;
}

/**
 * SQL: where a status `s` naming no WABA is listed while its message is stored nowhere — its message's number
 * and user read in one seek of events_unnamed_status (as three subqueries, the seek was made three times).
 */
const STATUS_PLACEMENT_SQL = `(SELECT ${sqliteStatusPlacementSql('o.business', 'o.tied_user')}
  FROM (SELECT min(json_extract(t.payload, '$.business')) AS business,
               min(${canonicalUserSql(`json_extract(t.payload, '$.user')`, 'sqlite')}) AS tied_user
        FROM events t WHERE t.waba IS NULL AND t.message_id = s.message_id AND t.kind = 'status') o)`;

/**
 * `listEvents`' statement for the statuses naming no WABA of a scope (a JSON array of WABAs, `listing_scope`):
 * the listing's candidates (store.ts) that its predicate keeps — listed with a WABA of the
 * scope by their message (`messageInScopeJoinsStatusSql`), or placed there while their message is stored nowhere
 * (`STATUS_PLACEMENT_SQL`, `messageStoredSql`) — found in one pass over the scope's events (`listing_reached`):
 * each event with a message id seeks the statuses naming no WABA of its id (`events_unnamed_status`). A status so
 * reached from a business message of the scope (an event whose own key is one of `recordKeysSql` of its WABA
 * and id) that joins it (`messageJoinsStatusSql`) is listed at once: that message is one the predicate's first
 * seeks would find. Every other candidate — reached from the scope's events only through an inbound or a message
 * that does not join it, or by a number the scope ties (`listing_siblings`) — is decided by the predicate as
 * before, unless that pass listed it. Each candidate's predicate, its seeks of every key form in every WABA of
 * the scope, was ≈ 10 µs a status on a store of send logs (1.8 s of a 2.1 s listing; docs/benchmarks.md §7).
 * The scope's numbers are read by a loose scan of the ties (`events_business_waba_user`: a seek for each number
 * of the store and each WABA of the scope), not from every event of the scope, as `business || ''`: a value
 * without column affinity, which SQLite compares with `events_unnamed_business`'s expression as it is (with
 * the column's affinity it scans that index instead of seeking it). Each table is read in the order written
 * (`CROSS JOIN`; `INDEXED BY`: without statistics SQLite would rather scan `events_waba` for `waba IS NULL`
 * than seek a partial index; with them, the statement this one replaced scanned every event for the predicate:
 * 5 s a WABA on a store of 174,000 events whose statuses name their number). A status's row is read only when it is listed or decided on, or joined to an untrusted
 * message (a trusted one joins it whatever its writer).
 */
const SCOPE_UNNAMED_STATUSES_SQL = `WITH RECURSIVE ${STORED_WABAS_CTE},
  listing_scope(waba) AS (SELECT value FROM json_each(?)),
  listing_reached(key, is_found) AS MATERIALIZED (
    SELECT s.rowid, m.key IN (${recordKeysSql('m.waba', 'm.message_id')})
                    AND CASE WHEN m.is_trusted THEN 1 ELSE ${messageJoinsStatusSql('m', 's')} END
    FROM listing_scope w CROSS JOIN events m INDEXED BY events_waba
      CROSS JOIN events s INDEXED BY events_unnamed_status
    WHERE m.waba = w.waba AND m.message_id IS NOT NULL AND s.message_id = m.message_id AND s.waba IS NULL),
  tied_numbers(business) AS (
    SELECT min(business) FROM events WHERE business IS NOT NULL
    UNION ALL
    SELECT (SELECT min(e.business) FROM events e WHERE e.business > a.business)
    FROM tied_numbers a WHERE a.business IS NOT NULL),
  listing_numbers(business) AS (
    SELECT a.business || '' FROM tied_numbers a
    WHERE a.business IS NOT NULL
      AND EXISTS (SELECT 1 FROM listing_scope w CROSS JOIN events b
                  WHERE b.business = a.business AND b.waba = w.waba)),
  listing_siblings(message_id) AS (
    SELECT DISTINCT t.message_id FROM listing_numbers n CROSS JOIN events t INDEXED BY events_unnamed_business
    WHERE json_extract(t.payload, '$.business') = n.business AND t.waba IS NULL AND t.kind = 'status'),
  listing_undecided(key) AS (
    SELECT key FROM listing_reached WHERE NOT is_found
    UNION
    SELECT t.rowid FROM listing_siblings i CROSS JOIN events t INDEXED BY events_unnamed_status
    WHERE t.message_id = i.message_id AND t.waba IS NULL AND t.kind = 'status')
  SELECT s.payload FROM events s
  WHERE s.rowid IN (SELECT key FROM listing_reached WHERE is_found) AND s.kind = 'status'
  UNION ALL
  SELECT s.payload FROM listing_undecided c CROSS JOIN events s
  WHERE s.rowid = c.key AND s.kind = 'status'
    AND s.rowid NOT IN (SELECT key FROM listing_reached WHERE is_found)
    AND (${messageInScopeJoinsStatusSql('s')}
         OR (${STATUS_PLACEMENT_SQL} IN (SELECT waba FROM listing_scope) AND NOT ${messageStoredSql('s')}))`;

/**
 * `ownersOf`'s statement: for each [number, user or null] of a JSON array, its index, the number's owner and
 * the pair's (NULL without a user). The number's owner is read once for both (materialized: the pair's SQL
 * names it three times, each a seek), and each element's fields once. Texts built once: each group ran it and
 * `UNNAMED_STATUSES_SQL` with texts of several KB made anew, and looked up by them.
 */
const OWNERS_SQL = `WITH n AS MATERIALIZED (
         SELECT j.key AS key, j.number, j.user, ${numberOwnerSql('j.number')} AS owner
         FROM (SELECT key, json_extract(value, '$[0]') AS number, json_extract(value, '$[1]') AS user
               FROM json_each(?)) AS j)
       SELECT n.key, n.owner,
              CASE WHEN n.user IS NOT NULL THEN ${sqlitePairOwnerSql('n.number', 'n.user', 'n.owner')} END
       FROM n`;

/** `listingFacts`' statuses naming no WABA of a JSON array of message ids, with (or not) their inbounds' WABAs. */
function unnamedStatusesSql(inboundWabas: string): string {
  return `WITH RECURSIVE ${STORED_WABAS_CTE}
             SELECT s.message_id, s.is_trusted, s.source, ${STATUS_PLACEMENT_SQL} AS owner,
                    ${inboundWabas} AS inbound_wabas
             FROM json_each(?) AS ids CROSS JOIN events s
             WHERE s.waba IS NULL AND s.message_id = ids.value AND s.kind = 'status'`;
}
const UNNAMED_STATUSES_SQL = unnamedStatusesSql('NULL');
const UNNAMED_STATUSES_WITH_INBOUNDS_SQL = unnamedStatusesSql(
  inboundWabasSql('s', (column) => `json_group_array(${column})`),
);

const HALF_HOUR_MS = 30 * 60_000;
/**
 * Rows read or written between two yields to the event loop in long operations (listing a portfolio's events,
 * writing a rating): better-sqlite3 is synchronous, so without yields a 300k-unit rating would stall every
 * webhook request for seconds.
 */
const CHUNK_ROWS = 2_000;

/**
 * What an `onPage` returned, as a promise to await later, or undefined when it returned none (so the next
 * page may be handed over at once). A rejection is marked handled now: it is awaited (and thrown) after the
 * read transaction, and must not count as unhandled meanwhile.
 */
function handedOver(result: void | Promise<void>): Promise<void> | undefined {
  // A function typed to return void may return anything (`rows.push(…)`'s count): only a thenable is awaited.
  if (typeof (result as { then?: unknown } | undefined)?.then !== 'function') return undefined;
  const promise = Promise.resolve(result);
  promise.catch(() => undefined);
  return promise;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Serialises the store's writes: a rating written in chunks keeps its transaction open across yields. */
class WriteLock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(work: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(work);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** A text field of a JSON column (stored as TEXT), for `dimensionSql`. */
function sqliteJsonText(column: string, field: string): string {
  return `json_extract(${column}, '$.${field}')`;
}

export interface SqliteStoreOptions extends Database.Options {
  /**
   * For commands that only read: the file must hold a store this version migrated, and nothing is created,
   * migrated or written (the connection is query_only). Refused with a `ReadOnlyOpenError` otherwise.
   */
  isReadOnly?: boolean;
  /**
   * The WAL checkpointer of a file opened for writing (wal-checkpointer.ts): `script` is its compiled worker
   * (default: the one next to this module when running compiled; none from TypeScript sources, where tests
   * pass one), `null` for none (the writer checkpoints itself, SQLite's default); `intervalMs` and
   * `onFailure` as in `WalCheckpointerOptions`.
   */
  walCheckpointer?: {
    script?: string | null;
    intervalMs?: number;
    onFailure?: (error: Error) => void;
  };
}

/** Driver `options` go to better-sqlite3 (tests pass `verbose` to see the statements run). */
export async function openSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<Store> {
  const { isReadOnly = false, walCheckpointer = {}, ...driverOptions } = options;
  if (isReadOnly) return openReadOnly(path, driverOptions);
  const db = new Database(path, driverOptions);
  try {
    refuseForeignFile(db, path);
    // WAL lets readers run during a write; synchronous=FULL fsyncs the WAL at every commit, so a body that
    // got a 200 survives SIGKILL and power loss. busy_timeout waits for another process's write.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    refuseUnwritableFile(db);
    const store = new SqliteStore(db, false);
    await store.migrate();
    // Only once migrated: the worker opens the file as it is, and a failed open leaves no thread behind.
    const { script = walCheckpointWorkerScript(), ...checkpointerOptions } = walCheckpointer;
    if (isFileBacked(db) && script !== null)
      store.checkpointer = new WalCheckpointer(db, { script, ...checkpointerOptions });
    return store;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * A file this process may not write (another user's, read-only, immutable) is refused at open with SQLite's
 * SQLITE_READONLY: SQLite opens such a file read-only without a word, a migrated store's migrations write
 * nothing, and the service would start, then fail at its first webhook. The probe sets one header field to
 * the value it has, in a transaction rolled back: nothing is written.
 */
function refuseUnwritableFile(db: Db): void {
  const version = Number(db.pragma('user_version', { simple: true }));
  db.exec('BEGIN IMMEDIATE');
  try {
    db.pragma(`user_version = ${version}`);
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
  }
}

/** A database with a file of its own (not `:memory:`, not an empty name's temporary database). */
function isFileBacked(db: Db): boolean {
  return !db.memory && db.name !== '';
}

/** For tests: the WAL checkpointer of a SQLite store, or undefined when it has none. */
export function walCheckpointerOf(store: Store): WalCheckpointer | undefined {
  return store instanceof SqliteStore ? store.checkpointer : undefined;
}

/**
 * A connection that cannot change the database: opened read-write but `query_only` (a read-only connection
 * would leave its -wal and -shm files behind, since only a writer may remove them at close), and never with
 * the create flag, so a mistyped path stays a missing file.
 */
function openReadOnly(path: string, driverOptions: Database.Options): SqliteStore {
  if (path === ':memory:' || path.trim() === '') {
    throw new ReadOnlyOpenError('NO_STORE', 'no wameter store in an in-memory database: it starts empty');
  }
  if (!existsSync(path)) {
    throw new ReadOnlyOpenError('NO_STORE', `no wameter store in ${path}: the file does not exist`);
  }
  const db = new Database(path, { ...driverOptions, fileMustExist: true });
  try {
    db.pragma('query_only = ON');
    db.pragma('busy_timeout = 5000');
    refuseForeignFile(db, path);
    const hasMigrations = tablesOf(db).includes('schema_migrations');
    const applied = hasMigrations
      ? new Set(
          db
            .prepare('SELECT version FROM schema_migrations')
            .pluck()
            .all()
            .map((v) => Number(v)),
        )
      : undefined;
    checkReadableMigrations(applied, MIGRATIONS, path, 'the file holds no wameter tables');
    return new SqliteStore(db, true);
  } catch (error) {
    db.close();
    throw error;
  }
}

function tablesOf(db: Database.Database): string[] {
  return db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .pluck()
    .all()
    .map(String);
}

/**
 * A SQLite file of something else (tables, and no wameter migrations) is refused before anything is written
 * to it (not even the switch to WAL): wameter never adds its tables to another program's database.
 */
function refuseForeignFile(db: Database.Database, path: string): void {
  const tables = foreignTables(tablesOf(db));
  if (tables.length > 0) throw foreignFileError(path, tables);
}

/** Names the file (the driver's errors never do), and what to give instead. */
function foreignFileError(path: string, tables: string[]): ForeignStoreError {
  return new ForeignStoreError(
    `the SQLite file ${resolvePath(path)}`,
    tables,
    'a file of its own (a path where no file is yet: it creates one)',
  );
}

/** The tables of another program that `tables` are, or none: wameter's store, or no table at all. */
function foreignTables(tables: string[]): string[] {
  return tables.length > 0 && !tables.includes('schema_migrations') ? tables : [];
}

/** What a SQLite file holds (`inspectSqliteFile`). */
export type SqliteFileContents =
  /** wameter's store (its migrations table), of this version or an older one. */
  | { holds: 'store' }
  /** No table at all: an empty file too. Opened for writing, it becomes a store. */
  | { holds: 'nothing' }
  /** Another program's tables: `reason` is the words `openSqliteStore` refuses the file with. */
  | { holds: 'foreign'; reason: string };

/**
 * What the SQLite file at `path` holds, looked at without writing to it, for what must know before opening
 * the store (the writer lock makes its files beside a database it is to open; `wameter rerate` re-rates only a
 * store); undefined when it cannot be read here (missing, not SQLite, unreadable, busy): opening the store
 * then says what is wrong. The connection is the store's kind (read-write, `query_only`), so a WAL database's
 * -wal and -shm files are removed again when it closes.
 */
export function inspectSqliteFile(path: string): SqliteFileContents | undefined {
  let db: Database.Database;
  try {
    db = new Database(path, { fileMustExist: true });
  } catch {
    return undefined;
  }
  try {
    db.pragma('query_only = ON');
    const tables = tablesOf(db);
    if (tables.length === 0) return { holds: 'nothing' };
    const foreign = foreignTables(tables);
    if (foreign.length === 0) return { holds: 'store' };
    return { holds: 'foreign', reason: foreignFileError(path, foreign).message };
  } catch {
    return undefined;
  } finally {
    db.close();
  }
}

/** How long close's last checkpoint waits for readers of an older snapshot before leaving the WAL as is. */
const CLOSE_CHECKPOINT_WAIT_MS = 1_000;

type Durability = 'synced' | 'derived';

/** Live ratings are derived data (rateAll recomputes them at start); everything else is synced. */
function durabilityOf(rating: RatingRecord): Durability {
  return rating.reason === 'live' ? 'derived' : 'synced';
}

/**
 * Turns of the event loop a SQLite group commit waits for requests still arriving (`gatherTurns`,
 * group-commit.ts; docs/decisions.md: 2, 4 and 8 measured alike).
 */
export const SQLITE_GATHER_TURNS = 4;

class SqliteStore implements Store {
  /** Prepared once per SQL text (filters combine into a bounded set of texts). */
  private readonly statements = new Map<string, Database.Statement>();
  /**
   * Every write goes through this lock: one connection, so a transaction kept open across yields (a rating
   * written in chunks) must never take in another caller's statements.
   */
  private readonly writes = new WriteLock();
  /**
   * Concurrent ingests share one transaction, so one fsync (group commit). A commit runs in the server's
   * thread here, so no request is read while it runs: a group waits up to 4 turns of the event loop for
   * requests still arriving (`gatherTurns`, group-commit.ts).
   */
  private readonly ingests = new GroupCommitQueue((items) => this.writes.run(() => this.ingestGroup(items)), {
    gatherTurns: SQLITE_GATHER_TURNS,
  });
  /** `writeGroup`'s transaction, made at its first group. */
  private groupTransaction:
    Database.Transaction<(items: readonly IngestItem[]) => IngestItemOutcome[]> | undefined;
  /** The worker thread that checkpoints the WAL (a file opened for writing, when its script is found). */
  checkpointer: WalCheckpointer | undefined;
  /** close()'s one run: a second call waits for the first. */
  private closing: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    /** Opened for a command that only reads: never migrated (the connection refuses writes too). */
    private readonly isReadOnly: boolean,
  ) {}

  /**
   * Runs `work` in one IMMEDIATE transaction under the write lock; `work` may yield between chunks. A
   * `derived` write (a live rating, recomputed from the events at every start) commits without its own fsync
   * (synchronous=NORMAL): the next ingest's fsync makes it durable, and a power loss can only lose a suffix
   * of such writes, never an event.
   */
  private chunkedTransaction(work: () => Promise<void>, durability: Durability): Promise<void> {
    return this.writes.run(async () => {
      if (durability === 'derived') this.db.pragma('synchronous = NORMAL');
      try {
        this.db.exec('BEGIN IMMEDIATE');
        try {
          await work();
          this.db.exec('COMMIT');
        } catch (error) {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          throw error;
        }
      } finally {
        if (durability === 'derived') this.db.pragma('synchronous = FULL');
      }
    });
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  async migrate(): Promise<void> {
    if (this.isReadOnly) throw new Error('this store was opened read-only: it is never migrated');
    // IMMEDIATE takes the write lock first, so two processes opening one file migrate one after the other.
    this.db
      .transaction(() => {
        this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
          version       INTEGER PRIMARY KEY,
          name          TEXT    NOT NULL,
          applied_at_ms INTEGER NOT NULL
        ) STRICT`);
        const applied = new Set(
          this.db
            .prepare('SELECT version FROM schema_migrations')
            .pluck()
            .all()
            .map((v) => Number(v)),
        );
        checkNoNewerMigrations(applied, MIGRATIONS);
        const record = this.db.prepare(
          'INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)',
        );
        for (const migration of MIGRATIONS) {
          if (applied.has(migration.version)) continue;
          this.db.exec(migration.sql);
          record.run(migration.version, migration.name, Date.now());
        }
      })
      .immediate();
  }

  ingestGroups(): IngestGroupCounts {
    return { ...this.ingests.stats };
  }

  async ping(): Promise<void> {
    this.statement('SELECT 1').get();
  }

  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    await this.ingests.idle();
    await this.writes.run(() => undefined);
    // The worker first (it finishes a checkpoint in progress), then one last checkpoint that copies the
    // whole WAL and truncates it to 0 bytes, even when another connection (a reader, another process) keeps
    // the file open: SQLite's own checkpoint at close runs only in the file's last connection.
    await this.checkpointer?.stop();
    if (!this.db.open) return;
    try {
      if (!this.isReadOnly && isFileBacked(this.db)) this.truncateWal();
    } finally {
      this.db.close();
    }
  }

  /**
   * `wal_checkpoint(TRUNCATE)` waits for readers still on an older snapshot: at most CLOSE_CHECKPOINT_WAIT_MS,
   * so close ends promptly. A checkpoint they keep from completing leaves the WAL as it is (every frame in
   * it stays valid: the next open or checkpoint copies them).
   */
  private truncateWal(): void {
    try {
      this.db.pragma(`busy_timeout = ${CLOSE_CHECKPOINT_WAIT_MS}`);
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // Closing anyway: the WAL still holds every committed frame.
    }
  }

  ingestWebhook(
    raw: WebhookBodyInput,
    events: EventInput[],
  ): Promise<IngestOutcome & { rawId: number; isDuplicate: boolean }> {
    return this.ingests.submitWebhook(raw, events);
  }

  ingestEvents(events: EventInput[], options: IngestEventsOptions = {}): Promise<IngestOutcome> {
    return this.ingests.submitEvents(events, options);
  }

  async ingestBatch(items: readonly IngestItem[]): Promise<IngestItemOutcome[]> {
    const checked = items.map((item) => (item.raw ? { ...item, raw: checkedSha256(item.raw) } : item));
    return this.writes.run(() => this.ingestGroup(checked));
  }

  /** Display numbers of business numbers (store.ts `BusinessNumber`), each replacing the one stored before. */
  private keepBusinessNumbers(numbers: readonly BusinessNumber[]): void {
    for (const number of numbers) {
      this.statement(
        `INSERT INTO business_numbers (waba, business, display_number) VALUES (?, ?, ?)
         ON CONFLICT (waba, business) DO UPDATE SET display_number = excluded.display_number
         WHERE business_numbers.display_number <> excluded.display_number`,
      ).run(number.waba, number.business, number.displayNumber);
    }
  }

  /**
   * One transaction (one fsync) for the whole group; each item as if ingested alone, in order, and the WABAs
   * whose listing the group changed (`relistedWabas`) read before it commits.
   */
  private ingestGroup(items: readonly IngestItem[]): IngestItemOutcome[] {
    // The statement journals of the group's transaction in memory. An INSERT into events ran migration 18's
    // trigger (until migration 21), and so did a rewrite (until migration 22), so SQLite kept a statement
    // journal of every page the statement changed; one passing 64 KiB (a page split or two) went to a
    // temporary file, and so did every later statement of the transaction — a pwrite per page and an open and
    // unlink of the file, in the server's thread. Kept for any statement that still needs one. Never more than
    // a statement's pages; only here: with temp_store = MEMORY a sort or a temporary index is held in memory
    // whole, however large.
    // Set before BEGIN (SQLite places them when the write transaction begins), set back after it ends. No
    // temporary table may ever be made on this connection: with the temporary database open, each change of
    // temp_store closes it and makes every prepared statement prepare again.
    this.db.exec('PRAGMA temp_store = MEMORY');
    try {
      return this.writeGroup(items);
    } finally {
      this.db.exec('PRAGMA temp_store = DEFAULT');
    }
  }

  private writeGroup(items: readonly IngestItem[]): IngestItemOutcome[] {
    // Made once: better-sqlite3's `transaction` builds four wrapped functions and their properties each time.
    this.groupTransaction ??= this.db.transaction((group: readonly IngestItem[]) => this.writeGroupIn(group));
    return this.groupTransaction.immediate(items);
  }

  /** `writeGroup` inside its transaction. */
  private writeGroupIn(items: readonly IngestItem[]): IngestItemOutcome[] {
    // Not needed by any item (`wameter import`): none of the look-ups below, the same writes.
    const isRelisting = isRelistingNeededBy(items);
    // Before anything is written: the owners of the numbers these events may tie (ListingFacts); a tie a
    // rewrite takes away adds its number's owner before that rewrite (insertEvents).
    const ownersBefore = isRelisting
      ? this.ownersOf([...tiedKeysOf(items.flatMap((item) => item.events))])
      : new Map<string, string | null>();
    const marks = newChangeMarks();
    const written = items.map((item): { outcome: IngestItemOutcome; changes: RowChange[] } => {
      const { raw, events } = item;
      const changes: RowChange[] = [];
      const relisting = isRelisting ? { ownersBefore, changes } : null;
      if (raw === null) {
        const outcome = this.insertEvents(events, relisting, marks);
        this.keepBusinessNumbers(businessNumbersOfItem(item));
        return { outcome: { rawId: null, isDuplicate: false, ...outcome }, changes };
      }
      const existing = this.statement('SELECT id FROM raw_webhooks WHERE sha256 = ?').pluck().get(raw.sha256);
      if (existing !== undefined) {
        // Stored before together with its events, in one transaction: all of them are already here.
        const outcome = {
          rawId: Number(existing),
          isDuplicate: true,
          inserted: [],
          duplicates: events.length,
          merged: [],
          relistedWabas: [],
        };
        return { outcome, changes };
      }
      const result = this.statement(
        'INSERT INTO raw_webhooks (received_at_ms, body, sha256, parse_error) VALUES (?, ?, ?, ?)',
      ).run(raw.receivedAtMs, toBuffer(raw.body), raw.sha256, storableText(raw.parseError));
      const outcome = this.insertEvents(events, relisting, marks);
      this.keepBusinessNumbers(businessNumbersOfItem(item));
      return {
        outcome: { rawId: Number(result.lastInsertRowid), isDuplicate: false, ...outcome },
        changes,
      };
    });
    // Every insert and rewrite of the group is behind it (insertEvents is the only code that inserts or updates
    // events), and nothing of the transaction is after it but reads: the marks are written with the rows, or
    // rolled back with them.
    this.markChanged(marks);
    if (written.every(({ changes }) => changes.length === 0)) return written.map(({ outcome }) => outcome);
    const relisted = relistedWabas(
      written.map(({ outcome, changes }) => ({
        changes,
        ownWabas: ownWabasOf(outcome),
      })),
      this.listingFacts(
        written.flatMap(({ changes }) => changes),
        ownersBefore,
      ),
    );
    return written.map(({ outcome }, index) => ({
      ...outcome,
      relistedWabas: items[index]!.isRelistingNeeded === false ? [] : relisted[index]!,
    }));
  }

  /**
   * The marks of the events a group inserted or rewrote (`ChangeMarks`), in its transaction, after its writes:
   * what migration 18's triggers on INSERT and UPDATE wrote a row at a time (`eventChangeTriggerSql`), once.
   * The clock advances once, each WABA inserted or rewritten takes the new mark, and so does '' when such a
   * row names no WABA, or names one and may move a status naming no WABA: a message of an id such a status
   * reports on, or a tie of a number such a status names (a rewrite's: its tie before and its tie after, the
   * trigger's OLD and NEW rows) — the triggers' two look-ups, made here for all the rows together, and not at
   * all when no status naming no WABA is stored (a seek of events_unnamed_status).
   *
   * The same marks as the triggers' for what readers compare (`EventChanges`: a mark against a clock read
   * between transactions — every ingest holds the write lock, and readEventChanges waits for it): each group
   * changing rows marks the same WABAs, and '' in the same groups, past every clock read before it and at most
   * the clock after it; only the numbers differ (one advance a group, not one a row). '' the same: a look-up
   * made after the group's writes rather than at each row (with the row's values as written) finds what the
   * row's would have found — an ingest deletes no row and never rewrites a row's WABA, message id or kind —
   * except through a status naming no WABA that the group inserted, or rewrote (its number), after that row,
   * and which marked '' itself (its own WABA's mark is ''). The order within a group is never read.
   */
  private markChanged(marks: ChangeMarks): void {
    if (marks.wabas.size === 0) return;
    if (!marks.wabas.has('') && this.isUnnamedMovedBy(marks)) marks.wabas.add('');
    this.statement('UPDATE event_clock SET seq = seq + 1 WHERE id = 1').run();
    // `WHERE true`: an upsert's SELECT must not end at a join (SQLite would read ON CONFLICT as its ON).
    this.statement(
      `INSERT INTO event_changes (waba, seq)
       SELECT w.value, (SELECT seq FROM event_clock WHERE id = 1) FROM json_each(?) w WHERE true
       ON CONFLICT (waba) DO UPDATE SET seq = excluded.seq`,
    ).run(JSON.stringify([...marks.wabas]));
  }

  /** Whether a row inserted or rewritten naming its WABA may move a status naming no WABA (markChanged). */
  private isUnnamedMovedBy(marks: ChangeMarks): boolean {
    if (marks.messageIds.size === 0 && marks.numbers.size === 0) return false;
    // None stored: none to move (the probe PostgreSQL's migration 22 makes once a transaction).
    const isAnyUnnamed =
      this.statement(
        'SELECT 1 FROM events INDEXED BY events_unnamed_status WHERE waba IS NULL LIMIT 1',
      ).get() !== undefined;
    if (!isAnyUnnamed) return false;
    // The trigger's look-ups, spelt alike (`|| ''`: a number without affinity, so that SQLite seeks
    // events_unnamed_business's expression), a seek each; CROSS JOIN keeps the values the outer loop.
    return (
      this.statement(
        `SELECT EXISTS (SELECT 1 FROM json_each(?) i CROSS JOIN events u INDEXED BY events_unnamed_status
                        WHERE u.message_id = i.value AND u.waba IS NULL)
             OR EXISTS (SELECT 1 FROM json_each(?) n CROSS JOIN events u INDEXED BY events_unnamed_business
                        WHERE json_extract(u.payload, '$.business') = n.value || ''
                          AND u.waba IS NULL AND u.kind = 'status')`,
      )
        .pluck()
        .get(JSON.stringify([...marks.messageIds]), JSON.stringify([...marks.numbers])) === 1
    );
  }

  /**
   * The owner of each tie key now (`tieKey`: a number, `numberOwnerSql`, one seek of
   * events_business_waba_user; a number and a user, `sqlitePairOwnerSql`, one more when the number's owner
   * holds the pair, else two for each WABA tying the number), or null. A number asked for with a pair of it
   * (`tiedKeysOf` asks for both) is read with the pair, its owner once.
   */
  private ownersOf(keys: readonly string[]): Map<string, string | null> {
    const owners = new Map<string, string | null>();
    if (keys.length === 0) return owners;
    const asked = new Set(keys);
    const split = keys.map(splitTieKey);
    const pairs = split.filter(([, user]) => user !== null);
    const withPairs = new Set(pairs.map(([number]) => number));
    const reads = [...pairs, ...split.filter(([number, user]) => user === null && !withPairs.has(number))];
    const rows = this.statement(OWNERS_SQL).raw().all(JSON.stringify(reads)) as [number, unknown, unknown][];
    for (const [index, owner, pairOwner] of rows) {
      const [number, user] = reads[index]!;
      if (asked.has(tieKey(number))) owners.set(tieKey(number), nullableString(owner));
      if (user !== null) owners.set(tieKey(number, user), nullableString(pairOwner));
    }
    return owners;
  }

  /**
   * Before a rewrite that ties or unties `change`'s keys: their owners as the group found them, unless read
   * already (no write of the group tied such a key before, or it would have been read then or at the start).
   */
  private noteOwnersBefore(ownersBefore: Map<string, string | null>, change: RowChange): void {
    const keys = rewrittenTieKeys(change).filter((key) => !ownersBefore.has(key));
    for (const [key, owner] of this.ownersOf(keys)) ownersBefore.set(key, owner);
  }

  /** What `relistedWabas` needs beyond the changes, read after the group's writes (ListingFacts). */
  private listingFacts(
    changes: readonly RowChange[],
    ownersBefore: ReadonlyMap<string, string | null>,
  ): ListingFacts {
    const ownersAfter = this.ownersOf(keysLosingTies(changes));
    // One statement for all the ids: a seek of events_unnamed_status each (CROSS JOIN keeps the ids the outer
    // loop: SQLite would otherwise read every status naming no WABA through events_waba).
    const ids = joiningMessageIds(changes);
    const unnamedStatuses = new Map<string, UnnamedStatus[]>();
    // The WABAs that may list the statuses naming no WABA the group stored or changed; past the bound on the
    // look-ups, every stored WABA instead.
    const unnamedIds = unnamedStatusIds(changes);
    let unnamedStatusWabas: Map<string, string[]> | null = new Map();
    let storedWabas: string[] = [];
    if (unnamedIds.length > 0) {
      const stored = this.storedWabas();
      if (unnamedIds.length * stored.length > UNNAMED_LOOKUP_LIMIT) {
        unnamedStatusWabas = null;
        storedWabas = stored;
      } else {
        unnamedStatusWabas = this.unnamedStatusWabas(unnamedIds);
      }
    }
    // The WABAs of inbounds of their ids, unless every stored WABA is named anyway.
    const rows = (
      ids.length === 0
        ? []
        : this.statement(
            unnamedStatusWabas === null ? UNNAMED_STATUSES_SQL : UNNAMED_STATUSES_WITH_INBOUNDS_SQL,
          ).all(JSON.stringify(ids))
    ) as Row[];
    for (const row of rows) {
      const id = String(row.message_id);
      unnamedStatuses.set(id, [
        ...(unnamedStatuses.get(id) ?? []),
        {
          isTrusted: row.is_trusted === 1,
          source: String(row.source),
          owner: nullableString(row.owner),
          inboundWabas: row.inbound_wabas === null ? [] : (JSON.parse(String(row.inbound_wabas)) as string[]),
        },
      ]);
    }
    return { ownersBefore, ownersAfter, unnamedStatuses, unnamedStatusWabas, storedWabas };
  }

  /**
   * For each of `ids`, the WABAs that may list its statuses naming no WABA (`unnamedStatusWabasOf`): the stored
   * WABAs holding a message event of the id (a few key seeks per stored WABA and id), and the WABAs tying each
   * business number those statuses give (one skip scan of events_business_waba_user per number).
   */
  private unnamedStatusWabas(ids: readonly string[]): Map<string, string[]> {
    const idsJson = JSON.stringify(ids);
    const holders = this.statement(
      `WITH RECURSIVE ${STORED_WABAS_CTE}
       SELECT DISTINCT ids.value AS id, w.waba AS waba
       FROM json_each(?) AS ids CROSS JOIN stored_wabas w CROSS JOIN events m
       WHERE w.waba IS NOT NULL AND m.key IN (${messageKeysSql('w.waba', 'ids.value')})`,
    ).all(idsJson) as Row[];
    // Each status's number, and those its merged copies named (namesOfCopies: the number a merge replaced).
    const statuses = this.statement(
      `SELECT ids.value AS id, json_extract(s.payload, '$.business') AS business,
              json_extract(s.payload, '$.namesOfCopies') AS names_of_copies
       FROM json_each(?) AS ids CROSS JOIN events s INDEXED BY events_unnamed_status
       WHERE s.waba IS NULL AND s.message_id = ids.value AND s.kind = 'status'`,
    ).all(idsJson) as Row[];
    const tying = this.statement(
      `WITH RECURSIVE t(waba) AS (
         SELECT min(waba) FROM events WHERE business = ?
         UNION ALL
         SELECT (SELECT min(e.waba) FROM events e WHERE e.business = ? AND e.waba > t.waba) FROM t
         WHERE t.waba IS NOT NULL)
       SELECT waba FROM t WHERE waba IS NOT NULL`,
    ).pluck();
    return unnamedStatusWabasOf(ids, holders, statuses, (number) => tying.all(number, number).map(String));
  }

  /**
   * Inside a transaction, in order: an event whose key is new is stored as given; a copy of a stored event
   * (its key stored before, or earlier in this batch) is a duplicate, merged into the stored row, which is
   * rewritten only when the merge changes it (payload, `at_ms`, `business`, `is_trusted`; the rest stays as
   * first stored). `business` is the number a trusted copy tied (`tiedBusinessOf`, `tiedBusinessAfterMerge`),
   * `is_trusted` whether any copy's writer was trusted (`isTrustedWriter`, `isTrustedAfterMerge`). With
   * `relisting` (the group names its `relistedWabas`), the rows that place statuses naming no WABA are added to
   * its `changes` (`isPlacingRow`), and the owner of a number a rewrite unties is noted in its `ownersBefore`
   * before that rewrite; null: the same writes, nothing noted. Each row inserted or rewritten is noted in
   * `marks`, which the group writes after its writes (`markChanged`).
   */
  private insertEvents(
    events: EventInput[],
    relisting: { ownersBefore: Map<string, string | null>; changes: RowChange[] } | null,
    marks: ChangeMarks,
  ): IngestOutcome {
    const insert = this.statement(
      `INSERT INTO events (key, kind, waba, message_id, at_ms, payload, received_at_ms, source, business,
         tied_user, is_trusted)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO NOTHING`,
    );
    const inserted: CoreEvent[] = [];
    const merged = new Map<string, CoreEvent>();
    let duplicates = 0;
    for (const input of events) {
      const { event } = input;
      const json = JSON.stringify(event);
      const tie = tiedBusinessOf(event, input.isBusinessTied);
      const tiedUser = tiedUserOf(event, tie);
      const isTrusted = isTrustedWriter(input);
      const waba = event.waba ?? null;
      const messageId = 'id' in event ? event.id : null;
      const count = insert.run(
        input.key,
        event.kind,
        waba,
        messageId,
        event.atMs,
        json,
        input.receivedAtMs,
        input.source,
        tie,
        tiedUser,
        isTrusted ? 1 : 0,
      ).changes;
      if (count === 1) {
        inserted.push(event);
        noteChanged(marks, waba, messageId, tie);
        if (relisting === null) continue;
        const change: RowChange = {
          event,
          source: input.source,
          isInserted: true,
          tieBefore: null,
          tie,
          tiedUserBefore: null,
          tiedUser,
          wasTrusted: false,
          isTrusted,
        };
        if (isPlacingRow(event) && isPlacingChange(change)) relisting.changes.push(change);
        continue;
      }
      duplicates += 1;
      const [payload, storedTie, storedTiedUser, trustedFlag, source] = this.statement(
        'SELECT payload, business, tied_user, is_trusted, source FROM events WHERE key = ?',
      )
        .raw()
        .get(input.key) as [string, string | null, string | null, number, string];
      const stored = JSON.parse(payload) as CoreEvent;
      const wasTrusted = trustedFlag === 1;
      // The same text (a file imported again) merges nothing, but a trusted copy may still tie it and make it
      // trusted.
      const next = payload === json ? undefined : mergedCopy(stored, event);
      const nextTie = tiedBusinessAfterMerge(storedTie, next ?? stored, input);
      const nextTiedUser = tiedUserOf(next ?? stored, nextTie);
      const isNowTrusted = isTrustedAfterMerge(wasTrusted, input);
      if (
        next === undefined &&
        nextTie === storedTie &&
        nextTiedUser === storedTiedUser &&
        isNowTrusted === wasTrusted
      )
        continue;
      const change: RowChange = {
        event: next ?? stored,
        source,
        isInserted: false,
        tieBefore: storedTie,
        tie: nextTie,
        tiedUserBefore: storedTiedUser,
        tiedUser: nextTiedUser,
        wasTrusted,
        isTrusted: isNowTrusted,
      };
      if (relisting !== null) this.noteOwnersBefore(relisting.ownersBefore, change);
      if (next === undefined) {
        this.statement('UPDATE events SET business = ?, tied_user = ?, is_trusted = ? WHERE key = ?').run(
          nextTie,
          nextTiedUser,
          isNowTrusted ? 1 : 0,
          input.key,
        );
      } else {
        this.statement(
          `UPDATE events SET payload = ?, at_ms = ?, business = ?, tied_user = ?, is_trusted = ?
           WHERE key = ?`,
        ).run(JSON.stringify(next), next.atMs, nextTie, nextTiedUser, isNowTrusted ? 1 : 0, input.key);
        merged.set(input.key, next);
      }
      // As the trigger on UPDATE marked it: the row's `waba` and `message_id` — those of its stored event, as
      // the insert above derived them (a merge keeps both: the copies share a key) — and the ties of its OLD
      // and NEW rows. Read from the payload already parsed: two more columns read cost ≈ 2,800 instructions a
      // rewrite.
      noteChanged(marks, stored.waba ?? null, 'id' in stored ? stored.id : null, storedTie, nextTie);
      if (relisting !== null && isPlacingRow(stored) && isPlacingChange(change))
        relisting.changes.push(change);
    }
    // Named by the group, once every item is written (ingestGroup).
    return { inserted, duplicates, merged: [...merged.values()], relistedWabas: [] };
  }

  async getRawWebhook(id: number): Promise<StoredRawWebhook | undefined> {
    const row = this.statement('SELECT * FROM raw_webhooks WHERE id = ?').get(id) as Row | undefined;
    return row && rawFromRow(row);
  }

  async listUnreadableWebhooks(limit: number): Promise<StoredRawWebhook[]> {
    const rows = this.statement(
      'SELECT * FROM raw_webhooks WHERE parse_error IS NOT NULL ORDER BY id DESC LIMIT ?',
    ).all(checkLimit(limit)) as Row[];
    return rows.map(rawFromRow);
  }

  async listEvents(wabas?: readonly string[]): Promise<CoreEvent[]> {
    checkFilterText('wabas', wabas);
    // In chunks by rowid (no sort: the rater takes any order), yielding between chunks; a scope's WABAs one
    // at a time, each chunk read in the order of `events_waba` (a chunk of several WABAs at once had every row
    // of them after the last one read sorted again: 1.8× the CPU over a portfolio of 163,000 events).
    const page =
      wabas === undefined
        ? this.statement(
            'SELECT rowid, payload, business IS NULL FROM events WHERE rowid > ? ORDER BY rowid LIMIT ?',
          ).raw()
        : this.statement(
            `SELECT rowid, payload, business IS NULL FROM events
             WHERE waba = ? AND rowid > ? ORDER BY rowid LIMIT ?`,
          ).raw();
    const events: CoreEvent[] = [];
    for (const waba of wabas === undefined ? [undefined] : [...new Set(wabas)]) {
      for (let after = 0; ;) {
        const rows = (
          waba === undefined ? page.all(after, CHUNK_ROWS * 5) : page.all(waba, after, CHUNK_ROWS * 5)
        ) as [number, string, number][];
        // Each row as it ties (withRowTie): the rater places statuses naming no WABA by the stored ties only.
        for (const [, payload, isUntied] of rows) {
          events.push(withRowTie(JSON.parse(payload) as CoreEvent, isUntied === 1));
        }
        if (rows.length < CHUNK_ROWS * 5) break;
        after = rows.at(-1)![0];
        await yieldToEventLoop();
      }
    }
    const scope = wabas === undefined ? [] : [JSON.stringify(wabas)];
    if (wabas !== undefined) {
      // A status that did not name its WABA belongs to the WABA of the message it reports on, when that message
      // joins it (a trusted writer's, or the status's own untrusted writer's: messageJoinsStatusSql): found from
      // the scope's messages, each seeking the statuses of its id. When no WABA stores its message so, it belongs
      // to the one WABA the rater places it with (statusPlacementSql: its number and user's pair's smallest WABA,
      // seeks of events_business_waba_user, else its number's owner, a seek of it), and only then is its message
      // looked for in every stored WABA. Only the statuses the scope's own events can bring in are looked at
      // (the listing's candidates, store.ts), and only those its messages do not join are decided one at a time
      // (SCOPE_UNNAMED_STATUSES_SQL).
      const orphans = this.statement(SCOPE_UNNAMED_STATUSES_SQL).pluck().all(scope[0]);
      for (const payload of orphans) events.push(JSON.parse(String(payload)) as CoreEvent);
    }
    return events;
  }

  async refreshStatistics(of: StatisticsOf): Promise<void> {
    // Analyses only what SQLite's planner would gain from (its statistics are used when present). The bill's
    // pages are read through their indexes whatever the statistics (the same plans after ANALYZE units, 22,933
    // units imported): nothing to gain there.
    if (of === 'events') this.db.pragma('optimize');
  }

  async readEventChanges(): Promise<EventChanges> {
    // After any write in progress on this connection commits (an ingest yields between its chunks: a mark read
    // inside it could be rolled back, and given again to other events), in one read transaction: the marks and
    // the clock of the same moment.
    return this.writes.run(() =>
      this.db.transaction((): EventChanges => {
        const seq = Number(this.statement('SELECT seq FROM event_clock WHERE id = 1').pluck().get() ?? 0);
        const byWaba = new Map<string, number>();
        let unnamedSeq = 0;
        for (const [waba, mark] of this.statement('SELECT waba, seq FROM event_changes').raw().all() as [
          string,
          number,
        ][]) {
          if (waba === '') unnamedSeq = Number(mark);
          else byWaba.set(waba, Number(mark));
        }
        return { seq, byWaba, unnamedSeq };
      })(),
    );
  }

  async countUnattributedStatuses(): Promise<number> {
    // The number (an index seek), and whether a stored message joins it (joinedStatusesSql: one pass).
    return Number(
      this.statement(
        `WITH ${joinedStatusesSql((index) => `INDEXED BY ${index}`)}
         SELECT count(*) FROM events s
         WHERE s.waba IS NULL AND s.kind = 'status'
           AND ${numberOwnerSql(STATUS_BUSINESS_SQL)} IS NULL
           AND s.key NOT IN (SELECT key FROM joined_statuses)`,
      )
        .pluck()
        .get(),
    );
  }

  async listWabas(business?: string): Promise<string[]> {
    checkFilterText('business', business);
    // With a number: its WABAs read from events_business_waba_user one at a time (a number has one WABA, or a
    // few), however many events tie it.
    const rows =
      business === undefined
        ? // One index seek a WABA (a skip scan), not a read of every event's: 0.3 ms against 80 ms over 2 million
          // events, in the server's thread (a duplicate holding a status that names no WABA lists them all).
          this.statement(
            `WITH RECURSIVE ${STORED_WABAS_CTE} SELECT waba FROM stored_wabas WHERE waba IS NOT NULL`,
          )
            .pluck()
            .all()
        : this.statement(
            `WITH RECURSIVE number_wabas(waba) AS (
               SELECT min(waba) FROM events WHERE business = @business
               UNION ALL
               SELECT (SELECT min(e.waba) FROM events e WHERE e.business = @business AND e.waba > a.waba)
               FROM number_wabas a WHERE a.waba IS NOT NULL)
             SELECT waba FROM number_wabas WHERE waba IS NOT NULL`,
          )
            .pluck()
            .all({ business });
    return rows.map(String);
  }

  async listUnnamedStatusWabas(messageIds: readonly string[]): Promise<string[]> {
    if (messageIds.length === 0) return [];
    const ids = [...new Set(messageIds)];
    // As listingFacts looks them up, with the same bound on the look-ups.
    const stored = this.storedWabas();
    if (ids.length * stored.length > UNNAMED_LOOKUP_LIMIT) return stored;
    return [...new Set([...this.unnamedStatusWabas(ids).values()].flat())].sort();
  }

  /** Every WABA that has events, sorted (a loose scan of events_waba). */
  private storedWabas(): string[] {
    return this.statement(
      `WITH RECURSIVE ${STORED_WABAS_CTE} SELECT waba FROM stored_wabas WHERE waba IS NOT NULL`,
    )
      .pluck()
      .all()
      .map(String);
  }

  async listPlacingWabas(messageIds: readonly string[]): Promise<string[]> {
    if (messageIds.length === 0) return [];
    // As listingFacts reads them: a seek of events_unnamed_status per id (CROSS JOIN keeps the ids the outer
    // loop), in one statement.
    const rows = this.statement(
      `WITH RECURSIVE ${STORED_WABAS_CTE}
       SELECT ${STATUS_PLACEMENT_SQL} AS owner,
              ${inboundWabasSql('s', (column) => `json_group_array(${column})`)} AS inbound_wabas
       FROM json_each(?) AS ids CROSS JOIN events s
       WHERE s.waba IS NULL AND s.message_id = ids.value AND s.kind = 'status'`,
    ).all(JSON.stringify([...new Set(messageIds)])) as Row[];
    const wabas = new Set<string>();
    for (const row of rows) {
      if (row.owner !== null) wabas.add(String(row.owner));
      if (row.inbound_wabas !== null)
        for (const waba of JSON.parse(String(row.inbound_wabas)) as string[]) wabas.add(waba);
    }
    return [...wabas].sort();
  }

  async replaceRating(
    rating: RatingRecord,
    result: { units: BillableUnit[]; pending: PendingMessage[]; findings: Finding[] },
  ): Promise<void> {
    assertInScope(rating, result);
    await this.chunkedTransaction(async () => {
      await this.insertRating(rating);
      // In chunks, yielding between them, as the rows are written: one statement deleting a portfolio's
      // 600,000 units held the server's thread (and every webhook) for 3.4–4.5 s.
      for (const table of ['units', 'pending_messages'] as const) {
        const deleteChunk = this.statement(
          `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE waba = ? LIMIT ?)`,
        );
        for (const waba of new Set(rating.wabas)) {
          while (deleteChunk.run(waba, CHUNK_ROWS).changes === CHUNK_ROWS) await yieldToEventLoop();
        }
      }
      this.replaceFindings(rating, result.findings);
      await this.upsertUnits(result.units, rating.id, false);
      await this.upsertPending(result.pending, rating.id, false);
    }, durabilityOf(rating));
  }

  async applyRatingDiff(rating: RatingRecord, diff: RatingDiff): Promise<void> {
    assertInScope(rating, {
      units: diff.units.upsert,
      pending: diff.pending.upsert,
      findings: diff.findings ?? [],
    });
    const scope = JSON.stringify(rating.wabas);
    await this.chunkedTransaction(async () => {
      await this.insertRating(rating);
      const deleteUnit = this.statement(
        'DELETE FROM units WHERE waba = ? AND id = ? AND waba IN (SELECT value FROM json_each(?))',
      );
      const deletePending = this.statement(
        'DELETE FROM pending_messages WHERE waba = ? AND id = ? AND waba IN (SELECT value FROM json_each(?))',
      );
      let count = 0;
      for (const [ids, statement] of [
        [diff.units.delete, deleteUnit],
        [diff.pending.delete, deletePending],
      ] as const) {
        for (const { waba, id } of ids) {
          statement.run(waba, id, scope);
          if (++count % CHUNK_ROWS === 0) await yieldToEventLoop();
        }
      }
      if (diff.findings !== undefined) this.replaceFindings(rating, diff.findings);
      await this.upsertUnits(diff.units.upsert, rating.id, true);
      await this.upsertPending(diff.pending.upsert, rating.id, true);
    }, durabilityOf(rating));
  }

  /** Inside a transaction: the rating's row, and a row for each unit it changed (`changedUnits`). */
  private async insertRating(rating: RatingRecord): Promise<void> {
    this.statement(
      `INSERT INTO ratings (id, rated_at_ms, reason, wabas, as_of_rules, rate_cards, totals, changes,
         totals_by_waba, accounts_digest, rate_cards_digest, engine_digest, setup_digest, events_seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      rating.id,
      rating.ratedAtMs,
      rating.reason,
      JSON.stringify(rating.wabas),
      rating.asOfRules,
      JSON.stringify(rating.rateCards),
      storedTotalsJson(rating.totals),
      rating.changes === undefined ? null : JSON.stringify(rating.changes),
      rating.totalsByWaba === undefined ? null : storedTotalsJson(rating.totalsByWaba),
      rating.accountsDigest ?? null,
      rating.rateCardsDigest ?? null,
      rating.engineDigest ?? null,
      rating.setupDigest ?? null,
      rating.eventsSeq ?? null,
    );
    const insertChange = this.statement(
      'INSERT INTO rating_changes (rating_id, seq, change) VALUES (?, ?, ?)',
    );
    for (const [seq, change] of (rating.changedUnits ?? []).entries()) {
      insertChange.run(rating.id, seq, JSON.stringify(change));
      if ((seq + 1) % CHUNK_ROWS === 0) await yieldToEventLoop();
    }
  }

  /** Inside a transaction: the scope's findings become `findings` (of the rating `rating.id`). */
  private replaceFindings(rating: RatingRecord, findings: readonly Finding[]): void {
    const scope = JSON.stringify(rating.wabas);
    this.statement('DELETE FROM findings WHERE waba IN (SELECT value FROM json_each(?))').run(scope);
    // Findings that name no WABA belong to the rating that produced them: a later rating whose scope
    // covers that whole earlier scope replaces them.
    this.statement(
      `DELETE FROM findings
       WHERE waba IS NULL AND rating_id IN (
         SELECT r.id FROM ratings r
         WHERE r.id <> ? AND NOT EXISTS (
           SELECT 1 FROM json_each(r.wabas) w WHERE w.value NOT IN (SELECT value FROM json_each(?))))`,
    ).run(rating.id, scope);
    const insertFinding = this.statement(
      'INSERT INTO findings (rating_id, waba, code, payload) VALUES (?, ?, ?, ?)',
    );
    for (const f of findings) insertFinding.run(rating.id, findingWaba(f), f.code, JSON.stringify(f));
  }

  /** Inside a transaction, yielding every CHUNK_ROWS rows; `isUpsert`: an existing id is overwritten. */
  private async upsertUnits(units: readonly BillableUnit[], ratingId: string, isUpsert: boolean) {
    const insertUnit = this.statement(
      `INSERT ${isUpsert ? 'OR REPLACE ' : ''}INTO units (id, waba, business, user_id, unit, pricing_model, era,
         country, market, category, type, opened_at_ms, expires_at_ms, closed_at_ms, messages, rate_micros,
         amount_micros, currency, rate_card, tier, is_market_inferred, is_category_from_webhook, rule, rating_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    let count = 0;
    for (const u of units) {
      insertUnit.run(
        u.id,
        u.waba,
        u.business,
        u.user,
        u.unit,
        u.pricingModel,
        u.era,
        u.country,
        u.market,
        u.category,
        u.type,
        u.openedAtMs,
        u.expiresAtMs,
        u.closedAtMs ?? null,
        JSON.stringify(u.messages),
        u.rateMicros,
        u.amountMicros,
        u.currency,
        u.rateCard,
        u.tier === undefined ? null : JSON.stringify(u.tier),
        u.isMarketInferred === undefined ? null : Number(u.isMarketInferred),
        u.isCategoryFromWebhook ? 1 : null,
        u.rule,
        ratingId,
      );
      if (++count % CHUNK_ROWS === 0) await yieldToEventLoop();
    }
  }

  private async upsertPending(pending: readonly PendingMessage[], ratingId: string, isUpsert: boolean) {
    const insertPending = this.statement(
      `INSERT ${isUpsert ? 'OR REPLACE ' : ''}INTO pending_messages (id, waba, business, user_id, sent_at_ms,
         rating_id) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    let count = 0;
    for (const p of pending) {
      insertPending.run(p.id, p.waba, p.business, p.user, p.sentAtMs, ratingId);
      if (++count % CHUNK_ROWS === 0) await yieldToEventLoop();
    }
  }

  async listRatings(
    limit: number,
    wabas?: readonly string[],
    options: { isWithoutChanges?: boolean; reasons?: readonly string[]; cursor?: string } = {},
  ): Promise<RatingRecord[]> {
    checkFilterText('wabas', wabas);
    checkFilterText('reasons', options.reasons);
    checkLimit(limit);
    const columns = options.isWithoutChanges === true ? RATING_COLUMNS_WITHOUT_CHANGES : '*';
    const conditions: string[] = [];
    const parameters: unknown[] = [];
    if (wabas !== undefined) {
      conditions.push(
        'EXISTS (SELECT 1 FROM json_each(r.wabas) w WHERE w.value IN (SELECT value FROM json_each(?)))',
      );
      parameters.push(JSON.stringify(wabas));
    }
    if (options.reasons !== undefined) {
      // One placeholder a reason (three at most), so that ratings_newest_by_reason is searched for each.
      conditions.push(`r.reason IN (${options.reasons.map(() => '?').join(', ')})`);
      parameters.push(...options.reasons);
    }
    if (options.cursor !== undefined) {
      // The rating the cursor names, if this listing holds it; the page goes on after it in the listing's order.
      const after = this.statement(
        `SELECT rated_at_ms, seq FROM ratings r WHERE ${['r.id = ?', ...conditions].join(' AND ')}`,
      ).get(ratingOfCursor(options.cursor), ...parameters) as
        { rated_at_ms: number; seq: number } | undefined;
      if (after === undefined) throw badRatingsCursor();
      conditions.push('(r.rated_at_ms, r.seq) < (?, ?)');
      parameters.push(after.rated_at_ms, after.seq);
    }
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const rows = this.statement(
      `SELECT ${columns} FROM ratings r ${where} ORDER BY rated_at_ms DESC, seq DESC LIMIT ?`,
    ).all(...parameters, limit) as Row[];
    return rows.map(ratingFromRow);
  }

  async getRating(id: string): Promise<RatingRecord | undefined> {
    checkFilterText('id', id);
    const row = this.statement('SELECT * FROM ratings WHERE id = ?').get(id) as Row | undefined;
    return row === undefined ? undefined : ratingFromRow(row);
  }

  async listRatingChanges(
    ratingId: string,
    page: { limit: number; cursor?: string },
  ): Promise<RatingChangesPage> {
    const { limit, from } = changesPageRequest(ratingId, page);
    const rows = this.statement(
      'SELECT change FROM rating_changes WHERE rating_id = ? AND seq >= ? ORDER BY seq LIMIT ?',
    )
      .pluck()
      .all(ratingId, from, limit + 1) as string[];
    return changesPage(
      rows.map((text) => JSON.parse(text) as unknown),
      limit,
      from,
      ratingId,
    );
  }

  async queryUnits(
    filter: UnitFilter,
    page: { limit: number; cursor?: string; order?: UnitOrder },
  ): Promise<UnitPage> {
    return this.unitPage(filter, checkLimit(page.limit), page.cursor, page.order ?? 'opened_at');
  }

  /**
   * One page of units in `order` (UNIT_ORDERS), after `cursor`: `queryUnits` and `exportUnits` (which passes
   * `prepare` of its own reading connection). Each order is read through an index of its key (units_opened,
   * units_amount, or units_waba_amount within a WABA), so a page is a seek and a short scan, however many units
   * the store holds.
   */
  private unitPage(
    filter: UnitFilter,
    limit: number,
    cursor: string | undefined,
    order: UnitOrder,
    prepare: (sql: string) => Database.Statement = (sql) => this.statement(sql),
  ): UnitPage {
    const read = (extra: string[], params: unknown[], orderBy: string, rows: number) => {
      const where = unitWhere(filter);
      where.clauses.push(...extra);
      return prepare(`SELECT * FROM units ${whereSql(where)} ORDER BY ${orderBy} LIMIT ?`).all(
        ...where.params,
        ...params,
        rows,
      ) as Row[];
    };
    const byTime = 'opened_at_ms, id, waba';
    const byAmount = `currency, ${AMOUNT_DESC_KEY_SQL}, ${byTime}`;
    let rows: Row[];
    if (cursor === undefined) {
      rows = read([], [], order === 'opened_at' ? byTime : byAmount, limit + 1);
    } else {
      const after = decodeUnitCursor(cursor, order);
      const timeKey = [after.openedAtMs, after.id, after.waba];
      if (after.order === 'opened_at') {
        rows = read(['(opened_at_ms, id, waba) > (?, ?, ?)'], timeKey, byTime, limit + 1);
      } else {
        // After the cursor's unit in (currency, amount key, time): its amount's later units, then its currency's
        // cheaper ones, then the later currencies — each a seek of the index, read in turn until the page is
        // full. As one row comparison SQLite seeks the currency only (it compares no expression of an index
        // inside a row value), and scans from there: a page deep in a currency of 100,000 units took 8–37 ms.
        const amount = AMOUNT_DESC_KEY_SQL.replace('amount_micros', '?');
        const arms: [string[], unknown[], string][] = [
          [
            ['currency = ?', `${AMOUNT_DESC_KEY_SQL} = ${amount}`, '(opened_at_ms, id, waba) > (?, ?, ?)'],
            [after.currency, after.amountMicros, ...timeKey],
            byTime,
          ],
          [
            ['currency = ?', `${AMOUNT_DESC_KEY_SQL} > ${amount}`],
            [after.currency, after.amountMicros],
            `${AMOUNT_DESC_KEY_SQL}, ${byTime}`,
          ],
          [['currency > ?'], [after.currency], byAmount],
        ];
        rows = [];
        for (const [extra, params, orderBy] of arms) {
          if (rows.length > limit) break;
          rows.push(...read(extra, params, orderBy, limit + 1 - rows.length));
        }
      }
    }
    const units = rows.slice(0, limit).map(unitFromRow);
    const last = units.at(-1);
    return { units, nextCursor: rows.length > limit && last ? encodeUnitCursor(order, last) : null };
  }

  async exportUnits(
    filter: UnitFilter,
    onPage: (units: BillableUnit[]) => void | Promise<void>,
    pageSize = EXPORT_PAGE_SIZE,
    order: UnitOrder = 'opened_at',
  ): Promise<number> {
    const limit = checkLimit(pageSize);
    // A file's export reads through a connection of its own, in one read transaction: WAL keeps the snapshot
    // it began with while this connection writes on (ratings, ingests), so the pages are one bill, and the
    // event loop gets a turn between pages (300,000 units read in one go stopped it for 3.5 s: webhooks and
    // health checks waited). It sees what was committed when it began: a rating written in chunks and not
    // yet committed is not half in it.
    const reader = this.exportConnection();
    if (reader === undefined) return this.exportUnitsLocked(filter, onPage, limit, order);
    const statements = new Map<string, Database.Statement>();
    const prepare = (sql: string) => {
      let statement = statements.get(sql);
      if (!statement) statements.set(sql, (statement = reader.prepare(sql)));
      return statement;
    };
    let count = 0;
    try {
      reader.prepare('BEGIN').run();
      let cursor: string | undefined;
      do {
        const page = this.unitPage(filter, limit, cursor, order, prepare);
        count += page.units.length;
        if (page.units.length > 0) await onPage(page.units);
        cursor = page.nextCursor ?? undefined;
        if (cursor !== undefined) await yieldToEventLoop();
      } while (cursor !== undefined);
      reader.prepare('COMMIT').run();
    } finally {
      reader.close();
    }
    return count;
  }

  /** A read-only connection to this store's file, or undefined for a store with no file of its own. */
  private exportConnection(): Db | undefined {
    if (this.db.memory || this.db.name === '') return undefined;
    const reader = new Database(this.db.name, { readonly: true, fileMustExist: true });
    reader.pragma('busy_timeout = 5000');
    return reader;
  }

  /**
   * The export of a store without a file (in memory): under the write lock, every page read synchronously in
   * one read transaction of this connection. The pages are handed to `onPage` as read; once it returns a
   * promise the rest wait in memory, handed over after the lock is released, so `onPage` may await a write.
   */
  private async exportUnitsLocked(
    filter: UnitFilter,
    onPage: (units: BillableUnit[]) => void | Promise<void>,
    limit: number,
    order: UnitOrder,
  ): Promise<number> {
    let count = 0;
    let handing: Promise<void> | undefined;
    const left: BillableUnit[][] = [];
    await this.writes.run(() =>
      this.db.transaction(() => {
        let cursor: string | undefined;
        do {
          const page = this.unitPage(filter, limit, cursor, order);
          count += page.units.length;
          if (page.units.length > 0) {
            if (handing !== undefined) left.push(page.units);
            else handing = handedOver(onPage(page.units));
          }
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
      })(),
    );
    if (handing !== undefined) await handing;
    for (const units of left) await onPage(units);
    return count;
  }

  async totals(filter: UnitFilter): Promise<Record<string, CurrencyTotals>> {
    const where = unitWhere(filter);
    const rows = this.statement(
      `SELECT currency, category, count(*) AS units, count(*) - count(amount_micros) AS unpriced,
              coalesce(sum(amount_micros), 0) AS amount_micros
         FROM units ${whereSql(where)}
         GROUP BY currency, category
         ORDER BY currency, category`,
    )
      // Integers as bigints: a sum past 2^53 micros is read exactly (foldTotals keeps it a bigint).
      .safeIntegers(true)
      .all(...where.params) as Row[];
    return foldTotals(rows);
  }

  async analytics(query: AnalyticsQuery): Promise<AnalyticsPoint[]> {
    const timeZone = checkTimeZone(query.timeZone ?? 'UTC');
    const dimensions = query.dimensions.map((d) => [d, dimensionSql(d, sqliteJsonText)] as const);
    const select = dimensions.map(([d, sql]) => `${sql} AS d_${d}`).join(', ');
    const group = dimensions.map(([, sql]) => `, ${sql}`).join('');
    const where = unitWhere(query, 'u.');
    for (const list of analyticsListFilters(query, sqliteJsonText)) {
      where.clauses.push(`${list.sql} IN (SELECT value FROM json_each(?))`);
      where.params.push(JSON.stringify(list.values));
    }
    let rows: Row[];
    if (query.granularity === 'HALF_HOUR') {
      // Half hours are cut in UTC: every offset in use is a multiple of 15 minutes, and Meta's half-hour
      // buckets are UTC-aligned.
      rows = this.statement(
        `SELECT u.opened_at_ms - u.opened_at_ms % ${HALF_HOUR_MS} AS start_ms,
                  u.opened_at_ms - u.opened_at_ms % ${HALF_HOUR_MS} + ${HALF_HOUR_MS} AS end_ms,
                  count(*) AS units, ${UNPRICED_UNITS_SQL} AS unpriced,
                  coalesce(sum(u.amount_micros), 0) AS amount_micros
                  ${select ? `, ${select}` : ''}
           FROM units u ${whereSql(where)}
           GROUP BY 1${group}`,
      )
        .safeIntegers(true)
        .all(...where.params) as Row[];
    } else {
      // SQLite knows no time zones: the local day (or month) boundaries of the queried span are computed
      // here, in UTC instants, and SQL groups each unit into the bucket that contains it.
      const span = this.statement(
        `SELECT min(u.opened_at_ms) AS first, max(u.opened_at_ms) AS last FROM units u ${whereSql(where)}`,
      ).get(...where.params) as Row;
      if (span.first === null) return [];
      const buckets = localBuckets(Number(span.first), Number(span.last), query.granularity, timeZone);
      where.clauses.unshift('u.opened_at_ms >= b.start_ms AND u.opened_at_ms < b.end_ms');
      // CROSS JOIN keeps the bucket list as the outer loop: one index range scan of units per bucket.
      rows = this.statement(
        `WITH b AS (
             SELECT json_extract(value, '$[0]') AS start_ms, json_extract(value, '$[1]') AS end_ms
             FROM json_each(?))
           SELECT b.start_ms AS start_ms, b.end_ms AS end_ms,
                  count(*) AS units, ${UNPRICED_UNITS_SQL} AS unpriced,
                  coalesce(sum(u.amount_micros), 0) AS amount_micros
                  ${select ? `, ${select}` : ''}
           FROM b CROSS JOIN units u ${whereSql(where)}
           GROUP BY b.start_ms, b.end_ms${group}`,
      )
        .safeIntegers(true)
        .all(JSON.stringify(buckets), ...where.params) as Row[];
    }
    return sortPoints(
      rows.map((row) => ({
        startMs: Number(row.start_ms),
        endMs: Number(row.end_ms),
        units: Number(row.units),
        unpriced: Number(row.unpriced),
        amountMicros: microsOf(row.amount_micros),
        dimensions: Object.fromEntries(
          query.dimensions.map((d) => [d, row[`d_${d}`] === null ? null : String(row[`d_${d}`])]),
        ),
      })),
      query.dimensions,
    );
  }

  async businessNumbers(filter: { wabas?: readonly string[] }): Promise<BusinessNumber[]> {
    checkFilterText('wabas', filter.wabas);
    const rows = (
      filter.wabas === undefined
        ? this.statement(
            'SELECT waba, business, display_number FROM business_numbers ORDER BY waba, business',
          ).all()
        : this.statement(
            `SELECT waba, business, display_number FROM business_numbers
             WHERE waba IN (SELECT value FROM json_each(?)) ORDER BY waba, business`,
          ).all(JSON.stringify(filter.wabas))
    ) as Row[];
    return sortedBusinessNumbers(
      rows.map((row) => ({
        waba: String(row.waba),
        business: String(row.business),
        displayNumber: String(row.display_number),
      })),
    );
  }

  async listPending(filter: UnitFilter): Promise<PendingMessage[]> {
    // Pending messages have no category, type or market yet: those filters do not apply to them.
    const where = commonWhere(filter, '', 'sent_at_ms');
    const rows = this.statement(
      `SELECT * FROM pending_messages ${whereSql(where)} ORDER BY sent_at_ms, id`,
    ).all(...where.params) as Row[];
    return rows.map((row) => ({
      id: String(row.id),
      waba: String(row.waba),
      business: String(row.business),
      user: String(row.user_id),
      sentAtMs: Number(row.sent_at_ms),
    }));
  }

  async listFindings(filter: { wabas?: readonly string[] }): Promise<Finding[]> {
    checkFilterText('wabas', filter.wabas);
    // A caller limited to some WABAs sees only findings that name one of them.
    const rows =
      filter.wabas === undefined
        ? this.statement('SELECT payload FROM findings ORDER BY seq').pluck().all()
        : this.statement(
            'SELECT payload FROM findings WHERE waba IN (SELECT value FROM json_each(?)) ORDER BY seq',
          )
            .pluck()
            .all(JSON.stringify(filter.wabas));
    return rows.map((payload) => JSON.parse(String(payload)) as Finding);
  }
}

// ---- filters ---------------------------------------------------------------------------------------------

interface Where {
  clauses: string[];
  params: unknown[];
}

function whereSql(where: Where): string {
  return where.clauses.length === 0 ? '' : `WHERE ${where.clauses.join(' AND ')}`;
}

/** The filters units and pending messages share: scope, WABA, business, user and a time range. */
function commonWhere(filter: UnitFilter, prefix: string, timeColumn: string): Where {
  checkFilter(filter);
  const where: Where = { clauses: [], params: [] };
  const add = (clause: string, param: unknown) => {
    where.clauses.push(clause);
    where.params.push(param);
  };
  if (filter.wabas !== undefined)
    add(`${prefix}waba IN (SELECT value FROM json_each(?))`, JSON.stringify(filter.wabas));
  if (filter.waba !== undefined) add(`${prefix}waba = ?`, filter.waba);
  if (filter.business !== undefined) add(`${prefix}business = ?`, filter.business);
  if (filter.user !== undefined) {
    if (filter.joinedNumber === undefined) add(`${prefix}user_id = ?`, filter.user);
    else {
      where.clauses.push(`${prefix}user_id IN (?, ?)`);
      where.params.push(filter.user, filter.joinedNumber);
    }
  }
  if (filter.fromMs !== undefined) add(`${prefix}${timeColumn} >= ?`, filter.fromMs);
  if (filter.toMs !== undefined) add(`${prefix}${timeColumn} < ?`, filter.toMs);
  const period = filter.localPeriod;
  if (period !== undefined) {
    // The whole period's bounds, read through the time index; then each row against its own zone's, chosen by
    // its WABA (`+`: not an index term). An OR of one range per zone made SQLite union index searches per zone
    // instead: 135–370 ms against 82–112 ms for a month's totals of 26,000 units in a store of 300,000.
    const ranges = [...period.zones, period.others];
    add(`${prefix}${timeColumn} >= ?`, Math.min(...ranges.map((range) => range.fromMs)));
    add(`${prefix}${timeColumn} < ?`, Math.max(...ranges.map((range) => range.toMs)));
    const edgeOf = (edge: 'fromMs' | 'toMs') => {
      const cases = period.zones.map((zone) => {
        where.params.push(JSON.stringify(zone.wabas), zone[edge]);
        return `WHEN ${prefix}waba IN (SELECT value FROM json_each(?)) THEN ?`;
      });
      where.params.push(period.others[edge]);
      return cases.length === 0 ? '?' : `CASE ${cases.join(' ')} ELSE ? END`;
    };
    const from = edgeOf('fromMs');
    const to = edgeOf('toMs');
    where.clauses.push(`+${prefix}${timeColumn} >= ${from} AND +${prefix}${timeColumn} < ${to}`);
  }
  return where;
}

function unitWhere(filter: UnitFilter, prefix = ''): Where {
  const where = commonWhere(filter, prefix, 'opened_at_ms');
  const add = (clause: string, param: unknown) => {
    where.clauses.push(clause);
    where.params.push(param);
  };
  if (filter.category !== undefined) add(`${prefix}category = ?`, filter.category);
  if (filter.type !== undefined) add(`${prefix}type = ?`, filter.type);
  if (filter.market !== undefined) add(`${prefix}market = ?`, filter.market);
  return where;
}

// ---- rows ------------------------------------------------------------------------------------------------

function unitFromRow(row: Row): BillableUnit {
  const unit: BillableUnit = {
    id: String(row.id),
    unit: row.unit as BillableUnit['unit'],
    pricingModel: row.pricing_model as BillableUnit['pricingModel'],
    era: row.era as BillableUnit['era'],
    waba: String(row.waba),
    business: String(row.business),
    user: String(row.user_id),
    country: nullableString(row.country),
    market: nullableString(row.market),
    category: row.category as BillableUnit['category'],
    type: row.type as BillableUnit['type'],
    openedAtMs: Number(row.opened_at_ms),
    expiresAtMs: nullableNumber(row.expires_at_ms),
    messages: JSON.parse(String(row.messages)) as string[],
    rateMicros: nullableNumber(row.rate_micros),
    amountMicros: nullableNumber(row.amount_micros),
    currency: String(row.currency),
    rateCard: nullableString(row.rate_card),
    rule: String(row.rule),
  };
  if (row.closed_at_ms !== null) unit.closedAtMs = Number(row.closed_at_ms);
  if (row.tier !== null) unit.tier = tierFromStored(JSON.parse(String(row.tier)));
  if (row.is_market_inferred !== null) unit.isMarketInferred = row.is_market_inferred === 1;
  if (row.is_category_from_webhook === 1) unit.isCategoryFromWebhook = true;
  return unit;
}

function rawFromRow(row: Row): StoredRawWebhook {
  const body = row.body as Buffer;
  return {
    id: Number(row.id),
    receivedAtMs: Number(row.received_at_ms),
    body: new Uint8Array(body),
    sha256: String(row.sha256),
    parseError: nullableString(row.parse_error),
  };
}

function nullableString(value: unknown): string | null {
  return value === null ? null : String(value);
}

function nullableNumber(value: unknown): number | null {
  return value === null ? null : Number(value);
}

// ---- checks shared by the methods ------------------------------------------------------------------------

/** A `ratings` row as a record. */
function ratingFromRow(row: Row): RatingRecord {
  const rating: RatingRecord = {
    id: String(row.id),
    ratedAtMs: Number(row.rated_at_ms),
    reason: String(row.reason),
    wabas: JSON.parse(String(row.wabas)) as string[],
    asOfRules: row.as_of_rules === null ? null : String(row.as_of_rules),
    rateCards: JSON.parse(String(row.rate_cards)) as string[],
    totals: totalsFromStored(JSON.parse(String(row.totals))),
  };
  if (row.changes !== null) rating.changes = JSON.parse(String(row.changes));
  if (row.totals_by_waba !== null) {
    rating.totalsByWaba = totalsByWabaFromStored(JSON.parse(String(row.totals_by_waba)));
  }
  if (row.accounts_digest !== null) rating.accountsDigest = String(row.accounts_digest);
  if (row.rate_cards_digest !== null) rating.rateCardsDigest = String(row.rate_cards_digest);
  if (row.engine_digest !== null) rating.engineDigest = String(row.engine_digest);
  if (row.setup_digest !== null) rating.setupDigest = String(row.setup_digest);
  if (row.events_seq !== null) rating.eventsSeq = Number(row.events_seq);
  return rating;
}

// ---- cursor ----------------------------------------------------------------------------------------------

// ---- analytics buckets -----------------------------------------------------------------------------------

/** [start, end) of every local day or month from the one holding `firstMs` to the one holding `lastMs`. */
function localBuckets(
  firstMs: number,
  lastMs: number,
  granularity: 'DAILY' | 'MONTHLY',
  timeZone: string,
): Array<[number, number]> {
  const step = granularity === 'DAILY' ? 'day' : 'month';
  let date = localDate(firstMs, timeZone);
  if (step === 'month') date = `${date.slice(0, 7)}-01`;
  let startMs = startOfLocalDate(date, timeZone);
  const buckets: Array<[number, number]> = [];
  while (startMs <= lastMs) {
    date = nextDate(date, step);
    const endMs = startOfLocalDate(date, timeZone);
    buckets.push([startMs, endMs]);
    startMs = endMs;
  }
  return buckets;
}

/** The next calendar date: "2024-03-31" + day → "2024-04-01"; "2024-03-01" + month → "2024-04-01". */
function nextDate(date: string, step: 'day' | 'month'): string {
  const [year, month, day] = date.split('-').map(Number) as [number, number, number];
  const next = step === 'day' ? Date.UTC(year, month - 1, day + 1) : Date.UTC(year, month, 1);
  return new Date(next).toISOString().slice(0, 10);
}

/**
 * The first instant whose local date is `date` (local midnight, or the first instant after a DST gap that
 * skips midnight). Offsets lie within ±15 h of UTC, so the answer lies in that window around UTC midnight;
 * local dates only move forward with time, so a binary search over milliseconds finds it exactly.
 */
function startOfLocalDate(date: string, timeZone: string): number {
  const utcMidnight = Date.parse(`${date}T00:00:00Z`);
  let low = utcMidnight - 15 * 3_600_000; // local date still before `date`
  let high = utcMidnight + 15 * 3_600_000; // local date already `date` or later
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (localDate(middle, timeZone) >= date) high = middle;
    else low = middle;
  }
  return high;
}
