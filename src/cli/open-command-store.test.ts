import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
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
      `wameter: cannot create the database ${MISSING_FOLDER}/w.db: the folder ${MISSING_FOLDER} does not exist (create it, or check --db, WAMETER_DB or DATABASE_URL)\n`,
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
});
