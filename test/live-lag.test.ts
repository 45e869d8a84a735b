// The live-lag bench section (bench table 9): its options, the portfolios it picks, the probes it posts, and
// one small run of its measuring function against the real service. No timing assertions here.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  largestAndSmallest,
  lagProbeLines,
  LIVE_TABLE_HEADERS,
  liveTableRows,
  liveTargetOf,
  measureLiveLag,
  portfolioSizes,
  portfoliosOf,
  ratingLagOf,
  waitForLagZero,
  type LiveAccount,
} from '../bench/live-lag.js';
import { parseBenchArgs } from '../bench/main.js';
import { writeTraffic } from '../bench/write-traffic.js';
import { parseEventValue } from '../src/ingest/parse-event.js';
import { DEFAULT_BODY_LIMIT_BYTES } from '../src/server/config.js';
import { createMemoryLogger } from '../src/server/logger.js';
import { startServer } from '../src/server/main.js';
import { openStore } from '../src/store/open-store.js';
import { buildRatingWorker } from './support/build-server.js';

const ROOT = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'wameter-live-lag-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the bench options of the live section', () => {
  it('runs the live section alone with --only live, its store size and post count as given', () => {
    const args = parseBenchArgs(['--only', 'live', '--live-events', '20_000', '--live-posts', '3']);
    expect([...args.sections]).toEqual(['live']);
    expect(args.liveEvents).toBe(20_000);
    expect(args.livePosts).toBe(3);
  });

  it('is part of the default run, with a smaller store under --quick', () => {
    const full = parseBenchArgs([]);
    const quick = parseBenchArgs(['--quick']);
    expect(full.sections.has('live')).toBe(true);
    expect(full.liveEvents).toBe(300_000);
    expect(full.livePosts).toBe(5);
    expect(quick.liveEvents).toBeLessThan(full.liveEvents);
  });

  it('refuses a store or a post count that is not a positive integer', () => {
    expect(() => parseBenchArgs(['--live-events', '0'])).toThrow(/--live-events/);
    expect(() => parseBenchArgs(['--live-posts', 'two'])).toThrow(/--live-posts/);
  });
});

describe('choosing the portfolios', () => {
  const accounts: LiveAccount[] = [
    { waba: 'W1', portfolio: 'P-big' },
    { waba: 'W2', portfolio: 'P-small' },
    { waba: 'W3', portfolio: 'P-big' },
    { waba: 'W4' },
    { waba: 'W5', portfolio: 'P-empty' },
  ];
  const eventsOf: Record<string, number> = { W1: 5, W2: 2, W3: 4, W4: 3, W5: 0 };
  const store = {
    listEvents: (wabas: readonly string[]) =>
      Promise.resolve(wabas.flatMap((waba) => Array.from({ length: eventsOf[waba] ?? 0 }, () => ({})))),
    businessNumbers: (filter: { wabas?: readonly string[] }) =>
      Promise.resolve(
        (filter.wabas ?? []).filter((waba) => waba !== 'W1').map((waba) => ({ business: `PN-${waba}` })),
      ),
  };

  it('groups WABAs by portfolio in the accounts order; a WABA of no portfolio is its own', () => {
    expect([...portfoliosOf(accounts)]).toEqual([
      ['P-big', ['W1', 'W3']],
      ['P-small', ['W2']],
      ['W4', ['W4']],
      ['P-empty', ['W5']],
    ]);
  });

  it('counts the stored events of each portfolio and picks the largest and the smallest one with events', async () => {
    const sizes = await portfolioSizes(store, accounts);
    expect(sizes.map((size) => [size.portfolio, size.events])).toEqual([
      ['P-big', 9],
      ['P-small', 2],
      ['W4', 3],
      ['P-empty', 0],
    ]);
    const { largest, smallest } = largestAndSmallest(sizes);
    expect(largest.portfolio).toBe('P-big');
    expect(smallest.portfolio).toBe('P-small');
  });

  it('posts to the first WABA of the portfolio with a business number, with that number', async () => {
    const { largest } = largestAndSmallest(await portfolioSizes(store, accounts));
    expect(await liveTargetOf(store, largest)).toEqual({
      portfolio: 'P-big',
      events: 9,
      waba: 'W3',
      business: 'PN-W3',
    });
  });

  it('refuses a store where no portfolio has events', () => {
    expect(() => largestAndSmallest([{ portfolio: 'P', wabas: ['W'], events: 0 }])).toThrow(/no portfolio/);
  });
});

describe('the probe', () => {
  it('is an outbound utility template and its delivered five seconds later, two valid NDJSON lines', () => {
    const target = { portfolio: 'P', events: 1, waba: '303435933247339', business: '974950156285317' };
    const text = lagProbeLines(target, 'wamid.lag1', Date.parse('2025-10-20T10:00:00Z'));
    expect(text).toBe(
      '{"kind":"outbound","waba":"303435933247339","business":"974950156285317","user":"919812345678",' +
        '"id":"wamid.lag1","at":"2025-10-20T10:00:00Z","template":"utility"}\n' +
        '{"kind":"status","id":"wamid.lag1","status":"delivered","at":"2025-10-20T10:00:05Z"}\n',
    );
    for (const line of text.trimEnd().split('\n')) {
      const parsed = parseEventValue(JSON.parse(line));
      expect(parsed.ok && parsed.value.events.length === 1 && parsed.value.rejected.length === 0).toBe(true);
    }
  });

  it('reads rating_lag_seconds from the metrics exposition', () => {
    const text =
      '# HELP rating_lag_seconds x\n# TYPE rating_lag_seconds gauge\nrating_lag_seconds 0.25\nother 1\n';
    expect(ratingLagOf(text)).toBe(0.25);
    expect(ratingLagOf('rating_lag_seconds 0\n')).toBe(0);
    expect(ratingLagOf('other 1\n')).toBeNull();
  });
});

describe('measuring against the real service on a small store with history', () => {
  it('posts K probes to the largest portfolio, each accepted, and times each until the lag is 0', async () => {
    const trafficPath = join(dir, 'traffic.ndjson');
    const { accountsPath } = await writeTraffic({ seed: 7, eventsTarget: 3_000, users: 150 }, trafficPath);
    const db = `sqlite:${join(dir, 'live.db')}`;
    const server = await startServer(
      {
        db,
        port: 0,
        host: '127.0.0.1',
        appSecrets: [],
        verifyToken: null,
        apiKeys: [{ name: 'k', key: 'k', wabas: '*' }],
        accountsPath,
        rateCardPaths: [],
        bodyLimitBytes: DEFAULT_BODY_LIMIT_BYTES,
        rateLimit: null,
        logLevel: 'warn',
        ratingDebounceMs: 5,
      } as Parameters<typeof startServer>[0],
      {
        logger: createMemoryLogger(),
        ratingWorkerScript: buildRatingWorker(join(ROOT, '.tmp', 'live-lag-worker-build')),
      },
    );
    try {
      // The history, through the service's own ingestion.
      const history = await fetch(`${server.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: 'Bearer k', 'content-type': 'application/x-ndjson' },
        body: readFileSync(trafficPath),
      });
      expect(history.status).toBe(200);
      await waitForLagZero(server.url, 20, 60_000);
      const accounts = (JSON.parse(readFileSync(accountsPath, 'utf8')) as { accounts: LiveAccount[] })
        .accounts;
      const view = await openStore(db, { isReadOnly: true });
      const sizes = await portfolioSizes(view, accounts);
      const { largest } = largestAndSmallest(sizes);
      const target = await liveTargetOf(view, largest);
      expect(sizes.every((size) => size.events <= largest.events)).toBe(true);
      expect(largest.wabas).toContain(target.waba);

      const run = await measureLiveLag({
        baseUrl: server.url,
        apiKey: 'k',
        target,
        posts: 3,
        idPrefix: 'test',
        firstAtMs: Date.parse('2025-10-20T10:00:00Z'),
        pollMs: 10,
      });
      expect(run.seconds).toHaveLength(3);
      for (const seconds of run.seconds) expect(seconds).toBeGreaterThan(0);
      expect(run.serverCpuSeconds).toBeNull();
      // The probes went to that portfolio: two stored events each.
      expect((await view.listEvents(largest.wabas)).length).toBe(largest.events + 6);
      await view.close();
    } finally {
      await server.close();
    }
    // Its own waits allow more than the default 30 s (60 s for the history's rating alone): a loaded machine
    // (a full run beside other work: load 8 on two cores) took longer than 30 s in all.
  }, 120_000);
});

describe('the table', () => {
  it('gives per store the smallest portfolio then the largest, with the ratio of their medians', () => {
    const run = (portfolio: string, events: number, seconds: number[]) => ({
      portfolio,
      events,
      waba: 'W',
      business: 'B',
      seconds,
      serverCpuSeconds: 0.6,
      medianSeconds: seconds.slice().sort((a, b) => a - b)[1]!,
    });
    const rows = liveTableRows({
      events: 300_000,
      posts: 3,
      trafficFile: 't.ndjson',
      notes: [],
      stores: [
        {
          store: 'sqlite',
          storeEvents: 297_065,
          storeBytes: 193 * 2 ** 20,
          importSeconds: 15,
          startRatingSeconds: 0.5,
          smallest: run('P-small', 11_613, [0.5, 0.4, 0.6]),
          largest: run('P-big', 100_291, [1.6, 1.5, 1.7]),
        },
      ],
    });
    expect(rows).toEqual([
      [
        'sqlite',
        '297,065 (193 MiB)',
        'smallest: P-small',
        '11,613',
        '0.50 0.40 0.60',
        '0.50',
        '0.40–0.60',
        '0.20',
        '1.0×',
      ],
      [
        'sqlite',
        '297,065 (193 MiB)',
        'largest: P-big',
        '100,291',
        '1.60 1.50 1.70',
        '1.60',
        '1.50–1.70',
        '0.20',
        '3.2×',
      ],
    ]);
    expect(rows[0]).toHaveLength(LIVE_TABLE_HEADERS.length);
  });
});
