// Table 3c: the least webhook server — what a server answering each webhook only once its body is durable can
// serve on this machine, over HTTP, with the load test's client, bodies and connections (bench table 3).
//
// It does what the issue requires before the 200 and nothing else: node:http without a framework, the body
// read (1 MiB at most), its signature checked (the service's `verifyMetaSignature`), parsed (JSON.parse: a
// signed body that is not JSON is kept and answered 400), and appended to a log file of its own, written in
// place (the file's blocks exist before the run, so an fdatasync flushes data, not the file's size) with one
// fdatasync per group, groups gathered by the service's own `GroupCommitQueue` as the SQLite store gathers
// them. No duplicate detection, no events, no request log, no metrics, no rating. With N processes (node's
// cluster: the connections spread over them) each keeps its own log. A server doing what wameter's does
// (duplicates found, events stored, requests logged and counted) has all of this to do and more: where this
// one falls short of the target, so does any such server, at those connections with that client.
//
// The same server can keep bodies in the service's own SQLite store instead (`keepInStore`: the bodies alone,
// or with their events, as the webhook route stores them): a webhook path without the framework, in front of
// the store as it is.
//
//   node dist/bench/main.js --only server   (the table is printed after table 3b)

import cluster from 'node:cluster';
import { closeSync, fdatasync, fdatasyncSync, openSync, readSync, writeSync, writev } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { verifyMetaSignature } from '../src/ingest/signature.js';
import { businessNumbersOf } from '../src/server/analytics-query.js';
import { GroupCommitQueue } from '../src/store/group-commit.js';
import { openSqliteStore, SQLITE_GATHER_TURNS } from '../src/store/sqlite/sqlite-store.js';
import type { IngestItem, IngestItemOutcome, Store } from '../src/store/store.js';
import { webhookEventInputs } from './service-ceiling.js';

/** The most a body may be (the service's default `bodyLimitBytes` is larger; the bench's bodies are < 1 KiB). */
export const FLOOR_BODY_LIMIT = 1 << 20;

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const END = Buffer.alloc(4);
const OUTCOME: IngestItemOutcome = {
  inserted: [],
  duplicates: 0,
  merged: [],
  relistedWabas: [],
  rawId: null,
  isDuplicate: false,
};

/**
 * A log written in place in a file made to its full size first: records (a 4-byte big-endian length, then the
 * bytes) follow one another, a zero length after the last, and wrap to the start when the next group does not
 * fit before the end — as a log whose records have been consumed would be reused. `append` writes a group
 * with one `writev` and one `fdatasync`.
 */
export class RingLog {
  private readonly fd: number;
  private position = 0;
  /** Records appended so far, and the times the log wrapped. */
  records = 0;
  wraps = 0;

  constructor(
    readonly path: string,
    readonly size: number,
  ) {
    if (size < 1 << 16) throw new Error(`a ring log needs at least 64 KiB, not ${size} bytes`);
    this.fd = openSync(path, 'w+');
    const zeros = Buffer.alloc(Math.min(size, 1 << 20));
    for (let written = 0; written < size;) {
      written += writeSync(this.fd, zeros, 0, Math.min(zeros.length, size - written), written);
    }
    fdatasyncSync(this.fd);
  }

  append(bodies: readonly Uint8Array[]): Promise<void> {
    const parts: Uint8Array[] = [];
    let bytes = 0;
    for (const body of bodies) {
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(body.length);
      parts.push(header, body);
      bytes += 4 + body.length;
    }
    if (bytes > this.size) return Promise.reject(new Error(`a group of ${bytes} bytes exceeds the log`));
    if (this.position + bytes > this.size) {
      this.position = 0;
      this.wraps++;
    }
    const at = this.position;
    this.position += bytes;
    this.records += bodies.length;
    // A zero length after the group, overwritten by the next: a reader stops there, not in an older group.
    if (this.position + 4 <= this.size) parts.push(END);
    return new Promise((resolveAppend, reject) => {
      writev(this.fd, parts, at, (writeError) => {
        if (writeError) return reject(writeError);
        fdatasync(this.fd, (syncError) => (syncError ? reject(syncError) : resolveAppend()));
      });
    });
  }

  /** The records from the start of the file up to the first empty length (tests: what was written). */
  readRecords(): Buffer[] {
    const records: Buffer[] = [];
    const header = Buffer.alloc(4);
    for (let at = 0; at + 4 <= this.size;) {
      readSync(this.fd, header, 0, 4, at);
      const length = header.readUInt32BE();
      if (length === 0) break;
      const record = Buffer.alloc(length);
      readSync(this.fd, record, 0, length, at + 4);
      records.push(record);
      at += 4 + length;
    }
    return records;
  }

  close(): void {
    closeSync(this.fd);
  }
}

export interface FloorServer {
  server: Server;
  /** The log and its queue, when the server keeps bodies in a log (no `keep` given). */
  log: RingLog | undefined;
  queue: GroupCommitQueue | undefined;
  close(): Promise<void>;
}

/**
 * What the server does with a signed body before its answer, resolving once the body is durable: `value` is
 * the parsed body, undefined when it is not JSON.
 */
export type KeepBody = (body: Buffer, value: unknown) => Promise<void>;

/**
 * Where a least server keeps bodies: its own log, or the service's SQLite store (the bodies alone, or with
 * their events).
 */
export type FloorKeep = 'log' | 'sqlite-bodies' | 'sqlite-events';
export const FLOOR_KEEPS: readonly FloorKeep[] = ['log', 'sqlite-bodies', 'sqlite-events'];

/**
 * `KeepBody` into the service's store as its webhook route stores a body (`ingestWebhook`): with the body's
 * events (`withEvents`) or without, with its display numbers. A body that is not JSON is kept unreadable.
 */
export function keepInStore(store: Pick<Store, 'ingestWebhook'>, withEvents: boolean): KeepBody {
  return async (body, value) => {
    const receivedAtMs = Date.now();
    if (value === undefined) {
      await store.ingestWebhook({ receivedAtMs, body, parseError: 'not JSON' }, []);
      return;
    }
    const parsed = withEvents ? webhookEventInputs(value, receivedAtMs) : null;
    const events = parsed?.ok === true ? parsed.inputs : [];
    await store.ingestWebhook(
      { receivedAtMs, body, parseError: null, businessNumbers: businessNumbersOf(value) },
      events,
    );
  };
}

function answer(response: ServerResponse, status: number, body?: string): void {
  if (body === undefined) {
    response.writeHead(status).end();
    return;
  }
  response.writeHead(status, { 'content-type': 'application/json' }).end(body);
}

/**
 * The least webhook server on `port` (0: any free one), its bodies in a log at `logPath` of `logBytes`, or
 * kept by `keep`. GET and HEAD answer 204 (its own no-op); POST answers 200 once its body is kept, 401 for a
 * bad or missing signature (nothing kept), 400 for a signed body that is not JSON (kept; an empty one is
 * not), 413 past `FLOOR_BODY_LIMIT`, 503 when keeping it failed.
 */
export async function startFloorServer(
  options: {
    port: number;
    host?: string;
    secrets: readonly string[];
    /** GET /healthz answers 204 once this is true, 503 before (the workers of a cluster: until all listen). */
    isReady?: () => boolean;
  } & ({ logPath: string; logBytes: number } | { keep: KeepBody }),
): Promise<FloorServer> {
  let log: RingLog | undefined;
  let queue: GroupCommitQueue | undefined;
  let keep: KeepBody;
  if ('keep' in options) {
    keep = options.keep;
  } else {
    const ring = new RingLog(options.logPath, options.logBytes);
    const ringQueue = new GroupCommitQueue(
      async (items: readonly IngestItem[]) => {
        await ring.append(items.map((item) => item.raw!.body));
        return items.map(() => OUTCOME);
      },
      { gatherTurns: SQLITE_GATHER_TURNS },
    );
    log = ring;
    queue = ringQueue;
    keep = async (body) => {
      await ringQueue.submit({
        raw: { receivedAtMs: Date.now(), body, sha256: '', parseError: null },
        events: [],
      });
    };
  }
  const handle = (request: IncomingMessage, response: ServerResponse, body: Buffer): void => {
    const signature = request.headers['x-hub-signature-256'];
    if (
      !verifyMetaSignature(body, typeof signature === 'string' ? signature : undefined, options.secrets).ok
    ) {
      answer(response, 401, '{"error":"bad signature"}');
      return;
    }
    if (body.length === 0) {
      // Nothing to keep (and a record's zero length marks the log's end).
      answer(response, 400, '{"error":"empty body"}');
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(UTF8.decode(body));
    } catch {
      value = undefined;
    }
    const isJson = value !== undefined;
    keep(body, value).then(
      () => answer(response, isJson ? 200 : 400, isJson ? '{"received":true}' : '{"error":"not JSON"}'),
      () => answer(response, 503, '{"error":"not stored"}'),
    );
  };
  const server = createServer((request, response) => {
    if (request.method === 'GET' || request.method === 'HEAD') {
      const isReady = request.url !== '/healthz' || (options.isReady?.() ?? true);
      answer(response, isReady ? 204 : 503);
      return;
    }
    if (request.method !== 'POST') {
      answer(response, 405);
      return;
    }
    const chunks: Buffer[] = [];
    let length = 0;
    request.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length <= FLOOR_BODY_LIMIT) chunks.push(chunk);
    });
    request.on('end', () => {
      if (length > FLOOR_BODY_LIMIT) answer(response, 413, '{"error":"too large"}');
      else handle(request, response, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolveListen());
  });
  return {
    server,
    log,
    queue,
    close: async () => {
      await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
      await queue?.idle();
      log?.close();
    },
  };
}

/**
 * Child mode (`main.js --floor-child PORT DIR PROCESSES SECRET KEEP`): the least server on PORT until
 * SIGTERM, in one process or, with PROCESSES > 1, in that many workers of node's cluster sharing the port,
 * each keeping bodies as KEEP says (`FloorKeep`) in DIR: its own log of 64 MiB, or its own SQLite store.
 */
export async function runFloorChild(
  port: number,
  dir: string,
  processes: number,
  secret: string,
  keep: FloorKeep,
): Promise<void> {
  if (!FLOOR_KEEPS.includes(keep)) {
    throw new Error(
      `--floor-child: KEEP must be one of ${FLOOR_KEEPS.join(', ')}, not ${JSON.stringify(keep)}`,
    );
  }
  if (processes > 1 && cluster.isPrimary) {
    let listening = 0;
    cluster.on('listening', () => {
      if (++listening < processes) return;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.send('ready');
    });
    for (let index = 0; index < processes; index++) cluster.fork();
    process.once('SIGTERM', () => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
      process.exit(0);
    });
    return;
  }
  let isReady = processes <= 1;
  process.on('message', (message) => {
    if (message === 'ready') isReady = true;
  });
  const store = keep === 'log' ? null : await openSqliteStore(join(dir, `floor-${process.pid}.db`));
  const floor = await startFloorServer({
    port,
    secrets: [secret],
    isReady: () => isReady,
    ...(store === null
      ? { logPath: join(dir, `floor-${process.pid}.log`), logBytes: 64 << 20 }
      : { keep: keepInStore(store, keep === 'sqlite-events') }),
  });
  process.once('SIGTERM', () => {
    floor
      .close()
      .then(() => store?.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
}
