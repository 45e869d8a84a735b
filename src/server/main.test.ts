// The real server (startServer) on a loopback port with a real SQLite file: graceful shutdown seen from raw
// keep-alive sockets, start-up errors that say what to fix, and readiness that fails when the store cannot
// take writes. Live rating runs in the server's thread here (no compiled worker needed).

import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { signMetaBody } from '../ingest/signature.js';
import { KEY_ALL, SECRET, fixture, testConfig, webhookFixtures } from '../../test/server-kit.js';
import type { ServiceConfig } from './config.js';
import { createMemoryLogger } from './logger.js';
import { EXIT_WRITER_LOCK_LOST, runUntilSignalled, startServer, type RunningServer } from './main.js';
import { createStoreHealth } from './store-health.js';
import { eventKey, type CoreEvent, type OutboundEvent, type StatusEvent } from '../core/events.js';
import { openStore } from '../store/open-store.js';
import { dropSchema } from '../../test/support/pg-schema.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-main-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let dbCount = 0;
function start(overrides: Partial<ServiceConfig> = {}): Promise<RunningServer> {
  dbCount += 1;
  return startServer(
    testConfig({ db: `sqlite:${join(dir, `main-${dbCount}.db`)}`, port: 0, host: '127.0.0.1', ...overrides }),
    { logger: createMemoryLogger(), ratingWorkerScript: null },
  );
}

/** The service on `db` with the test defaults, and the lines it logged (a memory logger of its own). */
async function serveWithLog(
  db: string,
): Promise<{ server: RunningServer; logger: ReturnType<typeof createMemoryLogger> }> {
  const logger = createMemoryLogger();
  const server = await startServer(testConfig({ db, port: 0, host: '127.0.0.1' }), {
    logger,
    ratingWorkerScript: null,
  });
  return { server, logger };
}

/** One real fixture webhook, signed, to a running server. */
function postWebhook(server: RunningServer, body: Buffer = webhookFixtures()[0]!.body): Promise<Response> {
  return fetch(`${server.url}/webhooks/whatsapp`, {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'X-Hub-Signature-256': signMetaBody(body, SECRET) },
  });
}

/** A raw HTTP/1.1 client socket that collects what the server sends and notices when it closes. */
class RawConnection {
  readonly socket: Socket;
  received = '';
  isClosed = false;
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.setEncoding('utf8');
    this.socket.on('data', (text: string) => (this.received += text));
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.isClosed = true;
        resolve();
      }),
    );
  }

  /** Resolves with the head and body of the `n`th complete response (1-based) once it has arrived. */
  async response(n: number, timeoutMs = 5_000): Promise<{ head: string; body: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const responses = completeResponses(this.received);
      if (responses.length >= n) return responses[n - 1]!;
      if (this.isClosed || Date.now() > deadline) {
        throw new Error(`response ${n} never came complete; received: ${JSON.stringify(this.received)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** The complete responses (Content-Length framed, as the service answers) in `text`. */
function completeResponses(text: string): { head: string; body: string }[] {
  const responses: { head: string; body: string }[] = [];
  let rest = text;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return responses;
    const head = rest.slice(0, end);
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (rest.length < end + 4 + length) return responses;
    responses.push({ head, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
}

function webhookRequestHead(body: Buffer): string {
  return [
    'POST /webhooks/whatsapp HTTP/1.1',
    'Host: localhost',
    'Connection: keep-alive',
    'Content-Type: application/json',
    `X-Hub-Signature-256: ${signMetaBody(body, SECRET)}`,
    `Content-Length: ${body.length}`,
    '',
    '',
  ].join('\r\n');
}

describe('a start rates only the portfolios whose stored rating is not current (docs/decisions.md)', () => {
  /** A template sent and delivered to a user of `waba` (its own portfolio: the accounts file names none). */
  const sentLines = (waba: string, id: string, at = '2025-07-10T09:00:00Z') =>
    [
      { kind: 'outbound', at, waba, business: `PN-${waba}`, user: '919876543210', id, template: 'marketing' },
      { kind: 'status', at, waba, business: `PN-${waba}`, user: '919876543210', id, status: 'delivered' },
    ]
      .map((line) => JSON.stringify(line))
      .join('\n');
  const postLines = async (server: RunningServer, body: string) => {
    const response = await fetch(`${server.url}/v1/events`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/x-ndjson' },
      body,
    });
    expect(response.status).toBe(200);
  };
  const get = async (server: RunningServer, path: string) =>
    (await fetch(`${server.url}${path}`, { headers: { Authorization: `Bearer ${KEY_ALL}` } })).json();
  /** The start's rating, once done, as its log line says: how many portfolios it rated and found current. */
  const initialRating = async (logger: { lines: string[] }) => {
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      const line = logger.lines.find((text) => text.includes('"initial rating done"'));
      if (line !== undefined) {
        const { portfolios_rated: rated, portfolios_current: current } = JSON.parse(line) as Record<
          string,
          number
        >;
        return { rated, current };
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no "initial rating done" line: ${logger.lines.join('\n')}`);
  };
  /** The rating history of the store at `db` (newest first), read with the server stopped. */
  const ratingsOf = async (db: string) => {
    const store = await openStore(db);
    try {
      return (await store.listRatings(1000, undefined, { isWithoutChanges: true })).map(({ id, wabas }) => ({
        id,
        wabas,
      }));
    } finally {
      await store.close();
    }
  };
  /** Stores `event` in the store at `db` with the server stopped: stored, never rated (a crash between). */
  const storeUnrated = async (db: string, event: CoreEvent) => {
    const store = await openStore(db);
    try {
      await store.ingestEvents([{ key: eventKey(event), event, receivedAtMs: 0, source: 'api:admin' }]);
    } finally {
      await store.close();
    }
  };
  /** A restart with nothing new, then one after events were stored without a rating (a crash), on `db`. */
  const restarts = async (db: string) => {
    const first = await serveWithLog(db);
    await postLines(first.server, `${sentLines('W1', 'wamid.a1')}\n${sentLines('W2', 'wamid.b1')}`);
    const units = await get(first.server, '/v1/units');
    const totals = await get(first.server, '/v1/totals');
    expect((units as { units: unknown[] }).units).toHaveLength(2);
    await first.server.close();
    const rated = await ratingsOf(db);

    const restart = await serveWithLog(db);
    expect(await initialRating(restart.logger)).toEqual({ rated: 0, current: 2 });
    expect(await get(restart.server, '/v1/units')).toEqual(units);
    expect(await get(restart.server, '/v1/totals')).toEqual(totals);
    await restart.server.close();
    expect(await ratingsOf(db)).toEqual(rated);

    // A crash between storing events and rating them: W2's stored, no rating of them written.
    const late: OutboundEvent = {
      kind: 'outbound',
      atMs: Date.parse('2025-07-11T09:00:00Z'),
      waba: 'W2',
      business: 'PN-W2',
      user: '919876543211',
      id: 'wamid.b2',
      template: 'marketing',
      deliveredAtMs: Date.parse('2025-07-11T09:00:01Z'),
    };
    await storeUnrated(db, late);
    const recovered = await serveWithLog(db);
    expect(await initialRating(recovered.logger)).toEqual({ rated: 1, current: 1 });
    const after = (await get(recovered.server, '/v1/units')) as { units: { waba: string }[] };
    expect(after.units.map((unit) => unit.waba).sort()).toEqual(['W1', 'W2', 'W2']);
    await recovered.server.close();
    const history = await ratingsOf(db);
    expect(history.slice(1)).toEqual(rated);
    expect(history[0]!.wabas).toEqual(['W2']);

    // A status naming no WABA, stored without a rating: W1's message joins it, but which portfolio a status
    // naming no WABA lands in is not marked — every portfolio is rated.
    const status: StatusEvent = {
      kind: 'status',
      atMs: Date.parse('2025-07-10T09:05:00Z'),
      id: 'wamid.a1',
      status: 'read',
    };
    await storeUnrated(db, status);
    const placed = await serveWithLog(db);
    expect(await initialRating(placed.logger)).toEqual({ rated: 2, current: 0 });
    await placed.server.close();
  };

  /**
   * Restarts of `db` after re-rates: one under the service's own rules and cards (a re-rate, an upgrade's)
   * leaves a current bill, a what-if (as_of_rules) does not. `sql` runs a statement on the stopped store.
   */
  const restartsAfterRerates = async (db: string, sql: (statement: string) => Promise<void>) => {
    const rerate = async (server: RunningServer, body: object) => {
      const response = await fetch(`${server.url}/v1/rerate`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(200);
    };
    const first = await serveWithLog(db);
    await postLines(first.server, `${sentLines('W1', 'wamid.a1')}\n${sentLines('W2', 'wamid.b1')}`);
    const units = await get(first.server, '/v1/units');
    await rerate(first.server, {});
    await first.server.close();

    const afterRerate = await serveWithLog(db);
    expect(await initialRating(afterRerate.logger)).toEqual({ rated: 0, current: 2 });
    expect(await get(afterRerate.server, '/v1/units')).toEqual(units);
    // A what-if of W1 is not the bill the service keeps: W1's portfolio is rated again, W2's is not.
    await rerate(afterRerate.server, { wabas: ['W1'], as_of_rules: 'CBP-2023' });
    await afterRerate.server.close();

    const afterWhatIf = await serveWithLog(db);
    expect(await initialRating(afterWhatIf.logger)).toEqual({ rated: 1, current: 1 });
    expect(await get(afterWhatIf.server, '/v1/units')).toEqual(units);
    await afterWhatIf.server.close();

    // An upgrade: the start re-rates every WABA as an upgrade, which leaves nothing for its own rating.
    await sql('UPDATE ratings SET engine_digest = NULL');
    const upgraded = await serveWithLog(db);
    expect(await initialRating(upgraded.logger)).toEqual({ rated: 0, current: 2 });
    expect(upgraded.logger.lines.join('\n')).toContain('re-rated after the upgrade');
    expect(await get(upgraded.server, '/v1/units')).toEqual(units);
    await upgraded.server.close();
  };

  it('a restart after a re-rate or an upgrade rates nothing; after a what-if re-rate (as_of_rules), its portfolio', async () => {
    const path = join(dir, 'restart-rerated.db');
    await restartsAfterRerates(`sqlite:${path}`, async (statement) => {
      const raw = new Database(path);
      raw.exec(statement);
      raw.close();
    });
  });

  it('the same on PostgreSQL after re-rates', async () => {
    await inOwnSchema('wameter_restart_rerated', (url, schema, admin) =>
      restartsAfterRerates(url.toString(), async (statement) => {
        await admin.query(`SET search_path = ${schema}`);
        await admin.query(statement);
      }),
    );
  });

  it('a restart with nothing new rates nothing and serves the same bill; events stored but never rated (a crash) re-rate their portfolio only, a status naming no WABA every portfolio', async () => {
    await restarts(`sqlite:${join(dir, 'restart-current.db')}`);
  });

  it('the same on PostgreSQL', async () => {
    await inOwnSchema('wameter_restart', (url) => restarts(url.toString()));
  });

  it('a restart under other accounts, an edited rate card or the other reported-rules setting re-rates', async () => {
    const path = join(dir, 'restart-inputs.db');
    const db = `sqlite:${path}`;
    const cards = join(dir, 'restart-inputs-cards');
    mkdirSync(cards);
    const bundled = join(import.meta.dirname, '..', '..', 'data', 'rate-cards');
    for (const name of readdirSync(bundled)) copyFileSync(join(bundled, name), join(cards, name));
    const accountsPath = join(dir, 'restart-inputs.json');
    const accounts = (timezone: string) =>
      writeFileSync(
        accountsPath,
        JSON.stringify({ accounts: [{ waba: 'W1', timezone, currency: 'USD', portfolio: 'P' }] }),
      );
    accounts('Asia/Kolkata');
    const serve = async (overrides: Partial<ServiceConfig> = {}) => {
      const logger = createMemoryLogger();
      const server = await startServer(
        testConfig({ db, port: 0, host: '127.0.0.1', rateCardPaths: [cards], accountsPath, ...overrides }),
        { logger, ratingWorkerScript: null },
      );
      const initial = await initialRating(logger);
      await server.close();
      return initial;
    };
    const first = await startServer(
      testConfig({ db, port: 0, host: '127.0.0.1', rateCardPaths: [cards], accountsPath }),
      { logger: createMemoryLogger(), ratingWorkerScript: null },
    );
    await postLines(first, sentLines('W1', 'wamid.a1'));
    await first.close();
    expect(await serve()).toEqual({ rated: 0, current: 1 });
    accounts('America/Sao_Paulo');
    expect(await serve()).toEqual({ rated: 1, current: 0 });
    expect(await serve()).toEqual({ rated: 0, current: 1 });
    const card = join(cards, 'usd-2025-10-01.csv');
    writeFileSync(card, readFileSync(card, 'utf8').replace(/^India,\$US,([\d.]+),/m, 'India,$US,0.5000,'));
    expect(await serve()).toEqual({ rated: 1, current: 0 });
    expect(await serve()).toEqual({ rated: 0, current: 1 });
    expect(await serve({ isReportedRulesEnabled: false })).toEqual({ rated: 1, current: 0 });
    expect(await serve({ isReportedRulesEnabled: false })).toEqual({ rated: 0, current: 1 });
  });
});

describe('graceful shutdown with keep-alive connections', () => {
  it('warns at start when the stored bill was priced with a rate card since edited under its own name', async () => {
    const db = `sqlite:${join(dir, 'cards-changed.db')}`;
    const cards = join(dir, 'cards-changed');
    mkdirSync(cards);
    const bundled = join(import.meta.dirname, '..', '..', 'data', 'rate-cards');
    for (const name of readdirSync(bundled)) copyFileSync(join(bundled, name), join(cards, name));
    const body = fixture('meta-docs/incoming_text_basic.json');
    const serve = async () => {
      const logger = createMemoryLogger();
      const server = await startServer(
        testConfig({ db, port: 0, host: '127.0.0.1', rateCardPaths: [cards] }),
        { logger, ratingWorkerScript: null },
      );
      return { server, logger };
    };
    const warned = (logger: { lines: string[] }) =>
      logger.lines.some((line) =>
        line.includes('the stored bill was last priced with rate cards whose rates differ from these'),
      );
    const first = await serve();
    expect((await postWebhook(first.server, body)).status).toBe(200);
    await first.server.close(); // finishes the live rating first
    expect(warned(first.logger)).toBe(false);
    const same = await serve();
    await same.server.close();
    expect(warned(same.logger)).toBe(false);
    const card = join(cards, 'usd-2025-10-01.csv');
    writeFileSync(card, readFileSync(card, 'utf8').replace(/^India,\$US,([\d.]+),/m, 'India,$US,0.5000,'));
    const edited = await serve();
    await edited.server.close();
    expect(warned(edited.logger)).toBe(true);
  });

  it('warns at start when the stored bill is a what-if re-rate (as_of_rules kept as the bill), which it replaces', async () => {
    const db = `sqlite:${join(dir, 'what-if.db')}`;
    const serve = () => serveWithLog(db);
    const warned = (logger: { lines: string[] }) =>
      logger.lines.filter((line) => line.includes('the stored bill was last re-rated under'));
    const first = await serve();
    expect((await postWebhook(first.server, fixture('meta-docs/incoming_text_basic.json'))).status).toBe(200);
    const rerated = await fetch(`${first.server.url}/v1/rerate`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ as_of_rules: 'CBP-2023' }),
    });
    expect(rerated.status).toBe(200);
    await first.server.close();
    expect(warned(first.logger)).toEqual([]);
    const next = await serve();
    await next.server.close();
    expect(warned(next.logger)).toEqual([
      expect.stringContaining('the stored bill was last re-rated under CBP-2023 rules'),
    ]);
    // That start rated it under the rules of each date: the next one has nothing to say.
    const after = await serve();
    await after.server.close();
    expect(warned(after.logger)).toEqual([]);
  });

  it('after an upgrade (a bill rated by other rating code), the start re-rates it as a re-rate that keeps what changed', async () => {
    const path = join(dir, 'upgraded.db');
    const db = `sqlite:${path}`;
    const serve = () => serveWithLog(db);
    const ratings = async (server: RunningServer) =>
      (
        (await (
          await fetch(`${server.url}/v1/ratings`, { headers: { Authorization: `Bearer ${KEY_ALL}` } })
        ).json()) as {
          ratings: { id: string; reason: string; changes?: { changed: number } }[];
        }
      ).ratings;
    const upgradeWarning = 'the stored bill was rated by another version of wameter (an upgrade)';
    const first = await serve();
    expect((await postWebhook(first.server, fixture('pywa/status_delivered.json'))).status).toBe(200);
    await first.server.close(); // finishes the live rating first
    expect(first.logger.lines.join('\n')).not.toContain(upgradeWarning);
    // What an older wameter left: its ratings without (or with another) digest of the rating code, and a
    // unit it priced otherwise.
    const raw = new Database(path);
    raw.exec(
      'UPDATE ratings SET engine_digest = NULL; UPDATE units SET amount_micros = amount_micros + 1000',
    );
    const [unitId] = raw.prepare('SELECT id FROM units').pluck().all() as string[];
    raw.close();
    const upgraded = await serve();
    // A read at once waits for the upgrade's re-rate: never the older code's bill.
    const totals = async () =>
      (
        await fetch(`${upgraded.server.url}/v1/totals`, { headers: { Authorization: `Bearer ${KEY_ALL}` } })
      ).json();
    const early = await totals();
    let history = await ratings(upgraded.server);
    expect(history.some((r) => r.reason === 'upgrade')).toBe(true);
    for (
      const deadline = Date.now() + 10_000;
      !history.some((r) => r.reason === 'upgrade') && Date.now() < deadline;
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      history = await ratings(upgraded.server);
    }
    expect(early).toEqual(await totals());
    const upgrade = history.find((r) => r.reason === 'upgrade')!;
    const changed = (await (
      await fetch(`${upgraded.server.url}/v1/ratings/${upgrade.id}/changes`, {
        headers: { Authorization: `Bearer ${KEY_ALL}` },
      })
    ).json()) as { units: { unit: string }[]; next_cursor: string | null };
    await upgraded.server.close();
    const lines = upgraded.logger.lines.join('\n');
    expect(lines).toContain(upgradeWarning);
    expect(lines).toMatch(
      /re-rated after the upgrade \(rating_[^)]+\): 1 unit\(s\) changed, 0 unchanged; totals/,
    );
    expect(upgrade.changes!.changed).toBe(1);
    expect(changed.units.map((change) => change.unit)).toEqual([unitId]);
    expect(changed.next_cursor).toBeNull();
    const check = new Database(path, { readonly: true });
    expect(check.prepare("SELECT engine_digest FROM ratings WHERE reason = 'upgrade'").pluck().get()).toMatch(
      /^[0-9a-f]{16}$/,
    );
    check.close();
    // The next start is a restart: nothing to say.
    const again = await serve();
    await again.server.close();
    expect(again.logger.lines.join('\n')).not.toContain(upgradeWarning);
  });

  it('warns at start when the stored bill was priced with other accounts (it is re-priced under these)', async () => {
    const db = `sqlite:${join(dir, 'accounts-changed.db')}`;
    const accountsPath = join(dir, 'accounts-changed.json');
    // A user's message: stored, so its WABA is rated (and the rating records the accounts it priced with).
    const body = fixture('meta-docs/incoming_text_basic.json');
    const waba = (JSON.parse(body.toString('utf8')) as { entry: { id: string }[] }).entry[0]!.id;
    writeFileSync(
      accountsPath,
      JSON.stringify({ accounts: [{ waba, timezone: 'Asia/Kolkata', currency: 'USD', portfolio: 'P' }] }),
    );
    const serveWith = async (accounts: string | null) => {
      const logger = createMemoryLogger();
      const server = await startServer(
        testConfig({ db, port: 0, host: '127.0.0.1', accountsPath: accounts }),
        { logger, ratingWorkerScript: null },
      );
      return { server, logger };
    };
    const warned = (logger: { lines: string[] }) =>
      logger.lines.some((line) => line.includes('the stored bill was last priced with other accounts'));
    const first = await serveWith(accountsPath);
    expect((await postWebhook(first.server, body)).status).toBe(200);
    await first.server.close(); // finishes the live rating first
    expect(warned(first.logger)).toBe(false);
    const same = await serveWith(accountsPath);
    await same.server.close();
    expect(warned(same.logger)).toBe(false);
    const other = await serveWith(null);
    await other.server.close();
    expect(warned(other.logger)).toBe(true);
  });

  it('closes idle keep-alive sockets, and answers an in-flight request in full with Connection: close', async () => {
    const server = await start();
    const idle = new RawConnection(server.port);
    idle.socket.write('GET /healthz/live HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n');
    expect((await idle.response(1)).head).toMatch(/^HTTP\/1\.1 204/);
    expect(idle.isClosed).toBe(false);

    // A webhook whose body is still arriving when the shutdown starts.
    const body = webhookFixtures()[0]!.body;
    const busy = new RawConnection(server.port);
    busy.socket.write(webhookRequestHead(body));
    busy.socket.write(body.subarray(0, 20));
    await new Promise((resolve) => setTimeout(resolve, 100));

    const closing = server.close();
    await idle.closed; // the idle socket is closed at once, not left for the client to reuse
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(busy.isClosed).toBe(false);
    busy.socket.write(body.subarray(20));
    const answer = await busy.response(1);
    expect(answer.head).toMatch(/^HTTP\/1\.1 200/);
    expect(answer.head).toMatch(/\r\nconnection: close/i);
    expect(JSON.parse(answer.body)).toMatchObject({ received: true });
    await busy.closed;
    await closing;
  });

  it('answers a request whose head is still arriving when the shutdown starts, then closes', async () => {
    const server = await start();
    const body = webhookFixtures()[0]!.body;
    const head = webhookRequestHead(body);
    const late = new RawConnection(server.port);
    // Half a request line and headers: the server has no request yet, only bytes.
    late.socket.write(head.slice(0, 40));
    await new Promise((resolve) => setTimeout(resolve, 100));

    const closing = server.close();
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(late.isClosed).toBe(false);
    late.socket.write(head.slice(40));
    late.socket.write(body);
    const answer = await late.response(1);
    expect(answer.head).toMatch(/^HTTP\/1\.1 200/);
    expect(answer.head).toMatch(/\r\nconnection: close/i);
    await late.closed;
    await closing;
  });
});

describe('what one connection may hold (docs/service.md, "Limits")', () => {
  it('the HTTP server bounds how long a request may take to arrive: its head 15 s, all of it 60 s; idle keep-alive 5 s', async () => {
    const server = await start();
    onTestFinished(() => server.close());
    const http = server.httpServer;
    expect([http.headersTimeout, http.requestTimeout, http.keepAliveTimeout]).toEqual([
      15_000, 60_000, 5_000,
    ]);
  });

  it('cuts a request whose head or body stalls (408) once its time is up, and still answers others', async () => {
    dbCount += 1;
    const server = await startServer(
      testConfig({ db: `sqlite:${join(dir, `main-${dbCount}.db`)}`, port: 0, host: '127.0.0.1' }),
      {
        logger: createMemoryLogger(),
        ratingWorkerScript: null,
        httpTimeouts: { headersMs: 300, requestMs: 600, checkIntervalMs: 100 },
      },
    );
    onTestFinished(() => server.close());
    const body = webhookFixtures()[0]!.body;
    const stalledHead = new RawConnection(server.port);
    stalledHead.socket.write(webhookRequestHead(body).slice(0, 40));
    const stalledBody = new RawConnection(server.port);
    stalledBody.socket.write(webhookRequestHead(body));
    stalledBody.socket.write(body.subarray(0, 20));
    // Well past the timeouts given, far short of Node's defaults (300 s for a request).
    const cut = (connection: RawConnection) =>
      Promise.race([
        connection.closed.then(() => 'cut'),
        new Promise((resolve) => setTimeout(() => resolve('still open'), 5_000)),
      ]);
    expect(await cut(stalledHead)).toBe('cut');
    expect(stalledHead.received).toMatch(/^HTTP\/1\.1 408/);
    expect(await cut(stalledBody)).toBe('cut');
    expect((await postWebhook(server)).status).toBe(200);
  });

  it('refuses a body that would pass the in-flight budget 503 with Retry-After before it is sent; the held one is stored', async () => {
    const body = webhookFixtures()[0]!.body;
    const upload = Buffer.from(
      `${JSON.stringify({ kind: 'inbound', at: '2025-07-10T09:00:00Z', waba: 'W1', business: 'PN1', user: '919876543210', id: 'wamid.held' })}\n${' '.repeat(3_000)}`,
    );
    dbCount += 1;
    const server = await startServer(
      testConfig({ db: `sqlite:${join(dir, `main-${dbCount}.db`)}`, port: 0, host: '127.0.0.1' }),
      {
        logger: createMemoryLogger(),
        ratingWorkerScript: null,
        // Room for the whole upload; with all but its last 10 bytes held, none for the webhook.
        bodyBudgetBytes: upload.length - 10 + body.length - 1,
      },
    );
    onTestFinished(() => server.close());
    const held = new RawConnection(server.port);
    held.socket.write(
      `POST /v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${KEY_ALL}\r\nContent-Length: ${upload.length}\r\n\r\n`,
    );
    held.socket.write(upload.subarray(0, upload.length - 10));
    // Until the server holds the upload's bytes (the gauge counts them).
    const inFlight = async () =>
      Number(
        /^request_bodies_in_flight_bytes (\d+)$/m.exec(
          await (await fetch(`${server.url}/metrics`)).text(),
        )?.[1],
      );
    for (let i = 0; i < 200 && !((await inFlight()) >= upload.length - 10); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await inFlight()).toBe(upload.length - 10);
    // A webhook beside it: only its head is sent, and the answer comes at once.
    const refused = new RawConnection(server.port);
    refused.socket.write(webhookRequestHead(body));
    const answer = await refused.response(1);
    expect(answer.head).toMatch(/^HTTP\/1\.1 503/);
    expect(answer.head).toMatch(/\r\nretry-after: 5/i);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'SERVER_BUSY' } });
    held.socket.write(upload.subarray(upload.length - 10));
    const stored = await held.response(1);
    expect(stored.head).toMatch(/^HTTP\/1\.1 200/);
    expect(JSON.parse(stored.body)).toMatchObject({ accepted: 1 });
    expect(await inFlight()).toBe(0);
    // Room again: the webhook is taken.
    expect((await postWebhook(server)).status).toBe(200);
  });
});

describe('readiness (GET /healthz) fails when the store cannot keep what it acknowledges', () => {
  it('is 503, with the reason, after a write failed, and ready again once a write succeeds', async () => {
    const file = join(dir, 'write-fails.db');
    const server = await start({ db: `sqlite:${file}` });
    try {
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      // Another connection makes every webhook insert fail, as a full disk would; reads still work.
      const other = new Database(file);
      other.exec(
        "CREATE TRIGGER full_disk BEFORE INSERT ON raw_webhooks BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
      );
      const post = () => postWebhook(server);
      expect((await post()).status).toBe(503);
      const health = await fetch(`${server.url}/healthz`);
      expect(health.status).toBe(503);
      expect(JSON.stringify(await health.json())).toMatch(
        /last write of webhooks or events failed.*disk is full/,
      );

      other.exec('DROP TRIGGER full_disk');
      other.close();
      expect((await post()).status).toBe(200);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('is 503 when the SQLite write-ahead log was deleted (what it held would be lost at restart)', async () => {
    const folder = mkdtempSync(join(dir, 'wal-removed-'));
    const file = join(folder, 'wameter.db');
    // The arrival is rated 10 s later at the earliest (unless a read asks): after the log is gone.
    const server = await start({ db: `sqlite:${file}`, ratingDebounceMs: 10_000 });
    const totals = () =>
      fetch(`${server.url}/v1/totals`, { headers: { Authorization: `Bearer ${KEY_ALL}` } });
    try {
      expect((await totals()).status).toBe(200); // the start's rating is done
      expect((await postWebhook(server, fixture('pywa/status_delivered.json'))).status).toBe(200);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      expect(existsSync(`${file}-wal`)).toBe(true);
      rmSync(`${file}-wal`);
      const health = await fetch(`${server.url}/healthz`);
      expect(health.status).toBe(503);
      expect(JSON.stringify(await health.json())).toMatch(/write-ahead log .*wameter\.db-wal was deleted/);
      // A read: the rating of the arrival cannot be stored, and a retry would not help — the answer says why.
      const read = await totals();
      expect(read.status).toBe(503);
      expect(JSON.stringify(await read.json())).toMatch(/STORE_UNAVAILABLE.*write-ahead log .* was deleted/);
      const webhook = await postWebhook(server, webhookFixtures()[1]!.body);
      expect(webhook.status).toBe(503);
    } finally {
      await server.close().catch(() => undefined);
    }
  });

  it('is 503 when the SQLite file was deleted (its folder removed) or replaced by another file', async () => {
    const folder = mkdtempSync(join(dir, 'vanishing-'));
    const file = join(folder, 'wameter.db');
    const server = await start({ db: `sqlite:${file}` });
    try {
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      renameSync(file, `${file}.moved`);
      writeFileSync(file, '');
      const replaced = await fetch(`${server.url}/healthz`);
      expect(replaced.status).toBe(503);
      expect(JSON.stringify(await replaced.json())).toMatch(/no longer the SQLite file/);
      // Nor is a webhook acknowledged into the old file: 503, so that Meta delivers it again later.
      const webhook = await postWebhook(server);
      expect(webhook.status).toBe(503);
      expect(webhook.headers.get('retry-after')).toBe('5');
      // Saying why, as /healthz does (it said only "retry later", which no retry mends).
      expect(((await webhook.json()) as { error: { message: string } }).error.message).toMatch(
        /^The database could not serve this request right now; retry later \(webhooks are retried by Meta\)\. \(.*no longer the SQLite file.*\.\)$/,
      );
      rmSync(folder, { recursive: true, force: true });
      const gone = await fetch(`${server.url}/healthz`);
      expect(gone.status).toBe(503);
      // The reason in brackets after the catalogue's sentence, as every 503 gives it.
      expect(((await gone.json()) as { error: { message: string } }).error.message).toMatch(
        /^The database could not serve this request right now; retry later \(webhooks are retried by Meta\)\. \(.*no longer exists.*\.\)$/,
      );
    } finally {
      await server.close().catch(() => undefined);
    }
  });
});

/**
 * Runs `test` with a PostgreSQL URL whose search_path is a schema of its own (`prefix` and this process),
 * and an admin connection to the same database; the schema is dropped afterwards, whatever happens.
 */
async function inOwnSchema(
  prefix: string,
  test: (url: URL, schema: string, admin: pg.Client) => Promise<void>,
): Promise<void> {
  const base = process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `${prefix}_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
    const url = new URL(base);
    url.searchParams.set('options', `-c search_path=${schema}`);
    await test(url, schema, admin);
  } finally {
    await dropSchema(admin, schema);
    await admin.end();
  }
}

describe('a serve that lost its single-writer lock', () => {
  it('stores nothing more, answers in-flight requests 503, then stops itself with exit code 75 (PostgreSQL: its lock session ended from outside)', async () => {
    await inOwnSchema('wameter_lost_lock', async (url, schema, admin) => {
      const logger = createMemoryLogger();
      const server = await startServer(testConfig({ db: url.toString(), port: 0, host: '127.0.0.1' }), {
        logger,
        ratingWorkerScript: null,
      });
      try {
        expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
        expect(server.failure).toBeNull();
        // A webhook whose body is still arriving when the lock is lost: the drain waits for it.
        const body = webhookFixtures()[0]!.body;
        const inFlight = new RawConnection(server.port);
        inFlight.socket.write(webhookRequestHead(body));
        inFlight.socket.write(body.subarray(0, 20));
        await new Promise((resolve) => setTimeout(resolve, 100));
        await admin.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'wameter serve pid %' AND pid <> pg_backend_pid() AND application_name LIKE $1",
          [`wameter serve pid ${process.pid} %`],
        );
        const deadline = Date.now() + 5_000;
        while (server.failure === null && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(server.failure).toMatchObject({ code: 'WRITER_LOCK_LOST', exitCode: EXIT_WRITER_LOCK_LOST });
        // Not acknowledged into a database another writer may now hold: 503, Meta delivers it again later.
        inFlight.socket.write(body.subarray(20));
        const answer = await inFlight.response(1);
        expect(answer.head).toMatch(/^HTTP\/1\.1 503/);
        expect(answer.head).toMatch(/\r\nconnection: close/i);
        const failure = await server.failed;
        expect(failure.exitCode).toBe(75);
        expect(failure.message).toMatch(/single-writer lock was lost/);
        // Drained and closed: no longer listening, so that nothing mistakes it for a live service.
        await expect(fetch(`${server.url}/healthz/live`)).rejects.toThrow();
        const lost = logger.lines.find((line) => line.includes('single-writer lock was lost'));
        expect(lost && JSON.parse(lost)).toMatchObject({
          level: 'error',
          errorCode: 'WRITER_LOCK_LOST',
          exitCode: 75,
        });
        expect(logger.lines.at(-1)).toMatch(/"msg":"stopped"/);
        const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.ratings`);
        expect(rows[0].n).toBe(0);
      } finally {
        await server.close().catch(() => undefined);
      }
    });
  });

  it('a lock lost while the store is migrated (the lock is taken first) starts blocked and stops with exit code 75, no crash', async () => {
    await inOwnSchema('wameter_lost_migrating', async (url, schema, admin) => {
      // An older store (its newest migration undone), whose migration waits behind another session's lock.
      const first = await startServer(testConfig({ db: url.toString(), port: 0, host: '127.0.0.1' }), {
        logger: createMemoryLogger(),
        ratingWorkerScript: null,
      });
      await first.close();
      // Migration 13 adds ratings.engine_digest (the later ones are redone as they are).
      await admin.query(
        `ALTER TABLE ${schema}.ratings DROP COLUMN engine_digest; DELETE FROM ${schema}.schema_migrations WHERE version >= 13`,
      );
      const holder = new pg.Client({ connectionString: url.toString() });
      await holder.connect();
      try {
        await holder.query(`BEGIN; LOCK TABLE ${schema}.ratings IN ACCESS EXCLUSIVE MODE`);
        const logger = createMemoryLogger();
        const starting = startServer(testConfig({ db: url.toString(), port: 0, host: '127.0.0.1' }), {
          logger,
          ratingWorkerScript: null,
        });
        const isMigrating = () => logger.lines.some((line) => line.includes('checking the store schema'));
        const deadline = Date.now() + 10_000;
        while (!isMigrating() && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 20));
        await new Promise((resolve) => setTimeout(resolve, 300));
        await admin.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'wameter serve pid %' AND pid <> pg_backend_pid() AND application_name LIKE $1",
          [`wameter serve pid ${process.pid} %`],
        );
        await holder.query('ROLLBACK');
        const server = await starting;
        try {
          const failure = await server.failed;
          expect(failure).toMatchObject({ code: 'WRITER_LOCK_LOST', exitCode: EXIT_WRITER_LOCK_LOST });
        } finally {
          await server.close().catch(() => undefined);
        }
      } finally {
        await holder.end();
      }
    });
  });

  it('runUntilSignalled resolves with the failure (exit code 75), not as a stop by signal', async () => {
    await inOwnSchema('wameter_lost_lock_run', async (url, _schema, admin) => {
      const logger = createMemoryLogger();
      const running = runUntilSignalled(testConfig({ db: url.toString(), port: 0, host: '127.0.0.1' }), {
        logger,
        ratingWorkerScript: null,
      });
      const deadline = Date.now() + 10_000;
      while (!logger.lines.some((line) => line.includes('"listening"')) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND application_name LIKE $1',
        [`wameter serve pid ${process.pid} %`],
      );
      await expect(running).resolves.toMatchObject({ code: 'WRITER_LOCK_LOST', exitCode: 75 });
    });
  });
});

describe('a shutdown while the database does not answer', () => {
  it('stops waiting for the store after storeCloseMs and says so, the stuck write never answered 200 (PostgreSQL)', async () => {
    await inOwnSchema('wameter_stuck_close', async (url, schema, admin) => {
      const logger = createMemoryLogger();
      const server = await startServer(testConfig({ db: url.toString(), port: 0, host: '127.0.0.1' }), {
        logger,
        ratingWorkerScript: null,
        shutdownGraceMs: 200,
        storeCloseMs: 500,
      });
      // A database that takes the write and never answers (a partition looks so from here): another session
      // holds the tables a webhook is written to, so its transaction waits on them.
      const blocker = new pg.Client({ connectionString: url.toString() });
      await blocker.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query(`LOCK TABLE ${schema}.raw_webhooks, ${schema}.events IN ACCESS EXCLUSIVE MODE`);
        const answered = postWebhook(server).then(
          (response) => response.status,
          () => 'cut',
        );
        await new Promise((resolve) => setTimeout(resolve, 300));
        // Before, close() waited for the stuck write for as long as the database kept it (here: forever).
        expect(await server.shutDown()).toBe(false);
        expect(await answered).toBe('cut');
        const messages = logger.lines.map((line) => JSON.parse(line) as { msg: string; errorCode?: string });
        expect(messages.find((line) => line.errorCode === 'STORE_NOT_CLOSED')?.msg).toMatch(
          /the store did not close within 0\.5 s .*every request answered 200 is stored/,
        );
      } finally {
        await blocker.query('ROLLBACK');
        await blocker.end();
        await server.close();
      }
      void admin;
    });
  });
});

describe('start-up log', () => {
  it('says it checks (and migrates) the store schema before doing so, and how long it took', async () => {
    const logger = createMemoryLogger();
    dbCount += 1;
    const server = await startServer(
      testConfig({ db: `sqlite:${join(dir, `main-${dbCount}.db`)}`, port: 0, host: '127.0.0.1' }),
      { logger, ratingWorkerScript: null },
    );
    await server.close();
    const messages = logger.lines.map((line) => JSON.parse(line) as { msg: string; ms?: unknown });
    const checking = messages.findIndex((line) => /checking the store schema, migrating it/.test(line.msg));
    const done = messages.findIndex((line) => line.msg === 'store schema up to date');
    const listening = messages.findIndex((line) => line.msg === 'listening');
    expect(checking).toBeGreaterThanOrEqual(0);
    expect(done).toBeGreaterThan(checking);
    expect(listening).toBeGreaterThan(done);
    expect(typeof messages[done]!.ms).toBe('number');
  });

  it('warns of each API key and bound app secret naming a WABA neither the accounts file nor the store knows (a typo), never logging a key or secret', async () => {
    const db = `sqlite:${join(dir, 'unknown-wabas.db')}`;
    const accountsPath = join(dir, 'unknown-wabas-accounts.json');
    writeFileSync(
      accountsPath,
      JSON.stringify({ accounts: [{ waba: 'W-IN-ACCOUNTS', timezone: 'UTC', currency: 'USD' }] }),
    );
    // A stored event of WABA 102290129340398 (Meta's example).
    const body = fixture('meta-docs/incoming_text_basic.json');
    const stored = (JSON.parse(body.toString('utf8')) as { entry: { id: string }[] }).entry[0]!.id;
    const typo = stored.slice(0, -1); // one digit missing
    const first = await startServer(
      testConfig({ db, port: 0, host: '127.0.0.1', apiKeys: [{ name: 'admin', key: KEY_ALL, wabas: '*' }] }),
      { logger: createMemoryLogger(), ratingWorkerScript: null },
    );
    const posted = await fetch(`${first.url}/webhooks/whatsapp`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers: { 'X-Hub-Signature-256': signMetaBody(body, SECRET) },
    });
    expect(posted.status).toBe(200);
    await first.close();

    const serveWith = async (config: Partial<ServiceConfig>) => {
      const logger = createMemoryLogger();
      const server = await startServer(
        testConfig({ db, port: 0, host: '127.0.0.1', accountsPath, ...config }),
        {
          logger,
          ratingWorkerScript: null,
        },
      );
      await server.close();
      const lines = logger.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      return {
        text: logger.lines.join('\n'),
        warnings: lines.filter((line) =>
          /neither in the accounts file nor in the store/.test(String(line.msg)),
        ),
      };
    };
    const typed = await serveWith({
      apiKeys: [
        { name: 'admin', key: KEY_ALL, wabas: '*' },
        { name: 'acme', key: 'acme-bearer-token', wabas: [stored, 'W-IN-ACCOUNTS'] },
        { name: 'acme-typo', key: 'typo-bearer-token', wabas: [typo] },
      ],
      apiKeyPlaces: ['config file "apiKeys"[0]', 'config file "apiKeys"[1]', 'config file "apiKeys"[2]'],
      appSecrets: [SECRET, { secret: 'bound-app-secret', wabas: [stored, typo] }],
    });
    expect(typed.warnings).toEqual([
      expect.objectContaining({
        level: 'warn',
        msg: expect.stringMatching(
          new RegExp(
            `^the API key of config file "apiKeys"\\[2\\] \\(named "acme-typo"\\) names a WABA neither in the accounts file nor in the store: ${typo}; .*check the id for a typo .*the accounts file \\(${escape(accountsPath)}\\); if it is right, no event of that WABA has arrived yet`,
          ),
        ),
        apiKey: 'acme-typo',
        place: 'config file "apiKeys"[2]',
        wabas: [typo],
      }),
      expect.objectContaining({
        level: 'warn',
        msg: expect.stringMatching(/^the app secret of config file "appSecrets"\[1\] is bound to a WABA/),
        appSecret: 1,
        wabas: [typo],
      }),
    ]);
    expect(typed.text).not.toMatch(/bearer-token|bound-app-secret|test-app-secret/);

    // Every WABA known (stored, or in the accounts file): no warning.
    const right = await serveWith({
      apiKeys: [{ name: 'acme', key: 'acme-bearer-token', wabas: [stored, 'W-IN-ACCOUNTS'] }],
      appSecrets: [{ secret: 'bound-app-secret', wabas: [stored] }],
    });
    expect(right.warnings).toEqual([]);
  });

  it("warns at start when the newest rate card of a currency took effect more than half a year before the clock's today", async () => {
    // The bundled cards' newest is usd-2025-10-01 (docs/rate-cards.md).
    const startAt = async (today: string) => {
      const logger = createMemoryLogger();
      dbCount += 1;
      const server = await startServer(
        testConfig({ db: `sqlite:${join(dir, `main-${dbCount}.db`)}`, port: 0, host: '127.0.0.1' }),
        { logger, ratingWorkerScript: null, clock: () => Date.parse(`${today}T12:00:00Z`) },
      );
      await server.close();
      return logger.lines
        .map((line) => JSON.parse(line) as { level: string; msg: string })
        .filter((line) => /rate card/.test(line.msg) && line.level === 'warn');
    };
    expect(await startAt('2026-03-01')).toEqual([]);
    expect(await startAt('2026-04-02')).toEqual([]);
    expect(await startAt('2026-12-05')).toEqual([
      expect.objectContaining({
        msg:
          "the newest USD rate card loaded, usd-2025-10-01, took effect 2025-10-01, 430 days ago: today's USD " +
          "charges are priced from it, whatever Meta charges now; load Meta's current rate cards " +
          '(WAMETER_RATE_CARDS or the config file\'s "rateCards"; docs/rate-cards.md)',
      }),
    ]);
  });

  it('the "listening" line names the address it is bound to (0.0.0.0), beside the URL to reach it here', async () => {
    const logger = createMemoryLogger();
    dbCount += 1;
    const server = await startServer(
      testConfig({ db: `sqlite:${join(dir, `main-${dbCount}.db`)}`, port: 0, host: '0.0.0.0' }),
      { logger, ratingWorkerScript: null },
    );
    await server.close();
    const line = logger.lines.find((text) => text.includes('"listening"'));
    expect(JSON.parse(line!)).toMatchObject({
      host: '0.0.0.0',
      port: server.port,
      interfaces: 'every',
      url: `http://127.0.0.1:${server.port}`,
    });
  });
});

describe('createStoreHealth (the half-open retry after a failed write)', () => {
  it('lets a ping make it ready again only when no write has failed for retryAfterMs', async () => {
    const clock = { nowMs: 0 };
    const health = createStoreHealth({ clock: () => clock.nowMs, retryAfterMs: 30_000 });
    const ping = () => Promise.resolve();
    expect(await health.check(ping)).toEqual({ isReady: true });
    health.writeFailed(new Error('database or disk is full'), 'ingest');
    clock.nowMs = 29_000;
    expect(await health.check(ping)).toMatchObject({ isReady: false });
    clock.nowMs = 31_000;
    expect(await health.check(ping)).toEqual({ isReady: true });
    health.writeFailed(new Error('again'), 'ingest');
    health.writeSucceeded('ingest');
    expect(await health.check(ping)).toEqual({ isReady: true });
  });

  it("stays not ready while webhooks' writes fail, whatever ratings commit meanwhile (and the other way round)", async () => {
    const clock = { nowMs: 0 };
    const health = createStoreHealth({ clock: () => clock.nowMs, retryAfterMs: 30_000 });
    const ping = () => Promise.resolve();
    health.writeFailed(new Error('timed out waiting for the write'), 'ingest');
    clock.nowMs = 1_000;
    health.writeSucceeded('rating');
    expect(await health.check(ping)).toEqual({
      isReady: false,
      reason:
        'the last write of webhooks or events failed 1 s ago: timed out waiting for the write; ready again once such a write succeeds',
    });
    health.writeSucceeded('ingest');
    expect(await health.check(ping)).toEqual({ isReady: true });
    health.writeFailed(new Error('disk full'), 'rating');
    health.writeSucceeded('ingest');
    expect(await health.check(ping)).toMatchObject({
      isReady: false,
      reason: expect.stringContaining('the last write of a rating failed'),
    });
    health.writeSucceeded('rating');
    expect(await health.check(ping)).toEqual({ isReady: true });
  });
});

describe('start-up errors say what failed and what to do', () => {
  const startWith = (db: string) =>
    startServer(testConfig({ db, port: 0, host: '127.0.0.1' }), {
      logger: createMemoryLogger(),
      ratingWorkerScript: null,
    });

  it('names the PostgreSQL host and port it could not reach, never the password', async () => {
    // A port nothing listens on: one the system just gave and took back (a fixed one may be in use).
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const error = await startWith(`postgres://postgres:Hush-Pw@127.0.0.1:${port}/test?password=QueryPw`).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(new RegExp(`PostgreSQL database at 127\\.0\\.0\\.1:${port}`));
    expect(error?.message).toMatch(/ECONNREFUSED/);
    expect(error?.message).not.toMatch(/Hush-Pw|QueryPw/);
  });

  it('names the listen address setting when the host is no address of this machine', async () => {
    const path = join(dir, 'bad-host.db');
    const starting = startServer(
      testConfig({ db: `sqlite:${path}`, port: 0, host: 'no-such-host.invalid' }),
      { logger: createMemoryLogger(), ratingWorkerScript: null },
    );
    await expect(starting).rejects.toThrow(
      /cannot listen on "no-such-host\.invalid" \(--host, WAMETER_HOST or the config file's "host"\): it is not a known host name \(getaddrinfo (ENOTFOUND|EAI_AGAIN)/,
    );
    expect(existsSync(path)).toBe(false);
    await expect(
      startServer(testConfig({ db: `sqlite:${path}`, port: 0, host: '192.0.2.1' }), {
        logger: createMemoryLogger(),
        ratingWorkerScript: null,
      }),
    ).rejects.toThrow(
      /cannot listen on "192\.0\.2\.1" \(--host, WAMETER_HOST.*no address of this machine.*EADDRNOTAVAIL/,
    );
  });

  it('a port already in use fails the start before the SQLite file is created', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => busy.close(() => resolve())));
    const port = (busy.address() as AddressInfo).port;
    const path = join(dir, 'never-made.db');
    const starting = startServer(testConfig({ db: `sqlite:${path}`, port, host: '127.0.0.1' }), {
      logger: createMemoryLogger(),
      ratingWorkerScript: null,
    });
    await expect(starting).rejects.toThrow(
      new RegExp(
        `cannot listen on port ${port} of 127\\.0\\.0\\.1: another process uses it .*EADDRINUSE.*--port, PORT`,
      ),
    );
    expect(existsSync(path)).toBe(false);
  });

  it('names the SQLite path and the likely cause', async () => {
    const missingFolder = join(dir, 'no-such-folder', 'wameter.db');
    await expect(startWith(`sqlite:${missingFolder}`)).rejects.toThrow(
      new RegExp(`${escape(missingFolder)}.*folder .*does not exist`),
    );
    const folder = mkdtempSync(join(dir, 'a-folder-'));
    await expect(startWith(`sqlite:${folder}`)).rejects.toThrow(new RegExp(`${escape(folder)} is a folder`));
    const notDb = join(dir, 'not-a-database.db');
    writeFileSync(notDb, 'this is not SQLite, but it is long enough to have a header of sorts.'.repeat(20));
    await expect(startWith(`sqlite:${notDb}`)).rejects.toThrow(
      new RegExp(`${escape(notDb)} is not a SQLite database`),
    );
  });

  it('names a search_path schema that does not exist, and how to create it', async () => {
    const url = new URL(process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
    url.searchParams.set('options', '-c search_path=wameter_no_such_schema');
    await expect(startWith(url.toString())).rejects.toThrow(
      /schema "wameter_no_such_schema".*does not exist.*CREATE SCHEMA wameter_no_such_schema/,
    );
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
