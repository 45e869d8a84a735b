// The dashboard end to end, as a person uses it: the real server (`startServer`, on a loopback port) with
// each store engine, a month of generated traffic sent through POST /v1/events, and Debian's Chromium driven
// by playwright-core — overview, units filter and CSV export, a user's timeline, an estimate, reconciliation.
// Screenshots land in test-results/dashboard/ (git-ignored) for a reviewer to look at.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeWabas,
  generateAccounts,
  generateTraffic,
  type TrafficOptions,
} from '../bench/generate-traffic.js';
import { DEFAULT_BODY_LIMIT_BYTES, type ServiceConfig } from '../src/server/config.js';
import { createMemoryLogger } from '../src/server/logger.js';
import { bundledCardsWithTiers } from './server-kit.js';
import { startServer, type RunningServer } from '../src/server/main.js';

const CHROMIUM = process.env.WAMETER_CHROMIUM ?? '/usr/bin/chromium';
const POSTGRES_URL = process.env.WAMETER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const KEY = 'dashboard-e2e-admin-key';
/** A client's key for one WABA of a shared portfolio (the generator's first two WABAs share one). */
const CLIENT_KEY = 'dashboard-e2e-client-key';
const SHOTS = join(import.meta.dirname, '..', 'test-results', 'dashboard');
const TRAFFIC: TrafficOptions = {
  seed: 20251001,
  users: 600,
  wabas: 3,
  start: '2025-10-01T00:00:00Z',
  days: 30,
  eventsTarget: 6_000,
};

const dir = mkdtempSync(join(tmpdir(), 'wameter-dashboard-e2e-'));
const accountsPath = join(dir, 'accounts.json');
/** The bundled rate cards, and volume-tier bands for India's utility messages of October 2025. */
const cardsDir = join(dir, 'cards');
const schemas: string[] = [];
let browser: Browser;
let admin: pg.Client | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: the dashboard tests need a real browser. ` +
        'Install Debian\'s package with "apt-get update && apt-get install -y chromium" ' +
        '(or set WAMETER_CHROMIUM to its path). Never download a browser through playwright.',
    );
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-gpu',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(accountsPath, JSON.stringify(generateAccounts(TRAFFIC)));
  bundledCardsWithTiers(dir, ['India,$US,Utility,1,50,0.0014', 'India,$US,Utility,51,,0.0012']);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (admin) {
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function freshPostgresUrl(): Promise<string> {
  if (!admin) {
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 5_000 });
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw new Error(
        `PostgreSQL is not reachable at ${POSTGRES_URL}: ${(error as Error).message} (start it, or set WAMETER_TEST_POSTGRES_URL)`,
      );
    }
    admin = client;
  }
  const schema = `wameter_dash_${randomBytes(5).toString('hex')}`;
  schemas.push(schema);
  await admin.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

function serviceConfig(db: string): ServiceConfig {
  return {
    db,
    port: 0,
    host: '127.0.0.1',
    appSecrets: [],
    verifyToken: null,
    apiKeys: [
      { name: 'admin', key: KEY, wabas: '*' },
      { name: 'client', key: CLIENT_KEY, wabas: [sharedPortfolioWaba()] },
    ],
    accountsPath,
    rateCardPaths: [cardsDir],
    bodyLimitBytes: DEFAULT_BODY_LIMIT_BYTES,
    rateLimit: null,
    logLevel: 'silent',
    ratingDebounceMs: 20,
  };
}

/** The first WABA of the generated traffic, which shares its portfolio with the second. */
function sharedPortfolioWaba(): string {
  const [first, second] = describeWabas(TRAFFIC);
  if (!first || !second || first.portfolio !== second.portfolio) {
    throw new Error('the generated traffic no longer has its first two WABAs share a portfolio');
  }
  return first.waba;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are read loosely; the shapes are asserted
async function api(server: RunningServer, path: string, init: RequestInit = {}, key = KEY): Promise<any> {
  const response = await fetch(server.url + path, {
    ...init,
    headers: { Authorization: `Bearer ${key}`, ...(init.headers ?? {}) },
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/**
 * One planted disagreement: the send log says utility, Meta's status webhook priced it as marketing (what a
 * template recategorised by Meta looks like). Reconciliation must show it, and nothing else.
 */
function plantedDisagreement(): string[] {
  const [waba] = describeWabas(TRAFFIC);
  const party = { waba: waba!.waba, business: waba!.numbers[0]!.phoneNumberId, user: '919800077001' };
  return [
    JSON.stringify({
      kind: 'outbound',
      at: '2025-10-20T12:00:00Z',
      ...party,
      id: 'wamid.planted',
      template: 'utility',
    }),
    JSON.stringify({
      kind: 'status',
      at: '2025-10-20T12:00:02Z',
      id: 'wamid.planted',
      status: 'delivered',
      pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
    }),
  ];
}

/** The user of the planted charge sent on 2025-10-01 01:00 UTC, still September 30th in São Paulo. */
const DAY_EDGE_USER = '5511987650001';
/** The user of the planted charge that cannot be priced: no country calling code starts 999. */
const UNPRICED_USER = '999000111222';
/** Its send time: the only unit of the third WABA in the minute around it. */
const UNPRICED_AT = '2025-10-21T12:00:00Z';

/**
 * Two more planted charges: an authentication template delivered when the São Paulo WABA's local date is
 * still 2025-09-30 (priced from the card in force that day, a per-conversation one: RATE_CARD_OF_OTHER_MODEL),
 * and a marketing template to a number of no country (a charged unit without a price: UNKNOWN_RECIPIENT).
 */
function plantedCharges(): string[] {
  const [, saoPaulo, third] = describeWabas(TRAFFIC);
  if (saoPaulo?.timeZone !== 'America/Sao_Paulo' || !third) {
    throw new Error('the generated traffic no longer has a second WABA in America/Sao_Paulo and a third');
  }
  const send = (waba: typeof saoPaulo, user: string, id: string, at: string, template: string) => [
    JSON.stringify({
      kind: 'outbound',
      at,
      waba: waba.waba,
      business: waba.numbers[0]!.phoneNumberId,
      user,
      id,
      template,
    }),
    JSON.stringify({
      kind: 'status',
      at: new Date(Date.parse(at) + 2000).toISOString(),
      id,
      status: 'delivered',
    }),
  ];
  // Meta's webhook of a user's message naming both their number and their business-scoped id: the rating
  // joins the two, and explain by the id tells the number's story.
  const scopedInbound = {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: saoPaulo.waba,
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: {
                display_phone_number: '5511900000000',
                phone_number_id: saoPaulo.numbers[0]!.phoneNumberId,
              },
              contacts: [{ profile: { name: 'Ana' }, wa_id: SCOPED_NUMBER, user_id: SCOPED_USER }],
              messages: [
                {
                  from: SCOPED_NUMBER,
                  from_user_id: SCOPED_USER,
                  id: 'wamid.scoped-in',
                  timestamp: String(Date.parse('2025-10-20T12:00:00Z') / 1000),
                  type: 'text',
                  text: { body: 'oi' },
                },
              ],
            },
          },
        ],
      },
    ],
  };
  return [
    ...send(saoPaulo, DAY_EDGE_USER, 'wamid.day-edge', '2025-10-01T01:00:00Z', 'authentication'),
    ...send(third, UNPRICED_USER, 'wamid.unpriced', UNPRICED_AT, 'marketing'),
    JSON.stringify(scopedInbound),
  ];
}

/** A user Meta names by number and by business-scoped id in one webhook (`plantedCharges`). */
const SCOPED_NUMBER = '5511987650002';
const SCOPED_USER = 'BR.13491208655302741918';

/** A month of traffic through the ingest API, in bodies of 1,500 lines. */
async function loadTraffic(server: RunningServer): Promise<number> {
  const lines = [...generateTraffic(TRAFFIC), ...plantedDisagreement(), ...plantedCharges()];
  for (let start = 0; start < lines.length; start += 1500) {
    const answer = await api(server, '/v1/events', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-ndjson' },
      body: lines.slice(start, start + 1500).join('\n'),
    });
    expect(answer.rejected).toEqual([]);
  }
  return lines.length;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

/** WCAG contrast ratio of two CSS colours "rgb(r, g, b)". */
function contrast(one: string, two: string): number {
  const luminance = (css: string) => {
    const [r, g, b] = (css.match(/[\d.]+/g) ?? []).slice(0, 3).map((part) => {
      const c = Number(part) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
  };
  const [light, dark] = [luminance(one), luminance(two)].sort((a, b) => b - a);
  return (light! + 0.05) / (dark! + 0.05);
}

/**
 * An overview answer of large amounts with more decimals than a float keeps, over 14 markets (more than the
 * 12 drawn one by one): IDR, two days.
 */
function syntheticOverview() {
  const keys = Array.from({ length: 14 }, (_, i) => `market-${String(i).padStart(2, '0')}`);
  const amounts = ['1234567.1234567', '0.1', '0.2'];
  const bucket = {
    start: '2025-10-01T00:00:00Z',
    end: '2025-10-02T00:00:00Z',
    label: '2025-10-01',
    amount: '0',
    charged_units: 42,
    free_units: 0,
    by: Object.fromEntries(
      keys.map((key, i) => [key, { amount: amounts[i % 3], charged_units: 3, free_units: 0 }]),
    ),
  };
  return {
    granularity: 'DAILY',
    by: 'market',
    time_zone: 'UTC',
    truncated: null,
    totals: { IDR: { amount: '12345673.834567', units: 42 } },
    currencies: [
      {
        currency: 'IDR',
        keys,
        totals: { amount: '12345673.834567', charged_units: 42, free_units: 0 },
        buckets: [bucket, { ...bucket, start: '2025-10-02T00:00:00Z', label: '2025-10-02' }],
      },
    ],
  };
}

function runDashboardScenario(engine: 'sqlite' | 'postgres') {
  describe(`the dashboard on ${engine === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, () => {
    let server: RunningServer;
    let page: Page;

    beforeAll(async () => {
      const db = engine === 'sqlite' ? `sqlite:${join(dir, 'dashboard.db')}` : await freshPostgresUrl();
      server = await startServer(serviceConfig(db), { logger: createMemoryLogger(Date.now) });
      const home = await fetch(`${server.url}/`);
      if (!(home.headers.get('content-type') ?? '').startsWith('text/html')) {
        throw new Error(
          'startServer does not serve the dashboard: call registerDashboardRoutes(app, { store, config, clock, ' +
            'logger, rating, pricing: pricing.value }) after createApp in src/server/main.ts',
        );
      }
      const lines = await loadTraffic(server);
      expect(lines).toBeGreaterThan(4000);
      const context = await browser.newContext({
        viewport: { width: 1280, height: 800 },
        acceptDownloads: true,
      });
      page = await context.newPage();
      page.on('pageerror', (error) => {
        throw new Error(`the dashboard threw: ${error.message}`);
      });
    }, 180_000);

    afterAll(async () => {
      await page?.context().close();
      await server?.close();
    });

    it('is served at / and asks for the API key, then shows a readable error for a wrong one', async () => {
      await page.goto(`${server.url}/`);
      await expect(page.getByRole('heading', { name: 'Overview' }).isVisible()).resolves.toBe(true);
      await expect(page.locator('#notice').textContent()).resolves.toContain('Enter your API key');
      await page.getByLabel('API key').fill('not-the-key');
      await page.getByRole('button', { name: 'Use key' }).click();
      const error = page.locator('.error-box').first();
      await error.waitFor();
      await expect(error.textContent()).resolves.toMatch(/valid API key.*UNAUTHENTICATED, HTTP 401/);
      // Said as the page's reader acts on it: where to put another key, not which header a script sends.
      await expect(error.textContent()).resolves.toContain(
        'The API key kept in this browser was refused: paste a valid one in the "API key" box at the top',
      );
    });

    it('overview: the total a person reads equals /v1/totals, with the spend chart drawn', async () => {
      await page.getByLabel('API key').fill(KEY);
      await page.getByRole('button', { name: 'Use key' }).click();
      const total = page.locator('[data-currency="USD"] [data-stat="total-amount"]');
      await total.waitFor();
      const totals = (await api(server, '/v1/totals')).totals;
      expect(Number(totals.USD.amount)).toBeGreaterThan(0);
      // The planted charge without a price: the total is a floor, and says so.
      expect(totals.USD.unpriced).toBe(1);
      await expect(total.textContent()).resolves.toBe(`at least ${totals.USD.amount} USD`);
      await expect(
        page.locator('[data-currency="USD"] [data-stat="total-amount-note"]').textContent(),
      ).resolves.toBe('1 charged unit not priced: the total is a floor');
      await expect(
        page.locator('[data-currency="USD"] [data-stat="total-units"]').textContent(),
      ).resolves.toBe(totals.USD.units.toLocaleString('en-US'));
      const chart = page.locator('#spend-chart-USD');
      await expect(chart.getAttribute('aria-label')).resolves.toMatch(
        /^Spend by category in USD: 3\d bars from 2025-\d\d-\d\d/,
      );
      expect(await chart.locator('rect').count()).toBeGreaterThan(30);
      await page.locator('#tier-table').waitFor();
      expect(await page.locator('#tier-table tbody tr').count()).toBeGreaterThan(0);
      await shot(page, `${engine}-1-overview`);

      await page.getByRole('button', { name: 'Month' }).click();
      await page.waitForFunction(() =>
        /: (1 bar|2 bars) from/.test(
          document.querySelector('#spend-chart-USD')?.getAttribute('aria-label') ?? '',
        ),
      );
      await page.getByLabel('Break down by').selectOption('market');
      await page.waitForFunction(() =>
        document.querySelector('#spend-chart-USD')?.getAttribute('aria-label')?.startsWith('Spend by market'),
      );
      await expect(total.textContent()).resolves.toBe(`at least ${totals.USD.amount} USD`);
      // Past the 12 markets drawn one by one, the rest is one series, its tooltip in the currency too.
      const others = await chart.locator('rect title', { hasText: 'others:' }).allTextContents();
      const overview = await api(server, '/v1/dashboard/overview?granularity=MONTHLY&by=market');
      if (overview.currencies[0].keys.length > 12) expect(others.length).toBeGreaterThan(0);
      for (const text of others) expect(text).toMatch(/ others: [\d.,]+ USD$/);
      await shot(page, `${engine}-2-overview-monthly-by-market`);
    });

    it('a render overtaken by a newer one ("Use key" twice, quick navigation) leaves nothing on the page', async () => {
      // The dashboard's own answers come late, as from a loaded server: every overtaken render gets its
      // answers after the latest one has started, and would draw beside it.
      await page.route('**/v1/dashboard/**', async (route) => {
        await new Promise((resolve) => setTimeout(resolve, 400));
        await route.continue();
      });
      await page.getByLabel('API key').fill(KEY);
      await page.getByRole('button', { name: 'Use key' }).dblclick();
      await page.getByRole('link', { name: 'Units' }).click();
      await page.getByRole('link', { name: 'Overview' }).click();
      await page.getByRole('link', { name: 'Estimate' }).click();
      await page.getByRole('link', { name: 'Overview' }).click();
      await page.locator('#tier-table').waitFor();
      // Let every overtaken render get its answers and try to draw.
      await page.waitForTimeout(1500);
      await expect(page.locator('main h1').allTextContents()).resolves.toEqual(['Overview']);
      expect(await page.locator('#spend-title').count()).toBe(1);
      expect(await page.locator('#tier-table').count()).toBe(1);
      expect(await page.locator('#f-by').count()).toBe(1);
      // An overtaken render never rewrites the address either.
      await expect(page.evaluate(() => location.hash)).resolves.toMatch(/^#\/overview/);
      await page.unroute('**/v1/dashboard/**');
    });

    it('overview of one unpriced charge: "at least 0 USD" beside its charged unit, and whole-number unit ticks', async () => {
      const third = describeWabas(TRAFFIC)[2]!;
      await page.goto('about:blank');
      await page.goto(
        `${server.url}/#/overview?waba=${third.waba}&from=2025-10-21T11:59:00Z&to=2025-10-21T12:01:00Z`,
      );
      const total = page.locator('[data-currency="USD"] [data-stat="total-amount"]');
      await total.waitFor();
      await expect(page.locator('[data-stat="charged-units"]').textContent()).resolves.toBe('1');
      await expect(total.textContent()).resolves.toBe('at least 0 USD');
      // A link made with times, not days: kept as asked, and said on the WABA's clock (Jakarta, UTC+7).
      await expect(page.locator('#exact-times').textContent()).resolves.toBe(
        'This page’s address asks from 2025-10-21 18:59:00 to 2025-10-21 19:01:00 (not included) on the ' +
          'Asia/Jakarta clock, not whole days: the figures are of those times. Pick a day to replace them.',
      );
      await expect(page.locator('[data-stat="total-amount-note"]').textContent()).resolves.toContain(
        '1 charged unit not priced',
      );
      const ticks = await page
        .locator('svg[aria-label^="Charged and free units"] text[text-anchor="end"]')
        .allTextContents();
      expect(ticks).toEqual(['0', '1']);
    });

    it('overview: a WABA east of UTC gets the allowance of its own calendar month, not the UTC one', async () => {
      // All traffic is in October; Asia/Kolkata's October starts at 2025-09-30T18:30Z.
      const kolkata = describeWabas(TRAFFIC).find((profile) => profile.timeZone === 'Asia/Kolkata')!;
      expect(kolkata).toBeDefined();
      await page.goto('about:blank'); // a fresh load: nothing of the previous overview is left on the page
      await page.goto(`${server.url}/#/overview?waba=${kolkata.waba}&granularity=MONTHLY`);
      await expect(page.locator('#f-waba').inputValue()).resolves.toBe(kolkata.waba);
      await page.waitForFunction(() =>
        /: 1 bars? from 2025-10/.test(
          document.querySelector('#spend-chart-USD')?.getAttribute('aria-label') ?? '',
        ),
      );
      const allowances = page.locator('section[aria-labelledby="allowance-title"]');
      await allowances.getByText('Rules of 2025-10').waitFor({ timeout: 10_000 });
      await expect(page.locator('#f-month').inputValue()).resolves.toBe('2025-10');
      await page.locator('#tier-table').waitFor();
      expect(await page.locator('#tier-table tbody tr').count()).toBeGreaterThan(0);
      await expect(allowances.textContent()).resolves.not.toContain('No charged utility');
    });

    it('overview: filters changed while an answer is late draw only the latest (no overtaken allowances)', async () => {
      const [first, second] = describeWabas(TRAFFIC);
      await page.goto('about:blank');
      await page.goto(`${server.url}/#/overview`);
      await page.locator('#tier-table').waitFor();
      // The first WABA's overview answers late, after the second's.
      await page.route('**/v1/dashboard/overview?**', async (route) => {
        if (route.request().url().includes(`waba=${first!.waba}`)) {
          await new Promise((resolve) => setTimeout(resolve, 1200));
        }
        await route.continue();
      });
      const allowances: string[] = [];
      const onRequest = (request: { url(): string }): void => {
        if (request.url().includes('/v1/dashboard/allowances')) allowances.push(request.url());
      };
      page.on('request', onRequest);
      await page.locator('#f-waba').selectOption(first!.waba);
      await page.locator('#f-waba').selectOption(second!.waba);
      await page.waitForTimeout(2500); // the late answer has come and gone
      page.off('request', onRequest);
      await page.unroute('**/v1/dashboard/overview?**');
      expect(allowances).toHaveLength(1);
      expect(allowances[0]).toContain(`waba=${second!.waba}`);
      expect(await page.locator('#spend-body').count()).toBe(1);
      expect(await page.locator('#tier-table').count()).toBeLessThanOrEqual(1);
    });

    it('units: filters applied again while the first answer is late show the latest filter only', async () => {
      await page.goto('about:blank');
      await page.goto(`${server.url}/#/units`);
      await page.locator('#units-table').waitFor();
      await page.route('**/v1/units?**', async (route) => {
        if (route.request().url().includes('category=marketing')) {
          await new Promise((resolve) => setTimeout(resolve, 1200));
        }
        await route.continue();
      });
      await page.getByLabel('Category').selectOption('marketing');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.getByLabel('Category').selectOption('utility');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.waitForTimeout(2500); // the late marketing page has come and gone
      await page.unroute('**/v1/units?**');
      const categories = await page.locator('#units-table tbody tr td:nth-child(6)').allTextContents();
      expect(categories.length).toBeGreaterThan(0);
      expect(new Set(categories)).toEqual(new Set(['utility']));
      await expect(page.locator('#units-status').textContent()).resolves.toMatch(/^Page 1: /);
    });

    it('units: filtering by category shows only that category, pages on, and exports exactly the filter as CSV', async () => {
      await page.getByRole('link', { name: 'Units' }).click();
      await page.locator('#units-table').waitFor();
      await page.getByLabel('Category').selectOption('marketing');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.waitForFunction(() => location.hash.includes('category=marketing'));
      await page.locator('#units-status').filter({ hasText: 'Page 1' }).waitFor();
      // The status may still be the unfiltered page's while the filtered one loads (seen under a loaded
      // machine: no row yet): wait for the filtered rows themselves.
      await page.waitForFunction(() => {
        const cells = Array.from(document.querySelectorAll('#units-table tbody tr td:nth-child(6)'));
        return cells.length > 0 && cells.every((cell) => cell.textContent === 'marketing');
      });
      const categories = await page.locator('#units-table tbody tr td:nth-child(6)').allTextContents();
      expect(categories.length).toBe(50);
      expect(new Set(categories)).toEqual(new Set(['marketing']));
      const firstPageIds = await page.locator('#units-table tbody tr td:nth-child(10)').allTextContents();
      await page.getByRole('button', { name: 'Next page' }).click();
      await page.locator('#units-status').filter({ hasText: 'Page 2' }).waitFor();
      const secondPageIds = await page.locator('#units-table tbody tr td:nth-child(10)').allTextContents();
      expect(secondPageIds.some((id) => firstPageIds.includes(id))).toBe(false);
      await shot(page, `${engine}-3-units-marketing`);

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'Export CSV' }).click(),
      ]);
      const csv = readFileSync((await download.path())!, 'utf8')
        .trim()
        .split('\r\n');
      const marketingUnits = (await api(server, '/v1/totals?category=marketing')).totals.USD.units;
      expect(csv.length - 1).toBe(marketingUnits);
      expect(csv.slice(1).every((row) => row.split(',')[9] === 'marketing')).toBe(true);
    });

    it('units: the Amount header lists the dearest first, page after page, kept in the address and the CSV; Opened lists them by time again', async () => {
      const saoPaulo = describeWabas(TRAFFIC)[1]!;
      const list = await keyedPage(`#/units?waba=${saoPaulo.waba}`);
      try {
        await list.locator('#units-table').waitFor();
        const ids = () => list.locator('#units-table tbody tr td:nth-child(10)').allTextContents();
        const amountHeader = list.locator('#units-table thead th', { has: list.locator('#sort-amount') });
        await expect(amountHeader.getAttribute('aria-sort')).resolves.toBe('none');
        await list.getByRole('button', { name: 'Amount', exact: true }).click();
        await list.locator('#units-status').filter({ hasText: 'dearest first' }).waitFor();
        await list.waitForFunction(() => location.hash.includes('order=amount_desc'));
        await expect(amountHeader.getAttribute('aria-sort')).resolves.toBe('descending');
        await expect(list.getByLabel('Order').inputValue()).resolves.toBe('amount_desc');
        // What the API lists dearest first, page by page: the table's pages, in that order.
        const first = await api(server, `/v1/units?waba=${saoPaulo.waba}&order=amount_desc&limit=50`);
        const amounts = (first.units as { amount: string | null }[]).map((u) => Number(u.amount ?? -1));
        expect(amounts[0]).toBeGreaterThan(amounts.at(-1)!);
        expect(amounts).toEqual([...amounts].sort((a, b) => b - a));
        await expect(ids()).resolves.toEqual(first.units.map((u: { id: string }) => u.id));
        await list.getByRole('button', { name: 'Next page' }).click();
        await list.locator('#units-status').filter({ hasText: 'Page 2' }).waitFor();
        const second = await api(
          server,
          `/v1/units?waba=${saoPaulo.waba}&order=amount_desc&limit=50&cursor=${encodeURIComponent(first.next_cursor)}`,
        );
        await expect(ids()).resolves.toEqual(second.units.map((u: { id: string }) => u.id));
        await shot(list, `${engine}-3-units-dearest-first`);
        // The export holds the same units in the same order.
        const [download] = await Promise.all([
          list.waitForEvent('download'),
          list.getByRole('button', { name: 'Export CSV' }).click(),
        ]);
        const rows = readFileSync((await download.path())!, 'utf8')
          .trim()
          .split('\r\n')
          .slice(1);
        expect(rows.slice(0, 100).map((row) => row.split(',')[0])).toEqual(
          [...first.units, ...second.units].map((u: { id: string }) => u.id),
        );
        // A bookmark of the sorted page opens sorted.
        await list.reload();
        await list.locator('#units-status').filter({ hasText: 'dearest first' }).waitFor();
        await expect(ids()).resolves.toEqual(first.units.map((u: { id: string }) => u.id));
        // Opened lists them by opening time again.
        await list.getByRole('button', { name: /^Opened/ }).click();
        await list.waitForFunction(() => !location.hash.includes('order='));
        await list.locator('#units-status').filter({ hasNotText: 'dearest' }).waitFor();
        const byTime = await api(server, `/v1/units?waba=${saoPaulo.waba}&limit=50`);
        await list.waitForFunction(
          (expected) =>
            Array.from(document.querySelectorAll('#units-table tbody tr td:nth-child(10)'))
              .map((cell) => cell.textContent)
              .join() === expected,
          byTime.units.map((u: { id: string }) => u.id).join(),
        );
        await expect(list.locator('#units-table thead th').first().getAttribute('aria-sort')).resolves.toBe(
          'ascending',
        );
      } finally {
        await list.context().close();
      }
    });

    it('"Why was I charged?": a user picked from the units table gets a timeline with the rule text', async () => {
      await page.getByRole('button', { name: 'First page' }).click();
      await page.locator('#units-status').filter({ hasText: 'Page 1' }).waitFor();
      const link = page.locator('#units-table tbody tr td:nth-child(4) a').first();
      const user = (await link.textContent())!;
      await link.click();
      await page.locator('#timeline-chart').waitFor();
      await expect(page.getByRole('heading', { level: 2 }).first().textContent()).resolves.toContain(
        `User ${user}`,
      );
      const report = await api(server, `/v1/explain?user=${encodeURIComponent(user)}`);
      const business = report.timeline.find((entry: { kind: string }) => entry.kind === 'message');
      expect(business).toBeDefined();
      const reasons = await page.locator('#explain-entries .reason').allTextContents();
      expect(reasons).toContain(business.reason);
      await expect(page.locator('#explain-entries').textContent()).resolves.toContain(business.rule);
      expect(await page.locator('#timeline-chart .marker').count()).toBe(report.timeline.length);
      expect(await page.locator('#timeline-chart .unit-bar').count()).toBe(report.units.length);
      await page.locator('#timeline-chart .marker').last().click();
      await expect(page.locator('#explain-entries li.selected').count()).resolves.toBe(1);
      // The time axis's first tick names its date (not an hour of no day); nothing reads "null".
      await expect(page.locator('#timeline-chart text.tick').first().textContent()).resolves.toMatch(
        /^\d{4}-\d{2}-\d{2}/,
      );
      await expect(page.locator('#explain-result').textContent()).resolves.not.toContain('null');
      await page.evaluate(() => {
        window.scrollTo(0, 0);
        document.querySelector('.timeline-wrap')?.scrollTo(0, 0);
      });
      await shot(page, `${engine}-4-why-charged`);
    });

    it('"Why was I charged?": the findings, each unit\'s rate card and the WABA-local date that chose it', async () => {
      const report = await api(server, `/v1/explain?user=${DAY_EDGE_USER}`);
      const codes = report.findings.map((finding: { code: string }) => finding.code);
      expect(codes).toContain('RATE_CARD_OF_OTHER_MODEL');
      const unit = report.units.find((one: { messages: string[] }) =>
        one.messages.includes('wamid.day-edge'),
      );
      expect(unit.rate_card).toBe('usd-2024-11-01');
      await page.goto(`${server.url}/#/explain?user=${DAY_EDGE_USER}`);
      await page.locator('#timeline-chart').waitFor();
      // Every finding of the story, as the CLI's "Findings" section lists them.
      expect(await page.locator('#explain-findings li').count()).toBe(report.findings.length);
      // Said as the service's user gives rate cards: the server's setting, not the command line's flag.
      const otherModel = report.findings[codes.indexOf('RATE_CARD_OF_OTHER_MODEL')].message as string;
      expect(otherModel).toContain('(--rate-cards; for the service, WAMETER_RATE_CARDS or "rateCards")');
      await expect(
        page.locator('#explain-findings li[data-code="RATE_CARD_OF_OTHER_MODEL"]').textContent(),
      ).resolves.toContain(
        otherModel.replace(
          '(--rate-cards; for the service, WAMETER_RATE_CARDS or "rateCards")',
          '(the server’s rate cards: WAMETER_RATE_CARDS or "rateCards")',
        ),
      );
      // The unit: sent 01:00 UTC on October 1st, September 30th in São Paulo, priced from that day's card.
      const row = page.locator('#explain-units tbody tr', { hasText: unit.id });
      await expect(row.textContent()).resolves.toContain('2025-10-01 01:00:02 UTC');
      await expect(row.locator('td.local-date').textContent()).resolves.toBe(
        '2025-09-30 22:00:02America/Sao_Paulo',
      );
      await expect(row.textContent()).resolves.toContain('usd-2024-11-01');
      // The time axis reads São Paulo’s clock: its day starts at local midnight (03:00 UTC), and says so
      // (the story spans 23:00–03:00 UTC, so that midnight is its one tick).
      const ticks = await page
        .locator('#timeline-chart text.tick')
        .evaluateAll((nodes) => nodes.map((node) => [node.textContent, node.getAttribute('data-at')]));
      expect(ticks[0]).toEqual(['2025-10-01 (America/Sao_Paulo)', '2025-10-01T03:00:00.000Z']);
      await expect(page.locator('#timeline-chart').getAttribute('data-zone')).resolves.toBe(
        'America/Sao_Paulo',
      );
      await expect(page.locator('#explain-entries li').first().textContent()).resolves.toContain(
        '2025-09-30 22:00:02 America/Sao_Paulo',
      );
      await shot(page, `${engine}-4b-why-charged-day-edge`);

      // Asked by Meta's business-scoped id: the story of the number the rating joined it to, naming both.
      await page.goto(`${server.url}/#/explain?user=${SCOPED_USER}`);
      await page.locator('#explain-result h2').waitFor();
      await expect(page.locator('#explain-result h2').textContent()).resolves.toBe(
        `User ${SCOPED_NUMBER} (asked as business-scoped id ${SCOPED_USER})`,
      );

      // A charge without a price: the total says so, in its currency, and "1 unit" is singular.
      await page.goto(`${server.url}/#/explain?user=${UNPRICED_USER}`);
      await page.locator('#explain-total').waitFor();
      await expect(page.locator('#explain-total').textContent()).resolves.toBe(
        'at least 0 USD (1 charged unit not priced)',
      );
      await expect(page.locator('#explain-summary').textContent()).resolves.toMatch(/^1 message, 1 unit; /);
      await expect(page.locator('#explain-findings').textContent()).resolves.toContain('UNKNOWN_RECIPIENT');
      await expect(page.locator('#explain-units tbody tr td').nth(7).textContent()).resolves.toBe(
        'not priced',
      );
    });

    it('estimate: pasted phones get a market, a price or a free reason, and a bad number is listed', async () => {
      const firstUnit = (await api(server, '/v1/units?limit=1')).units[0];
      const indian = (await api(server, '/v1/units?market=India&limit=1')).units[0];
      await page.getByRole('link', { name: 'Estimate' }).click();
      await page.getByLabel('Sending WABA').selectOption(firstUnit.waba);
      await page.getByLabel('Business number').fill(firstUnit.business);
      await page.getByLabel('Template category').selectOption('marketing');
      // Long after the newest bundled card: the quote warns that the card is likely out of date.
      await page.getByLabel('Send time (UTC, empty = now)').fill('2030-01-01T12:00');
      await page
        .getByLabel('Phone numbers, one per line')
        .fill(`+${indian.user}\n\n+55 11 91234-5678\n\nnot-a-phone\n`);
      await page.getByRole('button', { name: 'Estimate', exact: true }).click();
      await page.locator('#estimate-lines').waitFor();
      const rows = page.locator('#estimate-lines tbody tr');
      expect(await rows.count()).toBe(2);
      await expect(rows.first().textContent()).resolves.toContain('India');
      await expect(rows.nth(1).textContent()).resolves.toContain('Brazil');
      // Each warning its own note: the old card, then what pricing found (2030 is under rules only reported).
      const warnings = await page.locator('[data-warning]').allTextContents();
      expect(warnings[0]).toContain('rate card in force on the send date 2030-01-01');
      expect(warnings.slice(1)).toEqual([expect.stringMatching(/^REPORTED_RULES: WABA \d+: messages/)]);
      // The page runs on the service: its settings are named, never the command line's flags (as on explain).
      expect(warnings[0]).toContain('(the server’s rate cards: WAMETER_RATE_CARDS or "rateCards")');
      expect(warnings[1]).toContain(
        '(the server’s setting: WAMETER_REPORTED_RULES=off or "reportedRules": false)',
      );
      for (const warning of warnings) expect(warning).not.toMatch(/\(--(rate-cards|no-reported);/);
      // Nor the command line's way of choosing an era: the service's is a re-rate.
      for (const warning of warnings) expect(warning).not.toContain('--as-of-rules');
      expect(warnings[1]).toContain('unless a re-rate chose that era (POST /v1/rerate’s "as_of_rules")');
      // Blank lines are skipped, and the bad number keeps the line it was pasted on.
      const invalid = page.locator('#estimate-invalid tbody tr');
      expect(await invalid.count()).toBe(1);
      await expect(invalid.locator('td').first().textContent()).resolves.toBe('5');
      await expect(invalid.textContent()).resolves.toContain('not-a-phone');
      await expect(page.locator('#estimate-result').textContent()).resolves.not.toContain('null');
      // The WABA's numbers are offered for "Business number".
      const offered = await page
        .locator('#business-numbers option')
        .evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value));
      expect(offered).toContain(firstUnit.business);
      await shot(page, `${engine}-5-estimate`);

      // A CSV's other columns are shown on each line (one named like a field, renamed) and downloadable.
      await page.locator('#f-csv').setInputFiles({
        name: 'recipients.csv',
        mimeType: 'text/csv',
        buffer: Buffer.from(`name,phone,price\nAsha,+${indian.user},x\nBob,+55 11 91234-5678,y\n`),
      });
      await page.getByRole('button', { name: 'Estimate', exact: true }).click();
      await page.locator('#estimate-lines th', { hasText: 'input_price' }).waitFor();
      const headers = await page.locator('#estimate-lines thead th').allTextContents();
      expect(headers.slice(0, 3)).toEqual(['name', 'input_price', 'Phone']);
      const cells = await page.locator('#estimate-lines tbody tr').first().locator('td').allTextContents();
      expect(cells.slice(0, 3)).toEqual(['Asha', 'x', indian.user]);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'Download CSV' }).click(),
      ]);
      const csvRows = readFileSync((await download.path())!, 'utf8')
        .trim()
        .split('\r\n');
      expect(csvRows[0]).toBe('name,input_price,phone,country,market,price,currency,free,reason');
      expect(csvRows[1]).toMatch(new RegExp(`^Asha,x,${indian.user},IN,India,[\\d.]+,USD,false,`));
      expect(csvRows.length).toBe(3);
    });

    it('reconciliation: opens with what was checked and any difference with its cause', async () => {
      await page.getByRole('link', { name: 'Reconciliation' }).click();
      const summary = page.locator('#reconciliation-summary');
      await summary.waitFor();
      const answer = await api(server, '/v1/reconciliation');
      const { messages, unverifiable, category_from_webhook: fromWebhook } = answer.checked;
      await expect(summary.textContent()).resolves.toContain(
        `Checked ${(messages - unverifiable - fromWebhook).toLocaleString('en-US')} of ${messages.toLocaleString('en-US')} delivered messages`,
      );
      // exactly the planted disagreement, with its cause, and nothing invented
      expect(answer.differences.map((d: { message?: string }) => d.message)).toEqual(['wamid.planted']);
      await expect(summary.textContent()).resolves.toContain('1 difference');
      await expect(page.locator('main').textContent()).resolves.toContain('wamid.planted');
      await expect(page.locator('main').textContent()).resolves.toContain(answer.differences[0].cause);
      // An uploaded Meta export (its "id" names the WABA): the page shows the period compared and both totals.
      const unit = (await api(server, '/v1/units?limit=1')).units[0];
      const day = Date.parse(`${String(unit.opened_at).slice(0, 10)}T00:00:00Z`) / 1000;
      // October 2025 is billed per message: Meta's pricing_analytics counts those messages.
      const exported = {
        pricing_analytics: {
          data: [
            {
              data_points: [
                {
                  start: day,
                  end: day + 86_400,
                  volume: 5,
                  pricing_category: 'MARKETING',
                  country: 'IN',
                  cost: 0.5,
                },
              ],
            },
          ],
        },
        id: unit.waba,
      };
      await page.locator('#f-analytics').setInputFiles({
        name: 'meta.json',
        mimeType: 'application/json',
        buffer: Buffer.from(JSON.stringify(exported)),
      });
      // With the WABA picked too (sent in the body beside the export).
      await page.getByLabel('WABA').selectOption(unit.waba);
      await page.getByRole('button', { name: 'Compare' }).click();
      await page.locator('#reconciliation-totals, #reconciliation-result .error-box').first().waitFor();
      await expect(page.locator('#reconciliation-result .error-box').count()).resolves.toBe(0);
      await expect(page.locator('#reconciliation-period').textContent()).resolves.toContain(
        `for WABA ${unit.waba} compared over ${String(unit.opened_at).slice(0, 7)}-01`,
      );
      // Every amount with its currency; the CLI's flags never offered on the page.
      await expect(page.locator('#reconciliation-totals').textContent()).resolves.toContain(
        '5 units, 0.5 USD',
      );
      await expect(page.locator('#reconciliation-totals tbody td').last().textContent()).resolves.toMatch(
        / USD( \(wameter’s amount is a floor\))?$/,
      );
      await expect(page.locator('#reconciliation-result').textContent()).resolves.toContain(
        'META_COUNTS_FEWER',
      );
      await expect(page.locator('#reconciliation-result').textContent()).resolves.not.toMatch(
        /--\w|wameter explain/,
      );
      await shot(page, `${engine}-6-reconciliation`);
      // Meta's conversation_analytics of the same day counts conversations only: the month's messages, billed
      // per message, are not set against it, and the page says so rather than listing each day as a difference.
      const { pricing_analytics: points, ...rest } = exported;
      const conversations = {
        ...rest,
        conversation_analytics: {
          data: points.data.map(({ data_points }) => ({
            data_points: data_points.map(({ volume, pricing_category, ...point }) => ({
              ...point,
              conversation: volume,
              conversation_category: pricing_category,
            })),
          })),
        },
      };
      await page.locator('#f-analytics').setInputFiles({
        name: 'meta-conversations.json',
        mimeType: 'application/json',
        buffer: Buffer.from(JSON.stringify(conversations)),
      });
      await page.getByRole('button', { name: 'Compare' }).click();
      await page
        .locator('#reconciliation-period', { hasText: "Meta's conversation_analytics export" })
        .waitFor();
      await expect(page.locator('#reconciliation-period').textContent()).resolves.toMatch(
        /[\d,]+ units? of this WABA in it (was|were) billed per message, which Meta's conversation_analytics does not count, and (was|were) not compared: upload Meta's pricing_analytics export of these days/,
      );
      await expect(page.locator('#reconciliation-result').textContent()).resolves.not.toContain(
        'META_COUNTS_FEWER',
      );
      // The server's "nothing could be checked" words name the upload once and end with a full stop.
      const words =
        'nothing could be checked against Meta: the input holds no delivered business message, and no ' +
        "analytics export was given (upload it on this page). Feed Meta's status webhooks with their " +
        "pricing, or give Meta's pricing_analytics export (upload it on this page)";
      // The page's own module, as the browser loaded it (a string: the test's bundler leaves it alone).
      const nothing: string = await page.evaluate(
        `import('/js/pages/reconciliation.js').then((page) => page.nothingCheckedText(${JSON.stringify(words)}))`,
      );
      expect(nothing.match(/upload it on this page/g)).toHaveLength(1);
      expect(nothing).toMatch(/export\.$/);
    });

    it('reconciliation: a day where Meta’s export differs links to wameter’s units of that day, on the WABA’s clock', async () => {
      const saoPaulo = describeWabas(TRAFFIC)[1]!;
      // São Paulo's September 30th (03:00Z to 03:00Z), when the planted authentication charge was sent.
      const exported = oneDayPricingExport(saoPaulo.waba, '2025-09-30T03:00:00Z', 'AUTHENTICATION', 7, 0.2);
      const recon = await keyedPage(`#/reconciliation?waba=${saoPaulo.waba}`);
      try {
        await recon.locator('#reconciliation-summary').waitFor();
        await recon.locator('#f-analytics').setInputFiles({
          name: 'meta.json',
          mimeType: 'application/json',
          buffer: Buffer.from(JSON.stringify(exported)),
        });
        await recon.getByRole('button', { name: 'Compare' }).click();
        const row = recon.locator('#bucket-differences tbody tr', { hasText: '2025-09-30' });
        await row.waitFor();
        const link = row.getByRole('link', { name: 'wameter’s units' });
        await expect(link.getAttribute('href')).resolves.toBe(
          `#/units?waba=${saoPaulo.waba}&from=${encodeURIComponent('2025-09-30T03:00:00Z')}` +
            `&to=${encodeURIComponent('2025-10-01T03:00:00Z')}&category=authentication`,
        );
        await link.click();
        await recon.locator('#units-table').waitFor();
        await expect(recon.locator('#units-table').textContent()).resolves.toContain(DAY_EDGE_USER);
      } finally {
        await recon.context().close();
      }
    });

    it('reconciliation: From and To choose the days compared with an uploaded export, on its WABA’s clock; off without one', async () => {
      const saoPaulo = describeWabas(TRAFFIC)[1]!;
      // São Paulo's October 5th (03:00Z to 03:00Z): one day's point of Meta's export.
      const exported = oneDayPricingExport(saoPaulo.waba, '2025-10-05T03:00:00Z', 'MARKETING', 3, 0.1);
      const recon = await keyedPage(`#/reconciliation?waba=${saoPaulo.waba}`);
      try {
        await recon.locator('#reconciliation-summary').waitFor();
        const from = recon.getByLabel('From, first day (America/Sao_Paulo)');
        const to = recon.getByLabel('To, last day included (America/Sao_Paulo)');
        // Without an export every stored message is compared: there are no days to choose.
        await expect(from.isDisabled()).resolves.toBe(true);
        await expect(recon.locator('#period-note').textContent()).resolves.toContain(
          'upload one to choose them',
        );
        await recon.locator('#f-analytics').setInputFiles({
          name: 'meta.json',
          mimeType: 'application/json',
          buffer: Buffer.from(JSON.stringify(exported)),
        });
        await expect(from.isEnabled()).resolves.toBe(true);
        await from.fill('2025-10-01');
        await to.fill('2025-10-15');
        await recon.getByRole('button', { name: 'Compare' }).click();
        const period = recon.locator('#reconciliation-period');
        await period.filter({ hasText: '2025-10-15' }).waitFor();
        await expect(period.textContent()).resolves.toContain(
          `for WABA ${saoPaulo.waba} compared over 2025-10-01 – 2025-10-15 (America/Sao_Paulo)`,
        );
        await recon.waitForFunction(() => location.hash.includes('from=2025-10-01&to=2025-10-15'));
        // What the page says is what the API answers for those days.
        const answer = await api(server, '/v1/reconciliation?from=2025-10-01&to=2025-10-15', {
          method: 'POST',
          body: JSON.stringify({ analytics: exported, waba: saoPaulo.waba }),
          headers: { 'Content-Type': 'application/json' },
        });
        expect(answer.analytics.period).toMatchObject({
          from: '2025-10-01',
          to: '2025-10-15',
          basis: 'requested',
        });
        const { messages, unverifiable, category_from_webhook: fromWebhook } = answer.checked;
        await expect(recon.locator('#reconciliation-summary').textContent()).resolves.toContain(
          `Checked ${(messages - unverifiable - fromWebhook).toLocaleString('en-US')} of ${messages.toLocaleString('en-US')} delivered messages of 2025-10-01 to 2025-10-15 (the days chosen)`,
        );
        const wholeMonth = await api(server, '/v1/reconciliation', {
          method: 'POST',
          body: JSON.stringify({ analytics: exported, waba: saoPaulo.waba }),
          headers: { 'Content-Type': 'application/json' },
        });
        expect(messages).toBeLessThan(wholeMonth.checked.messages);
        await shot(recon, `${engine}-6-reconciliation-days`);
        // Emptied: the export's whole month again.
        await from.fill('');
        await to.fill('');
        await recon.getByRole('button', { name: 'Compare' }).click();
        await period.filter({ hasText: '2025-10-31' }).waitFor();
        await expect(period.textContent()).resolves.toContain('compared over 2025-10-01 – 2025-10-31');
      } finally {
        await recon.context().close();
      }
    });

    it('rate cards and findings: the card in force is marked and findings are counted by code', async () => {
      await page.getByRole('link', { name: 'Rate cards & findings' }).click();
      await page.locator('#rate-card-table').waitFor();
      await expect(page.locator('#rate-card-table').textContent()).resolves.toContain('usd-2025-10-01');
      expect(await page.locator('#rate-card-table .chip', { hasText: 'in force' }).count()).toBe(1);
      // Each effective date on one line, never broken at its hyphens ("2025-10-" over "01").
      const lines = await page.locator('#rate-card-table tbody tr').evaluateAll((rows) =>
        rows.map((row) => {
          const range = document.createRange();
          range.selectNodeContents(row.children[2]!);
          return [
            row.children[2]!.textContent,
            new Set(Array.from(range.getClientRects(), (r) => r.top)).size,
          ];
        }),
      );
      expect(lines.length).toBeGreaterThan(1);
      for (const [date, count] of lines) expect([date, count]).toEqual([date, 1]);
      // "Today" is the server's UTC date (a WABA's charges use the card of its own local date): said.
      const { today } = await api(server, '/v1/rate-cards');
      await expect(
        page.locator('section[aria-labelledby="cards-title"] p').first().textContent(),
      ).resolves.toMatch(new RegExp(`^In force today \\(${today}, UTC\\): .*its WABA’s local date\\.$`));
      await page.getByRole('heading', { name: 'Findings', exact: true }).waitFor();
      await page.getByRole('group', { name: 'Filter findings by code' }).waitFor();
      // No page of findings after this one: nothing, not a bare "null", under the table.
      const findings = await api(server, '/v1/findings?limit=200');
      expect(findings.next_offset).toBeNull();
      await expect(
        page.locator('section[aria-labelledby="findings-title"]').textContent(),
      ).resolves.not.toMatch(/null$/);
      // The third WABA's rating holds the charge without a price: its total says it is a floor.
      await page.locator('#ratings-table').waitFor();
      await expect(page.locator('#ratings-table').textContent()).resolves.toMatch(
        /at least [\d.]+ USD \(1 charged unit not priced\), [\d,]+ units/,
      );
      await shot(page, `${engine}-7-rate-cards-findings`);
    });

    it('fits narrow windows: the header wraps, nothing scrolls sideways but a table in its own box', async () => {
      const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
      const narrow = await context.newPage();
      narrow.on('pageerror', (error) => {
        throw new Error(`the dashboard threw: ${error.message}`);
      });
      try {
        await narrow.goto(`${server.url}/#/units`);
        await narrow.getByLabel('API key').fill(KEY);
        await narrow.getByRole('button', { name: 'Use key' }).click();
        for (const width of [1024, 390]) {
          await narrow.setViewportSize({ width, height: 800 });
          for (const route of [
            'units',
            'overview',
            `explain?user=${DAY_EDGE_USER}`,
            'estimate',
            'rate-cards',
          ]) {
            await narrow.goto(`${server.url}/#/${route}`);
            await narrow.locator('main h1').waitFor();
            await narrow.waitForTimeout(300);
            const forget = await narrow.getByRole('button', { name: 'Forget' }).boundingBox();
            expect(forget!.x + forget!.width).toBeLessThanOrEqual(width);
            await expect(
              narrow.evaluate(() => document.documentElement.scrollWidth),
              `${route} at ${width} px`,
            ).resolves.toBeLessThanOrEqual(width);
          }
          await shot(narrow, `${engine}-9-narrow-${width}`);
        }
      } finally {
        await context.close();
      }
    });

    it('rate cards: the rating history shows 20 ratings, older ones a page at a time, in the order the API lists them', async () => {
      // Every rating the API lists, newest first, page by page.
      const listAll = async () => {
        const all: { id: string; rated_at: string; reason: string }[] = [];
        let cursor: string | null = null;
        do {
          const page = await api(
            server,
            `/v1/ratings?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
          );
          all.push(...page.ratings);
          cursor = page.next_cursor;
        } while (cursor !== null);
        return all;
      };
      // Re-rates until the history holds more than the page's 20 (each is one rating).
      const [waba] = describeWabas(TRAFFIC);
      for (let missing = 21 - (await listAll()).length; missing > 0; missing--) {
        await api(server, '/v1/rerate', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ wabas: [waba!.waba] }),
        });
      }
      const history = await listAll();
      expect(history.length).toBeGreaterThanOrEqual(21);
      const rowsShown = () => page.locator('#ratings-table tbody tr').count();
      const reasonsShown = () => page.locator('#ratings-table tbody tr td:nth-child(2)').allTextContents();

      await page.getByRole('link', { name: 'Overview' }).click();
      await page.getByRole('link', { name: 'Rate cards & findings' }).click();
      await page.locator('#ratings-table').waitFor();
      expect(await rowsShown()).toBe(20);
      await expect(page.locator('#ratings-status').textContent()).resolves.toBe(
        '20 ratings shown; older ones on request.',
      );
      expect(await reasonsShown()).toEqual(history.slice(0, 20).map((rating) => rating.reason));
      // Page on to the end: every rating once, and then no button.
      while (await page.getByRole('button', { name: 'Older ratings' }).isVisible()) {
        const before = await rowsShown();
        await page.getByRole('button', { name: 'Older ratings' }).click();
        await expect.poll(rowsShown).toBeGreaterThan(before);
      }
      await expect(page.locator('#ratings-status').textContent()).resolves.toBe(
        `${history.length.toLocaleString('en-US')} ratings shown, the whole history.`,
      );
      const times = await page.locator('#ratings-table tbody tr td:nth-child(1)').allTextContents();
      expect(times).toHaveLength(history.length);
      expect(await reasonsShown()).toEqual(history.map((rating) => rating.reason));
    }, 120_000);

    it("a client's key for one WABA of a shared portfolio: its tiered units are listed and explained, their tier count withheld", async () => {
      const waba = sharedPortfolioWaba();
      // The portfolio's count holds the mate's charges: the client reads the band, never the count.
      const own = (
        await api(server, `/v1/units?category=utility&type=regular&market=India&limit=50`, {}, CLIENT_KEY)
      ).units;
      const tiered = own.filter((unit: { tier?: unknown }) => unit.tier !== undefined);
      expect(tiered.length).toBeGreaterThan(0);
      for (const unit of tiered) {
        expect(unit.waba).toBe(waba);
        expect(unit.tier).toEqual({ count: null, band: expect.any(String), month: '2025-10' });
      }
      // The admin's key sees the count of the same unit.
      const asAdmin = (
        await api(
          server,
          `/v1/units?waba=${waba}&user=${encodeURIComponent(tiered[0].user)}&category=utility`,
        )
      ).units.find((unit: { id: string }) => unit.id === tiered[0].id);
      expect(asAdmin.tier).toMatchObject({ count: expect.any(Number), band: tiered[0].tier.band });

      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const clientPage = await context.newPage();
      clientPage.on('pageerror', (error) => {
        throw new Error(`the dashboard threw: ${error.message}`);
      });
      try {
        await clientPage.goto(`${server.url}/#/units?category=utility&type=regular&market=India`);
        await clientPage.getByLabel('API key').fill(CLIENT_KEY);
        await clientPage.getByRole('button', { name: 'Use key' }).click();
        await clientPage.locator('#units-status').filter({ hasText: 'Page 1' }).waitFor();
        const ids = await clientPage.locator('#units-table tbody tr td:nth-child(10)').allTextContents();
        expect(ids).toEqual(own.map((unit: { id: string }) => unit.id));
        // Its timeline: every unit drawn, the tiered one with its amount.
        const user = tiered[0].user as string;
        await clientPage.goto(`${server.url}/#/explain?user=${encodeURIComponent(user)}`);
        await clientPage.locator('#timeline-chart').waitFor();
        const report = await api(server, `/v1/explain?user=${encodeURIComponent(user)}`, {}, CLIENT_KEY);
        expect(report.units.find((unit: { id: string }) => unit.id === tiered[0].id).tier.count).toBeNull();
        expect(await clientPage.locator('#timeline-chart .unit-bar').count()).toBe(report.units.length);
        await expect(clientPage.locator('main').textContent()).resolves.toContain(tiered[0].id);
        await shot(clientPage, `${engine}-8-client-tiered-units`);
      } finally {
        await context.close();
      }
    });

    /**
     * A page of its own, the admin's key (or `key`) kept in the browser before any page script runs, opened at
     * `hash` (left blank for 'about:blank'). One load: a page drawn first would rewrite the address.
     */
    async function keyedPage(
      hash: string,
      viewport = { width: 1280, height: 800 },
      key = KEY,
    ): Promise<Page> {
      const context = await browser.newContext({ viewport });
      await context.addInitScript((kept) => localStorage.setItem('wameter.apiKey', kept), key);
      const fresh = await context.newPage();
      fresh.on('pageerror', (error) => {
        throw new Error(`the dashboard threw: ${error.message}`);
      });
      if (hash !== 'about:blank') await fresh.goto(`${server.url}/${hash}`);
      return fresh;
    }

    it('keyboard: "Skip to content" moves the focus into the page shown (never to another page), and the focus ring shows on the dark header', async () => {
      const kb = await keyedPage('#/units?category=marketing');
      try {
        await kb.locator('#units-table').waitFor();
        await kb.keyboard.press('Tab');
        await expect(kb.evaluate(() => document.activeElement?.className)).resolves.toBe('skip');
        await kb.keyboard.press('Enter');
        await kb.waitForTimeout(300);
        await expect(kb.evaluate(() => location.hash)).resolves.toBe('#/units?category=marketing');
        await expect(kb.locator('main h1').textContent()).resolves.toBe('Units');
        await expect(kb.evaluate(() => document.activeElement?.id)).resolves.toBe('main');
        // The next Tab is in the page's own form, not back in the header.
        await kb.keyboard.press('Tab');
        await expect(kb.evaluate(() => document.activeElement?.id)).resolves.toBe('f-waba');
        // A page link reached by Tab: its focus ring stands out from the header (WCAG 1.4.11: 3:1).
        await kb.reload();
        await kb.locator('#units-table').waitFor();
        await kb.keyboard.press('Tab');
        await kb.keyboard.press('Tab');
        const ring = await kb.evaluate(() => {
          const focused = document.activeElement as HTMLElement;
          return {
            text: focused.textContent,
            outline: getComputedStyle(focused).outlineColor,
            header: getComputedStyle(document.querySelector('header.top')!).backgroundColor,
          };
        });
        expect(ring.text).toBe('Overview');
        expect(contrast(ring.outline, ring.header)).toBeGreaterThanOrEqual(3);
        // Followed from the keyboard, a page link leaves the focus at the new page's content.
        await kb.keyboard.press('Enter');
        await kb.locator('#spend-title').waitFor();
        await expect(kb.evaluate(() => document.activeElement?.id)).resolves.toBe('main');
      } finally {
        await kb.context().close();
      }
    });

    it('overview: the charts say whose days they draw — UTC for all WABAs, the WABA’s zone for one — as the API cuts them', async () => {
      const kolkata = describeWabas(TRAFFIC).find((profile) => profile.timeZone === 'Asia/Kolkata')!;
      const all = await api(server, '/v1/dashboard/overview?granularity=DAILY&by=category');
      const one = await api(
        server,
        `/v1/dashboard/overview?granularity=DAILY&by=category&waba=${kolkata.waba}`,
      );
      expect([all.time_zone, one.time_zone]).toEqual(['UTC', 'Asia/Kolkata']);
      const tz = await keyedPage('#/overview');
      try {
        const heading = tz.locator('[data-currency="USD"] h4.spend-heading');
        await heading.waitFor();
        await expect(heading.textContent()).resolves.toBe('Spend per day by category (USD; days in UTC)');
        await tz.goto(`${server.url}/#/overview?waba=${kolkata.waba}&granularity=MONTHLY`);
        await tz.waitForFunction(() =>
          document.querySelector('h4.spend-heading')?.textContent?.includes('months in'),
        );
        await expect(heading.textContent()).resolves.toBe(
          'Spend per month by category (USD; months in Asia/Kolkata)',
        );
      } finally {
        await tz.context().close();
      }
    });

    it('overview: one WABA’s From and To are its own days, on the clock the page names (a São Paulo day is not the UTC one)', async () => {
      const saoPaulo = describeWabas(TRAFFIC)[1]!;
      expect(saoPaulo.timeZone).toBe('America/Sao_Paulo');
      const tz = await keyedPage(`#/overview?waba=${saoPaulo.waba}`);
      try {
        const total = tz.locator('[data-currency="USD"] [data-stat="total-amount"]');
        await total.waitFor();
        await expect(tz.locator('#clock-note').textContent()).resolves.toBe(
          `Days are America/Sao_Paulo days, the clock of WABA ${saoPaulo.waba}’s bill: From, To and the charts’ days are its days.`,
        );
        // A finance user picks September 30th, first and last day, as the WABA's bill reads it: the evening
        // of the planted charge at 2025-10-01T01:00Z is in it, though UTC's September 30th has no unit.
        const fromBox = tz.getByLabel('From, first day (America/Sao_Paulo)');
        const toBox = tz.getByLabel('To, last day included (America/Sao_Paulo)');
        await fromBox.fill('2025-09-30');
        await toBox.fill('2025-09-30');
        await tz.waitForFunction(() =>
          /: 1 bar from 2025-09-30/.test(
            document.querySelector('#spend-chart-USD')?.getAttribute('aria-label') ?? '',
          ),
        );
        // São Paulo's September 30th is 2025-09-30T03:00Z to 2025-10-01T03:00Z: the address keeps those instants.
        const from = '2025-09-30T03:00:00Z';
        const to = '2025-10-01T03:00:00Z';
        await expect(tz.evaluate(() => location.hash)).resolves.toContain(
          `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
        );
        const day = (await api(server, `/v1/totals?waba=${saoPaulo.waba}&from=${from}&to=${to}`)).totals.USD;
        const utcDay = await api(
          server,
          `/v1/totals?waba=${saoPaulo.waba}&from=2025-09-30T00:00:00Z&to=2025-10-01T00:00:00Z`,
        );
        expect(utcDay.totals).toEqual({});
        expect(day.units).toBeGreaterThan(0);
        await expect(total.textContent()).resolves.toBe(`${day.amount} USD`);
        await expect(tz.locator('[data-stat="total-units"]').textContent()).resolves.toBe(
          day.units.toLocaleString('en-US'),
        );
        // Reloaded from the address, the same days are shown.
        await tz.reload();
        await total.waitFor();
        await expect(fromBox.inputValue()).resolves.toBe('2025-09-30');
        await expect(toBox.inputValue()).resolves.toBe('2025-09-30');
        await expect(total.textContent()).resolves.toBe(`${day.amount} USD`);
        await shot(tz, `${engine}-overview-sao-paulo-day`);
      } finally {
        await tz.context().close();
      }
    });

    it('overview: a client’s bill month is one pick on its clock, and its units are one link away with the same total', async () => {
      const saoPaulo = describeWabas(TRAFFIC)[1]!;
      const bill = await keyedPage(`#/overview?waba=${saoPaulo.waba}`);
      try {
        const total = bill.locator('[data-currency="USD"] [data-stat="total-amount"]');
        await total.waitFor();
        await bill.getByLabel('Bill month (America/Sao_Paulo)').fill('2025-09');
        // São Paulo's September: 2025-09-01T03:00Z to 2025-10-01T03:00Z, its first and last day in From and To.
        const from = '2025-09-01T03:00:00Z';
        const to = '2025-10-01T03:00:00Z';
        await bill.waitForFunction(
          (wanted) => location.hash.includes(wanted),
          `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
        );
        await expect(bill.getByLabel('From, first day (America/Sao_Paulo)').inputValue()).resolves.toBe(
          '2025-09-01',
        );
        await expect(bill.getByLabel('To, last day included (America/Sao_Paulo)').inputValue()).resolves.toBe(
          '2025-09-30',
        );
        const month = (await api(server, `/v1/totals?waba=${saoPaulo.waba}&from=${from}&to=${to}`)).totals
          .USD;
        expect(month.units).toBeGreaterThan(0);
        await bill.waitForFunction(
          (wanted) =>
            document.querySelector('[data-currency="USD"] [data-stat="total-amount"]')?.textContent ===
            wanted,
          `${month.amount} USD`,
        );
        // The month's allowance and tiers are that month's too.
        await expect(bill.locator('#f-month').inputValue()).resolves.toBe('2025-09');
        // The units behind the figures, one link away: the same WABA and period, the same total.
        await bill.getByRole('link', { name: 'List these units' }).first().click();
        await bill.locator('#units-table').waitFor();
        await expect(bill.locator('#f-waba').inputValue()).resolves.toBe(saoPaulo.waba);
        await expect(bill.locator('#units-totals').textContent()).resolves.toBe(
          `These filters: ${month.units} unit${month.units === 1 ? '' : 's'}, ${month.amount} USD.`,
        );
      } finally {
        await bill.context().close();
      }
    });

    it('overview: the spend per category of a client’s bill month downloads as CSV, line for line /v1/totals', async () => {
      const saoPaulo = describeWabas(TRAFFIC)[1]!;
      const from = '2025-10-01T03:00:00Z';
      const to = '2025-11-01T03:00:00Z';
      const bill = await keyedPage(
        `#/overview?waba=${saoPaulo.waba}&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
      );
      try {
        await bill.locator('table.by-table').waitFor({ state: 'attached' });
        await expect(bill.getByLabel('Bill month (America/Sao_Paulo)').inputValue()).resolves.toBe('2025-10');
        const [download] = await Promise.all([
          bill.waitForEvent('download'),
          bill.getByRole('button', { name: 'Download CSV of spend per category' }).click(),
        ]);
        expect(download.suggestedFilename()).toBe(
          `wameter-spend-by-category-${saoPaulo.waba}-2025-10-01-to-2025-10-31-America-Sao_Paulo.csv`,
        );
        const lines = readFileSync((await download.path())!, 'utf8')
          .trim()
          .split('\r\n');
        expect(lines[0]).toBe('category,currency,spend,charged_units,free_units,units');
        const totals = (await api(server, `/v1/totals?waba=${saoPaulo.waba}&from=${from}&to=${to}`)).totals
          .USD;
        const rows = lines.slice(1).map((line) => line.split(','));
        expect(rows.map((row) => row[0]).sort()).toEqual(Object.keys(totals.by_category).sort());
        for (const [category, currency, spend, charged, free, units] of rows) {
          expect(currency).toBe('USD');
          expect(spend).toBe(totals.by_category[category!].amount);
          expect(Number(charged) + Number(free)).toBe(Number(units));
          expect(Number(units)).toBe(totals.by_category[category!].units);
        }
      } finally {
        await bill.context().close();
      }
    });

    it('overview: WABAs of different clocks are drawn in UTC days, said so, and a key whose WABAs share a clock gets theirs', async () => {
      const all = await keyedPage('#/overview');
      try {
        await all.locator('[data-currency="USD"] [data-stat="total-amount"]').waitFor();
        await expect(all.locator('#clock-note').textContent()).resolves.toBe(
          'Days are UTC days: these WABAs keep different clocks (America/Sao_Paulo, Asia/Jakarta, Asia/Kolkata), ' +
            'so a day here is no one WABA’s day. Choose one WABA to see its bill’s days.',
        );
        await all.getByLabel('From, first day (UTC)').waitFor();
        // Said to a screen reader as it changes: choosing a WABA tells whose days the page now reads.
        await expect(all.locator('#clock-note').getAttribute('aria-live')).resolves.toBe('polite');
        await all.locator('#f-waba').selectOption(describeWabas(TRAFFIC)[0]!.waba);
        await all.getByLabel('From, first day (Asia/Kolkata)').waitFor();
        await expect(all.locator('#clock-note').textContent()).resolves.toContain(
          'Days are Asia/Kolkata days',
        );
        // Two month boxes on one page, each named for what it picks.
        await all.getByLabel('Allowance month', { exact: true }).waitFor();
      } finally {
        await all.context().close();
      }
      // The client's key reads one Kolkata WABA: "All WABAs" is its days too, in the API as on the page.
      const own = await api(server, '/v1/dashboard/overview', {}, CLIENT_KEY);
      expect(own.time_zone).toBe('Asia/Kolkata');
      const client = await keyedPage('#/overview', undefined, CLIENT_KEY);
      try {
        await client.locator('[data-currency="USD"] [data-stat="total-amount"]').waitFor();
        await expect(client.locator('#clock-note').textContent()).resolves.toContain(
          'Days are Asia/Kolkata days',
        );
        await client.getByLabel('From, first day (Asia/Kolkata)').waitFor();
        await expect(client.locator('h4.spend-heading').first().textContent()).resolves.toContain(
          'days in Asia/Kolkata',
        );
      } finally {
        await client.context().close();
      }
    });

    it('overview: the spend per category in words equals /v1/totals, and sums are exact decimals with thousands grouped', async () => {
      const totals = (await api(server, '/v1/totals')).totals.USD;
      const real = await keyedPage('#/overview');
      try {
        await real.locator('table.by-table').waitFor({ state: 'attached' });
        const rows = await real
          .locator('table.by-table tbody tr')
          .evaluateAll((trs) => trs.map((tr) => Array.from(tr.children, (cell) => cell.textContent)));
        const categories = Object.keys(totals.by_category).sort();
        expect(rows.map((row) => row[0]).sort()).toEqual(categories);
        for (const [category, spend] of rows) {
          expect(spend).toBe(`${totals.by_category[category!].amount} USD`);
        }
      } finally {
        await real.context().close();
      }
      // An answer of large amounts with more decimals than a float keeps, over more keys than are drawn
      // one by one: every figure on the page is the exact sum, its whole part grouped as counts are.
      const synthetic = syntheticOverview();
      const fake = await keyedPage('about:blank');
      try {
        await fake.route('**/v1/dashboard/overview?**', (route) =>
          route.fulfill({ json: synthetic, headers: { 'Cache-Control': 'no-store' } }),
        );
        await fake.goto(`${server.url}/#/overview?by=market`);
        const total = fake.locator('[data-currency="IDR"] [data-stat="total-amount"]');
        await total.waitFor();
        await expect(total.textContent()).resolves.toBe('12,345,673.834567 IDR');
        // The 13th and 14th keys ("2 others"): 1234567.1234567 + 0.1 each day, never a float's "1234.6k".
        const others = await fake
          .locator('#spend-chart-IDR rect title', { hasText: 'others:' })
          .allTextContents();
        expect(others).toEqual([
          '2025-10-01 — 2 others: 1,234,567.2234567 IDR',
          '2025-10-02 — 2 others: 1,234,567.2234567 IDR',
        ]);
        // Per key over both days: 0.1 + 0.1 = 0.2 exactly, 2 × 1234567.1234567.
        const spend = await fake
          .locator('table.by-table tbody tr')
          .evaluateAll((trs) => trs.map((tr) => tr.children[1]?.textContent));
        expect(spend.slice(0, 3)).toEqual(['2,469,134.2469134 IDR', '0.2 IDR', '0.4 IDR']);
      } finally {
        await fake.context().close();
      }
    });

    it('overview: every series of the charts stands out from the card (WCAG 1.4.11, 3:1), "others" and free units too', async () => {
      const fake = await keyedPage('about:blank');
      try {
        await fake.route('**/v1/dashboard/overview?**', (route) =>
          route.fulfill({ json: syntheticOverview(), headers: { 'Cache-Control': 'no-store' } }),
        );
        await fake.goto(`${server.url}/#/overview?by=market`);
        const card = fake.locator('section.card[data-currency="IDR"]');
        await card.locator('.legend').first().waitFor();
        const { background, swatches } = await card.evaluate((section) => ({
          background: getComputedStyle(section).backgroundColor,
          swatches: Array.from(section.querySelectorAll('.legend li'), (li) => [
            li.textContent,
            getComputedStyle(li.querySelector('rect')!).fill,
          ]),
        }));
        expect(swatches.map(([name]) => name)).toEqual(
          expect.arrayContaining(['2 others', 'charged units', 'free units']),
        );
        for (const [name, fill] of swatches) {
          expect(contrast(fill!, background), `${name} (${fill})`).toBeGreaterThanOrEqual(3);
        }
      } finally {
        await fake.context().close();
      }
    });

    it('a busy or unavailable server: the wait is said in seconds and "Try again" draws the page', async () => {
      const busy = await keyedPage('about:blank');
      try {
        let refusals = 1;
        await busy.route('**/v1/dashboard/accounts', (route) =>
          refusals-- > 0
            ? route.fulfill({
                status: 429,
                headers: { 'Retry-After': '7' },
                json: {
                  error: {
                    code: 'RATE_LIMITED',
                    message:
                      'Too many requests from this client: retry after the number of seconds in Retry-After.',
                  },
                },
              })
            : route.continue(),
        );
        await busy.goto(`${server.url}/#/units`);
        const error = busy.locator('main .error-box');
        await error.waitFor();
        await expect(error.textContent()).resolves.toContain('Try again in 7 seconds.');
        await expect(error.textContent()).resolves.toContain('(RATE_LIMITED, HTTP 429)');
        await shot(busy, `${engine}-9-busy-429`);
        await error.getByRole('button', { name: 'Try again' }).click();
        await busy.locator('#units-table').waitFor();
        await expect(busy.locator('main .error-box').count()).resolves.toBe(0);
        // The store unavailable for the next page: said, and asked again from where it was.
        await busy.route('**/v1/units?**', (route) =>
          route.request().url().includes('cursor=')
            ? route.fulfill({
                status: 503,
                headers: { 'Retry-After': '5' },
                json: {
                  error: {
                    code: 'STORE_UNAVAILABLE',
                    message:
                      'The database could not serve this request right now; retry later (webhooks are retried by Meta).',
                  },
                },
              })
            : route.continue(),
        );
        await busy.getByRole('button', { name: 'Next page' }).click();
        await expect(busy.locator('#units-results .error-box').textContent()).resolves.toContain(
          'Try again in 5 seconds.',
        );
        await busy.unroute('**/v1/units?**');
        await busy.locator('#units-results').getByRole('button', { name: 'Try again' }).click();
        await busy.locator('#units-table').waitFor();
        await expect(busy.locator('#units-status').textContent()).resolves.toMatch(/^Page 2: /);
      } finally {
        await busy.context().close();
      }
    });

    it('a slow server: the page is named and says it is loading while the WABAs are asked for', async () => {
      const slow = await keyedPage('about:blank');
      try {
        await slow.route('**/v1/dashboard/accounts', async (route) => {
          await new Promise((resolve) => setTimeout(resolve, 1500));
          await route.continue();
        });
        await slow.goto(`${server.url}/#/reconciliation`);
        await slow.locator('main h1').waitFor();
        await expect(slow.title()).resolves.toBe('wameter — Reconciliation');
        await expect(slow.locator('main [role="status"]').textContent()).resolves.toBe('Loading your WABAs…');
        await slow.locator('#reconciliation-summary').waitFor();
        await expect(slow.locator('main').textContent()).resolves.not.toContain('Loading your WABAs');
      } finally {
        await slow.context().close();
      }
    });

    it('units: each opening is also read on its WABA’s clock, which decides its day and month on the bill', async () => {
      const [unit] = (await api(server, `/v1/units?user=${DAY_EDGE_USER}`)).units;
      expect(Date.parse(unit.opened_at)).toBe(Date.parse('2025-10-01T01:00:02Z'));
      const list = await keyedPage(`#/units?user=${DAY_EDGE_USER}`);
      try {
        await list.locator('#units-table').waitFor();
        const opened = list.locator('#units-table tbody tr', { hasText: unit.id }).locator('td').first();
        // October 1st in UTC, still September 30th in São Paulo: on the WABA's September bill.
        await expect(opened.textContent()).resolves.toBe(
          '2025-10-01 01:00:02 UTC2025-09-30 22:00:02 America/Sao_Paulo',
        );
        await expect(list.locator('#units-table thead th').first().textContent()).resolves.toBe(
          'Opened (UTC; the WABA’s clock below)',
        );
      } finally {
        await list.context().close();
      }
    });

    it('units: with one WABA chosen, each opening is read first on its clock, UTC below', async () => {
      const saoPaulo = describeWabas(TRAFFIC)[1]!;
      expect(saoPaulo.timeZone).toBe('America/Sao_Paulo');
      const [unit] = (await api(server, `/v1/units?user=${DAY_EDGE_USER}`)).units;
      const list = await keyedPage(`#/units?waba=${saoPaulo.waba}&user=${DAY_EDGE_USER}`);
      try {
        await list.locator('#units-table').waitFor();
        await expect(list.locator('#units-table thead th').first().textContent()).resolves.toBe(
          'Opened (America/Sao_Paulo; UTC below)',
        );
        const opened = list.locator('#units-table tbody tr', { hasText: unit.id }).locator('td').first();
        // September 30th on the WABA's clock (the day of its bill, as the API's local_date), then the UTC instant.
        expect(unit.local_date).toBe('2025-09-30');
        await expect(opened.textContent()).resolves.toBe(
          '2025-09-30 22:00:02 America/Sao_Paulo2025-10-01 01:00:02 UTC',
        );
      } finally {
        await list.context().close();
      }
    });

    it('overview: a bill month’s charts draw every day of the month, before its first unit and after its last', async () => {
      const saoPaulo = describeWabas(TRAFFIC)[1]!;
      const bill = await keyedPage(`#/overview?waba=${saoPaulo.waba}`);
      try {
        await bill.locator('[data-currency="USD"] [data-stat="total-amount"]').waitFor();
        for (const [month, from, to, last] of [
          ['2025-10', '2025-10-01T03:00:00Z', '2025-11-01T03:00:00Z', '2025-10-31'],
          ['2025-09', '2025-09-01T03:00:00Z', '2025-10-01T03:00:00Z', '2025-09-30'],
        ] as const) {
          // The API's buckets run from the month's first unit's day to its last's only: not the whole month.
          const overview = await api(
            server,
            `/v1/dashboard/overview?waba=${saoPaulo.waba}&from=${from}&to=${to}&time_zone=America/Sao_Paulo`,
          );
          const labels = overview.currencies[0].buckets.map((bucket: { label: string }) => bucket.label);
          expect(labels.length).toBeGreaterThan(0);
          expect(labels[0] > `${month}-01` || labels.at(-1) < last).toBe(true);
          await bill.getByLabel('Bill month (America/Sao_Paulo)').fill(month);
          await bill.waitForFunction(
            (wanted) => location.hash.includes(wanted),
            `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
          );
          const days = Number(last.slice(8));
          await bill.waitForFunction(
            (wanted) => document.querySelector('#spend-chart-USD')?.getAttribute('aria-label') === wanted,
            `Spend by category in USD: ${days} bars from ${month}-01 to ${last}`,
          );
          await expect(
            bill
              .locator('[data-currency="USD"] svg[aria-label^="Charged and free units"]')
              .getAttribute('aria-label'),
          ).resolves.toBe(`Charged and free units (USD): ${days} bars from ${month}-01 to ${last}`);
        }
      } finally {
        await bill.context().close();
      }
    });

    it('units: one WABA’s times are read on its clock, the filter’s total is shown, and Export CSV exports the filters shown', async () => {
      const saoPaulo = describeWabas(TRAFFIC)[1]!;
      const list = await keyedPage(`#/units?waba=${saoPaulo.waba}`);
      try {
        await list.locator('#units-table').waitFor();
        // São Paulo's September 30th, as a provider re-billing that client reads its bill.
        await list.getByLabel('Opened from (America/Sao_Paulo)').fill('2025-09-30T00:00');
        await list.getByLabel('Opened before (America/Sao_Paulo)').fill('2025-10-01T00:00');
        await list.getByRole('button', { name: 'Apply filters' }).click();
        const from = '2025-09-30T03:00:00Z';
        const to = '2025-10-01T03:00:00Z';
        await list.waitForFunction(
          (wanted) => location.hash.includes(wanted),
          `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
        );
        const expected = await api(server, `/v1/units?waba=${saoPaulo.waba}&from=${from}&to=${to}`);
        expect(expected.units.map((unit: { user: string }) => unit.user)).toContain(DAY_EDGE_USER);
        await list.waitForFunction(
          (count) => document.querySelectorAll('#units-table tbody tr').length === count,
          expected.units.length,
        );
        const ids = await list.locator('#units-table tbody tr td:nth-child(10)').allTextContents();
        expect(ids).toEqual(expected.units.map((unit: { id: string }) => unit.id));
        // What these filters add up to, as /v1/totals says: the figure a provider re-bills.
        const totals = (await api(server, `/v1/totals?waba=${saoPaulo.waba}&from=${from}&to=${to}`)).totals
          .USD;
        await expect(list.locator('#units-totals').getAttribute('aria-live')).resolves.toBe('polite');
        await expect(list.locator('#units-totals').textContent()).resolves.toBe(
          `These filters: ${totals.units} unit${totals.units === 1 ? '' : 's'}, ${totals.amount} USD.`,
        );
        // A filter changed but not applied: Export CSV applies it first, so the file is the table shown.
        await list.getByLabel('Category').selectOption('authentication');
        const [download] = await Promise.all([
          list.waitForEvent('download'),
          list.getByRole('button', { name: 'Export CSV' }).click(),
        ]);
        const csv = readFileSync((await download.path())!, 'utf8')
          .trim()
          .split('\r\n');
        const wanted = await api(
          server,
          `/v1/units?waba=${saoPaulo.waba}&from=${from}&to=${to}&category=authentication`,
        );
        expect(csv.length - 1).toBe(wanted.units.length);
        expect(csv.slice(1).every((row) => row.split(',')[9] === 'authentication')).toBe(true);
        await list.waitForFunction(() => location.hash.includes('category=authentication'));
        await list.waitForFunction(
          (count) => document.querySelectorAll('#units-table tbody tr').length === count,
          wanted.units.length,
        );
        expect(download.suggestedFilename()).toBe(
          `wameter-units-${saoPaulo.waba}-2025-09-30T00-00-to-2025-10-01T00-00-America-Sao_Paulo.csv`,
        );
      } finally {
        await list.context().close();
      }
    });

    it("a link naming a WABA the key may not read says so, never showing the key's other WABAs as if they were it", async () => {
      const own = sharedPortfolioWaba();
      const mate = describeWabas(TRAFFIC)[1]!.waba;
      for (const hash of [`#/units?waba=${mate}`, `#/overview?waba=${mate}`]) {
        const link = await keyedPage(hash, undefined, CLIENT_KEY);
        try {
          const note = link.locator('#waba-not-shown');
          await note.waitFor();
          await expect(note.textContent()).resolves.toContain(
            `WABA ${mate}, named in this page’s address, is not among the WABAs this API key may read`,
          );
          await expect(link.locator('#f-waba').inputValue()).resolves.toBe('');
        } finally {
          await link.context().close();
        }
      }
      const mine = await keyedPage(`#/units?waba=${own}`, undefined, CLIENT_KEY);
      try {
        await mine.locator('#units-table').waitFor();
        await expect(mine.locator('#f-waba').inputValue()).resolves.toBe(own);
        await expect(mine.locator('#waba-not-shown').count()).resolves.toBe(0);
      } finally {
        await mine.context().close();
      }
    });

    it('units: filters that match nothing say so, with no empty table or page buttons', async () => {
      const none = await keyedPage('#/units?user=919000000000&category=marketing');
      try {
        await expect(none.locator('#no-units').textContent()).resolves.toBe(
          'No units match these filters: widen them, or press Clear.',
        );
        await expect(none.locator('#units-table').count()).resolves.toBe(0);
        await expect(none.locator('#next-page').count()).resolves.toBe(0);
      } finally {
        await none.context().close();
      }
    });

    it('"Why was I charged?": the timeline is a group whose markers are buttons, each said once', async () => {
      const user = (await api(server, '/v1/units?type=free_customer_service&limit=1')).units[0].user;
      const story = await keyedPage(`#/explain?user=${encodeURIComponent(user)}`);
      try {
        const chart = story.locator('#timeline-chart');
        await chart.waitFor();
        // An image's content is presentational: buttons inside one are hidden from assistive technology.
        await expect(chart.getAttribute('role')).resolves.toBe('group');
        const labels = await chart
          .locator('g.marker')
          .evaluateAll((nodes) => nodes.map((node) => node.getAttribute('aria-label') ?? ''));
        expect(labels.some((label) => label.includes('user wrote'))).toBe(true);
        for (const label of labels) expect(label).not.toMatch(/user wrote: user wrote/);
      } finally {
        await story.context().close();
      }
    });
  });
}

runDashboardScenario('sqlite');
runDashboardScenario('postgres');

/** Meta's pricing_analytics export of one Brazilian day from `startIso`: one data point of one category. */
function oneDayPricingExport(waba: string, startIso: string, category: string, volume: number, cost: number) {
  const start = Date.parse(startIso) / 1000;
  const point = {
    start,
    end: start + 86_400,
    country: 'BR',
    pricing_type: 'REGULAR',
    pricing_category: category,
  };
  return { pricing_analytics: { data: [{ data_points: [{ ...point, volume, cost }] }] }, id: waba };
}
