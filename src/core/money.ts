// Exact money: integers of 10⁻⁶ currency units ("micros"), parsed from and printed as decimal strings.
// Never a binary float: a rate string is split at the point and read digit by digit.

import { err, ok, type Result } from './result.js';

export const MICROS_PER_UNIT = 1_000_000;

export type MoneyError = { code: 'BAD_AMOUNT'; message: string };

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/** Parses "0.0014" → 1400. More than six decimals is refused unless the extra digits are zeros. */
export function parseMicros(text: string): Result<number, MoneyError> {
  const trimmed = text.trim();
  const match = DECIMAL.exec(trimmed);
  if (!match) return err({ code: 'BAD_AMOUNT', message: `"${text}" is not a decimal amount` });
  const [, sign, whole = '0', fraction = ''] = match;
  const significant = fraction.replace(/0+$/, '');
  if (significant.length > 6) {
    return err({
      code: 'BAD_AMOUNT',
      message: `"${text}" has more than 6 decimals; wameter holds money in millionths of a currency unit`,
    });
  }
  const micros = Number(whole) * MICROS_PER_UNIT + Number(significant.padEnd(6, '0'));
  if (!Number.isSafeInteger(micros)) return err({ code: 'BAD_AMOUNT', message: `"${text}" is too large` });
  return ok(sign ? -micros : micros);
}

/**
 * Prints micros as the shortest exact decimal string: 1400 → "0.0014", 0 → "0", 2_500_000 → "2.5". Sums
 * beyond 2^53 micros are bigints (TotalsAccumulator).
 */
export function formatMicros(micros: number | bigint): string {
  if (typeof micros === 'bigint') {
    const sign = micros < 0n ? '-' : '';
    const abs = micros < 0n ? -micros : micros;
    const fraction = String(abs % 1_000_000n)
      .padStart(6, '0')
      .replace(/0+$/, '');
    const whole = String(abs / 1_000_000n);
    return fraction ? `${sign}${whole}.${fraction}` : `${sign}${whole}`;
  }
  if (!Number.isSafeInteger(micros)) throw new Error(`money out of exact range: ${micros}`);
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / MICROS_PER_UNIT);
  const fraction = String(abs % MICROS_PER_UNIT)
    .padStart(6, '0')
    .replace(/0+$/, '');
  return fraction ? `${sign}${whole}.${fraction}` : `${sign}${whole}`;
}

/** The largest amount wameter holds exactly: 9,007,199,254.740991 currency units (2^53 − 1 micros). */
export const MAX_EXACT_AMOUNT = formatMicros(Number.MAX_SAFE_INTEGER);

/** A sum of money beyond MAX_EXACT_AMOUNT: refused rather than rounded. */
export class MoneyRangeError extends Error {
  constructor() {
    super(
      `a total exceeds ${MAX_EXACT_AMOUNT} currency units, the largest amount this computation adds ` +
        'exactly (millions of messages billed in a currency such as IDR can reach it): ask for fewer WABAs ' +
        'or a shorter period at a time (`wameter rate` and the service print any total exactly)',
    );
    this.name = 'MoneyRangeError';
  }
}

/**
 * An exact amount in micros: a number while it is a safe integer, a bigint beyond (sums of many units in a
 * currency such as IDR pass 2^53 micros, 9,007,199,254.74 units). `exactMicros` normalises.
 */
export type Micros = number | bigint;

/** `value` as a number when that is exact, else as itself. */
export function exactMicros(value: bigint): Micros {
  return value >= -MAX_SAFE && value <= MAX_SAFE ? Number(value) : value;
}

/** An integer amount read from a database (number, bigint or decimal text), exact. */
export function microsOf(value: unknown): Micros {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new MoneyRangeError();
    return value;
  }
  if (typeof value === 'bigint') return exactMicros(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return exactMicros(BigInt(value));
  throw new Error(`not an amount in micros: ${String(value)}`);
}

/** Adds exact amounts: a number while the sum is a safe integer, a bigint beyond. Never rounds. */
export function sumMicros(a: Micros, b: Micros): Micros {
  if (typeof a === 'number' && typeof b === 'number') {
    const sum = a + b;
    if (Number.isSafeInteger(sum)) return sum;
  }
  return exactMicros(BigInt(a) + BigInt(b));
}

/** `-value`, exact. */
export function negateMicros(value: Micros): Micros {
  return typeof value === 'bigint' ? exactMicros(-value) : -value;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
