// Which of a rating's findings concern one user's story (`wameter explain`, `GET /v1/explain`): those that name the user, one of
// the story's messages or business numbers, a price missing from one of its units, or its WABA as a whole.
// Never another user's: a finding about someone else's number or message is not this story's, and a story never
// names another user's unit or message id, even a user of its own WABA (docs/decisions.md, "A story's findings").

import { localDate } from '../core/calendar.js';
import type { BillableUnit, Finding, FindingCode } from '../core/units.js';

/** What the story holds, to match findings against. */
export interface StoryScope {
  user: string;
  /** The units the story shows (of its business number, when one was asked for). */
  units: readonly BillableUnit[];
  /** Business messages and user messages of the story, pending and failed ones included. */
  messageIds: ReadonlySet<string>;
  businesses: ReadonlySet<string>;
  wabas: ReadonlySet<string>;
  /** Each WABA's time zone, as the rating used it: the local day a finding retold with the story's unit names. */
  timeZoneOf: (waba: string) => string;
}

/**
 * Findings of one number: told when it is the story's. A finding with a message id names the first of
 * several messages of a WABA ("first: …", "e.g. …"), and is told with the WABA (or, of two WABAs, either).
 */
const OF_ONE_NUMBER: ReadonlySet<FindingCode> = new Set([
  'UNKNOWN_RECIPIENT',
  'MARKET_FROM_CALLING_CODE',
  'MARKET_INFERRED',
]);

/**
 * Findings that name one message (or unit) of their WABA as an example (`message_id`, `unit_id`: "first: …",
 * "e.g. …") and are about the WABA's input or units as a whole: told with every story they concern, with the
 * example withheld when it is not the story's (`withheld`). Messages never rated (UNKNOWN_CATEGORY,
 * STATUS_WITHOUT_USER) are the WABA's: whose they are is unknown, so the story cannot tell it is not among them.
 */
const OF_THE_WABA_NAMING_AN_EXAMPLE: ReadonlySet<FindingCode> = new Set([
  'NO_WINDOW_IN_INPUT',
  'UNKNOWN_CATEGORY',
  'STATUS_WITHOUT_USER',
  'READ_RECEIPT_ONLY',
  'GROUP_MESSAGES_NOT_RATED',
  'DELIVERED_AND_FAILED',
  'DELIVERED_BEFORE_SENT',
  'MESSAGE_OF_TWO_WABAS',
  'COPIES_DISAGREE',
  'META_DISAGREES',
  'PREVIOUS_CATEGORY_DISAGREES',
  'WABA_UNKNOWN',
  'RATE_CARD_OF_OTHER_MODEL',
]);

/** Findings naming the numbers of one message's user: told only with the story whose message they name. */
const OF_ONE_MESSAGE: ReadonlySet<FindingCode> = new Set(['RECIPIENT_DISAGREES']);

/** The scope of a story told from its timeline, its messages never charged and its units. */
export function storyScopeOf(
  user: string,
  story: {
    timeline: readonly { messageId: string; business: string; waba: string }[];
    unrated: readonly { id: string; business: string; waba: string }[];
    units: readonly BillableUnit[];
  },
  timeZoneOf: (waba: string) => string,
): StoryScope {
  const parts = [...story.timeline, ...story.unrated, ...story.units];
  return {
    user,
    units: story.units,
    messageIds: new Set([
      ...story.timeline.map((line) => line.messageId),
      ...story.unrated.map((message) => message.id),
      ...story.units.flatMap((unit) => unit.messages),
    ]),
    businesses: new Set(parts.map((part) => part.business)),
    wabas: new Set(parts.map((part) => part.waba)),
    timeZoneOf,
  };
}

/**
 * The findings of the story. A finding's `count` is the rating's, of its whole WABA (or portfolio): where the
 * story's own share can be counted from its units, `story_count` says it (a WABA's `NO_RATE` ×4, one unit of
 * which is this user's: `count` 4, `story_count` 1), so that a story never passes the WABA's count off as its own.
 */
export function findingsOfStory(findings: readonly Finding[], story: StoryScope): Finding[] {
  return findings
    .filter((finding) => isOfStory(finding, story))
    .flatMap((finding) => {
      const told = toldWithStory(finding, story);
      if (told === undefined) return [];
      const storyCount = storyCountOf(finding, story);
      return storyCount === undefined ? [told] : [{ ...told, story_count: storyCount }];
    });
}

/** What the story may hear of a finding about it: never another user's unit or message id (undefined: nothing). */
function toldWithStory(finding: Finding, story: StoryScope): Finding | undefined {
  const messageId = textOf(finding, 'message_id');
  const unitId = textOf(finding, 'unit_id');
  const isOwnMessage = messageId === undefined || story.messageIds.has(messageId);
  const isOwnUnit = unitId === undefined || story.units.some((unit) => unit.id === unitId);
  if (finding.code !== 'REPORTED_RULES' && isOwnMessage && isOwnUnit) return finding;
  if (finding.code === 'REPORTED_RULES') {
    if (unitId !== undefined && isOwnUnit) return finding;
    // The story's own units rated under the reported era tell it exactly: named by its first one.
    const first = unitsUnderReportedRules(finding, story).sort(
      (a, b) => a.openedAtMs - b.openedAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    )[0];
    const date = textOf(finding, 'date');
    const example = `unit ${unitId}, on ${date}`;
    if (first === undefined || date === undefined || !finding.message.includes(example)) return undefined;
    const ownDate = localDate(first.openedAtMs, story.timeZoneOf(first.waba));
    return {
      ...finding,
      message: finding.message.replace(example, `unit ${first.id}, on ${ownDate}`),
      unit_id: first.id,
      date: ownDate,
    };
  }
  if (!OF_THE_WABA_NAMING_AN_EXAMPLE.has(finding.code)) return undefined;
  let message = finding.message;
  const { message_id: _message, unit_id: _unit, ...rest } = finding;
  if (!isOwnMessage) message = withheld(message, messageId!, WITHHELD);
  if (!isOwnUnit) message = withheld(message, unitId!, WITHHELD);
  // Never told with the id still in its words (an id inside a longer word is not withheld).
  if ((!isOwnMessage && message.includes(messageId!)) || (!isOwnUnit && message.includes(unitId!))) {
    return undefined;
  }
  return { ...rest, message };
}

/** What a story's finding says in place of a unit or message id that is not the story's. */
export const WITHHELD = "[not this user's]";

/** `text` with every whole occurrence of `id` put as `words`. */
function withheld(text: string, id: string, words: string): string {
  let out = '';
  let from = 0;
  const isIdChar = (char: string | undefined) => char !== undefined && /\w/.test(char);
  for (let at = text.indexOf(id); at !== -1; at = text.indexOf(id, at + id.length)) {
    if (isIdChar(text[at - 1]) || isIdChar(text[at + id.length])) continue;
    out += text.slice(from, at) + words;
    from = at + id.length;
  }
  return out + text.slice(from);
}

/** The story's units of the finding's WABA rated under the rules only reported by third parties. */
function unitsUnderReportedRules(finding: Finding, story: StoryScope): BillableUnit[] {
  return story.units.filter((unit) => unit.era === 'PMP-2026-10' && unit.waba === textOf(finding, 'waba'));
}

/** A unit charged but left without a price. */
const isUnpriced = (unit: BillableUnit) => unit.type === 'regular' && unit.amountMicros === null;

const textOf = (finding: Finding, key: string): string | undefined =>
  typeof finding[key] === 'string' ? (finding[key] as string) : undefined;

/**
 * The units a missing rate left unpriced: the finding's own (one per WABA, card, market and category).
 * PMP-2026-10 prices service messages from the utility column.
 */
function isUnpricedBy(finding: Finding, unit: BillableUnit): boolean {
  const category = textOf(finding, 'category');
  const waba = textOf(finding, 'waba');
  return (
    isUnpriced(unit) &&
    (waba === undefined || unit.waba === waba) &&
    unit.rateCard === textOf(finding, 'rate_card') &&
    unit.market === textOf(finding, 'market') &&
    (unit.category === category || (unit.category === 'service' && category === 'utility'))
  );
}

/**
 * How many of the finding's cases are the story's, where its units tell exactly (the rating counts these
 * findings once per unit of their key); `undefined` where they cannot (a WABA's messages without a category,
 * windows missing from the input…): then the count is the WABA's only.
 */
function storyCountOf(finding: Finding, story: StoryScope): number | undefined {
  const waba = textOf(finding, 'waba');
  const ofWaba = (unit: BillableUnit) => waba === undefined || unit.waba === waba;
  switch (finding.code) {
    case 'NO_RATE':
      return story.units.filter((unit) => isUnpricedBy(finding, unit)).length;
    // Keyed by WABA and user: every unit of the user in that WABA, which has no market.
    case 'UNKNOWN_RECIPIENT':
      return textOf(finding, 'number') === story.user
        ? story.units.filter((unit) => ofWaba(unit) && unit.market === null).length
        : undefined;
    case 'CATEGORY_FROM_WEBHOOK':
      return story.units.filter((unit) => ofWaba(unit) && unit.isCategoryFromWebhook === true).length;
    // Counted once per unit of the WABA rated under the era.
    case 'REPORTED_RULES':
      return unitsUnderReportedRules(finding, story).length;
    default:
      return undefined;
  }
}

function isOfStory(finding: Finding, story: StoryScope): boolean {
  const text = (key: string): string | undefined =>
    typeof finding[key] === 'string' ? (finding[key] as string) : undefined;
  const messageId = text('message_id');
  if (text('number') === story.user || text('user') === story.user) return true;
  if (messageId !== undefined && story.messageIds.has(messageId)) return true;
  if (OF_ONE_NUMBER.has(finding.code) || OF_ONE_MESSAGE.has(finding.code)) return false;
  switch (finding.code) {
    // Rules only reported by third parties: told with the story's units rated under them, of that WABA.
    case 'REPORTED_RULES':
      return unitsUnderReportedRules(finding, story).length > 0;
    // A missing price: told with the units it left unpriced, of its own WABA (each WABA has its own finding).
    case 'NO_RATE':
      return story.units.some((unit) => isUnpricedBy(finding, unit));
    // Charges priced from a card of the other pricing model: told with the story's units it priced (the
    // finding names the first of its WABA's only). A card prices units of both kinds only on dates where
    // conversations and messages meet, so a story whose units from that card are all of its own kind is rare.
    case 'RATE_CARD_OF_OTHER_MODEL':
      return story.units.some((unit) => unit.waba === text('waba') && unit.rateCard === text('rate_card'));
    case 'NO_RATE_CARD':
      return story.units.some(
        (unit) => isUnpriced(unit) && unit.rateCard === null && unit.currency === text('currency'),
      );
    case 'META_TIER_AHEAD':
      // Tiers count authentication-international with authentication.
      return story.units.some(
        (unit) =>
          unit.tier?.month === text('month') &&
          unit.market === text('market') &&
          (unit.category === text('category') ||
            (unit.category === 'authentication_international' && text('category') === 'authentication')),
      );
    // Meta's category against wameter's: told with the story's units of that WABA and of wameter's category
    // (the one that names the story's own message is told above whatever its category).
    case 'META_DISAGREES':
      return story.units.some((unit) => unit.waba === text('waba') && unit.category === text('category'));
    case 'CATEGORY_FROM_WEBHOOK':
      return story.units.some((unit) => unit.isCategoryFromWebhook === true && unit.waba === text('waba'));
    case 'AUTH_INTERNATIONAL_NO_LOCATION':
      return story.units.some((unit) => unit.category === 'authentication' && unit.waba === text('waba'));
    // A business number of two WABAs, or one whose statuses name no WABA: told with that number's story.
    case 'NUMBER_OF_TWO_WABAS':
    case 'WABA_UNKNOWN':
      return story.businesses.has(text('business') ?? '');
    // Message ids that events of two WABAs name: told with the stories of either WABA.
    case 'MESSAGE_OF_TWO_WABAS':
      return story.wabas.has(text('waba') ?? '') || story.wabas.has(text('other_waba') ?? '');
    default: {
      // Of a whole WABA (windows missing from the input, messages without a category, copies that disagree…):
      // told with every story of that WABA, whose verdicts it may change. A finding naming no WABA, with all.
      const waba = text('waba');
      return waba === undefined || story.wabas.has(waba);
    }
  }
}
