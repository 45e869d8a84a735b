import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRatingSetup } from './load-rating-setup.js';
import { rateSources } from './rate-sources.js';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'month');

describe('rateSources', () => {
  it('reads, rates and reports progress every N events', async () => {
    const setup = await loadRatingSetup({ accountsPath: join(EXAMPLE, 'accounts.json') });
    if (!setup.ok) throw new Error(setup.error.message);
    const progress: number[] = [];
    let units = 0;
    const result = await rateSources(
      [join(EXAMPLE, 'events.ndjson')],
      setup.value,
      { unit: () => (units += 1), pending: () => {} },
      { onProgress: (events) => progress.push(events), progressEvery: 1000 },
    );
    expect(result.read.events).toBe(3993);
    expect(progress).toEqual([1000, 2000, 3000]);
    expect(units).toBe(result.stats.units);
    expect(units).toBeGreaterThan(900);
  });
});
