// `wameter import`: loads event files (send logs, saved webhook bodies) into the service's store, then rates
// the imported WABAs so the stored bill is current. The same idempotency as POST /v1/events: importing a
// file twice changes nothing.

import { Readable } from 'node:stream';
import type { Command } from 'commander';
import { formatMicros } from '../core/money.js';
import { eventKey, type CoreEvent } from '../core/events.js';
import type { Finding } from '../core/units.js';
import { holdsNoEventWithin, isSurelyWithoutEvents, readEventSources } from '../ingest/read-events.js';
import { DB_SET_BY, loadServiceConfig } from '../server/config.js';
import { loadPricingSetup } from '../server/pricing-setup.js';
import {
  ACCOUNTS_CHANGED_WARNING,
  RATE_CARDS_CHANGED_WARNING,
  whatIfReplacedWarning,
  RatingFailedError,
} from '../server/rating-service.js';
import { businessNumbersOf } from '../server/analytics-query.js';
import type { BusinessNumber, EventInput } from '../store/store.js';
import { CliError, EXIT } from './exit-codes.js';
import { exitOnInterrupt } from './interrupt.js';
import { someSourceExists } from './rating-inputs.js';
import type { CliIo } from './io.js';
import { commandRatingService, openCommandStore } from './open-command-store.js';
import { databaseUrl, pathArgument, refuseReportedFlag, refuseServiceSettings } from './options.js';
import { createSourceErrorReporter } from './source-errors.js';
import { sayFindings } from './findings-on-stderr.js';
import { ALLOW_UNPRICED_HELP, unpricedExit, unratedCodesIn, unratedIn } from './unpriced.js';

const BATCH = 5000;
const PROGRESS_EVERY = 100_000;
/**
 * New events after which the store's planner statistics are refreshed: of the events before rating, of the
 * bill after (Store.refreshStatistics).
 */
const STATISTICS_AFTER_INSERTS = 1_000;
/**
 * Files and folders of at most this many bytes in all are read once before the store is opened, so that
 * sources of blank or malformed lines only are refused without creating the database (larger ones are not
 * read twice: their refusal comes after it is created).
 */
const PRE_READ_BYTES = 4 * 1024 * 1024;

interface ImportFlags {
  db?: string;
  config?: string;
  allowUnpriced?: boolean;
}

export function registerImportCommand(program: Command, io: CliIo): void {
  const command = program.command('import');
  refuseServiceSettings(command, ['--accounts', '--rate-cards']);
  refuseReportedFlag(command);
  command
    .description("load event files into the service's store and rate them (idempotent)")
    .argument(
      '<sources...>',
      'event files, folders of .json/.ndjson/.jsonl files (read recursively), or - for stdin',
    )
    .option(
      '--db <url>',
      'database: sqlite:PATH (created if missing) or postgres://… (env WAMETER_DB / DATABASE_URL; default sqlite:./wameter.db)',
      databaseUrl,
    )
    .option(
      '--config <file>',
      'the service configuration file (accounts and rate cards are read from it)',
      pathArgument,
    )
    .option('--allow-unpriced', ALLOW_UNPRICED_HELP)
    .addHelpText(
      'after',
      `
The accounts (time zones, currencies, portfolios) and rate cards come from the service's configuration:
--config FILE, or WAMETER_ACCOUNTS and WAMETER_RATE_CARDS — give the same to serve and rerate.
One process writes ratings to a database at a time: while \`wameter serve\` runs on it, send the events to
its POST /v1/events (it rates them), or stop it first.
A copy of an event already stored (the same kind, id and status in one WABA: a CRM's copy of an inbound
message, a bare status line and Meta's webhook) completes the stored event, whichever came first; stderr
counts such copies, telling those that can only be copies within the input (of a WABA the store had no
events of) from the others, which may also be copies of stored events. Statuses that name no WABA are rated
with the WABA of their message or, when it is not stored, with the WABA whose events use their business
number; when the sources hold such statuses, stderr says how many the store holds that neither ties to a
WABA (not rated; the exit code does not count them).

Exit codes: 0 ok; 1 nothing done (bad configuration, a database that cannot be opened, no given source
exists, or not one event could be read from the sources), or the events could not all be stored, or not
rated; 2 some input lines malformed (each named on stderr, the rest imported); 3 some charged units of
the imported WABAs have no price, or some delivered messages could not be rated (the findings are listed
on stderr, the first 20 then the rest counted by code; \`wameter rerate --dry-run --format json\` lists all;
--allow-unpriced to accept); 130 or 143 interrupted by SIGINT (Ctrl-C) or SIGTERM: what was stored
stays, stderr says where it stopped; run the same command again to finish.

Examples:
  WAMETER_ACCOUNTS=examples/month/accounts.json wameter import examples/month/events.ndjson
  wameter import logs/ --db postgres://postgres@127.0.0.1:5432/wameter`,
    )
    .action(async (sources: string[], flags: ImportFlags) => {
      io.exitCode = await runImport(sources, flags, io);
    });
}

async function runImport(sources: string[], flags: ImportFlags, io: CliIo): Promise<number> {
  // Before the store is opened: a mistyped only path must not create (and migrate) a database.
  sources = someSourceExists(sources);
  const config = loadServiceConfig({
    flags: flags.db === undefined ? {} : { db: flags.db },
    env: process.env,
    ...(flags.config === undefined ? {} : { configFile: flags.config }),
  });
  if (!config.ok) throw new CliError(`the configuration needs fixing: ${config.error.problems.join('; ')}`);
  const pricing = await loadPricingSetup({
    accountsPath: config.value.accountsPath,
    rateCardPaths: config.value.rateCardPaths,
    isReportedRulesEnabled: config.value.isReportedRulesEnabled ?? true,
  });
  if (!pricing.ok) throw new CliError(pricing.error);
  // Nor must sources that surely hold no event (an empty folder, a log rotated to nothing, stdin that ends
  // without a byte): the reader reads them (nothing) and refuses them in its words, as it would after opening
  // the store, which is never opened.
  const stdin = io.stdin ?? process.stdin;
  const others = sources.filter((source) => source !== '-');
  if (
    (await isSurelyWithoutEvents(others)) &&
    (others.length === sources.length || !(await hasFirstBytes(stdin)))
  ) {
    await refuseSourcesWithoutEvents(sources, io);
  }
  // Small files of blank or malformed lines only, likewise (a mistyped path that names the wrong file).
  if (others.length === sources.length && (await holdsNoEventWithin(sources, PRE_READ_BYTES))) {
    await refuseSourcesWithoutEvents(sources, io);
  }
  let inserted = 0;
  /** Where an interrupted import stopped: what it says, and what running it again does. */
  let phase: 'opening' | 'storing' | 'rating' | 'reporting' = 'opening';
  const stopListening = exitOnInterrupt(io, (signal) => {
    const stored = `${inserted} new event(s) stored`;
    const where =
      phase === 'opening'
        ? 'before storing any event'
        : phase === 'storing'
          ? `while storing events (${stored} so far; nothing rated yet)`
          : phase === 'rating'
            ? `while rating (${stored}; the portfolios rated so far are stored, the others keep their last rating)`
            : `after storing and rating (${stored})`;
    return `wameter import: interrupted by ${signal} ${where}: run the same \`wameter import\` again to finish (stored events are skipped, then everything is rated), or start \`wameter serve\`, which rates the store at start\n`;
  });
  // Import rates what it stored, so it takes the writer lock: not beside a running serve (docs/storage.md).
  let store: Awaited<ReturnType<typeof openCommandStore>>;
  try {
    store = await openCommandStore(config.value.db, {
      mode: 'create',
      setBy: DB_SET_BY,
      writer: 'import',
      onNotice: (message) => io.writeError(`wameter import: ${message}\n`),
    });
  } catch (error) {
    stopListening();
    throw error;
  }
  const errors = createSourceErrorReporter(io.writeError);
  let read = 0;
  let duplicates = 0;
  /**
   * Keys are per WABA (`eventKey`): a copy of an event of a WABA the store had no events of before this import
   * is a copy within the input, and so is a copy of a status naming no WABA when the store had no such status
   * either (it was empty). Other copies may be of stored events or within the input: the store counts both as
   * one (`IngestOutcome.duplicates`).
   */
  let storedWabas: ReadonlySet<string> = new Set();
  let hadStatusesWithoutWaba = true;
  const ofNewKeys = (events: readonly CoreEvent[]) =>
    events.filter((event) =>
      event.waba === undefined ? !hadStatusesWithoutWaba : !storedWabas.has(event.waba),
    ).length;
  let copiesWithinInput = 0;
  /**
   * Keys of stored events a copy among `duplicates` completed (a referral, a recipient: store.ts `merged`),
   * each counted once however many batches its copies fell in.
   */
  const completed = new Set<string>();
  /** The sources hold statuses naming no WABA: only then is the store asked how many no WABA can be found for. */
  let hasStatusWithoutWaba = false;
  /** The WABAs the sources name: their findings and unpriced units decide the exit code. */
  const wabas = new Set<string>();
  /**
   * What each rating of a portfolio holding one of `wabas` stored as its findings, by the portfolio's WABAs
   * (a finding that names no WABA is known only by the rating that produced it, see `reportedFindings`).
   */
  const ratedFindings = new Map<string, readonly Finding[]>();
  /** The first refused write: nothing more is written after it (the disk is full, the database broken). */
  let writeFailure: { error: unknown } | undefined;
  let unpriced = 0;
  let unrated = 0;
  let unratedCodes: string[] = [];
  try {
    // A store another wameter rated (an upgrade): its bill is re-rated first, as a re-rate that keeps what
    // changed, so that the change is this version's alone, not mixed with what the sources add.
    const upgrade = commandRatingService(store, pricing.value, io);
    try {
      await upgrade.upgrade((message) => io.writeError(`wameter import: ${message}\n`));
    } catch (error) {
      // Nothing of the sources is stored yet: the import can simply be run again.
      const reason = (error instanceof Error ? error.message : String(error)).trim() || 'unknown error';
      throw new CliError(
        `the stored bill, rated by another version of wameter, could not be re-rated (${reason}); nothing was imported: fix that (free disk space, reach the database), then run \`wameter import\` again`,
      );
    } finally {
      await upgrade.close();
    }
    phase = 'storing';
    storedWabas = new Set(await store.listWabas());
    // Without a WABA's events no status is tied to one: every stored status naming no WABA is counted here.
    hadStatusesWithoutWaba = storedWabas.size > 0 || (await store.countUnattributedStatuses()) > 0;
    let batch: EventInput[] = [];
    /**
     * The display numbers of the Meta webhook bodies read since the last write (by WABA and number, the last
     * winning), written with the next batch: the operator's files are trusted as a signed webhook is.
     */
    let numbers = new Map<string, BusinessNumber>();
    const writes: Promise<void>[] = [];
    const flush = () => {
      if (batch.length === 0 && numbers.size === 0) return;
      const events = batch;
      const businessNumbers = [...numbers.values()];
      batch = [];
      numbers = new Map();
      if (writeFailure) return;
      const givenOfNewKeys = ofNewKeys(events.map((input) => input.event));
      // The rating after rates every stored WABA (`rateAll`): a superset of those an ingest names to rate again
      // (`relistedWabas`, WABAs with events), whose look-ups are skipped (`isRelistingNeeded`: a third of an
      // import's CPU on bench traffic, docs/benchmarks.md §6, "Thirty-eighth session").
      const options = {
        ...(businessNumbers.length > 0 ? { businessNumbers } : {}),
        isRelistingNeeded: false,
      };
      // Handled at once: a refused write must not go unhandled while the sources are still being read.
      writes.push(
        store.ingestEvents(events, options).then(
          (outcome) => {
            inserted += outcome.inserted.length;
            duplicates += outcome.duplicates;
            copiesWithinInput += givenOfNewKeys - ofNewKeys(outcome.inserted);
            for (const event of outcome.merged) completed.add(eventKey(event));
          },
          (error: unknown) => {
            writeFailure ??= { error };
          },
        ),
      );
    };
    const receivedAtMs = Date.now();
    await readEventSources(
      sources,
      {
        onEvents(events: CoreEvent[]) {
          for (const event of events) {
            if (event.waba !== undefined) wabas.add(event.waba);
            else if (event.kind === 'status') hasStatusWithoutWaba = true;
            batch.push({ key: eventKey(event), event, receivedAtMs, source: 'import' });
            if (++read % PROGRESS_EVERY === 0 && io.isStderrTty) {
              io.writeError(`wameter import: ${read.toLocaleString('en-US')} events read…\n`);
            }
            if (batch.length >= BATCH) flush();
          }
        },
        onError: (error) => errors.report(error),
        onIgnored: (note) => errors.notice(note),
        onWebhookBody(value) {
          for (const number of businessNumbersOf(value)) {
            numbers.set(JSON.stringify([number.waba, number.business]), number);
          }
        },
      },
      io.stdin ? { stdin: io.stdin } : {},
    );
    flush();
    await Promise.all(writes);
    errors.refuseWhenNothingRead(read);
    // The rating's queries are planned on what the store knows of its tables: up to date after a bulk write.
    const isBulkLoad = !writeFailure && inserted >= STATISTICS_AFTER_INSERTS;
    if (isBulkLoad) await store.refreshStatistics('events');
    if (writeFailure) {
      // Each write is one transaction: the events counted are stored, the others not (a later import adds them).
      const { error } = writeFailure;
      const reason = (error instanceof Error ? error.message : String(error)).trim() || 'unknown error';
      throw new CliError(
        `the database refused the events after ${inserted} new event(s) were stored (${duplicatesInWords(duplicates, copiesWithinInput)}${completed.size > 0 ? `, ${completed.size} of them completing a stored copy` : ''}): ${reason}; nothing was rated: free disk space or fix the database, then run \`wameter import\` again (stored events are skipped)`,
      );
    }
    // A copy of a stored event (the same key) is merged into it: say how many completed one.
    const ofThem = completed.size > 0 ? ` (${completed.size} of them completed a stored copy)` : '';
    io.writeError(
      `wameter import: stored ${inserted} new event(s), ${duplicatesInWords(duplicates, copiesWithinInput)}${ofThem}; rating…\n`,
    );
    const rating = commandRatingService(store, pricing.value, io, {
      // An import rates each portfolio once, with no earlier rating to diff against: its findings are given.
      onRatingStored(record, findings) {
        if (findings && record.wabas.some((waba) => wabas.has(waba))) {
          ratedFindings.set(record.wabas.join('\n'), findings);
        }
      },
    });
    if (await rating.isStoredUnderOtherAccounts())
      io.writeError(`wameter import: ${ACCOUNTS_CHANGED_WARNING}\n`);
    if (await rating.isStoredUnderOtherRateCards())
      io.writeError(`wameter import: ${RATE_CARDS_CHANGED_WARNING}\n`);
    const whatIf = await rating.storedAsOfRules();
    if (whatIf !== null) io.writeError(`wameter import: ${whatIfReplacedWarning(whatIf)}\n`);
    phase = 'rating';
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
    phase = 'reporting';
    // What is then read of the bill (a category's units dearest first) is planned on these.
    if (isBulkLoad) await store.refreshStatistics('bill');
    const totals = await store.totals({});
    for (const [currency, total] of Object.entries(totals)) {
      // The amount too, as `wameter rate` ends: what a finance reader imports for.
      const unpriced = total.unpriced
        ? ` (${total.unpriced} not priced, not in the amount: see findings)`
        : '';
      io.writeOut(
        `${currency}: ${formatMicros(total.amountMicros)} over ${total.units} unit(s) in the store${unpriced}\n`,
      );
    }
    await io.settle?.();
    // What `rate` would say of these sources: the findings of their WABAs and their units without a price.
    const imported = [...wabas];
    const findings = reportedFindings(ratedFindings.values(), wabas);
    // As `rate` and `rerate` tell theirs: the first 20, the rest counted by code, and where all are.
    sayFindings(
      findings,
      `${findings.length} finding(s) for the imported WABAs (\`wameter rerate --dry-run --format json\` lists them all):`,
      (line) => io.writeError(`wameter import: ${line}\n`),
    );
    // Statuses no rating sees (store.ts countUnattributedStatuses): said, but not in the exit code, which
    // judges the imported WABAs' bill (these belong to no WABA, and may come from any earlier import).
    // Asked only when these sources hold such statuses: the count looks each one's message up in every WABA.
    const unattributed = hasStatusWithoutWaba ? await store.countUnattributedStatuses() : 0;
    if (unattributed > 0) {
      io.writeError(
        `wameter import: ${unattributed} status(es) in the store name no WABA, and neither their message nor their business number ties them to one: they are not rated until their message is imported (a send log, or inbound webhooks), or an inbound or outbound line of their business number (imported, from a webhook, or from an API key for every WABA)\n`,
      );
    }
    const importedTotals = imported.length === 0 ? {} : await store.totals({ wabas: imported });
    for (const total of Object.values(importedTotals)) unpriced += total.unpriced ?? 0;
    unrated = unratedIn(findings);
    unratedCodes = unratedCodesIn(findings);
  } finally {
    await store.close();
    stopListening();
  }
  errors.summarise();
  // The same rule as `rate`: bad input first, then units without a price and messages not rated.
  if (errors.count > 0) return EXIT.BAD_INPUT;
  return unpricedExit({ unpriced, unrated, unratedCodes }, flags.allowUnpriced, (message) =>
    io.writeError(`wameter import: ${message}\n`),
  );
}

/**
 * Reads sources `isSurelyWithoutEvents` found without events and refuses them (exit 1), as `runImport` would
 * once it has read them: the same warnings, problems and refusal. Returns only when they now hold an event
 * (written since they were looked at): the import then reads them as usual.
 */
async function refuseSourcesWithoutEvents(sources: string[], io: CliIo): Promise<void> {
  const errors = createSourceErrorReporter(io.writeError);
  let read = 0;
  await readEventSources(
    sources,
    {
      onEvents: (events) => void (read += events.length),
      onError: (error) => errors.report(error),
      onIgnored: (note) => errors.notice(note),
    },
    // Stdin, when given, ended without a byte (`hasFirstBytes`): read as the empty source it was.
    { stdin: Readable.from([]) },
  );
  errors.refuseWhenNothingRead(read);
}

/**
 * Waits for the first bytes of `stdin` and puts them back (`unshift`), for the reader to read them: false when
 * it ends without one (`< /dev/null`, an empty pipe). True too when it fails: the reader then says why.
 */
async function hasFirstBytes(stdin: NodeJS.ReadableStream): Promise<boolean> {
  let isEnded = (stdin as Partial<Readable>).readableEnded === true;
  let hasFailed = false;
  // Listened to throughout: an 'end' emitted between two waits (a tick's callbacks run before a promise's)
  // is not missed.
  let wake = () => {};
  const onReadable = () => wake();
  const onEnd = () => {
    isEnded = true;
    wake();
  };
  const onError = () => {
    hasFailed = true;
    wake();
  };
  stdin.on('readable', onReadable);
  stdin.on('end', onEnd);
  stdin.on('error', onError);
  try {
    for (;;) {
      const chunk = stdin.read() as Buffer | string | null;
      // An empty chunk (an object-mode stream's '') holds no byte: passed over.
      if (chunk !== null && chunk.length > 0) {
        stdin.unshift(chunk);
        return true;
      }
      if (chunk !== null) continue;
      if (isEnded) return false;
      if (hasFailed) return true;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stdin.off('readable', onReadable);
    stdin.off('end', onEnd);
    stdin.off('error', onError);
  }
}

/**
 * The duplicates of an import, telling those known to be copies within the input (`withinInput`) from those
 * that may be either that or copies of events already stored: `3 duplicate(s) within the input`.
 */
function duplicatesInWords(duplicates: number, withinInput: number): string {
  const either = duplicates - withinInput;
  const said = `${duplicates} duplicate(s)`;
  if (duplicates === 0) return said;
  if (either === 0) return `${said} within the input`;
  if (withinInput === 0) return `${said} within the input or of events already stored`;
  return `${said}: ${withinInput} within the input, ${either} within the input or of events already stored`;
}

/**
 * The findings an import reports, and whose unrated messages decide its exit code: those of the WABAs its
 * sources name, as the ratings of their portfolios stored them (`rated`, one list per portfolio). A finding
 * that names a WABA is reported when it names an imported one. A finding that names no WABA (STATUS_WITHOUT_USER
 * of a status naming neither its WABA nor a user or business number) can only be placed by the rating that
 * produced it: it is reported when that rating's portfolio holds an imported WABA. An import of other
 * portfolios' WABAs never reports it.
 */
function reportedFindings(rated: Iterable<readonly Finding[]>, imported: ReadonlySet<string>): Finding[] {
  const reported: Finding[] = [];
  for (const findings of rated) {
    for (const finding of findings) {
      if (typeof finding.waba !== 'string' || imported.has(finding.waba)) reported.push(finding);
    }
  }
  return reported;
}
