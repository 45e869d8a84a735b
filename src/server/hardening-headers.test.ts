// Every /v1 answer — JSON, CSV, the dashboard's, and every refusal (401, 404, 400, 413, 429) — is billing data
// or about it: never sniffed into another type, never kept by a cache (docs/service.md, "Security model").
// Error answers of the other routes say the same.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  KEY_ALL,
  KEY_W1,
  conversationLines,
  createTestService,
  fixture,
  type TestService,
} from '../../test/server-kit.js';
import type { ServiceConfig } from './config.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { createMemoryLogger } from './logger.js';
import { loadPricingSetup } from './pricing-setup.js';

let service: TestService;

beforeEach(async () => {
  service = await createTestService({ rateLimit: { perSecond: 1, burst: 40 } });
  const pricing = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
  if (!pricing.ok) throw new Error(pricing.error);
  const clock = () => service.clock.nowMs;
  registerDashboardRoutes(service.app, {
    store: service.store,
    config: { bodyLimitBytes: 1024 } as ServiceConfig,
    clock,
    logger: createMemoryLogger(clock),
    rating: service.rating,
    pricing: pricing.value,
  });
  await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.h'));
});

afterEach(async () => {
  await service.close();
});

const request = (path: string, init: RequestInit = {}, key: string | null = KEY_ALL) =>
  Promise.resolve(
    service.app.request(path, {
      ...init,
      headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...(init.headers ?? {}) },
    }),
  );

function expectHardened(response: Response, what: string): void {
  expect(response.headers.get('X-Content-Type-Options'), what).toBe('nosniff');
  expect(response.headers.get('Cache-Control'), what).toBe('no-store');
}

describe('hardening headers', () => {
  it('every /v1 answer says nosniff and no-store: JSON, CSV, the dashboard routes, and every refusal', async () => {
    const answers: [string, number, Response][] = [
      ['units', 200, await request('/v1/units')],
      ['totals', 200, await request('/v1/totals')],
      ['CSV', 200, await request('/v1/units.csv')],
      ['explain', 200, await request('/v1/explain?user=919876543210')],
      ['ratings', 200, await request('/v1/ratings')],
      ['dashboard accounts', 200, await request('/v1/dashboard/accounts')],
      [
        'estimate',
        200,
        await request('/v1/estimate', {
          method: 'POST',
          body: JSON.stringify({ phones: ['919876543210'], template: 'utility', waba: 'W1' }),
        }),
      ],
      ['no key', 401, await request('/v1/totals', {}, null)],
      ['unknown path', 404, await request('/v1/nothing-here')],
      ['bad parameter', 400, await request('/v1/totals?catgory=marketing')],
      ["another client's WABA", 403, await request('/v1/totals?waba=W2', {}, KEY_W1)],
      [
        'body too large',
        413,
        await request('/v1/estimate', { method: 'POST', body: JSON.stringify({ csv: 'x'.repeat(4096) }) }),
      ],
      ['events', 200, await request('/v1/events', { method: 'POST', body: 'x' })],
    ];
    for (const [what, status, response] of answers) {
      expect(response.status, what).toBe(status);
      expectHardened(response, what);
    }
    expect(answers.find(([what]) => what === 'CSV')![2].headers.get('Content-Type')).toContain('text/csv');
  });

  it('a rate-limited /v1 request (429) says the same', async () => {
    let limited: Response | undefined;
    for (let i = 0; i < 60 && limited === undefined; i++) {
      const response = await request('/v1/totals');
      if (response.status === 429) limited = response;
    }
    expect(limited?.status).toBe(429);
    expectHardened(limited!, '429');
  });

  it('error answers of the other routes say nosniff and no-store too; the dashboard files keep their own caching', async () => {
    const unsigned = await service.app.request('/webhooks/whatsapp', {
      method: 'POST',
      body: new Uint8Array(fixture('pywa/status_sent.json')),
    });
    expect(unsigned.status).toBe(401);
    expectHardened(unsigned, 'unsigned webhook');
    const missing = await service.app.request('/no-such-page.html');
    expect(missing.status).toBe(404);
    expectHardened(missing, 'missing page');
    const page = await service.app.request('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('Cache-Control')).toBe('no-cache');
    expect(page.headers.get('X-Content-Type-Options')).toBe('nosniff');
  });
});
