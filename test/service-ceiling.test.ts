// The service bench's bodies and its ceiling (bench table 3b): realistic signed bodies, items stored as the
// server stores them, groups committed in order, and the verdict arithmetic. No timing assertions here.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ceilingOf,
  ingestItemsFor,
  machineBusySeconds,
  measureBareFile,
  measureCheckAndParse,
  measureStorageAlone,
  type StorageAloneRun,
} from '../bench/service-ceiling.js';
import { WebhookBodies } from '../bench/webhook-bodies.js';
import { parseEventValue } from '../src/ingest/parse-event.js';
import { signMetaBody, verifyMetaSignature } from '../src/ingest/signature.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { IngestItem } from '../src/store/store.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-ceiling-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function statusesOf(body: string): { id: string; status: string }[] {
  const parsed = parseEventValue(JSON.parse(body));
  if (!parsed.ok) throw new Error(parsed.error.message);
  expect(parsed.value.rejected).toEqual([]);
  return parsed.value.events.map((event) => {
    if (event.kind !== 'status') throw new Error(`not a status: ${event.kind}`);
    return { id: event.id, status: event.status };
  });
}

describe('WebhookBodies', () => {
  it('makes one status per body, as Meta sends them, walking sent → delivered → read with distinct ids', () => {
    const bodies = new WebhookBodies(42, 't', 'one');
    const signed = Array.from({ length: 30 }, () => bodies.nextSigned(signMetaBody, 'secret'));
    const statuses = signed.map((item) => statusesOf(item.body));
    expect(statuses.every((list) => list.length === 1)).toBe(true);
    expect(signed.every((item) => item.statuses === 1)).toBe(true);
    expect(statuses.slice(0, 4).map((list) => list[0]!.status)).toEqual([
      'sent',
      'delivered',
      'read',
      'sent',
    ]);
    const ids = statuses.map((list) => list[0]!.id);
    expect(new Set(ids).size).toBe(ids.length);
    // Meta's wamids: "wamid." and about 56 characters of base64.
    expect(ids.every((id) => id.length === 'wamid.'.length + 56)).toBe(true);
    for (const item of signed) {
      expect(verifyMetaSignature(Buffer.from(item.body), item.signature, ['secret']).ok).toBe(true);
      // The size of Meta's own status bodies (the fixtures, compacted: 388–788 bytes).
      expect(item.body.length).toBeGreaterThanOrEqual(380);
      expect(item.body.length).toBeLessThanOrEqual(800);
      const status = (
        JSON.parse(item.body) as {
          entry: {
            changes: {
              value: { statuses: { status: string; conversation?: unknown; pricing?: unknown }[] };
            }[];
          }[];
        }
      ).entry[0]!.changes[0]!.value.statuses[0]!;
      // Like Meta's: pricing and a conversation on sent and delivered, neither on read.
      const hasObjects = status.status !== 'read';
      expect(status.conversation !== undefined, status.status).toBe(hasObjects);
      expect(status.pricing !== undefined, status.status).toBe(hasObjects);
    }
  });

  it('makes batched bodies of 1–50 statuses, counted as they are made', () => {
    const bodies = new WebhookBodies(42, 't', 'batched');
    const counts = Array.from({ length: 200 }, () => statusesOf(bodies.next()).length);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...counts)).toBeLessThanOrEqual(50);
    expect(new Set(counts).size).toBeGreaterThan(10);
    expect(bodies.statuses).toBe(counts.reduce((sum, count) => sum + count, 0));
  });

  it('is deterministic for a seed and run tag', () => {
    const a = new WebhookBodies(7, 'x', 'one');
    const b = new WebhookBodies(7, 'x', 'one');
    expect(Array.from({ length: 5 }, () => a.next())).toEqual(Array.from({ length: 5 }, () => b.next()));
  });
});

describe('storing alone', () => {
  it('stores the items in a real SQLite store in groups: every status once, then every body a duplicate', async () => {
    const bodies = new WebhookBodies(3, 's', 'one');
    const items = ingestItemsFor(
      Array.from({ length: 25 }, () => bodies.next()),
      1_700_000_000_000,
    );
    expect(items.every((item) => item.raw?.sha256.length === 64 && item.events.length === 1)).toBe(true);
    // With their display numbers, as the webhook route stores a body: their upsert is part of storing.
    const named = new Set(items.flatMap((item) => item.raw?.businessNumbers ?? []).map((n) => n.business));
    expect(items.every((item) => item.raw?.businessNumbers?.length === 1)).toBe(true);
    const store = await openSqliteStore(join(dir, 'store.db'));
    try {
      const outcomes: { isDuplicate: boolean; inserted: unknown[] }[] = [];
      const groups: number[] = [];
      const ingest = async (group: readonly IngestItem[]) => {
        groups.push(group.length);
        outcomes.push(...(await store.ingestBatch(group)));
      };
      const run = await measureStorageAlone(ingest, items, 10, 0);
      expect(groups).toEqual([10, 10, 5]);
      expect(
        outcomes.filter((outcome) => !outcome.isDuplicate && outcome.inserted.length === 1),
      ).toHaveLength(25);
      expect(run).toMatchObject({ groupSize: 10, webhooks: 25 });
      expect(run.webhooksPerSecond).toBeGreaterThan(0);
      expect(run.processCpuMicros).toBeGreaterThan(0);
      expect(new Set((await store.businessNumbers({})).map((n) => n.business))).toEqual(named);

      outcomes.length = 0;
      await measureStorageAlone(ingest, items, 10, 0);
      expect(outcomes.every((outcome) => outcome.isDuplicate)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('appends the bodies to a bare file, in order', async () => {
    const bodies = new WebhookBodies(5, 'f', 'one');
    const items = ingestItemsFor(
      Array.from({ length: 7 }, () => bodies.next()),
      1,
    );
    const path = join(dir, 'bare.log');
    const run = await measureBareFile(path, items, 3, 0);
    expect(run).toMatchObject({ groupSize: 3, webhooks: 7 });
    expect(readFileSync(path, 'utf8')).toBe(items.map((item) => item.raw!.body.toString()).join(''));
  });

  it('refuses a body the server could not read', () => {
    expect(() => ingestItemsFor(['{"object":"whatsapp_business_account","entry":"x"}'], 1)).toThrow(
      /bench webhook body unreadable/,
    );
  });

  it('reads the machine busy time from /proc/stat on Linux', () => {
    const busy = machineBusySeconds();
    if (process.platform === 'linux') {
      expect(readFileSync('/proc/stat', 'utf8').startsWith('cpu ')).toBe(true);
      expect(busy).toBeGreaterThan(0);
    } else expect(busy).toBeNull();
  });
});

describe('measureCheckAndParse', () => {
  it('checks and parses signed bodies, and refuses a body whose signature does not match', () => {
    const bodies = new WebhookBodies(9, 'c', 'one');
    const signed = Array.from({ length: 50 }, () => bodies.nextSigned(signMetaBody, 'secret'));
    expect(measureCheckAndParse(signed, 'secret')).toBeGreaterThan(0);
    expect(() => measureCheckAndParse(signed, 'another secret')).toThrow(/bad signature/);
  });
});

describe('ceilingOf', () => {
  const run = (
    webhooksPerSecond: number,
    machineCpuMicros: number | null,
    processCpuMicros = 5,
  ): StorageAloneRun => ({
    groupSize: 10,
    webhooks: 1000,
    webhooksPerSecond,
    groupMs: 10_000 / webhooksPerSecond,
    processCpuMicros,
    machineCpuMicros,
  });

  it('gives each webhook the cores ÷ half the no-op rate, less the no-op request', () => {
    // 80,000 no-op/s → 40,000 webhooks/s wanted; 2 cores → 50 µs each; the no-op request took 20 µs.
    const ceiling = ceilingOf(80_000, 20, 2, true, { bodies: run(50_000, 10), withEvents: run(50_000, 25) });
    expect(ceiling.targetPerSecond).toBe(40_000);
    expect(ceiling.budgetMicros).toBe(30);
    expect(ceiling.verdicts.map((verdict) => verdict.breaks)).toEqual([[], []]);
  });

  it('breaks the work bound when storing takes more CPU than the budget', () => {
    const ceiling = ceilingOf(80_000, 20, 2, true, { bodies: run(50_000, 10), withEvents: run(50_000, 31) });
    expect(ceiling.verdicts.map((verdict) => [verdict.stored, verdict.breaks])).toEqual([
      ['bodies', []],
      ['bodies and events', ['work']],
    ]);
  });

  it('breaks the waiting bound only for a one-writer store', () => {
    const runs = { bodies: run(30_000, 10), withEvents: run(30_000, 10), bareFile: run(39_999, 1) };
    expect(ceilingOf(80_000, 20, 2, true, runs).verdicts.map((verdict) => verdict.breaks)).toEqual([
      ['waiting'],
      ['waiting'],
      ['waiting'],
    ]);
    expect(ceilingOf(80_000, 20, 2, false, runs).verdicts.map((verdict) => verdict.breaks)).toEqual([
      [],
      [],
      [],
    ]);
  });

  it('counts checking and parsing into the work, and bounds one thread by the exchange plus them', () => {
    // Budget 30 µs: storing 20 alone fits, with 12 µs of checking and parsing it does not.
    const ceiling = ceilingOf(
      80_000,
      20,
      2,
      false,
      { bodies: run(50_000, 20), withEvents: run(50_000, 5) },
      {
        exchangeMicros: 13,
        checkParseMicros: 12,
      },
    );
    expect(
      ceiling.verdicts.map((verdict) => [verdict.cpuMicros, verdict.workMicros, verdict.breaks]),
    ).toEqual([
      [20, 32, ['work']],
      [5, 17, []],
    ]);
    expect(ceiling.oneThread).toEqual({ exchangeMicros: 13, checkParseMicros: 12, perSecond: 40_000 });
  });

  it("falls back to this process's CPU where the machine's cannot be read", () => {
    const ceiling = ceilingOf(80_000, 20, 2, false, {
      bodies: run(50_000, null, 40),
      withEvents: run(50_000, 5),
    });
    expect(ceiling.verdicts[0]).toMatchObject({ cpuMicros: 40, breaks: ['work'] });
  });
});
