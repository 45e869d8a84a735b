// A command that writes to a store (`wameter import`) ended by Ctrl-C or a supervisor's SIGTERM. Node's default
// ends the process at once with no word and runs no `exit` listener, so the writer lock's file stayed behind
// (the next writer took it over, saying a dead process held it) and the operator was not told what was kept.
// Every write is its own transaction, so stopping between two is safe: what committed stays, the rest is
// rolled back (SQLite's are synchronous, so a listener runs between two; PostgreSQL's are rolled back when the
// connection closes).

import type { CliIo } from './io.js';

/** 128 + the signal's number, as a shell reports a process a signal ended. */
const EXIT_OF_SIGNAL: Readonly<Record<'SIGINT' | 'SIGTERM', number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Until the returned function is called: at SIGINT or SIGTERM, says `said(signal)` on stderr and exits with
 * 128 + the signal's number, running the process's `exit` listeners (the writer lock's file is removed).
 */
export function exitOnInterrupt(io: CliIo, said: (signal: NodeJS.Signals) => string): () => void {
  const stop = (signal: NodeJS.Signals) => {
    io.writeError(said(signal));
    process.exit(EXIT_OF_SIGNAL[signal as keyof typeof EXIT_OF_SIGNAL] ?? 1);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  };
}
