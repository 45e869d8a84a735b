// Reading rate cards, volume-tier files and the market table from disk (the I/O side of core/rate-card.ts and
// core/market.ts), including the copies bundled with the package. Parsing and validation stay in core.

import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OTHER_MARKET, parseMarketTable, type MarketTable } from '../core/market.js';
import type { RateCard } from '../core/pricing-context.js';
import { err, ok, type Result } from '../core/result.js';
import {
  attachVolumeTiers,
  createRateBook,
  parseRateCardCsv,
  parseVolumeTierCsv,
  type KnownMarkets,
  type RateCardError,
  type VolumeTierFile,
} from '../core/rate-card.js';
import { decodeUtf8File, notUtf8Words, type InvalidUtf8Place } from './utf8.js';

export interface RateCardFileError {
  code: RateCardError['code'] | 'UNREADABLE_SOURCE';
  message: string;
  file: string;
  line?: number;
}

export interface MarketTableFileError {
  code: 'BAD_MARKET_TABLE' | 'UNREADABLE_SOURCE';
  message: string;
  file: string;
}

let cachedRoot: string | undefined;

/**
 * The folder holding wameter's package.json, found by walking up from this module, so it is the same from
 * `src/ingest` (tests, tsx) and from `dist/src/ingest` (the built package). Throws if there is none: the
 * package is broken.
 */
export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let folder = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(folder, 'package.json'))) {
      cachedRoot = folder;
      return folder;
    }
    const parent = dirname(folder);
    if (parent === folder) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    folder = parent;
  }
}

/** A tier file is one whose name contains "tiers" (e.g. usd-2025-10-01-tiers.csv); see docs/rate-cards.md. */
export function isVolumeTierFile(path: string): boolean {
  return basename(path).toLowerCase().includes('tiers');
}

/** What to give instead of a rate card path that cannot be read. */
const RATE_CARDS_WANTED =
  "give a rate card CSV in Meta's layout (Market,Currency,Marketing,Utility,…) or a folder of them, " +
  'or leave out --rate-cards (for the service, WAMETER_RATE_CARDS or the config file\'s "rateCards") to price with the bundled cards';

/** An unreadable path as an error that says why and what to do (`nextStep`) when the path itself is wrong. */
function unreadable(
  file: string,
  error: unknown,
  what: string,
  nextStep: string,
): { ok: false; error: RateCardFileError } {
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' || code === 'ENOTDIR'
      ? `no such file or directory; check the path: ${nextStep}`
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied; make it readable by the user running wameter'
        : code === 'EISDIR'
          ? `is a directory; ${nextStep}`
          : (error as Error).message;
  return err({ code: 'UNREADABLE_SOURCE', message: `cannot read ${what} ${file}: ${why}`, file });
}

/**
 * A file that is not UTF-8, refused naming its first bad byte: read with U+FFFD there, a Windows-1252 "€"
 * was refused as an unknown currency "\ufffd", and two market names differing only there would be one.
 */
function notUtf8(
  file: string,
  bytes: Uint8Array,
  place: InvalidUtf8Place,
  what: string,
): { ok: false; error: RateCardFileError } {
  return err({
    code: 'UNREADABLE_SOURCE',
    message: `cannot read ${what} ${file}: it ${notUtf8Words(bytes, place)}`,
    file,
    line: place.line,
  });
}

/** The CSV files a path stands for: the file itself, or every `*.csv` in a directory (sorted by name). */
async function csvFilesOf(path: string): Promise<Result<string[], RateCardFileError>> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (error) {
    return unreadable(path, error, 'rate cards', RATE_CARDS_WANTED);
  }
  if (!isDirectory) return ok([path]);
  let names: string[];
  try {
    names = await readdir(path);
  } catch (error) {
    return unreadable(path, error, 'rate card directory', RATE_CARDS_WANTED);
  }
  const files = names.filter((name) => name.toLowerCase().endsWith('.csv')).sort();
  if (files.length === 0) {
    return err({
      code: 'UNREADABLE_SOURCE',
      message: `rate card directory ${path} holds no .csv file; ${RATE_CARDS_WANTED}`,
      file: path,
    });
  }
  return ok(files.map((name) => join(path, name)));
}

/** The market table the cards will be priced with, and how messages name it. */
export interface MarketTableSource {
  table: MarketTable;
  /** e.g. "wameter's market table (data/markets.csv)". */
  name: string;
  /**
   * Whether the table's `reported` rows apply when pricing (`--no-reported` switches them off). Cards are
   * checked under the same rules, so give the rater's setting; absent, the rater's default (on) is assumed.
   */
  isReportedRulesEnabled?: boolean;
}

/**
 * The markets a card may name: every market of the table, and `Other` (countries the table does not list);
 * each must also hold a country on the card's effective date under the table's rules (MARKET_NOT_IN_FORCE).
 */
export function knownMarketsOf(source: MarketTableSource): KnownMarkets {
  const names = new Set(source.table.rows.map((row) => row.market));
  names.add(OTHER_MARKET);
  return {
    names: [...names],
    source: source.name,
    inForce: {
      table: source.table,
      isReportedRulesEnabled: source.isReportedRulesEnabled ?? true,
      otherMarket: OTHER_MARKET,
    },
  };
}

/**
 * Reads rate cards from files and directories (a directory: every `*.csv` in it). Files whose name contains
 * "tiers" are volume-tier files, attached to the card of the same currency and effective date. The cards are
 * checked together (no two of one currency and date). With `markets`, every market a card or tier file names
 * must be one of the table's (UNKNOWN_MARKET otherwise), and every market of a card must hold a country on
 * the card's effective date under `markets.isReportedRulesEnabled` (MARKET_NOT_IN_FORCE). Errors name the file.
 */
export async function loadRateCards(
  paths: readonly string[],
  markets?: MarketTableSource,
): Promise<Result<RateCard[], RateCardFileError>> {
  const files: string[] = [];
  for (const path of paths) {
    const found = await csvFilesOf(path);
    if (!found.ok) return found;
    for (const file of found.value) if (!files.includes(file)) files.push(file);
  }
  if (files.length === 0) {
    return err({ code: 'UNREADABLE_SOURCE', message: 'no rate card files were given', file: '' });
  }

  const texts: RateCardText[] = [];
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (error) {
      return unreadable(file, error, 'rate card', RATE_CARDS_WANTED);
    }
    const text = decodeUtf8File(bytes);
    if (!text.ok) return notUtf8(file, bytes, text.error, 'rate card');
    texts.push({ file, text: text.value });
  }
  return parseRateCardTexts(texts, markets);
}

/** A rate card or volume-tier file's text, and the file it is named by (in errors, and as `isVolumeTierFile`). */
export interface RateCardText {
  file: string;
  text: string;
}

/**
 * Rate cards from their texts, as `loadRateCards` makes them from files (`POST /v1/rerate` gets them in its
 * body): a text whose name contains "tiers" is a volume-tier file; the cards are checked together and against
 * `markets`. Errors name the file.
 */
export function parseRateCardTexts(
  texts: readonly RateCardText[],
  markets?: MarketTableSource,
): Result<RateCard[], RateCardFileError> {
  const options = markets ? { knownMarkets: knownMarketsOf(markets) } : {};
  let cards: RateCard[] = [];
  const tierFiles: VolumeTierFile[] = [];
  for (const { file, text } of texts) {
    if (isVolumeTierFile(file)) {
      const parsed = parseVolumeTierCsv(text, file, options);
      if (!parsed.ok) return parsed;
      tierFiles.push(parsed.value);
    } else {
      const parsed = parseRateCardCsv(text, file, options);
      if (!parsed.ok) return parsed;
      cards.push(parsed.value);
    }
  }

  const book = createRateBook(cards);
  if (!book.ok) {
    const file =
      texts.find(({ file: f }) => basename(f).replace(/\.csv$/i, '') === book.error.file)?.file ??
      book.error.file;
    return err({ ...book.error, file });
  }
  for (const tierFile of tierFiles) {
    const attached = attachVolumeTiers(cards, tierFile);
    if (!attached.ok) return attached;
    cards = attached.value;
  }
  return ok(cards);
}

/** The community rate cards shipped in `<package root>/data/rate-cards` (see docs/rate-cards.md). */
export function loadBundledRateCards(
  markets?: MarketTableSource,
): Promise<Result<RateCard[], RateCardFileError>> {
  return loadRateCards([join(packageRoot(), 'data', 'rate-cards')], markets);
}

/** Reads and parses a market table CSV (data/markets.csv layout); errors name the file. */
export async function loadMarketTableFile(path: string): Promise<Result<MarketTable, MarketTableFileError>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const failure = unreadable(
      path,
      error,
      'market table',
      'give a CSV with the columns of data/markets.csv',
    );
    return err({ code: 'UNREADABLE_SOURCE', message: failure.error.message, file: path });
  }
  const text = decodeUtf8File(bytes);
  if (!text.ok) {
    const failure = notUtf8(path, bytes, text.error, 'market table');
    return err({ code: 'UNREADABLE_SOURCE', message: failure.error.message, file: path });
  }
  const parsed = parseMarketTable(text.value);
  if (!parsed.ok)
    return err({ code: 'BAD_MARKET_TABLE', message: `${path}: ${parsed.error.message}`, file: path });
  return parsed;
}

/** How messages name the bundled market table. */
export const BUNDLED_MARKET_TABLE_NAME = "wameter's market table (data/markets.csv)";

/** The market table shipped in `<package root>/data/markets.csv`. */
export function loadBundledMarketTable(): Promise<Result<MarketTable, MarketTableFileError>> {
  return loadMarketTableFile(join(packageRoot(), 'data', 'markets.csv'));
}
