// Placing a number without building libphonenumber's PhoneNumber: the same decisions its `parsePhoneNumber`
// and `isValid()` take for `+digits`, on regular expressions compiled once from the same metadata. The
// library builds a RegExp from a metadata string on every test (helpers/matchesEntirely.js), which is most
// of the cost of placing a number. Every case this does not decide with certainty (a national prefix, a
// non-geographic calling code, a length the library refuses) returns `undefined`: the caller asks the
// library. A differential test compares the two over generated traffic and every calling code.

import { Metadata } from 'libphonenumber-js/core';
import metadataJson from 'libphonenumber-js/max/metadata';
import type { MarketTable, RecipientPlacement } from './market.js';

/** The parts of libphonenumber's numbering plan object read here (present at run time, untyped in its d.ts). */
interface PlanView {
  nationalNumberPattern(): string;
  nationalPrefixForParsing(): string | undefined;
  leadingDigits(): string | undefined;
  hasTypes(): boolean;
  type(name: string): { pattern(): string; possibleLengths(): readonly number[] | undefined } | undefined;
}

interface CountryPlan {
  country: string;
  /** `^(?:national_number_pattern)$`, as libphonenumber's matchesEntirely builds it. */
  nationalNumber: RegExp;
  /** `leading_digits` unanchored, as `String.prototype.search` builds it from the string. */
  leadingDigits: RegExp | undefined;
  hasTypes: boolean;
  /** FIXED_LINE then the other types in the order of libphonenumber's getNumberType; empty patterns left out. */
  types: readonly { lengths: readonly number[] | undefined; pattern: RegExp }[];
}

interface CallingCodePlan {
  callingCode: string;
  /** The countries sharing the code, the main one first (libphonenumber's `country_calling_codes`). */
  countries: readonly CountryPlan[];
  /** `^(?:national_prefix_for_parsing)` of the code's main country: a number it matches goes to the library. */
  nationalPrefix: RegExp | undefined;
}

// libphonenumber's helpers/getNumberType.js: FIXED_LINE, then these, in this order.
const NUMBER_TYPES = [
  'FIXED_LINE',
  'MOBILE',
  'PREMIUM_RATE',
  'TOLL_FREE',
  'SHARED_COST',
  'VOIP',
  'PERSONAL_NUMBER',
  'PAGER',
  'UAN',
  'VOICEMAIL',
] as const;

// Limits of libphonenumber's parse (constants.js, parse.js): a national number of 2 to 17 digits (so its limit of
// 250 characters is never reached here); viable only with 3 digits or more (helpers/isViablePhoneNumber.js).
const MIN_NATIONAL_LENGTH = 2;
const MAX_NATIONAL_LENGTH = 17;
const MIN_DIGITS = 3;

function entirely(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`);
}

function planOf(metadata: Metadata, countryOrCallingCode: string): PlanView | undefined {
  metadata.selectNumberingPlan(countryOrCallingCode as Parameters<Metadata['selectNumberingPlan']>[0]);
  const plan = metadata.numberingPlan as unknown as Partial<PlanView> | undefined;
  const isReadable =
    typeof plan?.nationalNumberPattern === 'function' &&
    typeof plan.nationalPrefixForParsing === 'function' &&
    typeof plan.leadingDigits === 'function' &&
    typeof plan.hasTypes === 'function' &&
    typeof plan.type === 'function';
  return isReadable ? (plan as PlanView) : undefined;
}

function compileCountry(metadata: Metadata, country: string): CountryPlan | undefined {
  const plan = planOf(metadata, country);
  if (!plan) return undefined;
  const types: { lengths: readonly number[] | undefined; pattern: RegExp }[] = [];
  for (const name of NUMBER_TYPES) {
    const type = plan.type(name);
    if (!type || !type.pattern()) continue; // libphonenumber: a type without a pattern never matches
    types.push({ lengths: type.possibleLengths(), pattern: entirely(type.pattern()) });
  }
  const leadingDigits = plan.leadingDigits();
  return {
    country,
    nationalNumber: entirely(plan.nationalNumberPattern()),
    leadingDigits: leadingDigits ? new RegExp(leadingDigits) : undefined,
    hasTypes: plan.hasTypes(),
    types,
  };
}

const metadata = new Metadata(metadataJson);
const countryCallingCodes: Readonly<Record<string, readonly string[]>> = metadataJson.country_calling_codes;
const nonGeographicCodes: Readonly<Record<string, unknown>> = metadataJson.nonGeographic;

/**
 * A geographic calling code's plan, or `null` (the code is non-geographic, or this library's metadata cannot
 * be read here): compiled on first use, since a process meets a few of its 206 codes.
 */
function compileCallingCode(callingCode: string): CallingCodePlan | null {
  const countryCodes = countryCallingCodes[callingCode] ?? [];
  // libphonenumber's getCountryCodesForCallingCode: a single three-letter entry ('001') is no country.
  if (countryCodes.length === 0 || (countryCodes.length === 1 && countryCodes[0]?.length === 3)) return null;
  const countries: CountryPlan[] = [];
  for (const country of countryCodes) {
    const compiled = compileCountry(metadata, country);
    if (!compiled) return null;
    countries.push(compiled);
  }
  // The plan libphonenumber selects for the calling code: its main country's.
  const main = planOf(metadata, callingCode);
  if (!main) return null;
  const prefix = main.nationalPrefixForParsing();
  return { callingCode, countries, nationalPrefix: prefix ? new RegExp(`^(?:${prefix})`) : undefined };
}

const callingCodePlans = new Map<string, CallingCodePlan | null>();

function callingCodePlan(callingCode: string): CallingCodePlan | null {
  let plan = callingCodePlans.get(callingCode);
  if (plan === undefined) {
    plan = compileCallingCode(callingCode);
    callingCodePlans.set(callingCode, plan);
  }
  return plan;
}

/** libphonenumber's getNumberType(…) !== undefined. */
function hasNumberType(nationalNumber: string, plan: CountryPlan): boolean {
  if (!plan.nationalNumber.test(nationalNumber)) return false;
  for (const type of plan.types) {
    if (type.lengths && !type.lengths.includes(nationalNumber.length)) continue;
    if (type.pattern.test(nationalNumber)) return true;
  }
  return false;
}

/** libphonenumber's getCountryByCallingCode (getCountryByNationalNumber for a shared code). */
function countryOf(nationalNumber: string, plan: CallingCodePlan): CountryPlan | undefined {
  if (plan.countries.length === 1) return plan.countries[0];
  for (const country of plan.countries) {
    if (country.leadingDigits) {
      if (nationalNumber.search(country.leadingDigits) === 0) return country;
    } else if (hasNumberType(nationalNumber, country)) {
      return country;
    }
  }
  return undefined;
}

/** libphonenumber's isValidNumber for a number whose country is known. */
function isValidIn(nationalNumber: string, country: CountryPlan): boolean {
  return country.hasTypes
    ? hasNumberType(nationalNumber, country)
    : country.nationalNumber.test(nationalNumber);
}

/**
 * `placeRecipient`'s answer for `digits` (E.164 digits, no '+'), or `undefined` when only libphonenumber
 * itself can give it.
 */
export function fastPlacement(
  digits: string,
  table: MarketTable | undefined,
): RecipientPlacement | undefined {
  if (digits.length < MIN_DIGITS || digits[0] === '0') return undefined;
  // The shortest prefix that is a calling code (libphonenumber's extractCountryCallingCode: no code is the
  // prefix of another).
  let plan: CallingCodePlan | undefined;
  for (let length = 1; length <= 3 && !plan; length++) {
    const prefix = digits.slice(0, length);
    if (Object.hasOwn(countryCallingCodes, prefix)) {
      plan = callingCodePlan(prefix) ?? undefined;
      if (!plan) return undefined;
    } else if (Object.hasOwn(nonGeographicCodes, prefix)) {
      return undefined; // +800, +882…: the library's
    }
  }
  if (!plan) return { country: null, callingCode: null, isFromCallingCode: false }; // no calling code at all
  const nationalNumber = digits.slice(plan.callingCode.length);
  if (nationalNumber.length < MIN_NATIONAL_LENGTH || nationalNumber.length > MAX_NATIONAL_LENGTH)
    return undefined;
  // libphonenumber may strip a national prefix (or rewrite the number) here: leave that to it.
  if (plan.nationalPrefix?.test(nationalNumber)) return undefined;

  const country = countryOf(nationalNumber, plan);
  if (country && isValidIn(nationalNumber, country)) {
    return { country: country.country, callingCode: plan.callingCode, isFromCallingCode: false };
  }
  return {
    country:
      table?.countryOfAreaCode(plan.callingCode, nationalNumber) ??
      country?.country ??
      plan.countries[0]?.country ??
      null,
    callingCode: plan.callingCode,
    isFromCallingCode: true,
  };
}
