import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { eventKey, type CoreEvent, type OutboundEvent, type StatusEvent } from '../../core/events.js';
import { openStore } from '../open-store.js';
import type { EventInput } from '../store.js';
import { generatedIngests, runStoreContract } from '../store.contract.js';
import { eventChangeTriggerSql, openSqliteStore } from './sqlite-store.js';
import {
  BACKFILL_INPUTS,
  BACKFILLED_ROWS,
  expectBackfilledListings,
} from '../../../test/support/business-backfill.js';
import { OLD_CHANGES, expectChangesMoved } from '../../../test/support/rating-changes-upgrade.js';
import {
  expectBusinessNumbersFilled,
  seedBeforeBusinessNumbers,
} from '../../../test/support/business-numbers-upgrade.js';
import {
  TRUST_BACKFILL_INPUTS,
  TRUST_BACKFILLED_ROWS,
  expectTrustBackfilledListings,
} from '../../../test/support/message-trust-backfill.js';
import { expectDeletionsMarked } from '../../../test/support/event-deletion-marks.js';
import { ONE_INBOUND, listingOf } from '../../../test/support/store-events.js';
import { ratingRecord } from '../../../test/support/ratings.js';
import { billableUnit } from '../../../test/support/units.js';
import { makeUnwritable } from '../../../test/support/unwritable.js';

/** What migrations 18 and 19 add, taken away again: a store as an older version left it (the tests below go back further). */
const BEFORE_EVENT_MARKS =
  'DROP TRIGGER events_changed_on_delete; DROP TRIGGER IF EXISTS events_changed_on_insert; DROP TRIGGER IF EXISTS events_changed_on_update; DROP TABLE event_changes;' +
  'DROP TABLE event_clock; ALTER TABLE ratings DROP COLUMN events_seq; ALTER TABLE ratings DROP COLUMN setup_digest;';

/** What migrations 10 and 20 add to the ties, taken away again: the index of ties as versions 7–9 left it. */
const BEFORE_TIED_USER =
  'DROP INDEX events_business_waba_user; ALTER TABLE events DROP COLUMN tied_user;' +
  'CREATE INDEX events_business ON events (business, waba) WHERE business IS NOT NULL;';

runStoreContract('SQLite (:memory:)', () => openSqliteStore(':memory:'));
// On a file too: some paths exist only there (an export reads through a connection of its own).
const contractDir = mkdtempSync(join(tmpdir(), 'wameter-sqlite-contract-'));
let contractFiles = 0;
afterAll(() => rmSync(contractDir, { recursive: true, force: true }));
runStoreContract('SQLite (file)', () => openSqliteStore(join(contractDir, `${++contractFiles}.db`)));

/**
 * The marks of migration 18's triggers on INSERT and UPDATE (dropped by migrations 21 and 22), kept by the
 * released triggers themselves in tables of their own beside the store's (`ref_event_clock`,
 * `ref_event_changes`): every change of the events, as versions 18–20 marked them. And a count of the rewrites
 * (`ref_rewrites`): all of them, those that merged a copy (the payload changed), those that moved the row's tie
 * (`business`), and those whose OLD row's tie names a status naming no WABA that the NEW row's does not (a look-up
 * only the OLD row makes decides '' there). `raw` is a connection to the store's file.
 */
function keepReferenceMarks(raw: Database.Database): void {
  const asReference = (sql: string) =>
    sql
      .replace(/\bevent_(clock|changes)\b/g, 'ref_event_$1')
      .replace(/\bevents_changed_on_/g, 'ref_changed_on_');
  raw.exec(`
    CREATE TABLE ref_event_clock (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL) STRICT;
    INSERT INTO ref_event_clock (id, seq) SELECT 1, seq FROM event_clock;
    CREATE TABLE ref_event_changes (waba TEXT PRIMARY KEY, seq INTEGER NOT NULL) STRICT, WITHOUT ROWID;
    INSERT INTO ref_event_changes SELECT * FROM event_changes;
    ${asReference(eventChangeTriggerSql('INSERT'))}
    ${asReference(eventChangeTriggerSql('UPDATE'))}
    CREATE TABLE ref_rewrites (all_ INTEGER, merged INTEGER, tie_moved INTEGER, old_tie_unnamed INTEGER);
    INSERT INTO ref_rewrites VALUES (0, 0, 0, 0);
    CREATE TRIGGER ref_count_rewrites AFTER UPDATE ON events
    BEGIN
      UPDATE ref_rewrites SET all_ = all_ + 1, merged = merged + (OLD.payload <> NEW.payload),
        tie_moved = tie_moved + (OLD.business IS NOT NEW.business),
        old_tie_unnamed = old_tie_unnamed + (OLD.waba IS NOT NULL AND OLD.business IS NOT NEW.business
          AND EXISTS (SELECT 1 FROM events u WHERE json_extract(u.payload, '$.business') = OLD.business || ''
                        AND u.waba IS NULL AND u.kind = 'status'));
    END;`);
}

/** The marks of `raw`'s store (`prefix` '') or of its reference (`'ref_'`): the clock, and each WABA's mark. */
function marksIn(raw: Database.Database, prefix: '' | 'ref_'): { seq: number; marks: Map<string, number> } {
  const seq = Number(raw.prepare(`SELECT seq FROM ${prefix}event_clock WHERE id = 1`).pluck().get());
  const rows = raw.prepare(`SELECT waba, seq FROM ${prefix}event_changes`).raw().all() as [string, number][];
  return { seq, marks: new Map(rows) };
}

describe('the marks of the events an ingest inserts or rewrites (migrations 21 and 22: once a group, no trigger)', () => {
  const SEED = 20261206;

  it(`are those of the released triggers for what readers compare, over generated ingests (seed ${SEED})`, async () => {
    // Readers compare a mark with a clock read between groups (isRatingCurrent; readEventChanges waits for the
    // write lock): what must be equal is which group last marked each WABA and '', and which groups advanced the
    // clock — not the numbers, the trigger's one a row, the ingest's one a group.
    const dir = mkdtempSync(join(tmpdir(), 'wameter-sqlite-marks-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const { step } = generatedIngests();
    let run = 0;
    /** The rewrites of every run (`ref_rewrites`), and the groups that rewrote rows and inserted none. */
    const rewrites = { all: 0, merged: 0, tieMoved: 0, oldTieUnnamed: 0, groupsRewritingOnly: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        const path = join(dir, `${++run}.db`);
        const store = await openSqliteStore(path);
        const raw = new Database(path);
        try {
          keepReferenceMarks(raw);
          /** For each of store and reference: the clock after each group (index 0: before the first). */
          const clocks = { store: [marksIn(raw, '').seq], reference: [marksIn(raw, 'ref_').seq] };
          /** The group whose change a mark is (the first whose clock after reaches it; 0: before the first). */
          const groupsOf = (marks: Map<string, number>, after: readonly number[]) =>
            new Map([...marks].map(([waba, seq]) => [waba, after.findIndex((clock) => clock >= seq)]));
          for (const [index, items] of steps.entries()) {
            const outcomes = await store.ingestBatch(
              items.map((events, i) => ({ raw: null, events, isRelistingNeeded: (index + i) % 2 === 0 })),
            );
            const isRewriting = marksIn(raw, 'ref_').seq > clocks.reference.at(-1)!;
            if (isRewriting && outcomes.every((outcome) => outcome.inserted.length === 0))
              rewrites.groupsRewritingOnly += 1;
            const stored = await store.readEventChanges();
            const reference = marksIn(raw, 'ref_');
            clocks.store.push(stored.seq);
            clocks.reference.push(reference.seq);
            const marks = new Map(stored.byWaba);
            if (stored.unnamedSeq > 0) marks.set('', stored.unnamedSeq);
            expect(marks).toEqual(marksIn(raw, '').marks);
            expect(groupsOf(marks, clocks.store)).toEqual(groupsOf(reference.marks, clocks.reference));
            // The clock advances in the groups that changed an event, and only in those.
            expect(stored.seq > clocks.store.at(-2)!).toBe(reference.seq > clocks.reference.at(-2)!);
          }
          const [all, merged, tieMoved, oldTieUnnamed] = raw
            .prepare('SELECT * FROM ref_rewrites')
            .raw()
            .get() as number[];
          rewrites.all += all!;
          rewrites.merged += merged!;
          rewrites.tieMoved += tieMoved!;
          rewrites.oldTieUnnamed += oldTieUnnamed!;
        } finally {
          raw.close();
          await store.close();
        }
      }),
      { seed: SEED, numRuns: 150 },
    );
    // The generated ingests rewrite rows, and in every way the trigger on UPDATE marked: copies of another
    // writer merged (444 rewrites, 353 merging, 111 moving a tie, 22 where only the OLD row's tie names a status
    // naming no WABA; 165 groups rewriting only, at this seed), not as a bound.
    expect(rewrites.merged).toBeGreaterThan(100);
    expect(rewrites.tieMoved).toBeGreaterThan(30);
    expect(rewrites.oldTieUnnamed).toBeGreaterThan(5);
    expect(rewrites.groupsRewritingOnly).toBeGreaterThan(30);
  }, 120_000);

  it('keep the marks a version 20 store wrote, and mark what is inserted after the upgrade past them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-sqlite-marks-upgrade-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const T0 = Date.parse('2025-07-10T09:00:00Z');
    const input = (event: CoreEvent): EventInput => ({
      key: eventKey(event),
      event,
      receivedAtMs: 2,
      source: 'import',
    });
    const message = (id: string, waba: string, business: string): CoreEvent => ({
      kind: 'inbound',
      atMs: T0,
      waba,
      business,
      user: '1',
      id,
      hasReferral: false,
    });
    // Rows as version 20 stored them, its trigger on INSERT marking each: copied from another store's file.
    const scratchPath = join(dir, 'scratch.db');
    const scratch = await openSqliteStore(scratchPath);
    await scratch.ingestEvents([
      input(message('wamid.a', 'W1', 'PN1')),
      input(message('wamid.b', 'W2', 'PN2')),
      input({ kind: 'status', atMs: T0 + 1, id: 'wamid.s', status: 'delivered', business: 'PN9', user: '1' }),
    ]);
    await scratch.close();
    const path = join(dir, 'older.db');
    await (await openSqliteStore(path)).close();
    const old = new Database(path);
    old.exec(`${eventChangeTriggerSql('INSERT')}; DELETE FROM schema_migrations WHERE version >= 21;`);
    old.exec(
      `ATTACH '${scratchPath}' AS scratch; INSERT INTO events SELECT * FROM scratch.events; DETACH scratch`,
    );
    const before = marksIn(old, '');
    old.close();
    expect(before.seq).toBe(3);
    expect(before.marks).toEqual(
      new Map([
        ['W1', 1],
        ['W2', 2],
        ['', 3],
      ]),
    );

    const store = await openSqliteStore(path);
    onTestFinished(() => store.close());
    const upgraded = await store.readEventChanges();
    expect(upgraded).toEqual({
      seq: 3,
      byWaba: new Map([
        ['W1', 1],
        ['W2', 2],
      ]),
      unnamedSeq: 3,
    });
    const db = new Database(path, { readonly: true });
    onTestFinished(() => {
      db.close();
    });
    expect(
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name").pluck().all(),
    ).toEqual(['events_changed_on_delete']);

    // A WABA's message of another id, tying another number: its WABA only.
    await store.ingestEvents([input(message('wamid.c', 'W3', 'PN3'))]);
    const third = await store.readEventChanges();
    expect(third).toEqual({
      seq: 4,
      byWaba: new Map([
        ['W1', 1],
        ['W2', 2],
        ['W3', 4],
      ]),
      unnamedSeq: 3,
    });
    // A tie of the number the stored status names (it places that status), and a message of its id.
    await store.ingestEvents([input(message('wamid.d', 'W1', 'PN9'))]);
    expect(await store.readEventChanges()).toEqual({
      seq: 5,
      byWaba: new Map([
        ['W1', 5],
        ['W2', 2],
        ['W3', 4],
      ]),
      unnamedSeq: 5,
    });
    await store.ingestEvents([input(message('wamid.s', 'W2', 'PN2'))]);
    expect(await store.readEventChanges()).toEqual({
      seq: 6,
      byWaba: new Map([
        ['W1', 5],
        ['W2', 6],
        ['W3', 4],
      ]),
      unnamedSeq: 6,
    });
    // A rewrite is marked too, by its group since migration 22 (an earlier copy of a stored message).
    await store.ingestEvents([input({ ...message('wamid.c', 'W3', 'PN3'), atMs: T0 - 1 })]);
    expect(await store.readEventChanges()).toEqual({
      seq: 7,
      byWaba: new Map([
        ['W1', 5],
        ['W2', 6],
        ['W3', 7],
      ]),
      unnamedSeq: 6,
    });
  });

  it('keep the marks a version 21 store wrote, its trigger on UPDATE dropped, and mark rewrites past them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-sqlite-marks-upgrade-21-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const T0 = Date.parse('2025-07-10T09:00:00Z');
    const sent = (business: string): CoreEvent => ({
      kind: 'outbound',
      atMs: T0,
      waba: 'W1',
      business,
      user: '1',
      id: 'wamid.a',
      template: 'utility',
    });
    const input = (event: CoreEvent, source = 'import'): EventInput => ({
      key: eventKey(event),
      event,
      receivedAtMs: 2,
      source,
      ...(source.startsWith('api:') ? { isBusinessTied: false } : {}),
    });
    // A store as version 21 left it: its inserts marked by the group, its rewrites by migration 18's trigger.
    const path = join(dir, 'older.db');
    const older = await openSqliteStore(path);
    await older.ingestEvents([input(sent('PN2'))]);
    await older.ingestEvents([
      input({ kind: 'status', atMs: T0 + 1, id: 'wamid.s', status: 'delivered', business: 'PN2', user: '1' }),
    ]);
    await older.close();
    const old = new Database(path);
    old.exec(`${eventChangeTriggerSql('UPDATE')}; DELETE FROM schema_migrations WHERE version >= 22;`);
    // A rewrite under version 21, marked by the trigger: W1, and '' (W1's message ties PN2, which the status
    // naming no WABA names).
    old.exec("UPDATE events SET received_at_ms = 3 WHERE key = 'W1:outbound:wamid.a'");
    const before = marksIn(old, '');
    old.close();
    expect(before).toEqual({
      seq: 3,
      marks: new Map([
        ['W1', 3],
        ['', 3],
      ]),
    });

    const store = await openSqliteStore(path);
    onTestFinished(() => store.close());
    expect(await store.readEventChanges()).toEqual({ seq: 3, byWaba: new Map([['W1', 3]]), unnamedSeq: 3 });
    const db = new Database(path, { readonly: true });
    onTestFinished(() => {
      db.close();
    });
    expect(
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name").pluck().all(),
    ).toEqual(['events_changed_on_delete']);
    expect(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(22);

    // A limited key's copy naming PN1 merges into W1's message (the smaller number kept), which then ties no
    // number: only its OLD row's tie, PN2, names the status naming no WABA — '' is marked with W1, once.
    const outcome = await store.ingestEvents([input(sent('PN1'), 'api:one')]);
    expect(outcome.merged).toHaveLength(1);
    expect(db.prepare("SELECT business FROM events WHERE waba = 'W1'").pluck().get()).toBeNull();
    expect(await store.readEventChanges()).toEqual({ seq: 4, byWaba: new Map([['W1', 4]]), unnamedSeq: 4 });
    // The same copy again changes nothing: no mark.
    await store.ingestEvents([input(sent('PN1'), 'api:one')]);
    expect(await store.readEventChanges()).toEqual({ seq: 4, byWaba: new Map([['W1', 4]]), unnamedSeq: 4 });
    // A trusted copy naming PN1 ties the row to PN1 (a rewrite whose NEW row ties a number no status naming no
    // WABA names, and its OLD row none): W1 only.
    await store.ingestEvents([input(sent('PN1'))]);
    expect(db.prepare("SELECT business FROM events WHERE waba = 'W1'").pluck().get()).toBe('PN1');
    expect(await store.readEventChanges()).toEqual({ seq: 5, byWaba: new Map([['W1', 5]]), unnamedSeq: 4 });
  });
});

describe('events deleted by hand', () => {
  it('mark their WABA, and what may move a status naming no WABA, as stored ones do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-sqlite-delete-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'deleted.db');
    const store = await openSqliteStore(path);
    onTestFinished(() => store.close());
    await expectDeletionsMarked(store, async (condition) => {
      const raw = new Database(path);
      raw.exec(`DELETE FROM events WHERE ${condition}`);
      raw.close();
    });
  });
});

describe('SQLite on disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-sqlite-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes in WAL mode and fsyncs every commit', async () => {
    const path = join(dir, 'durable.db');
    const store = await openSqliteStore(path);
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const migrations = db.prepare('SELECT version, name FROM schema_migrations').all();
      expect(migrations).toEqual([
        { version: 1, name: 'initial schema' },
        { version: 2, name: 'events without the message_id index' },
        { version: 3, name: 'idempotency keys per WABA' },
        { version: 4, name: 'unit and pending ids per WABA' },
        { version: 5, name: 'units say when their category came from the webhook' },
        { version: 6, name: 'ratings keep totals per WABA and the digest of the accounts they priced with' },
        { version: 7, name: 'events keep the business number a trusted writer tied to their WABA' },
        { version: 8, name: 'events say whether a trusted writer stored them' },
        { version: 9, name: 'statuses naming no WABA are found by their message id' },
        {
          version: 10,
          name: 'events keep the user of the pair they tie, and statuses naming their WABA tie too',
        },
        { version: 11, name: 'ratings keep the digest of the rate cards they priced with' },
        { version: 12, name: 'ratings keep the digest of the rating code that made them' },
        { version: 13, name: "a re-rate's changed units are kept beside it, a row each" },
        { version: 14, name: 'statuses naming no WABA are found by their business number' },
        { version: 15, name: 'the rating history is read newest first through an index' },
        { version: 16, name: 'business numbers keep the display number the webhooks give them' },
        { version: 17, name: 'units are read dearest first through an index' },
        {
          version: 18,
          name: 'the events keep a mark of where they last changed, and ratings the mark they read',
        },
        { version: 19, name: 'events deleted are marked as stored ones are' },
        { version: 20, name: "one index finds a number's owner and a pair's" },
        { version: 21, name: 'an ingest marks the events it inserts once, after them, not a row at a time' },
        {
          version: 22,
          name: 'an ingest marks the events it rewrites once, with those it inserts, not a row at a time',
        },
      ]);
    } finally {
      db.close();
      await store.close();
    }
  });

  it('upgrades a version 1 database: the message_id index goes, orphan statuses are found by key', async () => {
    const path = join(dir, 'upgrade.db');
    await (await openSqliteStore(path)).close();
    // Back to what version 1 left.
    const old = new Database(path);
    old.exec(
      BEFORE_EVENT_MARKS +
        'CREATE INDEX events_message ON events (message_id); ALTER TABLE units DROP COLUMN is_category_from_webhook;' +
        'ALTER TABLE ratings DROP COLUMN totals_by_waba; ALTER TABLE ratings DROP COLUMN accounts_digest;' +
        'DROP INDEX events_business_waba_user; ALTER TABLE events DROP COLUMN tied_user;' +
        'ALTER TABLE events DROP COLUMN business;' +
        'ALTER TABLE events DROP COLUMN is_trusted; DROP INDEX events_unnamed_status;' +
        'ALTER TABLE ratings DROP COLUMN engine_digest; ALTER TABLE ratings DROP COLUMN rate_cards_digest; DELETE FROM schema_migrations WHERE version >= 2',
    );
    old.close();
    const statements: string[] = [];
    const store = await openSqliteStore(path, { verbose: (sql) => statements.push(String(sql)) });
    const db = new Database(path, { readonly: true });
    try {
      const indexes = db.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'",
      );
      expect(indexes.pluck().all()).not.toContain('events_message');
      expect(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(22);
      // The store's own query for orphan statuses looks their message up through the primary key, and the
      // WABA that owns their business number with a seek of events_business_waba_user.
      await listingOf(store, ['W1']);
      const orphanQuery = statements.find((sql) => sql.includes("s.kind = 'status'"));
      expect(orphanQuery).toBeDefined();
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN ${orphanQuery!}`)
        .all()
        .map((row) => (row as { detail: string }).detail);
      expect(plan.join('\n')).toMatch(
        /SEARCH m (EXISTS )?USING (COVERING )?INDEX sqlite_autoindex_events_1 \(key=\?\)/,
      );
      expect(plan.join('\n')).not.toMatch(/SCAN m\b/);
      expect(plan.join('\n')).toMatch(
        /SEARCH b USING COVERING INDEX events_business_waba_user \(business=\?\)/,
      );
      expect(plan.join('\n')).not.toMatch(/SCAN b\b/);
      // The WABA of the pair its number and user have: a seek of events_business_waba_user for each WABA
      // tying the number.
      expect(plan.join('\n')).toMatch(
        /SEARCH p (EXISTS )?USING COVERING INDEX events_business_waba_user \(business=\? AND waba=\? AND tied_user=\?\)/,
      );
      expect(plan.join('\n')).not.toMatch(/SCAN p\b/);
    } finally {
      db.close();
      await store.close();
    }
  });

  it('upgrades version 2 keys to keys per WABA: stored events stay duplicates of themselves', async () => {
    const path = join(dir, 'keys.db');
    const store2 = await openSqliteStore(path);
    const sent: OutboundEvent = {
      kind: 'outbound',
      atMs: 1,
      waba: 'W:1',
      business: 'PN1',
      user: '919876543210',
      id: 'wamid.k1',
      template: 'utility',
    };
    const orphan: StatusEvent = { kind: 'status', atMs: 2, id: 'wamid.k1', status: 'delivered' };
    await store2.ingestEvents(
      [sent, orphan].map((event) => ({ key: eventKey(event), event, receivedAtMs: 3, source: 'api:test' })),
    );
    await store2.close();
    // Back to what version 2 stored: keys without their WABA.
    const old = new Database(path);
    old.exec(
      "UPDATE events SET key = substr(key, instr(key, 'outbound:')) WHERE kind = 'outbound';" +
        'UPDATE events SET key = substr(key, 2) WHERE waba IS NULL;' +
        'DELETE FROM schema_migrations WHERE version = 3',
    );
    expect(old.prepare('SELECT key FROM events ORDER BY key').pluck().all()).toEqual([
      'outbound:wamid.k1',
      'status:wamid.k1:delivered',
    ]);
    old.close();
    const store = await openSqliteStore(path);
    try {
      const again = await store.ingestEvents(
        [sent, orphan].map((event) => ({ key: eventKey(event), event, receivedAtMs: 4, source: 'api:test' })),
      );
      expect(again).toEqual({ inserted: [], duplicates: 2, merged: [], relistedWabas: [] });
      expect(await listingOf(store, ['W:1'])).toEqual(expect.arrayContaining([sent, orphan]));
    } finally {
      await store.close();
    }
  });

  it("upgrades version 6: a trusted inbound, outbound or status naming its WABA ties its business number, an API key's does not", async () => {
    const path = join(dir, 'business.db');
    const store6 = await openSqliteStore(path);
    await store6.ingestEvents(BACKFILL_INPUTS);
    await store6.close();
    // Back to what version 6 stored: no business column, nor is_trusted.
    const old = new Database(path);
    old.exec(
      BEFORE_EVENT_MARKS +
        'DROP INDEX events_business_waba_user; ALTER TABLE events DROP COLUMN tied_user;' +
        'ALTER TABLE events DROP COLUMN business;' +
        'ALTER TABLE events DROP COLUMN is_trusted; DROP INDEX events_unnamed_status;' +
        'ALTER TABLE ratings DROP COLUMN engine_digest; ALTER TABLE ratings DROP COLUMN rate_cards_digest; DELETE FROM schema_migrations WHERE version >= 7',
    );
    old.close();
    const store = await openSqliteStore(path);
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare('SELECT kind, business FROM events ORDER BY at_ms').raw().all()).toEqual(
        BACKFILLED_ROWS,
      );
      // Only the rows that tie are in the index.
      expect(
        db.prepare("SELECT sql FROM sqlite_master WHERE name = 'events_business_waba_user'").pluck().get(),
      ).toMatch(/WHERE business IS NOT NULL$/);
      await expectBackfilledListings(store);
    } finally {
      db.close();
      await store.close();
    }
  });

  it('upgrades version 15: the display numbers of the stored webhooks are kept, and the bill is answered', async () => {
    const path = join(dir, 'numbers.db');
    const before = await openSqliteStore(path);
    await seedBeforeBusinessNumbers(before);
    await before.close();
    // As version 15 left it: no business_numbers.
    const old = new Database(path);
    old.exec(
      `${BEFORE_EVENT_MARKS} DROP TABLE business_numbers; DELETE FROM schema_migrations WHERE version >= 16`,
    );
    old.close();
    const store = await openSqliteStore(path);
    try {
      await expectBusinessNumbersFilled(store);
    } finally {
      await store.close();
    }
  });

  it("upgrades version 12: a re-rate's changed units move out of its changes, in order, keys as written", async () => {
    const path = join(dir, 'changes.db');
    await (await openSqliteStore(path)).close();
    // As version 12 stored re-rates: the changed units inside `changes`; and a live rating, with none.
    const old = new Database(path);
    old.exec(
      `${BEFORE_EVENT_MARKS} DROP TABLE rating_changes; DELETE FROM schema_migrations WHERE version >= 13`,
    );
    const insert = old.prepare(
      `INSERT INTO ratings (id, rated_at_ms, reason, wabas, as_of_rules, rate_cards, totals, changes)
       VALUES (?, ?, ?, '["W1"]', NULL, '[]', '{}', ?)`,
    );
    insert.run('r1', 1, 'live', null);
    insert.run('r2', 2, 'rerate', OLD_CHANGES);
    old.close();
    const store = await openSqliteStore(path);
    try {
      await expectChangesMoved(store);
    } finally {
      await store.close();
    }
  });

  it("upgrades version 7: rows an API key wrote are a trusted writer's only when they tied their number", async () => {
    const path = join(dir, 'trust.db');
    const store7 = await openSqliteStore(path);
    await store7.ingestEvents(TRUST_BACKFILL_INPUTS);
    await store7.close();
    // Back to what version 7 stored: no is_trusted column.
    const old = new Database(path);
    old.exec(
      BEFORE_EVENT_MARKS +
        BEFORE_TIED_USER +
        'ALTER TABLE events DROP COLUMN is_trusted; DROP INDEX events_unnamed_status;' +
        'ALTER TABLE ratings DROP COLUMN engine_digest; ALTER TABLE ratings DROP COLUMN rate_cards_digest; DELETE FROM schema_migrations WHERE version >= 8',
    );
    old.close();
    const store = await openSqliteStore(path);
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare('SELECT kind, source, is_trusted FROM events ORDER BY at_ms').raw().all();
      expect(rows.map((row) => [...(row as unknown[]).slice(0, 2), (row as unknown[])[2] === 1])).toEqual(
        TRUST_BACKFILLED_ROWS,
      );
      await expectTrustBackfilledListings(store);
    } finally {
      db.close();
      await store.close();
    }
  });

  it('upgrades version 8: statuses naming no WABA are found with a seek of an index that holds only them', async () => {
    const path = join(dir, 'unnamed.db');
    await (await openSqliteStore(path)).close();
    const old = new Database(path);
    old.exec(
      BEFORE_EVENT_MARKS +
        BEFORE_TIED_USER +
        'DROP INDEX events_unnamed_status; ALTER TABLE ratings DROP COLUMN engine_digest; ALTER TABLE ratings DROP COLUMN rate_cards_digest;' +
        'DELETE FROM schema_migrations WHERE version >= 9',
    );
    old.close();
    const statements: string[] = [];
    const store = await openSqliteStore(path, { verbose: (sql) => statements.push(String(sql)) });
    const db = new Database(path, { readonly: true });
    try {
      expect(
        db.prepare("SELECT sql FROM sqlite_master WHERE name = 'events_unnamed_status'").pluck().get(),
      ).toMatch(/\(message_id\) WHERE waba IS NULL$/);
      const event = (fields: Partial<StatusEvent>): StatusEvent => ({
        kind: 'status',
        atMs: 1,
        id: 'wamid.u1',
        status: 'delivered',
        ...fields,
      });
      const input = (e: CoreEvent) => ({ key: eventKey(e), event: e, receivedAtMs: 2, source: 'webhook' });
      // A webhook of statuses (each names its WABA) reads nothing to say which WABAs to rate again.
      statements.length = 0;
      const body = Buffer.from('{"statuses":1}');
      const outcome = await store.ingestWebhook(
        { receivedAtMs: 2, body, sha256: createHash('sha256').update(body).digest('hex'), parseError: null },
        [input(event({ waba: 'W1' })), input(event({ waba: 'W1', status: 'read' }))],
      );
      expect(outcome.relistedWabas).toEqual([]);
      expect(statements.filter((sql) => /business =|message_id =|stored_wabas/.test(sql))).toEqual([]);
      // A message stored after its status naming no WABA: that status is found through the index.
      await store.ingestEvents([input(event({ business: 'PN1' }))]);
      statements.length = 0;
      await store.ingestEvents([
        input({
          kind: 'outbound',
          atMs: 0,
          waba: 'W1',
          business: 'PN1',
          user: '1',
          id: 'wamid.u1',
          template: null,
        }),
      ]);
      const lookup = statements.find((sql) => sql.includes('s.message_id ='));
      expect(lookup).toBeDefined();
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN ${lookup!}`)
        .all()
        .map((row) => (row as { detail: string }).detail);
      expect(plan.join('\n')).toMatch(/SEARCH s USING INDEX events_unnamed_status \(message_id=\?\)/);
    } finally {
      db.close();
      await store.close();
    }
  });

  it("upgrades version 19: one index of the ties finds a number's owner and a pair's, with seeks", async () => {
    // A tie went into two indexes, (number, WABA) and (number, user, WABA): each a WAL page for every status
    // a webhook stores. One index (number, WABA, user) keeps both look-ups to seeks.
    const path = join(dir, 'ties.db');
    const input = (event: CoreEvent): EventInput => ({
      key: eventKey(event),
      event,
      receivedAtMs: 2,
      source: 'webhook',
    });
    const inbound = (waba: string, user: string, id: string): CoreEvent => ({
      kind: 'inbound',
      atMs: 1,
      waba,
      business: 'PN1',
      user,
      id,
      hasReferral: false,
    });
    const before = await openSqliteStore(path);
    await before.ingestEvents([input(inbound('W1', '1', 'm1')), input(inbound('W2', '2', 'm2'))]);
    await before.close();
    // As version 19 left it.
    const old = new Database(path);
    old.exec(
      'DROP INDEX IF EXISTS events_business_waba_user;' +
        'CREATE INDEX IF NOT EXISTS events_business ON events (business, waba) WHERE business IS NOT NULL;' +
        'CREATE INDEX IF NOT EXISTS events_business_user ON events (business, tied_user, waba)' +
        '  WHERE business IS NOT NULL;' +
        'DELETE FROM schema_migrations WHERE version >= 20',
    );
    old.close();
    const statements: string[] = [];
    const store = await openSqliteStore(path, { verbose: (sql) => statements.push(String(sql)) });
    const db = new Database(path, { readonly: true });
    try {
      const indexes = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' ORDER BY name")
        .pluck()
        .all();
      expect(indexes).toEqual([
        'events_business_waba_user',
        'events_unnamed_business',
        'events_unnamed_status',
        'events_waba',
        'sqlite_autoindex_events_1',
      ]);
      expect(
        db.prepare("SELECT sql FROM sqlite_master WHERE name = 'events_business_waba_user'").pluck().get(),
      ).toMatch(/\(business, waba, tied_user\)\s+WHERE business IS NOT NULL$/);
      // The owners of what a group ties are read before its writes: each a seek, none a scan.
      statements.length = 0;
      await store.ingestEvents([input(inbound('W3', '2', 'm3'))]);
      const owners = statements.find((sql) => sql.includes('WITH n AS MATERIALIZED'));
      expect(owners).toBeDefined();
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN ${owners!}`)
        .all()
        .map((row) => (row as { detail: string }).detail)
        .join('\n');
      expect(plan).toMatch(/SEARCH b USING COVERING INDEX events_business_waba_user \(business=\?\)/);
      expect(plan).toMatch(
        /SEARCH f USING COVERING INDEX events_business_waba_user \(business=\? AND waba=\? AND tied_user=\?\)/,
      );
      expect(plan).toMatch(
        /SEARCH b USING COVERING INDEX events_business_waba_user \(business=\? AND waba>\?\)/,
      );
      expect(plan).toMatch(
        /SEARCH p (EXISTS )?USING COVERING INDEX events_business_waba_user \(business=\? AND waba=\? AND tied_user=\?\)/,
      );
      expect(plan).not.toMatch(/SCAN (b|p)\b/);
      // A status naming no WABA, whose message is stored nowhere, goes to its pair's WABA (W2), not to its
      // number's owner (W1).
      const status: StatusEvent = {
        kind: 'status',
        atMs: 3,
        id: 's2',
        status: 'delivered',
        business: 'PN1',
        user: '2',
      };
      await store.ingestEvents([input(status)]);
      expect(await listingOf(store, ['W2'])).toContainEqual(status);
      expect(await listingOf(store, ['W1'])).not.toContainEqual(status);
    } finally {
      db.close();
      await store.close();
    }
  });

  it('reads the rating history newest first through its indexes, never sorting the whole history', async () => {
    // Each arrival adds a live rating: sorted whole, a million of them made a listing 1.4 s of the server's
    // thread (one of the last rating, at each re-rate, 0.4 s); through the index, 16 ms and 0.3 ms.
    const path = join(dir, 'ratings-plan.db');
    const statements: string[] = [];
    const store = await openSqliteStore(path, { verbose: (sql) => statements.push(String(sql)) });
    const db = new Database(path, { readonly: true });
    try {
      const plans: Record<string, string> = {};
      for (const [name, listing] of [
        ['all', () => store.listRatings(50)],
        ['last', () => store.listRatings(1, undefined, { isWithoutChanges: true })],
        ['of WABAs', () => store.listRatings(50, ['W1'])],
        ['re-rates', () => store.listRatings(50, undefined, { reasons: ['rerate', 'upgrade'] })],
      ] as const) {
        statements.length = 0;
        await listing();
        const sql = statements.find((statement) => statement.includes('FROM ratings'));
        expect(sql).toBeDefined();
        plans[name] = db
          .prepare(`EXPLAIN QUERY PLAN ${sql!}`)
          .all()
          .map((row) => (row as { detail: string }).detail)
          .join('; ');
      }
      for (const name of ['all', 'last', 'of WABAs']) {
        expect(plans[name]).toMatch(/SCAN r USING INDEX ratings_newest\b/);
        expect(plans[name]).not.toMatch(/TEMP B-TREE/);
      }
      expect(plans['re-rates']).toMatch(/SEARCH r USING INDEX ratings_newest_by_reason \(reason=\?\)/);
    } finally {
      db.close();
      await store.close();
    }
  });

  it('reads units dearest first through its indexes, each page seeks, never sorting the units', async () => {
    // Sorted whole, each page of order=amount_desc over 100,000 units took 30–75 ms of the server's thread;
    // seeking the currency only and scanning from there, a page deep in it 8–37 ms.
    const path = join(dir, 'amount-plan.db');
    const statements: string[] = [];
    const store = await openSqliteStore(path, { verbose: (sql) => statements.push(String(sql)) });
    const db = new Database(path, { readonly: true });
    try {
      await store.replaceRating(
        { id: 'r1', ratedAtMs: 0, reason: 'live', wabas: ['W1'], asOfRules: null, rateCards: [], totals: {} },
        { units: [billableUnit({ id: 'u1' }), billableUnit({ id: 'u2' })], pending: [], findings: [] },
      );
      const plans: Record<string, string[]> = {};
      for (const [name, filter] of [
        ['all', {}],
        ['one WABA', { waba: 'W1' }],
      ] as const) {
        // The second page, whose cursor the plans must seek past: read in three parts (the cursor's amount,
        // its currency's cheaper units, the later currencies), each a seek.
        const first = await store.queryUnits(filter, { limit: 1, order: 'amount_desc' });
        statements.length = 0;
        await store.queryUnits(filter, { limit: 1, order: 'amount_desc', cursor: first.nextCursor! });
        plans[name] = statements
          .filter((statement) => statement.includes('FROM units'))
          .map((sql) =>
            db
              .prepare(`EXPLAIN QUERY PLAN ${sql}`) // the statement as run, its values written in
              .all()
              .map((row) => (row as { detail: string }).detail)
              .join('; '),
          );
      }
      const expr = '<expr>';
      expect(plans.all).toEqual([
        `SEARCH units USING INDEX units_amount (currency=? AND ${expr}=? AND (opened_at_ms,id,waba)>(?,?,?))`,
        `SEARCH units USING INDEX units_amount (currency=? AND ${expr}>?)`,
        'SEARCH units USING INDEX units_amount (currency>?)',
      ]);
      expect(plans['one WABA']).toEqual([
        `SEARCH units USING INDEX units_waba_amount (waba=? AND currency=? AND ${expr}=? AND (opened_at_ms,id)>(?,?))`,
        `SEARCH units USING INDEX units_waba_amount (waba=? AND currency=? AND ${expr}>?)`,
        'SEARCH units USING INDEX units_waba_amount (waba=? AND currency>?)',
      ]);
    } finally {
      db.close();
      await store.close();
    }
  });

  it('an export gives the event loop a turn between pages, and reads one snapshot while writes commit', async () => {
    const store = await openSqliteStore(join(dir, 'export.db'));
    try {
      const unit = (i: number) =>
        billableUnit({
          id: `u${String(i).padStart(3, '0')}`,
          openedAtMs: Date.parse('2025-10-01T00:00:00Z') + i * 1000,
        });
      const rating = (id: string, ratedAtMs: number) => ({
        id,
        ratedAtMs,
        reason: 'rerate',
        wabas: ['W1'],
        asOfRules: null,
        rateCards: [],
        totals: {},
      });
      await store.replaceRating(rating('r1', 1), {
        units: Array.from({ length: 30 }, (_, i) => unit(i)),
        pending: [],
        findings: [],
      });
      const turns: string[] = [];
      let pages = 0;
      const count = await store.exportUnits(
        {},
        (units) => {
          pages += 1;
          turns.push(`page ${pages}: ${units.length}`);
          // Another task (a webhook, a health check) arriving once the export has begun.
          if (pages === 1) setImmediate(() => turns.push('another task ran'));
        },
        10,
      );
      expect(count).toBe(30);
      // Read synchronously in one go, the task would have run only after the last page.
      expect(turns).toEqual(['page 1: 10', 'another task ran', 'page 2: 10', 'page 3: 10']);
      // A rating committed between pages (by the store's own connection) is not in this export's pages.
      const exported: string[] = [];
      await store.exportUnits(
        {},
        async (units) => {
          exported.push(...units.map((u) => u.id));
          if (exported.length === 10) {
            await store.replaceRating(rating('r2', 2), { units: [unit(99)], pending: [], findings: [] });
          }
        },
        10,
      );
      expect(exported).toEqual(Array.from({ length: 30 }, (_, i) => unit(i).id));
      expect((await store.queryUnits({}, { limit: 100 })).units.map((u) => u.id)).toEqual(['u099']);
    } finally {
      await store.close();
    }
  });

  it('commits a live rating without its own fsync, and everything else with one', async () => {
    const path = join(dir, 'durability.db');
    const statements: string[] = [];
    const store = await openSqliteStore(path, { verbose: (sql) => statements.push(String(sql)) });
    const pragmas = () => statements.filter((sql) => /synchronous/i.test(sql));
    const rating = (id: string, reason: string) => ({
      id,
      ratedAtMs: 1,
      reason,
      wabas: ['W1'],
      asOfRules: null,
      rateCards: [],
      totals: {},
    });
    const empty = { units: [], pending: [], findings: [] };
    const ingestInbound = (id: string, atMs: number) =>
      store.ingestEvents([
        {
          key: `inbound:${id}`,
          event: { kind: 'inbound', atMs, waba: 'W1', business: 'PN1', user: '1', id, hasReferral: false },
          receivedAtMs: atMs + 1,
          source: 'api:test',
        },
      ]);
    try {
      statements.length = 0;
      await ingestInbound('m1', 1);
      await store.replaceRating(rating('r-rerate', 'rerate'), empty);
      expect(pragmas()).toEqual([]);
      await store.replaceRating(rating('r-live', 'live'), empty);
      await store.applyRatingDiff(rating('r-live-2', 'live'), {
        units: { upsert: [], delete: [] },
        pending: { upsert: [], delete: [] },
      });
      expect(pragmas()).toEqual([
        'PRAGMA synchronous = NORMAL',
        'PRAGMA synchronous = FULL',
        'PRAGMA synchronous = NORMAL',
        'PRAGMA synchronous = FULL',
      ]);
      // Ingestion after a live rating is synced again: no pragma, the connection's FULL applies.
      statements.length = 0;
      await ingestInbound('m2', 3);
      expect(pragmas()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("keeps an ingest's statement journals in memory, and gives every other write and read the file's temp storage", async () => {
    const path = join(dir, 'journals.db');
    const statements: string[] = [];
    const store = await openSqliteStore(path, { verbose: (sql) => statements.push(String(sql)) });
    const inbound = (id: string): EventInput => ({
      key: `W1:inbound:${id}`,
      event: { kind: 'inbound', atMs: 1, waba: 'W1', business: 'PN1', user: '1', id, hasReferral: false },
      receivedAtMs: 2,
      source: 'api:test',
    });
    const transactions = () =>
      statements.filter((sql) => /^(BEGIN|COMMIT|ROLLBACK)|temp_store/i.test(sql.trim()));
    try {
      statements.length = 0;
      await Promise.all([store.ingestEvents([inbound('m1')]), store.ingestEvents([inbound('m2')])]);
      await store.ingestBatch([{ raw: null, events: [inbound('m3')] }]);
      // Set before the transaction begins (SQLite places its statement journals then), set back after it ends.
      expect(transactions()).toEqual([
        'PRAGMA temp_store = MEMORY',
        'BEGIN IMMEDIATE',
        'COMMIT',
        'PRAGMA temp_store = DEFAULT',
        'PRAGMA temp_store = MEMORY',
        'BEGIN IMMEDIATE',
        'COMMIT',
        'PRAGMA temp_store = DEFAULT',
      ]);
      statements.length = 0;
      await store.replaceRating(ratingRecord('r1', { reason: 'rerate' }), {
        units: [],
        pending: [],
        findings: [],
      });
      expect(await store.listEvents(['W1'])).toHaveLength(3);
      expect(transactions().filter((sql) => /temp_store/i.test(sql))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('refuses a file another wameter migrated further, and a SQLite file of something else, changing neither', async () => {
    const newer = join(dir, 'newer.db');
    await (await openSqliteStore(newer)).close();
    const raw = new Database(newer);
    raw.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(99, 'from the future', 0);
    raw.close();
    await expect(openSqliteStore(newer)).rejects.toThrow(
      /^this database was migrated by a newer wameter \(schema migration 99; this version knows up to \d+\): run that version/,
    );

    const foreign = join(dir, 'foreign.db');
    const other = new Database(foreign);
    other.exec('CREATE TABLE customers (id INTEGER)');
    other.close();
    await expect(openSqliteStore(foreign)).rejects.toThrow(
      `the SQLite file ${foreign} is not a wameter database (it holds other tables: customers): another program's data, left as it is; give wameter a file of its own`,
    );
    const after = new Database(foreign, { readonly: true });
    expect(after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()).toEqual([
      'customers',
    ]);
    expect(after.pragma('journal_mode', { simple: true })).toBe('delete');
    after.close();
  });

  it('refuses at open a file this process may not write, rather than open it and fail at its first write', async () => {
    const path = join(dir, 'unwritable.db');
    const store = await openSqliteStore(path);
    await store.ingestEvents([
      { key: 'inbound:m1', event: ONE_INBOUND, receivedAtMs: 2, source: 'api:test' },
    ]);
    await store.close();
    // A reader keeps the -wal and -shm files (as a `sqlite3` shell or `wameter estimate` would): only the
    // file itself is read-only.
    const reader = new Database(path, { readonly: true });
    onTestFinished(() => {
      reader.close();
    });
    const undo = makeUnwritable(path);
    onTestFinished(undo);

    await expect(openSqliteStore(path)).rejects.toMatchObject({ code: 'SQLITE_READONLY' });
    undo();
    expect(reader.prepare('SELECT count(*) FROM events').pluck().get()).toBe(1);
  });

  it('keeps what was stored across a reopen, and two stores on one file migrate once', async () => {
    const path = join(dir, 'reopen.db');
    const [a, b] = await Promise.all([openSqliteStore(path), openSqliteStore(path)]);
    const event = ONE_INBOUND;
    await a.ingestEvents([{ key: 'inbound:m1', event, receivedAtMs: 2, source: 'api:test' }]);
    expect(await listingOf(b)).toEqual([event]);
    await Promise.all([a.close(), b.close()]);
    const reopened = await openStore(`sqlite:${path}`);
    expect(await listingOf(reopened)).toEqual([event]);
    await reopened.close();
  });
});

describe('SQLite opened read-only (commands that only read: estimate, rerate --dry-run)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-sqlite-read-only-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const readOnly = (path: string) => openSqliteStore(path, { isReadOnly: true });
  const tablesOf = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
    } finally {
      db.close();
    }
  };

  it('refuses a path where no file exists (NO_STORE) and creates no file', async () => {
    const path = join(dir, 'typo.db');
    await expect(readOnly(path)).rejects.toMatchObject({
      code: 'NO_STORE',
      message: `no wameter store in ${path}: the file does not exist`,
    });
    await expect(openStore(`sqlite:${path}`, { isReadOnly: true })).rejects.toMatchObject({
      code: 'NO_STORE',
    });
    expect(existsSync(path)).toBe(false);
  });

  it('refuses an empty file (NO_STORE) and leaves it empty: no tables, no WAL, not a byte written', async () => {
    const path = join(dir, 'empty.db');
    writeFileSync(path, '');
    await expect(readOnly(path)).rejects.toMatchObject({
      code: 'NO_STORE',
      message: `no wameter store in ${path}: the file holds no wameter tables`,
    });
    expect(statSync(path).size).toBe(0);
    expect(readdirSync(dir).filter((name) => name.startsWith('empty.db'))).toEqual(['empty.db']);
  });

  it('refuses a store an older wameter left (STORE_NEEDS_MIGRATION) without migrating it', async () => {
    const path = join(dir, 'older.db');
    await (await openSqliteStore(path)).close();
    const old = new Database(path);
    old.exec(
      BEFORE_EVENT_MARKS +
        'ALTER TABLE ratings DROP COLUMN totals_by_waba; ALTER TABLE ratings DROP COLUMN accounts_digest;' +
        'DROP INDEX events_business_waba_user; ALTER TABLE events DROP COLUMN tied_user;' +
        'ALTER TABLE events DROP COLUMN business;' +
        'ALTER TABLE events DROP COLUMN is_trusted; DROP INDEX events_unnamed_status;' +
        'ALTER TABLE ratings DROP COLUMN engine_digest; ALTER TABLE ratings DROP COLUMN rate_cards_digest; DELETE FROM schema_migrations WHERE version >= 6',
    );
    old.close();
    await expect(readOnly(path)).rejects.toMatchObject({
      code: 'STORE_NEEDS_MIGRATION',
      message: `the wameter store in ${path} is older than this wameter (schema migration 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22 not applied yet), and a read-only open does not migrate it`,
    });
    const after = new Database(path, { readonly: true });
    expect(after.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(5);
    after.close();
  });

  it('refuses a store a newer wameter migrated, and a file of another program, as a writing open does', async () => {
    const newer = join(dir, 'newer.db');
    await (await openSqliteStore(newer)).close();
    const raw = new Database(newer);
    raw.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(99, 'from the future', 0);
    raw.close();
    await expect(readOnly(newer)).rejects.toThrow(/^this database was migrated by a newer wameter/);
    const foreign = join(dir, 'foreign.db');
    const other = new Database(foreign);
    other.exec('CREATE TABLE customers (id INTEGER)');
    other.close();
    await expect(readOnly(foreign)).rejects.toThrow(`the SQLite file ${foreign} is not a wameter database`);
    expect(tablesOf(foreign)).toEqual(['customers']);
  });

  it('reads a store that a writing open migrated, and refuses every write', async () => {
    const path = join(dir, 'filled.db');
    const event = ONE_INBOUND;
    const writer = await openSqliteStore(path);
    await writer.ingestEvents([{ key: 'W1:inbound:m1', event, receivedAtMs: 2, source: 'api:test' }]);
    await writer.close();
    const store = await openStore(path, { isReadOnly: true });
    try {
      expect(await listingOf(store)).toEqual([event]);
      expect(await store.listWabas()).toEqual(['W1']);
      await expect(
        store.ingestEvents([
          { key: 'W1:inbound:m2', event: { ...event, id: 'm2' }, receivedAtMs: 3, source: 'api:test' },
        ]),
      ).rejects.toThrow(/readonly/);
      await expect(store.migrate()).rejects.toThrow(/opened read-only/);
    } finally {
      await store.close();
    }
    expect(readdirSync(dir).filter((name) => name.startsWith('filled.db'))).toEqual(['filled.db']);
  });
});

describe('openStore', () => {
  it('opens SQLite from sqlite:PATH and a bare path', async () => {
    for (const url of ['sqlite::memory:', ':memory:']) {
      const store = await openStore(url);
      await store.ping();
      await store.close();
    }
  });

  it('refuses an unknown scheme without repeating the rest of the URL', async () => {
    await expect(openStore('mysql://root:secret@db/wameter')).rejects.toThrow(
      /^unsupported database URL scheme "mysql:"/,
    );
    await expect(openStore('mysql://root:secret@db/wameter')).rejects.not.toThrow(/secret/);
    await expect(openStore('')).rejects.toThrow(/no database given/);
  });
});
