// Compiles parts of the server with the project's TypeScript into a folder inside the repository
// (git-ignored .tmp/, so that the built modules find the package's data/ folder): for tests that run the
// server as a child process, or its live-rating worker thread (a worker thread cannot run TypeScript).

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** Compiles `entries` (paths under src/, with what they import) into `outDir`, mirroring the repo layout. */
export function compileSources(outDir: string, entries: readonly string[]): void {
  const result = spawnSync(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      ...entries.map((entry) => join(ROOT, entry)),
      ...['--outDir', outDir, '--rootDir', ROOT, '--module', 'nodenext', '--moduleResolution', 'nodenext'],
      ...['--target', 'es2022', '--skipLibCheck', '--types', 'node', '--esModuleInterop', '--strict'],
    ],
    { encoding: 'utf8' },
  );
  if (result.status !== 0)
    throw new Error(`cannot compile ${entries.join(', ')}: ${result.stdout}${result.stderr}`);
}

/** The live-rating worker compiled into `outDir`; returns the path of its script. */
export function buildRatingWorker(outDir: string): string {
  compileSources(outDir, ['src/server/rating-worker.ts']);
  return join(outDir, 'src', 'server', 'rating-worker.js');
}
