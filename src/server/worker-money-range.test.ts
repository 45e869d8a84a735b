// Sums of money past 2^53 micros, in the on-demand worker thread: added exactly (an estimate's totals), and a
// MoneyRangeError still thrown while rating (an amount read as a float past 2^53) answered as the request's
// own doing — 400 BAD_QUERY, as the same error thrown in the server's thread is — never 503, which tells the
// client to retry a request that can never succeed. The real server, its real rating workers (compiled: a
// worker thread cannot run TypeScript) and a real SQLite file.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EXACT_AMOUNT, MoneyRangeError } from '../core/money.js';
import { packageRoot } from '../ingest/rate-card-files.js';
import { buildRatingWorker } from '../../test/support/build-server.js';
import {
  conversationLines,
  createTestService,
  KEY_ALL,
  KEY_W1,
  testConfig,
  type TestService,
} from '../../test/server-kit.js';
import { createInProcessLiveRater, workerError, workerErrorKindOf } from './live-rater.js';
import { createMemoryLogger } from './logger.js';
import { startServer, type RunningServer } from './main.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-worker-money-'));
/** 5 billion dollars a utility message to India: two such messages pass 2^53 micros (9,007,199,254.74). */
const ABSURD_PRICE = '5000000000';
let script: string;
let server: RunningServer;
const logger = createMemoryLogger();

beforeAll(async () => {
  script = buildRatingWorker(join(import.meta.dirname, '..', '..', '.tmp', 'worker-money-range-test-build'));
  // The bundled card of October 2025, India's utility rate made absurd.
  const card = readFileSync(join(packageRoot(), 'data', 'rate-cards', 'usd-2025-10-01.csv'), 'utf8');
  const absurd = card.replace(/^India,\$US,([^,]+),([^,]+),/m, `India,$US,$1,${ABSURD_PRICE},`);
  expect(absurd).not.toBe(card);
  const cardPath = join(dir, 'usd-2025-10-01.csv');
  writeFileSync(cardPath, absurd);
  server = await startServer(
    testConfig({
      db: `sqlite:${join(dir, 'money.db')}`,
      port: 0,
      host: '127.0.0.1',
      rateCardPaths: [cardPath],
    }),
    { logger, ratingWorkerScript: script },
  );
}, 180_000);

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function estimate(phones: string[]): Promise<Response> {
  return fetch(`${server.url}/v1/estimate`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY_W1}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ phones, template: 'utility', at: '2025-10-15T10:00:00Z' }),
  });
}

describe('an estimate past 2^53 micros in the rating worker', () => {
  it('is added exactly there, as in the server thread: 200 with the exact total, never 503 "retry later"', async () => {
    // On-demand ratings (the estimate's) run in a worker thread of their own here.
    expect(logger.lines.map((line) => JSON.parse(line) as Record<string, unknown>)).toContainEqual(
      expect.objectContaining({ msg: 'live rating', on_demand_runs_in: 'a second worker thread' }),
    );
    const posted = await fetch(`${server.url}/v1/events`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_W1}`, 'Content-Type': 'application/x-ndjson' },
      body: conversationLines('W1', 'PN1', '919876543210', 'wamid.money')
        .map((line) => JSON.stringify(line))
        .join('\n'),
    });
    expect(posted.status).toBe(200);

    // One such message is quoted: the worker rates with the absurd card.
    const one = await estimate(['919876543210']);
    expect(one.status).toBe(200);
    expect(((await one.json()) as { totals: { by_currency: unknown } }).totals.by_currency).toMatchObject({
      USD: { amount: ABSURD_PRICE },
    });

    // Two pass 2^53 micros: added exactly (a bigint), as `wameter rate` adds its totals. Until the twenty-sixth
    // session this was a MoneyRangeError, answered 400.
    const two = await estimate(['919876543210', '919812345678']);
    expect(two.status).toBe(200);
    expect(((await two.json()) as { totals: { by_currency: unknown } }).totals.by_currency).toMatchObject({
      USD: { amount: '10000000000' },
    });
    expect(logger.lines.filter((line) => line.includes('"level":"error"'))).toEqual([]);
  });

  it('a MoneyRangeError a worker still throws (an amount a driver gave as a float past 2^53) crosses as itself', () => {
    const error = workerError({ message: 'x', kind: workerErrorKindOf(new MoneyRangeError()) });
    expect(error).toBeInstanceOf(MoneyRangeError);
    expect(error.message).toContain(`exceeds ${MAX_EXACT_AMOUNT} currency units`);
    expect(workerError({ message: 'disk full' })).not.toBeInstanceOf(MoneyRangeError);
  });
});

describe('a MoneyRangeError out of a rating, on the routes that rate through the store (re-rate, explain)', () => {
  let service: TestService | undefined;
  afterAll(async () => {
    await service?.close();
  });

  it('is 400 BAD_QUERY as well, not 503 STORE_UNAVAILABLE (their store errors are 503)', async () => {
    // Today's ratings add exactly (bigints) and never throw it; a worker's would now reach these routes as
    // the class it is (live-rater.ts workerError), so the routes must not take it for a store failure.
    service = await createTestService(
      {},
      {
        liveRater: (store, pricing) => {
          const rater = createInProcessLiveRater(store, pricing);
          return {
            ...rater,
            rateScope: () => Promise.reject(new MoneyRangeError()),
          };
        },
      },
    );
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.range'));
    const rerate = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ dry_run: true }),
    });
    const explain = await service.get('/v1/explain?user=919876543210', KEY_ALL);
    for (const response of [rerate, explain]) {
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      expect({ status: response.status, code: error.code }).toEqual({ status: 400, code: 'BAD_QUERY' });
      expect(error.message).toContain(`exceeds ${MAX_EXACT_AMOUNT} currency units`);
    }
    expect(service.metrics.value('store_errors_total')).toBe(0);
  });
});
