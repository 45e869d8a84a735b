import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { EXIT } from './exit-codes.js';

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/webhooks');

function cli(args: string[]) {
  return runWameter(['reconcile', ...args]);
}

const dir = mkdtempSync(join(tmpdir(), 'wameter-reconcile-'));
const sendLog = join(dir, 'sends.ndjson');
writeFileSync(
  sendLog,
  `${JSON.stringify({ kind: 'outbound', at: 1698266940, waba: '5467539754836534', business: '1122334455667', user: '972987654321', id: 'wamid.xyzxyz', template: null })}\n`,
);

/** A utility template as the send log says it was sent, and Meta's status pricing it as marketing. */
const UTILITY_SENT = JSON.stringify({
  kind: 'outbound',
  at: '2025-10-08T06:00:00Z',
  waba: 'W1',
  business: 'PN1',
  user: '919876543210',
  id: 'm1',
  template: 'utility',
});
const PRICED_AS_MARKETING = JSON.stringify({
  kind: 'status',
  at: '2025-10-08T06:00:03Z',
  id: 'm1',
  status: 'delivered',
  pricing: { pricing_model: 'PMP', category: 'marketing', type: 'regular' },
});

describe('wameter reconcile', () => {
  it('exits 0 and says so when wameter and Meta agree', async () => {
    const result = await cli([sendLog, join(FIXTURES, 'pywa/status_delivered.json')]);
    expect(result.code).toBe(EXIT.OK);
    expect(result.out).toContain('agree');
  });

  it('exits 4 and lists the difference with its cause when they disagree', async () => {
    const utility = join(dir, 'utility.ndjson');
    writeFileSync(utility, `${UTILITY_SENT}\n` + `${PRICED_AS_MARKETING}\n`);
    const result = await cli([utility, '--format', 'json']);
    expect(result.code).toBe(EXIT.DIFFERENCES);
    const json = JSON.parse(result.out);
    expect(json.differences).toEqual([
      expect.objectContaining({ message: 'm1', cause: 'TEMPLATE_RECATEGORISED' }),
    ]);
    expect(json.checked).toEqual({ messages: 1, unverifiable: 0, buckets: 0 });
    const table = await cli([utility]);
    expect(table.out).toContain('TEMPLATE_RECATEGORISED  message m1');
  });

  it('an analytics file that is not an export is refused with a clear error (exit 1)', async () => {
    const bogus = join(dir, 'bogus.json');
    writeFileSync(bogus, '{"units":[]}');
    const result = await cli([sendLog, '--analytics', bogus]);
    expect(result.code).toBe(EXIT.USAGE);
    expect(result.err).toContain('UNRECOGNISED_ANALYTICS');
    const missing = await cli([sendLog, '--analytics', join(dir, 'nope.json')]);
    expect(missing.err).toContain('ANALYTICS_UNREADABLE');
  });

  it("Meta's analytics example reads, and the buckets it has that wameter lacks are reported", async () => {
    const result = await cli([
      sendLog,
      '--analytics',
      join(FIXTURES, 'meta-docs/analytics_pricing_daily_tier_category_type_country.json'),
      '--format',
      'json',
    ]);
    const json = JSON.parse(result.out);
    expect(json.checked.buckets).toBeGreaterThan(0);
    expect(json.differences.every((d: { cause: string }) => d.cause === 'MISSING_WEBHOOK')).toBe(true);
    expect(result.code).toBe(EXIT.DIFFERENCES);
  });

  it('nothing verifiable: says so and why on stderr, claims no agreement, exits 1', async () => {
    const unpriced = join(dir, 'unpriced.ndjson');
    writeFileSync(
      unpriced,
      `${UTILITY_SENT}\n` +
        `${JSON.stringify({ kind: 'status', at: '2025-10-08T06:00:03Z', id: 'm1', status: 'delivered' })}\n`,
    );
    const table = await cli([unpriced]);
    expect(table.code).toBe(EXIT.USAGE);
    expect(table.out).not.toContain('agree on');
    expect(table.out).toContain('no agreement is claimed');
    expect(table.err).toContain('nothing could be checked against Meta');
    expect(table.err).toContain(
      "none of the 1 delivered message(s) has a status webhook with Meta's pricing",
    );
    expect(table.err).toContain('no analytics export was given (--analytics)');
    const json = await cli([unpriced, '--format', 'json']);
    expect(json.code).toBe(EXIT.USAGE);
    expect(JSON.parse(json.out)).toEqual({
      differences: [],
      checked: { messages: 1, unverifiable: 1, buckets: 0 },
    });
    const empty = join(dir, 'empty.ndjson');
    writeFileSync(empty, '\n');
    const none = await cli([empty]);
    expect(none.code).toBe(EXIT.USAGE);
    expect(none.err).toContain('the input holds no delivered business message');
  });

  it('differences win over malformed lines (exit 4), and the malformed lines are still named', async () => {
    const mixed = join(dir, 'mixed.ndjson');
    writeFileSync(mixed, `${UTILITY_SENT}\n` + `{"kind":"outbound",\n` + `${PRICED_AS_MARKETING}\n`);
    const result = await cli([mixed, '--format', 'json']);
    expect(result.code).toBe(EXIT.DIFFERENCES);
    expect(result.err).toContain(`${mixed}:2: MALFORMED_LINE`);
    expect(JSON.parse(result.out).differences).toHaveLength(1);
  });

  it('malformed lines and everything checked agrees: exit 2', async () => {
    const agreeing = join(dir, 'agreeing.ndjson');
    writeFileSync(
      agreeing,
      `${UTILITY_SENT}\n` +
        `not json\n` +
        `${JSON.stringify({ kind: 'status', at: '2025-10-08T06:00:03Z', id: 'm1', status: 'delivered', pricing: { pricing_model: 'PMP', category: 'utility', type: 'regular' } })}\n`,
    );
    const result = await cli([agreeing]);
    expect(result.code).toBe(EXIT.BAD_INPUT);
    expect(result.out).toContain('agree');
    expect(result.err).toContain(`${agreeing}:2: MALFORMED_LINE`);
  });
});
