// GET /v1/graph/{version}/{waba_id}?fields=…: Meta's Graph request for a WABA's conversation_analytics and
// pricing_analytics (developers.facebook.com/documentation/business-messaging/whatsapp/analytics), answered as
// Graph answers it — `{"pricing_analytics": {"data": [{"data_points": […]}]}, "id": "…"}` — under the API key
// and WABA scoping of the other /v1 routes, with Graph's error shape for a request it cannot read.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  conversationLines,
  createDashboardService,
  createTestService,
  KEY_ALL,
  KEY_W1,
  KEY_W2,
  type TestService,
} from '../../test/server-kit.js';

let service: TestService;
afterEach(async () => {
  await service.close();
});

beforeEach(async () => {
  service = await createTestService();
  await service.postEvents([
    ...conversationLines('W1', 'PN1', '919876543210', 'wamid.w1'),
    ...conversationLines('W2', 'PN2', '5511987654321', 'wamid.w2'),
  ]);
});

const RANGE = 'start(1751328000).end(1754006400)'; // July 2025, in UTC

async function json(path: string, key = KEY_ALL): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await service.get(path, key);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The data points /v1/analytics answers for the same question. */
async function analytics(query: string, key = KEY_ALL): Promise<unknown[]> {
  const { status, body } = await json(`/v1/analytics?start=1751328000&end=1754006400&${query}`, key);
  expect(status, JSON.stringify(body)).toBe(200);
  return (body as { data: { data_points: unknown[] }[] }).data[0]!.data_points;
}

/** A request without an Authorization header. */
const anonymous = (path: string) => Promise.resolve(service.app.request(path));

const graph = (fields: string, path = '/v1/graph/v21.0/W1') => `${path}?fields=${encodeURIComponent(fields)}`;

describe("GET /v1/graph/{version}/{waba_id}?fields=: Meta's Graph request", () => {
  it("answers pricing_analytics wrapped as Graph answers a field, with the WABA's id", async () => {
    const fields =
      `pricing_analytics.${RANGE}.granularity(DAILY).phone_numbers([])` +
      '.dimensions(["PRICING_CATEGORY","PRICING_TYPE","COUNTRY"])';
    const { status, body } = await json(graph(fields), KEY_W1);
    expect(status, JSON.stringify(body)).toBe(200);
    expect(Object.keys(body).sort()).toEqual(['id', 'pricing_analytics']);
    expect(body.id).toBe('W1');
    const points = (body.pricing_analytics as { data: { data_points: Record<string, unknown>[] }[] }).data[0]!
      .data_points;
    expect(points.length).toBeGreaterThan(0);
    expect(points.every((point) => typeof point.volume === 'number' && 'pricing_category' in point)).toBe(
      true,
    );
    expect(points).toEqual(
      await analytics(
        'waba=W1&metric=pricing&granularity=DAILY&dimensions=PRICING_CATEGORY,PRICING_TYPE,COUNTRY',
        KEY_W1,
      ),
    );
  });

  it('answers several fields at once, and takes the path without a version', async () => {
    const fields =
      `id,conversation_analytics.${RANGE}.granularity(MONTHLY).dimensions([CONVERSATION_CATEGORY]),` +
      `pricing_analytics.${RANGE}.granularity(MONTHLY).metric_types([VOLUME])`;
    const { status, body } = await json(graph(fields, '/v1/graph/W2'));
    expect(status, JSON.stringify(body)).toBe(200);
    expect(Object.keys(body).sort()).toEqual(['conversation_analytics', 'id', 'pricing_analytics']);
    // July 2025 is billed per message: no conversation of W2's there (below).
    expect(body.conversation_analytics).toEqual({ data: [{ data_points: [] }] });
    const pricing = (body.pricing_analytics as { data: { data_points: Record<string, unknown>[] }[] })
      .data[0]!.data_points;
    expect(pricing).toEqual(
      await analytics('waba=W2&metric=pricing&granularity=MONTHLY&metric_types=VOLUME'),
    );
    expect(pricing.every((point) => !('cost' in point))).toBe(true);
    // `id` alone: the WABA's id, as Graph answers it.
    expect((await json(graph('id', '/v1/graph/W2'))).body).toEqual({ id: 'W2' });
  });

  it("answers conversation_analytics from the conversation eras' units only, as Meta's counts conversations", async () => {
    // A user's message and a utility reply in March 2024 (conversation-based pricing), besides July 2025's.
    const line = { waba: 'W1', business: 'PN1', user: '919876543210' };
    await service.postEvents([
      { kind: 'inbound', at: '2024-03-01T10:00:00Z', ...line, id: 'wamid.c.in' },
      { kind: 'outbound', at: '2024-03-01T10:05:00Z', ...line, id: 'wamid.c.o', template: 'utility' },
      { kind: 'status', at: '2024-03-01T10:05:03Z', id: 'wamid.c.o', status: 'delivered', waba: 'W1' },
    ]);
    const range = 'start(1706745600).end(1754006400)'; // February 2024 to July 2025, in UTC
    const { status, body } = await json(
      graph(
        `conversation_analytics.${range}.granularity(MONTHLY).dimensions([CONVERSATION_TYPE]),` +
          `pricing_analytics.${range}.granularity(MONTHLY).dimensions([PRICING_TYPE])`,
      ),
    );
    expect(status, JSON.stringify(body)).toBe(200);
    type Points = { data: { data_points: Record<string, unknown>[] }[] };
    const conversation = (body.conversation_analytics as Points).data[0]!.data_points;
    // March 2024's conversation only, never July 2025's messages (FREE_CUSTOMER_SERVICE is no conversation type).
    expect(conversation.length).toBeGreaterThan(0);
    expect(conversation.every((point) => point.start === 1709251200)).toBe(true);
    const march = await json(
      '/v1/analytics?start=1709251200&end=1711929600&waba=W1&metric=conversation&granularity=MONTHLY&dimensions=CONVERSATION_TYPE',
    );
    expect(conversation).toEqual((march.body as Points).data[0]!.data_points);
    // pricing_analytics answers every message, July 2025's too.
    const pricing = (body.pricing_analytics as Points).data[0]!.data_points;
    expect(pricing.some((point) => point.start === 1751328000)).toBe(true);
  });

  it('agrees with /v1/analytics?metric=conversation, which counts conversations only too, and tells what it left out', async () => {
    // A user's message and a utility reply in March 2024 (conversation-based pricing), besides July 2025's.
    const line = { waba: 'W1', business: 'PN1', user: '919876543210' };
    await service.postEvents([
      { kind: 'inbound', at: '2024-03-01T10:00:00Z', ...line, id: 'wamid.c.in' },
      { kind: 'outbound', at: '2024-03-01T10:05:00Z', ...line, id: 'wamid.c.o', template: 'utility' },
      { kind: 'status', at: '2024-03-01T10:05:03Z', id: 'wamid.c.o', status: 'delivered', waba: 'W1' },
    ]);
    const start = 1706745600; // 2024-02-01, to July 2025's end
    const end = 1754006400;
    type Points = { data: { data_points: Record<string, unknown>[] }[]; not_counted?: unknown };
    for (const dimensions of ['CONVERSATION_TYPE', 'CONVERSATION_CATEGORY,COUNTRY,CONVERSATION_DIRECTION']) {
      const viaGraph = await json(
        graph(
          `conversation_analytics.start(${start}).end(${end}).granularity(MONTHLY).dimensions([${dimensions}])`,
        ),
        KEY_W1,
      );
      expect(viaGraph.status, JSON.stringify(viaGraph.body)).toBe(200);
      const graphPoints = (viaGraph.body.conversation_analytics as Points).data[0]!.data_points;
      // With metric=conversation, and without metric (conversation_analytics, as before): the same points.
      for (const metric of ['&metric=conversation', '']) {
        const viaQuery = await json(
          `/v1/analytics?start=${start}&end=${end}&waba=W1&granularity=MONTHLY&dimensions=${dimensions}${metric}`,
          KEY_W1,
        );
        expect(viaQuery.status, JSON.stringify(viaQuery.body)).toBe(200);
        const queryPoints = (viaQuery.body as Points).data[0]!.data_points;
        expect(queryPoints, `${dimensions}${metric}`).toEqual(graphPoints);
        // March 2024's conversation only: no message of July 2025 counted as one.
        expect(queryPoints.length).toBeGreaterThan(0);
        expect(queryPoints.every((point) => point.start === 1709251200)).toBe(true);
        expect(queryPoints.some((point) => point.conversation_type === 'FREE_CUSTOMER_SERVICE')).toBe(false);
        // July 2025's messages are not dropped without a word: their count, and where to read them.
        const july = (await analytics(
          'waba=W1&metric=pricing&granularity=MONTHLY&metric_types=VOLUME',
          KEY_W1,
        )) as Record<string, unknown>[];
        const messages = july
          .filter((point) => point.start === 1751328000)
          .reduce((sum: number, point) => sum + (point.volume as number), 0);
        expect(messages).toBeGreaterThan(0);
        expect((viaQuery.body as Points).not_counted).toEqual({
          units: messages,
          reason: expect.stringContaining('metric=pricing'),
        });
      }
      // The Graph route answers Meta's shape alone.
      expect(Object.keys(viaGraph.body.conversation_analytics as object)).toEqual(['data']);
    }
    // Over conversation-era dates only, nothing is left out: no not_counted.
    const march = await json(
      '/v1/analytics?start=1709251200&end=1711929600&waba=W1&metric=conversation&granularity=MONTHLY',
      KEY_W1,
    );
    expect(Object.keys(march.body)).toEqual(['data']);
    // metric=pricing counts every unit, as before.
    expect(Object.keys((await json(`/v1/analytics?start=${start}&end=${end}&metric=pricing`)).body)).toEqual([
      'data',
    ]);
  });

  it("takes the key as Graph takes its token from Meta's SDKs, access_token=, on /v1/graph alone", async () => {
    const fields = `pricing_analytics.${RANGE}.granularity(MONTHLY)`;
    const viaQuery = await anonymous(`${graph(fields)}&access_token=${KEY_W1}`);
    expect(viaQuery.status).toBe(200);
    expect(await viaQuery.json()).toEqual((await json(graph(fields), KEY_W1)).body);
    // Scoped as the header's key: W1's key never reads W2.
    const other = await anonymous(`${graph(fields, '/v1/graph/v21.0/W2')}&access_token=${KEY_W1}`);
    expect(other.status).toBe(403);
    // An unknown token is 401 (Graph's code 190); other routes never read it (401 without the header).
    const unknown = await anonymous(`${graph(fields)}&access_token=nope`);
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toMatchObject({ error: { code: 190 } });
    const analyticsRoute = await anonymous(
      `/v1/analytics?start=1751328000&end=1754006400&access_token=${KEY_ALL}`,
    );
    expect(analyticsRoute.status).toBe(401);
  });

  it("answers the rate limit's refusal in Graph's shape (code 4), Retry-After kept", async () => {
    await service.close();
    service = await createTestService({ rateLimit: { perSecond: 1, burst: 2 } });
    const path = graph('id');
    const statuses: number[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 3; i++) {
      const response = await service.get(path, KEY_W1);
      statuses.push(response.status);
      if (response.status === 429) refused = response;
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(refused!.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await refused!.json()).toMatchObject({
      error: { type: 'OAuthException', code: 4, wameter_code: 'RATE_LIMITED' },
    });
  });

  it("is read back by wameter's own reader of Meta's answers: the reconciliation finds it agrees with the bill", async () => {
    await service.close();
    service = await createDashboardService();
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.w1'));
    const fields = `pricing_analytics.${RANGE}.granularity(DAILY).dimensions([COUNTRY,PRICING_CATEGORY])`;
    const answer = await json(graph(fields), KEY_W1);
    expect(answer.status).toBe(200);
    const response = await service.app.request('/v1/reconciliation', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_W1}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ analytics: answer.body }),
    });
    const body = (await response.json()) as {
      checked: { buckets: number };
      differences: { bucket?: unknown }[];
      analytics: { waba: string; kind: string; totals: unknown[] };
    };
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.analytics).toMatchObject({ waba: 'W1', kind: 'pricing_analytics' });
    expect(body.checked.buckets).toBeGreaterThan(0);
    expect(body.differences.filter((difference) => difference.bucket !== undefined)).toEqual([]);
    expect(body.analytics.totals).toEqual([
      expect.objectContaining({ waba: 'W1', difference: { units: 0, amount: '0' } }),
    ]);
  });

  it('reads a list item holding commas as the items it names, as the guide writes ["COUNTRY,PHONE"]', async () => {
    const split = await json(
      graph(
        `pricing_analytics.${RANGE}.granularity(MONTHLY).dimensions(["PRICING_CATEGORY","COUNTRY,PHONE"])`,
      ),
    );
    const apart = await json(
      graph(
        `pricing_analytics.${RANGE}.granularity(MONTHLY).dimensions(["PRICING_CATEGORY","COUNTRY","PHONE"])`,
      ),
    );
    expect(split.status, JSON.stringify(split.body)).toBe(200);
    expect(split.body).toEqual(apart.body);
  });

  it("never answers another client's WABA: 403 in Graph's error shape, no data", async () => {
    const fields = `pricing_analytics.${RANGE}.granularity(MONTHLY)`;
    const answers: string[] = [];
    for (const path of ['/v1/graph/v21.0/W2', '/v1/graph/W2', '/v1/graph/v21.0/W9']) {
      const { status, body } = await json(graph(fields, path), KEY_W1);
      expect(status, path).toBe(403);
      expect(Object.keys(body)).toEqual(['error']);
      // Meta's code and subcode for an object that "does not exist, cannot be loaded due to missing permissions,
      // or does not support this operation": one answer for the three.
      expect(body.error).toMatchObject({ type: 'OAuthException', code: 100, error_subcode: 33 });
      expect((body.error as { message: string }).message).toContain('W');
      answers.push(JSON.stringify(body).replace(/W[29]/g, 'W?'));
    }
    // W2 (another client's, with events) and W9 (no such WABA) are refused alike, word for word but the id:
    // W1's key cannot tell that W2 exists.
    expect(new Set(answers).size).toBe(1);
    expect((await json(graph(fields, '/v1/graph/v21.0/W1'), KEY_W2)).status).toBe(403);
    // Without a key: 401, as every /v1 route.
    const keyless = await service.get(graph(fields), '');
    expect(keyless.status).toBe(401);
    // Its headers as every route's 401.
    expect(keyless.headers.get('www-authenticate')).toBe('Bearer realm="wameter"');
    expect(keyless.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await keyless.json()).toMatchObject({
      error: { type: 'OAuthException', code: 190, wameter_code: 'UNAUTHENTICATED' },
    });
  });

  it("answers a path it does not have in Graph's error shape (404, code 100), alike whatever the WABA", async () => {
    const fields = `pricing_analytics.${RANGE}.granularity(MONTHLY)`;
    const answers = new Set<string>();
    for (const waba of ['W1', 'W2', 'W9']) {
      for (const path of [
        `/v1/graph/v23.0/${waba}/foo`,
        // Meta's edge form: wameter answers the fields form only.
        graph(fields, `/v1/graph/v23.0/${waba}/pricing_analytics`),
        `/v1/graph/v23.0/${waba}/phone_numbers/extra`,
      ]) {
        const response = await service.get(path, KEY_W1);
        expect(response.status, path).toBe(404);
        expect(response.headers.get('content-type'), path).toMatch(/^application\/json/);
        const body = (await response.json()) as { error: Record<string, unknown> };
        expect(Object.keys(body), path).toEqual(['error']);
        expect(body.error, path).toEqual({
          message: expect.stringContaining('?fields='),
          type: 'OAuthException',
          code: 100,
          error_subcode: 33,
          wameter_code: 'NOT_FOUND',
        });
        answers.add(`${response.status} ${JSON.stringify(body)}`);
      }
    }
    // One answer for the key's own WABA, another client's and one that does not exist: nothing told of W2.
    expect(answers.size).toBe(1);
    // Without a key: 401 (code 190) before anything else, as every /v1 path.
    const keyless = await anonymous('/v1/graph/v23.0/W2/foo');
    expect(keyless.status).toBe(401);
    expect(await keyless.json()).toMatchObject({ error: { code: 190, wameter_code: 'UNAUTHENTICATED' } });
    // HEAD, as GET without the body.
    const head = await service.app.request('/v1/graph/v23.0/W1/foo', {
      method: 'HEAD',
      headers: { Authorization: `Bearer ${KEY_W1}` },
    });
    expect(head.status).toBe(404);
    expect(await head.text()).toBe('');
    // A method the route does not take: 405 with Allow, in Graph's shape too.
    const post = await service.app.request('/v1/graph/v21.0/W1?fields=id', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_W1}` },
    });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toContain('GET');
    expect(await post.json()).toMatchObject({
      error: { type: 'OAuthException', code: 100, wameter_code: 'METHOD_NOT_ALLOWED' },
    });
  });

  it("refuses a request it cannot read with Graph's error shape (code 100), naming what is wrong", async () => {
    const cases: Array<[string, string]> = [
      [graph(`analytics.${RANGE}.granularity(DAY)`), 'analytics'],
      [graph(`pricing_analytics.${RANGE}.conversation_types([REGULAR])`), 'conversation_types'],
      [graph(`pricing_analytics.${RANGE}.granularity(WEEKLY)`), 'granularity'],
      [graph('pricing_analytics.end(1754006400)'), 'start'],
      [graph(`pricing_analytics.${RANGE}.dimensions([PHONE,PHONE])`), 'dimensions'],
      [graph(`pricing_analytics.${RANGE}.pricing_types([PROMO])`), 'pricing_types'],
      [graph(`pricing_analytics.${RANGE}.granularity(DAILY`), 'not closed'],
      ['/v1/graph/v21.0/W1', 'fields'],
      [graph(`pricing_analytics.${RANGE}`, '/v1/graph/latest/W1'), 'no Graph API version'],
      [graph(`pricing_analytics.${RANGE}`) + '&limit=5', 'limit'],
    ];
    for (const [path, words] of cases) {
      const { status, body } = await json(path);
      expect(status, path).toBe(400);
      expect(Object.keys(body), path).toEqual(['error']);
      const error = body.error as Record<string, unknown>;
      expect(error, path).toMatchObject({ type: 'OAuthException', code: 100 });
      expect(error.message, path).toContain(words);
    }
  });
});
