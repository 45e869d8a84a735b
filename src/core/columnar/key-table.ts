// Interning of keys (message ids, users, business numbers, WABAs) to small integers, for the columnar rater.
// Stage 1 interns the reader's strings through a Map; a byte reader can put a table keyed by bytes behind the
// same interface. Never forgets a key: indices are dense, 0, 1, 2… in order of first sight.

export interface KeyTable {
  /** The key's index, made (the next one, `size`) at its first sight. */
  internString(text: string): number;
  /** The key of an index given before. */
  text(index: number): string;
  /** How many distinct keys were interned. */
  readonly size: number;
}

export class MapKeyTable implements KeyTable {
  private readonly indexOf = new Map<string, number>();
  private readonly texts: string[] = [];

  get size(): number {
    return this.texts.length;
  }

  internString(text: string): number {
    let index = this.indexOf.get(text);
    if (index === undefined) {
      index = this.texts.length;
      this.indexOf.set(text, index);
      this.texts.push(text);
    }
    return index;
  }

  text(index: number): string {
    const text = this.texts[index];
    if (text === undefined) throw new RangeError(`MapKeyTable: no key ${index}`);
    return text;
  }
}
