// The body of POST /v1/reconciliation read and checked: one JSON object holding Meta's pricing_analytics /
// conversation_analytics answer (or being it), and an optional "waba". Read where on-demand ratings run (the
// worker thread, live-rater.ts): a 4 MiB export took the server's thread 0.7–1.3 s to parse, check, read and
// copy to the worker (docs/benchmarks.md §8), and every webhook waited as long. So this module imports
// nothing of the HTTP side: the worker loads it.

import { MAX_INSTANT_MS, MIN_INSTANT_MS } from '../core/calendar.js';
import { parseAnalyticsExport, type AnalyticsExport } from '../core/reconcile.js';
import type { Result } from '../core/result.js';
import type { ErrorCode } from './errors.js';
import { parseJsonObjectBody } from './json-object-body.js';

/** The body's shape, named in every refusal of it. */
export const RECONCILIATION_BODY_SHAPE =
  '{"analytics": <Meta\'s conversation_analytics / pricing_analytics answer>, "waba"?}';

/** Why a reconciliation body is refused: the answer's code (400 either way) and words. */
export interface ReconciliationBodyRefusal {
  code: Extract<ErrorCode, 'MALFORMED_JSON' | 'BAD_QUERY'>;
  detail: string;
}

/**
 * The export a reconciliation body holds and the WABA it is of: the body's "waba", else the export's own id
 * (neither: undefined, the key's one WABA is meant). Refused, in the route's words, when the body is not one
 * JSON object, "waba" is not one id, or the export cannot be read.
 */
export function readReconciliationBody(
  bytes: Uint8Array,
): Result<{ export: AnalyticsExport; waba?: string }, ReconciliationBodyRefusal> {
  // One JSON object, each key once: a second "waba" would be compared instead of the first.
  const body = parseJsonObjectBody(bytes, RECONCILIATION_BODY_SHAPE);
  if (!body.ok) return { ok: false, error: { code: body.error.code, detail: body.error.detail } };
  const { value } = body;
  // One WABA id, or left out: any other value (null, a number, a list, "") is no WABA — taken as absent, a
  // key for several WABAs would be answered for all of them, not the one it meant.
  if (value.waba !== undefined && (typeof value.waba !== 'string' || value.waba.trim() === '')) {
    return refused(
      `"waba" must be one WABA id, a non-empty string ("waba": "102290129340398"), or left out; it is ${describeJson(value.waba)}.`,
    );
  }
  const exported = value.analytics ?? value;
  // Bad input is 400 naming the field, never a store outage (503 with Retry-After, an error logged).
  const refusal = analyticsPointRefusal(exported);
  if (refusal !== undefined) return refused(refusal);
  let parsed: ReturnType<typeof parseAnalyticsExport>;
  try {
    parsed = parseAnalyticsExport(exported);
  } catch (error) {
    // Reading the export is the request's input alone: whatever stops it is the export's fault.
    return refused(`the analytics export cannot be read: ${String(error)}.`);
  }
  if (!parsed.ok) return refused(parsed.error.message);
  const waba = typeof value.waba === 'string' ? value.waba : parsed.value.waba;
  return { ok: true, value: { export: parsed.value, ...(waba ? { waba } : {}) } };
}

function refused(detail: string): { ok: false; error: ReconciliationBodyRefusal } {
  return { ok: false, error: { code: 'BAD_QUERY', detail } };
}

/**
 * Why an analytics export's data point cannot be compared, naming it and the field (`data[0].data_points[3]:
 * "end" …`), or undefined. Checks what parseAnalyticsExport would take but cannot compute with: a time
 * beyond the instants wameter reads (0 to 9999-12-31: a Date past it is invalid). A cost of any size is read
 * exactly (metaCostToMicros). The export's shape itself is left to parseAnalyticsExport (and its messages).
 */
export function analyticsPointRefusal(value: unknown): string | undefined {
  const isRecord = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isRecord(value)) return undefined;
  const body = isRecord(value.conversation_analytics)
    ? value.conversation_analytics
    : isRecord(value.pricing_analytics)
      ? value.pricing_analytics
      : value;
  if (!Array.isArray(body.data)) return undefined;
  for (const [i, entry] of body.data.entries()) {
    if (!isRecord(entry) || !Array.isArray(entry.data_points)) continue;
    for (const [j, point] of entry.data_points.entries()) {
      if (!isRecord(point)) continue;
      const where = `data[${i}].data_points[${j}]`;
      for (const field of ['start', 'end'] as const) {
        // Read as parseAnalyticsExport reads it: Unix seconds, a number or a string of digits.
        const given = point[field];
        const seconds = typeof given === 'string' && /^\d+$/.test(given) ? Number(given) : given;
        if (typeof seconds !== 'number' || !Number.isSafeInteger(seconds)) continue;
        const ms = seconds * 1000;
        if (ms < MIN_INSTANT_MS || ms > MAX_INSTANT_MS) {
          return `${where}: "${field}" is ${seconds}, outside the instants wameter reads: Unix seconds from 0 to ${Math.floor(MAX_INSTANT_MS / 1000)} (9999-12-31).`;
        }
      }
    }
  }
  return undefined;
}

/** A JSON value in a refusal's words: its type, and the value itself when short. */
export function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value))
    return value.length === 0
      ? 'an empty list'
      : `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return value.trim() === '' ? 'an empty string' : 'a string';
  const text = JSON.stringify(value);
  return `a ${typeof value === 'number' ? 'number' : typeof value} (${text.length > 40 ? `${text.slice(0, 37)}...` : text})`;
}
