// A status naming no WABA whose message is stored nowhere is placed by its business number (its owner: here
// W3, by PN9). Its message, arriving later on another WABA and number (W1, PN1), takes it into W1's scope:
// the write re-lists W3 (store.ts relistedWabas), which must be rated again to drop it. When that write
// reached the database but its answer was lost (503), its retry is a duplicate that names neither W3 nor PN9:
// W3 must still be rated again, or its stored bill keeps the status's unit that W1's bill now holds too.
// Simulated as in lost-commit-relisting.test.ts: a second connection stores the write behind the service's back.

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

const dir = mkdtempSync(join(tmpdir(), 'wameter-lost-placement-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NUMBER_OWNER = {
  kind: 'outbound',
  at: '2025-10-08T05:00:00Z',
  waba: 'W3',
  business: 'PN9',
  user: '919876543210',
  id: 'wamid.place0',
  template: 'utility',
};
const STATUS = {
  kind: 'status',
  at: '2025-10-08T06:00:03Z',
  business: 'PN9',
  user: '919876543211',
  id: 'wamid.place1',
  status: 'delivered',
  pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
};
const MESSAGE = {
  kind: 'outbound',
  at: '2025-10-08T06:00:00Z',
  waba: 'W1',
  business: 'PN1',
  user: '919876543211',
  id: 'wamid.place1',
  template: 'marketing',
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

async function unitsOf(url: string): Promise<[string, string][]> {
  const answer = await fetch(`${url}/v1/units`, { headers: { Authorization: `Bearer ${KEY_ALL}` } });
  expect(answer.status).toBe(200);
  const { units } = (await answer.json()) as { units: { id: string; waba: string }[] };
  return units.map((unit) => [unit.id, unit.waba]);
}

describe("a status's message on another number, stored though its answer was lost, then posted again", () => {
  it('rates the WABA the status was placed with too when the retry is a duplicate', async () => {
    const path = join(dir, 'lost.db');
    const server = await startServer(testConfig({ db: `sqlite:${path}` }), {
      logger: createMemoryLogger(),
      ratingWorkerScript: null,
    });
    const behind = await openSqliteStore(path, { walCheckpointer: { script: null } });
    try {
      await post(server.url, NUMBER_OWNER);
      await post(server.url, STATUS);
      // Its message stored nowhere: placed by its number with the number's owner.
      expect(await unitsOf(server.url)).toEqual([['u_wamid.place1', 'W3']]);
      const parsed = parseEventValue(MESSAGE);
      if (!parsed.ok) throw new Error(parsed.error.message);
      await behind.ingestEvents(
        parsed.value.events.map((event) => ({
          key: eventKey(event),
          event,
          receivedAtMs: 1,
          source: 'api:admin',
        })),
      );
      expect(await post(server.url, MESSAGE)).toMatchObject({ accepted: 0, duplicates: 1 });
      // Before, W3 was not rated again: the unit was billed twice, to W1 and W3.
      expect(await unitsOf(server.url)).toEqual([['u_wamid.place1', 'W1']]);
    } finally {
      await behind.close();
      await server.close();
    }
  });
});
