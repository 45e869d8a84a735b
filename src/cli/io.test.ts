// A stdout that refuses the output (`wameter rate … > /dev/full`): one line naming why, exit 74, no stack trace
// and no success summary over an incomplete output — in-process through the process's own io, and as the
// shell sees it.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileSources } from '../../test/support/build-server.js';
import { EXIT } from './exit-codes.js';
import { processIo } from './io.js';
import { runCli } from './program.js';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'wameter-io-'));

const LINES = [
  '{"kind":"inbound","at":"2024-03-01T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.in1"}',
  '{"kind":"outbound","at":"2024-03-01T10:05:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.o1","template":"utility"}',
  '{"kind":"status","at":"2024-03-01T10:05:03Z","id":"wamid.o1","status":"delivered"}',
];
const small = join(dir, 'small.ndjson');
writeFileSync(small, LINES.join('\n'));

/** 3,000 delivered marketing templates over three days: units leave a stream long before its end. */
const large = join(dir, 'large.ndjson');
writeFileSync(
  large,
  Array.from({ length: 3000 }, (_, i) => {
    const at = Date.parse('2025-10-01T00:00:00Z') + i * 90_000;
    const id = `wamid.m${i}`;
    const user = `91980${String(i).padStart(7, '0')}`;
    return [
      JSON.stringify({
        kind: 'outbound',
        at: new Date(at).toISOString(),
        waba: 'W1',
        business: 'PN1',
        user,
        id,
        template: 'marketing',
      }),
      JSON.stringify({ kind: 'status', at: new Date(at + 2000).toISOString(), id, status: 'delivered' }),
    ].join('\n');
  }).join('\n'),
);

/** The command line's io over `stdout`, its stderr kept for the test (stdin empty). */
function withStdout(stdout: Writable) {
  stdout.on('error', () => {}); // the process's listener (endQuietlyWhenOutputCloses) is not installed here
  let stderr = '';
  const io = processIo({
    stdout,
    stderr: new Writable({
      write(chunk, _encoding, done) {
        stderr += String(chunk);
        done();
      },
    }),
    stdin: Readable.from([]),
  });
  return { io, stderr: () => stderr };
}

/** A stdout on a full disk: every write fails at once, as a file's synchronous write does on Linux. */
function fullDisk() {
  let written = 0;
  const stdout = new Writable({
    write(_chunk, _encoding, done) {
      written += 1;
      done(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    },
  });
  return { ...withStdout(stdout), writes: () => written };
}

describe('a stdout that refuses the output', () => {
  it('rate: one line naming why, exit 74, and no success summary', async () => {
    const { io, stderr } = fullDisk();
    const code = await runCli(['rate', small, '--format', 'csv'], io);
    expect(code).toBe(EXIT.OUTPUT_FAILED);
    expect(stderr()).toBe('wameter: cannot write the output: no space left on device (ENOSPC)\n');
  });

  it('rate --stream: the rating stops at the first failed write; the source is not called unreadable', async () => {
    const { io, stderr, writes } = fullDisk();
    const code = await runCli(['rate', large, '--stream', '--format', 'csv'], io);
    expect(code).toBe(EXIT.OUTPUT_FAILED);
    expect(stderr()).toBe('wameter: cannot write the output: no space left on device (ENOSPC)\n');
    expect(writes()).toBe(1);
  });

  it('every command that prints says it the same way (explain, estimate, reconcile)', async () => {
    const recipients = join(dir, 'recipients.csv');
    writeFileSync(recipients, 'phone\n919876543210\n');
    for (const args of [
      ['explain', small, '--user', '919876543210'],
      ['estimate', recipients, '--template', 'utility', '--events', small, '--at', '2024-03-01T12:00:00Z'],
      ['reconcile', small, join(ROOT, 'test', 'fixtures', 'webhooks', 'pywa', 'status_delivered.json')],
    ]) {
      const { io, stderr } = fullDisk();
      const code = await runCli(args, io);
      expect(code, args[0]).toBe(EXIT.OUTPUT_FAILED);
      expect(stderr(), args[0]).toBe('wameter: cannot write the output: no space left on device (ENOSPC)\n');
    }
  });
});

/**
 * A stdout whose reader went away while a write waited on the full pipe (`wameter rate … | head -1`): as on a
 * real pipe, the write's EPIPE is told later (its callback in the next turn of the event loop), not at once.
 */
function readerGone() {
  let writes = 0;
  const stdout = new Writable({
    write(_chunk, _encoding, done) {
      writes += 1;
      setImmediate(() => done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })));
    },
  });
  return { ...withStdout(stdout), writes: () => writes };
}

describe('a reader that stops reading', () => {
  // README "Exit codes": the command ends quietly with exit 0 — no findings, summary or exit 3 said to no one.
  it.each([
    [['rate', small]],
    [['rate', small, '--format', 'csv']],
    [['rate', large, '--stream', '--format', 'csv']],
    // Its empty story is said on stderr after it, as a quote's summary is.
    [['explain', small, '--user', '911111111111']],
    [
      [
        'estimate',
        join(dir, 'quiet.csv'),
        '--template',
        'utility',
        '--events',
        small,
        '--at',
        '2024-03-01T12:00:00Z',
      ],
    ],
  ])('%j ends quietly with exit 0', async (args) => {
    writeFileSync(join(dir, 'quiet.csv'), 'phone\n919876543210\n');
    const { io, stderr, writes } = readerGone();
    const code = await runCli(args, io);
    expect(stderr()).toBe('');
    expect(code).toBe(EXIT.OK);
    expect(writes()).toBeGreaterThan(0);
  });
});

describe('the command line as a process', () => {
  const build = join(ROOT, '.tmp', 'cli-io-build');
  const entry = join(build, 'src', 'cli', 'main.js');
  beforeAll(() => compileSources(build, ['src/cli/main.ts']), 120_000);

  it.runIf(existsSync('/dev/full'))('wameter rate > /dev/full: exit 74, one line, no stack trace', () => {
    const result = spawnSync(process.execPath, [entry, 'rate', small], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', openSync('/dev/full', 'w'), 'pipe'],
      timeout: 20_000,
    });
    expect(result.signal).toBeNull();
    expect(result.stderr).toBe('wameter: cannot write the output: no space left on device (ENOSPC)\n');
    expect(result.status).toBe(EXIT.OUTPUT_FAILED);
  });

  it('an invalid WAMETER_STREAM_HEAP_MB is refused before rating, exit 1, never replaced silently', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, WAMETER_STREAM_HEAP_MB: 'abc' };
    delete env.WAMETER_HEAP_CAPPED;
    delete env.NODE_OPTIONS;
    const result = spawnSync(process.execPath, [entry, 'rate', small, '--stream'], {
      cwd: dir,
      encoding: 'utf8',
      env,
      timeout: 20_000,
    });
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'wameter: WAMETER_STREAM_HEAP_MB must be a whole number of MiB, 64 or more, not "abc": fix it, or unset it for the default (640)\n',
    );
    expect(result.status).toBe(EXIT.USAGE);
  });
});
