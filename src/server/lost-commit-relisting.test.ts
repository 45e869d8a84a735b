// An inbound that moves a business number to a smaller WABA moves the statuses naming no WABA placed by that
// number with it (store.ts relistedWabas: its former owner is rated again). When that inbound's write reached
// the database but its answer was lost (503), its retry is a duplicate: the former owner must still be rated
// again, or its stored bill keeps the status's unit that the new owner's bill now holds too.

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

const dir = mkdtempSync(join(tmpdir(), 'wameter-lost-relist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const OWNER_BEFORE = {
  kind: 'outbound',
  at: '2025-10-08T05:00:00Z',
  waba: 'W2',
  business: 'PN1',
  user: '919876543210',
  id: 'wamid.relist0',
  template: 'utility',
};
const STATUS = {
  kind: 'status',
  at: '2025-10-08T06:00:03Z',
  business: 'PN1',
  user: '919876543211',
  id: 'wamid.relist1',
  status: 'delivered',
  pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
};
const INBOUND = {
  kind: 'inbound',
  at: '2025-10-08T07:00:00Z',
  waba: 'W1',
  business: 'PN1',
  user: '919876543212',
  id: 'wamid.relistin',
};

async function post(url: string, line: unknown): Promise<unknown> {
  const answer = await fetch(`${url}/v1/events`, {
    method: 'POST',
    body: JSON.stringify(line),
    headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/x-ndjson' },
  });
  expect(answer.status).toBe(200);
  return answer.json();
}

async function unitsOf(url: string): Promise<{ id: string; waba: string }[]> {
  const answer = await fetch(`${url}/v1/units`, { headers: { Authorization: `Bearer ${KEY_ALL}` } });
  expect(answer.status).toBe(200);
  return ((await answer.json()) as { units: { id: string; waba: string }[] }).units;
}

describe('an inbound moving a number, stored though its answer was lost, then posted again', () => {
  it("rates the number's former owner too when the retry is a duplicate", async () => {
    const path = join(dir, 'lost.db');
    const server = await startServer(testConfig({ db: `sqlite:${path}` }), {
      logger: createMemoryLogger(),
      ratingWorkerScript: null,
    });
    const behind = await openSqliteStore(path, { walCheckpointer: { script: null } });
    try {
      await post(server.url, OWNER_BEFORE);
      await post(server.url, STATUS);
      // Placed by its number with the number's only owner.
      expect((await unitsOf(server.url)).map((unit) => [unit.id, unit.waba])).toEqual([
        ['u_wamid.relist1', 'W2'],
      ]);
      const parsed = parseEventValue(INBOUND);
      if (!parsed.ok) throw new Error(parsed.error.message);
      await behind.ingestEvents(
        parsed.value.events.map((event) => ({
          key: eventKey(event),
          event,
          receivedAtMs: 1,
          source: 'api:admin',
        })),
      );
      expect(await post(server.url, INBOUND)).toMatchObject({ accepted: 0, duplicates: 1 });
      // Before, W2 was not rated again: the unit was billed twice, to W1 and W2.
      expect((await unitsOf(server.url)).map((unit) => [unit.id, unit.waba])).toEqual([
        ['u_wamid.relist1', 'W1'],
      ]);
    } finally {
      await behind.close();
      await server.close();
    }
  });
});
