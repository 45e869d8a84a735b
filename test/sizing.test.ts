// Table 3d of the bench (bench/sizing.ts): Meta's sizing rule, its levels as the flag gives them, and the
// verdict on a run. No timing is measured here: the verdict is given made-up figures.

import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../bench/main.js';
import {
  DEFAULT_SIZING_MPS,
  KEPT_RATE_SHARE,
  parseSizingMps,
  sizingVerdict,
  type SizingMeasure,
} from '../bench/sizing.js';

describe('the levels of table 3d (--sizing-mps)', () => {
  it("runs Meta's default and upgraded throughput when the flag is not given", () => {
    expect(parseBenchArgs([]).sizingMps).toEqual([80, 1_000]);
    expect(DEFAULT_SIZING_MPS).toEqual([80, 1_000]);
  });

  it('reads the levels in increasing order, each once, with _ as a thousands separator', () => {
    expect(parseBenchArgs(['--sizing-mps', '1_000, 80,250,80']).sizingMps).toEqual([80, 250, 1_000]);
  });

  it('runs none with "none", in any letter case', () => {
    expect(parseSizingMps('none')).toEqual([]);
    expect(parseSizingMps(' None ')).toEqual([]);
  });

  it.each(['0', '-80', '80,', ',', '1.5', 'eighty', '80;1000', ''])(
    'refuses %j, saying what it takes',
    (text) => {
      expect(() => parseSizingMps(text)).toThrow(
        /--sizing-mps takes messages sent a second, positive integers separated by commas \(e\.g\. 80,1000\), or none/,
      );
    },
  );
});

describe("the verdict on a run against Meta's standard", () => {
  const kept: SizingMeasure = {
    askedPerSecond: 3_000,
    takenPerSecond: 2_990,
    p50Ms: 2,
    p99Ms: 40,
    failed: 0,
  };

  it('meets it when the rate is kept, the median is under 250 ms, p99 under 1 s and every answer 2xx', () => {
    expect(sizingVerdict(kept)).toEqual({ meets: true, misses: [] });
  });

  it('misses it when fewer webhooks were answered than the share of the asked rate that counts as kept', () => {
    const atShare = { ...kept, takenPerSecond: KEPT_RATE_SHARE * 3_000 };
    expect(sizingVerdict(atShare).meets).toBe(true);
    const below = sizingVerdict({ ...kept, takenPerSecond: KEPT_RATE_SHARE * 3_000 - 1 });
    expect(below.meets).toBe(false);
    expect(below.misses).toEqual(['took 2849 webhooks/s of the 3000 asked']);
  });

  it('misses it at a median of 250 ms or more', () => {
    expect(sizingVerdict({ ...kept, p50Ms: 249 }).meets).toBe(true);
    expect(sizingVerdict({ ...kept, p50Ms: 250 })).toEqual({
      meets: false,
      misses: ['median 250 ms (Meta: under 250 ms)'],
    });
  });

  it('misses it when 1 % or more of the answers took a second or longer (p99 of 1 s or more)', () => {
    expect(sizingVerdict({ ...kept, p99Ms: 999 }).meets).toBe(true);
    expect(sizingVerdict({ ...kept, p99Ms: 1_000 })).toEqual({
      meets: false,
      misses: ['p99 1000 ms: 1 % or more of the answers over 1 s (Meta: fewer)'],
    });
  });

  it('misses it when any answer was not 2xx, and names every miss at once', () => {
    expect(sizingVerdict({ ...kept, failed: 1 }).misses).toEqual(['1 not answered 2xx']);
    const all = sizingVerdict({
      askedPerSecond: 240,
      takenPerSecond: 100,
      p50Ms: 300,
      p99Ms: 2_000,
      failed: 7,
    });
    expect(all.meets).toBe(false);
    expect(all.misses).toHaveLength(4);
  });
});
