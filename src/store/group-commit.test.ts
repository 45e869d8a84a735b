import { describe, expect, it } from 'vitest';
import { GroupCommitQueue } from './group-commit.js';
import { StoreTimeoutError, type IngestItem, type IngestItemOutcome } from './store.js';

const item = (n: number): IngestItem => ({
  raw: null,
  events: Array.from({ length: n }, () => ({}) as IngestItem['events'][number]),
});
const outcome = (size: number): IngestItemOutcome => ({
  rawId: null,
  isDuplicate: false,
  inserted: [],
  duplicates: size,
  merged: [],
  relistedWabas: [],
});

describe('GroupCommitQueue', () => {
  it('commits items submitted together in one group, and later ones in the next', async () => {
    const groups: number[] = [];
    let committing: () => void = () => {};
    const isCommitting = new Promise<void>((resolve) => (committing = resolve));
    const queue = new GroupCommitQueue(async (items) => {
      groups.push(items.length);
      committing();
      await new Promise((resolve) => setTimeout(resolve, 5));
      return items.map((i) => outcome(i.events.length));
    });
    const first = Array.from({ length: 5 }, (_, i) => queue.submit(item(i)));
    await isCommitting;
    const second = Array.from({ length: 3 }, () => queue.submit(item(1)));
    const results = await Promise.all([...first, ...second]);
    expect(groups).toEqual([5, 3]);
    expect(results.map((r) => r.duplicates)).toEqual([0, 1, 2, 3, 4, 1, 1, 1]);
    expect(queue.stats).toEqual({ groups: 2, items: 8 });
    await queue.idle();
  });

  /** Submits `counts[t]` items in turn t of the event loop: requests read turn after turn. */
  async function submitOverTurns(queue: GroupCommitQueue, counts: readonly number[]) {
    const submitted: Promise<IngestItemOutcome>[] = [];
    for (const count of counts) {
      for (let i = 0; i < count; i++) submitted.push(queue.submit(item(1)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    return Promise.all(submitted);
  }

  /** A queue whose commits record their group's size and the turn of the event loop they began in. */
  function recordingQueue(options: ConstructorParameters<typeof GroupCommitQueue>[1]) {
    const turn = { now: 0 };
    const commits: { size: number; turn: number }[] = [];
    const queue = new GroupCommitQueue(async (items) => {
      commits.push({ size: items.length, turn: turn.now });
      return items.map(() => outcome(0));
    }, options);
    // Counts turns from now on: started before any submit, it is first in each turn's immediates.
    const counting = (async () => {
      for (let i = 0; i < 100; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        turn.now += 1;
      }
    })();
    return { queue, commits, counting };
  }

  it('waits while each turn brings more: a burst read over several turns is one group', async () => {
    const groupsWith = async (gatherTurns: number) => {
      const { queue, commits, counting } = recordingQueue({ gatherTurns });
      await submitOverTurns(queue, [2, 1, 1]);
      await counting;
      return commits.map((commit) => commit.size);
    };
    expect(await groupsWith(4)).toEqual([4]);
    // Taking only the first turn's (as before gathering), the later ones went alone.
    expect(await groupsWith(1)).toEqual([2, 1, 1]);
  });

  it('commits after its last turn of gathering, however many items each turn brings', async () => {
    const { queue, commits, counting } = recordingQueue({ gatherTurns: 4 });
    const outcomes = await submitOverTurns(
      queue,
      Array.from({ length: 40 }, () => 2),
    );
    await counting;
    expect(outcomes).toHaveLength(80);
    expect(commits.reduce((sum, commit) => sum + commit.size, 0)).toBe(80);
    // Never a group of the whole stream: each waited 4 turns at most, 2 items a turn.
    expect(commits.length).toBeGreaterThanOrEqual(8);
    expect(Math.max(...commits.map((commit) => commit.size))).toBeLessThanOrEqual(10);
  });

  it('commits a lone item after one turn of the event loop', async () => {
    const { queue, commits, counting } = recordingQueue({ gatherTurns: 4 });
    await queue.submit(item(1));
    await counting;
    expect(commits).toEqual([{ size: 1, turn: 1 }]);
  });

  it('stops gathering once a group is full', async () => {
    const { queue, commits, counting } = recordingQueue({ gatherTurns: 4, maxItems: 3 });
    await Promise.all([1, 2, 3].map(() => queue.submit(item(1))));
    await counting;
    expect(commits).toEqual([{ size: 3, turn: 1 }]);
  });

  it('bounds a group by items and events', async () => {
    const groups: number[] = [];
    const queue = new GroupCommitQueue(
      async (items) => {
        groups.push(items.length);
        return items.map(() => outcome(0));
      },
      { maxItems: 3, maxEvents: 10 },
    );
    await Promise.all([
      ...Array.from({ length: 7 }, () => queue.submit(item(1))),
      queue.submit(item(25)), // more than maxEvents: alone
      queue.submit(item(6)),
      queue.submit(item(6)),
    ]);
    expect(groups).toEqual([3, 3, 1, 1, 1, 1]);
  });

  it('retries a failed group item by item, so only the bad item fails', async () => {
    const queue = new GroupCommitQueue(async (items) => {
      if (items.some((i) => i.events.length === 13)) throw new Error('bad item');
      return items.map((i) => outcome(i.events.length));
    });
    const results = await Promise.allSettled([
      queue.submit(item(1)),
      queue.submit(item(13)),
      queue.submit(item(2)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('fails a whole group that ran out of time at once, never retrying its items one by one', async () => {
    const groups: number[] = [];
    const queue = new GroupCommitQueue(async (items) => {
      groups.push(items.length);
      throw new StoreTimeoutError(300, { isConnectionLost: true });
    });
    const results = await Promise.allSettled([1, 2, 3].map((n) => queue.submit(item(n))));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const result of results)
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StoreTimeoutError);
    expect(groups).toEqual([3]);
  });
});
