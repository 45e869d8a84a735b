// `wameter rate`: rates event files (or stdin) and prints the billable units and totals.

import { Command, InvalidArgumentError } from 'commander';
import { join } from 'node:path';
import { packageRoot } from '../ingest/rate-card-files.js';
import { isMonth, localDate } from '../core/calendar.js';
import type { BillableUnit, PendingMessage } from '../core/units.js';
import { rateSources } from '../use-cases/rate-sources.js';
import { eventSources, ratingSetupFrom } from './rating-inputs.js';
import { CliError, EXIT } from './exit-codes.js';
import {
  RATE_CARDS_LIST_HELP,
  choice,
  collectPaths,
  optionValue,
  pathArgument,
  parseDuration,
  parseEra,
  watchFlagsBeforeOperands,
  watchRateCardOperands,
} from './options.js';
import { createSourceErrorReporter } from './source-errors.js';
import { sayFindingsBesideCsv } from './findings-on-stderr.js';
import { replacedCardsNote, unpricedExit, unratedCodesIn } from './unpriced.js';
import { OUTPUT_FORMATS, createUnitWriter, type OutputFormat } from './unit-writers.js';
import type { Era } from '../core/units.js';
import type { CliIo } from './io.js';

interface RateFlags {
  accounts?: string;
  rateCards?: string[];
  format: OutputFormat;
  asOfRules?: Era;
  reported: boolean;
  stream?: boolean;
  maxLateness?: number;
  allowUnpriced?: boolean;
  month?: string;
}

// Meta retries an unanswered webhook for up to 36 h (webhooks.md): a redelivery that late is still rated.
const DEFAULT_LATENESS_MS = 36 * 3_600_000;
/** Past this many events without --stream, say that --stream exists. */
const LARGE_BATCH_EVENTS = 5_000_000;

export function registerRateCommand(program: Command, io: CliIo): void {
  const command = program.command('rate');
  const flagBefore = watchFlagsBeforeOperands(command);
  const cardsAfterFlag = watchRateCardOperands(command);
  command
    .description("rebuild every billable unit from traffic and price it under Meta's rules for its date")
    .argument(
      '[sources...]',
      'event files, folders of .json/.ndjson/.jsonl files (read recursively), or - for stdin',
      [],
    )
    .option(
      '--accounts <file>',
      'accounts file: time zone, currency, portfolio of each WABA (contract §2)',
      pathArgument,
    )
    .option('--rate-cards <path>', RATE_CARDS_LIST_HELP, collectPaths)
    .option(
      '--format <format>',
      'table, json or csv',
      optionValue('a format', choice(OUTPUT_FORMATS)),
      'table',
    )
    .option(
      '--as-of-rules <era>',
      're-rate everything under one era: NBP, CBP-2022, CBP-2023, CBP-2024-11, PMP-2025, PMP-2026-10',
      optionValue('an era', parseEra),
    )
    .option(
      '--no-reported',
      'do not apply rules only reported by third parties (the PMP-2026-10 era and market splits)',
    )
    .option('--stream', 'rate in one pass with bounded memory: for large, roughly time-ordered input')
    .option(
      '--max-lateness <duration>',
      "with --stream: how far out of order events may come (default 36h, Meta's retry window)",
      optionValue('a duration', parseDuration),
    )
    .option(
      '--allow-unpriced',
      'exit 0 even when some charged units have no price, or delivered messages could not be rated (they are listed in findings); not when --stream refused late events',
    )
    .option(
      '--month <YYYY-MM>',
      "only the units billed in that month, each by its WABA's clock (accounts file), and their totals: a month's bill (the whole traffic is still rated: conversations, allowances and tiers run across months)",
      optionValue('a month', parseMonth),
    )
    .addHelpText(
      'after',
      `
Input: NDJSON event lines (inbound, outbound, status) and whole Meta webhook bodies, mixed freely.
Order does not matter and duplicates are ignored (without --stream).

Output: --format csv holds the units only; the findings (code, message, count) and the number of pending
messages are then said on stderr. table and json hold them too.

Exit codes: 0 ok; 1 nothing rated (bad flag, no source given — stdin is read only with -, unreadable
accounts or rate card, no given source exists, or not one event could be read from the sources); 2 some
input lines malformed or a source unreadable (each named on stderr, the rest rated); 3 some charged units
could not be priced, or delivered messages could not be rated, or (with --stream) late events were not
rated; with both 2 and 3, both are said and the exit code is 2.

Examples:
  wameter rate examples/month/events.ndjson --accounts examples/month/accounts.json
  wameter rate webhooks/ --format json > bill.json
  cat events.ndjson | wameter rate - --format csv
  wameter rate events.ndjson --as-of-rules PMP-2025     # what would this traffic cost per message?
  wameter rate events.ndjson --rate-cards cards/usd-2025-07-01.csv --rate-cards cards/usd-2025-10-01.csv
  wameter rate --rate-cards cards/usd-2025-07-01.csv cards/usd-2025-10-01.csv events.ndjson
  wameter rate huge.ndjson --stream --max-lateness 36h --format json > units.json
  wameter rate events/ --accounts accounts.json --month 2025-07 --format csv > july.csv`,
    )
    .action(async (operands: string[], flags: RateFlags) => {
      // `--rate-cards a.csv b.csv`: b.csv is a card (commander gave it to the sources).
      const { sources: events, rateCards } = cardsAfterFlag(operands);
      if (rateCards.length > 0) flags.rateCards = [...(flags.rateCards ?? []), ...rateCards];
      io.exitCode = await runRate(events, flags, io, flagBefore);
    });
}

export async function runRate(
  sources: string[],
  flags: RateFlags,
  io: CliIo,
  flagBefore?: (operand: string) => string | undefined,
): Promise<number> {
  sources = eventSources(sources, 'rate', flagBefore);
  if (flags.maxLateness !== undefined && !flags.stream) {
    throw new CliError('--max-lateness only applies with --stream');
  }
  const setup = await ratingSetupFrom(flags);
  // A month's bill: a unit is billed on the local date of its opening in its WABA's time zone (the date that
  // chose its era, card, allowance and tier month), a pending message on that of its sending.
  const month = flags.month;
  const isOfMonth = (waba: string, atMs: number) =>
    month === undefined || localDate(atMs, setup.accountBook.accountFor(waba).timeZone).startsWith(month);
  let otherMonths = 0;

  const writer = createUnitWriter(
    flags.format,
    io.writeOut,
    (waba) => setup.accountBook.accountFor(waba).timeZone,
  );
  const errors = createSourceErrorReporter(io.writeError);
  const pending: PendingMessage[] = [];
  let unpriced = 0;
  const result = await rateSources(
    sources,
    setup,
    {
      unit(unit: BillableUnit) {
        if (!isOfMonth(unit.waba, unit.openedAtMs)) {
          otherMonths += 1;
          return;
        }
        if (unit.amountMicros === null && unit.type === 'regular') unpriced += 1;
        writer.unit(unit);
      },
      pending(message) {
        if (isOfMonth(message.waba, message.sentAtMs)) pending.push(message);
      },
    },
    {
      ...(flags.asOfRules ? { asOfRules: flags.asOfRules } : {}),
      ...(flags.stream ? { maxLatenessMs: flags.maxLateness ?? DEFAULT_LATENESS_MS } : {}),
      onSourceError: (error) => errors.report(error),
      onIgnored: (note) => errors.notice(note),
      onProgress: (events) => {
        if (io.isStderrTty) io.writeError(`wameter: ${events.toLocaleString('en-US')} events read…\n`);
        if (events === LARGE_BATCH_EVENTS && !flags.stream) {
          io.writeError(
            `wameter: a large batch keeps every event in memory until the end; --stream rates in one pass with memory that follows active users\n`,
          );
        }
      },
      ...(io.stdin ? { stdin: io.stdin } : {}),
    },
  );
  errors.refuseWhenNothingRead(result.read.events);
  pending.sort((a, b) => a.sentAtMs - b.sentAtMs || (a.id < b.id ? -1 : 1));
  writer.end(pending, result.findings);
  await io.settle?.();
  // A CSV holds the units only (README, `--format`): what else the rating found is said beside it.
  const warn = (message: string) => io.writeError(`wameter: ${message}\n`);
  if (flags.format === 'csv') sayFindingsBesideCsv(result.findings, pending.length, warn);
  errors.summarise();
  io.writeError(
    `wameter: read ${result.read.events} event(s) from ${result.read.files.length} source(s): ${result.stats.units} unit(s), ${result.stats.pending} pending, ${result.findings.length} finding(s)\n`,
  );
  if (month !== undefined) {
    io.writeError(
      `wameter: --month ${month}: ${result.stats.units - otherMonths} unit(s) and ${pending.length} pending message(s) of that month by each WABA's clock are listed and totalled, ${otherMonths} unit(s) of other months left out; the findings are the whole rating's\n`,
    );
  }
  // Events --stream refused as late were never rated: the output is not the whole traffic, whatever else
  // happened, so this is said even when bad input decides the exit code.
  const late = result.stats.late;
  if (late > 0) {
    io.writeError(
      `wameter: ${late} event(s) were not rated: they came more than ${formatLateness(flags.maxLateness ?? DEFAULT_LATENESS_MS)} after newer ones (finding LATE_EVENT); rate without --stream, or raise --max-lateness\n`,
    );
  }
  // A new card given alone replaces the bundled ones: the dates before it lost their card, said as such.
  const replaced =
    flags.rateCards === undefined
      ? undefined
      : replacedCardsNote(
          result.findings,
          'the bundled rate cards',
          `--rate-cards ${join(packageRoot(), 'data', 'rate-cards')} for the bundled ones, or a folder of every card the traffic needs`,
        );
  if (replaced) warn(replaced);
  // Said whatever decides the exit code: units without a price are news even when some lines were malformed.
  const exit = unpricedExit(
    { unpriced, unrated: result.stats.unrated, unratedCodes: unratedCodesIn(result.findings) },
    flags.allowUnpriced,
    warn,
  );
  if (errors.count > 0) return EXIT.BAD_INPUT;
  if (exit !== EXIT.OK) return exit;
  // Late events are input left unrated, not units without a price: --allow-unpriced does not accept them.
  if (late > 0) return EXIT.UNPRICED;
  return EXIT.OK;
}

/** A duration as --max-lateness takes it, in hours when whole (like Meta's 36 h retry window): 24h, 90m. */
function formatLateness(ms: number): string {
  const units: [string, number][] = [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  const [unit, size] = units.find(([, size]) => ms % size === 0) ?? ['ms', 1];
  return `${ms / size}${unit}`;
}

/** `--month`: a calendar month, `YYYY-MM`. */
function parseMonth(text: string): string {
  const month = text.trim();
  if (!isMonth(month)) throw new InvalidArgumentError(`"${text}" is not a month: write it YYYY-MM (2025-07)`);
  return month;
}
