/**
 * Byte order of UTF-8 — SQLite's BINARY, PostgreSQL's COLLATE "C" —, in which the stores take the smallest WABA
 * (a number's owner, the WABA of a status's inbound): code point order. JavaScript's `<` compares UTF-16 code
 * units, which agrees unless a surrogate pair is met (a character above U+FFFF sorts before U+E000–U+FFFF).
 */
export function isBeforeInBytes(a: string, b: string): boolean {
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b;
  const left = codePoints(a);
  const right = codePoints(b);
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    if (left[i] !== right[i]) return left[i]! < right[i]!;
  }
  return left.length < right.length;
}

const SURROGATE = /[\uD800-\uDFFF]/;

function codePoints(text: string): number[] {
  return Array.from(text, (char) => char.codePointAt(0)!);
}
