// Which rating code made a stored bill: a digest of the modules that read traffic and rate it (src/core and
// src/ingest, as this wameter runs them) and of the bundled market table. Stored with each rating, so that a
// start under other code — an upgrade — is told from a restart, and the bill it re-rates is reported as a
// re-rate (old vs new per unit and in total) instead of changing silently (docs/storage.md, "Upgrades").

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../ingest/rate-card-files.js';

let computed: string | undefined;

/**
 * The digest of this wameter's rating code (16 hex digits), computed once. Any change to a module of
 * src/core or src/ingest, or to the bundled market table, changes it — a comment too: the cost of that is one
 * re-rate reported at the next start that changes nothing.
 */
export function engineDigest(): string {
  if (computed !== undefined) return computed;
  const here = dirname(fileURLToPath(import.meta.url));
  const extension = extname(fileURLToPath(import.meta.url)); // `.js` when compiled, `.ts` from sources
  const hash = createHash('sha256');
  for (const folder of ['core', 'ingest']) {
    const path = join(here, '..', folder);
    const modules = readdirSync(path)
      .filter((name) => name.endsWith(extension) && !name.includes('.test.') && !name.endsWith('.d.ts'))
      .sort();
    for (const name of modules) {
      hash
        .update(`${folder}/${name}\u0000`)
        .update(readFileSync(join(path, name)))
        .update('\u0000');
    }
  }
  hash.update(readFileSync(join(packageRoot(), 'data', 'markets.csv')));
  computed = hash.digest('hex').slice(0, 16);
  return computed;
}
