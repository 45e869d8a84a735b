// The parameters of GET /v1/analytics that Meta's conversation_analytics and pricing_analytics take
// (`dimensions`, `metric_types`, `phone_numbers`, `country_codes`, `pricing_categories`, `pricing_types`,
// `conversation_categories`, `conversation_types`, `conversation_directions`), read as Meta reads them, and the
// business numbers Meta's PHONE dimension speaks of (display numbers) found in a webhook body.

import type { PricingType, UnitCategory } from '../core/units.js';
import { displayNumberDigits } from '../store/engine-checks.js';
import type { AnalyticsDirection, BusinessNumber } from '../store/store.js';

/** conversation_analytics (`conversation` counts) or pricing_analytics (`volume`). */
export type AnalyticsKind = 'conversation' | 'pricing';

export class AnalyticsQueryError extends Error {}

function shown(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 61)}...` : value);
}

/**
 * A list parameter as Meta's analytics take one: `A,B`, `[A,B]` or `["A","B"]` (JSON), `[]` for none (every
 * value). Items are trimmed; an empty item, or an item given twice, is refused naming the parameter.
 */
export function metaList(name: string, text: string): string[] {
  const trimmed = text.trim();
  let items: string[];
  if (trimmed.startsWith('[') && trimmed.includes('"')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new AnalyticsQueryError(
        `"${name}" is no list: give ${name}=A,B or a JSON array of strings (${name}=["A","B"]).`,
      );
    }
    if (!Array.isArray(parsed) || !parsed.every((item): item is string => typeof item === 'string')) {
      throw new AnalyticsQueryError(`"${name}" must be a list of strings: ${name}=A,B or ${name}=["A","B"].`);
    }
    // A quoted item holding commas names several (Meta's guide writes ["COUNTRY,PHONE"]): no value of these
    // lists holds a comma.
    items = parsed.flatMap((item) => item.split(',')).map((item) => item.trim());
  } else {
    const inner = trimmed.startsWith('[') && trimmed.endsWith(']') ? trimmed.slice(1, -1).trim() : trimmed;
    if (inner === '' && trimmed !== '') return [];
    items = inner.split(',').map((item) => item.trim());
  }
  const seen = new Set<string>();
  for (const [index, item] of items.entries()) {
    if (item === '') {
      throw new AnalyticsQueryError(
        `"${name}" has an empty item (item ${index + 1} of ${shown(text)}): give each value once, or leave "${name}" out.`,
      );
    }
    const key = item.toUpperCase();
    if (seen.has(key)) {
      const named = key.length > 64 ? `${key.slice(0, 61)}...` : key;
      throw new AnalyticsQueryError(`"${name}" names ${named} twice: give each value once.`);
    }
    seen.add(key);
  }
  return items;
}

/**
 * Reads each item of a list against Meta's words (in any letter case), mapped to wameter's: a word outside is
 * refused naming the parameter and listing the words it takes.
 */
function wordsOf<T>(name: string, items: readonly string[], words: Readonly<Record<string, T>>): T[] {
  return items.map((item) => {
    const word = item.toUpperCase();
    if (!Object.hasOwn(words, word)) {
      throw new AnalyticsQueryError(
        `"${name}": ${shown(item)} is none of ${Object.keys(words).join(', ')} (in any letter case).`,
      );
    }
    return words[word]!;
  });
}

/** `null`: a word Meta knows that no wameter unit ever has (it matches nothing). */
type Word<T> = T | null;

// Meta's words, and wameter's own (its categories and types are a superset: CBP-2022's initiators, free tiers).
const CATEGORY_WORDS: Readonly<Record<string, Word<UnitCategory>>> = {
  AUTHENTICATION: 'authentication',
  AUTHENTICATION_INTERNATIONAL: 'authentication_international',
  MARKETING: 'marketing',
  MARKETING_LITE: null,
  SERVICE: 'service',
  UTILITY: 'utility',
  REFERRAL_CONVERSION: 'referral_conversion',
  BUSINESS_INITIATED: 'business_initiated',
  USER_INITIATED: 'user_initiated',
};
const TYPE_WORDS: Readonly<Record<string, Word<PricingType>>> = {
  REGULAR: 'regular',
  FREE_CUSTOMER_SERVICE: 'free_customer_service',
  FREE_ENTRY_POINT: 'free_entry_point',
  // conversation_analytics' own word for it (its data points write FREE_ENTRY_POINT).
  FREE_ENTRY: 'free_entry_point',
  FREE_TIER: 'free_tier',
  // In the Graph reference's conversation_types: no wameter unit's type.
  UNKNOWN: null,
};
const DIRECTION_WORDS: Readonly<Record<string, Word<AnalyticsDirection>>> = {
  BUSINESS_INITIATED: 'BUSINESS_INITIATED',
  USER_INITIATED: 'USER_INITIATED',
  // "System cannot determine direction": wameter always can, so none of its units.
  UNKNOWN: null,
};

/** The metrics `metric_types` asks for: the count (`conversation` / `volume`) and/or `cost`. */
export interface AnalyticsMetrics {
  count: boolean;
  cost: boolean;
}

/** The parameters of /v1/analytics in Meta's words, as given (undefined: not given). */
export interface MetaAnalyticsParameters {
  metric?: string;
  dimensions?: string;
  metric_types?: string;
  phone_numbers?: string;
  country_codes?: string;
  pricing_categories?: string;
  pricing_types?: string;
  conversation_categories?: string;
  conversation_types?: string;
  conversation_directions?: string;
}

/** Dimension names only pricing_analytics takes, and only conversation_analytics takes. */
const PRICING_DIMENSIONS = new Set(['PRICING_CATEGORY', 'PRICING_TYPE', 'TIER']);
const CONVERSATION_DIMENSIONS = new Set([
  'CONVERSATION_CATEGORY',
  'CONVERSATION_TYPE',
  'CONVERSATION_DIRECTION',
]);

/**
 * Which of Meta's two fields the request speaks of: `metric` when given; else the names it uses (a dimension,
 * filter or metric type only one of them takes: PRICING_CATEGORY, TIER, pricing_types, VOLUME → pricing;
 * CONVERSATION_TYPE, conversation_directions, CONVERSATION → conversation), conversation when none says. A
 * request using both fields' names without `metric` is refused: its answer's field names would be a guess.
 */
export function analyticsKind(parameters: MetaAnalyticsParameters): AnalyticsKind {
  if (parameters.metric !== undefined) {
    const kind = parameters.metric.toLowerCase();
    if (kind !== 'conversation' && kind !== 'pricing') {
      throw new AnalyticsQueryError(
        '"metric" must be conversation (conversation_analytics) or pricing (pricing_analytics), in any letter case.',
      );
    }
    return kind;
  }
  const pricing: string[] = [];
  const conversation: string[] = [];
  const names = (text: string | undefined) =>
    text === undefined
      ? []
      : text
          .replace(/[[\]"]/g, '')
          .split(',')
          .map((item) => item.trim().toUpperCase());
  for (const name of names(parameters.dimensions)) {
    if (PRICING_DIMENSIONS.has(name)) pricing.push(`dimension ${name}`);
    if (CONVERSATION_DIMENSIONS.has(name)) conversation.push(`dimension ${name}`);
  }
  for (const name of names(parameters.metric_types)) {
    if (name === 'VOLUME') pricing.push('metric type VOLUME');
    if (name === 'CONVERSATION') conversation.push('metric type CONVERSATION');
  }
  for (const name of ['pricing_categories', 'pricing_types'] as const) {
    if (parameters[name] !== undefined) pricing.push(`"${name}"`);
  }
  for (const name of ['conversation_categories', 'conversation_types', 'conversation_directions'] as const) {
    if (parameters[name] !== undefined) conversation.push(`"${name}"`);
  }
  if (pricing.length > 0 && conversation.length > 0) {
    throw new AnalyticsQueryError(
      `this request names pricing_analytics' ${pricing[0]} and conversation_analytics' ${conversation[0]}: ` +
        'give "metric" (conversation or pricing) to say which field names to answer with.',
    );
  }
  return pricing.length > 0 ? 'pricing' : 'conversation';
}

/** `metric_types`: every metric when absent or empty, as Meta answers; COST, and the kind's count word. */
export function analyticsMetrics(kind: AnalyticsKind, text: string | undefined): AnalyticsMetrics {
  if (text === undefined) return { count: true, cost: true };
  const countWord = kind === 'conversation' ? 'CONVERSATION' : 'VOLUME';
  const words = wordsOf('metric_types', metaList('metric_types', text), {
    COST: 'cost',
    [countWord]: 'count',
  } as Record<string, 'cost' | 'count'>);
  if (words.length === 0) return { count: true, cost: true };
  return { count: words.includes('count'), cost: words.includes('cost') };
}

/** Meta's list filters in wameter's words; each undefined when not given or given empty (Meta: every value). */
export interface AnalyticsListFilters {
  phoneNumbers?: string[];
  countries?: string[];
  categories?: UnitCategory[];
  types?: PricingType[];
  directions?: AnalyticsDirection[];
}

function present<T>(values: ReadonlyArray<T | null>): T[] {
  return values.filter((value): value is T => value !== null);
}

/**
 * The list filters of a request. Both fields' filter names are read (their values are one vocabulary);
 * `pricing_categories` and `conversation_categories` are one filter, as are the two `…_types`: giving both of
 * a pair is refused.
 */
export function analyticsListFilters(parameters: MetaAnalyticsParameters): AnalyticsListFilters {
  const filters: AnalyticsListFilters = {};
  const one = (
    a: 'pricing_categories' | 'pricing_types',
    b: 'conversation_categories' | 'conversation_types',
  ) => {
    if (parameters[a] !== undefined && parameters[b] !== undefined) {
      throw new AnalyticsQueryError(`"${a}" and "${b}" are one filter: give one of them.`);
    }
    return parameters[a] !== undefined
      ? ([a, parameters[a]] as const)
      : parameters[b] !== undefined
        ? ([b, parameters[b]] as const)
        : undefined;
  };
  const category = one('pricing_categories', 'conversation_categories');
  if (category) {
    const items = metaList(category[0], category[1]);
    if (items.length > 0) filters.categories = present(wordsOf(category[0], items, CATEGORY_WORDS));
  }
  const type = one('pricing_types', 'conversation_types');
  if (type) {
    const items = metaList(type[0], type[1]);
    if (items.length > 0) filters.types = present(wordsOf(type[0], items, TYPE_WORDS));
  }
  if (parameters.conversation_directions !== undefined) {
    const items = metaList('conversation_directions', parameters.conversation_directions);
    if (items.length > 0) {
      filters.directions = present(wordsOf('conversation_directions', items, DIRECTION_WORDS));
    }
  }
  if (parameters.country_codes !== undefined) {
    const items = metaList('country_codes', parameters.country_codes);
    for (const item of items) {
      if (!/^[A-Za-z]{2}$/.test(item)) {
        throw new AnalyticsQueryError(
          `"country_codes": ${shown(item)} is no 2-letter country code (ISO 3166, as US, IN, BR).`,
        );
      }
    }
    if (items.length > 0) filters.countries = items.map((item) => item.toUpperCase());
  }
  if (parameters.phone_numbers !== undefined) {
    const items = metaList('phone_numbers', parameters.phone_numbers);
    if (items.length > 0) filters.phoneNumbers = items;
  }
  return filters;
}

/**
 * The business numbers (phone_number_ids) `phone_numbers` names: each item a display number of a number of
 * the key's WABAs (`numbers`, compared by its digits: `+1 555-000-1111` is `15550001111`), else taken as a
 * phone_number_id, as the `business` filter takes one.
 */
export function businessesNamed(items: readonly string[], numbers: readonly BusinessNumber[]): string[] {
  const businesses = new Set<string>();
  for (const item of items) {
    const digits = displayNumberDigits(item);
    const found = digits === undefined ? [] : numbers.filter((number) => number.displayNumber === digits);
    if (found.length === 0) businesses.add(item);
    for (const number of found) businesses.add(number.business);
  }
  return [...businesses];
}

/**
 * The display numbers a webhook body gives its business numbers: each change's `metadata` naming a
 * `phone_number_id` and a `display_phone_number` of digits (signs dropped), under an entry naming its WABA.
 */
export function businessNumbersOf(value: unknown): BusinessNumber[] {
  // One per (WABA, number), the body's last: a batched body names its number in every change.
  const numbers = new Map<string, BusinessNumber>();
  const isRecord = (item: unknown): item is Record<string, unknown> =>
    typeof item === 'object' && item !== null && !Array.isArray(item);
  if (!isRecord(value) || !Array.isArray(value.entry)) return [];
  for (const entry of value.entry) {
    if (!isRecord(entry) || typeof entry.id !== 'string' || !Array.isArray(entry.changes)) continue;
    for (const change of entry.changes) {
      if (!isRecord(change) || !isRecord(change.value) || !isRecord(change.value.metadata)) continue;
      const { phone_number_id: business, display_phone_number: display } = change.value.metadata;
      const displayNumber = displayNumberDigits(display);
      if (typeof business !== 'string' || business === '' || displayNumber === undefined) continue;
      if (business.includes('\u0000') || entry.id.includes('\u0000')) continue;
      numbers.set(JSON.stringify([entry.id, business]), { waba: entry.id, business, displayNumber });
    }
  }
  return [...numbers.values()];
}

/** A field of Graph's `fields=` and its modifiers (`.start(1)` → `start: "1"`), as written (`()` → `[]`). */
export interface GraphField {
  name: 'id' | 'conversation_analytics' | 'pricing_analytics';
  modifiers: Record<string, string>;
}

/** The modifiers each field wameter answers takes (Meta's analytics guide): any other is refused. */
const GRAPH_MODIFIERS: Readonly<Record<GraphField['name'], readonly string[]>> = {
  id: [],
  conversation_analytics: [
    'start',
    'end',
    'granularity',
    'phone_numbers',
    'country_codes',
    'metric_types',
    'conversation_categories',
    'conversation_types',
    'conversation_directions',
    'dimensions',
  ],
  pricing_analytics: [
    'start',
    'end',
    'granularity',
    'phone_numbers',
    'country_codes',
    'metric_types',
    'pricing_categories',
    'pricing_types',
    'dimensions',
  ],
};

/**
 * Graph's `fields` parameter as Meta's tools write it for a WABA's analytics
 * (`conversation_analytics.start(…).end(…).granularity(DAILY).dimensions(["PHONE"]),id`): its fields, split at
 * the commas outside brackets and quotes, each with its modifiers. Only `id`, `conversation_analytics` and
 * `pricing_analytics` are answered; a field named twice, a modifier given twice or one its field does not
 * take, and text that is none of this are refused, naming what is wrong.
 */
export function graphFields(text: string): GraphField[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === '"') quote = false;
    } else if (c === '"') quote = true;
    else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (quote || depth !== 0) {
    throw new AnalyticsQueryError(
      `"fields" is not closed: a bracket or quote of ${shown(text)} is left open.`,
    );
  }
  parts.push(text.slice(start));
  if (parts.every((part) => part.trim() === '')) {
    throw new AnalyticsQueryError(
      '"fields" names no field: give conversation_analytics or pricing_analytics.',
    );
  }
  const fields: GraphField[] = [];
  for (const raw of parts) {
    const part = raw.replace(/\s+(?=\.)|(?<=\.)\s+/g, '').trim();
    const head = /^[a-z_]+/.exec(part)?.[0] ?? '';
    if (!Object.hasOwn(GRAPH_MODIFIERS, head)) {
      throw new AnalyticsQueryError(
        `"fields": ${shown(head || part)} is not a field wameter answers: give conversation_analytics, pricing_analytics or id.`,
      );
    }
    const name = head as GraphField['name'];
    if (fields.some((field) => field.name === name)) {
      throw new AnalyticsQueryError(`"fields" names ${name} twice: give it once, with all its modifiers.`);
    }
    const modifiers: Record<string, string> = {};
    let rest = part.slice(head.length);
    while (rest !== '') {
      const opening = /^\.([a-z_]+)\(/.exec(rest);
      if (!opening) {
        if (/^\.[a-z_]+$/.test(rest)) {
          throw new AnalyticsQueryError(`"fields": ${shown(part)} is not closed: write ${rest.slice(1)}(…).`);
        }
        throw new AnalyticsQueryError(
          `"fields": ${shown(part)} cannot be read: write each modifier as .name(value), e.g. ${name}.start(1751328000).end(1754006400).`,
        );
      }
      const modifier = opening[1]!;
      // The argument runs to its closing bracket (brackets inside it, and quoted text, counted).
      let level = 0;
      let inQuote = false;
      let close = -1;
      for (let i = opening[0].length; i < rest.length; i++) {
        const c = rest[i]!;
        if (inQuote) {
          if (c === '\\') i++;
          else if (c === '"') inQuote = false;
        } else if (c === '"') inQuote = true;
        else if (c === '(' || c === '[') level++;
        else if (c === ')' && level === 0) {
          close = i;
          break;
        } else if (c === ')' || c === ']') level--;
      }
      if (close === -1) throw new AnalyticsQueryError(`"fields": ${shown(part)} is not closed.`);
      if (!GRAPH_MODIFIERS[name].includes(modifier)) {
        const takes = GRAPH_MODIFIERS[name];
        throw new AnalyticsQueryError(
          `"fields": ${name} takes no "${modifier}"` +
            (takes.length === 0 ? '.' : `; it takes ${takes.join(', ')}.`),
        );
      }
      if (Object.hasOwn(modifiers, modifier)) {
        throw new AnalyticsQueryError(`"fields": ${name} gives "${modifier}" twice: give it once.`);
      }
      const value = rest.slice(opening[0].length, close).trim();
      // `.country_codes()`, as the Graph reference writes an empty list: every value, as `[]`.
      modifiers[modifier] = value === '' ? '[]' : value;
      rest = rest.slice(close + 1);
    }
    fields.push({ name, modifiers });
  }
  return fields;
}
