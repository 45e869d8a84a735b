// The request log line and request ids (docs/service.md, "Security model", Logs): every answer carries an
// X-Request-Id (the client's, when it is a safe one, else a fresh one), and the lines logged for a request
// carry it too, with the API key's name (never the key) and the error code of a refusal.

import { afterEach, describe, expect, it } from 'vitest';
import { createTestService, KEY_ALL, webhookFixtures, type TestService } from '../../test/server-kit.js';
import { MAX_LOGGED_PATH_CHARS } from './app.js';

let service: TestService | undefined;
afterEach(async () => {
  await service?.close().catch(() => undefined);
  service = undefined;
});

type Line = Record<string, unknown> & { msg: string };
const linesOf = (logs: string[]): Line[] => logs.map((line) => JSON.parse(line) as Line);
const requestLines = (logs: string[]) => linesOf(logs).filter((line) => line.msg === 'request');

describe('request ids', () => {
  it('echoes a safe X-Request-Id from the client and logs the request under it', async () => {
    service = await createTestService();
    const response = await service.app.request('/healthz/live', {
      headers: { 'X-Request-Id': 'lb-7f3a.9:c_2' },
    });
    expect(response.headers.get('x-request-id')).toBe('lb-7f3a.9:c_2');
    expect(requestLines(service.logs).at(-1)).toMatchObject({ requestId: 'lb-7f3a.9:c_2', status: 204 });
  });

  it.each([
    ['too long', 'a'.repeat(129)],
    ['with a space', 'abc def'],
    ['with a quote and a newline escape', 'x"\\n{"level":"error"}'],
    ['empty', ''],
  ])('replaces an X-Request-Id %s by one of its own', async (_, given) => {
    service = await createTestService();
    const response = await service.app.request('/healthz/live', { headers: { 'X-Request-Id': given } });
    const id = response.headers.get('x-request-id');
    expect(id).toMatch(/^req_[0-9a-z]{20}$/);
    expect(requestLines(service.logs).at(-1)).toMatchObject({ requestId: id });
  });

  it('makes ids that do not count requests: two of one client tell it nothing of the requests between them', async () => {
    service = await createTestService();
    const idOf = async (path: string, key?: string) =>
      (await (key ? service!.get(path, key) : service!.app.request(path))).headers.get('x-request-id')!;
    const first = await idOf('/v1/units', KEY_ALL);
    // Another client's requests and Meta's deliveries, between two of this client's.
    for (let i = 0; i < 5; i++) await idOf('/no/such/path');
    const second = await idOf('/v1/units', KEY_ALL);
    // A process's part and a count (req_<12 hex><8 base-36>) told a client how many requests the service had
    // answered between two of its own: when another client's traffic (Meta's webhooks) came in.
    const commonPrefix = (a: string, b: string) => {
      let length = 0;
      while (length < a.length && a[length] === b[length]) length++;
      return length;
    };
    expect(commonPrefix(first, second)).toBeLessThan('req_'.length + 8);
    expect(second).not.toBe(first);
  });

  it('gives every request without one an id of its own, on errors too', async () => {
    service = await createTestService();
    const first = await service.app.request('/no/such/path');
    const second = await service.get('/v1/units');
    expect(first.status).toBe(404);
    expect(second.status).toBe(401);
    const ids = [first.headers.get('x-request-id'), second.headers.get('x-request-id')];
    expect(ids[0]).toMatch(/^req_/);
    expect(ids[1]).toMatch(/^req_/);
    expect(ids[0]).not.toBe(ids[1]);
    expect(requestLines(service.logs).map((line) => line.requestId)).toEqual(ids);
  });
});

describe('the request line', () => {
  it("names the API key by its name, never the key, and a refusal's error code", async () => {
    service = await createTestService();
    expect((await service.get('/v1/units', KEY_ALL)).status).toBe(200);
    expect((await service.get('/v1/units', 'not-a-key')).status).toBe(401);
    expect((await service.get('/v1/units?waba=W1&waba=W2', KEY_ALL)).status).toBe(400);
    const [ok, unauthenticated, badQuery] = requestLines(service.logs);
    expect(ok).toMatchObject({ path: '/v1/units', status: 200, apiKey: 'admin' });
    expect(ok).not.toHaveProperty('errorCode');
    expect(unauthenticated).toMatchObject({ status: 401, errorCode: 'UNAUTHENTICATED' });
    expect(unauthenticated).not.toHaveProperty('apiKey');
    expect(badQuery).toMatchObject({ status: 400, apiKey: 'admin', errorCode: 'BAD_QUERY' });
    expect(service.logs.join('\n')).not.toContain(KEY_ALL);
  });
});

describe('the log level', () => {
  it('writes the request line at info, with the error code of a 4xx and none for a success', async () => {
    service = await createTestService({ logLevel: 'info' });
    expect((await service.app.request('/healthz/live')).status).toBe(204);
    const malformed = await service.postWebhook('{not json');
    expect(malformed.status).toBe(400);
    const id = malformed.headers.get('x-request-id');
    const [live, refused] = requestLines(service.logs);
    expect(live).toMatchObject({ level: 'info', path: '/healthz/live', status: 204 });
    expect(live).not.toHaveProperty('errorCode');
    expect(refused).toMatchObject({ requestId: id, status: 400, errorCode: 'MALFORMED_JSON' });
    expect(linesOf(service.logs).find((line) => line.msg === 'unreadable webhook kept')).toMatchObject({
      level: 'warn',
      requestId: id,
    });
  });

  it("writes no request line at warn, while the request's own warnings and errors keep its id", async () => {
    service = await createTestService({ logLevel: 'warn' });
    const live = await service.app.request('/healthz/live', { headers: { 'X-Request-Id': 'probe-1' } });
    expect(live.headers.get('x-request-id')).toBe('probe-1');
    const malformed = await service.postWebhook('{not json');
    expect(malformed.status).toBe(400);
    const malformedId = malformed.headers.get('x-request-id');
    expect(malformedId).toMatch(/^req_/);
    await service.store.close(); // every write fails from here on: a 503 and its store error line
    const refused = await service.postWebhook(webhookFixtures()[0]!.body);
    expect(refused.status).toBe(503);
    const refusedId = refused.headers.get('x-request-id');
    expect(linesOf(service.logs).map((line) => [line.level, line.msg, line.requestId])).toEqual([
      ['warn', 'unreadable webhook kept', malformedId],
      ['error', 'store error', refusedId],
    ]);
    // Still measured, whatever the log writes.
    expect(service.metrics.render()).toContain(
      'http_request_duration_seconds_count{method="GET",route="/healthz/live",status="204"} 1',
    );
  });

  it('writes only errors at error, and nothing at silent', async () => {
    service = await createTestService({ logLevel: 'error' });
    expect((await service.postWebhook('{not json')).status).toBe(400);
    expect((await service.get('/v1/units')).status).toBe(401);
    expect(service.logs).toEqual([]);
    await service.close();
    service = await createTestService({ logLevel: 'silent' });
    await service.store.close();
    expect((await service.postWebhook(webhookFixtures()[0]!.body)).status).toBe(503);
    expect(service.logs).toEqual([]);
  });
});

describe('a long path', () => {
  it(`is logged cut to ${MAX_LOGGED_PATH_CHARS} characters, its length said (a client may send 16 KB of it)`, async () => {
    service = await createTestService();
    const long = `/no/${'x'.repeat(10_000)}`;
    expect((await service.app.request(long)).status).toBe(404);
    expect((await service.app.request('/no/such/path')).status).toBe(404);
    const [cut, short] = requestLines(service.logs);
    expect(cut!.path).toBe(`${long.slice(0, MAX_LOGGED_PATH_CHARS)}… (${long.length} characters)`);
    expect(short!.path).toBe('/no/such/path');
    expect(service.logs.join('\n').length).toBeLessThan(4_000);
  });
});

describe('a webhook refused because the store is unavailable', () => {
  it('counts in webhooks_rejected_total{reason="store_unavailable"}, and its error line carries the request id', async () => {
    service = await createTestService();
    await service.store.close(); // every write fails from here on, as with a database that went away
    const body = webhookFixtures()[0]!.body;
    const response = await service.postWebhook(body);
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('STORE_UNAVAILABLE');
    expect(service.metrics.value('webhooks_rejected_total', { reason: 'store_unavailable' })).toBe(1);
    expect(service.metrics.value('store_errors_total')).toBe(1);
    const id = response.headers.get('x-request-id');
    const lines = linesOf(service.logs);
    expect(lines.find((line) => line.msg === 'store error')).toMatchObject({ level: 'error', requestId: id });
    expect(requestLines(service.logs).at(-1)).toMatchObject({
      requestId: id,
      status: 503,
      errorCode: 'STORE_UNAVAILABLE',
    });
  });

  it('says the same store error once for many refused requests, then again with how many it stood for', async () => {
    const created = await createTestService();
    service = created;
    await service.store.close();
    const bodies = webhookFixtures().slice(0, 5);
    for (const { body } of bodies) expect((await service.postWebhook(body)).status).toBe(503);
    const storeErrors = () => linesOf(created.logs).filter((line) => line.msg === 'store error');
    expect(storeErrors()).toHaveLength(1);
    // Every refusal is still counted, and each request has its own line.
    expect(service.metrics.value('store_errors_total')).toBe(5);
    expect(requestLines(service.logs).filter((line) => line.status === 503)).toHaveLength(5);
    service.clock.nowMs += 10_000;
    expect((await service.postWebhook(bodies[0]!.body)).status).toBe(503);
    expect(storeErrors()).toHaveLength(2);
    expect(storeErrors()[1]).toMatchObject({ level: 'error', same_errors_unlogged: 4 });
  });
});
