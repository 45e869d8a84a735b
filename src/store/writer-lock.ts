// The single-writer lock: at most one process writes ratings to a database at a time (docs/storage.md, "One
// writer per database"). A live rater writes only the difference against what it stored last, so a second
// writer's rows would survive its diffs and bill messages twice. It never waits: a held lock is refused at
// once, naming its holder. Readers (rate, explain, estimate, reconcile, a dry-run re-rate) take no lock.

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  linkSync,
  openSync,
  readFileSync,
  readSync,
  realpathSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore, sqlitePathOf } from './open-store.js';
import { inspectSqliteFile } from './sqlite/sqlite-store.js';
import type { Store, WriterFence } from './store.js';

/** Who holds (or asks for) the lock: what the refusal names. */
export interface WriterLockHolder {
  /** The wameter command: `serve`, `rerate`, `import`. */
  command: string;
  pid: number;
  hostname: string;
  startedAtMs: number;
}

export interface WriterLock {
  /** Where the lock lives, for logs: the lock file, or the PostgreSQL database and schema. */
  readonly where: string;
  /**
   * PostgreSQL: the schema's writer fence (`WriterFence`), advanced from the lock's own session — so only
   * while it holds the lock. Taking the lock advances it already when the schema has its `writer_fence` table
   * (`epoch`); a store not yet migrated to it has none (`epoch` undefined): `advance()` once it is migrated.
   * The advance waits for every write transaction still under way (a previous holder's) to end.
   */
  readonly fence?: { readonly epoch: number | undefined; advance(): Promise<number> };
  /** Gives the lock up; safe to call again. */
  release(): Promise<void>;
}

export interface WriterLockOptions {
  /** Something worth telling the operator: a dead process's lock file was taken over. */
  onNotice?: (message: string) => void;
  /**
   * The lock was lost while held: the PostgreSQL connection holding it ended, so another process may now
   * take it. Called at most once; never after `release()`.
   */
  onLost?: (error: Error) => void;
}

/**
 * The lock file cannot be made: the SQLite database's folder is not writable by this process (its lock file
 * is made there, written aside under a temporary name first). Names the database and the folder, never that
 * temporary file.
 */
export class WriterLockFolderError extends Error {
  readonly code = 'WRITER_LOCK_FOLDER_NOT_WRITABLE';
  constructor(
    /** The SQLite database file (its real path). */
    readonly database: string,
    readonly folder: string,
    cause: NodeJS.ErrnoException,
  ) {
    super(
      `cannot take the writer lock of the SQLite database ${database}: its folder ${folder} is not writable by this user (${cause.code ?? cause.message}), and the lock file ${basename(database)}.writer-lock is made there; make the folder writable by the user wameter runs as, or move the database to a folder it may write`,
      { cause },
    );
    this.name = 'WriterLockFolderError';
  }
}

/** The lock is held by another process (or another acquirer in this one). */
export class WriterLockHeldError extends Error {
  readonly code = 'WRITER_LOCK_HELD';
  constructor(
    message: string,
    /** Null when the holder cannot be read (a PostgreSQL session of another role, a damaged lock file). */
    readonly holder: WriterLockHolder | null,
  ) {
    super(message);
    this.name = 'WriterLockHeldError';
  }
}

/**
 * Takes the writer lock of the database `url` names for `holder.command` (this process's pid, host and the
 * current time fill the rest), or throws a `WriterLockHeldError` naming who holds it:
 * - PostgreSQL: a session advisory lock on a connection of its own, keyed by the schema unqualified tables
 *   resolve to (`current_schema()`, so two schemas of one database are two stores and never block each
 *   other; advisory locks are per database already). The server drops it when the session ends, so a
 *   process killed with SIGKILL holds nothing. The schema must exist: open the store first.
 * - SQLite: the file `PATH.writer-lock`, created exclusively, holding the holder as JSON. A lock file of a
 *   process of this host that no longer runs is taken over (`onNotice` says so); one of a live process, or
 *   of another host (whose processes cannot be checked from here), is refused. Removed at release or at exit.
 *   A folder this process may not write is a `WriterLockFolderError` naming the folder and the database.
 *   What is not wameter's to lock — a folder, a file that is not SQLite, another program's SQLite database
 *   (tables, none of them wameter's) — is an Error saying so, thrown before anything is made beside it.
 * - In-memory SQLite: nothing to lock (no other process can open it).
 */
export async function acquireWriterLock(
  url: string,
  holder: { command: string },
  options: WriterLockOptions = {},
): Promise<WriterLock> {
  const self: WriterLockHolder = {
    command: holder.command,
    pid: process.pid,
    hostname: hostname(),
    startedAtMs: Date.now(),
  };
  if (/^postgres(ql)?:\/\//i.test(url)) return acquireAdvisoryLock(url, self, options);
  const path = sqlitePathOf(url);
  if (path === undefined || path.trim() === '') throw new Error('no SQLite file or PostgreSQL URL to lock');
  if (path === ':memory:') return { where: 'in-memory database (nothing to lock)', release: async () => {} };
  // The real path: two processes naming one file through different links or relative paths share a lock.
  const file = existsSync(path) ? realpathSync(path) : resolve(path);
  // A folder, a file of another kind (an accounts file given as --db) or another program's SQLite database:
  // opening it says what is wrong, and a lock taken first would leave its `.alive` file beside the user's file.
  const notAStore = notASqliteFile(file);
  if (notAStore !== undefined) throw new Error(notAStore);
  const contents = inspectSqliteFile(file);
  if (contents?.holds === 'foreign') throw new Error(contents.reason);
  const links = existsSync(file) ? statSync(file).nlink : 1;
  if (links > 1) {
    // Each name of the file has its own lock file (and SQLite its own journal): said, not refused, as a
    // link may be one no process opens.
    options.onNotice?.(
      `the SQLite database ${file} has ${links} hard links: the writer lock is taken beside the name given, so a process writing through another link is not kept out (two writers would bill messages twice, and SQLite keeps its journal beside each name: a crash could lose a transaction); remove the other links`,
    );
  }
  return acquireFileLock(file, self, options);
}

/** Why `file` cannot be a SQLite database: a folder, or a file whose first bytes are not SQLite's header. */
function notASqliteFile(file: string): string | undefined {
  let stats;
  try {
    stats = statSync(file);
  } catch {
    return undefined; // made by the store when it is opened
  }
  if (stats.isDirectory()) return `${file} is a folder`;
  if (!stats.isFile() || stats.size === 0) return undefined;
  const header = Buffer.alloc(SQLITE_HEADER.length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  return header.equals(SQLITE_HEADER) ? undefined : `${file} is not a SQLite database`;
}

/** The first 16 bytes of every SQLite database file. */
const SQLITE_HEADER = Buffer.from('SQLite format 3\u0000', 'latin1');

/**
 * Takes the writer lock of the store `url` names for `command`, then opens the store (migrating it): the
 * store's `close()` releases the lock. If the lock is held, the `WriterLockHeldError` is thrown and the store
 * is neither opened nor migrated — a newer wameter refused beside a running older one must not migrate the
 * store under it (the older one would go on writing rows that the migrations' backfills never saw). Where the
 * lock cannot be taken yet for another reason (no SQLite folder, a PostgreSQL schema not made yet, no server),
 * the store is opened first, as it says best what is wrong, and locked after.
 */
export async function openWriterStore(
  url: string,
  command: string,
  options: WriterLockOptions = {},
): Promise<Store> {
  const state: LockState = { lost: undefined };
  // Once, whichever says it first: the lock's session ending, or a write the fence refused.
  const onLost = (error: Error) => {
    if (state.lost !== undefined) return;
    state.lost = error;
    options.onLost?.(error);
  };
  // PostgreSQL: every ingest and rating is refused unless the schema's writer fence is at the epoch this
  // holder advanced it to (set below, once the store is migrated and the lock held).
  const fence: WriterFence = {
    epoch: undefined,
    fencedOut(found) {
      const cause = new Error(
        `another process took the writer lock: the database's writer fence is at epoch ${found ?? '(none)'}, this process's is ${fence.epoch ?? '(none yet)'}`,
      );
      if (fence.epoch !== undefined) onLost(cause);
      return new WriterLockLostError(state.lost ?? cause);
    },
  };
  const take = () => acquireWriterLock(url, { command }, { ...options, onLost });
  let lock: WriterLock | undefined;
  try {
    lock = await take();
  } catch (error) {
    if (error instanceof WriterLockHeldError) throw error;
    // Anything else (no folder, no server, no schema yet): opening the store says what is wrong, in the words
    // start-up errors are explained in, or makes what is missing; the lock is then taken after it.
  }
  let store: Store;
  try {
    store = await openStore(url, { writerFence: fence });
  } catch (error) {
    await lock?.release();
    throw error;
  }
  try {
    lock ??= await take();
    // The fence's table exists now: a lock taken before the migration that made it advances it here.
    if (lock.fence !== undefined) fence.epoch = lock.fence.epoch ?? (await lock.fence.advance());
  } catch (error) {
    await store.close();
    await lock?.release();
    throw error;
  }
  return new StoreHoldingWriterLock(store, lock, state);
}

/** A rating write refused because the writer lock was lost while held: another process may be writing. */
export class WriterLockLostError extends Error {
  readonly code = 'WRITER_LOCK_LOST';
  constructor(cause: Error) {
    super(
      `the single-writer lock was lost (${cause.message}): another process may now write ratings to this database, so this one writes no more of them`,
      { cause },
    );
    this.name = 'WriterLockLostError';
  }
}

interface LockState {
  lost: Error | undefined;
}

/**
 * A store that holds the writer lock until it is closed. Every other method is the store's own, except that
 * once the lock is lost, ratings are no longer written (WriterLockLostError): a second writer's rows and this
 * one's diffs would bill messages twice. Events are still stored (idempotent: whoever rates next sees them)
 * until another process takes the lock. On PostgreSQL the store's writer fence refuses, at the database,
 * every ingest and rating once another process took the lock, including one this process started before
 * it noticed the loss (`WriterFence`).
 */
class StoreHoldingWriterLock implements Store {
  constructor(
    private readonly store: Store,
    private readonly lock: WriterLock,
    private readonly state: LockState,
  ) {}

  private checkHeld(): void {
    if (this.state.lost) throw new WriterLockLostError(this.state.lost);
  }

  async close(): Promise<void> {
    try {
      await this.store.close();
    } finally {
      await this.lock.release();
    }
  }

  // Every argument passed on as given: a parameter a store method gains later is never dropped on the way
  // (`listRatings`' WABA filter once was, and a limited key saw every client's rating history).
  migrate: Store['migrate'] = (...args) => this.store.migrate(...args);
  ping: Store['ping'] = (...args) => this.store.ping(...args);
  ingestGroups: Store['ingestGroups'] = () => this.store.ingestGroups();
  ingestWebhook: Store['ingestWebhook'] = (...args) => this.store.ingestWebhook(...args);
  ingestEvents: Store['ingestEvents'] = (...args) => this.store.ingestEvents(...args);
  ingestBatch: Store['ingestBatch'] = (...args) => this.store.ingestBatch(...args);
  getRawWebhook: Store['getRawWebhook'] = (...args) => this.store.getRawWebhook(...args);
  listUnreadableWebhooks: Store['listUnreadableWebhooks'] = (...args) =>
    this.store.listUnreadableWebhooks(...args);
  listEvents: Store['listEvents'] = (...args) => this.store.listEvents(...args);
  listWabas: Store['listWabas'] = (...args) => this.store.listWabas(...args);
  listPlacingWabas: Store['listPlacingWabas'] = (...args) => this.store.listPlacingWabas(...args);
  listUnnamedStatusWabas: Store['listUnnamedStatusWabas'] = (...args) =>
    this.store.listUnnamedStatusWabas(...args);
  countUnattributedStatuses: Store['countUnattributedStatuses'] = (...args) =>
    this.store.countUnattributedStatuses(...args);
  refreshStatistics: Store['refreshStatistics'] = (...args) => this.store.refreshStatistics(...args);
  readEventChanges: Store['readEventChanges'] = () => this.store.readEventChanges();
  replaceRating: Store['replaceRating'] = async (...args) => {
    this.checkHeld();
    return this.store.replaceRating(...args);
  };
  applyRatingDiff: Store['applyRatingDiff'] = async (...args) => {
    this.checkHeld();
    return this.store.applyRatingDiff(...args);
  };
  listRatings: Store['listRatings'] = (...args) => this.store.listRatings(...args);
  getRating: Store['getRating'] = (...args) => this.store.getRating(...args);
  listRatingChanges: Store['listRatingChanges'] = (...args) => this.store.listRatingChanges(...args);
  queryUnits: Store['queryUnits'] = (...args) => this.store.queryUnits(...args);
  exportUnits: Store['exportUnits'] = (...args) => this.store.exportUnits(...args);
  totals: Store['totals'] = (...args) => this.store.totals(...args);
  analytics: Store['analytics'] = (...args) => this.store.analytics(...args);
  businessNumbers: Store['businessNumbers'] = (...args) => this.store.businessNumbers(...args);
  listPending: Store['listPending'] = (...args) => this.store.listPending(...args);
  listFindings: Store['listFindings'] = (...args) => this.store.listFindings(...args);
}

/** The refusal: who holds the lock, and what the asking command can do instead. */
function heldMessage(asker: string, holder: WriterLockHolder | null, who: string, hint: string): string {
  return `${who} is rating this database: ${advice(asker, holder?.command)} (${hint})`;
}

function describeHolder(holder: WriterLockHolder): string {
  return `a wameter ${holder.command} (pid ${holder.pid} on ${holder.hostname}, since ${isoSeconds(holder.startedAtMs)})`;
}

function advice(asker: string, holderCommand: string | undefined): string {
  if (holderCommand === 'serve') {
    if (asker === 'rerate') return 're-rate through its POST /v1/rerate, or stop it first';
    if (asker === 'import') return 'send the events to its POST /v1/events (it rates them), or stop it first';
    return 'run one wameter serve per database: stop it first, or give this one another database';
  }
  return 'wait for it to finish, or stop it first';
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// --- SQLite: a lock file beside the database ---------------------------------------------------------------

function acquireFileLock(file: string, self: WriterLockHolder, options: WriterLockOptions): WriterLock {
  const lockPath = `${file}.writer-lock`;
  // `alive`: the holder keeps an operating-system lock on PATH.alive while it holds this file (`aliveLock`),
  // which the system drops when the holder dies, wherever it ran: a later acquirer can tell a dead holder on
  // another host (a container moved after a crash) or a pid reused by another process from a live one.
  const content = `${JSON.stringify({ ...self, startedAt: new Date(self.startedAtMs).toISOString(), alive: true })}\n`;
  // Rounds: each lost race (a lock released, taken over or being published meanwhile) is one more; a lock
  // being published is waited for 10 ms a round, half a second at most.
  for (let round = 0; round < 50; round++) {
    // The alive lock first, the file after: a lock file saying `alive` is never published before its
    // holder holds the alive lock, so no other acquirer can find it "free" and take over a live holder's file.
    let alive: Database.Database | null;
    try {
      alive = holdAliveLock(lockPath);
    } catch (error) {
      // Its file cannot be made: the folder is not writable (as createWhole would say).
      const probe = `${lockPath}.new-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        writeFileSync(probe, '', { flag: 'wx' });
        unlinkSync(probe);
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
          throw new WriterLockFolderError(file, dirname(file), cause as NodeJS.ErrnoException);
        }
      }
      throw error;
    }
    if (alive !== null) {
      if (createWhole(file, lockPath, content)) return fileLock(lockPath, content, alive);
      alive.exec('ROLLBACK');
      alive.close();
    }
    let existing: string;
    try {
      existing = readFileSync(lockPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        // Another acquirer holds the alive lock and is about to publish its file (or has released it): wait.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        continue;
      }
      throw error;
    }
    const holder = parseHolder(existing);
    const deleteHint = `if no such process runs any more, delete ${lockPath}`;
    if (holder === null) {
      // Empty while its creator writes it, or damaged: never guessed to be stale.
      throw new WriterLockHeldError(
        heldMessage(self.command, null, `another process (lock file ${lockPath})`, deleteHint),
        null,
      );
    }
    // Our own pid in a file this process does not hold: a previous life of a container (pid 1 again).
    const isOurOldFile = holder.pid === process.pid && !heldHere.has(lockPath);
    // A holder that keeps the alive lock is judged by it alone (another host, a reused pid); an older
    // wameter's lock file (no `alive`) by its host and pid, as before.
    const isGone = hasAliveLock(existing)
      ? !heldHere.has(lockPath) && isAliveLockFree(lockPath)
      : holder.hostname === self.hostname && (!isProcessAlive(holder.pid) || isOurOldFile);
    if (!isGone) {
      throw new WriterLockHeldError(
        heldMessage(self.command, holder, describeHolder(holder), deleteHint),
        holder,
      );
    }
    if (takeOver(lockPath, existing)) {
      options.onNotice?.(`took over the writer lock ${lockPath}: ${describeHolder(holder)} no longer runs`);
    }
  }
  throw new Error(`cannot take the writer lock ${lockPath}: other processes keep changing it`);
}

/** The lock files this process holds (a second acquirer here is refused like any other). */
const heldHere = new Set<string>();

/**
 * Creates the lock file with its whole content at once (written aside, then linked: a full disk leaves no
 * empty lock file behind to block every later writer); false when the path is taken. A folder this process
 * may not write is a WriterLockFolderError naming the database `file`.
 */
function createWhole(file: string, lockPath: string, content: string): boolean {
  const temp = `${lockPath}.new-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(temp, content, { flag: 'wx' });
  } catch (error) {
    // A name of our own that cannot be made: the folder is the problem (EROFS: a read-only file system).
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new WriterLockFolderError(file, dirname(file), error as NodeJS.ErrnoException);
    }
    throw error;
  }
  try {
    linkSync(temp, lockPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    unlinkSync(temp);
  }
}

/** True unless `pid` surely names no process (EPERM: it runs, as another user). */
function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes a dead process's lock file, unless it is no longer the file that was read. Takeovers run one at a
 * time: each holds an exclusive SQLite lock on `PATH.writer-lock.takeover` (an operating-system file lock,
 * which the system drops when its process dies, so it can never be left stale), and under it reads the lock
 * file again before touching it. Without that, two processes that both read the same dead lock could each
 * take it over — the second removing the live lock the first had just created — and both would write.
 * That file stays beside the lock (removing it while another process locks it would break the exclusion).
 */
function takeOver(lockPath: string, staleContent: string): boolean {
  const guard = new Database(`${lockPath}.takeover`, { timeout: TAKEOVER_WAIT_MS });
  try {
    // Waits while another process takes over (a few milliseconds); SQLITE_BUSY after TAKEOVER_WAIT_MS.
    guard.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    guard.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') return false;
    throw error;
  }
  try {
    let current: string;
    try {
      current = readFileSync(lockPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false; // taken over meanwhile
      throw error;
    }
    // Another process took it over first and holds it now: the caller reads it again and is refused.
    if (current !== staleContent) return false;
    unlinkSync(lockPath);
    return true;
  } finally {
    guard.exec('ROLLBACK');
    guard.close();
  }
}

/** How long a takeover waits for another process's takeover of the same lock to finish. */
const TAKEOVER_WAIT_MS = 5_000;

/** Does the lock file say its holder keeps the alive lock? */
function hasAliveLock(text: string): boolean {
  try {
    return (JSON.parse(text) as { alive?: unknown }).alive === true;
  } catch {
    return false;
  }
}

/**
 * Takes the alive lock (an exclusive SQLite lock on PATH.alive: an operating-system file lock, dropped by the
 * system when its process ends) and keeps it; null when another process holds it.
 */
function holdAliveLock(lockPath: string): Database.Database | null {
  const alive = new Database(`${lockPath}.alive`, { timeout: 0 });
  try {
    alive.exec('BEGIN EXCLUSIVE');
    return alive;
  } catch (error) {
    alive.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') return null;
    throw error;
  }
}

/** No process holds the alive lock of `lockPath` now (its holder is gone, wherever it ran). */
function isAliveLockFree(lockPath: string): boolean {
  const probe = holdAliveLock(lockPath);
  if (probe === null) return false;
  probe.exec('ROLLBACK');
  probe.close();
  return true;
}

function fileLock(lockPath: string, content: string, alive: Database.Database): WriterLock {
  let isReleased = false;
  heldHere.add(lockPath);
  const releaseNow = () => {
    if (isReleased) return;
    isReleased = true;
    heldHere.delete(lockPath);
    process.off('exit', releaseNow);
    try {
      // Only our own file: never a lock another process holds now.
      if (readFileSync(lockPath, 'utf8') === content) unlinkSync(lockPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    } finally {
      // After the file: while it names this process, its alive lock says it runs.
      alive.exec('ROLLBACK');
      alive.close();
    }
  };
  // A normal exit removes it; after SIGKILL, the next acquirer finds the process gone and takes it over.
  process.on('exit', releaseNow);
  return { where: lockPath, release: async () => releaseNow() };
}

function parseHolder(text: string): WriterLockHolder | null {
  try {
    const value = JSON.parse(text) as Partial<WriterLockHolder>;
    if (
      typeof value.command === 'string' &&
      Number.isSafeInteger(value.pid) &&
      typeof value.hostname === 'string' &&
      Number.isSafeInteger(value.startedAtMs)
    ) {
      return {
        command: value.command,
        pid: value.pid!,
        hostname: value.hostname,
        startedAtMs: value.startedAtMs!,
      };
    }
  } catch {
    // Not JSON: not a lock this module wrote completely.
  }
  return null;
}

// --- PostgreSQL: a session advisory lock -------------------------------------------------------------------

/** First key of the writer advisory lock ("wrtr"); the second is the schema's hash (hashtext). */
const WRITER_LOCK = 0x77727472;
/** Holder as the lock's session names itself (application_name, at most 63 bytes: the host may be cut). */
const APPLICATION_NAME = /^wameter (\S+) pid (\d+) on (.*)$/;

async function acquireAdvisoryLock(
  url: string,
  self: WriterLockHolder,
  options: WriterLockOptions,
): Promise<WriterLock> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, keepAlive: true });
  let isReleased = false;
  let isLost = false;
  let isHeld = false;
  const lost = (error: Error) => {
    // Before the lock is granted a failure is the acquirer's error (thrown), never a lost lock.
    if (!isHeld || isReleased || isLost) return;
    isLost = true;
    options.onLost?.(error);
  };
  // A dropped connection is an 'error' event; unhandled, it would crash the process.
  client.on('error', lost);
  client.on('end', () => lost(new Error('the PostgreSQL connection holding the writer lock ended')));
  try {
    await client.connect();
  } catch (error) {
    isReleased = true;
    throw error;
  }
  let schema: string;
  let epoch: number | undefined;
  try {
    // What a refusal elsewhere names; backend_start gives "since" (this connection is the lock's own).
    await client.query("SELECT set_config('application_name', $1, false)", [
      `wameter ${self.command} pid ${self.pid} on ${self.hostname}`,
    ]);
    // This session is idle by design while it holds the lock: a server, database or role with
    // idle_session_timeout (PostgreSQL 14+; hardening against leaked connections) would end it, and with it the
    // lock, every that often (`serve` exited 75 each time). Turned off for this session only, where it exists.
    await client.query(
      "SELECT set_config(name, '0', false) FROM pg_settings WHERE name = 'idle_session_timeout'",
    );
    const current = (await client.query<{ schema: string | null }>('SELECT current_schema() AS schema'))
      .rows[0]?.schema;
    if (current === null || current === undefined) {
      throw new Error('no schema of the search_path exists: open the store first, which creates it');
    }
    schema = current;
    const { rows } = await client.query<{ ok: boolean }>(
      'SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok',
      [WRITER_LOCK, schema],
    );
    if (rows[0]?.ok !== true) {
      const found = await advisoryLockHolder(client, schema);
      throw new WriterLockHeldError(
        heldMessage(
          self.command,
          found.holder,
          found.holder ? describeHolder(found.holder) : found.who,
          `PostgreSQL session ${found.backendPid ?? '?'}, schema ${schema}; if that process is gone, ` +
            `SELECT pg_terminate_backend(${found.backendPid ?? 'PID'}) ends it`,
        ),
        found.holder,
      );
    }
    // Before anything else is written (the migrations too): a previous holder's writes still under way end
    // first, and none of its later ones commits. A schema not migrated to the fence yet has no table.
    const hasFence = (
      await client.query<{ has: boolean }>(
        `SELECT to_regclass(format('%I.writer_fence', $1::text)) IS NOT NULL AS has`,
        [schema],
      )
    ).rows[0]?.has;
    if (hasFence === true) epoch = await advanceFence(client, schema);
  } catch (error) {
    isReleased = true;
    await client.end().catch(() => {});
    throw error;
  }
  isHeld = true;
  return {
    where: `PostgreSQL advisory lock (schema ${schema})`,
    fence: {
      get epoch() {
        return epoch;
      },
      async advance() {
        epoch = await advanceFence(client, schema);
        return epoch;
      },
    },
    async release() {
      if (isReleased) return;
      isReleased = true;
      // Ending the session releases its advisory locks.
      await client.end().catch(() => {});
    },
  };
}

/**
 * Advances the writer fence of `schema` (`WriterFence`) on the lock's own session, which holds the lock while
 * it lives: a process whose lock session ended cannot advance it. Waits while any write transaction holds the
 * fence's row share-locked (a previous holder's, still under way). Makes the row if it was deleted.
 */
async function advanceFence(client: pg.Client, schema: string): Promise<number> {
  const table = `${client.escapeIdentifier(schema)}.writer_fence`;
  const { rows } = await client.query<{ epoch: string }>(
    `INSERT INTO ${table} AS f (id, epoch) VALUES (true, 1)
     ON CONFLICT (id) DO UPDATE SET epoch = f.epoch + 1 RETURNING epoch::text`,
  );
  return Number(rows[0]!.epoch);
}

async function advisoryLockHolder(
  client: pg.Client,
  schema: string,
): Promise<{ holder: WriterLockHolder | null; who: string; backendPid: number | null }> {
  // Two int4 keys: classid and objid hold them as unsigned 32-bit numbers, objsubid is 2.
  const { rows } = await client.query<{
    pid: number;
    application_name: string | null;
    since_ms: string | null;
  }>(
    `SELECT l.pid, a.application_name, (extract(epoch FROM a.backend_start) * 1000)::bigint::text AS since_ms
     FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.classid::bigint = $1 AND l.objid::bigint = (hashtext($2)::bigint & 4294967295)
     LIMIT 1`,
    [WRITER_LOCK, schema],
  );
  const row = rows[0];
  if (!row) return { holder: null, who: 'another process', backendPid: null };
  const named = APPLICATION_NAME.exec(row.application_name ?? '');
  if (named && row.since_ms !== null) {
    return {
      holder: {
        command: named[1]!,
        pid: Number(named[2]),
        hostname: named[3]!,
        startedAtMs: Number(row.since_ms),
      },
      who: '',
      backendPid: row.pid,
    };
  }
  const name = row.application_name ? ` "${row.application_name}"` : '';
  return { holder: null, who: `another process${name}`, backendPid: row.pid };
}
