#!/usr/bin/env node
// wameter's command line: builds the adapters and hands each command its use-case. Errors the user can act
// on are printed as one line; anything else is a bug and shows its stack.

import { Command, CommanderError } from 'commander';
import { CliError, EXIT } from './exit-codes.js';
import { processIo, type CliIo } from './io.js';
import { registerEstimateCommand } from './estimate-command.js';
import { registerExplainCommand } from './explain-command.js';
import { registerImportCommand } from './import-command.js';
import { registerRateCommand } from './rate-command.js';
import { registerReconcileCommand } from './reconcile-command.js';
import { registerRerateCommand } from './rerate-command.js';
import { registerServeCommand } from './serve-command.js';

export function buildProgram(io: CliIo): Command {
  const program = new Command();
  program
    .name('wameter')
    .description('Meters, prices and explains what businesses pay Meta for the WhatsApp Business Platform.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.writeOut, writeErr: io.writeError })
    .exitOverride();
  registerRateCommand(program, io);
  registerExplainCommand(program, io);
  registerEstimateCommand(program, io);
  registerReconcileCommand(program, io);
  registerServeCommand(program);
  registerImportCommand(program, io);
  registerRerateCommand(program);
  return program;
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return io.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (error instanceof CliError) {
      io.writeError(`wameter: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
}

const isEntryPoint =
  process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'));
if (isEntryPoint || process.argv[1]?.endsWith('/wameter')) {
  runCli(process.argv.slice(2), processIo()).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(
        `wameter: internal error (please report): ${(error as Error).stack ?? String(error)}\n`,
      );
      process.exitCode = 70;
    },
  );
}
