// Shared set-up for the service's tests: a real store (SQLite temp file by default), real pricing data,
// the app in-process, and helpers that sign webhooks with a known secret. Not a mock of anything.

import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rateEvents, type RatingOutput } from '../src/core/rate-events.js';
import { createAccountBook } from '../src/ingest/accounts-file.js';
import { parseEventValue } from '../src/ingest/parse-event.js';
import { packageRoot } from '../src/ingest/rate-card-files.js';
import { signMetaBody } from '../src/ingest/signature.js';
import { createApp } from '../src/server/app.js';
import { registerDashboardRoutes } from '../src/server/dashboard-routes.js';
import { DEFAULT_BODY_LIMIT_BYTES, type ServiceConfig } from '../src/server/config.js';
import type { LiveRater, PricingSetup } from '../src/server/live-rater.js';
import { createMemoryLogger } from '../src/server/logger.js';
import { Metrics } from '../src/server/metrics.js';
import { loadPricingSetup, loadRateCards, parseRateCards } from '../src/server/pricing-setup.js';
import { createRatingService } from '../src/server/rating-service.js';
import { createStoreHealth } from '../src/server/store-health.js';
import pg from 'pg';
import { onTestFinished } from 'vitest';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { dropSchema } from './support/pg-schema.js';

export const SECRET = 'test-app-secret-1';
export const OTHER_SECRET = 'test-app-secret-2';
export const VERIFY_TOKEN = 'verify-token-xyz';
export const KEY_ALL = 'key-admin-all-wabas';
export const KEY_W1 = 'key-client-one-w1';
export const KEY_W2 = 'key-client-two-w2';
export const FIXTURES = join(import.meta.dirname, 'fixtures', 'webhooks');

/** Every real webhook body in the fixtures (analytics exports are not webhooks). */
export function webhookFixtures(): { name: string; body: Buffer }[] {
  const bodies: { name: string; body: Buffer }[] = [];
  for (const folder of ['meta-docs', 'pywa']) {
    for (const file of readdirSync(join(FIXTURES, folder)).sort()) {
      if (!file.endsWith('.json') || file.startsWith('analytics_')) continue;
      bodies.push({ name: `${folder}/${file}`, body: readFileSync(join(FIXTURES, folder, file)) });
    }
  }
  return bodies;
}

export function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, name));
}

export function testConfig(overrides: Partial<ServiceConfig> = {}): ServiceConfig {
  return {
    db: 'sqlite:unused',
    port: 0,
    host: '127.0.0.1',
    appSecrets: [SECRET, OTHER_SECRET],
    verifyToken: VERIFY_TOKEN,
    apiKeys: [
      { name: 'admin', key: KEY_ALL, wabas: '*' },
      { name: 'client-one', key: KEY_W1, wabas: ['W1'] },
      { name: 'client-two', key: KEY_W2, wabas: ['W2'] },
    ],
    accountsPath: null,
    rateCardPaths: [],
    bodyLimitBytes: DEFAULT_BODY_LIMIT_BYTES,
    rateLimit: null,
    logLevel: 'debug',
    ratingDebounceMs: 5,
    ...overrides,
  };
}

export interface TestService {
  app: ReturnType<typeof createApp>;
  store: Store;
  metrics: Metrics;
  logs: string[];
  rating: ReturnType<typeof createRatingService>;
  clock: { nowMs: number };
  postWebhook(
    body: string | Uint8Array,
    options?: { secret?: string; signature?: string | null },
  ): Promise<Response>;
  get(path: string, key?: string): Promise<Response>;
  postEvents(lines: string | readonly object[], key?: string): Promise<Response>;
  close(): Promise<void>;
}

export async function createTestService(
  overrides: Partial<ServiceConfig> = {},
  options: {
    store?: Store;
    clientIp?: string;
    /** Where ratings run (default: the service's own, in this thread). */
    liveRater?: (store: Store, pricing: PricingSetup) => LiveRater;
    exportStallMs?: number;
    exportDeadlineMs?: number;
  } = {},
): Promise<TestService> {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-server-'));
  const store = options.store ?? (await openSqliteStore(join(dir, 'test.db')));
  const config = testConfig(overrides);
  const clock = { nowMs: Date.parse('2025-08-01T12:00:00Z') };
  const now = () => clock.nowMs;
  const logger = createMemoryLogger(now, config.logLevel);
  const metrics = new Metrics();
  const pricing = await loadPricingSetup({
    accountsPath: config.accountsPath,
    rateCardPaths: config.rateCardPaths,
  });
  if (!pricing.ok) throw new Error(pricing.error);
  // As in main: failed writes of ingestion and of ratings both make readiness fail.
  const storeHealth = createStoreHealth({ clock: now });
  const rating = createRatingService({
    store,
    pricing: pricing.value,
    clock: now,
    logger,
    loadRateCards,
    parseRateCards,
    debounceMs: config.ratingDebounceMs,
    storeHealth,
    ...(options.liveRater ? { liveRater: options.liveRater(store, pricing.value) } : {}),
  });
  const app = createApp({
    store,
    config,
    clock: now,
    logger,
    rating,
    metrics,
    storeHealth,
    clientIp: () => options.clientIp ?? '203.0.113.7',
    ...(pricing.value.markets.names ? { marketNames: pricing.value.markets.names } : {}),
    timeZoneOf: (waba) => createAccountBook(pricing.value.accounts).accountFor(waba).timeZone,
    ...(options.exportStallMs === undefined ? {} : { exportStallMs: options.exportStallMs }),
    ...(options.exportDeadlineMs === undefined ? {} : { exportDeadlineMs: options.exportDeadlineMs }),
  });
  const bearer = (key: string | undefined): Record<string, string> =>
    key === undefined ? {} : { Authorization: `Bearer ${key}` };
  return {
    app,
    store,
    metrics,
    logs: logger.lines,
    rating,
    clock,
    postWebhook(body, postOptions = {}) {
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      const signature =
        postOptions.signature === undefined
          ? signMetaBody(body, postOptions.secret ?? SECRET)
          : postOptions.signature;
      if (signature !== null) headers['X-Hub-Signature-256'] = signature;
      return Promise.resolve(
        app.request('/webhooks/whatsapp', { method: 'POST', headers, body: body as BodyInit }),
      );
    },
    get(path, key) {
      return Promise.resolve(app.request(path, { headers: bearer(key) }));
    },
    postEvents(lines, key = KEY_ALL) {
      const body = typeof lines === 'string' ? lines : lines.map((line) => JSON.stringify(line)).join('\n');
      return Promise.resolve(
        app.request('/v1/events', {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-ndjson', ...bearer(key) },
          body,
        }),
      );
    },
    async close() {
      await rating.close();
      if (!options.store) await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A small day of traffic for one WABA: a user writes, the business answers with a utility template. */
export function conversationLines(waba: string, business: string, user: string, prefix: string): object[] {
  return [
    { kind: 'inbound', at: '2025-07-10T09:00:00Z', waba, business, user, id: `${prefix}.in1` },
    {
      kind: 'outbound',
      at: '2025-07-10T09:01:00Z',
      waba,
      business,
      user,
      id: `${prefix}.o1`,
      template: null,
    },
    { kind: 'status', at: '2025-07-10T09:01:05Z', waba, id: `${prefix}.o1`, status: 'delivered' },
    {
      kind: 'outbound',
      at: '2025-07-12T10:00:00Z',
      waba,
      business,
      user,
      id: `${prefix}.o2`,
      template: 'marketing',
    },
    { kind: 'status', at: '2025-07-12T10:00:04Z', waba, id: `${prefix}.o2`, status: 'delivered' },
    {
      kind: 'outbound',
      at: '2025-07-13T10:00:00Z',
      waba,
      business,
      user,
      id: `${prefix}.o3`,
      template: 'utility',
    },
    { kind: 'status', at: '2025-07-13T10:00:04Z', waba, id: `${prefix}.o3`, status: 'read' },
  ];
}

/** PostgreSQL of the tests (CI starts it; the tests fail, never skip, when it cannot be reached). */
export const TEST_POSTGRES_URL =
  process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The test service on a SQLite file, or on a fresh PostgreSQL schema (named after `prefix`) dropped once the
 * test is over — after an afterEach has closed the service and its rating.
 */
export async function serviceOn(
  engine: 'SQLite' | 'PostgreSQL',
  prefix: string,
  overrides: Partial<ServiceConfig> = {},
): Promise<TestService> {
  if (engine === 'SQLite') return createTestService(overrides);
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const store = await openPostgresStore(TEST_POSTGRES_URL, { schema });
  onTestFinished(async () => {
    await store.close();
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    await dropSchema(admin, schema);
    await admin.end();
  });
  return createTestService(overrides, { store });
}

/**
 * A folder `cards` in `dir` holding the bundled rate cards and Meta's USD volume tiers of October 2025 given
 * as `bands` (lines `Market,$US,Category,From,To,Rate`): its path, for `rateCardPaths` or `--rate-cards`.
 */
export function bundledCardsWithTiers(dir: string, bands: readonly string[]): string {
  const cardsDir = join(dir, 'cards');
  mkdirSync(cardsDir);
  for (const name of readdirSync(join(packageRoot(), 'data', 'rate-cards'))) {
    copyFileSync(join(packageRoot(), 'data', 'rate-cards', name), join(cardsDir, name));
  }
  writeFileSync(
    join(cardsDir, 'usd-2025-10-01-tiers.csv'),
    [
      'Volume tiers in USD, effective October 1, 2025',
      'Market,Currency,Category,From,To,Rate',
      ...bands,
      '',
    ].join('\n'),
  );
  return cardsDir;
}

/** `wameter rate` of `lines` at once, with the accounts file at `accountsPath` and the bundled cards. */
export async function rateLinesAsBatch(
  accountsPath: string | null,
  lines: readonly object[],
): Promise<RatingOutput> {
  const pricing = await loadPricingSetup({ accountsPath, rateCardPaths: [] });
  if (!pricing.ok) throw new Error(pricing.error);
  const events = lines.flatMap((line) => {
    const parsed = parseEventValue(line);
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value.events;
  });
  const book = createAccountBook(pricing.value.accounts);
  return rateEvents(events, {
    accountFor: (waba) => book.accountFor(waba),
    listedWabas: new Set(pricing.value.accounts.map((account) => account.waba)),
    rateBook: pricing.value.rateBook,
    markets: pricing.value.markets,
  });
}

/** Mounts the dashboard's routes (GET /v1/findings, estimate, reconciliation…) on `created`, as main does. */
export async function mountDashboardRoutes(
  created: TestService,
  options: { accountsPath: string | null; rateCardPaths: string[]; webRoot?: string },
): Promise<void> {
  const pricing = await loadPricingSetup({
    accountsPath: options.accountsPath,
    rateCardPaths: options.rateCardPaths,
  });
  if (!pricing.ok) throw new Error(pricing.error);
  const clock = () => created.clock.nowMs;
  registerDashboardRoutes(created.app, {
    store: created.store,
    config: { bodyLimitBytes: 1024 * 1024 } as ServiceConfig,
    clock,
    logger: createMemoryLogger(clock),
    rating: created.rating,
    pricing: pricing.value,
    ...(options.webRoot ? { webRoot: options.webRoot } : {}),
    metrics: created.metrics,
  });
}

/** The service of the other route tests, with the dashboard's routes mounted the way main does it. */
export async function createDashboardService(
  options: {
    webRoot?: string;
    accountsPath?: string;
    rateCardPaths?: string[];
    /** The API keys (default: testConfig's — KEY_ALL, KEY_W1, KEY_W2). */
    apiKeys?: ServiceConfig['apiKeys'];
  } = {},
): Promise<TestService> {
  // The live rating and the dashboard price with the same accounts (portfolios) and cards, as in the server.
  const rateCardPaths = options.rateCardPaths ?? [];
  const created = await createTestService({
    ...(options.accountsPath ? { accountsPath: options.accountsPath } : {}),
    rateCardPaths,
    ...(options.apiKeys ? { apiKeys: options.apiKeys } : {}),
  });
  await mountDashboardRoutes(created, {
    accountsPath: options.accountsPath ?? null,
    rateCardPaths,
    ...(options.webRoot ? { webRoot: options.webRoot } : {}),
  });
  return created;
}

/**
 * An accounts file in a new folder under `dir` (the system's temporary folder by default) putting W1 and W2
 * in one portfolio, P1 (KEY_W1 reads W1, KEY_W2 reads W2): its path.
 */
export function sharedPortfolioAccounts(dir = mkdtempSync(join(tmpdir(), 'wameter-accounts-'))): string {
  return accountsFile(['W1', 'W2'], dir);
}

/** An accounts file (contract §2) in `dir` putting `wabas` in one portfolio, P1, in UTC and USD: its path. */
export function accountsFile(
  wabas: readonly string[],
  dir = mkdtempSync(join(tmpdir(), 'wameter-accounts-')),
): string {
  const accountsPath = join(dir, 'accounts.json');
  const accounts = wabas.map((waba) => ({ waba, timezone: 'UTC', currency: 'USD', portfolio: 'P1' }));
  writeFileSync(accountsPath, JSON.stringify({ accounts }));
  return accountsPath;
}

/** An event line: a utility template of `waba` (its number `PN-<waba>`) to `user`, delivered at once at `at`. */
export function deliveredUtility(waba: string, id: string, at: string, user: string): object {
  return {
    kind: 'outbound',
    at,
    waba,
    business: `PN-${waba}`,
    user,
    id,
    template: 'utility',
    delivered_at: at,
  };
}
