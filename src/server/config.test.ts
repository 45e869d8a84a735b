import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  apiKeyName,
  describeConfig,
  loadServiceConfig,
  parseApiKeySpec,
  redactUrl,
  scopedWabas,
  unknownWabaWarnings,
  type ServiceConfig,
} from './config.js';
import { createJsonLogger } from './logger.js';
import { jsonSyntaxError } from '../ingest/json-syntax-error.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeJson(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

describe('loadServiceConfig', () => {
  it('uses the contract defaults with an empty environment', () => {
    const result = loadServiceConfig({ env: {} });
    expect(result).toMatchObject({
      ok: true,
      value: {
        db: 'sqlite:./wameter.db',
        port: 8080,
        appSecrets: [],
        verifyToken: null,
        apiKeys: [],
        accountsPath: null,
        rateCardPaths: [],
        bodyLimitBytes: 4 * 1024 * 1024,
        logLevel: 'info',
      },
    });
  });

  it('reads every setting from the environment', () => {
    const accounts = writeJson('accounts.json', { accounts: [] });
    const result = loadServiceConfig({
      env: {
        DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
        PORT: '9090',
        WAMETER_APP_SECRETS: 'secret-a, secret-b',
        WAMETER_VERIFY_TOKEN: 'tok',
        WAMETER_API_KEYS: 'k1=W1+W2,k2=*',
        WAMETER_ACCOUNTS: accounts,
        WAMETER_RATE_LIMIT: '10/20',
        WAMETER_BODY_LIMIT: '1000',
      },
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value).toMatchObject({
      db: 'postgres://postgres@127.0.0.1:5432/test',
      port: 9090,
      appSecrets: ['secret-a', 'secret-b'],
      verifyToken: 'tok',
      accountsPath: accounts,
      rateLimit: { perSecond: 10, burst: 20 },
      bodyLimitBytes: 1000,
    });
    expect(result.value.apiKeys).toEqual([
      { name: apiKeyName('k1'), key: 'k1', wabas: ['W1', 'W2'] },
      { name: apiKeyName('k2'), key: 'k2', wabas: '*' },
    ]);
  });

  it('WAMETER_DB wins over DATABASE_URL; the file wins over both; flags win over the file', () => {
    const env = { WAMETER_DB: 'sqlite:env.db', DATABASE_URL: 'sqlite:url.db', PORT: '1111' };
    expect(loadServiceConfig({ env })).toMatchObject({ value: { db: 'sqlite:env.db', port: 1111 } });
    const file = writeJson('precedence.json', { db: 'sqlite:file.db', port: 2222 });
    expect(loadServiceConfig({ env, configFile: file })).toMatchObject({
      value: { db: 'sqlite:file.db', port: 2222 },
    });
    expect(
      loadServiceConfig({ env, configFile: file, flags: { db: 'sqlite:flag.db', port: '3333' } }),
    ).toMatchObject({
      value: { db: 'sqlite:flag.db', port: 3333 },
    });
  });

  it('reads API keys from the config file as a list with names', () => {
    const file = writeJson('keys.json', { apiKeys: [{ name: 'acme', key: 'acme-secret', wabas: ['W1'] }] });
    expect(loadServiceConfig({ env: {}, configFile: file })).toMatchObject({
      value: { apiKeys: [{ name: 'acme', key: 'acme-secret', wabas: ['W1'] }] },
    });
  });

  it('turns the rate limit off with "off"', () => {
    expect(loadServiceConfig({ env: { WAMETER_RATE_LIMIT: 'off' } })).toMatchObject({
      value: { rateLimit: null },
    });
  });

  it.each([
    [{ PORT: 'eighty' }, 'port must be a whole number'],
    [{ PORT: '70000' }, 'port must be a whole number'],
    [{ WAMETER_API_KEYS: 'justakey' }, 'WAMETER_API_KEYS: item 1 is not KEY=WABA+WABA'],
    [{ WAMETER_API_KEYS: 'k=W1+' }, 'empty WABA'],
    [{ WAMETER_API_KEYS: 'k=W1,k=W2' }, 'listed twice'],
    [
      { WAMETER_ACCOUNTS: '/nonexistent/accounts.json' },
      'accounts file "/nonexistent/accounts.json" cannot be read',
    ],
    [{ WAMETER_RATE_CARDS: '/nonexistent/cards' }, 'rate card path'],
    [{ WAMETER_DB: 'mysql://x' }, 'database must be sqlite:PATH or postgres://'],
    // docs/storage.md: "Anything else is refused with an error naming the scheme" (and where it was set).
    [{ WAMETER_DB: 'mysql://u:Hush@h/db' }, 'not a "mysql:" URL (fix WAMETER_DB)'],
    [{ DATABASE_URL: 'Redis://h' }, 'not a "redis:" URL (fix DATABASE_URL)'],
    [{ WAMETER_DB: 'POSTGRES://u:pw@h/db' }, 'names its scheme in capitals'],
    [{ WAMETER_DB: 'SQLite:./w.db' }, 'write it in lower case, sqlite:PATH or postgres://'],
    [{ WAMETER_RATE_LIMIT: 'fast' }, 'WAMETER_RATE_LIMIT must be "off"'],
    [{ WAMETER_LOG_LEVEL: 'loud' }, 'WAMETER_LOG_LEVEL must be one of'],
    [{ WAMETER_BODY_LIMIT: '-1' }, 'WAMETER_BODY_LIMIT must be a positive whole number'],
  ])('refuses %j with a message that says what to fix', (env, message) => {
    const result = loadServiceConfig({ env });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('BAD_CONFIG');
    expect(result.error.problems.join('\n')).toContain(message);
    expect(result.error.problems.join('\n')).not.toContain('Hush'); // a password is never shown
  });

  it('bounds the connections open at once: 10,000 by default, WAMETER_MAX_CONNECTIONS or the file\'s "maxConnections"', () => {
    expect(loadServiceConfig({ env: {} })).toMatchObject({ value: { maxConnections: 10_000 } });
    expect(loadServiceConfig({ env: { WAMETER_MAX_CONNECTIONS: '500' } })).toMatchObject({
      value: { maxConnections: 500 },
    });
    const file = writeJson('connections.json', { maxConnections: 2000 });
    expect(loadServiceConfig({ env: { WAMETER_MAX_CONNECTIONS: '500' }, configFile: file })).toMatchObject({
      value: { maxConnections: 2000 },
    });
    for (const [env, value] of [
      [{ WAMETER_MAX_CONNECTIONS: '0' }, undefined],
      [{ WAMETER_MAX_CONNECTIONS: 'lots' }, undefined],
      [{}, -5],
      [{}, 'many'],
    ] as const) {
      const result = loadServiceConfig({
        env,
        ...(value === undefined
          ? {}
          : { configFile: writeJson('bad-connections.json', { maxConnections: value }) }),
      });
      expect(result.ok ? '' : result.error.problems.join('\n')).toMatch(
        /(WAMETER_MAX_CONNECTIONS|config file "maxConnections") must be a positive whole number \(connections open at once\)/,
      );
    }
    const described = loadServiceConfig({ env: { WAMETER_MAX_CONNECTIONS: '500' } });
    if (!described.ok) throw new Error(described.error.problems.join('\n'));
    expect(describeConfig(described.value)).toMatchObject({ maxConnections: 500 });
  });

  it('lists every problem at once', () => {
    const result = loadServiceConfig({ env: { PORT: 'x', WAMETER_LOG_LEVEL: 'y' } });
    expect(result.ok ? [] : result.error.problems).toHaveLength(2);
  });

  it('says where a config file is not JSON without quoting its text, which holds secrets', () => {
    // JSON.parse's own message quoted the text around the mistake: `Unexpected token 'V', ..."fyToken":
    // VTOKsecret"... is not valid JSON` — a secret left without its double quotes went to stderr and the journal.
    const cases = [
      {
        text: '{\n  "port": 8081,\n  "verifyToken": VTOKsecret\n}\n',
        secret: 'VTOKsecret',
        at: 'line 3, column 18',
      },
      { text: '{"appSecrets": [app-secret]}', secret: 'app-secret', at: 'line 1, column 17' },
      { text: '{"appSecrets": ["s3cr3t",]}', secret: 's3cr3t', at: 'line 1, column 26' },
      { text: '{"apiKeys": "k3y-3=*" "x"}', secret: 'k3y-3', at: 'line 1, column 23' },
      { text: 'apikey-4=*', secret: 'apikey-4', at: 'line 1, column 1' },
    ];
    for (const [index, { text, secret, at }] of cases.entries()) {
      const path = writeJson(`leak-${index}.json`, text);
      const result = loadServiceConfig({ env: {}, configFile: path });
      const problems = result.ok ? [] : result.error.problems;
      expect(problems.length, text).toBeGreaterThan(0);
      for (const problem of problems) expect(problem, text).not.toContain(secret);
      expect(problems[0]).toBe(
        `config file ${JSON.stringify(path)} is not valid JSON at ${at}: ${jsonSyntaxError(text)!.problem} (its text is not shown: it may hold secrets)`,
      );
    }
  });

  it('refuses an unreadable, invalid or unknown-keyed config file', () => {
    const missing = loadServiceConfig({ env: {}, configFile: join(dir, 'nope.json') });
    expect(missing.ok ? '' : missing.error.problems[0]).toContain('cannot be read');
    const invalid = loadServiceConfig({ env: {}, configFile: writeJson('bad.json', '{port: 1') });
    expect(invalid.ok ? '' : invalid.error.problems[0]).toContain('not valid JSON');
    const unknown = loadServiceConfig({ env: {}, configFile: writeJson('unknown.json', { prot: 1 }) });
    expect(unknown.ok ? '' : unknown.error.problems[0]).toContain('unknown setting "prot"');
    // A slip names the setting meant, in any case; a word near none (or near two alike) names none.
    for (const [key, meant] of [
      ['prot', 'port'],
      ['acounts', 'accounts'],
      ['RateCards', 'rateCards'],
      ['apikeys', 'apiKeys'],
      ['loudness', undefined],
    ] as const) {
      const typo = loadServiceConfig({ env: {}, configFile: writeJson(`typo-${key}.json`, { [key]: 1 }) });
      const problem = typo.ok ? '' : typo.error.problems[0]!;
      if (meant === undefined) expect(problem).not.toContain('did you mean');
      else expect(problem).toContain(`unknown setting "${key}" (did you mean "${meant}"? known: db, port`);
    }
    // A key given twice: JSON would keep the last copy (a second "apiKeys" list dropping the first's keys).
    const twice = writeJson(
      'twice.json',
      '{"port":8081,"apiKeys":[{"name":"a","key":"k-a-123456789","wabas":"*"}],"apiKeys":[]}',
    );
    const repeated = loadServiceConfig({ env: {}, configFile: twice });
    expect(repeated.ok ? [] : repeated.error.problems).toEqual([
      `config file ${JSON.stringify(twice)}: key "apiKeys" is given twice at the top level; JSON would keep only the last copy: give each key once`,
    ]);
  });

  it('says that an accounts file given as the config file is one, and where it goes', () => {
    const accounts = writeJson('accounts.json', {
      accounts: [{ waba: '291612946114990', timezone: 'Asia/Kolkata', currency: 'USD' }],
    });
    const result = loadServiceConfig({ env: {}, configFile: accounts });
    expect(result.ok ? [] : result.error.problems).toEqual([
      `config file "accounts" is a list of accounts: ${JSON.stringify(accounts)} looks like an accounts file (contract §2), not a configuration; a configuration names its accounts file by path ("accounts": "accounts.json"), or give it as WAMETER_ACCOUNTS`,
    ]);
  });

  it('refuses a config file that is not UTF-8, naming the byte: a key holding it would never match', () => {
    const path = writeJson('latin1.json', '');
    writeFileSync(path, Buffer.from('{\n  "apiKeys": "cl\u00e9=*"\n}', 'latin1'));
    const result = loadServiceConfig({ env: {}, configFile: path });
    expect(result.ok ? [] : result.error.problems).toEqual([
      `config file ${JSON.stringify(path)} is not UTF-8: line 2, column 17 holds byte 0xE9 (offset 18), which starts no UTF-8 character, so it cannot be read as written; save the file as UTF-8 (from Windows-1252 or Latin-1: iconv -f WINDOWS-1252 -t UTF-8 FILE)`,
    ]);
  });

  it('reads a config file that starts with a UTF-8 byte-order mark (Notepad saves one), as the accounts file', () => {
    const path = writeJson(
      'bom.json',
      '\ufeff{"port": 2345, "apiKeys": [{"name": "a", "key": "k-a-123456789", "wabas": "*"}]}',
    );
    const result = loadServiceConfig({ env: {}, configFile: path });
    expect(result.ok ? result.value : result.error.problems).toMatchObject({
      port: 2345,
      apiKeys: [expect.objectContaining({ name: 'a', wabas: '*' })],
    });
  });

  it('never quotes a secret in its problems', () => {
    const result = loadServiceConfig({ env: { WAMETER_API_KEYS: 'supersecretkey', PORT: 'x' } });
    expect(JSON.stringify(result)).not.toContain('supersecretkey');
  });

  /** The problems of a config file holding `value`, joined; '' when it loads. */
  function fileProblems(name: string, value: unknown, env: Record<string, string> = {}): string {
    const result = loadServiceConfig({ env, configFile: writeJson(name, value) });
    return result.ok ? '' : result.error.problems.join('\n');
  }

  it.each([
    [{}, 'config file "rateLimit" must give "perSecond"'],
    [[], 'config file "rateLimit" must be {"perSecond": N, "burst"?: N}, false (no limit), "N" or "N/BURST"'],
    [{ persecond: 5 }, 'config file "rateLimit": unknown key "persecond" (known: perSecond, burst)'],
    [{ perSecond: 5, brust: 10 }, 'config file "rateLimit": unknown key "brust" (known: perSecond, burst)'],
    [{ burst: 10 }, 'config file "rateLimit" must give "perSecond"'],
    [{ perSecond: 0 }, 'config file "rateLimit".perSecond must be a positive whole number'],
    [
      null,
      'config file "rateLimit" must be {"perSecond": N, "burst"?: N}, or false to turn the limit off, not null',
    ],
  ])('refuses the file\'s "rateLimit": %j, never starting with the default limit', (rateLimit, message) => {
    expect(fileProblems('rate-limit.json', { rateLimit })).toContain(message);
  });

  it('still reads the file\'s "rateLimit" as {perSecond, burst?} or false', () => {
    const read = (rateLimit: unknown) =>
      loadServiceConfig({ env: {}, configFile: writeJson('rate-limit-ok.json', { rateLimit }) });
    expect(read({ perSecond: 5 })).toMatchObject({ value: { rateLimit: { perSecond: 5, burst: 10 } } });
    expect(read({ perSecond: 5, burst: 7 })).toMatchObject({
      value: { rateLimit: { perSecond: 5, burst: 7 } },
    });
    expect(read(false)).toMatchObject({ value: { rateLimit: null } });
  });

  it('the file\'s "rateLimit" wins over WAMETER_RATE_LIMIT, so a bad environment value it overrides is no problem', () => {
    const file = writeJson('rate-limit-wins.json', { rateLimit: { perSecond: 5 } });
    expect(loadServiceConfig({ env: { WAMETER_RATE_LIMIT: 'lots' }, configFile: file })).toMatchObject({
      ok: true,
      value: { rateLimit: { perSecond: 5, burst: 10 } },
    });
    const off = writeJson('rate-limit-off.json', { rateLimit: false });
    expect(loadServiceConfig({ env: { WAMETER_RATE_LIMIT: 'lots' }, configFile: off })).toMatchObject({
      ok: true,
      value: { rateLimit: null },
    });
    // Without it in the file, the environment's value is read, and checked.
    expect(fileProblems('rate-limit-none.json', {}, { WAMETER_RATE_LIMIT: 'lots' })).toContain(
      'WAMETER_RATE_LIMIT must be "off"',
    );
  });

  it('refuses an unknown field of an "apiKeys" item (a misspelt "name" would log the key by its hash)', () => {
    const problems = fileProblems('key-typo.json', {
      apiKeys: [{ key: 'a-secret-key', wabas: ['W1'], nam: 'acme' }],
    });
    expect(problems).toContain('config file "apiKeys"[0]: unknown field "nam" (known: name, key, wabas)');
    expect(problems).not.toContain('a-secret-key');
    // A field name as long as a key is not quoted: it may be one, written where the name goes.
    const long = fileProblems('key-as-field.json', {
      apiKeys: [{ key: 'k', wabas: '*', 'a-long-secret-written-as-a-field': 'acme' }],
    });
    expect(long).toContain('config file "apiKeys"[0]: an unknown field of 32 characters');
    expect(long).not.toContain('a-long-secret-written-as-a-field');
  });

  it('refuses two API keys with one name: their units\' "source" (api:NAME) could not tell them apart', () => {
    const problems = fileProblems('same-name.json', {
      apiKeys: [
        { name: 'acme', key: 'k1', wabas: ['W1'] },
        { name: 'other', key: 'k3', wabas: ['W3'] },
        { name: 'acme', key: 'k2', wabas: '*' },
      ],
    });
    expect(problems).toContain(
      'config file "apiKeys"[2]."name" "acme" is also the name of item 0: give each key its own name',
    );
    expect(problems).not.toMatch(/k1|k2/);
  });
});

describe('an API key that could never be sent as "Authorization: Bearer <key>"', () => {
  // A space splits the header's token; a character outside ASCII arrives as other bytes: 401 every time.
  it.each([
    ['my key', 'a space'],
    ['cl\u00e9-secr\u00e8te', 'a character that is not ASCII'],
    ['tab\tkey', 'a space'],
    ['bell\u0007key', 'a control character'],
  ])('refuses %j at start, naming its place and name, never the key', (key, holds) => {
    const fromFile = loadServiceConfig({
      env: {},
      configFile: writeJson('unsendable-key.json', { apiKeys: [{ name: 'ops', key, wabas: '*' }] }),
    });
    const fileProblems = fromFile.ok ? [] : fromFile.error.problems;
    expect(fileProblems).toEqual([
      `config file "apiKeys"[0]: the API key named "ops" holds ${holds}, so it could never be sent as "Authorization: Bearer <key>" (it would always get 401): use only visible ASCII characters — letters, digits and punctuation such as - _ . ~ + / = — with no spaces`,
    ]);
    const fromEnv = loadServiceConfig({ env: { WAMETER_API_KEYS: `ok-key=*,${key}=W1` } });
    const envProblems = fromEnv.ok ? [] : fromEnv.error.problems;
    expect(envProblems).toHaveLength(1);
    expect(envProblems[0]).toMatch(
      new RegExp(`^WAMETER_API_KEYS: item 2: the API key named "${apiKeyName(key)}" holds ${holds}, so`),
    );
    for (const problem of [...fileProblems, ...envProblems]) {
      expect(problem).not.toContain(key);
      expect(problem).not.toMatch(/secr|bell|my key/);
    }
  });

  it('takes any visible ASCII, punctuation included', () => {
    const key = 'k!"#$%&\'()*+-./:;<>?@[\\]^_`{|}~0aZ';
    const result = loadServiceConfig({
      env: {},
      configFile: writeJson('punctuation-key.json', { apiKeys: [{ key, wabas: '*' }] }),
    });
    expect(result).toMatchObject({ ok: true, value: { apiKeys: [{ key }] } });
  });
});

describe('parseApiKeySpec', () => {
  it('parses KEY=W1+W2 and KEY=*', () => {
    const problems: string[] = [];
    expect(parseApiKeySpec('a=W1+W2, b=*', 'test', problems).map((k) => k.wabas)).toEqual([
      ['W1', 'W2'],
      '*',
    ]);
    expect(problems).toEqual([]);
  });

  it('splits key and WABAs at the LAST "=": base64 keys end in padding', () => {
    const problems: string[] = [];
    const keys = parseApiKeySpec('dGVzdGtleQ===111,YWJj=W1+W2,eHl6==*', 'test', problems);
    expect(problems).toEqual([]);
    expect(keys.map((k) => [k.key, k.wabas])).toEqual([
      ['dGVzdGtleQ==', ['111']],
      ['YWJj', ['W1', 'W2']],
      ['eHl6=', '*'],
    ]);
  });

  it('refuses WABA ids that are empty or hold spaces, and * mixed with WABAs', () => {
    for (const spec of ['k=W1+', 'k=W 1', 'k=*+W1', 'k==', 'k=W1+ +W2']) {
      const problems: string[] = [];
      expect(parseApiKeySpec(spec, 'WAMETER_API_KEYS', problems), spec).toEqual([]);
      expect(problems, spec).toHaveLength(1);
    }
  });
});

describe('the config file takes what the environment takes, with the same checks', () => {
  it('refuses an empty app secret instead of counting it as configured', () => {
    const result = loadServiceConfig({
      env: {},
      configFile: writeJson('empty-secret.json', { appSecrets: [''] }),
    });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.problems.join('\n')).toMatch(/appSecrets.*empty/);
    const spaces = loadServiceConfig({
      env: {},
      configFile: writeJson('blank-secret.json', { appSecrets: ['a', ' '] }),
    });
    expect(spaces.ok).toBe(false);
  });

  it('reads ["*"] as every WABA, and refuses * mixed with WABAs or ids with spaces', () => {
    const all = loadServiceConfig({
      env: {},
      configFile: writeJson('star.json', { apiKeys: [{ key: 'k1', wabas: ['*'] }] }),
    });
    expect(all).toMatchObject({ ok: true, value: { apiKeys: [{ key: 'k1', wabas: '*' }] } });
    for (const wabas of [['*', 'W1'], ['W 1'], [' W1']]) {
      const result = loadServiceConfig({
        env: {},
        configFile: writeJson('mixed.json', { apiKeys: [{ key: 'k1', wabas }] }),
      });
      expect(result.ok, JSON.stringify(wabas)).toBe(false);
    }
    const spec = loadServiceConfig({
      env: {},
      configFile: writeJson('spec.json', { apiKeys: 'dGVzdGtleQ===111' }),
    });
    expect(spec).toMatchObject({ ok: true, value: { apiKeys: [{ key: 'dGVzdGtleQ==', wabas: ['111'] }] } });
  });
});

describe('a config file\'s "wabas" item that joins several WABAs ("W1,W2")', () => {
  /** The problems of a config file, joined; '' when it loads. */
  function fileProblems(name: string, content: unknown): string {
    const result = loadServiceConfig({ env: {}, configFile: writeJson(name, content) });
    return result.ok ? '' : result.error.problems.join('\n');
  }

  it.each([['W1,W2'], ['W1, W2'], ['W1+W2'], ['102290129340398,29161294611499']])(
    'refuses %j in an "apiKeys" item, telling to give each WABA as its own item (as WAMETER_API_KEYS splits it)',
    (joined) => {
      const problems = fileProblems('joined-key.json', {
        apiKeys: [{ name: 'acme', key: 'acme-secret-key', wabas: ['W0', joined] }],
      });
      expect(problems).toBe(
        `config file "apiKeys"[0]."wabas"[1] ${JSON.stringify(joined)} joins several WABAs in one item (a comma or +): give each WABA as its own item of the list, e.g. ["W1", "W2"]`,
      );
      expect(problems).not.toContain('acme-secret-key');
    },
  );

  it.each([['W1,W2'], ['W1 ,W2'], ['W1+W2']])(
    'refuses %j in a bound app secret\'s "wabas", never quoting the secret',
    (joined) => {
      const problems = fileProblems('joined-secret.json', {
        appSecrets: [{ secret: 'client-app-secret', wabas: [joined] }],
      });
      expect(problems).toBe(
        `config file "appSecrets"[0]."wabas"[0] ${JSON.stringify(joined)} joins several WABAs in one item (a comma or +): give each WABA as its own item of the list, e.g. ["W1", "W2"]`,
      );
      expect(problems).not.toContain('client-app-secret');
    },
  );

  it('still refuses an empty id or one with spaces, and takes each WABA given as its own item', () => {
    expect(fileProblems('empty-id.json', { apiKeys: [{ key: 'k1', wabas: ['W1', ''] }] })).toContain(
      'config file "apiKeys"[0]."wabas": has an empty WABA',
    );
    expect(fileProblems('space-id.json', { apiKeys: [{ key: 'k1', wabas: ['W 1'] }] })).toContain(
      'a WABA with spaces',
    );
    const split = loadServiceConfig({
      env: {},
      configFile: writeJson('split.json', {
        apiKeys: [{ key: 'k1', wabas: ['W1', 'W2'] }],
        appSecrets: [{ secret: 's1', wabas: ['W1', 'W2'] }],
      }),
    });
    expect(split).toMatchObject({
      ok: true,
      value: { apiKeys: [{ wabas: ['W1', 'W2'] }], appSecrets: [{ secret: 's1', wabas: ['W1', 'W2'] }] },
    });
    // The environment's form is unchanged: split at "," into keys, at "+" into WABAs.
    expect(loadServiceConfig({ env: { WAMETER_API_KEYS: 'k1=W1+W2,k2=W3' } })).toMatchObject({
      value: { apiKeys: [{ wabas: ['W1', 'W2'] }, { wabas: ['W3'] }] },
    });
  });
});

describe('the start-up warning about a WABA no one knows (a typo in a key\'s or bound secret\'s "wabas")', () => {
  const base = (overrides: Partial<ServiceConfig>): ServiceConfig => {
    const result = loadServiceConfig({ env: {} });
    if (!result.ok) throw new Error('the defaults load');
    return { ...result.value, ...overrides };
  };

  it('names each key by its place in the configuration and its name, never the key, with the unknown WABAs and what to check', () => {
    const file = writeJson('typo.json', {
      apiKeys: [
        { name: 'acme', key: 'acme-secret-key', wabas: ['291612946114990'] },
        { name: 'beta', key: 'beta-secret-key', wabas: ['291612946114990', '29161294611499', 'W9'] },
        { name: 'finance', key: 'finance-secret-key', wabas: '*' },
      ],
      appSecrets: [
        'plain-app-secret',
        { secret: 'bound-app-secret', wabas: ['291612946114990'] },
        { secret: 'typo-app-secret', wabas: ['29161294611499'] },
      ],
    });
    const result = loadServiceConfig({ env: {}, configFile: file });
    if (!result.ok) throw new Error(result.error.problems.join('\n'));
    const config = result.value;
    expect(config.apiKeyPlaces).toEqual([
      'config file "apiKeys"[0]',
      'config file "apiKeys"[1]',
      'config file "apiKeys"[2]',
    ]);
    expect(scopedWabas(config).sort()).toEqual(['29161294611499', '291612946114990', 'W9']);
    const known = new Set(['291612946114990']);
    const warnings = unknownWabaWarnings(config, (waba) => known.has(waba));
    expect(warnings.map((warning) => warning.fields)).toEqual([
      { apiKey: 'beta', place: 'config file "apiKeys"[1]', wabas: ['29161294611499', 'W9'] },
      { appSecret: 2, wabas: ['29161294611499'] },
    ]);
    expect(warnings[0]!.message).toBe(
      `the API key of config file "apiKeys"[1] (named "beta") names WABAs neither in the accounts file nor in the store: 29161294611499, W9; until events of them are stored, the key reads nothing there (empty totals, no account): check the ids for a typo (a digit missing?) against Meta's WhatsApp Manager and the accounts file (none is set: WAMETER_ACCOUNTS or the config file's "accounts"); if they are right, no event of those WABAs has arrived yet (this warning stops once one has)`,
    );
    expect(warnings[1]!.message).toMatch(
      /^the app secret of config file "appSecrets"\[2\] is bound to a WABA neither in the accounts file nor in the store: 29161294611499; a webhook it signs naming any other WABA is refused \(403 FORBIDDEN_WEBHOOK_WABA\): check the id for a typo .*; if it is right, no event of that WABA has arrived yet/,
    );
    expect(JSON.stringify(warnings)).not.toMatch(/secret-key|app-secret/);
    expect(unknownWabaWarnings(config, () => true)).toEqual([]);
  });

  it('names a key of WAMETER_API_KEYS by its item, and the accounts file when one is set', () => {
    const accounts = writeJson('typo-accounts.json', { accounts: [] });
    const result = loadServiceConfig({
      env: { WAMETER_API_KEYS: 'admin-key=*,client-key=W1+W2', WAMETER_ACCOUNTS: accounts },
    });
    if (!result.ok) throw new Error(result.error.problems.join('\n'));
    const [warning, ...others] = unknownWabaWarnings(result.value, (waba) => waba === 'W1');
    expect(others).toEqual([]);
    expect(warning!.fields).toEqual({
      apiKey: apiKeyName('client-key'),
      place: 'WAMETER_API_KEYS: item 2',
      wabas: ['W2'],
    });
    expect(warning!.message).toContain(
      `the API key of WAMETER_API_KEYS: item 2 (named "${apiKeyName('client-key')}") names a WABA neither in the accounts file nor in the store: W2;`,
    );
    expect(warning!.message).toContain(`and the accounts file (${accounts})`);
    expect(warning!.message).not.toContain('client-key=');
    // A configuration built in code (no places): the key by its number.
    const built = base({ apiKeys: [{ name: 'acme', key: 'k', wabas: ['W7'] }] });
    expect(unknownWabaWarnings(built, () => false)[0]!.message).toMatch(
      /^the API key of item 1 of "apiKeys" \(named "acme"\)/,
    );
  });
});

describe('app secrets bound to the WABAs they may sign for', () => {
  /** The problems of a config file holding `appSecrets`, joined; '' when it loads. */
  function secretProblems(appSecrets: unknown, env: Record<string, string> = {}): string {
    const result = loadServiceConfig({ env, configFile: writeJson('secrets.json', { appSecrets }) });
    return result.ok ? '' : result.error.problems.join('\n');
  }

  it('reads plain secrets (every WABA) and {"secret", "wabas"} items (those WABAs only) from the file', () => {
    const file = writeJson('bound-secrets.json', {
      appSecrets: ['provider-secret', { secret: 'client-secret', wabas: ['102290129340398', 'W2'] }],
    });
    expect(loadServiceConfig({ env: {}, configFile: file })).toMatchObject({
      ok: true,
      value: {
        appSecrets: ['provider-secret', { secret: 'client-secret', wabas: ['102290129340398', 'W2'] }],
      },
    });
  });

  it("takes plain secrets only from WAMETER_APP_SECRETS, and the file's list replaces them whole", () => {
    // A secret holding "=" is that secret, never KEY=WABA: binding is the config file's.
    expect(loadServiceConfig({ env: { WAMETER_APP_SECRETS: 'abc=W1, def' } })).toMatchObject({
      value: { appSecrets: ['abc=W1', 'def'] },
    });
    const file = writeJson('file-secrets.json', { appSecrets: [{ secret: 'bound', wabas: ['W1'] }] });
    expect(loadServiceConfig({ env: { WAMETER_APP_SECRETS: 'env-secret' }, configFile: file })).toMatchObject(
      { value: { appSecrets: [{ secret: 'bound', wabas: ['W1'] }] } },
    );
  });

  it.each([
    [
      { secret: 's1', wabas: ['W1'], waba: 'W2' },
      '"appSecrets"[0]: unknown field "waba" (known: secret, wabas)',
    ],
    [{ secret: '', wabas: ['W1'] }, '"appSecrets"[0]."secret" must be a non-empty string'],
    [{ secret: '  ', wabas: ['W1'] }, '"appSecrets"[0]."secret" must be a non-empty string'],
    [{ secret: 42, wabas: ['W1'] }, '"appSecrets"[0]."secret" must be a non-empty string'],
    [{ wabas: ['W1'] }, '"appSecrets"[0]."secret" must be a non-empty string'],
    [{ secret: 's1' }, '"appSecrets"[0]."wabas" must be a non-empty list of WABA ids'],
    [{ secret: 's1', wabas: [] }, '"appSecrets"[0]."wabas" must be a non-empty list of WABA ids'],
    [{ secret: 's1', wabas: 'W1' }, '"appSecrets"[0]."wabas" must be a non-empty list of WABA ids'],
    [{ secret: 's1', wabas: [102290129340398] }, '"appSecrets"[0]."wabas" must be a non-empty list'],
    [{ secret: 's1', wabas: ['*'] }, 'give it as a plain string instead of an object'],
    [{ secret: 's1', wabas: '*' }, 'give it as a plain string instead of an object'],
    [{ secret: 's1', wabas: ['W1', ''] }, '"appSecrets"[0]."wabas"[1] is not a WABA id'],
    [{ secret: 's1', wabas: ['W 1'] }, '"appSecrets"[0]."wabas"[0] is not a WABA id'],
    [
      { secret: 's1', wabas: ['W1', 'W2', 'W1'] },
      '"wabas"[2] repeats config file "appSecrets"[0]."wabas"[0]',
    ],
    [null, 'config file "appSecrets"[0] must be "SECRET" or {"secret": "SECRET", "wabas"'],
    [['s1'], 'config file "appSecrets"[0] must be "SECRET" or {"secret": "SECRET", "wabas"'],
  ])('refuses the item %j, saying what to fix', (item, message) => {
    expect(secretProblems([item])).toContain(message);
  });

  it('refuses "appSecrets" that is neither a list nor a string', () => {
    expect(secretProblems({ secret: 's1', wabas: ['W1'] })).toContain(
      'config file "appSecrets" must be a list of app secrets, each "SECRET" (signs for every WABA) or {"secret"',
    );
  });

  it.each([
    [
      ['s1', { secret: 's1', wabas: ['W1'] }],
      '"appSecrets"[1] is the same secret as config file "appSecrets"[0]',
    ],
    [
      [
        { secret: 's1', wabas: ['W1'] },
        { secret: 's1', wabas: ['W2'] },
      ],
      'list them all in its "wabas"',
    ],
    [['s1', 's2', 's1'], '"appSecrets"[2] is the same secret as config file "appSecrets"[0]'],
  ])('refuses a secret listed twice (%j): which item would a body it signs be held to?', (list, message) => {
    expect(secretProblems(list)).toContain(message);
  });

  it('refuses a secret listed twice in WAMETER_APP_SECRETS', () => {
    const result = loadServiceConfig({ env: { WAMETER_APP_SECRETS: 's1,s2,s1' } });
    expect(result.ok ? '' : result.error.problems.join('\n')).toContain(
      'WAMETER_APP_SECRETS: item 3 is the same secret as WAMETER_APP_SECRETS: item 1',
    );
  });

  it('never quotes a secret in its problems, even one written as a field name', () => {
    const problems = secretProblems([
      { secret: 'client-secret-1', wabas: [] },
      { secret: 'client-secret-2', wabas: ['W1'], 'a-long-secret-written-as-a-field': 1 },
      'client-secret-3',
      { secret: 'client-secret-3', wabas: ['W1'] },
    ]);
    expect(problems).toContain('an unknown field of 32 characters (not shown: it could be a secret)');
    expect(problems).not.toMatch(/client-secret|a-long-secret/);
  });
});

describe('redactUrl (every place a database URL is logged or put in a message)', () => {
  it('masks the password in the user info, even one holding "@"', () => {
    expect(redactUrl('postgres://postgres:p@ss@host/db')).toBe('postgres://postgres:***@host/db');
    expect(redactUrl('postgres://u:pw@h:5432/db')).toBe('postgres://u:***@h:5432/db');
    expect(redactUrl('postgres://u@h:5432/db')).toBe('postgres://u@h:5432/db');
  });

  it('masks query parameters that can hold secrets, and keeps the others', () => {
    const redacted = redactUrl(
      'postgres://postgres@127.0.0.1:5432/db?password=QuerySecretPw&sslpassword=KeyPw&sslkey=/k.pem&PGPASSWORD=x2&sslmode=require',
    );
    for (const secret of ['QuerySecretPw', 'KeyPw', '/k.pem', 'x2']) expect(redacted).not.toContain(secret);
    expect(redacted).toContain('sslmode=require');
    expect(redacted).toContain('password=***');
  });

  it('shows nothing after the scheme of a URL whose password an unencoded / cut into its path', () => {
    // Read as host "u", port 12, path "/Hush@127.0.0.1:1/db": the password is no password for the parser.
    const redacted = redactUrl('postgres://u:12/Hush@127.0.0.1:1/db');
    expect(redacted).toBe('postgres://(a URL whose user or password holds an unencoded /; not shown)');
  });

  it('prints only the scheme of a URL it cannot parse', () => {
    const redacted = redactUrl('postgres://u:secret@[bad-host/db');
    expect(redacted).not.toContain('secret');
    expect(redacted).toMatch(/^postgres:/);
  });

  it('leaves SQLite paths as they are', () => {
    expect(redactUrl('sqlite:./wameter.db')).toBe('sqlite:./wameter.db');
    expect(redactUrl('/var/lib/wameter.db')).toBe('/var/lib/wameter.db');
  });
});

describe('describeConfig (what the service logs at start)', () => {
  it('holds no secret, key, verify token or database password', () => {
    const result = loadServiceConfig({
      env: {
        WAMETER_DB: 'postgres://wameter:db-password-1@db:5432/prod',
        WAMETER_APP_SECRETS: 'app-secret-1,app-secret-2',
        WAMETER_VERIFY_TOKEN: 'verify-token-1',
        WAMETER_API_KEYS: 'api-key-1=W1,api-key-2=*',
      },
    });
    if (!result.ok) throw new Error(result.error.problems.join('\n'));
    const lines: string[] = [];
    const logger = createJsonLogger({ level: 'info', clock: () => 0, write: (line) => lines.push(line) });
    logger.info('configuration', describeConfig(result.value));
    const logged = lines.join('\n');
    for (const secret of [
      'db-password-1',
      'app-secret-1',
      'app-secret-2',
      'verify-token-1',
      'api-key-1',
      'api-key-2',
    ]) {
      expect(logged).not.toContain(secret);
    }
    expect(logged).toContain('postgres://wameter:***@db:5432/prod');
  });

  it("shows each app secret's WABAs, never the secret", () => {
    const file = writeJson('describe-secrets.json', {
      appSecrets: ['provider-secret-1', { secret: 'client-secret-1', wabas: ['W1', 'W2'] }],
    });
    const result = loadServiceConfig({ env: {}, configFile: file });
    if (!result.ok) throw new Error(result.error.problems.join('\n'));
    const described = describeConfig(result.value);
    expect(described).toMatchObject({ appSecrets: 2, appSecretWabas: ['*', ['W1', 'W2']] });
    expect(JSON.stringify(described)).not.toMatch(/provider-secret-1|client-secret-1/);
  });
});

describe('settings that name nothing, or cannot be read, are refused naming the setting', () => {
  const problemsOf = (input: Parameters<typeof loadServiceConfig>[0]): string => {
    const result = loadServiceConfig(input);
    return result.ok ? '' : result.error.problems.join('\n');
  };

  it('applies the reported rules unless WAMETER_REPORTED_RULES or the file\'s "reportedRules" says off', () => {
    const value = (input: Parameters<typeof loadServiceConfig>[0]) => {
      const result = loadServiceConfig(input);
      if (!result.ok) throw new Error(result.error.problems.join('; '));
      return result.value;
    };
    expect(value({ env: {} }).isReportedRulesEnabled).toBe(true);
    expect(describeConfig(value({ env: {} }))).toMatchObject({ reportedRules: 'on' });
    expect(value({ env: { WAMETER_REPORTED_RULES: 'off' } }).isReportedRulesEnabled).toBe(false);
    expect(value({ env: { WAMETER_REPORTED_RULES: 'ON' } }).isReportedRulesEnabled).toBe(true);
    const file = writeJson('reported-off.json', { reportedRules: false });
    // The file wins over the environment, as for every other setting.
    const fromFile = value({ env: { WAMETER_REPORTED_RULES: 'on' }, configFile: file });
    expect(fromFile.isReportedRulesEnabled).toBe(false);
    expect(describeConfig(fromFile)).toMatchObject({ reportedRules: 'off' });
    expect(problemsOf({ env: { WAMETER_REPORTED_RULES: 'no' } })).toBe(
      'WAMETER_REPORTED_RULES must be on or off (true or false), not "no"',
    );
    expect(problemsOf({ env: {}, configFile: writeJson('reported-bad.json', { reportedRules: 1 }) })).toBe(
      'config file "reportedRules" must be on or off (true or false), not 1',
    );
  });

  it.each([',', ' , ', ',,,'])(
    'refuses WAMETER_APP_SECRETS=%j: it names no secret (a start with none would refuse every webhook)',
    (value) => {
      expect(problemsOf({ env: { WAMETER_APP_SECRETS: value } })).toMatch(
        /^WAMETER_APP_SECRETS names no app secret .*: give the Meta app secrets, comma-separated, or leave it unset/,
      );
    },
  );

  it.each([
    ['secretA,,secretB', 'item 2'],
    [',secretA', 'item 1'],
    ['secretA,', 'item 2'],
  ])('refuses an empty item of WAMETER_APP_SECRETS=%j (%s), as the file refuses ""', (value, item) => {
    const problems = problemsOf({ env: { WAMETER_APP_SECRETS: value } });
    expect(problems).toContain(`WAMETER_APP_SECRETS: ${item} is empty`);
    expect(problems).not.toMatch(/secretA|secretB/);
  });

  it('still reads an unset or empty WAMETER_APP_SECRETS as none configured (the start-up warning says so)', () => {
    expect(loadServiceConfig({ env: { WAMETER_APP_SECRETS: '' } })).toMatchObject({
      value: { appSecrets: [] },
    });
    expect(loadServiceConfig({ env: {} })).toMatchObject({ value: { appSecrets: [] } });
  });

  it.each([
    ['WAMETER_API_KEYS', 'k1=W1,,k2=*', 'WAMETER_API_KEYS: item 2 is empty'],
    ['WAMETER_API_KEYS', 'k1=W1,', 'WAMETER_API_KEYS: item 2 is empty'],
    ['WAMETER_RATE_CARDS', ',cards', 'WAMETER_RATE_CARDS: item 1 is empty'],
  ])('refuses an empty item of %s (%s) as the app secrets are refused', (name, value, problem) => {
    const problems = problemsOf({ env: { [name]: value } });
    expect(problems).toContain(problem);
    expect(problems).not.toContain('k1=');
  });

  it.each([
    ['', 'config file "rateCards" names no rate card file or folder'],
    [' ', 'config file "rateCards" names no rate card file or folder'],
    [[], 'config file "rateCards" names no rate card file or folder'],
    [',', 'config file "rateCards": item 1 is empty (two commas in a row, or one at the start or end)'],
    [['', 'x'], 'config file "rateCards"[0] is empty: give a rate card file or folder, or remove it'],
  ])(
    'refuses the config file\'s "rateCards": %j, never starting on the bundled cards (not for billing)',
    (rateCards, problem) => {
      const problems = problemsOf({ env: {}, configFile: writeJson('empty-cards.json', { rateCards }) });
      expect(problems).toContain(problem);
    },
  );

  it('a config file\'s "rateCards" names its paths, and the environment\'s are read only without it', () => {
    const cards = join(dir, 'cards-dir');
    mkdirSync(cards, { recursive: true });
    const read = (rateCards: unknown, env: Record<string, string> = {}) =>
      loadServiceConfig({ env, configFile: writeJson('cards.json', { rateCards }) });
    expect(read(`${cards}, ${cards}`)).toMatchObject({ value: { rateCardPaths: [cards, cards] } });
    expect(read([cards], { WAMETER_RATE_CARDS: ',' })).toMatchObject({ value: { rateCardPaths: [cards] } });
    expect(loadServiceConfig({ env: { WAMETER_RATE_CARDS: '' } })).toMatchObject({
      value: { rateCardPaths: [] },
    });
  });

  it('reads the config file\'s comma-separated "appSecrets" string with the same checks', () => {
    expect(
      problemsOf({ env: {}, configFile: writeJson('comma-secrets.json', { appSecrets: 's1,s2' }) }),
    ).toBe('');
    expect(problemsOf({ env: {}, configFile: writeJson('commas.json', { appSecrets: ',' }) })).toMatch(
      /config file "appSecrets" names no app secret/,
    );
    expect(problemsOf({ env: {}, configFile: writeJson('gap.json', { appSecrets: 's1,,s2' }) })).toContain(
      'config file "appSecrets": item 2 is empty',
    );
  });

  it.each([
    [{ WAMETER_DB: 'postgres://wameter:Hush@db:port/prod' }, 'WAMETER_DB'],
    [{ DATABASE_URL: 'postgres://wameter:Hush@db:99999/prod' }, 'DATABASE_URL'],
  ])(
    'refuses a PostgreSQL URL that cannot be parsed, naming the setting, never the password (%j)',
    (env, name) => {
      const problems = problemsOf({ env });
      expect(problems).toMatch(new RegExp(`^the PostgreSQL URL of ${name} cannot be parsed`));
      expect(problems).not.toContain('Hush');
    },
  );

  it.each([
    [
      { DATABASE_URL: 'host=db.internal port=5432 dbname=wameter user=wameter password=Hush' },
      'DATABASE_URL',
    ],
    [{ WAMETER_DB: 'dbname=wameter password=Hush' }, 'WAMETER_DB'],
    [{ WAMETER_DB: ' postgres://wameter:Hush@db.internal/wameter' }, 'WAMETER_DB'],
    [{ DATABASE_URL: '\npostgres://wameter:Hush@db.internal/wameter' }, 'DATABASE_URL'],
  ])(
    'refuses a database that would be taken for a SQLite path but is meant for PostgreSQL, never showing it (%j)',
    (env, name) => {
      // Before, each was a SQLite file named after the text (created in the working folder), and the
      // start-up line logged it whole, password included.
      const problems = problemsOf({ env });
      expect(problems).toMatch(new RegExp(`^the database of ${name} `));
      expect(problems).not.toContain('Hush');
    },
  );

  it('still takes SQLite paths of every kind', () => {
    for (const db of [
      './wameter.db',
      '/var/lib/wameter/wameter.db',
      'data/host-a.db',
      'sqlite:./x=1.db',
      ':memory:',
    ])
      expect(problemsOf({ env: { WAMETER_DB: db } }), db).toBe('');
  });

  it('refuses a password an unencoded / cut into the path (its digits read as a port), never showing it', () => {
    const problems = problemsOf({ env: { DATABASE_URL: 'postgres://u:12/Hush@127.0.0.1:1/db' } });
    expect(problems).toMatch(/^the PostgreSQL URL of DATABASE_URL cannot be parsed/);
    expect(problems).not.toContain('Hush');
  });

  it('names --db and the config file "db" when they give the unparsable URL', () => {
    expect(problemsOf({ flags: { db: 'postgresql://u:Hush@[::1/x' } })).toMatch(
      /^the PostgreSQL URL of --db cannot be parsed/,
    );
    const file = writeJson('bad-db.json', { db: 'postgres://u:Hush@h:x/db' });
    expect(problemsOf({ env: {}, configFile: file })).toMatch(
      /^the PostgreSQL URL of the config file's "db" cannot be parsed/,
    );
  });

  it.each([
    'postgres://postgres@127.0.0.1:5432/test',
    'postgres://u:p@ss@host/db',
    'postgres://u:pa ss@host/db',
    'postgres://u@/db',
    'postgresql://u@host/db?options=-c%20search_path%3Dx',
  ])('takes %j, which the driver reads', (db) => {
    expect(problemsOf({ env: { WAMETER_DB: db } })).toBe('');
  });
});
