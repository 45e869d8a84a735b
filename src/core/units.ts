// The engine's output: billable units (conversations or messages), pending messages and findings.
// Field names follow Meta's vocabulary; contract.md §4 is the public JSON shape (see report.ts).

export type Era = 'NBP' | 'CBP-2022' | 'CBP-2023' | 'CBP-2024-11' | 'PMP-2025' | 'PMP-2026-10';
export const ERAS: readonly Era[] = ['NBP', 'CBP-2022', 'CBP-2023', 'CBP-2024-11', 'PMP-2025', 'PMP-2026-10'];

export type PricingModel = 'NBP' | 'CBP' | 'PMP';

export type UnitCategory =
  | 'marketing'
  | 'utility'
  | 'authentication'
  | 'authentication_international'
  | 'service'
  | 'referral_conversion'
  | 'business_initiated'
  | 'user_initiated';

export const UNIT_CATEGORIES: readonly UnitCategory[] = [
  'marketing',
  'utility',
  'authentication',
  'authentication_international',
  'service',
  'referral_conversion',
  'business_initiated',
  'user_initiated',
];

export type PricingType = 'regular' | 'free_tier' | 'free_entry_point' | 'free_customer_service';
export const PRICING_TYPES: readonly PricingType[] = [
  'regular',
  'free_tier',
  'free_entry_point',
  'free_customer_service',
];

/** The rate-card column a unit is priced from (a unit's category, or `utility` for PMP-2026-10 service). */
export type RateCategory =
  | 'marketing'
  | 'utility'
  | 'authentication'
  | 'authentication_international'
  | 'service'
  | 'business_initiated'
  | 'user_initiated';

export interface TierPosition {
  /** The unit's own place in its portfolio × market × category × month count (1-based). */
  count: number;
  /** The band it fell in, as "from:to" ("1:100000", "100001:" for an open end). */
  band: string;
  month: string;
}

export interface BillableUnit {
  id: string;
  unit: 'conversation' | 'message';
  pricingModel: PricingModel;
  era: Era;
  waba: string;
  business: string;
  user: string;
  country: string | null;
  market: string | null;
  category: UnitCategory;
  type: PricingType;
  openedAtMs: number;
  /** End of the conversation's 24 h (or the free entry point's 72 h); `null` for message units. */
  expiresAtMs: number | null;
  /** Set when the conversation ended early (a free entry point closes other conversations). */
  closedAtMs?: number;
  /** Business messages the unit covers, in order of delivery. */
  messages: string[];
  /** Rate of the unit's category and market on the card in force; `null` when none is known. */
  rateMicros: number | null;
  /** What Meta charges: 0 for a free unit; `null` when it cannot be priced (a finding says why). */
  amountMicros: number | null;
  currency: string;
  rateCard: string | null;
  tier?: TierPosition;
  /** The market came from a fallback (calling code, earlier number, contacts' country). */
  isMarketInferred?: boolean;
  /**
   * The template category came from Meta's status webhook (`pricing.category` / `conversation.origin.type`):
   * no outbound line was fed for the message that opened the unit (contract §1, `CATEGORY_FROM_WEBHOOK`).
   */
  isCategoryFromWebhook?: boolean;
  /** The rule that decided the unit's category and price, as a stable code (see explain). */
  rule: string;
}

export interface PendingMessage {
  id: string;
  waba: string;
  business: string;
  user: string;
  sentAtMs: number;
}

/** Every finding's code (a filter names one of them: `GET /v1/findings?code=`). */
export const FINDING_CODES = [
  'UNKNOWN_RECIPIENT',
  'MARKET_FROM_CALLING_CODE',
  'MARKET_INFERRED',
  'NO_RATE',
  'NO_RATE_CARD',
  'CATEGORY_FROM_WEBHOOK',
  'UNKNOWN_CATEGORY',
  'STATUS_WITHOUT_USER',
  'READ_RECEIPT_ONLY',
  'RATE_CARD_OF_OTHER_MODEL',
  'REPORTED_RULES',
  'DELIVERED_AND_FAILED',
  'MESSAGE_OF_TWO_WABAS',
  'NUMBER_OF_TWO_WABAS',
  'NO_WINDOW_IN_INPUT',
  'DELIVERED_BEFORE_SENT',
  'LATE_EVENT',
  'TEMPLATE_RECATEGORISED',
  'PREVIOUS_CATEGORY_DISAGREES',
  'META_DISAGREES',
  'META_TIER_AHEAD',
  'TIER_STATEMENT_NOT_APPLIED',
  'AUTH_INTERNATIONAL_NO_LOCATION',
  'COPIES_DISAGREE',
  'RECIPIENT_DISAGREES',
  'WABA_UNKNOWN',
  'ERA_NOT_SUPPORTED',
  'GROUP_MESSAGES_NOT_RATED',
  'ACCOUNT_NOT_LISTED',
  /** The service's: a WABA's stored bill is a re-rate's under other rules or cards than an on-demand answer's. */
  'BILL_RERATED',
] as const;

export type FindingCode = (typeof FINDING_CODES)[number];

export interface Finding {
  code: FindingCode;
  message: string;
  [detail: string]: unknown;
}

/** Why one business message was free or charged: the line `explain` prints for it. */
export interface MessageDecision {
  messageId: string;
  waba: string;
  business: string;
  user: string;
  deliveredAtMs: number;
  template: string | null;
  era: Era;
  unitId: string;
  /** Stable rule code, e.g. CBP_OPEN_CONVERSATION, CBP_RIDE, PMP_UTILITY_IN_CSW, FEP_OPEN. */
  rule: string;
  /** The rule in words. */
  reason: string;
  /** What Meta's status webhooks said about this message (pricing, conversation), verbatim. */
  meta?: { pricing?: Record<string, unknown>; conversation?: Record<string, unknown> };
}

/** One line of a user's story, for `explain`: a user's message, or a business message and its verdict. */
export interface TimelineEntry {
  atMs: number;
  kind: 'inbound' | 'message';
  /** The WABA of the pair (what a key limited to some WABAs may see). */
  waba: string;
  business: string;
  messageId: string;
  unitId?: string;
  era?: Era;
  rule?: string;
  reason: string;
}

export interface RatingResult {
  units: BillableUnit[];
  pending: PendingMessage[];
  findings: Finding[];
}
