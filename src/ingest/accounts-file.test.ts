import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { primaryCountryAt, type Account, type AccountUpdateEvent } from '../core/events.js';
import { createAccountBook, loadAccountsFile, parseAccounts } from './accounts-file.js';

const CONTRACT_EXAMPLE = `{"accounts":[{"waba":"W1","timezone":"Asia/Kolkata","currency":"USD","portfolio":"P1",
  "primary_country":"IN","auth_international":{"start":"2024-07-01T00:00:00Z","exceptions":{"ID":"2024-08-01T00:00:00Z"}}}]}`;

function accountsOf(text: string): Account[] {
  const result = parseAccounts(text, 'accounts.json');
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

function problemOf(accounts: unknown): string {
  const result = parseAccounts(JSON.stringify(accounts), 'accounts.json');
  if (result.ok) throw new Error(`expected an error, got ${JSON.stringify(result.value)}`);
  expect(result.error).toMatchObject({ code: 'BAD_ACCOUNTS', file: 'accounts.json' });
  return result.error.message;
}

describe('parseAccounts', () => {
  it("reads the contract's example", () => {
    expect(accountsOf(CONTRACT_EXAMPLE)).toEqual([
      {
        waba: 'W1',
        timeZone: 'Asia/Kolkata',
        currency: 'USD',
        portfolio: 'P1',
        primaryCountry: 'IN',
        authInternational: {
          startMs: Date.parse('2024-07-01T00:00:00Z'),
          exceptionsMs: { ID: Date.parse('2024-08-01T00:00:00Z') },
        },
      },
    ]);
  });

  it('fills the defaults: UTC, USD, portfolio = the WABA', () => {
    expect(accountsOf('{"accounts":[{"waba":"W2"}]}')).toEqual([
      { waba: 'W2', timeZone: 'UTC', currency: 'USD', portfolio: 'W2' },
    ]);
    expect(accountsOf('{"accounts":[]}')).toEqual([]);
  });

  it('reads a currency in any case, as rate cards may write it, and keeps it in capitals', () => {
    expect(accountsOf('{"accounts":[{"waba":"W1","currency":"inr"}]}')[0]!.currency).toBe('INR');
    expect(accountsOf('{"accounts":[{"waba":"W1","currency":" Idr "}]}')[0]!.currency).toBe('IDR');
  });

  it('accepts Unix seconds for instants', () => {
    const [account] = accountsOf('{"accounts":[{"waba":"W1","auth_international":{"start":1719792000}}]}');
    expect(account!.authInternational).toEqual({ startMs: 1719792000000, exceptionsMs: {} });
  });

  it.each([
    [{ timezone: 'India/Delhi' }, 'account 0 (waba W1) "timezone" is "India/Delhi": use an IANA time zone'],
    [{ timezone: 5.5 }, '"timezone" is 5.5: use an IANA time zone'],
    [
      { timezone: 'CST' },
      'account 0 (waba W1) "timezone" is "CST" (an abbreviation, which names zones of several countries): use an IANA time zone',
    ],
    [{ currency: 'dollar' }, 'account 0 (waba W1) "currency" must be a three-letter ISO 4217 code'],
    [{ currency: 'DOLLAR' }, '"currency" must be a three-letter'],
    [{ portfolio: '' }, '"portfolio" must be a non-empty string'],
    [{ primary_country: 'IND' }, '"primary_country" must be a two-letter country code'],
    [{ currency: 'XYZ' }, '"currency" is "XYZ", which is no ISO 4217 currency'],
    [{ primary_country: 'ZZ' }, '"primary_country" is "ZZ", which is no country'],
    [{ auth_international: '2024-07-01' }, '"auth_international" must be an object'],
    [
      { auth_international: {} },
      'account 0 (waba W1) "auth_international" needs "start", the instant the account became eligible (ISO-8601 with an offset, such as "2024-07-01T00:00:00Z", or Unix seconds)',
    ],
    [
      { auth_international: { start: '2024-07-01' } },
      '"auth_international" needs "start": "2024-07-01" is not an instant',
    ],
    [
      { auth_international: { start: 0, exceptions: { id: 0 } } },
      '"exceptions" key "id" must be a two-letter',
    ],
    [
      { auth_international: { start: 0, exceptions: { ZZ: '2024-08-01T00:00:00Z' } } },
      'account 0 (waba W1) "auth_international" "exceptions" key "ZZ" is no country: check its spelling (ISO 3166, such as "ID")',
    ],
    [
      { auth_international: { start: 0, exceptions: { ID: 'later' } } },
      '"exceptions"."ID": "later" is not an instant',
    ],
    [{ auth_international: { start: 0, exceptions: [] } }, '"exceptions" must be an object of country'],
    [{ auth_international: { start: 0, until: 1 } }, 'has unknown field "until"'],
    [{ time_zone: 'UTC' }, 'account 0 has unknown field "time_zone" (allowed: waba, timezone,'],
  ])('a bad field is named: %j', (fields, message) => {
    expect(problemOf({ accounts: [{ waba: 'W1', ...fields }] })).toContain(message);
  });

  it('a key given twice is refused, naming it and its account (JSON would keep the last copy silently)', () => {
    const text =
      '{"accounts":[{"waba":"W1"},{"waba":"W2","timezone":"Asia/Kolkata","currency":"USD","timezone":"Pacific/Auckland"}]}';
    expect(parseAccounts(text, 'accounts.json')).toEqual({
      ok: false,
      error: {
        code: 'BAD_ACCOUNTS',
        file: 'accounts.json',
        message:
          'accounts.json: key "timezone" is given twice in the object at accounts[1]; JSON would keep only the last copy: give each key once',
      },
    });
    const twoLists = '{"accounts":[{"waba":"W1"}],"accounts":[{"waba":"W2"}]}';
    expect(parseAccounts(twoLists, 'a.json')).toMatchObject({
      ok: false,
      error: {
        message:
          'a.json: key "accounts" is given twice at the top level; JSON would keep only the last copy: give each key once',
      },
    });
  });

  it('a top-level key beside "accounts" is refused: a default meant for every WABA would be read as nothing', () => {
    const problem = problemOf({ timezone: 'Asia/Kolkata', accounts: [{ waba: 'W1' }] });
    expect(problem).toBe(
      'accounts.json: unknown top-level key "timezone": the file holds only "accounts" (settings such as "timezone" go inside each account)',
    );
    expect(problemOf({ accounts: [{ waba: 'W1' }], currency: 'EUR' })).toContain(
      'unknown top-level key "currency"',
    );
  });

  it('an account without waba, or that is not an object, is named by index', () => {
    expect(problemOf({ accounts: [{ waba: 'W1' }, { timezone: 'UTC' }] })).toContain(
      'account 1 needs "waba" (the WhatsApp Business Account id, a string)',
    );
    expect(problemOf({ accounts: [{ waba: 'W1' }, { waba: '' }] })).toContain('account 1 needs "waba"');
  });

  it('a waba written as a number is told to be a string in quotes, naming the number', () => {
    const problem = problemOf({ accounts: [{ waba: 291612946114990 }] });
    expect(problem).toContain(
      'account 0 "waba" is the number 291612946114990: write it as a string, in quotes ("waba": "291612946114990")',
    );
    expect(problem).not.toContain('needs "waba"');
    expect(problemOf({ accounts: ['W1'] })).toContain('account 0 must be an object');
  });

  it('a waba with white space around it or a character that does not show is refused: it would be no WABA of the traffic', () => {
    // Matched exactly, the traffic's W1 would be billed in UTC and USD, its finding naming an id the file seems to list.
    expect(problemOf({ accounts: [{ waba: 'W1 ', currency: 'INR' }] })).toBe(
      'accounts.json: account 0 "waba" is "W1 ", which holds white space at its start or end: no WABA id has one, ' +
        "and the traffic's WABA would not be this account; write the id alone",
    );
    expect(problemOf({ accounts: [{ waba: '\tW1' }] })).toContain(
      'which holds white space at its start or end',
    );
    expect(problemOf({ accounts: [{ waba: 'W1\u200b' }] })).toContain(
      'account 0 "waba" is "W1\u200b", which holds U+200B, a character that does not show',
    );
    expect(problemOf({ accounts: [{ waba: 'W\u0000' }] })).toContain(
      'which holds U+0000, a character that does not show',
    );
  });

  it('a WABA listed twice is an error', () => {
    expect(problemOf({ accounts: [{ waba: 'W1' }, { waba: 'W1', currency: 'EUR' }] })).toContain(
      'account 1 repeats waba "W1" of account 0',
    );
  });

  it('portfolios written alike but for letter case or white space around them are refused, naming both: they would split one volume tier', () => {
    const message = problemOf({
      accounts: [
        { waba: 'W1', portfolio: 'Acme' },
        { waba: 'W2', portfolio: 'Other' },
        { waba: 'W3', portfolio: 'acme ' },
        { waba: 'W4', portfolio: 'Acme' },
      ],
    });
    expect(message).toBe(
      'accounts.json: account 2 (waba W3) "portfolio" is "acme ", and account 0 (waba W1) writes "Acme": ' +
        'they differ only in letter case or white space around them, so they are two portfolios, each with ' +
        'its own volume tiers (portfolio × market × category × month): write one portfolio one way, or give ' +
        'two portfolios names that differ by more',
    );
    // Told apart by more than case or spaces: two portfolios, as written.
    expect(
      accountsOf(
        '{"accounts":[{"waba":"W1","portfolio":"Acme"},{"waba":"W2","portfolio":"Acme 2"},{"waba":"W3","portfolio":"Acme"}]}',
      ).map((account) => account.portfolio),
    ).toEqual(['Acme', 'Acme 2', 'Acme']);
  });

  it('lists every problem at once', () => {
    const message = problemOf({
      accounts: [
        { waba: 'W1', currency: 'x' },
        { waba: 'W2', timezone: 'Mars/Base' },
      ],
    });
    expect(message).toContain('account 0 (waba W1) "currency"');
    expect(message).toContain('account 1 (waba W2) "timezone"');
  });

  it('a file that is not JSON, or not {"accounts":[…]}', () => {
    const broken = parseAccounts('{"accounts":[', 'a.json');
    expect(broken.ok).toBe(false);
    if (!broken.ok) expect(broken.error.message).toContain('a.json is not valid JSON');
    expect(problemOf([{ waba: 'W1' }])).toContain('must be an object with an "accounts" array');
    expect(problemOf({ account: [] })).toContain('must be an object with an "accounts" array');
  });

  it('a syntax error is placed by line and column, as an editor shows them, never by offset alone', () => {
    // A comma left after an account's last field, as a hand edit leaves one.
    const text = '{\n  "accounts": [\n    {\n      "waba": "W1",\n      "timezone": "UTC",\n    }\n  ]\n}\n';
    const broken = parseAccounts(text, 'a.json');
    expect(broken).toMatchObject({ ok: false, error: { code: 'BAD_ACCOUNTS' } });
    if (broken.ok) return;
    expect(broken.error.message).toMatch(
      /^a\.json is not valid JSON at line 6, column 5: a comma before "}" is not allowed in JSON: remove it; /,
    );
    expect(broken.error.message).not.toContain('position');
  });

  it('an empty file is said to be empty', () => {
    for (const text of ['', '  \n', '\ufeff']) {
      const empty = parseAccounts(text, 'a.json');
      if (empty.ok) throw new Error('an empty file was read');
      expect(empty.error.message).toMatch(
        /^a\.json is empty: check that it is the file you meant; expected \{/,
      );
    }
  });
});

describe('loadAccountsFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wameter-accounts-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file from disk', async () => {
    const path = join(dir, 'accounts.json');
    await writeFile(path, CONTRACT_EXAMPLE);
    const result = await loadAccountsFile(path);
    expect(result.ok && result.value[0]!.timeZone).toBe('Asia/Kolkata');
  });

  it('a bad file names itself', async () => {
    const path = join(dir, 'bad.json');
    await writeFile(path, '{"accounts":[{"waba":"W1","currency":"US"}]}');
    expect(await loadAccountsFile(path)).toEqual({
      ok: false,
      error: { code: 'BAD_ACCOUNTS', file: path, message: expect.stringContaining(`${path}: account 0`) },
    });
  });

  it('a file that is not UTF-8 is UNREADABLE_SOURCE naming the byte, never read with U+FFFD', async () => {
    // Portfolios "Café" and "Cafè" saved as Latin-1 (E9, E8): with U+FFFD in their place they were one
    // portfolio, and the second WABA's message was priced in the first's volume tier.
    const path = join(dir, 'latin1.json');
    const accounts = (portfolio: string, waba: string) =>
      `{"waba":"${waba}","timezone":"UTC","currency":"USD","portfolio":"${portfolio}"}`;
    await writeFile(
      path,
      Buffer.from(
        `{"accounts":[\n${accounts('Caf\u00e9', 'W1')},\n${accounts('Caf\u00e8', 'W2')}\n]}`,
        'latin1',
      ),
    );
    expect(await loadAccountsFile(path)).toEqual({
      ok: false,
      error: {
        code: 'UNREADABLE_SOURCE',
        file: path,
        message: `cannot read accounts file ${path}: it is not UTF-8: line 2, column 64 holds byte 0xE9 (offset 77), which starts no UTF-8 character, so it cannot be read as written; save the file as UTF-8 (from Windows-1252 or Latin-1: iconv -f WINDOWS-1252 -t UTF-8 FILE)`,
      },
    });
  });

  it('a UTF-8 file with a byte-order mark is read', async () => {
    const path = join(dir, 'bom.json');
    await writeFile(path, `\ufeff${CONTRACT_EXAMPLE}`);
    const result = await loadAccountsFile(path);
    expect(result.ok && result.value[0]!.timeZone).toBe('Asia/Kolkata');
  });

  it('a missing file or a directory is UNREADABLE_SOURCE', async () => {
    const missing = join(dir, 'nope.json');
    expect(await loadAccountsFile(missing)).toEqual({
      ok: false,
      error: { code: 'UNREADABLE_SOURCE', file: missing, message: expect.stringContaining('no such file') },
    });
    expect(await loadAccountsFile(dir)).toEqual({
      ok: false,
      error: { code: 'UNREADABLE_SOURCE', file: dir, message: expect.stringContaining('is a directory') },
    });
  });
});

describe('createAccountBook', () => {
  const update = (fields: Partial<AccountUpdateEvent>): AccountUpdateEvent => ({
    kind: 'account_update',
    atMs: 1_000,
    waba: 'W1',
    event: 'BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE',
    ...fields,
  });

  it('answers the listed account, and defaults (the same object each time) for an unknown WABA', () => {
    const book = createAccountBook(accountsOf(CONTRACT_EXAMPLE));
    expect(book.accountFor('W1').timeZone).toBe('Asia/Kolkata');
    const unknown = book.accountFor('W9');
    expect(unknown).toEqual({ waba: 'W9', timeZone: 'UTC', currency: 'USD', portfolio: 'W9' });
    expect(book.accountFor('W9')).toBe(unknown);
  });

  it("merges Meta's primary country and authentication-international eligibility", () => {
    const book = createAccountBook([]);
    book.apply(update({ primaryCountry: 'IN' }));
    book.apply(
      update({
        event: 'AUTH_INTL_PRICE_ELIGIBILITY_UPDATE',
        authInternational: { startMs: 5_000, exceptionsMs: { ID: 9_000 } },
      }),
    );
    book.apply(
      update({ event: 'VOLUME_BASED_PRICING_TIER_UPDATE', volumeTier: { tier: '1:2', category: 'utility' } }),
    );
    expect(book.accountFor('W1')).toEqual({
      waba: 'W1',
      timeZone: 'UTC',
      currency: 'USD',
      portfolio: 'W1',
      primaryCountryChanges: [{ atMs: 1_000, country: 'IN' }],
      authInternational: { startMs: 5_000, exceptionsMs: { ID: 9_000 } },
    });
  });

  it("Meta's location updates override the file from their instant on, whatever order they arrive in", () => {
    const book = createAccountBook(accountsOf(CONTRACT_EXAMPLE));
    book.apply(update({ atMs: 2_000, primaryCountry: 'BR' }));
    book.apply(update({ atMs: 1_000, primaryCountry: 'MX' }));
    book.apply(update({ atMs: 2_000, primaryCountry: 'BR' }));
    const account = book.accountFor('W1');
    expect(account.primaryCountryChanges).toEqual([
      { atMs: 1_000, country: 'MX' },
      { atMs: 2_000, country: 'BR' },
    ]);
    expect([999, 1_000, 1_999, 2_000].map((atMs) => primaryCountryAt(account, atMs))).toEqual([
      'IN',
      'MX',
      'MX',
      'BR',
    ]);
    expect(account.timeZone).toBe('Asia/Kolkata');
  });

  it("never changes the caller's account objects", () => {
    const accounts = accountsOf(CONTRACT_EXAMPLE);
    const book = createAccountBook(accounts);
    book.apply(update({ primaryCountry: 'BR' }));
    book.apply(
      update({
        event: 'AUTH_INTL_PRICE_ELIGIBILITY_UPDATE',
        authInternational: { startMs: 1, exceptionsMs: {} },
      }),
    );
    expect(accounts[0]!.primaryCountry).toBe('IN');
    expect(accounts[0]!.authInternational!.exceptionsMs).toEqual({ ID: Date.parse('2024-08-01T00:00:00Z') });
  });
});
