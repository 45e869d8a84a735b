// Reconciliation with Meta, from files: rates the events with one decision per message (each carrying what
// Meta's status webhook said), notes which messages had a send log line or a webhook, reads an optional
// analytics export, and hands everything to core/reconcile. Used by `wameter reconcile` and the service.

import { readFile } from 'node:fs/promises';
import { defaultAccount, type CoreEvent } from '../core/events.js';
import { Rater, type RatingOptions } from '../core/rate-events.js';
import {
  comparedPeriod,
  parseAnalyticsExport,
  reconcile,
  type AnalyticsExport,
  type ReconciliationJson,
} from '../core/reconcile.js';
import { err, ok, type Result } from '../core/result.js';
import type { BillableUnit } from '../core/units.js';
import {
  readEventSources,
  type IgnoredNote,
  type ReadSummary,
  type SourceError,
} from '../ingest/read-events.js';
import { jsonSyntaxError } from '../ingest/json-syntax-error.js';
import { decodeUtf8File, notUtf8Words } from '../ingest/utf8.js';
import type { RatingSetup } from './load-rating-setup.js';

export type ReconcileErrorCode =
  /** The analytics file cannot be read (missing, not permitted). */
  | 'ANALYTICS_UNREADABLE'
  /** The analytics file is not JSON, or not a conversation_analytics / pricing_analytics export. */
  | 'UNRECOGNISED_ANALYTICS'
  /**
   * The export's id names a WABA the events do not hold; or the export names none and the events hold several
   * (or none): say which one it describes (`--waba`).
   */
  | 'ANALYTICS_WABA_UNKNOWN'
  /** A requested period (`--from` / `--to`) is not a pair of dates, or ends before it starts. */
  | 'BAD_PERIOD'
  /** A requested period holds only part of one of Meta's data points (a MONTHLY point, a mid-month bound). */
  | 'ANALYTICS_PERIOD_CUTS_POINT'
  /** The export has no data points (so no period of its own) and no period was requested. */
  | 'ANALYTICS_PERIOD_UNKNOWN'
  /** The WABA asked for (`--waba`) has no events in the input: nothing would be compared with Meta for it. */
  | 'WABA_NOT_IN_EVENTS';

/** The local days to compare with an analytics export, when not the whole months its data points span. */
export interface RequestedPeriod {
  /** First local day (YYYY-MM-DD, in the WABA's time zone). */
  from?: string;
  /** Last local day, inclusive. */
  to?: string;
}

export interface ReconcileError {
  code: ReconcileErrorCode;
  message: string;
}

/** Reads Meta's analytics answer saved as JSON, with errors that name the file and what is wrong. */
export async function loadAnalyticsExport(path: string): Promise<Result<AnalyticsExport, ReconcileError>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return err({
      code: 'ANALYTICS_UNREADABLE',
      message: `cannot read analytics export ${path}${code ? ` (${code})` : ''}: check the path`,
    });
  }
  const text = decodeUtf8File(bytes);
  if (!text.ok) {
    return err({
      code: 'ANALYTICS_UNREADABLE',
      message: `cannot read analytics export ${path}: it ${notUtf8Words(bytes, text.error)}`,
    });
  }
  const json = text.value.replace(/^\uFEFF/, '');
  if (json.trim() === '') {
    return err({
      code: 'UNRECOGNISED_ANALYTICS',
      message: `${path} is empty: check that it is the file you meant (Meta's Graph API answer, saved as it came)`,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    // By line and column (a download cut short ends early): JSON.parse says only an offset.
    const syntax = jsonSyntaxError(json);
    const why =
      syntax === undefined
        ? ` (${(error as Error).message})`
        : ` at line ${syntax.line}, column ${syntax.column}: ${syntax.problem}`;
    return err({
      code: 'UNRECOGNISED_ANALYTICS',
      message: `${path} is not JSON${why}; save Meta's Graph API answer as it came`,
    });
  }
  const parsed = parseAnalyticsExport(value);
  if (!parsed.ok) return err({ code: 'UNRECOGNISED_ANALYTICS', message: `${path}: ${parsed.error.message}` });
  return ok(parsed.value);
}

/** Feeds events to a rater that keeps decisions, and remembers the evidence reconciliation needs. */
export class ReconcileSession {
  private readonly rater: Rater;
  private readonly units: BillableUnit[] = [];
  private readonly sentIds = new Set<string>();
  private readonly statusIds = new Set<string>();
  private readonly wabasWithSendLog = new Set<string>();
  private readonly wabasWithPricedStatuses = new Set<string>();
  private readonly wabaOfStatus = new Map<string, string>();
  private readonly wabas = new Set<string>();

  constructor(private readonly setup: RatingSetup) {
    const accounts = new Map(setup.accounts.map((a) => [a.waba, a]));
    const options: RatingOptions = {
      accountFor: (waba) => accounts.get(waba) ?? defaultAccount(waba),
      listedWabas: new Set(accounts.keys()),
      rateBook: setup.rateBook,
      markets: setup.markets,
      isReportedRulesEnabled: setup.isReportedRulesEnabled,
      withDecisions: true,
    };
    this.rater = new Rater(options, { unit: (u) => this.units.push(u), pending: () => {} });
  }

  add(event: CoreEvent): void {
    if (event.kind === 'outbound') {
      this.sentIds.add(event.id);
      this.wabasWithSendLog.add(event.waba);
      this.wabas.add(event.waba);
    } else if (event.kind === 'status') {
      this.statusIds.add(event.id);
      if (event.pricing && event.waba) this.wabasWithPricedStatuses.add(event.waba);
      else if (event.pricing) this.wabaOfStatus.set(event.id, '');
      if (event.waba) this.wabas.add(event.waba);
    } else if (event.kind === 'inbound') {
      this.wabas.add(event.waba);
    }
    this.rater.add(event);
  }

  /**
   * Rates what was added and compares it with Meta; `analyticsWaba` overrides the export's own id, `period`
   * the days compared with the export (by default the whole months its data points span).
   */
  finish(
    analytics?: AnalyticsExport,
    analyticsWaba?: string,
    period: RequestedPeriod = {},
    countedWabas?: readonly string[],
  ): Result<{ reconciliation: ReconciliationJson; wabas: string[] }, ReconcileError> {
    const summary = this.rater.finish();
    // A priced status line that named no WABA belongs to its message's WABA (known once rated).
    if (this.wabaOfStatus.size > 0) {
      for (const decision of summary.decisions) {
        if (this.wabaOfStatus.has(decision.messageId) && decision.waba)
          this.wabasWithPricedStatuses.add(decision.waba);
      }
    }
    for (const unit of this.units) this.wabas.add(unit.waba);
    const wabas = [...this.wabas].filter((w) => w !== '').sort();
    const accounts = new Map(this.setup.accounts.map((a) => [a.waba, a]));
    const accountOf = (waba: string) => accounts.get(waba) ?? defaultAccount(waba);
    let target: Parameters<typeof reconcile>[0]['analytics'];
    if (analytics) {
      // The WABA asked for (--waba), else the export's own id when the events hold it, else — only for an
      // export that carries no id — the events' only WABA. An id naming a WABA the events lack is another
      // WABA's export (or the wrong events): compared with the events' WABA, every bucket would be wrong.
      let waba: string | undefined;
      if (analyticsWaba !== undefined) waba = analyticsWaba;
      else if (analytics.waba !== undefined)
        waba = wabas.includes(analytics.waba) ? analytics.waba : undefined;
      else if (wabas.length === 1) waba = wabas[0];
      if (waba === undefined) {
        const held = `the events hold ${wabas.length} WABA(s)${wabas.length > 0 ? ` (${wabas.slice(0, 5).join(', ')}${wabas.length > 5 ? ', …' : ''})` : ''}`;
        return err({
          code: 'ANALYTICS_WABA_UNKNOWN',
          message:
            analytics.waba !== undefined
              ? `the analytics export names WABA ${analytics.waba}, which is not in the events, and ${held}: give the events of WABA ${analytics.waba}, or the export of the events' WABA (--waba compares it with one of theirs anyway)`
              : `the analytics export names no WABA and ${held}: pass --waba to say which one it describes`,
        });
      }
      const chosen = comparedPeriod(analytics, accountOf(waba).timeZone, period);
      if (!chosen.ok) return chosen;
      target = { export: analytics, waba, period: chosen.value };
    }
    const reconciliation = reconcile({
      decisions: summary.decisions,
      units: this.units,
      findings: summary.findings,
      evidence: {
        sentIds: this.sentIds,
        statusIds: this.statusIds,
        wabasWithSendLog: this.wabasWithSendLog,
        wabasWithPricedStatuses: this.wabasWithPricedStatuses,
      },
      timeZoneOf: (waba) => accountOf(waba).timeZone,
      billingCurrencyOf: (waba) => ({
        currency: accountOf(waba).currency,
        source: accounts.has(waba) ? 'accounts' : 'default',
      }),
      isReportedRulesEnabled: this.setup.isReportedRulesEnabled,
      ...(target ? { analytics: target } : {}),
      ...(countedWabas ? { countedWabas } : {}),
    });
    return ok({ reconciliation, wabas });
  }
}

/** Why messages rated from Meta's own category (finding CATEGORY_FROM_WEBHOOK) are not counted as checked. */
const CATEGORY_FROM_WEBHOOK_WHY =
  "no send log line: their category is the one of Meta's status webhook, so comparing it with that webhook proves nothing";

/**
 * Why nothing could be compared with Meta, or `undefined` when something was. With no message carrying Meta's
 * pricing (or only messages rated from Meta's own category: compared with the webhook they came from) and no
 * analytics bucket compared, "no differences" is no evidence of agreement and must not pass for it.
 */
export function whyNothingWasChecked(
  reconciliation: ReconciliationJson,
  hasAnalytics: boolean,
  /** How this caller takes Meta's analytics export (the CLI's flag, the dashboard's upload). */
  analyticsInput = '--analytics',
): string | undefined {
  const { checked, differences } = reconciliation;
  if (differences.length > 0 || messagesCompared(checked) > 0 || checked.buckets > 0) return undefined;
  const fromWebhook = checked.category_from_webhook;
  const reasons: string[] = [];
  // With an export, `checked` counts the messages delivered in its period: others may be in the input.
  const { analytics } = reconciliation;
  if (checked.messages === 0) {
    reasons.push(
      analytics
        ? `no business message was delivered in the period compared (${analytics.period.from}..${analytics.period.to})`
        : 'the input holds no delivered business message',
    );
  } else if (checked.unverifiable === checked.messages) {
    reasons.push(
      `none of the ${checked.messages} delivered message(s) has a status webhook with Meta's pricing or conversation (a send log alone has none; Graph API v24+ webhooks carry no pricing)`,
    );
  } else if (checked.unverifiable > 0) {
    reasons.push(
      `${checked.unverifiable} of the ${checked.messages} delivered message(s) have no status webhook with Meta's pricing or conversation`,
    );
  }
  if (fromWebhook > 0) {
    reasons.push(
      `${fromWebhook} delivered message(s) were rated from Meta's own category (${CATEGORY_FROM_WEBHOOK_WHY})`,
    );
  }
  // A conversation_analytics export of days billed per message: wameter's units there are not Meta's to count.
  const perMessage = analytics?.not_compared.other_pricing_model.units ?? 0;
  const buckets = hasAnalytics
    ? `the analytics export has no day × country × category bucket in the events' period${
        analytics && perMessage > 0
          ? ` (the ${perMessage} unit(s) of WABA ${analytics.waba} in the period were billed per message, which Meta's ${analytics.kind} does not count: its pricing_analytics does)`
          : ''
      }`
    : `no analytics export was given (${analyticsInput})`;
  const feed =
    fromWebhook > 0
      ? "Feed the send log (outbound lines) beside Meta's status webhooks"
      : "Feed Meta's status webhooks with their pricing";
  return `nothing could be checked against Meta: ${reasons.join('; ')}, and ${buckets}. ${feed}, or give Meta's pricing_analytics export (${analyticsInput})`;
}

/** Delivered messages actually checked against an independent verdict of Meta's (contract §7, `checked`). */
export function messagesCompared(checked: ReconciliationJson['checked']): number {
  return checked.messages - checked.unverifiable - checked.category_from_webhook;
}

export interface ReconcileSourcesOptions {
  analyticsPath?: string;
  /** The WABA the analytics export describes, when it does not say or the events hold several. */
  analyticsWaba?: string;
  /** The local days compared with the analytics export (default: the whole months its points span). */
  period?: RequestedPeriod;
  onSourceError?(error: SourceError): void;
  /** Notes of the reader (an empty source…), as rateSources passes them. */
  onIgnored?(note: IgnoredNote): void;
  stdin?: NodeJS.ReadableStream;
}

export interface ReconcileOutcome {
  reconciliation: ReconciliationJson;
  read: ReadSummary;
  wabas: string[];
}

/** Reads event files (and an optional analytics export) and reconciles them with Meta's view. */
export async function reconcileSources(
  sources: readonly string[],
  setup: RatingSetup,
  options: ReconcileSourcesOptions = {},
): Promise<Result<ReconcileOutcome, ReconcileError>> {
  let analytics: AnalyticsExport | undefined;
  if (options.analyticsPath !== undefined) {
    const loaded = await loadAnalyticsExport(options.analyticsPath);
    if (!loaded.ok) return loaded;
    analytics = loaded.value;
  }
  const session = new ReconcileSession(setup);
  const read = await readEventSources(
    sources,
    {
      onEvents(events) {
        for (const event of events) session.add(event);
      },
      onError(error) {
        options.onSourceError?.(error);
      },
      onIgnored(note) {
        options.onIgnored?.(note);
      },
    },
    options.stdin ? { stdin: options.stdin } : {},
  );
  const finished = session.finish(analytics, options.analyticsWaba, options.period);
  if (!finished.ok) return finished;
  // A WABA the input does not hold (a typo, the wrong files) would set Meta's every bucket against nothing:
  // refused, naming the WABAs the input has, as `rerate --waba` does for the store.
  const asked = options.analyticsWaba;
  if (asked !== undefined && !finished.value.wabas.includes(asked)) {
    return err({ code: 'WABA_NOT_IN_EVENTS', message: wabaNotInEvents(asked, finished.value.wabas) });
  }
  return ok({ ...finished.value, read });
}

/** How many WABAs of the input a refusal names before it says how many more there are. */
const WABAS_NAMED = 20;

function wabaNotInEvents(asked: string, wabas: readonly string[]): string {
  if (wabas.length === 0) {
    return `the input holds no events of WABA ${asked}, nor of any other: nothing was compared; check the event sources`;
  }
  const named = wabas.slice(0, WABAS_NAMED).join(', ');
  const more = wabas.length > WABAS_NAMED ? ` and ${wabas.length - WABAS_NAMED} more` : '';
  return `the input holds no events of WABA ${asked}: nothing was compared; it holds events of ${wabas.length} WABA(s): ${named}${more} (give --waba one of them, or feed that WABA's events too)`;
}
