import { describe, expect, it } from 'vitest';
import { isBeforeInBytes } from './byte-order.js';

describe('isBeforeInBytes: the order of UTF-8 bytes, as the stores compare WABAs', () => {
  it('agrees with Buffer.compare of the UTF-8 bytes where UTF-16 code units would not', () => {
    const words = [
      'W1',
      'W10',
      'W2',
      '',
      'W\u{1F600}',
      'W\uFF21',
      'W\uE000',
      'W\u00E9',
      'W\u{10000}x',
      'W\uFFFF',
    ];
    for (const a of words) {
      for (const b of words) {
        const inBytes = Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')) < 0;
        expect(isBeforeInBytes(a, b), `${JSON.stringify(a)} < ${JSON.stringify(b)}`).toBe(inBytes);
      }
    }
    // The case it exists for: UTF-16 puts the emoji first, bytes put it last.
    expect('W\u{1F600}' < 'W\uFF21').toBe(true);
    expect(isBeforeInBytes('W\u{1F600}', 'W\uFF21')).toBe(false);
  });
});
