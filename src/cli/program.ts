// wameter's command line: builds the adapters and hands each command its use-case. Errors the user can act
// on are printed as one line; anything else is a bug and shows its stack. Run by main.ts, the entry point,
// which holds SIGTERM and SIGINT while this module and all it imports load (loading-signals.ts).

import { spawnSync } from 'node:child_process';
import { Command, CommanderError } from 'commander';
import { MoneyRangeError } from '../core/money.js';
import { CliError, EXIT, OutputClosedError } from './exit-codes.js';
import { endQuietlyWhenOutputCloses, processIo, type CliIo } from './io.js';
import { releaseHeldSignals } from './loading-signals.js';
import { refuseRepeatedValues } from './options.js';
import { registerEstimateCommand } from './estimate-command.js';
import { registerExplainCommand } from './explain-command.js';
import { registerImportCommand } from './import-command.js';
import { registerRateCommand } from './rate-command.js';
import { registerReconcileCommand } from './reconcile-command.js';
import { registerRerateCommand } from './rerate-command.js';
import { registerServeCommand } from './serve-command.js';

export interface ProgramOptions {
  /** The clock `estimate` uses when no --at is given (tests pin it). */
  now?: () => number;
}

export function buildProgram(io: CliIo, options: ProgramOptions = {}): Command {
  const program = new Command();
  program
    .name('wameter')
    .description('Meters, prices and explains what businesses pay Meta for the WhatsApp Business Platform.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.writeOut, writeErr: io.writeError })
    // Each command as its own usage line says it: commander's list builds the line from the arguments
    // alone, and would show estimate's recipients file, required but declared optional, as optional.
    .configureHelp({ subcommandTerm: (command) => `${command.name()} ${command.usage()}` })
    .exitOverride();
  registerRateCommand(program, io);
  registerExplainCommand(program, io);
  registerEstimateCommand(program, io, options.now ? { now: options.now } : {});
  registerReconcileCommand(program, io);
  registerServeCommand(program, io);
  registerImportCommand(program, io);
  registerRerateCommand(program, io);
  for (const command of program.commands) refuseRepeatedValues(command);
  return program;
}

export async function runCli(argv: string[], io: CliIo, options: ProgramOptions = {}): Promise<number> {
  const program = buildProgram(io, options);
  // An unknown command is refused even with --help, which commander would answer with the program's help and
  // exit 0 (`wameter cards --help`): a script would take the command for one that exists.
  // So is `wameter help cards`, which commander answers with the program's help alone, on stderr, exit 1.
  const [first, second] = argv;
  const commands = new Set([...program.commands.flatMap((c) => [c.name(), ...c.aliases()]), 'help']);
  const named = first === 'help' && second !== undefined && !second.startsWith('-') ? second : first;
  if (named !== undefined && !named.startsWith('-') && !commands.has(named)) {
    io.writeError(
      `error: unknown command '${named}'; the commands are ${[...commands].filter((c) => c !== 'help').join(', ')} (wameter --help)\n`,
    );
    return EXIT.USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return io.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    // The reader of stdout went away: the command ends quietly (README "Exit codes").
    if (error instanceof OutputClosedError) return EXIT.OK;
    if (error instanceof CliError) {
      io.writeError(`wameter: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof MoneyRangeError) {
      io.writeError(`wameter: ${error.message}; the output above is incomplete\n`);
      return EXIT.USAGE;
    }
    throw error;
  }
}

/** The heap cap of `rate --stream` when WAMETER_STREAM_HEAP_MB does not say (MiB). */
const STREAM_HEAP_MB = 640;
/** Below this a streaming rating of real traffic runs out of memory at once (MiB). */
const MIN_STREAM_HEAP_MB = 64;

/**
 * A streaming rating keeps only active users in memory, but V8 left alone grows its heap far past that live
 * set (measured: 780 MiB committed for 220 MiB live over 10 million events). `rate --stream` therefore runs
 * itself again with a heap cap, unless the caller already chose one. WAMETER_STREAM_HEAP_MB overrides it; a
 * value that is not a whole number of MiB from 64 up is refused (a CliError), never silently replaced.
 */
export function streamingHeapCap(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  execArgv: readonly string[],
): number | undefined {
  const isStreamingRate = argv[0] === 'rate' && argv.includes('--stream') && !argv.includes('--help');
  const isCapped =
    execArgv.some((arg) => arg.startsWith('--max-old-space-size')) ||
    (env.NODE_OPTIONS ?? '').includes('--max-old-space-size') ||
    env.WAMETER_HEAP_CAPPED === '1';
  if (!isStreamingRate || isCapped) return undefined;
  const setting = env.WAMETER_STREAM_HEAP_MB?.trim();
  if (setting === undefined || setting === '') return STREAM_HEAP_MB;
  const megabytes = /^\d+$/.test(setting) ? Number(setting) : Number.NaN;
  if (!(megabytes >= MIN_STREAM_HEAP_MB)) {
    throw new CliError(
      `WAMETER_STREAM_HEAP_MB must be a whole number of MiB, ${MIN_STREAM_HEAP_MB} or more, not "${env.WAMETER_STREAM_HEAP_MB}": fix it, or unset it for the default (${STREAM_HEAP_MB})`,
    );
  }
  return megabytes;
}

/** Runs the command `process.argv` names, as the program (main.ts, once this module is loaded). */
export function runAsEntryPoint(): void {
  const argv = process.argv.slice(2);
  // Only `serve` stops cleanly on a signal (runUntilSignalled takes the one held while loading, if any); any
  // other command ends by it as it always did, now that nothing holds it.
  if (argv[0] !== 'serve') {
    const held = releaseHeldSignals();
    if (held !== undefined) {
      process.kill(process.pid, held);
      return;
    }
  }
  let heapMb: number | undefined;
  try {
    heapMb = streamingHeapCap(argv, process.env, process.execArgv);
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    process.stderr.write(`wameter: ${error.message}\n`);
    process.exitCode = error.exitCode;
    return;
  }
  if (heapMb !== undefined) {
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, `--max-old-space-size=${heapMb}`, process.argv[1]!, ...argv],
      { stdio: 'inherit', env: { ...process.env, WAMETER_HEAP_CAPPED: '1' } },
    );
    if (child.error) {
      process.stderr.write(`wameter: cannot start the streaming rater: ${child.error.message}\n`);
      process.exitCode = EXIT.USAGE;
    } else if (child.signal) process.kill(process.pid, child.signal);
    else process.exitCode = child.status ?? EXIT.USAGE;
    return;
  }
  endQuietlyWhenOutputCloses();
  runCli(argv, processIo()).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(
        `wameter: internal error (please report): ${(error as Error).stack ?? String(error)}\n`,
      );
      process.exitCode = EXIT.INTERNAL;
    },
  );
}
