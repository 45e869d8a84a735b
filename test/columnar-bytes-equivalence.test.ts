// `rateSources` over files: its default path — the columnar byte reader
// (src/ingest/columnar/read-columnar.ts) into the columnar rater, else the reader's events, else the Rater —
// against the Rater alone (`engine: 'rater'`) and against the columnar rater fed the reader's events
// (`columnarReader: 'events'`): the same sink calls in order, the same summary and read summary, the same
// errors and notes, progress told once.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureJsonFiles } from './support/fixture-files.js';
import { generateAccounts, generateTraffic, type TrafficOptions } from '../bench/generate-traffic.js';
import { ScannedBody, scanWebhookBody } from '../src/ingest/columnar/scan-webhook-body.js';
import { loadRatingSetup } from '../src/use-cases/load-rating-setup.js';
import { rateSources, type RateSourcesOptions } from '../src/use-cases/rate-sources.js';

const scratch = mkdtempSync(join(tmpdir(), 'wameter-columnar-bytes-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

type SetupInput = Parameters<typeof loadRatingSetup>[0];

async function rateFiles(sources: string[], setupInput: SetupInput, options: RateSourcesOptions = {}) {
  const setup = await loadRatingSetup(setupInput);
  if (!setup.ok) throw new Error(setup.error.message);
  const calls: [string, unknown][] = [];
  const said: unknown[] = [];
  const progress: number[] = [];
  const result = await rateSources(
    sources,
    setup.value,
    { unit: (unit) => calls.push(['unit', unit]), pending: (message) => calls.push(['pending', message]) },
    {
      onSourceError: (error) => said.push(['error', error]),
      onIgnored: (note) => said.push(['note', note]),
      onProgress: (events) => progress.push(events),
      progressEvery: 3,
      ...options,
    },
  );
  const { engine, reader, bail, ...summary } = result;
  return { calls, said, progress, summary, engine, reader, bail };
}

/**
 * The default path's output is the Rater's and the event-fed columnar rater's, exactly; returns how the
 * default path read and rated (`bytes`, `events` or `rater`).
 */
async function expectSameAllWays(sources: string[], setupInput: SetupInput = {}): Promise<string> {
  const byDefault = await rateFiles(sources, setupInput);
  const rater = await rateFiles(sources, setupInput, { engine: 'rater' });
  const events = await rateFiles(sources, setupInput, { columnarReader: 'events' });
  expect(rater.engine).toBe('rater');
  expect(events.reader).toBe('events');
  for (const other of [rater, events]) {
    expect(byDefault.calls.length).toBe(other.calls.length);
    expect(byDefault.calls).toEqual(other.calls);
    expect(byDefault.summary).toEqual(other.summary);
    expect(byDefault.said).toEqual(other.said);
    expect(byDefault.progress).toEqual(other.progress);
  }
  // Progress told once each, in order.
  expect(byDefault.progress).toEqual(
    Array.from({ length: Math.floor(byDefault.summary.read.events / 3) }, (_, i) => 3 * (i + 1)),
  );
  return byDefault.engine === 'rater' ? 'rater' : byDefault.reader;
}

function written(name: string, text: string | Buffer): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

describe('rateSources over files: generated traffic read as bytes, exactly as the Rater rates it', () => {
  const shapes: [string, TrafficOptions][] = [
    ['default shape', { seed: 21, eventsTarget: 4_000, users: 300 }],
    [
      'disorder and duplicates',
      { seed: 22, eventsTarget: 3_000, users: 100, disorder: 0.5, duplicates: 0.3 },
    ],
    ['webhooks only', { seed: 23, eventsTarget: 3_000, users: 200, webhookFraction: 1, days: 3 }],
    ['no webhooks, time-ordered', { seed: 24, eventsTarget: 3_000, users: 200, webhookFraction: 0 }],
    ['mid-PMP-2025', { seed: 25, eventsTarget: 3_000, start: '2026-02-20T00:00:00Z', days: 40 }],
  ];
  for (const [name, options] of shapes) {
    it(`${name}: the byte reader rates it`, async () => {
      const file = written(
        `${name.replaceAll(' ', '-')}.ndjson`,
        [...generateTraffic(options)].join('\n') + '\n',
      );
      const accountsPath = written(
        `${name.replaceAll(' ', '-')}.accounts.json`,
        JSON.stringify(generateAccounts(options)),
      );
      expect(await expectSameAllWays([file], { accountsPath })).toBe('bytes');
    });
  }

  it('out of the class (across 2025-07-01): the byte reader meets the bail, the Rater rates', async () => {
    const options = { seed: 26, eventsTarget: 2_000, start: '2025-06-25T00:00:00Z', days: 10 };
    const file = written('across.ndjson', [...generateTraffic(options)].join('\n') + '\n');
    const accountsPath = written('across.accounts.json', JSON.stringify(generateAccounts(options)));
    expect(await expectSameAllWays([file], { accountsPath })).toBe('rater');
    expect((await rateFiles([file], { accountsPath })).bail).toBe('era before PMP-2025');
  });
});

const W = '100000000000001';
const B = '106540352242922';
const T0 = Date.parse('2025-10-06T10:00:00Z');
const MIN = 60_000;
const iso = (atMs: number) => new Date(atMs).toISOString();
const line = (fields: Record<string, unknown>) => JSON.stringify(fields);
const outboundLine = (id: string, atMs: number, user: string, template: string | null) =>
  line({ kind: 'outbound', at: iso(atMs), waba: W, business: B, user, id, template });
const inboundLine = (id: string, atMs: number, user: string) =>
  line({ kind: 'inbound', at: iso(atMs), waba: W, business: B, user, id });
const statusLine = (id: string, word: string, atMs: number) =>
  line({ kind: 'status', at: iso(atMs), id, status: word });
/** Meta's webhook body (WABA W, number B) of one change of `messages` whose value holds `fields`. */
const messagesBody = (fields: Record<string, unknown>) =>
  JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: W,
        changes: [
          {
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550783881', phone_number_id: B },
              ...fields,
            },
            field: 'messages',
          },
        ],
      },
    ],
  });
/** Meta's webhook body of one user's text message. */
const inboundBody = (id: string, atMs: number, user: string) =>
  messagesBody({
    contacts: [{ profile: { name: 'A' }, wa_id: user }],
    messages: [{ from: user, id, timestamp: String(atMs / 1000), type: 'text', text: { body: 'hi' } }],
  });

/** A user's message, then a service answer and a utility template in its window, each delivered. */
function conversation(
  n: number,
  atMs: number,
  inbound: string,
  outbound: (id: string, at: number, t: string | null) => string,
) {
  return [
    inbound,
    outbound(`wamid.s${n}`, atMs + 5 * MIN, null),
    statusLine(`wamid.s${n}`, 'delivered', atMs + 6 * MIN),
    outbound(`wamid.u${n}`, atMs + 7 * MIN, 'utility'),
    statusLine(`wamid.u${n}`, 'delivered', atMs + 8 * MIN),
  ];
}

describe('rateSources over files: lines the scanner refuses, mixed with accepted ones', () => {
  it('a Brazilian user written two ways, on scanned lines and in a webhook body, is one user', async () => {
    // 5511 8765 4321 without the ninth digit; 5511 9 8765 4321 with it (phone.ts canonicalUser).
    const lines = [
      ...conversation(1, T0, inboundBody('wamid.i1', T0, '5511987654321'), (id, at, t) =>
        outboundLine(id, at, '551187654321', t),
      ),
      // The other way round: the user's message scanned, the answers read by JSON.parse (escaped ids).
      ...conversation(2, T0 + 60 * MIN, inboundLine('wamid.i2', T0 + 60 * MIN, '551187650000'), (id, at, t) =>
        outboundLine(id, at, '5511987650000', t).replace('"wamid.', '"wamid\\u002e'),
      ),
    ];
    const file = written('brazil.ndjson', lines.join('\n') + '\n');
    expect(await expectSameAllWays([file])).toBe('bytes');
    const { calls, summary } = await rateFiles([file], {});
    // Both answers in the user's window: service and utility free (no unit of a category charged).
    expect(summary.stats.units).toBe(4);
    expect(calls.filter(([, unit]) => (unit as { rule?: string }).rule === 'PMP_CHARGED')).toEqual([]);
  });

  it('a Mexican user written with and without the 1 after 52, on scanned lines and in a webhook body, is one user', async () => {
    // 52 1 55 1234 5678 as Mexico wrote mobiles until 2019, 52 55 1234 5678 without it (canonicalUser).
    const lines = [
      ...conversation(1, T0, inboundBody('wamid.i1', T0, '525512345678'), (id, at, t) =>
        outboundLine(id, at, '5215512345678', t),
      ),
      ...conversation(
        2,
        T0 + 60 * MIN,
        inboundLine('wamid.i2', T0 + 60 * MIN, '5215512340000'),
        (id, at, t) => outboundLine(id, at, '525512340000', t),
      ),
    ];
    const file = written('mexico.ndjson', lines.join('\n') + '\n');
    expect(await expectSameAllWays([file])).toBe('bytes');
    const { calls, summary } = await rateFiles([file], {});
    expect(summary.stats.units).toBe(4);
    expect(calls.filter(([, unit]) => (unit as { rule?: string }).rule === 'PMP_CHARGED')).toEqual([]);
    expect(new Set(calls.map(([, unit]) => (unit as { user?: string }).user))).toEqual(
      new Set(['525512345678', '525512340000']),
    );
  });

  it('escapes, keys in another order, white space: read by JSON.parse, rated by bytes', async () => {
    const lines = [
      ...conversation(1, T0, inboundLine('wamid.i1', T0, '919876543210'), (id, at, t) =>
        outboundLine(id, at, '919876543210', t),
      ),
      line({
        id: 'wamid.k1',
        kind: 'outbound',
        at: iso(T0 + 90 * MIN),
        waba: W,
        business: B,
        user: '919876543210',
        template: 'marketing',
      }),
      `  ${statusLine('wamid.k1', 'delivered', T0 + 91 * MIN)}  `,
      statusLine('wamid.k1', 'read', T0 + 92 * MIN).replace('"read"', '"\\u0072ead"'),
      inboundLine('wamid.i3', T0 + 120 * MIN, '919876543211').replace('"kind"', '"\\u006bind"'),
    ];
    const file = written('escapes.ndjson', lines.join('\n') + '\n');
    expect(await expectSameAllWays([file])).toBe('bytes');
  });

  it('CRLF line ends, a BOM, blank lines and a last line without a line end: rated by bytes', async () => {
    const lines = conversation(1, T0, inboundLine('wamid.i1', T0, '919876543210'), (id, at, t) =>
      outboundLine(id, at, '919876543210', t),
    );
    const text = '\uFEFF' + [lines[0], '', ...lines.slice(1, 3), '', '', ...lines.slice(3)].join('\r\n');
    const file = written('crlf.ndjson', text);
    expect(await expectSameAllWays([file])).toBe('bytes');
    expect((await rateFiles([file], {})).summary.read.lines).toBe(8);
  });

  it('an unknown field (a note), a broken line (an error): the reader reads, each said once', async () => {
    const lines = conversation(1, T0, inboundLine('wamid.i1', T0, '919876543210'), (id, at, t) =>
      outboundLine(id, at, '919876543210', t),
    );
    const noted = written('noted.ndjson', [...lines, lines[1]!.replace('{', '{"category":"x",')].join('\n'));
    expect(await expectSameAllWays([noted])).toBe('rater');
    // Straight to the Rater: the event-fed columnar rater would give it up at the same line.
    expect((await rateFiles([noted], {})).bail).toBe('said by the reader');
    expect((await rateFiles([noted], {}, { columnarReader: 'events' })).bail).toBe('ignored item');
    const broken = written('broken.ndjson', [...lines, '{"kind":'].join('\n'));
    expect(await expectSameAllWays([noted, broken])).toBe('rater');
    // A webhook status of a word Meta does not document (a note), after clean files.
    const clean = written('clean.ndjson', lines.join('\n'));
    const body = JSON.parse(inboundBody('wamid.x', T0, '919876543210')) as {
      entry: { changes: { value: Record<string, unknown> }[] }[];
    };
    const value = body.entry[0]!.changes[0]!.value;
    delete value.messages;
    value.statuses = [
      {
        id: 'wamid.s1',
        status: 'Delivered',
        timestamp: String((T0 + 9 * MIN) / 1000),
        recipient_id: '919876543210',
      },
    ];
    const word = written('word.ndjson', JSON.stringify(body));
    expect(await expectSameAllWays([clean, clean, word])).toBe('rater');
  });

  it('a lone CR, an empty file, a folder: the reader reads (and says what it says)', async () => {
    const lines = conversation(1, T0, inboundLine('wamid.i1', T0, '919876543210'), (id, at, t) =>
      outboundLine(id, at, '919876543210', t),
    );
    const cr = written('cr.ndjson', lines.join('\r'));
    expect(await expectSameAllWays([cr])).toBe('events');
    // A CR as the last byte (after LF line ends, or of a file of one line): left to the reader.
    for (const text of [lines.join('\n') + '\r', lines[0] + '\r', lines.join('\r\n') + '\r\r']) {
      expect(await expectSameAllWays([written('cr-last.ndjson', text)])).toBe('events');
    }
    // An array of events on a line: read element by element by the reader, quietly.
    const array = written(
      'array.ndjson',
      [lines[0], `[${lines[1]},${lines[2]}]`, ...lines.slice(3)].join('\n'),
    );
    expect(await expectSameAllWays([array])).toBe('events');
    const empty = written('empty.ndjson', '\n\n');
    const clean = written('clean2.ndjson', lines.join('\n'));
    expect(await expectSameAllWays([clean, empty])).toBe('rater');
    // A folder (its accounts.json is read as events too: errors).
    expect(await expectSameAllWays([join(import.meta.dirname, '..', 'examples', 'month')])).toBe('rater');
  });
});

describe('rateSources over files: the golden scenarios, examples/ and the webhook fixtures', () => {
  const GOLDEN = join(import.meta.dirname, 'golden');
  const scenarios = readdirSync(GOLDEN, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  // The scenarios of PMP-2025 alone are rated by bytes; the others bail (columnar-equivalence.test.ts).
  const WAY_OF_GOLDEN: Record<string, string> = {
    'authentication-international-exceptions': 'bytes',
    'cbp-2023-shop-day': 'rater',
    'free-entry-point-across-eras': 'rater',
    'notification-to-cbp-2022': 'rater',
    'pmp-2026-10-reported-off': 'bytes',
    'pmp-2026-10-reported-on': 'rater',
    'portfolio-tiers-across-midnight': 'bytes',
    'switch-to-pmp-2025-07-01': 'rater',
  };
  it('every scenario is listed here', () => {
    expect(scenarios).toEqual(Object.keys(WAY_OF_GOLDEN).sort());
  });
  for (const name of scenarios) {
    it(`golden ${name}: ${WAY_OF_GOLDEN[name]}`, async () => {
      const folder = join(GOLDEN, name);
      const cliArgs =
        (JSON.parse(readFileSync(join(folder, 'expected.json'), 'utf8')) as { cli_args?: string[] })
          .cli_args ?? [];
      const setup: SetupInput = {
        ...(existsSync(join(folder, 'accounts.json')) ? { accountsPath: join(folder, 'accounts.json') } : {}),
        ...(existsSync(join(folder, 'rate-cards')) ? { rateCardPaths: [join(folder, 'rate-cards')] } : {}),
        ...(cliArgs.includes('--no-reported') ? { isReportedRulesEnabled: false } : {}),
      };
      expect(await expectSameAllWays([join(folder, 'events.ndjson')], setup)).toBe(WAY_OF_GOLDEN[name]);
    });
  }

  it("Meta's status bodies (pricing, conversation, several statuses, spaces): scanned, rated by bytes", async () => {
    const user = '919876543210';
    const statusOf = (id: string, word: string, atMs: number, category: string) => ({
      id,
      status: word,
      timestamp: String(atMs / 1000),
      recipient_id: user,
      ...(word === 'failed'
        ? { errors: [{ code: 131026, title: 'Message undeliverable' }] }
        : {
            conversation: { id: `c-${id}`, origin: { type: category } },
            pricing: { billable: true, pricing_model: 'PMP', type: 'regular', category },
          }),
    });
    const statusBody = (...statuses: ReturnType<typeof statusOf>[]) => messagesBody({ statuses });
    const lines = [
      outboundLine('wamid.m1', T0, user, 'marketing'),
      outboundLine('wamid.m2', T0 + MIN, user, 'marketing'),
      outboundLine('wamid.u1', T0 + 2 * MIN, user, 'utility'),
      outboundLine('wamid.f1', T0 + 3 * MIN, user, 'marketing'),
      statusBody(
        statusOf('wamid.m1', 'sent', T0 + MIN, 'marketing'),
        statusOf('wamid.m1', 'delivered', T0 + 2 * MIN, 'marketing'),
        statusOf('wamid.m2', 'read', T0 + 3 * MIN, 'marketing'),
      ),
      statusBody(statusOf('wamid.u1', 'delivered', T0 + 4 * MIN, 'utility')).replaceAll(',', ' ,\t'),
      statusBody(statusOf('wamid.f1', 'failed', T0 + 4 * MIN, 'marketing')),
    ];
    // Each body is one the byte scanner takes (not left to JSON.parse).
    const scanned = new ScannedBody();
    for (const body of lines.slice(4)) {
      const bytes = Buffer.from(body, 'utf8');
      expect(scanWebhookBody(bytes, 0, bytes.length, scanned), body).toBe(true);
    }
    const file = written('meta-statuses.ndjson', lines.join('\n') + '\n');
    expect(await expectSameAllWays([file])).toBe('bytes');
    const { summary } = await rateFiles([file], {});
    // Three delivered templates (a read counts as delivered), the failed one never charged.
    expect(summary.stats.units).toBe(3);
  });

  it('examples/month: rated by bytes', async () => {
    const folder = join(import.meta.dirname, '..', 'examples', 'month');
    const accountsPath = join(folder, 'accounts.json');
    expect(await expectSameAllWays([join(folder, 'events.ndjson')], { accountsPath })).toBe('bytes');
  });

  it('each webhook fixture file, and all of them at once', async () => {
    const files = fixtureJsonFiles();
    expect(files.length).toBeGreaterThan(40);
    const ways = new Map<string, number>();
    for (const sources of [...files.map((one) => [one]), files]) {
      const way = await expectSameAllWays(sources);
      ways.set(way, (ways.get(way) ?? 0) + 1);
    }
    // Pretty-printed documents: the reader's to read (then rated by the columnar rater, or the Rater).
    expect(Object.fromEntries(ways)).toEqual({ events: 16, rater: 43 });
  });

  it('the webhook fixtures written one body a line (NDJSON): each file, and all in one', async () => {
    const bodies = fixtureJsonFiles()
      .filter((file) => basename(file) !== 'SOURCES.json')
      .map((file) => JSON.stringify(JSON.parse(readFileSync(file, 'utf8'))));
    const ways = new Map<string, number>();
    for (const [i, text] of [...bodies.map((one) => [one]), bodies].entries()) {
      const way = await expectSameAllWays([written(`body-${i}.ndjson`, text.join('\n') + '\n')]);
      ways.set(way, (ways.get(way) ?? 0) + 1);
    }
    // Bodies of one user's message or of nothing billable, read by bytes; the others said something (a note)
    // or bail (pricing evidence, account updates…: columnar-equivalence.test.ts).
    expect(Object.fromEntries(ways)).toEqual({ bytes: 16, rater: 42 });
  });
});

describe('rateSources over files: generated traffic, its lines rewritten at random (fast-check, fixed seed)', () => {
  /** Ways to write a line that the reader reads alike (or, for the last ones, with a note or an error). */
  const rewrites: ((line: string) => string)[] = [
    (line) => line,
    // Keys in another order: JSON.parse reads it.
    (line) => JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(line) as object).reverse())),
    // An escaped character in a string: JSON.parse reads it.
    (line) => line.replace('"wamid', '"\\u0077amid'),
    // White space around the tokens and the line.
    (line) => ` ${line.replaceAll('":', '" :\t')}\t`,
    // A CR LF line end.
    (line) => `${line}\r`,
    // A blank line before it.
    (line) => `\n${line}`,
    // A user written without the Brazilian ninth digit (the reader keeps it; `canonicalUser` joins it).
    (line) => line.replace(/"(55[1-9]{2})9([6-9]\d{7})"/, '"$1$2"'),
  ];
  const weights = [40, 6, 6, 6, 6, 3, 6];

  it('each run is rated as the Rater rates it and as the event-fed columnar rater does', async () => {
    const ways = new Map<string, number>();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(fc.nat(weights.reduce((a, b) => a + b) - 1), { minLength: 400, maxLength: 400 }),
        fc.boolean(),
        fc.option(fc.nat(299), { freq: 3 }),
        async (seed, picks, isWebhookHeavy, noted) => {
          const options: TrafficOptions = {
            seed,
            eventsTarget: 300,
            users: 40,
            wabas: 2,
            days: 2,
            webhookFraction: isWebhookHeavy ? 0.6 : 0.2,
            duplicates: 0.1,
          };
          const lines = [...generateTraffic(options)].map((line, i) => {
            let pick = picks[i % picks.length]!;
            let rewrite = 0;
            while (pick >= weights[rewrite]!) pick -= weights[rewrite++]!;
            // An unknown field (a note) on one line of some runs: the reader's to read.
            return rewrites[rewrite]!(i === noted ? line.replace('{', '{"category":"x",') : line);
          });
          run += 1;
          const file = written(`random-${run}.ndjson`, lines.join('\n') + '\n');
          const accountsPath = written(
            `random-${run}.accounts.json`,
            JSON.stringify(generateAccounts(options)),
          );
          const way = await expectSameAllWays([file], { accountsPath });
          ways.set(way, (ways.get(way) ?? 0) + 1);
        },
      ),
      { seed: 2026_12_06, numRuns: 40 },
    );
    // Both ways are taken: most runs by bytes, those with a note by the Rater.
    expect(ways.get('bytes') ?? 0).toBeGreaterThan(5);
    expect(ways.get('rater') ?? 0).toBeGreaterThan(5);
  });
});
