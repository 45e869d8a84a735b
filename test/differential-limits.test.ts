// The differential tester's recognition of two documented limits of a stream that rates and forgets
// (docs/decisions.md, "Known limits" and "Streaming"): a second WABA's message of an id met after the first
// WABA's was rated and forgotten (seed 90012), and a `delivered` later than the read receipt the stream rated
// its message at (seed 91017). Said as doc(…) only when `rate` over the lines with those items taken from the
// rated message bills what the stream billed: any other difference stays a mismatch.

import { describe, expect, it } from 'vitest';
import {
  deliveredAfterReadChanges,
  forgettingLimit,
  itemsOf,
  secondWabaChanges,
  withChanges,
  type Canon,
  type Line,
  webhookBody,
} from '../bench/differential.js';

const H = 3_600_000;
const LATENESS = 36 * H;

function lines(...objects: object[]): Line[] {
  return objects.map((o) => ({ text: JSON.stringify(o), t: 0 }));
}

function statusBody(waba: string, status: Record<string, unknown>): object {
  return webhookBody(waba, 'PN1', { statuses: [status] });
}

// Seed 91017, minimised, with a second WABA's message of the same id: W1's message sent and read on
// 2025-09-30, W2's failed on 2025-10-02, a `delivered` naming no WABA on 2025-10-04.
const read91017 = lines(
  statusBody('W1', {
    id: 'wamid.x4',
    status: 'sent',
    timestamp: '1759242717',
    recipient_id: '5521998765432',
  }),
  statusBody('W1', {
    id: 'wamid.x4',
    status: 'read',
    timestamp: '1759242738',
    recipient_id: '5521998765432',
  }),
  {
    kind: 'outbound',
    at: '2025-10-02T12:52:09Z',
    waba: 'W2',
    business: 'PN1',
    user: '919876543210',
    id: 'wamid.x4',
  },
  { kind: 'status', at: '2025-10-04T21:49:01Z', id: 'wamid.x4', status: 'delivered', business: 'PN1' },
);

// Seed 90012, shortened: W2's message of an id sent and read, W3's of the same id five days later.
const second90012 = lines(
  { kind: 'outbound', at: 1761825248, waba: 'W2', business: 'PN20', user: '919876543210', id: 'wamid.x2' },
  { kind: 'status', at: 1761825269, id: 'wamid.x2', status: 'read', waba: 'W2' },
  {
    kind: 'outbound',
    at: '2025-11-04T18:55:10-03:00',
    waba: 'W3',
    business: 'PN30',
    user: '919812345678',
    id: 'wamid.x2',
  },
  statusBody('W3', { id: 'wamid.x2', status: 'sent', timestamp: 1762293311, recipient_id: '919812345678' }),
);

const canon = (units: string[]): Canon => ({ units, totals: '{}', pending: [], findings: [] });

describe('the differential tester: documented limits of a stream that forgets', () => {
  it('reads the items of event lines and webhook bodies with their WABA and time', () => {
    const items = itemsOf(read91017);
    expect(items.map((i) => [i.line, i.kind, i.waba, i.status, i.t])).toEqual([
      [0, 'status', 'W1', 'sent', 1759242717000],
      [1, 'status', 'W1', 'read', 1759242738000],
      [2, 'outbound', 'W2', undefined, Date.parse('2025-10-02T12:52:09Z')],
      [3, 'status', undefined, 'delivered', Date.parse('2025-10-04T21:49:01Z')],
    ]);
  });

  it('gives a delivered report naming no WABA to the WABAs whose message was not rated at its read', () => {
    const changes = deliveredAfterReadChanges(itemsOf(read91017), LATENESS);
    expect(changes.map((c) => [c.item.line, c.to])).toEqual([[3, ['W2']]]);
    const changed = withChanges(read91017, changes);
    expect(changed).toHaveLength(4);
    expect(JSON.parse(changed[3]!.text)).toMatchObject({ status: 'delivered', waba: 'W2', business: 'PN1' });
    // Within the lateness, the stream still had the message: nothing to take away.
    expect(deliveredAfterReadChanges(itemsOf(read91017), 200 * H)).toEqual([]);
    // A `played` (seed 93028: failed, played, then delivered five days later) is a read receipt too.
    const played = read91017.map((l) => ({ ...l, text: l.text.replace('"read"', '"played"') }));
    expect(deliveredAfterReadChanges(itemsOf(played), LATENESS).map((c) => [c.item.line, c.to])).toEqual([
      [3, ['W2']],
    ]);
  });

  it("takes away the later WABA's items of an id, a webhook body keeping its other statuses", () => {
    const items = itemsOf(second90012);
    expect(secondWabaChanges(items, LATENESS).map((c) => c.item.line)).toEqual([2, 3]);
    expect(secondWabaChanges(items, 200 * H)).toEqual([]);
    const body = statusBody('W3', { id: 'wamid.x2', status: 'sent', timestamp: 1762293311 }) as {
      entry: { changes: { value: { statuses: object[] } }[] }[];
    };
    body.entry[0]!.changes[0]!.value.statuses.push({
      id: 'wamid.other',
      status: 'sent',
      timestamp: 1762293311,
    });
    const mixed = [...second90012.slice(0, 3), { text: JSON.stringify(body), t: 0 }];
    const changed = withChanges(mixed, secondWabaChanges(itemsOf(mixed), LATENESS));
    expect(changed.map((l) => l.text)).toEqual([
      second90012[0]!.text,
      second90012[1]!.text,
      expect.stringContaining('"statuses":[{"id":"wamid.other"'),
    ]);
  });

  it("counts the horizon from the stream's newest event: a body's later items move it ahead", () => {
    // Seed 93070, shortened: W2's send log comes 24 h after W1's message was read (within the lateness), but
    // a body read before it (placed by its failure) delivers another message 30 h later: the stream's horizon
    // was past W1's read, which it rated and forgot, and W2's message was taken for a duplicate.
    const body = statusBody('W3', { id: 'wamid.x22', status: 'failed', timestamp: 1767454556 }) as {
      entry: { changes: { value: { statuses: object[] } }[] }[];
    };
    body.entry[0]!.changes[0]!.value.statuses.push({
      id: 'wamid.x22',
      status: 'delivered',
      timestamp: 1767562354,
    });
    const w1 = [
      statusBody('W1', { id: 'wamid.x8', status: 'sent', timestamp: 1767415681 }),
      { kind: 'status', at: '2026-01-03T04:48:07Z', id: 'wamid.x8', status: 'read', business: 'PN1' },
    ];
    const w2 = [
      {
        kind: 'outbound',
        at: '2026-01-04T04:58:44Z',
        waba: 'W2',
        business: 'PN2',
        user: '1',
        id: 'wamid.x8',
      },
      { kind: 'status', at: '2026-01-06T11:19:07Z', id: 'wamid.x8', status: 'delivered', user: '1' },
    ];
    const moved = itemsOf(lines(...w1, body, ...w2));
    expect(moved.map((i) => i.wm)).toEqual(
      [1767415681, 1767415687, 1767454556, 1767562354, 1767562354, 1767698347].map((t) => t * 1000),
    );
    // W2's send log goes, and the delivery naming no WABA: no message of the id is kept by then.
    expect(secondWabaChanges(moved, LATENESS).map((c) => [c.item.line, c.to])).toEqual([
      [3, []],
      [4, []],
    ]);
    expect(deliveredAfterReadChanges(moved, LATENESS).map((c) => [c.item.line, c.to])).toEqual([[4, []]]);
    // Without that body the horizon is 36 h behind W2's send log: W1's message is still kept.
    expect(secondWabaChanges(itemsOf(lines(...w1, ...w2)), LATENESS)).toEqual([]);
  });

  it('gives a status naming no WABA, after the first WABA was forgotten, to the messages still kept', () => {
    // Seed 93089, shortened: W1 and W2 send one id at once, W3 four days later; a read naming no WABA after
    // that reaches no message (W1's and W2's rated and forgotten, W3's taken for a duplicate). With W2's
    // message sent 11 h after W1's (met in time, still kept) and the read before W3's send, it goes to W2's.
    const send = (waba: string, at: string) => ({
      kind: 'outbound',
      at,
      waba,
      business: 'PN',
      user: '1',
      id: 'm',
    });
    const read = { kind: 'status', at: '2025-08-03T09:10:46Z', id: 'm', status: 'read', business: 'PN' };
    const apart = lines(
      send('W1', '2025-07-30T20:58:45Z'),
      send('W2', '2025-07-30T20:58:45Z'),
      send('W3', '2025-08-03T08:37:43Z'),
      read,
    );
    expect(secondWabaChanges(itemsOf(apart), LATENESS).map((c) => [c.item.line, c.to])).toEqual([
      [2, []],
      [3, []],
    ]);
    const kept = lines(
      send('W1', '2025-07-30T20:58:45Z'),
      send('W2', '2025-07-31T08:00:00Z'),
      { ...read, at: '2025-08-01T12:00:00Z' },
      send('W3', '2025-08-03T08:37:43Z'),
    );
    expect(secondWabaChanges(itemsOf(kept), LATENESS).map((c) => [c.item.line, c.to])).toEqual([
      [3, []],
      [2, ['W2']],
    ]);
  });

  it('says the limit only when rate over the changed lines gives what the stream gave', () => {
    // W2's first item lies 2.9 days after W1's: W2's items are a candidate too (the second-WABA limit), but
    // rate without them does not bill W2's message, which the stream did; the delivered report given to W2
    // alone does.
    const stream = canon(['W1 x4 at its read', 'W2 x4']);
    const rated: Line[][] = [];
    const rate = (l: Line[]) => {
      rated.push(l);
      const w2 = l.some((line) => line.text.includes('"waba":"W2"'));
      const late = l.find((line) => line.text.includes('"delivered"'));
      if (late === undefined || !w2) return canon(['W1 x4 at its delivery']);
      return late.text.includes('"waba":"W2"')
        ? canon(['W2 x4', 'W1 x4 at its read'])
        : canon(['W2 x4', 'W1 x4 at its delivery']);
    };
    expect(forgettingLimit(read91017, LATENESS, stream, rate, true)).toBe('DELIVERED_AFTER_READ');
    expect(rated).toHaveLength(3);
    // The second-WABA limit tried first: W2's send log goes; then with it the delivery naming no WABA, which
    // would reach no message the stream still kept (W1's was behind the horizon); then the delivery alone.
    const texts = read91017.map((l) => l.text);
    expect(rated[0]!.map((l) => l.text)).toEqual([texts[0], texts[1], texts[3]]);
    expect(rated[1]!.map((l) => l.text)).toEqual([texts[0], texts[1]]);
    expect(rated[2]![3]!.text).toContain('"waba":"W2"');
    expect(forgettingLimit(second90012, LATENESS, canon(['W2 x2']), () => canon(['W2 x2']), true)).toBe(
      'SECOND_WABA_FORGOTTEN',
    );
  });

  it('says a second delivered, past the horizon of the one the stream rated at, as DELIVERED_AGAIN (seed 93014)', () => {
    // Seed 93014, minimised: W1029's message delivered (no pricing) on 2026-09-30, then a second `delivered`
    // of it, with Meta's pricing, 70 h later (first in the file, ordered by time as the stream reads it).
    const [later, first] = lines(
      statusBody('1029', {
        id: 'wamid.o93014x2',
        status: 'delivered',
        timestamp: 1791047402,
        recipient_id: '8801712345678',
        pricing: { billable: true, pricing_model: 'PMP', category: 'authentication', type: 'regular' },
      }),
      statusBody('1029', {
        id: 'wamid.o93014x2',
        status: 'delivered',
        timestamp: '1790795167',
        recipient_id: '8801712345678',
      }),
    );
    // Each line at its time: the stream reads them in time order.
    const again = [
      { ...later!, t: 1_791_047_402_000 },
      { ...first!, t: 1_790_795_167_000 },
    ];
    const changes = deliveredAfterReadChanges(itemsOf(again), LATENESS, new Set(), ['delivered']);
    expect(changes.map((c) => [c.item.line, c.to])).toEqual([[0, []]]);
    // Within a lateness of 100 h the stream still holds the message: nothing to take away.
    expect(deliveredAfterReadChanges(itemsOf(again), 100 * H, new Set(), ['delivered'])).toEqual([]);
    // Read receipts alone are not this family's reports.
    expect(deliveredAfterReadChanges(itemsOf(again), LATENESS)).toEqual([]);
    // The stream's bill is rate's without the second report (its pricing unread: the category unknown).
    const stream = canon([]);
    const rate = (l: Line[]) =>
      l.some((line) => line.text.includes('pricing')) ? canon(['x2 0.0113']) : canon([]);
    expect(forgettingLimit(again, LATENESS, stream, rate, true)).toBe('DELIVERED_AGAIN');
    expect(forgettingLimit(again, LATENESS, canon(['x2 0.0113', 'another']), rate, true)).toBeUndefined();
  });

  it('leaves any other difference a mismatch', () => {
    // The stream's bill differs from rate over the changed lines too (another unit, another amount): not
    // this limit.
    const stream = canon(['W1 x4 at its read', 'W2 x4', 'W1 x9 missing in batch']);
    const rate = () => canon(['W1 x4 at its read', 'W2 x4']);
    expect(forgettingLimit(read91017, LATENESS, stream, rate, false)).toBeUndefined();
    expect(
      forgettingLimit(second90012, LATENESS, canon(['W2 x2 0.02']), () => canon(['W2 x2 0.01']), false),
    ).toBeUndefined();
    // A difference in findings alone is one only with --findings (strict).
    const withFinding: Canon = { ...canon(['W2 x2']), findings: ['a finding the stream alone says'] };
    expect(forgettingLimit(second90012, LATENESS, withFinding, () => canon(['W2 x2']), true)).toBeUndefined();
    expect(forgettingLimit(second90012, LATENESS, withFinding, () => canon(['W2 x2']), false)).toBe(
      'SECOND_WABA_FORGOTTEN',
    );
    // No item of either family (WABAs' items within the lateness, no late delivery): rate is not asked.
    let asked = 0;
    const count = () => {
      asked++;
      return canon([]);
    };
    expect(forgettingLimit(second90012, 200 * H, canon(['x']), count, false)).toBeUndefined();
    expect(forgettingLimit(read91017, 200 * H, canon(['x']), count, false)).toBeUndefined();
    expect(asked).toBe(0);
    // A stream that failed is never a documented limit.
    expect(forgettingLimit(second90012, LATENESS, { ...canon([]), error: 'exit 1' }, count, false)).toBe(
      undefined,
    );
  });
});
