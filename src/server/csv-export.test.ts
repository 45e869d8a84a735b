import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CSV_COLUMNS, unitCsvRow } from '../core/report.js';
import type { BillableUnit } from '../core/units.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/store.js';
import {
  conversationLines,
  createTestService,
  KEY_ALL,
  KEY_W1,
  KEY_W2,
  type TestService,
} from '../../test/server-kit.js';

// GET /v1/units.csv is streamed page by page as the client reads it: never held whole in memory, a store
// failure before the first page is a 503 like any read, one after it cuts the answer (never a CSV that
// looks whole), and a client that goes away stops the export without an error.

let service: TestService | undefined;
let dir: string | undefined;
afterEach(async () => {
  await service?.rating.close();
  await service?.store.close();
  service = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

type ExportUnits = Store['exportUnits'];

/** A real SQLite store whose export is `exportUnits(real export)` instead. */
async function storeWithExport(exportUnits: (real: ExportUnits) => ExportUnits): Promise<Store> {
  dir = mkdtempSync(join(tmpdir(), 'wameter-csv-'));
  const real = await openSqliteStore(join(dir, 'csv.db'));
  const wrapped = exportUnits(real.exportUnits.bind(real));
  return new Proxy(real, {
    get(target, property) {
      if (property === 'exportUnits') return wrapped;
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Every unit of the real export, in its order. */
async function allUnits(real: ExportUnits): Promise<BillableUnit[]> {
  const units: BillableUnit[] = [];
  await real({}, (page) => void units.push(...page));
  return units;
}

async function serviceWith(
  exportUnits: (real: ExportUnits) => ExportUnits,
  exportStallMs?: number,
  exportDeadlineMs?: number,
): Promise<TestService> {
  const store = await storeWithExport(exportUnits);
  service = await createTestService(
    {},
    {
      store,
      ...(exportStallMs === undefined ? {} : { exportStallMs }),
      ...(exportDeadlineMs === undefined ? {} : { exportDeadlineMs }),
    },
  );
  for (const user of ['919800000001', '919800000002', '919800000003'])
    await service.postEvents(conversationLines('W1', 'PN1', user, `w1.${user}`));
  return service;
}

/** The CSV the export of `units` makes, header first. */
const csvOf = (units: readonly BillableUnit[]) =>
  [CSV_COLUMNS.join(','), ...units.map((unit) => unitCsvRow(unit, 'UTC'))]
    .map((row) => `${row}\r\n`)
    .join('');

async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, lines: number): Promise<string> {
  let text = '';
  const decoder = new TextDecoder();
  while (text.split('\r\n').length - 1 < lines) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

describe('GET /v1/units.csv', () => {
  it('sends the first page before the export reads the next, and the whole CSV in the end', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let units: BillableUnit[] = [];
    let isPastGate = false;
    const svc = await serviceWith((real) => async (_filter, onPage) => {
      units = await allUnits(real);
      await onPage(units.slice(0, 2));
      await gate;
      isPastGate = true;
      await onPage(units.slice(2));
      return units.length;
    });
    const response = await svc.get('/v1/units.csv', KEY_ALL);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const reader = response.body!.getReader();
    const first = await readUntil(reader, 3);
    // The header and the first page came while the export still waits to read the rest.
    expect(isPastGate).toBe(false);
    expect(units.length).toBeGreaterThan(2);
    expect(first).toBe(csvOf(units.slice(0, 2)));
    release();
    const rest = await readUntil(reader, Infinity);
    expect(first + rest).toBe(csvOf(units));
  });

  it('answers 503 when the store fails before the first page, and logs the store error', async () => {
    const svc = await serviceWith(() => () => Promise.reject(new Error('disk I/O error')));
    const response = await svc.get('/v1/units.csv', KEY_ALL);
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('STORE_UNAVAILABLE');
    expect(svc.metrics.render()).toMatch(/^store_errors_total 1$/m);
  });

  it('cuts the answer when the store fails after the first page: never a CSV that looks whole', async () => {
    const svc = await serviceWith((real) => async (_filter, onPage) => {
      const units = await allUnits(real);
      await onPage(units.slice(0, 2));
      throw new Error('disk I/O error');
    });
    const response = await svc.get('/v1/units.csv', KEY_ALL);
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
    expect(svc.logs.map((line) => JSON.parse(line) as { level: string; msg: string })).toContainEqual(
      expect.objectContaining({
        level: 'error',
        msg: 'CSV export failed after its first rows; the answer was cut',
      }),
    );
    expect(svc.metrics.render()).toMatch(/^store_errors_total 1$/m);
  });

  it('stops the export when the client goes away, with no error logged', async () => {
    let pages = 0;
    const svc = await serviceWith((real) => async (_filter, onPage) => {
      const units = await allUnits(real);
      for (const unit of units) {
        pages += 1;
        await onPage([unit]);
      }
      return units.length;
    });
    const response = await svc.get('/v1/units.csv', KEY_ALL);
    const reader = response.body!.getReader();
    await readUntil(reader, 2);
    await reader.cancel();
    for (let i = 0; i < 50 && !svc.logs.some((line) => line.includes('client closed')); i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    const logged = svc.logs.map((line) => JSON.parse(line) as { level: string; msg: string });
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: 'info',
        msg: 'CSV export stopped: the client closed the connection or stopped reading',
      }),
    );
    expect(logged.filter((line) => line.level === 'error')).toEqual([]);
    expect(pages).toBeLessThan(9);
  });

  it('downloads one export per key and two in all: more are 429 until one ends, and a client that stops reading is cut', async () => {
    const svc = await serviceWith(
      (real) => async (_filter, onPage) => {
        const units = await allUnits(real);
        for (const unit of units) await onPage([unit]);
        return units.length;
      },
      100,
    );
    const refusal = async (key: string) => {
      const refused = await svc.get('/v1/units.csv', key);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('1');
      return ((await refused.json()) as { error: { message: string } }).error.message;
    };
    // HEAD starts no export and holds nothing.
    const head = await svc.app.request('/v1/units.csv', {
      method: 'HEAD',
      headers: { Authorization: `Bearer ${KEY_ALL}` },
    });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const first = await svc.get('/v1/units.csv', KEY_ALL);
    expect(first.status).toBe(200);
    expect(await refusal(KEY_ALL)).toContain('this API key is already downloading a CSV export');
    const second = await svc.get('/v1/units.csv', KEY_W1);
    expect(second.status).toBe(200);
    expect(await refusal(KEY_W2)).toContain('2 CSV exports are being downloaded');
    // Neither client reads: both are cut after the stall time, and their places are free again.
    await new Promise((resolve) => setTimeout(resolve, 400));
    await expect(first.text()).rejects.toThrow();
    await expect(second.text()).rejects.toThrow();
    const again = await svc.get('/v1/units.csv', KEY_ALL);
    expect(again.status).toBe(200);
    expect((await again.text()).startsWith(CSV_COLUMNS.join(','))).toBe(true);
    const logged = svc.logs.map(
      (line) => JSON.parse(line) as { level: string; msg: string; reason?: string },
    );
    expect(logged.filter((line) => line.reason === 'the client read nothing for 0.1 s')).toHaveLength(2);
    expect(logged.filter((line) => line.level === 'error')).toEqual([]);
  });

  it('cuts a download not over by its deadline, however steadily the client reads', async () => {
    const svc = await serviceWith(
      (real) => async (_filter, onPage) => {
        const units = await allUnits(real);
        // Page after page for as long as the client takes them: a download that never ends.
        for (let i = 0; ; i++) await onPage([units[i % units.length]!]);
      },
      10_000,
      200,
    );
    const response = await svc.get('/v1/units.csv', KEY_ALL);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const read = async () => {
      for (;;) {
        const { done } = await reader.read();
        if (done) return 'ended';
        await new Promise((resolve) => setTimeout(resolve, 20)); // a slow, steady reader
      }
    };
    await expect(read()).rejects.toThrow();
    const logged = svc.logs.map((line) => JSON.parse(line) as { level: string; reason?: string });
    expect(logged.map((line) => line.reason)).toContain('the download was not over after 0.2 s');
    expect(logged.filter((line) => line.level === 'error')).toEqual([]);
    // Its place is free again.
    const again = await svc.get('/v1/units.csv', KEY_ALL);
    expect(again.status).toBe(200);
    await again.body!.cancel();
  });
});
