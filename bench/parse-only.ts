// The engine benchmark's baseline (table 1): read a file in the engine reader's chunks (READ_CHUNK_BYTES),
// split its lines, JSON.parse each. Nothing else. Shared by bench/main.ts and bench/columnar-read.ts, so that
// both measure the same loop. (With 1 MiB chunks it was 1.6–2.0× slower on a 2-core AMD EPYC VM, which
// flattered the ratio.)

import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { READ_CHUNK_BYTES } from '../src/ingest/read-events.js';

/** Lines parsed, and how many of them were objects (the bench's file holds nothing else). */
export async function parseEveryLine(path: string): Promise<{ lines: number; objects: number }> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let lines = 0;
  let objects = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK_BYTES })) {
    const text = rest + decoder.write(chunk as Buffer);
    let from = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', from)) {
      if (newline > from) {
        const value: unknown = JSON.parse(text.slice(from, newline));
        if (typeof value === 'object') objects++;
        lines++;
      }
      from = newline + 1;
    }
    rest = text.slice(from);
  }
  if (rest.trim() !== '') {
    JSON.parse(rest);
    lines++;
  }
  return { lines, objects };
}
