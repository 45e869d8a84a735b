// Events deleted by hand (docs/storage.md's clean-up) are marked as stored ones are: the same checks on both
// engines, each deleting through its own SQL.
import { expect } from 'vitest';
import { eventKey, type CoreEvent } from '../../src/core/events.js';
import type { Store } from '../../src/store/store.js';

const T0 = Date.parse('2025-07-10T09:00:00Z');

const EVENTS: CoreEvent[] = [
  { kind: 'inbound', atMs: T0, waba: 'W1', business: 'PN1', user: '1', id: 'wamid.i1', hasReferral: false },
  { kind: 'inbound', atMs: T0, waba: 'W2', business: 'PN2', user: '2', id: 'wamid.i2', hasReferral: false },
  // A status naming no WABA, and its message stored in W3 (which the status joins).
  { kind: 'status', atMs: T0 + 2, id: 'wamid.s1', status: 'delivered' },
  {
    kind: 'outbound',
    atMs: T0 + 1,
    waba: 'W3',
    business: 'PN3',
    user: '3',
    id: 'wamid.s1',
    template: 'marketing',
  },
];

/**
 * Stores the events above, then deletes them one by one with `deleteEvents` (SQL: `DELETE FROM events WHERE
 * <condition>`): each deletion marks the deleted row's WABA past every earlier mark, and '' when it may move a
 * status naming no WABA (the status itself, or the message it joined) — as a rewrite of the row would.
 */
export async function expectDeletionsMarked(
  store: Store,
  deleteEvents: (condition: string) => Promise<void>,
): Promise<void> {
  await store.ingestEvents(
    EVENTS.map((event) => ({ key: eventKey(event), event, receivedAtMs: 0, source: 'import' as const })),
  );
  const stored = await store.readEventChanges();

  await deleteEvents("waba = 'W1'");
  const first = await store.readEventChanges();
  expect(first.seq).toBeGreaterThan(stored.seq);
  expect(first.byWaba.get('W1')).toBe(first.seq);
  expect(first.byWaba.get('W2')).toBe(stored.byWaba.get('W2'));
  expect(first.unnamedSeq).toBe(stored.unnamedSeq);

  // The message a status naming no WABA joined: the status is placed elsewhere now.
  await deleteEvents("waba = 'W3'");
  const second = await store.readEventChanges();
  expect(second.byWaba.get('W3')).toBe(second.seq);
  expect(second.unnamedSeq).toBe(second.seq);
  expect(second.seq).toBeGreaterThan(first.seq);

  await deleteEvents('waba IS NULL');
  const third = await store.readEventChanges();
  expect(third.unnamedSeq).toBe(third.seq);
  expect(third.seq).toBeGreaterThan(second.seq);
  expect(third.byWaba.get('W2')).toBe(stored.byWaba.get('W2'));
  expect(await store.listEvents()).toHaveLength(1);
}
