// The estimator (contract §6): what a send to each recipient of a list would cost at a given moment, priced
// against the real state the events left (open windows, free entry points, conversations, allowances, tiers).
// Never fatal for a bad recipient: it is listed in `invalid` and the others are quoted.

import { defaultAccount, type CoreEvent, type TemplateCategory } from '../core/events.js';
import { DAY_MS, localDate } from '../core/calendar.js';
import { canonicalUser, normalisePhone } from '../core/phone.js';
import { formatMicros, parseMicros, sumMicros, type Micros } from '../core/money.js';
import { Rater, type Quote, type QuoteRequest, type RatingOptions } from '../core/rate-events.js';
import { err, ok, type Result } from '../core/result.js';
import { FindingCollector } from '../core/price-unit.js';
import type { RatingSetup } from './load-rating-setup.js';

export type EstimateErrorCode =
  /** The CSV has no header row with a `phone` column. */
  | 'NO_PHONE_COLUMN'
  /** The CSV's header names more than MAX_CSV_COLUMNS columns. */
  | 'TOO_MANY_COLUMNS'
  /** A quoted field of the CSV is never closed: every line after its quote would be one field. */
  | 'UNCLOSED_QUOTE'
  /** The list holds more recipients than the caller takes at once (`RecipientLimits.maxRecipients`). */
  | 'TOO_MANY_RECIPIENTS'
  /** The columns echoed on every line would make too large an answer (`RecipientLimits.maxEchoChars`). */
  | 'ECHO_TOO_LARGE'
  /** The events hold several WABAs (or none): the estimate needs `--waba`. */
  | 'WABA_REQUIRED'
  /** The WABA has several business numbers (or none in the events): the estimate needs `--business`. */
  | 'BUSINESS_REQUIRED'
  /**
   * The business number is not one of the WABA's: the events show it sending for another WABA (`owners`), or
   * (when unknown numbers are refused) not at all. Quoting it would price the WABA's sends against another
   * WABA's customers.
   */
  | 'BUSINESS_NOT_OF_WABA';

export interface EstimateError {
  code: EstimateErrorCode;
  message: string;
  /**
   * BUSINESS_NOT_OF_WABA: the WABAs the events show the number under (empty when none). BUSINESS_REQUIRED for a
   * WABA with no number in the events: the WABAs its message names (absent when it names none).
   */
  owners?: string[];
  /** BUSINESS_NOT_OF_WABA: the WABA's own numbers, as the events show them (empty when none). */
  numbers?: string[];
}

/** The fields wameter computes on every estimate line (contract §6), in the order the CSV output gives them. */
export const LINE_FIELDS = ['phone', 'country', 'market', 'price', 'currency', 'free', 'reason'] as const;

export interface EstimateLine {
  phone: string;
  country: string | null;
  market: string | null;
  /** What the send would cost, as an exact decimal string; `null` when no price is known. */
  price: string | null;
  currency: string;
  free: boolean;
  reason: string;
  /** The CSV's other columns, echoed (one named like a field above as `input_<name>`: RecipientList.renamed). */
  [column: string]: string | number | boolean | null;
}

export interface InvalidRecipient {
  line: number;
  phone: string;
  error: string;
}

export interface EstimateTotals {
  count: number;
  free: number;
  charged: number;
  /** Charged sends with no known price (they add nothing to the amounts). */
  unpriced: number;
  by_currency: Record<string, EstimateCurrencyTotals>;
}

/** One currency's sends in an estimate's totals. */
export interface EstimateCurrencyTotals {
  count: number;
  free: number;
  charged: number;
  /** Of the charged sends, those with no known price (`price: null`): they add nothing to `amount`. */
  unpriced: number;
  /**
   * The sum of the known prices, exact: a floor when `unpriced` > 0; `null` when there are charged sends and
   * not one of them has a known price (no amount is known, and `"0"` would read as free).
   */
  amount: string | null;
}

export interface EstimateJson {
  lines: EstimateLine[];
  invalid: InvalidRecipient[];
  totals: EstimateTotals;
  /** What makes the quote doubtful (e.g. an old rate card); present only when there is something to say. */
  warnings?: string[];
}

/** Meta has changed its rates every three to six months: a card older than this is likely out of date. */
export const STALE_CARD_DAYS = 183;

export interface EstimateRequest {
  template: TemplateCategory;
  /** When the sends would happen; the state quoted against is what the events up to this instant left. */
  atMs: number;
  waba?: string;
  business?: string;
  /**
   * May `business` be a number the events never mention (a new number of the WABA)? Default true (the CLI);
   * the service refuses it, so that only numbers the store shows for the WABA are quoted.
   */
  isUnknownBusinessAccepted?: boolean;
  /** How the caller names the sender's two inputs in messages: `--waba` / `--business` by default (CLI). */
  senderNames?: SenderNames;
  /**
   * Quote every send at the volume-tier band of the portfolio's next charge, never moving through the bands
   * (Rater.quote): for a caller that may not read the portfolio's count. Default false (the CLI).
   */
  isTierCountHeld?: boolean;
}

export interface SenderNames {
  waba: string;
  business: string;
}

const CLI_SENDER_NAMES: SenderNames = { waba: '--waba', business: '--business' };

export interface EstimateOutcome {
  estimate: EstimateJson;
  waba: string;
  business: string;
}

// ---------------------------------------------------------------------------------------------------------
// Recipients

export interface Recipient {
  line: number;
  phone: string;
  /** The number as written in the CSV (shown when it cannot be quoted). */
  written: string;
  columns: Record<string, string>;
}

export interface RecipientList {
  recipients: Recipient[];
  invalid: InvalidRecipient[];
  /** The CSV's columns echoed under another name, since a line's own field has theirs (echoNames). */
  renamed?: ColumnRename[];
  /** Columns (1-based) that hold values but no name in the header, or lie past its end: not echoed. */
  unnamed?: number[];
}

export interface ColumnRename {
  /** The column's name in the CSV's header. */
  column: string;
  /** The name its values are echoed under on each line. */
  echoedAs: string;
}

/**
 * The named columns a recipients CSV may have, `phone` among them (the command line and the service alike):
 * far more than a list needs, few enough that a header cannot make every recipient a huge object.
 */
export const MAX_CSV_COLUMNS = 200;

/** What one list may ask of its reader beyond MAX_CSV_COLUMNS (the service sets them; the CLI does not). */
export interface RecipientLimits {
  /** Recipients (rows, valid or not) one list may hold. */
  maxRecipients?: number;
  /**
   * Characters the echoed columns may add to the answer: each kept field counts its column's name, its value
   * and 6 for the JSON around them (`"name":"value",`), on every line it is echoed on.
   */
  maxEchoChars?: number;
}

/**
 * Recipients one service request (POST /v1/estimate) quotes: a campaign list of tens of thousands goes in one
 * request, and no request holds the server's thread for many seconds (250,000 phones took 12.6 s and answered
 * 65 MB). Longer lists are split, or quoted by `wameter estimate`, which has no such limit.
 */
export const MAX_ESTIMATE_RECIPIENTS = 50_000;

/**
 * Characters a service request's echoed columns may add to its answer (`RecipientLimits.maxEchoChars`): 50,000
 * recipients with 20 columns of 25 characters fit; a wide header repeated over thousands of rows (hundreds of
 * MB of answer from a body of a few hundred KB) does not.
 */
export const MAX_ESTIMATE_ECHO_CHARS = 32 * 1024 * 1024;

/** The words a list over `maxRecipients` is refused with. */
export function tooManyRecipients(maxRecipients: number): EstimateError {
  return {
    code: 'TOO_MANY_RECIPIENTS',
    message: `the list has more than ${maxRecipients} recipients, the most one request takes: split it into lists of at most ${maxRecipients} and estimate each`,
  };
}

/**
 * A recipient's number as written: `normalisePhone`, after one leading `'` — a spreadsheet's mark for "text"
 * (`'+919876543210`, kept by some exports), which wameter's own CSVs also write before a cell starting with `+`
 * so that no spreadsheet runs it as a formula.
 */
function recipientPhone(written: string) {
  const trimmed = written.trim();
  return normalisePhone(trimmed.startsWith("'") ? trimmed.slice(1) : written);
}

/**
 * A list of phone numbers (the service's `phones`) → recipients; an entry's line is its position from 1, and
 * a blank or malformed entry is listed under `invalid`, never dropped.
 */
export function recipientsFromPhones(phones: readonly string[]): RecipientList {
  const recipients: Recipient[] = [];
  const invalid: InvalidRecipient[] = [];
  phones.forEach((written, index) => {
    const phone = recipientPhone(written);
    if (phone.ok)
      recipients.push({ line: index + 1, phone: canonicalUser(phone.value), written, columns: {} });
    else invalid.push({ line: index + 1, phone: written, error: phone.error });
  });
  return { recipients, invalid };
}

/**
 * Reads a recipients CSV (RFC 4180: quoted fields, "" escapes; a BOM and blank lines are ignored). A
 * recipient keeps the fields its row has, under their columns' names: a row shorter than the header has no
 * value for the columns it leaves out (a header of thousands of columns over rows of a phone alone took 4.3 GB
 * when every row was given every column).
 */
export function parseRecipientsCsv(
  text: string,
  limits: RecipientLimits = {},
): Result<RecipientList, EstimateError> {
  const { rows, unclosedQuoteLine } = parseCsv(text.replace(/^\uFEFF/, ''));
  if (unclosedQuoteLine !== undefined) {
    // Read on, the rest of the list would be one field of that row: its recipients quoted nothing, silently.
    return err({
      code: 'UNCLOSED_QUOTE',
      message: `the recipients CSV opens a quoted field on line ${unclosedQuoteLine} that is never closed, so every line after it would be part of that field: close the quote (a quote inside a quoted field is written twice, "")`,
    });
  }
  const header = rows.find((row) => row.fields.some((f) => f.trim() !== ''));
  const names = header?.fields.map((f) => f.trim()) ?? [];
  const phoneIndex = names.findIndex((name) => name.toLowerCase() === 'phone');
  if (!header) {
    // An empty list (a failed export, an unset variable's file) is said so, not taken for a wrong header.
    return err({
      code: 'NO_PHONE_COLUMN',
      message:
        'the recipients CSV is empty: check that it is the file you meant (it needs a header row with a "phone" column, then a recipient a line)',
    });
  }
  if (phoneIndex < 0) {
    return err({
      code: 'NO_PHONE_COLUMN',
      message: `the recipients CSV needs a header row with a "phone" column${names.length > 0 ? ` (found: ${listed(names)})` : ''}${otherSeparatorHint(names)}`,
    });
  }
  const named = names.filter((name) => name !== '').length;
  if (named > MAX_CSV_COLUMNS) {
    return err({
      code: 'TOO_MANY_COLUMNS',
      message: `the recipients CSV's header names ${named} columns; at most ${MAX_CSV_COLUMNS} are read ("phone" and the columns to echo on each line): remove the columns the estimate does not need`,
    });
  }
  const { echoed, renamed } = echoNames(names, phoneIndex);
  const { maxRecipients = Infinity, maxEchoChars = Infinity } = limits;
  const recipients: Recipient[] = [];
  const invalid: InvalidRecipient[] = [];
  let echoChars = 0;
  /** Columns (1-based) that some line gives a value but the header no name (or that lie past its end). */
  const unnamed = new Set<number>();
  for (const row of rows) {
    if (row === header || row.fields.every((f) => f.trim() === '')) continue;
    row.fields.forEach((value, index) => {
      if ((names[index] ?? '') === '' && value.trim() !== '') unnamed.add(index + 1);
    });
    if (recipients.length + invalid.length >= maxRecipients) return err(tooManyRecipients(maxRecipients));
    const raw = row.fields[phoneIndex] ?? '';
    const phone = recipientPhone(raw);
    if (!phone.ok) {
      invalid.push({ line: row.line, phone: raw, error: phone.error });
      continue;
    }
    // No prototype: a column named "__proto__" is kept as any other.
    const columns = Object.create(null) as Record<string, string>;
    const kept = Math.min(names.length, row.fields.length);
    for (let index = 0; index < kept; index++) {
      if (index === phoneIndex || names[index] === '') continue;
      const name = echoed[index]!;
      const value = row.fields[index]!;
      columns[name] = value;
      echoChars += name.length + value.length + 6;
    }
    if (echoChars > maxEchoChars) {
      return err({
        code: 'ECHO_TOO_LARGE',
        message: `the CSV's other columns, echoed on every line, would make an answer of more than ${maxEchoChars} characters (by line ${row.line}): send fewer columns (only "phone" is needed) or split the list`,
      });
    }
    // One form of a number written two ways (canonicalUser): the one the events' users are known by.
    recipients.push({ line: row.line, phone: canonicalUser(phone.value), written: raw, columns });
  }
  return ok({ recipients, invalid, renamed, unnamed: [...unnamed].sort((a, b) => a - b) });
}

/**
 * The name each column of the header is echoed under. A line's own fields keep their contract names (§6), so
 * a column named like one of them (`price`, `country`, a second `phone`…), or like an earlier column (`note`
 * twice), is echoed as `input_<name>` — with a further `input_` while that name is the header's too —
 * rather than overwritten or dropped.
 */
function echoNames(
  names: readonly string[],
  phoneIndex: number,
): { echoed: string[]; renamed: ColumnRename[] } {
  const isLineField = (name: string) => (LINE_FIELDS as readonly string[]).includes(name);
  const taken = new Set(names.filter((name, index) => index !== phoneIndex && name !== ''));
  const renamed: ColumnRename[] = [];
  const seen = new Set<string>();
  const echoed = names.map((name, index) => {
    if (index === phoneIndex || name === '') return name;
    if (!isLineField(name) && !seen.has(name)) {
      seen.add(name);
      return name;
    }
    let echoedAs = `input_${name}`;
    while (taken.has(echoedAs)) echoedAs = `input_${echoedAs}`;
    taken.add(echoedAs);
    renamed.push({ column: name, echoedAs });
    return echoedAs;
  });
  return { echoed, renamed };
}

function parseCsv(text: string): { rows: { line: number; fields: string[] }[]; unclosedQuoteLine?: number } {
  const rows: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let isQuoted = false;
  let quoteLine = 0;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (isQuoted) {
      if (char === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 1;
        } else isQuoted = false;
      } else {
        if (char === '\n') line += 1;
        field += char;
      }
    } else if (char === '"' && field === '') {
      isQuoted = true;
      quoteLine = line;
    } else if (char === ',') {
      fields.push(field);
      field = '';
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && text[i + 1] === '\n') i += 1;
      fields.push(field);
      rows.push({ line: rowLine, fields });
      fields = [];
      field = '';
      line += 1;
      rowLine = line;
    } else {
      field += char;
    }
  }
  if (isQuoted) return { rows, unclosedQuoteLine: quoteLine };
  if (field !== '' || fields.length > 0) {
    fields.push(field);
    rows.push({ line: rowLine, fields });
  }
  return { rows };
}

// ---------------------------------------------------------------------------------------------------------
// Estimating

/** Which WABAs and business numbers the events mention: the defaults of `--waba` and `--business`. */
export class SendersSeen {
  private readonly businessesByWaba = new Map<string, Set<string>>();

  add(event: CoreEvent): void {
    if (event.kind === 'inbound' || event.kind === 'outbound') this.note(event.waba, event.business);
    else if (event.kind === 'status' && event.waba && event.business) this.note(event.waba, event.business);
  }

  private note(waba: string, business: string): void {
    let set = this.businessesByWaba.get(waba);
    if (!set) {
      set = new Set();
      this.businessesByWaba.set(waba, set);
    }
    set.add(business);
  }

  /** The WABA and business number to quote for: the given ones, else the only ones in the events. */
  choose(
    waba?: string,
    business?: string,
    options: { isUnknownBusinessAccepted?: boolean; names?: SenderNames } = {},
  ): Result<{ waba: string; business: string }, EstimateError> {
    const names = options.names ?? CLI_SENDER_NAMES;
    const owners = business === undefined ? [] : this.ownersOf(business);
    let chosenWaba = waba;
    if (chosenWaba === undefined && owners.length === 1) chosenWaba = owners[0];
    if (chosenWaba === undefined) {
      const wabas = [...this.businessesByWaba.keys()].sort();
      if (wabas.length !== 1) {
        return err({
          code: 'WABA_REQUIRED',
          message:
            wabas.length === 0
              ? `the events name no WABA: pass ${names.waba} (and ${names.business}) for the sending account`
              : `the events hold ${wabas.length} WABAs (${listed(wabas)}): pass ${names.waba}`,
        });
      }
      chosenWaba = wabas[0]!;
    }
    const numbers = [...(this.businessesByWaba.get(chosenWaba) ?? [])].sort();
    if (business !== undefined) {
      if (numbers.includes(business)) return ok({ waba: chosenWaba, business });
      // A number the events show for another WABA would be quoted against that WABA's users' windows.
      if (owners.length > 0 || options.isUnknownBusinessAccepted === false) {
        return err({
          code: 'BUSINESS_NOT_OF_WABA',
          message:
            `business number ${business} is not one of WABA ${chosenWaba}'s` +
            (owners.length > 0
              ? ` (the events show it for WABA ${listed(owners)})`
              : ' (the events never show it sending)') +
            (numbers.length > 0
              ? `: pass one of its numbers with ${names.business} (${listed(numbers)})`
              : `: the events name no number of WABA ${chosenWaba}`),
          owners,
          numbers,
        });
      }
      return ok({ waba: chosenWaba, business });
    }
    if (numbers.length !== 1) {
      // The WABAs a message for a WABA with no number names (the number's, or every one of the events'): a
      // caller that may not read them says it in other words (the service).
      const named =
        numbers.length > 0
          ? []
          : this.ownersOf(chosenWaba).length > 0
            ? this.ownersOf(chosenWaba)
            : [...this.businessesByWaba.keys()].sort();
      return err({
        code: 'BUSINESS_REQUIRED',
        ...(named.length > 0 ? { owners: named } : {}),
        message:
          numbers.length === 0
            ? this.ownersOf(chosenWaba).length > 0
              ? `${chosenWaba} is a business number (of WABA ${listed(this.ownersOf(chosenWaba))}), not a WABA: pass the WABA with ${names.waba} and the number with ${names.business}`
              : this.businessesByWaba.size > 0
                ? `WABA ${chosenWaba} sends in none of the events (they show WABA ${listed([...this.businessesByWaba.keys()].sort())}): check ${names.waba}, or, for a WABA that has never sent, pass ${names.business} (the phone_number_id that would send)`
                : `the events name no business number of WABA ${chosenWaba}: pass ${names.business} (the phone_number_id that sends)`
            : `WABA ${chosenWaba} has ${numbers.length} business numbers (${listed(numbers)}): pass ${names.business}`,
      });
    }
    return ok({ waba: chosenWaba, business: numbers[0]! });
  }

  /**
   * Why a sender given by hand may be mistyped: a WABA the traffic never shows sending while it shows others,
   * or a number it never shows WABA `waba` send from. Undefined when the traffic shows the sender, or no
   * sender at all (a quote with no traffic says so itself). Told, not refused: a new WABA or number is a
   * sender with no history, quoted rightly so — but a typo quoted as one says nothing of the windows,
   * allowance and tier counts it missed.
   */
  unknownSenderWarning(
    waba: string,
    business: string,
    names: SenderNames = CLI_SENDER_NAMES,
  ): string | undefined {
    const wabas = [...this.businessesByWaba.keys()].sort();
    if (wabas.length === 0) return undefined;
    if (!this.businessesByWaba.has(waba)) {
      return `WABA ${waba} sends in none of the traffic given (it shows WABA ${listed(wabas)}): quoted as a sender with no history of its own (no open customer service window or free entry point); if it has sent before, check ${names.waba}`;
    }
    const numbers = [...this.businessesByWaba.get(waba)!].sort();
    if (numbers.includes(business)) return undefined;
    return `business number ${business} sends in none of WABA ${waba}'s traffic (its numbers: ${listed(numbers)}): quoted with no open customer service window or free entry point, which are per business number; if it has sent before, check ${names.business}`;
  }

  /** The WABAs the events show sending from this business number, sorted. */
  private ownersOf(business: string): string[] {
    return [...this.businessesByWaba]
      .filter(([, numbers]) => numbers.has(business))
      .map(([waba]) => waba)
      .sort();
  }
}

/**
 * A header read as one column that holds "phone" between semicolons or tabs: a spreadsheet of a locale that
 * writes decimal commas (Brazil, most of Europe) saves "CSV" with `;`, and a copy from one is tab-separated.
 */
function otherSeparatorHint(names: readonly string[]): string {
  if (names.length !== 1) return '';
  for (const [separator, said] of [
    [';', '";"'],
    ['\t', 'a tab'],
  ] as const) {
    const parts = names[0]!.split(separator).map((part) => part.trim().replace(/^"(.*)"$/, '$1'));
    if (parts.length > 1 && parts.some((part) => part.toLowerCase() === 'phone')) {
      return `; its columns are separated by ${said}, not by commas: save the file as comma-separated CSV`;
    }
  }
  return '';
}

function listed(values: readonly string[]): string {
  return `${values.slice(0, 5).join(', ')}${values.length > 5 ? ', …' : ''}`;
}

/**
 * Rates the events (for the state they leave), then quotes a send to each recipient in list order.
 *
 * The state is the one at the send time: an event after it (a user writing 20 minutes later, a delivery not
 * yet known) has not happened then and is ignored — else a past `at` would be quoted against the future.
 * Give the send time to the constructor to rate as the events come; without it the events are kept until
 * `finish` says when the sends happen.
 */
export class EstimateSession {
  private readonly rater: Rater;
  private readonly senders = new SendersSeen();
  /** Events kept for `finish` when the send time was not known up front. */
  private readonly held: CoreEvent[] | undefined;

  constructor(
    private readonly setup: RatingSetup,
    private readonly asOfMs?: number,
  ) {
    const accounts = new Map(setup.accounts.map((a) => [a.waba, a]));
    const options: RatingOptions = {
      accountFor: (waba) => accounts.get(waba) ?? defaultAccount(waba),
      listedWabas: new Set(accounts.keys()),
      rateBook: setup.rateBook,
      markets: setup.markets,
      isReportedRulesEnabled: setup.isReportedRulesEnabled,
    };
    this.rater = new Rater(options, { unit: () => {}, pending: () => {} });
    this.held = asOfMs === undefined ? [] : undefined;
  }

  add(event: CoreEvent): void {
    // Every number the events show (whenever) says which WABA it belongs to.
    this.senders.add(event);
    if (this.held) this.held.push(event);
    else this.rateUpTo(event, this.asOfMs!);
  }

  /** Rates what of the event had happened at `asOfMs`: nothing after it, and no delivery known only later. */
  private rateUpTo(event: CoreEvent, asOfMs: number): void {
    if (event.atMs > asOfMs) return;
    if (event.kind === 'outbound' && event.deliveredAtMs !== undefined && event.deliveredAtMs > asOfMs) {
      const { deliveredAtMs: _later, ...sentOnly } = event;
      this.rater.add(sentOnly);
      return;
    }
    this.rater.add(event);
  }

  finish(list: RecipientList, request: EstimateRequest): Result<EstimateOutcome, EstimateError> {
    if (this.asOfMs !== undefined && this.asOfMs !== request.atMs) {
      throw new Error(
        `EstimateSession rated the state at ${this.asOfMs} but was asked to quote at ${request.atMs}`,
      );
    }
    const sender = this.senders.choose(request.waba, request.business, {
      ...(request.isUnknownBusinessAccepted !== undefined
        ? { isUnknownBusinessAccepted: request.isUnknownBusinessAccepted }
        : {}),
      ...(request.senderNames ? { names: request.senderNames } : {}),
    });
    if (!sender.ok) return sender;
    const { waba, business } = sender.value;
    for (const event of this.held ?? []) this.rateUpTo(event, request.atMs);
    this.rater.finish();
    const account = this.setup.accounts.find((a) => a.waba === waba) ?? defaultAccount(waba);
    const date = localDate(request.atMs, account.timeZone);
    const invalid = [...list.invalid];
    const quoted: Recipient[] = [];
    const sends: QuoteRequest[] = [];
    for (const recipient of list.recipients) {
      const place = this.setup.markets.resolve(recipient.phone, date);
      if (place.country === null) {
        invalid.push({
          line: recipient.line,
          phone: recipient.written,
          error: `no country uses the calling code at the start of ${recipient.phone}: write the number with its country code`,
        });
        continue;
      }
      if (place.finding?.code === 'MARKET_FROM_CALLING_CODE') {
        // A rating prices such a number by its calling code with a finding; a plan had better fix it first:
        // it is most often a national number written without its country code (9876543210 read as +98, Iran).
        invalid.push({
          line: recipient.line,
          phone: recipient.written,
          error: `${recipient.phone} is not a valid number of any country (by its first digits it would be priced as ${place.country}): if it lacks its country code, write it with one (e.g. +91 98765 43210); if it has one, check the number — no number of ${place.country} is written so (unassigned, or a digit too many or too few)`,
        });
        continue;
      }
      quoted.push(recipient);
      sends.push({
        id: sendIdOf(recipient.line),
        label: 'to this recipient',
        waba,
        business,
        user: recipient.phone,
        template: request.template,
        atMs: request.atMs,
      });
    }
    const findings = new FindingCollector();
    const quotes = this.rater.quote(sends, findings, {
      isTierCountHeld: request.isTierCountHeld === true,
    });
    const lines = quoted.map((recipient, index) => toLine(recipient, quotes[index]!));
    invalid.sort((a, b) => a.line - b.line);
    const estimate: EstimateJson = { lines, invalid, totals: totalsOf(lines) };
    const card = this.setup.rateBook.cardInForce(account.currency, date);
    const ageDays = card ? (Date.parse(date) - Date.parse(card.effectiveDate)) / DAY_MS : 0;
    const warnings: string[] = [];
    const unknownSender = this.senders.unknownSenderWarning(waba, business, request.senderNames);
    if (unknownSender !== undefined) warnings.push(unknownSender);
    if (list.renamed !== undefined && list.renamed.length > 0) {
      const said = list.renamed.map(({ column, echoedAs }) => `${column} as ${echoedAs}`).join(', ');
      warnings.push(
        `columns of the recipients CSV named like a field of the estimate or an earlier column are echoed renamed, never overwritten: ${said}`,
      );
    }
    if (list.unnamed !== undefined && list.unnamed.length > 0) {
      const columns = list.unnamed.map((column) => `column ${column}`).join(', ');
      warnings.push(
        `the recipients CSV's header names no column for values of some lines (${columns}): they are not echoed; name those columns in the header to keep them`,
      );
    }
    if (card && ageDays > STALE_CARD_DAYS) {
      warnings.push(
        `the ${account.currency} rate card in force on the send date ${date} (${card.id}, effective ${card.effectiveDate}) took effect ${Math.floor(ageDays)} days before it: Meta changes its rates every few months, so import its card in force on ${date} (--rate-cards; for the service, WAMETER_RATE_CARDS or "rateCards") before trusting these prices`,
      );
    }
    // What pricing the quotes found (no rate for a market, reported rules applied…): a quote's reason
    // points here when its price is missing. A finding that names a quoted send names it by its recipient.
    for (const finding of findings.list())
      warnings.push(namingRecipients(`${finding.code}: ${finding.message}`));
    if (warnings.length > 0) estimate.warnings = warnings;
    return ok({ estimate, waba, business });
  }
}

/**
 * The id a quoted send goes by inside the rater: its recipient's line, zero-padded so that ids sort in line
 * order (a finding names the first of its sends by id: `line-10` sorted before `line-2`). Never shown: the
 * warnings say "the recipient on line N" (namingRecipients), and so do the reasons (reasonInWords).
 */
function sendIdOf(line: number): string {
  return `${SEND_ID_PREFIX}${String(line).padStart(15, '0')}`;
}

const SEND_ID_PREFIX = 'estimate-line-';
/** A send's id in a finding's words — as a unit (`unit u_<id>`, `u_<id>`) or a message (`<id>`). */
const SEND_ID_IN_WORDS = new RegExp(`(?:unit )?(?:u_)?${SEND_ID_PREFIX}0*(\\d+)`, 'g');

/** A warning with each quoted send named by its recipient's line, in words. */
function namingRecipients(warning: string): string {
  return warning.replace(SEND_ID_IN_WORDS, (_, line: string) => `the recipient on line ${line}`);
}

/** A unit an earlier send of this campaign opened, as a reason names it (`u_<id>`). */
const CAMPAIGN_UNIT_IN_WORDS = new RegExp(`u_${SEND_ID_PREFIX}0*(\\d+)`, 'g');

/**
 * A quote's reason with each unit an earlier send of the campaign opened named by that send's line (a number
 * listed twice rides the conversation its first send opens), never by the rater's id of the send.
 */
function reasonInWords(reason: string): string {
  return reason.replace(
    CAMPAIGN_UNIT_IN_WORDS,
    (_, line: string) => `opened by this campaign's send to the recipient on line ${line}`,
  );
}

/** A quote as a line: its own fields, then the recipient's columns (none named like a field: echoNames). */
function toLine(recipient: Recipient, quote: Quote): EstimateLine {
  const clash = LINE_FIELDS.find((field) => Object.hasOwn(recipient.columns, field));
  if (clash !== undefined) {
    throw new Error(
      `recipient on line ${recipient.line} has a column "${clash}" that would overwrite its field`,
    );
  }
  return {
    phone: recipient.phone,
    country: quote.country,
    market: quote.market,
    price: quote.amountMicros === null ? null : formatMicros(quote.amountMicros),
    currency: quote.currency,
    free: quote.isFree,
    reason: reasonInWords(quote.reason),
    ...recipient.columns,
  };
}

/** Totals are computed from the lines themselves, so they always equal the sum of the lines. */
export function totalsOf(lines: readonly EstimateLine[]): EstimateTotals {
  const totals: EstimateTotals = { count: 0, free: 0, charged: 0, unpriced: 0, by_currency: {} };
  // Exact at any size (a bigint past 2^53 micros: a large campaign in rupiah), as `rate`'s totals are.
  const amounts = new Map<string, Micros>();
  for (const line of lines) {
    totals.count += 1;
    const currency = (totals.by_currency[line.currency] ??= {
      count: 0,
      free: 0,
      charged: 0,
      unpriced: 0,
      amount: '0',
    });
    currency.count += 1;
    if (line.free) {
      totals.free += 1;
      currency.free += 1;
      continue;
    }
    totals.charged += 1;
    currency.charged += 1;
    if (line.price === null) {
      totals.unpriced += 1;
      currency.unpriced += 1;
      continue;
    }
    const micros = parseMicros(line.price);
    if (!micros.ok) throw new Error(`estimate line with a malformed price: ${line.price}`);
    amounts.set(line.currency, sumMicros(amounts.get(line.currency) ?? 0, micros.value));
  }
  for (const [currency, micros] of amounts) totals.by_currency[currency]!.amount = formatMicros(micros);
  // Charged sends none of which has a price: the amount is unknown, not an exact 0.
  for (const entry of Object.values(totals.by_currency)) {
    if (entry.charged > 0 && entry.unpriced === entry.charged) entry.amount = null;
  }
  return totals;
}

/** One estimate from a recipients CSV and a stream of events (files or a store). */
export async function estimateRecipients(
  csvText: string,
  feed: (add: (event: CoreEvent) => void) => Promise<void>,
  setup: RatingSetup,
  request: EstimateRequest,
): Promise<Result<EstimateOutcome, EstimateError>> {
  const list = parseRecipientsCsv(csvText);
  if (!list.ok) return list;
  return estimateList(list.value, feed, setup, request);
}

/** One estimate from recipients already read (a CSV or a list of phones) and a stream of events. */
export async function estimateList(
  list: RecipientList,
  feed: (add: (event: CoreEvent) => void) => Promise<void>,
  setup: RatingSetup,
  request: EstimateRequest,
): Promise<Result<EstimateOutcome, EstimateError>> {
  const session = new EstimateSession(setup, request.atMs);
  await feed((event) => session.add(event));
  return session.finish(list, request);
}
