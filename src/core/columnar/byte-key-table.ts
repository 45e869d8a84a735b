// Interns keys (message ids, users, business numbers, WABAs) to dense integers 0, 1, 2… by their UTF-8 bytes,
// so that a columnar rater keeps integers, never a string per event: the `ColumnarRater`'s tables, fed bytes
// by the byte reader (ingest/columnar) and strings by `add`. Pure. It must never give two different keys one
// integer, nor one key two.

/**
 * Int32 entries of a slot of the hash table: hash, index + 1. A key's bytes are found from `starts` (read only
 * when the hashes are equal): 8-byte slots are half the memory of 16-byte ones, so that the ids' table of a
 * large file (2^20 slots) is touched on half the pages and holds twice the slots per cache line.
 */
const SLOT_WIDTH = 2;
/** Int32 entries of a slot of the recent table: hash, index + 1, arena offset, byte length (small: kept whole). */
const RECENT_WIDTH = 4;
const DEFAULT_SLOTS = 1 << 10;
const DEFAULT_RECENT_SLOTS = 1 << 12;
/** The arena's offsets are kept as 32-bit unsigned integers: the keys of one table hold less than 4 GiB. */
const MAX_ARENA_BYTES = 2 ** 32 - 1;

export interface ByteKeyTableOptions {
  /** Slots of the hash table at first, a power of two (it doubles when half full). Default 1,024. */
  initialSlots?: number;
  /** Slots of the direct-mapped table of recently looked-up keys, a power of two. Default 4,096. */
  recentSlots?: number;
  /**
   * Tests only: the bits of each hash kept (e.g. 3), so that many keys share a hash and every look-up compares
   * keys byte by byte. The answers are the same, only slower.
   */
  hashMask?: number;
}

/**
 * A hash table over the keys' bytes: open addressing (linear probing) over a hash of every byte of the key, four
 * at a time; each slot `[hash, index + 1]` in one Int32Array, the key's place in the arena read from `starts` by
 * its index only when the hashes are equal; the keys copied once into one byte arena and compared whole. In
 * front of it a direct-mapped table of recently looked-up keys `[hash, index + 1, offset, length]` (a message's
 * statuses come close together in a file). A key given as bytes and the same key given as a string (UTF-8) are
 * one key.
 */
export class ByteKeyTable {
  /** Whether the last `intern` / `internString` added its key (false: the key was there). */
  isNew = false;
  private slots: Int32Array;
  private mask: number;
  private readonly recent: Int32Array;
  private readonly recentMask: number;
  private readonly hashMask: number;
  private count = 0;
  /**
   * Where each key's bytes start in the arena, by index; `starts[count]` is where the next key goes (offsets
   * below 4 GiB, so 32 bits: half the pages of a Float64Array for the ids of a large file).
   */
  private starts: Uint32Array;
  private arena: Uint8Array;
  private arenaView: DataView;
  /** The arena as a Buffer (the same memory), which makes a string of ASCII bytes at once (`toString`). */
  private arenaBuffer: Buffer;
  private used = 0;
  /** Whether every byte of every key so far is below 0x80: then a key's text is its bytes as characters. */
  private isAscii = true;
  /**
   * A DataView over the last caller's buffer looked up in (one per chunk of a file, not one per key; the
   * scratch buffer of `internString` has its own, so that keys of both kinds in turn make no new view).
   */
  private viewedBuffer: Uint8Array | undefined;
  private viewed: DataView | undefined;
  /** Where `internString` writes a key's UTF-8 bytes, with its own DataView (never taken for a caller's). */
  private scratch = new Uint8Array(256);
  private scratchView = new DataView(this.scratch.buffer);
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  /** Keys decoded by `text`, by index (sparse until asked). */
  private texts: (string | undefined)[] = [];

  constructor(options: ByteKeyTableOptions = {}) {
    const slots = options.initialSlots ?? DEFAULT_SLOTS;
    const recent = options.recentSlots ?? DEFAULT_RECENT_SLOTS;
    if (!isPowerOfTwo(slots) || slots < 2) throw new RangeError(`initialSlots ${slots}: a power of two >= 2`);
    if (!isPowerOfTwo(recent)) throw new RangeError(`recentSlots ${recent}: a power of two`);
    this.slots = new Int32Array(slots * SLOT_WIDTH);
    this.mask = slots - 1;
    this.recent = new Int32Array(recent * RECENT_WIDTH);
    this.recentMask = recent - 1;
    this.hashMask = options.hashMask ?? -1;
    this.starts = new Uint32Array(slots / 2 + 1);
    this.arena = new Uint8Array(slots * 16);
    this.arenaView = new DataView(this.arena.buffer);
    this.arenaBuffer = Buffer.from(this.arena.buffer);
  }

  /** How many keys the table holds (the next new key's integer). */
  get size(): number {
    return this.count;
  }

  /** The integer of the key written in `bytes[start, end)`, added if new (`isNew` says which). */
  intern(bytes: Uint8Array, start: number, end: number): number {
    if (!(start >= 0 && start <= end && end <= bytes.length)) {
      throw new RangeError(`key bytes [${start}, ${end}) outside a buffer of ${bytes.length}`);
    }
    const view = this.viewOf(bytes);
    const length = end - start;
    const hash = this.hashOf(bytes, view, start, end);
    const recent = this.recent;
    const r = (hash & this.recentMask) * RECENT_WIDTH;
    if (
      recent[r + 1] !== 0 &&
      recent[r] === hash &&
      recent[r + 3] === length &&
      this.isKeyAt(recent[r + 2]! >>> 0, bytes, view, start, end)
    ) {
      this.isNew = false;
      return recent[r + 1]! - 1;
    }
    const slots = this.slots;
    const starts = this.starts;
    let slot = mix(hash) & this.mask;
    for (;;) {
      const q = slot * SLOT_WIDTH;
      const indexPlusOne = slots[q + 1]!;
      if (indexPlusOne === 0) break;
      if (slots[q] === hash) {
        const offset = starts[indexPlusOne - 1]!;
        if (starts[indexPlusOne]! - offset === length && this.isKeyAt(offset, bytes, view, start, end)) {
          recent[r] = hash;
          recent[r + 1] = indexPlusOne;
          recent[r + 2] = offset | 0;
          recent[r + 3] = length;
          this.isNew = false;
          return indexPlusOne - 1;
        }
      }
      slot = (slot + 1) & this.mask;
    }
    return this.add(bytes, start, end, hash, slot, r);
  }

  /**
   * The integer of `text`'s key (its UTF-8 bytes, as `intern` would be given them), added if new. A string with
   * a lone surrogate has no UTF-8 and is no key (the readers refuse such ids): a RangeError.
   */
  internString(text: string): number {
    const length = text.length;
    if (this.scratch.length < length * 3) {
      this.scratch = new Uint8Array(length * 3);
      this.scratchView = new DataView(this.scratch.buffer);
    }
    // ASCII (its UTF-8 bytes are its code units) written here: no encoder call, no result object.
    const scratch = this.scratch;
    let i = 0;
    for (; i < length; i++) {
      const unit = text.charCodeAt(i);
      if (unit >= 0x80) break;
      scratch[i] = unit;
    }
    if (i === length) return this.intern(scratch, 0, length);
    if (!isWellFormed(text))
      throw new RangeError(`a key must be well-formed UTF-16: ${JSON.stringify(text)}`);
    const { written } = this.encoder.encodeInto(text, scratch);
    return this.intern(this.scratch, 0, written);
  }

  /** The key of integer `index`, decoded from its UTF-8 bytes (a RangeError for bytes that are not UTF-8). */
  text(index: number): string {
    if (!(Number.isInteger(index) && index >= 0 && index < this.count)) {
      throw new RangeError(`no key ${index} in a table of ${this.count}`);
    }
    const known = this.texts[index];
    if (known !== undefined) return known;
    const start = this.starts[index]!;
    const end = this.starts[index + 1]!;
    let text: string;
    if (this.isAscii) {
      // ASCII is UTF-8 whose characters are its bytes: Latin-1 decodes it alike, with no subarray made and no
      // check (≈ 90 ns a 39-byte id against ≈ 145 ns through the decoder, Node 20, 2-core AMD EPYC).
      text = this.arenaBuffer.toString('latin1', start, end);
    } else {
      try {
        text = this.decoder.decode(this.arena.subarray(start, end));
      } catch {
        throw new RangeError(`key ${index} is not UTF-8: its bytes were given so`);
      }
    }
    // Kept: a walk's sorts ask for the same keys many times.
    if (index >= this.texts.length) this.growTexts(index);
    this.texts[index] = text;
    return text;
  }

  /**
   * Room in `texts` for every key so far (twice the room at least): one array made at its length, holey but
   * never a dictionary, the texts known copied; pushing an `undefined` per key up to `index` cost as much as
   * decoding them.
   */
  private growTexts(index: number): void {
    const old = this.texts;
    const texts = new Array<string | undefined>(Math.max(this.count, index + 1, old.length * 2));
    for (let i = 0; i < old.length; i++) texts[i] = old[i];
    this.texts = texts;
  }

  /**
   * Hash of every byte of the key: four at a time (little-endian words); the last 1–3 bytes of a key of 4 bytes
   * or more as the word that ends it (overlapping the one before: one read, not up to three), those of a
   * shorter key one by one.
   */
  private hashOf(bytes: Uint8Array, view: DataView, start: number, end: number): number {
    let hash = Math.imul(end - start, 0x9e3779b1);
    let i = start;
    for (; i + 4 <= end; i += 4) hash = Math.imul(hash ^ view.getInt32(i, true), 0x85ebca6b) ^ (hash >>> 15);
    if (i < end) {
      if (end - start >= 4) hash = Math.imul(hash ^ view.getInt32(end - 4, true), 0x85ebca6b) ^ (hash >>> 15);
      else for (; i < end; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
    }
    hash ^= hash >>> 16;
    return hash & this.hashMask;
  }

  /**
   * Whether the arena's bytes from `offset` are those of `bytes[start, end)` (lengths already equal): word by
   * word, the last 1–3 bytes as the word that ends the key, as `hashOf` reads them.
   */
  private isKeyAt(offset: number, bytes: Uint8Array, view: DataView, start: number, end: number): boolean {
    const arena = this.arena;
    const arenaView = this.arenaView;
    const shift = offset - start;
    let i = start;
    for (; i + 4 <= end; i += 4)
      if (arenaView.getInt32(shift + i, true) !== view.getInt32(i, true)) return false;
    if (i === end) return true;
    if (end - start >= 4) return arenaView.getInt32(shift + end - 4, true) === view.getInt32(end - 4, true);
    for (; i < end; i++) if (arena[shift + i] !== bytes[i]) return false;
    return true;
  }

  private add(bytes: Uint8Array, start: number, end: number, hash: number, slot: number, r: number): number {
    const length = end - start;
    if (this.used + length > this.arena.length) this.growArena(this.used + length);
    if (this.count + 2 > this.starts.length) {
      const starts = new Uint32Array(this.starts.length * 2);
      starts.set(this.starts);
      this.starts = starts;
    }
    const offset = this.used;
    const arena = this.arena;
    let bits = 0;
    for (let i = 0; i < length; i++) {
      const byte = bytes[start + i]!;
      arena[offset + i] = byte;
      bits |= byte;
    }
    if (bits >= 0x80) this.isAscii = false;
    this.used += length;
    const index = this.count++;
    this.starts[index + 1] = this.used;
    const q = slot * SLOT_WIDTH;
    this.slots[q] = hash;
    this.slots[q + 1] = index + 1;
    const recent = this.recent;
    recent[r] = hash;
    recent[r + 1] = index + 1;
    recent[r + 2] = offset | 0;
    recent[r + 3] = length;
    if (this.count * 2 > this.slots.length / SLOT_WIDTH) this.growSlots();
    this.isNew = true;
    return index;
  }

  private growArena(needed: number): void {
    if (needed > MAX_ARENA_BYTES) throw new RangeError('the keys of one table hold more than 4 GiB');
    let size = this.arena.length * 2;
    while (size < needed) size *= 2;
    const arena = new Uint8Array(Math.min(size, MAX_ARENA_BYTES));
    arena.set(this.arena.subarray(0, this.used));
    this.arena = arena;
    this.arenaView = new DataView(arena.buffer);
    this.arenaBuffer = Buffer.from(arena.buffer);
  }

  private growSlots(): void {
    const old = this.slots;
    const size = (old.length / SLOT_WIDTH) * 2;
    const slots = new Int32Array(size * SLOT_WIDTH);
    const mask = size - 1;
    for (let q = 0; q < old.length; q += SLOT_WIDTH) {
      if (old[q + 1] === 0) continue;
      let slot = mix(old[q]!) & mask;
      while (slots[slot * SLOT_WIDTH + 1] !== 0) slot = (slot + 1) & mask;
      const to = slot * SLOT_WIDTH;
      slots[to] = old[q]!;
      slots[to + 1] = old[q + 1]!;
    }
    this.slots = slots;
    this.mask = mask;
  }

  private viewOf(bytes: Uint8Array): DataView {
    if (bytes === this.scratch) return this.scratchView;
    if (bytes !== this.viewedBuffer || this.viewed === undefined) {
      this.viewedBuffer = bytes;
      this.viewed = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    return this.viewed;
  }
}

/** The slot a hash starts probing at: its high bits folded in, so that a small table uses all of them. */
function mix(hash: number): number {
  return hash ^ (hash >>> 15);
}

const isWellFormed = (text: string): boolean =>
  (String.prototype as unknown as { isWellFormed(this: string): boolean }).isWellFormed.call(text);

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;
}
