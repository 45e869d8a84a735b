// The HTTP face of wameter (contract.md §5): Meta's webhook receiver, the event ingest API, the query API,
// health and metrics. A Hono app built from injected parts (store, clock, logger, rating), so every route
// runs in-process in tests. It never logs bodies, secrets or keys, and never answers 200 to a webhook
// before its raw bytes are durably stored.

import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { formatInstant, isCalendarDay, parseInstant } from '../core/calendar.js';
import { dayForInstantHint } from '../use-cases/day-for-instant.js';
import { eventKey, type CoreEvent } from '../core/events.js';
import { MoneyRangeError, formatMicros, sumMicros } from '../core/money.js';
import { CSV_COLUMNS, sumTotals, totalsToJson, unitJsonCsvRow, unitToJson } from '../core/report.js';
import { err } from '../core/result.js';
import { GIVE_RATE_CARDS } from '../core/price-unit.js';
import { ERAS, type BillableUnit, type Era, type Finding } from '../core/units.js';
import { isConversationEra } from '../core/eras.js';
import {
  holdsMoreValuesThan,
  isNestedDeeperThan,
  isTextHoldingMoreValuesThan,
  isTextNestedDeeperThan,
  MAX_JSON_DEPTH,
  MAX_WEBHOOK_VALUES,
  TOO_MANY_VALUES_MESSAGE,
  notAWebhookBody,
  textOverLimits,
  parseEventValue,
  unknownLineFields,
  type ParseError,
  type UnknownLineField,
} from '../ingest/parse-event.js';
import { isNextArrayLine, parses } from '../ingest/read-events.js';
import { verifyMetaSignature } from '../ingest/signature.js';
import {
  decodeUtf8MarkingInvalid,
  firstInvalidUtf8,
  INVALID_UTF8_MARK,
  invalidByteWords,
  withoutByteOrderMark,
} from '../ingest/utf8.js';
import {
  CLI_RERATE_REASON,
  RATING_REASONS,
  StoreInputError,
  type AnalyticsDimension,
  type AnalyticsPoint,
  type BusinessNumber,
  type EventInput,
  type Granularity,
  type IngestOutcome,
  type RatingReason,
  type RatingRecord,
  type Store,
  type UnitFilter,
  type UnitOrder,
  ratingsCursor,
} from '../store/store.js';
import { isJoiningMessage } from '../store/relisted-wabas.js';
import type { ApiKey, ServiceConfig } from './config.js';
import {
  clientBusyResponse,
  errorBody,
  errorResponse,
  ERRORS,
  ratingBehindResponse,
  type ErrorCode,
} from './errors.js';
import {
  AnalyticsQueryError,
  analyticsKind,
  graphFields,
  type GraphField,
  analyticsListFilters,
  analyticsMetrics,
  businessNumbersOf,
  businessesNamed,
  metaList,
  type AnalyticsKind,
  type AnalyticsListFilters,
  type AnalyticsMetrics,
  type MetaAnalyticsParameters,
} from './analytics-query.js';
import { ClientBusyError } from './fair-queue.js';
import { errorFields, withRequestLogContext, type Logger, type RequestLogContext } from './logger.js';
import { parseJsonObjectBody } from './json-object-body.js';
import { noRouteResponse } from './method-not-allowed.js';
import { Metrics } from './metrics.js';
import { MAX_LISTED_REJECTIONS, openApiDocument, queryParametersOf, unknownBodyField } from './openapi.js';
import type { RateCardText } from '../ingest/rate-card-files.js';
import { createRateLimiter, type RateLimitVerdict } from './rate-limit.js';
import { scopedRatingsPage } from './scoped-ratings.js';
import { RatingBehindError, type RatingService } from './rating-service.js';
import { rerateDocument } from './rerate-document.js';
import { errorCodeOf, requestIdFor } from './request-log.js';
import { createStoreHealth, writeFailureHint, type StoreHealth } from './store-health.js';
import {
  findingsForReader,
  tierCountReader,
  unitsForReader,
  type TierCountReader,
} from './tier-count-visibility.js';
import {
  attachBodyLease,
  BodyBudget,
  bodyBudgetResponse,
  clientOfAddress,
  DEFAULT_BODY_BUDGET_BYTES,
  IncompleteBodyError,
  bodyEncoding,
  readRawBody,
} from './read-body.js';
import {
  ANALYTICS_GRANULARITIES,
  analyticsRangeRefusal,
  instantQuery,
  joinScopedUser,
  localMonthFilter,
  monthQuery,
  parseUnitFilter,
  timeZoneQuery,
  unitOrderQuery,
  unnamedUserProblem,
  userFormProblem,
  userQuery,
} from './unit-filter.js';

export interface AppDeps {
  store: Store;
  config: ServiceConfig;
  clock: () => number;
  logger: Logger;
  rating: RatingService;
  /** Shared with main (gauges) and tests (reading counters); a fresh registry when omitted. */
  metrics?: Metrics;
  /** The client's address for rate limiting (default: the socket's remote address, never a header). */
  clientIp?: (c: Context) => string;
  /** Readiness beyond a ping (failed writes, a replaced SQLite file); shared with the rating service. */
  storeHealth?: StoreHealth;
  /** The markets a unit can be in: a `market` filter naming none of them is refused (400), not answered empty. */
  marketNames?: readonly string[];
  /** A WABA's time zone (the accounts file's): analytics of one WABA cut its days there, as Meta's do. */
  timeZoneOf?: (waba: string) => string;
  /**
   * The bytes of request bodies all requests may hold at once (docs/service.md, "Limits"); default
   * DEFAULT_BODY_BUDGET_BYTES, and never less than two bodies of `bodyLimitBytes`.
   */
  bodyBudgetBytes?: number;
  /** A CSV export whose client takes nothing for this long is cut (default EXPORT_STALL_MS). */
  exportStallMs?: number;
  /** A CSV export not read whole after this long is cut (default EXPORT_DEADLINE_MS). */
  exportDeadlineMs?: number;
}

type Env = { Variables: { apiKey: ApiKey } };

const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;
/** POST /v1/events reads this many items of a body between two turns of the event loop (tens of ms at most). */
const ITEMS_PER_SLICE = 1000;
/**
 * POST /v1/rerate takes a few fields and, for other rate cards, their CSV text (Meta's card of every market is
 * about 10 KB): its own limit, whatever bodyLimitBytes is.
 */
const RERATE_BODY_LIMIT_BYTES = 1024 * 1024;

/** Thrown around store calls so the error handler can tell "database down" from a bug. */
/** CSV exports downloaded at once (each holds a store snapshot until its client has read it). */
const MAX_CONCURRENT_EXPORTS = 2;
/** A CSV export whose client takes nothing for this long is cut. */
const EXPORT_STALL_MS = 60_000;
/**
 * A CSV export not read whole after this long is cut, however steadily its client reads: its snapshot (a
 * PostgreSQL connection and an old snapshot, a SQLite reader that keeps the WAL from being checkpointed)
 * is never held for longer. A million units is about 200 MB: minutes on any link worth billing over.
 */
const EXPORT_DEADLINE_MS = 30 * 60_000;

class StoreUnavailable extends Error {
  constructor(override readonly cause: unknown) {
    super('store unavailable');
  }
}

class QueryError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/** Decodes whole bodies (never a stream: no state between calls), so one serves every request. */
const UTF8 = new TextDecoder('utf-8');

function sha256(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(data).digest();
}

function constantTimeEquals(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/**
 * The WABAs an ingest's outcome says to rate again: those of its new events, of the stored events a copy
 * completed (a referral, a recipient), and those whose statuses naming no WABA it moved (`relistedWabas`: a
 * number's former owner, a message that came to join them, the WABAs that may list such a status itself). So the
 * stored bill of every WABA whose listing the ingest changed is rated again before any read shows it.
 */
function wabasToRate(outcome: IngestOutcome): Set<string> {
  const wabas = new Set<string>(outcome.relistedWabas);
  for (const event of [...outcome.inserted, ...outcome.merged])
    if (event.waba !== undefined) wabas.add(event.waba);
  return wabas;
}

/**
 * The WABAs to rate again for a request's events when the store found them stored already or failed: a
 * write whose COMMIT reached the database but whose answer was lost (a connection reset) was answered 503,
 * yet stored; its redelivery — or, in a group commit, the one-by-one retry that follows the group's failure
 * — then finds it a duplicate, and nothing else would ever rate it (failure-injection review, fifteenth
 * session: the bill stayed short until a restart). A real duplicate costs a re-rating of its portfolio.
 * Beyond the WABAs the events name, those their first write re-listed (store.ts `relistedWabas`, which only
 * that write could tell): for a status naming none, the WABAs that may list the statuses naming no WABA of its
 * id (`listUnnamedStatusWabas`: holding its message, or tying a number they give or gave — what storing it, or
 * merging it into a stored copy, named); the WABAs tying each business number an inbound, outbound or status
 * naming its WABA gives (`listWabas(number)`): a number moved to a smaller WABA
 * leaves its former owner still tying it, and the statuses naming no WABA a message came to join were placed
 * with its number's owner; and the WABAs that place the statuses naming no WABA of the ids of the messages
 * given (`listPlacingWabas`): a status of another number, placed with that number's owner (or listed by an
 * inbound of its id) until its message came. One look-up per number (a webhook's statuses give one or a few),
 * one for all the message ids (an index seek each), and one for the ids of the statuses naming no WABA (a few
 * key seeks per id and stored WABA; every stored WABA past `UNNAMED_LOOKUP_LIMIT` of them).
 */
export async function wabasNamed(
  inputs: readonly { event: CoreEvent }[],
  stored: {
    listWabas: (business?: string) => Promise<string[]>;
    listPlacingWabas: (messageIds: readonly string[]) => Promise<string[]>;
    listUnnamedStatusWabas: (messageIds: readonly string[]) => Promise<string[]>;
  },
): Promise<Set<string>> {
  const wabas = new Set<string>();
  const numbers = new Set<string>();
  const messageIds = new Set<string>();
  const unnamedStatusIds = new Set<string>();
  for (const { event } of inputs) {
    if (event.waba === undefined) {
      if (event.kind === 'status') unnamedStatusIds.add(event.id);
      continue;
    }
    wabas.add(event.waba);
    if ((event.kind === 'inbound' || event.kind === 'outbound' || event.kind === 'status') && event.business)
      numbers.add(event.business);
    if (isJoiningMessage(event)) messageIds.add(event.id);
  }
  for (const number of numbers) for (const waba of await stored.listWabas(number)) wabas.add(waba);
  if (messageIds.size > 0) for (const waba of await stored.listPlacingWabas([...messageIds])) wabas.add(waba);
  if (unnamedStatusIds.size > 0)
    for (const waba of await stored.listUnnamedStatusWabas([...unnamedStatusIds])) wabas.add(waba);
  return wabas;
}

/**
 * Whether a JSON value is one of wameter's own event lines (an object with "kind", contract §1), which Meta
 * never posts: its webhook bodies are `{"object":"whatsapp_business_account","entry":[…]}`.
 */
function isEventLine(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, 'kind');
}

/** How the webhook route refuses an event line (notAWebhookBody says it in words for that route). */
const EVENT_LINE_ERROR: ParseError = {
  code: 'BAD_EVENT',
  message: 'an event line, which goes to POST /v1/events',
};

/** `isNarrowed`: a limited key's view of a rating that covered other WABAs too (its `changes` left out). */
function ratingToJson(record: RatingRecord, isNarrowed = false) {
  return {
    id: record.id,
    // To the second, as the API writes every instant (formatInstant: units' opened_at, a re-rate's period):
    // the server's clock reading, whose milliseconds (`…:00.123Z`) told nobody anything.
    rated_at: formatInstant(Math.floor(record.ratedAtMs / 1000) * 1000),
    reason: record.reason,
    wabas: record.wabas,
    as_of_rules: record.asOfRules,
    rate_cards: record.rateCards,
    // The cards' contents as a digest (null for ratings stored before it was kept): an edited card keeps its id.
    rate_cards_digest: record.rateCardsDigest ?? null,
    totals: totalsToJson(record.totals),
    ...(record.changes === undefined || isNarrowed ? {} : { changes: changesToJson(record.changes) }),
  };
}

/**
 * A re-rate's stored changes, in the words POST /v1/rerate uses (snake_case, ISO instants) but their own shape:
 * `{period: {from, to}, outside_period, changed (a count), unchanged, totals: {old, new}, units: [{unit, old,
 * new}]}` — the re-rate answers the unit changes as `changed: [...]`. Those stored before the twelfth session
 * said `period: {fromMs, toMs}` and `outsidePeriod` (absent when null): given back in the same shape as new
 * ones, key for key.
 */
function changesToJson(changes: unknown): unknown {
  if (typeof changes !== 'object' || changes === null || !('period' in changes)) return changes;
  const { period, outsidePeriod, outside_period, ...rest } = changes as Record<string, unknown> & {
    period?: { fromMs?: number | null; toMs?: number | null; from?: string | null; to?: string | null };
  };
  if (period === undefined || period === null) return changes;
  // Instants as the rest of the API writes them (formatInstant: "…:00Z", milliseconds only when not zero);
  // re-rates stored before wrote "…:00.000Z" and are given back rewritten so.
  const instant = (ms: number | null | undefined) => (typeof ms === 'number' ? formatInstant(ms) : null);
  const rewritten = (text: string | null | undefined) => {
    const ms = typeof text === 'string' ? Date.parse(text) : NaN;
    return Number.isNaN(ms) ? (text ?? null) : formatInstant(ms);
  };
  if (!('fromMs' in period || 'toMs' in period)) {
    return { ...changes, period: { ...period, from: rewritten(period.from), to: rewritten(period.to) } };
  }
  return {
    period: { from: instant(period.fromMs), to: instant(period.toMs) },
    outside_period: outside_period ?? outsidePeriod ?? null,
    ...rest,
  };
}

/**
 * Graph's error code for each status /v1/graph answers a refusal with (its body rewritten in Graph's shape):
 * 100 a parameter, an object or a path it cannot read, 190 the token, 4 the rate limit, 2 a service that cannot
 * answer now; any other status is Graph's 1, "an unknown error".
 */
const GRAPH_ERROR_CODES: Readonly<Record<number, number>> = {
  400: 100,
  401: 190,
  403: 100,
  404: 100,
  405: 100,
  429: 4,
  503: 2,
};
/**
 * Graph's `error_subcode` 33, which Meta answers for an object that "does not exist, cannot be loaded due to
 * missing permissions, or does not support this operation" — one answer for the three, as ours are: a WABA the
 * key may not read (whether it exists or not), a path or method the route does not have.
 */
const GRAPH_SUBCODE_33: ReadonlySet<string> = new Set(['FORBIDDEN_WABA', 'NOT_FOUND', 'METHOD_NOT_ALLOWED']);

/** The units `/v1/analytics?metric=conversation` counts: Meta's conversation_analytics counts conversations. */
const CONVERSATION_ERAS: readonly Era[] = ERAS.filter(isConversationEra);
/** The others (per-message pricing, and notification-based before 2022-02-01), which metric=pricing counts. */
const NON_CONVERSATION_ERAS: readonly Era[] = ERAS.filter((era) => !isConversationEra(era));

/** Meta's analytics dimension names (and wameter's own) → the store's dimension. */
const ANALYTICS_DIMENSIONS: Record<string, AnalyticsDimension> = {
  CONVERSATION_CATEGORY: 'category',
  PRICING_CATEGORY: 'category',
  CATEGORY: 'category',
  CONVERSATION_TYPE: 'type',
  PRICING_TYPE: 'type',
  TYPE: 'type',
  COUNTRY: 'country',
  PHONE: 'business',
  PHONE_NUMBER: 'business',
  BUSINESS: 'business',
  WABA: 'waba',
  MARKET: 'market',
  CURRENCY: 'currency',
  CONVERSATION_DIRECTION: 'direction',
  DIRECTION: 'direction',
  TIER: 'tier',
};

/** Why /v1/analytics?metric=conversation left units out (`not_counted`), and where they are counted. */
const NOT_COUNTED_REASON =
  'billed per message (from 2025-07-01; or per notification, before 2022-02-01), not as conversations: ' +
  "Meta's conversation_analytics does not count them; metric=pricing counts them (volume, cost).";

/** The query parameters of /v1/analytics named as Meta names them (`MetaAnalyticsParameters`). */
const META_ANALYTICS_PARAMETERS = [
  'metric',
  'dimensions',
  'metric_types',
  'phone_numbers',
  'country_codes',
  'pricing_categories',
  'pricing_types',
  'conversation_categories',
  'conversation_types',
  'conversation_directions',
] as const satisfies ReadonlyArray<keyof MetaAnalyticsParameters>;

/**
 * The display number of a business number, of the point's WABA when it is known (PHONE with WABA), else of
 * any of the key's WABAs that names one (a phone_number_id is Meta's, one number's, whatever WABA reads it).
 */
function displayNumbers(
  numbers: readonly BusinessNumber[],
): (waba: string | null | undefined, business: string) => string | undefined {
  const byWaba = new Map(
    numbers.map((number) => [`${number.waba}\u0000${number.business}`, number.displayNumber]),
  );
  const byBusiness = new Map<string, string>();
  for (const number of numbers)
    if (!byBusiness.has(number.business)) byBusiness.set(number.business, number.displayNumber);
  return (waba, business) =>
    (waba ? byWaba.get(`${waba}\u0000${business}`) : undefined) ?? byBusiness.get(business);
}

/** The field name Meta uses for a dimension in each kind of analytics. */
function analyticsFieldName(kind: AnalyticsKind, dimension: AnalyticsDimension): string {
  switch (dimension) {
    case 'category':
      return kind === 'conversation' ? 'conversation_category' : 'pricing_category';
    case 'type':
      return kind === 'conversation' ? 'conversation_type' : 'pricing_type';
    case 'business':
      return 'phone_number';
    case 'direction':
      return 'conversation_direction';
    default:
      return dimension;
  }
}

/**
 * A stored tier band ("1:100000", "100001:" for the open last band: 1-based, inclusive, as the tier files
 * write them) as Meta writes it in pricing_analytics and tier webhooks: the first band from 0, an open end
 * `MAX` ("0:100000", "100001:MAX"). The start is what `TierStatements` reads back from Meta's strings.
 */
function metaTierBand(band: string): string {
  const [from = '', to = ''] = band.split(':');
  return `${from === '1' ? '0' : from}:${to === '' ? 'MAX' : to}`;
}

/** A dimension's value as Meta writes it: its words upper case, tier bands in its notation. */
function analyticsValue(dimension: AnalyticsDimension, value: string | null): string | null {
  if (value === null) return null;
  if (dimension === 'category' || dimension === 'type') return value.toUpperCase();
  return dimension === 'tier' ? metaTierBand(value) : value;
}

/**
 * The route pattern that answered, for metrics labels: the first matched route that is not middleware
 * (registered with `use`, method ALL). A catch-all (`/*`: 404s, the dashboard's pages) is `unmatched`, so
 * that no label ever holds a path a client made up.
 */
function routeLabel(c: Context): string {
  const handler = matchedRoutes(c).find((route) => route.method !== 'ALL');
  return handler === undefined || handler.path.endsWith('*') ? 'unmatched' : handler.path;
}

/** The first query parameter given more than once (of those `isChecked` names), or undefined. */
function repeatedParameter(
  c: Context,
  isChecked: (name: string) => boolean = () => true,
): string | undefined {
  const seen = new Set<string>();
  for (const name of new URL(c.req.url).searchParams.keys()) {
    if (!isChecked(name)) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

function repeatedParameterResponse(c: Context, name: string): Response {
  return errorResponse(c, 'BAD_QUERY', `"${name}" is given more than once: give each parameter once.`);
}

/** A store error repeated word for word is logged again after this long (each request has its own line). */
const STORE_ERROR_LOG_MS = 10_000;

export function createApp(deps: AppDeps): Hono<Env> {
  const { store, config, clock, logger, rating } = deps;
  const metrics = deps.metrics ?? new Metrics();
  metrics.gauge('rating_lag_seconds', 'Seconds the oldest stored but not yet rated arrival has waited.', () =>
    rating.lagSeconds(),
  );
  metrics.counterRead(
    'store_ingest_groups_total',
    'Group commits of webhooks and POST /v1/events batches: each one transaction (one fsync on SQLite).',
    () => store.ingestGroups().groups,
  );
  metrics.counterRead(
    'store_ingest_group_items_total',
    'Webhooks and POST /v1/events batches committed in those groups: divided by store_ingest_groups_total, how many share a commit.',
    () => store.ingestGroups().items,
  );
  metrics.gauge(
    'on_demand_ratings_waiting',
    'Explain, re-rate, reconciliation and estimate requests waiting for their turn to rate (the one running not counted).',
    () => rating.onDemandWaiting(),
  );
  const app = new Hono<Env>();
  /** A store error's words → when it was last logged and how many times it came since (onError). */
  const storeErrorsLogged = new Map<string, { atMs: number; unlogged: number }>();
  /** The API keys downloading a CSV export now (one each, MAX_CONCURRENT_EXPORTS in all). */
  const exportingKeys = new Set<string>();
  const exportStallMs = deps.exportStallMs ?? EXPORT_STALL_MS;
  const exportDeadlineMs = deps.exportDeadlineMs ?? EXPORT_DEADLINE_MS;
  const keysByHash = new Map(
    config.apiKeys.map((apiKey) => {
      const hash = sha256(apiKey.key).toString('hex');
      return [hash, { apiKey, hash }] as const;
    }),
  );
  /**
   * The configured key a request's `Authorization: Bearer …` names, with its hash; undefined for none. On
   * /v1/graph only, a request without that header may give it as Graph's `access_token` query parameter, as
   * Meta's SDKs send their token (the request log never writes a query string).
   */
  const apiKeyOfRequest = (c: Context) => {
    const header = c.req.header('authorization');
    const token =
      header === undefined
        ? c.req.path.startsWith('/v1/graph/')
          ? c.req.query('access_token')
          : undefined
        : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    return token ? keysByHash.get(sha256(token).toString('hex')) : undefined;
  };
  const limiter = config.rateLimit ? createRateLimiter(config.rateLimit, clock) : null;
  // Webhook POSTs count only when they fail (bad or missing signature, oversized body): Meta's signed
  // deliveries come from a few addresses, often far faster than any per-IP request limit, and must never be
  // refused for it — not even when others behind the same address (a proxy) keep failing. So every POST is
  // read (up to the size limit) and checked; a failure beyond the bucket is answered 429 instead of 401/413.
  const webhookFailures = config.rateLimit ? createRateLimiter(config.rateLimit, clock) : null;
  const clientIp =
    deps.clientIp ??
    ((c: Context) => {
      const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
      return env?.incoming?.socket?.remoteAddress ?? 'unknown';
    });

  const storeHealth = deps.storeHealth ?? createStoreHealth({ clock });

  /**
   * WABA → its portfolio's WABAs, for the volume-tier checks of one request: the stored WABAs are listed once,
   * when a first statement asks (a `SELECT DISTINCT` over every event, which a body of a thousand statements
   * would otherwise run a thousand times), and each WABA's answer is kept.
   */
  function portfolioMatesReader(): (waba: string) => Promise<string[]> {
    let stored: Promise<string[]> | undefined;
    const mates = new Map<string, Promise<string[]>>();
    return (waba) => {
      let answer = mates.get(waba);
      if (answer === undefined) {
        stored ??= fromStore(store.listWabas());
        answer = stored.then((wabas) => fromStore(rating.portfolioOf(waba, wabas)));
        mates.set(waba, answer);
      }
      return answer;
    };
  }

  /**
   * The stored WABAs (of a number; placing the statuses naming no WABA of some message ids), for wabasNamed:
   * none when the store cannot list them — a duplicate is answered as ever (200), a failed write 503 for its
   * own failure; a retry lists them again, and a start rates every portfolio whose bill is behind.
   */
  const listStoredWabasIfUp = {
    listWabas: (business?: string) => store.listWabas(business).catch((): string[] => []),
    listPlacingWabas: (messageIds: readonly string[]) =>
      store.listPlacingWabas(messageIds).catch((): string[] => []),
    listUnnamedStatusWabas: (messageIds: readonly string[]) =>
      store.listUnnamedStatusWabas(messageIds).catch((): string[] => []),
  };

  async function fromStore<T>(operation: Promise<T>): Promise<T> {
    try {
      return await operation;
    } catch (error) {
      // The caller's own doing, not the store's: said as such (onError). A sum beyond the amounts added
      // exactly comes from what the request asked (rated in the server's thread or in a worker, which
      // names it: live-rater.ts workerError) — 400 BAD_QUERY, never a 503 that a retry would not help.
      if (
        error instanceof StoreInputError ||
        error instanceof ClientBusyError ||
        error instanceof MoneyRangeError
      )
        throw error;
      throw new StoreUnavailable(error);
    }
  }

  /**
   * An ingest's write: as fromStore, and its outcome tells readiness whether the store takes writes. Never
   * started while the SQLite file is gone or replaced: a 200 would acknowledge what a restart loses (503: Meta
   * retries). Its duration, from the call until durable or failed (the wait for its group commit included:
   * what the request waits before it may be answered), goes to `store_ingest_duration_seconds{source}`.
   */
  async function writeToStore<T>(source: 'webhook' | 'api', write: () => Promise<T>): Promise<T> {
    const blocker = storeHealth.writeBlocker();
    if (blocker !== null) throw new Error(blocker);
    const startedMs = performance.now();
    try {
      const result = await write();
      storeHealth.writeSucceeded('ingest');
      return result;
    } catch (error) {
      if (!(error instanceof StoreInputError)) storeHealth.writeFailed(error, 'ingest');
      throw error;
    } finally {
      metrics.observe('store_ingest_duration_seconds', { source }, (performance.now() - startedMs) / 1000);
    }
  }

  // --- cross-cutting: request log + duration metric, errors, rate limit -------------------------------

  // Every answer carries the request's id (X-Request-Id: the client's when safe, else a new one), and so does
  // every line logged while the request is handled (errors included). The request line adds the API key's
  // name (never the key) and a refusal's error code.
  app.use('*', async (c, next) => {
    const startMs = clock();
    const requestId = requestIdFor(c.req.header('x-request-id'));
    const logContext: RequestLogContext = { fields: { requestId } };
    await withRequestLogContext(logContext, next);
    logContext.fields = null; // work the request only scheduled (a debounced rating) is not its own
    const ms = clock() - startMs;
    metrics.observeRequest(c.req.method, routeLabel(c), c.res.status, ms / 1000);
    try {
      c.res.headers.set('X-Request-Id', requestId);
    } catch {
      // A response with immutable headers: copied once, then set.
      c.res = new Response(c.res.body, c.res);
      c.res.headers.set('X-Request-Id', requestId);
    }
    // The request line is info: at `warn` (the load bench's level, often production's) nothing of it is
    // gathered. An answer below 400 has no error code: its body is not copied and read for one (nor awaited).
    if (!logger.isLevelWritten('info')) return;
    const apiKey = (c.get('apiKey') as ApiKey | undefined)?.name;
    const errorCode = c.res.status < 400 ? undefined : await errorCodeOf(c.res);
    // The path only: a query string can hold hub.verify_token.
    logger.info('request', {
      method: c.req.method,
      path: loggedPath(c.req.path),
      status: c.res.status,
      ms,
      requestId,
      ...(apiKey === undefined ? {} : { apiKey }),
      ...(errorCode === undefined ? {} : { errorCode }),
    });
  });

  // Billing data and refusals about it are never sniffed into another type nor kept by a cache: every /v1
  // answer (JSON, CSV, the dashboard's, errors — a 401 or a 429 too) says so, and so does every error answer.
  // The dashboard's own files keep the caching they set (no-cache: revalidated).
  app.use('*', async (c, next) => {
    await next();
    const isApi = c.req.path.startsWith('/v1/');
    if (!isApi && c.res.status < 400) return;
    const set = (name: string, value: string, isKept: boolean) => {
      if (isKept && c.res.headers.has(name)) return;
      try {
        c.res.headers.set(name, value);
      } catch {
        // A response with immutable headers: copied once, then set.
        c.res = new Response(c.res.body, c.res);
        c.res.headers.set(name, value);
      }
    };
    set('X-Content-Type-Options', 'nosniff', false);
    set('Cache-Control', 'no-store', !isApi);
  });

  // Every request's body bytes count against one budget while it is handled (read-body.ts): past it a body
  // is refused 503 rather than held — 300 unsigned 4 MiB webhooks held open took the process to 1.4 GB.
  const bodyBudgetBytes =
    deps.bodyBudgetBytes ?? Math.max(DEFAULT_BODY_BUDGET_BYTES, 2 * config.bodyLimitBytes);
  // One client (an address; an IPv6 /64) holds at most a quarter of the budget, and never less than two
  // bodies of the largest size: a few clients holding large bodies open leave room for Meta's webhooks.
  const bodyBudget = new BodyBudget(
    bodyBudgetBytes,
    Math.min(bodyBudgetBytes, Math.max(Math.floor(bodyBudgetBytes / 4), 2 * config.bodyLimitBytes)),
  );
  metrics.gauge(
    'request_bodies_in_flight_bytes',
    'Bytes of request bodies held at once by requests being handled (bounded by the body budget).',
    () => bodyBudget.inFlightBytes,
  );
  app.use('*', async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const lease = bodyBudget.open(clientOfAddress(clientIp(c)));
    attachBodyLease(c.req.raw, lease);
    try {
      await next();
    } finally {
      lease.release();
    }
  });

  app.onError((error, c) => {
    if (error instanceof QueryError) return errorResponse(c, error.code, error.detail);
    if (error instanceof StoreInputError) return errorResponse(c, 'BAD_QUERY', error.message);
    if (error instanceof MoneyRangeError) return errorResponse(c, 'BAD_QUERY', error.message);
    if (error instanceof RatingBehindError) {
      // Behind because nothing can be written (the SQLite file or its log gone, the writer lock lost): a
      // retry does not help, only what the blocker says.
      const blocker = storeHealth.writeBlocker();
      if (blocker !== null) return errorResponse(c, 'STORE_UNAVAILABLE', `(${blocker}.)`);
      return ratingBehindResponse(c, error);
    }
    if (error instanceof ClientBusyError) return clientBusyResponse(c, error);
    // The connection closed before the whole body arrived — its client left (or the request timeout cut it),
    // or the shutdown cut it when its grace ended (`cutBy`): nothing was stored, and it is neither a store
    // error nor a bug. Nobody reads this answer (Node itself answers a client that half-closes 400): it is for
    // the request log line and the duration metric.
    if (error instanceof IncompleteBodyError) {
      if (c.req.method === 'POST' && c.req.path.startsWith('/webhooks'))
        metrics.inc('webhooks_rejected_total', { reason: 'incomplete_body' });
      const declared = c.req.header('content-length');
      const cutBy =
        error.cutBy === 'shutdown'
          ? "the server's shutdown (its grace for in-flight requests over)"
          : 'the client';
      logger.info(`request body cut off by ${cutBy}; nothing stored`, {
        method: c.req.method,
        path: c.req.path,
        receivedBytes: error.receivedBytes,
        declaredBytes: declared === undefined ? null : Number(declared),
      });
      return c.body(null, 400);
    }
    if (error instanceof StoreUnavailable) {
      metrics.inc('store_errors_total');
      // Each refused request has its request line; the store's error itself is said once, then at most every
      // STORE_ERROR_LOG_MS while it repeats word for word (a full disk refused 342 webhooks in a second, an
      // error line each), with how many refusals it stands for.
      const fields = errorFields(error.cause);
      const key = `${String(fields.errorName)}\u0000${String(fields.error)}`;
      const nowMs = clock();
      const seen = storeErrorsLogged.get(key);
      if (seen === undefined || nowMs - seen.atMs >= STORE_ERROR_LOG_MS) {
        if (storeErrorsLogged.size >= 100) storeErrorsLogged.clear();
        storeErrorsLogged.set(key, { atMs: nowMs, unlogged: 0 });
        logger.error('store error', {
          ...fields,
          ...(seen !== undefined && seen.unlogged > 0 ? { same_errors_unlogged: seen.unlogged } : {}),
        });
      } else {
        seen.unlogged += 1;
      }
      // What the store's error says (disk full, read-only, no answer within the write's bound), never more;
      // else what refused the write before it started (the SQLite file gone or replaced), as /healthz says.
      const hint = writeFailureHint(error.cause) ?? storeHealth.writeBlocker();
      return errorResponse(c, 'STORE_UNAVAILABLE', hint === null ? undefined : `(${hint}.)`, {
        'Retry-After': '5',
      });
    }
    logger.error('unexpected error', errorFields(error));
    return errorResponse(c, 'INTERNAL');
  });

  // A path some route has, asked with a method none of its routes takes, is 405 with Allow (the routes
  // registered by then, the dashboard's too: this runs per request); a path no route has is 404.
  app.notFound((c) => noRouteResponse(c, app.routes));

  const refuseOverLimit = (c: Context, verdict: RateLimitVerdict) => {
    metrics.inc('rate_limited_total');
    if (c.req.method === 'POST' && c.req.path.startsWith('/webhooks'))
      metrics.inc('webhooks_rejected_total', { reason: 'rate_limited' });
    return errorResponse(c, 'RATE_LIMITED', undefined, { 'Retry-After': String(verdict.retryAfterSeconds) });
  };
  const rateLimit: MiddlewareHandler<Env> = async (c, next) => {
    // A /v1 request with a valid API key is counted by its key: a provider's backend asking for fifty clients
    // from one address must not share one bucket among them, nor with everyone else behind its proxy. Any
    // other request (no key, a wrong one, the webhook handshake) by client as the body budget counts them:
    // one IPv6 host's /64 is one bucket, not 2^64 of them.
    if (!limiter) return next();
    const known = c.req.path.startsWith('/v1/') ? apiKeyOfRequest(c) : undefined;
    if (known) c.set('apiKey', known.apiKey);
    const verdict = limiter.take(known ? `key ${known.hash}` : `ip ${clientOfAddress(clientIp(c))}`);
    if (!verdict.isAllowed) return refuseOverLimit(c, verdict);
    await next();
  };
  const webhookRateLimit: MiddlewareHandler<Env> = async (c, next) => {
    if (c.req.method !== 'POST') return rateLimit(c, next);
    await next();
  };
  app.use('/webhooks/*', webhookRateLimit);
  // /v1/graph answers a tool written for Meta's Graph API: its refusals (of the API key, the rate limit, the query
  // checks below, the route) in Graph's error shape, which such a tool reads (`error.code` a number: 100 for a
  // parameter or an object it may not read, 190 for the token, 4 for the rate limit, 2 for a service that cannot
  // answer now), each with its status, headers and message as the other routes answer them.
  app.use('/v1/graph/*', async (c, next) => {
    await next();
    if (c.res.status < 400 || !c.res.headers.get('content-type')?.includes('json')) return;
    const graphCode = GRAPH_ERROR_CODES[c.res.status] ?? 1;
    const body = (await c.res
      .clone()
      .json()
      .catch(() => undefined)) as { error?: { code?: unknown; message?: unknown } } | undefined;
    if (typeof body?.error?.code !== 'string' || typeof body.error.message !== 'string') return;
    const { status } = c.res;
    const headers = new Headers(c.res.headers);
    headers.delete('content-length');
    const wameterCode = body.error.code;
    // A path /v1/graph does not have: the message says which request it answers (the same whatever the path
    // names, so that it tells nothing of any WABA).
    const message =
      wameterCode === 'NOT_FOUND'
        ? `Unsupported ${c.req.method.toLowerCase()} request: /v1/graph answers GET /v1/graph/{version}/{WABA_ID}?fields=… ` +
          "with conversation_analytics, pricing_analytics and id, as Meta's analytics guide writes the request " +
          '(not the edge form /{WABA_ID}/pricing_analytics, nor any other path).'
        : body.error.message;
    c.res = undefined;
    c.res = new Response(
      JSON.stringify({
        error: {
          message,
          type: 'OAuthException',
          code: graphCode,
          ...(GRAPH_SUBCODE_33.has(wameterCode) ? { error_subcode: 33 } : {}),
          wameter_code: wameterCode,
        },
      }),
      { status, headers },
    );
  });

  app.use('/v1/*', rateLimit);

  // --- Meta webhooks ---------------------------------------------------------------------------------

  app.get('/webhooks/whatsapp', (c) => {
    // The handshake's own parameters are read once: a second hub.verify_token would otherwise be silently
    // ignored. Any other parameter is the operator's (Meta's callback URL may carry some): never checked.
    const repeated = repeatedParameter(c, (name) => name.startsWith('hub.'));
    if (repeated !== undefined) return repeatedParameterResponse(c, repeated);
    const mode = c.req.query('hub.mode');
    const token = c.req.query('hub.verify_token');
    const challenge = c.req.query('hub.challenge');
    if (config.verifyToken === null) {
      return errorResponse(
        c,
        'WRONG_VERIFY_TOKEN',
        'No verify token is configured: set WAMETER_VERIFY_TOKEN or the config file\'s "verifyToken".',
      );
    }
    // Not a handshake at all (no mode, or nothing to echo): a malformed request, 400.
    if (mode === undefined || challenge === undefined) {
      return errorResponse(
        c,
        'BAD_QUERY',
        'Expected hub.mode=subscribe, hub.verify_token and hub.challenge.',
      );
    }
    // A handshake Meta would not send with our token is refused 403 (webhooks.md, "Security"), whichever
    // part is wrong: the mode is checked before the token, so a wrong mode says nothing of the token.
    if (mode !== 'subscribe') {
      return errorResponse(
        c,
        'WRONG_VERIFY_TOKEN',
        `Only hub.mode=subscribe is verified (this request has hub.mode=${JSON.stringify(mode)}).`,
      );
    }
    if (token === undefined || !constantTimeEquals(token, config.verifyToken)) {
      return errorResponse(
        c,
        'WRONG_VERIFY_TOKEN',
        'hub.verify_token does not match the configured verify token (WAMETER_VERIFY_TOKEN or the config file\'s "verifyToken").',
      );
    }
    return c.text(challenge, 200);
  });

  app.post('/webhooks/whatsapp', async (c) => {
    const reject = (reason: string, code: ErrorCode, detail?: string) => {
      metrics.inc('webhooks_rejected_total', { reason });
      return errorResponse(c, code, detail);
    };
    /**
     * A refusal the client could have avoided: it counts against the client's webhook rate limit. `log` runs
     * only when the refusal is answered as such (not 429), so a client that keeps failing cannot flood the log.
     */
    const rejectFailure = (reason: string, code: ErrorCode, detail?: string, log?: () => void) => {
      const limited = webhookFailures?.take(clientOfAddress(clientIp(c)));
      if (limited && !limited.isAllowed) return refuseOverLimit(c, limited);
      log?.();
      return reject(reason, code, detail);
    };
    if (config.appSecrets.length === 0) return reject('not_configured', 'WEBHOOK_NOT_CONFIGURED');
    const body = await readRawBody(c, config.bodyLimitBytes);
    if (!body.ok && body.reason === 'busy') {
      // Not the client's failure (Meta may be the one refused): no rate-limit token taken; Meta retries.
      metrics.inc('webhooks_rejected_total', { reason: 'busy' });
      return bodyBudgetResponse(c);
    }
    if (!body.ok)
      return rejectFailure(
        'body_too_large',
        'BODY_TOO_LARGE',
        `The limit is ${config.bodyLimitBytes} bytes.`,
        // Said, not only counted: nothing of it is kept (unread, so unverified), and if it is Meta's, every
        // retry meets the same limit until its retries run out. Raising the limit lets the next retry in.
        () => {
          const declared = c.req.header('content-length');
          logger.warn('webhook body over the limit refused; nothing stored', {
            declaredBytes: declared === undefined ? null : Number(declared),
            limitBytes: config.bodyLimitBytes,
            hint: "if Meta sent it, it retries the same body for days: raise WAMETER_BODY_LIMIT (or the config file's bodyLimitBytes) and restart to take it",
          });
        },
      );
    const raw = body.bytes;
    const verdict = verifyMetaSignature(raw, c.req.header('x-hub-signature-256'), config.appSecrets);
    if (!verdict.ok) {
      if (verdict.error.code === 'MISSING_SIGNATURE')
        return rejectFailure('missing_signature', 'MISSING_SIGNATURE');
      if (verdict.error.code === 'NO_APP_SECRET') return reject('not_configured', 'WEBHOOK_NOT_CONFIGURED');
      return rejectFailure('bad_signature', 'BAD_SIGNATURE');
    }

    const receivedAtMs = clock();
    let value: unknown;
    let parseError: string | null = null;
    let isTooManyValues = false;
    try {
      // Bad bytes would be decoded as U+FFFD without a word: two ids differing only there would be one.
      const invalidAt = firstInvalidUtf8(raw);
      if (invalidAt >= 0) throw new Error(`not valid UTF-8: ${invalidByteWords(raw, invalidAt)}`);
      const text = UTF8.decode(raw);
      // Both told in one pass over the text (textOverLimits). Kept as unreadable like any body that is no
      // webhook: nothing may walk a value this deep (and, told before parsing, millions of brackets never hold
      // the thread in JSON.parse).
      const overLimit = textOverLimits(text, MAX_JSON_DEPTH, MAX_WEBHOOK_VALUES);
      if (overLimit === 'too_deep') throw new Error(`nested deeper than ${MAX_JSON_DEPTH} levels`);
      // Nor a body of more values than any of Meta's holds: parsing it alone took seconds (parse-event.ts).
      // (Text that parses nests exactly as deep as its brackets outside strings: no walk of the value after.)
      if (overLimit === 'too_many_values') isTooManyValues = true;
      else value = JSON.parse(text);
    } catch (error) {
      parseError = (error as Error).message;
    }
    let events: CoreEvent[] = [];
    let ignored = 0;
    let unreadableItems = 0;
    let unreadableReasons: string[] = [];
    let malformedCode: ErrorCode | null = parseError === null ? null : 'MALFORMED_JSON';
    if (isTooManyValues) {
      parseError = TOO_MANY_VALUES_MESSAGE;
      malformedCode = 'MALFORMED_WEBHOOK';
    }
    if (parseError === null) {
      // Meta's bodies only: wameter's own event lines ({"kind":…}, contract §1) go to POST /v1/events, under
      // an API key scoped to WABAs. Read here, a line signed with an app secret was stored as events — a
      // second way in for lines, outside the checks of that route — so one is kept as unreadable like any
      // other signed JSON that is no webhook (400 MALFORMED_WEBHOOK, its message saying where lines go).
      const parsed = isEventLine(value) ? err(EVENT_LINE_ERROR) : parseEventValue(value);
      if (parsed.ok) {
        events = parsed.value.events;
        ignored = parsed.value.ignored.reduce((sum, item) => sum + item.count, 0);
        unreadableItems = parsed.value.rejected.length;
        unreadableReasons = parsed.value.rejected.slice(0, 5).map((item) => item.message);
      } else {
        // In words for this route, which takes webhook bodies only (the reader's speak of event lines too).
        parseError = notAWebhookBody(value, parsed.error);
        malformedCode = 'MALFORMED_WEBHOOK';
      }
    }
    // A secret bound to WABAs (config "appSecrets") signs for them alone. Every WABA a readable body names —
    // each entry's id, whether or not the entry's items could be read, and each event's — must be one of
    // them, else the whole body is refused and nothing of it stored: a client who knows its own app's secret
    // must not bill deliveries to another client's WABA. An entry or event naming no WABA (an entry without
    // "id": its statuses would be attached by message id to any WABA's message) is refused too. A signed body
    // that cannot be read (an event line among them) is kept as unreadable whoever signed it: no event.
    const signer = config.appSecrets[verdict.value.secretIndex];
    if (typeof signer === 'object' && parseError === null) {
      const allowed = new Set(signer.wabas);
      const entries = (value as { entry?: unknown }).entry;
      const entryIds = Array.isArray(entries)
        ? entries.map((entry: unknown) =>
            typeof entry === 'object' && entry !== null ? (entry as { id?: unknown }).id : undefined,
          )
        : [];
      const outside = [...new Set([...entryIds, ...events.map((event) => event.waba)])].filter(
        (waba) => typeof waba !== 'string' || !allowed.has(waba),
      );
      if (outside.length > 0) {
        const ids = outside.filter((waba): waba is string => typeof waba === 'string');
        const shown = ids.slice(0, 3).map((waba) => (waba.length > 64 ? `${waba.slice(0, 61)}...` : waba));
        const noWaba = ids.length < outside.length;
        const more = ids.length > shown.length ? ` and ${ids.length - shown.length} more` : '';
        const detail = [
          ...(ids.length > 0
            ? [`This body names WABA ${shown.map((waba) => JSON.stringify(waba)).join(', ')}${more}.`]
            : []),
          ...(noWaba ? ['It has an entry or event that names no WABA (an entry without "id").'] : []),
        ].join(' ');
        return rejectFailure('forbidden_waba', 'FORBIDDEN_WEBHOOK_WABA', detail, () =>
          // Which secret by its place in "appSecrets", never the secret itself.
          logger.warn('webhook refused: its app secret may not sign for a WABA it names', {
            appSecret: verdict.value.secretIndex,
            wabas: shown,
            noWaba,
            bytes: raw.byteLength,
          }),
        );
      }
    }

    // A volume-tier statement prices its WABA's whole portfolio (tiers count per portfolio): a bound secret
    // signs one only when it is bound to every WABA of that portfolio, as a limited API key posts one only
    // when it may write them all — or a client who holds its own app's secret could change a portfolio mate's
    // prices. The whole body is refused, nothing stored.
    if (typeof signer === 'object' && parseError === null) {
      const allowed = new Set(signer.wabas);
      const matesOf = portfolioMatesReader();
      for (const event of events) {
        if (event.kind !== 'account_update' || event.volumeTier === undefined) continue;
        const mates = await matesOf(event.waba);
        const others = mates.filter((waba) => !allowed.has(waba));
        if (others.length === 0) continue;
        const detail =
          `This body holds a volume-tier statement for WABA ${JSON.stringify(event.waba)}, which prices its whole ` +
          `portfolio, and the portfolio holds ${others.length === 1 ? 'a WABA' : `${others.length} WABAs`} this ` +
          `secret is not bound to: bind the secret to every WABA of the portfolio (config "appSecrets"), or ` +
          `check the portfolios of the accounts file.`;
        return rejectFailure('forbidden_waba', 'FORBIDDEN_WEBHOOK_WABA', detail, () =>
          logger.warn(
            'webhook refused: its app secret may not sign a volume-tier statement for a shared portfolio',
            {
              appSecret: verdict.value.secretIndex,
              waba: event.waba,
              otherWabas: others.length,
              bytes: raw.byteLength,
            },
          ),
        );
      }
    }

    // A bound secret's bodies are a client's own writing, as a limited API key's lines are: they may name
    // any phone_number_id and recipient, so they tie no number to a WABA (store.ts EventInput.isBusinessTied)
    // — or a client could tie another client's number to its WABA and take that client's statuses.
    const isBoundSigner = typeof config.appSecrets[verdict.value.secretIndex] === 'object';
    const inputs: EventInput[] = (isBoundSigner ? events.map(withoutScopedPairing) : events).map((event) => ({
      key: eventKey(event),
      event,
      receivedAtMs,
      source: 'webhook',
      ...(isBoundSigner ? { isBusinessTied: false } : {}),
    }));
    const outcome = await fromStore(
      writeToStore('webhook', () =>
        store.ingestWebhook(
          {
            receivedAtMs,
            // No sha256: the store hashes the bytes itself (engine-checks.ts withSha256), once — given one, it
            // would hash them again to check it.
            body: raw,
            parseError,
            // The display numbers Meta's analytics answer for PHONE: kept from the writers trusted to tie
            // numbers to WABAs only (a bound secret's body may name any number).
            ...(parseError === null && !isBoundSigner ? { businessNumbers: businessNumbersOf(value) } : {}),
          },
          inputs,
        ),
      ),
    ).catch((error: unknown) => {
      // Answered 503 STORE_UNAVAILABLE (onError; Meta retries): a refusal like the others, so that
      // webhooks_rejected_total counts every webhook not acknowledged (store_errors_total counts it too).
      if (error instanceof StoreUnavailable) {
        metrics.inc('webhooks_rejected_total', { reason: 'store_unavailable' });
        return wabasNamed(inputs, listStoredWabasIfUp).then((wabas) => {
          rating.markDirty(wabas);
          throw error;
        });
      }
      throw error;
    });
    // Durable from here on: only now may Meta hear a 200.
    if (malformedCode !== null) {
      metrics.inc('webhooks_rejected_total', {
        reason: malformedCode === 'MALFORMED_JSON' ? 'malformed_json' : 'malformed_webhook',
      });
      logger.warn('unreadable webhook kept', { rawId: outcome.rawId, bytes: raw.byteLength });
      return errorResponse(
        c,
        malformedCode,
        `${parseError}${/[.!?]$/.test(parseError ?? '') ? '' : '.'} The raw body is kept as webhook #${outcome.rawId}.`,
      );
    }
    if (outcome.isDuplicate) {
      metrics.inc('webhooks_duplicate_total');
      rating.markDirty(await wabasNamed(inputs, listStoredWabasIfUp));
    } else {
      metrics.inc('webhooks_received_total');
      metrics.inc('events_ingested_total', { source: 'webhook' }, outcome.inserted.length);
      rating.markDirty(wabasToRate(outcome));
    }
    if (unreadableItems > 0 && !outcome.isDuplicate) {
      metrics.inc('webhook_items_unreadable_total', undefined, unreadableItems);
      // Each reason names the item's path in the body (entry[0].changes[0].value.statuses[2]…) and the field;
      // the body itself is kept (GET it by rawId from the store) — the rest of it was stored as events.
      logger.warn('webhook items unreadable', {
        rawId: outcome.rawId,
        items: unreadableItems,
        reasons: unreadableReasons,
      });
    }
    return c.json({
      received: true,
      duplicate: outcome.isDuplicate,
      events: outcome.inserted.length,
      ignored,
      unreadable: unreadableItems,
    });
  });

  // --- /v1: API key, scoped to WABAs -----------------------------------------------------------------

  app.use('/v1/*', async (c, next) => {
    // Already found by the rate limit when it is on.
    const apiKey = (c.get('apiKey') as ApiKey | undefined) ?? apiKeyOfRequest(c)?.apiKey;
    if (!apiKey) {
      const detail =
        config.apiKeys.length === 0
          ? 'No API key is configured on this server: set WAMETER_API_KEYS or the config file\'s "apiKeys".'
          : undefined;
      return errorResponse(c, 'UNAUTHENTICATED', detail, { 'WWW-Authenticate': 'Bearer realm="wameter"' });
    }
    c.set('apiKey', apiKey);
    await next();
  });

  // Query parameters are checked here: on /v1 after the rate limit and the API key (registered above), so a
  // request without a key is 401 and a refused one still takes its token. Not on the webhook routes: Meta's
  // callback URL may carry parameters of the operator's own (their routes, registered above, answer before
  // this runs; the handshake checks its own hub.* parameters).
  // Every query parameter is read once: a second copy (`?waba=W1&waba=W2`) would otherwise be silently
  // ignored, and the caller would get an answer to a question it did not ask.
  // Every route's query parameters are those its OpenAPI description lists: an unknown one (a typo, a filter
  // the route does not have) is 400, never silently ignored — the answer would be to another question.
  // Routes the document does not describe (the dashboard's files) are not checked further.
  // A value holding U+0000 is refused: no stored event may hold one (parse-event refuses them), and
  // PostgreSQL's text cannot even hold it — its store would fail the query (503) where SQLite answers empty.
  // A parameter given empty (`?waba=`, a script's unset variable) is refused too: taken as absent, a filter
  // meant to narrow the answer would widen it to everything the key may read.
  app.use('*', async (c, next) => {
    if (c.req.path.startsWith('/webhooks/')) return next();
    // A URL without `?` has no query parameter to check: parsing it (twice) cost every such request, the
    // liveness probe's too, ≈ 1 µs (helper reqlog, docs/benchmarks.md §3, thirty-sixth session).
    if (!c.req.url.includes('?')) return next();
    const repeated = repeatedParameter(c);
    if (repeated !== undefined) return repeatedParameterResponse(c, repeated);
    const route = matchedRoutes(c).find((candidate) => candidate.method !== 'ALL');
    const accepted = route && queryParametersOf(c.req.method, route.path);
    if (accepted !== undefined) {
      const parameters = [...new URL(c.req.url).searchParams];
      const unknown = parameters.map(([name]) => name).find((name) => !accepted.includes(name));
      const withNul = parameters.find(([, value]) => value.includes('\u0000'));
      const empty = parameters.find(([name, value]) => accepted.includes(name) && value.trim() === '');
      if (unknown === undefined && withNul !== undefined) {
        return errorResponse(
          c,
          'BAD_QUERY',
          `Query parameter ${JSON.stringify(withNul[0])} holds the character U+0000 (NUL, %00 in the URL), which no stored event may hold: remove it.`,
        );
      }
      if (unknown === undefined && empty !== undefined) {
        return errorResponse(
          c,
          'BAD_QUERY',
          `Query parameter ${JSON.stringify(empty[0])} is empty: give it a value, or leave it out.`,
        );
      }
      if (unknown !== undefined) {
        const takes =
          accepted.length === 0
            ? 'takes no query parameters'
            : `takes ${accepted.map((name) => `"${name}"`).join(', ')}`;
        return errorResponse(
          c,
          'BAD_QUERY',
          `Unknown query parameter ${JSON.stringify(unknown)}: ${c.req.method} ${route!.path} ${takes}.`,
        );
      }
    }
    await next();
  });

  /** The WABAs the caller may see; undefined = every WABA. */
  function scopeOf(c: Context<Env>): readonly string[] | undefined {
    const { wabas } = c.get('apiKey');
    return wabas === '*' ? undefined : wabas;
  }

  function mayAccess(c: Context<Env>, waba: string): boolean {
    const scope = scopeOf(c);
    return scope === undefined || scope.includes(waba);
  }

  /**
   * Whether this request's key may read a WABA's tier counts: only when every WABA of its portfolio is the
   * key's (tier-count-visibility.ts); to another key units say `tier.count: null`, the band kept.
   */
  function tierCountsOf(c: Context<Env>): TierCountReader {
    // The store's WABAs listed once for the request (a page, a whole export), only when a tiered unit asks.
    let stored: Promise<string[]> | undefined;
    return tierCountReader(scopeOf(c), async (waba) => {
      stored ??= fromStore(store.listWabas());
      return fromStore(rating.portfolioOf(waba, await stored));
    });
  }

  /**
   * The WABAs a read of units needs current: the one its `waba` filter names (with its portfolio: tiers and
   * allowances run across it), else every WABA of the key. A portfolio whose live rating keeps failing (out of
   * memory, say) then holds back only reads that include it, not a `*` key's read of another client's WABA.
   */
  function readScope(c: Context<Env>, filter: UnitFilter): readonly string[] | undefined {
    return filter.waba !== undefined ? [filter.waba] : scopeOf(c);
  }

  /** A stored unit as the API answers it: its `local_date` on its WABA's clock (accounts file; UTC unlisted). */
  function unitJsonOf(unit: BillableUnit) {
    return unitToJson(unit, deps.timeZoneOf?.(unit.waba) ?? 'UTC');
  }

  function unitFilterOf(c: Context<Env>): UnitFilter {
    const filter = parseUnitFilter((name) => c.req.query(name), c.get('apiKey'), deps.marketNames);
    if (!filter.ok) throw new QueryError(filter.error.code, filter.error.message);
    return filter.value;
  }

  /**
   * The units filters with `month` (/v1/units, /v1/units.csv, /v1/totals): the units billed in that month by
   * each WABA's clock (`UnitFilter.localPeriod`), among the WABAs the filter may hold.
   */
  async function monthlyUnitFilterOf(c: Context<Env>): Promise<UnitFilter> {
    const filter = unitFilterOf(c);
    const month = monthQuery((name) => c.req.query(name));
    if (!month.ok) throw new QueryError(month.error.code, month.error.message);
    if (month.value === undefined) return filter;
    const wabas =
      filter.waba !== undefined ? [filter.waba] : (filter.wabas ?? (await fromStore(store.listWabas())));
    filter.localPeriod = localMonthFilter(month.value, wabas, (waba) => deps.timeZoneOf?.(waba) ?? 'UTC');
    return filter;
  }

  /**
   * The `user` filter as explain reads it: a business-scoped id joined to a number finds the number's units
   * too (joinScopedUser); a `user` that names nobody the key may read, in no form a user has, is refused
   * (unnamedUserProblem).
   */
  async function checkUserNamed(c: Context<Env>, filter: UnitFilter): Promise<void> {
    const scope = scopeOf(c);
    await joinScopedUser(filter, (user) =>
      fromStore(
        rating.joinedNumber({
          user,
          ...(scope ? { visibleWabas: scope } : {}),
          client: c.get('apiKey').name,
        }),
      ),
    );
    const problem = await unnamedUserProblem(c.req.query('user'), filter, async (named) => {
      const page = await fromStore(store.queryUnits(named, { limit: 1 }));
      return page.units.length > 0;
    });
    if (problem !== undefined) throw new QueryError(problem.code, problem.message);
  }

  /**
   * `reason=rerate,upgrade`: the ratings of those reasons only (every live rating of a busy service would push
   * a re-rate off the listing's page), or undefined for all. Each a reason a rating has, named once. `rerate`
   * is every re-rate: `POST /v1/rerate`'s and those `wameter rerate` stores as `rerate (cli)`.
   */
  function ratingReasonsOf(c: Context<Env>): string[] | undefined {
    const text = c.req.query('reason');
    if (text === undefined) return undefined;
    const reasons = text.split(',');
    const unknown = reasons.find((reason) => !(RATING_REASONS as readonly string[]).includes(reason));
    if (unknown !== undefined || new Set(reasons).size !== reasons.length) {
      throw new QueryError(
        'BAD_QUERY',
        `"reason" must list reasons of ratings, each once, separated by commas: ${RATING_REASONS.join(', ')} (e.g. reason=rerate,upgrade), not ${JSON.stringify(text)}.`,
      );
    }
    return (reasons as RatingReason[]).flatMap((reason) =>
      reason === 'rerate' ? [reason, CLI_RERATE_REASON] : [reason],
    );
  }

  /** The `order` of /v1/units and /v1/units.csv (unitOrderQuery). */
  function unitOrderOf(c: Context<Env>): UnitOrder {
    const order = unitOrderQuery((name) => c.req.query(name));
    if (!order.ok) throw new QueryError(order.error.code, order.error.message);
    return order.value;
  }

  function limitOf(c: Context<Env>, fallback: number): number {
    const text = c.req.query('limit');
    if (text === undefined || text === '') return fallback;
    const limit = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      throw new QueryError('BAD_QUERY', `"limit" must be a whole number from 1 to ${MAX_PAGE}.`);
    }
    return limit;
  }

  app.post('/v1/events', async (c) => {
    const encoding = bodyEncoding(c);
    if (encoding) return errorResponse(c, 'UNSUPPORTED_ENCODING', `(Content-Encoding: ${encoding})`);
    const body = await readRawBody(c, config.bodyLimitBytes);
    if (!body.ok && body.reason === 'busy') return bodyBudgetResponse(c);
    if (!body.ok) {
      return errorResponse(
        c,
        'BODY_TOO_LARGE',
        `The limit is ${config.bodyLimitBytes} bytes: send the lines in several requests (each line is stored ` +
          'once, so a part sent twice does no harm), or raise WAMETER_BODY_LIMIT or the config file\'s "bodyLimitBytes".',
      );
    }
    const apiKey = c.get('apiKey');
    const scope = scopeOf(c);
    const receivedAtMs = clock();
    const rejections = new RejectionList(MAX_LISTED_REJECTIONS);
    const inputs: EventInput[] = [];
    /** The body line each event came from (for a refusal after all lines are read). */
    const lineOf = new Map<CoreEvent, number>();
    /**
     * The message ids of every event of a line refused for a WABA this key may not write → the line, and the
     * WABA when that event was the other WABA's (else it was dropped with the line); and the statuses given
     * the key's WABA.
     */
    const refusedIds = new Map<string, { line: number; waba?: string }>();
    const givenKeyWaba = new Set<CoreEvent>();
    let ignored = 0;
    let itemCount = 0;
    /** The fields beyond the contract of each event line's event (`unread_fields`). */
    const unknownFieldsOf = new Map<CoreEvent, readonly UnknownLineField[]>();
    /** The display numbers of the Meta webhook bodies among the lines, by WABA and number, the last winning. */
    const businessNumbers = new Map<string, BusinessNumber>();
    // A line holding bytes that are not UTF-8 is refused, never read with U+FFFD in their place.
    const { text, hasInvalid } = decodeUtf8MarkingInvalid(body.bytes);
    // Past the listed rejections, a line that cannot be an event is only counted: parsing it (an exception
    // each) would take seconds for a body of millions of garbage lines, to say nothing more.
    for (const item of bodyItems(text, (line) => rejections.wouldList(line), hasInvalid)) {
      itemCount += 1;
      // A body of millions of lines is read in slices, other requests (Meta's webhooks) answered between
      // them: lines that look like events are still parsed, and 4 MiB of `{x}` lines take seconds to refuse.
      if (itemCount % ITEMS_PER_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
      const { line, prefix } = item;
      if ('unread' in item) {
        rejections.add(line, () => ({ code: 'MALFORMED_JSON', error: 'not an event line' }));
        continue;
      }
      if ('error' in item) {
        rejections.add(line, () => ({ code: item.code ?? 'MALFORMED_JSON', error: item.error }));
        continue;
      }
      const value = item.value;
      // An element of an array read whole: counted before anything walks it (tooManyValuesItem).
      if (holdsMoreValuesThan(value, MAX_WEBHOOK_VALUES)) {
        rejections.add(line, () => ({ code: 'BAD_EVENT', error: prefix + TOO_MANY_VALUES_MESSAGE }));
        continue;
      }
      if (isNestedDeeperThan(value)) {
        rejections.add(line, () => ({
          code: 'MALFORMED_JSON',
          error: `${prefix}nested deeper than ${MAX_JSON_DEPTH} levels`,
        }));
        continue;
      }
      const parsed = parseEventValue(value);
      if (!parsed.ok) {
        const { code, message } = parsed.error;
        rejections.add(line, () => ({ code, error: prefix + message }));
        continue;
      }
      // A Meta webhook body's display numbers, kept as a signed webhook's are: from a key for every WABA only
      // (a limited key's lines may name any number, as they tie none: isBusinessTied below).
      if (scope === undefined) {
        for (const number of businessNumbersOf(value)) {
          businessNumbers.set(JSON.stringify([number.waba, number.business]), number);
        }
      }
      // A field the event-line contract does not name is not read: said in the answer (`unread_fields`) for
      // the lines taken (an event line is one event).
      const [event] = parsed.value.events;
      const unknown = event !== undefined && isEventLine(value) ? unknownLineFields(event, value) : undefined;
      for (const bad of parsed.value.rejected)
        rejections.add(line, () => ({ code: bad.code, error: prefix + bad.message }));
      ignored += parsed.value.ignored.reduce((sum, note) => sum + note.count, 0);
      const lineEvents: CoreEvent[] = [];
      let refusal: string | undefined;
      for (const event of parsed.value.events) {
        if (event.waba === undefined) {
          // A status may omit its WABA (contract §1: the message id links it). A key for every WABA stores it
          // so, and the rating finds it by its message id; a key limited to WABAs must say (or imply) which
          // one it writes, else its status could join another client's message of the same id.
          if (scope === undefined) lineEvents.push(event);
          else if (scope.length === 1) {
            const given = { ...event, waba: scope[0]! };
            givenKeyWaba.add(given);
            lineEvents.push(given);
          } else {
            refusal = 'this key writes several WABAs: give "waba" on status lines';
            break;
          }
        } else if (scope !== undefined && !scope.includes(event.waba)) {
          refusal = `this API key may not write WABA ${JSON.stringify(event.waba)}`;
          break;
        } else {
          lineEvents.push(event);
        }
      }
      if (refusal !== undefined) {
        const why = refusal;
        rejections.add(line, () => ({ code: 'FORBIDDEN_WABA', error: prefix + why }));
        // Every message id of the refused line, not only the first forbidden one: a Meta webhook line carries
        // several statuses, and the key's own events are dropped with the line too.
        for (const event of parsed.value.events) {
          if (!('id' in event)) continue;
          const isOthers = event.waba !== undefined && scope !== undefined && !scope.includes(event.waba);
          const known = refusedIds.get(event.id);
          if (known === undefined || (known.waba === undefined && isOthers))
            refusedIds.set(event.id, isOthers ? { line, waba: event.waba! } : { line });
        }
        continue;
      }
      for (const lineEvent of lineEvents) {
        // A limited key's line pairs no business-scoped user id with a number (withoutScopedPairing).
        const event = scope === undefined ? lineEvent : withoutScopedPairing(lineEvent);
        if (event !== lineEvent && givenKeyWaba.has(lineEvent)) givenKeyWaba.add(event);
        if (unknown !== undefined) unknownFieldsOf.set(event, unknown);
        // A key limited to some WABAs may name any business number on its own WABA's lines: its events never
        // tie a number to a WABA (store.ts EventInput.isBusinessTied), or they could take another client's
        // statuses naming no WABA into its own bill.
        inputs.push({
          key: eventKey(event),
          event,
          receivedAtMs,
          source: `api:${apiKey.name}`,
          ...(scope === undefined ? {} : { isBusinessTied: false }),
        });
        lineOf.set(event, line);
      }
    }
    if (itemCount === 0) {
      return errorResponse(c, 'BAD_QUERY', 'The body has no event lines (NDJSON: one JSON object per line).');
    }
    // A status naming no WABA takes the key's; but one whose message this very body gave to another WABA (a
    // line refused above) is that WABA's, not the key's: stored as the key's, it would stand in its bill as a
    // delivered message nobody sent (STATUS_WITHOUT_USER) for good. Likewise for a message of the key's own
    // WABA that was dropped with a refused line: its status alone would be such a message.
    if (refusedIds.size > 0) {
      for (let i = inputs.length - 1; i >= 0; i--) {
        const { event } = inputs[i]!;
        const refused = givenKeyWaba.has(event) && 'id' in event ? refusedIds.get(event.id) : undefined;
        if (refused === undefined) continue;
        inputs.splice(i, 1);
        const id = JSON.stringify((event as { id: string }).id);
        rejections.add(lineOf.get(event)!, () => ({
          code: 'FORBIDDEN_WABA',
          error:
            refused.waba === undefined
              ? `its message ${id} came on line ${refused.line}, which was refused (it holds events of a WABA this API key may not write): post that line's events of this key's WABA without the others, then this line`
              : `its message ${id} is of WABA ${JSON.stringify(refused.waba)} (line ${refused.line}), which this API key may not write`,
        }));
      }
    }
    // A volume-tier statement prices the whole portfolio (tiers count per portfolio): a key limited to some
    // WABAs may post one only when it may write every WABA of that portfolio, or it could change a portfolio
    // mate's prices. Meta's own (signed webhooks) always count.
    if (scope !== undefined) {
      const matesOf = portfolioMatesReader();
      for (let i = inputs.length - 1; i >= 0; i--) {
        const { event } = inputs[i]!;
        if (event.kind !== 'account_update' || event.volumeTier === undefined) continue;
        const mates = await matesOf(event.waba);
        if (mates.every((waba) => scope.includes(waba))) continue;
        inputs.splice(i, 1);
        rejections.add(lineOf.get(event)!, () => ({
          code: 'FORBIDDEN_WABA',
          error:
            "a volume-tier statement prices the WABA's whole portfolio, which holds WABAs this key may not write: post it with a key for all of them, or let Meta's signed webhook bring it",
        }));
      }
    }
    const unreadFields = new Map<
      string,
      { kind: string; field: string; lines: number; did_you_mean?: string }
    >();
    for (const { event } of inputs) {
      for (const { kind, field, didYouMean } of unknownFieldsOf.get(event) ?? []) {
        const key = `${kind}\u0000${field}`;
        const seen = unreadFields.get(key);
        if (seen) seen.lines += 1;
        else
          unreadFields.set(key, {
            kind,
            field,
            lines: 1,
            ...(didYouMean ? { did_you_mean: didYouMean } : {}),
          });
      }
    }
    const outcome: IngestOutcome =
      inputs.length === 0 && businessNumbers.size === 0
        ? { inserted: [], duplicates: 0, merged: [], relistedWabas: [] }
        : await fromStore(
            writeToStore('api', () =>
              store.ingestEvents(
                inputs,
                businessNumbers.size > 0 ? { businessNumbers: [...businessNumbers.values()] } : {},
              ),
            ),
          ).catch((error: unknown) => {
            if (!(error instanceof StoreUnavailable)) throw error;
            return wabasNamed(inputs, listStoredWabasIfUp).then((wabas) => {
              rating.markDirty(wabas);
              throw error;
            });
          });
    metrics.inc('events_ingested_total', { source: 'api' }, outcome.inserted.length);
    rating.markDirty(
      outcome.duplicates > 0
        ? new Set([...wabasToRate(outcome), ...(await wabasNamed(inputs, listStoredWabasIfUp))])
        : wabasToRate(outcome),
    );
    return c.json({
      accepted: outcome.inserted.length,
      duplicates: outcome.duplicates,
      merged: outcome.merged.length,
      ignored,
      ...(unreadFields.size > 0 ? { unread_fields: [...unreadFields.values()] } : {}),
      rejected: rejections.listed,
      // Only when some were left out of `rejected`: how many.
      ...(rejections.unlisted > 0 ? { rejected_unlisted: rejections.unlisted } : {}),
    });
  });

  app.get('/v1/units', async (c) => {
    const filter = await monthlyUnitFilterOf(c);
    const order = unitOrderOf(c);
    const limit = limitOf(c, DEFAULT_PAGE);
    const cursor = c.req.query('cursor');
    await rating.current(readScope(c, filter));
    await checkUserNamed(c, filter);
    const page = await fromStore(store.queryUnits(filter, { limit, order, ...(cursor ? { cursor } : {}) }));
    const units = await unitsForReader(page.units.map(unitJsonOf), tierCountsOf(c));
    return c.json({ units, next_cursor: page.nextCursor });
  });

  app.get('/v1/units.csv', async (c) => {
    const filter = await monthlyUnitFilterOf(c);
    const order = unitOrderOf(c);
    await rating.current(readScope(c, filter));
    await checkUserNamed(c, filter);
    // Streamed page by page as the client reads (each page waits for the one before to be taken): the
    // export of a large store is never held whole — a million units made a string past V8's limit (500) and
    // joining them stalled the event loop for a second. One snapshot of the bill: a live rating stored
    // meanwhile neither repeats nor drops a unit whose opening time it moved (pages of /v1/units, read one
    // request at a time, cannot promise that).
    const headers = {
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': 'attachment; filename="wameter-units.csv"',
    };
    // HEAD (Hono answers it with GET's handler, dropping the body): no export is started for nothing.
    if (c.req.method === 'HEAD') return c.body(null, 200, headers);
    // An export holds a snapshot (a PostgreSQL connection of the pool, a SQLite reader) until its client has
    // read it all: one per key and a few in all at a time, and a client that stops reading is cut.
    const keyName = c.get('apiKey').name;
    if (exportingKeys.has(keyName)) {
      throw new ClientBusyError(
        1,
        'this API key is already downloading a CSV export: retry when it has ended',
      );
    }
    if (exportingKeys.size >= MAX_CONCURRENT_EXPORTS) {
      throw new ClientBusyError(
        MAX_CONCURRENT_EXPORTS,
        `${MAX_CONCURRENT_EXPORTS} CSV exports are being downloaded: retry when one has ended`,
      );
    }
    exportingKeys.add(keyName);
    const ended = () => exportingKeys.delete(keyName);
    const encoder = new TextEncoder();
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    let isClientGone = false;
    const deadlineAt = performance.now() + exportDeadlineMs;
    const send = async (text: string) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const leftMs = deadlineAt - performance.now();
      const stalled = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                leftMs < exportStallMs
                  ? `the download was not over after ${exportDeadlineMs / 1000} s`
                  : `the client read nothing for ${exportStallMs / 1000} s`,
              ),
            ),
          Math.max(0, Math.min(exportStallMs, leftMs)),
        );
      });
      try {
        await Promise.race([writer.write(encoder.encode(text)), stalled]);
      } catch (error) {
        isClientGone = true; // the client closed the connection, or stopped reading: the answer is cut
        throw error;
      } finally {
        clearTimeout(timer);
      }
    };
    let pageCame!: () => void;
    const firstPage = new Promise<void>((resolve) => (pageCame = resolve));
    void send(`${CSV_COLUMNS.join(',')}\r\n`).catch(() => undefined);
    const mayReadCount = tierCountsOf(c);
    const exported = store.exportUnits(
      filter,
      async (units) => {
        pageCame();
        let text = '';
        for (const unit of await unitsForReader(units.map(unitJsonOf), mayReadCount))
          text += `${unitJsonCsvRow(unit)}\r\n`;
        await send(text);
      },
      undefined,
      order,
    );
    try {
      // A store that fails before the first page is answered 503, as any read; after it, the answer is cut.
      await Promise.race([firstPage, exported]);
    } catch (error) {
      ended();
      void writer.abort(error).catch(() => undefined);
      return fromStore(Promise.reject(error as Error));
    }
    void exported.then(
      () => {
        ended();
        return writer.close().catch(() => undefined);
      },
      (error: unknown) => {
        ended();
        if (isClientGone) {
          logger.info('CSV export stopped: the client closed the connection or stopped reading', {
            path: c.req.path,
            reason: error instanceof Error ? error.message : String(error),
          });
        } else {
          // The 200 and the first rows are sent: the connection is cut, so the client sees an incomplete
          // answer (no final chunk) rather than a CSV that looks whole.
          metrics.inc('store_errors_total');
          logger.error('CSV export failed after its first rows; the answer was cut', errorFields(error));
        }
        void writer.abort(error).catch(() => undefined);
      },
    );
    return c.body(readable, 200, headers);
  });

  app.get('/v1/totals', async (c) => {
    const filter = await monthlyUnitFilterOf(c);
    await rating.current(readScope(c, filter));
    await checkUserNamed(c, filter);
    const totals = await fromStore(store.totals(filter));
    return c.json({ totals: totalsToJson(totals) });
  });

  app.get('/v1/explain', async (c) => {
    const given = c.req.query('user');
    if (!given?.trim())
      throw new QueryError('BAD_QUERY', '"user" (the WhatsApp id of the user) is required.');
    const user = userQuery(given);
    const business = c.req.query('business') || undefined;
    const waba = c.req.query('waba');
    if (waba && !mayAccess(c, waba)) {
      throw new QueryError('FORBIDDEN_WABA', `WABA ${JSON.stringify(waba)} is not one of this key's.`);
    }
    const scope = scopeOf(c);
    const visibleWabas = waba ? [waba] : scope;
    const report = await fromStore(
      rating.explain({
        user,
        ...(business ? { business } : {}),
        ...(visibleWabas ? { visibleWabas } : {}),
        client: c.get('apiKey').name,
      }),
    );
    // A value that is no phone number nor business-scoped id, and names no one in the key's events (`abc`,
    // `0981…`), is a mistake: 400 naming `user`, not an empty story that reads as "nothing sent".
    const formProblem = userFormProblem(given);
    const isEmpty =
      report.timeline.length === 0 &&
      report.decisions.length === 0 &&
      report.units.length === 0 &&
      report.pending.length === 0 &&
      report.failed.length === 0 &&
      report.findings.length === 0;
    if (formProblem !== undefined && isEmpty) {
      throw new QueryError(
        'BAD_QUERY',
        `${formProblem}, and no event of this key's WABAs names such a user.`,
      );
    }
    const mayReadCount = tierCountsOf(c);
    return c.json({
      ...report,
      units: await unitsForReader(report.units, mayReadCount),
      findings: await findingsForReader(report.findings, mayReadCount),
    });
  });

  /**
   * The data points of /v1/analytics for a request whose parameters `query` gives (the query string, or a
   * Graph request's modifiers) over the units `filter` lets the key read; for conversation_analytics, when
   * `isLeftOutCounted`, also how many of those units it did not count (`notCountedUnits`: not billed as
   * conversations; 0 otherwise).
   */
  async function analyticsDataPoints(
    c: Context<Env>,
    query: (name: string) => string | undefined,
    filter: UnitFilter,
    isLeftOutCounted: boolean,
  ): Promise<{ dataPoints: Record<string, unknown>[]; notCountedUnits: number }> {
    // Read as `from` and `to` are (Unix seconds or ISO-8601 with an offset), so a value beyond the instants
    // wameter reads is 400 — never a bigint overflow in the store, nor two values rounded to one float.
    const start = instantQuery(query, 'start');
    if (!start.ok) throw new QueryError(start.error.code, start.error.message);
    const end = instantQuery(query, 'end');
    if (!end.ok) throw new QueryError(end.error.code, end.error.message);
    if (start.value === undefined || end.value === undefined || end.value <= start.value) {
      throw new QueryError(
        'BAD_QUERY',
        '"start" and "end" are required (Unix seconds, or ISO-8601 with an offset), with end after start.',
      );
    }
    const granularityText = (query('granularity') ?? 'DAILY').toUpperCase();
    if (!(ANALYTICS_GRANULARITIES as readonly string[]).includes(granularityText)) {
      throw new QueryError(
        'BAD_QUERY',
        `"granularity" must be one of ${ANALYTICS_GRANULARITIES.join(', ')}.`,
      );
    }
    const granularity = granularityText as Granularity;
    filter.fromMs = Math.max(filter.fromMs ?? 0, start.value);
    filter.toMs = Math.min(filter.toMs ?? Infinity, end.value);
    const refusal = analyticsRangeRefusal(filter.toMs - filter.fromMs, granularity);
    if (refusal !== undefined) throw new QueryError('BAD_QUERY', refusal);
    // Meta's parameters, read as Meta reads them (lists as A,B or ["A","B"]).
    const meta: MetaAnalyticsParameters = {};
    for (const name of META_ANALYTICS_PARAMETERS) {
      const value = query(name);
      if (value !== undefined) meta[name] = value;
    }
    const metaRead = <T>(read: () => T): T => {
      try {
        return read();
      } catch (error) {
        if (error instanceof AnalyticsQueryError) throw new QueryError('BAD_QUERY', error.message);
        throw error;
      }
    };
    const dimensionNames = metaRead(() =>
      meta.dimensions === undefined ? [] : metaList('dimensions', meta.dimensions),
    );
    // Each dimension once: two names of one dimension (`CONVERSATION_CATEGORY,PRICING_CATEGORY`: one answer
    // field) are refused, never merged.
    const asked: AnalyticsDimension[] = [];
    const namedAs = new Map<AnalyticsDimension, string>();
    for (const given of dimensionNames) {
      const name = given.toUpperCase();
      const dimension = Object.hasOwn(ANALYTICS_DIMENSIONS, name) ? ANALYTICS_DIMENSIONS[name] : undefined;
      if (!dimension) {
        throw new QueryError(
          'BAD_QUERY',
          `"dimensions": unknown dimension ${JSON.stringify(name.length > 64 ? `${name.slice(0, 61)}...` : name)}; known: ${Object.keys(ANALYTICS_DIMENSIONS).join(', ')}.`,
        );
      }
      const earlier = namedAs.get(dimension);
      if (earlier !== undefined) {
        throw new QueryError(
          'BAD_QUERY',
          `"dimensions" names one dimension twice (${earlier} and ${name} are the same): give it once.`,
        );
      }
      namedAs.set(dimension, name);
      asked.push(dimension);
    }
    const kind: AnalyticsKind = metaRead(() => analyticsKind(meta));
    const metrics: AnalyticsMetrics = metaRead(() => analyticsMetrics(kind, meta.metric_types));
    const lists: AnalyticsListFilters = metaRead(() => analyticsListFilters(meta));
    // Amounts of different currencies never add up: always split by currency.
    const dimensions: AnalyticsDimension[] = asked.includes('currency') ? asked : [...asked, 'currency'];
    // As Meta's exports and the dashboard: one WABA's days and months in its time zone unless told otherwise.
    const askedZone = timeZoneQuery(query);
    if (!askedZone.ok) throw new QueryError(askedZone.error.code, askedZone.error.message);
    const timeZone =
      askedZone.value ?? (filter.waba !== undefined ? deps.timeZoneOf?.(filter.waba) : undefined);
    await rating.current(readScope(c, filter));
    await checkUserNamed(c, filter);
    // Meta's PHONE is a number's display number, which only the webhooks carry: those of the key's WABAs.
    const isPhoneUsed = asked.includes('business') || lists.phoneNumbers !== undefined;
    const numbers = isPhoneUsed ? await fromStore(store.businessNumbers({ wabas: filter.wabas })) : [];
    // pricing_analytics' TIER as Meta answers it: left out on free points, 0:MAX on marketing (never tiered).
    // Telling them needs each unit's type and category, asked of the store when not asked for, then summed away.
    const isMetaTier = kind === 'pricing' && asked.includes('tier');
    const hidden = isMetaTier
      ? (['type', 'category'] as const).filter((dimension) => !dimensions.includes(dimension))
      : [];
    const question = {
      ...filter,
      ...(timeZone ? { timeZone } : {}),
      ...(lists.phoneNumbers ? { businesses: businessesNamed(lists.phoneNumbers, numbers) } : {}),
      ...(lists.countries ? { countries: lists.countries } : {}),
      ...(lists.categories ? { categories: lists.categories } : {}),
      ...(lists.types ? { types: lists.types } : {}),
      ...(lists.directions ? { directions: lists.directions } : {}),
    };
    // Meta's conversation_analytics counts conversations: the units of the conversation-based eras only. A
    // message billed per message (from 2025-07-01) is pricing_analytics' alone, never one "conversation".
    const points = await fromStore(
      store.analytics({
        ...question,
        granularity,
        dimensions: [...dimensions, ...hidden],
        ...(kind === 'conversation' ? { eras: CONVERSATION_ERAS } : {}),
      }),
    );
    // What that leaves out, counted under the same filters, so that a client who read them here before is told.
    const notCountedUnits =
      kind === 'conversation' && isLeftOutCounted
        ? (
            await fromStore(
              store.analytics({
                ...question,
                granularity: 'MONTHLY',
                dimensions: [],
                eras: NON_CONVERSATION_ERAS,
              }),
            )
          ).reduce((sum, point) => sum + point.units, 0)
        : 0;
    const displayOf = displayNumbers(numbers);
    const countField = kind === 'conversation' ? 'conversation' : 'volume';
    // The answer's fields of each point; points alike once the hidden dimensions are gone are one.
    const merged = new Map<string, { fields: Record<string, unknown>; point: AnalyticsPoint }>();
    for (const point of points) {
      const fields: Record<string, unknown> = {};
      for (const dimension of dimensions) {
        const value = point.dimensions[dimension] ?? null;
        if (dimension === 'business') {
          // Meta's field: the display number (null when no stored webhook gave it); beside it, the id.
          fields.phone_number = value === null ? null : (displayOf(point.dimensions.waba, value) ?? null);
          fields.phone_number_id = value;
          // wameter's name of it for metric=pricing before it answered Meta's (deprecated).
          if (kind === 'pricing') fields.phone = value;
          continue;
        }
        if (dimension === 'tier' && isMetaTier) {
          if (point.dimensions.type !== 'regular') continue;
          if (value === null && point.dimensions.category === 'marketing') {
            fields.tier = '0:MAX';
            continue;
          }
        }
        fields[analyticsFieldName(kind, dimension)] = analyticsValue(dimension, value);
      }
      const key = JSON.stringify([point.startMs, point.endMs, fields]);
      const earlier = merged.get(key);
      merged.set(key, {
        fields,
        point:
          earlier === undefined
            ? point
            : {
                ...earlier.point,
                units: earlier.point.units + point.units,
                unpriced: earlier.point.unpriced + point.unpriced,
                amountMicros: sumMicros(earlier.point.amountMicros, point.amountMicros),
              },
      });
    }
    const dataPoints = [...merged.values()].map(({ fields, point }) => {
      const json: Record<string, unknown> = {
        start: Math.floor(point.startMs / 1000),
        end: Math.floor(point.endMs / 1000),
      };
      if (metrics.count) json[countField] = point.units;
      Object.assign(json, fields);
      if (metrics.cost) {
        json.cost = Number(formatMicros(point.amountMicros));
        // As /v1/totals: units that could not be priced are counted but add nothing to `cost` (a lower bound).
        if (point.unpriced > 0) json.unpriced = point.unpriced;
      }
      return json;
    });
    return { dataPoints, notCountedUnits };
  }

  app.get('/v1/analytics', async (c) => {
    const { dataPoints, notCountedUnits } = await analyticsDataPoints(
      c,
      (name) => c.req.query(name),
      unitFilterOf(c),
      true,
    );
    return c.json({
      data: [{ data_points: dataPoints }],
      // wameter's own (a tool written for Meta reads `data`): what metric=conversation left out, and where to
      // read it, rather than a month of messages gone from the answer without a word.
      ...(notCountedUnits > 0 ? { not_counted: { units: notCountedUnits, reason: NOT_COUNTED_REASON } } : {}),
    });
  });

  // Meta's own request for a WABA's analytics, `GET /{version}/{WABA_ID}?fields=pricing_analytics.start(…)…`,
  // answered as Graph answers it (docs/service.md "Analytics as Meta's"): a tool written for Meta's API reads
  // ours with its base URL pointed at /v1/graph and a wameter API key as its token.
  const graphAnalytics = async (c: Context<Env>) => {
    const waba = c.req.param('waba') ?? '';
    const version = c.req.param('version');
    if (version !== undefined && !/^v\d+\.\d+$/.test(version)) {
      throw new QueryError(
        'BAD_QUERY',
        `${JSON.stringify(version.length > 64 ? `${version.slice(0, 61)}...` : version)} is no Graph API version: write /v1/graph/v21.0/{WABA_ID}, or /v1/graph/{WABA_ID}.`,
      );
    }
    const fieldsText = c.req.query('fields');
    if (fieldsText === undefined) {
      throw new QueryError(
        'BAD_QUERY',
        '"fields" is required: give conversation_analytics.start(…).end(…)… or pricing_analytics.start(…).end(…)….',
      );
    }
    let fields: GraphField[];
    try {
      fields = graphFields(fieldsText);
    } catch (error) {
      if (error instanceof AnalyticsQueryError) throw new QueryError('BAD_QUERY', error.message);
      throw error;
    }
    // The WABA of the path, as `waba=` is read: a key limited to other WABAs is refused (403), whatever
    // the fields, even `id` alone — it learns nothing of another client's WABA.
    const filter = parseUnitFilter(
      (name) => (name === 'waba' ? waba : undefined),
      c.get('apiKey'),
      deps.marketNames,
    );
    if (!filter.ok) throw new QueryError(filter.error.code, filter.error.message);
    const answer: Record<string, unknown> = {};
    for (const field of fields) {
      if (field.name === 'id') continue;
      const metric = field.name === 'pricing_analytics' ? 'pricing' : 'conversation';
      const modifiers: Record<string, string> = { ...field.modifiers, metric };
      // As /v1/analytics answers it (conversation_analytics: the conversation-based eras' units only), in
      // Meta's shape alone: what it left out is said on /v1/analytics only.
      const { dataPoints } = await analyticsDataPoints(
        c,
        (name) => (Object.hasOwn(modifiers, name) ? modifiers[name] : undefined),
        { ...filter.value },
        false,
      );
      answer[field.name] = { data: [{ data_points: dataPoints }] };
    }
    answer.id = waba;
    return c.json(answer);
  };
  app.get('/v1/graph/:version/:waba', graphAnalytics);
  app.get('/v1/graph/:waba', graphAnalytics);

  app.post('/v1/rerate', async (c) => {
    const encoding = bodyEncoding(c);
    if (encoding) return errorResponse(c, 'UNSUPPORTED_ENCODING', `(Content-Encoding: ${encoding})`);
    const body = await readRawBody(c, RERATE_BODY_LIMIT_BYTES);
    if (!body.ok && body.reason === 'busy') return bodyBudgetResponse(c);
    if (!body.ok) return errorResponse(c, 'BODY_TOO_LARGE', `The limit is ${RERATE_BODY_LIMIT_BYTES} bytes.`);
    // A re-rate rewrites the bill and the history: it is asked for in words, never by a bare POST (an empty
    // body is no JSON object; `{}` re-rates every portfolio of the key).
    if (body.bytes.byteLength === 0) {
      return errorResponse(
        c,
        'MALFORMED_JSON',
        'The body is empty: send a JSON object — {"dry_run": true} to see what would change, {} to re-rate every portfolio of this key.',
      );
    }
    // One JSON object, each key once: `"dry_run": true, "dry_run": false` would re-rate for real.
    const parsed = parseJsonObjectBody(
      body.bytes,
      '{"from", "to", "wabas", "as_of_rules", "rate_cards", "dry_run", "allow_unpriced"}',
    );
    if (!parsed.ok) return errorResponse(c, parsed.error.code, parsed.error.detail);
    const request: Record<string, unknown> = parsed.value;
    // The fields the OpenAPI document lists, as for query parameters: a misspelt one is refused.
    const unknown = unknownBodyField('POST', '/v1/rerate', request);
    if (unknown !== undefined) throw new QueryError('BAD_QUERY', unknown);
    const rateCardTexts = rateCardsOfBody(request.rate_cards);
    if (request.dry_run !== undefined && typeof request.dry_run !== 'boolean') {
      throw new QueryError('BAD_QUERY', '"dry_run" must be true or false (a JSON boolean).');
    }
    if (request.allow_unpriced !== undefined && typeof request.allow_unpriced !== 'boolean') {
      throw new QueryError('BAD_QUERY', '"allow_unpriced" must be true or false (a JSON boolean).');
    }
    // A client's key (limited to its WABAs) may look, not rewrite: a stored re-rate under another era (CBP-2022's
    // free conversations, say) would stand as the bill the operator exports until the next arrival.
    if (request.dry_run !== true && scopeOf(c) !== undefined) {
      throw new QueryError(
        'FORBIDDEN_RERATE',
        'This key is limited to some WABAs; nothing was rated or stored.',
      );
    }
    // A day ("2025-07-01", as `wameter reconcile` takes them) is refused once the WABAs are known, saying the
    // instant it begins on their clock (its UTC midnight is not their billing day's edge), as `wameter rerate`.
    const days: { role: 'from' | 'to'; day: string }[] = [];
    const instant = (name: 'from' | 'to'): number | undefined => {
      if (request[name] === undefined || request[name] === null) return undefined;
      if (isCalendarDay(request[name])) {
        days.push({ role: name, day: request[name] });
        return undefined;
      }
      const parsed = parseInstant(request[name]);
      if (!parsed.ok) throw new QueryError('BAD_QUERY', `"${name}": ${parsed.error.message}.`);
      return parsed.value;
    };
    const fromMs = instant('from');
    const toMs = instant('to');
    // An inverted or empty period would re-rate and store everything and report nothing changed in it (as
    // `wameter rerate` refuses --from not before --to).
    if (fromMs !== undefined && toMs !== undefined && toMs <= fromMs) {
      throw new QueryError(
        'BAD_QUERY',
        toMs < fromMs
          ? '"to" is before "from".'
          : '"to" equals "from": the period [from, to) holds no instant; give a "to" after "from".',
      );
    }
    let wabas: string[] | undefined;
    if (request.wabas !== undefined) {
      if (!Array.isArray(request.wabas) || !request.wabas.every((w) => typeof w === 'string' && w !== '')) {
        throw new QueryError('BAD_QUERY', '"wabas" must be a list of WABA ids.');
      }
      wabas = request.wabas as string[];
      if (wabas.length === 0) {
        throw new QueryError(
          'BAD_QUERY',
          '"wabas" is empty: name the WABAs to re-rate, or leave it out for all.',
        );
      }
      const refused = wabas.find((waba) => !mayAccess(c, waba));
      if (refused !== undefined) {
        throw new QueryError('FORBIDDEN_WABA', `WABA ${JSON.stringify(refused)} is not one of this key's.`);
      }
      // As `wameter rerate --waba`: a WABA with nothing stored is a typo more often than a wish.
      const stored = new Set(await fromStore(store.listWabas()));
      const unknownWaba = wabas.find((waba) => !stored.has(waba));
      if (unknownWaba !== undefined) {
        throw new QueryError(
          'BAD_QUERY',
          `WABA ${JSON.stringify(unknownWaba)} has no stored events: nothing to re-rate (check the id).`,
        );
      }
    }
    if (days.length > 0) {
      const named = wabas ?? scopeOf(c) ?? (await fromStore(store.listWabas()));
      throw new QueryError(
        'BAD_QUERY',
        days
          .map(({ role, day }) =>
            dayForInstantHint({
              field: `"${role}"`,
              role,
              day,
              wabas: named,
              timeZoneOf: (waba) => deps.timeZoneOf?.(waba) ?? 'UTC',
              write: (value) => `"${role}": "${value}"`,
              narrow: '"wabas"',
            }),
          )
          .join('; '),
      );
    }
    // An era's name in any letter case, as `wameter rerate --as-of-rules` takes it (cbp-2023).
    const era =
      typeof request.as_of_rules === 'string'
        ? ERAS.find((name) => name.toUpperCase() === (request.as_of_rules as string).toUpperCase())
        : request.as_of_rules;
    if (era === undefined ? request.as_of_rules !== undefined : era !== null && typeof era !== 'string') {
      throw new QueryError(
        'BAD_QUERY',
        `"as_of_rules" must be one of ${ERAS.join(', ')} (in any letter case), or null.`,
      );
    }
    const scope = scopeOf(c);
    const result = await fromStore(
      rating.rerate({
        ...(wabas ? { wabas } : {}),
        ...(scope ? { visibleWabas: scope } : {}),
        ...(fromMs === undefined ? {} : { fromMs }),
        ...(toMs === undefined ? {} : { toMs }),
        ...(typeof era === 'string' ? { asOfRules: era as Era } : {}),
        ...(rateCardTexts ? { rateCardTexts } : {}),
        isDryRun: request.dry_run === true,
        ...(request.allow_unpriced === true ? { allowUnpriced: true } : {}),
        client: c.get('apiKey').name,
      }),
    );
    if (!result.ok && result.error.code === 'MORE_UNPRICED') {
      throw new QueryError('UNPRICED_RERATE', `${result.error.message}.`);
    }
    if (!result.ok) {
      throw new QueryError(
        result.error.code === 'FORBIDDEN_WABA' ? 'FORBIDDEN_WABA' : 'BAD_QUERY',
        result.error.message,
      );
    }
    const report = result.value;
    // The whole portfolios were rated: a key for some of a portfolio's WABAs is told only the findings that
    // name its own WABAs (and, naming a second one, that one too), as GET /v1/findings does.
    const isVisible = (waba: unknown) =>
      scope === undefined || (typeof waba === 'string' && scope.includes(waba));
    const findings = await findingsForReader(
      report.findings
        .filter(
          (finding) =>
            isVisible(finding.waba) && (finding.other_waba === undefined || isVisible(finding.other_waba)),
        )
        .map((finding) => (rateCardTexts ? withCardsOfBody(finding) : finding)),
      tierCountsOf(c),
    );
    // The document `wameter rerate --format json` prints, built by the same function.
    return c.json(rerateDocument(report, findings));
  });

  app.get('/v1/ratings', async (c) => {
    const limit = limitOf(c, 50);
    const reasons = ratingReasonsOf(c);
    const cursor = c.req.query('cursor');
    const scope = scopeOf(c);
    await rating.current(scope);
    if (scope === undefined) {
      // One more than the page: whether another follows (an exact last page says so, as /v1/units does).
      const records = await fromStore(
        store.listRatings(limit + 1, undefined, { reasons, ...(cursor ? { cursor } : {}) }),
      );
      const ratings = records.slice(0, limit);
      return c.json({
        ratings: ratings.map((r) => ratingToJson(r)),
        next_cursor: records.length > limit ? ratingsCursor(ratings.at(-1)!.id) : null,
      });
    }
    // A limited key sees the ratings that touched its WABAs, narrowed to them: their WABAs and their share
    // of the totals (a portfolio mate's money is not its business), without the live ratings that left its
    // share as it was — scoped-ratings.ts says which, page by page.
    const page = await fromStore(
      scopedRatingsPage(store, scope, { limit, reasons, cursor }, (waba) => rating.portfolioOf(waba)),
    );
    return c.json({
      ratings: page.ratings.map(({ record, own, isWhole }) =>
        isWhole
          ? ratingToJson(record)
          : ratingToJson(
              { ...record, wabas: own, totals: sumTotals(own.map((w) => record.totalsByWaba?.[w])) },
              true,
            ),
      ),
      next_cursor: page.nextCursor,
    });
  });

  // A re-rate's changed units, a page at a time: a large store's re-rate changes hundreds of thousands (tens of
  // MB), which the history's listing leaves out. A key sees them when every WABA of the re-rate is its own (as
  // the listing shows `changes`); any other id — unknown, a live rating's, another client's — is one 404, so
  // that a key learns nothing of ratings it cannot read.
  app.get('/v1/ratings/:id/changes', async (c) => {
    const id = c.req.param('id');
    const limit = limitOf(c, DEFAULT_PAGE);
    const cursor = c.req.query('cursor');
    const scope = scopeOf(c);
    const record = await fromStore(store.getRating(id));
    // Every WABA of the re-rate, and of its portfolios (the accounts file's mates too: GET /v1/ratings shows
    // its changes so), the key's.
    const isOwn = async (wabas: readonly string[]) => {
      for (const waba of wabas) {
        const mates = await fromStore(rating.portfolioOf(waba));
        if (!mates.every((mate) => scope!.includes(mate))) return false;
      }
      return true;
    };
    if (
      record === undefined ||
      record.changes === undefined ||
      (scope !== undefined && !(record.wabas.every((w) => scope.includes(w)) && (await isOwn(record.wabas))))
    ) {
      return errorResponse(c, 'NO_SUCH_RATING', `(${JSON.stringify(id)})`);
    }
    const page = await fromStore(store.listRatingChanges(id, { limit, ...(cursor ? { cursor } : {}) }));
    return c.json({ rating_id: id, units: page.units, next_cursor: page.nextCursor });
  });

  // --- operations ------------------------------------------------------------------------------------

  // Liveness (like a Kubernetes liveness probe): the process answers; touches nothing, not even the store.
  // Readiness — the store is reachable — is GET /healthz.
  app.get('/healthz/live', (c) => c.body(null, 204));

  app.get('/healthz', async (c) => {
    try {
      const verdict = await storeHealth.check(() => store.ping());
      if (verdict.isReady) return c.json({ status: 'ok', rating_lag_seconds: rating.lagSeconds() });
      logger.warn('not ready', { reason: verdict.reason });
      return c.json(errorBody('STORE_UNAVAILABLE', `(${verdict.reason}.)`), ERRORS.STORE_UNAVAILABLE.status);
    } catch (error) {
      metrics.inc('store_errors_total');
      logger.error('health check failed', errorFields(error));
      return c.json(
        errorBody('STORE_UNAVAILABLE', `The ping failed: ${errorFields(error).error as string}`),
        ERRORS.STORE_UNAVAILABLE.status,
      );
    }
  });

  app.get('/metrics', (c) =>
    c.body(metrics.render(), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }),
  );

  app.get('/openapi.json', (c) => c.json(openApiDocument));

  return app;
}

/**
 * One item of a `POST /v1/events` body: a JSON value and the line it starts on, why its line does not parse,
 * or (`unread`) a line that cannot be an event, not parsed because its rejection would not be listed.
 */
type BodyItem = { line: number; prefix: string } & (
  { value: unknown } | { error: string; code?: string } | { unread: true }
);

/**
 * A line (or an element on its own line) that is one object holding more values than any webhook body Meta
 * sends, refused before JSON.parse (parse-event.ts MAX_WEBHOOK_VALUES): no event line holds as many either.
 */
function tooManyValuesItem(text: string, line: number, prefix: string): BodyItem | undefined {
  if (!text.trimStart().startsWith('{') || !isTextHoldingMoreValuesThan(text, MAX_WEBHOOK_VALUES))
    return undefined;
  return { line, prefix, code: 'BAD_EVENT', error: prefix + TOO_MANY_VALUES_MESSAGE };
}

/** A rejection of a `POST /v1/events` body line, as answered in `rejected`. */
interface Rejection {
  line: number;
  code: string;
  error: string;
}

/**
 * The rejections of one body: the first `cap` by line (those of one line in the order added) and a count of
 * the others, whose words are never even made. Lines are read in order, so a rejection found while reading
 * is listed or counted at once; one found after reading (a refusal) can still take the place of a later line's.
 */
class RejectionList {
  readonly listed: Rejection[] = [];
  unlisted = 0;

  constructor(private readonly cap: number) {}

  /** Would a rejection of `line` be listed now? */
  wouldList(line: number): boolean {
    return this.listed.length < this.cap || line < this.listed[this.listed.length - 1]!.line;
  }

  add(line: number, make: () => { code: string; error: string }): void {
    if (!this.wouldList(line)) {
      this.unlisted += 1;
      return;
    }
    // After every listed rejection of the same line or an earlier one: in line order, ties as added.
    let low = 0;
    let high = this.listed.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.listed[middle]!.line <= line) low = middle + 1;
      else high = middle;
    }
    this.listed.splice(low, 0, { line, ...make() });
    if (this.listed.length > this.cap) {
      this.listed.pop();
      this.unlisted += 1;
    }
  }
}

const NOT_UTF8 = 'holds bytes that are not valid UTF-8 (send UTF-8 text: a decoder would have changed them)';

/** Does a parsed JSON value hold INVALID_UTF8_MARK in a string or a key (iteratively: any depth)? */
function holdsInvalidUtf8Mark(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === 'string') {
      if (item.includes(INVALID_UTF8_MARK)) return true;
    } else if (Array.isArray(item)) {
      for (const child of item) stack.push(child);
    } else if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) {
        if (key.includes(INVALID_UTF8_MARK)) return true;
        stack.push(child);
      }
    }
  }
  return false;
}

/**
 * The lines of a body (ended by LF, CRLF or a lone CR) with their numbers from 1, read one at a time, each
 * with the offset where the next starts; from offset `from` (a line's start), which is line `firstLine`.
 */
function* bodyLines(
  body: string,
  from = 0,
  firstLine = 1,
): Generator<{ text: string; line: number; next: number }> {
  const ends = /\r\n|\r|\n/g;
  ends.lastIndex = from;
  let start = from;
  let line = firstLine;
  for (let end = ends.exec(body); end !== null; end = ends.exec(body)) {
    const next = end.index + end[0].length;
    yield { text: body.slice(start, end.index), line, next };
    start = next;
    line += 1;
  }
  yield { text: body.slice(start), line, next: body.length };
}

/** The first `count` non-blank lines of `body` from offset `from` (line `firstLine`). */
function* nonBlankBodyLines(
  body: string,
  from: number,
  firstLine: number,
  count: number,
): Generator<{ text: string; line: number }> {
  if (count === 0) return;
  let seen = 0;
  for (const line of bodyLines(body, from, firstLine)) {
    if (line.text.trim() === '') continue;
    yield line;
    if (++seen === count) return;
  }
}

/**
 * An event of a client's own writing (a limited API key's line, a webhook a bound secret signed) without the
 * business-scoped user id it pairs with a number: the rater applies such a pairing across the portfolio
 * (`Rater.phoneByScopedId`), so a client sharing a portfolio with another could give that client's user, known
 * to it only by that id, the number — the market, the price — of its choice. The event keeps the number as its
 * user; Meta's own webhooks (an unbound secret) and a key for every WABA still pair.
 */
function withoutScopedPairing(event: CoreEvent): CoreEvent {
  if (event.kind !== 'inbound' && event.kind !== 'status') return event;
  if (event.scopedUserId === undefined || event.user === undefined || event.user === event.scopedUserId)
    return event;
  const { scopedUserId: _pairedId, ...unpaired } = event;
  return unpaired;
}

/** Can this line be no event (nor webhook body, nor array of them) whatever it holds? Then it need not be parsed. */
function cannotBeEvent(trimmed: string): boolean {
  const first = trimmed[0];
  const last = trimmed[trimmed.length - 1];
  return !((first === '{' && last === '}') || (first === '[' && last === ']'));
}

/**
 * Words for a line that is one element of an array written over lines with its `[` or `]` beside an element
 * (`[{…},`, `{…},`, `{…}]`): JSON.parse names only an unexpected character; say what to send instead.
 */
function arrayPieceHint(lineText: string): string {
  const trimmed = lineText.trim();
  const inner = trimmed.replace(/^\[/, '').replace(/(?:\]|,|\],)$/, '');
  if (inner === trimmed || !parses(inner)) return '';
  return '; the line is an element of an array written over several lines, its "[" or "]" beside an element: send NDJSON (one event or body a line, no commas between: jq -c \'.[]\'), or put "[" and "]" on lines of their own';
}

/**
 * The items of a `POST /v1/events` body, as the file reader takes them: NDJSON lines (ended by LF, CRLF or a
 * lone CR; a byte order mark ignored), each an event line, a webhook body or an array of those. A body whose
 * first line does not parse but which is, whole, one JSON value (a pretty-printed webhook body, an array over
 * several lines) is that one value, starting on line 1. An array's elements are items of its line, each
 * rejection naming its index (`[2]: …`). A line that cannot be an event is parsed only when `isListed(line)`
 * says its rejection would be listed (its JSON error is then the words).
 */
function* bodyItems(
  text: string,
  isListed: (line: number) => boolean,
  hasInvalidUtf8 = false,
): Generator<BodyItem> {
  const body = withoutByteOrderMark(text);
  const items: BodyItem[] = [];
  const add = (value: unknown, line: number) => {
    if (!Array.isArray(value)) items.push({ line, prefix: '', value });
    else value.forEach((element, index) => items.push({ line, prefix: `[${index}]: `, value: element }));
  };
  let first: { text: string; line: number } | undefined;
  let isOneLine = true;
  for (const line of bodyLines(body)) {
    if (line.text.trim() === '') continue;
    if (first !== undefined) {
      isOneLine = false;
      break;
    }
    first = line;
  }
  if (
    first !== undefined &&
    !isOneLine &&
    !isTextNestedDeeperThan(first.text, MAX_JSON_DEPTH + 1) &&
    !parses(first.text)
  ) {
    try {
      // An array of items may wrap them one level deeper; deeper than that is refused unparsed (below).
      if (isTextNestedDeeperThan(body, MAX_JSON_DEPTH + 1)) throw new Error('too deep');
      const tooMany = tooManyValuesItem(body, first.line, '');
      if (tooMany !== undefined) {
        yield tooMany;
        return;
      }
      const document = JSON.parse(body) as unknown;
      if (hasInvalidUtf8 && body.includes(INVALID_UTF8_MARK)) {
        // An array's elements one by one, as the file reader does: only those holding the bad bytes refused.
        if (!Array.isArray(document)) {
          yield { line: first.line, prefix: '', error: NOT_UTF8 };
          return;
        }
        document.forEach((element: unknown, index) => {
          const prefix = `[${index}]: `;
          if (holdsInvalidUtf8Mark(element))
            items.push({ line: first.line, prefix, error: prefix + NOT_UTF8 });
          else items.push({ line: first.line, prefix, value: element });
        });
        yield* items;
        return;
      }
      add(document, first.line);
      yield* items;
      return;
    } catch {
      // Not one document either: read line by line, each bad line named.
    }
  }
  const readLine = (lineText: string, line: number): void => {
    let tooMany: BodyItem | undefined;
    if (cannotBeEvent(lineText.trim()) && !isListed(line)) {
      items.push({ line, prefix: '', unread: true });
    } else if (hasInvalidUtf8 && lineText.includes(INVALID_UTF8_MARK)) {
      items.push({ line, prefix: '', error: NOT_UTF8 });
    } else if (isTextNestedDeeperThan(lineText, MAX_JSON_DEPTH + 1)) {
      // Never given to JSON.parse: millions of brackets would hold the server's thread for seconds.
      items.push({ line, prefix: '', error: `nested deeper than ${MAX_JSON_DEPTH} levels` });
    } else if ((tooMany = tooManyValuesItem(lineText, line, '')) !== undefined) {
      items.push(tooMany);
    } else {
      try {
        add(JSON.parse(lineText), line);
      } catch (error) {
        items.push({ line, prefix: '', error: (error as Error).message + arrayPieceHint(lineText) });
      }
    }
  };
  /**
   * An array written one element per line (`[` alone, then lines that each start with `{` or `[`, then `]`),
   * as the file reader takes it among NDJSON lines (read-events.ts `isNextArrayLine`): looked over from its
   * `[` line to its `]` line or the body's end, then read element by element, each at its own line, so that
   * a broken element costs only itself. A line that cannot follow ends it: as an array never closed when an
   * element ended with its comma, else (NDJSON lines after a stray `[`) the lines looked over are read as the
   * lines they are. Only where it starts and how many elements it has are held, and its lines are read again
   * from there: a body of millions of lines holds no copy of them.
   */
  let array:
    | {
        text: string;
        line: number;
        next: number;
        count: number;
        hasComma: boolean;
        previous: string;
        last: number;
      }
    | undefined;
  for (const { text: lineText, line, next } of bodyLines(body)) {
    const trimmed = lineText.trim();
    if (trimmed === '') continue;
    if (array !== undefined) {
      const held = array;
      if (isNextArrayLine(held.previous, lineText)) {
        if (trimmed !== ']') {
          held.count += 1;
          held.hasComma ||= lineText.trimEnd().endsWith(',');
          held.previous = lineText;
          held.last = line;
          continue;
        }
        if (held.count > 0) {
          array = undefined;
          const elements = nonBlankBodyLines(body, held.next, held.line + 1, held.count);
          yield* arrayOfLinesItems(elements, held, isListed, hasInvalidUtf8, false);
          continue;
        }
      }
      array = undefined;
      if (held.hasComma) {
        // Elements that end with their commas, then a line that is none: an array never closed.
        const elements = nonBlankBodyLines(body, held.next, held.line + 1, held.count);
        yield* arrayOfLinesItems(elements, held, isListed, hasInvalidUtf8, true);
      } else {
        readLine(held.text, held.line);
        yield* items;
        items.length = 0;
        for (const { text, line: heldLine } of nonBlankBodyLines(
          body,
          held.next,
          held.line + 1,
          held.count,
        )) {
          readLine(text, heldLine);
          yield* items;
          items.length = 0;
        }
      }
    }
    if (trimmed === '[') {
      array = { text: lineText, line, next, count: 0, hasComma: false, previous: lineText, last: line };
      continue;
    }
    readLine(lineText, line);
    yield* items;
    items.length = 0;
  }
  if (array === undefined) return;
  if (array.count === 0) {
    readLine(array.text, array.line);
    yield* items;
    return;
  }
  // Never closed: its elements, and its `[` named (the body may have been cut after any element).
  const elements = nonBlankBodyLines(body, array.next, array.line + 1, array.count);
  yield* arrayOfLinesItems(elements, array, isListed, hasInvalidUtf8, true);
}

/**
 * The items of an array written one element per line, its `[` on line `array.line` and its elements on
 * `lines` (each with its comma, or none), the last on line `array.last`: each element at its own line, named
 * `[k]: `; one that does not parse is an error of its line alone. `isOpenEnd`: no `]` line closes it, which is
 * an error of its `[` line. As for lines, an element that cannot be an event is parsed only when
 * `isListed(line)` (asked as it is reached).
 */
function* arrayOfLinesItems(
  lines: Iterable<{ text: string; line: number }>,
  array: { line: number; last: number },
  isListed: (line: number) => boolean,
  hasInvalidUtf8: boolean,
  isOpenEnd: boolean,
): Generator<BodyItem> {
  let index = 0;
  for (const { text, line } of lines) {
    if (index === 0 && isOpenEnd) {
      yield {
        line: array.line,
        prefix: '',
        error: `opens an array, one element a line, that no "]" line closes; its elements (lines ${line}–${array.last}) were read: add the "]"`,
      };
    }
    const prefix = `[${index++}]: `;
    // Its comma dropped, its indent kept: a JSON error's position is then its column, less one.
    const untilEnd = text.trimEnd();
    const element = untilEnd.endsWith(',') ? untilEnd.slice(0, -1) : untilEnd;
    let tooMany: BodyItem | undefined;
    if (cannotBeEvent(element.trim()) && !isListed(line)) {
      yield { line, prefix, unread: true };
    } else if (hasInvalidUtf8 && element.includes(INVALID_UTF8_MARK)) {
      yield { line, prefix, error: prefix + NOT_UTF8 };
    } else if (isTextNestedDeeperThan(element, MAX_JSON_DEPTH + 1)) {
      yield { line, prefix, error: `${prefix}nested deeper than ${MAX_JSON_DEPTH} levels` };
    } else if ((tooMany = tooManyValuesItem(element, line, prefix)) !== undefined) {
      yield tooMany;
    } else {
      let value: unknown;
      try {
        value = JSON.parse(element);
      } catch (error) {
        yield { line, prefix, error: prefix + (error as Error).message };
        continue;
      }
      yield { line, prefix, value };
    }
  }
}

/**
 * A rate card's name in `POST /v1/rerate`'s `rate_cards`: a file's name (no folder, no control character),
 * ending in `.csv`; at most `MAX_RATE_CARD_NAME` characters.
 */
const RATE_CARD_NAME = /^[^/\\\u0000-\u001f\u007f]+\.csv$/i;
const MAX_RATE_CARD_NAME = 255;
/** UTF-16 that is no text: half of a surrogate pair (PostgreSQL refuses it in JSON, SQLite would keep it). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/**
 * Rate cards one re-rate may give: Meta's cards are one per currency and date (wameter bundles 4), and they are
 * parsed on the server's thread before the re-rate takes its turn (about 0.1 ms a small card).
 */
const MAX_RATE_CARDS = 100;

/**
 * A finding of a re-rate under `rate_cards`: its advice names that field, not the command line's flag or the
 * service's setting, which this re-rate does not read.
 */
function withCardsOfBody(finding: Finding): Finding {
  if (!finding.message.includes(GIVE_RATE_CARDS)) return finding;
  return {
    ...finding,
    message: finding.message
      .split(GIVE_RATE_CARDS)
      .join('"rate_cards" of the re-rate, whose cards replace all the service\'s'),
  };
}

/**
 * `POST /v1/rerate`'s `rate_cards`, checked: a non-empty list of `{name, csv}`, names of files, each once (a
 * card's id is its name); undefined without the field. The texts are parsed as the rating's cards
 * (`parseRateCards`), which names a card and its line when one does not parse.
 */
function rateCardsOfBody(value: unknown): RateCardText[] | undefined {
  if (value === undefined) return undefined;
  const shape =
    '"rate_cards" must be a list of {"name": "FILE.csv", "csv": "TEXT"}: each rate card (Meta\'s CSV layout) or volume-tier file (a name containing "tiers") with its text';
  if (!Array.isArray(value)) throw new QueryError('BAD_QUERY', `${shape}.`);
  if (value.length === 0) {
    throw new QueryError(
      'BAD_QUERY',
      '"rate_cards" is empty: give the cards to re-rate under, or leave it out for the service\'s own.',
    );
  }
  if (value.length > MAX_RATE_CARDS) {
    throw new QueryError(
      'BAD_QUERY',
      `"rate_cards" holds ${value.length} items: at most ${MAX_RATE_CARDS} (Meta publishes one card per currency and date).`,
    );
  }
  const texts: RateCardText[] = [];
  const names = new Set<string>();
  for (const [index, item] of value.entries()) {
    const at = `"rate_cards"[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw new QueryError('BAD_QUERY', `${at} is not an object: ${shape}.`);
    }
    const fields = item as Record<string, unknown>;
    const other = Object.keys(fields).find((key) => key !== 'name' && key !== 'csv');
    if (other !== undefined) {
      throw new QueryError('BAD_QUERY', `${at} has a field ${JSON.stringify(other)}: ${shape}.`);
    }
    const { name, csv } = fields;
    if (
      typeof name !== 'string' ||
      name.length > MAX_RATE_CARD_NAME ||
      !RATE_CARD_NAME.test(name) ||
      LONE_SURROGATE.test(name)
    ) {
      throw new QueryError(
        'BAD_QUERY',
        `${at}: "name" must be a file name ending in .csv, without a folder or control characters, at most ${MAX_RATE_CARD_NAME} characters (e.g. "meta-2025-10-01.csv"; a volume-tier file's contains "tiers").`,
      );
    }
    if (typeof csv !== 'string') {
      throw new QueryError('BAD_QUERY', `${at} ("${name}"): "csv" must be the file's text, a JSON string.`);
    }
    if (names.has(name.toLowerCase())) {
      throw new QueryError('BAD_QUERY', `${at}: the name "${name}" is given twice (a card is named by it).`);
    }
    names.add(name.toLowerCase());
    texts.push({ file: name, text: csv });
  }
  return texts;
}

/**
 * The most characters of a request's path written in its log line. A client may send a path of up to Node's
 * header limit (16 KB); every request, refused ones too, is logged, so a longer path is cut, its length said.
 */
export const MAX_LOGGED_PATH_CHARS = 512;

function loggedPath(path: string): string {
  if (path.length <= MAX_LOGGED_PATH_CHARS) return path;
  return `${path.slice(0, MAX_LOGGED_PATH_CHARS)}… (${path.length} characters)`;
}
