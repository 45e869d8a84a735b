// Request fields the query API and the dashboard's endpoints took silently in a wrong form, each now 400
// BAD_QUERY naming the field: POST /v1/reconciliation's `waba` of another type (a key of several WABAs sending
// ["W2"] got all of them), a `time_zone` that is no IANA name, `dimensions` with an empty item or a dimension
// twice, POST /v1/estimate's `phones` as numbers (rounded past 2^53, a minus sign dropped) or as one string,
// and a `user` (explain; units, their CSV, totals, analytics) that is no phone number nor business-scoped id
// and names nobody the key can read.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  conversationLines,
  createDashboardService,
  KEY_ALL,
  KEY_W1,
  type TestService,
} from '../../test/server-kit.js';

const KEY_W1_W2 = 'key-fields-w1-w2';

let service: TestService;

beforeEach(async () => {
  service = await createDashboardService({
    apiKeys: [
      { name: 'admin', key: KEY_ALL, wabas: '*' },
      { name: 'client-one', key: KEY_W1, wabas: ['W1'] },
      { name: 'client-one-two', key: KEY_W1_W2, wabas: ['W1', 'W2'] },
    ],
  });
  const posted = await service.postEvents([
    ...conversationLines('W1', 'PN1', '919810000001', 'w1'),
    ...conversationLines('W2', 'PN2', '919820000002', 'w2'),
  ]);
  expect(posted.status).toBe(200);
});

afterEach(async () => {
  await service.close();
});

function post(path: string, body: unknown, key: string): Promise<Response> {
  return Promise.resolve(
    service.app.request(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    }),
  );
}

async function refusal(response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error?: { code: string; message: string } };
  return { status: response.status, code: body.error?.code ?? '(none)', message: body.error?.message ?? '' };
}

/** Meta's pricing_analytics export of July 2025, naming no WABA. */
const julyExport = {
  pricing_analytics: {
    data: [
      {
        data_points: [
          {
            start: Date.parse('2025-07-01T00:00:00Z') / 1000,
            end: Date.parse('2025-08-01T00:00:00Z') / 1000,
            volume: 1,
            country: 'IN',
            pricing_category: 'UTILITY',
            cost: 0.0014,
          },
        ],
      },
    ],
  },
};

describe('POST /v1/reconciliation: "waba"', () => {
  it('of any type but a WABA id string is 400 naming the field, never answered as if absent', async () => {
    for (const waba of [null, true, 1, '', ' ', [], ['W2'], ['W1', 'W2'], {}]) {
      const answer = await refusal(
        await post('/v1/reconciliation', { analytics: julyExport, waba }, KEY_W1_W2),
      );
      expect(answer, JSON.stringify(waba)).toMatchObject({ status: 400, code: 'BAD_QUERY' });
      expect(answer.message, JSON.stringify(waba)).toContain('"waba" must be one WABA id');
    }
    // A key of one WABA is refused alike (absent, its one WABA would be taken).
    const one = await refusal(
      await post('/v1/reconciliation', { analytics: julyExport, waba: null }, KEY_W1),
    );
    expect(one).toMatchObject({ status: 400, code: 'BAD_QUERY' });
    // One WABA id: answered for that WABA alone.
    const answered = await post('/v1/reconciliation', { analytics: julyExport, waba: 'W2' }, KEY_W1_W2);
    expect(answered.status).toBe(200);
    expect(((await answered.json()) as { wabas: string[] }).wabas).toEqual(['W2']);
  });
});

describe('time_zone', () => {
  it('that is no IANA time zone is refused naming the parameter, on /v1/analytics and the overview', async () => {
    const range = 'start=2025-07-01T00:00:00Z&end=2025-08-01T00:00:00Z';
    for (const path of [
      `/v1/analytics?${range}&time_zone=abc`,
      `/v1/analytics?${range}&granularity=MONTHLY&time_zone=Mars%2FOlympus`,
      '/v1/dashboard/overview?time_zone=abc',
      // ICU reads these as Asia/Calcutta and America/Chicago; Israel's and China's clients mean other days.
      `/v1/analytics?${range}&granularity=DAILY&time_zone=IST`,
      '/v1/dashboard/overview?time_zone=CST',
    ]) {
      const answer = await refusal(await service.get(path, KEY_W1));
      expect(answer, path).toMatchObject({ status: 400, code: 'BAD_QUERY' });
      expect(answer.message, path).toMatch(/"time_zone": "[^"]+" is not an IANA time zone/);
      if (/=(IST|CST)$/.test(path))
        expect(answer.message, path).toContain('an abbreviation, which names zones');
    }
    expect((await service.get(`/v1/analytics?${range}&time_zone=Asia%2FKolkata`, KEY_W1)).status).toBe(200);
    expect((await service.get('/v1/dashboard/overview?time_zone=Asia%2FKolkata', KEY_W1)).status).toBe(200);
  });
});

describe('an instant whose offset lost its + to the query string', () => {
  it('is refused saying that + in a query is read as a space, and how to write it', async () => {
    // curl "…?from=2025-07-01T00:00:00+05:30" sends a + that every URL decoder reads as a space.
    for (const path of [
      '/v1/totals?from=2025-07-01T00:00:00+05:30',
      '/v1/units?to=2025-07-01T00:00:00.000+0530',
      '/v1/analytics?start=2025-07-01T00:00:00+05:30&end=2025-08-01T00:00:00Z',
    ]) {
      const answer = await refusal(await service.get(path, KEY_W1));
      expect(answer, path).toMatchObject({ status: 400, code: 'BAD_QUERY' });
      expect(answer.message, path).toContain('a "+" in a URL\'s query is read as a space: write it as %2B');
    }
    expect((await service.get('/v1/totals?from=2025-07-01T00:00:00%2B05:30', KEY_W1)).status).toBe(200);
    // Another malformed instant is not told about +.
    const other = await refusal(await service.get('/v1/totals?from=2025-07-01', KEY_W1));
    expect(other.message).not.toContain('%2B');
  });
});

describe('/v1/analytics: dimensions', () => {
  const analytics = (dimensions: string) =>
    service.get(
      `/v1/analytics?start=2025-07-01T00:00:00Z&end=2025-08-01T00:00:00Z&dimensions=${dimensions}`,
      KEY_W1,
    );

  it('refuses an empty item and a dimension named twice, naming "dimensions"', async () => {
    for (const [dimensions, words] of [
      [',', 'has an empty item'],
      ['WABA,', 'has an empty item'],
      ['WABA,,PHONE', 'has an empty item'],
      ['WABA,WABA', 'names WABA twice'],
      ['waba,WABA', 'names WABA twice'],
      ['CONVERSATION_CATEGORY,PRICING_CATEGORY', 'names one dimension twice'],
    ] as const) {
      const answer = await refusal(await analytics(encodeURIComponent(dimensions)));
      expect(answer, dimensions).toMatchObject({ status: 400, code: 'BAD_QUERY' });
      expect(answer.message, dimensions).toContain(`"dimensions" ${words}`);
    }
    // Each dimension once, in any case: answered.
    expect((await analytics('waba,PHONE,pricing_category')).status).toBe(200);
  });
});

describe('POST /v1/estimate: "phones"', () => {
  const estimate = (fields: Record<string, unknown>) =>
    post('/v1/estimate', { template: 'utility', waba: 'W1', ...fields }, KEY_W1);

  it('refuses a JSON number among them, naming its place, rather than rounding it or dropping its sign', async () => {
    for (const [phones, place] of [
      [[12345678901234567890], 'phones[0]'],
      [['919810000001', -5511999990000], 'phones[1]'],
      [['919810000001', null], 'phones[1]'],
      [['919810000001', ['919810000002']], 'phones[1]'],
    ] as const) {
      const answer = await refusal(await estimate({ phones }));
      expect(answer, JSON.stringify(phones)).toMatchObject({ status: 400, code: 'BAD_QUERY' });
      expect(answer.message, JSON.stringify(phones)).toContain(`"${place}" is `);
      expect(answer.message).toContain('as a JSON string');
    }
  });

  it('that is not an array is refused saying it takes an array of strings (not "give either phones or csv")', async () => {
    for (const phones of ['919810000001', 919810000001, null, { 0: '919810000001' }]) {
      const answer = await refusal(await estimate({ phones }));
      expect(answer, JSON.stringify(phones)).toMatchObject({ status: 400, code: 'BAD_QUERY' });
      expect(answer.message, JSON.stringify(phones)).toContain(
        '"phones" must be an array of phone numbers written as strings',
      );
    }
    const csv = await refusal(await estimate({ csv: ['phone', '919810000001'] }));
    expect(csv).toMatchObject({ status: 400, code: 'BAD_QUERY' });
    expect(csv.message).toContain('"csv" must be the recipients\' CSV as one string');
    const both = await refusal(await estimate({ phones: ['919810000001'], csv: 'phone\n919810000001' }));
    expect(both.message).toContain('Give either "phones" or "csv", not both');
    // Strings, as ever: quoted.
    expect((await estimate({ phones: ['+91 98100-00001'] })).status).toBe(200);
  });
});

describe('GET /v1/explain: "user"', () => {
  it('that is no phone number nor business-scoped id, and names nobody of the key, is 400 naming "user"', async () => {
    for (const user of ['abc', '09810000001', '12', 'user.nobody']) {
      const answer = await refusal(await service.get(`/v1/explain?user=${encodeURIComponent(user)}`, KEY_W1));
      expect(answer, user).toMatchObject({ status: 400, code: 'BAD_QUERY' });
      expect(answer.message, user).toContain(`"user" ${JSON.stringify(user)} is neither a phone number`);
    }
  });

  it('still answers every phone number as the service reads them, a business-scoped id, and any user the events name', async () => {
    // Numbers as people write them, and Meta's business-scoped ids (BSUIDs), known or not: a story, maybe empty.
    for (const user of [
      '919810000001',
      '+91 98100-00001',
      '0091 9810000001',
      '919899999999',
      '９１９８１００００００１',
    ]) {
      const response = await service.get(`/v1/explain?user=${encodeURIComponent(user)}`, KEY_W1);
      expect(response.status, user).toBe(200);
    }
    for (const user of ['US.13491208655302741918', 'US.ENT.11815799212886844830']) {
      const response = await service.get(`/v1/explain?user=${encodeURIComponent(user)}`, KEY_W1);
      expect(response.status, user).toBe(200);
    }
    // A client's event lines may name a user in any words: such a user is explained, not refused — to a key
    // that reads its events. To another key it names nobody: refused as any such value.
    await service.postEvents([
      ...conversationLines('W1', 'PN1', 'user.9373795779eb6441', 'odd1'),
      ...conversationLines('W2', 'PN2', 'customer-42', 'odd2'),
    ]);
    const scoped = await service.get('/v1/explain?user=user.9373795779eb6441', KEY_W1);
    expect(scoped.status).toBe(200);
    expect(((await scoped.json()) as { units: unknown[] }).units.length).toBeGreaterThan(0);
    expect((await service.get('/v1/explain?user=customer-42', KEY_W1_W2)).status).toBe(200);
    expect((await service.get('/v1/explain?user=customer-42', KEY_W1)).status).toBe(400);
  });
});

describe('GET /v1/units, /v1/units.csv, /v1/totals, /v1/analytics, /v1/dashboard/overview: "user"', () => {
  const routes = [
    '/v1/units?user=',
    '/v1/units.csv?user=',
    '/v1/totals?user=',
    '/v1/analytics?start=2025-01-01T00:00:00Z&end=2026-01-01T00:00:00Z&granularity=MONTHLY&user=',
    '/v1/dashboard/overview?user=',
  ];

  it('that is no phone number nor business-scoped id, and names no unit of the key, is 400 naming "user" (not an empty answer)', async () => {
    for (const route of routes) {
      for (const user of ['abc', '09810000001', '12']) {
        const answer = await refusal(await service.get(`${route}${encodeURIComponent(user)}`, KEY_W1));
        expect(answer, `${route}${user}`).toMatchObject({ status: 400, code: 'BAD_QUERY' });
        expect(answer.message, `${route}${user}`).toContain(
          `"user" ${JSON.stringify(user)} is neither a phone number`,
        );
      }
    }
  });

  it('still answers a phone number (of nobody too), a business-scoped id, and a user the key’s units name in other words', async () => {
    await service.postEvents([
      ...conversationLines('W1', 'PN1', 'user.9373795779eb6441', 'odd1'),
      ...conversationLines('W2', 'PN2', 'customer-42', 'odd2'),
    ]);
    // The status, the body read (a CSV export is one at a time per key: each is read to its end).
    const statusOf = async (path: string, key: string) => {
      const response = await service.get(path, key);
      await response.text();
      return response.status;
    };
    for (const route of routes) {
      // `user.0000`: shaped as Meta's documentation writes scoped ids (a webhook's may be joined to a number,
      // its units stored under the number).
      for (const user of [
        '+91 98100-00001',
        '919899999999',
        'US.13491208655302741918',
        'user.9373795779eb6441',
        'user.0000',
      ]) {
        expect(await statusOf(`${route}${encodeURIComponent(user)}`, KEY_W1), `${route}${user}`).toBe(200);
      }
      expect(await statusOf(`${route}customer-42`, KEY_W1_W2), route).toBe(200);
      // Another key's user, in words no phone number has: named by no unit this key may read.
      expect(await statusOf(`${route}customer-42`, KEY_W1), route).toBe(400);
    }
    const units = (await (await service.get('/v1/units?user=customer-42', KEY_W1_W2)).json()) as {
      units: unknown[];
    };
    expect(units.units.length).toBeGreaterThan(0);
  });
});
