// The WAL checkpointer of the SQLite store on real files: checkpoints in its worker thread, the bound on the
// WAL, the writer's own checkpoints when the worker is gone, and the empty WAL close leaves.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { eventKey, type CoreEvent } from '../../core/events.js';
import type { IngestItem, Store } from '../store.js';
import { compileSources } from '../../../test/support/build-server.js';
import { openSqliteStore, walCheckpointerOf } from './sqlite-store.js';
import {
  WAL_BOUND_PAGES,
  WRITER_CHECKPOINT_PAGES,
  workerErrorOf,
  type WalCheckpointer,
} from './wal-checkpointer.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const require = createRequire(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'wameter-wal-checkpointer-'));
/** An interval no test lasts: the worker runs but never checkpoints, so what the WAL does is the writer's. */
const NEVER_MS = 3_600_000;
let script: string;
let files = 0;

/** The store compiled (`build`): what a process running from dist/ runs. */
const BUILD = join(ROOT, '.tmp', 'wal-checkpointer-test-build');

beforeAll(() => {
  // A worker thread cannot run TypeScript: it runs the worker compiled. Only the store is named: its worker
  // must be compiled with it, as in dist/, without being named.
  compileSources(BUILD, ['src/store/sqlite/sqlite-store.ts']);
  script = join(BUILD, 'src', 'store', 'sqlite', 'wal-checkpoint-worker.js');
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

let bodies = 0;
/** One group commit of the ingestion bench's shape: 10 bodies of 17 statuses, keys all over the index. */
function group(): IngestItem[] {
  return Array.from({ length: 10 }, () => {
    const n = bodies++;
    const events = Array.from({ length: 17 }, (_, i): CoreEvent => {
      const id = createHash('sha256').update(`${n}.${i}`).digest('hex').slice(0, 24);
      return {
        kind: 'status',
        atMs: 1_759_276_800_000 + n * 1000 + i,
        id: `wamid.${id}`,
        status: 'delivered',
        waba: `10229012934039${i % 10}`,
        business: '106540352242922',
        user: `9198${id.replace(/\D/g, '').padEnd(8, '7').slice(0, 8)}`,
        pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
      };
    });
    const body = Buffer.from(JSON.stringify(events));
    return {
      raw: {
        receivedAtMs: 1,
        body,
        sha256: createHash('sha256').update(body).digest('hex'),
        parseError: null,
      },
      events: events.map((event) => ({ key: eventKey(event), event, receivedAtMs: 1, source: 'webhook:1' })),
    };
  });
}

/**
 * The most WAL frames one group's commit writes (its pages: a leaf of each index of random keys per event,
 * the bodies' overflow pages, the tables' last pages), with room to spare: the test that sees commits whole
 * checks it.
 */
const GROUP_FRAMES = 600;

/** The WAL file's size in frames (4 KiB pages, each with its 24-byte frame header, after a 32-byte header). */
function walFrames(path: string): number {
  const wal = `${path}-wal`;
  if (!existsSync(wal)) return 0;
  return Math.max(0, Math.ceil((statSync(wal).size - 32) / (4096 + 24)));
}

/**
 * Ingests `groups` groups and returns the WAL's largest size seen after a commit (its file only grows, so
 * its size is the most it held), and the most one commit made the file grow: a commit's frames exactly while
 * the WAL has not restarted yet, fewer once it has (a commit then rewrites frames before growing the file).
 */
async function ingest(store: Store, path: string, groups: number): Promise<{ most: number; commit: number }> {
  let most = walFrames(path);
  let commit = 0;
  for (let i = 0; i < groups; i++) {
    await store.ingestBatch(group());
    const frames = walFrames(path);
    commit = Math.max(commit, frames - most);
    most = Math.max(most, frames);
  }
  return { most, commit };
}

async function openWithWorker(
  options: { intervalMs?: number; onFailure?: (error: Error) => void } = {},
): Promise<{ store: Store; path: string; checkpointer: WalCheckpointer }> {
  const path = join(dir, `${++files}.db`);
  const store = await openSqliteStore(path, { walCheckpointer: { script, ...options } });
  const checkpointer = walCheckpointerOf(store);
  if (checkpointer === undefined) throw new Error('the store started no checkpointer');
  await vi.waitFor(() => expect(checkpointer.stats.state).toBe('running'), { timeout: 20_000 });
  return { store, path, checkpointer };
}

function countEvents(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return Number(db.prepare('SELECT count(*) FROM events').pluck().get());
  } finally {
    db.close();
  }
}

describe('the WAL checkpointer of a SQLite file opened for writing', () => {
  it('checkpoints in its worker while the writer ingests, and the WAL stays bounded', async () => {
    const { store, path, checkpointer } = await openWithWorker();
    try {
      // Past the bound's worth of frames, and on until the worker has copied frames of a WAL the writer kept
      // writing (a pass every 100 ms).
      let groups = 0;
      let most = 0;
      while (groups < 150 || (checkpointer.stats.copyingPasses < 3 && groups < 1_000)) {
        most = Math.max(most, (await ingest(store, path, 10)).most);
        groups += 10;
      }
      expect(checkpointer.stats.copyingPasses).toBeGreaterThanOrEqual(3);
      expect(checkpointer.stats.state).toBe('running');
      // Passes that overlap a commit crossing the bound can let a few more commits in: bounded, not exact.
      expect(most).toBeLessThan(2 * WAL_BOUND_PAGES);
      expect(countEvents(path)).toBe(groups * 10 * 17);
    } finally {
      await store.close();
    }
  });

  it('leaves the checkpoints to the worker: the writer checkpoints only once the WAL reaches the bound', async () => {
    // The worker never gets to a pass: whatever bounds the WAL is the writer's own checkpoint.
    const { store, path, checkpointer } = await openWithWorker({ intervalMs: NEVER_MS });
    try {
      const { most, commit } = await ingest(store, path, 150);
      expect(checkpointer.stats.passes).toBe(0);
      // Every commit up to the bound grew the file by its frames (no restart before it).
      expect(commit).toBeLessThanOrEqual(GROUP_FRAMES);
      // Past SQLite's default threshold, where the writer used to checkpoint inside its commits…
      expect(most).toBeGreaterThan(WRITER_CHECKPOINT_PAGES + GROUP_FRAMES);
      // …but no further than the bound and the commit that crossed it.
      expect(most).toBeLessThanOrEqual(WAL_BOUND_PAGES + GROUP_FRAMES);
    } finally {
      await store.close();
    }
  });

  it('gives the checkpoints back to the writer when the worker dies, losing nothing', async () => {
    const failures: Error[] = [];
    const { store, path, checkpointer } = await openWithWorker({
      intervalMs: NEVER_MS,
      onFailure: (error) => failures.push(error),
    });
    try {
      await ingest(store, path, 5);
      await checkpointer.crashForTests();
      expect(checkpointer.stats.state).toBe('failed');
      expect(failures.map((error) => error.message)).toEqual(['the checkpoint worker exited (code 1)']);
      // Far more than the default threshold's worth of frames: the writer checkpoints at that threshold.
      const { most } = await ingest(store, path, 60);
      expect(most).toBeLessThanOrEqual(WRITER_CHECKPOINT_PAGES + GROUP_FRAMES);
      expect(countEvents(path)).toBe(65 * 10 * 17);
    } finally {
      await store.close();
    }
    expect(walFrames(path)).toBe(0);
  });

  it('opens and writes when the worker cannot start, the writer checkpointing itself', async () => {
    const failures: Error[] = [];
    const path = join(dir, `${++files}.db`);
    const store = await openSqliteStore(path, {
      walCheckpointer: { script: join(dir, 'no-such-worker.js'), onFailure: (error) => failures.push(error) },
    });
    const checkpointer = walCheckpointerOf(store)!;
    try {
      await checkpointer.exited;
      expect(checkpointer.stats.state).toBe('failed');
      expect(failures).toHaveLength(1);
      const { most } = await ingest(store, path, 40);
      expect(most).toBeLessThanOrEqual(WRITER_CHECKPOINT_PAGES + GROUP_FRAMES);
    } finally {
      await store.close();
    }
  });

  it('closes with the worker stopped and the WAL truncated to 0 bytes, while a reader keeps the file open', async () => {
    const { store, path, checkpointer } = await openWithWorker({ intervalMs: NEVER_MS });
    const reader = new Database(path, { readonly: true });
    try {
      await ingest(store, path, 20);
      expect(reader.prepare('SELECT count(*) FROM events').pluck().get()).toBe(20 * 10 * 17);
      expect(walFrames(path)).toBeGreaterThan(0);
      // Twice at once, then again: one close, every call resolved once it is done.
      await Promise.all([store.close(), store.close()]);
      await store.close();
      expect(checkpointer.stats.state).toBe('stopped');
      // The reader kept SQLite from its own checkpoint at the last connection's close: the store's did it.
      expect(existsSync(`${path}-wal`)).toBe(true);
      expect(statSync(`${path}-wal`).size).toBe(0);
      expect(reader.prepare('SELECT count(*) FROM events').pluck().get()).toBe(20 * 10 * 17);
    } finally {
      reader.close();
    }
  });

  it('closes promptly right after a burst, the worker possibly amid a pass', async () => {
    const { store, path, checkpointer } = await openWithWorker({ intervalMs: 1 });
    await ingest(store, path, 30);
    await store.close();
    expect(checkpointer.stats.state).toBe('stopped');
    expect(walFrames(path)).toBe(0);
    expect(countEvents(path)).toBe(30 * 10 * 17);
  });

  it('runs compiled with no script named, and keeps no process alive whose store is left open', () => {
    const path = join(dir, `${++files}.db`);
    const store = pathToFileURL(join(BUILD, 'src', 'store', 'sqlite', 'sqlite-store.js')).href;
    // The child opens a store, waits for its worker to run, and returns without closing it.
    const child = join(dir, 'left-open.mjs');
    writeFileSync(
      child,
      `const { openSqliteStore, walCheckpointerOf } = await import(${JSON.stringify(store)});
       const checkpointer = walCheckpointerOf(await openSqliteStore(${JSON.stringify(path)}));
       while (checkpointer.stats.state === 'starting') await new Promise((resolve) => setTimeout(resolve, 10));
       process.stdout.write(checkpointer.stats.state);`,
    );
    const run = spawnSync(process.execPath, [child], { encoding: 'utf8', timeout: 25_000 });
    expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({
      status: 0,
      stdout: 'running',
      stderr: '',
    });
  });

  it('is not started for a read-only open nor for an in-memory store', async () => {
    const path = join(dir, `${++files}.db`);
    await (await openSqliteStore(path, { walCheckpointer: { script: null } })).close();
    const readOnly = await openSqliteStore(path, { isReadOnly: true, walCheckpointer: { script } });
    const memory = await openSqliteStore(':memory:', { walCheckpointer: { script } });
    try {
      expect(walCheckpointerOf(readOnly)).toBeUndefined();
      expect(walCheckpointerOf(memory)).toBeUndefined();
    } finally {
      await readOnly.close();
      await memory.close();
    }
  });

  it("names a worker's SQLite error by its code (a full disk), which reaches the store's thread without its message", async () => {
    // better-sqlite3's SqliteError crosses the thread boundary as `{code}` alone: the warning said "(undefined)".
    const worker = new Worker(
      `const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))});
       new Database(':memory:').prepare('SELECT * FROM no_such_table').get();`,
      { eval: true },
    );
    const error = await new Promise<unknown>((resolve) => worker.once('error', resolve));
    expect(workerErrorOf(error).message).toBe('SQLITE_ERROR');
    expect(workerErrorOf(new Error('disk I/O error')).message).toBe('disk I/O error');
  });
});
