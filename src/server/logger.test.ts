import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  createJsonLogger,
  createMemoryLogger,
  createStdoutWriter,
  hasLogOutputFailed,
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
