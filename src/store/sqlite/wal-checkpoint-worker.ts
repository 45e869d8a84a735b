// The WAL checkpointer's thread (wal-checkpointer.ts starts it): a connection of its own to the store's file
// that runs `PRAGMA wal_checkpoint(PASSIVE)`, each pass a fixed interval after the previous one. PASSIVE
// never waits for a reader or the writer and never takes the write lock, so the server's thread is never
// held up by it; it copies the frames
// that every reader has moved past and leaves the rest for the next pass. It writes no row: every committed
// row is already in the WAL, fsynced by the writer's COMMIT, and a checkpoint only copies pages SQLite
// keeps in the WAL until they are safely in the database file.

import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { COUNTER } from './wal-checkpointer.js';

export interface CheckpointWorkerData {
  kind: 'wal-checkpointer';
  /** The store's file (absolute). */
  path: string;
  intervalMs: number;
  /** BigInt64Array slots, see COUNTER. */
  counters: SharedArrayBuffer;
}

/** What the worker tells the store: its connection is open and it checkpoints from now on. */
export type CheckpointWorkerReply = { type: 'ready' };

/** What the store tells the worker: end (finish the checkpoint in progress, close the connection). */
export type CheckpointWorkerRequest = { type: 'stop' };

interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

function main(port: MessagePort, data: CheckpointWorkerData): void {
  const counters = new BigInt64Array(data.counters);
  // A connection that cannot be opened throws: the thread ends with that error and the store's writer
  // checkpoints itself (wal-checkpointer.ts).
  const db = new Database(data.path, { fileMustExist: true });
  // The checkpoint fsyncs the database file before the WAL may be restarted over the frames it copied.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 1000');
  const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
  let last: CheckpointResult = { busy: 0, log: 0, checkpointed: 0 };
  const pass = () => {
    const result = checkpoint.get() as CheckpointResult;
    Atomics.add(counters, COUNTER.passes, 1n);
    if (result.busy !== 0) Atomics.add(counters, COUNTER.busyPasses, 1n);
    // Frames copied, and the WAL is not where the previous pass left it (written to, or restarted).
    if (result.checkpointed > 0 && (result.log !== last.log || result.checkpointed !== last.checkpointed))
      Atomics.add(counters, COUNTER.copyingPasses, 1n);
    last = result;
    // The interval counts from the end of a pass, not its start: a pass slower than the interval (a slow
    // disk) still leaves the checkpoint lock free for that long, so the writer's own checkpoint at the bound
    // is never kept out by one pass after another.
    timer = setTimeout(pass, data.intervalMs);
  };
  let timer = setTimeout(pass, data.intervalMs);
  port.on('message', (request: CheckpointWorkerRequest) => {
    if (request.type !== 'stop') return;
    clearTimeout(timer);
    db.close();
    port.close(); // nothing is left to keep the thread alive: it ends
  });
  const ready: CheckpointWorkerReply = { type: 'ready' };
  port.postMessage(ready);
}

// Imported only for its types outside a worker thread (the store's side names this module so that it is
// compiled with the store).
const data = workerData as Partial<CheckpointWorkerData> | null;
if (parentPort !== null && data?.kind === 'wal-checkpointer') main(parentPort, data as CheckpointWorkerData);
