// Which pricing market a recipient's number is billed in (pricing-rules.md §7): place the number in a country
// with libphonenumber's full metadata, then look the country up in the versioned market table. Pure: no I/O.

import parsePhoneNumber from 'libphonenumber-js/max';
import metadata from 'libphonenumber-js/max/metadata';
import { fastPlacement } from './fast-placement.js';
import { isDecimalNumber } from './phone.js';
import type { MarketResolution, MarketResolver } from './pricing-context.js';
import { isLocalDate, readCsvRecords } from './rate-card.js';
import { err, ok, type Result } from './result.js';
import type { Finding } from './units.js';

export type MarketTableError = { code: 'BAD_MARKET_TABLE'; message: string };

/** The market for countries the table does not list (Meta: "Countries not listed are Other"). */
export const OTHER_MARKET = 'Other';

/** Rows with this source are third-party reports (the 2026-10 market splits); they can be switched off. */
export const REPORTED_SOURCE = 'reported';

export interface MarketRow {
  /** ISO 3166 alpha-2. */
  country: string;
  /** Country calling code, digits only ("1", "44", "263"). */
  callingCode: string;
  /** Area codes that identify the country inside a shared calling code (NANP: "809", "829", "849"). */
  areaCodes: readonly string[];
  market: string;
  /** First local day the row applies (inclusive), or `null` for "always". */
  validFrom: string | null;
  /** First local day the row no longer applies (exclusive), or `null` for "still". */
  validTo: string | null;
  /** "meta" (Meta's published list) or "reported" (third-party reports, switchable). */
  source: string;
  /** 1-based line in the CSV. */
  line: number;
}

export interface MarketTable {
  readonly rows: readonly MarketRow[];
  /** The market of a country on a local date ("YYYY-MM-DD"): the row valid that day, else `Other`. */
  marketOf(country: string, localDate: string): string;
  /**
   * The country a shared calling code assigns to a number by its area code (the table's `area_codes`,
   * e.g. +1 809 → DO), or `undefined` when the table lists none for it.
   */
  countryOfAreaCode(callingCode: string, nationalNumber: string): string | undefined;
  /**
   * The table with `reported` rows switched off: a `meta` row that a reported row would have ended (its
   * `valid_to` equals the reported row's `valid_from`, same country) stays valid instead.
   */
  withoutReportedRows(): MarketTable;
}

const COLUMNS = [
  'country',
  'calling_code',
  'area_codes',
  'market',
  'valid_from',
  'valid_to',
  'source',
] as const;
type Column = (typeof COLUMNS)[number];

/**
 * Reads `country,calling_code,area_codes,market,valid_from,valid_to,source` (any column order). Area codes are
 * `;`-separated; `valid_from` is inclusive and `valid_to` exclusive, both local dates or empty. Two rows of one
 * country whose periods overlap are refused.
 */
export function parseMarketTable(csvText: string): Result<MarketTable, MarketTableError> {
  const fail = (message: string) => err<MarketTableError>({ code: 'BAD_MARKET_TABLE', message });
  const csv = readCsvRecords(csvText);
  if (!csv.ok) return fail(`market table line ${csv.error.line}: ${csv.error.message}`);
  const records = csv.value.filter((r) => r.cells.some((c) => c.trim() !== ''));
  const header = records[0];
  if (!header) return fail(`market table is empty; expected the header ${COLUMNS.join(',')}`);

  const index = new Map<Column, number>();
  for (const [position, cell] of header.cells.entries()) {
    const name = cell.trim().toLowerCase() as Column;
    if (!COLUMNS.includes(name)) {
      return fail(
        `market table line ${header.line}: unknown column "${cell.trim()}"; expected ${COLUMNS.join(',')}`,
      );
    }
    if (index.has(name)) return fail(`market table line ${header.line}: column "${name}" appears twice`);
    index.set(name, position);
  }
  const missing = COLUMNS.filter((c) => !index.has(c));
  if (missing.length > 0) {
    return fail(
      `market table line ${header.line}: header lacks ${missing.join(', ')}; expected ${COLUMNS.join(',')}`,
    );
  }

  const rows: MarketRow[] = [];
  for (const record of records.slice(1)) {
    const where = `market table line ${record.line}`;
    if (record.cells.length !== header.cells.length) {
      return fail(`${where}: ${record.cells.length} cells, the header has ${header.cells.length}`);
    }
    const cell = (column: Column) => (record.cells[index.get(column) as number] as string).trim();
    const country = cell('country');
    const callingCode = cell('calling_code');
    const areaCodesCell = cell('area_codes');
    const market = cell('market');
    const validFrom = cell('valid_from');
    const validTo = cell('valid_to');
    const source = cell('source');
    if (!/^[A-Z]{2}$/.test(country))
      return fail(`${where}: country "${country}" is not an ISO 3166 alpha-2 code (e.g. IN)`);
    if (!/^\d{1,3}$/.test(callingCode)) {
      return fail(`${where}: calling_code "${callingCode}" must be 1 to 3 digits (e.g. 91)`);
    }
    const areaCodes = areaCodesCell === '' ? [] : areaCodesCell.split(';').map((a) => a.trim());
    const badAreaCode = areaCodes.find((a) => !/^\d{1,4}$/.test(a));
    if (badAreaCode !== undefined) {
      return fail(`${where}: area code "${badAreaCode}" must be 1 to 4 digits; separate several with ";"`);
    }
    if (market === '') return fail(`${where}: market is empty`);
    for (const [name, date] of [
      ['valid_from', validFrom],
      ['valid_to', validTo],
    ] as const) {
      if (date !== '' && !isLocalDate(date))
        return fail(`${where}: ${name} "${date}" is not a date YYYY-MM-DD`);
    }
    if (validFrom !== '' && validTo !== '' && validFrom >= validTo) {
      return fail(
        `${where}: valid_from ${validFrom} is not before valid_to ${validTo} (valid_to is exclusive)`,
      );
    }
    if (!/^[a-z][a-z0-9_-]*$/.test(source)) {
      return fail(`${where}: source "${source}" must be a lower-case word such as meta or reported`);
    }
    rows.push({
      country,
      callingCode,
      areaCodes,
      market,
      validFrom: validFrom === '' ? null : validFrom,
      validTo: validTo === '' ? null : validTo,
      source,
      line: record.line,
    });
  }
  return buildTable(rows);
}

function overlaps(a: MarketRow, b: MarketRow): boolean {
  const aStartsBeforeBEnds = a.validFrom === null || b.validTo === null || a.validFrom < b.validTo;
  const bStartsBeforeAEnds = b.validFrom === null || a.validTo === null || b.validFrom < a.validTo;
  return aStartsBeforeBEnds && bStartsBeforeAEnds;
}

function buildTable(rows: readonly MarketRow[]): Result<MarketTable, MarketTableError> {
  const byCountry = new Map<string, MarketRow[]>();
  const byAreaCode = new Map<string, MarketRow>();
  for (const row of rows) {
    const list = byCountry.get(row.country) ?? [];
    const clash = list.find((other) => overlaps(other, row));
    if (clash) {
      return err({
        code: 'BAD_MARKET_TABLE',
        message:
          `market table line ${row.line}: ${row.country} (${row.market}) overlaps line ${clash.line} ` +
          `(${clash.market}); give one of them a valid_to equal to the other's valid_from`,
      });
    }
    list.push(row);
    byCountry.set(row.country, list);
    for (const areaCode of row.areaCodes) {
      const key = `${row.callingCode}|${areaCode}`;
      const other = byAreaCode.get(key);
      if (other && other.country !== row.country) {
        return err({
          code: 'BAD_MARKET_TABLE',
          message:
            `market table line ${row.line}: area code +${row.callingCode} ${areaCode} is given to ${row.country} ` +
            `and, on line ${other.line}, to ${other.country}`,
        });
      }
      byAreaCode.set(key, row);
    }
  }

  const table: MarketTable = {
    rows,
    marketOf(country: string, localDate: string): string {
      const list = byCountry.get(country) ?? byCountry.get(country.toUpperCase());
      if (!list) return OTHER_MARKET;
      for (const row of list) {
        if (
          (row.validFrom === null || row.validFrom <= localDate) &&
          (row.validTo === null || localDate < row.validTo)
        ) {
          return row.market;
        }
      }
      return OTHER_MARKET;
    },
    countryOfAreaCode(callingCode: string, nationalNumber: string): string | undefined {
      for (let length = 1; length <= 4 && length <= nationalNumber.length; length++) {
        const row = byAreaCode.get(`${callingCode}|${nationalNumber.slice(0, length)}`);
        if (row) return row.country;
      }
      return undefined;
    },
    withoutReportedRows(): MarketTable {
      const reported = rows.filter((r) => r.source === REPORTED_SOURCE);
      const kept = rows
        .filter((r) => r.source !== REPORTED_SOURCE)
        .map((row) =>
          reported.some(
            (r) => r.country === row.country && r.validFrom !== null && r.validFrom === row.validTo,
          )
            ? { ...row, validTo: null }
            : row,
        );
      const result = buildTable(kept);
      // Extending a row to the end of time cannot create an overlap the full table did not already refuse,
      // unless two meta rows follow the same reported row: that is a broken table, not an expected outcome.
      if (!result.ok)
        throw new Error(`market table without reported rows is inconsistent: ${result.error.message}`);
      return result.value;
    },
  };
  return ok(table);
}

// ---------------------------------------------------------------------------------------------------------
// Placing a number

export interface RecipientPlacement {
  /** ISO 3166 alpha-2, or `null` when not even the calling code names a country. */
  country: string | null;
  /** The country calling code found at the start of the number, or `null`. */
  callingCode: string | null;
  /** The country is a fallback (from the calling code or area code), not libphonenumber's placement. */
  isFromCallingCode: boolean;
}

// libphonenumber lists the countries sharing a calling code with the main one first ("1" → US, "7" → RU).
const countriesByCallingCode: Record<string, readonly string[] | undefined> = metadata.country_calling_codes;

function callingCodeAtStart(digits: string): string | null {
  for (let length = 1; length <= 3 && length <= digits.length; length++) {
    const prefix = digits.slice(0, length);
    if (countriesByCallingCode[prefix]) return prefix;
  }
  return null;
}

/**
 * The country of a WhatsApp id (E.164 digits, no '+'). libphonenumber's placement when it holds the number as
 * valid; otherwise a fallback flagged `isFromCallingCode`: for shared calling codes the table's area codes
 * (when a table is given), then the country libphonenumber would guess from the number's leading digits, then
 * the calling code's main country. `country: null` when no calling code is recognised. Most numbers are placed
 * from libphonenumber's metadata compiled once (fast-placement.ts); the rest by its `parsePhoneNumber`.
 */
export function placeRecipient(waId: string, table?: MarketTable): RecipientPlacement {
  // wa_ids are digits without '+'; a '+' written in front (E.164 as people type it) is accepted.
  const digits = /^\+?\d+$/.test(waId) ? waId.replace('+', '') : '';
  return fastPlacement(digits, table) ?? placeWithLibrary(digits, table);
}

/** `placeRecipient` by libphonenumber's `parsePhoneNumber` and `isValid()`: the cases `fastPlacement` leaves. */
function placeWithLibrary(digits: string, table?: MarketTable): RecipientPlacement {
  const phone = digits === '' ? undefined : parsePhoneNumber(`+${digits}`);
  if (phone?.country && phone.isValid()) {
    return { country: phone.country, callingCode: phone.countryCallingCode, isFromCallingCode: false };
  }
  const callingCode = phone?.countryCallingCode ?? callingCodeAtStart(digits);
  if (callingCode === null) return { country: null, callingCode: null, isFromCallingCode: false };
  const nationalNumber = digits.slice(callingCode.length);
  const country =
    table?.countryOfAreaCode(callingCode, nationalNumber) ??
    phone?.country ??
    countriesByCallingCode[callingCode]?.[0] ??
    null; // a non-geographic code (+800, +882…) has no country
  return { country, callingCode, isFromCallingCode: true };
}

// ---------------------------------------------------------------------------------------------------------
// The resolver

type Placed = { country: string | null; finding?: Finding };

const CACHE_LIMIT = 1_000_000;

/**
 * A MarketResolver over a table. A number is placed once (cached); the market is looked up per call because
 * the table is versioned by date.
 */
export function createMarketResolver(
  table: MarketTable,
  options: { isReportedRulesEnabled: boolean },
): MarketResolver {
  const activeTable = options.isReportedRulesEnabled ? table : table.withoutReportedRows();
  const cache = new Map<string, Placed>();

  function place(waId: string): Placed {
    let placed = cache.get(waId);
    if (placed) return placed;
    // Placing a number is about countries, not markets: the full table's area codes apply either way.
    placed = placeOnce(waId, table);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(waId, placed);
    return placed;
  }

  const resolver: MarketResolver = {
    names: [...new Set([...table.rows.map((row) => row.market), 'Other'])].sort(),
    withoutReported: () =>
      options.isReportedRulesEnabled
        ? createMarketResolver(table, { isReportedRulesEnabled: false })
        : resolver,
    resolve(waId: string, localDate: string, countryHint?: string): MarketResolution {
      if (!isDigits(waId)) return resolveByHint(waId, localDate, countryHint, activeTable);
      return resolutionOf(place(waId), localDate);
    },
    placerOf(waId: string): (localDate: string) => MarketResolution {
      if (!isDigits(waId)) return (localDate) => resolveByHint(waId, localDate, undefined, activeTable);
      const placed = place(waId);
      return (localDate) => resolutionOf(placed, localDate);
    },
  };

  function resolutionOf(placed: Placed, localDate: string): MarketResolution {
    if (placed.country === null) return { country: null, market: null, finding: placed.finding };
    const market = activeTable.marketOf(placed.country, localDate);
    return placed.finding
      ? { country: placed.country, market, finding: placed.finding }
      : { country: placed.country, market };
  }
  return resolver;
}

function placeOnce(waId: string, table: MarketTable): Placed {
  const placement = placeRecipient(waId, table);
  if (placement.country === null) {
    const why =
      placement.callingCode === null
        ? 'does not start with a known country calling code'
        : `has the non-geographic calling code +${placement.callingCode}`;
    return {
      country: null,
      finding: Object.freeze({
        code: 'UNKNOWN_RECIPIENT',
        message:
          `Recipient ${waId} ${why}, so its market is unknown and its messages cannot be priced; ` +
          `check that user ids are E.164 digits (country code first, no "+")`,
        number: waId,
      }),
    };
  }
  if (!placement.isFromCallingCode) return { country: placement.country };
  return {
    country: placement.country,
    // Cached and shared by every unit of this number: frozen so no caller can change another's finding.
    finding: Object.freeze({
      code: 'MARKET_FROM_CALLING_CODE',
      message:
        `Recipient ${waId} is not a number libphonenumber can place (a range newer than its metadata, or an ` +
        `invalid number); priced as ${placement.country} from its calling code +${placement.callingCode}. ` +
        `Check the number, or update libphonenumber-js`,
      number: waId,
      country: placement.country,
      calling_code: placement.callingCode,
    }),
  };
}

function resolveByHint(
  waId: string,
  localDate: string,
  countryHint: string | undefined,
  table: MarketTable,
): MarketResolution {
  const hint = countryHint?.trim().toUpperCase() ?? '';
  // Meta's contacts[].profile.country_code is an alpha-2 code; a calling code ("91", "+91") is accepted too.
  const country = /^[A-Z]{2}$/.test(hint)
    ? hint
    : /^\+?\d{1,3}$/.test(hint)
      ? (countriesByCallingCode[hint.replace('+', '')]?.[0] ?? null)
      : null;
  const shown = waId === '' ? '(empty wa_id)' : waId;
  if (country === null && isDecimalNumber(waId)) {
    // A send log's user column of numbers (a spreadsheet's, a script's float): not someone's id, a number.
    return {
      country: null,
      market: null,
      finding: {
        code: 'UNKNOWN_RECIPIENT',
        message: `Recipient ${shown} is a phone number written as a decimal number (a spreadsheet's or script's float), so its market is unknown and its messages cannot be priced: write user ids as text, without decimals (${waId.trim().replace(/\.0+$/, '')})`,
        number: waId,
      },
    };
  }
  if (country === null) {
    return {
      country: null,
      market: null,
      finding: {
        code: 'UNKNOWN_RECIPIENT',
        message:
          `Recipient ${shown} is not a phone number (a business-scoped user id?) and ` +
          (hint === ''
            ? 'no country hint came with it'
            : `its country hint "${countryHint}" is not a country`) +
          `, so its market is unknown; send the user's phone number or contacts[].profile.country_code`,
        number: waId,
      },
    };
  }
  return {
    country,
    market: table.marketOf(country, localDate),
    finding: {
      code: 'MARKET_INFERRED',
      message: `Recipient ${shown} is not a phone number; market inferred from the country hint ${country}`,
      number: waId,
      country,
    },
  };
}

/** `+`? then digits only: a phone number, not a business-scoped user id (checked per unit: no regex). */
function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = text.charCodeAt(0) === 43 ? 1 : 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return text.length > (text.charCodeAt(0) === 43 ? 1 : 0);
}
