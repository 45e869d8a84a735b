// A small, deliberately naive second implementation of pricing-rules.md, written from the spec (not from
// pair-machine.ts / price-unit.ts / rate-events.ts) so that property tests can compare it with the engine.
// Quadratic on purpose: every question ("is an FEP window open at d?") is answered by scanning history.
// It never reads clocks or files; it takes the same market resolver and rate book the engine uses.

import { localDate } from '../src/core/calendar.js';
import {
  CONVERSATION_MS,
  CLOCK_SKEW_MS,
  FEP_ANSWER_MS,
  FREE_CONVERSATIONS_PER_MONTH,
  FREE_SERVICE_MESSAGES_PER_MONTH,
  SERVICE_WINDOW_MS,
  eraOn,
  fepWindowMs,
  hasAuthInternationalRate,
} from '../src/core/eras.js';
import type { Account, CoreEvent, TemplateCategory } from '../src/core/events.js';
import type { MarketResolver, RateBook } from '../src/core/pricing-context.js';
import type { Era, PricingType, RateCategory, UnitCategory } from '../src/core/units.js';

export interface ReferenceOptions {
  accountFor(waba: string): Account;
  rateBook: RateBook;
  markets: MarketResolver;
  /** Apply the (reported) PMP-2026-10 era. Default true, as in the engine. */
  isReportedRulesEnabled?: boolean;
}

/** The fields of a `BillableUnit` the reference decides; compared field by field with the engine's. */
export interface ReferenceUnit {
  id: string;
  unit: 'conversation' | 'message';
  era: Era;
  waba: string;
  business: string;
  user: string;
  market: string | null;
  category: UnitCategory;
  type: PricingType;
  openedAtMs: number;
  expiresAtMs: number | null;
  closedAtMs?: number;
  messages: string[];
  rateMicros: number | null;
  amountMicros: number | null;
  currency: string;
  rateCard: string | null;
}

export interface ReferencePending {
  id: string;
  sentAtMs: number;
}

export interface ReferenceResult {
  units: ReferenceUnit[];
  pending: ReferencePending[];
}

interface Message {
  id: string;
  waba: string;
  business: string;
  user: string;
  template: TemplateCategory | null;
  sentAtMs: number;
  deliveredAtMs: number | null;
  isFailed: boolean;
}

interface Inbound {
  id: string;
  business: string;
  user: string;
  atMs: number;
  hasReferral: boolean;
}

/** A unit as the reference builds it, with what pricing needs. */
interface Draft extends ReferenceUnit {
  pair: string;
  /** Free entry point (conversation or PMP window): every business message inside is free. */
  isFreeEntryPoint: boolean;
  /** For PMP free entry point windows (message units): when the window ends. */
  windowEndsAtMs: number | null;
  rateCategory: RateCategory;
  allowance: 'none' | 'conversations-per-waba' | 'service-messages-per-number';
  isTiered: boolean;
}

const isConversationEra = (era: Era) => era === 'CBP-2022' || era === 'CBP-2023' || era === 'CBP-2024-11';
const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function rateByReference(events: readonly CoreEvent[], options: ReferenceOptions): ReferenceResult {
  const isReported = options.isReportedRulesEnabled ?? true;

  // 1. What happened to each message (duplicates collapse: a Map keyed by id).
  const messages = new Map<string, Message>();
  const deliveries = new Map<string, number[]>();
  const failures = new Set<string>();
  const inbounds = new Map<string, Inbound>();
  for (const event of events) {
    if (event.kind === 'inbound') {
      inbounds.set(event.id, {
        id: event.id,
        business: event.business,
        user: event.user,
        atMs: event.atMs,
        hasReferral: event.hasReferral,
      });
    } else if (event.kind === 'outbound') {
      messages.set(event.id, {
        id: event.id,
        waba: event.waba,
        business: event.business,
        user: event.user,
        template: event.template,
        sentAtMs: event.atMs,
        deliveredAtMs: null,
        isFailed: event.isFailed === true,
      });
      if (event.deliveredAtMs !== undefined) push(deliveries, event.id, event.deliveredAtMs);
    } else if (event.kind === 'status') {
      // read implies delivered (pricing-rules.md §1)
      if (event.status === 'delivered' || event.status === 'read') push(deliveries, event.id, event.atMs);
      if (event.status === 'failed') failures.add(event.id);
    }
  }
  for (const message of messages.values()) {
    const times = deliveries.get(message.id);
    if (times) message.deliveredAtMs = Math.min(...times);
    if (failures.has(message.id)) message.isFailed = true;
  }

  const pending: ReferencePending[] = [...messages.values()]
    .filter((m) => m.deliveredAtMs === null && !m.isFailed)
    .map((m) => ({ id: m.id, sentAtMs: m.sentAtMs }))
    .sort((a, b) => a.sentAtMs - b.sentAtMs || byId(a.id, b.id));

  // 2. Decide each delivered business message in time order (a user's message first at the same instant).
  const delivered = [...messages.values()]
    .filter((m) => m.deliveredAtMs !== null)
    .sort((a, b) => a.deliveredAtMs! - b.deliveredAtMs! || byId(a.id, b.id));
  const userMessages = [...inbounds.values()];
  const units: Draft[] = [];
  const decided: Message[] = [];

  for (const message of delivered) {
    const d = message.deliveredAtMs!;
    const pair = `${message.business}\u0000${message.user}`;
    const account = options.accountFor(message.waba);
    const date = localDate(d, account.timeZone);
    const era = eraOn(date, isReported);
    const fromUser = userMessages.filter(
      (m) => m.business === message.business && m.user === message.user && m.atMs <= d,
    );
    const latestUserMs = Math.max(-Infinity, ...fromUser.map((m) => m.atMs));
    const isInServiceWindow = d < latestUserMs + SERVICE_WINDOW_MS;
    const latestReferralMs = Math.max(-Infinity, ...fromUser.filter((m) => m.hasReferral).map((m) => m.atMs));
    // An answer is sent after the user's message (a clock's skew allowed), whenever it is delivered.
    const isAnswer = (m: Message) => m.sentAtMs >= latestReferralMs - CLOCK_SKEW_MS;
    const isFirstAnswer =
      isAnswer(message) &&
      !decided.some(
        (m) =>
          m.business === message.business &&
          m.user === message.user &&
          m.deliveredAtMs! >= latestReferralMs &&
          isAnswer(m),
      );
    decided.push(message);

    const ofPair = units.filter((u) => u.pair === pair);
    const isOpenAt = (u: Draft) =>
      u.unit === 'conversation' &&
      u.openedAtMs <= d &&
      d < u.expiresAtMs! &&
      (u.closedAtMs === undefined || d < u.closedAtMs);
    const open = ofPair.filter(isOpenAt);
    const fepOpen = ofPair.find(
      (u) =>
        u.isFreeEntryPoint &&
        u.openedAtMs <= d &&
        d < (u.unit === 'conversation' ? u.expiresAtMs! : u.windowEndsAtMs!) &&
        (u.closedAtMs === undefined || d < u.closedAtMs),
    );
    // The first answer within 24 h to an ad / Page CTA message opens one (not before 2022-02-01).
    const isFepAnswer = era !== 'NBP' && isFirstAnswer && d < latestReferralMs + FEP_ANSWER_MS;

    const newUnit = (
      unit: 'conversation' | 'message',
      category: UnitCategory,
      type: PricingType,
      rateCategory: RateCategory,
    ): Draft => {
      const draft: Draft = {
        id: `u_${message.id}`,
        unit,
        era,
        waba: message.waba,
        business: message.business,
        user: message.user,
        market: null,
        category,
        type,
        openedAtMs: d,
        expiresAtMs: unit === 'conversation' ? d + CONVERSATION_MS : null,
        messages: [message.id],
        rateMicros: null,
        amountMicros: null,
        currency: account.currency,
        rateCard: null,
        pair,
        isFreeEntryPoint: false,
        windowEndsAtMs: null,
        rateCategory,
        allowance: 'none',
        isTiered: false,
      };
      units.push(draft);
      return draft;
    };
    // What it would cost outside a free window: from PMP-2026-10 (§6, reported) service is billed as utility.
    const wouldCost: RateCategory = message.template ?? (era === 'PMP-2026-10' ? 'utility' : 'service');

    // An open free entry point covers everything (§3, §4, §5.1) — under CBP the answer to a new ad click too
    // (§3.2: "it rides on it"); under PMP that answer opens a new window from its moment (§5.1).
    if (fepOpen && !(isFepAnswer && !isConversationEra(era))) {
      if (fepOpen.unit === 'conversation') fepOpen.messages.push(message.id);
      else newUnit('message', 'referral_conversion', 'free_entry_point', wouldCost);
      continue;
    }
    if (isFepAnswer) {
      const windowMs = fepWindowMs(date, era);
      for (const conversation of open) conversation.closedAtMs = d;
      // Decision (not in the engine): a CBP-2022 free entry point "would have cost" a user-initiated
      // conversation, since it is by definition an answer inside the 24 h window.
      const fep = isConversationEra(era)
        ? newUnit(
            'conversation',
            'referral_conversion',
            'free_entry_point',
            era === 'CBP-2022' ? 'user_initiated' : wouldCost,
          )
        : newUnit('message', 'referral_conversion', 'free_entry_point', wouldCost);
      fep.isFreeEntryPoint = true;
      if (fep.unit === 'conversation') fep.expiresAtMs = d + windowMs;
      else fep.windowEndsAtMs = d + windowMs;
      continue;
    }

    if (era === 'NBP') {
      if (message.template) newUnit('message', message.template, 'regular', message.template);
      else newUnit('message', 'service', 'free_customer_service', 'service');
      continue;
    }

    if (isConversationEra(era)) {
      // A CBP-2022 conversation covers every message, whatever the era it is still open in.
      const anyKind = open.find(
        (u) => u.category === 'business_initiated' || u.category === 'user_initiated',
      );
      if (anyKind) {
        anyKind.messages.push(message.id);
        continue;
      }
      if (era === 'CBP-2022') {
        // §4: business-initiated is "necessarily a template"; a non-template is only sent inside the window.
        const category =
          isInServiceWindow || message.template === null ? 'user_initiated' : 'business_initiated';
        newUnit('conversation', category, 'regular', category).allowance = 'conversations-per-waba';
        continue;
      }
      if (message.template) {
        const same = open.find((u) => u.category === message.template);
        if (same) same.messages.push(message.id);
        else newUnit('conversation', message.template, 'regular', message.template);
        continue;
      }
      const oldest = open.sort((a, b) => a.openedAtMs - b.openedAtMs)[0];
      if (oldest) {
        oldest.messages.push(message.id);
        continue;
      }
      if (era === 'CBP-2024-11') newUnit('conversation', 'service', 'free_customer_service', 'service');
      else newUnit('conversation', 'service', 'regular', 'service').allowance = 'conversations-per-waba';
      continue;
    }

    // Per-message pricing (§5, §6).
    if (message.template === 'utility') {
      const carried = open.find((u) => u.category === 'utility'); // §3.6: opened before 2025-07-01
      if (carried) {
        carried.messages.push(message.id);
        continue;
      }
      const isFree = era === 'PMP-2025' && isInServiceWindow;
      newUnit('message', 'utility', isFree ? 'free_customer_service' : 'regular', 'utility').isTiered =
        !isFree;
    } else if (message.template === 'marketing') {
      newUnit('message', 'marketing', 'regular', 'marketing');
    } else if (message.template === 'authentication') {
      newUnit('message', 'authentication', 'regular', 'authentication').isTiered = true;
    } else if (era === 'PMP-2026-10') {
      newUnit('message', 'service', 'regular', 'utility').allowance = 'service-messages-per-number';
    } else {
      newUnit('message', 'service', 'free_customer_service', 'service');
    }
  }

  // 3. Prices, in global order of opening: allowances and tiers are running counts.
  units.sort((a, b) => a.openedAtMs - b.openedAtMs || byId(a.id, b.id));
  for (const unit of units) {
    const account = options.accountFor(unit.waba);
    const date = localDate(unit.openedAtMs, account.timeZone);
    const month = date.slice(0, 7);
    const place = options.markets.resolve(unit.user, date);
    unit.market = place.market;
    // §3.5, §5.4 (contract §4: a free entry point of an authentication template shows the rate it would have
    // cost, the international one where it applies).
    const isAuthentication =
      unit.category === 'authentication' ||
      (unit.type === 'free_entry_point' && unit.rateCategory === 'authentication');
    if (isAuthentication && isAuthInternational(account, place.country, date, unit.openedAtMs)) {
      if (unit.category === 'authentication') unit.category = 'authentication_international';
      unit.rateCategory = 'authentication_international';
    }
    const card = options.rateBook.cardInForce(account.currency, date);
    unit.rateCard = card?.id ?? null;
    const listRate =
      card && unit.market !== null ? card.rates.get(unit.market)?.[unit.rateCategory] : undefined;
    unit.rateMicros = listRate ?? null;

    if (unit.type === 'regular' && unit.allowance !== 'none') {
      const used = countAllowance(unit, month);
      const limit =
        unit.allowance === 'conversations-per-waba'
          ? FREE_CONVERSATIONS_PER_MONTH
          : FREE_SERVICE_MESSAGES_PER_MONTH;
      if (used <= limit) unit.type = 'free_tier';
    }
    if (unit.type !== 'regular') {
      unit.amountMicros = 0;
      continue;
    }
    if (unit.isTiered && card && unit.market !== null) {
      const count = countTier(unit, account.portfolio, month, options);
      const bands = card.tiers.get(`${unit.market}|${unit.rateCategory}`) ?? [];
      const band = bands.find((b) => count >= b.fromCount && (b.toCount === null || count <= b.toCount));
      if (band) unit.rateMicros = band.rateMicros;
    }
    unit.amountMicros = unit.market !== null && card ? unit.rateMicros : null;
  }

  // Counting by scanning the units already priced (those before `unit` in the sorted list).
  function countAllowance(unit: Draft, month: string): number {
    const scope = (u: Draft) => (unit.allowance === 'conversations-per-waba' ? u.waba : u.business);
    const index = units.indexOf(unit);
    return units.filter(
      (u, i) =>
        i <= index &&
        u.allowance === unit.allowance &&
        scope(u) === scope(unit) &&
        localDate(u.openedAtMs, options.accountFor(u.waba).timeZone).slice(0, 7) === month,
    ).length;
  }
  function countTier(unit: Draft, portfolio: string, month: string, opts: ReferenceOptions): number {
    const family = (c: UnitCategory) => (c === 'authentication_international' ? 'authentication' : c);
    const index = units.indexOf(unit);
    return units.filter((u, i) => {
      if (i > index || !u.isTiered || u.type !== 'regular' || u.market !== unit.market) return false;
      if (family(u.category) !== family(unit.category)) return false;
      const account = opts.accountFor(u.waba);
      if (account.portfolio !== portfolio) return false;
      // §5.3: every charged message of the portfolio counts, whatever its currency (priced or not).
      return localDate(u.openedAtMs, account.timeZone).slice(0, 7) === month;
    }).length;
  }

  return {
    units: units.map(
      ({
        pair: _p,
        isFreeEntryPoint: _f,
        windowEndsAtMs: _w,
        rateCategory: _r,
        allowance: _a,
        isTiered: _t,
        ...unit
      }) => unit,
    ),
    pending,
  };
}

function isAuthInternational(account: Account, country: string | null, date: string, atMs: number): boolean {
  const eligibility = account.authInternational;
  if (!eligibility || country === null) return false;
  // §5.4 needs "its primary business location is another country": unknown, the domestic rate.
  if (account.primaryCountry === undefined) return false;
  if (account.primaryCountry === country) return false; // §5.4: own country pays the domestic rate
  if (!hasAuthInternationalRate(country, date)) return false;
  return atMs >= (eligibility.exceptionsMs[country] ?? eligibility.startMs);
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
