import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventKey } from '../core/events.js';
import { parseEventValue } from '../ingest/parse-event.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { conversationLines } from '../../test/server-kit.js';
import { buildRatingWorker } from '../../test/support/build-server.js';
import {
  createInProcessLiveRater,
  createWorkerLiveRater,
  isSharedDatabase,
  type LiveRater,
  type PricingSetup,
  type WorkerSetup,
} from './live-rater.js';
import { createMemoryLogger } from './logger.js';
import { loadPricingSetup } from './pricing-setup.js';

const WABA = '102290129340398';
const dir = mkdtempSync(join(tmpdir(), 'wameter-live-rater-'));
const DB = join(dir, 'live.db');
let script: string;

beforeAll(async () => {
  // A worker thread cannot run TypeScript: it runs these sources compiled.
  script = buildRatingWorker(join(import.meta.dirname, '..', '..', '.tmp', 'live-rater-test-build'));
  const store = await openSqliteStore(DB);
  const events = conversationLines(WABA, '106540352242922', '16505551234', 'wamid.live').flatMap((line) => {
    const parsed = parseEventValue(line);
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value.events;
  });
  await store.ingestEvents(
    events.map((event) => ({ key: eventKey(event), event, receivedAtMs: 0, source: 'test' })),
  );
  await store.close();
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('isSharedDatabase', () => {
  it('is false only where a second connection would open another database', () => {
    for (const db of [':memory:', 'sqlite::memory:', 'sqlite://:memory:', 'sqlite:'])
      expect(isSharedDatabase(db), db).toBe(false);
    for (const db of ['sqlite:./wameter.db', '/var/lib/wameter.db', 'postgres://u@h:5432/db'])
      expect(isSharedDatabase(db), db).toBe(true);
  });
});

describe('live rating in a worker thread', () => {
  const logger = createMemoryLogger();
  let setup: WorkerSetup;
  let pricing: PricingSetup;

  beforeAll(async () => {
    const loaded = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
    if (!loaded.ok) throw new Error(loaded.error);
    pricing = loaded.value;
    setup = { db: `sqlite:${DB}`, accounts: [], cards: pricing.cards, isReportedRulesEnabled: true };
  });

  it('rates like the in-process rater, then answers with diffs once a write is settled', async () => {
    const store = await openSqliteStore(DB);
    const local = createInProcessLiveRater(store, pricing);
    const worker = createWorkerLiveRater(script, setup, logger);
    try {
      const expected = await local.rate([WABA]);
      const first = await worker.rate([WABA]);
      expect(expected.units).toBeGreaterThan(0);
      expect(first.diff).toBeNull();
      expect(first.full).toEqual(expected.full);
      expect(first.totals).toEqual(expected.totals);
      // Nothing stored yet: the next rating still rewrites everything.
      worker.settle([WABA], false);
      expect((await worker.rate([WABA])).diff).toBeNull();
      worker.settle([WABA], true);
      const second = await worker.rate([WABA]);
      expect(second.full).toBeNull();
      expect(second.diff?.units).toEqual({ upsert: [], delete: [] });
      worker.settle([WABA], true);
      worker.forgetAll();
      expect((await worker.rate([WABA])).diff).toBeNull();
    } finally {
      await worker.close();
      await store.close();
    }
  });

  it("prices with the cards it is given (the server's), not with what the files hold now", async () => {
    // Every rate doubled: what a card edited on disk after the server started would look like.
    const doubled = pricing.cards.map((card) => ({
      ...card,
      rates: new Map(
        [...card.rates].map(([market, rates]) => [
          market,
          Object.fromEntries(Object.entries(rates).map(([category, micros]) => [category, micros * 2])),
        ]),
      ),
    }));
    const store = await openSqliteStore(DB);
    const worker = createWorkerLiveRater(script, setup, logger);
    const edited = createWorkerLiveRater(script, { ...setup, cards: doubled }, logger);
    try {
      const normal = await worker.rate([WABA]);
      const twice = await edited.rate([WABA]);
      const [currency, totals] = Object.entries(normal.totals)[0]!;
      expect(totals.amountMicros).toBeGreaterThan(0);
      expect(twice.totals[currency]!.amountMicros).toBe(Number(totals.amountMicros) * 2);
    } finally {
      await worker.close();
      await edited.close();
      await store.close();
    }
  });

  it('rates whole scopes for re-rates and explanations like the in-process rater', async () => {
    const store = await openSqliteStore(DB);
    const local = createInProcessLiveRater(store, pricing);
    const worker = createWorkerLiveRater(script, setup, logger);
    try {
      const explain = { withDecisions: true, trace: { user: '16505551234' } };
      const expected = await local.rateScope([WABA], explain);
      const answered = await worker.rateScope([WABA], explain);
      expect(expected.output.decisions.length).toBeGreaterThan(0);
      expect(expected.output.timeline.length).toBeGreaterThan(0);
      expect(answered).toEqual(expected);
      // Other cards and another era: the re-rate's what-if.
      const whatIf = { asOfRules: 'CBP-2023' as const, cards: pricing.cards };
      const rerated = await worker.rateScope([WABA], whatIf);
      expect(rerated).toEqual(await local.rateScope([WABA], whatIf));
      expect(rerated.output.units.every((unit) => unit.era === 'CBP-2023')).toBe(true);
    } finally {
      await worker.close();
      await store.close();
    }
  });

  it('fails a rating with the reason when the worker cannot start, and tries again at the next one', async () => {
    const missing = join(dir, 'no-such-folder', 'x.db');
    const worker: LiveRater = createWorkerLiveRater(script, { ...setup, db: `sqlite:${missing}` }, logger);
    try {
      await expect(worker.rate([WABA])).rejects.toThrow(/rating worker cannot start: .*/);
      await expect(worker.rate([WABA])).rejects.toThrow(/rating worker cannot start/);
    } finally {
      await worker.close();
    }
  });
});
