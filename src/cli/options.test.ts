import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { EXIT } from './exit-codes.js';
import { collectPaths, pathArgument } from './options.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CARDS = join(ROOT, 'data', 'rate-cards');
const CARD_2023 = join(CARDS, 'usd-2023-06-01-partial.csv');
const CARD_2025 = join(CARDS, 'usd-2025-10-01.csv');
const MISSING_CARD = join(ROOT, 'no-such-card.csv');

const dir = mkdtempSync(join(tmpdir(), 'wameter-options-'));
// One utility conversation in India on 2024-03-01: only the June 2023 card prices it.
const events = join(dir, 'events.ndjson');
writeFileSync(
  events,
  [
    '{"kind":"inbound","at":"2024-03-01T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.in1"}',
    '{"kind":"outbound","at":"2024-03-01T10:05:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.o1","template":"utility"}',
    '{"kind":"status","at":"2024-03-01T10:05:03Z","id":"wamid.o1","status":"delivered"}',
  ].join('\n'),
);
const recipients = join(dir, 'recipients.csv');
writeFileSync(recipients, 'phone\n919876543210\n');

const NO_STACK = /\n\s+at /;

describe('path options', () => {
  it('refuses a value that is the next option, as a forgotten path', () => {
    expect(() => pathArgument('--format')).toThrow('"--format" is an option, not a file or folder');
    expect(pathArgument('cards/usd.csv')).toBe('cards/usd.csv');
    expect(collectPaths('b.csv', ['a.csv'])).toEqual(['a.csv', 'b.csv']);
  });

  it('rate prices with every --rate-cards given when the flag is repeated', async () => {
    const onlyLater = await runWameter(['rate', events, '--rate-cards', CARD_2025, '--format', 'json']);
    expect(onlyLater.code).toBe(EXIT.UNPRICED);

    const both = await runWameter([
      'rate',
      events,
      '--rate-cards',
      CARD_2025,
      '--rate-cards',
      CARD_2023,
      '--format',
      'json',
    ]);
    expect(both.code).toBe(EXIT.OK);
    const document = JSON.parse(both.out);
    expect(document.units).toEqual([
      expect.objectContaining({ amount: '0.0042', rate_card: 'usd-2023-06-01-partial' }),
    ]);
  });

  it.each([
    ['rate', [events]],
    ['explain', [events, '--user', '919876543210']],
    ['reconcile', [events]],
    ['estimate', [recipients, '--template', 'utility', '--events', events]],
  ])('%s reads a second --rate-cards as a rate card, not as a source', async (command, args) => {
    const { code, err } = await runWameter([
      command,
      ...args,
      '--rate-cards',
      CARD_2023,
      '--rate-cards',
      MISSING_CARD,
    ]);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain(`cannot read rate cards ${MISSING_CARD}`);
  });

  it.each([
    ['rate', [events]],
    ['explain', [events, '--user', '919876543210']],
    ['reconcile', [events]],
  ])('%s refuses a second path after one --rate-cards and says to repeat the flag', async (command, args) => {
    const { code, err, out } = await runWameter([command, ...args, '--rate-cards', CARD_2025, CARD_2023]);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toBe(
      `wameter: ${CARD_2023} is a CSV file, not events (event files are .json, .ndjson or .jsonl): for several rate cards repeat the flag: --rate-cards … --rate-cards ${CARD_2023}\n`,
    );
    expect(out).toBe('');
  });

  it('estimate says the same of an argument after its recipients file', async () => {
    const { code, err } = await runWameter([
      'estimate',
      recipients,
      '--template',
      'utility',
      '--rate-cards',
      CARD_2025,
      CARD_2023,
    ]);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain(`one recipients file only, not also ${CARD_2023}`);
    expect(err).toContain(`--rate-cards … --rate-cards ${CARD_2023}`);
  });

  it.each([
    ['rate', [events]],
    ['explain', [events, '--user', '919876543210']],
    ['reconcile', [events]],
    ['estimate', [recipients, '--template', 'utility']],
    ['rerate', []],
  ])('%s refuses --rate-cards followed by another option', async (command, args) => {
    const { code, err, out } = await runWameter([command, ...args, '--rate-cards', '--format', 'json']);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain('"--format" is an option, not a file or folder');
    expect(err).not.toContain('cannot read rate cards');
    expect(err).not.toMatch(NO_STACK);
    expect(out).toBe('');
  });

  it('refuses --accounts, --db and --config followed by another option', async () => {
    for (const args of [
      ['rate', events, '--accounts', '--format', 'json'],
      ['estimate', recipients, '--template', 'utility', '--db', '--format', 'json'],
      ['import', events, '--config', '--db', 'sqlite::memory:'],
    ]) {
      const { code, err } = await runWameter(args);
      expect(code, args.join(' ')).toBe(EXIT.USAGE);
      expect(err).toContain('is an option, not a file or folder');
    }
  });

  it('documents the repeatable flag in every rating command’s help', async () => {
    for (const command of ['rate', 'explain', 'estimate', 'reconcile']) {
      const { out } = await runWameter([command, '--help']);
      expect(out.replace(/\s+/g, ' '), command).toContain(
        'repeat the flag for several (--rate-cards a.csv --rate-cards tiers/)',
      );
    }
    const { out } = await runWameter(['rerate', '--help']);
    expect(out.replace(/\s+/g, ' ')).toContain('several after one flag, or the flag repeated');
  });
});
