// Parsing of flag values shared by commands (durations, eras, formats), with errors that say what to type.

import { InvalidArgumentError } from 'commander';
import { ERAS, type Era } from '../core/units.js';

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(value: string): number {
  const match = DURATION.exec(value.trim());
  if (!match)
    throw new InvalidArgumentError(
      `"${value}" is not a duration: use a number and a unit, e.g. 90m, 24h, 7d`,
    );
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

export function parseEra(value: string): Era {
  const era = ERAS.find((e) => e.toLowerCase() === value.trim().toLowerCase());
  if (!era) throw new InvalidArgumentError(`"${value}" is not an era: use one of ${ERAS.join(', ')}`);
  return era;
}

export function choice<T extends string>(allowed: readonly T[]) {
  return (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`"${value}" is not one of ${allowed.join(', ')}`);
    }
    return value as T;
  };
}

/**
 * A file or folder given to a flag. An option takes the next word whatever it is, so `--rate-cards --format
 * csv` would read a rate card named "--format": a value that starts with `--` is a forgotten value instead.
 */
export function pathArgument(value: string): string {
  if (value.startsWith('--')) {
    throw new InvalidArgumentError(
      `"${value}" is an option, not a file or folder: the flag needs a path before the next option`,
    );
  }
  return value;
}

/**
 * Paths of a repeatable flag (`--rate-cards a.csv --rate-cards tiers/`), each checked by `pathArgument`.
 * Repeating the flag, rather than listing paths after it, keeps the positional event sources unambiguous.
 */
export function collectPaths(value: string, previous: string[] = []): string[] {
  return [...previous, pathArgument(value)];
}

/** The help line of `--rate-cards` on every rating command. */
export const RATE_CARDS_HELP =
  'rate card CSV file or folder; repeat the flag for several (--rate-cards a.csv --rate-cards tiers/); default: the bundled cards';
