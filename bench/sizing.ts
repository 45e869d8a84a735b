// Table 3d of `npm run bench`: the service held to Meta's own sizing rule for a webhook endpoint, at fixed
// rates, instead of against a no-op route. Meta asks an endpoint to take three status webhooks a second for
// each message the business sends a second (sent, delivered, read), and to answer them with a median under
// 250 ms and fewer than 1 % of answers over 1 s. The levels are messages sent a second: Meta's default
// throughput for a business number (80) and its upgraded one (1,000).
//
// Pure parts only: the levels, the flag's reading and the verdict (tested in test/sizing.test.ts). The runs
// themselves are in bench/main.ts, beside table 3's.

/** Status webhooks Meta sends for each message sent: sent, delivered, read. */
export const WEBHOOKS_PER_MESSAGE = 3;

/** Messages sent a second: Meta's default throughput for a business number, and its upgraded one. */
export const DEFAULT_SIZING_MPS: readonly number[] = [80, 1_000];

/** Connections the client spreads a level's rate over: enough to hold the rate with answers of 30 ms. */
export const SIZING_CONNECTIONS = 100;

/** Meta's latency standard for a webhook endpoint. */
export const MEDIAN_LIMIT_MS = 250;
export const SLOW_ANSWER_MS = 1_000;

/**
 * Part of the asked rate a run must take to count as keeping it. autocannon paces by the second (each
 * connection's share of a second's requests, then a wait for the next second), so the run's first and last
 * seconds may fall a little short of the rate with a server that keeps up.
 */
export const KEPT_RATE_SHARE = 0.95;

/**
 * Reads `--sizing-mps`: a comma-separated list of messages sent a second (positive integers, `_` allowed as
 * a thousands separator), or `none` for no sizing runs. Nothing given: Meta's two throughput levels.
 */
export function parseSizingMps(text: string | undefined): number[] {
  if (text === undefined) return [...DEFAULT_SIZING_MPS];
  if (text.trim().toLowerCase() === 'none') return [];
  const levels = text.split(',').map((item) => item.trim());
  const values: number[] = [];
  for (const item of levels) {
    const value = Number(item.replace(/_/g, ''));
    if (item === '' || !Number.isInteger(value) || value <= 0)
      throw new Error(
        `--sizing-mps takes messages sent a second, positive integers separated by commas (e.g. 80,1000), or none; got "${text}"`,
      );
    values.push(value);
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

/** What one sizing run measured. */
export interface SizingMeasure {
  askedPerSecond: number;
  takenPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers other than 2xx, connection errors and timeouts. */
  failed: number;
}

export interface SizingVerdict {
  meets: boolean;
  /** Each way the run missed Meta's standard, in words; empty when it meets it. */
  misses: string[];
}

/** Whether a run met Meta's standard: the rate kept, median under 250 ms, p99 under 1 s, every answer 2xx. */
export function sizingVerdict(run: SizingMeasure): SizingVerdict {
  const misses: string[] = [];
  if (run.takenPerSecond < KEPT_RATE_SHARE * run.askedPerSecond)
    misses.push(
      `took ${Math.round(run.takenPerSecond)} webhooks/s of the ${Math.round(run.askedPerSecond)} asked`,
    );
  if (run.p50Ms >= MEDIAN_LIMIT_MS) misses.push(`median ${run.p50Ms} ms (Meta: under ${MEDIAN_LIMIT_MS} ms)`);
  // p99 under 1 s: fewer than 1 % of the answers took longer.
  if (run.p99Ms >= SLOW_ANSWER_MS)
    misses.push(
      `p99 ${run.p99Ms} ms: 1 % or more of the answers over ${SLOW_ANSWER_MS / 1000} s (Meta: fewer)`,
    );
  if (run.failed > 0) misses.push(`${run.failed} not answered 2xx`);
  return { meets: misses.length === 0, misses };
}
