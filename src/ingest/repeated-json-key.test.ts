// The repeated-key scanner against a reference that knows the answer: generated JSON documents whose objects
// are lists of (key, value) pairs — keys drawn from a few, so repeats are common — written with escapes chosen
// at random (fast-check, fixed seed: a failure prints the seed and the shrunk counterexample; rerun with
// WAMETER_PROPERTY_SEED=<seed>).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { repeatedJsonKey, type RepeatedKey } from './repeated-json-key.js';

const SEED = Number(process.env.WAMETER_PROPERTY_SEED ?? 20_251_001);

type Doc =
  | { kind: 'leaf'; value: null | boolean | number | string }
  | { kind: 'array'; items: Doc[] }
  | { kind: 'object'; pairs: [string, Doc][] };

/** Keys that look alike when written: a quote, a backslash, non-ASCII, astral, a lone surrogate, empties. */
const KEYS = ['a', 'b', 'a"', 'a\\', 'é', '😀', '\ud800', '', 'dry_run', '__proto__', ' ', 'x.y'];

const docArbitrary: fc.Arbitrary<Doc> = fc.letrec<{ doc: Doc }>((tie) => ({
  doc: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc
      .oneof(
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.constantFrom(...KEYS),
        fc.string({ maxLength: 4 }),
      )
      .map((value): Doc => ({ kind: 'leaf', value })),
    fc.array(tie('doc'), { maxLength: 4 }).map((items): Doc => ({ kind: 'array', items })),
    fc
      .array(fc.tuple(fc.constantFrom(...KEYS), tie('doc')), { maxLength: 5 })
      .map((pairs): Doc => ({ kind: 'object', pairs })),
  ),
})).doc;

/** A JSON string for `text`, each character written plainly or as \uXXXX as `escapes` says, in turn. */
function writeString(text: string, escapes: () => boolean): string {
  let out = '"';
  for (const unit of Array.from({ length: text.length }, (_, i) => text.charCodeAt(i))) {
    const plain = JSON.stringify(String.fromCharCode(unit)).slice(1, -1);
    out += escapes() ? `\\u${unit.toString(16).padStart(4, '0')}` : plain;
  }
  return `${out}"`;
}

function write(doc: Doc, escapes: () => boolean, space: () => string): string {
  if (doc.kind === 'leaf') {
    return typeof doc.value === 'string' ? writeString(doc.value, escapes) : JSON.stringify(doc.value);
  }
  if (doc.kind === 'array')
    return `[${doc.items.map((item) => space() + write(item, escapes, space)).join(',')}]`;
  const pairs = doc.pairs.map(
    ([key, value]) =>
      `${space()}${writeString(key, escapes)}${space()}:${space()}${write(value, escapes, space)}`,
  );
  return `{${pairs.join(',')}${space()}}`;
}

/** The reference: the first pair, in document order, whose key an earlier pair of its object has. */
function firstRepeat(doc: Doc, path: string): RepeatedKey | undefined {
  if (doc.kind === 'leaf') return undefined;
  if (doc.kind === 'array') {
    for (const [index, item] of doc.items.entries()) {
      const found = firstRepeat(item, `${path}[${index}]`);
      if (found) return found;
    }
    return undefined;
  }
  const seen = new Set<string>();
  for (const [key, value] of doc.pairs) {
    if (seen.has(key)) return { key, path };
    seen.add(key);
    const segment = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)
      ? `${path === '' ? '' : '.'}${key}`
      : `[${JSON.stringify(key)}]`;
    const found = firstRepeat(value, path + segment);
    if (found) return found;
  }
  return undefined;
}

describe('repeatedJsonKey', () => {
  it('finds what the reference finds, however the keys are escaped (generated documents)', () => {
    fc.assert(
      fc.property(
        docArbitrary,
        fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
        fc.array(fc.constantFrom('', ' ', '\n', '\t', '\r\n  '), { minLength: 1, maxLength: 8 }),
        (doc, escapeBits, spaces) => {
          let e = 0;
          let s = 0;
          const text = write(
            doc,
            () => escapeBits[e++ % escapeBits.length]!,
            () => spaces[s++ % spaces.length]!,
          );
          JSON.parse(text); // the generator writes valid JSON
          expect(repeatedJsonKey(text)).toEqual(firstRepeat(doc, ''));
        },
      ),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it.each([
    ['{"dry_run":true,"dry_run":false}', { key: 'dry_run', path: '' }],
    ['{"a\\u0022":1,"a\\"":2}', { key: 'a"', path: '' }],
    ['{"a":"\\"b\\":1,\\"b\\":2","b":3}', undefined],
    ['{"x":[{"k":1},{"k":1,"k":2}]}', { key: 'k', path: 'x[1]' }],
    ['{"x.y":{"k":1,"k":2}}', { key: 'k', path: '["x.y"]' }],
    ['{"a":{"b":1},"a":2}', { key: 'a', path: '' }],
    ['[{"a":1},{"a":2}]', undefined],
    ['{"\\\\":1,"\\u005c":2}', { key: '\\', path: '' }],
    ['"x"', undefined],
    ['{}', undefined],
  ])('%s → %j', (text, expected) => {
    JSON.parse(text);
    expect(repeatedJsonKey(text)).toEqual(expected);
  });
});
