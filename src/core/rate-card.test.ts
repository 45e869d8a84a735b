import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { RateCard } from './pricing-context.js';
import {
  attachVolumeTiers,
  createRateBook,
  currencyOfToken,
  effectiveDateFromTitle,
  effectiveDateInTitle,
  parseRateCardCsv,
  parseVolumeTierCsv,
  readCsvRecords,
  tierRate,
  type KnownMarkets,
  type RateCardError,
  type VolumeTierFile,
} from './rate-card.js';

function bundled(name: string): string {
  return readFileSync(new URL(`../../data/rate-cards/${name}.csv`, import.meta.url), 'utf8');
}

function card(text: string, fileName = 'card.csv'): RateCard {
  const parsed = parseRateCardCsv(text, fileName);
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

function cardError(text: string, fileName = 'card.csv'): RateCardError {
  const parsed = parseRateCardCsv(text, fileName);
  if (parsed.ok) throw new Error('expected the card to be refused');
  return parsed.error;
}

function tiers(text: string, fileName = 'usd-2025-10-01-tiers.csv'): VolumeTierFile {
  const parsed = parseVolumeTierCsv(text, fileName);
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

function tierError(text: string, fileName = 'usd-2025-10-01-tiers.csv'): RateCardError {
  const parsed = parseVolumeTierCsv(text, fileName);
  if (parsed.ok) throw new Error('expected the tier file to be refused');
  return parsed.error;
}

const HEADER = 'Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service';
const TITLE = 'Cost per delivered message in USD, effective October 1, 2025';

describe('readCsvRecords', () => {
  it('splits quoted cells holding commas, doubled quotes and line breaks', () => {
    const parsed = readCsvRecords('a,"b, c","say ""hi"""\r\n"two\nlines",x\nlast');
    expect(parsed).toEqual({
      ok: true,
      value: [
        { line: 1, cells: ['a', 'b, c', 'say "hi"'] },
        { line: 2, cells: ['two\nlines', 'x'] },
        { line: 4, cells: ['last'] },
      ],
    });
  });

  it('refuses an unterminated quote, naming the line', () => {
    expect(readCsvRecords('a\nb,"open\n')).toEqual({
      ok: false,
      error: { line: 2, message: 'a quoted field is never closed (missing ")' },
    });
  });
});

describe('parseRateCardCsv on the bundled cards', () => {
  it('reads India utility on usd-2024-11-01 as 0.0014 USD', () => {
    const parsed = card(bundled('usd-2024-11-01'), 'data/rate-cards/usd-2024-11-01.csv');
    expect(parsed.id).toBe('usd-2024-11-01');
    expect(parsed.currency).toBe('USD');
    expect(parsed.effectiveDate).toBe('2024-11-01');
    expect(parsed.rates.get('India')?.utility).toBe(1400);
    expect(parsed.rates.size).toBe(32);
  });

  it('leaves n/a authentication-international out for Argentina and keeps it for India', () => {
    const parsed = card(bundled('usd-2024-11-01'), 'usd-2024-11-01.csv');
    expect(parsed.rates.get('Argentina')).toEqual({
      marketing: 61800,
      utility: 34000,
      authentication: 36700,
      service: 0,
    });
    expect(parsed.rates.get('India')?.authentication_international).toBe(28000);
  });

  it('keeps a market whose name has an ampersand', () => {
    const parsed = card(bundled('usd-2024-11-01'), 'usd-2024-11-01.csv');
    expect(parsed.rates.get('Rest of Central & Eastern Europe')?.marketing).toBe(86000);
  });

  it('takes the title and the notes below the table as provenance', () => {
    const parsed = card(bundled('usd-2025-10-01'), 'usd-2025-10-01.csv');
    expect(parsed.title).toBe('Cost per delivered message in USD (list rates), effective October 1, 2025');
    expect(parsed.provenance).toContain('Provenance: community transcription of Meta');
    expect(parsed.provenance).toContain('tiers are in a separate file');
  });

  it('dates a card from its title even when the file name holds another date', () => {
    expect(card(bundled('usd-2023-06-01-partial'), 'usd-2099-01-01.csv').effectiveDate).toBe('2023-06-01');
  });

  it('maps the CBP-2022 columns to business_initiated and user_initiated', () => {
    const parsed = card(bundled('usd-2022-02-01-partial'), 'usd-2022-02-01-partial.csv');
    expect(parsed.effectiveDate).toBe('2022-02-01');
    expect(parsed.rates.get('India')).toEqual({ business_initiated: 6600, user_initiated: 4000 });
    expect(parsed.id).toBe('usd-2022-02-01-partial');
  });
});

describe('parseRateCardCsv on Meta’s layout', () => {
  it('reads quoted title, quoted cells, trailing empty cells and other currencies', () => {
    const text = [
      '"Rate card (INR), effective as of Jul 1 2025",,,',
      '',
      'MARKET,currency,Marketing,"Authentication International"',
      '"Rest of Central & Eastern Europe",₹,"7.1234",n/a',
      'India,INR,0.7846,',
      '',
      '"Notes: rates exclude taxes, see Meta"',
    ].join('\n');
    const parsed = card(text, 'inr.csv');
    expect(parsed).toMatchObject({
      currency: 'INR',
      effectiveDate: '2025-07-01',
      title: 'Rate card (INR), effective as of Jul 1 2025',
    });
    expect(parsed.rates.get('Rest of Central & Eastern Europe')).toEqual({ marketing: 7_123_400 });
    expect(parsed.rates.get('India')).toEqual({ marketing: 784_600 });
    expect(parsed.provenance).toBe('Notes: rates exclude taxes, see Meta');
  });

  it('reads a grouped IDR amount written in quotes', () => {
    const parsed = card(
      `effective 2025-07-01\nMarket,Currency,Marketing\nIndonesia,Rp,"1,062.50"\n`,
      'idr.csv',
    );
    expect(parsed.rates.get('Indonesia')).toEqual({ marketing: 1_062_500_000 });
    expect(parsed.currency).toBe('IDR');
  });

  it('treats a one-cell line straight after the table as a note', () => {
    const parsed = card(`${TITLE}\n${HEADER}\nIndia,$US,0.0107,0.0014,0.0014,0.0280,0\nProvenance: test\n`);
    expect(parsed.rates.size).toBe(1);
    expect(parsed.provenance).toBe('Provenance: test');
  });

  it('dates a card without a dated title from the file name', () => {
    expect(card(`Rates\n${HEADER}\nIndia,$US,1,1,1,1,0\n`, 'dir/eur-2026-01-01.csv').effectiveDate).toBe(
      '2026-01-01',
    );
  });
});

describe('parseRateCardCsv refuses bad input', () => {
  it('a file with no header row', () => {
    const error = cardError(`${TITLE}\nIndia,$US,0.0107\n`, 'x.csv');
    expect(error).toMatchObject({ code: 'BAD_RATE_CARD', file: 'x.csv' });
    expect(error.message).toMatch(/no header row: expected a line starting with "Market"/);
  });

  it('an empty file', () => {
    expect(cardError('').code).toBe('BAD_RATE_CARD');
  });

  it('a header without Currency, or with an unknown or repeated column', () => {
    expect(cardError(`${TITLE}\nMarket,Marketing\nIndia,0.1\n`).message).toMatch(
      /line 2: no Currency column/,
    );
    expect(cardError(`${TITLE}\nMarket,Currency,Marketting\nIndia,$US,0.1\n`).message).toMatch(
      /line 2: unknown column "Marketting"/,
    );
    expect(cardError(`${TITLE}\nMarket,Currency,Utility,utility\nIndia,$US,0.1,0.1\n`).message).toMatch(
      /column "utility" appears twice/,
    );
    expect(cardError(`${TITLE}\nMarket,Currency\nIndia,$US\n`).message).toMatch(/no rate columns/);
  });

  it('a market row below the end of the table', () => {
    const error = cardError(`${TITLE}\n${HEADER}\nIndia,$US,1,1,1,1,0\nBrazil\nFrance,$US,1,1,1,n/a,0\n`);
    expect(error).toMatchObject({ code: 'BAD_RATE_CARD', line: 5 });
    expect(error.message).toMatch(/market row \("France"\) below the end of the table \(line 4\)/);
  });

  it('a header with no rows', () => {
    expect(cardError(`${TITLE}\n${HEADER}\n\nnotes\n`)).toMatchObject({ code: 'BAD_RATE_CARD', line: 2 });
  });

  it('a rate that is not a decimal, naming file, line, market, column and value', () => {
    const error = cardError(`${TITLE}\n${HEADER}\nIndia,$US,0.0107,0.0014,0.0O14,0.0280,0\n`, 'usd.csv');
    expect(error).toMatchObject({ code: 'BAD_RATE', file: 'usd.csv', line: 3 });
    expect(error.message).toMatch(/usd\.csv line 3: market "India", column "Authentication": "0\.0O14"/);
  });

  it('a negative rate, a rate with a currency sign, a rate with more than 6 decimals', () => {
    expect(cardError(`${TITLE}\n${HEADER}\nIndia,$US,-0.01,,,,\n`).code).toBe('BAD_RATE');
    expect(cardError(`${TITLE}\n${HEADER}\nIndia,$US,$0.01,,,,\n`).code).toBe('BAD_RATE');
    expect(cardError(`${TITLE}\n${HEADER}\nIndia,$US,0.0000001,,,,\n`).message).toMatch(
      /more than 6 decimals/,
    );
  });

  it('an unknown currency token', () => {
    const error = cardError(`${TITLE}\n${HEADER}\nIndia,US Dollars,0.0107,0.0014,0.0014,0.0280,0\n`);
    expect(error).toMatchObject({ code: 'UNKNOWN_CURRENCY', line: 3 });
    expect(error.message).toMatch(/"US Dollars" is not a currency/);
    expect(cardError(`${TITLE}\n${HEADER}\nIndia,XYZ,1,1,1,1,0\n`).code).toBe('UNKNOWN_CURRENCY');
  });

  it('rows in two currencies', () => {
    const error = cardError(`${TITLE}\n${HEADER}\nIndia,$US,1,1,1,1,0\nFrance,€,1,1,1,n/a,0\n`);
    expect(error).toMatchObject({ code: 'MIXED_CURRENCY', line: 4 });
    expect(error.message).toMatch(/"€" \(EUR\) differs from "\$US" \(USD\) on line 3/);
  });

  it('no effective date in the title or the file name', () => {
    const error = cardError(`Rates in USD\n${HEADER}\nIndia,$US,1,1,1,1,0\n`, 'usd-latest.csv');
    expect(error).toMatchObject({ code: 'NO_EFFECTIVE_DATE', file: 'usd-latest.csv' });
    expect(error.message).toMatch(/put "effective June 1, 2023" in the title line/);
  });

  it('an impossible effective date, naming it, the file and the line', () => {
    const error = cardError(
      `Rates in USD\nCost in USD, effective Feb 30, 2024\n${HEADER}\nIndia,$US,1,1,1,1,0\n`,
      'c.csv',
    );
    expect(error).toEqual({
      code: 'BAD_EFFECTIVE_DATE',
      file: 'c.csv',
      line: 2,
      message:
        'c.csv line 2: effective date Feb 30, 2024 is not a calendar date; correct it in the title line ' +
        '(e.g. "effective June 1, 2023")',
    });
    expect(cardError(`effective 2025-02-29\n${HEADER}\nIndia,$US,1,1,1,1,0\n`).message).toMatch(
      /line 1: effective date 2025-02-29 is not a calendar date/,
    );
    expect(cardError(`effective Jnue 1, 2024\n${HEADER}\nIndia,$US,1,1,1,1,0\n`).message).toMatch(
      /effective date Jnue 1, 2024 is not a calendar date/,
    );
  });

  it('an impossible title date even when the file name has a date (the title is not silently replaced)', () => {
    const error = cardError(
      `effective February 30, 2025\n${HEADER}\nIndia,$US,1,1,1,1,0\n`,
      'usd-2025-03-01.csv',
    );
    expect(error).toMatchObject({ code: 'BAD_EFFECTIVE_DATE', file: 'usd-2025-03-01.csv', line: 1 });
  });

  it('accepts a leap day', () => {
    expect(card(`effective Feb 29, 2024\n${HEADER}\nIndia,$US,1,1,1,1,0\n`).effectiveDate).toBe('2024-02-29');
  });

  it('a market listed twice, an empty market, a row longer than the header', () => {
    expect(cardError(`${TITLE}\n${HEADER}\nIndia,$US,1,1,1,1,0\nIndia,$US,1,1,1,1,0\n`).message).toMatch(
      /line 4: market "India" is listed twice \(also line 3\)/,
    );
    expect(cardError(`${TITLE}\n${HEADER}\n,$US,1,1,1,1,0\n`).message).toMatch(
      /line 3: the Market cell is empty/,
    );
    expect(cardError(`${TITLE}\n${HEADER}\nRest of Central, Eastern Europe,$US,1,1,1,1,0\n`).message).toMatch(
      /more cells than the header/,
    );
  });
});

describe('effectiveDateFromTitle and currencyOfToken', () => {
  it.each([
    ['Cost per conversation in USD, effective June 1, 2023', '2023-06-01'],
    ['Effective as of Jul 1 2025', '2025-07-01'],
    ['effective Sept 30th, 2024', '2024-09-30'],
    ['effective 2026-01-01', '2026-01-01'],
    ['effective Ma 1, 2024', undefined],
    ['effective Feb 30, 2024', undefined],
    ['prices from June 1, 2023', undefined],
  ])('%s → %s', (title, date) => {
    expect(effectiveDateFromTitle(title)).toBe(date);
  });

  it.each([
    [
      'Cost per conversation in USD, effective June 1, 2023',
      { isCalendarDate: true, date: '2023-06-01', text: 'June 1, 2023' },
    ],
    ['Cost in USD, effective Feb 30, 2024', { isCalendarDate: false, text: 'Feb 30, 2024' }],
    ['effective as of 2023-13-01', { isCalendarDate: false, text: '2023-13-01' }],
    ['effective Ma 1, 2024', { isCalendarDate: false, text: 'Ma 1, 2024' }],
    ['Rates in USD', undefined],
  ])('effectiveDateInTitle(%s)', (title, found) => {
    expect(effectiveDateInTitle(title)).toEqual(found);
  });

  it.each([
    ['$US', 'USD'],
    ['€', 'EUR'],
    ['EUR', 'EUR'],
    ['£', 'GBP'],
    ['₹', 'INR'],
    ['Rp', 'IDR'],
    ['$AU', 'AUD'],
    ['brl', 'BRL'],
    ['$', undefined],
    ['ABC', undefined],
  ])('%s → %s', (token, code) => {
    expect(currencyOfToken(token)).toBe(code);
  });
});

describe('parseRateCardCsv with the markets of the market table', () => {
  const KNOWN: KnownMarkets = {
    names: [
      'India',
      'Indonesia',
      'Iraq',
      'Israel',
      'Rest of Africa',
      'Saudi Arabia',
      'United Arab Emirates',
      'Other',
    ],
    source: 'the market table (markets.csv)',
  };
  const withMarkets = (rows: string[], fileName = 'usd.csv') =>
    parseRateCardCsv([TITLE, HEADER, ...rows].join('\n'), fileName, { knownMarkets: KNOWN });

  it('refuses a misspelt market, naming file, line, the name and the closest known one', () => {
    const typo = withMarkets(['Israel,$US,1,1,1,n/a,0', 'Indai,$US,0.0107,0.0014,0.0014,0.0280,0']);
    expect(typo.ok || typo.error).toMatchObject({ code: 'UNKNOWN_MARKET', file: 'usd.csv', line: 4 });
    expect(typo.ok || typo.error.message).toBe(
      'usd.csv line 4: unknown market "Indai" (did you mean India?): the market table (markets.csv) has no ' +
        'market of that name, so no recipient would ever be priced with this row. Correct the name; if Meta ' +
        'has added this market, the market table must list it before this card can be used',
    );
  });

  it('suggests several close names, and names a market from a part of it', () => {
    const israel = withMarkets(['Isral,$US,1,1,1,n/a,0']);
    expect(israel.ok || israel.error.message).toMatch(/unknown market "Isral" \(did you mean Israel\?\)/);
    const iraq = withMarkets(['Irak,$US,1,1,1,n/a,0']);
    expect(iraq.ok || iraq.error.message).toMatch(/\(did you mean Iraq\?\)/);
    const saudi = withMarkets(['Saudi,$US,1,1,1,n/a,0']);
    expect(saudi.ok || saudi.error.message).toMatch(/\(did you mean Saudi Arabia\?\)/);
    const emirates = withMarkets(['Emirates,$US,1,1,1,n/a,0']);
    expect(emirates.ok || emirates.error.message).toMatch(/\(did you mean United Arab Emirates\?\)/);
    const arab = withMarkets(['Arab,$US,1,1,1,n/a,0']);
    expect(arab.ok || arab.error.message).toMatch(/\(did you mean Saudi Arabia or United Arab Emirates\?\)/);
  });

  it('refuses a name far from every known market without guessing one', () => {
    const result = withMarkets(['Atlantis,$US,1,1,1,n/a,0']);
    expect(result.ok || result.error).toMatchObject({ code: 'UNKNOWN_MARKET', line: 3 });
    expect(result.ok || result.error.message).toMatch(/unknown market "Atlantis": the market table/);
    expect(result.ok || result.error.message).not.toMatch(/did you mean/);
  });

  it('refuses a real market the table lacks (one Meta added later), saying the table must list it', () => {
    const result = withMarkets(['India,$US,1,1,1,n/a,0', 'Brazil,$US,1,1,1,n/a,0']);
    expect(result.ok || result.error).toMatchObject({ code: 'UNKNOWN_MARKET', file: 'usd.csv', line: 4 });
    expect(result.ok || result.error.message).toMatch(
      /if Meta has added this market, the market table must list it before this card can be used/,
    );
  });

  it('reads names that differ from the table only in case or spacing, under the table’s spelling', () => {
    const result = withMarkets([
      ' india ,$US,0.0107,0.0014,0.0014,0.0280,0',
      'REST OF  AFRICA,$US,1,1,1,n/a,0',
      'other,$US,2,2,2,n/a,0',
    ]);
    if (!result.ok) throw new Error(result.error.message);
    expect([...result.value.rates.keys()]).toEqual(['India', 'Rest of Africa', 'Other']);
    expect(result.value.rates.get('India')?.utility).toBe(1400);
  });

  it('refuses one market written twice in different case', () => {
    const result = withMarkets(['India,$US,1,1,1,n/a,0', 'INDIA,$US,1,1,1,n/a,0']);
    expect(result.ok || result.error).toMatchObject({ code: 'BAD_RATE_CARD', line: 4 });
    expect(result.ok || result.error.message).toMatch(
      /market "India" \(as "INDIA"\) is listed twice \(also line 3\)/,
    );
  });

  it('refuses a name that matches two table markets once case and spacing are ignored', () => {
    const result = parseRateCardCsv([TITLE, HEADER, 'north america,$US,1,1,1,n/a,0'].join('\n'), 'usd.csv', {
      knownMarkets: { names: ['North America', 'NorthAmerica'], source: 'the table' },
    });
    expect(result.ok || result.error).toMatchObject({ code: 'UNKNOWN_MARKET', line: 3 });
    expect(result.ok || result.error.message).toMatch(/could be North America or NorthAmerica/);
  });

  it('accepts every market of the bundled cards against the bundled market table', () => {
    const table = readFileSync(new URL('../../data/markets.csv', import.meta.url), 'utf8');
    const names = [
      ...new Set(
        table
          .trim()
          .split('\n')
          .slice(1)
          .map((line) => line.split(',')[3] as string),
      ),
    ];
    for (const name of [
      'usd-2022-02-01-partial',
      'usd-2023-06-01-partial',
      'usd-2024-11-01',
      'usd-2025-10-01',
    ]) {
      const parsed = parseRateCardCsv(bundled(name), `${name}.csv`, {
        knownMarkets: { names, source: 'data/markets.csv' },
      });
      expect(parsed.ok || parsed.error.message).toBe(true);
    }
  });

  it('checks the markets of a volume-tier file too', () => {
    const text = [
      'effective October 1, 2025',
      'Market,Currency,Category,From,To,Rate',
      'Indai,$US,Utility,1,,0.0014',
    ].join('\n');
    const result = parseVolumeTierCsv(text, 'usd-2025-10-01-tiers.csv', { knownMarkets: KNOWN });
    expect(result.ok || result.error).toMatchObject({
      code: 'UNKNOWN_MARKET',
      file: 'usd-2025-10-01-tiers.csv',
      line: 3,
    });
    expect(result.ok || result.error.message).toMatch(/unknown market "Indai" \(did you mean India\?\)/);
    const lower = parseVolumeTierCsv(text.replace('Indai', 'india'), 'usd-2025-10-01-tiers.csv', {
      knownMarkets: KNOWN,
    });
    expect(lower.ok && [...lower.value.tiers.keys()]).toEqual(['India|utility']);
  });

  it('keeps any name as written when no market table is given', () => {
    expect(card([TITLE, HEADER, 'Indai,$US,1,1,1,n/a,0'].join('\n')).rates.has('Indai')).toBe(true);
  });
});

describe('parseVolumeTierCsv and effective dates', () => {
  it('refuses an impossible effective date, naming file and line', () => {
    const error = tierError(
      'Tiers, effective Feb 30, 2024\nMarket,Currency,Category,From,To,Rate\nIndia,$US,Utility,1,,0.0014',
    );
    expect(error).toMatchObject({ code: 'BAD_EFFECTIVE_DATE', file: 'usd-2025-10-01-tiers.csv', line: 1 });
    expect(error.message).toMatch(
      /usd-2025-10-01-tiers\.csv line 1: effective date Feb 30, 2024 is not a calendar date/,
    );
  });
});

const TIERS = [
  'Volume tiers in USD, effective October 1, 2025',
  'Market,Currency,Category,From,To,Rate',
  'India,$US,Utility,1,100000,0.0014',
  'India,$US,Utility,100001,"1,000,000",0.0012',
  'India,$US,Utility,1000001,,0.0010',
  'India,$US,Authentication,1,,0.0014',
].join('\n');

describe('parseVolumeTierCsv', () => {
  it('reads bands per market and category', () => {
    const parsed = tiers(TIERS);
    expect(parsed).toMatchObject({
      id: 'usd-2025-10-01-tiers',
      currency: 'USD',
      effectiveDate: '2025-10-01',
    });
    expect(parsed.tiers.get('India|utility')).toEqual([
      { fromCount: 1, toCount: 100000, rateMicros: 1400 },
      { fromCount: 100001, toCount: 1000000, rateMicros: 1200 },
      { fromCount: 1000001, toCount: null, rateMicros: 1000 },
    ]);
    expect(parsed.tiers.get('India|authentication')).toEqual([
      { fromCount: 1, toCount: null, rateMicros: 1400 },
    ]);
  });

  it('accepts bands out of order and ignores a Discount column', () => {
    const text = [
      'effective October 1, 2025',
      'Market,Currency,Category,From,To,Rate,Discount',
      'India,USD,utility,100001,,0.0012,14%',
      'India,USD,utility,1,100000,0.0014,0%',
    ].join('\n');
    expect(
      tiers(text, 'tiers.csv')
        .tiers.get('India|utility')
        ?.map((b) => b.fromCount),
    ).toEqual([1, 100001]);
  });

  const bad = (rows: string[]) =>
    tierError(['effective October 1, 2025', 'Market,Currency,Category,From,To,Rate', ...rows].join('\n'));

  it('refuses a gap between bands', () => {
    const error = bad(['India,$US,Utility,1,100000,0.0014', 'India,$US,Utility,100002,,0.0012']);
    expect(error).toMatchObject({ code: 'BAD_VOLUME_TIERS', line: 4 });
    expect(error.message).toMatch(
      /\(India, utility\): band 100002: leaves a gap after band 1:100000 on line 3/,
    );
  });

  it('refuses overlapping bands', () => {
    const error = bad(['India,$US,Utility,1,100000,0.0014', 'India,$US,Utility,90000,,0.0012']);
    expect(error.message).toMatch(/band 90000: overlaps band 1:100000 on line 3; it must start at 100001/);
  });

  it('refuses bands that do not start at 1', () => {
    expect(bad(['India,$US,Utility,0,10,0.0014']).message).toMatch(/From "0" is not a count ≥ 1/);
    expect(bad(['India,$US,Utility,2,,0.0014']).message).toMatch(
      /first band starts at 2; it must start at 1/,
    );
  });

  it('refuses a closed last band and an open band that is not the last', () => {
    expect(bad(['India,$US,Utility,1,100000,0.0014']).message).toMatch(
      /last band ends at 100000; leave its To empty/,
    );
    expect(bad(['India,$US,Utility,1,,0.0014', 'India,$US,Utility,100,,0.0012']).message).toMatch(
      /only the last band may have an empty To/,
    );
  });

  it('refuses a band that ends before it starts, and counts that are not counts', () => {
    expect(bad(['India,$US,Utility,1,0,0.0014']).message).toMatch(/band 1:0 ends before it starts/);
    expect(bad(['India,$US,Utility,1,1e5,0.0014']).message).toMatch(/To "1e5" is not a count/);
  });

  it('refuses marketing tiers and unknown categories', () => {
    expect(bad(['India,$US,Marketing,1,,0.0107']).message).toMatch(/marketing is never tiered/);
    expect(bad(['India,$US,Servce,1,,0.0107']).code).toBe('BAD_VOLUME_TIERS');
  });

  it('refuses a bad rate, naming market, category and band', () => {
    const error = bad(['India,$US,Utility,1,,cheap']);
    expect(error).toMatchObject({ code: 'BAD_RATE', line: 3 });
    expect(error.message).toMatch(/market "India", category "Utility", band 1:: "cheap" is not a rate/);
    expect(bad(['India,$US,Utility,1,,n/a']).code).toBe('BAD_RATE');
  });

  it('refuses mixed and unknown currencies', () => {
    expect(bad(['India,$US,Utility,1,,0.0014', 'France,€,Utility,1,,0.03']).code).toBe('MIXED_CURRENCY');
    expect(bad(['India,dollar,Utility,1,,0.0014']).code).toBe('UNKNOWN_CURRENCY');
  });

  it('refuses a missing header, missing columns, no rows and no date', () => {
    expect(tierError('India,$US,Utility,1,,0.0014').message).toMatch(/no header row/);
    expect(tierError('effective October 1, 2025\nMarket,Currency,Category,From,Rate\n').message).toMatch(
      /header lacks to/,
    );
    expect(tierError('effective October 1, 2025\nMarket,Currency,Category,From,To,Rate\n').message).toMatch(
      /no band rows/,
    );
    expect(
      tierError('Tiers\nMarket,Currency,Category,From,To,Rate\nIndia,$US,Utility,1,,0.0014', 'tiers.csv')
        .code,
    ).toBe('NO_EFFECTIVE_DATE');
  });
});

describe('attachVolumeTiers and tierRate', () => {
  const pmpCard = () => card(bundled('usd-2025-10-01'), 'usd-2025-10-01.csv');
  const cbpCard = () => card(bundled('usd-2024-11-01'), 'usd-2024-11-01.csv');

  function attached(): RateCard {
    const result = attachVolumeTiers([cbpCard(), pmpCard()], tiers(TIERS));
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value[0]?.tiers.size).toBe(0);
    return result.value[1] as RateCard;
  }

  it('attaches the tier file to the card of the same currency and date', () => {
    expect(attached().tiers.get('India|utility')).toHaveLength(3);
  });

  it('prices each count at the rate of the band it falls in (graduated)', () => {
    const withTiers = attached();
    expect(tierRate(withTiers, 'India', 'utility', 1)).toEqual({ band: '1:100000', rateMicros: 1400 });
    expect(tierRate(withTiers, 'India', 'utility', 100000)).toEqual({ band: '1:100000', rateMicros: 1400 });
    expect(tierRate(withTiers, 'India', 'utility', 100001)).toEqual({
      band: '100001:1000000',
      rateMicros: 1200,
    });
    expect(tierRate(withTiers, 'India', 'utility', 5_000_000)).toEqual({
      band: '1000001:',
      rateMicros: 1000,
    });
  });

  it('has no tier rate where the card has no tiers', () => {
    expect(tierRate(attached(), 'Brazil', 'utility', 1)).toBeUndefined();
    expect(tierRate(attached(), 'India', 'marketing', 1)).toBeUndefined();
  });

  it('throws on a count that is not a positive integer (a bug in the caller)', () => {
    expect(() => tierRate(attached(), 'India', 'utility', 0)).toThrow(/positive integer/);
    expect(() => tierRate(attached(), 'India', 'utility', 1.5)).toThrow(/positive integer/);
  });

  it('refuses a tier file with no card of its currency and date, naming both', () => {
    const result = attachVolumeTiers([cbpCard()], tiers(TIERS));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({ code: 'TIERS_WITHOUT_CARD', file: 'usd-2025-10-01-tiers.csv' });
    expect(result.error.message).toMatch(
      /usd-2025-10-01-tiers \(USD, effective 2025-10-01\).*cards given: usd-2024-11-01 \(USD, 2024-11-01\)/,
    );
  });

  it('refuses a first band whose rate is not the card’s list rate, naming both rates', () => {
    const text = TIERS.replace('India,$US,Utility,1,100000,0.0014', 'India,$US,Utility,1,100000,0.0015');
    const result = attachVolumeTiers([pmpCard()], tiers(text));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({ code: 'TIER_RATE_MISMATCH', line: 3 });
    expect(result.error.message).toMatch(
      /India, utility first band rate 0\.0015 differs from the list rate 0\.0014/,
    );
  });

  it('refuses tiers for a market the card has no rate for', () => {
    const result = attachVolumeTiers(
      [pmpCard()],
      tiers('effective October 1, 2025\nMarket,Currency,Category,From,To,Rate\nIndiaa,$US,Utility,1,,0.0014'),
    );
    expect(result.ok || result.error.message).toMatch(/card usd-2025-10-01 has no utility rate for Indiaa/);
  });

  it('refuses a second tier file for the same market and category', () => {
    const once = attachVolumeTiers([pmpCard()], tiers(TIERS));
    if (!once.ok) throw new Error(once.error.message);
    const twice = attachVolumeTiers(once.value, tiers(TIERS, 'usd-2025-10-01-tiers-copy.csv'));
    expect(twice.ok || twice.error.message).toMatch(/already has tiers/);
  });
});

describe('createRateBook', () => {
  const cards = () => [
    card(bundled('usd-2025-10-01'), 'usd-2025-10-01.csv'),
    card(bundled('usd-2022-02-01-partial'), 'usd-2022-02-01-partial.csv'),
    card(bundled('usd-2024-11-01'), 'usd-2024-11-01.csv'),
    card(bundled('usd-2023-06-01-partial'), 'usd-2023-06-01-partial.csv'),
    card(`effective January 1, 2024\nMarket,Currency,Marketing\nFrance,€,0.1\n`, 'eur.csv'),
  ];

  function book() {
    const result = createRateBook(cards());
    if (!result.ok) throw new Error(result.error.message);
    return result.value;
  }

  it.each([
    ['2022-01-31', undefined],
    ['2022-02-01', 'usd-2022-02-01-partial'],
    ['2023-05-31', 'usd-2022-02-01-partial'],
    ['2023-06-01', 'usd-2023-06-01-partial'],
    ['2024-10-31', 'usd-2023-06-01-partial'],
    ['2024-11-01', 'usd-2024-11-01'],
    ['2025-09-30', 'usd-2024-11-01'],
    ['2025-10-01', 'usd-2025-10-01'],
    ['2030-01-01', 'usd-2025-10-01'],
  ])('the USD card in force on %s is %s', (date, id) => {
    expect(book().cardInForce('USD', date)?.id).toBe(id);
  });

  it('keeps currencies apart', () => {
    expect(book().cardInForce('EUR', '2025-01-01')?.id).toBe('eur');
    expect(book().cardInForce('EUR', '2023-12-31')).toBeUndefined();
    expect(book().cardInForce('GBP', '2025-01-01')).toBeUndefined();
    expect(book().cards).toHaveLength(5);
  });

  it('refuses two cards of one currency and date, naming both', () => {
    const twin = card(bundled('usd-2024-11-01'), 'usd-2024-11-01-copy.csv');
    const result = createRateBook([...cards(), twin]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('DUPLICATE_RATE_CARD');
    expect(result.error.message).toMatch(
      /usd-2024-11-01 and usd-2024-11-01-copy are both USD cards effective 2024-11-01/,
    );
  });
});
