import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventKey, type CoreEvent, type StatusEvent } from '../core/events.js';
import {
  holdsMoreValuesThan,
  IGNORED,
  isNestedDeeperThan,
  isTextHoldingMoreValuesThan,
  isTextNestedDeeperThan,
  textOverLimits,
  MAX_WEBHOOK_VALUES,
  notAWebhookBody,
  parseContractLine,
  parseEventValue,
  type ParsedItem,
} from './parse-event.js';

const FIXTURES = new URL('../../test/fixtures/webhooks/', import.meta.url);

function fixture(path: string): unknown {
  return JSON.parse(readFileSync(new URL(path, FIXTURES), 'utf8'));
}

function parsed(value: unknown): ParsedItem {
  const result = parseEventValue(value);
  if (!result.ok) throw new Error(`expected events, got ${result.error.message}`);
  return result.value;
}

function events(value: unknown): CoreEvent[] {
  const item = parsed(value);
  expect(item.rejected).toEqual([]);
  return item.events;
}

function errorOf(value: unknown): string {
  const result = parseEventValue(value);
  if (result.ok) throw new Error(`expected an error, got ${JSON.stringify(result.value)}`);
  expect(result.error.code).toBe('BAD_EVENT');
  return result.error.message;
}

const AT = '2024-03-01T10:00:00Z';
const AT_MS = Date.parse(AT);
const outbound = {
  kind: 'outbound',
  at: AT,
  waba: 'W1',
  business: 'PN1',
  user: '919876543210',
  id: 'wamid.o1',
};

describe('contract event lines', () => {
  it('an inbound line with a referral object came from an ad', () => {
    expect(
      events({
        kind: 'inbound',
        at: AT,
        waba: 'W1',
        business: 'PN1',
        user: 'U1',
        id: 'in1',
        referral: { source_type: 'ad' },
      }),
    ).toEqual([
      { kind: 'inbound', atMs: AT_MS, waba: 'W1', business: 'PN1', user: 'U1', id: 'in1', hasReferral: true },
    ]);
  });

  it('an inbound line without referral (or with null) has no referral', () => {
    const line = { kind: 'inbound', at: AT, waba: 'W1', business: 'PN1', user: 'U1', id: 'in1' };
    expect(events(line)[0]).toMatchObject({ hasReferral: false });
    expect(events({ ...line, referral: null })[0]).toMatchObject({ hasReferral: false });
  });

  it('an outbound line keeps its template category, name, delivery and failure', () => {
    expect(
      events({ ...outbound, template: 'utility', template_name: 'order_update', delivered_at: 1709287503 }),
    ).toEqual([
      {
        kind: 'outbound',
        atMs: AT_MS,
        waba: 'W1',
        business: 'PN1',
        user: '919876543210',
        id: 'wamid.o1',
        template: 'utility',
        templateName: 'order_update',
        deliveredAtMs: 1709287503000,
      },
    ]);
    expect(events({ ...outbound, template: 'marketing', failed: true })[0]).toMatchObject({
      template: 'marketing',
      isFailed: true,
    });
    expect(events({ ...outbound, failed: false })[0]).not.toHaveProperty('isFailed');
  });

  it('an outbound line with template null or absent is a non-template message', () => {
    expect(events({ ...outbound, template: null })[0]).toMatchObject({ template: null });
    expect(events(outbound)[0]).toMatchObject({ template: null });
  });

  it('"at" may be ISO-8601 with an offset, Unix seconds, or Unix seconds as a string', () => {
    expect(events({ ...outbound, at: '2024-03-01T15:30:00+05:30' })[0]!.atMs).toBe(AT_MS);
    expect(events({ ...outbound, at: AT_MS / 1000 })[0]!.atMs).toBe(AT_MS);
    expect(events({ ...outbound, at: String(AT_MS / 1000) })[0]!.atMs).toBe(AT_MS);
  });

  it('a status line keeps Meta evidence verbatim', () => {
    const pricing = {
      billable: true,
      pricing_model: 'PMP',
      category: 'marketing',
      type: 'regular',
      extra: 1,
    };
    const conversation = { id: 'c1', origin: { type: 'marketing' } };
    const [event] = events({
      kind: 'status',
      at: AT,
      id: 'wamid.o1',
      status: 'delivered',
      pricing,
      conversation,
    });
    expect(event).toEqual({
      kind: 'status',
      atMs: AT_MS,
      id: 'wamid.o1',
      status: 'delivered',
      pricing,
      conversation,
    });
  });

  it('a status line takes each of the four words of contract §1', () => {
    for (const word of ['sent', 'delivered', 'read', 'failed']) {
      expect(events({ kind: 'status', at: AT, id: 'o1', status: word })[0]).toMatchObject({ status: word });
    }
  });

  it('"at" and "delivered_at" take the ends of the accepted range', () => {
    expect(events({ ...outbound, at: 0, delivered_at: '1970-01-01T00:00:00Z' })[0]).toMatchObject({
      atMs: 0,
      deliveredAtMs: 0,
    });
    expect(events({ ...outbound, at: 99_999_999_999 })[0]!.atMs).toBe(99_999_999_999_000);
    expect(events({ ...outbound, at: '9999-12-31T23:59:59Z' })[0]!.atMs).toBe(
      Date.parse('9999-12-31T23:59:59Z'),
    );
  });

  it('a status line may name waba, business and user', () => {
    expect(
      events({
        kind: 'status',
        at: AT,
        id: 'o1',
        status: 'delivered',
        waba: 'W1',
        business: 'PN1',
        user: 'U1',
      })[0],
    ).toEqual({
      kind: 'status',
      atMs: AT_MS,
      id: 'o1',
      status: 'delivered',
      waba: 'W1',
      business: 'PN1',
      user: 'U1',
    });
  });
});

describe('bad contract lines are errors that name the field', () => {
  it('an outbound line without user', () => {
    const { user: _user, ...line } = outbound;
    expect(errorOf(line)).toBe('outbound line needs "user" (the recipient\'s wa_id)');
  });

  it('every required field of each kind is named when missing', () => {
    const inbound = { kind: 'inbound', at: AT, waba: 'W1', business: 'PN1', user: 'U1', id: 'in1' };
    for (const field of ['at', 'waba', 'business', 'user', 'id']) {
      const { [field]: _dropped, ...line } = inbound as Record<string, unknown>;
      expect(errorOf(line)).toContain(`inbound line needs "${field}"`);
      const { [field]: _gone, ...out } = outbound as Record<string, unknown>;
      expect(errorOf(out)).toContain(`outbound line needs "${field}"`);
    }
    expect(errorOf({ kind: 'status', at: AT, status: 'sent' })).toContain('status line needs "id"');
    expect(errorOf({ kind: 'status', at: AT, id: 'o1' })).toContain('status line needs "status"');
    expect(errorOf({ kind: 'status', id: 'o1', status: 'sent' })).toContain('status line needs "at"');
  });

  it('an unknown template category lists the allowed ones', () => {
    expect(errorOf({ ...outbound, template: 'service' })).toBe(
      'outbound line "template" must be marketing, utility, authentication, or null for a non-template message; got "service"',
    );
  });

  it('an id written as a JSON number is refused with the reason', () => {
    expect(errorOf({ ...outbound, user: 919876543210 })).toContain('write ids as JSON strings');
  });

  it('a bad instant quotes the value and the accepted formats', () => {
    expect(errorOf({ ...outbound, at: '01/03/2024' })).toContain(
      'outbound line "at": "01/03/2024" is not an instant',
    );
    expect(errorOf({ ...outbound, at: '2024-03-01T10:00:00' })).toContain('with an offset');
    expect(errorOf({ ...outbound, delivered_at: 'soon' })).toContain('outbound line "delivered_at"');
    expect(errorOf({ ...outbound, at: -5 })).toContain('outbound line "at": -5 is outside the range');
  });

  it('an instant outside 1970..9999 is refused with the accepted range, in every field of every kind', () => {
    const range =
      'is outside the range of instants wameter reads (accepted: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, or Unix seconds from 0 to 99999999999)';
    // JSON.parse, as the reader does: 1e400 is Infinity.
    const huge = JSON.parse('1e400') as number;
    for (const at of [1e20, huge, -1, '100000000000000000000', '1969-12-31T23:59:59Z']) {
      expect(errorOf({ ...outbound, at }), String(at)).toContain(`outbound line "at": `);
      expect(errorOf({ ...outbound, at }), String(at)).toContain(range);
      expect(errorOf({ ...outbound, delivered_at: at }), String(at)).toContain(
        `outbound line "delivered_at": `,
      );
      expect(errorOf({ kind: 'status', at, id: 'o1', status: 'sent' })).toContain(`status line "at": `);
      expect(errorOf({ kind: 'inbound', at, waba: 'W', business: 'B', user: 'U', id: 'i' })).toContain(range);
    }
    expect(errorOf({ ...outbound, at: 1e20 })).toBe(`outbound line "at": 100000000000000000000 ${range}`);
    expect(errorOf({ ...outbound, at: huge })).toBe(`outbound line "at": Infinity ${range}`);
    expect(errorOf({ ...outbound, at: '+275760-09-13T00:00:00Z' })).toContain('is not an instant');
  });

  it('a numeric "at" in milliseconds is refused with the hint, not read as the year 56135', () => {
    expect(errorOf({ kind: 'status', at: 1709287560000, id: 'o1', status: 'delivered' })).toBe(
      'status line "at": 1709287560000 looks like milliseconds; timestamps here take Unix seconds: write 1709287560 (2024-03-01T10:06:00Z) or an ISO-8601 instant',
    );
    expect(errorOf({ ...outbound, at: '1709287560000' })).toContain('looks like milliseconds');
    expect(errorOf({ ...outbound, delivered_at: 1709287563000 })).toContain(
      'outbound line "delivered_at": 1709287563000 looks like milliseconds',
    );
  });

  it('a status word outside sent, delivered, read and failed is refused, naming the allowed words', () => {
    const statusLine = (status: unknown) => ({ kind: 'status', at: AT, id: 'o1', status });
    expect(errorOf(statusLine('deliverd'))).toBe(
      'status line "status" must be sent, delivered, read or failed (in lower case), not "deliverd"; did you mean "delivered"?',
    );
    expect(errorOf(statusLine('DELIVERED'))).toBe(
      'status line "status" must be sent, delivered, read or failed (in lower case), not "DELIVERED"; write it in lower case: "delivered"',
    );
    expect(errorOf(statusLine('Read'))).toContain('write it in lower case: "read"');
    expect(errorOf(statusLine('played'))).toBe(
      'status line "status" must be sent, delivered, read or failed (in lower case), not "played"',
    );
    expect(errorOf(statusLine('delivered '))).toContain('did you mean "delivered"?');
    expect(errorOf(statusLine(''))).toContain(
      '"status" must be a non-empty string (sent, delivered, read or failed)',
    );
    expect(errorOf(statusLine(2))).toContain('"status" must be a non-empty string');
    expect(parseContractLine(statusLine('deliverd'))).toEqual({
      code: 'BAD_EVENT',
      message: errorOf(statusLine('deliverd')),
    });
  });

  it('wrongly typed optional fields', () => {
    expect(errorOf({ ...outbound, failed: 'yes' })).toContain('"failed" must be true or false');
    expect(errorOf({ ...outbound, template_name: 7 })).toContain(
      '"template_name" must be a non-empty string',
    );
    expect(errorOf({ kind: 'status', at: AT, id: 'o1', status: 'sent', pricing: 'PMP' })).toContain(
      '"pricing" must be an object',
    );
    expect(errorOf({ kind: 'status', at: AT, id: 'o1', status: 'sent', waba: '' })).toContain('"waba"');
    expect(
      errorOf({ kind: 'inbound', at: AT, waba: 'W', business: 'B', user: 'U', id: 'i', referral: 'ad' }),
    ).toContain('"referral" must be an object');
  });

  it('an unknown kind lists the known ones', () => {
    expect(errorOf({ kind: 'message', at: AT })).toBe(
      '"kind" must be "inbound", "outbound" or "status", not "message"',
    );
  });

  it('values that are neither an event line nor a webhook body', () => {
    expect(errorOf(null)).toContain('not null');
    expect(errorOf(42)).toContain('not 42');
    expect(errorOf('text')).toContain('not "text"');
    expect(errorOf([])).toContain('not an array');
    expect(errorOf({ hello: 'world' })).toContain('not an event line');
    expect(errorOf(fixture('meta-docs/analytics_conversation_half_hour_by_category.json'))).toContain(
      'a Meta analytics export',
    );
    expect(errorOf(fixture('meta-docs-snippets/pricing_pmp_authentication_international.json'))).toContain(
      'a fragment of a webhook',
    );
  });

  it("the reader's fast path for contract lines answers as parseEventValue does, and leaves the rest to it", () => {
    const line = { kind: 'inbound', at: AT, waba: 'W', business: 'B', user: 'U', id: 'i1' };
    expect([parseContractLine(line)]).toEqual(events(line));
    expect(parseContractLine({ kind: 'message', at: AT })).toEqual({
      code: 'BAD_EVENT',
      message: errorOf({ kind: 'message', at: AT }),
    });
    expect(parseContractLine({ kind: 'outbound', at: AT })).toEqual({
      code: 'BAD_EVENT',
      message: errorOf({ kind: 'outbound', at: AT }),
    });
    for (const other of [
      null,
      42,
      [],
      { hello: 'world' },
      { object: 'whatsapp_business_account', entry: [] },
    ]) {
      expect(parseContractLine(other)).toBeUndefined();
    }
  });

  it('a body of another Meta product, or without entries', () => {
    expect(errorOf({ object: 'page', entry: [] })).toContain('"object": "page"');
    expect(errorOf({ object: 'whatsapp_business_account' })).toBe(
      'webhook body needs "entry" (an array of entries)',
    );
  });
});

describe('an accounts file read as traffic (`wameter rate examples/month`)', () => {
  it('is named as one, with the flag it goes to', () => {
    const result = parseEventValue({ accounts: [{ waba: 'W1', time_zone: 'Asia/Kolkata' }] });
    expect(!result.ok && result.error.message).toMatch(
      /^an accounts file \(give it with `--accounts`\), not an event line/,
    );
  });
});

describe("what Meta's webhook route says of a JSON value that is no webhook body", () => {
  /** The route's words for `value`, which parseEventValue must refuse. */
  const said = (value: unknown): string => {
    const result = parseEventValue(value);
    if (result.ok) throw new Error('expected the value to be refused');
    return notAWebhookBody(value, result.error);
  };

  it.each<[string, unknown, string]>([
    [
      'an array (of bodies)',
      [{ object: 'whatsapp_business_account', entry: [] }],
      'It is an array, where Meta posts one object, {"object":"whatsapp_business_account","entry":[…]}.',
    ],
    [
      'a number',
      42,
      'It is 42, where Meta posts one object, {"object":"whatsapp_business_account","entry":[…]}.',
    ],
    [
      'an analytics export',
      fixture('meta-docs/analytics_conversation_half_hour_by_category.json'),
      'It is a Meta analytics export: use it with `wameter reconcile --analytics`.',
    ],
    [
      'an accounts file',
      { accounts: [{ waba: 'W1', time_zone: 'Asia/Kolkata' }] },
      "It is a wameter accounts file: the service reads it from WAMETER_ACCOUNTS or the configuration's accounts.",
    ],
    [
      'a fragment of a body',
      fixture('meta-docs-snippets/pricing_pmp_authentication_international.json'),
      'It is a fragment of a webhook body: post the whole body, {"object":"whatsapp_business_account","entry":[…]}.',
    ],
    [
      'an event line',
      { kind: 'status', id: 'x' },
      'It is an event line ({"kind":…}), not a webhook body: event lines go to POST /v1/events.',
    ],
    [
      'an object of something else',
      { hello: 'world' },
      'It is an object with neither "object" nor "entry", where Meta posts {"object":"whatsapp_business_account","entry":[…]}.',
    ],
    [
      'a body of another Meta product',
      { object: 'page', entry: [] },
      'Its "object" is "page": wameter reads WhatsApp Business Account webhooks ("object":"whatsapp_business_account") only.',
    ],
    [
      'a body without "object"',
      { entry: [] },
      'It has no "object" (Meta sends "object":"whatsapp_business_account" on every body): post the body exactly as Meta posted it.',
    ],
    [
      'bodies wrapped in an "entry"',
      { entry: [{ object: 'whatsapp_business_account', entry: [] }] },
      'It has no "object", and its "entry" holds whole webhook bodies: post each body as Meta posted it.',
    ],
    [
      'a body without entries',
      { object: 'whatsapp_business_account' },
      'It has no "entry" (the array of entries Meta batches in a body).',
    ],
  ])('%s', (_what, value, expected) => {
    expect(said(value)).toBe(expected);
  });

  it('each is sentences about webhook bodies: a capital first, a full stop last, no event line offered', () => {
    for (const value of [
      [],
      null,
      'text',
      { hello: 'world' },
      { object: 5 },
      { object: 'whatsapp_business_account', entry: 1 },
    ]) {
      const words = said(value);
      expect(words, words).toMatch(/^[A-Z].*\.$/);
      expect(words, words).not.toMatch(/expected an event line|not an event line/);
    }
  });
});

describe('values nested thousands deep', () => {
  const deep = JSON.parse(`${'['.repeat(5000)}${']'.repeat(5000)}`) as unknown;

  it('are refused as no event, never a stack overflow', () => {
    const parsed = parseEventValue({ kind: 'status', at: deep, id: 'x', status: 'delivered', waba: 'W1' });
    expect(parsed).toMatchObject({ ok: false, error: { code: 'BAD_EVENT' } });
    if (!parsed.ok) expect(parsed.error.message).toContain('nested too deep to be an event');
  });

  it('are measured without recursion, at any depth', () => {
    expect(isNestedDeeperThan(deep)).toBe(true);
    expect(isNestedDeeperThan({ a: [{ b: { c: [1, 2] } }] }, 5)).toBe(false);
    expect(isNestedDeeperThan({ a: [{ b: { c: [1, 2] } }] }, 4)).toBe(true);
    expect(isNestedDeeperThan('text')).toBe(false);
  });
});

describe('Meta webhook bodies', () => {
  it('a sent status keeps pricing and conversation as evidence', () => {
    expect(events(fixture('meta-docs/status_sent_marketing_pmp_with_conversation.json'))).toEqual([
      {
        kind: 'status',
        atMs: 1750030073000,
        id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=',
        status: 'sent',
        waba: '102290129340398',
        business: '106540352242922',
        user: '16505551234',
        conversation: {
          id: '72b14d6bd5407799e66f64d1b338e567',
          expiration_timestamp: '1750116480',
          origin: { type: 'marketing' },
        },
        pricing: { billable: true, pricing_model: 'PMP', type: 'regular', category: 'marketing' },
      },
    ]);
  });

  it('an inbound message from a click-to-WhatsApp ad has a referral', () => {
    expect(events(fixture('meta-docs/incoming_text_ctwa_referral.json'))).toEqual([
      {
        kind: 'inbound',
        atMs: 1750275992000,
        waba: '102290129340398',
        business: '106540352242922',
        user: '16505551234',
        id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUQ0N0VFMDA2MTQ0RkJFNkNDNAA=',
        hasReferral: true,
      },
    ]);
    expect(events(fixture('pywa/incoming_text_ctwa_referral.json'))[0]).toMatchObject({ hasReferral: true });
    expect(events(fixture('meta-docs/incoming_text_basic.json'))[0]).toMatchObject({ hasReferral: false });
  });

  it('a status with an empty recipient_id takes the business-scoped user id and the contact country', () => {
    expect(
      events(fixture('meta-docs/status_delivered_marketing_pmp_bsuid_only_empty_recipient.json')),
    ).toEqual([
      {
        kind: 'status',
        atMs: 1750030073000,
        id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=',
        status: 'delivered',
        waba: '102290129340398',
        business: '106540352242922',
        user: 'user.9373795779eb6441c8adb2eaee5b848e7dd174ddd302d7db62142f4722d574b6',
        userCountryHint: 'US',
        pricing: { billable: true, pricing_model: 'PMP', type: 'regular', category: 'marketing' },
      },
    ]);
    expect(events(fixture('meta-docs/status_delivered_marketing_pmp_bsuid_contacts.json'))[0]).toMatchObject({
      user: '16505551234',
      userCountryHint: 'US',
      // the contact's business-scoped id, so that a later body giving only that id joins this number
      scopedUserId: 'user.9373795779eb6441c8adb2eaee5b848e7dd174ddd302d7db62142f4722d574b6',
    });
  });

  it('a business-scoped user id whose phone number the same body gives is keyed by the number', () => {
    const body = fixture('meta-docs/status_delivered_marketing_pmp_bsuid_contacts.json') as {
      entry: {
        changes: { value: { contacts: Record<string, string>[]; statuses: Record<string, string>[] } }[];
      }[];
    };
    const value = body.entry[0]!.changes[0]!.value;
    const scopedId = value.contacts[0]!.user_id!;
    value.statuses[0]!.recipient_id = '';
    value.statuses[0]!.recipient_user_id = scopedId;
    expect(events(body)[0]).toMatchObject({ user: '16505551234', userCountryHint: 'US' });
    value.contacts[0]!.wa_id = '';
    expect(events(body)[0]).toMatchObject({ user: scopedId, userCountryHint: 'US' });
  });

  it('an inbound message with an empty from takes from_user_id and the contact country', () => {
    expect(events(fixture('meta-docs/incoming_text_bsuid.json'))[0]).toMatchObject({
      kind: 'inbound',
      user: 'user.93737...',
      userCountryHint: 'US',
    });
  });

  it('a failed status and an unknown status word are kept', () => {
    expect(events(fixture('meta-docs/status_failed_131049_ecosystem.json'))[0]).toMatchObject({
      status: 'failed',
    });
    expect(events(fixture('pywa/status_played.json'))[0]).toMatchObject({ status: 'played' });
  });

  it('a volume tier update becomes an account update with the tier', () => {
    expect(events(fixture('pywa/account_update_volume_tier_update.json'))).toEqual([
      {
        kind: 'account_update',
        atMs: 1743451903000,
        waba: '102290129340398',
        event: 'VOLUME_BASED_PRICING_TIER_UPDATE',
        volumeTier: {
          tier: '25000001:50000000',
          category: 'utility',
          region: 'India',
          effectiveMonth: '2025-11',
        },
      },
    ]);
  });

  it('an authentication-international eligibility update carries its start and exceptions', () => {
    expect(events(fixture('pywa/account_update_auth_intl_eligibility.json'))).toEqual([
      {
        kind: 'account_update',
        atMs: 1743451903000,
        waba: '102290129340398',
        event: 'AUTH_INTL_PRICE_ELIGIBILITY_UPDATE',
        authInternational: { startMs: 1748780624000, exceptionsMs: { ID: 1751347424000 } },
      },
    ]);
  });

  it('a primary business location update carries the country', () => {
    expect(events(fixture('pywa/account_update_primary_business_location.json'))).toEqual([
      {
        kind: 'account_update',
        atMs: 1743138982000,
        waba: '102290129340398',
        event: 'BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE',
        primaryCountry: 'IN',
      },
    ]);
  });

  it('an account update with no billing fact is ignored, not rejected', () => {
    const item = parsed(fixture('meta-docs/account_update_whatsapp_business_accounts_example.json'));
    expect(item.events).toEqual([]);
    expect(item.ignored).toEqual([
      { reason: 'account_update ACCOUNT_VIOLATION (no billing fact)', count: 1 },
    ]);
  });

  it('a template category change is lower-cased', () => {
    expect(events(fixture('meta-docs/template_category_update_changed.json'))).toEqual([
      {
        kind: 'template_category_update',
        atMs: 1746169200000,
        waba: '102290129340398',
        templateName: 'welcome_template',
        templateId: '278077987957091',
        templateLanguage: 'en-US',
        previousCategory: 'utility',
        newCategory: 'marketing',
      },
    ]);
    expect(events(fixture('pywa/template_category_update_marketing.json'))[0]).toMatchObject({
      newCategory: 'marketing',
      templateName: 'my_message_template',
    });
  });

  it("a template category change keeps the template's id and language (two languages of one name are two templates)", () => {
    const body = (id: number, language: string) => ({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: '111222333',
          time: 1755648000,
          changes: [
            {
              field: 'template_category_update',
              value: {
                message_template_id: id,
                message_template_name: 'order_update',
                message_template_language: language,
                previous_category: 'UTILITY',
                new_category: 'MARKETING',
              },
            },
          ],
        },
      ],
    });
    const [es] = events(body(111, 'es'));
    const [en] = events(body(222, 'en_US'));
    expect(es).toMatchObject({ templateId: '111', templateLanguage: 'es' });
    expect(en).toMatchObject({ templateId: '222', templateLanguage: 'en_US' });
    expect(eventKey(es!)).not.toBe(eventKey(en!));
  });

  it('a notice of a future category change is ignored (the change arrives in its own webhook)', () => {
    const item = parsed(fixture('meta-docs/template_category_update_pending_correct_category.json'));
    expect(item.events).toEqual([]);
    expect(item.ignored).toEqual([{ reason: IGNORED.pendingCategoryNotice, count: 1 }]);
  });

  it("a group message's status that Meta bills is kept, marked as a group's (wameter rates no groups)", () => {
    const group = fixture('pywa/status_group.json') as {
      entry: {
        id: string;
        changes: { value: { metadata: object; statuses: Record<string, unknown>[] } }[];
      }[];
    };
    const entry = group.entry[0]!;
    entry.id = 'W1';
    const value = entry.changes[0]!.value;
    value.metadata = { phone_number_id: 'PN1' };
    const pricing = { billable: true, pricing_model: 'PMP', category: 'group_marketing', type: 'regular' };
    value.statuses[0] = { ...value.statuses[0], id: 'wamid.g1', pricing };
    const item = parsed(group);
    expect(item.rejected).toEqual([]);
    expect(item.ignored).toEqual([]);
    expect(item.events).toEqual([
      {
        kind: 'status',
        atMs: 1698266945000,
        id: 'wamid.g1',
        status: 'read',
        waba: 'W1',
        business: 'PN1',
        recipientType: 'group',
        pricing,
      },
    ]);
    // Not billed (or no pricing): counted as ignored, as before.
    value.statuses[0] = { ...value.statuses[0], pricing: { ...pricing, billable: false } };
    expect(parsed(group).ignored).toEqual([{ reason: IGNORED.groupStatus, count: 1 }]);
  });

  it.each([
    ['pywa/status_group.json', IGNORED.groupStatus],
    ['meta-docs/incoming_text_group.json', IGNORED.groupMessage],
    ['meta-docs/incoming_system_user_changed_number.json', IGNORED.systemMessage],
    ['pywa/system_identity_change.json', IGNORED.systemMessage],
    ['pywa/smb_message_echoes_text.json', 'field "smb_message_echoes" (not a billing event)'],
    ['meta-docs/value_errors_130429_rate_limit.json', IGNORED.valueErrors],
  ])('%s is counted as ignored, not rejected', (path, reason) => {
    const item = parsed(fixture(path));
    expect(item.events).toEqual([]);
    expect(item.rejected).toEqual([]);
    expect(item.ignored).toEqual([{ reason, count: 1 }]);
  });

  it('a message beside errors[] is still read', () => {
    const item = parsed(fixture('pywa/incoming_interactive_with_error.json'));
    expect(item.events).toHaveLength(1);
    expect(item.ignored).toEqual([{ reason: IGNORED.valueErrors, count: 1 }]);
  });

  it('a messages value with neither messages nor statuses is fine', () => {
    const item = parsed(
      body([{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: META } }]),
    );
    expect(item).toEqual({ events: [], ignored: [], rejected: [] });
  });

  it('numbers as timestamps are read like strings', () => {
    const [event] = events(
      body([{ field: 'messages', value: { metadata: META, statuses: [status({ timestamp: 1750030073 })] } }]),
    );
    expect(event!.atMs).toBe(1750030073000);
  });

  it('a batched body gives every event, and one bad item costs only itself', () => {
    const statuses = [
      status({ id: 's1' }),
      status({ id: '' }),
      status({ id: 's3', timestamp: 'TIMESTAMP' }),
      status({ id: 's4' }),
    ];
    const messages = [
      { from: 'U2', id: 'm1', timestamp: '1750030000', type: 'text' },
      { id: 'm2', timestamp: '1750030000' },
    ];
    const item = parsed(
      body(
        [
          { field: 'messages', value: { metadata: META, statuses, messages } },
          { field: 'message_template_status_update', value: { event: 'APPROVED' } },
          { field: 'message_template_status_update', value: { event: 'REJECTED' } },
        ],
        [
          {
            id: 'W2',
            changes: [{ field: 'messages', value: { metadata: META, statuses: [status({ id: 's5' })] } }],
          },
        ],
      ),
    );
    expect(item.events.map((e) => ('id' in e ? e.id : e.kind))).toEqual(['m1', 's1', 's4', 's5']);
    expect(item.rejected.map((e) => e.message)).toEqual([
      'entry[0].changes[0].value.messages[1] needs "from" (the user\'s wa_id) or "from_user_id" (business-scoped id)',
      'entry[0].changes[0].value.statuses[1] "id" must be a non-empty string (the business message\'s wamid), not ""',
      'entry[0].changes[0].value.statuses[2] "timestamp": "TIMESTAMP" is not an instant: use ISO-8601 with an offset (2024-03-01T10:00:00Z) or Unix seconds',
    ]);
    expect(item.ignored).toEqual([
      { reason: 'field "message_template_status_update" (not a billing event)', count: 2 },
    ]);
  });

  it('a webhook timestamp out of range or in milliseconds costs only its item, with the path named', () => {
    const item = parsed(
      body([
        {
          field: 'messages',
          value: {
            metadata: META,
            statuses: [
              status({ id: 's1', timestamp: '1750030073000' }),
              status({ id: 's2', timestamp: 1e20 }),
              status({ id: 's3' }),
            ],
            messages: [
              { from: 'U2', id: 'm1', timestamp: '100000000000000000000', type: 'text' },
              { from: 'U2', id: 'm2', timestamp: '1750030000', type: 'text' },
            ],
          },
        },
      ]),
    );
    expect(item.events.map((e) => ('id' in e ? e.id : e.kind))).toEqual(['m2', 's3']);
    expect(item.rejected.map((e) => e.message)).toEqual([
      'entry[0].changes[0].value.messages[0] "timestamp": "100000000000000000000" is outside the range of instants wameter reads (accepted: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, or Unix seconds from 0 to 99999999999)',
      'entry[0].changes[0].value.statuses[0] "timestamp": "1750030073000" looks like milliseconds; timestamps here take Unix seconds: write 1750030073 (2025-06-15T23:27:53Z) or an ISO-8601 instant',
      'entry[0].changes[0].value.statuses[1] "timestamp": 100000000000000000000 is outside the range of instants wameter reads (accepted: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, or Unix seconds from 0 to 99999999999)',
    ]);
  });

  it('account and template category updates refuse out-of-range times with the field named', () => {
    const rejected = (value: object, time: unknown = 1743451903, field = 'account_update') =>
      parsed({
        object: 'whatsapp_business_account',
        entry: [{ id: 'W1', time, changes: [{ field, value }] }],
      }).rejected.map((e) => e.message);
    const country = { event: 'BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE', country: 'IN' };
    expect(rejected(country, 1743451903000)).toEqual([
      'entry[0].changes[0]: its entry "time": 1743451903000 looks like milliseconds; timestamps here take Unix seconds: write 1743451903 (2025-03-31T20:11:43Z) or an ISO-8601 instant',
    ]);
    expect(rejected(country, -1)[0]).toContain('its entry "time": -1 is outside the range');
    expect(
      rejected({
        event: 'VOLUME_BASED_PRICING_TIER_UPDATE',
        volume_tier_info: { tier: '1:2', pricing_category: 'UTILITY', tier_update_time: 1e20 },
      })[0],
    ).toContain('value.volume_tier_info "tier_update_time": 100000000000000000000 is outside the range');
    expect(
      rejected({
        event: 'AUTH_INTL_PRICE_ELIGIBILITY_UPDATE',
        auth_international_rate_eligibility: { start_time: 1748780624000 },
      })[0],
    ).toContain('auth_international_rate_eligibility "start_time": 1748780624000 looks like milliseconds');
    expect(
      rejected({
        event: 'AUTH_INTL_PRICE_ELIGIBILITY_UPDATE',
        auth_international_rate_eligibility: {
          start_time: 1748780624,
          exception_countries: [{ country_code: 'ID', start_time: '99999999999999999999999' }],
        },
      })[0],
    ).toContain('exception_countries[0] "start_time": "99999999999999999999999" is outside the range');
    expect(
      rejected(
        { message_template_name: 't', new_category: 'MARKETING', previous_category: 'UTILITY' },
        1e20,
        'template_category_update',
      ),
    ).toEqual([
      'entry[0].changes[0]: its entry "time": 100000000000000000000 is outside the range of instants wameter reads (accepted: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, or Unix seconds from 0 to 99999999999)',
    ]);
  });

  it('unknown and upper-case status words in webhook bodies are kept (Meta may send other words)', () => {
    const item = parsed(
      body([
        {
          field: 'messages',
          value: {
            metadata: META,
            statuses: [status({ status: 'played' }), status({ status: 'DELIVERED' })],
          },
        },
      ]),
    );
    expect(item.rejected).toEqual([]);
    expect(item.events.map((e) => (e.kind === 'status' ? e.status : e.kind))).toEqual([
      'played',
      'DELIVERED',
    ]);
  });

  it('Meta placeholders instead of values are rejected with the field named', () => {
    const item = parsed(fixture('meta-docs/incoming_text_ctwa_referral_with_ref_placeholders.json'));
    expect(item.events).toEqual([]);
    expect(item.rejected[0]!.message).toContain('messages[0] "timestamp": "TIMESTAMP" is not an instant');
  });

  it('an inbound message and a status need their WABA and business number (a status used to be read without them)', () => {
    const message = { from: 'U1', id: 'm1', timestamp: '1750030000' };
    const noWaba = parsed({
      object: 'whatsapp_business_account',
      entry: [
        {
          changes: [
            { field: 'messages', value: { metadata: META, messages: [message], statuses: [status({})] } },
          ],
        },
      ],
    });
    expect(noWaba.events).toEqual([]);
    expect(noWaba.rejected.map((e) => e.message)).toEqual([
      'entry[0].changes[0].value.messages[0]: its entry needs "id" (the WhatsApp Business Account id)',
      'entry[0].changes[0].value.statuses[0]: its entry needs "id" (the WhatsApp Business Account id)',
    ]);
    const noBusiness = parsed(
      body([{ field: 'messages', value: { messages: [message], statuses: [status({})] } }]),
    );
    expect(noBusiness.events).toEqual([]);
    expect(noBusiness.rejected.map((e) => e.message)).toEqual([
      'entry[0].changes[0].value.messages[0]: its value needs "metadata.phone_number_id" (the business number)',
      'entry[0].changes[0].value.statuses[0]: its value needs "metadata.phone_number_id" (the business number)',
    ]);
  });

  it('a status that names no user at all is refused; an empty recipient_id with recipient_user_id is read', () => {
    const item = parsed(
      body([
        {
          field: 'messages',
          value: {
            metadata: META,
            statuses: [
              status({ recipient_id: undefined }),
              status({ id: 'wamid.b', recipient_id: '', recipient_user_id: 'US.1349' }),
            ],
          },
        },
      ]),
    );
    expect(item.rejected.map((e) => e.message)).toEqual([
      'entry[0].changes[0].value.statuses[0] needs "recipient_id" (the user\'s wa_id) or "recipient_user_id" (business-scoped id)',
    ]);
    expect(item.events).toEqual([expect.objectContaining({ id: 'wamid.b', user: 'US.1349' })]);
  });

  it('malformed entries and changes are rejected one by one', () => {
    const item = parsed({
      object: 'whatsapp_business_account',
      entry: ['x', { id: 'W1' }, { id: 'W1', changes: [null, { field: 'messages' }] }],
    });
    expect(item.rejected.map((e) => e.message)).toEqual([
      'entry[0] must be an object, not "x"',
      'entry[1] needs "changes" (an array)',
      'entry[2].changes[0] must be an object with "field" and "value" (an object)',
      'entry[2].changes[1] must be an object with "field" and "value" (an object)',
    ]);
  });

  it('a change of a field wameter does not know is ignored whatever its value (webhooks.md: stored and ignored)', () => {
    const item = parsed({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: 'W1',
          changes: [
            { field: 'brand_new_field' },
            { field: 'brand_new_field', value: 'a string' },
            { field: 'brand_new_field', value: [1] },
          ],
        },
      ],
    });
    expect(item.rejected).toEqual([]);
    expect(item.events).toEqual([]);
    expect(item.ignored).toEqual([{ reason: 'field "brand_new_field" (not a billing event)', count: 3 }]);
    // A field wameter reads still needs its value.
    expect(
      parsed({
        object: 'whatsapp_business_account',
        entry: [{ id: 'W1', changes: [{ field: 'messages', value: 'x' }] }],
      }).rejected.map((e) => e.message),
    ).toEqual(['entry[0].changes[0] must be an object with "field" and "value" (an object)']);
  });

  it('account updates missing their facts are rejected with the field named', () => {
    const update = (value: object, time: number | 'none' = 1743451903) =>
      parsed({
        object: 'whatsapp_business_account',
        entry: [
          {
            id: 'W1',
            time: time === 'none' ? undefined : time,
            changes: [{ field: 'account_update', value }],
          },
        ],
      }).rejected.map((e) => e.message);
    expect(update({ event: 'BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE', country: 'India' })[0]).toContain(
      'needs "country"',
    );
    expect(update({ event: 'VOLUME_BASED_PRICING_TIER_UPDATE' })[0]).toContain('needs "volume_tier_info"');
    expect(
      update({ event: 'AUTH_INTL_PRICE_ELIGIBILITY_UPDATE', auth_international_rate_eligibility: {} })[0],
    ).toContain('needs "start_time"');
    expect(update({ country: 'IN' })[0]).toContain('needs "event"');
    expect(update({ event: 'BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE', country: 'IN' }, 'none')[0]).toContain(
      'its entry needs "time"',
    );
  });

  it('a volume-tier statement whose tier, month, category or region the rating cannot use is refused by field, the rest of the body read', () => {
    const info = { tier: '2:MAX', pricing_category: 'UTILITY', effective_month: '2025-11', region: 'India' };
    const read = (fields: Record<string, unknown>) =>
      parsed({
        object: 'whatsapp_business_account',
        entry: [
          {
            id: 'W1',
            time: 1761955200,
            changes: [
              {
                field: 'account_update',
                value: {
                  event: 'VOLUME_BASED_PRICING_TIER_UPDATE',
                  volume_tier_info: { ...info, ...fields },
                },
              },
              { field: 'messages', value: { metadata: META, statuses: [status({})] } },
            ],
          },
        ],
      });
    const where = 'entry[0].changes[0].value.volume_tier_info';
    for (const [fields, message] of [
      [
        { tier: 'two' },
        `${where} "tier" must be Meta's band FROM:TO (e.g. "25001:100000", or "100001:MAX" for the last), not "two"`,
      ],
      [{ tier: '2' }, `${where} "tier" must be Meta's band FROM:TO`],
      [{ tier: '5:2' }, `${where} "tier" must be Meta's band FROM:TO`],
      [
        { effective_month: '2025-13' },
        `${where} "effective_month" must be a month written YYYY-MM (e.g. "2025-11"), not "2025-13"`,
      ],
      [{ effective_month: 'November' }, `${where} "effective_month" must be a month written YYYY-MM`],
      [{ effective_month: undefined }, `${where} needs "effective_month" (the month, e.g. "2025-11")`],
      [{ region: undefined }, `${where} needs "region" (the market, e.g. "India")`],
      [{ region: 7 }, `${where} "region" must be a non-empty string (the market, e.g. "India"), not 7`],
      [
        { pricing_category: 'GARBAGE' },
        `${where} "pricing_category" must be one of Meta's categories UTILITY, AUTHENTICATION, AUTHENTICATION_INTERNATIONAL, AUTHENTICATION-INTERNATIONAL, MARKETING, not "GARBAGE"`,
      ],
    ] as const) {
      const item = read(fields);
      expect(
        item.rejected.map((e) => e.message),
        JSON.stringify(fields),
      ).toEqual([expect.stringContaining(message)]);
      expect(item.rejected[0]!.code).toBe('BAD_EVENT');
      expect(
        item.events.map((e) => e.kind),
        JSON.stringify(fields),
      ).toEqual(['status']);
    }
    // Meta's own shapes are read: the first band from 0, an open last band, a region in any case (the market
    // table is the rating's: rate-events.ts), authentication-international.
    for (const fields of [
      { tier: '0:25000' },
      { tier: '100001:' },
      { tier: '25001:100000' },
      { region: ' INDIA ' },
      { pricing_category: 'AUTHENTICATION_INTERNATIONAL' },
      { pricing_category: 'MARKETING' },
    ]) {
      expect(read(fields).rejected, JSON.stringify(fields)).toEqual([]);
    }
  });

  it("a template_category_update to a category that is none of Meta's is refused by field", () => {
    const read = (newCategory: string) =>
      parsed({
        object: 'whatsapp_business_account',
        entry: [
          {
            id: 'W1',
            time: 1761955200,
            changes: [
              {
                field: 'template_category_update',
                value: {
                  message_template_id: 1,
                  message_template_name: 'welcome',
                  new_category: newCategory,
                },
              },
            ],
          },
        ],
      });
    expect(read('GARBAGE').rejected).toEqual([
      {
        code: 'BAD_EVENT',
        message:
          'entry[0].changes[0].value "new_category" must be MARKETING, UTILITY or AUTHENTICATION (the template\'s new category), not "GARBAGE"',
      },
    ]);
    for (const word of ['MARKETING', 'utility', 'Authentication']) {
      expect(read(word).events, word).toEqual([
        expect.objectContaining({ kind: 'template_category_update', newCategory: word.toLowerCase() }),
      ]);
    }
  });
});

const META = { display_phone_number: '15550783881', phone_number_id: 'PN1' };

function status(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    id: 'wamid.s',
    status: 'delivered',
    timestamp: '1750030073',
    recipient_id: '16505551234',
    ...fields,
  };
}

function body(changes: object[], moreEntries: object[] = []): object {
  return { object: 'whatsapp_business_account', entry: [{ id: 'W1', changes }, ...moreEntries] };
}

/** What CoreEvent (src/core/events.ts) declares for the fields a status carries, as a list of what is not so. */
function typeProblems(event: CoreEvent): string[] {
  const problems: string[] = [];
  const expectType = (what: string, value: unknown, ...types: string[]) => {
    if (value !== undefined && !types.includes(typeof value)) problems.push(`${what}: ${typeof value}`);
  };
  if (typeof event.atMs !== 'number' || !Number.isFinite(event.atMs)) problems.push('atMs');
  expectType('waba', event.waba, 'string');
  if (event.kind === 'account_update' || event.kind === 'template_category_update') return problems;
  expectType('id', event.id, 'string');
  expectType('user', event.user, 'string');
  expectType('business', event.business, 'string');
  if (event.kind !== 'status') return problems;
  expectType('status', event.status, 'string');
  const pricing = event.pricing;
  if (pricing !== undefined) {
    expectType('pricing.billable', pricing.billable, 'boolean');
    expectType('pricing.pricing_model', pricing.pricing_model, 'string');
    expectType('pricing.category', pricing.category, 'string');
    expectType('pricing.type', pricing.type, 'string');
  }
  const conversation = event.conversation;
  if (conversation !== undefined) {
    expectType('conversation.id', conversation.id, 'string');
    expectType('conversation.expiration_timestamp', conversation.expiration_timestamp, 'string', 'number');
    const origin: unknown = conversation.origin;
    if (origin !== undefined && (typeof origin !== 'object' || origin === null || Array.isArray(origin)))
      problems.push('conversation.origin');
    else expectType('conversation.origin.type', conversation.origin?.type, 'string');
  }
  return problems;
}

describe("Meta's evidence keeps the types CoreEvent declares", () => {
  const withEvidence = (pricing: unknown, conversation?: unknown) =>
    body([
      {
        field: 'messages',
        value: { metadata: META, statuses: [status({ pricing, conversation })] },
      },
    ]);

  it('a pricing field that is not a string (or billable not a boolean) is dropped; the status and the rest are kept', () => {
    const [event] = events(
      withEvidence({ billable: 'yes', pricing_model: 7, category: 5, type: { name: 'regular' }, extra: 1 }),
    );
    expect(event).toMatchObject({ kind: 'status', id: 'wamid.s', status: 'delivered', user: '16505551234' });
    expect((event as StatusEvent).pricing).toEqual({ extra: 1 });
    const [objectCategory] = events(withEvidence({ category: { name: 'marketing' }, type: 'regular' }));
    expect((objectCategory as StatusEvent).pricing).toEqual({ type: 'regular' });
    const [nullCategory] = events(withEvidence({ billable: true, category: null, type: ['regular'] }));
    expect((nullCategory as StatusEvent).pricing).toEqual({ billable: true });
    // JSON.parse keeps "__proto__" as a plain field; the copy must not take it as its prototype.
    const [proto] = events(withEvidence(JSON.parse('{"category":5,"__proto__":{"category":{}}}')));
    expect((proto as StatusEvent).pricing!.category).toBeUndefined();
  });

  it('a conversation origin type, id or expiration of the wrong type is dropped; the rest is kept', () => {
    const [event] = events(withEvidence(undefined, { id: 'c', origin: { type: 7 } }));
    expect((event as StatusEvent).conversation).toEqual({ id: 'c', origin: {} });
    const [stringOrigin] = events(
      withEvidence(undefined, { id: 5, expiration_timestamp: {}, origin: 'marketing' }),
    );
    expect((stringOrigin as StatusEvent).conversation).toEqual({});
    const [kept] = events(withEvidence(undefined, { id: 'c', expiration_timestamp: 1750116480 }));
    expect((kept as StatusEvent).conversation).toEqual({ id: 'c', expiration_timestamp: 1750116480 });
  });

  it('well-typed evidence is kept as Meta wrote it, unknown fields included', () => {
    const pricing = { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular', x: 1 };
    const conversation = { id: 'c', origin: { type: 'marketing', y: 2 } };
    const [event] = events(withEvidence(pricing, conversation));
    expect((event as StatusEvent).pricing).toBe(pricing);
    expect((event as StatusEvent).conversation).toBe(conversation);
  });

  it('a contract status line is held to the same types', () => {
    const [event] = events({
      kind: 'status',
      at: AT,
      id: 'o1',
      status: 'delivered',
      pricing: { category: 5, type: 'regular' },
      conversation: { origin: { type: 7 } },
    });
    expect(event).toEqual({
      kind: 'status',
      atMs: AT_MS,
      id: 'o1',
      status: 'delivered',
      pricing: { type: 'regular' },
      conversation: { origin: {} },
    });
  });
});

describe('a body or change missing its envelope fields is an item error, never a crash', () => {
  const statusChange = { field: 'messages', value: { metadata: META, statuses: [status({})] } };

  it('a body with entries but no "object" is refused, saying what is missing', () => {
    expect(errorOf({ entry: [{ id: 'W1', changes: [statusChange] }] })).toBe(
      'webhook body needs "object": "whatsapp_business_account" (Meta sends it on every body); send the body exactly as Meta posted it',
    );
    expect(errorOf({ object: 7, entry: [] })).toContain('webhook body has "object": 7');
  });

  it('a body wrapped in another "entry" says so', () => {
    expect(errorOf({ entry: [body([statusChange])] })).toBe(
      'webhook body needs "object": "whatsapp_business_account"; its "entry" holds whole webhook bodies: give those bodies themselves (one per line, or an array of them)',
    );
  });

  it('a change without "field", or with a field that is not a word, is rejected alone', () => {
    const { field: _field, ...noField } = statusChange;
    const item = parsed(body([noField, { ...statusChange, field: 7 }, statusChange]));
    expect(item.rejected.map((e) => e.message)).toEqual([
      'entry[0].changes[0] needs "field" (e.g. "messages")',
      'entry[0].changes[1] "field" must be a string (e.g. "messages"), not 7',
    ]);
    expect(item.events).toHaveLength(1);
  });

  it('"messages" or "statuses" that is not an array is rejected, not read as nothing', () => {
    const item = parsed(
      body([
        { field: 'messages', value: { metadata: META, statuses: status({}) } },
        { field: 'messages', value: { metadata: META, messages: 'hi' } },
      ]),
    );
    expect(item.rejected.map((e) => e.message)).toEqual([
      'entry[0].changes[0].value "statuses" must be an array, not an object',
      'entry[0].changes[1].value "messages" must be an array, not "hi"',
    ]);
  });
});

describe('ids written as JSON numbers, or missing, are refused at the item', () => {
  const hint = 'write ids as JSON strings, numbers lose digits beyond 15';
  const statusBody = (entryId: unknown, value: Record<string, unknown>) => ({
    object: 'whatsapp_business_account',
    entry: [{ id: entryId, changes: [{ field: 'messages', value }] }],
  });

  it('a status whose entry "id" is a number or missing is refused like an inbound message', () => {
    const numeric = parsed(statusBody(102290129340398, { metadata: META, statuses: [status({})] }));
    expect(numeric.events).toEqual([]);
    expect(numeric.rejected.map((e) => e.message)).toEqual([
      `entry[0].changes[0].value.statuses[0]: its entry "id" must be a non-empty string (the WhatsApp Business Account id), not 102290129340398: ${hint}`,
    ]);
    const missing = parsed(statusBody(undefined, { metadata: META, statuses: [status({})] }));
    expect(missing.rejected.map((e) => e.message)).toEqual([
      'entry[0].changes[0].value.statuses[0]: its entry needs "id" (the WhatsApp Business Account id)',
    ]);
  });

  it('a status whose recipient_id or phone_number_id is a number, or without metadata, is refused', () => {
    const rejected = (value: Record<string, unknown>) => {
      const item = parsed(statusBody('W1', value));
      expect(item.events).toEqual([]);
      return item.rejected.map((e) => e.message);
    };
    expect(rejected({ metadata: META, statuses: [status({ recipient_id: 919876543210 })] })).toEqual([
      `entry[0].changes[0].value.statuses[0] "recipient_id" must be a non-empty string (the user's wa_id), not 919876543210: ${hint}`,
    ]);
    expect(rejected({ metadata: { phone_number_id: 106540352242922 }, statuses: [status({})] })).toEqual([
      `entry[0].changes[0].value.statuses[0]: its value's "metadata.phone_number_id" must be a non-empty string (the business number), not 106540352242922: ${hint}`,
    ]);
    expect(rejected({ statuses: [status({})] })).toEqual([
      'entry[0].changes[0].value.statuses[0]: its value needs "metadata.phone_number_id" (the business number)',
    ]);
  });

  it('an inbound message whose "from" is a number gets the same hint', () => {
    const item = parsed(
      statusBody('W1', {
        metadata: META,
        messages: [{ from: 919876543210, id: 'wamid.in', timestamp: 1760000000, type: 'text' }],
      }),
    );
    expect(item.rejected.map((e) => e.message)).toEqual([
      `entry[0].changes[0].value.messages[0] "from" must be a non-empty string (the user's wa_id), not 919876543210: ${hint}`,
    ]);
    const business = parsed(
      statusBody('W1', {
        metadata: { phone_number_id: 106540352242922 },
        messages: [{ from: '919876543210', id: 'wamid.in', timestamp: 1760000000, type: 'text' }],
      }),
    );
    expect(business.rejected[0]!.message).toContain(hint);
  });
});

describe('users of event lines written as phone numbers', () => {
  it('"+", spaces, dashes and a leading 00 are dropped, as Meta writes a wa_id', () => {
    for (const written of [
      '+919876543210',
      '+91 98765-43210',
      '0091 98765 43210',
      '(91) 98765.43210',
      '+0091 98765 43210',
      '＋９１ ９８７６５ ４３２１０',
      '+٩١٩٨٧٦٥٤٣٢١٠',
    ]) {
      expect(events({ ...outbound, user: written })[0], written).toMatchObject({ user: '919876543210' });
      expect(
        events({ kind: 'inbound', at: AT, waba: 'W1', business: 'PN1', user: written, id: 'i1' })[0],
      ).toMatchObject({ user: '919876543210' });
      expect(events({ kind: 'status', at: AT, id: 'o1', status: 'sent', user: written })[0]).toMatchObject({
        user: '919876543210',
      });
    }
  });

  it('marks that show nothing (direction marks, zero-width spaces) are dropped as spaces are', () => {
    // As WhatsApp and Outlook copy a number, as a right-to-left spreadsheet writes it, a zero-width space.
    for (const written of [
      '\u202a+91 98765 43210\u202c',
      '\u200e919876543210',
      '9198765\u200b43210',
      '\ufeff+919876543210',
    ]) {
      expect(events({ ...outbound, user: written })[0], JSON.stringify(written)).toMatchObject({
        user: '919876543210',
      });
    }
  });

  it('business-scoped ids and other names that are not clearly phone numbers are kept as written', () => {
    for (const user of [
      '919876543210',
      'US.13491208655302741918',
      'user.abc123',
      'U1',
      '+12',
      '+1234567890123456',
      'Zoë 😀',
    ]) {
      expect(events({ ...outbound, user })[0], user).toMatchObject({ user });
    }
  });
});

describe("users of Meta's webhooks written as phone numbers", () => {
  const inboundMessage = (from: string) => ({ from, id: 'wamid.i', timestamp: '1750030073', type: 'text' });

  it('a recipient_id, from or contacts wa_id with "+", spaces or dashes is read as the digits, as a line\'s user is', () => {
    for (const written of ['+919876543210', '+91 98765-43210', '0091 98765 43210']) {
      const [delivered] = events(
        body([
          {
            field: 'messages',
            value: {
              metadata: META,
              contacts: [{ wa_id: written, user_id: 'IN.1', profile: { country_code: 'IN' } }],
              statuses: [status({ recipient_id: written })],
            },
          },
        ]),
      );
      expect(delivered, written).toMatchObject({
        user: '919876543210',
        userCountryHint: 'IN',
        scopedUserId: 'IN.1',
      });
      const [inbound] = events(
        body([{ field: 'messages', value: { metadata: META, messages: [inboundMessage(written)] } }]),
      );
      expect(inbound, written).toMatchObject({ kind: 'inbound', user: '919876543210' });
      // Only a business-scoped id beside it: the contact's number is the user, read the same way.
      const [scoped] = events(
        body([
          {
            field: 'messages',
            value: {
              metadata: META,
              contacts: [{ wa_id: written, user_id: 'IN.1' }],
              statuses: [status({ recipient_id: '', recipient_user_id: 'IN.1' })],
            },
          },
        ]),
      );
      expect(scoped, written).toMatchObject({ user: '919876543210', scopedUserId: 'IN.1' });
    }
  });

  it('a business-scoped id or another name that is not clearly a number is kept as written', () => {
    for (const user of ['US.13491208655302741918', '+12', 'U1']) {
      expect(
        events(
          body([
            { field: 'messages', value: { metadata: META, statuses: [status({ recipient_id: user })] } },
          ]),
        )[0],
      ).toMatchObject({ user });
    }
  });
});

describe('the parser never throws (fast-check, fixed seed)', () => {
  const SEED = 20251202;
  const bodies = listFixtures(new URL('.', FIXTURES)).map((path) => ({
    path,
    value: JSON.parse(readFileSync(path, 'utf8')) as unknown,
  }));
  const lines: unknown[] = [
    { ...outbound, template: 'utility', delivered_at: AT, template_name: 't', failed: false },
    { kind: 'inbound', at: AT, waba: 'W1', business: 'PN1', user: 'U1', id: 'i1', referral: {} },
    {
      kind: 'status',
      at: AT,
      id: 'o1',
      status: 'delivered',
      waba: 'W1',
      business: 'PN1',
      user: 'U1',
      pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
      conversation: { id: 'c', expiration_timestamp: '1750116480', origin: { type: 'marketing' } },
    },
  ];
  const replacement = fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.string({ maxLength: 8 }),
    fc.constantFrom('', '__proto__', 'constructor', 'messages', 'whatsapp_business_account', '1750030073'),
    fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  );
  const mutation = fc.record({ at: fc.nat(), value: replacement });

  it('feeding it mutated real fixture bodies and event lines (fields deleted or replaced)', () => {
    const samples = [...bodies.map((b) => b.value), ...lines];
    fc.assert(
      fc.property(
        fc.nat({ max: samples.length - 1 }),
        fc.array(mutation, { maxLength: 6 }),
        (pick, mutations) => {
          const value = structuredClone(samples[pick]);
          for (const { at, value: replaced } of mutations) mutate(value, at, replaced);
          let result: ReturnType<typeof parseEventValue>;
          try {
            result = parseEventValue(value);
            parseContractLine(value);
          } catch (error) {
            throw new Error(`threw on ${JSON.stringify(value)}: ${String(error)}`);
          }
          if (result.ok) {
            for (const event of result.value.events)
              expect(typeProblems(event), JSON.stringify(event)).toEqual([]);
          } else {
            expect(result.error.code).toBe('BAD_EVENT');
          }
        },
      ),
      { seed: SEED, numRuns: 3000 },
    );
  });
});

/** Every .json under `folder`, sorted. */
function listFixtures(folder: URL): string[] {
  const paths: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.json')) paths.push(path);
    }
  };
  walk(fileURLToPath(folder));
  return paths;
}

/** Replaces (or deletes, for `undefined`) the `at`-th field of `root`, counting depth first. */
function mutate(root: unknown, at: number, replacement: unknown): void {
  const slots: Array<{ holder: Record<string, unknown> | unknown[]; key: string | number }> = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => {
        slots.push({ holder: node, key: i });
        walk(child);
      });
    } else if (typeof node === 'object' && node !== null) {
      for (const [key, child] of Object.entries(node)) {
        slots.push({ holder: node as Record<string, unknown>, key });
        walk(child);
      }
    }
  };
  walk(root);
  if (slots.length === 0) return;
  const { holder, key } = slots[at % slots.length]!;
  if (replacement === undefined && !Array.isArray(holder)) delete holder[key as string];
  else (holder as Record<string | number, unknown>)[key] = replacement;
}

describe('a messages value with nothing in it', () => {
  it('is counted as skipped, naming its keys, so that a misspelt "statuses" does not vanish', () => {
    const item = parsed(
      body([
        { field: 'messages', value: { messaging_product: 'whatsapp', metadata: META, status: [status({})] } },
      ]),
    );
    expect(item.events).toEqual([]);
    expect(item.ignored).toEqual([
      { reason: 'messages value with no "messages", "statuses" or "errors" (keys: status)', count: 1 },
    ]);
    // A value with statuses is not such a value.
    const read = parsed(body([{ field: 'messages', value: { metadata: META, statuses: [status({})] } }]));
    expect(read.ignored).toEqual([]);
  });
});

describe('ids no real traffic has are refused, never handed to a store that cannot index them', () => {
  const webhook = (value: Record<string, unknown>, entryId: unknown = 'W1') => ({
    object: 'whatsapp_business_account',
    entry: [{ id: entryId, changes: [{ field: 'messages', value }] }],
  });
  const inboundLine = {
    kind: 'inbound',
    at: AT,
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    id: 'in1',
  };
  const statusLine = { kind: 'status', at: AT, id: 'wamid.o1', status: 'delivered' };
  const tooLong = (where: string, field: string, bytes: number) =>
    `${where} "${field}" is too long: ${bytes} bytes, where an id has at most 256 (UTF-8; real ones are far shorter)`;

  it('a user of 3,002 digits or a message id of 12 KB is refused, naming the field and the limit', () => {
    // /tmp/svc-audit/longuser2.ndjson: PostgreSQL took it (200), then failed every live rating on its index.
    const user = `55${'3661296703777505639213185932426412271929717989089737561564574515'.repeat(46)}${'7'.repeat(56)}`;
    expect(user.length).toBe(3002);
    expect(errorOf({ ...outbound, user })).toBe(
      `${tooLong('outbound line', 'user', 3002)}; it begins "55366129670377750563921318593242641227192971798908973756...`,
    );
    expect(errorOf({ ...outbound, id: `wamid.${'9'.repeat(12_000)}` })).toContain(
      tooLong('outbound line', 'id', 12_006),
    );
  });

  it('every id of every kind of line is held to the limit: waba, business, user, id', () => {
    const long = 'x'.repeat(257);
    for (const field of ['waba', 'business', 'user', 'id']) {
      expect(errorOf({ ...outbound, [field]: long })).toContain(tooLong('outbound line', field, 257));
      expect(errorOf({ ...inboundLine, [field]: long })).toContain(tooLong('inbound line', field, 257));
      expect(errorOf({ ...statusLine, [field]: long })).toContain(tooLong('status line', field, 257));
    }
  });

  it('the limit counts UTF-8 bytes: 256 of them are read, one more is refused', () => {
    for (const [char, fits] of [
      ['a', 256],
      ['é', 128],
      ['€', 85],
      ['😀', 64],
    ] as const) {
      const id = char.repeat(fits);
      expect(events({ ...outbound, id })[0]).toMatchObject({ id });
      const bytes = Buffer.byteLength(char.repeat(fits + 1));
      expect(errorOf({ ...outbound, id: char.repeat(fits + 1) })).toContain(
        tooLong('outbound line', 'id', bytes),
      );
    }
  });

  it("the longest real ids are far inside it: Meta's wamids and business-scoped ids", () => {
    const wamid = `wamid.${Buffer.alloc(64, 7).toString('base64')}`; // a wamid of 64 bytes, longer than any seen
    const scoped = 'user.9373795779eb6441c8adb2eaee5b848e7dd174ddd302d7db62142f4722d574b6';
    expect(events({ ...outbound, id: wamid, user: scoped })[0]).toMatchObject({ id: wamid, user: scoped });
    expect(
      events(fixture('meta-docs/status_delivered_marketing_pmp_bsuid_only_empty_recipient.json')),
    ).toHaveLength(1);
  });

  it('a template name may have 512 bytes, as Meta allows; more is refused', () => {
    const name = 'a'.repeat(512);
    expect(events({ ...outbound, template_name: name })[0]).toMatchObject({ templateName: name });
    expect(errorOf({ ...outbound, template_name: `${name}b` })).toContain(
      'outbound line "template_name" is too long: 513 bytes, where a template name has at most 512',
    );
  });

  it('a webhook item with an id over the limit costs only itself, its path and field named', () => {
    const long = '1'.repeat(300);
    const item = parsed(
      webhook({
        metadata: META,
        statuses: [
          status({ id: `wamid.${long}` }),
          status({ recipient_id: long }),
          status({ status: long }),
          status({ id: 'wamid.ok' }),
        ],
        messages: [
          { from: long, id: 'wamid.in1', timestamp: '1750030073', type: 'text' },
          { from: '', from_user_id: `US.${long}`, id: 'wamid.in2', timestamp: '1750030073', type: 'text' },
          { from: '919876543210', id: `wamid.${long}`, timestamp: '1750030073', type: 'text' },
        ],
      }),
    );
    expect(item.events.map((e) => ('id' in e ? e.id : e.kind))).toEqual(['wamid.ok']);
    const where = 'entry[0].changes[0].value';
    expect(item.rejected.map((e) => e.message.split(';')[0])).toEqual([
      tooLong(`${where}.messages[0]`, 'from', 300).split(';')[0],
      tooLong(`${where}.messages[1]`, 'from_user_id', 303).split(';')[0],
      tooLong(`${where}.messages[2]`, 'id', 306).split(';')[0],
      tooLong(`${where}.statuses[0]`, 'id', 306).split(';')[0],
      tooLong(`${where}.statuses[1]`, 'recipient_id', 300).split(';')[0],
      `${where}.statuses[2] "status" is too long: 300 bytes, where a word of Meta's has at most 256 (UTF-8`,
    ]);
  });

  it("a webhook's WABA id, business number or contact's number over the limit is refused with its path", () => {
    const long = '1'.repeat(300);
    const entry = parsed(webhook({ metadata: META, statuses: [status({})] }, long));
    expect(entry.events).toEqual([]);
    expect(entry.rejected.map((e) => e.message)).toEqual([
      expect.stringContaining(tooLong('entry[0]', 'id', 300)),
    ]);
    const business = parsed(webhook({ metadata: { phone_number_id: long }, statuses: [status({})] }));
    expect(business.events).toEqual([]);
    expect(business.rejected.map((e) => e.message)).toEqual([
      expect.stringContaining(
        tooLong("entry[0].changes[0].value.statuses[0]: its value's", 'metadata.phone_number_id', 300),
      ),
    ]);
    // The user taken from contacts[] (the status gives only the business-scoped id).
    const contact = parsed(
      webhook({
        metadata: META,
        contacts: [{ wa_id: long, user_id: 'US.1' }],
        statuses: [status({ recipient_id: '', recipient_user_id: 'US.1' })],
      }),
    );
    expect(contact.events).toEqual([]);
    expect(contact.rejected.map((e) => e.message)).toEqual([
      expect.stringContaining(tooLong('entry[0].changes[0].value.statuses[0]', 'contacts[].wa_id', 300)),
    ]);
  });

  it('a template category update naming a template of over 512 bytes is refused', () => {
    const update = (name: string) => ({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: 'W1',
          time: 1750030073,
          changes: [
            {
              field: 'template_category_update',
              value: { message_template_id: 1, message_template_name: name, new_category: 'MARKETING' },
            },
          ],
        },
      ],
    });
    expect(parsed(update('n'.repeat(512))).events).toHaveLength(1);
    expect(parsed(update('n'.repeat(513))).rejected.map((e) => e.message)).toEqual([
      expect.stringContaining(
        'entry[0].changes[0].value "message_template_name" is too long: 513 bytes, where a template name has at most 512',
      ),
    ]);
  });
});

describe('a lone UTF-16 surrogate in what becomes an event is refused: PostgreSQL keeps none in JSON', () => {
  const lone = (where: string, field: string) =>
    `${where} "${field}" holds a lone UTF-16 surrogate (an unpaired \\ud800–\\udfff escape), which no real value has`;

  it('in an id of an event line (PostgreSQL answered 503 and failed readiness; SQLite kept it)', () => {
    const line = JSON.parse(
      '{"kind":"outbound","at":"2025-08-06T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.\\ud800x","template":"utility"}',
    ) as Record<string, unknown>;
    expect(errorOf(line)).toContain(lone('outbound line', 'id'));
    for (const field of ['waba', 'business', 'user']) {
      expect(errorOf({ ...outbound, [field]: 'a\udc00' })).toContain(lone('outbound line', field));
    }
    expect(
      errorOf({
        kind: 'status',
        at: AT,
        id: 'wamid.o1',
        status: 'delivered',
        pricing: { category: 'x\ud800' },
      }),
    ).toBe(
      'status line "pricing" holds a lone UTF-16 surrogate (an unpaired \\ud800–\\udfff escape) at pricing.category, which no real value has',
    );
  });

  it('a pair of surrogates (a character beyond the BMP, an emoji) is a character: kept', () => {
    const parsed = parseEventValue({ ...outbound, template_name: 'promo_😀' });
    expect(parsed.ok && parsed.value.events[0]).toMatchObject({ templateName: 'promo_😀' });
  });
});

describe('a NUL character (U+0000) in what becomes an event is refused: no store keeps one in its text', () => {
  const nul = (where: string, field: string) => `${where} "${field}" holds a NUL character (U+0000)`;

  it('in any string field of an event line', () => {
    // /tmp/svc-audit/nul.ndjson: SQLite kept it, PostgreSQL answered 503 and lost the whole batch.
    const line = JSON.parse(
      '{"kind":"outbound","at":"2025-08-06T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.nul\\u0000x","template":"utility"}',
    ) as Record<string, unknown>;
    expect(errorOf(line)).toBe(`${nul('outbound line', 'id')}, which no real value has: "wamid.nul\\u0000x"`);
    expect(parseContractLine(line)).toMatchObject({ code: 'BAD_EVENT' });
    for (const field of ['waba', 'business', 'user', 'template_name']) {
      expect(errorOf({ ...outbound, [field]: 'a\u0000b' })).toContain(nul('outbound line', field));
    }
    for (const field of ['waba', 'business', 'user', 'id']) {
      const statusLine = { kind: 'status', at: AT, id: 'wamid.o1', status: 'delivered', [field]: 'a\u0000' };
      expect(errorOf(statusLine)).toContain(nul('status line', field));
    }
  });

  it("in Meta's evidence a status carries, in a value or a key, at any depth", () => {
    const line = { kind: 'status', at: AT, id: 'wamid.o1', status: 'delivered' };
    expect(errorOf({ ...line, pricing: { category: 'utility\u0000' } })).toBe(
      'status line "pricing" holds a NUL character (U+0000) at pricing.category, which no real value has',
    );
    expect(errorOf({ ...line, conversation: { origin: { type: 'x', 'a\u0000': [1, { b: 'c' }] } } })).toBe(
      'status line "conversation" holds a NUL character (U+0000) at conversation.origin["a\\u0000"], which no real value has',
    );
    expect(errorOf({ ...line, pricing: { list: ['ok', { deep: ['\u0000'] }] } })).toContain(
      'at pricing.list[1].deep[0]',
    );
  });

  it('in a webhook status id costs that status only (nulstatus.json), with its path', () => {
    const item = parsed(
      body([
        {
          field: 'messages',
          value: {
            metadata: META,
            statuses: [
              status({
                id: 'wamid.S\u0000X',
                pricing: { billable: true, pricing_model: 'PMP', category: 'utility' },
              }),
              status({ id: 'wamid.ok' }),
              status({ id: 'wamid.p', pricing: { category: 'utility', 'x\u0000': 1 } }),
            ],
            messages: [{ from: '9198\u00007', id: 'wamid.in', timestamp: '1750030073', type: 'text' }],
          },
        },
      ]),
    );
    expect(item.events.map((e) => ('id' in e ? e.id : e.kind))).toEqual(['wamid.ok']);
    const where = 'entry[0].changes[0].value';
    expect(item.rejected.map((e) => e.message)).toEqual([
      `${nul(`${where}.messages[0]`, 'from')}, which no real value has: "9198\\u00007"`,
      `${nul(`${where}.statuses[0]`, 'id')}, which no real value has: "wamid.S\\u0000X"`,
      `${where}.statuses[2] "pricing" holds a NUL character (U+0000) at pricing["x\\u0000"], which no real value has`,
    ]);
  });

  it("in a webhook's WABA id, business number, account update or template update", () => {
    expect(parsed(body([], [])).rejected).toEqual([]);
    const entry = parsed({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: 'W\u0000',
          changes: [{ field: 'messages', value: { metadata: META, statuses: [status({})] } }],
        },
      ],
    });
    expect(entry.rejected.map((e) => e.message)).toEqual([expect.stringContaining(nul('entry[0]', 'id'))]);
    const business = parsed(
      body([
        { field: 'messages', value: { metadata: { phone_number_id: 'P\u0000' }, statuses: [status({})] } },
      ]),
    );
    expect(business.rejected.map((e) => e.message)).toEqual([
      expect.stringContaining(
        nul("entry[0].changes[0].value.statuses[0]: its value's", 'metadata.phone_number_id'),
      ),
    ]);
    const update = (value: Record<string, unknown>, field = 'account_update') => ({
      object: 'whatsapp_business_account',
      entry: [{ id: 'W1', time: 1750030073, changes: [{ field, value }] }],
    });
    const country = parsed(update({ event: 'BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE', country: 'I\u0000' }));
    expect(country.events).toEqual([]);
    expect(country.rejected).toHaveLength(1);
    const tier = parsed(
      update({
        event: 'VOLUME_BASED_PRICING_TIER_UPDATE',
        volume_tier_info: {
          tier: 'TIER_1\u0000',
          pricing_category: 'UTILITY',
          region: 'India',
          effective_month: '2025-11',
        },
      }),
    );
    expect(tier.events).toEqual([]);
    expect(tier.rejected.map((e) => e.message)).toEqual([
      expect.stringContaining(nul('entry[0].changes[0].value.volume_tier_info', 'tier')),
    ]);
    const template = parsed(
      update(
        { message_template_id: 1, message_template_name: 'n\u0000', new_category: 'MARKETING' },
        'template_category_update',
      ),
    );
    expect(template.events).toEqual([]);
    expect(template.rejected.map((e) => e.message)).toEqual([
      expect.stringContaining(nul('entry[0].changes[0].value', 'message_template_name')),
    ]);
    const category = parsed(
      update(
        {
          message_template_id: 1,
          message_template_name: 'n',
          new_category: 'MARKETING',
          previous_category: '\u0000',
        },
        'template_category_update',
      ),
    );
    expect(category.rejected.map((e) => e.message)).toEqual([
      expect.stringContaining(nul('entry[0].changes[0].value', 'previous_category')),
    ]);
  });

  it("anywhere wameter does not keep (a contact's name, a message's text, an ad's headline) it changes nothing", () => {
    const value = {
      metadata: META,
      contacts: [{ profile: { name: 'Nul\u0000Name', country_code: 'U\u0000' }, wa_id: '16505551234' }],
      messages: [
        {
          from: '16505551234',
          id: 'wamid.NULTEST',
          timestamp: '1750275992',
          type: 'text',
          text: { body: 'hi\u0000there' },
          referral: { source_type: 'ad', headline: 'Chat\u0000with us' },
        },
      ],
    };
    // A country code holding NUL is no country: the user's market is found as without a hint.
    expect(events(body([{ field: 'messages', value }]))).toEqual([
      {
        kind: 'inbound',
        atMs: 1750275992000,
        waba: 'W1',
        business: 'PN1',
        user: '16505551234',
        id: 'wamid.NULTEST',
        hasReferral: true,
      },
    ]);
  });
});

describe("webhook bodies of more values than any of Meta's", () => {
  it('are refused whole, before any item is read; a body of 1,000 statuses is read', () => {
    const body = (statuses: unknown[]) => ({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: 'W1',
          changes: [{ field: 'messages', value: { metadata: { phone_number_id: 'PN1' }, statuses } }],
        },
      ],
    });
    const empties = body(Array.from({ length: MAX_WEBHOOK_VALUES }, () => ({})));
    const parsed = parseEventValue(empties);
    expect(parsed).toMatchObject({ ok: false, error: { code: 'BAD_EVENT' } });
    expect(parsed.ok ? '' : parsed.error.message).toContain(`more than ${MAX_WEBHOOK_VALUES} JSON values`);
    const status = (i: number) => ({
      id: `wamid.k${i}`,
      status: 'delivered',
      timestamp: '1750030073',
      recipient_id: '16505551234',
      conversation: { id: 'c1', expiration_timestamp: '1750116480', origin: { type: 'marketing' } },
      pricing: { billable: true, pricing_model: 'PMP', type: 'regular', category: 'marketing' },
    });
    const thousand = parseEventValue(body(Array.from({ length: 1000 }, (_, i) => status(i))));
    expect(thousand.ok && thousand.value.events.length).toBe(1000);
  });

  it('are told from the text before parsing, never refusing what the parsed value would not', () => {
    fc.assert(
      fc.property(fc.json(), fc.integer({ min: 0, max: 40 }), (text, limit) => {
        if (isTextHoldingMoreValuesThan(text, limit))
          expect(holdsMoreValuesThan(JSON.parse(text), limit)).toBe(true);
      }),
    );
    // A comma more than the limit's values less one: more values than the limit, whatever they are.
    expect(isTextHoldingMoreValuesThan(`[${'{},'.repeat(10)}{}]`, 11)).toBe(false);
    expect(isTextHoldingMoreValuesThan(`[${'{},'.repeat(11)}{}]`, 11)).toBe(true);
    expect(holdsMoreValuesThan(JSON.parse(`[${'{},'.repeat(11)}{}]`), 11)).toBe(true);
    expect(holdsMoreValuesThan(JSON.parse(`[${'{},'.repeat(11)}{}]`), 13)).toBe(false);
    // Brackets and commas inside strings are text, not values.
    expect(isTextHoldingMoreValuesThan(`{"a":"${'[,'.repeat(50)}\\"}`, 2)).toBe(false);
  });
});

describe('textOverLimits: both checks before parsing, in one pass', () => {
  it('says what isTextNestedDeeperThan, then isTextHoldingMoreValuesThan, say of the same text', () => {
    const expected = (text: string, depthLimit: number, valueLimit: number) =>
      isTextNestedDeeperThan(text, depthLimit)
        ? 'too_deep'
        : isTextHoldingMoreValuesThan(text, valueLimit)
          ? 'too_many_values'
          : null;
    const jsonish = fc.oneof(
      fc.json(),
      fc.stringMatching(/^[[\]{},"\\a:]{0,40}$/),
      fc.constantFrom(`{"text":"\\"}${'['.repeat(3)}`, `[${'{},'.repeat(11)}{}]`, '[,[,[,'),
    );
    fc.assert(
      fc.property(
        jsonish,
        fc.integer({ min: -1, max: 6 }),
        fc.integer({ min: -1, max: 14 }),
        (text, depth, values) => {
          expect(textOverLimits(text, depth, values)).toBe(expected(text, depth, values));
        },
      ),
      { seed: 36, numRuns: 2_000 },
    );
  });
});

describe('isTextNestedDeeperThan: depth told from the text, before parsing', () => {
  it('counts objects and arrays, up to the limit and one past it', () => {
    const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
    expect(isTextNestedDeeperThan(nested(64))).toBe(false);
    expect(isTextNestedDeeperThan(nested(65))).toBe(true);
    expect(isTextNestedDeeperThan('{"a":{"b":[1,{"c":2}]}}', 4)).toBe(false);
    expect(isTextNestedDeeperThan('{"a":{"b":[1,{"c":2}]}}', 3)).toBe(true);
    // Siblings do not add up: depth, not count.
    expect(isTextNestedDeeperThan(`[${'[],'.repeat(1000)}[]]`, 2)).toBe(false);
  });

  it('skips brackets inside strings, escaped quotes included', () => {
    expect(isTextNestedDeeperThan(`{"text":"${'['.repeat(100)}"}`, 1)).toBe(false);
    expect(isTextNestedDeeperThan(`{"text":"a \\" ${'{'.repeat(100)} \\\\"}`, 1)).toBe(false);
    // An escaped backslash ends nothing: the quote after it closes the string, and the brackets count.
    expect(isTextNestedDeeperThan(`{"text":"\\\\"}${'['.repeat(3)}`, 2)).toBe(true);
  });

  it('agrees with isNestedDeeperThan on parsed JSON', () => {
    for (const text of ['[]', '{}', '[[[]]]', '{"a":[{"b":[[]]}]}', '[1,[2,[3,[4]]],{"x":{"y":{}}}]']) {
      for (const limit of [0, 1, 2, 3, 4, 5]) {
        expect(isTextNestedDeeperThan(text, limit), `${text} ${limit}`).toBe(
          isNestedDeeperThan(JSON.parse(text), limit),
        );
      }
    }
  });
});
