import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { createMarketResolver, parseMarketTable, placeRecipient, type MarketTable } from './market.js';

// A pass-through spy on the phone library, to count how often the resolver runs it.
const phoneLibrary = vi.hoisted(() => ({ calls: 0 }));
vi.mock('libphonenumber-js/max', async (importOriginal) => {
  const actual = await importOriginal<typeof import('libphonenumber-js/max')>();
  return {
    ...actual,
    default: (...args: Parameters<typeof actual.default>) => {
      phoneLibrary.calls++;
      return actual.default(...args);
    },
  };
});

const bundledCsv = readFileSync(new URL('../../data/markets.csv', import.meta.url), 'utf8');

function bundledTable(): MarketTable {
  const parsed = parseMarketTable(bundledCsv);
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

const HEADER = 'country,calling_code,area_codes,market,valid_from,valid_to,source';

function tableError(csv: string): string {
  const parsed = parseMarketTable(csv);
  if (parsed.ok) throw new Error('expected the table to be refused');
  expect(parsed.error.code).toBe('BAD_MARKET_TABLE');
  return parsed.error.message;
}

describe('parseMarketTable', () => {
  it('reads the bundled table', () => {
    const table = bundledTable();
    expect(table.rows.length).toBeGreaterThan(100);
    expect(table.rows.find((r) => r.country === 'DO')).toMatchObject({
      callingCode: '1',
      areaCodes: ['809', '829', '849'],
      market: 'Rest of Latin America',
      validFrom: null,
      validTo: null,
      source: 'meta',
    });
  });

  it('gives the market valid on a date, valid_from inclusive and valid_to exclusive', () => {
    const table = bundledTable();
    expect(table.marketOf('ZW', '2025-09-30')).toBe('Other');
    expect(table.marketOf('ZW', '2025-10-01')).toBe('Rest of Africa');
    expect(table.marketOf('MA', '2026-09-30')).toBe('Rest of Africa');
    expect(table.marketOf('MA', '2026-10-01')).toBe('Morocco');
  });

  it('maps a country it does not list, or lists for no row on that date, to Other', () => {
    const table = bundledTable();
    expect(table.marketOf('BS', '2024-01-01')).toBe('Other');
    expect(table.marketOf('KZ', '2026-09-30')).toBe('Other');
    expect(table.marketOf('KZ', '2026-10-01')).toBe('Kazakhstan');
  });

  it('accepts a lower-case country and quoted cells', () => {
    const parsed = parseMarketTable(`${HEADER}\nRO,40,,"Rest of Central & Eastern Europe",,,meta\n`);
    expect(parsed.ok && parsed.value.marketOf('ro', '2024-01-01')).toBe('Rest of Central & Eastern Europe');
  });

  it('without reported rows keeps the meta row the reported split would have ended', () => {
    const table = bundledTable().withoutReportedRows();
    expect(table.marketOf('MA', '2026-10-01')).toBe('Rest of Africa');
    expect(table.marketOf('BD', '2027-01-01')).toBe('Rest of Asia Pacific');
    expect(table.marketOf('KZ', '2026-10-01')).toBe('Other');
    // Meta's own dated change is not a reported rule: it stays.
    expect(table.marketOf('ZW', '2025-09-30')).toBe('Other');
    expect(table.marketOf('ZW', '2025-10-01')).toBe('Rest of Africa');
    expect(table.rows.some((r) => r.source === 'reported')).toBe(false);
  });

  it('refuses an empty text', () => {
    expect(tableError('')).toMatch(/empty/);
  });

  it('refuses a header with a missing column', () => {
    expect(tableError('country,calling_code,market,valid_from,valid_to,source\nIN,91,India,,,meta')).toMatch(
      /line 1: header lacks area_codes/,
    );
  });

  it('refuses an unknown column', () => {
    expect(tableError(`${HEADER},notes\nIN,91,,India,,,meta,x`)).toMatch(/line 1: unknown column "notes"/);
  });

  it('refuses a row with the wrong number of cells, naming the line', () => {
    expect(tableError(`${HEADER}\nIN,91,,India,,,meta\nBR,55,Brazil,,,meta`)).toMatch(/line 3: 6 cells/);
  });

  it('refuses a bad country, calling code, area code, market or source', () => {
    expect(tableError(`${HEADER}\nIND,91,,India,,,meta`)).toMatch(/line 2: country "IND"/);
    expect(tableError(`${HEADER}\nIN,+91,,India,,,meta`)).toMatch(/line 2: calling_code "\+91"/);
    expect(tableError(`${HEADER}\nDO,1,809/829,Rest of Latin America,,,meta`)).toMatch(
      /area code "809\/829"/,
    );
    expect(tableError(`${HEADER}\nIN,91,,,,,meta`)).toMatch(/line 2: market is empty/);
    expect(tableError(`${HEADER}\nIN,91,,India,,,`)).toMatch(/line 2: source ""/);
  });

  it('refuses a date that is not a real YYYY-MM-DD', () => {
    expect(tableError(`${HEADER}\nIN,91,,India,2023-02-29,,meta`)).toMatch(/line 2: valid_from "2023-02-29"/);
    expect(tableError(`${HEADER}\nIN,91,,India,,1/10/2025,meta`)).toMatch(/line 2: valid_to "1\/10\/2025"/);
  });

  it('refuses a period that ends before it starts', () => {
    expect(tableError(`${HEADER}\nIN,91,,India,2025-10-01,2025-10-01,meta`)).toMatch(/not before valid_to/);
  });

  it('refuses two rows of one country whose periods overlap, naming both lines', () => {
    const csv = `${HEADER}\nZW,263,,Other,,2025-11-01,meta\nZW,263,,Rest of Africa,2025-10-01,,meta`;
    expect(tableError(csv)).toMatch(/line 3: ZW \(Rest of Africa\) overlaps line 2 \(Other\)/);
  });

  it('refuses one area code given to two countries', () => {
    const csv = `${HEADER}\nDO,1,809,Rest of Latin America,,,meta\nJM,1,809,Rest of Latin America,,,meta`;
    expect(tableError(csv)).toMatch(/line 3: area code \+1 809 is given to JM and, on line 2, to DO/);
  });

  it('refuses an unterminated quote', () => {
    expect(tableError(`${HEADER}\nRO,40,,"Rest of Central,,,meta`)).toMatch(
      /line 2: a quoted field is never closed/,
    );
  });
});

describe('placeRecipient', () => {
  it.each([
    ['12092345678', 'US', '1', '+1 209 is California'],
    ['12423221234', 'BS', '1', '+1 242 is the Bahamas'],
    ['18092345678', 'DO', '1', '+1 809 is the Dominican Republic'],
    ['18765551234', 'JM', '1', '+1 876 is Jamaica'],
    ['17875551234', 'PR', '1', '+1 787 is Puerto Rico'],
    ['14165551234', 'CA', '1', '+1 416 is Toronto'],
    ['77012345678', 'KZ', '7', '+7 70x is Kazakhstan, not Russia'],
    ['79161234567', 'RU', '7', '+7 9xx is Russia'],
    ['447781123456', 'GG', '44', '+44 7781 is Guernsey'],
    ['447797123456', 'JE', '44', '+44 7797 is Jersey'],
    ['447624123456', 'IM', '44', '+44 7624 is the Isle of Man'],
    ['447700123456', 'GB', '44', '+44 7700 is the UK'],
    ['263771234567', 'ZW', '263', '+263 is Zimbabwe'],
    ['919876543210', 'IN', '91', '+91 is India'],
  ])('places %s in %s (%s)', (waId, country, callingCode) => {
    expect(placeRecipient(waId)).toEqual({ country, callingCode, isFromCallingCode: false });
  });

  it("falls back to the calling code's main country for a number the library holds invalid", () => {
    // 07700 900xxx is Ofcom's range reserved for drama: no real subscriber, so the library does not place it.
    expect(placeRecipient('447700900123')).toEqual({
      country: 'GB',
      callingCode: '44',
      isFromCallingCode: true,
    });
    expect(placeRecipient('1999555123')).toEqual({
      country: 'US',
      callingCode: '1',
      isFromCallingCode: true,
    });
  });

  it("keeps the library's country for an invalid number whose leading digits name one", () => {
    expect(placeRecipient('2637712')).toEqual({ country: 'ZW', callingCode: '263', isFromCallingCode: true });
  });

  it('uses the table’s NANP area codes as a second opinion where the library gives nothing', () => {
    const parsed = parseMarketTable(`${HEADER}\nDO,1,809;829;849;999,Rest of Latin America,,,meta\n`);
    if (!parsed.ok) throw new Error(parsed.error.message);
    expect(placeRecipient('1999555123', parsed.value)).toEqual({
      country: 'DO',
      callingCode: '1',
      isFromCallingCode: true,
    });
  });

  it("accepts a '+' in front of the digits", () => {
    expect(placeRecipient('+919876543210')).toEqual({
      country: 'IN',
      callingCode: '91',
      isFromCallingCode: false,
    });
  });

  it('finds the calling code of a number too short to parse', () => {
    expect(placeRecipient('44')).toEqual({ country: 'GB', callingCode: '44', isFromCallingCode: true });
  });

  it('gives no country for a non-geographic calling code', () => {
    expect(placeRecipient('80012345678')).toEqual({
      country: null,
      callingCode: '800',
      isFromCallingCode: true,
    });
  });

  it('gives no country and no calling code when none is known', () => {
    expect(placeRecipient('99912345')).toEqual({
      country: null,
      callingCode: null,
      isFromCallingCode: false,
    });
    expect(placeRecipient('0')).toEqual({ country: null, callingCode: null, isFromCallingCode: false });
    expect(placeRecipient('')).toEqual({ country: null, callingCode: null, isFromCallingCode: false });
    expect(placeRecipient('user.9373')).toEqual({
      country: null,
      callingCode: null,
      isFromCallingCode: false,
    });
  });
});

describe('createMarketResolver', () => {
  it("placerOf(number)(day) is resolve(number, day): every kind of number, days across the table's changes", () => {
    const numbers = [
      '919876543210',
      '8801712345678',
      '1242555',
      '77',
      '99912345',
      '+14155550123',
      'US.123',
      '',
    ];
    const days = ['2025-01-15', '2026-09-30', '2026-10-01', '2027-03-01'];
    for (const isReportedRulesEnabled of [true, false]) {
      const markets = createMarketResolver(bundledTable(), { isReportedRulesEnabled });
      for (const number of numbers) {
        const placer = markets.placerOf?.(number);
        if (placer === undefined) throw new Error('the resolver has no placerOf');
        for (const day of days) expect(placer(day)).toEqual(markets.resolve(number, day));
      }
    }
  });

  const resolver = () => createMarketResolver(bundledTable(), { isReportedRulesEnabled: true });

  it.each([
    ['12092345678', 'US', 'North America'],
    ['14165551234', 'CA', 'North America'],
    ['12423221234', 'BS', 'Other'],
    ['18092345678', 'DO', 'Rest of Latin America'],
    ['18765551234', 'JM', 'Rest of Latin America'],
    ['17875551234', 'PR', 'Rest of Latin America'],
    ['79161234567', 'RU', 'Russia'],
    ['447781123456', 'GG', 'Other'],
    ['447797123456', 'JE', 'Other'],
    ['447624123456', 'IM', 'Other'],
    ['447700123456', 'GB', 'United Kingdom'],
    ['919876543210', 'IN', 'India'],
  ])('resolves %s to %s, market %s, with no finding', (waId, country, market) => {
    expect(resolver().resolve(waId, '2025-01-15')).toEqual({ country, market });
  });

  it('moves Zimbabwe from Other to Rest of Africa on 2025-10-01', () => {
    const markets = resolver();
    expect(markets.resolve('263771234567', '2025-09-30').market).toBe('Other');
    expect(markets.resolve('263771234567', '2025-10-01').market).toBe('Rest of Africa');
  });

  it('gives Kazakhstan its own market from 2026-10-01 when reported rules are enabled', () => {
    const markets = resolver();
    expect(markets.resolve('77012345678', '2026-09-30')).toEqual({ country: 'KZ', market: 'Other' });
    expect(markets.resolve('77012345678', '2026-10-01')).toEqual({ country: 'KZ', market: 'Kazakhstan' });
  });

  it('keeps the regions of 2025 after 2026-10-01 when reported rules are disabled', () => {
    const markets = createMarketResolver(bundledTable(), { isReportedRulesEnabled: false });
    expect(markets.resolve('77012345678', '2026-10-01').market).toBe('Other');
    expect(markets.resolve('212612345678', '2026-10-01')).toEqual({
      country: 'MA',
      market: 'Rest of Africa',
    });
    expect(markets.resolve('8801712345678', '2026-10-01').market).toBe('Rest of Asia Pacific');
  });

  it('places an invalid +7 7… number in Kazakhstan by the table’s area codes, reported rules on or off', () => {
    for (const isReportedRulesEnabled of [true, false]) {
      const markets = createMarketResolver(bundledTable(), { isReportedRulesEnabled });
      expect(markets.resolve('77', '2025-01-15')).toMatchObject({
        country: 'KZ',
        market: 'Other',
        finding: { code: 'MARKET_FROM_CALLING_CODE' },
      });
    }
  });

  it('flags a market taken from the calling code, naming the number', () => {
    const resolution = resolver().resolve('447700900123', '2025-01-15');
    expect(resolution).toMatchObject({
      country: 'GB',
      market: 'United Kingdom',
      finding: {
        code: 'MARKET_FROM_CALLING_CODE',
        number: '447700900123',
        country: 'GB',
        calling_code: '44',
      },
    });
    expect(resolution.finding?.message).toContain('447700900123');
  });

  it('reports an unknown recipient when no calling code is known', () => {
    const resolution = resolver().resolve('99912345', '2025-01-15');
    expect(resolution).toMatchObject({
      country: null,
      market: null,
      finding: { code: 'UNKNOWN_RECIPIENT', number: '99912345' },
    });
    expect(resolution.finding?.message).toContain('99912345');
  });

  it('reports an unknown recipient for a non-geographic number', () => {
    expect(resolver().resolve('80012345678', '2025-01-15').finding?.code).toBe('UNKNOWN_RECIPIENT');
  });

  it('infers the market of a business-scoped user id from the country hint', () => {
    const resolution = resolver().resolve('user.9373abc', '2025-01-15', 'in');
    expect(resolution).toMatchObject({
      country: 'IN',
      market: 'India',
      finding: { code: 'MARKET_INFERRED', number: 'user.9373abc', country: 'IN' },
    });
  });

  it('infers the market of an empty wa_id from the hint, also given as a calling code', () => {
    expect(resolver().resolve('', '2025-01-15', '+91')).toMatchObject({
      country: 'IN',
      market: 'India',
      finding: { code: 'MARKET_INFERRED' },
    });
  });

  it('says a user id written as a decimal number (a float of 919876543210) is one, and how to write it', () => {
    expect(resolver().resolve('919876543210.0', '2025-01-15')).toMatchObject({
      country: null,
      market: null,
      finding: {
        code: 'UNKNOWN_RECIPIENT',
        number: '919876543210.0',
        message:
          "Recipient 919876543210.0 is a phone number written as a decimal number (a spreadsheet's or script's float), so its market is unknown and its messages cannot be priced: write user ids as text, without decimals (919876543210)",
      },
    });
  });

  it('reports an unknown recipient for a user id without a usable hint', () => {
    const markets = resolver();
    expect(markets.resolve('user.9373abc', '2025-01-15')).toMatchObject({
      country: null,
      market: null,
      finding: { code: 'UNKNOWN_RECIPIENT', number: 'user.9373abc' },
    });
    expect(markets.resolve('', '2025-01-15', 'India').finding?.message).toMatch(
      /hint "India" is not a country/,
    );
  });

  it('answers the same for a number asked again, on any date', () => {
    const markets = resolver();
    const first = markets.resolve('447700900123', '2025-01-15');
    const again = markets.resolve('447700900123', '2025-01-16');
    expect(again).toEqual(first);
    expect(again.finding).toBe(first.finding);
  });

  it('runs the phone library once per distinct number', () => {
    const markets = resolver();
    const before = phoneLibrary.calls;
    // Numbers only the library places (fast-placement.ts leaves them to it): a mobile number of Argentina,
    // which its national prefix rule rewrites, and a non-geographic one.
    for (let i = 0; i < 1000; i++) {
      markets.resolve('5491143924724', '2025-01-15');
      markets.resolve('80012345678', i % 2 === 0 ? '2025-01-15' : '2026-11-01');
    }
    expect(phoneLibrary.calls - before).toBe(2);
  });

  it('places a common number from compiled metadata, without parsing it with the library', () => {
    const markets = resolver();
    const before = phoneLibrary.calls;
    expect(markets.resolve('919876543210', '2025-01-15')).toEqual({ country: 'IN', market: 'India' });
    expect(markets.resolve('447700900123', '2025-01-15')).toMatchObject({
      country: 'GB',
      finding: { code: 'MARKET_FROM_CALLING_CODE' },
    });
    expect(phoneLibrary.calls - before).toBe(0);
  });
});
