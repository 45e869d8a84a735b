// Start-up failures explained: a driver's bare "connect ECONNREFUSED" or "unable to open database file"
// becomes one line naming the database (host and port, or the SQLite path — never a password) and what to
// do. Errors it does not recognise are returned unchanged.

import { accessSync, constants, existsSync, statSync, statfsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { sqlitePathOf } from '../store/open-store.js';
import { ForeignStoreError } from '../store/store.js';
import { WriterLockFolderError } from '../store/writer-lock.js';
import { DB_SET_BY, redactUrl } from './config.js';

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'nothing listens there: is PostgreSQL running, on that port?',
  ENOTFOUND: 'the host name is unknown',
  EAI_AGAIN: 'the host name could not be resolved',
  ETIMEDOUT: 'the connection timed out (a firewall, or the wrong host?)',
  EHOSTUNREACH: 'the host cannot be reached',
  ENETUNREACH: 'the network cannot be reached',
  ECONNRESET: 'the server closed the connection (TLS required? see sslmode)',
};

/** What node-postgres says when what answers on the port is not PostgreSQL, or nothing answers at all. */
const DRIVER_FAILURES: readonly { message: RegExp; words: string }[] = [
  {
    message: /^Connection terminated unexpectedly$/,
    words:
      "closed the connection before it answered as PostgreSQL does (is that port PostgreSQL's, not a proxy's or another server's? was PostgreSQL restarting?)",
  },
  {
    message: /^Connection terminated due to connection timeout$|^timeout expired$/,
    words:
      'did not answer within the connection timeout (a firewall dropping the packets, the wrong host or port, or a server too busy?)',
  },
  {
    message: /^received invalid response: |^Received unexpected .* from backend/,
    words: "answered in another protocol than PostgreSQL's (another server on that port? check the port)",
  },
];

/** The first cause with a code: Node may try several addresses and reject with all (an AggregateError). */
function firstCause(error: unknown): NodeJS.ErrnoException & { code?: string } {
  const first = error instanceof AggregateError && error.errors.length > 0 ? error.errors[0] : error;
  return (first instanceof Error ? first : new Error(String(first))) as NodeJS.ErrnoException;
}

/** `-c search_path=a,b` in the URL's `options` → `a` (where tables are created), else undefined. */
function searchPathSchema(url: URL): string | undefined {
  const options = url.searchParams.get('options') ?? '';
  const match = /(?:^|\s)-c\s*search_path\s*=\s*("?)([^,\s"]+)\1/.exec(options);
  return match?.[2];
}

function explainPostgres(db: string, error: unknown, setBy: string): string | undefined {
  let url: URL;
  try {
    url = new URL(db);
  } catch {
    return undefined;
  }
  const where = `the PostgreSQL database at ${url.hostname}:${url.port || '5432'}${url.pathname}`;
  const cause = firstCause(error);
  const code = cause.code ?? '';
  if (code in NETWORK_CODES) {
    return `cannot connect to ${where} (${code}: ${NETWORK_CODES[code]}); check ${setBy}`;
  }
  // The driver's own failures carry no code, and its words name neither the database nor what to check.
  const driver = DRIVER_FAILURES.find(({ message }) => message.test(cause.message));
  if (code === '' && driver !== undefined) return `${where} ${driver.words}; check ${setBy}`;
  if (code === '3F000' || /no schema has been selected to create in/.test(cause.message)) {
    const schema = searchPathSchema(url);
    return schema === undefined
      ? `${where} has no schema to create wameter's tables in (search_path names none that exists): create one, or fix options=-c search_path=… in ${setBy}`
      : `the schema "${schema}" named by search_path in ${setBy} does not exist in ${where}: create it (psql -c 'CREATE SCHEMA ${schema}') or fix the URL's options=-c search_path=…`;
  }
  if (code === '3D000') return explainMissingDatabase(url, cause.message, setBy);
  // PostgreSQL's own refusals (authentication, permissions) carry a SQLSTATE: five digits or capitals, its
  // class a digit first (28000, 3D000, 42501) or one of the few of letters (F0, HV, P0, XX) — never an
  // errno's EPIPE.
  if (/^(\d[0-9A-Z]|F0|HV|P0|XX)[0-9A-Z]{3}$/.test(code)) {
    return `${where} refused: ${cause.message} (check ${setBy})`;
  }
  return undefined;
}

/** A name as SQL takes it: plain when it needs no quotes (PostgreSQL folds plain names to lower case). */
function sqlIdentifier(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** A word as a shell takes it: plain when it needs no quotes. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_.:@%+=,/-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/** A percent-encoded part of the URL, decoded as the driver decodes it (kept as written when it cannot be). */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/**
 * The database the URL names does not exist on that server (SQLSTATE 3D000, `database "x" does not exist`):
 * said with the server's host and port, the setting to check and how to create the database — never the
 * password.
 */
function explainMissingDatabase(url: URL, message: string, setBy: string): string {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port || '5432';
  const user = decoded(url.username);
  // The URL's database; without one, PostgreSQL takes the user's name, as its message says.
  const fromUrl = decoded(url.pathname.slice(1));
  const name = fromUrl !== '' ? fromUrl : (/database "(.*)" does not exist/.exec(message)?.[1] ?? user);
  const createdb = [
    'createdb',
    ...(host === '' ? [] : ['-h', shellWord(host)]),
    '-p',
    port,
    ...(user === '' ? [] : ['-U', shellWord(user)]),
    shellWord(name),
  ].join(' ');
  return `the database "${name}" does not exist on the PostgreSQL server at ${url.hostname || 'localhost'}:${port}: create it (${createdb}, or CREATE DATABASE ${sqlIdentifier(name)}; in psql), or fix the database name (the URL's path) in ${setBy}`;
}

/** The bytes this process may still write on the file system of `folder`, or undefined when unknown. */
function freeBytesIn(folder: string): number | undefined {
  try {
    const stats = statfsSync(folder);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}

/** Can this process write `path` (a file, or a folder: make files in it)? */
function isWritable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * What this user may not write of the SQLite database `file`, and what to do: its folder (SQLite makes the
 * -wal and -shm files there, wameter its writer lock), or the file itself; undefined when both are writable.
 */
function explainUnwritable(file: string, reason: string | undefined, setBy: string): string | undefined {
  const folder = dirname(file);
  const why = reason === undefined ? '' : ` (${reason})`;
  const isFileWritable = !existsSync(file) || isWritable(file);
  if (!isWritable(folder)) {
    const name = basename(file);
    return `cannot write the SQLite database ${file}: its folder ${folder} is not writable by this user${why}, and the database needs files of its own beside it (${name}-wal, ${name}-shm, ${name}.writer-lock)${isFileWritable ? '' : '; the file itself is read-only too'}; make the folder writable by the user wameter runs as, or move the database to a folder it may write (check ${setBy})`;
  }
  if (!isFileWritable) {
    return `cannot write the SQLite database ${file}: the file is read-only for this user${why}, and every webhook is stored in it; make it writable by the user wameter runs as (its owner and mode, or its immutable attribute: lsattr), or check ${setBy}`;
  }
  return undefined;
}

function explainSqlite(path: string, error: unknown, setBy: string): string | undefined {
  const file = resolve(path);
  const cause = firstCause(error);
  const message = cause.message;
  if (/directory does not exist/i.test(message)) {
    return `cannot open the SQLite database ${file}: its folder ${dirname(file)} does not exist; create it, or check ${setBy}`;
  }
  const cannotOpen = cause.code === 'SQLITE_CANTOPEN' || /unable to open database file/i.test(message);
  if (cannotOpen && existsSync(file) && statSync(file).isDirectory()) {
    return `cannot open the SQLite database ${file}: ${file} is a folder, not a file; give a file path such as ${file}/wameter.db (${setBy})`;
  }
  if (cannotOpen && !existsSync(dirname(file))) {
    return `cannot open the SQLite database ${file}: its folder ${dirname(file)} does not exist; create it, or check ${setBy}`;
  }
  // A full disk: SQLITE_FULL, or an I/O error of SQLite's shared memory or journal where the file system
  // has no block left (a full tmpfs says SQLITE_IOERR_SHMSIZE).
  if (
    cause.code === 'SQLITE_FULL' ||
    (/^SQLITE_IOERR/.test(cause.code ?? '') && freeBytesIn(dirname(file)) === 0)
  ) {
    return `cannot write the SQLite database ${file}: the disk holding ${dirname(file)} is full (${cause.code}); free space on it (df ${dirname(file)}), then start wameter again`;
  }
  // Damaged pages (a torn write on a disk that lies about fsync, a copy taken with `cp` while it was written,
  // a truncated file): SQLite says only "database disk image is malformed", naming no file.
  if (/^SQLITE_CORRUPT/.test(cause.code ?? '') || /database disk image is malformed/i.test(message)) {
    return `the SQLite database ${file} is damaged (${cause.code ?? 'SQLITE_CORRUPT'}: ${message}): wameter does not start on it; keep the file, with its -wal and -shm files (it holds the only copy of the raw webhooks), and restore the latest backup (docs/service.md, "Backup and restore"), or recover what SQLite can still read into a new file (sqlite3 ${shellWord(file)} .recover | sqlite3 NEW.db), check the new file (PRAGMA integrity_check, its event count) and give wameter that one (${setBy})`;
  }
  if (cause.code === 'SQLITE_NOTADB' || /file is not a database/i.test(message)) {
    return `${file} is not a SQLite database (another kind of file, or damaged): check ${setBy}, or move the file away`;
  }
  // A file SQLite opened read-only without a word (the store refuses it at open), or a folder where neither
  // SQLite nor the writer lock can make their files: said by which of the two is not writable.
  const isRefusedWrite = /^SQLITE_(READONLY|PERM|AUTH)/.test(cause.code ?? '');
  if (cannotOpen || isRefusedWrite || cause instanceof WriterLockFolderError) {
    const reason =
      cause instanceof WriterLockFolderError ? (cause.cause as NodeJS.ErrnoException).code : cause.code;
    const unwritable = explainUnwritable(file, reason, setBy);
    if (unwritable !== undefined) return unwritable;
  }
  if (cannotOpen) {
    return `cannot open the SQLite database ${file}: the folder ${dirname(file)} or the file is not writable by this user (check permissions), or the path is wrong (check ${setBy})`;
  }
  if (/^SQLITE_(READONLY|PERM|AUTH)/.test(cause.code ?? '')) {
    return `cannot write the SQLite database ${file} (${cause.code}): check its permissions and those of ${dirname(file)}`;
  }
  return undefined;
}

/**
 * The error `startServer` should report for `error`: explained when it comes from opening the database the
 * URL names (the original kept as `cause`), else `error` itself. Never holds the URL's password. `setBy` names
 * the settings that give the database (a command with its own `--db` only, as `estimate`, names that alone).
 */
export function explainStartError(db: string, error: unknown, setBy: string = DB_SET_BY): unknown {
  // Another program's SQLite file or PostgreSQL schema: the store's words name it; the setting is added.
  if (error instanceof ForeignStoreError)
    return new Error(`${error.message} (check ${setBy})`, { cause: error });
  const isPostgres = /^postgres(ql)?:\/\//i.test(db);
  const sqlitePath = isPostgres ? undefined : sqlitePathOf(db);
  const explained = isPostgres
    ? explainPostgres(db, error, setBy)
    : sqlitePath === undefined || sqlitePath === '' || sqlitePath === ':memory:'
      ? undefined
      : explainSqlite(sqlitePath, error, setBy);
  if (explained === undefined) {
    // Unrecognised: still never let a driver's message repeat the URL with its password.
    if (error instanceof Error && error.message.includes(db)) {
      return new Error(error.message.split(db).join(redactUrl(db)), { cause: error });
    }
    return error;
  }
  return new Error(explained, { cause: error });
}
