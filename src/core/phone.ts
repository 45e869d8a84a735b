// Phone numbers as people write them → Meta's wa_id form (E.164 digits, no '+'): one rule for recipients of
// an estimate, `explain --user` and the users of event lines, so that a send log and a webhook name one user.

import { err, ok, type Result } from './result.js';

/** No '+', spaces, dashes, dots, brackets or leading 00; 7 to 15 digits must be left. */
export function normalisePhone(text: string): Result<string, string> {
  const compact = text.trim().replace(/[\s\-.()\u00a0]/g, '');
  if (compact === '') return err('no phone number');
  const digits = compact.startsWith('+')
    ? compact.slice(1)
    : compact.startsWith('00')
      ? compact.slice(2)
      : compact;
  if (!/^\d+$/.test(digits)) return err(`"${text}" is not a phone number: only digits, +, spaces and dashes`);
  if (digits.length < 7) return err(`"${text}" is too short for a number with its country code`);
  if (digits.length > 15) return err(`"${text}" is longer than the 15 digits of an international number`);
  return ok(digits);
}
