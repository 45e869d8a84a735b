// The real server on a loopback port, over real HTTP, with each real store engine (SQLite file and a fresh
// PostgreSQL schema): signed webhooks from the fixtures and event lines, sent in a shuffled order with
// duplicates, end with the same units and totals as `wameter rate` over the same events.

import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rateEvents } from '../src/core/rate-events.js';
import { ratingToJson } from '../src/core/report.js';
import { parseEventValue } from '../src/ingest/parse-event.js';
import { signMetaBody } from '../src/ingest/signature.js';
import { DEFAULT_BODY_LIMIT_BYTES } from '../src/server/config.js';
import { createMemoryLogger } from '../src/server/logger.js';
import { readRawBody } from '../src/server/read-body.js';
import { startServer, type RunningServer } from '../src/server/main.js';
import { loadPricingSetup } from '../src/server/pricing-setup.js';
import { accountBookFor } from '../src/server/rating-service.js';
import {
  conversationLines,
  KEY_ALL,
  SECRET,
  testConfig,
  VERIFY_TOKEN,
  webhookFixtures,
} from './server-kit.js';
import { buildRatingWorker } from './support/build-server.js';

const ROOT = join(import.meta.dirname, '..');
const POSTGRES_URL = process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const dir = mkdtempSync(join(tmpdir(), 'wameter-e2e-'));
const schemas: string[] = [];
let admin: pg.Client;

/** The live-rating worker thread, compiled from these sources (a worker thread cannot run TypeScript). */
let ratingWorkerScript: string;

beforeAll(async () => {
  ratingWorkerScript = buildRatingWorker(join(ROOT, '.tmp', 'server-e2e-worker-build'));
  admin = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 5_000 });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${POSTGRES_URL}: ${(error as Error).message} (set WAMETER_TEST_POSTGRES_URL)`,
    );
  }
}, 120_000);

afterAll(async () => {
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

async function freshPostgresUrl(): Promise<string> {
  const schema = `wameter_e2e_${randomBytes(5).toString('hex')}`;
  schemas.push(schema);
  await admin.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

/** A deterministic shuffle (mulberry32), so a failure can be replayed from the printed seed. */
function shuffle<T>(items: readonly T[], seed: number): T[] {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

type Delivery = { kind: 'webhook'; body: Buffer } | { kind: 'line'; line: object };

async function batchExpectation(deliveries: readonly Delivery[]) {
  const pricing = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
  if (!pricing.ok) throw new Error(pricing.error);
  const events = deliveries.flatMap((delivery) => {
    const parsed = parseEventValue(
      delivery.kind === 'webhook' ? JSON.parse(delivery.body.toString('utf8')) : delivery.line,
    );
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value.events;
  });
  const { accountFor } = accountBookFor(pricing.value.accounts, events);
  return ratingToJson(
    rateEvents(events, {
      accountFor,
      listedWabas: new Set(pricing.value.accounts.map((account) => account.waba)),
      rateBook: pricing.value.rateBook,
      markets: pricing.value.markets,
    }),
    (waba) => accountFor(waba).timeZone,
  );
}

const engines: [string, () => Promise<string>][] = [
  ['SQLite', () => Promise.resolve(`sqlite:${join(dir, `e2e-${randomBytes(4).toString('hex')}.db`)}`)],
  ['PostgreSQL', freshPostgresUrl],
];

describe.each(engines)('the real server over HTTP on %s', (_engine, makeDbUrl) => {
  let server: RunningServer;
  const logger = createMemoryLogger();

  beforeAll(async () => {
    server = await startServer(
      testConfig({ db: await makeDbUrl(), port: 0, host: '127.0.0.1', ratingDebounceMs: 20 }),
      { logger, ratingWorkerScript },
    );
  });

  afterAll(async () => {
    await server?.close();
  });

  const post = (path: string, body: string | Buffer, headers: Record<string, string>) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      body: new Uint8Array(body instanceof Buffer ? body : Buffer.from(body)),
      headers,
    });

  /** A POST whose body goes out as separate chunks (Transfer-Encoding: chunked, no Content-Length). */
  const postChunked = (path: string, chunks: readonly Buffer[], headers: Record<string, string>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const outgoing = httpRequest(`${server.url}${path}`, { method: 'POST', headers }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (part: string) => (text += part));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      });
      // The server may answer (413) and close before the last chunk: that is not this helper's error.
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
      });
      const writeNext = (index: number) => {
        if (index === chunks.length) {
          outgoing.end();
          return;
        }
        outgoing.write(chunks[index], () => setImmediate(() => writeNext(index + 1)));
      };
      writeNext(0);
    });

  it('reads a webhook sent in many small chunks byte for byte (the signature covers the exact bytes)', async () => {
    const body = webhookFixtures()[0]!.body;
    const chunks: Buffer[] = [];
    for (let at = 0; at < body.length; at += 97) chunks.push(body.subarray(at, at + 97));
    expect(chunks.length).toBeGreaterThan(3);
    const response = await postChunked('/webhooks/whatsapp', chunks, {
      'Content-Type': 'application/json',
      'X-Hub-Signature-256': signMetaBody(body, SECRET),
    });
    expect(response.status, response.body).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ received: true });
  });

  it('refuses a streamed body over the limit with 413 and keeps none of it', async () => {
    const metric = async () =>
      Number(
        /webhooks_rejected_total\{reason="body_too_large"\} (\d+)/.exec(
          await (await fetch(`${server.url}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    const before = await metric();
    const chunk = Buffer.alloc(256 * 1024, 0x20);
    const chunks = Array.from(
      { length: Math.ceil(DEFAULT_BODY_LIMIT_BYTES / chunk.length) + 1 },
      () => chunk,
    );
    const response = await postChunked('/webhooks/whatsapp', chunks, {
      'Content-Type': 'application/json',
      'X-Hub-Signature-256': signMetaBody('irrelevant', SECRET),
    });
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'BODY_TOO_LARGE' } });
    expect(await metric()).toBe(before + 1);
    // The server still answers on new connections.
    expect((await fetch(`${server.url}/healthz/live`)).status).toBe(204);
  });

  it('answers the verification handshake and health', async () => {
    const handshake = await fetch(
      `${server.url}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=77`,
    );
    expect(await handshake.text()).toBe('77');
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('refuses a webhook with a bad signature', async () => {
    const body = webhookFixtures()[0]!.body;
    const response = await post('/webhooks/whatsapp', body, {
      'X-Hub-Signature-256': signMetaBody(body, 'wrong'),
    });
    expect(response.status).toBe(401);
  });

  it('shuffled traffic with duplicates ends with the same units and totals as `wameter rate`', async () => {
    const seed = 20250801;
    const deliveries: Delivery[] = [
      ...webhookFixtures().map(({ body }) => ({ kind: 'webhook' as const, body })),
      ...conversationLines('102290129340398', '106540352242922', '16505551234', 'wamid.e2e').map((line) => ({
        kind: 'line' as const,
        line,
      })),
    ];
    const withDuplicates = [...deliveries, ...deliveries.filter((_, i) => i % 3 === 0)];
    const arrivals = shuffle(withDuplicates, seed);
    for (const delivery of arrivals) {
      const response =
        delivery.kind === 'webhook'
          ? await post('/webhooks/whatsapp', delivery.body, {
              'X-Hub-Signature-256': signMetaBody(delivery.body, SECRET),
            })
          : await post('/v1/events', JSON.stringify(delivery.line), { Authorization: `Bearer ${KEY_ALL}` });
      expect(response.status, `seed ${seed}`).toBe(200);
    }
    // Some fixtures from different WABAs reuse one example wamid: same idempotency key (kind + id + status),
    // so the first arrival is the event. The batch reads the same arrivals in the same order.
    const expected = await batchExpectation(arrivals);
    const auth = { Authorization: `Bearer ${KEY_ALL}` };
    const units = (await (await fetch(`${server.url}/v1/units?limit=1000`, { headers: auth })).json()) as {
      units: { id: string }[];
    };
    const byId = (list: { id: string }[]) => [...list].sort((a, b) => a.id.localeCompare(b.id));
    expect(byId(units.units), `seed ${seed}`).toEqual(byId(expected.units));
    expect(await (await fetch(`${server.url}/v1/totals`, { headers: auth })).json()).toEqual({
      totals: expected.totals,
    });
    // Explain and a re-rate rate the portfolio again, in the worker too: the same units.
    const explained = (await (
      await fetch(`${server.url}/v1/explain?user=16505551234`, { headers: auth })
    ).json()) as { units: { id: string; user: string }[]; timeline: unknown[] };
    const expectedUnits = expected.units as { id: string; user: string }[];
    expect(byId(explained.units)).toEqual(byId(expectedUnits.filter((unit) => unit.user === '16505551234')));
    expect(explained.units.length).toBeGreaterThan(0);
    expect(explained.timeline.length).toBeGreaterThan(0);
    const rerated = (await (
      await fetch(`${server.url}/v1/rerate`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ dry_run: true }),
      })
    ).json()) as { changed: unknown[]; unchanged: number };
    expect(rerated).toMatchObject({ changed: [], unchanged: expected.units.length });
    // Those ratings ran in the worker thread, with its own connection to the store.
    const ratings = logger.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(ratings.filter((line) => line.msg === 'rated').map((line) => line.where)).toContain(
      'worker thread',
    );
    expect(ratings.some((line) => line.msg === 'rated' && line.where !== 'worker thread')).toBe(false);
  });

  it('serves metrics and the OpenAPI document', async () => {
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/webhooks_received_total [1-9]/);
    expect(metrics).toMatch(/webhooks_duplicate_total [1-9]/);
    const openapi = (await (await fetch(`${server.url}/openapi.json`)).json()) as { openapi: string };
    expect(openapi.openapi).toBe('3.1.0');
  });
});

describe('extra routes (StartOptions.extraRoutes, for diagnostics such as the bench echo route)', () => {
  it('serves them behind the same middleware: counted in the metrics, the body read as webhooks read it', async () => {
    const server = await startServer(
      testConfig({ db: `sqlite:${join(dir, 'extra.db')}`, port: 0, host: '127.0.0.1' }),
      {
        logger: createMemoryLogger(),
        ratingWorkerScript,
        extraRoutes: (app) =>
          app.post('/extra/echo', async (c) => {
            const body = await readRawBody(c, 16);
            return body.ok ? c.json({ bytes: body.bytes.byteLength }) : c.json({ error: 'too large' }, 413);
          }),
      },
    );
    try {
      const post = (body: string) => fetch(`${server.url}/extra/echo`, { method: 'POST', body });
      expect(await (await post('0123456789')).json()).toEqual({ bytes: 10 });
      expect((await post('x'.repeat(17))).status).toBe(413);
      // The service's own routes are untouched.
      expect((await fetch(`${server.url}/healthz/live`)).status).toBe(204);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/route="\/extra\/echo"[^\n]*status="200"/);
    } finally {
      await server.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('finishes an in-flight webhook, then refuses new connections', async () => {
    const server = await startServer(
      testConfig({ db: `sqlite:${join(dir, 'shutdown.db')}`, port: 0, host: '127.0.0.1' }),
      { logger: createMemoryLogger(), ratingWorkerScript },
    );
    const body = webhookFixtures()[0]!.body;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // A body streamed in two halves keeps the request in flight while close() begins.
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new Uint8Array(body.subarray(0, 10)));
        await gate;
        controller.enqueue(new Uint8Array(body.subarray(10)));
        controller.close();
      },
    });
    const inFlight = fetch(`${server.url}/webhooks/whatsapp`, {
      method: 'POST',
      body: stream,
      headers: { 'X-Hub-Signature-256': signMetaBody(body, SECRET) },
      duplex: 'half',
    } as RequestInit);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = server.close();
    release();
    expect((await inFlight).status).toBe(200);
    await closed;
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });
});
