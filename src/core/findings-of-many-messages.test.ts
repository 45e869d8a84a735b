// Findings that many messages share are one finding that counts them and names one exemplar, whatever the
// order of the lines, in a batch and in a stream (docs/decisions.md, "A finding's words follow no line
// order"): DELIVERED_AND_FAILED per WABA, MESSAGE_OF_TWO_WABAS per pair of WABAs. Before, each was one
// finding per message, so a file of 10,000 such messages printed 10,000 findings.

import { describe, expect, it } from 'vitest';
import { byTime, hours, rate, send, shuffled } from '../../test/support/engine.js';
import type { CoreEvent } from './events.js';
import type { Finding, FindingCode } from './units.js';

const DAY = '2025-10-06T00:00:00Z';
/** A stream that rates at every event, with an hour of lateness allowed. */
const STREAM = { maxLatenessMs: 3_600_000, flushEveryEvents: 1 };

/** The findings of `code`, as JSON text in a fixed order: every word, field and count. */
function ofCode(findings: readonly Finding[], code: FindingCode): string[] {
  return findings
    .filter((f) => f.code === code)
    .map((f) => JSON.stringify(f))
    .sort();
}

describe('DELIVERED_AND_FAILED: one finding per WABA, counting its messages', () => {
  /**
   * `count` messages of `waba`, each reported delivered and (a minute later, or for every third one a minute
   * before) failed. They are sent in the reverse order of their ids, so that the earliest delivered (the last
   * one, 3 minutes earlier still) is neither the smallest id nor the first line.
   */
  function deliveredAndFailed(waba: string, count: number, offsetH: number): CoreEvent[] {
    const events: CoreEvent[] = [];
    for (let i = 0; i < count; i++) {
      const id = `${waba}-df${String(i).padStart(4, '0')}`;
      const atMs = hours(DAY, offsetH + (count - i) * 0.05) - (i === count - 1 ? 180_000 : 0);
      const user = `9198000${String(i).padStart(5, '0')}`;
      const [outbound, delivered] = send(atMs, id, 'utility', { waba, business: `PN_${waba}`, user });
      const failedAtMs = atMs + (i % 3 === 0 ? -60_000 : 60_000);
      events.push(outbound!, delivered!, { kind: 'status', atMs: failedAtMs, id, status: 'failed' });
    }
    return events;
  }
  const events = [...deliveredAndFailed('W1', 1000, 0), ...deliveredAndFailed('W2', 40, 1)];

  it('many such messages make one finding per WABA, naming the first delivered, with the count', async () => {
    const result = await rate(events);
    expect(result.units).toHaveLength(1040);
    const findings = result.findings.filter((f) => f.code === 'DELIVERED_AND_FAILED');
    expect(findings).toEqual([
      {
        code: 'DELIVERED_AND_FAILED',
        message:
          'WABA W1: messages were reported both delivered and failed (first: W1-df0999): rated as delivered',
        message_id: 'W1-df0999',
        waba: 'W1',
        count: 1000,
      },
      {
        code: 'DELIVERED_AND_FAILED',
        message:
          'WABA W2: messages were reported both delivered and failed (first: W2-df0039): rated as delivered',
        message_id: 'W2-df0039',
        waba: 'W2',
        count: 40,
      },
    ]);
  });

  it('of two messages delivered in the same millisecond, the smaller id is named', async () => {
    const twin = (id: string) => [
      ...send(hours(DAY, 0), id, 'marketing', { user: id === 'b' ? '919800000001' : '919800000002' }),
      { kind: 'status', atMs: hours(DAY, 1), id, status: 'failed' } as CoreEvent,
    ];
    for (const order of [
      [...twin('b'), ...twin('a')],
      [...twin('a'), ...twin('b')],
    ]) {
      const [finding] = (await rate(order)).findings.filter((f) => f.code === 'DELIVERED_AND_FAILED');
      expect(finding).toMatchObject({ message_id: 'a', count: 2 });
    }
  });

  it('the same words and counts in any order of the lines, and in a stream', async () => {
    const expected = ofCode((await rate(events)).findings, 'DELIVERED_AND_FAILED');
    expect(expected).toHaveLength(2);
    for (const seed of [1, 7, 42]) {
      expect(ofCode((await rate(shuffled(events, seed))).findings, 'DELIVERED_AND_FAILED')).toEqual(expected);
    }
    expect(ofCode((await rate([...events].reverse())).findings, 'DELIVERED_AND_FAILED')).toEqual(expected);
    const streamed = await rate(byTime(events), STREAM);
    expect(streamed.stats.late).toBe(0);
    expect(ofCode(streamed.findings, 'DELIVERED_AND_FAILED')).toEqual(expected);
  });
});

describe('MESSAGE_OF_TWO_WABAS: one finding per pair of WABAs, counting the ids both name', () => {
  /** Message `id` as WABA `waba` logs it, with its own delivery (its statuses name the WABA). */
  function logged(waba: string, id: string, atMs: number): CoreEvent[] {
    return [
      { kind: 'outbound', atMs, id, waba, business: `PN_${waba}`, user: '919876543210', template: 'utility' },
      { kind: 'status', atMs: atMs + 1000, id, status: 'delivered', waba },
    ];
  }
  // 500 ids that W1 and W2 both use; the first 5 of them W3 uses too. Their times run against their ids.
  const events: CoreEvent[] = [];
  for (let i = 0; i < 500; i++) {
    const id = `shared${String(i).padStart(4, '0')}`;
    const atMs = hours(DAY, (500 - i) * 0.1);
    events.push(...logged('W2', id, atMs), ...logged('W1', id, atMs + 2000));
    if (i < 5) events.push(...logged('W3', id, atMs + 4000));
  }

  it('one finding per pair, naming the smallest id both name, with the count', async () => {
    const result = await rate(events);
    const findings = result.findings
      .filter((f) => f.code === 'MESSAGE_OF_TWO_WABAS')
      .sort((a, b) => (a.message < b.message ? -1 : 1));
    const said = (smaller: string, larger: string, count: number) => ({
      code: 'MESSAGE_OF_TWO_WABAS',
      message: `WABA ${smaller} and WABA ${larger}: events of both name the same message ids (e.g. message shared0000); Meta's ids are unique, so one of them is wrong: each WABA's events were rated apart`,
      message_id: 'shared0000',
      waba: larger,
      other_waba: smaller,
      count,
    });
    expect(findings).toEqual([said('W1', 'W2', 500), said('W1', 'W3', 5), said('W2', 'W3', 5)]);
  });

  it('the same words and counts in any order of the lines, and in a stream', async () => {
    const expected = ofCode((await rate(events)).findings, 'MESSAGE_OF_TWO_WABAS');
    expect(expected).toHaveLength(3);
    for (const seed of [3, 11, 2024]) {
      expect(ofCode((await rate(shuffled(events, seed))).findings, 'MESSAGE_OF_TWO_WABAS')).toEqual(expected);
    }
    expect(ofCode((await rate([...events].reverse())).findings, 'MESSAGE_OF_TWO_WABAS')).toEqual(expected);
    const streamed = await rate(byTime(events), STREAM);
    expect(streamed.stats.late).toBe(0);
    expect(ofCode(streamed.findings, 'MESSAGE_OF_TWO_WABAS')).toEqual(expected);
  });
});
