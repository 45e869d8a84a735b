import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { EXIT } from './exit-codes.js';

function cli(args: string[]) {
  return runWameter(['explain', ...args]);
}

const dir = mkdtempSync(join(tmpdir(), 'wameter-explain-'));
function eventsFile(name: string, lines: object[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.map((line) => JSON.stringify(line)).join('\n'));
  return path;
}

const USER = '919876500005';
const send = (id: string, at: string, extra: object = {}) => ({
  kind: 'outbound',
  at,
  waba: 'W1',
  business: 'PN1',
  user: USER,
  id,
  template: 'marketing',
  ...extra,
});
const status = (id: string, at: string, word: string) => ({ kind: 'status', at, id, status: word });

// Only sent: never delivered, so pending.
const onlyPending = eventsFile('pending.ndjson', [
  send('pd1', '2025-10-10T10:00:00Z'),
  status('pd1', '2025-10-10T10:00:05Z', 'sent'),
]);

// A window, a free utility message inside it, a pending and a failed marketing template.
const story = eventsFile('story.ndjson', [
  { kind: 'inbound', at: '2025-10-10T09:00:00Z', waba: 'W1', business: 'PN1', user: USER, id: 'in1' },
  send('ok1', '2025-10-10T09:30:00Z', { template: 'utility' }),
  status('ok1', '2025-10-10T09:30:02Z', 'delivered'),
  send('pd1', '2025-10-10T10:00:00Z'),
  status('pd1', '2025-10-10T10:00:05Z', 'sent'),
  status('f1', '2025-10-10T11:00:07Z', 'failed'), // before its send log line: order does not matter
  send('f1', '2025-10-10T11:00:00Z'),
  send('f2', '2025-10-10T12:00:00Z', { template: null, failed: true }),
  // Reported failed and delivered: the rater rates it as delivered, so it is not a failure here.
  send('df1', '2025-10-10T13:00:00Z', { template: 'utility' }),
  status('df1', '2025-10-10T13:00:01Z', 'failed'),
  status('df1', '2025-10-10T13:00:02Z', 'delivered'),
  // Another user's failure on another business number is not this user's story.
  send('x1', '2025-10-10T12:30:00Z', { user: '919876500009', business: 'PN2', failed: true }),
]);

describe('wameter explain: messages never charged', () => {
  it('tells a message sent but never delivered instead of saying the user has none', async () => {
    const result = await cli([onlyPending, '--user', USER]);
    expect(result.code).toBe(EXIT.OK);
    expect(result.out).toContain(
      '2025-10-10T10:00:00Z [PN1]  marketing template pd1 sent, never delivered: not charged',
    );
    expect(result.out).toContain('Not charged: 1 message(s) sent but never delivered (pending), 0 failed');
    expect(result.out).not.toContain('no messages');
    expect(result.err).not.toContain('no messages');
  });

  it('gives pending and failed messages in JSON at their send time, in order with the rest', async () => {
    const result = await cli([story, '--user', USER, '--format', 'json']);
    expect(result.code).toBe(EXIT.OK);
    const json = JSON.parse(result.out);
    expect(
      json.entries.map((e: { at: string; kind: string; message_id?: string }) => [
        e.at,
        e.kind,
        e.message_id,
      ]),
    ).toEqual([
      ['2025-10-10T09:00:00Z', 'inbound', 'in1'],
      ['2025-10-10T09:30:02Z', 'message', 'ok1'],
      ['2025-10-10T10:00:00Z', 'pending', 'pd1'],
      ['2025-10-10T11:00:00Z', 'failed', 'f1'],
      ['2025-10-10T12:00:00Z', 'failed', 'f2'],
      ['2025-10-10T13:00:02Z', 'message', 'df1'],
    ]);
    const failed = json.entries.find((e: { message_id?: string }) => e.message_id === 'f1');
    expect(failed.text).toBe('marketing template f1 failed at 2025-10-10T11:00:07Z: never charged');
    expect(failed.cost).toBeUndefined();
    expect(json.entries.find((e: { message_id?: string }) => e.message_id === 'f2').text).toBe(
      'non-template message f2 failed at 2025-10-10T12:00:00Z: never charged',
    );
    expect(json.pending).toEqual([
      { id: 'pd1', waba: 'W1', business: 'PN1', user: USER, sent_at: '2025-10-10T10:00:00Z' },
    ]);
    expect(json.failed).toEqual([
      {
        id: 'f1',
        waba: 'W1',
        business: 'PN1',
        user: USER,
        sent_at: '2025-10-10T11:00:00Z',
        failed_at: '2025-10-10T11:00:07Z',
      },
      {
        id: 'f2',
        waba: 'W1',
        business: 'PN1',
        user: USER,
        sent_at: '2025-10-10T12:00:00Z',
        failed_at: '2025-10-10T12:00:00Z',
      },
    ]);
    // The contract's fields are all still there (additive change only).
    expect(Object.keys(json)).toEqual([
      'user',
      'business',
      'entries',
      'units',
      'totals',
      'pending',
      'failed',
    ]);
  });

  it('gives them as CSV rows with the same columns', async () => {
    const result = await cli([story, '--user', USER, '--format', 'csv']);
    const rows = result.out.trim().split('\n');
    expect(rows[0]).toBe('at,kind,business,message_id,unit_id,era,rule,cost,text');
    expect(rows).toContain(
      '2025-10-10T10:00:00Z,pending,PN1,pd1,,,,,"marketing template pd1 sent, never delivered: not charged"',
    );
    expect(rows).toContain(
      '2025-10-10T11:00:00Z,failed,PN1,f1,,,,,marketing template f1 failed at 2025-10-10T11:00:07Z: never charged',
    );
  });

  it('tells them in the table, with a count apart from the charged total', async () => {
    const result = await cli([story, '--user', USER]);
    expect(result.out).toContain(
      '[PN1]  marketing template f1 failed at 2025-10-10T11:00:07Z: never charged',
    );
    expect(result.out).toContain('Not charged: 1 message(s) sent but never delivered (pending), 2 failed');
  });
});

describe('wameter explain: what is not in the input', () => {
  it('reads --user as estimate reads a number: +, spaces and dashes are ignored', async () => {
    const result = await cli([onlyPending, '--user', '+91 98765-00005', '--format', 'json']);
    expect(result.code).toBe(EXIT.OK);
    const json = JSON.parse(result.out);
    expect(json.user).toBe(USER);
    expect(json.entries).toHaveLength(1);
  });

  it('an unknown user: says the user is not in the input, exit 0', async () => {
    const result = await cli([story, '--user', '919800000001']);
    expect(result.code).toBe(EXIT.OK);
    expect(result.out).toContain('(no messages for this user in the input)');
    expect(result.err).toContain('no messages of user 919800000001 in the input: check the number');
  });

  it('an unknown --business: names the business number, not the user', async () => {
    const result = await cli([story, '--user', USER, '--business', 'PN9']);
    expect(result.code).toBe(EXIT.OK);
    expect(result.err).toContain('business number PN9 is not in the input (it has PN1, PN2)');
    expect(result.err).not.toContain(`no messages of user ${USER}`);
    expect(result.out).toContain('(no messages between this user and this business number in the input)');
  });

  it('a known business number the user never wrote to: names the numbers the user has', async () => {
    const result = await cli([story, '--user', USER, '--business', 'PN2']);
    expect(result.code).toBe(EXIT.OK);
    expect(result.err).toContain(
      `user ${USER} has no messages with business number PN2 in the input, only with PN1`,
    );
  });

  it('neither user nor business number known: says both', async () => {
    const result = await cli([story, '--user', '919800000001', '--business', 'PN9']);
    expect(result.err).toContain('business number PN9 is not in the input');
    expect(result.err).toContain('no messages of user 919800000001 in the input');
  });

  it('--business keeps only that number’s story, pending and failed messages included', async () => {
    const result = await cli([story, '--user', '919876500009', '--business', 'PN2', '--format', 'json']);
    const json = JSON.parse(result.out);
    expect(json.entries.map((e: { kind: string; message_id?: string }) => [e.kind, e.message_id])).toEqual([
      ['failed', 'x1'],
    ]);
    expect(result.err).toBe('');
  });
});
