// Reconciliation with Meta (contract §7): wameter's verdict per message against what Meta's status webhook
// said, and wameter's totals per day × country × category (or pricing type / direction, when the export has
// no category) against a Meta analytics export. Pure: it only compares values it is given, and never changes a
// verdict — a difference is reported, not resolved.

import { DAY_MS, HOUR_MS, formatInstant, localClock, localDate } from './calendar.js';
import { PER_MESSAGE_PRICING_FROM, eraOn, isConversationEra, pricingModelOf } from './eras.js';
import { defaultAccount } from './events.js';
import { exactMicros, formatMicros, negateMicros, sumMicros, type Micros } from './money.js';
import { err, ok, type Result } from './result.js';
import type { BillableUnit, Finding, MessageDecision } from './units.js';

// ---------------------------------------------------------------------------------------------------------
// Causes

/** The likely cause of a difference, as a stable code (docs/estimate-and-reconcile.md says what to do). */
export type DifferenceCause =
  /** Meta billed another template category than the send log says: Meta recategorised the template. */
  | 'TEMPLATE_RECATEGORISED'
  /** The WABA's time zone in the accounts file differs from Meta's: a message falls on another day or era. */
  | 'TIME_ZONE_DAY_EDGE'
  /** Around a switch of pricing model (CBP → PMP…) Meta applied the other model. */
  | 'ERA_BOUNDARY'
  /** Meta gave a free entry point where wameter charged: the user's ad / Page CTA message is missing. */
  | 'FREE_ENTRY_POINT_MISSED'
  /** A status webhook (or a send log line) never reached wameter; or Meta counts units wameter never saw. */
  | 'MISSING_WEBHOOK'
  /** wameter has units it could not price (no rate, no rate card, unknown number). */
  | 'UNKNOWN_RATE'
  /**
   * Same count, different cost, not accounted for by message differences: the rate card wameter used is not the
   * one Meta billed with.
   */
  | 'COST_DIFFERS'
  /**
   * Same count, different cost, by one ratio Meta/wameter across (nearly) all of a WABA's cost differences:
   * Meta bills the WABA in another currency than wameter does (accounts file), or a card of another currency.
   */
  | 'CURRENCY_MISMATCH'
  /** wameter counts units Meta does not: the input holds messages Meta did not bill (or the export is partial). */
  | 'META_COUNTS_FEWER'
  /**
   * CBP, same category: Meta's conversation ids say the message opened a conversation where wameter's rode on
   * an open one, or rode where wameter's opened one (a conversation's start or expiry differs), or both rode
   * but on conversations that began with different messages (the knock-on of such an earlier difference).
   */
  | 'CONVERSATION_MISMATCH'
  /**
   * Same category, another pricing type (regular against free_customer_service…): the two sides disagree on
   * whether a customer service window was open at delivery.
   */
  | 'PRICING_TYPE_MISMATCH'
  /** Any other difference of verdict (category, or several at once). */
  | 'CATEGORY_MISMATCH';

/** What to do about a conversation that differs (CONVERSATION_MISMATCH), whichever way it differs. */
const CONVERSATION_ADVICE =
  "run `wameter explain --user …` to see wameter's conversations and when each expires, and look for a message of that conversation missing from the input (sent before it or by another tool) or one Meta did not bill";

const WHAT_TO_DO: Record<DifferenceCause, string> = {
  TEMPLATE_RECATEGORISED:
    "Meta billed the template's category at send time: feed Meta's template_category_update webhooks (or fix the send log's category) and re-rate",
  TIME_ZONE_DAY_EDGE:
    "the day (or era) cut differs by the time zone: set the WABA's time zone in the accounts file to the one in Meta Business Manager",
  ERA_BOUNDARY:
    'the message sits at a switch of pricing model: check which model Meta applied to this WABA at the switch',
  FREE_ENTRY_POINT_MISSED:
    "Meta opened a free entry point: feed the user's inbound message that came through the ad / Page CTA (with its referral)",
  MISSING_WEBHOOK:
    'one side has a message or unit the other never saw: feed every webhook and send log line of the period (Meta keeps no history)',
  UNKNOWN_RATE:
    'wameter could not price some units: see the NO_RATE / NO_RATE_CARD / UNKNOWN_RECIPIENT findings of `wameter rate`',
  COST_DIFFERS:
    "same units, different cost: the rate card wameter used is not the one Meta billed with; import Meta's official rate card (and volume tiers) in force for that date, in the currency Meta bills this WABA in",
  CURRENCY_MISMATCH:
    "Meta likely bills this WABA in another currency than wameter does: set the WABA's currency in the accounts file to the one of its invoices in Meta Business Manager and give a rate card in that currency (a card of another currency gives the same pattern); the rates themselves are not the cause",
  META_COUNTS_FEWER:
    'wameter counts units Meta does not: check for messages Meta did not deliver, an export filtered to fewer numbers, or one asked for fewer days than the period compared (choose the period with --from/--to)',
  CONVERSATION_MISMATCH: `same category, but not the same conversation: Meta opened one where wameter rode on an open one, rode where wameter opened one, or both rode on different ones (following an earlier such difference): ${CONVERSATION_ADVICE}`,
  PRICING_TYPE_MISMATCH:
    "same category, another pricing type: Meta and wameter disagree on whether the user's customer service window was open at delivery; run `wameter explain --user …` to see wameter's windows, and feed the user's inbound messages (each opens a window) or check for one in the input that Meta never received",
  CATEGORY_MISMATCH:
    "the verdicts differ: run `wameter explain --user …` to see the windows, and check the user's inbound messages",
};

/** Every cause a difference can have (docs/estimate-and-reconcile.md documents each with what to do). */
export const DIFFERENCE_CAUSES = Object.keys(WHAT_TO_DO) as readonly DifferenceCause[];

// ---------------------------------------------------------------------------------------------------------
// Meta's words, normalised

/** Meta's category words of every era, in wameter's vocabulary (contract §4); `undefined` when unknown. */
export function normaliseMetaCategory(word: string | undefined): string | undefined {
  if (word === undefined || word === '') return undefined;
  const lower = word.toLowerCase().replace(/-/g, '_');
  switch (lower) {
    case 'marketing_lite': // Marketing Messages Lite API: billed as marketing
      return 'marketing';
    case 'customer_initiated': // CBP-2022 spelling
      return 'user_initiated';
    case 'unknown':
      return undefined;
    default:
      return lower;
  }
}

/**
 * Meta's pricing / conversation type words, in wameter's vocabulary (contract §4 `type`); `undefined` when
 * unknown. The webhooks' `pricing.type` and pricing_analytics' `pricing_type` write `FREE_ENTRY_POINT`;
 * conversation_analytics' `conversation_type` writes `FREE_ENTRY` (besides `FREE_TIER` and `REGULAR`).
 */
export function normaliseMetaType(word: string | undefined): string | undefined {
  if (word === undefined || word === '') return undefined;
  const lower = word.toLowerCase();
  switch (lower) {
    case 'free_entry': // conversation_analytics' spelling
      return 'free_entry_point';
    case 'unknown':
      return undefined;
    default:
      return lower;
  }
}

const TEMPLATE_FAMILY: Readonly<Record<string, string>> = {
  marketing: 'marketing',
  utility: 'utility',
  authentication: 'authentication',
  authentication_international: 'authentication',
};

// ---------------------------------------------------------------------------------------------------------
// Inputs

/** What the input contained about each message besides the verdicts (collected while reading events). */
export interface MessageEvidenceIndex {
  /** Business messages that have an outbound line (the sender's log). */
  sentIds: ReadonlySet<string>;
  /** Business messages named by at least one status webhook (with or without pricing). */
  statusIds: ReadonlySet<string>;
  /** WABAs for which some outbound line was given: a message without one is missing from the log. */
  wabasWithSendLog: ReadonlySet<string>;
  /** WABAs for which some status carried Meta's pricing: a message without any status lost its webhook. */
  wabasWithPricedStatuses: ReadonlySet<string>;
}

export interface ReconcileInput {
  /** One per delivered business message (`withDecisions`), carrying Meta's evidence in `meta`. */
  decisions: readonly MessageDecision[];
  units: readonly BillableUnit[];
  findings?: readonly Finding[];
  evidence: MessageEvidenceIndex;
  timeZoneOf(waba: string): string;
  isReportedRulesEnabled?: boolean;
  /**
   * A Meta analytics export, the WABA it describes, and the local days compared (`comparedPeriod`; by
   * default the whole months its data points span).
   */
  analytics?: { export: AnalyticsExport; waba: string; period?: ComparedPeriod };
  /**
   * The currency wameter bills a WABA in, and where that comes from (its accounts entry, or wameter's default
   * for a WABA the accounts file lacks). Meta's exports state no currency: their amounts are read in this one.
   */
  billingCurrencyOf?(waba: string): { currency: string; source: CurrencySource };
  /**
   * The WABAs whose messages `checked` counts (default: all). A key's view rates its portfolio mates' events
   * too (shared tiers and allowances), but their messages are not its to count.
   */
  countedWabas?: readonly string[];
}

export type CurrencySource = 'accounts' | 'default';

// ---------------------------------------------------------------------------------------------------------
// Output (contract §7)

export interface VerdictJson {
  pricing_model?: string;
  category?: string;
  type?: string;
  /** CBP: the message opened a conversation or rode on one. */
  conversation?: 'opened' | 'rode';
  conversation_id?: string;
  unit?: string;
  rule?: string;
  send_log?: boolean;
}

export interface MessageDifference {
  message: string;
  waba: string;
  business: string;
  user: string;
  delivered_at: string;
  ours: VerdictJson | null;
  meta: VerdictJson | null;
  /** The fields that differ: pricing_model, category, type, conversation, webhook, send_log. */
  differs: string[];
  cause: DifferenceCause;
  note: string;
}

export interface BucketJson {
  waba: string;
  /**
   * Local day in the WABA's time zone, or `FROM..TO` for a point on several days: a month, or a half hour
   * across the WABA's midnight (a UTC+05:45 zone), whose count cannot be split by day.
   */
  day: string;
  /** ISO country, or `*` when the export has no country dimension. */
  country: string;
  /** wameter's category word, or `*` when the export has no category dimension. */
  category: string;
  /**
   * Only when the export has no category dimension but a pricing / conversation type one: the type word
   * (`regular`, `free_tier`, `free_entry_point`, `free_customer_service`) the bucket is cut by.
   */
  type?: string;
  /**
   * Only when the export has no category dimension but a conversation direction one: `business_initiated`
   * or `user_initiated`.
   */
  direction?: string;
}

export interface BucketTotalsJson {
  units: number;
  amount: string;
  /**
   * wameter's currency for the WABA. On Meta's side it is **assumed** (`currency_stated: false`): Meta's
   * analytics carry no currency, so its amount is read in the currency wameter bills the WABA in.
   */
  currency?: string;
  /** Meta's side only: `false`, its export states no currency (`currency` is wameter's, not Meta's). */
  currency_stated?: false;
  /** Charged units wameter could not price (they add nothing to `amount`). */
  unpriced_units?: number;
}

export interface BucketDifference {
  bucket: BucketJson;
  ours: BucketTotalsJson;
  meta: BucketTotalsJson;
  cause: DifferenceCause;
  note: string;
  /**
   * Message differences that account for this bucket's difference in count or, at the same count, exactly for
   * its difference in cost.
   */
  messages?: string[];
}

export type Difference = MessageDifference | BucketDifference;

export interface ReconciliationJson {
  differences: Difference[];
  checked: {
    /**
     * Delivered business messages looked at, of every WABA (each is compared with its own webhook); of the
     * `countedWabas` only, when given. With an analytics export, those delivered in the period compared with it
     * (its local days on the export's WABA's clock); a difference outside it is still listed.
     */
    messages: number;
    /** Of those, messages whose webhook carried no pricing (API v24+, or only a status without it). */
    unverifiable: number;
    /**
     * Of those, messages with Meta's pricing but no send log line (outbound): wameter rated them from Meta's own
     * `pricing.category` (finding CATEGORY_FROM_WEBHOOK), so comparing that category with the same webhook proves
     * nothing. They are still compared field by field (a difference is reported), but not counted as checked:
     * `messages − unverifiable − category_from_webhook` were.
     */
    category_from_webhook: number;
    /**
     * Buckets of the analytics export (and of wameter's units in its period) compared: those Meta's export has a
     * data point for (a zero one too) and those holding a unit of wameter's; one that only a message difference
     * names, empty on both sides, is not counted.
     */
    buckets: number;
  };
  /** With an analytics export: what was compared with it, the totals of both sides, what was left out. */
  analytics?: AnalyticsComparisonJson;
}

/** Units and amount per currency (an amount of wameter's, so always in a currency it knows). */
export type ByCurrencyJson = Record<string, { units: number; amount: string }>;

export interface AnalyticsComparisonJson {
  /** The WABA the export describes: only its units are compared. */
  waba: string;
  kind: NonNullable<AnalyticsExport['kind']>;
  period: {
    /** First and last local day compared (inclusive), in `time_zone` (the WABA's, accounts file). */
    from: string;
    to: string;
    time_zone: string;
    basis: ComparedPeriod['basis'];
  };
  /** The currency wameter bills the WABA in; Meta's amounts are read in it, since Meta's export states none. */
  currency: string;
  /** `accounts`: the WABA's entry in the accounts file; `default`: the WABA is not in it. */
  currency_source: CurrencySource;
  /** wameter's units of the WABA inside the period: every one of them was compared. */
  units: number;
  /** Per WABA and currency of wameter's units: both totals over the period and Meta − wameter. */
  totals: AnalyticsTotalsJson[];
  /** What lies outside the comparison, so that nothing is left out silently. */
  not_compared: {
    /** wameter's units of the WABA opened outside the period. */
    outside_period: { units: number; by_currency: ByCurrencyJson };
    /** wameter's units of the other WABAs of the input: the export describes one WABA. */
    other_wabas: { wabas: number; units: number; by_currency: ByCurrencyJson };
    /**
     * wameter's units of the WABA inside the period that the export's kind does not count: with a
     * conversation_analytics export, those billed per message (from 2025-07-01 in the WABA's time zone) or per
     * notification (before 2022-02-01), which Meta's pricing_analytics counts. A pricing_analytics export counts
     * every unit (as `/v1/analytics?metric=pricing`): none there. `reason` when there are some.
     */
    other_pricing_model: { units: number; by_currency: ByCurrencyJson; reason?: string };
    /** Meta's data points outside the period (only a requested period leaves some out). */
    meta_outside_period: { units: number; amount: string };
  };
  /** Set when (nearly) every cost difference has one ratio Meta/wameter far from 1: see CURRENCY_MISMATCH. */
  currency_ratio?: { meta_per_wameter: string; cost_differences: number; matching: number };
  /** Set when no daily or monthly data point of Meta's begins or ends at midnight in `period.time_zone`. */
  meta_day_start?: MetaDayStartJson;
}

/**
 * The clock Meta's daily (or monthly) data points start at, in the WABA's time zone of the accounts file and in
 * UTC (`HH:MM`), when not one of them begins or ends at midnight there: Meta cuts a WABA's days at midnight in
 * the time zone set for it in Business Manager, so the accounts file names another zone. Its units then fall on
 * neighbouring days, or months (TIME_ZONE_DAY_EDGE, META_COUNTS_FEWER, MISSING_WEBHOOK), whatever else is right.
 */
export interface MetaDayStartJson {
  local: string;
  utc: string;
  /** How many daily or monthly points there are: none of them is cut at the accounts file's midnight. */
  points: number;
}

export interface AnalyticsTotalsJson {
  waba: string;
  currency: string;
  ours: { units: number; amount: string; unpriced_units?: number };
  /** `null` when wameter's units of the WABA span several currencies: Meta's one total cannot be split. */
  meta: { units: number; amount: string; currency_stated: false } | null;
  /** Meta minus wameter (`null` with `meta`). */
  difference: { units: number; amount: string } | null;
}

// ---------------------------------------------------------------------------------------------------------
// Analytics exports

export interface AnalyticsPoint {
  startMs: number;
  endMs: number;
  /** Conversations (conversation_analytics) or messages (pricing_analytics). */
  count: number;
  /** Exact: a bigint beyond 2^53 micros (billions of rupiah in one point). */
  costMicros: Micros;
  country?: string;
  /** Normalised (see analyticsCategory); absent when the point names no category. */
  category?: string;
  /** Normalised pricing / conversation type (normaliseMetaType). */
  type?: string;
  /** `business_initiated` / `user_initiated` (conversation_direction); absent when unknown or not asked. */
  direction?: string;
}

export interface AnalyticsExport {
  /**
   * Which of Meta's two answers it is: from its wrapper, else from its data points; absent for an unwrapped
   * export without data points (Meta saw no traffic), whose comparison takes the kind Meta answers for its
   * period (`kindOfPeriod`).
   */
  kind?: 'conversation_analytics' | 'pricing_analytics';
  /** The WABA id when the export carries one (`id`). */
  waba?: string;
  points: AnalyticsPoint[];
}

export type AnalyticsError = { code: 'UNRECOGNISED_ANALYTICS'; message: string };

type Rec = Record<string, unknown>;
const isRecord = (value: unknown): value is Rec =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Reads Meta's `conversation_analytics` / `pricing_analytics` answer: the Graph API document
 * (`{"conversation_analytics":{"data":[{"data_points":[…]}]},"id":…}`) or its unwrapped `{"data":[…]}`.
 */
export function parseAnalyticsExport(value: unknown): Result<AnalyticsExport, AnalyticsError> {
  const fail = (message: string) => err({ code: 'UNRECOGNISED_ANALYTICS' as const, message });
  if (!isRecord(value)) return fail('an analytics export is a JSON object');
  let kind: AnalyticsExport['kind'] | undefined;
  let body: unknown = value;
  if (isRecord(value.conversation_analytics)) {
    kind = 'conversation_analytics';
    body = value.conversation_analytics;
  } else if (isRecord(value.pricing_analytics)) {
    kind = 'pricing_analytics';
    body = value.pricing_analytics;
  }
  // The Graph API's answer to a refused request (bad token, field, period) saved in place of its data.
  if (kind === undefined && isRecord(value.error)) {
    const { message, code } = value.error;
    return fail(
      `this is an error answer of Meta's Graph API, not analytics data (${typeof message === 'string' ? JSON.stringify(message) : 'no message'}${typeof code === 'number' ? `, code ${code}` : ''}): correct the request and save Meta's answer again`,
    );
  }
  if (!isRecord(body) || !Array.isArray(body.data)) {
    return fail(
      'not a Meta analytics export: expected {"conversation_analytics":{"data":[…]}}, {"pricing_analytics":{"data":[…]}} or {"data":[{"data_points":[…]}]}',
    );
  }
  const points: AnalyticsPoint[] = [];
  let hasCost = false;
  for (let i = 0; i < body.data.length; i++) {
    const entry: unknown = body.data[i];
    if (!isRecord(entry) || !Array.isArray(entry.data_points)) {
      return fail(`data[${i}] has no data_points array`);
    }
    for (let j = 0; j < entry.data_points.length; j++) {
      const where = `data[${i}].data_points[${j}]`;
      const point: unknown = entry.data_points[j];
      if (!isRecord(point)) return fail(`${where} is not an object`);
      const startMs = secondsField(point.start);
      const endMs = secondsField(point.end);
      if (startMs === undefined || endMs === undefined || endMs <= startMs) {
        return fail(`${where} needs "start" and "end" in Unix seconds, end after start`);
      }
      const pointKind =
        typeof point.volume === 'number'
          ? 'pricing_analytics'
          : typeof point.conversation === 'number'
            ? 'conversation_analytics'
            : undefined;
      if (pointKind === undefined) {
        const given = (['volume', 'conversation'] as const).find((field) => point[field] != null);
        if (given !== undefined) {
          return fail(
            `${where} has a "${given}" that is not a number (${JSON.stringify(point[given])}): save Meta's Graph API answer as it came`,
          );
        }
        return fail(
          `${where} has neither "conversation" (conversation_analytics) nor "volume" (pricing_analytics)`,
        );
      }
      kind ??= pointKind;
      if (pointKind !== kind) return fail(`${where} mixes ${pointKind} into a ${kind} export`);
      const count = (pointKind === 'pricing_analytics' ? point.volume : point.conversation) as number;
      if (!Number.isSafeInteger(count) || count < 0)
        return fail(`${where} has a count that is not a whole number`);
      const cost = point.cost ?? 0;
      if (typeof cost !== 'number' || !Number.isFinite(cost))
        return fail(`${where} has a "cost" that is not a number`);
      if (point.cost !== undefined && point.cost !== null) hasCost = true;
      const parsed: AnalyticsPoint = { startMs, endMs, count, costMicros: metaCostToMicros(cost) };
      if (typeof point.country === 'string' && point.country !== '')
        parsed.country = point.country.toUpperCase();
      const typeWord = stringField(point.conversation_type ?? point.pricing_type);
      const category = analyticsCategory(
        stringField(point.conversation_category ?? point.pricing_category),
        typeWord,
      );
      if (category !== undefined) parsed.category = category;
      const type = normaliseMetaType(typeWord);
      if (type !== undefined) parsed.type = type;
      const direction = normaliseMetaCategory(stringField(point.conversation_direction));
      if (direction === 'business_initiated' || direction === 'user_initiated') parsed.direction = direction;
      points.push(parsed);
    }
  }
  // Asked without metric_types COST, Meta's points carry counts only (Meta writes a cost on every point, 0 for
  // a free one, when asked): each read as 0, every charged bucket would be a cost difference blamed on the rates.
  if (points.length > 0 && !hasCost) {
    return fail(
      `no data point has a "cost": the export was asked without metric_types COST, and wameter compares costs as well as counts: ask Meta again with metric_types COST and ${kind === 'pricing_analytics' ? 'VOLUME' : 'CONVERSATION'}`,
    );
  }
  // Unwrapped and without data points, it says nothing of its kind: an empty answer of either (the period,
  // given with --from and --to, decides the kind compared: kindOfPeriod).
  const result: AnalyticsExport = kind === undefined ? { points } : { kind, points };
  if (typeof value.id === 'string' && value.id !== '') result.waba = value.id;
  return ok(result);
}

/**
 * The answer Meta gives for traffic from local day `from` on: `pricing_analytics` (per message) from the
 * per-message pricing on (pricing-rules §5), `conversation_analytics` before.
 */
function kindOfPeriod(from: string): NonNullable<AnalyticsExport['kind']> {
  return from >= PER_MESSAGE_PRICING_FROM ? 'pricing_analytics' : 'conversation_analytics';
}

function secondsField(value: unknown): number | undefined {
  const seconds = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof seconds === 'number' && Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
}

function stringField(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * THE rounding point of reconciliation: Meta's analytics give `cost` as a JSON number (a binary float). It
 * becomes micros from its shortest decimal form (what Meta wrote, e.g. 0.0432), rounded half up to 6 decimals;
 * exact at any size (a bigint beyond 2^53 micros: 9,007,199,254.74 units, a month of rupiah).
 */
export function metaCostToMicros(cost: number): Micros {
  const sign = cost < 0 ? -1 : 1;
  let text = String(Math.abs(cost));
  const exponent = /^(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (exponent) {
    const digits = `${exponent[1]}${exponent[2] ?? ''}`;
    const point = exponent[1]!.length + Number(exponent[3]);
    text =
      point <= 0
        ? `0.${'0'.repeat(-point)}${digits}`
        : point >= digits.length
          ? digits + '0'.repeat(point - digits.length)
          : `${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  const [whole = '0', fraction = ''] = text.split('.');
  const kept = BigInt(fraction.slice(0, 6).padEnd(6, '0'));
  const roundsUp = (fraction[6] ?? '0') >= '5';
  const micros = BigInt(whole) * 1_000_000n + kept + (roundsUp ? 1n : 0n);
  return exactMicros(sign < 0 ? -micros : micros);
}

/**
 * The category an analytics data point is kept under, from the category Meta gave it (`undefined` when it gave
 * none: a category is never made up from a pricing type or a conversation direction, which are dimensions of
 * their own). Meta files free entry points under SERVICE in its analytics (see the FREE_ENTRY_POINT points of
 * its examples), so a point of type FREE_ENTRY_POINT, and wameter's `referral_conversion` units, go there.
 */
export function analyticsCategory(
  category: string | undefined,
  type: string | undefined,
): string | undefined {
  const normalised = normaliseMetaCategory(category);
  if (normalised === undefined) return undefined;
  if (normalised === 'referral_conversion' || normaliseMetaType(type) === 'free_entry_point')
    return 'service';
  return normalised;
}

/** The direction of a conversation of each category: business-initiated ones open with a template. */
const DIRECTION_OF_CATEGORY: Readonly<Record<string, 'business_initiated' | 'user_initiated'>> = {
  business_initiated: 'business_initiated',
  marketing: 'business_initiated',
  utility: 'business_initiated',
  authentication: 'business_initiated',
  authentication_international: 'business_initiated',
  user_initiated: 'user_initiated',
  service: 'user_initiated',
};

/** The words of one unit (wameter's or Meta's, in wameter's vocabulary) in each dimension of Meta's analytics. */
interface AnalyticsWords {
  category?: string;
  type?: string;
  direction?: string;
}

/**
 * Where Meta's analytics file a unit of this category and pricing type: a free entry point (type
 * `free_entry_point`, or CBP's category `referral_conversion`) under category SERVICE, type FREE_ENTRY_POINT
 * and direction USER_INITIATED (the user wrote first, from the ad); other units under their own category and
 * type, and the direction of their category.
 */
function analyticsWordsOf(category: string | undefined, type: string | undefined): AnalyticsWords {
  if (type === 'free_entry_point' || category === 'referral_conversion') {
    return { category: 'service', type: 'free_entry_point', direction: 'user_initiated' };
  }
  const words: AnalyticsWords = {};
  if (category !== undefined) words.category = category;
  if (type !== undefined) words.type = type;
  const direction =
    category === undefined || !Object.hasOwn(DIRECTION_OF_CATEGORY, category)
      ? undefined
      : DIRECTION_OF_CATEGORY[category];
  if (direction !== undefined) words.direction = direction;
  return words;
}

/**
 * The dimensions (besides day and country) buckets are cut by: the category when the export has one — it
 * decides the price, and fixes the direction —, else whichever of pricing type and conversation direction
 * it has, else none (totals per day × country). Only dimensions the export carries are compared: wameter's
 * units are summed over the others (and over phone number and volume tier, never compared).
 */
function analyticsDimensions(points: readonly AnalyticsPoint[]): ('category' | 'type' | 'direction')[] {
  if (points.some((p) => p.category !== undefined)) return ['category'];
  const dimensions: ('type' | 'direction')[] = [];
  if (points.some((p) => p.type !== undefined)) dimensions.push('type');
  if (points.some((p) => p.direction !== undefined)) dimensions.push('direction');
  return dimensions;
}

// ---------------------------------------------------------------------------------------------------------
// The period compared with an export

/**
 * The local days (in the WABA's time zone) over which wameter's units are compared with an analytics export.
 * Meta's answer states no period — only its data points' start and end — and lists no point for a day without
 * traffic, so a period taken from the points would silently leave out wameter's units of a first or last day
 * Meta does not list. By default it is therefore the whole calendar months the points span (`export_months`),
 * or the whole days for a half-hour export (`export_days`); `requested` is a period the user gives
 * (`--from` / `--to`: the period asked of Meta, or a narrower one).
 */
export interface ComparedPeriod {
  /** First local day compared, YYYY-MM-DD. */
  from: string;
  /** Last local day compared, inclusive. */
  to: string;
  basis: 'export_months' | 'export_days' | 'requested';
}

export type PeriodError = {
  code: 'BAD_PERIOD' | 'ANALYTICS_PERIOD_CUTS_POINT' | 'ANALYTICS_PERIOD_UNKNOWN';
  message: string;
};

/** A real calendar date written YYYY-MM-DD. */
export function isCalendarDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const atMs = Date.parse(`${text}T00:00:00Z`);
  return !Number.isNaN(atMs) && new Date(atMs).toISOString().slice(0, 10) === text;
}

/** Half a day: how far the account's time zone may be off Meta's and a point still fall on its own days. */
const HALF_DAY_MS = 12 * HOUR_MS;

/**
 * A HALF_HOUR point (an hour at most) is cut on the clock, not at anyone's midnight: it lies on the local
 * days it touches. Where the WABA's midnight falls inside a half hour (Asia/Kathmandu, UTC+05:45: 18:00Z–18:30Z
 * is 23:45–00:15) that is two days, and the point's count cannot be split between them.
 */
const isClockPoint = (point: AnalyticsPoint) => point.endMs - point.startMs <= HOUR_MS;

/**
 * THE local days a data point is counted on: the period derived from an export, the check that a period holds
 * whole points, and the bucket a point goes to all read them here. A half-hour point: the days it touches
 * (isClockPoint). A day or a month, cut at midnight in Meta's time zone for the WABA: its edges are moved
 * inwards by half a day, so that a point cut in another time zone than the accounts file's (a midnight off by
 * some hours) keeps its own days — a DAILY point is the one day it mostly covers.
 */
function daysOfPoint(point: AnalyticsPoint, timeZone: string): { first: string; last: string } {
  if (isClockPoint(point)) {
    return { first: localDate(point.startMs, timeZone), last: localDate(point.endMs - 1, timeZone) };
  }
  const inset = Math.min(HALF_DAY_MS, Math.floor((point.endMs - point.startMs) / 2));
  return {
    first: localDate(point.startMs + inset, timeZone),
    last: localDate(point.endMs - inset, timeZone),
  };
}

/**
 * When no daily or monthly data point begins or ends at midnight in `timeZone`: the clock most of them start
 * at, there and in UTC (see MetaDayStartJson). Half-hour points are cut on the clock and say nothing of it.
 */
export function metaDayStart(
  points: readonly AnalyticsPoint[],
  timeZone: string,
): MetaDayStartJson | undefined {
  const days = points.filter((point) => !isClockPoint(point));
  if (days.length === 0) return undefined;
  const clockOf = (atMs: number) => localClock(atMs, timeZone).slice(11);
  const starts = new Map<string, { utc: string; count: number }>();
  for (const point of days) {
    const local = clockOf(point.startMs);
    if (local === '00:00' || clockOf(point.endMs) === '00:00') return undefined;
    const utc = formatInstant(point.startMs).slice(11, 16);
    const seen = starts.get(local) ?? { utc, count: 0 };
    seen.count += 1;
    starts.set(local, seen);
  }
  const [local, { utc }] = [...starts].sort((a, b) => b[1].count - a[1].count || (a[0] < b[0] ? -1 : 1))[0]!;
  return { local, utc, points: days.length };
}

function lastDayOfMonth(day: string): string {
  const [year, month] = day.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(year, month, 0)).toISOString().slice(0, 10);
}

/**
 * The period compared with `exported` (see ComparedPeriod). A requested bound replaces the default one; a
 * period that holds only part of a data point (a MONTHLY point and a mid-month bound) is refused, since
 * Meta's count for the point cannot be split by day.
 */
export function comparedPeriod(
  exported: AnalyticsExport,
  timeZone: string,
  requested: { from?: string; to?: string } = {},
): Result<ComparedPeriod, PeriodError> {
  for (const [flag, day] of [
    ['from', requested.from],
    ['to', requested.to],
  ] as const) {
    if (day !== undefined && !isCalendarDate(day)) {
      return err({
        code: 'BAD_PERIOD',
        message: `${flag} "${day}" is not a date: write YYYY-MM-DD (a day in the WABA's time zone)`,
      });
    }
  }
  const spans = exported.points.map((point) => daysOfPoint(point, timeZone));
  let from = requested.from;
  let to = requested.to;
  if (spans.length === 0 && (from === undefined || to === undefined)) {
    return err({
      code: 'ANALYTICS_PERIOD_UNKNOWN',
      message:
        "Meta's export has no data points, so it says nothing of the period it covers: give the period asked of Meta (--from and --to)",
    });
  }
  const isHalfHourly = exported.points.every(isClockPoint);
  if (from === undefined) {
    const first = spans.map((span) => span.first).sort()[0]!;
    from = isHalfHourly ? first : `${first.slice(0, 7)}-01`;
  }
  if (to === undefined) {
    const last = spans
      .map((span) => span.last)
      .sort()
      .at(-1)!;
    to = isHalfHourly ? last : lastDayOfMonth(last);
  }
  if (to < from) {
    return err({ code: 'BAD_PERIOD', message: `the period ends (${to}) before it starts (${from})` });
  }
  for (const span of spans) {
    const isOutside = span.last < from || span.first > to;
    const isInside = span.first >= from && span.last <= to;
    if (!isOutside && !isInside) {
      return err({
        code: 'ANALYTICS_PERIOD_CUTS_POINT',
        message: `the period ${from}..${to} holds only part of Meta's data point ${span.first}..${span.last}, whose count cannot be split by day: choose a period that holds whole points (whole months for a MONTHLY export; both days of a half hour across the WABA's midnight)`,
      });
    }
  }
  const basis =
    requested.from !== undefined || requested.to !== undefined
      ? 'requested'
      : isHalfHourly
        ? 'export_days'
        : 'export_months';
  return ok({ from, to, basis });
}

// ---------------------------------------------------------------------------------------------------------
// Per message

interface MessageVerdicts {
  decision: MessageDecision;
  unit: BillableUnit | undefined;
  ours: VerdictJson;
  meta: VerdictJson | null;
  /** The message opened a unit on Meta's side (counted in Meta's analytics). */
  isMetaOpening: boolean;
  isOurOpening: boolean;
}

const ERA_SWITCH_DAYS = ['2022-02-01', '2023-06-01', '2024-11-01', '2025-07-01', '2026-10-01'] as const;
const ERA_BOUNDARY_MS = 31 * DAY_MS;
/** The largest distance between two time zones' midnights (UTC−12 … UTC+14). */
const TIME_ZONE_SPREAD_MS = 14 * HOUR_MS;

export function reconcile(input: ReconcileInput): ReconciliationJson {
  // Unit ids are per WABA: two WABAs' messages of one id (MESSAGE_OF_TWO_WABAS) open two units `u_<id>`, and
  // each decision is of its own WABA's.
  const unitsById = new Map<string, BillableUnit[]>();
  for (const unit of input.units) {
    const same = unitsById.get(unit.id);
    if (same) same.push(unit);
    else unitsById.set(unit.id, [unit]);
  }
  const unitOf = (decision: MessageDecision) => {
    const same = unitsById.get(decision.unitId);
    return same?.find((unit) => unit.waba === decision.waba) ?? same?.[0];
  };
  const wabasOf = (code: Finding['code']) =>
    new Set((input.findings ?? []).filter((f) => f.code === code).map((f) => String(f.waba)));
  const recategorised = wabasOf('TEMPLATE_RECATEGORISED');
  // Meta's own change of a template said it was another category than the send log before it.
  const previousDisagrees = wabasOf('PREVIOUS_CATEGORY_DISAGREES');
  const decisions = [...input.decisions].sort(
    (a, b) => a.deliveredAtMs - b.deliveredAtMs || (a.messageId < b.messageId ? -1 : 1),
  );

  const differences: Difference[] = [];
  const messageDiffs: { difference: MessageDifference; verdicts: MessageVerdicts }[] = [];
  let unverifiable = 0;
  let categoryFromWebhook = 0;
  let counted = 0;
  // With an export, the messages counted as checked are those delivered in the period compared with it (local
  // days on the export's WABA's clock, as its buckets are): the summary then speaks of the days the export
  // covers, not of all time (docs/decisions.md). A difference found outside the period is still listed.
  const counting = input.analytics
    ? { period: periodOfComparison(input, input.analytics), timeZone: input.timeZoneOf(input.analytics.waba) }
    : undefined;
  const isInCountedPeriod = (decision: MessageDecision) => {
    if (counting === undefined) return true;
    const day = localDate(decision.deliveredAtMs, counting.timeZone);
    return day >= counting.period.from && day <= counting.period.to;
  };
  const isCounted = (waba: string) => input.countedWabas === undefined || input.countedWabas.includes(waba);
  // CBP: Meta's conversation ids against wameter's units, in delivery order.
  const unitOfMetaConversation = new Map<string, string>();
  const metaConversationOfUnit = new Map<string, string>();
  /** The message that opened each of Meta's conversations (its first in delivery order), and when. */
  const openingOfMetaConversation = new Map<string, { messageId: string; deliveredAtMs: number }>();

  for (const decision of decisions) {
    const isCountedHere = isCounted(decision.waba) && isInCountedPeriod(decision);
    if (isCountedHere) counted += 1;
    const unit = unitOf(decision);
    const isOurOpening = unit !== undefined && unit.messages[0] === decision.messageId;
    const ours: VerdictJson = {
      pricing_model: unit?.pricingModel ?? pricingModelOf(decision.era),
      category: unit?.category ?? '?',
      type: unit?.type ?? '?',
      unit: decision.unitId,
      rule: decision.rule,
    };
    if (unit?.unit === 'conversation') ours.conversation = isOurOpening ? 'opened' : 'rode';
    const hasSendLog = input.evidence.sentIds.has(decision.messageId);
    const base = {
      message: decision.messageId,
      waba: decision.waba,
      business: decision.business,
      user: decision.user,
      delivered_at: formatInstant(decision.deliveredAtMs),
    };
    const pricing = decision.meta?.pricing;
    const conversation = decision.meta?.conversation;

    if (!pricing && !conversation) {
      const hasStatus = input.evidence.statusIds.has(decision.messageId);
      if (!hasStatus && input.evidence.wabasWithPricedStatuses.has(decision.waba)) {
        const difference: MessageDifference = {
          ...base,
          ours,
          meta: null,
          differs: ['webhook'],
          cause: 'MISSING_WEBHOOK',
          note: `delivered per the send log, but no status webhook of Meta's for it reached wameter: ${WHAT_TO_DO.MISSING_WEBHOOK}`,
        };
        differences.push(difference);
        messageDiffs.push({
          difference,
          verdicts: { decision, unit, ours, meta: null, isMetaOpening: isOurOpening, isOurOpening },
        });
      } else if (isCountedHere) {
        unverifiable += 1;
      }
      continue;
    }

    const meta: VerdictJson = {};
    const model =
      typeof pricing?.pricing_model === 'string' ? pricing.pricing_model.toUpperCase() : undefined;
    if (model) meta.pricing_model = model;
    const category = normaliseMetaCategory(
      typeof pricing?.category === 'string'
        ? pricing.category
        : isRecord(conversation?.origin) && typeof conversation.origin.type === 'string'
          ? conversation.origin.type
          : undefined,
    );
    if (category) meta.category = category;
    const type = normaliseMetaType(typeof pricing?.type === 'string' ? pricing.type : undefined);
    if (type) meta.type = type;
    const conversationId = typeof conversation?.id === 'string' ? conversation.id : undefined;
    if (conversationId) meta.conversation_id = conversationId;

    if (category?.startsWith('group_') || type === 'free_group_customer_service') {
      if (isCountedHere) unverifiable += 1; // group messages are not 1:1 billing units
      continue;
    }
    // Without a send log line, the rater took the message's category from this very webhook: no check of it.
    if (!hasSendLog && isCountedHere) categoryFromWebhook += 1;

    // Whether the message opened a unit on Meta's side: every message under PMP; under CBP the first
    // message of each of Meta's conversation ids (or, without ids, the same as ours).
    const isMetaPmp = (meta.pricing_model ?? ours.pricing_model) !== 'CBP';
    let isMetaOpening = isMetaPmp ? true : isOurOpening;
    const differs: string[] = [];
    if (meta.pricing_model && meta.pricing_model !== ours.pricing_model) differs.push('pricing_model');

    const isOurFep = ours.type === 'free_entry_point';
    const isMetaFep = type === 'free_entry_point' || category === 'referral_conversion';
    if (isOurFep !== isMetaFep) differs.push('type');
    else if (!isOurFep) {
      if (category && category !== ours.category) differs.push('category');
      // The monthly free allowance is decided at billing time; the webhook's type knows nothing of it.
      const ourType = ours.type === 'free_tier' ? 'regular' : ours.type;
      if (type && type !== ourType) differs.push('type');
    }

    if (!isMetaPmp && ours.pricing_model === 'CBP' && conversationId) {
      // A unit is known by its WABA and id (two WABAs' units of one message id share the id).
      const ourUnit = `${decision.waba}\u0000${decision.unitId}`;
      const knownUnit = unitOfMetaConversation.get(conversationId);
      isMetaOpening = knownUnit === undefined;
      const ourMetaId = metaConversationOfUnit.get(ourUnit);
      if (knownUnit === undefined) {
        unitOfMetaConversation.set(conversationId, ourUnit);
        openingOfMetaConversation.set(conversationId, {
          messageId: decision.messageId,
          deliveredAtMs: decision.deliveredAtMs,
        });
      }
      if (ourMetaId === undefined) metaConversationOfUnit.set(ourUnit, conversationId);
      const isSame =
        (knownUnit === undefined || knownUnit === ourUnit) &&
        (ourMetaId === undefined || ourMetaId === conversationId) &&
        isMetaOpening === isOurOpening;
      if (!isSame) differs.push('conversation');
      meta.conversation = isMetaOpening ? 'opened' : 'rode';
    }

    const isLogMissing = !hasSendLog && input.evidence.wabasWithSendLog.has(decision.waba);
    if (differs.length === 0 && !isLogMissing) continue;

    let cause: DifferenceCause;
    let note: string;
    if (isLogMissing) {
      differs.push('send_log');
      ours.send_log = false;
      cause = 'MISSING_WEBHOOK';
      note = `Meta reported this message but the send log has no outbound line for it (rated from Meta's category): ${WHAT_TO_DO.MISSING_WEBHOOK}`;
    } else {
      cause = messageCause(decision, ours, meta, differs, input);
      note = WHAT_TO_DO[cause];
      if (cause === 'CONVERSATION_MISMATCH') {
        const opening = conversationId ? openingOfMetaConversation.get(conversationId) : undefined;
        note = conversationNote(isMetaOpening, isOurOpening, {
          metaConversation: conversationId,
          metaOpening: opening,
          unitId: decision.unitId,
          unit,
        });
      }
      if (cause === 'TEMPLATE_RECATEGORISED' && recategorised.has(decision.waba)) {
        note = `a TEMPLATE_RECATEGORISED finding names a template of this WABA; ${note}`;
      }
      if (cause === 'TEMPLATE_RECATEGORISED' && previousDisagrees.has(decision.waba)) {
        note = `a PREVIOUS_CATEGORY_DISAGREES finding says Meta's template_category_update gave a template of this WABA another category before its change than the send log does; ${note}`;
      }
    }
    const difference: MessageDifference = { ...base, ours, meta, differs, cause, note };
    differences.push(difference);
    messageDiffs.push({
      difference,
      verdicts: { decision, unit, ours, meta, isMetaOpening, isOurOpening },
    });
  }

  const result: ReconciliationJson = {
    differences,
    checked: { messages: counted, unverifiable, category_from_webhook: categoryFromWebhook, buckets: 0 },
  };
  if (input.analytics) {
    const compared = compareBuckets(input, input.analytics, messageDiffs);
    result.checked.buckets = compared.checked;
    // One at a time: a spread passes each as an argument, past the stack's room for an export of many buckets.
    for (const difference of compared.differences) differences.push(difference);
    result.analytics = compared.comparison;
  }
  return result;
}

function messageCause(
  decision: MessageDecision,
  ours: VerdictJson,
  meta: VerdictJson,
  differs: readonly string[],
  input: ReconcileInput,
): DifferenceCause {
  if (differs.includes('pricing_model')) {
    const timeZone = input.timeZoneOf(decision.waba);
    const isReported = input.isReportedRulesEnabled ?? true;
    const modelAt = (atMs: number) => pricingModelOf(eraOn(localDate(atMs, timeZone), isReported));
    if (
      modelAt(decision.deliveredAtMs - TIME_ZONE_SPREAD_MS) === meta.pricing_model ||
      modelAt(decision.deliveredAtMs + TIME_ZONE_SPREAD_MS) === meta.pricing_model
    ) {
      return 'TIME_ZONE_DAY_EDGE';
    }
    if (decision.rule === 'CBP_UTILITY_CARRYOVER' || isNearEraSwitch(decision.deliveredAtMs))
      return 'ERA_BOUNDARY';
    return 'CATEGORY_MISMATCH';
  }
  if (meta.type === 'free_entry_point' || meta.category === 'referral_conversion') {
    if (ours.type !== 'free_entry_point') return 'FREE_ENTRY_POINT_MISSED';
  }
  if (differs.includes('category') && meta.category && ours.category) {
    // Own properties only: Meta's word could be "constructor".
    const metaFamily = Object.hasOwn(TEMPLATE_FAMILY, meta.category)
      ? TEMPLATE_FAMILY[meta.category]
      : undefined;
    const ourFamily = Object.hasOwn(TEMPLATE_FAMILY, ours.category)
      ? TEMPLATE_FAMILY[ours.category]
      : undefined;
    if (metaFamily && ourFamily && metaFamily !== ourFamily && decision.template !== null) {
      return 'TEMPLATE_RECATEGORISED';
    }
  }
  // Same category and type, only the conversation differs: say so, not "category".
  if (differs.includes('conversation') && !differs.includes('category') && !differs.includes('type')) {
    return 'CONVERSATION_MISMATCH';
  }
  // Same category and conversation, only the pricing type differs (neither side a free entry point).
  if (differs.length === 1 && differs[0] === 'type' && ours.type !== 'free_entry_point') {
    return 'PRICING_TYPE_MISMATCH';
  }
  return 'CATEGORY_MISMATCH';
}

/**
 * The note of a CONVERSATION_MISMATCH, for the way the two sides differ: Meta opened where wameter rode, rode
 * where wameter opened, or both rode — on conversations that began with different messages, which is the
 * knock-on of the earlier difference at the later of those two messages.
 */
function conversationNote(
  isMetaOpening: boolean,
  isOurOpening: boolean,
  sides: {
    metaConversation: string | undefined;
    metaOpening: { messageId: string; deliveredAtMs: number } | undefined;
    unitId: string;
    unit: BillableUnit | undefined;
  },
): string {
  if (isMetaOpening && !isOurOpening) {
    return `same category, but Meta opened a conversation where wameter rode on an open one: ${CONVERSATION_ADVICE}`;
  }
  if (!isMetaOpening && isOurOpening) {
    return `same category, but Meta rode on an open conversation where wameter opened one: ${CONVERSATION_ADVICE}`;
  }
  const { metaConversation, metaOpening, unitId, unit } = sides;
  const ourOpening = unit?.messages[0];
  if (isMetaOpening || !metaConversation || !metaOpening || !unit || ourOpening === undefined) {
    return WHAT_TO_DO.CONVERSATION_MISMATCH;
  }
  const since = metaOpening.deliveredAtMs >= unit.openedAtMs ? metaOpening.messageId : ourOpening;
  return `same category, and both rode on an open conversation, but not on the same one: Meta's ${metaConversation} began with ${metaOpening.messageId}, wameter's ${unitId} with ${ourOpening}; they differ since ${since}, so this follows from that message's difference: look into it first (${CONVERSATION_ADVICE})`;
}

function isNearEraSwitch(atMs: number): boolean {
  return ERA_SWITCH_DAYS.some((day) => Math.abs(atMs - Date.parse(`${day}T00:00:00Z`)) <= ERA_BOUNDARY_MS);
}

// ---------------------------------------------------------------------------------------------------------
// Per day × country × category

interface BucketTally {
  bucket: BucketJson;
  ours: { units: number; amountMicros: Micros; unpriced: number; currency?: string };
  meta: { units: number; amountMicros: Micros };
  /** Meta's count minus ours expected from the message differences that fall in this bucket. */
  explainedDelta: number;
  /**
   * Meta's cost minus ours expected from the same message differences; `null` when one of them has a cost
   * wameter cannot tell (Meta's verdict names a category or model whose rate wameter's unit does not carry).
   */
  explainedMicros: Micros | null;
  explainedBy: MessageDifference[];
}

/** A bucket's identity (day, country and the words of the dimensions compared). */
const bucketKey = (bucket: BucketJson) =>
  [bucket.day, bucket.country, bucket.category, bucket.type ?? '', bucket.direction ?? ''].join('|');

/**
 * Where Meta's analytics file the unit of a message Meta's status webhook describes: its category and type as
 * Meta gave them, wameter's where it gave none. A webhook knows nothing of the monthly free tier (decided at
 * billing time), so its `regular` is wameter's `free_tier` when wameter's unit is in the free tier.
 */
function metaWords(meta: VerdictJson, unit: BillableUnit): AnalyticsWords {
  const category = meta.category ?? unit.category;
  let type = meta.type;
  if (type === 'regular' && unit.type === 'free_tier') type = 'free_tier';
  // A CBP webhook states no type: one that names a category other than referral_conversion says Meta's
  // conversation was no free entry point, even where wameter's is.
  if (type === undefined)
    type = meta.category !== undefined && unit.type === 'free_entry_point' ? 'regular' : unit.type;
  return analyticsWordsOf(category, type);
}

/** The pricing types for which Meta charges nothing. */
const FREE_TYPES: ReadonlySet<string> = new Set(['free_tier', 'free_entry_point', 'free_customer_service']);

/**
 * What Meta's verdict on a message it opened a unit with costs, as far as wameter can tell from its own unit of
 * that message: nothing for a free pricing type; the unit's rate when Meta charged the unit's own category
 * under the unit's pricing model (the unit shows the rate it would have cost even when it is free); `null` when
 * Meta charged another category or model, whose rate the unit does not carry.
 */
function metaCostOf(meta: VerdictJson, words: AnalyticsWords, unit: BillableUnit): Micros | null {
  if (words.type !== undefined && FREE_TYPES.has(words.type)) return 0;
  const isSamePrice =
    words.type === 'regular' &&
    words.category === unit.category &&
    (meta.pricing_model ?? unit.pricingModel) === unit.pricingModel;
  return isSamePrice ? unit.rateMicros : null;
}

/** A data point on several local days: a bucket of its own (a month; a half hour across midnight). */
interface LongPoint {
  label: string;
  startMs: number;
  endMs: number;
}

/** One currency's units and micros (exact). */
interface CurrencyTally {
  units: number;
  micros: Micros;
  unpriced: number;
}

/** Units and micros per currency, summed exactly. */
class CurrencyTotals {
  units = 0;
  private readonly byCurrency = new Map<string, CurrencyTally>();

  add(unit: BillableUnit): void {
    this.units += 1;
    const entry: CurrencyTally = this.byCurrency.get(unit.currency) ?? { units: 0, micros: 0, unpriced: 0 };
    entry.units += 1;
    if (unit.amountMicros !== null) entry.micros = sumMicros(entry.micros, unit.amountMicros);
    else if (unit.type === 'regular') entry.unpriced += 1;
    this.byCurrency.set(unit.currency, entry);
  }

  currencies(): string[] {
    return [...this.byCurrency.keys()].sort();
  }

  of(currency: string): CurrencyTally {
    return this.byCurrency.get(currency) ?? { units: 0, micros: 0, unpriced: 0 };
  }

  toJson(): ByCurrencyJson {
    const json: ByCurrencyJson = {};
    for (const currency of this.currencies()) {
      const { units, micros } = this.of(currency);
      json[currency] = { units, amount: formatMicros(micros) };
    }
    return json;
  }
}

/**
 * When Meta/wameter is one ratio for (nearly) every cost difference of a WABA, and that ratio is far from 1,
 * the amounts are in two currencies (Meta bills the WABA in its own currency; its export never says which):
 * a wrong rate would move some buckets, not all of them by one factor. Thresholds of the finance review.
 */
const CURRENCY_RATIO = {
  /** Least cost differences for a pattern: one or two could be a wrong rate that happens to be far off. */
  minDifferences: 3,
  /** Share of the cost differences that must have the ratio ("nearly every"). */
  minShare: 0.9,
  /** How close to the common ratio a bucket's ratio must be (relative). */
  tolerance: 0.01,
  /** A ratio between these is a rate question, not a currency one. */
  below: 0.67,
  above: 1.5,
} as const;

function commonCostRatio(
  tallies: readonly BucketTally[],
): { ratio: number; matching: Set<BucketTally> } | undefined {
  if (tallies.length < CURRENCY_RATIO.minDifferences) return undefined;
  // Ratios of amounts (not money: a heuristic), only where both sides have one.
  const ratios = tallies
    .filter((t) => t.ours.amountMicros > 0 && t.meta.amountMicros > 0)
    .map((t) => ({ tally: t, ratio: Number(t.meta.amountMicros) / Number(t.ours.amountMicros) }))
    .sort((a, b) => a.ratio - b.ratio);
  if (ratios.length === 0) return undefined;
  const median = ratios[Math.floor(ratios.length / 2)]!.ratio;
  const matching = new Set(
    ratios.filter((r) => Math.abs(r.ratio / median - 1) <= CURRENCY_RATIO.tolerance).map((r) => r.tally),
  );
  const isCommon = matching.size >= CURRENCY_RATIO.minShare * tallies.length;
  const isFarFromOne = median > CURRENCY_RATIO.above || median < CURRENCY_RATIO.below;
  return isCommon && isFarFromOne ? { ratio: median, matching } : undefined;
}

/** A ratio for people: four significant digits (88, 0.01136). */
const formatRatio = (ratio: number) => String(Number(ratio.toPrecision(4)));

/** Why a conversation_analytics comparison leaves out units of the period (`not_compared.other_pricing_model`). */
const OTHER_PRICING_MODEL_REASON =
  "billed per message (from 2025-07-01 in the WABA's time zone; or per notification, before 2022-02-01), not as " +
  "conversations: Meta's conversation_analytics does not count them; its pricing_analytics does (compare them " +
  'with a pricing_analytics export of the period)';

/** The local days compared with the export: the caller's, else those its points span (comparedPeriod). */
function periodOfComparison(
  input: ReconcileInput,
  analytics: { export: AnalyticsExport; waba: string; period?: ComparedPeriod },
): ComparedPeriod {
  if (analytics.period !== undefined) return analytics.period;
  const chosen = comparedPeriod(analytics.export, input.timeZoneOf(analytics.waba));
  // An export without data points states no period: the caller must give one (comparedPeriod says so).
  if (!chosen.ok) throw new Error(`reconcile: ${chosen.error.message}`);
  return chosen.value;
}

function compareBuckets(
  input: ReconcileInput,
  analytics: { export: AnalyticsExport; waba: string; period?: ComparedPeriod },
  messageDiffs: readonly { difference: MessageDifference; verdicts: MessageVerdicts }[],
): { differences: BucketDifference[]; checked: number; comparison: AnalyticsComparisonJson } {
  const { waba } = analytics;
  const points = analytics.export.points;
  const timeZone = input.timeZoneOf(waba);
  const hasCountry = points.some((p) => p.country !== undefined);
  const dimensions = analyticsDimensions(points);
  const billing = input.billingCurrencyOf?.(waba) ?? {
    currency: input.units.find((u) => u.waba === waba)?.currency ?? defaultAccount(waba).currency,
    source: 'default' as const,
  };
  const period = periodOfComparison(input, analytics);
  const { from, to } = period;
  const isInPeriod = (day: string) => day >= from && day <= to;
  const kind = analytics.export.kind ?? kindOfPeriod(from);
  // Meta's conversation_analytics counts conversations only: the units of the conversation-based eras, and the
  // messages Meta's own verdict put in one. A pricing_analytics export is set against every unit (as
  // /v1/analytics?metric=pricing counts them; docs/estimate-and-reconcile.md).
  const isCountedByExport = (pricingModel: string) => kind === 'pricing_analytics' || pricingModel === 'CBP';

  // A point on one local day (daysOfPoint) goes to that day's bucket (half-hour points add up); a point on
  // several (a month; a half hour across the WABA's midnight) is a bucket of its own, `FROM..TO`, and
  // wameter's units inside it go there too: its count cannot be split by day. Points outside the period (a
  // requested one) are not compared.
  const longPoints: LongPoint[] = [];
  const metaOutside: { units: number; micros: Micros } = { units: 0, micros: 0 };
  const labelOf = (point: AnalyticsPoint): string | undefined => {
    const span = daysOfPoint(point, timeZone);
    if (!isInPeriod(span.first) || !isInPeriod(span.last)) return undefined;
    if (span.first === span.last) return span.first;
    let long = longPoints.find((p) => p.startMs === point.startMs && p.endMs === point.endMs);
    if (!long) {
      long = { label: `${span.first}..${span.last}`, startMs: point.startMs, endMs: point.endMs };
      longPoints.push(long);
    }
    return long.label;
  };
  // wameter's side: inside a point of the period that is a bucket of its own, that point's bucket; else its
  // local day, when that day is in the period.
  const bucketAt = (atMs: number): string | undefined => {
    const long = longPoints.find((p) => atMs >= p.startMs && atMs < p.endMs);
    if (long) return long.label;
    const day = localDate(atMs, timeZone);
    return isInPeriod(day) ? day : undefined;
  };

  const tallies = new Map<string, BucketTally>();
  // A unit without a word in a dimension compared (a point of Meta's with none, or an UNKNOWN one) is `?`.
  const tallyFor = (day: string, country: string | null | undefined, words: AnalyticsWords) => {
    const bucket: BucketJson = {
      waba,
      day,
      country: hasCountry ? (country ?? '?') : '*',
      category: dimensions.includes('category') ? (words.category ?? '?') : '*',
    };
    if (dimensions.includes('type')) bucket.type = words.type ?? '?';
    if (dimensions.includes('direction')) bucket.direction = words.direction ?? '?';
    const key = bucketKey(bucket);
    let tally = tallies.get(key);
    if (!tally) {
      tally = {
        bucket,
        ours: { units: 0, amountMicros: 0, unpriced: 0 },
        meta: { units: 0, amountMicros: 0 },
        explainedDelta: 0,
        explainedMicros: 0,
        explainedBy: [],
      };
      tallies.set(key, tally);
    }
    return tally;
  };

  const metaTotal: { units: number; micros: Micros } = { units: 0, micros: 0 };
  /** Buckets a point of Meta's export stated, a zero one too: compared, whatever they hold. */
  const stated = new Set<BucketTally>();
  for (const point of points) {
    const label = labelOf(point);
    if (label === undefined) {
      metaOutside.units += point.count;
      metaOutside.micros = sumMicros(metaOutside.micros, point.costMicros);
      continue;
    }
    const tally = tallyFor(label, point.country, point);
    stated.add(tally);
    tally.meta.units += point.count;
    tally.meta.amountMicros = sumMicros(tally.meta.amountMicros, point.costMicros);
    metaTotal.units += point.count;
    metaTotal.micros = sumMicros(metaTotal.micros, point.costMicros);
  }
  const ourWords = (unit: BillableUnit) => analyticsWordsOf(unit.category, unit.type);
  const compared = new CurrencyTotals();
  const outsidePeriod = new CurrencyTotals();
  const otherWabas = new CurrencyTotals();
  const otherWabaIds = new Set<string>();
  const otherPricingModel = new CurrencyTotals();
  // By the era wameter rated the unit under, as /v1/analytics?metric=conversation counts units.
  const isComparedUnit = (unit: BillableUnit) => kind === 'pricing_analytics' || isConversationEra(unit.era);
  for (const unit of input.units) {
    if (unit.waba !== waba) {
      otherWabas.add(unit);
      otherWabaIds.add(unit.waba);
      continue;
    }
    const day = bucketAt(unit.openedAtMs);
    if (day === undefined) {
      outsidePeriod.add(unit);
      continue;
    }
    if (!isComparedUnit(unit)) {
      otherPricingModel.add(unit);
      continue;
    }
    compared.add(unit);
    const tally = tallyFor(day, unit.country, ourWords(unit));
    tally.ours.units += 1;
    tally.ours.currency ??= unit.currency;
    if (unit.amountMicros === null) tally.ours.unpriced += unit.type === 'regular' ? 1 : 0;
    else tally.ours.amountMicros = sumMicros(tally.ours.amountMicros, unit.amountMicros);
  }

  // What the message differences predict: a unit Meta opened moves Meta's count (and cost) in Meta's bucket, a
  // unit wameter opened moves wameter's in its own; either way the bucket's difference is accounted for. Both
  // may fall in one bucket (a message Meta charged and wameter held free): the count is then unchanged and
  // only the cost moves.
  const explain = (
    tally: BucketTally,
    difference: MessageDifference,
    units: 1 | -1,
    micros: Micros | null,
  ) => {
    tally.explainedDelta += units;
    tally.explainedMicros =
      tally.explainedMicros === null || micros === null
        ? null
        : sumMicros(tally.explainedMicros, units > 0 ? micros : negateMicros(micros));
    if (!tally.explainedBy.includes(difference)) tally.explainedBy.push(difference);
  };
  for (const { difference, verdicts } of messageDiffs) {
    const { decision, unit, meta, ours } = verdicts;
    if (decision.waba !== waba || !unit || !meta) continue;
    if (ours.send_log === false) continue;
    // Each side's unit moves the export's count only when the export counts units of its pricing model: a
    // message Meta billed per message is no conversation of Meta's conversation_analytics.
    if (verdicts.isMetaOpening && isCountedByExport(meta.pricing_model ?? pricingModelOf(unit.era))) {
      const day = bucketAt(decision.deliveredAtMs);
      if (day !== undefined) {
        const words = metaWords(meta, unit);
        explain(tallyFor(day, unit.country, words), difference, 1, metaCostOf(meta, words, unit));
      }
    }
    if (verdicts.isOurOpening && isComparedUnit(unit)) {
      const day = bucketAt(unit.openedAtMs);
      if (day !== undefined)
        explain(tallyFor(day, unit.country, ourWords(unit)), difference, -1, unit.amountMicros);
    }
  }

  const residual = (tally: BucketTally) => tally.meta.units - tally.ours.units - tally.explainedDelta;
  // A cost difference with the same count is the message differences' only when they leave no unit over and
  // their costs, as both sides priced them, add up to the bucket's difference exactly.
  const isCostAccountedFor = (tally: BucketTally) =>
    tally.explainedBy.length > 0 &&
    residual(tally) === 0 &&
    tally.explainedMicros !== null &&
    tally.explainedMicros === sumMicros(tally.meta.amountMicros, negateMicros(tally.ours.amountMicros));
  const neighbour = (tally: BucketTally, days: number) => {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(tally.bucket.day)) return undefined;
    const day = new Date(Date.parse(`${tally.bucket.day}T00:00:00Z`) + days * DAY_MS)
      .toISOString()
      .slice(0, 10);
    return tallies.get(bucketKey({ ...tally.bucket, day }));
  };

  const sorted = [...tallies.values()].sort((a, b) =>
    a.bucket.day !== b.bucket.day
      ? a.bucket.day < b.bucket.day
        ? -1
        : 1
      : bucketKey(a.bucket) < bucketKey(b.bucket)
        ? -1
        : 1,
  );
  const found: { tally: BucketTally; cause: DifferenceCause; messages?: string[] }[] = [];
  for (const tally of sorted) {
    const isSameCount = tally.meta.units === tally.ours.units;
    const isSameCost = tally.meta.amountMicros === tally.ours.amountMicros && tally.ours.unpriced === 0;
    if (isSameCount && isSameCost) continue;
    let cause: DifferenceCause;
    let messages: string[] | undefined;
    const left = residual(tally);
    if (isSameCount && tally.ours.unpriced > 0) {
      cause = 'UNKNOWN_RATE';
    } else if (isSameCount && !isCostAccountedFor(tally)) {
      cause = 'COST_DIFFERS';
    } else if (isSameCount) {
      messages = tally.explainedBy.map((d) => d.message);
      cause = tally.explainedBy[0]!.cause;
    } else if (left === 0 && tally.explainedBy.length > 0) {
      messages = tally.explainedBy.map((d) => d.message);
      cause = tally.explainedBy[0]!.cause;
    } else if (
      [-1, 1].some((days) => {
        const other = neighbour(tally, days);
        return other !== undefined && residual(other) === -left;
      })
    ) {
      cause = 'TIME_ZONE_DAY_EDGE';
    } else if (left > 0) {
      cause = 'MISSING_WEBHOOK';
    } else {
      cause = tally.ours.unpriced > 0 ? 'UNKNOWN_RATE' : 'META_COUNTS_FEWER';
    }
    found.push({ tally, cause, ...(messages ? { messages } : {}) });
  }

  const costDifferences = found.filter((f) => f.cause === 'COST_DIFFERS').map((f) => f.tally);
  const common = commonCostRatio(costDifferences);
  const currencyWords = `wameter bills this WABA in ${billing.currency} ${billing.source === 'accounts' ? 'per the accounts file' : 'by default (the WABA is not in the accounts file)'}, and Meta's export states no currency`;

  const differences: BucketDifference[] = found.map(({ tally, cause: likely, messages }) => {
    let cause = likely;
    let note = messages
      ? `accounted for by the message difference(s) listed: ${WHAT_TO_DO[cause]}`
      : WHAT_TO_DO[cause];
    if (common?.matching.has(tally)) {
      cause = 'CURRENCY_MISMATCH';
      note = `Meta's amount is ${formatRatio(common.ratio)} times wameter's, as in ${common.matching.size} of the ${costDifferences.length} cost differences of WABA ${waba} (${currencyWords}): ${WHAT_TO_DO.CURRENCY_MISMATCH}`;
    } else if (cause === 'COST_DIFFERS') {
      note = `${note} (${currencyWords})`;
    }
    const difference: BucketDifference = {
      bucket: tally.bucket,
      ours: {
        units: tally.ours.units,
        amount: formatMicros(tally.ours.amountMicros),
        currency: tally.ours.currency ?? billing.currency,
        ...(tally.ours.unpriced > 0 ? { unpriced_units: tally.ours.unpriced } : {}),
      },
      meta: {
        units: tally.meta.units,
        amount: formatMicros(tally.meta.amountMicros),
        currency: billing.currency,
        currency_stated: false,
      },
      cause,
      note,
    };
    if (messages) difference.messages = messages;
    return difference;
  });

  // Totals per currency of wameter's units (one: a WABA's units carry its currency). Meta's one total is set
  // against them only when there is one currency to set it against.
  const currencies = compared.currencies();
  if (currencies.length === 0) currencies.push(billing.currency);
  const isOneCurrency = currencies.length === 1;
  const totals: AnalyticsTotalsJson[] = currencies.map((currency) => {
    const ours = compared.of(currency);
    return {
      waba,
      currency,
      ours: {
        units: ours.units,
        amount: formatMicros(ours.micros),
        ...(ours.unpriced > 0 ? { unpriced_units: ours.unpriced } : {}),
      },
      meta: isOneCurrency
        ? { units: metaTotal.units, amount: formatMicros(metaTotal.micros), currency_stated: false }
        : null,
      difference: isOneCurrency
        ? {
            units: metaTotal.units - ours.units,
            amount: formatMicros(sumMicros(metaTotal.micros, negateMicros(ours.micros))),
          }
        : null,
    };
  });

  const comparison: AnalyticsComparisonJson = {
    waba,
    kind,
    period: { from, to, time_zone: timeZone, basis: period.basis },
    currency: billing.currency,
    currency_source: billing.source,
    units: compared.units,
    totals,
    not_compared: {
      outside_period: { units: outsidePeriod.units, by_currency: outsidePeriod.toJson() },
      other_wabas: { wabas: otherWabaIds.size, units: otherWabas.units, by_currency: otherWabas.toJson() },
      other_pricing_model: {
        units: otherPricingModel.units,
        by_currency: otherPricingModel.toJson(),
        ...(otherPricingModel.units > 0 ? { reason: OTHER_PRICING_MODEL_REASON } : {}),
      },
      meta_outside_period: { units: metaOutside.units, amount: formatMicros(metaOutside.micros) },
    },
  };
  const dayStart = metaDayStart(analytics.export.points, timeZone);
  if (dayStart) comparison.meta_day_start = dayStart;
  if (common) {
    comparison.currency_ratio = {
      meta_per_wameter: formatRatio(common.ratio),
      cost_differences: costDifferences.length,
      matching: common.matching.size,
    };
  }
  // A bucket only a message difference named, with nothing on either side, was compared with nothing: it is not
  // counted, or "1 unit in 2 buckets" would claim a bucket that holds none. A zero point of Meta's export is:
  // Meta said nothing was billed there, and wameter's none agrees (a quiet month is checked, not unknown).
  const checked = [...tallies.values()].filter(
    (tally) =>
      stated.has(tally) ||
      tally.ours.units > 0 ||
      tally.ours.amountMicros !== 0 ||
      tally.meta.units > 0 ||
      tally.meta.amountMicros !== 0,
  ).length;
  return { differences, checked, comparison };
}
