// Graceful shutdown of the HTTP server's keep-alive connections: once draining starts, every response says
// `Connection: close`, idle sockets are ended, and a socket is never cut while a response on it is unsent —
// not even one that Node counts as idle (request fully read, or `end()` called but bytes not yet flushed) —
// nor while a request's head is arriving on it.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Sockets a drain cut when its grace ended: what was still arriving on them (a request body) was cut by the
 * server's shutdown, not by its client (read-body.ts asks, so that the log says who cut it).
 */
const cutAtShutdown = new WeakSet<Socket>();

/** Did a drain cut `socket` at the end of its grace (rather than its client close it)? */
export function wasCutAtShutdown(socket: Socket): boolean {
  return cutAtShutdown.has(socket);
}

export interface ConnectionDrain {
  /** Stops accepting connections; resolves once every socket has closed, or after `graceMs` (cut). */
  drain(graceMs: number): Promise<void>;
  /** The connections open now (accepted, not yet closed). */
  readonly openCount: number;
}

/**
 * Tracks the server's sockets and the responses in progress on each. Must be called before the server
 * receives its first connection. Replaces the server's `closeIdleConnections` (which `server.close()` calls)
 * with one that ends only sockets with no response in progress: Node's own destroys a socket as soon as its
 * last response has called `end()`, before the bytes reach the client — a stored webhook would be answered
 * 200 in the log and a reset on the wire.
 */
export function trackConnections(server: Server): ConnectionDrain {
  /** Socket → its responses not yet finished (sent to the operating system). */
  const sockets = new Map<Socket, Set<ServerResponse>>();
  /**
   * Socket → bytes read from it when it connected or when its last response finished. More read since
   * means the head of a next request is arriving (no 'request' event yet): the socket is not idle.
   */
  const readMarks = new WeakMap<Socket, number>();
  let isDraining = false;

  const endIfIdle = (socket: Socket) => {
    if (!isDraining || (sockets.get(socket)?.size ?? 0) > 0 || socket.destroyed || socket.writableEnded)
      return;
    // A request on its way: it is answered (with `Connection: close`) and the socket ends after it; the
    // grace period still cuts a client that never finishes it.
    if (socket.bytesRead > (readMarks.get(socket) ?? 0)) return;
    // Ends our side once what was written has gone, then closes (as Node does after `Connection: close`).
    socket.destroySoon();
  };

  server.on('connection', (socket: Socket) => {
    sockets.set(socket, new Set());
    readMarks.set(socket, 0);
    socket.once('close', () => sockets.delete(socket));
  });

  // First among the request listeners, so that the header is set before the app writes anything.
  server.prependListener('request', (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    const pending = sockets.get(socket);
    if (!pending) return;
    pending.add(response);
    if (isDraining) response.setHeader('Connection', 'close');
    const done = () => {
      pending.delete(response);
      // Everything read so far belonged to this request (its body is read before the answer finishes).
      readMarks.set(socket, socket.bytesRead);
      endIfIdle(socket);
    };
    response.once('finish', done);
    response.once('close', done);
  });

  server.closeIdleConnections = () => {
    for (const socket of sockets.keys()) endIfIdle(socket);
  };

  return {
    get openCount() {
      return sockets.size;
    },
    drain(graceMs) {
      isDraining = true;
      // Responses not yet started say that the connection closes after them; the client opens a new one.
      for (const responses of sockets.values()) {
        for (const response of responses) {
          if (!response.headersSent) response.setHeader('Connection', 'close');
        }
      }
      return new Promise<void>((resolve) => {
        const deadline = setTimeout(() => {
          for (const socket of sockets.keys()) {
            cutAtShutdown.add(socket); // before destroy(): the request's 'error' and 'close' follow it
            socket.destroy();
          }
        }, graceMs);
        // server.close() stops accepting and calls closeIdleConnections (above): idle sockets end now, the
        // others as their last response finishes.
        server.close(() => {
          clearTimeout(deadline);
          resolve();
        });
      });
    },
  };
}
