// What the request log line says beyond method, path and status: the request's id — the client's
// X-Request-Id when it is a safe one, else a fresh one, so that a client's or a proxy's record of a request
// can be matched to the service's lines — and the error code of a refusal. It never lets a client put
// arbitrary text into the logs (the id's length and characters are bounded).

import { randomFillSync } from 'node:crypto';

/** Letters, digits and `. _ : -`, at most 128 characters: UUIDs, ULIDs and proxies' ids fit. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Random bytes of an id made here: 80 bits, so that no two ids of any process meet in practice. */
const ID_BYTES = 10;
/**
 * Random bytes for the ids to come, drawn a few hundred ids at a time: random bytes drawn for every request
 * cost the no-op route a quarter of its time (`randomFillSync` in a `--cpu-prof` of the load bench). Never
 * a count: a process's part and a counter (`req_<12 hex><8 base-36>`) told any client, by two ids of its own,
 * how many requests the service had answered between them — when other clients' traffic (Meta's webhooks)
 * came in.
 */
const pool = Buffer.alloc(ID_BYTES * 409);
let used = pool.length;

/** The client's id when it is safe to log and echo; otherwise (absent, too long, other characters) a new one. */
export function requestIdFor(given: string | undefined): string {
  if (given !== undefined && SAFE_REQUEST_ID.test(given)) return given;
  if (used + ID_BYTES > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  used += ID_BYTES;
  return `req_${pool.toString('hex', used - ID_BYTES, used)}`;
}

/**
 * The `error.code` of an error answer (`{"error": {"code": …}}`, errors.ts), read from a copy of its body;
 * undefined for a success, an answer of another type, or one without a code. Error bodies are small.
 */
export async function errorCodeOf(response: Response): Promise<string | undefined> {
  if (response.status < 400 || response.body === null) return undefined;
  if (!(response.headers.get('content-type') ?? '').startsWith('application/json')) return undefined;
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } };
    return typeof body.error?.code === 'string' ? body.error.code : undefined;
  } catch {
    return undefined;
  }
}
