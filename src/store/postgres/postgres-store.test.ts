// Runs the Store contract against a real PostgreSQL server, each store in its own fresh schema (dropped
// afterwards) so parallel runs never meet. No server is a failure, not a skip.

import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventKey, type CoreEvent, type OutboundEvent, type StatusEvent } from '../../core/events.js';
import { openStore } from '../open-store.js';
import { runStoreContract } from '../store.contract.js';
import { NUMBER_WABAS_SQL, openPostgresStore, withBound } from './postgres-store.js';
import { StoreTimeoutError, type EventInput, type Store } from '../store.js';
import {
  BACKFILL_INPUTS,
  BACKFILLED_ROWS,
  expectBackfilledListings,
} from '../../../test/support/business-backfill.js';
import {
  TRUST_BACKFILL_INPUTS,
  TRUST_BACKFILLED_ROWS,
  expectTrustBackfilledListings,
} from '../../../test/support/message-trust-backfill.js';
import { OLD_CHANGES, expectChangesMoved } from '../../../test/support/rating-changes-upgrade.js';
import {
  expectBusinessNumbersFilled,
  seedBeforeBusinessNumbers,
} from '../../../test/support/business-numbers-upgrade.js';
import { ratingRecord } from '../../../test/support/ratings.js';
import { expectDeletionsMarked } from '../../../test/support/event-deletion-marks.js';
import { ONE_INBOUND, listingOf } from '../../../test/support/store-events.js';
import { billableUnit } from '../../../test/support/units.js';

const DATABASE_URL = process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const START_HINT = 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start';

const schemas: string[] = [];
let admin: pg.Client | undefined;

/**
 * A store opened through the test's proxy with short bounds, which bound opening a connection too (the pool's
 * connection timeout is the shortest of them): on a machine loaded by the whole suite, setting up one took
 * longer than 0.3 s once, and the open failed before the test began. Opened again then (at most three tries):
 * what these tests assert is what happens after the open.
 */
async function openThroughProxy(
  url: string,
  options: Parameters<typeof openPostgresStore>[1],
): ReturnType<typeof openPostgresStore> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await openPostgresStore(url, options);
    } catch (error) {
      if (attempt === 3 || !/connection timeout/i.test(String((error as Error).message))) throw error;
    }
  }
}

function freshSchema(): string {
  const schema = `wameter_test_${randomBytes(6).toString('hex')}`;
  schemas.push(schema);
  return schema;
}

beforeAll(async () => {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    await client.end().catch(() => {});
    throw new Error(
      `PostgreSQL is not reachable at ${DATABASE_URL} (${(error as Error).message}). ` +
        `Start it with: ${START_HINT} (or set WAMETER_TEST_POSTGRES_URL)`,
    );
  }
  admin = client;
});

afterAll(async () => {
  if (!admin) return;
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

runStoreContract('PostgreSQL', () => openPostgresStore(DATABASE_URL, { schema: freshSchema() }));

describe('events deleted by hand', () => {
  it('mark their WABA, and what may move a status naming no WABA, as stored ones do (at the commit)', async () => {
    const schema = freshSchema();
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      await expectDeletionsMarked(store, async (condition) => {
        await admin!.query(`DELETE FROM ${schema}.events WHERE ${condition}`);
      });
    } finally {
      await store.close();
    }
  });
});

describe('PostgreSQL planner statistics', () => {
  // Never analysed, a table is planned as if empty (reltuples -1): an import's joins of statuses naming no
  // WABA ran as a nested loop over the whole table for each (minutes for 10,000 of them).
  it('refreshStatistics analyses events: the planner knows how many rows they hold', async () => {
    const schema = freshSchema();
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      const statuses = Array.from({ length: 300 }, (_, i) => ({
        key: `s${i}`,
        event: {
          kind: 'status',
          atMs: 1_760_000_000_000 + i,
          id: `wamid.s${i}`,
          status: 'delivered',
        } as StatusEvent,
        receivedAtMs: 0,
        source: 'import' as const,
      }));
      await store.ingestEvents(statuses);
      const reltuples = async () =>
        Number(
          (
            await admin!.query(
              `SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = $1 AND c.relname = 'events'`,
              [schema],
            )
          ).rows[0].reltuples,
        );
      expect(await reltuples()).toBe(-1);
      await store.refreshStatistics('events');
      expect(await reltuples()).toBe(300);
      expect(await store.countUnattributedStatuses()).toBe(300);
    } finally {
      await store.close();
    }
  });

  it("refreshStatistics('bill') analyses the rating's tables: units, pending messages, findings", async () => {
    const schema = freshSchema();
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      // Autovacuum would analyse them in its own time: only refreshStatistics may here.
      for (const table of ['events', 'units', 'pending_messages', 'findings']) {
        await admin!.query(`ALTER TABLE ${schema}.${table} SET (autovacuum_enabled = false)`);
      }
      const units = Array.from({ length: 300 }, (_, i) => billableUnit({ id: `u${i}` }));
      await store.replaceRating(ratingRecord('r1'), { units, pending: [], findings: [] });
      const reltuples = async () =>
        Object.fromEntries(
          (
            await admin!.query(
              `SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = $1 AND c.relname IN ('events', 'units', 'pending_messages', 'findings')`,
              [schema],
            )
          ).rows.map((row: { relname: string; reltuples: number }) => [row.relname, Number(row.reltuples)]),
        );
      const never = { events: -1, units: -1, pending_messages: -1, findings: -1 };
      expect(await reltuples()).toEqual(never);
      await store.refreshStatistics('bill');
      expect(await reltuples()).toEqual({ ...never, units: 300, pending_messages: 0, findings: 0 });
    } finally {
      await store.close();
    }
  });
});

describe('PostgreSQL specifics', () => {
  it('ping gives up after its timeout when the server stops answering (packets dropped, no reset)', async () => {
    const proxy = await silenceableProxy();
    const store = await openThroughProxy(proxy.url, { schema: freshSchema(), pingTimeoutMs: 300 });
    try {
      await store.ping();
      proxy.silence();
      // Without a timeout the ping waits until TCP gives up (minutes): this test would time out.
      const error = await store.ping().then(
        () => null,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(StoreTimeoutError);
      expect(error).toMatchObject({ message: 'the database did not answer the ping within 0.3 s' });
    } finally {
      proxy.close();
      await store.close().catch(() => undefined);
    }
  });

  it('an ingest gives up after its write bound when the server stops answering, then writes again', async () => {
    const proxy = await silenceableProxy();
    const store = await openThroughProxy(proxy.url, {
      schema: freshSchema(),
      writeTimeoutMs: 300,
      pingTimeoutMs: 300,
    });
    try {
      proxy.silence();
      // Without the bound the write waits until TCP gives up (minutes): this test would time out.
      const stuck = store.ingestEvents([{ key: 'k1', event: ONE_INBOUND, receivedAtMs: 1, source: 'api' }]);
      const error = await stuck.then(
        () => null,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(StoreTimeoutError);
      expect(error).toMatchObject({
        message: 'the database did not finish the write within 0.3 s',
        isConnectionLost: true,
      });
      // That connection dropped, the next writes wait for a new one, which the silent server never gives:
      // the bound counts that wait too (the pool's own is 10 s), and a group fails whole, not item by item.
      const group = await Promise.allSettled(
        [3, 4, 5].map((n) =>
          store.ingestEvents([
            { key: `k${n}`, event: { ...ONE_INBOUND, id: `m${n}` }, receivedAtMs: n, source: 'api' },
          ]),
        ),
      );
      for (const outcome of group) {
        expect(outcome).toMatchObject({ status: 'rejected', reason: { isConnectionLost: false } });
        expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(StoreTimeoutError);
      }
      // Waiting for a connection the silent server never gives: the ping's bound, said as a ping's.
      await expect(store.ping()).rejects.toThrow('the database did not answer the ping within 0.3 s');
      proxy.speak();
      // The silent connection was dropped, not handed out again: a new one writes.
      const event = { ...ONE_INBOUND, id: 'm2' };
      expect(await store.ingestEvents([{ key: 'k2', event, receivedAtMs: 2, source: 'api' }])).toMatchObject({
        inserted: [event],
      });
      // The silenced write's bytes never reached the server: nothing of it is stored.
      expect(await listingOf(store)).toEqual([event]);
    } finally {
      proxy.close();
      await store.close().catch(() => undefined);
    }
  });

  it('reads and ratings give up after their bounds when the server stops answering, then answer again', async () => {
    const proxy = await silenceableProxy();
    const store = await openThroughProxy(proxy.url, {
      schema: freshSchema(),
      readTimeoutMs: 1_000,
      ratingTimeoutMs: 1_200,
      pingTimeoutMs: 1_000,
    });
    const rating = (id: string) => ratingRecord(id);
    try {
      const event = { ...ONE_INBOUND, waba: 'W1' };
      await store.ingestEvents([{ key: 'k1', event, receivedAtMs: 1, source: 'api' }]);
      const units = [billableUnit({ id: 'u1', waba: 'W1' })];
      await store.replaceRating(rating('r1'), { units, pending: [], findings: [] });
      // Connections already open and idle in the pool, as after a busy minute, and new ones alike.
      await Promise.all([
        store.queryUnits({}, { limit: 1 }),
        store.totals({}),
        store.listFindings({}),
        store.listPending({}),
        store.listRatings(1),
        store.listWabas(),
      ]);
      proxy.silence();
      // A rating: listing a portfolio's events, and writing its units, within the rating's own bound (each on
      // one of the idle connections: one waiting for a new connection would fail after the pool's own 1 s).
      for (const list of [() => listingOf(store), () => listingOf(store, ['W1'])]) {
        await expect(list()).rejects.toThrow('the database did not answer the read within 1.2 s');
      }
      await expect(store.replaceRating(rating('r2'), { units, pending: [], findings: [] })).rejects.toThrow(
        'the database did not finish the write within 1.2 s',
      );
      // Without the bounds each of these waits for an answer for ever (the connection is idle: TCP has
      // nothing to retransmit, so it never gives up either): this test would time out.
      const reads: [string, () => Promise<unknown>][] = [
        ['units', () => store.queryUnits({}, { limit: 10 })],
        ['totals', () => store.totals({})],
        ['analytics', () => store.analytics({ granularity: 'DAILY', dimensions: [] })],
        ['findings', () => store.listFindings({})],
        ['pending', () => store.listPending({})],
        ['ratings', () => store.listRatings(10)],
        ['wabas', () => store.listWabas()],
        ['raw webhook', () => store.getRawWebhook(1)],
        ['export', () => store.exportUnits({}, () => undefined)],
        ['unattributed', () => store.countUnattributedStatuses()],
      ];
      const outcomes = await Promise.all(
        reads.map(async ([name, read]) => [
          name,
          await read().then(
            () => 'answered',
            (error: unknown) => error,
          ),
        ]),
      );
      for (const [name, outcome] of outcomes) {
        expect(outcome, name as string).toBeInstanceOf(StoreTimeoutError);
        expect(outcome, name as string).toMatchObject({
          message: 'the database did not answer the read within 1 s',
        });
      }
      proxy.speak();
      // Every silent connection was dropped, none handed out again: new ones answer.
      expect((await store.queryUnits({}, { limit: 10 })).units).toHaveLength(1);
      expect(await listingOf(store, ['W1'])).toEqual([event]);
      expect((await store.listRatings(10)).map((r) => r.id)).toEqual(['r1']);
    } finally {
      proxy.close();
      await store.close().catch(() => undefined);
    }
  });

  it("a read that waits for a connection the silent server never gives names the pool's wait, not the read's bound", async () => {
    const proxy = await silenceableProxy();
    // The pool's own connection timeout is the shortest bound (here the write's, 0.4 s): a read waiting for a
    // new connection fails after it, long before its own 2 s bound (before: "within 2 s" after 0.4 s).
    const store = await openThroughProxy(proxy.url, {
      schema: freshSchema(),
      writeTimeoutMs: 400,
      readTimeoutMs: 2_000,
    });
    try {
      proxy.silence();
      // The idle connection the migration left: the read's own bound.
      await expect(store.totals({})).rejects.toThrow('the database did not answer the read within 2 s');
      // That one dropped, the next waits for a new connection.
      const startedMs = performance.now();
      const error = await store.totals({}).then(
        () => null,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(StoreTimeoutError);
      expect(error).toMatchObject({
        message: 'the database did not answer the read within 0.4 s',
        isConnectionLost: false,
      });
      expect(performance.now() - startedMs).toBeLessThan(1_500);
    } finally {
      proxy.close();
      await store.close().catch(() => undefined);
    }
  });

  it('an ingest held on a lock gives up after its write bound; the server cancels it too; nothing is stored', async () => {
    const name = `wameter_locked_${randomBytes(4).toString('hex')}`;
    const url = new URL(DATABASE_URL);
    url.searchParams.set('application_name', name);
    const schema = freshSchema();
    const store = await openPostgresStore(url.toString(), { schema, writeTimeoutMs: 300 });
    const holder = new pg.Client({ connectionString: DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${schema}.raw_webhooks IN ACCESS EXCLUSIVE MODE`);
      const body = Buffer.from('{"object":"whatsapp_business_account","entry":[]}');
      const raw = {
        receivedAtMs: 1,
        body,
        sha256: createHash('sha256').update(body).digest('hex'),
        parseError: null,
      };
      await expect(store.ingestWebhook(raw, [])).rejects.toBeInstanceOf(StoreTimeoutError);
      // The server gives up the statement as well (statement_timeout): no session of the store is left
      // waiting on the lock, to write the webhook once it is released behind a 503.
      await expect
        .poll(
          async () =>
            (
              await admin!.query(
                `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
                [name],
              )
            ).rows[0].n,
          { timeout: 5_000 },
        )
        .toBe(0);
      await holder.query('ROLLBACK');
      expect((await admin!.query(`SELECT count(*)::int AS n FROM ${schema}.raw_webhooks`)).rows[0].n).toBe(0);
      expect(await store.ingestWebhook(raw, [])).toMatchObject({ isDuplicate: false });
    } finally {
      await holder.end();
      await store.close();
    }
  });

  it('a connection lost while a store operation holds it fails that operation, never the process', async () => {
    const name = `wameter_lost_${randomBytes(4).toString('hex')}`;
    const url = new URL(DATABASE_URL);
    url.searchParams.set('application_name', name);
    const store = await openPostgresStore(url.toString(), { schema: freshSchema() });
    const unit = (id: string) => billableUnit({ id, waba: 'W1' });
    await store.replaceRating(
      { id: 'r1', ratedAtMs: 1, reason: 'rerate', wabas: ['W1'], asOfRules: null, rateCards: [], totals: {} },
      { units: [unit('u1'), unit('u2')], pending: [], findings: [] },
    );
    const unhandled: unknown[] = [];
    const onUnhandled = (error: unknown) => unhandled.push(error);
    process.on('uncaughtException', onUnhandled);
    try {
      let pages = 0;
      const exported = store.exportUnits(
        {},
        async () => {
          pages += 1;
          if (pages > 1) return;
          // The export's transaction is open on its connection, idle between two pages: the server ends it.
          const killed = await admin!.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'`,
            [name],
          );
          expect(killed.rowCount).toBe(1);
          await new Promise((resolve) => setTimeout(resolve, 200)); // the client hears of it meanwhile
        },
        1,
      );
      await expect(exported).rejects.toThrow();
      expect(unhandled).toEqual([]);
      // The pool hands out a new connection: the store answers again.
      await store.ping();
      expect((await store.queryUnits({}, { limit: 10 })).units).toHaveLength(2);
    } finally {
      process.off('uncaughtException', onUnhandled);
      await store.close();
    }
  });

  it('lets two processes starting together migrate one schema once', async () => {
    const schema = freshSchema();
    const stores = await Promise.all([1, 2, 3].map(() => openPostgresStore(DATABASE_URL, { schema })));
    const { rows } = await admin!.query(`SELECT version FROM ${schema}.schema_migrations`);
    expect(rows).toEqual([
      { version: 1 },
      { version: 2 },
      { version: 3 },
      { version: 4 },
      { version: 5 },
      { version: 6 },
      { version: 7 },
      { version: 8 },
      { version: 9 },
      { version: 10 },
      { version: 11 },
      { version: 12 },
      { version: 13 },
      { version: 14 },
      { version: 15 },
      { version: 16 },
      { version: 17 },
      { version: 18 },
      { version: 19 },
      { version: 20 },
      { version: 21 },
      { version: 22 },
    ]);
    await Promise.all(stores.map((store) => store.close()));
  });

  it('migration 16 makes the writer fence: one row, at epoch 0 until a holder of the writer lock advances it', async () => {
    const schema = freshSchema();
    await (await openPostgresStore(DATABASE_URL, { schema })).close();
    await admin!.query(`DELETE FROM ${schema}.schema_migrations WHERE version = 16`);
    await (await openPostgresStore(DATABASE_URL, { schema })).close(); // again: changes nothing
    const { rows } = await admin!.query(`SELECT id, epoch::int AS epoch FROM ${schema}.writer_fence`);
    expect(rows).toEqual([{ id: true, epoch: 0 }]);
    await expect(admin!.query(`INSERT INTO ${schema}.writer_fence VALUES (false, 0)`)).rejects.toThrow(
      /check constraint/,
    );
  });

  it("one transaction writing the events of two stores takes each store's own mark (migration 21's memo)", async () => {
    const [first, second] = [freshSchema(), freshSchema()];
    const stores = [
      await openPostgresStore(DATABASE_URL, { schema: first }),
      await openPostgresStore(DATABASE_URL, { schema: second }),
    ];
    try {
      await stores[1]!.ingestEvents([
        {
          key: eventKey(ONE_INBOUND),
          event: ONE_INBOUND,
          receivedAtMs: ONE_INBOUND.atMs,
          source: 'test',
        },
      ]);
      const row = (schema: string, waba: string) =>
        `INSERT INTO ${schema}.events (key, kind, waba, message_id, at_ms, payload, received_at_ms, source)
         VALUES ('${waba}:inbound:wamid.two', 'inbound', '${waba}', 'wamid.two', 1, '{}', 1, 'test')`;
      await admin!.query(`BEGIN; ${row(first, 'WA')}; ${row(second, 'WB')}; COMMIT`);
      const [marks, others] = [await stores[0]!.readEventChanges(), await stores[1]!.readEventChanges()];
      expect(marks).toEqual({ seq: 1, byWaba: new Map([['WA', 1]]), unnamedSeq: 0 });
      expect(others.seq).toBe(2);
      expect(others.byWaba.get('WB')).toBe(2);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('writes a group too large for one statement (in steps) alike whether or not it names relistedWabas', async () => {
    // `wameter import`'s groups (up to 20,000 events): the steps' owners are not read, the same rows written.
    const stores = [
      await openPostgresStore(DATABASE_URL, { schema: freshSchema() }),
      await openPostgresStore(DATABASE_URL, { schema: freshSchema() }),
    ];
    const user = '919876543210';
    const inputOf = (event: CoreEvent, source = 'import', isBusinessTied = true): EventInput => ({
      key: eventKey(event),
      event,
      receivedAtMs: 1,
      source,
      ...(isBusinessTied ? {} : { isBusinessTied: false }),
    });
    const outbound = (waba: string, id: string, business: string): OutboundEvent => ({
      kind: 'outbound',
      atMs: 1,
      waba,
      business,
      user,
      id,
      template: 'utility',
    });
    const status = (id: string, business?: string): StatusEvent => ({
      kind: 'status',
      atMs: 2,
      id,
      status: 'delivered',
      ...(business === undefined ? {} : { business, user }),
    });
    // Stored first: W9's message tying PN1, a limited key's message of W2 and its status naming no WABA.
    const first = [
      inputOf(outbound('W9', 'wamid.w9', 'PN1')),
      inputOf(outbound('W2', 'wamid.w2', 'PN2'), 'api:limited', false),
      inputOf(status('wamid.w2'), 'api:limited', false),
    ];
    // Then one group of 6,001 events: statuses naming no WABA placed by PN1 (W9's), W1 coming to own PN1, and a
    // trusted copy of the limited key's message (a rewrite: its row ties PN2 and joins statuses now).
    const group = [
      ...Array.from({ length: 5_999 }, (_, i) => inputOf(status(`wamid.s${i}`, 'PN1'))),
      inputOf(outbound('W1', 'wamid.w1', 'PN1')),
      inputOf(outbound('W2', 'wamid.w2', 'PN2')),
    ];
    const numbers = [{ waba: 'W1', business: 'PN1', displayNumber: '+1 555 0100' }];
    const readers = async (store: Store) => ({
      listings: await Promise.all(
        [undefined, ['W1'], ['W2'], ['W9']].map(async (scope) =>
          (await store.listEvents(scope)).map((event) => JSON.stringify(event)).sort(),
        ),
      ),
      owners: await Promise.all(['PN1', 'PN2'].map((business) => store.listWabas(business))),
      unattributed: await store.countUnattributedStatuses(),
      changes: await store.readEventChanges(),
      numbers: await store.businessNumbers({}),
    });
    try {
      const [named, notNamed] = stores as [Store, Store];
      await named.ingestEvents(first);
      await notNamed.ingestEvents(first, { isRelistingNeeded: false });
      const outcome = await named.ingestEvents(group, { businessNumbers: numbers });
      const skipped = await notNamed.ingestEvents(group, {
        businessNumbers: numbers,
        isRelistingNeeded: false,
      });
      // W9 loses PN1's statuses to W1; W2's row, now a trusted writer's, is named too (not a merged event).
      expect(outcome.relistedWabas).toEqual(['W2', 'W9']);
      expect(skipped).toEqual({ ...outcome, relistedWabas: [] });
      expect(skipped.inserted).toHaveLength(6_000);
      expect(await readers(notNamed)).toEqual(await readers(named));
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  }, 60_000);

  it("a message committed after a status naming no WABA of its id marks '' though none was stored when it was written (migration 22)", async () => {
    // The message's writer finds no row naming no WABA when it writes the message; the status's writer then
    // takes the clock's lock and commits while the message's writer waits for that lock at its commit. The
    // message's look-ups (their probe, after the lock) must see the status: '' takes the message's mark.
    const schema = freshSchema();
    const store = await openPostgresStore(DATABASE_URL, { schema });
    const [messageWriter, statusWriter] = [
      new pg.Client({ connectionString: DATABASE_URL }),
      new pg.Client({ connectionString: DATABASE_URL }),
    ];
    await messageWriter.connect();
    await statusWriter.connect();
    try {
      await messageWriter.query(`BEGIN;
        INSERT INTO ${schema}.events (key, kind, waba, message_id, at_ms, payload, received_at_ms, source)
        VALUES ('WA:outbound:wamid.late', 'outbound', 'WA', 'wamid.late', 1, '{}', 1, 'test')`);
      await statusWriter.query(`BEGIN; SET CONSTRAINTS ALL IMMEDIATE;
        INSERT INTO ${schema}.events (key, kind, waba, message_id, at_ms, payload, received_at_ms, source)
        VALUES (':status:wamid.late:sent', 'status', NULL, 'wamid.late', 1, '{}', 1, 'test')`);
      const committed = messageWriter.query('COMMIT'); // its trigger waits for the clock's lock
      await new Promise((resolveWait) => setTimeout(resolveWait, 300));
      await statusWriter.query('COMMIT');
      await committed;
      expect(await store.readEventChanges()).toEqual({ seq: 2, byWaba: new Map([['WA', 2]]), unnamedSeq: 2 });
    } finally {
      await messageWriter.end();
      await statusWriter.end();
      await store.close();
    }
  });

  it("one transaction writing messages, then a status naming no WABA of their id, marks '' (migration 22)", async () => {
    // The messages' rows fire first and find no row naming no WABA stored (their look-ups skipped); the
    // status's own row marks ''.
    const schema = freshSchema();
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      const row = (key: string, waba: string | null) =>
        `INSERT INTO ${schema}.events (key, kind, waba, message_id, at_ms, payload, received_at_ms, source)
         VALUES ('${key}', '${waba === null ? 'status' : 'outbound'}', ${waba === null ? 'NULL' : `'${waba}'`},
                 'wamid.one', 1, '{}', 1, 'test')`;
      await admin!.query(`BEGIN; SET CONSTRAINTS ALL IMMEDIATE; ${row('WA:outbound:wamid.one', 'WA')};
        ${row('WB:outbound:wamid.one', 'WB')}; ${row(':status:wamid.one:sent', null)}; COMMIT`);
      expect(await store.readEventChanges()).toEqual({
        seq: 1,
        byWaba: new Map([
          ['WA', 1],
          ['WB', 1],
        ]),
        unnamedSeq: 1,
      });
    } finally {
      await store.close();
    }
  });

  it('stores events whose rows pass jsonb’s 256 MiB as one value, each payload within it, alone or in a group', async () => {
    // One jsonb value holds at most 268,435,455 bytes. Read as jsonb, a batch's rows were one such value,
    // and three statuses of 90 MB each were refused ("total size of jsonb array elements exceeds the
    // maximum"), where json_to_recordset (the ingest until the thirty-seventh session) stored them.
    const schema = freshSchema();
    const store = await openPostgresStore(DATABASE_URL, { schema, writeTimeoutMs: 120_000 });
    try {
      const note = 'x'.repeat(90_000_000);
      const status = (id: string): StatusEvent => ({
        kind: 'status',
        atMs: Date.UTC(2025, 9, 1),
        id,
        status: 'delivered',
        pricing: { category: 'utility', note } as StatusEvent['pricing'],
      });
      const input = (event: StatusEvent) => ({
        key: eventKey(event),
        event,
        receivedAtMs: 1,
        source: 'import',
      });
      const ids = ['wamid.big1', 'wamid.big2', 'wamid.big3'];
      // With 4,998 small ones: more than one statement's rows, so inserted one batch at a time (insertEventGroups).
      const small = Array.from({ length: 4_998 }, (_, i) =>
        input({ ...status(`wamid.small${i}`), pricing: {} }),
      );
      const stored = await store.ingestEvents([...ids.map((id) => input(status(id))), ...small]);
      expect(stored.inserted).toHaveLength(5_001);
      const body = new TextEncoder().encode('{}');
      const webhook = {
        receivedAtMs: 1,
        body,
        sha256: createHash('sha256').update(body).digest('hex'),
        parseError: null,
      };
      // A webhook's events: its group's one statement (writeGroupAtOnce).
      const grouped = ['wamid.big4', 'wamid.big5', 'wamid.big6'];
      expect(
        (
          await store.ingestWebhook(
            webhook,
            grouped.map((id) => input(status(id))),
          )
        ).inserted,
      ).toHaveLength(3);
      const { rows } = await admin!.query(
        `SELECT message_id, length(payload->'pricing'->>'note') AS chars
         FROM ${schema}.events WHERE message_id LIKE 'wamid.big%' ORDER BY message_id`,
      );
      expect(rows).toEqual([
        ...ids.map((id) => ({ message_id: id, chars: 90_000_000 })),
        ...grouped.map((id) => ({ message_id: id, chars: 90_000_000 })),
      ]);
    } finally {
      await store.close();
    }
  }, 300_000);

  it('checks the writer fence it is given before every ingest and rating, not before reads', async () => {
    const schema = freshSchema();
    const fence = {
      epoch: 1 as number | undefined,
      fencedOut: (found: number | undefined) => new Error(`fenced out at ${found}`),
    };
    await (await openPostgresStore(DATABASE_URL, { schema })).close();
    await admin!.query(`UPDATE ${schema}.writer_fence SET epoch = 1`);
    const store = await openPostgresStore(DATABASE_URL, { schema, writerFence: fence });
    const rating = ratingRecord('r1');
    try {
      await store.ingestEvents([{ key: 'k1', event: ONE_INBOUND, receivedAtMs: 1, source: 'api' }]);
      await store.replaceRating(rating, { units: [], pending: [], findings: [] });
      await admin!.query(`UPDATE ${schema}.writer_fence SET epoch = 2`);
      const event = { ...ONE_INBOUND, id: 'm2' };
      await expect(
        store.ingestEvents([{ key: 'k2', event, receivedAtMs: 2, source: 'api' }]),
      ).rejects.toThrow('fenced out at 2');
      await expect(
        store.ingestBatch([{ raw: null, events: [{ key: 'k2', event, receivedAtMs: 2, source: 'api' }] }]),
      ).rejects.toThrow('fenced out at 2');
      await expect(
        store.replaceRating({ ...rating, id: 'r2' }, { units: [], pending: [], findings: [] }),
      ).rejects.toThrow('fenced out at 2');
      await expect(
        store.applyRatingDiff(
          { ...rating, id: 'r3' },
          { units: { upsert: [], delete: [] }, pending: { upsert: [], delete: [] }, findings: [] },
        ),
      ).rejects.toThrow('fenced out at 2');
      await admin!.query(`DELETE FROM ${schema}.writer_fence`);
      await expect(
        store.ingestEvents([{ key: 'k2', event, receivedAtMs: 2, source: 'api' }]),
      ).rejects.toThrow('fenced out at undefined');
      // Reads check nothing; nothing refused was stored, and the refused transactions left no lock behind.
      expect(await listingOf(store)).toEqual([ONE_INBOUND]);
      expect((await store.listRatings(10)).map((r) => r.id)).toEqual(['r1']);
      await admin!.query(`INSERT INTO ${schema}.writer_fence VALUES (true, 1)`);
      await store.ingestEvents([{ key: 'k2', event, receivedAtMs: 2, source: 'api' }]);
      expect(await listingOf(store)).toHaveLength(2);
    } finally {
      await store.close();
    }
  });

  it('refuses a schema another wameter migrated further (a rollback), changing nothing', async () => {
    const schema = freshSchema();
    await (await openPostgresStore(DATABASE_URL, { schema })).close();
    await admin!.query(`INSERT INTO ${schema}.schema_migrations VALUES (99, 'from the future', 0)`);
    await expect(openPostgresStore(DATABASE_URL, { schema })).rejects.toThrow(
      /^this database was migrated by a newer wameter \(schema migration 99; this version knows up to \d+\)/,
    );
  });

  it('works on a server, database or role with standard_conforming_strings off (a backslash in its SQL kept)', async () => {
    // Its SQL writes a backslash as itself ('\\'); with the setting off, a backslash escapes in every string,
    // and the migrations were refused with a syntax error.
    const schema = freshSchema();
    await admin!.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(DATABASE_URL);
    url.searchParams.set('options', `-c search_path=${schema} -c standard_conforming_strings=off`);
    const store = await openStore(url.toString());
    try {
      const event = { ...ONE_INBOUND, waba: 'W\\:1' };
      await store.ingestEvents([{ key: eventKey(event), event, receivedAtMs: 1, source: 'import:a' }]);
      const again = await store.ingestEvents([
        { key: eventKey(event), event, receivedAtMs: 2, source: 'import:b' },
      ]);
      expect(again.duplicates).toBe(1);
      expect(await listingOf(store, ['W\\:1'])).toEqual([event]);
      const { rows } = await admin!.query(`SELECT key FROM ${schema}.events`);
      expect(rows).toEqual([{ key: eventKey(event) }]);
    } finally {
      await store.close();
    }
  });

  it('is opened by openStore from a postgres:// URL, search_path in its options', async () => {
    const schema = freshSchema();
    await admin!.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(DATABASE_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const store = await openStore(url.toString());
    await store.ping();
    const { rows } = await admin!.query(`SELECT version FROM ${schema}.schema_migrations`);
    expect(rows).toEqual([
      { version: 1 },
      { version: 2 },
      { version: 3 },
      { version: 4 },
      { version: 5 },
      { version: 6 },
      { version: 7 },
      { version: 8 },
      { version: 9 },
      { version: 10 },
      { version: 11 },
      { version: 12 },
      { version: 13 },
      { version: 14 },
      { version: 15 },
      { version: 16 },
      { version: 17 },
      { version: 18 },
      { version: 19 },
      { version: 20 },
      { version: 21 },
      { version: 22 },
    ]);
    await store.close();
  });

  describe('a search_path of several schemas: the store is in the first it names, or refused', () => {
    const urlOf = (...path: string[]) => {
      const url = new URL(DATABASE_URL);
      url.searchParams.set('options', `-c search_path=${path.join(',')}`);
      return url.toString();
    };
    const tablesIn = async (schema: string) =>
      (
        await admin!.query(
          'SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1',
          [schema],
        )
      ).rows[0].n as number;

    it('refuses a first schema that does not exist, rather than create the store in the next one', async () => {
      // PostgreSQL creates tables in the first schema of the path that exists: `missing,later` put the store in
      // `later`, and once someone made `missing` (as docs/storage.md says to), the next start began a new,
      // empty store there.
      const [missing, later] = [freshSchema(), freshSchema()];
      await admin!.query(`CREATE SCHEMA ${later}`);
      const refusal = new RegExp(
        `^the schema "${missing}", first in the search_path of .*, does not exist \\(or this user may not use it\\): create it \\(psql -c 'CREATE SCHEMA ${missing}'\\)`,
      );
      await expect(openStore(urlOf(missing, later))).rejects.toThrow(refusal);
      await expect(openStore(urlOf(missing, later), { isReadOnly: true })).rejects.toThrow(refusal);
      expect(await tablesIn(later)).toBe(0);
    });

    it('refuses a schema before the store that holds none of its tables: never a second, empty store', async () => {
      const [empty, stored] = [freshSchema(), freshSchema()];
      const store = await openPostgresStore(DATABASE_URL, { schema: stored });
      await store.ingestEvents([
        { key: eventKey(ONE_INBOUND), event: ONE_INBOUND, receivedAtMs: 1, source: 'import:a' },
      ]);
      await store.close();
      await admin!.query(`CREATE SCHEMA ${empty}`);
      const refusal = new RegExp(
        `^the search_path of .* \\(${empty}, ?${stored}\\) reaches the schema "${empty}", which holds no wameter tables, before "${stored}", which holds wameter's store: .*name "${stored}" first`,
      );
      await expect(openStore(urlOf(empty, stored))).rejects.toThrow(refusal);
      await expect(openStore(urlOf(empty, stored), { isReadOnly: true })).rejects.toThrow(refusal);
      expect(await tablesIn(empty)).toBe(0);
      // Named first, it is the store it was.
      const reopened = await openStore(urlOf(stored, empty));
      expect(await reopened.listEvents()).toHaveLength(1);
      await reopened.close();
    });

    it('opens the store of a schema named after a "$user" schema that does not exist, and of one named first', async () => {
      const [first, second] = [freshSchema(), freshSchema()];
      await admin!.query(`CREATE SCHEMA ${first}; CREATE SCHEMA ${second}`);
      await (await openStore(urlOf('"$user"', first, second))).close();
      expect(await tablesIn(first)).toBeGreaterThan(0);
      expect(await tablesIn(second)).toBe(0);
      await (await openStore(urlOf('"$user"', first, second), { isReadOnly: true })).close();
    });
  });

  it('upgrades version 2 keys to keys per WABA: stored events stay duplicates of themselves', async () => {
    const schema = freshSchema();
    const sent: OutboundEvent = {
      kind: 'outbound',
      atMs: 1,
      waba: 'W:\\1',
      business: 'PN1',
      user: '919876543210',
      id: 'wamid.k1',
      template: 'utility',
    };
    const orphan: StatusEvent = { kind: 'status', atMs: 2, id: 'wamid.k1', status: 'delivered' };
    const inputs = (receivedAtMs: number) =>
      [sent, orphan].map((event) => ({ key: eventKey(event), event, receivedAtMs, source: 'api:test' }));
    const before = await openPostgresStore(DATABASE_URL, { schema });
    await before.ingestEvents(inputs(3));
    await before.close();
    // Back to what version 2 stored: keys without their WABA.
    await admin!.query(
      `UPDATE ${schema}.events SET key = substr(key, strpos(key, 'outbound:')) WHERE kind = 'outbound';
       UPDATE ${schema}.events SET key = substr(key, 2) WHERE waba IS NULL;
       DELETE FROM ${schema}.schema_migrations WHERE version = 3`,
    );
    const { rows } = await admin!.query(`SELECT key FROM ${schema}.events ORDER BY key`);
    expect(rows).toEqual([{ key: 'outbound:wamid.k1' }, { key: 'status:wamid.k1:delivered' }]);
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      expect(await store.ingestEvents(inputs(4))).toEqual({
        inserted: [],
        duplicates: 2,
        merged: [],
        relistedWabas: [],
      });
      expect(await listingOf(store, [sent.waba])).toEqual(expect.arrayContaining([sent, orphan]));
    } finally {
      await store.close();
    }
  });

  it("upgrades version 6: a trusted inbound, outbound or status naming its WABA ties its business number, an API key's does not", async () => {
    const schema = freshSchema();
    const before = await openPostgresStore(DATABASE_URL, { schema });
    await before.ingestEvents(BACKFILL_INPUTS);
    await before.close();
    // Back to what version 6 stored: no business column (its index goes with it), nor is_trusted.
    await admin!.query(
      `DROP TRIGGER events_changed ON ${schema}.events;
       ALTER TABLE ${schema}.events DROP COLUMN tied_user, DROP COLUMN business, DROP COLUMN is_trusted;
       DROP INDEX ${schema}.events_unnamed_status;
       ALTER TABLE ${schema}.ratings DROP COLUMN engine_digest;
       ALTER TABLE ${schema}.ratings DROP COLUMN rate_cards_digest;
       DELETE FROM ${schema}.schema_migrations WHERE version >= 7`,
    );
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      const { rows } = await admin!.query({
        text: `SELECT kind, business FROM ${schema}.events ORDER BY at_ms`,
        rowMode: 'array',
      });
      expect(rows).toEqual(BACKFILLED_ROWS);
      // Only the rows that tie are in the index, their WABAs in byte order.
      const index = await admin!.query(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'events_business'",
        [schema],
      );
      expect(String(index.rows[0]?.indexdef)).toMatch(
        /\(business, waba COLLATE "C"\) WHERE \(business IS NOT NULL\)$/,
      );
      await expectBackfilledListings(store);
    } finally {
      await store.close();
    }
  });

  it("upgrades version 7: rows an API key wrote are a trusted writer's only when they tied their number", async () => {
    const schema = freshSchema();
    const before = await openPostgresStore(DATABASE_URL, { schema });
    await before.ingestEvents(TRUST_BACKFILL_INPUTS);
    await before.close();
    // Back to what version 7 stored: no is_trusted column.
    await admin!.query(
      `DROP TRIGGER events_changed ON ${schema}.events;
       ALTER TABLE ${schema}.events DROP COLUMN is_trusted, DROP COLUMN tied_user;
       DROP INDEX ${schema}.events_unnamed_status;
       ALTER TABLE ${schema}.ratings DROP COLUMN engine_digest;
       ALTER TABLE ${schema}.ratings DROP COLUMN rate_cards_digest;
       DELETE FROM ${schema}.schema_migrations WHERE version >= 8`,
    );
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      const { rows } = await admin!.query({
        text: `SELECT kind, source, is_trusted FROM ${schema}.events ORDER BY at_ms`,
        rowMode: 'array',
      });
      expect(rows).toEqual(TRUST_BACKFILLED_ROWS);
      await expectTrustBackfilledListings(store);
    } finally {
      await store.close();
    }
  });

  it('merges a copy into the stored event only once a concurrent writer’s merge of it committed, keeping both', async () => {
    const schema = freshSchema();
    const bare: StatusEvent = { kind: 'status', atMs: 5, waba: 'W1', id: 'wamid.x', status: 'delivered' };
    const key = eventKey(bare);
    const store = await openPostgresStore(DATABASE_URL, { schema });
    const other = new pg.Client({ connectionString: DATABASE_URL });
    await other.connect();
    try {
      await store.ingestEvents([{ key, event: bare, receivedAtMs: 6, source: 'api:test' }]);
      // Another writer, merging a copy with a business number, has locked the stored row as the store does.
      await other.query('BEGIN');
      await other.query(`SELECT payload FROM ${schema}.events WHERE key = $1 FOR UPDATE`, [key]);
      const copy: StatusEvent = { ...bare, user: '919876543210' };
      const merging = store.ingestEvents([{ key, event: copy, receivedAtMs: 7, source: 'api:test' }]);
      // This one must wait for that lock, and read the row only once the other writer committed its merge:
      // reading it now, it would write its own merge over the other's and lose the business number.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await other.query(`UPDATE ${schema}.events SET payload = $1::jsonb WHERE key = $2`, [
        JSON.stringify({ ...bare, business: 'PN1' }),
        key,
      ]);
      await other.query('COMMIT');
      expect(await merging).toEqual({
        inserted: [],
        duplicates: 1,
        merged: [{ ...bare, business: 'PN1', user: '919876543210' }],
        relistedWabas: [],
      });
      expect(await listingOf(store)).toEqual([{ ...bare, business: 'PN1', user: '919876543210' }]);
    } finally {
      await other.query('ROLLBACK').catch(() => {});
      await other.end();
      await store.close();
    }
  });

  it('answers a body a concurrent delivery stored meanwhile as a duplicate, with its id, and stores the rest of its group', async () => {
    // The group's one statement (bodies, events, display numbers) writes no event and no number once one of
    // its bodies turns out stored (here by another process, which the insert waits for): they follow, one
    // statement at a time, for the items written only.
    const schema = freshSchema();
    const store = await openPostgresStore(DATABASE_URL, { schema });
    const other = new pg.Client({ connectionString: DATABASE_URL });
    await other.connect();
    const raw = (text: string, displayNumber: string) => {
      const body = Buffer.from(text);
      return {
        receivedAtMs: 1,
        body,
        sha256: createHash('sha256').update(body).digest('hex'),
        parseError: null,
        businessNumbers: [{ waba: 'W1', business: 'PN1', displayNumber }],
      };
    };
    const status = (id: string): StatusEvent => ({ kind: 'status', atMs: 5, waba: 'W1', id, status: 'sent' });
    const input = (event: StatusEvent) => ({
      key: eventKey(event),
      event,
      receivedAtMs: 1,
      source: 'webhook',
    });
    try {
      const first = raw('{"first":1}', '+1 555 0199');
      await other.query('BEGIN');
      const { rows } = await other.query(
        `INSERT INTO ${schema}.raw_webhooks (received_at_ms, body, sha256) VALUES (1, $1, $2) RETURNING id`,
        [first.body, first.sha256],
      );
      const storing = store.ingestBatch([
        { raw: raw('{"second":1}', '+1 555 0100'), events: [input(status('wamid.b'))] },
        { raw: first, events: [input(status('wamid.a'))] },
        { raw: null, events: [input(status('wamid.c'))] },
      ]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await other.query('COMMIT');
      const outcomes = await storing;
      expect(outcomes[0]).toMatchObject({ isDuplicate: false, inserted: [status('wamid.b')], duplicates: 0 });
      expect(outcomes[1]).toEqual({
        rawId: Number((rows[0] as { id: string }).id),
        isDuplicate: true,
        inserted: [],
        duplicates: 1,
        merged: [],
        relistedWabas: [],
      });
      expect(outcomes[2]).toMatchObject({ rawId: null, isDuplicate: false, inserted: [status('wamid.c')] });
      expect((await listingOf(store)).map((event) => ('id' in event ? event.id : '')).sort()).toEqual([
        'wamid.b',
        'wamid.c',
      ]);
      // The stored body's display number is not written again: the new body's stays.
      expect(await store.businessNumbers({})).toEqual([
        { waba: 'W1', business: 'PN1', displayNumber: '+1 555 0100' },
      ]);
    } finally {
      await other.query('ROLLBACK').catch(() => {});
      await other.end();
      await store.close();
    }
  });

  it('upgrades version 17: the display numbers of the stored webhooks are kept, and the bill is answered', async () => {
    const schema = freshSchema();
    const before = await openPostgresStore(DATABASE_URL, { schema });
    await seedBeforeBusinessNumbers(before);
    await before.close();
    // As version 17 left it: no business_numbers.
    await admin!.query(
      `DROP TABLE ${schema}.business_numbers; DELETE FROM ${schema}.schema_migrations WHERE version >= 18`,
    );
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      await expectBusinessNumbersFilled(store);
    } finally {
      await store.close();
    }
  });

  it("upgrades version 13: a re-rate's changed units move out of its changes, in order, keys as written", async () => {
    const schema = freshSchema();
    await (await openPostgresStore(DATABASE_URL, { schema })).close();
    // As version 13 stored re-rates: the changed units inside `changes`; and a live rating, with none.
    await admin!.query(
      `DROP TABLE ${schema}.rating_changes; DELETE FROM ${schema}.schema_migrations WHERE version >= 14`,
    );
    await admin!.query(
      `INSERT INTO ${schema}.ratings (id, rated_at_ms, reason, wabas, as_of_rules, rate_cards, totals, changes)
         VALUES ('r1', 1, 'live', '["W1"]', NULL, '[]', '{}', NULL),
                ('r2', 2, 'rerate', '["W1"]', NULL, '[]', '{}', $1::json)`,
      [OLD_CHANGES],
    );
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      await expectChangesMoved(store);
    } finally {
      await store.close();
    }
  });

  it('upgrades version 9: findings and rating documents are kept as written (json), those stored before readable', async () => {
    const schema = freshSchema();
    await (await openPostgresStore(DATABASE_URL, { schema })).close();
    // A store as version 9 left it: the documents in jsonb, one finding and one rating stored so.
    await admin!.query(
      `ALTER TABLE ${schema}.findings ALTER COLUMN payload TYPE jsonb USING payload::jsonb;
       ALTER TABLE ${schema}.ratings ALTER COLUMN totals TYPE jsonb USING totals::jsonb,
         ALTER COLUMN changes TYPE jsonb USING changes::jsonb,
         ALTER COLUMN totals_by_waba TYPE jsonb USING totals_by_waba::jsonb;
       INSERT INTO ${schema}.ratings (id, rated_at_ms, reason, wabas, as_of_rules, rate_cards, totals, changes)
         VALUES ('r0', 0, 'rerate', '["W1"]', NULL, '[]', '{}', '{"period":{"toMs":null,"fromMs":0},"changed":0}');
       INSERT INTO ${schema}.findings (rating_id, waba, code, payload)
         VALUES ('r0', 'W1', 'NO_RATE', '{"code":"NO_RATE","message":"old","waba":"W1"}');
       DELETE FROM ${schema}.schema_migrations WHERE version = 10`,
    );
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      const { rows } = await admin!.query(
        `SELECT table_name, column_name, data_type FROM information_schema.columns
         WHERE table_schema = $1 AND data_type IN ('json', 'jsonb') ORDER BY table_name, column_name`,
        [schema],
      );
      expect(
        rows
          .map((row: Record<string, string>) => `${row.table_name}.${row.column_name} ${row.data_type}`)
          .sort(), // in code-unit order: the server's collation orders "rating_changes" and "ratings" its way
      ).toEqual([
        'events.payload jsonb',
        'findings.payload json',
        'rating_changes.change json',
        'ratings.changes json',
        'ratings.rate_cards jsonb',
        'ratings.totals json',
        'ratings.totals_by_waba json',
        'ratings.wabas jsonb',
        'units.messages jsonb',
        'units.tier jsonb',
      ]);
      // Stored before: readable, in the order jsonb left (it cannot be told back).
      expect(JSON.stringify(await store.listFindings({}))).toBe(
        '[{"code":"NO_RATE","waba":"W1","message":"old"}]',
      );
      expect(JSON.stringify((await store.listRatings(1))[0]!.changes)).toBe(
        '{"period":{"toMs":null,"fromMs":0},"changed":0}',
      );
      // Stored after: as written. The scope queries of ratings still read `wabas` (jsonb).
      await store.replaceRating(
        ratingRecord('r1', { reason: 'rerate', changes: { period: { fromMs: 0, toMs: null } } }),
        { units: [], pending: [], findings: [{ code: 'NO_RATE', message: 'new', waba: 'W1' }] },
      );
      expect(JSON.stringify(await store.listFindings({ wabas: ['W1'] }))).toBe(
        '[{"code":"NO_RATE","message":"new","waba":"W1"}]',
      );
      expect((await store.listRatings(10, ['W1'])).map((r) => JSON.stringify(r.changes))).toEqual([
        '{"period":{"fromMs":0,"toMs":null}}',
        '{"period":{"toMs":null,"fromMs":0},"changed":0}',
      ]);
    } finally {
      await store.close();
    }
  });

  it('upgrades version 8: statuses naming no WABA are found with a seek of an index that holds only them', async () => {
    const schema = freshSchema();
    await (await openPostgresStore(DATABASE_URL, { schema })).close();
    await admin!.query(
      `DROP INDEX ${schema}.events_unnamed_status;
       DELETE FROM ${schema}.schema_migrations WHERE version = 9`,
    );
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      const index = await admin!.query(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'events_unnamed_status'",
        [schema],
      );
      expect(String(index.rows[0]?.indexdef)).toMatch(/\(message_id\) WHERE \(waba IS NULL\)$/);
      const status: StatusEvent = {
        kind: 'status',
        atMs: 1,
        id: 'wamid.u1',
        status: 'delivered',
        business: 'PN1',
      };
      const outbound = (id: string, waba: string, business: string): OutboundEvent => ({
        kind: 'outbound',
        atMs: 0,
        waba,
        business,
        user: '919876543210',
        id,
        template: 'utility',
      });
      const input = (event: StatusEvent | OutboundEvent) => ({
        key: eventKey(event),
        event,
        receivedAtMs: 2,
        source: 'import:x',
      });
      await store.ingestEvents([input(outbound('wamid.u0', 'W2', 'PN1')), input(status)]);
      // The send log of that status (naming another number) takes it from PN1's owner, W2: found by its id.
      expect(await store.ingestEvents([input(outbound('wamid.u1', 'W1', 'PN9'))])).toMatchObject({
        relistedWabas: ['W2'],
      });
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        await client.query(`SET search_path = ${schema}; SET enable_seqscan = off`);
        const { rows } = await client.query(
          "EXPLAIN SELECT 1 FROM events s WHERE s.waba IS NULL AND s.message_id = ANY($1::text[]) AND s.kind = 'status'",
          [['wamid.u1']],
        );
        expect(rows.map((row: { 'QUERY PLAN': string }) => row['QUERY PLAN']).join('\n')).toMatch(
          /events_unnamed_status/,
        );
      } finally {
        await client.end();
      }
    } finally {
      await store.close();
    }
  });

  it("reads a business number's WABAs with a seek of events_business each, in its collation", async () => {
    // Statuses naming no WABA look up the WABAs tying their number (readUnnamedStatusWabas), as listWabas
    // does: compared in the column's own collation, PostgreSQL could not seek the next WABA in the index
    // (sorted in "C") and read the events of every WABA in turn, filtering them by number.
    const schema = freshSchema();
    const store = await openPostgresStore(DATABASE_URL, { schema });
    try {
      // W0's events (another number's) come first in WABA order, then PN1's three WABAs.
      const events = ['W2', 'W1', 'W0', 'W3'].flatMap((waba) =>
        Array.from({ length: 500 }, (_, i): OutboundEvent => ({
          kind: 'outbound',
          atMs: i,
          waba,
          business: waba === 'W0' ? 'PN2' : 'PN1',
          user: `9198765${String(i).padStart(5, '0')}`,
          id: `wamid.${waba}.${i}`,
          template: 'utility',
        })),
      );
      await store.ingestEvents(
        events.map((event) => ({ key: eventKey(event), event, receivedAtMs: 2, source: 'import:x' })),
      );
      expect(await store.listWabas('PN1')).toEqual(['W1', 'W2', 'W3']);
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        await client.query(`SET search_path = ${schema}; ANALYZE events`);
        const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${NUMBER_WABAS_SQL}`, ['PN1']);
        // Every row the walk read from events, kept or filtered out: a seek per step reads one entry, four steps.
        let read = 0;
        const visit = (node: {
          'Relation Name'?: string;
          'Actual Rows': number;
          'Rows Removed by Filter'?: number;
          'Actual Loops': number;
          Plans?: unknown[];
        }) => {
          if (node['Relation Name'] === 'events') {
            read += (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0)) * node['Actual Loops'];
          }
          for (const child of node.Plans ?? []) visit(child as typeof node);
        };
        visit((rows[0] as { 'QUERY PLAN': [{ Plan: Parameters<typeof visit>[0] }] })['QUERY PLAN'][0].Plan);
        expect(read).toBeGreaterThan(0);
        expect(read).toBeLessThanOrEqual(4);
      } finally {
        await client.end();
      }
    } finally {
      await store.close();
    }
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    await expect(openPostgresStore(DATABASE_URL, { schema: 'x; DROP TABLE units' })).rejects.toThrow(
      /identifier/,
    );
  });
});

describe('PostgreSQL opened read-only (commands that only read: estimate, rerate --dry-run)', () => {
  /** The URL of `schema` through search_path, as a user writes it. */
  const urlOf = (schema: string) => {
    const url = new URL(DATABASE_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    return url.toString();
  };
  const tablesOf = async (schema: string) =>
    (
      await admin!.query(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [schema],
      )
    ).rows.map((row: { table_name: string }) => row.table_name);
  const server = new URL(DATABASE_URL);
  const database = `the PostgreSQL database at ${server.hostname}:${server.port || '5432'}${server.pathname}`;
  const schemaExists = async (schema: string) =>
    (await admin!.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1;

  it('refuses an empty schema (NO_STORE) and creates no table in it', async () => {
    const schema = freshSchema();
    await admin!.query(`CREATE SCHEMA ${schema}`);
    await expect(openStore(urlOf(schema), { isReadOnly: true })).rejects.toMatchObject({
      code: 'NO_STORE',
      message: `no wameter store in the schema "${schema}" of ${database}: it holds no wameter tables`,
    });
    expect(await tablesOf(schema)).toEqual([]);
  });

  it('refuses a search_path or a schema option naming no schema that exists (NO_STORE), creating none', async () => {
    const schema = freshSchema();
    await expect(openStore(urlOf(schema), { isReadOnly: true })).rejects.toMatchObject({
      code: 'NO_STORE',
      message: `no wameter store in ${database}: no schema of its search_path (${schema}) exists`,
    });
    await expect(openPostgresStore(DATABASE_URL, { schema, isReadOnly: true })).rejects.toMatchObject({
      code: 'NO_STORE',
    });
    expect(await schemaExists(schema)).toBe(false);
  });

  it('refuses a store an older wameter left (STORE_NEEDS_MIGRATION) without migrating it', async () => {
    const schema = freshSchema();
    await (await openPostgresStore(DATABASE_URL, { schema })).close();
    await admin!.query(
      `DROP TRIGGER events_changed ON ${schema}.events;
       ALTER TABLE ${schema}.ratings DROP COLUMN totals_by_waba, DROP COLUMN accounts_digest;
       ALTER TABLE ${schema}.events DROP COLUMN tied_user, DROP COLUMN business, DROP COLUMN is_trusted;
       DROP INDEX ${schema}.events_unnamed_status;
       ALTER TABLE ${schema}.ratings DROP COLUMN engine_digest;
       ALTER TABLE ${schema}.ratings DROP COLUMN rate_cards_digest;
       DELETE FROM ${schema}.schema_migrations WHERE version >= 6`,
    );
    await expect(openPostgresStore(DATABASE_URL, { schema, isReadOnly: true })).rejects.toMatchObject({
      code: 'STORE_NEEDS_MIGRATION',
      message: `the wameter store in the schema "${schema}" of ${database} is older than this wameter (schema migration 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22 not applied yet), and a read-only open does not migrate it`,
    });
    const { rows } = await admin!.query(`SELECT max(version) AS newest FROM ${schema}.schema_migrations`);
    expect(rows).toEqual([{ newest: 5 }]);
  });

  it('refuses a store a newer wameter migrated, as a writing open does', async () => {
    const schema = freshSchema();
    await (await openPostgresStore(DATABASE_URL, { schema })).close();
    await admin!.query(`INSERT INTO ${schema}.schema_migrations VALUES (99, 'from the future', 0)`);
    await expect(openStore(urlOf(schema), { isReadOnly: true })).rejects.toThrow(
      /^this database was migrated by a newer wameter/,
    );
  });

  it('reads a store that a writing open migrated, and the server refuses every write', async () => {
    const schema = freshSchema();
    const event = ONE_INBOUND;
    const writer = await openPostgresStore(DATABASE_URL, { schema });
    await writer.ingestEvents([{ key: 'W1:inbound:m1', event, receivedAtMs: 2, source: 'api:test' }]);
    await writer.close();
    const store = await openStore(urlOf(schema), { isReadOnly: true });
    try {
      expect(await listingOf(store)).toEqual([event]);
      await expect(
        store.ingestEvents([
          { key: 'W1:inbound:m2', event: { ...event, id: 'm2' }, receivedAtMs: 3, source: 'api:test' },
        ]),
      ).rejects.toThrow(/read-only transaction/);
      await expect(store.migrate()).rejects.toThrow(/opened read-only/);
    } finally {
      await store.close();
    }
    const { rows } = await admin!.query(`SELECT count(*)::int AS n FROM ${schema}.events`);
    expect(rows).toEqual([{ n: 1 }]);
  });
});

/**
 * A TCP proxy to the test server that can fall silent: while silenced it forwards nothing either way and
 * closes nothing, as a network partition that drops packets; `speak` forwards again (what was dropped is lost,
 * so a connection used meanwhile is broken for good).
 */
async function silenceableProxy(): Promise<{ url: string; silence(): void; speak(): void; close(): void }> {
  const target = new URL(DATABASE_URL);
  let isSilent = false;
  const sockets: Socket[] = [];
  const proxy = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.push(client, upstream);
    client.on('data', (chunk) => void (isSilent || upstream.write(chunk)));
    upstream.on('data', (chunk) => void (isSilent || client.write(chunk)));
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = new URL(DATABASE_URL);
  url.hostname = '127.0.0.1';
  url.port = String((proxy.address() as AddressInfo).port);
  return {
    url: url.toString(),
    silence: () => void (isSilent = true),
    speak: () => void (isSilent = false),
    close() {
      for (const socket of sockets) socket.destroy();
      proxy.close();
    },
  };
}

describe('a query past its bound', () => {
  it("is a StoreTimeoutError when pg's own query_timeout says so, even a moment before the deadline by the clock", async () => {
    // pg's timer may fire up to a millisecond before performance.now() reaches the deadline.
    const client = {
      query: () => Promise.reject(new Error('Query read timeout')),
    } as unknown as pg.PoolClient;
    const bounded = withBound(client, performance.now(), { scope: 'each', ms: 60_000, operation: 'read' });
    await expect(bounded.query('SELECT 1')).rejects.toMatchObject({
      name: 'StoreTimeoutError',
      isConnectionLost: true,
      message: 'the database did not answer the read within 60 s',
    });
    // Any other failure before the deadline is the failure itself.
    const failing = { query: () => Promise.reject(new Error('boom')) } as unknown as pg.PoolClient;
    await expect(
      withBound(failing, performance.now(), { scope: 'each', ms: 60_000, operation: 'read' }).query(
        'SELECT 1',
      ),
    ).rejects.toThrow(/^boom$/);
  });
});
