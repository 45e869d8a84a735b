// Rate cards (Meta's per-market price lists) and their volume-tier files: parsing Meta's CSV layout, exactly,
// and choosing the card in force on a local date. Pure: text in, values out; never reads files or the clock.

import { formatMicros, parseMicros } from './money.js';
import type { RateBook, RateCard, TierBand } from './pricing-context.js';
import { err, ok, type Result } from './result.js';
import type { RateCategory } from './units.js';

export type RateCardErrorCode =
  | 'BAD_RATE_CARD'
  | 'BAD_RATE'
  | 'NO_EFFECTIVE_DATE'
  | 'BAD_EFFECTIVE_DATE'
  | 'UNKNOWN_MARKET'
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

// Meta writes "… effective June 1, 2023"; "effective as of Jul 1 2025" and "effective 2025-07-01" also occur.
// The first group is the date as written, for messages.
const EFFECTIVE_WORDS =
  /\beffective\s+(?:as\s+of\s+|from\s+|on\s+)?(([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}))\b/i;
const EFFECTIVE_ISO = /\beffective\s+(?:as\s+of\s+|from\s+|on\s+)?(\d{4}-\d{2}-\d{2})\b/i;
const DATE_IN_NAME = /(\d{4}-\d{2}-\d{2})/;

/**
 * The effective date a title states: a calendar date ("effective June 1, 2023" → "2023-06-01"), or the text
 * of a written date that is none ("Feb 30, 2024", "Jnue 1, 2024"), or `undefined` when the title states none.
 */
export type TitleEffectiveDate =
  { isCalendarDate: true; date: string; text: string } | { isCalendarDate: false; text: string };

export function effectiveDateInTitle(title: string): TitleEffectiveDate | undefined {
  const iso = EFFECTIVE_ISO.exec(title)?.[1];
  if (iso !== undefined) {
    return isLocalDate(iso)
      ? { isCalendarDate: true, date: iso, text: iso }
      : { isCalendarDate: false, text: iso };
  }
  const words = EFFECTIVE_WORDS.exec(title);
  if (!words) return undefined;
  const [, text = '', monthName = '', day = '', year = ''] = words;
  const name = monthName.toLowerCase();
  // A full name or an abbreviation of at least three letters ("Jun", "Sept").
  const monthIndex = name.length >= 3 ? MONTHS.findIndex((month) => month.startsWith(name)) : -1;
  const date = `${year}-${String(monthIndex + 1).padStart(2, '0')}-${day.padStart(2, '0')}`;
  return monthIndex >= 0 && isLocalDate(date)
    ? { isCalendarDate: true, date, text }
    : { isCalendarDate: false, text };
}

/** The effective date written in a title ("effective June 1, 2023" → "2023-06-01"), if any and real. */
export function effectiveDateFromTitle(title: string): string | undefined {
  const found = effectiveDateInTitle(title);
  return found?.isCalendarDate ? found.date : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Columns and currencies

const CATEGORY_COLUMNS: Record<string, RateCategory> = {
  marketing: 'marketing',
  utility: 'utility',
  authentication: 'authentication',
  authenticationinternational: 'authentication_international',
  service: 'service',
  businessinitiated: 'business_initiated',
  userinitiated: 'user_initiated',
};

const CATEGORY_NAMES =
  'Marketing, Utility, Authentication, Authentication-International, Service, Business-Initiated, User-Initiated';

/** "Authentication-International", "authentication international", "AUTHENTICATION_INTERNATIONAL" → one key. */
function columnKey(name: string): string {
  return name.toLowerCase().replace(/[\s_-]+/g, '');
}

function categoryOfColumn(name: string): RateCategory | undefined {
  return CATEGORY_COLUMNS[columnKey(name)];
}

// Symbols Meta prints in its Currency column; any ISO 4217 code is accepted as well.
const CURRENCY_TOKENS: Record<string, string> = {
  $US: 'USD',
  US$: 'USD',
  $AU: 'AUD',
  AU$: 'AUD',
  A$: 'AUD',
  '€': 'EUR',
  '£': 'GBP',
  '₹': 'INR',
  RP: 'IDR',
  RS: 'INR',
};

let isoCurrencies: Set<string> | undefined;

function isIsoCurrency(code: string): boolean {
  isoCurrencies ??= new Set(Intl.supportedValuesOf('currency'));
  return isoCurrencies.has(code);
}

/** "$US" → "USD", "€" → "EUR", "Rp" → "IDR", "eur" → "EUR"; `undefined` when the token is not a currency. */
export function currencyOfToken(token: string): string | undefined {
  const trimmed = token.trim().toUpperCase();
  const symbol = CURRENCY_TOKENS[trimmed];
  if (symbol) return symbol;
  return /^[A-Z]{3}$/.test(trimmed) && isIsoCurrency(trimmed) ? trimmed : undefined;
}

const NO_RATE = new Set(['', 'n/a', 'na', '-', '—']);
const GROUPED_DECIMAL = /^\d{1,3}(,\d{3})+(\.\d+)?$/;

/** A rate cell → micros, `null` for "no rate" (`n/a`, empty), or a reason it is not a rate. */
function parseRateCell(cell: string): { micros: number | null } | { problem: string } {
  const trimmed = cell.trim();
  if (NO_RATE.has(trimmed.toLowerCase())) return { micros: null };
  // A quoted "1,062.50" (IDR) is a grouped number, not two cells.
  const plain = GROUPED_DECIMAL.test(trimmed) ? trimmed.replace(/,/g, '') : trimmed;
  const parsed = parseMicros(plain);
  if (!parsed.ok) return { problem: parsed.error.message };
  if (parsed.value < 0) return { problem: 'a rate cannot be negative' };
  return { micros: parsed.value };
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
    if ('problem' in matched) return fail('UNKNOWN_MARKET', `${where}: ${matched.problem}`, record.line);
    const market = matched.market;
    const extra = record.cells.slice(header.cells.length).find((c) => c.trim() !== '');
    if (extra !== undefined) {
      return fail(
        'BAD_RATE_CARD',
        `${where} (${market}): more cells than the header has columns ("${extra.trim()}"); quote cells that contain commas`,
        record.line,
      );
    }
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
      const parsed = parseRateCell(cell);
      if ('problem' in parsed) {
        return fail(
          'BAD_RATE',
          `${where}: market "${market}", column "${column.name}": "${cell.trim()}" is not a rate (${parsed.problem}); ` +
            `write a decimal like 0.0014, or n/a`,
          record.line,
        );
      }
      if (parsed.micros !== null) marketRates[column.category] = parsed.micros;
    }
    rates.set(market, marketRates);
  }
  if (!currency)
    return fail('BAD_RATE_CARD', `${fileName} has a header but no market rows below it`, header.line);

  const effectiveDate = effectiveDateOf(titleRecords, fileName, {
    title: 'June 1, 2023',
    fileName: 'usd-2023-06-01.csv',
  });
  if (!effectiveDate.ok) {
    const { code, message, line } = effectiveDate.error;
    return fail(code, message, line);
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

/**
 * A file's effective date: from the first title line that states one, else from a `YYYY-MM-DD` in the file
 * name. A title date that is not a calendar date is refused even when the name has a date: the title is
 * what Meta wrote, and a typo there must not be replaced silently. `example` shows the title to write.
 */
function effectiveDateOf(
  titleRecords: readonly CsvRecord[],
  fileName: string,
  example: { title: string; fileName: string },
): Result<string, { code: RateCardErrorCode; message: string; line?: number }> {
  for (const record of titleRecords) {
    const found = effectiveDateInTitle(recordText(record));
    if (!found) continue;
    if (found.isCalendarDate) return ok(found.date);
    return err({
      code: 'BAD_EFFECTIVE_DATE',
      message:
        `${fileName} line ${record.line}: effective date ${found.text} is not a calendar date; ` +
        `correct it in the title line (e.g. "effective ${example.title}")`,
      line: record.line,
    });
  }
  const fromName = DATE_IN_NAME.exec(rateCardId(fileName))?.[1];
  if (fromName && isLocalDate(fromName)) return ok(fromName);
  return err({
    code: 'NO_EFFECTIVE_DATE',
    message:
      `${fileName}: no effective date; put "effective ${example.title}" in the title line above the header, ` +
      `or a YYYY-MM-DD date in the file name (e.g. ${example.fileName})`,
  });
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
}

export interface RateCardParseOptions {
  /** When given, every row's market must be one of these (case and spacing aside); it is stored as spelt there. */
  knownMarkets?: KnownMarkets;
}

/** "Rest of  africa" → "restofafrica": names that differ only in case or spacing are one market. */
function marketKey(name: string): string {
  return name.toLowerCase().replace(/\s+/g, '');
}

type MarketMatcher = (name: string) => { market: string } | { problem: string };

/** Matches a card's market name to the known markets; without any, every name stands as written. */
function marketMatcher(known: KnownMarkets | undefined): MarketMatcher {
  if (!known) return (name) => ({ market: name });
  const byKey = new Map<string, Set<string>>();
  for (const name of known.names) {
    const key = marketKey(name);
    byKey.set(key, (byKey.get(key) ?? new Set()).add(name));
  }
  return (name) => {
    const key = marketKey(name);
    const matches = [...(byKey.get(key) ?? [])];
    if (matches.length === 1) return { market: matches[0] as string };
    if (matches.length > 1) {
      return {
        problem: `market "${name}" could be ${orList(matches)} in ${known.source}; write it exactly as one of them`,
      };
    }
    const closest = closestMarkets(key, byKey);
    const hint = closest.length > 0 ? ` (did you mean ${orList(closest)}?)` : '';
    return {
      problem:
        `unknown market "${name}"${hint}: ${known.source} has no market of that name, so no recipient would ever ` +
        `be priced with this row. Correct the name; if Meta has added this market, the market table must list ` +
        `it before this card can be used`,
    };
  };
}

/** Up to three known names nearest to an unknown one: a typo away, or containing it ("Emirates"). */
function closestMarkets(key: string, byKey: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const limit = Math.max(1, Math.floor(key.length / 3));
  const scored: { name: string; distance: number }[] = [];
  for (const [knownKey, names] of byKey) {
    let distance = editDistance(key, knownKey);
    const isPart = key.length >= 4 && (knownKey.includes(key) || key.includes(knownKey));
    if (distance > limit && !isPart) continue;
    if (isPart) distance = Math.min(distance, limit);
    for (const name of names) scored.push({ name, distance });
  }
  scored.sort((a, b) => a.distance - b.distance || (a.name < b.name ? -1 : 1));
  return scored.slice(0, 3).map((s) => s.name);
}

/** Edits (insert, delete, substitute, swap two neighbours) from one text to another: "indai" → "india" is 1. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const previous = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        (previous[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row.push(best);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
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
    if ('problem' in matched) return fail('UNKNOWN_MARKET', `${where}: ${matched.problem}`, record.line);
    const market = matched.market;

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
    const rate = parseRateCell(rateCell);
    if ('problem' in rate || rate.micros === null) {
      return fail(
        'BAD_RATE',
        `${where}: market "${market}", category "${categoryCell}", band ${fromCount}:${toCount ?? ''}: ` +
          `"${rateCell}" is not a rate${'problem' in rate ? ` (${rate.problem})` : ''}; write a decimal like 0.0014`,
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
    title: 'October 1, 2025',
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
