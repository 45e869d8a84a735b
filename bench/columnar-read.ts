// What reading a file costs the columnar reader's parts (stage 2, wired in `rateSources`: read-columnar.ts),
// against the bench's parse-only loop and the general reader, each run in its own process (docs/benchmarks.md
// §1, fortieth session). Not a test and not part of `npm run bench`.
//
//   node dist/bench/columnar-read.js parse|reader|split|scan|columnar|columnar-webhooks FILE
//
// parse: the bench's baseline (bench/parse-only.ts, as bench/main.ts runs it): 64 KiB chunks, StringDecoder,
// split, JSON.parse.
// reader: `readEventSources` into a sink that drops what it is given.
// split: LineSplitter over the same chunks, nothing done with the lines.
// scan: and scanContractLine on every line, nothing kept; the other lines skipped (not parsed).
// columnar: LineSplitter over the same chunks, scanContractLine on every line, each accepted line's id, user,
//   business number and WABA interned (four ByteKeyTables) and its instant kept; JSON.parse of every other line.
// columnar-webhooks: the same, and each refused line read as the reader reads it (parseEventValue), the keys of
//   its events interned from their strings: what stage 2 costs if it keeps parse-event for webhook bodies.

import { createReadStream } from 'node:fs';
import { ByteKeyTable } from '../src/core/columnar/byte-key-table.js';
import { LineSplitter } from '../src/ingest/columnar/line-splitter.js';
import { LINE_STATUS, scanContractLine, ScannedLine } from '../src/ingest/columnar/scan-contract-line.js';
import { isPlainJsonText, parseEventValue } from '../src/ingest/parse-event.js';
import { readEventSources, READ_CHUNK_BYTES } from '../src/ingest/read-events.js';
import { parseEveryLine } from './parse-only.js';

type Mode = 'parse' | 'reader' | 'split' | 'scan' | 'columnar' | 'columnar-webhooks';

async function reader(path: string): Promise<Record<string, number>> {
  let events = 0;
  const summary = await readEventSources([path], {
    onEvents: (batch) => {
      events += batch.length;
    },
    onError: () => undefined,
  });
  return { lines: summary.lines, events, errors: summary.errors };
}

async function splitOrScan(path: string, isScanned: boolean): Promise<Record<string, number>> {
  const scanned = new ScannedLine();
  let accepted = 0;
  const splitter = new LineSplitter((bytes, start, end) => {
    if (isScanned && scanContractLine(bytes, start, end, scanned)) accepted++;
  });
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK_BYTES }))
    splitter.push(chunk as Buffer);
  splitter.end();
  return { lines: splitter.lines, accepted };
}

async function columnar(path: string, isWebhookRead: boolean): Promise<Record<string, number>> {
  const ids = new ByteKeyTable({ initialSlots: 1 << 16 });
  const users = new ByteKeyTable();
  const businesses = new ByteKeyTable();
  const wabas = new ByteKeyTable();
  const scanned = new ScannedLine();
  let instants = new Float64Array(1 << 16);
  let accepted = 0;
  let parsed = 0;
  let webhookEvents = 0;
  let checksum = 0;
  const keep = (id: number, atMs: number) => {
    if (id >= instants.length) {
      const grown = new Float64Array(instants.length * 2);
      grown.set(instants);
      instants = grown;
    }
    instants[id] = atMs;
  };
  const splitter = new LineSplitter((bytes, start, end) => {
    if (start === end) return;
    if (scanContractLine(bytes, start, end, scanned)) {
      accepted++;
      const id = ids.intern(bytes, scanned.idStart, scanned.idEnd);
      keep(id, scanned.atMs);
      if (scanned.kind !== LINE_STATUS || scanned.userStart !== -1) {
        checksum += users.intern(bytes, scanned.userStart, scanned.userEnd);
      }
      if (scanned.businessStart !== -1)
        checksum += businesses.intern(bytes, scanned.businessStart, scanned.businessEnd);
      if (scanned.wabaStart !== -1) checksum += wabas.intern(bytes, scanned.wabaStart, scanned.wabaEnd);
      return;
    }
    parsed++;
    const value: unknown = JSON.parse(bytes.toString('utf8', start, end));
    if (!isWebhookRead) return;
    // As the reader tells it: strings of plain text need no look for control characters.
    const result = parseEventValue(value, isPlainJsonText(bytes.subarray(start, end)));
    if (!result.ok) return;
    for (const event of result.value.events) {
      webhookEvents++;
      if (event.kind !== 'status' && event.kind !== 'inbound' && event.kind !== 'outbound') continue;
      keep(ids.internString(event.id), event.atMs);
      if (event.user !== undefined) checksum += users.internString(event.user);
      if (event.business !== undefined) checksum += businesses.internString(event.business);
      if (event.waba !== undefined) checksum += wabas.internString(event.waba);
    }
  });
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK_BYTES }))
    splitter.push(chunk as Buffer);
  splitter.end();
  if (splitter.needsReader !== undefined) throw new Error(`the reader is needed: ${splitter.needsReader}`);
  return {
    lines: splitter.lines,
    accepted,
    parsed,
    webhookEvents,
    ids: ids.size,
    users: users.size,
    businesses: businesses.size,
    wabas: wabas.size,
    checksum,
  };
}

const [mode, path] = process.argv.slice(2) as [Mode | undefined, string | undefined];
const MODES: readonly string[] = ['parse', 'reader', 'split', 'scan', 'columnar', 'columnar-webhooks'];
if (mode === undefined || path === undefined || !MODES.includes(mode)) {
  process.stderr.write(`usage: node dist/bench/columnar-read.js ${MODES.join('|')} FILE\n`);
  process.exit(2);
}
const startedMs = performance.now();
const startedCpu = process.cpuUsage();
const counts =
  mode === 'parse'
    ? await parseEveryLine(path)
    : mode === 'reader'
      ? await reader(path)
      : mode === 'split' || mode === 'scan'
        ? await splitOrScan(path, mode === 'scan')
        : await columnar(path, mode === 'columnar-webhooks');
const cpu = process.cpuUsage(startedCpu);
process.stdout.write(
  JSON.stringify({
    mode,
    wallMs: Math.round(performance.now() - startedMs),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    ...counts,
  }) + '\n',
);
