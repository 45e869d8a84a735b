import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BillableUnit, PendingMessage } from '../core/units.js';
import { loadRatingSetup } from './load-rating-setup.js';
import { rateSources } from './rate-sources.js';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'month');

describe('rateSources', () => {
  it('reads, rates and reports progress every N events', async () => {
    const setup = await loadRatingSetup({ accountsPath: join(EXAMPLE, 'accounts.json') });
    if (!setup.ok) throw new Error(setup.error.message);
    const progress: number[] = [];
    let units = 0;
    const result = await rateSources(
      [join(EXAMPLE, 'events.ndjson')],
      setup.value,
      { unit: () => (units += 1), pending: () => {} },
      { onProgress: (events) => progress.push(events), progressEvery: 1000 },
    );
    expect(result.read.events).toBe(3993);
    expect(progress).toEqual([1000, 2000, 3000]);
    expect(units).toBe(result.stats.units);
    expect(units).toBeGreaterThan(900);
  });
});

describe('rateSources: the columnar rater where the input is of its class, else the Rater', () => {
  const GOLDEN = join(import.meta.dirname, '..', '..', 'test', 'golden');
  const rate = async (
    sources: string[],
    accountsPath: string | undefined,
    options: Parameters<typeof rateSources>[3] = {},
  ) => {
    const setup = await loadRatingSetup(accountsPath === undefined ? {} : { accountsPath });
    if (!setup.ok) throw new Error(setup.error.message);
    const units: BillableUnit[] = [];
    const pending: PendingMessage[] = [];
    const result = await rateSources(
      sources,
      setup.value,
      { unit: (unit) => units.push(unit), pending: (message) => pending.push(message) },
      options,
    );
    return { result, units, pending };
  };

  it('rates a month of PMP-2025 traffic with the columnar rater, as the Rater does (engine "rater")', async () => {
    const sources = [join(EXAMPLE, 'events.ndjson')];
    const accounts = join(EXAMPLE, 'accounts.json');
    const columnar = await rate(sources, accounts);
    const rater = await rate(sources, accounts, { engine: 'rater' });
    expect(columnar.result.engine).toBe('columnar');
    expect(columnar.result.reader).toBe('bytes');
    expect(rater.result.engine).toBe('rater');
    expect(rater.result.bail).toBeUndefined();
    expect(columnar.units).toEqual(rater.units);
    expect(columnar.pending).toEqual(rater.pending);
    const { engine: _a, reader: _c, ...fromColumnar } = columnar.result;
    const { engine: _b, reader: _d, ...fromRater } = rater.result;
    expect(fromColumnar).toEqual(fromRater);
  });

  it('WAMETER_ENGINE=rater forces the Rater', async () => {
    const before = process.env.WAMETER_ENGINE;
    process.env.WAMETER_ENGINE = 'rater';
    try {
      const { result } = await rate([join(EXAMPLE, 'events.ndjson')], join(EXAMPLE, 'accounts.json'));
      expect(result.engine).toBe('rater');
    } finally {
      if (before === undefined) delete process.env.WAMETER_ENGINE;
      else process.env.WAMETER_ENGINE = before;
    }
  });

  it('input outside the class: read again by the Rater, progress told once, the bail said', async () => {
    const folder = join(GOLDEN, 'cbp-2023-shop-day');
    const progress: number[] = [];
    const { result, units } = await rate([join(folder, 'events.ndjson')], join(folder, 'accounts.json'), {
      onProgress: (events) => progress.push(events),
      progressEvery: 2,
    });
    expect(result.engine).toBe('rater');
    expect(result.bail).toBe('era before PMP-2025');
    expect(progress).toEqual(
      Array.from({ length: Math.floor(result.read.events / 2) }, (_, i) => 2 * (i + 1)),
    );
    expect(units.length).toBe(result.stats.units);
  });

  it('a source error: the Rater reads again and tells it, once', async () => {
    const errors: string[] = [];
    const { result } = await rate(
      [join(EXAMPLE, 'events.ndjson'), join(EXAMPLE, 'no-such-file.ndjson')],
      join(EXAMPLE, 'accounts.json'),
      { onSourceError: (error) => errors.push(error.code) },
    );
    expect(result.engine).toBe('rater');
    expect(result.bail).toBe('source error');
    expect(errors).toEqual(['UNREADABLE_SOURCE']);
  });

  it("a named pipe (a shell's <(…)) is read once, by the Rater: a bail could not read it again", async () => {
    const scenario = join(GOLDEN, 'cbp-2023-shop-day');
    const accounts = join(scenario, 'accounts.json');
    const fromFile = await rate([join(scenario, 'events.ndjson')], accounts);
    expect(fromFile.result.bail).toBeDefined();
    const fifo = join(mkdtempSync(join(tmpdir(), 'wameter-fifo-')), 'events.pipe');
    execFileSync('mkfifo', [fifo]);
    const writing = writeFile(fifo, readFileSync(join(scenario, 'events.ndjson')));
    const fromPipe = await rate([fifo], accounts);
    await writing;
    expect(fromPipe.result.engine).toBe('rater');
    expect(fromPipe.result.bail).toBeUndefined();
    expect(fromPipe.result.read.events).toBe(fromFile.result.read.events);
    expect(fromPipe.units).toEqual(fromFile.units);
    expect(fromPipe.units.length).toBeGreaterThan(0);
  });

  it('stdin, a stream, a what-if, decisions, a trace or an event hook: the Rater alone', async () => {
    const sources = [join(EXAMPLE, 'events.ndjson')];
    const accounts = join(EXAMPLE, 'accounts.json');
    for (const options of [
      { maxLatenessMs: 36 * 3_600_000 },
      { asOfRules: 'PMP-2025' as const },
      { withDecisions: true },
      { trace: { user: '1' } },
      { onEvent: () => {} },
    ]) {
      const { result } = await rate(sources, accounts, options);
      expect(result.engine).toBe('rater');
      expect(result.bail).toBeUndefined();
    }
  });
});
