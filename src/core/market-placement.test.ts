// Placing a number from compiled metadata (fast-placement.ts) must give what libphonenumber's parse gives:
// the placement as it was before, kept here as the reference, compared over generated traffic and over
// numbers built from every calling code of the metadata.

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import parsePhoneNumber from 'libphonenumber-js/max';
import examples from 'libphonenumber-js/mobile/examples';
import metadata from 'libphonenumber-js/max/metadata';
import { describe, expect, it } from 'vitest';
import { generateEvents } from '../../bench/generate-traffic.js';
import { fastPlacement } from './fast-placement.js';
import { parseMarketTable, placeRecipient, type MarketTable, type RecipientPlacement } from './market.js';

const SEED = 20261206;

const bundled = parseMarketTable(readFileSync(new URL('../../data/markets.csv', import.meta.url), 'utf8'));
if (!bundled.ok) throw new Error(bundled.error.message);
const table: MarketTable = bundled.value;

const countriesByCallingCode: Record<string, readonly string[] | undefined> = metadata.country_calling_codes;

/** placeRecipient as it was before fast-placement.ts: libphonenumber's parsePhoneNumber and isValid(). */
function referencePlacement(waId: string, table?: MarketTable): RecipientPlacement {
  const digits = /^\+?\d+$/.test(waId) ? waId.replace('+', '') : '';
  const phone = digits === '' ? undefined : parsePhoneNumber(`+${digits}`);
  if (phone?.country && phone.isValid()) {
    return { country: phone.country, callingCode: phone.countryCallingCode, isFromCallingCode: false };
  }
  let callingCode: string | null = phone?.countryCallingCode ?? null;
  for (let length = 1; callingCode === null && length <= 3 && length <= digits.length; length++) {
    if (countriesByCallingCode[digits.slice(0, length)]) callingCode = digits.slice(0, length);
  }
  if (callingCode === null) return { country: null, callingCode: null, isFromCallingCode: false };
  const nationalNumber = digits.slice(callingCode.length);
  const country =
    table?.countryOfAreaCode(callingCode, nationalNumber) ??
    phone?.country ??
    countriesByCallingCode[callingCode]?.[0] ??
    null;
  return { country, callingCode, isFromCallingCode: true };
}

function expectSamePlacement(waId: string): void {
  for (const withTable of [table, undefined]) {
    const placed = placeRecipient(waId, withTable);
    const reference = referencePlacement(waId, withTable);
    if (JSON.stringify(placed) !== JSON.stringify(reference)) {
      throw new Error(
        `${JSON.stringify(waId)} (${withTable ? 'with' : 'without'} the table): placed ` +
          `${JSON.stringify(placed)}, libphonenumber ${JSON.stringify(reference)}`,
      );
    }
  }
}

/** Every user and recipient id of a generated traffic file, each once. */
function trafficNumbers(): string[] {
  const numbers = new Set<string>();
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) walk(item);
    } else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        if ((key === 'user' || key === 'recipient_id') && typeof inner === 'string') numbers.add(inner);
        else walk(inner);
      }
    }
  };
  for (const event of generateEvents({ seed: 42, users: 50_000, eventsTarget: 300_000 })) walk(event);
  return [...numbers];
}

describe('placing a number from compiled metadata', () => {
  it('places every number of a generated traffic file as libphonenumber does', () => {
    const numbers = trafficNumbers();
    expect(numbers.length).toBeGreaterThan(20_000);
    for (const waId of numbers) expectSamePlacement(waId);
    // The comparison is worth something only if the compiled path decides most numbers itself.
    const decided = numbers.filter((waId) => fastPlacement(waId, table) !== undefined);
    expect(decided.length / numbers.length).toBeGreaterThan(0.95);
  });

  const callingCodes = [
    ...Object.keys(metadata.country_calling_codes),
    ...Object.keys(metadata.nonGeographic),
  ];
  const exampleNumbers = Object.entries(examples).map(([country, national]) => ({
    callingCode: (metadata.countries as Record<string, unknown[]>)[country]?.[0] as string,
    national: national as string,
  }));
  const digitString = (minLength: number, maxLength: number) =>
    fc.string({ unit: fc.constantFrom(...'0123456789'), minLength, maxLength });

  // A calling code of the metadata followed by 0 to 20 random digits (17 is the longest national number).
  const anyNational = fc
    .tuple(fc.constantFrom(...callingCodes), digitString(0, 20))
    .map(([code, national]) => code + national);
  // A country's example mobile number with its tail replaced or trimmed: mostly valid numbers, in every country,
  // including the crown dependencies of +44 and the countries sharing +1, +7, +47, +61, +262, +590, +599.
  const nearExample = fc
    .tuple(fc.constantFrom(...exampleNumbers), fc.nat({ max: 6 }), fc.integer({ min: -2, max: 1 }))
    .chain(([{ callingCode, national }, replaced, change]) =>
      digitString(Math.max(0, replaced + change), Math.max(0, replaced + change)).map(
        (tail) => callingCode + national.slice(0, national.length - replaced) + tail,
      ),
    );
  // NANP: +1, an area code, seven digits (sometimes one fewer or more).
  const nanp = fc
    .tuple(digitString(3, 3), digitString(6, 8))
    .map(([areaCode, subscriber]) => `1${areaCode}${subscriber}`);
  // Numbers written with a national prefix or zeros after the calling code (+44 0…, +7 8…, +54 9…, +39 0…).
  const withPrefix = fc
    .tuple(
      fc.constantFrom(...callingCodes),
      fc.constantFrom('0', '00', '8', '9', '1', '15', '0800'),
      digitString(0, 14),
    )
    .map(([code, prefix, rest]) => code + prefix + rest);
  const digitsOnly = fc.oneof(
    { weight: 2, arbitrary: anyNational },
    { weight: 3, arbitrary: nearExample },
    { weight: 1, arbitrary: nanp },
    { weight: 1, arbitrary: withPrefix },
    { weight: 1, arbitrary: digitString(0, 20) },
  );
  const written = fc.oneof(
    { weight: 6, arbitrary: digitsOnly },
    { weight: 2, arbitrary: digitsOnly.map((digits) => `+${digits}`) },
    { weight: 1, arbitrary: digitsOnly.map((digits) => `0${digits}`) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.string({ maxLength: 16 }),
        fc.constantFrom(
          '',
          '+',
          '++44',
          '+ 44 7700 900123',
          '447700900123x',
          '４４７７００９００１２３',
          '1'.repeat(260),
        ),
        fc.tuple(digitsOnly, fc.string({ maxLength: 3 }), digitsOnly).map(([a, b, c]) => a + b + c),
      ),
    },
  );

  it('places numbers of every calling code, of every length, written any way, as libphonenumber does', () => {
    const decided = { valid: 0, fallback: 0, noCallingCode: 0 };
    fc.assert(
      fc.property(written, (waId) => {
        expectSamePlacement(waId);
        const digits = /^\+?\d+$/.test(waId) ? waId.replace('+', '') : '';
        const fast = fastPlacement(digits, table);
        if (fast?.country === null) decided.noCallingCode++;
        else if (fast?.isFromCallingCode) decided.fallback++;
        else if (fast) decided.valid++;
      }),
      { seed: SEED, numRuns: 40_000 },
    );
    // Each of the compiled path's outcomes was compared many times, not left to the library.
    expect(decided.valid).toBeGreaterThan(4_000);
    expect(decided.fallback).toBeGreaterThan(10_000);
    expect(decided.noCallingCode).toBeGreaterThan(100);
  });
});
