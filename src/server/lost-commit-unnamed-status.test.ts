// A status line naming no WABA (contract §1 lets a status omit it) whose write reached the database but whose
// answer was lost (503), then posted again: the retry finds it a duplicate. Like any other lost commit
// (lost-commit-answer.test.ts) the service must rate it then, though the line names no WABA to rate — the
// WABA is its message's. Simulated as there: a second connection stores the write behind the service's back.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventKey } from '../core/events.js';
import { parseEventValue } from '../ingest/parse-event.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { KEY_ALL, testConfig } from '../../test/server-kit.js';
import { createMemoryLogger } from './logger.js';
import { startServer } from './main.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-lost-unnamed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const OUTBOUND = {
  kind: 'outbound',
  at: '2025-10-08T06:00:00Z',
  waba: 'W1',
  business: 'PN1',
  user: '919876543210',
  id: 'wamid.lostunnamed1',
  template: 'utility',
};
const STATUS = { kind: 'status', at: '2025-10-08T06:00:03Z', id: 'wamid.lostunnamed1', status: 'delivered' };

async function post(url: string, line: unknown): Promise<unknown> {
  const answer = await fetch(`${url}/v1/events`, {
    method: 'POST',
    body: JSON.stringify(line),
    headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/x-ndjson' },
  });
  expect(answer.status).toBe(200);
  return answer.json();
}

async function unitsOf(url: string): Promise<unknown[]> {
  const answer = await fetch(`${url}/v1/units`, { headers: { Authorization: `Bearer ${KEY_ALL}` } });
  expect(answer.status).toBe(200);
  return ((await answer.json()) as { units: unknown[] }).units;
}

describe('a status naming no WABA stored though its answer was lost, then posted again', () => {
  it("rates its message's WABA when the retry is a duplicate", async () => {
    const path = join(dir, 'lost.db');
    const server = await startServer(testConfig({ db: `sqlite:${path}` }), {
      logger: createMemoryLogger(),
      ratingWorkerScript: null,
    });
    const behind = await openSqliteStore(path, { walCheckpointer: { script: null } });
    try {
      expect(await post(server.url, OUTBOUND)).toMatchObject({ accepted: 1 });
      // Sent, never delivered: pending, no unit yet.
      expect(await unitsOf(server.url)).toHaveLength(0);
      const parsed = parseEventValue(STATUS);
      if (!parsed.ok) throw new Error(parsed.error.message);
      await behind.ingestEvents(
        parsed.value.events.map((event) => ({
          key: eventKey(event),
          event,
          receivedAtMs: 1,
          source: 'api:admin',
        })),
      );
      expect(await post(server.url, STATUS)).toMatchObject({ accepted: 0, duplicates: 1 });
      expect(await unitsOf(server.url)).toHaveLength(1);
    } finally {
      await behind.close();
      await server.close();
    }
  });
});
