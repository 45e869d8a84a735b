// The floor under storing webhook bodies in PostgreSQL: the bench's realistic bodies (one status each), in
// groups of 10 (the load test's connections), each group ONE statement in autocommit (no BEGIN/COMMIT round
// trips), into a table holding only what durability and duplicate detection need (the body, its SHA-256 with
// a unique index, the arrival). No events, no listing facts, no rating. What a body costs here is what no
// design storing bodies in PostgreSQL can go below on this machine; table 3b's "bodies" row is the store's
// own ingest of the same bodies. Two ways to pass a group: arrays (`unnest`) and one JSON text
// (`json_to_recordset`).
//
//   npm run build && node dist/bench/pg-body-floor.js [GROUPS] [URL]
//
// CPU: this process's (process.cpuUsage) plus every PostgreSQL process's (utime + stime from /proc), ÷
// bodies. Linux only (/proc).

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { WebhookBodies } from './webhook-bodies.js';

const GROUP = 10;

/** CPU seconds used so far by every process whose name starts with "postgres". */
function postgresCpuSeconds(): number {
  let seconds = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (!stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).startsWith('postgres')) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      seconds += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // The process ended meanwhile.
    }
  }
  return seconds;
}

interface Body {
  text: string;
  sha256: string;
}

const STATEMENTS = {
  arrays: (table: string) =>
    `INSERT INTO ${table} (received_at_ms, body, sha256)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) ON CONFLICT (sha256) DO NOTHING RETURNING id`,
  json: (table: string) =>
    `INSERT INTO ${table} (received_at_ms, body, sha256)
     SELECT r.t, r.b, r.h FROM json_to_recordset($1::json) AS r(t bigint, b text, h text)
     ON CONFLICT (sha256) DO NOTHING RETURNING id`,
} as const;

function valuesOf(way: keyof typeof STATEMENTS, group: readonly Body[], nowMs: number): unknown[] {
  return way === 'arrays'
    ? [group.map(() => nowMs), group.map((body) => body.text), group.map((body) => body.sha256)]
    : [JSON.stringify(group.map((body) => ({ t: nowMs, b: body.text, h: body.sha256 })))];
}

async function main(): Promise<void> {
  const groups = Number(process.argv[2] ?? 2000);
  const url = process.argv[3] ?? 'postgres://postgres@127.0.0.1:5432/test';
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const generator = new WebhookBodies(42, `floor-${Date.now()}`, 'one');
  console.log(`| way | bodies | ms a group | bodies/s | CPU µs a body: node | PostgreSQL | total |`);
  console.log(`|---|---|---|---|---|---|---|`);
  try {
    for (const round of [1, 2]) {
      for (const way of Object.keys(STATEMENTS) as (keyof typeof STATEMENTS)[]) {
        const table = `wameter_body_floor_${process.pid}`;
        await client.query(`DROP TABLE IF EXISTS ${table}`);
        await client.query(`CREATE TABLE ${table} (id bigserial PRIMARY KEY, received_at_ms bigint NOT NULL,
                            body text NOT NULL, sha256 text NOT NULL UNIQUE)`);
        const bodies: Body[] = Array.from({ length: groups * GROUP }, () => {
          const text = generator.next();
          return { text, sha256: createHash('sha256').update(text).digest('hex') };
        });
        const statement = { name: `floor-${way}-${round}`, text: STATEMENTS[way](table) };
        const cpuBefore = process.cpuUsage();
        const postgresBefore = postgresCpuSeconds();
        const startedMs = performance.now();
        for (let from = 0; from < bodies.length; from += GROUP) {
          await client.query({
            ...statement,
            values: valuesOf(way, bodies.slice(from, from + GROUP), Date.now()),
          });
        }
        const ms = performance.now() - startedMs;
        const cpu = process.cpuUsage(cpuBefore);
        const node = (cpu.user + cpu.system) / bodies.length;
        const postgres = ((postgresCpuSeconds() - postgresBefore) * 1e6) / bodies.length;
        await client.query(`DROP TABLE ${table}`);
        console.log(
          `| ${way} (round ${round}) | ${bodies.length} | ${(ms / groups).toFixed(2)} | ${Math.round(
            bodies.length / (ms / 1000),
          )} | ${node.toFixed(1)} | ${postgres.toFixed(1)} | ${(node + postgres).toFixed(1)} |`,
        );
      }
    }
  } finally {
    await client.end();
  }
}

await main();
