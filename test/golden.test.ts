// Golden scenarios: each test/golden/<name>/ holds events.ndjson, an optional accounts.json and rate-cards/
// folder, and expected.json — the `wameter rate --format json` document (contract §4) written BY HAND from
// pricing-rules.md and the bundled cards, plus a `description` for the reviewer, optional `cli_args` and
// `exit_code`. The real command line runs in-process. `rule` (the engine's own explanation code) is not part
// of the contract and is not compared; findings are compared by the fields expected.json names.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../src/cli/io.js';
import { runCli } from '../src/cli/program.js';

const GOLDEN = join(import.meta.dirname, 'golden');

interface Expected {
  description: string;
  cli_args?: string[];
  exit_code?: number;
  units: Record<string, unknown>[];
  pending: unknown[];
  totals: unknown;
  findings: Record<string, unknown>[];
}

function memoryIo(): CliIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    isStdinTty: true,
    exitCode: 0,
    writeOut(text: string) {
      io.out += text;
    },
    writeError(text: string) {
      io.err += text;
    },
  };
  return io;
}

const scenarios = readdirSync(GOLDEN, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

describe('golden scenarios (wameter rate --format json)', () => {
  it('there are golden scenarios', () => {
    expect(scenarios.length).toBeGreaterThanOrEqual(6);
  });

  for (const name of scenarios) {
    const folder = join(GOLDEN, name);
    const expected = JSON.parse(readFileSync(join(folder, 'expected.json'), 'utf8')) as Expected;

    it(name, async () => {
      const args = ['rate', join(folder, 'events.ndjson'), '--format', 'json'];
      if (existsSync(join(folder, 'accounts.json'))) args.push('--accounts', join(folder, 'accounts.json'));
      if (existsSync(join(folder, 'rate-cards'))) args.push('--rate-cards', join(folder, 'rate-cards'));
      args.push(...(expected.cli_args ?? []));
      const io = memoryIo();
      const code = await runCli(args, io);
      expect(code, io.err).toBe(expected.exit_code ?? 0);
      const document = JSON.parse(io.out) as {
        units: Record<string, unknown>[];
        pending: unknown[];
        totals: unknown;
        findings: Record<string, unknown>[];
      };
      const units = document.units.map(({ rule: _rule, ...unit }) => unit);
      expect(units).toEqual(expected.units);
      expect(document.pending).toEqual(expected.pending);
      expect(document.totals).toEqual(expected.totals);
      expect(document.findings.map((f) => f.code)).toEqual(expected.findings.map((f) => f.code));
      expected.findings.forEach((finding, i) => expect(document.findings[i]).toMatchObject(finding));
    });
  }
});
