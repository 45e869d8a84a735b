// Keeps the layering honest: the rating core is pure (no Node APIs, no clock, no environment, no drivers)
// and money never passes through a binary float parser.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CORE = join(import.meta.dirname, '..', 'src', 'core');
// Its folders too (src/core/columnar).
const sources = readdirSync(CORE, { recursive: true, encoding: 'utf8' })
  .filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'))
  .map((name) => ({ name, text: readFileSync(join(CORE, name), 'utf8') }));

describe('src/core stays pure', () => {
  it('has modules to check', () => {
    expect(sources.length).toBeGreaterThan(10);
  });

  const forbidden: [string, RegExp][] = [
    [
      'a Node built-in',
      /from ['"]node:|require\(['"]node:|from ['"](fs|path|crypto|http|os|child_process)['"]/,
    ],
    ['a database driver', /from ['"](pg|better-sqlite3|kysely)['"]/],
    ['the process', /\bprocess\./],
    ['the clock', /Date\.now\(|new Date\(\)/],
    ['a float parser for money', /parseFloat\(/],
    ['the server, store, ingest or cli layers', /from ['"](?:\.\.\/)+(server|store|ingest|cli|use-cases)\//],
  ];
  for (const [what, pattern] of forbidden) {
    it(`imports or uses no ${what}`, () => {
      const offenders = sources.filter((s) => pattern.test(s.text)).map((s) => s.name);
      expect(offenders).toEqual([]);
    });
  }
});
