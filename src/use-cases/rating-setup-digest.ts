// What a rating priced with besides its events, the accounts, the rate cards and the rating code (each of which
// has a digest of its own): the service's reported-rules setting and the runtime's date and time zone rules.
// Stored with each rating, so that a start re-rates a portfolio whose stored rating was made under others.

import { createHash } from 'node:crypto';

/**
 * A digest (16 hex digits) of the reported-rules setting (`WAMETER_REPORTED_RULES`: which market table and
 * eras are in force) and of the Node.js runtime (its version, ICU and time zone database: a WABA's local day,
 * which picks its era, card, allowance and tier month, is worked out by `Intl` from that database).
 */
export function ratingSetupDigest(isReportedRulesEnabled: boolean): string {
  const { node, icu, tz } = process.versions;
  return createHash('sha256')
    .update(JSON.stringify({ isReportedRulesEnabled, node, icu: icu ?? null, tz: tz ?? null }))
    .digest('hex')
    .slice(0, 16);
}
