// Reads the accounts file (contract.md §2: each WABA's time zone, currency, portfolio, primary country and
// authentication-international eligibility) and keeps the account book that account_update webhooks amend.
// A typo must never silently fall back to a default: unknown fields and bad values are errors.

import { jsonSyntaxError } from './json-syntax-error.js';
import { repeatedJsonKey, repeatedKeyPlace } from './repeated-json-key.js';
import { readFile } from 'node:fs/promises';
import { isSupportedCountry } from 'libphonenumber-js/max';
import {
  ABBREVIATION_NOTE,
  isTimeZoneAbbreviation,
  isValidTimeZone,
  parseInstant,
} from '../core/calendar.js';
import {
  defaultAccount,
  type Account,
  type AccountUpdateEvent,
  type AuthInternationalEligibility,
  withPrimaryCountryChange,
} from '../core/events.js';
import { INVISIBLE_CHARACTER } from '../core/phone.js';
import { err, ok, type Result } from '../core/result.js';
import { decodeUtf8File, notUtf8Words, withoutByteOrderMark } from './utf8.js';

export interface AccountsError {
  code: 'BAD_ACCOUNTS';
  message: string;
  file: string;
}

export interface AccountsFileError {
  code: 'BAD_ACCOUNTS' | 'UNREADABLE_SOURCE';
  message: string;
  file: string;
}

/** ISO 4217 currencies as this Node knows them: "XYZ" would only show up later, as cards that never match. */
const ISO_CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

const ACCOUNT_FIELDS = ['waba', 'timezone', 'currency', 'portfolio', 'primary_country', 'auth_international'];
const CURRENCY = /^[A-Z]{3}$/;
const COUNTRY = /^[A-Z]{2}$/;
const EXAMPLE = '{"accounts":[{"waba":"W1","timezone":"Asia/Kolkata","currency":"USD"}]}';

type Rec = Record<string, unknown>;

function isRecord(value: unknown): value is Rec {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses the accounts file; every problem found is listed in one message, each naming account and field. */
export function parseAccounts(text: string, fileName: string): Result<Account[], AccountsError> {
  const fail = (message: string) => err<AccountsError>({ code: 'BAD_ACCOUNTS', message, file: fileName });
  let document: unknown;
  const json = withoutByteOrderMark(text);
  if (json.trim() === '') {
    return fail(`${fileName} is empty: check that it is the file you meant; expected ${EXAMPLE}`);
  }
  try {
    document = JSON.parse(json);
  } catch (error) {
    // By line and column, as an editor shows them: JSON.parse says only an offset ("at position 196").
    const syntax = jsonSyntaxError(json);
    const why =
      syntax === undefined
        ? `: ${(error as Error).message}`
        : ` at line ${syntax.line}, column ${syntax.column}: ${syntax.problem}`;
    return fail(`${fileName} is not valid JSON${why}; expected ${EXAMPLE}`);
  }
  // JSON keeps a key's last copy: a second "timezone" would price the account in another zone without a word.
  const repeated = repeatedJsonKey(json);
  if (repeated !== undefined) {
    return fail(
      `${fileName}: key ${JSON.stringify(repeated.key)} is given twice ${repeatedKeyPlace(repeated)}; JSON would keep only the last copy: give each key once`,
    );
  }
  if (!isRecord(document) || !Array.isArray(document.accounts)) {
    return fail(`${fileName} must be an object with an "accounts" array, e.g. ${EXAMPLE}`);
  }
  const problems: string[] = [];
  // A top-level "default_timezone" or "currency" beside the list would be read as nothing at all: every
  // WABA it was meant for would be billed with the contract's defaults (UTC, USD) without a word.
  for (const key of Object.keys(document)) {
    if (key !== 'accounts') {
      problems.push(
        `unknown top-level key "${key}": the file holds only "accounts" (settings such as "timezone" go inside each account)`,
      );
    }
  }
  const accounts: Account[] = [];
  const seen = new Map<string, number>();
  // Each portfolio's first spelling, by the form that letter case and white space around it do not change.
  const portfolios = new Map<string, { portfolio: string; where: string }>();
  document.accounts.forEach((raw: unknown, index: number) => {
    const before = problems.length;
    const account = parseAccount(raw, `account ${index}`, problems);
    if (account === undefined || problems.length > before) return;
    const first = seen.get(account.waba);
    if (first !== undefined) {
      problems.push(
        `account ${index} repeats waba "${account.waba}" of account ${first}: merge them into one`,
      );
      return;
    }
    seen.set(account.waba, index);
    // Portfolios are matched exactly, and volume tiers count per portfolio × market × category × month: "Acme"
    // and "acme " would count one client's charges in two tiers, each billed from its first band.
    const where = `account ${index} (waba ${account.waba})`;
    const alike = account.portfolio.trim().toLowerCase();
    const earlier = portfolios.get(alike);
    if (earlier === undefined) portfolios.set(alike, { portfolio: account.portfolio, where });
    else if (earlier.portfolio !== account.portfolio) {
      problems.push(
        `${where} "portfolio" is ${JSON.stringify(account.portfolio)}, and ${earlier.where} writes ` +
          `${JSON.stringify(earlier.portfolio)}: they differ only in letter case or white space around them, so ` +
          'they are two portfolios, each with its own volume tiers (portfolio × market × category × month): ' +
          'write one portfolio one way, or give two portfolios names that differ by more',
      );
      return;
    }
    accounts.push(account);
  });
  if (problems.length > 0) return fail(`${fileName}: ${problems.join('; ')}`);
  return ok(accounts);
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * What an id holds that no WABA id does and that cannot be seen, in words: white space at its start or end, an
 * invisible character or a control character; undefined when it holds none.
 */
function hiddenInId(id: string): string | undefined {
  if (id.trim() !== id) return 'white space at its start or end';
  const invisible = INVISIBLE_CHARACTER.exec(id) ?? CONTROL.exec(id);
  if (invisible === null) return undefined;
  const code = invisible[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  return `U+${code}, a character that does not show`;
}

function parseAccount(raw: unknown, where: string, problems: string[]): Account | undefined {
  if (!isRecord(raw)) {
    problems.push(`${where} must be an object like {"waba":"W1"}`);
    return undefined;
  }
  for (const key of Object.keys(raw)) {
    if (!ACCOUNT_FIELDS.includes(key))
      problems.push(`${where} has unknown field "${key}" (allowed: ${ACCOUNT_FIELDS.join(', ')})`);
  }
  const waba = raw.waba;
  if (typeof waba === 'number') {
    // JSON numbers past 2^53 lose digits (many WABA ids have 16): the value read may not be the id written.
    const written = Number.isSafeInteger(waba)
      ? `("waba": "${waba}")`
      : '(copy the id again: as a number its last digits may have been lost)';
    problems.push(`${where} "waba" is the number ${waba}: write it as a string, in quotes ${written}`);
    return undefined;
  }
  if (typeof waba !== 'string' || waba === '') {
    problems.push(`${where} needs "waba" (the WhatsApp Business Account id, a string)`);
    return undefined;
  }
  const hidden = hiddenInId(waba);
  if (hidden !== undefined) {
    // Matched exactly, "W1 " is not the traffic's W1: that WABA would be billed in UTC and USD, and the
    // ACCOUNT_NOT_LISTED finding would name an id the file seems to list.
    problems.push(
      `${where} "waba" is ${JSON.stringify(waba)}, which holds ${hidden}: no WABA id has one, and the traffic's ` +
        `WABA would not be this account; write the id alone`,
    );
    return undefined;
  }
  const where2 = `${where} (waba ${waba})`;
  const account = defaultAccount(waba);

  if (raw.timezone !== undefined) {
    if (typeof raw.timezone !== 'string' || !isValidTimeZone(raw.timezone))
      problems.push(
        `${where2} "timezone" is ${JSON.stringify(raw.timezone)}${
          typeof raw.timezone === 'string' && isTimeZoneAbbreviation(raw.timezone)
            ? ` (${ABBREVIATION_NOTE})`
            : ''
        }: use an IANA time zone such as "Asia/Kolkata" or "UTC"`,
      );
    else account.timeZone = raw.timezone;
  }
  if (raw.currency !== undefined) {
    // Written in any case, as rate cards may be ("usd"); kept in capitals, as cards and totals name it.
    const code = typeof raw.currency === 'string' ? raw.currency.trim().toUpperCase() : undefined;
    if (code === undefined || !CURRENCY.test(code))
      problems.push(`${where2} "currency" must be a three-letter ISO 4217 code, such as "USD"`);
    else if (!ISO_CURRENCIES.has(code))
      problems.push(
        `${where2} "currency" is "${code}", which is no ISO 4217 currency: check its spelling ("USD", "EUR", "INR"…)`,
      );
    else account.currency = code;
  }
  if (raw.portfolio !== undefined) {
    if (typeof raw.portfolio !== 'string' || raw.portfolio === '')
      problems.push(`${where2} "portfolio" must be a non-empty string (the business portfolio id)`);
    else account.portfolio = raw.portfolio;
  }
  if (raw.primary_country !== undefined) {
    if (typeof raw.primary_country !== 'string' || !COUNTRY.test(raw.primary_country))
      problems.push(
        `${where2} "primary_country" must be a two-letter country code in capitals, such as "IN"`,
      );
    else if (!isSupportedCountry(raw.primary_country))
      problems.push(
        `${where2} "primary_country" is "${raw.primary_country}", which is no country: check its spelling (ISO 3166, such as "IN")`,
      );
    else account.primaryCountry = raw.primary_country;
  }
  if (raw.auth_international !== undefined) {
    const eligibility = parseEligibility(raw.auth_international, `${where2} "auth_international"`, problems);
    if (eligibility !== undefined) account.authInternational = eligibility;
  }
  return account;
}

function parseEligibility(
  raw: unknown,
  where: string,
  problems: string[],
): AuthInternationalEligibility | undefined {
  if (!isRecord(raw)) {
    problems.push(`${where} must be an object like {"start":"2024-07-01T00:00:00Z","exceptions":{}}`);
    return undefined;
  }
  for (const key of Object.keys(raw)) {
    if (key !== 'start' && key !== 'exceptions')
      problems.push(`${where} has unknown field "${key}" (allowed: start, exceptions)`);
  }
  if (raw.start === undefined) {
    // Said as the field left out, not as a value: parseInstant would call it `undefined`.
    problems.push(
      `${where} needs "start", the instant the account became eligible (ISO-8601 with an offset, such as ` +
        `"2024-07-01T00:00:00Z", or Unix seconds)`,
    );
    return undefined;
  }
  const start = parseInstant(raw.start);
  if (!start.ok) {
    problems.push(`${where} needs "start": ${start.error.message}`);
    return undefined;
  }
  const exceptionsMs: Record<string, number> = {};
  if (raw.exceptions !== undefined) {
    if (!isRecord(raw.exceptions)) {
      problems.push(
        `${where} "exceptions" must be an object of country → instant, like {"ID":"2024-08-01T00:00:00Z"}`,
      );
      return undefined;
    }
    for (const [country, instant] of Object.entries(raw.exceptions)) {
      if (!COUNTRY.test(country)) {
        problems.push(`${where} "exceptions" key "${country}" must be a two-letter country code in capitals`);
        continue;
      }
      if (!isSupportedCountry(country)) {
        problems.push(
          `${where} "exceptions" key "${country}" is no country: check its spelling (ISO 3166, such as "ID")`,
        );
        continue;
      }
      const parsed = parseInstant(instant);
      if (!parsed.ok) problems.push(`${where} "exceptions"."${country}": ${parsed.error.message}`);
      else exceptionsMs[country] = parsed.value;
    }
  }
  return { startMs: start.value, exceptionsMs };
}

/** Reads and parses an accounts file; an unreadable path is an `UNREADABLE_SOURCE` error, not a throw. */
export async function loadAccountsFile(path: string): Promise<Result<Account[], AccountsFileError>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file: check the --accounts path'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied: make it readable for this user'
          : code === 'EISDIR'
            ? 'is a directory: give the accounts JSON file itself'
            : (error as Error).message;
    return err({
      code: 'UNREADABLE_SOURCE',
      message: `cannot read accounts file ${path}: ${why}`,
      file: path,
    });
  }
  const text = decodeUtf8File(bytes);
  if (!text.ok) {
    return err({
      code: 'UNREADABLE_SOURCE',
      message: `cannot read accounts file ${path}: it ${notUtf8Words(bytes, text.error)}`,
      file: path,
    });
  }
  return parseAccounts(text.value, path);
}

export interface AccountBook {
  /** The account of a WABA; an unknown WABA gets the contract's defaults (UTC, USD, portfolio = WABA). */
  accountFor(waba: string): Account;
  /** Merges Meta's account_update facts (primary country, authentication-international eligibility). */
  apply(update: AccountUpdateEvent): void;
}

/**
 * The accounts known from the file, amended by account_update webhooks. Meta's latest statement wins over
 * the file (it is newer information); an update older than one already applied is ignored, so the order in
 * which webhooks arrive does not matter.
 */
export function createAccountBook(accounts: readonly Account[]): AccountBook {
  const book = new Map<string, Account>();
  for (const account of accounts) book.set(account.waba, copyAccount(account));
  const appliedAtMs = new Map<string, number>();

  const accountFor = (waba: string): Account => {
    let account = book.get(waba);
    if (account === undefined) {
      account = defaultAccount(waba);
      book.set(waba, account);
    }
    return account;
  };

  const isNewest = (waba: string, fact: string, atMs: number): boolean => {
    const key = `${waba}\u0000${fact}`;
    const previous = appliedAtMs.get(key);
    if (previous !== undefined && previous > atMs) return false;
    appliedAtMs.set(key, atMs);
    return true;
  };

  const apply = (update: AccountUpdateEvent): void => {
    if (update.primaryCountry !== undefined) {
      const account = accountFor(update.waba);
      account.primaryCountryChanges = withPrimaryCountryChange(account.primaryCountryChanges, {
        atMs: update.atMs,
        country: update.primaryCountry,
      });
    }
    if (update.authInternational !== undefined && isNewest(update.waba, 'auth_international', update.atMs)) {
      accountFor(update.waba).authInternational = {
        startMs: update.authInternational.startMs,
        exceptionsMs: { ...update.authInternational.exceptionsMs },
      };
    }
  };

  return { accountFor, apply };
}

function copyAccount(account: Account): Account {
  const copy: Account = { ...account };
  if (account.authInternational !== undefined) {
    copy.authInternational = {
      startMs: account.authInternational.startMs,
      exceptionsMs: { ...account.authInternational.exceptionsMs },
    };
  }
  return copy;
}
