// Structured JSON logs: one object per line, with the injected clock's instant. Callers pass fields, never
// bodies, secrets or keys; this module does not try to guess what is secret, so it must not be given any.
// A log output that breaks (its reader gone) never stops the service: logging stops, said once on stderr (as
// one JSON line too). Process warnings (Node's, and the SQLite WAL checkpointer's) go through it while the
// service runs (`routeProcessWarnings`), instead of Node's plain text on stderr.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { LogLevel } from './config.js';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /**
   * Whether a line of `level` would be written: a caller whose fields cost work to gather (the request line's
   * error code, read from the answer's body) gathers them only then.
   */
  isLevelWritten(level: Exclude<LogLevel, 'silent'>): boolean;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/**
 * Fields of the request being handled (its `requestId`), put on every line logged on its behalf: set by the
 * request log middleware around the request, and emptied once it is answered, so that work the request only
 * scheduled (a debounced rating) logs without them.
 */
export interface RequestLogContext {
  fields: LogFields | null;
}

const requestContext = new AsyncLocalStorage<RequestLogContext>();

/** Runs `handle` with `context`'s fields on every line logged inside it (its awaits included). */
export function withRequestLogContext<T>(context: RequestLogContext, handle: () => T): T {
  return requestContext.run(context, handle);
}

export function createJsonLogger(options: {
  level: LogLevel;
  clock: () => number;
  /** Where each line goes (default: stdout, through `createStdoutWriter`). */
  write?: (line: string) => void;
}): Logger {
  const write = options.write ?? createStdoutWriter(undefined, options.clock);
  const threshold = RANK[options.level];
  const log = (level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields) => {
    if (RANK[level] < threshold) return;
    const request = requestContext.getStore()?.fields;
    write(JSON.stringify({ at: new Date(options.clock()).toISOString(), level, msg, ...request, ...fields }));
  };
  return {
    debug: (msg, fields) => log('debug', msg, fields),
    info: (msg, fields) => log('info', msg, fields),
    warn: (msg, fields) => log('warn', msg, fields),
    error: (msg, fields) => log('error', msg, fields),
    isLevelWritten: (level) => RANK[level] >= threshold,
  };
}

/** The streams a log writer uses: the process's own, or stand-ins in tests. */
export interface LogStreams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** The state of a log stream, shared by every writer of it: the failure that broke it, and how to say one. */
interface OutputState {
  failure: NodeJS.ErrnoException | null;
  fail(error: NodeJS.ErrnoException): void;
}

const outputStates = new WeakMap<NodeJS.WritableStream, OutputState>();

/**
 * Writes log lines to stdout. A long-running service must not die of its log output: when stdout fails (the
 * reader of its pipe went away: EPIPE; a full disk: ENOSPC), lines are dropped from then on, the failure is
 * said once on stderr (if it still works) as one JSON log line, and the service goes on answering — Meta's
 * webhooks matter more than their log lines, and an exit would cut in-flight requests. A restart reconnects
 * the output.
 */
export function createStdoutWriter(
  streams: LogStreams = { stdout: process.stdout, stderr: process.stderr },
  clock: () => number = Date.now,
): (line: string) => void {
  const { stdout, stderr } = streams;
  let state = outputStates.get(stdout);
  if (state === undefined) {
    const created: OutputState = {
      failure: null,
      fail(error) {
        if (created.failure !== null) return;
        created.failure = error;
        const code = error.code ?? error.message;
        const why = code === 'EPIPE' ? ': its reader went away' : '';
        try {
          const line = JSON.stringify({
            at: new Date(clock()).toISOString(),
            level: 'error',
            msg: `the log output (stdout) failed (${code}${why}): no more log lines are written; the service goes on (restart it to log again)`,
            errorCode: 'LOG_OUTPUT_FAILED',
            code,
          });
          stderr.write(`${line}\n`);
        } catch {
          // stderr is gone too: there is no one left to tell.
        }
      },
    };
    state = created;
    outputStates.set(stdout, created);
    stdout.on('error', (error: NodeJS.ErrnoException) => created.fail(error));
    // A broken stderr must not end the service either.
    stderr.on('error', () => undefined);
  }
  const output = state;
  return (line) => {
    if (output.failure !== null) return;
    try {
      stdout.write(`${line}\n`);
    } catch (error) {
      output.fail(error as NodeJS.ErrnoException);
    }
  };
}

/**
 * Logs the process's warnings through `logger` (level warn; `warning`: its name, `warningCode`: its code,
 * `detail`), instead of Node's default, which prints them on stderr as plain text (`(node:PID) Warning: …`)
 * among the service's JSON lines. The SQLite WAL checkpointer says so when its worker stops (code
 * `WAMETER_WAL_CHECKPOINTER`); Node, of a deprecated API a dependency calls. Returns a function that gives
 * the warnings back to the listeners that had them (Node's printer): the commands other than `serve` keep
 * their plain stderr.
 */
export function routeProcessWarnings(logger: Logger): () => void {
  const previous = process.listeners('warning');
  const log = (warning: Error & { code?: unknown; detail?: unknown }) => {
    logger.warn(warning.message, {
      warning: warning.name,
      ...(typeof warning.code === 'string' ? { warningCode: warning.code } : {}),
      ...(typeof warning.detail === 'string' ? { detail: warning.detail } : {}),
    });
  };
  process.removeAllListeners('warning');
  process.on('warning', log);
  return () => {
    process.off('warning', log);
    for (const listener of previous) process.on('warning', listener);
  };
}

/** Whether the log output of `stdout` has failed (for the `log_output_failed` gauge). */
export function hasLogOutputFailed(stdout: NodeJS.WritableStream = process.stdout): boolean {
  return outputStates.get(stdout)?.failure != null;
}

/** A logger that keeps the lines of `level` and above in memory (tests read them back). */
export function createMemoryLogger(
  clock: () => number = () => 0,
  level: LogLevel = 'debug',
): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createJsonLogger({ level, clock, write: (line) => lines.push(line) });
  return Object.assign(logger, { lines });
}

/** An error as loggable fields (name and message; the stack only at debug level is the caller's choice). */
export function errorFields(error: unknown): LogFields {
  if (error instanceof Error) return { error: error.message, errorName: error.name };
  return { error: String(error) };
}
