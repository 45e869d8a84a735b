// The Store on PostgreSQL (pg Pool): the same tables as SQLite in PostgreSQL's dialect (bytea bodies,
// bigint instants, jsonb where SQL reads inside a document, json for documents given back as written). It must
// never answer for a webhook before its transaction committed, and never aggregate units in JavaScript that
// SQL can aggregate.

import { createHash } from 'node:crypto';
import pg from 'pg';
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
  analyticsListFilters,
  sortedBusinessNumbers,
} from '../engine-checks.js';
import { GroupCommitQueue } from '../group-commit.js';
import {
  type ListingFacts,
  type RowChange,
  type UnnamedStatus,
  unnamedStatusIds,
  unnamedStatusWabasOf,
  numbersOf,
  UNNAMED_LOOKUP_LIMIT,
  isPlacingChange,
  isPlacingRow,
  joiningMessageIds,
  keysLosingTies,
  ownWabasOf,
  relistedWabas,
  isRelistingNeededBy,
  rewrittenTieKeys,
  splitTieKey,
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
  type RawWebhookInput,
  type WebhookBodyInput,
  ForeignStoreError,
  ReadOnlyOpenError,
  type EventChanges,
  type Store,
  StoreTimeoutError,
  type StoredRawWebhook,
  type UnitFilter,
  type UnitOrder,
  type UnitPage,
  type WriterFence,
  EXPORT_PAGE_SIZE,
  EVENT_KEYS_PER_WABA_SQL,
  EVENT_TRUST_BACKFILL_SQL,
  STORED_WABAS_CTE,
  joinedStatusesSql,
  inboundWabasSql,
  messageInScopeJoinsStatusSql,
  messageJoinsStatusSql,
  messageKeysSql,
  messageStoredSql,
  numberOwnerSql,
  pairOwnerSql,
  recordKeysSql,
  statusPlacementSql,
  canonicalUserSql,
  badRatingsCursor,
  ratingOfCursor,
  type StatisticsOf,
} from '../store.js';

type Row = Record<string, unknown>;

/** Every column of `ratings` but `changes` (NULL in its place), for `listRatings(…, {isWithoutChanges})`. */
const RATING_COLUMNS_WITHOUT_CHANGES =
  'id, rated_at_ms, reason, wabas, as_of_rules, rate_cards, totals, NULL AS changes, totals_by_waba, ' +
  'accounts_digest, rate_cards_digest, engine_digest, setup_digest, events_seq';
/** What the SQL helpers below need of a pool, a pooled client, or a client bound to a deadline. */
interface Queryable {
  query(text: string | Prepared, values?: unknown[]): Promise<pg.QueryResult>;
}

/** A statement each connection parses and plans once (a named prepared statement): `prepared`. */
interface Prepared {
  name: string;
  text: string;
}

const preparedByText = new Map<string, Prepared>();

/**
 * `text` as a named prepared statement, for the statements every ingest sends (webhooks stored in groups):
 * PostgreSQL parses and plans an unnamed statement each time it is sent — for the listing facts' look-up,
 * three times as long as running it — and a named one once per connection (measured: docs/decisions.md,
 * "An ingest's statements are prepared"). The name is the text's digest, so two texts never share one (pg
 * refuses a name given to another text). A prepared statement outlives a rolled-back transaction; a
 * migration that alters its tables makes PostgreSQL analyse and plan it again, under the session's
 * search_path (the store's schema, fixed per connection): no plan made before a migration is used after
 * it. Only for a fixed set of texts (each is kept per connection for its life), never for text built from
 * values.
 */
function prepared(text: string): Prepared {
  let statement = preparedByText.get(text);
  if (statement === undefined) {
    statement = { name: `wameter_${createHash('sha256').update(text).digest('hex').slice(0, 40)}`, text };
    preparedByText.set(text, statement);
  }
  return statement;
}

interface TransactionOptions {
  /** The rating the transaction writes (a live one commits without waiting for the WAL flush). */
  rating?: RatingRecord;
  /** The statement that opens it (default `BEGIN`). */
  begin?: string;
  bound?: Bound;
  /** A write the writer fence guards (ingests, ratings): refused unless the fence is at this process's epoch. */
  isFenced?: boolean;
}

export interface PostgresStoreOptions {
  /** Schema holding wameter's tables (created by migrate); default: the connection's search_path. */
  schema?: string;
  /**
   * For commands that only read: the schema must hold a store this version migrated, and nothing is created,
   * migrated or written (every session is `default_transaction_read_only`). Refused with a
   * `ReadOnlyOpenError` otherwise.
   */
  isReadOnly?: boolean;
  /** How long `ping` waits for the server's answer (default PING_TIMEOUT_MS). */
  pingTimeoutMs?: number;
  /** How long an ingest's transaction may take, the wait for a connection included (default WRITE_TIMEOUT_MS). */
  writeTimeoutMs?: number;
  /** How long a read of the API (units, totals, analytics…) may wait for each answer (default READ_TIMEOUT_MS). */
  readTimeoutMs?: number;
  /**
   * How long each statement of a rating may wait (listing a portfolio's events, writing its units; default
   * RATING_TIMEOUT_MS).
   */
  ratingTimeoutMs?: number;
  /**
   * The writer fence every ingest and rating checks first (`WriterFence`): given by the holder of the writer
   * lock (`openWriterStore`); none, nothing is checked.
   */
  writerFence?: WriterFence;
}

/**
 * `ping` (readiness, /healthz) gives up after this: a server cut off without a reset (a network partition
 * drops packets) would otherwise hold the probe for minutes, until TCP itself gives up.
 */
export const PING_TIMEOUT_MS = 5_000;

/**
 * An ingest (webhooks, event batches) gives up after this, from BEGIN to COMMIT: the service answers 503 and
 * Meta delivers the webhook again. Without it a partition held every webhook until the database came back or
 * TCP gave up (87 s in a 90 s partition, fifteenth session's failure review). A healthy group commit takes
 * milliseconds.
 */
export const WRITE_TIMEOUT_MS = 10_000;

/**
 * A read of the API (a page of units, totals, analytics, findings, the rating history, a page of an export)
 * gives up after this, each statement, the wait for a connection included: the service answers 503
 * `STORE_UNAVAILABLE`. Without it a read sent just before a partition waited for an answer for ever (the
 * connection idle, nothing for TCP to retransmit), and so did its client. The reads take milliseconds to
 * seconds: the bound is for a server that stopped answering, not for a slow one.
 */
export const READ_TIMEOUT_MS = 60_000;

/**
 * Each statement of a rating (listing a portfolio's events, writing its units and pending messages in chunks)
 * gives up after this: a live rating stuck on a silent server fails and is retried, instead of holding that
 * portfolio's bill behind (`RATING_BEHIND`) for ever. Listing a million events takes seconds: the bound is
 * long so that a large portfolio's rating is never cut, only a silent server's.
 */
export const RATING_TIMEOUT_MS = 600_000;

/**
 * How long a transaction's statements may wait on the server: `whole`, from the wait for a connection to
 * COMMIT (ingests: a webhook waits for it); `each`, every statement and the wait for a connection on its own
 * (reads and ratings, which may run long over a large portfolio, but never wait for ever).
 */
export interface Bound {
  scope: 'whole' | 'each';
  ms: number;
  operation: 'write' | 'read' | 'ping';
  /**
   * The server ends the session when the client is silent this long inside the transaction, so that a
   * session a partition cut off holds no rows locked (default `ms`). Off for an export, whose client reads at
   * its own pace between pages.
   */
  idleMs?: number | null;
}

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Migration 20's trigger functions. At its commit, each event row a transaction inserted or rewrote takes the
 * transaction's mark (the clock advanced once, by its first row), as does its WABA (its old one too, for a
 * rewrite) — and '' when the row may move a status naming no WABA between listings (store.ts, `EventChanges`):
 * it is one, or it is a message of a message id such a status reports on (which may join it:
 * `messageJoinsStatusSql`), or it ties a business number such a status names (its placement:
 * `statusPlacementSql`). A status stored after its message marks '' itself. A mark already given is not
 * written again (no new row version for each of a transaction's thousands of rows).
 */
const EVENT_CHANGE_FUNCTIONS_SQL = `
  CREATE OR REPLACE FUNCTION wameter_mark_event_change(row_waba text, row_message_id text, row_business text, mark bigint)
    RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $f$
  BEGIN
    INSERT INTO event_changes AS c (waba, seq) VALUES (coalesce(row_waba, ''), mark)
      ON CONFLICT (waba) DO UPDATE SET seq = excluded.seq WHERE c.seq <> excluded.seq;
    IF row_waba IS NOT NULL AND (
         (row_message_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM events u WHERE u.message_id = row_message_id
                                              AND u.waba IS NULL))
         OR (row_business IS NOT NULL
             AND EXISTS (SELECT 1 FROM events u WHERE (u.payload->>'business') = row_business
                                                 AND u.waba IS NULL AND u.kind = 'status'))) THEN
      INSERT INTO event_changes AS c (waba, seq) VALUES ('', mark)
        ON CONFLICT (waba) DO UPDATE SET seq = excluded.seq WHERE c.seq <> excluded.seq;
    END IF;
  END $f$;
  CREATE OR REPLACE FUNCTION wameter_event_changed() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $f$
  DECLARE
    mark bigint;
    taken_by bigint;
  BEGIN
    SELECT seq, tx INTO mark, taken_by FROM event_clock WHERE id FOR UPDATE;
    IF taken_by IS DISTINCT FROM txid_current() THEN
      mark := mark + 1;
      UPDATE event_clock SET seq = mark, tx = txid_current() WHERE id;
    END IF;
    PERFORM wameter_mark_event_change(NEW.waba, NEW.message_id, NEW.business, mark);
    IF TG_OP = 'UPDATE' THEN
      PERFORM wameter_mark_event_change(OLD.waba, OLD.message_id, OLD.business, mark);
    END IF;
    RETURN NULL;
  END $f$;`;

/** Numbered, append-only: a released migration is never edited, a change is a new number. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      -- Webhook bodies exactly as Meta signed them: the only evidence of what was billed.
      CREATE TABLE raw_webhooks (
        id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- events name it in their source
        received_at_ms bigint NOT NULL,
        body           bytea  NOT NULL,
        sha256         text   NOT NULL UNIQUE,                          -- finds an identical redelivery
        parse_error    text
      );
      CREATE INDEX raw_webhooks_unreadable ON raw_webhooks (id) WHERE parse_error IS NOT NULL;

      -- Core events, one per idempotency key; payload is the CoreEvent.
      CREATE TABLE events (
        key            text   PRIMARY KEY,
        kind           text   NOT NULL,
        waba           text,             -- NULL only for a status event that did not name its WABA
        message_id     text,             -- inbound/outbound/status: links a status to its message
        at_ms          bigint NOT NULL,
        payload        jsonb  NOT NULL,
        received_at_ms bigint NOT NULL,
        source         text   NOT NULL
      );
      CREATE INDEX events_waba ON events (waba);
      CREATE INDEX events_message ON events (message_id);

      -- History of ratings: what was rated, when, under which rules and cards.
      CREATE TABLE ratings (
        seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id          text   NOT NULL UNIQUE,
        rated_at_ms bigint NOT NULL,
        reason      text   NOT NULL,
        wabas       jsonb  NOT NULL,
        as_of_rules text,
        rate_cards  jsonb  NOT NULL,
        totals      jsonb  NOT NULL,
        changes     jsonb             -- NULL when the rating recorded none
      );

      -- The current units of every WABA (replaced per WABA by each rating). Ids compare byte-wise
      -- (COLLATE "C"), as in SQLite, so both engines page in the same order.
      CREATE TABLE units (
        id                 text COLLATE "C" PRIMARY KEY,
        waba               text    NOT NULL,
        business           text    NOT NULL,
        user_id            text    NOT NULL,
        unit               text    NOT NULL,
        pricing_model      text    NOT NULL,
        era                text    NOT NULL,
        country            text,
        market             text,
        category           text    NOT NULL,
        type               text    NOT NULL,
        opened_at_ms       bigint  NOT NULL,
        expires_at_ms      bigint,
        closed_at_ms       bigint,
        messages           jsonb   NOT NULL, -- array of message ids
        rate_micros        bigint,
        amount_micros      bigint,           -- NULL: could not be priced
        currency           text    NOT NULL,
        rate_card          text,
        tier               jsonb,            -- TierPosition, or NULL
        is_market_inferred boolean,          -- NULL when the rater did not say
        rule               text    NOT NULL,
        rating_id          text    NOT NULL
      );
      CREATE INDEX units_opened ON units (opened_at_ms, id);
      CREATE INDEX units_waba_opened ON units (waba, opened_at_ms, id);
      CREATE INDEX units_business_user ON units (business, user_id, opened_at_ms);
      CREATE INDEX units_user ON units (user_id, opened_at_ms);
      CREATE INDEX units_category ON units (category, opened_at_ms);
      CREATE INDEX units_type ON units (type, opened_at_ms);
      CREATE INDEX units_market ON units (market, opened_at_ms);

      CREATE TABLE pending_messages (
        id         text   PRIMARY KEY,
        waba       text   NOT NULL,
        business   text   NOT NULL,
        user_id    text   NOT NULL,
        sent_at_ms bigint NOT NULL,
        rating_id  text   NOT NULL
      );
      CREATE INDEX pending_messages_waba ON pending_messages (waba, sent_at_ms);

      CREATE TABLE findings (
        seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        rating_id text   NOT NULL,
        waba      text,             -- the finding's own "waba" field; NULL when it names none
        code      text   NOT NULL,
        payload   jsonb  NOT NULL
      );
      CREATE INDEX findings_waba ON findings (waba);
      CREATE INDEX findings_rating ON findings (rating_id);
    `,
  },
  {
    version: 2,
    name: 'events without the message_id index',
    // A second index of random keys on every event, for one query that the primary key serves as well.
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
    // place of the other client's. WABAs compare byte-wise too: they break ties between equal ids in pages.
    sql: `
      ALTER TABLE units ALTER COLUMN waba TYPE text COLLATE "C";
      ALTER TABLE units DROP CONSTRAINT units_pkey, ADD PRIMARY KEY (waba, id);
      DROP INDEX units_opened;
      CREATE INDEX units_opened ON units (opened_at_ms, id, waba);
      ALTER TABLE pending_messages DROP CONSTRAINT pending_messages_pkey, ADD PRIMARY KEY (waba, id);
    `,
  },
  {
    version: 5,
    name: 'units say when their category came from the webhook',
    sql: `ALTER TABLE units ADD COLUMN is_category_from_webhook boolean; -- true, or NULL: from the send log`,
  },
  {
    version: 6,
    name: 'ratings keep totals per WABA and the digest of the accounts they priced with',
    sql: `
      ALTER TABLE ratings ADD COLUMN totals_by_waba jsonb; -- {waba: totals}, or NULL (older ratings)
      ALTER TABLE ratings ADD COLUMN accounts_digest text; -- or NULL (older ratings)
    `,
  },
  {
    version: 7,
    name: 'events keep the business number a trusted writer tied to their WABA',
    // A status that names no WABA, and whose message is stored nowhere, belongs to the smallest WABA whose
    // trusted inbound or outbound events name its business number (listEvents): the column, and an index to
    // find those WABAs by, in byte order (COLLATE "C", as SQLite compares). Rows an API key wrote are not
    // trusted (a key limited to some WABAs may name any number): they tie once a key for every WABA, a webhook
    // or an import stores them again. The index holds only the rows that tie (statuses never do).
    sql: `
      ALTER TABLE events ADD COLUMN business text; -- inbound, outbound: the number a trusted writer tied, or NULL
      UPDATE events SET business = payload->>'business'
      WHERE kind IN ('inbound', 'outbound') AND source NOT LIKE 'api:%'
        AND coalesce(payload->>'business', '') <> '' AND coalesce(payload->>'user', '') <> '';
      CREATE INDEX events_business ON events (business, waba COLLATE "C") WHERE business IS NOT NULL;
    `,
  },
  {
    version: 8,
    name: 'events say whether a trusted writer stored them',
    // A key limited to some WABAs may write any message id on its own WABA's lines: its inbound or outbound
    // must join no other writer's status naming no WABA (messageJoinsStatusSql), or it would take another
    // client's status into its scope and out of that client's bill. False until a trusted writer stores the
    // event; rows of earlier versions are trusted only where they prove it (EVENT_TRUST_BACKFILL_SQL).
    sql: `
      ALTER TABLE events ADD COLUMN is_trusted boolean NOT NULL DEFAULT false; -- a trusted writer stored a copy
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
    name: 'findings and rating documents keep their keys in the order written',
    // jsonb sorts an object's keys (by length, then bytes): /v1/findings and /v1/ratings answered
    // {"code","waba","message",…} here and {"code","message","waba",…} from SQLite. json keeps the text as
    // written, as SQLite's TEXT does. These columns are only ever read whole (no operator, no index).
    // Documents stored before keep jsonb's order: it cannot be told back.
    sql: `
      ALTER TABLE findings ALTER COLUMN payload TYPE json USING payload::json;
      ALTER TABLE ratings
        ALTER COLUMN totals TYPE json USING totals::json,
        ALTER COLUMN changes TYPE json USING changes::json,
        ALTER COLUMN totals_by_waba TYPE json USING totals_by_waba::json;
    `,
  },
  {
    version: 11,
    name: 'events keep the user of the pair they tie, and statuses naming their WABA tie too',
    // A status naming no WABA, whose message is stored nowhere, is placed as the rater places it: with the WABA
    // of the pair its business number and user have (the smallest), else its number's owner
    // (statusPlacementSql). The user a tie pairs the number with (canonicalUser), and an index to find the
    // pair's WABAs by, in byte order. A trusted status naming its WABA, a number and a user ties them as an
    // inbound does (Meta's status webhook names the WABA and its phone_number_id): stored ones are filled here.
    sql: `
      ALTER TABLE events ADD COLUMN tied_user text; -- the canonical user of the pair \`business\` ties, or NULL
      UPDATE events SET business = payload->>'business'
      WHERE kind = 'status' AND waba IS NOT NULL AND is_trusted
        AND coalesce(payload->>'business', '') <> '' AND coalesce(payload->>'user', '') <> '';
      UPDATE events SET tied_user = ${canonicalUserSql(`(payload->>'user')`, 'postgres')}
      WHERE business IS NOT NULL;
      CREATE INDEX events_business_user ON events (business, tied_user, waba COLLATE "C")
        WHERE business IS NOT NULL;
    `,
  },
  {
    version: 12,
    name: 'ratings keep the digest of the rate cards they priced with',
    sql: `ALTER TABLE ratings ADD COLUMN rate_cards_digest text; -- or NULL (older ratings)`,
  },
  {
    version: 13,
    name: 'ratings keep the digest of the rating code that made them',
    sql: `ALTER TABLE ratings ADD COLUMN engine_digest text; -- or NULL (older ratings)`,
  },
  {
    version: 14,
    name: "a re-rate's changed units are kept beside it, a row each",
    // They were the `units` array inside `ratings.changes`: tens of MB a row on a large store, read whole by
    // every listing of the history. Each moves to its own row, in its order, and leaves `changes` (whose other
    // keys keep their order: json_object_agg in the order json_each gives them).
    sql: `
      CREATE TABLE IF NOT EXISTS rating_changes (
        rating_id text    NOT NULL,
        seq       integer NOT NULL, -- the change's place in the re-rate's list, from 0
        change    json    NOT NULL, -- {unit, old, new}, its keys as written
        PRIMARY KEY (rating_id, seq)
      );
      INSERT INTO rating_changes (rating_id, seq, change)
        SELECT r.id, t.n - 1, t.value
        FROM ratings r, json_array_elements(r.changes -> 'units') WITH ORDINALITY AS t(value, n)
        WHERE json_typeof(r.changes -> 'units') = 'array';
      UPDATE ratings SET changes = (
          SELECT json_object_agg(e.key, e.value ORDER BY e.n)
          FROM json_each(changes) WITH ORDINALITY AS e(key, value, n) WHERE e.key <> 'units')
        WHERE json_typeof(changes -> 'units') = 'array';
    `,
  },
  {
    version: 15,
    name: 'statuses naming no WABA are found by their business number',
    // A listing of some WABAs looks only at the statuses naming no WABA that its own events can bring in
    // (the listing's candidates, store.ts): those of its messages' ids, and those of messages whose statuses name a number
    // its events tie, found with one seek of this index. Like events_unnamed_status it holds only them, and
    // only those naming a number: a look-up of a message's statuses by its id (STATUS_PLACEMENT_SQL) must
    // never take it for events_unnamed_status (PostgreSQL without statistics did: a scan of it each time).
    sql: `CREATE INDEX IF NOT EXISTS events_unnamed_business ON events ((payload->>'business'))
      WHERE waba IS NULL AND kind = 'status' AND (payload->>'business') IS NOT NULL;`,
  },
  {
    version: 16,
    name: 'the writer fence: an epoch each new holder of the writer lock advances',
    // One row. The holder of the writer lock advances the epoch from its lock's session once it has the
    // lock; each ingest and rating of the store reads it FOR SHARE first and is refused when it is another
    // holder's (WriterFence, docs/storage.md "One writer per database").
    sql: `
      CREATE TABLE IF NOT EXISTS writer_fence (
        id    boolean PRIMARY KEY DEFAULT true CHECK (id), -- the one row
        epoch bigint  NOT NULL
      );
      INSERT INTO writer_fence (id, epoch) VALUES (true, 0) ON CONFLICT (id) DO NOTHING;
    `,
  },
  {
    version: 17,
    name: 'the rating history is read newest first through an index',
    // Every listing (GET /v1/ratings, a re-rate's look at the last rating) sorted the whole history: each
    // arrival adds a live rating, so a listing grew with every webhook ever rated. The second index finds the
    // ratings of some reasons (re-rates) among them.
    sql: `
      CREATE INDEX IF NOT EXISTS ratings_newest ON ratings (rated_at_ms DESC, seq DESC);
      CREATE INDEX IF NOT EXISTS ratings_newest_by_reason ON ratings (reason, rated_at_ms DESC, seq DESC);
    `,
  },
  {
    version: 18,
    name: 'business numbers keep the display number the webhooks give them',
    // Meta's analytics answer a number's display number for PHONE (and read it in phone_numbers), which only
    // the webhooks carry (metadata.display_phone_number beside phone_number_id). Filled from the stored bodies
    // here, where a trusted writer tied the number to the entry's WABA (events.business): a bound secret's
    // body may name any number, and ties none. A body jsonb cannot read (a \u0000 JSON.parse took) stops
    // the one statement: then each body is read on its own, and such a body gives nothing.
    sql: `
      CREATE TABLE IF NOT EXISTS business_numbers (
        waba           text NOT NULL,
        business       text NOT NULL, -- the phone_number_id
        display_number text NOT NULL, -- its digits only (15550783881), as Meta's analytics write it
        PRIMARY KEY (waba, business)
      );
      CREATE OR REPLACE FUNCTION pg_temp.wameter_business_numbers(body bytea)
        RETURNS TABLE (waba text, business text, display_number text) LANGUAGE sql AS $f$
        SELECT en.value->>'id', ch.value->'value'->'metadata'->>'phone_number_id',
               regexp_replace(ch.value->'value'->'metadata'->>'display_phone_number', '[-+ ().]', '', 'g')
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(convert_from(body, 'UTF8')::jsonb->'entry') = 'array'
                                       THEN convert_from(body, 'UTF8')::jsonb->'entry' ELSE '[]' END) en,
             jsonb_array_elements(CASE WHEN jsonb_typeof(en.value->'changes') = 'array'
                                       THEN en.value->'changes' ELSE '[]' END) ch
        WHERE jsonb_typeof(en.value->'id') = 'string'
          AND jsonb_typeof(ch.value->'value'->'metadata'->'phone_number_id') = 'string'
          AND jsonb_typeof(ch.value->'value'->'metadata'->'display_phone_number') = 'string'
      $f$;
      DO $d$
      DECLARE r record;
      BEGIN
        BEGIN
          INSERT INTO business_numbers (waba, business, display_number)
          SELECT DISTINCT ON (n.waba, n.business) n.waba, n.business, n.display_number
          FROM raw_webhooks w CROSS JOIN LATERAL pg_temp.wameter_business_numbers(w.body) n
          WHERE w.parse_error IS NULL AND n.display_number ~ '^[0-9]{1,20}$'
            AND EXISTS (SELECT 1 FROM events e WHERE e.business = n.business AND e.waba = n.waba)
          ORDER BY n.waba, n.business, w.id DESC
          ON CONFLICT (waba, business) DO NOTHING;
        EXCEPTION WHEN others THEN
          FOR r IN SELECT id, body FROM raw_webhooks WHERE parse_error IS NULL ORDER BY id LOOP
            BEGIN
              INSERT INTO business_numbers (waba, business, display_number)
              SELECT DISTINCT ON (n.waba, n.business) n.waba, n.business, n.display_number
              FROM pg_temp.wameter_business_numbers(r.body) n
              WHERE n.display_number ~ '^[0-9]{1,20}$'
                AND EXISTS (SELECT 1 FROM events e WHERE e.business = n.business AND e.waba = n.waba)
              ON CONFLICT (waba, business) DO UPDATE SET display_number = excluded.display_number;
            EXCEPTION WHEN others THEN NULL;
            END;
          END LOOP;
        END;
      END
      $d$;
    `,
  },
  {
    version: 19,
    name: 'units are read dearest first through an index',
    // GET /v1/units?order=amount_desc (the dashboard's Units page sorted by amount): without an index each
    // page sorted every unit the filters match. Within one WABA (the page's usual filter) the second index
    // serves the order. Currencies in byte order (COLLATE "C"), as SQLite's; the expression is engine-checks'
    // AMOUNT_DESC_KEY_SQL, spelt alike.
    sql: `
      CREATE INDEX IF NOT EXISTS units_amount ON units
        (currency COLLATE "C", (coalesce(-amount_micros, 9223372036854775807)), opened_at_ms, id, waba);
      CREATE INDEX IF NOT EXISTS units_waba_amount ON units
        (waba, currency COLLATE "C", (coalesce(-amount_micros, 9223372036854775807)), opened_at_ms, id);
    `,
  },
  {
    version: 20,
    name: 'the events keep a mark of where they last changed, and ratings the mark they read',
    // A start re-rated every portfolio, even when nothing had changed since its stored rating (tens of seconds
    // on a large store). The database marks every insert or rewrite of an event itself, in the transaction
    // that writes it (a crash between storing and rating loses nothing), so that a start can tell a current
    // rating from a stale one (EventChanges, docs/decisions.md). The marks are written when the transaction
    // commits (a deferred trigger): the clock's row lock, taken then and held to the commit, puts those commits
    // in a line, so that a mark read is never passed by one committed later with a smaller mark (a sequence's
    // values are taken in another order than their transactions commit), and a writer waiting for it holds
    // no lock another one waits for (taken at the first write, it deadlocked two writers merging one event).
    // '' marks a change that may move a status naming no WABA between listings: such a status, and a message
    // or tie of a WABA that one may join or be placed by. The functions keep the store's schema as their
    // search_path, so that a session of another search_path writing its events (an operator's) finds them.
    // A later migration that rewrites events and then alters the table (pending trigger events forbid it, in
    // the one transaction of the migrations) says `SET CONSTRAINTS events_changed IMMEDIATE` first.
    sql: `
      CREATE TABLE IF NOT EXISTS event_clock (
        id  boolean PRIMARY KEY DEFAULT true CHECK (id), -- the one row
        seq bigint  NOT NULL,                            -- the mark of the last change to an event
        tx  bigint                                       -- the transaction that took it
      );
      INSERT INTO event_clock (id, seq) VALUES (true, 0) ON CONFLICT (id) DO NOTHING;
      CREATE TABLE IF NOT EXISTS event_changes (
        waba text   PRIMARY KEY, -- '': a change that may move a status naming no WABA
        seq  bigint NOT NULL     -- the mark of its last change
      );
      ${EVENT_CHANGE_FUNCTIONS_SQL}
      DROP TRIGGER IF EXISTS events_changed ON events;
      CREATE CONSTRAINT TRIGGER events_changed AFTER INSERT OR UPDATE ON events
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wameter_event_changed();
      ALTER TABLE ratings ADD COLUMN IF NOT EXISTS events_seq bigint; -- the mark read before its events, or NULL
      ALTER TABLE ratings ADD COLUMN IF NOT EXISTS setup_digest text; -- or NULL (older ratings)
    `,
  },
  {
    version: 21,
    name: 'an event change takes the mark once per transaction, marks each WABA once in a row, and deletions too',
    // Migration 20's function did for every row of a transaction what only its first needed: the clock's row
    // read FOR UPDATE, its WABA's mark written again (a no-op), the look-ups for a status naming no WABA even
    // once '' was marked: costs that grow with the rows a transaction writes (a fifth of the database's CPU
    // for batched webhook bodies: docs/decisions.md, "The event marks are taken once per transaction").
    // Same marks, same guarantees: the first row of a transaction to fire still takes the clock's lock at
    // commit and holds it to the end, and the later rows reuse its mark from a memo (the setting
    // wameter.event_mark, local to the transaction: gone at its end, and undone with a savepoint rolled back,
    // as the clock's update is), which names the transaction and this schema's events table (another
    // schema's store written in the same transaction has its own clock). A WABA marked by the row before
    // (rows come in key order, and a key begins with its WABA) and '' once marked are not written again; the
    // look-ups run until '' is marked. Still at commit, so a status naming no WABA committed meanwhile is
    // seen, or takes a later mark itself.
    // A deleted row is marked as the old row of a rewrite is (its WABA, and '' when it may move a status naming
    // no WABA): no wameter code deletes events, but the clean-up of docs/storage.md does, by hand, and the next
    // start would otherwise keep the stored bill of events no longer stored.
    sql: `
      CREATE OR REPLACE FUNCTION wameter_event_changed() RETURNS trigger
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $f$
      DECLARE
        -- The memo: "TX RELID MARK UNNAMED LAST_WABA" (UNNAMED: t once '' is marked; LAST_WABA may hold spaces).
        memo text := current_setting('wameter.event_mark', true);
        prefix text := txid_current() || ' ' || TG_RELID || ' ';
        rest text;
        mark bigint;
        taken_by bigint;
        is_unnamed_marked boolean := false;
        last_waba text;
        row_waba text;
        row_message_id text;
        row_business text;
        side int;
      BEGIN
        IF left(memo, length(prefix)) = prefix THEN
          rest := substr(memo, length(prefix) + 1);
          mark := split_part(rest, ' ', 1)::bigint;
          is_unnamed_marked := split_part(rest, ' ', 2) = 't';
          last_waba := substr(rest, length(split_part(rest, ' ', 1)) + 4);
        ELSE
          SELECT c.seq, c.tx INTO mark, taken_by FROM event_clock c WHERE c.id FOR UPDATE;
          IF taken_by IS DISTINCT FROM txid_current() THEN
            mark := mark + 1;
            UPDATE event_clock SET seq = mark, tx = txid_current() WHERE id;
          END IF;
        END IF;
        -- Side 1 the new row (an insert, a rewrite), side 2 the old one (a rewrite, a deletion).
        FOR side IN CASE WHEN TG_OP = 'DELETE' THEN 2 ELSE 1 END .. CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE 2 END LOOP
          IF side = 1 THEN
            row_waba := NEW.waba; row_message_id := NEW.message_id; row_business := NEW.business;
          ELSE
            row_waba := OLD.waba; row_message_id := OLD.message_id; row_business := OLD.business;
          END IF;
          IF coalesce(row_waba, '') IS DISTINCT FROM last_waba
             AND NOT (row_waba IS NULL AND is_unnamed_marked) THEN
            INSERT INTO event_changes AS c (waba, seq) VALUES (coalesce(row_waba, ''), mark)
              ON CONFLICT (waba) DO UPDATE SET seq = excluded.seq WHERE c.seq <> excluded.seq;
          END IF;
          last_waba := coalesce(row_waba, '');
          is_unnamed_marked := is_unnamed_marked OR row_waba IS NULL;
          IF NOT is_unnamed_marked AND (
               (row_message_id IS NOT NULL
                AND EXISTS (SELECT 1 FROM events u WHERE u.message_id = row_message_id
                                                    AND u.waba IS NULL))
               OR (row_business IS NOT NULL
                   AND EXISTS (SELECT 1 FROM events u WHERE (u.payload->>'business') = row_business
                                                       AND u.waba IS NULL AND u.kind = 'status'))) THEN
            INSERT INTO event_changes AS c (waba, seq) VALUES ('', mark)
              ON CONFLICT (waba) DO UPDATE SET seq = excluded.seq WHERE c.seq <> excluded.seq;
            is_unnamed_marked := true;
          END IF;
        END LOOP;
        rest := prefix || mark || ' ' || CASE WHEN is_unnamed_marked THEN 't' ELSE 'f' END || ' ' || last_waba;
        IF rest IS DISTINCT FROM memo THEN
          PERFORM set_config('wameter.event_mark', rest, true);
        END IF;
        RETURN NULL;
      END $f$;
      DROP FUNCTION IF EXISTS wameter_mark_event_change(text, text, text, bigint);
      DROP TRIGGER IF EXISTS events_changed ON events;
      CREATE CONSTRAINT TRIGGER events_changed AFTER INSERT OR UPDATE OR DELETE ON events
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wameter_event_changed();
    `,
  },
  {
    version: 22,
    name: "an event change skips the look-ups for statuses naming no WABA when none is stored, or '' is marked",
    // Migration 21's function ran its two look-ups (a message or a status naming no WABA that the row may move)
    // as one SQL condition a row, also once '' was marked (PL/pgSQL hands the whole condition to the executor,
    // which starts its plan before the first AND can stop it): a third of the trigger's work for webhooks
    // whose statuses name their WABA (docs/benchmarks.md §3, "Thirty-seventh session"). Now the look-ups run
    // only while '' is unmarked, and not at all when no row naming no WABA is stored: the first row of a
    // transaction to fire probes events_unnamed_status once, after the clock's lock ('n' in the memo's
    // UNNAMED field). Same marks: while the transaction holds the clock's lock, no other transaction writing
    // events commits (its own first row waits for the lock at its commit), so a row naming no WABA that the
    // look-ups of a later row could find is one this transaction writes itself (or rewrites, or deletes) after
    // the probe — and that row marks '' itself, before the commit. A savepoint rolled back undoes the memo with
    // the clock's update and lock, as before: the next row probes again.
    sql: `
      CREATE OR REPLACE FUNCTION wameter_event_changed() RETURNS trigger
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $f$
      DECLARE
        -- The memo: "TX RELID MARK UNNAMED LAST_WABA" (UNNAMED: t once '' is marked, n when no row naming no
        -- WABA was stored at the probe, else f; LAST_WABA may hold spaces).
        memo text := current_setting('wameter.event_mark', true);
        prefix text := txid_current() || ' ' || TG_RELID || ' ';
        rest text;
        mark bigint;
        taken_by bigint;
        unnamed text := 'f';
        last_waba text;
        row_waba text;
        row_message_id text;
        row_business text;
        side int;
      BEGIN
        IF left(memo, length(prefix)) = prefix THEN
          rest := substr(memo, length(prefix) + 1);
          mark := split_part(rest, ' ', 1)::bigint;
          unnamed := split_part(rest, ' ', 2);
          last_waba := substr(rest, length(split_part(rest, ' ', 1)) + 4);
        ELSE
          SELECT c.seq, c.tx INTO mark, taken_by FROM event_clock c WHERE c.id FOR UPDATE;
          IF taken_by IS DISTINCT FROM txid_current() THEN
            mark := mark + 1;
            UPDATE event_clock SET seq = mark, tx = txid_current() WHERE id;
          END IF;
          -- In the order of events_unnamed_status, so that it is read (one entry), never the table.
          PERFORM FROM events u WHERE u.waba IS NULL ORDER BY u.message_id LIMIT 1;
          IF NOT FOUND THEN
            unnamed := 'n';
          END IF;
        END IF;
        -- Side 1 the new row (an insert, a rewrite), side 2 the old one (a rewrite, a deletion).
        FOR side IN CASE WHEN TG_OP = 'DELETE' THEN 2 ELSE 1 END .. CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE 2 END LOOP
          IF side = 1 THEN
            row_waba := NEW.waba; row_message_id := NEW.message_id; row_business := NEW.business;
          ELSE
            row_waba := OLD.waba; row_message_id := OLD.message_id; row_business := OLD.business;
          END IF;
          IF coalesce(row_waba, '') IS DISTINCT FROM last_waba
             AND NOT (row_waba IS NULL AND unnamed = 't') THEN
            INSERT INTO event_changes AS c (waba, seq) VALUES (coalesce(row_waba, ''), mark)
              ON CONFLICT (waba) DO UPDATE SET seq = excluded.seq WHERE c.seq <> excluded.seq;
          END IF;
          last_waba := coalesce(row_waba, '');
          IF row_waba IS NULL THEN
            unnamed := 't';
          ELSIF unnamed = 'f' THEN
            -- Its own statement: PL/pgSQL evaluates a condition holding a subquery in the executor, whole.
            IF (row_message_id IS NOT NULL
                AND EXISTS (SELECT 1 FROM events u WHERE u.message_id = row_message_id
                                                    AND u.waba IS NULL))
               OR (row_business IS NOT NULL
                   AND EXISTS (SELECT 1 FROM events u WHERE (u.payload->>'business') = row_business
                                                       AND u.waba IS NULL AND u.kind = 'status')) THEN
              INSERT INTO event_changes AS c (waba, seq) VALUES ('', mark)
                ON CONFLICT (waba) DO UPDATE SET seq = excluded.seq WHERE c.seq <> excluded.seq;
              unnamed := 't';
            END IF;
          END IF;
        END LOOP;
        rest := prefix || mark || ' ' || unnamed || ' ' || last_waba;
        IF rest IS DISTINCT FROM memo THEN
          PERFORM set_config('wameter.event_mark', rest, true);
        END IF;
        RETURN NULL;
      END $f$;
    `,
  },
];

/** WABAs compared byte-wise, as SQLite compares them (and as `events_business` is sorted). */
const BYTE_ORDER = ' COLLATE "C"';
/**
 * Back to the columns' own collation: a value compared with `events.business` or `events.tied_user` in "C"
 * would keep PostgreSQL from their indexes (a scan of `events` for every status naming no WABA).
 */
const DEFAULT_ORDER = ' COLLATE "default"';
/**
 * SQL: the business number of a status `s` naming no WABA (`events.business` is only ever a tie, never such a
 * status's), and (in the placement below) its user as the rater pairs it — as the rater reads them, from every
 * status of its message naming no WABA: the smallest of each, byte-wise (a `sent` naming the number and a `delivered` naming the
 * user are one message to that user of that number). A seek of events_unnamed_status each.
 */
const STATUS_BUSINESS_SQL = `((SELECT min((t.payload->>'business')${BYTE_ORDER}) FROM events t
  WHERE t.waba IS NULL AND t.message_id = s.message_id AND t.kind = 'status')${DEFAULT_ORDER})`;
/**
 * SQL: where a status `s` naming no WABA is listed while its message is stored nowhere — its message's number
 * and user read in one seek of events_unnamed_status (as three subqueries, the seek was made three times).
 */
const STATUS_PLACEMENT_SQL = `(SELECT ${statusPlacementSql(`(o.business${DEFAULT_ORDER})`, `(o.tied_user${DEFAULT_ORDER})`, BYTE_ORDER)}
  FROM (SELECT min((t.payload->>'business')${BYTE_ORDER}) AS business,
               min(${canonicalUserSql(`(t.payload->>'user')`, 'postgres')}${BYTE_ORDER}) AS tied_user
        FROM events t WHERE t.waba IS NULL AND t.message_id = s.message_id AND t.kind = 'status') o)`;

/**
 * SQL: status `s`, naming no WABA, is listed with a WABA of `listing_scope` — the listing's whole predicate
 * (`STORED_WABAS_CTE` and `listing_scope` in the statement): by its message (`messageInScopeJoinsStatusSql`),
 * else, when its message is stored nowhere, by the rater's placement (`statusPlacementSql`). Each is behind a
 * `CASE` on what it needs, which PostgreSQL would otherwise look up last: a message of the scope that joins
 * `s` (one of `messageKeysSql`'s keys in a WABA of the scope, which both ways of `messageInScopeJoinsStatusSql`
 * need; else its second way asks every stored WABA for a business message first, for every status: 6.9 s of
 * a 9.5 s listing of 19,894 events whose statuses the scope's numbers brought in, docs/benchmarks.md §7), and
 * the placement in the scope (else the message is looked for in every WABA first, for every status).
 */
const STATUS_IN_SCOPE_SQL = `(CASE WHEN EXISTS (SELECT 1 FROM listing_scope w, events m
        WHERE m.key IN (${messageKeysSql('w.waba', 's.message_id')}) AND ${messageJoinsStatusSql('m', 's')})
      THEN ${messageInScopeJoinsStatusSql('s', BYTE_ORDER)} ELSE false END
  OR CASE WHEN ${STATUS_PLACEMENT_SQL} = ANY($1::text[]) THEN NOT ${messageStoredSql('s')} ELSE false END)`;

/**
 * SQL, PostgreSQL's gathering of the listing's candidates (store.ts) for `listEvents` (the WABAs of the scope are `$1`): the terms
 * of a `WITH` clause after `listing_scope`, the statuses naming no WABA a listing may hold, as message ids.
 * - `listing_messages(message_id, is_recorded)`: the message ids of the scope's events, each once, and whether
 *   one of them is a record of its id (`recordKeysSql`: its own key is its WABA's outbound or status key of
 *   that id) that a trusted writer stored. Such a record joins every status of its id
 *   (`messageJoinsStatusSql`), so `messageInScopeJoinsStatusSql`'s first `EXISTS` holds for those statuses,
 *   found with that very row (its WABA is of the scope, its key one the `EXISTS` seeks): they are listed
 *   without it. It is only a shortcut: a status it does not decide is decided by the whole predicate
 *   (`STATUS_IN_SCOPE_SQL`), so the listing is the same whatever it finds. On a store of send logs it decides
 *   nearly every status: the 170,741 of a portfolio of 333,944 events took 8 key seeks a WABA of the scope
 *   each (4.2 s of the statement's 5.4 s; docs/benchmarks.md §7, thirty-sixth session).
 * - `listing_numbers`, `listing_siblings`: the message ids of the statuses naming no WABA that name a number
 *   an event of the scope ties (a seek of `events_unnamed_business` a number).
 * The scope's rows are found by `waba = ANY($1)` (an index scan of `events (waba)`), not `IN listing_scope`,
 * which PostgreSQL read as a scan of the whole table.
 */
const LISTING_MESSAGES_SQL = `listing_messages(message_id, is_recorded) AS MATERIALIZED (
    SELECT m.message_id, bool_or(m.is_trusted AND m.key IN (${recordKeysSql('m.waba', 'm.message_id')}))
    FROM events m WHERE m.waba = ANY($1::text[]) AND m.message_id IS NOT NULL GROUP BY m.message_id),
  listing_numbers(business) AS (
    SELECT DISTINCT e.business FROM events e WHERE e.waba = ANY($1::text[]) AND e.business IS NOT NULL),
  listing_siblings(message_id) AS (
    SELECT DISTINCT t.message_id FROM listing_numbers n JOIN events t ON (t.payload->>'business') = n.business
    WHERE t.waba IS NULL AND t.kind = 'status')`;

/**
 * SQL: the WABAs whose events tie business number `$1`, read from events_business one at a time in byte order
 * (a number has one WABA, or a few), however many events tie it. The comparisons must be in the index's
 * collation ("C"): in the column's own, PostgreSQL cannot seek the next WABA in the index and read the
 * events of every WABA in turn instead (101 ms against 0.7 ms, cold, for a number of a store of 100,000
 * events: `readUnnamedStatusWabas` until 2026-12-06).
 */
export const NUMBER_WABAS_SQL = `WITH RECURSIVE number_wabas(waba) AS (
    SELECT min(waba${BYTE_ORDER}) FROM events WHERE business = $1
    UNION ALL
    SELECT (SELECT min(e.waba${BYTE_ORDER}) FROM events e WHERE e.business = $1 AND e.waba${BYTE_ORDER} > a.waba)
    FROM number_wabas a WHERE a.waba IS NOT NULL)
  SELECT waba FROM number_wabas WHERE waba IS NOT NULL`;

/** First key of the migration advisory lock ("wame"); the second is the schema's hash. */
const MIGRATION_LOCK = 0x77616d65;
/** Rows per INSERT statement in batches (each column travels as one array parameter). */
const BATCH_ROWS = 5_000;
const HALF_HOUR_MS = 30 * 60_000;

/** A text field of a jsonb column, for `dimensionSql`. */
function postgresJsonText(column: string, field: string): string {
  return `(${column} ->> '${field}')`;
}

/**
 * bigint (epoch ms, micros, counts) and numeric (sums of bigint) come back as JS numbers while a number holds
 * them exactly, as bigints beyond (only sums of money get there), never rounded.
 */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC) return parseExactInteger;
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};

function parseExactInteger(text: string): number | bigint {
  const value = Number(text);
  if (Number.isSafeInteger(value)) return value;
  // Past 2^53 only a sum of money gets (counts and instants never do): a bigint, exact.
  if (/^-?\d+$/.test(text)) return BigInt(text);
  throw new Error(`PostgreSQL returned ${text}, not an exact integer`);
}

export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const {
    schema,
    isReadOnly = false,
    pingTimeoutMs = PING_TIMEOUT_MS,
    writeTimeoutMs = WRITE_TIMEOUT_MS,
    readTimeoutMs = READ_TIMEOUT_MS,
    ratingTimeoutMs = RATING_TIMEOUT_MS,
    writerFence,
  } = options;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`schema "${schema}" must be a lower-case SQL identifier (letters, digits, _)`);
  }
  const pool = new pg.Pool({
    connectionString: schema === undefined ? url : withSearchPath(url, schema),
    types: TYPES,
    // A connection still being opened after an operation's bound is of no use to it, and it holds one of the
    // pool's places: once a partition heals, attempts its packets were lost in keep callers waiting for a
    // place until this timeout (10 s, the write bound; shorter when the store is given shorter bounds).
    connectionTimeoutMillis: Math.min(10_000, writeTimeoutMs, readTimeoutMs),
    // Its SQL writes a backslash as itself (`'\\'`), as standard_conforming_strings (PostgreSQL's default) reads
    // it: a server, database or role that turned it off made every such string an escape (the migrations were
    // refused with a syntax error). And the server itself refuses any write of a read-only store's sessions,
    // not only this code.
    onConnect: (client) =>
      client
        .query(
          `SET standard_conforming_strings = on${isReadOnly ? '; SET default_transaction_read_only = on' : ''}`,
        )
        .then(() => {}),
  });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => {});
  const store = new PostgresStore(
    pool,
    schema,
    isReadOnly,
    {
      pingMs: pingTimeoutMs,
      writeMs: writeTimeoutMs,
      readMs: readTimeoutMs,
      ratingMs: ratingTimeoutMs,
    },
    writerFence,
  );
  try {
    if (isReadOnly) await store.checkReadable();
    else await store.migrate();
  } catch (error) {
    await pool.end();
    throw error;
  }
  return store;
}

/**
 * Where the session's search_path puts the store: `schema`, the first schema of the path that exists (where
 * PostgreSQL creates tables: `current_schema()`), the path as set, and `stores`, the schemas of the path that
 * hold wameter's tables (`schema_migrations`), in the path's order.
 */
const SEARCH_PATH_SQL = `SELECT current_schema() AS schema, current_setting('search_path') AS search_path,
  ARRAY(SELECT s.name::text FROM unnest(current_schemas(false)) WITH ORDINALITY AS s(name, place)
        WHERE to_regclass(format('%I.schema_migrations', s.name)) IS NOT NULL ORDER BY s.place)::text[] AS stores`;

/** The tables (and views) of the schema tables are created in, by name. */
const FOREIGN_TABLES_SQL = `SELECT c.relname::text AS name FROM pg_class c
  WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
    AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname`;

interface SearchPathRow {
  schema: string | null;
  search_path: string;
  stores: string[];
}

/** The names of a search_path setting (`"$user", public`), as PostgreSQL reads them: unquoted ones folded to lower case. */
function searchPathNames(setting: string): string[] {
  return (setting.match(/"(?:[^"]|"")*"|[^,]+/g) ?? [])
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => (part.startsWith('"') ? part.slice(1, -1).replaceAll('""', '"') : part.toLowerCase()));
}

/** A schema name as psql takes it: plain when it needs no quotes. */
function schemaSql(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

/**
 * Why the search_path must not be used as it stands, or undefined. PostgreSQL creates tables in the first
 * schema of the path that exists and reads each table from the first schema that holds it, so a path naming
 * a schema that does not exist yet put the store in the next one, and once that schema was made, the next
 * writer started a new, empty store in it (its reads then finding none of the bill kept further on):
 * - a schema before the store's, holding none of its tables, is refused (the store would be hidden);
 * - a first schema named (after any `"$user"`) that does not exist is refused (the store would go, or be, in
 *   another schema than the one named).
 */
function searchPathProblem(found: SearchPathRow, server: string): string | undefined {
  const { schema, search_path: path, stores } = found;
  if (schema === null) return undefined; // no schema at all: said where tables cannot be created or read
  const options = `the URL's options=-c search_path=…`;
  const [store] = stores;
  if (store !== undefined && store !== schema) {
    return `the search_path of ${server} (${path}) reaches the schema "${schema}", which holds no wameter tables, before "${store}", which holds wameter's store: a writer would start a new, empty store in "${schema}" and leave the bill kept in "${store}" unread; name "${store}" first in ${options} (or move its tables to "${schema}")`;
  }
  const first = searchPathNames(path).find(
    (name) => name !== '$user' && name !== 'pg_catalog' && !name.startsWith('pg_temp'),
  );
  if (first === undefined || first === schema) return undefined;
  return store === schema
    ? `the schema "${first}", first in the search_path of ${server} (${path}), does not exist (or this user may not use it), and wameter's store is in "${schema}": name "${schema}" first in ${options} (creating "${first}" would hide that store behind a new, empty one)`
    : `the schema "${first}", first in the search_path of ${server} (${path}), does not exist (or this user may not use it): create it (psql -c 'CREATE SCHEMA ${schemaSql(first)}') or fix ${options}, rather than put wameter's tables in "${schema}"`;
}

/** host, port and database as pg resolved them from the URL (never its password). */
function serverOf(client: pg.PoolClient): string {
  const { host, port, database } = client as unknown as { host: string; port: number; database: string };
  return `the PostgreSQL database at ${host}:${port}/${database}`;
}

/** Adds `-c search_path=SCHEMA` to the URL's `options` (the URL wins over pg's config object). */
function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url);
  const existing = parsed.searchParams.get('options');
  parsed.searchParams.set('options', [existing, `-c search_path=${schema}`].filter(Boolean).join(' '));
  return parsed.toString();
}

class PostgresStore implements Store {
  /** Concurrent ingests share one transaction: one round of statements and one WAL flush (group commit). */
  private readonly ingests = new GroupCommitQueue((items) => this.ingestTransaction(items));

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string | undefined,
    /** Opened for a command that only reads: never migrated (its sessions refuse writes too). */
    private readonly isReadOnly: boolean,
    private readonly timeouts: { pingMs: number; writeMs: number; readMs: number; ratingMs: number },
    /** Checked by every ingest and rating (`WriterFence`); none for a store opened without the writer lock. */
    private readonly writerFence: WriterFence | undefined,
  ) {}

  /** A read of the API: each statement (and the wait for a connection) within `readMs`. */
  private read<T>(work: (client: Queryable) => Promise<T>): Promise<T> {
    return this.withClient(work, { scope: 'each', ms: this.timeouts.readMs, operation: 'read' });
  }

  private readRows(text: string, values?: unknown[]): Promise<Row[]> {
    return this.read(async (client) => (await client.query(text, values)).rows as Row[]);
  }

  /**
   * What a read-only open checks instead of migrating: the schema the search_path resolves to (as migrate
   * would create tables in it) holds a store this version migrated. Reads only.
   */
  async checkReadable(): Promise<void> {
    const client = await this.pool.connect();
    const onLost = () => {}; // the query under way fails instead (see transaction)
    client.on('error', onLost);
    try {
      const found = (await client.query(SEARCH_PATH_SQL)).rows[0] as SearchPathRow;
      const server = serverOf(client);
      if (found.schema === null) {
        throw new ReadOnlyOpenError(
          'NO_STORE',
          `no wameter store in ${server}: no schema of its search_path (${found.search_path}) exists`,
        );
      }
      const problem = searchPathProblem(found, server);
      if (problem !== undefined) throw new Error(problem);
      const applied = found.stores.includes(found.schema)
        ? new Set(
            (await client.query('SELECT version FROM schema_migrations')).rows.map((row: Row) =>
              Number(row.version),
            ),
          )
        : undefined;
      checkReadableMigrations(
        applied,
        MIGRATIONS,
        `the schema "${found.schema}" of ${server}`,
        'it holds no wameter tables',
      );
    } finally {
      client.off('error', onLost);
      client.release();
    }
  }

  async migrate(): Promise<void> {
    if (this.isReadOnly) throw new Error('this store was opened read-only: it is never migrated');
    await this.transaction(async (client) => {
      // Two processes starting together: the second waits here, then finds every migration applied.
      await client.query(
        "SELECT pg_advisory_xact_lock($1, hashtext(coalesce($2::text, current_schema(), '')))",
        [MIGRATION_LOCK, this.schema ?? null],
      );
      if (this.schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
      const found = (await client.query(SEARCH_PATH_SQL)).rows[0] as SearchPathRow;
      const problem = searchPathProblem(found, serverOf(client as pg.PoolClient));
      if (problem !== undefined) throw new Error(problem);
      // Another program's schema (tables, and no wameter store): its tables were added beside theirs, or a
      // name both use refused the migration with "relation "events" already exists", naming no schema.
      if (found.schema !== null && !found.stores.includes(found.schema)) {
        const { rows } = await client.query(FOREIGN_TABLES_SQL);
        const tables = rows.map((row: Row) => String(row.name));
        if (tables.length > 0) {
          throw new ForeignStoreError(
            `the schema "${found.schema}" of ${serverOf(client as pg.PoolClient)}`,
            tables,
            "a schema of its own (psql -c 'CREATE SCHEMA wameter', then options=-c search_path=wameter in the URL)",
          );
        }
      }
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version       integer PRIMARY KEY,
        name          text    NOT NULL,
        applied_at_ms bigint  NOT NULL
      )`);
      const applied = new Set(
        (await client.query('SELECT version FROM schema_migrations')).rows.map((row: Row) =>
          Number(row.version),
        ),
      );
      checkNoNewerMigrations(applied, MIGRATIONS);
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        await client.query(migration.sql);
        await client.query(
          'INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)',
          [migration.version, migration.name, Date.now()],
        );
      }
    });
  }

  ingestGroups(): IngestGroupCounts {
    return { ...this.ingests.stats };
  }

  async ping(): Promise<void> {
    // The wait for a connection counts too (a partition makes the pool open a new one, which would wait the
    // pool's 10 s). A query timed out is released as broken: the pool ends that connection, never reuses it.
    const startedMs = performance.now();
    const client = await connectWithin(this.pool, {
      scope: 'whole',
      ms: this.timeouts.pingMs,
      operation: 'ping',
    });
    let broken: Error | undefined;
    const onLost = (error: Error) => {
      broken = error;
    };
    client.on('error', onLost);
    try {
      const leftMs = Math.max(1, Math.ceil(this.timeouts.pingMs - (performance.now() - startedMs)));
      // (`query_timeout` per query is pg's, not in its types.)
      await client.query({ text: 'SELECT 1', query_timeout: leftMs } as pg.QueryConfig);
    } catch (error) {
      broken = error as Error;
      // pg's own words for its query_timeout ("Query read timeout"), said as the bound's.
      throw /timeout/i.test(String((error as Error).message))
        ? new StoreTimeoutError(this.timeouts.pingMs, {
            isConnectionLost: true,
            cause: error,
            operation: 'ping',
          })
        : error;
    } finally {
      client.off('error', onLost);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.ingests.idle();
    if (!this.pool.ended) await this.pool.end();
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
    return this.ingestTransaction(checked);
  }

  private ingestTransaction(items: readonly IngestItem[]): Promise<IngestItemOutcome[]> {
    return this.transaction((client) => ingestGroup(client, items), {
      bound: { scope: 'whole', ms: this.timeouts.writeMs, operation: 'write' },
      isFenced: true,
    });
  }

  async getRawWebhook(id: number): Promise<StoredRawWebhook | undefined> {
    const rows = await this.readRows('SELECT * FROM raw_webhooks WHERE id = $1', [id]);
    const row = rows[0];
    return row && rawFromRow(row);
  }

  async listUnreadableWebhooks(limit: number): Promise<StoredRawWebhook[]> {
    const rows = await this.readRows(
      'SELECT * FROM raw_webhooks WHERE parse_error IS NOT NULL ORDER BY id DESC LIMIT $1',
      [checkLimit(limit)],
    );
    return rows.map(rawFromRow);
  }

  async listEvents(wabas?: readonly string[]): Promise<CoreEvent[]> {
    checkFilterText('wabas', wabas);
    if (wabas === undefined) {
      const rows = await this.withClient(
        async (client) =>
          (await client.query('SELECT payload, business IS NULL AS untied FROM events')).rows as Row[],
        this.ratingBound(),
      );
      return rows.map((row: Row) => withRowTie(row.payload as CoreEvent, row.untied === true));
    }
    // A status that did not name its WABA belongs to the WABA of the message it reports on, found by the
    // message's idempotency key in each WABA of the scope (eventKey: "WABA:outbound:ID" or "WABA:inbound:ID",
    // the WABA escaped as migration 3 does; the primary key's index), when that message joins it (a trusted
    // writer's, or the status's own untrusted writer's: messageJoinsStatusSql). When no WABA stores its
    // message so, it belongs to the one WABA the rater places it with (statusPlacementSql: its number and
    // user's pair's smallest WABA, a seek of events_business_user, else its number's owner, a seek of
    // events_business), and only then is its message looked for in every stored WABA. Only the statuses
    // the scope's own events can bring in are looked at (LISTING_MESSAGES_SQL, PostgreSQL's gathering of
    // the listing's candidates), not every one naming no WABA: those of the ids of the scope's events, which a
    // trusted record of the id in the scope lists at once (is_recorded), and those of the messages whose
    // statuses name a number the scope ties (the ids of the scope's events left out: listed above). Each
    // status is listed once (listing_messages and listing_siblings hold each id once, and the second part
    // leaves out the first's). No ORDER BY (nor in the listing of every event above): the listing is in any
    // order (Store.listEvents; SQLite's is rowid order) and every caller takes it so (the rater, reconcile,
    // estimate); the sort by (at_ms, key) of the largest portfolio's 333,944 rows, payloads included, wrote
    // 80 MB to disk.
    const rows = await this.withoutJit(
      `WITH RECURSIVE ${STORED_WABAS_CTE},
       listing_scope(waba) AS (SELECT unnest($1::text[])),
       ${LISTING_MESSAGES_SQL}
       SELECT s.payload, s.business IS NULL AS untied FROM events s WHERE s.waba = ANY($1::text[])
       UNION ALL
       SELECT s.payload, s.business IS NULL FROM listing_messages i JOIN events s ON s.message_id = i.message_id
       WHERE s.waba IS NULL AND s.kind = 'status' AND (i.is_recorded OR ${STATUS_IN_SCOPE_SQL})
       UNION ALL
       SELECT s.payload, s.business IS NULL FROM listing_siblings i JOIN events s ON s.message_id = i.message_id
       WHERE s.waba IS NULL AND s.kind = 'status'
         AND NOT EXISTS (SELECT 1 FROM listing_messages m WHERE m.message_id = i.message_id)
         AND ${STATUS_IN_SCOPE_SQL}`,
      [[...wabas]],
      this.ratingBound(),
    );
    // Each row as it ties (withRowTie): the rater places statuses naming no WABA by the stored ties only.
    return rows.map((row: Row) => withRowTie(row.payload as CoreEvent, row.untied === true));
  }

  async refreshStatistics(of: StatisticsOf): Promise<void> {
    // A sample of each table (30,000 rows by default): a fraction of a second, whatever its size.
    const tables = of === 'events' ? 'events' : 'units, pending_messages, findings';
    await this.withClient((client) => client.query(`ANALYZE ${tables}`), this.ratingBound());
  }

  async readEventChanges(): Promise<EventChanges> {
    // One statement: the marks and the clock of the same snapshot.
    const { rows } = await this.withClient(
      (client) =>
        client.query(
          `SELECT waba, seq FROM event_changes
           UNION ALL SELECT NULL, seq FROM event_clock WHERE id`,
        ),
      this.ratingBound(),
    );
    let seq = 0;
    let unnamedSeq = 0;
    const byWaba = new Map<string, number>();
    for (const row of rows as { waba: string | null; seq: string }[]) {
      if (row.waba === null) seq = Number(row.seq);
      else if (row.waba === '') unnamedSeq = Number(row.seq);
      else byWaba.set(row.waba, Number(row.seq));
    }
    return { seq, byWaba, unnamedSeq };
  }

  async countUnattributedStatuses(): Promise<number> {
    // The number (min() over events_business: one seek), and whether a stored message joins it
    // (joinedStatusesSql: one pass).
    const rows = await this.withoutJit(
      `WITH ${joinedStatusesSql()}
       SELECT count(*)::int AS n FROM events s
       WHERE s.waba IS NULL AND s.kind = 'status'
         AND ${numberOwnerSql(STATUS_BUSINESS_SQL, BYTE_ORDER)} IS NULL
         AND s.key NOT IN (SELECT key FROM joined_statuses)`,
      [],
    );
    return Number((rows[0] as Row).n);
  }

  /**
   * A read with just-in-time compilation off: the estimates of the look-ups per status naming no WABA (a
   * recursive query each) would have PostgreSQL compile the query (about half a second) for work that takes
   * milliseconds.
   */
  private async withoutJit(
    sql: string,
    params: unknown[],
    bound: Bound = { scope: 'each', ms: this.timeouts.readMs, operation: 'read' },
  ): Promise<Row[]> {
    return this.transaction(
      async (client) => {
        await client.query('SET LOCAL jit = off');
        return (await client.query(sql, params)).rows as Row[];
      },
      { bound },
    );
  }

  /** A rating's statements: each within `ratingMs` (long: a large portfolio's, never a silent server's). */
  private ratingBound(): Bound {
    return { scope: 'each', ms: this.timeouts.ratingMs, operation: 'read' };
  }

  async listWabas(business?: string): Promise<string[]> {
    checkFilterText('business', business);
    // With a number: its WABAs read from events_business one at a time, in byte order (a number has one
    // WABA, or a few), however many events tie it.
    const rows =
      business === undefined
        ? // One index seek a WABA (a skip scan), not a read of every event's.
          await this.readRows(
            `WITH RECURSIVE ${STORED_WABAS_CTE} SELECT waba FROM stored_wabas WHERE waba IS NOT NULL`,
          )
        : await this.readRows(NUMBER_WABAS_SQL, [business]);
    return rows.map((row: Row) => String(row.waba));
  }

  async listUnnamedStatusWabas(messageIds: readonly string[]): Promise<string[]> {
    if (messageIds.length === 0) return [];
    const ids = [...new Set(messageIds)];
    // As readListingFacts looks them up, with the same bound on the look-ups.
    return this.read(async (client) => {
      const stored = await readStoredWabas(client);
      if (ids.length * stored.length > UNNAMED_LOOKUP_LIMIT) return stored;
      return [...new Set([...(await readUnnamedStatusWabas(client, ids)).values()].flat())].sort();
    });
  }

  async listPlacingWabas(messageIds: readonly string[]): Promise<string[]> {
    if (messageIds.length === 0) return [];
    // As readListingFacts reads them: a seek of events_unnamed_status per id, in one statement.
    const rows = await this.readRows(
      `WITH RECURSIVE ${STORED_WABAS_CTE}
       SELECT ${STATUS_PLACEMENT_SQL} AS owner,
              ${inboundWabasSql('s', (column) => `coalesce(array_agg(${column}), '{}')`)} AS inbound_wabas
       FROM events s WHERE s.waba IS NULL AND s.message_id = ANY($1::text[]) AND s.kind = 'status'`,
      [[...new Set(messageIds)]],
    );
    const wabas = new Set<string>();
    for (const row of rows) {
      if (row.owner !== null) wabas.add(String(row.owner));
      for (const waba of (row.inbound_wabas ?? []) as string[]) wabas.add(waba);
    }
    return [...wabas].sort();
  }

  async replaceRating(
    rating: RatingRecord,
    result: { units: BillableUnit[]; pending: PendingMessage[]; findings: Finding[] },
  ): Promise<void> {
    assertInScope(rating, result);
    const scope = [...rating.wabas];
    await this.transaction(async (client) => {
      await insertRating(client, rating);
      await client.query('DELETE FROM units WHERE waba = ANY($1::text[])', [scope]);
      await client.query('DELETE FROM pending_messages WHERE waba = ANY($1::text[])', [scope]);
      await replaceFindings(client, rating, result.findings);
      await upsertUnits(client, result.units, rating.id, false);
      await upsertPending(client, result.pending, rating.id, false);
    }, this.ratingWrite(rating));
  }

  async applyRatingDiff(rating: RatingRecord, diff: RatingDiff): Promise<void> {
    assertInScope(rating, {
      units: diff.units.upsert,
      pending: diff.pending.upsert,
      findings: diff.findings ?? [],
    });
    const scope = [...rating.wabas];
    await this.transaction(async (client) => {
      await insertRating(client, rating);
      for (const [table, keys] of [
        ['units', diff.units.delete],
        ['pending_messages', diff.pending.delete],
      ] as const) {
        for (const chunk of chunks(keys)) {
          await client.query(
            `DELETE FROM ${table} AS row USING unnest($1::text[], $2::text[]) AS gone (waba, id)
              WHERE row.waba = gone.waba AND row.id = gone.id AND row.waba = ANY($3::text[])`,
            [chunk.map((key) => key.waba), chunk.map((key) => key.id), scope],
          );
        }
      }
      if (diff.findings !== undefined) await replaceFindings(client, rating, diff.findings);
      await upsertUnits(client, diff.units.upsert, rating.id, true);
      await upsertPending(client, diff.pending.upsert, rating.id, true);
    }, this.ratingWrite(rating));
  }

  /** A rating's write: each statement within `ratingMs` (a large portfolio's rewrite goes in many chunks). */
  private ratingWrite(rating: RatingRecord): TransactionOptions {
    return {
      rating,
      bound: { scope: 'each', ms: this.timeouts.ratingMs, operation: 'write' },
      isFenced: true,
    };
  }

  async listRatings(
    limit: number,
    wabas?: readonly string[],
    options: { isWithoutChanges?: boolean; reasons?: readonly string[]; cursor?: string } = {},
  ): Promise<RatingRecord[]> {
    checkFilterText('wabas', wabas);
    checkFilterText('reasons', options.reasons);
    const columns = options.isWithoutChanges === true ? RATING_COLUMNS_WITHOUT_CHANGES : '*';
    const conditions: string[] = [];
    const parameters: unknown[] = [checkLimit(limit)];
    if (wabas !== undefined) {
      // ?| : the scope (a JSON array of strings) holds any of them.
      parameters.push([...wabas]);
      conditions.push(`wabas ?| $${parameters.length}::text[]`);
    }
    if (options.reasons !== undefined) {
      parameters.push([...options.reasons]);
      conditions.push(`reason = ANY($${parameters.length}::text[])`);
    }
    if (options.cursor !== undefined) {
      // The rating the cursor names, if this listing holds it (the same conditions, the id as $1 in place of
      // the limit); the page goes on after it in the listing's order.
      const [after] = await this.readRows(
        `SELECT rated_at_ms, seq FROM ratings WHERE ${['id = $1', ...conditions].join(' AND ')}`,
        [ratingOfCursor(options.cursor), ...parameters.slice(1)],
      );
      if (after === undefined) throw badRatingsCursor();
      parameters.push(after.rated_at_ms, after.seq);
      conditions.push(
        `(rated_at_ms, seq) < ($${parameters.length - 1}::bigint, $${parameters.length}::bigint)`,
      );
    }
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const rows = await this.readRows(
      `SELECT ${columns} FROM ratings ${where} ORDER BY rated_at_ms DESC, seq DESC LIMIT $1`,
      parameters,
    );
    return rows.map(ratingFromRow);
  }

  async getRating(id: string): Promise<RatingRecord | undefined> {
    checkFilterText('id', id);
    const [row] = await this.readRows('SELECT * FROM ratings WHERE id = $1', [id]);
    return row === undefined ? undefined : ratingFromRow(row);
  }

  async listRatingChanges(
    ratingId: string,
    page: { limit: number; cursor?: string },
  ): Promise<RatingChangesPage> {
    const { limit, from } = changesPageRequest(ratingId, page);
    const rows = await this.readRows(
      'SELECT change FROM rating_changes WHERE rating_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3',
      [ratingId, from, limit + 1],
    );
    return changesPage(
      rows.map((row) => row.change),
      limit,
      from,
      ratingId,
    );
  }

  async queryUnits(
    filter: UnitFilter,
    page: { limit: number; cursor?: string; order?: UnitOrder },
  ): Promise<UnitPage> {
    const limit = checkLimit(page.limit);
    return this.read((client) => unitPage(client, filter, limit, page.cursor, page.order ?? 'opened_at'));
  }

  async exportUnits(
    filter: UnitFilter,
    onPage: (units: BillableUnit[]) => void | Promise<void>,
    pageSize = EXPORT_PAGE_SIZE,
    order: UnitOrder = 'opened_at',
  ): Promise<number> {
    const limit = checkLimit(pageSize);
    // Every page on one connection, in one REPEATABLE READ transaction: its snapshot is taken at the first
    // page's query and kept to the last, whatever commits meanwhile (a rating `onPage` awaits included). Each
    // page's query is bounded; the time the client takes to read a page is not (the service cuts a client
    // that stalls: docs/service.md).
    return this.transaction(
      async (client) => {
        let count = 0;
        let cursor: string | undefined;
        do {
          const page = await unitPage(client, filter, limit, cursor, order);
          count += page.units.length;
          if (page.units.length > 0) await onPage(page.units);
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        return count;
      },
      {
        begin: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
        bound: { scope: 'each', ms: this.timeouts.readMs, operation: 'read', idleMs: null },
      },
    );
  }

  async totals(filter: UnitFilter): Promise<Record<string, CurrencyTotals>> {
    const params = new Params();
    const rows = await this.readRows(
      `SELECT currency, category, count(*) AS units, count(*) - count(amount_micros) AS unpriced,
              coalesce(sum(amount_micros), 0) AS amount_micros
       FROM units ${whereSql(unitClauses(filter, params))}
       GROUP BY currency, category
       ORDER BY currency, category`,
      params.values,
    );
    return foldTotals(rows);
  }

  async analytics(query: AnalyticsQuery): Promise<AnalyticsPoint[]> {
    const timeZone = checkTimeZone(query.timeZone ?? 'UTC');
    const dimensions = query.dimensions.map((d) => [d, dimensionSql(d, postgresJsonText)] as const);
    const select = dimensions.map(([d, sql]) => `, ${sql} AS d_${d}`).join('');
    const group = dimensions.map(([, sql]) => `, ${sql}`).join('');
    const params = new Params();
    const lists = analyticsListFilters(query, postgresJsonText);
    const listClauses = () =>
      lists.map((list) => `${list.sql} = ANY(${params.add([...list.values])}::text[])`);
    let sql: string;
    let zoneAt: number | undefined; // the place of the time zone among the parameters, if given
    if (query.granularity === 'HALF_HOUR') {
      // Half hours are cut in UTC, as in SQLite (Meta's half-hour buckets are UTC-aligned).
      sql = `SELECT u.opened_at_ms - u.opened_at_ms % ${HALF_HOUR_MS} AS start_ms,
                    u.opened_at_ms - u.opened_at_ms % ${HALF_HOUR_MS} + ${HALF_HOUR_MS} AS end_ms,
                    count(*) AS units, ${UNPRICED_UNITS_SQL} AS unpriced,
                    coalesce(sum(u.amount_micros), 0) AS amount_micros ${select}
             FROM units u ${whereSql([...unitClauses(query, params, 'u.'), ...listClauses()])}
             GROUP BY 1${group}`;
    } else {
      // Local day or month of each unit in the query's time zone; its start and end back to UTC instants
      // (a 23 h or 25 h day across a DST change).
      zoneAt = params.values.length;
      const tz = params.add(timeZone);
      const field = params.add(query.granularity === 'DAILY' ? 'day' : 'month');
      const step = params.add(query.granularity === 'DAILY' ? '1 day' : '1 month');
      const where = whereSql([...unitClauses(query, params, 'u.'), ...listClauses()]);
      sql = `SELECT (extract(epoch FROM u.bucket AT TIME ZONE ${tz}::text) * 1000)::bigint AS start_ms,
                    (extract(epoch FROM (u.bucket + ${step}::interval) AT TIME ZONE ${tz}::text) * 1000)::bigint
                      AS end_ms,
                    count(*) AS units, ${UNPRICED_UNITS_SQL} AS unpriced,
                    coalesce(sum(u.amount_micros), 0) AS amount_micros ${select}
             FROM (
               SELECT *, date_trunc(${field}::text,
                        (timestamptz 'epoch' + opened_at_ms * interval '1 millisecond') AT TIME ZONE ${tz}::text)
                        AS bucket
               FROM units u ${where}) u
             GROUP BY u.bucket${group}`;
    }
    const rows = await this.readRows(sql, params.values).catch((error: unknown) => {
      // A name ICU still reads but PostgreSQL's tz database dropped (`US/Pacific-New`): the zone it names.
      const zone = canonicalTimeZone(timeZone);
      if (zoneAt === undefined || zone === timeZone || !isUnknownTimeZone(error)) throw error;
      const values = [...params.values];
      values[zoneAt] = zone;
      return this.readRows(sql, values);
    });
    return sortPoints(
      rows.map((row: Row) => ({
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
    const rows =
      filter.wabas === undefined
        ? await this.readRows('SELECT waba, business, display_number FROM business_numbers', [])
        : await this.readRows(
            'SELECT waba, business, display_number FROM business_numbers WHERE waba = ANY($1::text[])',
            [[...filter.wabas]],
          );
    return sortedBusinessNumbers(
      rows.map((row: Row) => ({
        waba: String(row.waba),
        business: String(row.business),
        displayNumber: String(row.display_number),
      })),
    );
  }

  async listPending(filter: UnitFilter): Promise<PendingMessage[]> {
    // Pending messages have no category, type or market yet: those filters do not apply to them.
    const params = new Params();
    const rows = await this.readRows(
      `SELECT * FROM pending_messages ${whereSql(commonClauses(filter, params, '', 'sent_at_ms'))}
       ORDER BY sent_at_ms, id`,
      params.values,
    );
    return rows.map((row: Row) => ({
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
        ? await this.readRows('SELECT payload FROM findings ORDER BY seq')
        : await this.readRows('SELECT payload FROM findings WHERE waba = ANY($1::text[]) ORDER BY seq', [
            [...filter.wabas],
          ]);
    return rows.map((row: Row) => row.payload as Finding);
  }

  /**
   * `work` in one transaction. A live rating is derived data (recomputed from the events at every start): it
   * commits without waiting for the WAL flush (synchronous_commit off), so a crash can lose only the last
   * such commits, never an event; everything else waits for the flush. `begin` opens it (`BEGIN` unless a
   * read asks for its isolation); a failure rolls it back, and the client is released either way.
   *
   * With a `bound`, its statements wait on the server no longer than it says (`Bound`; an ingest's, BEGIN to
   * COMMIT, within the bound: a webhook waits for it): the client gives up on a silent server (a partition
   * drops packets and never says so), the server itself cancels a statement running longer (held on a lock)
   * and ends the session if the client goes quiet mid-transaction (so that a client cut off by a partition
   * leaves no session holding rows locked). Past its bound it fails with `StoreTimeoutError`; a connection
   * the client stopped waiting on is dropped, never rolled back on.
   *
   * `isFenced` (with a writer fence): the statement that opens it also reads the fence's row `FOR SHARE` (no
   * round trip of its own), and the transaction is refused (`WriterFence.fencedOut`) unless the epoch is this
   * process's; the row stays share-locked until it ends, so a new holder's advance waits for it.
   */
  private async transaction<T>(
    work: (client: Queryable) => Promise<T>,
    { rating, begin = 'BEGIN', bound, isFenced = false }: TransactionOptions = {},
  ): Promise<T> {
    const fence = isFenced ? this.writerFence : undefined;
    return this.withClient(async (queries, client, markBroken) => {
      const settings =
        bound === undefined
          ? ''
          : `; SET LOCAL statement_timeout = ${bound.ms}` +
            (bound.idleMs === null
              ? ''
              : `; SET LOCAL idle_in_transaction_session_timeout = ${bound.idleMs ?? bound.ms}`);
      // Several statements: pg answers each (an array); the fence's read is the last.
      const opened = (await queries.query(
        `${begin}${settings}${fence === undefined ? '' : '; SELECT epoch FROM writer_fence FOR SHARE'}`,
      )) as pg.QueryResult | pg.QueryResult[];
      try {
        if (fence !== undefined) {
          const read = Array.isArray(opened) ? opened[opened.length - 1]! : opened;
          const found = read.rows[0] === undefined ? undefined : Number((read.rows[0] as Row).epoch);
          if (fence.epoch === undefined || found !== fence.epoch) throw fence.fencedOut(found);
        }
        if (rating?.reason === 'live') await queries.query('SET LOCAL synchronous_commit = off');
        const result = await work(queries);
        await queries.query('COMMIT');
        return result;
      } catch (error) {
        if (!(error instanceof StoreTimeoutError && error.isConnectionLost)) {
          // Not bound to the deadline, which may have passed: its own bound of the same length, if any.
          const rollback = client.query({ text: 'ROLLBACK', query_timeout: bound?.ms } as pg.QueryConfig);
          await rollback.catch(markBroken); // the connection is unusable: the pool must not hand it out again
        }
        throw error;
      }
    }, bound);
  }

  /**
   * `work` with a connection of the pool, within `bound` if any (the wait for the connection counted), the
   * client released after: as broken when it was lost (the pool ends it, never hands it out again) — the
   * server went away, the client gave up waiting on it, or `work` said so (`markBroken`: a failed rollback).
   */
  private async withClient<T>(
    work: (queries: Queryable, client: pg.PoolClient, markBroken: (error: Error) => void) => Promise<T>,
    bound: Bound | undefined,
  ): Promise<T> {
    const startedMs = performance.now();
    const client = bound === undefined ? await this.pool.connect() : await connectWithin(this.pool, bound);
    let broken: Error | undefined;
    // A connection lost while checked out (the server restarted, a proxy cut it) emits 'error' on the client:
    // unheard, that event would end the process. Heard, the query under way fails (the store's error) and
    // the pool gets the client back as broken.
    const onLost = (error: Error) => {
      broken = error;
    };
    client.on('error', onLost);
    try {
      return await work(bound === undefined ? client : withBound(client, startedMs, bound), client, onLost);
    } catch (error) {
      // Still waiting on the server: unusable (the server rolls back what it had when it ends the session).
      if (error instanceof StoreTimeoutError && error.isConnectionLost) broken = error;
      throw error;
    } finally {
      client.off('error', onLost);
      client.release(broken);
    }
  }
}

/**
 * A connection of `pool` within the bound (`ms`, or a `Bound`'s), or a `StoreTimeoutError`: during a partition
 * the pool opens a new connection (the silent one was dropped), which waits for the pool's own connection
 * timeout; the bound counts that wait too. A connection that comes after the bound goes back to the pool.
 */
async function connectWithin(pool: pg.Pool, bound: Bound | number): Promise<pg.PoolClient> {
  const { ms, operation } = typeof bound === 'number' ? { ms: bound, operation: 'write' as const } : bound;
  const connecting = pool.connect();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreTimeoutError(ms, { isConnectionLost: false, operation })), ms);
  });
  try {
    return await Promise.race([connecting, late]);
  } catch (error) {
    connecting.then((client) => client.release()).catch(() => undefined);
    // The pool's own connection timeout may say it first: 10 s at most (openPostgresStore), shorter than a
    // read's or a rating's bound, so the error names the time it waited, never the longer bound (a read
    // answered 503 after 10 s once said "within 60 s").
    const waitedMs = Math.min(ms, pool.options.connectionTimeoutMillis || ms);
    throw error instanceof StoreTimeoutError
      ? error
      : /timeout/i.test(String((error as Error).message))
        ? new StoreTimeoutError(waitedMs, { isConnectionLost: false, cause: error, operation })
        : error;
  } finally {
    clearTimeout(timer);
  }
}

/** PostgreSQL's SQLSTATE for a statement cancelled by `statement_timeout` (query_canceled). */
const QUERY_CANCELED = '57014';

/** PostgreSQL's refusal of a time zone name it does not know (`time zone "X" not recognized`). */
function isUnknownTimeZone(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return code === '22023' && typeof message === 'string' && /^time zone ".*" not recognized$/.test(message);
}

/** The zone a time zone name names, as ICU canonicalises it (`US/Pacific-New` → `America/Los_Angeles`). */
function canonicalTimeZone(timeZone: string): string {
  return new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
}

/**
 * `client` within `bound`, counted from `startedMs`: each query waits at most for what is left of the whole
 * bound, or for the bound itself (`each`) — pg's own `query_timeout`, which abandons the query on this
 * connection — and fails with `StoreTimeoutError` past it: `isConnectionLost` when the client gave up (the
 * connection still awaits the server's answer), not when the server cancelled the statement itself
 * (`statement_timeout`: the connection is usable).
 */
export function withBound(client: pg.PoolClient, startedMs: number, bound: Bound): Queryable {
  const { ms, operation } = bound;
  return {
    async query(statement, values) {
      const nowMs = performance.now();
      const deadlineMs = bound.scope === 'whole' ? startedMs + ms : nowMs + ms;
      const leftMs = Math.ceil(deadlineMs - nowMs);
      if (leftMs <= 0) throw new StoreTimeoutError(ms, { isConnectionLost: false, operation });
      try {
        // (`query_timeout` per query is pg's, not in its types.)
        const { name, text } =
          typeof statement === 'string' ? { name: undefined, text: statement } : statement;
        return await client.query({ name, text, values, query_timeout: leftMs } as pg.QueryConfig);
      } catch (error) {
        const { code, message } = error as { code?: unknown; message?: unknown };
        if (code === QUERY_CANCELED && String(message).includes('statement timeout')) {
          throw new StoreTimeoutError(ms, { isConnectionLost: false, cause: error, operation });
        }
        // pg's own query_timeout ("Query read timeout") is this bound, even when its timer fired a moment
        // before `performance.now()` reaches the deadline (timers may run up to a millisecond early: the
        // error then went out raw, a 503 without its reason — seen in CI).
        if (performance.now() >= deadlineMs || /^Query read timeout$/i.test(String(message))) {
          throw new StoreTimeoutError(ms, { isConnectionLost: true, cause: error, operation });
        }
        throw error;
      }
    },
  };
}

/**
 * A stored event, its `events.business` (the number a trusted copy tied, or null), `events.is_trusted` (a
 * trusted writer stored a copy) and `events.source` (its first writer, never rewritten).
 */
interface StoredEvent {
  event: CoreEvent;
  tie: string | null;
  /** `events.tied_user`: the canonical user of the pair `tie` ties, or null. */
  tiedUser: string | null;
  isTrusted: boolean;
  source: string;
}

/** Each group's outcome (its `relistedWabas` still to be named) and the rows it changed that place statuses. */
interface GroupWrites {
  outcomes: IngestOutcome[];
  changes: RowChange[][];
  /**
   * Owners of the numbers the writes may tie or untie, read before them (ListingFacts.ownersBefore); none read
   * when no item needs its `relistedWabas` (`isRelistingNeededBy`).
   */
  ownersBefore: Map<string, string | null>;
}

/**
 * Inside a transaction, for the items of a group in order, each as if ingested alone: an event whose key is new
 * is stored as given; a copy of a stored event (its key stored before, or earlier in the group) is a
 * duplicate, merged into the stored row, which is rewritten only when the merge changes it (payload, `at_ms`,
 * `business`: the number a trusted copy tied, `tiedBusinessAfterMerge`; `is_trusted`: a trusted writer stored
 * a copy, `isTrustedAfterMerge`; the rest stays as first stored). The stored rows a copy may change are locked
 * first (FOR UPDATE), so that a concurrent writer's merge of the same event waits for this one and merges into
 * its result: no copy's fields are lost. `isRelisting`: the owners `relistedWabas` needs are read (not for an
 * import: `isRelistingNeededBy`).
 */
async function insertEventGroups(
  client: Queryable,
  groups: readonly EventInput[][],
  isRelisting: boolean,
): Promise<GroupWrites> {
  const firsts = firstsOf(groups);
  // Before anything is written: the owners of the numbers these events may tie.
  const ownersBefore = isRelisting
    ? await readOwners(client, [...tiedKeysOf(groups.flat())])
    : new Map<string, string | null>();
  const insertedKeys = new Set<string>();
  for (const batch of chunks(inKeyOrder(firsts))) {
    // A key another transaction is inserting: this waits for it to commit, then inserts nothing.
    // The rows as one JSON text (an object a row), written by one JSON.stringify: as arrays, pg would send
    // each payload escaped again as an element of array text. Read as jsonb (`jsonb_to_recordset`): the text
    // is parsed once and each payload taken as the jsonb it already is (`json_to_recordset` parsed the text,
    // then each payload's text again for its jsonb column); the same rows (docs/benchmarks.md §3,
    // "Thirty-seventh session"). A text too long for one jsonb value is read as json (recordsetOf).
    const rowsText = JSON.stringify(batch.map(eventRow));
    const { rows } = await client.query(
      prepared(`INSERT INTO events (${EVENT_COLUMNS})
       SELECT * FROM ${recordsetOf('$1', rowsText)} AS r (${EVENT_RECORD})
       ON CONFLICT (key) DO NOTHING
       RETURNING key`),
      [rowsText],
    );
    for (const row of rows as Row[]) insertedKeys.add(String(row.key));
  }
  return mergeCopies(client, groups, firsts, insertedKeys, ownersBefore, isRelisting);
}

/** The columns of `events` an ingest writes, and their types as `jsonb_to_recordset` reads them. */
const EVENT_COLUMNS =
  'key, kind, waba, message_id, at_ms, payload, received_at_ms, source, business, tied_user, is_trusted';
const EVENT_RECORD = `key text, kind text, waba text, message_id text, at_ms bigint, payload jsonb,
  received_at_ms bigint, source text, business text, tied_user text, is_trusted boolean`;

/**
 * Rows sent as a JSON text longer than this (UTF-16 units) are read by json_to_recordset, not jsonb's: as
 * jsonb the rows are one value, which holds at most 268,435,455 bytes (up to 6 a character of the text: `0,`
 * is 12), where json makes each row's payload a jsonb value of its own, as the ingest did before the
 * thirty-seventh session (three statuses of 90 MB each, stored before, were refused). A batch of Meta's
 * events is a few MB: read as jsonb.
 */
const JSONB_ROWS_MAX_CHARS = 32 * 1024 * 1024;

/** How the rows of `parameter`, sent as `text`, are read: `jsonb_to_recordset`, or json's for a long text. */
function recordsetOf(parameter: string, text: string): string {
  return text.length > JSONB_ROWS_MAX_CHARS
    ? `json_to_recordset(${parameter}::json)`
    : `jsonb_to_recordset(${parameter}::jsonb)`;
}

/** An event's row of `events` as first stored, an object of EVENT_COLUMNS for `jsonb_to_recordset`. */
function eventRow(e: EventInput): Record<string, unknown> {
  const business = tiedBusinessOf(e.event, e.isBusinessTied);
  return {
    key: e.key,
    kind: e.event.kind,
    waba: e.event.waba ?? null,
    message_id: 'id' in e.event ? e.event.id : null,
    at_ms: e.event.atMs,
    payload: e.event,
    received_at_ms: e.receivedAtMs,
    source: e.source,
    business,
    tied_user: tiedUserOf(e.event, business),
    is_trusted: isTrustedWriter(e),
  };
}

/** The first input of each key, in the groups' order. */
function firstsOf(groups: readonly EventInput[][]): Map<string, EventInput> {
  const firsts = new Map<string, EventInput>();
  for (const events of groups)
    for (const input of events) if (!firsts.has(input.key)) firsts.set(input.key, input);
  return firsts;
}

/**
 * In key order: two transactions inserting or locking the same keys take them in one order (no deadlock).
 * JavaScript's order (UTF-16 code units), the same for every path that inserts events.
 */
function inKeyOrder(firsts: ReadonlyMap<string, EventInput>): EventInput[] {
  return [...firsts.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * After the first input of each key was inserted where its key was new (`insertedKeys`), with the owners read
 * before (`ownersBefore`, when `isRelisting`): the copies merged into the stored rows, as `insertEventGroups`
 * says.
 */
async function mergeCopies(
  client: Queryable,
  groups: readonly EventInput[][],
  firsts: ReadonlyMap<string, EventInput>,
  insertedKeys: ReadonlySet<string>,
  ownersBefore: Map<string, string | null>,
  isRelisting: boolean,
): Promise<GroupWrites> {
  const ordered = inKeyOrder(firsts);
  /** Each key's event as stored before the copies: as inserted above, or the stored row. */
  const base = new Map<string, StoredEvent>();
  for (const key of insertedKeys) {
    const first = firsts.get(key)!;
    const tie = tiedBusinessOf(first.event, first.isBusinessTied);
    base.set(key, {
      event: first.event,
      tie,
      tiedUser: tiedUserOf(first.event, tie),
      isTrusted: isTrustedWriter(first),
      source: first.source,
    });
  }
  const storedKeys = ordered.map((input) => input.key).filter((key) => !insertedKeys.has(key));
  // Read without a lock first: most copies add nothing (a file imported again), and locking a row writes it.
  await readStoredEvents(client, storedKeys, base, '');
  let { outcomes, changed, changes } = mergeCopiesInOrder(groups, firsts, insertedKeys, base);
  // The stored rows a copy changes are locked, in key order, and read again: a concurrent writer's merge into
  // one (committed meanwhile, or waited for here) is merged into, never written over. A copy that adds nothing
  // to a row adds nothing to what merges make of it later either (mergeCopies keeps what each copy says).
  const toLock = [...changed.keys()].filter((key) => !insertedKeys.has(key)).sort();
  if (toLock.length > 0) {
    await readStoredEvents(client, toLock, base, ' ORDER BY key FOR UPDATE');
    ({ outcomes, changed, changes } = mergeCopiesInOrder(groups, firsts, insertedKeys, base));
  }
  // The ties the rewrites below add or take away: their owners before them (the inserts tied only keys read
  // above, so for any other key this is still the owner the group found).
  if (isRelisting) {
    const rewritten = new Set(changes.flat().flatMap(rewrittenTieKeys));
    const unread = [...rewritten].filter((key) => !ownersBefore.has(key));
    for (const [key, owner] of await readOwners(client, unread)) ownersBefore.set(key, owner);
  }
  for (const batch of chunks([...changed])) {
    const rowsText = JSON.stringify(
      batch.map(([key, row]) => ({
        key,
        payload: row.event,
        at_ms: row.event.atMs,
        business: row.tie,
        tied_user: row.tiedUser,
        is_trusted: row.isTrusted,
      })),
    );
    await client.query(
      prepared(`UPDATE events e SET payload = u.payload, at_ms = u.at_ms, business = u.business,
         tied_user = u.tied_user, is_trusted = u.is_trusted
       FROM ${recordsetOf('$1', rowsText)}
         AS u (key text, payload jsonb, at_ms bigint, business text, tied_user text, is_trusted boolean)
       WHERE e.key = u.key`),
      [rowsText],
    );
  }
  return { outcomes, changes, ownersBefore };
}

/**
 * The owner of each tie key (`tieKey`: a number, `numberOwnerSql`, one index-only seek of events_business; a
 * number and a user, `pairOwnerSql`, one seek of events_business_user), or null.
 */
async function readOwners(client: Queryable, keys: readonly string[]): Promise<Map<string, string | null>> {
  const owners = new Map<string, string | null>();
  if (keys.length === 0) return owners;
  const split = keys.map(splitTieKey);
  const { rows } = await client.query(
    prepared(`SELECT n.i, CASE WHEN n.u IS NULL THEN ${numberOwnerSql('n.number', BYTE_ORDER)}
                      ELSE ${pairOwnerSql('n.number', 'n.u', BYTE_ORDER)} END AS owner
     FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS n(number, u, i)`),
    [split.map(([number]) => number), split.map(([, user]) => user)],
  );
  for (const row of rows as Row[])
    owners.set(keys[Number(row.i) - 1]!, row.owner === null ? null : String(row.owner));
  return owners;
}

/** Every WABA that has events, sorted (a loose scan of events_waba). */
async function readStoredWabas(client: Queryable): Promise<string[]> {
  const { rows } = await client.query(
    prepared(`WITH RECURSIVE ${STORED_WABAS_CTE} SELECT waba FROM stored_wabas WHERE waba IS NOT NULL`),
  );
  return (rows as Row[]).map((row) => String(row.waba));
}

/** What `relistedWabas` needs beyond the changes, read after the group's writes (ListingFacts). */
async function readListingFacts(
  client: Queryable,
  changes: readonly RowChange[],
  ownersBefore: ReadonlyMap<string, string | null>,
): Promise<ListingFacts> {
  const ownersAfter = await readOwners(client, keysLosingTies(changes));
  const unnamedStatuses = new Map<string, UnnamedStatus[]>();
  const ids = joiningMessageIds(changes);
  // The WABAs that may list the statuses naming no WABA the group stored or changed; past the bound on the
  // look-ups, every stored WABA instead.
  const unnamedIds = unnamedStatusIds(changes);
  let unnamedStatusWabas: Map<string, string[]> | null = new Map();
  let storedWabas: string[] = [];
  if (unnamedIds.length > 0) {
    const stored = await readStoredWabas(client);
    if (unnamedIds.length * stored.length > UNNAMED_LOOKUP_LIMIT) {
      unnamedStatusWabas = null;
      storedWabas = stored;
    } else {
      unnamedStatusWabas = await readUnnamedStatusWabas(client, unnamedIds);
    }
  }
  // The WABAs of inbounds of their ids, unless every stored WABA is named anyway.
  const isEveryWaba = unnamedStatusWabas === null;
  if (ids.length > 0) {
    const inboundWabas = isEveryWaba
      ? 'NULL'
      : inboundWabasSql('s', (column) => `coalesce(array_agg(${column}), '{}')`);
    // One seek of events_unnamed_status per message id.
    const { rows } = await client.query(
      prepared(`WITH RECURSIVE ${STORED_WABAS_CTE}
       SELECT s.message_id, s.is_trusted, s.source, ${STATUS_PLACEMENT_SQL} AS owner,
              ${inboundWabas} AS inbound_wabas
       FROM events s WHERE s.waba IS NULL AND s.message_id = ANY($1::text[]) AND s.kind = 'status'`),
      [ids],
    );
    for (const row of rows as Row[]) {
      const id = String(row.message_id);
      unnamedStatuses.set(id, [
        ...(unnamedStatuses.get(id) ?? []),
        {
          isTrusted: row.is_trusted === true,
          source: String(row.source),
          owner: row.owner === null ? null : String(row.owner),
          inboundWabas: row.inbound_wabas === null ? [] : (row.inbound_wabas as string[]),
        },
      ]);
    }
  }
  return { ownersBefore, ownersAfter, unnamedStatuses, unnamedStatusWabas, storedWabas };
}

/**
 * For each of `ids`, the WABAs that may list its statuses naming no WABA (`unnamedStatusWabasOf`): the stored
 * WABAs holding a message event of the id (a few key seeks per stored WABA and id), and the WABAs tying each
 * business number those statuses give (one skip scan of events_business per number).
 */
async function readUnnamedStatusWabas(
  client: Queryable,
  ids: readonly string[],
): Promise<Map<string, string[]>> {
  const holders = await client.query(
    prepared(`WITH RECURSIVE ${STORED_WABAS_CTE}
     SELECT DISTINCT ids.value AS id, w.waba AS waba
     FROM unnest($1::text[]) AS ids(value) CROSS JOIN stored_wabas w CROSS JOIN events m
     WHERE w.waba IS NOT NULL AND m.key IN (${messageKeysSql('w.waba', 'ids.value')})`),
    [[...ids]],
  );
  // Each status's number, and those its merged copies named (namesOfCopies: the number a merge replaced).
  const statuses = (
    await client.query(
      prepared(`SELECT s.message_id AS id, s.payload->>'business' AS business,
              s.payload->'namesOfCopies' AS names_of_copies
       FROM events s WHERE s.waba IS NULL AND s.message_id = ANY($1::text[]) AND s.kind = 'status'`),
      [[...ids]],
    )
  ).rows as Row[];
  const tiedBy = new Map<string, string[]>();
  for (const number of numbersOf(statuses)) {
    const { rows } = await client.query(prepared(NUMBER_WABAS_SQL), [number]);
    tiedBy.set(
      number,
      (rows as Row[]).map((row) => String(row.waba)),
    );
  }
  return unnamedStatusWabasOf(ids, holders.rows as Row[], statuses, (number) => tiedBy.get(number) ?? []);
}

/** Reads the stored events of `keys` into `into` (`suffix`: an ORDER BY and a locking clause, or nothing). */
async function readStoredEvents(
  client: Queryable,
  keys: readonly string[],
  into: Map<string, StoredEvent>,
  suffix: string,
): Promise<void> {
  for (const batch of chunks(keys)) {
    const { rows } = await client.query(
      prepared(`SELECT key, payload, business, tied_user, is_trusted, source FROM events
       WHERE key = ANY($1::text[])${suffix}`),
      [batch],
    );
    for (const row of rows as Row[]) {
      into.set(String(row.key), {
        event: row.payload as CoreEvent,
        tie: row.business === null ? null : String(row.business),
        tiedUser: row.tied_user === null ? null : String(row.tied_user),
        isTrusted: row.is_trusted === true,
        source: String(row.source),
      });
    }
  }
}

/**
 * The outcome of each group, its copies merged in order into `base` (each key's stored event, or the first
 * occurrence this transaction inserted), the rows that changed (their event, or only their tie or trust), as
 * they end, and each group's changes of the rows that place statuses naming no WABA (`isPlacingRow`).
 */
function mergeCopiesInOrder(
  groups: readonly EventInput[][],
  firsts: ReadonlyMap<string, EventInput>,
  insertedKeys: ReadonlySet<string>,
  base: ReadonlyMap<string, StoredEvent>,
): { outcomes: IngestOutcome[]; changed: Map<string, StoredEvent>; changes: RowChange[][] } {
  const current = new Map(base);
  const changed = new Map<string, StoredEvent>();
  const changes: RowChange[][] = [];
  const outcomes = groups.map((events): IngestOutcome => {
    const inserted: CoreEvent[] = [];
    const merged = new Map<string, CoreEvent>();
    const rows: RowChange[] = [];
    changes.push(rows);
    for (const input of events) {
      // The group holding a key's first occurrence inserted it; every other occurrence is a copy.
      if (firsts.get(input.key) === input && insertedKeys.has(input.key)) {
        inserted.push(input.event);
        if (isPlacingRow(input.event)) {
          const row = base.get(input.key)!;
          const change: RowChange = {
            event: input.event,
            source: row.source,
            isInserted: true,
            tieBefore: null,
            tie: row.tie,
            tiedUserBefore: null,
            tiedUser: row.tiedUser,
            wasTrusted: false,
            isTrusted: row.isTrusted,
          };
          if (isPlacingChange(change)) rows.push(change);
        }
        continue;
      }
      const stored = current.get(input.key);
      if (stored === undefined) throw new Error(`event ${input.key} was neither inserted nor found stored`);
      const next = mergedCopy(stored.event, input.event);
      // A copy that adds nothing to the event may still be a trusted one that ties its number, or that makes
      // the row trusted.
      const tie = tiedBusinessAfterMerge(stored.tie, next ?? stored.event, input);
      const tiedUser = tiedUserOf(next ?? stored.event, tie);
      const isTrusted = isTrustedAfterMerge(stored.isTrusted, input);
      if (
        next === undefined &&
        tie === stored.tie &&
        tiedUser === stored.tiedUser &&
        isTrusted === stored.isTrusted
      )
        continue;
      const row = { event: next ?? stored.event, tie, tiedUser, isTrusted, source: stored.source };
      current.set(input.key, row);
      changed.set(input.key, row);
      if (next !== undefined) merged.set(input.key, next);
      if (isPlacingRow(stored.event)) {
        const change: RowChange = {
          event: row.event,
          source: row.source,
          isInserted: false,
          tieBefore: stored.tie,
          tie,
          tiedUserBefore: stored.tiedUser,
          tiedUser,
          wasTrusted: stored.isTrusted,
          isTrusted,
        };
        if (isPlacingChange(change)) rows.push(change);
      }
    }
    // Named by the whole group, once every row is written (ingestGroup).
    return {
      inserted,
      duplicates: events.length - inserted.length,
      merged: [...merged.values()],
      relistedWabas: [],
    };
  });
  return { outcomes, changed, changes };
}

async function insertRating(client: Queryable, rating: RatingRecord): Promise<void> {
  await client.query(
    `INSERT INTO ratings (id, rated_at_ms, reason, wabas, as_of_rules, rate_cards, totals, changes,
       totals_by_waba, accounts_digest, rate_cards_digest, engine_digest, setup_digest, events_seq)
     VALUES ($1, $2, $3, $4::jsonb, $5, $6::jsonb, $7::json, $8::json, $9::json, $10, $11, $12, $13, $14)`,
    [
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
    ],
  );
  const changes = rating.changedUnits ?? [];
  for (let start = 0; start < changes.length; start += BATCH_ROWS) {
    await client.query(
      `INSERT INTO rating_changes (rating_id, seq, change)
       SELECT $1, $2::integer + t.n - 1, t.value FROM json_array_elements($3::json) WITH ORDINALITY AS t(value, n)`,
      [rating.id, start, JSON.stringify(changes.slice(start, start + BATCH_ROWS))],
    );
  }
}

/** A `ratings` row as a record. */
function ratingFromRow(row: Row): RatingRecord {
  const rating: RatingRecord = {
    id: String(row.id),
    ratedAtMs: Number(row.rated_at_ms),
    reason: String(row.reason),
    wabas: row.wabas as string[],
    asOfRules: row.as_of_rules === null ? null : String(row.as_of_rules),
    rateCards: row.rate_cards as string[],
    totals: totalsFromStored(row.totals),
  };
  if (row.changes !== null) rating.changes = row.changes;
  if (row.totals_by_waba !== null) rating.totalsByWaba = totalsByWabaFromStored(row.totals_by_waba);
  if (row.accounts_digest !== null) rating.accountsDigest = String(row.accounts_digest);
  if (row.rate_cards_digest !== null) rating.rateCardsDigest = String(row.rate_cards_digest);
  if (row.engine_digest !== null) rating.engineDigest = String(row.engine_digest);
  if (row.setup_digest !== null) rating.setupDigest = String(row.setup_digest);
  if (row.events_seq !== null) rating.eventsSeq = Number(row.events_seq);
  return rating;
}

/** Inside a transaction: the scope's findings become `findings` (of the rating `rating.id`). */
async function replaceFindings(client: Queryable, rating: RatingRecord, findings: readonly Finding[]) {
  const scope = [...rating.wabas];
  await client.query('DELETE FROM findings WHERE waba = ANY($1::text[])', [scope]);
  // Findings that name no WABA belong to the rating that produced them: a later rating whose scope
  // covers that whole earlier scope replaces them (jsonb <@: every element of the left is in the right).
  await client.query(
    `DELETE FROM findings
     WHERE waba IS NULL AND rating_id IN (SELECT id FROM ratings WHERE id <> $1 AND wabas <@ $2::jsonb)`,
    [rating.id, JSON.stringify(scope)],
  );
  for (const batch of chunks(findings)) {
    // WITH ORDINALITY keeps the findings' order in their sequence numbers.
    await client.query(
      `INSERT INTO findings (rating_id, waba, code, payload)
       SELECT $4::text, f.waba, f.code, f.payload
       FROM unnest($1::text[], $2::text[], $3::json[]) WITH ORDINALITY AS f (waba, code, payload, n)
       ORDER BY f.n`,
      [batch.map(findingWaba), batch.map((f) => f.code), batch.map((f) => JSON.stringify(f)), rating.id],
    );
  }
}

const UNIT_COLUMNS = `id, waba, business, user_id, unit, pricing_model, era, country, market, category, type,
  opened_at_ms, expires_at_ms, closed_at_ms, messages, rate_micros, amount_micros, currency, rate_card, tier,
  is_market_inferred, is_category_from_webhook, rule, rating_id`;

/** `isUpsert`: a unit whose id is already stored is overwritten. */
async function upsertUnits(
  client: Queryable,
  all: readonly BillableUnit[],
  ratingId: string,
  isUpsert: boolean,
): Promise<void> {
  const onConflict = isUpsert
    ? `ON CONFLICT (waba, id) DO UPDATE SET ${UNIT_COLUMNS.split(',')
        .map((column) => column.trim())
        .filter((column) => column !== 'id' && column !== 'waba')
        .map((column) => `${column} = EXCLUDED.${column}`)
        .join(', ')}`
    : '';
  for (const units of chunks(all)) {
    await client.query(
      `INSERT INTO units (${UNIT_COLUMNS})
       SELECT *, $24::text FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bigint[],
         $14::bigint[], $15::jsonb[], $16::bigint[], $17::bigint[], $18::text[], $19::text[], $20::jsonb[],
         $21::boolean[], $22::boolean[], $23::text[])
       ${onConflict}`,
      [
        units.map((u) => u.id),
        units.map((u) => u.waba),
        units.map((u) => u.business),
        units.map((u) => u.user),
        units.map((u) => u.unit),
        units.map((u) => u.pricingModel),
        units.map((u) => u.era),
        units.map((u) => u.country),
        units.map((u) => u.market),
        units.map((u) => u.category),
        units.map((u) => u.type),
        units.map((u) => u.openedAtMs),
        units.map((u) => u.expiresAtMs),
        units.map((u) => u.closedAtMs ?? null),
        units.map((u) => JSON.stringify(u.messages)),
        units.map((u) => u.rateMicros),
        units.map((u) => u.amountMicros),
        units.map((u) => u.currency),
        units.map((u) => u.rateCard),
        units.map((u) => (u.tier === undefined ? null : JSON.stringify(u.tier))),
        units.map((u) => u.isMarketInferred ?? null),
        units.map((u) => (u.isCategoryFromWebhook ? true : null)),
        units.map((u) => u.rule),
        ratingId,
      ],
    );
  }
}

async function upsertPending(
  client: Queryable,
  all: readonly PendingMessage[],
  ratingId: string,
  isUpsert: boolean,
): Promise<void> {
  const onConflict = isUpsert
    ? `ON CONFLICT (waba, id) DO UPDATE SET business = EXCLUDED.business,
         user_id = EXCLUDED.user_id, sent_at_ms = EXCLUDED.sent_at_ms, rating_id = EXCLUDED.rating_id`
    : '';
  for (const pending of chunks(all)) {
    await client.query(
      `INSERT INTO pending_messages (id, waba, business, user_id, sent_at_ms, rating_id)
       SELECT *, $6::text FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
       ${onConflict}`,
      [
        pending.map((p) => p.id),
        pending.map((p) => p.waba),
        pending.map((p) => p.business),
        pending.map((p) => p.user),
        pending.map((p) => p.sentAtMs),
        ratingId,
      ],
    );
  }
}

/**
 * One transaction for a group: bodies inserted together (a body repeated in the group, or already stored,
 * is a duplicate), then the events of every item that is not a duplicate, the first of each key winning.
 * A group of 1 to BATCH_ROWS events sends its bodies, the owners' read, its events and its display numbers
 * as one statement (`writeGroupAtOnce`), a larger one, or one without events, each as its own
 * (`writeGroupInSteps`).
 */
async function ingestGroup(client: Queryable, items: readonly IngestItem[]): Promise<IngestItemOutcome[]> {
  const firstBySha = new Map<string, number>();
  items.forEach((item, index) => {
    if (item.raw && !firstBySha.has(item.raw.sha256)) firstBySha.set(item.raw.sha256, index);
  });
  // Items whose events may be written: events alone, and the first occurrence of each body (if it is new).
  const isCandidate = items.map(
    (item, index) => item.raw === null || firstBySha.get(item.raw.sha256) === index,
  );
  const candidateEvents = items.reduce(
    (sum, item, index) => sum + (isCandidate[index] ? item.events.length : 0),
    0,
  );
  // A group without events (bodies that carry none) goes in steps too: the one statement's plan costs the
  // backend more to start than the round trips it saves there (≈ 45 → 85 µs of backend CPU a webhook, measured:
  // docs/benchmarks.md, "Thirty-fourth session").
  const { idBySha, writes, isWritten } =
    candidateEvents > 0 && candidateEvents <= BATCH_ROWS
      ? await writeGroupAtOnce(client, items, firstBySha, isCandidate)
      : await writeGroupInSteps(client, items, firstBySha);
  const { outcomes, changes } = writes;
  // Not when no item needs them (`wameter import`): every outcome's `relistedWabas` stays `[]`.
  if (isRelistingNeededBy(items) && changes.some((rows) => rows.length > 0)) {
    // The WABAs whose listing the group changed, read before it commits.
    const relisted = relistedWabas(
      outcomes.map((outcome, index) => ({ changes: changes[index]!, ownWabas: ownWabasOf(outcome) })),
      await readListingFacts(client, changes.flat(), writes.ownersBefore),
    );
    outcomes.forEach((outcome, index) => {
      if (items[index]!.isRelistingNeeded !== false) outcome.relistedWabas = relisted[index]!;
    });
  }
  return items.map((item, index) => {
    if (item.raw === null) return { rawId: null, isDuplicate: false, ...outcomes[index]! };
    if (!isWritten[index]) {
      // Stored before together with its events, in one transaction: all of them are already here.
      return {
        rawId: idBySha.get(item.raw.sha256)!,
        isDuplicate: true,
        inserted: [],
        duplicates: item.events.length,
        merged: [],
        relistedWabas: [],
      };
    }
    return { rawId: idBySha.get(item.raw.sha256)!, isDuplicate: false, ...outcomes[index]! };
  });
}

/** What a group's writes found: each body's id, its events' writes, the items written. */
interface GroupStored {
  idBySha: Map<string, number>;
  writes: GroupWrites;
  /** Per item: its events were written (events alone, or the first occurrence of a body stored now). */
  isWritten: boolean[];
}

/** The first occurrence of each body of a group, in the group's order. */
function firstBodies(
  items: readonly IngestItem[],
  firstBySha: ReadonlyMap<string, number>,
): RawWebhookInput[] {
  return [...firstBySha.values()].map((index) => items[index]!.raw!);
}

/**
 * The bodies' parameters of the statements that insert them: each column as an array, and the bodies as one
 * bytea, each cut out of it by its place (1-based) and length: a Buffer parameter goes in binary, byte for
 * byte, where pg sends a bytea[] parameter as array text, each body hex-encoded.
 */
function bodyParameters(firsts: readonly RawWebhookInput[]): unknown[] {
  const bodies = firsts.map((r) => toBuffer(r.body));
  const starts: number[] = [];
  let start = 1;
  for (const body of bodies) {
    starts.push(start);
    start += body.length;
  }
  return [
    firsts.map((r) => r.receivedAtMs),
    starts,
    bodies.map((body) => body.length),
    firsts.map((r) => r.sha256),
    firsts.map((r) => storableText(r.parseError)),
    Buffer.concat(bodies),
  ];
}

/** SQL: the bodies ($1–$6 of `bodyParameters`) inserted, in the group's order; a stored one is not. */
const INSERT_BODIES_SQL = `INSERT INTO raw_webhooks (received_at_ms, body, sha256, parse_error)
       SELECT r.received_at_ms, substring($6::bytea FROM r.start FOR r.length), r.sha256, r.parse_error
       FROM unnest($1::bigint[], $2::integer[], $3::integer[], $4::text[], $5::text[])
         WITH ORDINALITY AS r (received_at_ms, start, length, sha256, parse_error, n)
       ORDER BY r.n
       ON CONFLICT (sha256) DO NOTHING RETURNING id, sha256`;

/**
 * The ids of the bodies stored before (`missing`), into `idBySha`: read in a statement of its own, whose
 * snapshot sees a concurrent delivery of the same body that the insert waited for.
 */
async function readStoredBodyIds(
  client: Queryable,
  missing: readonly string[],
  idBySha: Map<string, number>,
): Promise<void> {
  if (missing.length === 0) return;
  const existing = await client.query(
    prepared('SELECT id, sha256 FROM raw_webhooks WHERE sha256 = ANY($1::text[])'),
    [missing],
  );
  for (const row of existing.rows as Row[]) idBySha.set(String(row.sha256), Number(row.id));
}

/**
 * The display numbers of the items written, the last naming a number winning (one row each: a statement may
 * not update a row twice), in the order each number is first named.
 */
function displayNumbersOf(items: readonly IngestItem[], isWritten: readonly boolean[]): BusinessNumber[] {
  const numbers = new Map<string, BusinessNumber>();
  items.forEach((item, index) => {
    if (!isWritten[index]) return;
    for (const number of businessNumbersOfItem(item)) {
      numbers.set(JSON.stringify([number.waba, number.business]), number);
    }
  });
  return [...numbers.values()];
}

/**
 * A group's writes one statement at a time: its bodies, then (knowing which are new) its events
 * (`insertEventGroups`) and the display numbers of the items written (`writeEventsAndNumbers`).
 */
async function writeGroupInSteps(
  client: Queryable,
  items: readonly IngestItem[],
  firstBySha: ReadonlyMap<string, number>,
): Promise<GroupStored> {
  const idBySha = new Map<string, number>();
  const newShas = new Set<string>();
  if (firstBySha.size > 0) {
    const firsts = firstBodies(items, firstBySha);
    // A concurrent delivery of the same body (another process) waits on the unique index, then inserts
    // nothing.
    const { rows } = await client.query(prepared(INSERT_BODIES_SQL), bodyParameters(firsts));
    for (const row of rows as Row[]) {
      idBySha.set(String(row.sha256), Number(row.id));
      newShas.add(String(row.sha256));
    }
    await readStoredBodyIds(
      client,
      firsts.map((r) => r.sha256).filter((sha) => !idBySha.has(sha)),
      idBySha,
    );
  }
  return writeEventsAndNumbers(client, items, firstBySha, idBySha, newShas);
}

/** After the bodies' insert (`newShas`: the bodies it stored), the items' events and display numbers. */
async function writeEventsAndNumbers(
  client: Queryable,
  items: readonly IngestItem[],
  firstBySha: ReadonlyMap<string, number>,
  idBySha: Map<string, number>,
  newShas: ReadonlySet<string>,
): Promise<GroupStored> {
  const isWritten = items.map(
    (item, index) =>
      item.raw === null || (newShas.has(item.raw.sha256) && firstBySha.get(item.raw.sha256) === index),
  );
  const writes = await insertEventGroups(
    client,
    items.map((item, index) => (isWritten[index] ? item.events : [])),
    isRelistingNeededBy(items),
  );
  const numbers = displayNumbersOf(items, isWritten);
  if (numbers.length > 0) {
    await client.query(
      prepared(`INSERT INTO business_numbers (waba, business, display_number)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
       ON CONFLICT (waba, business) DO UPDATE SET display_number = excluded.display_number
               WHERE business_numbers.display_number <> excluded.display_number`),
      [numbers.map((n) => n.waba), numbers.map((n) => n.business), numbers.map((n) => n.displayNumber)],
    );
  }
  return { idBySha, writes, isWritten };
}

/**
 * A group's writes as `writeGroupInSteps` makes them, in one statement when every body of the group is new
 * (one round trip, not four; measured: docs/benchmarks.md, "Thirty-fourth session"): the bodies inserted, the
 * owners of the numbers the events may tie (`readOwners`), read from the statement's snapshot — before any of
 * its writes, as `insertEventGroups` reads them — and, only if the statement inserted every body (`all_new`),
 * the events of every item (`isCandidate`: events alone, the first occurrence of each body), the first of
 * each key in key order (`inKeyOrder`), and their display numbers (`displayNumbersOf`): what
 * `writeGroupInSteps` writes when every body is new. What only the inserts tell (the rows stored before, the
 * copies' merges) follows as in `insertEventGroups`. A body already stored (a delivery again, or one a
 * concurrent transaction stored: the insert waits for it), and the statement writes no event and no number:
 * they are written after, one statement at a time (`writeEventsAndNumbers`), as `writeGroupInSteps` does.
 */
async function writeGroupAtOnce(
  client: Queryable,
  items: readonly IngestItem[],
  firstBySha: ReadonlyMap<string, number>,
  isCandidate: readonly boolean[],
): Promise<GroupStored> {
  const firsts = firstBodies(items, firstBySha);
  const groups = items.map((item, index) => (isCandidate[index] ? item.events : []));
  const eventFirsts = firstsOf(groups);
  const isRelisting = isRelistingNeededBy(items);
  // The owners `relistedWabas` needs: none read when no item needs it.
  const tieKeys = isRelisting ? [...tiedKeysOf(groups.flat())] : [];
  const split = tieKeys.map(splitTieKey);
  const numbers = displayNumbersOf(items, isCandidate);
  const rowsText = JSON.stringify(inKeyOrder(eventFirsts).map(eventRow));
  const { rows } = await client.query(
    prepared(`WITH bodies AS (${INSERT_BODIES_SQL}),
     all_new AS (SELECT count(*) = $13 AS is_true FROM bodies),
     events_stored AS (
       INSERT INTO events (${EVENT_COLUMNS})
       SELECT * FROM ${recordsetOf('$9', rowsText)} AS r (${EVENT_RECORD})
       WHERE (SELECT is_true FROM all_new)
       ON CONFLICT (key) DO NOTHING
       RETURNING key),
     numbers_stored AS (
       INSERT INTO business_numbers (waba, business, display_number)
       SELECT * FROM unnest($10::text[], $11::text[], $12::text[])
       WHERE (SELECT is_true FROM all_new)
       ON CONFLICT (waba, business) DO UPDATE SET display_number = excluded.display_number
               WHERE business_numbers.display_number <> excluded.display_number)
     SELECT 'body' AS what, id AS n, sha256 AS text FROM bodies
     UNION ALL SELECT 'event', NULL, key FROM events_stored
     UNION ALL
     SELECT 'owner', n.i, CASE WHEN n.u IS NULL THEN ${numberOwnerSql('n.number', BYTE_ORDER)}
                               ELSE ${pairOwnerSql('n.number', 'n.u', BYTE_ORDER)} END
     FROM unnest($7::text[], $8::text[]) WITH ORDINALITY AS n (number, u, i)`),
    [
      ...bodyParameters(firsts),
      split.map(([number]) => number),
      split.map(([, user]) => user),
      rowsText,
      numbers.map((n) => n.waba),
      numbers.map((n) => n.business),
      numbers.map((n) => n.displayNumber),
      firsts.length,
    ],
  );
  const idBySha = new Map<string, number>();
  const newShas = new Set<string>();
  const insertedKeys = new Set<string>();
  const ownersBefore = new Map<string, string | null>();
  for (const row of rows as Row[]) {
    if (row.what === 'body') {
      idBySha.set(String(row.text), Number(row.n));
      newShas.add(String(row.text));
    } else if (row.what === 'event') {
      insertedKeys.add(String(row.text));
    } else {
      ownersBefore.set(tieKeys[Number(row.n) - 1]!, row.text === null ? null : String(row.text));
    }
  }
  if (newShas.size < firsts.length) {
    // A body stored before: nothing but the new bodies was written.
    await readStoredBodyIds(
      client,
      firsts.map((r) => r.sha256).filter((sha) => !idBySha.has(sha)),
      idBySha,
    );
    return writeEventsAndNumbers(client, items, firstBySha, idBySha, newShas);
  }
  const writes = await mergeCopies(client, groups, eventFirsts, insertedKeys, ownersBefore, isRelisting);
  return { idBySha, writes, isWritten: [...isCandidate] };
}

/**
 * One page of units in `order` (UNIT_ORDERS), after `cursor`: `queryUnits` and `exportUnits`. Each order is
 * read through an index of its key (units_opened, units_amount), so a page is a seek and a short scan, however
 * many units the store holds. Currencies compare byte by byte (COLLATE "C"), as SQLite compares them.
 */
async function unitPage(
  client: Queryable,
  filter: UnitFilter,
  limit: number,
  cursor: string | undefined,
  order: UnitOrder,
): Promise<UnitPage> {
  const params = new Params();
  const clauses = unitClauses(filter, params);
  if (cursor !== undefined) {
    const after = decodeUnitCursor(cursor, order);
    const timeKey = `${params.add(after.openedAtMs)}::bigint, ${params.add(after.id)}::text, ${params.add(after.waba)}::text`;
    if (after.order === 'opened_at') {
      clauses.push(`(opened_at_ms, id, waba) > (${timeKey})`);
    } else {
      const currency = `${params.add(after.currency)}::text COLLATE "C"`;
      const amount = AMOUNT_DESC_KEY_SQL.replace(
        'amount_micros',
        `${params.add(after.amountMicros)}::bigint`,
      );
      clauses.push(
        `(currency COLLATE "C", ${AMOUNT_DESC_KEY_SQL}, opened_at_ms, id, waba) > (${currency}, ${amount}, ${timeKey})`,
      );
    }
  }
  const orderBy =
    order === 'opened_at'
      ? 'opened_at_ms, id, waba'
      : `currency COLLATE "C", ${AMOUNT_DESC_KEY_SQL}, opened_at_ms, id, waba`;
  const { rows } = await client.query(
    `SELECT * FROM units ${whereSql(clauses)} ORDER BY ${orderBy} LIMIT ${params.add(limit + 1)}`,
    params.values,
  );
  const units = rows.slice(0, limit).map(unitFromRow);
  const last = units.at(-1);
  return { units, nextCursor: rows.length > limit && last ? encodeUnitCursor(order, last) : null };
}

// ---- filters ---------------------------------------------------------------------------------------------

/** Numbered parameters ($1, $2, …) in the order the clauses use them. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

function whereSql(clauses: string[]): string {
  return clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`;
}

/** The filters units and pending messages share: scope, WABA, business, user and a time range. */
function commonClauses(filter: UnitFilter, params: Params, prefix: string, timeColumn: string): string[] {
  checkFilter(filter);
  const clauses: string[] = [];
  if (filter.wabas !== undefined)
    clauses.push(`${prefix}waba = ANY(${params.add([...filter.wabas])}::text[])`);
  if (filter.waba !== undefined) clauses.push(`${prefix}waba = ${params.add(filter.waba)}`);
  if (filter.business !== undefined) clauses.push(`${prefix}business = ${params.add(filter.business)}`);
  if (filter.user !== undefined) {
    clauses.push(
      filter.joinedNumber === undefined
        ? `${prefix}user_id = ${params.add(filter.user)}`
        : `${prefix}user_id IN (${params.add(filter.user)}, ${params.add(filter.joinedNumber)})`,
    );
  }
  if (filter.fromMs !== undefined)
    clauses.push(`${prefix}${timeColumn} >= ${params.add(filter.fromMs)}::bigint`);
  if (filter.toMs !== undefined) clauses.push(`${prefix}${timeColumn} < ${params.add(filter.toMs)}::bigint`);
  const period = filter.localPeriod;
  if (period !== undefined) {
    // The whole period's bounds first, so the time index is read only between them; then each zone's own.
    const ranges = [...period.zones, period.others];
    const inRange = (range: { fromMs: number; toMs: number }) =>
      `${prefix}${timeColumn} >= ${params.add(range.fromMs)}::bigint AND ${prefix}${timeColumn} < ${params.add(range.toMs)}::bigint`;
    clauses.push(
      inRange({
        fromMs: Math.min(...ranges.map((range) => range.fromMs)),
        toMs: Math.max(...ranges.map((range) => range.toMs)),
      }),
    );
    const terms = period.zones.map(
      (zone) => `(${prefix}waba = ANY(${params.add([...zone.wabas])}::text[]) AND ${inRange(zone)})`,
    );
    const listed = params.add(period.zones.flatMap((zone) => zone.wabas));
    terms.push(`(NOT (${prefix}waba = ANY(${listed}::text[])) AND ${inRange(period.others)})`);
    clauses.push(`(${terms.join(' OR ')})`);
  }
  return clauses;
}

function unitClauses(filter: UnitFilter, params: Params, prefix = ''): string[] {
  const clauses = commonClauses(filter, params, prefix, 'opened_at_ms');
  if (filter.category !== undefined) clauses.push(`${prefix}category = ${params.add(filter.category)}`);
  if (filter.type !== undefined) clauses.push(`${prefix}type = ${params.add(filter.type)}`);
  if (filter.market !== undefined) clauses.push(`${prefix}market = ${params.add(filter.market)}`);
  return clauses;
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
    country: row.country as string | null,
    market: row.market as string | null,
    category: row.category as BillableUnit['category'],
    type: row.type as BillableUnit['type'],
    openedAtMs: Number(row.opened_at_ms),
    expiresAtMs: row.expires_at_ms as number | null,
    messages: row.messages as string[],
    rateMicros: row.rate_micros as number | null,
    amountMicros: row.amount_micros as number | null,
    currency: String(row.currency),
    rateCard: row.rate_card as string | null,
    rule: String(row.rule),
  };
  if (row.closed_at_ms !== null) unit.closedAtMs = Number(row.closed_at_ms);
  if (row.tier !== null) unit.tier = tierFromStored(row.tier);
  if (row.is_market_inferred !== null) unit.isMarketInferred = Boolean(row.is_market_inferred);
  if (row.is_category_from_webhook === true) unit.isCategoryFromWebhook = true;
  return unit;
}

function rawFromRow(row: Row): StoredRawWebhook {
  return {
    id: Number(row.id),
    receivedAtMs: Number(row.received_at_ms),
    body: new Uint8Array(row.body as Buffer),
    sha256: String(row.sha256),
    parseError: row.parse_error as string | null,
  };
}

function* chunks<T>(items: readonly T[]): Generator<T[]> {
  for (let start = 0; start < items.length; start += BATCH_ROWS) yield items.slice(start, start + BATCH_ROWS);
}

// ---- checks shared by the methods ------------------------------------------------------------------------

// ---- cursor ----------------------------------------------------------------------------------------------
