// An app secret bound to WABAs (config "appSecrets": {"secret", "wabas"}) signs webhooks for those WABAs
// only: a provider serving several clients' Meta apps lets no client who knows its own app's secret bill
// fake deliveries to another client's WABA. Real webhook bodies (test/fixtures/webhooks, copies of
// shared/fixtures/webhooks), signed as Meta signs them, on SQLite and on PostgreSQL.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestService,
  fixture,
  KEY_ALL,
  serviceOn,
  webhookFixtures,
  type TestService,
} from '../../test/server-kit.js';
import type { ServiceConfig } from './config.js';

/** A client's own Meta app: its secret is known to the client. */
const CLIENT_SECRET = 'client-app-secret-7f3a';
/** The provider's own app, which signs for every WABA. */
const PROVIDER_SECRET = 'provider-app-secret-91c2';
/** The client's WABA (Meta's documentation examples) and another client's (pywa's examples). */
const CLIENT_WABA = '102290129340398';
const OTHER_WABA = '5467539754836534';

const CLIENT_STATUS = fixture('meta-docs/status_delivered_marketing_pmp_bsuid_contacts.json');
/** Meta's volume-tier statement for the client's WABA (India, utility, 2025-11). */
const CLIENT_TIER_STATEMENT = fixture('pywa/account_update_volume_tier_update.json');

/** An accounts file whose portfolios are `portfolios` (each a list of WABAs). */
function accountsWith(portfolios: string[][]): string {
  const path = join(mkdtempSync(join(tmpdir(), 'wameter-secret-scope-')), 'accounts.json');
  const accounts = portfolios.flatMap((wabas, i) =>
    wabas.map((waba) => ({ waba, timezone: 'UTC', currency: 'USD', portfolio: `portfolio-${i}` })),
  );
  writeFileSync(path, JSON.stringify({ accounts }));
  return path;
}
const OTHER_STATUS = fixture('pywa/status_delivered.json');

let service: TestService;
afterEach(async () => {
  await service?.close();
});

/** The test service on SQLite, or on a fresh PostgreSQL schema dropped after the test. */
function serviceWith(
  engine: 'SQLite' | 'PostgreSQL',
  overrides: Partial<ServiceConfig>,
): Promise<TestService> {
  return serviceOn(engine, 'wameter_secret_scope', overrides);
}

/** The client's secret bound to its WABA, beside the provider's unbound one. */
const BOUND_AND_UNBOUND: Partial<ServiceConfig> = {
  appSecrets: [{ secret: CLIENT_SECRET, wabas: [CLIENT_WABA] }, PROVIDER_SECRET],
};

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

/** The entry ids of a webhook body. */
function entryIds(body: Buffer): string[] {
  return (JSON.parse(body.toString('utf8')) as { entry: { id: string }[] }).entry.map((entry) => entry.id);
}

/** Whatever was stored: raw bodies (readable or not) and events. */
async function storedNothing(): Promise<void> {
  expect(await service.store.getRawWebhook(1)).toBeUndefined();
  expect(await service.store.listUnreadableWebhooks(10)).toEqual([]);
  expect(await service.store.listEvents()).toEqual([]);
}

describe.each(['SQLite', 'PostgreSQL'] as const)('a secret bound to WABAs (%s)', (engine) => {
  it("ties no number: a client naming another client's phone_number_id takes none of its statuses", async () => {
    service = await serviceWith(engine, BOUND_AND_UNBOUND);
    const VICTIM_NUMBER = 'PN-VICTIM';
    const USER = '919800000002';
    // The other client's number, tied to its WABA by an inbound; a status of its that names no WABA.
    await service.postEvents(
      [
        {
          kind: 'inbound',
          at: '2025-10-01T09:00:00Z',
          waba: OTHER_WABA,
          business: VICTIM_NUMBER,
          user: '919800000001',
          id: 'wamid.in',
        },
        {
          kind: 'status',
          at: '2025-10-02T09:00:00Z',
          id: 'wamid.orphan',
          status: 'delivered',
          business: VICTIM_NUMBER,
          user: USER,
        },
      ],
      KEY_ALL,
    );
    const listedBefore = await service.store.listEvents([OTHER_WABA]);
    expect(listedBefore.map((event) => event.kind)).toEqual(['inbound', 'status']);
    // The client signs, with its own app's secret, a status of its WABA naming the victim's number and user.
    const forged = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: CLIENT_WABA,
          changes: [
            {
              field: 'messages',
              value: {
                messaging_product: 'whatsapp',
                metadata: { display_phone_number: '15550000000', phone_number_id: VICTIM_NUMBER },
                statuses: [
                  { id: 'wamid.forged', status: 'delivered', timestamp: '1759298400', recipient_id: USER },
                ],
              },
            },
          ],
        },
      ],
    });
    expect((await service.postWebhook(forged, { secret: CLIENT_SECRET })).status).toBe(200);
    expect(await service.store.listEvents([OTHER_WABA])).toEqual(listedBefore);
    expect(await service.store.listWabas(VICTIM_NUMBER)).toEqual([OTHER_WABA]);
  });

  it("takes a real webhook of its own WABA, as any secret's", async () => {
    service = await serviceWith(engine, BOUND_AND_UNBOUND);
    expect(entryIds(CLIENT_STATUS)).toEqual([CLIENT_WABA]);
    const response = await service.postWebhook(CLIENT_STATUS, { secret: CLIENT_SECRET });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ received: true, duplicate: false, events: 1 });
    expect((await service.store.listEvents()).map((event) => event.waba)).toEqual([CLIENT_WABA]);
  });

  it("refuses a real webhook of another client's WABA 403 FORBIDDEN_WEBHOOK_WABA, stores nothing, counts and logs it without the secret", async () => {
    service = await serviceWith(engine, BOUND_AND_UNBOUND);
    expect(entryIds(OTHER_STATUS)).toEqual([OTHER_WABA]);
    const response = await service.postWebhook(OTHER_STATUS, { secret: CLIENT_SECRET });
    expect(response.status).toBe(403);
    const error = await errorOf(response);
    expect(error.code).toBe('FORBIDDEN_WEBHOOK_WABA');
    expect(error.message).toContain(`This body names WABA "${OTHER_WABA}".`);
    expect(error.message).not.toContain(CLIENT_WABA);
    await storedNothing();
    expect(service.metrics.value('webhooks_rejected_total', { reason: 'forbidden_waba' })).toBe(1);
    expect(service.metrics.value('webhooks_received_total')).toBe(0);
    const refusals = service.logs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.level === 'warn');
    expect(refusals).toEqual([
      expect.objectContaining({
        msg: 'webhook refused: its app secret may not sign for a WABA it names',
        appSecret: 0,
        wabas: [OTHER_WABA],
      }),
    ]);
    expect(service.logs.join('\n')).not.toContain(CLIENT_SECRET);

    // The same bytes signed by the provider's unbound secret: taken, and new (nothing was kept of the first).
    const signedByProvider = await service.postWebhook(OTHER_STATUS, { secret: PROVIDER_SECRET });
    expect(signedByProvider.status).toBe(200);
    expect(await signedByProvider.json()).toMatchObject({ duplicate: false, events: 1 });
  });

  it("refuses a volume-tier statement for a portfolio it shares with another client's WABA: it would price that WABA too", async () => {
    expect(entryIds(CLIENT_TIER_STATEMENT)).toEqual([CLIENT_WABA]);
    service = await serviceWith(engine, {
      ...BOUND_AND_UNBOUND,
      accountsPath: accountsWith([[CLIENT_WABA, OTHER_WABA]]),
    });
    const response = await service.postWebhook(CLIENT_TIER_STATEMENT, { secret: CLIENT_SECRET });
    expect(response.status).toBe(403);
    const error = await errorOf(response);
    expect(error.code).toBe('FORBIDDEN_WEBHOOK_WABA');
    expect(error.message).toContain(
      `This body holds a volume-tier statement for WABA "${CLIENT_WABA}", which prices its whole portfolio, and the portfolio holds a WABA this secret is not bound to`,
    );
    expect(error.message).not.toContain(OTHER_WABA);
    await storedNothing();
    expect(service.metrics.value('webhooks_rejected_total', { reason: 'forbidden_waba' })).toBe(1);
    expect(service.logs.join('\n')).not.toContain(CLIENT_SECRET);
    // Meta's own app (the provider's unbound secret) brings it: taken.
    const byProvider = await service.postWebhook(CLIENT_TIER_STATEMENT, { secret: PROVIDER_SECRET });
    expect(byProvider.status).toBe(200);
    expect(await byProvider.json()).toMatchObject({ duplicate: false, events: 1 });
  });

  it('lists the stored WABAs once for a body of many volume-tier statements (not once a statement)', async () => {
    service = await serviceWith(engine, {
      ...BOUND_AND_UNBOUND,
      accountsPath: accountsWith([[CLIENT_WABA], [OTHER_WABA]]),
    });
    const statement = JSON.parse(CLIENT_TIER_STATEMENT.toString('utf8')) as {
      entry: { changes: { value: { volume_tier_info: { tier_update_time: number } } }[] }[];
    };
    const entry = statement.entry[0]!;
    const many = {
      ...statement,
      entry: Array.from({ length: 50 }, (_, i) => ({
        ...entry,
        changes: entry.changes.map((change) => ({
          ...change,
          value: {
            ...change.value,
            volume_tier_info: { ...change.value.volume_tier_info, tier_update_time: 1743451903 + i },
          },
        })),
      })),
    };
    const store = service.store;
    const listWabas = store.listWabas.bind(store);
    let listed = 0;
    store.listWabas = () => {
      listed += 1;
      return listWabas();
    };
    const response = await service.postWebhook(Buffer.from(JSON.stringify(many)), { secret: CLIENT_SECRET });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ events: 50 });
    expect(listed).toBeLessThanOrEqual(1);
  });

  it('takes a volume-tier statement when the secret is bound to every WABA of the portfolio, or the portfolio is its own', async () => {
    service = await serviceWith(engine, {
      appSecrets: [{ secret: CLIENT_SECRET, wabas: [CLIENT_WABA, OTHER_WABA] }],
      accountsPath: accountsWith([[CLIENT_WABA, OTHER_WABA]]),
    });
    const all = await service.postWebhook(CLIENT_TIER_STATEMENT, { secret: CLIENT_SECRET });
    expect(all.status).toBe(200);
    await service.close();
    service = await serviceWith(engine, {
      ...BOUND_AND_UNBOUND,
      accountsPath: accountsWith([[CLIENT_WABA], [OTHER_WABA]]),
    });
    const own = await service.postWebhook(CLIENT_TIER_STATEMENT, { secret: CLIENT_SECRET });
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({ events: 1 });
  });

  it('refuses a body naming its own WABA and another one whole: nothing of either entry is stored', async () => {
    service = await serviceWith(engine, BOUND_AND_UNBOUND);
    const own = JSON.parse(CLIENT_STATUS.toString('utf8')) as { entry: unknown[] };
    const other = JSON.parse(OTHER_STATUS.toString('utf8')) as { entry: unknown[] };
    const both = Buffer.from(JSON.stringify({ ...own, entry: [...own.entry, ...other.entry] }));
    const response = await service.postWebhook(both, { secret: CLIENT_SECRET });
    expect(response.status).toBe(403);
    expect((await errorOf(response)).message).toContain(`"${OTHER_WABA}"`);
    await storedNothing();
  });
});

describe('a secret bound to WABAs, over every real webhook body', () => {
  it('signs each body whose WABAs it is bound to, and none when bound to other WABAs', async () => {
    const bodies = webhookFixtures();
    const everyWaba = [...new Set(bodies.flatMap(({ body }) => entryIds(body)))];
    service = await createTestService({
      appSecrets: [
        { secret: CLIENT_SECRET, wabas: everyWaba },
        { secret: PROVIDER_SECRET, wabas: ['999000999'] },
      ],
    });
    for (const { name, body } of bodies) {
      const refused = await service.postWebhook(body, { secret: PROVIDER_SECRET });
      expect(refused.status, name).toBe(403);
      expect((await errorOf(refused)).code, name).toBe('FORBIDDEN_WEBHOOK_WABA');
    }
    expect(await service.store.listEvents()).toEqual([]);
    for (const { name, body } of bodies) {
      const taken = await service.postWebhook(body, { secret: CLIENT_SECRET });
      expect(taken.status, name).toBe(200);
    }
    expect(service.metrics.value('webhooks_received_total')).toBe(bodies.length);
  });
});

describe('what a bound secret signs beyond a whole webhook of its WABAs', () => {
  const status = { kind: 'status', at: '2025-07-15T10:00:00Z', id: 'wamid.line1', status: 'delivered' };

  it('takes no event line, naming a WABA or not, from a bound secret or an unbound one: kept unreadable (400)', async () => {
    // Event lines go to POST /v1/events (an API key scoped to WABAs), never to Meta's webhook route.
    service = await createTestService(BOUND_AND_UNBOUND);
    const signed: [object, string][] = [
      [status, CLIENT_SECRET],
      [{ ...status, waba: CLIENT_WABA }, CLIENT_SECRET],
      [{ ...status, waba: OTHER_WABA }, CLIENT_SECRET],
      [{ ...status, id: 'wamid.line2' }, PROVIDER_SECRET],
    ];
    for (const [line, secret] of signed) {
      const response = await service.postWebhook(JSON.stringify(line), { secret });
      expect(response.status, JSON.stringify(line)).toBe(400);
      const error = await errorOf(response);
      expect(error.code).toBe('MALFORMED_WEBHOOK');
      expect(error.message).toContain('event lines go to POST /v1/events');
    }
    expect(await service.store.listEvents()).toEqual([]);
    expect(await service.store.listUnreadableWebhooks(10)).toHaveLength(signed.length);
  });

  it('refuses a webhook with an entry whose id is missing, though its items would only be unreadable', async () => {
    service = await createTestService(BOUND_AND_UNBOUND);
    const body = JSON.parse(CLIENT_STATUS.toString('utf8')) as { entry: Record<string, unknown>[] };
    delete body.entry[0]!.id;
    const response = await service.postWebhook(JSON.stringify(body), { secret: CLIENT_SECRET });
    expect(response.status).toBe(403);
    await storedNothing();
  });

  it('keeps a signed body that is not JSON as unreadable (400), as from any secret: it makes no event', async () => {
    service = await createTestService(BOUND_AND_UNBOUND);
    const body = '{"object":"whatsapp_business_account","entry":[{"id":"5467539754836534",,}]}';
    const response = await service.postWebhook(body, { secret: CLIENT_SECRET });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).code).toBe('MALFORMED_JSON');
    expect(await service.store.listUnreadableWebhooks(10)).toHaveLength(1);
    expect(await service.store.listEvents()).toEqual([]);
  });

  it("counts a refusal against the client's webhook failure limit, logging only those answered 403", async () => {
    service = await createTestService({ ...BOUND_AND_UNBOUND, rateLimit: { perSecond: 1, burst: 1 } });
    expect((await service.postWebhook(OTHER_STATUS, { secret: CLIENT_SECRET })).status).toBe(403);
    expect((await service.postWebhook(OTHER_STATUS, { secret: CLIENT_SECRET })).status).toBe(429);
    expect(service.logs.filter((line) => line.includes('webhook refused'))).toHaveLength(1);
    // The client's own deliveries are never limited.
    expect((await service.postWebhook(CLIENT_STATUS, { secret: CLIENT_SECRET })).status).toBe(200);
  });
});
