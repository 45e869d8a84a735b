// Parsing of flag values shared by commands (durations, eras, formats), with errors that say what to type.

import { InvalidArgumentError, Option, type Command } from 'commander';
import { ERAS, type Era } from '../core/units.js';
import { EXIT } from './exit-codes.js';

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(value: string): number {
  const match = DURATION.exec(value.trim());
  if (!match)
    throw new InvalidArgumentError(
      `"${value}" is not a duration: use a number and a unit, e.g. 90m, 24h, 7d`,
    );
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

export function parseEra(value: string): Era {
  const era = ERAS.find((e) => e.toLowerCase() === value.trim().toLowerCase());
  if (!era) throw new InvalidArgumentError(`"${value}" is not an era: use one of ${ERAS.join(', ')}`);
  return era;
}

/** One of `allowed`, in any letter case (`--template MARKETING`, as Meta writes categories; `--format JSON`). */
export function choice<T extends string>(allowed: readonly T[]) {
  return (value: string): T => {
    const chosen = allowed.find((one) => one.toLowerCase() === value.toLowerCase());
    if (chosen === undefined) {
      throw new InvalidArgumentError(`"${value}" is not one of ${allowed.join(', ')}`);
    }
    return chosen;
  };
}

/**
 * The parser of a flag that takes a value. commander gives such a flag the next word whatever it is, so
 * `--user --format json` would take "--format" as the user and "json" as a source: a value that starts with
 * `--` is the next option, the flag's own value forgotten, and is refused naming what the flag needs (`noun`,
 * e.g. "a WABA id"). So is an empty value (or only spaces): what an unset variable in a script gives, which
 * read as the flag left out would quietly change the answer (`--accounts ""`: every WABA billed in UTC and
 * USD; `--business ""`: every business number's story). Any other value goes to `parse`, when given. Every
 * value-taking flag of every command is declared with it (options.test.ts checks them all).
 */
export function optionValue(noun: string): (value: string) => string;
export function optionValue<T>(noun: string, parse: (value: string) => T): (value: string) => T;
export function optionValue<T>(noun: string, parse?: (value: string) => T): (value: string) => T | string {
  return (value) => {
    if (value.startsWith('--')) {
      throw new InvalidArgumentError(
        `"${value}" is an option, not ${noun}: the flag needs ${noun} before the next option`,
      );
    }
    if (value.trim() === '') {
      throw new InvalidArgumentError(
        `the value is empty (an unset variable in a script?): the flag needs ${noun}`,
      );
    }
    return parse === undefined ? value : parse(value);
  };
}

/**
 * The values of a repeatable or variadic flag (`--waba W1 W2`, `--rate-cards a.csv --rate-cards tiers/`),
 * each checked by `optionValue`.
 */
export function optionValues(noun: string): (value: string, previous?: string[]) => string[] {
  const one = optionValue(noun);
  const values = (value: string, previous: string[] = []) => [...previous, one(value)];
  REPEATABLE.add(values);
  return values;
}

/** The parsers of the flags whose values add up when the flag is repeated (`optionValues`). */
const REPEATABLE = new WeakSet<object>();

/**
 * Refuses a flag that takes one value given twice (`--template marketing --template utility`, `--analytics
 * sept.json --analytics oct.json`, `--accounts a.json --accounts b.json`): commander keeps the last value
 * without a word, so the first would be dropped — another category quoted, a month of Meta's export never
 * compared, a file of accounts never read. Exit 1, naming the values. Flags whose values add up (`--rate-cards`,
 * `--events`, rerate's `--waba`: `optionValues`) may be repeated.
 */
export function refuseRepeatedValues(command: Command): void {
  for (const option of command.options) {
    if (!(option.required || option.optional) || option.variadic) continue;
    if (option.parseArg !== undefined && REPEATABLE.has(option.parseArg)) continue;
    const given: string[] = [];
    command.on(`option:${option.name()}`, (value: string) => {
      given.push(value);
      if (given.length < 2) return;
      command.error(
        `error: option '${option.flags}' is given ${given.length} times (${given.map((v) => JSON.stringify(v)).join(', ')}), and takes one value: the last would be used and the others dropped without a word; give it once`,
        { exitCode: EXIT.USAGE, code: 'wameter.repeatedOption' },
      );
    });
  }
}

/**
 * A file or folder given to a flag that reads one (`--accounts`, `--analytics`, `--config`…). `-` is stdin only
 * for event sources and estimate's recipients: here it would be looked for as a file named "-" and said
 * missing, so it is refused saying how a pipe is given.
 */
export const pathArgument = optionValue('a file or folder', (value) => {
  if (value === '-') {
    throw new InvalidArgumentError(
      `"-" (stdin) is read only as an event source or estimate's recipients: give this flag a file (a pipe as /dev/stdin)`,
    );
  }
  return value;
});

/**
 * Paths of a repeatable flag (`--rate-cards a.csv --rate-cards tiers/`), each checked by `pathArgument`.
 * Repeating the flag, rather than listing paths after it, keeps the positional event sources unambiguous;
 * `rate` and `explain` also take `.csv` files listed after it (`watchRateCardOperands`).
 */
export const collectPaths = optionValues('a file or folder');

/** `--db`: a database URL (sqlite:PATH or postgres://…). */
export const databaseUrl = optionValue('a database URL');

/** An operand of a command as its option parsing sees it: see `scanOperands`. */
interface OperandPlace {
  operand: string;
  /** The long flag whose value it comes after, through nothing but other operands. */
  flagBefore?: string;
  /** Every operand between that flag's value and this one (this one too) is a rate-card-like `.csv` file. */
  isInCsvRunAfterFlag: boolean;
}

/**
 * The operands of `args` (the words commander's `parseOptions` gets), in order, each with where it stands
 * relative to the value-taking flags before it. Read as commander reads them: `--flag=value`, or
 * `--flag value` (an optional value only when not an option); nothing after `--` is looked at.
 */
function scanOperands(command: Command, args: readonly string[]): OperandPlace[] {
  const places: OperandPlace[] = [];
  const isOptionWord = (word: string | undefined) =>
    word !== undefined && word.length > 1 && word.startsWith('-');
  let flag: string | undefined;
  let isCsvRun = false;
  let inVariadic = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (inVariadic && !isOptionWord(arg)) continue;
    inVariadic = false;
    if (!isOptionWord(arg)) {
      isCsvRun = isCsvRun && CSV_FILE.test(arg);
      places.push({
        operand: arg,
        ...(flag === undefined ? {} : { flagBefore: flag }),
        isInCsvRunAfterFlag: isCsvRun,
      });
      continue;
    }
    const equals = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = equals > 0 ? arg.slice(0, equals) : arg;
    const option = command.options.find((candidate) => candidate.long === name || candidate.short === name);
    flag = option?.required || option?.optional ? option.long : undefined;
    isCsvRun = flag !== undefined;
    if (
      option !== undefined &&
      equals < 0 &&
      (option.required || (option.optional && !isOptionWord(args[i + 1])))
    ) {
      i++;
      inVariadic = option.variadic;
    }
  }
  return places;
}

const CSV_FILE = /\.csv$/i;

/**
 * Watches `command`'s option parsing (commander's `parseOptions`, which keeps no record of where an operand
 * stood) and calls `see` with the operands of each parse, placed by `scanOperands`, and how many operands
 * the parse found (those after a `--` too). commander parses only the words from the command's first option
 * on: the operands before it come first in the action's operands, and are not among these.
 */
function watchOperands(command: Command, see: (places: OperandPlace[], operandCount: number) => void): void {
  const parseOptions = command.parseOptions.bind(command);
  command.parseOptions = (args) => {
    const parsed = parseOptions(args);
    see(scanOperands(command, args), parsed.operands.length);
    return parsed;
  };
}

/**
 * For each operand of `command` (a source, the recipients file…), the long flag whose value it comes after,
 * through nothing but other operands: in `rec.csv --rate-cards a.csv b.csv`, b.csv comes after --rate-cards.
 * A message about an operand nobody expected can then say what it was most likely meant for (a second rate
 * card) without saying it of every stray operand. Operands written before the first option follow no flag.
 */
export function watchFlagsBeforeOperands(command: Command): (operand: string) => string | undefined {
  const flagBefore = new Map<string, string>();
  watchOperands(command, (places) => {
    flagBefore.clear();
    for (const { operand, flagBefore: flag } of places) {
      if (flag !== undefined && !flagBefore.has(operand)) flagBefore.set(operand, flag);
    }
  });
  return (operand) => flagBefore.get(operand);
}

/** The operands of a rating command, parted into event sources and rate cards listed after `--rate-cards`. */
export interface SourcesAndCards {
  sources: string[];
  rateCards: string[];
}

/**
 * `--rate-cards a.csv b.csv c.csv events.ndjson` (contract §3: `--rate-cards DIR|FILE…`): commander gives
 * the flag one value, the rest being operands. An operand ending in `.csv` right after the flag's value(s)
 * can never be an event source (events are JSON): it is a rate card too. The first operand that is not a
 * `.csv` file ends the list: a folder after a card stays an event source (it could hold either), and so does
 * everything after it. Returns the parting of a command's operands, as the last parse placed them.
 */
export function watchRateCardOperands(command: Command): (operands: readonly string[]) => SourcesAndCards {
  let places: OperandPlace[] = [];
  let parsedCount = 0;
  watchOperands(command, (seen, operandCount) => {
    places = seen;
    parsedCount = operandCount;
  });
  return (operands) => {
    // The parsed operands end the list; those before the first option follow no flag.
    const offset = operands.length - parsedCount;
    const isCard = (operand: string, index: number) => {
      const place = places[index - offset];
      return (
        place !== undefined &&
        place.operand === operand &&
        place.flagBefore === '--rate-cards' &&
        place.isInCsvRunAfterFlag
      );
    };
    return {
      sources: operands.filter((operand, index) => !isCard(operand, index)),
      rateCards: operands.filter((operand, index) => isCard(operand, index)),
    };
  };
}

/** The help line of `--rate-cards` on every rating command. */
export const RATE_CARDS_HELP =
  'rate card CSV file or folder; repeat the flag for several (--rate-cards a.csv --rate-cards tiers/); default: the bundled cards';

/** The help line of `--rate-cards` on the commands that also read `.csv` files after it (`watchRateCardOperands`). */
export const RATE_CARDS_LIST_HELP =
  'rate card CSV file or folder; repeat the flag for several (--rate-cards a.csv --rate-cards tiers/), or list .csv files after it (--rate-cards a.csv b.csv: a folder after them is an event source); default: the bundled cards';

/**
 * `--no-reported` on a command that reads it from the service's configuration (import, rerate, serve): refused
 * with where it goes, rather than commander's bare "unknown option". Hidden from --help.
 */
export function refuseReportedFlag(command: Command): void {
  command.addOption(new Option('--no-reported').hideHelp());
  command.hook('preAction', (self) => {
    if (self.opts().reported !== false) return;
    const asServe = self.name() === 'serve' ? '' : ', as serve does';
    self.error(
      `error: wameter ${self.name()} reads whether to apply rules only reported by third parties from the service's configuration${asServe}: give "reportedRules": false in --config FILE, or WAMETER_REPORTED_RULES=off — the same the service uses`,
      { exitCode: 1, code: 'wameter.reportedInConfig' },
    );
  });
}

/**
 * `--accounts` (and `--rate-cards`) on a command that reads them from the service's configuration, as
 * `serve` does (import, rerate): refused with where they go, rather than commander's bare "unknown option" —
 * after which a retry without the flag would quietly price every WABA in UTC and USD. Hidden from --help.
 */
export function refuseServiceSettings(
  command: Command,
  flags: readonly ('--accounts' | '--rate-cards')[],
): void {
  const where = {
    '--accounts': ['accounts', 'WAMETER_ACCOUNTS'],
    '--rate-cards': ['rateCards', 'WAMETER_RATE_CARDS'],
  } as const;
  for (const flag of flags) {
    const [key, variable] = where[flag];
    command.addOption(
      new Option(`${flag} <path>`).hideHelp().argParser(
        optionValue('a path', (value: string) => {
          throw new InvalidArgumentError(
            `wameter ${command.name()} reads ${flag.slice(2)} from the service's configuration, as serve does: give "${key}" in --config FILE, or ${variable}=${value} — the same the service uses`,
          );
        }),
      ),
    );
  }
}
