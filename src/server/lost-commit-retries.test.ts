// Writes whose COMMIT reached the database but whose answer was lost (503), then posted again: the retry finds
// them duplicates, and the service must still rate every WABA their first write would have rated (app.ts
// `wabasNamed`; lost-commit-answer.test.ts has the plain case). Simulated by a second connection that stores the
// write behind the service's back (test/support/lost-commit.ts).

import { describe, expect, it } from 'vitest';
import { withLostCommitService } from '../../test/support/lost-commit.js';

const STATUS_PRICED = { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' };

describe('a status naming no WABA stored though its answer was lost, then posted again', () => {
  // Contract §1 lets a status omit its WABA: the line names no WABA to rate — the WABA is its message's.
  const outbound = {
    kind: 'outbound',
    at: '2025-10-08T06:00:00Z',
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    id: 'wamid.lostunnamed1',
    template: 'utility',
  };
  const status = {
    kind: 'status',
    at: '2025-10-08T06:00:03Z',
    id: 'wamid.lostunnamed1',
    status: 'delivered',
  };

  it("rates its message's WABA when the retry is a duplicate", async () => {
    await withLostCommitService(async (service) => {
      expect(await service.post(outbound)).toMatchObject({ accepted: 1 });
      // Sent, never delivered: pending, no unit yet.
      expect(await service.units()).toHaveLength(0);
      await service.storeBehind(status);
      expect(await service.post(status)).toMatchObject({ accepted: 0, duplicates: 1 });
      expect(await service.units()).toHaveLength(1);
    });
  });
});

describe('an inbound moving a number, stored though its answer was lost, then posted again', () => {
  // An inbound that moves a business number to a smaller WABA moves the statuses naming no WABA placed by that
  // number with it (store.ts relistedWabas: its former owner is rated again), or the former owner's stored bill
  // keeps the status's unit that the new owner's bill now holds too.
  const ownerBefore = {
    kind: 'outbound',
    at: '2025-10-08T05:00:00Z',
    waba: 'W2',
    business: 'PN1',
    user: '919876543210',
    id: 'wamid.relist0',
    template: 'utility',
  };
  const status = {
    kind: 'status',
    at: '2025-10-08T06:00:03Z',
    business: 'PN1',
    user: '919876543211',
    id: 'wamid.relist1',
    status: 'delivered',
    pricing: STATUS_PRICED,
  };
  const inbound = {
    kind: 'inbound',
    at: '2025-10-08T07:00:00Z',
    waba: 'W1',
    business: 'PN1',
    user: '919876543212',
    id: 'wamid.relistin',
  };

  it("rates the number's former owner too when the retry is a duplicate", async () => {
    await withLostCommitService(async (service) => {
      await service.post(ownerBefore);
      await service.post(status);
      // Placed by its number with the number's only owner.
      expect(await service.units()).toEqual([['u_wamid.relist1', 'W2']]);
      await service.storeBehind(inbound);
      expect(await service.post(inbound)).toMatchObject({ accepted: 0, duplicates: 1 });
      // Before, W2 was not rated again: the unit was billed twice, to W1 and W2.
      expect(await service.units()).toEqual([['u_wamid.relist1', 'W1']]);
    });
  });
});

describe("a status's message on another number, stored though its answer was lost, then posted again", () => {
  // A status naming no WABA whose message is stored nowhere is placed by its business number (its owner: here
  // W3, by PN9). Its message, arriving later on another WABA and number (W1, PN1), takes it into W1's scope:
  // the write re-lists W3 (store.ts relistedWabas), which must be rated again to drop it, though the retry
  // names neither W3 nor PN9.
  const numberOwner = {
    kind: 'outbound',
    at: '2025-10-08T05:00:00Z',
    waba: 'W3',
    business: 'PN9',
    user: '919876543210',
    id: 'wamid.place0',
    template: 'utility',
  };
  const status = {
    kind: 'status',
    at: '2025-10-08T06:00:03Z',
    business: 'PN9',
    user: '919876543211',
    id: 'wamid.place1',
    status: 'delivered',
    pricing: STATUS_PRICED,
  };
  const message = {
    kind: 'outbound',
    at: '2025-10-08T06:00:00Z',
    waba: 'W1',
    business: 'PN1',
    user: '919876543211',
    id: 'wamid.place1',
    template: 'marketing',
  };

  it('rates the WABA the status was placed with too when the retry is a duplicate', async () => {
    await withLostCommitService(async (service) => {
      await service.post(numberOwner);
      await service.post(status);
      // Its message stored nowhere: placed by its number with the number's owner.
      expect(await service.units()).toEqual([['u_wamid.place1', 'W3']]);
      await service.storeBehind(message);
      expect(await service.post(message)).toMatchObject({ accepted: 0, duplicates: 1 });
      // Before, W3 was not rated again: the unit was billed twice, to W1 and W3.
      expect(await service.units()).toEqual([['u_wamid.place1', 'W1']]);
    });
  });
});
