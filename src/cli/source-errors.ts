// Prints input problems to stderr as `file:line: message`, a bounded number of them, then a count;
// warnings about whole sources (an empty file); and how many items were skipped as not billing events, by
// reason.

import { EMPTY_SOURCE_REASON, type IgnoredNote, type SourceError } from '../ingest/read-events.js';
import { CliError } from './exit-codes.js';

const SHOWN = 20;

export function createSourceErrorReporter(writeError: (text: string) => void) {
  let count = 0;
  /** Items that are not billing events (group statuses, echoes, unknown fields…): counted by reason. */
  const skipped = new Map<string, number>();
  /** Fields of event lines the contract does not name (the lines were read without them): counted by field. */
  const unread = new Map<string, number>();
  /** Items read and kept that decide nothing (a webhook status of a word Meta does not document). */
  const withoutEffect = new Map<string, number>();
  /** The sources said to be empty (a warning each). */
  const emptySources: string[] = [];
  return {
    report(error: SourceError): void {
      count += 1;
      if (count > SHOWN) return;
      const where = 'line' in error ? `${error.file}:${error.line}` : error.file;
      writeError(`wameter: ${where}: ${error.code}: ${error.message}\n`);
    },
    /** A note about a whole source (an empty file): a warning on stderr, not an input problem. */
    notice(note: IgnoredNote): void {
      if (note.line === 0) {
        writeError(`wameter: ${note.file}: warning: ${note.reason}\n`);
        if (note.reason.startsWith(EMPTY_SOURCE_REASON)) emptySources.push(note.file);
      } else {
        const counts = note.isUnreadField ? unread : note.isWithoutEffect ? withoutEffect : skipped;
        counts.set(note.reason, (counts.get(note.reason) ?? 0) + note.count);
      }
    },
    get count(): number {
      return count;
    },
    /**
     * When not one event was read and the sources had problems (a gzip file, a folder with no event files,
     * only malformed lines), or were all empty, nothing was rated: refused (exit 1, the problems said above),
     * never an empty bill or story that would read as "nothing charged". Sources whose items were all skipped
     * as not billing events (message echoes, group statuses) are an answer: nothing billable happened.
     */
    refuseWhenNothingRead(events: number): void {
      if (events > 0) return;
      if (count === 0 && emptySources.length > 0 && skipped.size === 0 && withoutEffect.size === 0) {
        // Every source empty (a log rotated or truncated, a file not written yet): not "nothing was charged".
        this.summarise(false);
        const which = emptySources.length === 1 ? emptySources[0] : `all ${emptySources.length}`;
        throw new CliError(
          `the sources hold no event (${which} empty, said above): nothing was rated; give the files that hold the traffic`,
        );
      }
      if (count === 0) return;
      this.summarise(false);
      throw new CliError(
        'no event could be read from the sources (each problem is named above): nothing was rated',
      );
    },
    /** `wasAnythingRead` false: the count line does not say the other lines were rated (none was). */
    summarise(wasAnythingRead = true): void {
      // Told, so that nothing is skipped silently; not an input problem (exit code unchanged).
      const byCount = (counts: Map<string, number>) =>
        [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      for (const [reason, times] of byCount(skipped)) {
        writeError(`wameter: skipped, not billing events: ${times} × ${reason}\n`);
      }
      for (const [reason, times] of byCount(unread)) {
        writeError(`wameter: read without a field: ${times} × ${reason}\n`);
      }
      for (const [reason, times] of byCount(withoutEffect)) {
        writeError(`wameter: kept, deciding nothing: ${times} × ${reason}\n`);
      }
      if (count > SHOWN) writeError(`wameter: … and ${count - SHOWN} more input problem(s)\n`);
      if (count > 0 && wasAnythingRead)
        writeError(`wameter: ${count} input problem(s); every other line was read and rated\n`);
      else if (count > 0) writeError(`wameter: ${count} input problem(s)\n`);
    },
  };
}
