import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { eventKey } from '../core/events.js';
import { parseEventValue } from '../ingest/parse-event.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { conversationLines } from '../../test/server-kit.js';
import { registerRerateCommand } from './rerate-command.js';
import { registerServeCommand } from './serve-command.js';

let dir: string;
let db: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wameter-rerate-cli-'));
  db = `sqlite:${join(dir, 'cli.db')}`;
  const store = await openSqliteStore(join(dir, 'cli.db'));
  const events = conversationLines('W1', 'PN1', '919876543210', 'wamid.cli').flatMap((line) => {
    const parsed = parseEventValue(line);
    return parsed.ok ? parsed.value.events : [];
  });
  await store.ingestEvents(
    events.map((event) => ({ key: eventKey(event), event, receivedAtMs: 0, source: 'test' })),
  );
  await store.close();
  process.exitCode = undefined;
});

afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  const program = new Command().exitOverride();
  registerRerateCommand(program);
  await program.parseAsync(['node', 'wameter', 'rerate', ...args]);
  vi.restoreAllMocks();
  return { stdout, stderr };
}

describe('wameter rerate', () => {
  it('re-rates under another era and prints old vs new as JSON', async () => {
    const { stdout } = await run(['--db', db, '--as-of-rules', 'CBP-2023', '--format', 'json']);
    const report = JSON.parse(stdout) as {
      rating_id: string;
      changed: unknown[];
      totals: { old: object; new: object };
    };
    expect(report.rating_id).toMatch(/^rating_/);
    expect(report.changed.length).toBeGreaterThan(0);
    expect(process.exitCode).toBeUndefined();
  });

  it('prints a table with the totals before (never rated: none) and after', async () => {
    const { stdout } = await run(['--db', db, '--dry-run']);
    expect(stdout).toContain('Dry run: nothing stored.');
    expect(stdout).toMatch(/USD: [\d.]+ \(0 units\) → [\d.]+ \(3 units\)/);
  });

  it('refuses an unknown era with a message listing the eras (exit 1)', async () => {
    const { stderr } = await run(['--db', db, '--as-of-rules', 'CBP-1999']);
    expect(stderr).toContain('--as-of-rules must be one of NBP, CBP-2022');
    expect(process.exitCode).toBe(1);
  });
});

describe('wameter serve', () => {
  it('refuses a bad configuration with what to fix, without starting (exit 1)', async () => {
    let stderr = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    const program = new Command().exitOverride();
    registerServeCommand(program);
    await program.parseAsync(['node', 'wameter', 'serve', '--port', 'eighty', '--db', 'mysql://nope']);
    vi.restoreAllMocks();
    expect(stderr).toContain('port must be a whole number');
    expect(stderr).toContain('database must be sqlite:PATH or postgres://');
    expect(process.exitCode).toBe(1);
  });

  it('has help text with examples', () => {
    const program = new Command();
    const serve = registerServeCommand(program);
    expect(serve.helpInformation()).toContain('--db <url>');
    let help = '';
    serve.configureOutput({ writeOut: (text) => (help += text) });
    serve.outputHelp();
    expect(help).toContain('WAMETER_API_KEYS');
    expect(help).toContain('Examples:');
  });
});
