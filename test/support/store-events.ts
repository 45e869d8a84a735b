// One event for the store tests that only need something stored (reopen, read-only opens), on both engines.
import type { InboundEvent } from '../../src/core/events.js';

export const ONE_INBOUND: InboundEvent = {
  kind: 'inbound',
  atMs: 1,
  waba: 'W1',
  business: 'PN1',
  user: '1',
  id: 'm1',
  hasReferral: false,
};
