// Bytes that are not UTF-8 in what the service reads: a decoder would turn each into U+FFFD without a word,
// so two messages whose ids differ only there became one (one charge lost, the other answered "duplicate").
// A signed webhook holding them is kept as unreadable (400, the bad byte named); a line of POST /v1/events
// holding them is refused by its number, the other lines stored; an API JSON body holding them is refused.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestService, fixture, KEY_ALL, type TestService } from '../../test/server-kit.js';

let service: TestService;
beforeEach(async () => {
  service = await createTestService();
});
afterEach(async () => {
  await service.close();
});

const outbound = (id: Buffer) =>
  Buffer.concat([
    Buffer.from(
      '{"kind":"outbound","at":"2025-08-01T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.caf',
    ),
    id,
    Buffer.from('","template":"marketing","delivered_at":"2025-08-01T10:00:05Z"}'),
  ]);

describe('bytes that are not UTF-8', () => {
  it('in a signed webhook: kept as unreadable, 400 naming the byte, no event stored', async () => {
    const valid = fixture('pywa/status_delivered.json');
    const at = valid.indexOf('wamid.') + 6;
    const body = Buffer.concat([valid.subarray(0, at), Buffer.from([0xe9]), valid.subarray(at)]);
    const response = await service.postWebhook(body);
    expect(response.status).toBe(400);
    const answer = (await response.json()) as { error: { code: string; message: string } };
    expect(answer.error.code).toBe('MALFORMED_JSON');
    expect(answer.error.message).toContain(`byte 0xE9 at offset ${at} starts no UTF-8 character`);
    const [kept] = await service.store.listUnreadableWebhooks(10);
    expect(Buffer.from(kept!.body).equals(body)).toBe(true);
    expect(await service.store.listEvents()).toEqual([]);
  });

  it('in POST /v1/events: each such line refused by its number, the others stored — never merged', async () => {
    const genuine = Buffer.from('\ufffd'); // a real U+FFFD, valid bytes: read as it is
    const body = Buffer.concat([
      outbound(Buffer.from([0xe9])),
      Buffer.from('\n'),
      outbound(Buffer.from([0xe8])),
      Buffer.from('\r\n'),
      outbound(genuine),
      Buffer.from('\n'),
      outbound(Buffer.from([0xf0, 0x9f, 0x98])), // a truncated four-byte sequence
    ]);
    const response = await service.app.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/x-ndjson' },
      body,
    });
    expect(response.status).toBe(200);
    const error = 'holds bytes that are not valid UTF-8 (send UTF-8 text: a decoder would have changed them)';
    expect(await response.json()).toMatchObject({
      accepted: 1,
      duplicates: 0,
      rejected: [
        { line: 1, code: 'MALFORMED_JSON', error },
        { line: 2, code: 'MALFORMED_JSON', error },
        { line: 4, code: 'MALFORMED_JSON', error },
      ],
    });
    expect(await service.store.listEvents()).toMatchObject([{ id: 'wamid.caf\ufffd' }]);
  });

  it('in a document over several lines of POST /v1/events: refused at its first line; in an array, the element', async () => {
    const pretty = Buffer.from(
      JSON.stringify(JSON.parse(outbound(Buffer.from('x')).toString()), null, 2).replace(
        'wamid.cafx',
        'wamid.caf\u0000',
      ),
    );
    const at = pretty.indexOf(0);
    const document = Buffer.concat([pretty.subarray(0, at), Buffer.from([0xff]), pretty.subarray(at + 1)]);
    const whole = await service.app.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/x-ndjson' },
      body: document,
    });
    expect(await whole.json()).toMatchObject({
      accepted: 0,
      rejected: [{ line: 1, code: 'MALFORMED_JSON', error: expect.stringContaining('not valid UTF-8') }],
    });
    const good = Buffer.from(
      JSON.stringify(JSON.parse(outbound(Buffer.from('ok')).toString().replace('wamid.cafok', 'wamid.good'))),
    );
    const body = Buffer.concat([
      Buffer.from('[\n'),
      good,
      Buffer.from(',\n'),
      outbound(Buffer.from([0xff])),
      Buffer.from('\n]\n'),
    ]);
    const response = await service.app.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}`, 'Content-Type': 'application/x-ndjson' },
      body,
    });
    expect(await response.json()).toMatchObject({
      accepted: 1,
      rejected: [
        {
          line: 1,
          code: 'MALFORMED_JSON',
          error: expect.stringMatching(/^\[1\]: holds bytes that are not valid UTF-8/),
        },
      ],
    });
  });

  it('in an API JSON body: 400 MALFORMED_JSON', async () => {
    const response = await service.app.request('/v1/rerate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY_ALL}` },
      body: Buffer.concat([
        Buffer.from('{"wabas":["W'),
        Buffer.from([0xc3]),
        Buffer.from('"],"dry_run":true}'),
      ]),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: {
        code: 'MALFORMED_JSON',
        message: expect.stringContaining(
          'The body is not UTF-8 (byte 0xC3 at offset 12 starts no UTF-8 character)',
        ),
      },
    });
  });
});
