// Which WABAs' listings (`Store.listEvents`) an ingest changed besides its new and merged events' own WABAs:
// the statuses naming no WABA it moved between scopes (`IngestOutcome.relistedWabas`). Both engines gather the
// same facts inside the ingest's transaction and decide here, alike. It must never miss a WABA whose stored
// bill the ingest made wrong; naming one more only costs a rating.

import { isBeforeInBytes } from '../core/byte-order.js';
import type { CoreEvent, InboundEvent, OutboundEvent, StatusEvent } from '../core/events.js';
import { tiedBusinessOf, tiedUserOf } from './engine-checks.js';
import { MESSAGE_STATUS_WORDS, type EventInput, type IngestItem } from './store.js';

/**
 * A stored row an ingest inserted or rewrote (its event, `events.business` or `events.is_trusted`), for the rows
 * that place statuses naming no WABA: inbound and outbound messages (by message id and by the business number
 * and user they tie), statuses naming their WABA that tie a number and user, and the statuses naming no WABA
 * themselves (`isPlacingRow`).
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
  /** `events.tied_user` before the change (null when inserted or tying nothing) and after. */
  tiedUserBefore: string | null;
  tiedUser: string | null;
  /** `events.is_trusted` before the change (false when inserted) and after. */
  wasTrusted: boolean;
  isTrusted: boolean;
}

/** A status naming no WABA of some message id, as stored after the ingest's writes. */
export interface UnnamedStatus {
  /** `events.is_trusted` and `events.source`: which messages join it (`messageJoinsStatusSql`). */
  isTrusted: boolean;
  source: string;
  /**
   * Where it is listed while its message is stored nowhere, after the writes (`statusPlacementSql`: its number
   * and user's pair owner, else its number's owner), or null.
   */
  owner: string | null;
  /**
   * The WABAs whose stored inbound of its id joins it (`inboundWabasSql`): those that may list it by that inbound,
   * and lose it to a business message of its id or to an inbound of a smaller WABA (`messageInScopeJoinsStatusSql`).
   * Read unless every stored WABA is named anyway (`ListingFacts.unnamedStatusWabas` null): empty then.
   */
  inboundWabas: readonly string[];
}

/** What an engine reads inside the ingest's transaction, for the rows `RowChange` lists. */
export interface ListingFacts {
  /**
   * The owner of each tie key (`tieKey`: a business number, `numberOwnerSql`, or a number and a user,
   * `pairOwnerSql`; null: none) before the group's first write that could tie or untie it: every key in
   * `tiedKeysOf` of the group's inputs, and each key a rewrite ties or unties (`rewrittenTieKeys`).
   */
  ownersBefore: ReadonlyMap<string, string | null>;
  /** The owner after the writes of each key in `keysLosingTies` (the others are worked out here). */
  ownersAfter: ReadonlyMap<string, string | null>;
  /** The statuses naming no WABA of each message id in `joiningMessageIds`. */
  unnamedStatuses: ReadonlyMap<string, readonly UnnamedStatus[]>;
  /**
   * For each message id of a status naming no WABA that the group stored or rewrote (`unnamedStatusIds`), the
   * WABAs that may list its statuses naming no WABA, after the writes (`unnamedStatusWabasOf`); `null` when they
   * were not looked up (more ids × stored WABAs than `UNNAMED_LOOKUP_LIMIT`): then every stored WABA.
   */
  unnamedStatusWabas: ReadonlyMap<string, readonly string[]> | null;
  /** Every WABA that has events, after the writes: read only when `unnamedStatusWabas` is null. */
  storedWabas: readonly string[];
}

/**
 * Whether a group's look-ups for `relistedWabas` are made: unless every item of it said it does not need them
 * (`IngestEventsOptions.isRelistingNeeded: false`, `wameter import`), whose outcomes then name none.
 */
export function isRelistingNeededBy(items: readonly IngestItem[]): boolean {
  return items.some((item) => item.isRelistingNeeded !== false);
}

/**
 * Look-ups (message ids × stored WABAs, each a few key seeks) above which an ingest names every stored WABA
 * for its statuses naming no WABA instead of finding theirs: a bound on the work inside the ingest's
 * transaction (20,000 × 6 seeks ≈ 0.1 s), where naming one WABA too many only costs a rating.
 */
export const UNNAMED_LOOKUP_LIMIT = 20_000;

/**
 * The message ids of the statuses naming no WABA these changes stored or rewrote, each once. A rewrite (a copy
 * merged in, or made a trusted writer's) is looked up as an insert is: a merge that changes its number keeps
 * the number it had in `namesOfCopies` (event-copies.ts), which `unnamedStatusWabasOf`'s numbers read, and the
 * WABAs holding its message are the same whoever wrote it — so the WABAs that may list it after the rewrite
 * include those that listed it before.
 */
export function unnamedStatusIds(changes: readonly RowChange[]): string[] {
  const ids = new Set<string>();
  for (const change of changes) if (isUnnamedStatus(change.event)) ids.add(change.event.id);
  return [...ids];
}

/**
 * The WABAs that may list a status naming no WABA of message id `id` (a superset of `listEvents`' choice,
 * whoever wrote what): every stored WABA holding an event of the id that makes its message known there or is
 * its inbound (`messageKeysSql`: the WABAs `messageInScopeJoinsStatusSql` may list it with), and every WABA tying
 * a business number one of the id's statuses naming no WABA gives or gave (`events.business`: the owners
 * `statusPlacementSql` may place them with, as they were before the group — ties are only added, but by a
 * rewrite whose owners `relistedWabas` names itself — and after). None for an id with no stored status naming
 * no WABA. `holders`: the first, a row per id and WABA; `statuses`: the id's statuses naming no WABA, a row each
 * (`id`, `business`: `$.business`, `names_of_copies`: `$.namesOfCopies`, as JSON text or as read from jsonb) —
 * a status's own number and those its copies named (a merge keeps the smaller number, and the one it replaced
 * only in `namesOfCopies`, event-copies.ts); `tying(number)`: the WABAs tying a number.
 */
export function unnamedStatusWabasOf(
  ids: readonly string[],
  holders: readonly Readonly<Record<string, unknown>>[],
  statuses: readonly Readonly<Record<string, unknown>>[],
  tying: (number: string) => readonly string[],
): Map<string, string[]> {
  const wabas = new Map<string, Set<string>>(ids.map((id) => [id, new Set<string>()]));
  const withStatuses = new Set(statuses.map((row) => String(row.id)));
  for (const row of holders)
    if (withStatuses.has(String(row.id))) wabas.get(String(row.id))?.add(String(row.waba));
  const tiedBy = new Map<string, readonly string[]>();
  for (const { id, business } of numberRowsOf(statuses)) {
    let tied = tiedBy.get(business);
    if (tied === undefined) tiedBy.set(business, (tied = tying(business)));
    for (const waba of tied) wabas.get(id)?.add(waba);
  }
  return new Map([...wabas].map(([id, found]) => [id, [...found].sort()]));
}

/** The business numbers `statuses` give (`unnamedStatusWabasOf`), each once. */
export function numbersOf(statuses: readonly Readonly<Record<string, unknown>>[]): string[] {
  return [...new Set(numberRowsOf(statuses).map((row) => row.business))];
}

/** The numbers of `unnamedStatusWabasOf`'s `statuses`: a row per id and number, each once. */
function numberRowsOf(
  statuses: readonly Readonly<Record<string, unknown>>[],
): { id: string; business: string }[] {
  const seen = new Set<string>();
  const numbers: { id: string; business: string }[] = [];
  const add = (id: string, business: unknown) => {
    if (typeof business !== 'string' || seen.has(tieKey(business, id))) return;
    seen.add(tieKey(business, id));
    numbers.push({ id, business });
  };
  for (const row of statuses) {
    const id = String(row.id);
    add(id, row.business);
    const copies: unknown =
      typeof row.names_of_copies === 'string' ? JSON.parse(row.names_of_copies) : row.names_of_copies;
    if (Array.isArray(copies))
      for (const names of copies as unknown[])
        if (typeof names === 'object' && names !== null) add(id, (names as { business?: unknown }).business);
  }
  return numbers;
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

/**
 * Rows that may place statuses naming no WABA: inbound and outbound messages, statuses naming their WABA (they
 * count once they tie a number: `isPlacingChange`), and those statuses.
 */
export function isPlacingRow(event: CoreEvent): boolean {
  return event.kind === 'inbound' || event.kind === 'outbound' || event.kind === 'status';
}

/**
 * Whether a change of a placing row counts: a status naming its WABA only when it ties a number, before or
 * after (a webhook of statuses that tie nothing adds no look-up).
 */
export function isPlacingChange(change: RowChange): boolean {
  const { event } = change;
  if (event.kind !== 'status' || event.waba === undefined) return isPlacingRow(event);
  return change.tie !== null || change.tieBefore !== null;
}

/**
 * The key of a tie in `ListingFacts`: a business number alone (its owner, `numberOwnerSql`), or a number and a
 * user (the pair's owner, `pairOwnerSql`), NUL between them (no id holds one: the event parser refuses it).
 */
export function tieKey(number: string, user: string | null = null): string {
  return user === null ? number : `${number}\u0000${user}`;
}

/** A tie key as `tieKey` made it: the number, and the user or null. */
export function splitTieKey(key: string): [string, string | null] {
  const at = key.indexOf('\u0000');
  return at < 0 ? [key, null] : [key.slice(0, at), key.slice(at + 1)];
}

/** The tie keys of a row tying `tie` (a number, or null) with `user`: the number's, and the pair's. */
function keysOfTie(tie: string | null, user: string | null): string[] {
  if (tie === null) return [];
  return user === null ? [tieKey(tie)] : [tieKey(tie), tieKey(tie, user)];
}

function isUnnamedStatus(event: CoreEvent): event is StatusEvent {
  return event.kind === 'status' && event.waba === undefined;
}

/**
 * The tie keys (`tieKey`: numbers, and numbers with users) these inputs may tie as inserted (`tiedBusinessOf`:
 * a trusted writer's inbound or outbound naming a user, or status naming its WABA, a number and a user): their
 * owners must be read before the group writes anything (`ListingFacts.ownersBefore`).
 */
export function tiedKeysOf(inputs: readonly EventInput[]): Set<string> {
  const keys = new Set<string>();
  for (const input of inputs) {
    const number = tiedBusinessOf(input.event, input.isBusinessTied);
    for (const key of keysOfTie(number, tiedUserOf(input.event, number))) keys.add(key);
  }
  return keys;
}

/**
 * The tie keys a rewrite of a stored row (`change`, not inserted) ties or unties: their owners before it must
 * be read before it is written, when no earlier read has them (a merge may tie a pair no input names: a copy's
 * number with the stored row's smaller user).
 */
export function rewrittenTieKeys(change: RowChange): string[] {
  if (change.isInserted || !isTieChanged(change)) return [];
  return [...keysOfTie(change.tieBefore, change.tiedUserBefore), ...keysOfTie(change.tie, change.tiedUser)];
}

function isTieChanged(change: RowChange): boolean {
  return change.tie !== change.tieBefore || change.tiedUser !== change.tiedUserBefore;
}

/** The tie keys these changes added (with the WABAs now tying them) or took away. */
function tieChangesOf(changes: readonly RowChange[]): { added: Map<string, Set<string>>; lost: Set<string> } {
  const added = new Map<string, Set<string>>();
  const lost = new Set<string>();
  for (const change of changes) {
    if (!isTieChanged(change)) continue;
    const before = keysOfTie(change.tieBefore, change.tiedUserBefore);
    const after = keysOfTie(change.tie, change.tiedUser);
    for (const key of before) if (!after.includes(key)) lost.add(key);
    if (change.event.waba === undefined) continue;
    for (const key of after) {
      if (before.includes(key)) continue;
      const wabas = added.get(key);
      if (wabas === undefined) added.set(key, new Set([change.event.waba]));
      else wabas.add(change.event.waba);
    }
  }
  return { added, lost };
}

/** Tie keys one of these changes untied: their owner after the writes must be read (`ListingFacts.ownersAfter`). */
export function keysLosingTies(changes: readonly RowChange[]): string[] {
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
    if (!isJoiningMessage(event)) continue;
    if (change.isInserted || (change.isTrusted && !change.wasTrusted)) ids.add(event.id);
  }
  return [...ids];
}

/**
 * An event that makes its message known in its WABA, so that statuses naming no WABA join it
 * (`messageKeysSql`): an inbound or outbound, or a status naming its WABA with one of `MESSAGE_STATUS_WORDS`.
 */
export function isJoiningMessage(event: CoreEvent): event is InboundEvent | OutboundEvent | StatusEvent {
  if (event.kind === 'inbound' || event.kind === 'outbound') return true;
  return event.kind === 'status' && event.waba !== undefined && MESSAGE_STATUS_WORDS.includes(event.status);
}

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
  const ownerBefore = (key: string): string | null => {
    const owner = facts.ownersBefore.get(key);
    if (owner === undefined)
      throw new Error(`the owner of ${JSON.stringify(key)} before the ingest was not read`);
    return owner;
  };
  const ownerAfter = (key: string): string | null => {
    if (lost.has(key)) {
      const owner = facts.ownersAfter.get(key);
      if (owner === undefined)
        throw new Error(`the owner of ${JSON.stringify(key)} after the ingest was not read`);
      return owner;
    }
    let owner = workedOut.get(key);
    if (owner !== undefined) return owner;
    // Only ties added: the smallest of the owner before and the WABAs that now tie it.
    owner = ownerBefore(key);
    for (const waba of added.get(key) ?? []) if (owner === null || isBeforeInBytes(waba, owner)) owner = waba;
    workedOut.set(key, owner);
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
        // The WABAs that listed it before and list it after are among those that may list a status of its id.
        if (facts.unnamedStatusWabas === null) isEveryWaba = true;
        else for (const waba of facts.unnamedStatusWabas.get(event.id) ?? []) add(waba);
        continue;
      }
      // A tie added or taken away: a number's statuses move when its owner changes (those whose pair has no
      // owner), and a number and user's when their placement does (statusPlacementSql: the pair's owner, else
      // the number's).
      if (isTieChanged(change)) {
        const ties: [string | null, string | null][] = [
          [change.tieBefore, change.tiedUserBefore],
          [change.tie, change.tiedUser],
        ];
        for (const [number, user] of ties) {
          if (number === null) continue;
          const before = ownerBefore(tieKey(number));
          const after = ownerAfter(tieKey(number));
          if (before !== after) {
            add(before);
            add(after);
          }
          if (user === null) continue;
          const placedBefore = ownerBefore(tieKey(number, user)) ?? before;
          const placedAfter = ownerAfter(tieKey(number, user)) ?? after;
          if (placedBefore !== placedAfter) {
            add(placedBefore);
            add(placedAfter);
          }
        }
      }
      if (!isJoiningMessage(event)) continue;
      // A message that came to join statuses naming no WABA takes them from their numbers' owners.
      if (change.isInserted || (change.isTrusted && !change.wasTrusted)) {
        for (const status of facts.unnamedStatuses.get(event.id) ?? []) {
          // messageJoinsStatusSql (store.ts), for the message as it is now.
          const isJoined = change.isTrusted || (!status.isTrusted && change.source === status.source);
          if (!isJoined) continue;
          add(event.waba);
          add(status.owner);
          for (const waba of status.inboundWabas) add(waba);
        }
      }
    }
    if (isEveryWaba) for (const waba of facts.storedWabas) add(waba);
    return [...relisted].sort();
  });
}
