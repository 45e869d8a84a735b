// `wameter reconcile`: wameter's verdict per message against Meta's status webhooks, and its totals per
// day × country × category against a Meta analytics export; each difference with its likely cause.

import { Command, InvalidArgumentError } from 'commander';
import {
  isCalendarDate,
  type AnalyticsComparisonJson,
  type BucketJson,
  type ByCurrencyJson,
  type Difference,
  type ReconciliationJson,
} from '../core/reconcile.js';
import { messagesCompared, reconcileSources, whyNothingWasChecked } from '../use-cases/reconcile.js';
import { eventSources, ratingSetupFrom } from './rating-inputs.js';
import { CliError, EXIT } from './exit-codes.js';
import { terminalSafe, type CliIo } from './io.js';
import {
  RATE_CARDS_LIST_HELP,
  choice,
  collectPaths,
  optionValue,
  pathArgument,
  watchFlagsBeforeOperands,
  watchRateCardOperands,
} from './options.js';
import { createSourceErrorReporter } from './source-errors.js';

interface ReconcileFlags {
  analytics?: string;
  waba?: string;
  from?: string;
  to?: string;
  accounts?: string;
  rateCards?: string[];
  format: 'table' | 'json';
  reported: boolean;
}

export function registerReconcileCommand(program: Command, io: CliIo): void {
  const command = program.command('reconcile');
  const flagBefore = watchFlagsBeforeOperands(command);
  const cardsAfterFlag = watchRateCardOperands(command);
  command
    .description("compare wameter's verdicts and totals with what Meta's webhooks and analytics say")
    .argument('[sources...]', 'event files (send logs and Meta webhooks), folders, or - for stdin', [])
    .option(
      '--analytics <file>',
      "Meta's conversation_analytics or pricing_analytics answer, saved as JSON (DAILY granularity is best)",
      pathArgument,
    )
    .option(
      '--waba <id>',
      'the WABA the analytics export describes (default: its "id", which the input must hold; without one, the only WABA); one the input has no events of is refused',
      optionValue('a WABA id'),
    )
    .option(
      '--from <date>',
      "first day compared with --analytics, YYYY-MM-DD in the WABA's time zone (default: the first day of the first month Meta's data points touch; for a HALF_HOUR export, the first day they touch)",
      calendarDate,
    )
    .option(
      '--to <date>',
      "last day compared with --analytics, inclusive (default: the last day of the last month Meta's data points touch; for a HALF_HOUR export, the last day they touch)",
      calendarDate,
    )
    .option(
      '--accounts <file>',
      'accounts file: time zone, currency, portfolio of each WABA (contract §2)',
      pathArgument,
    )
    .option('--rate-cards <path>', RATE_CARDS_LIST_HELP, collectPaths)
    .option(
      '--format <format>',
      'table or json',
      optionValue('a format', choice(['table', 'json'] as const)),
      'table',
    )
    .option('--no-reported', 'do not apply rules only reported by third parties')
    .addHelpText(
      'after',
      `
Per message: feed the send log (outbound lines) together with Meta's status webhooks; wameter's verdict
(pricing model, category, type, conversation) is compared with each status's "pricing" and "conversation".
Per bucket: with --analytics, wameter's units and cost per day (in the WABA's time zone) x country x
category are compared with Meta's export, over whole calendar months (whole days for a HALF_HOUR export):
Meta's answer states no period and lists no day without traffic, so wameter's units on a day Meta does not
list are differences. --from/--to choose the days instead (the period asked of Meta, or a narrower one).
A data point on several local days (a month; a half hour across the WABA's midnight, as in a UTC+05:45
zone) is a bucket of its own, FROM..TO, holding wameter's units of that time. Days are the WABA's time
zone's (accounts file): when no daily or monthly point of Meta's starts at midnight there, a warning says
Meta cuts the WABA's days in another zone (set the one of Business Manager in the accounts file).
The WABA's units outside the period, and other WABAs' units, are counted as not compared. So are, against
a conversation_analytics export, the WABA's units billed per message (from 2025-07-01 in its time zone):
Meta counts those in pricing_analytics only (a pricing_analytics export is compared with every unit).
Meta's export states no currency: its amounts are read in the WABA's currency of the accounts file.
Each difference names a likely cause: TEMPLATE_RECATEGORISED, TIME_ZONE_DAY_EDGE, ERA_BOUNDARY,
FREE_ENTRY_POINT_MISSED, MISSING_WEBHOOK, UNKNOWN_RATE, COST_DIFFERS, CURRENCY_MISMATCH, META_COUNTS_FEWER,
CONVERSATION_MISMATCH, PRICING_TYPE_MISMATCH, CATEGORY_MISMATCH (docs/estimate-and-reconcile.md).

Exit codes: 0 everything checked agrees; 4 differences found (even when some input lines were malformed:
they are still named on stderr); 1 nothing done: a bad flag (or --from/--to that cut one of Meta's data
points), a --waba the input has no events of, an unreadable or unrecognised analytics export, accounts
file or rate card, or nothing could be checked (no status webhook carried Meta's pricing, or only for
messages with no send log line, rated from Meta's own category, and no --analytics bucket was compared:
agreement is not claimed); 2 some input lines malformed, no differences.

Examples:
  wameter reconcile sends.ndjson webhooks/ --accounts accounts.json
  wameter reconcile sends.ndjson webhooks/ --analytics june-pricing-analytics.json --format json
  curl "https://graph.facebook.com/v21.0/$WABA?fields=pricing_analytics.start(1748736000).end(1751328000).granularity(DAILY).dimensions(COUNTRY,PRICING_CATEGORY,PRICING_TYPE)" > meta.json
  wameter reconcile events.ndjson --analytics meta.json --waba $WABA --from 2025-06-01 --to 2025-06-30`,
    )
    .action(async (operands: string[], flags: ReconcileFlags) => {
      // `--rate-cards a.csv b.csv`: b.csv is a card (commander gave it to the sources).
      const { sources, rateCards } = cardsAfterFlag(operands);
      if (rateCards.length > 0) flags.rateCards = [...(flags.rateCards ?? []), ...rateCards];
      io.exitCode = await runReconcile(sources, flags, io, flagBefore);
    });
}

/** A `--from` / `--to` value: a calendar date, read in the WABA's time zone. */
const calendarDate = optionValue('a date', (value) => {
  if (!isCalendarDate(value)) {
    throw new InvalidArgumentError(`"${value}" is not a date: write YYYY-MM-DD, e.g. 2025-10-01`);
  }
  return value;
});

async function runReconcile(
  sources: string[],
  flags: ReconcileFlags,
  io: CliIo,
  flagBefore: (operand: string) => string | undefined,
): Promise<number> {
  if ((flags.from !== undefined || flags.to !== undefined) && flags.analytics === undefined) {
    throw new CliError(
      '--from/--to choose the days compared with an analytics export: give it with --analytics',
    );
  }
  sources = eventSources(sources, 'reconcile', flagBefore);
  const setup = await ratingSetupFrom(flags);
  const errors = createSourceErrorReporter(io.writeError);
  const outcome = await reconcileSources(sources, setup, {
    ...(flags.analytics !== undefined ? { analyticsPath: flags.analytics } : {}),
    ...(flags.waba !== undefined ? { analyticsWaba: flags.waba } : {}),
    period: {
      ...(flags.from !== undefined ? { from: flags.from } : {}),
      ...(flags.to !== undefined ? { to: flags.to } : {}),
    },
    onSourceError: (error) => errors.report(error),
    onIgnored: (note) => errors.notice(note),
    ...(io.stdin ? { stdin: io.stdin } : {}),
  });
  if (!outcome.ok) throw new CliError(`${outcome.error.code}: ${outcome.error.message}`);
  const { reconciliation } = outcome.value;
  if (flags.waba !== undefined && flags.analytics === undefined) {
    io.writeError(
      `wameter: note: --waba only says which WABA an --analytics export describes; without one, the messages of every WABA were compared\n`,
    );
  }
  const nothingChecked = whyNothingWasChecked(reconciliation, flags.analytics !== undefined);
  // Said on stderr too, so that it is seen beside a JSON document or a table written to a file.
  const otherZone = reconciliation.analytics && metaDayStartWords(reconciliation.analytics);
  if (otherZone) io.writeError(`wameter: warning: ${otherZone}\n`);
  const noneCounted = reconciliation.analytics && perMessageOnlyWords(reconciliation.analytics);
  if (noneCounted) io.writeError(`wameter: note: ${noneCounted}\n`);
  if (flags.format === 'json') io.writeOut(`${JSON.stringify(reconciliation)}\n`);
  else io.writeOut(terminalSafe(formatReconciliation(reconciliation, nothingChecked)));
  await io.settle?.();
  errors.summarise();
  const { checked, differences, analytics } = reconciliation;
  const perMessage = analytics?.not_compared.other_pricing_model.units ?? 0;
  const analyticsSummary = analytics
    ? ` and ${analytics.units} unit(s) of WABA ${analytics.waba} (${analytics.period.from}..${analytics.period.to}, ${checked.buckets} bucket(s)) with Meta's analytics; not compared: ${analytics.not_compared.other_wabas.units} unit(s) of other WABA(s), ${analytics.not_compared.outside_period.units} outside the period${perMessage > 0 ? `, ${perMessage} billed per message (Meta's pricing_analytics counts them)` : ''}`
    : '';
  io.writeError(
    `wameter: compared ${messagesCompared(checked)} of ${checked.messages} message(s)${analytics ? ` delivered ${analytics.period.from}..${analytics.period.to}` : ''} with Meta's webhooks${analyticsSummary}: ${differences.length} difference(s)\n`,
  );
  if (nothingChecked !== undefined) io.writeError(`wameter: ${nothingChecked}\n`);
  // Differences are the answer a script branches on: malformed lines (named above) do not hide them.
  if (differences.length > 0) return EXIT.DIFFERENCES;
  // No verdict at all, whether or not some lines were malformed: never pass it off as agreement.
  if (nothingChecked !== undefined) return EXIT.USAGE;
  return errors.count > 0 ? EXIT.BAD_INPUT : EXIT.OK;
}

/**
 * The reconciliation for a terminal: one block per difference, the analytics comparison (period, totals, what
 * was left out), then what was checked. `nothingChecked` is why nothing could be compared
 * (whyNothingWasChecked): then agreement is not claimed.
 */
export function formatReconciliation(reconciliation: ReconciliationJson, nothingChecked?: string): string {
  const lines: string[] = [];
  const { differences, checked, analytics } = reconciliation;
  if (nothingChecked !== undefined)
    lines.push('Nothing could be checked against Meta, so no agreement is claimed (why: on stderr).');
  else if (differences.length === 0) {
    const left = analytics
      ? analytics.not_compared.outside_period.units +
        analytics.not_compared.other_wabas.units +
        analytics.not_compared.other_pricing_model.units
      : 0;
    lines.push(
      `wameter and Meta agree on everything checked.${left > 0 ? ` ${left} unit(s) were not compared: see below.` : ''}`,
    );
  }
  for (const difference of differences) lines.push(...describeDifference(difference, analytics), '');
  if (analytics) lines.push(...describeAnalytics(analytics, checked.buckets), '');
  const fromWebhook =
    checked.category_from_webhook > 0
      ? `; ${checked.category_from_webhook} rated from Meta's own category, with no send log line: not checked`
      : '';
  lines.push(
    `Checked: ${messagesCompared(checked)} of ${checked.messages} delivered message(s)${analytics ? ` of ${analytics.period.from}..${analytics.period.to}` : ''} against Meta's status webhooks (${checked.unverifiable} without Meta's pricing: unverifiable${fromWebhook}); ${
      analytics
        ? `${analytics.units} unit(s) of WABA ${analytics.waba} in ${checked.buckets} analytics bucket(s).`
        : 'no analytics export (--analytics).'
    }`,
  );
  return `${lines.join('\n')}\n`;
}

/** Where Meta's amounts get their currency from: not from Meta, whose export states none. */
function metaCurrencyWords(analytics: AnalyticsComparisonJson | undefined): string {
  if (!analytics) return "no currency in Meta's export";
  const where =
    analytics.currency_source === 'accounts'
      ? 'per the accounts file'
      : 'by default (the WABA is not in the accounts file)';
  return `no currency in Meta's export; wameter bills this WABA in ${analytics.currency} ${where}`;
}

function describeDifference(difference: Difference, analytics?: AnalyticsComparisonJson): string[] {
  const show = (value: object | null) =>
    value === null
      ? 'nothing'
      : Object.entries(value)
          .map(([key, field]) => `${key}=${String(field)}`)
          .join(' ');
  if ('message' in difference) {
    return [
      `${difference.cause}  message ${difference.message} to ${difference.user} (${difference.business}), delivered ${difference.delivered_at}`,
      `  wameter: ${show(difference.ours)}`,
      `  Meta:    ${show(difference.meta)}`,
      `  differs: ${difference.differs.join(', ')}`,
      `  what to do: ${difference.note}`,
    ];
  }
  const { bucket } = difference;
  // Meta's side shows no currency of its own: the one in the JSON is wameter's, assumed (currency_stated).
  const { currency: _assumed, currency_stated: _stated, ...meta } = difference.meta;
  return [
    `${difference.cause}  ${bucket.day} ${bucket.country} ${bucketCut(bucket)} (WABA ${bucket.waba})`,
    `  wameter: ${show(difference.ours)}`,
    `  Meta:    ${show(meta)} (${metaCurrencyWords(analytics)})`,
    ...(difference.messages ? [`  messages: ${difference.messages.join(', ')}`] : []),
    `  what to do: ${difference.note}`,
  ];
}

/** What the bucket is cut by beside day and country: its category, else the type and direction it has. */
function bucketCut(bucket: BucketJson): string {
  const words = [bucket.type, bucket.direction].filter((word) => word !== undefined);
  return bucket.category !== '*' || words.length === 0 ? bucket.category : words.join(' ');
}

const BASIS_WORDS: Record<AnalyticsComparisonJson['period']['basis'], string> = {
  export_months:
    "the whole calendar months of Meta's data points: its export states no period; --from/--to to choose",
  export_days: "every whole day Meta's half-hour data points touch; --from/--to to choose",
  requested: '--from/--to',
};

/**
 * Why Meta's days are not the accounts file's, when none of its daily or monthly points is cut at the WABA's
 * midnight there (`meta_day_start`); else undefined.
 */
function metaDayStartWords(analytics: AnalyticsComparisonJson): string | undefined {
  const start = analytics.meta_day_start;
  if (!start) return undefined;
  const zone = analytics.period.time_zone;
  return `Meta's data points start at ${start.local} in ${zone} (${start.utc} UTC), not at its midnight: Meta cuts this WABA's days in another time zone than the accounts file's, so its units fall on neighbouring days (TIME_ZONE_DAY_EDGE; META_COUNTS_FEWER and MISSING_WEBHOOK where they do not pair up) and the period may take in a neighbouring month; set the WABA's time zone in the accounts file to the one in Meta Business Manager, and compare again`;
}

/**
 * When the export's kind counts none of the WABA's units in the period (a conversation_analytics export of days
 * billed per message): the comparison says nothing of them, and which export would; else undefined.
 */
function perMessageOnlyWords(analytics: AnalyticsComparisonJson): string | undefined {
  const left = analytics.not_compared.other_pricing_model.units;
  if (left === 0 || analytics.units > 0) return undefined;
  const { from, to } = analytics.period;
  return `every unit of WABA ${analytics.waba} in ${from}..${to} (${left}) was billed per message, which Meta's ${analytics.kind} does not count, so none of them was compared: compare them with Meta's pricing_analytics export of those days`;
}

function amounts(byCurrency: ByCurrencyJson): string {
  const parts = Object.entries(byCurrency).map(([currency, { amount }]) => `${amount} ${currency}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

function describeAnalytics(analytics: AnalyticsComparisonJson, buckets: number): string[] {
  const { period, not_compared: left } = analytics;
  const lines = [
    `Compared with Meta's ${analytics.kind} export: WABA ${analytics.waba}, ${period.from}..${period.to} (local days in ${period.time_zone}; ${BASIS_WORDS[period.basis]}), ${analytics.units} unit(s) of wameter in ${buckets} bucket(s).`,
  ];
  for (const total of analytics.totals) {
    const unpriced = total.ours.unpriced_units
      ? ` (${total.ours.unpriced_units} charged unit(s) not priced: the amount is a floor)`
      : '';
    lines.push(
      `  wameter:        ${total.ours.units} unit(s), ${total.ours.amount} ${total.currency}${unpriced}`,
    );
    if (total.meta && total.difference) {
      lines.push(
        `  Meta:           ${total.meta.units} unit(s), ${total.meta.amount} (${metaCurrencyWords(analytics)})`,
        `  Meta − wameter: ${total.difference.units} unit(s), ${total.difference.amount} (Meta's amount read as ${total.currency})`,
      );
    } else {
      lines.push(
        `  Meta:           not set against ${total.currency}: wameter's units of this WABA carry several currencies`,
      );
    }
  }
  const otherZone = metaDayStartWords(analytics);
  if (otherZone) lines.push(`  Time zone:      ${otherZone}`);
  const noneCounted = perMessageOnlyWords(analytics);
  if (noneCounted) lines.push(`  Note:           ${noneCounted}`);
  if (analytics.currency_ratio) {
    const ratio = analytics.currency_ratio;
    lines.push(
      `  Meta/wameter:   ${ratio.meta_per_wameter} in ${ratio.matching} of ${ratio.cost_differences} cost difference(s): likely the currency, not the rates (CURRENCY_MISMATCH)`,
    );
  }
  lines.push(
    `  Not compared:   ${left.other_wabas.units} unit(s) of ${left.other_wabas.wabas} other WABA(s)${amounts(left.other_wabas.by_currency)}, which the export does not describe; ${left.outside_period.units} unit(s) of this WABA outside the period${amounts(left.outside_period.by_currency)}`,
  );
  if (left.other_pricing_model.units > 0) {
    lines.push(
      `  Not compared:   ${left.other_pricing_model.units} unit(s) of this WABA in the period billed per message${amounts(left.other_pricing_model.by_currency)}, which Meta's ${analytics.kind} does not count: compare them with its pricing_analytics export`,
    );
  }
  if (left.meta_outside_period.units > 0 || left.meta_outside_period.amount !== '0') {
    lines.push(
      `  Not compared:   ${left.meta_outside_period.units} unit(s) of Meta's, ${left.meta_outside_period.amount}, in data points outside the period`,
    );
  }
  return lines;
}
