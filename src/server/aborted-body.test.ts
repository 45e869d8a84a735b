// A client that closes its connection before sending the whole body (Content-Length: 1000, then 10 bytes,
// then gone) gets a quiet outcome, over a real TCP socket to the real Node server: nothing stored, one info
// line (no error), no store error, the in-flight body budget given back, and the server still serving.

import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { signMetaBody } from '../ingest/signature.js';
import {
  createTestService,
  fixture,
  KEY_ALL,
  SECRET,
  testConfig,
  type TestService,
} from '../../test/server-kit.js';
import { createMemoryLogger } from './logger.js';
import { startServer } from './main.js';
import { attachBodyLease, BodyBudget, IncompleteBodyError, readRawBody } from './read-body.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** `app` on a loopback port of a real Node HTTP server (as main.ts serves it); closed after the test. */
async function listen(fetch: Parameters<typeof serve>[0]['fetch']) {
  const server = await new Promise<Server>((resolve) => {
    const started = serve({ fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started as Server));
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Sends `head` (headers ending in a blank line) and `bytes` of the body, waits for `isHeld()`, then cuts. */
async function sendAndCut(port: number, head: string, bytes: Uint8Array, isHeld: () => boolean) {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(head);
  socket.write(bytes);
  await until(isHeld, 'the server to hold the first bytes of the body');
  socket.destroy();
}

function inFlightBytes(service: TestService): number {
  const line = /^request_bodies_in_flight_bytes (\d+)$/m.exec(service.metrics.render());
  return Number(line?.[1]);
}

type LogLine = Record<string, unknown> & { level: string; msg: string };
const logLines = (service: TestService) => service.logs.map((line) => JSON.parse(line) as LogLine);

describe.each([
  {
    route: '/webhooks/whatsapp',
    body: fixture('meta-docs/status_delivered_marketing_pmp_bsuid_contacts.json'),
    headers: (body: Buffer) => ({ 'X-Hub-Signature-256': signMetaBody(body, SECRET) }),
  },
  {
    route: '/v1/events',
    body: Buffer.from(
      `${JSON.stringify({ kind: 'inbound', at: '2025-07-10T09:00:00Z', waba: 'W1', business: 'PN1', user: '919876543210', id: 'wamid.cut' })}\n`,
    ),
    headers: () => ({ Authorization: `Bearer ${KEY_ALL}` }),
  },
])('POST $route whose client closes the connection mid-body', ({ route, body, headers }) => {
  it('stores nothing, logs one info line and no error, counts no store error, and gives its bytes back', async () => {
    const service = await createTestService();
    cleanups.push(() => service.close());
    const port = await listen(service.app.fetch);
    const head = [
      `POST ${route} HTTP/1.1`,
      'Host: 127.0.0.1',
      'Content-Type: application/json',
      'Content-Length: 1000',
      ...Object.entries(headers(body)).map(([name, value]) => `${name}: ${value}`),
      '',
      '',
    ].join('\r\n');

    await sendAndCut(port, head, body.subarray(0, 10), () => inFlightBytes(service) === 10);
    await until(() => logLines(service).some((line) => line.msg === 'request'), 'the request log line');

    const lines = logLines(service);
    expect(lines.filter((line) => line.level === 'error')).toEqual([]);
    expect(lines).toEqual([
      {
        at: expect.any(String),
        level: 'info',
        msg: 'request body cut off by the client; nothing stored',
        method: 'POST',
        path: route,
        receivedBytes: 10,
        declaredBytes: 1000,
        requestId: expect.stringMatching(/^req_/),
      },
      expect.objectContaining({ level: 'info', msg: 'request', path: route, status: 400 }),
    ]);
    expect(inFlightBytes(service)).toBe(0);
    expect(service.metrics.value('store_errors_total')).toBe(0);
    expect(service.metrics.value('webhooks_rejected_total', { reason: 'incomplete_body' })).toBe(
      route === '/webhooks/whatsapp' ? 1 : 0,
    );
    expect(await service.store.getRawWebhook(1)).toBeUndefined();
    expect(await service.store.listEvents()).toEqual([]);

    // The server still serves: the whole body, sent again, is stored.
    const again = await fetch(`http://127.0.0.1:${port}${route}`, {
      method: 'POST',
      headers: headers(body),
      body: new Uint8Array(body),
    });
    expect(again.status).toBe(200);
    expect(await service.store.listEvents()).toHaveLength(1);
  });
});

describe('readRawBody of a request whose client left before its body was read', () => {
  it('rejects at once with IncompleteBodyError (no close event is left to wait for) and holds no byte', async () => {
    const budget = new BodyBudget(1024 * 1024);
    let isEntered = false;
    let settled: unknown;
    const app = new Hono<{ Bindings: { incoming: IncomingMessage } }>();
    app.post('/cut', async (c) => {
      isEntered = true;
      const lease = budget.open();
      attachBodyLease(c.req.raw, lease);
      // The request waits (as behind a slow middleware) until its connection is gone, then reads.
      const { incoming } = c.env;
      await until(() => incoming.destroyed, 'the request to be destroyed');
      settled = await Promise.race([
        readRawBody(c, 4096).then(
          () => 'read',
          (error: unknown) => error,
        ),
        new Promise((resolve) => setTimeout(() => resolve('never settled'), 2_000)),
      ]);
      lease.release();
      return c.body(null, 204);
    });
    const port = await listen(app.fetch);
    const head = 'POST /cut HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n';
    await sendAndCut(port, head, new Uint8Array(10), () => isEntered);
    await until(() => settled !== undefined, 'the route to read the body');
    expect(settled).toBeInstanceOf(IncompleteBodyError);
    expect(budget.inFlightBytes).toBe(0);
  });
});

describe('a body still arriving when the shutdown grace ends', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-aborted-body-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is cut by the server's shutdown, and its IncompleteBodyError says so (not the client)", async () => {
    const cuts: unknown[] = [];
    // The real server (its connection drain), with a route that reads a body as the service's routes do.
    const server = await startServer(testConfig({ db: `sqlite:${join(dir, 'grace.db')}` }), {
      logger: createMemoryLogger(),
      ratingWorkerScript: null,
      shutdownGraceMs: 300,
      extraRoutes: (app) =>
        app.post('/upload', async (c) => {
          try {
            await readRawBody(c, 4096);
          } catch (error) {
            cuts.push(error);
            throw error;
          }
          return c.body(null, 204);
        }),
    });
    const held = async (bytes: number) =>
      (await (await fetch(`${server.url}/metrics`)).text()).includes(
        `request_bodies_in_flight_bytes ${bytes}\n`,
      );
    const startUpload = async () => {
      const socket = connect(server.port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write('POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n');
      socket.write(new Uint8Array(10));
      return socket;
    };
    const untilHeld = async (bytes: number) => {
      const deadline = Date.now() + 5_000;
      while (!(await held(bytes))) {
        if (Date.now() > deadline) throw new Error(`the server never held ${bytes} body bytes`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };

    // A client that leaves: cut by the client.
    const leaving = await startUpload();
    await untilHeld(10);
    leaving.destroy();
    await until(() => cuts.length === 1, 'the first cut');
    // A client still sending when the shutdown starts, and after its grace: cut by the server.
    const slow: Socket = await startUpload();
    await untilHeld(10);
    const closed = new Promise((resolve) => slow.once('close', resolve));
    await server.close();
    await closed;
    await until(() => cuts.length === 2, 'the second cut');
    expect(cuts[0]).toBeInstanceOf(IncompleteBodyError);
    expect(cuts[0]).toMatchObject({ cutBy: 'client', receivedBytes: 10 });
    expect(cuts[1]).toBeInstanceOf(IncompleteBodyError);
    expect(cuts[1]).toMatchObject({ cutBy: 'shutdown', receivedBytes: 10 });
    expect((cuts[1] as Error).message).toMatch(/the server's shutdown cut the connection/);
  });
});

describe('a webhook whose body is still arriving when the shutdown grace ends', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-aborted-webhook-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is logged as cut by the server's shutdown, not by the client", async () => {
    const logger = createMemoryLogger();
    const server = await startServer(testConfig({ db: `sqlite:${join(dir, 'grace.db')}` }), {
      logger,
      ratingWorkerScript: null,
      shutdownGraceMs: 300,
    });
    const body = fixture('meta-docs/status_delivered_marketing_pmp_bsuid_contacts.json');
    const socket = connect(server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      [
        'POST /webhooks/whatsapp HTTP/1.1',
        'Host: 127.0.0.1',
        `Content-Length: ${body.byteLength}`,
        `X-Hub-Signature-256: ${signMetaBody(body, SECRET)}`,
        '',
        '',
      ].join('\r\n'),
    );
    socket.write(body.subarray(0, 10));
    const lines = () => logger.lines.map((line) => JSON.parse(line) as LogLine);
    const held = async () =>
      (await (await fetch(`${server.url}/metrics`)).text()).includes('request_bodies_in_flight_bytes 10\n');
    const deadline = Date.now() + 5_000;
    while (!(await held())) {
      if (Date.now() > deadline) throw new Error('the server never held the first bytes');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await server.close();
    await until(
      () => lines().some((line) => line.msg.startsWith('request body cut off')),
      'the line saying the body was cut',
    );

    expect(lines().filter((line) => line.msg.startsWith('request body cut off'))).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: "request body cut off by the server's shutdown (its grace for in-flight requests over); nothing stored",
        path: '/webhooks/whatsapp',
        receivedBytes: 10,
        declaredBytes: body.byteLength,
      }),
    ]);
  });
});
