// Finds a key given twice in one object of a JSON text (`{"dry_run": true, "dry_run": false}`), which
// JSON.parse silently reads as its last copy. Only for text JSON.parse has already accepted, and only for the
// API's own small request bodies and wameter's own files (accounts, service config) — never Meta's webhooks
// nor event lines, whose formats are not ours.

export interface RepeatedKey {
  /** The key, decoded: `"dry\u005frun"` and `"dry_run"` are one key, as JSON.parse reads them. */
  key: string;
  /** Where the object holding it sits in the body (`analytics.data[0]`); `''` for the body itself. */
  path: string;
}

type Frame =
  | { isObject: true; keys: Set<string>; lastKey: string; isKeyNext: boolean }
  | { isObject: false; index: number };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The first key (in text order) that its object already holds, or `undefined` when every object's keys are
 * its own. `text` must be JSON that JSON.parse accepts: anything else is not read correctly.
 */
export function repeatedJsonKey(text: string): RepeatedKey | undefined {
  const stack: Frame[] = [];
  for (let at = 0; at < text.length; at += 1) {
    const char = text[at];
    if (char === '{') {
      stack.push({ isObject: true, keys: new Set(), lastKey: '', isKeyNext: true });
    } else if (char === '[') {
      stack.push({ isObject: false, index: 0 });
    } else if (char === '}' || char === ']') {
      stack.pop();
    } else if (char === ',') {
      const top = stack.at(-1)!;
      if (top.isObject) top.isKeyNext = true;
      else top.index += 1;
    } else if (char === '"') {
      const start = at;
      let hasEscape = false;
      // Valid JSON: every string ends, and a backslash always escapes the character after it.
      for (at += 1; text.charCodeAt(at) !== QUOTE; at += 1) {
        if (text.charCodeAt(at) === BACKSLASH) {
          hasEscape = true;
          at += 1;
        }
      }
      const top = stack.at(-1);
      if (top?.isObject !== true || !top.isKeyNext) continue; // a string value
      const key = hasEscape ? (JSON.parse(text.slice(start, at + 1)) as string) : text.slice(start + 1, at);
      if (top.keys.has(key)) return { key, path: pathOf(stack) };
      top.keys.add(key);
      top.lastKey = key;
      top.isKeyNext = false;
    }
    // Anything else — white space, ':', numbers, true/false/null — says nothing about keys.
  }
  return undefined;
}

/** The path of the innermost frame: each container is under its parent's last key or current index. */
function pathOf(stack: readonly Frame[]): string {
  let path = '';
  for (const frame of stack.slice(0, -1)) {
    if (!frame.isObject) path += `[${frame.index}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(frame.lastKey))
      path += `${path === '' ? '' : '.'}${frame.lastKey}`;
    else path += `[${JSON.stringify(frame.lastKey)}]`;
  }
  return path;
}

/** The refusal's words: the key, and where its object is when not the body itself. */
/** Where the repeated key's object is, in words: `in the object at accounts[1]`, or `at the top level`. */
export function repeatedKeyPlace(repeated: RepeatedKey): string {
  return repeated.path === '' ? 'at the top level' : `in the object at ${repeated.path}`;
}

export function repeatedKeyMessage(repeated: RepeatedKey): string {
  const where = repeated.path === '' ? 'in the body' : `in the object at ${repeated.path}`;
  return `Key ${JSON.stringify(repeated.key)} is given twice ${where}: JSON would keep only the last copy, so the request is refused rather than read as another question. Send each key once.`;
}
