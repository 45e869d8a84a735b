// A token bucket per client (IP address): `burst` requests at once, refilled at `perSecond`. Time comes
// from the injected clock so tests can move it. Memory is bounded: full buckets are forgotten.

import type { RateLimitConfig } from './config.js';

export interface RateLimitVerdict {
  isAllowed: boolean;
  /** Whole seconds until one request is allowed again (for Retry-After), 0 when allowed. */
  retryAfterSeconds: number;
}

const MAX_CLIENTS = 10_000;

export function createRateLimiter(config: RateLimitConfig, clock: () => number) {
  const buckets = new Map<string, { tokens: number; atMs: number }>();

  function refill(bucket: { tokens: number; atMs: number }, nowMs: number): void {
    const elapsedMs = Math.max(0, nowMs - bucket.atMs);
    bucket.tokens = Math.min(config.burst, bucket.tokens + (elapsedMs * config.perSecond) / 1000);
    bucket.atMs = nowMs;
  }

  function forgetFullBuckets(nowMs: number): void {
    for (const [client, bucket] of buckets) {
      refill(bucket, nowMs);
      if (bucket.tokens >= config.burst) buckets.delete(client);
    }
  }

  return {
    /** Counts one request of `client`: allowed while its bucket holds a token. */
    take(client: string): RateLimitVerdict {
      const nowMs = clock();
      let bucket = buckets.get(client);
      if (!bucket) {
        if (buckets.size >= MAX_CLIENTS) forgetFullBuckets(nowMs);
        bucket = { tokens: config.burst, atMs: nowMs };
        buckets.set(client, bucket);
      } else {
        refill(bucket, nowMs);
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { isAllowed: true, retryAfterSeconds: 0 };
      }
      const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / config.perSecond));
      return { isAllowed: false, retryAfterSeconds };
    },
  };
}
