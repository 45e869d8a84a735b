// Structured JSON logs: one object per line, with the injected clock's instant. Callers pass fields, never
// bodies, secrets or keys; this module does not try to guess what is secret, so it must not be given any.

import type { LogLevel } from './config.js';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function createJsonLogger(options: {
  level: LogLevel;
  clock: () => number;
  /** Where each line goes (default: stdout). */
  write?: (line: string) => void;
}): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const threshold = RANK[options.level];
  const log = (level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields) => {
    if (RANK[level] < threshold) return;
    write(JSON.stringify({ at: new Date(options.clock()).toISOString(), level, msg, ...fields }));
  };
  return {
    debug: (msg, fields) => log('debug', msg, fields),
    info: (msg, fields) => log('info', msg, fields),
    warn: (msg, fields) => log('warn', msg, fields),
    error: (msg, fields) => log('error', msg, fields),
  };
}

/** A logger that keeps lines in memory (tests read them back). */
export function createMemoryLogger(clock: () => number = () => 0): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createJsonLogger({ level: 'debug', clock, write: (line) => lines.push(line) });
  return Object.assign(logger, { lines });
}

/** An error as loggable fields (name and message; the stack only at debug level is the caller's choice). */
export function errorFields(error: unknown): LogFields {
  if (error instanceof Error) return { error: error.message, errorName: error.name };
  return { error: String(error) };
}
