// Every answer the service gives conforms to the schema GET /openapi.json declares for its route and status
// (clients are generated from that document). A real service on realistic traffic — three WABAs, two of them
// sharing a portfolio, volume tiers, pending and failed messages, a business-scoped user id, findings — is
// asked every route the document lists, with typical and edge parameters and a few errors each; every JSON
// body is validated (JSON Schema 2020-12, the document's $refs resolved) against the schema of its route and
// status (else the route's `default`); a status the route does not declare, a content type it does not, and
// a field an answer has that its schema does not name are mismatches too, and so is a JSON body the service
// took that the route's request schema refuses. On SQLite and on PostgreSQL (whose aggregates must answer
// the same JSON types).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import formatsModule from 'ajv-formats';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bundledCardsWithTiers,
  createTestService,
  fixture,
  KEY_ALL,
  KEY_W1,
  KEY_W2,
  conversationLines,
  mountDashboardRoutes,
  TEST_POSTGRES_URL,
  type TestService,
  deliveredUtility,
} from '../../test/server-kit.js';
import { openPostgresStore } from '../store/postgres/postgres-store.js';
import type { Store } from '../store/store.js';
import { openApiDocument } from './openapi.js';

// ajv-formats is CommonJS: read from ESM, its plugin is the module's `default`.
const addFormats = formatsModule.default;

type Schema = Record<string, unknown>;
interface ResponseObject {
  content?: Record<string, { schema?: Schema }>;
}
interface Operation {
  requestBody?: ResponseObject;
  responses: Record<string, ResponseObject>;
}
type Document = {
  components: { schemas: Record<string, Schema> };
  paths: Record<string, Record<string, Operation>>;
};

/** A validator of the answers the document (as served) declares, and the mismatches found so far. */
class Conformance {
  private readonly ajv = new Ajv2020({ strict: true, strictTypes: false, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();
  readonly mismatches: string[] = [];
  /** `METHOD path-template` → statuses seen (each route must be asked). */
  readonly seen = new Map<string, Set<number>>();

  constructor(private readonly document: Document) {
    addFormats(this.ajv);
    // OpenAPI 3.1's schema object adds `example` to JSON Schema's vocabulary.
    this.ajv.addKeyword('example');
    // The document's `#/components/schemas/X` resolved as a schema of its own.
    this.ajv.addSchema({ $id: 'components', $defs: this.rebased(document.components.schemas) });
  }

  /**
   * `schema` with its $refs pointing at the components added above, and every object schema that lists its
   * `properties` but says nothing of others closed (`additionalProperties: false`): a field the answer has and
   * the document does not name would be dropped by a generated client, so it is a mismatch too.
   */
  private rebased<T>(schema: T, isAnswer = true): T {
    const copy = JSON.parse(
      JSON.stringify(schema).replaceAll('"#/components/schemas/', '"components#/$defs/'),
    ) as T;
    const close = (node: unknown): void => {
      if (Array.isArray(node)) {
        node.forEach(close);
        return;
      }
      if (typeof node !== 'object' || node === null) return;
      const object = node as Schema;
      if (object.properties !== undefined && !('additionalProperties' in object)) {
        object.additionalProperties = false;
      }
      Object.values(object).forEach(close);
    };
    if (isAnswer) close(copy);
    return copy;
  }

  /**
   * Checks a JSON body the service took (answered 2xx) against the route's request schema: a client generated
   * from the document must be able to send what the service takes.
   */
  checkRequest(method: string, template: string, body: unknown, what: string): void {
    const schema =
      this.document.paths[template]?.[method.toLowerCase()]?.requestBody?.content?.['application/json']
        ?.schema;
    if (schema === undefined) return;
    const key = `request ${method} ${template}`;
    let validate = this.compiled.get(key);
    if (validate === undefined) {
      validate = this.ajv.compile(this.rebased(schema, false));
      this.compiled.set(key, validate);
    }
    if (!validate(body)) {
      const errors = (validate.errors ?? [])
        .slice(0, 5)
        .map(
          (error) => `${error.instancePath || '/'} ${error.message ?? ''} ${JSON.stringify(error.params)}`,
        );
      this.mismatches.push(
        `${method} ${template} took a body its request schema refuses (${what}): ${errors.join('; ')}`,
      );
    }
  }

  /** Checks one answer of `method template` (a path of the document); returns its JSON body, if any. */
  async check(method: string, template: string, response: Response, what: string): Promise<unknown> {
    const route = `${method} ${template}`;
    const statuses = this.seen.get(route) ?? new Set<number>();
    statuses.add(response.status);
    this.seen.set(route, statuses);
    const label = `${route} → ${response.status} (${what})`;
    const operation = this.document.paths[template]?.[method.toLowerCase()];
    if (operation === undefined) {
      this.mismatches.push(`${label}: the document has no such operation`);
      return undefined;
    }
    const status = String(response.status);
    const declared = operation.responses[status] ?? operation.responses.default;
    const text = await response.text();
    if (declared === undefined) {
      this.mismatches.push(
        `${label}: status not declared (declared: ${Object.keys(operation.responses).join(', ')}): ${text.slice(0, 200)}`,
      );
      return undefined;
    }
    const contentType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
    const content = declared.content ?? {};
    if (Object.keys(content).length === 0) {
      if (text !== '') this.mismatches.push(`${label}: declares no body, answered ${contentType}`);
      return undefined;
    }
    const media = content[contentType];
    if (media === undefined) {
      this.mismatches.push(
        `${label}: content type ${contentType} not declared (${Object.keys(content).join(', ')})`,
      );
      return undefined;
    }
    if (contentType !== 'application/json') return text;
    const body: unknown = JSON.parse(text);
    if (media.schema === undefined) return body;
    const key = `${route} ${status in operation.responses ? status : 'default'}`;
    let validate = this.compiled.get(key);
    if (validate === undefined) {
      validate = this.ajv.compile(this.rebased(media.schema));
      this.compiled.set(key, validate);
    }
    if (!validate(body)) {
      const errors = (validate.errors ?? [])
        .slice(0, 5)
        .map(
          (error) => `${error.instancePath || '/'} ${error.message ?? ''} ${JSON.stringify(error.params)}`,
        );
      this.mismatches.push(`${label}: ${errors.join('; ')}`);
    }
    return body;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'wameter-conformance-'));
const accountsPath = join(dir, 'accounts.json');
writeFileSync(
  accountsPath,
  JSON.stringify({
    accounts: [
      { waba: 'W1', timezone: 'UTC', currency: 'USD', portfolio: 'P1' },
      { waba: 'W2', timezone: 'Asia/Kolkata', currency: 'USD', portfolio: 'P1' },
      { waba: 'W3', timezone: 'UTC', currency: 'USD', portfolio: 'P3' },
    ],
  }),
);
const cardsDir = bundledCardsWithTiers(dir, ['India,$US,Utility,1,2,0.0014', 'India,$US,Utility,3,,0.0012']);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY_W3 = 'key-client-three-w3';
const KEY_P1 = 'key-portfolio-one';
let service: TestService;
let conformance: Conformance;

/** A utility template of `waba` to an Indian user, delivered at once (a tiered charge). */
const tiered = deliveredUtility;

const bearer = (key: string | undefined): Record<string, string> =>
  key === undefined ? {} : { Authorization: `Bearer ${key}` };

function request(
  method: string,
  path: string,
  options: { key?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...bearer(options.key), ...options.headers };
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['Content-Type'] ??= 'application/json';
  }
  return Promise.resolve(
    service.app.request(path, { method, headers, ...(body === undefined ? {} : { body }) }),
  );
}

/** Asks `method path` and checks the answer against the document's `template`; returns the JSON body. */
async function ask(
  method: string,
  template: string,
  path: string,
  options: { key?: string; body?: unknown; headers?: Record<string, string>; status?: number } = {},
): Promise<unknown> {
  const response = await request(method, path, options);
  if (options.status !== undefined && response.status !== options.status) {
    conformance.mismatches.push(
      `${method} ${path}: expected ${options.status}, got ${response.status} ${await response.clone().text()}`,
    );
  }
  if (response.ok && options.body !== undefined && typeof options.body !== 'string') {
    conformance.checkRequest(method, template, options.body, JSON.stringify(options.body).slice(0, 100));
  }
  return conformance.check(method, template, response, path);
}

/** The document as GET /openapi.json serves it (JSON: what clients read). */
const servedDocument = (): Document => JSON.parse(JSON.stringify(openApiDocument)) as Document;

describe.each(['SQLite', 'PostgreSQL'] as const)(
  'every answer conforms to GET /openapi.json (%s)',
  (engine) => {
    let pgStore: Store | undefined;
    const pgSchema = `h_oas_${randomBytes(6).toString('hex')}`;
    beforeAll(async () => {
      const store =
        engine === 'SQLite' ? undefined : await openPostgresStore(TEST_POSTGRES_URL, { schema: pgSchema });
      service = await createTestService(
        {
          accountsPath,
          rateCardPaths: [cardsDir],
          apiKeys: [
            { name: 'admin', key: KEY_ALL, wabas: '*' },
            { name: 'client-one', key: KEY_W1, wabas: ['W1'] },
            { name: 'client-two', key: KEY_W2, wabas: ['W2'] },
            { name: 'client-three', key: KEY_W3, wabas: ['W3'] },
            { name: 'portfolio-one', key: KEY_P1, wabas: ['W1', 'W2'] },
          ],
        },
        store === undefined ? {} : { store },
      );
      if (store !== undefined) pgStore = store;
      await mountDashboardRoutes(service, { accountsPath, rateCardPaths: [cardsDir] });
      service.clock.nowMs = Date.parse('2025-11-20T12:00:00Z');
      const document = (await (await service.get('/openapi.json')).json()) as Document;
      conformance = new Conformance(document);
      const posted = await service.postEvents([
        ...conversationLines('W1', 'PN-W1', '+15551230001', 'w1a'),
        ...conversationLines('W2', 'PN-W2', '+15551230002', 'w2a'),
        ...conversationLines('W3', 'PN-W3', '+15551230003', 'w3a'),
        // P1's October utility in India crosses the bands: W1's two, then W2's two.
        tiered('W1', 't1', '2025-10-02T10:00:00Z', '919810000001'),
        tiered('W1', 't2', '2025-10-03T10:00:00Z', '919810000002'),
        tiered('W2', 't3', '2025-10-10T10:00:00Z', '919820000001'),
        tiered('W2', 't4', '2025-10-11T10:00:00Z', '919820000002'),
        // Pending (sent, never delivered) and failed messages.
        {
          kind: 'outbound',
          at: '2025-10-15T10:00:00Z',
          waba: 'W1',
          business: 'PN-W1',
          user: '+15551230001',
          id: 'pending1',
          template: 'marketing',
        },
        {
          kind: 'outbound',
          at: '2025-10-16T10:00:00Z',
          waba: 'W1',
          business: 'PN-W1',
          user: '+15551230001',
          id: 'failed1',
          template: 'marketing',
        },
        { kind: 'status', at: '2025-10-16T10:00:05Z', waba: 'W1', id: 'failed1', status: 'failed' },
        // Older traffic: a CBP-2023 month of W3 (free service conversations), and a unit years before the others
        // (the overview's DAILY buckets are then truncated).
        ...conversationLines('W3', 'PN-W3', '+15551230003', 'w3old').map((line) => ({
          ...line,
          at: (line as { at: string }).at.replace('2025-07', '2023-07'),
        })),
        {
          kind: 'outbound',
          at: '2019-03-01T10:00:00Z',
          waba: 'W3',
          business: 'PN-W3',
          user: '+15551230003',
          id: 'ancient1',
          template: 'marketing',
          delivered_at: '2019-03-01T10:00:01Z',
        },
        // A template to a number of no known country: a finding, an unpriced unit.
        tiered('W3', 'unknown1', '2025-10-05T10:00:00Z', '999123'),
      ]);
      expect(posted.status).toBe(200);
      for (const name of [
        'meta-docs/incoming_text_basic.json',
        'meta-docs/status_sent_marketing_pmp_with_conversation.json',
        'meta-docs/status_delivered_marketing_pmp_bsuid_contacts.json',
        'meta-docs/status_failed_131049_ecosystem.json',
        'meta-docs/incoming_text_bsuid.json',
      ]) {
        const response = await service.postWebhook(fixture(name));
        await conformance.check('POST', '/webhooks/whatsapp', response, name);
      }
      await service.rating.current();
    });

    afterAll(async () => {
      await service.close();
      if (pgStore !== undefined) {
        await pgStore.close();
        const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
        await admin.connect();
        await admin.query(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`);
        await admin.end();
      }
    });

    it('answers every route the document lists as it declares', async () => {
      // Webhooks: handshake, duplicate, unsigned, badly signed, not a webhook.
      await ask(
        'GET',
        '/webhooks/whatsapp',
        '/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=verify-token-xyz&hub.challenge=42',
        { status: 200 },
      );
      await ask(
        'GET',
        '/webhooks/whatsapp',
        '/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=42',
        { status: 403 },
      );
      await ask('GET', '/webhooks/whatsapp', '/webhooks/whatsapp?hub.verify_token=verify-token-xyz', {
        status: 400,
      });
      await conformance.check(
        'POST',
        '/webhooks/whatsapp',
        await service.postWebhook(fixture('meta-docs/incoming_text_basic.json')),
        'duplicate',
      );
      await conformance.check(
        'POST',
        '/webhooks/whatsapp',
        await service.postWebhook('{"a":1}', { signature: null }),
        'unsigned',
      );
      await conformance.check(
        'POST',
        '/webhooks/whatsapp',
        await service.postWebhook('{"a":1}', { signature: 'sha256=00' }),
        'bad signature',
      );
      await conformance.check(
        'POST',
        '/webhooks/whatsapp',
        await service.postWebhook('{"kind":"inbound"}'),
        'event line',
      );
      await conformance.check(
        'POST',
        '/webhooks/whatsapp',
        await service.postWebhook('not json'),
        'not json',
      );

      // Events: accepted, duplicates, rejected lines, unread fields, errors.
      const events = (lines: string, key?: string, headers: Record<string, string> = {}) =>
        ask('POST', '/v1/events', '/v1/events', {
          key,
          body: lines,
          headers: { 'Content-Type': 'application/x-ndjson', ...headers },
        });
      await events(JSON.stringify(conversationLines('W1', 'PN-W1', '+15551230001', 'w1a')[0]), KEY_ALL);
      await events(
        [
          JSON.stringify({
            kind: 'inbound',
            at: '2025-10-20T09:00:00Z',
            waba: 'W1',
            business: 'PN-W1',
            user: '+15551230009',
            id: 'x1',
            colour: 'red',
          }),
          'garbage',
          '{"kind":"outbound"}',
        ].join('\n'),
        KEY_W1,
      );
      // More than 1000 rejections (rejected_unlisted), and a field the contract does not name (did_you_mean).
      await events(Array.from({ length: 1002 }, () => 'x').join('\n'), KEY_ALL);
      await events(
        JSON.stringify({
          kind: 'outbound',
          at: '2025-10-21T09:00:00Z',
          waba: 'W1',
          business: 'PN-W1',
          user: '+15551230001',
          id: 'x3',
          category: 'marketing',
        }),
        KEY_W1,
      );
      await events('{}', undefined);
      await events(
        JSON.stringify({
          kind: 'inbound',
          at: '2025-10-20T09:00:00Z',
          waba: 'W2',
          business: 'PN-W2',
          user: '+15551230009',
          id: 'x2',
        }),
        KEY_W1,
      );
      await events('{}', KEY_ALL, { 'Content-Encoding': 'gzip' });
      await service.rating.current();

      // Units: pages, filters, tiers seen by a key for the whole portfolio and one for part of it.
      const first = (await ask('GET', '/v1/units', '/v1/units?limit=2', { key: KEY_ALL, status: 200 })) as {
        next_cursor: string | null;
      };
      expect(first.next_cursor).not.toBeNull();
      await ask('GET', '/v1/units', `/v1/units?limit=2&cursor=${encodeURIComponent(first.next_cursor!)}`, {
        key: KEY_ALL,
        status: 200,
      });
      await ask('GET', '/v1/units', '/v1/units?limit=1000', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/units', '/v1/units', { key: KEY_W1, status: 200 });
      await ask('GET', '/v1/units', '/v1/units', { key: KEY_P1, status: 200 });
      await ask(
        'GET',
        '/v1/units',
        '/v1/units?waba=W2&category=utility&type=regular&market=India&from=2025-10-01T00:00:00Z&to=1767225600',
        { key: KEY_W2, status: 200 },
      );
      await ask(
        'GET',
        '/v1/units',
        '/v1/units?user=user.9373795779eb6441c8adb2eaee5b848e7dd174ddd302d7db62142f4722d574b6',
        { key: KEY_ALL, status: 200 },
      );
      await ask('GET', '/v1/units', '/v1/units?business=PN-W3&category=MARKETING', {
        key: KEY_ALL,
        status: 200,
      });
      await ask('GET', '/v1/units', '/v1/units?limit=0', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/units', '/v1/units?cursor=nonsense', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/units', '/v1/units?colour=red', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/units', '/v1/units', { status: 401 });
      await ask('GET', '/v1/units', '/v1/units?waba=W2', { key: KEY_W1, status: 403 });

      // CSV: the content type only.
      await ask('GET', '/v1/units.csv', '/v1/units.csv', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/units.csv', '/v1/units.csv?waba=W1', { key: KEY_W1, status: 200 });
      await ask('GET', '/v1/units.csv', '/v1/units.csv?market=Atlantis', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/units.csv', '/v1/units.csv', { status: 401 });
      await ask('GET', '/v1/units.csv', '/v1/units.csv?waba=W3', { key: KEY_W1, status: 403 });

      // Totals.
      await ask('GET', '/v1/totals', '/v1/totals', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/totals', '/v1/totals?waba=W1', { key: KEY_W1, status: 200 });
      await ask('GET', '/v1/totals', '/v1/totals?waba=W3&category=utility', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/totals', '/v1/totals?waba=W9', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/totals', '/v1/totals?category=nope', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/totals', '/v1/totals', { key: 'wrong', status: 401 });
      await ask('GET', '/v1/totals', '/v1/totals?waba=W3', { key: KEY_W2, status: 403 });

      // Explain: a number, a scoped id joined to a number, a user with pending and failed messages, a finding.
      await ask('GET', '/v1/explain', '/v1/explain?user=%2B15551230001', { key: KEY_W1, status: 200 });
      await ask('GET', '/v1/explain', '/v1/explain?user=919820000001&waba=W2', { key: KEY_W2, status: 200 });
      await ask('GET', '/v1/explain', '/v1/explain?user=919810000001&business=PN-W1', {
        key: KEY_ALL,
        status: 200,
      });
      await ask('GET', '/v1/explain', '/v1/explain?user=999123', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/explain', '/v1/explain?user=16505551234', { key: KEY_ALL, status: 200 });
      await ask(
        'GET',
        '/v1/explain',
        '/v1/explain?user=user.9373795779eb6441c8adb2eaee5b848e7dd174ddd302d7db62142f4722d574b6',
        { key: KEY_ALL, status: 200 },
      );
      await ask('GET', '/v1/explain', '/v1/explain?user=%2B15550000000', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/explain', '/v1/explain', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/explain', '/v1/explain?user=abc', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/explain', '/v1/explain?user=%2B15551230001', { status: 401 });
      await ask('GET', '/v1/explain', '/v1/explain?user=%2B15551230003&waba=W3', {
        key: KEY_W1,
        status: 403,
      });

      // Analytics: both metrics, every granularity, every dimension.
      const range = 'start=1746057600&end=1767225600';
      for (const metric of ['conversation', 'pricing']) {
        for (const granularity of ['HALF_HOUR', 'DAILY', 'monthly']) {
          await ask(
            'GET',
            '/v1/analytics',
            `/v1/analytics?start=1759276800&end=1764547200&metric=${metric}&granularity=${granularity}`,
            { key: KEY_ALL, status: 200 },
          );
        }
        const dimensions =
          metric === 'conversation'
            ? 'CONVERSATION_CATEGORY,CONVERSATION_TYPE,CONVERSATION_DIRECTION,COUNTRY,PHONE,WABA,MARKET,CURRENCY,TIER'
            : 'PRICING_CATEGORY,PRICING_TYPE,CONVERSATION_DIRECTION,COUNTRY,PHONE,WABA,MARKET,CURRENCY,TIER';
        await ask(
          'GET',
          '/v1/analytics',
          `/v1/analytics?${range}&metric=${metric}&granularity=MONTHLY&dimensions=${dimensions}`,
          { key: KEY_ALL, status: 200 },
        );
        await ask(
          'GET',
          '/v1/analytics',
          `/v1/analytics?${range}&metric=${metric}&dimensions=TIER,WABA&waba=W2&time_zone=Asia/Kolkata`,
          { key: KEY_W2, status: 200 },
        );
      }
      await ask(
        'GET',
        '/v1/analytics',
        '/v1/analytics?start=2025-10-01T00:00:00Z&end=2025-11-01T00:00:00Z&dimensions=PHONE',
        { key: KEY_W1, status: 200 },
      );
      // As a tool written for Meta's API asks: its lists, metric types and filters (PHONE answers the display
      // numbers the fixtures' webhooks gave, null for numbers only send logs named).
      for (const metricTypes of ['["COST"]', '["VOLUME"]', '[]']) {
        await ask(
          'GET',
          '/v1/analytics',
          `/v1/analytics?${range}&granularity=MONTHLY&dimensions=${encodeURIComponent('["PHONE","PRICING_CATEGORY","TIER"]')}` +
            `&metric_types=${encodeURIComponent(metricTypes)}&phone_numbers=%5B%5D&country_codes=US,IN,BR` +
            '&pricing_types=REGULAR,FREE_CUSTOMER_SERVICE,FREE_ENTRY_POINT&pricing_categories=MARKETING,UTILITY,SERVICE',
          { key: KEY_ALL, status: 200 },
        );
      }
      await ask(
        'GET',
        '/v1/analytics',
        `/v1/analytics?${range}&dimensions=PHONE,CONVERSATION_TYPE&metric_types=CONVERSATION&conversation_directions=USER_INITIATED,BUSINESS_INITIATED&conversation_types=FREE_ENTRY,REGULAR&conversation_categories=SERVICE`,
        { key: KEY_ALL, status: 200 },
      );
      await ask('GET', '/v1/analytics', `/v1/analytics?${range}&pricing_categories=PROMO`, {
        key: KEY_ALL,
        status: 400,
      });
      await ask('GET', '/v1/analytics', `/v1/analytics?${range}&dimensions=TIER,CONVERSATION_TYPE`, {
        key: KEY_ALL,
        status: 400,
      });
      await ask('GET', '/v1/analytics', '/v1/analytics?start=1&end=1767225600&granularity=HALF_HOUR', {
        key: KEY_ALL,
        status: 400,
      });
      await ask('GET', '/v1/analytics', `/v1/analytics?${range}&dimensions=WABA,WABA`, {
        key: KEY_ALL,
        status: 400,
      });
      await ask('GET', '/v1/analytics', '/v1/analytics?end=1767225600', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/analytics', `/v1/analytics?${range}&time_zone=IST`, {
        key: KEY_ALL,
        status: 400,
      });
      await ask('GET', '/v1/analytics', `/v1/analytics?${range}`, { status: 401 });
      await ask('GET', '/v1/analytics', `/v1/analytics?${range}&waba=W1`, { key: KEY_W2, status: 403 });

      // Meta's Graph request for a WABA's analytics, its answers and refusals in Graph's shapes.
      const graphFieldsText = encodeURIComponent(
        'id,conversation_analytics.start(1746057600).end(1767225600).granularity(MONTHLY)' +
          '.dimensions(["CONVERSATION_TYPE","PHONE"]),pricing_analytics.start(1746057600).end(1767225600)' +
          '.granularity(DAILY).dimensions([PRICING_CATEGORY,TIER,COUNTRY]).metric_types([VOLUME,COST])',
      );
      for (const [template, path] of [
        ['/v1/graph/{version}/{waba}', '/v1/graph/v21.0/W2'],
        ['/v1/graph/{waba}', '/v1/graph/W2'],
      ] as const) {
        await ask('GET', template, `${path}?fields=${graphFieldsText}`, { key: KEY_ALL, status: 200 });
        await ask('GET', template, `${path}?fields=analytics.start(1)`, { key: KEY_ALL, status: 400 });
        await ask('GET', template, `${path}?fields=id&limit=5`, { key: KEY_ALL, status: 400 });
        await ask('GET', template, `${path}?fields=id`, { status: 401 });
        await ask('GET', template, `${path}?fields=id`, { key: KEY_W1, status: 403 });
      }

      // Re-rate: dry runs (a client's key too), one stored, with a period, another era, other cards; errors.
      await ask('POST', '/v1/rerate', '/v1/rerate', { key: KEY_W3, body: { dry_run: true }, status: 200 });
      await ask('POST', '/v1/rerate', '/v1/rerate', {
        key: KEY_P1,
        body: { dry_run: true, wabas: ['W2'] },
        status: 200,
      });
      await ask('POST', '/v1/rerate', '/v1/rerate', { key: KEY_W1, body: { dry_run: true }, status: 403 });
      await ask('POST', '/v1/rerate', '/v1/rerate', {
        key: KEY_ALL,
        body: { dry_run: true, from: '2025-10-01T00:00:00Z', to: '2025-11-01T00:00:00Z', wabas: ['W2'] },
        status: 200,
      });
      await ask('POST', '/v1/rerate', '/v1/rerate', {
        key: KEY_ALL,
        body: { dry_run: true, as_of_rules: 'CBP-2024-11' },
        status: 200,
      });
      await ask('POST', '/v1/rerate', '/v1/rerate', {
        key: KEY_ALL,
        body: { dry_run: true, as_of_rules: null, wabas: ['W3'] },
        status: 200,
      });
      const cheapCards = {
        wabas: ['W1', 'W3'],
        from: '2025-10-01T00:00:00Z',
        rate_cards: [
          {
            name: 'usd-2025-11-01-cheap.csv',
            csv: 'Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service\nIndia,USD,0.01,0.001,0.001,0.02,0\nNorth America,USD,0.02,0.002,0.002,,0\n',
          },
        ],
      };
      // A card of November alone leaves October's charges without a price: not stored unless asked for.
      await ask('POST', '/v1/rerate', '/v1/rerate', { key: KEY_ALL, body: cheapCards, status: 409 });
      const stored = (await ask('POST', '/v1/rerate', '/v1/rerate', {
        key: KEY_ALL,
        body: { ...cheapCards, allow_unpriced: true },
        status: 200,
      })) as { rating_id: string | null };
      const live = (await ask('POST', '/v1/rerate', '/v1/rerate', {
        key: KEY_ALL,
        body: { wabas: ['W1'] },
        status: 200,
      })) as { rating_id: string | null };
      await ask('POST', '/v1/rerate', '/v1/rerate', { key: KEY_W1, body: {}, status: 403 });
      await ask('POST', '/v1/rerate', '/v1/rerate', {
        key: KEY_W1,
        body: { dry_run: true, wabas: ['W3'] },
        status: 403,
      });
      await ask('POST', '/v1/rerate', '/v1/rerate', { key: KEY_ALL, body: { dryrun: true }, status: 400 });
      await ask('POST', '/v1/rerate', '/v1/rerate', {
        key: KEY_ALL,
        body: { dry_run: true, wabas: [] },
        status: 400,
      });
      await ask('POST', '/v1/rerate', '/v1/rerate', { key: KEY_ALL, body: 'not json', status: 400 });
      await ask('POST', '/v1/rerate', '/v1/rerate', { key: KEY_ALL, body: '[1]', status: 400 });
      await ask('POST', '/v1/rerate', '/v1/rerate', { body: { dry_run: true }, status: 401 });
      await ask('POST', '/v1/rerate', '/v1/rerate', {
        key: KEY_ALL,
        body: { rate_cards: [{ name: 'x.csv', csv: 'x'.repeat(1_100_000) }] },
        status: 413,
      });

      // Ratings, pages and reasons, for the whole portfolio and part of it; a re-rate's changes.
      const ratings = (await ask('GET', '/v1/ratings', '/v1/ratings?limit=2', {
        key: KEY_ALL,
        status: 200,
      })) as { next_cursor: string | null };
      if (ratings.next_cursor !== null) {
        await ask(
          'GET',
          '/v1/ratings',
          `/v1/ratings?limit=2&cursor=${encodeURIComponent(ratings.next_cursor)}`,
          { key: KEY_ALL, status: 200 },
        );
      }
      await ask('GET', '/v1/ratings', '/v1/ratings', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/ratings', '/v1/ratings?reason=rerate,upgrade', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/ratings', '/v1/ratings', { key: KEY_W1, status: 200 });
      await ask('GET', '/v1/ratings', '/v1/ratings', { key: KEY_W3, status: 200 });
      await ask('GET', '/v1/ratings', '/v1/ratings?reason=live&limit=1000', { key: KEY_W2, status: 200 });
      await ask('GET', '/v1/ratings', '/v1/ratings?reason=nope', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/ratings', '/v1/ratings?cursor=nope', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/ratings', '/v1/ratings', { status: 401 });
      expect(stored.rating_id).not.toBeNull();
      const changes = `/v1/ratings/${encodeURIComponent(stored.rating_id!)}/changes`;
      const page = (await ask('GET', '/v1/ratings/{id}/changes', `${changes}?limit=1`, {
        key: KEY_ALL,
        status: 200,
      })) as { next_cursor: string | null };
      if (page.next_cursor !== null) {
        await ask(
          'GET',
          '/v1/ratings/{id}/changes',
          `${changes}?limit=1&cursor=${encodeURIComponent(page.next_cursor)}`,
          { key: KEY_ALL, status: 200 },
        );
      }
      await ask('GET', '/v1/ratings/{id}/changes', changes, { key: KEY_ALL, status: 200 });
      if (live.rating_id !== null) {
        await ask(
          'GET',
          '/v1/ratings/{id}/changes',
          `/v1/ratings/${encodeURIComponent(live.rating_id)}/changes`,
          { key: KEY_ALL, status: 200 },
        );
      }
      await ask('GET', '/v1/ratings/{id}/changes', changes, { key: KEY_W1, status: 404 });
      await ask('GET', '/v1/ratings/{id}/changes', '/v1/ratings/nope/changes', { key: KEY_ALL, status: 404 });
      await ask('GET', '/v1/ratings/{id}/changes', `${changes}?cursor=nope`, { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/ratings/{id}/changes', changes, { status: 401 });

      // Dashboard.
      await ask('GET', '/v1/dashboard/accounts', '/v1/dashboard/accounts', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/dashboard/accounts', '/v1/dashboard/accounts', { key: KEY_W1, status: 200 });
      await ask('GET', '/v1/dashboard/accounts', '/v1/dashboard/accounts', { status: 401 });
      await ask('GET', '/v1/dashboard/accounts', '/v1/dashboard/accounts?x=1', { key: KEY_W1, status: 400 });
      for (const granularity of ['DAILY', 'MONTHLY']) {
        for (const by of ['category', 'market', 'business', 'waba']) {
          await ask(
            'GET',
            '/v1/dashboard/overview',
            `/v1/dashboard/overview?granularity=${granularity}&by=${by}`,
            { key: KEY_ALL, status: 200 },
          );
        }
      }
      await ask(
        'GET',
        '/v1/dashboard/overview',
        '/v1/dashboard/overview?waba=W2&time_zone=Asia/Kolkata&from=2025-10-01T00:00:00Z',
        { key: KEY_W2, status: 200 },
      );
      await ask('GET', '/v1/dashboard/overview', '/v1/dashboard/overview?by=colour', {
        key: KEY_ALL,
        status: 400,
      });
      await ask('GET', '/v1/dashboard/overview', '/v1/dashboard/overview', { status: 401 });
      await ask('GET', '/v1/dashboard/overview', '/v1/dashboard/overview?waba=W3', {
        key: KEY_W1,
        status: 403,
      });
      await ask('GET', '/v1/dashboard/allowances', '/v1/dashboard/allowances?month=2025-10', {
        key: KEY_ALL,
        status: 200,
      });
      await ask('GET', '/v1/dashboard/allowances', '/v1/dashboard/allowances?month=2025-10&waba=W2', {
        key: KEY_W2,
        status: 200,
      });
      await ask('GET', '/v1/dashboard/allowances', '/v1/dashboard/allowances', { key: KEY_W1, status: 200 });
      await ask('GET', '/v1/dashboard/allowances', '/v1/dashboard/allowances?month=2023-07', {
        key: KEY_W3,
        status: 200,
      });
      await ask('GET', '/v1/dashboard/allowances', '/v1/dashboard/allowances?month=2019-03', {
        key: KEY_ALL,
        status: 200,
      });
      await ask('GET', '/v1/dashboard/allowances', '/v1/dashboard/allowances?month=October', {
        key: KEY_ALL,
        status: 400,
      });
      await ask('GET', '/v1/dashboard/allowances', '/v1/dashboard/allowances', { status: 401 });
      await ask('GET', '/v1/dashboard/allowances', '/v1/dashboard/allowances?waba=W1', {
        key: KEY_W2,
        status: 403,
      });

      // Rate cards.
      const cards = (await ask('GET', '/v1/rate-cards', '/v1/rate-cards', { key: KEY_W1, status: 200 })) as {
        rate_cards: { id: string }[];
      };
      for (const card of cards.rate_cards) {
        await ask('GET', '/v1/rate-cards/{id}', `/v1/rate-cards/${encodeURIComponent(card.id)}`, {
          key: KEY_W1,
          status: 200,
        });
      }
      await ask('GET', '/v1/rate-cards', '/v1/rate-cards', { status: 401 });
      await ask('GET', '/v1/rate-cards/{id}', '/v1/rate-cards/usd-2024-11-01', { key: KEY_W1, status: 200 });
      await ask('GET', '/v1/rate-cards/{id}', '/v1/rate-cards/nope', { key: KEY_W1, status: 404 });
      await ask('GET', '/v1/rate-cards/{id}', '/v1/rate-cards/usd-2024-11-01', { status: 401 });

      // Findings.
      await ask('GET', '/v1/findings', '/v1/findings', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/findings', '/v1/findings?waba=W3&code=UNKNOWN_RECIPIENT&limit=1&offset=0', {
        key: KEY_ALL,
        status: 200,
      });
      await ask('GET', '/v1/findings', '/v1/findings', { key: KEY_W1, status: 200 });
      await ask('GET', '/v1/findings', '/v1/findings?limit=1&offset=1', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/findings', '/v1/findings?code=NOPE', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/findings', '/v1/findings', { status: 401 });
      await ask('GET', '/v1/findings', '/v1/findings?waba=W3', { key: KEY_W1, status: 403 });

      // Estimate: phones, CSV rows, a WABA and its number, errors.
      await ask('POST', '/v1/estimate', '/v1/estimate', {
        key: KEY_W1,
        body: { phones: ['919876543210', '+15551234567', 'abc'], template: 'utility', waba: 'W1' },
        status: 200,
      });
      await ask('POST', '/v1/estimate', '/v1/estimate', {
        key: KEY_ALL,
        body: {
          csv: 'phone,name\n919876543210,Asha\n447700900123,Bob\n',
          template: 'marketing',
          at: '2025-11-20T12:00:00Z',
          waba: 'W2',
          business: 'PN-W2',
        },
        status: 200,
      });
      await ask('POST', '/v1/estimate', '/v1/estimate', {
        key: KEY_W3,
        body: { phones: ['919876543210', '+15551230003'], template: 'marketing', at: '2023-07-20T00:00:00Z' },
        status: 200,
      });
      await ask('POST', '/v1/estimate', '/v1/estimate', {
        key: KEY_W2,
        body: { phones: ['919876543210'], template: 'authentication' },
        status: 200,
      });
      await ask('POST', '/v1/estimate', '/v1/estimate', {
        key: KEY_W1,
        body: { phones: ['919876543210'], template: 'utility', recipents: [] },
        status: 400,
      });
      await ask('POST', '/v1/estimate', '/v1/estimate', {
        key: KEY_W1,
        body: { phones: ['919876543210'], template: 'utility', waba: 'W1', business: 'PN-W2' },
        status: 400,
      });
      await ask('POST', '/v1/estimate', '/v1/estimate', { key: KEY_W1, body: '{"phones": [', status: 400 });
      await ask('POST', '/v1/estimate', '/v1/estimate', {
        body: { phones: ['919876543210'], template: 'utility' },
        status: 401,
      });
      await ask('POST', '/v1/estimate', '/v1/estimate', {
        key: KEY_W1,
        body: { phones: ['919876543210'], template: 'utility', waba: 'W3' },
        status: 403,
      });

      // Reconciliation: GET, and POST with Meta's export.
      await ask('GET', '/v1/reconciliation', '/v1/reconciliation', { key: KEY_ALL, status: 200 });
      await ask('GET', '/v1/reconciliation', '/v1/reconciliation?waba=W1', { key: KEY_W1, status: 200 });
      await ask('GET', '/v1/reconciliation', '/v1/reconciliation?waba=W9', { key: KEY_ALL, status: 400 });
      await ask('GET', '/v1/reconciliation', '/v1/reconciliation', { status: 401 });
      await ask('GET', '/v1/reconciliation', '/v1/reconciliation?waba=W2', { key: KEY_W1, status: 403 });
      const exported = JSON.parse(
        fixture('meta-docs/analytics_pricing_daily_tier_category_type_country.json').toString('utf8'),
      ) as unknown;
      await ask('POST', '/v1/reconciliation', '/v1/reconciliation', {
        key: KEY_ALL,
        body: { analytics: exported, waba: 'W1' },
        status: 200,
      });
      const conversations = JSON.parse(
        fixture('meta-docs/analytics_conversation_monthly_all_dimensions.json').toString('utf8'),
      ) as unknown;
      await ask('POST', '/v1/reconciliation', '/v1/reconciliation', {
        key: KEY_W1,
        body: { analytics: conversations, waba: 'W1' },
        status: 200,
      });
      await ask('POST', '/v1/reconciliation', '/v1/reconciliation', {
        key: KEY_W1,
        body: { analytics: { hello: 1 }, waba: 'W1' },
        status: 400,
      });
      await ask('POST', '/v1/reconciliation', '/v1/reconciliation', {
        key: KEY_W1,
        body: { analytics: exported, waba: '' },
        status: 400,
      });
      await ask('POST', '/v1/reconciliation', '/v1/reconciliation', {
        body: { analytics: exported },
        status: 401,
      });
      await ask('POST', '/v1/reconciliation', '/v1/reconciliation', {
        key: KEY_W1,
        body: { analytics: exported, waba: 'W2' },
        status: 403,
      });

      // Health, metrics, this document.
      await ask('GET', '/healthz', '/healthz', { status: 200 });
      await ask('GET', '/healthz/live', '/healthz/live', { status: 204 });
      await ask('GET', '/metrics', '/metrics', { status: 200 });
      await ask('GET', '/openapi.json', '/openapi.json', { status: 200 });
      // A parameter these routes do not take is refused, as on every route.
      await ask('GET', '/healthz', '/healthz?verbose=1', { status: 400 });
      await ask('GET', '/metrics', '/metrics?format=json', { status: 400 });
      await ask('GET', '/openapi.json', '/openapi.json?version=3', { status: 400 });
      await ask('GET', '/healthz/live', '/healthz/live?x=1');

      // Every operation of the document was asked.
      const operations = Object.entries(openApiDocument.paths).flatMap(([path, methods]) =>
        Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
      );
      expect(operations.filter((operation) => !conformance.seen.has(operation))).toEqual([]);
      expect(conformance.mismatches).toEqual([]);
    });
  },
);

describe('error answers of other configurations conform to GET /openapi.json', () => {
  it('answers a webhook route without its secrets as the document declares', async () => {
    const unconfigured = await createTestService({ appSecrets: [], verifyToken: null });
    try {
      const conformance = new Conformance(servedDocument());
      const posted = await unconfigured.postWebhook(fixture('meta-docs/incoming_text_basic.json'));
      expect(posted.status).toBe(503);
      await conformance.check('POST', '/webhooks/whatsapp', posted, 'no app secret');
      const handshake = await unconfigured.get(
        '/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1',
      );
      expect(handshake.status).toBe(403);
      await conformance.check('GET', '/webhooks/whatsapp', handshake, 'no verify token');
      expect(conformance.mismatches).toEqual([]);
    } finally {
      await unconfigured.close();
    }
  });

  it('answers 429 as the document declares, on a service with a rate limit', async () => {
    const limited = await createTestService({ rateLimit: { perSecond: 1, burst: 1 } });
    try {
      const conformance = new Conformance(servedDocument());
      const statuses: number[] = [];
      for (let i = 0; i < 3; i += 1) {
        const response = await limited.get('/v1/totals', KEY_ALL);
        statuses.push(response.status);
        await conformance.check('GET', '/v1/totals', response, `request ${i}`);
      }
      expect(statuses).toContain(429);
      // Failing webhook POSTs of one address are limited too.
      const webhookStatuses: number[] = [];
      for (let i = 0; i < 3; i += 1) {
        const response = await limited.postWebhook('{"a":1}', { signature: 'sha256=00' });
        webhookStatuses.push(response.status);
        await conformance.check('POST', '/webhooks/whatsapp', response, `bad signature ${i}`);
      }
      expect(webhookStatuses).toContain(429);
      // So are the webhook handshakes of one address.
      const handshakeStatuses: number[] = [];
      for (let i = 0; i < 3; i += 1) {
        const response = await limited.get(
          '/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1',
        );
        handshakeStatuses.push(response.status);
        await conformance.check('GET', '/webhooks/whatsapp', response, `handshake ${i}`);
      }
      expect(handshakeStatuses).toContain(429);
      expect(conformance.mismatches).toEqual([]);
    } finally {
      await limited.close();
    }
  });
});
