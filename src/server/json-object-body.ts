// The API's own JSON request bodies (POST /v1/rerate, /v1/estimate, /v1/reconciliation), read strictly: one
// JSON object, nested at most MAX_JSON_DEPTH deep, each key given once. Never Meta's webhooks nor event lines.

import { isTextNestedDeeperThan, MAX_JSON_DEPTH } from '../ingest/parse-event.js';
import { firstInvalidUtf8, invalidByteWords } from '../ingest/utf8.js';
import type { ErrorCode } from './errors.js';
import { repeatedJsonKey, repeatedKeyMessage } from '../ingest/repeated-json-key.js';

export type JsonObjectBody =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; error: { code: Extract<ErrorCode, 'MALFORMED_JSON' | 'BAD_QUERY'>; detail: string } };

/**
 * `bytes` as one JSON object; `shape` (`{"from", "to", …}`) is named in every refusal. Not JSON: MALFORMED_JSON.
 * JSON but not an object, or a key given twice (JSON.parse would keep its last copy: `"dry_run": true,
 * "dry_run": false` re-rated for real): BAD_QUERY, saying which.
 */
export function parseJsonObjectBody(bytes: Uint8Array, shape: string): JsonObjectBody {
  // Never read with U+FFFD in the place of bad bytes: a WABA id `W1\xff` would be some other id.
  const invalidAt = firstInvalidUtf8(bytes);
  if (invalidAt >= 0) {
    const detail = `The body is not UTF-8 (${invalidByteWords(bytes, invalidAt)}). Send a JSON object: ${shape}.`;
    return { ok: false, error: { code: 'MALFORMED_JSON', detail } };
  }
  const text = new TextDecoder('utf-8').decode(bytes);
  const tooDeep = {
    ok: false,
    error: {
      code: 'MALFORMED_JSON',
      detail: `The body is nested deeper than ${MAX_JSON_DEPTH} levels. Send a JSON object: ${shape}.`,
    },
  } as const;
  // Before parsing: millions of brackets would hold the server's thread for seconds in JSON.parse. Text that
  // parses nests exactly as deep as its brackets outside strings: the value needs no second walk (which took
  // 1.6 s of a 4 MiB body of empty objects, any client's key could send).
  if (isTextNestedDeeperThan(text)) return tooDeep;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: { code: 'MALFORMED_JSON', detail: `Send a JSON object: ${shape}.` } };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return {
      ok: false,
      error: { code: 'BAD_QUERY', detail: `The body must be a JSON object, ${shape}; this one is ${kind}.` },
    };
  }
  const repeated = repeatedJsonKey(text);
  if (repeated !== undefined)
    return { ok: false, error: { code: 'BAD_QUERY', detail: repeatedKeyMessage(repeated) } };
  return { ok: true, value: value as Record<string, unknown> };
}
