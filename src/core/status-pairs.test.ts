// A status naming its WABA, a business number and a user (Meta's status webhook: entry id, phone_number_id,
// recipient_id) shows that the number sends for that WABA: a status naming no WABA of that number, whose message
// is in no input, is placed with that WABA in every order of the lines — also when the message's send log names
// another number (which wins for the message itself). The stores tie the number so (docs/storage.md).
import { describe, expect, it } from 'vitest';
import { hours, rate, send } from '../../test/support/engine.js';
import type { CoreEvent } from './events.js';

const DAY = '2024-03-01T00:00:00Z';

describe('statuses naming their WABA, a number and a user', () => {
  it("tie the number to that WABA for statuses naming no WABA, whatever the send log's number and the order", async () => {
    // W1's send log: m1 from PN1. Meta's status of m1 (entry W1) names PN9.
    const [sent] = send(hours(DAY, 0), 'm1', 'marketing', { waba: 'W1', business: 'PN1' }, 'pending');
    const named: CoreEvent = {
      kind: 'status',
      atMs: hours(DAY, 0) + 5000,
      waba: 'W1',
      id: 'm1',
      status: 'delivered',
      business: 'PN9',
      user: '919876543210',
    };
    // A status of PN9 naming no WABA, its message in no input.
    const alone: CoreEvent = {
      kind: 'status',
      atMs: hours(DAY, 2),
      id: 'm2',
      status: 'delivered',
      business: 'PN9',
      user: '919812345679',
      pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
    };
    for (const events of [
      [sent!, named, alone],
      [named, sent!, alone],
      [alone, named, sent!],
      [alone, sent!, named],
    ]) {
      const result = await rate(events);
      expect(result.units.map((u) => [u.messages[0], u.waba, u.business]).sort()).toEqual([
        ['m1', 'W1', 'PN1'],
        ['m2', 'W1', 'PN9'],
      ]);
      expect(result.findings.map((f) => f.code)).not.toContain('WABA_UNKNOWN');
    }
  });
});
