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
//   node dist/bench/main.js --only server   (the table is printed after table 3b)

import cluster from 'node:cluster';
import { closeSync, fdatasync, fdatasyncSync, openSync, readSync, writeSync, writev } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { verifyMetaSignature } from '../src/ingest/signature.js';
import { GroupCommitQueue } from '../src/store/group-commit.js';
import type { IngestItem, IngestItemOutcome } from '../src/store/store.js';

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
  log: RingLog;
  queue: GroupCommitQueue;
  close(): Promise<void>;
}

function answer(response: ServerResponse, status: number, body?: string): void {
  if (body === undefined) {
    response.writeHead(status).end();
    return;
  }
  response.writeHead(status, { 'content-type': 'application/json' }).end(body);
}

/**
 * The least webhook server on `port` (0: any free one), its log in `logPath`. GET and HEAD answer 204
 * (its own no-op); POST answers 200 once its body is in the log, 401 for a bad or missing signature (nothing
 * kept), 400 for a signed body that is not JSON (kept; an empty one is not), 413 past `FLOOR_BODY_LIMIT`.
 */
export async function startFloorServer(options: {
  port: number;
  host?: string;
  logPath: string;
  logBytes: number;
  secrets: readonly string[];
  /** GET /healthz answers 204 once this is true, 503 before (the workers of a cluster: until all listen). */
  isReady?: () => boolean;
}): Promise<FloorServer> {
  const log = new RingLog(options.logPath, options.logBytes);
  const queue = new GroupCommitQueue(
    async (items: readonly IngestItem[]) => {
      await log.append(items.map((item) => item.raw!.body));
      return items.map(() => OUTCOME);
    },
    { gatherTurns: 4 },
  );
  const store = (body: Buffer): Promise<IngestItemOutcome> =>
    queue.submit({ raw: { receivedAtMs: Date.now(), body, sha256: '', parseError: null }, events: [] });
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
    let isJson = true;
    try {
      JSON.parse(UTF8.decode(body));
    } catch {
      isJson = false;
    }
    store(body).then(
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
      await queue.idle();
      log.close();
    },
  };
}

/**
 * Child mode (`main.js --floor-child PORT DIR PROCESSES SECRET`): the least server on PORT until SIGTERM, in
 * one process or, with PROCESSES > 1, in that many workers of node's cluster sharing the port, each with its
 * own log of 64 MiB in DIR.
 */
export async function runFloorChild(
  port: number,
  dir: string,
  processes: number,
  secret: string,
): Promise<void> {
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
  const floor = await startFloorServer({
    port,
    logPath: join(dir, `floor-${process.pid}.log`),
    logBytes: 64 << 20,
    secrets: [secret],
    isReady: () => isReady,
  });
  process.once('SIGTERM', () => {
    floor.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
