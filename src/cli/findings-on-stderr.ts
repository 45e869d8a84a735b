// What a user must know about a CSV they were given, said beside it on stderr: a CSV holds one table (units,
// or the lines of a story), so the findings and the pending messages of the rating never go into it. Also
// the findings beside another table that has no room for them (`wameter rerate`'s).

import type { Finding } from '../core/units.js';
import { findingLine } from './unpriced.js';

/** Findings listed one by one; the rest are counted by code. */
const FINDINGS_SHOWN = 20;

/**
 * Tells (through `warn`, one line each, without prefix or newline) `heading`, then the findings, each with its
 * code, message and count (the first 20, then the rest counted by code). Nothing when there are none.
 */
export function sayFindings(
  findings: readonly Finding[],
  heading: string,
  warn: (line: string) => void,
  /** How one finding reads (`storyFindingLine` for a user's story). */
  lineOf: (finding: Finding) => string = findingLine,
): void {
  if (findings.length === 0) return;
  warn(heading);
  for (const finding of findings.slice(0, FINDINGS_SHOWN)) warn(`  ${lineOf(finding)}`);
  const rest = findings.slice(FINDINGS_SHOWN);
  if (rest.length > 0) {
    const byCode = new Map<string, number>();
    for (const finding of rest) byCode.set(finding.code, (byCode.get(finding.code) ?? 0) + 1);
    const tally = [...byCode]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .map(([code, count]) => `${count} × ${code}`);
    warn(`  … and ${rest.length} more: ${tally.join(', ')}`);
  }
}

/**
 * Tells on stderr (through `warn`, one line each, without prefix or newline) the findings, each with its
 * code, message and count (the first 20, then the rest counted by code), and — when given — how many
 * messages are pending. Nothing when there is neither.
 */
export function sayFindingsBesideCsv(
  findings: readonly Finding[],
  pending: number | undefined,
  warn: (line: string) => void,
  lineOf: (finding: Finding) => string = findingLine,
): void {
  sayFindings(
    findings,
    `${findings.length} finding(s), not in the CSV (--format json lists them too):`,
    warn,
    lineOf,
  );
  if (pending !== undefined && pending > 0) {
    warn(
      `${pending} pending message(s): sent, never delivered, so not charged and not in the CSV (--format json lists them)`,
    );
  }
}
