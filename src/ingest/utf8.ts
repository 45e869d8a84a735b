// Bytes that are not UTF-8. A decoder replaces each bad sequence with U+FFFD without a word, so two ids that
// differ only in a bad byte become one id (two messages merged, a charge lost). What reads input must find
// them instead: the fast path stays the native decoder, and only a text holding U+FFFD is looked at again
// (a genuine U+FFFD in valid bytes is read as it is).

import { isUtf8 } from 'node:buffer';

/**
 * Marks a bad sequence in a decoded text: a lone low surrogate, which no UTF-8 decodes to (a surrogate's
 * three bytes are themselves a bad sequence), so it never stands for a character of the input.
 */
export const INVALID_UTF8_MARK = '\udfff';

/** The offset of the first byte of `bytes` that starts no well-formed UTF-8 sequence, or -1 when none does. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  if (isUtf8(bytes)) return -1;
  for (let at = 0; at < bytes.length;) {
    const length = sequenceLength(bytes, at);
    if (length === 0) return at;
    at += length;
  }
  return -1;
}

/**
 * `bytes` decoded as UTF-8, each byte of a bad sequence (a truncated one at the end included) given as
 * INVALID_UTF8_MARK instead of U+FFFD; `hasInvalid` says whether there was one. A text with no U+FFFD (the
 * usual case) is the native decoder's, looked at no further.
 */
export function decodeUtf8MarkingInvalid(bytes: Uint8Array): { text: string; hasInvalid: boolean } {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  if (!text.includes('\ufffd') || isUtf8(bytes)) return { text, hasInvalid: false };
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts: string[] = [];
  let validFrom = 0;
  for (let at = 0; at < bytes.length;) {
    const length = sequenceLength(bytes, at);
    if (length > 0) {
      at += length;
      continue;
    }
    parts.push(buffer.toString('utf8', validFrom, at), INVALID_UTF8_MARK);
    at += 1;
    validFrom = at;
  }
  parts.push(buffer.toString('utf8', validFrom));
  return { text: parts.join(''), hasInvalid: true };
}

/** Describes the bad byte at `offset` for an error message: `byte 0xE9 at offset 41`. */
export function invalidByteWords(bytes: Uint8Array, offset: number): string {
  const hex = bytes[offset]!.toString(16).toUpperCase().padStart(2, '0');
  return `byte 0x${hex} at offset ${offset} starts no UTF-8 character`;
}

/** The length of the well-formed sequence at `at` (Unicode's table 3-7), or 0 when none starts there. */
function sequenceLength(bytes: Uint8Array, at: number): number {
  const lead = bytes[at]!;
  if (lead < 0x80) return 1;
  const next = (offset: number, low = 0x80, high = 0xbf): boolean => {
    const byte = bytes[at + offset];
    return byte !== undefined && byte >= low && byte <= high;
  };
  if (lead >= 0xc2 && lead <= 0xdf) return next(1) ? 2 : 0;
  if (lead === 0xe0) return next(1, 0xa0) && next(2) ? 3 : 0;
  if (lead === 0xed) return next(1, 0x80, 0x9f) && next(2) ? 3 : 0;
  if (lead >= 0xe1 && lead <= 0xef) return next(1) && next(2) ? 3 : 0;
  if (lead === 0xf0) return next(1, 0x90) && next(2) && next(3) ? 4 : 0;
  if (lead === 0xf4) return next(1, 0x80, 0x8f) && next(2) && next(3) ? 4 : 0;
  if (lead >= 0xf1 && lead <= 0xf3) return next(1) && next(2) && next(3) ? 4 : 0;
  return 0;
}
