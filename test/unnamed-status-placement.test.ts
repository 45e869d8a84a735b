// The service's stored bill equals what `wameter rate` computes from the same events, for statuses that name
// no WABA and whose message is stored nowhere: the stores list such a status with the WABA the batch rater
// places it under (docs/decisions.md, "Statuses alone that name no WABA") — the WABA of the pair its business
// number and user have, else the smallest WABA its number sends for, a webhook status's WABA included.
// Reproductions x1 and x3 of a billing review, on SQLite and PostgreSQL, the events posted in two requests so
// that the second moves the status (`relistedWabas`).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KEY_ALL, rateLinesAsBatch, serviceOn, type TestService } from './server-kit.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-unnamed-status-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function accountsFile(name: string, accounts: object[]): string {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ accounts }));
  return path;
}

const U1 = '919800000001';
const U2 = '919800000002';
const freeService = {
  billable: false,
  pricing_model: 'PMP',
  category: 'utility',
  type: 'free_customer_service',
};

/** x1: PN sends for W1 (to U1) and W2 (U2 wrote to it); a status of PN to U2 naming no WABA is W2's. */
const X1_FIRST = [
  {
    kind: 'outbound',
    at: '2025-10-01T09:00:00Z',
    waba: 'W1',
    business: 'PN',
    user: U1,
    id: 'wamid.x1a',
    template: 'marketing',
  },
  { kind: 'status', at: '2025-10-01T09:00:05Z', id: 'wamid.x1a', status: 'delivered' },
  {
    kind: 'status',
    at: '2025-10-05T11:00:00Z',
    id: 'wamid.x1b',
    status: 'delivered',
    business: 'PN',
    user: U2,
    pricing: freeService,
  },
];
const X1_LATER = [
  { kind: 'inbound', at: '2025-10-05T10:00:00Z', waba: 'W2', business: 'PN', user: U2, id: 'wamid.x1in' },
];

/** x3: Meta's status webhook of W3 (phone_number_id PN3), and a status line of PN3 naming no WABA. */
const X3_WEBHOOK = {
  object: 'whatsapp_business_account',
  entry: [
    {
      id: 'W3',
      changes: [
        {
          field: 'messages',
          value: {
            messaging_product: 'whatsapp',
            metadata: { display_phone_number: '15550000000', phone_number_id: 'PN3' },
            statuses: [
              {
                id: 'wamid.x3a',
                status: 'delivered',
                timestamp: '1759309200',
                recipient_id: '919800000031',
                pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
              },
            ],
          },
        },
      ],
    },
  ],
};
const X3_LINE = {
  kind: 'status',
  at: '2025-10-02T09:00:00Z',
  id: 'wamid.x3b',
  status: 'delivered',
  business: 'PN3',
  user: '919800000032',
  pricing: { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' },
};

/** x4: Meta's status webhook of W3 with another of Meta's words (`deleted`), and a delivery naming no WABA. */
const X4_WEBHOOK = structuredClone(X3_WEBHOOK);
X4_WEBHOOK.entry[0]!.changes[0]!.value.statuses = [
  { id: 'wamid.x4', status: 'deleted', timestamp: '1759309200', recipient_id: '919800000041' },
] as unknown as (typeof X3_WEBHOOK.entry)[0]['changes'][0]['value']['statuses'];
const X4_LINE = {
  kind: 'status',
  at: '2025-10-01T09:00:10Z',
  id: 'wamid.x4',
  status: 'delivered',
  pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
};

/** x5: a message's statuses naming no WABA, one naming its number, the other its user (a review's seed 31). */
const X5_INBOUND = {
  kind: 'inbound',
  at: '2025-08-02T07:00:00Z',
  waba: 'W1',
  business: 'PN1',
  user: '16505557176',
  id: 'wamid.x5in',
};
const X5_SENT = {
  kind: 'status',
  at: '2025-08-02T07:21:40Z',
  id: 'wamid.x5',
  status: 'sent',
  business: 'PN1',
  pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
};
const X5_DELIVERED = {
  kind: 'status',
  at: '2025-08-02T07:26:40Z',
  id: 'wamid.x5',
  status: 'delivered',
  user: '16505557176',
};

type UnitRow = [string, string, string | null, number, string[]];

/** `wameter rate` of every line at once: each unit's WABA, id, category, amount (micros) and messages. */
async function batchUnits(accountsPath: string, lines: object[]): Promise<UnitRow[]> {
  const result = await rateLinesAsBatch(accountsPath, lines);
  return sorted(
    result.units.map((unit) => [
      unit.waba,
      unit.id,
      unit.category,
      Number(unit.amountMicros ?? -1),
      unit.messages,
    ]),
  );
}

function sorted(rows: UnitRow[]): UnitRow[] {
  return rows.sort((a, b) => (a[0] + a[1] < b[0] + b[1] ? -1 : 1));
}

/** The service's stored bill, as /v1/units answers it. */
async function serviceUnits(service: TestService): Promise<UnitRow[]> {
  const { units } = (await (await service.get('/v1/units', KEY_ALL)).json()) as {
    units: { waba: string; id: string; category: string; amount: string | null; messages: string[] }[];
  };
  return sorted(
    units.map((unit) => [
      unit.waba,
      unit.id,
      unit.category,
      unit.amount === null ? -1 : Math.round(Number(unit.amount) * 1e6),
      unit.messages,
    ]),
  );
}

function serviceWith(engine: 'SQLite' | 'PostgreSQL', accountsPath: string): Promise<TestService> {
  return serviceOn(engine, 'unnamed', { accountsPath });
}

describe.each(['SQLite', 'PostgreSQL'] as const)(
  'a status naming no WABA, its message stored nowhere: service and batch agree (%s)',
  (engine) => {
    it('x1: with the WABA of the pair its number and user have, not the number’s smallest WABA', async () => {
      const accountsPath = accountsFile(`x1-${engine}`, [
        { waba: 'W1', timezone: 'UTC', currency: 'USD', portfolio: 'PA' },
        { waba: 'W2', timezone: 'UTC', currency: 'USD', portfolio: 'PB' },
      ]);
      const expected = await batchUnits(accountsPath, [...X1_FIRST, ...X1_LATER]);
      // W2's answer to U2 inside U2's window is free; W1's marketing is charged.
      expect(expected.map(([waba, id, , amount]) => [waba, id, amount > 0])).toEqual([
        ['W1', 'u_wamid.x1a', true],
        ['W2', 'u_wamid.x1b', false],
      ]);
      const service = await serviceWith(engine, accountsPath);
      try {
        expect((await service.postEvents(X1_FIRST)).status).toBe(200);
        // Before W2's inbound, the status is W1's (PN's only WABA): the service bills it there.
        expect((await serviceUnits(service)).map(([waba, id]) => [waba, id])).toEqual([
          ['W1', 'u_wamid.x1a'],
          ['W1', 'u_wamid.x1b'],
        ]);
        expect((await service.postEvents(X1_LATER)).status).toBe(200);
        expect(await serviceUnits(service)).toEqual(expected);
      } finally {
        await service.close();
      }
    });

    it('x3: with the WABA a webhook status of its number names', async () => {
      const accountsPath = accountsFile(`x3-${engine}`, [
        { waba: 'W3', timezone: 'UTC', currency: 'USD', portfolio: 'P3' },
      ]);
      const expected = await batchUnits(accountsPath, [X3_WEBHOOK, X3_LINE]);
      expect(expected.map(([waba, id, category]) => [waba, id, category])).toEqual([
        ['W3', 'u_wamid.x3a', 'marketing'],
        ['W3', 'u_wamid.x3b', 'utility'],
      ]);
      const service = await serviceWith(engine, accountsPath);
      try {
        expect((await service.postEvents([X3_LINE])).status).toBe(200);
        expect(await serviceUnits(service)).toEqual([]);
        expect((await service.postWebhook(JSON.stringify(X3_WEBHOOK))).status).toBe(200);
        expect(await serviceUnits(service)).toEqual(expected);
      } finally {
        await service.close();
      }
    });

    it('x5: statuses of one message naming its number and its user apart are placed as one, in any order', async () => {
      const accountsPath = accountsFile(`x5-${engine}`, [
        { waba: 'W1', timezone: 'UTC', currency: 'USD', portfolio: 'P' },
      ]);
      const expected = await batchUnits(accountsPath, [X5_INBOUND, X5_SENT, X5_DELIVERED]);
      expect(expected.map(([waba, id, category, amount]) => [waba, id, category, amount > 0])).toEqual([
        ['W1', 'u_wamid.x5', 'marketing', true],
      ]);
      for (const requests of [
        [[X5_INBOUND, X5_SENT, X5_DELIVERED]],
        [[X5_DELIVERED], [X5_SENT], [X5_INBOUND]],
        [[X5_SENT], [X5_INBOUND], [X5_DELIVERED]],
      ]) {
        const service = await serviceWith(engine, accountsPath);
        try {
          for (const lines of requests) expect((await service.postEvents(lines)).status).toBe(200);
          expect(await serviceUnits(service)).toEqual(expected);
        } finally {
          await service.close();
        }
      }
    });

    it('x4: a delivery naming nothing but the id joins a message known from a status of Meta’s word `deleted`', async () => {
      const accountsPath = accountsFile(`x4-${engine}`, [
        { waba: 'W3', timezone: 'UTC', currency: 'USD', portfolio: 'P3' },
      ]);
      const expected = await batchUnits(accountsPath, [X4_WEBHOOK, X4_LINE]);
      expect(expected.map(([waba, id, category]) => [waba, id, category])).toEqual([
        ['W3', 'u_wamid.x4', 'marketing'],
      ]);
      const service = await serviceWith(engine, accountsPath);
      try {
        expect((await service.postWebhook(JSON.stringify(X4_WEBHOOK))).status).toBe(200);
        expect((await service.postEvents([X4_LINE])).status).toBe(200);
        expect(await serviceUnits(service)).toEqual(expected);
      } finally {
        await service.close();
      }
    });
  },
);
