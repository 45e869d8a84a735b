// Which of Meta's billing eras is in force on a local date, and the other dated facts of pricing-rules.md §2.
// Dates are local dates in the WABA's time zone ("YYYY-MM-DD"); string comparison orders them.

import { DAY_MS, HOUR_MS } from './calendar.js';
import type { Era, PricingModel } from './units.js';

/** Meta charges per delivered message, not per conversation, from this local date (pricing-rules.md §2). */
export const PER_MESSAGE_PRICING_FROM = '2025-07-01';

// Meta, pricing-rules.md §2: each era is in force from 00:00 of this date in the WABA's time zone.
const ERA_STARTS: readonly { era: Era; from: string }[] = [
  { era: 'PMP-2026-10', from: '2026-10-01' }, // (reported) — applied only when reported rules are on
  { era: 'PMP-2025', from: PER_MESSAGE_PRICING_FROM },
  { era: 'CBP-2024-11', from: '2024-11-01' },
  { era: 'CBP-2023', from: '2023-06-01' },
  { era: 'CBP-2022', from: '2022-02-01' },
];

export function eraOn(localDate: string, isReportedRulesEnabled: boolean): Era {
  for (const { era, from } of ERA_STARTS) {
    if (localDate >= from) {
      if (era === 'PMP-2026-10' && !isReportedRulesEnabled) return 'PMP-2025';
      return era;
    }
  }
  return 'NBP';
}

export function pricingModelOf(era: Era): PricingModel {
  if (era === 'NBP') return 'NBP';
  return era.startsWith('PMP') ? 'PMP' : 'CBP';
}

export function isConversationEra(era: Era): boolean {
  return pricingModelOf(era) === 'CBP';
}

/** Customer service window: 24 h from the user's latest message. */
export const SERVICE_WINDOW_MS = 24 * HOUR_MS;
/** A conversation lasts 24 h from the delivery of the message that opened it. */
export const CONVERSATION_MS = 24 * HOUR_MS;
/** The business must answer an ad / Page CTA message within 24 h for a free entry point. */
export const FEP_ANSWER_MS = 24 * HOUR_MS;
/**
 * How far a business message's send may come before the user's message and still be taken for an answer to
 * it (a free entry point's): the sender's clock and Meta's differ by seconds; a message sent earlier than
 * this was written before the user wrote, whenever it was delivered. Also the skew a delivery may show before
 * its send before DELIVERED_BEFORE_SENT is said.
 */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** Meta retries undelivered messages for at most 30 days (template time-to-live). */
export const PENDING_TTL_MS = 30 * DAY_MS;

/**
 * Free entry point window: 24 h until 2023-02-28, 72 h from 2023-03-01 (Meta, CBP changelog) — a change
 * inside CBP-2022, so the eras after it always have 72 h, also when chosen with --as-of-rules for older
 * traffic.
 */
export function fepWindowMs(localDate: string, era: Era): number {
  const is72h = localDate >= '2023-03-01' || (era !== 'NBP' && era !== 'CBP-2022');
  return is72h ? 72 * HOUR_MS : 24 * HOUR_MS;
}

/** The longest any window stays open: a pair idle this long has nothing open. */
export const LONGEST_WINDOW_MS = 72 * HOUR_MS;

// Meta, authentication-international rates: the first local date each country's rate applies.
const AUTH_INTERNATIONAL_SINCE: Readonly<Record<string, string>> = {
  ID: '2024-06-01',
  IN: '2024-07-01',
  EG: '2025-02-01',
  MY: '2025-02-01',
  NG: '2025-02-01',
  PK: '2025-02-01',
  SA: '2025-02-01',
  ZA: '2025-02-01',
  AE: '2025-02-01',
};

export function hasAuthInternationalRate(country: string, localDate: string): boolean {
  const since = AUTH_INTERNATIONAL_SINCE[country];
  return since !== undefined && localDate >= since;
}

/** Monthly free allowances (pricing-rules.md §3–§6). */
export const FREE_CONVERSATIONS_PER_MONTH = 1000;
/** (reported) PMP-2026-10: first 1,000 delivered service messages per business number per month. */
export const FREE_SERVICE_MESSAGES_PER_MONTH = 1000;
