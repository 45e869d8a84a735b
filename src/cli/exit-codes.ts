// Exit codes of every wameter command, documented in the README. Scripts branch on them.

export const EXIT = {
  /** Everything read, rated and priced. */
  OK: 0,
  /**
   * Nothing done: a bad flag, an unreadable accounts file or rate card, a store that cannot be opened; for
   * `reconcile`, nothing could be checked against Meta (no agreement is claimed).
   */
  USAGE: 1,
  /** Done, but some input lines were malformed or a source unreadable (each named on stderr). */
  BAD_INPUT: 2,
  /**
   * Done, but some charged units have no price (unknown market, no rate, no rate card), or some delivered
   * messages could not be rated (no category, no user or business number): see findings.
   */
  UNPRICED: 3,
  /** `reconcile`: wameter and Meta disagree somewhere (each difference listed with its likely cause). */
  DIFFERENCES: 4,
  /** A bug in wameter (sysexits' EX_SOFTWARE): printed with its stack, to be reported. */
  INTERNAL: 70,
  /**
   * The output could not be written (sysexits' EX_IOERR): stdout refused it — a full disk, a file too large,
   * an I/O error. What was written before is incomplete. (A reader that stops reading is not this: exit 0.)
   */
  OUTPUT_FAILED: 74,
  /**
   * `serve` stopped itself, in-flight requests answered, because it lost the single-writer lock (sysexits'
   * EX_TEMPFAIL): a supervisor restarts it and the new process takes the lock again. Defined beside the
   * server as EXIT_WRITER_LOCK_LOST (src/server/main.ts, which cannot import the command line).
   */
  WRITER_LOCK_LOST: 75,
} as const;

/** An error the user can act on: printed as one message, never with a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.USAGE,
  ) {
    super(message);
  }
}

/**
 * stdout refused the output (a full disk, an I/O error): the command stops at once — there is no point
 * rating on for an output that cannot be written — and says so in one line, without the success summary.
 */
export class OutputError extends CliError {
  constructor(
    readonly reason: string,
    exitCode: number = EXIT.OUTPUT_FAILED,
  ) {
    super(`cannot write the output: ${reason}`, exitCode);
  }
}

/**
 * The reader of stdout went away (`wameter rate … | head -1`): its choice, not an error. The command stops at
 * its next write, as it does on a full disk (an `OutputError`, so that nothing takes it for a failed rating),
 * but quietly and with exit 0: no findings or summary on stderr, no exit 3 for a bill no one reads.
 */
export class OutputClosedError extends OutputError {
  constructor() {
    super('its reader went away (EPIPE)', EXIT.OK);
  }
}
