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

/** Prints micros as the shortest exact decimal string: 1400 → "0.0014", 0 → "0", 2_500_000 → "2.5". */
export function formatMicros(micros: number): string {
  if (!Number.isSafeInteger(micros)) throw new Error(`money out of exact range: ${micros}`);
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / MICROS_PER_UNIT);
  const fraction = String(abs % MICROS_PER_UNIT)
    .padStart(6, '0')
    .replace(/0+$/, '');
  return fraction ? `${sign}${whole}.${fraction}` : `${sign}${whole}`;
}

/** Adds micros, refusing to leave the range where integers are exact. */
export function addMicros(a: number, b: number): number {
  const sum = a + b;
  if (!Number.isSafeInteger(sum)) throw new Error(`money sum out of exact range: ${a} + ${b}`);
  return sum;
}
