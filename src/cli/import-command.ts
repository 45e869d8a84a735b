// `wameter import`: loads event files (send logs, saved webhook bodies) into the service's store, then rates
// the imported WABAs so the stored bill is current. The same idempotency as POST /v1/events: importing a
// file twice changes nothing.

import type { Command } from 'commander';
import { eventKey, type CoreEvent } from '../core/events.js';
import { readEventSources } from '../ingest/read-events.js';
import { loadServiceConfig } from '../server/config.js';
import { loadPricingSetup } from '../server/pricing-setup.js';
import { RatingFailedError } from '../server/rating-service.js';
import type { EventInput } from '../store/store.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { commandRatingService, openCommandStore } from './open-command-store.js';
import { pathArgument } from './options.js';
import { createSourceErrorReporter } from './source-errors.js';

const BATCH = 5000;
const PROGRESS_EVERY = 100_000;

interface ImportFlags {
  db?: string;
  config?: string;
}

export function registerImportCommand(program: Command, io: CliIo): void {
  program
    .command('import')
    .description("load event files into the service's store and rate them (idempotent)")
    .argument(
      '<sources...>',
      'event files, folders of .json/.ndjson/.jsonl files (read recursively), or - for stdin',
    )
    .option(
      '--db <url>',
      'database: sqlite:PATH (created if missing) or postgres://… (env WAMETER_DB / DATABASE_URL; default sqlite:./wameter.db)',
      pathArgument,
    )
    .option(
      '--config <file>',
      'the service configuration file (accounts and rate cards are read from it)',
      pathArgument,
    )
    .addHelpText(
      'after',
      `
The accounts (time zones, currencies, portfolios) and rate cards come from the service's configuration:
--config FILE, or WAMETER_ACCOUNTS and WAMETER_RATE_CARDS — give the same to serve and rerate.
One process writes ratings to a database at a time: while \`wameter serve\` runs on it, send the events to
its POST /v1/events (it rates them), or stop it first.

Examples:
  WAMETER_ACCOUNTS=examples/month/accounts.json wameter import examples/month/events.ndjson
  wameter import logs/ --db postgres://postgres@127.0.0.1:5432/wameter`,
    )
    .action(async (sources: string[], flags: ImportFlags) => {
      io.exitCode = await runImport(sources, flags, io);
    });
}

async function runImport(sources: string[], flags: ImportFlags, io: CliIo): Promise<number> {
  const config = loadServiceConfig({
    flags: flags.db === undefined ? {} : { db: flags.db },
    env: process.env,
    ...(flags.config === undefined ? {} : { configFile: flags.config }),
  });
  if (!config.ok) throw new CliError(`the configuration needs fixing: ${config.error.problems.join('; ')}`);
  const pricing = await loadPricingSetup({
    accountsPath: config.value.accountsPath,
    rateCardPaths: config.value.rateCardPaths,
  });
  if (!pricing.ok) throw new CliError(pricing.error);
  // Import rates what it stored, so it takes the writer lock: not beside a running serve (docs/storage.md).
  const store = await openCommandStore(config.value.db, {
    mode: 'create',
    setBy: '--db, WAMETER_DB or DATABASE_URL',
    writer: 'import',
    onNotice: (message) => io.writeError(`wameter import: ${message}\n`),
  });
  const errors = createSourceErrorReporter(io.writeError);
  let inserted = 0;
  let read = 0;
  let duplicates = 0;
  try {
    let batch: EventInput[] = [];
    const writes: Promise<void>[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      const events = batch;
      batch = [];
      writes.push(
        store.ingestEvents(events).then((outcome) => {
          inserted += outcome.inserted.length;
          duplicates += outcome.duplicates;
        }),
      );
    };
    const receivedAtMs = Date.now();
    await readEventSources(
      sources,
      {
        onEvents(events: CoreEvent[]) {
          for (const event of events) {
            batch.push({ key: eventKey(event), event, receivedAtMs, source: 'import' });
            if (++read % PROGRESS_EVERY === 0 && io.isStderrTty) {
              io.writeError(`wameter import: ${read.toLocaleString('en-US')} events read…\n`);
            }
            if (batch.length >= BATCH) flush();
          }
        },
        onError: (error) => errors.report(error),
        onIgnored: (note) => errors.notice(note),
      },
      io.stdin ? { stdin: io.stdin } : {},
    );
    flush();
    await Promise.all(writes);
    io.writeError(`wameter import: stored ${inserted} new event(s), ${duplicates} already stored; rating…\n`);
    const rating = commandRatingService(store, pricing.value, io);
    try {
      await rating.rateAll();
    } catch (error) {
      // The events are stored: say so, and how to get them rated, instead of printing a stale bill.
      if (!(error instanceof RatingFailedError)) throw error;
      throw new CliError(
        `the events are stored, but ${error.message}; nothing else was changed: run \`wameter import\` again once that is fixed (stored events are skipped, then everything is rated), or start \`wameter serve\`, which rates the whole store at start`,
      );
    } finally {
      await rating.close();
    }
    const totals = await store.totals({});
    for (const [currency, total] of Object.entries(totals)) {
      io.writeOut(`${currency}: ${total.units} unit(s) in the store\n`);
    }
  } finally {
    await store.close();
  }
  errors.summarise();
  return errors.count > 0 ? EXIT.BAD_INPUT : EXIT.OK;
}
