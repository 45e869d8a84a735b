// GET /v1/analytics read as a tool written for Meta's conversation_analytics / pricing_analytics reads it
// (developers.facebook.com/docs/whatsapp/analytics): PHONE answered as `phone_number`, the business number's
// display number; `phone_numbers` naming display numbers; Meta's filters (`country_codes`, `pricing_types`,
// `pricing_categories`, `conversation_*`), `metric_types`, lists written as Meta takes them, and the field
// names of the analytics the request's names speak of.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  conversationLines,
  createTestService,
  KEY_ALL,
  KEY_W1,
  KEY_W2,
  SECRET,
  serviceOn,
  type TestService,
} from '../../test/server-kit.js';
import { messagesWebhook } from '../../test/support/webhook-body.js';

let service: TestService;
afterEach(async () => {
  await service.close();
});

const RANGE = 'start=1751328000&end=1754006400'; // July 2025, in UTC: billed per message
// June 2025, in UTC: the last month billed per conversation, which conversation_analytics (metric=conversation)
// counts — it leaves July's messages out, as Meta's does.
const JUNE = 'start=1748736000&end=1751328000';
type Point = Record<string, unknown>;

/** conversationLines' traffic a month earlier, in June 2025: conversations (CBP-2024-11). */
function juneLines(waba: string, business: string, user: string, prefix: string): object[] {
  return conversationLines(waba, business, user, prefix).map((line) =>
    JSON.parse(JSON.stringify(line).replaceAll('2025-07-', '2025-06-')),
  );
}

async function points(query: string, key = KEY_ALL, range = RANGE): Promise<Point[]> {
  const response = await service.get(`/v1/analytics?${range}&${query}`, key);
  const body = (await response.json()) as { data: { data_points: Point[] }[]; error?: unknown };
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body.data[0]!.data_points;
}

async function refusal(query: string): Promise<string> {
  const response = await service.get(`/v1/analytics?${RANGE}&${query}`, KEY_ALL);
  const body = (await response.json()) as { error: { code: string; message: string } };
  expect(response.status, query).toBe(400);
  expect(body.error.code).toBe('BAD_QUERY');
  return body.error.message;
}

const count = (list: Point[], field = 'volume') =>
  list.reduce((sum, point) => sum + (point[field] as number), 0);

/** A user's message to W1's PN1 as Meta's webhook brings it, with the number's display number beside its id. */
function inboundWebhook(display: string, waba = 'W1', business = 'PN1') {
  return JSON.stringify(
    messagesWebhook(waba, {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: display, phone_number_id: business },
      contacts: [{ profile: { name: 'A' }, wa_id: '919876543210' }],
      messages: [
        {
          from: '919876543210',
          id: `wamid.hook.${business}`,
          timestamp: '1752137000',
          type: 'text',
          text: { body: 'hi' },
        },
      ],
    }),
  );
}

describe("PHONE: Meta's phone_number is the display number", () => {
  beforeEach(async () => {
    service = await createTestService({
      appSecrets: [SECRET, { secret: 'bound-app-secret', wabas: ['W2'] }],
    });
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '919876543210', 'wamid.w1'),
      ...conversationLines('W2', 'PN2', '5511987654321', 'wamid.w2'),
    ]);
  });

  it('answers the display number a webhook gave (digits only), the id beside it, and null where none did', async () => {
    expect((await service.postWebhook(inboundWebhook('+1 555-000-1111'))).status).toBe(200);
    const list = await points('granularity=MONTHLY&metric=pricing&dimensions=PHONE');
    expect(list.map((point) => [point.phone_number, point.phone_number_id, point.phone])).toEqual([
      ['15550001111', 'PN1', 'PN1'],
      [null, 'PN2', 'PN2'],
    ]);
    // conversation_analytics names it alike (it answered the phone_number_id there before), over June's
    // conversations: the display number is the number's, for all its history.
    await service.postEvents([
      ...juneLines('W1', 'PN1', '919876543210', 'wamid.j1'),
      ...juneLines('W2', 'PN2', '5511987654321', 'wamid.j2'),
    ]);
    const conversation = await points(
      'granularity=MONTHLY&metric=conversation&dimensions=PHONE,WABA',
      KEY_ALL,
      JUNE,
    );
    expect(
      conversation.map((point) => [point.phone_number, point.phone_number_id, 'phone' in point]),
    ).toEqual([
      ['15550001111', 'PN1', false],
      [null, 'PN2', false],
    ]);
  });

  it('keeps no display number from a body a secret bound to some WABAs signed: it may name any number', async () => {
    const bound = await service.postWebhook(inboundWebhook('15559999999', 'W2', 'PN2'), {
      secret: 'bound-app-secret',
    });
    expect(bound.status).toBe(200);
    const list = await points('granularity=MONTHLY&metric=pricing&dimensions=PHONE&waba=W2');
    expect(list.map((point) => point.phone_number)).toEqual([null]);
  });

  it("reads phone_numbers as display numbers (in any of Meta's list forms), or phone_number_ids", async () => {
    await service.postWebhook(inboundWebhook('15550001111'));
    const all = count(await points('granularity=MONTHLY&metric=pricing'));
    const pn1 = count(await points('granularity=MONTHLY&metric=pricing&waba=W1'));
    expect(pn1).toBeGreaterThan(0);
    expect(pn1).toBeLessThan(all);
    for (const numbers of ['15550001111', '["15550001111"]', '[+1 555 000 1111]', 'PN1']) {
      const list = await points(
        `granularity=MONTHLY&metric=pricing&phone_numbers=${encodeURIComponent(numbers)}`,
      );
      expect(count(list), numbers).toBe(pn1);
    }
    expect(
      count(
        await points(
          `granularity=MONTHLY&metric=pricing&phone_numbers=${encodeURIComponent('15550001111,PN2')}`,
        ),
      ),
    ).toBe(all);
    // A number of no WABA of the key's: nothing, as the `business` filter answers.
    expect(await points('granularity=MONTHLY&metric=pricing&phone_numbers=15550009999')).toEqual([]);
    // A key reads the display numbers of its own WABAs only: W2's key never finds W1's number by it.
    expect(await points('granularity=MONTHLY&metric=pricing&phone_numbers=15550001111', KEY_W1)).not.toEqual(
      [],
    );
    expect(await points('granularity=MONTHLY&metric=pricing&phone_numbers=15550001111', KEY_W2)).toEqual([]);
  });
});

describe.each(['SQLite', 'PostgreSQL'] as const)(
  "PHONE: display numbers from Meta's bodies posted as events (%s)",
  (engine) => {
    beforeEach(async () => {
      service = await serviceOn(engine, 'analytics_numbers');
      await service.postEvents([
        ...conversationLines('W1', 'PN1', '919876543210', 'wamid.w1'),
        ...conversationLines('W2', 'PN2', '5511987654321', 'wamid.w2'),
      ]);
    });

    it('keeps the display number of a webhook body posted to /v1/events by a key for every WABA', async () => {
      const posted = await service.postEvents(inboundWebhook('+1 555-000-1111'));
      expect(posted.status).toBe(200);
      const list = await points('granularity=MONTHLY&metric=pricing&dimensions=PHONE');
      expect(list.map((point) => [point.phone_number, point.phone_number_id])).toEqual([
        ['15550001111', 'PN1'],
        [null, 'PN2'],
      ]);
      // Posted again, its events all copies now, with another display number: the later one stands.
      await service.postEvents(inboundWebhook('15550002222'));
      expect(
        count(await points('granularity=MONTHLY&metric=pricing&phone_numbers=15550002222')),
      ).toBeGreaterThan(0);
    });

    it('keeps none from a key limited to some WABAs: its lines may name any number', async () => {
      expect((await service.postEvents(inboundWebhook('15559999999', 'W2', 'PN2'), KEY_W2)).status).toBe(200);
      const list = await points('granularity=MONTHLY&metric=pricing&dimensions=PHONE&waba=W2');
      expect(list.map((point) => point.phone_number)).toEqual([null]);
    });
  },
);

describe.each(['SQLite', 'PostgreSQL'] as const)(
  'metric=conversation: conversations only, and what it left out under the same filters (%s)',
  (engine) => {
    it("counts June's conversations, not July's messages, and says how many of those its filters matched", async () => {
      service = await serviceOn(engine, 'analytics_eras');
      await service.postEvents([
        ...conversationLines('W1', 'PN1', '919876543210', 'wamid.w1'),
        ...conversationLines('W2', 'PN2', '5511987654321', 'wamid.w2'),
        ...juneLines('W1', 'PN1', '919876543210', 'wamid.j1'),
        ...juneLines('W2', 'PN2', '5511987654321', 'wamid.j2'),
      ]);
      const both = 'start=1748736000&end=1754006400'; // June and July 2025
      const answer = async (query: string) => {
        const response = await service.get(`/v1/analytics?${both}&granularity=MONTHLY&${query}`, KEY_ALL);
        const body = (await response.json()) as {
          data: { data_points: Point[] }[];
          not_counted?: { units: number };
        };
        expect(response.status, JSON.stringify(body)).toBe(200);
        return body;
      };
      for (const filter of ['', '&waba=W2', '&country_codes=IN', '&pricing_categories=MARKETING']) {
        const messages = (await answer(`metric=pricing${filter}`)).data[0]!.data_points;
        const inJune = count(messages.filter((point) => point.start === 1748736000));
        const inJuly = count(messages.filter((point) => point.start === 1751328000));
        expect(inJune, filter).toBeGreaterThan(0);
        expect(inJuly, filter).toBeGreaterThan(0);
        const conversations = await answer(`metric=conversation&dimensions=CONVERSATION_TYPE${filter}`);
        const points = conversations.data[0]!.data_points;
        expect(points.every((point) => point.start === 1748736000)).toBe(true);
        expect(count(points, 'conversation'), filter).toBe(inJune);
        expect(conversations.not_counted?.units, filter).toBe(inJuly);
      }
    });
  },
);

describe("Meta's parameters", () => {
  beforeEach(async () => {
    service = await createTestService();
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '919876543210', 'wamid.w1'),
      ...conversationLines('W2', 'PN2', '5511987654321', 'wamid.w2'),
      ...juneLines('W1', 'PN1', '919876543210', 'wamid.j1'),
    ]);
  });

  it("answers pricing_analytics' names when the request's names are pricing_analytics' (no metric given)", async () => {
    for (const query of [
      'dimensions=PRICING_CATEGORY',
      'dimensions=TIER',
      'pricing_types=REGULAR',
      'metric_types=VOLUME',
    ]) {
      const [point] = await points(`granularity=MONTHLY&${query}`);
      expect(point, query).toHaveProperty('volume');
      expect(point, query).not.toHaveProperty('conversation');
    }
    const [point] = await points('granularity=MONTHLY&dimensions=PRICING_CATEGORY');
    expect(point).toHaveProperty('pricing_category');
    // conversation_analytics' names, or none: as before (over June's conversations).
    const byType = await points('granularity=MONTHLY&dimensions=CONVERSATION_TYPE', KEY_ALL, JUNE);
    expect(byType.length).toBeGreaterThan(0);
    expect(byType).toEqual(
      await points('granularity=MONTHLY&dimensions=CONVERSATION_TYPE&metric=conversation', KEY_ALL, JUNE),
    );
    expect((await points('granularity=MONTHLY', KEY_ALL, JUNE))[0]).toHaveProperty('conversation');
    expect(await refusal('dimensions=PRICING_CATEGORY,CONVERSATION_TYPE')).toMatch(/give "metric"/);
    // With metric, either family's names are answered under the metric's.
    expect(
      (await points('granularity=MONTHLY&metric=conversation&dimensions=PRICING_CATEGORY', KEY_ALL, JUNE))[0],
    ).toHaveProperty('conversation_category');
  });

  it('takes lists as Meta writes them: A,B, [A,B] and ["A","B"]; [] for none', async () => {
    const plain = await points('granularity=DAILY&metric=pricing&dimensions=PRICING_CATEGORY,COUNTRY');
    expect(plain.length).toBeGreaterThan(1);
    for (const list of [
      '[PRICING_CATEGORY,COUNTRY]',
      '["PRICING_CATEGORY","COUNTRY"]',
      '[ "pricing_category" , "country" ]',
    ]) {
      expect(
        await points(`granularity=DAILY&metric=pricing&dimensions=${encodeURIComponent(list)}`),
        list,
      ).toEqual(plain);
    }
    expect(await points('granularity=MONTHLY&metric=pricing&dimensions=%5B%5D')).toEqual(
      await points('granularity=MONTHLY&metric=pricing'),
    );
    expect(await refusal(`dimensions=${encodeURIComponent('["PHONE",')}`)).toContain(
      '"dimensions" is no list',
    );
    expect(await refusal(`dimensions=${encodeURIComponent('["PHONE",1]')}`)).toContain(
      '"dimensions" must be a list of strings',
    );
    expect(await refusal(`country_codes=${encodeURIComponent('[US,,IN]')}`)).toContain(
      '"country_codes" has an empty item',
    );
  });

  it('leaves out of each data point the metrics metric_types does not ask for', async () => {
    const both = await points('granularity=MONTHLY&metric=pricing');
    const costOnly = await points(
      `granularity=MONTHLY&metric=pricing&metric_types=${encodeURIComponent('["COST"]')}`,
    );
    expect(costOnly).toEqual(both.map(({ volume: _volume, ...rest }) => rest));
    const volumeOnly = await points('granularity=MONTHLY&metric=pricing&metric_types=VOLUME');
    expect(volumeOnly).toEqual(both.map(({ cost: _cost, unpriced: _unpriced, ...rest }) => rest));
    expect(await points('granularity=MONTHLY&metric=pricing&metric_types=COST,VOLUME')).toEqual(both);
    expect(await points('granularity=MONTHLY&metric=pricing&metric_types=%5B%5D')).toEqual(both);
    const conversationCount = await points('granularity=MONTHLY&metric_types=CONVERSATION', KEY_ALL, JUNE);
    expect(conversationCount.length).toBeGreaterThan(0);
    expect(conversationCount.every((point) => 'conversation' in point && !('cost' in point))).toBe(true);
    expect(await refusal('metric=pricing&metric_types=CONVERSATION')).toContain('"metric_types"');
    expect(await refusal('metric_types=CLICKS')).toContain('COST, CONVERSATION');
  });

  it('filters by country_codes, pricing_categories, pricing_types and conversation_directions', async () => {
    const byAll = await points(
      'granularity=MONTHLY&metric=pricing&dimensions=COUNTRY,PRICING_CATEGORY,PRICING_TYPE',
    );
    const sum = (keep: (point: Point) => boolean) => count(byAll.filter(keep));
    const ask = async (query: string) => count(await points(`granularity=MONTHLY&metric=pricing&${query}`));
    expect(await ask('country_codes=BR')).toBe(sum((p) => p.country === 'BR'));
    expect(await ask(`country_codes=${encodeURIComponent('["br","IN"]')}`)).toBe(sum(() => true));
    expect(await ask('pricing_categories=MARKETING,UTILITY')).toBe(
      sum((p) => p.pricing_category === 'MARKETING' || p.pricing_category === 'UTILITY'),
    );
    expect(await ask('pricing_types=FREE_CUSTOMER_SERVICE')).toBe(
      sum((p) => p.pricing_type === 'FREE_CUSTOMER_SERVICE'),
    );
    expect(await ask('conversation_categories=service')).toBe(sum((p) => p.pricing_category === 'SERVICE'));
    expect(await ask('conversation_directions=USER_INITIATED')).toBe(
      sum((p) => p.pricing_category === 'SERVICE'),
    );
    expect(await ask('conversation_directions=UNKNOWN')).toBe(0);
    expect(await ask('conversation_types=REGULAR,UNKNOWN')).toBe(sum((p) => p.pricing_type === 'REGULAR'));
    expect(sum((p) => p.country === 'BR')).toBeGreaterThan(0);
    expect(sum((p) => p.pricing_type === 'FREE_CUSTOMER_SERVICE')).toBeGreaterThan(0);
    // Meta's conversation_analytics word for a free entry point's conversations.
    expect(await ask('conversation_types=FREE_ENTRY')).toBe(
      sum((p) => p.pricing_type === 'FREE_ENTRY_POINT'),
    );
  });

  it('refuses a value Meta would not take, naming the parameter and the values it takes', async () => {
    expect(await refusal('pricing_categories=PROMO')).toContain(
      '"pricing_categories": "PROMO" is none of AUTHENTICATION',
    );
    expect(await refusal('pricing_types=FREE')).toContain('"pricing_types"');
    expect(await refusal('conversation_directions=INBOUND')).toContain('"conversation_directions"');
    expect(await refusal('country_codes=IND')).toContain(
      '"country_codes": "IND" is no 2-letter country code',
    );
    expect(await refusal('pricing_types=REGULAR&conversation_types=REGULAR&metric=pricing')).toContain(
      'one filter',
    );
  });

  it("answers pricing_analytics' TIER as Meta does: left out on free points, 0:MAX on marketing", async () => {
    // A utility template answered inside the user's window: free, as the service reply.
    await service.postEvents([
      {
        kind: 'outbound',
        at: '2025-07-10T09:02:00Z',
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
        id: 'wamid.w1.o4',
        template: 'utility',
      },
      { kind: 'status', at: '2025-07-10T09:02:05Z', waba: 'W1', id: 'wamid.w1.o4', status: 'delivered' },
    ]);
    const all = await points('granularity=MONTHLY&metric=pricing&dimensions=PRICING_TYPE,PRICING_CATEGORY');
    const free = all.filter((point) => point.pricing_type !== 'REGULAR');
    const marketing = all.filter((point) => point.pricing_category === 'MARKETING');
    const untiered = all.filter(
      (point) => point.pricing_type === 'REGULAR' && point.pricing_category === 'UTILITY',
    );
    expect(free.map((point) => point.pricing_category)).toEqual(['SERVICE', 'UTILITY']);
    expect(marketing.length).toBe(1);
    const byTier = await points('granularity=MONTHLY&dimensions=TIER');
    const month = { start: 1751328000, end: 1754006400, currency: 'USD' };
    // Free points of both categories, alike without their tier, are one point (counts and costs summed); a
    // charge whose card has no bands keeps wameter's null (its band is unknown).
    expect(byTier).toHaveLength(3);
    expect(byTier).toEqual(
      expect.arrayContaining([
        { ...month, volume: count(marketing), tier: '0:MAX', cost: marketing[0]!.cost },
        { ...month, volume: count(free), cost: 0 },
        { ...month, volume: count(untiered), tier: null, cost: untiered[0]!.cost },
      ]),
    );
    const typed = await points('granularity=MONTHLY&dimensions=TIER,PRICING_TYPE');
    expect(typed.every((point) => 'tier' in point === (point.pricing_type === 'REGULAR'))).toBe(true);
    // conversation_analytics has no TIER: wameter answers the stored band there, and it counts conversations
    // only, which have none (June's), never July's tiered messages.
    expect(await points('granularity=MONTHLY&metric=conversation&dimensions=TIER')).toEqual([]);
    const conversation = await points(
      'granularity=MONTHLY&metric=conversation&dimensions=TIER',
      KEY_ALL,
      JUNE,
    );
    expect(conversation.map((point) => point.tier)).toEqual([null]);
  });

  it("answers a request written as Meta's documentation writes one", async () => {
    const dimensions = encodeURIComponent('["PRICING_CATEGORY","PRICING_TYPE","TIER","COUNTRY"]');
    const list = await points(
      `granularity=DAILY&dimensions=${dimensions}&country_codes=${encodeURIComponent('["US","IN"]')}&phone_numbers=%5B%5D`,
    );
    expect(list.length).toBeGreaterThan(0);
    for (const point of list) {
      expect(Object.keys(point)).toEqual(
        expect.arrayContaining([
          'start',
          'end',
          'volume',
          'cost',
          'pricing_category',
          'pricing_type',
          'country',
        ]),
      );
      expect(point.country).toBe('IN');
    }
  });
});
