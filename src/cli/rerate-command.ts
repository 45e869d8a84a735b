// `wameter rerate`: re-rates stored traffic under other rate cards or another era's rules, prints what
// changed (old vs new per unit and in total) and records the rating in the store's history. The same
// use-case as POST /v1/rerate (server/rating-service.ts).

import type { Command } from 'commander';
import { formatInstant, isCalendarDay, parseInstant } from '../core/calendar.js';
import { createAccountBook } from '../ingest/accounts-file.js';
import { dayForInstantHint } from '../use-cases/day-for-instant.js';
import { ERAS, type Era } from '../core/units.js';
import { EXIT, OutputError } from './exit-codes.js';
import { sayFindings } from './findings-on-stderr.js';
import { terminalSafe, type CliIo } from './io.js';
import { commandRatingService, openCommandStore } from './open-command-store.js';
import {
  collectPaths,
  databaseUrl,
  optionValue,
  optionValues,
  parseEra,
  pathArgument,
  refuseReportedFlag,
  refuseServiceSettings,
} from './options.js';
import {
  ALLOW_UNPRICED_HELP,
  replacedCardsNote,
  unpricedExit,
  unratedCodesIn,
  unratedIn,
} from './unpriced.js';
import { DB_SET_BY, loadServiceConfig } from '../server/config.js';
import { loadPricingSetup, loadRateCards } from '../server/pricing-setup.js';
import { UPGRADE_DUE_IN_DRY_RUN_WARNING, type RerateReport } from '../server/rating-service.js';
import { rerateDocument } from '../server/rerate-document.js';
import { CLI_RERATE_REASON, type Store } from '../store/store.js';

interface RerateFlags {
  db?: string;
  config?: string;
  from?: string;
  to?: string;
  waba?: string[];
  asOfRules?: Era;
  rateCards?: string[];
  allowUnpriced?: boolean;
  format: string;
  dryRun?: boolean;
}

/**
 * Rows of cells as lines, each column as wide as its longest cell (the last unpadded), one space apart: a
 * long category (`authentication_international/regular 0.0280 USD`) or unit id never pushes a row's next
 * cells out of line with the others' (as bench/main.ts's tables size theirs).
 */
function alignColumns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  return rows.map((row) =>
    row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join(' '),
  );
}

export function formatRerateTable(report: RerateReport): string {
  const lines: string[] = [];
  lines.push(
    report.ratingId === null
      ? 'Dry run: nothing stored.'
      : `Rating ${report.ratingId} stored in the history.`,
  );
  lines.push(
    `WABAs: ${report.wabas.join(', ') || '(none)'}; ${report.changed.length} ${report.changed.length === 1 ? 'unit' : 'units'} changed` +
      (report.changed.length > 0 ? ` (${changeKinds(report.changed)})` : '') +
      `, ${report.unchanged} unchanged.`,
  );
  if (report.isAccountsChanged) lines.push(ACCOUNTS_CHANGED);
  if (report.isRateCardsChanged) lines.push(RATE_CARDS_CHANGED);
  const outside = report.outsidePeriod;
  if (outside && outside.changed > 0) {
    const currencies = [...new Set([...Object.keys(outside.totals.old), ...Object.keys(outside.totals.new)])];
    const amounts = currencies
      .sort()
      .map(
        (currency) =>
          `${currency} ${outside.totals.old[currency]?.amount ?? '0'} → ${outside.totals.new[currency]?.amount ?? '0'}`,
      );
    lines.push(
      `Outside --from/--to, ${outside.changed} more unit(s) changed (${amounts.join(', ')}): the whole portfolio is ` +
        `re-rated${report.ratingId === null ? ' (and would be stored)' : ' and stored'}, since conversations, ` +
        'allowances and tiers run across any period.',
    );
  }
  if (report.changed.length > 0) {
    const rows = [['unit', 'old', 'new']];
    for (const change of report.changed) {
      const describe = (unit: typeof change.old) =>
        unit === null ? '—' : `${unit.category}/${unit.type} ${unit.amount ?? '?'} ${unit.currency}`;
      const [before, after] = [describe(change.old), describe(change.new)];
      // Alike in category, type and amount, the two would read as no change: name the fields that differ.
      const fields = before === after ? differingFields(change.old, change.new) : [];
      const which =
        fields.length === 0 ? '' : ` (${fields.join(', ')} ${fields.length === 1 ? 'differs' : 'differ'})`;
      rows.push([change.unit, before, `${after}${which}`]);
    }
    lines.push('', ...alignColumns(rows));
  }
  lines.push('', 'Totals:', ...totalsLines(report.totals, '  '));
  // A re-rate covers whole portfolios: each WABA's share, for re-billing each client its own.
  if (report.wabas.length > 1) {
    lines.push('', 'By WABA:');
    for (const [waba, totals] of Object.entries(report.totalsByWaba)) {
      lines.push(`  ${waba}:`, ...totalsLines(totals, '    '));
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The fields of two versions of a unit that differ, in the order of the unit's JSON. */
function differingFields(before: object | null, after: object | null): string[] {
  if (before === null || after === null) return [];
  const [old, now] = [before as Record<string, unknown>, after as Record<string, unknown>];
  const keys = [...new Set([...Object.keys(old), ...Object.keys(now)])];
  return keys.filter((key) => JSON.stringify(old[key]) !== JSON.stringify(now[key]));
}

/** One line a currency: the old total → the new, with their units. */
function totalsLines(totals: RerateReport['totals'], indent: string): string[] {
  const currencies = [...new Set([...Object.keys(totals.old), ...Object.keys(totals.new)])].sort();
  if (currencies.length === 0) return [`${indent}(no units)`];
  return currencies.map((currency) => {
    const before = totals.old[currency];
    const after = totals.new[currency];
    // Units without a price add nothing: said beside the amount, which is then a floor.
    const count = (side: typeof before) =>
      `${side?.units ?? 0} units${side?.unpriced ? `, ${side.unpriced} not priced` : ''}`;
    return `${indent}${currency}: ${before?.amount ?? '0'} (${count(before)}) → ${after?.amount ?? '0'} (${count(after)})`;
  });
}

/**
 * What kinds of change the changed units are, counted apart and said only when there are some: a unit both
 * ratings have whose amount (or currency) differs; one whose amount is the same but another field differs (a
 * free unit shows the rate it would have cost, which a new card changes though the amount stays 0; its
 * category, type or era); one only the new rating has; one only the old rating had (a free unit merged into
 * another under other rules, say).
 */
function changeKinds(changed: RerateReport['changed']): string {
  let inAmount = 0;
  let otherField = 0;
  let onlyNew = 0;
  let onlyOld = 0;
  for (const change of changed) {
    if (change.old === null) onlyNew++;
    else if (change.new === null) onlyOld++;
    else if (change.old.amount !== change.new.amount || change.old.currency !== change.new.currency)
      inAmount++;
    else otherField++;
  }
  return [
    [inAmount, 'in amount'],
    [otherField, 'only in another field such as the rate a free unit would have cost'],
    [onlyNew, 'only in the new rating'],
    [onlyOld, 'only in the old rating'],
  ]
    .filter(([count]) => count !== 0)
    .map(([count, kind]) => `${count} ${kind}`)
    .join(', ');
}

/** Said (in the table, and on stderr for json) when the rate cards' rates differ from the last rating's. */
export const RATE_CARDS_CHANGED =
  "Note: the rate cards' rates differ from those the last rating of these WABAs priced with (a card edited " +
  'under the same file name, or other cards), so some changes come from them; unless that is meant, give the ' +
  'cards the stored bill was priced with (WAMETER_RATE_CARDS, or the "rateCards" of --config FILE).';

/** Said (in the table, and on stderr for json) when the accounts differ from the last rating's. */
export const ACCOUNTS_CHANGED =
  'Note: the accounts (time zones, currencies, portfolios…) differ from those the last rating of these WABAs ' +
  'priced with, so some changes come from them: give the accounts file the service uses (--config FILE or ' +
  'WAMETER_ACCOUNTS) unless the change is meant.';

/** How many stored WABAs a refusal names before it says how many more there are. */
const WABAS_NAMED = 20;

/** Why there is nothing to re-rate (no events stored, or none for a --waba), or undefined when there is. */
async function wabasRefusal(store: Store, asked: readonly string[] | undefined): Promise<string | undefined> {
  const stored = (await store.listWabas()).sort();
  if (stored.length === 0) {
    return `the store holds no events, so there is nothing to re-rate: load them first with \`wameter import\` (or POST them to a running \`wameter serve\`), or check ${DB_SET_BY}`;
  }
  const unknown = [...new Set(asked ?? [])].filter((waba) => !stored.includes(waba));
  if (unknown.length === 0) return undefined;
  const named = stored.slice(0, WABAS_NAMED).join(', ');
  const more = stored.length > WABAS_NAMED ? ` and ${stored.length - WABAS_NAMED} more` : '';
  return `no events are stored for ${unknown.length === 1 ? 'WABA' : 'WABAs'} ${unknown.join(', ')}: nothing was re-rated; the store holds events of ${stored.length} WABA(s): ${named}${more} (give --waba one of them, or import that WABA's events first)`;
}

export function registerRerateCommand(program: Command, io: CliIo): Command {
  const fail = (message: string): void => {
    io.writeError(`wameter rerate: ${message}\n`);
    io.exitCode = EXIT.USAGE;
  };
  const command = program.command('rerate');
  refuseServiceSettings(command, ['--accounts']);
  refuseReportedFlag(command);
  return (
    command
      .description(
        're-rate stored traffic under other rate cards or another era; print what changed and keep it in the history',
      )
      .option(
        '--db <url>',
        'database: sqlite:PATH of an existing file, or postgres://… (env WAMETER_DB / DATABASE_URL; default sqlite:./wameter.db)',
        databaseUrl,
      )
      .option(
        '--config <file>',
        'the service configuration file (accounts, rate cards, database)',
        pathArgument,
      )
      .option(
        '--from <instant>',
        "only report units opened at or after (ISO-8601 with offset, or Unix seconds; a day, 2025-07-01, is refused with the instant it begins on the WABAs' clock)",
        optionValue('an instant'),
      )
      .option('--to <instant>', 'only report units opened before', optionValue('an instant'))
      .option(
        '--waba <id...>',
        'only these WABAs (and the WABAs sharing their portfolios)',
        optionValues('a WABA id'),
      )
      .option(
        '--as-of-rules <era>',
        `rate everything under one era's rules: ${ERAS.join(', ')}`,
        optionValue('an era', parseEra),
      )
      // No positional arguments here, so several paths after one flag are unambiguous; repeating it works too.
      .option(
        '--rate-cards <path...>',
        "rate card files or folders to price with instead of the configured (or bundled) cards, which they replace: give every card the stored traffic needs, earlier dates' too (a folder of them); several after one flag, or the flag repeated",
        collectPaths,
      )
      .option('--format <format>', 'table or json', optionValue('a format'), 'table')
      .option('--allow-unpriced', ALLOW_UNPRICED_HELP)
      .option(
        '--dry-run',
        'report what would change without storing anything (the store is only read: never created or migrated)',
      )
      .addHelpText(
        'after',
        `
Examples:
  $ wameter rerate --db sqlite:./wameter.db --rate-cards ./cards/ --dry-run   # cards/: Meta's cards, old and new
  $ wameter rerate --from 2025-07-01T00:00:00Z --to 2025-08-01T00:00:00Z --as-of-rules CBP-2023 --dry-run
  $ wameter rerate --waba 102290129340398 --format json
The accounts (time zones, currencies, portfolios) come from the service's configuration — --config FILE or
WAMETER_ACCOUNTS — as for \`wameter import\` and \`wameter serve\`: give the same as when the traffic was
imported, or every WABA is rated in UTC and USD as its own portfolio.
A running service re-rates live arrivals with its own configured cards: to change them for good, change
WAMETER_RATE_CARDS and restart it.
One process writes ratings to a database at a time: while \`wameter serve\` runs on it, re-rate through
its POST /v1/rerate, or stop it first (--dry-run stores nothing and may run beside it).

Exit codes: 0 re-rated (or, with --dry-run, reported); 1 nothing done (bad flag or configuration, a
database that cannot be opened, no stored events, an unknown --waba, a rating that could not be stored, or
one not stored because it leaves more charged units without a price than the stored bill — other cards
given alone, say: --allow-unpriced stores it anyway); 3 some charged units of the new rating have no price
(its totals are then a floor, not the bill), or some delivered messages of the portfolios re-rated could
not be rated (no category, no user or business number), as \`wameter rate\` exits for the same traffic:
its findings say why — --allow-unpriced accepts them.
The new rating's findings (a rate card of another pricing model, a market without a rate…) are listed on
stderr beside the table, or as "findings" in the JSON.`,
      )
      .action(async (flags: RerateFlags) => {
        if (flags.format !== 'table' && flags.format !== 'json')
          return fail('--format must be table or json');
        // A day (`--from 2025-07-01`, as `reconcile` takes them) is refused once the WABAs' clocks are known,
        // saying the instant it begins there: its UTC midnight is not their billing day's edge.
        const days: { role: 'from' | 'to'; day: string }[] = [];
        const instant = (name: 'from' | 'to', text: string | undefined): number | undefined | null => {
          if (text === undefined) return undefined;
          if (isCalendarDay(text.trim())) {
            days.push({ role: name, day: text.trim() });
            return undefined;
          }
          const parsed = parseInstant(text);
          if (parsed.ok) return parsed.value;
          fail(`--${name}: ${parsed.error.message}`);
          return null;
        };
        const fromMs = instant('from', flags.from);
        const toMs = instant('to', flags.to);
        if (fromMs === null || toMs === null) return;
        if (fromMs !== undefined && toMs !== undefined && fromMs >= toMs) {
          return fail(
            `--from (${formatInstant(fromMs)}) must be before --to (${formatInstant(toMs)}): units opened at or after --from and before --to are reported; swap them or widen the period`,
          );
        }
        const config = loadServiceConfig({
          flags: flags.db === undefined ? {} : { db: flags.db },
          env: process.env,
          ...(flags.config === undefined ? {} : { configFile: flags.config }),
        });
        if (!config.ok)
          return fail(`the configuration needs fixing:\n  - ${config.error.problems.join('\n  - ')}`);
        const pricing = await loadPricingSetup({
          accountsPath: config.value.accountsPath,
          rateCardPaths: config.value.rateCardPaths,
          isReportedRulesEnabled: config.value.isReportedRulesEnabled ?? true,
        });
        if (!pricing.ok) return fail(pricing.error);
        let store;
        try {
          const setBy = DB_SET_BY;
          // A dry run stores nothing: it opens the store read-only (never creating or migrating it) and may
          // look while a service rates the database. A re-rate writes: it migrates and takes the lock.
          store = await openCommandStore(
            config.value.db,
            flags.dryRun === true
              ? { mode: 'read-only', setBy }
              : {
                  mode: 'existing',
                  setBy,
                  writer: 'rerate',
                  onNotice: (message) => io.writeError(`wameter rerate: ${message}\n`),
                },
          );
        } catch (error) {
          return fail((error as Error).message);
        }
        try {
          // Checked here, before anything is rated: an unknown WABA (a typo) would record an empty rating.
          const refusal = await wabasRefusal(store, flags.waba);
          if (refusal !== undefined) return fail(refusal);
          if (days.length > 0) {
            const book = createAccountBook(pricing.value.accounts);
            const wabas = flags.waba ? [...new Set(flags.waba)] : await store.listWabas();
            return fail(
              days
                .map(({ role, day }) =>
                  dayForInstantHint({
                    field: `--${role}`,
                    role,
                    day,
                    wabas,
                    timeZoneOf: (waba) => book.accountFor(waba).timeZone,
                    write: (value) => `--${role} ${value}`,
                    narrow: '--waba',
                  }),
                )
                .join('\nwameter rerate: '),
            );
          }
          // Other cards are checked under the configuration's reported-rules setting, as the service's are.
          const rating = commandRatingService(store, pricing.value, io, {
            loadRateCards: (paths) => loadRateCards(paths, pricing.value.isReportedRulesEnabled),
          });
          // A store another wameter rated: the whole of it is re-rated first as the upgrade (reported), or this
          // re-rate's record, the newest, would hide the upgrade of every WABA it leaves out.
          if (flags.dryRun !== true) {
            await rating.upgrade((message) => io.writeError(`wameter rerate: ${message}\n`));
          } else if (await rating.isUpgradeDue()) {
            io.writeError(`wameter rerate: ${UPGRADE_DUE_IN_DRY_RUN_WARNING}\n`);
          }
          const result = await rating.rerate({
            ...(flags.waba ? { wabas: flags.waba } : {}),
            ...(fromMs === undefined ? {} : { fromMs }),
            ...(toMs === undefined ? {} : { toMs }),
            ...(flags.asOfRules ? { asOfRules: flags.asOfRules } : {}),
            ...(flags.rateCards ? { rateCardPaths: flags.rateCards } : {}),
            isDryRun: flags.dryRun === true,
            ...(flags.allowUnpriced === true ? { allowUnpriced: true } : {}),
            reason: CLI_RERATE_REASON,
          });
          await rating.close();
          if (!result.ok && result.error.code === 'MORE_UNPRICED')
            return fail(
              `${result.error.message}. Rate cards given to rerate replace the configured ones: give every card the stored traffic needs (a folder of them); --dry-run to see what would change, --allow-unpriced to store it anyway`,
            );
          if (!result.ok) return fail(result.error.message);
          const report = result.value;
          if (flags.format === 'json' && report.isAccountsChanged)
            io.writeError(`wameter rerate: ${ACCOUNTS_CHANGED}\n`);
          if (flags.format === 'json' && report.isRateCardsChanged)
            io.writeError(`wameter rerate: ${RATE_CARDS_CHANGED}\n`);
          io.writeOut(
            flags.format === 'json'
              ? `${JSON.stringify(rerateDocument(report), null, 2)}\n`
              : terminalSafe(formatRerateTable(report)),
          );
          await io.settle?.();
          // As `rate` and `import` tell theirs: in the JSON document, or beside the table on stderr.
          if (flags.format === 'table') {
            sayFindings(
              report.findings,
              `${report.findings.length} finding(s) of the new rating (--format json lists them too):`,
              (line) => io.writeError(`wameter rerate: ${line}\n`),
            );
          }
          // Other cards replace the configured ones: a new card given alone leaves the dates before it without
          // one, and a stored re-rate would bill them nothing. Said, as the finding alone says "import a card".
          const replaced =
            flags.rateCards === undefined
              ? undefined
              : replacedCardsNote(
                  report.findings,
                  'the configured rate cards (WAMETER_RATE_CARDS or the "rateCards" of --config FILE; else the bundled ones)',
                  'a folder of every card the stored traffic needs, or the flag repeated; --dry-run first',
                );
          if (replaced) io.writeError(`wameter rerate: ${replaced}\n`);
          // A new bill with charges it could not price, or of messages it could not rate, is not the bill:
          // exit 3 by the rule of `rate` (unpriced.ts), judged on the new rating (its totals, its findings).
          const unpriced = Object.values(report.totals.new).reduce(
            (sum, totals) => sum + (totals.unpriced ?? 0),
            0,
          );
          io.exitCode = unpricedExit(
            {
              unpriced,
              unrated: unratedIn(report.findings),
              unratedCodes: unratedCodesIn(report.findings),
            },
            flags.allowUnpriced,
            (message) => io.writeError(`wameter rerate: ${message}\n`),
            'of the new rating',
          );
        } catch (error) {
          // stdout refusing the report is not a failed re-rate: runCli says it in one line (exit 74).
          if (error instanceof OutputError) throw error;
          fail(`re-rating failed: ${(error as Error).message}`);
        } finally {
          await store.close();
        }
      })
  );
}
