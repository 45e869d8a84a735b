import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { openSqliteStore, walCheckpointerOf } from '../store/sqlite/sqlite-store.js';
import {
  createJsonLogger,
  createMemoryLogger,
  createStdoutWriter,
  hasLogOutputFailed,
  routeProcessWarnings,
  withRequestLogContext,
  type RequestLogContext,
} from './logger.js';

/** A stdout whose writes fail as a pipe without a reader does (EPIPE, reported as an 'error' event). */
function brokenPipe(): Writable & { written: string[]; break: () => void } {
  const written: string[] = [];
  let isBroken = false;
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (isBroken) {
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
        return;
      }
      written.push(chunk.toString());
      callback();
    },
  });
  return Object.assign(stream, { written, break: () => void (isBroken = true) });
}

describe('createStdoutWriter (the service log when its output breaks)', () => {
  it('drops lines once stdout failed, says so once on stderr, and never throws', async () => {
    const stdout = brokenPipe();
    const stderr = new PassThrough();
    let told = '';
    stderr.on('data', (chunk: Buffer) => (told += chunk.toString()));
    const write = createStdoutWriter({ stdout, stderr });
    write('{"msg":"one"}');
    stdout.break();
    write('{"msg":"two"}');
    await new Promise((resolve) => setImmediate(resolve));
    write('{"msg":"three"}');
    write('{"msg":"four"}');
    await new Promise((resolve) => setImmediate(resolve));
    expect(stdout.written).toEqual(['{"msg":"one"}\n']);
    expect(told.match(/log output \(stdout\) failed \(EPIPE: its reader went away\)/g)).toHaveLength(1);
    // Said as a log line too: one JSON object, whatever reads stderr.
    expect(told.endsWith('\n') && told.split('\n').length).toBe(2);
    expect(JSON.parse(told)).toMatchObject({ level: 'error', errorCode: 'LOG_OUTPUT_FAILED', code: 'EPIPE' });
    expect(hasLogOutputFailed(stdout)).toBe(true);
    expect(hasLogOutputFailed(new PassThrough())).toBe(false);
  });
});

describe('request log context', () => {
  it("puts the request's fields on every line logged while it is handled, and none after", async () => {
    const logger = createMemoryLogger();
    const context: RequestLogContext = { fields: { requestId: 'req_1' } };
    let later: Promise<void> = Promise.resolve();
    await withRequestLogContext(context, async () => {
      logger.error('inside');
      await new Promise((resolve) => setTimeout(resolve, 1));
      logger.warn('after an await');
      later = new Promise((resolve) =>
        setTimeout(() => {
          logger.info('scheduled work');
          resolve();
        }, 5),
      );
    });
    context.fields = null;
    logger.info('outside');
    await later;
    const lines = logger.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => [line.msg, line.requestId])).toEqual([
      ['inside', 'req_1'],
      ['after an await', 'req_1'],
      ['outside', undefined],
      ['scheduled work', undefined],
    ]);
  });

  it("lets a line's own fields win over the request's", () => {
    const lines: string[] = [];
    const logger = createJsonLogger({ level: 'info', clock: () => 0, write: (line) => lines.push(line) });
    withRequestLogContext({ fields: { requestId: 'req_1' } }, () => logger.info('x', { requestId: 'own' }));
    expect(JSON.parse(lines[0]!)).toMatchObject({ requestId: 'own' });
  });
});

describe('isLevelWritten', () => {
  it.each(['debug', 'info', 'warn', 'error', 'silent'] as const)(
    'says at %s exactly which levels the logger writes',
    (threshold) => {
      const lines: string[] = [];
      const logger = createJsonLogger({
        level: threshold,
        clock: () => 0,
        write: (line) => lines.push(line),
      });
      const levels = ['debug', 'info', 'warn', 'error'] as const;
      for (const level of levels) logger[level]('x');
      const written = lines.map((line) => (JSON.parse(line) as { level: string }).level);
      expect(levels.filter((level) => logger.isLevelWritten(level))).toEqual(written);
    },
  );

  it('holds for a memory logger given a level (the test services use the configured one)', () => {
    const logger = createMemoryLogger(() => 0, 'warn');
    logger.info('dropped');
    logger.warn('kept');
    expect(logger.lines.map((line) => (JSON.parse(line) as { msg: string }).msg)).toEqual(['kept']);
    expect([logger.isLevelWritten('info'), logger.isLevelWritten('warn')]).toEqual([false, true]);
  });
});

describe('routeProcessWarnings (wameter serve: every line it writes is a JSON log line)', () => {
  it("logs the SQLite WAL checkpointer's stop as a warn line with its code, in place of Node's stderr text", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-logger-'));
    const logger = createMemoryLogger(() => Date.parse('2026-12-05T20:00:00Z'));
    const nodePrinters = process.listeners('warning');
    const giveBack = routeProcessWarnings(logger);
    try {
      // A worker that cannot start ends the checkpointer as a crash does: the store's own reporter warns.
      const store = await openSqliteStore(join(dir, 'w.db'), {
        walCheckpointer: { script: join(dir, 'no-such-worker.js') },
      });
      await walCheckpointerOf(store)!.exited;
      await store.close();
      // process.emitWarning emits on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      // Node's printer (plain text on stderr) did not have it.
      expect(process.listeners('warning').some((listener) => nodePrinters.includes(listener))).toBe(false);
    } finally {
      giveBack();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(logger.lines.map((line) => JSON.parse(line) as unknown)).toEqual([
      {
        at: '2026-12-05T20:00:00.000Z',
        level: 'warn',
        msg: expect.stringMatching(
          /^the SQLite WAL checkpointer stopped \(.*no-such-worker\.js.*\): the writing connection checkpoints itself from now on$/,
        ),
        warning: 'Warning',
        warningCode: 'WAMETER_WAL_CHECKPOINTER',
      },
    ]);
    // Given back: a command other than serve prints its warnings as Node does.
    expect(process.listeners('warning')).toEqual(nodePrinters);
  });

  it("a warning's detail goes in its own field", () => {
    const logger = createMemoryLogger();
    const giveBack = routeProcessWarnings(logger);
    try {
      process.emit(
        'warning',
        Object.assign(new Error('the API is deprecated'), {
          name: 'DeprecationWarning',
          code: 'DEP0000',
          detail: 'use the other one',
        }),
      );
    } finally {
      giveBack();
    }
    expect(JSON.parse(logger.lines[0]!)).toMatchObject({
      level: 'warn',
      msg: 'the API is deprecated',
      warning: 'DeprecationWarning',
      warningCode: 'DEP0000',
      detail: 'use the other one',
    });
  });
});
