// Turns one parsed JSON value — a contract event line (contract.md §1) or a whole Meta webhook body
// (webhooks.md) — into core events. Pure and hot (runs once per line of multi-million-line files): no I/O,
// no regexes per field, no object spreading. It never throws for bad input; it answers with a Result (a
// seeded property test feeds it mutated real bodies to keep that true).

import { isAscii } from 'node:buffer';
import { instantMs, isMonth, whyNotAnInstant } from '../core/calendar.js';
import type {
  AccountUpdateEvent,
  CoreEvent,
  DeliveryStatus,
  InboundEvent,
  MetaConversationEvidence,
  MetaPricingEvidence,
  OutboundEvent,
  StatusEvent,
  TemplateCategory,
  TemplateCategoryUpdateEvent,
} from '../core/events.js';
import { isTemplateCategory } from '../core/events.js';
import { err, ok, type Result } from '../core/result.js';
import { normalisePhone } from '../core/phone.js';

/** A value (or one item inside a webhook body) that cannot become an event; the message names the field. */
export interface ParseError {
  code: 'BAD_EVENT';
  message: string;
}

/** Items that are valid but are not billing events (group statuses, system messages, unknown fields…). */
export interface IgnoredCount {
  reason: string;
  count: number;
}

export interface ParsedItem {
  events: CoreEvent[];
  /** What was skipped on purpose, counted by reason. */
  ignored: readonly IgnoredCount[];
  /**
   * Items of a webhook body that could not be read (e.g. one status without an id). The rest of the body is
   * still in `events`: one bad item never costs the others. Always empty for a contract event line.
   */
  rejected: readonly ParseError[];
}

/** Stable reasons for `ParsedItem.ignored`. */
export const IGNORED = {
  groupStatus: 'status of a message to a group (groups are not billed as 1:1 messages)',
  groupMessage: 'message written in a group (does not open a 1:1 customer service window)',
  systemMessage: 'system message (e.g. the user changed number): not a message from the user',
  valueErrors: 'errors[] in a messages value (Meta reports a problem; it is not a billing event)',
  pendingCategoryNotice:
    'template_category_update announcing a future change (correct_category): the change comes in its own webhook',
} as const;

const EMPTY: readonly never[] = Object.freeze([]);
const TEMPLATE_CATEGORIES = 'marketing, utility, authentication, or null for a non-template message';
const LINE_KINDS = '"inbound", "outbound" or "status"';
/** The status words of a contract status line (contract.md §1). */
const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['sent', 'delivered', 'read', 'failed'];
const STATUS_WORDS = 'sent, delivered, read or failed';

type Rec = Record<string, unknown>;

function isRecord(value: unknown): value is Rec {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bad(message: string): ParseError {
  return { code: 'BAD_EVENT', message };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  // Strings quoted; anything else as JavaScript prints it (JSON.stringify would fail on a BigInt).
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value as number);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const NUMBER_ID_HINT = ': write ids as JSON strings, numbers lose digits beyond 15';

/** A required field was missing or of the wrong type: say which, what it is, and what was there. */
function needField(where: string, field: string, what: string, actual: unknown): ParseError {
  if (actual === undefined) return bad(`${where} needs "${field}" (${what})`);
  const hint = typeof actual === 'number' ? NUMBER_ID_HINT : '';
  return bad(`${where} "${field}" must be a non-empty string (${what}), not ${describe(actual)}${hint}`);
}

/** Whether an optional id field holds something other than a string (absent, null and "" are "not given"). */
/** The user's wa_id or business-scoped id written as a number (or another non-string): refused by name. */
function mistypedUserId(
  where: string,
  item: Record<string, unknown>,
  waIdField: string,
  scopedField: string,
): ParseError | undefined {
  if (isMistypedId(item[waIdField])) return needField(where, waIdField, "the user's wa_id", item[waIdField]);
  if (isMistypedId(item[scopedField])) {
    return needField(where, scopedField, 'the business-scoped user id', item[scopedField]);
  }
  return undefined;
}

function isMistypedId(value: unknown): boolean {
  return value !== undefined && value !== null && typeof value !== 'string';
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The most UTF-8 bytes an id may have: a WABA id, a business number's phone_number_id, a user's wa_id or
 * business-scoped id, a message's wamid, a webhook's status word or category. Real ones are far shorter
 * (Meta's ids are digits, wa_ids 15 digits at most, wamids base64 of some 30 to 60 bytes, business-scoped ids
 * about 70 characters). A longer one is no id: stored, it would break the PostgreSQL store's indexes (an index
 * entry holds at most 2,704 bytes; an idempotency key holds a WABA id twice and a template name), and with
 * them every later rating. Every store refuses it alike by never being given it (docs/storage.md).
 */
export const MAX_ID_BYTES = 256;
/** The most UTF-8 bytes a template name may have: Meta's own limit for template names (512 characters). */
export const MAX_TEMPLATE_NAME_BYTES = 512;

/** What a string field is (for its error) and the most UTF-8 bytes it may have. */
interface TextLimit {
  noun: string;
  limit: number;
}
const AN_ID: TextLimit = { noun: 'an id', limit: MAX_ID_BYTES };
const A_TEMPLATE_NAME: TextLimit = { noun: 'a template name', limit: MAX_TEMPLATE_NAME_BYTES };
/** Meta's words kept as written (a status word, a template category): held to the limit of ids. */
const A_WORD: TextLimit = { noun: "a word of Meta's", limit: MAX_ID_BYTES };

/**
 * Why a string read from the input cannot be kept as `field` of an event: more bytes than `kind` allows, or a
 * NUL character (U+0000), which PostgreSQL keeps in no text and no JSON; undefined when it can. Hot path: an id
 * of at most a third of the limit in UTF-16 units (every real one) is never measured, and U+0000 is looked
 * for by the engine's own scan — unless `isTextPlain` says that no string of the value can hold one.
 */
function textProblem(
  where: string,
  field: string,
  value: string,
  kind: TextLimit = AN_ID,
  isTextPlain = false,
): ParseError | undefined {
  if (value.length * 3 > kind.limit) {
    const bytes = utf8Length(value);
    if (bytes > kind.limit) {
      return bad(
        `${where} "${field}" is too long: ${bytes} bytes, where ${kind.noun} has at most ${kind.limit} (UTF-8; real ones are far shorter); it begins ${describe(value)}`,
      );
    }
  }
  if (isTextPlain) return undefined;
  // One look for NUL and every other control character (hot path: a compiled character class).
  const control = CONTROL_CHARACTER.exec(value);
  if (control === null) return isWellFormed(value) ? undefined : nulError(where, field, value);
  if (control[0] === '\u0000') return nulError(where, field, value);
  const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  return bad(
    `${where} "${field}" holds a control character (U+${code}), which no id has: ${describe(value)}`,
  );
}

/**
 * A control character (U+0000–U+001F, U+007F–U+009F). None is in any real id, and one printed (a line feed, an
 * escape sequence) would forge lines of wameter's output or drive the reader's terminal; so an id holding one
 * is refused, as one holding NUL is.
 */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * A NUL character (U+0000), or a lone UTF-16 surrogate (an unpaired `\ud800`–`\udfff` escape: no character
 * at all): PostgreSQL keeps neither in text or JSON, and no real value holds one.
 */
function isUnstorable(value: string): boolean {
  return value.includes('\u0000') || !isWellFormed(value);
}

const isWellFormed = (value: string): boolean =>
  (String.prototype as unknown as { isWellFormed(this: string): boolean }).isWellFormed.call(value);

/** What makes `value` unstorable, in words. */
function unstorableWhat(value: string): string {
  return value.includes('\u0000')
    ? 'a NUL character (U+0000)'
    : 'a lone UTF-16 surrogate (an unpaired \\ud800–\\udfff escape)';
}

function nulError(where: string, field: string, value: string): ParseError {
  return bad(
    `${where} "${field}" holds ${unstorableWhat(value)}, which no real value has: ${describe(value)}`,
  );
}

/** A string's length in UTF-8 bytes, as a store writes it (a lone surrogate becomes U+FFFD: 3 bytes). */
function utf8Length(value: string): number {
  let bytes = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Whether the JSON text in `bytes` is plain: ASCII without a backslash or DEL (0x7F). JSON allows no raw
 * control character inside a string, and without a backslash no string holds an escape, so no string parsed
 * from such text (key or value) holds a control character (U+0000–U+001F, U+007F–U+009F) or a lone
 * surrogate: nothing `textProblem` and `holdsNul` look for (`parseEventValue`'s `isTextPlain`). Native scans,
 * made once for a whole chunk of a file: looking at each string of each line cost the reader ≈ 7 % of its
 * instructions.
 */
export function isPlainJsonText(bytes: Uint8Array): boolean {
  return isAscii(bytes) && bytes.indexOf(0x5c) === -1 && bytes.indexOf(0x7f) === -1;
}

/** A webhook status's word (`sent`, `delivered`…, or another of Meta's), read as a required id is. */
function statusWord(where: string, status: Rec, isTextPlain: boolean): string | ParseError {
  return requiredId(where, 'status', 'sent, delivered, read, failed…', status.status, A_WORD, isTextPlain);
}

/** A required id: a non-empty string (else `needField`) that `textProblem` finds nothing wrong with. */
function requiredId(
  where: string,
  field: string,
  what: string,
  value: unknown,
  kind: TextLimit = AN_ID,
  isTextPlain = false,
): string | ParseError {
  const text = nonEmptyString(value);
  if (text === undefined) return needField(where, field, what, value);
  return textProblem(where, field, text, kind, isTextPlain) ?? text;
}

/** A string that is kept but is no id (a tier name, a country code…): refused only for a NUL character. */
function nulProblem(where: string, field: string, value: string | undefined): ParseError | undefined {
  return value !== undefined && isUnstorable(value) ? nulError(where, field, value) : undefined;
}

/** Epoch ms, or the error naming the field. calendar's instantMs is the one rule for every instant. */
function instantField(where: string, field: string, value: unknown): number | ParseError {
  const atMs = instantMs(value);
  if (atMs !== undefined) return atMs;
  if (value === undefined) return bad(`${where} needs "${field}" (ISO-8601 with an offset, or Unix seconds)`);
  return bad(`${where} "${field}": ${whyNotAnInstant(value)}`);
}

function addIgnored(list: IgnoredCount[], reason: string, count = 1): void {
  for (let i = 0; i < list.length; i++) {
    const item = list[i]!;
    if (item.reason === reason) {
      item.count += count;
      return;
    }
  }
  list.push({ reason, count });
}

/**
 * One parsed JSON value → core events. A contract event line gives one event; a webhook body gives as many
 * as it batches (possibly none). Values that are neither are a `BAD_EVENT` error naming what is wrong.
 * `isTextPlain`: the value was parsed from plain text (`isPlainJsonText`), so its strings are not looked at
 * for control characters and lone surrogates (none can be there); the answer is the same either way.
 */
export function parseEventValue(value: unknown, isTextPlain = false): Result<ParsedItem, ParseError> {
  try {
    return parseValue(value, isTextPlain);
  } catch (error) {
    // A value nested thousands deep (valid JSON) overflows the stack where it is described or copied: it is
    // no event line nor webhook body, and is refused as such rather than crashing the reader.
    if (error instanceof RangeError)
      return err(bad(`the value is nested too deep to be an event (${error.message})`));
    throw error;
  }
}

/** The deepest nesting a value read from outside may have (Meta's bodies go about 8 deep). */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether a parsed JSON value nests objects and arrays deeper than `limit` (iteratively: no recursion, so any
 * depth is measured). For what the service takes from outside, before anything walks or copies it.
 */
export function isNestedDeeperThan(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: item, depth } = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth + 1 > limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (child !== null && typeof child === 'object') stack.push({ value: child, depth: depth + 1 });
    }
  }
  return false;
}

/**
 * Whether JSON text nests objects and arrays deeper than `limit`, read before `JSON.parse`: one pass over the
 * characters (strings skipped, escapes included), so that a body of millions of brackets is refused in
 * milliseconds instead of costing the parser seconds of the server's thread. Text that is not JSON may pass;
 * the parser says what is wrong with it.
 */
export function isTextNestedDeeperThan(text: string, limit = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  return someCharOutsideStrings(text, (c) => {
    if (c === 0x7b || c === 0x5b) return ++depth > limit;
    if (c === 0x7d || c === 0x5d) depth--;
    return false;
  });
}

/**
 * Whether `test` holds for a character of JSON text outside its strings (escapes included), in order; stops
 * at the first. The one pass the checks made before `JSON.parse` share.
 */
function someCharOutsideStrings(text: string, test: (charCode: number) => boolean): boolean {
  let isInString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isInString) {
      if (c === 0x5c)
        i++; // a backslash: the next character is escaped
      else if (c === 0x22) isInString = false;
    } else if (c === 0x22) {
      isInString = true;
    } else if (test(c)) {
      return true;
    }
  }
  return false;
}

/**
 * The most JSON values (objects, arrays, strings, numbers…) one webhook body may hold. Meta batches at most
 * 1,000 updates in a webhook, a few dozen values each (a body of 1,000 statuses holds about 15,000). Reading
 * each item of a body takes microseconds and memory for its rejection: a signed 4 MiB body of 1.4 million
 * empty statuses (`{}`) held the server's thread for 13 s and took 800 MB, Meta's webhooks waiting — and a
 * client's API key could post the same as one line of `POST /v1/events` (18 s). Such a body is not read.
 */
export const MAX_WEBHOOK_VALUES = 100_000;

/** Why a webhook body (or an event line) holding more than MAX_WEBHOOK_VALUES values is not read. */
export const TOO_MANY_VALUES_MESSAGE = `holds more than ${MAX_WEBHOOK_VALUES} JSON values, more than any event line or webhook body (Meta batches at most 1,000 updates, a few dozen values each, in a webhook): not read`;

/** Whether a parsed JSON value holds more than `limit` values (itself included), walked no further than that. */
export function holdsMoreValuesThan(value: unknown, limit: number): boolean {
  if (limit < 1) return true;
  let count = 1;
  // Hot path (every webhook body read): children visited in place, no array of values made per object.
  const stack: object[] = [];
  if (value !== null && typeof value === 'object') stack.push(value);
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) {
        if (++count > limit) return true;
        const child: unknown = item[i];
        if (child !== null && typeof child === 'object') stack.push(child);
      }
      continue;
    }
    const record = item as Record<string, unknown>;
    for (const key in record) {
      if (++count > limit) return true;
      const child = record[key];
      if (child !== null && typeof child === 'object') stack.push(child);
    }
  }
  return false;
}

/**
 * Whether JSON text surely holds more than `limit` values, read before `JSON.parse` (one pass, strings
 * skipped): it counts the commas between values, and an array or object of k values has k - 1 of them, so
 * the text holds more values than commas. A text refused here is refused by `holdsMoreValuesThan` once parsed.
 */
export function isTextHoldingMoreValuesThan(text: string, limit: number): boolean {
  let commas = 0;
  return someCharOutsideStrings(text, (c) => c === 0x2c && ++commas >= limit);
}

/**
 * What `isTextNestedDeeperThan(text, depthLimit)` and then `isTextHoldingMoreValuesThan(text, valueLimit)` say
 * of one text, in one pass over it where they make one each (the webhook route asks both of every body, before
 * `JSON.parse`, on the server's thread): `'too_deep'` when the first holds, else `'too_many_values'` when the
 * second does, else null.
 */
export function textOverLimits(
  text: string,
  depthLimit: number,
  valueLimit: number,
): 'too_deep' | 'too_many_values' | null {
  let depth = 0;
  let commas = 0;
  const isTooDeep = someCharOutsideStrings(text, (c) => {
    if (c === 0x7b || c === 0x5b) return ++depth > depthLimit;
    if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c) commas++;
    return false;
  });
  if (isTooDeep) return 'too_deep';
  // isTextHoldingMoreValuesThan holds once a comma brings the count to the limit: at the first comma for a
  // limit of 1 or less, never without one.
  return commas >= Math.max(1, valueLimit) ? 'too_many_values' : null;
}

function parseValue(value: unknown, isTextPlain: boolean): Result<ParsedItem, ParseError> {
  if (!isRecord(value)) {
    return err(
      bad(
        `expected an event line ({"kind":…}) or a webhook body ({"object":"whatsapp_business_account",…}), not ${describe(value)}`,
      ),
    );
  }
  const line = parseContractLine(value, isTextPlain);
  if (line !== undefined) {
    if ('code' in line) return err(line);
    return ok({ events: [line], ignored: EMPTY, rejected: EMPTY });
  }
  if (value.object !== undefined || value.entry !== undefined) return parseWebhookBody(value, isTextPlain);
  return err(
    bad(
      `${whatIsIt(value)}not an event line (needs "kind": ${LINE_KINDS}) nor a webhook body (needs "object":"whatsapp_business_account")`,
    ),
  );
}

/**
 * A contract event line (a value with "kind") → its one event, or the error naming the field; `undefined`
 * when the value is not a contract line (use parseEventValue). The file reader's fast path: most lines are
 * contract lines, and this answers them without parseEventValue's Result and ParsedItem wrappers.
 * `isTextPlain` as parseEventValue's.
 */
export function parseContractLine(value: unknown, isTextPlain = false): CoreEvent | ParseError | undefined {
  if (!isRecord(value)) return undefined;
  const kind = value.kind;
  if (kind === undefined) return undefined;
  if (kind === 'status') return parseStatusLine(value, isTextPlain);
  if (kind === 'outbound') return parseOutboundLine(value, isTextPlain);
  if (kind === 'inbound') return parseInboundLine(value, isTextPlain);
  return bad(`"kind" must be ${LINE_KINDS}, not ${describe(kind)}`);
}

/** The fields of each kind of event line (contract §1); `unknownLineFields` names the others. */
const LINE_FIELDS: Readonly<Record<'inbound' | 'outbound' | 'status', ReadonlySet<string>>> = {
  inbound: new Set(['kind', 'at', 'waba', 'business', 'user', 'id', 'referral']),
  outbound: new Set([
    'kind',
    'at',
    'waba',
    'business',
    'user',
    'id',
    'template',
    'template_name',
    'delivered_at',
    'failed',
  ]),
  status: new Set(['kind', 'at', 'waba', 'business', 'user', 'id', 'status', 'pricing', 'conversation']),
};

/** How many of its kind's contract fields an event line has (given, null included). */
function contractFieldsIn(kind: 'inbound' | 'outbound' | 'status', line: Rec): number {
  const has = (value: unknown) => (value === undefined ? 0 : 1);
  const common = 2 + has(line.waba) + has(line.business) + has(line.user) + has(line.id); // kind, at
  if (kind === 'inbound') return common + has(line.referral);
  if (kind === 'outbound') {
    return common + has(line.template) + has(line.template_name) + has(line.delivered_at) + has(line.failed);
  }
  return common + has(line.status) + has(line.pricing) + has(line.conversation);
}

/** Fields people give under another name, and the contract's (contract §1). */
const LINE_FIELD_HINTS: Readonly<Record<string, string>> = {
  category: 'template',
  template_category: 'template',
  type: 'template',
  delivered: 'delivered_at',
  deliveredAt: 'delivered_at',
  delivery_at: 'delivered_at',
  timestamp: 'at',
  wamid: 'id',
  recipient: 'user',
  recipient_id: 'user',
  from: 'user',
};

/** A field of an event line that the contract does not name (`unknownLineFields`). */
export interface UnknownLineField {
  kind: 'inbound' | 'outbound' | 'status';
  field: string;
  /** The contract's field people mean by this name (`category` → `template`), when it is a common slip. */
  didYouMean?: string;
}

/**
 * The fields of an event line `value` (read as `line`) that the contract does not name; undefined when there
 * is none (the usual case: its keys counted once). Such a field is not read: a send log that names a
 * template's category `category` instead of `template` rates its templates as free messages, so the reader
 * tells it (`EventSink.onIgnored`, in the words of `unknownLineFieldWords`) and the service answers it.
 */
export function unknownLineFields(line: CoreEvent, value: unknown): UnknownLineField[] | undefined {
  if (line.kind !== 'inbound' && line.kind !== 'outbound' && line.kind !== 'status') return undefined;
  const record = value as Rec;
  // Hot path: as many keys as the contract fields the line has means none other (a look-up each costs more).
  let keys = 0;
  for (const _key in record) keys += 1;
  if (keys <= contractFieldsIn(line.kind, record)) return undefined;
  const known = LINE_FIELDS[line.kind];
  let unknown: UnknownLineField[] | undefined;
  for (const key in record) {
    if (known.has(key)) continue;
    const field: UnknownLineField = { kind: line.kind, field: key };
    // Only a field this kind of line has: `category` on a status line is no slip for `template`.
    const meant = Object.hasOwn(LINE_FIELD_HINTS, key) ? LINE_FIELD_HINTS[key]! : undefined;
    if (meant !== undefined && known.has(meant)) field.didYouMean = meant;
    (unknown ??= []).push(field);
  }
  return unknown;
}

/** `field "category" of outbound lines, which the event-line contract does not name (not read; …)`. */
export function unknownLineFieldWords({ kind, field, didYouMean }: UnknownLineField): string {
  const hint = didYouMean === undefined ? '' : `; did you mean "${didYouMean}"?`;
  return `field ${JSON.stringify(field)} of ${kind} lines, which the event-line contract does not name (not read${hint})`;
}

/** Names the look-alikes people feed by mistake (only on the error path). */
function whatIsIt(value: Rec): string {
  const lookalike = lookalikeOf(value);
  if (lookalike === 'analytics export')
    return 'a Meta analytics export (use it with `wameter reconcile --analytics`), ';
  if (lookalike === 'webhook fragment')
    return `a fragment of a webhook (send the whole body, ${WEBHOOK_SHAPE}), `;
  if (lookalike === 'accounts file') return 'an accounts file (give it with `--accounts`), ';
  return '';
}

const WEBHOOK_SHAPE = '{"object":"whatsapp_business_account","entry":[…]}';

function lookalikeOf(value: Rec): 'analytics export' | 'webhook fragment' | 'accounts file' | undefined {
  // Contract §2's file (a folder of traffic holds it too: `wameter rate examples/month`).
  if (Array.isArray(value.accounts)) return 'accounts file';
  if (
    value.conversation_analytics !== undefined ||
    value.pricing_analytics !== undefined ||
    Array.isArray(value.data)
  )
    return 'analytics export';
  if (
    value.pricing !== undefined ||
    value.conversation !== undefined ||
    value.statuses !== undefined ||
    value.messages !== undefined
  )
    return 'webhook fragment';
  return undefined;
}

/**
 * Why a JSON value that `parseEventValue` refused is not a webhook body, in words for Meta's webhook route,
 * which takes webhook bodies only: sentences about webhook bodies (never about event lines, which that route
 * is not the place for), each starting with a capital and ending with a full stop. Error path only.
 */
export function notAWebhookBody(value: unknown, error: ParseError): string {
  if (!isRecord(value)) return `It is ${describe(value)}, where Meta posts one object, ${WEBHOOK_SHAPE}.`;
  if (value.kind !== undefined) {
    return 'It is an event line ({"kind":…}), not a webhook body: event lines go to POST /v1/events.';
  }
  if (value.object === undefined && value.entry === undefined) {
    const lookalike = lookalikeOf(value);
    if (lookalike === 'analytics export')
      return 'It is a Meta analytics export: use it with `wameter reconcile --analytics`.';
    if (lookalike === 'webhook fragment')
      return `It is a fragment of a webhook body: post the whole body, ${WEBHOOK_SHAPE}.`;
    if (lookalike === 'accounts file')
      return "It is a wameter accounts file: the service reads it from WAMETER_ACCOUNTS or the configuration's accounts.";
    return `It is an object with neither "object" nor "entry", where Meta posts ${WEBHOOK_SHAPE}.`;
  }
  if (value.object === undefined) {
    const entries = value.entry;
    return Array.isArray(entries) && entries.some((entry) => isRecord(entry) && entry.object !== undefined)
      ? 'It has no "object", and its "entry" holds whole webhook bodies: post each body as Meta posted it.'
      : 'It has no "object" (Meta sends "object":"whatsapp_business_account" on every body): post the body exactly as Meta posted it.';
  }
  if (value.object !== 'whatsapp_business_account') {
    return `Its "object" is ${describe(value.object)}: wameter reads WhatsApp Business Account webhooks ("object":"whatsapp_business_account") only.`;
  }
  if (!Array.isArray(value.entry)) return 'It has no "entry" (the array of entries Meta batches in a body).';
  // Not reached for what parseEventValue refuses today; said as the reader said it, as a sentence.
  const said = error.message.charAt(0).toUpperCase() + error.message.slice(1);
  return /[.!?]$/.test(said) ? said : `${said}.`;
}

// ---------------------------------------------------------------------------------------------------------
// Contract event lines (contract.md §1)

interface MessageHeader {
  atMs: number;
  waba: string;
  business: string;
  user: string;
  id: string;
}

/** The fields every inbound and outbound line has, each refused by name when missing. */
function parseMessageHeader(
  line: Rec,
  where: string,
  roles: { business: string; user: string },
  isTextPlain: boolean,
): MessageHeader | ParseError {
  const atMs = instantField(where, 'at', line.at);
  if (typeof atMs !== 'number') return atMs;
  const waba = requiredId(where, 'waba', 'the WhatsApp Business Account id', line.waba, AN_ID, isTextPlain);
  if (typeof waba !== 'string') return waba;
  const business = requiredId(where, 'business', roles.business, line.business, AN_ID, isTextPlain);
  if (typeof business !== 'string') return business;
  const user = requiredId(where, 'user', roles.user, line.user, AN_ID, isTextPlain);
  if (typeof user !== 'string') return user;
  const id = requiredId(where, 'id', "the message's wamid", line.id, AN_ID, isTextPlain);
  if (typeof id !== 'string') return id;
  return { atMs, waba, business, user: waIdOf(user), id };
}

function parseInboundLine(line: Rec, isTextPlain: boolean): InboundEvent | ParseError {
  const header = parseMessageHeader(
    line,
    'inbound line',
    { business: "the business number's phone_number_id", user: "the sender's wa_id" },
    isTextPlain,
  );
  if ('code' in header) return header;
  const referral = line.referral;
  if (referral !== undefined && referral !== null && !isRecord(referral)) {
    return bad(
      `inbound line "referral" must be an object (Meta's referral, verbatim), not ${describe(referral)}`,
    );
  }
  const { atMs, waba, business, user, id } = header;
  return { kind: 'inbound', atMs, waba, business, user, id, hasReferral: isRecord(referral) };
}

function parseOutboundLine(line: Rec, isTextPlain: boolean): OutboundEvent | ParseError {
  const where = 'outbound line';
  const header = parseMessageHeader(
    line,
    where,
    { business: "the sending number's phone_number_id", user: "the recipient's wa_id" },
    isTextPlain,
  );
  if ('code' in header) return header;
  const { atMs, waba, business, user, id } = header;

  const rawTemplate = line.template;
  let template: TemplateCategory | null;
  if (rawTemplate === undefined || rawTemplate === null) template = null;
  else if (isTemplateCategory(rawTemplate)) template = rawTemplate;
  else return bad(`outbound line "template" must be ${TEMPLATE_CATEGORIES}; got ${describe(rawTemplate)}`);

  const event: OutboundEvent = { kind: 'outbound', atMs, waba, business, user, id, template };
  const templateName = line.template_name;
  if (templateName !== undefined && templateName !== null) {
    if (typeof templateName !== 'string' || templateName === '')
      return bad(`outbound line "template_name" must be a non-empty string, not ${describe(templateName)}`);
    const problem = textProblem(where, 'template_name', templateName, A_TEMPLATE_NAME, isTextPlain);
    if (problem !== undefined) return problem;
    event.templateName = templateName;
  }
  if (line.delivered_at !== undefined && line.delivered_at !== null) {
    const deliveredAtMs = instantField(where, 'delivered_at', line.delivered_at);
    if (typeof deliveredAtMs !== 'number') return deliveredAtMs;
    event.deliveredAtMs = deliveredAtMs;
  }
  const failed = line.failed;
  if (failed !== undefined && failed !== null) {
    if (typeof failed !== 'boolean')
      return bad(`outbound line "failed" must be true or false, not ${describe(failed)}`);
    if (failed) event.isFailed = true;
  }
  return event;
}

function parseStatusLine(line: Rec, isTextPlain: boolean): StatusEvent | ParseError {
  const where = 'status line';
  const atMs = instantField(where, 'at', line.at);
  if (typeof atMs !== 'number') return atMs;
  const id = requiredId(where, 'id', "the business message's wamid", line.id, AN_ID, isTextPlain);
  if (typeof id !== 'string') return id;
  const status = line.status;
  if (status !== 'sent' && status !== 'delivered' && status !== 'read' && status !== 'failed')
    return statusWordError(where, status);
  const event: StatusEvent = { kind: 'status', atMs, id, status };
  // waba, business and user may be omitted on a status: the outbound line with the same id links them.
  if (line.waba !== undefined && line.waba !== null) {
    const waba = requiredId(
      where,
      'waba',
      'optional: omit it or give the WABA id',
      line.waba,
      AN_ID,
      isTextPlain,
    );
    if (typeof waba !== 'string') return waba;
    event.waba = waba;
  }
  if (line.business !== undefined && line.business !== null) {
    const business = requiredId(
      where,
      'business',
      'optional: omit it or give the phone_number_id',
      line.business,
      AN_ID,
      isTextPlain,
    );
    if (typeof business !== 'string') return business;
    event.business = business;
  }
  if (line.user !== undefined && line.user !== null) {
    const user = requiredId(
      where,
      'user',
      "optional: omit it or give the recipient's wa_id",
      line.user,
      AN_ID,
      isTextPlain,
    );
    if (typeof user !== 'string') return user;
    event.user = waIdOf(user);
  }
  const evidenceError = readEvidence(where, line, event, isTextPlain);
  return evidenceError ?? event;
}

/**
 * A contract line's user as Meta's webhooks name the same person: a phone number written the way people write
 * it ("+91 98765-43210", "0091…") becomes the digits-only wa_id, so that a send log and a webhook meet on
 * one user. The rule is the one `wameter explain --user` and `estimate` apply (normalisePhone in
 * src/core/phone.ts): drop spaces, dashes, dots and brackets, then a leading "+" or "00" (or both), read digits
 * of any script as digits; what is left must be 7 to 15 digits, not starting with 0. Anything else — a business-scoped id
 * ("US.1349…"), a name — is not clearly a phone number and is kept as written. Hot path: a wa_id already in
 * Meta's form is answered after one look at each character, with no allocation.
 */
function waIdOf(user: string): string {
  let isDigitsOnly = true;
  for (let i = 0; i < user.length; i++) {
    const c = user.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) continue;
    isDigitsOnly = false;
    // An ASCII letter or other sign no phone number is written with: not a phone number, taken as given.
    if (c < 0x80 && !PHONE_PUNCTUATION.includes(c)) return user;
  }
  if (isDigitsOnly && user.charCodeAt(0) !== 0x30) return user;
  const phone = normalisePhone(user);
  return phone.ok ? phone.value : user;
}

/** `+ - . ( )` and ASCII white space: what people write phone numbers with besides digits. */
const PHONE_PUNCTUATION: readonly number[] = [
  0x2b, 0x2d, 0x2e, 0x28, 0x29, 0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
];

/**
 * A status line's word is one of contract.md §1's four, exactly: a misspelt or upper-case word would be kept
 * yet decide nothing, leaving its message pending without a word. (Webhook bodies keep Meta's other words.)
 */
function statusWordError(where: string, actual: unknown): ParseError {
  const word = nonEmptyString(actual);
  if (word === undefined) return needField(where, 'status', STATUS_WORDS, actual);
  const lower = word.toLowerCase();
  let hint = '';
  for (const known of DELIVERY_STATUSES) {
    if (lower === known) hint = `; write it in lower case: "${known}"`;
    else if (hint === '' && editDistanceAtMost2(lower, known)) hint = `; did you mean "${known}"?`;
  }
  return bad(`${where} "status" must be ${STATUS_WORDS} (in lower case), not ${describe(word)}${hint}`);
}

/** Whether `a` becomes `b` with at most two inserted, deleted or replaced characters (error path only). */
function editDistanceAtMost2(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 2) return false;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const replace = previous[j - 1]! + (a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1);
      current.push(Math.min(replace, previous[j]! + 1, current[j - 1]! + 1));
    }
    previous = current;
  }
  return previous[b.length]! <= 2;
}

/**
 * Keeps Meta's `pricing` / `conversation` objects as evidence (never an input to the verdict, but the rater
 * takes a webhook-only message's category from them, and reconciliation compares them).
 *
 * Decision: the objects are kept by reference, unknown fields included, when their known fields have the
 * types CoreEvent declares (MetaPricingEvidence, MetaConversationEvidence) — Meta's always do. A known field
 * of another type (`"category": 5`, `"origin": {"type": 7}`, `"billable": "yes"`) is left out of a copy, and
 * the status is kept: its id, word and time still say what happened to the message, and refusing it would
 * leave that message pending (never charged) for want of a piece of evidence. Without the dropped word the
 * rater falls back to the other evidence or the send log, or reports UNKNOWN_CATEGORY: never a crash, never
 * a guess. `pricing` or `conversation` that is not an object at all is still refused (the line misreads
 * the format).
 */
/**
 * A status of a message to a WhatsApp group that Meta bills (`pricing.billable: true`), kept so that the
 * rating can say it is not rated (pricing-rules.md has no group rules): its WABA, number, id, word, time and
 * Meta's pricing, and no user (the group is none, and ties no pair). Undefined, counted as ignored as before,
 * for one Meta does not bill or that is unreadable.
 */
function billedGroupStatus(
  where: string,
  status: Rec,
  envelope: { waba: string; business: string },
  isTextPlain: boolean,
): StatusEvent | undefined {
  if (!isRecord(status.pricing) || status.pricing.billable !== true) return undefined;
  const id = requiredId(where, 'id', "the business message's wamid", status.id, AN_ID, isTextPlain);
  const word = statusWord(where, status, isTextPlain);
  const atMs = instantField(where, 'timestamp', status.timestamp);
  if (typeof id !== 'string' || typeof word !== 'string' || typeof atMs !== 'number') return undefined;
  const event: StatusEvent = {
    kind: 'status',
    atMs,
    id,
    status: word,
    waba: envelope.waba,
    business: envelope.business,
    recipientType: 'group',
  };
  return readEvidence(where, status, event, isTextPlain) === undefined ? event : undefined;
}

/** `isTextPlain`: no string of `source` can hold NUL or a lone surrogate (`parseEventValue`). */
function readEvidence(
  where: string,
  source: Rec,
  event: StatusEvent,
  isTextPlain: boolean,
): ParseError | undefined {
  const pricing = source.pricing;
  if (pricing !== undefined && pricing !== null) {
    if (!isRecord(pricing))
      return bad(`${where} "pricing" must be an object (Meta's pricing, verbatim), not ${describe(pricing)}`);
    if (!isTextPlain && holdsNul(pricing)) return evidenceNulError(where, 'pricing', pricing);
    event.pricing = pricingEvidence(pricing);
  }
  const conversation = source.conversation;
  if (conversation !== undefined && conversation !== null) {
    if (!isRecord(conversation))
      return bad(
        `${where} "conversation" must be an object (Meta's conversation, verbatim), not ${describe(conversation)}`,
      );
    if (!isTextPlain && holdsNul(conversation)) return evidenceNulError(where, 'conversation', conversation);
    event.conversation = conversationEvidence(conversation);
  }
  return undefined;
}

/**
 * Meta's `pricing` object (free of NUL) as a status keeps it: itself when its known fields are well typed,
 * else a copy without them (`readEvidence`). The columnar byte reader makes its evidence here too.
 */
export function pricingEvidence(pricing: Record<string, unknown>): MetaPricingEvidence {
  return isWellTypedPricing(pricing) ? (pricing as MetaPricingEvidence) : wellTypedPricing(pricing);
}

/** Meta's `conversation` object (free of NUL) as a status keeps it (as `pricingEvidence`). */
export function conversationEvidence(conversation: Record<string, unknown>): MetaConversationEvidence {
  return isWellTypedConversation(conversation)
    ? (conversation as MetaConversationEvidence)
    : wellTypedConversation(conversation);
}

/**
 * Whether a string anywhere in `value` (a key or a value, at any depth) holds a NUL character (U+0000).
 * Evidence is kept verbatim, and PostgreSQL's jsonb refuses "\u0000". Hot path (every status of Meta's
 * carries two such objects): no allocation but one stack, nothing nested visited twice; iterative, so any
 * depth is looked at. `nulPath` names where, on the error path only.
 */
function holdsNul(value: Rec): boolean {
  const stack: object[] = [value];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) {
        const child: unknown = item[i];
        if (typeof child === 'string') {
          if (isUnstorable(child)) return true;
        } else if (child !== null && typeof child === 'object') stack.push(child);
      }
      continue;
    }
    for (const key in item) {
      if (isUnstorable(key)) return true;
      const child: unknown = (item as Rec)[key];
      if (typeof child === 'string') {
        if (isUnstorable(child)) return true;
      } else if (child !== null && typeof child === 'object') stack.push(child);
    }
  }
  return false;
}

/** The path (`pricing.category`, `conversation.origin["a\u0000"]`) of the first NUL character in `value`. */
function nulPath(value: unknown, root: string): string | undefined {
  const stack: { value: unknown; path: string }[] = [{ value, path: root }];
  while (stack.length > 0) {
    const { value: item, path } = stack.pop()!;
    if (typeof item === 'string') {
      if (isUnstorable(item)) return path;
    } else if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) stack.push({ value: item[i], path: `${path}[${i}]` });
    } else if (item !== null && typeof item === 'object') {
      const keys = Object.keys(item);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        const child = `${path}${isPlainKey(key) ? `.${key}` : `[${JSON.stringify(key)}]`}`;
        if (isUnstorable(key)) return child;
        stack.push({ value: (item as Rec)[key], path: child });
      }
    }
  }
  return undefined;
}

/** A key written after a dot in a path: letters, digits and underscores, not starting with a digit. */
function isPlainKey(key: string): boolean {
  if (key === '') return false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    const isLetter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
    if (!isLetter && !(i > 0 && c >= 0x30 && c <= 0x39)) return false;
  }
  return true;
}

function evidenceNulError(where: string, field: string, evidence: Rec): ParseError {
  return bad(
    `${where} "${field}" holds ${JSON.stringify(evidence).includes('\\u0000') ? unstorableWhat('\u0000') : unstorableWhat('\ud800')} at ${nulPath(evidence, field) ?? field}, which no real value has`,
  );
}

function isOptionalString(value: unknown): boolean {
  return value === undefined || typeof value === 'string';
}

function isWellTypedPricing(pricing: Rec): boolean {
  return (
    (pricing.billable === undefined || typeof pricing.billable === 'boolean') &&
    isOptionalString(pricing.pricing_model) &&
    isOptionalString(pricing.category) &&
    isOptionalString(pricing.type)
  );
}

/**
 * `pricing` without its known fields of the wrong type (error path: a copy, unknown fields kept). A
 * "__proto__" key (JSON.parse keeps it as a plain field) is not copied: assigning it would set the copy's
 * prototype, through which a dropped field could come back.
 */
function wellTypedPricing(pricing: Rec): MetaPricingEvidence {
  const copy: Rec = {};
  for (const key of Object.keys(pricing)) {
    if (key === '__proto__') continue;
    const value = pricing[key];
    const isWellTyped =
      key === 'billable'
        ? typeof value === 'boolean'
        : key === 'pricing_model' || key === 'category' || key === 'type'
          ? typeof value === 'string'
          : true;
    if (isWellTyped) copy[key] = value;
  }
  return copy as MetaPricingEvidence;
}

function isWellTypedConversation(conversation: Rec): boolean {
  const origin = conversation.origin;
  const expiry = conversation.expiration_timestamp;
  return (
    isOptionalString(conversation.id) &&
    (expiry === undefined || typeof expiry === 'string' || typeof expiry === 'number') &&
    (origin === undefined || (isRecord(origin) && isOptionalString(origin.type)))
  );
}

/** `conversation` without its known fields of the wrong type (as wellTypedPricing copies). */
function wellTypedConversation(conversation: Rec): MetaConversationEvidence {
  const copy: Rec = {};
  for (const key of Object.keys(conversation)) {
    if (key === '__proto__') continue;
    const value = conversation[key];
    if (key === 'id') {
      if (typeof value === 'string') copy.id = value;
    } else if (key === 'expiration_timestamp') {
      if (typeof value === 'string' || typeof value === 'number') copy.expiration_timestamp = value;
    } else if (key === 'origin') {
      if (!isRecord(value)) continue;
      if (isOptionalString(value.type)) copy.origin = value;
      else {
        const origin: Rec = {};
        for (const originKey of Object.keys(value))
          if (originKey !== 'type' && originKey !== '__proto__') origin[originKey] = value[originKey];
        copy.origin = origin;
      }
    } else {
      copy[key] = value;
    }
  }
  return copy as MetaConversationEvidence;
}

// ---------------------------------------------------------------------------------------------------------
// Meta webhook bodies (webhooks.md)

interface BodyOutput {
  events: CoreEvent[];
  ignored: IgnoredCount[];
  rejected: ParseError[];
}

function parseWebhookBody(body: Rec, isTextPlain: boolean): Result<ParsedItem, ParseError> {
  // Decision: a body without "object" is refused, even when its changes look like WhatsApp's: Meta sends
  // "object" on every body, so one without it was cut or rebuilt by hand, and other Meta products
  // (Instagram, Pages) post the same "entry"/"changes" envelope.
  if (body.object === undefined) {
    const entries = body.entry;
    const holdsBodies =
      Array.isArray(entries) && entries.some((entry) => isRecord(entry) && entry.object !== undefined);
    return err(
      bad(
        holdsBodies
          ? 'webhook body needs "object": "whatsapp_business_account"; its "entry" holds whole webhook bodies: give those bodies themselves (one per line, or an array of them)'
          : 'webhook body needs "object": "whatsapp_business_account" (Meta sends it on every body); send the body exactly as Meta posted it',
      ),
    );
  }
  if (body.object !== 'whatsapp_business_account') {
    return err(
      bad(
        `webhook body has "object": ${describe(body.object)}; wameter reads WhatsApp Business Account webhooks ("object":"whatsapp_business_account")`,
      ),
    );
  }
  const entries = body.entry;
  if (!Array.isArray(entries)) return err(bad('webhook body needs "entry" (an array of entries)'));
  if (holdsMoreValuesThan(body, MAX_WEBHOOK_VALUES)) return err(bad(TOO_MANY_VALUES_MESSAGE));
  const out: BodyOutput = { events: [], ignored: [], rejected: [] };
  for (let i = 0; i < entries.length; i++) {
    const entry: unknown = entries[i];
    if (!isRecord(entry)) {
      out.rejected.push(bad(`entry[${i}] must be an object, not ${describe(entry)}`));
      continue;
    }
    const changes = entry.changes;
    if (!Array.isArray(changes)) {
      out.rejected.push(bad(`entry[${i}] needs "changes" (an array)`));
      continue;
    }
    const waba = nonEmptyString(entry.id);
    const wabaProblem =
      waba === undefined ? undefined : textProblem(`entry[${i}]`, 'id', waba, AN_ID, isTextPlain);
    if (wabaProblem !== undefined) {
      out.rejected.push(wabaProblem);
      continue;
    }
    for (let j = 0; j < changes.length; j++) {
      const change: unknown = changes[j];
      const path = `entry[${i}].changes[${j}]`;
      // A field wameter does not read is ignored whatever its value (webhooks.md: stored and ignored).
      if (isRecord(change) && typeof change.field === 'string' && !READ_FIELDS.has(change.field)) {
        addIgnored(out.ignored, `field "${change.field}" (not a billing event)`);
        continue;
      }
      if (!isRecord(change) || !isRecord(change.value)) {
        out.rejected.push(bad(`${path} must be an object with "field" and "value" (an object)`));
        continue;
      }
      const field = change.field;
      if (typeof field !== 'string') {
        out.rejected.push(
          field === undefined
            ? bad(`${path} needs "field" (e.g. "messages")`)
            : bad(`${path} "field" must be a string (e.g. "messages"), not ${describe(field)}`),
        );
        continue;
      }
      if (field === 'messages') {
        readMessagesValue(out, change.value, waba, entry.id, path, isTextPlain);
      } else if (field === 'account_update') {
        readAccountUpdate(out, change.value, waba, entry, path);
      } else {
        readTemplateCategoryUpdate(out, change.value, waba, entry, path);
      }
    }
  }
  return ok(out);
}

/** The `field`s of a change that wameter reads; any other is ignored. */
const READ_FIELDS: ReadonlySet<string> = new Set(['messages', 'account_update', 'template_category_update']);

function wabaError(path: string, actual: unknown): ParseError {
  return needField(`${path}: its entry`, 'id', 'the WhatsApp Business Account id', actual);
}

/** The business number (`metadata.phone_number_id` of the change's value) is missing or not a string. */
function businessError(path: string, metadata: unknown): ParseError {
  const id = isRecord(metadata) ? metadata.phone_number_id : undefined;
  if (id === undefined)
    return bad(`${path}: its value needs "metadata.phone_number_id" (the business number)`);
  return needField(`${path}: its value's`, 'metadata.phone_number_id', 'the business number', id);
}

/**
 * The phone number (wa_id) of a business-scoped user id, when the same body's `contacts[]` gives both: the
 * market comes from the number (pricing-rules.md §7), so the number is the better user key.
 */
function phoneOfScopedUser(contacts: unknown, scopedId: string | undefined): string | undefined {
  if (scopedId === undefined || !Array.isArray(contacts)) return undefined;
  for (const contact of contacts as unknown[]) {
    if (isRecord(contact) && contact.user_id === scopedId) return nonEmptyString(contact.wa_id);
  }
  return undefined;
}

/** Whether a contact's `wa_id` names `user` (a wa_id, as `waIdOf` reads it). */
function isContactOf(contact: Rec, user: string): boolean {
  const phone = contact.wa_id;
  return phone === user || (typeof phone === 'string' && waIdOf(phone) === user);
}

/** The business-scoped id `contacts[]` gives for a phone number, if any. */
function scopedIdOfPhone(contacts: unknown, phone: string): string | undefined {
  if (!Array.isArray(contacts)) return undefined;
  for (const contact of contacts as unknown[]) {
    if (isRecord(contact) && isContactOf(contact, phone)) return nonEmptyString(contact.user_id);
  }
  return undefined;
}

/**
 * The user of a message or status: its wa_id (`phoneField`), else the number `contacts[]` gives for its
 * business-scoped id, else that id (`scopedField`); undefined when it names none, the error when the one
 * taken, or the business-scoped id beside it, cannot be kept (`textProblem`). A number is read as an event
 * line's `user` is (`waIdOf`: "+91 98765-43210" is 919876543210), so that a send log and a webhook that
 * write one number differently name one user.
 */
function userOf(
  where: string,
  contacts: unknown,
  phoneValue: unknown,
  phoneField: string,
  scopedId: string | undefined,
  scopedField: string,
  isTextPlain: boolean,
): string | ParseError | undefined {
  const phone = nonEmptyString(phoneValue);
  if (phone !== undefined) return textProblem(where, phoneField, phone, AN_ID, isTextPlain) ?? waIdOf(phone);
  if (scopedId === undefined) return undefined;
  const scopedProblem = textProblem(where, scopedField, scopedId, AN_ID, isTextPlain);
  if (scopedProblem !== undefined) return scopedProblem;
  const contactPhone = phoneOfScopedUser(contacts, scopedId);
  if (contactPhone === undefined) return scopedId;
  return textProblem(where, 'contacts[].wa_id', contactPhone, AN_ID, isTextPlain) ?? waIdOf(contactPhone);
}

/**
 * The business-scoped id of `user`: the item's own (`scopedId`, its field `scopedField`), else the one
 * `contacts[]` gives; the error when it cannot be kept.
 */
function scopedAliasOf(
  where: string,
  contacts: unknown,
  scopedId: string | undefined,
  scopedField: string,
  user: string,
  isTextPlain: boolean,
): string | ParseError | undefined {
  if (scopedId !== undefined)
    return textProblem(where, scopedField, scopedId, AN_ID, isTextPlain) ?? scopedId;
  const alias = scopedIdOfPhone(contacts, user);
  if (alias === undefined) return undefined;
  return textProblem(where, 'contacts[].user_id', alias, AN_ID, isTextPlain) ?? alias;
}

/** `contacts[].profile.country_code` of the contact whose wa_id or user_id is `user`. */
function countryHint(contacts: unknown, user: string): string | undefined {
  if (!Array.isArray(contacts)) return undefined;
  for (let i = 0; i < contacts.length; i++) {
    const contact: unknown = contacts[i];
    if (!isRecord(contact) || (contact.user_id !== user && !isContactOf(contact, user))) continue;
    const profile = contact.profile;
    if (!isRecord(profile)) return undefined;
    const country = profile.country_code;
    // A code holding NUL is no country: the market is found as without a hint.
    return typeof country === 'string' && country.length === 2 && !country.includes('\u0000')
      ? country
      : undefined;
  }
  return undefined;
}

function readMessagesValue(
  out: BodyOutput,
  value: Rec,
  waba: string | undefined,
  rawWaba: unknown,
  path: string,
  isTextPlain: boolean,
): void {
  const metadata = value.metadata;
  const business = isRecord(metadata) ? nonEmptyString(metadata.phone_number_id) : undefined;
  const contacts = value.contacts;
  // The WABA and business number every item of this value is kept with; undefined when one is missing or
  // cannot be kept (each item is then refused with envelopeError, which names why).
  const envelope =
    waba !== undefined &&
    business !== undefined &&
    textProblem('', '', business, AN_ID, isTextPlain) === undefined
      ? { waba, business }
      : undefined;
  const envelopeError = (where: string): ParseError =>
    waba === undefined
      ? wabaError(where, rawWaba)
      : business === undefined
        ? businessError(where, metadata)
        : textProblem(`${where}: its value's`, 'metadata.phone_number_id', business)!;

  const messages = value.messages;
  if (messages !== undefined && messages !== null && !Array.isArray(messages)) {
    out.rejected.push(bad(`${path}.value "messages" must be an array, not ${describe(messages)}`));
  }
  if (Array.isArray(messages)) {
    for (let k = 0; k < messages.length; k++) {
      const where = `${path}.value.messages[${k}]`;
      const message: unknown = messages[k];
      if (!isRecord(message)) {
        out.rejected.push(bad(`${where} must be an object, not ${describe(message)}`));
        continue;
      }
      if (message.type === 'system' || message.system !== undefined) {
        addIgnored(out.ignored, IGNORED.systemMessage);
        continue;
      }
      if (message.group_id !== undefined) {
        addIgnored(out.ignored, IGNORED.groupMessage);
        continue;
      }
      const id = requiredId(where, 'id', "the message's wamid", message.id, AN_ID, isTextPlain);
      if (typeof id !== 'string') {
        out.rejected.push(id);
        continue;
      }
      const atMs = instantField(where, 'timestamp', message.timestamp);
      if (typeof atMs !== 'number') {
        out.rejected.push(atMs);
        continue;
      }
      // An id written as a number is refused by name, before it could be mistaken for a missing one.
      const mistypedUser = mistypedUserId(where, message, 'from', 'from_user_id');
      if (mistypedUser) {
        out.rejected.push(mistypedUser);
        continue;
      }
      const scopedId = nonEmptyString(message.from_user_id);
      const user = userOf(where, contacts, message.from, 'from', scopedId, 'from_user_id', isTextPlain);
      if (user === undefined) {
        out.rejected.push(
          bad(`${where} needs "from" (the user's wa_id) or "from_user_id" (business-scoped id)`),
        );
        continue;
      }
      if (typeof user !== 'string') {
        out.rejected.push(user);
        continue;
      }
      if (envelope === undefined) {
        out.rejected.push(envelopeError(where));
        continue;
      }
      const scopedAlias = scopedAliasOf(where, contacts, scopedId, 'from_user_id', user, isTextPlain);
      if (scopedAlias !== undefined && typeof scopedAlias !== 'string') {
        out.rejected.push(scopedAlias);
        continue;
      }
      const event: InboundEvent = {
        kind: 'inbound',
        atMs,
        waba: envelope.waba,
        business: envelope.business,
        user,
        id,
        hasReferral: isRecord(message.referral),
      };
      if (scopedAlias !== undefined && scopedAlias !== user) event.scopedUserId = scopedAlias;
      const country = countryHint(contacts, user);
      if (country !== undefined) event.userCountryHint = country;
      out.events.push(event);
    }
  }

  const statuses = value.statuses;
  if (statuses !== undefined && statuses !== null && !Array.isArray(statuses)) {
    out.rejected.push(bad(`${path}.value "statuses" must be an array, not ${describe(statuses)}`));
  }
  if (Array.isArray(statuses)) {
    for (let k = 0; k < statuses.length; k++) {
      const where = `${path}.value.statuses[${k}]`;
      const status: unknown = statuses[k];
      if (!isRecord(status)) {
        out.rejected.push(bad(`${where} must be an object, not ${describe(status)}`));
        continue;
      }
      if (status.recipient_type === 'group') {
        const billed =
          envelope === undefined ? undefined : billedGroupStatus(where, status, envelope, isTextPlain);
        if (billed === undefined) addIgnored(out.ignored, IGNORED.groupStatus);
        else out.events.push(billed);
        continue;
      }
      const id = requiredId(where, 'id', "the business message's wamid", status.id, AN_ID, isTextPlain);
      if (typeof id !== 'string') {
        out.rejected.push(id);
        continue;
      }
      // Meta's other words are kept (they decide nothing): one is part of the status's idempotency key.
      const word = statusWord(where, status, isTextPlain);
      if (typeof word !== 'string') {
        out.rejected.push(word);
        continue;
      }
      const atMs = instantField(where, 'timestamp', status.timestamp);
      if (typeof atMs !== 'number') {
        out.rejected.push(atMs);
        continue;
      }
      // A status names its WABA, business number and user as an inbound message does: Meta always sends
      // them, and without them a message known only from webhooks could not be rated (STATUS_WITHOUT_USER),
      // or would be filed under another WABA. Refused here, at the body's file and line, instead.
      if (envelope === undefined) {
        out.rejected.push(envelopeError(where));
        continue;
      }
      const mistypedUser = mistypedUserId(where, status, 'recipient_id', 'recipient_user_id');
      if (mistypedUser) {
        out.rejected.push(mistypedUser);
        continue;
      }
      const scopedId = nonEmptyString(status.recipient_user_id);
      const user = userOf(
        where,
        contacts,
        status.recipient_id,
        'recipient_id',
        scopedId,
        'recipient_user_id',
        isTextPlain,
      );
      if (user === undefined) {
        out.rejected.push(
          bad(`${where} needs "recipient_id" (the user's wa_id) or "recipient_user_id" (business-scoped id)`),
        );
        continue;
      }
      if (typeof user !== 'string') {
        out.rejected.push(user);
        continue;
      }
      const scopedAlias = scopedAliasOf(where, contacts, scopedId, 'recipient_user_id', user, isTextPlain);
      if (scopedAlias !== undefined && typeof scopedAlias !== 'string') {
        out.rejected.push(scopedAlias);
        continue;
      }
      const event: StatusEvent = {
        kind: 'status',
        atMs,
        id,
        status: word,
        waba: envelope.waba,
        business: envelope.business,
        user,
      };
      const country = countryHint(contacts, user);
      if (country !== undefined) event.userCountryHint = country;
      if (scopedAlias !== undefined && scopedAlias !== user) event.scopedUserId = scopedAlias;
      const evidenceError = readEvidence(where, status, event, isTextPlain);
      if (evidenceError !== undefined) {
        out.rejected.push(evidenceError);
        continue;
      }
      out.events.push(event);
    }
  }

  const errors = value.errors;
  if (Array.isArray(errors) && errors.length > 0) addIgnored(out.ignored, IGNORED.valueErrors, errors.length);
  // Nothing Meta bills or reports: a misspelt key ("status", "message") would otherwise vanish unnoticed.
  if (value.messages === undefined && value.statuses === undefined && value.errors === undefined) {
    const keys = Object.keys(value).filter((key) => !KNOWN_VALUE_KEYS.has(key));
    if (keys.length > 0) {
      addIgnored(
        out.ignored,
        `messages value with no "messages", "statuses" or "errors" (keys: ${keys.sort().join(', ')})`,
      );
    }
  }
}

/** A country code as read: two characters, neither of them NUL. */
function isTwoCharacters(value: unknown): value is string {
  return typeof value === 'string' && value.length === 2 && !value.includes('\u0000');
}

/** The keys of a messages value that are not its content. */
const KNOWN_VALUE_KEYS: ReadonlySet<string> = new Set(['messaging_product', 'metadata', 'contacts']);

function readAccountUpdate(
  out: BodyOutput,
  value: Rec,
  waba: string | undefined,
  entry: Rec,
  path: string,
): void {
  const where = `${path}.value`;
  const name = nonEmptyString(value.event);
  if (name === undefined) {
    out.rejected.push(needField(where, 'event', "the account_update's kind", value.event));
    return;
  }
  if (
    name !== 'VOLUME_BASED_PRICING_TIER_UPDATE' &&
    name !== 'AUTH_INTL_PRICE_ELIGIBILITY_UPDATE' &&
    name !== 'BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE'
  ) {
    addIgnored(out.ignored, `account_update ${name} (no billing fact)`);
    return;
  }
  if (waba === undefined) {
    out.rejected.push(wabaError(where, entry.id));
    return;
  }
  const tierInfo = value.volume_tier_info;
  // The fact's own time when Meta gives one, else the entry's notification time.
  const ownTime =
    isRecord(tierInfo) && tierInfo.tier_update_time !== undefined ? tierInfo.tier_update_time : undefined;
  const atMs =
    ownTime !== undefined
      ? instantField(`${where}.volume_tier_info`, 'tier_update_time', ownTime)
      : entry.time !== undefined || value.time === undefined
        ? instantField(`${path}: its entry`, 'time', entry.time)
        : instantField(where, 'time', value.time);
  if (typeof atMs !== 'number') {
    out.rejected.push(atMs);
    return;
  }
  const event: AccountUpdateEvent = { kind: 'account_update', atMs, waba, event: name };

  if (name === 'VOLUME_BASED_PRICING_TIER_UPDATE') {
    if (!isRecord(tierInfo)) {
      out.rejected.push(bad(`${where} needs "volume_tier_info" (an object) for ${name}`));
      return;
    }
    const tier = nonEmptyString(tierInfo.tier);
    const category = nonEmptyString(tierInfo.pricing_category);
    if (tier === undefined || category === undefined) {
      out.rejected.push(bad(`${where}.volume_tier_info needs "tier" and "pricing_category" (strings)`));
      return;
    }
    const tierWhere = `${where}.volume_tier_info`;
    // Meta's statement is of one market and month: without either it could price nothing.
    const region = nonEmptyString(tierInfo.region);
    if (region === undefined) {
      out.rejected.push(needField(tierWhere, 'region', 'the market, e.g. "India"', tierInfo.region));
      return;
    }
    const month = nonEmptyString(tierInfo.effective_month);
    if (month === undefined) {
      out.rejected.push(
        needField(tierWhere, 'effective_month', 'the month, e.g. "2025-11"', tierInfo.effective_month),
      );
      return;
    }
    // A value the rating cannot use is refused by name, not kept to decide nothing. The region is checked
    // against the market table when rating (rate-events.ts): the table is not known here.
    const problem =
      nulProblem(tierWhere, 'tier', tier) ??
      nulProblem(tierWhere, 'pricing_category', category) ??
      textProblem(tierWhere, 'region', region, A_WORD) ??
      nulProblem(tierWhere, 'effective_month', month) ??
      tierBandProblem(tierWhere, tier) ??
      (isMonth(month)
        ? undefined
        : bad(
            `${tierWhere} "effective_month" must be a month written YYYY-MM (e.g. "2025-11"), not ${describe(month)}`,
          )) ??
      (TIER_CATEGORIES.has(category.toLowerCase())
        ? undefined
        : bad(
            `${tierWhere} "pricing_category" must be one of Meta's categories ${[...TIER_CATEGORIES].map((word) => word.toUpperCase()).join(', ')}, not ${describe(category)}`,
          ));
    if (problem !== undefined) {
      out.rejected.push(problem);
      return;
    }
    event.volumeTier = { tier, category: category.toLowerCase(), region, effectiveMonth: month };
  } else if (name === 'AUTH_INTL_PRICE_ELIGIBILITY_UPDATE') {
    const eligibility = value.auth_international_rate_eligibility;
    const eligibilityWhere = `${where}.auth_international_rate_eligibility`;
    if (!isRecord(eligibility)) {
      out.rejected.push(bad(`${where} needs "auth_international_rate_eligibility" (an object) for ${name}`));
      return;
    }
    const startMs = instantField(eligibilityWhere, 'start_time', eligibility.start_time);
    if (typeof startMs !== 'number') {
      out.rejected.push(startMs);
      return;
    }
    const exceptionsMs: Record<string, number> = {};
    const exceptions = eligibility.exception_countries;
    if (exceptions !== undefined && exceptions !== null) {
      if (!Array.isArray(exceptions)) {
        out.rejected.push(bad(`${eligibilityWhere} "exception_countries" must be an array`));
        return;
      }
      for (let k = 0; k < exceptions.length; k++) {
        const exception: unknown = exceptions[k];
        const exceptionWhere = `${eligibilityWhere}.exception_countries[${k}]`;
        const country = isRecord(exception) ? exception.country_code : undefined;
        if (!isRecord(exception) || !isTwoCharacters(country)) {
          out.rejected.push(bad(`${exceptionWhere} needs "country_code" (two letters, e.g. "ID")`));
          return;
        }
        const exceptionMs = instantField(exceptionWhere, 'start_time', exception.start_time);
        if (typeof exceptionMs !== 'number') {
          out.rejected.push(exceptionMs);
          return;
        }
        exceptionsMs[country.toUpperCase()] = exceptionMs;
      }
    }
    event.authInternational = { startMs, exceptionsMs };
  } else {
    const country = value.country;
    if (!isTwoCharacters(country)) {
      out.rejected.push(bad(`${where} needs "country" (two letters, e.g. "IN") for ${name}`));
      return;
    }
    event.primaryCountry = country.toUpperCase();
  }
  out.events.push(event);
}

/**
 * The categories of Meta's volume-tier statements: utility and authentication (authentication-international
 * counts with it) are tiered; marketing is not, and its statements decide nothing (docs/decisions.md).
 */
const TIER_CATEGORIES: ReadonlySet<string> = new Set([
  'utility',
  'authentication',
  'authentication_international',
  'authentication-international',
  'marketing',
]);

/**
 * Why `tier` is no band of Meta's ("25001:100000", "100001:MAX", the first from 0: "0:25000"), or undefined:
 * the rating reads its start as the count the portfolio reached.
 */
function tierBandProblem(where: string, tier: string): ParseError | undefined {
  const band = /^(\d{1,15}):(\d{1,15}|MAX)?$/.exec(tier);
  if (band !== null && (band[2] === undefined || band[2] === 'MAX' || Number(band[2]) >= Number(band[1])))
    return undefined;
  return bad(
    `${where} "tier" must be Meta's band FROM:TO (e.g. "25001:100000", or "100001:MAX" for the last), not ${describe(tier)}`,
  );
}

function readTemplateCategoryUpdate(
  out: BodyOutput,
  value: Rec,
  waba: string | undefined,
  entry: Rec,
  path: string,
): void {
  const where = `${path}.value`;
  if (value.correct_category !== undefined) {
    addIgnored(out.ignored, IGNORED.pendingCategoryNotice);
    return;
  }
  const templateName = nonEmptyString(value.message_template_name);
  if (templateName === undefined) {
    out.rejected.push(
      needField(where, 'message_template_name', "the template's name", value.message_template_name),
    );
    return;
  }
  const nameProblem = textProblem(where, 'message_template_name', templateName, A_TEMPLATE_NAME);
  if (nameProblem !== undefined) {
    out.rejected.push(nameProblem);
    return;
  }
  const newCategory = requiredId(where, 'new_category', 'e.g. "MARKETING"', value.new_category, A_WORD);
  if (typeof newCategory !== 'string') {
    out.rejected.push(newCategory);
    return;
  }
  // A word the rating does not know would be kept and decide nothing: the template's messages rated under
  // the send log's category without a word.
  if (!isTemplateCategory(newCategory.toLowerCase())) {
    out.rejected.push(
      bad(
        `${where} "new_category" must be MARKETING, UTILITY or AUTHENTICATION (the template's new category), not ${describe(newCategory)}`,
      ),
    );
    return;
  }
  const templateId = value.message_template_id;
  const language = nonEmptyString(value.message_template_language);
  const previous = nonEmptyString(value.previous_category);
  const problem =
    (typeof templateId === 'string' ? textProblem(where, 'message_template_id', templateId) : undefined) ??
    (language === undefined
      ? undefined
      : textProblem(where, 'message_template_language', language, A_WORD)) ??
    (previous === undefined ? undefined : textProblem(where, 'previous_category', previous, A_WORD));
  if (problem !== undefined) {
    out.rejected.push(problem);
    return;
  }
  if (waba === undefined) {
    out.rejected.push(wabaError(where, entry.id));
    return;
  }
  const atMs = instantField(`${path}: its entry`, 'time', entry.time);
  if (typeof atMs !== 'number') {
    out.rejected.push(atMs);
    return;
  }
  const event: TemplateCategoryUpdateEvent = {
    kind: 'template_category_update',
    atMs,
    waba,
    templateName,
    newCategory: newCategory.toLowerCase(),
  };
  if (typeof templateId === 'string' || typeof templateId === 'number') event.templateId = String(templateId);
  if (language !== undefined) event.templateLanguage = language;
  if (previous !== undefined) event.previousCategory = previous.toLowerCase();
  out.events.push(event);
}
