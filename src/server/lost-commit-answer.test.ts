// A write whose COMMIT reached the database but whose answer was lost (a connection reset, a pooler restart)
// is answered 503, yet stored. Its redelivery then finds it a duplicate (so does a group commit's one-by-one
// retry after the group failed): the service must still rate it, or the bill stays short until a restart.
// Simulated with a real second connection to the service's SQLite file that stores the write behind the
// service's back, as the lost answer leaves it.

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventKey } from '../core/events.js';
import { parseEventValue } from '../ingest/parse-event.js';
import { signMetaBody } from '../ingest/signature.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { KEY_ALL, SECRET, fixture, testConfig } from '../../test/server-kit.js';
import { createMemoryLogger } from './logger.js';
import { startServer } from './main.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-lost-commit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LINES = [
  {
    kind: 'outbound',
    at: '2025-10-08T06:00:00Z',
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    id: 'wamid.lost1',
    template: 'utility',
  },
  { kind: 'status', at: '2025-10-08T06:00:03Z', waba: 'W1', id: 'wamid.lost1', status: 'delivered' },
];

function eventsOf(value: unknown) {
  const parsed = parseEventValue(value);
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value.events;
}

async function unitsOf(url: string): Promise<unknown[]> {
  const answer = await fetch(`${url}/v1/units`, { headers: { Authorization: `Bearer ${KEY_ALL}` } });
  expect(answer.status).toBe(200);
  return ((await answer.json()) as { units: unknown[] }).units;
}

describe('a write stored though its answer was lost, then delivered again', () => {
  it('is rated when its redelivery is a duplicate: a webhook body, and event lines', async () => {
    const path = join(dir, 'lost.db');
    const server = await startServer(testConfig({ db: `sqlite:${path}` }), {
      logger: createMemoryLogger(),
      ratingWorkerScript: null,
    });
    const behind = await openSqliteStore(path, { walCheckpointer: { script: null } });
    try {
      // Meta's status webhook (pricing: its category), stored as the lost COMMIT left it.
      const body = fixture('pywa/status_delivered.json');
      const webhookEvents = eventsOf(JSON.parse(body.toString('utf8')));
      await behind.ingestWebhook(
        {
          receivedAtMs: 1,
          body,
          sha256: createHash('sha256').update(body).digest('hex'),
          parseError: null,
        },
        webhookEvents.map((event) => ({ key: eventKey(event), event, receivedAtMs: 1, source: 'webhook' })),
      );
      const again = await fetch(`${server.url}/webhooks/whatsapp`, {
        method: 'POST',
        body: new Uint8Array(body),
        headers: { 'X-Hub-Signature-256': signMetaBody(body, SECRET) },
      });
      expect(again.status).toBe(200);
      expect(((await again.json()) as { duplicate: boolean }).duplicate).toBe(true);
      // Before, nothing rated it: no unit, and /healthz said the bill was current.
      expect(await unitsOf(server.url)).toHaveLength(1);

      // The same through POST /v1/events.
      const lineEvents = LINES.flatMap(eventsOf);
      await behind.ingestEvents(
        lineEvents.map((event) => ({ key: eventKey(event), event, receivedAtMs: 1, source: 'api:admin' })),
      );
      const posted = await fetch(`${server.url}/v1/events`, {
        method: 'POST',
        body: LINES.map((line) => JSON.stringify(line)).join('\n'),
        headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/x-ndjson' },
      });
      expect(posted.status).toBe(200);
      expect(await posted.json()).toMatchObject({ accepted: 0, duplicates: 2 });
      expect(await unitsOf(server.url)).toHaveLength(2);
    } finally {
      await behind.close();
      await server.close();
    }
  });
});
