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
    const queue = new GroupCommitQueue(async (items) => {
      groups.push(items.length);
      await new Promise((resolve) => setTimeout(resolve, 5));
      return items.map((i) => outcome(i.events.length));
    });
    const first = Array.from({ length: 5 }, (_, i) => queue.submit(item(i)));
    await new Promise((resolve) => setImmediate(resolve)); // the first group is committing
    const second = Array.from({ length: 3 }, () => queue.submit(item(1)));
    const results = await Promise.all([...first, ...second]);
    expect(groups).toEqual([5, 3]);
    expect(results.map((r) => r.duplicates)).toEqual([0, 1, 2, 3, 4, 1, 1, 1]);
    expect(queue.stats).toEqual({ groups: 2, items: 8 });
    await queue.idle();
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
