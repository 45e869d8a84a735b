// How long the SQLite store takes to list its rating history when it holds N ratings (each arrival at the
// service adds a live rating), with the history's indexes (store migration 15) and, in the same run, without.
// Every listing runs in the server's thread: GET /v1/ratings, and the look at the last rating at each re-rate.
// Run: npm run build && node dist/bench/ratings-history.js [ratings, default 1000000]

import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';

const count = Number(process.argv[2] ?? 1_000_000);
if (!Number.isInteger(count) || count < 1) {
  console.error('usage: node dist/bench/ratings-history.js [ratings: a whole number, default 1000000]');
  process.exit(1);
}

const LISTINGS: readonly [string, (store: Store) => Promise<unknown>][] = [
  ['GET /v1/ratings?limit=1000', (store) => store.listRatings(1000)],
  ['a key for one WABA, 1000', (store) => store.listRatings(1000, ['W1'])],
  ['re-rates only, 1000', (store) => store.listRatings(1000, undefined, { reasons: ['rerate', 'upgrade'] })],
  ['the last rating (each re-rate)', (store) => store.listRatings(1, undefined, { isWithoutChanges: true })],
];

const dir = mkdtempSync(join(tmpdir(), 'wameter-ratings-history-'));
try {
  const results = new Map<string, number[]>();
  for (const isIndexed of [true, false]) {
    const path = join(dir, `history-${isIndexed ? 'indexed' : 'bare'}.db`);
    await (await openSqliteStore(path)).close();
    const db = new Database(path);
    const insert = db.prepare(
      'INSERT INTO ratings (id, rated_at_ms, reason, wabas, rate_cards, totals, totals_by_waba) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const totals = JSON.stringify({ USD: { amountMicros: 123_450_000, units: 1000, byCategory: {} } });
    const byWaba = JSON.stringify({ W1: JSON.parse(totals) as unknown, W2: JSON.parse(totals) as unknown });
    const startMs = Date.parse('2025-10-01T00:00:00Z');
    db.transaction(() => {
      for (let i = 0; i < count; i++) {
        const reason = i % 5000 === 0 ? 'rerate' : 'live';
        const wabas = i % 2 === 0 ? '["W1","W2"]' : '["W3"]';
        insert.run(`rating_${i}`, startMs + i * 1000, reason, wabas, '["usd-2025-10-01"]', totals, byWaba);
      }
    })();
    // The store as it was before migration 15 (its other indexes, its recorded migrations, unchanged).
    if (!isIndexed) db.exec('DROP INDEX ratings_newest; DROP INDEX ratings_newest_by_reason');
    db.close();
    const store = await openSqliteStore(path);
    try {
      for (const [name, listing] of LISTINGS) {
        await listing(store); // warm
        const startedAt = performance.now();
        await listing(store);
        const row = results.get(name) ?? [];
        row.push(performance.now() - startedAt);
        results.set(name, row);
      }
    } finally {
      await store.close();
    }
  }
  console.log(
    `${count.toLocaleString('en-US')} ratings in SQLite: one listing, in ms of the server's thread`,
  );
  console.log('| listing | with the indexes | without | ratio |');
  console.log('|---|---|---|---|');
  for (const [name, [indexed, bare]] of results) {
    console.log(
      `| ${name} | ${indexed!.toFixed(1)} | ${bare!.toFixed(1)} | ${(bare! / indexed!).toFixed(0)}× |`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
