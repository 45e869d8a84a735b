// The crash test of issue 3: the real server (a child process on a SQLite file) is killed with SIGKILL
// while a client streams signed webhooks. After a restart on the same file, every webhook that got a 200
// is present and each of its messages is rated exactly once.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signMetaBody } from '../src/ingest/signature.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { compileSources } from './support/build-server.js';

const ROOT = join(import.meta.dirname, '..');
// Inside the repository (git-ignored) so the built modules find the package's data/ folder.
const BUILD = join(ROOT, '.tmp', 'server-crash-build');
const ENTRY = join(BUILD, 'src', 'server', 'main.js');
const SECRET = 'crash-test-secret';
const KEY = 'crash-test-key';
const dir = mkdtempSync(join(tmpdir(), 'wameter-crash-'));
const DB = join(dir, 'crash.db');

const children: ChildProcess[] = [];

beforeAll(() => {
  // Only the server's import graph and its live-rating worker: the test does not depend on every file of the
  // repo compiling.
  compileSources(BUILD, ['src/server/main.ts', 'src/server/rating-worker.ts']);
}, 120_000);

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startChild(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [ENTRY], {
    env: {
      ...process.env,
      WAMETER_DB: `sqlite:${DB}`,
      PORT: '0',
      WAMETER_HOST: '127.0.0.1',
      WAMETER_APP_SECRETS: SECRET,
      WAMETER_API_KEYS: `${KEY}=*`,
      WAMETER_RATE_LIMIT: 'off',
      WAMETER_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (!line.includes('"listening"')) return;
      resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)));
  });
  return { child, url };
}

/** Resolves with the exit code once the child has exited (at once if it already has). */
function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** A signed-able webhook body of five delivered marketing messages (PMP era), unique per `n`. */
function webhookBody(n: number): string {
  const statuses = Array.from({ length: 5 }, (_, i) => ({
    id: `wamid.crash.${n}.${i}`,
    status: 'delivered',
    timestamp: String(1754049600 + n * 60 + i),
    recipient_id: '919876543210',
    pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
  }));
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: 'WCRASH',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550000000', phone_number_id: 'PNCRASH' },
              statuses,
            },
          },
        ],
      },
    ],
  });
}

describe('SIGKILL while webhooks stream in', () => {
  it('every webhook that got a 200 is present after restart and rated exactly once', async () => {
    const first = await startChild();
    const acknowledged: number[] = [];
    let next = 0;
    let killed = false;
    const refusals: string[] = [];
    const sender = async () => {
      while (!killed) {
        const n = next++;
        const body = webhookBody(n);
        try {
          const response = await fetch(`${first.url}/webhooks/whatsapp`, {
            method: 'POST',
            body,
            headers: {
              'X-Hub-Signature-256': signMetaBody(body, SECRET),
              'Content-Type': 'application/json',
            },
          });
          if (response.status === 200) acknowledged.push(n);
          else refusals.push(`${response.status} ${await response.text()}`);
        } catch {
          // The connection died with the server: this webhook got no 200, Meta would retry it.
        }
      }
    };
    const senders = [sender(), sender(), sender(), sender()];
    const deadline = Date.now() + 30_000;
    while (acknowledged.length < 40) {
      if (Date.now() > deadline || refusals.length > 0) {
        killed = true;
        first.child.kill('SIGKILL');
        throw new Error(
          `only ${acknowledged.length} webhooks acknowledged; refusals: ${refusals.slice(0, 3).join(' | ')}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    first.child.kill('SIGKILL');
    killed = true;
    await Promise.all(senders);
    await exited(first.child);
    expect(acknowledged.length).toBeGreaterThanOrEqual(40);

    const second = await startChild();
    const units: { messages: string[] }[] = [];
    let cursor: string | null = null;
    do {
      const response = await fetch(
        `${second.url}/v1/units?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        { headers: { Authorization: `Bearer ${KEY}` } },
      );
      expect(response.status).toBe(200);
      const page = (await response.json()) as { units: { messages: string[] }[]; next_cursor: string | null };
      units.push(...page.units);
      cursor = page.next_cursor;
    } while (cursor);

    const ratedTimes = new Map<string, number>();
    for (const unit of units)
      for (const id of unit.messages) ratedTimes.set(id, (ratedTimes.get(id) ?? 0) + 1);
    for (const n of acknowledged) {
      for (let i = 0; i < 5; i++) expect(ratedTimes.get(`wamid.crash.${n}.${i}`), `webhook ${n}`).toBe(1);
    }
    // Nothing is rated twice, acknowledged or not (a body stored just before the kill is rated once too).
    expect([...ratedTimes.values()].every((times) => times === 1)).toBe(true);

    const secondExit = exited(second.child);
    second.child.kill('SIGTERM');
    expect(await secondExit).toBe(0);

    const store = await openSqliteStore(DB);
    try {
      const stored = new Set(
        (await store.listEvents()).map((event) => (event.kind === 'status' ? event.id : '')),
      );
      for (const n of acknowledged) expect(stored.has(`wamid.crash.${n}.0`), `webhook ${n}`).toBe(true);
    } finally {
      await store.close();
    }
  }, 120_000);
});
