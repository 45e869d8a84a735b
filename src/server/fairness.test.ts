import { afterEach, describe, expect, it } from 'vitest';
import {
  conversationLines,
  createTestService,
  KEY_ALL,
  KEY_W1,
  type TestService,
} from '../../test/server-kit.js';
import type { ServiceConfig } from './config.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { createInProcessLiveRater, type LiveRater } from './live-rater.js';
import { KeptExports } from './on-demand.js';
import { createMemoryLogger } from './logger.js';
import { loadPricingSetup } from './pricing-setup.js';

// The HTTP side of the on-demand ratings' queue (fair-queue.ts): a key past its limit of explain, re-rate,
// reconciliation and estimate requests is refused 429 at once, and another key is not.

let service: TestService | undefined;
afterEach(async () => {
  await service?.rating.close();
  await service?.store.close();
  service = undefined;
});

/** The service's own rater, each on-demand rating held until `release()` (live ratings never are). */
function heldRatings() {
  const gates: (() => void)[] = [];
  const hold = () => new Promise<void>((resolve) => gates.push(resolve));
  const make = (inner: LiveRater): LiveRater => ({
    ...inner,
    rateScope: async (scope, options) => (await hold(), inner.rateScope(scope, options)),
    reconcile: async (job) => (await hold(), inner.reconcile(job)),
    estimate: async (job) => (await hold(), inner.estimate(job)),
  });
  const held = async (count: number) => {
    while (gates.length < count) await new Promise((resolve) => setImmediate(resolve));
  };
  /** Lets every held rating go, and each one that comes until `stop` is called. */
  const releaseAll = () => {
    let isStopped = false;
    void (async () => {
      while (!isStopped) {
        gates.shift()?.();
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    return () => {
      isStopped = true;
    };
  };
  return { make, held, releaseAll };
}

describe('on-demand ratings over HTTP', () => {
  it('refuses a fifth explain or reconciliation of one key 429 with Retry-After, and answers another key', async () => {
    const ratings = heldRatings();
    service = await createTestService(
      {},
      { liveRater: (store, pricing) => ratings.make(createInProcessLiveRater(store, pricing)) },
    );
    const pricing = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
    if (!pricing.ok) throw new Error(pricing.error);
    const clock = () => service!.clock.nowMs;
    registerDashboardRoutes(service.app, {
      store: service.store,
      config: { bodyLimitBytes: 1024 * 1024 } as ServiceConfig,
      clock,
      logger: createMemoryLogger(clock),
      rating: service.rating,
      pricing: pricing.value,
    });
    await service.postEvents(conversationLines('W1', 'PN1', '919800000001', 'w1'));
    await service.postEvents(conversationLines('W2', 'PN2', '919800000002', 'w2'));
    const own = [1, 2, 3].map(() => service!.get('/v1/explain?user=919800000001', KEY_W1));
    own.push(service.get('/v1/reconciliation', KEY_W1));
    await ratings.held(1);
    // The other three wait their turn (the explanations first wait for the live rating of the posts).
    while (service.rating.onDemandWaiting() < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await (await service.get('/metrics')).text()).split('\n')).toContain(
      'on_demand_ratings_waiting 3',
    );
    for (const path of ['/v1/explain?user=919800000001', '/v1/reconciliation']) {
      const refused = await service.get(path, KEY_W1);
      expect(refused.status, path).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('1');
      const { error } = (await refused.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('RATE_LIMITED');
      expect(error.message).toContain('already has 4 requests that rate stored events');
    }
    const refusedEstimate = await service.app.request('/v1/estimate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_W1}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ phones: ['919800000001'], template: 'utility', at: '2025-07-20T00:00:00Z' }),
    });
    expect(refusedEstimate.status).toBe(429);
    // Another key is not refused for it: its request waits its turn and is answered.
    const other = service.get('/v1/explain?user=919800000002', KEY_ALL);
    const stop = ratings.releaseAll();
    try {
      const answers = await Promise.all([...own, other]);
      expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
      // The key's pile answered, it may ask again.
      expect((await service.get('/v1/explain?user=919800000001', KEY_W1)).status).toBe(200);
    } finally {
      stop();
    }
  });

  it('a reconciliation whose export was dropped for the limits is 503 SERVER_BUSY with Retry-After, not a store error', async () => {
    // The worker's bound on kept exports (KeptExports), met for real: two kept where one may be, so the first
    // is dropped and its reconciliation finds it gone.
    const kept = new KeptExports({ count: 1, bytes: 64 * 1024 * 1024 });
    const body = new TextEncoder().encode(JSON.stringify({ analytics: { data: [{ data_points: [] }] } }));
    kept.read(1, body);
    kept.read(2, body);
    service = await createTestService(
      {},
      {
        liveRater: (store, pricing) => ({
          ...createInProcessLiveRater(store, pricing),
          reconcile: async () => {
            kept.take(1);
            throw new Error('unreachable: the export was dropped');
          },
        }),
      },
    );
    const pricing = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
    if (!pricing.ok) throw new Error(pricing.error);
    const clock = () => service!.clock.nowMs;
    const logger = createMemoryLogger(clock);
    registerDashboardRoutes(service.app, {
      store: service.store,
      config: { bodyLimitBytes: 1024 * 1024 } as ServiceConfig,
      clock,
      logger,
      rating: service.rating,
      pricing: pricing.value,
      metrics: service.metrics,
    });
    await service.postEvents(conversationLines('W1', 'PN1', '919800000001', 'w1'));
    const response = await service.app.request('/v1/reconciliation', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY_W1}` },
      body: JSON.stringify({ analytics: { data: [{ data_points: [] }], id: 'W1' } }),
    });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('SERVER_BUSY');
    expect(error.message).toMatch(/dropped before its reconciliation's turn: .*send the request again/);
    expect(service.metrics.value('store_errors_total')).toBe(0);
    expect(logger.lines.filter((line) => line.includes('"level":"error"'))).toEqual([]);
  });
});
