import { Readable } from 'node:stream';
import type { CoreEvent } from '../../src/core/events.js';
import { readEventSources, type IgnoredNote, type SourceError } from '../../src/ingest/read-events.js';

/** What the reader made of a text: its events, errors and notes, in order. */
export interface ReadText {
  events: CoreEvent[];
  errors: SourceError[];
  ignored: IgnoredNote[];
}

/**
 * What `readEventSources` makes of `text` read as a file (from a stream of bytes, as a file is read): the
 * reader the byte scanners' tests compare them with.
 */
export async function readText(text: string | Buffer): Promise<ReadText> {
  const read: ReadText = { events: [], errors: [], ignored: [] };
  await readEventSources(
    ['-'],
    {
      onEvents: (events) => read.events.push(...events),
      onError: (error) => read.errors.push(error),
      onIgnored: (note) => read.ignored.push(note),
    },
    { stdin: Readable.from([typeof text === 'string' ? Buffer.from(text, 'utf8') : text]) },
  );
  return read;
}
