// Copies of one event (the same idempotency key, contract §1) are one event: a CRM's copy of an inbound
// message without its `referral`, a send log written twice with different categories, a bare status line
// and Meta's full webhook of the same status. What each copy knows is kept, whichever copy came first, so
// that the order of the input never changes a charge (contract §1: "order of lines does not matter").

import type {
  CopyField,
  CoreEvent,
  InboundEvent,
  StatusEvent,
  StatusNames,
  TemplateCategory,
} from './events.js';

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
  const isStatus = a.kind === 'status';
  // Copies of one user's message, one naming the business-scoped id alone, the other the number with that
  // id: one user, whose key is the number (a batch joins the id to it before comparing copies).
  const pairedNumber = a.kind === 'inbound' && b.kind === 'inbound' ? numberPairedBy(a, b) : undefined;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (key === 'atMs' || key === 'kind' || key === 'copiesDisagreeOn' || key === 'namesOfCopies') continue;
    const x = left[key];
    const y = right[key];
    if (x === undefined || y === undefined) {
      merged[key] = x ?? y;
      continue;
    }
    if (sameValue(x, y)) continue;
    // Copies of one status naming the recipient otherwise are no disagreement of copies: `wameter rate`
    // reads each (a business-scoped id and its number are one user; two numbers of two countries are
    // RECIPIENT_DISAGREES), and the rater reads the row's `namesOfCopies` as it reads them.
    if (key === 'user' && pairedNumber !== undefined) merged.user = pairedNumber;
    else
      merged[key] = isStatus && STATUS_NAME_FIELDS.has(key) ? smaller(x, y) : pick(key, x, y, disagreements);
  }
  if (isStatus) {
    const names = namesOfCopies(a as StatusEvent, b as StatusEvent);
    if (names.length > 1) merged.namesOfCopies = names;
    else delete merged.namesOfCopies;
  }
  for (const key of Object.keys(merged)) if (merged[key] === undefined) delete merged[key];
  const found = [...disagreements].sort();
  const all = new Set<CopyField>([...disagreedBefore(a), ...disagreedBefore(b), ...found]);
  if (all.size > 0) merged.copiesDisagreeOn = [...all].sort();
  else delete merged.copiesDisagreeOn;
  return { event: merged as unknown as CoreEvent, disagreements: found };
}

/** The number of two inbound copies where one names it with a business-scoped id the other names alone. */
function numberPairedBy(a: InboundEvent, b: InboundEvent): string | undefined {
  if (a.scopedUserId !== undefined && a.scopedUserId === b.user && b.scopedUserId === undefined)
    return a.user;
  if (b.scopedUserId !== undefined && b.scopedUserId === a.user && a.scopedUserId === undefined)
    return b.user;
  return undefined;
}

/** The fields in which a status names its recipient (`StatusNames`). */
const STATUS_NAME_FIELDS: ReadonlySet<string> = new Set([
  'business',
  'user',
  'userCountryHint',
  'scopedUserId',
]);

/**
 * What each copy of two merged statuses named (a merged row's `namesOfCopies`, else its own), once each,
 * sorted, when two of them name the recipient otherwise (else none); without a copy that names only what
 * another names too (a bare status line beside Meta's copy): read again, it would tell the rater nothing.
 */
function namesOfCopies(a: StatusEvent, b: StatusEvent): StatusNames[] {
  const byText = new Map<string, StatusNames>();
  for (const names of [...namesOf(a), ...namesOf(b)]) byText.set(canonical(names), names);
  const all = [...byText.values()];
  if (!hasConflict(all)) return [];
  const kept = all.filter((names) => !all.some((other) => other !== names && namesWithin(names, other)));
  return kept
    .map((names) => [canonical(names), names] as const)
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([, names]) => names);
}

/**
 * Whether two of the copies give one field different values: else the merged status, naming what each copy
 * named, says all they say (a bare status line, Meta's copy with the number, another with the country).
 */
function hasConflict(all: readonly StatusNames[]): boolean {
  const seen = new Map<string, string>();
  for (const names of all) {
    for (const [field, value] of Object.entries(names) as [string, string][]) {
      const known = seen.get(field);
      if (known !== undefined && known !== value) return true;
      seen.set(field, value);
    }
  }
  return false;
}

/** Whether every name `inner` gives, `outer` gives the same. */
function namesWithin(inner: StatusNames, outer: StatusNames): boolean {
  return (Object.keys(inner) as (keyof StatusNames)[]).every((field) => inner[field] === outer[field]);
}

function namesOf(event: StatusEvent): readonly StatusNames[] {
  if (event.namesOfCopies !== undefined && event.namesOfCopies.length > 0) return event.namesOfCopies;
  const names: StatusNames = {};
  if (event.business !== undefined) names.business = event.business;
  if (event.user !== undefined) names.user = event.user;
  if (event.userCountryHint !== undefined) names.userCountryHint = event.userCountryHint;
  if (event.scopedUserId !== undefined) names.scopedUserId = event.scopedUserId;
  return [names];
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
