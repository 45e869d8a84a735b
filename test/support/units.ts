// A billable unit for tests that need one without rating anything: a charged India utility message of the
// per-message era (USD), every field overridable.

import type { BillableUnit } from '../../src/core/units.js';

export function billableUnit(overrides: Partial<BillableUnit> & { id: string }): BillableUnit {
  return {
    unit: 'message',
    pricingModel: 'PMP',
    era: 'PMP-2025',
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    country: 'IN',
    market: 'India',
    category: 'utility',
    type: 'regular',
    openedAtMs: Date.parse('2025-10-15T00:00:00Z'),
    expiresAtMs: null,
    messages: [overrides.id],
    rateMicros: 1400,
    amountMicros: 1400,
    currency: 'USD',
    rateCard: 'usd-2025-10-01',
    rule: 'PMP_CHARGED',
    ...overrides,
  };
}
