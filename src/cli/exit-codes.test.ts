import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_WRITER_LOCK_LOST } from '../server/main.js';
import { EXIT } from './exit-codes.js';

const README = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

/** The codes of the README's "Exit codes" table, in its order. */
function documentedCodes(): number[] {
  const section = README.slice(README.indexOf('### Exit codes'));
  const table = section.slice(0, section.indexOf('\n\n', section.indexOf('| code |')));
  return [...table.matchAll(/^\| (\d+) \|/gm)].map((match) => Number(match[1]));
}

describe('exit codes', () => {
  it('the README table lists every code a command exits with, internal errors and a failed output included', () => {
    expect(EXIT.INTERNAL).toBe(70);
    expect(EXIT.OUTPUT_FAILED).toBe(74);
    expect(EXIT.WRITER_LOCK_LOST).toBe(EXIT_WRITER_LOCK_LOST);
    expect(documentedCodes()).toEqual(Object.values(EXIT));
  });
});
