import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventKey, primaryCountryAt, type CoreEvent } from '../core/events.js';
import { parseEventValue } from '../ingest/parse-event.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/store.js';
import { conversationLines } from '../../test/server-kit.js';
import { billableUnit } from '../../test/support/units.js';
import { createMemoryLogger } from './logger.js';
import { loadPricingSetup, loadRateCards } from './pricing-setup.js';
import { createStoreHealth } from './store-health.js';
import {
  accountBookFor,
  createRatingService,
  diffRating,
  RatingBehindError,
  RatingFailedError,
  sameRecord,
  type RatingService,
  type RatingServiceDeps,
} from './rating-service.js';
import { ClientBusyError } from './fair-queue.js';
import { createInProcessLiveRater, storedRatingOf, type LiveRater, type PricingSetup } from './live-rater.js';
import type { BillableUnit } from '../core/units.js';

let dir: string;
let store: Store;
let rating: RatingService;
let nowMs: number;
const logger = createMemoryLogger();

function events(lines: readonly object[]): CoreEvent[] {
  return lines.flatMap((line) => {
    const parsed = parseEventValue(line);
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value.events;
  });
}

/** Stores events without telling the rating service (what a crash between storing and rating leaves). */
async function storeUnrated(lines: readonly object[]): Promise<void> {
  await store.ingestEvents(
    events(lines).map((event) => ({ key: eventKey(event), event, receivedAtMs: nowMs, source: 'test' })),
  );
}

async function ingest(lines: readonly object[]): Promise<void> {
  const inserted = await store.ingestEvents(
    events(lines).map((event) => ({ key: eventKey(event), event, receivedAtMs: nowMs, source: 'test' })),
  );
  rating.markDirty(inserted.inserted.map((event) => event.waba ?? ''));
}

async function makeService(
  accounts?: object,
  throttleFactor?: number,
  rateCardPaths: string[] = [],
  extra: Partial<RatingServiceDeps> = {},
): Promise<void> {
  let accountsPath: string | null = null;
  if (accounts) {
    accountsPath = join(dir, 'accounts.json');
    writeFileSync(accountsPath, JSON.stringify(accounts));
  }
  const pricing = await loadPricingSetup({ accountsPath, rateCardPaths });
  if (!pricing.ok) throw new Error(pricing.error);
  rating = createRatingService({
    store,
    pricing: pricing.value,
    clock: () => nowMs,
    logger,
    loadRateCards,
    debounceMs: 50,
    ...(throttleFactor === undefined ? {} : { throttleFactor }),
    ...extra,
  });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wameter-rating-'));
  store = await openSqliteStore(join(dir, 'rating.db'));
  nowMs = Date.parse('2025-08-01T00:00:00Z');
});

afterEach(async () => {
  await rating?.close();
  await store.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('live re-rating', () => {
  it('a status delivered before its message was sent still ends in the batch result', async () => {
    await makeService();
    const lines = conversationLines('W1', 'PN1', '919876543210', 'wamid.l');
    const statuses = lines.filter((l) => (l as { kind: string }).kind === 'status');
    const others = lines.filter((l) => (l as { kind: string }).kind !== 'status');
    await ingest(statuses);
    await rating.settled();
    expect((await store.queryUnits({}, { limit: 100 })).units).toEqual([]);
    await ingest(others);
    await rating.settled();
    const live = (await store.queryUnits({}, { limit: 100 })).units;
    expect(live.length).toBe(3);
    expect(
      live
        .map((u) => u.messages)
        .flat()
        .sort(),
    ).toEqual(['wamid.l.o1', 'wamid.l.o2', 'wamid.l.o3']);
  });

  it('debounces arrivals and reports the rating lag until the bill is current', async () => {
    await makeService();
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.m').slice(0, 3));
    // Not rated yet within the arrival's own millisecond: still not 0, which says "bill current".
    expect(rating.lagSeconds()).toBe(0.001);
    nowMs += 2000;
    expect(rating.lagSeconds()).toBe(2);
    await rating.settled();
    expect(rating.lagSeconds()).toBe(0);
  });

  it('rates the WABAs of one portfolio together and records one history entry for them', async () => {
    await makeService({
      accounts: [
        { waba: 'W1', timezone: 'UTC', currency: 'USD', portfolio: 'P1' },
        { waba: 'W2', timezone: 'UTC', currency: 'USD', portfolio: 'P1' },
      ],
    });
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.p1'));
    await rating.settled();
    await ingest(conversationLines('W2', 'PN2', '919876543211', 'wamid.p2'));
    await rating.settled();
    const [latest] = await store.listRatings(1);
    expect(latest!.wabas).toEqual(['W1', 'W2']);
    expect(latest!.reason).toBe('live');
  });

  it('rateAll rates what a crash left unrated', async () => {
    await makeService();
    await storeUnrated(conversationLines('W9', 'PN9', '919876543219', 'wamid.c'));
    await rating.rateAll();
    expect((await store.queryUnits({}, { limit: 100 })).units.length).toBe(3);
  });

  it('rates and stores a portfolio whose bill passes 2^53 micros (billions of IDR), exactly', async () => {
    // Rates large enough that two messages pass 9,007,199,254.74 rupiah: a big sender's history in IDR.
    const card = join(dir, 'idr-2025-07-01.csv');
    writeFileSync(
      card,
      [
        'Cost per delivered message in IDR, effective July 1, 2025',
        '',
        'Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service',
        'Indonesia,Rp,5000000000.000001,4500000000.5,1,n/a,0',
        '',
      ].join('\n'),
    );
    await makeService({ accounts: [{ waba: 'W1', timezone: 'UTC', currency: 'IDR' }] }, undefined, [card]);
    await ingest(conversationLines('W1', 'PN1', '6281234567890', 'wamid.idr'));
    await rating.settled();
    await rating.current(['W1']);
    const totals = await store.totals({});
    expect(totals.IDR!.amountMicros).toBe(9_500_000_000_500_001n);
    const [latest] = await store.listRatings(1);
    expect(latest!.totals.IDR!.amountMicros).toBe(9_500_000_000_500_001n);
  });

  it('rateAll rejects, naming the WABAs and the cause, when their rating cannot be stored', async () => {
    await makeService();
    await storeUnrated(conversationLines('W9', 'PN9', '919876543219', 'wamid.f'));
    store.replaceRating = () => Promise.reject(new Error('disk full'));
    store.applyRatingDiff = () => Promise.reject(new Error('disk full'));
    const failure = await rating.rateAll().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(RatingFailedError);
    expect((failure as RatingFailedError).wabas).toEqual(['W9']);
    expect((failure as Error).message).toBe('rating 1 WABA(s) failed (W9): disk full');
    expect((await store.queryUnits({}, { limit: 100 })).units).toEqual([]);
  });

  it("one portfolio whose rating keeps failing does not hold up the others' bills", async () => {
    await makeService();
    // The store refuses every rating of WABA A1 (sorted, and so rated, before B1).
    const replaceRating = store.replaceRating.bind(store);
    const applyRatingDiff = store.applyRatingDiff.bind(store);
    const refuseA1 = (wabas: readonly string[]) =>
      wabas.includes('A1') ? Promise.reject(new Error('row refused')) : undefined;
    store.replaceRating = (record, result) => refuseA1(record.wabas) ?? replaceRating(record, result);
    store.applyRatingDiff = (record, diff) => refuseA1(record.wabas) ?? applyRatingDiff(record, diff);
    await ingest([
      ...conversationLines('A1', 'PNA', '919876543210', 'wamid.a'),
      ...conversationLines('B1', 'PNB', '919876543211', 'wamid.b'),
    ]);
    const deadline = Date.now() + 10_000;
    while ((await store.queryUnits({ waba: 'B1' }, { limit: 10 })).units.length === 0) {
      if (Date.now() > deadline) throw new Error("B1 was never rated: A1's failures held it up");
      await rating.settled();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await store.queryUnits({ waba: 'B1' }, { limit: 10 })).units).toHaveLength(3);
    expect((await store.queryUnits({ waba: 'A1' }, { limit: 10 })).units).toEqual([]);
    await expect(rating.current(['A1'])).rejects.toThrow(RatingBehindError);
    await rating.current(['B1']);
  });

  it('a rating that keeps failing is logged at its first failure, then at most once a minute, and its end is said', async () => {
    await makeService();
    let refusals = 0;
    let isRefusing = true;
    const replaceRating = store.replaceRating.bind(store);
    store.replaceRating = (record, result) => {
      if (!isRefusing) return replaceRating(record, result);
      refusals += 1;
      return Promise.reject(new Error('row refused'));
    };
    const until = async (isDone: () => boolean) => {
      const deadline = Date.now() + 15_000;
      while (!isDone()) {
        if (Date.now() > deadline) throw new Error('waited too long');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const before = logger.lines.length; // the lines of this test only
    const ours = () => logger.lines.slice(before);
    // (Services of earlier tests may still retry against their closed stores: their lines are not these.)
    const failed = () =>
      ours().filter(
        (line) => line.includes('live rating failed; will retry') && line.includes('row refused'),
      );
    await ingest(conversationLines('A1', 'PNA', '919876543210', 'wamid.a'));
    await until(() => refusals >= 3); // retried every second
    expect(failed()).toHaveLength(1);
    nowMs += 61_000;
    await until(() => refusals >= 4);
    await until(() => failed().length === 2);
    expect(failed()[1]).toContain('"failed_rounds_unlogged":');
    expect(failed()[1]).toContain('"failing_for_seconds":61');
    isRefusing = false;
    await until(() => ours().some((line) => line.includes('live rating recovered')));
    const recovered = ours().find((line) => line.includes('live rating recovered'))!;
    expect(recovered).toContain(`"failed_rounds":${refusals}`);
    expect(failed()).toHaveLength(2);
    expect((await store.queryUnits({ waba: 'A1' }, { limit: 10 })).units).toHaveLength(3);
  }, 30_000);

  it('a rating cut by the service stopping is said once as such, not as a failure, and not tried again', async () => {
    await makeService();
    const before = logger.lines.length;
    const ours = () => logger.lines.slice(before);
    let writes = 0;
    let cut: ((error: Error) => void) | undefined;
    store.replaceRating = () => {
      writes += 1;
      return new Promise((_resolve, reject) => (cut = reject));
    };
    await ingest(conversationLines('A1', 'PNA', '919876543210', 'wamid.a'));
    while (cut === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
    // As the server's shutdown does past its bound: close() asked, then the rating under way cut.
    const closed = rating.close();
    cut(
      new Error(
        'the service is stopping: the rating still running 5 s after the requests were answered was stopped',
      ),
    );
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 1_200)); // past a retry's second
    expect(writes).toBe(1);
    expect(ours().filter((line) => line.includes('"level":"error"'))).toEqual([]);
    expect(ours().filter((line) => line.includes('live rating stopped'))).toHaveLength(1);
  });

  it('a one-shot rateAll (no retries) rates every portfolio it can and names the ones it could not', async () => {
    await makeService(undefined, undefined, [], { retries: false });
    await storeUnrated([
      ...conversationLines('A1', 'PNA', '919876543210', 'wamid.a'),
      ...conversationLines('B1', 'PNB', '919876543211', 'wamid.b'),
    ]);
    const replaceRating = store.replaceRating.bind(store);
    store.replaceRating = (record, result) =>
      record.wabas.includes('A1') ? Promise.reject(new Error('row refused')) : replaceRating(record, result);
    await expect(rating.rateAll()).rejects.toThrow('rating 1 WABA(s) failed (A1): row refused');
    expect((await store.queryUnits({ waba: 'B1' }, { limit: 10 })).units).toHaveLength(3);
  });

  it('a failing store is logged, counted and retried, and settled() still returns', async () => {
    let failures = 0;
    await makeService(undefined, undefined, [], { onStoreError: () => (failures += 1) });
    await store.close();
    rating.markDirty(['W1']);
    await rating.settled();
    expect(failures).toBe(1);
    expect(rating.lagSeconds()).toBeGreaterThanOrEqual(0);
    expect(logger.lines.some((line) => line.includes('live rating failed'))).toBe(true);
  });
});

/** Every rating write of the store takes 60 ms more (so that a rating's duration, and the throttle, is known). */
function slowRatingWrites(): void {
  const replaceRating = store.replaceRating.bind(store);
  const applyRatingDiff = store.applyRatingDiff.bind(store);
  const slow = () => new Promise((resolve) => setTimeout(resolve, 60));
  store.replaceRating = async (record, result) => {
    await slow();
    return replaceRating(record, result);
  };
  store.applyRatingDiff = async (record, diff) => {
    await slow();
    return applyRatingDiff(record, diff);
  };
}

/**
 * The store's rating writes from now on, in order: `replace`, or `diff:UPSERTS/DELETES` (`+findings` when
 * `withFindings` and the diff rewrites them).
 */
function recordRatingWrites({ withFindings = false } = {}): string[] {
  const calls: string[] = [];
  const replaceRating = store.replaceRating.bind(store);
  const applyRatingDiff = store.applyRatingDiff.bind(store);
  store.replaceRating = (record, result) => {
    calls.push('replace');
    return replaceRating(record, result);
  };
  store.applyRatingDiff = (record, diff) => {
    const findings = withFindings && diff.findings !== undefined ? '+findings' : '';
    calls.push(`diff:${diff.units.upsert.length}/${diff.units.delete.length}${findings}`);
    return applyRatingDiff(record, diff);
  };
  return calls;
}

describe('live re-rating writes only what changed, and is throttled', () => {
  it('after the first rating, writes diffs that leave exactly the batch result', async () => {
    const calls = recordRatingWrites();
    await makeService();
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.d1'));
    await rating.settled();
    await ingest(conversationLines('W1', 'PN1', '919876543211', 'wamid.d2'));
    await rating.settled();
    rating.markDirty(['W1']); // nothing new: an empty diff
    await rating.settled();
    expect(calls).toEqual(['replace', 'diff:3/0', 'diff:0/0']);
    // The stored bill is what a full rating gives now: a dry-run re-rate finds nothing to change.
    const check = await rating.rerate({ isDryRun: true });
    expect(check.ok && check.value.changed).toEqual([]);
    expect(check.ok && check.value.unchanged).toBe(6);
  });

  it('after a start that found the stored rating current, the first live rating writes a diff against it', async () => {
    const calls = recordRatingWrites({ withFindings: true });
    await makeService();
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.s1'));
    // A user who never answers: a message left pending (its row read back too).
    await ingest([
      {
        kind: 'outbound',
        at: '2025-07-10T09:00:00Z',
        waba: 'W2',
        business: 'PN2',
        user: '919876543212',
        id: 'wamid.p1',
        template: 'marketing',
      },
    ]);
    await rating.settled();
    await rating.close();
    // A restart: a new service, nothing of the last one's memory.
    await makeService();
    expect(await rating.rateStale()).toEqual({ rated: 0, current: 2 });
    rating.markDirty(['W1', 'W2']); // nothing new: nothing to write but the findings
    await rating.settled();
    await ingest(conversationLines('W1', 'PN1', '919876543211', 'wamid.s2'));
    await rating.settled();
    expect(calls.slice(2)).toEqual(['diff:0/0+findings', 'diff:0/0+findings', 'diff:3/0+findings']);
    // After a re-rate under the service's own rules and cards, the same: a diff against what it stored.
    expect((await rating.rerate({ wabas: ['W1'] })).ok).toBe(true);
    rating.markDirty(['W1']);
    await rating.settled();
    expect(calls.slice(5)).toEqual(['replace', 'diff:0/0+findings']);
    // The re-rate of W1 left W2's portfolio as its last live rating wrote it: still a plain diff.
    rating.markDirty(['W2']);
    await rating.settled();
    expect(calls.slice(7)).toEqual(['diff:0/0']);
    const check = await rating.rerate({ isDryRun: true });
    expect(check.ok && check.value.changed).toEqual([]);
    expect(check.ok && check.value.unchanged).toBe(6);
    expect(await store.listPending({})).toHaveLength(1);
  });

  it('waits a multiple of the last rating time before the next live one; settled() does not wait', async () => {
    slowRatingWrites();
    await makeService(undefined, 20); // next live rating ≥ 20 × 60 ms after the last
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.t1'));
    await rating.settled();
    await ingest(conversationLines('W1', 'PN1', '919876543211', 'wamid.t2'));
    await new Promise((resolve) => setTimeout(resolve, 400)); // debounce (50 ms) long past
    expect(await store.listRatings(10)).toHaveLength(1);
    await rating.settled();
    expect(await store.listRatings(10)).toHaveLength(2);
    expect((await store.queryUnits({}, { limit: 100 })).units).toHaveLength(6);
  });

  it('stops holding back once arrivals have been quiet for a while: the bill catches up without a read', async () => {
    slowRatingWrites();
    await makeService(undefined, 100, [], { quietMs: 400 }); // throttle ≥ 6 s; quiet after 400 ms
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.q1'));
    await rating.settled();
    // Arrivals every 50 ms for 500 ms: never quiet, so the throttle holds the next rating back.
    for (let i = 0; i < 10; i++) {
      await ingest(
        conversationLines('W1', 'PN1', `9198765433${String(i).padStart(2, '0')}`, `wamid.q2.${i}`),
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await store.listRatings(10)).toHaveLength(1);
    // Then nothing more: once quiet, the rating runs by itself, long before the throttle's 6 s.
    for (let waited = 0; waited < 3_000 && (await store.listRatings(10)).length < 2; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await store.listRatings(10)).toHaveLength(2);
    expect((await store.queryUnits({}, { limit: 100 })).units).toHaveLength(33);
  });
});

describe('on-demand ratings take the clients in turn', () => {
  /** The in-process rater, each whole-scope rating held until released (live ratings never are). */
  function gatedRater(pricing: PricingSetup) {
    const inner = createInProcessLiveRater(store, pricing);
    const started: string[] = [];
    const gates: (() => void)[] = [];
    const rater: LiveRater = {
      ...inner,
      async rateScope(scope, options) {
        started.push(options.trace?.user ?? 'rerate');
        await new Promise<void>((resolve) => gates.push(resolve));
        return inner.rateScope(scope, options);
      },
    };
    /** Releases the rating waiting longest, once one is waiting. */
    const releaseNext = async () => {
      while (gates.length === 0) await new Promise((resolve) => setImmediate(resolve));
      gates.shift()!();
    };
    return { rater, started, releaseNext };
  }

  it("one client's pile of explanations delays another's by one; live ratings wait for none of them", async () => {
    const pricing = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
    if (!pricing.ok) throw new Error(pricing.error);
    const gated = gatedRater(pricing.value);
    await makeService(undefined, 0, [], { liveRater: gated.rater, perClientLimit: 4 });
    await ingest(conversationLines('W1', 'PN1', '919800000001', 'a'));
    await ingest(conversationLines('W2', 'PN2', '919800000002', 'b'));
    await rating.settled();
    const heavy = ['h1', 'h2', 'h3', 'h4'].map((user) => rating.explain({ user, client: 'heavy' }));
    await new Promise((resolve) => setImmediate(resolve));
    const light = rating.explain({ user: '919800000002', client: 'light' });
    // A fifth from the heavy client is refused at once; the light one is not.
    await expect(rating.explain({ user: 'h5', client: 'heavy' })).rejects.toBeInstanceOf(ClientBusyError);
    // An arrival meanwhile is rated and stored while every explanation waits.
    await ingest(conversationLines('W2', 'PN2', '919800000003', 'c'));
    await rating.settled();
    expect((await store.queryUnits({ user: '919800000003' }, { limit: 10 })).units.length).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) await gated.releaseNext();
    const [answered] = await Promise.all([light, ...heavy]);
    expect(answered.units.length).toBeGreaterThan(0);
    expect(gated.started).toEqual(['h1', '919800000002', 'h2', 'h3', 'h4']);
    // Its pile answered, the heavy client may ask again.
    const again = rating.explain({ user: 'h6', client: 'heavy' });
    await gated.releaseNext();
    expect((await again).units).toEqual([]);
  });
});

describe('a rater of their own for on-demand ratings', () => {
  it('sends explain, re-rate, reconciliation and estimate there and live ratings to the live one; closes both', async () => {
    const pricing = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
    if (!pricing.ok) throw new Error(pricing.error);
    const calls: string[] = [];
    const spied = (name: string): LiveRater => {
      const inner = createInProcessLiveRater(store, pricing.value);
      return {
        ...inner,
        rate: (scope) => (calls.push(`${name}.rate`), inner.rate(scope)),
        rateScope: (scope, options) => (calls.push(`${name}.rateScope`), inner.rateScope(scope, options)),
        reconcile: (job) => (calls.push(`${name}.reconcile`), inner.reconcile(job)),
        estimate: (job) => (calls.push(`${name}.estimate`), inner.estimate(job)),
        close: () => (calls.push(`${name}.close`), inner.close()),
      };
    };
    await makeService(undefined, 0, [], { liveRater: spied('live'), onDemandRater: spied('onDemand') });
    await ingest(conversationLines('W1', 'PN1', '919800000001', 'a'));
    await rating.settled();
    await rating.explain({ user: '919800000001', client: 'c' });
    await rating.rerate({ isDryRun: true, client: 'c' });
    await rating.reconcile('c', { scope: ['W1'], countedWabas: ['W1'] });
    await rating.estimate('c', {
      scope: ['W1'],
      recipients: { recipients: [], invalid: [] },
      request: { template: 'utility', atMs: nowMs },
    });
    await rating.close();
    expect(calls).toEqual([
      'live.rate',
      'onDemand.rateScope',
      'onDemand.rateScope',
      'onDemand.reconcile',
      'onDemand.estimate',
      'live.close',
      'onDemand.close',
    ]);
  });
});

describe('ratings of a large store', () => {
  // `Math.min(...values)` and `push(...rows)` pass every element as an argument: past about 120,000 the stack
  // overflowed (RangeError). A start marks every stored WABA for its first rating; a portfolio's re-rate
  // gathers all its units and messages.
  it('takes 200,000 WABAs marked at once: the lag is said, and the batch is rated (here, kept for the retry)', async () => {
    await makeService(undefined, undefined, [], { debounceMs: 60_000 });
    rating.markDirty(Array.from({ length: 200_000 }, (_, i) => `W${i}`));
    nowMs += 3_000;
    expect(rating.lagSeconds()).toBe(3);
    // A store that fails every rating at once: the batch must come back for the retry, not be lost on the way.
    await store.close();
    await rating.settled();
    expect(rating.lagSeconds()).toBe(3);
    expect(logger.lines.at(-1)).toContain('live rating failed; will retry');
  });

  it('re-rates a portfolio holding 150,000 messages', async () => {
    await makeService();
    const sent = Array.from({ length: 150_000 }, (_, i) => ({
      kind: 'outbound',
      at: new Date(Date.parse('2025-08-01T00:00:00Z') + i * 10_000).toISOString(),
      waba: 'W1',
      business: 'PN1',
      user: '919876543210',
      id: `wamid.big${i}`,
      template: 'marketing',
    }));
    await storeUnrated(sent);
    const report = await rating.rerate({ isDryRun: true, client: 'c' });
    expect(report.ok).toBe(true);
  }, 60_000);
});

describe('diffRating', () => {
  const unit = (id: string, overrides: Partial<BillableUnit> = {}): BillableUnit =>
    billableUnit({
      id,
      user: '1',
      openedAtMs: 1,
      messages: [`wamid.${id}`],
      rateMicros: 10,
      amountMicros: 10,
      rateCard: 'c',
      rule: 'R',
      ...overrides,
    });

  it('upserts new and changed units by content, deletes vanished ones, keeps findings unless changed', () => {
    const before = storedRatingOf({
      units: [unit('a'), unit('b'), unit('c', { tier: { count: 1, band: '1:', month: '2025-08' } })],
      pending: [{ id: 'p1', waba: 'W1', business: 'PN1', user: '1', sentAtMs: 1 }],
      findings: [],
    });
    const diff = diffRating(before, {
      units: [unit('a'), unit('c', { tier: { count: 2, band: '1:', month: '2025-08' } }), unit('d')],
      pending: [{ id: 'p1', waba: 'W1', business: 'PN1', user: '1', sentAtMs: 1 }],
      findings: [],
    });
    expect(diff.units.upsert.map((u) => u.id)).toEqual(['c', 'd']);
    expect(diff.units.delete).toEqual([{ waba: unit('b').waba, id: 'b' }]);
    expect(diff.pending).toEqual({ upsert: [], delete: [] });
    expect(diff.findings).toBeUndefined();
    expect(
      diffRating(before, { units: [], pending: [], findings: [{ code: 'NO_RATE', message: 'y' }] }).findings,
    ).toEqual([{ code: 'NO_RATE', message: 'y' }]);
  });

  it('compares every field, arrays and objects by value, an absent field equal to undefined', () => {
    expect(sameRecord(unit('a'), unit('a'))).toBe(true);
    expect(sameRecord(unit('a'), unit('a', { messages: ['wamid.a', 'wamid.x'] }))).toBe(false);
    expect(sameRecord(unit('a'), unit('a', { closedAtMs: 5 }))).toBe(false);
    expect(sameRecord(unit('a', { closedAtMs: 5 }), unit('a'))).toBe(false);
    expect(sameRecord(unit('a'), { ...unit('a'), isMarketInferred: undefined })).toBe(true);
    expect(sameRecord(unit('a', { isMarketInferred: true }), unit('a', { isMarketInferred: false }))).toBe(
      false,
    );
    // An object field by its fields, whatever their order (a unit read back from the store is built anew).
    const tier = { count: 1, band: '1:', month: '2025-08' };
    expect(
      sameRecord(unit('a', { tier }), unit('a', { tier: { month: '2025-08', band: '1:', count: 1 } })),
    ).toBe(true);
    expect(sameRecord(unit('a', { tier }), unit('a', { tier: { ...tier, count: 2 } }))).toBe(false);
    expect(sameRecord(unit('a', { tier }), unit('a'))).toBe(false);
    expect(sameRecord(unit('a'), unit('a', { messages: ['wamid.a'] }))).toBe(true);
  });

  it('keys rows by WABA and id: one id in two WABAs is two rows', () => {
    const before = storedRatingOf({
      units: [unit('a', { waba: 'W1' }), unit('a', { waba: 'W2' })],
      pending: [
        { id: 'p1', waba: 'W1', business: 'PN1', user: '1', sentAtMs: 1 },
        { id: 'p1', waba: 'W2', business: 'PN2', user: '1', sentAtMs: 1 },
      ],
      findings: [],
    });
    const diff = diffRating(before, {
      units: [unit('a', { waba: 'W2' }), unit('a', { waba: 'W3' })],
      pending: [{ id: 'p1', waba: 'W1', business: 'PN1', user: '1', sentAtMs: 2 }],
      findings: [],
    });
    expect(diff.units.upsert.map((u) => [u.waba, u.id])).toEqual([['W3', 'a']]);
    expect(diff.units.delete).toEqual([{ waba: 'W1', id: 'a' }]);
    expect(diff.pending.upsert.map((p) => [p.waba, p.sentAtMs])).toEqual([['W1', 2]]);
    expect(diff.pending.delete).toEqual([{ waba: 'W2', id: 'p1' }]);
  });
});

describe('re-rate', () => {
  it('an event arriving while a re-rate runs is in the bill after its write, not buried under it', async () => {
    const pricing = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
    if (!pricing.ok) throw new Error(pricing.error);
    const inner = createInProcessLiveRater(store, pricing.value);
    // The re-rate's rating reads and rates the stored events, then waits: an arrival comes meanwhile.
    let rated!: () => void;
    const hasRated = new Promise<void>((resolve) => (rated = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const rater: LiveRater = {
      ...inner,
      async rateScope(scope, options) {
        const output = await inner.rateScope(scope, options);
        rated();
        await released;
        return output;
      },
    };
    await makeService(undefined, 0, [], { liveRater: rater });
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.before'));
    await rating.settled();
    const rerating = rating.rerate({ asOfRules: 'CBP-2024-11' });
    await hasRated;
    await ingest(conversationLines('W1', 'PN1', '919876543211', 'wamid.during'));
    await rating.settled(); // the live rating of the arrival is stored…
    release(); // …then the re-rate writes what it rated before the arrival
    const report = await rerating;
    expect(report.ok).toBe(true);
    await rating.settled();
    const messages = (await store.queryUnits({}, { limit: 100 })).units.flatMap((unit) => unit.messages);
    expect(messages).toContain('wamid.during.o1');
    expect(messages).toContain('wamid.before.o1');
  });

  it("a re-rate written after a live rating made later is the newest rating: a start judges the bill by the re-rate's read", async () => {
    const pricing = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
    if (!pricing.ok) throw new Error(pricing.error);
    const inner = createInProcessLiveRater(store, pricing.value);
    const gate = () => {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      return { open, opened };
    };
    const rerateRated = gate();
    const rerateGoes = gate();
    const liveRated = gate();
    const liveGoes = gate();
    const rerateRecordMade = gate();
    let liveRatings = 0;
    const rater: LiveRater = {
      ...inner,
      async rate(scope, options) {
        liveRatings += 1;
        // The live rating after the re-rate's write (of the arrival during it) fails: the service stops there.
        if (liveRatings === 3) throw new Error('the store went away');
        const rated = await inner.rate(scope, options);
        if (liveRatings === 2) {
          liveRated.open();
          await liveGoes.opened;
        }
        return rated;
      },
      async rateScope(scope, options) {
        const output = await inner.rateScope(scope, options);
        rerateRated.open();
        await rerateGoes.opened;
        return output;
      },
    };
    await makeService(undefined, 0, [], { liveRater: rater, retries: false });
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.before'));
    await rating.settled();
    // The re-rate reads the events and rates them; an arrival comes, and its live rating reads it.
    const rerating = rating.rerate({});
    await rerateRated.opened;
    await ingest(conversationLines('W1', 'PN1', '919876543211', 'wamid.during'));
    const live = rating.settled();
    await liveRated.opened;
    // The re-rate makes its record (its last read of the store before is the history's newest)…
    const listRatings = store.listRatings.bind(store);
    store.listRatings = async (...args) => {
      const page = await listRatings(...args);
      setTimeout(rerateRecordMade.open, 0);
      return page;
    };
    rerateGoes.open();
    await rerateRecordMade.opened;
    store.listRatings = listRatings;
    // …then the live rating makes its own, later, and is written first: the re-rate's write follows it.
    nowMs += 1000;
    liveGoes.open();
    await live;
    expect((await rerating).ok).toBe(true);
    await rating.settled();
    await rating.close();
    // A restart: the stored units are the re-rate's, which lack the arrival; the portfolio is rated.
    await makeService();
    expect(await rating.rateStale()).toEqual({ rated: 1, current: 0 });
    const messages = (await store.queryUnits({}, { limit: 100 })).units.flatMap((unit) => unit.messages);
    expect(messages).toContain('wamid.during.o1');
  });

  it('re-rates under other rate cards (CLI paths) and reports the change', async () => {
    await makeService();
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.rr'));
    const result = await rating.rerate({
      rateCardPaths: ['data/rate-cards/usd-2024-11-01.csv'],
      isDryRun: true,
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.ratingId).toBeNull();
    expect(result.value.totals.old).not.toEqual({});
  });

  it('refuses to re-rate when the WABAs asked for or visible have no stored events, and records nothing', async () => {
    await makeService();
    for (const request of [{}, { visibleWabas: ['W1'] }, { isDryRun: true }]) {
      const result = await rating.rerate(request);
      expect(result, JSON.stringify(request)).toMatchObject({
        ok: false,
        error: { code: 'NOTHING_TO_RERATE' },
      });
    }
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.none'));
    await rating.settled();
    const ratings = (await store.listRatings(10)).length;
    const hidden = await rating.rerate({ visibleWabas: ['W2'] });
    expect(hidden).toMatchObject({ ok: false, error: { code: 'NOTHING_TO_RERATE' } });
    expect(!hidden.ok && hidden.error.message).toBe(
      'None of the WABAs this key may re-rate (W2) has stored events: nothing to re-rate.',
    );
    expect(await store.listRatings(10)).toHaveLength(ratings);
    expect((await rating.rerate({ visibleWabas: ['W1'], isDryRun: true })).ok).toBe(true);
  });

  it('fails at once, before rating or refusing anything, when the store takes no writes (a dry run still runs)', async () => {
    const storeHealth = createStoreHealth({ clock: () => nowMs });
    await makeService(undefined, undefined, [], { storeHealth });
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.blocked'));
    await rating.settled();
    storeHealth.block('the single-writer lock was lost');
    const ratings = (await store.listRatings(10)).length;
    await expect(rating.rerate({})).rejects.toThrow('the single-writer lock was lost');
    await expect(rating.rerate({ visibleWabas: ['W2'] })).rejects.toThrow('the single-writer lock was lost');
    expect((await rating.rerate({ isDryRun: true })).ok).toBe(true);
    expect(await store.listRatings(10)).toHaveLength(ratings);
  });

  it('refuses unreadable rate cards with a message naming them', async () => {
    await makeService();
    const result = await rating.rerate({ rateCardPaths: ['/nonexistent/card.csv'] });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.message).toContain('/nonexistent/card.csv');
  });
});

describe('accountBookFor', () => {
  it('keeps account_update location statements as a history over the accounts file, in time order', () => {
    const update = (atMs: number, country: string): CoreEvent => ({
      kind: 'account_update',
      atMs,
      waba: 'W1',
      event: 'BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE',
      primaryCountry: country,
    });
    const file = [{ waba: 'W1', timeZone: 'UTC', currency: 'USD', portfolio: 'W1', primaryCountry: 'US' }];
    expect(primaryCountryAt(accountBookFor(file, []).accountFor('W1'), 5)).toBe('US');
    for (const events of [
      [update(2, 'IN'), update(1, 'BR')],
      [update(1, 'BR'), update(2, 'IN')],
    ]) {
      const account = accountBookFor(file, events).accountFor('W1');
      expect([0, 1, 2, 3].map((atMs) => primaryCountryAt(account, atMs))).toEqual(['US', 'BR', 'IN', 'IN']);
    }
  });
});

describe('RatingBehindError', () => {
  it('names only the WABAs the caller may read, and counts the portfolio mates it may not', () => {
    expect(new RatingBehindError(['W1'], 1).message).toBe(
      'the rating of events already acknowledged for WABA W1 and 1 other WABA(s) of the same portfolio failed and is retried every second',
    );
    expect(new RatingBehindError([], 2).message).not.toMatch(/W\d/);
    expect(new RatingBehindError(['W1', 'W2']).message).toContain('WABAs W1, W2 failed');
  });
});

/**
 * The service's store as an older wameter left it (its ratings without this code's digest, each unit priced
 * otherwise), a new service on it, and the store's unit reads held until `release()` (a long re-rate).
 */
async function asRatedByOlderCode(): Promise<{ real: Store; release: () => void }> {
  await rating.settled();
  await rating.close();
  const raw = new Database(join(dir, 'rating.db'));
  raw.exec('UPDATE ratings SET engine_digest = NULL; UPDATE units SET amount_micros = amount_micros + 1000');
  raw.close();
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const real = store;
  store = new Proxy(real, {
    get(target, name, receiver) {
      if (name !== 'queryUnits') return Reflect.get(target, name, receiver) as unknown;
      return async (...args: Parameters<Store['queryUnits']>) => {
        await held;
        return target.queryUnits(...args);
      };
    },
  });
  await makeService();
  return { real, release };
}

describe('the re-rate after an upgrade', () => {
  it('re-rates the WABAs other rating code rated last, while reads wait and the lag counts it', async () => {
    await makeService();
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.u'));
    const { real, release } = await asRatedByOlderCode();
    const said: string[] = [];
    const upgrading = rating.upgrade((message) => said.push(message));
    let isRead = false;
    const read = rating.current().then(() => (isRead = true));
    // An arrival meanwhile is kept, not rated before the upgrade's re-rate (it would re-price unreported).
    const ratingsBefore = (await real.listRatings(100)).length;
    await ingest(conversationLines('W1', 'PN1', '919876543211', 'wamid.during'));
    await new Promise((resolve) => setTimeout(resolve, 200)); // the debounce is 50 ms
    expect(isRead).toBe(false);
    expect(await real.listRatings(100)).toHaveLength(ratingsBefore);
    nowMs += 5_000;
    expect(rating.lagSeconds()).toBe(5);
    release();
    await upgrading;
    await read;
    expect(said[0]).toMatch(/^the stored bill was rated by another version of wameter/);
    expect(said[1]).toMatch(
      // The 3 stored units changed by the upgrade, and the arrival's 3 new ones (stored before the re-rate
      // listed the events: in its "now", old null — docs/storage.md "Upgrades").
      /^re-rated after the upgrade \(rating_[^)]+\): 6 unit\(s\) changed, 0 unchanged; totals 0\.0151 USD \(3 unit\(s\)\) before/,
    );
    await rating.settled();
    const [afterwards, upgrade] = await real.listRatings(2);
    expect([afterwards!.reason, upgrade!.reason]).toEqual(['live', 'upgrade']);
    expect(rating.lagSeconds()).toBe(0);
    // Done: a second call has nothing to do.
    await rating.upgrade((message) => said.push(message));
    expect(said).toHaveLength(2);
    store = real;
  });
});

describe('a stop during the re-rate after an upgrade', () => {
  it('ends its retries: close() waits for no further attempt, and none starts after it', async () => {
    await makeService();
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.stop'));
    const { real, release } = await asRatedByOlderCode();
    // Its unit reads fail from now on (a database gone), as the re-rate reads the stored units.
    let failedReads = 0;
    store = new Proxy(real, {
      get(target, name, receiver) {
        if (name !== 'queryUnits') return Reflect.get(target, name, receiver) as unknown;
        return async () => {
          failedReads += 1;
          throw new Error('the database went away');
        };
      },
    });
    await makeService();
    release();
    const upgrading = rating.upgrade(() => undefined).catch((error: unknown) => error);
    while (failedReads === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const attempts = failedReads;
    // The first attempt failed: the service sleeps before the next (1 s, then 5 s) — and is stopped now.
    await rating.close();
    expect(failedReads).toBe(attempts);
    expect(await upgrading).toBeInstanceOf(Error);
    await new Promise((resolve) => setTimeout(resolve, 1_200)); // past the first retry's time
    expect(failedReads).toBe(attempts);
    store = real;
  });
});

describe('an arrival just before the upgrade begins', () => {
  it('is not rated before the upgrade: the live rating its debounce started waits, and nothing goes unreported', async () => {
    await makeService();
    await ingest(conversationLines('W1', 'PN1', '919876543210', 'wamid.v'));
    await ingest(conversationLines('W2', 'PN2', '919876543212', 'wamid.w'));
    const { real, release } = await asRatedByOlderCode();
    // The arrival's debounce (50 ms) starts before the upgrade does, and fires while it runs.
    await ingest(conversationLines('W1', 'PN1', '919876543211', 'wamid.x'));
    const ratingsBefore = (await real.listRatings(100)).length;
    const said: string[] = [];
    const upgrading = rating.upgrade((message) => said.push(message));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await real.listRatings(100)).toHaveLength(ratingsBefore);
    release();
    await upgrading;
    await rating.settled();
    const [afterwards, upgrade] = await real.listRatings(2);
    expect([afterwards!.reason, upgrade!.reason]).toEqual(['live', 'upgrade']);
    expect(upgrade!.wabas).toEqual(['W1', 'W2']);
    // Every stored unit the older code priced is reported as changed (W1's 3 and W2's 3), and the arrival's.
    expect(said[1]).toMatch(/: 9 unit\(s\) changed, 0 unchanged;/);
    store = real;
  });
});
