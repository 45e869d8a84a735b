import { describe, expect, it } from 'vitest';
import type { CoreEvent } from './events.js';
import { UserSendLog, explainUser, formatExplanation } from './explain.js';

const at = (iso: string) => Date.parse(iso);
const USER = '919876500005';

const sent: CoreEvent = {
  kind: 'outbound',
  atMs: at('2025-10-10T11:00:00Z'),
  waba: 'W1',
  business: 'PN1',
  user: USER,
  id: 'f1',
  template: 'marketing',
};
const failed: CoreEvent = { kind: 'status', atMs: at('2025-10-10T11:00:07Z'), id: 'f1', status: 'failed' };
const delivered: CoreEvent = {
  kind: 'status',
  atMs: at('2025-10-10T11:00:05Z'),
  id: 'f1',
  status: 'delivered',
};

function failedOf(events: CoreEvent[], rated: string[] = []) {
  const log = new UserSendLog(USER);
  for (const event of events) log.observe(event);
  return log.failed(new Set(rated));
}

describe('UserSendLog: the user’s failed messages, from the events', () => {
  it('a failed status makes the user’s message failed, in either order', () => {
    const expected = [
      {
        id: 'f1',
        waba: 'W1',
        business: 'PN1',
        user: USER,
        sentAtMs: at('2025-10-10T11:00:00Z'),
        template: 'marketing',
        failedAtMs: at('2025-10-10T11:00:07Z'),
      },
    ];
    expect(failedOf([sent, failed])).toEqual(expected);
    expect(failedOf([failed, sent])).toEqual(expected);
  });

  it('a delivered (or rated) message is not a failure, whatever else was said', () => {
    expect(failedOf([sent, failed, delivered])).toEqual([]);
    // A delivery that names no user, seen before the send log: the rater rated it, which is what counts.
    expect(failedOf([delivered, failed, sent], ['f1'])).toEqual([]);
    expect(failedOf([sent, failed], ['f1'])).toEqual([]);
  });

  it('the send log names the user: a status naming this user does not win over it', () => {
    const named: CoreEvent = { ...failed, user: USER, business: 'PN1' };
    const other: CoreEvent = { ...sent, user: '919800000001' };
    expect(failedOf([named, other])).toEqual([]);
  });

  it('a message known only from Meta’s statuses was sent at its first status', () => {
    const firstStatus: CoreEvent = {
      kind: 'status',
      atMs: at('2025-10-10T11:00:01Z'),
      id: 'f9',
      status: 'sent',
      waba: 'W1',
      business: 'PN1',
      user: USER,
    };
    const failure: CoreEvent = { ...firstStatus, atMs: at('2025-10-10T11:00:09Z'), status: 'failed' };
    expect(failedOf([failure, firstStatus])).toEqual([
      expect.objectContaining({ id: 'f9', sentAtMs: firstStatus.atMs, failedAtMs: failure.atMs }),
    ]);
    expect(failedOf([failure, firstStatus])[0]!.template).toBeUndefined();
  });

  it('remembers every business number of the input, whoever the user', () => {
    const log = new UserSendLog(USER);
    log.observe({ ...sent, user: '919800000001', business: 'PN7' });
    expect([...log.businesses]).toEqual(['PN7']);
  });
});

describe('explainUser: messages never charged', () => {
  it('tells pending and failed messages at their send time, filtered by business number', () => {
    const unrated = [
      { id: 'p1', waba: 'W1', business: 'PN1', user: USER, sentAtMs: at('2025-10-10T10:00:00Z') },
      {
        id: 'f1',
        waba: 'W1',
        business: 'PN2',
        user: USER,
        sentAtMs: at('2025-10-10T09:00:00Z'),
        template: 'utility' as const,
        failedAtMs: at('2025-10-10T09:00:04Z'),
      },
    ];
    const all = explainUser(USER, undefined, [], [], unrated);
    expect(all.entries.map((e) => [e.at, e.kind, e.text])).toEqual([
      ['2025-10-10T09:00:00Z', 'failed', 'utility template f1 failed at 2025-10-10T09:00:04Z: never charged'],
      ['2025-10-10T10:00:00Z', 'pending', 'message p1 sent, never delivered: not charged'],
    ]);
    const one = explainUser(USER, 'PN1', [], [], unrated);
    expect(one.entries.map((e) => e.message_id)).toEqual(['p1']);
    expect(one.failed).toEqual([]);
    expect(formatExplanation(one)).toContain(
      'Not charged: 1 message(s) sent but never delivered (pending), 0 failed',
    );
  });
});
