// Checks Meta's X-Hub-Signature-256 header: HMAC-SHA256 of the exact raw body bytes with an app secret.
// Never re-serialise JSON before checking (Meta signs its own escaped bytes); compare in constant time.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { err, ok, type Result } from '../core/result.js';

export interface SignatureError {
  code: 'MISSING_SIGNATURE' | 'BAD_SIGNATURE' | 'NO_APP_SECRET';
  message: string;
}

const PREFIX = 'sha256=';
const HEX_DIGEST = /^[0-9a-fA-F]{64}$/;

/** `sha256=<hex>` for a body, as Meta sends it (tests and benchmarks sign their own bodies with it). */
export function signMetaBody(rawBody: Uint8Array | string, secret: string): string {
  return PREFIX + createHmac('sha256', secret).update(rawBody).digest('hex');
}

/** An app secret: the secret itself, or an entry holding it (the service's secrets bound to WABAs). */
export type SigningSecret = string | { readonly secret: string };

function secretOf(entry: SigningSecret): string {
  return typeof entry === 'string' ? entry : entry.secret;
}

/**
 * Whether `header` is a valid signature of `rawBody` under any of `secrets` (several apps may feed one
 * wameter). Answers the index of the secret that matched, so that the caller can hold the body to what that
 * secret may sign: distinct secrets never both match one body (HMAC-SHA256), so the first match is the one.
 */
export function verifyMetaSignature(
  rawBody: Uint8Array,
  header: string | undefined,
  secrets: readonly SigningSecret[],
): Result<{ secretIndex: number }, SignatureError> {
  if (!secrets.some((entry) => secretOf(entry) !== '')) {
    return err({
      code: 'NO_APP_SECRET',
      message:
        'no Meta app secret is configured: set WAMETER_APP_SECRETS (comma-separated) or "appSecrets" in the config file to accept webhooks',
    });
  }
  const value = header?.trim();
  if (value === undefined || value === '') {
    return err({
      code: 'MISSING_SIGNATURE',
      message: 'the request has no X-Hub-Signature-256 header: only Meta-signed webhooks are accepted',
    });
  }
  const hex = value.slice(0, PREFIX.length).toLowerCase() === PREFIX ? value.slice(PREFIX.length) : '';
  if (!HEX_DIGEST.test(hex)) {
    return err({
      code: 'BAD_SIGNATURE',
      message: 'X-Hub-Signature-256 must be "sha256=" followed by 64 hex digits',
    });
  }
  const given = Buffer.from(hex, 'hex');
  for (let index = 0; index < secrets.length; index++) {
    const secret = secretOf(secrets[index]!);
    if (secret === '') continue;
    const expected = createHmac('sha256', secret).update(rawBody).digest();
    if (expected.length === given.length && timingSafeEqual(expected, given))
      return ok({ secretIndex: index });
  }
  return err({
    code: 'BAD_SIGNATURE',
    message:
      'X-Hub-Signature-256 does not match the body under any configured app secret: check WAMETER_APP_SECRETS ' +
      'or the config file\'s "appSecrets", ' +
      'and that the exact raw request bytes are checked (never re-serialised JSON)',
  });
}
