// Migration 8's backfill of `events.is_trusted`, checked alike on both stores: what a version-7 store held,
// which rows count as a trusted writer's after the upgrade, and which statuses naming no WABA then join.
import { expect } from 'vitest';
import {
  eventKey,
  type CoreEvent,
  type InboundEvent,
  type OutboundEvent,
  type StatusEvent,
} from '../../src/core/events.js';
import type { EventInput, Store } from '../../src/store/store.js';
import { listingOf } from './store-events.js';

const user = '919876543210';
const hooked: InboundEvent = {
  kind: 'inbound',
  atMs: 0,
  waba: 'W3',
  business: 'PN3',
  user,
  id: 'i0',
  hasReferral: false,
};
const sent = (atMs: number, waba: string, business: string, id: string): OutboundEvent => ({
  kind: 'outbound',
  atMs,
  waba,
  business,
  user,
  id,
  template: 'utility',
});
const imported = sent(1, 'W1', 'PN1', 't1');
/** A key for every WABA: its outbound tied PN2 (migration 7's `business`), so a trusted writer stored it. */
const postedByAll = sent(2, 'W2', 'PN2', 't2');
/** A key limited to W1: nothing in the row says which kind of key wrote it, but it tied nothing. */
const postedByOne = sent(3, 'W1', 'PN1', 't3');
/** Statuses naming no WABA, of those messages. */
const status = (atMs: number, id: string, fields: Partial<StatusEvent> = {}): StatusEvent => ({
  kind: 'status',
  atMs,
  id,
  status: 'delivered',
  ...fields,
});
const ofImported = status(4, 't1');
const ofOwnMessage = status(5, 't3');
const ofOtherWriters = status(6, 't3', { status: 'read', business: 'PN9', user });
const ofTrustedMessage = status(7, 't2');

/** What a version-7 store is given: each event with its source and whether its writer was trusted. */
export const TRUST_BACKFILL_INPUTS: EventInput[] = (
  [
    [hooked, 'webhook', true],
    [imported, 'import', true],
    [postedByAll, 'api:admin', true],
    [postedByOne, 'api:one', false],
    [ofImported, 'import', true],
    [ofOwnMessage, 'api:one', false],
    [ofOtherWriters, 'import', true],
    [ofTrustedMessage, 'api:admin', true],
  ] as [CoreEvent, string, boolean][]
).map(([event, source, isBusinessTied]) => ({
  key: eventKey(event),
  event,
  receivedAtMs: 10,
  source,
  isBusinessTied,
}));

/**
 * `kind, source, is_trusted` of each row after the upgrade, by `at_ms`: a webhook's or an import's rows, and an
 * API key's inbound or outbound that tied its number, are a trusted writer's; no other API key's row is (the
 * key may have been limited to some WABAs), not even a key for every WABA's status.
 */
export const TRUST_BACKFILLED_ROWS: [string, string, boolean][] = [
  ['inbound', 'webhook', true],
  ['outbound', 'import', true],
  ['outbound', 'api:admin', true],
  ['outbound', 'api:one', false],
  ['status', 'import', true],
  ['status', 'api:one', false],
  ['status', 'import', true],
  ['status', 'api:admin', false],
];

/**
 * What the upgraded store lists: the limited key's message joins only its own status; the import's status of
 * it is placed as if its message were stored nowhere (PN9 has no owner: counted); a trusted message joins any
 * writer's status.
 */
export async function expectTrustBackfilledListings(store: Store): Promise<void> {
  const w1 = await listingOf(store, ['W1']);
  expect(w1.sort((a, b) => a.atMs - b.atMs)).toEqual([imported, postedByOne, ofImported, ofOwnMessage]);
  const w2 = await listingOf(store, ['W2']);
  expect(w2.sort((a, b) => a.atMs - b.atMs)).toEqual([postedByAll, ofTrustedMessage]);
  expect(await listingOf(store, ['W3'])).toEqual([hooked]);
  expect(await store.countUnattributedStatuses()).toBe(1);
}
