import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteKeyTable, type ByteKeyTableOptions } from './byte-key-table.js';

const SEED = 20261206;
const isWellFormed = (text: string): boolean =>
  (String.prototype as unknown as { isWellFormed(this: string): boolean }).isWellFormed.call(text);
const encoder = new TextEncoder();

/** A key as the table is asked for it: as a string, or as its UTF-8 bytes somewhere inside a larger buffer. */
interface Ask {
  key: string;
  asBytes: boolean;
  /** Bytes before and after the key in the buffer it is given in (noise the table must not read). */
  before: number;
  after: number;
  noise: number;
}

/** Asks `table` each key in turn, checking every answer against a Map<string, number> kept alongside. */
function checkAgainstMap(table: ByteKeyTable, asks: readonly Ask[]): void {
  const reference = new Map<string, number>();
  for (const { key, asBytes, before, after, noise } of asks) {
    const expectedNew = !reference.has(key);
    if (expectedNew) reference.set(key, reference.size);
    let index: number;
    if (asBytes) {
      const bytes = encoder.encode(key);
      const buffer = new Uint8Array(before + bytes.length + after).fill(noise);
      buffer.set(bytes, before);
      index = table.intern(buffer, before, before + bytes.length);
    } else {
      index = table.internString(key);
    }
    expect(index, JSON.stringify(key)).toBe(reference.get(key));
    expect(table.isNew, JSON.stringify(key)).toBe(expectedNew);
    expect(table.size).toBe(reference.size);
  }
  for (const [key, index] of reference) expect(table.text(index)).toBe(key);
}

/** Keys of every kind the readers may meet: short ids, multi-byte UTF-8, empty, long, a shared end. */
const keyArbitrary = (sharedEnd: string) =>
  fc.oneof(
    fc.constantFrom('', 'a', 'wamid.1', '\ufeffbom', 'é', '€', '😀', '\u0000', 'a\u0000b'),
    fc.string({ maxLength: 12 }),
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.string({ unit: 'binary', maxLength: 12 }).filter(isWellFormed),
    fc.string({ unit: fc.constantFrom('0', '1', 'é'), maxLength: 40 }),
    // Keys equal in their last 16 bytes (and more): they differ only at their start.
    fc.string({ maxLength: 6 }).map((prefix) => prefix + sharedEnd),
    fc.nat({ max: 2000 }).map((n) => 'x'.repeat(n)),
  );

const askArbitrary = (sharedEnd: string) =>
  fc.record({
    key: keyArbitrary(sharedEnd),
    asBytes: fc.boolean(),
    before: fc.nat({ max: 9 }),
    after: fc.nat({ max: 9 }),
    noise: fc.integer({ min: 0, max: 255 }),
  });

/** Few keys drawn often: most asks find a key already there, through the recent table or the main one. */
const asksArbitrary = fc
  .tuple(fc.string({ minLength: 16, maxLength: 24 }), fc.nat({ max: 6 }))
  .chain(([sharedEnd, reuse]) =>
    fc.array(askArbitrary(sharedEnd), { minLength: 1, maxLength: 30 }).chain((distinct) =>
      fc
        .array(fc.tuple(fc.nat({ max: distinct.length - 1 }), askArbitrary(sharedEnd)), {
          maxLength: 60 + reuse * 20,
        })
        .map((picks) => [...distinct, ...picks.map(([at, fresh]) => ({ ...fresh, key: distinct[at]!.key }))]),
    ),
  )
  .chain((asks) => fc.shuffledSubarray(asks, { minLength: asks.length, maxLength: asks.length }));

describe('ByteKeyTable gives the integers a Map<string, number> gives (fast-check, fixed seed)', () => {
  const shapes: [string, ByteKeyTableOptions][] = [
    ['default sizes', {}],
    [
      'a table of 2 slots that grows on every other key, a recent table of 1 slot',
      { initialSlots: 2, recentSlots: 1 },
    ],
    [
      'hashes cut to 2 bits, so that keys collide and are told apart by their bytes',
      { hashMask: 3, initialSlots: 2 },
    ],
  ];
  for (const [name, options] of shapes) {
    it(`any sequence of keys, as bytes or strings (${name})`, () => {
      fc.assert(
        fc.property(asksArbitrary, (asks) => checkAgainstMap(new ByteKeyTable(options), asks)),
        { seed: SEED, numRuns: 300 },
      );
    });
  }

  it('many keys equal in their last 16 bytes and a key of 100,000 bytes', () => {
    const end = '-same-last-sixteen-bytes';
    const asks: Ask[] = [];
    for (let i = 0; i < 5000; i++)
      asks.push({ key: `${i}${end}`, asBytes: i % 2 === 0, before: 1, after: 2, noise: 7 });
    for (let i = 4999; i >= 0; i -= 3)
      asks.push({ key: `${i}${end}`, asBytes: i % 3 === 0, before: 0, after: 0, noise: 0 });
    asks.push({ key: 'é'.repeat(50_000), asBytes: true, before: 3, after: 0, noise: 0xc3 });
    asks.push({ key: 'é'.repeat(50_000), asBytes: false, before: 0, after: 0, noise: 0 });
    checkAgainstMap(new ByteKeyTable({ initialSlots: 2 }), asks);
  });

  it('keys of 0–13 bytes that differ only in their last 1–3 bytes, every hash equal, in a table that grows', () => {
    // Every key has the hash 0 and one slot of the recent table: each look-up compares bytes, word by word and
    // the last 1–3 bytes as the word ending the key; the 8-byte slots are moved by every growth from 2 slots.
    const endings = ['a', 'b', 'aa', 'ab', 'ba', 'bb', 'aaa', 'aab', 'aba', 'baa', 'bbb', 'é'];
    const keys = new Set<string>();
    for (let length = 0; length <= 13; length++) {
      for (const ending of endings) {
        keys.add('k'.repeat(Math.max(0, length - ending.length)) + ending);
      }
    }
    const asks: Ask[] = [...keys].map((key, i) => ({
      key,
      asBytes: i % 2 === 0,
      before: i % 3,
      after: 1,
      noise: 0x61,
    }));
    for (const ask of [...asks].reverse()) asks.push({ ...ask, asBytes: !ask.asBytes, before: 5, after: 0 });
    checkAgainstMap(new ByteKeyTable({ initialSlots: 2, recentSlots: 1, hashMask: 0 }), asks);
  });

  it('a table grown from 2 slots finds every key again by its slot alone (hashes cut to 1 bit)', () => {
    // 600 keys of 39 bytes (a message id's length) into 8-byte slots that grow nine times: each key asked
    // again, first as bytes then as a string, after a key that evicts it from the one-slot recent table.
    const asks: Ask[] = [];
    const id = (i: number): string => `wamid.HBgM${String(i).padStart(6, '0')}AAAAAAAAAAAAAAAAAAAAAAA=`;
    for (let i = 0; i < 600; i++)
      asks.push({ key: id(i), asBytes: i % 3 !== 0, before: 2, after: 3, noise: 0x30 });
    for (let i = 599; i >= 0; i--) {
      asks.push({ key: id((i + 7) % 600), asBytes: true, before: 0, after: 0, noise: 0 });
      asks.push({ key: id(i), asBytes: true, before: 1, after: 1, noise: 0x41 });
      asks.push({ key: id(i), asBytes: false, before: 0, after: 0, noise: 0 });
    }
    checkAgainstMap(new ByteKeyTable({ initialSlots: 2, recentSlots: 1, hashMask: 1 }), asks);
  });

  it('a key as bytes and the same key as a string are one key; bytes are compared whole', () => {
    const table = new ByteKeyTable();
    const bytes = encoder.encode('xx919876543210yy');
    expect(table.intern(bytes, 2, 14)).toBe(0);
    expect(table.internString('919876543210')).toBe(0);
    expect(table.isNew).toBe(false);
    expect(table.internString('919876543211')).toBe(1);
    expect(table.internString('91987654321')).toBe(2);
    expect(table.intern(bytes, 2, 2)).toBe(3);
    expect(table.internString('')).toBe(3);
    expect(table.text(0)).toBe('919876543210');
    expect(table.text(3)).toBe('');
  });

  it('decodes ASCII keys by their bytes until a key of other bytes arrives, then every new key as UTF-8', () => {
    const table = new ByteKeyTable({ initialSlots: 2 });
    const ascii = ['wamid.HBgLMTU1NTAxMDAwMDEVAgARGBI1', '15550100001', '', '~\u007f'];
    for (const key of ascii) table.internString(key);
    expect(ascii.map((_, i) => table.text(i))).toEqual(ascii);
    // 'é' is two bytes of 0x80 or more: read one per character they would make 'Ã©'.
    const e = table.internString('é');
    const euro = table.intern(encoder.encode('x€x'), 1, 4);
    const late = table.internString('wamid.late');
    expect([table.text(e), table.text(euro), table.text(late)]).toEqual(['é', '€', 'wamid.late']);
    expect(ascii.map((_, i) => table.text(i))).toEqual(ascii);
    // A byte of 0x80 or more that is not UTF-8 is refused, not read as Latin-1, in a table of ASCII keys.
    const bytesOnly = new ByteKeyTable();
    bytesOnly.internString('15550100001');
    expect(bytesOnly.text(0)).toBe('15550100001');
    bytesOnly.intern(Uint8Array.of(0x31, 0xe9), 0, 2);
    expect(() => bytesOnly.text(1)).toThrow(/not UTF-8/);
  });

  it('refuses a string with a lone surrogate, an index it does not hold and bytes outside the buffer', () => {
    const table = new ByteKeyTable();
    expect(() => table.internString('a\ud800')).toThrow(RangeError);
    expect(table.size).toBe(0);
    expect(() => table.text(0)).toThrow(RangeError);
    expect(() => table.intern(new Uint8Array(4), 2, 5)).toThrow(RangeError);
    table.intern(Uint8Array.of(0xff), 0, 1);
    expect(table.internString('\ufffd')).toBe(1);
    expect(() => table.text(0)).toThrow(/not UTF-8/);
  });
});
