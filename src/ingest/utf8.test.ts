import { describe, expect, it } from 'vitest';
import {
  decodeUtf8File,
  decodeUtf8MarkingInvalid,
  firstInvalidUtf8,
  INVALID_UTF8_MARK,
  notUtf8Words,
} from './utf8.js';

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

describe('a file read whole (accounts, rate cards, configuration, recipients)', () => {
  it('is its text when UTF-8, a byte-order mark and a genuine U+FFFD kept', () => {
    expect(decodeUtf8File(bytes('\ufeff{"a":"caf\u00e9 \ufffd \u20ac"}'))).toEqual({
      ok: true,
      value: '\ufeff{"a":"caf\u00e9 \ufffd \u20ac"}',
    });
    expect(decodeUtf8File(bytes(''))).toEqual({ ok: true, value: '' });
  });

  it('is refused at its first bad byte, by line (LF, CRLF or CR) and column in characters', () => {
    expect(decodeUtf8File(bytes('caf', [0xe9]))).toEqual({
      ok: false,
      error: { offset: 3, line: 1, column: 4 },
    });
    // Line 3 after an LF and a CRLF; the column counts "€" (3 bytes) as one character.
    expect(decodeUtf8File(bytes('a\nb\r\n\u20acx', [0xe8], 'y', [0xe9]))).toEqual({
      ok: false,
      error: { offset: 9, line: 3, column: 3 },
    });
    expect(decodeUtf8File(bytes('a\rb', [0x80]))).toEqual({
      ok: false,
      error: { offset: 3, line: 2, column: 2 },
    });
    // A character cut by the end of the file.
    expect(decodeUtf8File(bytes('ab', [0xf0, 0x9f, 0x98]))).toEqual({
      ok: false,
      error: { offset: 2, line: 1, column: 3 },
    });
  });

  it('says where the byte is and to save the file as UTF-8', () => {
    const latin1 = bytes('{"p":"Caf', [0xe9], '"}');
    const decoded = decodeUtf8File(latin1);
    if (decoded.ok) throw new Error('Latin-1 bytes were read');
    expect(notUtf8Words(latin1, decoded.error)).toBe(
      'is not UTF-8: line 1, column 10 holds byte 0xE9 (offset 9), which starts no UTF-8 character, so it ' +
        'cannot be read as written; save the file as UTF-8 (from Windows-1252 or Latin-1: iconv -f ' +
        'WINDOWS-1252 -t UTF-8 FILE)',
    );
  });

  it.each([
    ['little-endian', false],
    ['big-endian', true],
  ])(
    'says that a UTF-16 file (%s, as Excel and PowerShell save) is UTF-16, with its iconv, never Windows-1252',
    (_, isBigEndian) => {
      const text = Buffer.from('\ufeff{"accounts":[]}', 'utf16le');
      const utf16 = isBigEndian ? text.swap16() : text;
      const decoded = decodeUtf8File(utf16);
      if (decoded.ok) throw new Error('UTF-16 bytes were read as UTF-8');
      const words = notUtf8Words(utf16, decoded.error);
      expect(words).toBe(
        'is not UTF-8 but UTF-16 (it starts with a UTF-16 byte-order mark), so it cannot be read as written; ' +
          'save the file as UTF-8 (iconv -f UTF-16 -t UTF-8 FILE)',
      );
      expect(words).not.toContain('WINDOWS-1252');
    },
  );
  it.each([
    ['little-endian', 'LE', false, 'after'],
    ['big-endian', 'BE', true, 'before'],
  ])(
    'says that a UTF-16 file without a byte-order mark (%s) is UTF-16, not invalid JSON or a card without a header',
    (_, endianness, isBigEndian, where) => {
      // ASCII in UTF-16 is valid UTF-8, a NUL beside each character: it was decoded, then misread.
      const text = Buffer.from('{"accounts":[]}', 'utf16le');
      const utf16 = isBigEndian ? text.swap16() : text;
      const decoded = decodeUtf8File(utf16);
      if (decoded.ok) throw new Error('UTF-16 bytes were read as UTF-8');
      expect(notUtf8Words(utf16, decoded.error)).toBe(
        `is not UTF-8 but UTF-16 (${isBigEndian ? 'big' : 'little'}-endian, without a byte-order mark: a NUL ` +
          `byte ${where} each of its first characters), so it cannot be read as written; save the file as ` +
          `UTF-8 (iconv -f UTF-16${endianness} -t UTF-8 FILE)`,
      );
    },
  );

  it.each([
    [
      'gzip-compressed',
      bytes([0x1f, 0x8b, 0x08, 0x00, 0x8e, 0xd1], '{"a'),
      'decompress it first (gunzip -k FILE)',
    ],
    // An Excel workbook (.xlsx) is a zip archive: a rate card or recipients list saved from Excel as is.
    ['zip', bytes('PK', [0x03, 0x04, 0x14, 0x00, 0x06, 0x00, 0x08, 0x00, 0xa2], 'xl/'), 'as CSV UTF-8'],
    [
      'binary',
      bytes([0x7f], 'ELF', [0x02, 0x01, 0x01, 0x00, 0x00, 0xd0, 0x9f, 0xff]),
      'give the text file itself',
    ],
  ])('says that a %s file is not a text file, never to convert it from Windows-1252', (_, binary, what) => {
    const decoded = decodeUtf8File(binary);
    if (decoded.ok) throw new Error('binary bytes were read as UTF-8');
    const words = notUtf8Words(binary, decoded.error);
    expect(words).toMatch(/^is not a text file/);
    expect(words).toContain(what);
    expect(words).not.toContain('WINDOWS-1252');
  });

  it('reads UTF-8 that starts with characters beyond ASCII, and a file of one character, as text', () => {
    expect(decodeUtf8File(Buffer.from('Zoë,Ω,日本\n'))).toEqual({ ok: true, value: 'Zoë,Ω,日本\n' });
    expect(decodeUtf8File(Buffer.from('{'))).toEqual({ ok: true, value: '{' });
  });
});
