// Bytes that are not UTF-8. A decoder replaces each bad sequence with U+FFFD without a word, so two ids that
// differ only in a bad byte become one id (two messages merged, a charge lost). What reads input must find
// them instead: the fast path stays the native decoder, and only a text holding U+FFFD is looked at again
// (a genuine U+FFFD in valid bytes is read as it is). A file read whole is refused at its first bad byte.

import { isUtf8 } from 'node:buffer';
import { err, ok, type Result } from '../core/result.js';

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

/** Where a file's first byte that is not UTF-8 is: its offset, and its line and column (1-based). */
export interface InvalidUtf8Place {
  offset: number;
  line: number;
  /** Counted in the line's characters before it, as the event reader counts its columns. */
  column: number;
}

/** The text without the UTF-8 byte-order mark an editor may have put first (Windows' Notepad, Excel). */
export function withoutByteOrderMark(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Decodes strictly: throws at a bad sequence. A byte-order mark is kept, as Buffer's decoder keeps it. */
const STRICT_DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A whole file's bytes as text, or where its first byte that is not UTF-8 is: for a file read whole (an
 * accounts file, a rate card, a configuration, a recipients CSV), which is refused rather than read with
 * U+FFFD in place of its bad bytes. A UTF-8 byte-order mark is kept as U+FEFF, for the reader to skip.
 */
export function decodeUtf8File(bytes: Uint8Array): Result<string, InvalidUtf8Place> {
  // ASCII in UTF-16 without a byte-order mark is valid UTF-8, a NUL beside each character: read so, a file of
  // accounts was "not valid JSON at position 1" and a rate card had "no header row", nothing saying why.
  if (utf16WithoutMark(bytes) !== undefined) return err({ offset: 0, line: 1, column: 1 });
  try {
    return ok(STRICT_DECODER.decode(bytes));
  } catch {
    const offset = firstInvalidUtf8(bytes);
    if (offset < 0) throw new Error('the strict decoder refused bytes that are UTF-8');
    let lineStart = 0;
    let line = 1;
    for (let at = 0; at < offset; at++) {
      const byte = bytes[at];
      if (byte === 0x0a || (byte === 0x0d && bytes[at + 1] !== 0x0a)) {
        line++;
        lineStart = at + 1;
      }
    }
    const column = STRICT_DECODER.decode(bytes.subarray(lineStart, offset)).length + 1;
    return err({ offset, line, column });
  }
}

/**
 * Says that a file is not UTF-8 and what to do, after its name: `is not UTF-8: line 3, column 12 holds
 * byte 0xE9 (offset 41), which starts no UTF-8 character, so it cannot be read as written; save the file …`.
 */
export function notUtf8Words(bytes: Uint8Array, place: InvalidUtf8Place): string {
  // Excel's "Unicode text" and Windows PowerShell's `>` write UTF-16: Windows-1252's iconv would garble it.
  if (place.offset === 0 && isUtf16ByteOrderMark(bytes)) {
    return (
      'is not UTF-8 but UTF-16 (it starts with a UTF-16 byte-order mark), so it cannot be read as written; ' +
      'save the file as UTF-8 (iconv -f UTF-16 -t UTF-8 FILE)'
    );
  }
  const endianness = place.offset === 0 ? utf16WithoutMark(bytes) : undefined;
  if (endianness !== undefined) return `is not UTF-8 but ${utf16WithoutMarkWords(endianness)}`;
  // A compressed file, a workbook saved from Excel (.xlsx, a zip) or any binary: no text encoding reads it,
  // and Windows-1252's iconv would only turn its bytes into other noise.
  const binary = notTextWords(bytes, place);
  if (binary !== undefined) return binary;
  const hex = bytes[place.offset]!.toString(16).toUpperCase().padStart(2, '0');
  return (
    `is not UTF-8: line ${place.line}, column ${place.column} holds byte 0x${hex} (offset ${place.offset}), ` +
    `which starts no UTF-8 character, so it cannot be read as written; save the file as UTF-8 (from ` +
    `Windows-1252 or Latin-1: iconv -f WINDOWS-1252 -t UTF-8 FILE)`
  );
}

/** A file signature that says a file is no text, and what opens it. */
export interface BinarySignature {
  name: string;
  bytes: readonly number[];
  /** How to decompress it, for the compressed. */
  decompress?: string;
}

/** Signatures of files mistaken for text files (compressed logs, workbooks, images), and how to open the compressed. */
const BINARY_SIGNATURES: readonly BinarySignature[] = [
  { name: 'gzip', bytes: [0x1f, 0x8b], decompress: 'gunzip -k FILE' },
  { name: 'zstd', bytes: [0x28, 0xb5, 0x2f, 0xfd], decompress: 'unzstd FILE' },
  { name: 'xz', bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], decompress: 'unxz -k FILE' },
  { name: 'zip', bytes: [0x50, 0x4b, 0x03, 0x04], decompress: 'unzip FILE' },
  { name: 'PNG image', bytes: [0x89, 0x50, 0x4e, 0x47] },
  { name: 'JPEG image', bytes: [0xff, 0xd8, 0xff] },
];

/** The signature `bytes` start with, if any. */
export function binarySignatureOf(bytes: Uint8Array): BinarySignature | undefined {
  return BINARY_SIGNATURES.find((signature) => signature.bytes.every((byte, i) => bytes[i] === byte));
}

/** Bytes of a file read whole in which a NUL byte, beside one that is not UTF-8, says it is no text. */
const BINARY_SNIFF_BYTES = 512;

/**
 * Says that a file read whole is no text, after its name, when it starts with a known signature, or holds a
 * NUL byte and its first byte that is not UTF-8 in its first 512 bytes; undefined otherwise (then it is text
 * in another encoding, said by `notUtf8Words`).
 */
function notTextWords(bytes: Uint8Array, place: InvalidUtf8Place): string | undefined {
  const signature = binarySignatureOf(bytes);
  if (signature?.name === 'zip') {
    return (
      'is not a text file but a zip archive (as an Excel workbook, .xlsx, is), so it cannot be read as ' +
      'written: save a spreadsheet as CSV UTF-8 (Excel: File › Save As › CSV UTF-8), or unzip an archive ' +
      'first (unzip FILE)'
    );
  }
  if (signature?.decompress !== undefined) {
    return `is not a text file but ${signature.name}-compressed, so it cannot be read as written: decompress it first (${signature.decompress})`;
  }
  if (signature !== undefined) {
    return `is not a text file but a ${signature.name}, so it cannot be read as written: give the text file itself`;
  }
  const sample = bytes.subarray(0, BINARY_SNIFF_BYTES);
  if (place.offset < BINARY_SNIFF_BYTES && sample.includes(0)) {
    return (
      'is not a text file: its first bytes look binary (NUL bytes, bytes that are not UTF-8), so it cannot be ' +
      'read as written: give the text file itself (a compressed one decompressed first)'
    );
  }
  return undefined;
}

/** How many characters at the start of a file tell UTF-16 without a byte-order mark (fewer in a shorter file). */
const UTF16_SNIFF_CHARACTERS = 8;

/**
 * `LE` or `BE` when `bytes` start as ASCII text in UTF-16 without a byte-order mark does (Python's `utf-16-le`,
 * some exporters): a NUL after (little-endian) or before (big-endian) each of the first characters, none of
 * them NUL. Never true of UTF-8 text, which has no NUL; undefined otherwise.
 */
export function utf16WithoutMark(bytes: Uint8Array): 'LE' | 'BE' | undefined {
  const pairs = Math.min(UTF16_SNIFF_CHARACTERS, Math.floor(bytes.length / 2));
  if (pairs < 2) return undefined;
  let isLittle = true;
  let isBig = true;
  for (let i = 0; i < pairs; i++) {
    const first = bytes[2 * i]!;
    const second = bytes[2 * i + 1]!;
    isLittle &&= first !== 0 && first < 0x80 && second === 0;
    isBig &&= first === 0 && second !== 0 && second < 0x80;
  }
  return isLittle ? 'LE' : isBig ? 'BE' : undefined;
}

/** `UTF-16 (little-endian, without a byte-order mark: …); save the file as UTF-8 (iconv …)`. */
export function utf16WithoutMarkWords(endianness: 'LE' | 'BE'): string {
  const [order, where] = endianness === 'LE' ? ['little', 'after'] : ['big', 'before'];
  return (
    `UTF-16 (${order}-endian, without a byte-order mark: a NUL byte ${where} each of its first characters), so ` +
    `it cannot be read as written; save the file as UTF-8 (iconv -f UTF-16${endianness} -t UTF-8 FILE)`
  );
}

/** Whether `bytes` start with UTF-16's byte-order mark, little-endian (FF FE) or big-endian (FE FF). */
function isUtf16ByteOrderMark(bytes: Uint8Array): boolean {
  return (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
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
