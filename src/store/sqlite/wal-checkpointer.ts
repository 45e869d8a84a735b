// The SQLite store's WAL checkpointer: a worker thread with a connection of its own copies the WAL's pages
// back into the database file (`PRAGMA wal_checkpoint(PASSIVE)`) every WAL_CHECKPOINT_INTERVAL_MS, so that
// the writing connection no longer pays a whole checkpoint inside whichever COMMIT takes the WAL past
// SQLite's threshold. While the worker runs, the writer's own threshold is raised to WAL_BOUND_PAGES: the
// bound on the WAL should the worker fall behind or be starved by readers. A worker that dies (or never
// starts) gives that work back to the writer at SQLite's default threshold. docs/storage.md, "Durability".

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type {
  CheckpointWorkerData,
  CheckpointWorkerReply,
  CheckpointWorkerRequest,
} from './wal-checkpoint-worker.js';

/**
 * How often the worker checkpoints. At the store's peak ingestion rate on a small machine (≈ 100 groups of
 * 10 bodies × 17 statuses a second) a group appends a few hundred WAL frames, so 100 ms of writes is a few
 * thousand frames: well under WAL_BOUND_PAGES, so the worker copies the WAL several times before it reaches
 * the bound and the writer's checkpoint there finds only the last pass's frames left to copy. A page that
 * many commits rewrite (an index page) is copied once per pass, not once per commit. An idle store costs 10
 * passes a second that read the WAL index and find nothing to copy.
 */
export const WAL_CHECKPOINT_INTERVAL_MS = 100;

/** SQLite's default `wal_autocheckpoint`: the writer's threshold when no worker checkpoints for it. */
export const WRITER_CHECKPOINT_PAGES = 1_000;

/**
 * The writer's threshold while the worker runs (10 × SQLite's default; ≈ 40 MB of WAL with 4 KiB pages):
 * the COMMIT that leaves at least this many frames in the WAL checkpoints itself, as SQLite does by default
 * at 1,000. A passive checkpoint never waits, so under steady writes the worker rarely finds the WAL wholly
 * copied and SQLite restarts the WAL from its start only after such a writer's checkpoint; that one copies
 * only what the worker has not copied yet. The WAL can pass the bound by the commits made while a pass of
 * the worker holds the checkpoint lock (the writer's checkpoint then gives way, and the next commit tries
 * again), and, as with SQLite's default, for as long as a reader keeps an older snapshot.
 */
export const WAL_BOUND_PAGES = 10 * WRITER_CHECKPOINT_PAGES;

/** How long a stopping worker may take to finish a checkpoint in progress before it is terminated. */
const STOP_GRACE_MS = 2_000;

/** The counters the worker keeps in shared memory (BigInt64Array slots). */
export const COUNTER = {
  /** Checkpoints run. */
  passes: 0,
  /** Checkpoints that found the WAL changed since the previous one and copied frames of it. */
  copyingPasses: 1,
  /** Checkpoints that could not copy every frame because a reader or another checkpoint was in the way. */
  busyPasses: 2,
} as const;

/** What the tests (and a future metric) can read of the checkpointer. */
export interface WalCheckpointerStats {
  state: WalCheckpointerState;
  passes: number;
  copyingPasses: number;
  busyPasses: number;
}

/**
 * `starting`: the worker opens its connection; `running`: it said it checkpoints (the writer's threshold is
 * WAL_BOUND_PAGES in both states); `stopping`: close() asked it to end;
 * `stopped`: it ended at close; `failed`: it ended otherwise (crashed, could not start, was terminated),
 * and the writer checkpoints itself again.
 */
export type WalCheckpointerState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface WalCheckpointerOptions {
  /** The compiled worker script (`walCheckpointWorkerScript()`). */
  script: string;
  intervalMs?: number;
  /** Told when the worker ends other than at close: the writer checkpoints itself from then on. */
  onFailure?: (error: Error) => void;
}

/**
 * The compiled worker script next to this module; `null` when running from TypeScript sources (Vitest),
 * where a worker thread cannot run the `.ts` file: tests pass a compiled one (test/support/build-server.ts).
 */
export function walCheckpointWorkerScript(): string | null {
  if (!import.meta.url.endsWith('.js')) return null;
  const path = fileURLToPath(new URL('./wal-checkpoint-worker.js', import.meta.url));
  return existsSync(path) ? path : null;
}

/**
 * Tells the operator that the writer checkpoints itself again: nothing is lost, it is slower. A process
 * warning, so that whoever runs the store says it in its own way: a command's stderr (Node prints it), the
 * service's JSON log (`wameter serve` logs the process's warnings: routeProcessWarnings, src/server/logger.ts).
 */
function warn(error: Error): void {
  process.emitWarning(
    `the SQLite WAL checkpointer stopped (${error.message}): the writing connection checkpoints itself from now on`,
    { code: 'WAMETER_WAL_CHECKPOINTER' },
  );
}

/**
 * A worker's error as the store's thread receives it: an `Error` keeps its message, but one of a class the
 * structured clone does not know (better-sqlite3's `SqliteError`, thrown by a full disk) arrives as a plain
 * object of its own fields, `code` among them (`SQLITE_FULL`): said by that, never as "undefined".
 */
export function workerErrorOf(error: unknown): Error {
  if (error instanceof Error && error.message !== '') return error;
  if (typeof error === 'object' && error !== null) {
    const { message, code } = error as { message?: unknown; code?: unknown };
    const words = [code, message].filter((part) => typeof part === 'string' && part !== '').join(': ');
    if (words !== '') return new Error(words);
  }
  return new Error(`the checkpoint worker failed (${String(error)})`);
}

export class WalCheckpointer {
  /** Undefined when the thread could not even be created. */
  private readonly worker: Worker | undefined;
  private readonly counters = new BigInt64Array(new SharedArrayBuffer(3 * BigInt64Array.BYTES_PER_ELEMENT));
  private currentState: WalCheckpointerState = 'starting';
  /** The first error the worker reported, if it crashed. */
  private error: Error | undefined;
  /** Resolves once the worker thread has ended, however it ended. */
  readonly exited: Promise<void>;

  /**
   * Starts the worker on `db`'s file; `db` is the store's writing connection, whose `wal_autocheckpoint`
   * this raises while the worker runs and sets back when it ends. `db` must be a file opened for writing.
   */
  constructor(
    private readonly db: Database.Database,
    options: WalCheckpointerOptions,
  ) {
    // Raised now, not when the worker says it is ready: a caller that ingests in a loop of promises never
    // gives the event loop a turn to hear it. A worker that never starts is heard of at the next turn (its
    // exit sets SQLite's default back); until then the bound holds the WAL.
    this.setWriterThreshold(WAL_BOUND_PAGES);
    const onFailure = options.onFailure ?? warn;
    const workerData: CheckpointWorkerData = {
      kind: 'wal-checkpointer',
      path: resolve(db.name),
      intervalMs: options.intervalMs ?? WAL_CHECKPOINT_INTERVAL_MS,
      counters: this.counters.buffer as SharedArrayBuffer,
    };
    let worker: Worker;
    try {
      worker = new Worker(options.script, { workerData });
    } catch (error) {
      // No thread to wait for: as if it had started and died at once.
      this.exited = Promise.resolve();
      this.end(error instanceof Error ? error : new Error(String(error)), onFailure);
      return;
    }
    this.worker = worker;
    worker.on('message', (reply: CheckpointWorkerReply) => {
      if (reply.type === 'ready' && this.currentState === 'starting') this.currentState = 'running';
    });
    worker.on('error', (error: unknown) => {
      this.error ??= workerErrorOf(error);
    });
    this.exited = new Promise<void>((resolveExit) => {
      worker.once('exit', (code) => {
        this.end(this.error ?? new Error(`the checkpoint worker exited (code ${code})`), onFailure);
        resolveExit();
      });
    });
    // A process that ends without closing its store (a command that returns) is not kept alive by it: the
    // checkpoint it may cut short is one SQLite recovers from (the WAL keeps every frame until a restart).
    // After the listeners: adding a 'message' listener refs the worker again.
    worker.unref();
  }

  /** The worker has ended: the writer checkpoints itself again, and an end other than close's is told. */
  private end(error: Error, onFailure: (error: Error) => void): void {
    this.setWriterThreshold(WRITER_CHECKPOINT_PAGES);
    const wasStopping = this.currentState === 'stopping';
    this.currentState = wasStopping ? 'stopped' : 'failed';
    if (wasStopping) return;
    try {
      onFailure(error);
    } catch {
      // A reporter's failure must not take the server down with it.
    }
  }

  get stats(): WalCheckpointerStats {
    return {
      state: this.currentState,
      passes: Number(Atomics.load(this.counters, COUNTER.passes)),
      copyingPasses: Number(Atomics.load(this.counters, COUNTER.copyingPasses)),
      busyPasses: Number(Atomics.load(this.counters, COUNTER.busyPasses)),
    };
  }

  /**
   * Ends the worker: it finishes a checkpoint in progress, closes its connection and exits; one that has not
   * within STOP_GRACE_MS is terminated. Resolves once the thread has ended; safe to call again.
   */
  async stop(): Promise<void> {
    if (this.currentState === 'starting' || this.currentState === 'running') {
      this.currentState = 'stopping';
      const stop: CheckpointWorkerRequest = { type: 'stop' };
      this.worker?.postMessage(stop);
      const grace = setTimeout(() => void this.worker?.terminate(), STOP_GRACE_MS);
      void this.exited.then(() => clearTimeout(grace));
    }
    await this.exited;
  }

  /**
   * For tests: ends the worker as a crash would (terminated, not asked to stop), so the writer's fallback
   * can be seen. Resolves once the thread has ended.
   */
  async crashForTests(): Promise<void> {
    await this.worker?.terminate();
    await this.exited;
  }

  private setWriterThreshold(pages: number): void {
    if (!this.db.open) return;
    try {
      this.db.pragma(`wal_autocheckpoint = ${pages}`);
    } catch {
      // Only a closed connection refuses it, and a closed connection commits nothing more.
    }
  }
}
