// Opens the store for a command, turning every way that can fail into one line that says what to do.
// Commands that only read it (estimate, rerate --dry-run) open it read-only: they never create a file or a
// table, nor migrate, since an empty store would only lead to a misleading answer. Commands that write
// ratings (import, rerate) create or migrate it as serve does, and take the single-writer lock.

import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { redactUrl } from '../server/config.js';
import { explainStartError } from '../server/start-errors.js';
import { isSqliteFileWithoutTables, openStore, sqlitePathOf } from '../store/open-store.js';
import { ReadOnlyOpenError, type Store } from '../store/store.js';
import { openWriterStore, WriterLockHeldError } from '../store/writer-lock.js';
import { createJsonLogger } from '../server/logger.js';
import {
  createRatingService,
  type PricingSetup,
  type RatingService,
  type RatingServiceDeps,
} from '../server/rating-service.js';
import { CliError } from './exit-codes.js';
import type { CliIo } from './io.js';

interface OpenCommandStoreCommon {
  /** Where the URL can be set, for the message: `--db` by default. */
  setBy?: string;
}

/**
 * How a command opens its store:
 * - `read-only` (estimate, rerate --dry-run): the store must be there already, migrated by this version;
 *   nothing is created, migrated or written, and no lock is taken (it may look beside a running serve).
 * - `existing` (rerate): the SQLite file must exist and hold a store (not an empty file); it is migrated if
 *   needed.
 * - `create` (import, serve): the SQLite file is created if missing (its folder must exist), and migrated.
 */
export type OpenCommandStoreOptions =
  | (OpenCommandStoreCommon & { mode: 'read-only' })
  | (OpenCommandStoreCommon & {
      mode: 'existing' | 'create';
      /**
       * The command, when it writes ratings (import, rerate): it takes the database's single-writer lock,
       * held until the store is closed, and is refused while another process (a running serve) holds it.
       */
      writer?: string;
      /** Told when the lock of a process that no longer runs is taken over. */
      onNotice?: (message: string) => void;
    });

/**
 * The SQLite file a database URL names, as `openStore` reads it; undefined for PostgreSQL, other schemes
 * (openStore refuses them) and in-memory databases.
 */
export function sqliteFileOf(url: string): string | undefined {
  const path = sqlitePathOf(url);
  return path === undefined || path.trim() === '' || path === ':memory:' ? undefined : path;
}

export async function openCommandStore(url: string, options: OpenCommandStoreOptions): Promise<Store> {
  const setBy = options.setBy ?? '--db';
  checkSqliteLocation(url, options);
  try {
    if (options.mode === 'read-only') return await openStore(url, { isReadOnly: true });
    if (options.writer === undefined) return await openStore(url);
    return await openWriterStore(
      url,
      options.writer,
      options.onNotice === undefined ? {} : { onNotice: options.onNotice },
    );
  } catch (error) {
    // Says who writes there and what to do instead (docs/storage.md, "One writer per database").
    if (error instanceof WriterLockHeldError) throw new CliError(error.message);
    // Nothing (or an older store) where a read-only command looked: it neither creates nor migrates one.
    if (error instanceof ReadOnlyOpenError) {
      throw new CliError(
        error.code === 'NO_STORE'
          ? `${error.message} (run \`wameter import\` or \`wameter serve\` first, or check ${setBy})`
          : `${error.message}: run \`wameter serve\` or \`wameter import\` against it once to migrate it, then try again (or check ${setBy})`,
      );
    }
    // What `serve` explains at start (a folder, a missing schema, a read-only file…) is said alike; network
    // failures keep this command's own words below (which name the flag that set the URL).
    if (!isNetworkFailure(error)) {
      const explained = explainStartError(url, error, setBy);
      if (explained !== error && explained instanceof Error) throw new CliError(explained.message);
    }
    throw new CliError(`cannot open the database ${redactUrl(url)}: ${whatWentWrong(error, setBy)}`);
  }
}

/**
 * Throws the CliError `openCommandStore` would for a SQLite file that is missing (read-only, existing), holds
 * no table (existing) or cannot be made (create).
 */
export function checkSqliteLocation(url: string, options: OpenCommandStoreOptions): void {
  const setBy = options.setBy ?? '--db';
  const file = sqliteFileOf(url);
  if (file !== undefined && options.mode !== 'create' && !existsSync(file)) {
    throw new CliError(
      `no such database file: ${file} (run \`wameter import\` or \`wameter serve\` first, or check ${setBy})`,
    );
  }
  // No store there yet (an empty file): one that is opened to be written becomes a store, with the writer
  // lock's files beside it, and rerate would then only find no events; a read-only open refuses it alike.
  if (file !== undefined && options.mode === 'existing' && isSqliteFileWithoutTables(url)) {
    throw new CliError(
      `no wameter store in ${file}: the file holds no wameter tables (run \`wameter import\` or \`wameter serve\` first, or check ${setBy})`,
    );
  }
  if (file !== undefined && options.mode === 'create' && !existsSync(dirname(resolve(file)))) {
    throw new CliError(
      `cannot create the database ${file}: the folder ${dirname(resolve(file))} does not exist (create it, or check ${setBy})`,
    );
  }
}

function isNetworkFailure(error: unknown): boolean {
  const first = error instanceof AggregateError && error.errors.length > 0 ? error.errors[0] : error;
  const code = (first as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E(CONN|HOST|NET|AI_|NOTFOUND|TIMEDOUT)/.test(code);
}

/** The driver's reason, with what to do for the common ones; never a stack (the URL's password is masked). */
function whatWentWrong(error: unknown, setBy: string): string {
  // Node may try several addresses for one host name and reject with all of them (an AggregateError).
  const first = error instanceof AggregateError && error.errors.length > 0 ? error.errors[0] : error;
  const { code, message } = first as NodeJS.ErrnoException;
  if (code === 'ECONNREFUSED') return `nothing is listening there: is PostgreSQL running? (check ${setBy})`;
  if (code === 'ENOTFOUND') return `unknown host: check ${setBy}`;
  const reason = message?.trim() || code || String(first);
  return `${reason} (check ${setBy})`;
}

/**
 * The service's rating over a command's store (import, rerate): its log — warnings and errors only, as JSON
 * lines — goes to stderr, next to the command's own messages.
 */
export function commandRatingService(
  store: Store,
  pricing: PricingSetup,
  io: CliIo,
  extra: Pick<RatingServiceDeps, 'loadRateCards' | 'onRatingStored'> = {},
): RatingService {
  return createRatingService({
    store,
    pricing,
    clock: Date.now,
    logger: createJsonLogger({ level: 'warn', clock: Date.now, write: (line) => io.writeError(`${line}\n`) }),
    // A command reports a failed rating and exits; it does not retry it in the background.
    retries: false,
    ...extra,
  });
}
