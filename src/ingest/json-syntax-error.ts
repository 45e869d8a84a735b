// Where a text that JSON.parse refused goes wrong, and what is wrong there, in words that quote none of the
// text. JSON.parse's own messages quote the text around the mistake (`Unexpected token 'V', ..."fyToken":
// VTOKsecret"... is not valid JSON`): for the service's config file, whose values are app secrets, the verify
// token and API keys, that put a secret on stderr and into the journal whenever one was left unquoted.

export interface JsonSyntaxError {
  /** The offset (UTF-16 code units) of the first character that cannot be read, or the text's length. */
  offset: number;
  /** 1-based line and column of `offset`. */
  line: number;
  column: number;
  /** What is wrong there, quoting nothing of the text. */
  problem: string;
}

const ENDS_EARLY =
  'the text ends before the JSON value is complete (a "}", "]" or closing double quote missing?)';
const VALUE_EXPECTED =
  'a value was expected: a string in double quotes, a number, true, false, null, an object {…} or a list […] ' +
  '(a word without double quotes is not JSON)';
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const ESCAPED = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);
const HEX4 = /^[0-9a-fA-F]{4}$/;

type Expecting = 'value' | 'valueOrEndOfList' | 'key' | 'keyOrEndOfObject' | 'next';

/**
 * The first syntax error of `text` as JSON (RFC 8259, as JSON.parse reads it), or undefined when it parses.
 * Iterative: a text nested however deep is read without recursion.
 */
export function jsonSyntaxError(text: string): JsonSyntaxError | undefined {
  let at = 0;
  const open: ('object' | 'list')[] = [];
  const fail = (problem: string, offset = at): JsonSyntaxError => ({
    offset,
    ...lineAndColumn(text, offset),
    problem,
  });
  const skipSpace = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at]!)) at += 1;
  };
  /** Reads the string starting at `at` (a double quote); an error, or undefined with `at` past it. */
  const readString = (): JsonSyntaxError | undefined => {
    const start = at;
    for (at += 1; at < text.length; at += 1) {
      const char = text[at]!;
      if (char === '"') {
        at += 1;
        return undefined;
      }
      if (char.charCodeAt(0) < 0x20) {
        return fail(
          'a string holds a control character (a line break or a tab): close its double quotes before it, or write it as \\n or \\t',
        );
      }
      if (char === '\\') {
        const next = text[at + 1];
        if (next === 'u' && HEX4.test(text.slice(at + 2, at + 6))) at += 5;
        else if (next !== undefined && ESCAPED.has(next)) at += 1;
        else {
          return fail(
            'a backslash in a string must start an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u and 4 hex digits): write a backslash itself as \\\\',
          );
        }
      }
    }
    return fail('a string is not closed: its closing double quote is missing', start);
  };
  let expecting: Expecting = 'value';
  for (;;) {
    skipSpace();
    const top = open.at(-1);
    if (expecting === 'next' && top === undefined) {
      return at < text.length ? fail('there is more text after the JSON value has ended') : undefined;
    }
    if (at >= text.length) return fail(ENDS_EARLY);
    const char = text[at]!;
    if (expecting === 'next') {
      const close = top === 'object' ? '}' : ']';
      if (char === ',') expecting = top === 'object' ? 'key' : 'value';
      else if (char === close) open.pop();
      else {
        return fail(
          top === 'object'
            ? 'a "," or "}" was expected after a value of an object (a comma missing, or a string not in double quotes?)'
            : 'a "," or "]" was expected after an item of a list (a comma missing, or a string not in double quotes?)',
        );
      }
      at += 1;
      continue;
    }
    if (expecting === 'key' || expecting === 'keyOrEndOfObject') {
      if (expecting === 'keyOrEndOfObject' && char === '}') {
        open.pop();
        at += 1;
        expecting = 'next';
        continue;
      }
      if (char !== '"') {
        return fail(
          char === '}'
            ? 'a comma before "}" is not allowed in JSON: remove it'
            : 'a key in double quotes was expected',
        );
      }
      const error = readString();
      if (error !== undefined) return error;
      skipSpace();
      if (at >= text.length) return fail(ENDS_EARLY);
      if (text[at] !== ':') return fail('a ":" was expected after the key');
      at += 1;
      expecting = 'value';
      continue;
    }
    // A value (or, first in a list, its end).
    if (char === ']' && (expecting === 'valueOrEndOfList' || top === 'list')) {
      if (expecting !== 'valueOrEndOfList')
        return fail('a comma before "]" is not allowed in JSON: remove it');
      open.pop();
      at += 1;
      expecting = 'next';
      continue;
    }
    if (char === '{' || char === '[') {
      open.push(char === '{' ? 'object' : 'list');
      at += 1;
      expecting = char === '{' ? 'keyOrEndOfObject' : 'valueOrEndOfList';
      continue;
    }
    expecting = 'next';
    if (char === '"') {
      const error = readString();
      if (error !== undefined) return error;
      continue;
    }
    if (char === '-' || (char >= '0' && char <= '9')) {
      NUMBER.lastIndex = at;
      const start = at;
      if (NUMBER.test(text)) at = NUMBER.lastIndex;
      if (at === start || /[0-9.eE+-]/.test(text[at] ?? '')) return fail('a number is malformed', start);
      continue;
    }
    const literal = ['true', 'false', 'null'].find((word) => text.startsWith(word, at));
    if (literal === undefined) return fail(VALUE_EXPECTED);
    at += literal.length;
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let at = text.indexOf('\n'); at !== -1 && at < offset; at = text.indexOf('\n', at + 1)) {
    line += 1;
    lineStart = at + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
