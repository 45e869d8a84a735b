import { describe, expect, it } from 'vitest';
import { Metrics } from './metrics.js';

describe('Metrics', () => {
  it('keeps one histogram per method, route and status, with cumulative buckets', () => {
    const metrics = new Metrics();
    metrics.observeRequest('POST', '/webhooks/whatsapp', 200, 0.004);
    metrics.observeRequest('POST', '/webhooks/whatsapp', 200, 0.2);
    metrics.observeRequest('POST', '/webhooks/whatsapp', 401, 0.001);
    metrics.observeRequest('GET', '/webhooks/whatsapp', 200, 7);
    const text = metrics.render();
    const series = '{method="POST",route="/webhooks/whatsapp",status="200"';
    expect(text).toContain(`http_request_duration_seconds_bucket${series},le="0.005"} 1\n`);
    expect(text).toContain(`http_request_duration_seconds_bucket${series},le="0.1"} 1\n`);
    expect(text).toContain(`http_request_duration_seconds_bucket${series},le="0.25"} 2\n`);
    expect(text).toContain(`http_request_duration_seconds_count${series}} 2\n`);
    expect(text).toContain(`http_request_duration_seconds_sum${series}} 0.20400000000000001\n`);
    expect(text).toContain(
      'http_request_duration_seconds_count{method="POST",route="/webhooks/whatsapp",status="401"} 1\n',
    );
    expect(text).toContain(
      'http_request_duration_seconds_bucket{method="GET",route="/webhooks/whatsapp",status="200",le="5"} 0\n',
    );
    expect(text).toContain(
      'http_request_duration_seconds_bucket{method="GET",route="/webhooks/whatsapp",status="200",le="+Inf"} 1\n',
    );
  });

  it('escapes backslashes, quotes and newlines in label values (the exposition format)', () => {
    const metrics = new Metrics();
    metrics.inc('webhooks_rejected_total', { reason: 'a "quoted"\\path\nnext' });
    metrics.observeRequest('GET', '/odd"route', 404, 0.001);
    const text = metrics.render();
    expect(text).toContain('webhooks_rejected_total{reason="a \\"quoted\\"\\\\path\\nnext"} 1\n');
    expect(text).toContain(
      'http_request_duration_seconds_count{method="GET",route="/odd\\"route",status="404"} 1\n',
    );
    expect(metrics.value('webhooks_rejected_total', { reason: 'a "quoted"\\path\nnext' })).toBe(1);
  });
});
