// `wameter estimate`: what a template send to each recipient of a CSV would cost at a moment, and why —
// priced against the state left by the events (open windows, free entry points, allowances, tiers).

import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { parseInstant } from '../core/calendar.js';
import type { CoreEvent, TemplateCategory } from '../core/events.js';
import { LINE_FIELDS, estimateRecipients, type EstimateJson } from '../use-cases/estimate.js';
import { accountsDigest, rateCardsDigest, type RatingSetup } from '../use-cases/load-rating-setup.js';
import { STDIN_NAME, describeNotText, readEventSources } from '../ingest/read-events.js';
import { decodeUtf8File, notUtf8Words } from '../ingest/utf8.js';
import { ratingSetupFrom, someSourceExists } from './rating-inputs.js';
import { CliError, EXIT } from './exit-codes.js';
import { terminalSafe, type CliIo } from './io.js';
import {
  RATE_CARDS_HELP,
  choice,
  collectPaths,
  databaseUrl,
  optionValue,
  pathArgument,
  watchFlagsBeforeOperands,
} from './options.js';
import { openCommandStore } from './open-command-store.js';
import { createSourceErrorReporter } from './source-errors.js';
import { csvField } from '../core/report.js';

const TEMPLATES = ['marketing', 'utility', 'authentication'] as const;
/** By sound, not by letter: "a utility" (a "you" sound), "an authentication". */
const TEMPLATE_WITH_ARTICLE: Readonly<Record<(typeof TEMPLATES)[number], string>> = {
  marketing: 'a marketing',
  utility: 'a utility',
  authentication: 'an authentication',
};
const FORMATS = ['table', 'json', 'csv'] as const;

interface EstimateFlags {
  template: TemplateCategory;
  at?: number;
  events?: string[];
  db?: string;
  accounts?: string;
  rateCards?: string[];
  waba?: string;
  business?: string;
  format: (typeof FORMATS)[number];
  reported: boolean;
  allowUnpriced?: boolean;
}

export interface EstimateCommandOptions {
  /** The clock that `--at` defaults to (epoch ms); injected so that tests need no real time. */
  now?: () => number;
}

const parseAt = optionValue('an instant', (value) => {
  const parsed = parseInstant(value);
  // As `rerate --from` and event lines say it: milliseconds and out-of-range instants named as such.
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error.message);
  return parsed.value;
});

export function registerEstimateCommand(
  program: Command,
  io: CliIo,
  options: EstimateCommandOptions = {},
): void {
  const command = program.command('estimate');
  const flagBefore = watchFlagsBeforeOperands(command);
  command
    .description('what sending a template to each recipient would cost now (or at --at), and why')
    // Optional for commander only: `--events` takes every path up to the next flag, so a recipients file
    // written after the event sources arrives among them (recipientsAndEvents takes it back).
    .argument('[recipients]', 'CSV with a "phone" column, or - for stdin; other columns are kept and echoed')
    .usage('[options] <recipients>')
    .requiredOption(
      '--template <category>',
      'marketing, utility or authentication',
      optionValue('a template category', choice(TEMPLATES)),
    )
    .option(
      '--at <time>',
      'when the send would happen: ISO-8601 with offset or Unix seconds (default: now)',
      parseAt,
    )
    .option(
      '--events <paths...>',
      'event files or folders that give the current state of every window: several after one flag (--events a.ndjson logs/), or the flag repeated',
      collectPaths,
    )
    .option(
      '--db <url>',
      'read the events from the store instead (an existing store: sqlite:PATH or postgres://…; only read, never created or migrated)',
      databaseUrl,
    )
    .option(
      '--accounts <file>',
      'accounts file: time zone, currency, portfolio of each WABA (contract §2)',
      pathArgument,
    )
    .option('--rate-cards <path>', RATE_CARDS_HELP, collectPaths)
    .option('--waba <id>', 'the sending WABA (default: the only one in the events)', optionValue('a WABA id'))
    .option(
      '--business <phone_number_id>',
      'the sending business number (default: the only one of the WABA)',
      optionValue('a phone number id'),
    )
    .option('--format <format>', 'table, json or csv', optionValue('a format', choice(FORMATS)), 'table')
    .option('--no-reported', 'do not apply rules only reported by third parties')
    .option(
      '--allow-unpriced',
      'exit 0 even when some charged sends have no known price (the warnings say why)',
    )
    .addHelpText(
      'after',
      `
Each recipient is quoted as the next send of the campaign: a utility template inside an open customer
service window, anything inside a free entry point window, or a send riding an open conversation is free;
the monthly free allowance and volume tiers move as the campaign goes. Numbers are normalised (+, spaces,
dashes, dots, brackets, leading 00); a bad number is listed under "invalid" and never stops the estimate.
Every other column is echoed on each line; one named like a field of the line (country, market, price,
currency, free, reason, a second phone) is echoed as input_<name>, with a warning. Recipients file -
reads stdin (then --events - cannot also).

Several event sources: list them after one --events (--events sends.ndjson webhooks/) or repeat the flag
(--events sends.ndjson --events webhooks/). --events takes every path up to the next flag; event sources
are never .csv files, so a recipients file named *.csv may come before or after them.

With --db the store is only read: a missing file, or a database without wameter's tables, is refused
(run \`wameter import\` or \`wameter serve\` first), never created. With neither --events nor --db no
traffic is read: every recipient is quoted as if nothing had been sent yet (no open window, allowance
unused, no tier reached), with a warning on stderr and in the JSON "warnings", and --waba and --business
must name the sender.

Exit codes: 0 estimated; 2 some event lines malformed or a source unreadable (each named on stderr);
3 some charged sends have no known price (no rate for their market, no rate card: the warnings say
which; their total is then a floor) — --allow-unpriced accepts; 1 nothing done (bad flag, unreadable
recipients, none of the --events paths exists, or not one event could be read from them); with both 2
and 3, the exit code is 2.

Examples:
  wameter estimate customers.csv --template marketing --events events.ndjson
  wameter estimate customers.csv --template utility --events sends.ndjson webhooks/
  wameter estimate --events sends.ndjson --events webhooks/ customers.csv --template utility
  wameter estimate customers.csv --template utility --at 2025-10-01T09:00:00Z --events logs/ --format json
  wameter estimate list.csv --template authentication --db sqlite:./wameter.db --waba W1 --business PN1`,
    )
    // Extra arguments get a message of our own, fitted to where they stand (recipientsAndEvents).
    .allowExcessArguments()
    .action(async (recipients: string | undefined, flags: EstimateFlags) => {
      const inputs = recipientsAndEvents(
        recipients,
        flags.events,
        command.args.slice(1),
        command,
        flagBefore,
      );
      io.exitCode = await runEstimate(
        inputs.recipients,
        { ...flags, events: inputs.events },
        io,
        options.now ?? (() => Date.now()),
      );
    });
}

const isCsvName = (path: string): boolean => /\.csv$/i.test(path);
const isEventFileName = (path: string): boolean => /\.(json|ndjson|jsonl)$/i.test(path);
const isFolder = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

/**
 * The recipients file and the event sources, from the positional argument, `--events` and any further
 * operands. `--events` takes every path up to the next flag (contract §6: `--events FILES…`), so in
 * `--events a.ndjson customers.csv --template utility` the recipients file lands among the event sources.
 * Event files are JSON lines (read-events.ts), never CSV: a `.csv` there is a recipients file.
 */
function recipientsAndEvents(
  positional: string | undefined,
  events: string[] | undefined,
  extra: string[],
  command: Command,
  flagBefore: (operand: string) => string | undefined,
): { recipients: string; events: string[] | undefined } {
  if (extra.length > 0) {
    // Most often an event file written after the recipients without --events, or a second rate card
    // written after one --rate-cards; else a second recipients file, or a word after a flag's one value.
    const loose = [positional ?? '', ...extra].filter(isEventFileName);
    const refusal = `one recipients file only, not also ${extra.join(' ')}`;
    const flag = flagBefore(extra[0]!);
    if (loose.length > 0)
      throw new CliError(`${refusal}: give event sources after --events (--events ${loose.join(' ')} …)`);
    if (flag === '--rate-cards') {
      // `--rate-cards a.csv b.csv customers.csv`: the first operand (b.csv) is the card after the flag's
      // value, taken for the recipients file; name it, not the recipients after it.
      const card =
        positional !== undefined && isCsvName(positional) && flagBefore(positional) === '--rate-cards'
          ? positional
          : extra[0];
      throw new CliError(
        `${refusal}: for several rate cards repeat the flag: --rate-cards … --rate-cards ${card}`,
      );
    }
    if (flag !== undefined) {
      throw new CliError(
        `${refusal}: ${flag} takes one value, so ${extra[0]} was read as a second recipients file`,
      );
    }
    throw new CliError(refusal);
  }
  const sources = events ?? [];
  const named = [...(positional === undefined ? [] : [positional]), ...sources.filter(isCsvName)];
  if (named.length > 1) throw new CliError(`one recipients file only, not also ${named.slice(1).join(' ')}`);
  const [recipients] = named;
  if (recipients === undefined) {
    // A path there that is no event source (not a folder, not stdin, not named like an event file) is
    // most likely the recipients file; with none, the recipients file was left out.
    const swallowed = sources.filter((path) => path !== '-' && !isEventFileName(path) && !isFolder(path));
    if (swallowed.length > 0) {
      throw new CliError(
        `no recipients file: --events took ${swallowed.join(' ')} as an event source (it takes every path up to the next flag); put the recipients file before --events, or name it *.csv`,
      );
    }
    // commander's own words, as when the argument was required.
    command.error("error: missing required argument 'recipients'", { code: 'commander.missingArgument' });
  }
  const eventSources = sources.filter((path) => !isCsvName(path));
  return { recipients, events: events === undefined ? undefined : eventSources };
}

async function runEstimate(
  recipientsPath: string,
  flags: EstimateFlags,
  io: CliIo,
  now: () => number,
): Promise<number> {
  if (flags.db !== undefined && flags.events !== undefined) {
    throw new CliError('give either --events or --db, not both');
  }
  // Events none of which exist would quote as if nothing had been sent (allowance unused, no window open).
  if (flags.events !== undefined && flags.events.length > 0) someSourceExists(flags.events);
  if (recipientsPath.trim() === '') {
    throw new CliError(
      'the recipients path is empty (an unset variable in a script?): give the recipients CSV, or - for stdin',
    );
  }
  const isRecipientsStdin = recipientsPath === '-';
  if (isRecipientsStdin && flags.events?.includes('-')) {
    throw new CliError(
      'stdin can be read once: give the recipients (-) or the events (--events -) on stdin, not both',
    );
  }
  // As every command names stdin in its messages (read-events.ts).
  const recipientsName = isRecipientsStdin ? STDIN_NAME : recipientsPath;
  let csvBytes: Buffer;
  try {
    csvBytes = isRecipientsStdin
      ? await readBytes(io.stdin ?? process.stdin)
      : await readFile(recipientsPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(
      `cannot read recipients ${recipientsName}${code ? ` (${code})` : ''}: ${isRecipientsStdin ? 'check what is piped in' : 'check the path'}`,
    );
  }
  // A gzip or spreadsheet file would otherwise be refused for its "header" of binary noise.
  const notText = describeNotText(csvBytes);
  if (notText !== undefined) throw new CliError(`recipients ${recipientsName}: ${notText}`);
  // Its columns are echoed as written: a byte that is not UTF-8 would come out as U+FFFD.
  const decoded = decodeUtf8File(csvBytes);
  if (!decoded.ok) {
    throw new CliError(`recipients ${recipientsName} ${notUtf8Words(csvBytes, decoded.error)}`);
  }
  const csvText = decoded.value;
  const setup = await ratingSetupFrom(flags);
  const errors = createSourceErrorReporter(io.writeError);
  // Contract §6: the state comes from --db or --events. With neither there is no traffic: the quote is the
  // list price as if the WABA had sent nothing (a new WABA, a price preview), said as a warning, and the
  // sender cannot be taken from events that were never given.
  const hasTraffic = flags.db !== undefined || (flags.events?.length ?? 0) > 0;
  if (!hasTraffic && (flags.waba === undefined || flags.business === undefined)) {
    const missing = [
      flags.waba === undefined ? '--waba' : '',
      flags.business === undefined ? '--business' : '',
    ]
      .filter(Boolean)
      .join(' and ');
    throw new CliError(
      `no traffic given (no --events source and no --db), so there is no sending account to default to: pass ${missing} (the WABA and the phone_number_id that would send), or give the traffic with --events PATHS… or --db URL`,
    );
  }

  const portfolioOf = (waba: string, stored: readonly string[]): string[] => {
    const portfolio = setup.accountBook.accountFor(waba).portfolio;
    const mates = stored.filter((mate) => setup.accountBook.accountFor(mate).portfolio === portfolio);
    return [...new Set([waba, ...mates])];
  };
  const feed = async (add: (event: CoreEvent) => void): Promise<void> => {
    if (flags.db !== undefined) {
      const store = await openCommandStore(flags.db, { mode: 'read-only' });
      try {
        // Volume tiers count a whole portfolio's messages (pricing-rules §5.3): the WABA's portfolio mates'
        // events are listed with its own, as the service's estimate lists them.
        const wabas = flags.waba === undefined ? undefined : portfolioOf(flags.waba, await store.listWabas());
        for (const event of await store.listEvents(wabas)) add(event);
      } finally {
        await store.close();
      }
      return;
    }
    if (!flags.events || flags.events.length === 0) return;
    let read = 0;
    await readEventSources(
      flags.events,
      {
        onEvents(events) {
          read += events.length;
          for (const event of events) add(event);
        },
        onError: (error) => errors.report(error),
        onIgnored: (note) => errors.notice(note),
      },
      io.stdin ? { stdin: io.stdin } : {},
    );
    // Sources none of which could be read would quote as if nothing had been sent.
    errors.refuseWhenNothingRead(read);
  };

  const outcome = await estimateRecipients(csvText, feed, setup, {
    template: flags.template,
    atMs: flags.at ?? now(),
    ...(flags.waba !== undefined ? { waba: flags.waba } : {}),
    ...(flags.business !== undefined ? { business: flags.business } : {}),
  });
  if (!outcome.ok) throw new CliError(`${outcome.error.code}: ${outcome.error.message}`);
  const { estimate, waba, business } = outcome.value;
  if (!hasTraffic) {
    // First among the warnings, in the JSON document too: a script must be able to tell a list-price quote.
    estimate.warnings = [NO_TRAFFIC_WARNING, ...(estimate.warnings ?? [])];
  }
  if (flags.db !== undefined) {
    const drift = await pricingDrift(flags.db, waba, setup, flags);
    if (drift.length > 0) estimate.warnings = [...drift, ...(estimate.warnings ?? [])];
  }
  if (flags.format === 'json') io.writeOut(`${JSON.stringify(estimate)}\n`);
  else if (flags.format === 'csv') io.writeOut(estimateCsv(estimate));
  else io.writeOut(terminalSafe(estimateTable(estimate)));
  await io.settle?.();
  for (const warning of estimate.warnings ?? []) io.writeError(`wameter: warning: ${warning}\n`);
  if (flags.format !== 'json') {
    for (const bad of estimate.invalid.slice(0, 20))
      io.writeError(`wameter: ${recipientsName}:${bad.line}: invalid number: ${bad.error}\n`);
    if (estimate.invalid.length > 20)
      io.writeError(`wameter: … and ${estimate.invalid.length - 20} more invalid number(s)\n`);
  }
  errors.summarise();
  io.writeError(
    `wameter: quoted ${estimate.totals.count} recipient(s) for ${TEMPLATE_WITH_ARTICLE[flags.template]} template from WABA ${waba}, number ${business}; ${estimate.invalid.length} invalid\n`,
  );
  const unpriced = estimate.totals.unpriced;
  if (unpriced > 0 && !flags.allowUnpriced) {
    io.writeError(
      `wameter: ${unpriced} charged send(s) have no known price (see the warnings): the total is a floor; pass --allow-unpriced to accept\n`,
    );
  }
  if (errors.count > 0) return EXIT.BAD_INPUT;
  return unpriced > 0 && !flags.allowUnpriced ? EXIT.UNPRICED : EXIT.OK;
}

/**
 * How the accounts and rate cards of this quote differ from those the stored bill of `waba` was last priced
 * with (the service's: its configuration, not this command's flags): each a warning, since the quote then
 * prices the same state otherwise than the bill does (an authentication-international WABA quoted at the
 * domestic rate, another time zone's month). Nothing when the store holds no rating of the WABA.
 */
async function pricingDrift(
  db: string,
  waba: string,
  setup: RatingSetup,
  flags: Pick<EstimateFlags, 'accounts' | 'rateCards'>,
): Promise<string[]> {
  const store = await openCommandStore(db, { mode: 'read-only' });
  let last;
  try {
    [last] = await store.listRatings(1, [waba], { isWithoutChanges: true });
  } finally {
    await store.close();
  }
  if (last === undefined) return [];
  const warnings: string[] = [];
  const bill = `the stored bill of WABA ${waba} was last priced with (rating ${last.id}): these quotes may not match it`;
  if (last.accountsDigest !== undefined && last.accountsDigest !== accountsDigest(setup.accounts)) {
    const given =
      flags.accounts === undefined
        ? 'no accounts file was given (--accounts)'
        : `--accounts ${flags.accounts}`;
    warnings.push(
      `the accounts (time zones, currencies, portfolios, authentication-international) differ from those ${bill}; ${given}: give the service's accounts file (its WAMETER_ACCOUNTS or "accounts")`,
    );
  }
  const cards = setup.cards.map((card) => card.id).sort();
  const stored = [...last.rateCards].sort();
  // By content when the rating recorded it (a card edited under the same file name keeps its id), else by id.
  const isOtherCards =
    last.rateCardsDigest !== undefined
      ? last.rateCardsDigest !== rateCardsDigest(setup.cards)
      : stored.length > 0 && cards.join('\n') !== stored.join('\n');
  if (isOtherCards) {
    const given =
      flags.rateCards === undefined ? 'the bundled cards' : `--rate-cards ${flags.rateCards.join(' ')}`;
    warnings.push(
      `the rate cards (${given}) differ from those ${bill}: give the service's rate cards (its WAMETER_RATE_CARDS or "rateCards") with --rate-cards`,
    );
  }
  return warnings;
}

/** All of a stream's bytes (a recipients CSV piped in: checked for binary before it is decoded). */
async function readBytes(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** Said when `estimate` quotes with neither --events nor --db. */
export const NO_TRAFFIC_WARNING =
  'no traffic read (no --events source and no --db): quoted as if no customer service window, free entry point or conversation were open, none of the free allowance used and no volume-tier count reached; give --events or --db for the current state';

/**
 * The lines as CSV: the line's fields, then the kept columns (a kept column named like a field is already
 * `input_<name>`: parseRecipientsCsv). Header cells are escaped as data cells are: a column's name is the
 * CSV author's text, which may hold a comma or start like a formula.
 */
export function estimateCsv(estimate: EstimateJson): string {
  const columns = [...LINE_FIELDS, ...keptColumns(estimate)];
  const rows = [columns.map((column) => csvField(column)).join(',')];
  for (const line of estimate.lines) {
    rows.push(
      columns
        .map((column) => {
          const value = line[column];
          return csvField(typeof value === 'boolean' ? String(value) : value);
        })
        .join(','),
    );
  }
  return `${rows.join('\n')}\n`;
}

function keptColumns(estimate: EstimateJson): string[] {
  const columns = new Set<string>();
  for (const line of estimate.lines) {
    for (const key of Object.keys(line))
      if (!(LINE_FIELDS as readonly string[]).includes(key)) columns.add(key);
  }
  return [...columns];
}

export function estimateTable(estimate: EstimateJson): string {
  const out: string[] = [
    ['phone'.padEnd(16), 'market'.padEnd(22), 'price'.padStart(10), ' cur', ' free ', ' why'].join(' '),
  ];
  for (const line of estimate.lines) {
    out.push(
      [
        line.phone.padEnd(16),
        (line.market ?? '?').slice(0, 22).padEnd(22),
        (line.price ?? 'unpriced').padStart(10),
        ` ${line.currency}`,
        line.free ? ' free ' : '      ',
        ` ${line.reason}`,
      ].join(' '),
    );
  }
  if (estimate.lines.length === 0) out.push('  (no valid recipients)');
  const { totals } = estimate;
  out.push('', `Totals: ${totals.count} recipient(s), ${totals.free} free, ${totals.charged} charged`);
  if (totals.unpriced > 0) out.push(`  ${totals.unpriced} charged send(s) have no known price (see reasons)`);
  for (const [currency, entry] of Object.entries(totals.by_currency)) {
    // No amount is known when no charged send was priced; with some priced, the amount is a floor.
    const unpriced = entry.unpriced > 0 ? `: no price known for ${entry.unpriced} of them` : '';
    out.push(
      `  ${currency}  ${(entry.amount ?? 'unknown').padStart(12)}  for ${entry.charged} charged of ${entry.count}${unpriced}`,
    );
  }
  if (estimate.invalid.length > 0)
    out.push(`  ${estimate.invalid.length} invalid number(s) (listed on stderr)`);
  return `${out.join('\n')}\n`;
}
