import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readText } from '../../../test/support/read-text.js';
import { generateTraffic, type TrafficOptions } from '../../../bench/generate-traffic.js';
import { instantMs } from '../../core/calendar.js';
import type { CoreEvent } from '../../core/events.js';
import { parseContractLine, parseEventValue } from '../parse-event.js';
import { LineSplitter } from './line-splitter.js';
import { instantMsOfStringBytes, scanContractLine, ScannedLine, toCoreEvent } from './scan-contract-line.js';

const SEED = 20261206;
const REPOSITORY = fileURLToPath(new URL('../../../', import.meta.url));

/** The scanner's answer for `line` (a string, written as UTF-8), or undefined when it refuses the line. */
function scan(line: string): CoreEvent | undefined {
  // Bytes around the line that would end it well, so that a scanner reading past its end would show it.
  const bytes = Buffer.from(`{"${line}"}`, 'utf8');
  const out = new ScannedLine();
  return scanContractLine(bytes, 2, bytes.length - 2, out) ? toCoreEvent(bytes, out) : undefined;
}

/** Checks that the reader reads `line`, alone, as exactly `event`: one event, no error, no note. */
async function expectReaderGives(line: string, event: CoreEvent): Promise<void> {
  const read = await readText(`${line}\n`);
  expect({ errors: read.errors, ignored: read.ignored }, line).toEqual({ errors: [], ignored: [] });
  expect(read.events, line).toStrictEqual([event]);
  // The same fields in the same order (a store or an output writing the event as JSON sees no difference).
  expect(JSON.stringify(read.events[0]), line).toBe(JSON.stringify(event));
}

/** How many events the reader makes of a line of NDJSON that it reads alone (`SourceReader.readOne`). */
function eventsOfLine(text: string): number {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 0;
  }
  const values = Array.isArray(value) ? (value as unknown[]) : [value];
  let count = 0;
  for (const item of values) {
    const line = parseContractLine(item);
    if (line !== undefined) count += 'code' in line ? 0 : 1;
    else {
      const parsed = parseEventValue(item);
      if (parsed.ok) count += parsed.value.events.length;
    }
  }
  return count;
}

describe('instantMsOfStringBytes reads `at` as calendar.instantMs does (fast-check, fixed seed)', () => {
  const twoDigits = fc.integer({ min: 0, max: 99 }).map((n) => String(n).padStart(2, '0'));
  const isoLike = fc
    .record({
      year: fc.oneof(
        fc.constantFrom('1969', '1970', '0000', '2000', '2024', '2100', '9999'),
        fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, '0')),
      ),
      month: fc.oneof(twoDigits, fc.constantFrom('01', '02', '12', '13', '00', '1')),
      day: fc.oneof(twoDigits, fc.constantFrom('28', '29', '30', '31', '00')),
      t: fc.constantFrom('T', 't', ' ', 'x'),
      hour: fc.oneof(twoDigits, fc.constantFrom('00', '23', '24')),
      minute: fc.oneof(twoDigits, fc.constantFrom('00', '59', '60')),
      second: fc.option(fc.oneof(twoDigits, fc.constantFrom('59', '60', '5')), { nil: undefined }),
      fraction: fc.option(fc.string({ unit: fc.constantFrom('0', '1', '5', '9'), maxLength: 11 }), {
        nil: undefined,
      }),
      zone: fc.oneof(
        fc.constantFrom(
          'Z',
          'z',
          '',
          '+00:00',
          '-00:00',
          '+05:30',
          '-23:59',
          '+24:00',
          '+0530',
          '+05',
          '-5',
          '+05:3',
          '+05:60',
          'ZZ',
          'Z ',
        ),
        fc
          .tuple(fc.constantFrom('+', '-'), twoDigits, fc.constantFrom(':', ''), twoDigits)
          .map((parts) => parts.join('')),
      ),
    })
    .map(({ year, month, day, t, hour, minute, second, fraction, zone }) => {
      const seconds = second === undefined ? '' : `:${second}${fraction === undefined ? '' : `.${fraction}`}`;
      return `${year}-${month}-${day}${t}${hour}:${minute}${seconds}${zone}`;
    });
  const secondsLike = fc.oneof(
    fc.nat().map(String),
    fc.constantFrom(
      '0',
      '00',
      '0001759295905',
      '99999999999',
      '100000000000',
      '1759295905.5',
      '.5',
      '5.',
      '',
      '1e9',
      '-1',
      ' 1',
      '１２',
    ),
    fc.bigInt({ min: 0n, max: 10n ** 13n }).map(String),
  );
  const anything = fc.string({
    unit: fc.constantFrom('0', '1', '2', '9', '-', ':', 'T', 'Z', '+', '.', 'x'),
    maxLength: 30,
  });

  it('answers as instantMs, or refuses (never another instant); accepts every usual form', () => {
    fc.assert(
      fc.property(fc.oneof(isoLike, secondsLike, anything), (text) => {
        const bytes = Buffer.from(`"${text}"`, 'utf8');
        const ms = instantMsOfStringBytes(bytes, 1, bytes.length - 1);
        const expected = instantMs(text);
        if (ms !== -1) expect(ms, text).toBe(expected);
        // Every instant instantMs reads is read, but Unix seconds with a fraction (left to the reader's path).
        else if (!text.includes('.') || text.charCodeAt(4) === 45) expect(expected, text).toBeUndefined();
      }),
      { seed: SEED, numRuns: 20_000 },
    );
  });
});

describe('instantMsOfStringBytes of `YYYY-MM-DDTHH:MM:SSZ` (its own path, keeping the last day read)', () => {
  it('answers each in a run of days, back and forth, as instantMs does; refuses what it refuses', () => {
    const texts = [
      '2025-10-01T00:00:09Z',
      '2025-10-01T23:59:59Z',
      '2025-10-02T00:00:00Z',
      '2025-10-01T12:00:00Z',
      '2024-02-29T10:00:00Z',
      '2023-02-29T10:00:00Z',
      '2023-02-28T10:00:00Z',
      '2023-02-28T24:00:00Z',
      '2023-02-28T10:60:00Z',
      '2023-02-28T10:00:60Z',
      '2023-02-28t10:00:00Z',
      '2023-02-28T10:00:0xZ',
      '2023-13-01T10:00:00Z',
      '1969-12-31T23:59:59Z',
      '1970-01-01T00:00:00Z',
      '9999-12-31T23:59:59Z',
      '2023-02-28T10:00:00+Z',
      '2023-02-28T10:00:00Z',
    ];
    for (const text of texts) {
      const bytes = Buffer.from(`"${text}"`, 'latin1');
      const ms = instantMsOfStringBytes(bytes, 1, bytes.length - 1);
      expect(ms === -1 ? undefined : ms, text).toBe(instantMs(text));
    }
  });
});

/** Lines of generated traffic of each shape the bench generator makes. */
const SHAPES: [string, TrafficOptions][] = [
  ['the default shape', { seed: 1, eventsTarget: 6000 }],
  ['disorder and duplicates', { seed: 2, eventsTarget: 6000, disorder: 0.3, duplicates: 0.2 }],
  ['statuses all webhooks, few users', { seed: 3, eventsTarget: 4000, webhookFraction: 1, users: 40 }],
  ['no webhooks, time-ordered', { seed: 4, eventsTarget: 4000, webhookFraction: 0, timeOrdered: true }],
];

describe('every generated line the scanner accepts is the event the reader makes of it', () => {
  for (const [name, options] of SHAPES) {
    it(`${name} (seed ${options.seed}); the generator's contract lines are all accepted`, async () => {
      const text = [...generateTraffic(options)].join('\n') + '\n';
      const read = await readText(text);
      const out = new ScannedLine();
      const acceptedLines = new Set<number>();
      let cursor = 0;
      let contractLines = 0;
      const splitter = new LineSplitter((bytes, start, end, lineNo) => {
        const kindAt = bytes.indexOf('"kind"', start);
        if (kindAt !== -1 && kindAt < end) contractLines++;
        if (scanContractLine(bytes, start, end, out)) {
          acceptedLines.add(lineNo);
          expect(read.events[cursor], `line ${lineNo}`).toStrictEqual(toCoreEvent(bytes, out));
          expect(JSON.stringify(read.events[cursor])).toBe(JSON.stringify(toCoreEvent(bytes, out)));
          cursor++;
        } else cursor += eventsOfLine(bytes.toString('utf8', start, end));
      });
      splitter.push(Buffer.from(text, 'utf8'));
      splitter.end();
      expect(cursor).toBe(read.events.length);
      const linesSaid = [...read.errors, ...read.ignored].map((said) => ('line' in said ? said.line : 0));
      expect(linesSaid.filter((line) => acceptedLines.has(line))).toEqual([]);
      expect(contractLines).toBeGreaterThan(1000);
      // Each line naming "kind" is a contract line: each is accepted, so the fast path takes the bulk.
      expect(acceptedLines.size).toBe(contractLines);
    });
  }
});

/** Every file of `folder` (recursively) whose name ends with one of `extensions`. */
function filesUnder(folder: string, extensions: readonly string[]): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(path, extensions));
    else if (extensions.some((extension) => entry.name.endsWith(extension))) found.push(path);
  }
  return found.sort();
}

// test/fixtures/webhooks is ../shared/fixtures/webhooks, copied: every file of it is read.
describe('every line of the golden inputs, examples and fixtures that the scanner accepts', () => {
  it('is read by the reader, alone, as the same event', async () => {
    const files = [
      ...filesUnder(join(REPOSITORY, 'test/golden'), ['.ndjson', '.json']),
      ...filesUnder(join(REPOSITORY, 'examples'), ['.ndjson', '.json']),
      ...filesUnder(join(REPOSITORY, 'test/fixtures'), ['.ndjson', '.json']),
    ];
    let lines = 0;
    let accepted = 0;
    let contractLines = 0;
    for (const file of files) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        lines++;
        if (line.includes('"kind"')) contractLines++;
        const event = scan(line.endsWith('\r') ? line.slice(0, -1) : line);
        if (event === undefined) continue;
        accepted++;
        await expectReaderGives(line, event);
      }
    }
    expect(files.length).toBeGreaterThan(70);
    expect(lines).toBeGreaterThan(accepted);
    // Their contract lines are all plain: each is accepted (3,620 of them, the golden inputs' and examples').
    expect(contractLines).toBeGreaterThan(3000);
    expect(accepted).toBe(contractLines);
  });
});

const O =
  '"kind":"outbound","at":"2024-03-01T10:05:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"o1"';
const I =
  '"kind":"inbound","at":"2024-03-01T10:05:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"i1"';
const S = '"kind":"status","at":"2024-03-01T10:05:00Z","id":"o1"';
const nested = (depth: number): string => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);

/** Lines at the edges of what the scanner accepts: whether it accepts each, and the reader agreeing when it does. */
const CORNERS: [string, boolean][] = [
  [`{${O},"id":"${'i'.repeat(256)}"}`.replace('"id":"o1",', ''), true],
  [`{${O},"id":"${'i'.repeat(257)}"}`.replace('"id":"o1",', ''), false],
  [`{${O},"template_name":"${'n'.repeat(512)}"}`, true],
  [`{${O},"template_name":"${'n'.repeat(513)}"}`, false],
  [`{${O},"template_name":""}`, false],
  [`{${O},"template_name":null,"delivered_at":null,"failed":null,"template":null}`, true],
  [`{${O},"failed":true}`, true],
  [`{${O},"failed":false}`, true],
  [`{${O},"failed":0}`, false],
  [`{${O},"template":"Utility"}`, false],
  [`{${O},"referral":{}}`, false],
  [`{${S},"status":null}`, false],
  [
    `{${S},"status":"delivered","waba":null,"business":null,"user":null,"pricing":null,"conversation":null}`,
    true,
  ],
  [`{${S},"status":"delivered","pricing":{}}`, false],
  [`{${S},"status":"delivered","waba":""}`, false],
  [`{${S},"status":"played"}`, false],
  [`{${I},"referral":{}}`, true],
  [`{${I},"referral":null}`, true],
  [`{${I},"referral":[]}`, false],
  [`{${I},"referral":${nested(16)}}`, true],
  [`{${I},"referral":${nested(17)}}`, false],
  [`{${I},"template":null}`, false],
  [`{${I},"id":"i2"}`, false],
  [`{${I},"extra":1}`, false],
  [`{${I}}`.replace('"user":"919876543210"', '"user":"0919876543210"'), false],
  [`{${I}}`.replace('"user":"919876543210"', '"user":"+91 98765 43210"'), false],
  [`{${I}}`.replace('"user":"919876543210"', '"user":"US.1349"'), true],
  [`{${I}}`.replace('"user":"919876543210"', '"user":"91 98765 a"'), true],
  [`{${I}}`.replace('"waba":"W1"', '"waba":null'), false],
  [`{${I}}`.replace('"waba":"W1"', '"waba":1'), false],
  [`{${I}}  \t`, true],
  [` {${I}}`, false],
  [`{\t${I.replaceAll(',', ' ,\t')} }`, true],
  [`{${I}}`.replace(',', '\f,'), false],
  ...(
    [
      ['"2024-03-01T10:00:00.123456789Z"', true],
      ['"2024-03-01T10:00:00.1234567890Z"', false],
      ['"2024-03-01t10:00:00z"', true],
      ['"2024-03-01T10:00+0530"', true],
      ['"2024-03-01T10:00:00+05"', true],
      ['"2024-02-29T10:00:00Z"', true],
      ['"2023-02-29T10:00:00Z"', false],
      ['"1969-12-31T23:59:59Z"', false],
      ['"1970-01-01T00:00:00Z"', true],
      ['"9999-12-31T23:59:59-01:00"', false],
      ['"0001709287503"', true],
      ['"1709287503.5"', false],
      ['1709287503.5', false],
      ['0', true],
      ['00', false],
      ['99999999999', true],
      ['100000000000', false],
      ['1e9', false],
      ['-1', false],
      ['null', false],
    ] as const
  ).map(([at, isAccepted]): [string, boolean] => [
    `{${I}}`.replace('"2024-03-01T10:05:00Z"', at),
    isAccepted,
  ]),
];

describe('lines at the edges of what the scanner accepts', () => {
  for (const [line, isAccepted] of CORNERS) {
    it(`${isAccepted ? 'accepts' : 'refuses'} ${line.length > 100 ? `${line.slice(0, 60)}…${line.slice(-30)}` : line}`, async () => {
      const event = scan(line);
      expect(event !== undefined).toBe(isAccepted);
      if (event !== undefined) await expectReaderGives(line, event);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// Mutations of valid lines: each mutated line is refused, or read as the reader reads it.

/** A line as its members, each the JSON text of its key and of its value, as written. */
type Members = [string, string][];

const BASE_LINES: string[] = [
  '{"kind":"inbound","at":"2024-03-01T10:00:00Z","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.in1","referral":{"source_type":"ad","n":[1,-2.5e3,{"x":null,"y":true}],"e":{}}}',
  '{"kind":"outbound","at":"2024-03-01T10:05:00+05:30","waba":"W1","business":"PN1","user":"919876543210","id":"wamid.o1","template":"utility","template_name":"order_update","delivered_at":1709287503,"failed":false}',
  '{"kind":"outbound","at":1709287500,"waba":"W1","business":"PN1","user":"US.1349","id":"wamid.o2","template":null,"failed":true}',
  '{"kind":"status","at":"2024-03-01T10:05:03.25Z","id":"wamid.o1","status":"delivered"}',
  '{"kind":"status","at":"1709287503","id":"wamid.o1","status":"read","waba":"W1","business":"PN1","user":"919876543210","pricing":null,"conversation":null}',
  ...[...generateTraffic({ seed: 9, eventsTarget: 400 })]
    .filter((line) => line.includes('"kind"'))
    .slice(0, 40),
];
const BASES: Members[] = BASE_LINES.map((line) =>
  Object.entries(JSON.parse(line) as Record<string, unknown>).map(([key, value]) => [
    JSON.stringify(key),
    JSON.stringify(value),
  ]),
);

const KEY_TEXTS = [
  'kind',
  'at',
  'waba',
  'business',
  'user',
  'id',
  'referral',
  'template',
  'template_name',
  'delivered_at',
  'failed',
  'status',
  'pricing',
  'conversation',
  'Kind',
  'kind ',
  'category',
  'template_category',
  '__proto__',
  'timestamp',
  'wamid',
  '',
  'k\\u0069nd',
  'st\\u0061tus',
  'object',
  'entry',
].map((key) => `"${key}"`);
const VALUE_TEXTS = [
  '0',
  '1',
  '-1',
  '-0',
  '1709287503',
  '01709287503',
  '1709287503.5',
  '1.7e9',
  '1709287503000',
  '99999999999',
  '100000000000',
  '1e2',
  'null',
  'true',
  'false',
  '{}',
  '[]',
  '[1]',
  '{"a":[1,{"b":null}]}',
  '{"a":1,}',
  '{"a" 1}',
  '{"a":"\\u0000"}',
  '{"a":"é"}',
  '{"a":01}',
  '""',
  '"x"',
  '"\\u0077amid.1"',
  '"wamid\\/1"',
  '"é"',
  '"😀"',
  '"\\ud800"',
  '"a\\u0000"',
  '"\u007f"',
  '"\u2028"',
  '"919876543210"',
  '"+91 98765 43210"',
  '"0919876543210"',
  '"91-98765-43210"',
  '"(91) 98765"',
  '"US.123"',
  '"91 98765 a"',
  '"marketing"',
  '"MARKETING"',
  '"utility"',
  '"authentication"',
  '"sent"',
  '"delivered"',
  '"read"',
  '"failed"',
  '"Delivered"',
  '"played"',
  '"inbound"',
  '"outbound"',
  '"status"',
  '"2024-03-01T10:00:00Z"',
  '"2024-03-01t10:00:00z"',
  '"2024-03-01T10:00Z"',
  '"2024-02-30T10:00:00Z"',
  '"2024-03-01T24:00:00Z"',
  '"2024-03-01T10:00:00+0530"',
  '"2024-03-01T10:00:00+05"',
  '"2024-03-01T10:00:00.123456789Z"',
  '"2024-03-01T10:00:00.1234567890Z"',
  '"2024-03-01T10:00:00"',
  '"2024-03-01 10:00:00Z"',
  '"1969-12-31T23:59:59Z"',
  '"9999-12-31T23:59:59-01:00"',
  '"1709287503"',
  '"0001709287503"',
  '"1709287503.5"',
  '" 1709287503"',
  `"${'i'.repeat(256)}"`,
  `"${'i'.repeat(257)}"`,
  `"${'n'.repeat(512)}"`,
  `"${'n'.repeat(513)}"`,
];
/** White space between tokens: mostly what JSON allows (and the scanner reads), now and then what it does not. */
const GAPS = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('', '', '', '', ' ', '  ', '\t') },
  { weight: 1, arbitrary: fc.constantFrom('\r', '\u00a0', '\f', '\u000b', '\ufeff') },
);

const mutation = fc.oneof(
  fc.record({ type: fc.constant('shuffle' as const), seed: fc.nat() }),
  fc.record({ type: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({
    type: fc.constant('duplicate' as const),
    at: fc.nat(),
    value: fc.option(fc.constantFrom(...VALUE_TEXTS), { nil: undefined }),
  }),
  fc.record({ type: fc.constant('rename' as const), at: fc.nat(), key: fc.constantFrom(...KEY_TEXTS) }),
  fc.record({ type: fc.constant('value' as const), at: fc.nat(), value: fc.constantFrom(...VALUE_TEXTS) }),
  // A value of another type: null, a number for a string, a string for a number…
  fc.record({
    type: fc.constant('value' as const),
    at: fc.nat(),
    value: fc.constantFrom(
      'null',
      '0',
      '1709287503',
      'true',
      'false',
      '{}',
      '[]',
      '""',
      '"x"',
      '"1709287503"',
    ),
  }),
  fc.record({
    type: fc.constant('add' as const),
    key: fc.constantFrom(...KEY_TEXTS),
    value: fc.constantFrom(...VALUE_TEXTS),
  }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(members: Members, change: Mutation): void {
  const at = 'at' in change ? change.at % Math.max(1, members.length) : 0;
  if (members.length === 0 && change.type !== 'add') return;
  if (change.type === 'shuffle') {
    let state = change.seed;
    for (let i = members.length - 1; i > 0; i--) {
      state = (state * 1103515245 + 12345) % 2147483648;
      const j = state % (i + 1);
      [members[i], members[j]] = [members[j]!, members[i]!];
    }
  } else if (change.type === 'drop') members.splice(at, 1);
  else if (change.type === 'duplicate') members.push([members[at]![0], change.value ?? members[at]![1]]);
  else if (change.type === 'rename') members[at]![0] = change.key;
  else if (change.type === 'value') members[at]![1] = change.value;
  else members.splice(at, 0, [change.key, change.value]);
}

/** The members written as a line, with `gaps` (cycled) between its tokens. */
function write(members: Members, gaps: readonly string[]): string {
  let k = 0;
  const gap = () => gaps[k++ % gaps.length]!;
  return `${gap()}{${gap()}${members.map(([key, value]) => `${key}${gap()}:${gap()}${value}`).join(`${gap()},${gap()}`)}${gap()}}${gap()}`;
}

const characterEdit = fc.record({
  at: fc.nat(),
  remove: fc.nat({ max: 2 }),
  insert: fc.constantFrom('', '', ' ', '"', ',', '}', '{', '\\', 'x', '0', '.', ':', 'é', '\u0000', '\ufeff'),
});

describe('mutated valid lines are refused, or read as the reader reads them (fast-check, fixed seed)', () => {
  it('keys reordered, spaces added, fields dropped, repeated, renamed, values replaced, characters edited', async () => {
    let accepted = 0;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: BASES.length - 1 }),
        fc.array(mutation, { maxLength: 2 }),
        fc.array(GAPS, { minLength: 1, maxLength: 7 }),
        fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: characterEdit }),
        async (pick, changes, gaps, edit) => {
          runs++;
          const members = BASES[pick]!.map(([key, value]): [string, string] => [key, value]);
          for (const change of changes) mutate(members, change);
          let line = write(members, gaps);
          if (edit !== undefined) {
            const at = edit.at % (line.length + 1);
            line = line.slice(0, at) + edit.insert + line.slice(at + edit.remove);
          }
          if (line.includes('\n')) return;
          const event = scan(line);
          if (event === undefined) return;
          accepted++;
          await expectReaderGives(line, event);
        },
      ),
      { seed: SEED, numRuns: 20_000 },
    );
    // The mutations keep enough lines valid that acceptance is tested too, not only refusal.
    expect(accepted).toBeGreaterThan(runs / 10);
  });
});
