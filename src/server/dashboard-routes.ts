// The dashboard's side of the service: its static files (web/) at `/`, and the JSON the pages need that the
// query API lacks, under /v1/ behind the same API key and WABA scope. Every figure is aggregated in the
// store (`analytics`, `totals`); nothing here loads a month of units into memory, and no file outside web/
// is ever served.

import { realpath, readFile, stat } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import type { Context, Hono } from 'hono';
import { DAY_MS, formatInstant, HOUR_MS, localDate, MAX_INSTANT_MS, parseInstant } from '../core/calendar.js';
import { eraOn, PER_MESSAGE_PRICING_FROM, pricingModelOf } from '../core/eras.js';
import { FREE_CONVERSATIONS_PER_MONTH, FREE_SERVICE_MESSAGES_PER_MONTH } from '../core/eras.js';
import { formatMicros, MoneyRangeError, sumMicros, type Micros } from '../core/money.js';
import { tierRate } from '../core/rate-card.js';
import { FINDING_CODES, type Era, type RateCategory } from '../core/units.js';
import { createAccountBook } from '../ingest/accounts-file.js';
import { packageRoot } from '../ingest/rate-card-files.js';
import {
  MAX_ESTIMATE_ECHO_CHARS,
  MAX_ESTIMATE_RECIPIENTS,
  parseRecipientsCsv,
  recipientsFromPhones,
  tooManyRecipients,
  type EstimateRequest,
  type RecipientList,
} from '../use-cases/estimate.js';
import { whyNothingWasChecked } from '../use-cases/reconcile.js';
import { isCalendarDate, type Difference } from '../core/reconcile.js';
import type { TemplateCategory } from '../core/events.js';
import {
  StoreInputError,
  type AnalyticsDimension,
  type AnalyticsPoint,
  type Store,
  type UnitFilter,
} from '../store/store.js';
import { totalsToJson } from '../core/report.js';
import {
  joinScopedUser,
  mayKeyAccess,
  parseUnitFilter,
  scopeOfKey,
  timeZoneQuery,
  unnamedUserProblem,
} from './unit-filter.js';
import type { ApiKey, ServiceConfig } from './config.js';
import { clientBusyResponse, errorResponse, ratingBehindResponse, type ErrorCode } from './errors.js';
import { ClientBusyError } from './fair-queue.js';
import { parseJsonObjectBody } from './json-object-body.js';
import { describeJson } from './reconcile-body.js';
import { unknownBodyField } from './openapi.js';
import {
  BODY_BUDGET_ERROR_CODE,
  BODY_BUDGET_RETRY_AFTER_SECONDS,
  bodyBudgetResponse,
  bodyEncoding,
  readRawBody,
} from './read-body.js';
import { errorFields, type Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { ExportDroppedError } from './on-demand.js';
import { RatingBehindError, type PricingSetup, type RatingService } from './rating-service.js';
import {
  findingsForReader,
  reasonWithoutTierCount,
  tierCountReader,
  wordsWithoutTierCount,
} from './tier-count-visibility.js';

export interface DashboardDeps {
  store: Store;
  config: ServiceConfig;
  clock: () => number;
  logger: Logger;
  rating: RatingService;
  /** The accounts and rate cards the server rates with (time zones, portfolios, cards, tiers). */
  pricing: PricingSetup;
  /** Folder of the dashboard's files; `<package root>/web` when omitted. */
  webRoot?: string;
  /** The service's metrics: a route answered 503 for a store failure counts in `store_errors_total`. */
  metrics?: Metrics;
}

type Env = { Variables: { apiKey: ApiKey } };

const OVERVIEW_DIMENSIONS = ['category', 'market', 'business', 'waba'] as const;
type OverviewDimension = (typeof OVERVIEW_DIMENSIONS)[number];
/** Categories counted for volume tiers (Meta, per-message pricing from 2025-07-01). */
const TIERED_CATEGORIES: readonly RateCategory[] = [
  'utility',
  'authentication',
  'authentication_international',
];

/** The category whose monthly tier count a charge of `category` adds to (pricing-rules.md §5.3). */
function countedCategoryOf(category: RateCategory): RateCategory {
  return category === 'authentication_international' ? 'authentication' : category;
}

/** Where a portfolio's count stands on a rate card's bands (nulls: the card has no bands for it). */
interface TierPosition {
  band: string | null;
  band_rate: string | null;
  next_band_from: number | null;
}

/** One volume-tier row of `GET /v1/dashboard/allowances` (docs/dashboard.md). */
interface TierRow extends TierPosition {
  portfolio: string;
  wabas: string[];
  market: string;
  category: RateCategory;
  currency: string;
  charged_this_month: number;
  rate_card: string | null;
  rate_categories: ({ category: RateCategory; charged_this_month: number } & TierPosition)[];
}

/**
 * Buckets the overview draws at most, per currency. Past it the answer keeps the LATEST ones and says in
 * `truncated` what it left out (docs/dashboard.md): the newest data is never the part dropped.
 */
const MAX_BUCKETS = 1500;
/**
 * Longer than any MAX_BUCKETS local days (25 h with a DST change) or months (31 days and an hour), with a
 * margin: the span before the latest unit the overview asks the store about. The store cuts every day (month)
 * of the span it is asked in JavaScript (SQLite: `localBuckets`), so a span is never left to the data (a unit
 * in 1970 and one in 9999 would be 2.9 million days, a minute of a blocked event loop).
 */
const OVERVIEW_SPAN_MS: Readonly<Record<'DAILY' | 'MONTHLY', number>> = {
  DAILY: (MAX_BUCKETS + 2) * 26 * HOUR_MS,
  MONTHLY: (MAX_BUCKETS + 2) * 32 * DAY_MS,
};
const DEFAULT_FINDINGS_PAGE = 200;
const MAX_FINDINGS_PAGE = 1000;

/** The dashboard's static files: extension → content type. Anything else is not served. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

// Everything the dashboard needs is local: no CDN, no inline script, no frames.
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/** A body refused for the in-flight budget of all requests (read-body.ts): answered 503 by `guarded`. */
class BodyBudgetRefusal extends Error {}

/** A refusal with a catalogue code, thrown inside a route and answered by `guarded`. */
class DashboardQueryError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/**
 * Adds the dashboard's routes to the service's app. The app's `/v1/*` middleware (API key → `apiKey`) runs
 * first for every route here; each route also refuses to run without it, so a mistake in mounting fails
 * closed.
 */
export function registerDashboardRoutes(app: Hono<Env>, deps: DashboardDeps): void {
  const { store, clock, logger, rating, pricing } = deps;
  const webRoot = deps.webRoot ?? join(packageRoot(), 'web');
  const isReportedRulesEnabled = pricing.isReportedRulesEnabled ?? true;
  const accountBook = () => createAccountBook(pricing.accounts);

  type Handler = (c: Context<Env>, apiKey: ApiKey) => Promise<Response>;

  /** Authenticated, with the service's error shapes: bad input → 400, store down → 503, bug → 500. */
  const guarded =
    (handler: Handler) =>
    async (c: Context<Env>): Promise<Response> => {
      const apiKey = c.get('apiKey') as ApiKey | undefined;
      if (!apiKey)
        return errorResponse(c, 'UNAUTHENTICATED', undefined, {
          'WWW-Authenticate': 'Bearer realm="wameter"',
        });
      try {
        return await handler(c, apiKey);
      } catch (error) {
        if (error instanceof DashboardQueryError) return errorResponse(c, error.code, error.detail);
        if (error instanceof BodyBudgetRefusal) return bodyBudgetResponse(c);
        if (error instanceof StoreInputError) return errorResponse(c, 'BAD_QUERY', error.message);
        // Sums beyond the exact range come from the request's own amounts (an export's costs), as in app.ts.
        if (error instanceof MoneyRangeError) return errorResponse(c, 'BAD_QUERY', error.message);
        if (error instanceof RatingBehindError) return ratingBehindResponse(c, error);
        if (error instanceof ClientBusyError) return clientBusyResponse(c, error);
        // The server held more exports than it may: busy, not failing (not a store error, not logged as one).
        if (error instanceof ExportDroppedError) {
          const message = `The server held more reconciliation exports at once than it may: ${error.message}.`;
          return c.json({ error: { code: BODY_BUDGET_ERROR_CODE, message } }, 503, {
            'Retry-After': String(BODY_BUDGET_RETRY_AFTER_SECONDS),
          });
        }
        // Answered 503 as a store failure, as the query API's are: counted so too (docs/service.md, Metrics).
        deps.metrics?.inc('store_errors_total');
        logger.error('dashboard route failed', errorFields(error));
        return errorResponse(c, 'STORE_UNAVAILABLE', undefined, { 'Retry-After': '5' });
      }
    };

  const scopeOf = scopeOfKey;
  const mayAccess = mayKeyAccess;

  /** The stored WABAs this key may see, sorted. */
  async function visibleWabas(apiKey: ApiKey): Promise<string[]> {
    const scope = scopeOf(apiKey);
    return (await store.listWabas()).filter((waba) => scope === undefined || scope.includes(waba)).sort();
  }

  /** The units filters of GET /v1/units (same names, same checks), always limited to the key's WABAs. */
  function filterOf(c: Context<Env>, apiKey: ApiKey): UnitFilter {
    const filter = parseUnitFilter((name) => c.req.query(name), apiKey, deps.pricing.markets.names);
    if (!filter.ok) throw new DashboardQueryError(filter.error.code, filter.error.message);
    return filter.value;
  }

  // --- accounts: the WABAs a key sees, with the settings the pages label things with ---------------------

  app.get(
    '/v1/dashboard/accounts',
    guarded(async (c, apiKey) => {
      const book = accountBook();
      const wabas = await visibleWabas(apiKey);
      return c.json({
        accounts: wabas.map((waba) => {
          const account = book.accountFor(waba);
          return {
            waba,
            time_zone: account.timeZone,
            currency: account.currency,
            portfolio: account.portfolio,
          };
        }),
      });
    }),
  );

  // --- overview: spend over time by one dimension, free vs charged, per currency -------------------------

  app.get(
    '/v1/dashboard/overview',
    guarded(async (c, apiKey) => {
      const filter = filterOf(c, apiKey);
      const granularity = (c.req.query('granularity') ?? 'DAILY').toUpperCase();
      if (granularity !== 'DAILY' && granularity !== 'MONTHLY') {
        throw new DashboardQueryError('BAD_QUERY', '"granularity" must be DAILY or MONTHLY.');
      }
      const by = (c.req.query('by') ?? 'category') as OverviewDimension;
      if (!OVERVIEW_DIMENSIONS.includes(by)) {
        throw new DashboardQueryError('BAD_QUERY', `"by" must be one of ${OVERVIEW_DIMENSIONS.join(', ')}.`);
      }
      // Days are cut in the asked time zone, else in the chosen WABA's (its bill's days), else in the one the
      // key's WABAs share, else in UTC (docs/decisions.md: no day is every client's day).
      const asked = timeZoneQuery((name) => c.req.query(name));
      if (!asked.ok) throw new DashboardQueryError(asked.error.code, asked.error.message);
      const book = accountBook();
      const zones = new Set(
        (filter.waba ? [filter.waba] : await visibleWabas(apiKey)).map((w) => book.accountFor(w).timeZone),
      );
      const timeZone = asked.value ?? (zones.size === 1 ? [...zones][0]! : 'UTC');
      // Only the WABA asked for (and its portfolio) must be current: another's failing rating is not this read's.
      await rating.current(filter.waba ? [filter.waba] : scopeOf(apiKey));
      // A business-scoped id joined to a number finds the number's units too, and a `user` in no form a user
      // has, naming no unit of the key, is 400: as on GET /v1/units.
      const scope = scopeOf(apiKey);
      await joinScopedUser(filter, (user) =>
        rating.joinedNumber({ user, ...(scope ? { visibleWabas: scope } : {}), client: apiKey.name }),
      );
      const unnamed = await unnamedUserProblem(
        c.req.query('user'),
        filter,
        async (named) => (await store.queryUnits(named, { limit: 1 })).units.length > 0,
      );
      if (unnamed !== undefined) throw new DashboardQueryError(unnamed.code, unnamed.message);
      const dimensions: AnalyticsDimension[] = [by, 'type', 'currency'];
      const span = await recentSpan(filter, granularity);
      const [points, totals] = await Promise.all([
        store.analytics({ ...span.filter, granularity, dimensions, timeZone }),
        store.totals(filter),
      ]);
      const shown = latestBuckets(points, granularity, timeZone);
      // Units before the first bucket shown: said, with what /v1/totals counts of them, never dropped silently.
      let truncated: OverviewTruncation | null = null;
      if (span.firstMs !== undefined && shown.fromMs !== undefined && span.firstMs < shown.fromMs) {
        const leftOut = await store.totals({ ...filter, toMs: shown.fromMs });
        truncated = {
          max_buckets: MAX_BUCKETS,
          shown_from: formatInstant(shown.fromMs),
          shown_from_label: bucketLabel(shown.fromMs, granularity, timeZone),
          earliest_unit_at: formatInstant(span.firstMs),
          left_out: totalsToJson(leftOut),
        };
      }
      return c.json({
        granularity,
        by,
        time_zone: timeZone,
        currencies: overviewByCurrency(shown.points, by, granularity, timeZone),
        // Exactly what GET /v1/totals answers for the same filters (the buckets left out included).
        totals: totalsToJson(totals),
        truncated,
      });
    }),
  );

  /**
   * The filter to ask the store for the overview's buckets with, and the first unit the filter matches:
   * `filter` itself when its units lie within OVERVIEW_SPAN_MS of one another, else `filter` from
   * OVERVIEW_SPAN_MS before its latest unit on (which `latestBuckets` then cuts to MAX_BUCKETS buckets). The
   * latest unit is found with one-unit pages of `queryUnits` (an index seek each): two in the usual case, a
   * few dozen at most for units spread over centuries (a gallop forward by doubling steps, then halving).
   */
  async function recentSpan(
    filter: UnitFilter,
    granularity: 'DAILY' | 'MONTHLY',
  ): Promise<{ filter: UnitFilter; firstMs: number | undefined }> {
    const spanMs = OVERVIEW_SPAN_MS[granularity];
    const firstAtOrAfter = async (fromMs?: number): Promise<number | undefined> => {
      if (fromMs !== undefined && fromMs > MAX_INSTANT_MS) return undefined;
      const page = await store.queryUnits(fromMs === undefined ? filter : { ...filter, fromMs }, {
        limit: 1,
      });
      return page.units[0]?.openedAtMs;
    };
    const firstMs = await firstAtOrAfter();
    if (firstMs === undefined) return { filter, firstMs };
    // Invariant: a unit is opened at `atMs`, none at or after `noneFromMs`.
    let atMs = firstMs;
    let noneFromMs = Infinity;
    for (let step = spanMs; noneFromMs === Infinity; step *= 2) {
      const next = await firstAtOrAfter(atMs + step);
      if (next === undefined) noneFromMs = atMs + step;
      else atMs = next;
    }
    if (atMs === firstMs) return { filter, firstMs };
    // Narrowed until the latest unit is known to within a sixteenth of the span (a rating landing meanwhile
    // may move units: the number of rounds is bounded whatever the store answers).
    for (let round = 0; round < 64 && noneFromMs - atMs > spanMs / 16; round++) {
      const middle: number = atMs + Math.floor((noneFromMs - atMs) / 2);
      const next = await firstAtOrAfter(middle);
      if (next === undefined || next >= noneFromMs) noneFromMs = middle;
      else atMs = next;
    }
    const fromMs = atMs - spanMs;
    return { filter: fromMs > (filter.fromMs ?? -Infinity) ? { ...filter, fromMs } : filter, firstMs };
  }

  // --- allowances: free tier used this month, volume-tier position ---------------------------------------

  app.get(
    '/v1/dashboard/allowances',
    guarded(async (c, apiKey) => {
      const monthText = c.req.query('month');
      if (monthText !== undefined && monthText !== '' && !/^\d{4}-(0[1-9]|1[0-2])$/.test(monthText)) {
        throw new DashboardQueryError('BAD_QUERY', '"month" must be YYYY-MM.');
      }
      const waba = c.req.query('waba');
      if (waba && !mayAccess(apiKey, waba)) {
        throw new DashboardQueryError(
          'FORBIDDEN_WABA',
          `WABA ${JSON.stringify(waba)} is not one of this key's.`,
        );
      }
      const month = monthText || new Date(clock()).toISOString().slice(0, 7);
      const era = eraOn(`${month}-01`, isReportedRulesEnabled);
      const book = accountBook();
      const wabas = waba
        ? (await visibleWabas(apiKey)).filter((w) => w === waba)
        : await visibleWabas(apiKey);
      const isListed = new Set(wabas);
      // Volume tiers exist from per-message pricing on (pricing-rules.md §5.3). They count across the whole
      // portfolio, so its other WABAs are asked about too: their charges set the band, never shown as counts.
      const hasTiers = pricingModelOf(era) === 'PMP';
      const countedWabas = hasTiers && wabas.length > 0 ? await portfolioOf(wabas) : wabas;

      // A month is the WABA's calendar month: one store query per time zone in use.
      const byTimeZone = new Map<string, string[]>();
      for (const w of countedWabas) {
        const timeZone = book.accountFor(w).timeZone;
        byTimeZone.set(timeZone, [...(byTimeZone.get(timeZone) ?? []), w]);
      }
      await rating.current(waba ? [waba] : scopeOf(apiKey));
      const points: AnalyticsPoint[] = [];
      for (const [timeZone, group] of byTimeZone) {
        const fromMs = startOfLocalDate(`${month}-01`, timeZone);
        const toMs = startOfLocalDate(nextMonth(month), timeZone);
        points.push(
          ...(await store.analytics({
            wabas: group,
            fromMs,
            toMs,
            granularity: 'MONTHLY',
            dimensions: ['waba', 'business', 'market', 'category', 'type', 'currency'],
            timeZone,
          })),
        );
      }

      const allowance = allowanceOf(era);
      const used = new Map<string, { waba: string; business: string | null; used: number }>();
      const listedPoints = points.filter((point) => isListed.has(point.dimensions.waba ?? ''));
      if (allowance.per !== null) {
        for (const point of listedPoints) {
          if (point.dimensions.type !== 'free_tier') continue;
          const pointWaba = point.dimensions.waba ?? '';
          const business = allowance.per === 'business' ? (point.dimensions.business ?? '') : null;
          const key = `${pointWaba}\u0000${business ?? ''}`;
          const entry = used.get(key) ?? { waba: pointWaba, business, used: 0 };
          entry.used += point.units;
          used.set(key, entry);
        }
        // Every WABA (or number) in scope is listed, even with nothing used yet.
        for (const point of listedPoints) {
          const pointWaba = point.dimensions.waba ?? '';
          const business = allowance.per === 'business' ? (point.dimensions.business ?? '') : null;
          const key = `${pointWaba}\u0000${business ?? ''}`;
          if (!used.has(key)) used.set(key, { waba: pointWaba, business, used: 0 });
        }
      }

      const today = new Date(clock()).toISOString().slice(0, 10);
      const lastDay = lastDayOf(month);
      const tierRows = hasTiers ? tierPositions(points, isListed, today < lastDay ? today : lastDay) : [];

      return c.json({
        month,
        era,
        allowance: {
          per: allowance.per,
          limit: allowance.limit,
          what: allowance.what,
          rows: [...used.values()]
            .sort((a, b) =>
              a.waba !== b.waba
                ? a.waba < b.waba
                  ? -1
                  : 1
                : (a.business ?? '') < (b.business ?? '')
                  ? -1
                  : 1,
            )
            .map((row) => ({
              waba: row.waba,
              ...(row.business === null ? {} : { business: row.business }),
              used: row.used,
              limit: allowance.limit,
              remaining: allowance.limit === null ? null : Math.max(0, allowance.limit - row.used),
            })),
        },
        tiers: tierRows,
        tiers_note: hasTiers
          ? null
          : `no volume tiers in ${era}: Meta counts charged utility and authentication messages for volume ` +
            `tiers from per-message pricing (${PER_MESSAGE_PRICING_FROM}) on`,
      });
    }),
  );

  /**
   * The volume-tier rows of a month's points (`type` regular, with `waba`, `market`, `category`, `currency`):
   * as the rating counts (price-unit.ts), per portfolio × market × counted category, where
   * authentication-international counts as authentication (pricing-rules.md §5.3), whatever the WABA's
   * currency. A row per currency of the `listed` WABAs' charges: its `charged_this_month` counts only theirs,
   * its band is the whole portfolio's (`points` hold every WABA of their portfolios), read from the currency's
   * card in force on `cardDate`, per rate category sharing the count (`rate_categories`).
   */
  function tierPositions(
    points: readonly AnalyticsPoint[],
    listed: ReadonlySet<string>,
    cardDate: string,
  ): TierRow[] {
    const book = accountBook();
    const portfolioCounts = new Map<string, number>();
    const rows = new Map<
      string,
      {
        portfolio: string;
        wabas: Set<string>;
        market: string;
        category: RateCategory;
        currency: string;
        count: number;
        byRateCategory: Map<RateCategory, number>;
        countKey: string;
      }
    >();
    for (const point of points) {
      const rateCategory = point.dimensions.category as RateCategory | null | undefined;
      const market = point.dimensions.market;
      if (
        point.dimensions.type !== 'regular' ||
        !rateCategory ||
        !TIERED_CATEGORIES.includes(rateCategory) ||
        !market
      ) {
        continue;
      }
      const category = countedCategoryOf(rateCategory);
      const pointWaba = point.dimensions.waba ?? '';
      const portfolio = book.accountFor(pointWaba).portfolio;
      const countKey = [portfolio, market, category].join('\u0000');
      portfolioCounts.set(countKey, (portfolioCounts.get(countKey) ?? 0) + point.units);
      if (!listed.has(pointWaba)) continue;
      const currency = point.dimensions.currency ?? '';
      const key = [countKey, currency].join('\u0000');
      const entry = rows.get(key) ?? {
        portfolio,
        wabas: new Set<string>(),
        market,
        category,
        currency,
        count: 0,
        byRateCategory: new Map<RateCategory, number>(),
        countKey,
      };
      entry.wabas.add(pointWaba);
      entry.count += point.units;
      entry.byRateCategory.set(rateCategory, (entry.byRateCategory.get(rateCategory) ?? 0) + point.units);
      rows.set(key, entry);
    }
    return [...rows.values()]
      .sort((a, b) =>
        a.portfolio !== b.portfolio
          ? a.portfolio < b.portfolio
            ? -1
            : 1
          : b.count - a.count ||
            (a.market < b.market ? -1 : a.market > b.market ? 1 : 0) ||
            (a.category < b.category ? -1 : a.category > b.category ? 1 : 0) ||
            (a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : 0),
      )
      .map((entry) => {
        const card = pricing.rateBook.cardInForce(entry.currency, cardDate);
        const portfolioCount = portfolioCounts.get(entry.countKey) ?? entry.count;
        const positionOf = (category: RateCategory): TierPosition => {
          const position = card
            ? tierRate(card, entry.market, category, Math.max(1, portfolioCount))
            : undefined;
          const next = card?.tiers
            .get(`${entry.market}|${category}`)
            ?.find((band) => band.fromCount > portfolioCount);
          return {
            band: position?.band ?? null,
            band_rate: position ? formatMicros(position.rateMicros) : null,
            next_band_from: next?.fromCount ?? null,
          };
        };
        // Each rate category counted together: those charged, and those the card has bands for.
        const rateCategories = TIERED_CATEGORIES.filter(
          (category) =>
            countedCategoryOf(category) === entry.category &&
            (entry.byRateCategory.has(category) || card?.tiers.has(`${entry.market}|${category}`) === true),
        );
        return {
          portfolio: entry.portfolio,
          wabas: [...entry.wabas].sort(),
          market: entry.market,
          category: entry.category,
          currency: entry.currency,
          charged_this_month: entry.count,
          ...positionOf(entry.category),
          rate_card: card?.id ?? null,
          rate_categories: rateCategories.map((category) => ({
            category,
            charged_this_month: entry.byRateCategory.get(category) ?? 0,
            ...positionOf(category),
          })),
        };
      });
  }

  // --- rate cards in force and their history ---------------------------------------------------------------

  app.get(
    '/v1/rate-cards',
    guarded(async (c) => {
      const today = new Date(clock()).toISOString().slice(0, 10);
      const cards = [...pricing.rateBook.cards].sort((a, b) =>
        a.currency !== b.currency
          ? a.currency < b.currency
            ? -1
            : 1
          : a.effectiveDate < b.effectiveDate
            ? 1
            : -1,
      );
      return c.json({
        today,
        rate_cards: cards.map((card) => {
          const successor = cards
            .filter((other) => other.currency === card.currency && other.effectiveDate > card.effectiveDate)
            .sort((a, b) => (a.effectiveDate < b.effectiveDate ? -1 : 1))[0];
          return {
            id: card.id,
            currency: card.currency,
            effective_date: card.effectiveDate,
            until: successor?.effectiveDate ?? null,
            in_force: pricing.rateBook.cardInForce(card.currency, today)?.id === card.id,
            title: card.title,
            provenance: card.provenance,
            markets: card.rates.size,
            has_volume_tiers: card.tiers.size > 0,
          };
        }),
      });
    }),
  );

  app.get(
    '/v1/rate-cards/:id',
    guarded(async (c) => {
      const card = pricing.rateBook.cards.find((candidate) => candidate.id === c.req.param('id'));
      if (!card)
        return errorResponse(c, 'NOT_FOUND', `No rate card ${JSON.stringify(c.req.param('id'))} is loaded.`);
      const rates = [...card.rates.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([market, byCategory]) => ({
          market,
          rates: Object.fromEntries(
            Object.entries(byCategory).map(([category, micros]) => [category, formatMicros(micros)]),
          ),
        }));
      const tiers = [...card.tiers.entries()].map(([key, bands]) => ({
        market: key.split('|')[0],
        category: key.split('|')[1],
        bands: bands.map((band) => ({
          from: band.fromCount,
          to: band.toCount,
          rate: formatMicros(band.rateMicros),
        })),
      }));
      return c.json({
        id: card.id,
        currency: card.currency,
        effective_date: card.effectiveDate,
        title: card.title,
        provenance: card.provenance,
        rates,
        tiers,
      });
    }),
  );

  // --- findings --------------------------------------------------------------------------------------------

  app.get(
    '/v1/findings',
    guarded(async (c, apiKey) => {
      const waba = c.req.query('waba');
      if (waba && !mayAccess(apiKey, waba)) {
        throw new DashboardQueryError(
          'FORBIDDEN_WABA',
          `WABA ${JSON.stringify(waba)} is not one of this key's.`,
        );
      }
      const scope = waba ? [waba] : scopeOf(apiKey);
      const code = c.req.query('code') || undefined;
      if (code !== undefined && !(FINDING_CODES as readonly string[]).includes(code)) {
        // A mistyped code would answer "no such finding", as if the bill had none.
        const near = FINDING_CODES.find((known) => known === code.toUpperCase());
        throw new DashboardQueryError(
          'BAD_QUERY',
          `"code" ${JSON.stringify(code)} is no finding code${near ? ` (did you mean "${near}"?)` : ''}; codes: ${FINDING_CODES.join(', ')}.`,
        );
      }
      const limit = wholeNumber(c.req.query('limit'), 'limit', DEFAULT_FINDINGS_PAGE, 1, MAX_FINDINGS_PAGE);
      const offset = wholeNumber(c.req.query('offset'), 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
      await rating.current(scope);
      const visible = scopeOf(apiKey);
      // A finding that names a second WABA (MESSAGE_OF_TWO_WABAS, NUMBER_OF_TWO_WABAS) is shown only to a key
      // that may read both: to another client it would give away that WABA's id and its message ids.
      const all = await findingsForReader(
        (await store.listFindings(scope === undefined ? {} : { wabas: scope })).filter(
          (finding) =>
            visible === undefined ||
            typeof finding.other_waba !== 'string' ||
            visible.includes(finding.other_waba),
        ),
        // A portfolio's count (META_TIER_AHEAD's words) only to a key that may read the whole portfolio.
        tierCountReader(visible, (waba) => rating.portfolioOf(waba)),
      );
      const counts: Record<string, number> = {};
      for (const finding of all) counts[finding.code] = (counts[finding.code] ?? 0) + 1;
      const selected = code === undefined ? all : all.filter((finding) => finding.code === code);
      return c.json({
        counts,
        total: selected.length,
        findings: selected.slice(offset, offset + limit),
        next_offset: offset + limit < selected.length ? offset + limit : null,
      });
    }),
  );

  // --- estimate (contract §6) --------------------------------------------------------------------------------

  /** The WABAs whose events decide `wabas`' state: tiers and allowances count across a whole portfolio. */
  async function portfolioOf(wabas: readonly string[]): Promise<string[]> {
    const book = accountBook();
    const portfolios = new Set(wabas.map((waba) => book.accountFor(waba).portfolio));
    const stored = await store.listWabas();
    return [
      ...new Set([...wabas, ...stored.filter((waba) => portfolios.has(book.accountFor(waba).portfolio))]),
    ].sort();
  }

  /** A request's body bytes, within the body limit and budget. */
  async function rawBody(c: Context<Env>): Promise<Uint8Array> {
    const encoding = bodyEncoding(c);
    if (encoding) throw new DashboardQueryError('UNSUPPORTED_ENCODING', `(Content-Encoding: ${encoding})`);
    // Counted as it arrives: a chunked body (no Content-Length) past the limit is never held whole.
    const body = await readRawBody(c, deps.config.bodyLimitBytes);
    if (!body.ok && body.reason === 'busy') throw new BodyBudgetRefusal();
    if (!body.ok) {
      throw new DashboardQueryError('BODY_TOO_LARGE', `The limit is ${deps.config.bodyLimitBytes} bytes.`);
    }
    return body.bytes;
  }

  async function jsonBody(c: Context<Env>, hint: string): Promise<Record<string, unknown>> {
    // One JSON object, each key once: a second "template" would be quoted instead of the first.
    const parsed = parseJsonObjectBody(await rawBody(c), hint);
    if (!parsed.ok) throw new DashboardQueryError(parsed.error.code, parsed.error.detail);
    return parsed.value;
  }

  app.post(
    '/v1/estimate',
    guarded(async (c, apiKey) => {
      const hint = '{"phones": [...] or "csv": "phone\\n…", "template", "at"?, "waba"?, "business"?}';
      const body = await jsonBody(c, hint);
      // The fields the OpenAPI document lists, as for query parameters and POST /v1/rerate: a misspelt one
      // (`recipents`) would otherwise be quoted without, and the caller would not know.
      const unknown = unknownBodyField('POST', '/v1/estimate', body);
      if (unknown !== undefined) throw new DashboardQueryError('BAD_QUERY', unknown);
      const template = body.template;
      if (template !== 'marketing' && template !== 'utility' && template !== 'authentication') {
        throw new DashboardQueryError(
          'BAD_QUERY',
          '"template" must be marketing, utility or authentication.',
        );
      }
      let recipients: RecipientList;
      if (body.phones !== undefined && body.csv !== undefined) {
        throw new DashboardQueryError('BAD_QUERY', `Give either "phones" or "csv", not both: ${hint}.`);
      }
      if (body.phones !== undefined && !Array.isArray(body.phones)) {
        throw new DashboardQueryError(
          'BAD_QUERY',
          `"phones" must be an array of phone numbers written as strings (["+91 98765 43210", "5511999990000"]); it is ${describeJson(body.phones)}.`,
        );
      }
      if (body.csv !== undefined && typeof body.csv !== 'string') {
        throw new DashboardQueryError(
          'BAD_QUERY',
          `"csv" must be the recipients' CSV as one string ("phone\\n+91 98765 43210\\n…"); it is ${describeJson(body.csv)}.`,
        );
      }
      if (typeof body.csv === 'string') {
        const parsed = parseRecipientsCsv(body.csv, {
          maxRecipients: MAX_ESTIMATE_RECIPIENTS,
          maxEchoChars: MAX_ESTIMATE_ECHO_CHARS,
        });
        if (!parsed.ok)
          throw new DashboardQueryError('BAD_QUERY', `"csv": ${parsed.error.code}: ${parsed.error.message}.`);
        recipients = parsed.value;
      } else if (Array.isArray(body.phones)) {
        if (body.phones.length > MAX_ESTIMATE_RECIPIENTS) {
          const { code, message } = tooManyRecipients(MAX_ESTIMATE_RECIPIENTS);
          throw new DashboardQueryError('BAD_QUERY', `"phones": ${code}: ${message}.`);
        }
        // Strings only: a JSON number loses digits past 2^53 (12345678901234567890 was read as
        // "12345678901234567000") and keeps none of a number's writing (-5511999990000 was quoted as Brazil).
        const index = body.phones.findIndex((phone) => typeof phone !== 'string');
        if (index >= 0) {
          throw new DashboardQueryError(
            'BAD_QUERY',
            `"phones[${index}]" is ${describeJson(body.phones[index])}: write each phone number as a JSON string ("919876543210", "+91 98765 43210").`,
          );
        }
        // Each entry is a recipient, line = its position from 1; a blank one is listed as invalid.
        recipients = recipientsFromPhones(body.phones as string[]);
      } else {
        throw new DashboardQueryError('BAD_QUERY', `Give either "phones" or "csv": ${hint}.`);
      }
      let atMs = clock();
      if (body.at !== undefined && body.at !== null && body.at !== '') {
        const parsed = parseInstant(body.at);
        if (!parsed.ok) throw new DashboardQueryError('BAD_QUERY', `"at": ${parsed.error.message}.`);
        atMs = parsed.value;
      }
      const request: EstimateRequest = {
        template: template as TemplateCategory,
        atMs,
        // Only a number the stored events show for the WABA: another WABA's number would quote its users.
        isUnknownBusinessAccepted: false,
        senderNames: { waba: '"waba"', business: '"business"' },
      };
      const visible = await visibleWabas(apiKey);
      if (body.waba !== undefined && body.waba !== null && body.waba !== '') {
        // A WABA id written as a JSON number is a malformed request (400), for every key alike.
        if (typeof body.waba !== 'string') {
          throw new DashboardQueryError('BAD_QUERY', '"waba" must be a WABA id (a string).');
        }
        if (!mayAccess(apiKey, body.waba)) {
          throw new DashboardQueryError(
            'FORBIDDEN_WABA',
            `WABA ${JSON.stringify(body.waba)} is not one of this key's.`,
          );
        }
        request.waba = body.waba;
      } else if (visible.length === 1) {
        request.waba = visible[0]!;
      } else {
        throw new DashboardQueryError(
          'BAD_QUERY',
          `Say which WABA would send ("waba"): this key sees ${visible.length}.`,
        );
      }
      if (body.business !== undefined && body.business !== null && body.business !== '') {
        if (typeof body.business !== 'string') {
          throw new DashboardQueryError('BAD_QUERY', '"business" must be a phone_number_id (a string).');
        }
        request.business = body.business;
      }
      // A quote's volume-tier position counts the whole portfolio's charges of the month: to a key that may not
      // read every WABA of it, the band alone (the count would tell the mates' charges: docs/dashboard.md) —
      // in the words, and in the prices, each line at the band of the portfolio's next charge.
      const mayReadCount = await tierCountReader(scopeOf(apiKey), (waba) => rating.portfolioOf(waba))(
        request.waba!,
      );
      if (!mayReadCount) request.isTierCountHeld = true;
      await rating.settled();
      // Rated where live ratings run, in this key's turn (never in the webhook endpoint's event loop).
      const outcome = await rating.estimate(apiKey.name, {
        scope: await portfolioOf([request.waba!]),
        recipients,
        request,
      });
      if (!outcome.ok) {
        const { code, message, owners = [], numbers = [] } = outcome.error;
        // A number of a WABA this key may not read (a portfolio mate's, whose events were rated here) is
        // refused in the very words of a number nobody uses, or another portfolio's: the answer says only
        // that it is not the WABA's, so that no key learns which numbers other clients send from. Only
        // owners the key may read are named.
        if (
          code === 'BUSINESS_NOT_OF_WABA' &&
          !(owners.length > 0 && owners.every((owner) => mayAccess(apiKey, owner)))
        ) {
          throw new DashboardQueryError(
            'BAD_QUERY',
            `BUSINESS_NOT_OF_WABA: business number ${request.business} is not one the stored events show for WABA ${request.waba}${numbers.length > 0 ? `: pass one of its numbers with "business" (${numbers.join(', ')})` : ''}.`,
          );
        }
        // A WABA with no number in the stored events, whose portfolio mates' events have some: told in the words
        // of a portfolio with no events at all, never naming those WABAs (another client's ids, and that they
        // have begun sending).
        if (code === 'BUSINESS_REQUIRED' && !owners.every((owner) => mayAccess(apiKey, owner))) {
          throw new DashboardQueryError(
            'BAD_QUERY',
            `BUSINESS_REQUIRED: the events name no business number of WABA ${request.waba}: pass "business" (the phone_number_id that sends).`,
          );
        }
        throw new DashboardQueryError('BAD_QUERY', `${code}: ${message}.`);
      }
      const { estimate } = outcome.value;
      const lines = mayReadCount
        ? estimate.lines
        : estimate.lines.map((line) => ({ ...line, reason: reasonWithoutTierCount(line.reason) }));
      // A finding's words among the warnings (META_TIER_AHEAD: "wameter counted N") hold that count too.
      const warnings =
        mayReadCount || estimate.warnings === undefined
          ? estimate.warnings
          : estimate.warnings.map(wordsWithoutTierCount);
      return c.json({
        ...estimate,
        lines,
        ...(warnings === undefined ? {} : { warnings }),
        waba: outcome.value.waba,
        business: outcome.value.business,
      });
    }),
  );

  // --- reconciliation (contract §7) --------------------------------------------------------------------------

  /**
   * `from` and `to` of GET and POST /v1/reconciliation: the first and last local day (YYYY-MM-DD, on the
   * export's WABA's clock) compared with an uploaded export, as `wameter reconcile --from/--to` (by default the
   * export's whole months). Without an export there is no period to choose — every stored message of the key's
   * WABAs is compared — so they are refused rather than ignored, which would read as a comparison of those days.
   */
  function reconciliationPeriodOf(c: Context<Env>, hasExport: boolean): { from?: string; to?: string } {
    const period: { from?: string; to?: string } = {};
    for (const name of ['from', 'to'] as const) {
      const day = c.req.query(name);
      if (day === undefined || day === '') continue;
      if (!isCalendarDate(day)) {
        const shown = day.length > 64 ? `${day.slice(0, 61)}...` : day;
        throw new DashboardQueryError(
          'BAD_QUERY',
          `"${name}" ${JSON.stringify(shown)} is not a day: write YYYY-MM-DD, a day on the clock of the WABA the export describes.`,
        );
      }
      period[name] = day;
    }
    if (!hasExport && (period.from !== undefined || period.to !== undefined)) {
      throw new DashboardQueryError(
        'BAD_QUERY',
        '"from" and "to" choose the days compared with Meta\'s analytics export: upload one (POST /v1/reconciliation with {"analytics": …}), or leave them out — without an export every stored message is compared with Meta\'s status webhooks, whatever its day.',
      );
    }
    return period;
  }

  async function reconcileFor(c: Context<Env>, apiKey: ApiKey, analytics?: { ref: number; waba?: string }) {
    const period = reconciliationPeriodOf(c, analytics !== undefined);
    let waba = c.req.query('waba') || analytics?.waba;
    if (waba && !mayAccess(apiKey, waba)) {
      throw new DashboardQueryError(
        'FORBIDDEN_WABA',
        `WABA ${JSON.stringify(waba)} is not one of this key's.`,
      );
    }
    const stored = await visibleWabas(apiKey);
    // A WABA with no stored events (the export's id, or the one asked for): every bucket of Meta's export would
    // be a difference against nothing. Refused, as `wameter reconcile` refuses a WABA its input lacks.
    if (waba && !stored.includes(waba)) {
      throw new DashboardQueryError(
        'BAD_QUERY',
        `WABA ${waba}${analytics ? ' (the WABA the export describes)' : ''} has no stored events to compare with${
          stored.length > 0 ? `; this key's WABAs with events: ${stored.slice(0, 10).join(', ')}` : ''
        }${analytics ? ': upload the export of one of them, or give "waba"' : ''}.`,
      );
    }
    const visible = waba ? [waba] : stored;
    // An export naming no WABA is the key's one WABA's; with several, the caller says which — named among
    // the key's own only (the events also hold portfolio mates', which are not the key's to see).
    if (analytics && !waba) {
      if (visible.length !== 1) {
        throw new DashboardQueryError(
          'BAD_QUERY',
          visible.length === 0
            ? 'no WABA of this key has stored events to compare the export with.'
            : `the export names no WABA and this key sees ${visible.length}: give "waba", one of ${visible.join(', ')}.`,
        );
      }
      waba = visible[0];
    }
    await rating.settled();
    // Portfolio mates' messages are rated and compared (shared tiers and allowances) but not the key's to
    // count. Rated where live ratings run, in this key's turn (never in the webhook endpoint's event loop).
    const finished = await rating.reconcile(apiKey.name, {
      scope: visible.length > 0 ? await portfolioOf(visible) : [],
      ...(analytics ? { analyticsRef: analytics.ref, ...(waba ? { analyticsWaba: waba } : {}) } : {}),
      ...(period.from !== undefined || period.to !== undefined ? { period } : {}),
      countedWabas: visible,
    });
    if (!finished.ok)
      throw new DashboardQueryError('BAD_QUERY', `${finished.error.code}: ${finished.error.message}`);
    // Portfolio mates were rated for their shared tiers and allowances; only the key's WABAs are reported.
    const isVisible = (difference: Difference) =>
      visible.includes('message' in difference ? difference.waba : difference.bucket.waba);
    const { checked } = finished.value.reconciliation;
    const differences = finished.value.reconciliation.differences.filter(isVisible);
    // Nothing compared is not agreement: say why, so that the page never claims it — judged on the key's own
    // messages and differences (a portfolio mate's checked message proves nothing of the key's).
    const nothingChecked =
      whyNothingWasChecked(
        { ...finished.value.reconciliation, differences },
        analytics !== undefined,
        'upload it on this page',
      ) ?? null;
    // The export's WABA is the key's (checked above): its period and totals are the key's to see; the count
    // of the portfolio mates' units is not, and goes.
    const compared = finished.value.reconciliation.analytics;
    let analyticsJson: unknown = null;
    if (compared) {
      const { other_wabas: _others, ...notCompared } = compared.not_compared;
      analyticsJson = { ...compared, not_compared: notCompared };
    }
    return c.json({
      differences,
      checked,
      wabas: visible,
      nothing_checked: nothingChecked,
      analytics: analyticsJson,
      // The key's WABAs whose stored bill a re-rate under other rules wrote: this comparison is not of it.
      findings: await rating.storedUnderOtherRules(visible),
    });
  }

  app.get(
    '/v1/reconciliation',
    guarded((c, apiKey) => reconcileFor(c, apiKey)),
  );

  app.post(
    '/v1/reconciliation',
    guarded(async (c, apiKey) => {
      // Parsed, checked and read where on-demand ratings run (reconcile-body.ts), the export kept there for
      // the reconciliation: in this thread a 4 MiB export held every webhook for a second. Only its WABA
      // comes back, for the key's checks below, before anything is rated.
      const read = await rating.readAnalyticsBody(apiKey.name, await rawBody(c));
      if (!read.ok) throw new DashboardQueryError(read.error.code, read.error.detail);
      const { ref, waba } = read.value;
      try {
        return await reconcileFor(c, apiKey, { ref, ...(waba ? { waba } : {}) });
      } finally {
        // Refused before its reconciliation ran (a WABA not the key's, a busy client): not kept for nothing.
        // Once it ran, the export was taken, and this does nothing.
        rating.dropAnalytics(ref);
      }
    }),
  );

  // --- static files ----------------------------------------------------------------------------------------

  app.get('/*', async (c) => {
    const path = c.req.path;
    // The API's and the webhook's paths are the app's not-found answer: a JSON 404, or 405 with Allow for a
    // route that takes other methods (GET /v1/rerate).
    if (path.startsWith('/v1/') || path.startsWith('/webhooks/')) return c.notFound();
    const file = await resolveStaticFile(webRoot, path === '/' ? '/index.html' : path);
    if (file === null) return errorResponse(c, 'NOT_FOUND', 'The dashboard has no such file.');
    const body = await readFile(file.path);
    return c.body(body, 200, {
      'Content-Type': file.contentType,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
      'Referrer-Policy': 'no-referrer',
    });
  });
}

function wholeNumber(
  text: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === undefined || text === '') return fallback;
  const value = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) {
    throw new DashboardQueryError('BAD_QUERY', `"${name}" must be a whole number from ${min} to ${max}.`);
  }
  return value;
}

/**
 * The file under `root` a URL path names, or null: only plain names of known types, never a dot-file, a
 * `..` segment, a backslash or a NUL, and never a file whose real path (symlinks followed) leaves `root`.
 */
export async function resolveStaticFile(
  root: string,
  urlPath: string,
): Promise<{ path: string; contentType: string } | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (!decoded.startsWith('/') || /[\\\0]/.test(decoded)) return null;
  const segments = decoded.slice(1).split('/');
  if (segments.some((segment) => segment === '' || segment.startsWith('.') || !/^[\w.-]+$/.test(segment))) {
    return null;
  }
  const contentType = CONTENT_TYPES[extname(decoded).toLowerCase()];
  if (contentType === undefined) return null;
  try {
    const realRoot = await realpath(root);
    const realFile = await realpath(join(realRoot, ...segments));
    if (!realFile.startsWith(realRoot + sep)) return null;
    if (!(await stat(realFile)).isFile()) return null;
    return { path: realFile, contentType };
  } catch {
    return null;
  }
}

// --- overview shaping --------------------------------------------------------------------------------------

/** The overview's `truncated`: the buckets before `shown_from` were left out (MAX_BUCKETS). */
interface OverviewTruncation {
  max_buckets: number;
  /** Start (UTC) of the first bucket shown. */
  shown_from: string;
  /** Its local day (month), as the buckets' `label`. */
  shown_from_label: string;
  /** When the first unit the filters match was opened. */
  earliest_unit_at: string;
  /** What GET /v1/totals counts of the units before `shown_from` (the same filters, `to` = `shown_from`). */
  left_out: ReturnType<typeof totalsToJson>;
}

/**
 * The points of the latest MAX_BUCKETS days (months), the last of them the latest point's, of every currency,
 * and the start of the first point kept (undefined: no points). The rest, older, are left out.
 */
function latestBuckets(
  points: readonly AnalyticsPoint[],
  granularity: 'DAILY' | 'MONTHLY',
  timeZone: string,
): { points: readonly AnalyticsPoint[]; fromMs: number | undefined } {
  if (points.length === 0) return { points, fromMs: undefined };
  const lastStartMs = points.reduce((latest, point) => Math.max(latest, point.startMs), -Infinity);
  const [year, month, day] = localDate(lastStartMs, timeZone).split('-').map(Number) as [
    number,
    number,
    number,
  ];
  const first =
    granularity === 'DAILY'
      ? Date.UTC(year, month - 1, day - (MAX_BUCKETS - 1))
      : Date.UTC(year, month - 1 - (MAX_BUCKETS - 1), 1);
  const cutMs = startOfLocalDate(new Date(first).toISOString().slice(0, 10), timeZone);
  const kept = points.filter((point) => point.startMs >= cutMs);
  return {
    points: kept,
    fromMs: kept.reduce((earliest, point) => Math.min(earliest, point.startMs), Infinity),
  };
}

function bucketLabel(startMs: number, granularity: 'DAILY' | 'MONTHLY', timeZone: string): string {
  return localDate(startMs, timeZone).slice(0, granularity === 'DAILY' ? 10 : 7);
}

interface BucketSlice {
  amount_micros: Micros;
  charged_units: number;
  free_units: number;
}

/** Analytics points (by × type × currency) → per currency: buckets (gaps filled), series keys, totals. */
function overviewByCurrency(
  points: readonly AnalyticsPoint[],
  by: OverviewDimension,
  granularity: 'DAILY' | 'MONTHLY',
  timeZone: string,
) {
  const currencies = new Map<string, Map<number, { endMs: number; slices: Map<string, BucketSlice> }>>();
  for (const point of points) {
    const currency = point.dimensions.currency ?? '';
    const buckets = currencies.get(currency) ?? new Map();
    currencies.set(currency, buckets);
    const bucket = buckets.get(point.startMs) ?? {
      endMs: point.endMs,
      slices: new Map<string, BucketSlice>(),
    };
    buckets.set(point.startMs, bucket);
    const key = point.dimensions[by] ?? '(unknown)';
    const slice = bucket.slices.get(key) ?? { amount_micros: 0, charged_units: 0, free_units: 0 };
    bucket.slices.set(key, slice);
    slice.amount_micros = sumMicros(slice.amount_micros, point.amountMicros);
    if (point.dimensions.type === 'regular') slice.charged_units += point.units;
    else slice.free_units += point.units;
  }
  return [...currencies.keys()].sort().map((currency) => {
    const buckets = currencies.get(currency)!;
    const starts = [...buckets.keys()].sort((a, b) => a - b);
    const keyTotals = new Map<string, Micros>();
    const total: BucketSlice = { amount_micros: 0, charged_units: 0, free_units: 0 };
    for (const bucket of buckets.values()) {
      for (const [key, slice] of bucket.slices) {
        keyTotals.set(key, sumMicros(keyTotals.get(key) ?? 0, slice.amount_micros));
        total.amount_micros = sumMicros(total.amount_micros, slice.amount_micros);
        total.charged_units += slice.charged_units;
        total.free_units += slice.free_units;
      }
    }
    const keys = [...keyTotals.entries()]
      .sort((a, b) => (a[1] > b[1] ? -1 : a[1] < b[1] ? 1 : a[0] < b[0] ? -1 : 1))
      .map(([key]) => key);
    // Empty days (or months) between the first and the last are shown as empty, not skipped.
    const spans = fillBuckets(starts[0]!, buckets.get(starts.at(-1)!)!.endMs, granularity, timeZone, buckets);
    return {
      currency,
      keys,
      totals: {
        amount: formatMicros(total.amount_micros),
        charged_units: total.charged_units,
        free_units: total.free_units,
      },
      buckets: spans.map(([startMs, endMs]) => {
        const bucket = buckets.get(startMs);
        let amountMicros: Micros = 0;
        let charged = 0;
        let free = 0;
        // No prototype: a WABA or number written "__proto__" is a key as any other.
        const byKey = Object.create(null) as Record<
          string,
          { amount: string; charged_units: number; free_units: number }
        >;
        for (const [key, slice] of bucket?.slices ?? []) {
          amountMicros = sumMicros(amountMicros, slice.amount_micros);
          charged += slice.charged_units;
          free += slice.free_units;
          byKey[key] = {
            amount: formatMicros(slice.amount_micros),
            charged_units: slice.charged_units,
            free_units: slice.free_units,
          };
        }
        return {
          start: formatInstant(startMs),
          end: formatInstant(endMs),
          label: bucketLabel(startMs, granularity, timeZone),
          amount: formatMicros(amountMicros),
          charged_units: charged,
          free_units: free,
          by: byKey,
        };
      }),
    };
  });
}

/** [start, end) of every local day (month) from `firstMs` up to `endMs`, reusing the store's buckets. */
function fillBuckets(
  firstMs: number,
  endMs: number,
  granularity: 'DAILY' | 'MONTHLY',
  timeZone: string,
  known: ReadonlyMap<number, { endMs: number }>,
): Array<[number, number]> {
  // `latestBuckets` left at most MAX_BUCKETS of them; a boundary that does not move on ends the walk.
  const spans: Array<[number, number]> = [];
  let startMs = firstMs;
  while (startMs < endMs) {
    const bucketEnd = known.get(startMs)?.endMs ?? nextBoundary(startMs, granularity, timeZone);
    if (!(bucketEnd > startMs)) break;
    spans.push([startMs, bucketEnd]);
    startMs = bucketEnd;
  }
  return spans;
}

function nextBoundary(startMs: number, granularity: 'DAILY' | 'MONTHLY', timeZone: string): number {
  const date = localDate(startMs, timeZone);
  const [year, month, day] = date.split('-').map(Number) as [number, number, number];
  const next =
    granularity === 'DAILY'
      ? new Date(Date.UTC(year, month - 1, day + 1))
      : new Date(Date.UTC(year, month, 1));
  return startOfLocalDate(next.toISOString().slice(0, 10), timeZone);
}

// --- calendar: local months --------------------------------------------------------------------------------

/**
 * The first instant whose local date in `timeZone` is `date`. Offsets lie within ±15 h of UTC and local
 * dates only move forward, so a binary search over that window finds it to the millisecond (DST-safe).
 */
export function startOfLocalDate(date: string, timeZone: string): number {
  const utcMidnight = Date.parse(`${date}T00:00:00Z`);
  let low = utcMidnight - 15 * 3_600_000;
  let high = utcMidnight + 15 * 3_600_000;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (localDate(middle, timeZone) >= date) high = middle;
    else low = middle;
  }
  return high;
}

function nextMonth(month: string): string {
  const [year, m] = month.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(year, m, 1)).toISOString().slice(0, 10);
}

function lastDayOf(month: string): string {
  const [year, m] = month.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(year, m, 0)).toISOString().slice(0, 10);
}

// --- free allowances (pricing-rules.md §3–§6) --------------------------------------------------------------

function allowanceOf(era: Era): { per: 'waba' | 'business' | null; limit: number | null; what: string } {
  switch (era) {
    case 'CBP-2022':
      return {
        per: 'waba',
        limit: FREE_CONVERSATIONS_PER_MONTH,
        what: 'free conversations (any kind) per WABA per month',
      };
    case 'CBP-2023':
      return {
        per: 'waba',
        limit: FREE_CONVERSATIONS_PER_MONTH,
        what: 'free service conversations per WABA per month',
      };
    case 'PMP-2026-10':
      return {
        per: 'business',
        limit: FREE_SERVICE_MESSAGES_PER_MONTH,
        what: '(reported) free service messages per business number per month',
      };
    case 'CBP-2024-11':
      return {
        per: null,
        limit: null,
        what: 'no monthly allowance: service conversations are free for everyone',
      };
    case 'PMP-2025':
      return {
        per: null,
        limit: null,
        what: 'no monthly allowance: service messages are free, templates are charged',
      };
    case 'NBP':
      return { per: null, limit: null, what: 'no monthly allowance in notification-based pricing' };
  }
}
