// A folder source whose subfolder this user may not read (another user's, `chmod 700`): the rest of the
// folder is still read, and the subfolder is named as the source that could not be read (exit 2) — never
// the whole folder refused as "permission denied" on a file. Root reads every folder, so the refusal is
// made here, by `readdir`, for folders named `locked`.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { EXIT } from './exit-codes.js';

vi.mock('node:fs/promises', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs/promises')>();
  const readdir = (async (path: string, options?: unknown) => {
    if (basename(String(path)) === 'locked') {
      throw Object.assign(new Error(`EACCES: permission denied, scandir '${String(path)}'`), {
        code: 'EACCES',
      });
    }
    return (original.readdir as (path: string, options?: unknown) => Promise<unknown>)(path, options);
  }) as typeof original.readdir;
  return { ...original, readdir, default: { ...original, readdir } };
});

const LINES = [
  '{"kind":"outbound","at":"2024-03-01T10:05:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.o1","template":"utility"}',
  '{"kind":"status","at":"2024-03-01T10:05:03Z","id":"wamid.o1","status":"delivered"}',
].join('\n');

describe('a folder with a subfolder this user may not read', () => {
  it('reads the rest and names the subfolder, exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-locked-'));
    writeFileSync(join(dir, 'events.ndjson'), LINES);
    mkdirSync(join(dir, 'locked'));
    const { code, out, err } = await runWameter(['rate', dir, '--format', 'csv']);
    expect(err).toContain(
      `wameter: ${join(dir, 'locked')}: UNREADABLE_SOURCE: permission denied: make the folder readable for this user`,
    );
    expect(err).not.toContain(`wameter: ${dir}: UNREADABLE_SOURCE`);
    expect(out).toContain('u_wamid.o1');
    expect(code).toBe(EXIT.BAD_INPUT);
  });

  it('a folder that is only such a subfolder names it, and rates nothing (exit 1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-locked-'));
    mkdirSync(join(dir, 'locked'));
    const { code, out, err } = await runWameter(['rate', dir]);
    expect(err).toContain(`wameter: ${join(dir, 'locked')}: UNREADABLE_SOURCE: permission denied`);
    expect(err).not.toContain('holds no event files');
    expect(out).toBe('');
    expect(code).toBe(EXIT.USAGE);
  });

  it('a source folder this user may not read is said to be a folder', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'wameter-locked-')), 'locked');
    mkdirSync(dir);
    const { code, err } = await runWameter(['rate', dir]);
    expect(err).toContain(
      `wameter: ${dir}: UNREADABLE_SOURCE: permission denied: make the folder readable for this user`,
    );
    expect(code).toBe(EXIT.USAGE);
  });
});
