// A store as the version before `business_numbers` left it (SQLite migration 16, PostgreSQL migration 18):
// webhook bodies and their events stored, a bill rated; and what the upgrade must leave: the display numbers
// of the bodies whose number a trusted writer tied to the entry's WABA, and the bill answered as before.
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { eventKey, type CoreEvent } from '../../src/core/events.js';
import type { RawWebhookInput, Store } from '../../src/store/store.js';
import { billableUnit } from './units.js';

const T0 = Date.parse('2025-10-15T10:00:00Z');

function body(entries: unknown, parseError: string | null = null, text?: string): RawWebhookInput {
  const bytes = new TextEncoder().encode(
    text ?? JSON.stringify({ object: 'whatsapp_business_account', entry: entries }),
  );
  return {
    receivedAtMs: T0,
    body: bytes,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    parseError,
  };
}

function change(business: unknown, display: unknown): unknown {
  return {
    field: 'messages',
    value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: display, phone_number_id: business },
    },
  };
}

const inbound = (id: string, business: string, waba = 'W1'): CoreEvent => ({
  kind: 'inbound',
  atMs: T0,
  waba,
  business,
  user: '919876543210',
  id,
  hasReferral: false,
});

/** Stores what an older version would have: bodies, events (webhook and API) and a rating. */
export async function seedBeforeBusinessNumbers(store: Store): Promise<void> {
  const webhook = (event: CoreEvent) => ({
    key: eventKey(event),
    event,
    receivedAtMs: T0,
    source: 'webhook',
  });
  // PN1's number, written with signs, then again (the later body wins); PN2 tied in W1 only by an API key
  // limited to some WABAs (no tie): not kept; PN3 named under W2, which ties it nowhere: not kept.
  await store.ingestWebhook(body([{ id: 'W1', changes: [change('PN1', '+1 555-000-1111')] }]), [
    webhook(inbound('wamid.a', 'PN1')),
  ]);
  await store.ingestWebhook(
    body([{ id: 'W1', changes: [change('PN1', '15550002222'), change('PN2', '15550003333')] }]),
    [],
  );
  await store.ingestEvents([
    {
      key: eventKey(inbound('wamid.b', 'PN2')),
      event: inbound('wamid.b', 'PN2'),
      receivedAtMs: T0,
      source: 'api:k',
      isBusinessTied: false,
    },
  ]);
  await store.ingestWebhook(body([{ id: 'W2', changes: [change('PN3', '15550004444')] }]), []);
  // Bodies of other shapes give nothing, and stop nothing: an entry that is a string, a change that is a
  // number, a display number of letters, a body kept unreadable, a body of JSON text jsonb refuses.
  await store.ingestWebhook(body(['W1', { id: 'W1', changes: [7, change('PN1', 'call us')] }]), []);
  await store.ingestWebhook(body(null, 'Unexpected token', '{"entry": [ not json'), []);
  await store.ingestWebhook(
    body(
      null,
      null,
      '{"entry":[{"id":"W1","changes":[{"value":{"metadata":{"phone_number_id":"PN1","display_phone_number":"1\\u0000"}}}]}]}',
    ),
    [],
  );
  await store.replaceRating(
    { id: 'r1', ratedAtMs: T0, reason: 'live', wabas: ['W1'], asOfRules: null, rateCards: [], totals: {} },
    { units: [billableUnit({ id: 'u1', openedAtMs: T0 })], pending: [], findings: [] },
  );
}

/** After the upgrade: PN1's last display number, digits only; nothing else; the bill as before. */
export async function expectBusinessNumbersFilled(store: Store): Promise<void> {
  expect(await store.businessNumbers({})).toEqual([
    { waba: 'W1', business: 'PN1', displayNumber: '15550002222' },
  ]);
  const points = await store.analytics({
    granularity: 'DAILY',
    dimensions: ['business'],
    businesses: ['PN1'],
  });
  expect(points.map((point) => [point.units, point.dimensions])).toEqual([[1, { business: 'PN1' }]]);
}
