// Phase 2 of rating: puts a price on units in global time order. Monthly free allowances and volume
// tiers count across every pair of a WABA or portfolio, so units must arrive here sorted by opening time.

import {
  FREE_CONVERSATIONS_PER_MONTH,
  FREE_SERVICE_MESSAGES_PER_MONTH,
  eraOn,
  hasAuthInternationalRate,
  isConversationEra,
} from './eras.js';
import { primaryCountryAt, type Account } from './events.js';
import type { UnitDraft } from './pair-machine.js';
import type { MarketResolver, RateBook, RateCard, TierBand } from './pricing-context.js';
import type { Era, Finding, RateCategory } from './units.js';

/**
 * Where rate cards are given, for the findings' advice: the command line's flag, and the service's setting
 * (`import`, `rerate` and the service itself refuse `--rate-cards`: their cards are the service's).
 */
export const GIVE_RATE_CARDS = '--rate-cards; for the service, WAMETER_RATE_CARDS or "rateCards"';
/** How the rules only reported by third parties are switched off, on the command line and in the service. */
export const SWITCH_REPORTED_OFF =
  '--no-reported; for the service, WAMETER_REPORTED_RULES=off or "reportedRules": false';

export interface PricingContext {
  accountFor(waba: string): Account;
  rateBook: RateBook;
  markets: MarketResolver;
  findings: FindingCollector;
  /** Meta's own statements of the tier a portfolio reached (account_update webhooks). */
  tierStatements?: TierStatements;
  /**
   * The phone number seen with a business-scoped user id in the portfolio of `waba`, if any (its market is
   * the number's).
   */
  phoneOfScopedUser?(waba: string, user: string): string | undefined;
}

/**
 * Meta's `VOLUME_BASED_PRICING_TIER_UPDATE` webhooks: from `atMs` on, portfolio × market × category × month
 * has reached the band starting at `fromCount`. Meta counts every message of the portfolio, including traffic
 * wameter is not fed (other numbers, other providers), so its statement is a floor for wameter's own count.
 */
export class TierStatements {
  private readonly byKey = new Map<string, { atMs: number; fromCount: number; tier: string }[]>();

  /**
   * Takes a statement whose `key.market` is the market table's spelling; false when `tier` is no band
   * ("25001:100000", "100001:MAX") to read a count from (the caller says so: never dropped in silence). The
   * first band ("0:25000") is read and raises nothing.
   */
  add(
    key: { portfolio: string; market: string; category: string; month: string },
    atMs: number,
    tier: string,
  ): boolean {
    const start = tier.split(':')[0] ?? '';
    const fromCount = Number(start);
    if (!/^\d+$/.test(start) || !tier.includes(':') || !Number.isSafeInteger(fromCount)) return false;
    if (fromCount < 1) return true;
    const id = tierKey(key.portfolio, key.market, key.category, key.month);
    const list = this.byKey.get(id) ?? [];
    if (!list.some((s) => s.atMs === atMs && s.fromCount === fromCount)) list.push({ atMs, fromCount, tier });
    this.byKey.set(id, list);
    return true;
  }

  /** The highest band start Meta stated at or before `atMs` for a `tierKey`, or undefined. */
  floorAt(key: string, atMs: number): { fromCount: number; tier: string } | undefined {
    if (this.byKey.size === 0) return undefined; // the common case: Meta sent no tier webhook
    let best: { fromCount: number; tier: string } | undefined;
    for (const statement of this.byKey.get(key) ?? []) {
      if (statement.atMs <= atMs && (!best || statement.fromCount > best.fromCount)) best = statement;
    }
    return best;
  }
}

/** The counter key of a volume tier: portfolio × market × category × month. */
function tierKey(portfolio: string, market: string, category: string, month: string): string {
  return `${portfolio}|${market}|${category}|${month}`;
}

/**
 * The exemplar (FindingCollector.add) of a case at `atMs`: the smallest is the earliest, ties broken by id, so a
 * finding's "first: …" names the first case in time, whatever the order of the input.
 */
export function exemplarAt(atMs: number, id: string): string {
  const time = Number.isFinite(atMs)
    ? String(Math.max(0, Math.trunc(atMs))).padStart(16, '0')
    : '9'.repeat(16);
  return `${time}\u0000${id}`;
}

/** Findings, each said once per distinct key, with a count of how often it applied. */
export class FindingCollector {
  /** A finding made at once, or (`addWorded`) worded when listed. */
  private readonly byKey = new Map<string, { finding?: Finding; word?: () => Finding; count: number }>();
  /** Key → the exemplar its finding tells of, for findings that name one of several cases (`add`). */
  private readonly exemplars = new Map<string, string>();
  /** Key → the last day its cases fell on, for findings that name their days (`addOverDays`). */
  private readonly lastDays = new Map<string, string>();

  /**
   * Counts one more case of the finding `key`, made by `make` the first time. With `exemplar` (the case a
   * finding names: `exemplarAt`), the finding tells of the smallest exemplar, not of the first one read, so
   * that the order of the input changes no word of it. `make` runs at once and is not kept: what it reads
   * (a message's record, a unit's draft) is not held for the rest of a stream.
   */
  add(key: string, make: () => Finding, exemplar?: string): void {
    this.count(key, exemplar, () => ({ finding: make() }));
  }

  /**
   * `add`, but `word` runs when the findings are listed, once every line is read (a finding whose words
   * depend on lines still to come). `word` is kept until then: use it only where what it holds is bounded.
   */
  addWorded(key: string, word: () => Finding, exemplar?: string): void {
    this.count(key, exemplar, () => ({ word }));
  }

  private count(
    key: string,
    exemplar: string | undefined,
    made: () => { finding?: Finding; word?: () => Finding },
  ): void {
    const existing = this.byKey.get(key);
    if (!existing) {
      this.byKey.set(key, { ...made(), count: 1 });
      if (exemplar !== undefined) this.exemplars.set(key, exemplar);
      return;
    }
    existing.count += 1;
    const known = this.exemplars.get(key);
    if (exemplar !== undefined && known !== undefined && exemplar < known) {
      this.exemplars.set(key, exemplar);
      const { finding, word } = made();
      existing.finding = finding;
      existing.word = word;
    }
  }

  /**
   * `addWorded` for a finding whose cases fall on many days (a rate missing for weeks): `word` is given the
   * last local day its cases fell on (`day` of each, YYYY-MM-DD), so that the finding names the days it
   * concerns — its first (the exemplar's) and its last — not the first alone.
   */
  addOverDays(key: string, word: (lastDay: string) => Finding, exemplar: string, day: string): void {
    const last = this.lastDays.get(key);
    if (last === undefined || day > last) this.lastDays.set(key, day);
    this.addWorded(key, () => word(this.lastDays.get(key) ?? day), exemplar);
  }

  /**
   * In the order of their keys (code first), not the order they were first said: one said as lines are read
   * (MESSAGE_OF_TWO_WABAS, COPIES_DISAGREE) or at a flush would follow the order of the input.
   */
  list(): Finding[] {
    const keys = [...this.byKey.keys()].sort();
    return keys
      .map((key) => this.byKey.get(key)!)
      .map(({ finding, word, count }) => ({
        ...(word ? word() : finding!),
        count,
      }));
  }
}

export class UnitPricer {
  /** (WABA or business number) × month → units that drew on a free allowance so far. */
  private readonly allowanceCounts = new Map<string, number>();
  /** portfolio × market × category × month → charged messages so far (volume tiers). */
  private readonly tierCounts = new Map<string, number>();
  /**
   * Each counter's tierKey, by portfolio, market and category, for the last local day asked about (the key
   * names the day's month): made once a month, then found in maps whose keys keep their hashes, not built and
   * hashed anew for every charged unit, nor its month cut from its day. One entry per counter of any month.
   */
  private readonly tierKeys = new Map<
    string,
    Map<string, Map<string, { date: string; month: string; key: string }>>
  >();

  constructor(private readonly context: PricingContext) {}

  /** The last card asked of, and whether it lists rates per message: the same card for most units in turn. */
  private kindCard: RateCard | undefined;
  private isKindCardPerMessage = false;

  /** Whether `card` lists rates per message: the kind of the era in force on its effective date. */
  private isPerMessage(card: RateCard): boolean {
    if (card !== this.kindCard) {
      this.kindCard = card;
      this.isKindCardPerMessage = !isConversationEra(eraOn(card.effectiveDate, true));
    }
    return this.isKindCardPerMessage;
  }

  /** The tierKey of the counter of `date`'s month ("YYYY-MM-DD": its month is its first seven characters). */
  private tierKeyOf(portfolio: string, market: string, category: string, date: string): string {
    let byMarket = this.tierKeys.get(portfolio);
    if (byMarket === undefined) this.tierKeys.set(portfolio, (byMarket = new Map()));
    let byCategory = byMarket.get(market);
    if (byCategory === undefined) byMarket.set(market, (byCategory = new Map()));
    let day = byCategory.get(category);
    if (day === undefined) byCategory.set(category, (day = { date: '', month: '', key: '' }));
    if (day.date !== date) {
      const month = date.slice(0, 7);
      if (month !== day.month) {
        day.month = month;
        day.key = tierKey(portfolio, market, category, month);
      }
      day.date = date;
    }
    return day.key;
  }

  /** The markets this pricer places recipients in (an --as-of-rules era's, in a what-if). */
  get markets(): MarketResolver {
    return this.context.markets;
  }

  /** A copy whose counters start where this one's are, reporting to other findings (what-if pricing). */
  fork(findings: FindingCollector): UnitPricer {
    const copy = new UnitPricer({ ...this.context, findings });
    for (const [key, value] of this.allowanceCounts) copy.allowanceCounts.set(key, value);
    for (const [key, value] of this.tierCounts) copy.tierCounts.set(key, value);
    return copy;
  }

  /**
   * Prices `draft` as `price` does, but leaves the volume-tier counts as they were: a quote for a key that may
   * not read its portfolio's count, each of whose sends is priced as the portfolio's next charge (a campaign
   * moving through the bands would tell, by the line where its price changes, how far the count stands from
   * the next band: the mates' charges, and, quoted at each instant, when they came).
   */
  priceAtHeldTier(draft: UnitDraft): void {
    const held = new Map(this.tierCounts);
    try {
      this.price(draft);
    } finally {
      this.tierCounts.clear();
      for (const [key, value] of held) this.tierCounts.set(key, value);
    }
  }

  /** Fills in market, category refinements, type and price. Call in (openedAtMs, id) order. */
  /** When no card of the WABA's currency exists at all, the currency is the likelier mistake than the date. */
  private currencyHint(currency: string, waba: string): string {
    const cards = this.context.rateBook.cards;
    if (cards.some((card) => card.currency === currency)) return '';
    const loaded = [...new Set(cards.map((card) => card.currency))].sort().join(', ');
    return (
      `; no ${currency} card is loaded at all (loaded: ${loaded || 'none'}): WABA ${waba} is billed in ${currency} ` +
      `by the accounts file, or by default (USD) when the file does not list it — check its "currency"`
    );
  }

  price(draft: UnitDraft): void {
    const { findings } = this.context;
    const account = this.context.accountFor(draft.waba);
    const date = draft.openedOnLocalDate;
    if (draft.era === 'PMP-2026-10') {
      // Rules only reported by third parties are never applied without a word (pricing-rules, preamble).
      findings.add(
        `REPORTED_RULES:${draft.waba}`,
        () => ({
          code: 'REPORTED_RULES',
          message: `WABA ${draft.waba}: messages (first: unit ${draft.id}, on ${date}) were rated under PMP-2026-10, charged or free, rules reported by third parties and not yet in Meta's documentation (service messages and utility templates inside the customer service window charged, markets split); unless that era was chosen with --as-of-rules, switching those rules off (${SWITCH_REPORTED_OFF}) rates them under PMP-2025`,
          waba: draft.waba,
          // The unit named, and its local day: a story of another user retells the finding with its own.
          unit_id: draft.id,
          date,
        }),
        exemplarAt(draft.openedAtMs, draft.id),
      );
    }

    // A business-scoped id is priced at its number's market: still its own pair (a stream's id placed before
    // its number was known), or joined to the number's pair, then the unit's user is the number and the draft
    // remembers the id.
    const scopedUser = draft.scopedUser ?? draft.user;
    const phone =
      draft.scopedUser !== undefined ? draft.user : this.context.phoneOfScopedUser?.(draft.waba, draft.user);
    const place = this.context.markets.resolve(phone ?? draft.user, date, draft.countryHint);
    if (phone !== undefined && place.market !== null) {
      // Per WABA: a finding is its WABA's to see (a key of a portfolio mate never learns of this user).
      findings.add(`MARKET_INFERRED:${draft.waba}:${scopedUser}`, () => ({
        code: 'MARKET_INFERRED',
        message: `business-scoped user ${scopedUser} is priced at the market of the number Meta gave for it elsewhere (${phone})`,
        number: phone,
        waba: draft.waba,
      }));
      draft.isMarketInferred = true;
    }
    draft.country = place.country;
    draft.market = place.market;
    if (place.finding) {
      const finding = place.finding;
      findings.add(`${finding.code}:${draft.waba}:${draft.user}`, () => ({ ...finding, waba: draft.waba }));
      if (finding.code !== 'UNKNOWN_RECIPIENT') draft.isMarketInferred = true;
    }
    if (draft.isCategoryFromWebhook) {
      findings.add(`CATEGORY_FROM_WEBHOOK:${draft.waba}`, () => ({
        code: 'CATEGORY_FROM_WEBHOOK',
        message: `WABA ${draft.waba}: some messages had no outbound line; their template category was taken from Meta's status webhook`,
        waba: draft.waba,
      }));
    }

    if (
      draft.category === 'authentication' &&
      this.isAuthInternational(account, draft.waba, draft.country, date, draft.openedAtMs)
    ) {
      draft.category = 'authentication_international';
      draft.rateCategory = 'authentication_international';
      draft.rule += '+AUTH_INTERNATIONAL';
    } else if (
      draft.type === 'free_entry_point' &&
      draft.rateCategory === 'authentication' &&
      this.isAuthInternational(account, draft.waba, draft.country, date, draft.openedAtMs, false)
    ) {
      // A free entry point opened (or, under PMP, a message of it) by an authentication template shows the rate
      // it would have cost (contract §4): outside the window that template is charged the international rate.
      draft.rateCategory = 'authentication_international';
    }

    draft.currency = account.currency;
    const card = this.context.rateBook.cardInForce(account.currency, date);
    draft.rateCard = card?.id ?? null;
    const listRateMicros =
      card && draft.market ? card.rates.get(draft.market)?.[draft.rateCategory] : undefined;
    draft.rateMicros = listRateMicros ?? null;

    if (draft.allowance !== 'none' && draft.type === 'regular') {
      // Per WABA, or per business number of the WABA (reported PMP-2026-10 rule): a business number belongs
      // to one WABA, and another WABA's events naming it (a wrong send log, another client's key) never use
      // its allowance.
      const scope = draft.allowance === 'free-conversations' ? draft.waba : `${draft.waba}|${draft.business}`;
      const key = `${draft.allowance}|${scope}|${date.slice(0, 7)}`;
      const used = (this.allowanceCounts.get(key) ?? 0) + 1;
      this.allowanceCounts.set(key, used);
      const limit =
        draft.allowance === 'free-conversations'
          ? FREE_CONVERSATIONS_PER_MONTH
          : FREE_SERVICE_MESSAGES_PER_MONTH;
      if (used <= limit) {
        draft.type = 'free_tier';
        draft.rule += `+FREE_TIER(${used}/${limit})`;
      } else {
        // Charged because the month's allowance is used up: explain says so (costInWords).
        draft.rule += `+ALLOWANCE_USED(${used}/${limit})`;
      }
    }

    if (draft.type !== 'regular') {
      draft.amountMicros = 0;
      return;
    }

    // Every charged message counts toward its portfolio's tier, whatever its currency (§5.3): also one of a
    // WABA with no card in force for its currency (left unpriced, NO_RATE_CARD), or the portfolio's other
    // WABAs' messages would be counted low and over-priced.
    if (draft.isTiered && draft.market) {
      const countCategory =
        draft.category === 'authentication_international' ? 'authentication' : draft.category;
      const key = this.tierKeyOf(account.portfolio, draft.market, countCategory, date);
      let count = (this.tierCounts.get(key) ?? 0) + 1;
      // (The bundled cards have no bands: no key is made for them.)
      const bands =
        card !== undefined && card.tiers.size > 0
          ? card.tiers.get(`${draft.market}|${draft.rateCategory}`)
          : undefined;
      const stated = this.context.tierStatements?.floorAt(key, draft.openedAtMs);
      if (stated && stated.fromCount > count) {
        const counted = count;
        const month = date.slice(0, 7);
        // Without bands (the bundled cards have none) nothing is priced from a tier: the words say so.
        const priced = bands
          ? "later messages are priced from Meta's tier"
          : `no volume-tier bands are loaded for ${draft.rateCategory} in ${draft.market!}${card ? ` (rate card ${card.id})` : ''}, so the list rate is charged, not Meta's tier's rate: add Meta's volume-tier file for that card (a CSV whose name contains "tiers", e.g. usd-2025-10-01-tiers.csv, with --rate-cards; for the service, WAMETER_RATE_CARDS or "rateCards"; docs/rate-cards.md)`;
        findings.add(`META_TIER_AHEAD:${key}:${stated.tier}`, () => ({
          code: 'META_TIER_AHEAD',
          message: `Meta says portfolio ${account.portfolio} reached tier ${stated.tier} for ${countCategory} in ${draft.market!} in ${month}, but wameter counted ${counted}: some of the portfolio's traffic is not fed to wameter; ${priced}`,
          portfolio: account.portfolio,
          market: draft.market,
          category: countCategory,
          month,
          tier: stated.tier,
          waba: draft.waba,
        }));
        count = stated.fromCount;
      }
      this.tierCounts.set(key, count);
      const band = bands ? bandFor(bands, count) : undefined;
      if (band) {
        draft.rateMicros = band.rateMicros;
        draft.tier = { count, band: `${band.fromCount}:${band.toCount ?? ''}`, month: date.slice(0, 7) };
      }
    }

    if (draft.market === null) {
      draft.amountMicros = null; // UNKNOWN_RECIPIENT already names the number
      return;
    }
    if (!card) {
      draft.amountMicros = null;
      const { waba } = draft;
      findings.addOverDays(
        // Per WABA, as every finding a unit can be told by: the key of one WABA sees why its unit has no
        // price, and the count is that WABA's. One a month, naming its first and last day.
        `NO_RATE_CARD:${waba}:${account.currency}:${date.slice(0, 7)}`,
        (lastDate) => ({
          code: 'NO_RATE_CARD',
          message:
            lastDate === date
              ? `no ${account.currency} rate card is in force on ${date}: import Meta's rate card for that date (${GIVE_RATE_CARDS})${this.currencyHint(account.currency, waba)}`
              : `no ${account.currency} rate card is in force on ${date} \u2026 ${lastDate}: import Meta's rate card for those dates (${GIVE_RATE_CARDS})${this.currencyHint(account.currency, waba)}`,
          currency: account.currency,
          date,
          last_date: lastDate,
          waba,
        }),
        exemplarAt(draft.openedAtMs, draft.id),
        date,
      );
      return;
    }
    if (draft.rateMicros === null) {
      draft.amountMicros = null;
      // Worded once every unit is priced: a rate missing for weeks names its first and last day.
      const { market, rateCategory, waba, era } = draft;
      findings.addOverDays(
        `NO_RATE:${draft.waba}:${card.id}:${draft.market}:${draft.rateCategory}`,
        (lastDate) => noRateFinding(card, market, rateCategory, { date, lastDate }, waba, era),
        exemplarAt(draft.openedAtMs, draft.id),
        date,
      );
      return;
    }
    draft.amountMicros = draft.rateMicros;
    // Meta's cards list rates per message under notification pricing (before 2022-02-01), per conversation
    // from then until per-message pricing, per delivered message from it: the kind of the era in force on
    // the card's effective date. A charge priced from a card of the other kind (no card of its own kind is in
    // force on its date: a card missing from the bundled set, or a what-if under another era's rules) is
    // said, so that its amount is not taken for Meta's.
    const isCardPerMessage = this.isPerMessage(card);
    if (isCardPerMessage !== (draft.unit === 'message')) {
      const per = (isPerMessage: boolean) => (isPerMessage ? 'per delivered message' : 'per conversation');
      findings.add(
        `RATE_CARD_OF_OTHER_MODEL:${card.id}:${draft.unit}:${draft.waba}`,
        () => ({
          code: 'RATE_CARD_OF_OTHER_MODEL',
          message: `WABA ${draft.waba}: charges ${per(draft.unit === 'message')} (first: ${draft.id}, on ${date}) were priced from rate card ${card.id}, which lists rates ${per(isCardPerMessage)}, because no card of their own kind is in force on their dates; Meta's rates for them may differ: add Meta's card for those dates (${GIVE_RATE_CARDS})`,
          rate_card: card.id,
          unit_id: draft.id,
          date,
          waba: draft.waba,
        }),
        exemplarAt(draft.openedAtMs, draft.id),
      );
    }
  }

  private isAuthInternational(
    account: Account,
    waba: string,
    country: string | null,
    date: string,
    atMs: number,
    isCharged = true,
  ): boolean {
    const eligibility = account.authInternational;
    if (!eligibility || country === null) return false;
    if (!hasAuthInternationalRate(country, date)) return false;
    const startMs = eligibility.exceptionsMs[country] ?? eligibility.startMs;
    if (atMs < startMs) return false;
    // A business always pays its own country's rate: where it was located when the message was delivered.
    const home = primaryCountryAt(account, atMs);
    if (home === undefined) {
      // A free unit's shown rate alone is at stake: nothing was priced for want of the location.
      if (!isCharged) return false;
      // pricing-rules §5.4 needs "its primary business location is another country": unknown, not shown.
      this.context.findings.add(`AUTH_INTERNATIONAL_NO_LOCATION:${waba}`, () => ({
        code: 'AUTH_INTERNATIONAL_NO_LOCATION',
        message: `WABA ${waba} is eligible for authentication-international rates, but its primary business location is not known, so its authentication messages were priced at the domestic rate of their market: give "primary_country" in the accounts file (or feed Meta's BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE webhook)`,
        waba,
      }));
      return false;
    }
    return home !== country;
  }
}

function bandFor(bands: readonly TierBand[], count: number): TierBand | undefined {
  for (const band of bands) {
    if (count >= band.fromCount && (band.toCount === null || count <= band.toCount)) return band;
  }
  return undefined;
}

/** Meta's heading of each rate category's column, in the order of Meta's cards. */
const COLUMNS: readonly (readonly [RateCategory, string])[] = [
  ['marketing', 'Marketing'],
  ['utility', 'Utility'],
  ['authentication', 'Authentication'],
  ['authentication_international', 'Authentication-International'],
  ['service', 'Service'],
  ['business_initiated', 'Business-Initiated'],
  ['user_initiated', 'User-Initiated'],
];

/** CBP-2022's two categories: Meta's cards list them (and nothing else) until June 2023, never after. */
function isCbp2022Category(category: RateCategory): boolean {
  return category === 'business_initiated' || category === 'user_initiated';
}

/** The columns a card has a rate in for some market, per card (worded for each finding that lacks a rate). */
const columnsOfCard = new WeakMap<RateCard, readonly (readonly [RateCategory, string])[]>();

function columnsOf(card: RateCard): readonly (readonly [RateCategory, string])[] {
  let columns = columnsOfCard.get(card);
  if (!columns) {
    const rows = [...card.rates.values()];
    columns = COLUMNS.filter(([column]) => rows.some((rates) => rates[column] !== undefined));
    columnsOfCard.set(card, columns);
  }
  return columns;
}

/**
 * A missing rate, on the days of its units: `date` the first (its exemplar's), `lastDate` the last; the
 * message names both when they differ ("on 2025-09-03 … 2025-09-27").
 */
function noRateFinding(
  card: RateCard,
  market: string,
  category: RateCategory,
  days: { date: string; lastDate: string },
  waba: string,
  era: Era,
): Finding {
  const { lastDate } = days;
  const date = days.date === lastDate ? days.date : `${days.date} \u2026 ${lastDate}`;
  const fields = { market, category, date: days.date, last_date: lastDate, rate_card: card.id, waba };
  const where = `in rate card ${card.id} (${card.currency}, effective ${card.effectiveDate})`;
  const listed = columnsOf(card);
  // A card without the category at all (no column, or n/a throughout) is a card of other categories: most often
  // another era's (a what-if under CBP-2022 rules priced from a later card, or the reverse), and neither adding
  // the market's rate nor Meta's full card of that date helps.
  if (!listed.some(([column]) => column === category)) {
    const has =
      listed.length === 0 ? 'it lists no rate at all' : `only ${listed.map(([, name]) => name).join(', ')}`;
    const column = COLUMNS.find(([name]) => name === category)?.[1] ?? category;
    const columns = isCbp2022Category(category)
      ? 'Business-Initiated and User-Initiated columns'
      : `${/^[aeiou]/i.test(column) ? 'an' : 'a'} ${column} column`;
    const needed = `give a ${card.currency} card with ${columns} in force on ${date}`;
    const advice = isCbp2022Category(category)
      ? `business-initiated and user-initiated conversations are CBP-2022's, whose rates Meta's cards list only until June 2023; to price CBP-2022's rules (--as-of-rules CBP-2022) on later dates, ${needed} (--rate-cards; the card in force on a date is the latest one dated on or before it)`
      : listed.length > 0 && listed.every(([column]) => isCbp2022Category(column))
        ? `it is a card of CBP-2022's two categories, and these charges are rated under ${era} rules; ${needed} (${GIVE_RATE_CARDS})`
        : `add the column, or import Meta's full ${card.currency} card in force on ${date} (${GIVE_RATE_CARDS})`;
    const message = `no ${category} rate for market "${market}" on ${date} ${where}, nor for any other market: the card lists no ${category} rates at all (${has}): ${advice}`;
    return { code: 'NO_RATE', message, ...fields };
  }
  // A card without the market's row at all most often predates the market (a card cannot list a market not
  // yet in force on its date): the advice is a newer card, not a rate added to this one.
  const message = card.rates.has(market)
    ? `no ${category} rate for market "${market}" on ${date} ${where}: add the rate or import Meta's full card`
    : `no row for market "${market}" ${where}, so no ${category} rate on ${date}: import Meta's ${card.currency} card in force on ${date} (${GIVE_RATE_CARDS})${
        era === 'PMP-2026-10'
          ? `; "${market}" may be one of the markets split from their regions on 2026-10-01 under rules only reported by third parties (PMP-2026-10): with those rules switched off (${SWITCH_REPORTED_OFF}) it is priced in its former region`
          : ''
      }`;
  return { code: 'NO_RATE', message, ...fields };
}
