import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { eventKey } from '../core/events.js';
import { rateEvents } from '../core/rate-events.js';
import { ratingToJson, type TotalsJson } from '../core/report.js';
import { parseEventValue } from '../ingest/parse-event.js';
import { signMetaBody } from '../ingest/signature.js';
import {
  conversationLines,
  createDashboardService,
  createTestService,
  fixture,
  KEY_ALL,
  KEY_W1,
  KEY_W2,
  mountDashboardRoutes,
  OTHER_SECRET,
  SECRET,
  sharedPortfolioAccounts,
  VERIFY_TOKEN,
  webhookFixtures,
  type TestService,
  serviceOn as serviceOnEngine,
} from '../../test/server-kit.js';
import { loadPricingSetup } from './pricing-setup.js';
import { accountBookFor } from './rating-service.js';
import { ERRORS } from './errors.js';
import type { ServiceConfig } from './config.js';
import { openApiDocument } from './openapi.js';
import {
  messagesWebhook,
  scopedIdPairingWebhook,
  tierStatementWebhook,
} from '../../test/support/webhook-body.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { ratingsCursor } from '../store/store.js';

/** A well-formed event line, posted beside bad ones to show it is still taken. */
const INBOUND_OK_LINE = JSON.stringify({
  kind: 'inbound',
  at: '2025-07-10T09:00:00Z',
  waba: 'W1',
  business: 'PN1',
  user: '919876543210',
  id: 'wamid.ok',
});

let service: TestService;

afterEach(async () => {
  await service?.close();
});

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

/** `wameter rate` over the same lines: the batch answer the live service must equal. */
async function batchRating(lines: readonly object[]) {
  const pricing = await loadPricingSetup({ accountsPath: null, rateCardPaths: [] });
  if (!pricing.ok) throw new Error(pricing.error);
  const events = lines.flatMap((line) => {
    const parsed = parseEventValue(line);
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.value.events;
  });
  const { accountFor } = accountBookFor(pricing.value.accounts, events);
  return ratingToJson(
    rateEvents(events, { accountFor, rateBook: pricing.value.rateBook, markets: pricing.value.markets }),
    (waba) => accountFor(waba).timeZone,
  );
}

describe('GET /webhooks/whatsapp (verification handshake)', () => {
  beforeEach(async () => {
    service = await createTestService();
  });

  it('echoes the challenge when the verify token matches', async () => {
    const response = await service.get(
      `/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1158201444`,
    );
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('1158201444');
  });

  it('refuses a wrong verify token with 403 WRONG_VERIFY_TOKEN', async () => {
    const response = await service.get(
      '/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1',
    );
    expect(response.status).toBe(403);
    const { error } = (await json(response)) as { error: { code: string; message: string } };
    expect(error.code).toBe('WRONG_VERIFY_TOKEN');
    // The token may be set in the config file, not the environment: the message names both.
    expect(error.message).toContain('WAMETER_VERIFY_TOKEN or the config file\'s "verifyToken"');
  });

  it('answers 400 BAD_QUERY when the handshake parameters are missing', async () => {
    const response = await service.get(`/webhooks/whatsapp?hub.verify_token=${VERIFY_TOKEN}`);
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { code: 'BAD_QUERY' } });
  });

  it.each([
    ['unsubscribe', VERIFY_TOKEN],
    ['SUBSCRIBE', VERIFY_TOKEN],
    ['', VERIFY_TOKEN],
    ['unsubscribe', 'nope'],
  ])(
    'refuses hub.mode=%j (token %s) with 403 WRONG_VERIFY_TOKEN, as webhooks.md says, echoing nothing',
    async (mode, token) => {
      const response = await service.get(
        `/webhooks/whatsapp?hub.mode=${encodeURIComponent(mode)}&hub.verify_token=${token}&hub.challenge=4242`,
      );
      expect(response.status).toBe(403);
      const text = await response.text();
      expect(JSON.parse(text)).toMatchObject({ error: { code: 'WRONG_VERIFY_TOKEN' } });
      expect(text).not.toContain('4242');
    },
  );

  it('the OpenAPI document gives the same statuses: 403 for a wrong mode or token, 400 for missing parameters', () => {
    const handshake = openApiDocument.paths['/webhooks/whatsapp'].get;
    expect(handshake.responses['403'].description).toMatch(/hub\.mode/);
    expect(handshake.responses['400'].description).toMatch(/missing/i);
    // A mode other than subscribe is a refused handshake (403), not an invalid parameter (400).
    const mode = handshake.parameters.find((parameter) => parameter.name === 'hub.mode');
    expect(mode?.schema).not.toHaveProperty('const');
  });

  it('refuses every handshake when no verify token is configured', async () => {
    await service.close();
    service = await createTestService({ verifyToken: null });
    const response = await service.get(
      '/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=&hub.challenge=1',
    );
    expect(response.status).toBe(403);
    expect(JSON.stringify(await json(response))).toContain('WAMETER_VERIFY_TOKEN');
  });
});

describe('POST /webhooks/whatsapp', () => {
  beforeEach(async () => {
    service = await createTestService();
  });

  it('accepts every real webhook payload of the fixtures, signed, and stores each raw body', async () => {
    const fixtures = webhookFixtures();
    expect(fixtures.length).toBeGreaterThan(40);
    let events = 0;
    for (const { name, body } of fixtures) {
      const response = await service.postWebhook(body);
      expect(response.status, name).toBe(200);
      const answer = await json(response);
      expect(answer.duplicate, name).toBe(false);
      events += answer.events as number;
    }
    expect(events).toBeGreaterThan(20);
    expect(service.metrics.value('webhooks_received_total')).toBe(fixtures.length);
    expect((await service.store.listEvents()).length).toBe(events);
  });

  it('stores account_update and template_category_update as events', async () => {
    for (const name of [
      'pywa/account_update_auth_intl_eligibility.json',
      'pywa/account_update_primary_business_location.json',
      'meta-docs/template_category_update_changed.json',
    ]) {
      expect((await service.postWebhook(fixture(name))).status).toBe(200);
    }
    const kinds = new Set((await service.store.listEvents()).map((event) => event.kind));
    expect(kinds).toEqual(new Set(['account_update', 'template_category_update']));
  });

  it("a recipient_id written with + is the send log's user, as `wameter rate` reads it", async () => {
    const inbound = {
      kind: 'inbound',
      at: '2025-11-05T10:00:00Z',
      waba: 'W1',
      business: 'PN1',
      user: '919876543210',
      id: 'wamid.in1',
    };
    const delivered = messagesWebhook('W1', {
      metadata: { display_phone_number: '15550783881', phone_number_id: 'PN1' },
      statuses: [
        {
          id: 'wamid.out1',
          status: 'delivered',
          timestamp: '1762337103',
          recipient_id: '+919876543210',
          pricing: {
            billable: false,
            pricing_model: 'PMP',
            type: 'free_customer_service',
            category: 'utility',
          },
        },
      ],
    });
    expect(await json(await service.postEvents([inbound]))).toMatchObject({ accepted: 1 });
    expect((await service.postWebhook(JSON.stringify(delivered))).status).toBe(200);
    const [status] = (await service.store.listEvents()).filter((event) => event.kind === 'status');
    expect(status).toMatchObject({ user: '919876543210' });
    const units = (await json(await service.get('/v1/units', KEY_ALL))).units as Record<string, unknown>[];
    expect(units.map((unit) => [unit.user, unit.type, unit.amount])).toEqual([
      ['919876543210', 'free_customer_service', '0'],
    ]);
    const expected = await batchRating([inbound, delivered]);
    expect(await json(await service.get('/v1/totals', KEY_ALL))).toEqual({ totals: expected.totals });
  });

  it('accepts a body signed with any of the configured app secrets', async () => {
    const response = await service.postWebhook(fixture('pywa/status_sent.json'), { secret: OTHER_SECRET });
    expect(response.status).toBe(200);
  });

  it('checks the signature over the exact raw bytes (escaped unicode is not re-serialised)', async () => {
    const body = fixture('meta-docs/incoming_text_basic.json')
      .toString('utf8')
      .replace(/"body":\s*"[^"]*"/, '"body": "Ol\\u00e1 \\ud83d\\ude00 caf\u00e9"');
    expect(body).toContain('\\u00e1');
    const response = await service.postWebhook(Buffer.from(body, 'utf8'));
    expect(response.status).toBe(200);
    const [raw] = await Promise.all([service.store.getRawWebhook(1)]);
    expect(Buffer.from(raw!.body).toString('utf8')).toBe(body);
  });

  it('refuses a bad signature with 401 BAD_SIGNATURE and stores nothing', async () => {
    const body = fixture('pywa/status_delivered.json');
    const response = await service.postWebhook(body, { signature: signMetaBody(body, 'not-the-secret') });
    expect(response.status).toBe(401);
    const { error } = (await json(response)) as { error: { code: string; message: string } };
    expect(error.code).toBe('BAD_SIGNATURE');
    expect(error.message).toContain('WAMETER_APP_SECRETS or the config file\'s "appSecrets"');
    expect(await service.store.listEvents()).toEqual([]);
    expect(await service.store.getRawWebhook(1)).toBeUndefined();
    expect(service.metrics.value('webhooks_rejected_total', { reason: 'bad_signature' })).toBe(1);
  });

  it('refuses a body altered after signing', async () => {
    const body = fixture('pywa/status_delivered.json');
    const signature = signMetaBody(body, SECRET);
    const altered = Buffer.from(body.toString('utf8').replace('delivered', 'read'));
    const response = await service.postWebhook(altered, { signature });
    expect(response.status).toBe(401);
  });

  it('refuses a missing signature with 401 MISSING_SIGNATURE and stores nothing', async () => {
    const response = await service.postWebhook(fixture('pywa/status_delivered.json'), { signature: null });
    expect(response.status).toBe(401);
    expect(await json(response)).toMatchObject({ error: { code: 'MISSING_SIGNATURE' } });
    expect(await service.store.getRawWebhook(1)).toBeUndefined();
  });

  it('refuses every POST with 503 when no app secret is configured (Meta will retry)', async () => {
    await service.close();
    service = await createTestService({ appSecrets: [] });
    const response = await service.postWebhook(fixture('pywa/status_delivered.json'));
    expect(response.status).toBe(503);
    const { error } = (await json(response)) as { error: { code: string; message: string } };
    expect(error.code).toBe('WEBHOOK_NOT_CONFIGURED');
    expect(error.message).toContain('WAMETER_APP_SECRETS or the config file\'s "appSecrets"');
  });

  it('refuses an oversized body with 413 BODY_TOO_LARGE and stores nothing', async () => {
    await service.close();
    service = await createTestService({ bodyLimitBytes: 512 });
    const body = fixture('pywa/status_sent.json');
    expect(body.byteLength).toBeGreaterThan(512);
    const response = await service.postWebhook(body);
    expect(response.status).toBe(413);
    expect(await json(response)).toMatchObject({ error: { code: 'BODY_TOO_LARGE' } });
    expect(await service.store.getRawWebhook(1)).toBeUndefined();
    // Nothing of it is kept: the log says so, and what to do if Meta sent it (it retries the same bytes).
    const warning = service.logs.map((line) => JSON.parse(line)).find((line) => line.level === 'warn');
    expect(warning).toMatchObject({
      msg: 'webhook body over the limit refused; nothing stored',
      limitBytes: 512,
      hint: expect.stringContaining('raise WAMETER_BODY_LIMIT'),
    });
  });

  it('refuses an oversized body even without Content-Length (streamed)', async () => {
    await service.close();
    service = await createTestService({ bodyLimitBytes: 512 });
    const bytes = fixture('pywa/status_sent.json');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.subarray(0, 400));
        controller.enqueue(bytes.subarray(400));
        controller.close();
      },
    });
    const response = await service.app.request('/webhooks/whatsapp', {
      method: 'POST',
      headers: { 'X-Hub-Signature-256': signMetaBody(bytes, SECRET) },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
  });

  it('keeps the raw bytes of malformed JSON with a valid signature and answers 400 MALFORMED_JSON', async () => {
    const body = Buffer.from('{"object":"whatsapp_business_account","entry":[{"id": 1,,}]}');
    const response = await service.postWebhook(body);
    expect(response.status).toBe(400);
    const answer = await json(response);
    expect(answer).toMatchObject({ error: { code: 'MALFORMED_JSON' } });
    const [kept] = await service.store.listUnreadableWebhooks(10);
    const { message } = (answer as { error: { message: string } }).error;
    expect(message).toMatch(/\. The raw body is kept as webhook #\d+\.$/);
    expect(message).not.toMatch(/\.\. The raw/);
    expect(Buffer.from(kept!.body).equals(body)).toBe(true);
    expect(kept!.parseError).toBeTruthy();
    expect(await service.store.listEvents()).toEqual([]);
  });

  it('/v1/events names an array written over lines with "[" and "]" beside its elements and says what to send', async () => {
    const event = (id: string) =>
      JSON.stringify({
        kind: 'inbound',
        at: '2025-10-05T10:00:00Z',
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
        id,
      });
    const response = await service.app.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/x-ndjson' },
      body: [`[${event('i1')},`, `${event('i2')},`, `${event('i3')}]`, '{"kind":'].join('\n'),
    });
    expect(response.status).toBe(200);
    const answer = (await json(response)) as {
      accepted: number;
      rejected: { line: number; error: string }[];
    };
    expect(answer.accepted).toBe(0);
    const hint = /the line is an element of an array written over several lines.*jq -c '\.\[\]'/;
    expect(answer.rejected.map((r) => [r.line, hint.test(r.error)])).toEqual([
      [1, true],
      [2, true],
      [3, true],
      [4, false],
    ]);
  });

  it('keeps a signed body nested thousands deep as unreadable (400), never a crash; /v1/events rejects that line only', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const body = `{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.deep","status":"delivered","timestamp":${deep}}]}}]}]}`;
    const response = await service.postWebhook(Buffer.from(body));
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { code: 'MALFORMED_JSON' } });
    const [kept] = await service.store.listUnreadableWebhooks(10);
    expect(kept!.parseError).toContain('nested deeper than 64 levels');
    const lines = [
      INBOUND_OK_LINE,
      `{"kind":"status","at":${deep},"id":"wamid.x","status":"delivered","waba":"W1"}`,
    ];
    const events = await service.app.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/x-ndjson' },
      body: lines.join('\n'),
    });
    expect(events.status).toBe(200);
    expect(await json(events)).toMatchObject({
      accepted: 1,
      rejected: [{ line: 2, code: 'MALFORMED_JSON', error: 'nested deeper than 64 levels' }],
    });
    const rerate = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}` },
      body: `{"from":${deep}}`,
    });
    expect(rerate.status).toBe(400);
    expect(await json(rerate)).toMatchObject({ error: { code: 'MALFORMED_JSON' } });
    // Its own limit (1 MiB: room for rate cards' text), named in the answer, not bodyLimitBytes.
    const huge = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}` },
      body: JSON.stringify({ from: 'x'.repeat(1_100_000) }),
    });
    expect(huge.status).toBe(413);
    expect(await json(huge)).toMatchObject({
      error: { code: 'BODY_TOO_LARGE', message: expect.stringContaining('The limit is 1048576 bytes.') },
    });
  });

  it("keeps a signed body of more values than any of Meta's as unreadable (400) without parsing it; /v1/events refuses such a line only", async () => {
    // 150,000 empty statuses: read item by item (a rejection each), a 4 MiB body of 1.4 million held the
    // server's thread for 13 s and took 800 MB; a client's key could post one as a line for 18 s.
    const statuses = Array.from({ length: 150_000 }, () => '{}').join(',');
    const body = `{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"field":"messages","value":{"statuses":[${statuses}]}}]}]}`;
    const parse = vi.spyOn(JSON, 'parse');
    onTestFinished(() => parse.mockRestore());
    const response = await service.postWebhook(Buffer.from(body));
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { code: 'MALFORMED_WEBHOOK' } });
    expect(parse.mock.calls.some(([text]) => text === body)).toBe(false);
    const [kept] = await service.store.listUnreadableWebhooks(10);
    expect(kept!.parseError).toContain('more than 100000 JSON values');
    const inbound = INBOUND_OK_LINE;
    const events = await service.app.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_W1}`, 'Content-Type': 'application/x-ndjson' },
      body: `${inbound}\n${body}\n[${body}]`,
    });
    expect(parse.mock.calls.some(([text]) => text === body)).toBe(false);
    expect(await json(events)).toMatchObject({
      accepted: 1,
      rejected: [
        { line: 2, code: 'BAD_EVENT', error: expect.stringContaining('more than 100000 JSON values') },
        {
          line: 3,
          code: 'BAD_EVENT',
          error: expect.stringMatching(/^\[0\]: holds more than 100000 JSON values/),
        },
      ],
    });
  });

  it('never hands a body or line nested deeper than the limit to JSON.parse (millions of brackets took seconds)', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const parse = vi.spyOn(JSON, 'parse');
    onTestFinished(() => parse.mockRestore());
    const parsedDeep = () =>
      parse.mock.calls.some(([text]) => typeof text === 'string' && text.includes('[[[[[[[[[['));
    const webhook = await service.postWebhook(Buffer.from(deep));
    expect(webhook.status).toBe(400);
    const [kept] = await service.store.listUnreadableWebhooks(10);
    expect(kept!.parseError).toBe('nested deeper than 64 levels');
    const events = await service.app.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/x-ndjson' },
      body: `${deep}\n${deep}`,
    });
    expect(await json(events)).toMatchObject({
      rejected: [
        { line: 1, code: 'MALFORMED_JSON', error: 'nested deeper than 64 levels' },
        { line: 2, code: 'MALFORMED_JSON', error: 'nested deeper than 64 levels' },
      ],
    });
    const oneLine = await service.app.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/x-ndjson' },
      body: deep,
    });
    expect(await json(oneLine)).toMatchObject({
      rejected: [{ line: 1, code: 'MALFORMED_JSON', error: 'nested deeper than 64 levels' }],
    });
    const rerate = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}` },
      body: `{"from":${deep.slice(0, 30_000)}${deep.slice(-30_000)}}`,
    });
    expect(await json(rerate)).toMatchObject({
      error: { code: 'MALFORMED_JSON', message: expect.stringContaining('nested deeper than 64 levels') },
    });
    expect(parsedDeep()).toBe(false);
  });

  it('keeps JSON that is not a webhook and answers 400 MALFORMED_WEBHOOK', async () => {
    const response = await service.postWebhook('[1,2,3]');
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { code: 'MALFORMED_WEBHOOK' } });
    expect(await service.store.listUnreadableWebhooks(10)).toHaveLength(1);
  });

  it('keeps a signed event line as unreadable (400 MALFORMED_WEBHOOK: lines go to POST /v1/events), stores no event', async () => {
    const lines = conversationLines('W1', 'PN1', '919876543210', 'wamid.line');
    for (const [i, line] of lines.entries()) {
      const body = Buffer.from(JSON.stringify(line));
      const response = await service.postWebhook(body);
      expect(response.status, JSON.stringify(line)).toBe(400);
      const { error } = (await json(response)) as { error: { code: string; message: string } };
      expect(error.code).toBe('MALFORMED_WEBHOOK');
      expect(error.message).toMatch(
        /^The body is JSON but not a WhatsApp Business Account webhook\. It is an event line \(\{"kind":…\}\), not a webhook body: event lines go to POST \/v1\/events\. The raw body is kept as webhook #\d+\.$/,
      );
      // Its raw bytes are kept for inspection, as any signed body that is no webhook.
      const kept = await service.store.listUnreadableWebhooks(100);
      expect(kept).toHaveLength(i + 1);
      expect(kept.some((webhook) => Buffer.from(webhook.body).equals(body))).toBe(true);
    }
    expect(await service.store.listEvents()).toEqual([]);
    expect(service.metrics.value('webhooks_rejected_total', { reason: 'malformed_webhook' })).toBe(
      lines.length,
    );
    expect(service.metrics.value('webhooks_received_total')).toBe(0);
    expect(await json(await service.get('/v1/ratings', KEY_ALL))).toEqual({
      ratings: [],
      next_cursor: null,
    });
    // Where they belong, the same lines are taken.
    expect(await json(await service.postEvents(lines))).toMatchObject({ accepted: lines.length });
  });

  it('says in one text, about webhook bodies only, why JSON is not a webhook body', async () => {
    const said = async (body: string) =>
      ((await json(await service.postWebhook(body))).error as { message: string }).message;
    expect(await said('[{"object":"whatsapp_business_account","entry":[]}]')).toMatch(
      /^The body is JSON but not a WhatsApp Business Account webhook\. It is an array, where Meta posts one object, \{"object":"whatsapp_business_account","entry":\[…\]\}\. The raw body is kept as webhook #\d+\.$/,
    );
    expect(
      await said(fixture('meta-docs/analytics_conversation_half_hour_by_category.json').toString('utf8')),
    ).toMatch(
      /^The body is JSON but not a WhatsApp Business Account webhook\. It is a Meta analytics export: use it with `wameter reconcile --analytics`\. The raw body is kept as webhook #\d+\.$/,
    );
    expect(await said('{"kind":"status"}')).not.toContain('status line');
  });

  it('answers a duplicate delivery 200 and changes nothing', async () => {
    const body = fixture('meta-docs/status_delivered_marketing_pmp_bsuid_contacts.json');
    const first = await json(await service.postWebhook(body));
    expect(first).toMatchObject({ duplicate: false });
    const unitsBefore = await json(await service.get('/v1/units', KEY_ALL));
    const eventsBefore = await service.store.listEvents();
    const second = await service.postWebhook(body);
    expect(second.status).toBe(200);
    expect(await json(second)).toMatchObject({ duplicate: true, events: 0 });
    expect(await service.store.listEvents()).toEqual(eventsBefore);
    expect(await json(await service.get('/v1/units', KEY_ALL))).toEqual(unitsBefore);
    expect(service.metrics.value('webhooks_duplicate_total')).toBe(1);
  });

  it('accepts a batch of 1,000 statuses in one POST', async () => {
    const template = JSON.parse(fixture('pywa/status_delivered.json').toString('utf8')) as {
      entry: { changes: { value: { statuses: Record<string, unknown>[] } }[] }[];
    };
    const value = template.entry[0]!.changes[0]!.value;
    const status = value.statuses[0]!;
    value.statuses = Array.from({ length: 1000 }, (_, i) => ({ ...status, id: `wamid.batch${i}` }));
    const body = JSON.stringify(template);
    expect(body.length).toBeGreaterThan(100_000);
    const response = await service.postWebhook(body);
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({ events: 1000 });
  });

  it('rates webhook statuses: the units appear in /v1/units', async () => {
    await service.postWebhook(fixture('meta-docs/status_delivered_marketing_pmp_bsuid_contacts.json'));
    await service.postWebhook(fixture('pywa/status_delivered.json'));
    const answer = await json(await service.get('/v1/units', KEY_ALL));
    expect((answer.units as unknown[]).length).toBeGreaterThan(0);
  });
});

describe('POST /v1/events', () => {
  beforeEach(async () => {
    service = await createTestService();
  });

  it('stores event lines idempotently: a second post is all duplicates', async () => {
    const lines = conversationLines('W1', 'PN1', '919876543210', 'wamid.a');
    const first = await service.postEvents(lines);
    expect(first.status).toBe(200);
    expect(await json(first)).toEqual({
      accepted: lines.length,
      duplicates: 0,
      merged: 0,
      ignored: 0,
      rejected: [],
    });
    const second = await json(await service.postEvents(lines));
    expect(second).toMatchObject({ accepted: 0, duplicates: lines.length, rejected: [] });
    expect(await service.store.listEvents()).toHaveLength(lines.length);
  });

  it('a copy that completes a stored event (the referral a CRM copy lacked) counts as merged; the bill follows', async () => {
    const party = { waba: 'W1', business: 'PN1', user: '919876543210' };
    const crmCopy = { kind: 'inbound', at: '2025-08-04T10:00:00Z', ...party, id: 'wamid.ad' };
    const answer = [
      { kind: 'outbound', at: '2025-08-04T12:00:00Z', ...party, id: 'wamid.t1', template: 'marketing' },
      { kind: 'status', at: '2025-08-04T12:00:03Z', waba: 'W1', id: 'wamid.t1', status: 'delivered' },
    ];
    await service.postEvents([crmCopy, ...answer]);
    const typesOf = async () =>
      ((await json(await service.get('/v1/units', KEY_ALL))).units as { type: string }[]).map((u) => u.type);
    expect(await typesOf()).toEqual(['regular']);
    const webhookCopy = { ...crmCopy, referral: { source_type: 'ad' } };
    expect(await json(await service.postEvents([webhookCopy]))).toMatchObject({
      accepted: 0,
      duplicates: 1,
      merged: 1,
    });
    expect(await typesOf()).toEqual(['free_entry_point']);
    // The same copy again adds nothing: a duplicate, not merged.
    expect(await json(await service.postEvents([webhookCopy]))).toMatchObject({ duplicates: 1, merged: 0 });
  });

  it('rejects bad lines by number and keeps the good ones', async () => {
    const good = JSON.stringify(conversationLines('W1', 'PN1', '919876543210', 'wamid.b')[0]);
    const body = [good, '{not json', '{"kind":"outbound"}', '', '{"kind":"teleport","at":1}'].join('\n');
    const answer = await json(await service.postEvents(body));
    expect(answer.accepted).toBe(1);
    const rejected = answer.rejected as { line: number; code: string; error: string }[];
    expect(rejected.map((r) => [r.line, r.code])).toEqual([
      [2, 'MALFORMED_JSON'],
      [3, 'BAD_EVENT'],
      [5, 'BAD_EVENT'],
    ]);
    expect(rejected[1]!.error).toMatch(/outbound/);
  });

  it('lists the first 1,000 rejections by line and counts the rest (a body of garbage lines answers small)', async () => {
    const good = JSON.stringify(conversationLines('W1', 'PN1', '919876543210', 'wamid.many')[0]);
    const body = [...Array.from({ length: 2_999 }, () => 'x'), good, '{"kind":"outbound"}'].join('\n');
    const response = await service.postEvents(body);
    expect(response.status).toBe(200);
    const text = await response.text();
    const answer = JSON.parse(text) as { accepted: number; rejected: { line: number }[] } & Record<
      string,
      unknown
    >;
    expect(answer.accepted).toBe(1);
    expect(answer.rejected).toHaveLength(1_000);
    expect(answer.rejected.map((r) => r.line)).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
    // 2,999 garbage lines and a bad event: 1,000 listed, 2,000 counted.
    expect(answer.rejected_unlisted).toBe(2_000);
    expect(text.length).toBeLessThan(200_000);
  });

  it('past the listed rejections, a line that cannot be an event is counted without being parsed', async () => {
    const body = Array.from({ length: 5_000 }, () => 'x').join('\n');
    const parse = vi.spyOn(JSON, 'parse');
    onTestFinished(() => parse.mockRestore());
    const answer = await json(await service.postEvents(body));
    const calls = parse.mock.calls.length;
    parse.mockRestore();
    expect(calls).toBeLessThan(1_500);
    expect(answer).toMatchObject({ accepted: 0, rejected_unlisted: 4_000 });
  });

  it('a body of many lines is read in slices: a request arriving meanwhile is answered before it ends', async () => {
    // Lines that look like events but do not parse: each is parsed (an exception each), none listed past 1,000.
    const body = Array.from({ length: 20_000 }, () => '{x}').join('\n');
    const order: string[] = [];
    const posting = service.postEvents(body).then((response) => {
      order.push('events');
      return json(response);
    });
    const live = (async () => {
      await new Promise((resolve) => setImmediate(resolve));
      expect((await service.get('/healthz/live')).status).toBe(204);
      order.push('live');
    })();
    const [answer] = await Promise.all([posting, live]);
    expect(order).toEqual(['live', 'events']);
    expect(answer).toMatchObject({ accepted: 0, rejected_unlisted: 19_000 });
  });

  it('the rejections a refusal adds after reading are listed in line order among the first 1,000', async () => {
    const sent = {
      kind: 'outbound',
      at: '2025-07-12T10:00:00Z',
      waba: 'W2',
      business: 'PN2',
      user: '919876543210',
      id: 'wamid.late-refusal',
      template: 'marketing',
    };
    const delivered = {
      kind: 'status',
      at: '2025-07-12T10:00:04Z',
      id: 'wamid.late-refusal',
      status: 'delivered',
    };
    const body = [
      JSON.stringify(sent),
      JSON.stringify(delivered),
      ...Array.from({ length: 1_200 }, () => 'x'),
    ].join('\n');
    const answer = (await json(await service.postEvents(body, KEY_W1))) as {
      rejected: { line: number; code: string }[];
      rejected_unlisted: number;
    };
    expect(answer.rejected).toHaveLength(1_000);
    expect(answer.rejected.slice(0, 3).map((r) => [r.line, r.code])).toEqual([
      [1, 'FORBIDDEN_WABA'],
      [2, 'FORBIDDEN_WABA'],
      [3, 'MALFORMED_JSON'],
    ]);
    expect(answer.rejected.at(-1)!.line).toBe(1_000);
    expect(answer.rejected_unlisted).toBe(202);
  });

  it('reads bodies as the file reader does: CR or CRLF line ends, a BOM, a pretty-printed webhook, arrays', async () => {
    const [a, b, c] = conversationLines('W1', 'PN1', '919876543210', 'wamid.r').map((line) =>
      JSON.stringify(line),
    );
    for (const body of [`${a}\r${b}\r${c}\r`, `\uFEFF${a}\r\n${b}\r\n${c}`, `[${a},\n${b},\n${c}]`]) {
      expect(await json(await service.postEvents(body))).toMatchObject({ rejected: [] });
    }
    expect(await service.store.listEvents()).toHaveLength(3);
    const pretty = fixture('pywa/status_read.json').toString('utf8');
    expect(pretty.split('\n').length).toBeGreaterThan(5);
    expect(await json(await service.postEvents(pretty))).toMatchObject({ accepted: 1, rejected: [] });
    // An array's bad element is named by its index; the others are stored.
    const answer = await json(await service.postEvents(`[${a}, {"kind":"outbound"}]`));
    expect(answer).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(answer.rejected).toEqual([
      { line: 1, code: 'BAD_EVENT', error: expect.stringMatching(/^\[1\]: /) },
    ]);
  });

  it('reads an array written one element per line as the file reader does: a broken element costs only its line', async () => {
    const [a, b, c, d] = conversationLines('W1', 'PN1', '919876543210', 'wamid.e').map((line) =>
      JSON.stringify(line),
    );
    const array = ['[', `${a},`, '{bad},', `${b},`, c, ']'];
    // Alone in the body (line 1 opens it), then after an NDJSON line.
    for (const [body, first] of [
      [array.join('\n'), 1],
      [[d, ...array].join('\n'), 2],
    ] as const) {
      const answer = await json(await service.postEvents(body));
      expect(answer.rejected).toEqual([
        {
          line: first + 2,
          code: 'MALFORMED_JSON',
          error: expect.stringMatching(/^\[1\]: Expected property name/),
        },
      ]);
      expect((answer.accepted as number) + (answer.duplicates as number)).toBe(first === 1 ? 3 : 4);
    }
    expect(await service.store.listEvents()).toHaveLength(4);
    // Never closed: its "[" is the one rejection, its elements are stored.
    const [e, f] = conversationLines('W1', 'PN1', '919876543211', 'wamid.f').map((line) =>
      JSON.stringify(line),
    );
    const open = await json(await service.postEvents(['[', `${e},`, `${f},`].join('\n')));
    expect(open).toMatchObject({ accepted: 2 });
    expect(open.rejected).toEqual([
      {
        line: 1,
        code: 'MALFORMED_JSON',
        error:
          'opens an array, one element a line, that no "]" line closes; its elements (lines 2–3) were read: add the "]"',
      },
    ]);
    // Never closed, then a line that is no element: the same, and that line read on its own.
    const [g, h] = conversationLines('W1', 'PN1', '919876543212', 'wamid.g').map((line) =>
      JSON.stringify(line),
    );
    const cut = await json(await service.postEvents(['[', `${g},`, h, 'garbage', d].join('\n')));
    expect(cut).toMatchObject({ accepted: 2, duplicates: 1 });
    expect((cut.rejected as { line: number; error: string }[]).map((r) => [r.line, r.error])).toEqual([
      [
        1,
        expect.stringMatching(
          /^opens an array, one element a line, that no "]" line closes; its elements \(lines 2–3\)/,
        ),
      ],
      [4, expect.stringMatching(/^Unexpected token/)],
    ]);
    // A stray "[" before NDJSON lines costs only itself, as before.
    const stray = await json(await service.postEvents([d, '[', a, b].join('\n')));
    expect(stray).toMatchObject({ accepted: 0, duplicates: 3 });
    expect((stray.rejected as { line: number }[]).map((r) => r.line)).toEqual([2]);
  });

  it('accepts whole Meta webhook bodies as lines', async () => {
    const line = JSON.stringify(JSON.parse(fixture('pywa/status_read.json').toString('utf8')));
    const answer = await json(await service.postEvents(line));
    expect(answer.accepted).toBe(1);
  });

  it('refuses a request without an API key (401 UNAUTHENTICATED)', async () => {
    const response = await service.app.request('/v1/events', { method: 'POST', body: '{}' });
    expect(response.status).toBe(401);
    expect(response.headers.get('WWW-Authenticate')).toContain('Bearer');
    const { error } = (await json(response)) as { error: { code: string; message: string } };
    expect(error.code).toBe('UNAUTHENTICATED');
    expect(error.message).toContain('WAMETER_API_KEYS or the config file\'s "apiKeys"');
  });

  it('refuses an unknown API key', async () => {
    const response = await service.postEvents(
      conversationLines('W1', 'PN1', '1', 'x'),
      'key-that-does-not-exist',
    );
    expect(response.status).toBe(401);
    expect(await service.store.listEvents()).toEqual([]);
  });

  it("rejects lines for a WABA the key may not write, and stores the key's own", async () => {
    const lines = [
      ...conversationLines('W1', 'PN1', '919876543210', 'wamid.c').slice(0, 1),
      ...conversationLines('W2', 'PN2', '919876543211', 'wamid.d').slice(0, 1),
    ];
    const answer = await json(await service.postEvents(lines, KEY_W1));
    expect(answer.accepted).toBe(1);
    expect(answer.rejected).toEqual([expect.objectContaining({ line: 2, code: 'FORBIDDEN_WABA' })]);
    expect((await service.store.listEvents()).map((e) => e.waba)).toEqual(['W1']);
  });

  it('refuses an oversized body with 413', async () => {
    await service.close();
    service = await createTestService({ bodyLimitBytes: 100 });
    const response = await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.e'));
    expect(response.status).toBe(413);
    // Lines can always be sent in parts: the answer says so, and where the limit is set.
    const { error } = (await json(response)) as { error: { code: string; message: string } };
    expect(error.message).toBe(
      'The request body is larger than this route accepts; nothing was stored. The limit is 100 bytes: send ' +
        'the lines in several requests (each line is stored once, so a part sent twice does no harm), or ' +
        'raise WAMETER_BODY_LIMIT or the config file\'s "bodyLimitBytes".',
    );
  });

  it('refuses a compressed body with 415 UNSUPPORTED_ENCODING and stores nothing', async () => {
    const lines = conversationLines('W1', 'PN1', '919876543210', 'wamid.gz');
    const body = gzipSync(lines.map((line) => JSON.stringify(line)).join('\n'));
    const response = await service.app.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Encoding': 'gzip' },
      body,
    });
    expect(response.status).toBe(415);
    expect(await json(response)).toMatchObject({ error: { code: 'UNSUPPORTED_ENCODING' } });
    expect(await service.store.listEvents()).toEqual([]);
    // So is a compressed JSON request body: read as sent it was "not JSON" (MALFORMED_JSON), nothing saying why.
    const ratingsBefore = await service.store.listRatings(1000);
    // (The dashboard's estimate and reconciliation: dashboard-routes.test.ts.)
    for (const path of ['/v1/rerate']) {
      const compressed = await service.app.request(path, {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Encoding': 'gzip' },
        body: gzipSync(JSON.stringify({ dry_run: true })),
      });
      expect(compressed.status, path).toBe(415);
      const { error } = (await json(compressed)) as { error: { code: string; message: string } };
      expect(error.code, path).toBe('UNSUPPORTED_ENCODING');
      expect(error.message, path).toContain('(Content-Encoding: gzip)');
    }
    expect(await service.store.listRatings(1000)).toEqual(ratingsBefore);
  });

  it('answers 400 for a body with no lines', async () => {
    const response = await service.postEvents('\n\n');
    expect(response.status).toBe(400);
  });

  describe('status lines without "waba" (contract §1: the outbound id links them)', () => {
    const sent = {
      kind: 'outbound',
      at: '2025-07-12T10:00:00Z',
      waba: 'W1',
      business: 'PN1',
      user: '919876543210',
      id: 'wamid.nowaba',
      template: 'marketing',
    };
    const delivered = { kind: 'status', at: '2025-07-12T10:00:04Z', id: 'wamid.nowaba', status: 'delivered' };
    const unitsOf = async (key: string) =>
      (await json(await service.get('/v1/units?waba=W1', key))).units as { messages: string[] }[];

    it('from a key for every WABA: stored, and the next read already bills the message it delivers', async () => {
      expect(await json(await service.postEvents([sent]))).toMatchObject({ accepted: 1, rejected: [] });
      // Nothing delivered yet: the marketing message is pending, not charged.
      expect(await unitsOf(KEY_ALL)).toEqual([]);
      expect(await json(await service.postEvents([delivered]))).toMatchObject({ accepted: 1, rejected: [] });
      const [event] = (await service.store.listEvents()).filter((e) => e.kind === 'status');
      expect(event!.waba).toBeUndefined();
      const units = await unitsOf(KEY_ALL);
      expect(units.map((unit) => unit.messages)).toEqual([['wamid.nowaba']]);
      // The same bill `wameter rate` computes from the same lines.
      expect(await json(await service.get('/v1/totals', KEY_ALL))).toEqual({
        totals: (await batchRating([sent, delivered])).totals,
      });
    });

    it("for the id of another number's inbound: rated where the store lists it, as `wameter rate` does; nothing stalls", async () => {
      const inbound = {
        kind: 'inbound',
        at: '2025-07-12T09:00:00Z',
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
        id: 'wamid.clash',
      };
      const status = {
        kind: 'status',
        at: '2025-07-12T10:00:05Z',
        id: 'wamid.clash',
        status: 'delivered',
        business: 'PN_Z',
        user: '919812345679',
        pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
      };
      const expected = await batchRating([inbound, status]);
      expect(expected.units.map((unit) => [unit.waba, unit.business])).toEqual([['W1', 'PN_Z']]);
      for (const line of [inbound, status]) {
        expect(await json(await service.postEvents([line]))).toMatchObject({ accepted: 1 });
      }
      expect((await service.get('/healthz', KEY_ALL)).status).toBe(200);
      expect(await json(await service.get('/v1/totals', KEY_ALL))).toEqual({ totals: expected.totals });
      expect((await service.get('/v1/totals?waba=W2', KEY_ALL)).status).toBe(200);
    });

    it("for a message known only from Meta's status naming its WABA: billed, in either order, as `wameter rate` bills it", async () => {
      // A business sending through Meta's API without a send log: its message is known from Meta's `sent`.
      const metaSent = {
        kind: 'status',
        at: '2025-07-12T10:00:00Z',
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
        id: 'wamid.nowaba',
        status: 'sent',
        pricing: { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' },
      };
      const expected = await batchRating([metaSent, delivered]);
      expect(expected.units.map((unit) => unit.messages)).toEqual([['wamid.nowaba']]);
      for (const order of [
        [metaSent, delivered],
        [delivered, metaSent],
      ]) {
        await service.close();
        service = await createTestService();
        for (const line of order) {
          expect(await json(await service.postEvents([line]))).toMatchObject({ accepted: 1 });
        }
        expect(await json(await service.get('/v1/totals', KEY_ALL))).toEqual({ totals: expected.totals });
      }
    });

    it('for an id two WABAs use: delivers both, as `wameter rate` does, in one portfolio or two', async () => {
      const sentOfW2 = { ...sent, waba: 'W2', business: 'PN2', template: 'utility' };
      const lines = [sent, sentOfW2, delivered];
      const expected = await batchRating(lines);
      expect(expected.units.map((unit) => unit.waba).sort()).toEqual(['W1', 'W2']);
      for (const shared of [false, true]) {
        const check = async () => {
          for (const line of [delivered, sentOfW2, sent]) await service.postEvents([line]);
          const units = (await json(await service.get('/v1/units', KEY_ALL))).units as { waba: string }[];
          expect(units.map((unit) => unit.waba).sort()).toEqual(['W1', 'W2']);
          expect(await json(await service.get('/v1/totals', KEY_ALL))).toEqual({ totals: expected.totals });
        };
        if (shared) {
          await service.close();
          await withSharedPortfolio(check);
        } else await check();
      }
    });

    it("from a key for one WABA: takes the key's WABA", async () => {
      await service.postEvents([sent], KEY_W1);
      expect(await json(await service.postEvents([delivered], KEY_W1))).toMatchObject({ accepted: 1 });
      const [event] = (await service.store.listEvents()).filter((e) => e.kind === 'status');
      expect(event!.waba).toBe('W1');
      expect((await unitsOf(KEY_W1)).map((unit) => unit.messages)).toEqual([['wamid.nowaba']]);
    });

    it("from a key for one WABA, after its message's line was refused as another WABA's in the same body: refused too", async () => {
      const ofW2 = { ...sent, waba: 'W2', business: 'PN2' };
      const answer = await json(await service.postEvents([ofW2, delivered], KEY_W1));
      expect(answer).toMatchObject({ accepted: 0 });
      expect(answer.rejected).toEqual([
        expect.objectContaining({ line: 1, code: 'FORBIDDEN_WABA' }),
        {
          line: 2,
          code: 'FORBIDDEN_WABA',
          error: 'its message "wamid.nowaba" is of WABA "W2" (line 1), which this API key may not write',
        },
      ]);
      // Nothing stored: W1's bill holds no delivered message nobody sent (STATUS_WITHOUT_USER).
      expect(await service.store.listEvents()).toEqual([]);
    });

    /** A Meta webhook body as one line: `entries` of [WABA id, [message id, status]…]. */
    const envelope = (entries: [string, [string, string][]][]) => ({
      object: 'whatsapp_business_account',
      entry: entries.map(([waba, statuses]) => ({
        id: waba,
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550001111', phone_number_id: `PN-${waba}` },
              statuses: statuses.map(([id, status]) => ({
                id,
                status,
                timestamp: '1752314400',
                recipient_id: '919876543210',
              })),
            },
          },
        ],
      })),
    });
    const deliveredOf = (id: string) => ({
      kind: 'status',
      at: '2025-07-12T10:05:00Z',
      id,
      status: 'delivered',
    });

    it("from a key for one WABA, after a line of several events was refused as another WABA's: every one of its message ids is refused", async () => {
      const body = [
        envelope([
          [
            'W2',
            [
              ['wamid.m1', 'sent'],
              ['wamid.m2', 'sent'],
            ],
          ],
        ]),
        deliveredOf('wamid.m1'),
        deliveredOf('wamid.m2'),
      ];
      const answer = await json(await service.postEvents(body, KEY_W1));
      expect(answer).toMatchObject({ accepted: 0 });
      expect(answer.rejected).toEqual([
        expect.objectContaining({ line: 1, code: 'FORBIDDEN_WABA' }),
        {
          line: 2,
          code: 'FORBIDDEN_WABA',
          error: 'its message "wamid.m1" is of WABA "W2" (line 1), which this API key may not write',
        },
        {
          line: 3,
          code: 'FORBIDDEN_WABA',
          error: 'its message "wamid.m2" is of WABA "W2" (line 1), which this API key may not write',
        },
      ]);
      // Nothing stored: W1's bill holds no delivered message nobody sent (STATUS_WITHOUT_USER).
      expect(await service.store.listEvents()).toEqual([]);
    });

    it("from a key for one WABA: the key's own events dropped with a refused line are refused too when a later line names them", async () => {
      const body = [
        envelope([
          ['W1', [['wamid.own', 'sent']]],
          ['W2', [['wamid.theirs', 'sent']]],
        ]),
        deliveredOf('wamid.own'),
      ];
      const answer = await json(await service.postEvents(body, KEY_W1));
      expect(answer).toMatchObject({ accepted: 0 });
      expect(answer.rejected).toEqual([
        expect.objectContaining({ line: 1, code: 'FORBIDDEN_WABA' }),
        {
          line: 2,
          code: 'FORBIDDEN_WABA',
          error: expect.stringMatching(/^its message "wamid\.own" came on line 1, which was refused/),
        },
      ]);
      expect(await service.store.listEvents()).toEqual([]);
    });

    it('from a key for several WABAs (not all): rejected FORBIDDEN_WABA, nothing stored', async () => {
      await service.close();
      service = await createTestService({
        apiKeys: [
          { name: 'admin', key: KEY_ALL, wabas: '*' },
          { name: 'two', key: KEY_W1, wabas: ['W1', 'W2'] },
        ],
      });
      await service.postEvents([sent], KEY_W1);
      const answer = await json(await service.postEvents([delivered], KEY_W1));
      expect(answer).toMatchObject({ accepted: 0 });
      expect(answer.rejected).toEqual([expect.objectContaining({ line: 1, code: 'FORBIDDEN_WABA' })]);
      expect((await service.store.listEvents()).map((e) => e.kind)).toEqual(['outbound']);
    });
  });
});

describe('query API: units, totals, CSV, explain, analytics', () => {
  const linesW1 = conversationLines('W1', 'PN1', '919876543210', 'wamid.w1');
  const linesW2 = conversationLines('W2', 'PN2', '5511987654321', 'wamid.w2');

  beforeEach(async () => {
    service = await createTestService();
    await service.postEvents([...linesW1, ...linesW2]);
  });

  it('the live bill equals `wameter rate` over the same events (units and totals)', async () => {
    const expected = await batchRating([...linesW1, ...linesW2]);
    const units = await json(await service.get('/v1/units?limit=1000', KEY_ALL));
    const sortById = (list: { id: string }[]) => [...list].sort((a, b) => a.id.localeCompare(b.id));
    expect(sortById(units.units as { id: string }[])).toEqual(sortById(expected.units));
    expect(await json(await service.get('/v1/totals', KEY_ALL))).toEqual({ totals: expected.totals });
  });

  it('events arriving in reverse order, late, give the same bill', async () => {
    await service.close();
    service = await createTestService();
    for (const line of [...linesW1, ...linesW2].reverse()) await service.postEvents([line]);
    const expected = await batchRating([...linesW1, ...linesW2]);
    expect(await json(await service.get('/v1/totals', KEY_ALL))).toEqual({ totals: expected.totals });
  });

  it('pages units with limit and cursor', async () => {
    const all = (await json(await service.get('/v1/units?limit=1000', KEY_ALL))).units as { id: string }[];
    expect(all.length).toBeGreaterThan(2);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await json(
        await service.get(
          `/v1/units?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
          KEY_ALL,
        ),
      );
      seen.push(...(page.units as { id: string }[]).map((u) => u.id));
      cursor = page.next_cursor as string | null;
    } while (cursor);
    expect(seen.sort()).toEqual(all.map((u) => u.id).sort());
  });

  it('lists units dearest first with order=amount_desc, page by page and in the CSV; refuses another order, or a cursor of the other order', async () => {
    type Listed = { id: string; waba: string; amount: string | null; currency: string; opened_at: string };
    const all = (await json(await service.get('/v1/units?limit=1000', KEY_ALL))).units as Listed[];
    expect(new Set(all.map((u) => u.amount)).size).toBeGreaterThan(1);
    const byId = (a: Listed, b: Listed) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const expected = [...all]
      .sort(
        (a, b) =>
          (a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : 0) ||
          (a.amount === null ? 1 : 0) - (b.amount === null ? 1 : 0) ||
          Number(b.amount ?? 0) - Number(a.amount ?? 0) ||
          Date.parse(a.opened_at) - Date.parse(b.opened_at) ||
          byId(a, b),
      )
      .map((u) => `${u.waba}/${u.id}`);
    const seen: string[] = [];
    let cursor: string | null = null;
    let timeCursor: string | null = null;
    do {
      const page = await json(
        await service.get(
          `/v1/units?order=AMOUNT_DESC&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
          KEY_ALL,
        ),
      );
      seen.push(...(page.units as Listed[]).map((u) => `${u.waba}/${u.id}`));
      cursor = page.next_cursor as string | null;
      timeCursor ??= (await json(await service.get('/v1/units?limit=1', KEY_ALL))).next_cursor as string;
      if (cursor !== null) {
        // The other order's cursor names a place in another order: refused, naming both.
        const crossed = await service.get(`/v1/units?limit=2&cursor=${encodeURIComponent(cursor)}`, KEY_ALL);
        expect(crossed.status).toBe(400);
        expect((await json(crossed)).error).toEqual({
          code: 'BAD_QUERY',
          message: expect.stringContaining(
            'cursor was returned for order=amount_desc, not order=opened_at (the default: by opening time)',
          ) as unknown,
        });
      }
    } while (cursor);
    expect(seen).toEqual(expected);
    const crossed = await service.get(
      `/v1/units?order=amount_desc&cursor=${encodeURIComponent(timeCursor!)}`,
      KEY_ALL,
    );
    expect(crossed.status).toBe(400);
    expect(((await json(crossed)).error as { message: string }).message).toContain(
      'cursor was returned for order=opened_at (the default: by opening time), not order=amount_desc',
    );
    const csv = await (await service.get('/v1/units.csv?order=amount_desc', KEY_ALL)).text();
    const rows = csv.trim().split('\r\n').slice(1);
    expect(rows.map((row) => row.split(',')[0])).toEqual(expected.map((key) => key.split('/')[1]));
    for (const path of ['/v1/units?order=amount', '/v1/units.csv?order=dearest']) {
      const refused = await service.get(path, KEY_ALL);
      expect(refused.status).toBe(400);
      expect((await json(refused)).error).toEqual({
        code: 'BAD_QUERY',
        message: expect.stringContaining(
          'is no order of the units: give opened_at (the default, by opening time) or amount_desc',
        ) as unknown,
      });
    }
  });

  it('reads "market" as a market of the table, whatever its case; refuses one that is none (400)', async () => {
    const india = (await json(await service.get('/v1/units?market=India', KEY_ALL))).units as unknown[];
    expect(india.length).toBeGreaterThan(0);
    expect((await json(await service.get('/v1/units?market=india', KEY_ALL))).units).toEqual(india);
    expect(await json(await service.get('/v1/totals?market=INDIA', KEY_ALL))).toEqual(
      await json(await service.get('/v1/totals?market=India', KEY_ALL)),
    );
    for (const path of ['/v1/units?market=IN', '/v1/totals?market=Atlantis']) {
      const response = await service.get(path, KEY_ALL);
      expect(response.status).toBe(400);
      const error = (await json(response)).error as { code: string; message: string };
      expect(error.code).toBe('BAD_QUERY');
      expect(error.message).toContain('is no market of the table; markets: ');
      expect(error.message).toContain('India');
    }
  });

  it('filters units by waba, user, category and period', async () => {
    const byWaba = await json(await service.get('/v1/units?waba=W2', KEY_ALL));
    expect((byWaba.units as { waba: string }[]).every((u) => u.waba === 'W2')).toBe(true);
    const byCategory = await json(await service.get('/v1/units?category=marketing', KEY_ALL));
    expect((byCategory.units as { category: string }[]).map((u) => u.category)).toEqual([
      'marketing',
      'marketing',
    ]);
    const byPeriod = await json(
      await service.get(
        '/v1/units?from=2025-07-12T00:00:00Z&to=2025-07-13T00:00:00Z&user=919876543210',
        KEY_ALL,
      ),
    );
    expect((byPeriod.units as unknown[]).length).toBe(1);
  });

  it('reads category, type and the analytics metric in any letter case, as Meta writes them (MARKETING, REGULAR, PRICING)', async () => {
    for (const [written, lower] of [
      ['category=MARKETING', 'category=marketing'],
      ['category=Marketing&type=REGULAR', 'category=marketing&type=regular'],
    ]) {
      const units = (await json(await service.get(`/v1/units?${written}`, KEY_ALL))).units as unknown[];
      expect(units.length).toBeGreaterThan(0);
      expect(units).toEqual((await json(await service.get(`/v1/units?${lower}`, KEY_ALL))).units);
      expect(await json(await service.get(`/v1/totals?${written}`, KEY_ALL))).toEqual(
        await json(await service.get(`/v1/totals?${lower}`, KEY_ALL)),
      );
    }
    const analytics =
      '/v1/analytics?start=1751328000&end=1754006400&granularity=MONTHLY&dimensions=PRICING_CATEGORY';
    const upper = await service.get(`${analytics}&metric=PRICING`, KEY_ALL);
    expect(upper.status).toBe(200);
    expect(await json(upper)).toEqual(await json(await service.get(`${analytics}&metric=pricing`, KEY_ALL)));
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['category=gold', 'category'],
    ['type=cheap', 'type'],
    ['from=yesterday', 'from'],
    ['from=2025-07-13T00:00:00Z&to=2025-07-12T00:00:00Z', 'before'],
    ['cursor=not-a-cursor', 'cursor'],
  ])('answers 400 BAD_QUERY for %s', async (query, mention) => {
    const response = await service.get(`/v1/units?${query}`, KEY_ALL);
    expect(response.status).toBe(400);
    const answer = await json(response);
    expect(answer).toMatchObject({ error: { code: 'BAD_QUERY' } });
    expect(JSON.stringify(answer).toLowerCase()).toContain(mention);
  });

  it('exports the same units as CSV', async () => {
    const response = await service.get('/v1/units.csv?waba=W1', KEY_ALL);
    expect(response.status).toBe(200);
    expect(response.headers.get('Content-Type')).toContain('text/csv');
    const rows = (await response.text()).trim().split('\r\n');
    expect(rows[0]).toBe(
      'id,unit,pricing_model,era,waba,business,user,country,market,category,type,opened_at,expires_at,closed_at,messages,rate,amount,currency,rate_card,rule,tier_count,tier_band,tier_month,market_inferred,category_from_webhook,local_date',
    );
    const units = (await json(await service.get('/v1/units?waba=W1', KEY_ALL))).units as { id: string }[];
    expect(rows.length - 1).toBe(units.length);
    expect(rows.slice(1).every((row) => row.split(',')[4] === 'W1')).toBe(true);
  });

  it('exports text a client wrote that a spreadsheet would run as a formula as plain text', async () => {
    const formula = '=HYPERLINK("http://evil.example","open")';
    await service.postEvents(conversationLines('W1', formula, '919876543210', 'wamid.csv'), KEY_W1);
    const csv = await (await service.get('/v1/units.csv?waba=W1', KEY_ALL)).text();
    expect(csv).toContain(`,"'=HYPERLINK(""http://evil.example"",""open"")",`);
    expect(csv).not.toMatch(/,"?=HYPERLINK/);
  });

  it.each([
    '/v1/units?waba=W1&waba=W2',
    '/v1/totals?user=1&user=2',
    `/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.verify_token=x&hub.challenge=1`,
  ])('refuses a query parameter given twice with 400 BAD_QUERY naming it: %s', async (path) => {
    const response = await service.get(path, KEY_ALL);
    expect(response.status).toBe(400);
    const error = (await json(response)).error as { code: string; message: string };
    expect(error.code).toBe('BAD_QUERY');
    expect(error.message).toMatch(/"(waba|user|hub\.verify_token)" is given more than once/);
  });

  it("explains a user's timeline with one decision per delivered business message", async () => {
    const answer = await json(await service.get('/v1/explain?user=919876543210&business=PN1', KEY_ALL));
    const decisions = answer.decisions as { message_id: string; rule: string; reason: string }[];
    expect(decisions.map((d) => d.message_id).sort()).toEqual(['wamid.w1.o1', 'wamid.w1.o2', 'wamid.w1.o3']);
    expect(decisions.every((d) => d.rule !== '' && d.reason !== '')).toBe(true);
    expect((answer.units as unknown[]).length).toBeGreaterThan(0);
    expect(answer.timeline).toBeInstanceOf(Array);
  });

  it('explain lists the user’s failed and pending messages (never charged), for keys that may see them', async () => {
    const user = '919812345678';
    const sent = (id: string) => ({
      kind: 'outbound',
      at: '2025-07-20T10:00:00Z',
      waba: 'W1',
      business: 'PN1',
      user,
      id,
      template: 'marketing',
    });
    await service.postEvents([
      sent('wamid.fail1'),
      { kind: 'status', at: '2025-07-20T10:00:09Z', waba: 'W1', id: 'wamid.fail1', status: 'failed' },
      sent('wamid.pend1'),
      { kind: 'status', at: '2025-07-20T10:00:05Z', waba: 'W1', id: 'wamid.pend1', status: 'sent' },
    ]);
    const answer = await json(await service.get(`/v1/explain?user=${user}`, KEY_ALL));
    expect(answer.failed).toEqual([
      {
        id: 'wamid.fail1',
        waba: 'W1',
        business: 'PN1',
        user,
        sent_at: '2025-07-20T10:00:00Z',
        failed_at: '2025-07-20T10:00:09Z',
      },
    ]);
    expect((answer.pending as { id: string }[]).map((p) => p.id)).toEqual(['wamid.pend1']);
    expect(answer.units).toEqual([]);
    const other = await json(await service.get(`/v1/explain?user=${user}`, KEY_W2));
    expect(other.failed).toEqual([]);
    expect(other.pending).toEqual([]);
  });

  it('explain lists failed messages in the order they were sent, whatever order they arrived in', async () => {
    // The stores list events in orders of their own (SQLite: as stored; PostgreSQL: otherwise): the answer
    // followed it, so the same traffic listed its failures in another order on each.
    const user = '919812345679';
    const failedAt = (id: string, at: string) => [
      { kind: 'outbound', at, waba: 'W1', business: 'PN1', user, id, template: 'marketing' },
      { kind: 'status', at, waba: 'W1', id, status: 'failed' },
    ];
    await service.postEvents(failedAt('wamid.late', '2025-07-22T10:00:00Z'));
    await service.postEvents(failedAt('wamid.early', '2025-07-12T10:00:00Z'));
    await service.postEvents(failedAt('wamid.middle', '2025-07-20T10:00:00Z'));
    const answer = await json(await service.get(`/v1/explain?user=${user}`, KEY_ALL));
    expect((answer.failed as { id: string }[]).map((message) => message.id)).toEqual([
      'wamid.early',
      'wamid.middle',
      'wamid.late',
    ]);
  });

  it("explain tells the story's findings, as `wameter explain` does, and never another client's", async () => {
    const user = '919812345678';
    const lines = [
      { ...linesW1[3], user, id: 'wamid.df' },
      { kind: 'status', at: '2025-07-12T10:00:05Z', waba: 'W1', id: 'wamid.df', status: 'delivered' },
      { kind: 'status', at: '2025-07-12T10:00:09Z', waba: 'W1', id: 'wamid.df', status: 'failed' },
      // Another user's message of W1 delivered and failed too: not this story's.
      { ...linesW1[3], user: '919800000000', id: 'wamid.other' },
      { kind: 'status', at: '2025-07-12T10:00:05Z', waba: 'W1', id: 'wamid.other', status: 'delivered' },
      { kind: 'status', at: '2025-07-12T10:00:09Z', waba: 'W1', id: 'wamid.other', status: 'failed' },
    ];
    await service.postEvents(lines);
    const answer = await json(await service.get(`/v1/explain?user=${user}`, KEY_ALL));
    const findings = answer.findings as { code: string; message_id?: string }[];
    expect(findings.map((f) => [f.code, f.message_id])).toContainEqual(['DELIVERED_AND_FAILED', 'wamid.df']);
    expect(JSON.stringify(findings)).not.toContain('wamid.other');
    expect((await json(await service.get(`/v1/explain?user=${user}`, KEY_W1))).findings).toEqual(findings);
    expect((await json(await service.get(`/v1/explain?user=${user}`, KEY_W2))).findings).toEqual([]);
  });

  it("explain never names another user's unit or message: the reported rules are told with the story's own units", async () => {
    const template = (id: string, user: string, at: string) => [
      { kind: 'outbound', at, waba: 'W1', business: 'PN1', user, id, template: 'utility' },
      { kind: 'status', at: at.replace(':00Z', ':02Z'), waba: 'W1', id, status: 'delivered' },
    ];
    await service.postEvents([
      // The WABA's first unit under the reported PMP-2026-10 rules, reported delivered and failed: another user's.
      ...template('wamid.reported', '919812345678', '2026-10-05T10:00:00Z'),
      { kind: 'status', at: '2026-10-05T10:00:09Z', waba: 'W1', id: 'wamid.reported', status: 'failed' },
      ...template('wamid.sept', '916313906162', '2026-09-20T10:00:00Z'),
      ...template('wamid.c1', '919800000003', '2026-10-07T08:00:00Z'),
    ]);
    // All of this user's charges were PMP-2025: not told of the reported rules, nor of the other user.
    const september = await json(await service.get('/v1/explain?user=916313906162', KEY_ALL));
    const codes = (september.findings as { code: string }[]).map((finding) => finding.code);
    expect(codes).toContain('DELIVERED_AND_FAILED');
    expect(codes).not.toContain('REPORTED_RULES');
    expect(JSON.stringify(september)).not.toMatch(/wamid\.reported|919812345678/);
    // A story of units under the reported rules: told, naming its own.
    const october = await json(await service.get('/v1/explain?user=919800000003', KEY_W1));
    expect(october.findings).toContainEqual(
      expect.objectContaining({
        code: 'REPORTED_RULES',
        unit_id: 'u_wamid.c1',
        date: '2026-10-07',
        story_count: 1,
      }),
    );
    expect(JSON.stringify(october)).not.toMatch(/wamid\.reported|919812345678/);
  });

  it("explain's findings keep the WABA's count and say the story's own share (story_count)", async () => {
    // Three UK users of W1 the 2024 card has no rate for: one NO_RATE of W1 ×3, one unit of which is this story's.
    const users = ['447700123456', '447700123457', '447700123458'];
    await service.postEvents(
      users.flatMap((user, i) => [
        {
          kind: 'outbound',
          at: '2024-03-01T10:05:00Z',
          waba: 'W1',
          business: 'PN1',
          user,
          id: `wamid.uk${i}`,
          template: 'utility',
        },
        { kind: 'status', at: '2024-03-01T10:05:03Z', waba: 'W1', id: `wamid.uk${i}`, status: 'delivered' },
      ]),
    );
    const answer = await json(await service.get(`/v1/explain?user=${users[0]}`, KEY_ALL));
    expect(answer.findings).toEqual([expect.objectContaining({ code: 'NO_RATE', count: 3, story_count: 1 })]);
  });

  it('reads "user" as people write numbers, in either form of a Brazilian mobile, as `wameter explain` does', async () => {
    await service.postEvents(conversationLines('W1', 'PN1', '5521987654321', 'wamid.br'));
    for (const written of ['+55 21 98765-4321', '552187654321', '005521987654321']) {
      const query = encodeURIComponent(written);
      const units = (await json(await service.get(`/v1/units?user=${query}`, KEY_ALL))).units as {
        user: string;
      }[];
      expect(units.length).toBeGreaterThan(0);
      expect(units.every((unit) => unit.user === '5521987654321')).toBe(true);
      const story = await json(await service.get(`/v1/explain?user=${query}`, KEY_ALL));
      expect(story.user).toBe('5521987654321');
      expect((story.decisions as unknown[]).length).toBe(3);
    }
    // A business-scoped user id is taken as given.
    expect((await service.get('/v1/units?user=US.1', KEY_ALL)).status).toBe(200);
  });

  it('explain needs a user (400)', async () => {
    const response = await service.get('/v1/explain', KEY_ALL);
    expect(response.status).toBe(400);
  });

  it("answers analytics in the shape of Meta's conversation_analytics, counting conversations only", async () => {
    // June 2025's traffic too: the last month billed per conversation (July's is billed per message).
    const june = [...linesW1, ...linesW2].map((line) =>
      JSON.parse(JSON.stringify(line).replaceAll('2025-07-', '2025-06-').replaceAll('wamid.', 'wamid.june.')),
    );
    await service.postEvents(june);
    const start = Date.parse('2025-06-01T00:00:00Z') / 1000;
    const end = Date.parse('2025-08-01T00:00:00Z') / 1000;
    const answer = await json(
      await service.get(
        `/v1/analytics?start=${start}&end=${end}&granularity=DAILY&dimensions=CONVERSATION_CATEGORY,COUNTRY`,
        KEY_ALL,
      ),
    );
    const points = (answer.data as { data_points: Record<string, unknown>[] }[])[0]!.data_points;
    expect(points.length).toBeGreaterThan(0);
    for (const point of points) {
      expect(point).toEqual(
        expect.objectContaining({
          start: expect.any(Number),
          end: expect.any(Number),
          conversation: expect.any(Number),
          cost: expect.any(Number),
          conversation_category: expect.stringMatching(/^[A-Z_]+$/),
          country: expect.any(String),
        }),
      );
      expect((point.end as number) - (point.start as number)).toBe(86_400);
    }
    // Until 2026-12-05 this counted every unit, July's messages each as one "conversation" (this test pinned
    // it). Meta's conversation_analytics counts the conversations of conversation-based pricing only, as
    // /v1/graph's does: July's messages are pricing_analytics' (metric=pricing), and the answer says how many
    // it left out, so that a client who read them here is told (docs/decisions.md, "Analytics as Meta's").
    const total = points.reduce((sum, p) => sum + (p.conversation as number), 0);
    const units = (await json(await service.get('/v1/units?limit=1000', KEY_ALL))).units as {
      opened_at: string;
    }[];
    const ofJune = units.filter((unit) => unit.opened_at.startsWith('2025-06-')).length;
    expect(points.every((point) => (point.start as number) < Date.parse('2025-07-01T00:00:00Z') / 1000)).toBe(
      true,
    );
    expect(total).toBe(ofJune);
    expect(ofJune).toBeGreaterThan(0);
    expect(answer.not_counted).toEqual({
      units: units.length - ofJune,
      reason: expect.stringContaining('metric=pricing'),
    });
    const pricing = await json(
      await service.get(`/v1/analytics?start=${start}&end=${end}&granularity=DAILY&metric=pricing`, KEY_ALL),
    );
    const volume = (pricing.data as { data_points: { volume: number }[] }[])[0]!.data_points.reduce(
      (sum, p) => sum + p.volume,
      0,
    );
    expect(volume).toBe(units.length);
  });

  it("cuts one WABA's analytics days in its time zone, as Meta's exports and the dashboard do", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-accounts-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const accountsPath = join(dir, 'accounts.json');
    writeFileSync(accountsPath, JSON.stringify({ accounts: [{ waba: 'W1', timezone: 'Asia/Kolkata' }] }));
    await service.close();
    service = await createTestService({ accountsPath });
    await service.postEvents(linesW1);
    const starts = async (query: string) => {
      const answer = await json(
        // July's units are messages: pricing_analytics' (metric=conversation counts conversations only).
        await service.get(
          `/v1/analytics?start=1751000000&end=1754006400&granularity=DAILY&metric=pricing${query}`,
          KEY_ALL,
        ),
      );
      return (answer.data as { data_points: { start: number }[] }[])[0]!.data_points.map((p) => p.start);
    };
    const KOLKATA_OFFSET_S = 19_800;
    const ofW1 = await starts('&waba=W1');
    expect(ofW1.length).toBeGreaterThan(0);
    expect(ofW1.every((start) => (start + KOLKATA_OFFSET_S) % 86_400 === 0)).toBe(true);
    // Told otherwise, or across WABAs: UTC days.
    expect((await starts('&waba=W1&time_zone=UTC')).every((start) => start % 86_400 === 0)).toBe(true);
    expect((await starts('')).every((start) => start % 86_400 === 0)).toBe(true);
  });

  it("answers the CONVERSATION_DIRECTION dimension with Meta's words", async () => {
    const start = Date.parse('2025-07-01T00:00:00Z') / 1000;
    const end = Date.parse('2025-08-01T00:00:00Z') / 1000;
    const answer = await json(
      await service.get(
        // July's units are messages, which pricing_analytics counts (wameter answers the direction there too).
        `/v1/analytics?start=${start}&end=${end}&granularity=MONTHLY&metric=pricing&dimensions=CONVERSATION_DIRECTION`,
        KEY_ALL,
      ),
    );
    const points = (answer.data as { data_points: Record<string, unknown>[] }[])[0]!.data_points;
    const units = (await json(await service.get('/v1/units?limit=1000', KEY_ALL))).units as {
      category: string;
    }[];
    const userInitiated = units.filter((u) => ['service', 'referral_conversion'].includes(u.category)).length;
    const counted = (direction: string) =>
      points
        .filter((p) => p.conversation_direction === direction)
        .reduce((n, p) => n + (p.volume as number), 0);
    expect(counted('USER_INITIATED')).toBe(userInitiated);
    expect(counted('BUSINESS_INITIATED')).toBe(units.length - userInitiated);
    expect(userInitiated).toBeGreaterThan(0);
    expect(units.length - userInitiated).toBeGreaterThan(0);
  });

  it('answers pricing_analytics shape with volume and pricing_* names', async () => {
    const answer = await json(
      await service.get(
        '/v1/analytics?start=1751328000&end=1754006400&granularity=MONTHLY&metric=pricing&dimensions=PRICING_CATEGORY,PRICING_TYPE',
        KEY_ALL,
      ),
    );
    const point = (answer.data as { data_points: Record<string, unknown>[] }[])[0]!.data_points[0]!;
    expect(point).toHaveProperty('volume');
    expect(point).toHaveProperty('pricing_category');
    expect(point).toHaveProperty('pricing_type');
  });

  it('says per data point how many units it could not price, as /v1/totals does (cost is then a lower bound)', async () => {
    // A number with no known calling code: its marketing template is charged but has no market, so no price.
    await service.postEvents(conversationLines('W1', 'PN1', '99912345678', 'wamid.unknown'));
    const totals = (await json(await service.get('/v1/totals', KEY_ALL))).totals as TotalsJson;
    expect(totals.USD!.unpriced).toBeGreaterThan(0);
    const answer = await json(
      await service.get(
        '/v1/analytics?start=1751328000&end=1754006400&granularity=DAILY&metric=pricing&dimensions=COUNTRY,MARKET',
        KEY_ALL,
      ),
    );
    const points = (answer.data as { data_points: Record<string, unknown>[] }[])[0]!.data_points;
    const flagged = points.filter((point) => 'unpriced' in point);
    // GET /openapi.json says so: a data point's country and market may be null (it said "string").
    const described = (
      openApiDocument.paths['/v1/analytics'].get.responses['200'].content['application/json'].schema as {
        properties: {
          data: { items: { properties: { data_points: { items: { properties: Record<string, object> } } } } };
        };
      }
    ).properties.data.items.properties.data_points.items.properties;
    for (const point of flagged) {
      for (const [field, value] of Object.entries(point)) {
        if (value === null) expect(described[field], field).toMatchObject({ type: ['string', 'null'] });
      }
    }
    expect(flagged.reduce((n, point) => n + (point.unpriced as number), 0)).toBe(totals.USD!.unpriced);
    // Only where units went unpriced, as in totals: every other point omits it.
    expect(flagged.every((point) => point.country === null && (point.unpriced as number) > 0)).toBe(true);
    expect(points.filter((point) => point.country !== null).every((point) => !('unpriced' in point))).toBe(
      true,
    );
  });

  it("answers the TIER dimension with Meta's band strings, null for units without a tier position", async () => {
    await service.close();
    // A TEST card (2025-10-01) whose India utility bands are 1-3, 4-5 and 6+; it has no Brazilian rate.
    service = await createTestService({
      rateCardPaths: [
        join(import.meta.dirname, '../../test/golden/portfolio-tiers-across-midnight/rate-cards'),
      ],
    });
    const send = (user: string, id: string, at: string, template: string) => [
      { kind: 'outbound', at, waba: 'W1', business: 'PN1', user, id, template },
      { kind: 'status', at: at.replace(':00Z', ':05Z'), waba: 'W1', id, status: 'delivered' },
    ];
    const lines = [
      ...Array.from({ length: 7 }, (_, i) =>
        send('919876543210', `wamid.t${i}`, `2025-10-0${i + 1}T10:00:00Z`, 'utility'),
      ).flat(),
      ...send('919876543210', 'wamid.m', '2025-10-09T10:00:00Z', 'marketing'),
      ...send('5511987654321', 'wamid.br', '2025-10-09T11:00:00Z', 'utility'),
    ];
    expect((await json(await service.postEvents(lines))).accepted).toBe(lines.length);
    const query = (metric: string) =>
      `/v1/analytics?start=1759276800&end=1761955200&granularity=MONTHLY&metric=${metric}&dimensions=TIER,PRICING_CATEGORY`;
    const response = await service.get(query('pricing'), KEY_ALL);
    expect(response.status).toBe(200);
    const answer = await json(response);
    const month = { start: 1759276800, end: 1761955200, currency: 'USD' };
    expect((answer.data as { data_points: unknown[] }[])[0]!.data_points).toEqual([
      // As Meta writes it for marketing, never tiered.
      { ...month, volume: 1, tier: '0:MAX', pricing_category: 'MARKETING', cost: 0.0107 },
      { ...month, volume: 1, tier: null, pricing_category: 'UTILITY', cost: 0, unpriced: 1 },
      { ...month, volume: 3, tier: '0:3', pricing_category: 'UTILITY', cost: 0.0042 },
      { ...month, volume: 2, tier: '4:5', pricing_category: 'UTILITY', cost: 0.002 },
      { ...month, volume: 2, tier: '6:MAX', pricing_category: 'UTILITY', cost: 0.001 },
    ]);
    // conversation_analytics counts conversations only: October's units are messages, none counted there (it
    // answered each with its band until 2026-12-05), and the answer says so.
    const conversation = await json(await service.get(query('conversation'), KEY_ALL));
    expect(conversation).toEqual({
      data: [{ data_points: [] }],
      not_counted: { units: lines.length / 2, reason: expect.stringContaining('metric=pricing') },
    });
  });

  it.each([
    ['start=1&granularity=DAILY', 'end'],
    ['start=10&end=5', 'end'],
    ['start=1&end=2&granularity=WEEKLY', 'granularity'],
    ['start=1&end=2&dimensions=MOOD', 'MOOD'],
  ])('analytics answers 400 for %s', async (query, mention) => {
    const response = await service.get(`/v1/analytics?${query}`, KEY_ALL);
    expect(response.status).toBe(400);
    expect(JSON.stringify(await json(response))).toContain(mention);
  });
});

describe('API keys are scoped to WABAs: one client never reads another', () => {
  beforeEach(async () => {
    service = await createTestService();
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '919876543210', 'wamid.k1'),
      ...conversationLines('W2', 'PN2', '919876543210', 'wamid.k2'),
    ]);
  });

  it('units, CSV and totals of a W1 key hold W1 only', async () => {
    const units = (await json(await service.get('/v1/units?limit=1000', KEY_W1))).units as { waba: string }[];
    expect(units.length).toBeGreaterThan(0);
    expect(units.every((u) => u.waba === 'W1')).toBe(true);
    const csv = await (await service.get('/v1/units.csv', KEY_W1)).text();
    expect(csv).not.toContain('W2');
    const all = await json(await service.get('/v1/totals', KEY_ALL));
    const mine = await json(await service.get('/v1/totals', KEY_W1));
    const theirs = await json(await service.get('/v1/totals', KEY_W2));
    const count = (t: Record<string, unknown>) =>
      Object.values(t.totals as Record<string, { units: number }>).reduce((s, c) => s + c.units, 0);
    expect(count(mine) + count(theirs)).toBe(count(all));
    expect(count(mine)).toBe(units.length);
  });

  it.each([
    '/v1/units?waba=W2',
    '/v1/units.csv?waba=W2',
    '/v1/totals?waba=W2',
    '/v1/explain?user=919876543210&waba=W2',
  ])('asking for another WABA explicitly is 403 FORBIDDEN_WABA: %s', async (path) => {
    const response = await service.get(path, KEY_W1);
    expect(response.status).toBe(403);
    expect(await json(response)).toMatchObject({ error: { code: 'FORBIDDEN_WABA' } });
  });

  it("explain for a user both clients share shows only the key's own messages", async () => {
    const answer = await json(await service.get('/v1/explain?user=919876543210', KEY_W1));
    const decisions = answer.decisions as { waba: string; message_id: string }[];
    expect(decisions.length).toBe(3);
    expect(decisions.every((d) => d.waba === 'W1')).toBe(true);
    expect(JSON.stringify(answer)).not.toContain('wamid.k2');
    expect(JSON.stringify(answer)).not.toContain('PN2');
  });

  it("analytics of a W1 key count W1's units only", async () => {
    const answer = await json(
      await service.get(
        '/v1/analytics?start=1751328000&end=1754006400&granularity=MONTHLY&metric=pricing&dimensions=WABA',
        KEY_W1,
      ),
    );
    const points = (answer.data as { data_points: Record<string, unknown>[] }[])[0]!.data_points;
    expect(points.length).toBeGreaterThan(0);
    expect(points.every((p) => p.waba === 'W1')).toBe(true);
    const forbidden = await service.get('/v1/analytics?start=1&end=2&waba=W2', KEY_W1);
    expect(forbidden.status).toBe(403);
  });

  it("a W1 key cannot re-rate W2, and its re-rate reports W1's units only", async () => {
    const refused = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_W1}` },
      body: JSON.stringify({ wabas: ['W2'] }),
    });
    expect(refused.status).toBe(403);
    const answer = await json(
      await service.app.request('/v1/rerate', {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY_W1}` },
        body: JSON.stringify({ as_of_rules: 'CBP-2023', dry_run: true }),
      }),
    );
    expect(answer.wabas).toEqual(['W1']);
    expect(JSON.stringify(answer)).not.toContain('W2');
    // The era in any letter case, as `wameter rerate --as-of-rules cbp-2023` takes it; another is refused.
    const rerate = (asOfRules: unknown) =>
      service.app.request('/v1/rerate', {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY_W1}` },
        body: JSON.stringify({ as_of_rules: asOfRules, dry_run: true }),
      });
    const lower = await json(await rerate('cbp-2023'));
    expect(lower.totals).toEqual(answer.totals);
    expect(lower.changed).toEqual(answer.changed);
    for (const bad of ['cbp-2099', 7, '']) {
      const refused = await rerate(bad);
      expect(refused.status).toBe(400);
      expect(await json(refused)).toMatchObject({
        error: { message: expect.stringContaining('"as_of_rules" must be one of NBP, CBP-2022') },
      });
    }
  });

  it("rating history shown to a W1 key covers W1's ratings only", async () => {
    const ratings = (await json(await service.get('/v1/ratings', KEY_W1))).ratings as { wabas: string[] }[];
    expect(ratings.length).toBeGreaterThan(0);
    expect(ratings.every((r) => r.wabas.every((w) => w === 'W1'))).toBe(true);
  });
});

/** A service whose accounts put W1 and W2 (two keys' WABAs) in one portfolio, P1. */
async function withSharedPortfolio(
  test: () => Promise<void>,
  options: { accounts?: object[]; apiKeys?: ServiceConfig['apiKeys'] } = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-accounts-'));
  const accountsPath = join(dir, 'accounts.json');
  const accounts = options.accounts ?? [
    { waba: 'W1', portfolio: 'P1' },
    { waba: 'W2', portfolio: 'P1' },
  ];
  writeFileSync(accountsPath, JSON.stringify({ accounts }));
  try {
    service = await createTestService({
      accountsPath,
      ...(options.apiKeys ? { apiKeys: options.apiKeys } : {}),
    });
    await test();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('explain in a portfolio shared by two clients', () => {
  it("never shows the other client's messages, even when its own events name the other's number", async () => {
    await withSharedPortfolio(async () => {
      await service.postEvents([
        ...conversationLines('W1', 'PN1', '919876543210', 'wamid.k1'),
        ...conversationLines('W2', 'PN2', '919876543210', 'wamid.k2'),
        // W1 names W2's business number PN2 once (a probe, or a number moved between WABAs).
        {
          kind: 'inbound',
          at: '2025-01-01T00:00:00Z',
          waba: 'W1',
          business: 'PN2',
          user: '1',
          id: 'wamid.probe',
        },
      ]);
      for (const path of ['/v1/explain?user=919876543210', '/v1/explain?user=919876543210&business=PN2']) {
        expect(JSON.stringify(await json(await service.get(path, KEY_W1)))).not.toContain('wamid.k2');
      }
      const own = await json(await service.get('/v1/explain?user=919876543210', KEY_W1));
      expect(JSON.stringify(own.timeline)).toContain('wamid.k1');
      const theirs = await json(await service.get('/v1/explain?user=919876543210', KEY_W2));
      expect(JSON.stringify(theirs.timeline)).toContain('wamid.k2');
    });
  });
});

describe("explain by a business-scoped id only the portfolio mate's events pair with a number", () => {
  const SCOPED = 'US.88888888888888888888';
  it('tells a key for the other WABA nothing: the answer of an id nobody uses', async () => {
    await withSharedPortfolio(async () => {
      // Meta's own webhook of W2 pairs the id with a Brazilian number; W1 has traffic of its own.
      const pairing = scopedIdPairingWebhook({
        waba: 'W2',
        business: 'PN2',
        number: '5511987650002',
        scopedId: SCOPED,
        id: 'wamid.w2.in',
        timestamp: '1760954400',
      });
      expect((await service.postWebhook(JSON.stringify(pairing))).status).toBe(200);
      await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.k1'));
      await service.rating.settled();
      const stranger = 'US.12345678901234567890';
      const asked = await json(await service.get(`/v1/explain?user=${SCOPED}`, KEY_W1));
      const unknown = await json(await service.get(`/v1/explain?user=${stranger}`, KEY_W1));
      expect(asked).toEqual({ ...unknown, user: SCOPED });
      expect(JSON.stringify(asked)).not.toContain('5511987650002');
      // Nor is the number asked directly (on-demand.test.ts: neither is rated, so the time tells nothing).
      const byNumber = await json(await service.get('/v1/explain?user=5511987650002', KEY_W1));
      expect(byNumber).toEqual({ ...unknown, user: '5511987650002' });
      // The mate's own key, and a key for both, still get the number's story under the id.
      for (const key of [KEY_W2, KEY_ALL]) {
        const theirs = await json(await service.get(`/v1/explain?user=${SCOPED}`, key));
        expect(theirs).toMatchObject({ user: '5511987650002', scoped_user: SCOPED });
        expect(JSON.stringify(theirs.timeline)).toContain('wamid.w2.in');
      }
    });
  });

  it('still tells a limited key the story of its own user known only from statuses naming no WABA placed in its WABA', async () => {
    await withSharedPortfolio(async () => {
      const pricing = { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' };
      const bare = { kind: 'status', id: 'wamid.s1', business: 'PN1', user: '15551234567', pricing };
      await service.postEvents([
        conversationLines('W1', 'PN1', '919876543210', 'wamid.in1')[0]!,
        { ...bare, at: '2025-08-01T10:00:00Z', status: 'sent' },
        { ...bare, at: '2025-08-01T10:00:05Z', status: 'delivered' },
      ]);
      await service.rating.settled();
      const units = await json(await service.get('/v1/units', KEY_W1));
      expect(JSON.stringify(units.units)).toContain('u_wamid.s1');
      const story = await json(await service.get('/v1/explain?user=15551234567', KEY_W1));
      expect((story.units as { id: string }[]).map((unit) => unit.id)).toEqual(['u_wamid.s1']);
      expect(JSON.stringify(story.timeline)).toContain('wamid.s1');
    });
  });
});

describe('volume-tier statements posted with an API key', () => {
  const tierLine = (waba: string) => JSON.stringify(tierStatementWebhook(waba, { tier: '1000001:' }));
  const post = (key: string, line: string) =>
    service.app.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/x-ndjson' },
      body: `${line}\n`,
    });

  it("are refused from a key that may not write every WABA of the portfolio (they would price the mate's messages)", async () => {
    await withSharedPortfolio(async () => {
      const refused = (await json(await post(KEY_W1, tierLine('W1')))) as {
        accepted: number;
        rejected: { line: number; code: string; error: string }[];
      };
      expect(refused.accepted).toBe(0);
      expect(refused.rejected).toEqual([expect.objectContaining({ line: 1, code: 'FORBIDDEN_WABA' })]);
      expect(refused.rejected[0]!.error).toContain("prices the WABA's whole portfolio");
      expect(JSON.stringify(refused)).not.toContain('W2');
      expect(await service.store.listEvents(['W1', 'W2'])).toEqual([]);
      // A key for the whole portfolio may post it.
      expect((await json(await post(KEY_ALL, tierLine('W1')))).accepted).toBe(1);
    });
  });

  it('are taken from a key for its own portfolio (nobody else is priced by them)', async () => {
    service = await createTestService();
    expect((await json(await post(KEY_W1, tierLine('W1')))).accepted).toBe(1);
  });
});

describe("Meta's volume-tier statement by webhook, rated as `wameter rate` rates it", () => {
  const statement = (fields: Record<string, string>) => tierStatementWebhook('W1', fields);
  const send = {
    kind: 'outbound',
    at: '2025-11-05T10:05:00Z',
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    id: 't1',
    template: 'utility',
    delivered_at: '2025-11-05T10:05:03Z',
  };
  const findingsOf = async () =>
    (
      (await json(await service.get('/v1/findings', KEY_ALL))).findings as { code: string; message: string }[]
    ).map((finding) => [finding.code, finding.message]);

  beforeEach(async () => {
    service = await createTestService();
  });

  it('a region in another case is its market, one that is no market a TIER_STATEMENT_NOT_APPLIED finding', async () => {
    for (const [region, code] of [
      ['india', 'META_TIER_AHEAD'],
      ['Indai', 'TIER_STATEMENT_NOT_APPLIED'],
    ] as const) {
      await service.close();
      service = await createDashboardService();
      expect((await service.postWebhook(JSON.stringify(statement({ region })))).status).toBe(200);
      expect(await json(await service.postEvents([send]))).toMatchObject({ accepted: 1 });
      const expected = await batchRating([statement({ region }), send]);
      expect(
        expected.findings.map((finding) => finding.code),
        region,
      ).toEqual([code]);
      expect(await findingsOf(), region).toEqual(
        expected.findings.map((finding) => [finding.code, finding.message]),
      );
      expect(await json(await service.get('/v1/totals', KEY_ALL))).toEqual({ totals: expected.totals });
    }
  });

  it('one whose month or tier cannot be used is an unreadable item of its body, as `wameter rate` refuses it', async () => {
    for (const fields of [{ effective_month: '2025-13' }, { tier: 'two' }] as Record<string, string>[]) {
      const response = await service.postWebhook(JSON.stringify(statement(fields)));
      expect(response.status).toBe(200);
      expect(await json(response), JSON.stringify(fields)).toMatchObject({ events: 0, unreadable: 1 });
    }
    expect(await service.store.listEvents()).toEqual([]);
  });
});

describe('a client’s key and the stored bill', () => {
  it('may dry-run a re-rate of its own portfolio but not store one (403 FORBIDDEN_RERATE); the bill stays', async () => {
    service = await createTestService();
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.own'));
    const before = await json(await service.get('/v1/totals?waba=W1', KEY_ALL));
    const rerate = (body: object) =>
      service.app.request('/v1/rerate', {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY_W1}` },
        body: JSON.stringify(body),
      });
    for (const body of [{ as_of_rules: 'CBP-2022' }, { as_of_rules: 'CBP-2022', dry_run: false }, {}]) {
      const refused = await rerate(body);
      expect(refused.status, JSON.stringify(body)).toBe(403);
      expect(await json(refused)).toMatchObject({
        error: { code: 'FORBIDDEN_RERATE', message: expect.stringContaining('{"dry_run": true}') },
      });
    }
    expect(await json(await service.get('/v1/totals?waba=W1', KEY_ALL))).toEqual(before);
    const look = await rerate({ as_of_rules: 'CBP-2022', dry_run: true });
    expect(look.status).toBe(200);
    expect((await json(look)).rating_id).toBeNull();
    expect(await json(await service.get('/v1/totals?waba=W1', KEY_ALL))).toEqual(before);
  });
});

describe('a bill stored by a re-rate under another era', () => {
  it('explain and reconciliation, which rate under the service’s rules, say so until the next arrival re-rates it', async () => {
    service = await createDashboardService();
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.r1'));
    const rerate = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}` },
      body: JSON.stringify({ as_of_rules: 'CBP-2024-11' }),
    });
    expect(rerate.status).toBe(200);
    const ratingId = (await json(rerate)).rating_id as string;
    const eras = async () =>
      ((await json(await service.get('/v1/units?waba=W1', KEY_ALL))).units as { era: string }[]).map(
        (unit) => unit.era,
      );
    expect(new Set(await eras())).toEqual(new Set(['CBP-2024-11']));
    type Findings = { findings: { code: string; message: string; waba?: string; rating_id?: string }[] };
    const rerated = (answer: Findings) =>
      answer.findings.filter((finding) => finding.code === 'BILL_RERATED');
    const explained = (await json(
      await service.get('/v1/explain?user=919876543210', KEY_ALL),
    )) as Findings & {
      units: { era: string }[];
    };
    // The story is rated under each date's rules (PMP-2025 in July 2025), not the stored re-rate's.
    expect(new Set(explained.units.map((unit) => unit.era))).toEqual(new Set(['PMP-2025']));
    expect(rerated(explained)).toEqual([
      {
        code: 'BILL_RERATED',
        message: expect.stringMatching(
          new RegExp(
            `^WABA W1: its stored bill was last written by rerate ${ratingId} \\(\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z\\) under the CBP-2024-11 rules for every date; this answer rates the stored events under the service's own rules and rate cards`,
          ),
        ),
        waba: 'W1',
        rating_id: ratingId,
      },
    ]);
    const reconciled = (await json(await service.get('/v1/reconciliation', KEY_ALL))) as Findings;
    expect(rerated(reconciled).map((finding) => finding.waba)).toEqual(['W1']);
    // The next arrival re-rates the stored bill under the service's rules: nothing left to say.
    await service.postEvents([
      {
        kind: 'inbound',
        at: '2025-07-20T09:00:00Z',
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
        id: 'wamid.r1.in9',
      },
    ]);
    expect(new Set(await eras())).toEqual(new Set(['PMP-2025']));
    expect(
      rerated((await json(await service.get('/v1/explain?user=919876543210', KEY_ALL))) as Findings),
    ).toEqual([]);
    expect(rerated((await json(await service.get('/v1/reconciliation', KEY_ALL))) as Findings)).toEqual([]);
  });
});

describe('rating history in a portfolio shared by two clients', () => {
  it("shows each key the portfolio's ratings narrowed to its WABAs: their share of the totals, nothing of the mate's", async () => {
    await withSharedPortfolio(async () => {
      // W1: one marketing conversation in India; W2: two (other amounts, so a leak would show).
      await service.postEvents([
        ...conversationLines('W1', 'PN1', '919876543210', 'wamid.k1'),
        ...conversationLines('W2', 'PN2', '919876543211', 'wamid.k2'),
        ...conversationLines('W2', 'PN2', '919876543212', 'wamid.k3'),
      ]);
      type Rating = { wabas: string[]; totals: Record<string, { amount: string; units: number }> };
      const historyOf = async (key: string) =>
        (await json(await service.get('/v1/ratings', key))).ratings as Rating[];
      const [all] = await historyOf(KEY_ALL);
      expect(all!.wabas).toEqual(['W1', 'W2']);
      for (const [key, waba] of [
        [KEY_W1, 'W1'],
        [KEY_W2, 'W2'],
      ] as const) {
        const history = await historyOf(key);
        expect(history.length).toBeGreaterThan(0);
        const [latest] = history;
        expect(latest!.wabas).toEqual([waba]);
        const own = await json(await service.get(`/v1/totals?waba=${waba}`, key));
        expect(latest!.totals).toEqual(own.totals);
        expect(JSON.stringify(history)).not.toContain(waba === 'W1' ? 'W2' : 'W1');
      }
      const unitsOf = async (key: string, waba: string) =>
        (
          (await json(await service.get(`/v1/totals?waba=${waba}`, key))) as {
            totals: { USD: { units: number } };
          }
        ).totals.USD.units;
      expect(await unitsOf(KEY_W1, 'W1')).not.toBe(await unitsOf(KEY_W2, 'W2'));
      // A re-rate by an administrator: the same narrowing, and its unit changes are not shown to a W1 key.
      const rerate = await service.app.request('/v1/rerate', {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY_ALL}` },
        body: JSON.stringify({ as_of_rules: 'PMP-2025' }),
      });
      const answer = await json(rerate);
      expect(answer.accounts_changed).toBe(false);
      expect(answer.rate_cards_changed).toBe(false);
      const [afterRerate, beforeRerate] = (await json(await service.get('/v1/ratings', KEY_W1)))
        .ratings as (Rating & {
        reason: string;
        changes?: unknown;
        rate_cards_digest: string | null;
      })[];
      expect(afterRerate!.reason).toBe('rerate');
      // The same cards: the same digest of their contents, as every rating keeps it.
      expect(afterRerate!.rate_cards_digest).toMatch(/^[0-9a-f]{16}$/);
      expect(afterRerate!.rate_cards_digest).toBe(beforeRerate!.rate_cards_digest);
      expect(afterRerate!.wabas).toEqual(['W1']);
      expect(afterRerate!.changes).toBeUndefined();
    });
  });
});

describe('rating history of a key for part of a shared portfolio', () => {
  it("does not tell the key when its portfolio mate's traffic arrived: a live rating that left its share as it was is not listed", async () => {
    await withSharedPortfolio(async () => {
      type Rating = { id: string; reason: string; wabas: string[]; totals: object };
      const historyOf = async (key: string) =>
        (await json(await service.get('/v1/ratings', key))).ratings as Rating[];
      await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.h1'));
      const before = await historyOf(KEY_W1);
      expect(before.length).toBeGreaterThan(0);
      const allBefore = (await historyOf(KEY_ALL)).length;
      // Marketing in India: W2's units change nothing of W1's bill (no volume tier for marketing).
      await service.postEvents(conversationLines('W2', 'PN2', '919876543211', 'wamid.h2'));
      await service.postEvents(conversationLines('W2', 'PN2', '919876543212', 'wamid.h3'));
      expect((await historyOf(KEY_ALL)).length).toBeGreaterThan(allBefore);
      expect(await historyOf(KEY_W1)).toEqual(before);
      // W2's own key sees its ratings, and W1's traffic is as hidden from it.
      const w2Before = await historyOf(KEY_W2);
      expect(w2Before[0]!.wabas).toEqual(['W2']);
      // W1's own traffic changes its share: listed, with the new share.
      await service.postEvents(conversationLines('W1', 'PN1', '919876543213', 'wamid.h4'));
      const after = await historyOf(KEY_W1);
      expect(after.slice(1)).toEqual(before);
      expect(after[0]!.totals).toEqual((await json(await service.get('/v1/totals?waba=W1', KEY_W1))).totals);
      expect(await historyOf(KEY_W2)).toEqual(w2Before);
      // A re-rate is listed even when it changed nothing of the key's share.
      const rerate = await service.app.request('/v1/rerate', {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY_ALL}` },
        body: JSON.stringify({}),
      });
      expect(rerate.status).toBe(200);
      const [latest] = await historyOf(KEY_W1);
      expect(latest!.reason).toBe('rerate');
      expect(latest!.totals).toEqual(after[0]!.totals);
      // After a re-rate too, the mate's arrival is no news to the key.
      const afterRerate = await historyOf(KEY_W1);
      await service.postEvents(conversationLines('W2', 'PN2', '919876543214', 'wamid.h5'));
      expect((await historyOf(KEY_ALL))[0]!.reason).toBe('live');
      expect(await historyOf(KEY_W1)).toEqual(afterRerate);
    });
  });

  it("lists the key's live ratings alike before the mate's first event and after: that arrival is no news", async () => {
    await withSharedPortfolio(async () => {
      const historyOf = async () =>
        (await json(await service.get('/v1/ratings', KEY_W1))).ratings as { id: string }[];
      const inbound = (id: string, at: string) => ({
        kind: 'inbound',
        at,
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
        id,
      });
      await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.f1'), KEY_W1);
      const first = await historyOf();
      expect(first).toHaveLength(1);
      // W1's own arrival that leaves its share as it was: no news, whether W2 (its mate in the accounts file)
      // has stored events or not. Listed before W2's first event only, it told W1's key when that came.
      await service.postEvents([inbound('wamid.f2', '2025-10-06T10:00:00Z')], KEY_W1);
      expect(await historyOf()).toEqual(first);
      await service.postEvents(conversationLines('W2', 'PN2', '5511999990000', 'wamid.f3'), KEY_W2);
      await service.postEvents([inbound('wamid.f4', '2025-10-06T12:00:00Z')], KEY_W1);
      expect(await historyOf()).toEqual(first);
    });
  });

  it("shows a re-rate's changes alike before the mate's first event and after: the key reads them of neither", async () => {
    await withSharedPortfolio(async () => {
      type Rating = { id: string; reason: string; changes?: unknown };
      const latestRerate = async () => {
        const rerate = await service.app.request('/v1/rerate', {
          method: 'POST',
          headers: { Authorization: `Bearer ${KEY_ALL}` },
          body: JSON.stringify({ wabas: ['W1'] }),
        });
        expect(rerate.status).toBe(200);
        const [latest] = (await json(await service.get('/v1/ratings', KEY_W1))).ratings as Rating[];
        expect(latest!.reason).toBe('rerate');
        const changes = await service.get(`/v1/ratings/${latest!.id}/changes`, KEY_W1);
        return { hasChanges: latest!.changes !== undefined, changesStatus: changes.status };
      };
      await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.r1'), KEY_W1);
      // W2, W1's mate in the accounts file, has no stored events: the re-rate covers W1 alone.
      const before = await latestRerate();
      await service.postEvents(conversationLines('W2', 'PN2', '5511999990000', 'wamid.r2'), KEY_W2);
      const after = await latestRerate();
      expect(after).toEqual({ hasChanges: false, changesStatus: 404 });
      expect(before).toEqual(after);
    });
  });

  it("the mate's arrivals stay no news once the portfolio has more ratings than a listing reads (1000)", async () => {
    await withSharedPortfolio(async () => {
      type Rating = { id: string; reason: string; totals: object };
      const historyOf = async (key: string) =>
        (await json(await service.get('/v1/ratings?limit=1000', key))).ratings as Rating[];
      await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.w1'));
      await service.postEvents(conversationLines('W2', 'PN2', '919876543211', 'wamid.w2'));
      // 1000 more live ratings of the portfolio that leave W1's share as it was (the mate's busy traffic).
      await service.get('/v1/totals', KEY_ALL); // a read waits for the pending rating
      const [latest] = await service.store.listRatings(1);
      expect(latest!.wabas).toEqual(['W1', 'W2']);
      for (let i = 0; i < 1000; i++) {
        await service.store.applyRatingDiff(
          { ...latest!, id: `rating_mate_${i}` },
          { units: { upsert: [], delete: [] }, pending: { upsert: [], delete: [] } },
        );
      }
      // Before, the oldest rating the listing read was listed with nothing older to compare it with: each
      // arrival of the mate's pushed another of its live ratings there, which W1's key saw come and go.
      const before = await historyOf(KEY_W1);
      expect(before.filter((rating) => rating.id.startsWith('rating_mate_'))).toEqual([]);
      await service.postEvents(conversationLines('W2', 'PN2', '919876543212', 'wamid.w3'));
      await service.postEvents(conversationLines('W2', 'PN2', '919876543213', 'wamid.w4'));
      expect(await historyOf(KEY_W1)).toEqual(before);
      // W1's own traffic changes its share: still listed, compared with the ratings read.
      await service.postEvents(conversationLines('W1', 'PN1', '919876543214', 'wamid.w5'));
      const [own] = await historyOf(KEY_W1);
      expect(own!.reason).toBe('live');
      expect(own!.totals).toEqual((await json(await service.get('/v1/totals?waba=W1', KEY_W1))).totals);
    });
  });

  it("a key whose WABA has no units yet: the mate's arrivals are no news either", async () => {
    await withSharedPortfolio(async () => {
      const historyOf = async (key: string) =>
        (await json(await service.get('/v1/ratings', key))).ratings as { reason: string }[];
      await service.postEvents([
        {
          kind: 'inbound',
          at: '2025-07-10T09:00:00Z',
          waba: 'W1',
          business: 'PN1',
          user: '919876543210',
          id: 'wamid.only-in',
        },
      ]);
      const before = await historyOf(KEY_W1);
      expect(before.length).toBeGreaterThan(0);
      await service.postEvents(conversationLines('W2', 'PN2', '919876543211', 'wamid.n1'));
      await service.postEvents(conversationLines('W2', 'PN2', '919876543212', 'wamid.n2'));
      expect(await historyOf(KEY_W1)).toEqual(before);
    });
  });

  it("a key for WABAs of two portfolios: the mate's arrival in one is no news, whatever the other's ratings said", async () => {
    const KEY_W1_W3 = 'key-client-w1-and-w3';
    const accounts = [
      { waba: 'W1', portfolio: 'P1' },
      { waba: 'W2', portfolio: 'P1' },
      { waba: 'W3', portfolio: 'P2' },
    ];
    const apiKeys = [
      { name: 'admin', key: KEY_ALL, wabas: '*' as const },
      { name: 'client', key: KEY_W1_W3, wabas: ['W1', 'W3'] },
    ];
    await withSharedPortfolio(
      async () => {
        const historyOf = async (key: string) =>
          (await json(await service.get('/v1/ratings', key))).ratings as { reason: string }[];
        await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.p1'));
        await service.postEvents(conversationLines('W3', 'PN3', '919876543219', 'wamid.p3'));
        const before = await historyOf(KEY_W1_W3);
        const allBefore = (await historyOf(KEY_ALL)).length;
        await service.postEvents(conversationLines('W2', 'PN2', '919876543211', 'wamid.p2'));
        expect((await historyOf(KEY_ALL)).length).toBeGreaterThan(allBefore);
        expect(await historyOf(KEY_W1_W3)).toEqual(before);
        // A re-rate of everything under CBP-2022 (the free tier: nothing charged), then the mate's arrival:
        // its live rating puts W1's bill back under the service's rules — news to the key, and listed.
        const rerate = await service.app.request('/v1/rerate', {
          method: 'POST',
          headers: { Authorization: `Bearer ${KEY_ALL}` },
          body: JSON.stringify({ as_of_rules: 'CBP-2022' }),
        });
        expect(rerate.status).toBe(200);
        await service.postEvents(conversationLines('W2', 'PN2', '919876543212', 'wamid.p4'));
        const [latest, rerated] = (await json(await service.get('/v1/ratings', KEY_W1_W3))).ratings as {
          reason: string;
          wabas: string[];
          totals: object;
        }[];
        expect(rerated!.reason).toBe('rerate');
        expect([latest!.reason, latest!.wabas]).toEqual(['live', ['W1']]);
        expect(latest!.totals).not.toEqual(rerated!.totals);
        expect(latest!.totals).toEqual(
          (await json(await service.get('/v1/totals?waba=W1', KEY_W1_W3))).totals,
        );
      },
      { accounts, apiKeys },
    );
  });
});

/** Every rating `key` lists with `query`, page after page, and the pages' sizes (each at most `limit`). */
async function ratingsPaged(key: string, query: string, limit: number) {
  const ids: string[] = [];
  const sizes: number[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 200; pages++) {
    const response = await service.get(
      `/v1/ratings?limit=${limit}${query}${cursor === null ? '' : `&cursor=${cursor}`}`,
      key,
    );
    expect(response.status).toBe(200);
    const page = (await json(response)) as { ratings: { id: string }[]; next_cursor: string | null };
    expect(page.ratings.length).toBeLessThanOrEqual(limit);
    ids.push(...page.ratings.map((r) => r.id));
    sizes.push(page.ratings.length);
    cursor = page.next_cursor;
    if (cursor === null) return { ids, sizes };
  }
  throw new Error('the listing did not end');
}

describe('rating history of a key for part of a shared portfolio, a page at a time', () => {
  /** The service on `engine`, W1 and W2 sharing portfolio P1 (KEY_W1 reads W1, KEY_W2 reads W2). */
  async function sharedPortfolioOn(engine: 'SQLite' | 'PostgreSQL') {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-accounts-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    service = await serviceOnEngine(engine, 'wameter_app', { accountsPath: sharedPortfolioAccounts(dir) });
  }

  it.each(['SQLite', 'PostgreSQL'] as const)(
    "lists each rating once past 1000, whatever the page: one hidden is hidden on every page, compared with the rating before it across a page's edge (%s)",
    async (engine) => {
      await sharedPortfolioOn(engine);
      await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.g1'));
      await service.postEvents(conversationLines('W2', 'PN2', '919876543211', 'wamid.g2'));
      await service.get('/v1/totals', KEY_ALL); // a read waits for the pending rating
      const before = (await ratingsPaged(KEY_W1, '', 1000)).ids;
      expect(before.length).toBeGreaterThan(0);
      const [latest] = await service.store.listRatings(1);
      expect(latest!.wabas).toEqual(['W1', 'W2']);
      const { W1: w1, W2: w2 } = latest!.totalsByWaba!;
      const shareOf = (totals: NonNullable<typeof w1>, more: number) =>
        Object.fromEntries(Object.entries(totals).map(([c, t]) => [c, { ...t, units: t.units + more }]));
      // 1500 live ratings of the portfolio: the mate's share changes at each, W1's at every hundredth only.
      for (let i = 0; i < 1500; i++) {
        await service.store.applyRatingDiff(
          {
            ...latest!,
            id: `rating_page_${i}`,
            ratedAtMs: latest!.ratedAtMs + (i + 1) * 1000,
            totalsByWaba: { W1: shareOf(w1!, 1 + Math.floor(i / 100)), W2: shareOf(w2!, 1 + i) },
          },
          { units: { upsert: [], delete: [] }, pending: { upsert: [], delete: [] } },
        );
      }
      const expected = [...Array.from({ length: 15 }, (_, k) => `rating_page_${(14 - k) * 100}`), ...before];
      // A page reads at most 1000 ratings after its cursor: limit=1000 takes two pages here.
      const whole = await ratingsPaged(KEY_W1, '', 1000);
      expect(whole.ids).toEqual(expected);
      expect(whole.sizes.length).toBeGreaterThan(1);
      for (const limit of [1, 7]) expect((await ratingsPaged(KEY_W1, '', limit)).ids).toEqual(expected);
      // The mate's key sees every one (its share changed each time), each once, newest first.
      const mate = await ratingsPaged(KEY_W2, '', 400);
      expect(mate.ids.slice(0, 1500)).toEqual(
        Array.from({ length: 1500 }, (_, k) => `rating_page_${1499 - k}`),
      );
      expect(new Set(mate.ids).size).toBe(mate.ids.length);
      const all = await ratingsPaged(KEY_ALL, '', 333);
      expect(all.ids.slice(0, 1500)).toEqual(mate.ids.slice(0, 1500));
      expect(all.sizes.slice(0, -1).every((size) => size === 333)).toBe(true);
    },
  );

  it('refuses a cursor naming a rating the key is not listed, as a made-up one: 400 BAD_QUERY naming cursor', async () => {
    await sharedPortfolioOn('SQLite');
    // W1's arrival, the mate's, W1's again: each rated before the next (a read waits for the pending rating).
    for (const [waba, business, user] of [
      ['W1', 'PN1', '919876543210'],
      ['W2', 'PN2', '919876543211'],
      ['W1', 'PN1', '919876543212'],
    ] as const) {
      await service.postEvents(conversationLines(waba, business, user, `wamid.${user}`));
      await service.get('/v1/totals', KEY_ALL);
    }
    const [latest] = await service.store.listRatings(1);
    // A rating of the mate's WABA alone (a re-rate: listed to the mate's key whatever it changed; a live one
    // that left W2's share as it was is no news to it either, in a portfolio shared with W1).
    await service.store.applyRatingDiff(
      {
        ...latest!,
        id: 'rating_w2_alone',
        reason: 'rerate',
        wabas: ['W2'],
        ratedAtMs: latest!.ratedAtMs + 1000,
      },
      { units: { upsert: [], delete: [] }, pending: { upsert: [], delete: [] } },
    );
    type Rating = { id: string; reason: string };
    const listedTo = async (key: string, query = '') =>
      ((await json(await service.get(`/v1/ratings?limit=1000${query}`, key))).ratings as Rating[]).map(
        (r) => r.id,
      );
    const all = await listedTo(KEY_ALL);
    const own = await listedTo(KEY_W1);
    // The mate's arrival: a live rating W1's key is not listed.
    const hidden = all.filter((id) => !own.includes(id) && id !== 'rating_w2_alone');
    expect(hidden.length).toBeGreaterThan(0);
    expect(own.length).toBeGreaterThan(1);
    // The cursor of a rating the key is listed: the ratings after it.
    const listed = await service.get(`/v1/ratings?cursor=${ratingsCursor(own[0]!)}`, KEY_W1);
    expect(listed.status).toBe(200);
    expect(((await json(listed)).ratings as Rating[]).map((r) => r.id)).toEqual(own.slice(1));
    const unitsCursor = (await json(await service.get('/v1/units?limit=1', KEY_W1))).next_cursor as string;
    expect(typeof unitsCursor).toBe('string');
    const refusals = [];
    for (const [cursor, query] of [
      ['not-a-cursor', ''],
      [unitsCursor, ''],
      [ratingsCursor('rating_nope'), ''],
      [ratingsCursor(hidden[0]!), ''], // the mate's arrival: its time is none of this key's business
      [ratingsCursor('rating_w2_alone'), ''], // a rating of no WABA of the key's
      [ratingsCursor(own[0]!), '&reason=rerate'], // a live rating, in the listing of re-rates
    ] as const) {
      const response = await service.get(`/v1/ratings?cursor=${cursor}${query}`, KEY_W1);
      expect(response.status, cursor).toBe(400);
      refusals.push(await json(response));
    }
    expect(refusals[0]).toEqual({
      error: {
        code: 'BAD_QUERY',
        message:
          'A query parameter or request field is invalid. cursor is not one this listing of ratings returned: pass next_cursor back unchanged, with the same reason',
      },
    });
    // One answer for all: a key learns nothing of ratings it may not read by trying their ids.
    for (const refusal of refusals) expect(refusal).toEqual(refusals[0]);
    // The rating of W2 alone is the mate's key's to page from.
    expect((await service.get(`/v1/ratings?cursor=${ratingsCursor('rating_w2_alone')}`, KEY_W2)).status).toBe(
      200,
    );
  });
});

describe("one client's writes never change another client's bill", () => {
  const unitsOf = async (key: string, waba: string) =>
    ((await json(await service.get(`/v1/units?waba=${waba}&limit=1000`, key))).units as object[]).map((u) =>
      JSON.stringify(u),
    );
  const rerate = (key: string, body: object) =>
    service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    });

  it("a status posted first under another WABA does not make Meta's real webhook a duplicate", async () => {
    service = await createTestService();
    const body = fixture('pywa/status_read.json');
    const real = JSON.parse(body.toString('utf8')) as {
      entry: { id: string; changes: { value: { statuses: { id: string; status: string }[] } }[] }[];
    };
    const status = real.entry[0]!.changes[0]!.value.statuses[0]!;
    const forged = { kind: 'status', at: '2023-07-15T00:20:58Z', id: status.id, status: status.status };
    expect(await json(await service.postEvents([forged], KEY_W1))).toMatchObject({ accepted: 1 });
    const answer = await json(await service.postWebhook(body));
    expect(answer).toMatchObject({ duplicate: false, events: 1 });
    const wabas = (await service.store.listEvents()).map((event) => event.waba);
    expect(wabas.sort()).toEqual(['W1', real.entry[0]!.id].sort());
  });

  it('an outbound posted first under another WABA with the same id neither hides nor bills the real one', async () => {
    service = await createTestService();
    const theirs = conversationLines('W2', 'PN2', '919876543210', 'wamid.k2');
    await service.postEvents(theirs, KEY_W2);
    const billAlone = await unitsOf(KEY_W2, 'W2');
    expect(billAlone.length).toBeGreaterThan(0);
    await service.close();

    service = await createTestService();
    const forged = theirs.map((line) => ({ ...line, waba: 'W1', business: 'PN9' }));
    expect(await json(await service.postEvents(forged, KEY_W1))).toMatchObject({ duplicates: 0 });
    expect(await json(await service.postEvents(theirs, KEY_W2))).toMatchObject({
      accepted: theirs.length,
      duplicates: 0,
    });
    expect(await unitsOf(KEY_W2, 'W2')).toEqual(billAlone);
    // An administrator re-rating everything rates each portfolio on its own: still the same bill.
    expect((await rerate(KEY_ALL, {})).status).toBe(200);
    expect(await unitsOf(KEY_W2, 'W2')).toEqual(billAlone);
  });

  /** Client two's status naming no WABA, whose message is stored nowhere: only its business number PN2 ties it. */
  const statusOfPN2 = {
    kind: 'status',
    at: '2025-07-15T10:00:00Z',
    id: 'wamid.B-secret',
    status: 'delivered',
    business: 'PN2',
    user: '919812345678',
    pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
  };
  const inboundOf = (waba: string, business: string, id: string, at = '2025-07-10T09:00:00Z') => ({
    kind: 'inbound',
    at,
    waba,
    business,
    user: '919811111111',
    id,
  });
  const allUnits = async () =>
    (
      (await json(await service.get('/v1/units?limit=1000', KEY_ALL))).units as {
        waba: string;
        messages: string[];
      }[]
    )
      .filter((u) => u.messages.includes('wamid.B-secret'))
      .map((u) => u.waba);

  it("a key naming another client's business number takes none of its statuses naming no WABA, nor bills them twice", async () => {
    service = await createTestService();
    await service.postEvents([inboundOf('W2', 'PN2', 'in.b1'), statusOfPN2], KEY_ALL);
    const theirs = await unitsOf(KEY_W2, 'W2');
    expect(theirs.join()).toContain('wamid.B-secret');
    // W1's key names PN2 on its own WABA's lines (a probe, or a typo): stored, but it ties nothing.
    const probe = [inboundOf('W1', 'PN2', 'in.a1', '2025-07-01T09:00:00Z')];
    expect(await json(await service.postEvents(probe, KEY_W1))).toMatchObject({ accepted: 1 });
    expect((await unitsOf(KEY_W1, 'W1')).join()).not.toContain('wamid.B-secret');
    const explained = await json(await service.get('/v1/explain?user=919812345678&business=PN2', KEY_W1));
    expect(JSON.stringify(explained)).not.toContain('wamid.B-secret');
    expect(await unitsOf(KEY_W2, 'W2')).toEqual(theirs);
    expect(await allUnits()).toEqual(['W2']);
    expect(await service.store.listWabas('PN2')).toEqual(['W2']);
  });

  it("a key writing an outbound with another client's message id takes none of its statuses naming no WABA, in either order", async () => {
    // Client two's key (W2) posts its outbound, the administrator's send log the status naming no WABA; W1's
    // key learned the message id and posts an outbound with it on W1, before or after. Neither limited key's
    // outbound joins the administrator's status: PN2's owner, W2 (tied by the administrator's inbound), has it.
    const sent = {
      kind: 'outbound',
      at: '2025-07-15T09:59:00Z',
      waba: 'W2',
      business: 'PN2',
      user: '919812345678',
      id: 'wamid.B-secret',
      template: 'marketing',
    };
    const theirs = [sent];
    const forged = [{ ...sent, waba: 'W1', business: 'PN1' }];
    for (const isForgedFirst of [false, true]) {
      if (isForgedFirst) await service.close(); // the first run's (afterEach closes the last)
      service = await createTestService();
      if (isForgedFirst) await service.postEvents(forged, KEY_W1);
      await service.postEvents(theirs, KEY_W2);
      await service.postEvents([inboundOf('W2', 'PN2', 'in.b1'), statusOfPN2], KEY_ALL);
      if (!isForgedFirst) await service.postEvents(forged, KEY_W1);
      expect(await allUnits()).toEqual(['W2']);
      expect((await unitsOf(KEY_W1, 'W1')).join()).not.toContain('wamid.B-secret');
      // An administrator re-rating everything: still client two's alone.
      expect((await rerate(KEY_ALL, {})).status).toBe(200);
      expect(await allUnits()).toEqual(['W2']);
    }
  });

  it('a number a key for every WABA ties to a smaller WABA takes its statuses naming no WABA there at once: billed once', async () => {
    service = await createTestService();
    await service.postEvents([inboundOf('W2', 'PN2', 'in.b1'), statusOfPN2], KEY_ALL);
    expect(await allUnits()).toEqual(['W2']);
    // PN2 moved to W1 (a number of two WABAs): the smallest WABA owns the statuses, and W2 is re-rated too.
    await service.postEvents([inboundOf('W1', 'PN2', 'in.a1', '2025-07-12T09:00:00Z')], KEY_ALL);
    expect(await allUnits()).toEqual(['W1']);
    expect((await unitsOf(KEY_W2, 'W2')).join()).not.toContain('wamid.B-secret');
  });

  it("inside one portfolio, a key's status for the other WABA's message delivers nothing there", async () => {
    await withSharedPortfolio(async () => {
      const pendingOfW2 = {
        kind: 'outbound',
        at: '2025-07-20T10:00:00Z',
        waba: 'W2',
        business: 'PN2',
        user: '919876543210',
        id: 'wamid.w2.pending',
        template: 'marketing',
      };
      await service.postEvents([pendingOfW2], KEY_W2);
      const before = await json(await service.get('/v1/totals?waba=W2', KEY_ALL));
      // W1's key writes a status naming no WABA: it takes W1's, so it can only ever join W1's messages.
      const forged = {
        kind: 'status',
        at: '2025-07-20T10:00:05Z',
        id: 'wamid.w2.pending',
        status: 'delivered',
      };
      expect(await json(await service.postEvents([forged], KEY_W1))).toMatchObject({ accepted: 1 });
      expect(await json(await service.get('/v1/totals?waba=W2', KEY_ALL))).toEqual(before);
      expect(await unitsOf(KEY_ALL, 'W2')).toEqual([]);
      await service.rating.settled();
      const findings = await service.store.listFindings({});
      expect(findings.map((f) => f.code)).toContain('MESSAGE_OF_TWO_WABAS');
    });
  });

  it("a client's own writing pairs no business-scoped user id with a number: another client's unit keeps its own", async () => {
    await withSharedPortfolio(async () => {
      const SCOPED = 'US.13491208655302741918';
      // W2 sends a marketing template to a user it knows only by Meta's business-scoped id: no number, no market.
      await service.postEvents(
        [
          {
            kind: 'outbound',
            at: '2025-10-02T09:00:00Z',
            waba: 'W2',
            business: 'PN2',
            user: SCOPED,
            id: 'wamid.w2.scoped',
            template: 'marketing',
          },
          {
            kind: 'status',
            at: '2025-10-02T09:00:03Z',
            waba: 'W2',
            id: 'wamid.w2.scoped',
            status: 'delivered',
          },
        ],
        KEY_W2,
      );
      const before = await unitsOf(KEY_ALL, 'W2');
      // W1 posts, with its own key, a webhook body of its own WABA pairing that id with a Brazilian number.
      const pairing = scopedIdPairingWebhook({
        waba: 'W1',
        business: 'PN1',
        number: '5511999990000',
        scopedId: SCOPED,
        id: 'wamid.w1.pairing',
        timestamp: '1759399200',
      });
      expect(await json(await service.postEvents([pairing], KEY_W1))).toMatchObject({ accepted: 1 });
      await service.rating.settled();
      expect(await unitsOf(KEY_ALL, 'W2')).toEqual(before);
      expect(JSON.stringify(await unitsOf(KEY_ALL, 'W2'))).not.toContain('Brazil');
      // W1's own message is stored under the number it gave.
      expect(JSON.stringify(await service.store.listEvents(['W1']))).toContain('5511999990000');
    });
  });

  it("a key cannot re-rate a portfolio that holds another key's WABA (403), and nothing changes", async () => {
    await withSharedPortfolio(async () => {
      await service.postEvents([
        ...conversationLines('W1', 'PN1', '919876543210', 'wamid.k1'),
        ...conversationLines('W2', 'PN2', '919876543210', 'wamid.k2'),
      ]);
      const before = await unitsOf(KEY_ALL, 'W2');
      // A limited key may only look (a stored re-rate is the operator's), and not even look at a shared portfolio.
      const stored = await rerate(KEY_W1, { wabas: ['W1'], as_of_rules: 'CBP-2023' });
      expect(stored.status).toBe(403);
      expect(((await json(stored)).error as { code: string }).code).toBe('FORBIDDEN_RERATE');
      for (const body of [
        { as_of_rules: 'CBP-2023', dry_run: true },
        { wabas: ['W1'], as_of_rules: 'CBP-2023', dry_run: true },
      ]) {
        const refused = await rerate(KEY_W1, body);
        expect(refused.status).toBe(403);
        const error = (await json(refused)).error as { code: string; message: string };
        expect(error.code).toBe('FORBIDDEN_WABA');
        // Said without naming the other client's WABA.
        expect(error.message).toContain('which also holds 1 WABA(s) this key may not write');
        expect(error.message).not.toContain('W2');
      }
      expect(await unitsOf(KEY_ALL, 'W2')).toEqual(before);
      const allowed = await json(await rerate(KEY_ALL, { wabas: ['W1'], as_of_rules: 'CBP-2023' }));
      expect(allowed.wabas).toEqual(['W1', 'W2']);
    });
  });

  it("refuses a dry run alike before the mate's first event: the answer never tells when it arrived", async () => {
    await withSharedPortfolio(async () => {
      await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.k1'), KEY_W1);
      const answerTo = async () => {
        const answer = await rerate(KEY_W1, { dry_run: true });
        return { status: answer.status, body: await json(answer) };
      };
      // W2 is W1's mate in the accounts file, with nothing stored yet.
      const before = await answerTo();
      await service.postEvents(conversationLines('W2', 'PN2', '5511999990000', 'wamid.k2'), KEY_W2);
      const after = await answerTo();
      expect(after.status).toBe(403);
      expect(before).toEqual(after);
    });
  });
});

describe('an ingest re-rates every WABA whose statuses naming no WABA it moves', () => {
  const serviceOn = (engine: 'SQLite' | 'PostgreSQL') => serviceOnEngine(engine, 'wameter_app');

  /** A user's message to W2's number PN2, which makes W2 the owner of PN2's statuses naming no WABA. */
  const W2_INBOUND = {
    kind: 'inbound',
    at: '2025-07-10T09:00:00Z',
    waba: 'W2',
    business: 'PN2',
    user: '919811111111',
    id: 'in.b1',
  };

  /** W1's send log line of marketing message `id` to a user of PN1. */
  const w1SendLog = (id: string) => ({
    kind: 'outbound',
    at: '2025-07-15T09:59:00Z',
    waba: 'W1',
    business: 'PN1',
    user: '919812345678',
    id,
    template: 'marketing',
  });

  /** The message ids a WABA's stored units bill (read through the API: the rating settles first). */
  const billedOf = async (waba: string) =>
    (
      (await json(await service.get(`/v1/units?waba=${waba}&limit=1000`, KEY_ALL))).units as {
        messages: string[];
      }[]
    ).flatMap((unit) => unit.messages);
  const totalsOf = async (waba: string) =>
    (await json(await service.get(`/v1/totals?waba=${waba}`, KEY_ALL))).totals;
  /** What a re-rate of every stored event would change in the stored bill: nothing, when it is current. */
  const staleUnits = async () => {
    const response = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}` },
      body: JSON.stringify({ dry_run: true }),
    });
    expect(response.status).toBe(200);
    return (await json(response)).changed;
  };
  /** A marketing message's delivery naming no WABA, whose message is stored nowhere: its number places it. */
  const statusOf = (id: string, business: string) => ({
    kind: 'status',
    at: '2025-07-15T10:00:00Z',
    id,
    status: 'delivered',
    business,
    user: '919812345678',
    pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
  });

  it.each(['SQLite', 'PostgreSQL'] as const)(
    "%s: a signed webhook's inbound that makes a smaller WABA own a number re-rates the number's former owner",
    async (engine) => {
      service = await serviceOn(engine);
      const body = fixture('meta-docs/incoming_text_basic.json');
      const hook = JSON.parse(body.toString('utf8')) as {
        entry: { id: string; changes: { value: { metadata: { phone_number_id: string } } }[] }[];
      };
      const waba = hook.entry[0]!.id;
      const number = hook.entry[0]!.changes[0]!.value.metadata.phone_number_id;
      // W9 sorts after Meta's numeric WABA id: the webhook's WABA, once it ties the number, owns it.
      const former = 'W9';
      expect(Buffer.compare(Buffer.from(waba), Buffer.from(former))).toBe(-1);
      const inbound = {
        kind: 'inbound',
        at: '2025-06-01T09:00:00Z',
        waba: former,
        business: number,
        user: '919811111111',
        id: 'in.w9',
      };
      await service.postEvents([inbound, statusOf('wamid.unlogged', number)], KEY_ALL);
      expect(await billedOf(former)).toContain('wamid.unlogged');
      const formerTotals = await totalsOf(former);
      expect(JSON.stringify(formerTotals)).toContain('marketing');

      expect(await json(await service.postWebhook(body))).toMatchObject({ duplicate: false, events: 1 });
      expect(await service.store.listWabas(number)).toEqual([waba, former]);
      expect(await billedOf(waba)).toContain('wamid.unlogged');
      // The former owner's stored bill no longer has the status (its inbound alone bills nothing).
      expect(await billedOf(former)).not.toContain('wamid.unlogged');
      expect(JSON.stringify(await totalsOf(former))).not.toContain('marketing');
      expect(await staleUnits()).toEqual([]);
    },
  );

  it("a send log arriving after its status naming no WABA re-rates the status's former owner", async () => {
    service = await createTestService();
    await service.postEvents([W2_INBOUND, statusOf('wamid.logged-late', 'PN2')], KEY_ALL);
    expect(await billedOf('W2')).toContain('wamid.logged-late');
    // The administrator's send log names the message under W1 (and its own number): the status is W1's.
    const sent = w1SendLog('wamid.logged-late');
    expect(await json(await service.postEvents([sent], KEY_ALL))).toMatchObject({ accepted: 1 });
    expect(await billedOf('W1')).toEqual(['wamid.logged-late']);
    expect(await billedOf('W2')).not.toContain('wamid.logged-late');
    expect(await staleUnits()).toEqual([]);
  });

  it.each(['SQLite', 'PostgreSQL'] as const)(
    "%s: a trusted copy that changes nothing but a stored message's trust and tie moves a status naming no WABA: both WABAs are re-rated",
    async (engine) => {
      service = await serviceOn(engine);
      const sent = w1SendLog('wamid.trusted-late');
      // W1's own key writes the send log (untrusted: it joins only its own statuses); the administrator writes
      // W2's inbound from PN2 and the delivery naming no WABA, which PN2's owner, W2, bills.
      expect(await json(await service.postEvents([sent], KEY_W1))).toMatchObject({ accepted: 1 });
      await service.postEvents([W2_INBOUND, statusOf('wamid.trusted-late', 'PN2')], KEY_ALL);
      expect(await billedOf('W2')).toContain('wamid.trusted-late');
      expect(await billedOf('W1')).toEqual([]);

      // The administrator sends the same outbound: a copy that adds no field (not merged), yet the stored row is
      // now a trusted writer's and ties PN1, so the delivery joins it: W1 bills it, W2 no longer does.
      expect(await json(await service.postEvents([sent], KEY_ALL))).toMatchObject({
        accepted: 0,
        duplicates: 1,
        merged: 0,
      });
      expect(await billedOf('W1')).toEqual(['wamid.trusted-late']);
      expect(await billedOf('W2')).not.toContain('wamid.trusted-late');
      expect(JSON.stringify(await totalsOf('W2'))).not.toContain('marketing');
      expect(await staleUnits()).toEqual([]);
    },
  );
});

/** A re-rate of W1 stored as an earlier build wrote it (`changes` in that build's shape), with no units. */
async function storeOldRerate(
  target: TestService,
  id: string,
  changes: Record<string, unknown>,
): Promise<void> {
  await target.store.replaceRating(
    {
      id,
      ratedAtMs: Date.parse('2025-08-02T00:00:00Z'),
      reason: 'rerate',
      wabas: ['W1'],
      asOfRules: null,
      rateCards: [],
      totals: {},
      changes,
    },
    { units: [], pending: [], findings: [] },
  );
}

describe('POST /v1/rerate and GET /v1/ratings', () => {
  beforeEach(async () => {
    service = await createTestService();
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.r'));
  });

  const rerate = (body: unknown, key = KEY_ALL) =>
    service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('re-rating under another era reports old vs new per unit and in total, and keeps history', async () => {
    const before = await json(await service.get('/v1/totals', KEY_ALL));
    const response = await rerate({
      as_of_rules: 'CBP-2023',
      from: '2025-07-01T00:00:00Z',
      to: '2025-08-01T00:00:00Z',
    });
    expect(response.status).toBe(200);
    const answer = await json(response);
    expect(answer.rating_id).toMatch(/^rating_/);
    expect((answer.changed as unknown[]).length).toBeGreaterThan(0);
    const change = (answer.changed as { old: { era: string } | null; new: { era: string } | null }[]).find(
      (c) => c.new !== null,
    )!;
    expect(change.new!.era).toBe('CBP-2023');
    expect((answer.totals as { old: unknown }).old).toEqual(before.totals);
    expect(answer.totals_by_waba).toEqual({ W1: answer.totals }); // each WABA's share: here the one WABA's
    const ratings = (await json(await service.get('/v1/ratings', KEY_ALL))).ratings as {
      reason: string;
      as_of_rules: string | null;
    }[];
    expect(ratings[0]).toMatchObject({ reason: 'rerate', as_of_rules: 'CBP-2023' });
    expect(ratings.some((r) => r.reason === 'live')).toBe(true);
    // The history gives back what the re-rate answered, in its shape: snake_case, ISO instants, key order.
    const { changes } = ratings[0] as unknown as { changes: Record<string, unknown> };
    expect(Object.keys(changes)).toEqual(['period', 'outside_period', 'changed', 'unchanged', 'totals']);
    expect(changes).toMatchObject({
      period: { from: '2025-07-01T00:00:00Z', to: '2025-08-01T00:00:00Z' },
      outside_period: answer.outside_period,
      changed: (answer.changed as unknown[]).length,
      unchanged: answer.unchanged,
      totals: answer.totals,
    });
  });

  it('lists the ratings of some reasons only (reason=rerate,upgrade): live arrivals never push a re-rate off the page', async () => {
    const response = await rerate({ as_of_rules: 'CBP-2023' });
    const { rating_id: id } = await json(response);
    // Arrivals after it: each a live rating, newer than the re-rate.
    for (let i = 0; i < 3; i++) {
      await service.postEvents(conversationLines('W1', 'PN1', `91987654322${i}`, `wamid.later${i}`));
      await service.get('/v1/totals', KEY_ALL); // a read waits for the pending rating
    }
    type Rating = { id: string; reason: string };
    const listed = async (query: string, key = KEY_ALL) =>
      ((await json(await service.get(`/v1/ratings${query}`, key))).ratings as Rating[]).map((r) => r.reason);
    expect(await listed('?limit=3')).toEqual(['live', 'live', 'live']);
    const [rerated] = (await json(await service.get('/v1/ratings?reason=rerate&limit=3', KEY_ALL)))
      .ratings as Rating[];
    expect(rerated).toMatchObject({ id, reason: 'rerate' });
    expect(await listed('?reason=rerate,upgrade')).toEqual(['rerate']);
    expect(await listed('?reason=upgrade')).toEqual([]);
    expect((await listed('?reason=live')).every((reason) => reason === 'live')).toBe(true);
    expect(await listed('?reason=rerate', KEY_W1)).toEqual(['rerate']);
    for (const bad of ['', 'rerates', 'rerate,rerate', 'rerate,', 'RERATE']) {
      const refused = await service.get(`/v1/ratings?reason=${bad}`, KEY_ALL);
      expect(refused.status).toBe(400);
      expect((await json(refused)).error).toMatchObject({
        code: 'BAD_QUERY',
        message: expect.stringMatching(
          bad === '' ? /"reason" is empty/ : /"reason" must list reasons of ratings/,
        ),
      });
    }
  });

  it.each(['SQLite', 'PostgreSQL'] as const)(
    'pages the history with cursor (%s): {ratings, next_cursor}, newest first, each rating once, null on the last page',
    async (engine) => {
      service = await serviceOnEngine(engine, 'wameter_app');
      for (let i = 0; i < 4; i++) {
        await service.postEvents(conversationLines('W1', 'PN1', `91987654323${i}`, `wamid.page${i}`));
        await service.get('/v1/totals', KEY_ALL); // a read waits for the pending rating
        if (i % 2 === 1)
          expect((await rerate({ as_of_rules: i === 1 ? 'CBP-2023' : 'PMP-2025' })).status).toBe(200);
      }
      type Page = { ratings: { id: string; reason: string }[]; next_cursor: string | null };
      for (const key of [KEY_ALL, KEY_W1]) {
        const whole = (await json(await service.get('/v1/ratings?limit=1000', key))) as Page;
        expect(whole.next_cursor).toBeNull();
        const ids = whole.ratings.map((r) => r.id);
        expect(ids.length).toBeGreaterThan(4);
        const paged = await ratingsPaged(key, '', 2);
        expect(paged.ids).toEqual(ids);
        expect(paged.sizes).toEqual([...Array(Math.ceil(ids.length / 2) - 1).fill(2), 2 - (ids.length % 2)]);
        // An exact last page says so: no cursor to a page of nothing.
        const exact = (await json(await service.get(`/v1/ratings?limit=${ids.length}`, key))) as Page;
        expect(exact).toEqual(whole);
        const first = (await json(await service.get(`/v1/ratings?limit=${ids.length - 1}`, key))) as Page;
        expect(first.next_cursor).toEqual(expect.any(String));
        expect(
          (await json(await service.get(`/v1/ratings?limit=5&cursor=${first.next_cursor}`, key))) as Page,
        ).toEqual({ ratings: [whole.ratings.at(-1)], next_cursor: null });
        // Ratings of some reasons, paged the same.
        const rerates = whole.ratings.filter((r) => r.reason === 'rerate').map((r) => r.id);
        expect(rerates.length).toBe(2);
        expect((await ratingsPaged(key, '&reason=rerate', 1)).ids).toEqual(rerates);
      }
      // A cursor that is none, of another listing, or of a rating this listing does not hold: 400 naming it.
      const unitsCursor = (await json(await service.get('/v1/units?limit=1', KEY_ALL))).next_cursor as string;
      const [rerated] = (await json(await service.get('/v1/ratings?reason=rerate', KEY_ALL))).ratings as {
        id: string;
      }[];
      const changesCursor = (
        await json(await service.get(`/v1/ratings/${rerated!.id}/changes?limit=1`, KEY_ALL))
      ).next_cursor as string;
      const [live] = (await json(await service.get('/v1/ratings?reason=live', KEY_ALL))).ratings as {
        id: string;
      }[];
      for (const [cursor, query] of [
        ['not-a-cursor', ''],
        [unitsCursor, ''],
        [changesCursor, ''],
        [ratingsCursor('rating_nope'), ''],
        [ratingsCursor(live!.id), '&reason=rerate'],
      ]) {
        const response = await service.get(`/v1/ratings?cursor=${cursor}${query}`, KEY_ALL);
        expect(response.status, cursor).toBe(400);
        expect(await json(response)).toEqual({
          error: {
            code: 'BAD_QUERY',
            message:
              'A query parameter or request field is invalid. cursor is not one this listing of ratings returned: pass next_cursor back unchanged, with the same reason',
          },
        });
      }
      // And the cursor of /v1/ratings is no cursor of /v1/units.
      const ratingsPage = (await json(await service.get('/v1/ratings?limit=1', KEY_ALL))) as Page;
      const units = await service.get(`/v1/units?cursor=${ratingsPage.next_cursor}`, KEY_ALL);
      expect(units.status).toBe(400);
    },
  );

  it('lists the re-rates of `wameter rerate` (reason "rerate (cli)") under reason=rerate too', async () => {
    await service.postEvents(conversationLines('W1', 'PN1', '919876543230', 'wamid.cli'));
    // What `wameter rerate` stores: the same re-rate, under a reason of its own.
    const stored = await service.rating.rerate({ asOfRules: 'CBP-2023', reason: 'rerate (cli)' });
    expect(stored.ok).toBe(true);
    const id = stored.ok ? stored.value.ratingId : undefined;
    for (let i = 0; i < 3; i++) {
      await service.postEvents(conversationLines('W1', 'PN1', `91987654324${i}`, `wamid.after${i}`));
      await service.get('/v1/totals', KEY_ALL);
    }
    type Rating = { id: string; reason: string };
    const listed = async (query: string, key = KEY_ALL) =>
      (await json(await service.get(`/v1/ratings${query}`, key))).ratings as Rating[];
    expect(await listed('?reason=rerate&limit=3')).toEqual([
      expect.objectContaining({ id, reason: 'rerate (cli)' }),
    ]);
    expect(await listed('?reason=rerate,upgrade')).toEqual([expect.objectContaining({ id })]);
    expect(await listed('?reason=rerate', KEY_W1)).toEqual([expect.objectContaining({ id })]);
    expect((await listed('?reason=live')).map((r) => r.reason)).not.toContain('rerate (cli)');
  });

  it("pages a re-rate's changed units as the re-rate answered them (GET /v1/ratings/{id}/changes)", async () => {
    await service.postEvents(conversationLines('W1', 'PN1', '919876543211', 'wamid.s'));
    const answer = await json(await rerate({ as_of_rules: 'CBP-2023' }));
    const id = answer.rating_id as string;
    const expected = answer.changed as unknown[];
    expect(expected.length).toBeGreaterThan(1);
    const pages: unknown[][] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const response = await service.get(`/v1/ratings/${id}/changes?limit=1${query}`, KEY_ALL);
      expect(response.status).toBe(200);
      const page = (await json(response)) as {
        rating_id: string;
        units: unknown[];
        next_cursor: string | null;
      };
      expect(page.rating_id).toBe(id);
      pages.push(page.units);
      cursor = page.next_cursor;
    } while (cursor !== null && pages.length <= expected.length);
    expect(pages.flat()).toEqual(expected);
    expect(pages.every((page) => page.length === 1)).toBe(true);
    // W1's own key reads them too (every WABA of the re-rate is its own).
    expect((await json(await service.get(`/v1/ratings/${id}/changes`, KEY_W1))).units).toEqual(expected);

    // An unknown id, a live rating's, another client's re-rate: one 404, alike.
    const ratings = (await json(await service.get('/v1/ratings', KEY_ALL))).ratings as {
      id: string;
      reason: string;
    }[];
    const live = ratings.find((r) => r.reason === 'live')!.id;
    const notFound = async (path: string, key: string) => {
      const response = await service.get(path, key);
      expect(response.status, path).toBe(404);
      return ((await json(response)) as { error: { code: string; message: string } }).error;
    };
    const unknown = await notFound('/v1/ratings/rating_nope/changes', KEY_ALL);
    expect(unknown.code).toBe('NO_SUCH_RATING');
    expect(unknown.message).toContain('"rating_nope"');
    expect((await notFound(`/v1/ratings/${live}/changes`, KEY_ALL)).code).toBe('NO_SUCH_RATING');
    const other = await notFound(`/v1/ratings/${id}/changes`, KEY_W2);
    expect(other).toEqual({ ...unknown, message: unknown.message.replace('rating_nope', id) });

    // A cursor of another endpoint, or made up: 400, saying what to do.
    await service.postEvents(conversationLines('W2', 'PN2', '919876543212', 'wamid.t'));
    const unitsCursor =
      ((await json(await service.get('/v1/units?limit=1', KEY_ALL))).next_cursor as string) ?? '';
    for (const bad of [unitsCursor, 'garbage']) {
      const response = await service.get(`/v1/ratings/${id}/changes?cursor=${bad}`, KEY_ALL);
      expect(response.status).toBe(400);
      expect(((await json(response)) as { error: { message: string } }).error.message).toContain(
        'pass next_cursor back unchanged',
      );
    }
  });

  it("answers the new rating's findings, a limited key only those of its own WABAs", async () => {
    // An unknown recipient of W1's, and W1's key reporting on W2's pending message
    // (a status naming no WABA: W1's STATUS_WITHOUT_USER).
    await service.postEvents(
      [
        {
          kind: 'outbound',
          at: '2025-07-20T10:00:00Z',
          waba: 'W2',
          business: 'PN2',
          user: '999124',
          id: 'wamid.w2.pending',
          template: 'marketing',
        },
      ],
      KEY_W2,
    );
    await service.postEvents(
      [
        {
          kind: 'outbound',
          at: '2025-07-15T10:00:00Z',
          waba: 'W1',
          business: 'PN1',
          user: '999123',
          id: 'wamid.r.unknown',
          template: 'marketing',
        },
        {
          kind: 'status',
          at: '2025-07-15T10:00:03Z',
          waba: 'W1',
          id: 'wamid.r.unknown',
          status: 'delivered',
        },
        { kind: 'status', at: '2025-07-20T10:00:05Z', id: 'wamid.w2.pending', status: 'delivered' },
      ],
      KEY_W1,
    );
    const codesOf = async (key: string) => {
      const response = await rerate({ dry_run: true }, key);
      expect(response.status).toBe(200);
      const findings = (await json(response)).findings as {
        code: string;
        waba?: string;
        other_waba?: string;
      }[];
      return findings;
    };
    const all = await codesOf(KEY_ALL);
    expect(all.filter((f) => f.code === 'UNKNOWN_RECIPIENT').map((f) => f.waba)).toEqual(['W1']);
    const own = await codesOf(KEY_W1);
    expect(own.map((f) => f.code)).toEqual(
      expect.arrayContaining(['UNKNOWN_RECIPIENT', 'STATUS_WITHOUT_USER']),
    );
    expect(JSON.stringify(own)).not.toContain('W2');
  });

  it("the documents describe a re-rate's stored changes as stored, not as POST /v1/rerate's answer", async () => {
    expect((await rerate({ as_of_rules: 'CBP-2023' })).status).toBe(200);
    const ratings = (await json(await service.get('/v1/ratings', KEY_ALL))).ratings as {
      changes?: Record<string, unknown>;
    }[];
    const keys = Object.keys(ratings.find((r) => r.changes !== undefined)!.changes!);
    const described = openApiDocument.paths['/v1/ratings'].get.description;
    const row = readFileSync(join(import.meta.dirname, '../../docs/service.md'), 'utf8')
      .split('\n')
      .find((line) => line.startsWith('| `GET /v1/ratings'))!;
    for (const text of [described, row]) {
      // POST /v1/rerate answers `changed: [{unit, old, new}]`; the stored changes count them (GET /v1/ratings/{id}/changes pages them).
      expect(text).not.toMatch(/what `?POST \/v1\/rerate`? answered/);
      let at = -1;
      for (const key of keys) {
        const next = text.indexOf(key, at + 1);
        expect(next, `${key} in ${text}`).toBeGreaterThan(at);
        at = next;
      }
      expect(text).toMatch(/changed`? \(a count/);
    }
  });

  it('gives back a re-rate stored before the twelfth session in the same shape as new ones', async () => {
    await storeOldRerate(service, 'rating_old', {
      period: { fromMs: Date.parse('2025-07-01T00:00:00Z'), toMs: null },
      changed: 0,
      unchanged: 3,
    });
    const ratings = (await json(await service.get('/v1/ratings', KEY_ALL))).ratings as {
      id: string;
      changes?: unknown;
    }[];
    expect(ratings.find((r) => r.id === 'rating_old')!.changes).toEqual({
      period: { from: '2025-07-01T00:00:00Z', to: null },
      outside_period: null,
      changed: 0,
      unchanged: 3,
    });
  });

  it('refuses an empty list of WABAs, or a WABA with nothing stored (a typo), and records nothing', async () => {
    const historyBefore = (await json(await service.get('/v1/ratings', KEY_ALL))).ratings as unknown[];
    for (const [wabas, words] of [
      [[], 'is empty'],
      [['W1', 'W9'], '"W9" has no stored events'],
    ] as const) {
      const response = await rerate({ wabas, as_of_rules: 'CBP-2023' });
      expect(response.status).toBe(400);
      const error = (await json(response)).error as { code: string; message: string };
      expect(error.code).toBe('BAD_QUERY');
      expect(error.message).toContain(words);
    }
    expect((await json(await service.get('/v1/ratings', KEY_ALL))).ratings).toEqual(historyBefore);
  });

  it('refuses a re-rate of all WABAs when none of them has stored events (400), and records nothing', async () => {
    const historyBefore = (await json(await service.get('/v1/ratings', KEY_ALL))).ratings as unknown[];
    // W2's key: only W1 has events.
    for (const body of [{ dry_run: true }, { dry_run: true, as_of_rules: 'CBP-2023' }]) {
      const response = await rerate(body, KEY_W2);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(await json(response)).toEqual({
        error: {
          code: 'BAD_QUERY',
          message:
            'A query parameter or request field is invalid. None of the WABAs this key may re-rate (W2) has stored events: nothing to re-rate.',
        },
      });
    }
    expect((await json(await service.get('/v1/ratings', KEY_ALL))).ratings).toEqual(historyBefore);
    expect((await json(await service.get('/v1/ratings', KEY_W2))).ratings).toEqual([]);
    // A key for every WABA, on an empty store.
    await service.close();
    service = await createTestService();
    const empty = await rerate({});
    expect(empty.status).toBe(400);
    expect(((await json(empty)).error as { message: string }).message).toContain(
      'The store holds no events: nothing to re-rate',
    );
    expect(await service.store.listRatings(10)).toEqual([]);
  });

  it('a dry run changes nothing and records nothing', async () => {
    const historyBefore = (await json(await service.get('/v1/ratings', KEY_ALL))).ratings as unknown[];
    const answer = await json(await rerate({ as_of_rules: 'CBP-2023', dry_run: true }));
    expect(answer.rating_id).toBeNull();
    const historyAfter = (await json(await service.get('/v1/ratings', KEY_ALL))).ratings as unknown[];
    expect(historyAfter).toEqual(historyBefore);
  });

  it('a period re-rate also says what changed outside the period (the whole portfolio is stored again)', async () => {
    const template = (id: string, at: string) => [
      { kind: 'outbound', at, waba: 'W1', business: 'PN1', user: '919876543210', id, template: 'marketing' },
      { kind: 'status', at, waba: 'W1', id, status: 'delivered' },
    ];
    await service.postEvents([
      ...template('wamid.oct', '2025-10-10T10:00:00Z'),
      ...template('wamid.nov', '2025-11-10T10:00:00Z'),
    ]);
    const november = { from: '2025-11-01T00:00:00Z', to: '2025-12-01T00:00:00Z', as_of_rules: 'CBP-2022' };
    const answer = (await json(await rerate(november))) as {
      changed: { unit: string }[];
      outside_period: { changed: number; totals: { old: TotalsJson; new: TotalsJson } };
    };
    expect(answer.changed.map((change) => change.unit)).toEqual(['u_wamid.nov']);
    // October's unit was re-rated and stored too (under CBP-2022: a free-tier conversation): said, not hidden.
    expect(answer.outside_period.changed).toBeGreaterThanOrEqual(1);
    expect(answer.outside_period.totals.old.USD!.amount).not.toBe(
      answer.outside_period.totals.new.USD!.amount,
    );
    const without = (await json(await rerate({ dry_run: true }))) as { outside_period: unknown };
    expect(without.outside_period).toBeNull();
  });

  it("outside_period's totals are those of every unit opened outside the period, changed or not, as the documents say", async () => {
    // Under the same rules nothing changes, outside the period or in it: the totals are still the bill's.
    const answer = (await json(
      await rerate({ from: '2025-07-12T00:00:00Z', to: '2025-07-13T00:00:00Z', dry_run: true }),
    )) as { changed: unknown[]; outside_period: { changed: number; totals: { old: TotalsJson } } };
    expect(answer.changed).toEqual([]);
    expect(answer.outside_period.changed).toBe(0);
    const units = (await json(await service.get('/v1/units?limit=1000', KEY_ALL))).units as {
      opened_at: string;
    }[];
    const outside = units.filter((unit) => !unit.opened_at.startsWith('2025-07-12'));
    expect(outside.length).toBeGreaterThan(0);
    expect(answer.outside_period.totals.old.USD!.units).toBe(outside.length);
    const documented = [
      (
        openApiDocument.paths['/v1/rerate'].post.responses['200'].content['application/json'].schema as {
          properties: { outside_period: { description: string } };
        }
      ).properties.outside_period.description,
      readFileSync(join(import.meta.dirname, '../../docs/service.md'), 'utf8')
        .split('\n## Re-rating and history')[1]!
        .split('\n\n')[1]!,
    ];
    for (const text of documented) {
      expect(text).toMatch(/every unit opened outside/);
      expect(text).not.toMatch(/changed too[^.]*,? (and|with) their totals/);
    }
  });

  describe('under other rate cards sent as their text (rate_cards)', () => {
    const cardsFolder = join(import.meta.dirname, '../../data/rate-cards');
    /** The bundled cards, India's marketing rate set to 0.5000 in each. */
    const dearIndia = () =>
      readdirSync(cardsFolder).map((name) => ({
        name,
        csv: readFileSync(join(cardsFolder, name), 'utf8').replace(
          /^India,\$US,([\d.]+),/m,
          'India,$US,0.5000,',
        ),
      }));
    type Change = { unit: string; old: { amount: string } | null; new: { amount: string } | null };

    it('prices the re-rate with them: a dry run reports the change and stores nothing', async () => {
      const before = await json(await service.get('/v1/ratings', KEY_ALL));
      const response = await rerate({ rate_cards: dearIndia(), dry_run: true });
      expect(response.status).toBe(200);
      const answer = await json(response);
      expect(answer.rate_cards_changed).toBe(true);
      // Only the marketing message is priced from India's marketing rate.
      expect((answer.changed as Change[]).map((change) => [change.unit, Number(change.new!.amount)])).toEqual(
        [['u_wamid.r.o2', 0.5]],
      );
      expect(await json(await service.get('/v1/ratings', KEY_ALL))).toEqual(before);
    });

    it('stores a re-rate under them, named by the cards given, and a client key may dry-run them', async () => {
      const cards = dearIndia();
      const answer = await json(await rerate({ rate_cards: cards }));
      expect((answer.changed as Change[]).map((change) => change.unit)).toEqual(['u_wamid.r.o2']);
      const units = (await json(await service.get('/v1/units', KEY_ALL))).units as {
        id: string;
        amount: string;
      }[];
      expect(Number(units.find((unit) => unit.id === 'u_wamid.r.o2')!.amount)).toBe(0.5);
      const ratings = (await json(await service.get('/v1/ratings', KEY_ALL))).ratings as {
        reason: string;
        rate_cards: string[];
      }[];
      expect(ratings[0]!.reason).toBe('rerate');
      expect(ratings[0]!.rate_cards.length).toBeGreaterThan(0);
      expect(ratings[0]!.rate_cards.every((id) => cards.some((card) => card.name.startsWith(id)))).toBe(true);
      // W1's own key: a dry run under the same cards changes nothing more (the bill is already theirs).
      const client = await rerate({ rate_cards: cards, dry_run: true }, KEY_W1);
      expect(client.status).toBe(200);
      expect((await json(client)).changed).toEqual([]);
    });

    it('advises, of a date without a card, to add one to rate_cards (not the flag or the setting it ignores)', async () => {
      // Only October 2025's card: July's units have none in force.
      const cards = dearIndia().filter((card) => card.name.startsWith('usd-2025-10-01'));
      const answer = await json(await rerate({ rate_cards: cards, dry_run: true }));
      const noCard = (answer.findings as { code: string; message: string }[]).filter(
        (finding) => finding.code === 'NO_RATE_CARD',
      );
      expect(noCard.length).toBeGreaterThan(0);
      for (const finding of noCard) {
        expect(finding.message).toContain('"rate_cards" of the re-rate');
        expect(finding.message).not.toContain('WAMETER_RATE_CARDS');
      }
    });

    it('stores no re-rate pricing fewer charges than the stored bill (409 UNPRICED_RERATE), unless allow_unpriced', async () => {
      // Only October 2025's card: July's charges, priced in the stored bill, would have none.
      const cards = dearIndia().filter((card) => card.name.startsWith('usd-2025-10-01'));
      const before = await json(await service.get('/v1/ratings', KEY_ALL));
      const units = await json(await service.get('/v1/units', KEY_ALL));
      const refused = await rerate({ rate_cards: cards });
      expect(refused.status).toBe(409);
      const { error } = (await json(refused)) as { error: { code: string; message: string } };
      expect(error.code).toBe('UNPRICED_RERATE');
      expect(error.message).toMatch(
        /the new rating leaves [1-9]\d* charged unit\(s\) without a price where the stored bill has 0 \(findings: \d+ × NO_RATE_CARD\): nothing was stored/,
      );
      expect(await json(await service.get('/v1/ratings', KEY_ALL))).toEqual(before);
      expect(await json(await service.get('/v1/units', KEY_ALL))).toEqual(units);
      const bad = await rerate({ rate_cards: cards, allow_unpriced: 'yes' });
      expect(bad.status).toBe(400);
      const allowed = await rerate({ rate_cards: cards, allow_unpriced: true });
      expect(allowed.status).toBe(200);
      expect((await json(allowed)).rating_id).toMatch(/^rating_/);
    });

    it('refuses a card that does not parse, naming it and its line, and rates nothing', async () => {
      const before = await json(await service.get('/v1/ratings', KEY_ALL));
      const cards = dearIndia();
      cards[cards.length - 1]!.csv = cards.at(-1)!.csv.replace(/^India,\$US,[\d.]+,/m, 'India,$US,cheap,');
      const response = await rerate({ rate_cards: cards });
      expect(response.status).toBe(400);
      const { error } = (await json(response)) as { error: { code: string; message: string } };
      expect(error.code).toBe('BAD_QUERY');
      expect(error.message).toContain(cards.at(-1)!.name);
      expect(error.message).toMatch(/line \d+/);
      expect(await json(await service.get('/v1/ratings', KEY_ALL))).toEqual(before);
    });

    it.each([
      [{ rate_cards: 'usd.csv' }, 'must be a list of {\\"name\\"'],
      [{ rate_cards: [] }, '\\"rate_cards\\" is empty'],
      [{ rate_cards: [{ name: 'a.csv' }] }, '\\"csv\\" must be the file\'s text'],
      [{ rate_cards: [{ name: 'a.csv', csv: 1 }] }, '\\"csv\\" must be the file\'s text'],
      [{ rate_cards: [{ name: 'a.txt', csv: '' }] }, 'ending in .csv'],
      [{ rate_cards: [{ name: 'a\u0000.csv', csv: '' }] }, 'without a folder or control characters'],
      [{ rate_cards: [{ name: 'a\ud800.csv', csv: '' }] }, 'without a folder or control characters'],
      [{ rate_cards: [{ name: `${'a'.repeat(252)}.csv`, csv: '' }] }, 'at most 255 characters'],
      [{ rate_cards: Array.from({ length: 101 }, (_, i) => ({ name: `${i}.csv`, csv: '' })) }, 'at most 100'],
      [{ rate_cards: [{ name: 'a.csv', csv: '', path: '/x' }] }, 'has a field \\"path\\"'],
      [
        {
          rate_cards: [
            { name: 'a.csv', csv: '' },
            { name: 'A.csv', csv: '' },
          ],
        },
        'given twice',
      ],
    ])('answers 400 for rate_cards of %j', async (body, mention) => {
      const response = await rerate(body);
      expect(response.status).toBe(400);
      expect(JSON.stringify(await json(response))).toContain(mention);
    });
  });

  it('re-rating under the same rules changes nothing', async () => {
    const answer = await json(await rerate({}));
    expect(answer.changed).toEqual([]);
    expect(answer.unchanged).toBeGreaterThan(0);
  });

  it.each([
    [{ as_of_rules: 'CBP-1999' }, 'as_of_rules'],
    [{ from: 'last week' }, 'from'],
    [{ wabas: 'W1' }, 'wabas'],
    [{ rate_cards: ['/etc/passwd'] }, '\\"rate_cards\\"[0] is not an object'],
    [{ rate_cards: [{ name: '/etc/passwd.csv', csv: '' }] }, 'without a folder'],
    [
      { from: '2025-11-01T00:00:00Z', to: '2025-10-01T00:00:00Z', dry_run: true },
      '\\"to\\" is before \\"from\\"',
    ],
  ])('answers 400 for %j', async (body, mention) => {
    const response = await rerate(body);
    expect(response.status).toBe(400);
    expect(JSON.stringify(await json(response))).toContain(mention);
  });

  it('answers 400 MALFORMED_JSON for a body that is not JSON', async () => {
    const response = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}` },
      body: '{as_of_rules:',
    });
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { code: 'MALFORMED_JSON' } });
  });

  it('refuses an empty body, and a period whose "to" equals its "from", and re-rates nothing', async () => {
    const before = await json(await service.get('/v1/ratings', KEY_ALL));
    const empty = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}` },
    });
    expect(empty.status).toBe(400);
    expect(await json(empty)).toMatchObject({
      error: { code: 'MALFORMED_JSON', message: expect.stringContaining('{} to re-rate every portfolio') },
    });
    const instant = '2025-07-10T00:00:00Z';
    const nothing = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ from: instant, to: instant, as_of_rules: 'CBP-2023' }),
    });
    expect(nothing.status).toBe(400);
    expect(await json(nothing)).toMatchObject({
      error: { code: 'BAD_QUERY', message: expect.stringContaining('"to" equals "from"') },
    });
    expect(await json(await service.get('/v1/ratings', KEY_ALL))).toEqual(before);
  });

  const rawRerate = (body: string) =>
    service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/json' },
      body,
    });

  it.each([
    ['{"wabas":["W1"],"as_of_rules":"CBP-2023","dry_run":true,"dry_run":false}', '"dry_run"'],
    ['{"wabas":["W1"],"wabas":["W1"],"as_of_rules":"CBP-2023","dry_run":true}', '"wabas"'],
    // The same key written two ways is the same key: JSON.parse would keep the second.
    ['{"as_of_rules":"CBP-2023","dry_run":true,"dry\\u005frun":false}', '"dry_run"'],
  ])(
    'refuses %s, a key given twice, with 400 BAD_QUERY naming it, and re-rates nothing',
    async (body, key) => {
      const ratingsBefore = await json(await service.get('/v1/ratings', KEY_ALL));
      const unitsBefore = await json(await service.get('/v1/units', KEY_ALL));
      const response = await rawRerate(body);
      expect(response.status).toBe(400);
      const error = (await json(response)).error as { code: string; message: string };
      expect(error.code).toBe('BAD_QUERY');
      expect(error.message).toContain(`${key} is given twice`);
      expect(await json(await service.get('/v1/ratings', KEY_ALL))).toEqual(ratingsBefore);
      expect(await json(await service.get('/v1/units', KEY_ALL))).toEqual(unitsBefore);
    },
  );

  it.each(['[1]', 'null', '123', '"x"', 'true', '[]'])(
    'refuses valid JSON that is no object (%s) with 400 BAD_QUERY saying the body must be a JSON object',
    async (body) => {
      const response = await rawRerate(body);
      expect(response.status).toBe(400);
      const error = (await json(response)).error as { code: string; message: string };
      expect(error.code).toBe('BAD_QUERY');
      expect(error.message).toContain('must be a JSON object');
      expect(error.message).not.toContain('not valid JSON');
    },
  );

  it.each([
    [{ dry_run: 'yes' }, 'dry_run'],
    [{ dry_run: 1 }, 'dry_run'],
    [{ as_of_rules: 'CBP-2023', dryrun: true }, 'dryrun'],
  ])('refuses %j with 400 BAD_QUERY naming the field, and re-rates nothing', async (body, field) => {
    const before = await json(await service.get('/v1/ratings', KEY_ALL));
    const response = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}` },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(400);
    const error = (await json(response)).error as { code: string; message: string };
    expect(error.code).toBe('BAD_QUERY');
    expect(error.message).toContain(field);
    expect(await json(await service.get('/v1/ratings', KEY_ALL))).toEqual(before);
  });
});

describe('GET /v1/ratings writes rated_at as the rest of the API writes instants', () => {
  it('to the second, "2025-08-01T12:00:00Z", not the clock\'s milliseconds ("…:00.123Z")', async () => {
    service = await createTestService();
    service.clock.nowMs = Date.parse('2025-08-01T12:00:00.123Z');
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.r'));
    const rerate = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ as_of_rules: 'CBP-2023' }),
    });
    expect(rerate.status).toBe(200);
    const { ratings } = (await json(await service.get('/v1/ratings', KEY_ALL))) as {
      ratings: { reason: string; rated_at: string }[];
    };
    // A live rating and the re-rate, each read the clock once.
    expect(ratings.map((rating) => rating.reason).sort()).toEqual(['live', 'rerate']);
    for (const rating of ratings) expect(rating.rated_at).toBe('2025-08-01T12:00:00Z');
    // A limited key's narrowed view is written the same way.
    const narrowed = (await json(await service.get('/v1/ratings', KEY_W1))) as {
      ratings: { rated_at: string }[];
    };
    expect(narrowed.ratings.length).toBeGreaterThan(0);
    for (const rating of narrowed.ratings) expect(rating.rated_at).toBe('2025-08-01T12:00:00Z');
  });
});

describe.each(['SQLite', 'PostgreSQL'] as const)(
  "GET /v1/ratings writes a re-rate's period instants as the rest of the API does (%s)",
  (engine) => {
    beforeEach(async () => {
      service = await serviceOnEngine(engine, 'wameter_app');
      await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.p'));
    });

    type Changes = { period: { from: string | null; to: string | null } };
    const changesOf = async (id?: string) => {
      const ratings = (await json(await service.get('/v1/ratings', KEY_ALL))).ratings as {
        id: string;
        changes?: Changes;
      }[];
      return (
        id === undefined ? ratings.find((r) => r.changes !== undefined) : ratings.find((r) => r.id === id)
      )!.changes!;
    };

    it('"2025-07-01T00:00:00Z", as units\' opened_at, not "…:00.000Z"', async () => {
      const response = await service.app.request('/v1/rerate', {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ from: '2025-07-01T00:00:00Z', to: '2025-08-01T00:00:00+00:00' }),
      });
      expect(response.status).toBe(200);
      expect((await changesOf()).period).toEqual({
        from: '2025-07-01T00:00:00Z',
        to: '2025-08-01T00:00:00Z',
      });
      const units = (await json(await service.get('/v1/units', KEY_ALL))).units as { opened_at: string }[];
      expect(units[0]!.opened_at).toMatch(/:\d\dZ$/);
    });

    it('a re-rate stored with milliseconds (before this session) is given back without them', async () => {
      await storeOldRerate(service, 'rating_with_ms', {
        period: { from: '2025-07-01T00:00:00.000Z', to: '2025-07-01T12:30:00.250Z' },
        outside_period: null,
        changed: 0,
        unchanged: 3,
      });
      // Milliseconds that are not zero stay, as formatInstant writes them for units.
      expect((await changesOf('rating_with_ms')).period).toEqual({
        from: '2025-07-01T00:00:00Z',
        to: '2025-07-01T12:30:00.250Z',
      });
    });
  },
);

describe('operations: health, metrics, OpenAPI, rate limit, logs', () => {
  it('GET /healthz/live is 204 without touching the store, even when it is down', async () => {
    service = await createTestService();
    await service.store.close();
    const live = await service.get('/healthz/live');
    expect(live.status).toBe(204);
    expect(await live.text()).toBe('');
    service.store.close = async () => undefined;
  });

  it('GET /healthz is 200 with a reachable store and 503 without', async () => {
    service = await createTestService();
    const ok = await service.get('/healthz');
    expect(ok.status).toBe(200);
    expect(await json(ok)).toMatchObject({ status: 'ok' });
    await service.store.close();
    const down = await service.get('/healthz');
    expect(down.status).toBe(503);
    expect(await json(down)).toMatchObject({ error: { code: 'STORE_UNAVAILABLE' } });
    service.store.close = async () => undefined;
  });

  it('a store that fails during a webhook is 503 STORE_UNAVAILABLE (Meta retries), counted in metrics', async () => {
    service = await createTestService();
    await service.store.close();
    const response = await service.postWebhook(fixture('pywa/status_sent.json'));
    expect(response.status).toBe(503);
    expect(await json(response)).toMatchObject({ error: { code: 'STORE_UNAVAILABLE' } });
    expect(service.metrics.value('store_errors_total')).toBeGreaterThan(0);
    service.store.close = async () => undefined;
  });

  it('GET /metrics exposes the service counters in Prometheus text', async () => {
    service = await createTestService();
    await service.postWebhook(fixture('pywa/status_sent.json'));
    await service.postWebhook(fixture('pywa/status_sent.json'));
    await service.postWebhook(fixture('pywa/status_sent.json'), { signature: 'sha256=00' });
    const text = await (await service.get('/metrics')).text();
    expect(text).toContain('webhooks_received_total 1');
    expect(text).toContain('webhooks_duplicate_total 1');
    expect(text).toContain('webhooks_rejected_total{reason="bad_signature"} 1');
    expect(text).toContain('events_ingested_total{source="webhook"} 1');
    expect(text).toMatch(/rating_lag_seconds \d/);
    expect(text).toContain('store_errors_total 0');
    expect(text).toContain('rate_limited_total 0');
    expect(text).toContain(
      'http_request_duration_seconds_bucket{method="POST",route="/webhooks/whatsapp",status="200",le="+Inf"} 2',
    );
  });

  it('GET /openapi.json describes every route the app registers', async () => {
    service = await createTestService();
    const document = (await json(await service.get('/openapi.json'))) as typeof openApiDocument;
    expect(document.openapi).toBe('3.1.0');
    const paths = document.paths as Record<string, Record<string, unknown>>;
    const routes = service.app.routes.filter((route) => route.method !== 'ALL' && !route.path.includes('*'));
    expect(routes.length).toBeGreaterThan(10);
    for (const route of routes) {
      const path = openApiPath(route.path);
      expect(paths[path], route.path).toBeDefined();
      expect(paths[path]![route.method.toLowerCase()], `${route.method} ${route.path}`).toBeDefined();
    }
  });

  it('GET /openapi.json lists every error code the service answers with (RATING_BEHIND was missing)', async () => {
    service = await createTestService();
    const document = (await json(await service.get('/openapi.json'))) as {
      components: {
        schemas: { Error: { properties: { error: { properties: { code: { enum: string[] } } } } } };
      };
    };
    const codes = document.components.schemas.Error.properties.error.properties.code.enum;
    expect(codes).toEqual(expect.arrayContaining(['RATING_BEHIND', 'FORBIDDEN_WABA', 'STORE_UNAVAILABLE']));
    // The catalogue's, and the in-flight body budget's refusal (read-body.ts).
    expect([...codes].sort()).toEqual([...Object.keys(ERRORS), 'SERVER_BUSY'].sort());
  });

  it('limits /v1 requests per API key with 429 and Retry-After; signed webhooks still pass', async () => {
    service = await createTestService({ rateLimit: { perSecond: 1, burst: 2 } });
    expect((await service.get('/v1/totals', KEY_ALL)).status).toBe(200);
    expect((await service.get('/v1/totals', KEY_ALL)).status).toBe(200);
    const limited = await service.get('/v1/totals', KEY_ALL);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('Retry-After')).toBe('1');
    expect(await json(limited)).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    // Another client's key from the same address (a provider's backend, a shared proxy) has its own bucket.
    expect((await service.get('/v1/totals', KEY_W1)).status).toBe(200);
    // Meta's deliveries are never refused for the rate of other requests from the same address.
    expect((await service.postWebhook(fixture('pywa/status_sent.json'))).status).toBe(200);
    expect((await service.get('/healthz')).status).toBe(200);
    service.clock.nowMs += 1000;
    expect((await service.get('/v1/totals', KEY_ALL)).status).toBe(200);
  });

  it('limits requests without a valid key, and the webhook handshake, per client IP', async () => {
    service = await createTestService({ rateLimit: { perSecond: 1, burst: 2 } });
    // A wrong key and no key share the address's bucket: guessing keys is limited however many are tried.
    expect((await service.get('/v1/totals', 'not-a-key')).status).toBe(401);
    expect((await service.get('/v1/totals')).status).toBe(401);
    const handshake = `/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=7`;
    const limited = await service.get(handshake);
    expect(limited.status).toBe(429);
    expect(await json(limited)).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    expect((await service.get('/v1/totals', 'another-guess')).status).toBe(429);
    // A valid key is not held back by the failures of others at its address.
    expect((await service.get('/v1/totals', KEY_W2)).status).toBe(200);
    service.clock.nowMs += 1000;
    expect((await service.get(handshake)).status).toBe(200);
  });

  it('never rate-limits signed webhooks: a burst of real payloads far over the limit is all stored', async () => {
    service = await createTestService({ rateLimit: { perSecond: 1, burst: 2 } });
    const fixtures = webhookFixtures();
    for (const { name, body } of fixtures) {
      expect((await service.postWebhook(body)).status, name).toBe(200);
    }
    expect(service.metrics.value('webhooks_received_total')).toBe(fixtures.length);
    expect(service.metrics.value('rate_limited_total')).toBe(0);
  });

  it('answers 429 to a client whose webhook POSTs keep failing, yet stores every signed body from its address', async () => {
    service = await createTestService({ rateLimit: { perSecond: 1, burst: 2 } });
    const body = fixture('pywa/status_sent.json');
    const forged = () => service.postWebhook(body, { signature: 'sha256=' + 'ab'.repeat(32) });
    expect((await forged()).status).toBe(401);
    expect((await service.postWebhook(body, { signature: null })).status).toBe(401);
    // Two failures used the bucket: the next failure is 429 with Retry-After…
    const limited = await forged();
    expect(limited.status).toBe(429);
    expect(limited.headers.get('Retry-After')).toBe('1');
    expect(await json(limited)).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    expect(service.metrics.value('webhooks_rejected_total', { reason: 'rate_limited' })).toBe(1);
    expect(await service.store.listEvents()).toEqual([]);
    // …but Meta's signed delivery from the same address (a shared proxy) is stored at once.
    const signed = await service.postWebhook(body);
    expect(signed.status).toBe(200);
    expect(await json(signed)).toMatchObject({ duplicate: false, events: 1 });
    expect((await forged()).status).toBe(429);
    // Once the bucket has a token again, a failure is told what is wrong.
    service.clock.nowMs += 1000;
    expect((await forged()).status).toBe(401);
    // /v1 has its own bucket: the failed webhooks did not spend it.
    expect((await service.get('/v1/totals', KEY_ALL)).status).toBe(200);
  });

  it('counts an oversized webhook body as a failure', async () => {
    service = await createTestService({ rateLimit: { perSecond: 1, burst: 1 }, bodyLimitBytes: 64 });
    expect((await service.postWebhook('x'.repeat(65))).status).toBe(413);
    expect((await service.postWebhook('x'.repeat(65))).status).toBe(429);
    // A signed body within the limit still passes (here JSON that is not a webhook: kept, 400).
    expect((await service.postWebhook('{}')).status).toBe(400);
  });

  it('unknown paths are 404 NOT_FOUND in the error format', async () => {
    service = await createTestService();
    const response = await service.get('/v2/everything');
    expect(response.status).toBe(404);
    expect(await json(response)).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('stores the good items of a body with a bad one, answers how many were unreadable and logs where', async () => {
    service = await createTestService();
    const body = JSON.parse(fixture('pywa/status_sent.json').toString('utf8')) as {
      entry: { changes: { value: { statuses: Record<string, unknown>[] } }[] }[];
    };
    const statuses = body.entry[0]!.changes[0]!.value.statuses;
    statuses.push({ ...statuses[0]!, id: 'wamid.bad-time', timestamp: 'abc' });
    const answer = await json(await service.postWebhook(JSON.stringify(body)));
    expect(answer).toMatchObject({ received: true, events: 1, unreadable: 1 });
    const warning = service.logs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.msg === 'webhook items unreadable');
    expect(warning).toMatchObject({ items: 1 });
    expect(service.metrics.value('webhook_items_unreadable_total')).toBe(1);
    // The same body again is a duplicate: its items are not counted twice.
    await service.postWebhook(JSON.stringify(body));
    expect(service.metrics.value('webhook_items_unreadable_total')).toBe(1);
    expect(JSON.stringify(warning!.reasons)).toContain('statuses[1]');
    expect(JSON.stringify(warning!.reasons)).toContain('abc');
  });

  it('logs one JSON line per request, never a secret, key, verify token or body', async () => {
    service = await createTestService();
    const body = fixture('pywa/status_sent.json');
    await service.postWebhook(body);
    await service.postWebhook(body, { signature: 'sha256=' + 'ab'.repeat(32) });
    await service.postWebhook('{oops');
    await service.get(
      `/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=42`,
    );
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'wamid.log'), KEY_W1);
    await service.get('/v1/units', KEY_ALL);
    await service.get('/v1/units', 'some-wrong-key-123');
    const requests = service.logs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((l) => l.msg === 'request');
    expect(requests.length).toBe(7);
    // The API key by its name and a refusal's code, where known (never the key: checked below).
    const optional = ['apiKey', 'errorCode'];
    for (const line of requests)
      expect(
        Object.keys(line)
          .filter((key) => !optional.includes(key))
          .sort(),
      ).toEqual(['at', 'level', 'method', 'ms', 'msg', 'path', 'requestId', 'status']);
    const all = service.logs.join('\n');
    for (const secret of [
      SECRET,
      VERIFY_TOKEN,
      KEY_ALL,
      KEY_W1,
      'some-wrong-key-123',
      'wamid.HBgL',
      '{oops',
    ]) {
      expect(all).not.toContain(secret);
    }
  });
});

describe('idempotency keys', () => {
  it('a webhook status and the same status in an event line are one event', async () => {
    service = await createTestService();
    await service.postWebhook(fixture('pywa/status_read.json'));
    const line = JSON.parse(fixture('pywa/status_read.json').toString('utf8')) as object;
    const answer = await json(await service.postEvents([line]));
    expect(answer).toMatchObject({ accepted: 0, duplicates: 1 });
    const events = await service.store.listEvents();
    expect(new Set(events.map(eventKey)).size).toBe(events.length);
  });
});

describe('reads never show a stale bill while live rating keeps failing', () => {
  it('answers 503 RATING_BEHIND with Retry-After, then the current bill once rating catches up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-behind-'));
    const file = join(dir, 'behind.db');
    const store = await openSqliteStore(file);
    service = await createTestService({}, { store });
    await mountDashboardRoutes(service, { accountsPath: null, rateCardPaths: [] });
    const other = new Database(file);
    try {
      // Rating writes fail (as on a full disk); arrivals are still stored and acknowledged.
      other.exec(
        "CREATE TRIGGER no_ratings BEFORE INSERT ON ratings BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
      );
      const lines = conversationLines('W1', 'PN1', '919876543210', 'wamid.behind');
      expect(await json(await service.postEvents(lines))).toMatchObject({ accepted: lines.length });
      for (const path of ['/v1/totals', '/v1/units', '/v1/units.csv', '/v1/ratings']) {
        const response = await service.get(path, KEY_ALL);
        expect(response.status, path).toBe(503);
        expect(response.headers.get('Retry-After'), path).toBe('1');
        expect(await json(response), path).toMatchObject({ error: { code: 'RATING_BEHIND' } });
      }
      // A key whose portfolio is current still reads; so does a key for every WABA, of another portfolio.
      expect((await service.get('/v1/totals', KEY_W2)).status).toBe(200);
      for (const path of ['/v1/totals?waba=W2', '/v1/units?waba=W2', '/v1/dashboard/overview?waba=W2']) {
        expect((await service.get(path, KEY_ALL)).status, path).toBe(200);
      }
      expect((await service.get('/v1/totals?waba=W1', KEY_ALL)).status).toBe(503);
      // Readiness says the store refuses writes.
      expect((await service.get('/healthz')).status).toBe(503);

      other.exec('DROP TRIGGER no_ratings');
      await new Promise((resolve) => setTimeout(resolve, 1_300)); // the retry, every second
      const totals = await service.get('/v1/totals', KEY_ALL);
      expect(totals.status).toBe(200);
      expect(await json(totals)).toEqual({ totals: (await batchRating(lines)).totals });
      expect((await service.get('/healthz')).status).toBe(200);
    } finally {
      other.close();
      await service.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('explain over webhook-only traffic', () => {
  it('gives the timeline of a user whose messages arrived only as statuses (business from metadata)', async () => {
    service = await createTestService();
    const body = fixture('meta-docs/status_delivered_service_cbp_legacy.json');
    expect((await service.postWebhook(body)).status).toBe(200);
    const answer = await json(await service.get('/v1/explain?user=16505551234', KEY_ALL));
    expect((answer.timeline as unknown[]).length).toBeGreaterThan(0);
    expect(answer.timeline).toEqual(
      expect.arrayContaining([expect.objectContaining({ business: '106540352242922' })]),
    );
    // A key for another WABA still sees nothing of it.
    const other = await json(await service.get('/v1/explain?user=16505551234', KEY_W1));
    expect(other.timeline).toEqual([]);
  });
});

describe('explain by a business-scoped user id Meta joined to a number', () => {
  it("answers the number's story, naming the id, as wameter explain does (not an empty story)", async () => {
    service = await createTestService();
    const scopedId = 'US.13491208655302741918';
    // Meta's real payload gives the number and the id together; the business's answer is addressed to the id.
    expect((await service.postWebhook(fixture('pywa/incoming_text.json'))).status).toBe(200);
    const answer = JSON.parse(fixture('pywa/status_delivered.json').toString('utf8')) as {
      entry: { id: string; changes: { value: { contacts: object[]; statuses: object[] } }[] }[];
    };
    answer.entry[0]!.id = '1234567890987654321';
    const value = answer.entry[0]!.changes[0]!.value;
    value.statuses = [
      {
        id: 'wamid.answer',
        status: 'delivered',
        timestamp: '1697043300',
        recipient_id: '',
        recipient_user_id: scopedId,
        pricing: { billable: false, pricing_model: 'CBP', category: 'service' },
      },
    ];
    value.contacts = [{ profile: { name: 'Test Name' }, wa_id: '', user_id: scopedId }];
    expect((await service.postWebhook(JSON.stringify(answer))).status).toBe(200);
    // A message to the number that failed, in another WABA (another portfolio): the number's story has it.
    expect((await service.postWebhook(fixture('pywa/status_failed.json'))).status).toBe(200);
    const byNumber = await json(await service.get('/v1/explain?user=972987654321', KEY_ALL));
    expect((byNumber.failed as { id: string }[]).map((message) => message.id)).toEqual(['wamid.xyzxyz']);
    const byId = await json(await service.get(`/v1/explain?user=${scopedId}`, KEY_ALL));
    expect((byNumber.timeline as { message_id: string }[]).map((entry) => entry.message_id)).toEqual([
      'wamid.xyzxyz',
      'wamid.answer',
    ]);
    expect(byId).toEqual({ ...byNumber, scoped_user: scopedId });
    expect(Object.keys(byId).slice(0, 2)).toEqual(['user', 'scoped_user']);
  });
});

/**
 * What the `user` filter finds on each route that reads it, as unit ids (`/v1/units`, `/v1/units.csv`), unit
 * counts (`/v1/totals`, `/v1/analytics`, `/v1/dashboard/overview`'s totals), all in USD.
 */
async function unitsOfUser(user: string, key: string) {
  const query = `user=${encodeURIComponent(user)}`;
  const units = (await json(await service.get(`/v1/units?${query}`, key))).units as { id: string }[];
  const csv = await (await service.get(`/v1/units.csv?${query}`, key)).text();
  const count = (totals: unknown) => (totals as { USD?: { units: number } }).USD?.units ?? 0;
  // metric=pricing counts every unit (conversation_analytics, the conversations only).
  const analytics = (await json(
    await service.get(
      `/v1/analytics?start=0&end=1800000000&granularity=MONTHLY&metric=pricing&${query}`,
      key,
    ),
  )) as { data: { data_points: { volume: number }[] }[] };
  const overview = await json(await service.get(`/v1/dashboard/overview?${query}`, key));
  return {
    units: units.map((unit) => unit.id).sort(),
    csvRows: csv.trim().split('\r\n').length - 1,
    totals: count((await json(await service.get(`/v1/totals?${query}`, key))).totals),
    analytics: analytics.data.flatMap((d) => d.data_points).reduce((sum, p) => sum + p.volume, 0),
    overview: count(overview.totals),
  };
}

describe.each(['SQLite', 'PostgreSQL'] as const)(
  'the user filter by a business-scoped user id Meta joined to a number (%s)',
  (engine) => {
    const scopedId = 'US.13491208655302741918';
    /** The service on `engine`, with the dashboard's routes (its overview reads the filter too). */
    async function serviceWithDashboard(accountsPath?: string) {
      service = await serviceOnEngine(engine, 'h_scoped', accountsPath ? { accountsPath } : {});
      await mountDashboardRoutes(service, { accountsPath: accountsPath ?? null, rateCardPaths: [] });
    }

    it("finds the number's units, as explain tells them, and the units addressed to the id that nothing joined", async () => {
      await serviceWithDashboard();
      // Meta gives the number and the id together; the business's answer is addressed to the id.
      expect((await service.postWebhook(fixture('pywa/incoming_text.json'))).status).toBe(200);
      const answer = messagesWebhook('1234567890987654321', {
        messaging_product: 'whatsapp',
        metadata: { display_phone_number: '972123456789', phone_number_id: '1122334455667' },
        contacts: [{ profile: { name: 'Test Name' }, wa_id: '', user_id: scopedId }],
        statuses: [
          {
            id: 'wamid.answer',
            status: 'delivered',
            timestamp: '1697043300',
            recipient_id: '',
            recipient_user_id: scopedId,
            pricing: { billable: false, pricing_model: 'CBP', category: 'service' },
          },
        ],
      });
      expect((await service.postWebhook(JSON.stringify(answer))).status).toBe(200);
      // In another WABA (another portfolio), where nothing pairs the id, a message addressed to it.
      await service.postEvents(conversationLines('W2', 'PN2', scopedId, 'wamid.w2'));
      await service.rating.settled();
      const story = await json(await service.get(`/v1/explain?user=${scopedId}`, KEY_ALL));
      expect(story).toMatchObject({ user: '972987654321', scoped_user: scopedId });
      const joined = (story.units as { id: string }[]).map((unit) => unit.id);
      expect(joined.length).toBeGreaterThan(0);
      const unjoined = (
        (await json(await service.get('/v1/units?waba=W2', KEY_ALL))).units as { id: string; user: string }[]
      ).filter((unit) => unit.user === scopedId);
      expect(unjoined.length).toBeGreaterThan(0);
      const all = [...joined, ...unjoined.map((unit) => unit.id)].sort();
      const count = all.length;
      expect(await unitsOfUser(scopedId, KEY_ALL)).toEqual({
        units: all,
        csvRows: count,
        totals: count,
        analytics: count,
        overview: count,
      });
      // The number itself finds its own units only, as before.
      expect((await unitsOfUser('+972 98-765-4321', KEY_ALL)).units).toEqual([...joined].sort());
      // Other filters still narrow it.
      const w2 = (await json(await service.get(`/v1/units?user=${scopedId}&waba=W2`, KEY_ALL))).units;
      expect((w2 as { id: string }[]).map((unit) => unit.id).sort()).toEqual(
        unjoined.map((u) => u.id).sort(),
      );
    });

    it("tells a key nothing of an id that only another client's events pair with a number its own units have", async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wameter-accounts-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      await serviceWithDashboard(sharedPortfolioAccounts(dir));
      const number = '5511987650002';
      const shared = 'US.88888888888888888888';
      // Meta's own webhook of W2 (the portfolio mate) pairs the id with the number; both WABAs bill that number.
      const pairing = scopedIdPairingWebhook({
        waba: 'W2',
        business: 'PN2',
        number: number,
        scopedId: shared,
        id: 'wamid.w2.in',
        timestamp: '1752138000',
      });
      expect((await service.postWebhook(JSON.stringify(pairing))).status).toBe(200);
      await service.postEvents([
        ...conversationLines('W1', 'PN1', number, 'wamid.k1'),
        ...conversationLines('W2', 'PN2', number, 'wamid.k2'),
      ]);
      await service.rating.settled();
      const ofNumber = await unitsOfUser(number, KEY_W1);
      expect(ofNumber.units.length).toBeGreaterThan(0);
      // W1's key: what an id nobody uses finds (nothing), not W1's units of the number the mate paired it with.
      const nothing = { units: [], csvRows: 0, totals: 0, analytics: 0, overview: 0 };
      expect(await unitsOfUser(shared, KEY_W1)).toEqual(nothing);
      expect(await unitsOfUser('US.12345678901234567890', KEY_W1)).toEqual(nothing);
      // The mate's key finds its own units of the number by the id; a key for both WABAs finds both's.
      const mates = await unitsOfUser(shared, KEY_W2);
      expect(mates.units).toEqual((await unitsOfUser(number, KEY_W2)).units);
      expect(mates.units.length).toBeGreaterThan(0);
      expect((await unitsOfUser(shared, KEY_ALL)).units).toEqual((await unitsOfUser(number, KEY_ALL)).units);
    });
  },
);

describe('unknown query parameters are refused, never ignored', () => {
  beforeEach(async () => {
    service = await createTestService();
  });

  it.each([
    ['/v1/totals?country=IN', 'country'],
    ['/v1/totals?catgory=marketing', 'catgory'],
    ['/v1/units.csv?wabas=999', 'wabas'],
    ['/v1/units?waba=W1&limt=5', 'limt'],
    ['/v1/ratings?offset=3', 'offset'],
  ])('%s → 400 naming %s and listing what the route takes', async (path, name) => {
    const response = await service.get(path, KEY_ALL);
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('BAD_QUERY');
    expect(error.message).toContain(`"${name}"`);
    expect(error.message).toMatch(/accepts|takes/);
  });

  it.each(['waba', 'cursor', 'user', 'from', 'limit'])(
    'an empty ?%s= is refused (400), not taken as absent: the page would widen to every WABA of the key',
    async (name) => {
      const response = await service.get(`/v1/units?${name}=%20`, KEY_ALL);
      expect(response.status).toBe(400);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      expect(error).toEqual({
        code: 'BAD_QUERY',
        message: `A query parameter or request field is invalid. Query parameter "${name}" is empty: give it a value, or leave it out.`,
      });
    },
  );

  it('accepts every query parameter the OpenAPI document lists for each route (given empty: refused), and nothing else', async () => {
    const paths = openApiDocument.paths as unknown as Record<
      string,
      Record<string, { parameters?: readonly { name: string; in: string }[] }>
    >;
    const routes = service.app.routes.filter(
      (route) => route.method !== 'ALL' && !route.path.includes('*') && !route.path.startsWith('/webhooks'),
    );
    expect(routes.length).toBeGreaterThan(10);
    for (const route of routes) {
      const operation = paths[openApiPath(route.path)]?.[route.method.toLowerCase()];
      expect(operation, `${route.method} ${route.path}`).toBeDefined();
      const names = (operation!.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
      const path = route.path.replace(':id', 'no-such-card');
      for (const name of names) {
        const response = await service.app.request(`${path}?${encodeURIComponent(name)}=`, {
          method: route.method,
          headers: { Authorization: `Bearer ${KEY_ALL}` },
        });
        // Known, so not "unknown"; given empty, refused rather than taken as absent (a filter left out).
        const text = await response.text();
        expect(text, `${route.method} ${route.path} ?${name}`).not.toMatch(/Unknown query parameter/);
        expect(response.status, `${route.method} ${route.path} ?${name}`).toBe(400);
        expect(text).toContain(`Query parameter \\"${name}\\" is empty: give it a value, or leave it out.`);
      }
      const refused = await service.app.request(`${path}?not_a_parameter=1`, {
        method: route.method,
        headers: { Authorization: `Bearer ${KEY_ALL}` },
      });
      expect(refused.status, `${route.method} ${route.path}`).toBe(400);
      const { error } = (await refused.json()) as { error: { message: string } };
      expect(error.message).toMatch(/Unknown query parameter "not_a_parameter"/);
    }
  });
});

/** A route's path as OpenAPI writes it: `/v1/ratings/{id}/changes` for Hono's `/v1/ratings/:id/changes`. */
function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}
