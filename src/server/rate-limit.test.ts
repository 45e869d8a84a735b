import { beforeEach, describe, expect, it } from 'vitest';
import { createRateLimiter } from './rate-limit.js';

describe('createRateLimiter', () => {
  const clock = { nowMs: 0 };
  const limiterOf = (perSecond: number, burst: number) =>
    createRateLimiter({ perSecond, burst }, () => clock.nowMs);
  beforeEach(() => {
    clock.nowMs = 0;
  });

  it('allows a burst, then refuses with the seconds until the next token', () => {
    const limiter = limiterOf(2, 3);
    expect([1, 2, 3].map(() => limiter.take('a').isAllowed)).toEqual([true, true, true]);
    expect(limiter.take('a')).toEqual({ isAllowed: false, retryAfterSeconds: 1 });
    clock.nowMs += 500; // one token back at 2 a second
    expect(limiter.take('a').isAllowed).toBe(true);
    expect(limiter.take('a').isAllowed).toBe(false);
  });

  it('keeps one bucket per client', () => {
    const limiter = limiterOf(1, 1);
    expect(limiter.take('a').isAllowed).toBe(true);
    expect(limiter.take('a').isAllowed).toBe(false);
    expect(limiter.take('b').isAllowed).toBe(true);
  });

  it('never refills past the burst', () => {
    const limiter = limiterOf(10, 2);
    limiter.take('a');
    clock.nowMs += 60_000;
    expect([1, 2, 3].map(() => limiter.take('a').isAllowed)).toEqual([true, true, false]);
  });
});
