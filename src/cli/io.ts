// The command line's window on the process, passed in so that commands run in tests without a subprocess.

import { EXIT } from './exit-codes.js';

export interface CliIo {
  writeOut(text: string): void;
  writeError(text: string): void;
  isStdinTty: boolean;
  /** Progress lines are for a person watching a terminal, not for logs. */
  isStderrTty?: boolean;
  stdin?: NodeJS.ReadableStream;
  exitCode: number;
}

export function processIo(): CliIo {
  return {
    writeOut: (text) => process.stdout.write(text),
    writeError: (text) => process.stderr.write(text),
    isStdinTty: Boolean(process.stdin.isTTY),
    isStderrTty: Boolean(process.stderr.isTTY),
    exitCode: 0,
  };
}

/**
 * A reader that stops reading (`wameter rate … | head -1`) closes the pipe: the next write fails with EPIPE.
 * That is the reader's choice, not an error: the command ends at once, quietly, with exit 0 (C programs die
 * of SIGPIPE there; Node ignores SIGPIPE and would print a stack). A closed stderr is ignored: there is no
 * one left to tell, and stdout may still be read.
 */
export function endQuietlyWhenOutputCloses(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(EXIT.OK);
  });
  process.stderr.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}
