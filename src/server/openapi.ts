// The hand-written OpenAPI 3.1 description of every route of app.ts, served at /openapi.json. A test checks
// that every route the app registers appears here, so the document cannot silently fall behind; another
// (openapi-conformance.test.ts) that every answer, errors included, conforms to the schema declared here for
// its route and status — a field an answer has and its schema does not name counts as a mismatch.

import { ERAS, FINDING_CODES, PRICING_TYPES, UNIT_CATEGORIES } from '../core/units.js';
import { MAX_JSON_DEPTH } from '../ingest/parse-event.js';
import { ERRORS } from './errors.js';
import { BODY_BUDGET_ERROR_CODE } from './read-body.js';
import { UNIT_ORDERS } from '../store/store.js';
import { MAX_ANALYTICS_BUCKETS } from './unit-filter.js';
import { MAX_CSV_COLUMNS, MAX_ESTIMATE_ECHO_CHARS, MAX_ESTIMATE_RECIPIENTS } from '../use-cases/estimate.js';

/**
 * POST /v1/events lists this many rejections (the first, by line) and counts the rest (`rejected_unlisted`):
 * a body of garbage lines must not answer a list larger than itself (a 4 MiB body of `x` lines answered 193 MB
 * of rejections). Stated here with the answer's schema; app.ts applies it.
 */
export const MAX_LISTED_REJECTIONS = 1000;

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

/** `limit` (default 100) and `cursor`: a page of a cursor-paged list (`next_cursor` in the answer). */
const pageParameters = [
  {
    name: 'limit',
    in: 'query',
    schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
  { name: 'cursor', in: 'query', schema: { type: 'string' } },
];

const unitFilterParameters = [
  {
    name: 'waba',
    in: 'query',
    schema: { type: 'string' },
    description: 'One WABA (must be one of the key’s).',
  },
  { name: 'business', in: 'query', schema: { type: 'string' }, description: 'Business phone number id.' },
  {
    name: 'user',
    in: 'query',
    schema: { type: 'string' },
    description:
      'A phone number or a business-scoped user id, read as /v1/explain reads it: an id Meta gave together ' +
      "with a number finds the number's units too, and its own.",
  },
  { name: 'category', in: 'query', schema: { $ref: '#/components/schemas/Category' } },
  { name: 'type', in: 'query', schema: { $ref: '#/components/schemas/PricingType' } },
  {
    name: 'market',
    in: 'query',
    schema: { type: 'string' },
    description: 'Meta pricing market, e.g. India.',
  },
  {
    name: 'from',
    in: 'query',
    schema: { type: 'string' },
    description: 'Units opened at or after (ISO-8601 with offset, or Unix seconds).',
  },
  { name: 'to', in: 'query', schema: { type: 'string' }, description: 'Units opened before (same format).' },
];

/**
 * `month`: the units billed in a month by each WABA's clock (/v1/units, /v1/units.csv, /v1/totals only: the
 * other routes that take the units filters cut their own periods).
 */
const monthParameter = {
  name: 'month',
  in: 'query',
  schema: { type: 'string', pattern: '^\\d{4}-(0[1-9]|1[0-2])$' },
  description:
    "The units billed in that month (YYYY-MM), each by its WABA's clock: those whose `local_date` is in it, as " +
    '`wameter rate --month` chooses them. Not with `from`/`to` (UTC instants): 400 BAD_QUERY when both are given, ' +
    'or when the value is no month.',
};

/** `order`: the order /v1/units and /v1/units.csv list the units in (UNIT_ORDERS, src/store/store.ts). */
const unitOrderParameter = {
  name: 'order',
  in: 'query',
  schema: { type: 'string', enum: [...UNIT_ORDERS], default: 'opened_at' },
  description:
    'opened_at (the default): by opening time, then unit id, then WABA. amount_desc: the dearest first — ' +
    "grouped by currency (in code order: amounts of two currencies are never compared), each currency's " +
    'largest amount first, its units that could not be priced (amount null) after its free ones, equal ' +
    'amounts in opening-time order. In any letter case; another value is 400 BAD_QUERY naming the orders. A ' +
    'cursor continues the order it was returned with only: one of another order is 400 BAD_QUERY naming both.',
};

/** `from` / `to` of /v1/reconciliation: a local day (its description is each route's). */
function reconciliationDayParameter(name: 'from' | 'to') {
  return { name, in: 'query', schema: { type: 'string', format: 'date' } };
}

/** A route without parameters refuses any query parameter all the same (an unknown one is never ignored). */
const noParameterError = {
  '400': errorResponse('BAD_QUERY: a query parameter is given (the route takes none), named in the message.'),
};

const authErrors = {
  '400': errorResponse(
    'BAD_QUERY: a parameter or body field is invalid, or not one the route takes (named in the message); a ' +
      'query parameter given twice, given empty, or holding U+0000 (NUL) is refused too. Checked after the API ' +
      'key and the rate limit.',
  ),
  '401': errorResponse('UNAUTHENTICATED: missing or unknown API key.'),
  '403': errorResponse('FORBIDDEN_WABA: the key may not read that WABA.'),
  '429': errorResponse('RATE_LIMITED (see Retry-After).'),
  '503': errorResponse(
    'STORE_UNAVAILABLE; or RATING_BEHIND: acknowledged events could not be rated yet, so the stored bill is not current (retry after Retry-After); or, for a request with a body, SERVER_BUSY: the bodies held at once by all requests reached their budget, this one was not read (retry after Retry-After).',
  ),
};

/**
 * A route that reads a JSON object body: too large a body is refused before it is parsed; one that is not JSON,
 * not an object, or gives a key twice, is refused too (json-object-body.ts).
 */
const jsonBodyErrors = {
  '400': errorResponse(
    `${authErrors['400'].description} The body must be one JSON object (an empty one is MALFORMED_JSON; valid JSON that is not an object is ` +
      'BAD_QUERY), each key given once at any depth (a key given twice is BAD_QUERY naming it and where: ' +
      `JSON would keep its last copy); a body that is not JSON, or nested deeper than ${MAX_JSON_DEPTH} levels, is MALFORMED_JSON.`,
  ),
  '413': errorResponse("BODY_TOO_LARGE: the body is beyond the route's limit (named in the message)."),
  '415': errorResponse(
    'UNSUPPORTED_ENCODING: the body is compressed (a Content-Encoding other than identity).',
  ),
};

const json = (schema: unknown, description = 'OK') => ({
  description,
  content: { 'application/json': { schema } },
});

/** The answer's `data` of /v1/analytics, and of each field /v1/graph answers: Meta's `{data: [{data_points}]}`. */
const analyticsData = {
  type: 'array',
  items: {
    type: 'object',
    required: ['data_points'],
    properties: {
      data_points: {
        type: 'array',
        items: {
          type: 'object',
          required: ['start', 'end', 'currency'],
          description:
            '{start, end, conversation|volume, cost, unpriced?, currency, and the asked dimensions}: ' +
            'the count and cost unless metric_types leaves them out. ' +
            '`unpriced` (with cost, present only when > 0, as in /v1/totals) counts units that could not be ' +
            'priced: they are in the count but not in `cost`, which is then a lower bound.',
          properties: {
            start: { type: 'integer' },
            end: { type: 'integer' },
            conversation: { type: 'integer' },
            volume: { type: 'integer' },
            cost: { type: 'number' },
            unpriced: { type: 'integer', minimum: 1 },
            currency: { type: 'string' },
            // The asked dimensions, under Meta's field names for the metric.
            conversation_category: {
              type: 'string',
              description: 'CONVERSATION_CATEGORY (metric=conversation).',
            },
            pricing_category: {
              type: 'string',
              description: 'PRICING_CATEGORY (metric=pricing).',
            },
            conversation_type: {
              type: 'string',
              description: 'CONVERSATION_TYPE (metric=conversation).',
            },
            pricing_type: { type: 'string', description: 'PRICING_TYPE (metric=pricing).' },
            conversation_direction: { type: 'string' },
            phone_number: {
              type: ['string', 'null'],
              description:
                "PHONE: the number's display number as Meta answers it (15550783881), from Meta's " +
                'webhook bodies (signed, or posted to /v1/events by a key for every WABA, or imported); ' +
                'null when none gave it (send logs name the phone_number_id only).',
            },
            phone_number_id: {
              type: 'string',
              description: "PHONE: the phone_number_id (wameter's `business`), always.",
            },
            phone: {
              type: 'string',
              deprecated: true,
              description:
                'PHONE with metric=pricing: the phone_number_id, as wameter answered it before it used ' +
                "Meta's phone_number (deprecated: read phone_number_id).",
            },
            country: {
              type: ['string', 'null'],
              description: 'null for a number of no known country (its units unpriced).',
            },
            waba: { type: 'string' },
            market: {
              type: ['string', 'null'],
              description: 'null for a unit of no known market (unpriced).',
            },
            tier: { type: ['string', 'null'] },
          },
        },
      },
    },
  },
};

const graphError = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/GraphError' } } },
});

/** The answer of one analytics field of /v1/graph: Meta's `{data: [{data_points}]}`. */
const graphField = { type: 'object', required: ['data'], properties: { data: analyticsData } };

/** GET /v1/graph/{version}/{waba} and /v1/graph/{waba}: Meta's Graph request for a WABA's analytics. */
const graphOperation = (isVersioned: boolean) => ({
  get: {
    summary: "Meta's Graph request for a WABA's conversation_analytics / pricing_analytics",
    description:
      "For a tool written for Meta's Graph API (base URL pointed at /v1/graph, a wameter API key as its token, " +
      'in the Authorization header): fields=conversation_analytics.start(…).end(…).granularity(…)…, ' +
      'pricing_analytics.…, id, as Meta writes them, each field once; each answered as GET /v1/analytics ' +
      "answers it for waba={waba} with metric=conversation or pricing (its days cut in the WABA's time zone), " +
      'wrapped as Graph wraps a field — conversation_analytics counting only the units of the conversation-based ' +
      "eras, as Meta counts conversations (a message billed per message is pricing_analytics' alone). " +
      'A key limited to other WABAs is refused (403, code 100, error_subcode 33), whatever the fields, alike ' +
      "whether that WABA exists or not. Every refusal is in Graph's error shape (GraphError), and so is a path " +
      "under /v1/graph that is none of these two (404, code 100, error_subcode 33: Meta's edge form " +
      '/{waba}/pricing_analytics too).',
    parameters: [
      ...(isVersioned
        ? [
            {
              name: 'version',
              in: 'path',
              required: true,
              schema: { type: 'string', pattern: '^v[0-9]+\\.[0-9]+$' },
              description: 'The Graph API version the tool asks for (v21.0): read, not used.',
            },
          ]
        : []),
      { name: 'waba', in: 'path', required: true, schema: { type: 'string' }, description: 'The WABA id.' },
      {
        name: 'access_token',
        in: 'query',
        schema: { type: 'string' },
        description:
          "The API key, as Meta's SDKs send their token, when no Authorization header is sent (this route only). " +
          "A URL may end up in proxies' logs: prefer the header.",
      },
      {
        name: 'fields',
        in: 'query',
        required: true,
        schema: { type: 'string' },
        description:
          'conversation_analytics and/or pricing_analytics with their modifiers (start, end, granularity, ' +
          'phone_numbers, country_codes, metric_types, dimensions, and conversation_categories, ' +
          'conversation_types, conversation_directions or pricing_categories, pricing_types: each as the ' +
          'parameter of the same name of /v1/analytics), and id, separated by commas.',
      },
    ],
    responses: {
      '200': json({
        type: 'object',
        required: ['id'],
        properties: {
          id: { type: 'string' },
          conversation_analytics: graphField,
          pricing_analytics: graphField,
        },
      }),
      '400': graphError(
        'A field, modifier or value it cannot read, named in the message; a query parameter other than fields.',
      ),
      '401': graphError('The API key is missing or unknown (code 190).'),
      '403': graphError(
        'The key may not read that WABA (code 100, error_subcode 33), whether it exists or not.',
      ),
      '405': graphError('A method other than GET or HEAD (code 100, error_subcode 33; see Allow).'),
      '429': graphError('Rate limited (code 4; see Retry-After).'),
      '503': graphError(
        'The store cannot answer now, or the bill is not current yet (code 2; see Retry-After).',
      ),
    },
  },
});

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'wameter',
    version: '1',
    description:
      'Meters and prices WhatsApp Business Platform traffic. Every /v1 call needs "Authorization: Bearer <key>"; ' +
      'a key only ever sees the WABAs it is scoped to. Errors are {"error":{"code","message"}} with stable codes. ' +
      'Every /v1 answer, and every error answer, carries "X-Content-Type-Options: nosniff" and ' +
      '"Cache-Control: no-store". A path below asked with a method it does not list is 405 ' +
      'METHOD_NOT_ALLOWED with an Allow header naming the methods it takes (HEAD wherever GET is); a path ' +
      'not listed is 404 NOT_FOUND (under /v1/graph, both in the GraphError shape, as that route answers).',
  },
  components: {
    securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: {
                type: 'string',
                // Every code the service answers with (errors.ts, and the body budget's in read-body.ts), so
                // the document cannot fall behind.
                enum: [...Object.keys(ERRORS), BODY_BUDGET_ERROR_CODE],
              },
              message: { type: 'string' },
            },
          },
        },
      },
      GraphError: {
        type: 'object',
        required: ['error'],
        description: "Graph API's error shape, as /v1/graph answers every refusal.",
        properties: {
          error: {
            type: 'object',
            required: ['message', 'type', 'code', 'wameter_code'],
            properties: {
              message: { type: 'string' },
              type: { const: 'OAuthException' },
              code: {
                type: 'integer',
                enum: [1, 2, 4, 100, 190],
                description:
                  "Graph's code: 100 a parameter, a WABA the key may not read, or a path or method /v1/graph does not have; 190 the API key; 4 the rate limit; 2 the service cannot answer now; 1 an unexpected failure.",
              },
              error_subcode: {
                const: 33,
                description:
                  "Meta's subcode for an object that does not exist, cannot be loaded due to missing permissions, or does not support the operation: a WABA the key may not read (whether it exists or not), a path or method /v1/graph does not have.",
              },
              wameter_code: {
                type: 'string',
                enum: [...Object.keys(ERRORS), BODY_BUDGET_ERROR_CODE],
                description: "The code wameter's other routes answer with (the Error schema's).",
              },
            },
          },
        },
      },
      Category: { type: 'string', enum: [...UNIT_CATEGORIES] },
      PricingType: { type: 'string', enum: [...PRICING_TYPES] },
      Unit: {
        type: 'object',
        description: 'A billable unit as in contract.md §4 (money as exact decimal strings).',
        required: [
          'id',
          'unit',
          'pricing_model',
          'era',
          'waba',
          'business',
          'user',
          'country',
          'market',
          'category',
          'type',
          'opened_at',
          'expires_at',
          'messages',
          'rate',
          'amount',
          'currency',
          'rate_card',
          'rule',
        ],
        properties: {
          id: { type: 'string' },
          unit: { type: 'string', enum: ['conversation', 'message'] },
          pricing_model: { type: 'string', enum: ['NBP', 'CBP', 'PMP'] },
          era: { type: 'string', enum: [...ERAS] },
          waba: { type: 'string' },
          business: { type: 'string' },
          user: { type: 'string' },
          country: { type: ['string', 'null'] },
          market: { type: ['string', 'null'] },
          category: { $ref: '#/components/schemas/Category' },
          type: { $ref: '#/components/schemas/PricingType' },
          opened_at: { type: 'string', format: 'date-time' },
          local_date: {
            type: 'string',
            format: 'date',
            description:
              "The date (YYYY-MM-DD) of `opened_at` on the clock of the unit's WABA (its accounts-file time zone, " +
              'UTC when unlisted): the date that chose its era, rate card, free allowance and tier month, and the ' +
              'month whose bill it is on (`month=`). `opened_at` is UTC: a São Paulo evening charge is there the ' +
              'next day, or the next month. Given by /v1/units, /v1/units.csv (the last column) and /v1/explain; ' +
              "absent from a re-rate's changed units.",
          },
          expires_at: { type: ['string', 'null'], format: 'date-time' },
          closed_at: { type: 'string', format: 'date-time' },
          messages: { type: 'array', items: { type: 'string' } },
          rate: { type: ['string', 'null'] },
          amount: { type: ['string', 'null'] },
          currency: { type: 'string' },
          rate_card: { type: ['string', 'null'] },
          tier: {
            type: 'object',
            required: ['count', 'band', 'month'],
            description:
              "Volume-tier position of a tiered charge: {count, band, month}. `count` is the portfolio's running " +
              "count of the market × category × month, its other WABAs' charges included: null to a key that may " +
              'not read every WABA of the portfolio (the band and month kept; in CSV an empty tier_count).',
            properties: {
              count: { type: ['integer', 'null'] },
              band: { type: 'string' },
              month: { type: 'string' },
            },
          },
          market_inferred: {
            type: 'boolean',
            description: 'Present (true) when the market came from a fallback.',
          },
          category_from_webhook: {
            type: 'boolean',
            description:
              "Present (true) when the category came from Meta's status webhook, not a send log line (finding CATEGORY_FROM_WEBHOOK).",
          },
          rule: { type: 'string' },
        },
      },
      Totals: {
        type: 'object',
        description:
          'Per currency: {amount, units, unpriced?, by_category: {category: {units, unpriced?, amount}}}. `unpriced` (present only when > 0) counts units that could not be priced (see findings): they are in `units` but not in `amount`.',
        additionalProperties: {
          type: 'object',
          required: ['amount', 'units', 'by_category'],
          properties: {
            amount: { type: 'string' },
            units: { type: 'integer' },
            unpriced: { type: 'integer', minimum: 1 },
            by_category: {
              type: 'object',
              additionalProperties: {
                type: 'object',
                required: ['units', 'amount'],
                properties: {
                  units: { type: 'integer' },
                  unpriced: { type: 'integer', minimum: 1 },
                  amount: { type: 'string' },
                },
              },
            },
          },
        },
      },
      Rating: {
        type: 'object',
        required: [
          'id',
          'rated_at',
          'reason',
          'wabas',
          'as_of_rules',
          'rate_cards',
          'rate_cards_digest',
          'totals',
        ],
        properties: {
          id: { type: 'string' },
          rated_at: { type: 'string', format: 'date-time' },
          reason: { type: 'string', description: 'live, rerate, "rerate (cli)" or upgrade.' },
          wabas: { type: 'array', items: { type: 'string' } },
          as_of_rules: { type: ['string', 'null'] },
          rate_cards: { type: 'array', items: { type: 'string' } },
          rate_cards_digest: { type: ['string', 'null'] },
          totals: { $ref: '#/components/schemas/Totals' },
          changes: {
            type: 'object',
            description: "A re-rate's stored changes (not for a key that sees the rating narrowed).",
            required: ['period', 'outside_period', 'changed', 'unchanged', 'totals'],
            properties: {
              period: {
                type: 'object',
                required: ['from', 'to'],
                properties: {
                  from: { type: ['string', 'null'], format: 'date-time' },
                  to: { type: ['string', 'null'], format: 'date-time' },
                },
              },
              outside_period: {
                type: ['object', 'null'],
                required: ['changed', 'totals'],
                properties: {
                  changed: { type: 'integer' },
                  totals: { $ref: '#/components/schemas/OldNewTotals' },
                },
              },
              changed: { type: 'integer' },
              unchanged: { type: 'integer' },
              totals: { $ref: '#/components/schemas/OldNewTotals' },
            },
          },
        },
      },
      OverviewAmounts: {
        type: 'object',
        required: ['amount', 'charged_units', 'free_units'],
        properties: {
          amount: { type: 'string' },
          charged_units: { type: 'integer' },
          free_units: { type: 'integer' },
        },
      },
      Reconciliation: {
        type: 'object',
        description:
          'Contract §7 (differences, checked) and the WABAs compared, why nothing could be (null: something was), the uploaded export compared (null: none), and BILL_RERATED findings.',
        required: ['differences', 'checked', 'wabas', 'nothing_checked', 'analytics', 'findings'],
        properties: {
          differences: {
            type: 'array',
            description:
              "A message's verdict against its webhook's, or a bucket's totals against the export's.",
            items: {
              type: 'object',
              required: ['cause', 'ours', 'meta'],
              properties: {
                cause: { type: 'string' },
                note: { type: 'string' },
                ours: { type: 'object' },
                meta: { type: 'object' },
              },
              // A message's fields (message, waba, business, user, delivered_at, differs) or a bucket's.
              additionalProperties: true,
            },
          },
          checked: {
            type: 'object',
            description:
              "The key's delivered messages compared with Meta's status webhooks (`messages`, of which `unverifiable` and `category_from_webhook` could not be checked) and the export's buckets compared. With an uploaded export, the messages delivered in its period (`analytics.period`: local days on the export's WABA's clock); without one, every stored message.",
            required: ['messages', 'unverifiable', 'category_from_webhook', 'buckets'],
            properties: {
              messages: { type: 'integer' },
              unverifiable: { type: 'integer' },
              category_from_webhook: { type: 'integer' },
              buckets: { type: 'integer' },
            },
          },
          wabas: { type: 'array', items: { type: 'string' } },
          nothing_checked: { type: ['string', 'null'] },
          analytics: {
            type: ['object', 'null'],
            description:
              "The uploaded export compared (null: none): `wameter reconcile`'s `analytics` block (docs/estimate-and-reconcile.md) without `not_compared.other_wabas` — its kind, period, totals, and what was not compared: `outside_period`, `other_pricing_model` (`{units, by_currency, reason?}`: against a conversation_analytics export, the WABA's units of the period billed per message, which Meta's pricing_analytics counts) and `meta_outside_period`.",
          },
          findings: { type: 'array', items: { $ref: '#/components/schemas/Finding' } },
        },
      },
      PendingMessage: {
        type: 'object',
        required: ['id', 'waba', 'business', 'user', 'sent_at'],
        properties: {
          id: { type: 'string' },
          waba: { type: 'string' },
          business: { type: 'string' },
          user: { type: 'string' },
          sent_at: { type: 'string', format: 'date-time' },
        },
      },
      OldNewTotals: {
        type: 'object',
        required: ['old', 'new'],
        properties: {
          old: { $ref: '#/components/schemas/Totals' },
          new: { $ref: '#/components/schemas/Totals' },
        },
      },
      UnitChange: {
        type: 'object',
        description:
          'A unit a re-rate changed: its id, and the unit before and after (null where it did not exist).',
        required: ['unit', 'old', 'new'],
        properties: {
          unit: { type: 'string' },
          old: { oneOf: [{ $ref: '#/components/schemas/Unit' }, { type: 'null' }] },
          new: { oneOf: [{ $ref: '#/components/schemas/Unit' }, { type: 'null' }] },
        },
      },
      Finding: {
        type: 'object',
        description:
          'A finding of the rating (contract §4): {code, message, waba?, count?, …}, with the fields of its code.',
        required: ['code', 'message'],
        properties: { code: { type: 'string', enum: [...FINDING_CODES] }, message: { type: 'string' } },
        additionalProperties: true,
      },
    },
  },
  security: [{ apiKey: [] }],
  paths: {
    '/webhooks/whatsapp': {
      get: {
        summary: "Meta's verification handshake",
        security: [],
        parameters: [
          {
            name: 'hub.mode',
            in: 'query',
            required: true,
            schema: { type: 'string' },
            description: 'Meta sends "subscribe"; any other mode is refused (403).',
          },
          { name: 'hub.verify_token', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'hub.challenge', in: 'query', required: true, schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description:
              'hub.mode is subscribe and hub.verify_token matches: the challenge, echoed as text/plain.',
            content: { 'text/plain': {} },
          },
          '400': errorResponse('BAD_QUERY: hub.mode or hub.challenge is missing (not a handshake).'),
          '403': errorResponse(
            'WRONG_VERIFY_TOKEN: hub.mode is not subscribe, hub.verify_token is missing or does not match, or no verify token is configured (webhooks.md: else 403).',
          ),
          '429': errorResponse(
            "RATE_LIMITED: this address's handshakes are over the rate limit (see Retry-After): guessing the verify token is limited.",
          ),
        },
      },
      post: {
        summary: "Meta's signed webhooks",
        description:
          'X-Hub-Signature-256 is checked over the exact raw bytes against every configured app secret. The raw ' +
          "body is stored durably before 200; an identical redelivery is 200 and changes nothing. Meta's bodies " +
          'only ({"object":"whatsapp_business_account","entry":[…]}): a signed body that is not one — wameter\'s ' +
          'own event lines ({"kind":…}) included, which go to POST /v1/events — is kept unreadable (400).',
        security: [],
        parameters: [
          { name: 'X-Hub-Signature-256', in: 'header', required: true, schema: { type: 'string' } },
        ],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
        responses: {
          '200': json({
            type: 'object',
            required: ['received', 'duplicate', 'events', 'ignored', 'unreadable'],
            properties: {
              received: { type: 'boolean' },
              duplicate: { type: 'boolean' },
              events: { type: 'integer' },
              ignored: { type: 'integer' },
              unreadable: { type: 'integer' },
            },
          }),
          '400': errorResponse(
            'MALFORMED_JSON / MALFORMED_WEBHOOK: not JSON, or JSON that is no webhook body — an event line ({"kind":…}) too: send those to POST /v1/events (the raw body is kept).',
          ),
          '401': errorResponse('MISSING_SIGNATURE / BAD_SIGNATURE (nothing stored).'),
          '403': errorResponse(
            'FORBIDDEN_WEBHOOK_WABA: the app secret that signed the body is bound to WABAs (config "appSecrets") and the body names another, or an entry or event naming no WABA, or holds a volume-tier statement for a portfolio with a WABA the secret is not bound to (nothing stored).',
          ),
          '413': errorResponse('BODY_TOO_LARGE'),
          '429': errorResponse(
            'RATE_LIMITED: this address sent too many failing POSTs (bad or missing signature, oversized body); signed deliveries are never limited.',
          ),
          '503': errorResponse(
            'WEBHOOK_NOT_CONFIGURED / STORE_UNAVAILABLE / SERVER_BUSY (the bodies held at once reached their budget: this one was not read; Retry-After). Meta retries.',
          ),
        },
      },
    },
    '/v1/events': {
      post: {
        summary: 'Ingest event lines (NDJSON), idempotently',
        requestBody: { required: true, content: { 'application/x-ndjson': { schema: { type: 'string' } } } },
        responses: {
          '200': json({
            type: 'object',
            required: ['accepted', 'duplicates', 'merged', 'ignored', 'rejected'],
            properties: {
              accepted: { type: 'integer' },
              duplicates: { type: 'integer' },
              merged: {
                type: 'integer',
                description:
                  'Of the duplicates, those that completed the stored copy of their event (a referral, a recipient it lacked): their WABAs are re-rated.',
              },
              ignored: { type: 'integer' },
              unread_fields: {
                type: 'array',
                description:
                  'Only when some event lines have fields the event-line contract does not name: each such field, by kind of line, with how many lines have it. Such a field is not read (a template category given as "category" rates the template as a free message): `did_you_mean` names the contract field for a common slip.',
                items: {
                  type: 'object',
                  required: ['kind', 'field', 'lines'],
                  properties: {
                    kind: { type: 'string' },
                    field: { type: 'string' },
                    lines: { type: 'integer' },
                    did_you_mean: { type: 'string' },
                  },
                },
              },
              rejected: {
                type: 'array',
                description: `The first ${MAX_LISTED_REJECTIONS} rejections, by line; \`rejected_unlisted\` counts the others.`,
                items: {
                  type: 'object',
                  required: ['line', 'code', 'error'],
                  properties: {
                    line: { type: 'integer' },
                    code: { type: 'string' },
                    error: { type: 'string' },
                  },
                },
              },
              rejected_unlisted: {
                type: 'integer',
                description: `Only when more than ${MAX_LISTED_REJECTIONS} lines (or array elements) were rejected: how many are not in \`rejected\`.`,
              },
            },
          }),
          '413': errorResponse('BODY_TOO_LARGE'),
          '415': errorResponse('UNSUPPORTED_ENCODING'),
          ...authErrors,
        },
      },
    },
    '/v1/units': {
      get: {
        summary: 'Billable units, filtered, in an order, with cursor pagination',
        parameters: [...unitFilterParameters, monthParameter, unitOrderParameter, ...pageParameters],
        responses: {
          '200': json({
            type: 'object',
            required: ['units', 'next_cursor'],
            properties: {
              units: { type: 'array', items: { $ref: '#/components/schemas/Unit' } },
              next_cursor: { type: ['string', 'null'] },
            },
          }),
          ...authErrors,
        },
      },
    },
    '/v1/units.csv': {
      get: {
        summary: 'The same units as CSV, in the same order',
        parameters: [...unitFilterParameters, monthParameter, unitOrderParameter],
        responses: {
          '200': { description: 'CSV with a header row.', content: { 'text/csv': {} } },
          ...authErrors,
        },
      },
    },
    '/v1/totals': {
      get: {
        summary: 'Totals per currency and category',
        parameters: [...unitFilterParameters, monthParameter],
        responses: {
          '200': json({
            type: 'object',
            required: ['totals'],
            properties: { totals: { $ref: '#/components/schemas/Totals' } },
          }),
          ...authErrors,
        },
      },
    },
    '/v1/explain': {
      get: {
        summary: "One user's timeline: why each business message was free or charged",
        parameters: [
          {
            name: 'user',
            in: 'query',
            required: true,
            schema: { type: 'string' },
            description:
              'A phone number (+, spaces, dashes and a leading 00 are read) or a business-scoped user id ' +
              '("US.13491208655302741918"). Any other value is 400 BAD_QUERY, unless events the key may read name ' +
              "such a user. An id Meta gave together with a number is joined to it: the answer is the number's " +
              'story, its `user` the number and `scoped_user` the id.',
          },
          { name: 'business', in: 'query', schema: { type: 'string' } },
          { name: 'waba', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': json({
            type: 'object',
            required: ['user', 'business', 'timeline', 'decisions', 'units', 'pending', 'failed', 'findings'],
            properties: {
              user: { type: 'string' },
              scoped_user: {
                type: 'string',
                description:
                  'Only when `user` was a business-scoped id the rating joined to a phone number: the id asked for (`user` is then the number).',
              },
              business: { type: ['string', 'null'] },
              timeline: {
                type: 'array',
                description:
                  'The story in order: {at, kind (inbound | message), business, message_id, unit_id?, era?, rule?, reason}.',
                items: {
                  type: 'object',
                  required: ['at', 'kind', 'business', 'message_id', 'reason'],
                  properties: {
                    at: { type: 'string', format: 'date-time' },
                    kind: { type: 'string', enum: ['inbound', 'message'] },
                    business: { type: 'string' },
                    message_id: { type: 'string' },
                    unit_id: { type: 'string' },
                    era: { type: 'string', enum: [...ERAS] },
                    rule: { type: 'string' },
                    reason: { type: 'string' },
                  },
                },
              },
              decisions: {
                type: 'array',
                description: 'One per delivered business message.',
                items: {
                  type: 'object',
                  required: [
                    'message_id',
                    'waba',
                    'business',
                    'user',
                    'delivered_at',
                    'template',
                    'era',
                    'unit_id',
                    'rule',
                    'reason',
                  ],
                  properties: {
                    message_id: { type: 'string' },
                    waba: { type: 'string' },
                    business: { type: 'string' },
                    user: { type: 'string' },
                    delivered_at: { type: 'string', format: 'date-time' },
                    template: { type: ['string', 'null'] },
                    era: { type: 'string', enum: [...ERAS] },
                    unit_id: { type: 'string' },
                    rule: { type: 'string' },
                    reason: { type: 'string' },
                  },
                },
              },
              units: { type: 'array', items: { $ref: '#/components/schemas/Unit' } },
              pending: {
                type: 'array',
                description: "The user's business messages sent and never delivered (not charged).",
                items: { $ref: '#/components/schemas/PendingMessage' },
              },
              failed: {
                type: 'array',
                description:
                  "The user's business messages that failed (never charged): {id, waba, business, user, sent_at, failed_at}.",
                items: {
                  type: 'object',
                  required: ['id', 'waba', 'business', 'user', 'sent_at', 'failed_at'],
                  properties: {
                    id: { type: 'string' },
                    waba: { type: 'string' },
                    business: { type: 'string' },
                    user: { type: 'string' },
                    sent_at: { type: 'string', format: 'date-time' },
                    failed_at: { type: 'string', format: 'date-time' },
                  },
                },
              },
              findings: {
                type: 'array',
                description:
                  "The rating's findings about this story (as `wameter explain` tells them): {code, message, …}; none naming a WABA the key may not read. `count` is the rating's, of the finding's whole WABA (or portfolio); `story_count`, where the story's units tell it (NO_RATE, UNKNOWN_RECIPIENT, CATEGORY_FROM_WEBHOOK), how many of those cases are this story's (REPORTED_RULES too: its units rated under PMP-2026-10). A story never names another user's unit or message: a finding of the WABA whose example is not the story's is told with it withheld (\"[not this user's]\" in its message, no message_id or unit_id); REPORTED_RULES names the story's own first unit under the era.",
                items: { $ref: '#/components/schemas/Finding' },
              },
            },
          }),
          ...authErrors,
        },
      },
    },
    '/v1/analytics': {
      get: {
        summary: "Shaped like Meta's conversation_analytics / pricing_analytics",
        description:
          `At most ${MAX_ANALYTICS_BUCKETS} buckets are answered: a range (start to end, narrowed by from and ` +
          'to) of more half hours, days or months than that is refused (400 BAD_QUERY, saying to narrow the ' +
          'range or to use a coarser granularity) — e.g. 6 months of HALF_HOUR, 27 years of DAILY are answered.',
        parameters: [
          {
            name: 'start',
            in: 'query',
            required: true,
            schema: { type: ['integer', 'string'] },
            description:
              'Unix seconds (or ISO-8601 with an offset, as `from`), 0 to 99999999999; a value outside is 400.',
          },
          {
            name: 'end',
            in: 'query',
            required: true,
            schema: { type: ['integer', 'string'] },
            description: 'Same format as start; after start.',
          },
          {
            name: 'granularity',
            in: 'query',
            schema: { enum: ['HALF_HOUR', 'DAILY', 'MONTHLY'], default: 'DAILY' },
            description: 'Any letter case (daily = DAILY).',
          },
          {
            name: 'dimensions',
            in: 'query',
            schema: { type: 'string' },
            description:
              'A list as Meta takes one (A,B, [A,B] or ["A","B"]; [] for none), each dimension once (an empty item or a dimension named twice is 400): CONVERSATION_CATEGORY, CONVERSATION_TYPE, CONVERSATION_DIRECTION (BUSINESS_INITIATED: ' +
              'templates; USER_INITIATED: service, user-initiated, free entry point), PRICING_CATEGORY, PRICING_TYPE, ' +
              'COUNTRY, PHONE (phone_number: the display number; phone_number_id beside it), WABA, MARKET, CURRENCY, TIER (the volume-tier band as Meta writes it: "0:100000", ' +
              '"100001:MAX"; with metric=pricing as Meta answers it: left out on free points, "0:MAX" for marketing, ' +
              'null for a charge of no known band; with metric=conversation, which Meta lacks, always null: ' +
              'conversations have no tier position).',
          },
          {
            name: 'metric',
            in: 'query',
            schema: { enum: ['conversation', 'pricing'] },
            description:
              'conversation → "conversation" counts and conversation_* names (conversation_analytics): as Meta ' +
              "counts conversations, only the units of conversation-based pricing (before 2025-07-01 in the WABA's " +
              'time zone), the others told in not_counted; pricing → "volume" and pricing_* names ' +
              '(pricing_analytics), every unit. Without it, the names the request uses say which ' +
              '(PRICING_CATEGORY, PRICING_TYPE, TIER, pricing_*, VOLUME → pricing; CONVERSATION_*, conversation_*, ' +
              'CONVERSATION → conversation; both → 400), else conversation.',
          },
          {
            name: 'metric_types',
            in: 'query',
            schema: { type: 'string' },
            description:
              "Meta's list: COST and CONVERSATION (metric=conversation) or VOLUME (metric=pricing); absent or [] → both. A metric not asked is left out of the data points.",
          },
          {
            name: 'phone_numbers',
            in: 'query',
            schema: { type: 'string' },
            description:
              'List of business numbers: display numbers as Meta writes them (15550783881; +, spaces and dashes ignored), ' +
              "as the webhooks of the key's WABAs gave them; a value that is none is taken as a phone_number_id.",
          },
          {
            name: 'country_codes',
            in: 'query',
            schema: { type: 'string' },
            description: 'List of 2-letter country codes (US, IN); another value is 400.',
          },
          {
            name: 'pricing_categories',
            in: 'query',
            schema: { type: 'string' },
            description:
              'List of AUTHENTICATION, AUTHENTICATION_INTERNATIONAL, MARKETING, MARKETING_LITE, SERVICE, UTILITY, ' +
              "REFERRAL_CONVERSION (and wameter's BUSINESS_INITIATED, USER_INITIATED); another value is 400. One " +
              'filter with conversation_categories: give one of them.',
          },
          {
            name: 'conversation_categories',
            in: 'query',
            schema: { type: 'string' },
            description: 'As pricing_categories.',
          },
          {
            name: 'pricing_types',
            in: 'query',
            schema: { type: 'string' },
            description:
              'List of REGULAR, FREE_CUSTOMER_SERVICE, FREE_ENTRY_POINT (FREE_ENTRY: the same), FREE_TIER, UNKNOWN (no unit); another ' +
              'value is 400. One filter with conversation_types: give one of them.',
          },
          {
            name: 'conversation_types',
            in: 'query',
            schema: { type: 'string' },
            description: 'As pricing_types.',
          },
          {
            name: 'conversation_directions',
            in: 'query',
            schema: { type: 'string' },
            description:
              "List of BUSINESS_INITIATED, USER_INITIATED, UNKNOWN (no unit of wameter's); another value is 400.",
          },
          {
            name: 'time_zone',
            in: 'query',
            schema: { type: 'string' },
            description: 'IANA zone for DAILY/MONTHLY (another value is 400 BAD_QUERY naming time_zone).',
          },
          ...unitFilterParameters,
        ],
        responses: {
          '200': json({
            type: 'object',
            required: ['data'],
            properties: {
              data: analyticsData,
              not_counted: {
                type: 'object',
                required: ['units', 'reason'],
                description:
                  "wameter's own, with conversation_analytics (metric=conversation) only, and only when some " +
                  'are: the units of the range and filters it did not count, not billed as conversations ' +
                  '(per message from 2025-07-01, or per notification before 2022-02-01); metric=pricing ' +
                  'counts them, with their cost.',
                properties: {
                  units: { type: 'integer', minimum: 1 },
                  reason: { type: 'string' },
                },
              },
            },
          }),
          ...authErrors,
        },
      },
    },
    '/v1/graph/{version}/{waba}': graphOperation(true),
    '/v1/graph/{waba}': graphOperation(false),
    '/v1/rerate': {
      post: {
        summary:
          'Re-rate a period under other rate cards or another era; reports old vs new per unit and in total',
        description:
          'Only a key for every WABA ("*") may store a re-rate; a key limited to some WABAs may send {"dry_run": true} (anything else is 403 FORBIDDEN_RERATE: the stored bill is what the operator invoices from). Other rate cards are sent as their CSV text (`rate_cards`), as `wameter rerate --rate-cards` reads them from files; a card that does not parse is 400 BAD_QUERY naming it and its line.',
        requestBody: {
          // An empty body is refused (MALFORMED_JSON): `{}` re-rates every portfolio of the key.
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                // Closed: a misspelt field (`dryrun`) is refused, never ignored (bodyFieldsOf).
                additionalProperties: false,
                properties: {
                  from: {
                    type: ['string', 'null'],
                    description:
                      'An instant (ISO-8601 with an offset, or Unix seconds); null or left out: no bound. A day ' +
                      '("2025-07-01") is 400 BAD_QUERY saying the instant it begins on the clock of the WABAs ' +
                      "re-rated (their accounts-file time zones): its UTC midnight is not their billing day's edge.",
                  },
                  to: { type: ['string', 'null'], description: 'As from.' },
                  wabas: { type: 'array', items: { type: 'string' } },
                  as_of_rules: {
                    enum: [...ERAS, null],
                    description:
                      "The era whose rules to re-rate under (its name in any letter case is taken too); null or left out: the rules of each unit's date, as a live rating rates it.",
                  },
                  rate_cards: {
                    type: 'array',
                    minItems: 1,
                    maxItems: 100,
                    description:
                      "Other rate cards, replacing all the service's for this re-rate (send every card the period needs): each a file's name (each once, letter case aside) and its text — a rate card in Meta's CSV layout, or a volume-tier file (a name containing \"tiers\"), as docs/rate-cards.md describes. The whole body is at most 1 MiB.",
                    items: {
                      type: 'object',
                      additionalProperties: false,
                      required: ['name', 'csv'],
                      properties: {
                        name: {
                          type: 'string',
                          maxLength: 255,
                          // No folder, no control character (and no lone surrogate, which a pattern cannot say).
                          pattern: '^[^/\\\\\\u0000-\\u001f\\u007f]+\\.[cC][sS][vV]$',
                        },
                        csv: { type: 'string' },
                      },
                    },
                  },
                  dry_run: { type: 'boolean', default: false },
                  allow_unpriced: {
                    type: 'boolean',
                    default: false,
                    description:
                      'Store the new rating even when it leaves more charged units without a price than the stored bill (409 UNPRICED_RERATE otherwise, nothing stored).',
                  },
                },
              },
            },
          },
        },
        responses: {
          '200': json({
            type: 'object',
            required: [
              'rating_id',
              'wabas',
              'accounts_changed',
              'rate_cards_changed',
              'changed',
              'unchanged',
              'totals',
              'totals_by_waba',
              'outside_period',
              'findings',
            ],
            properties: {
              rating_id: { type: ['string', 'null'] },
              wabas: { type: 'array', items: { type: 'string' } },
              accounts_changed: {
                type: 'boolean',
                description: "The server's accounts differ from those the scope's last rating priced with.",
              },
              rate_cards_changed: {
                type: 'boolean',
                description:
                  "The rate cards' contents (any rate or tier band, whatever their ids) differ from those the scope's last rating priced with.",
              },
              changed: { type: 'array', items: { $ref: '#/components/schemas/UnitChange' } },
              unchanged: { type: 'integer' },
              totals: { $ref: '#/components/schemas/OldNewTotals' },
              totals_by_waba: {
                type: 'object',
                description:
                  '`totals` of each WABA reported, by WABA id: a re-rate covers whole portfolios, and a provider re-bills each client its own share.',
                additionalProperties: { $ref: '#/components/schemas/OldNewTotals' },
              },
              outside_period: {
                type: ['object', 'null'],
                description:
                  'With from/to: `changed` counts the units opened outside the period that changed too (the whole portfolio is re-rated and, unless a dry run, stored); `totals` are those of every unit opened outside the period, changed or not, before (`old`) and after (`new`). null without a period.',
                required: ['changed', 'totals'],
                properties: {
                  changed: { type: 'integer' },
                  totals: { $ref: '#/components/schemas/OldNewTotals' },
                },
              },
              findings: {
                type: 'array',
                items: { $ref: '#/components/schemas/Finding' },
                description:
                  "The new rating's findings (contract §4: as `wameter rate` would say them of the same traffic, cards and era), of the whole portfolios re-rated; a key sees those naming its own WABAs only.",
              },
            },
          }),
          ...authErrors,
          ...jsonBodyErrors,
          '403': errorResponse(
            'FORBIDDEN_RERATE: a key limited to some WABAs asked for a re-rate other than a dry run. FORBIDDEN_WABA: a WABA the key may not read, or a portfolio holding one.',
          ),
          '409': errorResponse(
            'UNPRICED_RERATE: the new rating leaves more charged units without a price than the stored bill (other cards sent alone, say); nothing was stored — send {"dry_run": true} to see, or "allow_unpriced": true to store it anyway.',
          ),
        },
      },
    },
    '/v1/ratings': {
      get: {
        summary:
          'History of ratings (reason live, rerate, or upgrade: a new version re-rating the bill), newest first',
        description:
          "Each rating: {id, rated_at, reason, wabas, as_of_rules, rate_cards, rate_cards_digest, totals, changes?}; rate_cards_digest is a digest of the cards' contents (null for ratings stored before it was kept: an edited card keeps its id); rated_at is when " +
          'it ran, an ISO instant to the second ("2025-08-01T12:00:00Z"). A re-rate\'s ' +
          'stored `changes`, in snake_case with ISO instants like POST /v1/rerate but in a shape of its own: ' +
          '{period: {from, to} (ISO instants or null), outside_period, changed (a count of the changed units), ' +
          'unchanged, totals: {old, new}}; the changed units themselves (tens of MB for a large store) are paged ' +
          'by GET /v1/ratings/{id}/changes. A key for some WABAs of a shared portfolio sees ratings ' +
          'narrowed to its WABAs and their share of the totals, and only the live ratings that changed that share ' +
          "(or the rules or cards): one that left it as it was, as a mate's traffic alone does, is not listed. " +
          'Its share is compared with the last of the 1000 ratings of its WABAs before it that covered the ' +
          'WABA; a live rating that none of them covers has nothing to be compared with and is not listed ' +
          '(unless they are all the ratings before it). Whether a rating is listed depends on the ratings before ' +
          "it only, never on the page: a rating hidden on one page is listed on no other. Such a key's page " +
          'reads at most 1000 ratings after its cursor, so it may hold fewer than limit (follow next_cursor until ' +
          'null), and 1000 in a row that are not listed end its listing. ' +
          'reason=rerate,upgrade lists the ratings of those reasons only: on a busy service every arrival adds a ' +
          'live rating, which would push a re-rate off the page. {ratings, next_cursor}: pass next_cursor back ' +
          'as cursor (with the same reason) for the older ratings, each listed once; null on the last page. A ' +
          "cursor that is none, of another listing, or naming a rating this key's listing does not list is 400 " +
          'BAD_QUERY, alike.',
        parameters: [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
          {
            name: 'cursor',
            in: 'query',
            description: 'next_cursor of the page before (GET /v1/ratings with the same reason).',
            schema: { type: 'string' },
          },
          {
            name: 'reason',
            in: 'query',
            description:
              'Reasons to list, separated by commas, each once: live, rerate (every re-rate: POST /v1/rerate\'s, and those `wameter rerate` stored, whose reason is "rerate (cli)"), upgrade (default: all).',
            schema: { type: 'string', example: 'rerate,upgrade' },
          },
        ],
        responses: {
          '200': json({
            type: 'object',
            required: ['ratings', 'next_cursor'],
            properties: {
              ratings: { type: 'array', items: { $ref: '#/components/schemas/Rating' } },
              next_cursor: { type: ['string', 'null'] },
            },
          }),
          ...authErrors,
        },
      },
    },
    '/v1/ratings/{id}/changes': {
      get: {
        summary: 'The units a re-rate changed, old and new, a page at a time',
        description:
          'In the order the re-rate listed them (POST /v1/rerate answered them as `changed`): {rating_id, units: ' +
          '[{unit, old, new}], next_cursor}. A key reads them when every WABA of the re-rate, and of its ' +
          "portfolios (the accounts file's mates too), is its own; an " +
          "unknown id, a live rating's or another client's re-rate is 404 NO_SUCH_RATING alike.",
        parameters: [
          { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
          ...pageParameters,
        ],
        responses: {
          '200': json({
            type: 'object',
            required: ['rating_id', 'units', 'next_cursor'],
            properties: {
              rating_id: { type: 'string' },
              units: { type: 'array', items: { $ref: '#/components/schemas/UnitChange' } },
              next_cursor: { type: ['string', 'null'] },
            },
          }),
          ...authErrors,
          '404': errorResponse('NO_SUCH_RATING'),
        },
      },
    },
    '/v1/dashboard/accounts': {
      get: {
        summary:
          "The WABAs this key may read, with their time zone, currency and portfolio (the dashboard's labels)",
        responses: {
          '200': json({
            type: 'object',
            required: ['accounts'],
            properties: {
              accounts: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['waba', 'time_zone', 'currency', 'portfolio'],
                  properties: {
                    waba: { type: 'string' },
                    time_zone: { type: 'string' },
                    currency: { type: 'string' },
                    portfolio: { type: 'string' },
                  },
                },
              },
            },
          }),
          ...authErrors,
        },
      },
    },
    '/v1/dashboard/overview': {
      get: {
        summary:
          'Spend over time by category, market, business number or WABA, free vs charged (aggregated in the store)',
        parameters: [
          { name: 'granularity', in: 'query', schema: { type: 'string', enum: ['DAILY', 'MONTHLY'] } },
          {
            name: 'by',
            in: 'query',
            schema: { type: 'string', enum: ['category', 'market', 'business', 'waba'] },
          },
          {
            name: 'time_zone',
            in: 'query',
            schema: { type: 'string' },
            description:
              'IANA zone the days are cut in (another value is 400 BAD_QUERY naming time_zone); default: the `waba` asked for’s zone, else the zone every WABA of the key keeps, else UTC',
          },
          ...unitFilterParameters,
        ],
        responses: {
          '200': json({
            type: 'object',
            required: ['granularity', 'by', 'time_zone', 'currencies', 'totals', 'truncated'],
            properties: {
              granularity: { type: 'string', enum: ['DAILY', 'MONTHLY'] },
              by: { type: 'string', enum: ['category', 'market', 'business', 'waba'] },
              time_zone: { type: 'string' },
              currencies: {
                type: 'array',
                items: {
                  type: 'object',
                  description:
                    'Per currency: its buckets (empty days included, the latest ones), the keys of `by` they hold, and their sum.',
                  required: ['currency', 'keys', 'totals', 'buckets'],
                  properties: {
                    currency: { type: 'string' },
                    keys: { type: 'array', items: { type: 'string' } },
                    totals: { $ref: '#/components/schemas/OverviewAmounts' },
                    buckets: {
                      type: 'array',
                      items: {
                        type: 'object',
                        required: ['start', 'end', 'label', 'amount', 'charged_units', 'free_units', 'by'],
                        properties: {
                          start: { type: 'string', format: 'date-time' },
                          end: { type: 'string', format: 'date-time' },
                          label: { type: 'string' },
                          amount: { type: 'string' },
                          charged_units: { type: 'integer' },
                          free_units: { type: 'integer' },
                          by: {
                            type: 'object',
                            additionalProperties: { $ref: '#/components/schemas/OverviewAmounts' },
                          },
                        },
                      },
                    },
                  },
                },
              },
              totals: {
                $ref: '#/components/schemas/Totals',
                description: 'Exactly what GET /v1/totals answers for the same filters.',
              },
              truncated: {
                type: ['object', 'null'],
                description:
                  'null, or what the answer left out: only the latest max_buckets buckets are answered.',
                required: ['max_buckets', 'shown_from', 'shown_from_label', 'earliest_unit_at', 'left_out'],
                properties: {
                  max_buckets: { type: 'integer' },
                  shown_from: { type: 'string', format: 'date-time' },
                  shown_from_label: { type: 'string' },
                  earliest_unit_at: { type: 'string', format: 'date-time' },
                  left_out: { $ref: '#/components/schemas/Totals' },
                },
              },
            },
          }),
          ...authErrors,
        },
      },
    },
    '/v1/dashboard/allowances': {
      get: {
        summary: 'Free allowance used in a month and volume-tier positions per market and category',
        parameters: [
          { name: 'month', in: 'query', schema: { type: 'string', pattern: '^\\d{4}-\\d{2}$' } },
          { name: 'waba', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': json({
            type: 'object',
            required: ['month', 'era', 'allowance', 'tiers', 'tiers_note'],
            properties: {
              month: { type: 'string', pattern: '^\\d{4}-\\d{2}$' },
              era: { type: 'string', enum: [...ERAS] },
              allowance: {
                type: 'object',
                required: ['per', 'limit', 'what', 'rows'],
                properties: {
                  per: { type: ['string', 'null'] },
                  limit: { type: ['integer', 'null'] },
                  what: { type: 'string' },
                  rows: {
                    type: 'array',
                    items: {
                      type: 'object',
                      required: ['waba', 'used', 'limit', 'remaining'],
                      properties: {
                        waba: { type: 'string' },
                        business: { type: 'string' },
                        used: { type: 'integer' },
                        limit: { type: ['integer', 'null'] },
                        remaining: { type: ['integer', 'null'] },
                      },
                    },
                  },
                },
              },
              tiers: {
                type: 'array',
                items: {
                  type: 'object',
                  required: [
                    'portfolio',
                    'wabas',
                    'market',
                    'category',
                    'currency',
                    'charged_this_month',
                    'band',
                    'band_rate',
                    'next_band_from',
                    'rate_card',
                    'rate_categories',
                  ],
                  properties: {
                    portfolio: { type: 'string' },
                    wabas: { type: 'array', items: { type: 'string' } },
                    market: { type: 'string' },
                    category: { type: 'string' },
                    currency: { type: 'string' },
                    charged_this_month: { type: 'integer' },
                    band: { type: ['string', 'null'] },
                    band_rate: { type: ['string', 'null'] },
                    next_band_from: { type: ['integer', 'null'] },
                    rate_card: { type: ['string', 'null'] },
                    rate_categories: {
                      type: 'array',
                      items: {
                        type: 'object',
                        required: ['category', 'charged_this_month', 'band', 'band_rate', 'next_band_from'],
                        properties: {
                          category: { type: 'string' },
                          charged_this_month: { type: 'integer' },
                          band: { type: ['string', 'null'] },
                          band_rate: { type: ['string', 'null'] },
                          next_band_from: { type: ['integer', 'null'] },
                        },
                      },
                    },
                  },
                },
              },
              tiers_note: { type: ['string', 'null'] },
            },
          }),
          ...authErrors,
        },
      },
    },
    '/v1/rate-cards': {
      get: {
        summary: 'Rate cards the service prices with, the one in force marked, with provenance',
        responses: {
          '200': json({
            type: 'object',
            required: ['today', 'rate_cards'],
            properties: {
              today: { type: 'string', format: 'date' },
              rate_cards: {
                type: 'array',
                items: {
                  type: 'object',
                  required: [
                    'id',
                    'currency',
                    'effective_date',
                    'until',
                    'in_force',
                    'title',
                    'provenance',
                    'markets',
                    'has_volume_tiers',
                  ],
                  properties: {
                    id: { type: 'string' },
                    currency: { type: 'string' },
                    effective_date: { type: 'string', format: 'date' },
                    until: { type: ['string', 'null'], format: 'date' },
                    in_force: { type: 'boolean' },
                    title: { type: ['string', 'null'] },
                    provenance: { type: ['string', 'null'] },
                    markets: { type: 'integer' },
                    has_volume_tiers: { type: 'boolean' },
                  },
                },
              },
            },
          }),
          ...authErrors,
        },
      },
    },
    '/v1/rate-cards/{id}': {
      get: {
        summary: "One rate card's rates per market and category, and its volume-tier bands",
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': json({
            type: 'object',
            required: ['id', 'currency', 'effective_date', 'title', 'provenance', 'rates', 'tiers'],
            properties: {
              id: { type: 'string' },
              currency: { type: 'string' },
              effective_date: { type: 'string', format: 'date' },
              title: { type: ['string', 'null'] },
              provenance: { type: ['string', 'null'] },
              rates: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['market', 'rates'],
                  properties: {
                    market: { type: 'string' },
                    rates: {
                      type: 'object',
                      description:
                        'Rate per rate-card column (marketing, utility, …), exact decimal strings.',
                      additionalProperties: { type: 'string' },
                    },
                  },
                },
              },
              tiers: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['market', 'category', 'bands'],
                  properties: {
                    market: { type: 'string' },
                    category: { type: 'string' },
                    bands: {
                      type: 'array',
                      items: {
                        type: 'object',
                        required: ['from', 'to', 'rate'],
                        properties: {
                          from: { type: 'integer' },
                          to: { type: ['integer', 'null'] },
                          rate: { type: 'string' },
                        },
                      },
                    },
                  },
                },
              },
            },
          }),
          '404': errorResponse('NOT_FOUND'),
          ...authErrors,
        },
      },
    },
    '/v1/findings': {
      get: {
        summary: 'Findings of the current rating (unknown numbers, missing rates, categories from webhooks…)',
        parameters: [
          { name: 'waba', in: 'query', schema: { type: 'string' } },
          { name: 'code', in: 'query', schema: { type: 'string', enum: [...FINDING_CODES] } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
          { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0 } },
        ],
        responses: {
          '200': json({
            type: 'object',
            required: ['counts', 'total', 'findings', 'next_offset'],
            properties: {
              counts: {
                type: 'object',
                description: 'How many findings of each code (all codes, whatever `code` asks).',
                propertyNames: { enum: [...FINDING_CODES] },
                additionalProperties: { type: 'integer' },
              },
              total: { type: 'integer' },
              findings: { type: 'array', items: { $ref: '#/components/schemas/Finding' } },
              next_offset: { type: ['integer', 'null'] },
            },
          }),
          ...authErrors,
        },
      },
    },
    '/v1/estimate': {
      post: {
        summary: 'What sending a template to each recipient would cost now, and why (contract §6)',
        description:
          `At most ${MAX_ESTIMATE_RECIPIENTS} recipients per request ("phones" entries or CSV rows, valid or not): ` +
          'a longer list is 400 BAD_QUERY (TOO_MANY_RECIPIENTS) saying to split it. A CSV names at most ' +
          `${MAX_CSV_COLUMNS} columns (TOO_MANY_COLUMNS); each line echoes the fields its row has, and the ` +
          `echoed columns may add at most ${MAX_ESTIMATE_ECHO_CHARS} characters to the answer (ECHO_TOO_LARGE). ` +
          'A key that may not read every WABA of the portfolio is quoted every line at the volume-tier band of ' +
          "the portfolio's next charge (a campaign never moves through the bands: where it did, the line where " +
          "the price changed gave the portfolio mates' count).",
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                // Closed: a misspelt field (`recipents`) would otherwise be quoted without (bodyFieldsOf).
                additionalProperties: false,
                properties: {
                  phones: {
                    type: 'array',
                    items: { type: 'string' },
                    description:
                      'Phone numbers as JSON strings: a non-array, or an entry of another type (a JSON number), is 400 BAD_QUERY naming it.',
                  },
                  csv: { type: 'string' },
                  template: { type: 'string', enum: ['marketing', 'utility', 'authentication'] },
                  at: {
                    type: ['string', 'null'],
                    description: 'When the sends would be made (an instant); null, empty or left out: now.',
                  },
                  waba: {
                    type: ['string', 'null'],
                    description: "The sending WABA; null, empty or left out: the key's only WABA.",
                  },
                  business: {
                    type: ['string', 'null'],
                    description:
                      "Null, empty or left out: the WABA's only number. A phone_number_id the stored events show sending for `waba`. Any other — unused, or one of another WABA's, whether the key may read that WABA or not — is 400 BAD_QUERY (BUSINESS_NOT_OF_WABA), in the same words: a key cannot learn which numbers other clients send from.",
                  },
                },
              },
            },
          },
        },
        responses: {
          '200': json({
            type: 'object',
            description:
              'Contract §6 (lines, invalid, totals, warnings?) and the WABA and number it priced for.',
            required: ['lines', 'invalid', 'totals', 'waba', 'business'],
            properties: {
              lines: {
                type: 'array',
                items: {
                  type: 'object',
                  description: "A recipient's quote, and the CSV row's other columns echoed.",
                  required: ['phone', 'country', 'market', 'price', 'currency', 'free', 'reason'],
                  properties: {
                    phone: { type: 'string' },
                    country: { type: ['string', 'null'] },
                    market: { type: ['string', 'null'] },
                    price: { type: ['string', 'null'] },
                    currency: { type: 'string' },
                    free: { type: 'boolean' },
                    reason: { type: 'string' },
                  },
                  additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
                },
              },
              invalid: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['line', 'phone', 'error'],
                  properties: {
                    line: { type: 'integer' },
                    phone: { type: 'string' },
                    error: { type: 'string' },
                  },
                },
              },
              totals: {
                type: 'object',
                required: ['count', 'free', 'charged', 'unpriced', 'by_currency'],
                properties: {
                  count: { type: 'integer' },
                  free: { type: 'integer' },
                  charged: { type: 'integer' },
                  unpriced: { type: 'integer' },
                  by_currency: {
                    type: 'object',
                    additionalProperties: {
                      type: 'object',
                      required: ['count', 'free', 'charged', 'unpriced', 'amount'],
                      properties: {
                        count: { type: 'integer' },
                        free: { type: 'integer' },
                        charged: { type: 'integer' },
                        unpriced: { type: 'integer' },
                        amount: { type: ['string', 'null'] },
                      },
                    },
                  },
                },
              },
              warnings: { type: 'array', items: { type: 'string' } },
              waba: { type: 'string' },
              business: { type: 'string' },
            },
          }),
          ...authErrors,
          ...jsonBodyErrors,
        },
      },
    },
    '/v1/reconciliation': {
      get: {
        summary:
          "Differences between wameter's verdicts and Meta's status webhooks (contract §7), with `nothing_checked`: null, or why nothing could be compared",
        parameters: [
          { name: 'waba', in: 'query', schema: { type: 'string' } },
          {
            ...reconciliationDayParameter('from'),
            description:
              'Only with an export (POST): without one every stored message is compared, and from or to is 400 BAD_QUERY saying so.',
          },
          {
            ...reconciliationDayParameter('to'),
            description: 'Only with an export (POST), as from.',
          },
        ],
        responses: { '200': json({ $ref: '#/components/schemas/Reconciliation' }), ...authErrors },
      },
      post: {
        summary: 'The same, also compared with an uploaded Meta analytics export ({analytics, waba?})',
        parameters: [
          {
            ...reconciliationDayParameter('from'),
            description:
              "The first day compared with the export (YYYY-MM-DD, on the clock of the WABA it describes), as `wameter reconcile --from`; default: the first day of its first data point's month (of its first half hour's day for a HALF_HOUR export). A value that is no day, or a period cutting one of Meta's data points (a mid-month day for a MONTHLY export), is 400 BAD_QUERY.",
          },
          {
            ...reconciliationDayParameter('to'),
            description:
              "The last day compared, included (as `--to`); default: the last day of the export's last month (day).",
          },
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  analytics: {
                    type: 'object',
                    description: "Meta's conversation_analytics / pricing_analytics answer.",
                  },
                  waba: {
                    type: 'string',
                    minLength: 1,
                    description:
                      'One WABA id (the export\'s own when left out). Any other value — null, "", a number, a list, an object — is 400 BAD_QUERY.',
                  },
                },
              },
            },
          },
        },
        responses: {
          '200': json({ $ref: '#/components/schemas/Reconciliation' }),
          ...authErrors,
          ...jsonBodyErrors,
        },
      },
    },
    '/healthz': {
      get: {
        summary:
          'Readiness: the store answers, its last write did not fail, and (SQLite) its file is still the one opened',
        security: [],
        responses: {
          '200': json({
            type: 'object',
            required: ['status', 'rating_lag_seconds'],
            properties: {
              status: { type: 'string', enum: ['ok'] },
              rating_lag_seconds: {
                type: 'number',
                description: 'How long the oldest stored arrival not yet rated has waited (0: none).',
              },
            },
          }),
          ...noParameterError,
          '503': errorResponse('STORE_UNAVAILABLE, with the reason in the message'),
        },
      },
    },
    '/healthz/live': {
      get: {
        summary: 'Liveness: the process answers (touches nothing, not even the store)',
        security: [],
        responses: { '204': { description: 'Alive' }, ...noParameterError },
      },
    },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics (text exposition format)',
        security: [],
        responses: {
          '200': { description: 'Metrics', content: { 'text/plain': {} } },
          ...noParameterError,
        },
      },
    },
    '/openapi.json': {
      get: {
        summary: 'This document',
        security: [],
        responses: { '200': json({ type: 'object' }), ...noParameterError },
      },
    },
  },
} as const;

type OpenApiOperation = {
  parameters?: readonly { name: string; in: string }[];
  requestBody?: {
    content: Record<string, { schema: { additionalProperties?: unknown; properties?: object } }>;
  };
};

function operationOf(method: string, honoPath: string): OpenApiOperation | undefined {
  const path = honoPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
  const operations = (openApiDocument.paths as Record<string, Record<string, OpenApiOperation>>)[path];
  return operations?.[method.toLowerCase()];
}

/**
 * The query parameters each route takes, from the document above — the one list the app checks requests
 * against (an unknown parameter is 400, never ignored). `undefined`: the document does not describe it.
 */
export function queryParametersOf(method: string, honoPath: string): readonly string[] | undefined {
  const operation = operationOf(method, honoPath);
  if (operation === undefined) return undefined;
  return (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
}

/**
 * The fields a route's JSON body takes, from the document above (its schema's `properties`, closed with
 * `additionalProperties: false`): as for query parameters, the one list the routes check bodies against.
 * `undefined`: the document gives the route no closed JSON object body.
 */
export function bodyFieldsOf(method: string, honoPath: string): readonly string[] | undefined {
  const schema = operationOf(method, honoPath)?.requestBody?.content['application/json']?.schema;
  if (schema?.additionalProperties !== false || schema.properties === undefined) return undefined;
  return Object.keys(schema.properties);
}

/**
 * Why a JSON body is refused for a field its route does not take (a typo, a field of another route), naming
 * it and listing those the route takes; `undefined` when every field is one the route takes. Never ignored:
 * the answer would be to another question (an estimate without its misspelt "recipients"). Throws when the
 * document gives the route no closed body: a renamed route must not quietly stop checking.
 */
export function unknownBodyField(
  method: string,
  honoPath: string,
  body: Readonly<Record<string, unknown>>,
): string | undefined {
  const accepted = bodyFieldsOf(method, honoPath);
  if (accepted === undefined) {
    throw new Error(`the OpenAPI document gives ${method} ${honoPath} no closed JSON body to check`);
  }
  const unknown = Object.keys(body).find((name) => !accepted.includes(name));
  if (unknown === undefined) return undefined;
  return `Unknown field ${JSON.stringify(unknown)}: ${method} ${honoPath} takes ${accepted.map((name) => `"${name}"`).join(', ')}.`;
}
