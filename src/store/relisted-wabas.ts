// Which WABAs' listings (`Store.listEvents`) an ingest changed besides its new and merged events' own WABAs:
// the statuses naming no WABA it moved between scopes (`IngestOutcome.relistedWabas`). Both engines gather the
// same facts inside the ingest's transaction and decide here, alike. It must never miss a WABA whose stored
// bill the ingest made wrong; naming one more only costs a rating.

import type { CoreEvent } from '../core/events.js';
import { tiedBusinessOf } from './engine-checks.js';
import type { EventInput } from './store.js';

/**
 * A stored row an ingest inserted or rewrote (its event, `events.business` or `events.is_trusted`), for the rows
 * that place statuses naming no WABA: inbound and outbound messages (by message id and by business number)
 * and those statuses themselves (`isPlacingRow`).
 */
export interface RowChange {
  /** The row's event after the change. */
  event: CoreEvent;
  /** The row's writer, as first stored (`events.source`): an untrusted message joins its own statuses only. */
  source: string;
  /** The ingest stored the row (no row had its key before). */
  isInserted: boolean;
  /** `events.business` before the change (null when inserted) and after. */
  tieBefore: string | null;
  tie: string | null;
  /** `events.is_trusted` before the change (false when inserted) and after. */
  wasTrusted: boolean;
  isTrusted: boolean;
}

/** A status naming no WABA of some message id, as stored after the ingest's writes. */
export interface UnnamedStatus {
  /** `events.is_trusted` and `events.source`: which messages join it (`messageJoinsStatusSql`). */
  isTrusted: boolean;
  source: string;
  /** The owner of the business number it names, after the writes (`numberOwnerSql`), or null. */
  owner: string | null;
}

/** What an engine reads inside the ingest's transaction, for the rows `RowChange` lists. */
export interface ListingFacts {
  /**
   * Each business number's owner (`numberOwnerSql`; null: none) before the group's first write that could tie
   * or untie it: every number in `tiedNumbersOf` of the group's inputs, and each tie a rewrite takes away.
   */
  ownersBefore: ReadonlyMap<string, string | null>;
  /** The owner after the writes of each number in `numbersLosingTies` (the others are worked out here). */
  ownersAfter: ReadonlyMap<string, string | null>;
  /** The statuses naming no WABA of each message id in `joiningMessageIds`. */
  unnamedStatuses: ReadonlyMap<string, readonly UnnamedStatus[]>;
  /** Every WABA that has events, after the writes: read only when `hasUnnamedStatusChange`. */
  storedWabas: readonly string[];
}

/** The WABAs an outcome names already: of its new and its merged events. */
export function ownWabasOf(outcome: {
  inserted: readonly CoreEvent[];
  merged: readonly CoreEvent[];
}): Set<string> {
  const wabas = new Set<string>();
  for (const event of [...outcome.inserted, ...outcome.merged])
    if (event.waba !== undefined) wabas.add(event.waba);
  return wabas;
}

/** Rows that place statuses naming no WABA: inbound and outbound messages, and those statuses. */
export function isPlacingRow(event: CoreEvent): boolean {
  return event.kind === 'inbound' || event.kind === 'outbound' || isUnnamedStatus(event);
}

function isUnnamedStatus(event: CoreEvent): boolean {
  return event.kind === 'status' && event.waba === undefined;
}

/**
 * The business numbers these inputs may tie (`tiedBusinessOf`: a trusted writer's inbound or outbound naming a
 * user): their owners must be read before the group writes anything (`ListingFacts.ownersBefore`).
 */
export function tiedNumbersOf(inputs: readonly EventInput[]): Set<string> {
  const numbers = new Set<string>();
  for (const input of inputs) {
    const number = tiedBusinessOf(input.event, input.isBusinessTied);
    if (number !== null) numbers.add(number);
  }
  return numbers;
}

/** The business numbers whose ties these changes added or took away. */
function tieChangesOf(changes: readonly RowChange[]): { added: Map<string, Set<string>>; lost: Set<string> } {
  const added = new Map<string, Set<string>>();
  const lost = new Set<string>();
  for (const change of changes) {
    if (change.tie === change.tieBefore) continue;
    if (change.tieBefore !== null) lost.add(change.tieBefore);
    if (change.tie !== null && change.event.waba !== undefined) {
      const wabas = added.get(change.tie);
      if (wabas === undefined) added.set(change.tie, new Set([change.event.waba]));
      else wabas.add(change.event.waba);
    }
  }
  return { added, lost };
}

/** Numbers one of these changes untied: their owner after the writes must be read (`ListingFacts.ownersAfter`). */
export function numbersLosingTies(changes: readonly RowChange[]): string[] {
  return [...tieChangesOf(changes).lost];
}

/**
 * The message ids whose statuses naming no WABA a row of these changes may have come to join: a message stored,
 * or made a trusted writer's (`messageJoinsStatusSql`). Their statuses are read for `ListingFacts`.
 */
export function joiningMessageIds(changes: readonly RowChange[]): string[] {
  const ids = new Set<string>();
  for (const change of changes) {
    const { event } = change;
    if (event.kind !== 'inbound' && event.kind !== 'outbound') continue;
    if (change.isInserted || (change.isTrusted && !change.wasTrusted)) ids.add(event.id);
  }
  return [...ids];
}

/** Whether a status naming no WABA was stored or changed: then every stored WABA may list it differently. */
export function hasUnnamedStatusChange(changes: readonly RowChange[]): boolean {
  return changes.some((change) => isUnnamedStatus(change.event));
}

/**
 * Byte order of UTF-8 (SQLite's BINARY, PostgreSQL's COLLATE "C"): how a number's owner is the smallest. That is
 * code point order, which JavaScript's comparison of UTF-16 code units keeps unless a surrogate pair is met.
 */
function isBefore(a: string, b: string): boolean {
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')) < 0;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * `IngestOutcome.relistedWabas` of each item of a group, from the rows each item changed (`changes`), the WABAs
 * its outcome names already (`ownWabas`: of `inserted` and `merged`), and the facts read in the transaction.
 * Owners are compared before and after the whole group (one transaction: nothing between is ever read).
 */
export function relistedWabas(
  items: readonly { changes: readonly RowChange[]; ownWabas: ReadonlySet<string> }[],
  facts: ListingFacts,
): string[][] {
  const { added, lost } = tieChangesOf(items.flatMap((item) => item.changes));
  /** Owners after the writes worked out from the ties added (`ownerAfter`). */
  const workedOut = new Map<string, string | null>();
  const ownerBefore = (number: string): string | null => {
    const owner = facts.ownersBefore.get(number);
    if (owner === undefined) throw new Error(`the owner of ${number} before the ingest was not read`);
    return owner;
  };
  const ownerAfter = (number: string): string | null => {
    if (lost.has(number)) {
      const owner = facts.ownersAfter.get(number);
      if (owner === undefined) throw new Error(`the owner of ${number} after the ingest was not read`);
      return owner;
    }
    let owner = workedOut.get(number);
    if (owner !== undefined) return owner;
    // Only ties added: the smallest of the owner before and the WABAs that now tie it.
    owner = ownerBefore(number);
    for (const waba of added.get(number) ?? []) if (owner === null || isBefore(waba, owner)) owner = waba;
    workedOut.set(number, owner);
    return owner;
  };
  return items.map(({ changes, ownWabas }) => {
    const relisted = new Set<string>();
    const add = (waba: string | null | undefined) => {
      if (waba !== null && waba !== undefined && !ownWabas.has(waba)) relisted.add(waba);
    };
    let isEveryWaba = false;
    for (const change of changes) {
      const { event } = change;
      if (isUnnamedStatus(event)) {
        isEveryWaba = true;
        continue;
      }
      if (event.kind !== 'inbound' && event.kind !== 'outbound') continue;
      // A tie added or taken away: the number's statuses move when its owner changes.
      for (const number of change.tie === change.tieBefore ? [] : [change.tieBefore, change.tie]) {
        if (number === null) continue;
        const before = ownerBefore(number);
        const after = ownerAfter(number);
        if (before !== after) {
          add(before);
          add(after);
        }
      }
      // A message that came to join statuses naming no WABA takes them from their numbers' owners.
      if (change.isInserted || (change.isTrusted && !change.wasTrusted)) {
        for (const status of facts.unnamedStatuses.get(event.id) ?? []) {
          // messageJoinsStatusSql (store.ts), for the message as it is now.
          const isJoined = change.isTrusted || (!status.isTrusted && change.source === status.source);
          if (!isJoined) continue;
          add(event.waba);
          add(status.owner);
        }
      }
    }
    if (isEveryWaba) for (const waba of facts.storedWabas) add(waba);
    return [...relisted].sort();
  });
}
