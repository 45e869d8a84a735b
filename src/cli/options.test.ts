import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { EXIT } from './exit-codes.js';
import { buildProgram } from './program.js';
import { collectPaths, optionValue, optionValues, pathArgument } from './options.js';

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
    ['rate', [events], []],
    ['rate', [], [events]],
    ['explain', [events, '--user', '919876543210'], []],
    ['explain', ['--user', '919876543210'], [events]],
  ])(
    '%s reads CSV files after one --rate-cards as rate cards (%j before, %j after)',
    async (command, before, after) => {
      const { code, err, out } = await runWameter([
        command,
        ...before,
        '--rate-cards',
        CARD_2025,
        CARD_2023,
        ...after,
        '--format',
        'json',
      ]);
      expect(err).not.toContain('is a CSV file');
      expect(code).toBe(EXIT.OK);
      // Only the June 2023 card prices the 2024 conversation: it was read as a card.
      expect(JSON.parse(out).units).toEqual([
        expect.objectContaining({ amount: '0.0042', rate_card: 'usd-2023-06-01-partial' }),
      ]);
    },
  );

  it('rate reads CSV files after --rate-cards=PATH as rate cards too, and a missing one is named as a card', async () => {
    const priced = await runWameter(['rate', events, `--rate-cards=${CARD_2025}`, CARD_2023]);
    expect(priced.code).toBe(EXIT.OK);
    const missing = await runWameter(['rate', events, '--rate-cards', CARD_2023, MISSING_CARD]);
    expect(missing.code).toBe(EXIT.USAGE);
    expect(missing.err).toContain(`cannot read rate cards ${MISSING_CARD}`);
  });

  it('rate keeps a folder after a card a source, and a CSV after an event file after the cards refused', async () => {
    // A folder could hold events or cards: it stays an event source, as without the card before it.
    const cards = mkdtempSync(join(tmpdir(), 'wameter-cards-'));
    writeFileSync(join(cards, 'usd-2023-06-01.csv'), readFileSync(CARD_2023));
    const folder = await runWameter(['rate', events, '--rate-cards', CARD_2025, cards, '--format', 'json']);
    expect(folder.err).toContain(`wameter: ${cards}: UNREADABLE_SOURCE: directory holds no event files`);
    // The folder holds cards only: the advice is the flag, not renaming a card to .ndjson.
    expect(folder.err).toContain(
      'a folder of .csv files holds rate cards, not events: give it with its own --rate-cards flag',
    );
    expect(folder.err).not.toContain('rename a file of events');
    expect(folder.code).toBe(EXIT.BAD_INPUT);
    const afterEvents = await runWameter(['rate', '--rate-cards', CARD_2025, events, CARD_2023]);
    expect(afterEvents.code).toBe(EXIT.USAGE);
    expect(afterEvents.err).toBe(
      `wameter: ${CARD_2023} is a CSV file, not events (event files are .json, .ndjson or .jsonl): for several rate cards repeat the flag: --rate-cards … --rate-cards ${CARD_2023}\n`,
    );
  });

  it('rate without sources, only cards after --rate-cards, is refused as without sources (stdin only with -)', async () => {
    const { code, err } = await runWameter(['rate', '--rate-cards', CARD_2025, CARD_2023], { stdin: '' });
    expect(code).toBe(EXIT.USAGE);
    expect(err).toBe('wameter: give event files or folders, or - to read stdin (see wameter rate --help)\n');
  });

  it('reconcile reads CSV files after one --rate-cards as rate cards, and refuses to run without a source', async () => {
    const listed = await runWameter(['reconcile', events, '--rate-cards', CARD_2025, CARD_2023]);
    expect(listed.err).not.toContain('is a CSV file');
    expect(listed.err).not.toContain('cannot read rate cards');
    // Nothing of Meta's in these events to compare with: exit 1 says so, after reading both cards.
    expect(listed.err).toContain('nothing could be checked against Meta');
    const none = await runWameter(['reconcile', '--rate-cards', CARD_2025], { stdin: '' });
    expect(none.code).toBe(EXIT.USAGE);
    expect(none.err).toBe(
      'wameter: give event files or folders, or - to read stdin (see wameter reconcile --help)\n',
    );
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

  it('estimate names the second card, not the recipients file, when the recipients follow two cards', async () => {
    const { code, err } = await runWameter([
      'estimate',
      '--rate-cards',
      CARD_2025,
      CARD_2023,
      recipients,
      '--template',
      'utility',
    ]);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain(`--rate-cards … --rate-cards ${CARD_2023}`);
    expect(err).not.toContain(`--rate-cards ${recipients}`);
  });

  it('rate says a CSV source is not events, and speaks of rate cards only after --rate-cards', async () => {
    for (const args of [
      ['rate', recipients],
      ['rate', events, '--format', 'json', CARD_2023],
      ['explain', CARD_2023, events, '--user', '919876543210', '--rate-cards', CARD_2025],
    ]) {
      const csv = args.find((arg) => arg.endsWith('.csv') && arg !== CARD_2025)!;
      const { code, err } = await runWameter(args);
      expect(code, args.join(' ')).toBe(EXIT.USAGE);
      expect(err, args.join(' ')).toBe(
        `wameter: ${csv} is a CSV file, not events (event files are .json, .ndjson or .jsonl)\n`,
      );
    }
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
    for (const [args, what] of [
      [['rate', events, '--accounts', '--format', 'json'], 'a file or folder'],
      [['estimate', recipients, '--template', 'utility', '--db', '--format', 'json'], 'a database URL'],
      [['import', events, '--config', '--db', 'sqlite::memory:'], 'a file or folder'],
    ] as const) {
      const { code, err } = await runWameter([...args]);
      expect(code, args.join(' ')).toBe(EXIT.USAGE);
      expect(err, args.join(' ')).toContain(`is an option, not ${what}`);
    }
  });

  it('refuses - (stdin) for a flag that reads one file, saying how to give a pipe', async () => {
    for (const args of [
      ['rate', events, '--accounts', '-'],
      ['reconcile', events, '--analytics', '-'],
      ['import', events, '--config', '-', '--db', 'sqlite::memory:'],
    ]) {
      const { code, err, out } = await runWameter(args, { stdin: '{}' });
      expect(code, args.join(' ')).toBe(EXIT.USAGE);
      expect(err, args.join(' ')).toContain(
        `"-" (stdin) is read only as an event source or estimate's recipients: give this flag a file (a pipe as /dev/stdin)`,
      );
      expect(err, args.join(' ')).not.toMatch(/no such file|ENOENT|cannot be read/);
      expect(out).toBe('');
    }
  });

  it('documents the repeatable flag in every rating command’s help', async () => {
    for (const command of ['rate', 'explain', 'estimate', 'reconcile']) {
      const { out } = await runWameter([command, '--help']);
      expect(out.replace(/\s+/g, ' '), command).toContain(
        'repeat the flag for several (--rate-cards a.csv --rate-cards tiers/)',
      );
    }
    for (const command of ['rate', 'explain']) {
      const { out } = await runWameter([command, '--help']);
      expect(out.replace(/\s+/g, ' '), command).toContain(
        'or list .csv files after it (--rate-cards a.csv b.csv: a folder after them is an event source)',
      );
    }
    const { out } = await runWameter(['rerate', '--help']);
    expect(out.replace(/\s+/g, ' ')).toContain('several after one flag, or the flag repeated');
  });
});

describe('the main help', () => {
  it("shows each command's own usage: estimate's recipients file as required, as `estimate --help` does", async () => {
    const { code, out } = await runWameter(['--help']);
    expect(code).toBe(EXIT.OK);
    expect(out).toMatch(/^ {2}estimate \[options\] <recipients> /m);
    expect(out).not.toContain('estimate [options] [recipients]');
    expect(out).toMatch(/^ {2}rate \[options\] \[sources\.\.\.\] /m);
    expect(out).toMatch(/^ {2}import \[options\] <sources\.\.\.> /m);
    expect((await runWameter(['estimate', '--help'])).out).toContain(
      'Usage: wameter estimate [options] <recipients>',
    );
  });
});

describe('every command’s help', () => {
  it('keeps its prose within 110 columns, as written: a line edited longer than the others read ragged', async () => {
    for (const command of ['rate', 'explain', 'estimate', 'reconcile', 'serve', 'import', 'rerate']) {
      const { out } = await runWameter([command, '--help']);
      // Commander wraps the options itself; the text after them is printed as written. An example (indented)
      // may be one long command line.
      const long = out.split('\n').filter((line) => !line.startsWith(' ') && line.length > 110);
      expect(long, `wameter ${command} --help`).toEqual([]);
    }
  });
});

describe('a flag left without its value', () => {
  it('refuses a value that starts with --, and passes any other to the parser', () => {
    expect(() => optionValue('a WABA id')('--format')).toThrow(InvalidArgumentError);
    expect(() => optionValue('a WABA id')('--format')).toThrow(
      '"--format" is an option, not a WABA id: the flag needs a WABA id before the next option',
    );
    expect(optionValue('a WABA id')('W1')).toBe('W1');
    expect(optionValue('a count', Number)('12')).toBe(12);
    expect(optionValues('a WABA id')('W2', ['W1'])).toEqual(['W1', 'W2']);
    expect(() => optionValues('a WABA id')('--to', ['W1'])).toThrow('"--to" is an option, not a WABA id');
  });

  it('every option of every command that takes a value refuses the next option as its value', () => {
    const { checked, unguarded } = refusalsOfEveryValueOption('--format', '"--format" is an option, not ');
    expect(unguarded).toEqual([]);
    // The walk saw the options it guards (a renamed command would otherwise leave this test empty).
    expect(checked).toEqual(
      expect.arrayContaining([
        'explain --user',
        'explain --business',
        'estimate --waba',
        'estimate --at',
        'reconcile --analytics',
        'rate --max-lateness',
        'rerate --as-of-rules',
        'serve --port',
        'import --db',
      ]),
    );
  });

  it.each([
    // The reviewer's cases: the user, then the business number, taken as "--format".
    [['explain', events, '--user', '--format', 'json']],
    [['explain', events, '--user', '919876543210', '--business', '--format', 'json']],
    [['rate', events, '--as-of-rules', '--format', 'json']],
    [['rate', events, '--stream', '--max-lateness', '--format', 'json']],
    [['rate', events, '--format', '--format', 'json']],
    [['estimate', recipients, '--template', 'utility', '--events', events, '--waba', '--format', 'json']],
    [['estimate', recipients, '--template', 'utility', '--events', events, '--business', '--format', 'json']],
    [['estimate', recipients, '--template', 'utility', '--at', '--format', 'json']],
    [['estimate', recipients, '--template', '--format', 'json']],
    [['reconcile', events, '--waba', '--format', 'json']],
    [['reconcile', events, '--analytics', 'meta.json', '--from', '--format', 'json']],
    [['rerate', '--db', `sqlite:${join(dir, 'none.db')}`, '--waba', '--format', 'json']],
    [['rerate', '--db', `sqlite:${join(dir, 'none.db')}`, '--as-of-rules', '--format', 'json']],
  ])('%j is refused: the flag needs its value before the next option', async (args) => {
    const { code, err, out } = await runWameter(args);
    expect(err).toContain('"--format" is an option, not ');
    expect(err).not.toContain('UNREADABLE_SOURCE');
    expect(err).not.toMatch(NO_STACK);
    expect(code).toBe(EXIT.USAGE);
    expect(out).toBe('');
  });
});

describe('a flag given an empty value (an unset variable in a script)', () => {
  it('every option of every command that takes a value refuses an empty value, saying what it needs', () => {
    const refusals = ['', '  '].map((value) =>
      refusalsOfEveryValueOption(
        value,
        'the value is empty (an unset variable in a script?): the flag needs ',
      ),
    );
    const checked = refusals.flatMap((refusal) => refusal.checked);
    const unguarded = refusals.flatMap((refusal) => refusal.unguarded);
    expect(unguarded).toEqual([]);
    expect(checked).toEqual(
      expect.arrayContaining([
        'rate --accounts',
        'explain --accounts',
        'explain --business',
        'estimate --accounts',
        'reconcile --accounts',
        'serve --config',
        'import --db',
      ]),
    );
  });

  it.each([
    [['rate', events, '--accounts', ''], "option '--accounts <file>' argument '' is invalid"],
    [['rate', events, '--accounts='], "option '--accounts <file>' argument '' is invalid"],
    [
      ['explain', events, '--user', '919876543210', '--business', ''],
      "option '--business <phone_number_id>'",
    ],
    [['explain', events, '--user', '919876543210', '--accounts', ''], "option '--accounts <file>'"],
    [['estimate', recipients, '--template', 'utility', '--accounts', ''], "option '--accounts <file>'"],
    [['reconcile', events, '--analytics', 'meta.json', '--accounts', ''], "option '--accounts <file>'"],
    [['rate', events, '--rate-cards', ' '], "option '--rate-cards <path>'"],
  ])('%j is refused (exit 1), never read as the flag left out', async (args, option) => {
    const { code, err, out } = await runWameter(args);
    expect(err).toContain(`error: ${option}`);
    expect(err).toContain('the value is empty (an unset variable in a script?): the flag needs ');
    expect(err).not.toMatch(NO_STACK);
    expect(code).toBe(EXIT.USAGE);
    expect(out).toBe('');
  });
});

describe('a flag that takes one of some words', () => {
  it('takes the word in any letter case, as Meta writes categories (--template MARKETING, --format JSON)', async () => {
    const lower = await runWameter([
      'estimate',
      recipients,
      '--template',
      'utility',
      '--events',
      events,
      '--format',
      'json',
    ]);
    const upper = await runWameter([
      'estimate',
      recipients,
      '--template',
      'UTILITY',
      '--events',
      events,
      '--format',
      'JSON',
    ]);
    expect(lower.code).toBe(EXIT.OK);
    expect(upper).toEqual(lower);
    const rated = await runWameter(['rate', events, '--format', 'Csv', '--rate-cards', CARD_2023]);
    expect(rated.code).toBe(EXIT.OK);
    expect(rated.out).toBe(
      (await runWameter(['rate', events, '--format', 'csv', '--rate-cards', CARD_2023])).out,
    );
  });

  it('refuses another word, listing those it takes', async () => {
    const { code, err } = await runWameter([
      'estimate',
      recipients,
      '--template',
      'promo',
      '--events',
      events,
    ]);
    expect(code).toBe(EXIT.USAGE);
    expect(err).toContain('"promo" is not one of marketing, utility, authentication');
  });
});

describe('a flag that takes one value, given twice', () => {
  it.each([
    [
      ['estimate', recipients, '--template', 'marketing', '--template', 'utility'],
      "'--template <category>'",
      '"marketing", "utility"',
    ],
    [
      ['reconcile', events, '--analytics', 'sept.json', '--analytics=oct.json'],
      "'--analytics <file>'",
      '"sept.json", "oct.json"',
    ],
    [
      ['rate', events, '--accounts', 'a.json', '--accounts', 'b.json'],
      "'--accounts <file>'",
      '"a.json", "b.json"',
    ],
    [
      ['rate', events, '--as-of-rules', 'NBP', '--as-of-rules', 'PMP-2025'],
      "'--as-of-rules <era>'",
      '"NBP", "PMP-2025"',
    ],
    [
      ['explain', events, '--user', '919876543210', '--user', '911111111111'],
      "'--user <wa_id>'",
      '"919876543210", "911111111111"',
    ],
  ])(
    '%j is refused (exit 1), naming the values, never the last kept without a word',
    async (args, flag, values) => {
      const { code, err, out } = await runWameter(args);
      expect(err).toContain(`error: option ${flag} is given 2 times (${values}), and takes one value`);
      expect(err).not.toMatch(NO_STACK);
      expect(code).toBe(EXIT.USAGE);
      expect(out).toBe('');
    },
  );

  it('a flag whose values add up may be repeated', async () => {
    const { code } = await runWameter(['rate', events, '--rate-cards', CARD_2023, '--rate-cards', CARD_2025]);
    expect(code).toBe(EXIT.OK);
  });
});

describe('commands', () => {
  it('an unknown command is refused (exit 1, naming the commands), with --help too', async () => {
    for (const args of [['cards'], ['cards', '--help'], ['cards', 'x.csv']]) {
      const { code, out, err } = await runWameter(args);
      expect(code, args.join(' ')).toBe(1);
      expect(out).toBe('');
      expect(err).toContain("error: unknown command 'cards'; the commands are rate, explain");
    }
    const help = await runWameter(['help', 'rate']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('Usage: wameter rate');
  });

  it('serve --help names the callback URL to give Meta and where the dashboard is, not only /openapi.json', async () => {
    const { code, out } = await runWameter(['serve', '--help']);
    expect(code).toBe(0);
    expect(out).toContain('https://YOUR-HOST/webhooks/whatsapp');
    expect(out).toMatch(/dashboard at \//);
  });

  it('help of an unknown command says the command is unknown, not only the program help (exit 1)', async () => {
    const { code, out, err } = await runWameter(['help', 'cards']);
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toBe(
      "error: unknown command 'cards'; the commands are rate, explain, estimate, reconcile, serve, import, rerate (wameter --help)\n",
    );
  });
});

/**
 * Gives `value` to every option of every command that takes one: the options walked, and those that did not
 * refuse it with an InvalidArgumentError whose message starts with `refusal`.
 */
function refusalsOfEveryValueOption(
  value: string,
  refusal: string,
): { checked: string[]; unguarded: string[] } {
  const io = { writeOut: () => {}, writeError: () => {}, isStdinTty: true, exitCode: 0 };
  const checked: string[] = [];
  const unguarded: string[] = [];
  for (const command of buildProgram(io).commands) {
    for (const option of command.options) {
      if (!option.required && !option.optional) continue;
      const name = `${command.name()} ${option.long}`;
      checked.push(name);
      try {
        option.parseArg?.(value, undefined);
        unguarded.push(`${name} ${JSON.stringify(value)}: accepted`);
      } catch (error) {
        const message = (error as Error).message;
        if (!(error instanceof InvalidArgumentError) || !message.startsWith(refusal))
          unguarded.push(`${name} ${JSON.stringify(value)}: ${message}`);
      }
    }
  }
  return { checked, unguarded };
}
