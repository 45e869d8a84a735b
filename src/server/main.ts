// The service's entry point: the one place that reads configuration and builds adapters (store, pricing,
// clock, logger), starts the HTTP server, and shuts it down gracefully (stop accepting, finish in-flight
// requests and pending ratings, close the store). Run directly, it reads the environment (contract §5).

import { realpathSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import { createAccountBook } from '../ingest/accounts-file.js';
import { sqlitePathOf } from '../store/open-store.js';
import type { Store } from '../store/store.js';
import { openWriterStore } from '../store/writer-lock.js';
import { trackConnections, type ConnectionDrain } from './connection-drain.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { createApp } from './app.js';
import {
  DEFAULT_MAX_CONNECTIONS,
  describeConfig,
  loadServiceConfig,
  redactUrl,
  scopedWabas,
  unknownWabaWarnings,
  type ServiceConfig,
} from './config.js';
import {
  createJsonLogger,
  errorFields,
  hasLogOutputFailed,
  routeProcessWarnings,
  type Logger,
} from './logger.js';
import { Metrics } from './metrics.js';
import { loadPricingSetup, staleRateCardWarnings, loadRateCards, parseRateCards } from './pricing-setup.js';
import {
  ACCOUNTS_CHANGED_WARNING,
  createRatingService,
  RATE_CARDS_CHANGED_WARNING,
  whatIfReplacedWarning,
} from './rating-service.js';
import { explainStartError } from './start-errors.js';
import { createStoreHealth } from './store-health.js';
import { createWorkerLiveRater, isSharedDatabase, ratingWorkerScript } from './live-rater.js';

export interface RunningServer {
  /** `http://host:port` (a loopback address when listening on every interface). */
  url: string;
  port: number;
  /** Node's HTTP server, for its settings (timeouts); close the service with `close()`, not through it. */
  httpServer: Server;
  /**
   * Stops accepting, finishes in-flight requests and pending ratings (a worker's rating still running after
   * half of `storeCloseMs` is stopped: the next start rates its portfolio), closes the store.
   */
  close(): Promise<void>;
  /**
   * close(), resolving `false` when the ratings and the store did not close within `storeCloseMs` (a write
   * stuck on a database that does not answer, or a rating's long write): the process should then exit
   * without them (runUntilSignalled: `STORE_NOT_CLOSED`, with `storeNotClosedReason`).
   */
  shutDown(): Promise<boolean>;
  /**
   * Resolves (never rejects) once the service has stopped itself because it cannot go on — it lost the
   * single-writer lock — after the same drain as `close()`; stays pending otherwise.
   */
  failed: Promise<ServiceFailure>;
  /** The failure, from the moment it happened (before the drain ends); null while the service can go on. */
  readonly failure: ServiceFailure | null;
  /** Why shutDown() gave up on the store (a write the database does not answer…); null until it has. */
  readonly storeNotClosedReason: string | null;
}

/**
 * The exit code of a service that stopped itself because it lost the single-writer lock (sysexits'
 * EX_TEMPFAIL: a temporary failure, worth a retry): non-zero, so that a supervisor restarts it
 * (systemd `Restart=on-failure`, Kubernetes), and the new process takes the lock again.
 */
export const EXIT_WRITER_LOCK_LOST = 75;

/** Why a running service stopped itself, and the exit code that tells its supervisor to restart it. */
export interface ServiceFailure {
  code: 'WRITER_LOCK_LOST';
  message: string;
  exitCode: number;
}

/**
 * The exit code of a service whose store would not close after a signal (a write stuck on a database
 * that stopped answering): its caller exits at once (`process.exit`), the store's sockets still open.
 */
export const EXIT_STORE_NOT_CLOSED = 1;

/**
 * How `runUntilSignalled` ended: stopped by SIGTERM or SIGINT (exit 0), by a failure (its exit code), or
 * signalled but left with a store that would not close (`STORE_NOT_CLOSED`: exit at once).
 */
export type ServiceStop =
  | { code: 'SIGNALLED'; exitCode: 0 }
  | ServiceFailure
  | { code: 'STORE_NOT_CLOSED'; message: string; exitCode: number };

/**
 * The exit code of a service that could not start (a setting to fix, the port in use, a database that cannot
 * be opened or migrated, another process rating it): runUntilSignalled rejects, having logged why.
 */
export const EXIT_START_FAILED = 1;

/** The exit code after an uncaught exception: a bug (sysexits' EX_SOFTWARE, as the CLI's `EXIT.INTERNAL`). */
export const EXIT_UNCAUGHT = 70;

/** How long close() waits for the ratings and the store to close after the requests' grace. */
const STORE_CLOSE_MS = 10_000;

export interface StartOptions {
  logger?: Logger;
  clock?: () => number;
  /** How long close() lets in-flight requests finish before cutting connections. */
  shutdownGraceMs?: number;
  /** How long close() then waits for the ratings and the store to close (STORE_CLOSE_MS). */
  storeCloseMs?: number;
  /**
   * The compiled rating-worker.js that runs live ratings (default: the one next to this module, when it is
   * compiled JavaScript); `null` rates in the server's thread.
   */
  ratingWorkerScript?: string | null;
  /**
   * Adds routes after the service's own, behind the same middleware (request log, metrics, errors). For
   * diagnostics only: the benchmark's echo route (bench table 3) measures the HTTP exchange alone this way.
   */
  extraRoutes?: (app: ReturnType<typeof createApp>) => void;
  /** Other HTTP timeouts than HTTP_TIMEOUTS (tests: short ones, to see a stalled request cut). */
  httpTimeouts?: Partial<HttpTimeouts>;
  /** The bytes of request bodies all requests may hold at once (AppDeps.bodyBudgetBytes). */
  bodyBudgetBytes?: number;
  /**
   * Stops the start (SIGTERM before it listens): once the step under way ends, what it opened is closed and
   * startServer rejects with a `StartStoppedError`.
   */
  signal?: AbortSignal;
  /** Told each step of the start as it begins (`START_STEPS`), for what a signal during it says. */
  onStep?: (step: string) => void;
}

/**
 * The steps of a start before it listens, as the line of a signal during one names them. A step is not cut
 * short: a migration is applied whole or not at all (one transaction), and SQLite's runs in this thread.
 */
export const START_STEPS = {
  load: 'loading wameter and its settings',
  pricing: 'loading the accounts and rate cards',
  address: 'checking the address to listen on',
  store: 'opening the store: taking the single-writer lock, migrating its schema if this wameter is newer',
  checks: 'checking the stored bill against this start (accounts, rate cards, rating code)',
  listen: 'starting to listen',
} as const;

/** startServer stopped by its `signal` before it listened: what it had opened is closed again. */
export class StartStoppedError extends Error {
  readonly code = 'START_STOPPED';
  constructor(readonly step: string) {
    super(`the start was stopped before it listened (after ${step})`);
    this.name = 'StartStoppedError';
  }
}

export interface HttpTimeouts {
  /** A request's head (request line and headers) must have arrived within this of the connection or request. */
  headersMs: number;
  /** The whole request, body included, must have arrived within this. */
  requestMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveMs: number;
  /** How often Node checks the head and request timeouts (its default, 30 s, would let them run 30 s over). */
  checkIntervalMs: number;
}

/**
 * How long a connection may take to send a request (docs/service.md, "Limits"). Meta sends a webhook in well
 * under a second and any client's upload of the largest body (4 MiB) in seconds, so these only cut clients
 * that hold connections open: Node's own request timeout is 300 s, during which a slowly sent body held a
 * connection and its bytes, and headers sent alone held a file descriptor.
 */
export const HTTP_TIMEOUTS: Readonly<HttpTimeouts> = {
  headersMs: 15_000,
  requestMs: 60_000,
  keepAliveMs: 5_000,
  checkIntervalMs: 1_000,
};

/**
 * Starts the service. A failure to open the database is reported with what failed and what to do (the
 * host and port or the SQLite path, never a password; the driver's error as `cause`).
 */
export async function startServer(config: ServiceConfig, options: StartOptions = {}): Promise<RunningServer> {
  // What the start opened, closed again (newest first) when it fails or is stopped before it listens.
  const opened: (() => Promise<unknown>)[] = [];
  try {
    return await startService(config, options, opened);
  } catch (error) {
    for (const close of opened.reverse()) await close().catch(() => undefined);
    throw error instanceof StartStoppedError ? error : explainStartError(config.db, error);
  }
}

/**
 * Listens on host:port for a moment and lets go: a host that is no address of this machine, or a port in use
 * (or not allowed), fails the start now, not after the store is made. Port 0 checks the host alone.
 */
function checkListenAddress(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error) => reject(explainListenError(error, host, port)));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}

const HOST_SET_BY = '--host, WAMETER_HOST or the config file\'s "host"';
const PORT_SET_BY = '--port, PORT or the config file\'s "port"';

/** A failure to listen, naming the setting to fix (the system's code kept: `getaddrinfo ENOTFOUND`). */
function explainListenError(error: unknown, host: string, port: number): unknown {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  const reason = (error as Error).message;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EADDRNOTAVAIL') {
    const what = code === 'EADDRNOTAVAIL' ? 'is no address of this machine' : 'is not a known host name';
    return new Error(
      `cannot listen on ${JSON.stringify(host)} (${HOST_SET_BY}): it ${what} (${reason}); give an address of this machine: 0.0.0.0 for every interface, 127.0.0.1 for this machine only`,
      { cause: error },
    );
  }
  if (code === 'EADDRINUSE') {
    return new Error(
      `cannot listen on port ${port} of ${host}: another process uses it (${reason}); stop it, or choose another port with ${PORT_SET_BY}`,
      { cause: error },
    );
  }
  if (code === 'EACCES') {
    return new Error(
      `cannot listen on port ${port} of ${host}: not allowed for this user (${reason}; ports below 1024 need privileges); choose a port from 1024 with ${PORT_SET_BY}`,
      { cause: error },
    );
  }
  return error;
}

async function startService(
  config: ServiceConfig,
  options: StartOptions,
  opened: (() => Promise<unknown>)[],
): Promise<RunningServer> {
  /** Ends the step under way: the start stops here if it was signalled meanwhile, else `next` begins. */
  let step: string = START_STEPS.load;
  const begin = async (next: string) => {
    // A turn of the event loop first: the steps run on SQLite's synchronous driver, whose awaits never let a
    // signal's handler in (SIGTERM during a migration was handled only once the server listened).
    await new Promise((resolve) => setImmediate(resolve));
    if (options.signal?.aborted) throw new StartStoppedError(step);
    step = next;
    options.onStep?.(next);
  };
  await begin(START_STEPS.pricing);
  const clock = options.clock ?? Date.now;
  const logger = options.logger ?? createJsonLogger({ level: config.logLevel, clock });
  logger.info('starting', describeConfig(config));
  // Zero configuration starts, but says what stays closed until it is configured.
  if (config.appSecrets.length === 0) {
    logger.warn(
      'no Meta app secret: every webhook POST will be refused; set WAMETER_APP_SECRETS or the config file\'s "appSecrets"',
    );
  }
  if (config.verifyToken === null) {
    logger.warn(
      'no verify token: Meta\'s subscription handshake will be refused; set WAMETER_VERIFY_TOKEN or the config file\'s "verifyToken"',
    );
  }
  if (config.apiKeys.length === 0) {
    logger.warn(
      'no API key: the query API and the dashboard are closed; set WAMETER_API_KEYS (e.g. admin=*) or the config file\'s "apiKeys"',
    );
  }

  const pricing = await loadPricingSetup({
    accountsPath: config.accountsPath,
    rateCardPaths: config.rateCardPaths,
    isReportedRulesEnabled: config.isReportedRulesEnabled ?? true,
  });
  if (!pricing.ok) throw new Error(pricing.error);
  for (const warning of staleRateCardWarnings(pricing.value.cards, clock())) logger.warn(warning);
  await begin(START_STEPS.address);
  // A host that is not this machine's, or a port already in use, fails the start before the database is
  // created or migrated.
  await checkListenAddress(config.host, config.port);
  await begin(START_STEPS.store);
  // Takes the single-writer lock (docs/storage.md, "One writer per database"), refusing to start beside
  // another writer before migrating anything, then runs the schema migrations; store.close() releases it.
  // Migrating a large store takes a while (11 s for 600,000 events): said before and after, so that a silent
  // start is not mistaken for a hang. The store does not say which migrations are pending, so both lines cover "none" too.
  logger.info('checking the store schema, migrating it if this wameter is newer', {
    db: redactUrl(config.db),
  });
  const openStartMs = performance.now();
  let failure: ServiceFailure | null = null;
  let lockLost: ((failure: ServiceFailure) => void) | undefined;
  const whenLockLost = new Promise<ServiceFailure>((resolve) => (lockLost = resolve));
  // The lock is taken before the migrations, which may take a while: it can be lost before the store's
  // health exists, which then starts blocked.
  let blockedBeforeHealth: string | undefined;
  let blockStore = (reason: string): void => {
    blockedBeforeHealth = reason;
  };
  const store = await openWriterStore(config.db, 'serve', {
    onNotice: (message) => logger.warn(message),
    onLost: (error) => {
      const reason =
        'the single-writer lock was lost (its database session ended, or another process took the lock): another process may now write ratings to this database, so this one stores nothing more';
      blockStore(`${reason}; this service is stopping to be restarted`);
      logger.error(
        `${reason}: stopping once in-flight requests are answered, then exiting ${EXIT_WRITER_LOCK_LOST} so that its supervisor restarts it (the new process takes the lock again)`,
        { ...errorFields(error), errorCode: 'WRITER_LOCK_LOST', exitCode: EXIT_WRITER_LOCK_LOST },
      );
      failure = {
        code: 'WRITER_LOCK_LOST',
        message: `${reason} (${error.message}); exit ${EXIT_WRITER_LOCK_LOST}: restart it (systemd Restart=on-failure does), it takes the lock again`,
        exitCode: EXIT_WRITER_LOCK_LOST,
      };
      lockLost?.(failure);
    },
  });
  opened.push(() => store.close());
  logger.info('store schema up to date', { ms: Math.round(performance.now() - openStartMs) });
  await begin(START_STEPS.checks);
  await warnOfUnknownWabas(
    config,
    new Set(pricing.value.accounts.map((account) => account.waba)),
    store,
    logger,
  );
  // After the store opened it: the SQLite file's identity is the one the store holds.
  const storeHealth = createStoreHealth({ clock, ...sqliteFileOption(config.db) });
  blockStore = (reason) => {
    storeHealth.block(reason);
  };
  if (blockedBeforeHealth !== undefined) storeHealth.block(blockedBeforeHealth);
  const metrics = new Metrics();
  if (options.logger === undefined) {
    // Logging may stop while the service goes on (createStdoutWriter): the one place left to see it.
    metrics.gauge(
      'log_output_failed',
      '1 once the log output (stdout) has failed (its reader gone: EPIPE; a full disk): no log lines are written since; restart to log again.',
      () => (hasLogOutputFailed() ? 1 : 0),
    );
  }
  // Live rating in a worker thread with its own connection, so that a long rating never holds up webhooks;
  // in this thread when no second connection sees the data (in-memory SQLite) or when run from sources.
  const workerScript =
    options.ratingWorkerScript === undefined ? ratingWorkerScript() : options.ratingWorkerScript;
  const workerSetup = {
    db: config.db,
    accounts: pricing.value.accounts,
    cards: pricing.value.cards,
    isReportedRulesEnabled: pricing.value.isReportedRulesEnabled ?? true,
  };
  const hasWorkers = workerScript !== null && isSharedDatabase(config.db);
  const liveRater = hasWorkers
    ? createWorkerLiveRater(workerScript, workerSetup, logger, {
        role: 'live rating',
        onDeath: (cause) => metrics.inc('rating_worker_deaths_total', { worker: 'live', cause }),
      })
    : undefined;
  // On-demand ratings (explain, re-rate, reconciliation, estimate) in a second worker: a client's explain of
  // a large portfolio never holds up the live rating of another client's arrivals (bench/fairness.ts).
  const onDemandRater = hasWorkers
    ? createWorkerLiveRater(workerScript, workerSetup, logger, {
        role: 'on-demand rating',
        onDeath: (cause) => metrics.inc('rating_worker_deaths_total', { worker: 'on_demand', cause }),
      })
    : undefined;
  logger.info('live rating', {
    runs_in: liveRater ? 'worker thread' : 'server thread',
    on_demand_runs_in: onDemandRater ? 'a second worker thread' : 'server thread',
  });
  const rating = createRatingService({
    liveRater,
    onDemandRater,
    store,
    pricing: pricing.value,
    clock,
    logger,
    loadRateCards: (paths) => loadRateCards(paths, pricing.value.isReportedRulesEnabled),
    parseRateCards: (texts) => parseRateCards(texts, pricing.value.isReportedRulesEnabled),
    debounceMs: config.ratingDebounceMs,
    onStoreError: () => metrics.inc('store_errors_total'),
    storeHealth,
  });
  /** Set once the service stops (shutDown, or a start stopped before listening). */
  let isStopping = false;
  opened.push(async () => {
    // As shutDown stops a rating: the close asked first, then the workers' ratings cut.
    isStopping = true;
    const closed = rating.close();
    const reason = 'the service is stopping before it listened';
    liveRater?.abort(reason);
    onDemandRater?.abort(reason);
    await closed;
  });
  // The bill is re-priced under this start's accounts: said when they are not those it was priced with.
  // (Before listening: once the "listening" line is out, the caller may signal, and its handlers come when
  // this returns.)
  if (await rating.isStoredUnderOtherAccounts().catch(() => false)) logger.warn(ACCOUNTS_CHANGED_WARNING);
  if (await rating.isStoredUnderOtherRateCards().catch(() => false)) logger.warn(RATE_CARDS_CHANGED_WARNING);
  const whatIf = await rating.storedAsOfRules().catch(() => null);
  if (whatIf !== null) logger.warn(whatIfReplacedWarning(whatIf));
  // Another wameter rated the stored bill (an upgrade): re-rated as a re-rate that reports and keeps what it
  // changed — begun before the first request can arrive, so that no live rating comes before it.
  const upgraded = rating
    .upgrade((message) => logger.warn(message))
    .catch((error: unknown) =>
      isStopping
        ? // Stopped with the service (its rating cut, its retries ended): nothing of it was stored.
          logger.warn(
            'the re-rate after the upgrade was stopped with the service, nothing of it stored: the next start re-rates the store as an upgrade again',
            errorFields(error),
          )
        : logger.error(
            'the re-rate after the upgrade failed (retried): the bill is now rated without a report of what the upgrade changed; the ratings before it keep the old totals (GET /v1/ratings)',
            errorFields(error),
          ),
    );
  const marketNames = pricing.value.markets.names;
  const accounts = createAccountBook(pricing.value.accounts);
  const app = createApp({
    store,
    config,
    clock,
    logger,
    rating,
    metrics,
    storeHealth,
    ...(marketNames ? { marketNames } : {}),
    timeZoneOf: (waba) => accounts.accountFor(waba).timeZone,
    ...(options.bodyBudgetBytes === undefined ? {} : { bodyBudgetBytes: options.bodyBudgetBytes }),
  });
  registerDashboardRoutes(app, { store, config, clock, logger, rating, pricing: pricing.value, metrics });
  options.extraRoutes?.(app);

  await begin(START_STEPS.listen);
  let connections: ConnectionDrain;
  let httpServer: Server;
  const timeouts = { ...HTTP_TIMEOUTS, ...options.httpTimeouts };
  const port = await new Promise<number>((resolve, reject) => {
    const server = serve(
      {
        fetch: app.fetch,
        port: config.port,
        hostname: config.host,
        serverOptions: {
          headersTimeout: timeouts.headersMs,
          requestTimeout: timeouts.requestMs,
          keepAliveTimeout: timeouts.keepAliveMs,
          connectionsCheckingInterval: timeouts.checkIntervalMs,
        },
      },
      (info) => resolve(info.port),
    ) as Server;
    httpServer = server;
    connections = trackConnections(server);
    limitConnections(server, config.maxConnections ?? DEFAULT_MAX_CONNECTIONS, metrics, logger, clock);
    server.once('error', reject);
  }).catch((error: unknown) => {
    throw explainListenError(error, config.host, config.port);
  });
  metrics.gauge(
    'http_connections_open',
    'HTTP connections open now (at most the maxConnections setting; those beyond are closed as accepted).',
    () => connections.openCount,
  );
  const isEveryInterface = config.host === '0.0.0.0' || config.host === '::';
  const host = isEveryInterface ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  // The address it is bound to first (0.0.0.0: reachable from other machines); `url` is how to reach it
  // from this one.
  logger.info('listening', {
    host: config.host,
    port,
    ...(isEveryInterface ? { interfaces: 'every' } : {}),
    url,
  });

  // After the upgrade's re-rate (begun above), as at every start: a crash may have stored arrivals without
  // rating them, so the bill is brought up to date — every portfolio but those whose stored rating is provably
  // current (nothing it read or priced with changed since: docs/decisions.md), which a restart would rate to
  // the same bill. Reads wait for both.
  void upgraded
    .then(async () => {
      const startedMs = performance.now();
      const { rated, current } = await rating.rateStale();
      logger.info('initial rating done', {
        portfolios_rated: rated,
        portfolios_current: current,
        ms: Math.round(performance.now() - startedMs),
      });
    })
    .catch((error: unknown) =>
      // Cut by a shutdown (which says so, RATING_STOPPED), not failed: the next start rates what it left behind.
      closing === undefined
        ? logger.error('initial rating failed', errorFields(error))
        : logger.info('initial rating stopped: the service is stopping', errorFields(error)),
    );

  let closing: Promise<boolean> | undefined;
  /** Why the store did not close, once a shutdown gave up on it. */
  let notClosedReason: string | undefined;
  const shutDown = () => {
    isStopping = true;
    closing ??= (async () => {
      logger.info('shutting down');
      // Every response from now on says Connection: close; idle keep-alive sockets end now, busy ones once
      // their response is sent; whatever is still open after the grace is cut.
      await connections.drain(options.shutdownGraceMs ?? 10_000);
      // The pending ratings are finished, within half the bound: a live rating of a large portfolio takes
      // longer (33 s for 600,000 events), and waiting for it held the stop until the bound and then blamed the
      // database. Past it, the worker's rating is stopped: nothing of it was written, and a start re-rates
      // every WABA. A rating already writing (in this thread) still has the rest of the bound.
      // A write stuck on a database that stopped answering (a network partition: no error, no answer) would
      // hold the close, and the process, until the database came back. Every request answered 200 is stored
      // by then, and the cut ones were answered nothing (Meta retries them): past the bound, stop waiting.
      const storeCloseMs = options.storeCloseMs ?? STORE_CLOSE_MS;
      const deadlineMs = performance.now() + storeCloseMs;
      const ratingsClosed = rating
        .close()
        .catch((error: unknown) => logger.error('the ratings did not close', errorFields(error)));
      /** Whether the store answered a ping when a rating was stopped (undefined: none was stopped). */
      let isStoreAnswering: boolean | undefined;
      if (!(await settlesWithin(ratingsClosed, storeCloseMs / 2))) {
        const reason = `the service is stopping: the rating still running ${storeCloseMs / 2000} s after the requests were answered was stopped (the next start rates its portfolio)`;
        // Both, before either's answer is awaited: `||` would spare the second.
        const stopped = [liveRater?.abort(reason), onDemandRater?.abort(reason)].some(Boolean);
        isStoreAnswering = await settlesWithin(store.ping(), Math.max(0, deadlineMs - performance.now()));
        const what = stopped
          ? 'stopped in its worker thread, nothing of it written'
          : 'it is being written or rates in this thread, and is given the rest of the bound';
        logger.warn(
          `a rating was still running ${storeCloseMs / 2000} s after the requests were answered (a large portfolio: its debug line "rated" says how long each takes): ${what}; a portfolio whose rating did not finish keeps its stored bill until the next start, which rates it; every request answered 200 is stored`,
          { errorCode: 'RATING_STOPPED' },
        );
      }
      const isClosed = await settlesWithin(
        (async () => {
          await ratingsClosed;
          await store.close();
        })(),
        Math.max(0, deadlineMs - performance.now()),
      );
      if (isClosed) logger.info('stopped');
      else {
        notClosedReason =
          isStoreAnswering === true
            ? "a rating's write was still running (the database answers)"
            : 'a write still waits for the database, which does not answer';
        logger.error(
          `the store did not close within ${storeCloseMs / 1000} s (${notClosedReason}): exiting without it; ${isStoreAnswering === true ? 'the unfinished write is rolled back and the next start rates its portfolio; ' : ''}every request answered 200 is stored`,
          { errorCode: 'STORE_NOT_CLOSED' },
        );
      }
      return isClosed;
    })();
    return closing;
  };
  const close = async () => {
    await shutDown();
  };
  // A lost lock stops the service as SIGTERM would (in-flight requests answered, ratings finished), then
  // the caller exits non-zero: a process that stores nothing more would otherwise answer 503 forever while
  // its liveness probe passes, and nothing would restart it.
  const failed = whenLockLost.then(async (lost) => {
    await close();
    return lost;
  });
  return {
    url,
    port,
    httpServer: httpServer!,
    close,
    shutDown,
    failed,
    get failure() {
      return failure;
    },
    get storeNotClosedReason() {
      return notClosedReason ?? null;
    },
  };
}

/**
 * Whether `promise` fulfils within `ms` (false when it rejects, or is still pending then). The timer is
 * cleared either way: a pending one would hold the stopping process for its length.
 */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => false,
      ),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Warns of each API key and bound app secret that names a WABA neither the accounts file nor the store knows
 * (a typo, most likely: the key would read `{"totals":{}}` without a word). The store is asked only when the
 * accounts file leaves some unknown; a store that cannot say is no reason to refuse the start.
 */
async function warnOfUnknownWabas(
  config: ServiceConfig,
  inAccounts: ReadonlySet<string>,
  store: Pick<Store, 'listWabas'>,
  logger: Logger,
): Promise<void> {
  if (scopedWabas(config).every((waba) => inAccounts.has(waba))) return;
  let stored: ReadonlySet<string>;
  try {
    stored = new Set(await store.listWabas());
  } catch (error) {
    logger.warn(
      'could not check the WABAs the API keys and bound app secrets name against the stored ones',
      errorFields(error),
    );
    return;
  }
  const isKnown = (waba: string) => inAccounts.has(waba) || stored.has(waba);
  for (const { message, fields } of unknownWabaWarnings(config, isKnown)) logger.warn(message, fields);
}

/** A connection refused at the limit is said in the log at most this often (a flood would fill it). */
const REFUSED_CONNECTIONS_LOG_MS = 60_000;

/**
 * Bounds the connections open at once (docs/service.md, "Limits"): past `maxConnections`, Node closes each
 * new connection as it accepts it, before reading a byte — no HTTP answer is possible, and none is owed to a
 * client that has sent nothing — so a flood of idle connections holds at most that many file descriptors,
 * leaving the store its own. Each refusal counts in `http_connections_refused_total`; the log says so at
 * most once a minute, with how many since.
 */
function limitConnections(
  server: Server,
  maxConnections: number,
  metrics: Metrics,
  logger: Logger,
  clock: () => number,
): void {
  server.maxConnections = maxConnections;
  let lastLogMs: number | undefined;
  let refusedSinceLog = 0;
  server.on('drop', () => {
    metrics.inc('http_connections_refused_total');
    refusedSinceLog += 1;
    const nowMs = clock();
    if (lastLogMs !== undefined && nowMs - lastLogMs < REFUSED_CONNECTIONS_LOG_MS) return;
    logger.warn(
      'connection limit reached: new connections are closed unanswered until some of the open ones close',
      { maxConnections, refused: refusedSinceLog },
    );
    lastLogMs = nowMs;
    refusedSinceLog = 0;
  });
}

/** The SQLite file a database URL names, for readiness to notice it vanish or be replaced. */
function sqliteFileOption(db: string): { sqliteFile?: string } {
  const path = sqlitePathOf(db);
  return path === undefined || path.trim() === '' || path === ':memory:' ? {} : { sqliteFile: resolve(path) };
}

/**
 * Starts the server and closes it gracefully on SIGTERM / SIGINT (exit code 0), or when it stopped itself
 * because it cannot go on (the lost writer lock: `EXIT_WRITER_LOCK_LOST`). Resolves once it is stopped.
 * A signal while it starts (a long migration, a slow database) is said at once; the start stops once the
 * step under way ends, closing what it opened, and resolves `SIGNALLED` without having listened. A step that
 * does not end within `storeCloseMs` (a migration waiting for a lock, a database that does not answer) is
 * left to the database, which rolls back what it did not commit: `STORE_NOT_CLOSED`, exit at once.
 * Every line it writes is one of the logger's: process warnings go through it while it runs, and a start that
 * fails is logged (`cannot start: …`, `START_FAILED`) before it rejects; a stop other than by signal is
 * logged by what stopped it (`WRITER_LOCK_LOST`, `STORE_NOT_CLOSED`, `START_NOT_STOPPED`).
 */
export async function runUntilSignalled(
  config: ServiceConfig,
  options: StartOptions & {
    /**
     * Called once its own listeners are on: ends the caller's (`wameter`'s, held while its modules loaded)
     * and returns the signal they received, if any, which then stops the start as one received now.
     */
    takeHeldSignal?: () => NodeJS.Signals | undefined;
  } = {},
): Promise<ServiceStop> {
  const logger =
    options.logger ?? createJsonLogger({ level: config.logLevel, clock: options.clock ?? Date.now });
  const stopMs = options.storeCloseMs ?? STORE_CLOSE_MS;
  const stopStart = new AbortController();
  let step: string = START_STEPS.load;
  /** The signal received while starting, and the stop that gives the start up once the bound has passed. */
  let startSignal: NodeJS.Signals | undefined;
  let onStartBound: ((stop: ServiceStop) => void) | undefined;
  const startBound = new Promise<ServiceStop>((resolve) => (onStartBound = resolve));
  let boundTimer: ReturnType<typeof setTimeout> | undefined;
  /** Set once the server listens: what a signal does from then on. */
  let onRunningSignal: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (onRunningSignal !== undefined) return onRunningSignal();
    if (startSignal !== undefined) return;
    startSignal = signal;
    logger.warn(
      `${signal} while starting (${step}): the start stops once this step ends, before listening, and the process exits 0; a step still running ${stopMs / 1000} s from now is left to the database, which rolls back what it did not commit`,
      { signal, step },
    );
    stopStart.abort();
    boundTimer = setTimeout(() => {
      const message = `the start did not end within ${stopMs / 1000} s of ${signal} (${step}): exiting without it; the database rolls back what it did not commit (a migration is applied whole or not at all), nothing is half-written`;
      logger.error(message, { errorCode: 'START_NOT_STOPPED', signal, step });
      onStartBound?.({ code: 'STORE_NOT_CLOSED', message, exitCode: EXIT_STORE_NOT_CLOSED });
    }, stopMs);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Every line the service writes is one of its JSON log lines: a process warning too (the WAL checkpointer's
  // stop, a dependency's deprecation), which Node would print as plain text on stderr.
  const giveWarningsBack = routeProcessWarnings(logger);
  // A bug that escapes every handler — an exception thrown from a callback, or a rejection nothing handles
  // (Node makes it one) — ends the process at once, as Node would: its state can no longer be trusted, and a
  // supervisor restarts it (every request answered 200 is stored; Meta retries the others). Said as one JSON
  // log line with the stack, not Node's plain text on stderr among the service's lines.
  const onUncaught = (error: unknown, origin: string) => {
    const what = origin === 'unhandledRejection' ? 'rejection nothing handled' : 'exception';
    logger.error(
      `uncaught ${what}: a bug in wameter, please report it; the service stops at once (every request answered 200 is stored, Meta retries the others)`,
      {
        ...errorFields(error),
        ...(error instanceof Error && error.stack !== undefined ? { stack: error.stack } : {}),
        origin,
        errorCode: 'UNCAUGHT_EXCEPTION',
        exitCode: EXIT_UNCAUGHT,
      },
    );
    process.exit(EXIT_UNCAUGHT);
  };
  process.on('uncaughtException', onUncaught);
  const held = options.takeHeldSignal?.();
  if (held !== undefined) onSignal(held);
  const stopListening = () => {
    clearTimeout(boundTimer);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('uncaughtException', onUncaught);
    giveWarningsBack();
  };
  let running: RunningServer;
  try {
    const started = startServer(config, {
      ...options,
      logger,
      signal: stopStart.signal,
      onStep: (next) => (step = next),
    });
    const first = await Promise.race([started, startBound]);
    if (!('url' in first)) {
      // Given up: the start goes on until the caller exits; its failure, if any, is no longer anyone's.
      started.catch(() => undefined);
      stopListening();
      return first;
    }
    running = first;
  } catch (error) {
    stopListening();
    if (!(error instanceof StartStoppedError)) {
      // In the log, not only in the rejection: its caller writes nothing more (wameter serve, below).
      logger.error(`cannot start: ${(error as Error).message}`, {
        errorCode: 'START_FAILED',
        exitCode: EXIT_START_FAILED,
      });
      throw error;
    }
    logger.info('stopped before serving', { signal: startSignal, step: error.step });
    return { code: 'SIGNALLED', exitCode: 0 };
  }
  clearTimeout(boundTimer);
  return new Promise<ServiceStop>((resolve) => {
    const settle = (stop: ServiceStop) => {
      stopListening();
      resolve(stop);
    };
    onRunningSignal = () => {
      // A signal during the drain of a lost lock still exits non-zero: the service did not stop by choice.
      const stopped = (isClosed: boolean) =>
        settle(
          running.failure ??
            (isClosed
              ? { code: 'SIGNALLED', exitCode: 0 }
              : {
                  code: 'STORE_NOT_CLOSED',
                  message: `the store did not close (${running.storeNotClosedReason ?? 'the database does not answer'}); exiting without it`,
                  exitCode: EXIT_STORE_NOT_CLOSED,
                }),
        );
      running.shutDown().then(stopped, () => stopped(true));
    };
    void running.failed.then(settle);
    // Signalled as the last step ended: it listens, and stops as it would a moment later.
    if (startSignal !== undefined) onRunningSignal();
  });
}

function isMainModule(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isMainModule()) {
  const config = loadServiceConfig({
    env: process.env,
    ...(process.env.WAMETER_CONFIG ? { configFile: process.env.WAMETER_CONFIG } : {}),
  });
  if (!config.ok) {
    process.stderr.write(
      `wameter: the configuration needs fixing:\n  - ${config.error.problems.join('\n  - ')}\n`,
    );
    process.exit(1);
  }
  // Why it stopped or could not start is in the log already (runUntilSignalled): nothing more on stderr.
  runUntilSignalled(config.value).then(
    (stop) => process.exit(stop.exitCode),
    () => process.exit(EXIT_START_FAILED),
  );
}
