// Request bodies read with a limit: the bytes stop being kept once the limit is passed, whether or not the
// client declared a length (a chunked body is counted as it arrives, never buffered whole first). And the
// bytes held at once by all requests together are bounded (a BodyBudget): past it a body is refused 503 —
// before it is read when its length is declared — rather than buffered until the process runs out of memory.

import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { wasCutAtShutdown } from './connection-drain.js';

export type BodyRead =
  | { ok: true; bytes: Uint8Array }
  /** `too_large`: beyond this route's limit (413). `busy`: beyond the in-flight budget of all requests (503). */
  | { ok: false; reason: 'too_large' | 'busy' };

/**
 * Who cut a body: `client` — it closed the connection or its body stream failed (a phone on a train, a
 * proxy's timeout, the server's own request timeout); `shutdown` — the server's shutdown, its grace over,
 * cut the connection while the body was still arriving (connection-drain.ts).
 */
export type BodyCutBy = 'client' | 'shutdown';

/**
 * The connection closed before the whole body arrived: nothing of it was kept, and nobody is left to answer.
 * Thrown by `readRawBody` for the app's error handler to log quietly, saying who cut it (`cutBy`), never as
 * an unexpected error.
 */
export class IncompleteBodyError extends Error {
  constructor(
    /** The body bytes that had arrived. */
    readonly receivedBytes: number,
    readonly cutBy: BodyCutBy = 'client',
    options?: { cause?: unknown },
  ) {
    super(
      cutBy === 'shutdown'
        ? `the server's shutdown cut the connection after ${receivedBytes} bytes of the request body, its grace for in-flight requests being over`
        : `the connection closed after ${receivedBytes} bytes of the request body, before its end`,
      options,
    );
    this.name = 'IncompleteBodyError';
  }
}

/** The largest sum of request body bytes held at once, by default (docs/service.md, "Limits"). */
export const DEFAULT_BODY_BUDGET_BYTES = 128 * 1024 * 1024;
/**
 * The code of the budget's refusal. Not in errors.ts's catalogue (this module answers it itself); the OpenAPI
 * document lists it with the catalogue's codes.
 */
export const BODY_BUDGET_ERROR_CODE = 'SERVER_BUSY';
/** What a client refused for the budget is told to wait: bodies in flight are read in seconds, or cut. */
export const BODY_BUDGET_RETRY_AFTER_SECONDS = 5;

/**
 * The bytes of request bodies held at once across all requests: each request's bytes are counted as they
 * arrive and given back when its handling ends. A body that would pass `limitBytes` is refused, and so is one
 * that would take its client past `perClientBytes`: one address sending large bodies slowly, never ending
 * them, would otherwise hold the whole budget and have every webhook refused (33 held 4 MiB bodies did).
 */
export class BodyBudget {
  private heldBytes = 0;
  /** Client → bytes its requests hold now (absent when none). */
  private readonly heldByClient = new Map<string, number>();

  constructor(
    readonly limitBytes: number,
    readonly perClientBytes: number = limitBytes,
  ) {}

  /** Bytes held now by all requests. */
  get inFlightBytes(): number {
    return this.heldBytes;
  }

  /** Does `bytes` more fit now, for `client` (nothing is taken)? */
  fits(bytes: number, client?: string): boolean {
    if (this.heldBytes + bytes > this.limitBytes) return false;
    return client === undefined || (this.heldByClient.get(client) ?? 0) + bytes <= this.perClientBytes;
  }

  /**
   * A request's account, counted for `client` too (its address: see `clientOfAddress`): what it takes is given
   * back by `release()`, once, when its handling ends.
   */
  open(client?: string): BodyLease {
    let taken = 0;
    return {
      fits: (bytes) => this.fits(bytes, client),
      take: (bytes) => {
        if (!this.fits(bytes, client)) return false;
        this.heldBytes += bytes;
        if (client !== undefined) this.heldByClient.set(client, (this.heldByClient.get(client) ?? 0) + bytes);
        taken += bytes;
        return true;
      },
      release: () => {
        this.heldBytes -= taken;
        if (client !== undefined && taken > 0) {
          const left = (this.heldByClient.get(client) ?? 0) - taken;
          if (left > 0) this.heldByClient.set(client, left);
          else this.heldByClient.delete(client);
        }
        taken = 0;
      },
    };
  }
}

/**
 * The client a body counts for: its IPv4 address, or the /64 network of an IPv6 one (a single host is given
 * a whole /64, so one address each would cap nothing).
 */
export function clientOfAddress(address: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::')
    ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export interface BodyLease {
  fits(bytes: number): boolean;
  /** Takes `bytes` more for this request; false (nothing taken) when they do not fit. */
  take(bytes: number): boolean;
  release(): void;
}

/** Each request's lease, by its Request object: set by the app's middleware, read by `readRawBody`. */
const leases = new WeakMap<Request, BodyLease>();

/** Makes `lease` account for every body `readRawBody` reads for this request. */
export function attachBodyLease(request: Request, lease: BodyLease): void {
  leases.set(request, lease);
}

/** 503 SERVER_BUSY: the body was not read (or not all of it), nothing was stored; retry after Retry-After. */
export function bodyBudgetResponse(c: Context): Response {
  return c.json(
    {
      error: {
        code: BODY_BUDGET_ERROR_CODE,
        message:
          'The server is holding as many request bodies as it may at once; this one was not read and nothing was stored. Retry after the seconds in Retry-After (Meta retries webhooks by itself).',
      },
    },
    503,
    { 'Retry-After': String(BODY_BUDGET_RETRY_AFTER_SECONDS) },
  );
}

/**
 * The exact request bytes, refusing (without buffering the rest) anything beyond `limit`, or beyond the
 * in-flight budget of all requests; rejects with IncompleteBodyError when the client cuts the body. On the
 * Node server the bytes come straight from Node's request: turning it into a web stream first
 * (c.req.raw.body) costs more than verifying and parsing a whole webhook. Elsewhere (app.request in tests),
 * from the web Request.
 */
export async function readRawBody(c: Context, limit: number): Promise<BodyRead> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > limit) return { ok: false, reason: 'too_large' };
  const lease = leases.get(c.req.raw) ?? UNBOUNDED;
  // A declared length is known before a byte is read: refused at once when it cannot fit.
  if (declared !== undefined && Number(declared) > 0 && !lease.fits(Number(declared))) {
    return { ok: false, reason: 'busy' };
  }
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming !== undefined && typeof incoming.on === 'function')
    return readNodeBody(incoming, limit, lease);
  return readWebBody(c.req.raw, limit, lease);
}

/** No budget (a route tested without the app's middleware). */
const UNBOUNDED: BodyLease = { fits: () => true, take: () => true, release: () => undefined };

function readNodeBody(incoming: IncomingMessage, limit: number, lease: BodyLease): Promise<BodyRead> {
  if (incoming.readableEnded) return Promise.resolve({ ok: true, bytes: new Uint8Array(0) });
  // Asked once the connection is gone: a drain marks its socket before cutting it.
  const socket = incoming.socket;
  const cutBy = (): BodyCutBy => (wasCutAtShutdown(socket) ? 'shutdown' : 'client');
  // Cut before it was read (the client left, or the shutdown cut it, while the request waited): no 'close'
  // is coming to say so.
  if (incoming.destroyed) return Promise.reject(new IncompleteBodyError(0, cutBy()));
  return new Promise<BodyRead>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const refuse = (reason: 'too_large' | 'busy') => {
      stop();
      chunks.length = 0;
      // Keep nothing more, but let the rest arrive so that the client reads the answer.
      incoming.resume();
      resolve({ ok: false, reason });
    };
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > limit) return refuse('too_large');
      if (!lease.take(chunk.byteLength)) return refuse('busy');
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve({ ok: true, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total) });
    };
    // Node's 'error' (ECONNRESET "aborted": the socket closed mid-body — its client, the request timeout or
    // the shutdown's grace cut it), or a 'close' without 'end': either way the body will not come whole. What
    // arrived is dropped with `chunks`; the lease keeps its bytes until the request's handling ends (the
    // app's middleware releases it).
    const onError = (error: Error) => {
      stop();
      reject(new IncompleteBodyError(total, cutBy(), { cause: error }));
    };
    const onClose = () => {
      stop();
      reject(new IncompleteBodyError(total, cutBy()));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}

async function readWebBody(request: Request, limit: number, lease: BodyLease): Promise<BodyRead> {
  if (!request.body) return { ok: true, bytes: new Uint8Array(0) };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let read: ReadableStreamReadResult<Uint8Array>;
    try {
      read = await reader.read();
    } catch (error) {
      throw new IncompleteBodyError(total, 'client', { cause: error });
    }
    const { done, value } = read;
    if (done) break;
    total += value.byteLength;
    const refusal = total > limit ? 'too_large' : lease.take(value.byteLength) ? undefined : 'busy';
    if (refusal !== undefined) {
      await reader.cancel().catch(() => undefined);
      return { ok: false, reason: refusal };
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return { ok: true, bytes: chunks[0]! };
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { ok: true, bytes };
}

/**
 * The request's `Content-Encoding` when it is not `identity` (`gzip`, `br`…), else undefined: wameter reads no
 * compressed body, so such a request is refused 415 UNSUPPORTED_ENCODING before its body is read — read as sent,
 * event lines would each be "malformed", and a JSON request body "not JSON", nothing saying why.
 */
export function bodyEncoding(c: Context): string | undefined {
  const encoding = c.req.header('content-encoding')?.trim().toLowerCase();
  return encoding && encoding !== 'identity' ? encoding : undefined;
}
