// How long the SQLite store's export of N units stops the event loop (GET /v1/units.csv): a 1 ms timer runs
// beside `exportUnits`, and the longest gap between its ticks is the longest stall.
// Run: npm run build && node dist/bench/export-stall.js [units, default 300000]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { BillableUnit } from '../src/core/units.js';

const count = Number(process.argv[2] ?? 300_000);
if (!Number.isInteger(count) || count < 1) {
  console.error('usage: node dist/bench/export-stall.js [units: a whole number, default 300000]');
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'wameter-export-stall-'));
const store = await openSqliteStore(join(dir, 'export.db'));
try {
  const startMs = Date.parse('2025-10-01T00:00:00Z');
  const units: BillableUnit[] = Array.from({ length: count }, (_, i) => ({
    id: `u_${i}`,
    unit: 'message',
    pricingModel: 'PMP',
    era: 'PMP-2025',
    waba: 'W1',
    business: 'PN1',
    user: String(919800000000 + (i % 50_000)),
    country: 'IN',
    market: 'India',
    category: 'marketing',
    rateCategory: 'marketing',
    type: 'regular',
    openedAtMs: startMs + i * 1000,
    expiresAtMs: null,
    messages: [`wamid.${i}`],
    rateMicros: 10_700,
    amountMicros: 10_700,
    currency: 'USD',
    rateCard: 'usd-2025-10-01',
    rule: 'PMP_CHARGED',
  }));
  await store.replaceRating(
    {
      id: 'r1',
      ratedAtMs: startMs,
      reason: 'rerate',
      wabas: ['W1'],
      asOfRules: null,
      rateCards: [],
      totals: {},
    },
    { units, pending: [], findings: [] },
  );
  let longestMs = 0;
  let lastTickMs = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longestMs = Math.max(longestMs, now - lastTickMs);
    lastTickMs = now;
  }, 1);
  const beganMs = performance.now();
  const exported = await store.exportUnits({}, () => {});
  const tookMs = performance.now() - beganMs;
  longestMs = Math.max(longestMs, performance.now() - lastTickMs);
  clearInterval(timer);
  console.log(
    `exported ${exported.toLocaleString('en-US')} units in ${Math.round(tookMs)} ms; longest event-loop stall ${Math.round(longestMs)} ms`,
  );
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
