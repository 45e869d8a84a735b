// The bytes of request bodies held at once, across all requests, are bounded (docs/service.md, "Limits"): a
// body that would pass the budget is refused 503 with Retry-After — before it is read when its length is
// declared — and nothing of it is stored; bodies within the budget are read and stored as always.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { signMetaBody } from '../ingest/signature.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/store.js';
import { KEY_ALL, SECRET, conversationLines, fixture, testConfig } from '../../test/server-kit.js';
import { createApp, type AppDeps } from './app.js';
import { BodyBudget, clientOfAddress } from './read-body.js';
import { createMemoryLogger } from './logger.js';
import { Metrics } from './metrics.js';
import { loadPricingSetup, loadRateCards } from './pricing-setup.js';
import { createRatingService } from './rating-service.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** The service's app over a real SQLite store, with extra deps (the body budget) given as createApp takes them. */
async function appWith(extra: Partial<AppDeps> & Record<string, unknown>) {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-budget-'));
  const store: Store = await openSqliteStore(join(dir, 'test.db'));
  const config = testConfig();
  const clock = () => Date.parse('2025-08-01T12:00:00Z');
  const logger = createMemoryLogger(clock);
  const pricing = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
  if (!pricing.ok) throw new Error(pricing.error);
  const rating = createRatingService({ store, pricing: pricing.value, clock, logger, loadRateCards });
  const metrics = new Metrics();
  const app = createApp({ store, config, clock, logger, rating, metrics, ...extra } as AppDeps);
  cleanups.push(async () => {
    await rating.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { app, store, metrics };
}

/** A request body that sends `first`, then waits for `release()` before sending `rest` and ending. */
/** A /v1/events upload whose first part has been read and whose rest is held until `held.release()`. */
async function heldUpload(app: Awaited<ReturnType<typeof appWith>>['app'], first: string, rest: string) {
  const held = heldBody(first, rest);
  const upload = app.request('/v1/events', {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY_ALL}` },
    body: held.stream,
    duplex: 'half',
  } as RequestInit);
  await held.taken;
  await settle();
  return { held, upload };
}

function heldBody(first: string, rest: string) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let firstTaken!: () => void;
  const taken = new Promise<void>((resolve) => (firstTaken = resolve));
  let pulls = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      pulls += 1;
      if (pulls === 1) {
        controller.enqueue(new TextEncoder().encode(first));
        return;
      }
      // Asked for more: the first bytes were taken by the reader.
      firstTaken();
      await released;
      controller.enqueue(new TextEncoder().encode(rest));
      controller.close();
    },
  });
  return { stream, release, taken };
}

/** Lets the reader of a held body finish handling the chunk it took (no clock involved). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('the in-flight body budget', () => {
  const lines = conversationLines('W1', 'PN1', '919876543210', 'wamid.budget').map((line) =>
    JSON.stringify(line),
  );
  const firstPart = `${lines.slice(0, 4).join('\n')}\n`;
  const secondPart = lines.slice(4).join('\n');
  const webhook = fixture('pywa/status_sent.json');

  it('refuses a body over the budget 503 with Retry-After, stores nothing of it, and takes it once room is free', async () => {
    // Room for the held upload's first part, not for a webhook beside it.
    const budget = Buffer.byteLength(firstPart) + webhook.byteLength - 1;
    expect(Buffer.byteLength(firstPart) + Buffer.byteLength(secondPart)).toBeLessThanOrEqual(budget);
    const { app, store, metrics } = await appWith({ bodyBudgetBytes: budget });
    const { held, upload } = await heldUpload(app, firstPart, secondPart);

    const postWebhook = () =>
      app.request('/webhooks/whatsapp', {
        method: 'POST',
        headers: {
          'Content-Length': String(webhook.byteLength),
          'X-Hub-Signature-256': signMetaBody(webhook, SECRET),
        },
        body: new Uint8Array(webhook),
      });
    const refused = await postWebhook();
    expect(refused.status).toBe(503);
    expect(refused.headers.get('Retry-After')).toBe('5');
    expect((await refused.json()) as unknown).toMatchObject({ error: { code: 'SERVER_BUSY' } });
    expect(metrics.render()).toContain('webhooks_rejected_total{reason="busy"} 1');
    expect(await store.listEvents()).toEqual([]);

    held.release();
    const uploaded = await upload;
    expect(uploaded.status).toBe(200);
    expect(await uploaded.json()).toMatchObject({ accepted: lines.length, rejected: [] });

    // The upload's bytes are given back: the same webhook now fits and is stored.
    const taken = await postWebhook();
    expect(taken.status).toBe(200);
    expect(await store.listEvents()).toHaveLength(lines.length + 1);
  });

  it('a body without a declared length is counted as it arrives, and refused once it passes the budget', async () => {
    const budget = Buffer.byteLength(firstPart) + 100;
    const { app, store } = await appWith({ bodyBudgetBytes: budget });
    const { held, upload } = await heldUpload(app, firstPart, secondPart);
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(lines.join('\n')));
        controller.close();
      },
    });
    const refused = await app.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}` },
      body: chunked,
      duplex: 'half',
    } as RequestInit);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('Retry-After')).toBe('5');
    held.release();
    // The held upload passed the budget too once its second part came: refused, nothing stored.
    expect((await upload).status).toBe(503);
    expect(await store.listEvents()).toEqual([]);
  });

  it('by default, several bodies of the largest size are read side by side', async () => {
    const { app, store } = await appWith({});
    const limit = testConfig().bodyLimitBytes;
    const responses = await Promise.all(
      [0, 1, 2, 3, 4, 5, 6, 7].map((i) => {
        const line = JSON.stringify(conversationLines('W1', 'PN1', `91987654321${i}`, `wamid.side${i}`)[0]);
        // One event, then blank space up to the size limit (blank lines are skipped).
        const body = `${line}\n${' '.repeat(limit - line.length - 1)}`;
        return app.request('/v1/events', {
          method: 'POST',
          headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Length': String(body.length) },
          body,
        });
      }),
    );
    expect(responses.map((response) => response.status)).toEqual(Array(8).fill(200));
    expect(await store.listEvents()).toHaveLength(8);
  });
});

describe('one client’s share of the body budget', () => {
  it('a client holding bodies open is refused past its quarter of the budget; another client’s webhook is read', async () => {
    // Budget 32,000 bytes, bodies of at most 2,000: each client may hold max(8,000, 2 × 2,000) = 8,000.
    const { app, store } = await appWith({
      config: testConfig({ bodyLimitBytes: 2_000 }),
      bodyBudgetBytes: 32_000,
      clientIp: (c: { req: { header(name: string): string | undefined } }) =>
        c.req.header('x-test-client') ?? '',
    });
    const line = JSON.stringify(conversationLines('W1', 'PN1', '919876543210', 'wamid.share')[0]);
    const holdOpen = () => {
      const held = heldBody(`${line}\n${' '.repeat(1_800 - line.length)}`, '\n');
      const upload = app.request('/v1/events', {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY_ALL}`, 'x-test-client': '203.0.113.7' },
        body: held.stream,
        duplex: 'half',
      } as RequestInit);
      return { held, upload };
    };
    // Four bodies of 1,800 bytes held open by one address: 7,200 of its 8,000.
    const holds = [holdOpen(), holdOpen(), holdOpen(), holdOpen()];
    for (const { held } of holds) await held.taken;
    await settle();
    const webhook = fixture('pywa/status_sent.json');
    const post = (client: string) =>
      app.request('/webhooks/whatsapp', {
        method: 'POST',
        headers: {
          'Content-Length': String(webhook.byteLength),
          'X-Hub-Signature-256': signMetaBody(webhook, SECRET),
          'x-test-client': client,
        },
        body: new Uint8Array(webhook),
      });
    expect(webhook.byteLength).toBeGreaterThan(800);
    expect(webhook.byteLength).toBeLessThan(2_000);
    // The same address: past its share, refused before its body is read.
    const refused = await post('203.0.113.7');
    expect(refused.status).toBe(503);
    expect((await refused.json()) as unknown).toMatchObject({ error: { code: 'SERVER_BUSY' } });
    // Another address (Meta's): read and stored, the budget as a whole having room.
    const taken = await post('198.51.100.2');
    expect(taken.status).toBe(200);
    for (const { held } of holds) held.release();
    for (const { upload } of holds) expect((await upload).status).toBe(200);
    expect((await store.listEvents()).length).toBeGreaterThan(0);
  });

  it('the rate limit counts a client so too: addresses of one IPv6 /64 share one bucket', async () => {
    const { app } = await appWith({
      config: testConfig({ rateLimit: { perSecond: 1, burst: 2 } }),
      clientIp: (c: { req: { header(name: string): string | undefined } }) =>
        c.req.header('x-test-client') ?? '',
    });
    // Requests without a valid key are counted by address (one with a key, by its key).
    const get = (client: string) =>
      app.request('/v1/totals', { headers: { Authorization: 'Bearer a-guess', 'x-test-client': client } });
    // Three addresses of one host's /64: the third request is over the burst of two.
    const statuses = [];
    for (const client of ['2001:db8:0:12::1', '2001:db8:0:12::2', '2001:db8:0:12:ffff::3'])
      statuses.push((await get(client)).status);
    expect(statuses).toEqual([401, 401, 429]);
    // Another /64 has its own bucket.
    expect((await get('2001:db8:0:13::1')).status).toBe(401);
  });

  it('counts an IPv6 client by its /64 network, and an IPv4-mapped one as IPv4', () => {
    expect(clientOfAddress('203.0.113.7')).toBe('203.0.113.7');
    expect(clientOfAddress('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientOfAddress('2001:db8:0:12:abcd::1')).toBe('2001:db8:0:12::/64');
    expect(clientOfAddress('2001:db8:0:12:ffff:1:2:3')).toBe('2001:db8:0:12::/64');
    expect(clientOfAddress('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientOfAddress('::1')).toBe('0:0:0:0::/64');
  });

  it('gives a client’s bytes back when its request ends, and never lets one client take another’s room', () => {
    const budget = new BodyBudget(100, 30);
    const a = budget.open('a');
    expect(a.take(30)).toBe(true);
    expect(a.take(1)).toBe(false);
    const b = budget.open('b');
    expect(b.take(30)).toBe(true);
    expect(budget.inFlightBytes).toBe(60);
    a.release();
    expect(budget.inFlightBytes).toBe(30);
    expect(budget.open('a').take(30)).toBe(true);
    // The whole budget still bounds them all.
    const c = budget.open('c');
    expect(c.take(30)).toBe(true);
    expect(budget.open('d').take(20)).toBe(false);
  });
});
