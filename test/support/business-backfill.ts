// Migration 7's backfill of `events.business`, checked alike on both stores: what a version-6 store held,
// which rows tie their number after the upgrade, and what the store then lists.
import { expect } from 'vitest';
import {
  eventKey,
  type AccountUpdateEvent,
  type CoreEvent,
  type InboundEvent,
  type OutboundEvent,
  type StatusEvent,
} from '../../src/core/events.js';
import type { EventInput, Store } from '../../src/store/store.js';
import { listingOf } from './store-events.js';

const header = { user: '919876543210', hasReferral: false } as const;
const imported: InboundEvent = { kind: 'inbound', atMs: 1, waba: 'W1', business: 'PN1', id: 'i1', ...header };
const hooked: InboundEvent = { kind: 'inbound', atMs: 2, waba: 'W3', business: 'PN3', id: 'i3', ...header };
// Written by an API key: any key, limited or not, before this version could say which.
const posted: OutboundEvent = {
  kind: 'outbound',
  atMs: 3,
  waba: 'W2',
  business: 'PN2',
  user: '919876543210',
  id: 'o2',
  template: 'utility',
};
const named: StatusEvent = {
  kind: 'status',
  atMs: 4,
  waba: 'W4',
  id: 'o4',
  status: 'sent',
  business: 'PN4',
  user: '1',
};
// Their messages are not stored: only their business numbers can tie them to a WABA.
const orphan = (atMs: number, business: string): StatusEvent => ({
  kind: 'status',
  atMs,
  id: `wamid.${business}`,
  status: 'delivered',
  business,
  user: '919876543210',
});
const update: AccountUpdateEvent = { kind: 'account_update', atMs: 9, waba: 'W1', event: 'X' };

/** What a version-6 store is given, each event with its source. */
export const BACKFILL_INPUTS: EventInput[] = (
  [
    [imported, 'import'],
    [hooked, 'webhook'],
    [posted, 'api:all'],
    [named, 'webhook'],
    [orphan(5, 'PN1'), 'import'],
    [orphan(6, 'PN2'), 'import'],
    [orphan(7, 'PN4'), 'import'],
    [update, 'webhook'],
  ] as [CoreEvent, string][]
).map(([event, source]) => ({ key: eventKey(event), event, receivedAtMs: 10, source }));

/**
 * `kind, business` of each row after the upgrade, by `at_ms`: trusted inbound and outbound rows tie, and (from
 * the migration that made statuses naming their WABA, a number and a user tie) the webhook's status of W4.
 */
export const BACKFILLED_ROWS = [
  ['inbound', 'PN1'],
  ['inbound', 'PN3'],
  ['outbound', null],
  ['status', 'PN4'],
  ['status', null],
  ['status', null],
  ['status', null],
  ['account_update', null],
];

/**
 * What the upgraded store lists: the status of PN1 with W1 (tied by an import), that of PN4 with W4 (tied by
 * the webhook's status naming W4), the other with no WABA.
 */
export async function expectBackfilledListings(store: Store): Promise<void> {
  const w1 = await listingOf(store, ['W1']);
  expect(w1.sort((a, b) => a.atMs - b.atMs)).toEqual([imported, orphan(5, 'PN1'), update]);
  expect(await listingOf(store, ['W2'])).toEqual([posted]);
  const w4 = await listingOf(store, ['W4']);
  expect(w4.sort((a, b) => a.atMs - b.atMs)).toEqual([named, orphan(7, 'PN4')]);
  expect(await store.listWabas('PN1')).toEqual(['W1']);
  expect(await store.listWabas('PN2')).toEqual([]);
  expect(await store.listWabas('PN4')).toEqual(['W4']);
  expect(await store.countUnattributedStatuses()).toBe(1);
}
