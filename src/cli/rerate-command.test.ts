import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventKey } from '../core/events.js';
import { parseEventValue } from '../ingest/parse-event.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { conversationLines } from '../../test/server-kit.js';
import { runWameter } from '../../test/support/cli.js';
import { processIo } from './io.js';
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
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, out, err } = await runWameter(['rerate', ...args]);
  return { code, stdout: out, stderr: err };
}

describe('wameter rerate', () => {
  it('re-rates under another era and prints old vs new as JSON', async () => {
    const { code, stdout } = await run(['--db', db, '--as-of-rules', 'CBP-2023', '--format', 'json']);
    const report = JSON.parse(stdout) as {
      rating_id: string;
      changed: unknown[];
      totals: { old: object; new: object };
    };
    expect(report.rating_id).toMatch(/^rating_/);
    expect(report.changed.length).toBeGreaterThan(0);
    expect(code).toBe(0);
  });

  it('prints a table with the totals before (never rated: none) and after', async () => {
    const { stdout } = await run(['--db', db, '--dry-run']);
    expect(stdout).toContain('Dry run: nothing stored.');
    expect(stdout).toMatch(/USD: [\d.]+ \(0 units\) → [\d.]+ \(3 units\)/);
  });

  it('refuses an unknown era with a message listing the eras (exit 1)', async () => {
    const { code, stderr } = await run(['--db', db, '--as-of-rules', 'CBP-1999']);
    expect(stderr).toContain('--as-of-rules must be one of NBP, CBP-2022');
    expect(code).toBe(1);
  });
});

describe('wameter rerate and serve exit 1 on every refusal, with their message', () => {
  it.each([
    [['rerate', '--as-of-rules', 'XYZ'], '--as-of-rules must be one of NBP'],
    [['rerate', '--db', 'mysql://x'], 'database must be sqlite:PATH or postgres://'],
    [['rerate', '--format', 'yaml'], '--format must be table or json'],
    [['rerate', '--from', 'yesterday'], '--from:'],
    [['serve', '--port', 'abc'], 'port must be a whole number from 0 to 65535'],
    [['serve', '--log-level', 'loud'], '--log-level must be one of debug, info, warn, error, silent'],
    [['serve', '--db', 'sqlite:/nope/x.db'], 'the folder /nope does not exist'],
  ])('%j', async (args, message) => {
    const { code, err } = await runWameter(args);
    expect(err).toContain(message);
    expect(err).not.toMatch(/\n\s+at /);
    expect(code).toBe(1);
  });

  it('serve refuses a --config file with an unknown setting', async () => {
    const config = join(dir, 'bad.json');
    writeFileSync(config, JSON.stringify({ port: 0, loudness: 11 }));
    const { code, err } = await runWameter(['serve', '--config', config]);
    expect(err).toContain('config file: unknown setting "loudness"');
    expect(code).toBe(1);
  });

  it('rerate refuses rate cards it cannot read (exit 1)', async () => {
    const { code, err } = await runWameter(['rerate', '--db', db, '--rate-cards', join(dir, 'nope.csv')]);
    expect(err).toContain('nope.csv');
    expect(code).toBe(1);
  });
});

describe('wameter serve', () => {
  it('refuses a bad configuration with what to fix, without starting (exit 1)', async () => {
    const { code, err } = await runWameter(['serve', '--port', 'eighty', '--db', 'mysql://nope']);
    expect(err).toContain('port must be a whole number');
    expect(err).toContain('database must be sqlite:PATH or postgres://');
    expect(code).toBe(1);
  });

  it('has help text with examples', () => {
    const program = new Command();
    const serve = registerServeCommand(program, processIo());
    expect(serve.helpInformation()).toContain('--db <url>');
    let help = '';
    serve.configureOutput({ writeOut: (text) => (help += text) });
    serve.outputHelp();
    expect(help).toContain('WAMETER_API_KEYS');
    expect(help).toContain('Examples:');
  });
});
