// Prints input problems to stderr as `file:line: message`, a bounded number of them, then a count; and
// warnings about whole sources (an empty file).

import type { IgnoredNote, SourceError } from '../ingest/read-events.js';

const SHOWN = 20;

export function createSourceErrorReporter(writeError: (text: string) => void) {
  let count = 0;
  return {
    report(error: SourceError): void {
      count += 1;
      if (count > SHOWN) return;
      const where = 'line' in error ? `${error.file}:${error.line}` : error.file;
      writeError(`wameter: ${where}: ${error.code}: ${error.message}\n`);
    },
    /** A note about a whole source (an empty file): a warning on stderr, not an input problem. */
    notice(note: IgnoredNote): void {
      if (note.line === 0) writeError(`wameter: ${note.file}: warning: ${note.reason}\n`);
    },
    get count(): number {
      return count;
    },
    summarise(): void {
      if (count > SHOWN) writeError(`wameter: … and ${count - SHOWN} more input problem(s)\n`);
      if (count > 0) writeError(`wameter: ${count} input problem(s); every other line was read and rated\n`);
    },
  };
}
