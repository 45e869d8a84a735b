// Turns a traced rating into a user's story in words: each message of the user and of the business, the
// window or unit it opened or rode on, and what it cost and why — and the business messages that were never
// charged (pending, failed). Pure: no I/O.

import { formatInstant, localClock } from './calendar.js';
import type { CoreEvent, TemplateCategory } from './events.js';
import { formatMicros } from './money.js';
import { canonicalUser } from './phone.js';
import {
  csvField,
  totalsOf,
  unitToJson,
  unpricedNote,
  type PendingJson,
  type TotalsJson,
  type UnitJson,
} from './report.js';
import type { BillableUnit, TimelineEntry } from './units.js';

export interface ExplanationEntry {
  at: string;
  /** `pending`: sent, never delivered; `failed`: Meta or the send log said it failed. Neither is charged. */
  kind: 'inbound' | 'message' | 'closed' | 'expired' | 'pending' | 'failed';
  /** The WABA of the line's business number: a user several WABAs (a provider's clients) message has one story. */
  waba: string;
  business: string;
  message_id?: string;
  unit_id?: string;
  rule?: string;
  era?: string;
  /** What the line cost, in words ("0.0625 USD", "0 USD", "unpriced"); `amount` and `currency` as data. */
  cost?: string;
  text: string;
  /** The charge as a decimal string ("0.0625"; "0" for a message riding on a unit); null when unpriced. */
  amount?: string | null;
  currency?: string;
}

export interface FailedJson extends PendingJson {
  failed_at: string;
}

export interface Explanation {
  user: string;
  /**
   * The business-scoped user id asked for, when a batch joined it to `user`, its phone number (Meta gave both
   * on one message): the story is the number's.
   */
  scoped_user?: string;
  business: string | null;
  entries: ExplanationEntry[];
  units: UnitJson[];
  totals: TotalsJson;
  /**
   * Each WABA's own totals in the shape of `totals`, which they add up to: a provider whose clients (WABAs)
   * message one user re-bills each its own share (as `rate`'s `totals_by_waba`).
   */
  totals_by_waba: Record<string, TotalsJson>;
  /** The user's business messages sent but never delivered: reported, never charged (contract §1). */
  pending: PendingJson[];
  /** The user's business messages that failed (and were never delivered): never charged. */
  failed: FailedJson[];
}

/** A business message of the user that no unit covers: sent but never delivered, or failed. */
export interface UnratedMessage {
  id: string;
  waba: string;
  business: string;
  user: string;
  sentAtMs: number;
  /** Its category as sent; `null` a non-template; `undefined` when no send log line says. */
  template?: TemplateCategory | null;
  /** When it failed; absent for a pending message. */
  failedAtMs?: number;
}

/** Messages in the order they were sent, then by id: the same whatever order the events came in. */
export function bySending(a: UnratedMessage, b: UnratedMessage): number {
  return a.sentAtMs - b.sentAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export function explainUser(
  user: string,
  business: string | undefined,
  timeline: readonly TimelineEntry[],
  allUnits: readonly BillableUnit[],
  unrated: readonly UnratedMessage[] = [],
  /** Each WABA's time zone, as the rating used it: each unit's `local_date`. */
  timeZoneOf: (waba: string) => string = () => 'UTC',
): Explanation {
  const isShown = (of: { user: string; business: string }) =>
    of.user === user && (!business || of.business === business);
  const units = allUnits.filter(isShown);
  // By WABA and id: two WABAs' events may name one message id (MESSAGE_OF_TWO_WABAS), each with its own unit.
  const unitOf = (waba: string, id: string) => `${waba}\u0000${id}`;
  const unitById = new Map(units.map((u) => [unitOf(u.waba, u.id), u]));
  const entries: (ExplanationEntry & { atMs: number; order: number })[] = [];
  for (const line of timeline) {
    if (business && line.business !== business) continue;
    const entry: ExplanationEntry & { atMs: number; order: number } = {
      atMs: line.atMs,
      order: 1,
      at: formatInstant(line.atMs),
      kind: line.kind,
      waba: line.waba,
      business: line.business,
      message_id: line.messageId,
      text: line.reason,
    };
    if (line.kind === 'message' && line.unitId) {
      const unit = unitById.get(unitOf(line.waba, line.unitId));
      entry.unit_id = line.unitId;
      if (line.rule) entry.rule = line.rule;
      if (line.era) entry.era = line.era;
      if (unit && unit.messages[0] === line.messageId) {
        entry.cost =
          unit.amountMicros === null ? 'unpriced' : `${formatMicros(unit.amountMicros)} ${unit.currency}`;
        entry.text += ` \u2014 ${costInWords(unit)}`;
        entry.amount = unit.amountMicros === null ? null : formatMicros(unit.amountMicros);
      } else {
        entry.cost = `0 ${unit?.currency ?? ''}`.trim();
        entry.amount = '0';
      }
      if (unit) entry.currency = unit.currency;
    }
    entries.push(entry);
  }
  for (const unit of units) {
    if (unit.closedAtMs !== undefined) {
      entries.push({
        atMs: unit.closedAtMs,
        order: 0,
        at: formatInstant(unit.closedAtMs),
        kind: 'closed',
        waba: unit.waba,
        business: unit.business,
        unit_id: unit.id,
        // A free entry point conversation is closed only by a newer one: an ad click answered under
        // per-message pricing (pricing-rules §5.1) while one opened under CBP was still open.
        text:
          unit.category === 'referral_conversion'
            ? `free entry point ${unit.id} closed early by a new free entry point`
            : `${categoryInWords(unit.category)} conversation ${unit.id} closed early by a free entry point`,
      });
    } else if (unit.expiresAtMs !== null) {
      entries.push({
        atMs: unit.expiresAtMs,
        order: 0,
        at: formatInstant(unit.expiresAtMs),
        kind: 'expired',
        waba: unit.waba,
        business: unit.business,
        unit_id: unit.id,
        text: `${unit.category === 'referral_conversion' ? 'free entry point' : `${categoryInWords(unit.category)} conversation`} ${unit.id} ended`,
      });
    }
  }
  const shownUnrated = unrated
    .filter(isShown)
    .sort((a, b) => a.sentAtMs - b.sentAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const message of shownUnrated) {
    // Told at its send time: it never reached the user, so it opened and rode on nothing.
    entries.push({
      atMs: message.sentAtMs,
      order: 1,
      at: formatInstant(message.sentAtMs),
      kind: message.failedAtMs === undefined ? 'pending' : 'failed',
      waba: message.waba,
      business: message.business,
      message_id: message.id,
      text: unratedInWords(message),
    });
  }
  entries.sort((a, b) => a.atMs - b.atMs || a.order - b.order);
  const toJson = (message: UnratedMessage): PendingJson => ({
    id: message.id,
    waba: message.waba,
    business: message.business,
    user: message.user,
    sent_at: formatInstant(message.sentAtMs),
  });
  return {
    user,
    business: business ?? null,
    entries: entries.map(({ atMs: _atMs, order: _order, ...entry }) => entry),
    units: units.map((unit) => unitToJson(unit, timeZoneOf(unit.waba))),
    totals: totalsOf(units),
    totals_by_waba: Object.fromEntries(
      [...new Set(units.map((unit) => unit.waba))]
        .sort(compareWabas)
        .map((waba) => [waba, totalsOf(units.filter((unit) => unit.waba === waba))] as const),
    ),
    pending: shownUnrated.filter((m) => m.failedAtMs === undefined).map(toJson),
    failed: shownUnrated.flatMap((m) => (m.failedAtMs === undefined ? [] : [failedToJson(m)])),
  };
}

/** WABA ids in order: by length, then by text (numeric ids of one length sort as numbers), as `rate`'s. */
function compareWabas(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** A failed message of the user as explain's JSON lists it (`failed`). */
export function failedToJson(message: UnratedMessage): FailedJson {
  return {
    id: message.id,
    waba: message.waba,
    business: message.business,
    user: message.user,
    sent_at: formatInstant(message.sentAtMs),
    failed_at: formatInstant(message.failedAtMs ?? message.sentAtMs),
  };
}

/** Why a business message of the user cost nothing although it was sent, in words. */
function unratedInWords(message: UnratedMessage): string {
  const what =
    message.template === undefined
      ? `message ${message.id}`
      : message.template === null
        ? `non-template message ${message.id}`
        : `${message.template} template ${message.id}`;
  if (message.failedAtMs === undefined) return `${what} sent, never delivered: not charged`;
  return `${what} failed at ${formatInstant(message.failedAtMs)}: never charged`;
}

interface SendOfUser {
  waba: string;
  business: string;
  sentAtMs: number;
  template: TemplateCategory | null | undefined;
  hasOutbound: boolean;
  isDelivered: boolean;
}

/**
 * Watches the events for one user's business messages that failed. The rater charges a failed message
 * nothing and reports nothing of it, but the user's story must tell it. Keeps the user's own sends and the
 * failures (few), never the whole input; mirrors the rater: the send log's line wins over a status's names,
 * a message sent only as statuses was sent at its first status.
 */
export class UserSendLog {
  private readonly sends = new Map<string, SendOfUser>();
  private readonly failedAtMs = new Map<string, number>();
  /** Every business number the input names, whoever the user (to tell a wrong --business from a wrong user). */
  readonly businesses = new Set<string>();

  readonly user: string;

  /** `user` in any of its forms (canonicalUser: the rater's one id of the user). */
  constructor(user: string) {
    this.user = canonicalUser(user);
  }

  private isOfUser(user: string | undefined): boolean {
    return user !== undefined && (user === this.user || canonicalUser(user) === this.user);
  }

  observe(event: CoreEvent): void {
    switch (event.kind) {
      case 'inbound':
        this.businesses.add(event.business);
        return;
      case 'outbound': {
        this.businesses.add(event.business);
        if (event.isFailed) this.noteFailure(event.id, event.atMs);
        const known = this.sends.get(event.id);
        if (known?.hasOutbound) return; // a duplicate: the first line counts, as in the rater
        if (!this.isOfUser(event.user)) {
          if (known) this.sends.delete(event.id); // a status named this user, the send log another
          return;
        }
        this.sends.set(event.id, {
          waba: event.waba,
          business: event.business,
          sentAtMs: event.atMs,
          template: event.template,
          hasOutbound: true,
          isDelivered: event.deliveredAtMs !== undefined || (known?.isDelivered ?? false),
        });
        return;
      }
      case 'status': {
        if (event.business) this.businesses.add(event.business);
        if (event.status === 'failed') this.noteFailure(event.id, event.atMs);
        const isDelivery = event.status === 'delivered' || event.status === 'read';
        let known = this.sends.get(event.id);
        if (!known && this.isOfUser(event.user) && event.business) {
          known = {
            waba: event.waba ?? event.business,
            business: event.business,
            sentAtMs: event.atMs,
            template: undefined,
            hasOutbound: false,
            isDelivered: false,
          };
          this.sends.set(event.id, known);
        }
        if (!known) return;
        if (!known.hasOutbound && event.atMs < known.sentAtMs) known.sentAtMs = event.atMs;
        if (isDelivery) known.isDelivered = true;
        return;
      }
      default:
        return;
    }
  }

  /** The category a message of the user was sent as, when its send log line was seen. */
  templateOf(id: string): TemplateCategory | null | undefined {
    return this.sends.get(id)?.template;
  }

  /**
   * After every event: the user's messages that failed and were never delivered nor rated, in the order they
   * were sent (then by id), whatever order the events came in. `ratedIds` (the messages of the traced
   * timeline) settles a delivery this log could not attribute: one whose status named no user and came before
   * the send log line.
   */
  failed(ratedIds: ReadonlySet<string>): UnratedMessage[] {
    const failed: UnratedMessage[] = [];
    for (const [id, send] of this.sends) {
      const failedAtMs = this.failedAtMs.get(id);
      if (failedAtMs === undefined || send.isDelivered || ratedIds.has(id)) continue;
      failed.push({
        id,
        waba: send.waba,
        business: send.business,
        user: this.user,
        sentAtMs: send.sentAtMs,
        template: send.template,
        failedAtMs,
      });
    }
    return failed.sort(bySending);
  }

  private noteFailure(id: string, atMs: number): void {
    const previous = this.failedAtMs.get(id);
    if (previous === undefined || atMs < previous) this.failedAtMs.set(id, atMs);
  }
}

/**
 * What a unit cost, and why, in words. `said` names where the reason a price is missing is told: the findings
 * (a rating), the warnings (a quote).
 */
export function costInWords(unit: BillableUnit, said: 'findings' | 'warnings' = 'findings'): string {
  const where = [
    unit.market ?? 'unknown market',
    unit.rateCard ? `rate card ${unit.rateCard}` : 'no rate card',
  ]
    .filter(Boolean)
    .join(', ');
  switch (unit.type) {
    case 'regular':
      if (unit.amountMicros === null) return `charged, but no price is known (${where}): see ${said}`;
      return `charged ${formatMicros(unit.amountMicros)} ${unit.currency}${allowanceUsedWords(unit)} (${unit.category}${
        unit.category === 'authentication_international'
          ? ` — the rate for a business located outside ${unit.country ?? 'the recipient\u2019s country'}, eligible and past its start time there`
          : ''
      }, ${where}${
        unit.tier ? `, volume tier ${unit.tier.band}, message ${unit.tier.count} of ${unit.tier.month}` : ''
      })`;
    case 'free_tier':
      return `free: within the monthly free allowance (${where}${unit.rateMicros !== null ? `, would have cost ${formatMicros(unit.rateMicros)} ${unit.currency}` : ''})`;
    case 'free_entry_point':
      return 'free: free entry point';
    case 'free_customer_service':
      return 'free: customer service';
  }
}

/**
 * ", past the month's free allowance (1,000 free conversations of WABA W1, all used: this is the 1,001st)" for a unit
 * charged because its allowance was used up (its rule's `+ALLOWANCE_USED(used/limit)`), else ''.
 */
function allowanceUsedWords(unit: BillableUnit): string {
  const match = /\+ALLOWANCE_USED\((\d+)\/(\d+)\)/.exec(unit.rule);
  if (!match) return '';
  const [, used, limit] = match;
  const what =
    unit.unit === 'conversation'
      ? `free ${unit.category === 'service' ? 'service ' : ''}conversations of WABA ${unit.waba}`
      : `free service messages of business number ${unit.business}`;
  return `, past the month's free allowance (${Number(limit).toLocaleString('en-US')} ${what}, all used: this is the ${ordinal(Number(used))})`;
}

/** A unit's category as the story's words write it: `business-initiated`, not the code `business_initiated`. */
function categoryInWords(category: string): string {
  return category.replaceAll('_', '-');
}

function ordinal(n: number): string {
  const text = n.toLocaleString('en-US');
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${text}th`;
  return `${text}${['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;
}

/**
 * The explanation as lines of text for a terminal. `zoneOfBusiness`: the time zone of a business number's
 * WABA; each line of a WABA not on UTC shows its clock too, since its local date decides the era, the month
 * and the rate card ("2025-06-30T20:00:00Z (2025-07-01 08:00 Pacific/Auckland)"). When the story's units are
 * of several WABAs (a provider's clients messaging one user), each line names its WABA and the totals are also
 * given per WABA, each client's share.
 */
export function formatExplanation(
  explanation: Explanation,
  zoneOfBusiness: (business: string) => string | undefined = () => undefined,
): string {
  const wabas = Object.keys(explanation.totals_by_waba);
  const isOfSeveralWabas = wabas.length > 1;
  const lines: string[] = [];
  lines.push(
    `Timeline of user ${explanation.user}${explanation.business ? ` with business number ${explanation.business}` : ''}`,
  );
  if (explanation.scoped_user !== undefined) {
    lines.push(
      `  (business-scoped user ${explanation.scoped_user} is this number: Meta gave both on one message, so their messages share windows and conversations)`,
    );
  }
  if (explanation.entries.length === 0) {
    lines.push(
      explanation.business
        ? '  (no messages between this user and this business number in the input)'
        : '  (no messages for this user in the input)',
    );
  }
  for (const entry of explanation.entries) {
    const who = isOfSeveralWabas
      ? ` [WABA ${entry.waba}, number ${entry.business}]`
      : explanation.business
        ? ''
        : ` [${entry.business}]`;
    const zone = zoneOfBusiness(entry.business);
    const local =
      zone === undefined || zone === 'UTC' ? '' : ` (${localClock(Date.parse(entry.at), zone)} ${zone})`;
    lines.push(`  ${entry.at}${local}${who}  ${entry.text}`);
  }
  lines.push('');
  const { pending, failed } = explanation;
  if (pending.length > 0 || failed.length > 0) {
    lines.push(
      `Not charged: ${pending.length} message(s) sent but never delivered (pending), ${failed.length} failed`,
    );
  }
  for (const [currency, totals] of Object.entries(explanation.totals)) {
    lines.push(
      `Total: ${totals.amount} ${currency} over ${totals.units} unit(s)${unpricedNote(totals.unpriced)}`,
    );
  }
  if (isOfSeveralWabas) {
    lines.push('', 'By WABA');
    for (const waba of wabas) {
      for (const [currency, totals] of Object.entries(explanation.totals_by_waba[waba]!)) {
        lines.push(
          `  ${waba.padEnd(20)} ${currency}  ${totals.amount.padStart(12)}  over ${totals.units} unit(s)${unpricedNote(totals.unpriced)}`,
        );
      }
    }
  }
  return lines.join('\n');
}

const EXPLANATION_COLUMNS = [
  'at',
  'kind',
  'business',
  'message_id',
  'unit_id',
  'era',
  'rule',
  'cost',
  'text',
  // After `text`: the columns before them keep their places for scripts written earlier.
  'amount',
  'currency',
  // After them, for the same reason: the WABA of the line (a user several clients message).
  'waba',
] as const;

/** The story as CSV: one row per line, the same fields as the JSON entries. */
export function explanationCsv(explanation: Explanation): string {
  const rows = [EXPLANATION_COLUMNS.join(',')];
  for (const entry of explanation.entries) {
    rows.push(EXPLANATION_COLUMNS.map((column) => csvField(entry[column])).join(','));
  }
  return `${rows.join('\n')}\n`;
}
