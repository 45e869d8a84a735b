import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseMarketTable, type MarketTable } from './market.js';
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

  it('dates a card from its title when the file name holds the same date', () => {
    expect(card(bundled('usd-2023-06-01-partial'), 'usd-2023-06-01-copy.csv').effectiveDate).toBe(
      '2023-06-01',
    );
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

  it('a column named after a property of every JavaScript object is as unknown as any other name', () => {
    for (const name of ['constructor', 'Constructor', '__proto__', 'toString', 'has-Own-Property']) {
      expect(cardError(`${TITLE}\nMarket,Currency,${name}\nIndia,$US,0.1\n`).message, name).toContain(
        `unknown column "${name}"`,
      );
    }
  });

  it('a currency written as a property of every JavaScript object is no currency', () => {
    for (const token of ['constructor', '__proto__', 'toString', 'valueOf']) {
      expect(currencyOfToken(token), token).toBeUndefined();
    }
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
    expect(cardError(`${TITLE}\n${HEADER}\nIndia,$US,0.0000001,,,,\n`).message).toMatch(/has 7 decimals/);
  });

  it('a rate with more than 6 decimals, stating the limit and that wameter does not round', () => {
    const error = cardError(`${TITLE}\n${HEADER}\nIndia,$US,0.00123456,,,,\n`, 'inr.csv');
    expect(error).toMatchObject({ code: 'BAD_RATE', file: 'inr.csv', line: 3 });
    expect(error.message).toBe(
      'inr.csv line 3: market "India", column "Marketing": "0.00123456" has 8 decimals; wameter holds money ' +
        'exactly in millionths of the currency, so a rate can have at most 6. wameter does not round rates: ' +
        'write the rate Meta charges with at most 6 decimals (0.001235 rounded half up), or, if Meta charges ' +
        'more decimals, this card cannot be priced exactly',
    );
    expect(card(`${TITLE}\n${HEADER}\nIndia,$US,0.1234560,,,,\n`).rates.get('India')).toEqual({
      marketing: 123456,
    });
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
    expect(error.message).toMatch(/add a title line such as "effective June 1, 2023" above the header/);
  });

  it('a date in the file name that is no calendar date is said to be one, not to be missing', () => {
    const error = cardError(`Rates in USD\n${HEADER}\nIndia,$US,1,1,1,1,0\n`, 'usd-2025-02-30.csv');
    expect(error).toMatchObject({ code: 'NO_EFFECTIVE_DATE', file: 'usd-2025-02-30.csv' });
    expect(error.message).toMatch(
      /\(the title reads "Rates in USD"\) and the file name's 2025-02-30 is not a calendar date; add a title line/,
    );
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

  it("an effective year before Meta's first rates or past the century is refused as a typo", () => {
    const typo = cardError(`effective October 1, 0205\n${HEADER}\nIndia,$US,1,1,1,1,0\n`, 'c.csv');
    expect(typo).toMatchObject({ code: 'BAD_EFFECTIVE_DATE', file: 'c.csv' });
    expect(typo.message).toBe(
      `c.csv: effective date 0205-10-01 is before 2018, when Meta's WhatsApp Business rates began: a typo in ` +
        `the year? Correct it (e.g. "effective June 1, 2023")`,
    );
    expect(cardError(`Rates\n${HEADER}\nIndia,$US,1,1,1,1,0\n`, 'usd-1999-10-01.csv').message).toMatch(
      /effective date 1999-10-01 is before 2018/,
    );
    expect(cardError(`effective 2205-10-01\n${HEADER}\nIndia,$US,1,1,1,1,0\n`).message).toMatch(
      /effective date 2205-10-01 is after 2099: a typo in the year\?/,
    );
    expect(card(`effective 2018-01-01\n${HEADER}\nIndia,$US,1,1,1,1,0\n`).effectiveDate).toBe('2018-01-01');
  });

  it('a title stating another currency than the rows is refused, naming both', () => {
    const error = cardError(
      `Cost per message in USD, effective October 1, 2025\n${HEADER}\nIndia,€,1,1,1,1,0\n`,
    );
    expect(error).toMatchObject({ code: 'MIXED_CURRENCY', line: 1 });
    expect(error.message).toMatch(
      /line 1: the title says rates in USD but the rows are in EUR \("€" on line 3\).*correct the title or the rows/,
    );
    // The same currency, in Meta's symbol or its code, and a title naming none, are read as ever.
    expect(
      card(`Cost per message in EUR, effective October 1, 2025\n${HEADER}\nIndia,€,1,1,1,1,0\n`).currency,
    ).toBe('EUR');
    expect(card(`Rates in USD, effective October 1, 2025\n${HEADER}\nIndia,$US,1,1,1,1,0\n`).currency).toBe(
      'USD',
    );
    expect(card(`Rates effective October 1, 2025 in India\n${HEADER}\nIndia,INR,1,1,1,1,0\n`).currency).toBe(
      'INR',
    );
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

describe('parseRateCardCsv reads a cell only under a named column', () => {
  // A spreadsheet export's trailing comma gives the header an empty last column; an unquoted decimal comma
  // ("0,0107") then fits into it and shifts every price of the row one column to the right.
  const SHIFTED = [
    'Cost per delivered message in USD, effective October 1, 2025,,,,,,,',
    `${HEADER},`,
    'India,$US,0,0107,0.0014,0.0014,0.0280,0.0000',
    'Indonesia,$US,0.0411,0.0250,0.0250,0.1360,0.0000,',
  ].join('\n');

  it('refuses a decimal comma that fits into the empty column a trailing comma adds to the header', () => {
    const error = cardError(SHIFTED, 'usd-shift.csv');
    expect(error).toMatchObject({ code: 'BAD_RATE_CARD', file: 'usd-shift.csv', line: 3 });
    expect(error.message).toBe(
      'usd-shift.csv line 3 (India): more cells than the header has columns ("0.0000" after "Service", the ' +
        'last column); quote cells that contain commas, and write decimals with a point (0.0107, not 0,0107)',
    );
  });

  it('refuses it with several empty header cells too', () => {
    const text = [TITLE, `${HEADER},,`, 'India,INR,0,7846,0.1150,0.1150,n/a,0.0000'].join('\n');
    expect(cardError(text)).toMatchObject({ code: 'BAD_RATE_CARD', line: 3 });
  });

  it('still reads rows that end with the empty cells of a trailing comma', () => {
    const parsed = card(SHIFTED.replace('India,$US,0,0107', 'India,$US,0.0107'));
    expect(parsed.rates.get('India')?.utility).toBe(1400);
    expect(parsed.rates.get('Indonesia')?.service).toBe(0);
  });

  it('refuses a row with fewer cells than the header, naming market and the missing columns', () => {
    const error = cardError(`${TITLE}\n${HEADER}\nIndia,$US,0.0107,0.0014,0.0014,0.0280\n`, 'usd.csv');
    expect(error).toMatchObject({ code: 'BAD_RATE_CARD', file: 'usd.csv', line: 3 });
    expect(error.message).toBe(
      'usd.csv line 3 (India): the row has no cell for "Service"; a missing cell is neither 0 nor n/a: write ' +
        'the rate, or n/a where Meta has none (and quote cells that contain commas)',
    );
    expect(cardError(`${TITLE}\n${HEADER}\nIndia,$US,0.0107,0.0014\n`).message).toMatch(
      /\(India\): the row has no cell for "Authentication", "Authentication-International" and "Service"/,
    );
  });

  it('refuses a cell under a header cell with no name, and ignores such a column when it is empty', () => {
    const header = 'Market,Currency,Marketing,,Utility';
    const error = cardError(`${TITLE}\n${header}\nIndia,$US,0.0107,0.0014,0.0014\n`);
    expect(error).toMatchObject({ code: 'BAD_RATE_CARD', line: 3 });
    expect(error.message).toMatch(
      /line 3 \(India\): "0\.0014" is in column 4, which has no name in the header \(between "Marketing" and "Utility"\)/,
    );
    expect(card(`${TITLE}\n${header}\nIndia,$US,0.0107,,0.0014\n`).rates.get('India')).toEqual({
      marketing: 10700,
      utility: 1400,
    });
  });

  it('refuses a rate whose whole part starts with 0 (the decimals of a decimal comma)', () => {
    const error = cardError(`${TITLE}\nMarket,Currency,Marketing,Utility\nIndia,$US,0,0107\n`);
    expect(error).toMatchObject({ code: 'BAD_RATE', line: 3 });
    expect(error.message).toMatch(
      /column "Utility": "0107" is not a rate \(a leading 0: the decimals of "0,0107"\?/,
    );
  });

  it('reads a quoted grouped amount but not a quoted decimal comma', () => {
    const cards = (cell: string) =>
      `${TITLE.replace('USD', 'IDR')}\nMarket,Currency,Marketing\nIndonesia,Rp,"${cell}"\n`;
    expect(card(cards('1,062.50')).rates.get('Indonesia')).toEqual({ marketing: 1_062_500_000 });
    expect(cardError(cards('0,785'))).toMatchObject({ code: 'BAD_RATE', line: 3 });
    expect(cardError(cards('1,0625')).message).toMatch(/write decimals with a point/);
  });
});

describe('parseRateCardCsv and the effective date', () => {
  const ROWS = `${HEADER}\nIndia,$US,0.0107,0.0014,0.0014,0.0280,0\n`;

  it('reads the date of a title written "effective 1 October 2025" instead of the file name’s', () => {
    expect(
      card(`Cost per delivered message in USD, effective 1 October 2025\n${ROWS}`, 'usd.csv').effectiveDate,
    ).toBe('2025-10-01');
  });

  it('refuses a title date that differs from the date in the file name, naming both', () => {
    const error = cardError(
      `Cost per delivered message in USD, effective 1 October 2025\n${ROWS}`,
      'cards/usd-2025-07-01.csv',
    );
    expect(error).toEqual({
      code: 'CONFLICTING_EFFECTIVE_DATE',
      file: 'cards/usd-2025-07-01.csv',
      line: 1,
      message:
        'cards/usd-2025-07-01.csv line 1: the title says effective 1 October 2025 (2025-10-01) but the file ' +
        'name says 2025-07-01; the title is what Meta wrote: rename the file (usd-2025-10-01.csv), or correct ' +
        'the title if it is the one that is wrong',
    });
    expect(cardError(`effective 2025-10-01\n${ROWS}`, 'usd-2025-07-01.csv').code).toBe(
      'CONFLICTING_EFFECTIVE_DATE',
    );
  });

  it('refuses two title lines with different effective dates', () => {
    const error = cardError(`effective October 1, 2025\nEffective date: 2025-07-01\n${ROWS}`);
    expect(error).toMatchObject({ code: 'CONFLICTING_EFFECTIVE_DATE', line: 2 });
    expect(error.message).toMatch(/effective 2025-07-01 but line 1 says October 1, 2025 \(2025-10-01\)/);
  });

  it('refuses an ambiguous numeric date, giving both readings, even when the file name has a date', () => {
    const error = cardError(`Rates in USD, effective 10/01/2025\n${ROWS}`, 'usd-2025-10-01.csv');
    expect(error).toEqual({
      code: 'BAD_EFFECTIVE_DATE',
      file: 'usd-2025-10-01.csv',
      line: 1,
      message:
        'usd-2025-10-01.csv line 1: effective date 10/01/2025 is ambiguous: October 1, 2025 (MM/DD/YYYY) or ' +
        "January 10, 2025 (DD/MM/YYYY); write the right one in the title line with the month's name or as " +
        'YYYY-MM-DD (e.g. "effective October 1, 2025" or "effective 2025-10-01")',
    });
  });

  it('refuses a title that says effective without a readable date instead of using the file name', () => {
    const error = cardError(`Rates effective Q4 2025\n${ROWS}`, 'usd-2025-10-01.csv');
    expect(error).toEqual({
      code: 'BAD_EFFECTIVE_DATE',
      file: 'usd-2025-10-01.csv',
      line: 1,
      message:
        'usd-2025-10-01.csv line 1: the title "Rates effective Q4 2025" says effective but no date can be read ' +
        'after it; write it as "effective June 1, 2023", "effective 1 June 2023" or "effective 2023-06-01" ' +
        '(the file name is not used when the title says effective)',
    });
  });

  it('says what to add when neither a title line nor the file name has a date, quoting the title', () => {
    const error = cardError(`Cost per delivered message in USD\n${ROWS}`, 'usd-latest.csv');
    expect(error).toEqual({
      code: 'NO_EFFECTIVE_DATE',
      file: 'usd-latest.csv',
      message:
        'usd-latest.csv: no effective date: no title line says "effective …" (the title reads "Cost per ' +
        'delivered message in USD") and the file name has no YYYY-MM-DD date; add a title line such as ' +
        '"effective June 1, 2023" above the header, or put the date in the file name (e.g. usd-2023-06-01.csv)',
    });
  });

  it('applies the same rules to volume-tier files', () => {
    const text = (title: string) =>
      `${title}\nMarket,Currency,Category,From,To,Rate\nIndia,$US,Utility,1,,0.0014\n`;
    expect(tiers(text('Tiers, effective 1 October 2025'), 'tiers.csv').effectiveDate).toBe('2025-10-01');
    expect(tierError(text('Tiers, effective 1 October 2025'), 'usd-2025-07-01-tiers.csv').code).toBe(
      'CONFLICTING_EFFECTIVE_DATE',
    );
    expect(tierError(text('Tiers effective 10/01/2025')).code).toBe('BAD_EFFECTIVE_DATE');
  });
});

describe('parseRateCardCsv and markets not in force on the card’s date', () => {
  let bundledTable: MarketTable | undefined;
  function table(): MarketTable {
    if (bundledTable) return bundledTable;
    const parsed = parseMarketTable(readFileSync(new URL('../../data/markets.csv', import.meta.url), 'utf8'));
    if (!parsed.ok) throw new Error(parsed.error.message);
    bundledTable = parsed.value;
    return bundledTable;
  }
  function known(isReportedRulesEnabled: boolean): KnownMarkets {
    const names = [...new Set(table().rows.map((row) => row.market)), 'Other'];
    return {
      names,
      source: 'the market table (markets.csv)',
      inForce: { table: table(), isReportedRulesEnabled, otherMarket: 'Other' },
    };
  }
  const withBangladesh = (date: string) =>
    [
      `Cost per delivered message in USD, effective ${date}`,
      HEADER,
      'India,$US,0.0107,0.0014,0.0014,0.0280,0.0000',
      'Bangladesh,$US,0.0500,0.0100,0.0100,n/a,0.0000',
      'Rest of Asia Pacific,$US,0.0732,0.0113,0.0113,n/a,0.0000',
      'Other,$US,0.0604,0.0080,0.0080,n/a,0.0000',
    ].join('\n');

  it('refuses a market that splits off only after the card’s effective date, naming where its countries are', () => {
    const result = parseRateCardCsv(withBangladesh('October 1, 2025'), 'usd-2025-10-01.csv', {
      knownMarkets: known(true),
    });
    expect(result.ok || result.error).toEqual({
      code: 'MARKET_NOT_IN_FORCE',
      file: 'usd-2025-10-01.csv',
      line: 4,
      message:
        'usd-2025-10-01.csv line 4: market "Bangladesh" holds no country on 2025-10-01, the card\'s effective ' +
        'date: in the market table (markets.csv) BD is in Rest of Asia Pacific that day, and in Bangladesh only ' +
        'from 2026-10-01. This row would never price anything, and those numbers would be charged the rate of ' +
        "Rest of Asia Pacific. Check the card's effective date; if Meta prices Bangladesh on its own from " +
        '2025-10-01, the market table must say so before this card can be used',
    });
  });

  it('accepts the market from the day it holds a country, and Other on any day', () => {
    const result = parseRateCardCsv(withBangladesh('October 1, 2026'), 'usd-2026-10-01.csv', {
      knownMarkets: known(true),
    });
    expect(result.ok && [...result.value.rates.keys()]).toEqual([
      'India',
      'Bangladesh',
      'Rest of Asia Pacific',
      'Other',
    ]);
  });

  it('refuses a reported market when reported rules are off, saying how to price it', () => {
    const result = parseRateCardCsv(withBangladesh('October 1, 2026'), 'usd-2026-10-01.csv', {
      knownMarkets: known(false),
    });
    expect(result.ok || result.error).toMatchObject({ code: 'MARKET_NOT_IN_FORCE', line: 4 });
    expect(result.ok || result.error.message).toBe(
      'usd-2026-10-01.csv line 4: market "Bangladesh" holds no country on 2026-10-01, the card\'s effective ' +
        'date, with reported rules switched off: the market table (markets.csv) has Bangladesh only in rows ' +
        'reported by third parties (source "reported"), so BD stays in Rest of Asia Pacific. This row would ' +
        'never price anything, and those numbers would be charged the rate of Rest of Asia Pacific. A card from ' +
        'Meta that lists Bangladesh confirms the split: price with reported rules on (without --no-reported; for ' +
        'the service, WAMETER_REPORTED_RULES=on or "reportedRules": true)',
    );
  });

  it('does not suggest reported rules for a date before the reported split', () => {
    const result = parseRateCardCsv(withBangladesh('October 1, 2025'), 'usd-2025-10-01.csv', {
      knownMarkets: known(false),
    });
    expect(result.ok || result.error.message).toMatch(
      /BD is in Rest of Asia Pacific that day, and in Bangladesh only from 2026-10-01 \(a split only reported by third parties, and reported rules are switched off\)\. .* Check the card's effective date/,
    );
  });

  it('accepts every bundled card with reported rules on and off', () => {
    for (const name of [
      'usd-2022-02-01-partial',
      'usd-2023-06-01-partial',
      'usd-2024-11-01',
      'usd-2025-10-01',
    ]) {
      for (const isReportedRulesEnabled of [true, false]) {
        const parsed = parseRateCardCsv(bundled(name), `${name}.csv`, {
          knownMarkets: known(isReportedRulesEnabled),
        });
        expect(parsed.ok || parsed.error.message).toBe(true);
      }
    }
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
      { kind: 'date', date: '2023-06-01', text: 'June 1, 2023' },
    ],
    ['Cost in USD, effective Feb 30, 2024', { kind: 'not-a-date', text: 'Feb 30, 2024' }],
    ['effective as of 2023-13-01', { kind: 'not-a-date', text: '2023-13-01' }],
    ['effective Ma 1, 2024', { kind: 'not-a-date', text: 'Ma 1, 2024' }],
    ['Rates in USD', undefined],
    ['Cost-effective messaging, rates in USD', undefined],
  ])('effectiveDateInTitle(%s)', (title, found) => {
    expect(effectiveDateInTitle(title)).toEqual(found);
  });

  // Forms seen in the finance review (titles of real exports), and Meta's own.
  it.each([
    ['Cost per message in USD, Effective: October 1, 2025', '2025-10-01', 'October 1, 2025'],
    ['Rates effective from 01 Oct 2025', '2025-10-01', '01 Oct 2025'],
    ['Effective date 2025-10-01', '2025-10-01', '2025-10-01'],
    ['Effective date: 2025-10-01', '2025-10-01', '2025-10-01'],
    ['Cost per delivered message in USD, effective 1 October 2025', '2025-10-01', '1 October 2025'],
    ['effective on 1st October, 2025', '2025-10-01', '1st October, 2025'],
    ['EFFECTIVE AS OF OCT. 1, 2025', '2025-10-01', 'OCT. 1, 2025'],
    ['Effective rates, effective October 1, 2025', '2025-10-01', 'October 1, 2025'],
    ['effective 13/10/2025', '2025-10-13', '13/10/2025'],
    ['effective 10/13/2025', '2025-10-13', '10/13/2025'],
    ['effective 01/01/2026', '2026-01-01', '01/01/2026'],
  ])('reads %s as %s', (title, date, text) => {
    expect(effectiveDateInTitle(title)).toEqual({ kind: 'date', date, text });
  });

  it('calls a numeric date ambiguous when both its first parts could be the month', () => {
    expect(effectiveDateInTitle('effective 10/01/2025')).toEqual({
      kind: 'ambiguous',
      text: '10/01/2025',
      monthFirst: '2025-10-01',
      dayFirst: '2025-01-10',
    });
    expect(effectiveDateInTitle('effective 31/02/2025')).toEqual({ kind: 'not-a-date', text: '31/02/2025' });
  });

  it.each([
    'Effective rates for WhatsApp',
    'effective 10/01/25',
    'Rates effective Q4 2025',
    'effective for messages delivered from October 1, 2025',
  ])('finds no readable date in %s', (title) => {
    expect(effectiveDateInTitle(title)).toEqual({ kind: 'unreadable' });
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

  it('names the character of an unknown market that no market has: an invisible one or a look-alike', () => {
    // "India" with a zero-width space, and with a Cyrillic і: shown, each looks like India itself.
    const invisible = withMarkets(['India\u200b,$US,1,1,1,n/a,0']);
    expect(invisible.ok || invisible.error).toMatchObject({ code: 'UNKNOWN_MARKET', line: 3 });
    expect(invisible.ok || invisible.error.message).toMatch(
      /unknown market "India\u200b" \(did you mean India\?\): .* before this card can be used; its character 6 \(U\+200B\) is in no market's name: an invisible character, or a letter of another alphabet that looks like a Latin one — type the name again$/,
    );
    const cyrillic = withMarkets(['Ind\u0456a,$US,1,1,1,n/a,0']);
    expect(cyrillic.ok || cyrillic.error.message).toMatch(
      /; its character 4 \(U\+0456\) is in no market's name: /,
    );
    // A name in ASCII says nothing of the kind.
    const typo = withMarkets(['Indai,$US,1,1,1,n/a,0']);
    expect(typo.ok || typo.error.message).not.toMatch(/is in no market's name/);
  });

  it('refuses a market cell of a megabyte at once, showing its start and length, not the whole cell', () => {
    // Measuring its edits from each known name took a table of a megabyte per name: minutes, gigabytes.
    const huge = `Indi${'a'.repeat(1_000_000)}`;
    const result = withMarkets([`${huge},$US,1,1,1,n/a,0`]);
    expect(result.ok || result.error).toMatchObject({ code: 'UNKNOWN_MARKET', line: 3 });
    expect(result.ok || result.error.message).toBe(
      `usd.csv line 3: unknown market "Indi${'a'.repeat(56)}…" (1000004 characters) (did you mean India?): the market table ` +
        '(markets.csv) has no market of that name, so no recipient would ever be priced with this row. ' +
        'Correct the name; if Meta has added this market, the market table must list it before this card can be used',
    );
  });

  it('refuses a real market the table lacks (one Meta added later), saying the table must list it', () => {
    const result = withMarkets(['India,$US,1,1,1,n/a,0', 'Brazil,$US,1,1,1,n/a,0']);
    expect(result.ok || result.error).toMatchObject({ code: 'UNKNOWN_MARKET', file: 'usd.csv', line: 4 });
    expect(result.ok || result.error.message).toMatch(
      /if Meta has added this market, the market table must list it before this card can be used/,
    );
  });

  it('says that notes must be separated from the table by a blank line when the unknown market reads as a note', () => {
    // A note right below the last market row, its commas splitting it into cells: read as a row.
    const note = withMarkets([
      'India,$US,0.0107,0.0014,0.0014,0.0280,0',
      'Prices are effective October 1, 2025, and exclude taxes.',
    ]);
    expect(note.ok || note.error).toMatchObject({ code: 'UNKNOWN_MARKET', file: 'usd.csv', line: 4 });
    expect(note.ok || note.error.message).toMatch(
      /unknown market "Prices are effective October 1".*; "Prices are effective October 1" looks like a note, not a market: notes below the table must be separated from it by a blank line$/,
    );
    // No digit, no full stop, but no currency either: a note ("Rates in USD, see Meta's page").
    const short = withMarkets(['India,$US,1,1,1,n/a,0', "Rates in USD, see Meta's page"]);
    expect(short.ok || short.error.message).toMatch(
      /notes below the table must be separated from it by a blank line$/,
    );
    // A misspelt market with its currency and rates is only a misspelt market.
    const typo = withMarkets(['Indai,$US,1,1,1,n/a,0']);
    expect(typo.ok || typo.error.message).not.toMatch(/blank line/);
    // The same note after a blank line is a note.
    const separated = withMarkets([
      'India,$US,0.0107,0.0014,0.0014,0.0280,0',
      '',
      'Prices are effective October 1, 2025, and exclude taxes.',
    ]);
    expect(separated.ok).toBe(true);
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

  it('says so of a volume-tier note below the table without a blank line too', () => {
    const text = [
      'effective October 1, 2025',
      'Market,Currency,Category,From,To,Rate',
      'India,$US,Utility,1,,0.0014',
      'Tiers count delivered messages per portfolio, per calendar month.',
    ].join('\n');
    const result = parseVolumeTierCsv(text, 'usd-2025-10-01-tiers.csv', { knownMarkets: KNOWN });
    expect(result.ok || result.error).toMatchObject({ code: 'UNKNOWN_MARKET', line: 4 });
    expect(result.ok || result.error.message).toMatch(
      /looks like a note, not a market: notes below the table must be separated from it by a blank line$/,
    );
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

  it('refuses a band whose rate is higher than the band before it (a mistyped rate)', () => {
    const error = bad(['India,$US,Utility,1,100000,0.0014', 'India,$US,Utility,100001,,0.0016']);
    expect(error).toMatchObject({ code: 'BAD_VOLUME_TIERS', line: 4 });
    expect(error.message).toMatch(
      /\(India, utility\): band 100001: has rate 0\.0016, higher than 0\.0014 of band 1:100000 on line 3; Meta's volume tiers only lower the rate/,
    );
    // The same rate again is no mistake of that kind.
    const same = ['effective October 1, 2025', 'Market,Currency,Category,From,To,Rate'];
    same.push('India,$US,Utility,1,100000,0.0014', 'India,$US,Utility,100001,,0.0014');
    expect(tiers(same.join('\n'), 'tiers.csv').tiers.get('India|utility')).toHaveLength(2);
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

  it('refuses a cell beyond the header and a row that is short of a column', () => {
    const shifted = bad(['India,$US,Utility,1,,0,0014']);
    expect(shifted).toMatchObject({ code: 'BAD_VOLUME_TIERS', line: 3 });
    expect(shifted.message).toMatch(
      /line 3 \(India\): more cells than the header has columns \("0014" after "Rate"/,
    );
    const short = bad(['India,$US,Utility,1,']);
    expect(short).toMatchObject({ code: 'BAD_VOLUME_TIERS', line: 3 });
    expect(short.message).toMatch(/line 3 \(India\): the row has no cell for "Rate"/);
  });

  it('refuses a rate split at a decimal comma whose decimals land in the ignored Discount column', () => {
    const error = tierError(
      [
        'effective October 1, 2025',
        'Market,Currency,Category,From,To,Rate,Discount',
        'India,$US,Utility,1,,0,0014',
      ].join('\n'),
    );
    expect(error).toMatchObject({ code: 'BAD_RATE', line: 3 });
    expect(error.message).toMatch(
      /Discount "0014" looks like the decimals of a rate written with a decimal comma \("0,0014" read as 0\); write the rate with a point \(0\.0014\)/,
    );
  });

  it('refuses a band rate with more than 6 decimals, stating the limit', () => {
    const error = bad(['India,$US,Utility,1,,0.00123456']);
    expect(error).toMatchObject({ code: 'BAD_RATE', line: 3 });
    expect(error.message).toMatch(
      /"0\.00123456" has 8 decimals; .* at most 6\. wameter does not round rates/,
    );
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
