// Where in a value's JSON text the field an input error names is, so that an error inside a body spread over
// many lines names the line of that field, not the body's first line. Error path only: nothing here runs for
// a value that reads without error, and a text is indexed at most once per container asked about.

/** A path into a parsed JSON value: object keys and array indexes. */
export type JsonPath = ReadonlyArray<string | number>;

/**
 * The path of the value a `parse-event.ts` message is about, read from how those messages are written: a
 * path such as `entry[0].changes[1].value.statuses[2]` first (or `webhook body`, `status line`… for the value
 * itself), then the field named after it: `… "timestamp": …`, `… needs "id"`, `… has "object": …`.
 * `field: undefined` when the message names no field (the path's value itself is at fault); `undefined` when
 * the message names a field that is not under the path (`contacts[].wa_id`): the place cannot be told.
 */
export function errorPath(
  message: string,
): { path: JsonPath; field: JsonPath | undefined; isNeed: boolean } | undefined {
  let rest = message;
  const path: Array<string | number> = [];
  const root = /^(?:webhook body|(?:inbound|outbound|status) line)(?=[ :]|$)/.exec(rest);
  if (root) rest = rest.slice(root[0].length);
  else {
    const written = /^entry\[\d+\](?:\.[A-Za-z_]\w*|\[\d+\])*/.exec(rest);
    if (written) {
      path.push(...segmentsOf(written[0]));
      rest = rest.slice(written[0].length);
      // `…messages[0]: its entry needs "id"`: the entry the item is in; `…: its value's "metadata.…"`: the
      // value of the change the item is in.
      const its = /^: its (entry|value)(?:'s)?(?=[ :]|$)/.exec(rest);
      if (its) {
        path.splice(its[1] === 'entry' ? 2 : 4);
        if (its[1] === 'value') path.push('value');
        rest = rest.slice(its[0].length);
      }
    }
  }
  const named = /^ ?(needs |has )?"([^"]+)"/.exec(rest);
  if (!named) return { path, field: undefined, isNeed: false };
  const field = named[2]!;
  if (!/^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$/.test(field)) return undefined;
  return { path, field: field.split('.'), isNeed: named[1] === 'needs ' };
}

function segmentsOf(written: string): Array<string | number> {
  const segments: Array<string | number> = [];
  for (const [, key, index] of written.matchAll(/([A-Za-z_]\w*)|\[(\d+)\]/g)) {
    segments.push(key !== undefined ? key : Number(index));
  }
  return segments;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** A container's members as written: an object's keys (the last of a repeated key, as JSON.parse keeps) or an array's elements. */
type Members = { kind: 'object'; byKey: Map<string, number> } | { kind: 'array'; offsets: number[] };

/**
 * Offsets of the values of one JSON text (`text` from `start` to `end`, valid JSON: it was parsed). Each
 * container is scanned once, when first asked about, and its members remembered, so that many errors in one
 * large document cost one pass over what they are in, not one each.
 */
export class JsonTextIndex {
  private readonly members = new Map<number, Members | null>();

  constructor(
    private readonly text: string,
    private readonly start: number,
    private readonly end: number,
  ) {}

  /**
   * The offset where the value at `path` is written (for an object member, where its key is), or
   * `undefined` when the text has no such value.
   */
  offsetOf(path: JsonPath): number | undefined {
    let at = this.skipSpace(this.start);
    let written = at;
    for (const segment of path) {
      const members = this.membersAt(at);
      if (members === null) return undefined;
      if (typeof segment === 'number') {
        if (members.kind !== 'array' || segment >= members.offsets.length) return undefined;
        at = written = members.offsets[segment]!;
      } else {
        if (members.kind !== 'object') return undefined;
        const key = members.byKey.get(segment);
        if (key === undefined) return undefined;
        written = key;
        at = this.valueAfterKey(key);
      }
    }
    return written;
  }

  private membersAt(at: number): Members | null {
    let members = this.members.get(at);
    if (members === undefined) {
      members = this.scanMembers(at);
      this.members.set(at, members);
    }
    return members;
  }

  private scanMembers(open: number): Members | null {
    const c = this.text.charCodeAt(open);
    if (c !== 0x7b && c !== 0x5b) return null;
    const isObject = c === 0x7b;
    const byKey = new Map<string, number>();
    const offsets: number[] = [];
    let at = this.skipSpace(open + 1);
    while (at < this.end) {
      const next = this.text.charCodeAt(at);
      if (next === 0x7d || next === 0x5d) break;
      if (isObject) {
        const keyEnd = this.stringEnd(at);
        byKey.set(JSON.parse(this.text.slice(at, keyEnd)) as string, at);
        at = this.valueAfterKey(at);
      } else {
        offsets.push(at);
      }
      at = this.skipSpace(this.valueEnd(at));
      if (this.text.charCodeAt(at) === 0x2c) at = this.skipSpace(at + 1);
    }
    return isObject ? { kind: 'object', byKey } : { kind: 'array', offsets };
  }

  /** Where the value of the member whose key starts at `key` starts. */
  private valueAfterKey(key: number): number {
    const colon = this.skipSpace(this.stringEnd(key));
    return this.skipSpace(colon + 1);
  }

  private skipSpace(from: number): number {
    let at = from;
    while (at < this.end) {
      const c = this.text.charCodeAt(at);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      at++;
    }
    return at;
  }

  /** The offset just after the string that starts (with its quote) at `at`. */
  private stringEnd(at: number): number {
    for (let i = at + 1; i < this.end; i++) {
      const c = this.text.charCodeAt(i);
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) return i + 1;
    }
    return this.end;
  }

  /** The offset just after the value that starts at `at`. */
  private valueEnd(at: number): number {
    const c = this.text.charCodeAt(at);
    if (c === QUOTE) return this.stringEnd(at);
    if (c !== 0x7b && c !== 0x5b) {
      let i = at;
      while (i < this.end) {
        const d = this.text.charCodeAt(i);
        if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d)
          break;
        i++;
      }
      return i;
    }
    let depth = 0;
    for (let i = at; i < this.end; i++) {
      const d = this.text.charCodeAt(i);
      if (d === QUOTE) i = this.stringEnd(i) - 1;
      else if (d === 0x7b || d === 0x5b) depth++;
      else if ((d === 0x7d || d === 0x5d) && --depth === 0) return i + 1;
    }
    return this.end;
  }
}

/**
 * The offset of the field an error message names within a value's text (see `errorPath`), under `base` (the
 * value's place in the text, e.g. its index in an array of bodies); `undefined` when it cannot be told.
 */
export function offsetOfError(index: JsonTextIndex, base: JsonPath, message: string): number | undefined {
  const named = errorPath(message);
  if (named === undefined) return undefined;
  const path = [...base, ...named.path];
  if (named.field === undefined) return index.offsetOf(path);
  const field = index.offsetOf([...path, ...named.field]);
  // A missing field is named by the object that lacks it.
  if (field === undefined && named.isNeed) return index.offsetOf(path);
  return field;
}
