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
import { KEY_ALL, KEY_W1, rateLinesAsBatch, serviceOn, type TestService } from './server-kit.js';

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

// Placement of a status naming no WABA follows only what one event of the input ties (a differential of the
// service against `wameter rate`, twenty-third session): families A, C and D of its report.
const PMP_MARKETING = { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' };
const PMP_UTILITY = { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' };

/** A: W1's status webhook of ma names PN2; a bare `sent` of ma names PN1; xa, a status of PN1, is tied nowhere. */
const A_WEBHOOK = structuredClone(X3_WEBHOOK);
A_WEBHOOK.entry[0]!.id = 'W1';
A_WEBHOOK.entry[0]!.changes[0]!.value.metadata.phone_number_id = 'PN2';
A_WEBHOOK.entry[0]!.changes[0]!.value.statuses = [
  { id: 'wamid.ma', status: 'delivered', timestamp: '1759309200', recipient_id: U1, pricing: PMP_MARKETING },
];
const A_LINES = [
  { kind: 'status', at: '2025-10-01T08:59:55Z', id: 'wamid.ma', status: 'sent', business: 'PN1' },
  {
    kind: 'status',
    at: '2025-10-02T09:00:00Z',
    id: 'wamid.xa',
    status: 'delivered',
    business: 'PN1',
    user: U1,
    pricing: PMP_UTILITY,
  },
];

/** C: message id c stored by two portfolios (inbound in W1 and W3; outbound in W1, inbound in W3). */
function inboundOf(waba: string, business: string, user: string, id: string, at: string): object {
  return { kind: 'inbound', at, waba, business, user, id };
}
const C_STATUS = {
  kind: 'status',
  at: '2025-10-03T10:00:05Z',
  id: 'wamid.c',
  status: 'delivered',
  business: 'PN1',
  user: U1,
  pricing: PMP_UTILITY,
};
const C_TWO_INBOUNDS = [
  inboundOf('W1', 'PN1', U1, 'wamid.c', '2025-10-03T10:00:00Z'),
  inboundOf('W3', 'PN3', U2, 'wamid.c', '2025-10-03T10:00:00Z'),
  C_STATUS,
];
const C_OUTBOUND_AND_INBOUND = [
  {
    kind: 'outbound',
    at: '2025-10-03T10:00:00Z',
    waba: 'W1',
    business: 'PN1',
    user: U1,
    id: 'wamid.c',
    template: 'utility',
  },
  inboundOf('W3', 'PN3', U2, 'wamid.c', '2025-10-03T09:00:00Z'),
  C_STATUS,
];

/** D: two copies of W1's outbound o1 name PN2 and PN1; PN2 is W2's number too; x1 is a status of PN2. */
function outboundOf(waba: string, business: string, user: string, id: string, at: string): object {
  return { kind: 'outbound', at, waba, business, user, id, template: 'marketing' };
}
function deliveredOf(id: string, at: string, fields: object = {}): object {
  return { kind: 'status', at, id, status: 'delivered', ...fields };
}
const D_COPY_PN2 = outboundOf('W1', 'PN2', U1, 'wamid.o1', '2025-10-04T09:00:00Z');
const D_COPY_PN1 = outboundOf('W1', 'PN1', U1, 'wamid.o1', '2025-10-04T09:00:00Z');
const D_OTHERS = [
  deliveredOf('wamid.o1', '2025-10-04T09:00:05Z'),
  outboundOf('W2', 'PN2', U2, 'wamid.o2', '2025-10-04T09:10:00Z'),
  deliveredOf('wamid.o2', '2025-10-04T09:10:05Z'),
  deliveredOf('wamid.x1', '2025-10-04T11:00:00Z', { business: 'PN2', user: U1, pricing: PMP_UTILITY }),
];

/**
 * F (seed 765 of the differential): two copies of W1's `read` of m3, one naming PN3 and a user, one naming PN1
 * alone — merged, PN1 and the user, a pair no copy names, which the store's row therefore does not tie; W3 (W1's
 * portfolio) ties PN1; m7 is a status of PN1.
 */
const F_COPIES = [
  {
    kind: 'status',
    at: '2025-11-28T23:20:50Z',
    id: 'wamid.m3',
    status: 'read',
    waba: 'W1',
    business: 'PN3',
    user: U1,
  },
  { kind: 'status', at: '2025-11-28T23:20:56Z', id: 'wamid.m3', status: 'read', waba: 'W1', business: 'PN1' },
];
const F_OTHERS = [
  outboundOf('W3', 'PN1', U2, 'wamid.m5', '2025-11-28T15:24:53Z'),
  deliveredOf('wamid.m7', '2025-10-13T13:01:11Z', {
    business: 'PN1',
    user: '5511987650004',
    pricing: PMP_UTILITY,
  }),
];

const THREE_PORTFOLIOS = [
  { waba: 'W1', timezone: 'UTC', currency: 'USD', portfolio: 'PA' },
  { waba: 'W2', timezone: 'UTC', currency: 'USD', portfolio: 'PB' },
  { waba: 'W3', timezone: 'UTC', currency: 'USD', portfolio: 'PC' },
];

/** The units of the accounts file's WABAs (a status tied nowhere is `rate`'s under its number: WABA_UNKNOWN). */
function ofListedWabas(rows: UnitRow[]): UnitRow[] {
  return rows.filter(([waba]) => THREE_PORTFOLIOS.some((account) => account.waba === waba));
}

/**
 * Posts `lines` to a fresh service one request each, the bill rated after each (so that the next ingest must
 * name any WABA it moves a status from: relistedWabas), then expects the service's bill to be `expected`.
 */
async function expectServiceBill(
  engine: 'SQLite' | 'PostgreSQL',
  accountsPath: string,
  lines: readonly object[],
  expected: UnitRow[],
): Promise<void> {
  const service = await serviceWith(engine, accountsPath);
  try {
    for (const line of lines) {
      expect((await service.postEvents([line])).status).toBe(200);
      await serviceUnits(service);
    }
    expect(await serviceUnits(service)).toEqual(expected);
  } finally {
    await service.close();
  }
}

describe.each(['SQLite', 'PostgreSQL'] as const)(
  'a status naming no WABA is placed only by what one event ties: service and batch agree (%s)',
  (engine) => {
    it('A: a number no single event ties to a WABA places no status there, though a message’s statuses name it', async () => {
      const accountsPath = accountsFile(`a-${engine}`, THREE_PORTFOLIOS);
      const batch = await rateLinesAsBatch(accountsPath, [A_WEBHOOK, ...A_LINES]);
      expect(batch.units.map((unit) => [unit.waba, unit.id]).sort()).toEqual([
        ['PN1', 'u_wamid.xa'],
        ['W1', 'u_wamid.ma'],
      ]);
      expect(batch.findings.map((finding) => finding.code)).toContain('WABA_UNKNOWN');
      const service = await serviceWith(engine, accountsPath);
      try {
        expect((await service.postWebhook(JSON.stringify(A_WEBHOOK))).status).toBe(200);
        expect((await service.postEvents(A_LINES)).status).toBe(200);
        expect(await serviceUnits(service)).toEqual(
          ofListedWabas(await batchUnits(accountsPath, [A_WEBHOOK, ...A_LINES])),
        );
      } finally {
        await service.close();
      }
    });

    it.each([
      ['an inbound in two portfolios', C_TWO_INBOUNDS],
      ['an outbound in one portfolio and an inbound in another', C_OUTBOUND_AND_INBOUND],
    ])('C: a status of a message id stored by %s is billed once, where `rate` bills it', async (_, lines) => {
      const accountsPath = accountsFile(`c-${engine}-${lines.length}-${String(lines[0])}`, THREE_PORTFOLIOS);
      const expected = await batchUnits(accountsPath, lines);
      expect(expected.filter(([, id]) => id === 'u_wamid.c').map(([waba]) => waba)).toEqual(['W1']);
      for (const order of [lines, [...lines].reverse()]) {
        await expectServiceBill(engine, accountsPath, order, expected);
      }
    });

    it('E: the smallest WABA tying a number is the smallest in the stores’ byte order, not UTF-16’s', async () => {
      // UTF-16 puts the emoji's surrogates before U+FF21; UTF-8's bytes (F0… against EF…) put it after.
      const [emoji, wide] = ['W\u{1F600}', 'W\uFF21'];
      const accountsPath = accountsFile(`e-${engine}`, [
        { waba: emoji, timezone: 'UTC', currency: 'USD', portfolio: 'PE' },
        { waba: wide, timezone: 'UTC', currency: 'USD', portfolio: 'PW' },
      ]);
      const lines = [
        outboundOf(emoji, 'PN9', U1, 'wamid.e1', '2025-10-04T09:00:00Z'),
        deliveredOf('wamid.e1', '2025-10-04T09:00:05Z'),
        outboundOf(wide, 'PN9', U2, 'wamid.e2', '2025-10-04T09:10:00Z'),
        deliveredOf('wamid.e2', '2025-10-04T09:10:05Z'),
        deliveredOf('wamid.ex', '2025-10-04T11:00:00Z', {
          business: 'PN9',
          user: '919800000009',
          pricing: PMP_UTILITY,
        }),
      ];
      const expected = await batchUnits(accountsPath, lines);
      expect(expected.filter(([, id]) => id === 'u_wamid.ex').map(([waba]) => waba)).toEqual([wide]);
      const service = await serviceWith(engine, accountsPath);
      try {
        expect((await service.postEvents(lines)).status).toBe(200);
        expect(await serviceUnits(service)).toEqual(expected);
      } finally {
        await service.close();
      }
    });

    it('F: copies of a status naming its WABA tie only a number one copy named with a user, as the store’s merged row', async () => {
      const accountsPath = accountsFile(`f-${engine}`, [
        { waba: 'W1', timezone: 'UTC', currency: 'USD', portfolio: 'P1' },
        { waba: 'W3', timezone: 'UTC', currency: 'USD', portfolio: 'P1' },
      ]);
      const orders = [
        [...F_COPIES, ...F_OTHERS],
        [...F_OTHERS, ...[...F_COPIES].reverse()],
      ];
      const expected = await batchUnits(accountsPath, orders[0]!);
      // Only W3's outbound ties PN1: m7 is W3's.
      expect(expected.filter(([, id]) => id === 'u_wamid.m7').map(([waba]) => waba)).toEqual(['W3']);
      for (const order of orders) {
        expect(await batchUnits(accountsPath, order)).toEqual(expected);
        await expectServiceBill(engine, accountsPath, order, expected);
      }
    });

    it('a limited key’s inbound ties nothing for the rater either: a status of its number and user goes to the trusted owner', async () => {
      const accountsPath = accountsFile(`limited-${engine}`, [
        { waba: 'W1', timezone: 'UTC', currency: 'USD', portfolio: 'P1' },
        { waba: 'W3', timezone: 'UTC', currency: 'USD', portfolio: 'P1' },
      ]);
      const service = await serviceWith(engine, accountsPath);
      try {
        // W3's send log ties PN1 (to U2); W1's client writes an inbound of PN1 from U1 with its own key.
        const trusted = [
          outboundOf('W3', 'PN1', U2, 'wamid.l3', '2025-10-04T09:00:00Z'),
          deliveredOf('wamid.l3', '2025-10-04T09:00:05Z'),
        ];
        expect((await service.postEvents(trusted)).status).toBe(200);
        const inbound = inboundOf('W1', 'PN1', U1, 'wamid.l1', '2025-10-04T10:00:00Z');
        expect((await service.postEvents([inbound], KEY_W1)).status).toBe(200);
        const status = deliveredOf('wamid.lx', '2025-10-04T10:05:00Z', {
          business: 'PN1',
          user: U1,
          pricing: PMP_UTILITY,
        });
        expect((await service.postEvents([status])).status).toBe(200);
        // The stores' SQL lists it with P1 by W3's tie; the rater, given the listing, places it there too
        // (before: with W1, by the limited key's inbound).
        const units = await serviceUnits(service);
        expect(units.filter(([, id]) => id === 'u_wamid.lx').map(([waba]) => waba)).toEqual(['W3']);
      } finally {
        await service.close();
      }
    });

    it('D: copies of an outbound naming two numbers tie only the number kept, in any order of the lines', async () => {
      const accountsPath = accountsFile(`d-${engine}`, THREE_PORTFOLIOS);
      const orders = [
        [D_COPY_PN2, ...D_OTHERS, D_COPY_PN1],
        [D_COPY_PN1, ...D_OTHERS, D_COPY_PN2],
        [...D_OTHERS, D_COPY_PN2, D_COPY_PN1],
      ];
      const expected = await batchUnits(accountsPath, orders[0]!);
      // o1 is PN1's (the smaller number): only W2's o2 ties PN2, so x1 is W2's.
      expect(expected.map(([waba, id]) => [waba, id])).toEqual([
        ['W1', 'u_wamid.o1'],
        ['W2', 'u_wamid.o2'],
        ['W2', 'u_wamid.x1'],
      ]);
      for (const order of orders) {
        expect(await batchUnits(accountsPath, order)).toEqual(expected);
        await expectServiceBill(engine, accountsPath, order, expected);
      }
    });
  },
);
