// Table 3b: how fast the webhook route could possibly be on this machine, from parts measured in the same
// run as table 3:
//
// - Waiting: a webhook is answered only once its body and events are committed (fsync). With C connections
//   at most C webhooks are in flight, so at most C share one commit, and commits of one store follow one
//   another: the route cannot exceed C ÷ (time to commit a group of C), whatever else it does.
// - Work: the load generator, the server and the store share this machine's cores. At half the no-op's rate
//   each webhook may use at most cores ÷ rate of CPU time; its HTTP exchange alone (client and server, as
//   measured on the bench's echo route) takes part of that; storing it, checking its signature and parsing
//   it must fit in what is left, before rating it.
// - One thread: a server doing its HTTP work on one thread serves at most 1 ÷ (the echo's server CPU +
//   checking and parsing) webhooks a second, even with storing and rating free.
//
// Storing is measured for the bodies alone (what the issue requires to be durable before the 200), for the
// bodies with their events (what the store keeps) and, for SQLite, for a bare file (the floor under any
// store). The work bound depends on the load generator's CPU too: a lighter client leaves more to the
// server. (The waiting bound holds for every design only where the store has one writer: SQLite.)

import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { EventInput, IngestItem } from '../src/store/store.js';
import { eventKey } from '../src/core/events.js';
import {
  MAX_JSON_DEPTH,
  MAX_WEBHOOK_VALUES,
  parseEventValue,
  textOverLimits,
} from '../src/ingest/parse-event.js';
import { verifyMetaSignature } from '../src/ingest/signature.js';
import { businessNumbersOf } from '../src/server/analytics-query.js';
import type { SignedBody } from './webhook-bodies.js';

const UTF8 = new TextDecoder('utf-8');

/** Busy CPU seconds of the whole machine so far (all cores, all processes), from /proc/stat; null elsewhere. */
export function machineBusySeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    if (!line.startsWith('cpu ')) return null;
    // cpu  user nice system idle iowait irq softirq steal …, in ticks of 1/100 s.
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = [user, nice, system, irq, softirq, steal].reduce(
      (sum: number, value) => sum + (value ?? 0),
      0,
    );
    return Number.isFinite(busy) ? busy / 100 : null;
  } catch {
    return null;
  }
}

/** What the server stores for each body (src/server/app.ts, POST /webhooks/whatsapp), made the same way. */
/**
 * A parsed webhook body's events as the webhook route stores them (`source` webhook, each under its key);
 * the reader's error message when the value is no webhook.
 */
export function webhookEventInputs(
  value: unknown,
  receivedAtMs: number,
): { ok: true; inputs: EventInput[] } | { ok: false; message: string } {
  const parsed = parseEventValue(value);
  if (!parsed.ok) return { ok: false, message: parsed.error.message };
  return {
    ok: true,
    inputs: parsed.value.events.map((event) => ({
      key: eventKey(event),
      event,
      receivedAtMs,
      source: 'webhook',
    })),
  };
}

export function ingestItemsFor(bodies: readonly string[], receivedAtMs: number): IngestItem[] {
  return bodies.map((text) => {
    const body = Buffer.from(text);
    const value: unknown = JSON.parse(text);
    const events = webhookEventInputs(value, receivedAtMs);
    if (!events.ok) throw new Error(`bench webhook body unreadable: ${events.message}`);
    return {
      // With its display numbers, as the webhook route stores a body (one more upsert a body).
      raw: {
        receivedAtMs,
        body,
        sha256: createHash('sha256').update(body).digest('hex'),
        parseError: null,
        businessNumbers: businessNumbersOf(value),
      },
      events: events.inputs,
    };
  });
}

export interface StorageAloneRun {
  groupSize: number;
  webhooks: number;
  webhooksPerSecond: number;
  /** Mean wall time of one group's commit. */
  groupMs: number;
  /** CPU of this process per webhook (the whole store for SQLite; only the client side for PostgreSQL). */
  processCpuMicros: number;
  /** CPU of the whole machine per webhook, less what it uses when idle; null without /proc/stat. */
  machineCpuMicros: number | null;
}

/** Commits `items` in groups of `groupSize`, one after another, as the server's group commit does under load. */
export async function measureStorageAlone(
  ingestBatch: (items: readonly IngestItem[]) => Promise<unknown>,
  items: readonly IngestItem[],
  groupSize: number,
  idleMs = 1_000,
): Promise<StorageAloneRun> {
  // What the machine does when this process does nothing (the database server idling, other daemons).
  const idleBefore = machineBusySeconds();
  const idleStartedMs = performance.now();
  await new Promise((resolveWait) => setTimeout(resolveWait, idleMs));
  const idleAfter = machineBusySeconds();
  const idlePerSecond =
    idleBefore === null || idleAfter === null
      ? null
      : (idleAfter - idleBefore) / ((performance.now() - idleStartedMs) / 1000);

  const machineBefore = machineBusySeconds();
  const cpuBefore = process.cpuUsage();
  const startedMs = performance.now();
  let groups = 0;
  for (let from = 0; from < items.length; from += groupSize) {
    await ingestBatch(items.slice(from, from + groupSize));
    groups++;
  }
  const seconds = (performance.now() - startedMs) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const machineAfter = machineBusySeconds();
  const machineCpuMicros =
    machineBefore === null || machineAfter === null || idlePerSecond === null
      ? null
      : (Math.max(0, machineAfter - machineBefore - idlePerSecond * seconds) * 1e6) / items.length;
  return {
    groupSize,
    webhooks: items.length,
    webhooksPerSecond: items.length / seconds,
    groupMs: (seconds * 1000) / groups,
    processCpuMicros: (cpu.user + cpu.system) / items.length,
    machineCpuMicros,
  };
}

/**
 * The floor under any store: the same bodies appended to a plain file, one write and one fdatasync per group,
 * no index (so no duplicate detection) and no events. No store the issue asks for can commit faster. The
 * file is left for the caller to remove.
 */
export async function measureBareFile(
  path: string,
  items: readonly IngestItem[],
  groupSize: number,
  idleMs = 1_000,
): Promise<StorageAloneRun> {
  const fd = openSync(path, 'a');
  try {
    return await measureStorageAlone(
      async (group) => {
        writeSync(fd, Buffer.concat(group.map((item) => item.raw?.body ?? Buffer.alloc(0))));
        fdatasyncSync(fd);
      },
      items,
      groupSize,
      idleMs,
    );
  } finally {
    closeSync(fd);
  }
}

type Stored = 'bodies' | 'bodies and events' | 'bodies, bare file (floor)';

/**
 * CPU µs per body of what the webhook route does between reading a body and storing it: checking the
 * signature, the text's limits (one pass), parsing it, turning it into keyed events and reading its display
 * numbers (src/server/app.ts). Not hashing it: since the thirty-sixth session the store does (the route gives
 * no digest), and `ingestBatch` hashes each body to check the one it is given, counted in storing.
 */
export function measureCheckAndParse(bodies: readonly SignedBody[], secret: string): number {
  const started = process.cpuUsage();
  let events = 0;
  let numbers = 0;
  for (const { body, signature } of bodies) {
    const raw = Buffer.from(body);
    if (!verifyMetaSignature(raw, signature, [secret]).ok) throw new Error('bench body: bad signature');
    const text = UTF8.decode(raw);
    if (textOverLimits(text, MAX_JSON_DEPTH, MAX_WEBHOOK_VALUES) !== null)
      throw new Error('bench body: over limits');
    const value: unknown = JSON.parse(text);
    const parsed = parseEventValue(value);
    if (parsed.ok) for (const event of parsed.value.events) events += eventKey(event).length > 0 ? 1 : 0;
    numbers += businessNumbersOf(value).length;
  }
  const cpu = process.cpuUsage(started);
  if (events === 0) throw new Error('bench bodies: no events');
  if (numbers === 0) throw new Error('bench bodies: no display numbers (Meta names them in each body)');
  return (cpu.user + cpu.system) / bodies.length;
}

export interface Ceiling {
  /** Half the no-op route's requests per second: the rate the target asks of the webhook route. */
  targetPerSecond: number;
  /** CPU per webhook the machine has at the target rate, less the HTTP exchange's (client + server). */
  budgetMicros: number;
  /**
   * The most one thread can serve when it does a webhook's HTTP exchange (the echo route's server CPU) and
   * checks and parses it, with storing and rating free; null when not measured.
   */
  oneThread: { perSecond: number; exchangeMicros: number; checkParseMicros: number } | null;
  /** Verdicts for the bodies alone and for bodies with their events. */
  /** `cpuMicros`: storing alone; `workMicros`: storing, checking and parsing (what the budget must hold). */
  verdicts: {
    stored: Stored;
    run: StorageAloneRun;
    cpuMicros: number;
    workMicros: number;
    breaks: string[];
  }[];
}

/**
 * `exchangeCpuMicros`: CPU per request of the server and the load generator together for the HTTP exchange
 * alone (the echo route: a webhook's body read and a webhook's answer). `isOneWriter`: the store commits
 * one group at a time whatever the design (SQLite), so the waiting bound holds for any design.
 * `oneThread`: the server's own CPU per echo request and per check-and-parse of a body.
 */
export function ceilingOf(
  noopPerSecond: number,
  exchangeCpuMicros: number,
  cores: number,
  isOneWriter: boolean,
  runs: { bodies: StorageAloneRun; withEvents: StorageAloneRun; bareFile?: StorageAloneRun },
  oneThread: { exchangeMicros: number; checkParseMicros: number } | null = null,
): Ceiling {
  const targetPerSecond = noopPerSecond / 2;
  const budgetMicros = (cores * 1e6) / targetPerSecond - exchangeCpuMicros;
  const verdict = (stored: Stored, run: StorageAloneRun) => {
    const cpuMicros = run.machineCpuMicros ?? run.processCpuMicros;
    // Checking the signature and parsing the body are part of every webhook's work too.
    const workMicros = cpuMicros + (oneThread?.checkParseMicros ?? 0);
    const breaks: string[] = [];
    if (workMicros > budgetMicros) breaks.push('work');
    if (isOneWriter && run.webhooksPerSecond < targetPerSecond) breaks.push('waiting');
    return { stored, run, cpuMicros, workMicros, breaks };
  };
  return {
    targetPerSecond,
    budgetMicros,
    oneThread:
      oneThread === null
        ? null
        : { ...oneThread, perSecond: 1e6 / (oneThread.exchangeMicros + oneThread.checkParseMicros) },
    verdicts: [
      verdict('bodies', runs.bodies),
      verdict('bodies and events', runs.withEvents),
      ...(runs.bareFile === undefined ? [] : [verdict('bodies, bare file (floor)', runs.bareFile)]),
    ],
  };
}
