// Hand-written SVG charts: stacked bars over time, a usage meter, and the user timeline's axis.
// Heights are drawn from Number(amount) — display only; the figures shown as text are the server's strings.

import { h, s } from './dom.js';

/** A "nice" step for about `count` ticks up to `max`; whole numbers only when `integer` (counts). */
function niceStep(max, count, integer = false) {
  const raw = max / count;
  if (integer && raw <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

/**
 * Stacked bars: one bar per label, one segment per series.
 * series: [{ key, color, values: number[], formatted?: string[] }]; format(n) labels the y axis and the
 * tooltips of series without `formatted`; `integer` keeps the y axis to whole numbers (counts).
 */
export function stackedBars({ title, labels, series, format = String, height = 240, id, integer = false }) {
  const width = 1160;
  const margin = { top: 12, right: 12, bottom: 40, left: 78 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const sums = labels.map((_, i) => series.reduce((sum, one) => sum + (one.values[i] || 0), 0));
  const max = Math.max(0, ...sums);
  const step = max > 0 ? niceStep(max, 4, integer) : 1;
  const top = max > 0 ? Math.ceil(max / step) * step : 1;
  const y = (value) => margin.top + plotH - (value / top) * plotH;
  const slot = plotW / Math.max(1, labels.length);
  const barW = Math.max(2, Math.min(48, slot * 0.78));

  const svg = s(
    'svg',
    {
      class: 'chart',
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': `${title}: ${labels.length} bar${labels.length === 1 ? '' : 's'}${labels.length ? ` from ${labels[0]} to ${labels.at(-1)}` : ''}`,
      ...(id ? { id } : {}),
    },
    s('title', {}, title),
  );
  for (let tick = 0; tick <= top + step / 2; tick += step) {
    svg.append(
      s('line', { class: 'grid', x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick) }),
      s('text', { x: margin.left - 6, y: y(tick) + 4, 'text-anchor': 'end' }, format(tick)),
    );
  }
  svg.append(s('line', { class: 'axis', x1: margin.left, x2: width - margin.right, y1: y(0), y2: y(0) }));
  const every = Math.max(1, Math.ceil(labels.length / 16));
  labels.forEach((label, i) => {
    const x = margin.left + slot * i + (slot - barW) / 2;
    let base = 0;
    const group = s('g', { class: 'bar', 'data-label': label });
    for (const one of series) {
      const value = one.values[i] || 0;
      if (value <= 0) continue;
      const y0 = y(base);
      const y1 = y(base + value);
      group.append(
        s(
          'rect',
          { x, y: y1, width: barW, height: Math.max(0.5, y0 - y1), fill: one.color },
          s('title', {}, `${label} — ${one.key}: ${one.formatted?.[i] ?? format(value)}`),
        ),
      );
      base += value;
    }
    svg.append(group);
    if (i % every === 0) {
      svg.append(
        s(
          'text',
          { x: margin.left + slot * i + slot / 2, y: height - margin.bottom + 16, 'text-anchor': 'middle' },
          shortLabel(label),
        ),
      );
    }
  });
  if (labels.length === 0) {
    svg.append(
      s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'No units in this period'),
    );
  }
  return h('figure', { class: 'chart-figure' }, svg, legend(series));
}

function shortLabel(label) {
  return /^\d{4}-\d{2}-\d{2}$/.test(label) ? label.slice(5) : label;
}

export function legend(series) {
  return h(
    'ul',
    { class: 'legend', 'aria-label': 'Legend' },
    series.map((one) =>
      h(
        'li',
        {},
        s(
          'svg',
          { width: 12, height: 12, 'aria-hidden': 'true' },
          s('rect', { width: 12, height: 12, rx: 2, fill: one.color }),
        ),
        one.key,
      ),
    ),
  );
}

/** A used/limit bar with the numbers as its accessible name. */
export function meter(used, limit) {
  const ratio = limit > 0 ? Math.min(1, used / limit) : 0;
  const color = ratio >= 1 ? '#b42318' : ratio >= 0.8 ? '#d97706' : '#0f766e';
  return h(
    'span',
    {
      class: 'meter',
      role: 'meter',
      'aria-valuenow': used,
      'aria-valuemin': 0,
      'aria-valuemax': limit,
      'aria-label': `${used} of ${limit} used`,
    },
    s(
      'svg',
      { width: 220, height: 12, 'aria-hidden': 'true' },
      s('rect', { width: Math.round(220 * ratio), height: 12, fill: color }),
    ),
  );
}
