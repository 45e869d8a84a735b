import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { messagesWebhook } from '../../test/support/webhook-body.js';
import { openStore } from '../store/open-store.js';
import { acquireWriterLock } from '../store/writer-lock.js';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'month', 'events.ndjson');

async function run(args: string[], isStderrTty = false) {
  const { code, out, err } = await runWameter(args, { isStderrTty });
  return { code, out, error: err };
}

function tempFile(dir: string, name: string, lines: readonly string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n'));
  return path;
}

/** A marketing message delivered to 999123456789: no country has calling code 999, so it has no price. */
const UNKNOWN_RECIPIENT_LINES = [
  '{"kind":"outbound","at":"2025-10-02T10:00:00Z","waba":"W9","business":"PN9","user":"999123456789","id":"wamid.u1","template":"marketing"}',
  '{"kind":"status","at":"2025-10-02T10:00:03Z","id":"wamid.u1","status":"delivered"}',
];

/** A delivered status alone, with no category anywhere: the message cannot be rated. */
const UNRATED_LINES = [
  '{"kind":"status","at":"2024-03-01T10:05:03Z","id":"wamid.x","status":"delivered","waba":"W1","business":"PN1","user":"919876543210"}',
];

/**
 * A delivered status naming its WABA but no user or business number, with no outbound line: the rater cannot
 * place it (STATUS_WITHOUT_USER), and the finding names that WABA.
 */
const ORPHAN_STATUS_W1_LINES = [
  '{"kind":"status","at":"2024-03-01T10:05:03Z","id":"wamid.orphan","status":"delivered","waba":"W1"}',
];

/** A user's message and a utility reply, delivered: one priced unit of W2 and no finding. */
const CLEAN_W2_LINES = [
  '{"kind":"inbound","at":"2024-03-01T10:00:00Z","waba":"W2","business":"PN2","user":"919876543210","id":"wamid.in2"}',
  '{"kind":"outbound","at":"2024-03-01T10:05:00Z","waba":"W2","business":"PN2","user":"919876543210","id":"wamid.o2","template":"utility"}',
  '{"kind":"status","at":"2024-03-01T10:05:03Z","id":"wamid.o2","status":"delivered"}',
];

/** The same for W3. */
const CLEAN_W3_LINES = CLEAN_W2_LINES.map((line) =>
  line.replaceAll('W2', 'W3').replaceAll('PN2', 'PN3').replaceAll('wamid.', 'wamid.w3-'),
);

/** W2's send log alone, and then its statuses, which name no WABA (contract §1: the outbound id links them). */
const W2_SEND_LOG_LINES = [
  '{"kind":"outbound","at":"2024-03-02T10:05:00Z","waba":"W2","business":"PN2","user":"919876543210","id":"wamid.o3","template":"utility"}',
];
const W2_STATUSES_NAMING_NO_WABA = [
  '{"kind":"status","at":"2024-03-02T10:05:03Z","id":"wamid.o3","status":"delivered"}',
];

/** A user's message as a CRM logged it (no ad referral), and Meta's webhook of it (through an ad). */
const CRM_INBOUND_LINES = [
  '{"kind":"inbound","at":"2024-03-01T10:00:00Z","waba":"W4","business":"PN4","user":"919876543210","id":"wamid.ad1"}',
];
const META_INBOUND_LINES = [
  '{"kind":"inbound","at":"2024-03-01T10:00:00Z","waba":"W4","business":"PN4","user":"919876543210","id":"wamid.ad1","referral":{"source_type":"ad","source_id":"1"}}',
];

/**
 * Statuses naming no WABA whose messages are not stored: one names its business number and user, one
 * nothing more than its message id. Sent, not delivered: once placed they are pending, with no finding.
 */
const UNTIED_STATUS_LINES = [
  '{"kind":"status","at":"2024-03-01T10:05:03Z","id":"wamid.s1","status":"sent","business":"PN9","user":"919876543210"}',
  '{"kind":"status","at":"2024-03-01T10:06:03Z","id":"wamid.s2","status":"sent"}',
];
/** W9's send log of the second: its message ties it to W9, and its business number ties the first. */
const W9_SEND_LOG_LINES = [
  '{"kind":"outbound","at":"2024-03-01T10:06:00Z","waba":"W9","business":"PN9","user":"919876543210","id":"wamid.s2","template":"utility"}',
];

/**
 * A new store's SQLite file with `trigger` created in it (a real failure inside SQLite): its URL and path.
 */
async function storeWithTrigger(trigger: string): Promise<{ db: string; file: string }> {
  const file = join(mkdtempSync(join(tmpdir(), 'wameter-import-')), 'w.db');
  const db = `sqlite:${file}`;
  await (await openStore(db)).close();
  const raw = new Database(file);
  raw.exec(trigger);
  raw.close();
  return { db, file };
}

/** A folder for a new SQLite store, and a configuration file whose accounts file holds `accounts`. */
function storeWithAccounts(accounts: readonly Record<string, string>[]): {
  dir: string;
  db: string;
  config: string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
  const accountsPath = join(dir, 'accounts.json');
  writeFileSync(accountsPath, JSON.stringify({ accounts }));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ accounts: accountsPath }));
  return { dir, db: `sqlite:${join(dir, 'w.db')}`, config };
}

describe('wameter import', () => {
  it('stores and rates event files once, however often they are imported; the bill equals wameter rate', async () => {
    const db = `sqlite:${join(mkdtempSync(join(tmpdir(), 'wameter-import-')), 'w.db')}`;
    const first = await run(['import', EXAMPLE, '--db', db]);
    expect(first.code).toBe(0);
    expect(first.error).toMatch(/stored \d+ new event\(s\)/);
    const second = await run(['import', EXAMPLE, '--db', db]);
    expect(second.error).toContain('stored 0 new event(s)');

    const rated = await run(['rate', EXAMPLE, '--format', 'json', '--allow-unpriced']);
    const expected = JSON.parse(rated.out).totals.USD;
    const store = await openStore(db);
    try {
      const totals = await store.totals({});
      expect(totals.USD!.units).toBe(expected.units);
      expect(totals.USD!.amountMicros).toBe(Math.round(Number(expected.amount) * 1_000_000));
    } finally {
      await store.close();
    }
  });

  it('--accounts and --rate-cards are refused with where they go (the service configuration), nothing stored', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'wameter-import-')), 'w.db');
    for (const [flag, where] of [
      ['--accounts', '"accounts" in --config FILE, or WAMETER_ACCOUNTS=x.json'],
      ['--rate-cards', '"rateCards" in --config FILE, or WAMETER_RATE_CARDS=x.json'],
    ]) {
      const { code, error } = await run(['import', EXAMPLE, flag!, 'x.json', '--db', `sqlite:${path}`]);
      expect(code).toBe(1);
      expect(error).toContain(`wameter import reads ${flag!.slice(2)} from the service's configuration`);
      expect(error).toContain(where);
    }
    expect(existsSync(path)).toBe(false);
  });

  it('--no-reported is refused by import, rerate and serve with where it goes, nothing stored', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'wameter-import-')), 'w.db');
    const db = `sqlite:${path}`;
    for (const [command, args, asServe] of [
      ['import', [EXAMPLE, '--db', db], ', as serve does'],
      ['rerate', ['--db', db], ', as serve does'],
      ['serve', ['--db', db, '--port', '0'], ''],
    ] as const) {
      const { code, error } = await run([command, ...args, '--no-reported']);
      expect(code, command).toBe(1);
      expect(error).toContain(
        `wameter ${command} reads whether to apply rules only reported by third parties from the service's configuration${asServe}: give "reportedRules": false in --config FILE, or WAMETER_REPORTED_RULES=off`,
      );
    }
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a missing only source (exit 1) before the database is created', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'wameter-import-')), 'w.db');
    const { code, error } = await run(['import', '/nonexistent/events.ndjson', '--db', `sqlite:${path}`]);
    expect(code).toBe(1);
    expect(error).toContain("no such file or folder: '/nonexistent/events.ndjson'; nothing was read");
    expect(existsSync(path)).toBe(false);
  });

  it('refuses sources that surely hold no event (an empty folder, empty files) as before, without creating the database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const emptyFolder = join(dir, 'empty');
    mkdirSync(emptyFolder);
    const folderOfEmptyFiles = join(dir, 'rotated');
    mkdirSync(folderOfEmptyFiles);
    writeFileSync(join(folderOfEmptyFiles, 'a.ndjson'), '');
    const emptyFile = join(dir, 'empty.ndjson');
    writeFileSync(emptyFile, '');
    const path = join(dir, 'w.db');
    const db = `sqlite:${path}`;
    const folder = await run(['import', emptyFolder, '--db', db]);
    expect(folder.code).toBe(1);
    expect(folder.error).toBe(
      `wameter: ${emptyFolder}: UNREADABLE_SOURCE: directory holds no event files (.json, .ndjson, .jsonl): check the path\n` +
        'wameter: 1 input problem(s)\n' +
        'wameter: no event could be read from the sources (each problem is named above): nothing was rated\n',
    );
    const files = await run(['import', emptyFile, folderOfEmptyFiles, '--db', db]);
    expect(files.code).toBe(1);
    expect(files.error).toContain(
      `wameter: ${emptyFile}: warning: no events: the source is empty (it has no bytes)`,
    );
    expect(files.error).toContain(
      'wameter: the sources hold no event (all 2 empty, said above): nothing was rated; give the files that hold the traffic\n',
    );
    const mixed = await run(['import', emptyFolder, emptyFile, join(dir, 'missing.ndjson'), '--db', db]);
    expect(mixed.code).toBe(1);
    expect(mixed.error).toContain('no event could be read from the sources (each problem is named above)');
    const stdin = await runWameter(['import', '-', emptyFolder, '--db', db], { stdin: '' });
    expect(stdin.code).toBe(1);
    expect(stdin.err).toContain(
      'wameter: <stdin>: warning: no events: the source is empty (it has no bytes)',
    );
    expect(stdin.err).toContain('no event could be read from the sources (each problem is named above)');
    const onlyStdin = await runWameter(['import', '-', '--db', db], { stdin: '' });
    expect(onlyStdin.code).toBe(1);
    expect(onlyStdin.err).toBe(
      'wameter: <stdin>: warning: no events: the source is empty (it has no bytes); check that it is the file you meant\n' +
        'wameter: the sources hold no event (<stdin> empty, said above): nothing was rated; give the files that hold the traffic\n',
    );
    // No file, not even the writer lock's: the database was never opened.
    expect(readdirSync(dir).sort()).toEqual(['empty', 'empty.ndjson', 'rotated']);
    // Stdin that holds events is imported whole: its first bytes, waited for, are read with the rest.
    const lines = await runWameter(['import', '-', emptyFolder, '--db', db], {
      stdin: CLEAN_W2_LINES.join('\n'),
    });
    expect(lines.err).toContain('wameter import: stored 3 new event(s), 0 duplicate(s)');
    expect(lines.code).toBe(2);
  });

  it('refuses small files of blank or malformed lines only without creating the database, and imports a file that holds one event among them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const blank = join(dir, 'blank.ndjson');
    writeFileSync(blank, '\n  \n\n');
    const folder = join(dir, 'logs');
    mkdirSync(folder);
    writeFileSync(join(folder, 'bad.ndjson'), '{x}\nnot json\n');
    const db = `sqlite:${join(dir, 'w.db')}`;
    const blankOnly = await run(['import', blank, '--db', db]);
    expect(blankOnly.code).toBe(1);
    expect(blankOnly.error).toBe(
      `wameter: ${blank}: warning: no events: the source is empty (its 3 line(s) are all blank); check that it is the file you meant\n` +
        `wameter: the sources hold no event (${blank} empty, said above): nothing was rated; give the files that hold the traffic\n`,
    );
    const malformed = await run(['import', blank, folder, '--db', db]);
    expect(malformed.code).toBe(1);
    expect(malformed.error).toContain(`wameter: ${join(folder, 'bad.ndjson')}:1: MALFORMED_LINE: `);
    expect(malformed.error).toContain(`wameter: ${join(folder, 'bad.ndjson')}:2: MALFORMED_LINE: `);
    expect(malformed.error).toContain(
      'no event could be read from the sources (each problem is named above)',
    );
    // Each problem said once: the reading before the store is opened says nothing.
    expect(malformed.error.split('bad.ndjson:1: MALFORMED_LINE').length).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(['blank.ndjson', 'logs']);
    writeFileSync(join(folder, 'good.ndjson'), `${CLEAN_W2_LINES.join('\n')}\n`);
    const withEvents = await run(['import', blank, folder, '--db', db]);
    expect(withEvents.error).toContain('wameter import: stored 3 new event(s), 0 duplicate(s)');
    expect(existsSync(join(dir, 'w.db'))).toBe(true);
  });

  it("reads a named pipe (a shell's <(…)) once: never before the store is opened", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const fifo = join(dir, 'events.pipe');
    execFileSync('mkfifo', [fifo]);
    const writing = writeFile(fifo, `${CLEAN_W2_LINES.join('\n')}\n`);
    const piped = await run(['import', fifo, '--db', `sqlite:${join(dir, 'w.db')}`]);
    await writing;
    expect(piped.error).toContain('wameter import: stored 3 new event(s), 0 duplicate(s)');
  });

  it('refuses while a serve rates the database (exit 1, naming it), and stores nothing', async () => {
    const db = `sqlite:${join(mkdtempSync(join(tmpdir(), 'wameter-import-')), 'w.db')}`;
    const lock = await acquireWriterLock(db, { command: 'serve' });
    try {
      const { code, error } = await run(['import', EXAMPLE, '--db', db]);
      expect(error).toContain(`wameter: a wameter serve (pid ${process.pid} on ${hostname()}, since `);
      expect(error).toContain(
        'is rating this database: send the events to its POST /v1/events (it rates them), or stop it first',
      );
      expect(error).not.toContain('stored');
      expect(code).toBe(1);
    } finally {
      await lock.release();
    }
    const store = await openStore(db);
    try {
      expect(await store.listWabas()).toEqual([]);
    } finally {
      await store.close();
    }
    expect((await run(['import', EXAMPLE, '--db', db])).code).toBe(0);
  });

  it('says so (exit 1) when the events are stored but their rating cannot be, and a later import rates them', async () => {
    // Every write of a rating is refused.
    const { db, file } = await storeWithTrigger(
      "CREATE TRIGGER refuse_ratings BEFORE INSERT ON ratings BEGIN SELECT RAISE(ABORT, 'ratings refused'); END",
    );
    const failed = await run(['import', EXAMPLE, '--db', db]);
    expect(failed.code).toBe(1);
    expect(failed.error).toMatch(
      /wameter: the events are stored, but rating \d+ WABA\(s\) failed \(.+\): ratings refused;/,
    );
    expect(failed.error).toContain('run `wameter import` again once that is fixed');
    expect(failed.error).not.toMatch(/unit\(s\) in the store/);
    expect(failed.out).toBe('');

    const reopened = new Database(file);
    expect((reopened.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n).toBeGreaterThan(
      0,
    );
    expect((reopened.prepare('SELECT count(*) AS n FROM units').get() as { n: number }).n).toBe(0);
    reopened.exec('DROP TRIGGER refuse_ratings');
    reopened.close();
    const again = await run(['import', EXAMPLE, '--db', db]);
    expect(again.code).toBe(0);
    expect(again.error).toContain('stored 0 new event(s)');
    // The store's bill in money, as `wameter rate` totals the same events.
    const rated = JSON.parse((await run(['rate', EXAMPLE, '--format', 'json'])).out) as {
      totals: { USD: { amount: string; units: number } };
    };
    expect(again.out).toContain(
      `USD: ${rated.totals.USD.amount} over ${rated.totals.USD.units} unit(s) in the store\n`,
    );
  });

  it('says how many events were stored (exit 1, no stack) when the database refuses them, and a later import stores the rest', async () => {
    // Once 5000 events are stored, every further one is refused, as a full disk refuses them.
    const { db, file: dbFile } = await storeWithTrigger(
      "CREATE TRIGGER disk_full BEFORE INSERT ON events WHEN (SELECT count(*) FROM events) >= 5000 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    );
    const lines = Array.from(
      { length: 7000 },
      (_, i) =>
        `{"kind":"inbound","at":"2025-10-01T10:00:00Z","waba":"W1","business":"PN1","user":"91980${String(i).padStart(7, '0')}","id":"wamid.in${i}"}`,
    );
    const file = tempFile(dirname(dbFile), 'inbound.ndjson', lines);

    const failed = await run(['import', file, '--db', db]);
    expect(failed.error).toBe(
      'wameter: the database refused the events after 5000 new event(s) were stored (0 duplicate(s)): database or disk is full; nothing was rated: free disk space or fix the database, then run `wameter import` again (stored events are skipped)\n',
    );
    expect(failed.code).toBe(1);
    expect(failed.out).toBe('');
    const reopened = new Database(dbFile);
    expect((reopened.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n).toBe(5000);
    expect((reopened.prepare('SELECT count(*) AS n FROM ratings').get() as { n: number }).n).toBe(0);
    reopened.exec('DROP TRIGGER disk_full');
    reopened.close();

    const again = await run(['import', file, '--db', db]);
    expect(again.error).toContain(
      'stored 2000 new event(s), 5000 duplicate(s) within the input or of events already stored; rating…',
    );
    expect(again.code).toBe(0);
  });

  it('says so (exit 1) when the database refuses every event, even the first', async () => {
    const { db } = await storeWithTrigger(
      "CREATE TRIGGER disk_full BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    );
    const { code, out, error } = await run(['import', EXAMPLE, '--db', db]);
    expect(error).toMatch(
      /^wameter: the database refused the events after 0 new event\(s\) were stored \(0 duplicate\(s\)\): database or disk is full; .*run `wameter import` again \(stored events are skipped\)\n$/,
    );
    expect(error).not.toMatch(/\n\s+at /);
    expect(code).toBe(1);
    expect(out).toBe('');
  });

  it('exits 3 like `wameter rate` when a charged unit cannot be priced, listing the findings; 0 with --allow-unpriced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const file = tempFile(dir, 'unknown.ndjson', UNKNOWN_RECIPIENT_LINES);
    expect((await run(['rate', file])).code).toBe(3);

    const db = `sqlite:${join(dir, 'w.db')}`;
    const imported = await run(['import', file, '--db', db]);
    expect(imported.code).toBe(3);
    expect(imported.out).toBe(
      'USD: 0 over 1 unit(s) in the store (1 not priced, not in the amount: see findings)\n',
    );
    expect(imported.error).toContain(
      'wameter import: 1 finding(s) for the imported WABAs (`wameter rerate --dry-run --format json` lists them all):\nwameter import:   UNKNOWN_RECIPIENT: WABA W9: Recipient 999123456789 ',
    );
    expect(imported.error).toContain(
      'wameter import: 1 charged unit(s) could not be priced (see findings: unknown number, no rate or no rate card); pass --allow-unpriced to accept\n',
    );
    // Imported again: nothing new is stored, but the stored bill still has the unit without a price.
    const again = await run(['import', file, '--db', db]);
    expect(again.error).toContain(
      'stored 0 new event(s), 2 duplicate(s) within the input or of events already stored',
    );
    expect(again.code).toBe(3);
    const allowed = await run(['import', file, '--db', db, '--allow-unpriced']);
    expect(allowed.error).toContain('UNKNOWN_RECIPIENT: WABA W9: Recipient 999123456789');
    expect(allowed.error).not.toContain('could not be priced');
    expect(allowed.code).toBe(0);
  });

  it('lists the first 20 findings of the imported WABAs, then counts the rest by code and says where all are, as `rate` does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    // One unknown recipient in each of 25 WABAs: 25 findings.
    const lines = Array.from({ length: 25 }, (_, i) =>
      UNKNOWN_RECIPIENT_LINES.map((line) =>
        line.replaceAll('"W9"', `"W${100 + i}"`).replaceAll('wamid.u1', `wamid.u${i}`),
      ),
    ).flat();
    const file = tempFile(dir, 'unknown.ndjson', lines);
    const imported = await run(['import', file, '--db', `sqlite:${join(dir, 'w.db')}`, '--allow-unpriced']);
    expect(imported.code).toBe(0);
    const listed = imported.error.split('\n').filter((line) => line.startsWith('wameter import:   '));
    expect(listed).toHaveLength(21);
    expect(listed[0]).toMatch(/^wameter import: {3}UNKNOWN_RECIPIENT: WABA W100: /);
    expect(listed[20]).toBe('wameter import:   … and 5 more: 5 × UNKNOWN_RECIPIENT');
    expect(imported.error).toContain(
      'wameter import: 25 finding(s) for the imported WABAs (`wameter rerate --dry-run --format json` lists them all):\n',
    );
  });

  it('exits 3 like `wameter rate` when a delivered message cannot be rated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const file = tempFile(dir, 'status.ndjson', UNRATED_LINES);
    expect((await run(['rate', file])).code).toBe(3);
    const { code, error } = await run(['import', file, '--db', `sqlite:${join(dir, 'w.db')}`]);
    expect(error).toContain('UNKNOWN_CATEGORY: WABA W1: delivered messages with no outbound line');
    expect(error).toContain(
      'wameter import: 1 delivered message(s) could not be rated (see finding UNKNOWN_CATEGORY: feed the send log too); pass --allow-unpriced to accept\n',
    );
    expect(code).toBe(3);
  });

  it.each([
    ['delivered', 3],
    ['sent', 0],
  ])(
    'a %s status naming no user: STATUS_WITHOUT_USER is listed and the exit code is that of `wameter rate` (%i)',
    async (status, exitCode) => {
      const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
      const file = tempFile(dir, 'status.ndjson', [
        `{"kind":"status","at":"2024-03-01T10:05:03Z","id":"wamid.y","status":"${status}","waba":"W1"}`,
      ]);
      expect((await run(['rate', file])).code).toBe(exitCode);
      const { code, error } = await run(['import', file, '--db', `sqlite:${join(dir, 'w.db')}`]);
      expect(error).toContain('  STATUS_WITHOUT_USER: ');
      expect(code).toBe(exitCode);
    },
  );

  it("judges the imported WABAs only: another WABA's unpriced units already in the store do not make it exit 3", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const db = `sqlite:${join(dir, 'w.db')}`;
    expect(
      (await run(['import', tempFile(dir, 'unknown.ndjson', UNKNOWN_RECIPIENT_LINES), '--db', db])).code,
    ).toBe(3);
    const { code, error } = await run(['import', EXAMPLE, '--db', db]);
    expect(error).not.toContain('UNKNOWN_RECIPIENT');
    expect(error).not.toContain('could not be priced');
    expect(code).toBe(0);
  });

  it('does not report again (nor exit 3 for) a finding of a WABA that an earlier import left, when importing another', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const db = `sqlite:${join(dir, 'w.db')}`;
    const first = await run(['import', tempFile(dir, 'orphan.ndjson', ORPHAN_STATUS_W1_LINES), '--db', db]);
    expect(first.error).toContain('  STATUS_WITHOUT_USER: WABA W1: delivered message wamid.orphan ');
    expect(first.code).toBe(3);

    // Files of another WABA: a send log, then its statuses, which name no WABA, then a whole clean file.
    for (const [name, lines] of [
      ['w2-log.ndjson', W2_SEND_LOG_LINES],
      ['w2-statuses.ndjson', W2_STATUSES_NAMING_NO_WABA],
      ['w2.ndjson', CLEAN_W2_LINES],
    ] as const) {
      const later = await run(['import', tempFile(dir, name, lines), '--db', db]);
      expect(later.error, name).not.toContain('STATUS_WITHOUT_USER');
      expect(later.error, name).not.toContain('finding(s)');
      expect(later.error, name).not.toContain('could not be rated');
      expect(later.code, name).toBe(0);
    }
    // Still in the store for the service's unrestricted readers: only these imports do not report it.
    const store = await openStore(db, { isReadOnly: true });
    try {
      expect((await store.listFindings({})).map((finding) => finding.code)).toEqual(['STATUS_WITHOUT_USER']);
    } finally {
      await store.close();
    }
  });

  it("rates again the portfolio whose bill the import changed though its sources never name it (no ingest's relistedWabas needed)", async () => {
    // W9's inbound ties PN1 with the user: W9 lists PN1's status naming no WABA, whose message is stored nowhere
    // (pending: sent). W1's send log of that message, in another portfolio, then takes the status from W9: the
    // second import names W1 only, and W9's stored bill must lose the message all the same (rateAll).
    const { dir, db, config } = storeWithAccounts(
      ['W1', 'W9'].map((waba) => ({ waba, timezone: 'UTC', currency: 'USD', portfolio: `P-${waba}` })),
    );
    const w9 = tempFile(dir, 'w9.ndjson', [
      '{"kind":"inbound","at":"2024-03-01T10:00:00Z","waba":"W9","business":"PN1","user":"919876543210","id":"wamid.in9"}',
      '{"kind":"status","at":"2024-03-01T10:06:03Z","id":"wamid.moved","status":"sent","business":"PN1","user":"919876543210"}',
    ]);
    const w1 = tempFile(dir, 'w1.ndjson', [
      '{"kind":"outbound","at":"2024-03-01T10:06:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.moved","template":"utility"}',
    ]);
    const pendingOf = async (url: string) => {
      const store = await openStore(url, { isReadOnly: true });
      try {
        const pending = await store.listPending({});
        return {
          pending: pending.map((message) => [message.waba, message.id]),
          totals: await store.totals({}),
        };
      } finally {
        await store.close();
      }
    };
    expect((await run(['import', w9, '--db', db, '--config', config])).code).toBe(0);
    expect((await pendingOf(db)).pending).toEqual([['W9', 'wamid.moved']]);
    expect((await run(['import', w1, '--db', db, '--config', config])).code).toBe(0);
    const bill = await pendingOf(db);
    expect(bill.pending).toEqual([['W1', 'wamid.moved']]);
    // The same bill as one import of both files into a new store.
    const once = `sqlite:${join(dir, 'once.db')}`;
    expect((await run(['import', w9, w1, '--db', once, '--config', config])).code).toBe(0);
    expect(bill).toEqual(await pendingOf(once));
  });

  it("reports an unrated status with the import that brought it, never with its portfolio mates' or another portfolio's", async () => {
    // W1 and W3 share a portfolio (rated together); W2 is a portfolio of its own.
    const { dir, db, config } = storeWithAccounts(
      ['W1', 'W3'].map((waba) => ({ waba, timezone: 'UTC', currency: 'USD', portfolio: 'P13' })),
    );
    const importFile = (name: string, lines: readonly string[]) =>
      run(['import', tempFile(dir, name, lines), '--db', db, '--config', config]);

    expect((await importFile('w2.ndjson', CLEAN_W2_LINES)).code).toBe(0);
    const brought = await importFile('orphan.ndjson', ORPHAN_STATUS_W1_LINES);
    expect(brought.error).toContain(
      'wameter import: 1 finding(s) for the imported WABAs (`wameter rerate --dry-run --format json` lists them all):\nwameter import:   STATUS_WITHOUT_USER: WABA W1: delivered message wamid.orphan ',
    );
    expect(brought.error).toContain('wameter import: 1 delivered message(s) could not be rated');
    expect(brought.code).toBe(3);
    // Another WABA of the same portfolio: the finding names W1 (its status did), so it is W1's, not W3's.
    const samePortfolio = await importFile('w3.ndjson', CLEAN_W3_LINES);
    expect(samePortfolio.error).not.toContain('STATUS_WITHOUT_USER');
    expect(samePortfolio.code).toBe(0);
    const otherPortfolio = await importFile('w2-again.ndjson', W2_SEND_LOG_LINES);
    expect(otherPortfolio.error).not.toContain('STATUS_WITHOUT_USER');
    expect(otherPortfolio.code).toBe(0);
  });

  it('says so when it re-prices a bill that was priced with other accounts, and not when they are the same', async () => {
    const { dir, db, config } = storeWithAccounts([
      { waba: 'W2', timezone: 'Asia/Kolkata', currency: 'USD', portfolio: 'P2' },
    ]);
    const events = tempFile(dir, 'w2.ndjson', CLEAN_W2_LINES);
    const warning = 'the stored bill was last priced with other accounts';
    const first = await run(['import', events, '--db', db, '--config', config]);
    expect(first.code).toBe(0);
    expect(first.error).not.toContain(warning);
    const same = await run(['import', events, '--db', db, '--config', config]);
    expect(same.error).not.toContain(warning);
    // The same events without the accounts file: W2 is re-priced as UTC, and the import says so.
    const without = await run(['import', events, '--db', db]);
    expect(without.code).toBe(0);
    expect(without.error).toContain(
      `wameter import: ${warning} (time zones, currencies, portfolios, primary countries or authentication-international dates differ, or WABAs were added or removed): it is re-priced now under the accounts given to this run; to keep the earlier pricing, give the same accounts file (WAMETER_ACCOUNTS, or the accounts of --config), and to see what changes first, run \`wameter rerate --dry-run\`\n`,
    );
  });

  it('says so when it rates a bill a what-if re-rate kept (rerate --as-of-rules without --dry-run), once', async () => {
    const { dir, db, config } = storeWithAccounts([]);
    const events = tempFile(dir, 'w2.ndjson', CLEAN_W2_LINES);
    expect((await run(['import', events, '--db', db, '--config', config])).code).toBe(0);
    const whatIf = await run(['rerate', '--db', db, '--config', config, '--as-of-rules', 'CBP-2022']);
    expect(whatIf.error).not.toContain('what-if');
    // The next import rates the whole bill again under the rules of each date: the what-if is replaced.
    const next = await run(['import', events, '--db', db, '--config', config]);
    expect(next.code).toBe(0);
    expect(next.error).toContain(
      "wameter import: the stored bill was last re-rated under CBP-2022 rules (`rerate --as-of-rules CBP-2022` or POST /v1/rerate's as_of_rules, kept as the bill): it is rated now under the rules in force on each date, which replaces it; the what-if stays in the rating history (GET /v1/ratings), and `--dry-run` re-rates without keeping one\n",
    );
    const after = await run(['import', events, '--db', db, '--config', config]);
    expect(after.error).not.toContain('re-rated under');
    // A dry run keeps nothing: nothing to say.
    await run(['rerate', '--db', db, '--config', config, '--as-of-rules', 'CBP-2022', '--dry-run']);
    expect((await run(['import', events, '--db', db, '--config', config])).error).not.toContain(
      're-rated under',
    );
  });

  it('says so when it re-prices a bill that was priced with a card edited under the same name, and the history tells them apart', async () => {
    const { dir, db } = storeWithAccounts([]);
    const cards = join(dir, 'cards');
    mkdirSync(cards);
    const bundled = join(import.meta.dirname, '..', '..', 'data', 'rate-cards');
    for (const name of readdirSync(bundled)) copyFileSync(join(bundled, name), join(cards, name));
    const config = join(dir, 'cards-config.json');
    writeFileSync(config, JSON.stringify({ rateCards: [cards] }));
    const events = tempFile(dir, 'w2.ndjson', CLEAN_W2_LINES);
    const warning = 'the stored bill was last priced with rate cards whose rates differ from these';
    const first = await run(['import', events, '--db', db, '--config', config]);
    expect(first.code).toBe(0);
    expect(first.error).not.toContain(warning);
    const same = await run(['import', events, '--db', db, '--config', config]);
    expect(same.error).not.toContain(warning);
    // India's utility rate edited in the card of the events' date, its file name (its id) kept.
    const card = join(cards, 'usd-2023-06-01-partial.csv');
    const text = readFileSync(card, 'utf8');
    expect(text).toContain('India,$US,0.0099,0.0042,');
    writeFileSync(card, text.replace('India,$US,0.0099,0.0042,', 'India,$US,0.0099,0.0500,'));
    const edited = await run(['import', events, '--db', db, '--config', config]);
    expect(edited.code).toBe(0);
    expect(edited.error).toContain(`wameter import: ${warning} (a card edited under the same file name`);
    const store = await openStore(db, { isReadOnly: true });
    try {
      const [latest, earlier] = await store.listRatings(2);
      expect(latest!.rateCards).toEqual(earlier!.rateCards);
      expect(latest!.rateCardsDigest).toMatch(/^[0-9a-f]{16}$/);
      expect(earlier!.rateCardsDigest).toMatch(/^[0-9a-f]{16}$/);
      expect(latest!.rateCardsDigest).not.toBe(earlier!.rateCardsDigest);
      expect((await store.totals({})).USD?.amountMicros).toBe(50_000);
    } finally {
      await store.close();
    }
  });

  it('says how many copies completed a stored event (the referral a CRM’s copy lacked), and the bill follows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const db = `sqlite:${join(dir, 'w.db')}`;
    const crm = await run(['import', tempFile(dir, 'crm.ndjson', CRM_INBOUND_LINES), '--db', db]);
    expect(crm.error).toContain('wameter import: stored 1 new event(s), 0 duplicate(s); rating…\n');
    const meta = await run(['import', tempFile(dir, 'meta.ndjson', META_INBOUND_LINES), '--db', db]);
    expect(meta.error).toContain(
      'wameter import: stored 0 new event(s), 1 duplicate(s) within the input or of events already stored (1 of them completed a stored copy); rating…\n',
    );
    expect(meta.code).toBe(0);
    const again = await run(['import', tempFile(dir, 'crm-again.ndjson', CRM_INBOUND_LINES), '--db', db]);
    expect(again.error).toContain(
      'wameter import: stored 0 new event(s), 1 duplicate(s) within the input or of events already stored; rating…\n',
    );
    const store = await openStore(db, { isReadOnly: true });
    try {
      expect(await store.listEvents()).toEqual([
        expect.objectContaining({ id: 'wamid.ad1', hasReferral: true }),
      ]);
    } finally {
      await store.close();
    }
  });

  it("keeps the display numbers of Meta's webhook bodies it imports, for analytics' PHONE, as the service keeps a webhook's", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const db = `sqlite:${join(dir, 'w.db')}`;
    const body = (display: string, id: string) =>
      JSON.stringify(
        messagesWebhook('W4', {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: display, phone_number_id: 'PN4' },
          messages: [
            { from: '919876543210', id, timestamp: '1709287200', type: 'text', text: { body: 'hi' } },
          ],
        }),
      );
    // A saved body on one line, and an array of saved bodies spread over several lines (one JSON document).
    const first = await run([
      'import',
      tempFile(dir, 'hooks.ndjson', [body('+1 555-000-4444', 'wamid.h1')]),
      '--db',
      db,
    ]);
    expect(first.code, first.error).toBe(0);
    const store = await openStore(db, { isReadOnly: true });
    try {
      expect(await store.businessNumbers({})).toEqual([
        { waba: 'W4', business: 'PN4', displayNumber: '15550004444' },
      ]);
    } finally {
      await store.close();
    }
    const array = JSON.stringify([JSON.parse(body('15550005555', 'wamid.h2'))], null, 2);
    const second = await run(['import', tempFile(dir, 'hooks.json', [array]), '--db', db]);
    expect(second.code, second.error).toBe(0);
    const after = await openStore(db, { isReadOnly: true });
    try {
      expect(await after.businessNumbers({})).toEqual([
        { waba: 'W4', business: 'PN4', displayNumber: '15550005555' },
      ]);
    } finally {
      await after.close();
    }
  });

  it('tells copies within the input from duplicates that may be of events already stored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const db = `sqlite:${join(dir, 'w.db')}`;
    // Into a fresh store: the second copies (of an inbound, of a status naming no WABA) can only be copies
    // within the input.
    const twice = tempFile(dir, 'twice.ndjson', [...CLEAN_W2_LINES, CLEAN_W2_LINES[0]!, CLEAN_W2_LINES[2]!]);
    const fresh = await run(['import', twice, '--db', db]);
    expect(fresh.error).toContain(
      'wameter import: stored 3 new event(s), 2 duplicate(s) within the input; rating…\n',
    );
    expect(fresh.error).not.toContain('already stored');
    // Again: W2 had events before, so each copy may be of a stored event.
    const again = await run(['import', twice, '--db', db]);
    expect(again.error).toContain(
      'wameter import: stored 0 new event(s), 5 duplicate(s) within the input or of events already stored; rating…\n',
    );
    // Both: W3 is new, its repeated line a copy within the input.
    const both = tempFile(dir, 'both.ndjson', [CLEAN_W2_LINES[0]!, ...CLEAN_W3_LINES, CLEAN_W3_LINES[0]!]);
    const mixed = await run(['import', both, '--db', db]);
    expect(mixed.error).toContain(
      'wameter import: stored 3 new event(s), 2 duplicate(s): 1 within the input, 1 within the input or of events already stored; rating…\n',
    );
    expect(mixed.code).toBe(0);
  });

  it('counts a stored event completed by copies in several batches once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const db = `sqlite:${join(dir, 'w.db')}`;
    const party = { waba: 'W1', business: 'PN1', user: '919876543210' };
    const copy = (extra: object) =>
      JSON.stringify({
        kind: 'outbound',
        at: '2025-08-05T10:00:00Z',
        ...party,
        id: 'wamid.c1',
        template: 'utility',
        ...extra,
      });
    const fillers = (from: number) =>
      Array.from({ length: 5000 }, (_, i) =>
        JSON.stringify({ kind: 'inbound', at: '2025-08-05T09:00:00Z', ...party, id: `wamid.f${from + i}` }),
      );
    const first = await run(['import', tempFile(dir, 'first.ndjson', [copy({})]), '--db', db]);
    expect(first.code).toBe(0);
    // Two copies, each adding a field, 5,000 lines apart: two store batches.
    const lines = [
      copy({ template_name: 'welcome' }),
      ...fillers(0),
      copy({ delivered_at: '2025-08-05T10:00:03Z' }),
    ];
    const later = await run(['import', tempFile(dir, 'later.ndjson', lines), '--db', db]);
    expect(later.error).toContain(
      '2 duplicate(s) within the input or of events already stored (1 of them completed a stored copy)',
    );
  });

  it('says how many stored statuses no WABA can be found for (they are not rated), without changing the exit code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const db = `sqlite:${join(dir, 'w.db')}`;
    const untied = await run(['import', tempFile(dir, 'statuses.ndjson', UNTIED_STATUS_LINES), '--db', db]);
    expect(untied.error).toContain(
      'wameter import: 2 status(es) in the store name no WABA, and neither their message nor their business number ties them to one: they are not rated until their message is imported (a send log, or inbound webhooks), or an inbound or outbound line of their business number (imported, from a webhook, or from an API key for every WABA)\n',
    );
    expect(untied.code).toBe(0);
    // Said again while they stand by an import that holds such statuses too; one without any is not slowed
    // by the count (it looks each status's message up in every WABA).
    const again = await run(['import', tempFile(dir, 'again.ndjson', UNTIED_STATUS_LINES), '--db', db]);
    expect(again.error).toContain('wameter import: 2 status(es) in the store name no WABA');
    const namingWabas = CLEAN_W2_LINES.map((line) =>
      line.replace('{"kind":"status",', '{"kind":"status","waba":"W2",'),
    );
    const other = await run(['import', tempFile(dir, 'w2.ndjson', namingWabas), '--db', db]);
    expect(other.error).not.toContain('name no WABA');
    expect(other.code).toBe(0);
    // W9's send log ties one by its message and the other by its business number.
    const tied = await run(['import', tempFile(dir, 'w9.ndjson', W9_SEND_LOG_LINES), '--db', db]);
    expect(tied.code).toBe(0);
    // Both rated with W9 now: sent, so pending.
    const store = await openStore(db, { isReadOnly: true });
    try {
      expect(await store.countUnattributedStatuses()).toBe(0);
      expect((await store.listPending({ wabas: ['W9'] })).map((pending) => pending.id)).toEqual([
        'wamid.s1',
        'wamid.s2',
      ]);
    } finally {
      await store.close();
    }
  });

  it('exits 2, not 3, when besides unpriced units some input lines are malformed (as `wameter rate` does)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const file = tempFile(dir, 'mixed.ndjson', [...UNKNOWN_RECIPIENT_LINES, '{not json']);
    expect((await run(['rate', file])).code).toBe(2);
    const { code, error } = await run(['import', file, '--db', `sqlite:${join(dir, 'w.db')}`]);
    expect(error).toContain('mixed.ndjson:3');
    expect(code).toBe(2);
  });

  it('names a file that cannot be read and stores the sources beside it (exit 2)', async () => {
    const db = `sqlite:${join(mkdtempSync(join(tmpdir(), 'wameter-import-')), 'w.db')}`;
    const { code, error } = await run([
      'import',
      EXAMPLE,
      '/nonexistent.ndjson',
      '--db',
      db,
      '--allow-unpriced',
    ]);
    expect(code).toBe(2);
    expect(error).toContain('/nonexistent.ndjson: UNREADABLE_SOURCE');
    expect(error).toMatch(/stored [1-9]\d* new event\(s\)/);
  });

  it('shows progress on a terminal every 100,000 events, and counts unpriced units as `wameter rate` does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const file = join(dir, 'traffic.ndjson');
    const { generateTraffic } = await import('../../bench/generate-traffic.js');
    writeFileSync(file, [...generateTraffic({ seed: 7, eventsTarget: 105_000, users: 3000 })].join('\n'));
    const { code, error } = await run(['import', file, '--db', `sqlite:${join(dir, 'w.db')}`], true);
    expect(error).toContain('wameter import: 100,000 events read…');
    // The generated traffic writes to a few numbers of no known calling code: the same exit and warning.
    const rated = await run(['rate', file, '--format', 'csv']);
    expect(rated.code).toBe(3);
    const warning = rated.error.split('\n').find((line) => line.includes('could not be priced'));
    expect(warning).toMatch(/^wameter: [1-9]\d* charged unit\(s\) could not be priced/);
    expect(error).toContain(warning!.replace(/^wameter: /, 'wameter import: '));
    expect(code).toBe(3);
  }, 60_000);
});

describe('wameter import after an upgrade', () => {
  it('re-rates a bill another wameter rated as a re-rate that keeps what changed, before storing the sources', async () => {
    const { dir, db, config } = storeWithAccounts([]);
    const events = tempFile(dir, 'w2.ndjson', CLEAN_W2_LINES);
    expect((await run(['import', events, '--db', db, '--config', config])).code).toBe(0);
    // An older wameter's bill: its ratings without a digest of the rating code, one unit priced otherwise.
    const path = db.slice('sqlite:'.length);
    const raw = new Database(path);
    raw.exec('UPDATE ratings SET engine_digest = NULL');
    const [unitId] = raw.prepare('SELECT id FROM units ORDER BY id LIMIT 1').pluck().all() as string[];
    raw.prepare('UPDATE units SET amount_micros = amount_micros + 1000 WHERE id = ?').run(unitId);
    const units = raw.prepare('SELECT count(*) FROM units').pluck().get() as number;
    raw.close();
    const upgraded = await run(['import', events, '--db', db, '--config', config]);
    expect(upgraded.code).toBe(0);
    expect(upgraded.error).toContain(
      'wameter import: the stored bill was rated by another version of wameter (an upgrade)',
    );
    expect(upgraded.error).toMatch(
      new RegExp(
        `re-rated after the upgrade \\(rating_[^)]+\\): 1 unit\\(s\\) changed, ${units - 1} unchanged; totals `,
      ),
    );
    const store = await openStore(db, { isReadOnly: true });
    try {
      const history = await store.listRatings(50);
      const upgrade = history.find((rating) => rating.reason === 'upgrade')!;
      const { units } = await store.listRatingChanges(upgrade.id, { limit: 50 });
      expect((units as { unit: string }[]).map((change) => change.unit)).toEqual([unitId]);
    } finally {
      await store.close();
    }
    const again = await run(['import', events, '--db', db, '--config', config]);
    expect(again.error).not.toContain('another version of wameter');
  });
});

describe('wameter import when the re-rate after an upgrade fails', () => {
  it('says so and what to do, exit 1, and stores none of the sources', async () => {
    const { dir, db, config } = storeWithAccounts([]);
    expect(
      (await run(['import', tempFile(dir, 'w2.ndjson', CLEAN_W2_LINES), '--db', db, '--config', config]))
        .code,
    ).toBe(0);
    const raw = new Database(db.slice('sqlite:'.length));
    raw.exec('UPDATE ratings SET engine_digest = NULL');
    raw.exec(
      "CREATE TRIGGER refuse_upgrade BEFORE INSERT ON ratings WHEN NEW.reason = 'upgrade' BEGIN SELECT RAISE(FAIL, 'injected failure'); END",
    );
    const events = () => raw.prepare('SELECT count(*) FROM events').pluck().get() as number;
    const before = events();
    const failed = await run([
      'import',
      tempFile(dir, 'w3.ndjson', CLEAN_W3_LINES),
      '--db',
      db,
      '--config',
      config,
    ]);
    expect(failed.code).toBe(1);
    expect(failed.error).toContain(
      'the stored bill, rated by another version of wameter, could not be re-rated (injected failure); nothing was imported: fix that (free disk space, reach the database), then run `wameter import` again',
    );
    expect(failed.error).not.toContain('internal error');
    expect(events()).toBe(before);
    raw.close();
  });
});

describe('wameter rerate --waba on a store another wameter rated', () => {
  it('re-rates the whole store as the upgrade first, so that its own record hides no other WABA’s upgrade', async () => {
    const { dir, db, config } = storeWithAccounts([]);
    const events = tempFile(dir, 'w2-w3.ndjson', [...CLEAN_W2_LINES, ...CLEAN_W3_LINES]);
    expect((await run(['import', events, '--db', db, '--config', config])).code).toBe(0);
    // An older wameter's bill: W2's unit priced otherwise.
    const raw = new Database(db.slice('sqlite:'.length));
    raw.exec('UPDATE ratings SET engine_digest = NULL');
    raw.exec(`UPDATE units SET amount_micros = amount_micros + 1000 WHERE waba = 'W2'`);
    raw.close();
    // A dry run stores nothing, and says that what it lists includes what this version changes by itself.
    const dry = await run(['rerate', '--dry-run', '--waba', 'W3', '--db', db, '--config', config]);
    expect(dry.code, dry.error).toBe(0);
    expect(dry.error).toContain(
      'wameter rerate: the stored bill was rated by another version of wameter: the changes below include what this version changes by itself',
    );
    const rerated = await run(['rerate', '--waba', 'W3', '--db', db, '--config', config]);
    expect(rerated.code, rerated.error).toBe(0);
    expect(rerated.error).toContain(
      'wameter rerate: the stored bill was rated by another version of wameter',
    );
    expect(rerated.error).toMatch(
      /re-rated after the upgrade \(rating_[^)]+\): 1 unit\(s\) changed, 1 unchanged;/,
    );
    const store = await openStore(db, { isReadOnly: true });
    try {
      const [newest, upgrade] = await store.listRatings(2);
      expect(newest!.reason).toBe('rerate (cli)');
      expect(upgrade!.reason).toBe('upgrade');
      expect(upgrade!.wabas).toEqual(['W2', 'W3']);
    } finally {
      await store.close();
    }
    // Upgraded: the next writer, and a dry run, have nothing to say.
    expect((await run(['import', events, '--db', db, '--config', config])).error).not.toContain(
      'another version',
    );
    expect((await run(['rerate', '--dry-run', '--db', db, '--config', config])).error).not.toContain(
      'another version',
    );
  });
});

describe("wameter import: the service's reported-rules setting", () => {
  const lines = [
    '{"kind":"outbound","at":"2026-10-15T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"m1","template":"marketing","delivered_at":"2026-10-15T10:00:02Z"}',
  ];

  it.each([
    [undefined, 'PMP-2026-10'],
    ['off', 'PMP-2025'],
  ])('WAMETER_REPORTED_RULES=%s rates a delivery of October 2026 under %s', async (setting, era) => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-reported-'));
    const db = `sqlite:${join(dir, 'w.db')}`;
    const saved = process.env.WAMETER_REPORTED_RULES;
    if (setting === undefined) delete process.env.WAMETER_REPORTED_RULES;
    else process.env.WAMETER_REPORTED_RULES = setting;
    try {
      const { code } = await run(['import', tempFile(dir, 'events.ndjson', lines), '--db', db]);
      expect(code).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.WAMETER_REPORTED_RULES;
      else process.env.WAMETER_REPORTED_RULES = saved;
    }
    const store = await openStore(db);
    try {
      expect((await store.queryUnits({}, { limit: 10 })).units).toMatchObject([{ id: 'u_m1', era }]);
    } finally {
      await store.close();
    }
  });
});

describe('wameter import on PostgreSQL: planner statistics', () => {
  // Never analysed, units are planned from their size alone, a filter's share guessed: a category's page
  // dearest first (order=amount_desc) sorted all its units instead of reading units_amount until autovacuum
  // analysed them (500,000 bench events imported: 24–26 ms a page, then 0.09–0.12 ms; docs/storage.md).
  it('analyses the units, pending messages and findings it rated after a bulk load, as the events before', async () => {
    const server = process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const admin = new pg.Client({ connectionString: server, connectionTimeoutMillis: 5_000 });
    await admin.connect();
    const schema = `wameter_import_${randomBytes(5).toString('hex')}`;
    try {
      await admin.query(`CREATE SCHEMA ${schema}`);
      const url = new URL(server);
      url.searchParams.set('options', `-c search_path=${schema}`);
      const db = url.toString();
      await (await openStore(db)).close();
      // Autovacuum would analyse them in its own time: only the import may here.
      const tables = ['events', 'units', 'pending_messages', 'findings'];
      for (const table of tables) {
        await admin.query(`ALTER TABLE ${schema}.${table} SET (autovacuum_enabled = false)`);
      }
      // 600 utility messages delivered (1,200 events: past the import's 1,000) and one sent only (pending).
      const lines = Array.from({ length: 601 }, (_, i) => [
        `{"kind":"outbound","at":"2025-10-02T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.b${i}","template":"utility"}`,
        `{"kind":"status","at":"2025-10-02T10:00:03Z","id":"wamid.b${i}","status":"${i < 600 ? 'delivered' : 'sent'}"}`,
      ]).flat();
      const dir = mkdtempSync(join(tmpdir(), 'wameter-import-pg-'));
      const { code } = await run(['import', tempFile(dir, 'events.ndjson', lines), '--db', db]);
      expect(code).toBe(0);
      const { rows } = await admin.query(
        `SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) ORDER BY c.relname`,
        [schema, tables],
      );
      // reltuples -1: never analysed.
      expect(Object.fromEntries(rows.map((row) => [row.relname, Number(row.reltuples)]))).toEqual({
        events: 1202,
        findings: 0,
        pending_messages: 1,
        units: 600,
      });
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  });
});
