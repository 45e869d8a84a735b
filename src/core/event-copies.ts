// Copies of one event (the same idempotency key, contract §1) are one event: a CRM's copy of an inbound
// message without its `referral`, a send log written twice with different categories, a bare status line
// and Meta's full webhook of the same status. What each copy knows is kept, whichever copy came first, so
// that the order of the input never changes a charge (contract §1: "order of lines does not matter").

import type { CopyField, CoreEvent, TemplateCategory } from './events.js';

export interface MergedCopies {
  event: CoreEvent;
  /**
   * Fields these two copies disagree on, sorted; the value kept is the rule's (see `mergeCopies`), never the
   * first. The merged event's `copiesDisagreeOn` also keeps what earlier merges found.
   */
  disagreements: CopyField[];
}

/**
 * Where two copies of a send log disagree on the category, the one Meta charges most for is kept, so that a
 * bill is never understated without a word: the disagreement becomes a COPIES_DISAGREE finding.
 */
const TEMPLATE_PRECEDENCE: readonly (TemplateCategory | null)[] = [
  'marketing',
  'utility',
  'authentication',
  null,
];

/** Of two categories copies of one message gave, the one kept (TEMPLATE_PRECEDENCE), in either order. */
export function preferredTemplate(
  x: TemplateCategory | null,
  y: TemplateCategory | null,
): TemplateCategory | null {
  return TEMPLATE_PRECEDENCE.indexOf(x) <= TEMPLATE_PRECEDENCE.indexOf(y) ? x : y;
}

/**
 * One event from two copies of it (the same `eventKey`), the same whichever is `a`: the earliest instant;
 * a field one copy lacks is taken from the other; an ad referral, a failure or a delivery that one copy
 * tells of is kept; where both give a field and differ, the smaller value (the costlier category for
 * `template`) is kept and the field is named in `disagreements`. Meta's pricing and conversation objects
 * are evidence: the copy from Meta (with more fields) is kept, with no disagreement named.
 */
export function mergeCopies(a: CoreEvent, b: CoreEvent): MergedCopies {
  if (a.kind !== b.kind) throw new Error(`mergeCopies: ${a.kind} and ${b.kind} are not copies of one event`);
  const disagreements = new Set<CopyField>();
  const merged = { ...a, ...b } as Record<string, unknown>;
  merged.atMs = Math.min(a.atMs, b.atMs);
  const left = a as unknown as Record<string, unknown>;
  const right = b as unknown as Record<string, unknown>;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (key === 'atMs' || key === 'kind' || key === 'copiesDisagreeOn') continue;
    const x = left[key];
    const y = right[key];
    if (x === undefined || y === undefined) {
      merged[key] = x ?? y;
      continue;
    }
    if (sameValue(x, y)) continue;
    merged[key] = pick(key, x, y, disagreements);
  }
  for (const key of Object.keys(merged)) if (merged[key] === undefined) delete merged[key];
  const found = [...disagreements].sort();
  const all = new Set<CopyField>([...disagreedBefore(a), ...disagreedBefore(b), ...found]);
  if (all.size > 0) merged.copiesDisagreeOn = [...all].sort();
  else delete merged.copiesDisagreeOn;
  return { event: merged as unknown as CoreEvent, disagreements: found };
}

function disagreedBefore(event: CoreEvent): readonly CopyField[] {
  return ('copiesDisagreeOn' in event && event.copiesDisagreeOn) || [];
}

function pick(key: string, x: unknown, y: unknown, disagreements: Set<CopyField>): unknown {
  switch (key) {
    case 'hasReferral':
    case 'isFailed':
      return x === true || y === true;
    case 'deliveredAtMs':
      return Math.min(x as number, y as number);
    case 'template':
      disagreements.add('template');
      return preferredTemplate(x as TemplateCategory | null, y as TemplateCategory | null);
    case 'user':
    case 'business':
    case 'templateName':
    case 'userCountryHint':
    case 'scopedUserId':
      disagreements.add(key);
      return smaller(x, y);
    default:
      // Evidence and facts of Meta's own (pricing, conversation, account updates): the fuller copy, then
      // the smaller text, so that the choice does not depend on which came first.
      return smaller(x, y);
  }
}

/**
 * Of two of Meta's pricing (or conversation) objects for one status, the one kept, in either order: the one
 * with more fields, then the smaller text — as `mergeCopies` keeps for copies of one status.
 */
export function preferredEvidence<T extends object>(current: T | undefined, incoming: T): T {
  return current === undefined ? incoming : (smaller(current, incoming) as T);
}

function sameValue(x: unknown, y: unknown): boolean {
  return x === y || (typeof x === 'object' && typeof y === 'object' && canonical(x) === canonical(y));
}

function smaller(x: unknown, y: unknown): unknown {
  if (typeof x === 'string' && typeof y === 'string') return x < y ? x : y;
  const sizeX = typeof x === 'object' && x !== null ? Object.keys(x).length : 0;
  const sizeY = typeof y === 'object' && y !== null ? Object.keys(y).length : 0;
  if (sizeX !== sizeY) return sizeX > sizeY ? x : y;
  return canonical(x) <= canonical(y) ? x : y;
}

/** JSON with object keys sorted, so that two objects with the same fields in another order are equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0)))
      : inner,
  );
}

/** Whether two copies say exactly the same (object keys in any order). */
export function isSameEvent(a: CoreEvent, b: CoreEvent): boolean {
  return canonical(a) === canonical(b);
}
