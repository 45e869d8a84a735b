import { describe, expect, it } from 'vitest';
import { DeferredStatuses } from './deferred-statuses.js';
import type { StatusEvent } from './events.js';

describe('DeferredStatuses', () => {
  it('hands back every status as it came, bare ones and the rest, past any initial capacity', () => {
    const words = ['sent', 'delivered', 'read', 'failed', 'played'];
    const events: StatusEvent[] = [];
    for (let i = 0; i < 2500; i++) {
      events.push({
        kind: 'status',
        atMs: 1_700_000_000_000 + i * 1000.5,
        id: `m${i}`,
        status: words[i % 5]!,
      });
    }
    events.push({ kind: 'status', atMs: 1, id: 'u1', status: 'deleted' });
    events.push({ kind: 'status', atMs: 2, id: 'p1', status: 'delivered', user: '919876543210' });
    events.push({ kind: 'status', atMs: 3, id: 'p2', status: 'sent', pricing: { category: 'utility' } });
    const kept = new DeferredStatuses<{ id: string }>();
    for (const event of events) kept.add(event, undefined);
    expect(kept.size).toBe(events.length);
    const back: StatusEvent[] = [];
    kept.drain((event, record) => {
      expect(record).toBeUndefined();
      back.push(event);
    });
    const key = (e: StatusEvent) => `${e.id}:${e.status}:${e.atMs}`;
    expect(back.map(key).sort()).toEqual(events.map(key).sort());
    expect(back.find((e) => e.id === 'p1')).toBe(events.at(-2));
    expect(kept.size).toBe(0);
  });

  it('keeps the record given in place of the id and hands it back with the status', () => {
    const kept = new DeferredStatuses<{ id: string }>();
    const record = { id: ['m', '1'].join('') };
    kept.add({ kind: 'status', atMs: 5, id: 'm1', status: 'read' }, record);
    let calls = 0;
    kept.drain((event, handed) => {
      calls += 1;
      expect(handed).toBe(record);
      expect(event).toEqual({ kind: 'status', atMs: 5, id: 'm1', status: 'read' });
      expect(event.id).toBe(record.id);
    });
    expect(calls).toBe(1);
  });
});
