// The rating engine: events in (any order, duplicates allowed), billable units out, exactly as Meta's rules
// define them for the date each message was delivered. One code path serves a whole file (batch) and an
// endless stream with bounded lateness: batch is the stream whose horizon stays closed until the end.

import { isBeforeInBytes } from './byte-order.js';
import { DAY_MS, HOUR_MS, formatInstant, isMonth, localDate } from './calendar.js';
import { costInWords } from './explain.js';
import { CLOCK_SKEW_MS, PENDING_TTL_MS } from './eras.js';
import { preferredEvidence, preferredTemplate } from './event-copies.js';
import {
  type Account,
  META_STATUS_WORDS,
  type AccountUpdateEvent,
  type CopyField,
  type CoreEvent,
  type MetaConversationEvidence,
  type MetaPricingEvidence,
  type OutboundEvent,
  type StatusEvent,
  type TemplateCategory,
  type TemplateCategoryUpdateEvent,
  isTemplateCategory,
  withPrimaryCountryChange,
} from './events.js';
import {
  PairMachine,
  comparePairItems,
  type DeliveredMessage,
  type PairItem,
  type PairRules,
  type PairTraceEntry,
  type UnitDraft,
} from './pair-machine.js';
import { exemplarAt, FindingCollector, TierStatements, UnitPricer } from './price-unit.js';
import { didYouMeanMarket, marketNameMatcher, type MarketNameMatch } from './rate-card.js';
import { RecentIds } from './recent-ids.js';
import { canonicalUser } from './phone.js';
import { bareStatus, bareStatusCode, bareStatusSlots, DeferredStatuses } from './deferred-statuses.js';
import type { MarketResolver, RateBook } from './pricing-context.js';
import { normaliseMetaCategory, normaliseMetaType } from './reconcile.js';
import {
  UNIT_CATEGORIES,
  type BillableUnit,
  type Era,
  type Finding,
  type FindingCode,
  type MessageDecision,
  type PendingMessage,
  type PricingType,
  type RatingResult,
  type TimelineEntry,
  type UnitCategory,
} from './units.js';

export interface RatingOptions {
  /** The WABA's settings (time zone, currency, portfolio…); `defaultAccount(waba)` for unknown ones. */
  accountFor(waba: string): Account;
  /**
   * The WABAs the accounts file lists. When some are, a WABA of the traffic not among them is said
   * (`ACCOUNT_NOT_LISTED`): it is rated with the defaults, which a mistyped id in the file would leave it on.
   */
  listedWabas?: ReadonlySet<string>;
  rateBook: RateBook;
  markets: MarketResolver;
  /** Rate all traffic under this era's rules whatever its date (the what-if). */
  asOfRules?: Era;
  /** Apply rules marked (reported) in pricing-rules.md: the PMP-2026-10 era. Default true. */
  isReportedRulesEnabled?: boolean;
  /** Also return one decision per delivered business message (explain, reconciliation). */
  withDecisions?: boolean;
  /**
   * Also return the story of one user (and business number), for explain. A business-scoped user id that a
   * batch joins to its phone number is followed under the number (`RaterSummary.tracedUser`), said to
   * `onJoined` before any unit of the number is emitted.
   */
  trace?: { user: string; business?: string; onJoined?: (user: string) => void };
  /**
   * Streaming: events older than the newest event seen minus this are late and are refused (counted in a
   * LATE_EVENT finding); units are emitted as soon as they are final. Omit for a batch (any order).
   */
  maxLatenessMs?: number;
  /** Streaming: rate what has become old enough every this many events (default 50,000). */
  flushEveryEvents?: number;
}

export interface RatingSink {
  unit(unit: BillableUnit): void;
  pending(message: PendingMessage): void;
}

export interface RaterStats {
  events: number;
  duplicates: number;
  late: number;
  units: number;
  pending: number;
  /** Delivered messages that could not be rated (no category, or no user or business number): see findings. */
  unrated: number;
}

export interface RaterSummary {
  findings: Finding[];
  decisions: MessageDecision[];
  timeline: TimelineEntry[];
  stats: RaterStats;
  /**
   * The phone number the traced user's business-scoped id was joined to (a batch joins them: one window,
   * one set of conversations): the story, units and pending messages are that number's. Absent otherwise.
   */
  tracedUser?: string;
}

export interface QuoteRequest {
  id: string;
  waba: string;
  business: string;
  user: string;
  template: TemplateCategory | null;
  atMs: number;
  /** How the quote's reason names the send (default: its id). */
  label?: string;
}

export interface Quote {
  id: string;
  /** The unit the send would open; `null` when it rides on an open conversation. */
  unit: BillableUnit | null;
  isFree: boolean;
  amountMicros: number | null;
  rateMicros: number | null;
  currency: string;
  country: string | null;
  market: string | null;
  rule: string;
  /** In words: open window, free entry point, allowance, tier, open conversation… */
  reason: string;
}

export interface RatingOutput extends RatingResult {
  decisions: MessageDecision[];
  timeline: TimelineEntry[];
  stats: RaterStats;
  /** `RaterSummary.tracedUser`. */
  tracedUser?: string;
}

/** Rates a whole set of events (any order, duplicates allowed) and returns every unit, sorted. */
export function rateEvents(events: Iterable<CoreEvent>, options: RatingOptions): RatingOutput {
  const units: BillableUnit[] = [];
  const pending: PendingMessage[] = [];
  const rater = new Rater(options, { unit: (u) => units.push(u), pending: (p) => pending.push(p) });
  for (const event of events) rater.add(event);
  const summary = rater.finish();
  return { units, pending, ...summary };
}

// How long, in event time, ids of rated messages are remembered so that a late read receipt or a
// redelivered status is recognised instead of being taken for a new message (streaming only).
const TOMBSTONE_MS = 7 * DAY_MS;
const FLUSH_EVERY_EVENTS = 50_000;
const SWEEP_EVERY_FLUSHES = 4;

/** Each of Meta's status words as a bit (`MessageRecord.commonTieWords`); other words have none (0). */
const STATUS_WORD_BITS = new Map(META_STATUS_WORDS.map((word, index) => [word, 1 << index]));

/** One status of a message naming its WABA, its copies merged as a store merges them (`MessageRecord.statusTies`). */
interface StatusTie {
  word: string;
  business: string | undefined;
  user: string | undefined;
  /** The numbers a copy named with a user, itself tying them (a store row's own tie). */
  numbers: string[];
  /** The pair its tie is counted in (`PairState.ties`), if it ties. */
  pair: PairState | undefined;
}

/** The bit of each of `MessageRecord`'s yes-or-no facts in its `flags`. */
const RECORD_FLAGS = {
  hasOutbound: 1,
  isTying: 2,
  isOutboundUntied: 4,
  isDeliveryFromRead: 8,
  isQueued: 16,
  isWaiting: 32,
  isRated: 64,
  isUnplaced: 128,
  hasSendReport: 256,
} as const;

/**
 * Where `MessageRecord`'s small numbers are kept in its `flags`, after the bits of RECORD_FLAGS: the offset of
 * each and its mask (how many bits it has). `statusNamed` holds NAMED_USER | NAMED_BUSINESS, `commonTieWords`
 * a bit of each of META_STATUS_WORDS, each rank one of EVIDENCE_RANK's (0 to 4).
 */
const STATUS_NAMED_AT = 9;
const STATUS_NAMED_MASK = 0b11;
const COMMON_TIE_WORDS_AT = 11;
const COMMON_TIE_WORDS_MASK = (1 << META_STATUS_WORDS.length) - 1;
const PRICING_RANK_AT = COMMON_TIE_WORDS_AT + META_STATUS_WORDS.length;
const RANK_MASK = 0b111;
const CONVERSATION_RANK_AT = PRICING_RANK_AT + 3;

/**
 * What few records have (`MessageRecord.rare`): kept apart, so that the record of a usual message — all that a
 * batch holds until the end — has no field for them.
 */
class RareRecordFacts {
  /** `MessageRecord.key`, when not its id. */
  key: string | undefined = undefined;
  otherNames: { users: string[]; businesses: string[] } | undefined = undefined;
  countryHint: string | undefined = undefined;
  statusTies: StatusTie[] | undefined = undefined;
  failedAtMs = Infinity;
  bareStatusesWithoutWaba: number[] | undefined = undefined;
}

/**
 * What is known of one business message, from its outbound line and its statuses in any order. A batch holds
 * every record until the end, so a record is kept small: what most messages have in fields of their own, yes
 * or no facts and small numbers as bits of one field (`flags`), and what few have in `rare` — 208 bytes and 3
 * boxed numbers a record before, now 136 and 2.
 */
class MessageRecord {
  waba: string | undefined = undefined;
  business: string | undefined = undefined;
  user: string | undefined = undefined;
  sentAtMs = Infinity;
  template: TemplateCategory | null | undefined = undefined;
  templateName: string | undefined = undefined;
  /**
   * Copies of its statuses naming its WABA and a number or a user, as a store merges each word's copies (one row
   * each: `WABA:status:ID:word`): the smallest number and user of the copies, and the numbers copies named with a
   * user on their own (a trusted writer's tie, `tiedBusinessAfterMerge`). The merged status ties its number and
   * user only when one copy named that number so (`notePairOfStatus`). Kept compactly: the words whose every
   * copy named one same number and user, tying them (nearly all: Meta's webhooks), share `commonTie` (words as
   * bits of `META_STATUS_WORDS`); any other word has its own entry in `statusTies`.
   */
  commonTie: PairState | undefined = undefined;
  /** The delivery (pricing-rules §1): the earliest `delivered` report, else the earliest `read`. */
  deliveredAtMs = Infinity;
  pricing: MetaPricingEvidence | undefined = undefined;
  conversation: MetaConversationEvidence | undefined = undefined;
  pair: PairState | undefined = undefined;
  /**
   * Its yes-or-no facts (below), a bit each (RECORD_FLAGS), and its small numbers (`statusNamed`,
   * `commonTieWords`, `pricingRank`, `conversationRank`, at `STATUS_NAMED_AT`…): one field, not thirteen.
   */
  private flags = 0;
  /** What few records have (RareRecordFacts), made when one of its facts is first set. */
  private rare: RareRecordFacts | undefined = undefined;

  /**
   * `key`: its key in `Rater.records` — the id, or, when events of a second WABA name the same id, that
   * WABA and the id (Rater.recordFor).
   */
  constructor(
    readonly id: string,
    key: string = id,
  ) {
    if (key !== id) this.rareFacts().key = key;
  }

  get key(): string {
    return this.rare?.key ?? this.id;
  }

  /**
   * What its statuses named, for RECIPIENT_DISAGREES, said once the record is final (`noteRecipientDisagrees`)
   * so that no line order decides it: `statusNamed` has NAMED_USER / NAMED_BUSINESS when a status named the
   * record's present `user` / `business`, and `otherNames` every other number or user a status named (or
   * that was the record's when a send log or a merge changed it). Nearly always empty (kept for disagreement).
   */
  get statusNamed(): number {
    return (this.flags >>> STATUS_NAMED_AT) & STATUS_NAMED_MASK;
  }
  set statusNamed(value: number) {
    this.setBits(STATUS_NAMED_AT, STATUS_NAMED_MASK, value);
  }
  get otherNames(): { users: string[]; businesses: string[] } | undefined {
    return this.rare?.otherNames;
  }
  set otherNames(value: { users: string[]; businesses: string[] } | undefined) {
    if (value !== undefined || this.rare !== undefined) this.rareFacts().otherNames = value;
  }
  get countryHint(): string | undefined {
    return this.rare?.countryHint;
  }
  set countryHint(value: string | undefined) {
    if (value !== undefined || this.rare !== undefined) this.rareFacts().countryHint = value;
  }
  /** The words of `commonTie`, as bits of `META_STATUS_WORDS` (STATUS_WORD_BITS). */
  get commonTieWords(): number {
    return (this.flags >>> COMMON_TIE_WORDS_AT) & COMMON_TIE_WORDS_MASK;
  }
  set commonTieWords(value: number) {
    this.setBits(COMMON_TIE_WORDS_AT, COMMON_TIE_WORDS_MASK, value);
  }
  get statusTies(): StatusTie[] | undefined {
    return this.rare?.statusTies;
  }
  set statusTies(value: StatusTie[] | undefined) {
    if (value !== undefined || this.rare !== undefined) this.rareFacts().statusTies = value;
  }
  get failedAtMs(): number {
    return this.rare === undefined ? Infinity : this.rare.failedAtMs;
  }
  set failedAtMs(value: number) {
    if (value !== Infinity || this.rare !== undefined) this.rareFacts().failedAtMs = value;
  }
  /**
   * The EVIDENCE_RANK of the statuses `pricing` and `conversation` came from, each its own: a status may carry
   * one without the other, and one rank for both let the order of the statuses decide which were kept.
   */
  get pricingRank(): number {
    return (this.flags >>> PRICING_RANK_AT) & RANK_MASK;
  }
  set pricingRank(value: number) {
    this.setBits(PRICING_RANK_AT, RANK_MASK, value);
  }
  get conversationRank(): number {
    return (this.flags >>> CONVERSATION_RANK_AT) & RANK_MASK;
  }
  set conversationRank(value: number) {
    this.setBits(CONVERSATION_RANK_AT, RANK_MASK, value);
  }
  /**
   * A stream's statuses that named no WABA, kept on the id's first record while it is kept: a record of the
   * id that a second WABA's events make later gets them too (Rater.replayStatusesWithoutWaba), as a batch
   * gives them to every WABA's message of the id once all is read. Before, a stream gave them only to the
   * WABAs met by then, and left the other WABA's delivered message pending: its charge silently missing.
   * Bare ones (a send log's: an id, a word, an instant) as the earliest instant of each word, by the word's
   * code (a status's effect on a record is the earliest of its word's: delivery, failure, send), so that a
   * stream keeps no event object for them (`Rater.otherStatusesWithoutWaba` keeps the others).
   */
  get bareStatusesWithoutWaba(): number[] | undefined {
    return this.rare?.bareStatusesWithoutWaba;
  }
  set bareStatusesWithoutWaba(value: number[] | undefined) {
    if (value !== undefined || this.rare !== undefined) this.rareFacts().bareStatusesWithoutWaba = value;
  }

  get hasOutbound(): boolean {
    return (this.flags & RECORD_FLAGS.hasOutbound) !== 0;
  }
  set hasOutbound(value: boolean) {
    this.setFlag(RECORD_FLAGS.hasOutbound, value);
  }
  /** Its outbound line is counted in its pair's `ties` (Rater.tie): until the record leaves that pair. */
  get isTying(): boolean {
    return (this.flags & RECORD_FLAGS.isTying) !== 0;
  }
  set isTying(value: boolean) {
    this.setFlag(RECORD_FLAGS.isTying, value);
  }
  /** Its outbound line ties nothing (`OutboundEvent.isUntied`: a store's row that does not). */
  get isOutboundUntied(): boolean {
    return (this.flags & RECORD_FLAGS.isOutboundUntied) !== 0;
  }
  set isOutboundUntied(value: boolean) {
    this.setFlag(RECORD_FLAGS.isOutboundUntied, value);
  }
  /** `deliveredAtMs` comes from a read receipt (or a `played`): any `delivered` report replaces it. */
  get isDeliveryFromRead(): boolean {
    return (this.flags & RECORD_FLAGS.isDeliveryFromRead) !== 0;
  }
  set isDeliveryFromRead(value: boolean) {
    this.setFlag(RECORD_FLAGS.isDeliveryFromRead, value);
  }
  get isQueued(): boolean {
    return (this.flags & RECORD_FLAGS.isQueued) !== 0;
  }
  set isQueued(value: boolean) {
    this.setFlag(RECORD_FLAGS.isQueued, value);
  }
  /** Counted in its pair's `waitingCount`. */
  get isWaiting(): boolean {
    return (this.flags & RECORD_FLAGS.isWaiting) !== 0;
  }
  set isWaiting(value: boolean) {
    this.setFlag(RECORD_FLAGS.isWaiting, value);
  }
  get isRated(): boolean {
    return (this.flags & RECORD_FLAGS.isRated) !== 0;
  }
  set isRated(value: boolean) {
    this.setFlag(RECORD_FLAGS.isRated, value);
  }
  /** Statuses alone, naming no WABA: in `Rater.unplaced` until a flush finds its WABA (placeUnplaced). */
  get isUnplaced(): boolean {
    return (this.flags & RECORD_FLAGS.isUnplaced) !== 0;
  }
  set isUnplaced(value: boolean) {
    this.setFlag(RECORD_FLAGS.isUnplaced, value);
  }
  /**
   * A `sent`, `delivered` or `failed` status came (not only `read` or `played`): with its outbound line, what
   * shows that this is the message's own send, not a late read of one rated and forgotten (a stream).
   */
  get hasSendReport(): boolean {
    return (this.flags & RECORD_FLAGS.hasSendReport) !== 0;
  }
  set hasSendReport(value: boolean) {
    this.setFlag(RECORD_FLAGS.hasSendReport, value);
  }

  private setFlag(bit: number, value: boolean): void {
    this.flags = value ? this.flags | bit : this.flags & ~bit;
  }

  /** Sets the small number at bit `at` (of `mask`'s width) to `value`, which must fit. */
  private setBits(at: number, mask: number, value: number): void {
    if ((value & mask) !== value) throw new RangeError(`MessageRecord: ${value} does not fit ${mask}`);
    this.flags = (this.flags & ~(mask << at)) | (value << at);
  }

  private rareFacts(): RareRecordFacts {
    return (this.rare ??= new RareRecordFacts());
  }
}

interface PairState {
  business: string;
  user: string;
  machine: PairMachine;
  inbounds: PairItem[];
  queued: MessageRecord[];
  /** Records attached to this pair that are neither delivered nor failed yet. */
  waitingCount: number;
  /**
   * A stream's sweep forgot this pair (quiet): a failed message kept after it still points here, and joins
   * the pair of its business number and user that lives now if it is delivered after all (`place`).
   */
  isSwept: boolean;
  countryHint: string | undefined;
  /**
   * The events in it that tie its WABA, business number and user as the stores tie them (`events.business`,
   * docs/storage.md): its inbounds and outbound lines — after their copies are merged, one pair each — and the
   * statuses naming all three. Only a pair with ties places a status naming no WABA (placeUnplaced): a pair made
   * for a message known from statuses alone, or for a status placed, ties nothing.
   */
  ties: number;
  /**
   * A batch's messages that were sent to a business-scoped id and joined this pair of the id's phone number
   * (mergeScopedUsers): message id → the scoped id. Their charges are priced from the number, "market inferred".
   */
  scopedUserOf: Map<string, string> | undefined;
}

/**
 * The markets a what-if prices with: another era's rules whole, its markets included. The nine market splits
 * of PMP-2026-10 are reported rules: a what-if under an earlier era places numbers without them, whatever
 * the dates. Under PMP-2026-10 markets follow the date, as the cards do (no card before 2026-10 prices a
 * split market), like every other change of the market table.
 */
function marketsOfEra(options: RatingOptions): MarketResolver {
  const { asOfRules, markets } = options;
  if (asOfRules === undefined || asOfRules === 'PMP-2026-10') return markets;
  return markets.withoutReported?.() ?? markets;
}

/** The first instant an account_update changes a charge from: its own, or an earlier start it states. */
function effectiveFromMs(event: AccountUpdateEvent): number {
  const eligibility = event.authInternational;
  if (!eligibility) return event.atMs;
  return Math.min(event.atMs, eligibility.startMs, ...Object.values(eligibility.exceptionsMs));
}

function comparePairs(a: PairState, b: PairState): number {
  if (a.business !== b.business) return a.business < b.business ? -1 : 1;
  if (a.user !== b.user) return a.user < b.user ? -1 : 1;
  const [x, y] = [a.machine.waba, b.machine.waba];
  return x === y ? 0 : x < y ? -1 : 1;
}

/** The smaller of a pair's hints and `hint`, not the first read: the order of the input decides nothing. */
function mergeCountryHint(pair: PairState, hint: string): void {
  if (!pair.countryHint || hint < pair.countryHint) pair.countryHint = hint;
}

/** Any date: a number's country (unlike its market) does not depend on it. */
const PLACEMENT_DATE = '2000-01-01';

/** How much a status's pricing evidence weighs; Meta's other words weigh 0. A Map: no word finds Object's properties. */
export const EVIDENCE_RANK: ReadonlyMap<string, number> = new Map([
  ['delivered', 4],
  ['read', 3],
  ['sent', 2],
  ['failed', 1],
]);

export class Rater {
  private readonly isStreaming: boolean;
  private readonly latenessMs: number;
  private readonly isReportedRulesEnabled: boolean;
  private readonly records = new Map<string, MessageRecord>();
  /**
   * business number → user → pair (nested, so that no key string is built per event). The pair of the first
   * WABA seen with that number and user is under the user; the same number and user under another WABA (a
   * number moved between WABAs) is under `waba \0 user` (pairKey).
   */
  private readonly pairs = new Map<string, Map<string, PairState>>();
  private readonly dirty = new Set<PairState>();
  /** Each time zone's `PairRules` (pairRules): one object, not one a pair. */
  private readonly rulesOfTimeZone = new Map<string, PairRules>();
  private readonly tombstones = new RecentIds(TOMBSTONE_MS, DAY_MS);
  private readonly accountOverrides = new Map<string, Partial<Account>>();
  private readonly accountCache = new Map<string, Account>();
  private readonly accountFactTimes = new Map<string, number>();
  /** WABA | template name → Meta's category updates of the templates of that name, oldest first. */
  private readonly categoryUpdates = new Map<string, CategoryUpdate[]>();
  private readonly findings = new FindingCollector();
  private readonly tierStatements = new TierStatements();
  /** Tier statements' regions to the table's markets (`marketOfRegion`), made at the first statement. */
  private matchMarketName: ((name: string) => MarketNameMatch) | undefined;
  /**
   * Business-scoped user id, within a portfolio (`scopedKey`) → the phone number Meta gave with it somewhere
   * in the input.
   */
  private readonly phoneByScopedId = new Map<string, string>();
  /**
   * Meta's country of a user (`contacts[].profile.country_code`), by the user its statuses name, within the
   * portfolio (`scopedKey`).
   */
  private readonly countryHintOfUser = new Map<string, string>();
  /** Pairings of statuses naming no WABA, until their message has a WABA (`noteScopedPairsPlaced`). */
  private scopedPairsUnplaced: { id: string; scopedId: string; phone: string; atMs: number }[] = [];
  /** The number the traced business-scoped id was joined to (`RaterSummary.tracedUser`). */
  private traceJoinedTo: string | undefined;
  /** When the number in `phoneByScopedId` was last seen with its id (a user who changed numbers keeps the id). */
  private readonly phoneSeenAtMs = new Map<string, number>();
  /**
   * Business number → the WABAs it has tied pairs under (`PairState.ties`), with how many such pairs each —
   * never forgotten: a stream's sweep drops quiet pairs, not this —, for statuses alone that name no WABA
   * (placeUnplaced). A tie leaves only with its event: an outbound line's copy naming another number moves
   * it, as a store's merged row ties only the number it keeps.
   */
  private readonly wabasOfBusiness = new Map<string, Map<string, number>>();
  /**
   * A stream's pairs swept as quiet (`sweep`) of business numbers that send for several WABAs: business →
   * `WABA\0user`. A status naming no WABA is placed under the WABA of its business number and user's pair
   * (`placeUnplaced`), so the pair is remembered, not only while its state is kept: a batch, which never
   * forgets, places it so. Only for numbers of several WABAs (rare: a number moved), so memory still
   * follows active users.
   */
  private readonly sweptPairs = new Map<string, Set<string>>();
  /**
   * Business number \0 user → the WABAs that made a pair of them (pairFor), for NUMBER_OF_TWO_WABAS, said at a
   * flush of the pairs that hold anything then (`noteNumbersOfTwoWabas`); and the findings said (business \0
   * user \0 WABA \0 WABA). Only for a number and user of several WABAs (rare: a number moved).
   */
  private readonly wabasOfNumberAndUser = new Map<
    string,
    { business: string; user: string; wabas: string[] }
  >();
  private readonly notedTwoWabas = new Set<string>();
  /** WABAs an ACCOUNT_NOT_LISTED finding was said of (once each, however often their pairs are made). */
  private readonly notListed = new Set<string>();
  /** Messages a disagreement finding was said of (COPIES_DISAGREE, RECIPIENT_DISAGREES): each counted once. */
  private readonly notedMessages = new Set<string>();
  /**
   * WABA → the message its COPIES_DISAGREE finding names (the smallest id) and every field its copies
   * disagreed on so far (noteCopiesDisagree): one per WABA.
   */
  private readonly copiesDisagreeOf = new Map<string, { id: string; fields: Set<CopyField> }>();
  /**
   * WABA → message id → Meta's category word for a message rated but whose unit is not final yet (a
   * conversation still open), compared with the unit's category when it is (META_DISAGREES). Only messages
   * whose status carries a category: kept no longer than their units wait in `emitQueue`. Nested, not one
   * key string a message: every unit's messages are looked up, by the records' id strings (hashed once).
   */
  private readonly metaWords = new Map<
    string,
    Map<string, { word: MetaCategoryWord; deliveredAtMs: number }>
  >();
  /**
   * WABA → message id → the earliest status of a group message Meta bills, and Meta's category (the smaller
   * word if statuses differ): said at the end as GROUP_MESSAGES_NOT_RATED. Kept whole (also in a stream):
   * bounded by the group messages of the input.
   */
  private readonly groupMessages = new Map<string, Map<string, { atMs: number; category: string }>>();
  /** Records of statuses alone that name no WABA, placed when the input has been read up to a flush. */
  private unplaced: MessageRecord[] = [];
  /**
   * A batch's statuses that name no WABA, joined to their messages once every line is read, so that a message
   * id two WABAs' events name is known as such before them, whatever the order of the lines (addStatus).
   */
  private readonly statusesWithoutWaba = new DeferredStatuses<MessageRecord>();
  /** Message id → the keys of its records for WABAs other than the first (recordFor), for shared ids only. */
  private readonly keysOfSharedId = new Map<string, string[]>();
  /** Records of a second WABA made by the event being added, to be given the first's statuses after it. */
  private readonly claimedToReplay: MessageRecord[] = [];
  /** A stream's statuses that named no WABA and hold more than a bare one, by the id's first record. */
  private readonly otherStatusesWithoutWaba = new Map<MessageRecord, StatusEvent[]>();
  private readonly pricer: UnitPricer;
  private readonly emitQueue: UnitDraft[] = [];
  private emitHead = 0;
  private readonly decisions: MessageDecision[] = [];
  private readonly timeline: TimelineEntry[] = [];
  private readonly stats: RaterStats = {
    events: 0,
    duplicates: 0,
    late: 0,
    units: 0,
    pending: 0,
    unrated: 0,
  };
  private watermarkMs = -Infinity;
  private horizonMs = -Infinity;
  private eventsSinceFlush = 0;
  private flushes = 0;
  private isFinished = false;

  constructor(
    private readonly options: RatingOptions,
    private readonly sink: RatingSink,
  ) {
    this.isStreaming = options.maxLatenessMs !== undefined;
    this.latenessMs = options.maxLatenessMs ?? Infinity;
    this.isReportedRulesEnabled = options.isReportedRulesEnabled ?? true;
    this.pricer = new UnitPricer({
      accountFor: (waba) => this.accountFor(waba),
      rateBook: options.rateBook,
      markets: marketsOfEra(options),
      findings: this.findings,
      tierStatements: this.tierStatements,
      // Asked for every unit priced: no key is built while no id has a number (most input).
      phoneOfScopedUser: (waba, user) =>
        this.phoneByScopedId.size === 0 ? undefined : this.phoneByScopedId.get(this.scopedKey(waba, user)),
    });
  }

  accountFor(waba: string): Account {
    let account = this.accountCache.get(waba);
    if (!account) {
      account = { ...this.options.accountFor(waba), ...this.accountOverrides.get(waba) };
      this.accountCache.set(waba, account);
    }
    return account;
  }

  add(event: CoreEvent): void {
    if (this.isFinished) throw new Error('Rater.add after finish');
    if (event.kind === 'status' && event.namesOfCopies !== undefined && event.namesOfCopies.length > 0) {
      // A store's row of copies of one status that named the recipient otherwise: read as those copies, as
      // `wameter rate` reads them (a business-scoped id and its number are one user, no disagreement).
      const { namesOfCopies, ...copy } = event;
      delete copy.business;
      delete copy.user;
      delete copy.userCountryHint;
      delete copy.scopedUserId;
      for (const names of namesOfCopies) this.add({ ...copy, ...names });
      return;
    }
    this.stats.events += 1;
    if ('user' in event && event.user) {
      // One user written two ways (a Brazilian ninth digit, a Mexican 521): one pair, one window.
      const user = canonicalUser(event.user);
      if (user !== event.user) event = { ...event, user };
    }
    if (this.isStreaming && event.atMs > this.watermarkMs) this.watermarkMs = event.atMs;
    // Within the WABA's portfolio: Meta scopes the id to a business portfolio, and the service rates each
    // portfolio on its own. A status naming no WABA pairs them in the portfolio of the WABA it is placed
    // with, once it is (`noteScopedPairsPlaced`).
    if ((event.kind === 'inbound' || event.kind === 'status') && event.scopedUserId && event.user) {
      if (event.waba) {
        this.notePhoneOfScopedId(this.scopedKey(event.waba, event.scopedUserId), event.user, event.atMs);
      } else {
        // A stream pairs them at once when the id's message already has its WABA, so that the events before
        // its next flush join the number too (noteScopedPairsPlaced would pair them the same, later).
        const waba = this.isStreaming ? this.records.get(event.id)?.waba : undefined;
        if (waba !== undefined) {
          this.notePhoneOfScopedId(this.scopedKey(waba, event.scopedUserId), event.user, event.atMs);
        } else {
          const note = { id: event.id, scopedId: event.scopedUserId, phone: event.user, atMs: event.atMs };
          this.scopedPairsUnplaced.push(note);
        }
      }
    }
    if (
      event.kind !== 'status' &&
      'copiesDisagreeOn' in event &&
      event.copiesDisagreeOn &&
      event.copiesDisagreeOn.length > 0
    ) {
      // A store merged copies of this event that disagreed: the finding it would have said reading them.
      // (Not of a status: `wameter rate` reads each copy of a status and says no COPIES_DISAGREE of them.)
      this.noteCopiesDisagree(event.waba, event.id, event.copiesDisagreeOn);
    }
    switch (event.kind) {
      case 'inbound':
        if (this.isLate(event.atMs)) return;
        this.addInbound(
          event.waba,
          event.business,
          event.user,
          event.id,
          event.atMs,
          event.hasReferral,
          event.userCountryHint,
          event.isUntied !== true,
        );
        break;
      case 'outbound':
        this.addOutbound(event);
        break;
      case 'status':
        if (event.recipientType === 'group') this.noteGroupMessage(event);
        else if (event.waba === undefined && !this.isStreaming) {
          this.statusesWithoutWaba.add(event, this.records.get(event.id));
        } else this.addStatus(event);
        break;
      // A stream has rated what is behind its horizon: a fact that would have changed it is late, as a late
      // message is (LATE_EVENT), not applied to the rest alone without a word.
      case 'account_update':
        if (this.isLate(effectiveFromMs(event))) return;
        this.applyAccountUpdate(event);
        break;
      case 'template_category_update':
        if (this.isLate(event.atMs)) return;
        this.addCategoryUpdate(event);
        break;
    }
    if (this.claimedToReplay.length > 0) this.replayStatusesWithoutWaba();
    if (
      this.isStreaming &&
      ++this.eventsSinceFlush >= (this.options.flushEveryEvents ?? FLUSH_EVERY_EVENTS)
    ) {
      this.eventsSinceFlush = 0;
      this.flush(this.watermarkMs - this.latenessMs);
    }
  }

  /**
   * The smaller of the country hints Meta gave for a user of a portfolio (`scopedKey`): the order of the input
   * decides nothing.
   */
  private noteCountryHintOfUser(key: string, hint: string): void {
    const known = this.countryHintOfUser.get(key);
    if (known === undefined || hint < known) this.countryHintOfUser.set(key, hint);
  }

  /**
   * A pair's country hint: its records', and Meta's for its user in its portfolio wherever that user's statuses
   * stand.
   */
  private countryHintOf(pair: PairState): string | undefined {
    if (this.countryHintOfUser.size === 0) return pair.countryHint;
    const ofUser = this.countryHintOfUser.get(this.scopedKey(pair.machine.waba, pair.user));
    if (ofUser === undefined) return pair.countryHint;
    return pair.countryHint === undefined || ofUser < pair.countryHint ? ofUser : pair.countryHint;
  }

  /** The pairings of statuses naming no WABA whose message now has one, in that WABA's portfolio. */
  private noteScopedPairsPlaced(): void {
    this.scopedPairsUnplaced = this.scopedPairsUnplaced.filter((note) => {
      const record = this.records.get(note.id);
      // Its record forgotten (a stream's rated and swept message): nothing is left to pair.
      if (record === undefined) return false;
      if (record.waba === undefined) return true;
      this.notePhoneOfScopedId(this.scopedKey(record.waba, note.scopedId), note.phone, note.atMs);
      return false;
    });
  }

  /** `phoneByScopedId`'s key: a business-scoped id within the portfolio of `waba`. */
  private scopedKey(waba: string, scopedId: string): string {
    return `${this.accountFor(waba).portfolio}\u0000${scopedId}`;
  }

  /**
   * A business-scoped id outlives a change of number: the number seen with it last (in event time, the
   * smaller on a tie) is the user's, whatever the order of the lines.
   */
  private notePhoneOfScopedId(scopedId: string, phone: string, atMs: number): void {
    const known = this.phoneByScopedId.get(scopedId);
    if (known !== undefined) {
      if (known === phone) {
        if (atMs > this.phoneSeenAtMs.get(scopedId)!) this.phoneSeenAtMs.set(scopedId, atMs);
        return;
      }
      const knownAtMs = this.phoneSeenAtMs.get(scopedId)!;
      if (atMs < knownAtMs || (atMs === knownAtMs && phone > known)) return;
    }
    this.phoneByScopedId.set(scopedId, phone);
    this.phoneSeenAtMs.set(scopedId, atMs);
  }

  /** A status of a group message Meta bills: not rated (no group rules), kept for its finding. */
  private noteGroupMessage(event: StatusEvent): void {
    const waba = event.waba ?? '';
    const category = typeof event.pricing?.category === 'string' ? event.pricing.category : '?';
    let messages = this.groupMessages.get(waba);
    if (!messages) this.groupMessages.set(waba, (messages = new Map()));
    const known = messages.get(event.id);
    if (known === undefined) messages.set(event.id, { atMs: event.atMs, category });
    else {
      known.atMs = Math.min(known.atMs, event.atMs);
      if (category < known.category) known.category = category;
    }
  }

  /**
   * One GROUP_MESSAGES_NOT_RATED per WABA, counting its group messages that Meta bills and naming the
   * earliest; said once every line is read, so that a message's earliest status is known in any order.
   */
  private noteGroupMessagesNotRated(): void {
    for (const waba of [...this.groupMessages.keys()].sort(compareIds)) {
      for (const [id, { atMs, category }] of this.groupMessages.get(waba)!) {
        this.findings.add(
          `GROUP_MESSAGES_NOT_RATED:${waba}`,
          () => ({
            code: 'GROUP_MESSAGES_NOT_RATED',
            message: `WABA ${waba}: Meta's status webhooks say Meta bills messages sent to WhatsApp groups (first: ${id}, Meta's category ${category}); wameter has no rules for group messages (pricing-rules.md), so they are not in this bill: check their charges on Meta's invoice`,
            waba,
            message_id: id,
            meta_category: category,
          }),
          exemplarAt(atMs, id),
        );
      }
    }
  }

  /** Rates everything still open and returns what was found. The sink has received every unit after this. */
  finish(): RaterSummary {
    if (this.isFinished) throw new Error('Rater.finish called twice');
    this.statusesWithoutWaba.drain((event, record) => this.addStatus(event, record));
    this.flush(Infinity);
    this.isFinished = true;
    const leftovers = [...this.records.values()]
      .filter((record) => !record.isRated)
      .sort((a, b) => a.sentAtMs - b.sentAtMs || compareIds(a.id, b.id));
    for (const record of leftovers) this.retire(record, Infinity);
    this.noteGroupMessagesNotRated();
    if (this.stats.late > 0) {
      this.findings.add('LATE_EVENT', () => ({
        code: 'LATE_EVENT',
        message: `${this.stats.late} event(s) arrived more than ${formatDuration(this.latenessMs)} after newer ones and were not rated: rate without --stream, or raise --max-lateness`,
      }));
    }
    return {
      findings: this.findings.list(),
      decisions: this.decisions,
      timeline: this.timeline.sort((a, b) => a.atMs - b.atMs),
      stats: this.stats,
      ...(this.traceJoinedTo === undefined ? {} : { tracedUser: this.traceJoinedTo }),
    };
  }

  /**
   * After finish(): prices hypothetical sends against the state the events left (open windows, free entry
   * points, open conversations, monthly allowances and tier counts). Changes nothing in the rater. Sends are
   * quoted in order, so a campaign moves through volume tiers and allowances as it would for real. What
   * pricing them found (no rate, an unknown number, reported rules) goes to `findings`.
   */
  quote(
    sends: readonly QuoteRequest[],
    findings = new FindingCollector(),
    options: { isTierCountHeld?: boolean } = {},
  ): Quote[] {
    if (!this.isFinished) throw new Error('Rater.quote before finish');
    const pricer = this.pricer.fork(findings);
    const machines = new Map<string, { machine: PairMachine; countryHint?: string }>();
    let lastEntry: PairTraceEntry | undefined;
    const capture = (entry: PairTraceEntry) => {
      lastEntry = entry;
    };
    return sends.map((asked) => {
      // The user as the pairs know it: a recipient written without the Brazilian ninth digit is the same user.
      const user = canonicalUser(asked.user);
      const send = user === asked.user ? asked : { ...asked, user };
      const key = `${send.waba}\u0000${send.business}\u0000${send.user}`;
      let forked = machines.get(key);
      if (!forked) {
        const pair = this.findPair(send.waba, send.business, send.user);
        const account = this.accountFor(send.waba);
        const machine = pair
          ? pair.machine.fork(capture)
          : new PairMachine(
              send.waba,
              send.business,
              send.user,
              {
                timeZone: account.timeZone,
                isReportedRulesEnabled: this.isReportedRulesEnabled,
                ...(this.options.asOfRules ? { asOfRules: this.options.asOfRules } : {}),
              },
              capture,
            );
        const countryHint = pair && this.countryHintOf(pair);
        forked = countryHint ? { machine, countryHint } : { machine };
        machines.set(key, forked);
      }
      const opened: UnitDraft[] = [];
      lastEntry = undefined;
      forked.machine.apply(
        [
          {
            atMs: send.atMs,
            id: send.id,
            message: {
              id: send.id,
              template: send.template,
              isCategoryFromWebhook: false,
              sentAtMs: send.atMs,
              ...(send.label === undefined ? {} : { label: send.label }),
            },
          },
        ],
        opened,
      );
      const draft = opened[0];
      const entry = lastEntry as PairTraceEntry | undefined;
      if (!draft) {
        const place = this.pricer.markets.resolve(
          send.user,
          localDate(send.atMs, this.accountFor(send.waba).timeZone),
          forked.countryHint,
        );
        return {
          id: send.id,
          unit: null,
          isFree: true,
          amountMicros: 0,
          rateMicros: null,
          currency: this.accountFor(send.waba).currency,
          country: place.country,
          market: place.market,
          rule: entry?.rule ?? 'RIDE',
          reason: entry?.reason ?? 'rides on an open conversation',
        };
      }
      if (forked.countryHint) draft.countryHint = forked.countryHint;
      if (options.isTierCountHeld === true) pricer.priceAtHeldTier(draft);
      else pricer.price(draft);
      const unit = toUnit(draft);
      return {
        id: send.id,
        unit,
        isFree: unit.type !== 'regular',
        amountMicros: unit.amountMicros,
        rateMicros: unit.rateMicros,
        currency: unit.currency,
        country: unit.country,
        market: unit.market,
        rule: unit.rule,
        reason: `${entry?.reason ?? unit.rule} \u2014 ${costInWords(unit, 'warnings')}`,
      };
    });
  }

  private isLate(atMs: number): boolean {
    if (atMs >= this.horizonMs) return false;
    this.stats.late += 1;
    return true;
  }

  /**
   * The pair of `business` and `user` under `waba`; with no WABA (a status line that names none), the pair of
   * the first WABA seen with them.
   */
  private findPair(waba: string | undefined, business: string, user: string): PairState | undefined {
    const users = this.pairs.get(business);
    const pair = users?.get(user);
    if (!pair || waba === undefined || pair.machine.waba === waba) return pair;
    return users!.get(pairKey(waba, user));
  }

  /**
   * Finds or makes the pair. Each WABA's messages are rated with its own time zone, allowances, tiers and
   * currency: a business number moved to another WABA starts a new pair there (nothing carries over).
   */
  private pairFor(waba: string | undefined, business: string, user: string): PairState {
    let users = this.pairs.get(business);
    if (!users) {
      users = new Map();
      this.pairs.set(business, users);
    }
    let pair = users.get(user);
    if (pair && waba !== undefined && pair.machine.waba !== waba) {
      const first = pair.machine.waba;
      const key = pairKey(waba, user);
      pair = users.get(key);
      if (!pair) {
        pair = this.newPair(waba, business, user);
        users.set(key, pair);
        // A status that named no WABA made one of the pairs under the business number itself: not a WABA.
        if (first !== business && waba !== business) {
          const key = `${business}\u0000${user}`;
          let known = this.wabasOfNumberAndUser.get(key);
          if (!known) this.wabasOfNumberAndUser.set(key, (known = { business, user, wabas: [] }));
          for (const one of [first, waba]) if (!known.wabas.includes(one)) known.wabas.push(one);
        }
      }
    } else if (!pair) {
      pair = this.newPair(waba ?? business, business, user);
      users.set(user, pair);
    }
    return pair;
  }

  /**
   * Counts `count` events more (or fewer, when negative) that tie `pair`'s WABA, number and user (`ties`). A pair
   * under the number itself (statuses alone, WABA_UNKNOWN) ties nothing.
   */
  private tie(pair: PairState, count: number): void {
    const waba = pair.machine.waba;
    if (waba === pair.business) return;
    const wasTied = pair.ties > 0;
    pair.ties += count;
    if (wasTied === pair.ties > 0) return;
    // The pair came to tie, or tie no more: its WABA counts one tied pair more or fewer of the number.
    let wabas = this.wabasOfBusiness.get(pair.business);
    if (!wabas) this.wabasOfBusiness.set(pair.business, (wabas = new Map()));
    const pairs = (wabas.get(waba) ?? 0) + (wasTied ? -1 : 1);
    if (pairs > 0) wabas.set(waba, pairs);
    else wabas.delete(waba);
  }

  /**
   * NUMBER_OF_TWO_WABAS for a business number and user whose pairs under two WABAs hold anything (a tie, an
   * inbound, a message) once the lines up to this flush are read. Not when the second pair is made: a send
   * log's copy or a status naming a number the message then leaves (a smaller copy wins) made a pair left
   * empty, and the finding followed which copy came first (differential seed 179). Each two WABAs are named
   * in byte order, once per number and user.
   */
  private noteNumbersOfTwoWabas(): void {
    for (const { business, user, wabas } of this.wabasOfNumberAndUser.values()) {
      const held = wabas
        .filter((waba) => {
          const pair = this.findPair(waba, business, user);
          return (
            pair !== undefined &&
            pair.machine.waba === waba &&
            (pair.ties > 0 || pair.inbounds.length > 0 || pair.queued.length > 0 || pair.waitingCount > 0)
          );
        })
        .sort();
      for (let i = 0; i < held.length; i++) {
        for (let j = i + 1; j < held.length; j++) {
          const [smaller, larger] = [held[i]!, held[j]!];
          const key = `${business}\u0000${user}\u0000${smaller}\u0000${larger}`;
          if (this.notedTwoWabas.has(key)) continue;
          this.notedTwoWabas.add(key);
          this.findings.add(`NUMBER_OF_TWO_WABAS:${business}:${smaller}:${larger}`, () => ({
            code: 'NUMBER_OF_TWO_WABAS',
            message: `business number ${business} sends for WABA ${smaller} and for WABA ${larger} (a number moved between WABAs?): each message is billed to its own WABA, and windows and conversations do not carry over from one to the other`,
            business,
            waba: larger,
            other_waba: smaller,
          }));
        }
      }
    }
  }

  private newPair(waba: string, business: string, user: string): PairState {
    if (waba !== business) {
      const listed = this.options.listedWabas;
      // Once per WABA: a stream's sweep forgets quiet pairs and makes them again (the count would differ
      // from a batch's). The file's other WABAs are not counted in the words: other clients' to a key.
      if (listed !== undefined && listed.size > 0 && !listed.has(waba) && !this.notListed.has(waba)) {
        this.notListed.add(waba);
        this.findings.add(`ACCOUNT_NOT_LISTED:${waba}`, () => accountNotListedFinding(waba));
      }
    }
    const account = this.accountFor(waba);
    return {
      business,
      user,
      machine: new PairMachine(
        waba,
        business,
        user,
        this.pairRules(account.timeZone),
        this.traceFor(waba, business, user),
      ),
      inbounds: [],
      queued: [],
      waitingCount: 0,
      isSwept: false,
      countryHint: undefined,
      ties: 0,
      scopedUserOf: undefined,
    };
  }

  /** The rules of the pairs of WABAs in `timeZone`: one object for all of them (a machine never changes it). */
  private pairRules(timeZone: string): PairRules {
    let rules = this.rulesOfTimeZone.get(timeZone);
    if (rules === undefined) {
      rules = {
        timeZone,
        isReportedRulesEnabled: this.isReportedRulesEnabled,
        ...(this.options.asOfRules ? { asOfRules: this.options.asOfRules } : {}),
      };
      this.rulesOfTimeZone.set(timeZone, rules);
    }
    return rules;
  }

  private traceFor(
    waba: string,
    business: string,
    user: string,
  ): ((entry: PairTraceEntry) => void) | undefined {
    const wanted = this.options.trace;
    const isTraced =
      wanted !== undefined &&
      (wanted.user === user || this.traceJoinedTo === user) &&
      (!wanted.business || wanted.business === business);
    if (!isTraced && !this.options.withDecisions) return undefined;
    return (entry) => {
      if (isTraced) {
        const line: TimelineEntry = {
          atMs: entry.atMs,
          kind: entry.kind,
          waba,
          business,
          messageId: entry.messageId,
          reason: entry.reason,
        };
        if (entry.unitId) line.unitId = entry.unitId;
        if (entry.era) line.era = entry.era;
        if (entry.rule) line.rule = entry.rule;
        this.timeline.push(line);
      }
      if (this.options.withDecisions && entry.kind === 'message') {
        const record = this.recordOfPair(entry.messageId, waba);
        const decision: MessageDecision = {
          messageId: entry.messageId,
          waba: record?.waba ?? '',
          business,
          user,
          deliveredAtMs: entry.atMs,
          template: entry.template ?? null,
          era: entry.era!,
          unitId: entry.unitId!,
          rule: entry.rule!,
          reason: entry.reason,
        };
        if (record?.pricing || record?.conversation) {
          decision.meta = {};
          if (record.pricing) decision.meta.pricing = { ...record.pricing };
          if (record.conversation) decision.meta.conversation = { ...record.conversation };
        }
        this.decisions.push(decision);
      }
    };
  }

  /**
   * The record of message `id` that a pair of WABA `waba` rated: of an id that two WABAs' events name, that
   * WABA's own (recordFor), never the first WABA's — whose WABA, recipient and Meta's pricing a decision
   * would otherwise carry to another client's explanation and reconciliation.
   */
  private recordOfPair(id: string, waba: string): MessageRecord | undefined {
    const first = this.records.get(id);
    if (first === undefined || first.waba === waba) return first;
    return this.records.get(`${waba}\u0000${id}`) ?? first;
  }

  private addInbound(
    waba: string,
    business: string,
    user: string,
    id: string,
    atMs: number,
    hasReferral: boolean,
    countryHint: string | undefined,
    isTying: boolean,
  ): void {
    // A stream's inbound from a business-scoped id whose number came before: the number's pair (place()).
    const phone =
      this.isStreaming && this.phoneByScopedId.size > 0 ? this.phoneOfScopedUser(waba, user) : undefined;
    const pair = this.pairFor(waba, business, phone ?? user);
    // The smaller of two hints, not the first: the order of the input decides nothing.
    if (countryHint) mergeCountryHint(pair, countryHint);
    pair.inbounds = appended(pair.inbounds, { atMs, id, hasReferral });
    if (isTying) this.tie(pair, 1);
    this.dirty.add(pair);
  }

  /**
   * The record of message `id` as the events of `waba` know it. Meta's ids are unique, so events of two
   * WABAs naming one id (a client's key writing another client's message id, or a send log naming the wrong
   * WABA) are each rated with their own WABA's: a status never makes another WABA's message delivered, in
   * whatever order the events come. A status that names no WABA gets the record of the id alone (addStatus
   * gives it to the other WABAs' records too).
   */
  private recordFor(id: string, waba: string | undefined): MessageRecord | undefined {
    let record = this.records.get(id);
    if (!record && this.isStreaming) {
      // A stream that rated and forgot the id's first record keeps another WABA's record of the id, and
      // remembers it rated under that WABA's key: the id's tombstone is the first WABA's message alone.
      if (waba !== undefined && this.keysOfSharedId.size > 0) {
        const keys = this.keysOfSharedId.get(id);
        if (keys) {
          const key = `${waba}\u0000${id}`;
          if (keys.includes(key)) {
            const claimed = this.records.get(key);
            if (claimed) return claimed;
            if (this.tombstones.has(key)) {
              this.stats.duplicates += 1;
              return undefined;
            }
          }
        }
      }
      if (this.tombstones.has(id)) {
        this.stats.duplicates += 1;
        return undefined;
      }
    }
    if (!record) {
      record = new MessageRecord(id);
      this.records.set(id, record);
      return record;
    }
    if (waba === undefined || record.waba === undefined || record.waba === waba) return record;
    const key = `${waba}\u0000${id}`;
    if (this.isStreaming && this.tombstones.has(key)) {
      this.stats.duplicates += 1;
      return undefined;
    }
    let claimed = this.records.get(key);
    if (!claimed) {
      claimed = new MessageRecord(id, key);
      this.records.set(key, claimed);
      if (record.bareStatusesWithoutWaba || this.otherStatusesWithoutWaba.has(record)) {
        this.claimedToReplay.push(claimed);
      }
      // Every WABA that named the id before this one: each pair of them shares one more message, whatever the
      // order of the lines (a third WABA's events make two pairs more, never one in place of another).
      const keys = this.keysOfSharedId.get(id);
      const before = keys
        ? [record.waba, ...keys.map((k) => k.slice(0, k.indexOf('\u0000')))]
        : [record.waba];
      if (keys) keys.push(key);
      else this.keysOfSharedId.set(id, [key]);
      // (A stream that forgot a rated record of the id may meet its WABA again: never a pair with itself.)
      for (const other of new Set(before)) if (other !== waba) this.noteMessageOfTwoWabas(id, other, waba);
    }
    return claimed;
  }

  /**
   * One finding per pair of WABAs, counting the message ids both WABAs' events name (the collector counts
   * each add: each WABA claims an id once), and naming the smallest of them: said as lines are read, before
   * the messages' times are known (docs/decisions.md, "A finding's words follow no line order").
   */
  private noteMessageOfTwoWabas(id: string, one: string, another: string): void {
    const [smaller, larger] = one < another ? [one, another] : [another, one];
    this.findings.add(
      `MESSAGE_OF_TWO_WABAS:${smaller}\u0000${larger}`,
      () => ({
        code: 'MESSAGE_OF_TWO_WABAS',
        message: `WABA ${smaller} and WABA ${larger}: events of both name the same message ids (e.g. message ${id}); Meta's ids are unique, so one of them is wrong: each WABA's events were rated apart`,
        message_id: id,
        waba: larger,
        other_waba: smaller,
      }),
      id,
    );
  }

  private addOutbound(event: OutboundEvent): void {
    if (this.isLate(event.atMs)) return;
    const record = this.recordFor(event.id, event.waba);
    if (!record) return;
    if (record.hasOutbound) {
      this.stats.duplicates += 1;
      this.mergeOutboundCopy(record, event);
      return;
    }
    if (this.isStreaming && !record.pair) {
      // Its delivery (a status read before it, or its own delivered_at) is behind the horizon: the stream
      // has rated the pair past it, so the message is late as a delivery status that late is (applyStatus).
      // Before, it was rated out of its time's order, after the pair's later messages. (A sweep between
      // retires such a status first: STATUS_WITHOUT_USER, and this send log is then a duplicate.)
      const deliveredAtMs = Math.min(record.deliveredAtMs, event.deliveredAtMs ?? Infinity);
      if (deliveredAtMs < this.horizonMs) {
        this.stats.late += 1;
        this.forgetRecord(record);
        this.tombstones.add(record.key, this.horizonMs);
        return;
      }
    }
    record.hasOutbound = true;
    if (event.isUntied) record.isOutboundUntied = true;
    record.waba = event.waba;
    setRecordName(record, 'business', event.business);
    this.renameUser(record, event.user);
    record.sentAtMs = event.atMs;
    record.template = event.template;
    if (event.templateName) record.templateName = event.templateName;
    if (event.isFailed) record.failedAtMs = Math.min(record.failedAtMs, event.atMs);
    if (event.deliveredAtMs !== undefined) this.markDelivered(record, event.deliveredAtMs, false);
    this.place(record, true);
  }

  /**
   * A status that names no WABA (a send log's) joins every WABA's message of its id: it cannot tell which
   * one it is about, and the stores list it with each (docs/storage.md); MESSAGE_OF_TWO_WABAS says so. A
   * stream gives it to the WABAs it has met by then.
   */
  private addStatus(event: StatusEvent, known?: MessageRecord): void {
    // `known`: a batch's record of the id, found when the status was read (none is dropped before the end).
    const record = known ?? this.recordFor(event.id, event.waba);
    if (record) {
      this.applyStatus(record, event);
      this.notePairOfStatus(record, event);
      if (event.waba === undefined && this.isStreaming && this.records.get(event.id) === record) {
        this.keepStatusWithoutWaba(record, event);
      }
    }
    const keys =
      event.waba === undefined && this.keysOfSharedId.size > 0
        ? this.keysOfSharedId.get(event.id)
        : undefined;
    if (!keys) return;
    // (A stream that rated and forgot the id's first record still gives it to the other WABAs' records kept.)
    let isApplied = record !== undefined;
    for (const key of keys) {
      const other = this.records.get(key);
      if (other) {
        this.applyStatus(other, event);
        isApplied = true;
      }
    }
    if (!record && isApplied) this.stats.duplicates -= 1;
  }

  /**
   * A stream's record of a second WABA's message, made by the event just added (its outbound line, say, now
   * in the record), gets the statuses that named no WABA which the id's first record got before it existed.
   */
  private replayStatusesWithoutWaba(): void {
    for (const claimed of this.claimedToReplay) {
      const first = this.records.get(claimed.id);
      if (!first || this.records.get(claimed.key) !== claimed) continue;
      const earliest = first.bareStatusesWithoutWaba ?? [];
      for (let code = 0; code < earliest.length; code++) {
        if (earliest[code] !== Infinity)
          this.applyStatus(claimed, bareStatus(earliest[code]!, first.id, code));
      }
      for (const status of this.otherStatusesWithoutWaba.get(first) ?? []) this.applyStatus(claimed, status);
    }
    this.claimedToReplay.length = 0;
  }

  /** Keeps a stream's status that named no WABA with the id's first record (replayStatusesWithoutWaba). */
  private keepStatusWithoutWaba(record: MessageRecord, event: StatusEvent): void {
    const code = bareStatusCode(event);
    if (code !== undefined) {
      const earliest = (record.bareStatusesWithoutWaba ??= bareStatusSlots());
      if (event.atMs < earliest[code]!) earliest[code] = event.atMs;
      return;
    }
    const others = this.otherStatusesWithoutWaba.get(record);
    if (others) others.push(event);
    else this.otherStatusesWithoutWaba.set(record, [event]);
  }

  /**
   * A status naming its WABA, a business number and a user (Meta's status webhook: the entry's WABA and its
   * phone_number_id) shows that the number sends for that WABA, to that user: their pair is kept (for statuses
   * naming no WABA, placeUnplaced) even when the message's send log names another number or user, which wins
   * for the message itself. Whatever the order of the lines: read before the send log, the status made that
   * pair anyway. The stores tie the number so (`events.business`, docs/storage.md) — of a status's copies
   * merged into one row: its smallest number and user, and only when one copy named that number with a user
   * (`tiedBusinessAfterMerge`); a listed row that ties nothing says so (`isUntied`).
   */
  private notePairOfStatus(record: MessageRecord, event: StatusEvent): void {
    const { waba, business, user } = event;
    if (waba === undefined || waba === business || (!business && !user)) return;
    const bit = STATUS_WORD_BITS.get(event.status) ?? 0;
    const isTying = business !== undefined && business !== '' && !!user && !event.isUntied;
    let tie = record.statusTies?.find((known) => known.word === event.status);
    if (!tie && bit !== 0) {
      const common = record.commonTie;
      const isCommon = common !== undefined && common.business === business && common.user === user;
      if ((record.commonTieWords & bit) !== 0) {
        if (isTying && isCommon) return; // another copy saying the same
        // A copy saying otherwise: the word leaves the common tie for an entry of its own.
        record.commonTieWords &= ~bit;
        if (record.commonTieWords === 0) {
          this.tie(common!, -1);
          record.commonTie = undefined;
        }
        tie = {
          word: event.status,
          business: common!.business,
          user: common!.user,
          numbers: [common!.business],
          pair: undefined,
        };
        (record.statusTies ??= []).push(tie);
      } else if (isTying && (common === undefined || isCommon)) {
        if (common === undefined) {
          record.commonTie = this.pairFor(waba, business, user);
          this.tie(record.commonTie, 1);
        }
        record.commonTieWords |= bit;
        return;
      }
    }
    if (!tie) {
      tie = { word: event.status, business: undefined, user: undefined, numbers: [], pair: undefined };
      (record.statusTies ??= []).push(tie);
    }
    if (business && (tie.business === undefined || business < tie.business)) tie.business = business;
    if (user && (tie.user === undefined || user < tie.user)) tie.user = user;
    if (isTying && !tie.numbers.includes(business)) tie.numbers.push(business);
    const pair =
      tie.business !== undefined && tie.user !== undefined && tie.numbers.includes(tie.business)
        ? this.pairFor(waba, tie.business, tie.user)
        : undefined;
    if (pair === tie.pair) return;
    if (tie.pair) this.tie(tie.pair, -1);
    if (pair) this.tie(pair, 1);
    tie.pair = pair;
  }

  private applyStatus(record: MessageRecord, event: StatusEvent): void {
    // `played` (a voice message played on the phone) implies delivery as `read` does.
    const isDelivery = event.status === 'delivered' || event.status === 'read' || event.status === 'played';
    if (isDelivery && this.isLate(event.atMs)) {
      // Refused: a record made for it alone would end as a finding about statuses that say nothing.
      if (isUntouched(record)) this.records.delete(record.key);
      return;
    }
    let isMoved = false;
    if (!record.hasOutbound) {
      if (event.waba && !record.waba) record.waba = event.waba;
      const named = this.namedUser(record);
      if (
        (event.business !== undefined &&
          record.business !== undefined &&
          event.business !== record.business) ||
        (event.user && named && event.user !== named)
      ) {
        // Statuses of one message naming two recipients: the smaller is kept whatever came first.
        if (event.business !== undefined && event.business < record.business!)
          setRecordName(record, 'business', event.business);
        if (event.user && event.user < named!) this.renameUser(record, event.user);
        isMoved = record.pair !== undefined;
      }
      if (event.business && !record.business) setRecordName(record, 'business', event.business);
      if (event.user && !record.user) setRecordName(record, 'user', event.user);
      if (event.atMs < record.sentAtMs) record.sentAtMs = event.atMs;
    }
    // What it named, against the send log or the other statuses once the record is final.
    noteStatusNames(record, event.business, event.user);
    // Meta's country of a business-scoped user (contacts[].profile.country_code), whether or not the send log
    // came first: the smaller of two, so that the order of the lines decides nothing.
    if (event.userCountryHint && (!record.countryHint || event.userCountryHint < record.countryHint)) {
      record.countryHint = event.userCountryHint;
      if (record.pair) mergeCountryHint(record.pair, record.countryHint);
    }
    // And the user the status names, within the portfolio of the webhook's WABA (Meta scopes a business-scoped
    // id to one; a hint always comes with its WABA): its record may stand under another recipient (the smaller
    // of two, once both are read), and that user's own pair has the hint whichever came first.
    if (event.userCountryHint && event.user && event.waba) {
      this.noteCountryHintOfUser(this.scopedKey(event.waba, event.user), event.userCountryHint);
    }
    // Each of Meta's two words from the highest-ranked status that carries it. Two webhooks of one status
    // saying different things (copies): the rule of event-copies.ts keeps the same one whichever came first,
    // so that the category never follows the order of the input.
    const rank = event.pricing || event.conversation ? (EVIDENCE_RANK.get(event.status) ?? 0) : 0;
    if (event.pricing) {
      if (rank > record.pricingRank) {
        record.pricingRank = rank;
        record.pricing = event.pricing;
      } else if (rank === record.pricingRank) {
        record.pricing = preferredEvidence(record.pricing, event.pricing);
      }
    }
    if (event.conversation) {
      if (rank > record.conversationRank) {
        record.conversationRank = rank;
        record.conversation = event.conversation;
      } else if (rank === record.conversationRank) {
        record.conversation = preferredEvidence(record.conversation, event.conversation);
      }
    }
    if (event.status === 'sent' || event.status === 'delivered' || event.status === 'failed')
      record.hasSendReport = true;
    if (isDelivery) this.markDelivered(record, event.atMs, event.status !== 'delivered');
    else if (event.status === 'failed') record.failedAtMs = Math.min(record.failedAtMs, event.atMs);
    this.place(record, isMoved);
  }

  /**
   * A second outbound line for one message (the send log written twice, two systems logging one send): what
   * the copies agree on is kept, and where they differ the rule of event-copies.ts decides, not the order.
   */
  private mergeOutboundCopy(record: MessageRecord, event: OutboundEvent): void {
    const disagreements: CopyField[] = [];
    if (event.template !== record.template) {
      disagreements.push('template');
      record.template = preferredTemplate(record.template ?? null, event.template);
    }
    if (event.business !== record.business) {
      disagreements.push('business');
      if (event.business < record.business!) setRecordName(record, 'business', event.business);
    }
    const named = this.namedUser(record);
    if (event.user !== named) {
      disagreements.push('user');
      if (event.user < named!) this.renameUser(record, event.user);
    }
    if (event.templateName !== undefined) {
      if (record.templateName === undefined) record.templateName = event.templateName;
      else if (event.templateName !== record.templateName) {
        disagreements.push('templateName');
        if (event.templateName < record.templateName) record.templateName = event.templateName;
      }
    }
    if (event.atMs < record.sentAtMs) record.sentAtMs = event.atMs;
    if (event.isFailed) record.failedAtMs = Math.min(record.failedAtMs, event.atMs);
    if (event.deliveredAtMs !== undefined) this.markDelivered(record, event.deliveredAtMs, false);
    if (disagreements.length > 0) this.noteCopiesDisagree(record.waba, record.id, disagreements.sort());
    this.place(record, true);
  }

  /**
   * One finding per WABA, counting the messages whose copies disagreed (the collector counts each add). It
   * names every field on which two copies of its message disagree: each copy is compared with what the
   * copies before it left (one of their values), so the fields a message's merges name add up to those,
   * whatever the order of the lines. Worded when listed, from `copiesDisagreeOf` (one message per WABA).
   */
  private noteCopiesDisagree(waba: string | undefined, id: string, fields: readonly CopyField[]): void {
    const wabaKey = waba ?? '';
    let named = this.copiesDisagreeOf.get(wabaKey);
    // The smallest id, as the collector's exemplar: the message the finding names.
    if (!named || id < named.id) this.copiesDisagreeOf.set(wabaKey, (named = { id, fields: new Set() }));
    if (named.id === id) for (const field of fields) named.fields.add(field);
    if (!this.isFirstNote('COPIES_DISAGREE', waba, id)) return;
    this.findings.addWorded(
      `COPIES_DISAGREE:${wabaKey}`,
      () => {
        const { id: first, fields: all } = this.copiesDisagreeOf.get(wabaKey)!;
        const sorted = [...all].sort();
        return {
          code: 'COPIES_DISAGREE',
          message: `WABA ${waba ?? '?'}: copies of one event disagree (e.g. message ${first}, on ${sorted.join(', ')}): the costlier category and otherwise the smaller value were kept, whichever copy came first; check the systems that wrote them`,
          message_id: first,
          fields: sorted,
          ...(waba === undefined ? {} : { waba }),
        };
      },
      id,
    );
  }

  /**
   * A final record whose statuses named another recipient (or business number) than it has: the send log's,
   * or, with statuses alone, the smaller their copies named. Said once the record is rated or given up
   * (`retireRated`, `forgetRecord`), from every number its events named, so that no line order decides it: a
   * second copy of the send log read last may still make the status agree. Meta's numbers may be written
   * otherwise than the log's (a Brazilian number without its ninth digit): only numbers in two countries
   * (which may price apart) are said; a business-scoped id is no number (MARKET_INFERRED says the rest).
   */
  private noteRecipientDisagrees(record: MessageRecord): void {
    const others = record.otherNames;
    if (others === undefined) return;
    let kind: 'business numbers' | 'recipients';
    let seen: string[];
    const businesses = others.businesses.filter((business) => business !== record.business);
    if (businesses.length > 0 && record.business) {
      kind = 'business numbers';
      seen = [record.business, ...businesses];
    } else {
      const ours = record.user;
      if (!ours || !isPhoneNumber(ours)) return;
      // Countries, not markets: a number's country does not change with the date (its market may).
      const countryOf = (number: string) => this.options.markets.resolve(number, PLACEMENT_DATE).country;
      const country = countryOf(ours);
      seen = [];
      for (const user of others.users) {
        if (user === ours || !isPhoneNumber(user)) continue;
        const theirs = countryOf(user);
        if (theirs !== country) seen.push(`${user} (${theirs ?? '?'})`);
      }
      if (seen.length === 0) return;
      seen.push(`${ours} (${country ?? '?'})`);
      kind = 'recipients';
    }
    const waba = record.waba;
    if (!this.isFirstNote('RECIPIENT_DISAGREES', waba, record.id)) return;
    const what = `${kind} ${seen.sort().join(' and ')}`;
    const isLogged = record.hasOutbound;
    // Worded when listed: one per WABA (the exemplar's).
    this.findings.addWorded(
      `RECIPIENT_DISAGREES:${waba ?? ''}`,
      () => ({
        code: 'RECIPIENT_DISAGREES',
        message: isLogged
          ? `WABA ${waba ?? '?'}: the send log and Meta's statuses name different numbers for a message (e.g. ${record.id}, ${what}): rated as the send log says; check the numbers the send log records`
          : `WABA ${waba ?? '?'}: Meta's statuses of one message name different numbers (e.g. ${record.id}, ${what}): the smaller number was kept, whichever came first; check the sources of those events`,
        message_id: record.id,
        ...(waba === undefined ? {} : { waba }),
      }),
      record.id,
    );
  }

  /** Forgets a record rated, retired or dropped, with what was kept of it alone. */
  private forgetRecord(record: MessageRecord): void {
    this.records.delete(record.key);
    if (record.pair?.scopedUserOf !== undefined) record.pair.scopedUserOf.delete(record.id);
    this.noteRecipientDisagrees(record);
    setWaiting(record, false);
    if (this.otherStatusesWithoutWaba.size > 0) this.otherStatusesWithoutWaba.delete(record);
  }

  /** Whether `code` has not been said yet of this message (a finding counts messages, not repeated lines). */
  private isFirstNote(code: FindingCode, waba: string | undefined, id: string): boolean {
    const key = `${code}\u0000${waba ?? ''}\u0000${id}`;
    if (this.notedMessages.has(key)) return false;
    this.notedMessages.add(key);
    return true;
  }

  /**
   * Delivery is the moment Meta reports `delivered`; a read receipt counts only when no `delivered` came
   * (pricing-rules §1), even when its clock says it came first.
   */
  private markDelivered(record: MessageRecord, atMs: number, isRead: boolean): void {
    if (isRead) {
      if (record.deliveredAtMs === Infinity || (record.isDeliveryFromRead && atMs < record.deliveredAtMs)) {
        record.deliveredAtMs = atMs;
        record.isDeliveryFromRead = true;
      }
    } else if (record.isDeliveryFromRead || atMs < record.deliveredAtMs) {
      record.deliveredAtMs = atMs;
      record.isDeliveryFromRead = false;
    }
  }

  /**
   * Attaches a record to its pair once the pair is known, and queues it once it is delivered. `mayMove`: the
   * record's WABA, business number or user may have changed since it was attached (a send log, a merge).
   */
  private place(record: MessageRecord, mayMove: boolean): void {
    // A stream joins a business-scoped id to the number its portfolio gave for it before (a batch joins every
    // pair of the id once all is read, mergeScopedUsers): the number's pair, its window and conversations.
    let scopedUser: string | undefined;
    if (
      this.isStreaming &&
      this.phoneByScopedId.size > 0 &&
      (mayMove || !record.pair) &&
      record.user &&
      record.waba !== undefined
    ) {
      const phone = this.phoneOfScopedUser(record.waba, record.user);
      if (phone !== undefined) {
        scopedUser = record.user;
        setRecordName(record, 'user', phone);
      }
    }
    if (
      record.pair &&
      mayMove &&
      (record.pair.business !== record.business ||
        record.pair.user !== record.user ||
        record.pair.machine.waba !== record.waba)
    ) {
      // A status named another pair (or no WABA) before the sender's log arrived: the log wins. (A stream's
      // message placed by a business-scoped id stays so placed in the pair it joins.)
      const placedBy = this.takeScopedUser(record);
      scopedUser ??= placedBy;
      setWaiting(record, false);
      const index = record.pair.queued.indexOf(record);
      if (index >= 0) record.pair.queued.splice(index, 1);
      this.untieRecord(record);
      record.pair = undefined;
      record.isQueued = false;
    } else if (record.pair?.isSwept) {
      // A failed message kept after its quiet pair was swept (no item, none waiting or queued there): rated in
      // the pair the rest of the input keeps for its number and user, as a batch rates it, not in the
      // forgotten one (it charged twice, or charged what the user's later window made free).
      const placedBy = this.takeScopedUser(record);
      scopedUser ??= placedBy;
      this.untieRecord(record);
      record.pair = undefined;
      record.isWaiting = false;
      record.isQueued = false;
    }
    if (!record.pair) {
      if (record.business === undefined || record.user === undefined || !record.user) return;
      if (record.waba === undefined && !record.hasOutbound) {
        // Statuses alone naming no WABA: its WABA is the one the rest of the input ties the number and user
        // to, known only once the input is read up to the next flush (placeUnplaced), whatever the order.
        if (!record.isUnplaced) {
          record.isUnplaced = true;
          this.unplaced.push(record);
        }
        return;
      }
      record.pair = this.pairFor(record.waba, record.business, record.user);
      if (record.countryHint) mergeCountryHint(record.pair, record.countryHint);
      // Keep the pair's copies of equal strings: the event's own copies then die young (cheaper GC).
      record.business = record.pair.business;
      record.user = record.pair.user;
      if (record.waba === record.pair.machine.waba) record.waba = record.pair.machine.waba;
    }
    const pair = record.pair;
    if (scopedUser !== undefined) (pair.scopedUserOf ??= new Map()).set(record.id, scopedUser);
    if (record.hasOutbound && !record.isTying && !record.isOutboundUntied) {
      this.tie(pair, 1);
      record.isTying = true;
    }
    if (record.deliveredAtMs !== Infinity) {
      setWaiting(record, false);
      if (!record.isQueued) {
        record.isQueued = true;
        pair.queued = appended(pair.queued, record);
        this.dirty.add(pair);
      }
    } else {
      setWaiting(record, record.failedAtMs === Infinity);
    }
  }

  /**
   * The number a business-scoped id `user` stands for in the portfolio of `waba`, as given so far; none for a
   * number (a user written with a digit first: no id is, and no key is built for it).
   */
  private phoneOfScopedUser(waba: string, user: string): string | undefined {
    const first = user.charCodeAt(0);
    if (first >= 48 && first <= 57) return undefined;
    const phone = this.phoneByScopedId.get(this.scopedKey(waba, user));
    return phone === user ? undefined : phone;
  }

  /**
   * The user the record's own lines name: a stream places a message sent to a business-scoped id under the
   * number its portfolio gave for the id (place) and keeps the id in the pair's `scopedUserOf`, so that the
   * smaller of two recipients, or a send log's copy, is judged against the id, as a batch judges it.
   */
  private namedUser(record: MessageRecord): string | undefined {
    return record.pair?.scopedUserOf?.get(record.id) ?? record.user;
  }

  /**
   * The record's lines name `user` now (a send log, the smaller of two): it is no more placed by the
   * business-scoped id it may have been (`place` places it by `user`'s, if `user` is one).
   */
  private renameUser(record: MessageRecord, user: string): void {
    this.takeScopedUser(record);
    setRecordName(record, 'user', user);
  }

  /** The business-scoped id a stream placed the record by, taken from its pair (leaving it, or renamed). */
  private takeScopedUser(record: MessageRecord): string | undefined {
    const scopedUserOf = record.pair?.scopedUserOf;
    const scopedUser = scopedUserOf?.get(record.id);
    if (scopedUser !== undefined) scopedUserOf!.delete(record.id);
    return scopedUser;
  }

  /** A record leaving its pair takes its outbound line's tie along (`PairState.ties`). */
  private untieRecord(record: MessageRecord): void {
    if (!record.isTying || !record.pair) return;
    this.tie(record.pair, -1);
    record.isTying = false;
  }

  /**
   * Meta's newest statement of each fact wins, whatever order the webhooks arrive in; a primary location is
   * kept as a history instead (it changes the charges after it only).
   */
  private applyAccountUpdate(event: AccountUpdateEvent): void {
    const override = this.accountOverrides.get(event.waba) ?? {};
    const isNewer = (fact: string) => {
      const key = `${event.waba}\u0000${fact}`;
      const previous = this.accountFactTimes.get(key);
      if (previous !== undefined && previous > event.atMs) return false;
      this.accountFactTimes.set(key, event.atMs);
      return true;
    };
    if (event.primaryCountry) {
      const base = this.options.accountFor(event.waba).primaryCountryChanges;
      override.primaryCountryChanges = withPrimaryCountryChange(override.primaryCountryChanges ?? base, {
        atMs: event.atMs,
        country: event.primaryCountry,
      });
    }
    if (event.authInternational && isNewer('auth_international'))
      override.authInternational = event.authInternational;
    if (event.volumeTier) this.applyTierStatement(event, event.volumeTier);
    this.accountOverrides.set(event.waba, override);
    this.accountCache.delete(event.waba);
  }

  /**
   * Meta's statement of the tier a portfolio reached. Its region is a market of the table whatever its case
   * and spacing ("india" is India: rate-card.ts `marketNameMatcher`, as for rate cards); a statement that
   * cannot be applied — a region that is no market, or a tier or month the reader would now refuse (events
   * stored before it checked them) — is said in a TIER_STATEMENT_NOT_APPLIED finding, never dropped unsaid.
   */
  private applyTierStatement(
    event: AccountUpdateEvent,
    statement: NonNullable<AccountUpdateEvent['volumeTier']>,
  ): void {
    // Meta words the category in capitals; authentication-international shares the authentication count.
    const word = statement.category.toLowerCase();
    const category = word.startsWith('authentication') ? 'authentication' : word === 'utility' ? word : null;
    if (category === null) return; // marketing is never tiered (docs/decisions.md)
    const { region, effectiveMonth: month } = statement;
    const notApplied = (why: string) =>
      this.findings.add(
        `TIER_STATEMENT_NOT_APPLIED:${event.waba}:${region ?? ''}:${month ?? ''}:${statement.tier}`,
        () => ({
          code: 'TIER_STATEMENT_NOT_APPLIED',
          message: `Meta's volume-tier statement for WABA ${event.waba} (tier ${statement.tier} for ${category}${region === undefined ? '' : ` in "${region}"`}${month === undefined ? '' : ` in ${month}`}) is not applied: ${why}; its portfolio's messages are priced from wameter's own count`,
          waba: event.waba,
          category,
          ...(region === undefined ? {} : { region }),
          ...(month === undefined ? {} : { month }),
          tier: statement.tier,
        }),
        exemplarAt(event.atMs, event.waba),
      );
    if (region === undefined || month === undefined || !isMonth(month)) {
      notApplied('it names no market or no month (YYYY-MM) it is of');
      return;
    }
    const matched = this.marketOfRegion(region);
    if (!('market' in matched)) {
      const could = matched.matches.length > 1 ? ` (it could be ${matched.matches.join(' or ')})` : '';
      notApplied(
        `"${region}" is no market of the market table${could}${didYouMeanMarket(matched.closest)}, so no message is of it`,
      );
      return;
    }
    const key = { portfolio: this.accountFor(event.waba).portfolio, market: matched.market, category, month };
    if (!this.tierStatements.add(key, event.atMs, statement.tier)) {
      notApplied(`its tier "${statement.tier}" is no band FROM:TO to read a count from`);
    }
  }

  /** The market a tier statement's region names, case and spacing aside; as written without a table. */
  private marketOfRegion(region: string): MarketNameMatch {
    const names = this.options.markets.names;
    if (names === undefined) return { market: region };
    this.matchMarketName ??= marketNameMatcher(names);
    return this.matchMarketName(region);
  }

  private addCategoryUpdate(event: TemplateCategoryUpdateEvent): void {
    const key = `${event.waba}|${event.templateName}`;
    const list = this.categoryUpdates.get(key) ?? [];
    // One template of the name: Meta's id, else its language, else the name alone (updates without either).
    const template =
      event.templateId ?? (event.templateLanguage === undefined ? '' : `@${event.templateLanguage}`);
    const update: CategoryUpdate = { atMs: event.atMs, category: event.newCategory, template };
    if (event.previousCategory !== undefined) update.previous = event.previousCategory;
    if (
      !list.some((u) => u.atMs === update.atMs && u.category === update.category && u.template === template)
    ) {
      list.push(update);
      list.sort((a, b) => a.atMs - b.atMs);
    }
    this.categoryUpdates.set(key, list);
  }

  /** Rates every pair's items that happened before `horizonMs`, then prices and emits what became final. */
  private flush(horizonMs: number): void {
    if (horizonMs <= this.horizonMs) return;
    // An inbound's copies naming two numbers tie only the one kept (PairState.ties) before statuses are
    // placed by ties; where business-scoped ids are joined to numbers, after that join as well.
    const isCopiesMerged = !this.isStreaming && this.phoneByScopedId.size === 0;
    if (isCopiesMerged) this.mergeInboundCopiesAcrossPairs();
    this.placeUnplaced(horizonMs);
    if (this.scopedPairsUnplaced.length > 0) this.noteScopedPairsPlaced();
    if (!this.isStreaming) {
      const isJoined = this.mergeScopedUsers();
      if (!isCopiesMerged || isJoined) this.mergeInboundCopiesAcrossPairs();
    }
    if (this.wabasOfNumberAndUser.size > 0) this.noteNumbersOfTwoWabas();
    this.horizonMs = horizonMs;
    // What this flush tells (the trace, the decisions) starts here: its units' priced rules go there too.
    const told =
      this.options.trace !== undefined || this.options.withDecisions === true
        ? { timeline: this.timeline.length, decisions: this.decisions.length }
        : undefined;
    const opened: UnitDraft[] = [];
    // Pairs in a fixed order (number, user, WABA), not the order the input made them dirty in: a finding that
    // names its first case ("first: …") names the same whatever the order of the lines.
    for (const pair of [...this.dirty].sort(comparePairs)) {
      this.advancePair(pair, horizonMs, opened);
      if (pair.inbounds.length === 0 && pair.queued.length === 0) this.dirty.delete(pair);
    }
    sortByOpening(opened);
    const pricedRules = new Map<string, { before: string; after: string }>();
    for (const draft of opened) {
      const before = draft.rule;
      this.pricer.price(draft);
      if (told && draft.rule !== before) {
        pricedRules.set(`${draft.waba}\u0000${draft.id}\u0000${draft.messages[0]}`, {
          before,
          after: draft.rule,
        });
      }
      this.emitQueue.push(draft);
    }
    if (told && pricedRules.size > 0) this.tellPricedRules(told, pricedRules);
    this.emitFinal(horizonMs);
    if (horizonMs !== Infinity && ++this.flushes % SWEEP_EVERY_FLUSHES === 0) this.sweep(horizonMs);
  }

  /**
   * The rule of a unit's opening message, as the timeline and the decisions tell it, is the unit's rule once
   * priced (`UnitPricer.price` adds the allowance or the rate it took: `+FREE_TIER(3/1000)`,
   * `+AUTH_INTERNATIONAL`), as `rate` prints it. A unit is priced in the flush that rated its opening
   * message, so only what this flush told is looked at (`from`: the lengths before it).
   */
  private tellPricedRules(
    from: { timeline: number; decisions: number },
    rules: ReadonlyMap<string, { before: string; after: string }>,
  ): void {
    const priced = (of: { waba: string; unitId?: string; messageId?: string; rule?: string }) => {
      const found = rules.get(`${of.waba}\u0000${of.unitId}\u0000${of.messageId}`);
      return found !== undefined && found.before === of.rule ? found.after : undefined;
    };
    for (let i = from.timeline; i < this.timeline.length; i++) {
      const line = this.timeline[i]!;
      const rule = priced(line);
      if (rule !== undefined) line.rule = rule;
    }
    for (let i = from.decisions; i < this.decisions.length; i++) {
      const decision = this.decisions[i]!;
      const rule = priced(decision);
      if (rule !== undefined) decision.rule = rule;
    }
  }

  /**
   * Places the records of statuses alone that name no WABA: under the WABA of an inbound message of their id
   * (the smallest), else of a tied pair their business number and user have (`PairState.ties`), else a WABA
   * the business number has tied pairs under elsewhere in the input — the smallest in byte order if several,
   * as the stores take it — else under the business number itself with the default account, said by
   * WABA_UNKNOWN.
   * A stream places a record once its first status is behind the horizon: an event that could still tell
   * its WABA (the user's message before it) would be late by then.
   */
  private placeUnplaced(horizonMs: number): void {
    if (this.unplaced.length === 0) return;
    const records: MessageRecord[] = [];
    for (const record of this.unplaced.splice(0)) {
      if (record.sentAtMs >= horizonMs && this.records.get(record.key) === record) this.unplaced.push(record);
      else records.push(record);
    }
    // In a fixed order: placing one record makes pairs the next may find, whatever the order of the lines.
    records.sort((a, b) => compareIds(a.key, b.key));
    const wabaOfInbound = this.wabasOfInboundIds(records);
    for (const record of records) {
      record.isUnplaced = false;
      if (record.pair || record.hasOutbound || record.waba !== undefined) {
        if (!record.pair) this.place(record, false);
        continue;
      }
      if (this.records.get(record.key) !== record) continue; // retired meanwhile
      const business = record.business!;
      let waba = wabaOfInbound?.get(record.id);
      let withUser: string | undefined;
      for (const candidate of waba === undefined ? (this.wabasOfBusiness.get(business)?.keys() ?? []) : []) {
        // The smallest in the stores' byte order (numberOwnerSql, pairOwnerSql), not in UTF-16's.
        if (waba === undefined || isBeforeInBytes(candidate, waba)) waba = candidate;
        if (
          (withUser === undefined || isBeforeInBytes(candidate, withUser)) &&
          ((this.findPair(candidate, business, record.user!)?.ties ?? 0) > 0 ||
            this.sweptPairs.get(business)?.has(`${candidate}\u0000${record.user!}`))
        ) {
          withUser = candidate;
        }
      }
      waba = withUser ?? waba;
      if (waba === undefined) {
        this.findings.add(
          `WABA_UNKNOWN:${business}`,
          () => ({
            code: 'WABA_UNKNOWN',
            message: `statuses of message ${record.id} name business number ${business} but no WABA, and nothing else in the input ties that number to a WABA: rated under "${business}" with the default account (UTC, USD, a portfolio of its own); add the WABA to those status lines, or feed the send log or the inbound webhooks too`,
            message_id: record.id,
            business,
          }),
          exemplarAt(Math.min(record.sentAtMs, record.deliveredAtMs), record.id),
        );
        waba = business;
      }
      record.waba = waba;
      // Its pair ties nothing (PairState.ties): no later status is placed by it, as in the stores.
      this.place(record, false);
    }
  }

  /**
   * For records of statuses alone naming no WABA: the WABA of an inbound message with the same id (the
   * smallest, if several). Meta's ids are unique, so such a status is of that message's WABA — where the
   * stores list it (docs/storage.md) — whatever numbers it names. Only a pair's inbounds not yet rated are
   * searched (a stream forgets the others).
   */
  private wabasOfInboundIds(records: readonly MessageRecord[]): Map<string, string> | undefined {
    const ids = new Set<string>();
    for (const record of records) {
      if (!record.pair && !record.hasOutbound && record.waba === undefined) ids.add(record.id);
    }
    if (ids.size === 0) return undefined;
    const found = new Map<string, string>();
    for (const users of this.pairs.values()) {
      for (const pair of users.values()) {
        const waba = pair.machine.waba;
        if (waba === pair.business) continue; // a pseudo-WABA of statuses alone (WABA_UNKNOWN)
        for (const item of pair.inbounds) {
          if (!ids.has(item.id)) continue;
          const known = found.get(item.id);
          if (known === undefined || isBeforeInBytes(waba, known)) found.set(item.id, waba);
        }
      }
    }
    return found;
  }

  /**
   * Copies of one inbound message (one WABA, one id) that name different business numbers or users are one
   * message, as a store keeps them (mergeCopies): in the pair of the smaller business number and the smaller
   * user, whichever copy came first, with a COPIES_DISAGREE finding naming the fields. Copies in one pair are
   * merged where the pair is rated (mergeInboundCopies). A batch only: a stream may have rated one copy when
   * the other comes (docs/decisions.md).
   */
  private mergeInboundCopiesAcrossPairs(): void {
    /**
     * WABA → id → the pair of its first copy seen (nested: no key string made per inbound); then, for copies
     * in two pairs or more, all their pairs.
     */
    const firstPair = new Map<string, Map<string, PairState>>();
    let split: Map<string, { id: string; pairs: Set<PairState> }> | undefined;
    for (const pair of this.dirty) {
      if (pair.inbounds.length === 0) continue;
      let ofWaba = firstPair.get(pair.machine.waba);
      if (!ofWaba) firstPair.set(pair.machine.waba, (ofWaba = new Map()));
      for (const item of pair.inbounds) {
        const first = ofWaba.get(item.id);
        if (first === undefined) ofWaba.set(item.id, pair);
        else if (first !== pair) {
          split ??= new Map();
          const key = `${pair.machine.waba}\u0000${item.id}`;
          const copies = split.get(key);
          if (copies) copies.pairs.add(pair);
          else split.set(key, { id: item.id, pairs: new Set([first, pair]) });
        }
      }
    }
    if (split === undefined) return;
    for (const { id, pairs } of split.values()) {
      let business: string | undefined;
      let user: string | undefined;
      for (const pair of pairs) {
        if (business === undefined || pair.business < business) business = pair.business;
        if (user === undefined || pair.user < user) user = pair.user;
      }
      const waba = [...pairs][0]!.machine.waba;
      const target = this.pairFor(waba, business!, user!);
      for (const pair of pairs) {
        if (pair === target) continue;
        const moved = pair.inbounds.filter((item) => item.id === id);
        pair.inbounds = pair.inbounds.filter((item) => item.id !== id);
        for (const item of moved) target.inbounds.push(item);
        // A store's merged row ties only the number and user it keeps: the copies' ties move with them.
        this.tie(pair, -moved.length);
        this.tie(target, moved.length);
      }
      this.dirty.add(target);
      const fields: CopyField[] = [];
      if ([...pairs].some((pair) => pair.business !== business)) fields.push('business');
      if ([...pairs].some((pair) => pair.user !== user)) fields.push('user');
      this.noteCopiesDisagree(waba, id, fields);
    }
  }

  /**
   * A batch learns, anywhere in its input, which phone number a business-scoped user id stands for; before
   * rating, the id's messages join the number's (one customer service window, one set of conversations).
   * A stream cannot merge after the fact: there the number only gives the market. Whether any pair joined.
   */
  private mergeScopedUsers(): boolean {
    if (this.phoneByScopedId.size === 0) return false;
    const traced = this.options.trace && this.tracedPhone(this.options.trace.user);
    if (traced !== undefined && this.traceJoinedTo === undefined && traced !== this.options.trace?.user) {
      // The traced id's story is its number's from now on: the number's pairs made before follow it too.
      this.traceJoinedTo = traced;
      this.options.trace?.onJoined?.(traced);
      for (const [business, users] of this.pairs) {
        for (const pair of users.values()) {
          if (pair.user !== traced) continue;
          pair.machine = pair.machine.fork(this.traceFor(pair.machine.waba, business, traced));
        }
      }
    }
    const moved = new Map<PairState, PairState>();
    for (const [business, users] of this.pairs) {
      for (const [key, pair] of users) {
        const phone = this.phoneByScopedId.get(this.scopedKey(pair.machine.waba, pair.user));
        if (phone === undefined || phone === pair.user) continue;
        const target = this.pairFor(pair.machine.waba, business, phone);
        for (const inbound of pair.inbounds) target.inbounds.push(inbound);
        for (const record of pair.queued) target.queued.push(record);
        target.waitingCount += pair.waitingCount;
        const ties = pair.ties;
        this.tie(pair, -ties);
        this.tie(target, ties);
        const countryHint = this.countryHintOf(pair);
        if (countryHint) mergeCountryHint(target, countryHint);
        users.delete(key);
        this.dirty.delete(pair);
        this.dirty.add(target);
        moved.set(pair, target);
      }
    }
    if (moved.size === 0) return false;
    for (const record of this.records.values()) {
      const target = record.pair && moved.get(record.pair);
      if (target) {
        (target.scopedUserOf ??= new Map()).set(record.id, record.pair!.user);
        record.pair = target;
        setRecordName(record, 'user', target.user);
      }
    }
    return true;
  }

  /**
   * The number the traced id stands for: its portfolio's, or of several portfolios that each gave it one
   * (an explain across portfolios), the smallest portfolio's.
   */
  private tracedPhone(scopedId: string): string | undefined {
    let found: [string, string] | undefined;
    for (const [key, phone] of this.phoneByScopedId) {
      const at = key.indexOf('\u0000');
      if (key.slice(at + 1) !== scopedId) continue;
      const portfolio = key.slice(0, at);
      if (found === undefined || portfolio < found[0]) found = [portfolio, phone];
    }
    return found?.[1];
  }

  private advancePair(pair: PairState, horizonMs: number, opened: UnitDraft[]): void {
    const items: PairItem[] = [];
    const rated: MessageRecord[] = [];
    if (pair.inbounds.length > 0) {
      // Copies of one message are merged before the horizon splits them (a stream could rate the one before it
      // without the referral the other has).
      if (pair.inbounds.length > 1) mergeInboundCopies(pair.inbounds);
      if (horizonMs === Infinity) {
        for (const inbound of pair.inbounds) items.push(inbound);
        pair.inbounds = [];
      } else {
        const kept: PairItem[] = [];
        for (const inbound of pair.inbounds) (inbound.atMs < horizonMs ? items : kept).push(inbound);
        pair.inbounds = kept;
      }
    }
    if (pair.queued.length > 0) {
      const kept: MessageRecord[] = [];
      for (const record of pair.queued) {
        if (record.deliveredAtMs < horizonMs) {
          if (this.isStreaming && !record.hasOutbound && !record.hasSendReport) {
            this.forgetReadOnly(record, horizonMs);
            continue;
          }
          const template = this.templateOf(record);
          if (template === undefined) continue;
          if (!record.hasOutbound && isFreeEntryPointEvidence(record)) {
            // Only Meta's webhook tells of this message, and it says the user came through an ad: the ad
            // message itself is not in the input, so it is taken to be just before (a free entry point opens).
            items.push({
              atMs: record.deliveredAtMs,
              id: `${record.id}#ad`,
              hasReferral: true,
              isInferred: true,
            });
          }
          // One literal, its optional words set after (a spread in a literal costs a copy per message).
          const message: DeliveredMessage = {
            id: record.id,
            template,
            isCategoryFromWebhook: !record.hasOutbound,
            sentAtMs: record.sentAtMs,
          };
          if (template === null && !record.hasOutbound && isReferralConversionWord(record)) {
            message.isTemplateUnknown = true;
          }
          if (record.isDeliveryFromRead) message.isDeliveryFromRead = true;
          items.push({ atMs: record.deliveredAtMs, id: record.id, message });
          rated.push(record);
          // A what-if's verdicts are no verdict Meta shared (even under the dates' own era, they may rest on
          // earlier traffic rated under another era's rules): nothing to compare.
          const word = this.options.asOfRules === undefined ? metaCategoryWord(record.pricing) : undefined;
          if (word !== undefined) {
            let words = this.metaWords.get(pair.machine.waba);
            if (!words) this.metaWords.set(pair.machine.waba, (words = new Map()));
            words.set(record.id, { word, deliveredAtMs: record.deliveredAtMs });
          }
          if (record.failedAtMs !== Infinity) {
            // One finding per WABA counting its messages, naming the first delivered (as DELIVERED_BEFORE_SENT).
            this.findings.add(
              `DELIVERED_AND_FAILED:${record.waba}`,
              () => deliveredAndFailedFinding(record.waba, record.id),
              exemplarAt(record.deliveredAtMs, record.id),
            );
          }
          if (record.hasOutbound && record.deliveredAtMs < record.sentAtMs - CLOCK_SKEW_MS) {
            // Seconds of skew between the sender's clock and Meta's are normal; more is a send log written in
            // another time zone than it says, which moves windows, eras and months.
            this.findings.add(
              `DELIVERED_BEFORE_SENT:${record.waba}`,
              () =>
                deliveredBeforeSentFinding(record.waba, record.id, record.sentAtMs - record.deliveredAtMs),
              exemplarAt(record.deliveredAtMs, record.id),
            );
          }
        } else kept.push(record);
      }
      pair.queued = kept;
    }
    if (items.length === 0) return;
    if (items.length > 1) items.sort(comparePairItems);
    const before = opened.length;
    pair.machine.apply(items, opened);
    const outside = pair.machine.takeOutsideWindow();
    if (outside) this.noteOutsideWindow(pair.machine.waba, outside);
    const countryHint = this.countryHintOf(pair);
    if (countryHint) {
      for (let i = before; i < opened.length; i++) opened[i]!.countryHint = countryHint;
    }
    if (pair.scopedUserOf) {
      for (let i = before; i < opened.length; i++) {
        const scopedUser = pair.scopedUserOf.get(opened[i]!.messages[0]!);
        if (scopedUser !== undefined) opened[i]!.scopedUser = scopedUser;
      }
    }
    for (const record of rated) this.retireRated(record, horizonMs);
  }

  /** One finding per WABA, counting the messages (the collector counts each add). */
  private noteOutsideWindow(
    waba: string,
    outside: { count: number; firstId: string; firstAtMs: number },
  ): void {
    const make = () => noWindowInInputFinding(waba, outside.firstId);
    for (let i = 0; i < outside.count; i++)
      this.findings.add(`NO_WINDOW_IN_INPUT:${waba}`, make, exemplarAt(outside.firstAtMs, outside.firstId));
  }

  /** The category that counts: the template's category when it was sent (Meta may recategorise it). */
  private templateOf(record: MessageRecord): TemplateCategory | null | undefined {
    let template = record.template;
    if (template === undefined) {
      template = categoryFromEvidence(record);
      if (template === undefined) {
        const word = evidenceWord(record);
        if (word === undefined) {
          this.findings.add(
            `UNKNOWN_CATEGORY:${record.waba}`,
            () => ({
              code: 'UNKNOWN_CATEGORY',
              message: `WABA ${record.waba ?? '?'}: delivered messages with no outbound line and no pricing in Meta's webhook cannot be rated (first: ${record.id}); feed the send log too`,
              message_id: record.id,
              waba: record.waba,
            }),
            exemplarAt(record.deliveredAtMs, record.id),
          );
        } else {
          this.findings.add(
            `UNKNOWN_CATEGORY:${record.waba}:${word}`,
            () => ({
              code: 'UNKNOWN_CATEGORY',
              message: `WABA ${record.waba ?? '?'}: Meta's webhook gives delivered messages the category "${word}", which wameter does not know, and they have no outbound line: they cannot be rated (first: ${record.id}); feed the send log too`,
              message_id: record.id,
              waba: record.waba,
              category: word,
            }),
            exemplarAt(record.deliveredAtMs, record.id),
          );
        }
        this.stats.unrated += 1;
        this.retireRated(record, this.horizonMs);
        return undefined;
      }
    }
    if (record.templateName && record.waba) {
      const updates = this.categoryUpdates.get(`${record.waba}|${record.templateName}`);
      const categories = categoriesWhenSent(updates ?? [], record.sentAtMs);
      const current = categories.reduce<TemplateCategory | undefined>(
        (kept, category) =>
          kept === undefined ? category : (preferredTemplate(kept, category) ?? undefined),
        undefined,
      );
      if (current !== undefined && current !== template) {
        const logged = template;
        const languages =
          categories.length > 1
            ? `; templates of that name (one per language) were ${categories.join(' and ')} then, and the send log names no language: the costlier is taken`
            : '';
        this.findings.add(
          `TEMPLATE_RECATEGORISED:${record.waba}:${record.templateName}`,
          () => ({
            code: 'TEMPLATE_RECATEGORISED',
            message: `template "${record.templateName}" was ${current} when sent (Meta recategorised it), not ${logged ?? 'a non-template'} as the send log says: rated as ${current}${languages}`,
            template: record.templateName,
            waba: record.waba,
          }),
          exemplarAt(record.sentAtMs, record.id),
        );
        template = current;
      }
      if (template !== null) this.notePreviousCategory(record, updates ?? [], template);
    }
    return template;
  }

  /**
   * Meta's completed change of a template's category names the category it had until then
   * (`previous_category`); where that is not the category a send of the template before the change was rated
   * under (the send log's, or an earlier change's), a finding says so. Nothing is repriced: the change tells
   * what the template was just before it, not since when (docs/decisions.md, (g)).
   */
  private notePreviousCategory(
    record: MessageRecord,
    updates: readonly CategoryUpdate[],
    rated: TemplateCategory,
  ): void {
    const next = nextChangeAfter(updates, record.sentAtMs);
    if (next === undefined || next.previous.includes(rated)) return;
    const previous = next.previous[0]!;
    const waba = record.waba!;
    const templateName = record.templateName!;
    this.findings.add(
      `PREVIOUS_CATEGORY_DISAGREES:${waba}:${templateName}:${rated}:${previous}:${next.atMs}`,
      () => ({
        code: 'PREVIOUS_CATEGORY_DISAGREES',
        message: `WABA ${waba}: sends of template "${templateName}" (first: ${record.id}, sent ${formatInstant(record.sentAtMs)}) were rated ${rated}, but Meta's template_category_update of ${formatInstant(next.atMs)} says the template was ${previous} until then (previous_category): the send log's category, or a change of category wameter was not fed, is wrong for some of them; they stay rated ${rated}: check the send log and feed Meta's template_category_update webhooks, then re-rate`,
        waba,
        template: templateName,
        category: rated,
        previous_category: previous,
        changed_at: formatInstant(next.atMs),
        message_id: record.id,
      }),
      exemplarAt(record.sentAtMs, record.id),
    );
  }

  private retireRated(record: MessageRecord, horizonMs: number): void {
    if (!this.isStreaming) {
      record.isRated = true; // a batch forgets nothing before the end: one flag is cheaper than a delete
      this.noteRecipientDisagrees(record);
      return;
    }
    this.forgetRecord(record);
    if (horizonMs !== Infinity) this.tombstones.add(record.key, record.deliveredAtMs);
  }

  private emitFinal(horizonMs: number): void {
    const queue = this.emitQueue;
    while (this.emitHead < queue.length) {
      const draft = queue[this.emitHead]!;
      const endsAtMs = draft.closedAtMs ?? draft.expiresAtMs ?? draft.openedAtMs;
      if (draft.unit === 'conversation' && endsAtMs > horizonMs) break;
      if (this.metaWords.size > 0) this.noteMetaDisagrees(draft);
      this.sink.unit(toUnit(draft));
      this.stats.units += 1;
      queue[this.emitHead++] = undefined as unknown as UnitDraft;
    }
    if (this.emitHead > 10_000 && this.emitHead * 2 > queue.length) {
      queue.splice(0, this.emitHead);
      this.emitHead = 0;
    }
  }

  /**
   * Compares Meta's category of each message of a final unit with the unit's (its category, authentication-
   * international included, is known once priced, and a conversation's messages once it has ended): one
   * META_DISAGREES per WABA × (wameter's category, Meta's), counting messages and naming the first delivered.
   * wameter keeps its own verdict (pricing-rules §9); `reconcile` lists the messages.
   */
  private noteMetaDisagrees(draft: UnitDraft): void {
    const words = this.metaWords.get(draft.waba);
    if (words === undefined) return;
    for (const id of draft.messages) {
      const said = words.get(id);
      if (said === undefined) continue;
      words.delete(id);
      if (words.size === 0) this.metaWords.delete(draft.waba);
      addMetaDisagrees(this.findings, draft, id, said.word, said.deliveredAtMs);
    }
  }

  /** Forgets what can no longer change: quiet pairs, expired pending messages, old tombstones. */
  private sweep(horizonMs: number): void {
    for (const record of this.records.values()) {
      if (record.pair && record.deliveredAtMs !== Infinity) continue; // queued: rated at its time
      // A failed message too may still be delivered (batch rates it so, DELIVERED_AND_FAILED): kept as long.
      const lastChanceMs = record.sentAtMs + PENDING_TTL_MS;
      if (!record.pair && record.sentAtMs < horizonMs) {
        this.retire(record, horizonMs);
      } else if (lastChanceMs < horizonMs) {
        this.retire(record, horizonMs);
      }
    }
    for (const [business, users] of this.pairs) {
      for (const [user, pair] of users) {
        if (
          pair.inbounds.length === 0 &&
          pair.queued.length === 0 &&
          pair.waitingCount === 0 &&
          pair.machine.isQuiescentAt(horizonMs)
        ) {
          if (pair.ties > 0 && (this.wabasOfBusiness.get(business)?.size ?? 0) > 1) {
            let swept = this.sweptPairs.get(business);
            if (!swept) this.sweptPairs.set(business, (swept = new Set()));
            swept.add(`${pair.machine.waba}\u0000${pair.user}`);
          }
          users.delete(user);
          this.dirty.delete(pair);
          pair.isSwept = true;
        }
      }
      if (users.size === 0) this.pairs.delete(business);
    }
    this.tombstones.forgetBefore(horizonMs);
  }

  /**
   * A stream's message known only from read receipts (no outbound line, no sent, delivered or failed status):
   * most often a message read long after its delivery, which the stream rated then and has forgotten since
   * (its ids are kept 7 days); charging the read would charge it twice, at the wrong time. Not charged, and
   * counted in a finding per WABA; a batch, which sees the whole input, charges it at its read (§1).
   */
  private forgetReadOnly(record: MessageRecord, horizonMs: number): void {
    this.forgetRecord(record);
    if (horizonMs !== Infinity) this.tombstones.add(record.key, horizonMs);
    const waba = record.waba;
    this.findings.add(
      `READ_RECEIPT_ONLY:${waba ?? ''}`,
      () => ({
        code: 'READ_RECEIPT_ONLY',
        message: `${waba === undefined ? '' : `WABA ${waba}: `}messages known only from read receipts (first: ${record.id}) were not charged: in a stream a read receipt with no send, delivered or failed report before it is taken for a late read of a message rated earlier (a stream remembers rated ids for 7 days); rate without --stream to charge them at their read`,
        message_id: record.id,
        ...(waba === undefined ? {} : { waba }),
      }),
      exemplarAt(record.deliveredAtMs, record.id),
    );
  }

  /** A message that will never be rated: failed, still pending, or impossible to place. */
  private retire(record: MessageRecord, horizonMs: number): void {
    this.forgetRecord(record);
    if (this.isStreaming && horizonMs !== Infinity) this.tombstones.add(record.key, horizonMs);
    // One finding per WABA (when the statuses name it: that client's to see) and per kind: a delivered message
    // left unrated, or one with statuses alone (neither charged nor pending).
    const waba = record.waba;
    if (record.deliveredAtMs !== Infinity && !record.pair) {
      this.stats.unrated += 1;
      this.findings.add(
        `STATUS_WITHOUT_USER:delivered:${waba ?? ''}`,
        () => ({
          code: 'STATUS_WITHOUT_USER',
          message: `delivered message ${record.id} has no outbound line and its statuses name ${unnamedParties(record)}: feed the send log or Meta's full webhook`,
          message_id: record.id,
          ...(waba === undefined ? {} : { waba }),
        }),
        exemplarAt(record.deliveredAtMs, record.id),
      );
      return;
    }
    if (record.failedAtMs !== Infinity || record.deliveredAtMs !== Infinity) return;
    if (!record.pair) {
      this.findings.add(
        `STATUS_WITHOUT_USER:statuses:${waba ?? ''}`,
        () => ({
          code: 'STATUS_WITHOUT_USER',
          message: `message ${record.id} has only statuses, and they name ${unnamedParties(record)}: feed the send log or Meta's full webhook`,
          message_id: record.id,
          ...(waba === undefined ? {} : { waba }),
        }),
        exemplarAt(Math.min(record.sentAtMs, record.failedAtMs), record.id),
      );
      return;
    }
    this.stats.pending += 1;
    this.sink.pending({
      id: record.id,
      waba: record.waba ?? record.business ?? '',
      business: record.business ?? '',
      user: record.user ?? '',
      sentAtMs: record.sentAtMs,
    });
  }
}

// The words of findings the columnar rater (src/core/columnar) says too: one text for both engines.

export function accountNotListedFinding(waba: string): Finding {
  return {
    code: 'ACCOUNT_NOT_LISTED',
    message: `WABA ${waba} is not in the accounts file: it is rated with the defaults (time zone UTC, currency USD, a portfolio of its own); if those are not its settings, add it to the accounts file (--accounts; for the service, WAMETER_ACCOUNTS or "accounts") — a mistyped WABA id there leaves the real one on the defaults`,
    waba,
  };
}

export function deliveredAndFailedFinding(waba: string | undefined, id: string): Finding {
  return {
    code: 'DELIVERED_AND_FAILED',
    message: `WABA ${waba ?? '?'}: messages were reported both delivered and failed (first: ${id}): rated as delivered`,
    message_id: id,
    waba,
  };
}

/** `gapMs`: how long before its send (by the send log) the message was delivered. */
export function deliveredBeforeSentFinding(waba: string | undefined, id: string, gapMs: number): Finding {
  const gapMinutes = (gapMs / 60_000).toFixed(0); // words, not money
  return {
    code: 'DELIVERED_BEFORE_SENT',
    message: `WABA ${waba ?? '?'}: messages were delivered before the send log says they were sent (first: ${id}, by ${gapMinutes} min); rated at their delivery — check the time zone of the send log's "at"`,
    message_id: id,
    waba,
  };
}

export function noWindowInInputFinding(waba: string, firstId: string): Finding {
  return {
    code: 'NO_WINDOW_IN_INPUT',
    message: `WABA ${waba}: non-template messages were delivered with no customer service window open in the input (first: ${firstId}); Meta sends those only inside one, so the users' messages are probably missing — feed the inbound webhooks too: without them, utility templates inside windows are charged here but free at Meta (from 2025-07-01)`,
    waba,
    message_id: firstId,
  };
}

/**
 * Copies of one inbound message among a pair's waiting ones are one message (mergeCopies): the earliest
 * instant, with the ad referral any copy tells of (a CRM's copy may lack it). Keeps one item per id, in place.
 */
function mergeInboundCopies(inbounds: PairItem[]): void {
  // A pair holds a few messages at a time: compare them pairwise (no Map) unless there are many.
  if (inbounds.length <= 16) {
    let kept = 0;
    for (let i = 0; i < inbounds.length; i++) {
      const item = inbounds[i]!;
      let earlier: PairItem | undefined;
      for (let j = 0; j < kept; j++) {
        if (inbounds[j]!.id === item.id) {
          earlier = inbounds[j];
          break;
        }
      }
      if (earlier) {
        if (item.hasReferral) earlier.hasReferral = true;
        if (item.atMs < earlier.atMs) earlier.atMs = item.atMs;
        continue;
      }
      inbounds[kept++] = item;
    }
    inbounds.length = kept;
    return;
  }
  const first = new Map<string, PairItem>();
  let kept = 0;
  for (const item of inbounds) {
    const earlier = first.get(item.id);
    if (earlier) {
      if (item.hasReferral) earlier.hasReferral = true;
      if (item.atMs < earlier.atMs) earlier.atMs = item.atMs;
      continue;
    }
    first.set(item.id, item);
    inbounds[kept++] = item;
  }
  inbounds.length = kept;
}

/** A record that nothing has been learnt for yet (just made by recordFor). */
function isUntouched(record: MessageRecord): boolean {
  return (
    !record.hasOutbound &&
    record.sentAtMs === Infinity &&
    record.deliveredAtMs === Infinity &&
    record.failedAtMs === Infinity &&
    record.pair === undefined &&
    !record.isUnplaced &&
    record.pricing === undefined &&
    record.conversation === undefined
  );
}

/** `MessageRecord.statusNamed`: a status named the record's present user / business number. */
const NAMED_USER = 1;
const NAMED_BUSINESS = 2;

/** Keeps what a status named (`MessageRecord.statusNamed`, `otherNames`) once the record has taken it in. */
function noteStatusNames(
  record: MessageRecord,
  business: string | undefined,
  user: string | undefined,
): void {
  if (user) {
    if (user === record.user) record.statusNamed |= NAMED_USER;
    else addOtherName(record, 'users', user);
  }
  if (business) {
    if (business === record.business) record.statusNamed |= NAMED_BUSINESS;
    else addOtherName(record, 'businesses', business);
  }
}

function addOtherName(record: MessageRecord, kind: 'users' | 'businesses', name: string): void {
  const names = (record.otherNames ??= { users: [], businesses: [] })[kind];
  if (!names.includes(name)) names.push(name);
}

/**
 * A record's user or business number changed (a send log, a copy, a join): a status that named the one it had
 * still did (`otherNames`).
 */
function setRecordName(record: MessageRecord, field: 'user' | 'business', value: string): void {
  const old = record[field];
  if (value === old) return;
  const bit = field === 'user' ? NAMED_USER : NAMED_BUSINESS;
  if ((record.statusNamed & bit) !== 0) {
    addOtherName(record, field === 'user' ? 'users' : 'businesses', old!);
    record.statusNamed &= ~bit;
  }
  record[field] = value;
}

function isPhoneNumber(user: string): boolean {
  return /^\+?\d+$/.test(user);
}

/**
 * `list` with `item` added at its end: while it is short, a new array of its exact length; else `list` itself.
 * A first push makes room for 17 items, and most pairs hold one or two inbounds or queued records until a
 * batch's end (the 1M bench file's 49,308 pairs: 9.5 MB of such rooms for 1.5 MB of items).
 */
function appended<T>(list: T[], item: T): T[] {
  if (list.length === 0) return [item];
  if (list.length === 1) return [list[0]!, item];
  list.push(item);
  return list;
}

function pairKey(waba: string, user: string): string {
  return `${waba}\u0000${user}`;
}

function setWaiting(record: MessageRecord, isWaiting: boolean): void {
  if (record.isWaiting === isWaiting || !record.pair) return;
  record.isWaiting = isWaiting;
  record.pair.waitingCount += isWaiting ? 1 : -1;
}

/** The public unit of a priced draft (also the columnar rater's: src/core/columnar). */
export function toUnit(draft: UnitDraft): BillableUnit {
  const unit: BillableUnit = {
    id: draft.id,
    unit: draft.unit,
    pricingModel: draft.pricingModel,
    era: draft.era,
    waba: draft.waba,
    business: draft.business,
    user: draft.user,
    country: draft.country,
    market: draft.market,
    category: draft.category,
    type: draft.type,
    openedAtMs: draft.openedAtMs,
    expiresAtMs: draft.expiresAtMs,
    messages: draft.messages,
    rateMicros: draft.rateMicros,
    amountMicros: draft.amountMicros,
    currency: draft.currency,
    rateCard: draft.rateCard,
    rule: draft.rule,
  };
  if (draft.closedAtMs !== undefined) unit.closedAtMs = draft.closedAtMs;
  if (draft.tier) unit.tier = draft.tier;
  if (draft.isMarketInferred) unit.isMarketInferred = true;
  if (draft.isCategoryFromWebhook) unit.isCategoryFromWebhook = true;
  return unit;
}

/** Meta's category words, lower case. A Map: a word such as `constructor` must not find a property of Object. */
const WEBHOOK_CATEGORIES: ReadonlyMap<string, TemplateCategory | null> = new Map<
  string,
  TemplateCategory | null
>([
  ['marketing', 'marketing'],
  ['marketing_lite', 'marketing'],
  ['utility', 'utility'],
  ['authentication', 'authentication'],
  ['authentication_international', 'authentication'],
  ['authentication-international', 'authentication'],
  ['service', null],
  ['user_initiated', null],
  ['customer_initiated', null],
  ['referral_conversion', null],
  // CBP-2022 only told business-initiated (a template) from user-initiated.
  ['business_initiated', 'marketing'],
]);

function categoryFromEvidence(record: MessageRecord): TemplateCategory | null | undefined {
  const word = evidenceWord(record);
  return word === undefined ? undefined : WEBHOOK_CATEGORIES.get(word.toLowerCase());
}

/** The category word of Meta's webhook for the message: `pricing.category`, else the conversation's origin. */
function evidenceWord(record: MessageRecord): string | undefined {
  const word: unknown = record.pricing?.category ?? record.conversation?.origin?.type;
  return typeof word === 'string' ? word : undefined; // the reader keeps only strings; stored data may be older
}

/**
 * Meta's webhook says the message was free as part of a free entry point (category `referral_conversion`,
 * or type `free_entry_point` under per-message pricing): the user came through an ad or a Page CTA.
 */
function isFreeEntryPointEvidence(record: MessageRecord): boolean {
  return isReferralConversionWord(record) || record.pricing?.type === 'free_entry_point';
}

/** Meta's category word is `referral_conversion`: free in a free entry point, template or not. */
function isReferralConversionWord(record: MessageRecord): boolean {
  return evidenceWord(record)?.toLowerCase() === 'referral_conversion';
}

/**
 * Meta's word on a message's status, in wameter's words (contract §4 `category`), to compare with the
 * category of the unit wameter rated the message in (META_DISAGREES).
 */
export interface MetaCategoryWord {
  /** `pricing.category` as reconcile normalises it; any message of a free entry point `referral_conversion`. */
  category: UnitCategory;
  /** Meta says free inside the customer service window: `type: free_customer_service`, or category `service`. */
  isFreeCustomerService: boolean;
  /** `CBP` or `PMP`, when Meta names it. */
  pricingModel: string | undefined;
  /**
   * Meta's `pricing.type` when it is a word of charge (`regular`) or of a free message (`free_customer_service`,
   * `free_entry_point`, `free_group_customer_service`); none when absent or another word.
   */
  type?: string;
}

/** Meta's pricing types and whether each charges the message. */
const META_TYPE_CHARGES: Readonly<Record<string, boolean>> = {
  regular: true,
  free_customer_service: false,
  free_entry_point: false,
  free_group_customer_service: false,
};

const KNOWN_CATEGORIES: ReadonlySet<string> = new Set(UNIT_CATEGORIES);

/**
 * Meta's category of a message from its status's `pricing` (the one the engine keeps: EVIDENCE_RANK), with
 * reconcile's normalising (`authentication-international` is `authentication_international`, `marketing_lite`
 * is `marketing`, `customer_initiated` is `user_initiated`). Under per-message pricing a free entry point's
 * messages keep their template's category with `type: free_entry_point`: they are `referral_conversion`, as
 * wameter names such units (and as the engine reads that type: isFreeEntryPointEvidence). `undefined`, compared
 * with nothing: no pricing, no category word, or a word wameter does not know (group messages, `unknown`).
 */
export function metaCategoryWord(pricing: MetaPricingEvidence | undefined): MetaCategoryWord | undefined {
  // Stored data may be older than the reader's checks: only strings are words.
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const category = text(pricing?.category);
  if (category === undefined) return undefined;
  const type = normaliseMetaType(text(pricing?.type));
  const word = type === 'free_entry_point' ? 'referral_conversion' : normaliseMetaCategory(category);
  if (word === undefined || !KNOWN_CATEGORIES.has(word)) return undefined;
  const said: MetaCategoryWord = {
    category: word as UnitCategory,
    isFreeCustomerService: type === 'free_customer_service' || word === 'service',
    pricingModel: text(pricing?.pricing_model)?.toUpperCase(),
  };
  if (type !== undefined && Object.hasOwn(META_TYPE_CHARGES, type)) said.type = type;
  return said;
}

/** CBP-2022's two categories; `referral_conversion` is a word of every era since. */
function vocabularyOf(category: UnitCategory): 'cbp-2022' | 'any' | 'categories' {
  if (category === 'business_initiated' || category === 'user_initiated') return 'cbp-2022';
  return category === 'referral_conversion' ? 'any' : 'categories';
}

/**
 * Meta's category when it differs from the one of the unit wameter rated the message in — a conversation's
 * under CBP (Meta's status names the conversation's category), the message's own under per-message pricing —
 * where the two are comparable; `undefined` when they agree or are not comparable:
 * - another pricing model (a message at a switch of eras, or a day cut in another time zone): reconcile's
 *   ERA_BOUNDARY and TIME_ZONE_DAY_EDGE, not a category;
 * - CBP-2022's words (business-initiated, user-initiated) against the later categories, either way;
 * - free inside the customer service window at both, per message (a non-template, a utility template in the
 *   window): whatever Meta calls such a message, it costs nothing.
 * `authentication` and `authentication_international` differ (the accounts file decides: §5.4).
 */
export function metaDisagreesWith(
  unit: Pick<BillableUnit, 'unit' | 'pricingModel' | 'category' | 'type'>,
  meta: MetaCategoryWord,
): UnitCategory | undefined {
  if (meta.category === unit.category) return undefined;
  if (!isComparable(unit, meta)) return undefined;
  if (unit.unit === 'message' && unit.type === 'free_customer_service' && meta.isFreeCustomerService) {
    return undefined;
  }
  return meta.category;
}

/** Another pricing model, or CBP-2022's words against later ones: reconcile's causes, not a verdict's. */
function isComparable(
  unit: Pick<BillableUnit, 'pricingModel' | 'category'>,
  meta: MetaCategoryWord,
): boolean {
  if (meta.pricingModel !== undefined && meta.pricingModel !== unit.pricingModel) return false;
  const [theirs, ours] = [vocabularyOf(meta.category), vocabularyOf(unit.category)];
  return theirs === 'any' || ours === 'any' || theirs === ours;
}

/**
 * Meta's pricing type when it says the message is free where wameter charged it, or charged (`regular`)
 * where wameter holds it free; `undefined` when they agree or are not comparable: Meta gave no type word
 * (or one wameter does not know), the two are not comparable (`metaDisagreesWith`), or wameter's unit is free
 * under the free tier (an allowance Meta's status has no type for).
 */
export function metaChargeDisagreesWith(
  unit: Pick<BillableUnit, 'pricingModel' | 'category' | 'type'>,
  meta: MetaCategoryWord,
): string | undefined {
  if (meta.type === undefined || unit.type === 'free_tier' || !isComparable(unit, meta)) return undefined;
  return META_TYPE_CHARGES[meta.type] === (unit.type === 'regular') ? undefined : meta.type;
}

/**
 * A META_DISAGREES case: Meta's word on message `id` of a priced unit (its category final: authentication-
 * international is known once priced), delivered at `deliveredAtMs`, where it differs from the unit's — one
 * finding per WABA × (wameter's category, Meta's) and types, counting messages, naming the first delivered.
 * The Rater's words, also the columnar rater's (one text for both engines).
 */
export function addMetaDisagrees(
  findings: FindingCollector,
  draft: UnitDraft,
  id: string,
  word: MetaCategoryWord,
  deliveredAtMs: number,
): void {
  const theirs = metaDisagreesWith(draft, word);
  const theirType = metaChargeDisagreesWith(draft, word);
  if (theirs === undefined && theirType === undefined) return;
  const { waba, category: ours } = draft;
  const disagreement: MetaDisagreement = { waba, ours, theirs: theirs ?? word.category };
  if (theirType !== undefined) disagreement.types = { ours: draft.type, theirs: theirType };
  const typeKey = theirType === undefined ? '' : `\u0000${draft.type}\u0000${theirType}`;
  findings.add(
    `META_DISAGREES:${waba}\u0000${ours}\u0000${disagreement.theirs}${typeKey}`,
    () => metaDisagreesFinding(disagreement, id),
    exemplarAt(deliveredAtMs, id),
  );
}

/** wameter's verdict on a message and Meta's (category; pricing type when one side charges and the other not). */
interface MetaDisagreement {
  waba: string;
  ours: UnitCategory;
  theirs: UnitCategory;
  /** Both types, when Meta's says free and wameter charged, or the reverse. */
  types?: { ours: PricingType; theirs: string };
}

function metaDisagreesFinding(disagreement: MetaDisagreement, id: string): Finding {
  const { waba, ours, theirs, types } = disagreement;
  const isAuthInternational =
    (ours === 'authentication' && theirs === 'authentication_international') ||
    (ours === 'authentication_international' && theirs === 'authentication');
  const eligibility = isAuthInternational
    ? `; the authentication-international rate is applied only when the accounts file's "auth_international" eligibility of WABA ${waba} ("start", per-country "exceptions") covers the recipient's country on that date and its "primary_country" is another country (pricing-rules §5.4): if Meta's word is right, set them as Meta Business Manager shows`
    : '';
  const advice = `wameter keeps its own verdict (pricing-rules §9): run \`wameter reconcile\` on the same input for each such message and what to check${eligibility}`;
  if (types === undefined) {
    return {
      code: 'META_DISAGREES',
      message: `WABA ${waba}: Meta's status webhooks give the category ${theirs} to messages that wameter rated as ${ours} (first: ${id}); ${advice}`,
      waba,
      category: ours,
      meta_category: theirs,
      message_id: id,
    };
  }
  const categories = theirs === ours ? ours : `${theirs} (wameter: ${ours})`;
  const verdicts =
    types.ours === 'regular'
      ? `Meta does not charge ${categories} messages (pricing type ${types.theirs}) that wameter charged (first: ${id}): if the users' messages that opened their customer service windows (or the ad clicks) are missing from the input, feed them; otherwise`
      : `Meta charges ${categories} messages (pricing type ${types.theirs}) that wameter holds free (${types.ours}) (first: ${id}):`;
  return {
    code: 'META_DISAGREES',
    message: `WABA ${waba}: ${verdicts} ${advice}`,
    waba,
    category: ours,
    meta_category: theirs,
    type: types.ours,
    meta_type: types.theirs,
    message_id: id,
  };
}

/** One of Meta's template_category_update statements, for one template of a name (`template`: its id). */
interface CategoryUpdate {
  atMs: number;
  category: string;
  template: string;
  /** Meta's `previous_category`: the category the template had until this change. */
  previous?: string;
}

/**
 * The first change after `sentAtMs` of a name's template and the categories Meta says it had until then, each
 * once, costliest first; undefined when no such change names one, or when changes tell of several templates
 * of the name (one per language: the send log names none, so which one was sent is not known).
 */
function nextChangeAfter(
  updates: readonly CategoryUpdate[],
  sentAtMs: number,
): { atMs: number; previous: TemplateCategory[] } | undefined {
  if (updates.length === 0 || updates.some((u) => u.template !== updates[0]!.template)) return undefined;
  let atMs = Infinity;
  for (const update of updates) if (update.atMs > sentAtMs && update.atMs < atMs) atMs = update.atMs;
  const previous = new Set<TemplateCategory>();
  for (const update of updates) {
    if (update.atMs === atMs && update.previous !== undefined) {
      const category = update.previous.toLowerCase();
      if (isTemplateCategory(category)) previous.add(category);
    }
  }
  if (previous.size === 0) return undefined;
  return {
    atMs,
    previous: [...previous].sort((a, b) => (a === b ? 0 : preferredTemplate(a, b) === a ? -1 : 1)),
  };
}

/**
 * The categories the templates of one name had at `sentAtMs`, costliest first, each once: per template, its
 * latest update by then (two at one instant that disagree: the costlier). A send log names the template, not
 * its language, so several may remain; the caller takes the costliest. Any order of the updates gives the same.
 */
function categoriesWhenSent(updates: readonly CategoryUpdate[], sentAtMs: number): TemplateCategory[] {
  const latest = new Map<string, { atMs: number; category: TemplateCategory }>();
  for (const update of updates) {
    if (update.atMs > sentAtMs || !isTemplateCategory(update.category)) continue;
    const kept = latest.get(update.template);
    if (kept === undefined || update.atMs > kept.atMs) {
      latest.set(update.template, { atMs: update.atMs, category: update.category });
    } else if (update.atMs === kept.atMs) {
      kept.category = preferredTemplate(kept.category, update.category) ?? kept.category;
    }
  }
  const categories = [...new Set([...latest.values()].map((u) => u.category))];
  return categories.sort((a, b) => (a === b ? 0 : preferredTemplate(a, b) === a ? -1 : 1));
}

/** What a message's statuses left out, of the user and the business number, in words (STATUS_WITHOUT_USER). */
function unnamedParties(record: { user: string | undefined; business: string | undefined }): string {
  if (record.user === undefined && record.business === undefined)
    return 'neither the user nor the business number';
  return record.user === undefined ? 'no user' : 'no business number';
}

/** Units in the order they are priced: by opening, then id; units equal in both keep their order. */
function compareOpenings(a: UnitDraft, b: UnitDraft): number {
  return a.openedAtMs - b.openedAtMs || compareIds(a.id, b.id);
}

/**
 * Sorts `drafts` as a stable sort with `compareOpenings` does. A comparator reads two drafts scattered in
 * memory per comparison (0.16 s of CPU for the 1M bench file's 234,423 units, 0.09 s this way); instead
 * each opening and index is one exact number, (openedAtMs − earliest) × n + index, sorted natively; then the
 * drafts of one instant are sorted by id. Any other openings (not whole milliseconds, or too far apart to keep
 * the product exact) take the comparator.
 */
function sortByOpening(drafts: UnitDraft[]): void {
  const n = drafts.length;
  if (n < 2) return;
  let earliest = Infinity;
  let latest = -Infinity;
  for (let i = 0; i < n; i++) {
    const atMs = drafts[i]!.openedAtMs;
    if (!Number.isSafeInteger(atMs)) {
      drafts.sort(compareOpenings);
      return;
    }
    if (atMs < earliest) earliest = atMs;
    if (atMs > latest) latest = atMs;
  }
  if ((latest - earliest + 1) * n > Number.MAX_SAFE_INTEGER) {
    drafts.sort(compareOpenings);
    return;
  }
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = (drafts[i]!.openedAtMs - earliest) * n + i;
  keys.sort();
  const unsorted = drafts.slice();
  let runStart = 0;
  let runAt = -1;
  for (let k = 0; k < n; k++) {
    const index = keys[k]! % n;
    const at = keys[k]! - index; // the opening's part of the key: equal for drafts of one instant
    drafts[k] = unsorted[index]!;
    if (at !== runAt) {
      if (k - runStart > 1) sortRunById(drafts, runStart, k);
      runStart = k;
      runAt = at;
    }
  }
  if (n - runStart > 1) sortRunById(drafts, runStart, n);
}

/** Sorts `drafts[from, to)`, of one opening instant and in their first order, by id (a stable sort). */
function sortRunById(drafts: UnitDraft[], from: number, to: number): void {
  const run = drafts.slice(from, to).sort((a, b) => compareIds(a.id, b.id));
  for (let i = 0; i < run.length; i++) drafts[from + i] = run[i]!;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function formatDuration(ms: number): string {
  return ms % DAY_MS === 0 ? `${ms / DAY_MS} d` : ms % HOUR_MS === 0 ? `${ms / HOUR_MS} h` : `${ms / 1000} s`;
}
