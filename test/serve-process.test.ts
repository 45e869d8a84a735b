// `wameter serve` as a real process, seen as a supervisor (systemd, Kubernetes) sees it: what it does when its
// log output breaks (it keeps serving) and when it loses the single-writer lock (it drains, then exits 75 so
// that `Restart=on-failure` starts a new process, which takes the lock again).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileSources } from './support/build-server.js';
import { TEST_POSTGRES_URL } from './server-kit.js';
import { dropSchema } from './support/pg-schema.js';

const ROOT = join(import.meta.dirname, '..');
// Inside the repository (git-ignored) so the built modules find the package's data/ folder.
const BUILD = join(ROOT, '.tmp', 'serve-process-build');
const ENTRY = join(BUILD, 'src', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'wameter-serve-process-'));
const children: ChildProcess[] = [];

beforeAll(() => {
  compileSources(BUILD, ['src/cli/main.ts', 'src/server/rating-worker.ts']);
}, 120_000);

afterAll(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Served {
  child: ChildProcess;
  url: string;
  /** Its stdout lines so far (the service's JSON log). */
  lines: string[];
  stderr: () => string;
  /** The exit code, or `still running after N ms`. */
  exit: (withinMs: number) => Promise<number | null | string>;
}

/** Starts `wameter serve --db DB` on a free loopback port and waits for its "listening" line on stdout. */
async function serve(db: string): Promise<Served> {
  const env = { ...process.env };
  delete env.WAMETER_DB;
  delete env.DATABASE_URL;
  const child = spawn(
    process.execPath,
    [ENTRY, 'serve', '--db', db, '--port', '0', '--host', '127.0.0.1', '--log-level', 'info'],
    {
      cwd: dir,
      env: { ...env, WAMETER_APP_SECRETS: 'serve-process-secret', WAMETER_RATE_LIMIT: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      if (line.includes('"listening"')) resolve((JSON.parse(line) as { url: string }).url);
    });
    void exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${stderr}`)));
  });
  return {
    child,
    url,
    lines,
    stderr: () => stderr,
    exit: (withinMs) =>
      Promise.race([
        exited,
        new Promise<string>((resolve) =>
          setTimeout(() => resolve(`still running after ${withinMs} ms`), withinMs),
        ),
      ]),
  };
}

describe('serve whose log output breaks (its stdout pipe closed by the reader)', () => {
  it('keeps serving, says so once on stderr, and still stops 0 on SIGTERM', async () => {
    const served = await serve(`sqlite:${join(dir, 'log-pipe.db')}`);
    // The reader of the log pipe goes away (a log shipper restarted, `cat logpipe` killed).
    served.child.stdout!.destroy();
    // Each answer is a request line written to the broken pipe.
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${served.url}/healthz/live`).catch((error: Error) => error);
      expect(response instanceof Response ? response.status : String(response.cause ?? response)).toBe(204);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(served.child.exitCode).toBeNull();
    const told = served.stderr().match(/log output/g) ?? [];
    expect(told).toHaveLength(1);
    expect(served.stderr()).toMatch(/EPIPE/);
    served.child.kill('SIGTERM');
    expect(await served.exit(15_000)).toBe(0);
  }, 60_000);
});

describe('serve that loses its single-writer lock (a PostgreSQL blip ended the lock session)', () => {
  it('drains, then exits 75 with the reason in its JSON log, so that its supervisor restarts it', async () => {
    const schema = `wameter_serve_lost_${process.pid}_${Date.now()}`;
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA ${schema}`);
      const url = new URL(TEST_POSTGRES_URL);
      url.searchParams.set('options', `-c search_path=${schema}`);
      const served = await serve(url.toString());
      expect((await fetch(`${served.url}/healthz`)).status).toBe(200);
      const { rowCount } = await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1',
        [`wameter serve pid ${served.child.pid} %`],
      );
      expect(rowCount).toBe(1);
      expect(await served.exit(15_000)).toBe(75);
      const lost = served.lines.map(parseLine).find((line) => line.errorCode === 'WRITER_LOCK_LOST');
      expect(lost).toMatchObject({
        level: 'error',
        exitCode: 75,
        msg: expect.stringMatching(/single-writer lock was lost.*exiting 75/),
      });
      // Said once, in the log: not again in plain words on stderr.
      expect(served.stderr()).toBe('');

      // The supervisor's restart takes the lock again.
      const again = await serve(url.toString());
      expect((await fetch(`${again.url}/healthz`)).status).toBe(200);
      again.child.kill('SIGTERM');
      expect(await again.exit(15_000)).toBe(0);
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  }, 90_000);
});

/**
 * `wameter serve --db DB` on a loopback port (`port`, default any free one), not waited for: its stdout
 * lines as they come, and its exit. `entry`: another build's CLI; `env`: more of the environment.
 */
function spawnServe(db: string, options: { port?: number; entry?: string; env?: NodeJS.ProcessEnv } = {}) {
  const env = { ...process.env };
  delete env.WAMETER_DB;
  delete env.DATABASE_URL;
  const port = String(options.port ?? 0);
  const child = spawn(
    process.execPath,
    [
      options.entry ?? ENTRY,
      'serve',
      '--db',
      db,
      '--port',
      port,
      '--host',
      '127.0.0.1',
      '--log-level',
      'info',
    ],
    {
      cwd: dir,
      env: { ...env, WAMETER_RATE_LIMIT: 'off', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  const lines: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const waiters: { test: (line: string) => boolean; resolve: () => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const waiter of waiters.filter((w) => w.test(line))) waiter.resolve();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    /** Resolves at the first stdout line containing `text` (fails if the process exits first). */
    lineWith: (text: string) =>
      new Promise<void>((resolve, reject) => {
        if (lines.some((line) => line.includes(text))) return resolve();
        waiters.push({ test: (line) => line.includes(text), resolve });
        void exited.then(() =>
          reject(new Error(`serve exited before a line with ${text}: ${lines.join('\n')}`)),
        );
      }),
  };
}

/** postgres-store.ts's MIGRATION_LOCK ("wame"): the first key of the advisory lock a migration takes. */
const MIGRATION_LOCK = 0x77616d65;

describe('serve signalled while it starts (migrating a PostgreSQL schema, before it listens)', () => {
  /** wameter's migration lock of `schema` (postgres-store.ts MIGRATION_LOCK): a start migrating it waits. */
  const holdMigrationLock = (admin: pg.Client, schema: string) =>
    admin.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK}, hashtext($1))`, [schema]);
  const tablesOf = async (admin: pg.Client, schema: string) =>
    (
      await admin.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema])
    ).rows.map((row: { table_name: string }) => row.table_name);
  /** Waits until a session waits for an advisory lock of `schema`'s migration. */
  const migrationWaiting = async (admin: pg.Client) => {
    for (;;) {
      const { rows } = await admin.query(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = ${MIGRATION_LOCK} AND NOT granted`,
      );
      if ((rows[0] as { n: number }).n > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  /**
   * `wameter serve` on a new `schema`, its start held in the migration by the lock `admin` takes, then sent
   * `signal` — once it has said so.
   */
  const signalledWhileMigrating = async (admin: pg.Client, schema: string, signal: NodeJS.Signals) => {
    await admin.query(`CREATE SCHEMA ${schema}`);
    await holdMigrationLock(admin, schema);
    const url = new URL(TEST_POSTGRES_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const served = spawnServe(url.toString());
    await migrationWaiting(admin);
    served.child.kill(signal);
    await served.lineWith(`${signal} while starting`);
    return { served, url };
  };

  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s: says so at once, stops the start once its step ends, exits 0; the migration is whole, nothing listened',
    async (signal) => {
      const schema = `wameter_start_signal_${signal.toLowerCase()}_${process.pid}_${Date.now()}`;
      const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await admin.connect();
      try {
        const { served, url } = await signalledWhileMigrating(admin, schema, signal);
        // The step under way (the migration) ends, committed whole; the start stops after it.
        await admin.query('SELECT pg_advisory_unlock_all()');
        expect(await served.exited).toEqual({ code: 0, signal: null });
        expect(served.lines.join('\n')).not.toMatch(/"listening"/);
        expect(served.lines.at(-1)).toMatch(/"stopped before serving"/);
        expect(served.stderr()).toBe('');
        const applied = await admin.query(`SELECT count(*)::int AS n FROM ${schema}.schema_migrations`);
        expect((applied.rows[0] as { n: number }).n).toBeGreaterThan(0);
        // Its writer lock went with its sessions: a new start takes it.
        const again = await serve(url.toString());
        again.child.kill('SIGTERM');
        expect(await again.exit(15_000)).toBe(0);
      } finally {
        await dropSchema(admin, schema);
        await admin.end();
      }
    },
    60_000,
  );

  it('a step that does not end (a migration waiting on a lock): exits 1 after the bound, its migration rolled back', async () => {
    const schema = `wameter_start_stuck_${process.pid}_${Date.now()}`;
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    try {
      const { served } = await signalledWhileMigrating(admin, schema, 'SIGTERM');
      expect(await served.exited).toEqual({ code: 1, signal: null });
      expect(served.lines.join('\n')).not.toMatch(/"listening"/);
      expect(served.lines.at(-1)).toMatch(/"level":"error".*did not end within 10 s/);
      expect(served.stderr()).toBe('');
      // Nothing of the migration stayed (its transaction ended with its session), and no session is left.
      expect(await tablesOf(admin, schema)).toEqual([]);
      const { rows } = await admin.query(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE $1',
        [`wameter serve pid ${served.child.pid} %`],
      );
      expect((rows[0] as { n: number }).n).toBe(0);
    } finally {
      await admin.query('SELECT pg_advisory_unlock_all()');
      await dropSchema(admin, schema);
      await admin.end();
    }
  }, 60_000);
});

describe('npm start, stopped by its supervisor (systemd, docker stop: SIGTERM to npm)', () => {
  it('the server gets the signal and stops, instead of running on as an orphan holding the lock', async () => {
    // package.json's own start script, run by npm from a folder whose dist/ is this test's build.
    const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: { start: string };
    };
    const app = join(dir, 'npm-start');
    mkdirSync(app);
    symlinkSync(BUILD, join(app, 'dist'));
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'npm-start', scripts: { start: scripts.start } }),
    );
    const db = join(dir, 'npm-start.db');
    const env = { ...process.env };
    delete env.DATABASE_URL;
    const npm = spawn('npm', ['start', '--silent'], {
      cwd: app,
      env: {
        ...env,
        WAMETER_DB: `sqlite:${db}`,
        PORT: '0',
        WAMETER_HOST: '127.0.0.1',
        WAMETER_RATE_LIMIT: 'off',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(npm);
    const npmExited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: npm.stdout! }).on('line', (line) => {
        if (line.includes('"listening"')) resolve((JSON.parse(line) as { url: string }).url);
      });
      void npmExited.then(() => reject(new Error('npm start exited before listening')));
    });
    const isServing = () =>
      fetch(`${url}/healthz/live`).then(
        () => true,
        () => false,
      );
    expect(await isServing()).toBe(true);
    // Its processes, taken now: once npm is gone, an orphan is a child of init, found by nothing else.
    const processes = descendantsOf(npm.pid!);
    npm.kill('SIGTERM');
    await npmExited;
    let serving = true;
    for (const deadline = Date.now() + 10_000; serving && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      serving = await isServing();
    }
    // An orphan would keep the port and the writer lock: stopped here, whatever the verdict.
    for (const pid of processes) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    expect(serving, 'the server still answers after npm was stopped').toBe(false);
  }, 60_000);
});

describe('a signal while wameter loads its modules (before serve has listeners of its own)', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s: serve logs it and stops before serving, exit 0, instead of dying unlogged (143, 130)',
    async (signal) => {
      const db = join(dir, `loading-${signal}.db`);
      // Sent by the process to itself right after it holds signals, before it imports the program (main.ts).
      const served = spawnServe(`sqlite:${db}`, { env: { WAMETER_TEST_SIGNAL_WHILE_LOADING: signal } });
      const outcome = await Promise.race([
        served.exited,
        served.lineWith('"listening"').then(() => 'listened'),
      ]);
      expect(outcome).toEqual({ code: 0, signal: null });
      expect(served.lines.map(parseLine)).toEqual([
        expect.objectContaining({
          level: 'warn',
          msg: expect.stringMatching(`^${signal} while starting \\(loading wameter and its settings\\)`),
          signal,
          step: 'loading wameter and its settings',
        }),
        expect.objectContaining({ level: 'info', msg: 'stopped before serving', signal }),
      ]);
      expect(served.stderr()).toBe('');
      // Stopped before the store's step: no database made.
      expect(existsSync(db)).toBe(false);
    },
    60_000,
  );

  it('any other command is ended by the signal as before, once loaded (nothing run, nothing printed)', async () => {
    const child = spawn(process.execPath, [ENTRY, 'rate', join(dir, 'no-such-events.ndjson')], {
      cwd: dir,
      env: { ...process.env, WAMETER_TEST_SIGNAL_WHILE_LOADING: 'SIGTERM' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exit = await new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(output).toBe('');
  }, 60_000);
});

/** A line of the service's log: one JSON object (throws, naming the line, when it is not). */
function parseLine(line: string): Record<string, unknown> {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`not a JSON log line: ${line}`);
  }
}

describe('serve writes every line as one JSON log line, on stdout (supervisors parse them)', () => {
  it("a WAL checkpointer that stops is logged as a warning line with its code, not Node's plain text on stderr", async () => {
    // This build's checkpoint worker dies as it starts (a crash): the store's writer checkpoints itself again.
    const broken = join(ROOT, '.tmp', 'serve-process-build-broken-checkpointer');
    rmSync(broken, { recursive: true, force: true });
    cpSync(BUILD, broken, { recursive: true });
    writeFileSync(
      join(broken, 'src', 'store', 'sqlite', 'wal-checkpoint-worker.js'),
      "throw new Error('the checkpoint worker crashed (test)');\n",
    );
    try {
      const served = spawnServe(`sqlite:${join(dir, 'broken-checkpointer.db')}`, {
        entry: join(broken, 'src', 'cli', 'main.js'),
      });
      await served.lineWith('"listening"');
      await served.lineWith('WAL checkpointer stopped');
      served.child.kill('SIGTERM');
      expect(await served.exited).toEqual({ code: 0, signal: null });
      const lines = served.lines.map(parseLine);
      expect(lines.find((line) => String(line.msg).includes('WAL checkpointer'))).toEqual({
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        level: 'warn',
        msg: 'the SQLite WAL checkpointer stopped (the checkpoint worker crashed (test)): the writing connection checkpoints itself from now on',
        warning: 'Warning',
        warningCode: 'WAMETER_WAL_CHECKPOINTER',
      });
      expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'stopped' });
      expect(served.stderr()).toBe('');
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  }, 60_000);

  it('a start that fails (its port in use) says why in one JSON error line, nothing on stderr, and exits 1', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = holder.address() as AddressInfo;
      const served = spawnServe(`sqlite:${join(dir, 'port-in-use.db')}`, { port });
      expect(await served.exited).toEqual({ code: 1, signal: null });
      const lines = served.lines.map(parseLine);
      expect(lines[0]).toMatchObject({ level: 'info', msg: 'starting' });
      expect(lines.at(-1)).toMatchObject({
        level: 'error',
        msg: expect.stringMatching(
          `^cannot start: cannot listen on port ${port} of 127.0.0.1: another process uses it`,
        ),
        errorCode: 'START_FAILED',
        exitCode: 1,
      });
      expect(served.stderr()).toBe('');
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  }, 60_000);

  it.each([
    [
      'an exception thrown from a callback',
      'setImmediate(() => { throw new Error(WORDS); })',
      'uncaughtException',
    ],
    ['a rejection nothing handles', 'void Promise.reject(new Error(WORDS))', 'unhandledRejection'],
  ])(
    'a bug escaping every handler (%s) is one JSON error line with its stack, nothing on stderr, exit 70',
    async (_what, plant, origin) => {
      // A bug planted in the real service (a module Node loads first, --import), set off once it listens.
      const planted = join(dir, `plant-${origin}.mjs`);
      writeFileSync(
        planted,
        `const WORDS = 'planted bug after listening';
         const write = process.stdout.write.bind(process.stdout);
         let isPlanted = false;
         process.stdout.write = (chunk, ...rest) => {
           if (!isPlanted && String(chunk).includes('"msg":"listening"')) {
             isPlanted = true;
             ${plant};
           }
           return write(chunk, ...rest);
         };\n`,
      );
      const served = spawnServe(`sqlite:${join(dir, `uncaught-${origin}.db`)}`, {
        env: { NODE_OPTIONS: `--import ${pathToFileURL(planted).href}` },
      });
      expect(await served.exited).toEqual({ code: 70, signal: null });
      const last = parseLine(served.lines.at(-1)!);
      expect(last).toMatchObject({
        level: 'error',
        msg: expect.stringMatching(
          /^uncaught .*: a bug in wameter, please report it; the service stops at once/,
        ),
        error: 'planted bug after listening',
        origin,
        errorCode: 'UNCAUGHT_EXCEPTION',
        exitCode: 70,
      });
      expect(String(last.stack)).toContain('plant-');
      expect(served.stderr()).toBe('');
    },
    60_000,
  );
});

/** The processes below `pid` (its children, theirs…), read from `ps`. */
function descendantsOf(pid: number): number[] {
  const rows = spawnSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .map((row) => row.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  for (let parents = [pid]; parents.length > 0;) {
    parents = rows.filter(([, parent]) => parents.includes(parent)).map(([child]) => child);
    found.push(...parents);
  }
  return found;
}
