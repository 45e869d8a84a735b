// Rate cards (Meta's per-market price lists) and their volume-tier files: parsing Meta's CSV layout, exactly,
// and choosing the card in force on a local date. Pure: text in, values out; never reads files or the clock.

import { editDistance } from './edit-distance.js';
import type { MarketTable } from './market.js';
import { formatMicros, MICROS_PER_UNIT, parseMicros } from './money.js';
import type { RateBook, RateCard, TierBand } from './pricing-context.js';
import { err, ok, type Result } from './result.js';
import type { RateCategory } from './units.js';

export type RateCardErrorCode =
  | 'BAD_RATE_CARD'
  | 'BAD_RATE'
  | 'NO_EFFECTIVE_DATE'
  | 'BAD_EFFECTIVE_DATE'
  | 'CONFLICTING_EFFECTIVE_DATE'
  | 'UNKNOWN_MARKET'
  | 'MARKET_NOT_IN_FORCE'
  | 'UNKNOWN_CURRENCY'
  | 'MIXED_CURRENCY'
  | 'BAD_VOLUME_TIERS'
  | 'TIERS_WITHOUT_CARD'
  | 'TIER_RATE_MISMATCH'
  | 'DUPLICATE_RATE_CARD';

export interface RateCardError {
  code: RateCardErrorCode;
  message: string;
  /** The file the problem is in (as given, e.g. "usd-2024-11-01.csv"). */
  file: string;
  /** 1-based line of the file, when the problem is on one line. */
  line?: number;
}

// ---------------------------------------------------------------------------------------------------------
// CSV records (RFC 4180: quoted fields may hold commas, doubled quotes and line breaks)

export interface CsvRecord {
  /** 1-based line of the file where the record starts. */
  line: number;
  cells: string[];
}

export type CsvError = { line: number; message: string };

/** Splits CSV text into records. Accepts a BOM and CRLF; an unterminated quote is an error. */
export function readCsvRecords(text: string): Result<CsvRecord[], CsvError> {
  const records: CsvRecord[] = [];
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let cells: string[] = [];
  let cell = '';
  let line = 1;
  let recordLine = 1;
  let quoteLine = 0;
  let isQuoted = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (isQuoted) {
      if (ch === '"') {
        if (source[i + 1] === '"') {
          cell += '"';
          i++;
        } else {
          isQuoted = false;
        }
      } else {
        if (ch === '\n') line++;
        cell += ch;
      }
    } else if (ch === '"') {
      isQuoted = true;
      quoteLine = line;
    } else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && source[i + 1] === '\n') i++;
      cells.push(cell);
      records.push({ line: recordLine, cells });
      cells = [];
      cell = '';
      line++;
      recordLine = line;
    } else {
      cell += ch;
    }
  }
  if (isQuoted) return err({ line: quoteLine, message: 'a quoted field is never closed (missing ")' });
  if (cell !== '' || cells.length > 0) {
    cells.push(cell);
    records.push({ line: recordLine, cells });
  }
  return ok(records);
}

function isBlankRecord(record: CsvRecord): boolean {
  return record.cells.every((cell) => cell.trim() === '');
}

/**
 * Why a row does not fit its header, or `undefined`. A row must have a cell for every named column, and may
 * hold text only under a named column. A header's empty cells (a spreadsheet's trailing comma) are not
 * columns: an unquoted decimal comma ("0,0107") that shifts a row into them is refused, never read.
 * `missingAdvice` says what to write in a missing cell.
 */
function rowShapeProblem(header: CsvRecord, record: CsvRecord, missingAdvice: string): string | undefined {
  const names = header.cells.map((cell) => cell.trim());
  let last = names.length - 1;
  while (last > 0 && names[last] === '') last--;
  const missing = names.slice(record.cells.length, last + 1).filter((name) => name !== '');
  if (missing.length > 0) {
    return `the row has no cell for ${andList(missing.map((name) => `"${name}"`))}; ${missingAdvice}`;
  }
  for (const [index, written] of record.cells.entries()) {
    const cell = written.trim();
    if (cell === '' || (names[index] ?? '') !== '') continue;
    if (index > last) {
      return (
        `more cells than the header has columns ("${cell}" after "${names[last]}", the last column); quote ` +
        `cells that contain commas, and write decimals with a point (0.0107, not 0,0107)`
      );
    }
    const before = names
      .slice(0, index)
      .reverse()
      .find((name) => name !== '');
    const after = names.slice(index + 1).find((name) => name !== '');
    return (
      `"${cell}" is in column ${index + 1}, which has no name in the header (between "${before}" and ` +
      `"${after}"); name the column, or leave its cells empty`
    );
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Dates

const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** True for a real calendar date written "YYYY-MM-DD" (2023-02-29 is not one). */
export function isLocalDate(text: string): boolean {
  const match = LOCAL_DATE.exec(text);
  if (!match) return false;
  const [, year, month, day] = match.map(Number) as [number, number, number, number];
  if (month < 1 || month > 12 || day < 1) return false;
  return day <= daysInMonth(year, month);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

const MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];

// Meta writes "… effective June 1, 2023"; exports and hand-made cards also write "Effective: October 1, 2025",
// "effective as of Jul 1 2025", "Rates effective from 01 Oct 2025", "Effective date 2025-10-01" and
// "effective 10/01/2025" (docs/rate-cards.md). The word, not "cost-effective":
const EFFECTIVE = /(?<![\w-])effective\b/gi;
/** The words that may stand between "effective" and its date. */
const EFFECTIVE_LEAD = /^(?:\s*(?::|date\b|as\s+of\b|from\b|on\b))*\s*/i;
const ISO_DATE = /^(\d{4}-\d{2}-\d{2})\b/;
const MONTH_DAY_YEAR = /^(([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}))\b/i;
const DAY_MONTH_YEAR = /^((\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?,?\s+(\d{4}))\b/i;
const NUMERIC_DATE = /^((\d{1,2})([/.-])(\d{1,2})\3(\d{4}))\b/;
const DATE_IN_NAME = /\d{4}-\d{2}-\d{2}/g;

/**
 * The effective date a title line states, `text` being the date as written:
 * - `date`: a calendar date ("effective June 1, 2023" → "2023-06-01");
 * - `not-a-date`: a written date that is none ("Feb 30, 2024", "Jnue 1, 2024");
 * - `ambiguous`: a numeric date that reads as two days ("10/01/2025": October 1 or January 10);
 * - `unreadable`: the line says "effective" but no date follows it in a form wameter reads;
 * or `undefined` when the line does not say "effective".
 */
export type TitleEffectiveDate =
  | { kind: 'date'; date: string; text: string }
  | { kind: 'not-a-date'; text: string }
  | { kind: 'ambiguous'; text: string; monthFirst: string; dayFirst: string }
  | { kind: 'unreadable' };

export function effectiveDateInTitle(title: string): TitleEffectiveDate | undefined {
  let saysEffective = false;
  // "Effective rates, effective October 1, 2025": the first "effective" followed by a date counts.
  for (const match of title.matchAll(EFFECTIVE)) {
    saysEffective = true;
    const rest = title.slice((match.index ?? 0) + match[0].length).replace(EFFECTIVE_LEAD, '');
    const found = writtenDate(rest);
    if (found) return found;
  }
  return saysEffective ? { kind: 'unreadable' } : undefined;
}

/** The date at the start of `text`, in one of the forms of docs/rate-cards.md, or `undefined`. */
function writtenDate(text: string): Exclude<TitleEffectiveDate, { kind: 'unreadable' }> | undefined {
  const iso = ISO_DATE.exec(text)?.[1];
  if (iso !== undefined) return calendarDate(iso, iso);
  const monthFirst = MONTH_DAY_YEAR.exec(text);
  if (monthFirst) {
    const [, written = '', month = '', day = '', year = ''] = monthFirst;
    return calendarDate(isoDate(year, monthNumber(month), day), written);
  }
  const dayFirst = DAY_MONTH_YEAR.exec(text);
  if (dayFirst) {
    const [, written = '', day = '', month = '', year = ''] = dayFirst;
    return calendarDate(isoDate(year, monthNumber(month), day), written);
  }
  const numeric = NUMERIC_DATE.exec(text);
  if (numeric) {
    const [, written = '', first = '', , second = '', year = ''] = numeric;
    const asMonthFirst = isoDate(year, Number(first), second);
    const asDayFirst = isoDate(year, Number(second), first);
    const readings = [asMonthFirst, asDayFirst].filter(isLocalDate);
    // 01/01/2026 is one day either way; 13/10/2025 has only one reading. 10/01/2025 has two.
    if (readings.length === 2 && asMonthFirst !== asDayFirst) {
      return { kind: 'ambiguous', text: written, monthFirst: asMonthFirst, dayFirst: asDayFirst };
    }
    const date = readings[0];
    return date === undefined ? { kind: 'not-a-date', text: written } : { kind: 'date', date, text: written };
  }
  return undefined;
}

function calendarDate(
  date: string,
  text: string,
): { kind: 'date'; date: string; text: string } | { kind: 'not-a-date'; text: string } {
  return isLocalDate(date) ? { kind: 'date', date, text } : { kind: 'not-a-date', text };
}

/** "June", "Jun", "Sept", "oct" → 6, 6, 9, 10; 0 when the word is not a month (three letters at least). */
function monthNumber(word: string): number {
  const name = word.toLowerCase();
  return name.length >= 3 ? MONTHS.findIndex((month) => month.startsWith(name)) + 1 : 0;
}

function isoDate(year: string, month: number, day: string): string {
  return `${year}-${String(month).padStart(2, '0')}-${day.padStart(2, '0')}`;
}

/** The effective date written in a title ("effective June 1, 2023" → "2023-06-01"), if any and real. */
export function effectiveDateFromTitle(title: string): string | undefined {
  const found = effectiveDateInTitle(title);
  return found?.kind === 'date' ? found.date : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Columns and currencies

// Maps, not object literals: a column or token such as "constructor" must not find a property of Object.
const CATEGORY_COLUMNS: ReadonlyMap<string, RateCategory> = new Map([
  ['marketing', 'marketing'],
  ['utility', 'utility'],
  ['authentication', 'authentication'],
  ['authenticationinternational', 'authentication_international'],
  ['service', 'service'],
  ['businessinitiated', 'business_initiated'],
  ['userinitiated', 'user_initiated'],
]);

const CATEGORY_NAMES =
  'Marketing, Utility, Authentication, Authentication-International, Service, Business-Initiated, User-Initiated';

/** "Authentication-International", "authentication international", "AUTHENTICATION_INTERNATIONAL" → one key. */
function columnKey(name: string): string {
  return name.toLowerCase().replace(/[\s_-]+/g, '');
}

function categoryOfColumn(name: string): RateCategory | undefined {
  return CATEGORY_COLUMNS.get(columnKey(name));
}

// Symbols Meta prints in its Currency column; any ISO 4217 code is accepted as well.
const CURRENCY_TOKENS: ReadonlyMap<string, string> = new Map([
  ['$US', 'USD'],
  ['US$', 'USD'],
  ['$AU', 'AUD'],
  ['AU$', 'AUD'],
  ['A$', 'AUD'],
  ['€', 'EUR'],
  ['£', 'GBP'],
  ['₹', 'INR'],
  ['RP', 'IDR'],
  ['RS', 'INR'],
]);

let isoCurrencies: Set<string> | undefined;

function isIsoCurrency(code: string): boolean {
  isoCurrencies ??= new Set(Intl.supportedValuesOf('currency'));
  return isoCurrencies.has(code);
}

/** "$US" → "USD", "€" → "EUR", "Rp" → "IDR", "eur" → "EUR"; `undefined` when the token is not a currency. */
export function currencyOfToken(token: string): string | undefined {
  const trimmed = token.trim().toUpperCase();
  const symbol = CURRENCY_TOKENS.get(trimmed);
  if (symbol) return symbol;
  return /^[A-Z]{3}$/.test(trimmed) && isIsoCurrency(trimmed) ? trimmed : undefined;
}

const NO_RATE = new Set(['', 'n/a', 'na', '-', '—']);
// A thousands group never starts with 0: "0,785" is a decimal comma, not 785.
const GROUPED_DECIMAL = /^[1-9]\d{0,2}(,\d{3})+(\.\d+)?$/;
const DECIMAL_PARTS = /^(\d+)\.(\d+)$/;
/** Decimals money can hold: it is integer micros (money.ts). */
const MAX_DECIMALS = String(MICROS_PER_UNIT).length - 1;

/**
 * A rate cell → micros, `null` for "no rate" (`n/a`, empty), or why it is not a rate and what to write
 * instead (`orNoRate`: ", or n/a" where a card may say Meta has no rate).
 */
function parseRateCell(cell: string, orNoRate: string): { micros: number | null } | { problem: string } {
  const trimmed = cell.trim();
  if (NO_RATE.has(trimmed.toLowerCase())) return { micros: null };
  // A quoted "1,062.50" (IDR) is a grouped number, not two cells.
  const plain = GROUPED_DECIMAL.test(trimmed) ? trimmed.replace(/,/g, '') : trimmed;
  const notARate = (why: string, write = `write a decimal like 0.0014${orNoRate}`) => ({
    problem: `is not a rate (${why}); ${write}`,
  });
  if (/^0\d/.test(plain)) {
    // "0,0107" unquoted is two cells, "0" and "0107": nobody writes a price with a leading 0.
    return notARate(
      `a leading 0: the decimals of "0,${plain}"? an unquoted decimal comma splits a number in two`,
      `write decimals with a point (0.${plain})${orNoRate}`,
    );
  }
  if (plain.includes(',')) {
    return notARate(
      'a comma that does not group thousands',
      `write decimals with a point and group thousands with commas ("1,062.50")${orNoRate}`,
    );
  }
  const decimals = (DECIMAL_PARTS.exec(plain)?.[2] ?? '').replace(/0+$/, '');
  if (decimals.length > MAX_DECIMALS) {
    return {
      problem:
        `has ${decimals.length} decimals; wameter holds money exactly in millionths of the currency, so a rate ` +
        `can have at most ${MAX_DECIMALS}. wameter does not round rates: write the rate Meta charges with at ` +
        `most ${MAX_DECIMALS} decimals (${roundedHalfUp(plain)} rounded half up), or, if Meta charges more ` +
        `decimals, this card cannot be priced exactly`,
    };
  }
  const parsed = parseMicros(plain);
  if (!parsed.ok) return notARate(parsed.error.message);
  if (parsed.value < 0) return notARate('a rate cannot be negative');
  return { micros: parsed.value };
}

/** "0.00123456" → "0.001235": a suggestion for the user to check, never applied by wameter. */
function roundedHalfUp(decimal: string): string {
  const [whole = '0', fraction = ''] = decimal.split('.');
  const kept = BigInt(`${whole}${fraction.slice(0, MAX_DECIMALS).padEnd(MAX_DECIMALS, '0')}`);
  const micros = (fraction[MAX_DECIMALS] ?? '0') >= '5' ? kept + 1n : kept;
  const digits = micros.toString().padStart(MAX_DECIMALS + 1, '0');
  const rounded = `${digits.slice(0, -MAX_DECIMALS)}.${digits.slice(-MAX_DECIMALS)}`;
  return rounded.replace(/\.?0+$/, '');
}

/** The card's id: the file name without directory and `.csv`. */
export function rateCardId(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  return base.replace(/\.csv$/i, '');
}

// ---------------------------------------------------------------------------------------------------------
// The card

type Rates = Partial<Record<RateCategory, number>>;

/**
 * Reads one of Meta's rate-card CSVs: title line(s), a header row starting with `Market`, one row per market,
 * then notes (after a blank line, or any one-cell line) kept as `provenance`. With `knownMarkets`, a market
 * the table lacks is refused (UNKNOWN_MARKET). See docs/rate-cards.md.
 */
export function parseRateCardCsv(
  text: string,
  fileName: string,
  options: RateCardParseOptions = {},
): Result<RateCard, RateCardError> {
  const fail = (code: RateCardErrorCode, message: string, line?: number) =>
    err<RateCardError>(
      line === undefined ? { code, message, file: fileName } : { code, message, file: fileName, line },
    );

  const csv = readCsvRecords(text);
  if (!csv.ok)
    return fail('BAD_RATE_CARD', `${fileName} line ${csv.error.line}: ${csv.error.message}`, csv.error.line);
  const records = csv.value;

  const headerIndex = records.findIndex((r) => r.cells[0]?.trim().toLowerCase() === 'market');
  if (headerIndex < 0) {
    return fail(
      'BAD_RATE_CARD',
      `${fileName} has no header row: expected a line starting with "Market" ` +
        `(Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service)`,
    );
  }
  const header = records[headerIndex] as CsvRecord;
  const titleRecords = records.slice(0, headerIndex);
  const title = titleOf(titleRecords);
  const matchMarket = marketMatcher(options.knownMarkets);

  // Columns
  let currencyColumn = -1;
  const categoryColumns: { index: number; category: RateCategory; name: string }[] = [];
  for (let index = 1; index < header.cells.length; index++) {
    const name = (header.cells[index] as string).trim();
    if (name === '') continue;
    if (columnKey(name) === 'currency') {
      if (currencyColumn >= 0)
        return fail('BAD_RATE_CARD', `${fileName} line ${header.line}: two Currency columns`, header.line);
      currencyColumn = index;
      continue;
    }
    const category = categoryOfColumn(name);
    if (!category) {
      return fail(
        'BAD_RATE_CARD',
        `${fileName} line ${header.line}: unknown column "${name}"; expected Currency and some of ${CATEGORY_NAMES}`,
        header.line,
      );
    }
    if (categoryColumns.some((c) => c.category === category)) {
      return fail(
        'BAD_RATE_CARD',
        `${fileName} line ${header.line}: column "${name}" appears twice`,
        header.line,
      );
    }
    categoryColumns.push({ index, category, name });
  }
  if (currencyColumn < 0) {
    return fail(
      'BAD_RATE_CARD',
      `${fileName} line ${header.line}: no Currency column in the header`,
      header.line,
    );
  }
  if (categoryColumns.length === 0) {
    return fail(
      'BAD_RATE_CARD',
      `${fileName} line ${header.line}: no rate columns in the header; expected some of ${CATEGORY_NAMES}`,
      header.line,
    );
  }

  // Rows, then notes
  const rates = new Map<string, Rates>();
  const marketLines = new Map<string, number>();
  const notes: string[] = [];
  let currency: { code: string; line: number; token: string } | undefined;
  let notesLine: number | undefined;
  for (const record of records.slice(headerIndex + 1)) {
    if (notesLine !== undefined) {
      // A market row below the notes would be silently lost: refuse it instead.
      if (record.cells[0]?.trim() && currencyOfToken(record.cells[currencyColumn] ?? '')) {
        return fail(
          'BAD_RATE_CARD',
          `${fileName} line ${record.line}: a market row ("${record.cells[0].trim()}") below the end of the table ` +
            `(line ${notesLine}); remove the blank or one-cell line that ends the table there`,
          record.line,
        );
      }
      const note = recordText(record);
      if (note !== '') notes.push(note);
      continue;
    }
    if (isBlankRecord(record) || record.cells.filter((c) => c.trim() !== '').length === 1) {
      notesLine = record.line;
      const note = recordText(record);
      if (note !== '') notes.push(note);
      continue;
    }
    const where = `${fileName} line ${record.line}`;
    const written = (record.cells[0] ?? '').trim();
    if (written === '') return fail('BAD_RATE_CARD', `${where}: the Market cell is empty`, record.line);
    const matched = matchMarket(written);
    if ('problem' in matched) {
      const note = noteHint(written, record.cells[currencyColumn]);
      return fail('UNKNOWN_MARKET', `${where}: ${matched.problem}${note}`, record.line);
    }
    const market = matched.market;
    const shape = rowShapeProblem(
      header,
      record,
      'a missing cell is neither 0 nor n/a: write the rate, or n/a where Meta has none (and quote cells that ' +
        'contain commas)',
    );
    if (shape !== undefined) return fail('BAD_RATE_CARD', `${where} (${market}): ${shape}`, record.line);
    const previousLine = marketLines.get(market);
    if (previousLine !== undefined) {
      const as = written === market ? '' : ` (as "${written}")`;
      return fail(
        'BAD_RATE_CARD',
        `${where}: market "${market}"${as} is listed twice (also line ${previousLine})`,
        record.line,
      );
    }
    marketLines.set(market, record.line);

    const token = (record.cells[currencyColumn] ?? '').trim();
    const code = currencyOfToken(token);
    if (!code) {
      return fail(
        'UNKNOWN_CURRENCY',
        `${where} (${market}): "${token}" is not a currency; write an ISO 4217 code (USD, EUR, INR…) or one of ` +
          `$US, $AU, €, £, ₹, Rp`,
        record.line,
      );
    }
    if (currency && currency.code !== code) {
      return fail(
        'MIXED_CURRENCY',
        `${where} (${market}): currency "${token}" (${code}) differs from "${currency.token}" (${currency.code}) ` +
          `on line ${currency.line}; one card holds one currency — split the file per currency`,
        record.line,
      );
    }
    currency ??= { code, line: record.line, token };

    const marketRates: Rates = {};
    for (const column of categoryColumns) {
      const cell = record.cells[column.index] ?? '';
      const parsed = parseRateCell(cell, ', or n/a');
      if ('problem' in parsed) {
        return fail(
          'BAD_RATE',
          `${where}: market "${market}", column "${column.name}": "${cell.trim()}" ${parsed.problem}`,
          record.line,
        );
      }
      if (parsed.micros !== null) marketRates[column.category] = parsed.micros;
    }
    rates.set(market, marketRates);
  }
  if (!currency)
    return fail('BAD_RATE_CARD', `${fileName} has a header but no market rows below it`, header.line);
  const titled = titleCurrency(titleRecords);
  if (titled && titled.code !== currency.code) {
    return fail(
      'MIXED_CURRENCY',
      `${fileName} line ${titled.line}: the title says rates in ${titled.code} but the rows are in ` +
        `${currency.code} ("${currency.token}" on line ${currency.line}); a card of one currency read as another ` +
        `would bill every charge in it: correct the title or the rows`,
      titled.line,
    );
  }

  const effectiveDate = effectiveDateOf(titleRecords, fileName, {
    date: '2023-06-01',
    fileName: 'usd-2023-06-01.csv',
  });
  if (!effectiveDate.ok) {
    const { code, message, line } = effectiveDate.error;
    return fail(code, message, line);
  }
  const known = options.knownMarkets;
  if (known?.inForce) {
    const { table, isReportedRulesEnabled } = known.inForce;
    const activeTable = isReportedRulesEnabled ? table : table.withoutReportedRows();
    for (const [market, line] of marketLines) {
      const problem = marketOutOfForce(market, effectiveDate.value, known, known.inForce, activeTable);
      if (problem !== undefined) {
        return fail('MARKET_NOT_IN_FORCE', `${fileName} line ${line}: ${problem}`, line);
      }
    }
  }

  return ok({
    id: rateCardId(fileName),
    currency: currency.code,
    effectiveDate: effectiveDate.value,
    title,
    provenance: notes.length > 0 ? notes.join('\n') : null,
    rates,
    tiers: new Map(),
  });
}

/** The title lines above the header as text, or `null` when there are none. */
/**
 * The currency a title line states as Meta writes it ("Cost per conversation in USD, effective …"): an ISO
 * 4217 code in capitals after "in"; the first such line's, or undefined.
 */
function titleCurrency(titleRecords: readonly CsvRecord[]): { code: string; line: number } | undefined {
  for (const record of titleRecords) {
    for (const match of recordText(record).matchAll(/\bin ([A-Z]{3})\b/g)) {
      const code = match[1]!;
      if (isIsoCurrency(code)) return { code, line: record.line };
    }
  }
  return undefined;
}

function titleOf(titleRecords: readonly CsvRecord[]): string | null {
  const lines = titleRecords.map(recordText).filter((t) => t !== '');
  return lines.length > 0 ? lines.join('\n') : null;
}

/** A title/notes line as text: its non-empty cells, trimmed, joined again with ", " (titles contain commas). */
function recordText(record: CsvRecord): string {
  return record.cells
    .map((c) => c.trim())
    .filter((c) => c !== '')
    .join(', ');
}

/** How a card or tier file shows the title to write: the same date in each form wameter reads. */
interface DateExample {
  /** A date in force, "YYYY-MM-DD". */
  date: string;
  /** A file name holding it. */
  fileName: string;
}

/** "2023-06-01" → "June 1, 2023", as Meta writes it. */
function monthDayYear(date: string): string {
  const { month, day, year } = dateWords(date);
  return `${month} ${day}, ${year}`;
}

/** The forms of `date` a title may use: "effective June 1, 2023", "effective 1 June 2023", "effective 2023-06-01". */
function writtenForms(date: string): string {
  const { month, day, year } = dateWords(date);
  return `"effective ${month} ${day}, ${year}", "effective ${day} ${month} ${year}" or "effective ${date}"`;
}

/** "2023-06-01" → { month: "June", day: "1", year: "2023" }. */
function dateWords(date: string): { month: string; day: string; year: string } {
  const [year = '', month = '', day = ''] = date.split('-');
  const name = MONTHS[Number(month) - 1] ?? '';
  return { month: `${name.charAt(0).toUpperCase()}${name.slice(1)}`, day: String(Number(day)), year };
}

/** "1 October 2025 (2025-10-01)"; "2025-10-01" when written so. */
function written(found: { date: string; text: string }): string {
  return found.text === found.date ? found.date : `${found.text} (${found.date})`;
}

type EffectiveDateError = { code: RateCardErrorCode; message: string; line?: number };

/**
 * A file's effective date: what its title lines say after "effective", else a `YYYY-MM-DD` in the file name.
 * The title is what Meta wrote, so it is never silently replaced: a title that says "effective" with a date
 * that is not a calendar date, is ambiguous (10/01/2025) or cannot be read is refused, and so is a title date
 * that differs from the file name's (or from another title line's). See docs/rate-cards.md.
 */
function effectiveDateOf(
  titleRecords: readonly CsvRecord[],
  fileName: string,
  example: DateExample,
): Result<string, EffectiveDateError> {
  const found = statedEffectiveDate(titleRecords, fileName, example);
  if (!found.ok) return found;
  // "effective October 1, 0205" (2025 mistyped) would price every later charge until a newer card: a year
  // before Meta's first WhatsApp Business rates (2018) or past this century is a typo, not a card.
  const year = Number(found.value.slice(0, 4));
  if (year < FIRST_CARD_YEAR || year > LAST_CARD_YEAR) {
    return err({
      code: 'BAD_EFFECTIVE_DATE',
      message:
        `${fileName}: effective date ${found.value} is ${year < FIRST_CARD_YEAR ? `before ${FIRST_CARD_YEAR}, when Meta's WhatsApp Business rates began` : `after ${LAST_CARD_YEAR}`}: ` +
        `a typo in the year? Correct it (e.g. "effective ${monthDayYear(example.date)}")`,
    });
  }
  return found;
}

/** Meta's first WhatsApp Business Platform rates (per notification) date from 2018. */
const FIRST_CARD_YEAR = 2018;
const LAST_CARD_YEAR = 2099;

function statedEffectiveDate(
  titleRecords: readonly CsvRecord[],
  fileName: string,
  example: DateExample,
): Result<string, EffectiveDateError> {
  const fail = (code: RateCardErrorCode, message: string, line?: number) =>
    err<EffectiveDateError>(line === undefined ? { code, message } : { code, message, line });
  let stated: { date: string; text: string; line: number } | undefined;
  for (const record of titleRecords) {
    const title = recordText(record);
    const found = effectiveDateInTitle(title);
    if (!found) continue;
    const where = `${fileName} line ${record.line}`;
    switch (found.kind) {
      case 'not-a-date':
        return fail(
          'BAD_EFFECTIVE_DATE',
          `${where}: effective date ${found.text} is not a calendar date; correct it in the title line ` +
            `(e.g. "effective ${monthDayYear(example.date)}")`,
          record.line,
        );
      case 'ambiguous':
        return fail(
          'BAD_EFFECTIVE_DATE',
          `${where}: effective date ${found.text} is ambiguous: ${monthDayYear(found.monthFirst)} (MM/DD/YYYY) ` +
            `or ${monthDayYear(found.dayFirst)} (DD/MM/YYYY); write the right one in the title line with the ` +
            `month's name or as YYYY-MM-DD (e.g. "effective ${monthDayYear(found.monthFirst)}" or ` +
            `"effective ${found.monthFirst}")`,
          record.line,
        );
      case 'unreadable':
        return fail(
          'BAD_EFFECTIVE_DATE',
          `${where}: the title "${title}" says effective but no date can be read after it; write it as ` +
            `${writtenForms(example.date)} (the file name is not used when the title says effective)`,
          record.line,
        );
      case 'date':
        if (stated && stated.date !== found.date) {
          return fail(
            'CONFLICTING_EFFECTIVE_DATE',
            `${where}: the title says effective ${written(found)} but line ${stated.line} says ` +
              `${written(stated)}; keep the one Meta wrote`,
            record.line,
          );
        }
        stated ??= { date: found.date, text: found.text, line: record.line };
    }
  }
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  const namedDates = [...rateCardId(base).matchAll(DATE_IN_NAME)].map((m) => m[0]).filter(isLocalDate);
  if (stated) {
    const named = namedDates[0];
    if (named !== undefined && !namedDates.includes(stated.date)) {
      return fail(
        'CONFLICTING_EFFECTIVE_DATE',
        `${fileName} line ${stated.line}: the title says effective ${written(stated)} but the file ` +
          `name says ${named}; the title is what Meta wrote: rename the file (${base.replace(named, stated.date)}), ` +
          `or correct the title if it is the one that is wrong`,
        stated.line,
      );
    }
    return ok(stated.date);
  }
  const named = namedDates[0];
  if (named !== undefined) return ok(named);
  const title = titleRecords
    .map(recordText)
    .filter((t) => t !== '')
    .join(' / ');
  // `usd-2025-02-30.csv`: a date in the name that is no calendar date is said to be one, not to be missing.
  const impossible = rateCardId(base).match(DATE_IN_NAME)?.[0];
  const nameWords =
    impossible === undefined
      ? 'the file name has no YYYY-MM-DD date'
      : `the file name's ${impossible} is not a calendar date`;
  return fail(
    'NO_EFFECTIVE_DATE',
    `${fileName}: no effective date: no title line says "effective …" ` +
      (title === '' ? '(there is no title line above the header)' : `(the title reads "${title}")`) +
      ` and ${nameWords}; add a title line such as "effective ${monthDayYear(example.date)}" ` +
      `above the header, or put the date in the file name (e.g. ${example.fileName})`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Market names

/**
 * The markets a card may name: those of the market table the cards are priced with (docs/rate-cards.md).
 * A row under any other name would never price a recipient, since recipients are only ever placed in the
 * table's markets.
 */
export interface KnownMarkets {
  /** Every market name the table uses, in its spelling ("India", "Rest of Africa", "Other"). */
  names: readonly string[];
  /** The table, as messages name it ("wameter's market table (data/markets.csv)"). */
  source: string;
  /**
   * When given, a card's market must hold at least one country on the card's effective date under the rules
   * in use (MARKET_NOT_IN_FORCE otherwise): recipients are placed by that table, so a row for a market that
   * holds none would never price anything, and its numbers would be charged their region's rate unnoticed.
   */
  inForce?: MarketsInForce;
}

/** The market table and rule set cards are priced with, to check each market is in force on a card's date. */
export interface MarketsInForce {
  /** The whole table, `reported` rows included. */
  table: MarketTable;
  /** Whether the table's `reported` rows apply, exactly as for the rater (`createMarketResolver`). */
  isReportedRulesEnabled: boolean;
  /** The market of every country the table does not list ("Other"): it always holds countries. */
  otherMarket: string;
}

export interface RateCardParseOptions {
  /** When given, every row's market must be one of these (case and spacing aside); it is stored as spelt there. */
  knownMarkets?: KnownMarkets;
}

/** "Rest of  africa" → "restofafrica": names that differ only in case or spacing are one market. */
function marketKey(name: string): string {
  return name.toLowerCase().replace(/\s+/g, '');
}

/** A market name's match (`marketNameMatcher`): the market, or the several it could be, or the closest. */
export type MarketNameMatch = { market: string } | { matches: string[]; closest: string[] };

/**
 * A market name as one of `names` spells it, case and spacing aside ("india", " INDIA " → "India"); when it
 * is none of them, `matches` (several names it could be) or none, and the `closest` names. Rate cards,
 * volume-tier files and Meta's tier statements (rate-events.ts) name markets by this one rule.
 */
export function marketNameMatcher(names: readonly string[]): (name: string) => MarketNameMatch {
  const byKey = new Map<string, Set<string>>();
  for (const name of names) {
    const key = marketKey(name);
    byKey.set(key, (byKey.get(key) ?? new Set()).add(name));
  }
  return (name) => {
    const key = marketKey(name);
    const matches = [...(byKey.get(key) ?? [])];
    if (matches.length === 1) return { market: matches[0] as string };
    return { matches, closest: matches.length > 1 ? [] : closestMarkets(key, byKey) };
  };
}

/** " (did you mean India?)" for a name matching no market, or "". */
export function didYouMeanMarket(closest: readonly string[]): string {
  return closest.length > 0 ? ` (did you mean ${orList(closest)}?)` : '';
}

type MarketMatcher = (name: string) => { market: string } | { problem: string };

/** Matches a card's market name to the known markets; without any, every name stands as written. */
function marketMatcher(known: KnownMarkets | undefined): MarketMatcher {
  if (!known) return (name) => ({ market: name });
  const match = marketNameMatcher(known.names);
  const characters = new Set(known.names.join(''));
  return (name) => {
    const matched = match(name);
    if ('market' in matched) return matched;
    if (matched.matches.length > 1) {
      return {
        problem: `market "${name}" could be ${orList(matched.matches)} in ${known.source}; write it exactly as one of them`,
      };
    }
    const hint = didYouMeanMarket(matched.closest);
    return {
      problem:
        `unknown market ${quotedCell(name)}${hint}: ${known.source} has no market of that name, so no recipient would ever ` +
        `be priced with this row. Correct the name; if Meta has added this market, the market table must list ` +
        `it before this card can be used${unseenCharacter(name, characters)}`,
    };
  };
}

/**
 * `; its character 6 (U+200B) is in no market's name: …` when a name holds a character that is neither ASCII
 * nor in any known name, else ''. An invisible one (a zero-width space, a direction mark) or a look-alike from
 * another alphabet (Cyrillic і) makes "India" no market, and the message would show nothing wrong with it.
 */
function unseenCharacter(name: string, characters: ReadonlySet<string>): string {
  let position = 0;
  for (const character of name) {
    position++;
    const code = character.codePointAt(0)!;
    if ((code >= 0x20 && code <= 0x7e) || characters.has(character)) continue;
    const hex = code.toString(16).toUpperCase().padStart(4, '0');
    return (
      `; its character ${position} (U+${hex}) is in no market's name: an invisible character, or a letter of ` +
      `another alphabet that looks like a Latin one — type the name again`
    );
  }
  return '';
}

/** The most characters of a cell a message shows: a market's name has at most 32. */
const MOST_CELL_CHARACTERS_SHOWN = 60;

/** A cell quoted for a message: `"Indai"`; a long one cut, with its length (`"XXXX…" (200000 characters)`). */
function quotedCell(text: string): string {
  if (text.length <= MOST_CELL_CHARACTERS_SHOWN) return `"${text}"`;
  const cut = text.slice(0, MOST_CELL_CHARACTERS_SHOWN).replace(/[\ud800-\udbff]$/, '');
  return `"${cut}…" (${text.length} characters)`;
}

/** The most words in a market's name: "Rest of Central & Eastern Europe". */
const MOST_WORDS_IN_A_MARKET = 6;

/**
 * What to add to UNKNOWN_MARKET when the row refused looks like a note rather than a market row, else ''. A
 * note written right below the table, without the blank line that ends it, is read as a row when its commas
 * split it into cells. It looks like one when its first cell has a digit or a sentence's punctuation (no
 * market's name has), more words than any market's name, or when the row has no currency where a market row
 * has one.
 */
function noteHint(written: string, currencyCell: string | undefined): string {
  const looksLikeNote =
    /[\d.:;!?*]/.test(written) ||
    written.split(/\s+/).length > MOST_WORDS_IN_A_MARKET ||
    currencyOfToken(currencyCell ?? '') === undefined;
  return looksLikeNote
    ? `; ${quotedCell(written)} looks like a note, not a market: notes below the table must be separated from it by a blank line`
    : '';
}

/**
 * Why a card row for `market` would never price a recipient from the card's effective date `date`, or
 * `undefined` when the table under the rules in use (`activeTable`) places at least one country in it that
 * day. Recipients are only ever placed by that table, so such a row is dead and its numbers are charged the
 * rate of the market their countries are in instead.
 */
function marketOutOfForce(
  market: string,
  date: string,
  known: KnownMarkets,
  inForce: MarketsInForce,
  activeTable: MarketTable,
): string | undefined {
  if (market === inForce.otherMarket) return undefined;
  const countries = [
    ...new Set(inForce.table.rows.filter((row) => row.market === market).map((row) => row.country)),
  ];
  if (countries.length === 0) return undefined; // not a market of the table: the name check's business
  if (countries.some((country) => activeTable.marketOf(country, date) === market)) return undefined;

  // Where its countries are that day: "BD is in Rest of Asia Pacific".
  const byMarket = new Map<string, string[]>();
  for (const country of countries) {
    const current = activeTable.marketOf(country, date);
    byMarket.set(current, [...(byMarket.get(current) ?? []), country]);
  }
  const placed = (verb: 'is' | 'stays') =>
    [...byMarket]
      .map(([current, list]) => {
        const plural = list.length > 1;
        const names = list.length > 6 ? [...list.slice(0, 6), `${list.length - 6} more`] : list;
        const verbForm = verb === 'is' ? (plural ? 'are' : 'is') : plural ? 'stay' : 'stays';
        return `${andList(names)} ${verbForm} in ${current}`;
      })
      .join('; ');
  const consequence =
    `This row would never price anything, and those numbers would be charged the rate of ` +
    `${orList([...byMarket.keys()])}.`;
  const isHeldUnderReportedRules =
    !inForce.isReportedRulesEnabled &&
    countries.some((country) => inForce.table.marketOf(country, date) === market);
  if (isHeldUnderReportedRules) {
    return (
      `market "${market}" holds no country on ${date}, the card's effective date, with reported rules switched ` +
      `off: ${known.source} has ${market} only in rows reported by third parties (source "reported"), so ` +
      `${placed('stays')}. ${consequence} A card from Meta that lists ${market} confirms the split: price with ` +
      `reported rules on (without --no-reported; for the service, WAMETER_REPORTED_RULES=on or "reportedRules": true)`
    );
  }
  const rows = inForce.table.rows.filter((row) => row.market === market);
  const from = rows
    .map((row) => row.validFrom)
    .filter((day): day is string => day !== null && day > date)
    .sort()[0];
  const until = rows
    .map((row) => row.validTo)
    .filter((day): day is string => day !== null && day <= date)
    .sort()
    .pop();
  // With reported rules off, the rows the table in use lacks are the reported ones.
  const isReportedOnly =
    !inForce.isReportedRulesEnabled && activeTable.rows.every((row) => row.market !== market);
  const when =
    (from !== undefined
      ? `, and in ${market} only from ${from}`
      : until !== undefined
        ? `, and in ${market} only before ${until}`
        : '') +
    (isReportedOnly ? ' (a split only reported by third parties, and reported rules are switched off)' : '');
  return (
    `market "${market}" holds no country on ${date}, the card's effective date: in ${known.source} ` +
    `${placed('is')} that day${when}. ${consequence} Check the card's effective date; if Meta prices ${market} ` +
    `on its own from ${date}, the market table must say so before this card can be used`
  );
}

/** Up to three known names nearest to an unknown one: a typo away, or containing it ("Emirates"). */
function closestMarkets(key: string, byKey: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const limit = Math.max(1, Math.floor(key.length / 3));
  const scored: { name: string; distance: number }[] = [];
  for (const [knownKey, names] of byKey) {
    const isPart = key.length >= 4 && (knownKey.includes(key) || key.includes(knownKey));
    // Names further apart in length than `limit` are more than `limit` edits apart: not measured, so that a
    // cell of a megabyte (a file that is no card) costs no edit table of a megabyte per known market.
    const isFar = Math.abs(key.length - knownKey.length) > limit;
    if (isFar && !isPart) continue;
    let distance = isFar ? limit : editDistance(key, knownKey);
    if (distance > limit && !isPart) continue;
    if (isPart) distance = Math.min(distance, limit);
    for (const name of names) scored.push({ name, distance });
  }
  scored.sort((a, b) => a.distance - b.distance || (a.name < b.name ? -1 : 1));
  return scored.slice(0, 3).map((s) => s.name);
}

/** ["BD"] → "BD"; ["IQ", "KW", "OM"] → "IQ, KW and OM". */
function andList(names: readonly string[]): string {
  return names.length <= 1
    ? names.join('')
    : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/** ["India"] → "India"; ["Iraq", "Israel"] → "Iraq or Israel"; three → "A, B or C". */
function orList(names: readonly string[]): string {
  return names.length <= 1
    ? names.join('')
    : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

// ---------------------------------------------------------------------------------------------------------
// Volume tiers

const TIERED: readonly RateCategory[] = ['utility', 'authentication', 'authentication_international'];

/** A parsed volume-tier file: graduated bands per market and category, for one card (currency + date). */
export interface VolumeTierFile {
  /** File name without directory and `.csv`. */
  id: string;
  fileName: string;
  currency: string;
  effectiveDate: string;
  title: string | null;
  /** `${market}|${category}` → bands, ascending, contiguous from 1, the last one open. */
  tiers: ReadonlyMap<string, readonly TierBand[]>;
  /** `${market}|${category}` → the line of its first band (for error messages). */
  lines: ReadonlyMap<string, number>;
}

export function tierKey(market: string, category: RateCategory): string {
  return `${market}|${category}`;
}

const TIER_COLUMNS = ['market', 'currency', 'category', 'from', 'to', 'rate'] as const;
const COUNT = /^(\d+|\d{1,3}(,\d{3})+)$/;

/**
 * Reads a volume-tier file (docs/rate-cards.md): title line with the effective date (or a date in the file
 * name), header `Market,Currency,Category,From,To,Rate` (an optional `Discount` column is ignored), one row
 * per band. Per market and category the bands must start at 1, follow each other without gap or overlap, and
 * end with an open band (empty To).
 */
export function parseVolumeTierCsv(
  text: string,
  fileName: string,
  options: RateCardParseOptions = {},
): Result<VolumeTierFile, RateCardError> {
  const fail = (code: RateCardErrorCode, message: string, line?: number) =>
    err<RateCardError>(
      line === undefined ? { code, message, file: fileName } : { code, message, file: fileName, line },
    );

  const csv = readCsvRecords(text);
  if (!csv.ok)
    return fail(
      'BAD_VOLUME_TIERS',
      `${fileName} line ${csv.error.line}: ${csv.error.message}`,
      csv.error.line,
    );
  const records = csv.value;
  const headerIndex = records.findIndex((r) => r.cells[0]?.trim().toLowerCase() === 'market');
  if (headerIndex < 0) {
    return fail(
      'BAD_VOLUME_TIERS',
      `${fileName} has no header row: expected "Market,Currency,Category,From,To,Rate"`,
    );
  }
  const header = records[headerIndex] as CsvRecord;
  const columns = new Map<string, number>();
  header.cells.forEach((cell, index) => {
    const key = columnKey(cell);
    if (key !== '' && !columns.has(key)) columns.set(key, index);
  });
  const missing = TIER_COLUMNS.filter((c) => !columns.has(c));
  if (missing.length > 0) {
    return fail(
      'BAD_VOLUME_TIERS',
      `${fileName} line ${header.line}: header lacks ${missing.join(', ')}; expected "Market,Currency,Category,From,To,Rate"`,
      header.line,
    );
  }
  const column = (record: CsvRecord, name: (typeof TIER_COLUMNS)[number]) =>
    (record.cells[columns.get(name) as number] ?? '').trim();
  const titleRecords = records.slice(0, headerIndex);
  const title = titleOf(titleRecords);
  const matchMarket = marketMatcher(options.knownMarkets);

  type Band = TierBand & { line: number };
  const bands = new Map<string, Band[]>();
  let currency: { code: string; line: number; token: string } | undefined;
  for (const record of records.slice(headerIndex + 1)) {
    if (isBlankRecord(record)) break; // notes follow
    const where = `${fileName} line ${record.line}`;
    const written = column(record, 'market');
    if (written === '') return fail('BAD_VOLUME_TIERS', `${where}: the Market cell is empty`, record.line);
    const matched = matchMarket(written);
    if ('problem' in matched) {
      const note = noteHint(written, column(record, 'currency'));
      return fail('UNKNOWN_MARKET', `${where}: ${matched.problem}${note}`, record.line);
    }
    const market = matched.market;
    const shape = rowShapeProblem(
      header,
      record,
      'write every cell, leaving To empty only for the open last band (and quote cells that contain commas)',
    );
    if (shape !== undefined) return fail('BAD_VOLUME_TIERS', `${where} (${market}): ${shape}`, record.line);

    const token = column(record, 'currency');
    const code = currencyOfToken(token);
    if (!code) {
      return fail('UNKNOWN_CURRENCY', `${where} (${market}): "${token}" is not a currency`, record.line);
    }
    if (currency && currency.code !== code) {
      return fail(
        'MIXED_CURRENCY',
        `${where} (${market}): currency ${code} differs from ${currency.code} on line ${currency.line}`,
        record.line,
      );
    }
    currency ??= { code, line: record.line, token };

    const categoryCell = column(record, 'category');
    const category = categoryOfColumn(categoryCell);
    if (!category || !TIERED.includes(category)) {
      return fail(
        'BAD_VOLUME_TIERS',
        `${where} (${market}): category "${categoryCell}" has no volume tiers; ` +
          `use Utility, Authentication or Authentication-International (marketing is never tiered)`,
        record.line,
      );
    }
    const fromCell = column(record, 'from');
    const toCell = column(record, 'to');
    if (!COUNT.test(fromCell) || Number(fromCell.replace(/,/g, '')) < 1) {
      return fail(
        'BAD_VOLUME_TIERS',
        `${where} (${market}, ${categoryCell}): From "${fromCell}" is not a count ≥ 1`,
        record.line,
      );
    }
    if (toCell !== '' && !COUNT.test(toCell)) {
      return fail(
        'BAD_VOLUME_TIERS',
        `${where} (${market}, ${categoryCell}): To "${toCell}" is not a count (leave it empty for an open end)`,
        record.line,
      );
    }
    const fromCount = Number(fromCell.replace(/,/g, ''));
    const toCount = toCell === '' ? null : Number(toCell.replace(/,/g, ''));
    if (!Number.isSafeInteger(fromCount) || (toCount !== null && !Number.isSafeInteger(toCount))) {
      return fail('BAD_VOLUME_TIERS', `${where} (${market}, ${categoryCell}): count too large`, record.line);
    }
    if (toCount !== null && toCount < fromCount) {
      return fail(
        'BAD_VOLUME_TIERS',
        `${where} (${market}, ${categoryCell}): band ${fromCount}:${toCount} ends before it starts`,
        record.line,
      );
    }
    const rateCell = column(record, 'rate');
    const rate = parseRateCell(rateCell, '');
    if ('problem' in rate || rate.micros === null) {
      return fail(
        'BAD_RATE',
        `${where}: market "${market}", category "${categoryCell}", band ${fromCount}:${toCount ?? ''}: ` +
          `"${rateCell}" ${'problem' in rate ? rate.problem : 'is not a rate; write a decimal like 0.0014'}`,
        record.line,
      );
    }
    // The Discount column is ignored, so it can hide the decimals of a Rate split at an unquoted decimal
    // comma ("0,0014" → Rate "0", Discount "0014"); no discount is written with a leading 0.
    const discountIndex = columns.get('discount');
    const discount = discountIndex === undefined ? '' : (record.cells[discountIndex] ?? '').trim();
    if (/^0\d/.test(discount)) {
      return fail(
        'BAD_RATE',
        `${where}: market "${market}", category "${categoryCell}", band ${fromCount}:${toCount ?? ''}: ` +
          `Discount "${discount}" looks like the decimals of a rate written with a decimal comma ` +
          `("${rateCell},${discount}" read as ${rateCell}); write the rate with a point (${rateCell}.${discount})`,
        record.line,
      );
    }
    const key = tierKey(market, category);
    const list = bands.get(key) ?? [];
    list.push({ fromCount, toCount, rateMicros: rate.micros, line: record.line });
    bands.set(key, list);
  }
  if (!currency)
    return fail('BAD_VOLUME_TIERS', `${fileName} has a header but no band rows below it`, header.line);

  const tiers = new Map<string, readonly TierBand[]>();
  const lines = new Map<string, number>();
  for (const [key, list] of bands) {
    const label = key.replace('|', ', ');
    const sorted = [...list].sort((a, b) => a.fromCount - b.fromCount);
    const first = sorted[0] as Band;
    if (first.fromCount !== 1) {
      return fail(
        'BAD_VOLUME_TIERS',
        `${fileName} line ${first.line} (${label}): the first band starts at ${first.fromCount}; it must start at 1`,
        first.line,
      );
    }
    for (let i = 1; i < sorted.length; i++) {
      const previous = sorted[i - 1] as Band;
      const band = sorted[i] as Band;
      if (previous.toCount === null) {
        return fail(
          'BAD_VOLUME_TIERS',
          `${fileName} line ${band.line} (${label}): band ${band.fromCount}:${band.toCount ?? ''} comes after the ` +
            `open band ${previous.fromCount}: on line ${previous.line}; only the last band may have an empty To`,
          band.line,
        );
      }
      if (band.fromCount !== previous.toCount + 1) {
        const kind = band.fromCount <= previous.toCount ? 'overlaps' : 'leaves a gap after';
        return fail(
          'BAD_VOLUME_TIERS',
          `${fileName} line ${band.line} (${label}): band ${band.fromCount}:${band.toCount ?? ''} ${kind} band ` +
            `${previous.fromCount}:${previous.toCount} on line ${previous.line}; it must start at ${previous.toCount + 1}`,
          band.line,
        );
      }
      // Meta's tiers lower the rate as the month's count grows: a higher one is a mistyped rate (0.0016 for
      // 0.0006), which would overcharge every message past the band's start.
      if (band.rateMicros > previous.rateMicros) {
        return fail(
          'BAD_VOLUME_TIERS',
          `${fileName} line ${band.line} (${label}): band ${band.fromCount}:${band.toCount ?? ''} has rate ` +
            `${formatMicros(band.rateMicros)}, higher than ${formatMicros(previous.rateMicros)} of band ` +
            `${previous.fromCount}:${previous.toCount} on line ${previous.line}; Meta's volume tiers only lower the ` +
            `rate as the month's count grows: check the rate`,
          band.line,
        );
      }
    }
    const last = sorted[sorted.length - 1] as Band;
    if (last.toCount !== null) {
      return fail(
        'BAD_VOLUME_TIERS',
        `${fileName} line ${last.line} (${label}): the last band ends at ${last.toCount}; leave its To empty so ` +
          `every monthly count has a rate`,
        last.line,
      );
    }
    tiers.set(
      key,
      sorted.map(({ fromCount, toCount, rateMicros }) => ({ fromCount, toCount, rateMicros })),
    );
    lines.set(key, first.line);
  }

  const effectiveDate = effectiveDateOf(titleRecords, fileName, {
    date: '2025-10-01',
    fileName: 'usd-2025-10-01-tiers.csv',
  });
  if (!effectiveDate.ok) {
    const { code, message, line } = effectiveDate.error;
    return fail(code, message, line);
  }
  return ok({
    id: rateCardId(fileName),
    fileName,
    currency: currency.code,
    effectiveDate: effectiveDate.value,
    title,
    tiers,
    lines,
  });
}

/**
 * Attaches a tier file to the card with the same currency and effective date, returning the cards with that
 * one replaced. Each first band must equal the card's list rate for its market and category.
 */
export function attachVolumeTiers(
  cards: readonly RateCard[],
  tierFile: VolumeTierFile,
): Result<RateCard[], RateCardError> {
  const fail = (code: RateCardErrorCode, message: string, line?: number) =>
    err<RateCardError>(
      line === undefined
        ? { code, message, file: tierFile.fileName }
        : { code, message, file: tierFile.fileName, line },
    );
  const index = cards.findIndex(
    (c) => c.currency === tierFile.currency && c.effectiveDate === tierFile.effectiveDate,
  );
  const card = cards[index];
  if (!card) {
    const known = cards.map((c) => `${c.id} (${c.currency}, ${c.effectiveDate})`).join(', ') || 'none';
    return fail(
      'TIERS_WITHOUT_CARD',
      `volume tiers ${tierFile.id} (${tierFile.currency}, effective ${tierFile.effectiveDate}) have no rate card with ` +
        `the same currency and effective date; cards given: ${known}. Add that card, or fix the tier file's date`,
    );
  }
  const tiers = new Map(card.tiers);
  for (const [key, bands] of tierFile.tiers) {
    const [market = '', category = ''] = key.split('|');
    const line = tierFile.lines.get(key);
    if (tiers.has(key)) {
      return fail(
        'BAD_VOLUME_TIERS',
        `volume tiers ${tierFile.id}: ${market}, ${category} already has tiers on card ${card.id} (two tier files?)`,
        line,
      );
    }
    const listRate = card.rates.get(market)?.[category as RateCategory];
    const firstRate = (bands[0] as TierBand).rateMicros;
    if (listRate === undefined) {
      return fail(
        'TIER_RATE_MISMATCH',
        `volume tiers ${tierFile.id}: ${market}, ${category} has bands but card ${card.id} has no ${category} rate ` +
          `for ${market}; check the market name and the card`,
        line,
      );
    }
    if (listRate !== firstRate) {
      return fail(
        'TIER_RATE_MISMATCH',
        `volume tiers ${tierFile.id}: ${market}, ${category} first band rate ${formatMicros(firstRate)} differs from ` +
          `the list rate ${formatMicros(listRate)} on card ${card.id}; the first band is the list rate`,
        line,
      );
    }
    tiers.set(key, bands);
  }
  const next = [...cards];
  next[index] = { ...card, tiers };
  return ok(next);
}

/**
 * The graduated rate for the `monthlyCount`-th charged message (1-based) of a portfolio × market × category in
 * a month; `undefined` when the card has no tiers there (the list rate applies).
 */
export function tierRate(
  card: RateCard,
  market: string,
  category: RateCategory,
  monthlyCount: number,
): { band: string; rateMicros: number } | undefined {
  if (!Number.isSafeInteger(monthlyCount) || monthlyCount < 1) {
    throw new Error(`tierRate: monthly count must be a positive integer, got ${monthlyCount}`);
  }
  const bands = card.tiers.get(tierKey(market, category));
  if (!bands) return undefined;
  for (const band of bands) {
    if (monthlyCount >= band.fromCount && (band.toCount === null || monthlyCount <= band.toCount)) {
      return { band: `${band.fromCount}:${band.toCount ?? ''}`, rateMicros: band.rateMicros };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// The book

/** All cards, indexed per currency by effective date. Two cards of one currency and date is an error. */
export function createRateBook(cards: readonly RateCard[]): Result<RateBook, RateCardError> {
  const byCurrency = new Map<string, RateCard[]>();
  for (const card of cards) {
    const list = byCurrency.get(card.currency) ?? [];
    const twin = list.find((c) => c.effectiveDate === card.effectiveDate);
    if (twin) {
      return err({
        code: 'DUPLICATE_RATE_CARD',
        message:
          `rate cards ${twin.id} and ${card.id} are both ${card.currency} cards effective ${card.effectiveDate}; ` +
          `keep one of them`,
        file: card.id,
      });
    }
    list.push(card);
    byCurrency.set(card.currency, list);
  }
  for (const list of byCurrency.values()) list.sort((a, b) => (a.effectiveDate < b.effectiveDate ? -1 : 1));
  const allCards = [...cards];
  return ok({
    cards: allCards,
    cardInForce(currency: string, localDate: string): RateCard | undefined {
      const list = byCurrency.get(currency) ?? byCurrency.get(currency.toUpperCase());
      if (!list) return undefined;
      // Binary search: the last card whose effective date is on or before the local date.
      let low = 0;
      let high = list.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if ((list[middle] as RateCard).effectiveDate <= localDate) low = middle + 1;
        else high = middle;
      }
      return low === 0 ? undefined : list[low - 1];
    },
  });
}
