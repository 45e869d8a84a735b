// What every rating command reads from its flags: the event sources (stdin when none are given and stdin is
// not a terminal) and the pricing inputs (accounts, rate cards, reported rules), with errors that say what to do.

import { loadRatingSetup, type RatingSetup } from '../use-cases/load-rating-setup.js';
import { CliError } from './exit-codes.js';
import type { CliIo } from './io.js';

export interface PricingFlags {
  accounts?: string;
  rateCards?: string[];
  /** `--no-reported` sets it to false. */
  reported: boolean;
}

export function sourcesOrStdin(sources: string[], io: CliIo, command: string): string[] {
  if (sources.length > 0) return sources;
  if (io.isStdinTty) {
    throw new CliError(`give event files or folders, or - to read stdin (see wameter ${command} --help)`);
  }
  return ['-'];
}

export async function ratingSetupFrom(flags: PricingFlags): Promise<RatingSetup> {
  const setup = await loadRatingSetup({
    ...(flags.accounts === undefined ? {} : { accountsPath: flags.accounts }),
    ...(flags.rateCards === undefined ? {} : { rateCardPaths: flags.rateCards }),
    isReportedRulesEnabled: flags.reported,
  });
  if (!setup.ok) throw new CliError(setup.error.message);
  return setup.value;
}
