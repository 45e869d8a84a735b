// A request with a method its route does not take is 405 METHOD_NOT_ALLOWED with an Allow header naming the
// route's methods, derived from the routes the app registers; a path no route has stays 404 NOT_FOUND.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createDashboardService,
  createTestService,
  KEY_ALL,
  type TestService,
} from '../../test/server-kit.js';
import { ERRORS } from './errors.js';
import { openApiDocument } from './openapi.js';

let service: TestService;

afterEach(async () => {
  await service?.close();
});

function send(method: string, path: string, key: string | null = KEY_ALL): Promise<Response> {
  return Promise.resolve(
    service.app.request(path, {
      method,
      headers: key === null ? {} : { Authorization: `Bearer ${key}` },
    }),
  );
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

describe('a method the route does not take', () => {
  it.each([
    ['POST', '/v1/units', 'GET, HEAD'],
    ['GET', '/v1/rerate', 'POST'],
    ['DELETE', '/v1/events', 'POST'],
    ['PUT', '/v1/reconciliation', 'GET, HEAD, POST'],
    ['DELETE', '/webhooks/whatsapp', 'GET, HEAD, POST'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['PATCH', '/v1/rate-cards/some-card', 'GET, HEAD'],
  ])('%s %s is 405 METHOD_NOT_ALLOWED, Allow: %s', async (method, path, allow) => {
    service = await createDashboardService();
    const response = await send(method, path);
    expect(response.status).toBe(405);
    expect(response.headers.get('Allow')).toBe(allow);
    const error = await errorOf(response);
    expect(error.code).toBe('METHOD_NOT_ALLOWED');
    expect(error.message).toContain(`${method} ${path}`);
    expect(error.message).toContain(allow);
  });

  it('HEAD of a route without GET is 405 too (HEAD is answered only where GET is)', async () => {
    service = await createDashboardService();
    const response = await send('HEAD', '/v1/rerate');
    expect(response.status).toBe(405);
    expect(response.headers.get('Allow')).toBe('POST');
  });

  it('is answered the same without the dashboard mounted (no GET catch-all)', async () => {
    service = await createTestService();
    const response = await send('GET', '/v1/rerate');
    expect(response.status).toBe(405);
    expect(response.headers.get('Allow')).toBe('POST');
  });

  it('on every route the OpenAPI document describes, with the methods it lists (HEAD implied by GET)', async () => {
    service = await createDashboardService();
    const paths = openApiDocument.paths as Record<string, Record<string, unknown>>;
    for (const [template, operations] of Object.entries(paths)) {
      const path = template.replace(/\{[^}]+\}/g, 'x');
      const listed = Object.keys(operations).map((method) => method.toUpperCase());
      const allowed = listed.includes('GET') ? [...listed, 'HEAD'] : listed;
      const expected = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => allowed.includes(m));
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => !allowed.includes(m))) {
        const response = await send(method, path);
        expect(response.status, `${method} ${path}`).toBe(405);
        expect(response.headers.get('Allow'), `${method} ${path}`).toBe(expected.join(', '));
      }
    }
  });

  it('on /v1, the API key is checked first: without one it is 401', async () => {
    service = await createDashboardService();
    expect((await send('POST', '/v1/units', null)).status).toBe(401);
  });
});

describe('a path no route has', () => {
  it.each([
    ['GET', '/v1/nothing'],
    ['POST', '/v1/nothing'],
    ['DELETE', '/v1/units/extra'],
    ['POST', '/v1/units/'],
    ['POST', '/no/such/path'],
    ['GET', '/webhooks/other'],
  ])('%s %s stays 404 NOT_FOUND, without Allow', async (method, path) => {
    service = await createDashboardService();
    const response = await send(method, path);
    expect(response.status).toBe(404);
    expect(response.headers.get('Allow')).toBeNull();
    expect((await errorOf(response)).code).toBe('NOT_FOUND');
  });
});

describe('the error table of docs/service.md', () => {
  it('lists every code of the catalogue with its status (METHOD_NOT_ALLOWED, FORBIDDEN_WEBHOOK_WABA)', () => {
    const docs = readFileSync(join(import.meta.dirname, '../../docs/service.md'), 'utf8');
    for (const [code, { status }] of Object.entries(ERRORS)) {
      expect(docs, code).toMatch(new RegExp(`^\\| [^|]*\`${code}\`[^|]*\\| ${status} \\|`, 'm'));
    }
  });
});
