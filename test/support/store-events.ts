// One event for the store tests that only need something stored (reopen, read-only opens), on both engines.
import type { CoreEvent, InboundEvent } from '../../src/core/events.js';

export const ONE_INBOUND: InboundEvent = {
  kind: 'inbound',
  atMs: 1,
  waba: 'W1',
  business: 'PN1',
  user: '1',
  id: 'm1',
  hasReferral: false,
};

/**
 * A store's listing as the events were written: without the mark a listing puts on a row that ties nothing
 * (`isUntied`, for the rater), which the tests of what is stored do not look at (the contract suite tests the
 * mark on its own).
 */
export async function listingOf(
  store: { listEvents(wabas?: readonly string[]): Promise<CoreEvent[]> },
  wabas?: readonly string[],
): Promise<CoreEvent[]> {
  return (await store.listEvents(wabas)).map((event) => {
    if (!('isUntied' in event)) return event;
    const copy = { ...event };
    delete copy.isUntied;
    return copy;
  });
}
