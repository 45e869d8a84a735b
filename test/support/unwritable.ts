// Makes a file or folder unwritable for this process, as an operator's mistake would (a database file owned
// by another user, a read-only folder). Permission bits stop a user but not root, who gets the immutable
// attribute instead (`chattr +i`: refused even to root, where the file system has it).

import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, statSync } from 'node:fs';

/**
 * Makes `path` unwritable; returns what undoes it. Throws when this system cannot (root on a file system
 * without the immutable attribute, or without `chattr`): the test fails saying why, it is never skipped.
 */
export function makeUnwritable(path: string): () => void {
  const mode = statSync(path).mode & 0o777;
  let undo: () => void;
  if (process.getuid?.() === 0) {
    const made = spawnSync('chattr', ['+i', path]);
    if (made.status !== 0) throw new Error(`${CANNOT_MAKE_UNWRITABLE}: ${String(made.stderr ?? made.error)}`);
    undo = () => void spawnSync('chattr', ['-i', path]);
  } else {
    chmodSync(path, mode & ~0o222);
    undo = () => chmodSync(path, mode);
  }
  try {
    accessSync(path, constants.W_OK);
  } catch {
    return undo; // unwritable, as wanted
  }
  undo();
  throw new Error(`${CANNOT_MAKE_UNWRITABLE}: ${path} is still writable`);
}

const CANNOT_MAKE_UNWRITABLE =
  'cannot make a path unwritable here (root without chattr +i on this file system)';
