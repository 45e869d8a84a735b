import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tierRate } from '../core/rate-card.js';
import { loadRateBook, loadRatingSetup } from '../use-cases/load-rating-setup.js';
import {
  BUNDLED_MARKET_TABLE_NAME,
  isVolumeTierFile,
  knownMarketsOf,
  loadBundledMarketTable,
  loadBundledRateCards,
  loadMarketTableFile,
  loadRateCards,
  packageRoot,
} from './rate-card-files.js';

const CARD = [
  'Cost per delivered message in USD, effective October 1, 2025',
  'Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service',
  'India,$US,0.0107,0.0014,0.0014,0.0280,0.0000',
  'Brazil,$US,0.0625,0.0068,0.0068,n/a,0.0000',
].join('\n');

const TIERS = [
  'Volume tiers in USD, effective October 1, 2025',
  'Market,Currency,Category,From,To,Rate',
  'India,$US,Utility,1,100000,0.0014',
  'India,$US,Utility,100001,,0.0012',
].join('\n');

let folder: string;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), 'wameter-rate-cards-'));
});

afterEach(async () => {
  await rm(folder, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const path = join(folder, name);
  await writeFile(path, text);
  return path;
}

describe('packageRoot', () => {
  it('is the folder holding wameter’s package.json', async () => {
    const manifest = JSON.parse(await readFile(join(packageRoot(), 'package.json'), 'utf8')) as {
      name: string;
    };
    expect(manifest.name).toBe('wameter');
  });
});

describe('loadBundledRateCards', () => {
  it('reads the four community cards', async () => {
    const result = await loadBundledRateCards();
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value.map((c) => c.id).sort()).toEqual([
      'usd-2022-02-01-partial',
      'usd-2023-06-01-partial',
      'usd-2024-11-01',
      'usd-2025-10-01',
    ]);
    const november2024 = result.value.find((c) => c.id === 'usd-2024-11-01');
    expect(november2024?.rates.get('India')?.utility).toBe(1400);
    expect(november2024?.rates.get('Argentina')?.authentication_international).toBeUndefined();
    expect(november2024?.provenance).toMatch(/^Provenance: community transcription/);
  });
});

describe('loadRateCards', () => {
  it('reads every .csv of a directory and attaches tier files to their card', async () => {
    await write('usd-2025-10-01.csv', CARD);
    await write('usd-2025-10-01-tiers.csv', TIERS);
    await write('README.txt', 'not a card');
    const result = await loadRateCards([folder]);
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value).toHaveLength(1);
    const card = result.value[0];
    if (!card) throw new Error('no card');
    expect(tierRate(card, 'India', 'utility', 100001)).toEqual({ band: '100001:', rateMicros: 1200 });
  });

  it('mixes files and directories, reading a file given twice once', async () => {
    const single = await write('usd-2025-10-01.csv', CARD);
    const sub = join(folder, 'older');
    await mkdir(sub);
    await writeFile(join(sub, 'usd-2024-11-01.csv'), CARD.replace('October 1, 2025', 'November 1, 2024'));
    const result = await loadRateCards([single, sub, single]);
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value.map((c) => c.effectiveDate)).toEqual(['2025-10-01', '2024-11-01']);
  });

  it('refuses a path that does not exist, naming it and saying what to give instead', async () => {
    const missing = join(folder, 'nope.csv');
    const result = await loadRateCards([missing]);
    expect(result).toEqual({
      ok: false,
      error: {
        code: 'UNREADABLE_SOURCE',
        message:
          `cannot read rate cards ${missing}: no such file or directory; check the path: give a rate card CSV ` +
          `in Meta's layout (Market,Currency,Marketing,Utility,…) or a folder of them, or leave out ` +
          `--rate-cards (for the service, WAMETER_RATE_CARDS or the config file's "rateCards") to price with the bundled cards`,
        file: missing,
      },
    });
  });

  it('says what to give for a path inside a file, too', async () => {
    const card = await write('usd-2025-10-01.csv', CARD);
    const result = await loadRateCards([join(card, 'nested.csv')]);
    expect(result.ok || result.error).toMatchObject({ code: 'UNREADABLE_SOURCE' });
    expect(result.ok || result.error.message).toMatch(
      /no such file or directory; check the path: give a rate card CSV/,
    );
  });

  it('refuses a directory without .csv files, saying what to give', async () => {
    const result = await loadRateCards([folder]);
    expect(result.ok || result.error).toMatchObject({ code: 'UNREADABLE_SOURCE', file: folder });
    expect(result.ok || result.error.message).toMatch(
      /holds no \.csv file; give a rate card CSV in Meta's layout/,
    );
  });

  it('refuses an empty list of paths', async () => {
    expect((await loadRateCards([])).ok).toBe(false);
  });

  it('passes on a bad card’s error, naming the file and line', async () => {
    const path = await write('usd-2025-10-01.csv', CARD.replace('0.0068,n/a', '0,0068,n/a'));
    const result = await loadRateCards([path]);
    expect(result.ok || result.error).toMatchObject({ code: 'BAD_RATE_CARD', file: path, line: 4 });
  });

  it('refuses a card that is not UTF-8, naming the file, line and byte, never reading "€" as U+FFFD', async () => {
    // Windows-1252 "€" is byte 0x80: read with U+FFFD, it was refused as an unknown currency "\ufffd".
    const path = join(folder, 'eur-2025-10-01.csv');
    const text = CARD.replace('in USD', 'in EUR').replaceAll('$US', '\u20ac');
    await writeFile(path, Buffer.from(text.replaceAll('\u20ac', '\u0080'), 'latin1'));
    const result = await loadRateCards([path]);
    expect(result.ok || result.error).toEqual({
      code: 'UNREADABLE_SOURCE',
      file: path,
      line: 3,
      message: `cannot read rate card ${path}: it is not UTF-8: line 3, column 7 holds byte 0x80 (offset 153), which starts no UTF-8 character, so it cannot be read as written; save the file as UTF-8 (from Windows-1252 or Latin-1: iconv -f WINDOWS-1252 -t UTF-8 FILE)`,
    });
    // The same card saved as UTF-8, with a byte-order mark as Excel writes it, is read.
    await writeFile(path, `\ufeff${text}`);
    const read = await loadRateCards([path]);
    expect(read.ok && read.value[0]!.currency).toBe('EUR');
  });

  it('refuses a tier file without its card, naming both', async () => {
    await write('usd-2024-11-01.csv', CARD.replace('October 1, 2025', 'November 1, 2024'));
    const tiers = await write('usd-2025-10-01-tiers.csv', TIERS);
    const result = await loadRateCards([folder]);
    expect(result.ok || result.error).toMatchObject({ code: 'TIERS_WITHOUT_CARD', file: tiers });
    expect(result.ok || result.error.message).toMatch(/usd-2025-10-01-tiers .* cards given: usd-2024-11-01/);
  });

  it('refuses two cards of one currency and date, naming the second file', async () => {
    await write('a.csv', CARD);
    const second = await write('b.csv', CARD);
    const result = await loadRateCards([folder]);
    expect(result.ok || result.error).toMatchObject({ code: 'DUPLICATE_RATE_CARD', file: second });
    expect(result.ok || result.error.message).toMatch(/a and b are both USD cards effective 2025-10-01/);
  });

  it('tells tier files from cards by name', () => {
    expect(isVolumeTierFile('/x/usd-2025-10-01-tiers.csv')).toBe(true);
    expect(isVolumeTierFile('/tiers/usd-2025-10-01.csv')).toBe(false);
  });
});

describe('loadRateCards with the market table', () => {
  async function bundledTable() {
    const table = await loadBundledMarketTable();
    if (!table.ok) throw new Error(table.error.message);
    return { table: table.value, name: BUNDLED_MARKET_TABLE_NAME };
  }

  it('refuses a misspelt market, naming file, line, the name and the closest market', async () => {
    const path = await write('usd-2025-10-01.csv', CARD.replace('India,', 'Indai,'));
    const result = await loadRateCards([path], await bundledTable());
    expect(result.ok || result.error).toMatchObject({ code: 'UNKNOWN_MARKET', file: path, line: 3 });
    expect(result.ok || result.error.message).toMatch(
      new RegExp(
        `^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 3: unknown market "Indai" \\(did you mean India\\?\\): wameter's market table \\(data/markets\\.csv\\) has no market of that name`,
      ),
    );
  });

  it('reads names differing only in case or spacing, under the table’s spelling, tiers included', async () => {
    await write('usd-2025-10-01.csv', CARD.replace('India,', ' INDIA ,').replace('Brazil,', 'brazil,'));
    await write('usd-2025-10-01-tiers.csv', TIERS.replaceAll('India,', 'india,'));
    const result = await loadRateCards([folder], await bundledTable());
    if (!result.ok) throw new Error(result.error.message);
    const card = result.value[0];
    if (!card) throw new Error('no card');
    expect([...card.rates.keys()]).toEqual(['India', 'Brazil']);
    expect(tierRate(card, 'India', 'utility', 100001)).toEqual({ band: '100001:', rateMicros: 1200 });
  });

  it('refuses a misspelt market in a tier file', async () => {
    await write('usd-2025-10-01.csv', CARD);
    const tiers = await write('usd-2025-10-01-tiers.csv', TIERS.replaceAll('India,', 'Inida,'));
    const result = await loadRateCards([folder], await bundledTable());
    expect(result.ok || result.error).toMatchObject({ code: 'UNKNOWN_MARKET', file: tiers, line: 3 });
  });

  it('accepts every market of the bundled cards, Meta’s “Rest of …” regions and Other included', async () => {
    const result = await loadBundledRateCards(await bundledTable());
    if (!result.ok) throw new Error(result.error.message);
    const markets = new Set(result.value.flatMap((card) => [...card.rates.keys()]));
    expect(markets).toContain('Other');
    expect(markets).toContain('Rest of Central & Eastern Europe');
  });

  const BANGLADESH = 'Bangladesh,$US,0.0500,0.0100,0.0100,n/a,0.0000';

  it('refuses a market that holds no country on the card’s effective date (it splits off later)', async () => {
    const path = await write('usd-2025-10-01.csv', `${CARD}\n${BANGLADESH}`);
    const result = await loadRateCards([path], await bundledTable());
    expect(result.ok || result.error).toMatchObject({ code: 'MARKET_NOT_IN_FORCE', file: path, line: 5 });
    expect(result.ok || result.error.message).toMatch(
      /line 5: market "Bangladesh" holds no country on 2025-10-01, the card's effective date: in wameter's market table \(data\/markets\.csv\) BD is in Rest of Asia Pacific that day/,
    );
  });

  it('checks markets under the rule set it is given: reported rules on by default, off when told', async () => {
    const path = await write('usd-2026-10-01.csv', `${CARD.replace('2025', '2026')}\n${BANGLADESH}`);
    const table = await bundledTable();
    const withReported = await loadRateCards([path], table);
    expect(withReported.ok && [...(withReported.value[0]?.rates.keys() ?? [])]).toEqual([
      'India',
      'Brazil',
      'Bangladesh',
    ]);
    const withoutReported = await loadRateCards([path], { ...table, isReportedRulesEnabled: false });
    expect(withoutReported.ok || withoutReported.error).toMatchObject({
      code: 'MARKET_NOT_IN_FORCE',
      line: 5,
    });
    expect(withoutReported.ok || withoutReported.error.message).toMatch(/with reported rules switched off/);
  });

  it('knows every market of the table, and Other', async () => {
    const known = knownMarketsOf(await bundledTable());
    expect(known.names).toContain('India');
    expect(known.names).toContain('Rest of Africa');
    expect(known.names).toContain('Other');
    expect(new Set(known.names).size).toBe(known.names.length);
  });
});

describe('loadRateCards on the finance review’s files', () => {
  it('refuses a row shifted by a decimal comma under a header that ends with a comma', async () => {
    const path = await write(
      'usd-shift.csv',
      [
        'Cost per delivered message in USD, effective October 1, 2025,,,,,,,',
        'Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service,',
        'India,$US,0,0107,0.0014,0.0014,0.0280,0.0000',
        'Indonesia,$US,0.0411,0.0250,0.0250,0.1360,0.0000,',
      ].join('\n'),
    );
    const result = await loadRateCards([path]);
    expect(result.ok || result.error).toMatchObject({ code: 'BAD_RATE_CARD', file: path, line: 3 });
    expect(result.ok || result.error.message).toMatch(/\(India\): more cells than the header has columns/);
  });

  it('refuses a card named for July whose title says October, naming both dates', async () => {
    const path = await write(
      'usd-2025-07-01.csv',
      CARD.replace('effective October 1, 2025', 'Effective: 1 October 2025'),
    );
    const result = await loadRateCards([path]);
    expect(result.ok || result.error).toMatchObject({
      code: 'CONFLICTING_EFFECTIVE_DATE',
      file: path,
      line: 1,
    });
    expect(result.ok || result.error.message).toMatch(
      /the title says effective 1 October 2025 \(2025-10-01\) but the file name says 2025-07-01/,
    );
  });
});

describe('loadRateBook and loadRatingSetup (what the command line and the service print)', () => {
  it('check the cards against the bundled market table and lead the message with the error code', async () => {
    const path = await write('usd-2025-10-01.csv', CARD.replace('India,', 'Indai,'));
    const book = await loadRateBook([path]);
    expect(book.ok || book.error).toMatchObject({ code: 'UNKNOWN_MARKET', file: path, line: 3 });
    expect(book.ok || book.error.message).toMatch(
      /^UNKNOWN_MARKET: .* line 3: unknown market "Indai" \(did you mean India\?\)/,
    );
    const setup = await loadRatingSetup({ rateCardPaths: [path] });
    expect(setup.ok || setup.error.message).toMatch(/^UNKNOWN_MARKET: /);
  });

  it.each([
    ['BAD_RATE', CARD.replace('0.0068,n/a', '0.00x8,n/a'), 4],
    ['BAD_RATE_CARD', CARD.replace('0.0068,n/a', '0,0068,n/a'), 4],
    ['UNKNOWN_CURRENCY', CARD.replace('Brazil,$US', 'Brazil,dollars'), 4],
    ['MIXED_CURRENCY', CARD.replace('Brazil,$US', 'Brazil,€'), 4],
    ['BAD_EFFECTIVE_DATE', CARD.replace('October 1, 2025', 'Feb 30, 2024'), 1],
    ['BAD_EFFECTIVE_DATE', CARD.replace('October 1, 2025', '10/01/2025'), 1],
    ['BAD_RATE_CARD', CARD.replace(',0.0000\nBrazil', '\nBrazil'), 3],
  ])('every rate card error reaches the user with its code: %s', async (code, text, line) => {
    const path = await write('usd-latest.csv', text);
    const setup = await loadRatingSetup({ rateCardPaths: [path] });
    expect(setup.ok || setup.error).toMatchObject({ code, file: path, line });
    expect(setup.ok || setup.error.message).toMatch(
      new RegExp(`^${code}: .*usd-latest\\.csv line ${line}\\b`),
    );
  });

  it('names the code of errors without a line too', async () => {
    const missing = await loadRatingSetup({ rateCardPaths: [join(folder, 'nosuch')] });
    expect(missing.ok || missing.error.message).toMatch(
      /^UNREADABLE_SOURCE: cannot read rate cards .*nosuch: no such file or directory; check the path/,
    );
    const undated = await write('usd-latest.csv', CARD.replace(', effective October 1, 2025', ''));
    const setup = await loadRatingSetup({ rateCardPaths: [undated] });
    expect(setup.ok || setup.error.message).toMatch(
      /^NO_EFFECTIVE_DATE: .*usd-latest\.csv: no effective date/,
    );
    await write('a.csv', CARD);
    await write('b.csv', CARD);
    const twins = await loadRateBook([join(folder, 'a.csv'), join(folder, 'b.csv')]);
    expect(twins.ok || twins.error.message).toMatch(/^DUPLICATE_RATE_CARD: rate cards a and b/);
  });

  it('loads the bundled cards with the bundled market table', async () => {
    const setup = await loadRatingSetup({});
    expect(setup.ok && setup.value.cards.length).toBe(4);
  });
});

describe('market table files', () => {
  it('reads the bundled market table', async () => {
    const result = await loadBundledMarketTable();
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value.marketOf('IN', '2025-01-01')).toBe('India');
  });

  it('refuses a malformed table, naming the file and line', async () => {
    const path = await write(
      'markets.csv',
      'country,calling_code,area_codes,market,valid_from,valid_to,source\nIN,91,,India,,,\n',
    );
    const result = await loadMarketTableFile(path);
    expect(result.ok || result.error).toMatchObject({ code: 'BAD_MARKET_TABLE', file: path });
    expect(result.ok || result.error.message).toContain(`${path}: market table line 2`);
  });

  it('refuses a missing file', async () => {
    const path = join(folder, 'missing.csv');
    const result = await loadMarketTableFile(path);
    expect(result.ok || result.error).toMatchObject({ code: 'UNREADABLE_SOURCE', file: path });
  });
});
