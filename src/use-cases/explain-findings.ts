// Which of a rating's findings concern one user's story (`wameter explain`, `GET /v1/explain`): those that name the user, one of
// the story's messages or business numbers, a price missing from one of its units, or its WABA as a whole.
// Never another user's: a finding about someone else's number or message is not this story's.

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

/** The scope of a story told from its timeline, its messages never charged and its units. */
export function storyScopeOf(
  user: string,
  story: {
    timeline: readonly { messageId: string; business: string; waba: string }[];
    unrated: readonly { id: string; business: string; waba: string }[];
    units: readonly BillableUnit[];
  },
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
    .map((finding) => {
      const storyCount = storyCountOf(finding, story);
      return storyCount === undefined ? finding : { ...finding, story_count: storyCount };
    });
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
  if (OF_ONE_NUMBER.has(finding.code)) return false;
  switch (finding.code) {
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
