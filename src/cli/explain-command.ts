// `wameter explain`: a user's timeline in words — windows opened and closed, which message opened which
// unit, what it cost and why, and the messages never charged (pending, failed: found in the events, which
// the rater keeps to itself).

import { stat } from 'node:fs/promises';
import { Command } from 'commander';
import {
  UserSendLog,
  explainUser,
  explanationCsv,
  formatExplanation,
  type Explanation,
  type UnratedMessage,
} from '../core/explain.js';
import { ERAS, type BillableUnit, type Era, type Finding } from '../core/units.js';
import { canonicalUser, normalisePhone } from '../core/phone.js';
import { readEventSources } from '../ingest/read-events.js';
import { rateSources } from '../use-cases/rate-sources.js';
import { eventSources, ratingSetupFrom } from './rating-inputs.js';
import { EXIT } from './exit-codes.js';
import { findingsOfStory, storyScopeOf } from '../use-cases/explain-findings.js';
import { sayFindingsBesideCsv } from './findings-on-stderr.js';
import { terminalSafe, type CliIo } from './io.js';
import {
  RATE_CARDS_LIST_HELP,
  choice,
  collectPaths,
  optionValue,
  pathArgument,
  parseEra,
  watchFlagsBeforeOperands,
  watchRateCardOperands,
} from './options.js';
import { createSourceErrorReporter } from './source-errors.js';
import {
  ALLOW_UNPRICED_HELP,
  storyFindingLine,
  unpricedExit,
  unratedCodesIn,
  unratedIn,
} from './unpriced.js';

interface ExplainFlags {
  user: string;
  business?: string;
  accounts?: string;
  rateCards?: string[];
  format: 'table' | 'text' | 'json' | 'csv';
  asOfRules?: Era;
  reported: boolean;
  allowUnpriced?: boolean;
}

/** `--user`: a WhatsApp id to look for (an empty one, which would match no one, is refused by `optionValue`). */
const userArgument = optionValue("a user's WhatsApp id");

export function registerExplainCommand(program: Command, io: CliIo): void {
  const command = program.command('explain');
  const flagBefore = watchFlagsBeforeOperands(command);
  const cardsAfterFlag = watchRateCardOperands(command);
  command
    .description("tell, in words, why a user's messages cost what they cost")
    .argument('[sources...]', 'event files, folders, or - for stdin', [])
    .requiredOption(
      '--user <wa_id>',
      "the user's WhatsApp id: the phone number with country code (+, spaces, dashes, dots, brackets and a leading 00 are ignored), or a business-scoped user id as Meta writes it",
      userArgument,
    )
    .option('--business <phone_number_id>', 'only this business number', optionValue('a phone number id'))
    .option('--accounts <file>', 'accounts file (contract §2)', pathArgument)
    .option('--rate-cards <path>', RATE_CARDS_LIST_HELP, collectPaths)
    .option(
      '--format <format>',
      'table (the story in words; also: text), json or csv (one row per line of the story)',
      optionValue('a format', choice(['table', 'text', 'json', 'csv'] as const)),
      'table',
    )
    .option(
      '--as-of-rules <era>',
      `explain under one era’s rules: ${ERAS.join(', ')}`,
      optionValue('an era', parseEra),
    )
    .option('--no-reported', 'do not apply rules only reported by third parties')
    .option('--allow-unpriced', ALLOW_UNPRICED_HELP)
    .addHelpText(
      'after',
      `
The whole input is rated (monthly allowances and tiers depend on every user), then the user's story is told:
messages delivered, windows and units, and the business messages never charged (pending: sent but never
delivered; failed), with the findings that concern it (its number, its messages, a price missing from its
units, its WABA as a whole): in the table a "Findings" section, in JSON a "findings" list, with --format csv
on stderr. When the user (or the --business number) is not in the input, stderr says which; the exit code
stays 0: an empty story is an answer.

Exit codes: 0 told; 1 nothing done (bad flag, no source given — stdin is read only with -, unreadable
accounts or rate card, no given source exists, or not one event could be read from the sources); 2 some
input lines malformed or a source unreadable (each named on stderr, the story told from the rest); 3 a
charged unit of the story could not be priced, or the story's WABA has delivered messages that could not
be rated (see its findings; --allow-unpriced accepts these); with both 2 and 3, both are said and the exit
code is 2.

Example:
  wameter explain examples/month/events.ndjson --accounts examples/month/accounts.json --user 916289289587`,
    )
    .action(async (operands: string[], flags: ExplainFlags) => {
      // `--rate-cards a.csv b.csv`: b.csv is a card (commander gave it to the sources).
      const { sources: events, rateCards } = cardsAfterFlag(operands);
      if (rateCards.length > 0) flags.rateCards = [...(flags.rateCards ?? []), ...rateCards];
      io.exitCode = await runExplain(events, flags, io, flagBefore);
    });
}

async function runExplain(
  sources: string[],
  flags: ExplainFlags,
  io: CliIo,
  flagBefore: (operand: string) => string | undefined,
): Promise<number> {
  sources = eventSources(sources, 'explain', flagBefore);
  const setup = await ratingSetupFrom(flags);
  const errors = createSourceErrorReporter(io.writeError);
  // The same number as `estimate` reads it; anything else (a business-scoped user id) is taken as given.
  const given = flags.user.trim();
  const phone = normalisePhone(given);
  // Units name a Brazilian or Mexican mobile in one form, whichever the input used (canonicalUser).
  const user = phone.ok ? canonicalUser(phone.value) : given;
  // A business-scoped id the rater joins to its phone number (Meta gave both on one message) has that
  // number's story: one window, one set of conversations.
  let storyUser = user;
  const units: BillableUnit[] = [];
  const pending: UnratedMessage[] = [];
  // The rater says nothing of failed messages (they are never charged): they are read from the events.
  const sends = new UserSendLog(user);
  // The user is traced with every business number, so that a wrong --business can be told from a wrong user.
  const rating = await rateSources(
    sources,
    setup,
    {
      unit(unit) {
        if (unit.user === storyUser) units.push(unit);
      },
      pending(message) {
        if (message.user === storyUser) pending.push({ ...message });
      },
    },
    {
      trace: { user, onJoined: (number) => (storyUser = number) },
      ...(flags.asOfRules ? { asOfRules: flags.asOfRules } : {}),
      onEvent: (event) => sends.observe(event),
      onSourceError: (error) => errors.report(error),
      onIgnored: (note) => errors.notice(note),
      ...(io.stdin ? { stdin: io.stdin } : {}),
    },
  );
  errors.refuseWhenNothingRead(rating.read.events);
  const { timeline } = rating;
  for (const message of pending) {
    const template = sends.templateOf(message.id);
    if (template !== undefined) message.template = template;
  }
  const rated = new Set(timeline.flatMap((line) => (line.kind === 'message' ? [line.messageId] : [])));
  // The send log followed the id as asked; the number it was joined to is known only now: its own failures
  // are read from the sources again — only from files and folders: stdin and pipes are read once (a second
  // opening of a named pipe would wait for a writer for ever); then they are not listed, and stderr says so.
  const failed = sends.failed(rated).map((message) => ({ ...message, user: storyUser }));
  const readOnce = storyUser === user ? undefined : await sourceReadOnce(sources);
  if (readOnce !== undefined) {
    io.writeError(
      `wameter: ${terminalSafe(user)} is joined to ${storyUser}: failed messages sent to ${storyUser} itself are not listed, because ${readOnce} can be read only once; give the events as a file to list them\n`,
    );
  }
  if (storyUser !== user && readOnce === undefined) {
    const numberSends = new UserSendLog(storyUser);
    await readEventSources(sources, {
      onEvents: (events) => events.forEach((event) => numberSends.observe(event)),
      onError: () => undefined, // said in the first reading
    });
    const ids = new Set(failed.map((message) => message.id));
    for (const message of numberSends.failed(rated)) if (!ids.has(message.id)) failed.push(message);
  }
  const unrated = [...pending, ...failed];
  const story = explainUser(
    storyUser,
    flags.business,
    timeline,
    units,
    unrated,
    (waba) => setup.accountBook.accountFor(waba).timeZone,
  );
  // The id asked for, right after the number whose story it has.
  const { user: number, ...told } = story;
  const explanation = storyUser === user ? story : { user: number, scoped_user: user, ...told };
  const shownUnits = units.filter((unit) => flags.business === undefined || unit.business === flags.business);
  const shownTimeline = timeline.filter(
    (line) => flags.business === undefined || line.business === flags.business,
  );
  const shownUnrated = unrated.filter(
    (message) => flags.business === undefined || message.business === flags.business,
  );
  const findings = findingsOfStory(
    rating.findings,
    storyScopeOf(
      storyUser,
      { timeline: shownTimeline, unrated: shownUnrated, units: shownUnits },
      (waba) => setup.accountBook.accountFor(waba).timeZone,
    ),
  );
  const warn = (message: string) => io.writeError(`wameter: ${message}\n`);
  // The contract's explain document, extended (contract: "extend freely") with the story's findings.
  if (flags.format === 'json') io.writeOut(`${JSON.stringify({ ...explanation, findings }, null, 2)}\n`);
  else if (flags.format === 'csv') io.writeOut(explanationCsv(explanation));
  else {
    // Each business number's WABA clock (its local date decides era, month and rate card), beside UTC.
    const wabaOfBusiness = new Map<string, string>();
    for (const item of [...timeline, ...units, ...unrated]) wabaOfBusiness.set(item.business, item.waba);
    const zoneOf = (business: string) => {
      const waba = wabaOfBusiness.get(business);
      return waba === undefined ? undefined : setup.accountBook.accountFor(waba).timeZone;
    };
    io.writeOut(terminalSafe(`${formatExplanation(explanation, zoneOf)}\n${findingsSection(findings)}`));
  }
  await io.settle?.();
  // A CSV holds the story's lines only (its pending messages among them): the findings are said beside it.
  if (flags.format === 'csv') sayFindingsBesideCsv(findings, undefined, warn, storyFindingLine);
  errors.summarise();
  const missing = whatIsMissing(explanation, flags.business, {
    userBusinesses: new Set([
      ...timeline.map((line) => line.business),
      ...unrated.map((message) => message.business),
    ]),
    inputBusinesses: sends.businesses,
  });
  for (const line of missing) warn(line);
  // Nothing found is an answer, not a failure (the input was read and rated). A story with a charged unit
  // without a price, or of a WABA whose delivered messages could not all be rated, is not the whole answer:
  // exit 3, as `rate` (README "Exit codes"), said even when malformed lines decide the code.
  const unpriced = shownUnits.filter((unit) => unit.type === 'regular' && unit.amountMicros === null).length;
  const exit = unpricedExit(
    { unpriced, unrated: unratedIn(findings), unratedCodes: unratedCodesIn(findings) },
    flags.allowUnpriced,
    warn,
  );
  if (errors.count > 0) return EXIT.BAD_INPUT;
  return exit;
}

/** The story's findings for the table, after its totals; nothing when there are none. */
function findingsSection(findings: readonly Finding[]): string {
  if (findings.length === 0) return '';
  return `\nFindings\n${findings.map((finding) => `  ${storyFindingLine(finding)}\n`).join('')}`;
}

/** When the story is empty: which of the user and the business number the input does not have. */
function whatIsMissing(
  explanation: Explanation,
  business: string | undefined,
  seen: { userBusinesses: ReadonlySet<string>; inputBusinesses: ReadonlySet<string> },
): string[] {
  if (explanation.entries.length > 0) return [];
  const { user } = explanation;
  const list = (numbers: ReadonlySet<string>) => {
    const sorted = [...numbers].sort();
    return `${sorted.slice(0, 5).join(', ')}${sorted.length > 5 ? `, … (${sorted.length} in all)` : ''}`;
  };
  const lines: string[] = [];
  if (business !== undefined && !seen.inputBusinesses.has(business)) {
    lines.push(
      `business number ${business} is not in the input${seen.inputBusinesses.size > 0 ? ` (it has ${list(seen.inputBusinesses)})` : ''}: check --business (the phone number id)`,
    );
  }
  if (seen.userBusinesses.size === 0) {
    lines.push(
      `no messages of user ${user} in the input: check the number (with its country code, e.g. 919876543210)`,
    );
  } else if (business !== undefined && seen.inputBusinesses.has(business)) {
    lines.push(
      `user ${user} has no messages with business number ${business} in the input, only with ${list(seen.userBusinesses)}`,
    );
  }
  return lines;
}

/** The first source that cannot be read a second time (stdin, a pipe, a device), in words; none: undefined. */
async function sourceReadOnce(sources: readonly string[]): Promise<string | undefined> {
  for (const source of sources) {
    if (source === '-') return 'stdin';
    const kind = await stat(source).then(
      (stats) => (stats.isFile() || stats.isDirectory() ? undefined : 'a pipe or device'),
      () => 'unreadable now',
    );
    if (kind !== undefined) return `${terminalSafe(source)} (${kind})`;
  }
  return undefined;
}
