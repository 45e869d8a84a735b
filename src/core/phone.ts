// Phone numbers as people write them → Meta's wa_id form (E.164 digits, no '+'): one rule for recipients of
// an estimate, `explain --user` and the users of event lines, so that a send log and a webhook name one user.

import { err, ok, type Result } from './result.js';

/**
 * A number written as a decimal: digits (after a `+` or not), one dot, then zeros only — `919876543210.0`, as a
 * spreadsheet column of numbers or a script's float writes a phone number. Read with its dot dropped, as
 * dots grouping digits are, it would be another number (`9198765432100`), a valid one in countries of
 * several lengths (`491701234567.0` → `4917012345670`, a German number): someone else, without a word.
 */
const DECIMAL_NUMBER = /^\+?\d{7,}\.0+$/;

/** Whether `text` is a phone number written as a decimal number (DECIMAL_NUMBER: `919876543210.0`). */
export function isDecimalNumber(text: string): boolean {
  return DECIMAL_NUMBER.test(text.trim());
}

/**
 * A long number as a spreadsheet shows it (`9.19877E+11`, `9,19877E+11` in a locale of decimal commas): the
 * digits past the sixth are gone, so no number can be read from it.
 */
const SCIENTIFIC_NUMBER = /^\d[.,]\d+e\+?\d+$/i;

/**
 * Characters that show nothing: zero-width spaces and joiners, direction marks and embeddings (WhatsApp and
 * Outlook copy a number as `U+202A+91 98765 43210U+202C`, a right-to-left spreadsheet adds U+200E), the word
 * joiner and a byte-order mark. In a number they are no part of it, as a space is not: kept, the number would
 * be a user of its own, priced by no market, its error showing nothing wrong.
 */
export const INVISIBLE_CHARACTER = /[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;
const INVISIBLE = new RegExp(INVISIBLE_CHARACTER.source, 'g');

const DECIMAL_DIGIT = /\p{Nd}/u;

/**
 * Digits of other scripts as ASCII digits, and full-width forms as their ASCII letters: a number typed on an
 * Arabic or Persian keyboard (`٩١٩٨٧٦…`, `۹۱۹۸۷۶…`), in Devanagari, or in a Japanese or Chinese input method's
 * full-width characters (`＋９１ ９８７６５…`) is the same number. Unicode's decimal digits come in runs of ten
 * from zero, so a digit's value is its distance from the start of its run.
 */
function asciiForm(text: string): string {
  if (!/[^\u0000-\u007f]/.test(text)) return text;
  return text.normalize('NFKC').replace(/\p{Nd}/gu, (digit) => {
    const point = digit.codePointAt(0)!;
    let zero = point;
    while (DECIMAL_DIGIT.test(String.fromCodePoint(zero - 1))) zero--;
    return String((point - zero) % 10);
  });
}

/**
 * No '+', spaces, dashes, dots, brackets, invisible marks or leading 00 (nor both, as in `+0091…`); digits of
 * any script are read as digits; 7 to 15 digits must be left, the first of them not 0 (no country code starts
 * with 0: `0987…` is a national number, its country unknown).
 */
export function normalisePhone(written: string): Result<string, string> {
  // Dropped before anything is looked at: `U+202A919876543210.0U+202C` is still a decimal number.
  const text = asciiForm(written.replace(INVISIBLE, ''));
  if (SCIENTIFIC_NUMBER.test(text.trim()))
    return err(
      `"${text}" is a number in scientific notation, as a spreadsheet shows a long number: its last digits are lost; format the phone column as text and copy the numbers in again from where they came from`,
    );
  if (isDecimalNumber(text))
    return err(
      `"${text}" is a number written as a decimal number: format the phone column as text, without decimals (${text.trim().replace(/\.0+$/, '')})`,
    );
  const compact = text.trim().replace(/[\s\-.()\u00a0]/g, '');
  if (compact === '') return err('no phone number');
  // `+0091…` writes the international prefix twice, as `+` and as `00`: no country code starts with 0, so the
  // number meant is `+91…`.
  const digits = compact.startsWith('+00')
    ? compact.slice(3)
    : compact.startsWith('+')
      ? compact.slice(1)
      : compact.startsWith('00')
        ? compact.slice(2)
        : compact;
  if (!/^\d+$/.test(digits))
    return err(
      `"${text}" is not a phone number: only digits, with +, a leading 00, spaces, dashes, dots or brackets`,
    );
  if (digits.startsWith('0'))
    return err(
      `"${text}" has no country code (no country code starts with 0: a national number, such as India's 098765 43210, is written with its country code, +91 98765 43210)`,
    );
  if (digits.length < 7) return err(`"${text}" is too short for a number with its country code`);
  if (digits.length > 15) return err(`"${text}" is longer than the 15 digits of an international number`);
  return ok(digits);
}

/** A Brazilian mobile without its ninth digit: 55, an area code, 8 digits from 6 to 9. */
const BRAZIL_WITHOUT_NINTH_DIGIT = /^55[1-9]{2}[6-9]\d{7}$/;
/** A Mexican mobile with the 1 that Mexico dropped in 2019 after 52: 521 and 10 digits. */
const MEXICO_WITH_MOBILE_ONE = /^521\d{10}$/;

/**
 * The one id of a WhatsApp user whose number is written two ways: Meta's `wa_id` (in webhooks' `from` and
 * `recipient_id`) keeps the form the account registered with, while a send log keeps the number as the
 * business wrote it. A Brazilian mobile without its ninth digit becomes the number with it, a Mexican mobile
 * with `521` the number without the 1; any other id is returned as it is. Pairs (and so windows and
 * conversations) are keyed by it, so that a user's messages and the business's answers meet.
 */
export function canonicalUser(user: string): string {
  if (user.length === 12 && BRAZIL_WITHOUT_NINTH_DIGIT.test(user))
    return `${user.slice(0, 4)}9${user.slice(4)}`;
  if (user.length === 13 && MEXICO_WITH_MOBILE_ONE.test(user)) return `52${user.slice(3)}`;
  return user;
}
