// Bench table 9: how long after an arrival the stored bill is current, on a store with history (issue 3).
// The live re-rating rates a portfolio's whole history after each arrival (docs/service.md, "Known limit"),
// so this lag grows with the portfolio's stored events. The section imports generated traffic with
// `wameter import`, serves the store, posts one outbound and its `delivered` to POST /v1/events for a WABA
// of the largest portfolio and times until GET /metrics reports `rating_lag_seconds 0`; the same for the
// smallest portfolio is the baseline of the same run. Pure parts are exported for test/live-lag.test.ts.

import type { ChildProcess } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** The fields of an accounts file entry (contract §2) the section reads. */
export interface LiveAccount {
  waba: string;
  portfolio?: string;
}

export interface PortfolioSize {
  portfolio: string;
  /** Its WABAs in the accounts file's order. */
  wabas: string[];
  /** Stored events the live rating reads for it (Store.listEvents of its WABAs). */
  events: number;
}

/** Where a probe is posted: a WABA of the portfolio and a business number that WABA's events use. */
export interface LiveTarget {
  portfolio: string;
  events: number;
  waba: string;
  business: string;
}

/** What the section needs of a store: the events the rater reads, and the business numbers of a WABA. */
export interface LiveStoreView {
  listEvents(wabas: readonly string[]): Promise<readonly unknown[]>;
  businessNumbers(filter: { wabas?: readonly string[] }): Promise<readonly { business: string }[]>;
}

/** Portfolio → its WABAs; a WABA the accounts file puts in no portfolio is a portfolio of its own. */
export function portfoliosOf(accounts: readonly LiveAccount[]): Map<string, string[]> {
  const portfolios = new Map<string, string[]>();
  for (const account of accounts) {
    const name = account.portfolio ?? account.waba;
    const wabas = portfolios.get(name) ?? [];
    wabas.push(account.waba);
    portfolios.set(name, wabas);
  }
  return portfolios;
}

/** Each portfolio of the accounts file with the number of stored events the live rating reads for it. */
export async function portfolioSizes(
  store: LiveStoreView,
  accounts: readonly LiveAccount[],
): Promise<PortfolioSize[]> {
  const sizes: PortfolioSize[] = [];
  for (const [portfolio, wabas] of portfoliosOf(accounts)) {
    sizes.push({ portfolio, wabas, events: (await store.listEvents(wabas)).length });
  }
  return sizes;
}

/**
 * The portfolio with the most stored events and the one with the fewest (of those with any: a portfolio
 * without events has no business number to post with); ties go to the first in name order.
 */
export function largestAndSmallest(sizes: readonly PortfolioSize[]): {
  largest: PortfolioSize;
  smallest: PortfolioSize;
} {
  const withEvents = sizes
    .filter((size) => size.events > 0)
    .sort((a, b) => (a.portfolio < b.portfolio ? -1 : a.portfolio > b.portfolio ? 1 : 0));
  if (withEvents.length === 0) throw new Error('no portfolio of the accounts file has stored events');
  let largest = withEvents[0]!;
  let smallest = withEvents[0]!;
  for (const size of withEvents) {
    if (size.events > largest.events) largest = size;
    if (size.events < smallest.events) smallest = size;
  }
  return { largest, smallest };
}

/** The portfolio's first WABA (accounts order) that has a business number, and that number. */
export async function liveTargetOf(store: LiveStoreView, size: PortfolioSize): Promise<LiveTarget> {
  for (const waba of size.wabas) {
    const numbers = await store.businessNumbers({ wabas: [waba] });
    const first = numbers[0];
    if (first !== undefined)
      return { portfolio: size.portfolio, events: size.events, waba, business: first.business };
  }
  throw new Error(`no WABA of portfolio ${size.portfolio} has a business number in the store`);
}

/** A recipient no generated traffic uses, in a market every rate card prices. */
const PROBE_USER = '919812345678';

/**
 * The body of one probe: an outbound utility template and its `delivered` five seconds later (contract §1
 * NDJSON lines), so the post adds one delivered, billable message to the portfolio.
 */
export function lagProbeLines(target: LiveTarget, id: string, atMs: number): string {
  const at = new Date(atMs).toISOString().replace('.000Z', 'Z');
  const deliveredAt = new Date(atMs + 5_000).toISOString().replace('.000Z', 'Z');
  return (
    JSON.stringify({
      kind: 'outbound',
      waba: target.waba,
      business: target.business,
      user: PROBE_USER,
      id,
      at,
      template: 'utility',
    }) +
    '\n' +
    JSON.stringify({ kind: 'status', id, status: 'delivered', at: deliveredAt }) +
    '\n'
  );
}

/** `rating_lag_seconds` of a Prometheus exposition (GET /metrics), or null when it is not there. */
export function ratingLagOf(metricsText: string): number | null {
  const match = /^rating_lag_seconds (\S+)$/m.exec(metricsText);
  if (match === null) return null;
  const value = Number(match[1]);
  return Number.isFinite(value) ? value : null;
}

async function readRatingLag(baseUrl: string): Promise<number | null> {
  try {
    const response = await fetch(`${baseUrl}/metrics`);
    if (!response.ok) return null;
    return ratingLagOf(await response.text());
  } catch {
    return null; // not answering (yet): the caller keeps polling
  }
}

/** Polls GET /metrics every `pollMs` until `rating_lag_seconds 0`; ms waited. Throws after `timeoutMs`. */
export async function waitForLagZero(baseUrl: string, pollMs: number, timeoutMs: number): Promise<number> {
  const startedMs = performance.now();
  for (;;) {
    if ((await readRatingLag(baseUrl)) === 0) return performance.now() - startedMs;
    if (performance.now() - startedMs > timeoutMs)
      throw new Error(`rating_lag_seconds was not 0 after ${timeoutMs / 1000} s`);
    await new Promise((resolveWait) => setTimeout(resolveWait, pollMs));
  }
}

export interface LiveLagOptions {
  baseUrl: string;
  /** A key of the service reading every WABA (`k=*`). */
  apiKey: string;
  target: LiveTarget;
  posts: number;
  /** Makes the probes' message ids distinct across runs and targets. */
  idPrefix: string;
  /** When the first probe's outbound was sent; each next one a minute later. */
  firstAtMs: number;
  /** Polling period of GET /metrics (the hand measurement polled every 50 ms). */
  pollMs?: number;
  timeoutMs?: number;
  /** CPU seconds the server has used so far (null when unknown), read around the posts. */
  serverCpuSeconds?: () => number | null;
  /**
   * Wait between one probe's lag 0 and the next POST (default 1,100 ms). The service's throttle holds a live
   * rating back until arrivals have been quiet for 1 s (`quietMs`) or 3 × the last rating's duration has
   * passed, whichever comes first: probes sent back to back measured that second of waiting plus the rating
   * (1.49–1.50 s four times in five for the largest portfolio in the first full run), not the rating's work.
   */
  spacingMs?: number;
}

export interface LiveLagRun {
  /** Each post's seconds from sending it until the lag read 0. */
  seconds: number[];
  /** CPU the server used over the posts and the waits, seconds; null when unknown. */
  serverCpuSeconds: number | null;
}

/**
 * `posts` probes one after another, each timed from its POST until GET /metrics reports the rating lag 0.
 * Throws when a post is not answered 200 with `accepted: 2` (the probe would then time nothing).
 */
export async function measureLiveLag(options: LiveLagOptions): Promise<LiveLagRun> {
  const pollMs = options.pollMs ?? 50;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const cpuBefore = options.serverCpuSeconds?.() ?? null;
  const seconds: number[] = [];
  for (let i = 0; i < options.posts; i++) {
    if (i > 0) await new Promise((resolveWait) => setTimeout(resolveWait, options.spacingMs ?? 1_100));
    const id = `wamid.${options.idPrefix}.${i}`;
    const body = lagProbeLines(options.target, id, options.firstAtMs + i * 60_000);
    const startedMs = performance.now();
    const response = await fetch(`${options.baseUrl}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/x-ndjson' },
      body,
    });
    const answer = (await response.json()) as { accepted?: number };
    if (response.status !== 200 || answer.accepted !== 2)
      throw new Error(
        `POST /v1/events answered ${response.status} ${JSON.stringify(answer)}, not accepted: 2`,
      );
    // The gauge counts whole milliseconds since the arrival was marked (before the answer): read within the
    // same millisecond, a service older than the thirty-sixth session said 0 with the arrival still unrated
    // (it now says at least 0.001 while anything waits). A first read 2 ms after the answer cannot.
    await new Promise((resolveWait) => setTimeout(resolveWait, 2));
    await waitForLagZero(options.baseUrl, pollMs, timeoutMs);
    seconds.push((performance.now() - startedMs) / 1000);
  }
  const cpuAfter = options.serverCpuSeconds?.() ?? null;
  return {
    seconds,
    serverCpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The section itself, run by bench/main.ts with its own helpers (traffic files, the serve child, PostgreSQL).

/** What bench/main.ts lends the section. */
export interface LiveBenchKit {
  seed: number;
  events: number;
  posts: number;
  postgres: 'auto' | 'yes' | 'no';
  postgresUrl: string;
  ensureTrafficFile(options: {
    seed: number;
    eventsTarget: number;
    users: number;
  }): Promise<{ path: string; accountsPath: string }>;
  /** `wameter import TRAFFIC --db DB` as a child with WAMETER_ACCOUNTS; its exit code and stderr's tail. */
  runImport(
    trafficPath: string,
    accountsPath: string,
    db: string,
  ): Promise<{ code: number | null; stderr: string }>;
  /** A fresh PostgreSQL schema: its URL (search_path set), its size and how to drop it; null when not reachable. */
  freshPostgresSchema(): Promise<{ url: string; sizeBytes(): Promise<number>; drop(): Promise<void> } | null>;
  openStore(db: string): Promise<LiveStoreView & { close(): Promise<void> }>;
  /** The service as a child (bench/main.ts --serve-child) with this configuration, healthy. */
  startServeChild(
    config: Record<string, unknown>,
  ): Promise<{ baseUrl: string; child: ChildProcess; stop(): Promise<void> }>;
  cpuSecondsOf(pid: number): number | null;
  workDir: string;
  progress(message: string): void;
}

export interface LiveTargetRun extends LiveTarget, LiveLagRun {
  medianSeconds: number;
}

export interface LiveStoreResult {
  store: 'sqlite' | 'postgres';
  storeEvents: number;
  /** The SQLite file (with its WAL) or the PostgreSQL schema's tables and indexes. */
  storeBytes: number;
  importSeconds: number;
  /** From the service's start until its start rating ended (lag 0). */
  startRatingSeconds: number;
  largest: LiveTargetRun;
  smallest: LiveTargetRun;
}

export interface LiveResult {
  events: number;
  posts: number;
  trafficFile: string;
  stores: LiveStoreResult[];
  notes: string[];
}

export function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const API_KEY = 'k';
/** Inside the generated traffic's month (2025-10-01 + 30 days), as the hand measurement posted. */
const PROBE_AT_MS = Date.parse('2025-10-20T10:00:00Z');

async function liveOneStore(
  kit: LiveBenchKit,
  store: 'sqlite' | 'postgres',
  db: string,
  sizeBytes: () => Promise<number>,
  traffic: { path: string; accountsPath: string },
  accounts: readonly LiveAccount[],
): Promise<LiveStoreResult> {
  kit.progress(`live ${store}: wameter import of ${traffic.path}`);
  const importStartedMs = performance.now();
  const imported = await kit.runImport(traffic.path, traffic.accountsPath, db);
  const importSeconds = (performance.now() - importStartedMs) / 1000;
  if (imported.code !== 0) throw new Error(`wameter import exited with ${imported.code}: ${imported.stderr}`);
  const view = await kit.openStore(db);
  let sizes: PortfolioSize[];
  let largest: LiveTarget;
  let smallest: LiveTarget;
  try {
    sizes = await portfolioSizes(view, accounts);
    const chosen = largestAndSmallest(sizes);
    largest = await liveTargetOf(view, chosen.largest);
    smallest = await liveTargetOf(view, chosen.smallest);
  } finally {
    await view.close();
  }
  const storeBytes = await sizeBytes();
  const storeEvents = sizes.reduce((sum, size) => sum + size.events, 0);
  kit.progress(
    `live ${store}: imported in ${importSeconds.toFixed(1)} s (${(storeBytes / 2 ** 20).toFixed(0)} MiB); largest portfolio ${largest.portfolio} ` +
      `${largest.events} events, smallest ${smallest.portfolio} ${smallest.events}`,
  );
  const startedMs = performance.now();
  const server = await kit.startServeChild({
    db,
    host: '127.0.0.1',
    apiKeys: `${API_KEY}=*`,
    accounts: traffic.accountsPath,
    rateLimit: 'off',
    logLevel: 'warn',
  });
  try {
    await waitForLagZero(server.baseUrl, 50, 600_000);
    const startRatingSeconds = (performance.now() - startedMs) / 1000;
    const pid = server.child.pid;
    const runOf = async (target: LiveTarget, name: string): Promise<LiveTargetRun> => {
      kit.progress(
        `live ${store}: ${kit.posts} posts to ${name} portfolio ${target.portfolio} (WABA ${target.waba})`,
      );
      const run = await measureLiveLag({
        baseUrl: server.baseUrl,
        apiKey: API_KEY,
        target,
        posts: kit.posts,
        idPrefix: `benchlag${name}${Date.now().toString(36)}`,
        firstAtMs: PROBE_AT_MS,
        ...(pid === undefined ? {} : { serverCpuSeconds: () => kit.cpuSecondsOf(pid) }),
      });
      return { ...target, ...run, medianSeconds: medianOf(run.seconds) };
    };
    // The small one first: its posts then do not follow the large portfolio's rating on a warmed-up cache.
    const smallestRun = await runOf(smallest, 'smallest');
    const largestRun = await runOf(largest, 'largest');
    return {
      store,
      storeEvents,
      storeBytes,
      importSeconds,
      startRatingSeconds,
      largest: largestRun,
      smallest: smallestRun,
    };
  } finally {
    await server.stop();
  }
}

export async function benchLive(kit: LiveBenchKit): Promise<LiveResult> {
  const traffic = await kit.ensureTrafficFile({
    seed: kit.seed,
    eventsTarget: kit.events,
    users: Math.max(1_000, Math.round(kit.events / 20)),
  });
  const accounts = (JSON.parse(await readFile(traffic.accountsPath, 'utf8')) as { accounts: LiveAccount[] })
    .accounts;
  const notes: string[] = [];
  const stores: LiveStoreResult[] = [];
  const sqlitePath = join(kit.workDir, 'live.db');
  const targets: {
    store: 'sqlite' | 'postgres';
    db: string;
    sizeBytes: () => Promise<number>;
    drop?: () => Promise<void>;
  }[] = [
    {
      store: 'sqlite',
      db: `sqlite:${sqlitePath}`,
      sizeBytes: async () =>
        (await stat(sqlitePath)).size + ((await stat(`${sqlitePath}-wal`).catch(() => null))?.size ?? 0),
    },
  ];
  if (kit.postgres !== 'no') {
    const schema = await kit.freshPostgresSchema();
    if (schema === null) {
      const message = `PostgreSQL not reachable at ${kit.postgresUrl}`;
      if (kit.postgres === 'yes') throw new Error(message);
      notes.push(`${message}: SQLite only`);
    } else {
      targets.push({ store: 'postgres', db: schema.url, sizeBytes: schema.sizeBytes, drop: schema.drop });
    }
  }
  for (const target of targets) {
    try {
      stores.push(await liveOneStore(kit, target.store, target.db, target.sizeBytes, traffic, accounts));
    } catch (error) {
      notes.push(`${target.store}: ${(error as Error).message}`);
    } finally {
      await target.drop?.();
    }
  }
  return { events: kit.events, posts: kit.posts, trafficFile: traffic.path, stores, notes };
}

/** Table 9's rows: per store, the smallest portfolio (the baseline) and the largest, with the ratio. */
export function liveTableRows(result: LiveResult): string[][] {
  const rows: string[][] = [];
  for (const store of result.stores) {
    for (const run of [store.smallest, store.largest]) {
      const perPostCpu =
        run.serverCpuSeconds === null ? '—' : (run.serverCpuSeconds / run.seconds.length).toFixed(2);
      rows.push([
        store.store,
        `${store.storeEvents.toLocaleString('en-US')} (${(store.storeBytes / 2 ** 20).toFixed(0)} MiB)`,
        `${run === store.largest ? 'largest' : 'smallest'}: ${run.portfolio}`,
        run.events.toLocaleString('en-US'),
        run.seconds.map((seconds) => seconds.toFixed(2)).join(' '),
        run.medianSeconds.toFixed(2),
        `${Math.min(...run.seconds).toFixed(2)}–${Math.max(...run.seconds).toFixed(2)}`,
        perPostCpu,
        run === store.largest ? `${(run.medianSeconds / store.smallest.medianSeconds).toFixed(1)}×` : '1.0×',
      ]);
    }
  }
  return rows;
}

export const LIVE_TABLE_HEADERS = [
  'store',
  'stored events',
  'portfolio',
  'portfolio events',
  'each post, s',
  'median s',
  'min–max s',
  'server CPU s/post',
  'median vs smallest',
];
