import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isSameEvent, mergeCopies } from './event-copies.js';
import type { CoreEvent, InboundEvent, OutboundEvent, StatusEvent } from './events.js';

const SEED = 20261203;

const inbound: InboundEvent = {
  kind: 'inbound',
  atMs: 1_000,
  waba: 'W1',
  business: 'PN1',
  user: '919876543210',
  id: 'wamid.in1',
  hasReferral: false,
};
const sent: OutboundEvent = {
  kind: 'outbound',
  atMs: 2_000,
  waba: 'W1',
  business: 'PN1',
  user: '919876543210',
  id: 'wamid.o1',
  template: 'utility',
};
const bareStatus: StatusEvent = {
  kind: 'status',
  atMs: 3_000,
  id: 'wamid.o1',
  status: 'delivered',
  waba: 'W1',
};
const metaStatus: StatusEvent = {
  ...bareStatus,
  business: 'PN1',
  user: '919876543210',
  pricing: { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' },
};

describe('mergeCopies', () => {
  it('keeps the referral a CRM copy of an inbound message lacks, in either order', () => {
    const webhook: InboundEvent = { ...inbound, hasReferral: true, userCountryHint: 'IN' };
    for (const [a, b] of [
      [inbound, webhook],
      [webhook, inbound],
    ]) {
      const { event, disagreements } = mergeCopies(a!, b!);
      expect(event).toEqual(webhook);
      expect(disagreements).toEqual([]);
    }
  });

  it('completes a bare status with the recipient and pricing of Meta’s copy, naming no disagreement', () => {
    expect(mergeCopies(bareStatus, metaStatus)).toEqual({ event: metaStatus, disagreements: [] });
    expect(mergeCopies(metaStatus, bareStatus)).toEqual({ event: metaStatus, disagreements: [] });
  });

  it('keeps the costlier category of two send-log copies and names the disagreement', () => {
    const asMarketing: OutboundEvent = { ...sent, template: 'marketing' };
    const asService: OutboundEvent = { ...sent, template: null };
    expect(mergeCopies(sent, asMarketing).event).toEqual({ ...asMarketing, copiesDisagreeOn: ['template'] });
    expect(mergeCopies(asMarketing, sent).disagreements).toEqual(['template']);
    expect(mergeCopies(asService, sent).event).toMatchObject({ template: 'utility' });
  });

  it('takes the earliest instant, the earliest delivery and a failure either copy tells of', () => {
    const late: OutboundEvent = { ...sent, atMs: 9_000, deliveredAtMs: 9_500 };
    const early: OutboundEvent = { ...sent, deliveredAtMs: 12_000, isFailed: true };
    expect(mergeCopies(late, early).event).toEqual({ ...sent, deliveredAtMs: 9_500, isFailed: true });
  });

  it('keeps what each copy of a status named of its recipient, and the same one whichever came first', () => {
    // `wameter rate` reads each copy of a status (RECIPIENT_DISAGREES for numbers of two countries, nothing
    // for a business-scoped id and its number): no disagreement of copies, but the names the rater reads.
    const other: StatusEvent = { ...metaStatus, user: '447700900123' };
    const one = mergeCopies(metaStatus, other);
    expect(one.disagreements).toEqual([]);
    expect(one.event).toEqual(mergeCopies(other, metaStatus).event);
    expect((one.event as StatusEvent).user).toBe('447700900123');
    expect((one.event as StatusEvent).namesOfCopies).toEqual([
      { business: metaStatus.business, user: '447700900123' },
      { business: metaStatus.business, user: metaStatus.user },
    ]);
    expect((one.event as StatusEvent).copiesDisagreeOn).toBeUndefined();
  });

  it('keeps what earlier merges found when a third copy agrees', () => {
    const first = mergeCopies(sent, { ...sent, template: 'marketing' }).event;
    const { event, disagreements } = mergeCopies(first, { ...sent, template: 'marketing' });
    expect(disagreements).toEqual([]);
    expect(event).toMatchObject({ template: 'marketing', copiesDisagreeOn: ['template'] });
  });

  it('refuses two events of different kinds (a bug, not input)', () => {
    expect(() => mergeCopies(inbound, sent)).toThrow(/not copies of one event/);
  });

  it(`is the same in any order, and merging a copy in again changes nothing (seed ${SEED})`, () => {
    const copy = fc.record(
      {
        atMs: fc.integer({ min: 0, max: 5 }),
        business: fc.constantFrom('PN1', 'PN2'),
        user: fc.constantFrom('919876543210', '447700900123'),
        template: fc.constantFrom('marketing', 'utility', 'authentication', null),
        templateName: fc.constantFrom('a', 'b'),
        deliveredAtMs: fc.integer({ min: 0, max: 9 }),
        isFailed: fc.constant(true),
      },
      { requiredKeys: ['atMs', 'template'] },
    );
    fc.assert(
      fc.property(fc.array(copy, { minLength: 2, maxLength: 4 }), (copies) => {
        const events = copies.map((c) => ({ ...sent, ...c }) as CoreEvent);
        const merge = (list: CoreEvent[]) => list.reduce((a, b) => mergeCopies(a, b).event);
        const forward = merge(events);
        expect(isSameEvent(forward, merge([...events].reverse()))).toBe(true);
        expect(isSameEvent(forward, mergeCopies(forward, events[0]!).event)).toBe(true);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});
