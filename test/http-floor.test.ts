// The bench's least webhook server (bench/http-floor.ts, table 3c): what it answers and what its log keeps,
// with a real payload from ../shared/fixtures/webhooks signed as Meta signs it. No timing assertions here.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  FLOOR_BODY_LIMIT,
  keepInStore,
  RingLog,
  runFloorChild,
  startFloorServer,
  type FloorKeep,
  type FloorServer,
} from '../bench/http-floor.js';
import { signMetaBody } from '../src/ingest/signature.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-floor-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'floor-test-secret';
const STATUS_BODY = readFileSync(
  join(
    import.meta.dirname,
    'fixtures',
    'webhooks',
    'meta-docs',
    'status_sent_marketing_pmp_with_conversation.json',
  ),
);

describe('RingLog', () => {
  it('keeps records in order, each with its length, from the start of a file made to its full size', async () => {
    const log = new RingLog(join(dir, 'order.log'), 1 << 16);
    expect(readFileSync(log.path).length).toBe(1 << 16);
    await log.append([Buffer.from('one'), Buffer.from('two')]);
    await log.append([Buffer.from('three')]);
    expect(log.readRecords().map(String)).toEqual(['one', 'two', 'three']);
    expect(log.records).toBe(3);
    expect(log.wraps).toBe(0);
    log.close();
  });

  it('wraps to the start when a group does not fit before the end, and refuses a group larger than the log', async () => {
    const log = new RingLog(join(dir, 'wrap.log'), 1 << 16);
    const big = Buffer.alloc(40_000, 'a');
    await log.append([big]);
    await log.append([Buffer.alloc(30_000, 'b')]);
    expect(log.wraps).toBe(1);
    // The second group was written at the start, over the first.
    expect(log.readRecords().map((record) => [record.length, record[0]])).toEqual([
      [30_000, 'b'.charCodeAt(0)],
    ]);
    await expect(log.append([Buffer.alloc(1 << 16)])).rejects.toThrow(/exceeds the log/);
    expect(log.records).toBe(2);
    log.close();
  });

  it('refuses a log smaller than 64 KiB', () => {
    expect(() => new RingLog(join(dir, 'small.log'), 1_000)).toThrow(/at least 64 KiB/);
  });
});

describe('startFloorServer', () => {
  let floor: FloorServer | undefined;
  let isReady = false;
  afterEach(async () => {
    await floor?.close();
    floor = undefined;
  });

  async function start(): Promise<string> {
    floor = await startFloorServer({
      port: 0,
      logPath: join(dir, `server-${Date.now()}.log`),
      logBytes: 1 << 20,
      secrets: [SECRET],
      isReady: () => isReady,
    });
    const address = floor.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('not listening');
    return `http://127.0.0.1:${address.port}`;
  }

  const post = (url: string, body: Buffer, signature?: string) =>
    fetch(`${url}/webhooks/whatsapp`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers: signature === undefined ? {} : { 'x-hub-signature-256': signature },
    });

  it('answers a signed body 200 once its exact bytes are in the log, and several at once share groups', async () => {
    const url = await start();
    const response = await post(url, STATUS_BODY, signMetaBody(STATUS_BODY, SECRET));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ received: true });
    expect(floor!.log!.readRecords()).toEqual([STATUS_BODY]);
    const more = Array.from({ length: 8 }, (_, index) => Buffer.from(JSON.stringify({ index })));
    const answers = await Promise.all(more.map((body) => post(url, body, signMetaBody(body, SECRET))));
    expect(answers.map((answer) => answer.status)).toEqual(more.map(() => 200));
    expect(floor!.log!.readRecords().slice(1).map(String).sort()).toEqual(more.map(String).sort());
    expect(floor!.queue!.stats.items).toBe(9);
    expect(floor!.queue!.stats.groups).toBeLessThan(9);
  });

  it('refuses a bad or missing signature 401 and keeps nothing', async () => {
    const url = await start();
    const wrong = await post(url, STATUS_BODY, signMetaBody(STATUS_BODY, 'another-secret'));
    expect(wrong.status).toBe(401);
    const missing = await post(url, STATUS_BODY);
    expect(missing.status).toBe(401);
    expect(floor!.log!.readRecords()).toEqual([]);
  });

  it('keeps a signed body that is not JSON and answers it 400; an empty one 400 unkept; one past the limit 413', async () => {
    const url = await start();
    const broken = Buffer.from('{"object":"whatsapp_business_account",');
    const response = await post(url, broken, signMetaBody(broken, SECRET));
    expect(response.status).toBe(400);
    expect(floor!.log!.readRecords()).toEqual([broken]);
    const empty = Buffer.alloc(0);
    expect((await post(url, empty, signMetaBody(empty, SECRET))).status).toBe(400);
    const huge = Buffer.alloc(FLOOR_BODY_LIMIT + 1, ' ');
    expect((await post(url, huge, signMetaBody(huge, SECRET))).status).toBe(413);
    expect(floor!.log!.readRecords()).toEqual([broken]);
  });

  it('answers GET 204 (its no-op), GET /healthz 503 until ready, and another method 405', async () => {
    const url = await start();
    isReady = false;
    expect((await fetch(`${url}/`)).status).toBe(204);
    expect((await fetch(`${url}/healthz`)).status).toBe(503);
    isReady = true;
    expect((await fetch(`${url}/healthz`)).status).toBe(204);
    expect((await fetch(`${url}/`, { method: 'PUT', body: 'x' })).status).toBe(405);
  });
});

describe("startFloorServer in front of the service's SQLite store (keepInStore)", () => {
  async function serve(withEvents: boolean) {
    const store = await openSqliteStore(join(dir, `store-${withEvents}-${Date.now()}.db`));
    const floor = await startFloorServer({
      port: 0,
      secrets: [SECRET],
      keep: keepInStore(store, withEvents),
    });
    const address = floor.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('not listening');
    const post = (body: Buffer) =>
      fetch(`http://127.0.0.1:${address.port}/webhooks/whatsapp`, {
        method: 'POST',
        body: new Uint8Array(body),
        headers: { 'x-hub-signature-256': signMetaBody(body, SECRET) },
      });
    return {
      store,
      floor,
      post,
      close: async () => {
        await floor.close();
        await store.close();
      },
    };
  }

  it('stores the body and its events before the 200, a second delivery changing nothing', async () => {
    const { store, floor, post, close } = await serve(true);
    try {
      expect(floor.log).toBeUndefined();
      expect((await post(STATUS_BODY)).status).toBe(200);
      const events = await store.listEvents();
      expect(events.map((event) => event.kind)).toEqual(['status']);
      expect((await post(STATUS_BODY)).status).toBe(200);
      expect(await store.listEvents()).toEqual(events);
      expect(store.ingestGroups().items).toBe(2);
    } finally {
      await close();
    }
  });

  it('stores the body alone without its events, and keeps a body that is not JSON unreadable (400)', async () => {
    const { store, post, close } = await serve(false);
    try {
      expect((await post(STATUS_BODY)).status).toBe(200);
      expect(await store.listEvents()).toEqual([]);
      expect(Buffer.from((await store.getRawWebhook(1))!.body)).toEqual(STATUS_BODY);
      const broken = Buffer.from('{"entry": [');
      expect((await post(broken)).status).toBe(400);
      const unreadable = await store.listUnreadableWebhooks(10);
      expect(unreadable.map((row) => Buffer.from(row.body))).toEqual([broken]);
    } finally {
      await close();
    }
  });
});

describe('runFloorChild', () => {
  it('refuses a way of keeping bodies it does not know, naming those it does', async () => {
    await expect(runFloorChild(0, dir, 1, SECRET, 'redis' as FloorKeep)).rejects.toThrow(
      'KEEP must be one of log, sqlite-bodies, sqlite-events, not "redis"',
    );
  });
});
