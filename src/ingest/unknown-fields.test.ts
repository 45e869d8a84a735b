// A field the event-line contract does not name is not read, and said so: a send log that names a template's
// category "category" instead of "template" had its marketing templates rated as free messages, without a word.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { messagesWebhook } from '../../test/support/webhook-body.js';
import { parseContractLine, unknownLineFieldWords, unknownLineFields } from './parse-event.js';

const OUTBOUND = {
  kind: 'outbound',
  at: '2025-08-01T10:00:00Z',
  waba: 'W1',
  business: 'PN1',
  user: '919876543210',
  id: 'wamid.o1',
  template: 'marketing',
  template_name: 'offer',
  delivered_at: '2025-08-01T10:00:05Z',
  failed: false,
};

function fieldsOf(value: Record<string, unknown>): string[] | undefined {
  const line = parseContractLine(value);
  if (line === undefined || 'code' in line) throw new Error('not an event line');
  return unknownLineFields(line, value)?.map(unknownLineFieldWords);
}

describe('fields an event line has beyond the contract', () => {
  it('none for lines of every kind holding only the contract fields', () => {
    expect(fieldsOf(OUTBOUND)).toBeUndefined();
    expect(
      fieldsOf({ kind: 'inbound', at: 1, waba: 'W1', business: 'PN1', user: '1', id: 'i', referral: {} }),
    ).toBeUndefined();
    expect(
      fieldsOf({ kind: 'status', at: 1, id: 'm', status: 'read', waba: 'W1', pricing: {}, conversation: {} }),
    ).toBeUndefined();
  });

  it('names each other field, with the contract name people mean by a common one', () => {
    const { template: _template, ...withoutTemplate } = OUTBOUND;
    expect(fieldsOf({ ...withoutTemplate, category: 'marketing', campaign: 'x' })).toEqual([
      'field "category" of outbound lines, which the event-line contract does not name (not read; did you mean "template"?)',
      'field "campaign" of outbound lines, which the event-line contract does not name (not read)',
    ]);
  });

  it('names a contract field only where that kind of line has it', () => {
    const status = {
      kind: 'status',
      at: 1,
      id: 'm',
      status: 'delivered',
      category: 'marketing',
      delivered: 1,
    };
    expect(fieldsOf(status)).toEqual([
      'field "category" of status lines, which the event-line contract does not name (not read)',
      'field "delivered" of status lines, which the event-line contract does not name (not read)',
    ]);
  });

  it('wameter rate says so once per field on stderr, counting the lines, and rates as the contract reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-fields-'));
    const file = join(dir, 'typo.ndjson');
    const { template: _template, ...withoutTemplate } = OUTBOUND;
    const lines = [1, 2, 3].map((n) =>
      JSON.stringify({ ...withoutTemplate, id: `wamid.o${n}`, category: 'marketing' }),
    );
    writeFileSync(file, `${lines.join('\n')}\n`);
    const { code, out, err } = await runWameter(['rate', file, '--format', 'json']);
    expect(code).toBe(0);
    expect(err).toContain(
      'wameter: read without a field: 3 × field "category" of outbound lines, which the event-line contract does not name (not read; did you mean "template"?)',
    );
    // Read as the contract says: no "template", a non-template message.
    expect((JSON.parse(out) as { units: { category: string }[] }).units.map((u) => u.category)).toEqual([
      'service',
      'service',
      'service',
    ]);
  });
});

describe('a webhook status of a word Meta does not document (it decides nothing: said, not silent)', () => {
  const statusBody = (id: string, word: string) =>
    JSON.stringify(
      messagesWebhook('W1', {
        messaging_product: 'whatsapp',
        metadata: { display_phone_number: '15550000000', phone_number_id: 'PN1' },
        statuses: [{ id, status: word, timestamp: '1759309200', recipient_id: '919800000031' }],
      }),
    );

  it('wameter rate counts each such word on stderr, with the word meant; Meta’s own words are not named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wameter-words-'));
    const file = join(dir, 'words.ndjson');
    const words = ['Delivered', 'Delivered', 'delivred', 'gone', 'deleted', 'warning', 'sent'];
    writeFileSync(file, `${words.map((word, i) => statusBody(`wamid.w${i}`, word)).join('\n')}\n`);
    const { code, err } = await runWameter(['rate', file]);
    expect(code).toBe(0);
    const notes = err.split('\n').filter((line) => line.includes('kept, deciding nothing'));
    const note = (times: number, word: string, hint: string) =>
      `wameter: kept, deciding nothing: ${times} × status word "${word}" of Meta's webhooks, which Meta does not document: its message is neither delivered nor failed by it${hint}`;
    expect(notes).toEqual([
      note(2, 'Delivered', '; did you mean "delivered"?'),
      note(1, 'delivred', '; did you mean "delivered"?'),
      note(1, 'gone', ''),
    ]);
  });
});
