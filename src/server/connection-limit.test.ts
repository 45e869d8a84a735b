// The number of connections open at once is bounded (config "maxConnections", docs/service.md "Limits"): a
// client that opens connections and sends nothing cannot use up the process's file descriptors. The real
// server on a loopback port, real sockets, a real SQLite file.

import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { testConfig } from '../../test/server-kit.js';
import { createMemoryLogger } from './logger.js';
import { startServer, type RunningServer } from './main.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-connections-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A raw client socket: what it received, and a promise of its close. */
interface RawSocket {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
}

/** Connects to the server; resolves once the connection is made (the server may still close it). */
function open(port: number, onConnect?: (socket: Socket) => void): Promise<RawSocket> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => (received += text));
    socket.on('error', () => undefined); // a reset is a close, here
    const closed = new Promise<void>((resolveClose) => socket.once('close', () => resolveClose()));
    socket.once('connect', () => {
      onConnect?.(socket);
      resolve({ socket, received: () => received, closed });
    });
  });
}

/** Resolves once the server counts `n` open connections. */
async function serverHolds(server: RunningServer, n: number): Promise<void> {
  for (;;) {
    const count = await new Promise<number>((resolve, reject) =>
      server.httpServer.getConnections((error, value) => (error ? reject(error) : resolve(value))),
    );
    if (count === n) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** One request on a raw socket, answered in full before the server closes it (`Connection: close`). */
async function request(raw: RawSocket, path: string): Promise<string> {
  raw.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  await raw.closed;
  return raw.received();
}

describe('connections open at once (config "maxConnections")', () => {
  it('closes each connection beyond the limit unanswered, counts it in /metrics, and serves those held', async () => {
    const logger = createMemoryLogger();
    const server = await startServer(
      testConfig({ db: `sqlite:${join(dir, 'limit.db')}`, port: 0, host: '127.0.0.1', maxConnections: 3 }),
      { logger, ratingWorkerScript: null },
    );
    onTestFinished(() => server.close());
    // Three idle connections that send nothing, as a flood of them would: the limit is reached.
    const held = [await open(server.port), await open(server.port), await open(server.port)];
    await serverHolds(server, 3);

    // The fourth is closed as it is accepted: its request gets no answer.
    const beyond = await open(server.port, (socket) =>
      socket.write('GET /healthz/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
    );
    await beyond.closed;
    expect(beyond.received()).toBe('');

    // The held ones are served as ever; /metrics counts the refusal and the connections open.
    const metrics = await request(held[0]!, '/metrics');
    expect(metrics).toMatch(/^HTTP\/1\.1 200 /);
    expect(metrics).toContain('\nhttp_connections_refused_total 1\n');
    expect(metrics).toContain('\nhttp_connections_open 3\n');
    expect(logger.lines.map((line) => JSON.parse(line) as Record<string, unknown>)).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'connection limit reached: new connections are closed unanswered until some of the open ones close',
        maxConnections: 3,
        refused: 1,
      }),
    );

    // Once one has closed, a new connection is served.
    await serverHolds(server, 2);
    const next = await open(server.port);
    expect(await request(next, '/healthz/live')).toMatch(/^HTTP\/1\.1 204 /);
    for (const raw of held) raw.socket.destroy();
  });
});
