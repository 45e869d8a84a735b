// Who may read a unit's volume-tier count. Tiers count per portfolio (pricing-rules.md §5.3): a tiered unit's
// `tier.count` is the whole portfolio's running count of its market × category × month, its mates' charges
// included. To an API key limited to some WABAs of a shared portfolio that count would tell how many charged
// messages the other WABAs — another client's — sent, and when (docs/dashboard.md: a key learns its mates'
// charges through the band alone). So such a key is answered the band and the month, and `count: null`; a key
// that may read every WABA of the portfolio (a `*` key too) sees the count.

import { withheldTierCount, type UnitJson } from '../core/report.js';

/** Whether the caller may read the tier counts of a WABA's units (every WABA of its portfolio is its). */
export type TierCountReader = (waba: string) => Promise<boolean>;

/**
 * The reader of one request: `scope` the key's WABAs (undefined: every WABA), `portfolioOf` the WABAs of a
 * WABA's portfolio (RatingService.portfolioOf: the accounts file's and the stored ones — so that the answer
 * does not change when a mate's first event arrives, which would tell that too). One look per portfolio.
 */
export function tierCountReader(
  scope: readonly string[] | undefined,
  portfolioOf: (waba: string) => Promise<readonly string[]>,
): TierCountReader {
  if (scope === undefined) return () => Promise.resolve(true);
  const known = new Map<string, Promise<boolean>>();
  return (waba) => {
    let answer = known.get(waba);
    if (answer === undefined) {
      answer = portfolioOf(waba).then((wabas) => wabas.every((mate) => scope.includes(mate)));
      known.set(waba, answer);
    }
    return answer;
  };
}

/** Units' JSON as the caller may read them: the tier count withheld where `mayRead` says no. */
export async function unitsForReader(
  units: readonly UnitJson[],
  mayRead: TierCountReader,
): Promise<UnitJson[]> {
  const shown: UnitJson[] = [];
  for (const unit of units) {
    shown.push(unit.tier === undefined || (await mayRead(unit.waba)) ? unit : withheldTierCount(unit));
  }
  return shown;
}

/**
 * A quote's reason without the portfolio's count: `…, volume tier 4:6, message 4 of 2025-10)` (costInWords,
 * src/core/explain.ts) becomes `…, volume tier 4:6 in 2025-10)` — the band the price comes from, not the
 * position among the mates' charges.
 */
export function reasonWithoutTierCount(reason: string): string {
  return reason.replace(/, volume tier ([^,()]*), message \d+ of (\d{4}-\d{2})/g, ', volume tier $1 in $2');
}

/**
 * A `META_TIER_AHEAD` finding's words without the portfolio's count: `…, but wameter counted 5: some of the
 * portfolio's traffic…` (src/core/price-unit.ts) becomes `…, but wameter counted fewer: …`. Also for an
 * estimate's warnings, which carry a finding's words.
 */
export function wordsWithoutTierCount(text: string): string {
  return text.replace(/, but wameter counted \d+:/g, ', but wameter counted fewer:');
}

/** Findings as the caller may read them: a portfolio's count withheld from `META_TIER_AHEAD` where `mayRead` says no. */
export async function findingsForReader<F extends { code: string; message: string; waba?: unknown }>(
  findings: readonly F[],
  mayRead: TierCountReader,
): Promise<F[]> {
  const shown: F[] = [];
  for (const finding of findings) {
    const isWithheld =
      finding.code === 'META_TIER_AHEAD' &&
      typeof finding.waba === 'string' &&
      !(await mayRead(finding.waba));
    shown.push(isWithheld ? { ...finding, message: wordsWithoutTierCount(finding.message) } : finding);
  }
  return shown;
}
