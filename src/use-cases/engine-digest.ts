// Which rating code made a stored bill: a digest of the modules that read traffic, store it, list it and rate
// it (src/core, src/ingest, src/store, src/use-cases and the server's rating modules, as this wameter runs
// them) and of the bundled market table. Stored with each rating, so that a start under other code — an
// upgrade — is told from a restart, and the bill it re-rates is reported as a re-rate (old vs new per unit
// and in total) instead of changing silently (docs/storage.md, "Upgrades").

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../ingest/rate-card-files.js';

/** Folders (relative to src/) whose every module counts, and the modules of src/server that rate. */
const RATING_FOLDERS = ['core', 'ingest', 'store', 'store/sqlite', 'store/postgres', 'use-cases'];
const RATING_SERVER_MODULES = ['live-rater', 'on-demand', 'rating-service', 'rating-worker', 'pricing-setup'];

let computed: string | undefined;

/**
 * The digest of this wameter's rating code (16 hex digits), computed once. Any change to one of those
 * modules, or to the bundled market table, changes it — a comment too: the cost of that is one re-rate
 * reported at the next start that changes nothing.
 */
export function engineDigest(): string {
  if (computed !== undefined) return computed;
  const source = join(dirname(fileURLToPath(import.meta.url)), '..');
  const extension = extname(fileURLToPath(import.meta.url)); // `.js` when compiled, `.ts` from sources
  // Tests, and the store's contract suite (compiled with the rest), are no rating code.
  const isModule = (name: string) =>
    name.endsWith(extension) &&
    !name.includes('.test.') &&
    !name.includes('.contract.') &&
    !name.endsWith('.d.ts');
  const paths = [
    ...RATING_FOLDERS.flatMap((folder) =>
      modulesOf(join(source, folder))
        .filter(isModule)
        .map((name) => `${folder}/${name}`),
    ),
    ...RATING_SERVER_MODULES.map((name) => `server/${name}${extension}`),
  ].sort();
  const hash = createHash('sha256');
  for (const path of paths) {
    // A build of only what one command needs (the tests') may lack a server module: said as absent.
    const absent = Buffer.from('\u0000absent');
    let text: Buffer;
    try {
      text = readFileSync(join(source, path));
    } catch {
      text = absent;
    }
    hash.update(`${path}\u0000`).update(text).update('\u0000');
  }
  hash.update(readFileSync(join(packageRoot(), 'data', 'markets.csv')));
  computed = hash.digest('hex').slice(0, 16);
  return computed;
}

/** The files of a folder; none when a partial build has no such folder. */
function modulesOf(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}
