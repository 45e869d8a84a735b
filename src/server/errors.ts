// The service's one catalogue of errors (after Fastify's lib/errors.js): every refusal the HTTP API can
// give, with a stable code, its HTTP status and a message that says what to do next. Routes never invent
// a status or a code of their own; they name an entry here.

import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

interface CatalogueEntry {
  status: ContentfulStatusCode;
  message: string;
}

export const ERRORS = {
  MISSING_SIGNATURE: {
    status: 401,
    message: 'The X-Hub-Signature-256 header is missing: Meta signs every webhook POST; nothing was stored.',
  },
  BAD_SIGNATURE: {
    status: 401,
    message:
      'X-Hub-Signature-256 does not match the body under any configured app secret (check WAMETER_APP_SECRETS or the config file\'s "appSecrets"); nothing was stored.',
  },
  WEBHOOK_NOT_CONFIGURED: {
    status: 503,
    message:
      'No Meta app secret is configured, so no webhook can be verified: set WAMETER_APP_SECRETS or the config file\'s "appSecrets".',
  },
  WRONG_VERIFY_TOKEN: {
    status: 403,
    message: 'The webhook verification handshake was refused.',
  },
  UNAUTHENTICATED: {
    status: 401,
    message:
      'Send a valid API key as "Authorization: Bearer <key>" (keys are set with WAMETER_API_KEYS or the config file\'s "apiKeys").',
  },
  FORBIDDEN_WABA: {
    status: 403,
    message: 'This API key may not read or write that WABA.',
  },
  FORBIDDEN_RERATE: {
    status: 403,
    message:
      'Only a key for every WABA ("*") may store a re-rate: the stored bill is what the operator invoices from. Send {"dry_run": true} to see what would change.',
  },
  FORBIDDEN_WEBHOOK_WABA: {
    status: 403,
    message:
      'The app secret that signed this webhook may sign only for the WABAs it is bound to (its "wabas" in "appSecrets" of the config file), and this body names another, or an entry or event with no WABA, or a volume-tier statement that would price a WABA it is not bound to; nothing was stored.',
  },
  BODY_TOO_LARGE: {
    status: 413,
    // Each route gives its own limit in the detail (bodyLimitBytes, or a fixed one for small JSON bodies).
    message: 'The request body is larger than this route accepts; nothing was stored.',
  },
  UNSUPPORTED_ENCODING: {
    status: 415,
    message: 'The body is compressed (Content-Encoding): send it uncompressed; nothing was stored or rated.',
  },
  MALFORMED_JSON: {
    status: 400,
    message: 'The body is not valid JSON.',
  },
  MALFORMED_WEBHOOK: {
    status: 400,
    message: 'The body is JSON but not a WhatsApp Business Account webhook.',
  },
  RATE_LIMITED: {
    status: 429,
    message: 'Too many requests from this client: retry after the number of seconds in Retry-After.',
  },
  BAD_QUERY: {
    status: 400,
    message: 'A query parameter or request field is invalid.',
  },
  NOT_FOUND: {
    status: 404,
    message: 'No such endpoint: GET /openapi.json lists them all.',
  },
  UNPRICED_RERATE: {
    status: 409,
    message:
      'The re-rate was not stored: its new rating leaves more charged units without a price than the stored bill. Send {"dry_run": true} to see them (findings NO_RATE_CARD, NO_RATE), send every rate card the stored traffic needs (rate_cards replace the service\'s), or "allow_unpriced": true to store it anyway.',
  },
  NO_SUCH_RATING: {
    status: 404,
    message:
      'No re-rate with that id that this API key may read: GET /v1/ratings lists the ratings, and those with "changes" have changed units to list.',
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    // The methods the route takes are in the detail and the Allow header (method-not-allowed.ts).
    message: 'This endpoint does not take that method: the Allow header lists those it takes.',
  },
  STORE_UNAVAILABLE: {
    status: 503,
    message:
      'The database could not serve this request right now; retry later (webhooks are retried by Meta).',
  },
  RATING_BEHIND: {
    status: 503,
    message:
      'The bill is not current: events already acknowledged could not be rated yet. Nothing is lost; retry after Retry-After seconds',
  },
  INTERNAL: {
    status: 500,
    message: 'Something unexpected failed inside wameter; the log has the details.',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** `{error: {code, message}}`; `detail` (when given) is appended to the catalogue message. */
export function errorBody(code: ErrorCode, detail?: string): ErrorBody {
  const base = ERRORS[code].message;
  return { error: { code, message: detail ? `${base} ${detail}` : base } };
}

/** The JSON error response for a catalogue entry. */
export function errorResponse(
  c: Context,
  code: ErrorCode,
  detail?: string,
  headers?: Record<string, string>,
): Response {
  return c.json(errorBody(code, detail), ERRORS[code].status, headers);
}

/** 503 RATING_BEHIND: the stored bill is older than acknowledged arrivals (their rating keeps failing). */
export function ratingBehindResponse(
  c: Context,
  behind: { message: string; retryAfterSeconds: number },
): Response {
  return errorResponse(c, 'RATING_BEHIND', `(${behind.message}; the log says why.)`, {
    'Retry-After': String(behind.retryAfterSeconds),
  });
}

/** 429 RATE_LIMITED: the key already has its limit of on-demand ratings waiting or running (fair-queue.ts). */
export function clientBusyResponse(
  c: Context,
  busy: { message: string; retryAfterSeconds: number },
): Response {
  return errorResponse(c, 'RATE_LIMITED', `(${busy.message}.)`, {
    'Retry-After': String(busy.retryAfterSeconds),
  });
}
