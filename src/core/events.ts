// The engine's input: what happened, as plain values. Readers in src/ingest turn event lines and Meta's
// webhooks into these; the engine never sees JSON or files.

/** A template's category at the time it was sent; `null` is a non-template (free-form) message. */
export type TemplateCategory = 'marketing' | 'utility' | 'authentication';

/** Whether `value` is a template category, as contract §1 and Meta's template_category_update (lower-cased) name them. */
export function isTemplateCategory(value: unknown): value is TemplateCategory {
  return value === 'marketing' || value === 'utility' || value === 'authentication';
}

export type DeliveryStatus = 'sent' | 'delivered' | 'read' | 'failed';

/**
 * Every word Meta documents for a message's status in its webhooks: the contract's four, `played` (a voice
 * message played), `deleted` (a message the user deleted) and `warning` (a catalog message's item). Webhooks
 * keep any word; one of no such (`Delivered`, `delivred`) decides nothing, and the reader says so.
 */
export const META_STATUS_WORDS: readonly string[] = [
  'sent',
  'delivered',
  'read',
  'failed',
  'played',
  'deleted',
  'warning',
];

/** Meta's own words about a message, kept verbatim as evidence for reconciliation (never an input). */
export interface MetaPricingEvidence {
  billable?: boolean;
  pricing_model?: string;
  category?: string;
  type?: string;
}
export interface MetaConversationEvidence {
  id?: string;
  expiration_timestamp?: string | number;
  origin?: { type?: string };
}

/** What one copy of a status named of its recipient (`StatusEvent.namesOfCopies`). */
export interface StatusNames {
  business?: string;
  user?: string;
  userCountryHint?: string;
  scopedUserId?: string;
}

/** The fields on which copies of one event said different things (not where one copy said nothing). */
export type CopyField =
  'user' | 'business' | 'template' | 'templateName' | 'userCountryHint' | 'scopedUserId';

export interface InboundEvent {
  kind: 'inbound';
  atMs: number;
  waba: string;
  business: string;
  user: string;
  id: string;
  /** The message came through a click-to-WhatsApp ad or a Page call-to-action. */
  hasReferral: boolean;
  /** Country of the user from `contacts[].profile.country_code`, when Meta sent it. */
  userCountryHint?: string;
  /** Meta's business-scoped id of the same user, when the event also gives the number (`user`). */
  scopedUserId?: string;
  /** A store merged copies of this event that disagreed on these fields (event-copies.ts): a finding. */
  copiesDisagreeOn?: readonly CopyField[];
  /**
   * Set by a store's listing only (never read from input): the stored row ties nothing (`events.business` NULL:
   * a writer not trusted with its number, or copies of which none named the number kept), so the rater counts
   * no tie of its WABA, number and user for it (docs/storage.md), though it names all three.
   */
  isUntied?: true;
}

export interface OutboundEvent {
  kind: 'outbound';
  atMs: number;
  waba: string;
  business: string;
  user: string;
  id: string;
  template: TemplateCategory | null;
  /** The template's name, when the sender's log has it (used with template_category_update). */
  templateName?: string;
  /** The sender's own log already knows the message was delivered at this instant. */
  deliveredAtMs?: number;
  /** The sender's own log already knows the message failed. */
  isFailed?: boolean;
  /** A store merged copies of this event that disagreed on these fields (event-copies.ts): a finding. */
  copiesDisagreeOn?: readonly CopyField[];
  /**
   * Set by a store's listing only (never read from input): the stored row ties nothing (`events.business` NULL:
   * a writer not trusted with its number, or copies of which none named the number kept), so the rater counts
   * no tie of its WABA, number and user for it (docs/storage.md), though it names all three.
   */
  isUntied?: true;
}

export interface StatusEvent {
  kind: 'status';
  atMs: number;
  id: string;
  /** Meta's status word; unknown words (e.g. `played`) are kept but decide nothing. */
  status: DeliveryStatus | (string & {});
  waba?: string;
  business?: string;
  user?: string;
  userCountryHint?: string;
  /** Meta's business-scoped id of the same user, when the status also gives the number (`user`). */
  scopedUserId?: string;
  pricing?: MetaPricingEvidence;
  conversation?: MetaConversationEvidence;
  /**
   * `group`: Meta's status of a message to a WhatsApp group that Meta bills (`pricing.billable: true`; such a
   * status names no user). pricing-rules.md has no group rules: wameter rates nothing for it and says so
   * (GROUP_MESSAGES_NOT_RATED).
   */
  recipientType?: 'group';
  /**
   * Written by stores before copies of statuses kept `namesOfCopies`: the fields their copies differed on.
   * Read as nothing (`wameter rate` reads each copy of a status, and says no COPIES_DISAGREE of them).
   */
  copiesDisagreeOn?: readonly CopyField[];
  /**
   * A store merged copies of this status that named the recipient otherwise (a business-scoped id alone and
   * the number, a Brazilian mobile with and without its ninth digit, two numbers, two business numbers, two
   * country hints): what each copy named, sorted, so that the rater reads the row as the copies themselves,
   * as `wameter rate` reads them (event-copies.ts). Absent when every copy named the same.
   */
  namesOfCopies?: readonly StatusNames[];
  /**
   * Set by a store's listing only (never read from input): the stored row ties nothing (`events.business` NULL:
   * a writer not trusted with its number, or copies of which none named the number kept), so the rater counts
   * no tie of its WABA, number and user for it (docs/storage.md), though it names all three.
   */
  isUntied?: true;
}

/** Meta's account_update / template_category_update facts that change how a WABA is billed. */
export interface AccountUpdateEvent {
  kind: 'account_update';
  atMs: number;
  waba: string;
  /** VOLUME_BASED_PRICING_TIER_UPDATE, AUTH_INTL_PRICE_ELIGIBILITY_UPDATE, BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE, … */
  event: string;
  /** Primary business location (BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE). */
  primaryCountry?: string;
  /** Authentication-international eligibility (AUTH_INTL_PRICE_ELIGIBILITY_UPDATE). */
  authInternational?: AuthInternationalEligibility;
  /** Meta's statement of the tier the portfolio reached (informational, used by reconciliation). */
  volumeTier?: { tier: string; category: string; region?: string; effectiveMonth?: string };
}

export interface TemplateCategoryUpdateEvent {
  kind: 'template_category_update';
  atMs: number;
  waba: string;
  templateName: string;
  /** Meta's `message_template_id`: one name has one template per language, each with its own id. */
  templateId?: string;
  /** Meta's `message_template_language` (e.g. `en_US`), when the webhook gives it. */
  templateLanguage?: string;
  previousCategory?: string;
  newCategory: string;
}

export type CoreEvent =
  InboundEvent | OutboundEvent | StatusEvent | AccountUpdateEvent | TemplateCategoryUpdateEvent;

export interface AuthInternationalEligibility {
  /** From this instant the business pays international rates to eligible countries. */
  startMs: number;
  /** Per-country start instants that override `startMs` (ISO country → epoch ms). */
  exceptionsMs: Record<string, number>;
}

/** What wameter knows about a WABA (accounts file, contract §2, plus account_update webhooks). */
export interface Account {
  waba: string;
  timeZone: string;
  currency: string;
  portfolio: string;
  /** ISO country of the business's primary location (authentication-international), as configured. */
  primaryCountry?: string;
  /**
   * Meta's BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE statements, oldest first: from each one's instant the
   * location is its country (before the first, `primaryCountry`). A move changes later charges only.
   */
  primaryCountryChanges?: readonly PrimaryCountryChange[];
  authInternational?: AuthInternationalEligibility;
}

export interface PrimaryCountryChange {
  atMs: number;
  country: string;
}

export function defaultAccount(waba: string): Account {
  return { waba, timeZone: 'UTC', currency: 'USD', portfolio: waba };
}

/** The business's primary location at `atMs`: the latest statement made by then, else the configured one. */
export function primaryCountryAt(account: Account, atMs: number): string | undefined {
  let country = account.primaryCountry;
  for (const change of account.primaryCountryChanges ?? []) {
    if (change.atMs > atMs) break;
    country = change.country;
  }
  return country;
}

/** `changes` with one more statement, in time order (the same statement twice is kept once). */
export function withPrimaryCountryChange(
  changes: readonly PrimaryCountryChange[] | undefined,
  change: PrimaryCountryChange,
): PrimaryCountryChange[] {
  const all = [...(changes ?? [])];
  if (!all.some((c) => c.atMs === change.atMs && c.country === change.country)) all.push(change);
  return all.sort((a, b) => a.atMs - b.atMs || (a.country < b.country ? -1 : a.country > b.country ? 1 : 0));
}

/**
 * The idempotency key of an event: the same kind + id + status (contract §1) **within one WABA** is the same
 * event. The WABA leads the key, so that events written for one WABA (one client's API key) can never make
 * another WABA's event look like a duplicate. Layout: the WABA with `\` and `:` escaped (`\\`, `\:`), `:`,
 * then the kind's own key; an event that names no WABA (a status may omit it) starts with `:`, which an
 * escaped WABA never does. The stores' migration 3 builds the same keys in SQL (keep the two in step).
 */
export function eventKey(event: CoreEvent): string {
  const waba = event.waba === undefined ? '' : escapeKeyPart(event.waba);
  return `${waba}:${kindKey(event)}`;
}

/**
 * Meta states a portfolio's volume tier per category and region, and may send several statements with one
 * `tier_update_time` (utility and authentication, India and Indonesia): each is its own event, never a copy
 * of another (a copy's fields would be merged into one statement). Keys of other account updates, and of
 * statements stored before this part existed, are as they were: a redelivery of such a statement is stored
 * once more under the longer key, which changes nothing (a statement said twice is said once). The tier is
 * part of it too (thirty-eighth session): two statements differing in their tier alone are two, as `wameter
 * rate` applies them; as copies the stores kept the smaller text, the lower tier. A statement stored before
 * keeps its key without the tier; its redelivery is stored once more, which changes nothing either.
 */
function tierStatementKey(event: AccountUpdateEvent): string {
  const statement = event.volumeTier;
  if (statement === undefined) return '';
  return [statement.category, statement.region ?? '', statement.effectiveMonth ?? '', statement.tier]
    .map((part) => `:${escapeKeyPart(part)}`)
    .join('');
}

/**
 * One template name has a template per language, each with its own `message_template_id`, and Meta may move
 * two of them at one `time`: each is its own event, never a copy of the other. Updates stored before the id
 * and language were part of the key keep their shorter key (an update without either has it still); a
 * redelivery of such an update is stored once more under the longer key, which changes nothing (the rater
 * keeps one update per template, instant and category).
 */
function templateKey(event: TemplateCategoryUpdateEvent): string {
  if (event.templateId === undefined && event.templateLanguage === undefined) return '';
  return [event.templateId ?? '', event.templateLanguage ?? '']
    .map((part) => `:${escapeKeyPart(part)}`)
    .join('');
}

function escapeKeyPart(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll(':', '\\:');
}

function kindKey(event: CoreEvent): string {
  switch (event.kind) {
    case 'inbound':
    case 'outbound':
      return `${event.kind}:${event.id}`;
    case 'status':
      return `status:${event.id}:${event.status}`;
    case 'account_update':
      return `account_update:${event.waba}:${event.event}:${event.atMs}${tierStatementKey(event)}`;
    case 'template_category_update':
      return `template_category_update:${event.waba}:${event.templateName}:${event.atMs}${templateKey(event)}`;
  }
}
