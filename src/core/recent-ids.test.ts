import { describe, expect, it } from 'vitest';
import { RecentIds } from './recent-ids.js';

const DAY = 86_400_000;

describe('RecentIds', () => {
  it('remembers an id for at least the retention, then forgets it with its generation', () => {
    const ids = new RecentIds(7 * DAY, DAY);
    ids.add('a', 10 * DAY + 5);
    ids.forgetBefore(17 * DAY + 5);
    expect(ids.has('a')).toBe(true);
    ids.forgetBefore(18 * DAY - 1); // its generation ends at day 11: kept until day 18
    expect(ids.has('a')).toBe(true);
    ids.forgetBefore(18 * DAY);
    expect(ids.has('a')).toBe(false);
    expect(ids.size).toBe(0);
  });

  it('an id added out of order is kept at least as long as asked', () => {
    const ids = new RecentIds(7 * DAY, DAY);
    ids.add('new', 20 * DAY);
    ids.add('old', 3 * DAY);
    ids.forgetBefore(11 * DAY);
    expect(ids.has('old')).toBe(true);
    expect(ids.has('unknown')).toBe(false);
    expect(ids.size).toBe(2);
  });
});
