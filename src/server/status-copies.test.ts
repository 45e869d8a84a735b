// Meta delivers one status (one message id, one status word) more than once, and the copies may name the
// recipient in different words: the business-scoped id alone in one, the number (with `contacts[].user_id`)
// in the other, as Meta's own documentation shows for one delivered status. A store keeps one row per status
// and merges its copies into it; what the service says of them must be what `wameter rate` says reading the
// same bodies, which reads every copy. Real webhook bodies (test/fixtures/webhooks), on SQLite and PostgreSQL.

import { afterEach, describe, expect, it } from 'vitest';
import { ratingToJson } from '../core/report.js';
import {
  fixture,
  KEY_ALL,
  mountDashboardRoutes,
  rateLinesAsBatch,
  serviceOn,
  type TestService,
} from '../../test/server-kit.js';

/** Meta's delivered status naming the number, with `contacts[]` pairing it with the business-scoped id. */
const WITH_NUMBER = fixture('meta-docs/status_delivered_marketing_pmp_bsuid_contacts.json');
/** The same status (same id, same word) naming the business-scoped id alone (`recipient_id` empty). */
const WITH_SCOPED_ID = fixture('meta-docs/status_delivered_marketing_pmp_bsuid_only_empty_recipient.json');

/** `body` (a fixture) with its status's `recipient_id` set to `recipient`. */
function withRecipient(body: Buffer, recipient: string): Buffer {
  const value = JSON.parse(body.toString('utf8')) as {
    entry: { changes: { value: { statuses: { recipient_id: string }[] } }[] }[];
  };
  value.entry[0]!.changes[0]!.value.statuses[0]!.recipient_id = recipient;
  return Buffer.from(JSON.stringify(value));
}

let service: TestService;
afterEach(async () => {
  await service?.close();
});

/** The service on `engine` with the dashboard's routes (GET /v1/findings) mounted, as main mounts them. */
async function serviceWithFindings(engine: 'SQLite' | 'PostgreSQL'): Promise<TestService> {
  const created = await serviceOn(engine, 'wameter_status_copies');
  await mountDashboardRoutes(created, { accountsPath: null, rateCardPaths: [] });
  return created;
}

async function json(response: Response): Promise<Record<string, unknown>> {
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

/** The service's findings and units after `bodies` were posted in this order. */
async function postAll(bodies: readonly Buffer[]) {
  for (const body of bodies) expect((await service.postWebhook(body)).status).toBe(200);
  const findings = (await json(await service.get('/v1/findings', KEY_ALL))).findings as object[];
  const units = (await json(await service.get('/v1/units', KEY_ALL))).units as object[];
  return { findings, units };
}

/** What `wameter rate` says of the same bodies. */
async function batchOf(bodies: readonly Buffer[]) {
  const output = ratingToJson(
    await rateLinesAsBatch(
      null,
      bodies.map((body) => JSON.parse(body.toString('utf8')) as object),
    ),
    () => 'UTC', // no accounts file: every WABA on UTC, as the service here
  );
  return { findings: output.findings, units: output.units };
}

describe.each(['SQLite', 'PostgreSQL'] as const)(
  'copies of one status naming the recipient otherwise (%s)',
  (engine) => {
    const cases: [string, Buffer[]][] = [
      [
        "the number with its business-scoped id, then the id alone (Meta's documentation)",
        [WITH_NUMBER, WITH_SCOPED_ID],
      ],
      ['the id alone, then the number with its business-scoped id', [WITH_SCOPED_ID, WITH_NUMBER]],
      // The same user's Brazilian mobile without its ninth digit, as Meta's recipient_id may give it.
      [
        'one Brazilian mobile with and without its ninth digit',
        [withRecipient(WITH_NUMBER, '5511987654321'), withRecipient(WITH_NUMBER, '551187654321')],
      ],
      // Numbers of two countries: `wameter rate` says RECIPIENT_DISAGREES, naming both.
      [
        'numbers of two countries',
        [withRecipient(WITH_NUMBER, '919876543210'), withRecipient(WITH_NUMBER, '16505551234')],
      ],
    ];
    it.each(cases)('%s: the same units and findings as `wameter rate`', async (_name, bodies) => {
      service = await serviceWithFindings(engine);
      const live = await postAll(bodies);
      const batch = await batchOf(bodies);
      expect(live.units).toEqual(batch.units);
      expect(live.findings).toEqual(batch.findings);
    });

    it("says no COPIES_DISAGREE of Meta's two copies naming one user by number and by id", async () => {
      service = await serviceWithFindings(engine);
      const live = await postAll([WITH_NUMBER, WITH_SCOPED_ID]);
      expect(live.findings.map((finding) => (finding as { code: string }).code)).not.toContain(
        'COPIES_DISAGREE',
      );
    });
  },
);

/** Meta's inbound message from a user known by the business-scoped id alone (`from` empty). */
const FROM_SCOPED_ID = fixture('meta-docs/incoming_text_bsuid.json');
/**
 * The same message (same id) naming the number, with `contacts[].user_id` pairing it with that id, as Meta
 * writes a contact whose number it shares (Meta's incoming_text_basic.json, its contact given the id).
 */
function fromNumberWithScopedId(): Buffer {
  const value = JSON.parse(fixture('meta-docs/incoming_text_basic.json').toString('utf8')) as {
    entry: {
      changes: { value: { contacts: { user_id?: string }[]; messages: { timestamp: string }[] } }[];
    }[];
  };
  const change = value.entry[0]!.changes[0]!.value;
  change.contacts[0]!.user_id = 'user.93737...';
  change.messages[0]!.timestamp = '1749416383';
  return Buffer.from(JSON.stringify(value));
}

describe.each(['SQLite', 'PostgreSQL'] as const)(
  'copies of one inbound message naming a business-scoped id and its number (%s)',
  (engine) => {
    it.each([
      ['the number first', [fromNumberWithScopedId(), FROM_SCOPED_ID]],
      ['the id first', [FROM_SCOPED_ID, fromNumberWithScopedId()]],
    ])('%s: the same units and findings as `wameter rate`, no COPIES_DISAGREE', async (_name, bodies) => {
      service = await serviceWithFindings(engine);
      const live = await postAll(bodies);
      const batch = await batchOf(bodies);
      expect(live.units).toEqual(batch.units);
      expect(live.findings).toEqual(batch.findings);
      expect(live.findings.map((finding) => (finding as { code: string }).code)).not.toContain(
        'COPIES_DISAGREE',
      );
    });
  },
);
