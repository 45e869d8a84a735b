import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  accountsFile,
  bundledCardsWithTiers,
  conversationLines,
  createDashboardService,
  KEY_ALL,
  VERIFY_TOKEN,
  KEY_W1,
  KEY_W2,
  type TestService,
} from '../../test/server-kit.js';
import { resolveStaticFile } from './dashboard-routes.js';
import { packageRoot } from '../ingest/rate-card-files.js';

let service: TestService;

/**
 * Meta's pricing_analytics export of one day (2025-07-12, `day`) of marketing messages delivered in India: what
 * Meta counts them in since per-message pricing began (2025-07-01), where its conversation_analytics counts none.
 */
function marketingExport(messages: number, cost: number, day = '2025-07-12') {
  const start = Date.parse(`${day}T00:00:00Z`) / 1000;
  const point = { start, end: start + 86_400, volume: messages, pricing_category: 'MARKETING' };
  return { pricing_analytics: { data: [{ data_points: [{ ...point, country: 'IN', cost }] }] } };
}

function post(path: string, body: unknown, key?: string): Promise<Response> {
  return Promise.resolve(
    service.app.request(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    }),
  );
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are read loosely; the shapes are asserted
async function json(response: Response): Promise<any> {
  return response.json();
}

/** Each estimate body is refused 403 FORBIDDEN_WABA to KEY_W1, its answer naming none of `hidden`. */
/**
 * KEY_W1's estimates naming another client's number: refused exactly as the same request naming a number
 * nobody uses (400, the same words but for the number), so the answer cannot tell the two apart, and none
 * of `hidden` is said.
 */
async function expectEstimateRefusedAsUnused(
  bodies: readonly (Record<string, unknown> & { business: string })[],
  hidden: readonly string[],
): Promise<void> {
  for (const body of bodies) {
    const response = await post('/v1/estimate', body, KEY_W1);
    const text = await response.text();
    const unused = await post('/v1/estimate', { ...body, business: 'PN-NOBODY' }, KEY_W1);
    const unusedText = await unused.text();
    expect(response.status, JSON.stringify(body)).toBe(400);
    expect(unused.status).toBe(400);
    expect(text.replaceAll(body.business, 'PN?')).toBe(unusedText.replaceAll('PN-NOBODY', 'PN?'));
    expect(JSON.parse(text).error.message).toContain('BUSINESS_NOT_OF_WABA');
    for (const word of hidden) expect(text).not.toContain(word);
  }
}

/** One marketing template sent by W1 to one Indian user at `at`, delivered 4 s later. */
function templateSent(at: string, id: string): object[] {
  const deliveredAt = new Date(Date.parse(at) + 4000).toISOString();
  return [
    { kind: 'outbound', at, waba: 'W1', business: 'PN1', user: '919876543210', id, template: 'marketing' },
    { kind: 'status', at: deliveredAt, waba: 'W1', id, status: 'delivered' },
  ];
}

/** A service conversation in March 2024 (CBP-2023: counts toward the WABA's 1,000 free ones). */
function serviceConversation(waba: string, business: string, user: string, prefix: string): object[] {
  return [
    { kind: 'inbound', at: '2024-03-05T09:00:00Z', waba, business, user, id: `${prefix}.in` },
    {
      kind: 'outbound',
      at: '2024-03-05T09:01:00Z',
      waba,
      business,
      user,
      id: `${prefix}.out`,
      template: null,
    },
    { kind: 'status', at: '2024-03-05T09:01:04Z', waba, id: `${prefix}.out`, status: 'delivered' },
  ];
}

afterEach(async () => {
  await service?.close();
});

describe('dashboard static files', () => {
  beforeEach(async () => {
    service = await createDashboardService();
  });

  it('serves the dashboard page at / with its content type and a strict content security policy', async () => {
    const response = await service.get('/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await response.text();
    expect(html).toContain('<script type="module" src="/js/app.js">');
  });

  it('serves scripts, styles and images with the right content types', async () => {
    expect((await service.get('/js/app.js')).headers.get('content-type')).toBe(
      'text/javascript; charset=utf-8',
    );
    expect((await service.get('/js/pages/overview.js')).headers.get('content-type')).toBe(
      'text/javascript; charset=utf-8',
    );
    expect((await service.get('/style.css')).headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await service.get('/favicon.svg')).headers.get('content-type')).toBe('image/svg+xml');
  });

  it('refuses every directory traversal attempt with a 404 and never leaks a file outside web/', async () => {
    const attempts = [
      '/../package.json',
      '/%2e%2e/package.json',
      '/%2E%2E/package.json',
      '/js/%2e%2e/%2e%2e/package.json',
      '/..%2fpackage.json',
      '/%2e%2e%2fpackage.json',
      '/.%2e/package.json',
      '/js/..%5c..%5cpackage.json',
      '/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/..%252fpackage.json',
      '/js//app.js',
      '/index.html%00.js',
      '/.gitignore',
      '/%2egitignore',
      '/js/',
      '/js',
      '/%',
    ];
    for (const path of attempts) {
      const response = await service.get(path);
      const body = await response.text();
      expect(response.status, path).toBe(404);
      expect(body, path).not.toContain('"devDependencies"');
      expect(body, path).not.toContain('root:');
    }
  });

  it('refuses a symbolic link inside web/ that points outside it', async () => {
    await service.close();
    const root = mkdtempSync(join(tmpdir(), 'wameter-web-'));
    try {
      mkdirSync(join(root, 'web'));
      writeFileSync(join(root, 'web', 'index.html'), '<!doctype html><title>ok</title>');
      writeFileSync(join(root, 'secret.txt'), 'top secret');
      symlinkSync(join(root, 'secret.txt'), join(root, 'web', 'leak.txt'));
      service = await createDashboardService({ webRoot: join(root, 'web') });
      expect((await service.get('/')).status).toBe(200);
      const response = await service.get('/leak.txt');
      expect(response.status).toBe(404);
      expect(await response.text()).not.toContain('top secret');
      expect(await resolveStaticFile(join(root, 'web'), '/leak.txt')).toBeNull();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('serves only files of known types, so a stray file in web/ is not exposed', async () => {
    expect(await resolveStaticFile(join(packageRoot(), 'web'), '/index.html')).not.toBeNull();
    expect(await resolveStaticFile(packageRoot(), '/package-lock.lock')).toBeNull();
    expect(await resolveStaticFile(packageRoot(), '/src/server/app.ts')).toBeNull();
  });

  it('keeps unknown API paths as JSON 404s, not dashboard pages', async () => {
    const response = await service.get('/v1/dashboard/nothing-here', KEY_ALL);
    expect(response.status).toBe(404);
    expect((await json(response)).error.code).toBe('NOT_FOUND');
  });
});

describe('dashboard API: authentication and WABA scope', () => {
  beforeEach(async () => {
    service = await createDashboardService();
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '919876543210', 'w1'),
      ...conversationLines('W2', 'PN2', '5511912345678', 'w2'),
    ]);
  });

  const READ_PATHS = [
    '/v1/dashboard/accounts',
    '/v1/dashboard/overview',
    '/v1/dashboard/allowances',
    '/v1/rate-cards',
    '/v1/findings',
    '/v1/reconciliation',
  ];

  it('answers 401 with a Bearer challenge when the key is missing or wrong', async () => {
    for (const path of READ_PATHS) {
      const missing = await service.get(path);
      expect(missing.status, path).toBe(401);
      expect(missing.headers.get('www-authenticate'), path).toContain('Bearer');
      expect((await json(missing)).error.code).toBe('UNAUTHENTICATED');
      expect((await service.get(path, 'not-a-key')).status, path).toBe(401);
    }
    expect((await post('/v1/estimate', { phones: ['919876543210'], template: 'utility' })).status).toBe(401);
  });

  it("refuses 403 when a client asks for another client's WABA", async () => {
    for (const path of [
      '/v1/dashboard/overview?waba=W2',
      '/v1/dashboard/allowances?waba=W2',
      '/v1/findings?waba=W2',
      '/v1/reconciliation?waba=W2',
    ]) {
      const response = await service.get(path, KEY_W1);
      expect(response.status, path).toBe(403);
      expect((await json(response)).error.code).toBe('FORBIDDEN_WABA');
    }
    const estimate = await post(
      '/v1/estimate',
      { phones: ['919876543210'], template: 'utility', waba: 'W2' },
      KEY_W1,
    );
    expect(estimate.status).toBe(403);
  });

  it("filters every answer to the key's WABAs", async () => {
    const accounts = await json(await service.get('/v1/dashboard/accounts', KEY_W1));
    expect(accounts.accounts.map((a: { waba: string }) => a.waba)).toEqual(['W1']);
    const all = await json(await service.get('/v1/dashboard/accounts', KEY_ALL));
    expect(all.accounts.map((a: { waba: string }) => a.waba)).toEqual(['W1', 'W2']);

    const overview = await json(await service.get('/v1/dashboard/overview?by=waba', KEY_W1));
    const keys = overview.currencies.flatMap((c: { keys: string[] }) => c.keys);
    expect(keys).toEqual(['W1']);
    const ownTotals = await json(await service.get('/v1/totals?waba=W1', KEY_ALL));
    expect(overview.totals).toEqual(ownTotals.totals);

    const reconciliation = await json(await service.get('/v1/reconciliation', KEY_W2));
    expect(reconciliation.wabas).toEqual(['W2']);
    for (const difference of reconciliation.differences) {
      expect(difference.waba ?? difference.bucket.waba).toBe('W2');
    }
  });
});

describe('dashboard API: what the pages show', () => {
  beforeEach(async () => {
    service = await createDashboardService();
  });

  it('overview: a business number written "__proto__" is a slice like any other', async () => {
    await service.postEvents([
      ...conversationLines('W1', '__proto__', '919876543210', 'p'),
      ...conversationLines('W1', 'PN1', '919812345678', 'q'),
    ]);
    const overview = await json(
      await service.get('/v1/dashboard/overview?granularity=MONTHLY&by=business', KEY_ALL),
    );
    const [currency] = overview.currencies as {
      keys: string[];
      buckets: { charged_units: number; by: Record<string, { charged_units: number }> }[];
    }[];
    expect(currency!.keys).toContain('__proto__');
    for (const bucket of currency!.buckets) {
      expect(Object.keys(bucket.by)).toEqual(expect.arrayContaining(['__proto__', 'PN1']));
      const sliced = Object.values(bucket.by).reduce((sum, slice) => sum + slice.charged_units, 0);
      expect(sliced).toBe(bucket.charged_units);
    }
  });

  it('overview: buckets by day add up exactly to /v1/totals, with free and charged units apart', async () => {
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '919876543210', 'a'),
      ...conversationLines('W1', 'PN1', '919812345678', 'b'),
      ...conversationLines('W1', 'PN9', '5511912345678', 'c'),
    ]);
    const response = await service.get('/v1/dashboard/overview?granularity=DAILY&by=market', KEY_ALL);
    expect(response.status).toBe(200);
    const overview = await json(response);
    const totals = await json(await service.get('/v1/totals', KEY_ALL));
    expect(overview.totals).toEqual(totals.totals);
    const usd = overview.currencies.find((c: { currency: string }) => c.currency === 'USD');
    expect(usd.keys.sort()).toEqual(['Brazil', 'India']);
    expect(usd.totals.amount).toBe(totals.totals.USD.amount);
    expect(usd.totals.charged_units + usd.totals.free_units).toBe(totals.totals.USD.units);
    expect(usd.totals.free_units).toBeGreaterThan(0);
    expect(usd.totals.charged_units).toBeGreaterThan(0);
    // 2025-07-10 … 2025-07-13: four days, the empty 11th shown as empty rather than skipped.
    expect(usd.buckets.map((b: { label: string }) => b.label)).toEqual([
      '2025-07-10',
      '2025-07-11',
      '2025-07-12',
      '2025-07-13',
    ]);
    expect(usd.buckets[1]).toMatchObject({ amount: '0', charged_units: 0, free_units: 0 });

    const monthly = await json(
      await service.get('/v1/dashboard/overview?granularity=MONTHLY&by=category', KEY_ALL),
    );
    expect(monthly.currencies[0].buckets).toHaveLength(1);
    expect(monthly.currencies[0].buckets[0].amount).toBe(totals.totals.USD.amount);
  });

  it('overview: past 1,500 days it keeps the LATEST days and says what it left out', async () => {
    // Units from January 2020 to July 2025: 2,017 days, more than one answer draws. The 1,500 days up to
    // 2025-07-13 begin on 2021-06-05.
    await service.postEvents([
      ...templateSent('2020-01-05T10:00:00Z', 'old'),
      ...templateSent('2021-06-04T10:00:00Z', 'day-before'),
      ...templateSent('2021-06-05T10:00:00Z', 'first-day'),
      ...conversationLines('W1', 'PN1', '919876543210', 'a'),
    ]);
    const response = await service.get('/v1/dashboard/overview?granularity=DAILY', KEY_ALL);
    expect(response.status).toBe(200);
    const overview = await json(response);
    const usd = overview.currencies.find((c: { currency: string }) => c.currency === 'USD');
    const labels = usd.buckets.map((b: { label: string }) => b.label);
    expect(labels).toHaveLength(1500);
    // The newest data is never the part dropped: the last bucket is the last day with units.
    expect(labels.at(-1)).toBe('2025-07-13');
    expect(labels[0]).toBe('2021-06-05');
    const shownUnits = usd.buckets.reduce(
      (sum: number, b: { charged_units: number; free_units: number }) => sum + b.charged_units + b.free_units,
      0,
    );
    expect(usd.totals.charged_units + usd.totals.free_units).toBe(shownUnits);
    // And the answer says so: from when, and what (as /v1/totals counts it) lies before.
    expect(overview.truncated).toMatchObject({
      max_buckets: 1500,
      shown_from: usd.buckets[0].start,
      shown_from_label: '2021-06-05',
      earliest_unit_at: '2020-01-05T10:00:04Z',
    });
    expect(overview.truncated.left_out.USD.units).toBe(2);
    expect(overview.truncated.left_out.USD.units + shownUnits).toBe(overview.totals.USD.units);

    // Months: all of it fits, nothing is said to be left out.
    const monthly = await json(await service.get('/v1/dashboard/overview?granularity=MONTHLY', KEY_ALL));
    expect(monthly.truncated).toBeNull();
    expect(monthly.currencies[0].buckets.map((b: { label: string }) => b.label).at(-1)).toBe('2025-07');
    expect(monthly.currencies[0].buckets).toHaveLength(67);
  });

  it("overview page: says above the charts that earlier days were left out, with the answer's figures", async () => {
    await service.postEvents([
      ...templateSent('2020-01-05T10:00:00Z', 'old'),
      ...conversationLines('W1', 'PN1', '919876543210', 'a'),
    ]);
    const overview = await json(await service.get('/v1/dashboard/overview?granularity=DAILY', KEY_ALL));
    // The page's own module (browser JavaScript without a DOM at import time), as the browser runs it.
    const page = await import(pathToFileURL(join(packageRoot(), 'web', 'js', 'pages', 'overview.js')).href);
    expect(page.latestMonthOf(overview)).toBe('2025-07');
    const text: string = page.truncationText(overview);
    expect(text).toContain('At most 1,500 days are drawn, the latest: the charts begin on 2025-07-10.');
    expect(text).toContain('since the first unit on 2020-01-05: 1 unit (0 USD).');
    expect(text).toContain('set "To" before 2025-07-10 or choose Month.');
  });

  it('overview: units centuries apart never make the store cut days for the whole span', async () => {
    await service.postEvents([
      ...templateSent('1970-01-02T10:00:00Z', 'y1970'),
      ...templateSent('2100-12-30T10:00:00Z', 'y2100'),
      ...templateSent('9999-12-30T10:00:00Z', 'y9999'),
    ]);
    await service.rating.settled();
    const asked: Array<{ granularity: string; fromMs?: number; toMs?: number }> = [];
    const analytics = service.store.analytics.bind(service.store);
    service.store.analytics = (query) => {
      asked.push(query);
      return analytics(query);
    };
    const started = performance.now();
    for (const granularity of ['DAILY', 'MONTHLY']) {
      const response = await service.get(`/v1/dashboard/overview?granularity=${granularity}`, KEY_ALL);
      expect(response.status).toBe(200);
      const overview = await json(response);
      const buckets = overview.currencies.flatMap((c: { buckets: { label: string }[] }) => c.buckets);
      expect(buckets.at(-1).label.startsWith('9999-12')).toBe(true);
      expect(buckets.length).toBeLessThanOrEqual(1500);
      expect(overview.truncated.earliest_unit_at).toBe('1970-01-02T10:00:04Z');
      expect(overview.truncated.left_out.USD.units).toBe(2);
    }
    // Each question to the store spans at most about 1,500 days (months) before the latest unit.
    const latest = Date.parse('9999-12-30T10:00:00Z');
    const daily = asked.find((query) => query.granularity === 'DAILY');
    const monthly = asked.find((query) => query.granularity === 'MONTHLY');
    expect(latest - (daily?.fromMs ?? 0)).toBeLessThan(1700 * 86_400_000);
    expect(latest - (monthly?.fromMs ?? 0)).toBeLessThan(1700 * 32 * 86_400_000);
    // Before: 46 s of days cut for 1970…9999 in the server's thread.
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('overview: refuses an unknown breakdown or time step with a clear 400', async () => {
    const by = await service.get('/v1/dashboard/overview?by=colour', KEY_ALL);
    expect(by.status).toBe(400);
    expect((await json(by)).error.message).toContain('"by" must be one of category, market, business, waba');
    expect((await service.get('/v1/dashboard/overview?granularity=HOURLY', KEY_ALL)).status).toBe(400);
    expect((await service.get('/v1/dashboard/overview?from=yesterday', KEY_ALL)).status).toBe(400);
  });

  it('allowances: counts free service conversations of a CBP-2023 month per WABA against 1,000', async () => {
    await service.postEvents([
      ...serviceConversation('W1', 'PN1', '919876543210', 's1'),
      ...serviceConversation('W1', 'PN2', '919812345678', 's2'),
      ...serviceConversation('W2', 'PN3', '5511912345678', 's3'),
    ]);
    const response = await service.get('/v1/dashboard/allowances?month=2024-03', KEY_ALL);
    expect(response.status).toBe(200);
    const body = await json(response);
    expect(body.era).toBe('CBP-2023');
    expect(body.allowance).toMatchObject({ per: 'waba', limit: 1000 });
    expect(body.allowance.rows).toEqual([
      { waba: 'W1', used: 2, limit: 1000, remaining: 998 },
      { waba: 'W2', used: 1, limit: 1000, remaining: 999 },
    ]);
    const scoped = await json(await service.get('/v1/dashboard/allowances?month=2024-03', KEY_W2));
    expect(scoped.allowance.rows).toEqual([{ waba: 'W2', used: 1, limit: 1000, remaining: 999 }]);
  });

  it('allowances: lists charged utility messages per portfolio × market × category in a PMP month', async () => {
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '919876543210', 'a'),
      ...conversationLines('W1', 'PN1', '919812345678', 'b'),
    ]);
    const body = await json(await service.get('/v1/dashboard/allowances?month=2025-07', KEY_ALL));
    expect(body.era).toBe('PMP-2025');
    expect(body.allowance.limit).toBeNull();
    expect(body.allowance.what).toContain('no monthly allowance');
    const utility = body.tiers.find((t: { category: string }) => t.category === 'utility');
    expect(utility).toMatchObject({ portfolio: 'W1', market: 'India', charged_this_month: 2, wabas: ['W1'] });
    expect((await service.get('/v1/dashboard/allowances?month=2025-13', KEY_ALL)).status).toBe(400);
  });

  it('rate cards: every loaded card with its dates, the one in force marked, and its rates on demand', async () => {
    const body = await json(await service.get('/v1/rate-cards', KEY_W1));
    expect(body.today).toBe('2025-08-01');
    const ids = body.rate_cards.map((card: { id: string }) => card.id);
    expect(ids).toContain('usd-2024-11-01');
    const inForce = body.rate_cards.filter((card: { in_force: boolean }) => card.in_force);
    expect(inForce.map((card: { id: string }) => card.id)).toEqual(['usd-2024-11-01']);
    expect(inForce[0]).toMatchObject({ currency: 'USD', effective_date: '2024-11-01', until: '2025-10-01' });
    const card = await json(await service.get('/v1/rate-cards/usd-2024-11-01', KEY_W1));
    expect(card.rates.find((row: { market: string }) => row.market === 'India').rates.marketing).toMatch(
      /^0\.\d+$/,
    );
    expect((await service.get('/v1/rate-cards/nope', KEY_W1)).status).toBe(404);
  });

  it('findings: counted per code, paged, and limited to the key', async () => {
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '999000111222', 'bad'),
      ...conversationLines('W2', 'PN2', '999000111333', 'bad2'),
    ]);
    const all = await json(await service.get('/v1/findings', KEY_ALL));
    expect(all.total).toBeGreaterThan(0);
    const own = await json(await service.get('/v1/findings?limit=1', KEY_W1));
    expect(own.total).toBeLessThan(all.total);
    expect(own.findings).toHaveLength(1);
    expect(Object.values(own.counts as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(own.total);
    expect(JSON.stringify(own.findings)).not.toContain('999000111333');
    const code = Object.keys(all.counts as Record<string, number>)[0]!;
    expect((await json(await service.get(`/v1/findings?code=${code}`, KEY_ALL))).total).toBe(
      (all.counts as Record<string, number>)[code],
    );
    // A code that is none: refused, not answered "no such finding" as if the bill had none.
    for (const [asked, hint] of [
      ['NOSUCH', ''],
      [code.toLowerCase(), ` (did you mean "${code}"?)`],
    ] as const) {
      const refused = await service.get(`/v1/findings?code=${asked}`, KEY_ALL);
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({
        error: {
          code: 'BAD_QUERY',
          message: expect.stringContaining(
            `"code" "${asked}" is no finding code${hint}; codes: UNKNOWN_RECIPIENT, `,
          ),
        },
      });
    }
  });

  it('estimate: quotes each pasted phone, lists a bad number, and totals equal the lines', async () => {
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'a'));
    const response = await post(
      '/v1/estimate',
      {
        phones: ['+91 98765 43210', '+91 98123 45678', 'not a number'],
        template: 'marketing',
        at: '2025-07-20T10:00:00Z',
      },
      KEY_W1,
    );
    expect(response.status).toBe(200);
    const body = await json(response);
    expect(body.lines).toHaveLength(2);
    expect(body.invalid).toHaveLength(1);
    expect(body.invalid[0].phone).toBe('not a number');
    expect(body.lines.every((line: { market: string }) => line.market === 'India')).toBe(true);
    expect(body.totals.count).toBe(2);
    const charged = body.lines.filter((line: { free: boolean }) => !line.free);
    expect(body.totals.charged).toBe(charged.length);
    expect(body.waba).toBe('W1');
  });

  it('estimate: refuses a bad template or an ambiguous WABA with a message that says what to send', async () => {
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '919876543210', 'a'),
      ...conversationLines('W2', 'PN2', '919876543210', 'b'),
    ]);
    const template = await post('/v1/estimate', { phones: ['919876543210'], template: 'promo' }, KEY_ALL);
    expect(template.status).toBe(400);
    expect((await json(template)).error.message).toContain(
      '"template" must be marketing, utility or authentication',
    );
    const ambiguous = await post('/v1/estimate', { phones: ['919876543210'], template: 'utility' }, KEY_ALL);
    expect(ambiguous.status).toBe(400);
    expect((await json(ambiguous)).error.message).toContain('"waba"');
    expect((await post('/v1/estimate', '{not json', KEY_ALL)).status).toBe(400);
    // A WABA id as a JSON number is malformed (400) for any key, not another client's WABA (403).
    for (const key of [KEY_ALL, KEY_W1]) {
      const numeric = await post(
        '/v1/estimate',
        { phones: ['919876543210'], template: 'utility', waba: 1234 },
        key,
      );
      expect(numeric.status).toBe(400);
      expect((await json(numeric)).error.message).toContain('"waba" must be a WABA id (a string)');
    }
  });

  it('estimate: refuses a misspelt field with 400 naming it and the fields it takes, never quoting without it', async () => {
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'a'));
    for (const [body, field] of [
      [{ phones: ['919876543210'], template: 'utility', recipents: ['919800000009'] }, 'recipents'],
      [{ phones: ['919876543210'], template: 'utility', buisness: 'PN9' }, 'buisness'],
      [{ csv: 'phone\n919876543210\n', template: 'utility', At: '2025-07-20T10:00:00Z' }, 'At'],
    ] as const) {
      const response = await post('/v1/estimate', body, KEY_W1);
      expect(response.status, field).toBe(400);
      const { error } = await json(response);
      expect(error.code).toBe('BAD_QUERY');
      expect(error.message).toContain(`Unknown field "${field}"`);
      for (const accepted of ['phones', 'csv', 'template', 'at', 'waba', 'business']) {
        expect(error.message).toContain(`"${accepted}"`);
      }
    }
  });

  it('estimate: takes every body field the OpenAPI document lists, and the document closes the body', async () => {
    const { openApiDocument } = await import('./openapi.js');
    const schema = openApiDocument.paths['/v1/estimate'].post.requestBody.content['application/json'].schema;
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties).sort()).toEqual(
      ['at', 'business', 'csv', 'phones', 'template', 'waba'].sort(),
    );
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'a'));
    const response = await post(
      '/v1/estimate',
      {
        phones: ['919876543210'],
        template: 'utility',
        at: '2025-07-20T10:00:00Z',
        waba: 'W1',
        business: 'PN1',
      },
      KEY_W1,
    );
    expect(response.status).toBe(200);
  });

  it('reconciliation: with nothing to compare it claims no agreement; an analytics export is compared per bucket', async () => {
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'a'));
    const plain = await json(await service.get('/v1/reconciliation', KEY_W1));
    expect(plain.differences).toEqual([]);
    expect(plain.checked.messages).toBeGreaterThan(0);
    // The send log's statuses carry no Meta pricing and no export was given: nothing was compared.
    expect(plain.checked.unverifiable).toBe(plain.checked.messages);
    expect(plain.nothing_checked).toContain('nothing could be checked against Meta');
    expect(plain.nothing_checked).toContain('upload it on this page');
    const exported = { ...marketingExport(5, 0.5), id: 'W1' };
    const response = await post('/v1/reconciliation', { analytics: exported }, KEY_W1);
    expect(response.status).toBe(200);
    const body = await json(response);
    expect(body.checked.buckets).toBeGreaterThan(0);
    expect(body.nothing_checked).toBeNull();
    expect(body.differences.some((d: { bucket?: unknown }) => d.bucket !== undefined)).toBe(true);
    // July's messages are billed per message: set against the export's, day by day (its marketing day's 5).
    expect(body.differences).toContainEqual(
      expect.objectContaining({
        bucket: { waba: 'W1', day: '2025-07-12', country: 'IN', category: 'marketing' },
        ours: expect.objectContaining({ units: 1 }) as unknown,
        meta: expect.objectContaining({ units: 5, amount: '0.5' }) as unknown,
      }),
    );
    expect(body.analytics.not_compared.other_pricing_model.units).toBe(0);
    // The compared period and both totals come with it; what other WABAs hold does not.
    expect(body.analytics).toMatchObject({
      waba: 'W1',
      kind: 'pricing_analytics',
      period: { from: '2025-07-01', to: '2025-07-31', time_zone: 'UTC' },
      totals: [{ waba: 'W1', meta: { units: 5, amount: '0.5' } }],
    });
    expect(body.analytics.not_compared).not.toHaveProperty('other_wabas');
    expect(plain.analytics).toBeNull();
    const foreign = await post('/v1/reconciliation', { analytics: { ...exported, id: 'W2' } }, KEY_W1);
    expect(foreign.status).toBe(403);
    const unreadable = await post('/v1/reconciliation', { analytics: { hello: 1 } }, KEY_W1);
    expect(unreadable.status).toBe(400);
    // An export of a WABA the key may read but with no stored events: refused, never compared with nothing.
    const empty = await post('/v1/reconciliation', { analytics: { ...exported, id: 'W9' } }, KEY_ALL);
    expect(empty.status).toBe(400);
    expect((await json(empty)).error.message).toBe(
      'A query parameter or request field is invalid. WABA W9 (the WABA the export describes) has no stored events to compare with; this key\'s WABAs with events: W1: upload the export of one of them, or give "waba".',
    );
    const asked = await service.get('/v1/reconciliation?waba=W9', KEY_ALL);
    expect(asked.status).toBe(400);
  });
});

describe('dashboard API: a conversation_analytics export against messages billed per message', () => {
  beforeEach(async () => {
    service = await createDashboardService();
  });
  afterEach(async () => {
    await service.close();
  });

  it("July 2025's messages are not set against Meta's conversations: not_compared says so, and which export counts them", async () => {
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'a'));
    // Meta's conversation_analytics of July 2025: a zero day (per-message pricing began on the 1st).
    const start = Date.parse('2025-07-12T00:00:00Z') / 1000;
    const point = { start, end: start + 86_400, conversation: 0, conversation_category: 'MARKETING' };
    const zeroDay = {
      conversation_analytics: { data: [{ data_points: [{ ...point, country: 'IN', cost: 0 }] }] },
    };
    const body = await json(
      await post('/v1/reconciliation', { analytics: { ...zeroDay, id: 'W1' } }, KEY_W1),
    );
    expect(body.differences.filter((d: { bucket?: unknown }) => d.bucket !== undefined)).toEqual([]);
    expect(body.analytics).toMatchObject({ kind: 'conversation_analytics', units: 0 });
    expect(body.analytics.not_compared.other_pricing_model).toEqual({
      units: 3,
      by_currency: { USD: { units: 3, amount: expect.any(String) as unknown } },
      reason: expect.stringContaining('its pricing_analytics does') as unknown,
    });
    // An empty answer over the days asked: nothing was checked, and the words say why.
    const empty = await json(
      await post(
        '/v1/reconciliation?from=2025-07-01&to=2025-07-31',
        { analytics: { conversation_analytics: { data: [] }, id: 'W1' } },
        KEY_W1,
      ),
    );
    expect(empty.differences).toEqual([]);
    expect(empty.nothing_checked).toContain(
      "the 3 unit(s) of WABA W1 in the period were billed per message, which Meta's conversation_analytics does not count",
    );
  });
});

describe("dashboard API: a reconciliation's export is read where on-demand ratings run", () => {
  beforeEach(async () => {
    service = await createDashboardService();
  });
  afterEach(async () => {
    await service.close();
  });

  it("hands the body's bytes over and names the kept export in the job; one refused is dropped", async () => {
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'a'));
    const { rating } = service;
    const reads: { isBytes: boolean; ref?: number }[] = [];
    const jobs: object[] = [];
    const dropped: number[] = [];
    const { readAnalyticsBody, reconcile, dropAnalytics } = rating;
    rating.readAnalyticsBody = async (client, bytes) => {
      const read = await readAnalyticsBody(client, bytes);
      reads.push({ isBytes: bytes instanceof Uint8Array, ...(read.ok ? { ref: read.value.ref } : {}) });
      return read;
    };
    rating.reconcile = (client, job) => (jobs.push(job), reconcile(client, job));
    rating.dropAnalytics = (ref) => (dropped.push(ref), dropAnalytics(ref));
    const exported = { ...marketingExport(5, 0.5), id: 'W1' };
    const response = await post('/v1/reconciliation', { analytics: exported }, KEY_W1);
    expect(response.status).toBe(200);
    expect((await json(response)).checked.buckets).toBeGreaterThan(0);
    expect(reads).toEqual([{ isBytes: true, ref: expect.any(Number) }]);
    // The job carries no parsed export (read, then copied to the worker, in this thread): its ref.
    expect(jobs).toEqual([
      { scope: ['W1'], analyticsRef: reads[0]!.ref, analyticsWaba: 'W1', countedWabas: ['W1'] },
    ]);
    // Another client's WABA: 403 before anything is rated, and the export read for it is not kept.
    const foreign = await post('/v1/reconciliation', { analytics: { ...exported, id: 'W2' } }, KEY_W1);
    expect(foreign.status).toBe(403);
    expect(reads).toHaveLength(2);
    expect(jobs).toHaveLength(1);
    expect(dropped).toContain(reads[1]!.ref);
  });
});

describe("dashboard API: a reconciliation's counts are of the period compared", () => {
  beforeEach(async () => {
    service = await createDashboardService();
  });
  afterEach(async () => {
    await service.close();
  });

  it("counts the messages delivered in the export's days, not those of all time", async () => {
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '919876543210', 'a'),
      ...templateSent('2025-06-20T10:00:00Z', 'wamid.june'),
      ...templateSent('2025-08-02T10:00:00Z', 'wamid.august'),
    ]);
    const allTime = (await json(await service.get('/v1/reconciliation', KEY_W1))).checked;
    // July's export (one day's point: the whole month is compared): June's and August's messages are not.
    const exported = { ...marketingExport(5, 0.5), id: 'W1' };
    const july = await json(await post('/v1/reconciliation', { analytics: exported }, KEY_W1));
    expect(july.analytics.period).toMatchObject({ from: '2025-07-01', to: '2025-07-31' });
    expect(july.checked.messages).toBe(allTime.messages - 2);
    expect(july.checked.unverifiable).toBe(allTime.unverifiable - 2);
    expect(july.checked.messages).toBeGreaterThan(0);
    // An export of August: its message alone.
    const august = marketingExport(1, 0.1, '2025-08-02');
    const answer = await json(
      await post('/v1/reconciliation', { analytics: { ...august, id: 'W1' } }, KEY_W1),
    );
    expect(answer.checked).toMatchObject({ messages: 1, unverifiable: 1 });
  });
});

describe('dashboard API: the days a reconciliation compares with an export (from, to)', () => {
  beforeEach(async () => {
    service = await createDashboardService();
  });
  afterEach(async () => {
    await service.close();
  });

  it('compares the days asked, as `wameter reconcile --from/--to`, and counts the messages of those days', async () => {
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '919876543210', 'a'),
      ...templateSent('2025-07-20T10:00:00Z', 'wamid.late-july'),
    ]);
    const exported = { ...marketingExport(5, 0.5), id: 'W1' };
    const month = await json(await post('/v1/reconciliation', { analytics: exported }, KEY_W1));
    expect(month.analytics.period).toMatchObject({
      from: '2025-07-01',
      to: '2025-07-31',
      basis: 'export_months',
    });
    const asked = await post(
      '/v1/reconciliation?from=2025-07-01&to=2025-07-15',
      { analytics: exported },
      KEY_W1,
    );
    expect(asked.status).toBe(200);
    const firstHalf = await json(asked);
    expect(firstHalf.analytics.period).toMatchObject({
      from: '2025-07-01',
      to: '2025-07-15',
      basis: 'requested',
    });
    // The message of the 20th is outside the days asked: not counted as checked.
    expect(firstHalf.checked.messages).toBe(month.checked.messages - 1);
    expect(firstHalf.checked.messages).toBeGreaterThan(0);
  });

  it('refuses a value that is no day, a period that ends before it starts, and a period without an export', async () => {
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'a'));
    const exported = { ...marketingExport(5, 0.5), id: 'W1' };
    const refusal = async (response: Response) => {
      expect(response.status).toBe(400);
      return (await json(response)).error as { code: string; message: string };
    };
    await expect(
      refusal(await post('/v1/reconciliation?from=2025-7-1', { analytics: exported }, KEY_W1)),
    ).resolves.toEqual({
      code: 'BAD_QUERY',
      message: expect.stringContaining(
        '"from" "2025-7-1" is not a day: write YYYY-MM-DD, a day on the clock of the WABA the export describes.',
      ) as unknown,
    });
    await expect(
      refusal(await post('/v1/reconciliation?to=2025-06-30', { analytics: exported }, KEY_W1)),
    ).resolves.toMatchObject({
      code: 'BAD_QUERY',
      message: expect.stringContaining('ends (2025-06-30) before it starts') as unknown,
    });
    for (const path of ['/v1/reconciliation?from=2025-07-01', '/v1/reconciliation?waba=W1&to=2025-07-31']) {
      await expect(refusal(await service.get(path, KEY_W1))).resolves.toEqual({
        code: 'BAD_QUERY',
        message: expect.stringContaining(
          '"from" and "to" choose the days compared with Meta\'s analytics export: upload one',
        ) as unknown,
      });
    }
  });
});

describe('dashboard API: what one estimate or reconciliation request may ask', () => {
  beforeEach(async () => {
    service = await createDashboardService();
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'a'));
  });

  const phones = (n: number) => Array.from({ length: n }, (_, i) => `+91 98${String(i).padStart(8, '0')}`);

  it('estimate: more than 50,000 recipients in one request is 400, saying the limit and to split the list', async () => {
    for (const body of [
      { phones: phones(50_001), template: 'utility' },
      { csv: ['phone', ...phones(50_001)].join('\n'), template: 'utility' },
    ]) {
      const response = await post('/v1/estimate', body, KEY_W1);
      expect(response.status).toBe(400);
      const { error } = await json(response);
      expect(error.code).toBe('BAD_QUERY');
      expect(error.message).toContain('50000');
      expect(error.message).toMatch(/split/);
    }
  });

  it("estimate: a CSV header of a phone and 6,000 columns is refused 400 (the reviewers' 4.3 GB heap), small", async () => {
    const header = ['phone', ...Array.from({ length: 6_000 }, (_, i) => `c${i.toString(36)}`)].join(',');
    const csv = [header, ...phones(300)].join('\n');
    const response = await post('/v1/estimate', { csv, template: 'utility' }, KEY_W1);
    const text = await response.text();
    expect(response.status).toBe(400);
    expect(JSON.parse(text).error.message).toContain('TOO_MANY_COLUMNS');
    expect(text.length).toBeLessThan(2_000);
  });

  it('estimate: rows of just a phone under a wide header answer lines without empty columns', async () => {
    const header = ['phone', ...Array.from({ length: 150 }, (_, i) => `column${i}`)].join(',');
    const response = await post(
      '/v1/estimate',
      { csv: [header, ...phones(1_000)].join('\n'), template: 'utility' },
      KEY_W1,
    );
    expect(response.status).toBe(200);
    const text = await response.text();
    const body = JSON.parse(text);
    expect(body.lines).toHaveLength(1_000);
    expect(body.lines.every((line: object) => !('column0' in line))).toBe(true);
    expect(text.length).toBeLessThan(1_000 * 400);
  });

  it('estimate: columns that would repeat into more than 32 MiB of answer are refused 400, saying to send fewer', async () => {
    const names = Array.from({ length: 199 }, (_, i) => `${'n'.repeat(96)}${String(i).padStart(3, '0')}`);
    const rows = phones(2_000).map((phone) => `${phone}${','.repeat(199)}`);
    const csv = [['phone', ...names].join(','), ...rows].join('\n');
    const response = await post('/v1/estimate', { csv, template: 'utility' }, KEY_W1);
    const text = await response.text();
    expect(response.status).toBe(400);
    expect(JSON.parse(text).error.message).toContain('ECHO_TOO_LARGE');
    expect(text.length).toBeLessThan(2_000);
  });

  /** Meta's export of one day, with one field of its point replaced. */
  const exportWith = (field: string, value: unknown) => {
    const exported = marketingExport(5, 0.5);
    const point = exported.pricing_analytics.data[0]!.data_points[0]! as Record<string, unknown>;
    point[field] = value;
    return { analytics: { ...exported, id: 'W1' } };
  };

  it.each([
    [12_345_678_901.25, '12345678901.25'],
    [1e21, '1000000000000000000000'],
  ])(
    "reconciliation: an analytics point's cost of %d (past 2^53 micros: rupiah) is read exactly, not refused",
    async (cost, amount) => {
      const response = await post('/v1/reconciliation', exportWith('cost', cost), KEY_W1);
      expect(response.status).toBe(200);
      const body = await json(response);
      expect(body.analytics.totals[0].meta.amount).toBe(amount);
    },
  );

  it.each([
    ['end', 8_640_000_000_000],
    ['end', 99_999_999_999_999],
    ['start', -8_640_000_000_000],
  ])(
    'reconciliation: an analytics point with "%s": %d is 400 BAD_QUERY naming the field, not 503 STORE_UNAVAILABLE',
    async (field, value) => {
      const response = await post('/v1/reconciliation', exportWith(field, value), KEY_W1);
      const { error } = await json(response);
      expect([response.status, error.code]).toEqual([400, 'BAD_QUERY']);
      expect(error.message).toContain(`data[0].data_points[0]`);
      expect(error.message).toContain(`"${field}"`);
      expect(response.headers.get('Retry-After')).toBeNull();
    },
  );
});

describe('dashboard API: volume-tier positions count as the rating does', () => {
  // W1 (Asia/Kolkata, primary country Indonesia: eligible for India's authentication-international rate) and
  // W2 (São Paulo) share portfolio P1. India's October 2025 bands are small, so a few messages cross them.
  const dir = mkdtempSync(join(tmpdir(), 'wameter-dashboard-tiers-'));
  const accountsPath = join(dir, 'accounts.json');
  writeFileSync(
    accountsPath,
    JSON.stringify({
      accounts: [
        {
          waba: 'W1',
          timezone: 'Asia/Kolkata',
          currency: 'USD',
          portfolio: 'P1',
          primary_country: 'ID',
          auth_international: { start: '2024-07-01T00:00:00Z' },
        },
        {
          waba: 'W2',
          timezone: 'America/Sao_Paulo',
          currency: 'USD',
          portfolio: 'P1',
          primary_country: 'BR',
        },
      ],
    }),
  );
  const cardsDir = bundledCardsWithTiers(dir, [
    'India,$US,Utility,1,3,0.0014',
    'India,$US,Utility,4,6,0.0012',
    'India,$US,Utility,7,,0.0010',
    'India,$US,Authentication,1,2,0.0014',
    'India,$US,Authentication,3,,0.0011',
    'India,$US,Authentication-International,1,2,0.0280',
    'India,$US,Authentication-International,3,,0.0200',
  ]);

  /** One template to an Indian user, delivered at once. */
  const sent = (waba: string, id: string, at: string, template: string, user: string): object => ({
    kind: 'outbound',
    at,
    waba,
    business: waba === 'W1' ? 'PN1' : 'PN2',
    user,
    id,
    template,
    delivered_at: at,
  });

  beforeEach(async () => {
    service = await createDashboardService({ accountsPath, rateCardPaths: [cardsDir] });
    service.clock.nowMs = Date.parse('2025-11-20T12:00:00Z');
    const posted = await service.postEvents([
      // October's utility: W1 4 (counts 1–4), W2 3 (5–7) and one more at 22:00 on Oct 31 São Paulo time (8).
      sent('W1', 'u1', '2025-10-02T10:00:00Z', 'utility', '919810000000'),
      sent('W1', 'u2', '2025-10-03T10:00:00Z', 'utility', '919810000001'),
      sent('W1', 'u3', '2025-10-04T10:00:00Z', 'utility', '919810000002'),
      sent('W1', 'u4', '2025-10-05T10:00:00Z', 'utility', '919810000003'),
      sent('W2', 'u5', '2025-10-10T10:00:00Z', 'utility', '919820000000'),
      sent('W2', 'u6', '2025-10-11T10:00:00Z', 'utility', '919820000001'),
      sent('W2', 'u7', '2025-10-12T10:00:00Z', 'utility', '919820000002'),
      sent('W2', 'u8', '2025-11-01T01:00:00Z', 'utility', '919850000001'),
      // 00:30 on Nov 1 in Kolkata: W1's November, not October.
      sent('W1', 'u9', '2025-10-31T19:00:00Z', 'utility', '919850000002'),
      // Authentication: W1's 3 at the international rate, W2's 2 at the domestic one, one count of 5.
      sent('W1', 'a1', '2025-10-03T11:00:00Z', 'authentication', '919830000000'),
      sent('W1', 'a2', '2025-10-04T11:00:00Z', 'authentication', '919830000001'),
      sent('W2', 'a3', '2025-10-05T11:00:00Z', 'authentication', '919840000000'),
      sent('W2', 'a4', '2025-10-06T11:00:00Z', 'authentication', '919840000001'),
      sent('W1', 'a5', '2025-10-20T11:00:00Z', 'authentication', '919830000099'),
    ]);
    expect(posted.status).toBe(200);
  });

  /** The stored units' tier positions, as the rating priced them. */
  async function ratedTiers(): Promise<
    { id: string; category: string; rate: number | null; tier: unknown }[]
  > {
    await service.rating.current();
    const page = await service.store.queryUnits({ wabas: ['W1', 'W2'] }, { limit: 100 });
    return page.units.map((unit) => ({
      id: unit.id,
      category: unit.category,
      rate: unit.rateMicros,
      tier: unit.tier,
    }));
  }

  it('allowances: authentication-international shares the authentication count, one row with each rate at its band', async () => {
    // The rating charged a5 (W1, international) as count 5, band 3:, and W2's domestic ones as counts 3 and 4.
    const rated = await ratedTiers();
    expect(rated.find((unit) => unit.id.includes('a5'))).toMatchObject({
      category: 'authentication_international',
      rate: 20_000,
      tier: { count: 5, band: '3:', month: '2025-10' },
    });
    const body = await json(await service.get('/v1/dashboard/allowances?month=2025-10', KEY_ALL));
    expect(body.tiers.map((row: { category: string }) => row.category).sort()).toEqual([
      'authentication',
      'utility',
    ]);
    const authentication = body.tiers.find((row: { category: string }) => row.category === 'authentication');
    expect(authentication).toEqual({
      portfolio: 'P1',
      wabas: ['W1', 'W2'],
      market: 'India',
      category: 'authentication',
      currency: 'USD',
      charged_this_month: 5,
      band: '3:',
      band_rate: '0.0011',
      next_band_from: null,
      rate_card: 'usd-2025-10-01',
      rate_categories: [
        {
          category: 'authentication',
          charged_this_month: 2,
          band: '3:',
          band_rate: '0.0011',
          next_band_from: null,
        },
        {
          category: 'authentication_international',
          charged_this_month: 3,
          band: '3:',
          band_rate: '0.02',
          next_band_from: null,
        },
      ],
    });
  });

  it("allowances: a key for some of a portfolio's WABAs sees its own count at the portfolio's band", async () => {
    // W2's last October utility message was the portfolio's 8th, charged at band 7:.
    expect((await ratedTiers()).find((unit) => unit.id.includes('u8'))).toMatchObject({
      rate: 1_000,
      tier: { count: 8, band: '7:' },
    });
    const expected = {
      portfolio: 'P1',
      wabas: ['W1'],
      market: 'India',
      category: 'utility',
      currency: 'USD',
      charged_this_month: 4,
      band: '7:',
      band_rate: '0.001',
      next_band_from: null,
      rate_card: 'usd-2025-10-01',
    };
    const own = await json(await service.get('/v1/dashboard/allowances?month=2025-10', KEY_W1));
    const utility = own.tiers.find((row: { category: string }) => row.category === 'utility');
    expect(utility).toMatchObject(expected);
    // The count of W1's own international messages, at the portfolio's shared band (its count is 5).
    expect(own.tiers.find((row: { category: string }) => row.category === 'authentication')).toMatchObject({
      wabas: ['W1'],
      charged_this_month: 3,
      band: '3:',
    });
    expect(JSON.stringify(own)).not.toContain('W2');
    // The same for a key for every WABA asking for one of them.
    const asked = await json(await service.get('/v1/dashboard/allowances?month=2025-10&waba=W1', KEY_ALL));
    expect(asked.tiers.find((row: { category: string }) => row.category === 'utility')).toMatchObject(
      expected,
    );
    // The portfolio as a whole: 8 charged in October.
    const all = await json(await service.get('/v1/dashboard/allowances?month=2025-10', KEY_ALL));
    expect(all.tiers.find((row: { category: string }) => row.category === 'utility')).toMatchObject({
      ...expected,
      wabas: ['W1', 'W2'],
      charged_this_month: 8,
    });
    // The mates' events read for the band never list them in the free allowance (per number from 2026-10).
    service.clock.nowMs = Date.parse('2026-11-20T12:00:00Z');
    const answered = (waba: string, business: string, user: string): object[] => [
      { kind: 'inbound', at: '2026-10-05T09:00:00Z', waba, business, user, id: `${waba}.in` },
      { ...sent(waba, `${waba}.svc`, '2026-10-05T09:01:00Z', 'utility', user), template: null },
    ];
    await service.postEvents([
      ...answered('W1', 'PN1', '919860000001'),
      ...answered('W2', 'PN2', '919860000002'),
    ]);
    const reported = await json(await service.get('/v1/dashboard/allowances?month=2026-10', KEY_W1));
    expect(reported.allowance.per).toBe('business');
    expect(reported.allowance.rows).toEqual([
      { waba: 'W1', business: 'PN1', used: 1, limit: 1000, remaining: 999 },
    ]);
    expect(JSON.stringify(reported)).not.toContain('W2');
  });

  it('allowances: lists no volume tiers in a conversation-priced month, and says why', async () => {
    // A utility conversation in June 2023 (CBP-2023): charged, but counted for no volume tier.
    await service.postEvents([sent('W1', 'c1', '2023-06-10T11:00:00Z', 'utility', '919810000000')]);
    const rated = await ratedTiers();
    const conversation = rated.find((unit) => unit.id.includes('c1'));
    expect(conversation).toMatchObject({ category: 'utility', rate: expect.any(Number) });
    expect(conversation?.tier).toBeUndefined();
    const body = await json(await service.get('/v1/dashboard/allowances?month=2023-06', KEY_ALL));
    expect(body.era).toBe('CBP-2023');
    expect(body.tiers).toEqual([]);
    expect(body.tiers_note).toContain('per-message pricing');
    const pmp = await json(await service.get('/v1/dashboard/allowances?month=2025-10', KEY_ALL));
    expect(pmp.tiers_note).toBeNull();
  });
});

describe('dashboard API: the estimate quotes only what the key may read', () => {
  // W1 and W2 share a portfolio (their events are rated together for tiers); each client sees only its own.
  const accountsPath = accountsFile(['W1', 'W2']);
  const W2_USER = '919876543210';
  const AT = '2025-07-10T12:00:00Z'; // three hours after W2's user wrote to PN2

  beforeEach(async () => {
    service = await createDashboardService({ accountsPath });
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '919800000001', 'w1'),
      ...conversationLines('W2', 'PN2', W2_USER, 'w2'),
    ]);
  });

  it('findings naming a second WABA (ids or numbers two clients share) are shown only to a key for both', async () => {
    await service.postEvents([
      // W1's events name W2's business number and one of W2's message ids.
      {
        kind: 'inbound',
        at: '2025-07-10T08:00:00Z',
        waba: 'W1',
        business: 'PN2',
        user: W2_USER,
        id: 'wamid.w1',
      },
      { kind: 'status', at: '2025-07-12T10:00:04Z', waba: 'W1', id: 'w2.o2', status: 'failed' },
    ]);
    const codes = (answer: Record<string, unknown>) =>
      (answer.findings as { code: string }[]).map((finding) => finding.code).sort();
    const all = await json(await service.get('/v1/findings', KEY_ALL));
    expect(codes(all)).toEqual(expect.arrayContaining(['MESSAGE_OF_TWO_WABAS', 'NUMBER_OF_TWO_WABAS']));
    const own = await json(await service.get('/v1/findings', KEY_W1));
    expect(codes(own)).not.toContain('MESSAGE_OF_TWO_WABAS');
    expect(codes(own)).not.toContain('NUMBER_OF_TWO_WABAS');
    expect(JSON.stringify(own)).not.toContain('W2');
  });

  it("reconciliation: a key counts its own messages only; a mate's checked message proves nothing of its own", async () => {
    // W2's message carries Meta's pricing (checkable); W1's have none.
    await service.postEvents([
      {
        kind: 'status',
        at: '2025-07-12T10:00:05Z',
        waba: 'W2',
        id: 'w2.o2',
        status: 'read',
        pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
      },
    ]);
    const own = await json(await service.get('/v1/reconciliation', KEY_W1));
    const all = await json(await service.get('/v1/reconciliation', KEY_ALL));
    expect(all.checked.messages).toBeGreaterThan(own.checked.messages);
    expect(own.checked.messages).toBe(own.checked.unverifiable);
    // Nothing of W1's could be compared with Meta: the page must not claim agreement.
    expect(own.nothing_checked).toContain('nothing could be checked against Meta');
    expect(all.nothing_checked).toBeNull();
  });

  it("reconciliation: an export naming no WABA is the key's one WABA's; never names a portfolio mate", async () => {
    const exported = marketingExport(1, 0.0107);
    const mine = await post('/v1/reconciliation', { analytics: exported }, KEY_W1);
    expect(mine.status).toBe(200);
    const body = await json(mine);
    expect(body.analytics).toMatchObject({ waba: 'W1' });
    expect(JSON.stringify(body)).not.toContain('W2');
    const ambiguous = await post('/v1/reconciliation', { analytics: exported }, KEY_ALL);
    expect(ambiguous.status).toBe(400);
    expect((await json(ambiguous)).error.message).toContain('give "waba", one of W1, W2');
  });

  it('refuses a business number of a WABA the key may not read as an unused one, revealing nothing of its users', async () => {
    await expectEstimateRefusedAsUnused(
      [
        { phones: [W2_USER], template: 'utility', at: AT, waba: 'W1', business: 'PN2' },
        { phones: [W2_USER], template: 'utility', at: AT, business: 'PN2' },
        { csv: `phone\n${W2_USER}\n`, template: 'utility', at: AT, waba: 'W1', business: 'PN2' },
      ],
      ['user wrote', 'W2'],
    );
  });

  it("refuses 400 another readable WABA's number, or a number the store never shows for the WABA", async () => {
    const other = await post(
      '/v1/estimate',
      { phones: [W2_USER], template: 'utility', at: AT, waba: 'W1', business: 'PN2' },
      KEY_ALL,
    );
    expect(other.status).toBe(400);
    const message = (await json(other)).error.message;
    expect(message).toContain('BUSINESS_NOT_OF_WABA');
    expect(message).toContain('pass one of its numbers with "business" (PN1)');
    const unknown = await post(
      '/v1/estimate',
      { phones: [W2_USER], template: 'utility', at: AT, business: 'PN-ELSEWHERE' },
      KEY_W1,
    );
    expect(unknown.status).toBe(400);
    expect((await json(unknown)).error.message).toContain('BUSINESS_NOT_OF_WABA');
    // The WABA's own number is quoted as before.
    const own = await post(
      '/v1/estimate',
      { phones: [W2_USER], template: 'utility', at: AT, business: 'PN2' },
      KEY_W2,
    );
    expect(own.status).toBe(200);
    expect((await json(own)).lines[0].reason).toContain('user wrote');
  });

  it("the overview's business filter never shows another WABA's units", async () => {
    const overview = await json(await service.get('/v1/dashboard/overview?business=PN2', KEY_W1));
    expect(overview.currencies).toEqual([]);
    expect(overview.totals).toEqual({});
  });

  it('a past "at" is quoted against the events up to it', async () => {
    const before = await post(
      '/v1/estimate',
      { phones: [W2_USER], template: 'utility', at: '2025-07-10T08:59:00Z' },
      KEY_W2,
    );
    expect(before.status).toBe(200);
    const line = (await json(before)).lines[0];
    expect(line.free).toBe(false);
    expect(line.reason).not.toContain('user wrote');
  });

  it('numbers "phones" entries from 1, lists a blank one as invalid, and asks for "business" in API words', async () => {
    const response = await post(
      '/v1/estimate',
      { phones: ['bad', W2_USER, ''], template: 'utility', at: AT, business: 'PN2' },
      KEY_W2,
    );
    expect(response.status).toBe(200);
    const body = await json(response);
    expect(body.invalid.map((i: { line: number; phone: string }) => [i.line, i.phone])).toEqual([
      [1, 'bad'],
      [3, ''],
    ]);
    expect(body.lines).toHaveLength(1);

    await service.postEvents(conversationLines('W2', 'PN3', '919800000003', 'w2b'));
    const ambiguous = await post('/v1/estimate', { phones: [W2_USER], template: 'utility', at: AT }, KEY_W2);
    expect(ambiguous.status).toBe(400);
    const message = (await json(ambiguous)).error.message;
    expect(message).toContain('BUSINESS_REQUIRED');
    expect(message).toContain('pass "business"');
    expect(message).not.toContain('--business');
  });
});

describe('dashboard API: the estimate of a WABA that has sent nothing yet, beside a mate that has', () => {
  // W2 and W3 share a portfolio; W3, a new client's, has no stored events yet.
  const KEY_W3 = 'key-estimate-w3';
  const accountsPath = accountsFile(['W2', 'W3']);

  beforeEach(async () => {
    service = await createDashboardService({
      accountsPath,
      apiKeys: [
        { name: 'admin', key: KEY_ALL, wabas: '*' },
        { name: 'w3', key: KEY_W3, wabas: ['W3'] },
      ],
    });
  });

  it('asks for "business" in the same words before the mate\'s first event and after, never naming the mate\'s WABA', async () => {
    const refusal = async () => {
      const response = await post(
        '/v1/estimate',
        { phones: ['919800000009'], template: 'utility', waba: 'W3' },
        KEY_W3,
      );
      expect(response.status).toBe(400);
      return (await json(response)).error.message as string;
    };
    const before = await refusal();
    expect(before).toContain('BUSINESS_REQUIRED');
    await service.postEvents(conversationLines('W2', 'PN2', '919876543210', 'w2'));
    // Before, the answer said "WABA W3 sends in none of the events (they show WABA W2)": the mate's id, and
    // that it had begun sending.
    const after = await refusal();
    expect(after).not.toContain('W2');
    expect(after).toBe(before);
  });
});

describe("dashboard API: the estimate and another client's number in another portfolio", () => {
  // Default accounts: each WABA is its own portfolio, so W1's estimate never loads W2's events.
  const W2_USER = '919876543210';
  const AT = '2025-07-10T12:00:00Z';

  beforeEach(async () => {
    service = await createDashboardService();
    await service.postEvents([
      ...conversationLines('W1', 'PN1', '919800000001', 'w1'),
      ...conversationLines('W2', 'PN2', W2_USER, 'w2'),
    ]);
  });

  it('refuses a number that sends for a WABA the key may not read as an unused one, never naming that WABA', async () => {
    await expectEstimateRefusedAsUnused(
      [
        { phones: [W2_USER], template: 'utility', at: AT, waba: 'W1', business: 'PN2' },
        { phones: [W2_USER], template: 'utility', at: AT, business: 'PN2' },
      ],
      ['W2'],
    );
  });

  it('refuses a number that only users have written to (no unit, nothing pending) as an unused one', async () => {
    await service.postEvents([
      {
        kind: 'inbound',
        at: '2025-07-10T09:00:00Z',
        waba: 'W3',
        business: 'PN3',
        user: W2_USER,
        id: 'w3.in',
      },
    ]);
    expect(await service.store.listWabas('PN3')).toEqual(['W3']);
    await expectEstimateRefusedAsUnused(
      [{ phones: [W2_USER], template: 'utility', at: AT, waba: 'W1', business: 'PN3' }],
      ['W3'],
    );
  });

  it('still answers 400 BUSINESS_NOT_OF_WABA for a number no other client sends from, or one the key may read', async () => {
    const unknown = await post(
      '/v1/estimate',
      { phones: [W2_USER], template: 'utility', at: AT, business: 'PN-ELSEWHERE' },
      KEY_W1,
    );
    expect(unknown.status).toBe(400);
    expect((await json(unknown)).error.message).toContain('BUSINESS_NOT_OF_WABA');
    const readable = await post(
      '/v1/estimate',
      { phones: [W2_USER], template: 'utility', at: AT, waba: 'W1', business: 'PN2' },
      KEY_ALL,
    );
    expect(readable.status).toBe(400);
    expect((await json(readable)).error.message).toContain('BUSINESS_NOT_OF_WABA');
  });

  it('the OpenAPI document and docs/service.md say so: 400 BUSINESS_NOT_OF_WABA, never a 403 for that number', async () => {
    const refused = await post(
      '/v1/estimate',
      { phones: [W2_USER], template: 'utility', at: AT, waba: 'W1', business: 'PN2' },
      KEY_W1,
    );
    expect(refused.status).toBe(400);
    const { openApiDocument } = await import('./openapi.js');
    const described =
      openApiDocument.paths['/v1/estimate'].post.requestBody.content['application/json'].schema.properties
        .business.description;
    expect(described).toContain('BUSINESS_NOT_OF_WABA');
    expect(described).not.toMatch(/403/);
    const forbiddenRow = readFileSync(join(import.meta.dirname, '../../docs/service.md'), 'utf8')
      .split('\n')
      .find((line) => line.startsWith('| `FORBIDDEN_WABA`'))!;
    expect(forbiddenRow).not.toMatch(/\(estimate\) a `business` number that sends for one/);
    expect(forbiddenRow).toContain('400 `BAD_QUERY` `BUSINESS_NOT_OF_WABA`');
  });
});

describe('dashboard API: JSON bodies without a declared length', () => {
  beforeEach(async () => {
    service = await createDashboardService();
  });

  it.each(['/v1/estimate', '/v1/reconciliation'])(
    '%s stops reading an endless chunked body at the limit: 413, the rest never read',
    async (path) => {
      let pulled = 0;
      let isCancelled = false;
      const chunk = new TextEncoder().encode(`${' '.repeat(64 * 1024 - 1)}\n`);
      const endless = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled += 1;
          controller.enqueue(chunk);
        },
        cancel() {
          isCancelled = true;
        },
      });
      const response = await service.app.request(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY_ALL}` },
        body: endless,
        duplex: 'half',
      } as RequestInit);
      expect(response.status).toBe(413);
      expect((await json(response)).error.code).toBe('BODY_TOO_LARGE');
      expect(isCancelled).toBe(true);
      // 1 MiB limit in 64 KiB chunks: about 17 read, then the stream is cancelled.
      expect(pulled).toBeLessThan(40);
    },
  );

  it.each(['/v1/estimate', '/v1/reconciliation'])(
    '%s refuses a compressed body 415 UNSUPPORTED_ENCODING (read as sent, it was "not JSON")',
    async (path) => {
      const response = await service.app.request(path, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Content-Encoding': 'gzip',
          Authorization: `Bearer ${KEY_ALL}`,
        },
        body: gzipSync(JSON.stringify({ phones: ['919876543210'], template: 'utility' })),
      });
      expect(response.status).toBe(415);
      const { error } = (await json(response)) as { error: { code: string; message: string } };
      expect(error.code).toBe('UNSUPPORTED_ENCODING');
      expect(error.message).toContain('(Content-Encoding: gzip)');
    },
  );
});

describe('dashboard API: JSON bodies nested thousands deep', () => {
  beforeEach(async () => {
    service = await createDashboardService();
  });

  it.each(['/v1/estimate', '/v1/reconciliation'])(
    '%s answers 400 MALFORMED_JSON, never a crash',
    async (path) => {
      const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
      const response = await post(path, `{"at":${deep},"waba":${deep}}`, KEY_ALL);
      expect(response.status).toBe(400);
      expect((await json(response)).error.code).toBe('MALFORMED_JSON');
    },
  );
});

describe('dashboard API: JSON bodies are read strictly', () => {
  beforeEach(async () => {
    service = await createDashboardService();
    await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'a'));
  });

  it.each([
    // JSON.parse keeps the last copy: the quote would be for a template the caller did not think it asked.
    [
      '/v1/estimate',
      '{"phones":["+91 9800000001"],"template":"marketing","template":"utility"}',
      '"template"',
    ],
    [
      '/v1/estimate',
      '{"phones":["+91 9800000001"],"phones":["+91 9800000002"],"template":"utility"}',
      '"phones"',
    ],
    [
      '/v1/estimate',
      '{"phones":["+91 9800000001"],"template":"utility","w\\u0061ba":"W1","waba":"W1"}',
      '"waba"',
    ],
    ['/v1/reconciliation', '{"analytics":{"id":"W1","data":[]},"analytics":{"id":"W1"}}', '"analytics"'],
  ])('%s refuses %s, a key given twice, with 400 BAD_QUERY naming it', async (path, body, key) => {
    const response = await post(path, body, KEY_W1);
    expect(response.status).toBe(400);
    const { error } = await json(response);
    expect(error.code).toBe('BAD_QUERY');
    expect(error.message).toContain(`${key} is given twice`);
  });

  it('reconciliation: a key given twice deep inside the export is refused naming its path', async () => {
    const exported = JSON.stringify({ analytics: { ...marketingExport(5, 0.5), id: 'W1' } }).replace(
      '"cost":0.5',
      '"cost":0.5,"cost":0.25',
    );
    expect(exported).toContain('"cost":0.25');
    const response = await post('/v1/reconciliation', exported, KEY_W1);
    expect(response.status).toBe(400);
    const { error } = await json(response);
    expect(error.code).toBe('BAD_QUERY');
    expect(error.message).toContain('"cost" is given twice');
    expect(error.message).toContain('analytics.pricing_analytics.data[0].data_points[0]');
  });

  it.each(['/v1/estimate', '/v1/reconciliation'])(
    '%s refuses valid JSON that is no object with 400 BAD_QUERY saying the body must be a JSON object',
    async (path) => {
      for (const body of ['[1]', 'null', '123', '"x"']) {
        const response = await post(path, body, KEY_W1);
        expect(response.status, body).toBe(400);
        const { error } = await json(response);
        expect(error.code, body).toBe('BAD_QUERY');
        expect(error.message, body).toContain('must be a JSON object');
        expect(error.message, body).not.toContain('not valid JSON');
      }
      // Not JSON at all stays MALFORMED_JSON.
      expect((await json(await post(path, '{"template":', KEY_W1))).error.code).toBe('MALFORMED_JSON');
    },
  );
});

describe('the OpenAPI document', () => {
  it('describes every dashboard route', async () => {
    const { openApiDocument } = await import('./openapi.js');
    const service = await createDashboardService();
    const paths = openApiDocument.paths as Record<string, Record<string, unknown>>;
    const routes = service.app.routes.filter(
      (route) => route.method !== 'ALL' && route.path.startsWith('/v1/') && !route.path.includes('*'),
    );
    expect(routes.some((route) => route.path.startsWith('/v1/dashboard/'))).toBe(true);
    for (const route of routes) {
      const path = route.path.replace(/:(\w+)/g, '{$1}');
      expect(paths[path]?.[route.method.toLowerCase()], `${route.method} ${route.path}`).toBeDefined();
    }
    await service.close();
  });
});

describe('metrics with every route mounted', () => {
  it("a dashboard route answered 503 for a store failure counts in store_errors_total, as the query API's do", async () => {
    service = await createDashboardService();
    await service.store.close(); // every read fails from here on, as with a database that went away
    for (const path of ['/v1/dashboard/accounts', '/v1/findings']) {
      const response = await service.get(path, KEY_ALL);
      expect(response.status, path).toBe(503);
      expect((await json(response)).error.code).toBe('STORE_UNAVAILABLE');
    }
    expect(service.metrics.value('store_errors_total')).toBe(2);
    service.store.close = async () => undefined;
  });

  it('with the dashboard mounted (its catch-all last), metrics label each request with the route that answered', async () => {
    service = await createDashboardService();
    await service.get('/v1/units', KEY_ALL);
    await service.get('/v1/explain?user=919800000001', KEY_ALL);
    await service.get('/healthz');
    await service.get(
      `/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=7`,
    );
    await service.get('/no/such/path');
    const text = await (await service.get('/metrics')).text();
    for (const series of [
      '{method="GET",route="/v1/units",status="200"}',
      '{method="GET",route="/v1/explain",status="200"}',
      '{method="GET",route="/healthz",status="200"}',
      '{method="GET",route="/webhooks/whatsapp",status="200"}',
      '{method="GET",route="unmatched",status="404"}',
    ]) {
      expect(text).toContain(`http_request_duration_seconds_count${series} 1`);
    }
  });
});
