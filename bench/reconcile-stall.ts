// How long one POST /v1/reconciliation of a body at the limit (4 MiB of Meta's pricing_analytics export)
// stops the server's event loop: the service runs in this process (startServer, its rating workers and all) on
// a SQLite store of generated traffic; perf_hooks' monitorEventLoopDelay and a 1 ms timer watch the loop while
// a child process posts the body. Each step the route runs in the server's thread is then timed alone, beside
// a bare JSON.parse of the same body (the baseline: machines are noisy). Since 2026-12-05 those steps run in the
// on-demand worker, not the server's thread; the server's thread only copies the bytes it hands over.
// Run: npm run build && node dist/bench/reconcile-stall.js [events, default 50000] [runs, default 3]

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseAnalyticsExport } from '../src/core/reconcile.js';
import { analyticsPointRefusal } from '../src/server/reconcile-body.js';
import { parseJsonObjectBody } from '../src/server/json-object-body.js';
import { loadServiceConfig } from '../src/server/config.js';
import { startServer } from '../src/server/main.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { eventKey } from '../src/core/events.js';
import { parseEventValue } from '../src/ingest/parse-event.js';
import { generateAccounts, generateTraffic } from './generate-traffic.js';

const events = Number(process.argv[2] ?? 50_000);
const runs = Number(process.argv[3] ?? 3);
const LIMIT_BYTES = 4 * 1024 * 1024;
const KEY = 'reconcile-stall-key-0123';
const run = promisify(execFile);

const dir = mkdtempSync(join(tmpdir(), 'wameter-reconcile-stall-'));
try {
  const traffic = { seed: 7, eventsTarget: events };
  const accountsPath = join(dir, 'accounts.json');
  const { accounts } = generateAccounts(traffic) as { accounts: { waba: string }[] };
  writeFileSync(accountsPath, JSON.stringify({ accounts }));
  const file = join(dir, 'store.db');
  const store = await openSqliteStore(file);
  const batch = [];
  for (const line of generateTraffic(traffic)) {
    const parsed = parseEventValue(JSON.parse(line));
    if (!parsed.ok) continue;
    for (const event of parsed.value.events) {
      batch.push({ key: eventKey(event), event, receivedAtMs: 0, source: 'import:bench' });
    }
  }
  await store.ingestEvents(batch);
  await store.close();

  const waba = accounts[0]!.waba;
  const body = Buffer.from(analyticsBody(waba, LIMIT_BYTES));
  const bodyFile = join(dir, 'body.json');
  writeFileSync(bodyFile, body);

  let lastRatedMs = performance.now();
  const quiet = () => {};
  const config = loadServiceConfig({
    env: {
      WAMETER_DB: `sqlite:${file}`,
      WAMETER_API_KEYS: `${KEY}=*`,
      WAMETER_ACCOUNTS: accountsPath,
      WAMETER_RATE_LIMIT: 'off',
      PORT: '0',
      WAMETER_HOST: '127.0.0.1',
    },
  });
  if (!config.ok) throw new Error(config.error.problems.join('; '));
  const running = await startServer(config.value, {
    logger: {
      debug: (message) => {
        if (message === 'rated') lastRatedMs = performance.now();
      },
      info: quiet,
      warn: quiet,
      error: (message, fields) => console.error(message, fields),
      isLevelWritten: (level) => level === 'debug' || level === 'error',
    },
  });
  // The start's first rating (in its worker, written here) done: 5 s without a "rated" line.
  while (performance.now() - lastRatedMs < 5_000) await new Promise((resolve) => setTimeout(resolve, 250));

  console.log(
    `reconcile-stall: ${body.byteLength} bytes of pricing_analytics for WABA ${waba}, store of ${batch.length} events; node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load ${loadavg()[0]!.toFixed(1)}`,
  );
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  for (let round = 1; round <= runs; round++) {
    let longestGapMs = 0;
    let lastTickMs = performance.now();
    const ticker = setInterval(() => {
      const nowMs = performance.now();
      longestGapMs = Math.max(longestGapMs, nowMs - lastTickMs);
      lastTickMs = nowMs;
    }, 1);
    delay.reset();
    const startedMs = performance.now();
    // The client in a process of its own: its sending and reading are not this event loop's.
    const answer = await postFromChild(`${running.url}/v1/reconciliation`, bodyFile);
    clearInterval(ticker);
    console.log(
      `run ${round}: ${answer} in ${Math.round(performance.now() - startedMs)} ms; event loop delay max ${Math.round(delay.max / 1e6)} ms (p99 ${Math.round(delay.percentile(99) / 1e6)} ms); longest gap of a 1 ms timer ${Math.round(longestGapMs)} ms`,
    );
  }
  delay.disable();
  await running.close();

  // The steps of the route in the server's thread, each alone (the rating itself runs in a worker).
  const bytes = new Uint8Array(body);
  for (let round = 1; round <= runs; round++) {
    const lap = stopwatch();
    JSON.parse(body.toString('utf8'));
    const bare = lap();
    const parsed = parseJsonObjectBody(bytes, '{"analytics"}');
    const checked = lap();
    if (!parsed.ok) throw new Error(parsed.error.detail);
    analyticsPointRefusal(parsed.value.analytics);
    const refusal = lap();
    const exported = parseAnalyticsExport(parsed.value.analytics);
    const read = lap();
    if (!exported.ok) throw new Error(exported.error.message);
    structuredClone(exported.value);
    const cloned = lap();
    new Uint8Array(bytes);
    const copied = lap();
    console.log(
      `steps ${round}: bare JSON.parse ${bare} ms (baseline); parseJsonObjectBody ${checked} ms (${(checked / bare).toFixed(1)}×); analyticsPointRefusal ${refusal} ms; parseAnalyticsExport ${read} ms (${(read / bare).toFixed(1)}×); structured clone of the export ${cloned} ms (${(cloned / bare).toFixed(1)}×). The route runs none of these since 2026-12-05 (the on-demand worker does): only the copy of the bytes handed over, ${copied} ms`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Meta's pricing_analytics answer for `waba`, hour by country by category, cut to at most `limitBytes`. */
function analyticsBody(waba: string, limitBytes: number): string {
  const countries = ['IN', 'BR', 'ID', 'MX', 'US', 'GB', 'DE', 'AE', 'NG', 'ZA', 'EG', 'PK', 'CO', 'AR'];
  const categories = [
    ['MARKETING', 'REGULAR'],
    ['UTILITY', 'REGULAR'],
    ['AUTHENTICATION', 'REGULAR'],
    ['SERVICE', 'FREE_CUSTOMER_SERVICE'],
    ['UTILITY', 'FREE_CUSTOMER_SERVICE'],
    ['MARKETING', 'FREE_ENTRY_POINT'],
  ];
  const startS = Date.parse('2025-10-01T00:00:00Z') / 1000;
  const points: object[] = [];
  let size = 200;
  for (let hour = 0; hour < 60 * 24; hour++) {
    for (const country of countries) {
      for (const [category, type] of categories) {
        const point = {
          start: startS + hour * 3600,
          end: startS + (hour + 1) * 3600,
          volume: (hour * 7 + country.charCodeAt(0)) % 13,
          cost: (hour % 5) * 0.0107,
          country,
          pricing_category: category,
          pricing_type: type,
        };
        size += JSON.stringify(point).length + 1;
        if (size > limitBytes) return wrap();
        points.push(point);
      }
    }
  }
  return wrap();
  function wrap(): string {
    return JSON.stringify({
      waba,
      analytics: { pricing_analytics: { data: [{ data_points: points }] }, id: waba },
    });
  }
}

/** Each call: the milliseconds since the previous one (or since made). */
function stopwatch(): () => number {
  let lastMs = performance.now();
  return () => {
    const nowMs = performance.now();
    const elapsed = Math.round(nowMs - lastMs);
    lastMs = nowMs;
    return elapsed;
  };
}

/** POSTs the file with the bench's key from a child process; "STATUS, N bytes answered". */
async function postFromChild(url: string, file: string): Promise<string> {
  const script = `const body = require('node:fs').readFileSync(${JSON.stringify(file)});
fetch(${JSON.stringify(url)}, { method: 'POST', headers: { authorization: 'Bearer ${KEY}', 'content-type': 'application/json' }, body })
  .then(async (r) => process.stdout.write(r.status + ', ' + (await r.text()).length + ' bytes answered'));`;
  const { stdout } = await run(process.execPath, ['-e', script], { encoding: 'utf8' });
  return stdout;
}
