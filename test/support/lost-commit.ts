// A service whose write reached the database but whose answer was lost (503), simulated as in
// src/server/lost-commit-answer.test.ts: a second connection to the same SQLite file stores the write behind
// the service's back, and the client then posts it again — a duplicate the service must still rate.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { eventKey } from '../../src/core/events.js';
import { parseEventValue } from '../../src/ingest/parse-event.js';
import { createMemoryLogger } from '../../src/server/logger.js';
import { startServer } from '../../src/server/main.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { KEY_ALL, testConfig } from '../server-kit.js';

export interface LostCommitService {
  /** POSTs one event line to /v1/events with the all-WABAs key: 200 expected, its answer returned. */
  post(line: unknown): Promise<unknown>;
  /** The write whose answer was lost: `line` stored through the second connection, the service told nothing. */
  storeBehind(line: unknown): Promise<void>;
  /** GET /v1/units with the all-WABAs key, as `[id, waba]` pairs. */
  units(): Promise<[string, string][]>;
}

/** Runs `body` against a service on a new SQLite file and a second connection to it; closes both after. */
export async function withLostCommitService(
  body: (service: LostCommitService) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-lost-commit-'));
  const path = join(dir, 'lost.db');
  const server = await startServer(testConfig({ db: `sqlite:${path}` }), {
    logger: createMemoryLogger(),
    ratingWorkerScript: null,
  });
  const behind = await openSqliteStore(path, { walCheckpointer: { script: null } });
  const authorised = { Authorization: `Bearer ${KEY_ALL}` };
  try {
    await body({
      async post(line) {
        const answer = await fetch(`${server.url}/v1/events`, {
          method: 'POST',
          body: JSON.stringify(line),
          headers: { ...authorised, 'Content-Type': 'application/x-ndjson' },
        });
        expect(answer.status).toBe(200);
        return answer.json();
      },
      async storeBehind(line) {
        const parsed = parseEventValue(line);
        if (!parsed.ok) throw new Error(parsed.error.message);
        const inputs = parsed.value.events.map((event) => ({
          key: eventKey(event),
          event,
          receivedAtMs: 1,
          source: 'api:admin',
        }));
        await behind.ingestEvents(inputs);
      },
      async units() {
        const answer = await fetch(`${server.url}/v1/units`, { headers: authorised });
        expect(answer.status).toBe(200);
        const { units } = (await answer.json()) as { units: { id: string; waba: string }[] };
        return units.map((unit) => [unit.id, unit.waba]);
      },
    });
  } finally {
    await behind.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
