import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { eventKey, type CoreEvent } from '../core/events.js';
import { parseEventValue } from '../ingest/parse-event.js';
import { openStore } from '../store/open-store.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/store.js';
import { acquireWriterLock } from '../store/writer-lock.js';
import { createMemoryLogger } from '../server/logger.js';
import { startServer } from '../server/main.js';
import { conversationLines, KEY_ALL, testConfig } from '../../test/server-kit.js';
import { runWameter } from '../../test/support/cli.js';
import { processIo } from './io.js';
import type { RerateReport } from '../server/rating-service.js';
import { formatRerateTable } from './rerate-command.js';
import { registerServeCommand } from './serve-command.js';

let dir: string;
let db: string;

/** Stores a conversation of `waba`'s number to a user (conversationLines) and closes the store. */
/** A second WABA's conversation (W2), beside what the test stored before, in `cli.db`. */
async function storeW2Conversation(): Promise<void> {
  await storeConversationAndClose(await openSqliteStore(join(dir, 'cli.db')), [
    'W2',
    'PN2',
    '919812345678',
    'wamid.w2',
  ]);
}

async function storeConversationAndClose(
  store: Store,
  [waba, business, user, id] = ['W1', 'PN1', '919876543210', 'wamid.cli'],
): Promise<void> {
  const events: CoreEvent[] = conversationLines(waba, business, user, id).flatMap((line) => {
    const parsed = parseEventValue(line);
    return parsed.ok ? parsed.value.events : [];
  });
  await store.ingestEvents(
    events.map((event) => ({ key: eventKey(event), event, receivedAtMs: 0, source: 'test' })),
  );
  await store.close();
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wameter-rerate-cli-'));
  db = `sqlite:${join(dir, 'cli.db')}`;
  await storeConversationAndClose(await openSqliteStore(join(dir, 'cli.db')));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, out, err } = await runWameter(['rerate', ...args]);
  return { code, stdout: out, stderr: err };
}

describe('wameter rerate', () => {
  it('re-rates under another era and prints old vs new as JSON', async () => {
    const { code, stdout } = await run(['--db', db, '--as-of-rules', 'CBP-2023', '--format', 'json']);
    const report = JSON.parse(stdout) as {
      rating_id: string;
      changed: unknown[];
      totals: { old: object; new: object };
    };
    expect(report.rating_id).toMatch(/^rating_/);
    expect(report.changed.length).toBeGreaterThan(0);
    expect(code).toBe(0);
  });

  it('prints a table with the totals before (never rated: none) and after', async () => {
    const { stdout } = await run(['--db', db, '--dry-run']);
    expect(stdout).toContain('Dry run: nothing stored.');
    expect(stdout).toMatch(/USD: [\d.]+ \(0 units\) → [\d.]+ \(3 units\)/);
  });

  it("gives each WABA's own totals beside the portfolio's (By WABA:, totals_by_waba), which add up to them", async () => {
    await storeW2Conversation();
    const accounts = join(dir, 'accounts.json');
    const account = (waba: string) => ({ waba, timezone: 'UTC', currency: 'USD', portfolio: 'P1' });
    writeFileSync(accounts, JSON.stringify({ accounts: [account('W1'), account('W2')] }));
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ accounts }));
    const args = ['--db', db, '--config', config, '--waba', 'W1', '--as-of-rules', 'CBP-2023', '--dry-run'];
    const { stdout } = await run([...args, '--format', 'json']);
    type Totals = Record<string, { amount: string; units: number }>;
    const report = JSON.parse(stdout) as {
      wabas: string[];
      totals: { old: Totals; new: Totals };
      totals_by_waba: Record<string, { old: Totals; new: Totals }>;
    };
    expect(report.wabas).toEqual(['W1', 'W2']);
    expect(Object.keys(report.totals_by_waba)).toEqual(['W1', 'W2']);
    // Never rated before (stored without a rating): the old totals are empty, the new ones each WABA's.
    const usd = (totals: Totals) => totals.USD ?? { amount: '0', units: 0 };
    for (const side of ['old', 'new'] as const) {
      const [w1, w2] = [usd(report.totals_by_waba.W1![side]), usd(report.totals_by_waba.W2![side])];
      expect(w1.units + w2.units).toBe(usd(report.totals[side]).units);
      expect(Number(w1.amount) + Number(w2.amount)).toBeCloseTo(Number(usd(report.totals[side]).amount), 10);
    }
    const [w1, w2] = [usd(report.totals_by_waba.W1!.new), usd(report.totals_by_waba.W2!.new)];
    expect([w1.units, w2.units]).toEqual([3, 3]); // conversationLines: three units each
    const table = (await run(args)).stdout;
    expect(table).toContain(
      `By WABA:\n  W1:\n    USD: 0 (0 units) → ${w1.amount} (3 units)\n  W2:\n    USD: 0 (0 units) → ${w2.amount} (3 units)\n`,
    );
  });

  /** The table of a re-rate of W1 that changed `changed` (unit JSON abridged) and left `unchanged` alone. */
  const tableOfChanges = (changed: unknown[], unchanged: number) =>
    formatRerateTable({
      ratingId: null,
      isAccountsChanged: false,
      isRateCardsChanged: false,
      outsidePeriod: null,
      wabas: ['W1'],
      changed: changed as RerateReport['changed'],
      unchanged,
      totals: { old: {}, new: {} },
      totalsByWaba: { W1: { old: {}, new: {} } },
      findings: [],
    });

  it('tells apart units whose amount changed, free units that only show another rate, and units added or removed', () => {
    const unit = (amount: string, rate: string) => ({
      category: 'referral_conversion',
      type: 'free_entry_point',
      amount,
      rate,
      currency: 'USD',
    });
    const text = tableOfChanges(
      [
        { unit: 'u_a', old: unit('0.0107', '0.0107'), new: unit('0.0118', '0.0118') },
        { unit: 'u_b', old: unit('0', '0.0107'), new: unit('0', '0.0118') },
        // A free unit merged into another under the new rules: gone, not "changed in amount".
        { unit: 'u_c', old: unit('0', '0.0107'), new: null },
        { unit: 'u_d', old: null, new: unit('0.0118', '0.0118') },
      ],
      3,
    );
    expect(text).toContain(
      'WABAs: W1; 4 units changed (1 in amount, 1 only in another field such as the rate a free unit would have cost, ' +
        '1 only in the new rating, 1 only in the old rating), 3 unchanged.',
    );
  });

  it('says what changed in a unit whose category, type and amount stay the same (its era, its rate…)', () => {
    const unit = (era: string, kind: string, rate: string) => ({
      id: 'u_a',
      unit: kind,
      era,
      category: 'marketing',
      type: 'regular',
      amount: '0.0411',
      rate,
      currency: 'USD',
    });
    const text = tableOfChanges(
      [
        {
          unit: 'u_a',
          old: unit('PMP-2025', 'message', '0.0411'),
          new: unit('CBP-2023', 'conversation', '0.0411'),
        },
        { unit: 'u_b', old: unit('PMP-2025', 'message', '0.0411'), new: unit('PMP-2025', 'message', '0.05') },
      ],
      0,
    );
    expect(text).toContain(' marketing/regular 0.0411 USD (unit, era differ)\n');
    expect(text).toContain(' marketing/regular 0.0411 USD (rate differs)\n');
  });

  it('lines its columns up whatever the length of a unit or its category (authentication_international)', () => {
    const unit = (category: string, amount: string) => ({
      category,
      type: 'regular',
      amount,
      rate: amount,
      currency: 'USD',
    });
    const text = tableOfChanges(
      [
        {
          unit: 'c_W1_PN1_919876543210_authentication_international_1751328000000',
          old: unit('authentication_international', '0.0280'),
          new: unit('authentication_international', '0.0300'),
        },
        { unit: 'm_1', old: unit('utility', '0.0014'), new: unit('utility', '0.0015') },
        { unit: 'm_2', old: null, new: unit('marketing', '0.0107') },
      ],
      0,
    );
    const lines = text.split('\n');
    const header = lines.findIndex((line) => line.startsWith('unit '));
    const rows = lines.slice(header, header + 4);
    // Every row's old and new cells begin where the header's "old" and "new" do, one space or more apart.
    const [oldAt, newAt] = [rows[0]!.indexOf('old'), rows[0]!.indexOf('new')];
    expect(rows.map((row) => row.slice(oldAt).split(' ')[0])).toEqual([
      'old',
      'authentication_international/regular',
      'utility/regular',
      '—',
    ]);
    expect(rows.map((row) => row.slice(newAt).split(' ')[0])).toEqual([
      'new',
      'authentication_international/regular',
      'utility/regular',
      'marketing/regular',
    ]);
    for (const row of rows) expect(row[oldAt - 1]).toBe(' ');
    for (const row of rows) expect(row[newAt - 1]).toBe(' ');
    // No wider than the longest cell needs: one space between the columns of the longest.
    expect(rows[1]).toBe(
      'c_W1_PN1_919876543210_authentication_international_1751328000000 ' +
        'authentication_international/regular 0.0280 USD ' +
        'authentication_international/regular 0.0300 USD',
    );
  });

  it("lists the new rating's findings on stderr (table) and in the JSON's findings, as rate and import do", async () => {
    // July 2025 is per-message pricing, and the bundled cards have no per-message card before July 2025's
    // charges: they are priced from a per-conversation card, which a RATE_CARD_OF_OTHER_MODEL finding says.
    const expected =
      /^wameter rerate: {3}RATE_CARD_OF_OTHER_MODEL: WABA W1: charges per delivered message .*$/m;
    for (const args of [['--dry-run'], []]) {
      const table = await run(['--db', db, ...args]);
      expect(table.code).toBe(0);
      expect(table.stderr).toContain(
        'wameter rerate: 1 finding(s) of the new rating (--format json lists them too):\n',
      );
      expect(table.stderr).toMatch(expected);
      expect(table.stdout).not.toContain('RATE_CARD_OF_OTHER_MODEL');
    }
    const json = await run(['--db', db, '--dry-run', '--format', 'json']);
    const report = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(Object.keys(report)).toEqual([
      'rating_id',
      'wabas',
      'accounts_changed',
      'rate_cards_changed',
      'changed',
      'unchanged',
      'totals',
      'totals_by_waba',
      'outside_period',
      'findings',
    ]);
    expect(report.findings).toEqual([
      expect.objectContaining({ code: 'RATE_CARD_OF_OTHER_MODEL', waba: 'W1', message: expect.any(String) }),
    ]);
    // In JSON the findings are in the document, not said again on stderr.
    expect(json.stderr).toBe('');
  });

  it('refuses a --waba with no stored events (exit 1), naming the WABAs the store holds, and stores nothing', async () => {
    const { code, stdout, stderr } = await run(['--db', db, '--waba', 'W2']);
    expect(stderr).toBe(
      "wameter rerate: no events are stored for WABA W2: nothing was re-rated; the store holds events of 1 WABA(s): W1 (give --waba one of them, or import that WABA's events first)\n",
    );
    expect(stdout).toBe('');
    expect(code).toBe(1);
    // One unknown among known ones (a typo) is refused too, naming only the unknown.
    const mixed = await run(['--db', db, '--waba', 'W1', 'W3', 'W4', '--dry-run']);
    expect(mixed.stderr).toContain(
      'wameter rerate: no events are stored for WABAs W3, W4: nothing was re-rated;',
    );
    expect(mixed.code).toBe(1);
    const store = await openStore(db);
    expect(await store.listRatings(10)).toEqual([]);
    await store.close();
    expect((await run(['--db', db, '--waba', 'W1'])).code).toBe(0);
  });

  it('refuses a store that holds no events (exit 1), saying how to load them, and stores nothing', async () => {
    const empty = `sqlite:${join(dir, 'empty.db')}`;
    await (await openStore(empty)).close();
    const { code, stdout, stderr } = await run(['--db', empty]);
    expect(stderr).toBe(
      'wameter rerate: the store holds no events, so there is nothing to re-rate: load them first with `wameter import` (or POST them to a running `wameter serve`), or check --db, WAMETER_DB, DATABASE_URL or the config file\'s "db"\n',
    );
    expect(stdout).toBe('');
    expect(code).toBe(1);
    const store = await openStore(empty);
    expect(await store.listRatings(10)).toEqual([]);
    await store.close();
  });

  it.each([
    ['later than', '2025-08-01T00:00:00Z', '2025-07-01T00:00:00Z', '2025-07-01T00:00:00Z'],
    ['equal to', '2025-07-01T00:00:00Z', '1751328000', '2025-07-01T00:00:00Z'],
  ])('refuses --from %s --to (exit 1) and stores nothing', async (_, from, to, toShown) => {
    const { code, stdout, stderr } = await run(['--db', db, '--from', from, '--to', to]);
    expect(stderr).toBe(
      `wameter rerate: --from (${from}) must be before --to (${toShown}): units opened at or after --from and before --to are reported; swap them or widen the period\n`,
    );
    expect(stdout).toBe('');
    expect(code).toBe(1);
    const store = await openStore(db);
    expect(await store.listRatings(10)).toEqual([]);
    await store.close();
  });

  it("refuses a day given for --from/--to (it takes instants), saying the instant to write on the WABAs' clock", async () => {
    await storeW2Conversation();
    const accounts = join(dir, 'accounts.json');
    writeFileSync(
      accounts,
      JSON.stringify({
        accounts: [
          { waba: 'W1', timezone: 'America/Sao_Paulo' },
          { waba: 'W2', timezone: 'Asia/Kolkata' },
        ],
      }),
    );
    const config = join(dir, 'service.json');
    writeFileSync(config, JSON.stringify({ accounts }));
    const one = await run([
      '--db',
      db,
      '--config',
      config,
      '--waba',
      'W1',
      '--from',
      '2025-07-01',
      '--dry-run',
    ]);
    expect(one.stderr).toBe(
      'wameter rerate: --from: "2025-07-01" is a day, and --from takes an instant (units opened at or after it ' +
        'are reported). 2025-07-01 begins at 2025-07-01T03:00:00Z on the clock of the WABA re-rated ' +
        '(America/Sao_Paulo: W1): write --from 2025-07-01T03:00:00Z\n',
    );
    expect(one.code).toBe(1);
    // --to: the end of the period is the start of the day after the last one to report.
    const to = await run(['--db', db, '--config', config, '--waba', 'W1', '--to', '2025-07-31', '--dry-run']);
    expect(to.stderr).toBe(
      'wameter rerate: --to: "2025-07-31" is a day, and --to takes an instant (units opened before it are ' +
        'reported). To report the whole of 2025-07-31, give the instant 2025-08-01 begins: 2025-08-01T03:00:00Z ' +
        'on the clock of the WABA re-rated (America/Sao_Paulo: W1): write --to 2025-08-01T03:00:00Z\n',
    );
    // WABAs of two clocks: each clock's instant, and how to re-rate one alone.
    const both = await run(['--db', db, '--config', config, '--from', '2025-07-01', '--dry-run']);
    expect(both.stderr).toBe(
      'wameter rerate: --from: "2025-07-01" is a day, and --from takes an instant (units opened at or after it ' +
        'are reported). 2025-07-01 begins at another instant on each clock of the WABAs re-rated: ' +
        '2025-06-30T18:30:00Z (Asia/Kolkata: W2), 2025-07-01T03:00:00Z (America/Sao_Paulo: W1); one period ' +
        'is reported for all: write the instant of the clock you mean (the earliest, --from ' +
        "2025-06-30T18:30:00Z, takes in the whole day on every clock), or give --waba to re-rate one WABA's portfolio\n",
    );
    expect(both.code).toBe(1);
    const store = await openStore(db);
    expect(await store.listRatings(10)).toEqual([]);
    await store.close();
  });

  it('says when the accounts differ from those the last rating priced with (a rerate without --accounts)', async () => {
    const accounts = join(dir, 'accounts.json');
    writeFileSync(accounts, JSON.stringify({ accounts: [{ waba: 'W1', timezone: 'Asia/Kolkata' }] }));
    const config = join(dir, 'service.json');
    writeFileSync(config, JSON.stringify({ accounts }));
    // A rating under the accounts the service would use, then re-rates with and without them.
    expect((await run(['--db', db, '--config', config])).code).toBe(0);
    const same = await run(['--db', db, '--config', config, '--format', 'json']);
    expect((JSON.parse(same.stdout) as { accounts_changed: boolean }).accounts_changed).toBe(false);
    expect(same.stderr).not.toContain('accounts');
    const without = await run(['--db', db, '--dry-run']);
    expect(without.stdout).toContain('Note: the accounts (time zones, currencies, portfolios…) differ');
    const json = await run(['--db', db, '--dry-run', '--format', 'json']);
    expect((JSON.parse(json.stdout) as { accounts_changed: boolean }).accounts_changed).toBe(true);
    expect(json.stderr).toContain(
      'give the accounts file the service uses (--config FILE or WAMETER_ACCOUNTS)',
    );
  });

  it('says when the rate cards differ in their rates from those the last rating priced with, their ids the same', async () => {
    expect((await run(['--db', db])).code).toBe(0);
    const bundled = join(import.meta.dirname, '..', '..', 'data', 'rate-cards');
    const copyOfCards = (name: string, edit: (text: string) => string): string => {
      const folder = join(dir, name);
      mkdirSync(folder);
      for (const file of readdirSync(bundled)) {
        writeFileSync(join(folder, file), edit(readFileSync(join(bundled, file), 'utf8')));
      }
      return folder;
    };
    const same = await run([
      '--db',
      db,
      '--rate-cards',
      copyOfCards('same', (text) => text),
      '--format',
      'json',
    ]);
    expect((JSON.parse(same.stdout) as { rate_cards_changed: boolean }).rate_cards_changed).toBe(false);
    expect(same.stderr).not.toContain('rate cards');
    const edited = copyOfCards('edited', (text) =>
      text.replace(/^India,\$US,([\d.]+),/m, 'India,$US,0.5000,'),
    );
    const table = await run(['--db', db, '--rate-cards', edited, '--dry-run']);
    expect(table.stdout).toContain(
      "Note: the rate cards' rates differ from those the last rating of these WABAs",
    );
    const json = await run(['--db', db, '--rate-cards', edited, '--dry-run', '--format', 'json']);
    expect((JSON.parse(json.stdout) as { rate_cards_changed: boolean }).rate_cards_changed).toBe(true);
    expect(json.stderr).toContain('(a card edited under the same file name, or other cards)');
  });

  it("checks other rate cards under the configuration's reported-rules setting, as rate --no-reported and import do", async () => {
    const bundled = readFileSync(
      join(import.meta.dirname, '..', '..', 'data', 'rate-cards', 'usd-2025-10-01.csv'),
      'utf8',
    );
    const cards = join(dir, 'bd');
    mkdirSync(cards);
    writeFileSync(
      join(cards, 'usd-2026-10-01.csv'),
      bundled
        .replace('effective October 1, 2025', 'effective October 1, 2026')
        .replace(/(\nMarket,[^\n]*\n)/, '$1Bangladesh,$US,0.0500,0.0100,0.0100,n/a,0.0000\n'),
    );
    const off = join(dir, 'reported-off.json');
    writeFileSync(off, JSON.stringify({ reportedRules: false }));
    const refused = await run(['--db', db, '--config', off, '--rate-cards', cards, '--dry-run']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('MARKET_NOT_IN_FORCE');
    // With the reported rules on (the default), Bangladesh is its own market from 2026-10-01: the card loads.
    const on = await run(['--db', db, '--rate-cards', cards, '--dry-run', '--allow-unpriced']);
    expect(on.stderr).not.toContain('MARKET_NOT_IN_FORCE');
  });

  it('refuses an unknown era with a message listing the eras (exit 1); takes an era in any case, as rate does', async () => {
    const { code, stderr } = await run(['--db', db, '--as-of-rules', 'CBP-1999']);
    expect(stderr).toContain('"CBP-1999" is not an era: use one of NBP, CBP-2022');
    expect(code).toBe(1);
    const lower = await run(['--db', db, '--as-of-rules', 'cbp-2023', '--dry-run', '--format', 'json']);
    expect(lower.code).toBe(0);
    expect((JSON.parse(lower.stdout) as { changed: unknown[] }).changed.length).toBeGreaterThan(0);
  });

  it('says that --rate-cards replaces the configured cards when it leaves dates without a card; the example gives a folder', async () => {
    // "Re-rate under the new card": the card of October 2025 given alone leaves the July traffic without one.
    const card = join(dir, 'usd-2025-10-01.csv');
    writeFileSync(
      card,
      readFileSync(join(import.meta.dirname, '..', '..', 'data', 'rate-cards', 'usd-2025-10-01.csv'), 'utf8'),
    );
    const table = await run(['--db', db, '--rate-cards', card, '--dry-run']);
    expect(table.code).toBe(3);
    expect(table.stderr).toContain('NO_RATE_CARD');
    expect(table.stderr).toContain(
      'wameter rerate: --rate-cards replaces the configured rate cards (WAMETER_RATE_CARDS or the "rateCards" of --config FILE; else the bundled ones), it does not add to them: the dates of the NO_RATE_CARD finding(s) have no card among those given; give their cards too',
    );
    const help = (await runWameter(['rerate', '--help'])).out;
    expect(help).not.toMatch(/rerate [^\n]*--rate-cards \S+\.csv\n/);
    expect(help.replace(/\s+/g, ' ')).toContain(
      'instead of the configured (or bundled) cards, which they replace',
    );
  });

  it('stores no re-rate that leaves more charges without a price than the stored bill, unless --allow-unpriced', async () => {
    const first = await run(['--db', db, '--format', 'json']);
    expect(first.code).toBe(0);
    const stored = (JSON.parse(first.stdout) as { totals: { new: Record<string, { amount: string }> } })
      .totals.new;
    // The card of October 2025 alone: the July traffic has no card, and its charges no price.
    const card = join(dir, 'usd-2025-10-01.csv');
    writeFileSync(
      card,
      readFileSync(join(import.meta.dirname, '..', '..', 'data', 'rate-cards', 'usd-2025-10-01.csv'), 'utf8'),
    );
    const refused = await run(['--db', db, '--rate-cards', card]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(
      /the new rating leaves [1-9]\d* charged unit\(s\) without a price where the stored bill has 0 \(findings: \d+ × NO_RATE_CARD\): nothing was stored\. Rate cards given to rerate replace the configured ones: .*; --dry-run to see what would change, --allow-unpriced to store it anyway\n$/,
    );
    // The stored bill is still the priced one: a dry run with the configured cards changes nothing.
    const after = await run(['--db', db, '--dry-run', '--format', 'json']);
    const report = JSON.parse(after.stdout) as {
      changed: unknown[];
      totals: { old: Record<string, { amount: string }> };
    };
    expect(report.changed).toEqual([]);
    expect(report.totals.old).toEqual(stored);
    // Asked for, it is stored (and exits 3, as any rating with unpriced charges).
    const allowed = await run(['--db', db, '--rate-cards', card, '--allow-unpriced', '--format', 'json']);
    expect(allowed.code).toBe(0);
    expect((JSON.parse(allowed.stdout) as { rating_id: string | null }).rating_id).toMatch(/^rating_/);
  });

  it('says when the new rating has charges without a price (exit 3, the total a floor); --allow-unpriced accepts', async () => {
    // A card dated before the traffic that prices "Other" only: the Indian user's charges have no rate.
    const card = join(dir, 'usd-2025-07-01.csv');
    writeFileSync(
      card,
      'Cost per delivered message in USD, effective July 1, 2025\n\nMarket,Currency,Marketing,Utility,Authentication,Authentication-International,Service\nOther,$US,0.0604,0.0077,0.0077,n/a,0.0000\n',
    );
    const table = await run(['--db', db, '--rate-cards', card, '--dry-run']);
    expect(table.stdout).toMatch(/USD: [\d.]+ \(0 units\) → 0 \(\d+ units, [1-9]\d* not priced\)/);
    // In the words of `rate` (unpriced.ts), of the new rating.
    expect(table.stderr).toMatch(
      /wameter rerate: [1-9]\d* charged unit\(s\) of the new rating could not be priced \(see findings: .*\); pass --allow-unpriced to accept\n/,
    );
    expect(table.code).toBe(3);
    const accepted = await run(['--db', db, '--rate-cards', card, '--dry-run', '--allow-unpriced']);
    expect(accepted.code).toBe(0);
    expect(accepted.stdout).toBe(table.stdout);
  });
});

describe('wameter rerate exits as `wameter rate` does for the same traffic', () => {
  /** A store (and a file) of the conversation every test's store holds and `lines` (contract §1). */
  async function storeAndFile(name: string, lines: object[]): Promise<{ file: string; store: string }> {
    const all = [...conversationLines('W1', 'PN1', '919876543210', 'wamid.cli'), ...lines];
    const events = all.flatMap((line) => {
      const parsed = parseEventValue(line);
      return parsed.ok ? parsed.value.events : [];
    });
    expect(events).toHaveLength(all.length);
    const store = await openSqliteStore(join(dir, `${name}.db`));
    await store.ingestEvents(
      events.map((event) => ({ key: eventKey(event), event, receivedAtMs: 0, source: 'test' })),
    );
    await store.close();
    const file = join(dir, `${name}.ndjson`);
    writeFileSync(file, `${all.map((line) => JSON.stringify(line)).join('\n')}\n`);
    return { file, store: `sqlite:${join(dir, `${name}.db`)}` };
  }
  const status = (id: string, status: string, named: object) => ({
    kind: 'status',
    at: '2025-07-14T10:00:00Z',
    id,
    status,
    waba: 'W1',
    ...named,
  });

  it('exit 3 for UNKNOWN_CATEGORY and STATUS_WITHOUT_USER of a delivered message, as rate; --allow-unpriced, 0', async () => {
    const cases: [string, object, number][] = [
      // No outbound line and no category in Meta's webhook: the message cannot be rated (UNKNOWN_CATEGORY).
      ['UNKNOWN_CATEGORY', status('wamid.nocat', 'delivered', { business: 'PN1', user: '919876543210' }), 3],
      // Delivered, and its status names no user or business number (STATUS_WITHOUT_USER, delivered message).
      ['STATUS_WITHOUT_USER', status('wamid.nouser', 'delivered', {}), 3],
      // Only sent, naming no user: said, but no delivered message is left unrated (rate exits 0 too).
      ['STATUS_WITHOUT_USER', status('wamid.sentonly', 'sent', {}), 0],
    ];
    for (const [index, [code, line, exitCode]] of cases.entries()) {
      const { file, store } = await storeAndFile(`case${index}`, [line]);
      const rated = await runWameter(['rate', file, '--format', 'json']);
      expect(rated.out).toContain(code);
      expect(rated.code, code).toBe(exitCode);
      for (const format of ['table', 'json']) {
        const rerated = await run(['--db', store, '--dry-run', '--format', format]);
        expect(rerated.stderr + rerated.stdout).toContain(code);
        expect(rerated.code, `${code} ${format}: ${rerated.stderr}`).toBe(exitCode);
        if (exitCode === 3) {
          // In the words of `rate` (unpriced.ts), of the new rating.
          expect(rerated.stderr).toContain(
            `wameter rerate: 1 delivered message(s) of the new rating could not be rated (see finding ${code}: feed the send log too); pass --allow-unpriced to accept\n`,
          );
        }
        const accepted = await run(['--db', store, '--dry-run', '--format', format, '--allow-unpriced']);
        expect(accepted.code).toBe(0);
        expect(accepted.stdout).toBe(rerated.stdout);
      }
      // Stored too (not a dry run): the same exit code.
      expect((await run(['--db', store])).code).toBe(exitCode);
    }
  });
});

describe('wameter rerate and serve exit 1 on every refusal, with their message', () => {
  it.each([
    [['rerate', '--as-of-rules', 'XYZ'], '"XYZ" is not an era: use one of NBP'],
    [['rerate', '--db', 'mysql://x'], 'database must be sqlite:PATH or postgres://'],
    [['rerate', '--format', 'yaml'], '--format must be table or json'],
    [['rerate', '--from', 'yesterday'], '--from:'],
    [['serve', '--port', 'abc'], 'port must be a whole number from 0 to 65535'],
    [['serve', '--log-level', 'loud'], '--log-level must be one of debug, info, warn, error, silent'],
    [['serve', '--db', 'sqlite:/nope/x.db'], 'the folder /nope does not exist'],
  ])('%j', async (args, message) => {
    const { code, err } = await runWameter(args);
    expect(err).toContain(message);
    expect(err).not.toMatch(/\n\s+at /);
    expect(code).toBe(1);
  });

  it('serve refuses a --config file with an unknown setting', async () => {
    const config = join(dir, 'bad.json');
    writeFileSync(config, JSON.stringify({ port: 0, loudness: 11 }));
    const { code, err } = await runWameter(['serve', '--config', config]);
    expect(err).toContain('config file: unknown setting "loudness"');
    expect(code).toBe(1);
  });

  it('rerate refuses rate cards it cannot read (exit 1)', async () => {
    const { code, err } = await runWameter(['rerate', '--db', db, '--rate-cards', join(dir, 'nope.csv')]);
    expect(err).toContain('nope.csv');
    expect(code).toBe(1);
  });
});

describe('wameter serve', () => {
  it('refuses a bad configuration with what to fix, without starting (exit 1)', async () => {
    const { code, err } = await runWameter(['serve', '--port', 'eighty', '--db', 'mysql://nope']);
    expect(err).toContain('port must be a whole number');
    expect(err).toContain('database must be sqlite:PATH or postgres://');
    expect(code).toBe(1);
  });

  it('has help text with examples', () => {
    const program = new Command();
    const serve = registerServeCommand(program, processIo());
    expect(serve.helpInformation()).toContain('--db <url>');
    let help = '';
    serve.configureOutput({ writeOut: (text) => (help += text) });
    serve.outputHelp();
    expect(help).toContain('WAMETER_API_KEYS');
    expect(help).toContain('Examples:');
    expect(help).toContain('Exit codes: 0 stopped by SIGTERM or SIGINT');
  });
});

describe('a start after `wameter rerate`', () => {
  /** How many portfolios the start rated and found current (its "initial rating done" line). */
  const startRating = async () => {
    const logger = createMemoryLogger();
    const server = await startServer(testConfig({ db, port: 0, host: '127.0.0.1' }), {
      logger,
      ratingWorkerScript: null,
    });
    try {
      for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
        const line = logger.lines.find((text) => text.includes('"initial rating done"'));
        if (line !== undefined) {
          const fields = JSON.parse(line) as Record<string, number>;
          return { rated: fields.portfolios_rated, current: fields.portfolios_current };
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`no "initial rating done" line: ${logger.lines.join('\n')}`);
    } finally {
      await server.close();
    }
  };

  it('rates nothing after a re-rate under the same rules and cards, and the portfolio after a what-if', async () => {
    expect((await run(['--db', db])).code).toBe(0);
    expect(await startRating()).toEqual({ rated: 0, current: 1 });
    expect((await run(['--db', db, '--as-of-rules', 'CBP-2023'])).code).toBe(0);
    expect(await startRating()).toEqual({ rated: 1, current: 0 });
  });
});

/** The refusal while `wameter serve` (this process, here) holds the database's writer lock. */
const HELD_BY_SERVE = new RegExp(
  `a wameter serve \\(pid ${process.pid} on ${hostname()}, since \\d{4}-\\d\\d-\\d\\dT[\\d:]+Z\\) ` +
    'is rating this database: ',
);

describe('one process writes ratings to a database (the writer lock)', () => {
  it('rerate refuses while a serve rates the database, says to use its POST /v1/rerate, and stores nothing', async () => {
    const lock = await acquireWriterLock(db, { command: 'serve' });
    try {
      const { code, stderr, stdout } = await run(['--db', db, '--as-of-rules', 'CBP-2023']);
      expect(stderr).toMatch(
        new RegExp(
          `^wameter rerate: ${HELD_BY_SERVE.source}re-rate through its POST /v1/rerate, or stop it first`,
        ),
      );
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(stdout).toBe('');
      expect(code).toBe(1);
    } finally {
      await lock.release();
    }
    const store = await openStore(db);
    expect(await store.listRatings(10)).toEqual([]);
    await store.close();
    // Released: the same re-rate now runs and is kept.
    expect((await run(['--db', db, '--as-of-rules', 'CBP-2023'])).code).toBe(0);
  });

  it('a running service holds the lock from its start to its close', async () => {
    const server = await startServer(testConfig({ db, port: 0, host: '127.0.0.1' }), {
      logger: createMemoryLogger(),
      ratingWorkerScript: null,
    });
    try {
      const { code, stderr } = await run(['--db', db, '--as-of-rules', 'CBP-2023']);
      expect(stderr).toMatch(new RegExp(`^wameter rerate: ${HELD_BY_SERVE.source}re-rate through its POST`));
      expect(code).toBe(1);
    } finally {
      await server.close();
    }
    expect((await run(['--db', db, '--as-of-rules', 'CBP-2023'])).code).toBe(0);
  });

  it('a dry run stores nothing, so it runs beside a serve', async () => {
    const lock = await acquireWriterLock(db, { command: 'serve' });
    try {
      const { code, stdout } = await run(['--db', db, '--dry-run']);
      expect(stdout).toContain('Dry run: nothing stored.');
      expect(code).toBe(0);
    } finally {
      await lock.release();
    }
  });

  it('serve does not start while another serve rates the database (exit 1, naming it in its log)', async () => {
    const lock = await acquireWriterLock(db, { command: 'serve' });
    // The service's log is the process's stdout (its JSON lines), not the command's io.
    const logged: string[] = [];
    const write = vi
      .spyOn(process.stdout, 'write')
      .mockImplementation((chunk: string | Uint8Array) => logged.push(String(chunk)) > 0);
    try {
      const { code, err } = await runWameter([
        'serve',
        ...['--db', db, '--port', '0', '--host', '127.0.0.1', '--log-level', 'error'],
      ]);
      const lines = logged.join('').trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({
        level: 'error',
        msg: expect.stringMatching(
          new RegExp(`^cannot start: ${HELD_BY_SERVE.source}run one wameter serve per database`),
        ),
        errorCode: 'START_FAILED',
      });
      expect(err).toBe('');
      expect(code).toBe(1);
    } finally {
      write.mockRestore();
      await lock.release();
    }
  });

  it('on PostgreSQL too: rerate refuses while a serve holds the schema, and runs once it is released', async () => {
    const server = process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const admin = new pg.Client({ connectionString: server, connectionTimeoutMillis: 5_000 });
    await admin.connect();
    const schema = `wameter_rerate_${randomBytes(5).toString('hex')}`;
    try {
      await admin.query(`CREATE SCHEMA ${schema}`);
      const url = new URL(server);
      url.searchParams.set('options', `-c search_path=${schema}`);
      const pgDb = url.toString();
      await storeConversationAndClose(await openStore(pgDb));
      const lock = await acquireWriterLock(pgDb, { command: 'serve' });
      try {
        const { code, stderr } = await run(['--db', pgDb, '--as-of-rules', 'CBP-2023']);
        expect(stderr).toMatch(
          new RegExp(`^wameter rerate: ${HELD_BY_SERVE.source}re-rate through its POST /v1/rerate`),
        );
        expect(code).toBe(1);
      } finally {
        await lock.release();
      }
      expect((await run(['--db', pgDb, '--as-of-rules', 'CBP-2023'])).code).toBe(0);
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  });
});

describe('the document of `wameter rerate --format json` and of POST /v1/rerate (rerateDocument)', () => {
  it('is the same for the same store and request, bar the id of the rating each stored', async () => {
    const file = join(dir, 'cli.db');
    await storeConversationAndClose(await openSqliteStore(file), ['W2', 'PN2', '919812345678', 'wamid.w2']);
    // A user of no known market: its charges are unpriced, and the document lists findings.
    await storeConversationAndClose(await openSqliteStore(file), ['W3', 'PN3', '999074955201', 'wamid.w3']);
    // Rated once, as a service would have: each re-rate below compares against that rating.
    expect((await run(['--db', db, '--allow-unpriced'])).code).toBe(0);
    const apiFile = join(dir, 'api.db');
    copyFileSync(file, apiFile);
    const request = {
      from: '2025-07-11T00:00:00Z',
      to: '2025-08-01T00:00:00Z',
      wabas: ['W1', 'W3'],
      as_of_rules: 'CBP-2023',
      allow_unpriced: true,
    };
    const flags = [
      ...['--from', request.from, '--to', request.to, '--waba', ...request.wabas],
      ...['--as-of-rules', request.as_of_rules, '--allow-unpriced', '--format', 'json'],
    ];
    for (const isDryRun of [true, false]) {
      const cli = await run(['--db', db, ...flags, ...(isDryRun ? ['--dry-run'] : [])]);
      expect(cli.code, cli.stderr).toBe(0);
      const server = await startServer(testConfig({ db: `sqlite:${apiFile}` }), {
        logger: createMemoryLogger(),
        ratingWorkerScript: null,
      });
      let answered: Response;
      try {
        answered = await fetch(`${server.url}/v1/rerate`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY_ALL}`, 'content-type': 'application/json' },
          body: JSON.stringify({ ...request, dry_run: isDryRun }),
        });
      } finally {
        await server.close();
      }
      expect(answered.status).toBe(200);
      const fromApi = (await answered.json()) as Record<string, unknown>;
      const fromCli = JSON.parse(cli.stdout) as Record<string, unknown>;
      // Something to compare: units changed under the era, findings of the unpriced market.
      expect((fromCli.changed as unknown[]).length).toBeGreaterThan(0);
      expect((fromCli.findings as unknown[]).length).toBeGreaterThan(0);
      if (isDryRun) {
        expect(fromApi.rating_id).toBeNull();
        expect(fromCli.rating_id).toBeNull();
      } else {
        expect(fromApi.rating_id).toMatch(/^rating_/);
        expect(fromCli.rating_id).toMatch(/^rating_/);
        expect(fromApi.rating_id).not.toBe(fromCli.rating_id);
      }
      const withoutId = (document: Record<string, unknown>) => ({ ...document, rating_id: 'its own' });
      // The same fields in the same order, and the same values.
      expect(Object.keys(fromApi)).toEqual(Object.keys(fromCli));
      expect(withoutId(fromApi)).toEqual(withoutId(fromCli));
    }
  });
});
