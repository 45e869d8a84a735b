// A rating record for store tests: a live rating of W1 rated at instant 1, with `fields` replacing any of it.

import type { RatingRecord } from '../../src/store/store.js';

export function ratingRecord(id: string, fields: Partial<RatingRecord> = {}): RatingRecord {
  return {
    id,
    ratedAtMs: 1,
    reason: 'live',
    wabas: ['W1'],
    asOfRules: null,
    rateCards: [],
    totals: {},
    ...fields,
  };
}
