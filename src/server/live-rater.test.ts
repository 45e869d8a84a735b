import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { eventKey, type CoreEvent } from '../core/events.js';
import type { RatingOutput } from '../core/rate-events.js';
import { parseAnalyticsExport } from '../core/reconcile.js';
import type { BillableUnit, PendingMessage } from '../core/units.js';
import type { Store } from '../store/store.js';
import { parseEventValue } from '../ingest/parse-event.js';
import { openStore } from '../store/open-store.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { recipientsFromPhones } from '../use-cases/estimate.js';
import { conversationLines, deliveredUtility } from '../../test/server-kit.js';
import { buildRatingWorker } from '../../test/support/build-server.js';
import {
  createInProcessLiveRater,
  createWorkerLiveRater,
  isSharedDatabase,
  keepInScope,
  RATING_PART_ROWS,
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

/** One conversation of WABA: a user's message, the business's replies and their statuses. */
const EVENTS: CoreEvent[] = conversationLines(WABA, '106540352242922', '16505551234', 'wamid.live').flatMap(
  (line) => {
    const parsed = parseEventValue(line);
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value.events;
  },
);
const EVENT_INPUTS = EVENTS.map((event) => ({
  key: eventKey(event),
  event,
  receivedAtMs: 0,
  source: 'test',
}));

beforeAll(async () => {
  // A worker thread cannot run TypeScript: it runs these sources compiled.
  script = buildRatingWorker(join(import.meta.dirname, '..', '..', '.tmp', 'live-rater-test-build'));
  const store = await openSqliteStore(DB);
  await store.ingestEvents(EVENT_INPUTS);
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

describe('keepInScope', () => {
  it("leaves out the rows a rating placed outside its scope and names their WABAs; keeps the scope's", () => {
    const unit = (waba: string) => ({ id: `u_${waba}`, waba }) as unknown as BillableUnit;
    const output = {
      units: [unit('W1'), unit('PNZ')],
      pending: [{ id: 'p', waba: 'OTHER' } as unknown as PendingMessage],
      findings: [
        { code: 'WABA_UNKNOWN', message: 'm', business: 'PNZ' },
        { code: 'NO_RATE', message: 'm', waba: 'PNZ' },
        { code: 'NO_RATE', message: 'm', waba: 'W1' },
      ],
      decisions: [],
      timeline: [],
    } as unknown as RatingOutput;
    const { kept, outside } = keepInScope(output, ['W1', 'W2']);
    expect(outside).toEqual(['OTHER', 'PNZ']);
    expect(kept.units.map((u) => u.waba)).toEqual(['W1']);
    expect(kept.pending).toEqual([]);
    expect(kept.findings.map((f) => f.waba ?? null)).toEqual([null, 'W1']);
    expect(keepInScope(output, ['W1', 'PNZ', 'OTHER'])).toEqual({ kept: output, outside: [] });
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
      // A re-rate of another portfolio: this one is still known; of this one: rewritten in full.
      worker.forget(['W_OTHER']);
      expect((await worker.rate([WABA])).diff?.units).toEqual({ upsert: [], delete: [] });
      worker.settle([WABA], true);
      worker.forget([WABA]);
      expect((await worker.rate([WABA])).diff).toBeNull();
    } finally {
      await worker.close();
      await store.close();
    }
  });

  it("sends a large rating's rows in parts, each once the server's thread took the last: the same rows as in this thread", async () => {
    // More rows than RATING_PART_ROWS: delivered templates (units), and templates never delivered (pending).
    const file = join(dir, 'parts.db');
    const store = await openSqliteStore(file);
    const count = 2 * RATING_PART_ROWS + 500;
    const lines = Array.from({ length: count }, (_, i) => {
      const at = new Date(Date.UTC(2025, 7, 1) + i * 60_000).toISOString();
      const line = deliveredUtility(
        'WPARTS',
        `wamid.parts.${i}`,
        at,
        `1650555${String(i % 1000).padStart(4, '0')}`,
      );
      return i % 10 === 0 ? { ...line, delivered_at: undefined } : line;
    });
    await store.ingestEvents(
      lines.flatMap((line) => {
        const parsed = parseEventValue(JSON.parse(JSON.stringify(line)));
        if (!parsed.ok) throw new Error(parsed.error.message);
        return parsed.value.events.map((event) => ({
          key: eventKey(event),
          event,
          receivedAtMs: 0,
          source: 'test',
        }));
      }),
    );
    // What the server's thread tells the worker: a `partTaken` per part it took.
    const taken: unknown[] = [];
    const original = Worker.prototype.postMessage;
    const post = vi.spyOn(Worker.prototype, 'postMessage').mockImplementation(function (
      this: Worker,
      message: unknown,
    ) {
      if ((message as { type?: string }).type === 'partTaken') taken.push(message);
      original.call(this, message);
    });
    const local = createInProcessLiveRater(store, pricing);
    const worker = createWorkerLiveRater(script, { ...setup, db: `sqlite:${file}` }, logger);
    try {
      const expected = await local.rate(['WPARTS']);
      expect(expected.full!.units.length).toBeGreaterThan(RATING_PART_ROWS);
      expect(expected.full!.pending.length).toBeGreaterThan(0);
      const rating = await worker.rate(['WPARTS']);
      expect(rating.full).toEqual(expected.full);
      expect(rating.totals).toEqual(expected.totals);
      const parts = Math.ceil(expected.full!.units.length / RATING_PART_ROWS);
      expect(taken).toHaveLength(parts);
      // A re-rate's whole rating of the scope too.
      const whole = await worker.rateScope(['WPARTS'], {});
      const wholeHere = await local.rateScope(['WPARTS'], {});
      expect(whole.output.units).toEqual(wholeHere.output.units);
      expect(whole.output.pending).toEqual(wholeHere.output.pending);
      expect(whole.output.findings).toEqual(wholeHere.output.findings);
      expect(taken).toHaveLength(2 * parts);
    } finally {
      post.mockRestore();
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

  it('reconciles and estimates like the in-process rater, off the calling thread', async () => {
    const store = await openSqliteStore(DB);
    const local = createInProcessLiveRater(store, pricing);
    const worker = createWorkerLiveRater(script, setup, logger);
    try {
      const reconcileJob = { scope: [WABA], countedWabas: [WABA] };
      const reconciled = await worker.reconcile(reconcileJob);
      expect(reconciled.ok && reconciled.value.wabas).toEqual([WABA]);
      expect(reconciled).toEqual(await local.reconcile(reconcileJob));
      const estimateJob = {
        scope: [WABA],
        recipients: recipientsFromPhones(['16505551234', '919876543210']),
        request: { template: 'utility' as const, atMs: Date.parse('2025-07-20T00:00:00Z') },
      };
      const estimated = await worker.estimate(estimateJob);
      expect(estimated.ok && estimated.value.estimate.lines.map((line) => line.phone)).toEqual([
        '16505551234',
        '919876543210',
      ]);
      expect(estimated).toEqual(await local.estimate(estimateJob));
      // An estimate's refusal comes back as the in-process one, not as a failed worker request.
      const refusedJob = { ...estimateJob, request: { ...estimateJob.request, business: 'PN-NOBODY' } };
      const refused = await worker.estimate({
        ...refusedJob,
        request: { ...refusedJob.request, isUnknownBusinessAccepted: false },
      });
      expect(!refused.ok && refused.error.code).toBe('BUSINESS_NOT_OF_WABA');
    } finally {
      await worker.close();
      await store.close();
    }
  });

  it('reads a reconciliation body where it rates: the bytes handed over, the export kept for the job naming it', async () => {
    const store = await openSqliteStore(DB);
    const local = createInProcessLiveRater(store, pricing);
    const worker = createWorkerLiveRater(script, setup, logger);
    try {
      const start = Date.parse('2025-07-12T00:00:00Z') / 1000;
      const point = { start, end: start + 86_400, conversation: 3, conversation_category: 'SERVICE' };
      const exported = {
        conversation_analytics: { data: [{ data_points: [{ ...point, country: 'US', cost: 0 }] }] },
      };
      const text = JSON.stringify({ analytics: { ...exported, id: WABA } });
      const bytes = new TextEncoder().encode(text);
      const read = await worker.readAnalyticsBody(bytes);
      if (!read.ok) throw new Error(read.error.detail);
      expect(read.value.waba).toBe(WABA);
      // A copy went over: the caller's bytes are still its own.
      expect(new TextDecoder().decode(bytes)).toBe(text);
      const job = { scope: [WABA], countedWabas: [WABA], analyticsWaba: WABA };
      const reconciled = await worker.reconcile({ ...job, analyticsRef: read.value.ref });
      const parsed = parseAnalyticsExport({ ...exported, id: WABA });
      if (!parsed.ok) throw new Error(parsed.error.message);
      const expected = await local.reconcile({ ...job, analytics: parsed.value });
      expect(expected.ok && expected.value.reconciliation.checked.buckets).toBeGreaterThan(0);
      expect(reconciled).toEqual(expected);
      // Taken by its reconciliation: the same ref again reads nothing, never another request's export.
      await expect(worker.reconcile({ ...job, analyticsRef: read.value.ref })).rejects.toThrow(
        /no longer kept/,
      );
      // Dropped (the route refused the request): gone as well.
      const dropped = await worker.readAnalyticsBody(bytes);
      if (!dropped.ok) throw new Error(dropped.error.detail);
      worker.dropAnalytics(dropped.value.ref);
      await expect(worker.reconcile({ ...job, analyticsRef: dropped.value.ref })).rejects.toThrow(
        /no longer kept/,
      );
      // A body's refusal comes back in the words the server's thread answered it with.
      for (const body of ['{"analytics": ', '[1]', '{"waba": 7}', '{"analytics": {"hello": 1}}']) {
        const given = new TextEncoder().encode(body);
        const refused = await worker.readAnalyticsBody(given);
        expect(refused.ok, body).toBe(false);
        expect(refused).toEqual(await local.readAnalyticsBody(given));
      }
    } finally {
      await worker.close();
      await store.close();
    }
  });

  it("reads through a read-only connection: it rates while the server's thread holds the write lock", async () => {
    const store = await openSqliteStore(DB);
    const local = createInProcessLiveRater(store, pricing);
    const expected = await local.rate([WABA]);
    // The server's thread in the middle of a write: a worker that opened the store to migrate it would wait
    // for this lock (and fail after busy_timeout); one that only reads never asks for it.
    const writer = new Database(DB);
    writer.exec('BEGIN IMMEDIATE');
    const worker = createWorkerLiveRater(script, setup, logger);
    try {
      const rated = await worker.rate([WABA]);
      expect(expected.units).toBeGreaterThan(0);
      expect(rated.full).toEqual(expected.full);
      expect(rated.totals).toEqual(expected.totals);
      const explain = { withDecisions: true, trace: { user: '16505551234' } };
      expect(await worker.rateScope([WABA], explain)).toEqual(await local.rateScope([WABA], explain));
    } finally {
      writer.exec('ROLLBACK');
      writer.close();
      await worker.close();
      await store.close();
    }
  });

  it('never creates a store: a SQLite file gone since the server migrated it fails the rating, and stays gone', async () => {
    const gone = join(dir, 'deleted.db');
    const worker = createWorkerLiveRater(script, { ...setup, db: `sqlite:${gone}` }, logger);
    try {
      await expect(worker.rate([WABA])).rejects.toThrow(
        `rating worker cannot start: no wameter store in ${gone}: the file does not exist`,
      );
      expect(existsSync(gone)).toBe(false);
    } finally {
      await worker.close();
    }
  });

  it('once closed, refuses a request rather than start a worker again', async () => {
    const worker = createWorkerLiveRater(script, setup, logger);
    expect((await worker.rate([WABA])).units).toBeGreaterThan(0);
    await worker.close();
    await expect(worker.rateScope([WABA], {})).rejects.toThrow('the rating worker is closed');
    await expect(worker.rate([WABA])).rejects.toThrow('the rating worker is closed');
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

describe("explanations: only the portfolios of the user's events are rated", () => {
  const USER = '16505551234';
  const OTHER_USER = '447700900123';
  /** W1 and W2 share a portfolio; W3 is one of its own. */
  const accounts = [
    { waba: 'W1', timeZone: 'UTC', currency: 'USD', portfolio: 'P12' },
    { waba: 'W2', timeZone: 'UTC', currency: 'USD', portfolio: 'P12' },
    { waba: 'W3', timeZone: 'UTC', currency: 'USD', portfolio: 'P3' },
  ];
  const eventsOf = (lines: object[]) =>
    lines.flatMap((line) => {
      const parsed = parseEventValue(line);
      if (!parsed.ok) throw new Error(parsed.error.message);
      return parsed.value.events;
    });
  const W1 = eventsOf(conversationLines('W1', 'PN1', USER, 'w1'));
  const W2 = eventsOf(conversationLines('W2', 'PN2', OTHER_USER, 'w2'));
  const W3 = eventsOf(conversationLines('W3', 'PN3', OTHER_USER, 'w3'));
  const W3_USER = eventsOf(conversationLines('W3', 'PN3', USER, 'w3u'));
  let pricing: PricingSetup;

  beforeAll(async () => {
    const loaded = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
    if (!loaded.ok) throw new Error(loaded.error);
    pricing = { ...loaded.value, accounts };
  });

  const storeWith = async (events: CoreEvent[]) => {
    const store = await openSqliteStore(':memory:');
    await store.ingestEvents(
      events.map((event) => ({ key: eventKey(event), event, receivedAtMs: 0, source: 'test' })),
    );
    return store;
  };
  const explain = { withDecisions: true, trace: { user: USER } };

  it("rates the user's portfolio alone, W2 with it (shared tiers), and answers the same story", async () => {
    const store = await storeWith([...W1, ...W2, ...W3]);
    try {
      const rater = createInProcessLiveRater(store, pricing);
      const all = await rater.rateScope(['W1', 'W2', 'W3'], explain);
      const portfolio = await rater.rateScope(['W1', 'W2'], explain);
      expect(all.output.stats.events).toBe(W1.length + W2.length);
      expect(all).toEqual(portfolio);
      // Only the user's story comes back: units and decisions of the user, none of W2's user.
      expect(all.output.units.length).toBeGreaterThan(0);
      expect(all.output.units.every((unit) => unit.user === USER)).toBe(true);
      expect(all.output.decisions.every((decision) => decision.user === USER)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it("finds a Brazilian user's portfolio whichever way the number is written (Meta's 12 digits, the query's 13)", async () => {
    const stored = eventsOf(conversationLines('W1', 'PN1', '551199998888', 'br'));
    const store = await storeWith([...stored, ...W3]);
    try {
      const rater = createInProcessLiveRater(store, pricing);
      const traced = await rater.rateScope(['W1', 'W2', 'W3'], {
        ...explain,
        trace: { user: '5511999998888' },
      });
      expect(traced.output.stats.events).toBe(stored.length);
      expect(traced.output.units.length).toBeGreaterThan(0);
      expect(traced.output.timeline.length).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  it("rates what the stores list for the user's portfolio: another user's status naming no WABA included", async () => {
    // A status of another user naming PN1 but no WABA, its message stored nowhere: listed with W1 (the owner
    // of PN1), so the live bill counts it in the portfolio's tiers — and so must the explanation.
    const orphan: CoreEvent = {
      kind: 'status',
      atMs: Date.parse('2025-07-09T09:00:00Z'),
      id: 'wamid.orphan',
      status: 'delivered',
      business: 'PN1',
      user: OTHER_USER,
      pricing: { billable: true, pricing_model: 'PMP', category: 'utility' },
    };
    const store = await storeWith([...W1, ...W3, orphan]);
    try {
      expect(await store.listEvents(['W1'])).toContainEqual(orphan);
      const rater = createInProcessLiveRater(store, pricing);
      const traced = await rater.rateScope(['W1', 'W2', 'W3'], explain);
      expect(traced.output.stats.events).toBe(W1.length + 1);
      expect(traced).toEqual(await rater.rateScope(['W1', 'W2'], explain));
    } finally {
      await store.close();
    }
  });

  it('rates every portfolio where the user has events, and nothing for a user without any', async () => {
    const store = await storeWith([...W1, ...W2, ...W3, ...W3_USER]);
    try {
      const rater = createInProcessLiveRater(store, pricing);
      const both = await rater.rateScope(['W1', 'W2', 'W3'], explain);
      expect(both.output.stats.events).toBe(W1.length + W2.length + W3.length + W3_USER.length);
      expect(new Set(both.output.units.map((unit) => unit.waba))).toEqual(new Set(['W1', 'W3']));
      const nobody = await rater.rateScope(['W1', 'W2', 'W3'], {
        ...explain,
        trace: { user: '919800000009' },
      });
      expect(nobody.output.stats.events).toBe(0);
      expect(nobody.output.units).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

const POSTGRES = process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A message never delivered (a pending row), beside EVENTS. */
const PENDING_INPUT = (() => {
  const parsed = parseEventValue({
    kind: 'outbound',
    at: '2025-07-14T10:00:00Z',
    waba: WABA,
    business: '106540352242922',
    user: '16505551234',
    id: 'wamid.live.pending',
    template: 'marketing',
  });
  if (!parsed.ok) throw new Error(parsed.error.message);
  const [event] = parsed.value.events;
  return { key: eventKey(event!), event: event!, receivedAtMs: 0, source: 'test' };
})();

/**
 * A worker that remembers no rating of WABA, told the stored bill is current (a start found it so), reads the
 * stored rows back and answers a diff against them: none of its units or pending messages to write again.
 */
async function diffsAgainstStoredRows(
  store: Store,
  setup: WorkerSetup,
  pricing: PricingSetup,
): Promise<void> {
  await store.ingestEvents([...EVENT_INPUTS, PENDING_INPUT]);
  const rated = await createInProcessLiveRater(store, pricing).rate([WABA]);
  expect(rated.full!.pending).toHaveLength(1);
  await store.replaceRating(
    {
      id: 'rating_stored',
      ratedAtMs: 0,
      reason: 'live',
      wabas: [WABA],
      asOfRules: null,
      rateCards: [],
      totals: rated.totals,
    },
    rated.full!,
  );
  const worker = createWorkerLiveRater(script, setup, createMemoryLogger());
  try {
    const read = await worker.rate([WABA], { isStoredCurrent: true });
    expect(read.full).toBeNull();
    expect(read.diff?.units).toEqual({ upsert: [], delete: [] });
    expect(read.diff?.pending).toEqual({ upsert: [], delete: [] });
    // The findings are not read back: written whole.
    expect(read.diff?.findings).toEqual(rated.full!.findings);
    expect(read.totals).toEqual(rated.totals);
    worker.settle([WABA], false);
    expect((await worker.rate([WABA])).diff).toBeNull();
  } finally {
    await worker.close();
  }
}

describe('a live rating of a bill the rater does not remember but the caller knows is current', () => {
  it('reads the stored rows back and writes a diff (SQLite, in a worker thread)', async () => {
    const loaded = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
    if (!loaded.ok) throw new Error(loaded.error);
    const file = join(dir, 'read-back.db');
    const store = await openSqliteStore(file);
    const setup = {
      db: `sqlite:${file}`,
      accounts: [],
      cards: loaded.value.cards,
      isReportedRulesEnabled: true,
    };
    try {
      await diffsAgainstStoredRows(store, setup, loaded.value);
    } finally {
      await store.close();
    }
  });
});

describe('live rating in a worker thread on PostgreSQL', () => {
  const logger = createMemoryLogger();
  let admin: pg.Client;
  const schemas: string[] = [];
  /** A schema of its own (created empty), dropped after the tests; its URL (through search_path). */
  const freshSchema = async () => {
    const schema = `wameter_worker_${randomBytes(5).toString('hex')}`;
    schemas.push(schema);
    await admin.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(POSTGRES);
    url.searchParams.set('options', `-c search_path=${schema}`);
    return { schema, url: url.toString() };
  };
  let pricing: PricingSetup;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: POSTGRES });
    await admin.connect();
    const loaded = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
    if (!loaded.ok) throw new Error(loaded.error);
    pricing = loaded.value;
  });

  afterAll(async () => {
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  it('rates through read-only sessions like the in-process rater, and never makes a store of an empty schema', async () => {
    const { url } = await freshSchema();
    const store = await openStore(url);
    await store.ingestEvents(EVENT_INPUTS);
    const setup: WorkerSetup = { db: url, accounts: [], cards: pricing.cards, isReportedRulesEnabled: true };
    const worker = createWorkerLiveRater(script, setup, logger);
    try {
      const expected = await createInProcessLiveRater(store, pricing).rate([WABA]);
      const rated = await worker.rate([WABA]);
      expect(expected.units).toBeGreaterThan(0);
      expect(rated.full).toEqual(expected.full);
      expect(rated.totals).toEqual(expected.totals);
    } finally {
      await worker.close();
      await store.close();
    }

    // The server migrates before it starts the worker: a schema without wameter's tables is refused, not
    // migrated behind the writer's back.
    const empty = await freshSchema();
    const refused = createWorkerLiveRater(script, { ...setup, db: empty.url }, logger);
    try {
      await expect(refused.rate([WABA])).rejects.toThrow(/^rating worker cannot start: no wameter store in /);
    } finally {
      await refused.close();
    }
    const tables = await admin.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1', [
      empty.schema,
    ]);
    expect(tables.rowCount).toBe(0);
  });

  it('reads a current stored bill back and writes a diff against it, as on SQLite', async () => {
    const { url } = await freshSchema();
    const store = await openStore(url);
    const setup: WorkerSetup = { db: url, accounts: [], cards: pricing.cards, isReportedRulesEnabled: true };
    try {
      await diffsAgainstStoredRows(store, setup, pricing);
    } finally {
      await store.close();
    }
  });
});
