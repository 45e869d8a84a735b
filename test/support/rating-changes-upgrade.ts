// A re-rate as stores before SQLite migration 13 / PostgreSQL migration 14 kept it (its changed units inside
// `ratings.changes`), and what the upgrade must leave: the same summary, the units a row each, in order.
import { expect } from 'vitest';
import type { Store } from '../../src/store/store.js';

/** A re-rate's `changes` as older versions stored it: the changed units inside, keys in no sorted order. */
export const OLD_CHANGES =
  '{"period":{"from":"2025-10-01T00:00:00Z","to":null},"outside_period":null,"changed":2,"unchanged":7,' +
  '"totals":{"old":{"USD":{"amount":"1.5"}},"new":{"USD":{"amount":"1.25"}}},' +
  '"units":[{"unit":"u1","old":{"amount":"0.5","market":"Côte d’Ivoire"},"new":null},' +
  '{"unit":"u2","old":null,"new":{"amount":"0.25","category":"utility"}}]}';

/**
 * After the upgrade of a store holding a live rating `r1` (no changes) and a re-rate `r2` (`OLD_CHANGES`):
 * the re-rate's summary keeps its keys in order without `units`, and its units are paged in order.
 */
export async function expectChangesMoved(store: Store): Promise<void> {
  const { units } = JSON.parse(OLD_CHANGES) as { units: unknown[] };
  const [rerate, live] = await store.listRatings(10);
  expect(JSON.stringify(rerate!.changes)).toBe(OLD_CHANGES.replace(/,"units":\[.*\]/, ''));
  expect(live!.changes).toBeUndefined();
  const page = await store.listRatingChanges('r2', { limit: 1 });
  expect(JSON.stringify(page.units)).toBe(JSON.stringify([units[0]]));
  const rest = await store.listRatingChanges('r2', { limit: 5, cursor: page.nextCursor! });
  expect(JSON.stringify(rest)).toBe(JSON.stringify({ units: [units[1]], nextCursor: null }));
}
