import { describe, expect, it } from 'vitest';
import { exemplarAt, FindingCollector } from './price-unit.js';
import type { Finding } from './units.js';

describe('FindingCollector', () => {
  it('makes a finding at once and keeps no closure (a stream must not hold what make reads)', () => {
    const findings = new FindingCollector();
    let calls = 0;
    const make = (message: string) => (): Finding => {
      calls += 1;
      return { code: 'NO_RATE', message };
    };
    findings.add('k', make('first'), exemplarAt(2000, 'b'));
    expect(calls).toBe(1);
    // A later, larger case is counted without making anything; a smaller one replaces the words at once.
    findings.add('k', make('later'), exemplarAt(3000, 'a'));
    expect(calls).toBe(1);
    findings.add('k', make('earliest'), exemplarAt(1000, 'c'));
    expect(calls).toBe(2);
    expect(findings.list()).toEqual([{ code: 'NO_RATE', message: 'earliest', count: 3 }]);
    expect(calls).toBe(2);
  });

  it('addWorded words its finding when listed, from the smallest exemplar', () => {
    const findings = new FindingCollector();
    const state = { logged: false };
    findings.addWorded(
      'k',
      () => ({ code: 'RECIPIENT_DISAGREES', message: state.logged ? 'log' : 'statuses' }),
      'b',
    );
    findings.addWorded('k', () => ({ code: 'RECIPIENT_DISAGREES', message: 'never' }), 'c');
    state.logged = true;
    expect(findings.list()).toEqual([{ code: 'RECIPIENT_DISAGREES', message: 'log', count: 2 }]);
  });

  it('addOverDays words its finding from the smallest exemplar and the last day of its cases', () => {
    const findings = new FindingCollector();
    const word = (first: string) => (last: string) => ({
      code: 'NO_RATE' as const,
      message: `${first}..${last}`,
    });
    findings.addOverDays('k', word('2025-09-10'), exemplarAt(2000, 'b'), '2025-09-10');
    findings.addOverDays('k', word('2025-09-27'), exemplarAt(4000, 'c'), '2025-09-27');
    findings.addOverDays('k', word('2025-09-03'), exemplarAt(1000, 'a'), '2025-09-03');
    findings.addOverDays('k', word('2025-09-19'), exemplarAt(3000, 'd'), '2025-09-19');
    expect(findings.list()).toEqual([{ code: 'NO_RATE', message: '2025-09-03..2025-09-27', count: 4 }]);
  });

  it('lists its findings in the order of their keys, whichever was said first', () => {
    const codes = (order: string[]) => {
      const findings = new FindingCollector();
      for (const key of order) findings.add(key, () => ({ code: 'NUMBER_OF_TWO_WABAS', message: key }));
      return findings.list().map((finding) => finding.message);
    };
    const sorted = ['NUMBER_OF_TWO_WABAS:PN1:W1:W2', 'NUMBER_OF_TWO_WABAS:PN2:W3:W4', 'NO_RATE:x'];
    expect(codes([sorted[2]!, sorted[1]!, sorted[0]!])).toEqual(['NO_RATE:x', ...sorted.slice(0, 2)]);
    expect(codes(sorted)).toEqual(['NO_RATE:x', ...sorted.slice(0, 2)]);
  });

  it('exemplarAt orders by time first, then by id; a case without a time comes last', () => {
    expect(exemplarAt(1000, 'z') < exemplarAt(2000, 'a')).toBe(true);
    expect(exemplarAt(1000, 'a') < exemplarAt(1000, 'b')).toBe(true);
    expect(exemplarAt(Infinity, 'a') > exemplarAt(253402300799000, 'z')).toBe(true);
  });
});
