// Writes generated traffic (bench/generate-traffic.ts) to an NDJSON file, streaming with backpressure, plus
// the matching accounts file (contract §2). Used as a CLI and by bench/main.ts; never holds the lines in memory.
//
//   node dist/bench/write-traffic.js --seed 42 --events 1000000 --out bench/out/traffic.ndjson [--time-ordered]

import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  generateAccounts,
  generateTraffic,
  resolveTrafficOptions,
  type GenerationProbe,
  type TrafficOptions,
} from './generate-traffic.js';

export interface WriteSummary {
  lines: number;
  bytes: number;
  /** The accounts file written beside the traffic. */
  accountsPath: string;
  maxPendingLines: number;
}

const CHUNK_CHARS = 1 << 20;
const PROGRESS_EVERY_LINES = 500_000;

/** `traffic.ndjson` → `traffic.accounts.json`. */
export function accountsPathFor(trafficPath: string): string {
  return trafficPath.replace(/\.(ndjson|jsonl|json)$/, '') + '.accounts.json';
}

/**
 * A file name that says which parameters made the file, so a benchmark can reuse it safely, e.g.
 * `traffic-s42-e10000000-u500000-w12-d30-2025-10-01-ordered-dup0.01-web0.2.ndjson`.
 */
export function trafficFileName(options: TrafficOptions): string {
  const o = resolveTrafficOptions(options);
  const order = o.timeOrdered ? 'ordered' : `dis${o.disorder}x${o.disorderMaxMinutes}m`;
  return (
    `traffic-s${o.seed}-e${o.eventsTarget}-u${o.users}-w${o.wabas}-d${o.days}-${o.start.slice(0, 10)}` +
    `-${order}-dup${o.duplicates}-web${o.webhookFraction}.ndjson`
  );
}

/**
 * Streams the traffic to `outPath` (through a temporary file renamed at the end, so a half-written file is
 * never mistaken for a finished one) and writes the accounts file beside it.
 */
export async function writeTraffic(
  options: TrafficOptions,
  outPath: string,
  onProgress?: (lines: number) => void,
): Promise<WriteSummary> {
  await mkdir(dirname(outPath), { recursive: true });
  const partPath = `${outPath}.part`;
  const out = createWriteStream(partPath, { highWaterMark: CHUNK_CHARS });
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  const probe: GenerationProbe = { linesScheduled: 0, maxPendingLines: 0 };
  let lines = 0;
  let bytes = 0;
  let chunk = '';
  try {
    for (const line of generateTraffic(options, probe)) {
      chunk += line + '\n';
      lines++;
      if (chunk.length >= CHUNK_CHARS) {
        bytes += Buffer.byteLength(chunk);
        if (!out.write(chunk))
          await Promise.race([new Promise<void>((resolve) => out.once('drain', () => resolve())), failed]);
        chunk = '';
      }
      if (onProgress && lines % PROGRESS_EVERY_LINES === 0) onProgress(lines);
    }
    bytes += Buffer.byteLength(chunk);
    out.end(chunk);
    await Promise.race([new Promise<void>((resolve) => out.once('finish', () => resolve())), failed]);
  } catch (error) {
    out.destroy();
    await rm(partPath, { force: true });
    throw error;
  }
  const accountsPath = accountsPathFor(outPath);
  await writeFile(accountsPath, JSON.stringify(generateAccounts(options), null, 2) + '\n');
  await rename(partPath, outPath);
  return { lines, bytes, accountsPath, maxPendingLines: probe.maxPendingLines };
}

const USAGE = `usage: node dist/bench/write-traffic.js --seed N --events N --out FILE [options]
  --seed N               PRNG seed (integer), default 42
  --events N             approximate number of lines, default 1000000
  --out FILE             NDJSON file to write (an accounts file is written beside it)
  --time-ordered         emit in timestamp order (no disorder; duplicates follow their original)
  --users N              user population, default events / 20
  --wabas N              WABAs, default 12
  --start ISO            first instant, default 2025-10-01T00:00:00Z
  --days N               length of the period, default 30
  --disorder F           fraction of lines displaced, default 0.02
  --disorder-minutes N   largest displacement, default 30
  --duplicates F         fraction of lines repeated, default 0.01
  --webhook-fraction F   fraction of statuses written as Meta webhook bodies, default 0.2`;

function parseNumber(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new Error(`--${name} must be a number, got "${text}"`);
  return value;
}

/** Options from the command line (shared with bench/main.ts, which accepts the same traffic flags). */
export function trafficOptionsFromArgs(values: Record<string, string | boolean | undefined>): TrafficOptions {
  const eventsTarget = parseNumber('events', values.events as string | undefined) ?? 1_000_000;
  return {
    seed: parseNumber('seed', values.seed as string | undefined) ?? 42,
    eventsTarget,
    users:
      parseNumber('users', values.users as string | undefined) ??
      Math.max(1_000, Math.round(eventsTarget / 20)),
    wabas: parseNumber('wabas', values.wabas as string | undefined),
    start: values.start as string | undefined,
    days: parseNumber('days', values.days as string | undefined),
    disorder: parseNumber('disorder', values.disorder as string | undefined),
    disorderMaxMinutes: parseNumber('disorder-minutes', values['disorder-minutes'] as string | undefined),
    duplicates: parseNumber('duplicates', values.duplicates as string | undefined),
    webhookFraction: parseNumber('webhook-fraction', values['webhook-fraction'] as string | undefined),
    timeOrdered: values['time-ordered'] === true,
  };
}

export const TRAFFIC_ARG_OPTIONS = {
  seed: { type: 'string' },
  events: { type: 'string' },
  users: { type: 'string' },
  wabas: { type: 'string' },
  start: { type: 'string' },
  days: { type: 'string' },
  disorder: { type: 'string' },
  'disorder-minutes': { type: 'string' },
  duplicates: { type: 'string' },
  'webhook-fraction': { type: 'string' },
  'time-ordered': { type: 'boolean' },
} as const;

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { ...TRAFFIC_ARG_OPTIONS, out: { type: 'string' }, help: { type: 'boolean' } },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!values.out) {
    process.stderr.write(`--out is required\n${USAGE}\n`);
    return 2;
  }
  let options: TrafficOptions;
  try {
    options = trafficOptionsFromArgs(values);
    resolveTrafficOptions(options);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const startedMs = performance.now();
  const summary = await writeTraffic(options, values.out, (lines) => {
    const seconds = (performance.now() - startedMs) / 1000;
    process.stderr.write(
      `  ${lines.toLocaleString('en-US')} lines (${Math.round(lines / seconds).toLocaleString('en-US')}/s)\n`,
    );
  });
  const seconds = (performance.now() - startedMs) / 1000;
  process.stderr.write(
    `wrote ${summary.lines.toLocaleString('en-US')} lines, ${(summary.bytes / 2 ** 20).toFixed(1)} MiB to ${values.out} ` +
      `in ${seconds.toFixed(1)} s; accounts in ${summary.accountsPath}; at most ${summary.maxPendingLines.toLocaleString('en-US')} lines held at once\n`,
  );
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`write-traffic: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
