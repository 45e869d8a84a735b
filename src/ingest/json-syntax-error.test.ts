import { describe, expect, it } from 'vitest';
import { jsonSyntaxError } from './json-syntax-error.js';

/** Whether JSON.parse takes `text`. */
function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

describe('jsonSyntaxError', () => {
  it('finds no error in text JSON.parse takes, and one in text it refuses', () => {
    const texts = [
      '{}',
      '[]',
      ' {"a": [1, -2.5e+3, true, false, null, "x\\n\\u00e9\\"", {"b": {}}]} ',
      '"s"',
      '0',
      '-0.0E-1',
      '{"a": 1,}',
      '[1, 2,]',
      '[,]',
      '{,}',
      '{"a" 1}',
      '{"a": }',
      '{a: 1}',
      "{'a': 1}",
      '{"a": secret}',
      '["a" "b"]',
      '{"a": 1 "b": 2}',
      '{"a": "line\nbreak"}',
      '{"a": "C:\\path"}',
      '{"a": "\\u12"}',
      '{"a": "open',
      '{"a": [1, 2}',
      '{"a": 1}}',
      '{"a": 1} x',
      '01',
      '1.',
      '.5',
      '-',
      '1e',
      '+1',
      'tru',
      'nul',
      'true false',
      '',
      '   ',
      '[',
      '{"a":',
      '[1]]',
      '{"a": 12abc}',
      '{"a": NaN}',
      '{"a": Infinity}',
      '\u00a0{}',
    ];
    for (const text of texts) {
      const error = jsonSyntaxError(text);
      expect(error === undefined, JSON.stringify(text)).toBe(parses(text));
    }
  });

  it('says where (line and column) and what, quoting nothing of the text', () => {
    const text = '{\n  "port": 8080,\n  "verifyToken": VTOKsecret\n}\n';
    expect(jsonSyntaxError(text)).toEqual({
      offset: text.indexOf('VTOK'),
      line: 3,
      column: 18,
      problem:
        'a value was expected: a string in double quotes, a number, true, false, null, an object {…} or a list […] (a word without double quotes is not JSON)',
    });
    expect(jsonSyntaxError('{"a": 1,}')?.problem).toBe(
      'a comma before "}" is not allowed in JSON: remove it',
    );
    expect(jsonSyntaxError('["a",]')?.problem).toBe('a comma before "]" is not allowed in JSON: remove it');
    expect(jsonSyntaxError('{"a": "open')).toMatchObject({
      offset: 6,
      problem: expect.stringContaining('not closed'),
    });
    expect(jsonSyntaxError('["k1" "k2"]')?.problem).toContain('a "," or "]" was expected');
    expect(jsonSyntaxError('{"a": 1')?.problem).toContain('ends before the JSON value is complete');
  });

  it('reads a text nested far deeper than any stack without recursing', () => {
    expect(jsonSyntaxError('['.repeat(50_000) + ']'.repeat(50_000))).toBeUndefined();
    expect(jsonSyntaxError('['.repeat(50_000))?.offset).toBe(50_000);
  });
});
