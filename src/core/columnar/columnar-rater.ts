// A batch rater for one class of input — every delivery under PMP-2025, send logs and Meta's statuses that
// agree on the recipient (their pricing, whatever it says) — giving exactly what the Rater (rate-events.ts)
// gives for it, faster: keys interned to integers, state in typed arrays, one global time sort and one walk.
// Any other input it bails out of, having called its sink nothing, so that the Rater rates that input
// instead. It must never give an answer the Rater would not.

import { canonicalUser } from '../phone.js';
import { localDate } from '../calendar.js';
import { CLOCK_SKEW_MS, FEP_ANSWER_MS, SERVICE_WINDOW_MS, eraOn, fepWindowMs } from '../eras.js';
import { preferredEvidence } from '../event-copies.js';
import type {
  Account,
  CoreEvent,
  InboundEvent,
  MetaPricingEvidence,
  OutboundEvent,
  StatusEvent,
  TemplateCategory,
} from '../events.js';
import type { UnitDraft } from '../pair-machine.js';
import type { MarketResolution, RateCard } from '../pricing-context.js';
import { exemplarAt, FindingCollector, TierStatements, UnitPricer } from '../price-unit.js';
import {
  accountNotListedFinding,
  addMetaDisagrees,
  deliveredAndFailedFinding,
  deliveredBeforeSentFinding,
  EVIDENCE_RANK,
  metaCategoryWord,
  noWindowInInputFinding,
  toUnit,
  type MetaCategoryWord,
  type RaterStats,
  type RaterSummary,
  type RatingOptions,
  type RatingSink,
} from '../rate-events.js';
import type { BillableUnit, PricingType, RateCategory, TierPosition, UnitCategory } from '../units.js';
import { ByteKeyTable } from './byte-key-table.js';

/** What `finish` gives: the Rater's summary, or why this input is not one the columnar rater rates. */
export type ColumnarOutcome = RaterSummary | { bail: string };

/** No key (a status naming no WABA, an outbound line without a template name). */
export const NO_KEY = -1;

/** A send log's template, as the integer API takes it: 0 a non-template, then the three categories. */
export const TEMPLATE_CODES: readonly (TemplateCategory | null)[] = [
  null,
  'marketing',
  'utility',
  'authentication',
];
const NON_TEMPLATE = 0;
const MARKETING = 1;
const UTILITY = 2;
const AUTHENTICATION = 3;

/** Meta's status words the columnar rater takes, as the integer API codes them; any other word bails. */
export const STATUS_WORD_CODES: ReadonlyMap<string, number> = new Map([
  ['sent', 0],
  ['delivered', 1],
  ['read', 2],
  ['failed', 3],
  ['played', 4],
]);
const SENT = 0;
const DELIVERED = 1;
const READ = 2;
const FAILED = 3;
const PLAYED = 4;
/** The Rater's weight of a status's pricing evidence (EVIDENCE_RANK), by STATUS_WORD_CODES code. */
const EVIDENCE_RANK_OF_WORD: readonly number[] = [...STATUS_WORD_CODES].map(
  ([word]) => EVIDENCE_RANK.get(word) ?? 0,
);

/** Per id: what its lines told (bits of `idFlags`). */
const HAS_OUTBOUND = 1;
const HAS_STATUS = 2;
/** A status named its WABA, business number and user (`statusWaba`…). */
const HAS_STATUS_NAMES = 4;
const HAS_INBOUND = 8;
/**
 * A delivery, a read (or played) and a failure were told of (`deliveredAtMs`, `readAtMs`, `failedAtMs` hold
 * the earliest): bits, not an Infinity in columns made for them, so that columns made at full length need no
 * filling (a typed array's zeros are the OS's; filling 445k ids' columns touched ≈ 40 MB first). Every other
 * column of ids is read only where its line's bit (HAS_OUTBOUND…) is set.
 */
const HAS_DELIVERED = 16;
const HAS_READ = 32;
const HAS_FAILED = 64;

/** The only era this rater decides (pair-machine.ts's per-message rules as in force from 2025-07-01). */
const ERA = 'PMP-2025';
/**
 * Deliveries before this instant are before 2025-07-01 in every time zone (none is ahead of UTC by more than
 * 14 h), from the second one after 2026-10-01 in every zone (none behind by more than 12 h): under another
 * era. Seen as the lines are read, they give the input up at once (the walk would, once all is read).
 */
const SURELY_BEFORE_MS = Date.UTC(2025, 5, 30);
const SURELY_REPORTED_FROM_MS = Date.UTC(2026, 9, 2);

/**
 * Every field of the three message events, as `add` weighs it (reads it, or bails when it is set). A field
 * added to one of these events is a type error here until `add` weighs it too: an unread field could change
 * what the Rater gives (the fast path must then bail, or do as the Rater does).
 */
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const WEIGHED_FIELDS: [
  SameKeys<
    keyof InboundEvent,
    | 'kind'
    | 'atMs'
    | 'waba'
    | 'business'
    | 'user'
    | 'id'
    | 'hasReferral'
    | 'userCountryHint'
    | 'scopedUserId'
    | 'copiesDisagreeOn'
    | 'isUntied'
  >,
  SameKeys<
    keyof OutboundEvent,
    | 'kind'
    | 'atMs'
    | 'waba'
    | 'business'
    | 'user'
    | 'id'
    | 'template'
    | 'templateName'
    | 'deliveredAtMs'
    | 'isFailed'
    | 'copiesDisagreeOn'
    | 'isUntied'
  >,
  SameKeys<
    keyof StatusEvent,
    | 'kind'
    | 'atMs'
    | 'id'
    | 'status'
    | 'waba'
    | 'business'
    | 'user'
    | 'userCountryHint'
    | 'scopedUserId'
    | 'pricing'
    | 'conversation'
    | 'recipientType'
    | 'copiesDisagreeOn'
    | 'namesOfCopies'
    | 'isUntied'
  >,
] = [true, true, true];
void WEIGHED_FIELDS;

/**
 * What a caller knows of the input before reading it: `bytes`, its size (the files' sizes). The ids' table
 * and columns are then made for about as many ids as that much input holds (one per BYTES_PER_ID bytes, at
 * most MAX_PRESIZED_IDS), not grown from 1,024 by doubling (each time copied and filled); beyond, they grow
 * as without a hint. A hint changes no result, only how often the columns grow.
 */
export interface ColumnarSizeHint {
  bytes?: number;
}

/**
 * Input bytes per message id, a floor for the files wameter reads: the bench's 1M-line file (webhook bodies and
 * send logs) holds one id per 480 bytes; a send log alone, one per 150 to 250 (its columns then grow once or
 * twice from the hint's size, instead of nine times).
 */
export const BYTES_PER_ID = 384;
/** The most ids a hint reserves room for (83 MiB of columns, 72 MiB of the ids' table: 2^21 slots): 2^20. */
export const MAX_PRESIZED_IDS = 1 << 20;

/** How many ids a hint presizes for: 0 (no presizing) without a size. */
export function presizedIds(hint: ColumnarSizeHint): number {
  const bytes = hint.bytes;
  if (bytes === undefined || !(bytes > 0)) return 0;
  return Math.min(MAX_PRESIZED_IDS, Math.floor(bytes / BYTES_PER_ID));
}

export class ColumnarRater {
  // Keys given as strings (`add`) and as UTF-8 bytes (a byte reader, `intern`) share one integer space.
  readonly ids: ByteKeyTable;
  /** Users canonical (phone.ts `canonicalUser`): one user written two ways is one user. */
  readonly users = new ByteKeyTable();
  readonly businesses = new ByteKeyTable();
  readonly wabas = new ByteKeyTable();
  readonly templateNames = new ByteKeyTable();
  /** Users as written, given as bytes (`userOfBytes`), and each one's index in `users` once known. */
  private readonly writtenUsers = new ByteKeyTable();
  private canonicalOfWritten = new Int32Array(0);

  private bailReason: string | undefined;
  private isFinished = false;
  private events = 0;
  private duplicates = 0;

  // Per id (messages and inbound messages share the table; their columns are apart), grown by doubling; an
  // entry is read only where its bit of `idFlags` says it was written (its zero means nothing).
  private capacity = 0;
  private idFlags = new Uint8Array(0);
  private outboundWaba = new Int32Array(0);
  private outboundBusiness = new Int32Array(0);
  private outboundUser = new Int32Array(0);
  private template = new Int8Array(0);
  private templateName = new Int32Array(0);
  private sentAtMs = new Float64Array(0);
  /** The earliest `delivered` (or a send log's delivery), `read` / `played` and `failed`: HAS_DELIVERED… */
  private deliveredAtMs = new Float64Array(0);
  private readAtMs = new Float64Array(0);
  private failedAtMs = new Float64Array(0);
  private statusWaba = new Int32Array(0);
  private statusBusiness = new Int32Array(0);
  private statusUser = new Int32Array(0);
  private inboundWaba = new Int32Array(0);
  private inboundBusiness = new Int32Array(0);
  private inboundUser = new Int32Array(0);
  private inboundAtMs = new Float64Array(0);
  private inboundReferral = new Uint8Array(0);
  /** Meta's pricing of a message, as the Rater keeps it (`record.pricing`); empty while no status has any. */
  private readonly evidence = new PricingEvidence();

  private readonly accounts = new Map<string, Account>();

  constructor(
    private readonly options: RatingOptions,
    private readonly sink: RatingSink,
    hint: ColumnarSizeHint = {},
  ) {
    const expected = presizedIds(hint);
    // The table doubles when half full: room for `expected` keys without growing.
    this.ids = new ByteKeyTable(expected > 512 ? { initialSlots: nextPowerOfTwo(expected * 2) } : {});
    if (expected > 1024) this.ensureId(expected - 1);
    if (
      options.asOfRules !== undefined ||
      options.withDecisions === true ||
      options.trace !== undefined ||
      options.maxLatenessMs !== undefined
    ) {
      this.bailReason = 'not a plain batch';
    }
  }

  /** Why the input is not rated here (then nothing more is kept), or undefined. */
  get bailedBecause(): string | undefined {
    return this.bailReason;
  }

  /** Gives the input up to the Rater: the first reason is kept. */
  bail(reason: string): void {
    this.bailReason ??= reason;
  }

  /**
   * The index in `users` of a user given as the UTF-8 bytes `bytes[start, end)` as written: its canonical
   * form's, as `add` interns it (each way of writing a user is made canonical once, at its first sight).
   */
  userOfBytes(bytes: Uint8Array, start: number, end: number): number {
    const length = end - start;
    // Only a user of 12 bytes starting 55 or of 13 starting 521 may be written otherwise than canonically
    // (`canonicalUser`'s two patterns); any other is its own canonical form, and its bytes are its key in
    // `users`: no text decoded, no second table asked.
    if (
      !(length === 12 && bytes[start] === 0x35 && bytes[start + 1] === 0x35) &&
      !(length === 13 && bytes[start] === 0x35 && bytes[start + 1] === 0x32 && bytes[start + 2] === 0x31)
    ) {
      return this.users.intern(bytes, start, end);
    }
    const written = this.writtenUsers.intern(bytes, start, end);
    if (written >= this.canonicalOfWritten.length) {
      this.canonicalOfWritten = grown(this.canonicalOfWritten, Math.max(1024, written * 2), NO_KEY);
    }
    let user = this.canonicalOfWritten[written]!;
    if (user === NO_KEY) {
      user = this.users.internString(canonicalUser(this.writtenUsers.text(written)));
      this.canonicalOfWritten[written] = user;
    }
    return user;
  }

  /** A core event, as the readers make it: its keys interned, then the integer API. */
  add(event: CoreEvent): void {
    if (this.isFinished) throw new Error('ColumnarRater.add after finish');
    if (this.bailReason !== undefined) return;
    try {
      this.addEvent(event);
    } catch (error) {
      // A key that has no UTF-8 (a lone surrogate) cannot be interned: the Rater rates it.
      if (error instanceof RangeError) this.bail('key without UTF-8');
      else throw error;
    }
  }

  private addEvent(event: CoreEvent): void {
    switch (event.kind) {
      case 'inbound': {
        if (event.userCountryHint !== undefined || event.scopedUserId !== undefined) {
          this.bail('country hint or business-scoped id');
          return;
        }
        if (event.copiesDisagreeOn !== undefined || event.isUntied !== undefined) {
          this.bail("a store's merged copies");
          return;
        }
        if (!event.waba || !event.business || !event.user || !event.id) {
          this.bail('empty key');
          return;
        }
        this.addInbound(
          this.wabas.internString(event.waba),
          this.businesses.internString(event.business),
          this.users.internString(canonicalUser(event.user)),
          this.ids.internString(event.id),
          event.atMs,
          event.hasReferral ? true : false,
        );
        return;
      }
      case 'outbound': {
        if (event.copiesDisagreeOn !== undefined || event.isUntied !== undefined) {
          this.bail("a store's merged copies");
          return;
        }
        if (!event.waba || !event.business || !event.user || !event.id) {
          this.bail('empty key');
          return;
        }
        const template = TEMPLATE_CODES.indexOf(event.template);
        if (template < 0) {
          this.bail('unknown template category');
          return;
        }
        this.addOutbound(
          this.wabas.internString(event.waba),
          this.businesses.internString(event.business),
          this.users.internString(canonicalUser(event.user)),
          this.ids.internString(event.id),
          event.atMs,
          template,
          event.templateName === undefined ? NO_KEY : this.templateNames.internString(event.templateName),
          event.deliveredAtMs ?? Infinity,
          event.isFailed ? true : false,
        );
        return;
      }
      case 'status': {
        // `pricing` is kept (addStatus); `conversation` is read as nothing: in a batch the Rater reads it
        // only for a message without a send log (its category, an inferred ad click), and the walk gives up
        // any status without one ('statuses without a send log'), as it does `pricing` there.
        if (
          event.recipientType !== undefined ||
          event.userCountryHint !== undefined ||
          event.scopedUserId !== undefined
        ) {
          this.bail('group, country hint or business-scoped id');
          return;
        }
        if (
          event.namesOfCopies !== undefined ||
          event.copiesDisagreeOn !== undefined ||
          event.isUntied !== undefined
        ) {
          this.bail("a store's merged copies");
          return;
        }
        const word = STATUS_WORD_CODES.get(event.status);
        if (word === undefined) {
          this.bail('status word');
          return;
        }
        if (!event.id || event.waba === '' || event.business === '' || event.user === '') {
          this.bail('empty key');
          return;
        }
        this.addStatus(
          this.ids.internString(event.id),
          word,
          event.atMs,
          event.waba === undefined ? NO_KEY : this.wabas.internString(event.waba),
          event.business === undefined ? NO_KEY : this.businesses.internString(event.business),
          event.user === undefined ? NO_KEY : this.users.internString(canonicalUser(event.user)),
          event.pricing,
        );
        return;
      }
      case 'account_update':
        this.bail('account update');
        return;
      case 'template_category_update':
        this.bail('template category update');
        return;
    }
  }

  /**
   * A send log's line (contract §1 `outbound`), its keys interned (non-empty; the user canonical: phone.ts
   * `canonicalUser`). `template`: a TEMPLATE_CODES index; `deliveredAtMs` Infinity when the log has none.
   */
  addOutbound(
    waba: number,
    business: number,
    user: number,
    id: number,
    atMs: number,
    template: number,
    templateName: number,
    deliveredAtMs: number,
    isFailed: boolean,
  ): void {
    if (this.bailReason !== undefined) return;
    this.events += 1;
    if (!isInstant(atMs) || (deliveredAtMs !== Infinity && !isInstant(deliveredAtMs))) {
      this.bail('instant not a whole millisecond');
      return;
    }
    if (deliveredAtMs !== Infinity && this.isSurelyOfAnotherEra(deliveredAtMs)) return;
    this.ensureId(id);
    const flags = this.idFlags[id]!;
    if ((flags & HAS_OUTBOUND) !== 0) {
      // A copy of the send log: the Rater merges copies that agree (the earliest send); others say so.
      this.duplicates += 1;
      if (this.outboundWaba[id] !== waba) {
        this.bail('message of two WABAs');
        return;
      }
      if (
        this.template[id] !== template ||
        this.outboundBusiness[id] !== business ||
        this.outboundUser[id] !== user
      ) {
        this.bail('copies disagree');
        return;
      }
      if (templateName !== NO_KEY) {
        const known = this.templateName[id]!;
        if (known === NO_KEY) this.templateName[id] = templateName;
        else if (known !== templateName) {
          this.bail('copies disagree');
          return;
        }
      }
      if (atMs < this.sentAtMs[id]!) this.sentAtMs[id] = atMs;
    } else {
      this.idFlags[id] = flags | HAS_OUTBOUND;
      this.outboundWaba[id] = waba;
      this.outboundBusiness[id] = business;
      this.outboundUser[id] = user;
      this.template[id] = template;
      this.templateName[id] = templateName;
      this.sentAtMs[id] = atMs;
    }
    if (isFailed) this.keepEarliest(this.failedAtMs, id, HAS_FAILED, atMs);
    if (deliveredAtMs !== Infinity) this.keepEarliest(this.deliveredAtMs, id, HAS_DELIVERED, deliveredAtMs);
  }

  /** `column[id]` the earliest of the instants told with the bit `told` (`atMs` the first: the bit unset). */
  private keepEarliest(column: Float64Array, id: number, told: number, atMs: number): void {
    const flags = this.idFlags[id]!;
    if ((flags & told) === 0) {
      this.idFlags[id] = flags | told;
      column[id] = atMs;
    } else if (atMs < column[id]!) column[id] = atMs;
  }

  /** A user's message (contract §1 `inbound`), its keys interned as `addOutbound`'s. */
  addInbound(
    waba: number,
    business: number,
    user: number,
    id: number,
    atMs: number,
    hasReferral: boolean,
  ): void {
    if (this.bailReason !== undefined) return;
    this.events += 1;
    if (!isInstant(atMs)) {
      this.bail('instant not a whole millisecond');
      return;
    }
    this.ensureId(id);
    const flags = this.idFlags[id]!;
    if ((flags & HAS_INBOUND) !== 0) {
      // Copies of one user's message in one pair: the earliest instant, an ad referral any copy tells of.
      if (
        this.inboundWaba[id] !== waba ||
        this.inboundBusiness[id] !== business ||
        this.inboundUser[id] !== user
      ) {
        this.bail('inbound copies name two pairs');
        return;
      }
      if (atMs < this.inboundAtMs[id]!) this.inboundAtMs[id] = atMs;
      if (hasReferral) this.inboundReferral[id] = 1;
      return;
    }
    this.idFlags[id] = flags | HAS_INBOUND;
    this.inboundWaba[id] = waba;
    this.inboundBusiness[id] = business;
    this.inboundUser[id] = user;
    this.inboundAtMs[id] = atMs;
    this.inboundReferral[id] = hasReferral ? 1 : 0;
  }

  /**
   * A status of a business message: `word` a STATUS_WORD_CODES code; `waba`, `business` and `user` all three
   * (Meta's webhook) or none (a send log's bare line, NO_KEY); `pricing` Meta's, when the status carries it.
   */
  addStatus(
    id: number,
    word: number,
    atMs: number,
    waba: number,
    business: number,
    user: number,
    pricing?: MetaPricingEvidence,
  ): void {
    if (this.bailReason !== undefined) return;
    this.events += 1;
    if (!isInstant(atMs)) {
      this.bail('instant not a whole millisecond');
      return;
    }
    if ((waba === NO_KEY) !== (business === NO_KEY) || (waba === NO_KEY) !== (user === NO_KEY)) {
      this.bail('status naming part of its recipient');
      return;
    }
    if (word !== FAILED && word !== SENT && this.isSurelyOfAnotherEra(atMs)) return;
    this.ensureId(id);
    const flags = this.idFlags[id]!;
    if (waba !== NO_KEY) {
      if ((flags & HAS_STATUS_NAMES) === 0) {
        this.idFlags[id] = flags | HAS_STATUS | HAS_STATUS_NAMES;
        this.statusWaba[id] = waba;
        this.statusBusiness[id] = business;
        this.statusUser[id] = user;
      } else if (
        this.statusWaba[id] !== waba ||
        this.statusBusiness[id] !== business ||
        this.statusUser[id] !== user
      ) {
        this.bail('statuses name two recipients');
        return;
      }
    } else this.idFlags[id] = flags | HAS_STATUS;
    if (pricing !== undefined) this.evidence.keep(id, EVIDENCE_RANK_OF_WORD[word]!, pricing);
    if (word === DELIVERED) this.keepEarliest(this.deliveredAtMs, id, HAS_DELIVERED, atMs);
    else if (word === READ || word === PLAYED) this.keepEarliest(this.readAtMs, id, HAS_READ, atMs);
    else if (word === FAILED) this.keepEarliest(this.failedAtMs, id, HAS_FAILED, atMs);
  }

  /**
   * Rates everything and gives the sink every unit, then every pending message, as the Rater's `finish` does;
   * or, for input outside the class, gives the sink nothing and says why.
   */
  finish(): ColumnarOutcome {
    if (this.isFinished) throw new Error('ColumnarRater.finish called twice');
    this.isFinished = true;
    if (this.bailReason !== undefined) return { bail: this.bailReason };
    const rated = new ColumnarWalk(this).rate();
    if ('bail' in rated) return rated;
    const { units, pending, findings } = rated;
    for (let i = 0; i < units.count; i++) this.sink.unit(units.unit(i));
    for (const message of pending) this.sink.pending(message);
    const stats: RaterStats = {
      events: this.events,
      duplicates: this.duplicates,
      late: 0,
      units: units.count,
      pending: pending.length,
      unrated: 0,
    };
    return { findings: findings.list(), decisions: [], timeline: [], stats };
  }

  /** How many ids the columns hold before they grow (tests: a hint's presizing). */
  get idCapacity(): number {
    return this.capacity;
  }

  /** The columns of ids, for the walk (read only there; not for callers). */
  columns() {
    return {
      idFlags: this.idFlags,
      outboundWaba: this.outboundWaba,
      outboundBusiness: this.outboundBusiness,
      outboundUser: this.outboundUser,
      template: this.template,
      sentAtMs: this.sentAtMs,
      deliveredAtMs: this.deliveredAtMs,
      readAtMs: this.readAtMs,
      failedAtMs: this.failedAtMs,
      statusWaba: this.statusWaba,
      statusBusiness: this.statusBusiness,
      statusUser: this.statusUser,
      inboundWaba: this.inboundWaba,
      inboundBusiness: this.inboundBusiness,
      inboundUser: this.inboundUser,
      inboundAtMs: this.inboundAtMs,
      inboundReferral: this.inboundReferral,
      evidence: this.evidence,
    };
  }

  /** The options it was made with, for the walk. */
  get ratingOptions(): RatingOptions {
    return this.options;
  }

  /** The WABA's account, as the Rater's `accountFor` gives it (no account update is in this class). */
  accountFor(waba: string): Account {
    let account = this.accounts.get(waba);
    if (account === undefined) {
      account = { ...this.options.accountFor(waba) };
      this.accounts.set(waba, account);
    }
    return account;
  }

  /** A delivery at `atMs` is under another era than PMP-2025 whatever its WABA's zone: gives the input up. */
  private isSurelyOfAnotherEra(atMs: number): boolean {
    if (atMs < SURELY_BEFORE_MS) this.bail('era before PMP-2025');
    else if (atMs >= SURELY_REPORTED_FROM_MS && (this.options.isReportedRulesEnabled ?? true)) {
      this.bail('era PMP-2026-10');
    }
    return this.bailReason !== undefined;
  }

  private ensureId(id: number): void {
    if (id < this.capacity) return;
    const capacity = Math.max(1024, this.capacity * 2, id + 1);
    this.idFlags = grown(this.idFlags, capacity);
    this.outboundWaba = grown(this.outboundWaba, capacity);
    this.outboundBusiness = grown(this.outboundBusiness, capacity);
    this.outboundUser = grown(this.outboundUser, capacity);
    this.template = grown(this.template, capacity);
    this.templateName = grown(this.templateName, capacity);
    this.sentAtMs = grown(this.sentAtMs, capacity);
    this.deliveredAtMs = grown(this.deliveredAtMs, capacity);
    this.readAtMs = grown(this.readAtMs, capacity);
    this.failedAtMs = grown(this.failedAtMs, capacity);
    this.statusWaba = grown(this.statusWaba, capacity);
    this.statusBusiness = grown(this.statusBusiness, capacity);
    this.statusUser = grown(this.statusUser, capacity);
    this.inboundWaba = grown(this.inboundWaba, capacity);
    this.inboundBusiness = grown(this.inboundBusiness, capacity);
    this.inboundUser = grown(this.inboundUser, capacity);
    this.inboundAtMs = grown(this.inboundAtMs, capacity);
    this.inboundReferral = grown(this.inboundReferral, capacity);
    this.capacity = capacity;
  }
}

type Typed = Uint8Array | Int8Array | Int32Array | Float64Array;

/** `array` copied into one of `capacity` entries, the new ones `fill` (0: as made, untouched). */
function grown<T extends Typed>(array: T, capacity: number, fill = 0): T {
  const copy = new (array.constructor as new (length: number) => T)(capacity);
  copy.set(array as never);
  if (fill !== 0) copy.fill(fill, array.length);
  return copy;
}

/**
 * Meta's pricing per message id, as the Rater keeps it (applyStatus): the one of the status of the highest
 * EVIDENCE_RANK that carries one; of two at one rank, preferredEvidence's (whichever came first).
 */
class PricingEvidence {
  private rank = new Uint8Array(0);
  /** Per id, 1 + its index in `kept` (0: none); the objects kept dense, in the order their ids first had one. */
  private slot = new Int32Array(0);
  private readonly kept: MetaPricingEvidence[] = [];

  /** No status carried pricing. */
  get isEmpty(): boolean {
    return this.kept.length === 0;
  }

  keep(id: number, rank: number, pricing: MetaPricingEvidence): void {
    if (id >= this.slot.length) {
      const capacity = Math.max(1024, this.slot.length * 2, id + 1);
      this.rank = grown(this.rank, capacity, 0);
      this.slot = grown(this.slot, capacity, 0);
    }
    const slot = this.slot[id]!;
    if (slot === 0) {
      this.kept.push(pricing);
      this.slot[id] = this.kept.length;
      this.rank[id] = rank;
      return;
    }
    const kept = this.rank[id]!;
    if (rank < kept) return;
    this.kept[slot - 1] = rank > kept ? pricing : preferredEvidence(this.kept[slot - 1], pricing);
    this.rank[id] = rank;
  }

  of(id: number): MetaPricingEvidence | undefined {
    const slot = id < this.slot.length ? this.slot[id]! : 0;
    return slot === 0 ? undefined : this.kept[slot - 1];
  }
}

/** The least power of two >= n (n >= 1). */
function nextPowerOfTwo(n: number): number {
  let power = 1;
  while (power < n) power *= 2;
  return power;
}

/** An instant the Rater's sort and this one's agree on: a whole millisecond (the readers' instants are). */
function isInstant(atMs: number): boolean {
  return Number.isSafeInteger(atMs);
}

/** What the walk rated: the priced units in the Rater's order, the pending messages in its order, the findings. */
interface RatedInput {
  units: PricedUnits;
  pending: { id: string; waba: string; business: string; user: string; sentAtMs: number }[];
  findings: FindingCollector;
}

/**
 * The batch's rating, once every line is read: pairs (business number × user under one WABA) made, every
 * delivery and inbound message sorted by (instant, inbound first, id) — each pair's items in the order
 * PairMachine takes them — and one walk deciding each delivery as PairMachine.decide does under PMP-2025;
 * then the drafts priced by the engine's own UnitPricer in that order, which is the Rater's (opening, id).
 */
class ColumnarWalk {
  private readonly findings = new FindingCollector();
  private pairCount = 0;
  private pairWaba = new Int32Array(1024);
  private pairBusiness = new Int32Array(1024);
  private pairUser = new Int32Array(1024);
  /** The next pair of the same user (a chain per user; few users have more than one business number). */
  private pairNext = new Int32Array(1024);
  private readonly pairOfUser: Int32Array;
  private readonly wabaOfBusiness: Int32Array;
  private readonly isWabaSeen: Uint8Array;

  constructor(private readonly rater: ColumnarRater) {
    this.pairOfUser = new Int32Array(rater.users.size).fill(NO_KEY);
    this.wabaOfBusiness = new Int32Array(rater.businesses.size).fill(NO_KEY);
    this.isWabaSeen = new Uint8Array(rater.wabas.size);
  }

  rate(): RatedInput | { bail: string } {
    const rater = this.rater;
    const c = rater.columns();
    const idCount = rater.ids.size;
    const messagePair = new Int32Array(idCount).fill(NO_KEY);
    const inboundPair = new Int32Array(idCount).fill(NO_KEY);
    // Items: deliveries (kind 1) and inbound messages (kind 0), by id.
    const itemId = new Int32Array(idCount * 2);
    const itemAtMs = new Float64Array(idCount * 2);
    const itemKind = new Uint8Array(idCount * 2);
    let items = 0;
    const pendingIds: number[] = [];
    for (let id = 0; id < idCount; id++) {
      const flags = c.idFlags[id]!;
      if ((flags & (HAS_OUTBOUND | HAS_STATUS)) !== 0) {
        if ((flags & HAS_OUTBOUND) === 0) return { bail: 'statuses without a send log' };
        const waba = c.outboundWaba[id]!;
        const business = c.outboundBusiness[id]!;
        const user = c.outboundUser[id]!;
        if (
          (flags & HAS_STATUS_NAMES) !== 0 &&
          (c.statusWaba[id] !== waba || c.statusBusiness[id] !== business || c.statusUser[id] !== user)
        ) {
          return { bail: 'statuses name another recipient than the send log' };
        }
        const pair = this.pairOf(waba, business, user);
        if (pair === NO_KEY) return { bail: 'business number of two WABAs' };
        messagePair[id] = pair;
        if ((flags & (HAS_DELIVERED | HAS_READ)) !== 0) {
          itemId[items] = id;
          itemAtMs[items] = (flags & HAS_DELIVERED) !== 0 ? c.deliveredAtMs[id]! : c.readAtMs[id]!;
          itemKind[items] = 1;
          items += 1;
        } else if ((flags & HAS_FAILED) === 0) pendingIds.push(id);
      }
      if ((flags & HAS_INBOUND) !== 0) {
        const pair = this.pairOf(c.inboundWaba[id]!, c.inboundBusiness[id]!, c.inboundUser[id]!);
        if (pair === NO_KEY) return { bail: 'business number of two WABAs' };
        inboundPair[id] = pair;
        itemId[items] = id;
        itemAtMs[items] = c.inboundAtMs[id]!;
        itemKind[items] = 0;
        items += 1;
      }
    }
    const listed = rater.ratingOptions.listedWabas;
    if (listed !== undefined && listed.size > 0) {
      for (let waba = 0; waba < this.isWabaSeen.length; waba++) {
        const text = rater.wabas.text(waba);
        if (this.isWabaSeen[waba] === 1 && !listed.has(text)) {
          this.findings.add(`ACCOUNT_NOT_LISTED:${text}`, () => accountNotListedFinding(text));
        }
      }
    }

    const order = this.timeOrder(itemId, itemAtMs, itemKind, items);
    const units = this.walk(order, itemId, itemAtMs, itemKind, messagePair, inboundPair);
    if ('bail' in units) return units;

    // Pending: sent, neither delivered nor failed; in the Rater's order (send, then id).
    const ids = rater.ids;
    pendingIds.sort((a, b) => c.sentAtMs[a]! - c.sentAtMs[b]! || compareIds(ids.text(a), ids.text(b)));
    const pending = pendingIds.map((id) => {
      const pair = messagePair[id]!;
      return {
        id: ids.text(id),
        waba: rater.wabas.text(this.pairWaba[pair]!),
        business: rater.businesses.text(this.pairBusiness[pair]!),
        user: rater.users.text(this.pairUser[pair]!),
        sentAtMs: c.sentAtMs[id]!,
      };
    });
    return { units, pending, findings: this.findings };
  }

  /**
   * Item indices by (instant, inbound before delivery, id in UTF-16 order): one exact number per item,
   * ((instant − earliest) × 2 + kind) × n + index, sorted natively, then each run of one instant and kind by
   * id; a comparator where the numbers would not be exact.
   */
  private timeOrder(itemId: Int32Array, itemAtMs: Float64Array, itemKind: Uint8Array, n: number): Int32Array {
    const ids = this.rater.ids;
    const order = new Int32Array(n);
    if (n === 0) return order;
    let earliest = Infinity;
    let latest = -Infinity;
    for (let i = 0; i < n; i++) {
      const atMs = itemAtMs[i]!;
      if (atMs < earliest) earliest = atMs;
      if (atMs > latest) latest = atMs;
    }
    const byId = (a: number, b: number) => compareIds(ids.text(itemId[a]!), ids.text(itemId[b]!));
    if (((latest - earliest) * 2 + 2) * n > Number.MAX_SAFE_INTEGER) {
      const all = Array.from({ length: n }, (_, i) => i);
      all.sort((a, b) => itemAtMs[a]! - itemAtMs[b]! || itemKind[a]! - itemKind[b]! || byId(a, b));
      order.set(all);
      return order;
    }
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) keys[i] = ((itemAtMs[i]! - earliest) * 2 + itemKind[i]!) * n + i;
    keys.sort();
    let runStart = 0;
    let runKey = -1;
    for (let k = 0; k < n; k++) {
      const index = keys[k]! % n;
      const key = keys[k]! - index;
      order[k] = index;
      if (key !== runKey) {
        if (k - runStart > 1) sortRun(order, runStart, k, byId);
        runStart = k;
        runKey = key;
      }
    }
    if (n - runStart > 1) sortRun(order, runStart, n, byId);
    return order;
  }

  /** PairMachine.decide under PMP-2025 for every delivery, in global time order; each pair's state in columns. */
  private walk(
    order: Int32Array,
    itemId: Int32Array,
    itemAtMs: Float64Array,
    itemKind: Uint8Array,
    messagePair: Int32Array,
    inboundPair: Int32Array,
  ): PricedUnits | { bail: string } {
    const rater = this.rater;
    const c = rater.columns();
    const options = rater.ratingOptions;
    const isReportedRulesEnabled = options.isReportedRulesEnabled ?? true;
    const pairs = this.pairCount;
    const lastInboundMs = new Float64Array(pairs).fill(-Infinity);
    const previousInboundMs = new Float64Array(pairs).fill(-Infinity);
    const referralAtMs = new Float64Array(pairs).fill(-Infinity);
    const isReferralAnswered = new Uint8Array(pairs).fill(1);
    const fepExpiresAtMs = new Float64Array(pairs).fill(-Infinity);
    const outsideCount = new Int32Array(pairs);
    const outsideFirst = new Int32Array(pairs);
    const outsideFirstAtMs = new Float64Array(pairs);
    const timeZones = Array.from(
      { length: rater.wabas.size },
      (_, waba) => rater.accountFor(rater.wabas.text(waba)).timeZone,
    );
    const units = new PricedUnits(
      rater,
      this.pairWaba,
      this.pairBusiness,
      this.pairUser,
      this.findings,
      order.length,
    );
    const hasEvidence = !c.evidence.isEmpty;
    for (let k = 0; k < order.length; k++) {
      const item = order[k]!;
      const id = itemId[item]!;
      const atMs = itemAtMs[item]!;
      if (itemKind[item] === 0) {
        const pair = inboundPair[id]!;
        previousInboundMs[pair] = lastInboundMs[pair]!;
        lastInboundMs[pair] = atMs;
        if (c.inboundReferral[id] === 1) {
          referralAtMs[pair] = atMs;
          isReferralAnswered[pair] = 0;
        }
        continue;
      }
      const pair = messagePair[id]!;
      const waba = this.pairWaba[pair]!;
      const date = localDate(atMs, timeZones[waba]!);
      const era = eraOn(date, isReportedRulesEnabled);
      if (era !== ERA) return { bail: `era ${era}` };
      const sentAtMs = c.sentAtMs[id]!;
      const template = c.template[id]!;
      const last = lastInboundMs[pair]!;
      const isInServiceWindow = atMs < last + SERVICE_WINDOW_MS;
      const windowOfSendMs = last <= sentAtMs ? last : previousInboundMs[pair]!;
      const isSentInServiceWindow =
        windowOfSendMs <= sentAtMs && sentAtMs < windowOfSendMs + SERVICE_WINDOW_MS;
      const isAnswer = sentAtMs >= referralAtMs[pair]! - CLOCK_SKEW_MS;
      const isFepEligible =
        isAnswer && isReferralAnswered[pair] === 0 && atMs < referralAtMs[pair]! + FEP_ANSWER_MS;
      if (isAnswer) isReferralAnswered[pair] = 1;
      const isFepOpen = atMs < fepExpiresAtMs[pair]!;
      if (template === NON_TEMPLATE && !isInServiceWindow && !isSentInServiceWindow) {
        if (outsideCount[pair] === 0) {
          outsideFirst[pair] = id;
          outsideFirstAtMs[pair] = atMs;
        }
        outsideCount[pair] = outsideCount[pair]! + 1;
      }
      const wabaText = rater.wabas.text(waba);
      const idText = rater.ids.text(id);
      const rateCategory: RateCategory = template === NON_TEMPLATE ? 'service' : TEMPLATE_CODES[template]!;
      let category: UnitCategory;
      let type: PricingType;
      let rule: string;
      let unitRateCategory: RateCategory;
      let isTiered = false;
      const isFreeEntryPoint = isFepOpen || isFepEligible;
      if (isFreeEntryPoint) {
        category = 'referral_conversion';
        type = 'free_entry_point';
        unitRateCategory = rateCategory;
        if (isFepEligible) {
          rule = 'FEP_OPEN';
          fepExpiresAtMs[pair] = atMs + fepWindowMs(date, ERA);
        } else rule = 'FEP_WINDOW';
      } else if (template === MARKETING || template === AUTHENTICATION) {
        category = TEMPLATE_CODES[template]!;
        type = 'regular';
        unitRateCategory = category;
        rule = 'PMP_CHARGED';
        isTiered = template === AUTHENTICATION;
      } else if (template === UTILITY) {
        category = 'utility';
        type = isInServiceWindow ? 'free_customer_service' : 'regular';
        unitRateCategory = 'utility';
        rule = isInServiceWindow ? 'PMP_UTILITY_IN_CSW' : 'PMP_CHARGED';
        isTiered = !isInServiceWindow;
      } else {
        category = 'service';
        type = 'free_customer_service';
        unitRateCategory = 'service';
        rule = 'PMP_SERVICE_FREE';
      }
      const draft = units.draft(pair, id, wabaText, idText, atMs, date, category, type);
      draft.rateCategory = unitRateCategory;
      draft.rule = rule;
      draft.isTiered = isTiered;
      draft.isFreeEntryPoint = isFreeEntryPoint;
      units.price(hasEvidence ? metaCategoryWord(c.evidence.of(id)) : undefined);
      // The Rater's findings of a delivered message (advancePair), in any order: each keeps its earliest case.
      if ((c.idFlags[id]! & HAS_FAILED) !== 0) {
        this.findings.add(
          `DELIVERED_AND_FAILED:${wabaText}`,
          () => deliveredAndFailedFinding(wabaText, idText),
          exemplarAt(atMs, idText),
        );
      }
      if (atMs < sentAtMs - CLOCK_SKEW_MS) {
        this.findings.add(
          `DELIVERED_BEFORE_SENT:${wabaText}`,
          () => deliveredBeforeSentFinding(wabaText, idText, sentAtMs - atMs),
          exemplarAt(atMs, idText),
        );
      }
    }
    // As the Rater says them (noteOutsideWindow): per pair, its count, naming its first.
    for (let pair = 0; pair < pairs; pair++) {
      const count = outsideCount[pair]!;
      if (count === 0) continue;
      const waba = this.rater.wabas.text(this.pairWaba[pair]!);
      const firstId = this.rater.ids.text(outsideFirst[pair]!);
      const exemplar = exemplarAt(outsideFirstAtMs[pair]!, firstId);
      for (let i = 0; i < count; i++) {
        this.findings.add(
          `NO_WINDOW_IN_INPUT:${waba}`,
          () => noWindowInInputFinding(waba, firstId),
          exemplar,
        );
      }
    }
    return units;
  }

  /**
   * The pair of (WABA, business number, user), made at its first sight; NO_KEY for a business number of two
   * WABAs (or named as its WABA): the Rater's findings and placements of those are not reproduced here.
   */
  private pairOf(waba: number, business: number, user: number): number {
    const owner = this.wabaOfBusiness[business]!;
    if (owner === NO_KEY) {
      if (this.rater.wabas.text(waba) === this.rater.businesses.text(business)) return NO_KEY;
      this.wabaOfBusiness[business] = waba;
    } else if (owner !== waba) return NO_KEY;
    for (let pair = this.pairOfUser[user]!; pair !== NO_KEY; pair = this.pairNext[pair]!) {
      if (this.pairBusiness[pair] === business) return pair;
    }
    const pair = this.pairCount++;
    if (pair === this.pairWaba.length) {
      const capacity = pair * 2;
      this.pairWaba = grown(this.pairWaba, capacity, 0);
      this.pairBusiness = grown(this.pairBusiness, capacity, 0);
      this.pairUser = grown(this.pairUser, capacity, 0);
      this.pairNext = grown(this.pairNext, capacity, 0);
    }
    this.pairWaba[pair] = waba;
    this.pairBusiness[pair] = business;
    this.pairUser[pair] = user;
    this.pairNext[pair] = this.pairOfUser[user]!;
    this.pairOfUser[user] = pair;
    this.isWabaSeen[waba] = 1;
    return pair;
  }
}

/**
 * The walk's units, each priced by the engine's UnitPricer as the walk makes it (the walk's order is the
 * Rater's: opening, then id) on one draft reused for every unit, and kept in columns: no object per unit is
 * held until `unit` makes each one for the sink (a unit handed on and dropped dies young; 234,423 drafts and
 * units held to the end were promoted, copied and pretenured). The pricer keeps nothing of a draft once
 * `price` returns: its findings are made at once, or worded from values it copied (price-unit.ts).
 */
class PricedUnits {
  count = 0;
  private readonly pricer: UnitPricer;
  /** The one draft priced: every field set by `draft` (one shape), the pricer's results read by `price`. */
  private readonly scratch: UnitDraft;
  /** The draft's `messages`: its one message id, set by `draft`. */
  private readonly pricedMessage: string[] = [''];
  /** The draft's user, by index and as text, and per user the place kept and its local day. */
  private user = NO_KEY;
  private userText = '';
  private readonly placeDates: string[];
  private readonly places: (MarketResolution | undefined)[];
  /** Per user, its number placed (the resolver's `placerOf`), for the days its place is not kept. */
  private readonly placers: (((localDate: string) => MarketResolution) | undefined)[];
  /** The draft's WABA as text and its account; per WABA index, its account once asked for. */
  private wabaText = '';
  private account: Account | undefined;
  private readonly accounts: (Account | undefined)[];
  /** The last card asked for, and its currency and local day. */
  private card: RateCard | undefined;
  private cardCurrency: string | undefined;
  private cardDate = '';
  private readonly messageIds: Int32Array;
  private readonly unitPairs: Int32Array;
  private readonly openedAtMs: Float64Array;
  private readonly rateMicros: Float64Array;
  private readonly amountMicros: Float64Array;
  /** NULL_RATE, NULL_AMOUNT, MARKET_INFERRED bits. */
  private readonly flags: Uint8Array;
  // The pricer's strings as codes (typed arrays made at full length cost nothing to fill; arrays of strings
  // did: pushed, they grew and were copied; made at full length and filled, ≈ 10 ms each).
  private readonly categoryCodes = new Codes<UnitCategory>();
  private readonly typeCodes = new Codes<PricingType>();
  private readonly ruleCodes = new Codes<string>();
  private readonly countryCodes = new Codes<string | null>();
  private readonly marketCodes = new Codes<string | null>();
  private readonly currencyCodes = new Codes<string>();
  private readonly rateCardCodes = new Codes<string | null>();
  private readonly categories: Int32Array;
  private readonly types: Int32Array;
  private readonly rules: Int32Array;
  private readonly countries: Int32Array;
  private readonly markets: Int32Array;
  private readonly currencies: Int32Array;
  private readonly rateCards: Int32Array;
  /** The few units a volume tier priced, by index. */
  private readonly tiers = new Map<number, TierPosition>();

  constructor(
    private readonly rater: ColumnarRater,
    private readonly pairWaba: Int32Array,
    private readonly pairBusiness: Int32Array,
    private readonly pairUser: Int32Array,
    private readonly findings: FindingCollector,
    capacity: number,
  ) {
    const options = rater.ratingOptions;
    const markets = options.markets;
    this.placeDates = new Array<string>(rater.users.size).fill('');
    this.places = new Array<MarketResolution | undefined>(rater.users.size);
    this.placers = new Array<((localDate: string) => MarketResolution) | undefined>(rater.users.size);
    this.accounts = new Array<Account | undefined>(rater.wabas.size);
    const rateBook = options.rateBook;
    this.pricer = new UnitPricer({
      // The draft's WABA's account, kept by its index (the pricer asks for the draft's WABA; the account of a
      // WABA is fixed in this class of input: no account update).
      accountFor: (waba) => (waba === this.wabaText ? this.account! : rater.accountFor(waba)),
      // The card in force for the last currency and local day asked about, kept: a pure function of both (the
      // book is fixed), asked again for most units in turn.
      rateBook: {
        cards: rateBook.cards,
        cardInForce: (currency, localDate) => {
          if (currency !== this.cardCurrency || localDate !== this.cardDate) {
            this.card = rateBook.cardInForce(currency, localDate);
            this.cardCurrency = currency;
            this.cardDate = localDate;
          }
          return this.card;
        },
      },
      // The draft's user placed once per local day: its place on the day of its last unit is kept (a pure
      // function of the number and the day, the market table being versioned by day).
      markets: {
        ...markets,
        resolve: (waId, localDate, countryHint) => {
          const user = this.user;
          if (countryHint !== undefined || waId !== this.userText) {
            return markets.resolve(waId, localDate, countryHint);
          }
          if (this.placeDates[user] === localDate) return this.places[user]!;
          let placer = this.placers[user];
          if (placer === undefined && markets.placerOf !== undefined) {
            placer = markets.placerOf(waId);
            this.placers[user] = placer;
          }
          const place = placer !== undefined ? placer(localDate) : markets.resolve(waId, localDate);
          this.placeDates[user] = localDate;
          this.places[user] = place;
          return place;
        },
      },
      findings,
      tierStatements: new TierStatements(),
    });
    this.messageIds = new Int32Array(capacity);
    this.unitPairs = new Int32Array(capacity);
    this.openedAtMs = new Float64Array(capacity);
    this.rateMicros = new Float64Array(capacity);
    this.amountMicros = new Float64Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.categories = new Int32Array(capacity);
    this.types = new Int32Array(capacity);
    this.rules = new Int32Array(capacity);
    this.countries = new Int32Array(capacity);
    this.markets = new Int32Array(capacity);
    this.currencies = new Int32Array(capacity);
    this.rateCards = new Int32Array(capacity);
    this.scratch = {
      id: '',
      unit: 'message',
      pricingModel: 'PMP',
      era: ERA,
      waba: '',
      business: '',
      user: '',
      country: null,
      market: null,
      category: 'service',
      type: 'regular',
      openedAtMs: 0,
      expiresAtMs: null,
      messages: this.pricedMessage,
      rateMicros: null,
      amountMicros: null,
      currency: '',
      rateCard: null,
      rule: '',
      allowance: 'none',
      rateCategory: 'service',
      isTiered: false,
      isCategoryFromWebhook: false,
      isFreeEntryPoint: false,
      openedOnLocalDate: '',
      tier: undefined,
      isMarketInferred: undefined,
    };
  }

  /**
   * The draft of the next unit, PairMachine's of a PMP-2025 message (its rule, rate column and flags set by
   * the caller), then `price`.
   */
  draft(
    pair: number,
    id: number,
    waba: string,
    idText: string,
    openedAtMs: number,
    openedOnLocalDate: string,
    category: UnitCategory,
    type: PricingType,
  ): UnitDraft {
    const rater = this.rater;
    const draft = this.scratch;
    const i = this.count;
    this.messageIds[i] = id;
    this.unitPairs[i] = pair;
    this.pricedMessage[0] = idText;
    draft.id = `u_${idText}`;
    draft.waba = waba;
    const wabaIndex = this.pairWaba[pair]!;
    this.wabaText = waba;
    this.account = this.accounts[wabaIndex] ??= rater.accountFor(waba);
    draft.business = rater.businesses.text(this.pairBusiness[pair]!);
    this.user = this.pairUser[pair]!;
    this.userText = rater.users.text(this.user);
    draft.user = this.userText;
    draft.country = null;
    draft.market = null;
    draft.category = category;
    draft.type = type;
    draft.openedAtMs = openedAtMs;
    draft.rateMicros = null;
    draft.amountMicros = null;
    draft.currency = '';
    draft.rateCard = null;
    draft.rule = '';
    draft.rateCategory = 'service';
    draft.isTiered = false;
    draft.isFreeEntryPoint = false;
    draft.openedOnLocalDate = openedOnLocalDate;
    draft.tier = undefined;
    draft.isMarketInferred = undefined;
    return draft;
  }

  /** Prices the draft, then tells Meta's `word` on its message against it (the Rater's noteMetaDisagrees). */
  price(word: MetaCategoryWord | undefined): void {
    const draft = this.scratch;
    this.pricer.price(draft);
    if (word !== undefined)
      addMetaDisagrees(this.findings, draft, this.pricedMessage[0]!, word, draft.openedAtMs);
    const i = this.count++;
    this.openedAtMs[i] = draft.openedAtMs;
    this.categories[i] = this.categoryCodes.code(draft.category);
    this.types[i] = this.typeCodes.code(draft.type);
    this.rules[i] = this.ruleCodes.code(draft.rule);
    this.countries[i] = this.countryCodes.code(draft.country);
    this.markets[i] = this.marketCodes.code(draft.market);
    this.currencies[i] = this.currencyCodes.code(draft.currency);
    this.rateCards[i] = this.rateCardCodes.code(draft.rateCard);
    let flags = draft.isMarketInferred ? MARKET_INFERRED : 0;
    if (draft.rateMicros === null) flags |= NULL_RATE;
    else this.rateMicros[i] = draft.rateMicros;
    if (draft.amountMicros === null) flags |= NULL_AMOUNT;
    else this.amountMicros[i] = draft.amountMicros;
    this.flags[i] = flags;
    if (draft.tier !== undefined) this.tiers.set(i, draft.tier);
  }

  /** The `i`th unit, as the Rater's `toUnit` makes it of its draft. */
  unit(i: number): BillableUnit {
    const rater = this.rater;
    const draft = this.scratch;
    const pair = this.unitPairs[i]!;
    const idText = rater.ids.text(this.messageIds[i]!);
    draft.id = `u_${idText}`;
    draft.waba = rater.wabas.text(this.pairWaba[pair]!);
    draft.business = rater.businesses.text(this.pairBusiness[pair]!);
    draft.user = rater.users.text(this.pairUser[pair]!);
    const flags = this.flags[i]!;
    draft.country = this.countryCodes.values[this.countries[i]!]!;
    draft.market = this.marketCodes.values[this.markets[i]!]!;
    draft.category = this.categoryCodes.values[this.categories[i]!]!;
    draft.type = this.typeCodes.values[this.types[i]!]!;
    draft.openedAtMs = this.openedAtMs[i]!;
    draft.messages = [idText];
    draft.rateMicros = (flags & NULL_RATE) !== 0 ? null : this.rateMicros[i]!;
    draft.amountMicros = (flags & NULL_AMOUNT) !== 0 ? null : this.amountMicros[i]!;
    draft.currency = this.currencyCodes.values[this.currencies[i]!]!;
    draft.rateCard = this.rateCardCodes.values[this.rateCards[i]!]!;
    draft.rule = this.ruleCodes.values[this.rules[i]!]!;
    draft.tier = this.tiers.get(i);
    draft.isMarketInferred = (flags & MARKET_INFERRED) !== 0 ? true : undefined;
    return toUnit(draft);
  }
}

const NULL_RATE = 1;
const NULL_AMOUNT = 2;
const MARKET_INFERRED = 4;

/** Values (a unit's category, rule, market…) as small integers: each distinct value once, in `values`. */
class Codes<T> {
  readonly values: T[] = [];
  private readonly byValue = new Map<T, number>();
  /** The last value coded and its code: most units' value is the previous unit's (a currency, a card). */
  private lastValue: T | undefined;
  private lastCode = -1;

  code(value: T): number {
    if (value === this.lastValue && this.lastCode >= 0) return this.lastCode;
    let code = this.byValue.get(value);
    if (code === undefined) {
      code = this.values.length;
      this.values.push(value);
      this.byValue.set(value, code);
    }
    this.lastValue = value;
    this.lastCode = code;
    return code;
  }
}

/** Sorts `order[from, to)` with `compare` (a run of one instant and kind, sorted by id). */
function sortRun(
  order: Int32Array,
  from: number,
  to: number,
  compare: (a: number, b: number) => number,
): void {
  const run = Array.from(order.subarray(from, to)).sort(compare);
  order.set(run, from);
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
