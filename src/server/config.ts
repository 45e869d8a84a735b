// The service's settings (contract.md §5), read ONCE at start from flags, a JSON config file and the
// environment (flags win over the file, the file over the environment), validated into one typed value.
// It never logs: secrets live only in the returned value; `describeConfig` is the loggable view.

import { jsonSyntaxError } from '../ingest/json-syntax-error.js';
import { repeatedJsonKey, repeatedKeyPlace } from '../ingest/repeated-json-key.js';
import { decodeUtf8File, notUtf8Words, withoutByteOrderMark } from '../ingest/utf8.js';
import { accessSync, constants, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { err, ok, type Result } from '../core/result.js';
import { closestName } from '../core/edit-distance.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export interface ApiKey {
  /** A loggable name for the key (never the key): from the config file, else `key_<8 hex of its SHA-256>`. */
  name: string;
  /** The secret bearer token. */
  key: string;
  /** The WABAs this key may read and write; `'*'` = every WABA. */
  wabas: readonly string[] | '*';
}

/**
 * A Meta app secret. A plain string may sign webhooks naming any WABA (as every secret could before bindings
 * existed); a bound one only webhooks whose every WABA is one of `wabas` — for a provider whose Meta apps
 * include a client's, who knows that app's secret and must not be able to sign for another client's WABA.
 */
export type AppSecret = string | BoundAppSecret;

export interface BoundAppSecret {
  secret: string;
  /** The WABAs whose webhooks this secret may sign: never empty, each once. */
  wabas: readonly string[];
}

export interface RateLimitConfig {
  /** Sustained requests per second per client IP. */
  perSecond: number;
  /** Requests a client may send at once before being limited. */
  burst: number;
}

export interface ServiceConfig {
  /** `sqlite:PATH` or `postgres://…`. */
  db: string;
  port: number;
  host: string;
  /** Each secret once (config files and the environment are refused otherwise). */
  appSecrets: readonly AppSecret[];
  verifyToken: string | null;
  apiKeys: readonly ApiKey[];
  accountsPath: string | null;
  /** Rate card files or folders; empty = the bundled cards. */
  rateCardPaths: readonly string[];
  /**
   * Apply the rules pricing-rules.md marks as reported by third parties (the PMP-2026-10 era, its market
   * splits), as `wameter rate` does unless `--no-reported`. Always set by `loadServiceConfig` (default true);
   * a configuration built in code may leave it out: true.
   */
  isReportedRulesEnabled?: boolean;
  /** Largest request body accepted (webhooks and /v1/events). */
  bodyLimitBytes: number;
  /** Per-IP token bucket on /webhooks and /v1; `null` = no limit. */
  rateLimit: RateLimitConfig | null;
  logLevel: LogLevel;
  /** How long live re-rating waits to batch arrivals. */
  ratingDebounceMs: number;
  /**
   * The most connections open at once: Node closes any further one as it is accepted, unanswered
   * (`server.maxConnections`), so that no number of idle connections exhausts the process's file descriptors.
   * Always set by `loadServiceConfig`; a configuration built in code may leave it out: DEFAULT_MAX_CONNECTIONS.
   */
  maxConnections?: number;
  /**
   * Where each of `apiKeys` was given, as problems name it (`config file "apiKeys"[1]`, `WAMETER_API_KEYS: item
   * 2`), for the start's warnings: never the key. Set by `loadServiceConfig`; a configuration built in code may
   * leave it out (a key is then named `item N of "apiKeys"`).
   */
  apiKeyPlaces?: readonly string[];
}

/** What the command line gave (every field optional; undefined = not given). */
export interface ServiceFlags {
  db?: string;
  port?: string | number;
  host?: string;
  logLevel?: string;
}

export interface ConfigError {
  code: 'BAD_CONFIG';
  /** One line per problem, each saying what to fix. */
  problems: string[];
}

export const DEFAULT_DB = 'sqlite:./wameter.db';
/** Where the database is set, as errors about it name the settings to check (a config file's too). */
export const DB_SET_BY = '--db, WAMETER_DB, DATABASE_URL or the config file\'s "db"';
export const DEFAULT_PORT = 8080;
/** Meta batches up to ~1,000 statuses in one POST: 4 MiB leaves a wide margin. */
export const DEFAULT_BODY_LIMIT_BYTES = 4 * 1024 * 1024;
export const DEFAULT_RATE_LIMIT: RateLimitConfig = { perSecond: 100, burst: 200 };
/**
 * Connections open at once. Meta delivers over a few connections and API clients use a handful each, so
 * 10,000 only stops a flood of idle ones: 20,000 connections sending headers alone used up the file
 * descriptors of a process limited to 20,000 (docs/service.md, "Limits"), and signed webhooks got no answer.
 */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** The JSON config file (`--config FILE`); every field optional. */
interface ConfigFile {
  db?: unknown;
  port?: unknown;
  host?: unknown;
  appSecrets?: unknown;
  verifyToken?: unknown;
  apiKeys?: unknown;
  accounts?: unknown;
  rateCards?: unknown;
  bodyLimitBytes?: unknown;
  rateLimit?: unknown;
  reportedRules?: unknown;
  logLevel?: unknown;
  ratingDebounceMs?: unknown;
  maxConnections?: unknown;
}

const FILE_KEYS = new Set([
  'db',
  'port',
  'host',
  'appSecrets',
  'verifyToken',
  'apiKeys',
  'accounts',
  'rateCards',
  'bodyLimitBytes',
  'rateLimit',
  'reportedRules',
  'logLevel',
  'ratingDebounceMs',
  'maxConnections',
]);

export function apiKeyName(key: string): string {
  return `key_${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;
}

/**
 * A WABA id as a key's scope may name it: Meta's ids are digits; at least never empty, `*`, `=` or spaces, nor
 * the environment's separators `,` and `+` (`k=W1+W2,k2=W3`): an id never holds them.
 */
function isWabaId(text: string): boolean {
  return /^[^\s=*,+]+$/.test(text);
}

/**
 * Whether each item of a config file's `wabas` list is one WABA: `["W1,W2"]` (or `["W1+W2"]`, the
 * environment's way to join them) would otherwise be taken as a WABA id "W1,W2" that no event ever names —
 * the key or secret would then read or sign nothing, without a word. Said first, before the other checks of
 * an id, so that `["W1, W2"]` is told to be split rather than to lose its space.
 */
function isOneWabaEach(wabas: readonly string[], where: string, problems: string[]): boolean {
  const joinedAt = wabas.findIndex((waba) => /[,+]/.test(waba));
  if (joinedAt < 0) return true;
  problems.push(
    `${where}[${joinedAt}] ${JSON.stringify(wabas[joinedAt])} joins several WABAs in one item (a comma or +): give each WABA as its own item of the list, e.g. ["W1", "W2"]`,
  );
  return false;
}

/**
 * A key's WABAs: `*` alone = every WABA; otherwise WABA ids. The environment and the config file give them
 * the same meaning and the same checks. Problems never quote the key.
 */
function scopeOf(
  wabas: readonly string[],
  where: string,
  problems: string[],
): readonly string[] | '*' | undefined {
  if (wabas.length === 1 && wabas[0] === '*') return '*';
  if (wabas.length === 0 || !wabas.every(isWabaId)) {
    problems.push(
      `${where}: has an empty WABA, a WABA with spaces or =, or mixes * (every WABA) with WABAs; use W1+W2 (in a file: ["W1","W2"]) or *`,
    );
    return undefined;
  }
  return wabas;
}

/**
 * `key1=W1+W2,key2=*` → keys. Key and WABAs are split at the LAST `=`: a key may end in base64 padding
 * (`dGVzdGtleQ===W1`), a WABA id never holds `=`. Problems never quote the key itself.
 */
export function parseApiKeySpec(spec: string, where: string, problems: string[]): ApiKey[] {
  const keys: ApiKey[] = [];
  const items = commaItems(spec, where, problems);
  items.forEach((item, index) => {
    if (item === '') return; // said by commaItems
    const eq = item.lastIndexOf('=');
    const key = eq < 0 ? '' : item.slice(0, eq).trim();
    const scopeText = eq < 0 ? '' : item.slice(eq + 1).trim();
    if (key === '' || scopeText === '') {
      problems.push(
        `${where}: item ${index + 1} is not KEY=WABA+WABA or KEY=* (example: WAMETER_API_KEYS="s3cret=102290129340398,admin=*")`,
      );
      return;
    }
    const wabas = scopeOf(
      scopeText.split('+').map((w) => w.trim()),
      `${where}: item ${index + 1}`,
      problems,
    );
    if (wabas === undefined) return;
    if (!isSendableKey(key, `${where}: item ${index + 1}`, apiKeyName(key), problems)) return;
    keys.push({ name: apiKeyName(key), key, wabas });
  });
  return keys;
}

/**
 * Whether `key` can be sent as `Authorization: Bearer <key>`: one token of visible ASCII (`!` to `~`), as the
 * /v1 check reads it (app.ts). A space splits the token, and a character outside ASCII arrives as other
 * bytes (a header is read as Latin-1, a client sends UTF-8): such a key would be answered 401 every time.
 * The problem names the key by its place and name, never the key nor the character.
 */
function isSendableKey(key: string, where: string, name: string, problems: string[]): boolean {
  if (/^[\x21-\x7e]+$/.test(key)) return true;
  const holds = /[^\x00-\x7f]/.test(key)
    ? 'a character that is not ASCII'
    : /[ \t]/.test(key)
      ? 'a space'
      : 'a control character';
  problems.push(
    `${where}: the API key named ${JSON.stringify(name)} holds ${holds}, so it could never be sent as "Authorization: Bearer <key>" (it would always get 401): use only visible ASCII characters — letters, digits and punctuation such as - _ . ~ + / = — with no spaces`,
  );
  return false;
}

/** The fields of an `apiKeys` item of the config file. */
const API_KEY_FIELDS: readonly string[] = ['name', 'key', 'wabas'];

/**
 * An unknown field of an `apiKeys` or `appSecrets` item, for a problem: quoted when short, as a misspelt field
 * name is; a longer one may be a key or secret written where a name goes, and is only measured.
 */
function fieldShown(field: string, secretNoun = 'a key'): string {
  return field.length <= 16
    ? `unknown field ${JSON.stringify(field)}`
    : `an unknown field of ${field.length} characters (not shown: it could be ${secretNoun})`;
}

function parseApiKeysFromFile(value: unknown, problems: string[]): ApiKey[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return parseApiKeySpec(value, 'config file "apiKeys"', problems);
  if (!Array.isArray(value)) {
    problems.push('config file "apiKeys" must be "KEY=W1+W2,…" or a list of {"key", "wabas", "name"?}');
    return undefined;
  }
  const keys: ApiKey[] = [];
  const namedAt = new Map<string, { index: number; key: string }>();
  value.forEach((item: unknown, index) => {
    const where = `config file "apiKeys"[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      problems.push(`${where} must be an object {"key", "wabas": ["W1"] or "*", "name"?}`);
      return;
    }
    // A field it does not know is refused, never ignored: a misspelt "name" would leave the key logged (and
    // its units' source named) by its hash.
    const unknown = Object.keys(item).filter((field) => !API_KEY_FIELDS.includes(field));
    if (unknown.length > 0) {
      for (const field of unknown) {
        problems.push(
          `${where}: ${fieldShown(field)} (known: ${API_KEY_FIELDS.join(', ')}); remove it or correct its name`,
        );
      }
      return;
    }
    const { key, wabas, name } = item as { key?: unknown; wabas?: unknown; name?: unknown };
    if (typeof key !== 'string' || key === '') {
      problems.push(`${where}."key" must be a non-empty string`);
      return;
    }
    let scope: readonly string[] | '*' | undefined;
    if (wabas === '*') scope = '*';
    else if (Array.isArray(wabas) && wabas.every((w) => typeof w === 'string')) {
      if (!isOneWabaEach(wabas as string[], `${where}."wabas"`, problems)) return;
      scope = scopeOf(wabas as string[], `${where}."wabas"`, problems);
      if (scope === undefined) return;
    } else {
      problems.push(`${where}."wabas" must be "*" or a non-empty list of WABA ids`);
      return;
    }
    if (name !== undefined && (typeof name !== 'string' || name === '')) {
      problems.push(`${where}."name" must be a non-empty string`);
      return;
    }
    const keyName = typeof name === 'string' ? name : apiKeyName(key);
    if (!isSendableKey(key, where, keyName, problems)) return;
    // The name is how the logs and the stored events' source (`api:NAME`) tell keys apart: one per key (the
    // same key twice is refused as such below).
    const other = namedAt.get(keyName);
    if (other !== undefined && other.key !== key) {
      problems.push(
        `${where}."name" ${JSON.stringify(keyName)} is also the name of item ${other.index}: give each key its own name (the logs and the stored source api:NAME tell keys apart by it)`,
      );
      return;
    }
    if (other === undefined) namedAt.set(keyName, { index, key });
    keys.push({ name: keyName, key, wabas: scope });
  });
  return keys;
}

/** The fields of an `appSecrets` item of the config file given as an object (a bound secret). */
const APP_SECRET_FIELDS: readonly string[] = ['secret', 'wabas'];

const APP_SECRETS_SHAPE =
  'a list of app secrets, each "SECRET" (signs for every WABA) or {"secret": "SECRET", "wabas": ["WABA id", …]} (signs for those WABAs only)';

/**
 * The config file's `appSecrets`: a comma-separated string or a list of plain secrets (as the environment
 * gives them: each may sign for every WABA), and in the list, objects binding a secret to the WABAs it may
 * sign for. Read strictly, as `apiKeys` is; problems never quote a secret.
 */
function parseAppSecretsFromFile(value: unknown, problems: string[]): AppSecret[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return plainSecrets(value, 'config file "appSecrets"', problems);
  if (!Array.isArray(value)) {
    problems.push(`config file "appSecrets" must be ${APP_SECRETS_SHAPE}`);
    return undefined;
  }
  const { secrets, add } = secretsOnce((index) => `config file "appSecrets"[${index}]`, problems);
  value.forEach((item: unknown, index) => {
    const where = `config file "appSecrets"[${index}]`;
    // An empty secret would verify nothing yet count as configured (and silence the start-up warning).
    if (typeof item === 'string') {
      if (item.trim() === '') problems.push(`${where} is empty: give the app secret or remove it`);
      else add(item, index);
      return;
    }
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      problems.push(`${where} must be "SECRET" or {"secret": "SECRET", "wabas": ["WABA id", …]}`);
      return;
    }
    // A field it does not know is refused, never ignored: a misspelt "wabas" would leave the secret unbound.
    const unknown = Object.keys(item).filter((field) => !APP_SECRET_FIELDS.includes(field));
    if (unknown.length > 0) {
      for (const field of unknown) {
        problems.push(
          `${where}: ${fieldShown(field, 'a secret')} (known: ${APP_SECRET_FIELDS.join(', ')}); remove it or correct its name`,
        );
      }
      return;
    }
    const { secret, wabas } = item as { secret?: unknown; wabas?: unknown };
    if (typeof secret !== 'string' || secret.trim() === '') {
      problems.push(`${where}."secret" must be a non-empty string (the Meta app's secret)`);
      return;
    }
    const bound = boundWabas(wabas, `${where}."wabas"`, problems);
    if (bound !== undefined) add({ secret, wabas: bound }, index);
  });
  return secrets;
}

/**
 * `s1,s2` (the environment's form): plain secrets, each signing for every WABA; never bound. Read as the
 * file's list is: a value that names no secret (`,`) is refused — it would start with none, refusing every
 * webhook while readiness says 200 — and so is an empty item (`a,,b`, `a,`), which the file refuses as `""`.
 * An unset or empty variable is no setting at all (none configured: the start-up warning says so).
 */
function plainSecrets(text: string, where: string, problems: string[]): string[] {
  const { secrets, add } = secretsOnce<string>((index) => `${where}: item ${index + 1}`, problems);
  if (text.trim() === '') return secrets;
  const items = text.split(',').map((item) => item.trim());
  if (items.every((item) => item === '')) {
    problems.push(
      `${where} names no app secret (only commas and spaces): give the Meta app secrets, comma-separated, or leave it unset to start without any (every webhook POST is then refused)`,
    );
    return secrets;
  }
  items.forEach((item, index) => {
    if (item === '') {
      problems.push(
        `${where}: item ${index + 1} is empty (two commas in a row, or one at the start or end): remove the extra comma`,
      );
    } else add(item, index);
  });
  return secrets;
}

/** The WABAs of a bound secret: a non-empty list of WABA ids, each once; never `*`. */
function boundWabas(value: unknown, where: string, problems: string[]): string[] | undefined {
  const isList = Array.isArray(value) && value.length > 0 && value.every((w) => typeof w === 'string');
  if (!isList || value.includes('*')) {
    problems.push(
      `${where} must be a non-empty list of WABA ids (["102290129340398", …]); to let a secret sign for every WABA, give it as a plain string instead of an object`,
    );
    return undefined;
  }
  const wabas = value as string[];
  if (!isOneWabaEach(wabas, where, problems)) return undefined;
  const badAt = wabas.findIndex((waba) => !isWabaId(waba));
  if (badAt >= 0) {
    problems.push(`${where}[${badAt}] is not a WABA id: it is empty or holds spaces, = or *`);
    return undefined;
  }
  const repeatedAt = wabas.findIndex((waba, index) => wabas.indexOf(waba) !== index);
  if (repeatedAt >= 0) {
    problems.push(
      `${where}[${repeatedAt}] repeats ${where}[${wabas.indexOf(wabas[repeatedAt]!)}]: give each WABA once`,
    );
    return undefined;
  }
  return wabas;
}

/**
 * A list of app secrets that takes each secret once: a body signed by a secret listed twice — bound in one
 * place, unbound or bound to other WABAs in another — would be held to whichever came first. `where(i)` names
 * item i of the setting, as the operator numbers them.
 */
function secretsOnce<T extends AppSecret>(where: (index: number) => string, problems: string[]) {
  const secrets: T[] = [];
  const firstAt = new Map<string, number>();
  const add = (entry: T, index: number): void => {
    const secret = typeof entry === 'string' ? entry : entry.secret;
    const first = firstAt.get(secret);
    if (first !== undefined) {
      problems.push(
        `${where(index)} is the same secret as ${where(first)}: give each secret once (to let a bound secret sign for more WABAs, list them all in its "wabas")`,
      );
      return;
    }
    firstAt.set(secret, index);
    secrets.push(entry);
  };
  return { secrets, add };
}

/**
 * The file's `rateCards`: a comma-separated string, read as WAMETER_RATE_CARDS is (an empty item refused by
 * its number), or a list of paths. A value that names no path (`""`, `" "`, `[]`) is refused, never read as
 * leaving the setting out: that would start on the bundled cards, which are not for billing (rate-cards.md).
 */
function rateCardPathsFromFile(value: unknown, where: string, problems: string[]): string[] | undefined {
  if (value === undefined) return undefined;
  const namesNoPath = `${where} names no rate card file or folder: give the paths (a list, or one string, comma-separated), or leave "rateCards" out to price with the bundled cards`;
  if (typeof value === 'string') {
    if (value.trim() === '') problems.push(namesNoPath);
    return commaItems(value, where, problems);
  }
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    problems.push(`${where} must be a string (comma-separated) or a list of strings`);
    return undefined;
  }
  if (value.length === 0) problems.push(namesNoPath);
  value.forEach((item: string, index) => {
    if (item.trim() === '')
      problems.push(`${where}[${index}] is empty: give a rate card file or folder, or remove it`);
  });
  return value as string[];
}

/**
 * The items of a comma-separated setting, trimmed and numbered from 1 as the operator counts them; an empty
 * item (`a,,b`, `a,`) is a problem, said once per item and kept as '' so that the others keep their numbers.
 * Nothing at all (an empty value) is no item.
 */
function commaItems(text: string, where: string, problems: string[]): string[] {
  if (text.trim() === '') return [];
  const items = text.split(',').map((item) => item.trim());
  items.forEach((item, index) => {
    if (item === '')
      problems.push(
        `${where}: item ${index + 1} is empty (two commas in a row, or one at the start or end): remove the extra comma`,
      );
  });
  return items;
}

function optionalString(value: unknown, where: string, problems: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value !== '') return value;
  problems.push(`${where} must be a non-empty string`);
  return undefined;
}

function parsePort(value: unknown, where: string, problems: string[]): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    problems.push(
      `${where}: port must be a whole number from 0 to 65535 (0 = any free port), not ${JSON.stringify(value)}`,
    );
    return undefined;
  }
  return port;
}

function parsePositiveInt(
  value: unknown,
  where: string,
  problems: string[],
  what: string,
): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  const number = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(number) || number <= 0) {
    problems.push(`${where} must be a positive whole number (${what}), not ${JSON.stringify(value)}`);
    return undefined;
  }
  return number;
}

const RATE_LIMIT_FIELDS: readonly string[] = ['perSecond', 'burst'];

/** `off`, `N` (per second, burst 2N) or `N/BURST`; or the file's `{perSecond, burst?}` / `false`. */
function parseRateLimit(
  value: unknown,
  where: string,
  problems: string[],
): RateLimitConfig | null | undefined {
  if (value === undefined) return undefined;
  if (value === false || value === 'off') return null;
  // What a template writes for a value it lacks: refused, never read as the least safe setting (no limit).
  if (value === null) {
    problems.push(
      `${where} must be {"perSecond": N, "burst"?: N}, or false to turn the limit off, not null; leave it out for the default (${DEFAULT_RATE_LIMIT.perSecond}/s, burst ${DEFAULT_RATE_LIMIT.burst})`,
    );
    return undefined;
  }
  if (Array.isArray(value)) {
    problems.push(
      `${where} must be {"perSecond": N, "burst"?: N}, false (no limit), "N" or "N/BURST", not ${JSON.stringify(value)}`,
    );
    return undefined;
  }
  if (typeof value === 'object') {
    // Every field known and `perSecond` given: an empty or misspelt object is refused, never read as the
    // default limit.
    const unknown = Object.keys(value).filter((field) => !RATE_LIMIT_FIELDS.includes(field));
    for (const field of unknown) {
      problems.push(
        `${where}: unknown key ${JSON.stringify(field)} (known: ${RATE_LIMIT_FIELDS.join(', ')}); example: {"perSecond": 50, "burst": 100}`,
      );
    }
    const { perSecond, burst } = value as { perSecond?: unknown; burst?: unknown };
    if (perSecond === undefined) {
      problems.push(
        `${where} must give "perSecond" (requests per second per client IP), e.g. {"perSecond": 50, "burst": 100}; false turns the limit off`,
      );
      return undefined;
    }
    if (unknown.length > 0) return undefined;
    const rate = parsePositiveInt(perSecond, `${where}.perSecond`, problems, 'requests per second');
    const size =
      burst === undefined ? rate && rate * 2 : parsePositiveInt(burst, `${where}.burst`, problems, 'burst');
    return rate && size ? { perSecond: rate, burst: size } : undefined;
  }
  const match = /^(\d+)(?:\/(\d+))?$/.exec(String(value).trim());
  if (!match || Number(match[1]) <= 0 || (match[2] !== undefined && Number(match[2]) <= 0)) {
    problems.push(
      `${where} must be "off", "N" or "N/BURST" (requests per second per client IP), not ${JSON.stringify(value)}`,
    );
    return undefined;
  }
  const perSecond = Number(match[1]);
  return { perSecond, burst: match[2] === undefined ? perSecond * 2 : Number(match[2]) };
}

function parseLogLevel(value: unknown, where: string, problems: string[]): LogLevel | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value))
    return value as LogLevel;
  problems.push(`${where} must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(value)}`);
  return undefined;
}

/**
 * Whether the PostgreSQL driver can read `url`, checked as it reads it (pg-connection-string: spaces and
 * stray `%` encoded first, a missing host allowed — the local socket), so that no URL it takes is refused.
 */
function isReadablePostgresUrl(url: string): boolean {
  const text = / |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(url)
    ? encodeURI(url).replace(/%25(\d\d)/g, '%$1')
    : url;
  for (const candidate of [text, text.replace('@/', '@___DUMMY___/')]) {
    try {
      new URL(candidate, 'postgres://base');
      return true;
    } catch {
      // Tried again with a host, as the driver does.
    }
  }
  return false;
}

/**
 * A URL whose path holds "@": an unencoded "/" in the user or password ended the host there —
 * `postgres://u:12/ss@host/db` reads as host `u`, port 12 and path `/ss@host/db` — so the password is in the
 * path, where nothing masks it. Never a database name anyone writes so.
 */
function hasCredentialsInPath(url: string): boolean {
  try {
    return new URL(url).pathname.includes('@');
  } catch {
    return false;
  }
}

/**
 * A libpq keyword/value connection string (`host=db password=… dbname=wameter`, as psql and psycopg take it):
 * taken as a bare path, it was a SQLite file of that name, and the password was logged with it.
 */
const LIBPQ_KEYWORD_VALUE = /(^|\s)(host|hostaddr|port|dbname|user|password|passfile|sslmode|service)\s*=/i;

function checkDb(db: string, setBy: string, problems: string[]): void {
  // Neither value is shown: it may hold a password.
  if (/^\s/.test(db)) {
    problems.push(
      `the database of ${setBy} starts with a space or a line break (not shown: it may hold a password): remove it — read as it stands, it is the path of a SQLite file, whatever follows`,
    );
    return;
  }
  if (!/^[a-z][a-z0-9+.-]+:/i.test(db) && LIBPQ_KEYWORD_VALUE.test(db)) {
    problems.push(
      `the database of ${setBy} is a libpq connection string of keywords (host=… dbname=…; not shown: it may hold a password), which wameter would take for the path of a SQLite file: write it as a URL, postgres://USER:PASSWORD@HOST:PORT/DB (percent-encode any @ : / ? # [ ] % in the user or password)`,
    );
    return;
  }
  if (/^postgres(ql)?:\/\//i.test(db) && (!isReadablePostgresUrl(db) || hasCredentialsInPath(db))) {
    // The URL itself is never repeated: it holds the password.
    problems.push(
      `the PostgreSQL URL of ${setBy} cannot be parsed (not shown: it may hold a password): write it as postgres://USER:PASSWORD@HOST:PORT/DB, the port a number up to 65535, and percent-encode any @ : / ? # [ ] % in the user or password (@ is %40)`,
    );
    return;
  }
  if (db.startsWith('sqlite:')) {
    if (db.length === 'sqlite:'.length)
      problems.push('database: "sqlite:" needs a path, e.g. sqlite:./wameter.db');
    return;
  }
  if (/^postgres(ql)?:\/\//.test(db)) return;
  if (/^(postgres(ql)?:\/\/|sqlite:)/i.test(db)) {
    problems.push(
      `the database of ${setBy} names its scheme in capitals (not shown: it may hold a password): write it in lower case, sqlite:PATH or postgres://USER@HOST:PORT/DB`,
    );
    return;
  }
  // Anything else with a scheme is a mistake; a bare path is a SQLite file (open-store.ts).
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(db)?.[1];
  if (scheme !== undefined && !/^[a-z]:[\\/]/i.test(db)) {
    problems.push(
      `database must be sqlite:PATH or postgres://USER@HOST:PORT/DB, not a "${scheme.toLowerCase()}:" URL (fix ${setBy})`,
    );
  }
}

function checkReadable(path: string, what: string, problems: string[]): void {
  try {
    accessSync(path, constants.R_OK);
  } catch {
    problems.push(`${what} ${JSON.stringify(path)} cannot be read: check the path and its permissions`);
  }
}

function readConfigFile(path: string, problems: string[]): ConfigFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    problems.push(`config file ${JSON.stringify(path)} cannot be read: check the --config path`);
    return {};
  }
  // A byte that is not UTF-8 would be read as U+FFFD: a secret or an API key holding it would never match.
  const decoded = decodeUtf8File(bytes);
  if (!decoded.ok) {
    problems.push(`config file ${JSON.stringify(path)} ${notUtf8Words(bytes, decoded.error)}`);
    return {};
  }
  // A mark Notepad puts first is no JSON: read past, as the accounts file is.
  const text = withoutByteOrderMark(decoded.value);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Said by line and column, never in JSON.parse's words: those quote the text around the mistake, and a
    // secret left without its double quotes (`"verifyToken": s3cret`) would be printed with them.
    const syntax = jsonSyntaxError(text);
    const where =
      syntax === undefined ? '' : ` at line ${syntax.line}, column ${syntax.column}: ${syntax.problem}`;
    problems.push(
      `config file ${JSON.stringify(path)} is not valid JSON${where} (its text is not shown: it may hold secrets)`,
    );
    return {};
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push(`config file ${JSON.stringify(path)} must hold a JSON object`);
    return {};
  }
  // JSON keeps a key's last copy: a second "apiKeys" would drop the first list's keys without a word.
  const repeated = repeatedJsonKey(text);
  if (repeated !== undefined) {
    problems.push(
      `config file ${JSON.stringify(path)}: key ${JSON.stringify(repeated.key)} is given twice ${repeatedKeyPlace(repeated)}; JSON would keep only the last copy: give each key once`,
    );
    return {};
  }
  for (const key of Object.keys(value)) {
    if (!FILE_KEYS.has(key)) {
      // A slip of the keyboard (`acounts`) names the setting meant: a list of twenty is hard to read for it.
      const meant = closestName(key, FILE_KEYS);
      const hint = meant === undefined ? '' : `did you mean "${meant}"? `;
      problems.push(`config file: unknown setting "${key}" (${hint}known: ${[...FILE_KEYS].join(', ')})`);
    }
  }
  return value as ConfigFile;
}

function envValue(env: Record<string, string | undefined>, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}

/**
 * Reads and validates every setting once. `configFile` is the `--config` path. The error lists every
 * problem at once, each naming the setting and how to fix it; it never quotes a secret.
 */
export function loadServiceConfig(input: {
  flags?: ServiceFlags;
  env?: Record<string, string | undefined>;
  configFile?: string;
}): Result<ServiceConfig, ConfigError> {
  const flags = input.flags ?? {};
  const env = input.env ?? {};
  const problems: string[] = [];
  const file = input.configFile === undefined ? {} : readConfigFile(input.configFile, problems);

  const dbSources: [string | undefined, string][] = [
    [optionalString(flags.db, '--db', problems), '--db'],
    [optionalString(file.db, 'config file "db"', problems), 'the config file\'s "db"'],
    [envValue(env, 'WAMETER_DB'), 'WAMETER_DB'],
    [envValue(env, 'DATABASE_URL'), 'DATABASE_URL'],
  ];
  const [db, dbSetBy] = (dbSources.find(([value]) => value !== undefined) as
    [string, string] | undefined) ?? [DEFAULT_DB, 'the default'];
  checkDb(db, dbSetBy, problems);

  const port =
    parsePort(flags.port, '--port', problems) ??
    parsePort(file.port, 'config file "port"', problems) ??
    parsePort(envValue(env, 'PORT'), 'PORT', problems) ??
    DEFAULT_PORT;

  const host =
    optionalString(flags.host, '--host', problems) ??
    optionalString(file.host, 'config file "host"', problems) ??
    envValue(env, 'WAMETER_HOST') ??
    '0.0.0.0';

  // The environment gives plain secrets only (each may sign for every WABA): a secret is bound to WABAs in
  // the config file, whose `appSecrets` then replaces the environment's whole list.
  const appSecrets =
    parseAppSecretsFromFile(file.appSecrets, problems) ??
    plainSecrets(envValue(env, 'WAMETER_APP_SECRETS') ?? '', 'WAMETER_APP_SECRETS', problems);

  const verifyToken =
    optionalString(file.verifyToken, 'config file "verifyToken"', problems) ??
    envValue(env, 'WAMETER_VERIFY_TOKEN') ??
    null;

  const envKeys = envValue(env, 'WAMETER_API_KEYS');
  const apiKeys =
    parseApiKeysFromFile(file.apiKeys, problems) ??
    (envKeys === undefined ? [] : parseApiKeySpec(envKeys, 'WAMETER_API_KEYS', problems));
  // Each key is item i of its setting (a configuration with a problem is refused whole: none is dropped).
  const apiKeyPlaces = apiKeys.map((_, index) =>
    file.apiKeys === undefined
      ? `WAMETER_API_KEYS: item ${index + 1}`
      : Array.isArray(file.apiKeys)
        ? `config file "apiKeys"[${index}]`
        : `config file "apiKeys": item ${index + 1}`,
  );
  const seen = new Set<string>();
  for (const apiKey of apiKeys) {
    if (seen.has(apiKey.key)) problems.push(`API key "${apiKey.name}" is listed twice; give each key once`);
    seen.add(apiKey.key);
  }

  // An accounts file given as --config: its "accounts" list would be refused as "not a string" alone.
  if (Array.isArray(file.accounts) && input.configFile !== undefined) {
    problems.push(
      `config file "accounts" is a list of accounts: ${JSON.stringify(input.configFile)} looks like an accounts file (contract §2), not a configuration; a configuration names its accounts file by path ("accounts": "accounts.json"), or give it as WAMETER_ACCOUNTS`,
    );
  }
  const accountsPath =
    (Array.isArray(file.accounts)
      ? undefined
      : optionalString(file.accounts, 'config file "accounts"', problems)) ??
    envValue(env, 'WAMETER_ACCOUNTS') ??
    null;
  if (accountsPath !== null) checkReadable(accountsPath, 'accounts file', problems);

  const rateCardPaths =
    rateCardPathsFromFile(file.rateCards, 'config file "rateCards"', problems) ??
    commaItems(envValue(env, 'WAMETER_RATE_CARDS') ?? '', 'WAMETER_RATE_CARDS', problems);
  // An empty item is a problem said above (the configuration is then refused): only the others are checked.
  for (const path of rateCardPaths) if (path.trim() !== '') checkReadable(path, 'rate card path', problems);

  const bodyLimitBytes =
    parsePositiveInt(file.bodyLimitBytes, 'config file "bodyLimitBytes"', problems, 'bytes') ??
    parsePositiveInt(envValue(env, 'WAMETER_BODY_LIMIT'), 'WAMETER_BODY_LIMIT', problems, 'bytes') ??
    DEFAULT_BODY_LIMIT_BYTES;

  // `null` (off) is an answer, not a missing value: only `undefined` falls through. The environment is read
  // (and checked) only when the file gives none, as for every other setting: the file wins.
  const fileRateLimit = parseRateLimit(file.rateLimit, 'config file "rateLimit"', problems);
  const envRateLimit =
    fileRateLimit === undefined
      ? parseRateLimit(envValue(env, 'WAMETER_RATE_LIMIT'), 'WAMETER_RATE_LIMIT', problems)
      : undefined;
  const rateLimit =
    fileRateLimit !== undefined
      ? fileRateLimit
      : envRateLimit !== undefined
        ? envRateLimit
        : DEFAULT_RATE_LIMIT;

  const isReportedRulesEnabled =
    parseOnOff(file.reportedRules, 'config file "reportedRules"', problems) ??
    parseOnOff(envValue(env, 'WAMETER_REPORTED_RULES'), 'WAMETER_REPORTED_RULES', problems) ??
    true;

  const logLevel =
    parseLogLevel(flags.logLevel, '--log-level', problems) ??
    parseLogLevel(file.logLevel, 'config file "logLevel"', problems) ??
    parseLogLevel(envValue(env, 'WAMETER_LOG_LEVEL'), 'WAMETER_LOG_LEVEL', problems) ??
    'info';

  const ratingDebounceMs =
    parsePositiveInt(file.ratingDebounceMs, 'config file "ratingDebounceMs"', problems, 'milliseconds') ??
    100;

  const maxConnections =
    parsePositiveInt(
      file.maxConnections,
      'config file "maxConnections"',
      problems,
      'connections open at once',
    ) ??
    parsePositiveInt(
      envValue(env, 'WAMETER_MAX_CONNECTIONS'),
      'WAMETER_MAX_CONNECTIONS',
      problems,
      'connections open at once',
    ) ??
    DEFAULT_MAX_CONNECTIONS;

  if (problems.length > 0) return err({ code: 'BAD_CONFIG', problems });
  return ok({
    db,
    port,
    host,
    appSecrets,
    verifyToken,
    apiKeys,
    accountsPath,
    rateCardPaths,
    isReportedRulesEnabled,
    bodyLimitBytes,
    rateLimit,
    logLevel,
    ratingDebounceMs,
    maxConnections,
    apiKeyPlaces,
  });
}

/** A warning for the start-up log: its message and its fields. */
export interface StartWarning {
  message: string;
  fields: Record<string, unknown>;
}

/**
 * Every WABA an API key limited to some WABAs or a bound app secret names, each once: those the start checks
 * against the WABAs it knows (`unknownWabaWarnings`).
 */
export function scopedWabas(config: ServiceConfig): string[] {
  const wabas = new Set<string>();
  for (const apiKey of config.apiKeys) if (apiKey.wabas !== '*') apiKey.wabas.forEach((w) => wabas.add(w));
  for (const secret of config.appSecrets)
    if (typeof secret !== 'string') secret.wabas.forEach((w) => wabas.add(w));
  return [...wabas];
}

/**
 * A warning for each API key and each bound app secret that names a WABA `isKnown` does not know (neither in
 * the accounts file nor among the store's WABAs): most likely a typo (a digit missing), which nothing else
 * would tell — the key reads `{"totals":{}}` and no account, and the secret's client's real webhooks are
 * refused. Each names the key or secret by its place in the configuration (and a key by its name), never
 * the key or the secret.
 */
export function unknownWabaWarnings(
  config: ServiceConfig,
  isKnown: (waba: string) => boolean,
): StartWarning[] {
  const accountsFile =
    config.accountsPath === null
      ? 'none is set: WAMETER_ACCOUNTS or the config file\'s "accounts"'
      : config.accountsPath;
  const describe = (unknown: readonly string[]) => {
    const one = unknown.length === 1;
    return {
      what: `${one ? 'a WABA' : 'WABAs'} neither in the accounts file nor in the store: ${unknown.join(', ')}`,
      check: `check ${one ? 'the id' : 'the ids'} for a typo (a digit missing?) against Meta's WhatsApp Manager and the accounts file (${accountsFile}); if ${one ? 'it is' : 'they are'} right, no event of ${one ? 'that WABA' : 'those WABAs'} has arrived yet (this warning stops once one has)`,
    };
  };
  const warnings: StartWarning[] = [];
  config.apiKeys.forEach((apiKey, index) => {
    if (apiKey.wabas === '*') return;
    const unknown = apiKey.wabas.filter((waba) => !isKnown(waba));
    if (unknown.length === 0) return;
    const place = config.apiKeyPlaces?.[index] ?? `item ${index + 1} of "apiKeys"`;
    const { what, check } = describe(unknown);
    warnings.push({
      message: `the API key of ${place} (named ${JSON.stringify(apiKey.name)}) names ${what}; until events of ${unknown.length === 1 ? 'it' : 'them'} are stored, the key reads nothing there (empty totals, no account): ${check}`,
      fields: { apiKey: apiKey.name, place, wabas: unknown },
    });
  });
  config.appSecrets.forEach((secret, index) => {
    if (typeof secret === 'string') return;
    const unknown = secret.wabas.filter((waba) => !isKnown(waba));
    if (unknown.length === 0) return;
    const { what, check } = describe(unknown);
    warnings.push({
      message: `the app secret of config file "appSecrets"[${index}] is bound to ${what}; a webhook it signs naming any other WABA is refused (403 FORBIDDEN_WEBHOOK_WABA): ${check}`,
      fields: { appSecret: index, wabas: unknown },
    });
  });
  return warnings;
}

/**
 * A switch: `on`/`off` or `true`/`false` in the environment, a JSON boolean (or those words) in the file;
 * undefined when not given, and a problem naming the setting for anything else.
 */
function parseOnOff(value: unknown, where: string, problems: string[]): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'boolean') return value;
  const word = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  if (word === 'on' || word === 'true') return true;
  if (word === 'off' || word === 'false') return false;
  problems.push(`${where} must be on or off (true or false), not ${JSON.stringify(value)}`);
  return undefined;
}

/** The configuration as it may be logged: secrets counted, never shown; the database password masked. */
export function describeConfig(config: ServiceConfig): Record<string, unknown> {
  return {
    db: redactUrl(config.db),
    port: config.port,
    host: config.host,
    appSecrets: config.appSecrets.length,
    // Each secret's WABAs in order (`*`: it may sign for every WABA), never the secret.
    appSecretWabas: config.appSecrets.map((entry) => (typeof entry === 'string' ? '*' : entry.wabas)),
    verifyToken: config.verifyToken === null ? 'none' : 'set',
    apiKeys: config.apiKeys.map((k) => ({ name: k.name, wabas: k.wabas })),
    accounts: config.accountsPath,
    rateCards: config.rateCardPaths.length === 0 ? 'bundled' : config.rateCardPaths,
    reportedRules: (config.isReportedRulesEnabled ?? true) ? 'on' : 'off',
    bodyLimitBytes: config.bodyLimitBytes,
    rateLimit: config.rateLimit ?? 'off',
    logLevel: config.logLevel,
    maxConnections: config.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
  };
}

/** Query parameters of a database URL that can hold a secret (libpq's `password`, `sslpassword`, …). */
const SECRET_PARAMETER = /pass|pwd|secret|token|sslkey|sslcert/i;

/**
 * A database URL as it may be logged or put in a message, read with the WHATWG URL parser (as the driver
 * reads it): the password of the user info and every query parameter that can hold a secret become `***`.
 * A URL with `//` that cannot be parsed is shown by its scheme only; SQLite paths hold no secret.
 */
export function redactUrl(url: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1];
  if (scheme === undefined) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${scheme}://(a URL that cannot be parsed; not shown)`;
  }
  if (hasCredentialsInPath(url))
    return `${scheme}://(a URL whose user or password holds an unencoded /; not shown)`;
  if (parsed.password !== '') parsed.password = '***';
  for (const name of [...new Set(parsed.searchParams.keys())]) {
    if (SECRET_PARAMETER.test(name)) parsed.searchParams.set(name, '***');
  }
  return parsed.toString();
}
