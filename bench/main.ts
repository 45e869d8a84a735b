// `npm run bench`: wameter's benchmarks on seeded traffic, printed as tables with the machine and Node
// version, each figure next to a baseline measured in the same run (machines are noisy; ratios travel).
// Results also go to bench/out/last-run.json. Never part of `npm test`; nothing here asserts a timing.
//
//   node --expose-gc dist/bench/main.js [--quick] [--events N] [--memory-events N] [--only engine,memory,server]

import { benchDashboardApi, type DashboardBenchResult } from './dashboard-bench.js';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { Rng, type TrafficOptions } from './generate-traffic.js';
import {
  ceilingOf,
  ingestItemsFor,
  measureBareFile,
  measureCheckAndParse,
  measureStorageAlone,
  type Ceiling,
  type StorageAloneRun,
} from './service-ceiling.js';
import { runFloorChild, type FloorKeep } from './http-floor.js';
import { benchLive, LIVE_TABLE_HEADERS, liveTableRows, type LiveResult } from './live-lag.js';
import { BODY_SHAPES, WebhookBodies, type BodyShape, type SignedBody } from './webhook-bodies.js';
import { parseEveryLine } from './parse-only.js';
import {
  KEPT_RATE_SHARE,
  parseSizingMps,
  SIZING_CONNECTIONS,
  sizingVerdict,
  WEBHOOKS_PER_MESSAGE,
} from './sizing.js';
import { accountsPathFor, trafficFileName, writeTraffic } from './write-traffic.js';
import type { CoreEvent } from '../src/core/events.js';
import type { IngestItem } from '../src/store/store.js';
import { SQLITE_GATHER_TURNS } from '../src/store/sqlite/sqlite-store.js';
import { readEventSources } from '../src/ingest/read-events.js';
import { EstimateSession, parseRecipientsCsv } from '../src/use-cases/estimate.js';
import { loadRatingSetup } from '../src/use-cases/load-rating-setup.js';

// ---------------------------------------------------------------------------------------------------------
// Where things are. The compiled file is dist/bench/main.js (tsconfig.build.json: rootDir ".", outDir dist),
// so the package root is two levels up; run from sources (bench/main.ts) it is one level up.

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = findPackageRoot(HERE);
const OUT_DIR = join(ROOT, 'bench', 'out');
/** The compiled project next to this file: dist/src/… when compiled, src/… when run from sources. */
const COMPILED_SRC = join(HERE, '..', 'src');

function findPackageRoot(from: string): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return from;
    dir = parent;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Arguments.

type Section = 'engine' | 'memory' | 'server' | 'dashboard' | 'estimator' | 'ingest' | 'live';
const SECTIONS: readonly Section[] = [
  'engine',
  'memory',
  'server',
  'dashboard',
  'estimator',
  'ingest',
  'live',
];

export interface BenchArgs {
  isQuick: boolean;
  seed: number;
  events: number;
  memoryEvents: number;
  runs: number;
  sections: Set<Section>;
  /** 'auto': PostgreSQL when reachable; 'yes': required; 'no': SQLite only. */
  postgres: 'auto' | 'yes' | 'no';
  postgresUrl: string;
  serverSeconds: number;
  connections: number;
  /** Table 3 diagnostics: the server child's CPU profiles go under this folder (node --cpu-prof), one per thread. */
  serverCpuProfDir: string | null;
  /** Table 3 diagnostics: the server child's JSON log (level debug: rating timings) goes to this file. */
  serverLogPath: string | null;
  /** Table 9: events of the traffic imported into the store the live rating's lag is measured on. */
  liveEvents: number;
  /** Table 9: probes posted to each of the two portfolios. */
  livePosts: number;
  /** Table 3d: messages sent a second, each level run at three webhooks a message (empty: no sizing runs). */
  sizingMps: number[];
}

const USAGE = `usage: npm run bench -- [options]      (or: node --expose-gc dist/bench/main.js [options])
  --quick               small smoke run of the harness (200k events, 1M for the memory run, 3 s load)
  --events N            events in the engine-vs-parse file (default 1000000)
  --memory-events N     time-ordered events for the peak-RSS run (default 10000000)
  --seed N              traffic seed (default 42)
  --runs N              repetitions of the engine and parse-only runs; the median is reported (default 3)
  --only LIST           comma-separated sections: ${SECTIONS.join(',')} (default all)
  --pg / --no-pg        require PostgreSQL / SQLite only (default: PostgreSQL too when reachable)
  --pg-url URL          PostgreSQL server (default postgres://postgres@127.0.0.1:5432/test; a fresh schema is used)
  --server-seconds N    duration of each load run, tables 3 and 3c (default 10)
  --connections N       concurrent connections of the load runs (tables 3 and 3c), and the group size of table 3b (default 10)
  --server-cpu-prof DIR write the load-test server's CPU profiles (node --cpu-prof), one per thread, into DIR/server-STORE
  --server-log FILE     write each load-test server's JSON log at level debug (rating timings) to FILE.sqlite / FILE.postgres
  --live-events N       events imported into the store of the live-lag section (default 300000; 50000 with --quick)
  --live-posts N        probes posted to each of its two portfolios, each timed until the lag is 0 (default 5)
  --sizing-mps LIST     table 3d: messages sent a second, each run at 3 webhooks a message against Meta's latency
                        standard (default 80,1000: Meta's default and upgraded throughput; none: no such runs)`;

export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      events: { type: 'string' },
      'memory-events': { type: 'string' },
      seed: { type: 'string' },
      runs: { type: 'string' },
      only: { type: 'string' },
      pg: { type: 'boolean' },
      'no-pg': { type: 'boolean' },
      'pg-url': { type: 'string' },
      'server-seconds': { type: 'string' },
      connections: { type: 'string' },
      'server-cpu-prof': { type: 'string' },
      'server-log': { type: 'string' },
      'live-events': { type: 'string' },
      'live-posts': { type: 'string' },
      'sizing-mps': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const isQuick = values.quick === true;
  const int = (name: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const value = Number(text.replace(/_/g, ''));
    if (!Number.isInteger(value) || value <= 0)
      throw new Error(`--${name} must be a positive integer, got "${text}"`);
    return value;
  };
  const sections = new Set<Section>();
  for (const name of (values.only ?? SECTIONS.join(',')).split(',')) {
    const section = name.trim() as Section;
    if (!SECTIONS.includes(section))
      throw new Error(`--only: unknown section "${name}" (use ${SECTIONS.join(', ')})`);
    sections.add(section);
  }
  return {
    isQuick,
    seed: int('seed', values.seed, 42),
    events: int('events', values.events, isQuick ? 200_000 : 1_000_000),
    memoryEvents: int('memory-events', values['memory-events'], isQuick ? 1_000_000 : 10_000_000),
    runs: int('runs', values.runs, 3),
    sections,
    postgres: values.pg ? 'yes' : values['no-pg'] ? 'no' : 'auto',
    postgresUrl:
      values['pg-url'] ?? process.env.WAMETER_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    serverSeconds: int('server-seconds', values['server-seconds'], isQuick ? 3 : 10),
    connections: int('connections', values.connections, 10),
    serverCpuProfDir: values['server-cpu-prof'] ?? null,
    serverLogPath: values['server-log'] ?? null,
    liveEvents: int('live-events', values['live-events'], isQuick ? 50_000 : 300_000),
    livePosts: int('live-posts', values['live-posts'], 5),
    sizingMps: parseSizingMps(values['sizing-mps']),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Printing.

function formatInt(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

/** A Markdown table, so a run's output can be pasted into docs/benchmarks.md as it is. */
function printTable(title: string, headers: string[], rows: string[][], notes: string[] = []): void {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i] as number)).join(' | ')} |`;
  const out = [
    '',
    `### ${title}`,
    '',
    line(headers),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
  ];
  if (notes.length > 0) out.push('', ...notes.map((note) => `- ${note}`));
  process.stdout.write(out.join('\n') + '\n');
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

interface MachineInfo {
  date: string;
  node: string;
  platform: string;
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  commit: string | null;
}

function describeMachine(): MachineInfo {
  const cpus = os.cpus();
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    commit = null;
  }
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.arch()} ${os.release()}`,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    commit,
  };
}

function printHeader(machine: MachineInfo, args: BenchArgs): void {
  process.stdout.write(
    [
      `## wameter benchmarks — ${machine.date}${args.isQuick ? ' (--quick: harness smoke run, not figures to publish)' : ''}`,
      '',
      `- machine: ${machine.cores} cores × ${machine.cpuModel}, ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB RAM, ${machine.platform}`,
      `- Node ${machine.node}${typeof globalThis.gc === 'function' ? ' (--expose-gc: collected between runs)' : ''}; commit ${machine.commit ?? 'unknown'}`,
      `- traffic: seed ${args.seed}, bench/generate-traffic.ts`,
    ].join('\n') + '\n',
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc === 'function') gc();
}

/** Imports a module of the compiled project by its path under src/ (e.g. `ingest/read-events.js`). */
async function importProject<T>(pathUnderSrc: string): Promise<T> {
  const file = join(COMPILED_SRC, pathUnderSrc);
  if (!existsSync(file)) throw new Error(`${file} is missing: build first (npm run build)`);
  return (await import(pathToFileURL(file).href)) as T;
}

// ---------------------------------------------------------------------------------------------------------
// Traffic files, generated once per parameter set and reused.

async function ensureTrafficFile(options: TrafficOptions): Promise<{ path: string; accountsPath: string }> {
  const path = join(OUT_DIR, trafficFileName(options));
  const accountsPath = accountsPathFor(path);
  if (existsSync(path) && existsSync(accountsPath)) {
    progress(`reusing ${path}`);
    return { path, accountsPath };
  }
  progress(`generating ${path} …`);
  const startedMs = performance.now();
  const summary = await writeTraffic(options, path, (lines) => progress(`  ${formatInt(lines)} lines`));
  progress(
    `  ${formatInt(summary.lines)} lines, ${formatMiB(summary.bytes)} in ${((performance.now() - startedMs) / 1000).toFixed(1)} s`,
  );
  return { path, accountsPath };
}

// ---------------------------------------------------------------------------------------------------------
// Table 1: the engine against a bare JSON.parse loop over the same file.

interface ParseOnlyRun {
  lines: number;
  seconds: number;
  /** CPU time of the process (every thread: user + system) during the run. */
  cpuSeconds: number;
}

/** The process's CPU time since `before` (`process.cpuUsage`: every thread, user + system), in seconds. */
function cpuSecondsSince(before: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

/** The baseline (bench/parse-only.ts): split lines, JSON.parse each, nothing else; timed. */
async function parseOnly(path: string): Promise<ParseOnlyRun> {
  const startedMs = performance.now();
  const cpuBefore = process.cpuUsage();
  const { lines, objects } = await parseEveryLine(path);
  if (objects !== lines) throw new Error('parse-only: a line is not an object');
  return { lines, seconds: (performance.now() - startedMs) / 1000, cpuSeconds: cpuSecondsSince(cpuBefore) };
}

interface EngineRun {
  seconds: number;
  /** CPU time of the process during the run, every thread counted (the ratio is on wall time). */
  cpuSeconds: number;
  eventsRead: number;
  /** Which engine rated (`RateSourcesResult.engine`, and its `reader`), and why the columnar rater gave the file up, if it did. */
  engine: string;
  bail?: string;
  units: number;
  pending: number;
  findings: number;
  sourceErrors: number;
}

interface RatingSetupModule {
  loadRatingSetup(input: {
    accountsPath?: string;
  }): Promise<{ ok: true; value: unknown } | { ok: false; error: { message: string } }>;
}
interface RateSourcesModule {
  rateSources(
    sources: readonly string[],
    setup: unknown,
    sink: { unit(unit: unknown): void; pending(message: unknown): void },
    options?: { maxLatenessMs?: number; onSourceError?(error: unknown): void },
  ): Promise<{
    read: { events: number };
    findings: unknown[];
    stats: { units: number; pending: number };
    engine?: string;
    reader?: string;
    bail?: string;
  }>;
}

/**
 * The engine end to end, as `wameter rate` runs it: load accounts, bundled rate cards and the market table,
 * read the file (readEventSources: NDJSON and webhook bodies), rate every event (Rater, batch mode). Units go
 * to a counting sink: output formatting is not measured.
 */
async function engineRun(path: string, accountsPath: string): Promise<EngineRun> {
  const { loadRatingSetup } = await importProject<RatingSetupModule>('use-cases/load-rating-setup.js');
  const { rateSources } = await importProject<RateSourcesModule>('use-cases/rate-sources.js');
  const startedMs = performance.now();
  const cpuBefore = process.cpuUsage();
  const setup = await loadRatingSetup({ accountsPath });
  if (!setup.ok) throw new Error(`engine setup failed: ${setup.error.message}`);
  let units = 0;
  let pending = 0;
  let sourceErrors = 0;
  const result = await rateSources(
    [path],
    setup.value,
    {
      unit: () => {
        units++;
      },
      pending: () => {
        pending++;
      },
    },
    { onSourceError: () => sourceErrors++ },
  );
  return {
    seconds: (performance.now() - startedMs) / 1000,
    cpuSeconds: cpuSecondsSince(cpuBefore),
    eventsRead: result.read.events,
    engine:
      result.engine === 'columnar' ? `columnar, read as ${result.reader ?? '?'}` : (result.engine ?? 'rater'),
    ...(result.bail === undefined ? {} : { bail: result.bail }),
    units,
    pending,
    findings: result.findings.length,
    sourceErrors,
  };
}

interface EngineResult {
  file: string;
  lines: number;
  runs: number;
  parseOnlySeconds: number[];
  engineSeconds: number[];
  /** CPU time of each run, every thread counted (the ratio is on wall time, as the issue asks). */
  parseOnlyCpuSeconds: number[];
  engineCpuSeconds: number[];
  parseOnlyEventsPerSecond: number;
  engineEventsPerSecond: number;
  ratio: number;
  target: number;
  units: number;
  pending: number;
  findings: number;
  sourceErrors: number;
  maxRssBytesOfBenchProcess: number;
}

async function benchEngine(args: BenchArgs): Promise<EngineResult> {
  const options: TrafficOptions = {
    seed: args.seed,
    eventsTarget: args.events,
    users: Math.max(1_000, Math.round(args.events / 20)),
  };
  const { path, accountsPath } = await ensureTrafficFile(options);
  const parseSeconds: number[] = [];
  const engineSeconds: number[] = [];
  const parseCpuSeconds: number[] = [];
  const engineCpuSeconds: number[] = [];
  let lines = 0;
  let last: EngineRun | undefined;
  // Interleaved so that a slow moment of the machine hits both sides alike.
  for (let run = 1; run <= args.runs; run++) {
    collectGarbage();
    const parsed = await parseOnly(path);
    lines = parsed.lines;
    parseSeconds.push(parsed.seconds);
    parseCpuSeconds.push(parsed.cpuSeconds);
    progress(
      `parse-only run ${run}: ${formatInt(parsed.lines / parsed.seconds)} events/s (wall ${parsed.seconds.toFixed(2)} s, CPU ${parsed.cpuSeconds.toFixed(2)} s)`,
    );
    collectGarbage();
    last = await engineRun(path, accountsPath);
    engineSeconds.push(last.seconds);
    engineCpuSeconds.push(last.cpuSeconds);
    progress(
      `engine run ${run}: ${formatInt(lines / last.seconds)} events/s (${formatInt(last.units)} units; wall ${last.seconds.toFixed(2)} s, CPU ${last.cpuSeconds.toFixed(2)} s)`,
    );
  }
  const parseRate = lines / median(parseSeconds);
  const engineRate = lines / median(engineSeconds);
  const result: EngineResult = {
    file: path,
    lines,
    runs: args.runs,
    parseOnlySeconds: parseSeconds,
    engineSeconds,
    parseOnlyCpuSeconds: parseCpuSeconds,
    engineCpuSeconds,
    parseOnlyEventsPerSecond: parseRate,
    engineEventsPerSecond: engineRate,
    ratio: engineRate / parseRate,
    target: 0.5,
    units: last?.units ?? 0,
    pending: last?.pending ?? 0,
    findings: last?.findings ?? 0,
    sourceErrors: last?.sourceErrors ?? 0,
    maxRssBytesOfBenchProcess: process.resourceUsage().maxRSS * 1024,
  };
  printTable(
    `1. Engine vs parse-only — ${formatInt(lines)} lines, median of ${args.runs}`,
    ['run', 'median s', 'CPU s', 'events/s', 'ratio to parse-only', 'target'],
    [
      [
        'bare JSON.parse loop',
        median(parseSeconds).toFixed(2),
        median(parseCpuSeconds).toFixed(2),
        formatInt(parseRate),
        '1.00',
        '',
      ],
      [
        `wameter read + rate (batch, ${last?.engine ?? '?'}${last?.bail === undefined ? '' : `, bail: ${last.bail}`})`,
        median(engineSeconds).toFixed(2),
        median(engineCpuSeconds).toFixed(2),
        formatInt(engineRate),
        result.ratio.toFixed(2),
        `≥ 0.50 ${result.ratio >= 0.5 ? '✓' : '✗'}`,
      ],
    ],
    [
      `file: ${path.replace(ROOT + '/', '')} (${formatInt(lines)} lines; events read by the engine: ${formatInt(last?.eventsRead ?? 0)})`,
      `engine output: ${formatInt(result.units)} units, ${formatInt(result.pending)} pending, ${result.findings} findings, ${result.sourceErrors} unreadable lines`,
      `the engine time includes loading accounts, rate cards and market table; units go to a counting sink (no JSON output)`,
      `median s is wall time (the ratio's, events/s); CPU s the process's CPU time (user + system, every thread: V8's collector runs partly on helper threads), its median`,
    ],
  );
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// Table 2: 10 million time-ordered events rated by `wameter rate --stream` in a child; its peak RSS.

interface MemoryResult {
  file: string;
  lines: number | null;
  command: string;
  exitCode: number | null;
  seconds: number;
  eventsPerSecond: number | null;
  peakRssBytes: number | null;
  peakRssSource: 'resourceUsage' | '/proc VmHWM' | null;
  /** Processes of the run (2 when `rate --stream` re-ran itself with a heap cap) and the launcher's peak. */
  processes?: number;
  launcherRssBytes?: number;
  targetBytes: number;
  stderrTail: string;
}

/**
 * Written into the child with --import: reports the child's own peak RSS when it exits. `rate --stream`
 * runs itself again with a heap cap (the hook is inherited with the flags), so each process of the run
 * records its peak and the largest is kept: the rating process's, not its small launcher's.
 */
const PEAK_RSS_HOOK =
  "import { readFileSync, writeFileSync } from 'node:fs';" +
  'const out = process.env.WAMETER_BENCH_RSS_FILE;' +
  "process.on('exit', () => { if (!out) return; let seen = { maxRSSKiB: 0, processes: 0 };" +
  ' try { seen = JSON.parse(readFileSync(out, "utf8")); } catch {}' +
  ' writeFileSync(out, JSON.stringify({ maxRSSKiB: Math.max(seen.maxRSSKiB, process.resourceUsage().maxRSS),' +
  ' processes: seen.processes + 1, launcherKiB: seen.processes > 0 ? process.resourceUsage().maxRSS : 0 })); });';

function findCli(): string | null {
  for (const candidate of [join(COMPILED_SRC, 'cli', 'main.js'), join(ROOT, 'dist', 'cli', 'main.js')]) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

function readVmHwmBytes(pid: number): number | null {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

async function countLines(path: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const buffer = chunk as Buffer;
    for (let i = buffer.indexOf(10); i !== -1; i = buffer.indexOf(10, i + 1)) lines++;
  }
  return lines;
}

async function benchMemory(args: BenchArgs): Promise<MemoryResult> {
  const options: TrafficOptions = {
    seed: args.seed,
    eventsTarget: args.memoryEvents,
    users: Math.max(1_000, Math.round(args.memoryEvents / 20)),
    timeOrdered: true,
  };
  const { path, accountsPath } = await ensureTrafficFile(options);
  const lines = await countLines(path);
  const cli = findCli();
  const cliArgs = [
    'rate',
    path,
    '--stream',
    '--accounts',
    accountsPath,
    '--format',
    'json',
    '--allow-unpriced',
  ];
  const result: MemoryResult = {
    file: path,
    lines,
    command: `node ${cli ?? 'dist/src/cli/main.js'} ${cliArgs.join(' ')} > /dev/null`.replaceAll(
      ROOT + '/',
      '',
    ),
    exitCode: null,
    seconds: 0,
    eventsPerSecond: null,
    peakRssBytes: null,
    peakRssSource: null,
    targetBytes: 2 ** 30,
    stderrTail: '',
  };
  if (cli === null) {
    result.stderrTail = 'the CLI is not built (dist/src/cli/main.js missing): run npm run build';
  } else {
    const rssFile = join(OUT_DIR, `peak-rss-${process.pid}.json`);
    await rm(rssFile, { force: true });
    progress(`memory run: ${result.command}`);
    const startedMs = performance.now();
    const child = spawn(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(PEAK_RSS_HOOK)}`, cli, ...cliArgs],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WAMETER_BENCH_RSS_FILE: rssFile } },
    );
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      stderr = (stderr + text).slice(-4000);
    });
    // A second witness in case the hook cannot run (e.g. the child is killed): the kernel's high-water mark.
    let polledPeak = 0;
    const poll = setInterval(() => {
      if (child.pid !== undefined) polledPeak = Math.max(polledPeak, readVmHwmBytes(child.pid) ?? 0);
    }, 100);
    const exitCode = await new Promise<number | null>((resolvePromise) =>
      child.on('close', (code) => resolvePromise(code)),
    );
    clearInterval(poll);
    result.seconds = (performance.now() - startedMs) / 1000;
    result.exitCode = exitCode;
    result.stderrTail = stderr.trim().split('\n').slice(-3).join('\n');
    try {
      const reported = JSON.parse(await readFile(rssFile, 'utf8')) as {
        maxRSSKiB: number;
        processes: number;
        launcherKiB: number;
      };
      result.peakRssBytes = reported.maxRSSKiB * 1024;
      result.processes = reported.processes;
      result.launcherRssBytes = reported.launcherKiB * 1024;
      result.peakRssSource = 'resourceUsage';
    } catch {
      if (polledPeak > 0) {
        result.peakRssBytes = polledPeak;
        result.peakRssSource = '/proc VmHWM';
      }
    }
    await rm(rssFile, { force: true });
    if (exitCode === 0) result.eventsPerSecond = lines / result.seconds;
  }
  const isOk = result.exitCode === 0 && result.peakRssBytes !== null;
  printTable(
    `2. ${formatInt(lines)} time-ordered events, wameter rate --stream, peak RSS`,
    ['run', 'exit', 'wall s', 'events/s', 'peak RSS', 'target'],
    [
      [
        'wameter rate --stream --format json',
        String(result.exitCode ?? 'not run'),
        result.seconds.toFixed(1),
        result.eventsPerSecond === null ? '—' : formatInt(result.eventsPerSecond),
        result.peakRssBytes === null ? '—' : formatMiB(result.peakRssBytes),
        isOk
          ? `< 1024 MiB ${(result.peakRssBytes as number) < result.targetBytes ? '✓' : '✗'}`
          : '< 1024 MiB (no figure)',
      ],
    ],
    [
      `command: ${result.command}`,
      `peak RSS from ${result.peakRssSource ?? 'nowhere'}: the largest of the run's ${result.processes ?? 1} process(es)` +
        (result.launcherRssBytes
          ? ` (rate --stream re-runs itself with a heap cap; its launcher peaked at ${formatMiB(result.launcherRssBytes)})`
          : ''),
      'the file is reused across runs with the same parameters',
      ...(result.exitCode !== 0 && result.stderrTail
        ? [`child stderr: ${result.stderrTail.replace(/\n/g, ' ⏎ ')}`]
        : []),
      ...(result.exitCode === 0 && result.stderrTail
        ? [`child summary: ${result.stderrTail.split('\n').at(-1)}`]
        : []),
    ],
  );
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// Table 3: the service under load — signed webhook bodies vs a no-op request on the same server.

interface LoadRow {
  store: 'sqlite' | 'postgres';
  /** The webhook runs by body shape, the echo route, the no-op baseline, and the store-pinging health check. */
  kind: BodyShape | 'echo' | 'noop' | 'healthz';
  route: string;
  requestsPerSecond: number;
  statusesPerSecond: number | null;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  requests: number;
  /** CPU used by the server process during the run, % of one core. */
  serverCpuPercent: number | null;
  /** CPU used by the bench process (autocannon; the bodies are made and signed before the run), % of one core. */
  benchCpuPercent: number;
}

/** Table 3d: one level of Meta's sizing rule, signed one-status webhooks at a fixed rate. */
interface SizingRow {
  store: LoadRow['store'];
  messagesPerSecond: number;
  askedPerSecond: number;
  takenPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  errors: number;
  serverCpuPercent: number | null;
  benchCpuPercent: number;
  /** Seconds from the run's end until the live rating had caught up; null when still behind after 120 s. */
  ratingCaughtUpSeconds: number | null;
}

interface ServerResult {
  rows: LoadRow[];
  notes: string[];
  ceilings: { store: LoadRow['store']; ceiling: Ceiling }[];
  floor: FloorRow[];
  sizing: SizingRow[];
}

/** Table 3c: the least webhook server (bench/http-floor.ts) under the same load. */
interface FloorRow {
  processes: number;
  /** Where it kept the bodies: its own log, or the service's SQLite store (bodies alone, or with events). */
  keep: FloorKeep;
  /** Signed webhooks, or the least server's own no-op (GET). */
  kind: 'webhook' | 'noop';
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  benchCpuPercent: number;
  /** Bodies sent a second time, the pool run out (a store finds them duplicates). */
  repeatedBodies: number;
}

const BENCH_APP_SECRET = 'wameter-bench-app-secret';
/** The true no-op route: liveness answers 204 through the same middleware, touching nothing else. */
const NOOP_PATH = '/healthz/live';
/** A route the bench adds to its server (StartOptions.extraRoutes): the HTTP exchange of a webhook alone. */
const ECHO_PATH = '/bench/echo';
/** Distinct bodies the echo run cycles through (nothing is stored, so they may repeat). */
const ECHO_BODIES = 1_000;

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); null elsewhere. */
function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of /proc/PID/stat (utime, stime), in clock ticks of 1/100 s on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** Runs autocannon and measures how busy the server and this process were meanwhile (% of one core). */
async function measured(
  autocannon: Autocannon,
  options: Record<string, unknown>,
  serverPid: number | undefined,
): Promise<{ result: AutocannonResult; serverCpuPercent: number | null; benchCpuPercent: number }> {
  const serverBefore = serverPid === undefined ? null : cpuSecondsOf(serverPid);
  const benchBefore = process.cpuUsage();
  const startedMs = performance.now();
  const result = await autocannon(options);
  const seconds = (performance.now() - startedMs) / 1000;
  const serverAfter = serverPid === undefined ? null : cpuSecondsOf(serverPid);
  const bench = process.cpuUsage(benchBefore);
  return {
    result,
    serverCpuPercent:
      serverBefore === null || serverAfter === null ? null : (100 * (serverAfter - serverBefore)) / seconds,
    benchCpuPercent: (100 * (bench.user + bench.system)) / 1e6 / seconds,
  };
}

/**
 * autocannon POSTing signed bodies to `path` for the run's duration, `next()` giving each request's: as fast
 * as the run's connections are answered, or at `pace.perSecond` requests a second spread over
 * `pace.connections` (table 3d).
 */
function postSigned(
  autocannon: Autocannon,
  args: BenchArgs,
  baseUrl: string,
  path: string,
  next: () => SignedBody,
  serverPid: number | undefined,
  pace?: { perSecond: number; connections: number },
): ReturnType<typeof measured> {
  return measured(
    autocannon,
    {
      url: baseUrl,
      connections: pace?.connections ?? args.connections,
      duration: args.serverSeconds,
      // Paced: each latency as measured. autocannon would otherwise add made-up ones for requests it deems
      // held back (an expected interval of 1 ms, rounded up from 1 ÷ rate), which are no answer's.
      ...(pace === undefined ? {} : { overallRate: pace.perSecond, ignoreCoordinatedOmission: true }),
      requests: [
        {
          method: 'POST',
          path,
          setupRequest: (request: Record<string, unknown>) => {
            const item = next();
            return {
              ...request,
              body: item.body,
              headers: { 'content-type': 'application/json', 'x-hub-signature-256': item.signature },
            };
          },
        },
      ],
    },
    serverPid,
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Signed bodies made before each webhook run: enough for this many requests per second of the run. */
const BODIES_PER_SECOND = 15_000;

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
  ['2xx']: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

function loadAutocannon(): Autocannon {
  const require = createRequire(import.meta.url);
  return require('autocannon') as Autocannon;
}

async function waitForHealth(baseUrl: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited with code ${child.exitCode}`);
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      if (response.ok) return;
      lastError = `GET /healthz answered ${response.status}`;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 200));
  }
  throw new Error(`the server did not become healthy in ${timeoutMs / 1000} s: ${lastError}`);
}

/** Polls /healthz until rating_lag_seconds is 0; ms waited, or null after `timeoutMs`. */
async function waitForRating(baseUrl: string, timeoutMs: number): Promise<number | null> {
  const startedMs = Date.now();
  while (Date.now() - startedMs < timeoutMs) {
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      const body = (await response.json()) as { rating_lag_seconds?: number };
      if (response.ok && body.rating_lag_seconds === 0) return Date.now() - startedMs;
    } catch {
      // not answering yet: keep polling
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
  return null;
}

/**
 * What a child wrote on stderr, for an error: all of it up to 1,000 characters, else its first 600 (a failed
 * start's message comes first, its stack after) and its last 400.
 */
function stderrOf(written: { head: string; tail: string; length: number }): string {
  if (written.length <= 1_000) return written.tail.trim();
  return `${written.head.slice(0, 600).trim()} … ${written.tail.slice(-400).trim()}`;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const closed = new Promise<void>((resolveClose) => child.once('close', () => resolveClose()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await closed;
  clearTimeout(timer);
}

interface PgClient {
  connect(): Promise<void>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
}

async function postgresAdmin(url: string): Promise<PgClient | null> {
  const require = createRequire(import.meta.url);
  const pg = require('pg') as { Client: new (options: object) => PgClient };
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return client;
  } catch {
    await client.end().catch(() => undefined);
    return null;
  }
}

/**
 * The service as a child process (this file's `--serve-child CONFIG`, the real startServer) listening on
 * `port`, once GET /healthz answers; `logFd` (a file descriptor, closed here) receives its stdout.
 */
async function startServeChild(
  configPath: string,
  port: number,
  nodeFlags: readonly string[],
  logFd: number | 'ignore',
): Promise<ChildProcess> {
  return startBenchChild(['--serve-child', configPath], port, nodeFlags, logFd);
}

/** This file run as a child in one of its child modes (`childArgs`), once GET /healthz on `port` answers. */
async function startBenchChild(
  childArgs: readonly string[],
  port: number,
  nodeFlags: readonly string[],
  logFd: number | 'ignore',
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeFlags, fileURLToPath(import.meta.url), ...childArgs], {
    stdio: ['ignore', logFd, 'pipe'],
  });
  if (typeof logFd === 'number') closeSync(logFd);
  const stderr = { head: '', tail: '', length: 0 };
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    if (stderr.head.length < 600) stderr.head = (stderr.head + text).slice(0, 600);
    stderr.tail = (stderr.tail + text).slice(-1_000);
    stderr.length += text.length;
  });
  try {
    await waitForHealth(`http://127.0.0.1:${port}`, child, 60_000);
  } catch (error) {
    await stopChild(child);
    throw new Error(
      `${(error as Error).message}${stderr.length > 0 ? `; server stderr: ${stderrOf(stderr)}` : ''}`,
    );
  }
  return child;
}

/** One server (a child process running startServer) on one store, loaded with webhooks, the echo, then the no-op. */
async function loadOneStore(
  args: BenchArgs,
  store: 'sqlite' | 'postgres',
  db: string,
  workDir: string,
  lags: string[],
  sizing: SizingRow[],
): Promise<LoadRow[]> {
  const port = await freePort();
  const configPath = join(workDir, `config-${store}.json`);
  await writeFile(
    configPath,
    JSON.stringify(
      {
        db,
        port,
        host: '127.0.0.1',
        appSecrets: [BENCH_APP_SECRET],
        rateLimit: 'off',
        logLevel: args.serverLogPath === null ? 'warn' : 'debug',
      },
      null,
      2,
    ),
  );
  const nodeFlags =
    args.serverCpuProfDir === null
      ? []
      : [
          '--cpu-prof',
          // No fixed file name: every thread writes its own profile (CPU.<date>.<time>.<pid>.<thread>.<n>, thread 0
          // the main one); with one name the rating worker's profile would overwrite the main thread's.
          `--cpu-prof-dir=${join(args.serverCpuProfDir, `server-${store}`)}`,
        ];
  const logFd = args.serverLogPath === null ? 'ignore' : openSync(`${args.serverLogPath}.${store}`, 'w');
  const child = await startServeChild(configPath, port, nodeFlags, logFd);
  const baseUrl = `http://127.0.0.1:${port}`;
  const autocannon = loadAutocannon();
  const { signMetaBody } = await importProject<{ signMetaBody(body: string, secret: string): string }>(
    'ingest/signature.js',
  );
  const rows: LoadRow[] = [];
  /** autocannon POSTing signed bodies to `path` for the run's duration, `next()` giving each request's. */
  const postLoad = (path: string, next: () => SignedBody) =>
    postSigned(autocannon, args, baseUrl, path, next, child.pid);
  /**
   * Distinct signed bodies of one shape for one run, each handed out once. They are made and signed before
   * the run: the client shares the machine with the server, and making a body costs it more than sending
   * one. Should the run outlast the pool, the rest are made during it (`madeDuringRun` counts them).
   */
  const bodySource = (shape: BodyShape, poolSize: number, label: string) => {
    const bodies = new WebhookBodies(args.seed, `${store}${label}${Date.now().toString(36)}`, shape);
    const poolStartedMs = performance.now();
    const pool: (SignedBody | undefined)[] = [];
    for (let i = 0; i < poolSize; i++) pool.push(bodies.nextSigned(signMetaBody, BENCH_APP_SECRET));
    progress(
      `load ${store}: ${formatInt(poolSize)} distinct signed bodies (${BODY_SHAPES[shape]}) made in ${((performance.now() - poolStartedMs) / 1000).toFixed(1)} s`,
    );
    const source = {
      sent: 0,
      statusesSent: 0,
      madeDuringRun: 0,
      next: (): SignedBody => {
        let item = pool[source.sent];
        if (item === undefined) {
          item = bodies.nextSigned(signMetaBody, BENCH_APP_SECRET);
          source.madeDuringRun++;
        } else {
          pool[source.sent] = undefined; // sent once: let it be collected
        }
        source.sent++;
        source.statusesSent += item.statuses;
        return item;
      },
      /** Lets the bodies not sent be collected. */
      drop: () => {
        pool.length = 0;
      },
    };
    return source;
  };
  /**
   * Waits until the live rating has caught up with the run just made, and says how long that took (ms; null
   * past 120 s). What follows a run must not run beside the re-rating it left behind, and the wait is itself
   * a figure: how far live rating lagged behind ingestion.
   */
  const ratingCatchUpMs = () => waitForRating(baseUrl, 120_000);
  /** One run of signed webhooks of one shape, then the wait until the live rating has caught up. */
  const webhookRun = async (shape: BodyShape): Promise<void> => {
    const source = bodySource(shape, args.serverSeconds * BODIES_PER_SECOND, shape);
    progress(`load ${store}: POST /webhooks/whatsapp (${BODY_SHAPES[shape]}) for ${args.serverSeconds} s`);
    const webhooks = await postLoad('/webhooks/whatsapp', source.next);
    source.drop();
    if (source.madeDuringRun > 0) {
      lags.push(
        `${store}, ${shape}: the pool of signed bodies ran out; ${formatInt(source.madeDuringRun)} were made during the run`,
      );
    }
    rows.push(
      loadRow(
        store,
        shape,
        `POST /webhooks/whatsapp (signed, ${BODY_SHAPES[shape]})`,
        webhooks,
        source.statusesSent,
      ),
    );
    const catchUpMs = await ratingCatchUpMs();
    lags.push(
      `${store}, ${shape}: the live rating was ${catchUpMs === null ? 'still behind after 120' : (catchUpMs / 1000).toFixed(1)} s behind at the end of the webhook run`,
    );
  };
  /** Table 3d: signed one-status webhooks paced at three for each of `messagesPerSecond` messages a second. */
  const sizingRun = async (messagesPerSecond: number): Promise<void> => {
    const asked = WEBHOOKS_PER_MESSAGE * messagesPerSecond;
    // autocannon's quota starts again each second, so a run may hold one second's more requests.
    const source = bodySource('one', asked * (args.serverSeconds + 1) + SIZING_CONNECTIONS, `sizing${asked}`);
    progress(
      `sizing ${store}: ${formatInt(messagesPerSecond)} messages sent a second → ${formatInt(asked)} webhooks/s for ${args.serverSeconds} s over ${SIZING_CONNECTIONS} connections`,
    );
    const run = await postSigned(autocannon, args, baseUrl, '/webhooks/whatsapp', source.next, child.pid, {
      perSecond: asked,
      connections: SIZING_CONNECTIONS,
    });
    source.drop();
    if (source.madeDuringRun > 0) {
      lags.push(
        `${store}, sizing at ${formatInt(asked)} webhooks/s: the pool of signed bodies ran out; ${formatInt(source.madeDuringRun)} were made during the run`,
      );
    }
    const catchUpMs = await ratingCatchUpMs();
    const { result } = run;
    sizing.push({
      store,
      messagesPerSecond,
      askedPerSecond: asked,
      takenPerSecond: result['2xx'] / result.duration,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      maxMs: result.latency.max,
      non2xx: result.non2xx,
      errors: result.errors + result.timeouts,
      serverCpuPercent: run.serverCpuPercent,
      benchCpuPercent: run.benchCpuPercent,
      ratingCaughtUpSeconds: catchUpMs === null ? null : catchUpMs / 1000,
    });
  };
  const echoRun = async (): Promise<void> => {
    const bodies = new WebhookBodies(args.seed, `${store}echo`, 'one');
    const pool = Array.from({ length: ECHO_BODIES }, () => bodies.nextSigned(signMetaBody, BENCH_APP_SECRET));
    let sent = 0;
    const route = `POST ${ECHO_PATH} (reads the body, answers like the webhook route; nothing checked or stored)`;
    progress(`load ${store}: ${route} for ${args.serverSeconds} s`);
    const result = await postLoad(ECHO_PATH, () => pool[sent++ % pool.length]!);
    rows.push(loadRow(store, 'echo', route, result, null));
  };
  try {
    await webhookRun('one');
    await webhookRun('batched');
    await echoRun();
    for (const [kind, route, path] of [
      ['noop', `GET ${NOOP_PATH} (no-op: liveness, 204)`, NOOP_PATH],
      ['healthz', 'GET /healthz (pings the store)', '/healthz'],
    ] as const) {
      progress(`load ${store}: ${route} for ${args.serverSeconds} s`);
      const result = await measured(
        autocannon,
        { url: baseUrl + path, connections: args.connections, duration: args.serverSeconds },
        child.pid,
      );
      rows.push(loadRow(store, kind, route, result, null));
    }
    // Last, so that a failing sizing run costs table 3 nothing: it is a note, and the next level runs.
    for (const messagesPerSecond of args.sizingMps) {
      try {
        await sizingRun(messagesPerSecond);
      } catch (error) {
        lags.push(
          `${store}, sizing at ${formatInt(messagesPerSecond)} messages a second (table 3d): ${(error as Error).message}`,
        );
      }
    }
  } finally {
    await stopChild(child);
  }
  return rows;
}

function loadRow(
  store: LoadRow['store'],
  kind: LoadRow['kind'],
  route: string,
  run: Awaited<ReturnType<typeof measured>>,
  statuses: number | null,
): LoadRow {
  const { result } = run;
  return {
    serverCpuPercent: run.serverCpuPercent,
    benchCpuPercent: run.benchCpuPercent,
    store,
    kind,
    route,
    requestsPerSecond: result.requests.average,
    statusesPerSecond: statuses === null ? null : statuses / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    requests: result.requests.total,
  };
}

interface CeilingStore {
  ingestBatch(items: readonly IngestItem[]): Promise<unknown>;
  close(): Promise<void>;
}

interface BenchStore {
  store: 'sqlite' | 'postgres';
  db: string;
  /** A fresh, empty store of the same kind for table 3b. */
  openForCeiling: () => Promise<CeilingStore>;
  cleanup?: () => Promise<void>;
}

async function benchServer(args: BenchArgs): Promise<ServerResult> {
  const notes: string[] = [];
  const lags: string[] = [];
  const rows: LoadRow[] = [];
  const ceilings: ServerResult['ceilings'] = [];
  const floor: FloorRow[] = [];
  const sizing: SizingRow[] = [];
  if (!existsSync(join(COMPILED_SRC, 'server', 'main.js'))) {
    notes.push('src/server/main.ts (startServer) is not built yet: the load test did not run');
    printTable('3. Service under load', ['store', 'route'], [], notes);
    return { rows, notes, ceilings, floor, sizing };
  }
  const workDir = await mkdtemp(join(os.tmpdir(), 'wameter-bench-'));
  try {
    const { openSqliteStore } = await importProject<{
      openSqliteStore(path: string): Promise<CeilingStore>;
    }>('store/sqlite/sqlite-store.js');
    const stores: BenchStore[] = [
      {
        store: 'sqlite',
        db: `sqlite:${join(workDir, 'bench.db')}`,
        openForCeiling: () => openSqliteStore(join(workDir, 'ceiling.db')),
      },
    ];
    if (args.postgres !== 'no') {
      const admin = await postgresAdmin(args.postgresUrl);
      if (admin === null) {
        const message = `PostgreSQL not reachable at ${args.postgresUrl}`;
        if (args.postgres === 'yes') throw new Error(message);
        notes.push(`${message}: SQLite only`);
      } else {
        const schema = `wameter_bench_${process.pid}_${Date.now().toString(36)}`;
        await admin.query(`CREATE SCHEMA ${schema}`);
        const url = new URL(args.postgresUrl);
        url.searchParams.set('options', `-c search_path=${schema}`);
        const { openPostgresStore } = await importProject<{
          openPostgresStore(url: string, options: { schema: string }): Promise<CeilingStore>;
        }>('store/postgres/postgres-store.js');
        stores.push({
          store: 'postgres',
          db: url.toString(),
          openForCeiling: () => openPostgresStore(args.postgresUrl, { schema: `${schema}_ceiling` }),
          cleanup: async () => {
            await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
            await admin.query(`DROP SCHEMA IF EXISTS ${schema}_ceiling CASCADE`);
            await admin.end();
          },
        });
      }
    }
    for (const benchStore of stores) {
      const { store, db, cleanup } = benchStore;
      try {
        const storeRows = await loadOneStore(args, store, db, workDir, lags, sizing);
        rows.push(...storeRows);
        const noop = storeRows.find((row) => row.kind === 'noop');
        const echo = storeRows.find((row) => row.kind === 'echo');
        if (noop !== undefined && echo !== undefined && echo.serverCpuPercent !== null) {
          // CPU of one webhook's HTTP exchange alone (the echo route): the server's and the load generator's.
          const perRequest = (percent: number) => (percent / 100 / echo.requestsPerSecond) * 1e6;
          const costs = {
            noopPerSecond: noop.requestsPerSecond,
            exchangeCpuMicros: perRequest(echo.serverCpuPercent + echo.benchCpuPercent),
            exchangeServerMicros: perRequest(echo.serverCpuPercent),
          };
          ceilings.push({ store, ceiling: await measureCeiling(args, benchStore, costs, workDir) });
        }
      } catch (error) {
        notes.push(`${store}: ${(error as Error).message}`);
      } finally {
        await cleanup?.();
      }
    }
    if (rows.some((row) => row.kind === 'noop')) {
      try {
        floor.push(...(await measureFloor(args, workDir)));
      } catch (error) {
        notes.push(`least server (table 3c): ${(error as Error).message}`);
      }
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  printLoadTable(args, rows, [...lags, ...notes]);
  printCeilingTable(args, ceilings);
  if (floor.length > 0) printFloorTable(args, rows, floor);
  if (sizing.length > 0) printSizingTable(args, sizing);
  return { rows, notes, ceilings, floor, sizing };
}

/**
 * Table 3c: the least webhook server (bench/http-floor.ts: a body durable before its 200 and nothing else)
 * keeping bodies in its own log, in one process and in two, loaded as the service was, then its own no-op;
 * then the same server in front of the service's SQLite store, the bodies alone and with their events.
 */
const FLOOR_RUNS: readonly { processes: number; keep: FloorKeep }[] = [
  { processes: 1, keep: 'log' },
  { processes: 2, keep: 'log' },
  { processes: 1, keep: 'sqlite-bodies' },
  { processes: 1, keep: 'sqlite-events' },
];

async function measureFloor(args: BenchArgs, workDir: string): Promise<FloorRow[]> {
  const autocannon = loadAutocannon();
  const { signMetaBody } = await importProject<{ signMetaBody(body: string, secret: string): string }>(
    'ingest/signature.js',
  );
  const bodies = new WebhookBodies(args.seed, `floor${Date.now().toString(36)}`, 'one');
  // Every run starts from the pool's first body (each has a fresh store or log). Past its end a run sends
  // bodies again: nothing to its own log, but duplicates to a store, which answers them for less (counted).
  const pool = Array.from({ length: args.serverSeconds * BODIES_PER_SECOND }, () =>
    bodies.nextSigned(signMetaBody, BENCH_APP_SECRET),
  );
  const floorRow = (
    { processes, keep }: (typeof FLOOR_RUNS)[number],
    kind: FloorRow['kind'],
    { result, benchCpuPercent }: Awaited<ReturnType<typeof measured>>,
    repeatedBodies = 0,
  ): FloorRow => ({
    processes,
    keep,
    kind,
    repeatedBodies,
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    benchCpuPercent,
  });
  const rows: FloorRow[] = [];
  for (const run of FLOOR_RUNS) {
    const { processes, keep } = run;
    const port = await freePort();
    const child = await startBenchChild(
      ['--floor-child', String(port), workDir, String(processes), BENCH_APP_SECRET, keep],
      port,
      [],
      'ignore',
    );
    const url = `http://127.0.0.1:${port}`;
    try {
      let sent = 0;
      progress(
        `floor: POST signed webhooks to the least server (${floorServerName(run)}) for ${args.serverSeconds} s`,
      );
      const webhooks = await postSigned(
        autocannon,
        args,
        url,
        '/webhooks/whatsapp',
        () => pool[sent++ % pool.length]!,
        undefined,
      );
      rows.push(floorRow(run, 'webhook', webhooks, Math.max(0, sent - pool.length)));
      if (run === FLOOR_RUNS[0]) {
        progress(`floor: GET (the least server's no-op) for ${args.serverSeconds} s`);
        const noop = await measured(
          autocannon,
          { url: `${url}/`, connections: args.connections, duration: args.serverSeconds },
          undefined,
        );
        rows.push(floorRow(run, 'noop', noop));
      }
    } finally {
      await stopChild(child);
    }
  }
  return rows;
}

const FLOOR_KEEP_WORDS: Record<FloorKeep, string> = {
  log: 'its own log',
  'sqlite-bodies': "the service's SQLite store, bodies alone",
  'sqlite-events': "the service's SQLite store, bodies and events",
};

function floorServerName({ processes, keep }: { processes: number; keep: FloorKeep }): string {
  return `${processes} process${processes === 1 ? '' : 'es'}, ${FLOOR_KEEP_WORDS[keep]}`;
}

function printFloorTable(args: BenchArgs, serviceRows: readonly LoadRow[], floor: readonly FloorRow[]): void {
  const noops = serviceRows.filter((row) => row.kind === 'noop');
  const verdicts: string[] = [];
  const bestOf = (keeps: readonly FloorKeep[]) =>
    Math.max(
      ...floor
        .filter((row) => row.kind === 'webhook' && keeps.includes(row.keep))
        .map((row) => row.requestsPerSecond),
    );
  const best = bestOf(['log']);
  const lean = bestOf(['sqlite-events']);
  for (const noop of noops) {
    const target = noop.requestsPerSecond / 2;
    verdicts.push(
      best < target
        ? `${noop.store}: the least server's best with its own log, ${formatInt(best)} webhooks/s, is below the ${formatInt(target)} asked (½ of the service's no-op): in this run not even the least server answering after a durable write reached the target, at ${args.connections} connections with this client`
        : `${noop.store}: the least server's best with its own log, ${formatInt(best)} webhooks/s, reaches the ${formatInt(target)} asked (½ of the service's no-op): the target is not excluded by this floor`,
    );
    if (Number.isFinite(lean)) {
      verdicts.push(
        `${noop.store}: a lean webhook path in front of the service's SQLite store, storing bodies and events before the 200 as the service does (no request log, metrics or rating), served ${formatInt(lean)} webhooks/s: ${lean < target ? 'below' : 'at or above'} the ${formatInt(target)} asked`,
      );
    }
  }
  printTable(
    `3c. The least webhook server — a body durable before its 200 and nothing else, ${args.connections} connections, ${args.serverSeconds} s per run`,
    [
      'least server',
      'route',
      'req/s',
      'p50 ms',
      'p99 ms',
      'non-2xx/errors',
      'CPU % bench',
      "ratio to the service's no-op",
    ],
    floor.map((row) => [
      floorServerName(row),
      row.kind === 'webhook' ? 'POST signed webhook (one status per body)' : 'GET (its own no-op)',
      formatInt(row.requestsPerSecond),
      String(row.p50Ms),
      String(row.p99Ms),
      `${row.non2xx}/${row.errors}`,
      row.benchCpuPercent.toFixed(0),
      noops
        .map((noop) => `${noop.store} ${(row.requestsPerSecond / noop.requestsPerSecond).toFixed(2)}`)
        .join(', '),
    ]),
    [
      "least server (bench/http-floor.ts): node:http without a framework; the body's signature checked (the service's verifyMetaSignature), JSON.parse, the body kept before the 200 and nothing else: no request log, no metrics, no rating",
      `its own log: appended to a file written in place (made to its full size first) with one fdatasync a group, groups gathered by the service's GroupCommitQueue (${SQLITE_GATHER_TURNS} turns, as SQLite's); no duplicate index, no events`,
      "2 processes: node's cluster, each worker with its own log; the connections spread over them",
      "the service's SQLite store: ingestWebhook, as the webhook route calls it (duplicates found, display numbers kept), with the body's events or without them; nothing rated",
      "ratio to the service's no-op: against table 3's GET /healthz/live of each store's server, the target's baseline",
      ...floor
        .filter((row) => row.repeatedBodies > 0 && row.keep !== 'log')
        .map(
          (row) =>
            `${floorServerName(row)}: ${formatInt(row.repeatedBodies)} bodies were sent a second time (the pool of ${formatInt(args.serverSeconds * BODIES_PER_SECOND)} ran out), duplicates to the store: its rate is too high by that much`,
        ),
      ...verdicts,
    ],
  );
}

function printSizingTable(args: BenchArgs, sizing: readonly SizingRow[]): void {
  const table = sizing.map((row) => {
    const verdict = sizingVerdict({
      askedPerSecond: row.askedPerSecond,
      takenPerSecond: row.takenPerSecond,
      p50Ms: row.p50Ms,
      p99Ms: row.p99Ms,
      failed: row.non2xx + row.errors,
    });
    return [
      row.store,
      formatInt(row.messagesPerSecond),
      formatInt(row.askedPerSecond),
      formatInt(row.takenPerSecond),
      String(row.p50Ms),
      String(row.p99Ms),
      String(row.maxMs),
      `${row.non2xx}/${row.errors}`,
      `${row.serverCpuPercent === null ? '—' : row.serverCpuPercent.toFixed(0)} / ${row.benchCpuPercent.toFixed(0)}`,
      row.ratingCaughtUpSeconds === null
        ? 'still behind after 120 s'
        : `${row.ratingCaughtUpSeconds.toFixed(1)} s`,
      verdict.meets ? '✓' : `✗ (${verdict.misses.join('; ')})`,
    ];
  });
  printTable(
    `3d. Meta's sizing rule — ${WEBHOOKS_PER_MESSAGE} status webhooks a message sent, ${SIZING_CONNECTIONS} connections, ${args.serverSeconds} s per level`,
    [
      'store',
      'messages sent/s',
      'webhooks/s asked',
      'answered 2xx/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'non-2xx/errors',
      'CPU % server / bench',
      'live rating caught up after',
      "Meta's standard",
    ],
    table,
    [
      "Meta's rule for a webhook endpoint: 3 status webhooks a second (sent, delivered, read) for each message sent a second; a median answer under 250 ms and fewer than 1 % over 1 s (p99 under 1 s); the default levels (--sizing-mps): 80 messages a second, a business number's default throughput, and 1,000, its upgraded one",
      "the same server as table 3, after its runs; signed one-status bodies, each distinct; autocannon's rate: each connection sends its share of a second's requests back to back, then waits for the next second — bursts at each second's start, harsher than an even flow",
      `kept: at least ${Math.round(KEPT_RATE_SHARE * 100)} % of the asked rate answered 2xx (autocannon paces by the second, so a run's edges may fall short)`,
      'live rating caught up after: from the end of the run until the bill was current (GET /healthz rating_lag_seconds 0)',
    ],
  );
}

function printLoadTable(args: BenchArgs, rows: LoadRow[], notes: string[]): void {
  const table: string[][] = [];
  for (const store of ['sqlite', 'postgres'] as const) {
    const storeRows = rows.filter((row) => row.store === store);
    const noop = storeRows.find((row) => row.kind === 'noop');
    for (const row of storeRows) {
      const isCompared = row.kind === 'one' || row.kind === 'batched' || row.kind === 'echo';
      const ratio = isCompared && noop ? row.requestsPerSecond / noop.requestsPerSecond : null;
      // The targets are judged on realistic bodies (one status each); the batched shape is shown beside them.
      const isTargetRow = row.kind === 'one';
      table.push([
        store,
        row.route,
        formatInt(row.requestsPerSecond),
        row.statusesPerSecond === null ? '' : formatInt(row.statusesPerSecond),
        String(row.p50Ms),
        String(row.p99Ms),
        `${row.non2xx}/${row.errors}`,
        `${row.serverCpuPercent === null ? '—' : row.serverCpuPercent.toFixed(0)} / ${row.benchCpuPercent.toFixed(0)}`,
        ratio === null
          ? ''
          : isTargetRow
            ? `${ratio.toFixed(2)} ${ratio >= 0.5 ? '✓' : '✗'} (≥ 0.50)`
            : ratio.toFixed(2),
        isTargetRow ? `${row.p99Ms < 250 ? '✓' : '✗'} (< 250 ms)` : '',
      ]);
    }
  }
  printTable(
    `3. Service under load — ${args.connections} connections, ${args.serverSeconds} s per route, loopback`,
    [
      'store',
      'route',
      'req/s',
      'statuses/s',
      'p50 ms',
      'p99 ms',
      'non-2xx/errors',
      'CPU % server / bench',
      'ratio to no-op',
      'p99 target',
    ],
    table,
    [
      'server: runUntilSignalled / startServer (src/server/main.ts) in a child process; autocannon in the bench process; rate limit off; log level warn',
      'CPU %: share of one core used by the server process / by the bench process (autocannon) during the run; webhook bodies are made and signed before it',
      "targets (ratio ≥ 0.5, p99 < 250 ms) judged on realistic bodies: one status each, as every status body in ../shared/fixtures/webhooks/ and in Meta's examples",
      `no-op: GET ${NOOP_PATH} (liveness: 204 through the full middleware — request log, metrics, routing — touching nothing else) is the baseline, run once the live rating has caught up`,
      ...notes,
    ],
  );
}

/** Table 3b for one store: storing realistic webhooks alone, in groups of as many as there are connections. */
async function measureCeiling(
  args: BenchArgs,
  benchStore: BenchStore,
  costs: { noopPerSecond: number; exchangeCpuMicros: number; exchangeServerMicros: number },
  workDir: string,
): Promise<Ceiling> {
  const count = args.isQuick ? 4_000 : 20_000;
  const itemsOf = (tag: string) => {
    const bodies = new WebhookBodies(args.seed, `${benchStore.store}${tag}${Date.now().toString(36)}`, 'one');
    return ingestItemsFor(
      Array.from({ length: count }, () => bodies.next()),
      Date.now(),
    );
  };
  const bodiesOnly = itemsOf('raw').map((item) => ({ raw: item.raw, events: [] }));
  const withEvents = itemsOf('events');
  const store = await benchStore.openForCeiling();
  try {
    progress(
      `ceiling ${benchStore.store}: ${formatInt(count)} bodies alone, then with their events, groups of ${args.connections}`,
    );
    const runs = {
      bodies: await measureStorageAlone((items) => store.ingestBatch(items), bodiesOnly, args.connections),
      withEvents: await measureStorageAlone(
        (items) => store.ingestBatch(items),
        withEvents,
        args.connections,
      ),
      // The floor under any store, next to the SQLite file (same disk): appending the bodies, nothing else.
      ...(benchStore.store === 'sqlite'
        ? {
            bareFile: await measureBareFile(
              join(workDir, 'bare-bodies.log'),
              itemsOf('bare'),
              args.connections,
            ),
          }
        : {}),
    };
    const signer = new WebhookBodies(args.seed, `${benchStore.store}check`, 'one');
    const { signMetaBody } = await importProject<{ signMetaBody(body: string, secret: string): string }>(
      'ingest/signature.js',
    );
    const signed = Array.from({ length: count }, () => signer.nextSigned(signMetaBody, BENCH_APP_SECRET));
    return ceilingOf(
      costs.noopPerSecond,
      costs.exchangeCpuMicros,
      os.availableParallelism(),
      benchStore.store === 'sqlite',
      runs,
      {
        exchangeMicros: costs.exchangeServerMicros,
        checkParseMicros: measureCheckAndParse(signed, BENCH_APP_SECRET),
      },
    );
  } finally {
    await store.close();
  }
}

function printCeilingTable(args: BenchArgs, ceilings: ServerResult['ceilings']): void {
  const table: string[][] = [];
  const oneThreadNotes: string[] = [];
  for (const { store, ceiling } of ceilings) {
    const { oneThread } = ceiling;
    if (oneThread !== null) {
      const isOut = oneThread.perSecond < ceiling.targetPerSecond;
      oneThreadNotes.push(
        `${store}, one thread: the HTTP exchange (${oneThread.exchangeMicros.toFixed(1)} µs of server CPU, echo route) and checking and parsing (${oneThread.checkParseMicros.toFixed(1)} µs) allow at most ${formatInt(oneThread.perSecond)} webhooks/s with storing and rating free — ${isOut ? 'below' : 'above'} the ${formatInt(ceiling.targetPerSecond)} asked${isOut ? ': out of reach for a server doing its HTTP work on one thread' : ''}`,
      );
    }
    for (const verdict of ceiling.verdicts) {
      const run: StorageAloneRun = verdict.run;
      table.push([
        store,
        verdict.stored,
        formatInt(ceiling.targetPerSecond),
        `${formatInt(run.webhooksPerSecond)} (${run.groupMs.toFixed(2)} ms a group)`,
        ceiling.budgetMicros.toFixed(1),
        verdict.cpuMicros.toFixed(1),
        verdict.workMicros.toFixed(1),
        verdict.breaks.length === 0
          ? 'not excluded by these bounds'
          : `out of reach here (${verdict.breaks.join(', ')})`,
      ]);
    }
  }
  printTable(
    `3b. Ceiling of the webhook route on this machine — realistic bodies stored alone (no HTTP), groups of ${args.connections}`,
    [
      'store',
      'stored',
      'target webhooks/s (½ no-op)',
      'storing alone: webhooks/s',
      'CPU µs a webhook may use',
      'CPU µs storing took',
      '+ checking and parsing',
      'verdict',
    ],
    table,
    [
      `waiting: with ${args.connections} connections at most ${args.connections} webhooks share a commit; a one-writer store (SQLite) cannot answer faster than it commits groups of ${args.connections}, whatever the design`,
      `work: ${os.availableParallelism()} cores ÷ target rate, less the CPU of one echo request (server + load generator, table 3: a webhook's HTTP exchange alone): what storing, checking, parsing and rating a webhook must fit in; the verdict compares storing + checking and parsing (signature, the text's limits, JSON.parse, events: measured in this process; the body's SHA-256 is the store's, in storing), rating left out`,
      "CPU µs storing took: the whole machine's busy time (so PostgreSQL's own processes count), less its idle rate, ÷ webhooks",
      "bodies: what the issue requires to be durable before the 200; bodies and events: what the store keeps. Bodies alone out of reach ⇒ no server design using this store's ingest reaches the target on this machine (a single INSERT a group, with nothing else, costs less: node dist/bench/pg-body-floor.js)",
      'bare file: the same bodies appended to a plain file, one fdatasync a group, no index and no events — the floor under any store',
      ...oneThreadNotes,
    ],
  );
}

/** Child mode: `main.js --serve-child CONFIG.json` runs the real service until SIGTERM. */
async function serveChild(configPath: string): Promise<void> {
  const { loadServiceConfig } = await importProject<{
    loadServiceConfig(input: {
      configFile: string;
      env: Record<string, string | undefined>;
    }): { ok: true; value: unknown } | { ok: false; error: { problems: string[] } };
  }>('server/config.js');
  const config = loadServiceConfig({ configFile: configPath, env: {} });
  if (!config.ok) throw new Error(`bench server config: ${config.error.problems.join('; ')}`);
  const server = await importProject<{
    runUntilSignalled(config: unknown, options: { extraRoutes(app: EchoApp): void }): Promise<void>;
  }>('server/main.js');
  const { readRawBody } = await importProject<{
    readRawBody(c: unknown, limit: number): Promise<{ ok: boolean }>;
  }>('server/read-body.js');
  const bodyLimit = (config.value as { bodyLimitBytes: number }).bodyLimitBytes;
  // The service's own lifecycle: graceful close on SIGTERM (finishes in-flight requests, closes the store).
  await server.runUntilSignalled(config.value, {
    // The HTTP exchange of a webhook alone: its body read as the webhook route reads it, its answer shaped
    // like the webhook's — nothing verified, parsed or stored. Same middleware as every route.
    extraRoutes: (app) =>
      app.post(ECHO_PATH, async (c) => {
        const body = await readRawBody(c, bodyLimit);
        if (!body.ok) return c.json({ error: 'too large' }, 413);
        return c.json({ received: true, duplicate: false, events: 1, ignored: 0, unreadable: 0 });
      }),
  });
  process.exit(0);
}

interface EchoContext {
  json(body: unknown, status?: number): Response;
}
interface EchoApp {
  post(path: string, handler: (c: EchoContext) => Promise<Response>): unknown;
}

// ---------------------------------------------------------------------------------------------------------
// Table 4: the dashboard API (issue 4) — bench/dashboard-bench.ts does the work.

async function benchDashboard(args: BenchArgs): Promise<DashboardBenchResult> {
  let postgresUrl: string | null = null;
  if (args.postgres !== 'no') {
    const admin = await postgresAdmin(args.postgresUrl);
    if (admin) {
      await admin.end();
      postgresUrl = args.postgresUrl;
    } else if (args.postgres === 'yes') throw new Error(`PostgreSQL not reachable at ${args.postgresUrl}`);
  }
  const units = args.isQuick ? 50_000 : 500_000;
  const result = await benchDashboardApi({
    seed: args.seed,
    units,
    runs: 5,
    postgresUrl,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  printTable(
    `4. Dashboard API over ${result.units.toLocaleString('en-US')} stored units (in-process requests)`,
    ['store', 'call', 'status', 'bytes', 'first ms', 'median ms'],
    result.calls.map((call) => [
      call.store,
      call.call,
      String(call.status),
      formatInt(call.bytes),
      call.coldMs.toFixed(1),
      call.medianMs.toFixed(1),
    ]),
    [
      `units rated from ${result.events.toLocaleString('en-US')} generated events in ${result.rateSeconds.toFixed(1)} s; ` +
        `events and units stored in ${Object.entries(result.writeSeconds)
          .map(([store, seconds]) => `${store} ${seconds.toFixed(1)} s`)
          .join(', ')}`,
      'median of 5 runs after the first; aggregation happens in the store (SQL), never in the browser',
    ],
  );
  return result;
}

// ---------------------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------------------
// Table 5: the estimator (issue 4): thousands of recipients quoted against a month of traffic.

interface EstimatorResult {
  recipients: number;
  events: number;
  rateMs: number;
  quoteMs: number;
  charged: number;
  free: number;
}

async function benchEstimator(args: BenchArgs): Promise<EstimatorResult> {
  const setup = await loadRatingSetup({ accountsPath: join(ROOT, 'examples', 'month', 'accounts.json') });
  if (!setup.ok) throw new Error(setup.error.message);
  const events: CoreEvent[] = [];
  await readEventSources([join(ROOT, 'examples', 'month', 'events.ndjson')], {
    onEvents: (batch) => events.push(...batch),
    onError: (error) => {
      throw new Error(error.message);
    },
  });
  const recipients = args.isQuick ? 1000 : 5000;
  const rng = new Rng(args.seed);
  const lines = ['phone'];
  // Indian and Brazilian mobiles (the example month's main markets), a few of them users already in it.
  const users = [...new Set(events.flatMap((e) => (e.kind === 'inbound' ? [e.user] : [])))];
  for (let i = 0; i < recipients; i++) {
    if (i % 10 === 0 && users.length > 0) lines.push(users[rng.int(users.length)]!);
    else if (i % 2 === 0) lines.push(`919${String(rng.int(1_000_000_000)).padStart(9, '0')}`);
    else lines.push(`55119${String(rng.int(100_000_000)).padStart(8, '0')}`);
  }
  const atMs = Date.parse('2025-10-31T12:00:00Z');
  // The send time up front: events are rated as they are added (those after it are ignored).
  const session = new EstimateSession(setup.value, atMs);
  const rateStarted = performance.now();
  for (const event of events) session.add(event);
  const quoteStarted = performance.now();
  const list = parseRecipientsCsv(lines.join('\n'));
  if (!list.ok) throw new Error(list.error.message);
  const outcome = session.finish(list.value, {
    template: 'marketing',
    atMs,
    waba: '291612946114990',
    business: '563377404979206',
  });
  const quoteMs = performance.now() - quoteStarted;
  if (!outcome.ok) throw new Error(outcome.error.message);
  const { totals } = outcome.value.estimate;
  const result: EstimatorResult = {
    recipients,
    events: events.length,
    rateMs: quoteStarted - rateStarted,
    quoteMs,
    charged: totals.charged,
    free: totals.free,
  };
  printTable(
    `5. Estimator — ${formatInt(recipients)} recipients against the example month (${formatInt(events.length)} events)`,
    ['step', 'ms'],
    [
      ["add the month's events", result.rateMs.toFixed(1)],
      ['rate, then quote every recipient (marketing template)', quoteMs.toFixed(1)],
    ],
    [
      `${formatInt(totals.charged)} charged, ${formatInt(totals.free)} free; target: thousands of recipients well under a second`,
    ],
  );
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// Table 6: what storing webhooks costs the SQLite store, without HTTP: the group commits of the service
// (10 webhook bodies of 17 statuses per transaction, fsync on), into a growing file.

interface IngestSlice {
  eventsFrom: number;
  eventsTo: number;
  seconds: number;
}

interface IngestResult {
  webhooksPerGroup: number;
  eventsPerWebhook: number;
  withEvents: IngestSlice[];
  rawOnly: IngestSlice[];
}

interface SqliteStoreModule {
  openSqliteStore(path: string): Promise<{
    ingestBatch(items: readonly unknown[]): Promise<unknown[]>;
    close(): Promise<void>;
  }>;
}

async function benchIngest(args: BenchArgs): Promise<IngestResult> {
  const { openSqliteStore } = await importProject<SqliteStoreModule>('store/sqlite/sqlite-store.js');
  const { eventKey } = await importProject<{ eventKey(event: CoreEvent): string }>('core/events.js');
  const webhooksPerGroup = 10;
  const eventsPerWebhook = 17;
  const totalEvents = args.isQuick ? 60_000 : 300_000;
  const sliceEvents = totalEvents / 3;
  const rng = new Rng(args.seed);
  const dir = await mkdtemp(join(os.tmpdir(), 'wameter-bench-ingest-'));
  /** One group commit's items: bodies with their events (or the bodies alone). */
  const group = (n: number, isRawOnly: boolean) =>
    Array.from({ length: webhooksPerGroup }, (_, w) => {
      const events = Array.from({ length: eventsPerWebhook }, (_, i): CoreEvent => ({
        kind: 'status',
        atMs: 1_759_276_800_000 + n * 1000 + i,
        id: `wamid.${rng.int(2 ** 30).toString(36)}${rng.int(2 ** 30).toString(36)}.${n}.${w}.${i}`,
        status: 'delivered',
        waba: `10229012934039${rng.int(10)}`,
        business: '106540352242922',
        user: `9198${String(rng.int(100_000_000)).padStart(8, '0')}`,
        pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
      }));
      const body = Buffer.from(JSON.stringify(events));
      return {
        raw: {
          receivedAtMs: 1,
          body,
          sha256: createHash('sha256').update(body).digest('hex'),
          parseError: null,
        },
        events: isRawOnly
          ? []
          : events.map((event) => ({ key: eventKey(event), event, receivedAtMs: 1, source: 'webhook:1' })),
      };
    });
  const run = async (isRawOnly: boolean): Promise<IngestSlice[]> => {
    const store = await openSqliteStore(join(dir, isRawOnly ? 'raw-only.db' : 'with-events.db'));
    const slices: IngestSlice[] = [];
    const perGroup = webhooksPerGroup * eventsPerWebhook;
    let measured = 0;
    try {
      for (let done = 0, n = 0; done < totalEvents; done += perGroup, n++) {
        const items = group(n, isRawOnly);
        const t = performance.now();
        await store.ingestBatch(items);
        measured += performance.now() - t; // making the bodies is not the store's time
        if (done + perGroup >= sliceEvents * (slices.length + 1)) {
          slices.push({
            eventsFrom: slices.at(-1)?.eventsTo ?? 0,
            eventsTo: done + perGroup,
            seconds: measured / 1000,
          });
          measured = 0;
        }
      }
    } finally {
      await store.close();
    }
    return slices;
  };
  try {
    progress(`ingest: ${formatInt(totalEvents)} events into a SQLite file, then the same bodies alone`);
    const withEvents = await run(false);
    const rawOnly = await run(true);
    const rate = (slice: IngestSlice) =>
      (slice.eventsTo - slice.eventsFrom) / eventsPerWebhook / slice.seconds;
    printTable(
      `6. SQLite ingestion without HTTP — groups of ${webhooksPerGroup} webhooks × ${eventsPerWebhook} statuses, fsync on`,
      ['stored events so far', 'webhooks/s with their events', 'webhooks/s bodies only', 'ratio'],
      withEvents.map((slice, i) => [
        `${formatInt(slice.eventsFrom)}–${formatInt(slice.eventsTo)}`,
        formatInt(rate(slice)),
        formatInt(rate(rawOnly[i]!)),
        (rate(slice) / rate(rawOnly[i]!)).toFixed(2),
      ]),
      [
        'store.ingestBatch of the SQLite store (one transaction and fsync per group), bodies made outside the timing',
        'bodies only: the same raw webhooks with no events (what a store-the-body-first design would pay in the request)',
      ],
    );
    return { webhooksPerGroup, eventsPerWebhook, withEvents, rawOnly };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Table 9: the live rating's lag on a store with history (issue 3) — bench/live-lag.ts does the work.

/** A fresh schema on the PostgreSQL server of `--pg-url`, as the server section makes one; null when unreachable. */
async function freshPostgresSchema(
  postgresUrl: string,
  name: string,
): Promise<{ url: string; sizeBytes(): Promise<number>; drop(): Promise<void> } | null> {
  const admin = await postgresAdmin(postgresUrl);
  if (admin === null) return null;
  const schema = `wameter_bench_${name}_${process.pid}_${Date.now().toString(36)}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(postgresUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    sizeBytes: async () => {
      const result = (await admin.query(
        `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '${schema}' AND c.relkind IN ('r', 'm')`,
      )) as { rows: { bytes: string }[] };
      return Number(result.rows[0]?.bytes ?? 0);
    },
    drop: async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}

/** `wameter import TRAFFIC --db DB` (the CLI, as a user runs it) with the traffic's accounts file. */
async function runImportChild(
  trafficPath: string,
  accountsPath: string,
  db: string,
): Promise<{ code: number | null; stderr: string }> {
  const cli = findCli();
  if (cli === null)
    return { code: null, stderr: 'the CLI is not built (dist/src/cli/main.js missing): run npm run build' };
  const child = spawn(process.execPath, [cli, 'import', trafficPath, '--db', db, '--allow-unpriced'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, WAMETER_ACCOUNTS: accountsPath, WAMETER_LOG_LEVEL: 'warn' },
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-2_000);
  });
  const code = await new Promise<number | null>((resolveCode) =>
    child.on('close', (exit) => resolveCode(exit)),
  );
  return { code, stderr: stderr.trim().split('\n').slice(-3).join(' ⏎ ') };
}

async function benchLiveSection(args: BenchArgs): Promise<LiveResult> {
  const workDir = await mkdtemp(join(os.tmpdir(), 'wameter-bench-live-'));
  let configs = 0;
  const { openStore } = await importProject<{
    openStore(
      url: string,
      options: { isReadOnly: boolean },
    ): Promise<{
      listEvents(wabas: readonly string[]): Promise<readonly unknown[]>;
      businessNumbers(filter: { wabas?: readonly string[] }): Promise<readonly { business: string }[]>;
      close(): Promise<void>;
    }>;
  }>('store/open-store.js');
  try {
    const result = await benchLive({
      seed: args.seed,
      events: args.liveEvents,
      posts: args.livePosts,
      postgres: args.postgres,
      postgresUrl: args.postgresUrl,
      workDir,
      ensureTrafficFile,
      runImport: runImportChild,
      freshPostgresSchema: () => freshPostgresSchema(args.postgresUrl, 'live'),
      openStore: (db) => openStore(db, { isReadOnly: true }),
      startServeChild: async (config) => {
        const port = await freePort();
        const configPath = join(workDir, `config-${++configs}.json`);
        await writeFile(configPath, JSON.stringify({ ...config, port }, null, 2));
        const child = await startServeChild(configPath, port, [], 'ignore');
        return { baseUrl: `http://127.0.0.1:${port}`, child, stop: () => stopChild(child) };
      },
      cpuSecondsOf,
      progress,
    });
    const notes = [
      `traffic: ${result.trafficFile.replace(ROOT + '/', '')} imported with \`wameter import\` into a new store each run`,
      'each post: one outbound utility template and its delivered (POST /v1/events, NDJSON) for a WABA of the portfolio, ' +
        'timed until GET /metrics reports rating_lag_seconds 0 (polled every 50 ms); the smallest portfolio first',
      ...result.stores.map(
        (store) =>
          `${store.store}: import ${store.importSeconds.toFixed(1)} s; the service's start rating ended after ${store.startRatingSeconds.toFixed(1)} s`,
      ),
      'server CPU: user + system of the service process (its rating worker included) over the posts and waits, per post',
      ...result.notes,
    ];
    printTable(
      `9. Live rating lag on a store with history — ${formatInt(result.events)} events imported, ${result.posts} posts per portfolio`,
      LIVE_TABLE_HEADERS,
      liveTableRows(result),
      notes,
    );
    return result;
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--serve-child') {
    await serveChild(argv[1] ?? '');
    return -1; // keep running: the server holds the event loop
  }
  if (argv[0] === '--floor-child') {
    await runFloorChild(Number(argv[1]), argv[2] ?? '', Number(argv[3]), argv[4] ?? '', argv[5] as FloorKeep);
    return -1; // keep running, as above
  }
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  await mkdir(OUT_DIR, { recursive: true });
  const machine = describeMachine();
  printHeader(machine, args);
  const results: Record<string, unknown> = { machine, args: { ...args, sections: [...args.sections] } };
  const failures: string[] = [];
  const section = async (name: Section, run: () => Promise<unknown>) => {
    if (!args.sections.has(name)) return;
    try {
      results[name] = await run();
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message}`);
      results[name] = { error: (error as Error).message };
      process.stdout.write(`\n### ${name}: failed — ${(error as Error).message}\n`);
    }
    await writeFile(join(OUT_DIR, 'last-run.json'), JSON.stringify(results, null, 2) + '\n');
  };
  await section('engine', () => benchEngine(args));
  await section('memory', () => benchMemory(args));
  await section('server', () => benchServer(args));
  await section('dashboard', () => benchDashboard(args));
  await section('estimator', () => benchEstimator(args));
  await section('ingest', () => benchIngest(args));
  await section('live', () => benchLiveSection(args));
  await writeFile(join(OUT_DIR, 'last-run.json'), JSON.stringify(results, null, 2) + '\n');
  process.stdout.write(`\nresults: ${join(OUT_DIR, 'last-run.json').replace(ROOT + '/', '')}\n`);
  if (failures.length > 0) process.stderr.write(`[bench] failed sections:\n  ${failures.join('\n  ')}\n`);
  return failures.length > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (error: unknown) => {
      process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
