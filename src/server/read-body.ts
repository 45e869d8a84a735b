// Request bodies read with a limit: the bytes stop being kept once the limit is passed, whether or not the
// client declared a length (a chunked body is counted as it arrives, never buffered whole first).

import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';

export type BodyRead = { ok: true; bytes: Uint8Array } | { ok: false };

/**
 * The exact request bytes, refusing (without buffering the rest) anything beyond `limit`. On the Node server
 * the bytes come straight from Node's request: turning it into a web stream first (c.req.raw.body) costs
 * more than verifying and parsing a whole webhook. Elsewhere (app.request in tests), from the web Request.
 */
export async function readRawBody(c: Context, limit: number): Promise<BodyRead> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > limit) return { ok: false };
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming !== undefined && typeof incoming.on === 'function') return readNodeBody(incoming, limit);
  return readWebBody(c.req.raw, limit);
}

function readNodeBody(incoming: IncomingMessage, limit: number): Promise<BodyRead> {
  if (incoming.readableEnded) return Promise.resolve({ ok: true, bytes: new Uint8Array(0) });
  return new Promise<BodyRead>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > limit) {
        stop();
        // Keep nothing more, but let the rest arrive so that the client reads the 413 answer.
        incoming.resume();
        resolve({ ok: false });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve({ ok: true, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total) });
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    const onClose = () => {
      stop();
      reject(new Error('the client closed the connection before the end of the request body'));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}

async function readWebBody(request: Request, limit: number): Promise<BodyRead> {
  if (!request.body) return { ok: true, bytes: new Uint8Array(0) };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      return { ok: false };
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
