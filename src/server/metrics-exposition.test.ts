// GET /metrics, after real ingests through the app (signed webhooks, event batches, a real SQLite store), is
// valid Prometheus text (exposition format 0.0.4), read by a strict reader written from the format's rules
// rather than from metrics.ts: every family declared once before its samples and its samples together, label
// values escaped, each histogram's buckets cumulative up to `+Inf`, which equals its `_count`. And the store
// ingest histogram is there, counting every store call of an ingest by source.

import { afterEach, describe, expect, it } from 'vitest';
import { conversationLines, createTestService, fixture, type TestService } from '../../test/server-kit.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Family {
  /** `untyped` until a TYPE line says otherwise. */
  type: string;
  isTyped: boolean;
  help?: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, line: string): number {
  if (!VALUE.test(text)) throw new Error(`not a sample value: ${line}`);
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

/** `{a="x",b="y\"z"}` from `start` (at `{`) → labels and the index after `}`. */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let at = start + 1;
  while (line[at] !== '}') {
    const eq = line.indexOf('=', at);
    const name = line.slice(at, eq);
    if (eq < 0 || !LABEL_NAME.test(name)) throw new Error(`bad label name at ${at}: ${line}`);
    if (line[eq + 1] !== '"') throw new Error(`label value not quoted: ${line}`);
    let value = '';
    at = eq + 2;
    for (;;) {
      const char = line[at];
      if (char === undefined) throw new Error(`label value not closed: ${line}`);
      if (char === '"') break;
      if (char === '\\') {
        const escaped = line[at + 1];
        if (escaped === '\\' || escaped === '"') value += escaped;
        else if (escaped === 'n') value += '\n';
        else throw new Error(`bad escape in a label value: ${line}`);
        at += 2;
        continue;
      }
      value += char;
      at += 1;
    }
    if (name in labels) throw new Error(`label ${name} given twice: ${line}`);
    labels[name] = value;
    at += 1;
    if (line[at] === ',') at += 1;
    else if (line[at] !== '}') throw new Error(`expected , or } after a label: ${line}`);
  }
  return { labels, end: at + 1 };
}

/** The family a sample name belongs to: its own, or a histogram's (`_bucket`, `_sum`, `_count`). */
function familyOf(name: string, families: Map<string, Family>): string {
  if (families.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  const type = families.get(base)?.type;
  if (base !== name && (type === 'histogram' || (type === 'summary' && !name.endsWith('_bucket'))))
    return base;
  return name;
}

/** Reads the text exposition format strictly; throws saying which rule a line breaks. */
function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a line feed');
  const families = new Map<string, Family>();
  const done = new Set<string>();
  const seen = new Set<string>();
  let current: string | undefined;
  const enter = (name: string) => {
    if (current === name) return;
    if (done.has(name)) throw new Error(`the lines of ${name} are not together`);
    if (current !== undefined) done.add(current);
    current = name;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('#')) {
      const match = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!match) continue; // a comment
      const [, keyword, name, rest = ''] = match;
      if (!METRIC_NAME.test(name!)) throw new Error(`bad metric name: ${line}`);
      enter(name!);
      const family = families.get(name!) ?? { type: 'untyped', isTyped: false, samples: [] };
      families.set(name!, family);
      if (keyword === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`unknown type: ${line}`);
        if (family.samples.length > 0 || family.isTyped)
          throw new Error(`TYPE of ${name} after its samples or twice: ${line}`);
        family.type = rest;
        family.isTyped = true;
      } else {
        if (family.help !== undefined) throw new Error(`HELP of ${name} twice: ${line}`);
        if (/\\(?![\\n])/.test(rest)) throw new Error(`bad escape in HELP: ${line}`);
        family.help = rest;
      }
      continue;
    }
    if (line.trim() === '') throw new Error('an empty line');
    const nameEnd = line.search(/[{ ]/);
    const name = line.slice(0, nameEnd);
    if (nameEnd < 0 || !METRIC_NAME.test(name)) throw new Error(`bad sample name: ${line}`);
    const { labels, end } = line[nameEnd] === '{' ? parseLabels(line, nameEnd) : { labels: {}, end: nameEnd };
    const parts = line.slice(end).split(' ');
    if (parts[0] !== '' || parts.length < 2 || parts.length > 3) throw new Error(`bad sample: ${line}`);
    const value = parseValue(parts[1]!, line);
    if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) throw new Error(`bad timestamp: ${line}`);
    const familyName = familyOf(name, families);
    enter(familyName);
    const family = families.get(familyName) ?? { type: 'untyped', isTyped: false, samples: [] };
    families.set(familyName, family);
    const identity = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(identity)) throw new Error(`a sample given twice: ${line}`);
    seen.add(identity);
    if (family.type === 'counter' && !(value >= 0)) throw new Error(`a counter below 0: ${line}`);
    family.samples.push({ name, labels, value });
  }
  for (const [name, family] of families) if (family.type === 'histogram') checkHistogram(name, family);
  return families;
}

/** Per series (labels but `le`): buckets in rising `le` order, cumulative, ending at `+Inf` = `_count`. */
function checkHistogram(name: string, family: Family): void {
  const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (sample.name === `${name}_bucket`) {
      if (le === undefined) throw new Error(`${name}: a bucket without le`);
      entry.buckets.push([parseValue(le, le), sample.value]);
    } else if (sample.name === `${name}_sum`) entry.sum = sample.value;
    else if (sample.name === `${name}_count`) entry.count = sample.value;
    else throw new Error(`${name}: a sample ${sample.name} that no histogram has`);
  }
  for (const [key, { buckets, sum, count }] of series) {
    const where = `${name}${key}`;
    if (sum === undefined || count === undefined) throw new Error(`${where}: _sum or _count missing`);
    if (buckets.length === 0 || buckets.at(-1)![0] !== Infinity) throw new Error(`${where}: no +Inf bucket`);
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]![0] > buckets[i - 1]![0])) throw new Error(`${where}: le not rising`);
      if (buckets[i]![1] < buckets[i - 1]![1]) throw new Error(`${where}: buckets not cumulative`);
    }
    if (buckets.at(-1)![1] !== count) throw new Error(`${where}: +Inf bucket is not _count`);
  }
}

let service: TestService;
afterEach(async () => {
  await service?.close();
});

describe('GET /metrics after real ingests', () => {
  it('is valid Prometheus text, with a histogram of the store calls of ingests by source', async () => {
    // First the reader itself: it refuses what Prometheus would refuse.
    const histogram = (lines: string[]) =>
      ['# HELP h x', '# TYPE h histogram', ...lines, 'h_sum 1', 'h_count 2', ''].join('\n');
    expect(() =>
      parseExposition(histogram(['h_bucket{le="0.1"} 1', 'h_bucket{le="1"} 2', 'h_bucket{le="+Inf"} 2'])),
    ).not.toThrow();
    expect(() =>
      parseExposition(histogram(['h_bucket{le="0.1"} 2', 'h_bucket{le="1"} 1', 'h_bucket{le="+Inf"} 2'])),
    ).toThrow('not cumulative');
    expect(() => parseExposition(histogram(['h_bucket{le="0.1"} 1', 'h_bucket{le="+Inf"} 3']))).toThrow(
      '+Inf bucket is not _count',
    );
    expect(() => parseExposition(histogram(['h_bucket{le="0.1"} 1']))).toThrow('no +Inf bucket');
    expect(() => parseExposition('# TYPE a counter\na 1\n# TYPE b gauge\nb 1\na{x="y"} 2\n')).toThrow(
      'not together',
    );
    expect(() => parseExposition('a{x="unclosed} 1\n')).toThrow();

    service = await createTestService();
    // Four webhook bodies reach the store (two new, a redelivery, one kept unreadable); a bad signature does not.
    expect((await service.postWebhook(fixture('pywa/status_sent.json'))).status).toBe(200);
    expect((await service.postWebhook(fixture('pywa/status_delivered.json'))).status).toBe(200);
    expect((await service.postWebhook(fixture('pywa/status_sent.json'))).status).toBe(200);
    expect((await service.postWebhook('{"object":"whatsapp_business_account",')).status).toBe(400);
    const unsigned = await service.postWebhook(fixture('pywa/status_read.json'), { signature: 'sha256=00' });
    expect(unsigned.status).toBe(401);
    // Two event batches.
    expect((await service.postEvents(conversationLines('W1', 'PN1', '919876543210', 'a'))).status).toBe(200);
    expect((await service.postEvents(conversationLines('W2', 'PN2', '919876543211', 'b'))).status).toBe(200);

    const response = await service.get('/metrics');
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const families = parseExposition(await response.text());

    const ingest = families.get('store_ingest_duration_seconds');
    expect(ingest?.type).toBe('histogram');
    expect(ingest?.help).toBeTruthy();
    const countOf = (source: string) =>
      ingest?.samples.find(
        (sample) => sample.name === 'store_ingest_duration_seconds_count' && sample.labels.source === source,
      )?.value;
    expect({ webhook: countOf('webhook'), api: countOf('api') }).toEqual({ webhook: 4, api: 2 });
    const buckets = ingest!.samples.filter((sample) => sample.name.endsWith('_bucket'));
    expect(new Set(buckets.map((sample) => sample.labels.le))).toContain('+Inf');
    expect(buckets.every((sample) => Object.keys(sample.labels).sort().join() === 'le,source')).toBe(true);
    // The metrics dashboards already read keep their names and types.
    for (const [name, type] of [
      ['webhooks_received_total', 'counter'],
      ['webhooks_rejected_total', 'counter'],
      ['webhooks_duplicate_total', 'counter'],
      ['events_ingested_total', 'counter'],
      ['store_errors_total', 'counter'],
      ['rate_limited_total', 'counter'],
      ['rating_lag_seconds', 'gauge'],
      ['request_bodies_in_flight_bytes', 'gauge'],
      ['http_request_duration_seconds', 'histogram'],
    ] as const) {
      expect(families.get(name)?.type, name).toBe(type);
    }
    expect(families.get('http_request_duration_seconds')!.samples.length).toBeGreaterThan(0);
  });

  it("counts the store's group commits and the ingests they held", async () => {
    service = await createTestService();
    const counters = async () => {
      const families = parseExposition(await (await service.get('/metrics')).text());
      const read = (name: string) => {
        const family = families.get(name);
        expect(family?.type, name).toBe('counter');
        expect(family?.help, name).toBeTruthy();
        return family!.samples[0]!.value;
      };
      return { groups: read('store_ingest_groups_total'), items: read('store_ingest_group_items_total') };
    };
    expect(await counters()).toEqual({ groups: 0, items: 0 });
    // Six webhooks posted at once reach the store's queue together; a bad signature never reaches it.
    // (each body twice: the second with a line end after it, another body carrying the same events)
    const bodies = ['sent', 'delivered', 'read'].flatMap((status) => [
      fixture(`pywa/status_${status}.json`),
      Buffer.concat([fixture(`pywa/status_${status}.json`), Buffer.from('\n')]),
    ]);
    const answers = await Promise.all(bodies.map((body) => service.postWebhook(body)));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect((await service.postWebhook(bodies[0]!, { signature: 'sha256=00' })).status).toBe(401);
    const after = await counters();
    expect(after.items).toBe(6);
    expect(after.groups).toBeGreaterThanOrEqual(1);
    expect(after.groups).toBeLessThan(6);
  });
});
