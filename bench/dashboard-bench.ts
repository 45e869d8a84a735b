// Table 4 of `npm run bench`: how fast the dashboard's API answers over a month of ~500,000 stored units,
// on SQLite and PostgreSQL. The events are stored and the units rated once in memory and written with
// `replaceRating` (this measures reading; table 3 measures ingestion); each call is then made in-process,
// as the dashboard makes it, and timed: the first (cold) answer and the median of the next runs.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { defaultAccount, eventKey, type Account, type CoreEvent } from '../src/core/events.js';
import { Rater } from '../src/core/rate-events.js';
import type { BillableUnit, Finding, PendingMessage } from '../src/core/units.js';
import { parseEventValue } from '../src/ingest/parse-event.js';
import { createApp } from '../src/server/app.js';
import { loadServiceConfig } from '../src/server/config.js';
import { registerDashboardRoutes } from '../src/server/dashboard-routes.js';
import { createMemoryLogger } from '../src/server/logger.js';
import { Metrics } from '../src/server/metrics.js';
import { loadPricingSetup, loadRateCards } from '../src/server/pricing-setup.js';
import { createRatingService } from '../src/server/rating-service.js';
import { currencyTotalsOf } from '../src/server/rating-service.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { EventInput, Store } from '../src/store/store.js';
import { generateAccounts, generateEvents, type TrafficOptions } from './generate-traffic.js';

export interface DashboardBenchOptions {
  seed: number;
  /** Approximate number of units wanted (the traffic is sized to give about this many). */
  units: number;
  runs: number;
  postgresUrl: string | null;
  log: (line: string) => void;
}

export interface DashboardCallResult {
  store: string;
  call: string;
  coldMs: number;
  medianMs: number;
  status: number;
  /** Size of the answer: a call answering fast with nothing to say would show here. */
  bytes: number;
}

export interface DashboardBenchResult {
  units: number;
  events: number;
  rateSeconds: number;
  writeSeconds: Record<string, number>;
  calls: DashboardCallResult[];
}

const KEY = 'bench-dashboard-key';

export async function benchDashboardApi(options: DashboardBenchOptions): Promise<DashboardBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-dash-bench-'));
  try {
    const traffic: TrafficOptions = {
      seed: options.seed,
      // About 4.3 lines per unit in the generator's mix (measured on its default mix).
      eventsTarget: Math.round(options.units * 4.3),
      users: Math.max(10_000, Math.round(options.units * 0.6)),
      days: 30,
      start: '2025-10-01T00:00:00Z',
      timeOrdered: true,
      duplicates: 0,
    };
    const accountsPath = join(dir, 'accounts.json');
    writeFileSync(accountsPath, JSON.stringify(generateAccounts(traffic)));
    const config = loadServiceConfig({
      env: { WAMETER_API_KEYS: `${KEY}=*`, WAMETER_RATE_LIMIT: 'off', WAMETER_ACCOUNTS: accountsPath },
    });
    if (!config.ok) throw new Error(config.error.problems.join('; '));
    const pricing = await loadPricingSetup({ accountsPath, rateCardPaths: [] });
    if (!pricing.ok) throw new Error(pricing.error);

    options.log(`  rating ~${traffic.eventsTarget} generated events…`);
    const started = performance.now();
    const accounts = new Map<string, Account>(pricing.value.accounts.map((a) => [a.waba, a]));
    const units: BillableUnit[] = [];
    const pending: PendingMessage[] = [];
    const rater = new Rater(
      {
        accountFor: (waba) => accounts.get(waba) ?? defaultAccount(waba),
        rateBook: pricing.value.rateBook,
        markets: pricing.value.markets,
      },
      { unit: (u) => units.push(u), pending: (p) => pending.push(p) },
    );
    let events = 0;
    const stored: EventInput[] = [];
    for (const line of generateEvents(traffic)) {
      const parsed = parseEventValue(line);
      if (!parsed.ok) continue;
      for (const event of parsed.value.events as CoreEvent[]) {
        rater.add(event);
        stored.push({ key: eventKey(event), event, receivedAtMs: 0, source: 'bench' });
        events += 1;
      }
    }
    const { findings } = rater.finish();
    const rateSeconds = (performance.now() - started) / 1000;
    options.log(`  ${units.length} units from ${events} events in ${rateSeconds.toFixed(1)} s`);

    const stores: { name: string; open: () => Promise<Store>; drop?: () => Promise<void> }[] = [
      { name: 'SQLite', open: () => openSqliteStore(join(dir, 'bench.db')) },
    ];
    if (options.postgresUrl) {
      const schema = `wameter_dash_bench_${process.pid}`;
      const url = options.postgresUrl;
      stores.push({
        name: 'PostgreSQL',
        open: () => openPostgresStore(url, { schema }),
        drop: async () => {
          const client = new pg.Client({ connectionString: url });
          await client.connect();
          await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          await client.end();
        },
      });
    }

    const result: DashboardBenchResult = {
      units: units.length,
      events,
      rateSeconds,
      writeSeconds: {},
      calls: [],
    };
    const wabas = [...new Set(units.map((u) => u.waba))].sort();
    const busyMarket = mostCommon(units.map((u) => u.market ?? ''));
    for (const target of stores) {
      const store = await target.open();
      try {
        const writeStarted = performance.now();
        // The events too: the per-WABA pages (allowances, accounts) list the WABAs that have traffic.
        for (let i = 0; i < stored.length; i += 20_000) await store.ingestEvents(stored.slice(i, i + 20_000));
        await store.replaceRating(
          {
            id: `bench-${target.name}`,
            ratedAtMs: Date.now(),
            reason: 'bench',
            wabas,
            asOfRules: null,
            rateCards: pricing.value.cards.map((card) => card.id),
            totals: currencyTotalsOf(units),
          },
          { units, pending, findings: findings.filter((f): f is Finding => typeof f.waba === 'string') },
        );
        result.writeSeconds[target.name] = (performance.now() - writeStarted) / 1000;
        options.log(`  ${target.name}: stored in ${result.writeSeconds[target.name]!.toFixed(1)} s`);
        const logger = createMemoryLogger(Date.now);
        const rating = createRatingService({
          store,
          pricing: pricing.value,
          clock: Date.now,
          logger,
          loadRateCards,
        });
        const app = createApp({
          store,
          config: config.value,
          clock: Date.now,
          logger,
          rating,
          metrics: new Metrics(),
        });
        registerDashboardRoutes(app, {
          store,
          config: config.value,
          clock: Date.now,
          logger,
          rating,
          pricing: pricing.value,
        });
        const calls: [string, string][] = [
          ['totals, whole month', '/v1/totals'],
          ['overview: spend per day by category', '/v1/dashboard/overview?granularity=DAILY&by=category'],
          ['overview: spend per month by market', '/v1/dashboard/overview?granularity=MONTHLY&by=market'],
          ['allowances and tier positions, 2025-10', '/v1/dashboard/allowances?month=2025-10'],
          [
            'analytics (Meta shape), DAILY by country, metric=pricing',
            '/v1/analytics?start=1759276800&end=1761955200&granularity=DAILY&dimensions=country&metric=pricing',
          ],
          ['units, first page of 100', '/v1/units?limit=100'],
          [
            'units, filtered page',
            `/v1/units?limit=100&category=marketing&market=${encodeURIComponent(busyMarket)}`,
          ],
        ];
        for (const [name, path] of calls) {
          const times: number[] = [];
          let status = 0;
          let bytes = 0;
          for (let run = 0; run <= options.runs; run++) {
            const t = performance.now();
            const response = await app.request(path, { headers: { Authorization: `Bearer ${KEY}` } });
            bytes = (await response.arrayBuffer()).byteLength;
            times.push(performance.now() - t);
            status = response.status;
          }
          const [cold, ...warm] = times;
          warm.sort((a, b) => a - b);
          result.calls.push({
            store: target.name,
            call: name,
            coldMs: cold!,
            medianMs: warm[Math.floor(warm.length / 2)] ?? cold!,
            status,
            bytes,
          });
        }
        await rating.close();
      } finally {
        await store.close();
        await target.drop?.();
      }
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function mostCommon(values: string[]): string {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
}
