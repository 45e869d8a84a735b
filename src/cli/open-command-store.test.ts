import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { makeUnwritable } from '../../test/support/unwritable.js';
import { filesWithoutStore } from '../../test/support/sqlite-files.js';
import { acquireWriterLock } from '../store/writer-lock.js';
import { EXIT } from './exit-codes.js';
import { sqliteFileOf } from './open-command-store.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-open-store-'));
const events = join(dir, 'events.ndjson');
writeFileSync(
  events,
  '{"kind":"inbound","at":"2025-10-15T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"in1"}\n',
);
const recipients = join(dir, 'recipients.csv');
writeFileSync(recipients, 'phone\n919876543210\n');
const MISSING_FOLDER = join(dir, 'no-such-folder');
// Port 1 on the loopback: nothing listens there, so the connection is refused at once.
const NOBODY_LISTENING = 'postgres://wameter:s3cret@127.0.0.1:1/wameter';

const NO_STACK = /\n\s+at /;

/** One line on stderr, no stack, no "internal error". */
function expectOneClearLine(err: string): void {
  expect(err.trim().split('\n')).toHaveLength(1);
  expect(err).not.toMatch(NO_STACK);
  expect(err).not.toContain('internal error');
}

describe('the SQLite file a database URL names', () => {
  it('follows openStore: sqlite:PATH, sqlite://PATH and bare paths; not PostgreSQL or memory', () => {
    expect(sqliteFileOf('sqlite:./w.db')).toBe('./w.db');
    expect(sqliteFileOf('sqlite:///var/w.db')).toBe('/var/w.db');
    expect(sqliteFileOf('/var/w.db')).toBe('/var/w.db');
    expect(sqliteFileOf('postgres://u@h:5432/db')).toBeUndefined();
    expect(sqliteFileOf('sqlite::memory:')).toBeUndefined();
    expect(sqliteFileOf('mysql://x')).toBeUndefined();
  });
});

describe('commands that create the store (import, serve)', () => {
  it('import names a missing folder and exits 1, without a stack trace', async () => {
    const { code, err } = await runWameter(['import', events, '--db', `sqlite:${MISSING_FOLDER}/w.db`]);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toBe(
      `wameter: cannot create the database ${MISSING_FOLDER}/w.db: the folder ${MISSING_FOLDER} does not exist (create it, or check --db, WAMETER_DB, DATABASE_URL or the config file's "db")\n`,
    );
  });

  it('import says nothing listens at a PostgreSQL URL, with the password masked, and exits 1', async () => {
    const { code, err } = await runWameter(['import', events, '--db', NOBODY_LISTENING]);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain('cannot open the database postgres://wameter:***@127.0.0.1:1/wameter');
    expect(err).toContain('is PostgreSQL running?');
    expect(err).not.toContain('s3cret');
    expectOneClearLine(err);
  });

  it('serve names a missing folder before starting and exits 1', async () => {
    const { code, err, out } = await runWameter(['serve', '--db', `sqlite:${MISSING_FOLDER}/w.db`]);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain(`wameter serve: cannot create the database ${MISSING_FOLDER}/w.db`);
    expect(out).toBe('');
  });

  it('import creates a SQLite file in an existing folder', async () => {
    const file = join(dir, 'created.db');
    const { code } = await runWameter(['import', events, '--db', `sqlite:${file}`]);
    expect(code).toBe(EXIT.OK);
    expect(existsSync(file)).toBe(true);
  });
});

describe('a file that is not a wameter store is refused by every command, which leaves nothing beside it', () => {
  /** Each command that opens a store, against `db`: what it printed and its exit code. */
  const everyCommand = (db: string) => [
    ['rerate', '--db', db],
    ['rerate', '--dry-run', '--db', db],
    ['import', events, '--db', db],
    ['serve', '--db', db, '--port', '0', '--host', '127.0.0.1', '--log-level', 'silent'],
    ['estimate', recipients, '--template', 'utility', '--db', db],
  ];
  /** Another program's SQLite database (in WAL mode, or not), holding one row of its own. */
  const foreignDatabase = (file: string, isWal: boolean) => {
    const other = new Database(file);
    if (isWal) other.pragma('journal_mode = WAL');
    other.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')");
    other.close();
  };
  const notesOf = (file: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare('SELECT body FROM notes').pluck().all();
    } finally {
      db.close();
    }
  };

  it.each([
    ['another program’s SQLite database', false],
    ['another program’s SQLite database in WAL mode', true],
  ])('%s: refused in one line, unchanged, no lock file beside it', async (_, isWal) => {
    const place = mkdtempSync(join(dir, 'foreign-'));
    const file = join(place, 'notes.db');
    foreignDatabase(file, isWal);
    for (const args of everyCommand(`sqlite:${file}`)) {
      const { code, err, out } = await runWameter(args);
      // Named, with what to do, and the setting that gave it (serve's several).
      expect(err, args.join(' ')).toContain(
        `the SQLite file ${file} is not a wameter database (it holds other tables: notes): another program's data, left as it is; give wameter a file of its own (a path where no file is yet: it creates one) (check --db`,
      );
      expectOneClearLine(err);
      expect(out).toBe('');
      expect(code).toBe(EXIT.USAGE);
      expect(readdirSync(place), args.join(' ')).toEqual(['notes.db']);
    }
    expect(notesOf(file)).toEqual(['keep me']);
  });

  it('a file of another kind, or a folder: refused in one line, nothing beside it or in it', async () => {
    const place = mkdtempSync(join(dir, 'not-sqlite-'));
    const text = join(place, 'accounts.json');
    writeFileSync(text, '{"accounts":[]}\n');
    const folder = join(place, 'store');
    mkdirSync(folder);
    for (const db of [text, folder]) {
      for (const args of everyCommand(`sqlite:${db}`)) {
        const { code, err } = await runWameter(args);
        expectOneClearLine(err);
        expect(err, args.join(' ')).toContain(db);
        expect(code).toBe(EXIT.USAGE);
        expect(readdirSync(place).sort(), args.join(' ')).toEqual(['accounts.json', 'store']);
        expect(readdirSync(folder)).toEqual([]);
      }
    }
    expect(readFileSync(text, 'utf8')).toBe('{"accounts":[]}\n');
  });

  it('another program’s SQLite database in a folder this user may not write: refused as such, nothing made', async () => {
    const folder = mkdtempSync(join(dir, 'foreign-read-only-'));
    const file = join(folder, 'notes.db');
    foreignDatabase(file, false);
    onTestFinished(makeUnwritable(folder));
    for (const args of everyCommand(`sqlite:${file}`)) {
      const { code, err } = await runWameter(args);
      expect(err, args.join(' ')).toContain(`the SQLite file ${file} is not a wameter database`);
      expectOneClearLine(err);
      expect(code).toBe(EXIT.USAGE);
    }
    expect(readdirSync(folder)).toEqual(['notes.db']);
  });

  it('a wameter store still gets its lock files, and a second writer is still refused', async () => {
    const place = mkdtempSync(join(dir, 'a-store-'));
    const file = join(place, 'wameter.db');
    expect((await runWameter(['import', events, '--db', `sqlite:${file}`])).code).toBe(EXIT.OK);
    expect(readdirSync(place).sort()).toEqual(['wameter.db', 'wameter.db.writer-lock.alive']);
    const lock = await acquireWriterLock(`sqlite:${file}`, { command: 'serve' });
    try {
      expect(existsSync(`${file}.writer-lock`)).toBe(true);
      const { code, err } = await runWameter(['import', events, '--db', `sqlite:${file}`]);
      expect(err).toMatch(
        /^wameter: a wameter serve \(pid \d+ on .*\) is rating this database: send the events/,
      );
      expect(code).toBe(EXIT.USAGE);
    } finally {
      await lock.release();
    }
  });
});

/** `wameter estimate` of the test's recipients against the store at `db`. */
function estimateFrom(db: string) {
  return runWameter(['estimate', recipients, '--template', 'utility', '--db', db]);
}

describe('commands that only read the store (estimate, rerate)', () => {
  it('estimate refuses a SQLite file that does not exist, and does not create it', async () => {
    const file = join(dir, 'none.db');
    const { code, err } = await estimateFrom(`sqlite:${file}`);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toBe(
      `wameter: no such database file: ${file} (run \`wameter import\` or \`wameter serve\` first, or check --db)\n`,
    );
    expect(existsSync(file)).toBe(false);
  });

  it('estimate names its own --db as the setting to check when the path is a folder (it reads no config file)', async () => {
    const { code, err } = await estimateFrom(`sqlite:${dir}`);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toBe(
      `wameter: cannot open the SQLite database ${dir}: ${dir} is a folder, not a file; give a file path such as ${dir}/wameter.db (--db)\n`,
    );
  });

  it('estimate reads a store that import filled', async () => {
    const file = join(dir, 'filled.db');
    expect((await runWameter(['import', events, '--db', `sqlite:${file}`])).code).toBe(EXIT.OK);
    const { code, err } = await runWameter(
      ['estimate', recipients, '--template', 'utility', '--db', `sqlite:${file}`],
      { now: () => Date.parse('2025-10-15T12:00:00Z') },
    );
    expect(err).toContain('quoted 1 recipient(s)');
    expect(code).toBe(EXIT.OK);
  });

  it('estimate says nothing listens at a PostgreSQL URL and exits 1', async () => {
    const { code, err } = await estimateFrom(NOBODY_LISTENING);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain('is PostgreSQL running? (check --db)');
    expectOneClearLine(err);
  });

  it('rerate and import explain a folder given as the database, and a missing PostgreSQL schema, as serve does', async () => {
    const folder = mkdtempSync(join(dir, 'a-folder-'));
    const rerate = await runWameter(['rerate', '--db', folder]);
    expect(rerate.code).toBe(EXIT.USAGE);
    expect(rerate.err).toContain(
      `${folder} is a folder, not a file; give a file path such as ${folder}/wameter.db`,
    );
    expectOneClearLine(rerate.err);
    const url = new URL(process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
    url.searchParams.set('options', '-c search_path=wameter_no_such_schema_here');
    const imported = await runWameter(['import', events, '--db', url.toString()]);
    expect(imported.code).toBe(EXIT.USAGE);
    expect(imported.err).toContain('the schema "wameter_no_such_schema_here" named by search_path');
    expect(imported.err).toContain('CREATE SCHEMA wameter_no_such_schema_here');
    expectOneClearLine(imported.err);
  });

  it('rerate refuses a SQLite file that does not exist, and does not create it', async () => {
    const file = join(dir, 'never.db');
    const { code, err } = await runWameter(['rerate', '--db', `sqlite:${file}`]);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain(`wameter rerate: no such database file: ${file} (run \`wameter import\``);
    expect(existsSync(file)).toBe(false);
  });

  it('rerate refuses an empty file, or a SQLite file without tables, as no store, and leaves it as it was', async () => {
    // It made a store there (then found no events to re-rate), and left the lock's `.alive` file beside it.
    const { place, empty, bare } = filesWithoutStore(dir, 'no-store-');
    const bareSize = statSync(bare).size;
    for (const file of [empty, bare]) {
      const { code, err, out } = await runWameter(['rerate', '--db', `sqlite:${file}`]);
      expect(err).toBe(
        `wameter rerate: no wameter store in ${file}: the file holds no wameter tables (run \`wameter import\` or \`wameter serve\` first, or check --db, WAMETER_DB, DATABASE_URL or the config file's "db")\n`,
      );
      expect(out).toBe('');
      expect(code).toBe(EXIT.USAGE);
    }
    expect(readdirSync(place).sort()).toEqual(['bare.db', 'empty.db']);
    expect(statSync(empty).size).toBe(0);
    expect(statSync(bare).size).toBe(bareSize);
  });
});

const POSTGRES = process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

describe('commands that only read the store open it read-only: they never create or migrate anything', () => {
  const NO_STORE_ADVICE = 'run `wameter import` or `wameter serve` first';
  const RERATE_SET_BY = '--db, WAMETER_DB, DATABASE_URL or the config file\'s "db"';
  let admin: pg.Client;
  const schemas: string[] = [];
  /** A schema name that exists nowhere yet, dropped after the tests; its URL (through search_path). */
  const freshSchema = () => {
    const schema = `wameter_read_only_${randomBytes(5).toString('hex')}`;
    schemas.push(schema);
    const url = new URL(POSTGRES);
    url.searchParams.set('options', `-c search_path=${schema}`);
    return { schema, url: url.toString() };
  };
  const server = new URL(POSTGRES);
  const database = `the PostgreSQL database at ${server.hostname}:${server.port || '5432'}${server.pathname}`;
  const tablesOf = async (schema: string) =>
    (await admin.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema]))
      .rows;
  const schemaExists = async (schema: string) =>
    (await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: POSTGRES, connectionTimeoutMillis: 5_000 });
    await admin.connect();
  });
  afterAll(async () => {
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  it('estimate and rerate --dry-run refuse an empty SQLite file in one line, and leave it empty', async () => {
    const file = join(dir, 'empty.db');
    writeFileSync(file, '');
    const estimate = await estimateFrom(`sqlite:${file}`);
    expect(estimate.err).toBe(
      `wameter: no wameter store in ${file}: the file holds no wameter tables (${NO_STORE_ADVICE}, or check --db)\n`,
    );
    expect(estimate.code).toBe(EXIT.USAGE);
    const rerate = await runWameter(['rerate', '--dry-run', '--db', `sqlite:${file}`]);
    expect(rerate.err).toBe(
      `wameter rerate: no wameter store in ${file}: the file holds no wameter tables (${NO_STORE_ADVICE}, or check ${RERATE_SET_BY})\n`,
    );
    expect(rerate.out).toBe('');
    expect(rerate.code).toBe(EXIT.USAGE);
    expect(statSync(file).size).toBe(0);
    expect(readdirSync(dir).filter((name) => name.startsWith('empty.db'))).toEqual(['empty.db']);
  });

  it('rerate --dry-run refuses a SQLite file that does not exist, and does not create it', async () => {
    const file = join(dir, 'mistyped.db');
    const { code, err } = await runWameter(['rerate', '--dry-run', '--db', `sqlite:${file}`]);
    expect(err).toBe(
      `wameter rerate: no such database file: ${file} (${NO_STORE_ADVICE}, or check ${RERATE_SET_BY})\n`,
    );
    expect(code).toBe(EXIT.USAGE);
    expect(existsSync(file)).toBe(false);
  });

  it("every command refuses a PostgreSQL schema of another program's tables, naming it and what to do; nothing added", async () => {
    for (const tables of [
      ['customers'], // no name of wameter's: the store's tables were added beside them
      ['events', 'users'], // one of wameter's names: "relation "events" already exists", naming no schema
    ]) {
      const { schema, url } = freshSchema();
      await admin.query(`CREATE SCHEMA ${schema}`);
      for (const table of tables) await admin.query(`CREATE TABLE ${schema}.${table} (id integer)`);
      await admin.query(`INSERT INTO ${schema}.${tables[0]} VALUES (1)`);
      for (const [args, setBy] of [
        [['import', events, '--db', url], RERATE_SET_BY],
        [['rerate', '--db', url], RERATE_SET_BY],
        [
          ['serve', '--db', url, '--port', '0', '--host', '127.0.0.1', '--log-level', 'silent'],
          RERATE_SET_BY,
        ],
      ] as const) {
        const { code, err } = await runWameter([...args]);
        expect(err, args.join(' ')).toContain(
          `the schema "${schema}" of ${database} is not a wameter store (it holds other tables: ${tables.join(', ')}): another program's data, left as it is; give wameter a schema of its own (psql -c 'CREATE SCHEMA wameter', then options=-c search_path=wameter in the URL) (check ${setBy})`,
        );
        expectOneClearLine(err);
        expect(code).toBe(EXIT.USAGE);
      }
      expect((await tablesOf(schema)).map((row) => row.table_name).sort()).toEqual(tables);
      expect((await admin.query(`SELECT id FROM ${schema}.${tables[0]}`)).rows).toEqual([{ id: 1 }]);
    }
  });

  it('estimate and rerate --dry-run refuse an empty PostgreSQL schema in one line, and create no table', async () => {
    const { schema, url } = freshSchema();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const estimate = await estimateFrom(url);
    expect(estimate.err).toBe(
      `wameter: no wameter store in the schema "${schema}" of ${database}: it holds no wameter tables (${NO_STORE_ADVICE}, or check --db)\n`,
    );
    expect(estimate.code).toBe(EXIT.USAGE);
    const rerate = await runWameter(['rerate', '--dry-run', '--db', url]);
    expect(rerate.err).toBe(
      `wameter rerate: no wameter store in the schema "${schema}" of ${database}: it holds no wameter tables (${NO_STORE_ADVICE}, or check ${RERATE_SET_BY})\n`,
    );
    expect(rerate.code).toBe(EXIT.USAGE);
    expect(await tablesOf(schema)).toEqual([]);
  });

  it('estimate and rerate --dry-run say no store is there when search_path names no schema that exists', async () => {
    const { schema, url } = freshSchema();
    for (const args of [
      ['estimate', recipients, '--template', 'utility', '--db', url],
      ['rerate', '--dry-run', '--db', url],
    ]) {
      const { code, err } = await runWameter(args);
      expect(err).toContain(
        `no wameter store in ${database}: no schema of its search_path (${schema}) exists`,
      );
      expect(err).toContain(NO_STORE_ADVICE);
      expectOneClearLine(err);
      expect(code).toBe(EXIT.USAGE);
    }
    expect(await schemaExists(schema)).toBe(false);
  });

  it('estimate and rerate --dry-run refuse a store that needs a migration, saying how to migrate it; rerate migrates it', async () => {
    const file = join(dir, 'older.db');
    expect((await runWameter(['import', events, '--db', `sqlite:${file}`])).code).toBe(EXIT.OK);
    const old = new Database(file);
    old.exec(
      'DROP TRIGGER events_changed_on_delete; DROP TRIGGER IF EXISTS events_changed_on_insert; DROP TRIGGER IF EXISTS events_changed_on_update; DROP TABLE event_changes;' +
        'DROP TABLE event_clock; ALTER TABLE ratings DROP COLUMN events_seq; ALTER TABLE ratings DROP COLUMN setup_digest;' +
        'ALTER TABLE ratings DROP COLUMN totals_by_waba; ALTER TABLE ratings DROP COLUMN accounts_digest;' +
        'DROP INDEX events_business_waba_user; ALTER TABLE events DROP COLUMN tied_user;' +
        'ALTER TABLE events DROP COLUMN business;' +
        'ALTER TABLE events DROP COLUMN is_trusted; DROP INDEX events_unnamed_status;' +
        'ALTER TABLE ratings DROP COLUMN rate_cards_digest; ALTER TABLE ratings DROP COLUMN engine_digest;' +
        'DROP TABLE rating_changes; DELETE FROM schema_migrations WHERE version >= 6',
    );
    old.close();
    const migrateAdvice =
      'run `wameter serve` or `wameter import` against it once to migrate it, then try again (or check';
    const estimate = await estimateFrom(`sqlite:${file}`);
    expect(estimate.err).toBe(
      `wameter: the wameter store in ${file} is older than this wameter (schema migration 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22 not applied yet), and a read-only open does not migrate it: ${migrateAdvice} --db)\n`,
    );
    expect(estimate.code).toBe(EXIT.USAGE);
    const dryRun = await runWameter(['rerate', '--dry-run', '--db', `sqlite:${file}`]);
    expect(dryRun.err).toContain(`a read-only open does not migrate it: ${migrateAdvice} ${RERATE_SET_BY})`);
    expectOneClearLine(dryRun.err);
    expect(dryRun.code).toBe(EXIT.USAGE);
    const newest = () => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare('SELECT max(version) FROM schema_migrations').pluck().get();
      } finally {
        db.close();
      }
    };
    expect(newest()).toBe(5);
    // A command that writes migrates it, as before; then the read-only ones read it.
    expect((await runWameter(['rerate', '--db', `sqlite:${file}`])).code).toBe(EXIT.OK);
    expect(newest()).toBe(22);
    expect((await runWameter(['rerate', '--dry-run', '--db', `sqlite:${file}`])).code).toBe(EXIT.OK);
  });

  it('rerate --dry-run reads a store and writes nothing to it', async () => {
    const file = join(dir, 'dry.db');
    expect((await runWameter(['import', events, '--db', `sqlite:${file}`])).code).toBe(EXIT.OK);
    const ratings = () => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare('SELECT id FROM ratings').pluck().all();
      } finally {
        db.close();
      }
    };
    const before = ratings();
    const { code, out } = await runWameter(['rerate', '--dry-run', '--db', `sqlite:${file}`]);
    expect(out).toContain('Dry run: nothing stored.');
    expect(code).toBe(EXIT.OK);
    expect(ratings()).toEqual(before);
  });

  it('commands that write still create and migrate: import into an empty PostgreSQL schema', async () => {
    const { schema, url } = freshSchema();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const { code } = await runWameter(['import', events, '--db', url]);
    expect(code).toBe(EXIT.OK);
    expect((await tablesOf(schema)).length).toBeGreaterThan(0);
    const estimate = await runWameter(['estimate', recipients, '--template', 'utility', '--db', url], {
      now: () => Date.parse('2025-10-15T12:00:00Z'),
    });
    expect(estimate.err).toContain('quoted 1 recipient(s)');
    expect(estimate.code).toBe(EXIT.OK);
  });
});
