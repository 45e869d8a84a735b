// The single-writer lock on real engines: a SQLite lock file and a PostgreSQL advisory lock, each held by
// this process, by another live process, and by a process killed with SIGKILL.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { compileSources } from '../../test/support/build-server.js';
import { makeUnwritable } from '../../test/support/unwritable.js';
import { filesWithoutStore } from '../../test/support/sqlite-files.js';
import { ratingRecord } from '../../test/support/ratings.js';
import { eventKey } from '../core/events.js';
import { openStore } from './open-store.js';
import type { RatingRecord, Store } from './store.js';
import { billableUnit } from '../../test/support/units.js';
import {
  acquireWriterLock,
  openWriterStore,
  WriterLockFolderError,
  WriterLockHeldError,
  WriterLockLostError,
  type WriterLock,
} from './writer-lock.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BUILD = join(ROOT, '.tmp', 'writer-lock-build');
const DATABASE_URL = process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'wameter-writer-lock-')));
const children: ChildProcess[] = [];
const schemas: string[] = [];
let admin: pg.Client;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5_000 });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${DATABASE_URL}: ${(error as Error).message} (set WAMETER_TEST_POSTGRES_URL)`,
    );
  }
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

/** The refusal `acquire` ends with (it must refuse). */
async function refusal(acquire: Promise<WriterLock>): Promise<WriterLockHeldError> {
  const error = await acquire.then(
    async (lock) => {
      await lock.release();
      throw new Error('the lock was granted twice');
    },
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(WriterLockHeldError);
  return error as WriterLockHeldError;
}

/** A pid that names no process any more: a child that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  return child.pid!;
}

/** A child process that takes the lock with the compiled module, says so, then waits to be killed. */
async function childHoldingLock(url: string): Promise<ChildProcess> {
  const script = `
    const { acquireWriterLock } = await import(process.argv[1]);
    await acquireWriterLock(process.argv[2], { command: 'serve' });
    console.log('locked');
    setInterval(() => {}, 1000);`;
  const module = pathToFileURL(join(BUILD, 'src', 'store', 'writer-lock.js')).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, module, url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => line === 'locked' && resolve());
    child.once('exit', (code) => reject(new Error(`the child exited (${code}): ${stderr}`)));
  });
  return child;
}

async function killed(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('the writer lock on SQLite (a lock file beside the database)', () => {
  const db = (name: string) => `sqlite:${join(dir, `${name}.db`)}`;
  const lockFile = (name: string) => join(dir, `${name}.db.writer-lock`);

  it('leaves nothing beside a folder or a file of another kind given as the database (a mistyped --db)', async () => {
    const place = mkdtempSync(join(dir, 'not-a-store-'));
    const folder = join(place, 'folder');
    mkdirSync(folder);
    const accounts = join(place, 'accounts.json');
    writeFileSync(accounts, '{"accounts":[]}\n');
    await expect(openWriterStore(`sqlite:${folder}`, 'import')).rejects.toThrow();
    await expect(openWriterStore(`sqlite:${accounts}`, 'import')).rejects.toThrow(/not a database/);
    expect(readdirSync(place).sort()).toEqual(['accounts.json', 'folder']);
    expect(readFileSync(accounts, 'utf8')).toBe('{"accounts":[]}\n');
  });

  it("leaves nothing beside another program's SQLite database given as the database, nor changes it", async () => {
    // Refused by the store (it holds other tables), as before; the lock taken first left its `.alive` file
    // (an empty SQLite database) beside the user's file, which is not wameter's to litter.
    const place = mkdtempSync(join(dir, 'foreign-'));
    const foreign = join(place, 'notes.db');
    const other = new Database(foreign);
    other.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')");
    other.close();
    // In WAL mode too (its -wal and -shm files come and go with its connections).
    const walForeign = join(place, 'wal-notes.db');
    const walOther = new Database(walForeign);
    walOther.pragma('journal_mode = WAL');
    walOther.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')");
    walOther.close();
    const before = readdirSync(place).sort();
    expect(before).toEqual(['notes.db', 'wal-notes.db']);

    for (const file of [foreign, walForeign]) {
      await expect(openWriterStore(`sqlite:${file}`, 'import')).rejects.toThrow(
        `the SQLite file ${file} is not a wameter database (it holds other tables: notes): another program's data, left as it is; give wameter a file of its own`,
      );
      await expect(openWriterStore(file, 'rerate')).rejects.toThrow(/not a wameter database/);
      // The lock alone refuses it too: its files would be made beside the user's.
      await expect(acquireWriterLock(`sqlite:${file}`, { command: 'serve' })).rejects.toThrow(
        `${file} is not a wameter database (it holds other tables: notes)`,
      );
    }
    expect(readdirSync(place).sort()).toEqual(before);
    for (const file of [foreign, walForeign]) {
      const after = new Database(file, { readonly: true });
      expect(after.prepare('SELECT name FROM sqlite_master').pluck().all()).toEqual(['notes']);
      expect(after.prepare('SELECT body FROM notes').pluck().all()).toEqual(['keep me']);
      after.close();
    }
  });

  it("a foreign SQLite database in a folder this process may not write: refused as not wameter's, nothing made", async () => {
    const folder = mkdtempSync(join(dir, 'foreign-read-only-'));
    const foreign = join(folder, 'notes.db');
    const other = new Database(foreign);
    other.exec('CREATE TABLE notes (body TEXT)');
    other.close();
    onTestFinished(makeUnwritable(folder));
    await expect(openWriterStore(`sqlite:${foreign}`, 'import')).rejects.toThrow(
      `the SQLite file ${foreign} is not a wameter database (it holds other tables: notes)`,
    );
    expect(readdirSync(folder)).toEqual(['notes.db']);
  });

  it('an empty file or a SQLite file without tables becomes a store, and gets its lock files as any store', async () => {
    const { empty, bare } = filesWithoutStore(dir, 'becomes-a-store-');
    for (const file of [empty, bare]) {
      const store = await openWriterStore(`sqlite:${file}`, 'import');
      try {
        expect(existsSync(`${file}.writer-lock`)).toBe(true);
        await refusal(acquireWriterLock(`sqlite:${file}`, { command: 'rerate' }));
      } finally {
        await store.close();
      }
      expect(existsSync(`${file}.writer-lock`)).toBe(false);
      expect(existsSync(`${file}.writer-lock.alive`)).toBe(true);
    }
  });

  it('refuses a second acquirer, naming the holder: command, pid, host and since when', async () => {
    const lock = await acquireWriterLock(db('twice'), { command: 'serve' });
    try {
      const error = await refusal(acquireWriterLock(db('twice'), { command: 'rerate' }));
      expect(error.message).toMatch(
        new RegExp(
          `^a wameter serve \\(pid ${process.pid} on ${hostname()}, since \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\) ` +
            'is rating this database: re-rate through its POST /v1/rerate, or stop it first',
        ),
      );
      expect(error.message).toContain(`delete ${lockFile('twice')}`);
      expect(error.holder).toMatchObject({ command: 'serve', pid: process.pid, hostname: hostname() });
      expect(JSON.parse(readFileSync(lockFile('twice'), 'utf8'))).toMatchObject({
        command: 'serve',
        pid: process.pid,
        hostname: hostname(),
      });
    } finally {
      await lock.release();
    }
  });

  it('tells each command what to do instead: import through POST /v1/events, a second serve elsewhere', async () => {
    const lock = await acquireWriterLock(db('advice'), { command: 'serve' });
    try {
      expect((await refusal(acquireWriterLock(db('advice'), { command: 'import' }))).message).toContain(
        'send the events to its POST /v1/events (it rates them), or stop it first',
      );
      expect((await refusal(acquireWriterLock(db('advice'), { command: 'serve' }))).message).toContain(
        'run one wameter serve per database',
      );
    } finally {
      await lock.release();
    }
    const rerate = await acquireWriterLock(db('advice'), { command: 'rerate' });
    try {
      expect((await refusal(acquireWriterLock(db('advice'), { command: 'serve' }))).message).toMatch(
        /^a wameter rerate \(pid \d+ on .*\) is rating this database: wait for it to finish, or stop it first/,
      );
    } finally {
      await rerate.release();
    }
  });

  it('never takes over the lock of a holder still publishing it (the alive lock held, its file not yet written)', async () => {
    // Another process between taking the alive lock and writing its file (a worker thread here, holding the
    // alive lock as a holder does, then publishing the file 100 ms later, whole, as createWhole does: written
    // beside it and linked — written in place, an acquirer reading it half-written was refused naming no one):
    // an acquirer then must wait and be refused, naming it — not publish its own file, nor take the other's
    // over once it is written (which left a live holder without its file, and later writers refused with no
    // holder named).
    const lockPath = lockFile('publishing');
    const publisher = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const Database = require(workerData.sqlite);
       const alive = new Database(workerData.lockPath + '.alive', { timeout: 0 });
       alive.exec('BEGIN EXCLUSIVE');
       parentPort.postMessage('holding');
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
       const fs = require('node:fs');
       fs.writeFileSync(workerData.lockPath + '.new-publisher', workerData.content);
       fs.linkSync(workerData.lockPath + '.new-publisher', workerData.lockPath);
       fs.unlinkSync(workerData.lockPath + '.new-publisher');
       parentPort.once('message', () => { alive.exec('ROLLBACK'); alive.close(); parentPort.postMessage('done'); });`,
      {
        eval: true,
        workerData: {
          sqlite: createRequire(import.meta.url).resolve('better-sqlite3'),
          lockPath,
          content: `${JSON.stringify({ command: 'serve', pid: 4242, hostname: 'elsewhere', startedAtMs: 0, alive: true })}\n`,
        },
      },
    );
    onTestFinished(async () => {
      await publisher.terminate();
    });
    await new Promise((resolve) => publisher.once('message', resolve));
    const error = await refusal(acquireWriterLock(db('publishing'), { command: 'import' }));
    expect(error.message).toMatch(/^a wameter serve \(pid 4242 on elsewhere, since 1970-01-01T00:00:00Z\)/);
    expect(JSON.parse(readFileSync(lockPath, 'utf8'))).toMatchObject({ pid: 4242 });
    publisher.postMessage('release');
    await new Promise((resolve) => publisher.once('message', resolve));
  });

  it('can be taken again once released, and the lock file is gone', async () => {
    const first = await acquireWriterLock(db('again'), { command: 'serve' });
    await first.release();
    await first.release(); // twice is harmless
    expect(existsSync(lockFile('again'))).toBe(false);
    const second = await acquireWriterLock(db('again'), { command: 'rerate' });
    expect(existsSync(lockFile('again'))).toBe(true);
    await second.release();
  });

  it('takes over the lock file of a process that no longer runs, and says so', async () => {
    const pid = deadPid();
    writeFileSync(
      lockFile('dead'),
      JSON.stringify({ command: 'serve', pid, hostname: hostname(), startedAtMs: 1_754_000_000_000 }),
    );
    const notices: string[] = [];
    const lock = await acquireWriterLock(
      db('dead'),
      { command: 'rerate' },
      { onNotice: (message) => notices.push(message) },
    );
    try {
      expect(notices).toEqual([
        `took over the writer lock ${lockFile('dead')}: a wameter serve (pid ${pid} on ${hostname()}, since 2025-07-31T22:13:20Z) no longer runs`,
      ]);
      expect(JSON.parse(readFileSync(lockFile('dead'), 'utf8'))).toMatchObject({
        command: 'rerate',
        pid: process.pid,
      });
    } finally {
      await lock.release();
    }
  });

  it('takes over one at a time: waits for another takeover, then reads the lock again before removing it', async () => {
    const stale = JSON.stringify({ command: 'serve', pid: deadPid(), hostname: hostname(), startedAtMs: 1 });
    // Another process mid-takeover: it holds the takeover lock, takes the dead lock over (its own content in
    // the file, as its takeover and create would leave it), and lets go only then.
    const takeover = async (name: string, replaceWith: string | null) => {
      writeFileSync(lockFile(name), stale);
      const script = `
        const Database = require('better-sqlite3');
        const fs = require('node:fs');
        const [guardPath, lockPath, replaceWith] = process.argv.slice(1);
        const guard = new Database(guardPath);
        guard.exec('BEGIN EXCLUSIVE');
        console.log('guarding');
        setTimeout(() => {
          if (replaceWith !== '-') fs.writeFileSync(lockPath, replaceWith);
          fs.writeFileSync(lockPath + '.done', '');
          guard.exec('ROLLBACK');
          setInterval(() => {}, 1000);
        }, 300);`;
      const child = spawn(
        process.execPath,
        ['-e', script, `${lockFile(name)}.takeover`, lockFile(name), replaceWith ?? '-'],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(child);
      await new Promise<void>((resolve) => {
        createInterface({ input: child.stdout! }).on('line', (line) => line === 'guarding' && resolve());
      });
      return child;
    };

    // It took the lock over for itself: this acquirer waits for it, then finds a live lock and is refused.
    const first = await takeover(
      'guarded',
      JSON.stringify({ command: 'serve', pid: process.ppid, hostname: hostname(), startedAtMs: 2 }),
    );
    const error = await refusal(acquireWriterLock(db('guarded'), { command: 'rerate' }));
    expect(existsSync(`${lockFile('guarded')}.done`)).toBe(true);
    expect(error.holder?.pid).toBe(process.ppid);
    await killed(first);

    // It gave up (the file still the dead one's): this acquirer waits, then takes it over itself.
    const second = await takeover('gave-up', null);
    const notices: string[] = [];
    const lock = await acquireWriterLock(
      db('gave-up'),
      { command: 'rerate' },
      { onNotice: (n) => notices.push(n) },
    );
    expect(existsSync(`${lockFile('gave-up')}.done`)).toBe(true);
    expect(notices).toHaveLength(1);
    expect(JSON.parse(readFileSync(lockFile('gave-up'), 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
    await killed(second);
  });

  it('refuses the lock file of a live process, and of a process on another host (which it cannot check)', async () => {
    const sleeper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(sleeper);
    writeFileSync(
      lockFile('live'),
      JSON.stringify({ command: 'serve', pid: sleeper.pid, hostname: hostname(), startedAtMs: 0 }),
    );
    expect((await refusal(acquireWriterLock(db('live'), { command: 'rerate' }))).holder?.pid).toBe(
      sleeper.pid,
    );
    writeFileSync(
      lockFile('elsewhere'),
      JSON.stringify({ command: 'serve', pid: deadPid(), hostname: 'another-host', startedAtMs: 0 }),
    );
    expect((await refusal(acquireWriterLock(db('elsewhere'), { command: 'rerate' }))).message).toContain(
      'on another-host',
    );
    sleeper.kill('SIGKILL');
  });

  it('takes over a lock file naming this very pid that this process does not hold (a restarted container)', async () => {
    writeFileSync(
      lockFile('reborn'),
      JSON.stringify({ command: 'serve', pid: process.pid, hostname: hostname(), startedAtMs: 0 }),
    );
    const lock = await acquireWriterLock(db('reborn'), { command: 'serve' });
    try {
      // Held here now: a second acquirer in this process is refused as before.
      expect((await refusal(acquireWriterLock(db('reborn'), { command: 'rerate' }))).holder?.pid).toBe(
        process.pid,
      );
    } finally {
      await lock.release();
    }
  });

  it('refuses a damaged lock file rather than guess, saying which file to delete', async () => {
    writeFileSync(lockFile('damaged'), '');
    const error = await refusal(acquireWriterLock(db('damaged'), { command: 'import' }));
    expect(error.holder).toBeNull();
    expect(error.message).toContain(`another process (lock file ${lockFile('damaged')}) is rating`);
    expect(error.message).toContain(`delete ${lockFile('damaged')}`);
  });

  it('is one lock for one file, however it is named (a symbolic link, a relative path)', async () => {
    const store = await openWriterStore(db('linked'), 'serve');
    try {
      symlinkSync(join(dir, 'linked.db'), join(dir, 'link.db'));
      await refusal(acquireWriterLock(`sqlite:${join(dir, 'link.db')}`, { command: 'rerate' }));
      await refusal(acquireWriterLock(join(dir, '..', basename(dir), 'linked.db'), { command: 'rerate' }));
    } finally {
      await store.close();
    }
  });

  it('a database file with another hard link (which has a lock of its own) is locked, with a warning', async () => {
    const store = await openStore(`sqlite:${join(dir, 'hard.db')}`);
    await store.close();
    const notices: string[] = [];
    const lock = await acquireWriterLock(
      db('hard'),
      { command: 'serve' },
      { onNotice: (m) => notices.push(m) },
    );
    await lock.release();
    expect(notices).toEqual([]);
    linkSync(join(dir, 'hard.db'), join(dir, 'hard-link.db'));
    const linked = await acquireWriterLock(
      db('hard'),
      { command: 'serve' },
      { onNotice: (m) => notices.push(m) },
    );
    await linked.release();
    expect(notices).toEqual([
      `the SQLite database ${realpathSync(join(dir, 'hard.db'))} has 2 hard links: the writer lock is taken beside the name given, so a process writing through another link is not kept out (two writers would bill messages twice, and SQLite keeps its journal beside each name: a crash could lose a transaction); remove the other links`,
    ]);
  });

  it('a folder this process may not write: names the folder and the database, never the temporary file', async () => {
    const folder = join(dir, 'read-only-folder');
    mkdirSync(folder);
    const database = join(folder, 'wameter.db');
    writeFileSync(database, '');
    onTestFinished(makeUnwritable(folder));

    const error = await acquireWriterLock(`sqlite:${database}`, { command: 'serve' }).then(
      () => expect.unreachable('the lock was taken in a folder this process may not write'),
      (error: unknown) => error,
    );
    expect(error).toBeInstanceOf(WriterLockFolderError);
    expect(error).toMatchObject({ database, folder, code: 'WRITER_LOCK_FOLDER_NOT_WRITABLE' });
    expect((error as Error).message).toMatch(
      new RegExp(
        `^cannot take the writer lock of the SQLite database ${escape(database)}: its folder ${escape(folder)} is not writable by this user \\((EACCES|EPERM)\\).*make the folder writable`,
      ),
    );
    expect((error as Error).message).not.toContain('.new-');
    expect(readdirSync(folder)).toEqual(['wameter.db']);
  });

  it('needs no lock for an in-memory database (no other process can open it)', async () => {
    const locks = await Promise.all([
      acquireWriterLock('sqlite::memory:', { command: 'serve' }),
      acquireWriterLock(':memory:', { command: 'serve' }),
    ]);
    await Promise.all(locks.map((lock) => lock.release()));
  });

  it("the writer's store answers as the store does: every argument passed on (a key's rating history)", async () => {
    const store = await openWriterStore(db('history'), 'serve');
    try {
      const record = (id: string, wabas: string[], ratedAtMs: number) => ({
        id,
        ratedAtMs,
        reason: 'live',
        wabas,
        asOfRules: null,
        rateCards: [],
        totals: {},
      });
      await store.replaceRating(record('r1', ['W1'], 1), { units: [], pending: [], findings: [] });
      await store.replaceRating(record('r2', ['W2'], 2), { units: [], pending: [], findings: [] });
      expect((await store.listRatings(10, ['W1'])).map((r) => r.id)).toEqual(['r1']);
      expect((await store.listRatings(10)).map((r) => r.id)).toEqual(['r2', 'r1']);
    } finally {
      await store.close();
    }
  });

  it('openWriterStore holds the lock until the store is closed; a refused one closes what it opened', async () => {
    const store = await openWriterStore(db('store'), 'serve');
    await store.ping();
    expect(await store.listWabas()).toEqual([]);
    await expect(openWriterStore(db('store'), 'import')).rejects.toThrow(/is rating this database/);
    await store.close();
    expect(existsSync(lockFile('store'))).toBe(false);
    const next = await openWriterStore(db('store'), 'import');
    await next.close();
  });
});

describe('a writer refused the lock migrates nothing (an older wameter may be running on the store)', () => {
  it('SQLite: the store stays at the schema its running writer knows', async () => {
    const url = `sqlite:${join(dir, 'older.db')}`;
    await (await openStore(url)).close();
    const raw = new Database(join(dir, 'older.db'));
    raw.exec(
      'DROP TRIGGER events_changed_on_delete; DROP TRIGGER IF EXISTS events_changed_on_insert; DROP TRIGGER IF EXISTS events_changed_on_update; DROP TABLE event_changes;' +
        'DROP TABLE event_clock; ALTER TABLE ratings DROP COLUMN events_seq; ALTER TABLE ratings DROP COLUMN setup_digest;' +
        'DROP TABLE rating_changes; ALTER TABLE ratings DROP COLUMN engine_digest; DELETE FROM schema_migrations WHERE version >= 12',
    );
    raw.close();
    const held = await acquireWriterLock(url, { command: 'serve' });
    try {
      await expect(openWriterStore(url, 'serve')).rejects.toThrow(/is rating this database/);
      const after = new Database(join(dir, 'older.db'), { readonly: true });
      expect(after.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(11);
      after.close();
    } finally {
      await held.release();
    }
    await (await openWriterStore(url, 'serve')).close();
    const migrated = new Database(join(dir, 'older.db'), { readonly: true });
    expect(migrated.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(22);
    migrated.close();
  });

  it('PostgreSQL: the schema stays at the migrations its running writer knows', async () => {
    const schema = `wameter_lock_${randomBytes(5).toString('hex')}`;
    schemas.push(schema);
    await admin.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(DATABASE_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const first = await openWriterStore(url.toString(), 'serve');
    await expect(openWriterStore(url.toString(), 'import')).rejects.toThrow(/is rating this database/);
    await first.close();
    const newest = Number(
      (await admin.query(`SELECT max(version) AS v FROM ${schema}.schema_migrations`)).rows[0].v,
    );
    // As an older wameter left it: without the migration that makes the writer fence (16) and those after.
    await admin.query(
      `DROP TABLE ${schema}.writer_fence; DELETE FROM ${schema}.schema_migrations WHERE version >= 16`,
    );
    const older = Number(
      (await admin.query(`SELECT max(version) AS v FROM ${schema}.schema_migrations`)).rows[0].v,
    );
    const held = await acquireWriterLock(url.toString(), { command: 'serve' });
    try {
      await expect(openWriterStore(url.toString(), 'serve')).rejects.toThrow(/is rating this database/);
      const { rows } = await admin.query(`SELECT max(version) AS v FROM ${schema}.schema_migrations`);
      expect(Number(rows[0].v)).toBe(older);
    } finally {
      await held.release();
    }
    // Its lock taken before the migration that makes the fence: advanced once the store is migrated.
    const store = await openWriterStore(url.toString(), 'serve');
    const rating = ratingRecord('r1');
    await store.replaceRating(rating, { units: [], pending: [], findings: [] }); // its epoch: accepted
    await store.close();
    const { rows } = await admin.query(`SELECT max(version) AS v FROM ${schema}.schema_migrations`);
    expect(Number(rows[0].v)).toBe(newest);
    const fence = await admin.query(`SELECT epoch::int AS epoch FROM ${schema}.writer_fence`);
    expect(fence.rows).toEqual([{ epoch: 1 }]);
  });
});

describe('the writer lock on PostgreSQL (a session advisory lock)', () => {
  /** A new schema, dropped after the tests, and the database URL whose connections use it. */
  async function freshSchema(): Promise<{ url: string; schema: string }> {
    const schema = `wameter_lock_${randomBytes(5).toString('hex')}`;
    schemas.push(schema);
    await admin.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(DATABASE_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    return { url: url.toString(), schema };
  }

  async function freshUrl(): Promise<string> {
    return (await freshSchema()).url;
  }

  it('refuses a second acquirer, naming the holder and its PostgreSQL session', async () => {
    const url = await freshUrl();
    const lock = await acquireWriterLock(url, { command: 'serve' });
    try {
      const error = await refusal(acquireWriterLock(url, { command: 'rerate' }));
      expect(error.message).toMatch(
        new RegExp(
          `^a wameter serve \\(pid ${process.pid} on ${hostname()}, since \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\) ` +
            'is rating this database: re-rate through its POST /v1/rerate, or stop it first',
        ),
      );
      expect(error.message).toMatch(/SELECT pg_terminate_backend\(\d+\) ends it/);
      expect(error.holder).toMatchObject({ command: 'serve', pid: process.pid, hostname: hostname() });
      expect(Math.abs(error.holder!.startedAtMs - Date.now())).toBeLessThan(60_000);
    } finally {
      await lock.release();
    }
  });

  it("keeps its idle session under the server's idle_session_timeout: the lock is not lost while held", async () => {
    // A database or role with idle_session_timeout (hardening against leaked connections) ended the lock's
    // session, idle by design, after that time: `serve` lost the lock and exited 75, again after each restart.
    const url = new URL(await freshUrl());
    url.searchParams.set('options', `${url.searchParams.get('options')} -c idle_session_timeout=300`);
    const lost: Error[] = [];
    const lock = await acquireWriterLock(
      url.toString(),
      { command: 'serve' },
      { onLost: (e) => lost.push(e) },
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // five times the server's bound
      expect(lost).toEqual([]);
      await refusal(acquireWriterLock(url.toString(), { command: 'rerate' }));
    } finally {
      await lock.release();
    }
  });

  it('can be taken again once released', async () => {
    const url = await freshUrl();
    const first = await acquireWriterLock(url, { command: 'serve' });
    await first.release();
    await first.release();
    const second = await acquireWriterLock(url, { command: 'rerate' });
    await second.release();
  });

  it('two schemas of one database are two stores: their locks never block each other', async () => {
    const [one, two] = [await freshUrl(), await freshUrl()];
    const locks = [
      await acquireWriterLock(one, { command: 'serve' }),
      await acquireWriterLock(two, { command: 'serve' }),
    ];
    await refusal(acquireWriterLock(one, { command: 'rerate' }));
    await refusal(acquireWriterLock(two, { command: 'rerate' }));
    await Promise.all(locks.map((lock) => lock.release()));
  });

  it('refuses a search_path naming no existing schema (open the store first)', async () => {
    const url = new URL(DATABASE_URL);
    url.searchParams.set('options', `-c search_path=wameter_missing_${randomBytes(5).toString('hex')}`);
    await expect(acquireWriterLock(url.toString(), { command: 'serve' })).rejects.toThrow(
      'no schema of the search_path exists: open the store first',
    );
  });

  it('a connection that fails before the lock is granted is an error thrown, never a lost lock', async () => {
    let lost: Error | undefined;
    await expect(
      acquireWriterLock(
        'postgres://postgres@127.0.0.1:1/test',
        { command: 'serve' },
        { onLost: (error) => (lost = error) },
      ),
    ).rejects.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(lost).toBeUndefined();
  });

  it('says when the lock is lost: its session was ended from outside', async () => {
    const url = await freshUrl();
    let lost: Error | undefined;
    const lock = await acquireWriterLock(url, { command: 'serve' }, { onLost: (error) => (lost = error) });
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [
      `wameter serve pid ${process.pid} on ${hostname()}`.slice(0, 63),
    ]);
    const deadline = Date.now() + 5_000;
    while (!lost && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(lost).toBeInstanceOf(Error);
    await lock.release();
    const again = await acquireWriterLock(url, { command: 'serve' });
    await again.release();
  });

  it('openWriterStore migrates the schema and holds the lock until the store is closed', async () => {
    const url = await freshUrl();
    const store = await openWriterStore(url, 'serve');
    expect(await store.listWabas()).toEqual([]);
    await expect(openWriterStore(url, 'rerate')).rejects.toThrow(/^a wameter serve \(pid/);
    await store.close();
    await (await openWriterStore(url, 'rerate')).close();
  });

  it('a store whose lock was lost writes no more ratings (events still), and says why', async () => {
    const url = await freshUrl();
    let lost: Error | undefined;
    const store = await openWriterStore(url, 'import', { onLost: (error) => (lost = error) });
    try {
      const record: RatingRecord = {
        id: 'r1',
        ratedAtMs: Date.UTC(2025, 9, 1),
        reason: 'live',
        wabas: ['W1'],
        asOfRules: null,
        rateCards: [],
        totals: {},
      };
      await store.replaceRating(record, { units: [], pending: [], findings: [] });
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
        [`wameter import pid ${process.pid} on ${hostname()}`.slice(0, 63)],
      );
      const deadline = Date.now() + 5_000;
      while (!lost && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(lost).toBeInstanceOf(Error);

      const refused = { ...record, id: 'r2' };
      await expect(store.replaceRating(refused, { units: [], pending: [], findings: [] })).rejects.toThrow(
        WriterLockLostError,
      );
      await expect(
        store.applyRatingDiff(refused, {
          units: { upsert: [], delete: [] },
          pending: { upsert: [], delete: [] },
          findings: [],
        }),
      ).rejects.toThrow(/^the single-writer lock was lost \(.+\): another process may now write ratings/);
      expect((await store.listRatings(10)).map((rating) => rating.id)).toEqual(['r1']);
      const event = {
        kind: 'inbound' as const,
        atMs: Date.UTC(2025, 9, 1),
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
        id: 'wamid.lost',
        hasReferral: false,
      };
      const outcome = await store.ingestEvents([
        { key: eventKey(event), event, receivedAtMs: Date.now(), source: 'test' },
      ]);
      expect(outcome.inserted).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it('a write of a process that lost the lock, already under way, never commits after another process took it', async () => {
    const { url, schema } = await freshSchema();
    let lost: Error | undefined;
    const old = await openWriterStore(url, 'serve', { onLost: (error) => (lost = error) });
    const rating = (id: string, atMs: number) => ratingRecord(id, { ratedAtMs: atMs, reason: 'rerate' });
    const holder = new pg.Client({ connectionString: DATABASE_URL });
    await holder.connect();
    let next: Store | undefined;
    try {
      // The old holder's re-rate, held mid-transaction (its rating row written, its changed units waiting on
      // a lock), as a large re-rate is still writing when its lock's session ends.
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${schema}.rating_changes IN SHARE MODE`);
      const stale = old
        .replaceRating(
          { ...rating('r-old', 1), changedUnits: [{ unit: 'u-old', old: null, new: null }] },
          { units: [billableUnit({ id: 'u-old', waba: 'W1' })], pending: [], findings: [] },
        )
        .then(
          () => 'committed',
          (error: unknown) => error,
        );
      const deadline = Date.now() + 5_000;
      const isWaiting = async () =>
        (
          await admin.query(
            `SELECT count(*)::int AS n FROM pg_locks WHERE relation = '${schema}.rating_changes'::regclass AND NOT granted`,
          )
        ).rows[0].n > 0;
      while (!(await isWaiting()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
        [`wameter serve pid ${process.pid} on ${hostname()}`.slice(0, 63)],
      );
      while (!lost && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(lost).toBeInstanceOf(Error);

      // Another process takes the lock and writes its bill: it waits for the old write to end (before the
      // fence it did not, and the old write, committing after, replaced the new bill with its stale one).
      const opening = openWriterStore(url, 'serve');
      const write = (store: Store) =>
        store.replaceRating(rating('r-new', 2), {
          units: [billableUnit({ id: 'u-new', waba: 'W1' })],
          pending: [],
          findings: [],
        });
      const isEarly = await Promise.race([
        opening.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500)),
      ]);
      if (isEarly) await write(await opening);
      await holder.query('ROLLBACK');
      next = await opening;
      if (!isEarly) await write(next);
      const outcome = await stale;
      // The new holder's bill stands; the old write committed before the new holder's epoch began.
      expect((await next.queryUnits({}, { limit: 10 })).units.map((unit) => unit.id)).toEqual(['u-new']);
      expect((await next.listRatings(10)).map((r) => r.id)).toEqual(['r-new', 'r-old']);
      expect(outcome).toBe('committed');
      expect(isEarly).toBe(false);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      await next?.close();
      await old.close();
    }
  });

  it('a store whose lock another process took refuses every write at the database, before it notices the loss', async () => {
    const { url, schema } = await freshSchema();
    let lost: Error | undefined;
    const store = await openWriterStore(url, 'serve', { onLost: (error) => (lost = error) });
    try {
      const record = ratingRecord('r1');
      await store.replaceRating(record, { units: [], pending: [], findings: [] });
      // What a new holder does once it has the lock (its own session still alive here: the loss unnoticed,
      // as when a partition hides it).
      const { rows } = await admin.query(
        `UPDATE ${schema}.writer_fence SET epoch = epoch + 1 RETURNING epoch::int AS epoch`,
      );
      const event = {
        kind: 'inbound' as const,
        atMs: Date.UTC(2025, 9, 1),
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
        id: 'wamid.fenced',
        hasReferral: false,
      };
      await expect(
        store.ingestEvents([{ key: eventKey(event), event, receivedAtMs: 1, source: 'test' }]),
      ).rejects.toThrow(WriterLockLostError);
      expect(lost?.message).toBe(
        `another process took the writer lock: the database's writer fence is at epoch ${rows[0].epoch}, this process's is ${rows[0].epoch - 1}`,
      );
      await expect(
        store.applyRatingDiff(
          { ...record, id: 'r2' },
          { units: { upsert: [], delete: [] }, pending: { upsert: [], delete: [] }, findings: [] },
        ),
      ).rejects.toThrow(/^the single-writer lock was lost \(another process took the writer lock/);
      expect((await store.listRatings(10)).map((rating) => rating.id)).toEqual(['r1']);
      expect(await store.listEvents()).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe('a process killed with SIGKILL holds no lock', () => {
  beforeAll(() => {
    compileSources(BUILD, ['src/store/writer-lock.ts']);
  }, 120_000);

  it('SQLite: its lock file names a dead process and is taken over', async () => {
    const url = `sqlite:${join(dir, 'killed.db')}`;
    const child = await childHoldingLock(url);
    await refusal(acquireWriterLock(url, { command: 'rerate' }));
    await killed(child);
    const notices: string[] = [];
    const lock = await acquireWriterLock(
      url,
      { command: 'rerate' },
      { onNotice: (message) => notices.push(message) },
    );
    expect(notices[0]).toContain(`a wameter serve (pid ${child.pid} on ${hostname()}`);
    await lock.release();
  });

  it('SQLite: a holder that keeps the alive lock is told apart from a dead one on another host, or behind a reused pid', async () => {
    const url = `sqlite:${join(dir, 'moved.db')}`;
    const lockPath = `${join(dir, 'moved.db')}.writer-lock`;
    const child = await childHoldingLock(url);
    // The holder's lock file as another host would have written it (a container moved): still alive.
    const held = JSON.parse(readFileSync(lockPath, 'utf8')) as Record<string, unknown>;
    expect(held.alive).toBe(true);
    writeFileSync(lockPath, JSON.stringify({ ...held, hostname: 'another-host' }));
    expect((await refusal(acquireWriterLock(url, { command: 'rerate' }))).message).toContain(
      'on another-host',
    );
    // Killed there: its alive lock went with it, and the lock is taken over (before: refused for ever).
    const stale = readFileSync(lockPath, 'utf8');
    await killed(child);
    writeFileSync(lockPath, stale);
    const notices: string[] = [];
    const lock = await acquireWriterLock(
      url,
      { command: 'serve' },
      { onNotice: (message) => notices.push(message) },
    );
    expect(notices[0]).toContain('on another-host');
    await lock.release();
    // A lock file whose pid now names another, live process (a reused pid) but whose alive lock is free.
    const sleeper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(sleeper);
    writeFileSync(lockPath, JSON.stringify({ ...held, pid: sleeper.pid, hostname: hostname() }));
    const again = await acquireWriterLock(url, { command: 'serve' });
    await again.release();
    sleeper.kill('SIGKILL');
  });

  it('PostgreSQL: the server ends its session and its advisory lock with it', async () => {
    const schema = `wameter_lock_${randomBytes(5).toString('hex')}`;
    schemas.push(schema);
    await admin.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(DATABASE_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const child = await childHoldingLock(url.toString());
    const error = await refusal(acquireWriterLock(url.toString(), { command: 'rerate' }));
    expect(error.holder?.pid).toBe(child.pid);
    await killed(child);
    // The server notices the closed socket at once; allow it a moment.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const lock = await acquireWriterLock(url.toString(), { command: 'rerate' });
        await lock.release();
        break;
      } catch (reason) {
        if (!(reason instanceof WriterLockHeldError) || Date.now() > deadline) throw reason;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
