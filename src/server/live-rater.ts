// Live rating of one portfolio: read its stored events, rate them all (the same `rateEvents` as `wameter
// rate`), and say what to write — only the rows that changed since the last rating that was stored, or
// everything when that is not known. Runs in the server's process, or in a worker thread with its own store
// connection (rating-worker.ts) so that a long rating never blocks the webhook endpoint's event loop.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
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
  rateMs: number;
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
  rate(scope: readonly string[]): Promise<LiveRating>;
  rateScope(scope: readonly string[], options: ScopeRatingOptions): Promise<ScopeRating>;
  reconcile(job: ReconcileJob): Promise<ReconcileAnswer>;
  estimate(job: EstimateJob): Promise<EstimateAnswer>;
  /** The last rating of `scope` was written (`true`) or its write failed (`false`: rewrite all next time). */
  settle(scope: readonly string[], isCommitted: boolean): void;
  /** The stored units no longer are what live ratings wrote (a re-rate): the next ones rewrite everything. */
  forgetAll(): void;
  close(): Promise<void>;
}

/** What a scope's last stored rating wrote, kept to diff the next rating against without reading it back. */
export interface StoredRating {
  units: Map<string, BillableUnit>;
  pending: Map<string, PendingMessage>;
  findings: string;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  if (typeof a === 'object' && typeof b === 'object' && a !== null && b !== null)
    return JSON.stringify(a) === JSON.stringify(b);
  return false;
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
    units: new Map(result.units.map((unit) => [rowKeyOf(unit), unit])),
    pending: new Map(result.pending.map((item) => [rowKeyOf(item), item])),
    findings: JSON.stringify(result.findings),
  };
}

/**
 * A stored row's key: WABA and id. An id alone is not one: two WABAs' events may name one message id
 * (MESSAGE_OF_TWO_WABAS), and each WABA then has its own unit of that id.
 */
function rowKeyOf(row: { waba: string; id: string }): string {
  return `${row.waba}\u0000${row.id}`;
}

/** The rows to write so that what `before` stored becomes `after`: new or changed rows, and vanished ones. */
export function diffRating(
  before: StoredRating,
  after: { units: readonly BillableUnit[]; pending: readonly PendingMessage[]; findings: readonly Finding[] },
): RatingDiff {
  const diffByKey = <T extends { waba: string; id: string }>(old: Map<string, T>, next: readonly T[]) => {
    const upsert: T[] = [];
    const seen = new Set<string>();
    for (const item of next) {
      const key = rowKeyOf(item);
      seen.add(key);
      const previous = old.get(key);
      if (!previous || !sameRecord(previous, item)) upsert.push(item);
    }
    const removed: RowKey[] = [];
    for (const [key, item] of old) if (!seen.has(key)) removed.push({ waba: item.waba, id: item.id });
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

const scopeKey = (scope: readonly string[]) => scope.join('\n');

/** Live rating on the calling thread: the server's, or the worker's (which runs this one inside). */
export function createInProcessLiveRater(store: Store, pricing: PricingSetup): LiveRater {
  /** Scope → what its last committed live rating stored; absent = unknown, rewrite all. */
  const stored = new Map<string, StoredRating>();
  /** Scope → its last rating, until the caller says whether its write committed. */
  const unsettled = new Map<string, StoredRating>();
  const book = createAccountBook(pricing.accounts);
  const portfolioOf = (waba: string) => book.accountFor(waba).portfolio;
  return {
    where: 'server thread',
    async rate(scope) {
      const key = scopeKey(scope);
      const startedMs = performance.now();
      const { kept: result, outside } = keepInScope(
        rateWithPricing(pricing, await store.listEvents(scope)),
        scope,
      );
      const before = stored.get(key);
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
        rateMs: performance.now() - startedMs,
      };
    },
    async rateScope(scope, { cards, traceVisibleWabas, ...options }) {
      const { trace } = options;
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
      if (!trace) return { output };
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
      return storyOf(
        output,
        failed,
        output.tracedUser === undefined ? trace : { ...trace, user: output.tracedUser },
      );
    },
    reconcile: (job) => reconcileStored(store, pricing, job),
    estimate: (job) => estimateStored(store, pricing, job),
    settle(scope, isCommitted) {
      const key = scopeKey(scope);
      const rating = unsettled.get(key);
      unsettled.delete(key);
      if (isCommitted && rating) stored.set(key, rating);
    },
    forgetAll() {
      stored.clear();
      unsettled.clear();
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
  | { type: 'rate'; id: number; scope: readonly string[] }
  | { type: 'rateScope'; id: number; scope: readonly string[]; options: ScopeRatingOptions }
  | { type: 'reconcile'; id: number; job: ReconcileJob }
  | { type: 'estimate'; id: number; job: EstimateJob }
  | { type: 'settle'; scope: readonly string[]; isCommitted: boolean }
  | { type: 'forgetAll' }
  | { type: 'close' };

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'rated'; id: number; rating: LiveRating }
  | { type: 'ratedScope'; id: number; rating: ScopeRating }
  | { type: 'answered'; id: number; answer: ReconcileAnswer | EstimateAnswer }
  | { type: 'error'; id: number; message: string; kind?: WorkerErrorKind };

/**
 * The errors whose class decides the answer, named as they cross the thread boundary: a worker's error
 * reaches the server's thread as a message alone, and a `MoneyRangeError` thrown while rating (an estimate
 * beyond the amounts added exactly) would be answered as a failed rating (503, "retry later": it never
 * helps) instead of as the request's own doing (400 BAD_QUERY, as app.ts answers the same error thrown in
 * the server's thread).
 */
export type WorkerErrorKind = 'money_range';

/** The kind a worker's error is sent with (undefined: any other error, which keeps its message only). */
export function workerErrorKindOf(error: unknown): WorkerErrorKind | undefined {
  return error instanceof MoneyRangeError ? 'money_range' : undefined;
}

/** A worker's error, in the server's thread: of the class its kind names, else an Error with its message. */
export function workerError(reply: { message: string; kind?: WorkerErrorKind }): Error {
  if (reply.kind === 'money_range') return new MoneyRangeError();
  return new Error(reply.message);
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

/**
 * Ratings in a worker thread that opens its own connection to `setup.db` and builds its pricing from the
 * same accounts and rate cards as the server's. A worker that dies fails the ratings it had (the service
 * retries them) and is replaced at the next rating.
 */
export function createWorkerLiveRater(script: string, setup: WorkerSetup, logger: Logger): LiveRater {
  let worker: Worker | null = null;
  let ready: Promise<void> | null = null;
  let nextId = 1;
  /** Request id → its caller (each resolves with the answer type its request asked for). */
  const waiting = new Map<number, { resolve: (rating: unknown) => void; reject: (error: Error) => void }>();

  function start(): Promise<void> {
    const thread = new Worker(script, { workerData: setup });
    worker = thread;
    ready = new Promise<void>((resolve, reject) => {
      thread.on('message', (reply: WorkerReply) => {
        if (reply.type === 'ready') resolve();
        else if (reply.type === 'failed') reject(new Error(`rating worker cannot start: ${reply.message}`));
        else {
          const caller = waiting.get(reply.id);
          waiting.delete(reply.id);
          if (reply.type === 'error') caller?.reject(workerError(reply));
          else caller?.resolve(reply.type === 'answered' ? reply.answer : reply.rating);
        }
      });
      thread.on('error', (error) => {
        logger.error('rating worker failed', errorFields(error));
        reject(error);
      });
      thread.on('exit', (code) => {
        if (worker === thread) worker = null;
        const error = new Error(`rating worker exited (code ${code})`);
        for (const caller of waiting.values()) caller.reject(error);
        waiting.clear();
        reject(error);
      });
    });
    return ready;
  }

  function post(request: WorkerRequest): void {
    worker?.postMessage(request);
  }

  /** Closed: no request starts a worker again (an on-demand rating still queued when the service stops). */
  let isClosed = false;

  /** Sends a request that the worker answers (starting the worker if none runs). */
  async function ask<T>(request: (id: number) => WorkerRequest): Promise<T> {
    if (isClosed) throw new Error('the rating worker is closed: the service is stopping');
    if (!worker) await start();
    else await ready;
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      waiting.set(id, { resolve: resolve as (rating: unknown) => void, reject });
      post(request(id));
    });
  }

  return {
    where: 'worker thread',
    rate(scope) {
      return ask<LiveRating>((id) => ({ type: 'rate', id, scope }));
    },
    rateScope(scope, options) {
      return ask<ScopeRating>((id) => ({ type: 'rateScope', id, scope, options }));
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
    forgetAll() {
      post({ type: 'forgetAll' });
    },
    async close() {
      isClosed = true;
      const thread = worker;
      if (!thread) return;
      const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
      post({ type: 'close' });
      // The worker closes its store and ends; one that does not within the grace is stopped.
      const grace = setTimeout(() => void thread.terminate(), CLOSE_GRACE_MS);
      await exited;
      clearTimeout(grace);
    },
  };
}
