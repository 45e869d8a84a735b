// The query API's checks of query parameters and of /v1/analytics's range, on the routes they guard: a
// parameter given twice, one holding U+0000, an out-of-range or oversized analytics range. Each is refused
// 400 BAD_QUERY on the routes the OpenAPI document describes — after the API key and the rate limit — and
// never on Meta's webhook routes, whose callback URL may carry parameters of the operator's.

import { afterEach, describe, expect, it } from 'vitest';
import { signMetaBody } from '../ingest/signature.js';
import {
  conversationLines,
  createTestService,
  fixture,
  KEY_ALL,
  KEY_W1,
  SECRET,
  VERIFY_TOKEN,
  type TestService,
  serviceOn as serviceOnEngine,
} from '../../test/server-kit.js';
import { openApiDocument } from './openapi.js';

let service: TestService;

afterEach(async () => {
  await service?.close();
});

const serviceOn = (engine: 'SQLite' | 'PostgreSQL') => serviceOnEngine(engine, 'wameter_routes');

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

function postWebhookTo(path: string, body: Buffer): Promise<Response> {
  return Promise.resolve(
    service.app.request(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': signMetaBody(body, SECRET) },
      body: body as BodyInit,
    }),
  );
}

describe('a query parameter given twice', () => {
  it("is no concern of the webhook POST: Meta's callback URL may repeat the operator's own parameters", async () => {
    service = await createTestService();
    const body = fixture('pywa/status_delivered.json');
    const response = await postWebhookTo('/webhooks/whatsapp?src=meta&src=app2', body);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ received: true, duplicate: false });
    expect(Buffer.from((await service.store.getRawWebhook(1))!.body)).toEqual(body);
  });

  it("nor of the handshake, for the operator's parameters; its own hub.* given twice is still refused", async () => {
    service = await createTestService();
    const handshake = `hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=31337`;
    const response = await service.get(`/webhooks/whatsapp?src=meta&src=app2&${handshake}`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('31337');
    const twice = await service.get(`/webhooks/whatsapp?${handshake}&hub.challenge=1`);
    expect(twice.status).toBe(400);
    expect(await errorOf(twice)).toMatchObject({
      code: 'BAD_QUERY',
      message: expect.stringContaining('"hub.challenge" is given more than once') as unknown,
    });
  });

  it('on /v1, without an API key, is 401 UNAUTHENTICATED: the key is checked first', async () => {
    service = await createTestService();
    const response = await service.get('/v1/units?waba=W1&waba=W2');
    expect(response.status).toBe(401);
    expect((await errorOf(response)).code).toBe('UNAUTHENTICATED');
    // With a key, refused as before.
    const keyed = await service.get('/v1/units?waba=W1&waba=W2', KEY_ALL);
    expect(keyed.status).toBe(400);
    expect((await errorOf(keyed)).message).toContain('"waba" is given more than once');
  });

  it('on /v1, takes a token of the rate limit like any request: over the limit it is 429', async () => {
    service = await createTestService({ rateLimit: { perSecond: 1, burst: 2 } });
    expect((await service.get('/v1/totals?a=1&a=2', KEY_ALL)).status).toBe(400);
    expect((await service.get('/v1/totals?a=1&a=2', KEY_ALL)).status).toBe(400);
    const limited = await service.get('/v1/totals?a=1&a=2', KEY_ALL);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('Retry-After')).toBe('1');
    expect(service.metrics.value('rate_limited_total')).toBe(1);
  });
});

describe('a query parameter holding U+0000 (NUL)', () => {
  it.each(['SQLite', 'PostgreSQL'] as const)(
    '%s: is 400 BAD_QUERY on every route that takes it, never a store error',
    async (engine) => {
      service = await serviceOn(engine);
      await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.nul'));
      for (const path of [
        '/v1/units?user=ab%00c',
        '/v1/totals?business=ab%00c',
        '/v1/units.csv?waba=W1%00',
        '/v1/units?cursor=%00',
        '/v1/explain?user=919876543210&business=PN1%00',
        '/v1/analytics?start=0&end=99999999999&business=%00',
      ]) {
        const response = await service.get(path, KEY_ALL);
        expect(response.status, path).toBe(400);
        const error = await errorOf(response);
        expect(error.code, path).toBe('BAD_QUERY');
        expect(error.message, path).toMatch(
          /Query parameter "\w+" holds the character U\+0000 \(NUL, %00 in the URL\)/,
        );
      }
      expect(service.metrics.value('store_errors_total')).toBe(0);
      // The same filters without the NUL are answered.
      expect((await service.get('/v1/units?user=919876543210', KEY_ALL)).status).toBe(200);
    },
  );

  it('is refused on every route the OpenAPI document describes, for every parameter it takes', async () => {
    service = await createTestService();
    const paths = openApiDocument.paths as unknown as Record<
      string,
      Record<string, { parameters?: readonly { name: string; in: string }[] }>
    >;
    const routes = service.app.routes.filter(
      (route) => route.method !== 'ALL' && !route.path.includes('*') && !route.path.startsWith('/webhooks'),
    );
    for (const route of routes) {
      const operation = paths[route.path]?.[route.method.toLowerCase()];
      const path = route.path.replace(':id', 'no-such-card');
      for (const { name } of (operation?.parameters ?? []).filter((p) => p.in === 'query')) {
        const response = await service.app.request(`${path}?${encodeURIComponent(name)}=a%00b`, {
          method: route.method,
          headers: { Authorization: `Bearer ${KEY_ALL}` },
        });
        expect(response.status, `${route.method} ${route.path} ?${name}`).toBe(400);
        expect((await errorOf(response)).message).toContain(`Query parameter "${name}" holds`);
      }
    }
  });

  it("is no concern of the webhook routes (the operator's parameters)", async () => {
    service = await createTestService();
    const response = await postWebhookTo('/webhooks/whatsapp?src=a%00b', fixture('pywa/status_sent.json'));
    expect(response.status).toBe(200);
  });
});

describe('/v1/analytics reads start and end as the from and to filters read instants', () => {
  it.each(['SQLite', 'PostgreSQL'] as const)(
    '%s: an end beyond the instants wameter reads is 400, never a store error',
    async (engine) => {
      service = await serviceOn(engine);
      await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.range'));
      const response = await service.get('/v1/analytics?start=1&end=99999999999999999999', KEY_ALL);
      expect(response.status).toBe(400);
      expect(await errorOf(response)).toMatchObject({
        code: 'BAD_QUERY',
        message: expect.stringMatching(
          /"end": "99999999999999999999" is outside the range of instants wameter reads/,
        ) as unknown,
      });
      expect(service.metrics.value('store_errors_total')).toBe(0);
    },
  );

  it('refuses start and end past the range, rather than comparing them rounded to the same float', async () => {
    service = await createTestService();
    const response = await service.get(
      '/v1/analytics?start=10000000000000000&end=10000000000000001',
      KEY_ALL,
    );
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toMatch(/"start": "10000000000000000" is outside the range/);
  });

  it('takes what from and to take (ISO-8601 with an offset) and still wants end after start', async () => {
    service = await createTestService();
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.iso'));
    const iso = await service.get(
      '/v1/analytics?start=2025-07-01T00:00:00Z&end=2025-08-01T00:00:00%2B05:30&metric=pricing',
      KEY_ALL,
    );
    expect(iso.status).toBe(200);
    const points = ((await iso.json()) as { data: [{ data_points: { volume: number }[] }] }).data[0]
      .data_points;
    expect(points.reduce((sum, point) => sum + point.volume, 0)).toBeGreaterThan(0);
    for (const query of ['start=100&end=100', 'start=200&end=100', 'start=100', 'end=100']) {
      const response = await service.get(`/v1/analytics?${query}`, KEY_ALL);
      expect(response.status, query).toBe(400);
      expect((await errorOf(response)).message, query).toMatch(/"start" and "end" are required/);
    }
  });
});

describe('/v1/analytics refuses a range of too many buckets', () => {
  const DAY = 86_400;
  const JULY_2025 = 1_751_328_000; // 2025-07-01T00:00:00Z

  it('answers every realistic range: DAILY over 10 years, HALF_HOUR over 6 months, MONTHLY over a century', async () => {
    service = await createTestService();
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.buckets'));
    for (const [granularity, start, end] of [
      ['DAILY', JULY_2025 - 5 * 365 * DAY, JULY_2025 + 5 * 365 * DAY],
      ['HALF_HOUR', JULY_2025 - 91 * DAY, JULY_2025 + 91 * DAY],
      ['MONTHLY', JULY_2025 - 50 * 365 * DAY, JULY_2025 + 50 * 365 * DAY],
    ] as const) {
      const response = await service.get(
        `/v1/analytics?start=${start}&end=${end}&granularity=${granularity}`,
        KEY_ALL,
      );
      expect(response.status, granularity).toBe(200);
    }
    // The document says so.
    expect(openApiDocument.paths['/v1/analytics'].get.description).toContain('At most 10000 buckets');
  });

  it.each([
    // No granularity answers 3,000 years: only a narrower range will do.
    ['DAILY', `start=0&end=99999999999`, /: narrow the range\.$/],
    [
      'HALF_HOUR',
      `start=${JULY_2025}&end=${JULY_2025 + 3 * 365 * DAY}`,
      /or use a coarser granularity \(DAILY or MONTHLY\)/,
    ],
    [
      'DAILY',
      `start=${JULY_2025 - 40 * 365 * DAY}&end=${JULY_2025 + 40 * 365 * DAY}`,
      /granularity \(MONTHLY\)/,
    ],
  ])('%s over %s is 400 BAD_QUERY saying what to do', async (granularity, range, advice) => {
    service = await createTestService();
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.buckets'));
    const response = await service.get(`/v1/analytics?${range}&granularity=${granularity}`, KEY_ALL);
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.code).toBe('BAD_QUERY');
    expect(error.message).toMatch(/ buckets \(.+\); at most 10000 are answered: narrow the range/);
    expect(error.message).toMatch(advice);
  });

  it('counts the buckets of the range left once from and to narrow it', async () => {
    service = await createTestService();
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.buckets'));
    const response = await service.get(
      '/v1/analytics?start=0&end=99999999999&granularity=HALF_HOUR&from=2025-07-01T00:00:00Z&to=2025-08-01T00:00:00Z',
      KEY_ALL,
    );
    expect(response.status).toBe(200);
  });

  it("a key's events in 1970 and in 5138 do not make DAILY over all time freeze the service", async () => {
    service = await createTestService();
    const far = (id: string, at: string) => [
      { kind: 'outbound', at, waba: 'W1', business: 'PN1', user: '919876543210', id, template: 'utility' },
      { kind: 'status', at, waba: 'W1', id, status: 'delivered' },
    ];
    const posted = await service.postEvents(
      [...far('wamid.early', '1970-01-02T00:00:00Z'), ...far('wamid.late', '5138-11-16T09:46:38Z')],
      KEY_W1,
    );
    expect(await posted.json()).toMatchObject({ accepted: 4, rejected: [] });
    expect((await service.get('/v1/totals', KEY_W1)).status).toBe(200);
    const startedMs = performance.now();
    const response = await service.get('/v1/analytics?start=0&end=99999999999&granularity=DAILY', KEY_W1);
    expect(response.status).toBe(400);
    expect(performance.now() - startedMs).toBeLessThan(1000);
    // A narrower range is answered (metric=pricing: 1970's unit is billed per notification, no conversation).
    const early = await service.get(
      `/v1/analytics?start=0&end=${10 * DAY}&granularity=DAILY&metric=pricing`,
      KEY_W1,
    );
    expect(early.status).toBe(200);
    expect(JSON.stringify(await early.json())).toContain('"start":86400');
  });
});
