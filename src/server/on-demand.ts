// What the service rates on demand, besides the live bill: an explanation of one user's story, a
// reconciliation with Meta, an estimate. Each reads stored events and rates them, so each runs where live
// ratings run (the rating worker thread, live-rater.ts) — never in the webhook endpoint's event loop — and
// hands back only what its answer needs, not every unit of the portfolios it rated.

import type { CoreEvent } from '../core/events.js';
import { canonicalUser } from '../core/phone.js';
import type { UnratedMessage } from '../core/explain.js';
import type { RatingOutput } from '../core/rate-events.js';
import type { AnalyticsExport, ReconciliationJson } from '../core/reconcile.js';
import type { Result } from '../core/result.js';
import { createAccountBook } from '../ingest/accounts-file.js';
import {
  estimateList,
  type EstimateError,
  type EstimateOutcome,
  type EstimateRequest,
  type RecipientList,
} from '../use-cases/estimate.js';
import { findingsOfStory, storyScopeOf } from '../use-cases/explain-findings.js';
import type { RatingSetup } from '../use-cases/load-rating-setup.js';
import { ReconcileSession, type ReconcileError, type RequestedPeriod } from '../use-cases/reconcile.js';
import type { Store } from '../store/store.js';
import type { PricingSetup } from './live-rater.js';
import { readReconciliationBody, type ReconciliationBodyRefusal } from './reconcile-body.js';

/** A reconciliation of stored events (GET / POST /v1/reconciliation). */
export interface ReconcileJob {
  /** The WABAs whose events are rated: the caller's and their portfolio mates (shared tiers, allowances). */
  scope: readonly string[];
  analytics?: AnalyticsExport;
  /**
   * Instead of `analytics`: the export that `readAnalyticsBody` read from a request's body and kept where the
   * job runs (a worker's), so that it is neither parsed nor copied in the server's thread.
   */
  analyticsRef?: number;
  analyticsWaba?: string;
  /**
   * With an export: the local days compared with it (`wameter reconcile --from/--to`), else its whole months.
   */
  period?: RequestedPeriod;
  /** The WABAs whose messages count as compared (the caller's own). */
  countedWabas: readonly string[];
}

export type ReconcileAnswer = Result<{ reconciliation: ReconciliationJson; wabas: string[] }, ReconcileError>;

/** An estimate against the state the stored events leave (POST /v1/estimate). */
export interface EstimateJob {
  /** The sending WABA's portfolio. */
  scope: readonly string[];
  recipients: RecipientList;
  request: EstimateRequest;
}

export type EstimateAnswer = Result<EstimateOutcome, EstimateError>;

/** The use-cases' rating inputs from the service's pricing (the same accounts, cards and markets). */
export function ratingSetupOf(pricing: PricingSetup): RatingSetup {
  return {
    accounts: [...pricing.accounts],
    accountBook: createAccountBook(pricing.accounts),
    cards: [...pricing.cards],
    rateBook: pricing.rateBook,
    markets: pricing.markets,
    isReportedRulesEnabled: pricing.isReportedRulesEnabled ?? true,
  };
}

/** A reconciliation body read where on-demand ratings run: the ref of its kept export, and its WABA. */
export type AnalyticsBodyRead = Result<{ ref: number; waba?: string }, ReconciliationBodyRefusal>;

/**
 * How many exports a worker keeps at most, and how many bytes of request bodies they were read from. Each is
 * kept only between its body's read and its reconciliation's turn, so a few per client at most are kept at
 * once (4 waiting or running per API key, fair-queue.ts); the bound is for those a request never came back
 * for (its answer lost between the threads), which nothing else would ever drop, and for many clients each
 * sending large exports at once. A parsed export takes several times its body's bytes.
 */
export const KEPT_EXPORTS_LIMITS: Readonly<KeptExportsLimits> = { count: 32, bytes: 64 * 1024 * 1024 };

export interface KeptExportsLimits {
  /** Exports kept at most. */
  count: number;
  /** Bytes of the bodies they were read from, at most (the newest is kept whatever its size). */
  bytes: number;
}

/** How many refs of exports dropped for the limits are remembered, to say so to their requests. */
const EVICTED_REFS_REMEMBERED = 1_000;

/**
 * The exports read from reconciliation bodies (`readReconciliationBody`) and kept, by ref, for the
 * reconciliation that follows once the route has checked the key may read their WABA. Each is taken by that
 * reconciliation, or dropped when the route answers without one (a WABA not the key's). Past the limits, the
 * oldest are dropped: its request fails (503, the client sends it again) rather than the worker running out
 * of memory.
 */
/**
 * The export a reconciliation request's body held was dropped for the limits before the worker reached it:
 * the server was busy, not the store failing — answered 503 `SERVER_BUSY` with Retry-After, so the client sends
 * the request again (never counted as a store error).
 */
export class ExportDroppedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportDroppedError';
  }
}

export class KeptExports {
  private readonly kept = new Map<number, { exported: AnalyticsExport; bytes: number }>();
  private keptBytes = 0;
  /** Refs dropped for the limits, oldest first (at most EVICTED_REFS_REMEMBERED). */
  private readonly evicted = new Set<number>();

  constructor(private readonly limits: KeptExportsLimits = KEPT_EXPORTS_LIMITS) {}

  /** Reads `bytes` and, when they hold an export, keeps it under `ref`, dropping the oldest past the limits. */
  read(ref: number, bytes: Uint8Array): AnalyticsBodyRead {
    const read = readReconciliationBody(bytes);
    if (!read.ok) return read;
    this.kept.set(ref, { exported: read.value.export, bytes: bytes.byteLength });
    this.keptBytes += bytes.byteLength;
    for (const [oldest] of this.kept) {
      if (oldest === ref) break;
      if (this.kept.size <= this.limits.count && this.keptBytes <= this.limits.bytes) break;
      this.forget(oldest);
      this.evicted.add(oldest);
      if (this.evicted.size > EVICTED_REFS_REMEMBERED)
        this.evicted.delete(this.evicted.values().next().value!);
    }
    return { ok: true, value: { ref, ...(read.value.waba === undefined ? {} : { waba: read.value.waba }) } };
  }

  /** The export kept under `ref`, no longer kept. */
  take(ref: number): AnalyticsExport {
    const kept = this.kept.get(ref);
    if (kept === undefined) {
      if (this.evicted.delete(ref)) {
        throw new ExportDroppedError(
          `the analytics export read from this request's body was dropped before its reconciliation's turn: more than ${this.limits.count} exports, or ${this.limits.bytes / (1024 * 1024)} MiB of them, were waiting at once; send the request again`,
        );
      }
      // Kept by a worker that stopped since (its successor keeps nothing of it): the request fails as one
      // whose rating failed, and the client sends it again.
      throw new Error(`the analytics export read from this request's body is no longer kept (ref ${ref})`);
    }
    this.forget(ref);
    return kept.exported;
  }

  drop(ref: number): void {
    this.forget(ref);
    this.evicted.delete(ref);
  }

  private forget(ref: number): void {
    const kept = this.kept.get(ref);
    if (kept === undefined) return;
    this.kept.delete(ref);
    this.keptBytes -= kept.bytes;
  }

  /** Exports kept now (tests: none is left behind). */
  get size(): number {
    return this.kept.size;
  }
}

export async function reconcileStored(
  store: Store,
  pricing: PricingSetup,
  job: ReconcileJob,
  exports?: KeptExports,
) {
  const analytics =
    job.analytics ??
    (job.analyticsRef === undefined ? undefined : (exports ?? new KeptExports()).take(job.analyticsRef));
  const session = new ReconcileSession(ratingSetupOf(pricing));
  for (const event of await store.listEvents(job.scope)) session.add(event);
  return session.finish(
    analytics,
    job.analyticsWaba,
    job.period ?? {},
    job.countedWabas,
  ) satisfies ReconcileAnswer;
}

export async function estimateStored(
  store: Store,
  pricing: PricingSetup,
  job: EstimateJob,
): Promise<EstimateAnswer> {
  const events = await store.listEvents(job.scope);
  return estimateList(
    job.recipients,
    async (add) => {
      for (const event of events) add(event);
    },
    ratingSetupOf(pricing),
    job.request,
  );
}

/**
 * The WABAs of `scope` whose events decide one user's story: those of every portfolio where the user has an
 * event (their number compared as the rater pairs it, `canonicalUser`; for a business-scoped id, also the
 * numbers events join it to) — a portfolio is rated on its own
 * (live ratings never mix two), so the others change nothing of it. The caller lists these WABAs' events
 * again, as a live rating lists a portfolio's (statuses naming no WABA placed there included). Every WABA of
 * `scope` when one of the user's events names no WABA (its portfolio is not known before rating).
 */
export function wabasOfUserPortfolios(
  scope: readonly string[],
  events: readonly CoreEvent[],
  user: string,
  portfolioOf: (waba: string) => string,
): readonly string[] {
  // A business-scoped id asked for is named beside the numbers it is joined to (`from_user_id`, contacts):
  // the story is theirs, wherever `events` are (for a key limited to some WABAs, theirs alone: the caller's).
  const asked = new Set([canonicalUser(user)]);
  for (const event of events) {
    if ('scopedUserId' in event && event.scopedUserId === user && event.user !== undefined) {
      asked.add(canonicalUser(event.user));
    }
  }
  // Each number written one way is placed once (a portfolio's events name its users thousands of times).
  const isAsked = new Map<string, boolean>();
  const isTheUser = (written: string) => {
    let answer = isAsked.get(written);
    if (answer === undefined) isAsked.set(written, (answer = asked.has(canonicalUser(written))));
    return answer;
  };
  const portfolios = new Set<string>();
  for (const event of events) {
    const isNamed =
      ('user' in event && event.user !== undefined && isTheUser(event.user)) ||
      ('scopedUserId' in event && event.scopedUserId === user);
    if (!isNamed) continue;
    if (event.waba === undefined) return scope;
    portfolios.add(portfolioOf(event.waba));
  }
  return scope.filter((waba) => portfolios.has(portfolioOf(waba)));
}

/**
 * A traced rating cut down to the traced user's story (of one business number, when one was asked): their
 * units, pending and failed messages and decisions, and the findings about their story. The caller narrows
 * it further to the WABAs it may read; a finding of the story it tells is always among these (a smaller
 * story's findings are a subset of a larger one's).
 */
export function storyOf(
  output: RatingOutput,
  failed: readonly UnratedMessage[],
  trace: { user: string; business?: string },
  /** Each WABA's time zone, as the rating used it. */
  timeZoneOf: (waba: string) => string,
): { output: RatingOutput; failed: UnratedMessage[] } {
  const isTraced = (item: { user: string; business: string }) =>
    item.user === trace.user && (trace.business === undefined || item.business === trace.business);
  const units = output.units.filter(isTraced);
  const pending = output.pending.filter(isTraced);
  const failedOfStory = failed.filter(isTraced);
  const timeline =
    trace.business === undefined
      ? output.timeline
      : output.timeline.filter((entry) => entry.business === trace.business);
  const story = storyScopeOf(
    trace.user,
    { timeline, unrated: [...pending, ...failedOfStory], units },
    timeZoneOf,
  );
  return {
    output: {
      ...output,
      units,
      pending,
      timeline,
      decisions: output.decisions.filter(isTraced),
      findings: findingsOfStory(output.findings, story),
    },
    failed: failedOfStory,
  };
}
