// `wameter explain`: a user's timeline in words — windows opened and closed, which message opened which
// unit, what it cost and why.

import { Command } from 'commander';
import { explainUser, explanationCsv, formatExplanation } from '../core/explain.js';
import type { BillableUnit, Era } from '../core/units.js';
import { rateSources } from '../use-cases/rate-sources.js';
import { ratingSetupFrom, sourcesOrStdin } from './rating-inputs.js';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { RATE_CARDS_HELP, choice, collectPaths, pathArgument, parseEra } from './options.js';
import { createSourceErrorReporter } from './source-errors.js';

interface ExplainFlags {
  user: string;
  business?: string;
  accounts?: string;
  rateCards?: string[];
  format: 'table' | 'text' | 'json' | 'csv';
  asOfRules?: Era;
  reported: boolean;
}

export function registerExplainCommand(program: Command, io: CliIo): void {
  program
    .command('explain')
    .description("tell, in words, why a user's messages cost what they cost")
    .argument('[sources...]', 'event files, folders, or - for stdin', [])
    .requiredOption('--user <wa_id>', "the user's WhatsApp id (phone number digits, no +)")
    .option('--business <phone_number_id>', 'only this business number')
    .option('--accounts <file>', 'accounts file (contract §2)', pathArgument)
    .option('--rate-cards <path>', RATE_CARDS_HELP, collectPaths)
    .option(
      '--format <format>',
      'table (the story in words; also: text), json or csv (one row per line of the story)',
      choice(['table', 'text', 'json', 'csv'] as const),
      'table',
    )
    .option('--as-of-rules <era>', 'explain under one era’s rules', parseEra)
    .option('--no-reported', 'do not apply rules only reported by third parties')
    .addHelpText(
      'after',
      `
The whole input is rated (monthly allowances and tiers depend on every user), then the user's story is told.

Example:
  wameter explain examples/month/events.ndjson --user 919876543210`,
    )
    .action(async (sources: string[], flags: ExplainFlags) => {
      io.exitCode = await runExplain(sources, flags, io);
    });
}

async function runExplain(sources: string[], flags: ExplainFlags, io: CliIo): Promise<number> {
  sources = sourcesOrStdin(sources, io, 'explain');
  const setup = await ratingSetupFrom(flags);
  const errors = createSourceErrorReporter(io.writeError);
  const units: BillableUnit[] = [];
  const result = await rateSources(
    sources,
    setup,
    {
      unit(unit) {
        if (unit.user === flags.user) units.push(unit);
      },
      pending() {},
    },
    {
      trace: { user: flags.user, ...(flags.business ? { business: flags.business } : {}) },
      ...(flags.asOfRules ? { asOfRules: flags.asOfRules } : {}),
      onSourceError: (error) => errors.report(error),
      ...(io.stdin ? { stdin: io.stdin } : {}),
    },
  );
  const explanation = explainUser(flags.user, flags.business, result.timeline, units);
  if (flags.format === 'json') io.writeOut(`${JSON.stringify(explanation, null, 2)}\n`);
  else if (flags.format === 'csv') io.writeOut(explanationCsv(explanation));
  else io.writeOut(`${formatExplanation(explanation)}\n`);
  errors.summarise();
  if (explanation.entries.length === 0) {
    io.writeError(
      `wameter: no messages of user ${flags.user} in the input: check the number (digits only, no +)\n`,
    );
  }
  return errors.count > 0 ? EXIT.BAD_INPUT : EXIT.OK;
}
