import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { signMetaBody, verifyMetaSignature } from './signature.js';

const KNOWN_ANSWER = 'sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221';
const bytes = (text: string) => new TextEncoder().encode(text);

// A real webhook body (Meta's documented incoming text) whose message text holds accents and an emoji,
// written the way Meta sends it: non-ASCII escaped as \uXXXX, the exact bytes Meta signs.
const fixtureText = readFileSync(
  new URL('../../test/fixtures/webhooks/meta-docs/incoming_text_basic.json', import.meta.url),
  'utf8',
).replace('Does it come in another color?', 'Est-ce que \\u00e7a existe en cr\\u00e8me ? \\ud83d\\ude00');

describe('verifyMetaSignature', () => {
  it("matches Meta's known answer (body test, secret TEST_APP_SECRET)", () => {
    expect(signMetaBody(bytes('test'), 'TEST_APP_SECRET')).toBe(KNOWN_ANSWER);
    expect(verifyMetaSignature(bytes('test'), KNOWN_ANSWER, ['TEST_APP_SECRET'])).toEqual({
      ok: true,
      value: { secretIndex: 0 },
    });
  });

  it('accepts any of several app secrets and says which one matched', () => {
    expect(verifyMetaSignature(bytes('test'), KNOWN_ANSWER, ['other', '', 'TEST_APP_SECRET'])).toEqual({
      ok: true,
      value: { secretIndex: 2 },
    });
  });

  it('reads a secret bound to WABAs ({secret, wabas}) as its secret, and says which entry matched', () => {
    const secrets = [
      { secret: 'other', wabas: ['W1'] },
      'another',
      { secret: 'TEST_APP_SECRET', wabas: ['W2'] },
    ];
    expect(verifyMetaSignature(bytes('test'), KNOWN_ANSWER, secrets)).toEqual({
      ok: true,
      value: { secretIndex: 2 },
    });
    expect(verifyMetaSignature(bytes('test'), KNOWN_ANSWER, [{ secret: '' }])).toMatchObject({
      ok: false,
      error: { code: 'NO_APP_SECRET' },
    });
  });

  it('accepts upper-case hex and surrounding spaces', () => {
    expect(
      verifyMetaSignature(bytes('test'), ` SHA256=${KNOWN_ANSWER.slice(7).toUpperCase()} `, [
        'TEST_APP_SECRET',
      ]).ok,
    ).toBe(true);
  });

  it('checks the exact raw bytes of a real body with accents and an emoji; re-serialised JSON fails', () => {
    const raw = bytes(fixtureText);
    const header = signMetaBody(raw, 'app-secret');
    expect(verifyMetaSignature(raw, header, ['app-secret']).ok).toBe(true);
    const reserialised = bytes(JSON.stringify(JSON.parse(fixtureText)));
    expect(JSON.parse(fixtureText).entry[0].changes[0].value.messages[0].text.body).toBe(
      'Est-ce que ça existe en crème ? 😀',
    );
    expect(verifyMetaSignature(reserialised, header, ['app-secret'])).toMatchObject({
      ok: false,
      error: { code: 'BAD_SIGNATURE' },
    });
  });

  it('a body changed by one byte is refused', () => {
    const raw = bytes(fixtureText);
    const header = signMetaBody(raw, 'app-secret');
    const tampered = raw.slice();
    tampered[tampered.length - 2] = tampered[tampered.length - 2]! ^ 1;
    expect(verifyMetaSignature(tampered, header, ['app-secret'])).toMatchObject({
      ok: false,
      error: { code: 'BAD_SIGNATURE', message: expect.stringContaining('does not match') },
    });
  });

  it('a wrong secret is refused with what to check', () => {
    expect(verifyMetaSignature(bytes('test'), KNOWN_ANSWER, ['WRONG'])).toEqual({
      ok: false,
      error: { code: 'BAD_SIGNATURE', message: expect.stringContaining('WAMETER_APP_SECRETS') },
    });
  });

  it.each([undefined, '', '   '])('a missing header (%j) is MISSING_SIGNATURE', (header) => {
    expect(verifyMetaSignature(bytes('test'), header, ['TEST_APP_SECRET'])).toMatchObject({
      ok: false,
      error: { code: 'MISSING_SIGNATURE' },
    });
  });

  it.each([
    KNOWN_ANSWER.slice(7),
    'sha1=' + KNOWN_ANSWER.slice(7),
    KNOWN_ANSWER.slice(0, -2),
    KNOWN_ANSWER + '00',
    KNOWN_ANSWER.slice(0, -1) + 'g',
  ])('a malformed header is BAD_SIGNATURE: %s', (header) => {
    expect(verifyMetaSignature(bytes('test'), header, ['TEST_APP_SECRET'])).toEqual({
      ok: false,
      error: {
        code: 'BAD_SIGNATURE',
        message: 'X-Hub-Signature-256 must be "sha256=" followed by 64 hex digits',
      },
    });
  });

  it('without any app secret nothing is accepted', () => {
    for (const secrets of [[], ['']]) {
      expect(verifyMetaSignature(bytes('test'), KNOWN_ANSWER, secrets)).toMatchObject({
        ok: false,
        error: { code: 'NO_APP_SECRET', message: expect.stringContaining('WAMETER_APP_SECRETS') },
      });
    }
  });
});
