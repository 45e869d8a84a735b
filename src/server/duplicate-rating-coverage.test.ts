// What a duplicate, or a write answered 503, rates again (app.ts wabasNamed) must cover every WABA whose
// listing its first write changed: that write's COMMIT may have reached the database with its answer lost, and
// its retry, a duplicate, is then the only thing left to rate them (lost-commit-*.test.ts, one case each).
// Checked here over generated ingests (seeded), as the store's contract checks what an ingest names itself
// (store.contract.ts, relistedWabas): each ingest's listings before and after, against what its retry names
// once it is stored. Copies of one event never name another number or user here: a merge that takes a
// number's last tie from its owner is known not to be covered (docs/decisions.md, "A duplicate is rated again").

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventKey, type CoreEvent } from '../core/events.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { EventInput, Store } from '../store/store.js';
import { listingOf } from '../../test/support/store-events.js';
import { wabasNamed } from './app.js';

const T0 = Date.parse('2024-03-01T00:00:00Z');
const SEED = 20261205;
const WABAS = ['W1', 'W2', 'W10'];
const NUMBERS = ['PN1', 'PN2'];
const USERS = ['919876543210', '919876543211'];
const IDS = ['m1', 'm2'];

/** Each WABA's messages of each id, on one number (by WABA and id) to one user (by id). */
const MESSAGES = WABAS.flatMap((waba, w) =>
  IDS.flatMap((id, i): CoreEvent[] => {
    const business = NUMBERS[(w + i) % 2]!;
    const user = USERS[i]!;
    return [
      { kind: 'outbound', atMs: T0, waba, business, user, id, template: 'utility' },
      { kind: 'inbound', atMs: T0, waba, business, user, id, hasReferral: false },
      { kind: 'status', atMs: T0 + 1, waba, id, status: 'sent', business, user },
    ];
  }),
);
/** Statuses naming no WABA, of the messages' ids and of one stored nowhere, by number and user or neither. */
const UNNAMED_STATUSES = [...IDS, 'm4'].flatMap((id) =>
  [...NUMBERS, undefined].flatMap((business) =>
    USERS.map((user): CoreEvent => ({
      kind: 'status',
      atMs: T0 + 1,
      id,
      status: 'delivered',
      ...(business === undefined ? {} : { business, user }),
    })),
  ),
);

async function listings(store: Store): Promise<string[]> {
  return Promise.all(
    WABAS.map(async (waba) =>
      JSON.stringify((await listingOf(store, [waba])).map((event) => [eventKey(event), event]).sort()),
    ),
  );
}

describe('what a duplicate rates again', () => {
  it('names, for a status naming no WABA, the WABAs that may list it, not every stored WABA', async () => {
    const store = await openSqliteStore(':memory:');
    try {
      const trusted = (event: CoreEvent): EventInput => ({
        key: eventKey(event),
        event,
        receivedAtMs: T0,
        source: 'import',
      });
      const sent = (waba: string, id: string) =>
        MESSAGES.find((event) => event.kind === 'outbound' && event.waba === waba && event.id === id)!;
      // Three portfolios: W1's send log of m1 (PN1), W2's of m2 (PN1), W10's of m2 (PN2).
      await store.ingestEvents([sent('W1', 'm1'), sent('W2', 'm2'), sent('W10', 'm2')].map(trusted));
      // A status line naming no WABA of m1, sent twice: W1 holds its message, and only W1 is named.
      const status: CoreEvent = { kind: 'status', atMs: T0 + 1, id: 'm1', status: 'delivered' };
      expect(await store.ingestEvents([trusted(status)])).toMatchObject({ relistedWabas: ['W1'] });
      expect(await store.ingestEvents([trusted(status)])).toMatchObject({ duplicates: 1, relistedWabas: [] });
      expect([...(await wabasNamed([trusted(status)], store))]).toEqual(['W1']);
      // One naming PN2 as well (a copy merged into it): W10 ties PN2 and may place it — W2 still not named.
      const numbered: CoreEvent = { ...status, business: 'PN2', user: USERS[0]! };
      expect(await store.ingestEvents([trusted(numbered)])).toMatchObject({
        duplicates: 1,
        relistedWabas: ['W1', 'W10'],
      });
      expect([...(await wabasNamed([trusted(numbered)], store))].sort()).toEqual(['W1', 'W10']);
    } finally {
      await store.close();
    }
  });

  it(`covers every WABA whose listing its first write changed, over generated ingests (seed ${SEED})`, async () => {
    const writer = fc.constantFrom<[string, boolean]>(
      ['import', true],
      ['api:one', false],
      ['api:two', false],
    );
    const written = fc
      .tuple(fc.constantFrom(...MESSAGES, ...UNNAMED_STATUSES), writer)
      .map(([event, [source, isTrusted]]): EventInput => ({
        key: eventKey(event),
        event,
        receivedAtMs: T0,
        source,
        ...(isTrusted ? {} : { isBusinessTied: false }),
      }));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(written, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 8 }),
        async (requests) => {
          const store = await openSqliteStore(':memory:');
          try {
            for (const events of requests) {
              const before = await listings(store);
              await store.ingestEvents(events);
              const after = await listings(store);
              const named = await wabasNamed(events, store);
              const changed = WABAS.filter((_, i) => before[i] !== after[i]);
              expect(changed.filter((waba) => !named.has(waba))).toEqual([]);
            }
          } finally {
            await store.close();
          }
        },
      ),
      { seed: SEED, numRuns: 100 },
    );
  }, 120_000);
});
