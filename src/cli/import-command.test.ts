import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { openStore } from '../store/open-store.js';
import { acquireWriterLock } from '../store/writer-lock.js';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'month', 'events.ndjson');

async function run(args: string[], isStderrTty = false) {
  const { code, out, err } = await runWameter(args, { isStderrTty });
  return { code, out, error: err };
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
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const db = `sqlite:${join(dir, 'w.db')}`;
    const store = await openStore(db);
    await store.close();
    // A real failure inside SQLite: every write of a rating is refused.
    const raw = new Database(join(dir, 'w.db'));
    raw.exec(
      "CREATE TRIGGER refuse_ratings BEFORE INSERT ON ratings BEGIN SELECT RAISE(ABORT, 'ratings refused'); END",
    );
    raw.close();
    const failed = await run(['import', EXAMPLE, '--db', db]);
    expect(failed.code).toBe(1);
    expect(failed.error).toMatch(
      /wameter: the events are stored, but rating \d+ WABA\(s\) failed \(.+\): ratings refused;/,
    );
    expect(failed.error).toContain('run `wameter import` again once that is fixed');
    expect(failed.error).not.toMatch(/unit\(s\) in the store/);
    expect(failed.out).toBe('');

    const reopened = new Database(join(dir, 'w.db'));
    expect((reopened.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n).toBeGreaterThan(
      0,
    );
    expect((reopened.prepare('SELECT count(*) AS n FROM units').get() as { n: number }).n).toBe(0);
    reopened.exec('DROP TRIGGER refuse_ratings');
    reopened.close();
    const again = await run(['import', EXAMPLE, '--db', db]);
    expect(again.code).toBe(0);
    expect(again.error).toContain('stored 0 new event(s)');
    expect(again.out).toMatch(/^USD: [1-9]\d* unit\(s\) in the store$/m);
  });

  it('names a file that cannot be read', async () => {
    const db = `sqlite:${join(mkdtempSync(join(tmpdir(), 'wameter-import-')), 'w.db')}`;
    const { code, error } = await run(['import', '/nonexistent.ndjson', '--db', db]);
    expect(code).toBe(2);
    expect(error).toContain('/nonexistent.ndjson');
  });

  it('shows progress on a terminal every 100,000 events', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-import-'));
    const file = join(dir, 'traffic.ndjson');
    const { generateTraffic } = await import('../../bench/generate-traffic.js');
    writeFileSync(file, [...generateTraffic({ seed: 7, eventsTarget: 105_000, users: 3000 })].join('\n'));
    const { code, error } = await run(['import', file, '--db', `sqlite:${join(dir, 'w.db')}`], true);
    expect(code).toBe(0);
    expect(error).toContain('wameter import: 100,000 events read…');
  }, 60_000);
});
