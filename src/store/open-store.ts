// Picks the storage engine from a database URL (contract §5: `sqlite:PATH`, a bare path, `postgres://…`).
// The only place that knows which engines exist; it never reads the environment itself.

import { openPostgresStore } from './postgres/postgres-store.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/**
 * Opens (and migrates) the store a URL names:
 * - `postgres://…` or `postgresql://…` → PostgreSQL;
 * - `sqlite:PATH` (also `sqlite://PATH`, `sqlite::memory:`) → SQLite;
 * - a bare path (`./wameter.db`, `/var/lib/wameter.db`, `:memory:`) → SQLite.
 */
export async function openStore(url: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//i.test(url)) return openPostgresStore(url);
  if (/^sqlite:/i.test(url)) {
    const path = url.replace(/^sqlite:(\/\/)?/i, '');
    if (path === '') throw new Error('database URL "sqlite:" names no file: use sqlite:./wameter.db');
    return openSqliteStore(path);
  }
  // A Windows drive ("C:\…") is a path, not a scheme.
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(url)?.[1];
  if (scheme !== undefined) {
    // Only the scheme is repeated: the rest of a URL may hold a password.
    throw new Error(
      `unsupported database URL scheme "${scheme}:": use sqlite:PATH, a file path, or postgres://user@host:5432/db`,
    );
  }
  if (url.trim() === '')
    throw new Error('no database given: use sqlite:./wameter.db or postgres://user@host:5432/db');
  return openSqliteStore(url);
}
