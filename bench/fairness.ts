// How much one client's heavy requests (explain, reconciliation) delay another client's bill and Meta's
// webhooks. A store is filled from a traffic file (`wameter import`), then `wameter serve` runs on it with two
// API keys: "heavy" for every WABA but one, "light" for the last WABA of a portfolio of its own. In each
// phase the light client posts one event a quarter of a second and reads its totals (which wait for the live
// rating of what it posted), and a signed webhook is posted every 100 ms; the heavy client does nothing
// (quiet), loops `GET /v1/explain`, or loops `GET /v1/reconciliation`.
// Run: npm run build && node dist/bench/fairness.js [traffic.ndjson] [--seconds N] [--heavy-clients N]

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { signMetaBody } from '../src/ingest/signature.js';

const DEFAULT_TRAFFIC =
  'bench/out/traffic-s42-e1000000-u50000-w12-d30-2025-10-01-dis0.02x30m-dup0.01-web0.2.ndjson';
const SECRET = 'fairness-secret';
const HEAVY_KEY = 'heavy-key-0123456789';
const LIGHT_KEY = 'light-key-0123456789';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const at = argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(argv.splice(at, 2)[1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} takes a positive number`);
  return value;
};
const seconds = flag('--seconds', 20);
const heavyClients = flag('--heavy-clients', 4);
const logAt = argv.indexOf('--server-log');
const serverLog = logAt < 0 ? null : argv.splice(logAt, 2)[1]!;
const traffic = argv[0] ?? DEFAULT_TRAFFIC;
const accountsPath = traffic.replace(/\.ndjson$/, '.accounts.json');
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface AccountJson {
  waba: string;
  portfolio?: string;
}
const accounts = (JSON.parse(readFileSync(accountsPath, 'utf8')) as { accounts: AccountJson[] }).accounts;
const portfolioOf = (a: AccountJson) => a.portfolio ?? a.waba;
const alone = accounts.filter((a) => accounts.filter((b) => portfolioOf(b) === portfolioOf(a)).length === 1);
const light = alone.at(-1)!.waba;
const heavy = accounts.map((a) => a.waba).filter((waba) => waba !== light);

/** Users of the heavy client's WABAs, to explain (taken from the file's outbound lines). */
async function heavyUsers(limit: number): Promise<string[]> {
  const users = new Set<string>();
  const lines = createInterface({ input: createReadStream(traffic) });
  for await (const line of lines) {
    if (!line.startsWith('{"kind":"outbound"')) continue;
    const event = JSON.parse(line) as { waba: string; user: string };
    if (event.waba !== light) users.add(event.user);
    if (users.size >= limit) break;
  }
  lines.close();
  return [...users];
}

const dir = mkdtempSync(join(tmpdir(), 'wameter-fairness-'));
let server: ChildProcess | undefined;
try {
  const db = `sqlite:${join(dir, 'store.db')}`;
  const config = join(dir, 'config.json');
  const port = 18_700 + Math.floor(Math.random() * 200);
  writeFileSync(
    config,
    JSON.stringify({
      port,
      host: '127.0.0.1',
      db,
      accounts: accountsPath,
      appSecrets: [SECRET],
      rateLimit: false,
      logLevel: serverLog === null ? 'warn' : 'debug',
      apiKeys: [
        { name: 'heavy', key: HEAVY_KEY, wabas: heavy },
        { name: 'light', key: LIGHT_KEY, wabas: [light] },
      ],
    }),
  );
  console.log(`importing ${traffic} …`);
  const importStartedMs = performance.now();
  execFileSync(
    process.execPath,
    [cli, 'import', traffic, '--db', db, '--config', config, '--allow-unpriced'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  console.log(`imported in ${((performance.now() - importStartedMs) / 1000).toFixed(1)} s`);
  const logFd = serverLog === null ? 'ignore' : openSync(serverLog, 'w');
  server = spawn(process.execPath, [cli, 'serve', '--config', config], {
    stdio: ['ignore', logFd, 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 600) throw new Error('the server did not start within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const users = await heavyUsers(500);
  let sequence = 0;

  /** Light client: post one delivered template, then read the totals (they wait for its rating). */
  async function lightBill(): Promise<number> {
    sequence += 1;
    const id = `wamid.fairness.${Date.now()}.${sequence}`;
    const at = new Date(Date.parse('2025-10-20T12:00:00Z') + sequence * 1000).toISOString();
    const lines = [
      {
        kind: 'outbound',
        at,
        waba: light,
        business: '100000000000001',
        user: '919800000001',
        id,
        template: 'utility',
      },
      { kind: 'status', at, waba: light, id, status: 'delivered' },
    ];
    const startedMs = performance.now();
    const posted = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${LIGHT_KEY}`, 'content-type': 'application/x-ndjson' },
      body: lines.map((line) => JSON.stringify(line)).join('\n'),
    });
    await posted.arrayBuffer();
    if (!posted.ok) throw new Error(`POST /v1/events answered ${posted.status}`);
    const totals = await fetch(`${base}/v1/totals?waba=${light}`, {
      headers: { authorization: `Bearer ${LIGHT_KEY}` },
    });
    await totals.arrayBuffer();
    if (!totals.ok) throw new Error(`GET /v1/totals answered ${totals.status}`);
    return performance.now() - startedMs;
  }

  /** A signed webhook with one status of the light WABA (Meta's side: answered 200 once stored). */
  async function webhook(): Promise<number> {
    sequence += 1;
    const body = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: light,
          changes: [
            {
              field: 'messages',
              value: {
                messaging_product: 'whatsapp',
                metadata: { display_phone_number: '15550000001', phone_number_id: '100000000000001' },
                statuses: [
                  {
                    id: `wamid.fairness.hook.${sequence}`,
                    status: 'read',
                    timestamp: String(Math.floor(Date.parse('2025-10-21T00:00:00Z') / 1000) + sequence),
                    recipient_id: '919800000002',
                  },
                ],
              },
            },
          ],
        },
      ],
    });
    const startedMs = performance.now();
    const answer = await fetch(`${base}/webhooks/whatsapp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(body, SECRET) },
      body,
    });
    await answer.arrayBuffer();
    if (!answer.ok) throw new Error(`webhook answered ${answer.status}`);
    return performance.now() - startedMs;
  }

  async function heavyLoop(path: () => string, until: number, done: number[]): Promise<void> {
    while (performance.now() < until) {
      const answer = await fetch(`${base}${path()}`, { headers: { authorization: `Bearer ${HEAVY_KEY}` } });
      await answer.arrayBuffer();
      if (!answer.ok && answer.status !== 429) throw new Error(`${path()} answered ${answer.status}`);
      done.push(answer.status);
    }
  }

  async function every(periodMs: number, until: number, probe: () => Promise<number>, out: number[]) {
    while (performance.now() < until) {
      const startedMs = performance.now();
      out.push(await probe());
      const restMs = periodMs - (performance.now() - startedMs);
      if (restMs > 0) await new Promise((resolve) => setTimeout(resolve, restMs));
    }
  }

  const quantile = (values: number[], q: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  };
  const ms = (value: number) => `${Math.round(value).toLocaleString('en-US')} ms`;

  const phases: { name: string; path: (() => string) | null }[] = [
    { name: 'quiet', path: null },
    {
      name: `${heavyClients} explain loops`,
      path: () => `/v1/explain?user=${users[Math.floor(Math.random() * users.length)]}`,
    },
    { name: `${heavyClients} reconciliation loops`, path: () => '/v1/reconciliation' },
  ];
  // The server rates the whole store at start: the phases begin once the bill is current.
  const warmUpMs = await lightBill();
  console.log(`the first bill, with the start's rating of the store: ${ms(warmUpMs)}`);
  console.log(`\nlight WABA ${light}; heavy key: ${heavy.length} WABAs; ${seconds} s a phase\n`);
  console.log(
    '| heavy client | light bill p50 | light bill max | webhook p50 | webhook p99 | webhook max | heavy answers |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const phase of phases) {
    const until = performance.now() + seconds * 1000;
    const bills: number[] = [];
    const hooks: number[] = [];
    const heavyDone: number[] = [];
    await Promise.all([
      every(250, until, lightBill, bills),
      every(100, until, webhook, hooks),
      ...(phase.path
        ? Array.from({ length: heavyClients }, () => heavyLoop(phase.path!, until, heavyDone))
        : []),
    ]);
    const refused = heavyDone.filter((status) => status === 429).length;
    console.log(
      `| ${phase.name} | ${ms(quantile(bills, 0.5))} | ${ms(Math.max(...bills))} | ${ms(quantile(hooks, 0.5))} | ${ms(quantile(hooks, 0.99))} | ${ms(Math.max(...hooks))} | ${heavyDone.length - refused} answered${refused ? `, ${refused} refused 429` : ''} |`,
    );
  }
} finally {
  server?.kill('SIGTERM');
  await new Promise((resolve) =>
    server && server.exitCode === null ? server.once('exit', resolve) : resolve(null),
  );
  rmSync(dir, { recursive: true, force: true });
}
