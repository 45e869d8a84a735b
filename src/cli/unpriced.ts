// What the commands that rate (rate, import, explain, rerate) say at the end about charged units without a
// price and delivered messages that could not be rated, and the exit code that follows (README "Exit codes": 3).

import type { Finding } from '../core/units.js';
import { EXIT } from './exit-codes.js';

/** The help of `--allow-unpriced`, the same wherever a command rates. */
export const ALLOW_UNPRICED_HELP =
  'exit 0 even when some charged units have no price, or delivered messages could not be rated (they are listed in findings)';

/**
 * One finding as the table lists it: `CODE: message (×N)`, and `CODE: WABA W: message (×N)` for a finding of
 * one WABA whose message does not name it (NO_RATE, UNKNOWN_RECIPIENT…): such findings are counted per WABA,
 * so two WABAs with the same problem would otherwise be two identical lines, read as one problem said twice.
 * A portfolio's finding (META_TIER_AHEAD) names its portfolio, not the WABA of its first message.
 */
export function findingLine(finding: Finding): string {
  const count = typeof finding.count === 'number' && finding.count > 1 ? ` (×${finding.count})` : '';
  return `${finding.code}: ${wabaNamed(finding)}${finding.message}${count}`;
}

/**
 * One finding of a user's story (`explain`), as `findingLine` but saying whose its count is: the rating counts
 * a finding over its whole WABA, of which the story is one user. `(×1 in this story, of ×4 in WABA W1)` where
 * the story's share is known (`story_count`: findingsOfStory), else `(×4 in WABA W1)`.
 */
export function storyFindingLine(finding: Finding): string {
  const count = typeof finding.count === 'number' ? finding.count : 1;
  const other = typeof finding.other_waba === 'string' ? finding.other_waba : undefined;
  const whole =
    typeof finding.portfolio === 'string'
      ? `portfolio ${finding.portfolio}`
      : typeof finding.waba === 'string' && finding.waba !== ''
        ? other === undefined
          ? `WABA ${finding.waba}`
          : `WABAs ${finding.waba} and ${other}`
        : 'the input';
  const own = typeof finding.story_count === 'number' ? finding.story_count : undefined;
  const counted =
    own === undefined
      ? count > 1
        ? ` (×${count} in ${whole})`
        : ''
      : count > 1 || own > 1
        ? ` (×${own} in this story, of ×${count} in ${whole})`
        : '';
  return `${finding.code}: ${wabaNamed(finding)}${finding.message}${counted}`;
}

/** `WABA W: ` for a finding of one WABA whose message does not name it, else ''. */
function wabaNamed(finding: Finding): string {
  const { waba } = finding;
  return typeof waba === 'string' &&
    waba !== '' &&
    finding.portfolio === undefined &&
    !finding.message.includes(waba)
    ? `WABA ${waba}: `
    : '';
}

/**
 * Delivered messages that findings say could not be rated: what the rater counts as `unrated` (every
 * UNKNOWN_CATEGORY; STATUS_WITHOUT_USER only for delivered messages, not for those with statuses alone).
 */
export function unratedIn(findings: readonly Finding[]): number {
  let unrated = 0;
  for (const finding of findings) {
    if (isUnratedFinding(finding)) unrated += typeof finding.count === 'number' ? finding.count : 1;
  }
  return unrated;
}

const UNRATED_CODES = ['UNKNOWN_CATEGORY', 'STATUS_WITHOUT_USER'];

function isUnratedFinding(finding: Finding): boolean {
  return (
    finding.code === 'UNKNOWN_CATEGORY' ||
    (finding.code === 'STATUS_WITHOUT_USER' && finding.message.startsWith('delivered message'))
  );
}

/** The codes of the findings that `unratedIn` counts, each once, in the order the warning names them. */
export function unratedCodesIn(findings: readonly Finding[]): string[] {
  const codes = new Set<string>(findings.filter(isUnratedFinding).map((finding) => finding.code));
  return UNRATED_CODES.filter((code) => codes.has(code));
}

/**
 * Exit 3 when some charged units have no price or some delivered messages could not be rated, with one
 * warning for each (told to `warn`, without prefix or newline), unless `--allow-unpriced` accepts them; 0
 * otherwise. The rule of every command that rates (`rate`, `import`, `explain`, `rerate`: README "Exit
 * codes"); `of` says whose units and messages they are when that is not plain (`rerate`: "of the new rating").
 */
export function unpricedExit(
  counts: {
    unpriced: number;
    unrated: number;
    /** The findings that tell of the unrated messages (`unratedCodesIn`); both codes when not given. */
    unratedCodes?: readonly string[];
  },
  allowUnpriced: boolean | undefined,
  warn: (message: string) => void,
  of?: string,
): number {
  const { unpriced, unrated } = counts;
  if ((unpriced === 0 && unrated === 0) || allowUnpriced) return EXIT.OK;
  const whose = of === undefined ? '' : ` ${of}`;
  if (unpriced > 0) {
    warn(
      `${unpriced} charged unit(s)${whose} could not be priced (see findings: unknown number, no rate or no rate card); pass --allow-unpriced to accept`,
    );
  }
  if (unrated > 0) {
    const codes =
      counts.unratedCodes === undefined || counts.unratedCodes.length === 0
        ? UNRATED_CODES
        : counts.unratedCodes;
    const see = `see finding${codes.length > 1 ? 's' : ''} ${codes.join(' and ')}`;
    warn(
      `${unrated} delivered message(s)${whose} could not be rated (${see}: feed the send log too); pass --allow-unpriced to accept`,
    );
  }
  return EXIT.UNPRICED;
}

/**
 * Said when rate cards were given (`--rate-cards`) and some dates of the rating have no card (`NO_RATE_CARD`):
 * the cards given replace `replaced`, they are not added to them, so a new card given alone ("re-rate under the
 * new card") leaves every date before it without one, and those charges out of the bill. `keep` says how to
 * give the other cards too. Undefined when there is nothing to say.
 */
export function replacedCardsNote(
  findings: readonly Finding[],
  replaced: string,
  keep: string,
): string | undefined {
  if (!findings.some((finding) => finding.code === 'NO_RATE_CARD')) return undefined;
  return `--rate-cards replaces ${replaced}, it does not add to them: the dates of the NO_RATE_CARD finding(s) have no card among those given; give their cards too (${keep})`;
}
