// Live re-rating: after every arrival the affected portfolios are rated again from ALL their stored events
// (the same `rateEvents` call as `wameter rate`), so the stored bill always equals the batch result. Also the
// re-rate (what-if / new cards) and explain use-cases. It never rates a subset of a portfolio's events:
// volume tiers and free allowances count across the whole portfolio.

import { randomUUID } from 'node:crypto';
import type { RateCard } from '../core/pricing-context.js';
import {
  pendingToJson,
  totalsOf,
  unitToJson,
  type PendingJson,
  type TotalsJson,
  type UnitJson,
} from '../core/report.js';
import { err, ok, type Result } from '../core/result.js';
import { formatInstant } from '../core/calendar.js';
import type { BillableUnit, Era, Finding, MessageDecision, TimelineEntry } from '../core/units.js';
import { failedToJson, type FailedJson } from '../core/explain.js';
import { findingsOfStory, storyScopeOf } from '../use-cases/explain-findings.js';
import { accountsDigest, rateCardsDigest } from '../use-cases/load-rating-setup.js';
import { engineDigest } from '../use-cases/engine-digest.js';
import { ratingSetupDigest } from '../use-cases/rating-setup-digest.js';
import { createAccountBook } from '../ingest/accounts-file.js';
import type { RateCardText } from '../ingest/rate-card-files.js';
import {
  ratingsCursor,
  type CurrencyTotals,
  type EventChanges,
  type RatingRecord,
  type Store,
} from '../store/store.js';
import {
  createInProcessLiveRater,
  currencyTotalsByWabaOf,
  currencyTotalsOf,
  type LiveRater,
  type PricingSetup,
  type RatingResultRows,
} from './live-rater.js';
import { FairQueue } from './fair-queue.js';
import { errorFields, type Logger } from './logger.js';
import type {
  AnalyticsBodyRead,
  EstimateAnswer,
  EstimateJob,
  ReconcileAnswer,
  ReconcileJob,
} from './on-demand.js';
import type { StoreHealth } from './store-health.js';

export {
  accountBookFor,
  currencyTotalsByWabaOf,
  currencyTotalsOf,
  diffRating,
  sameRecord,
  type PricingSetup,
} from './live-rater.js';

export interface RerateRequest {
  /** WABAs to re-rate; undefined = every WABA the caller may see (`visibleWabas`). */
  wabas?: readonly string[];
  /** The caller's scope: undefined = all. */
  visibleWabas?: readonly string[];
  /** Only units opened in [fromMs, toMs) are compared and reported. */
  fromMs?: number;
  toMs?: number;
  asOfRules?: Era;
  /** Other rate cards: paths on the machine running wameter (the CLI's `--rate-cards`). */
  rateCardPaths?: readonly string[];
  /** Other rate cards given as their texts (`POST /v1/rerate`'s `rate_cards`); not with `rateCardPaths`. */
  rateCardTexts?: readonly RateCardText[];
  /** Report what would change without storing anything. */
  isDryRun?: boolean;
  /**
   * Store the new rating even when it leaves more charged units without a price than the stored bill of the
   * same WABAs (other cards given alone, say, leaving earlier dates without a card); else it is refused
   * (`MORE_UNPRICED`) and nothing is stored.
   */
  allowUnpriced?: boolean;
  reason?: string;
  /** Who asks (an API key's name): on-demand ratings take the clients in turn (`FairQueue`). */
  client?: string;
}

export interface UnitChange {
  unit: string;
  old: UnitJson | null;
  new: UnitJson | null;
}

export interface RerateReport {
  ratingId: string | null;
  wabas: string[];
  changed: UnitChange[];
  unchanged: number;
  totals: { old: TotalsJson; new: TotalsJson };
  /**
   * `totals` of each WABA reported (every one of `wabas`, in their order): a re-rate covers whole portfolios,
   * and a provider re-bills each client its own share.
   */
  totalsByWaba: Record<string, { old: TotalsJson; new: TotalsJson }>;
  /**
   * With `from`/`to`: how many units opened outside the period changed too (the whole portfolio is rated and
   * stored again, since conversations, allowances and tiers run across any period), and the totals before and
   * after of every unit opened outside the period, changed or not; `null` without a period.
   */
  outsidePeriod: { changed: number; totals: { old: TotalsJson; new: TotalsJson } } | null;
  /**
   * The accounts (time zones, currencies, portfolios…) differ from those the scope's last rating priced with
   * (its `accountsDigest`): part of what changed comes from them — a re-rate without the service's accounts
   * file, say. `false` when they are the same or the last rating did not record them.
   */
  isAccountsChanged: boolean;
  /**
   * The rate cards' contents (any rate or band, whatever their ids) differ from those the scope's last rating
   * priced with (its `rateCardsDigest`): a card edited under the same file name, or other cards given. `false`
   * when they are the same or the last rating did not record them.
   */
  isRateCardsChanged: boolean;
  /**
   * The new rating's findings (contract §4), of the whole portfolios re-rated (not only the units of the
   * period): what `wameter rate` would say of the same traffic under the same cards and era.
   */
  findings: Finding[];
}

export interface RerateError {
  /**
   * NOTHING_TO_RERATE: none of the WABAs asked for (or, without `wabas`, visible) has stored events.
   * MORE_UNPRICED: the new rating leaves more charged units without a price than the stored bill, and
   * `allowUnpriced` was not given: nothing was stored.
   */
  code: 'BAD_RATE_CARDS' | 'FORBIDDEN_WABA' | 'NOTHING_TO_RERATE' | 'MORE_UNPRICED';
  message: string;
}

export interface DecisionJson {
  message_id: string;
  waba: string;
  business: string;
  user: string;
  delivered_at: string;
  template: string | null;
  era: Era;
  unit_id: string;
  rule: string;
  reason: string;
}

export interface TimelineJson {
  at: string;
  kind: TimelineEntry['kind'];
  business: string;
  message_id: string;
  unit_id?: string;
  era?: Era;
  rule?: string;
  reason: string;
}

export interface ExplainReport {
  user: string;
  /** The business-scoped id asked for, when the rating joined it to `user`, its number (Meta gave both). */
  scoped_user?: string;
  business: string | null;
  /** The user's story in order: messages, windows opened, charges (the rater's trace). */
  timeline: TimelineJson[];
  decisions: DecisionJson[];
  units: UnitJson[];
  pending: PendingJson[];
  /** The user's business messages that failed: never charged. */
  failed: FailedJson[];
  /** The rating's findings about this story (as `wameter explain` tells them), of WABAs the caller may read. */
  findings: Finding[];
}

export interface RatingService {
  /** Arrivals for these WABAs: rate their portfolios again soon (debounced). */
  markDirty(wabas: Iterable<string>): void;
  /** Runs any pending re-rate now and resolves when none is running. */
  settled(): Promise<void>;
  /**
   * What reads of the stored bill call first: `settled()`, then throws `RatingBehindError` when the rating of
   * acknowledged arrivals for these WABAs' portfolios (undefined = any) has failed and not caught up since —
   * the stored bill would be older than the last 200.
   */
  current(wabas?: readonly string[]): Promise<void>;
  /**
   * Rates every WABA in the store (at start: a crash may have left arrivals unrated). Rejects with
   * `RatingFailedError` when some could not be rated (a service retries them every second until
   * `close()`; with `retries: false` nothing is retried).
   */
  rateAll(): Promise<void>;
  /**
   * A start's rating: `rateAll()` for every portfolio but those whose stored rating is provably current
   * (`isRatingCurrent`: nothing it read or priced with has changed since), which are left as stored. Resolves to
   * how many portfolios were rated and how many were current.
   */
  rateStale(): Promise<{ rated: number; current: number }>;
  /**
   * Whether the store's latest rating priced with other accounts than this service's (its `accountsDigest`:
   * time zones, currencies, portfolios, primary countries, authentication-international dates, or WABAs
   * added or removed): `rateAll()` then re-prices the stored bill under these. Said by `import` and `serve`.
   */
  isStoredUnderOtherAccounts(): Promise<boolean>;
  /**
   * The stored bill was last priced with rate cards of other contents (any rate or tier band, whatever the
   * cards' ids: a card edited under the same file name): `rateAll()` then re-prices it under these. Said by
   * `import` and `serve`.
   */
  isStoredUnderOtherRateCards(): Promise<boolean>;
  /**
   * The era a re-rate wrote the stored bill under (`as_of_rules`: a what-if kept as the bill), when the latest
   * rating was one; null otherwise. The next rating, under the rules of each date, replaces that bill.
   */
  storedAsOfRules(): Promise<string | null>;
  /**
   * After an upgrade: the WABAs whose latest rating was made by other rating code (`engineDigest`: another
   * wameter version, or one from before the digest was kept) are re-rated as a re-rate with reason
   * `upgrade`, which keeps old vs new per unit in the history, instead of re-priced silently by the next
   * rating. `say` gets `ENGINE_CHANGED_WARNING` first, then the summary (`upgradeRerateSummary`). Reads wait
   * for it (`current()`), and the rating lag counts it. A failed re-rate is retried (unless `retries: false`)
   * up to 3 times, then thrown. Nothing to do (a store this code rated, or an empty one): nothing is said.
   */
  upgrade(say: (message: string) => void): Promise<void>;
  /** Whether `upgrade()` would re-rate anything (the newest rating is other rating code's); reads only. */
  isUpgradeDue(): Promise<boolean>;
  /**
   * `BILL_RERATED` findings for those of `wabas` whose stored bill a re-rate last wrote under another era or
   * other rate cards than the service's: explain and reconciliation rate the stored events under the
   * service's own (as the next arrival will re-rate that bill), so their answer differs from `/v1/units`
   * until then, and says so.
   */
  storedUnderOtherRules(wabas: readonly string[]): Promise<Finding[]>;
  /** Seconds the oldest unrated arrival has waited (0 when the bill is current). */
  lagSeconds(): number;
  /** On-demand ratings waiting for their turn (the one running not counted). */
  onDemandWaiting(): number;
  rerate(request: RerateRequest): Promise<Result<RerateReport, RerateError>>;
  explain(query: {
    user: string;
    business?: string;
    visibleWabas?: readonly string[];
    client?: string;
  }): Promise<ExplainReport>;
  /**
   * The number the rating joined business-scoped id `user` to (Meta gave them together), as explain finds it
   * for a caller that may read `visibleWabas` (its `user`, `scoped_user` the id): only in portfolios where the
   * caller's own events name the id, or a number they pair with it; undefined when none joins it. Rated in
   * `client`'s turn, as explain is (`ClientBusyError` past its limit).
   */
  joinedNumber(query: {
    user: string;
    visibleWabas?: readonly string[];
    client?: string;
  }): Promise<string | undefined>;
  /**
   * A reconciliation or an estimate over stored events, rated where live ratings run, in `client`'s turn.
   * Rejects with `ClientBusyError` when the client already has its limit of on-demand ratings.
   */
  reconcile(client: string, job: ReconcileJob): Promise<ReconcileAnswer>;
  /**
   * Reads a POST /v1/reconciliation body where on-demand ratings run, in `client`'s turn, keeping its export
   * for the `reconcile` whose job names its ref (else `dropAnalytics`). Never refused for the client's
   * limit: a body's own faults are answered before that limit is looked at, as when the server's thread read
   * it; the reconciliation that follows is counted.
   */
  readAnalyticsBody(client: string, bytes: Uint8Array): Promise<AnalyticsBodyRead>;
  dropAnalytics(ref: number): void;
  estimate(client: string, job: EstimateJob): Promise<EstimateAnswer>;
  /**
   * Every WABA of `waba`'s portfolio: those the store holds and those the accounts file puts there. What a
   * statement about the whole portfolio (a volume tier) would change the bill of, and whose units' tier counts
   * hold one another's charges. `storedWabas`: the store's WABAs when the caller has listed them already (one
   * listing for every unit of a page or an export, never one per WABA).
   */
  portfolioOf(waba: string, storedWabas?: readonly string[]): Promise<string[]>;
  /** Finishes pending ratings and stops timers. */
  close(): Promise<void>;
}

export interface RatingServiceDeps {
  store: Store;
  pricing: PricingSetup;
  clock: () => number;
  logger: Logger;
  /** Loads other rate cards for a re-rate (wired to the rate card files reader in main). */
  loadRateCards?: (paths: readonly string[]) => Promise<Result<readonly RateCard[], string>>;
  /** Parses other rate cards given as texts for a re-rate (`POST /v1/rerate`; wired in main). */
  parseRateCards?: (texts: readonly RateCardText[]) => Promise<Result<readonly RateCard[], string>>;
  debounceMs?: number;
  /**
   * Adaptive throttle: a live re-rate starts no sooner than this many times the last one's duration after it
   * ended, so live rating takes at most 1 / (1 + factor) of the time however big the portfolios grow (reads
   * still get a current bill: `settled()` rates at once). Default 3; 0 = debounce only.
   */
  throttleFactor?: number;
  /**
   * The throttle holds back live ratings while arrivals keep coming: once none has come for this long, the
   * next one starts without waiting out the throttle (after a long rating under load, 3 × its duration could
   * leave the bill behind for minutes with the traffic gone). Default 1,000 ms.
   */
  quietMs?: number;
  /** Called when a rating fails (metrics). */
  onStoreError?: () => void;
  /** Told whether each rating's write committed (readiness: a store that refuses writes is not ready). */
  storeHealth?: Pick<StoreHealth, 'writeSucceeded' | 'writeFailed' | 'writeBlocker'>;
  /** Where live ratings run (default: in this thread); closed by the service's close(). */
  liveRater?: LiveRater;
  /**
   * Where on-demand ratings run (explain, re-rate, reconciliation, estimate): a thread of their own, so that
   * the live rating of arrivals never waits for one (default: `liveRater`); closed by close().
   */
  onDemandRater?: LiveRater;
  /**
   * A failed rating is retried every second (default: a service must catch up by itself). False for a
   * one-shot command, which reports the failure (`rateAll` rejects) and exits instead.
   */
  retries?: boolean;
  /**
   * Told of each live rating once its write committed: its record and the findings it stored for its scope
   * (`undefined`: those of the scope's last rating stand). A finding that names no WABA is known only this
   * way (`wameter import` reports it with the portfolio that produced it).
   */
  onRatingStored?(record: RatingRecord, findings: readonly Finding[] | undefined): void;
  /**
   * On-demand ratings (explain, re-rate, reconciliation, estimate) one client may have waiting or running
   * at once (default 4); past it the request is refused with `ClientBusyError`.
   */
  perClientLimit?: number;
}

/** The client of a request that names none: the command line, or a test. */
const LOCAL_CLIENT = 'local';

const RETRY_MS = 1000;
/** A live rating that keeps failing (retried every second) is logged again at most this often. */
const FAILURE_LOG_MS = 60_000;

/** The most ratings a start reads, newest first, to find each portfolio's last one (`rateStale`). */
const CURRENT_SEARCH_RATINGS = 10_000;

/** Ratings read for their digests and totals: a re-rate's changes (tens of MB) left unread. */
const WITHOUT_CHANGES = { isWithoutChanges: true } as const;

/** What `serve` logs and `import` prints when the stored bill was priced with other accounts (see above). */
export const ACCOUNTS_CHANGED_WARNING =
  'the stored bill was last priced with other accounts (time zones, currencies, portfolios, primary countries or authentication-international dates differ, or WABAs were added or removed): it is re-priced now under the accounts given to this run; to keep the earlier pricing, give the same accounts file (WAMETER_ACCOUNTS, or the accounts of --config), and to see what changes first, run `wameter rerate --dry-run`';

/** What `serve` logs and `import` prints when the stored bill was priced with rate cards of other contents. */
export const ENGINE_CHANGED_WARNING =
  'the stored bill was rated by another version of wameter (an upgrade): it is re-rated now as a re-rate that keeps, in the rating history (GET /v1/ratings, reason "upgrade"), the totals before and after, and every unit that changed, old and new (GET /v1/ratings/{id}/changes)';

/** What the re-rate after an upgrade changed, in a line (`ENGINE_CHANGED_WARNING`). */
export function upgradeRerateSummary(report: RerateReport): string {
  const money = (totals: TotalsJson) =>
    Object.entries(totals)
      .map(([currency, total]) => `${total.amount} ${currency} (${total.units} unit(s))`)
      .join(', ') || 'nothing';
  return `re-rated after the upgrade (${report.ratingId ?? 'not stored'}): ${report.changed.length} unit(s) changed, ${report.unchanged} unchanged; totals ${money(report.totals.old)} before, ${money(report.totals.new)} now`;
}

export const UPGRADE_DUE_IN_DRY_RUN_WARNING =
  'the stored bill was rated by another version of wameter: the changes below include what this version changes by itself (a storing re-rate, `serve` or `import` re-rates the store first as the upgrade, reported apart)';

export const RATE_CARDS_CHANGED_WARNING =
  'the stored bill was last priced with rate cards whose rates differ from these (a card edited under the same file name, or other cards): it is re-priced now under the cards given to this run, and GET /v1/ratings tells the two ratings apart by their rate_cards_digest; to keep the earlier pricing, give the same cards (WAMETER_RATE_CARDS, or the rate cards of --config), and to see what changes first, run `wameter rerate --dry-run`';

/** What a start or an import says before it rates a bill a what-if re-rate wrote (`storedAsOfRules`). */
export function whatIfReplacedWarning(era: string): string {
  return `the stored bill was last re-rated under ${era} rules (\`rerate --as-of-rules ${era}\` or POST /v1/rerate's as_of_rules, kept as the bill): it is rated now under the rules in force on each date, which replaces it; the what-if stays in the rating history (GET /v1/ratings), and \`--dry-run\` re-rates without keeping one`;
}

/** The stored bill is older than acknowledged arrivals: their live rating failed and is being retried. */
export class RatingBehindError extends Error {
  readonly retryAfterSeconds = Math.ceil(RETRY_MS / 1000);
  constructor(
    readonly wabas: readonly string[],
    /** Behind WABAs of the same portfolios that the caller may not read (not named). */
    others = 0,
  ) {
    const named = wabas.length > 0 ? `${wabas.length === 1 ? 'WABA' : 'WABAs'} ${wabas.join(', ')}` : '';
    const unnamed = others > 0 ? `${others} other WABA(s) of the same portfolio` : '';
    super(
      `the rating of events already acknowledged for ${[named, unnamed].filter(Boolean).join(' and ')} failed and is retried every second`,
    );
  }
}

/** `rateAll()` could not rate every WABA: the stored bill of these is behind their events. */
export class RatingFailedError extends Error {
  constructor(
    readonly wabas: readonly string[],
    cause: unknown,
  ) {
    super(
      `rating ${wabas.length} WABA(s) failed (${wabas.join(', ')}): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.name = 'RatingFailedError';
  }
}

export function decisionToJson(decision: MessageDecision): DecisionJson {
  return {
    message_id: decision.messageId,
    waba: decision.waba,
    business: decision.business,
    user: decision.user,
    delivered_at: formatInstant(decision.deliveredAtMs),
    template: decision.template,
    era: decision.era,
    unit_id: decision.unitId,
    rule: decision.rule,
    reason: decision.reason,
  };
}

export function timelineToJson(entry: TimelineEntry): TimelineJson {
  return {
    at: formatInstant(entry.atMs),
    kind: entry.kind,
    business: entry.business,
    message_id: entry.messageId,
    ...(entry.unitId === undefined ? {} : { unit_id: entry.unitId }),
    ...(entry.era === undefined ? {} : { era: entry.era }),
    ...(entry.rule === undefined ? {} : { rule: entry.rule }),
    reason: entry.reason,
  };
}

export function createRatingService(deps: RatingServiceDeps): RatingService {
  const { store, pricing, clock, logger } = deps;
  /** Portfolios come from the accounts file only (account_update never moves a WABA). */
  const baseBook = createAccountBook(pricing.accounts);
  const pricingAccountsDigest = accountsDigest(pricing.accounts);
  const pricingCardsDigest = rateCardsDigest(pricing.cards);
  const ratingCodeDigest = engineDigest();
  const setupDigest = ratingSetupDigest(pricing.isReportedRulesEnabled ?? true);
  /**
   * WABA → the re-rate under another era or other cards that wrote its stored bill last (BILL_RERATED), until
   * a live rating writes it again. Kept as the ratings are written (every write is this service's while it
   * holds the writer lock), so explain and reconciliation ask no store for it; empty after the start, whose
   * first ratings rewrite every portfolio under the service's rules.
   */
  const billOfOtherRules = new Map<string, RatingRecord>();
  /**
   * WABAs whose stored bill is a rating under the service's own rules that the live rater may not remember (a
   * start found it current; a re-rate under the service's rules wrote it): their next live rating reads the
   * stored rows back and writes a diff against them, not every row again (`LiveRatingOptions`). Until a live
   * rating of theirs is written.
   */
  const storedUnremembered = new Set<string>();
  const debounceMs = deps.debounceMs ?? 100;
  const throttleFactor = deps.throttleFactor ?? 3;
  const quietMs = deps.quietMs ?? 1_000;
  /** When the last arrival was marked (performance.now() time). */
  let lastArrivalMs = -Infinity;
  const retries = deps.retries ?? true;
  const liveRater = deps.liveRater ?? createInProcessLiveRater(store, pricing);
  const onDemandRater = deps.onDemandRater ?? liveRater;
  /**
   * On-demand ratings, one at a time and the clients in turn: the live rating of arrivals (sent to the same
   * rating thread) then waits for one of them at most, and no client's pile delays another client's request
   * by more than a turn each.
   */
  const onDemand = new FairQueue(deps.perClientLimit);
  /** The next live re-rate starts no sooner than this, in performance.now() time (adaptive throttle). */
  let notBeforeMs = 0;
  /** WABA → when its oldest unrated arrival came. */
  let dirty = new Map<string, number>();
  let runningSinceMs: number | null = null;
  let debounceTimer: ReturnType<typeof setTimeout> | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let chain: Promise<void> = Promise.resolve();
  /** WABAs whose live rating failed and has not succeeded since (their stored bill is behind). */
  const behind = new Set<string>();
  /** Why the last live rating failed (while `behind` is not empty). */
  let lastFailure: unknown;
  /** A run of failed live rating rounds: since when, how many, and when one was last logged. */
  let failing: { sinceMs: number; rounds: number; loggedAtMs: number; unlogged: number } | undefined;
  /** WABA → the round in which its portfolio's rating last failed (until one succeeds). */
  const failedInRound = new Map<string, number>();
  let round = 0;

  /**
   * Portfolios whose rating failed go last, the longest-failing first among them: one portfolio that keeps
   * failing (a bug, a row its store refuses) never holds up the others' bills.
   */
  function failedLast(groups: string[][]): string[][] {
    const rank = (scope: string[]) => {
      let latest = -1;
      for (const waba of scope) latest = Math.max(latest, failedInRound.get(waba) ?? -1);
      return latest;
    };
    return groups
      .map((scope) => ({ scope, rank: rank(scope) }))
      .sort((a, b) => a.rank - b.rank)
      .map(({ scope }) => scope);
  }

  /** The WABAs of each portfolio touched by `wabas` (tiers and allowances count per portfolio). */
  async function portfolioGroups(
    wabas: Iterable<string>,
    storedWabas?: readonly string[],
  ): Promise<string[][]> {
    const groups = new Map<string, Set<string>>();
    for (const waba of wabas) {
      const portfolio = baseBook.accountFor(waba).portfolio;
      let group = groups.get(portfolio);
      if (!group) groups.set(portfolio, (group = new Set()));
      group.add(waba);
    }
    for (const waba of storedWabas ?? (await store.listWabas()))
      groups.get(baseBook.accountFor(waba).portfolio)?.add(waba);
    return [...groups.values()].map((group) => [...group].sort());
  }

  async function portfolioOf(waba: string, storedWabas?: readonly string[]): Promise<string[]> {
    const portfolio = baseBook.accountFor(waba).portfolio;
    const fromAccounts = pricing.accounts.filter((a) => a.portfolio === portfolio).map((a) => a.waba);
    return [...new Set([...(await portfolioScope([waba], storedWabas)), ...fromAccounts])].sort();
  }

  /** The WABAs sharing a portfolio with any of `wabas`. */
  async function portfolioScope(wabas: Iterable<string>, storedWabas?: readonly string[]): Promise<string[]> {
    return (await portfolioGroups(wabas, storedWabas)).flat().sort();
  }

  function newRecord(
    reason: string,
    scope: string[],
    totals: Record<string, CurrencyTotals>,
    extra: {
      asOfRules?: Era;
      /** Other rate cards than the service's (a re-rate's). */
      cards?: readonly RateCard[];
      changes?: unknown;
      changedUnits?: readonly unknown[];
      totalsByWaba?: Record<string, Record<string, CurrencyTotals>>;
      /** The event change counter read before the rating listed its events (a live rating's, a re-rate's). */
      eventsSeq?: number;
    },
  ): RatingRecord {
    return {
      id: `rating_${randomUUID()}`,
      ratedAtMs: clock(),
      reason,
      wabas: scope,
      asOfRules: extra.asOfRules ?? null,
      rateCards: (extra.cards ?? pricing.cards).map((card) => card.id),
      totals,
      accountsDigest: pricingAccountsDigest,
      rateCardsDigest: extra.cards ? rateCardsDigest(extra.cards) : pricingCardsDigest,
      engineDigest: ratingCodeDigest,
      setupDigest,
      ...(extra.eventsSeq === undefined ? {} : { eventsSeq: extra.eventsSeq }),
      ...(extra.changes === undefined ? {} : { changes: extra.changes }),
      ...(extra.changedUnits === undefined ? {} : { changedUnits: extra.changedUnits }),
      ...(extra.totalsByWaba === undefined ? {} : { totalsByWaba: extra.totalsByWaba }),
    };
  }

  /**
   * Rates one portfolio and stores the result: only the rows that changed when its last stored rating is
   * known — remembered by the rater, or read back when a start found it current or a re-rate under the
   * service's rules wrote it (`storedUnremembered`) — everything otherwise (a portfolio the start rated, after a
   * failure, after a re-rate under other rules).
   */
  async function rateAndStore(scope: string[]): Promise<void> {
    const startedMs = performance.now();
    const isStoredCurrent = scope.some((waba) => storedUnremembered.has(waba));
    const rating = await liveRater.rate(scope, isStoredCurrent ? { isStoredCurrent } : undefined);
    const ratedMs = performance.now();
    if (rating.outsideScope.length > 0) {
      logger.error('a rating placed rows outside its portfolio; they were left out of the stored bill', {
        wabas: scope.length,
        outside: rating.outsideScope,
      });
    }
    const record = newRecord('live', scope, rating.totals, {
      totalsByWaba: rating.totalsByWaba,
      eventsSeq: rating.eventsSeq,
    });
    let written: number;
    try {
      // The writer lock lost, the SQLite file gone: nothing is written (a retry will find it still so).
      const blocker = deps.storeHealth?.writeBlocker() ?? null;
      if (blocker !== null) throw new Error(blocker);
      if (rating.diff) {
        const { diff } = rating;
        await store.applyRatingDiff(record, diff);
        written =
          diff.units.upsert.length +
          diff.units.delete.length +
          diff.pending.upsert.length +
          diff.pending.delete.length;
      } else {
        await store.replaceRating(record, rating.full!);
        written = rating.units + rating.pending;
      }
    } catch (error) {
      liveRater.settle(scope, false);
      deps.storeHealth?.writeFailed(error, 'rating');
      throw error;
    }
    liveRater.settle(scope, true);
    for (const waba of scope) {
      billOfOtherRules.delete(waba);
      storedUnremembered.delete(waba);
    }
    deps.storeHealth?.writeSucceeded('rating');
    deps.onRatingStored?.(record, rating.diff ? rating.diff.findings : rating.full!.findings);
    logger.debug('rated', {
      wabas: scope.length,
      units: rating.units,
      rows_written: written,
      is_diff: rating.diff !== null,
      where: liveRater.where,
      rate_ms: Math.round(rating.rateMs),
      wait_ms: Math.round(ratedMs - startedMs - rating.rateMs),
      write_ms: Math.round(performance.now() - ratedMs),
    });
  }

  async function runOnce(): Promise<void> {
    // During an upgrade's re-rate arrivals wait in `dirty` (its end schedules them).
    if (dirty.size === 0 || upgrading !== undefined) return;
    const batch = dirty;
    dirty = new Map();
    runningSinceMs = earliestOf(batch.values());
    const startedMs = performance.now();
    round += 1;
    try {
      let failure: { error: unknown } | undefined;
      // One rating (and one history record) per portfolio: portfolios never share a unit or a tier.
      for (const scope of failedLast(await portfolioGroups(batch.keys()))) {
        try {
          await rateAndStore(scope);
        } catch (error) {
          for (const waba of scope) failedInRound.set(waba, round);
          // A service stops at the first failure (the store may be down for every portfolio; the retry
          // comes in a second, the failed portfolio last); a one-shot command tries every portfolio once.
          if (retries) throw error;
          failure = { error };
          continue;
        }
        for (const waba of scope) {
          batch.delete(waba);
          behind.delete(waba);
          failedInRound.delete(waba);
        }
      }
      if (failure) throw failure.error;
      if (failing !== undefined && batch.size === 0) {
        // Said once it is over, as its start was: how long the bill could not be brought up to date.
        logger.info('live rating recovered', {
          failed_rounds: failing.rounds,
          failing_for_seconds: Math.round((clock() - failing.sinceMs) / 1000),
        });
        failing = undefined;
      }
    } catch (error) {
      if (isClosing && retries) {
        // Cut by the service stopping (its shutdown aborts a rating still running past its bound, and says so):
        // no failure of the store, and no retry — one would start after close() and rate against a closed
        // store. The next start rates what is left (its events are newer than its stored rating).
        for (const waba of batch.keys()) behind.add(waba);
        logger.info('live rating stopped: the service is stopping; the next start rates what is left', {
          ...errorFields(error),
          wabas: batch.size,
        });
        return;
      }
      lastFailure = error;
      deps.onStoreError?.();
      // Retried every second: logged at the first failure, then at most once a minute with how many rounds
      // failed since (a portfolio that cannot be rated wrote two error lines a second for as long as it lasted).
      const nowMs = clock();
      failing ??= { sinceMs: nowMs, rounds: 0, loggedAtMs: -Infinity, unlogged: 0 };
      failing.rounds += 1;
      if (!retries || nowMs - failing.loggedAtMs >= FAILURE_LOG_MS) {
        logger.error(retries ? 'live rating failed; will retry' : 'rating failed', {
          ...errorFields(error),
          wabas: batch.size,
          ...(failing.unlogged > 0
            ? {
                failed_rounds_unlogged: failing.unlogged,
                failing_for_seconds: Math.round((nowMs - failing.sinceMs) / 1000),
              }
            : {}),
        });
        failing.loggedAtMs = nowMs;
        failing.unlogged = 0;
      } else {
        failing.unlogged += 1;
      }
      for (const waba of batch.keys()) behind.add(waba);
      if (!retries) return;
      for (const [waba, sinceMs] of batch) dirty.set(waba, Math.min(sinceMs, dirty.get(waba) ?? Infinity));
      if (!retryTimer) {
        retryTimer = setTimeout(() => {
          retryTimer = undefined;
          enqueue();
        }, RETRY_MS);
        retryTimer.unref?.();
      }
    } finally {
      runningSinceMs = null;
      const tookMs = performance.now() - startedMs;
      notBeforeMs = performance.now() + throttleFactor * tookMs;
      // Arrivals during the rating wait for the throttle, not only the debounce.
      if (dirty.size > 0 && !debounceTimer && !retryTimer) schedule();
    }
  }

  function enqueue(): Promise<void> {
    chain = chain.then(runOnce);
    return chain;
  }

  function schedule(): void {
    const nowMs = performance.now();
    const throttledMs = notBeforeMs - nowMs;
    // Arrivals quiet for `quietMs`: the throttle has nothing left to protect (see RatingServiceDeps.quietMs).
    const quietInMs = Math.max(0, lastArrivalMs + quietMs - nowMs);
    const delayMs = Math.max(debounceMs, Math.min(throttledMs, quietInMs));
    debounceTimer = setTimeout(() => {
      debounceTimer = undefined;
      const isQuiet = performance.now() - lastArrivalMs >= quietMs;
      if (isQuiet || performance.now() >= notBeforeMs) void enqueue();
      else schedule(); // an arrival came meanwhile: wait for quiet or for the throttle again
    }, delayMs);
  }

  /**
   * The WABAs arrivals marked dirty while each re-rate in progress ran: it rates the events stored when its
   * turn came, and its write replaces whatever live ratings stored meanwhile — an arrival's unit included.
   * Those WABAs are rated again after that write, as any arrival after a re-rate is (under the configured
   * rules): an event that arrived during a re-rate was otherwise missing from the bill until the next arrival.
   */
  const arrivalsDuringRerates = new Set<Set<string>>();

  function markDirty(wabas: Iterable<string>): void {
    const nowMs = clock();
    lastArrivalMs = performance.now();
    for (const waba of wabas) {
      if (!dirty.has(waba)) dirty.set(waba, nowMs);
      for (const arrivals of arrivalsDuringRerates) arrivals.add(waba);
    }
    if (dirty.size > 0 && !debounceTimer && runningSinceMs === null && upgrading === undefined) schedule();
  }

  async function settled(): Promise<void> {
    // No live rating before an upgrade's re-rate (which itself does not wait here).
    await upgrading?.done;
    if (debounceTimer) {
      clearTimeout(debounceTimer);
      debounceTimer = undefined;
    }
    if (dirty.size > 0 && !retryTimer) void enqueue();
    await chain;
  }

  async function current(wabas?: readonly string[]): Promise<void> {
    // settled() waits for an upgrade's re-rate first: no live rating before it (one would re-price unreported).
    await settled();
    if (behind.size === 0) return;
    const portfolios = wabas && new Set(wabas.map((waba) => baseBook.accountFor(waba).portfolio));
    const late = [...behind].filter(
      (waba) => !portfolios || portfolios.has(baseBook.accountFor(waba).portfolio),
    );
    // Named only when the caller may read them: a portfolio mate's id is another client's.
    const named = wabas ? late.filter((waba) => wabas.includes(waba)) : late;
    if (late.length > 0) throw new RatingBehindError(named.sort(), late.length - named.length);
  }

  /** The upgrade's re-rate while it runs: reads wait for it. */
  let upgrading: { done: Promise<void>; sinceMs: number } | undefined;
  /** Set by close(): the upgrade's re-rate is not tried again, and its wait for the next try ends now. */
  let isClosing = false;
  let endUpgradeWait: (() => void) | undefined;

  /**
   * The stored WABAs to re-rate after an upgrade: every one when the newest rating was made by other rating
   * code (one read of the history; every writer — serve, import, rerate — upgrades the whole store before it
   * writes a rating of its own, so the newest rating tells), none otherwise.
   */
  async function wabasRatedByOtherCode(): Promise<string[]> {
    const [newest] = await store.listRatings(1, undefined, WITHOUT_CHANGES);
    if (newest === undefined || newest.engineDigest === ratingCodeDigest) return [];
    return store.listWabas();
  }

  async function upgrade(say: (message: string) => void): Promise<void> {
    // Reads wait from the first moment, the look at the ratings included.
    let release!: () => void;
    upgrading = { done: new Promise<void>((resolve) => (release = resolve)), sinceMs: clock() };
    try {
      const stale = await wabasRatedByOtherCode();
      if (stale.length === 0) return;
      say(ENGINE_CHANGED_WARNING);
      for (let attempt = 1; ; attempt++) {
        try {
          // The service's own cards and rules: what live ratings would store anyway, priced or not.
          const report = await rerate(
            { wabas: stale, reason: 'upgrade', allowUnpriced: true },
            { isUpgrade: true },
          );
          if (report.ok) say(upgradeRerateSummary(report.value));
          else say(`the re-rate after the upgrade was not needed: ${report.error.message}`);
          return;
        } catch (error) {
          // A stopping service does not try again: close() waited for the retries (6 s), and the stop then
          // blamed the store for not closing; the next start upgrades the store as this one would have.
          if (!retries || attempt >= 3 || isClosing) throw error;
          logger.error('the re-rate after the upgrade failed; will retry', {
            ...errorFields(error),
            attempt,
          });
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, RETRY_MS * 5 ** (attempt - 1));
            endUpgradeWait = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          endUpgradeWait = undefined;
          if (isClosing) throw error;
        }
      }
    } finally {
      upgrading = undefined;
      release();
      // Arrivals meanwhile were kept, not rated (a live rating first would re-price a portfolio unreported).
      if (dirty.size > 0 && !debounceTimer && runningSinceMs === null) schedule();
    }
  }

  /**
   * The newest rating of each of `scopes` (portfolios: no WABA in two), read newest first through the history
   * a page at a time, at most `CURRENT_SEARCH_RATINGS` of them (a busy store adds a live rating per arrival:
   * one search per portfolio read the whole history for each quiet one). A portfolio whose rating is further
   * back is not found, and rated.
   */
  async function newestRatingsOf(scopes: readonly (readonly string[])[]): Promise<Map<number, RatingRecord>> {
    const scopeOf = new Map<string, number>();
    scopes.forEach((scope, index) => scope.forEach((waba) => scopeOf.set(waba, index)));
    const newest = new Map<number, RatingRecord>();
    let cursor: string | undefined;
    for (let read = 0; newest.size < scopes.length && read < CURRENT_SEARCH_RATINGS;) {
      const page = await store.listRatings(1000, undefined, {
        ...WITHOUT_CHANGES,
        ...(cursor ? { cursor } : {}),
      });
      for (const rating of page) {
        for (const waba of rating.wabas) {
          const index = scopeOf.get(waba);
          if (index !== undefined && !newest.has(index)) newest.set(index, rating);
        }
      }
      if (page.length < 1000) break;
      read += page.length;
      cursor = ratingsCursor(page.at(-1)!.id);
    }
    return newest;
  }

  /**
   * Whether the stored bill of `scope` (a portfolio's stored WABAs) is what rating it now would store, provably:
   * its newest rating (`last`: a live rating, a re-rate or an upgrade's) rated exactly these WABAs of the
   * portfolio under the rules of each date (`asOfRules` null), made by this rating code with these accounts,
   * rate cards and setup (`ratingSetupDigest`) — what a live rating prices with; a re-rate under an era or
   * other cards is not — and no event it could have listed has changed since it read them (`changes`: no WABA
   * of the scope, nor a status naming no WABA or what places one, marked after its `eventsSeq`). Anything
   * unknown — a rating of an older version, one that kept no `eventsSeq`, a scope that grew — is not current.
   * docs/decisions.md, "A start rates only the portfolios whose stored rating is not current".
   */
  function isRatingCurrent(scope: readonly string[], last: RatingRecord | undefined, changes: EventChanges) {
    if (last?.eventsSeq === undefined || last.asOfRules !== null) return false;
    if (
      last.engineDigest !== ratingCodeDigest ||
      last.accountsDigest !== pricingAccountsDigest ||
      last.rateCardsDigest !== pricingCardsDigest ||
      last.setupDigest !== setupDigest
    ) {
      return false;
    }
    // A re-rate's record holds every portfolio it re-rated (each rated on its own, as live ratings are): its
    // WABAs of this portfolio must be the scope.
    const portfolio = baseBook.accountFor(scope[0]!).portfolio;
    const rated = new Set(last.wabas.filter((waba) => baseBook.accountFor(waba).portfolio === portfolio));
    if (rated.size !== scope.length || !scope.every((waba) => rated.has(waba))) return false;
    if (changes.unnamedSeq > last.eventsSeq) return false;
    return scope.every((waba) => (changes.byWaba.get(waba) ?? 0) <= last.eventsSeq!);
  }

  async function rateStale(): Promise<{ rated: number; current: number }> {
    // The marks first: an event stored while the ratings are looked at has a higher mark than any of them.
    const changes = await store.readEventChanges();
    const stored = await store.listWabas();
    const scopes = await portfolioGroups(stored, stored);
    const newest = await newestRatingsOf(scopes);
    const stale: string[][] = [];
    scopes.forEach((scope, index) => {
      if (!isRatingCurrent(scope, newest.get(index), changes)) stale.push(scope);
      // Left as stored: its first live rating writes a diff against the stored rows.
      else for (const waba of scope) storedUnremembered.add(waba);
    });
    markDirty(stale.flat());
    await settled();
    if (behind.size > 0) throw new RatingFailedError([...behind].sort(), lastFailure);
    return { rated: stale.length, current: scopes.length - stale.length };
  }

  async function listAllUnits(filter: { wabas: readonly string[]; fromMs?: number; toMs?: number }) {
    const units: BillableUnit[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await store.queryUnits(filter, { limit: 1000, ...(cursor ? { cursor } : {}) });
      units.push(...page.units);
      if (page.nextCursor === null) return units;
      cursor = page.nextCursor;
    }
  }

  async function rerate(
    request: RerateRequest,
    internal: { isUpgrade?: boolean } = {},
  ): Promise<Result<RerateReport, RerateError>> {
    const arrivals = new Set<string>();
    if (!request.isDryRun) arrivalsDuringRerates.add(arrivals);
    try {
      return await rerateTracked(request, arrivals, internal.isUpgrade === true);
    } finally {
      arrivalsDuringRerates.delete(arrivals);
    }
  }

  async function rerateTracked(
    request: RerateRequest,
    arrivals: ReadonlySet<string>,
    isUpgrade: boolean,
  ): Promise<Result<RerateReport, RerateError>> {
    // An upgrade's re-rate runs before any live rating: nothing to wait for (and settled() waits for it).
    if (!isUpgrade) await settled();
    // A re-rate that could not be stored (the writer lock lost, the SQLite file gone) fails before rating
    // anything, whatever it asks: the store is unavailable, not the request wrong (checked again at the write).
    const blocker = request.isDryRun ? null : (deps.storeHealth?.writeBlocker() ?? null);
    if (blocker !== null) throw new Error(blocker);
    let cards: readonly RateCard[] | undefined;
    if (request.rateCardPaths && request.rateCardPaths.length > 0) {
      if (!deps.loadRateCards)
        return err({ code: 'BAD_RATE_CARDS', message: 'other rate cards are not available here' });
      const loaded = await deps.loadRateCards(request.rateCardPaths);
      if (!loaded.ok) return err({ code: 'BAD_RATE_CARDS', message: loaded.error });
      cards = loaded.value;
    } else if (request.rateCardTexts && request.rateCardTexts.length > 0) {
      if (!deps.parseRateCards)
        return err({ code: 'BAD_RATE_CARDS', message: 'other rate cards are not available here' });
      const parsed = await deps.parseRateCards(request.rateCardTexts);
      if (!parsed.ok) return err({ code: 'BAD_RATE_CARDS', message: parsed.error });
      cards = parsed.value;
    }
    const stored = await store.listWabas();
    const visible = request.visibleWabas ? new Set(request.visibleWabas) : undefined;
    const asked = (request.wabas ?? stored).filter((waba) => !visible || visible.has(waba));
    // Nothing to rate: a rating of no WABA would be recorded in the history as an empty one (wabas: []),
    // which a limited key could not even see. Refused as a WABA with no stored events is.
    if (asked.length === 0) return err({ code: 'NOTHING_TO_RERATE', message: nothingToRerate(request) });
    const groups = await portfolioGroups(asked);
    const scope = groups.flat().sort();
    // The portfolios' WABAs as the accounts file lists them too, as `portfolioOf` does (tier counts): judged by
    // the stored ones alone, a dry run would pass until a mate's first event arrives and be refused after,
    // telling the key when that mate's traffic began.
    const portfolios = new Set(scope.map((waba) => baseBook.accountFor(waba).portfolio));
    const listedMates = pricing.accounts.filter((a) => portfolios.has(a.portfolio)).map((a) => a.waba);
    const hidden = visible
      ? [...new Set([...scope, ...listedMates])].filter((waba) => !visible.has(waba))
      : [];
    if (hidden.length > 0) {
      // A re-rate rewrites whole portfolios (tiers and allowances count across them): a key may only start
      // one when it may write every WABA of them.
      return err({
        code: 'FORBIDDEN_WABA',
        // The other WABAs are another client's: their ids are not this key's to learn.
        message: `re-rating ${asked.join(', ')} re-rates the whole portfolio, which also holds ${hidden.length} WABA(s) this key may not write: re-rate with a key for all of them`,
      });
    }
    const reported = new Set(scope);
    const isInPeriod = (unit: BillableUnit) =>
      reported.has(unit.waba) &&
      (request.fromMs === undefined || unit.openedAtMs >= request.fromMs) &&
      (request.toMs === undefined || unit.openedAtMs < request.toMs);

    const storedUnits = await listAllUnits({ wabas: [...reported] });
    const oldUnits = storedUnits.filter(isInPeriod);
    // Each portfolio rated on its own, as live ratings do: one client's events never meet another's.
    const result: RatingResultRows = { units: [], pending: [], findings: [] };
    // One turn per portfolio (a re-rate of every client's portfolio does not hold the others for all of
    // them); once the first is let in, the rest are never refused half-way.
    /**
     * The lowest event change counter the portfolios' ratings read before listing their events (undefined when
     * a rater gave none): the record then holds every change up to it, as a live rating's does.
     */
    let eventsSeq: number | undefined = Number.POSITIVE_INFINITY;
    for (const [index, group] of groups.entries()) {
      const { output, eventsSeq: groupSeq } = await onDemand.run(
        request.client ?? LOCAL_CLIENT,
        () =>
          onDemandRater.rateScope(group, {
            ...(request.asOfRules ? { asOfRules: request.asOfRules } : {}),
            ...(cards ? { cards } : {}),
          }),
        { isContinuation: index > 0 },
      );
      eventsSeq =
        groupSeq === undefined || eventsSeq === undefined ? undefined : Math.min(eventsSeq, groupSeq);
      // One by one, never push(...rows): a portfolio's 150,000 units passed as arguments overflowed the stack.
      for (const unit of output.units) result.units.push(unit);
      for (const message of output.pending) result.pending.push(message);
      for (const finding of output.findings) result.findings.push(finding);
    }
    const newUnits = result.units.filter(isInPeriod);

    const { changed, unchanged } = await compareUnits(oldUnits, newUnits);
    const totals = { old: totalsOf(oldUnits), new: totalsOf(newUnits) };
    const totalsByWaba: RerateReport['totalsByWaba'] = {};
    for (const waba of [...reported].sort()) {
      const ofWaba = (unit: BillableUnit) => unit.waba === waba;
      totalsByWaba[waba] = { old: totalsOf(oldUnits.filter(ofWaba)), new: totalsOf(newUnits.filter(ofWaba)) };
    }
    // The whole portfolio is rated again (conversations, allowances and tiers run across any period), and the
    // whole of it is stored: what changed outside the period is said too, never left unreported.
    let outsidePeriod: RerateReport['outsidePeriod'] = null;
    if (request.fromMs !== undefined || request.toMs !== undefined) {
      const isOutside = (unit: BillableUnit) => !isInPeriod(unit);
      const before = storedUnits.filter(isOutside);
      const after = result.units.filter(isOutside);
      outsidePeriod = {
        changed: (await compareUnits(before, after)).changed.length,
        totals: { old: totalsOf(before), new: totalsOf(after) },
      };
    }
    const [last] = await store.listRatings(1, scope, WITHOUT_CHANGES);
    const isAccountsChanged =
      last?.accountsDigest !== undefined && last.accountsDigest !== pricingAccountsDigest;
    const isRateCardsChanged =
      last?.rateCardsDigest !== undefined &&
      last.rateCardsDigest !== (cards ? rateCardsDigest(cards) : pricingCardsDigest);
    // A stored re-rate replaces the bill: one that prices fewer of its charges (a new card given alone leaves
    // the dates before it without one) would stand as the bill, the charges it lost billed nothing, until the
    // next arrival of each portfolio. Refused unless asked for; a dry run reports it as it is.
    if (!request.isDryRun && request.allowUnpriced !== true) {
      const unpricedBefore = storedUnits.filter((unit) => unit.amountMicros === null).length;
      const rerated = result.units.filter((unit) => reported.has(unit.waba));
      const unpricedAfter = rerated.filter((unit) => unit.amountMicros === null).length;
      if (unpricedAfter > unpricedBefore) {
        return err({
          code: 'MORE_UNPRICED',
          message: moreUnpricedMessage(unpricedBefore, unpricedAfter, result.findings, reported),
        });
      }
    }
    let ratingId: string | null = null;
    if (!request.isDryRun) {
      const record = newRecord(request.reason ?? 'rerate', scope, currencyTotalsOf(result.units), {
        totalsByWaba: currencyTotalsByWabaOf(result.units),
        ...(request.asOfRules ? { asOfRules: request.asOfRules } : {}),
        ...(cards ? { cards } : {}),
        ...(eventsSeq !== undefined && Number.isFinite(eventsSeq) ? { eventsSeq } : {}),
        // As POST /v1/rerate answers it (snake_case, ISO instants): GET /v1/ratings gives it back as stored.
        changes: {
          period: { from: isoOrNull(request.fromMs), to: isoOrNull(request.toMs) },
          outside_period: outsidePeriod,
          changed: changed.length,
          unchanged,
          totals,
        },
        // Each kept beside the rating, read a page at a time (GET /v1/ratings/{id}/changes).
        changedUnits: changed,
      });
      // In the live ratings' chain, so that none writes meanwhile; afterwards the stored units are no longer
      // what live ratings last wrote: the next live rating rewrites its scope — or, after a re-rate under the
      // service's own rules and cards, reads the stored rows back and writes a diff (`storedUnremembered`).
      const write = chain.then(async () => {
        // The writer lock lost, the SQLite file gone: nothing is written, as for live ratings.
        const blocker = deps.storeHealth?.writeBlocker() ?? null;
        if (blocker !== null) throw new Error(blocker);
        // The re-rated portfolios' rows are no longer what live ratings wrote; the others' still are.
        liveRater.forget(scope);
        // Dated when written, not when made: a live rating made meanwhile (of an arrival during the re-rate) is
        // written before it, and the history's newest rating must be the one whose rows are stored — a start
        // judges the bill by it (`isRatingCurrent`), and the live one read events this re-rate did not.
        record.ratedAtMs = Math.max(record.ratedAtMs, clock());
        try {
          await store.replaceRating(record, result);
        } catch (error) {
          deps.storeHealth?.writeFailed(error, 'rating');
          throw error;
        }
        deps.storeHealth?.writeSucceeded('rating');
        const isOtherRules = record.asOfRules !== null || record.rateCardsDigest !== pricingCardsDigest;
        for (const waba of scope) {
          if (isOtherRules) {
            billOfOtherRules.set(waba, record);
            storedUnremembered.delete(waba);
          } else {
            billOfOtherRules.delete(waba);
            storedUnremembered.add(waba);
          }
        }
        // What arrived while this re-rate ran is not in what it just wrote: rated again (arrivalsDuringRerates).
        const arrived = scope.filter((waba) => arrivals.has(waba));
        if (arrived.length > 0) markDirty(arrived);
      });
      chain = write.catch(() => undefined);
      await write;
      ratingId = record.id;
      logger.info('re-rated', { ratingId, wabas: scope.length, changed: changed.length });
    }
    return ok({
      ratingId,
      wabas: [...reported].sort(),
      changed,
      unchanged,
      totals,
      totalsByWaba,
      outsidePeriod,
      isAccountsChanged,
      isRateCardsChanged,
      findings: result.findings,
    });
  }

  function storedUnderOtherRules(wabas: readonly string[]): Promise<Finding[]> {
    const findings: Finding[] = [];
    for (const waba of [...new Set(wabas)].sort()) {
      const last = billOfOtherRules.get(waba);
      if (last === undefined) continue;
      const isOtherCards = last.rateCardsDigest !== pricingCardsDigest;
      const under = [
        ...(last.asOfRules === null ? [] : [`the ${last.asOfRules} rules for every date`]),
        ...(isOtherCards ? ['rate cards other than the service\u2019s'] : []),
      ].join(' and ');
      findings.push({
        code: 'BILL_RERATED',
        message: `WABA ${waba}: its stored bill was last written by ${last.reason} ${last.id} (${formatInstant(Math.floor(last.ratedAtMs / 1000) * 1000)}) under ${under}; this answer rates the stored events under the service's own rules and rate cards, as the next arrival for that WABA's portfolio will re-rate the stored bill — until then GET /v1/units and /v1/totals show the re-rate's units`,
        waba,
        rating_id: last.id,
      });
    }
    return Promise.resolve(findings);
  }

  /**
   * One user's story, rated on demand in `query.client`'s turn: the portfolios of the WABAs the caller may
   * read (`visibleWabas`) where its own events name the user (`ScopeRatingOptions.traceVisibleWabas`).
   */
  async function tracedRating(
    query: { user: string; business?: string; visibleWabas?: readonly string[]; client?: string },
    withDecisions: boolean,
  ) {
    const visible = query.visibleWabas ? new Set(query.visibleWabas) : undefined;
    const candidates = (await store.listWabas()).filter((waba) => !visible || visible.has(waba));
    const scope = candidates.length === 0 ? [] : await portfolioScope(candidates);
    const trace = { user: query.user, ...(query.business === undefined ? {} : { business: query.business }) };
    return scope.length === 0
      ? { output: { units: [], pending: [], decisions: [], timeline: [], findings: [] }, failed: undefined }
      : await onDemand.run(query.client ?? LOCAL_CLIENT, () =>
          onDemandRater.rateScope(scope, {
            ...(withDecisions ? { withDecisions: true } : {}),
            trace,
            ...(query.visibleWabas ? { traceVisibleWabas: query.visibleWabas } : {}),
          }),
        );
  }

  async function explain(query: {
    user: string;
    business?: string;
    visibleWabas?: readonly string[];
    client?: string;
  }): Promise<ExplainReport> {
    await settled();
    const visible = query.visibleWabas ? new Set(query.visibleWabas) : undefined;
    const { output: result, failed } = await tracedRating(query, true);
    // A business-scoped id the rating joined to its number (Meta gave both): the story is the number's.
    const storyUser = ('tracedUser' in result ? result.tracedUser : undefined) ?? query.user;
    const isAsked = (item: { waba: string; business: string; user: string }) =>
      item.user === storyUser &&
      (query.business === undefined || item.business === query.business) &&
      (!visible || visible.has(item.waba));
    // By the pair's WABA, never by its business number: another client's events may name the same number.
    const timeline = result.timeline.filter(
      (entry) =>
        (!visible || visible.has(entry.waba)) &&
        (query.business === undefined || entry.business === query.business),
    );
    const units = result.units.filter(isAsked);
    const unrated = [...result.pending.filter(isAsked), ...(failed ?? []).filter(isAsked)];
    const isVisible = (waba: unknown) => !visible || typeof waba !== 'string' || visible.has(waba);
    // A finding naming a WABA the caller may not read (its own, or a second one) is not told to it.
    const findings = findingsOfStory(
      result.findings,
      storyScopeOf(storyUser, { timeline, unrated, units }, (waba) => baseBook.accountFor(waba).timeZone),
    ).filter((finding) => isVisible(finding.waba) && isVisible(finding.other_waba));
    // The story's WABAs whose stored bill a re-rate under other rules wrote: this story is not that bill.
    const storyWabas = [...units.map((unit) => unit.waba), ...timeline.map((entry) => entry.waba)];
    findings.push(...(await storedUnderOtherRules(storyWabas.filter((waba) => isVisible(waba)))));
    return {
      user: storyUser,
      ...(storyUser === query.user ? {} : { scoped_user: query.user }),
      business: query.business ?? null,
      // The trace follows one user across every WABA of the scope: keep only what the caller may see.
      timeline: timeline.map(timelineToJson),
      decisions: result.decisions.filter(isAsked).map(decisionToJson),
      units: units.map((unit) => unitToJson(unit, baseBook.accountFor(unit.waba).timeZone)),
      pending: result.pending.filter(isAsked).map(pendingToJson),
      failed: (failed ?? []).filter(isAsked).map(failedToJson),
      findings,
    };
  }

  return {
    markDirty,
    settled,
    current,
    async joinedNumber(query) {
      const { output } = await tracedRating(query, false);
      return 'tracedUser' in output ? output.tracedUser : undefined;
    },
    async rateAll() {
      markDirty(await store.listWabas());
      await settled();
      if (behind.size > 0) throw new RatingFailedError([...behind].sort(), lastFailure);
    },
    rateStale,
    async isStoredUnderOtherAccounts() {
      const [last] = await store.listRatings(1, undefined, WITHOUT_CHANGES);
      return last?.accountsDigest !== undefined && last.accountsDigest !== pricingAccountsDigest;
    },
    storedUnderOtherRules,
    upgrade,
    isUpgradeDue: async () => (await wabasRatedByOtherCode()).length > 0,
    async storedAsOfRules() {
      const [last] = await store.listRatings(1, undefined, WITHOUT_CHANGES);
      return last?.asOfRules ?? null;
    },
    async isStoredUnderOtherRateCards() {
      const [last] = await store.listRatings(1, undefined, WITHOUT_CHANGES);
      return last?.rateCardsDigest !== undefined && last.rateCardsDigest !== pricingCardsDigest;
    },
    onDemandWaiting: () => onDemand.waitingCount(),
    lagSeconds() {
      const oldest = Math.min(
        upgrading?.sinceMs ?? Infinity,
        runningSinceMs ?? Infinity,
        earliestOf(dirty.values()),
      );
      // At least a millisecond while anything waits: 0 says the bill is current, and a script polling for it
      // read 0 within an arrival's own millisecond (the bench's live section, docs/benchmarks.md §9).
      return oldest === Infinity ? 0 : Math.max(0.001, (clock() - oldest) / 1000);
    },
    rerate,
    explain,
    reconcile: (client, job) => onDemand.run(client, () => onDemandRater.reconcile(job)),
    readAnalyticsBody: (client, bytes) =>
      onDemand.run(client, () => onDemandRater.readAnalyticsBody(bytes), { isContinuation: true }),
    dropAnalytics: (ref) => onDemandRater.dropAnalytics(ref),
    estimate: (client, job) => onDemand.run(client, () => onDemandRater.estimate(job)),
    portfolioOf,
    async close() {
      isClosing = true;
      endUpgradeWait?.();
      if (retryTimer) {
        clearTimeout(retryTimer);
        retryTimer = undefined;
      }
      await settled();
      if (debounceTimer) {
        clearTimeout(debounceTimer);
        debounceTimer = undefined;
      }
      await liveRater.close();
      if (onDemandRater !== liveRater) await onDemandRater.close();
    },
  };
}

/** An instant as the API writes it ("…:00Z", as units' opened_at), or null. */
/**
 * The smallest of `values` (Infinity when none), read one by one: `Math.min(...values)` passes them all as
 * arguments, and a store of 140,000 WABAs marked for rating at once (a start's first rating) overflowed the
 * stack — the batch was lost, and the rejection ended the process.
 */
function earliestOf(values: Iterable<number>): number {
  let earliest = Infinity;
  for (const value of values) if (value < earliest) earliest = value;
  return earliest;
}

function isoOrNull(ms: number | undefined): string | null {
  return ms === undefined ? null : formatInstant(ms);
}

/** Why a re-rate has no WABA to rate (a caller's own WABAs named, never another's). */
function nothingToRerate(request: RerateRequest): string {
  if (request.wabas !== undefined) {
    return request.wabas.length === 0
      ? 'No WABA is named: nothing to re-rate.'
      : 'None of the WABAs named is one this key may re-rate: nothing to re-rate.';
  }
  if (request.visibleWabas === undefined) return 'The store holds no events: nothing to re-rate.';
  const own = [...request.visibleWabas].sort();
  const named =
    own.length > 10 ? `${own.slice(0, 10).join(', ')} and ${own.length - 10} more` : own.join(', ');
  return `None of the WABAs this key may re-rate (${named}) has stored events: nothing to re-rate.`;
}

/** Units compared between yields to the event loop: a re-rate of a large store never holds webhooks long. */
const COMPARE_STEP = 2_000;

/**
 * Old vs new units as unit JSON, per (WABA, id) — two clients' units may share an id (store migration 4) —
 * in steps: done in the server's thread (the stored units are read here),
 * it yields every `COMPARE_STEP` units, so that webhooks are served meanwhile (200,000 units in one go held
 * the thread ≈ 1.2 s).
 */
async function compareUnits(
  before: readonly BillableUnit[],
  after: readonly BillableUnit[],
): Promise<{ changed: UnitChange[]; unchanged: number }> {
  const keyOf = (unit: BillableUnit) => JSON.stringify([unit.id, unit.waba]);
  let step = 0;
  const pause = async () => {
    if (++step % COMPARE_STEP === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  };
  const byKey = async (units: readonly BillableUnit[]) => {
    const map = new Map<string, string>();
    for (const unit of units) {
      // Without `local_date`: the old unit's would be worked out in today's time zone, not the one it was rated in.
      map.set(keyOf(unit), JSON.stringify(unitToJson(unit)));
      await pause();
    }
    return map;
  };
  const oldByKey = await byKey(before);
  const newByKey = await byKey(after);
  const changed: UnitChange[] = [];
  let unchanged = 0;
  for (const key of [...new Set([...oldByKey.keys(), ...newByKey.keys()])].sort()) {
    const old = oldByKey.get(key);
    const now = newByKey.get(key);
    if (old !== undefined && old === now) unchanged += 1;
    else {
      const oldJson = old === undefined ? null : (JSON.parse(old) as UnitJson);
      const newJson = now === undefined ? null : (JSON.parse(now) as UnitJson);
      changed.push({ unit: (oldJson ?? newJson)!.id, old: oldJson, new: newJson });
    }
    await pause();
  }
  return { changed, unchanged };
}

/** Finding codes that say why charges have no price (contract §4 findings). */
const UNPRICED_CAUSES: readonly string[] = ['NO_RATE_CARD', 'NO_RATE', 'UNKNOWN_RECIPIENT'];

/**
 * Why a re-rate was not stored (`MORE_UNPRICED`): how many charges the stored bill and the new rating leave
 * without a price, and the new rating's findings that say why (their codes and counts, for `reported` WABAs).
 */
export function moreUnpricedMessage(
  before: number,
  after: number,
  findings: readonly Finding[],
  reported: ReadonlySet<string>,
): string {
  const causes = new Map<string, number>();
  for (const finding of findings) {
    if (!UNPRICED_CAUSES.includes(finding.code)) continue;
    if (typeof finding.waba === 'string' && !reported.has(finding.waba)) continue;
    causes.set(finding.code, (causes.get(finding.code) ?? 0) + 1);
  }
  const why =
    causes.size === 0
      ? ''
      : ` (findings: ${[...causes].map(([code, count]) => `${count} × ${code}`).join(', ')})`;
  return `the new rating leaves ${after} charged unit(s) without a price where the stored bill has ${before}${why}: nothing was stored`;
}
