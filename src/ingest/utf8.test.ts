import { describe, expect, it } from 'vitest';
import { decodeUtf8MarkingInvalid, firstInvalidUtf8, INVALID_UTF8_MARK } from './utf8.js';

const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : Buffer.from(part))));

describe('bytes that are not UTF-8', () => {
  it('finds the first bad byte, and none in valid text (a genuine U+FFFD, emoji, accents)', () => {
    expect(firstInvalidUtf8(bytes('caf\u00e9 \ufffd \u{1f600} \u20ac'))).toBe(-1);
    expect(firstInvalidUtf8(bytes('caf', [0xe9]))).toBe(3);
    expect(firstInvalidUtf8(bytes('ab', [0xc0, 0x80]))).toBe(2); // overlong
    expect(firstInvalidUtf8(bytes('ab', [0xed, 0xa0, 0x80]))).toBe(2); // a surrogate
    expect(firstInvalidUtf8(bytes('ab', [0xf4, 0x90, 0x80, 0x80]))).toBe(2); // past U+10FFFF
    expect(firstInvalidUtf8(bytes('ab', [0xf0, 0x9f, 0x98]))).toBe(2); // truncated at the end
  });

  it('decodes valid bytes as the native decoder does, marking only bad ones', () => {
    expect(decodeUtf8MarkingInvalid(bytes('caf\u00e9 \ufffd'))).toEqual({
      text: 'caf\u00e9 \ufffd',
      hasInvalid: false,
    });
    expect(decodeUtf8MarkingInvalid(bytes('a', [0xe9], 'b\ufffdc\uffff', [0xf0, 0x9f]))).toEqual({
      text: `a${INVALID_UTF8_MARK}b\ufffdc\uffff${INVALID_UTF8_MARK}${INVALID_UTF8_MARK}`,
      hasInvalid: true,
    });
    // A genuine noncharacter (bytes EF BF BF) stays itself: the mark is a lone surrogate, never decoded.
    expect(INVALID_UTF8_MARK).toBe('\udfff');
  });
});
