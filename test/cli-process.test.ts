// The command line as a real process: the exit code the shell sees (not only what runCli returns) and the
// behaviour when the reader of stdout goes away (`wameter rate … | head -1`).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileSources } from './support/build-server.js';

const ROOT = join(import.meta.dirname, '..');
// Inside the repository (git-ignored) so the built modules find the package's data/ folder.
const BUILD = join(ROOT, '.tmp', 'cli-process-build');
const ENTRY = join(BUILD, 'src', 'cli', 'main.js');
const EXAMPLE = join(ROOT, 'examples', 'month', 'events.ndjson');
const dir = mkdtempSync(join(tmpdir(), 'wameter-cli-process-'));

beforeAll(() => {
  compileSources(BUILD, ['src/cli/main.ts']);
}, 120_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `wameter ARGS` in a scratch folder; the timeout ends a command that would wrongly keep running. */
function wameter(args: string[]) {
  const env = { ...process.env };
  delete env.WAMETER_DB;
  delete env.DATABASE_URL;
  const result = spawnSync(process.execPath, [ENTRY, ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 20_000,
    env,
  });
  return { code: result.status, signal: result.signal, stderr: result.stderr, stdout: result.stdout };
}

/** A send log of `users` users: each one's utility template and its delivery, in India. */
function sendLog(path: string, users: number): void {
  const lines: string[] = [];
  for (let i = 0; i < users; i++) {
    const user = String(919800000000 + i);
    const at = new Date(Date.UTC(2025, 9, 1) + i * 1000).toISOString();
    const id = `wamid.o${i}`;
    lines.push(
      JSON.stringify({ kind: 'outbound', at, waba: 'W1', business: 'PN1', user, id, template: 'utility' }),
      JSON.stringify({ kind: 'status', at, waba: 'W1', id, status: 'delivered', user }),
    );
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

describe('exit codes seen by the shell', () => {
  const config = join(dir, 'bad.json');
  writeFileSync(config, JSON.stringify({ loudness: 11 }));

  it.each([
    [['rerate', '--as-of-rules', 'XYZ'], '"XYZ" is not an era: use one of'],
    [['rerate', '--db', 'mysql://x'], 'database must be sqlite:PATH'],
    [['serve', '--port', 'abc'], 'port must be a whole number'],
    [['serve', '--log-level', 'loud'], '--log-level must be one of'],
    [['serve', '--db', 'sqlite:/nope/x.db'], 'the folder /nope does not exist'],
    [['serve', '--config', config], 'unknown setting "loudness"'],
    [['import', EXAMPLE, '--db', 'sqlite:/nope/x.db'], 'the folder /nope does not exist'],
    [['import', EXAMPLE, '--db', 'postgres://u@127.0.0.1:1/x'], 'is PostgreSQL running?'],
    [['rate', EXAMPLE, '--rate-cards', '--format', 'csv'], '"--format" is an option'],
  ])('%j exits 1 with its message and no stack trace', (args, message) => {
    const { code, signal, stderr } = wameter(args);
    expect(signal).toBeNull();
    expect(stderr).toContain(message);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr).not.toContain('internal error');
    expect(code).toBe(1);
  });
});

describe('exit 3 by one rule: rate and rerate of the same traffic', () => {
  it('a delivered message that cannot be rated (UNKNOWN_CATEGORY) makes both exit 3; --allow-unpriced, 0', () => {
    // A send log's conversation, and a delivered message known from a status alone with no category.
    const lines = [
      {
        kind: 'outbound',
        at: '2024-03-01T10:00:00Z',
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
        id: 'wamid.o1',
        template: 'utility',
      },
      { kind: 'status', at: '2024-03-01T10:00:03Z', id: 'wamid.o1', status: 'delivered' },
      {
        kind: 'status',
        at: '2024-03-01T11:00:00Z',
        id: 'wamid.x',
        status: 'delivered',
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
      },
    ];
    const file = join(dir, 'unrated.ndjson');
    writeFileSync(file, `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
    const db = `sqlite:${join(dir, 'unrated.db')}`;
    expect(wameter(['import', file, '--db', db, '--allow-unpriced']).code).toBe(0);
    const rated = wameter(['rate', file]);
    expect(rated.stdout + rated.stderr).toContain('UNKNOWN_CATEGORY');
    expect(rated.code).toBe(3);
    const rerated = wameter(['rerate', '--db', db, '--dry-run']);
    expect(rerated.stderr).toContain('UNKNOWN_CATEGORY');
    expect(rerated.stderr).toContain('1 delivered message(s) of the new rating could not be rated');
    expect(rerated.code).toBe(3);
    expect(wameter(['rerate', '--db', db, '--dry-run', '--allow-unpriced']).code).toBe(0);
  });
});

describe('a reader that stops reading', () => {
  it('ends `rate --format csv` quietly with exit 0 when stdout closes early: nothing on stderr', async () => {
    // ≈ 4 MB of CSV: far more than a pipe holds, however the two processes are scheduled (the example month's
    // 258 KB was once read whole before the reader closed, on a loaded machine, and the summary was said).
    const log = join(dir, 'closed-early.ndjson');
    sendLog(log, 20_000);
    const child = spawn(process.execPath, [ENTRY, 'rate', log, '--format', 'csv', '--allow-unpriced'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let header = '';
    // Like `head -1`: read the first chunk, then close the pipe while the command is still writing.
    child.stdout.once('data', (chunk: Buffer) => {
      header = chunk.toString().split('\n')[0]!;
      child.stdout.destroy();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(header).toMatch(/^id,unit,pricing_model/);
    // Quietly (README "Exit codes"): no EPIPE, no stack, and no summary or findings said to no one.
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});

describe('an import interrupted by Ctrl-C', () => {
  it('says where it stopped, exits 130, gives the writer lock up, and a second run finishes the same bill', async () => {
    const log = join(dir, 'interrupted.ndjson');
    sendLog(log, 20_000);
    const db = join(dir, 'interrupted.db');
    const child = spawn(process.execPath, [ENTRY, 'import', log, '--db', `sqlite:${db}`], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    // Once the lock is taken the store is being written: Ctrl-C then.
    while (!existsSync(`${db}.writer-lock`)) await new Promise((resolve) => setTimeout(resolve, 5));
    child.kill('SIGINT');
    const code = await closed;
    expect(stderr).toMatch(
      /wameter import: interrupted by SIGINT (before storing|while storing|while rating)/,
    );
    expect(stderr).toContain('run the same `wameter import` again to finish');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(code).toBe(130);
    // Given up at exit: the next writer is not told that a dead process held it.
    expect(existsSync(`${db}.writer-lock`)).toBe(false);

    const again = wameter(['import', log, '--db', `sqlite:${db}`]);
    expect(again.stderr).not.toContain('took over');
    expect(again.code).toBe(0);
    const whole = wameter(['import', log, '--db', `sqlite:${join(dir, 'whole.db')}`]);
    expect(whole.code).toBe(0);
    expect(again.stdout).toBe(whole.stdout);
    expect(whole.stdout).toMatch(/^USD: [\d.]+ over 20000 unit\(s\) in the store\n$/);
  }, 120_000);
});
