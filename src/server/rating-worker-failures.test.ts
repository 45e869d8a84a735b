// A rating worker that dies — out of memory on a portfolio too large for its heap, or an error that ends the
// thread — and a shutdown that comes while a long rating runs: real worker threads, a real server.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { eventKey, type CoreEvent } from '../core/events.js';
import { parseEventValue } from '../ingest/parse-event.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { KEY_ALL, deliveredUtility, testConfig } from '../../test/server-kit.js';
import { buildRatingWorker } from '../../test/support/build-server.js';
import { createWorkerLiveRater, type WorkerSetup } from './live-rater.js';
import { createMemoryLogger } from './logger.js';
import { startServer } from './main.js';
import { Metrics } from './metrics.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-worker-failures-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SETUP: WorkerSetup = { db: 'sqlite::memory:', accounts: [], cards: [], isReportedRulesEnabled: true };

/**
 * A stand-in worker that speaks the rating worker's protocol: ready at once; a `rate` request runs out of
 * memory (`oom`), throws outside any handler (`crash`) or is never answered (`hang`) when it is BIG's and the file `fail` exists; else it
 * answers.
 */
function standIn(name: string, onRate: 'oom' | 'crash' | 'hang', fail: string): string {
  const file = join(dir, `${name}.mjs`);
  const failure = {
    oom: 'const hoard = []; for (;;) hoard.push(new Array(100_000).fill(hoard.length));',
    crash: "setImmediate(() => { throw new Error('a bug in rating'); }); return;",
    hang: 'return;',
  }[onRate];
  writeFileSync(
    file,
    `import { parentPort } from 'node:worker_threads';
import { existsSync } from 'node:fs';
parentPort.on('message', (request) => {
  if (request.type === 'close') parentPort.close();
  if (request.type !== 'rate') return;
  if (request.scope[0] === 'BIG' && existsSync(${JSON.stringify(fail)})) { ${failure} }
  parentPort.postMessage({ type: 'rated', id: request.id, rating: { units: 1 } });
});
parentPort.postMessage({ type: 'ready' });
`,
  );
  return file;
}

function logged(logger: ReturnType<typeof createMemoryLogger>): { msg: string; [field: string]: unknown }[] {
  return logger.lines.map((line) => JSON.parse(line) as { msg: string });
}

describe('a rating worker that keeps dying', () => {
  it('out of memory: says so with its heap limit and what to do, counts it, restarts after growing pauses, and rates again once the cause is gone', async () => {
    const fail = join(dir, 'oom-fails');
    writeFileSync(fail, '');
    const logger = createMemoryLogger();
    const metrics = new Metrics();
    let now = 0;
    const rater = createWorkerLiveRater(standIn('oom', 'oom', fail), SETUP, logger, {
      resourceLimits: { maxOldGenerationSizeMb: 16 },
      restartDelaysMs: [0, 2_000, 5_000],
      nowMs: () => now,
      onDeath: (cause) => metrics.inc('rating_worker_deaths_total', { worker: 'live', cause }),
    });
    try {
      await expect(rater.rate(['BIG'])).rejects.toThrow(/rating worker exited .*out of memory/i);
      let lines = logged(logger).filter((line) => line.errorCode === 'RATING_WORKER_OUT_OF_MEMORY');
      expect(lines).toHaveLength(1);
      expect(lines[0]!.msg).toMatch(
        /^the live rating worker ran out of memory \(its heap limit: 16 MB\): the ratings it had failed and are retried; a new one starts at the next rating\. .*NODE_OPTIONS=--max-old-space-size=MB/,
      );
      expect(metrics.value('rating_worker_deaths_total', { worker: 'live', cause: 'out_of_memory' })).toBe(1);

      // The first death restarts at once; the second in a row waits 2 s before a new worker reads it all again.
      await expect(rater.rate(['BIG'])).rejects.toThrow(/out of memory/i);
      lines = logged(logger).filter((line) => line.errorCode === 'RATING_WORKER_OUT_OF_MEMORY');
      expect(lines[1]!.msg).toContain('a new one starts in 2 s at the earliest (it died 2 times in a row)');
      now = 1_500;
      await expect(rater.rate(['BIG'])).rejects.toThrow(
        'the live rating worker died 2 times in a row (last: it ran out of memory (its heap limit: 16 MB)); a new one starts in 1 s',
      );
      expect(metrics.value('rating_worker_deaths_total', { worker: 'live', cause: 'out_of_memory' })).toBe(2);

      // The cause gone (here: the stand-in no longer hoards), the next worker after the pause rates.
      rmSync(fail);
      now = 2_000;
      await expect(rater.rate(['BIG'])).resolves.toEqual({ units: 1 });
    } finally {
      await rater.close();
    }
  });

  it('an error that ends the thread: said with its message, counted as crashed; only rating what killed it ends the run of deaths', async () => {
    const fail = join(dir, 'crash-fails');
    writeFileSync(fail, '');
    const logger = createMemoryLogger();
    const deaths: string[] = [];
    let now = 0;
    const rater = createWorkerLiveRater(standIn('crash', 'crash', fail), SETUP, logger, {
      role: 'on-demand rating',
      restartDelaysMs: [0, 10_000],
      nowMs: () => now,
      onDeath: (cause) => deaths.push(cause),
    });
    try {
      await expect(rater.rate(['BIG'])).rejects.toThrow('rating worker exited (code 1): a bug in rating');
      const [line] = logged(logger).filter((entry) => entry.errorCode === 'RATING_WORKER_DIED');
      expect(line).toMatchObject({
        msg: 'the on-demand rating worker stopped (exit code 1): the ratings it had failed and are retried; a new one starts at the next rating',
        error: 'a bug in rating',
      });
      // Another portfolio rated in between says nothing of BIG's: its next death is the 2nd in a row.
      await expect(rater.rate(['SMALL'])).resolves.toEqual({ units: 1 });
      await expect(rater.rate(['BIG'])).rejects.toThrow(/a bug in rating/);
      expect(logged(logger).at(-1)?.msg).toContain(
        'a new one starts in 10 s at the earliest (it died 2 times in a row)',
      );
      now = 10_000;
      await expect(rater.rate(['SMALL'])).resolves.toEqual({ units: 1 });
      // BIG rated (the bug gone): the run of deaths is over, the next death is a first one, restarted at once.
      rmSync(fail);
      await expect(rater.rate(['BIG'])).resolves.toEqual({ units: 1 });
      writeFileSync(fail, '');
      await expect(rater.rate(['BIG'])).rejects.toThrow(/a bug in rating/);
      expect(logged(logger).at(-1)?.msg).toContain('a new one starts at the next rating');
      expect(deaths).toEqual(['crashed', 'crashed', 'crashed']);
    } finally {
      await rater.close();
    }
  });
});

describe('a rating that does not end', () => {
  it('is said in the log after the warning time, and again each time it passes, until it is answered', async () => {
    const fail = join(dir, 'hang-fails');
    writeFileSync(fail, '');
    const logger = createMemoryLogger();
    let now = 0;
    const rater = createWorkerLiveRater(standIn('hang', 'hang', fail), SETUP, logger, {
      slowWarningMs: 100,
      nowMs: () => now,
    });
    const slow = () => logged(logger).filter((line) => line.errorCode === 'RATING_SLOW');
    try {
      const stuck = rater.rate(['BIG', 'BIG2']);
      await expect(rater.rate(['SMALL'])).resolves.toEqual({ units: 1 });
      now = 5 * 60_000;
      await vi.waitFor(() => expect(slow().length).toBeGreaterThanOrEqual(2), { timeout: 5_000 });
      expect(slow()[0]).toMatchObject({
        msg: 'the live rating worker has been rating for 5 min: a large portfolio can take that long (each rating\'s debug line "rated" says how long), a worker stuck in a loop never ends — and reads of the bill wait for the live rating; if rating_lag_seconds keeps growing and this repeats, restart the service (its start rates every portfolio whose bill is behind)',
        request: 'rate',
        wabas: 2,
        minutes: 5,
      });
      // The answered rating (SMALL) is never said slow; the stuck one stops being said once it ends.
      expect(slow().every((line) => line.wabas === 2)).toBe(true);
      rater.abort('stopping');
      await expect(stuck).rejects.toThrow('stopping');
      const said = slow().length;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(slow()).toHaveLength(said);
    } finally {
      await rater.close();
    }
  });
});

describe('a shutdown while a long live rating runs in the worker', () => {
  const events = 30_000;
  const db = join(dir, 'long.db');
  let script: string;

  beforeAll(async () => {
    script = buildRatingWorker(join(import.meta.dirname, '..', '..', '.tmp', 'worker-failures-test-build'));
    const store = await openSqliteStore(db);
    const lines = Array.from({ length: events }, (_, i) =>
      deliveredUtility(
        'WLONG',
        `wamid.long.${i}`,
        new Date(Date.UTC(2025, 7, 1) + i * 60_000).toISOString(),
        `1650555${String(i % 1000).padStart(4, '0')}`,
      ),
    );
    const inputs = lines.flatMap((line) => {
      const parsed = parseEventValue(line);
      if (!parsed.ok) throw new Error(parsed.error.message);
      return parsed.value.events.map((event: CoreEvent) => ({
        key: eventKey(event),
        event,
        receivedAtMs: 0,
        source: 'test',
      }));
    });
    await store.ingestEvents(inputs);
    await store.close();
  }, 120_000);

  it('stops the rating past half the bound and exits cleanly, blaming no database; the next start rates every event', async () => {
    const logger = createMemoryLogger();
    const config = testConfig({ db: `sqlite:${db}`, port: 0, host: '127.0.0.1' });
    const server = await startServer(config, {
      logger,
      ratingWorkerScript: script,
      shutdownGraceMs: 100,
      storeCloseMs: 400,
    });
    // At once: the start's rating of every WABA (30,000 events) has begun in the worker.
    const startedMs = performance.now();
    expect(await server.shutDown()).toBe(true);
    expect(performance.now() - startedMs).toBeLessThan(1_500);
    const lines = logged(logger);
    expect(lines.find((line) => line.errorCode === 'RATING_STOPPED')?.msg).toMatch(
      /^a rating was still running 0\.2 s after the requests were answered .*: stopped in its worker thread, nothing of it written; .*the next start, which rates it; every request answered 200 is stored$/,
    );
    expect(lines.some((line) => line.errorCode === 'STORE_NOT_CLOSED')).toBe(false);
    // The rating cut is said by that warning alone: no "live rating failed" nor "initial rating failed" beside.
    expect(lines.filter((line) => line.level === 'error').map((line) => line.msg)).toEqual([]);
    expect(lines.at(-1)?.msg).toBe('stopped');
    expect(existsSync(`${db}.writer-lock`)).toBe(false);

    // The next start catches up: every event is in the bill.
    const again = await startServer(config, { logger: createMemoryLogger(), ratingWorkerScript: script });
    try {
      const response = await fetch(`${again.url}/v1/totals`, {
        headers: { Authorization: `Bearer ${KEY_ALL}` },
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { totals: Record<string, { units: number }> };
      expect(Object.values(body.totals).reduce((sum, totals) => sum + totals.units, 0)).toBe(events);
    } finally {
      await again.close();
    }
  }, 60_000);
});

describe("a process warning raised in a rating worker (a dependency's deprecation)", () => {
  it("is a warn line of the service's log, with the thread it came from, not Node's plain text", async () => {
    const built = buildRatingWorker(
      join(import.meta.dirname, '..', '..', '.tmp', 'worker-warning-test-build'),
    );
    // The real worker, then a warning raised in its thread once it has loaded.
    const script = join(dir, 'warning-worker.mjs');
    writeFileSync(
      script,
      `import ${JSON.stringify(pathToFileURL(built).href)};
process.emitWarning('planted in the worker', { code: 'WAMETER_PLANTED', detail: 'from a test' });
`,
    );
    const db = join(dir, 'warning.db');
    await (await openSqliteStore(db)).close();
    const logger = createMemoryLogger();
    const rater = createWorkerLiveRater(script, { ...SETUP, db: `sqlite:${db}` }, logger, {
      role: 'on-demand rating',
    });
    try {
      await expect(rater.rate(['W1'])).resolves.toBeDefined();
      await vi.waitFor(() =>
        expect(logged(logger).some((line) => line.msg === 'planted in the worker')).toBe(true),
      );
      expect(logged(logger).find((line) => line.msg === 'planted in the worker')).toMatchObject({
        level: 'warn',
        warning: 'Warning',
        warningCode: 'WAMETER_PLANTED',
        detail: 'from a test',
        thread: 'on-demand rating worker',
      });
    } finally {
      await rater.close();
    }
  }, 120_000);
});
