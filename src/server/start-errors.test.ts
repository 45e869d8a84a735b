// Start-up errors about a SQLite database this user may not write, through the real start (startServer on
// real files): refused before the service listens, naming the file or its folder and what to do.

import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, truncateSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { testConfig } from '../../test/server-kit.js';
import { makeUnwritable } from '../../test/support/unwritable.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { createMemoryLogger } from './logger.js';
import { startServer } from './main.js';
import { explainStartError } from './start-errors.js';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'wameter-start-errors-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function startOn(file: string) {
  return startServer(testConfig({ db: `sqlite:${file}`, port: 0, host: '127.0.0.1' }), {
    logger: createMemoryLogger(),
    ratingWorkerScript: null,
  });
}

/** A migrated wameter store at `file`, closed again. */
async function makeStore(file: string): Promise<void> {
  await (await openSqliteStore(file)).close();
}

/** What `starting` is refused with (it must be refused: a started server is closed and fails the test). */
async function refusal(starting: ReturnType<typeof startOn>): Promise<string> {
  const outcome = await starting.then(
    async (server) => {
      await server.close();
      return undefined;
    },
    (error: unknown) => (error as Error).message,
  );
  if (outcome === undefined) expect.unreachable('the service started on a database it may not write');
  return outcome;
}

describe('a SQLite database this user may not write', () => {
  it('a read-only database file is refused at start, naming it and what to do (not at the first webhook)', async () => {
    const file = join(dir, 'read-only.db');
    await makeStore(file);
    onTestFinished(makeUnwritable(file));

    expect(await refusal(startOn(file))).toMatch(
      new RegExp(
        `^cannot write the SQLite database ${escape(file)}: the file is read-only for this user \\(SQLITE_READONLY\\).*make it writable by the user wameter runs as`,
      ),
    );
    expect(existsSync(`${file}.writer-lock`)).toBe(false);
  });

  it("a folder it may not write is named with the database, never the writer lock's temporary file", async () => {
    const folder = join(dir, 'read-only-folder');
    mkdirSync(folder);
    const file = join(folder, 'wameter.db');
    await makeStore(file);
    // A reader keeps the -wal and -shm files (a `sqlite3` shell, a `wameter estimate`): SQLite opens the file,
    // and the start fails later, making the writer lock's file.
    const reader = new Database(file, { readonly: true });
    reader.prepare('SELECT count(*) FROM events').get();
    onTestFinished(() => {
      reader.close();
    });
    const undo = makeUnwritable(folder);
    onTestFinished(undo);
    const expected = new RegExp(
      `^cannot write the SQLite database ${escape(file)}: its folder ${escape(folder)} is not writable by this user \\((EACCES|EPERM)\\), .*wameter\\.db\\.writer-lock.*make the folder writable by the user wameter runs as, or move the database`,
    );

    const whileRead = await refusal(startOn(file));
    expect(whileRead).toMatch(expected);
    expect(whileRead).not.toContain('.new-');
    expect(existsSync(`${file}.writer-lock`)).toBe(false);

    // Without the reader, SQLite cannot make its -wal file: the same words.
    reader.close();
    undo();
    rmSync(`${file}-wal`, { force: true });
    rmSync(`${file}-shm`, { force: true });
    onTestFinished(makeUnwritable(folder));
    expect(await refusal(startOn(file))).toMatch(
      new RegExp(
        `^cannot write the SQLite database ${escape(file)}: its folder ${escape(folder)} is not writable by this user \\(SQLITE_CANTOPEN\\).*make the folder writable`,
      ),
    );
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('a damaged SQLite database', () => {
  it('is refused at start naming the file, and saying to keep it and restore or recover it (SQLite names no file)', async () => {
    const file = join(dir, 'damaged.db');
    await makeStore(file);
    // Cut short (a copy taken while it was written, a torn write): its pages point past the end.
    truncateSync(file, 3 * 4096);

    const message = await refusal(startOn(file));
    expect(message).toMatch(
      new RegExp(
        `^the SQLite database ${escape(file)} is damaged \\(SQLITE_CORRUPT: database disk image is malformed\\): wameter does not start on it; keep the file.*restore the latest backup.*sqlite3 ${escape(file)} \\.recover \\| sqlite3 NEW\\.db`,
      ),
    );
    expect(existsSync(`${file}.writer-lock`)).toBe(false);
  });
});

describe('a SQLite database on a full disk', () => {
  it('is said so at start, naming the folder and what to do (SQLite says only "database or disk is full")', () => {
    const folder = mkdtempSync(join(tmpdir(), 'wameter-full-'));
    onTestFinished(() => rmSync(folder, { recursive: true, force: true }));
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const explained = explainStartError(`sqlite:${join(folder, 'new.db')}`, full) as Error;
    expect(explained.message).toBe(
      `cannot write the SQLite database ${join(folder, 'new.db')}: the disk holding ${folder} is full (SQLITE_FULL); free space on it (df ${folder}), then start wameter again`,
    );
    expect(explained.cause).toBe(full);
  });
});

describe('a PostgreSQL database that does not exist', () => {
  const base = new URL(process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test');

  it('is said so with the host and port, the setting to check and how to create it (the real start)', async () => {
    const url = new URL(base);
    url.pathname = '/wameter_no_such_db';
    const message = await refusal(
      startServer(testConfig({ db: url.toString(), port: 0, host: '127.0.0.1' }), {
        logger: createMemoryLogger(),
        ratingWorkerScript: null,
      }),
    );
    const user = url.username === '' ? '' : ` -U ${url.username}`;
    expect(message).toBe(
      `the database "wameter_no_such_db" does not exist on the PostgreSQL server at ${url.hostname}:${url.port || '5432'}: create it (createdb -h ${url.hostname} -p ${url.port || '5432'}${user} wameter_no_such_db, or CREATE DATABASE wameter_no_such_db; in psql), or fix the database name (the URL's path) in --db, WAMETER_DB, DATABASE_URL or the config file's "db"`,
    );
  });

  it('never shows the password, and quotes a name that needs it', () => {
    const missing = Object.assign(new Error('database "Billing DB" does not exist'), { code: '3D000' });
    const explained = explainStartError(
      'postgres://wameter:Hush-Pw@db.internal:6543/Billing%20DB?password=QueryPw',
      missing,
    ) as Error;
    expect(explained.message).toBe(
      `the database "Billing DB" does not exist on the PostgreSQL server at db.internal:6543: create it (createdb -h db.internal -p 6543 -U wameter 'Billing DB', or CREATE DATABASE "Billing DB"; in psql), or fix the database name (the URL's path) in --db, WAMETER_DB, DATABASE_URL or the config file's "db"`,
    );
    expect(explained.cause).toBe(missing);
    expect(explained.message).not.toMatch(/Hush-Pw|QueryPw/);
  });

  it("keeps the hint of PostgreSQL's other refusals, whatever letters their SQLSTATE holds", () => {
    const role = Object.assign(new Error('role "nobody" does not exist'), { code: '28000' });
    expect((explainStartError('postgres://nobody:pw@127.0.0.1:5432/test', role) as Error).message).toBe(
      'the PostgreSQL database at 127.0.0.1:5432/test refused: role "nobody" does not exist (check --db, WAMETER_DB, DATABASE_URL or the config file\'s "db")',
    );
    const internal = Object.assign(new Error('could not open file'), { code: 'XX000' });
    expect((explainStartError('postgres://u@127.0.0.1/test', internal) as Error).message).toBe(
      'the PostgreSQL database at 127.0.0.1:5432/test refused: could not open file (check --db, WAMETER_DB, DATABASE_URL or the config file\'s "db")',
    );
    // An errno of five capitals is no SQLSTATE: left as it is.
    const pipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    expect(explainStartError('postgres://u@127.0.0.1/test', pipe)).toBe(pipe);
  });
});

describe('a PostgreSQL URL whose port answers as no PostgreSQL does', () => {
  // The driver's words alone ("Connection terminated unexpectedly") named neither the database nor what to check.
  it.each([
    [
      'closes the connection at once (a proxy, a server refusing this host)',
      (socket: Socket) => socket.destroy(),
      'closed the connection',
    ],
    [
      'answers in another protocol (another server on that port)',
      (socket: Socket) => socket.write(Buffer.from([0x4a, 0, 0, 0, 5, 0x0a])),
      'answered in another protocol',
    ],
    [
      'never answers (packets dropped by a firewall)',
      () => {},
      'did not answer within the connection timeout',
    ],
  ])(
    'a server that %s is said so, naming the database and the setting to check',
    async (_, behave, words) => {
      const server = createServer(behave);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      onTestFinished(() => void server.close());
      const { port } = server.address() as AddressInfo;
      const url = `postgres://u:Hush-Pw@127.0.0.1:${port}/billing`;
      // As the store connects (postgres-store.ts: a pool with a connection timeout).
      const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: 300 });
      const failure: unknown = await pool.query('SELECT 1').then(
        () => undefined,
        (error: unknown) => error,
      );
      await pool.end();
      const explained = explainStartError(url, failure) as Error;
      expect(explained).not.toBe(failure);
      expect(explained.message).toContain(`the PostgreSQL database at 127.0.0.1:${port}/billing`);
      expect(explained.message).toContain(words);
      expect(explained.message).toMatch(/; check --db, WAMETER_DB, DATABASE_URL or the config file's "db"$/);
      expect(explained.message).not.toContain('Hush-Pw');
      expect(explained.cause).toBe(failure);
    },
  );
});
