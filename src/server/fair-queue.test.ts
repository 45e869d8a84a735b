import { describe, expect, it } from 'vitest';
import { ClientBusyError, FairQueue } from './fair-queue.js';

/** A task that records its start and ends when `finish()` is called. */
function gate(log: string[], name: string) {
  let finish!: (value: string) => void;
  let fail!: (error: Error) => void;
  const ended = new Promise<string>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  return {
    work: () => {
      log.push(name);
      return ended;
    },
    finish: () => finish(name),
    fail: (error: Error) => fail(error),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('FairQueue', () => {
  it('runs one task at a time, the clients taking turns', async () => {
    const queue = new FairQueue(4);
    const log: string[] = [];
    const a1 = gate(log, 'a1');
    const a2 = gate(log, 'a2');
    const a3 = gate(log, 'a3');
    const b1 = gate(log, 'b1');
    const c1 = gate(log, 'c1');
    const answers = [a1, a2, a3].map((task) => queue.run('a', task.work));
    answers.push(queue.run('b', b1.work), queue.run('c', c1.work));
    await tick();
    expect(log).toEqual(['a1']);
    for (const task of [a1, b1, c1, a2, a3]) {
      task.finish();
      await tick();
    }
    // b and c came after a's three, yet waited for a's first only: a had had its turn.
    expect(log).toEqual(['a1', 'b1', 'c1', 'a2', 'a3']);
    expect(await Promise.all(answers)).toEqual(['a1', 'a2', 'a3', 'b1', 'c1']);
    expect(queue.waitingCount()).toBe(0);
  });

  it('refuses a client past its limit at once, and takes it again once one of its tasks ended', async () => {
    const queue = new FairQueue(2);
    const log: string[] = [];
    const a1 = gate(log, 'a1');
    const a2 = gate(log, 'a2');
    const first = queue.run('a', a1.work);
    const second = queue.run('a', a2.work);
    await expect(queue.run('a', () => Promise.resolve('a3'))).rejects.toBeInstanceOf(ClientBusyError);
    // Another client is not refused for it.
    const other = queue.run('b', () => Promise.resolve('b1'));
    a1.finish();
    expect(await first).toBe('a1');
    const third = queue.run('a', () => Promise.resolve('a3'));
    expect(await other).toBe('b1');
    a2.finish();
    expect(await second).toBe('a2');
    expect(await third).toBe('a3');
    expect(log).toEqual(['a1', 'a2']);
  });

  it("never refuses a request's next step at the limit, which still takes its turn", async () => {
    const queue = new FairQueue(1);
    const log: string[] = [];
    const a1 = gate(log, 'a1');
    const first = queue.run('a', a1.work);
    await expect(queue.run('a', () => Promise.resolve('refused'))).rejects.toBeInstanceOf(ClientBusyError);
    const next = queue.run(
      'a',
      () => {
        log.push('a2');
        return Promise.resolve('a2');
      },
      { isContinuation: true },
    );
    const other = queue.run('b', () => {
      log.push('b1');
      return Promise.resolve('b1');
    });
    a1.finish();
    expect(await first).toBe('a1');
    expect(await other).toBe('b1');
    expect(await next).toBe('a2');
    expect(log).toEqual(['a1', 'b1', 'a2']); // b, which had had no turn, went before a's next step
  });

  it('says what the refused client should do', async () => {
    const queue = new FairQueue(1);
    void queue.run('a', () => new Promise(() => {}));
    const refusal = await queue.run('a', () => Promise.resolve()).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(ClientBusyError);
    expect((refusal as Error).message).toMatch(/already has 1 requests .* wait for their answers/);
  });

  it('goes on after a task that fails or throws before returning a promise', async () => {
    const queue = new FairQueue(4);
    const log: string[] = [];
    const a1 = gate(log, 'a1');
    const first = queue.run('a', a1.work);
    const thrown = queue.run('b', () => {
      log.push('b1');
      throw new Error('b1 broke');
    });
    const last = queue.run('a', () => {
      log.push('a2');
      return Promise.resolve('a2');
    });
    a1.fail(new Error('a1 broke'));
    await expect(first).rejects.toThrow('a1 broke');
    await expect(thrown).rejects.toThrow('b1 broke');
    expect(await last).toBe('a2');
    expect(log).toEqual(['a1', 'b1', 'a2']);
    // Nothing is held for the failed tasks: each client may fill its limit again.
    const again = [1, 2, 3, 4].map(() => queue.run('a', () => Promise.resolve('ok')));
    expect(await Promise.all(again)).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  it('never starves a client while two others each keep one request in flight', async () => {
    const queue = new FairQueue(4);
    const log: string[] = [];
    let isStopped = false;
    // a and b send their next request the moment the last one is answered.
    const loop = async (client: string) => {
      for (let i = 0; !isStopped; i++) {
        await queue.run(client, async () => {
          log.push(client);
          await new Promise((resolve) => setImmediate(resolve));
        });
      }
    };
    const loops = [loop('a'), loop('b')];
    await new Promise((resolve) => setImmediate(resolve));
    const c = [1, 2].map((n) =>
      queue.run('c', async () => {
        log.push(`c${n}`);
      }),
    );
    await Promise.all(c);
    isStopped = true;
    await Promise.all(loops);
    // c's second request waited for no more than one turn of a and b after its first.
    const first = log.indexOf('c1');
    const second = log.indexOf('c2');
    expect(first).toBeGreaterThanOrEqual(0);
    expect(second - first).toBeLessThanOrEqual(3);
  });

  it('refuses a limit that is not a whole number of at least 1', () => {
    expect(() => new FairQueue(0)).toThrow(RangeError);
    expect(() => new FairQueue(1.5)).toThrow(RangeError);
  });
});
