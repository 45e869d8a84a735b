// The command line's window on the process, passed in so that commands run in tests without a subprocess.

import { EXIT, OutputClosedError, OutputError } from './exit-codes.js';

export interface CliIo {
  /** Writes to stdout; throws `OutputError` when stdout refuses the output (a full disk…). */
  writeOut(text: string): void;
  writeError(text: string): void;
  /**
   * Waits for stdout's writes still under way, then throws as `writeOut` does when one failed: a command
   * calls it once its output is written, before it says more on stderr. A pipe's write that filled the pipe
   * ends later, and the reader going away meanwhile (`| head -1`) is known only then (`OutputClosedError`:
   * the command ends quietly, exit 0, its summary unsaid). Absent in tests' stand-ins: nothing to wait for.
   */
  settle?(): Promise<void>;
  isStdinTty: boolean;
  /** Progress lines are for a person watching a terminal, not for logs. */
  isStderrTty?: boolean;
  stdin?: NodeJS.ReadableStream;
  exitCode: number;
}

/** The streams `processIo` writes to: the process's own, or stand-ins in tests. */
export interface OutputStreams {
  stdout: NodeJS.WritableStream & {
    readonly errored?: Error | null;
    readonly writableLength?: number;
    isTTY?: boolean;
  };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** Failures of stdout already told by a command (through `OutputError`), so that the listener is silent. */
const toldFailures = new WeakSet<Error>();

export function processIo(
  streams: OutputStreams = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin },
): CliIo {
  const { stdout, stderr, stdin } = streams;
  const throwIfFailed = () => {
    const failure = stdout.errored as NodeJS.ErrnoException | null | undefined;
    if (!failure) return;
    if (failure.code === 'EPIPE') throw new OutputClosedError();
    toldFailures.add(failure);
    throw new OutputError(describeOutputFailure(failure));
  };
  return {
    writeOut: (text) => {
      stdout.write(text);
      // A file on Linux is written synchronously, so its failure (ENOSPC, EFBIG, EIO) is known at once: the
      // command stops here rather than rate on and print a success summary over an incomplete output. A
      // closed pipe (EPIPE) is the reader's choice: the command stops too, quietly (runCli: exit 0, nothing
      // on stderr), rather than go on to print its findings and summary to no one.
      throwIfFailed();
    },
    settle: async () => {
      if (stdout.errored || stdout.writableLength === 0) return throwIfFailed();
      // Called back once every earlier write has ended, or failed (then with an error, after `errored` is set).
      await new Promise<void>((resolve) => stdout.write('', () => resolve()));
      throwIfFailed();
    },
    writeError: (text) => void stderr.write(terminalSafe(text)),
    isStdinTty: Boolean(stdin.isTTY),
    isStderrTty: Boolean(stderr.isTTY),
    exitCode: 0,
  };
}

/**
 * `text` with every control character but line feed and tab written as `\uXXXX`: what wameter prints for a
 * person (tables, words, stderr) holds names taken from the input (a file name, Meta's words), and an escape
 * sequence in one must not drive the reader's terminal (clear it, retitle it, hide lines). Ids cannot hold
 * one (the reader refuses them: parse-event.ts), so no line of a table is forged either. JSON escapes its
 * own; CSV is data, written as it is.
 */
export function terminalSafe(text: string): string {
  return CONTROL.test(text)
    ? text.replace(CONTROL_ALL, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : text;
}

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const CONTROL_ALL = new RegExp(CONTROL.source, 'g');

/** Why stdout refused the output, in words, with the system's code (`no space left on device (ENOSPC)`). */
export function describeOutputFailure(error: NodeJS.ErrnoException): string {
  const words: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EFBIG: 'file too large',
    EDQUOT: 'disk quota exceeded',
    EIO: 'input/output error',
    EBADF: 'stdout is closed',
  };
  const said = error.code === undefined ? undefined : words[error.code];
  if (said !== undefined) return `${said} (${error.code})`;
  return error.code === undefined
    ? error.message
    : `${error.message.replace(/^E[A-Z]+: /, '')} (${error.code})`;
}

/** Set by a long-running command (`serve`): stdout carries its log, and a failure of it must not end it. */
let isOutputALog = false;

/**
 * A reader that stops reading (`wameter rate … | head -1`) closes the pipe: the next write fails with EPIPE.
 * That is the reader's choice, not an error: the command ends at once, quietly, with exit 0 (C programs die
 * of SIGPIPE there; Node ignores SIGPIPE and would print a stack). Any other failure of stdout that no command
 * has told yet (one that comes after the last write) is said in one line, exit 74 (README "Exit codes"). A
 * closed stderr is ignored: there is no one left to tell, and stdout may still be read.
 * Not for `serve` (`keepRunningWhenOutputCloses`): a service's stdout is its log, not its answer.
 */
export function endQuietlyWhenOutputCloses(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (isOutputALog) return;
    if (error.code === 'EPIPE') process.exit(EXIT.OK);
    if (toldFailures.has(error)) return;
    process.stderr.write(`wameter: ${new OutputError(describeOutputFailure(error)).message}\n`);
    process.exit(EXIT.OUTPUT_FAILED);
  });
  process.stderr.on('error', () => {
    // Nothing to do: see above.
  });
}

/**
 * For `serve`: stdout carries the service's log lines, and its reader going away (a log shipper restarted,
 * `cat logpipe` killed) must neither stop the service nor exit 0 (a supervisor would take that for a wanted
 * stop and not restart it). The server's log writer then stops logging and says so once on stderr
 * (`createStdoutWriter`, src/server/logger.ts); the service goes on.
 */
export function keepRunningWhenOutputCloses(): void {
  isOutputALog = true;
}
