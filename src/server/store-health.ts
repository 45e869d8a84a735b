// Readiness of the store, beyond "it answers a ping": the last write failed (disk full, read-only file), or
// the SQLite file or its write-ahead log is no longer the one that was opened (deleted, or replaced) — cases where a ping still
// succeeds but nothing acknowledged would survive. It never writes anything itself.

import { statSync } from 'node:fs';
import { StoreTimeoutError } from '../store/store.js';

export type StoreHealthVerdict = { isReady: true } | { isReady: false; reason: string };

/**
 * What a write stored: webhooks and event batches (`ingest`), or a rating. Each kind proves only itself: a
 * rating that commits says nothing of webhooks whose writes time out (a lock they wait for, a full group).
 */
export type WriteKind = 'ingest' | 'rating';

export interface StoreHealth {
  /** A write of `kind` committed: writes of that kind are taken again. */
  writeSucceeded(kind: WriteKind): void;
  /**
   * A write of `kind` failed; readiness fails until a write of that kind succeeds, or a ping does after
   * `retryAfterMs` without another failure of it.
   */
  writeFailed(error: unknown, kind: WriteKind): void;
  /**
   * The verdict for GET /healthz: `ping` is the store's read round trip. After a write failure the verdict
   * stays "not ready" while writes keep failing; once `retryAfterMs` has passed without a failed write, a
   * successful ping lets traffic back in to try (a circuit breaker's half-open state) — with no traffic, no
   * write could ever prove the store healthy again.
   */
  check(ping: () => Promise<void>): Promise<StoreHealthVerdict>;
  /**
   * Why no write may be acknowledged now, or null: the SQLite file is gone or replaced, so what is written
   * goes to a file that will not be there after a restart. Looked at once a second at most (one stat call).
   */
  writeBlocker(): string | null;
  /** Nothing may be written any more (the single-writer lock was lost): not ready, and writes refused. */
  block(reason: string): void;
}

export interface StoreHealthOptions {
  clock: () => number;
  /** The SQLite file the store opened (undefined: PostgreSQL or in-memory). */
  sqliteFile?: string;
  retryAfterMs?: number;
}

/** The identity of a file (device and inode), or null when it does not exist. */
function fileIdentity(path: string): { dev: number; ino: number } | null {
  try {
    const stat = statSync(path);
    return { dev: stat.dev, ino: stat.ino };
  } catch {
    return null;
  }
}

export const WRITE_RETRY_AFTER_MS = 30_000;

export function createStoreHealth(options: StoreHealthOptions): StoreHealth {
  const { clock, sqliteFile } = options;
  const retryAfterMs = options.retryAfterMs ?? WRITE_RETRY_AFTER_MS;
  const opened = sqliteFile === undefined ? null : fileIdentity(sqliteFile);
  // Its write-ahead log too: SQLite never deletes it while the database is open (a checkpoint only truncates
  // it), and what was committed to it since the last checkpoint lives nowhere else.
  const openedWal = sqliteFile === undefined ? null : fileIdentity(`${sqliteFile}-wal`);
  const lastFailures = new Map<WriteKind, { atMs: number; message: string }>();
  let fileChecked: { atMs: number; problem: string | null } | null = null;
  let blocked: string | null = null;

  function fileProblem(): string | null {
    if (sqliteFile === undefined || opened === null) return null;
    const now = fileIdentity(sqliteFile);
    if (now === null) {
      return `the SQLite database file ${sqliteFile} no longer exists (deleted, or its folder removed): writes would go to a deleted file and be lost at restart; restore the file and restart wameter`;
    }
    if (now.dev !== opened.dev || now.ino !== opened.ino) {
      return `${sqliteFile} is no longer the SQLite file wameter opened (replaced or moved): writes go to the old file; restart wameter to open the new one`;
    }
    if (openedWal !== null) {
      const wal = fileIdentity(`${sqliteFile}-wal`);
      if (wal === null || wal.dev !== openedWal.dev || wal.ino !== openedWal.ino) {
        return `the SQLite write-ahead log ${sqliteFile}-wal was ${wal === null ? 'deleted' : 'replaced'} while wameter runs: what is written now (and what it held since the last checkpoint) would be lost at restart; restart wameter, and never delete or move the -wal and -shm files of a database in use`;
      }
    }
    return null;
  }

  return {
    block(reason) {
      blocked = reason;
    },
    writeBlocker() {
      if (blocked !== null) return blocked;
      if (sqliteFile === undefined) return null;
      const nowMs = clock();
      if (fileChecked === null || nowMs - fileChecked.atMs >= 1000) {
        fileChecked = { atMs: nowMs, problem: fileProblem() };
      }
      return fileChecked.problem;
    },
    writeSucceeded(kind) {
      lastFailures.delete(kind);
    },
    writeFailed(error, kind) {
      const message = error instanceof Error ? error.message : String(error);
      const hint = writeFailureHint(error);
      lastFailures.set(kind, { atMs: clock(), message: hint === null ? message : `${message} (${hint})` });
    },
    async check(ping) {
      if (blocked !== null) return { isReady: false, reason: blocked };
      const file = fileProblem();
      fileChecked = { atMs: clock(), problem: file };
      if (file !== null) return { isReady: false, reason: file };
      await ping();
      // The latest failure of a kind whose writes have not succeeded since (webhooks first when both).
      for (const kind of ['ingest', 'rating'] as const) {
        const failure = lastFailures.get(kind);
        if (failure === undefined) continue;
        if (clock() - failure.atMs < retryAfterMs) {
          const what = kind === 'ingest' ? 'write of webhooks or events' : 'write of a rating';
          return {
            isReady: false,
            reason: `the last ${what} failed ${Math.round((clock() - failure.atMs) / 1000)} s ago: ${failure.message}; ready again once such a write succeeds`,
          };
        }
        lastFailures.delete(kind);
      }
      return { isReady: true };
    },
  };
}

/**
 * What a failed write's error says, for the readiness reason and the 503's message; null when its code says
 * nothing more than the message (a guess such as "disk full?" would mislead the operator who reads it).
 */
export function writeFailureHint(error: unknown): string | null {
  if (error instanceof StoreTimeoutError) return error.message;
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === '53100') return 'the disk is full';
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === '25006')
    return 'the database is read-only';
  if (code === 'SQLITE_BUSY' || code === '55P03') return 'another process holds a lock on the database';
  if (code === '42P01') return 'a table is missing: was the schema dropped or renamed?';
  // SQLITE_CORRUPT and its extended codes (SQLITE_CORRUPT_INDEX…); PostgreSQL's XX001 and XX002.
  if (code.startsWith('SQLITE_CORRUPT') || code === 'XX001' || code === 'XX002')
    return 'the database file is damaged: restore it from a backup (docs/service.md, "Backup and restore")';
  return null;
}
