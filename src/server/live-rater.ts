// Live rating of one portfolio: read its stored events, rate them all (the same `rateEvents` as `wameter
// rate`), and say what to write — only the rows that changed since the last rating that was stored, or
// everything when that is not known. Runs in the server's process, or in a worker thread with its own store
// connection (rating-worker.ts) so that a long rating never blocks the webhook endpoint's event loop.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { Account, CoreEvent } from '../core/events.js';
import { MoneyRangeError } from '../core/money.js';
import { bySending, UserSendLog, type UnratedMessage } from '../core/explain.js';
import type { MarketResolver, RateBook, RateCard } from '../core/pricing-context.js';
import { rateEvents, type RatingOutput } from '../core/rate-events.js';
import { createRateBook } from '../core/rate-card.js';
import { TotalsAccumulator } from '../core/report.js';
import type { BillableUnit, Era, Finding, PendingMessage } from '../core/units.js';
import { createAccountBook, type AccountBook } from '../ingest/accounts-file.js';
import type { CurrencyTotals, RatingDiff, RowKey, Store } from '../store/store.js';
import { errorFields, type Logger } from './logger.js';
import {
  wabasOfUserPortfolios,
  estimateStored,
  ExportDroppedError,
  KeptExports,
  type AnalyticsBodyRead,
  reconcileStored,
  storyOf,
  type EstimateAnswer,
  type EstimateJob,
  type ReconcileAnswer,
  type ReconcileJob,
} from './on-demand.js';

/** Everything the rater needs besides events; built once at start from the accounts file and rate cards. */
export interface PricingSetup {
  /** The accounts file (contract §2); unknown WABAs get the defaults. */
  accounts: readonly Account[];
  rateBook: RateBook;
  markets: MarketResolver;
  /** The cards of `rateBook`: their ids go in the rating history; a worker builds its book from them. */
  cards: readonly RateCard[];
  isReportedRulesEnabled?: boolean;
}

export interface RatingResultRows {
  units: BillableUnit[];
  pending: PendingMessage[];
  findings: Finding[];
}

/** One live rating of a scope, ready to be written. */
export interface LiveRating {
  totals: Record<string, CurrencyTotals>;
  /** The same per WABA of the scope (the rating history shows a key its WABAs' share). */
  totalsByWaba: Record<string, Record<string, CurrencyTotals>>;
  units: number;
  pending: number;
  /** The rows that changed since the scope's last stored rating; `null` when that is not known. */
  diff: RatingDiff | null;
  /** Every row, when `diff` is `null`. */
  full: RatingResultRows | null;
  /**
   * WABAs outside the scope that the rating placed rows under (a pseudo-WABA of statuses alone, should the
   * stores' listing and the rater ever disagree): those rows are left out, never written, and said in the log.
   */
  outsideScope: string[];
  /**
   * The store's event change counter read before the events were listed (`EventChanges.seq`): the rating holds
   * every event change up to it, so one with a higher mark since is one it may not have read.
   */
  eventsSeq: number;
  rateMs: number;
}

/** What the caller knows of a scope's stored bill (`LiveRater.rate`). */
export interface LiveRatingOptions {
  /** The stored rows are a rating under the service's own rules: read them back to diff against. */
  isStoredCurrent?: boolean;
}

/** A whole rating of a scope for a re-rate (other cards or era) or an explanation (decisions, a trace). */
export interface ScopeRatingOptions {
  asOfRules?: Era;
  /** Other rate cards than the service's. */
  cards?: readonly RateCard[];
  withDecisions?: boolean;
  /**
   * An explanation of one user's story: only the portfolios where the user has events are rated, and only
   * that story comes back (on-demand.ts, `storyOf`).
   */
  trace?: { user: string; business?: string };
  /**
   * With a trace, for a key limited to some WABAs: only their events tell whether the user has a story (a
   * number, an id, or a number paired with the id), so that another client's customers are neither rated
   * nor told apart from strangers — by the answer or by how long it takes.
   */
  traceVisibleWabas?: readonly string[];
}

export interface ScopeRating {
  output: RatingOutput;
  /**
   * Without a trace: the store's event change counter read before the events were listed, as a live rating
   * keeps it (`LiveRating.eventsSeq`), for a re-rate's record.
   */
  eventsSeq?: number;
  /** With a trace: the traced user's business messages that failed (never charged; the rater keeps them). */
  failed?: UnratedMessage[];
}

/**
 * Rates the service's scopes (portfolios). Live: remembers, per scope, what the last rating stored, so the
 * next one can be written as a diff; after writing it the caller says whether the write committed
 * (`settle`). Whole ratings for re-rates and explanations go through it too, so that no rating of a large
 * portfolio runs in the webhook endpoint's thread.
 */
export interface LiveRater {
  readonly where: 'worker thread' | 'server thread';
  /**
   * Rates `scope` live. `options.isStoredCurrent`: the stored bill of `scope` is its last rating's, known to
   * the caller though not to this rater (a start found it current): when the rater remembers no rating of
   * the scope, it reads the stored rows back and writes a diff against them instead of rewriting them all.
   */
  rate(scope: readonly string[], options?: LiveRatingOptions): Promise<LiveRating>;
  rateScope(scope: readonly string[], options: ScopeRatingOptions): Promise<ScopeRating>;
  /**
   * Reads a POST /v1/reconciliation body (reconcile-body.ts) and keeps its export for the `reconcile` job that
   * names its ref (`analyticsRef`); the bytes are the rater's from then on (a worker's takes them over).
   */
  readAnalyticsBody(bytes: Uint8Array): Promise<AnalyticsBodyRead>;
  /** The export read under `ref` is not reconciled after all (the route refused the request). */
  dropAnalytics(ref: number): void;
  reconcile(job: ReconcileJob): Promise<ReconcileAnswer>;
  estimate(job: EstimateJob): Promise<EstimateAnswer>;
  /** The last rating of `scope` was written (`true`) or its write failed (`false`: rewrite all next time). */
  settle(scope: readonly string[], isCommitted: boolean): void;
  /**
   * The stored units of the scopes holding any of `wabas` are no longer what live ratings wrote (a re-rate of
   * their portfolios): their next ratings rewrite everything, but for a scope rated with `isStoredCurrent`.
   * Other scopes stay known.
   */
  forget(wabas: readonly string[]): void;
  close(): Promise<void>;
}

/** What a scope's last stored rating wrote, kept to diff the next rating against without reading it back. */
export interface StoredRating {
  units: RowsByKey<BillableUnit>;
  pending: RowsByKey<PendingMessage>;
  findings: string;
}

/**
 * A rating's rows by their key, WABA then id (`rowsByKey`). An id alone is not one: two WABAs' events may name
 * one message id (MESSAGE_OF_TWO_WABAS), and each WABA then has its own unit of that id. Two levels rather than
 * one key string a row: joining them made a new string to hash for each of a portfolio's 79,000 units, twice a
 * rating (the rows kept, and the diff's look-ups).
 */
export type RowsByKey<T> = Map<string, Map<string, T>>;

function rowsByKey<T extends { waba: string; id: string }>(rows: readonly T[]): RowsByKey<T> {
  const byWaba: RowsByKey<T> = new Map();
  for (const row of rows) {
    let byId = byWaba.get(row.waba);
    if (byId === undefined) byWaba.set(row.waba, (byId = new Map()));
    byId.set(row.id, row);
  }
  return byWaba;
}

/** Arrays element by element, plain objects field by field (`sameRecord`), anything else by identity. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  return sameRecord(a, b);
}

/** Same content, field by field (every field of either, so a field added to units is compared too). */
export function sameRecord(a: object, b: object): boolean {
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  for (const key in left) if (!sameValue(left[key], right[key])) return false;
  for (const key in right) if (!(key in left) && right[key] !== undefined) return false;
  return true;
}

export function storedRatingOf(result: {
  units: readonly BillableUnit[];
  pending: readonly PendingMessage[];
  findings: readonly Finding[];
}): StoredRating {
  return {
    units: rowsByKey(result.units),
    pending: rowsByKey(result.pending),
    findings: JSON.stringify(result.findings),
  };
}

/**
 * What the store holds for `scope` as a rating's rows, read back (`LiveRatingOptions.isStoredCurrent`): its
 * units and pending messages. Its findings are not read (a finding naming no WABA belongs to the rating that
 * made it, not to a WABA): the diff against it replaces them whole, as a full rating would.
 */
export async function readStoredRating(store: Store, scope: readonly string[]): Promise<StoredRating> {
  const units: BillableUnit[] = [];
  await store.exportUnits({ wabas: scope }, (page) => {
    for (const unit of page) units.push(unit);
  });
  const rating = storedRatingOf({ units, pending: await store.listPending({ wabas: scope }), findings: [] });
  // No JSON text of a list of findings: never equal to the new rating's, which are then written.
  return { ...rating, findings: '' };
}

/** The rows to write so that what `before` stored becomes `after`: new or changed rows, and vanished ones. */
export function diffRating(
  before: StoredRating,
  after: { units: readonly BillableUnit[]; pending: readonly PendingMessage[]; findings: readonly Finding[] },
): RatingDiff {
  const diffByKey = <T extends { waba: string; id: string }>(old: RowsByKey<T>, next: readonly T[]) => {
    const upsert: T[] = [];
    // The old rows some new row has the key of (by identity: no key string made); the others vanished.
    const kept = new Set<T>();
    for (const item of next) {
      const previous = old.get(item.waba)?.get(item.id);
      if (previous === undefined) upsert.push(item);
      else {
        kept.add(previous);
        if (!sameRecord(previous, item)) upsert.push(item);
      }
    }
    const removed: RowKey[] = [];
    let oldRows = 0;
    for (const byId of old.values()) oldRows += byId.size;
    if (kept.size < oldRows) {
      for (const byId of old.values()) {
        for (const item of byId.values()) if (!kept.has(item)) removed.push({ waba: item.waba, id: item.id });
      }
    }
    return { upsert, delete: removed };
  };
  const findings = JSON.stringify(after.findings);
  return {
    units: diffByKey(before.units, after.units),
    pending: diffByKey(before.pending, after.pending),
    ...(findings === before.findings ? {} : { findings: [...after.findings] }),
  };
}

/**
 * The account book for one rating: the accounts file, amended by every `account_update` among the events
 * (Meta's latest statement wins, whatever the arrival order). Built fresh per rating so the result depends
 * only on the stored events, exactly like a batch `wameter rate`.
 */
export function accountBookFor(accounts: readonly Account[], events: readonly CoreEvent[]): AccountBook {
  const book = createAccountBook(accounts);
  for (const event of events) if (event.kind === 'account_update') book.apply(event);
  return book;
}

export function currencyTotalsOf(units: readonly BillableUnit[]): Record<string, CurrencyTotals> {
  const totals = new TotalsAccumulator();
  for (const unit of units) totals.add(unit);
  return totals.toMicros();
}

/** Totals per WABA, then per currency (what a key for some of a rating's WABAs is shown). */
export function currencyTotalsByWabaOf(
  units: readonly BillableUnit[],
): Record<string, Record<string, CurrencyTotals>> {
  const byWaba = new Map<string, BillableUnit[]>();
  for (const unit of units) {
    const list = byWaba.get(unit.waba);
    if (list) list.push(unit);
    else byWaba.set(unit.waba, [unit]);
  }
  return Object.fromEntries([...byWaba].map(([waba, list]) => [waba, currencyTotalsOf(list)]));
}

/**
 * The rows of a rating under the scope's WABAs, and the other WABAs it placed rows under. A rating may write
 * only its scope's rows (the stores refuse others: `assertInScope`); refusing the whole rating would leave the
 * portfolio's bill behind for good, since the same events give the same rows every time.
 */
export function keepInScope(
  result: RatingOutput,
  scope: readonly string[],
): { kept: RatingOutput; outside: string[] } {
  const inScope = new Set(scope);
  const outside = new Set<string>();
  const isKept = (waba: string | null) => {
    if (waba === null || inScope.has(waba)) return true;
    outside.add(waba);
    return false;
  };
  const units = result.units.filter((unit) => isKept(unit.waba));
  const pending = result.pending.filter((item) => isKept(item.waba));
  const findings = result.findings.filter((finding) =>
    isKept(typeof finding.waba === 'string' ? finding.waba : null),
  );
  if (outside.size === 0) return { kept: result, outside: [] };
  return { kept: { ...result, units, pending, findings }, outside: [...outside].sort() };
}

/** Rates a scope's events with the service's pricing: the one rating call of live, re-rate and explain. */
export function rateWithPricing(
  pricing: PricingSetup,
  events: readonly CoreEvent[],
  options: {
    asOfRules?: Era;
    rateBook?: RateBook;
    withDecisions?: boolean;
    trace?: { user: string; business?: string };
  } = {},
): RatingOutput {
  return rateEvents(events, {
    accountFor: accountBookFor(pricing.accounts, events).accountFor,
    listedWabas: new Set(pricing.accounts.map((account) => account.waba)),
    rateBook: options.rateBook ?? pricing.rateBook,
    markets: pricing.markets,
    ...(options.asOfRules ? { asOfRules: options.asOfRules } : {}),
    ...(pricing.isReportedRulesEnabled === undefined
      ? {}
      : { isReportedRulesEnabled: pricing.isReportedRulesEnabled }),
    ...(options.withDecisions ? { withDecisions: true } : {}),
    ...(options.trace ? { trace: options.trace } : {}),
  });
}

const CLOSE_GRACE_MS = 5_000;

/**
 * The rows of a full live rating cross from the worker in parts of this many, each sent once the server's
 * thread has taken the last: the whole of a 600,000-event portfolio in one message took seconds to read in
 * the server's thread (a structured clone is read at once), and webhooks waited as long.
 */
export const RATING_PART_ROWS = 5_000;

const scopeKey = (scope: readonly string[]) => scope.join('\n');

/** Live rating on the calling thread: the server's, or the worker's (which runs this one inside). */
export function createInProcessLiveRater(store: Store, pricing: PricingSetup): LiveRater {
  /** Scope → what its last committed live rating stored; absent = unknown, rewrite all. */
  const stored = new Map<string, StoredRating>();
  /** Scope → its last rating, until the caller says whether its write committed. */
  const unsettled = new Map<string, StoredRating>();
  const book = createAccountBook(pricing.accounts);
  const portfolioOf = (waba: string) => book.accountFor(waba).portfolio;
  const exports = new KeptExports();
  let nextRef = 1;
  return {
    where: 'server thread',
    async rate(scope, options = {}) {
      const key = scopeKey(scope);
      const startedMs = performance.now();
      // Read first: a change committed between this read and the listing has a higher mark, so it can only make
      // the rating look older than it is (a start re-rates it), never newer.
      const { seq: eventsSeq } = await store.readEventChanges();
      const { kept: result, outside } = keepInScope(
        rateWithPricing(pricing, await store.listEvents(scope)),
        scope,
      );
      // Read back after the events: the caller writes nothing meanwhile (its ratings are written one by one).
      const before =
        stored.get(key) ?? (options.isStoredCurrent ? await readStoredRating(store, scope) : undefined);
      stored.delete(key); // unknown until the write of this rating commits
      unsettled.set(key, storedRatingOf(result));
      return {
        totals: currencyTotalsOf(result.units),
        totalsByWaba: currencyTotalsByWabaOf(result.units),
        units: result.units.length,
        pending: result.pending.length,
        diff: before ? diffRating(before, result) : null,
        full: before ? null : { units: result.units, pending: result.pending, findings: result.findings },
        outsideScope: outside,
        eventsSeq,
        rateMs: performance.now() - startedMs,
      };
    },
    async rateScope(scope, { cards, traceVisibleWabas, ...options }) {
      const { trace } = options;
      // Read first, as a live rating does: a re-rate under the service's rules is then as current as one.
      const eventsSeq = trace ? undefined : (await store.readEventChanges()).seq;
      let events: readonly CoreEvent[] = await store.listEvents(scope);
      if (trace) {
        // A limited key's story is told by its own WABAs' events, as the store lists them (statuses naming no
        // WABA placed there included): another client's never tell it a number, nor that the user is theirs.
        const own = traceVisibleWabas ? await store.listEvents(traceVisibleWabas) : events;
        const wabas = wabasOfUserPortfolios(scope, own, trace.user, portfolioOf);
        if (wabas.length < scope.length) events = wabas.length === 0 ? [] : await store.listEvents(wabas);
      }
      let rateBook: RateBook | undefined;
      if (cards) {
        const book = createRateBook(cards);
        if (!book.ok) throw new Error(book.error.message);
        rateBook = book.value;
      }
      const output = rateWithPricing(pricing, events, { ...options, ...(rateBook ? { rateBook } : {}) });
      if (!trace) return { output, ...(eventsSeq === undefined ? {} : { eventsSeq }) };
      // A business-scoped id the rating joined to its number: the story is the number's, its failures and
      // those of messages sent to the id alike.
      const joined = output.tracedUser;
      const failed =
        joined === undefined
          ? failedOf(trace.user, events, output)
          : [
              ...new Map(
                [
                  ...failedOf(joined, events, output),
                  ...failedOf(trace.user, events, output).map((message) => ({ ...message, user: joined })),
                ].map((message) => [message.id, message]),
              ).values(),
            ].sort(bySending);
      let book: AccountBook | undefined;
      return storyOf(
        output,
        failed,
        output.tracedUser === undefined ? trace : { ...trace, user: output.tracedUser },
        (waba) => (book ??= accountBookFor(pricing.accounts, events)).accountFor(waba).timeZone,
      );
    },
    readAnalyticsBody: async (bytes) => exports.read(nextRef++, bytes),
    dropAnalytics: (ref) => exports.drop(ref),
    reconcile: (job) => reconcileStored(store, pricing, job, exports),
    estimate: (job) => estimateStored(store, pricing, job),
    settle(scope, isCommitted) {
      const key = scopeKey(scope);
      const rating = unsettled.get(key);
      unsettled.delete(key);
      if (isCommitted && rating) stored.set(key, rating);
    },
    forget(wabas) {
      const forgotten = new Set(wabas);
      for (const map of [stored, unsettled]) {
        for (const key of [...map.keys()]) {
          if (key.split('\n').some((waba) => forgotten.has(waba))) map.delete(key);
        }
      }
    },
    async close() {},
  };
}

/** The user's failed business messages, as the CLI's explain finds them (core/explain.ts UserSendLog). */
function failedOf(user: string, events: readonly CoreEvent[], output: RatingOutput): UnratedMessage[] {
  const sends = new UserSendLog(user);
  for (const event of events) sends.observe(event);
  const rated = new Set(output.timeline.flatMap((line) => (line.kind === 'message' ? [line.messageId] : [])));
  return sends.failed(rated);
}

// ---------------------------------------------------------------------------------------------------------
// The worker thread's side of the conversation (rating-worker.ts answers).

/**
 * What the worker thread starts from: the store's URL, and the pricing inputs as the server loaded them at
 * start (plain data), so that both threads price with the same accounts and cards even if the files change.
 */
export interface WorkerSetup {
  db: string;
  accounts: readonly Account[];
  cards: readonly RateCard[];
  isReportedRulesEnabled: boolean;
}

export type WorkerRequest =
  | { type: 'rate'; id: number; scope: readonly string[]; options?: LiveRatingOptions }
  | { type: 'rateScope'; id: number; scope: readonly string[]; options: ScopeRatingOptions }
  /** A reconciliation body's bytes, handed over (transferred, never copied): its export is kept there. */
  | { type: 'readAnalytics'; id: number; bytes: Uint8Array }
  | { type: 'dropAnalytics'; ref: number }
  | { type: 'reconcile'; id: number; job: ReconcileJob }
  | { type: 'estimate'; id: number; job: EstimateJob }
  | { type: 'settle'; scope: readonly string[]; isCommitted: boolean }
  | { type: 'forget'; wabas: readonly string[] }
  | { type: 'close' }
  /** The server's thread took a part of a rating's rows (`ratedPart`): the worker sends the next. */
  | { type: 'partTaken'; id: number };

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  /** A process warning raised in the worker (a deprecation a dependency triggers): the server's thread logs it. */
  | { type: 'warning'; name: string; message: string; code?: string; detail?: string }
  /**
   * A rating; `inParts`: its rows (`full`) came before it in `ratedPart` replies, and its own `full` holds only
   * the findings.
   */
  | { type: 'rated'; id: number; rating: LiveRating; inParts?: true }
  /**
   * Some of the rows of a full live rating or of a scope's whole rating (a re-rate's), one part at a time
   * (RATING_PART_ROWS), each once the last was taken.
   */
  | { type: 'ratedPart'; id: number; units: BillableUnit[]; pending: PendingMessage[] }
  /** A whole rating of a scope; `inParts`: its units and pending messages came before it (`ratedPart`). */
  | { type: 'ratedScope'; id: number; rating: ScopeRating; inParts?: true }
  | { type: 'answered'; id: number; answer: ReconcileAnswer | EstimateAnswer | AnalyticsBodyRead }
  | { type: 'error'; id: number; message: string; kind?: WorkerErrorKind };

/**
 * The errors whose class decides the answer, named as they cross the thread boundary: a worker's error
 * reaches the server's thread as a message alone, and a `MoneyRangeError` thrown while rating (an estimate
 * beyond the amounts added exactly) would be answered as a failed rating (503, "retry later": it never
 * helps) instead of as the request's own doing (400 BAD_QUERY, as app.ts answers the same error thrown in
 * the server's thread).
 */
export type WorkerErrorKind = 'money_range' | 'export_dropped';

/** The kind a worker's error is sent with (undefined: any other error, which keeps its message only). */
export function workerErrorKindOf(error: unknown): WorkerErrorKind | undefined {
  if (error instanceof MoneyRangeError) return 'money_range';
  return error instanceof ExportDroppedError ? 'export_dropped' : undefined;
}

/** A worker's error, in the server's thread: of the class its kind names, else an Error with its message. */
export function workerError(reply: { message: string; kind?: WorkerErrorKind }): Error {
  if (reply.kind === 'money_range') return new MoneyRangeError();
  if (reply.kind === 'export_dropped') return new ExportDroppedError(reply.message);
  return new Error(reply.message);
}

/**
 * The heap limit of a worker in MB: its own (`resourceLimits`, read while it ran: an exited worker's are
 * empty), else the process's (V8's flags, --max-old-space-size, are the process's).
 */
function heapLimitMb(limits: Worker['resourceLimits']): number {
  const own = limits?.maxOldGenerationSizeMb;
  if (own !== undefined && own > 0) return own;
  return Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
}

/** The compiled worker script next to this module; `null` when running from TypeScript sources (tests). */
export function ratingWorkerScript(): string | null {
  const url = new URL('./rating-worker.js', import.meta.url);
  if (!import.meta.url.endsWith('.js')) return null;
  const path = fileURLToPath(url);
  return existsSync(path) ? path : null;
}

/** Whether a second connection to `db` sees the same data (not so for an in-memory SQLite database). */
export function isSharedDatabase(db: string): boolean {
  return !/(^|:)(\/\/)?:memory:/i.test(db) && !/^sqlite:(\/\/)?$/i.test(db);
}

/** Why a rating worker died: its heap limit reached, or anything else that ended it (an uncaught error). */
export type WorkerDeathCause = 'out_of_memory' | 'crashed';

export interface WorkerRaterOptions {
  /** What the worker rates, for the log: the live rating of arrivals, or on-demand ratings. */
  role?: 'live rating' | 'on-demand rating';
  /** A worker died (it was not closed): counted in `rating_worker_deaths_total`. */
  onDeath?: (cause: WorkerDeathCause) => void;
  /** The pause before a new worker starts after the nth death in a row (the last repeats). */
  restartDelaysMs?: readonly number[];
  /** A request still unanswered after this long is said in the log (RATING_SLOW_WARNING_MS). */
  slowWarningMs?: number;
  /** performance.now() by default (tests: their own). */
  nowMs?: () => number;
  /** The worker's own heap limits (default: the process's, which --max-old-space-size sets). */
  resourceLimits?: ResourceLimits;
}

/**
 * After a worker's death, the next starts at once; after the 2nd, 3rd… death in a row (a portfolio whose
 * rating always runs out of memory, a bug that ends the thread), it waits longer each time, up to a minute:
 * each new worker reads and rates the failing portfolio again, so restarting it every second kept a core
 * busy for nothing and logged two errors a second for as long as it lasted.
 */
export const WORKER_RESTART_DELAYS_MS: readonly number[] = [0, 2_000, 5_000, 15_000, 30_000, 60_000];

/**
 * A rating still running after 5 minutes is said in the log, again every 5 minutes: a large portfolio may take
 * that long, but a worker stuck in a loop never answers, and reads of the bill wait for the live rating
 * without a word anywhere else.
 */
export const RATING_SLOW_WARNING_MS = 5 * 60_000;

/** A worker's rater that the service can also stop at once (its shutdown's bound passed). */
export interface WorkerLiveRater extends LiveRater {
  /**
   * Stops the worker now: what it was rating fails with `reason` (nothing of it was written; its portfolios'
   * stored bill stays as it was, and the next start rates it), and no request starts it again. Says
   * whether a rating (or another request) was running in it.
   */
  abort(reason: string): boolean;
}

/**
 * Ratings in a worker thread that opens its own connection to `setup.db` and builds its pricing from the
 * same accounts and rate cards as the server's. A worker that dies fails the ratings it had (the service
 * retries them) and is replaced at the next rating — at once the first time, after a growing pause when it
 * keeps dying (`WORKER_RESTART_DELAYS_MS`); the log says why it died and what to do.
 */
export function createWorkerLiveRater(
  script: string,
  setup: WorkerSetup,
  logger: Logger,
  options: WorkerRaterOptions = {},
): WorkerLiveRater {
  const role = options.role ?? 'live rating';
  const restartDelaysMs = options.restartDelaysMs ?? WORKER_RESTART_DELAYS_MS;
  const nowMs = options.nowMs ?? (() => performance.now());
  let worker: Worker | null = null;
  let ready: Promise<void> | null = null;
  let nextId = 1;
  /** Request id → the rows of its rating received so far in parts. */
  const parts = new Map<number, { units: BillableUnit[]; pending: PendingMessage[] }>();
  /** Request id → its caller (each resolves with the answer type its request asked for). */
  const waiting = new Map<
    number,
    { resolve: (rating: unknown) => void; reject: (error: Error) => void; work: string }
  >();
  /** Deaths since a worker last answered a request, the last one's cause, and when a new one may start. */
  let deathsInRow = 0;
  /**
   * What the workers that died were doing (a request's kind and scope): only an answer to one of these ends
   * the run of deaths — other portfolios' ratings, answered between the retries of the one that kills the
   * worker, say nothing of it.
   */
  const fatalWork = new Set<string>();
  let lastDeath = '';
  let restartAtMs = -Infinity;
  /** Threads that end because they were told to (closed or aborted): their exit is no death. */
  const ending = new WeakSet<Worker>();

  function died(limits: Worker['resourceLimits'], code: number, error: Error | undefined): void {
    const isOutOfMemory = (error as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
    const cause: WorkerDeathCause = isOutOfMemory ? 'out_of_memory' : 'crashed';
    deathsInRow += 1;
    for (const caller of waiting.values()) fatalWork.add(caller.work);
    const pauseMs = restartDelaysMs[Math.min(deathsInRow, restartDelaysMs.length) - 1] ?? 0;
    restartAtMs = nowMs() + pauseMs;
    const next =
      pauseMs === 0
        ? 'a new one starts at the next rating'
        : `a new one starts in ${Math.round(pauseMs / 1000)} s at the earliest (it died ${deathsInRow} times in a row)`;
    options.onDeath?.(cause);
    if (isOutOfMemory) {
      const limitMb = heapLimitMb(limits);
      lastDeath = `it ran out of memory (its heap limit: ${limitMb} MB)`;
      logger.error(
        `the ${role} worker ran out of memory (its heap limit: ${limitMb} MB): the ratings it had failed and are retried; ${next}. A portfolio whose events do not fit keeps failing and its bill stays behind (503 RATING_BEHIND): give the process more heap, about what \`wameter rate\` over that portfolio's events needs (NODE_OPTIONS=--max-old-space-size=MB before \`wameter serve\`; the worker's limit follows it), then restart`,
        {
          ...(error === undefined ? {} : errorFields(error)),
          errorCode: 'RATING_WORKER_OUT_OF_MEMORY',
          heapLimitMb: limitMb,
          deathsInRow,
        },
      );
    } else {
      lastDeath = `it stopped (exit code ${code}${error === undefined ? '' : `: ${error.message}`})`;
      logger.error(
        `the ${role} worker stopped (exit code ${code}): the ratings it had failed and are retried; ${next}`,
        {
          ...(error === undefined ? {} : errorFields(error)),
          errorCode: 'RATING_WORKER_DIED',
          exitCode: code,
          deathsInRow,
        },
      );
    }
  }

  function start(): Promise<void> {
    const thread = new Worker(script, {
      workerData: setup,
      ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits }),
    });
    worker = thread;
    let failure: Error | undefined;
    let limits: Worker['resourceLimits'];
    thread.once('online', () => (limits = thread.resourceLimits));
    ready = new Promise<void>((resolve, reject) => {
      thread.on('message', (reply: WorkerReply) => {
        if (reply.type === 'warning') {
          // In the service's log, as the server thread's own warnings are (routeProcessWarnings).
          logger.warn(reply.message, {
            warning: reply.name,
            ...(reply.code === undefined ? {} : { warningCode: reply.code }),
            ...(reply.detail === undefined ? {} : { detail: reply.detail }),
            thread: `${role} worker`,
          });
        } else if (reply.type === 'ready') resolve();
        else if (reply.type === 'failed') reject(new Error(`rating worker cannot start: ${reply.message}`));
        else if (reply.type === 'ratedPart') {
          const rows = parts.get(reply.id) ?? { units: [], pending: [] };
          for (const unit of reply.units) rows.units.push(unit);
          for (const item of reply.pending) rows.pending.push(item);
          parts.set(reply.id, rows);
          // The next part once this thread has had its turn at whatever waits (webhooks): the worker sends it
          // when told.
          setImmediate(() => thread.postMessage({ type: 'partTaken', id: reply.id } satisfies WorkerRequest));
        } else {
          if ((reply.type === 'rated' || reply.type === 'ratedScope') && reply.inParts) {
            const rows = parts.get(reply.id) ?? { units: [], pending: [] };
            parts.delete(reply.id);
            if (reply.type === 'rated') {
              reply.rating.full = { ...rows, findings: reply.rating.full?.findings ?? [] };
            } else reply.rating.output = { ...reply.rating.output, ...rows };
          }
          const caller = waiting.get(reply.id);
          waiting.delete(reply.id);
          // It did what killed its predecessors: whatever killed them is gone.
          if (caller !== undefined && (fatalWork.size === 0 || fatalWork.has(caller.work))) {
            deathsInRow = 0;
            fatalWork.clear();
          }
          if (reply.type === 'error') caller?.reject(workerError(reply));
          else caller?.resolve(reply.type === 'answered' ? reply.answer : reply.rating);
        }
      });
      // Said once, with the exit: an uncaught error is followed by the thread's exit.
      thread.on('error', (error) => {
        failure = error;
        reject(error);
      });
      thread.on('exit', (code) => {
        if (worker === thread) worker = null;
        // Asked for nothing, told to end, or ended by its own start's failure (said by the rating's error).
        const hadWork = waiting.size > 0 || failure !== undefined;
        if (!ending.has(thread) && hadWork) died(limits, code, failure);
        const error = new Error(
          failure === undefined
            ? `rating worker exited (code ${code})`
            : `rating worker exited (code ${code}): ${failure.message}`,
        );
        for (const caller of waiting.values()) caller.reject(error);
        waiting.clear();
        parts.clear();
        reject(error);
      });
    });
    return ready;
  }

  function post(request: WorkerRequest, transfer?: ArrayBuffer[]): void {
    worker?.postMessage(request, transfer);
  }

  /** Closed: no request starts a worker again (an on-demand rating still queued when the service stops). */
  let isClosed = false;
  /** Requests waiting for the worker they started to be ready (not yet in `waiting`). */
  let starting = 0;

  /** Sends a request that the worker answers (starting the worker if none runs). */
  async function ask<T>(request: (id: number) => WorkerRequest, transfer?: ArrayBuffer[]): Promise<T> {
    if (isClosed) throw new Error('the rating worker is closed: the service is stopping');
    if (!worker) {
      const waitMs = restartAtMs - nowMs();
      if (waitMs > 0) {
        throw new Error(
          `the ${role} worker died ${deathsInRow} times in a row (last: ${lastDeath}); a new one starts in ${Math.ceil(waitMs / 1000)} s`,
        );
      }
      starting += 1;
      try {
        await start();
      } finally {
        starting -= 1;
      }
    } else await ready;
    const id = nextId++;
    const message = request(id);
    const work = 'scope' in message ? `${message.type} ${scopeKey(message.scope)}` : message.type;
    const wabas = 'scope' in message ? message.scope.length : undefined;
    const startedMs = nowMs();
    const slowMs = options.slowWarningMs ?? RATING_SLOW_WARNING_MS;
    const slow = setInterval(() => {
      const minutes = Math.round((nowMs() - startedMs) / 60_000);
      logger.warn(
        `the ${role} worker has been rating for ${minutes} min: a large portfolio can take that long (each rating's debug line "rated" says how long), a worker stuck in a loop never ends${role === 'live rating' ? ' — and reads of the bill wait for the live rating' : ''}; if rating_lag_seconds keeps growing and this repeats, restart the service (its start rates every portfolio whose bill is behind)`,
        {
          errorCode: 'RATING_SLOW',
          request: message.type,
          ...(wabas === undefined ? {} : { wabas }),
          minutes,
        },
      );
    }, slowMs);
    slow.unref?.();
    return new Promise<T>((resolve, reject) => {
      waiting.set(id, {
        resolve: (rating) => {
          clearInterval(slow);
          (resolve as (rating: unknown) => void)(rating);
        },
        reject: (error) => {
          clearInterval(slow);
          reject(error);
        },
        work,
      });
      post(message, transfer);
    });
  }

  return {
    where: 'worker thread',
    rate(scope, rateOptions) {
      return ask<LiveRating>((id) => ({
        type: 'rate',
        id,
        scope,
        ...(rateOptions === undefined ? {} : { options: rateOptions }),
      }));
    },
    rateScope(scope, options) {
      return ask<ScopeRating>((id) => ({ type: 'rateScope', id, scope, options }));
    },
    readAnalyticsBody(bytes) {
      // A copy of its own to hand over (a millisecond for 4 MiB): the caller's bytes may be a slice of a
      // buffer shared with others (Node's pool), which a transfer would take from them too.
      const own = new Uint8Array(bytes);
      return ask<AnalyticsBodyRead>((id) => ({ type: 'readAnalytics', id, bytes: own }), [own.buffer]);
    },
    dropAnalytics(ref) {
      post({ type: 'dropAnalytics', ref });
    },
    reconcile(job) {
      return ask<ReconcileAnswer>((id) => ({ type: 'reconcile', id, job }));
    },
    estimate(job) {
      return ask<EstimateAnswer>((id) => ({ type: 'estimate', id, job }));
    },
    settle(scope, isCommitted) {
      post({ type: 'settle', scope, isCommitted });
    },
    forget(wabas) {
      post({ type: 'forget', wabas });
    },
    abort(reason) {
      isClosed = true;
      const thread = worker;
      if (!thread) return false;
      ending.add(thread);
      const wasBusy = waiting.size > 0 || starting > 0;
      const error = new Error(reason);
      for (const caller of waiting.values()) caller.reject(error);
      waiting.clear();
      void thread.terminate();
      return wasBusy;
    },
    async close() {
      isClosed = true;
      const thread = worker;
      if (!thread) return;
      ending.add(thread);
      const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
      post({ type: 'close' });
      // The worker closes its store and ends; one that does not within the grace is stopped.
      const grace = setTimeout(() => void thread.terminate(), CLOSE_GRACE_MS);
      await exited;
      clearTimeout(grace);
    },
  };
}
