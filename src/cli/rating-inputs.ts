// What every rating command reads from its flags: the event sources (stdin only when given as `-`) and the
// pricing inputs (accounts, rate cards, reported rules), with errors that say what to do.

import { existsSync } from 'node:fs';
import type { Era } from '../core/units.js';
import { loadRatingSetup, type RatingSetup } from '../use-cases/load-rating-setup.js';
import { CliError } from './exit-codes.js';

export interface PricingFlags {
  accounts?: string;
  rateCards?: string[];
  /** `--no-reported` sets it to false. */
  reported: boolean;
  /** `--as-of-rules`, on the commands that have it. */
  asOfRules?: Era;
}

/**
 * The event sources given. None is refused (exit 1), whatever stdin is: stdin is read only when given as `-`,
 * so a script whose `$FILES` expands to nothing, or a call run from cron (`</dev/null`), never prints an empty
 * bill as if nothing was charged. `flagBefore` tells which flag's value a source came after
 * (`watchFlagsBeforeOperands`), so that a refusal can say what the source was most likely meant for.
 */
export function eventSources(
  sources: string[],
  command: string,
  flagBefore: (operand: string) => string | undefined = () => undefined,
): string[] {
  refuseCsvSources(sources, flagBefore);
  // An empty operand is an unset variable in a script (`wameter rate "$LOG"`), as an empty flag value is.
  const empty = sources.findIndex((source) => source.trim() === '');
  if (empty !== -1) {
    throw new CliError(
      `source ${empty + 1} is empty (an unset variable in a script?): give event files or folders, or - to read stdin`,
    );
  }
  if (sources.length === 0) {
    throw new CliError(`give event files or folders, or - to read stdin (see wameter ${command} --help)`);
  }
  return someSourceExists(sources);
}

/**
 * Events are JSON (contract §1), never CSV, which would otherwise be read as malformed event lines. One
 * after `--rate-cards a.csv` is a second rate card, and the refusal says how to give several.
 */
function refuseCsvSources(sources: string[], flagBefore: (operand: string) => string | undefined): void {
  const csv = sources.find((source) => /\.csv$/i.test(source));
  if (csv === undefined) return;
  const refusal = `${csv} is a CSV file, not events (event files are .json, .ndjson or .jsonl)`;
  throw new CliError(
    flagBefore(csv) === '--rate-cards'
      ? `${refusal}: for several rate cards repeat the flag: --rate-cards … --rate-cards ${csv}`
      : refusal,
  );
}

/**
 * The sources, when at least one of them exists. When none does (a mistyped path), nothing would be read and
 * the command would print an empty bill: refused instead, nothing done (exit 1). When only some are missing,
 * each is named on stderr as it is read and the rest is rated (exit 2).
 */
export function someSourceExists(sources: string[]): string[] {
  if (sources.some((source) => source === '-' || existsSync(source))) return sources;
  const named = sources.map((source) => `'${source}'`).join(', ');
  throw new CliError(
    `no such file or folder: ${named}; nothing was read (give event files, folders, or - for stdin)`,
  );
}

export async function ratingSetupFrom(flags: PricingFlags): Promise<RatingSetup> {
  if (flags.asOfRules === 'PMP-2026-10' && !flags.reported) {
    throw new CliError(
      '--as-of-rules PMP-2026-10 applies rules only reported by third parties, which --no-reported switches off: drop one of the two',
    );
  }
  const setup = await loadRatingSetup({
    ...(flags.accounts === undefined ? {} : { accountsPath: flags.accounts }),
    ...(flags.rateCards === undefined ? {} : { rateCardPaths: flags.rateCards }),
    isReportedRulesEnabled: flags.reported,
  });
  if (!setup.ok) throw new CliError(setup.error.message);
  return setup.value;
}
