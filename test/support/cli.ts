// Runs the real command line in-process, as `wameter ARGS` would, and collects what it printed.
import { Readable } from 'node:stream';
import type { CliIo } from '../../src/cli/io.js';
import { runCli, type ProgramOptions } from '../../src/cli/program.js';

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

export async function runWameter(
  args: string[],
  options: ProgramOptions & { stdin?: string; isStderrTty?: boolean } = {},
): Promise<CliRun> {
  let out = '';
  let err = '';
  const io: CliIo = {
    writeOut: (text) => void (out += text),
    writeError: (text) => void (err += text),
    isStdinTty: options.stdin === undefined,
    isStderrTty: options.isStderrTty ?? false,
    exitCode: 0,
  };
  if (options.stdin !== undefined) io.stdin = Readable.from([options.stdin]);
  const code = await runCli(args, io, options.now ? { now: options.now } : {});
  return { code, out, err };
}
