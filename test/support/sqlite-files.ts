// SQLite files that hold no wameter store yet, for tests of what opens one: an empty file, and a SQLite
// database without a table (only its header: a `user_version` set).

import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** A new folder under `dir` (named `prefix…`) holding `empty.db` (0 bytes) and `bare.db` (no table). */
export function filesWithoutStore(
  dir: string,
  prefix: string,
): { place: string; empty: string; bare: string } {
  const place = mkdtempSync(join(dir, prefix));
  const empty = join(place, 'empty.db');
  writeFileSync(empty, '');
  const bare = join(place, 'bare.db');
  const made = new Database(bare);
  made.pragma('user_version = 7');
  made.close();
  return { place, empty, bare };
}
