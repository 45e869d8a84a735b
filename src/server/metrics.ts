// A small Prometheus registry: counters, gauges and latency histograms, rendered as the text exposition
// format (version 0.0.4). Hand-written because the service needs a dozen series, not a metrics framework.

type Labels = Record<string, string>;

const NEEDS_ESCAPE = /[\\\n"]/;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const names = Object.keys(labels).sort();
  if (names.length === 0) return '';
  return `{${names.map((name) => `${name}="${escapeLabel(labels[name]!)}"`).join(',')}}`;
}

function escapeLabel(value: string): string {
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

interface Series {
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, number>;
}

/** Request duration buckets in seconds (Meta wants answers well under a second). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * Store ingest buckets in seconds: a commit is a millisecond or so on a quiet SQLite or PostgreSQL (one
 * fsync, one WAL flush), tens of milliseconds under load as requests queue for a group commit, and seconds
 * only when the store struggles (a slow disk, a database far away or failing) — where webhooks time out.
 */
export const STORE_INGEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Histogram {
  /** Per bucket, the observations at or below its bound (cumulative, as the exposition writes them). */
  counts: number[];
  sum: number;
  count: number;
}

interface HistogramFamily {
  help: string;
  buckets: readonly number[];
  /** Label text (`{…}`) → its histogram. */
  series: Map<string, Histogram>;
}

function observeIn(histogram: Histogram, buckets: readonly number[], value: number): void {
  for (let i = 0; i < buckets.length; i++) if (value <= buckets[i]!) histogram.counts[i]! += 1;
  histogram.sum += value;
  histogram.count += 1;
}

/** A histogram family's lines: `_bucket` per bound and `+Inf` (= `_count`), `_sum` and `_count` per series. */
function renderHistogram(lines: string[], name: string, family: HistogramFamily): void {
  lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} histogram`);
  for (const [key, histogram] of family.series) {
    const inner = key === '' ? '' : `${key.slice(1, -1)},`;
    family.buckets.forEach((bound, i) => {
      lines.push(`${name}_bucket{${inner}le="${bound}"} ${histogram.counts[i]}`);
    });
    lines.push(`${name}_bucket{${inner}le="+Inf"} ${histogram.count}`);
    lines.push(`${name}_sum${key} ${histogram.sum}`);
    lines.push(`${name}_count${key} ${histogram.count}`);
  }
}

export class Metrics {
  private readonly series = new Map<string, Series>();
  /** Series read when /metrics is scraped: gauges, and counters kept by another part (the store). */
  private readonly readAtScrape = new Map<
    string,
    { help: string; type: 'gauge' | 'counter'; read: () => number }
  >();
  private readonly durations: HistogramFamily = {
    help: 'HTTP request durations by route and status.',
    buckets: DURATION_BUCKETS,
    series: new Map(),
  };
  /** method, route and status joined → its histogram: one look-up per request, no label text built. */
  private readonly durationsByRequest = new Map<string, Histogram>();
  private readonly histograms = new Map<string, HistogramFamily>();

  constructor() {
    this.define(
      'webhooks_received_total',
      'Webhook POSTs whose signature was valid and body was stored and read (a signed body that does not parse is kept, counted in webhooks_rejected_total as malformed_json or malformed_webhook).',
    );
    this.define('webhooks_rejected_total', 'Webhook POSTs refused, by reason.');
    this.define('webhooks_duplicate_total', 'Webhook POSTs identical to one already stored (answered 200).');
    this.define('events_ingested_total', 'Events newly stored, by source (webhook, api).');
    this.define(
      'webhook_items_unreadable_total',
      'Items of stored, signed webhook bodies that could not be read (each logged with the raw body id and where it is in the body); the rest of each body was stored.',
    );
    this.define(
      'store_errors_total',
      'Store operations that failed (the database unreachable or refusing), and live rating rounds that failed whatever the cause: a rating worker that died is one too (rating_worker_deaths_total tells those apart).',
    );
    this.define('rate_limited_total', 'Requests refused by the per-client rate limit.');
    this.define(
      'http_connections_refused_total',
      'Connections closed as they were accepted, unanswered, because the maxConnections setting was reached.',
    );
    this.define(
      'rating_worker_deaths_total',
      'Rating worker threads that died (worker="live" or "on_demand"; cause="out_of_memory": its heap limit reached, "crashed": anything else); each is replaced, after a growing pause when it keeps dying, and the log says what to do.',
    );
    this.defineHistogram(
      'store_ingest_duration_seconds',
      'Seconds from a store call of an ingest (a webhook body with its events: source="webhook"; a POST /v1/events batch: source="api") until it is durable or has failed, waiting for its group commit included.',
      STORE_INGEST_BUCKETS,
    );
    // Zero-valued series exist from the start so dashboards see them before the first event.
    this.inc('webhooks_received_total', undefined, 0);
    this.inc('webhooks_duplicate_total', undefined, 0);
    this.inc('webhook_items_unreadable_total', undefined, 0);
    this.inc('store_errors_total', undefined, 0);
    this.inc('rate_limited_total', undefined, 0);
    this.inc('http_connections_refused_total', undefined, 0);
    for (const worker of ['live', 'on_demand'])
      for (const cause of ['out_of_memory', 'crashed'])
        this.inc('rating_worker_deaths_total', { worker, cause }, 0);
  }

  private define(name: string, help: string): void {
    this.series.set(name, { help, type: 'counter', values: new Map() });
  }

  inc(name: string, labels?: Labels, by = 1): void {
    const series = this.series.get(name);
    if (!series) throw new Error(`unknown metric ${name}`);
    const key = labelKey(labels);
    series.values.set(key, (series.values.get(key) ?? 0) + by);
  }

  /** A gauge read when /metrics is scraped. */
  gauge(name: string, help: string, read: () => number): void {
    this.readAtScrape.set(name, { help, type: 'gauge', read });
  }

  /** A counter that another part keeps (it only grows), read when /metrics is scraped. */
  counterRead(name: string, help: string, read: () => number): void {
    this.readAtScrape.set(name, { help, type: 'counter', read });
  }

  private defineHistogram(name: string, help: string, buckets: readonly number[]): void {
    this.histograms.set(name, { help, buckets, series: new Map() });
  }

  /** One observation of a histogram defined in the constructor (`store_ingest_duration_seconds`). */
  observe(name: string, labels: Labels | undefined, value: number): void {
    const family = this.histograms.get(name);
    if (!family) throw new Error(`unknown histogram ${name}`);
    const key = labelKey(labels);
    let histogram = family.series.get(key);
    if (!histogram) {
      histogram = { counts: family.buckets.map(() => 0), sum: 0, count: 0 };
      family.series.set(key, histogram);
    }
    observeIn(histogram, family.buckets, value);
  }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const requestKey = `${method} ${status} ${route}`;
    let histogram = this.durationsByRequest.get(requestKey);
    if (!histogram) {
      histogram = { counts: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.durationsByRequest.set(requestKey, histogram);
      this.durations.series.set(labelKey({ method, route, status: String(status) }), histogram);
    }
    observeIn(histogram, DURATION_BUCKETS, seconds);
  }

  /** Current value of a counter series (tests, and the operator's eye). */
  value(name: string, labels?: Labels): number {
    return this.series.get(name)?.values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, series] of this.series) {
      lines.push(`# HELP ${name} ${series.help}`, `# TYPE ${name} ${series.type}`);
      for (const [key, value] of series.values) lines.push(`${name}${key} ${value}`);
    }
    for (const [name, series] of this.readAtScrape) {
      lines.push(
        `# HELP ${name} ${series.help}`,
        `# TYPE ${name} ${series.type}`,
        `${name} ${series.read()}`,
      );
    }
    renderHistogram(lines, 'http_request_duration_seconds', this.durations);
    for (const [name, family] of this.histograms) renderHistogram(lines, name, family);
    return `${lines.join('\n')}\n`;
  }
}
