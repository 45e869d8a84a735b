// The billing rules of one (business number, user) pair: walks inbound messages and delivered business
// messages in time order and decides which unit each business message opens or rides on (phase 1).
// Knows nothing of prices, allowances or tiers: those need every pair of a WABA (price-unit.ts).

import { formatInstant, localDate } from './calendar.js';
import {
  CLOCK_SKEW_MS,
  CONVERSATION_MS,
  FEP_ANSWER_MS,
  LONGEST_WINDOW_MS,
  PER_MESSAGE_PRICING_FROM,
  SERVICE_WINDOW_MS,
  eraOn,
  fepWindowMs,
  isConversationEra,
  pricingModelOf,
} from './eras.js';
import type { TemplateCategory } from './events.js';
import type { BillableUnit, Era, PricingType, RateCategory, UnitCategory } from './units.js';

/** A monthly free allowance a unit may draw on; decided in global time order by price-unit.ts. */
export type Allowance = 'none' | 'free-conversations' | 'free-service-messages';

/** A unit being built: the public fields plus what pricing needs. Mutated until it is final. */
export interface UnitDraft extends BillableUnit {
  allowance: Allowance;
  /** Rate-card column; `authentication` may become `authentication_international` when priced. */
  rateCategory: RateCategory;
  /** Counts toward (and is priced by) volume tiers when charged. */
  isTiered: boolean;
  isCategoryFromWebhook: boolean;
  countryHint?: string;
  /** The business-scoped id the opening message was sent to, when the batch joined it to its number's pair. */
  scopedUser?: string;
  /** A free entry point conversation or window: nothing else opens while it lasts. */
  isFreeEntryPoint: boolean;
  /** Local date of the opening in the WABA's time zone (already needed to pick the era). */
  openedOnLocalDate: string;
}

export interface PairItem {
  atMs: number;
  id: string;
  /** Inbound: came through an ad / Page CTA. */
  hasReferral?: boolean;
  /** Inbound: not in the input, inferred from Meta's webhook saying a message opened a free entry point. */
  isInferred?: boolean;
  /** Outbound (delivered business message) when set; `undefined` for an inbound message. */
  message?: DeliveredMessage;
}

export interface DeliveredMessage {
  id: string;
  template: TemplateCategory | null;
  isCategoryFromWebhook: boolean;
  /**
   * Only Meta's webhook tells of the message, and it says no more than that a free entry point made it free
   * (`referral_conversion`): a template or not, nobody knows. Rated as `template: null` (inside the window both
   * are free), but neither said to be a non-template nor counted as one sent outside a customer service window.
   */
  isTemplateUnknown?: boolean;
  /** When it was sent (the send log's `at`, else its earliest status): whether it can answer a user's message. */
  sentAtMs: number;
  /** How the trace's reasons name it, when not by its id (a quote's planned send has none of Meta's). */
  label?: string;
  /** Its delivery is a read receipt's (or a `played`'s): no `delivered` report came (pricing-rules §1). */
  isDeliveryFromRead?: boolean;
}

export interface PairRules {
  timeZone: string;
  isReportedRulesEnabled: boolean;
  asOfRules?: Era;
}

export interface PairTraceEntry {
  atMs: number;
  kind: 'inbound' | 'message';
  messageId: string;
  unitId?: string;
  era?: Era;
  rule?: string;
  reason: string;
  template?: TemplateCategory | null;
}

/**
 * How long after a user's message the input is taken to carry their side of the pair: the furthest a free
 * entry point can reach after its ad click (answered within 24 h, then open 72 h). Inside it Meta's
 * `free_entry_point` word infers no ad click, and a stream keeps the pair that long (isQuiescentAt).
 */
const USER_SIDE_MS = FEP_ANSWER_MS + LONGEST_WINDOW_MS;

/** One delivered business message being decided: when, on which local date, under which era. */
interface Delivery {
  atMs: number;
  date: string;
  era: Era;
  message: DeliveredMessage;
  /** Where the units it opens go. */
  opened: UnitDraft[];
}

interface OpenConversation {
  draft: UnitDraft;
  /** `any` for CBP-2022 conversations (they cover every message), else the category. */
  slot: 'any' | 'marketing' | 'utility' | 'authentication' | 'service';
}

/** Items come first ordered by time; at the same instant a user's message precedes a business message. */
export function comparePairItems(a: PairItem, b: PairItem): number {
  if (a.atMs !== b.atMs) return a.atMs - b.atMs;
  const aIsInbound = a.message === undefined ? 0 : 1;
  const bIsInbound = b.message === undefined ? 0 : 1;
  if (aIsInbound !== bIsInbound) return aIsInbound - bIsInbound;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export class PairMachine {
  private lastInboundMs = -Infinity;
  /** The user's message before the last: the window a message sent before the last one was sent in. */
  private previousInboundMs = -Infinity;
  private referralAtMs = -Infinity;
  private isReferralAnswered = true;
  /** The last ad click was inferred from Meta's word (no user message in the input): the CSW is unknown. */
  private isReferralInferred = false;
  /** `isInferred`: opened after an inferred ad click, so when the user could be answered is not known. */
  private fep: { draft: UnitDraft; expiresAtMs: number; isInferred: boolean } | null = null;
  private open: OpenConversation[] = [];
  private lastSeenInboundId: string | undefined;
  /** Non-templates delivered with no window open that the input shows (Meta refuses to send those). */
  private outsideWindow: { count: number; firstId: string; firstAtMs: number } | null = null;

  constructor(
    readonly waba: string,
    readonly business: string,
    readonly user: string,
    private readonly rules: PairRules,
    private readonly trace?: (entry: PairTraceEntry) => void,
  ) {}

  /**
   * An independent copy of the pair's state, for what-if questions (the estimator): deciding on the copy
   * never touches this pair's units.
   */
  fork(trace?: (entry: PairTraceEntry) => void): PairMachine {
    const copy = new PairMachine(this.waba, this.business, this.user, this.rules, trace);
    const copies = new Map<UnitDraft, UnitDraft>();
    const copyDraft = (draft: UnitDraft): UnitDraft => {
      let cloned = copies.get(draft);
      if (!cloned) {
        cloned = { ...draft, messages: [...draft.messages] };
        copies.set(draft, cloned);
      }
      return cloned;
    };
    copy.lastInboundMs = this.lastInboundMs;
    copy.previousInboundMs = this.previousInboundMs;
    copy.referralAtMs = this.referralAtMs;
    copy.isReferralAnswered = this.isReferralAnswered;
    copy.isReferralInferred = this.isReferralInferred;
    copy.lastSeenInboundId = this.lastSeenInboundId;
    copy.fep = this.fep ? { ...this.fep, draft: copyDraft(this.fep.draft) } : null;
    copy.open = this.open.map((c) => ({ draft: copyDraft(c.draft), slot: c.slot }));
    return copy;
  }

  /**
   * The non-templates delivered outside any customer service window since the last call (then forgotten):
   * Meta sends those only inside one, so the user's messages are missing from the input.
   */
  takeOutsideWindow(): { count: number; firstId: string; firstAtMs: number } | null {
    const taken = this.outsideWindow;
    this.outsideWindow = null;
    return taken;
  }

  /** Nothing is open after `atMs`: the pair's state can be forgotten without changing any verdict. */
  isQuiescentAt(atMs: number): boolean {
    return (
      this.lastInboundMs + USER_SIDE_MS <= atMs &&
      (this.fep === null || this.fep.expiresAtMs <= atMs) &&
      this.open.every((c) => c.draft.expiresAtMs! <= atMs)
    );
  }

  /** Applies items already sorted with comparePairItems; returns the units they opened. */
  apply(items: readonly PairItem[], opened: UnitDraft[]): void {
    for (const item of items) {
      if (item.message) this.decide(item.atMs, item.message, opened);
      else this.receive(item);
    }
  }

  private receive(item: PairItem): void {
    if (item.isInferred) {
      if (item.atMs < this.lastInboundMs + USER_SIDE_MS) {
        // The input carries the user's side of this pair (a message of theirs recent enough that any free
        // entry point it led to could still be open): an ad click would be in it too. Meta's word alone
        // does not open a window then; reconcile shows where Meta and wameter differ.
        this.trace?.({
          atMs: item.atMs,
          kind: 'inbound',
          messageId: item.id,
          reason: `Meta's webhook says this message is part of a free entry point, and the input has the user's own messages (the last at ${formatInstant(this.lastInboundMs)}), so no ad click is assumed beyond those in it: judged by the input`,
        });
        return;
      }
      // Only the ad click is inferred: when the user's message came (the window) is not known.
      this.referralAtMs = item.atMs;
      this.isReferralAnswered = false;
      this.isReferralInferred = true;
      this.trace?.({
        atMs: item.atMs,
        kind: 'inbound',
        messageId: item.id,
        reason:
          "Meta's webhook says the next message is part of a free entry point: the user came through an ad / Page CTA (that message is not in the input)",
      });
      return;
    }
    if (item.id === this.lastSeenInboundId) return; // the same inbound message twice
    this.lastSeenInboundId = item.id;
    this.previousInboundMs = this.lastInboundMs;
    this.lastInboundMs = item.atMs;
    if (item.hasReferral) {
      this.referralAtMs = item.atMs;
      this.isReferralAnswered = false;
      this.isReferralInferred = false;
    }
    this.trace?.({
      atMs: item.atMs,
      kind: 'inbound',
      messageId: item.id,
      reason:
        `user wrote: customer service window open until ${formatInstant(item.atMs + SERVICE_WINDOW_MS)}` +
        (item.hasReferral ? `; ${this.referralInWords(item.atMs)}` : ''),
    });
  }

  /**
   * What the answer to an ad click at `atMs` will do, in words true under the rules of the eras it can be
   * answered in: none opens a free entry point under NBP; under CBP an open one takes the answer (§3.2); under
   * PMP the answer opens a new one, which supersedes an open one (§5.1).
   */
  private referralInWords(atMs: number): string {
    const deadlineMs = atMs + FEP_ANSWER_MS;
    const answer = `the business's first answer before ${formatInstant(deadlineMs)}`;
    const eraNow = this.eraAt(atMs);
    const eraLast = this.eraAt(deadlineMs - 1);
    if (eraLast === 'NBP') {
      return `came through an ad / Page CTA, but notification pricing (${this.dated('before 2022-02-01')}) has no free entry point`;
    }
    if (eraNow === 'NBP') {
      return `came through an ad / Page CTA: ${answer} opens a free entry point if it is delivered from 2022-02-01 (notification pricing, in force until then, has none)`;
    }
    const fep = this.fep !== null && atMs < this.fep.expiresAtMs ? this.fep : null;
    if (fep === null) return `came through an ad / Page CTA, so ${answer} opens a free entry point`;
    const until = formatInstant(fep.expiresAtMs);
    if (!isConversationEra(eraNow)) {
      return `came through an ad / Page CTA, so ${answer} opens a new free entry point, replacing free entry point ${fep.draft.id} (open until ${until}) if that is still open`;
    }
    const open = `free entry point ${fep.draft.id} is open (until ${until})`;
    if (isConversationEra(eraLast) && fep.expiresAtMs >= deadlineMs) {
      return `came through an ad / Page CTA while ${open}, past the 24 h to answer: an answer rides on it and no new free entry point opens`;
    }
    const beforeSwitch = isConversationEra(eraLast)
      ? ''
      : ` and before ${PER_MESSAGE_PRICING_FROM} in ${this.rules.timeZone}`;
    return `came through an ad / Page CTA while ${open}: ${answer} rides on it if delivered while it is open${beforeSwitch}, else opens a new free entry point`;
  }

  private eraAt(atMs: number): Era {
    return (
      this.rules.asOfRules ?? eraOn(localDate(atMs, this.rules.timeZone), this.rules.isReportedRulesEnabled)
    );
  }

  /** When a dated rule applies, in words: its dates, or the what-if that applies one era's rules to every date. */
  private dated(dates: string): string {
    return this.rules.asOfRules
      ? `in the what-if applying ${this.rules.asOfRules} rules to every date`
      : dates;
  }

  private decide(deliveredAtMs: number, message: DeliveredMessage, opened: UnitDraft[]): void {
    const date = localDate(deliveredAtMs, this.rules.timeZone);
    const era = this.rules.asOfRules ?? eraOn(date, this.rules.isReportedRulesEnabled);
    const isInServiceWindow = deliveredAtMs < this.lastInboundMs + SERVICE_WINDOW_MS;
    // A non-template is sendable inside the window (§1) and may be delivered after it closed (§3.4: pending).
    const windowOfSendMs =
      this.lastInboundMs <= message.sentAtMs ? this.lastInboundMs : this.previousInboundMs;
    const isSentInServiceWindow =
      windowOfSendMs <= message.sentAtMs && message.sentAtMs < windowOfSendMs + SERVICE_WINDOW_MS;
    // The answer to the ad click is the first business message sent after it (a clock's skew allowed), not one
    // sent before the user wrote and delivered after (§1: "the business answered"). Where only Meta's word
    // tells of the click, it is taken to be just before the message (that message is the answer).
    const isAnswer = this.isReferralInferred || message.sentAtMs >= this.referralAtMs - CLOCK_SKEW_MS;
    const isFepEligible =
      isAnswer && !this.isReferralAnswered && deliveredAtMs < this.referralAtMs + FEP_ANSWER_MS;
    // The first answer to an ad click, delivered too late to open a free entry point: its words say so, where
    // the click's own line told of the deadline (notification pricing has no free entry point to miss).
    const isLateAnswerToClick =
      isAnswer && !this.isReferralAnswered && !isFepEligible && !this.isReferralInferred && era !== 'NBP';
    const clickAtMs = this.referralAtMs;
    if (isAnswer) this.isReferralAnswered = true;
    if (this.fep && deliveredAtMs >= this.fep.expiresAtMs) this.fep = null;
    this.closeExpired(deliveredAtMs);
    // A free entry point window does not let a business write free-form outside the customer service window
    // (the CSW stays independent, §5.1): only where the ad click was inferred is the CSW unknown.
    const isWindowUnknown = (isFepEligible && this.isReferralInferred) || this.fep?.isInferred === true;
    if (
      message.template === null &&
      message.isTemplateUnknown !== true &&
      !isInServiceWindow &&
      !isSentInServiceWindow &&
      !isWindowUnknown &&
      era !== 'NBP'
    ) {
      if (this.outsideWindow) this.outsideWindow.count += 1;
      else this.outsideWindow = { count: 1, firstId: message.id, firstAtMs: deliveredAtMs };
    }
    // Reasons are words for the trace: without a trace, no reason (nor its closure) is made.
    const isTraced = this.trace !== undefined;
    const what = !isTraced
      ? ''
      : describe(message, deliveredAtMs) +
        (isLateAnswerToClick
          ? ` (the first answer to the user's ad / Page CTA message of ${formatInstant(clickAtMs)}, delivered 24 h or more after it: too late to open a free entry point)`
          : '');
    const d: Delivery = { atMs: deliveredAtMs, date, era, message, opened };

    // Free entry point (all eras since CBP-2022): a window in which every business message is free. Under
    // CBP an open one takes the answer to a new ad click too (§3.2: "it rides on it"); under PMP that answer
    // opens a window of its own, 72 h from the answer (§5.1), which supersedes the open one. Meta's word
    // alone inside an open window tells of that window, not of a new ad click.
    const fep = this.fep;
    const isNewFepOverOpen =
      fep !== null && isFepEligible && !this.isReferralInferred && pricingModelOf(era) === 'PMP';
    if (fep && !isNewFepOverOpen) {
      if (fep.draft.unit === 'conversation') {
        this.ride(
          d,
          fep.draft,
          'FEP_RIDE',
          isTraced &&
            (() =>
              `${what} inside the free entry point conversation (until ${formatInstant(fep.expiresAtMs)}): free`),
        );
      } else {
        this.start(
          d,
          this.draft(
            d,
            'message',
            null,
            'referral_conversion',
            'free_entry_point',
            rateCategoryOf(era, message.template),
          ),
          'FEP_WINDOW',
          isTraced &&
            (() =>
              `${what} inside the free entry point window (until ${formatInstant(fep.expiresAtMs)}): free`),
        ).isFreeEntryPoint = true;
      }
      return;
    }
    if (isFepEligible && era !== 'NBP') {
      const expiresAtMs = deliveredAtMs + fepWindowMs(date, era);
      const isConversation = isConversationEra(era);
      const draft = this.draft(
        d,
        isConversation ? 'conversation' : 'message',
        isConversation ? expiresAtMs : null,
        'referral_conversion',
        'free_entry_point',
        // The rate it would have cost: an answer within 24 h of the user's message is user-initiated in 2022.
        era === 'CBP-2022' ? 'user_initiated' : rateCategoryOf(era, message.template),
      );
      draft.isFreeEntryPoint = true;
      const closed = this.open.filter((c) => c.draft.unit === 'conversation').map((c) => c.draft);
      // A free entry point conversation carried over from CBP ends where the new window starts; a PMP window
      // has no end in its unit (each message in it is a unit of its own): it is simply replaced.
      if (fep?.draft.unit === 'conversation') closed.push(fep.draft);
      const replaced = fep?.draft.unit === 'message' ? fep : null;
      for (const conversation of closed) conversation.closedAtMs = deliveredAtMs;
      this.open = [];
      this.fep = { draft, expiresAtMs, isInferred: this.isReferralInferred };
      this.start(
        d,
        draft,
        'FEP_OPEN',
        isTraced &&
          (() =>
            `${what} is the first answer within 24 h to the user's ad / Page CTA message of ${formatInstant(this.referralAtMs)}: ` +
            `free entry point opens until ${formatInstant(expiresAtMs)}, everything in it free` +
            (closed.length > 0 ? `; it closes ${closed.map((c) => c.id).join(', ')}` : '') +
            (replaced
              ? `; it replaces free entry point ${replaced.draft.id}, open until ${formatInstant(replaced.expiresAtMs)}`
              : '')),
      );
      return;
    }

    if (era === 'NBP') {
      if (message.template) {
        this.start(
          d,
          this.draft(d, 'message', null, message.template, 'regular', message.template),
          'NBP_TEMPLATE',
          isTraced &&
            (() =>
              `${what}: charged per delivered template (notification pricing, ${this.dated('before 2022-02-01')})`),
        );
      } else {
        this.start(
          d,
          this.draft(d, 'message', null, 'service', 'free_customer_service', 'service'),
          'NBP_REPLY',
          isTraced &&
            (() => `${what}: free reply (notification pricing, ${this.dated('before 2022-02-01')})`),
        );
      }
      return;
    }

    if (isConversationEra(era)) {
      const openConversation = (
        category: RateCategory & UnitCategory,
        type: PricingType,
        slot: OpenConversation['slot'],
        allowance: Allowance,
      ): UnitDraft => {
        const draft = this.draft(
          d,
          'conversation',
          deliveredAtMs + CONVERSATION_MS,
          category,
          type,
          category, // the rate-card column is the conversation's category
        );
        draft.allowance = allowance;
        this.open.push({ draft, slot });
        return draft;
      };
      const legacy = this.open.find((c) => c.slot === 'any');
      if (legacy) {
        this.ride(
          d,
          legacy.draft,
          'CBP_RIDE',
          isTraced && (() => `${what} inside open conversation ${legacy.draft.id}: covered`),
        );
        return;
      }
      if (era === 'CBP-2022') {
        // §4: business-initiated is a template delivered outside the window. A non-template is sent only
        // inside one: with none in the input, the user's message is missing (NO_WINDOW_IN_INPUT), and the
        // conversation is user-initiated.
        const isUserInitiated = isInServiceWindow || message.template === null;
        const category: UnitCategory = isUserInitiated ? 'user_initiated' : 'business_initiated';
        this.start(
          d,
          openConversation(category, 'regular', 'any', 'free-conversations'),
          isUserInitiated ? 'CBP2022_USER_INITIATED' : 'CBP2022_BUSINESS_INITIATED',
          isTraced &&
            (() =>
              `${what} with no conversation open: ${category.replace('_', '-')} conversation opens (${
                isInServiceWindow
                  ? 'within 24 h of the user\u2019s last message'
                  : isUserInitiated
                    ? 'a non-template is sent only inside the customer service window: the user\u2019s message is missing from the input'
                    : 'outside the customer service window'
              }) until ${formatInstant(deliveredAtMs + CONVERSATION_MS)}`),
        );
        return;
      }
      if (message.template) {
        const category = message.template;
        const existing = this.open.find((c) => c.slot === category);
        if (existing) {
          this.ride(
            d,
            existing.draft,
            'CBP_RIDE',
            isTraced &&
              (() => `${what} inside open ${category} conversation ${existing.draft.id}: no charge`),
          );
          return;
        }
        this.start(
          d,
          openConversation(category, 'regular', category, 'none'),
          'CBP_OPEN',
          isTraced &&
            (() =>
              `${what} with no ${category} conversation open: ${category === 'authentication' ? 'an' : 'a'} ${category} conversation opens until ${formatInstant(deliveredAtMs + CONVERSATION_MS)}`),
        );
        return;
      }
      const any = this.open[0];
      if (any) {
        this.ride(
          d,
          any.draft,
          'CBP_RIDE',
          isTraced &&
            (() => `${what} inside open ${any.draft.category} conversation ${any.draft.id}: no charge`),
        );
        return;
      }
      const isAlwaysFree = era === 'CBP-2024-11';
      this.start(
        d,
        openConversation(
          'service',
          isAlwaysFree ? 'free_customer_service' : 'regular',
          'service',
          isAlwaysFree ? 'none' : 'free-conversations',
        ),
        isAlwaysFree ? 'CBP_SERVICE_FREE' : 'CBP_OPEN_SERVICE',
        isTraced &&
          (() =>
            `${what} with no conversation open: a service conversation opens until ${formatInstant(deliveredAtMs + CONVERSATION_MS)}` +
            (isAlwaysFree
              ? ` (free: every service conversation is free ${this.dated('from 2024-11-01')})`
              : '')),
      );
      return;
    }

    // Per-message pricing.
    if (message.template === 'utility') {
      const carried = this.open.find((c) => c.slot === 'utility');
      if (carried) {
        this.ride(
          d,
          carried.draft,
          'CBP_UTILITY_CARRYOVER',
          isTraced &&
            (() =>
              `${what} inside utility conversation ${carried.draft.id} opened before per-message pricing: free`),
        );
        return;
      }
    }
    const template = message.template;
    if (template === 'marketing' || template === 'authentication') {
      // A conversation of its category opened before the switch does not take it: only utility ones carry
      // over (pricing-rules §3.6, docs/decisions.md), which the words say where one is still open.
      const notCarried = this.open.find((c) => c.slot === template);
      this.start(
        d,
        this.draft(d, 'message', null, template, 'regular', template),
        'PMP_CHARGED',
        isTraced &&
          (() =>
            `${what}: charged per delivered message` +
            (notCarried
              ? ` (open ${template} conversation ${notCarried.draft.id}, opened before per-message pricing, does not cover it: only utility conversations carry over)`
              : '')),
      ).isTiered = template === 'authentication';
      return;
    }
    if (template === 'utility') {
      const isFree = isInServiceWindow && era === 'PMP-2025';
      const draft = this.draft(
        d,
        'message',
        null,
        'utility',
        isFree ? 'free_customer_service' : 'regular',
        'utility',
      );
      draft.isTiered = !isFree;
      this.start(
        d,
        draft,
        isFree ? 'PMP_UTILITY_IN_CSW' : isInServiceWindow ? 'PMP2026_UTILITY_IN_CSW' : 'PMP_CHARGED',
        isTraced &&
          (() =>
            isFree
              ? `${what} inside the customer service window (user wrote ${formatInstant(this.lastInboundMs)}): free`
              : isInServiceWindow
                ? `${what} inside the customer service window: charged ${this.dated('from 2026-10-01')} (reported rule)`
                : `${what} outside any customer service window: charged`),
      );
      return;
    }
    if (era === 'PMP-2026-10') {
      const draft = this.draft(d, 'message', null, 'service', 'regular', 'utility');
      draft.allowance = 'free-service-messages';
      this.start(
        d,
        draft,
        'PMP2026_SERVICE',
        isTraced &&
          (() =>
            `${what}: service messages are charged at the market's utility rate ${this.dated('from 2026-10-01')} (reported rule)`),
      );
      return;
    }
    this.start(
      d,
      this.draft(d, 'message', null, 'service', 'free_customer_service', 'service'),
      'PMP_SERVICE_FREE',
      isTraced && (() => `${what}: non-template messages are free under per-message pricing`),
    );
  }

  private draft(
    { atMs: openedAtMs, date: openedOnLocalDate, era, message }: Delivery,
    unit: 'conversation' | 'message',
    expiresAtMs: number | null,
    category: UnitCategory,
    type: PricingType,
    rateCategory: RateCategory,
  ): UnitDraft {
    return {
      id: `u_${message.id}`,
      unit,
      pricingModel: pricingModelOf(era),
      era,
      waba: this.waba,
      business: this.business,
      user: this.user,
      country: null,
      market: null,
      category,
      type,
      openedAtMs,
      expiresAtMs,
      messages: [message.id],
      rateMicros: null,
      amountMicros: null,
      currency: '',
      rateCard: null,
      rule: '',
      allowance: 'none',
      rateCategory,
      isTiered: false,
      isCategoryFromWebhook: message.isCategoryFromWebhook,
      isFreeEntryPoint: false,
      openedOnLocalDate,
    };
  }

  /** The message rides on an open unit, which keeps the rule that opened it (the message's own is traced). */
  private ride(d: Delivery, draft: UnitDraft, rule: string, reason: (() => string) | false): void {
    draft.messages.push(d.message.id);
    this.note(d, draft.id, rule, reason);
  }

  /** The message opens `draft`. */
  private start(d: Delivery, draft: UnitDraft, rule: string, reason: (() => string) | false): UnitDraft {
    draft.rule = rule;
    d.opened.push(draft);
    this.note(d, draft.id, rule, reason);
    return draft;
  }

  /** Forgets the conversations that have expired by `atMs` (builds a new list only when one has). */
  private closeExpired(atMs: number): void {
    const open = this.open;
    for (let i = 0; i < open.length; i++) {
      if (atMs >= open[i]!.draft.expiresAtMs!) {
        this.open = open.filter((c) => atMs < c.draft.expiresAtMs!);
        return;
      }
    }
  }

  private note(
    { atMs, era, message }: Delivery,
    unitId: string,
    rule: string,
    reason: (() => string) | false,
  ) {
    if (!this.trace || !reason) return;
    this.trace({
      atMs,
      kind: 'message',
      messageId: message.id,
      unitId,
      era,
      rule,
      reason: reason(),
      template: message.template,
    });
  }
}

function describe(message: DeliveredMessage, deliveredAtMs: number): string {
  const name = message.label ?? message.id;
  const what = message.template
    ? `${message.template} template ${name}`
    : `${message.isTemplateUnknown === true ? '' : 'non-template '}message ${name}`;
  // Placed where it was delivered (§3.4: a late delivery opens at its delivery; §1: a read implies delivered):
  // said when that is not where its send would put it, so that a story is not read by the send log's times.
  const isLate = deliveredAtMs - message.sentAtMs > CLOCK_SKEW_MS;
  if (!isLate && message.isDeliveryFromRead !== true) return what;
  const sent = isLate ? `sent ${formatInstant(message.sentAtMs)}, ` : '';
  const delivery =
    message.isDeliveryFromRead === true
      ? 'no delivered report: rated at its read receipt'
      : 'rated at its delivery';
  return `${what} (${sent}${delivery})`;
}

/**
 * The rate-card column a message would be charged from outside any free window: its template's category, or
 * for a non-template `service` — except from PMP-2026-10 (reported), when service messages are charged at the
 * market's utility rate. A free unit shows the rate it would have cost (contract §4).
 */
function rateCategoryOf(era: Era, template: TemplateCategory | null): RateCategory {
  return template ?? (era === 'PMP-2026-10' ? 'utility' : 'service');
}
