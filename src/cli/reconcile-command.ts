// `wameter reconcile`: wameter's verdict per message against Meta's status webhooks, and its totals per
// day × country × category against a Meta analytics export; each difference with its likely cause.

import { Command } from 'commander';
import type { Difference, ReconciliationJson } from '../core/reconcile.js';
import { reconcileSources, whyNothingWasChecked } from '../use-cases/reconcile.js';
import { ratingSetupFrom, sourcesOrStdin } from './rating-inputs.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { RATE_CARDS_HELP, choice, collectPaths, pathArgument } from './options.js';
import { createSourceErrorReporter } from './source-errors.js';

interface ReconcileFlags {
  analytics?: string;
  waba?: string;
  accounts?: string;
  rateCards?: string[];
  format: 'table' | 'json';
  reported: boolean;
}

export function registerReconcileCommand(program: Command, io: CliIo): void {
  program
    .command('reconcile')
    .description("compare wameter's verdicts and totals with what Meta's webhooks and analytics say")
    .argument('[sources...]', 'event files (send logs and Meta webhooks), folders, or - for stdin', [])
    .option(
      '--analytics <file>',
      "Meta's conversation_analytics or pricing_analytics answer, saved as JSON (DAILY granularity is best)",
      pathArgument,
    )
    .option('--waba <id>', 'the WABA the analytics export describes (default: its "id", or the only WABA)')
    .option(
      '--accounts <file>',
      'accounts file: time zone, currency, portfolio of each WABA (contract §2)',
      pathArgument,
    )
    .option('--rate-cards <path>', RATE_CARDS_HELP, collectPaths)
    .option('--format <format>', 'table or json', choice(['table', 'json'] as const), 'table')
    .option('--no-reported', 'do not apply rules only reported by third parties')
    .addHelpText(
      'after',
      `
Per message: feed the send log (outbound lines) together with Meta's status webhooks; wameter's verdict
(pricing model, category, type, conversation) is compared with each status's "pricing" and "conversation".
Per bucket: with --analytics, wameter's units and cost per day (in the WABA's time zone) x country x
category are compared with Meta's export. Agreement prints nothing; each difference names a likely cause:
TEMPLATE_RECATEGORISED, TIME_ZONE_DAY_EDGE, ERA_BOUNDARY, FREE_ENTRY_POINT_MISSED, MISSING_WEBHOOK,
UNKNOWN_RATE, COST_DIFFERS, META_COUNTS_FEWER, CATEGORY_MISMATCH (docs/estimate-and-reconcile.md).

Exit codes: 0 everything checked agrees; 4 differences found (even when some input lines were malformed:
they are still named on stderr); 1 nothing done: a bad flag, an unreadable or unrecognised analytics export,
accounts file or rate card, or nothing could be checked (no status webhook carried Meta's pricing and no
--analytics bucket was compared: agreement is not claimed); 2 some input lines malformed, no differences.

Examples:
  wameter reconcile sends.ndjson webhooks/ --accounts accounts.json
  wameter reconcile sends.ndjson webhooks/ --analytics june-pricing-analytics.json --format json
  curl "https://graph.facebook.com/v21.0/$WABA?fields=pricing_analytics.start(1748736000).end(1751328000).granularity(DAILY).dimensions(COUNTRY,PRICING_CATEGORY,PRICING_TYPE)" > meta.json
  wameter reconcile events.ndjson --analytics meta.json --waba $WABA`,
    )
    .action(async (sources: string[], flags: ReconcileFlags) => {
      io.exitCode = await runReconcile(sources, flags, io);
    });
}

async function runReconcile(sources: string[], flags: ReconcileFlags, io: CliIo): Promise<number> {
  sources = sourcesOrStdin(sources, io, 'reconcile');
  const setup = await ratingSetupFrom(flags);
  const errors = createSourceErrorReporter(io.writeError);
  const outcome = await reconcileSources(sources, setup, {
    ...(flags.analytics !== undefined ? { analyticsPath: flags.analytics } : {}),
    ...(flags.waba !== undefined ? { analyticsWaba: flags.waba } : {}),
    onSourceError: (error) => errors.report(error),
    onIgnored: (note) => errors.notice(note),
    ...(io.stdin ? { stdin: io.stdin } : {}),
  });
  if (!outcome.ok) throw new CliError(`${outcome.error.code}: ${outcome.error.message}`);
  const { reconciliation } = outcome.value;
  const nothingChecked = whyNothingWasChecked(reconciliation, flags.analytics !== undefined);
  if (flags.format === 'json') io.writeOut(`${JSON.stringify(reconciliation)}\n`);
  else io.writeOut(formatReconciliation(reconciliation, nothingChecked));
  errors.summarise();
  const { checked, differences } = reconciliation;
  io.writeError(
    `wameter: checked ${checked.messages} message(s) (${checked.unverifiable} without Meta's pricing) and ${checked.buckets} bucket(s): ${differences.length} difference(s)\n`,
  );
  if (nothingChecked !== undefined) io.writeError(`wameter: ${nothingChecked}\n`);
  // Differences are the answer a script branches on: malformed lines (named above) do not hide them.
  if (differences.length > 0) return EXIT.DIFFERENCES;
  // No verdict at all, whether or not some lines were malformed: never pass it off as agreement.
  if (nothingChecked !== undefined) return EXIT.USAGE;
  return errors.count > 0 ? EXIT.BAD_INPUT : EXIT.OK;
}

/**
 * The reconciliation for a terminal: one block per difference, then what was checked. `nothingChecked` is
 * why nothing could be compared (whyNothingWasChecked): then agreement is not claimed.
 */
export function formatReconciliation(reconciliation: ReconciliationJson, nothingChecked?: string): string {
  const lines: string[] = [];
  const { differences, checked } = reconciliation;
  if (nothingChecked !== undefined)
    lines.push('Nothing could be checked against Meta, so no agreement is claimed (why: on stderr).');
  else if (differences.length === 0) lines.push('wameter and Meta agree on everything checked.');
  for (const difference of differences) lines.push(...describeDifference(difference), '');
  lines.push(
    `Checked: ${checked.messages} message(s), ${checked.unverifiable} without Meta's pricing (unverifiable), ${checked.buckets} analytics bucket(s).`,
  );
  return `${lines.join('\n')}\n`;
}

function describeDifference(difference: Difference): string[] {
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
  return [
    `${difference.cause}  ${bucket.day} ${bucket.country} ${bucket.category} (WABA ${bucket.waba})`,
    `  wameter: ${show(difference.ours)}`,
    `  Meta:    ${show(difference.meta)}`,
    ...(difference.messages ? [`  messages: ${difference.messages.join(', ')}`] : []),
    `  what to do: ${difference.note}`,
  ];
}
