// Picks the storage engine from a database URL (contract §5: `sqlite:PATH`, a bare path, `postgres://…`).
// The only place that knows which engines exist; it never reads the environment itself.

import { openPostgresStore } from './postgres/postgres-store.js';
import { inspectSqliteFile, openSqliteStore } from './sqlite/sqlite-store.js';
import type { Store, WriterFence } from './store.js';

/**
 * The SQLite file a database URL names (`sqlite:PATH`, `sqlite://PATH`, a bare path), `:memory:` for an
 * in-memory database, `''` for `sqlite:` alone; `undefined` for PostgreSQL and for other schemes.
 */
export function sqlitePathOf(url: string): string | undefined {
  if (/^postgres(ql)?:\/\//i.test(url)) return undefined;
  if (/^sqlite:/i.test(url)) return url.replace(/^sqlite:(\/\/)?/i, '');
  // A Windows drive ("C:\…") is a path, not a scheme.
  return /^[a-z][a-z0-9+.-]+:/i.test(url) ? undefined : url;
}

/**
 * Whether the SQLite file a database URL names is there and holds no table at all (an empty file, say): no
 * store yet, which a command that needs one refuses before opening it (opening it for writing makes a store
 * there). False for PostgreSQL, in-memory databases, and files that are missing or cannot be read.
 */
export function isSqliteFileWithoutTables(url: string): boolean {
  const path = sqlitePathOf(url);
  if (path === undefined || path.trim() === '' || path === ':memory:') return false;
  return inspectSqliteFile(path)?.holds === 'nothing';
}

export interface OpenStoreOptions {
  /**
   * For what only reads the store (`wameter estimate`, `wameter rerate --dry-run`): nothing is created,
   * migrated or written. A missing SQLite file, a database without wameter's tables, or a store that needs a
   * migration is refused with a `ReadOnlyOpenError` (`NO_STORE`, `STORE_NEEDS_MIGRATION`).
   */
  isReadOnly?: boolean;
  /**
   * PostgreSQL: the writer fence every write transaction checks (`WriterFence`), for the holder of the writer
   * lock (`openWriterStore`). SQLite has none: nothing but the end of its process ends its lock.
   */
  writerFence?: WriterFence;
}

/**
 * Opens (and, unless `isReadOnly`, creates or migrates) the store a URL names:
 * - `postgres://…` or `postgresql://…` → PostgreSQL;
 * - `sqlite:PATH` (also `sqlite://PATH`, `sqlite::memory:`) → SQLite;
 * - a bare path (`./wameter.db`, `/var/lib/wameter.db`, `:memory:`) → SQLite.
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  const isReadOnly = options.isReadOnly === true;
  if (/^postgres(ql)?:\/\//i.test(url)) {
    return openPostgresStore(url, { isReadOnly, writerFence: options.writerFence });
  }
  const path = sqlitePathOf(url);
  if (path === undefined) {
    // Only the scheme is repeated: the rest of a URL may hold a password.
    const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(url)?.[1] ?? '';
    throw new Error(
      `unsupported database URL scheme "${scheme}:": use sqlite:PATH, a file path, or postgres://user@host:5432/db`,
    );
  }
  if (/^sqlite:/i.test(url) && path === '')
    throw new Error('database URL "sqlite:" names no file: use sqlite:./wameter.db');
  if (path.trim() === '')
    throw new Error('no database given: use sqlite:./wameter.db or postgres://user@host:5432/db');
  return openSqliteStore(path, { isReadOnly });
}
