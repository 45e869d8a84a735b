// "Why was I charged?": one user's story on a time axis — customer service windows, conversations or
// charged messages, free-entry-point windows, every message as a marker — and the rule text that decided
// each one (GET /v1/explain).

import { getJson } from '../api.js';
import { legend } from '../charts.js';
import {
  addDecimals,
  axisTicks,
  count,
  errorBox,
  field,
  fill,
  h,
  instant,
  int,
  loading,
  localTime,
  money,
  s,
  serviceWords,
  table,
  total,
} from '../dom.js';

const HOUR_MS = 3_600_000;
const WINDOW_MS = 24 * HOUR_MS;
const FEP_WINDOW_MS = 72 * HOUR_MS;
const COLORS = {
  window: '#93c5fd',
  charged: '#dc2626',
  free: '#16a34a',
  fep: '#f59e0b',
  inbound: '#2563eb',
  pending: '#9aa5b1',
};

export async function render(main, params, ctx) {
  main.append(h('h1', {}, 'Why was I charged?'));
  let known = [];
  try {
    known = JSON.parse(sessionStorage.getItem('wameter.users') ?? '[]');
  } catch {
    known = [];
  }
  const userInput = h('input', {
    type: 'search',
    id: 'f-user',
    name: 'user',
    list: 'known-users',
    value: params.user ?? '',
    placeholder: 'WhatsApp id, e.g. 919876543210',
    required: true,
    size: 24,
  });
  const businessInput = h('input', {
    id: 'f-business',
    name: 'business',
    value: params.business ?? '',
    placeholder: 'all numbers',
  });
  const form = h(
    'form',
    { class: 'card row', role: 'search', 'aria-label': 'Find a user' },
    field('User (wa_id)', userInput),
    h(
      'datalist',
      { id: 'known-users' },
      known.map((user) => h('option', { value: user })),
    ),
    field('Business number (optional)', businessInput),
    h('button', { type: 'submit' }, 'Show timeline'),
    h('p', { class: 'hint' }, 'Tip: every user in the Units table links here.'),
  );
  const result = h('div', { id: 'explain-result' });
  main.append(form, result);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    ctx.navigate('explain', { user: userInput.value.trim(), business: businessInput.value.trim() });
  });
  if (!params.user) {
    result.append(
      h(
        'p',
        { class: 'muted' },
        'Pick a user to see every window, conversation and charge, with the rule that decided it.',
      ),
    );
    return;
  }
  result.append(loading());
  let report;
  // The WABAs' time zones: a unit's local date decides its rate card and its month (shown beside UTC).
  const accounts = ctx.accounts().catch(() => []);
  try {
    report = await getJson('/v1/explain', { user: params.user, business: params.business });
  } catch (error) {
    result.replaceChildren(errorBox(error, `explain user ${params.user}`));
    return;
  }
  const zones = new Map((await accounts).map((account) => [account.waba, account.time_zone]));
  fill(result, ...renderReport(report, zones));
}

/** The WABA-local time of an instant, with its zone: "2025-09-30 21:54:06 America/Sao_Paulo" ('' if unknown). */
function localOf(iso, zone) {
  const text = localTime(iso, zone);
  return text ? `${text} ${zone}` : '';
}

function renderReport(report, zones) {
  // Asked by Meta's business-scoped id, answered with the number the rating joined it to: both are named.
  const scoped = report.scoped_user ? ` (asked as business-scoped id ${report.scoped_user})` : '';
  const who = `User ${report.user}${scoped}${report.business ? ` with business number ${report.business}` : ''}`;
  if (report.timeline.length === 0 && report.units.length === 0) {
    return [
      h(
        'p',
        { class: 'muted', id: 'explain-empty' },
        `${who}: no messages are stored for this user (or not for this API key’s WABAs).`,
      ),
    ];
  }
  const unitsById = new Map(report.units.map((unit) => [unit.id, unit]));
  // A timeline entry names its business number; the WABA (and so the time zone) comes from a unit of it.
  const zoneOfBusiness = new Map(report.units.map((unit) => [unit.business, zones.get(unit.waba)]));
  const zoneOfEntry = (entry) =>
    (entry.unit_id ? zones.get(unitsById.get(entry.unit_id)?.waba) : undefined) ??
    zoneOfBusiness.get(entry.business);
  const list = h('ol', { class: 'entries', id: 'explain-entries', 'aria-label': 'Timeline in words' });
  report.timeline.forEach((entry, index) => {
    const unit = entry.unit_id ? unitsById.get(entry.unit_id) : undefined;
    const isFirst = unit && unit.messages[0] === entry.message_id;
    const cost =
      entry.kind === 'inbound'
        ? ''
        : unit
          ? isFirst
            ? money(unit.amount, unit.currency)
            : `0 ${unit.currency} (rides ${unit.id})`
          : 'pending';
    list.append(
      h(
        'li',
        { id: `entry-${index}`, 'data-message': entry.message_id, tabindex: -1 },
        h(
          'span',
          { class: 'mono' },
          instant(entry.at),
          localOf(entry.at, zoneOfEntry(entry))
            ? h(
                'span',
                { class: 'local', title: 'The WABA’s local time' },
                localOf(entry.at, zoneOfEntry(entry)),
              )
            : null,
        ),
        h('span', {}, entry.kind === 'inbound' ? 'User wrote' : 'Business sent'),
        h(
          'span',
          {},
          h('span', { class: 'reason' }, entry.reason),
          entry.rule
            ? h('span', { class: 'rule' }, `${entry.rule}${entry.era ? ` · ${entry.era}` : ''}`)
            : null,
        ),
        h('span', { class: 'num' }, cost),
      ),
    );
  });
  // The axis reads the clock of the story's WABA (its local midnights start its days and months), or UTC
  // when the story's units belong to WABAs of different time zones or to none known.
  const storyZones = new Set(report.units.map((unit) => zones.get(unit.waba)));
  const onlyZone = storyZones.size === 1 ? [...storyZones][0] : undefined;
  // A zone this browser does not know is drawn, and named, as UTC.
  const axisZone = onlyZone && localTime(new Date().toISOString(), onlyZone) ? onlyZone : undefined;
  const chart = timelineChart(report, unitsById, axisZone, (index) => {
    for (const li of list.children) li.classList.remove('selected');
    const li = list.children[index];
    if (li) {
      li.classList.add('selected');
      li.focus();
      li.scrollIntoView({ block: 'nearest' });
    }
  });
  const totals = totalsOf(report.units);
  const findings = report.findings ?? [];
  return [
    h('h2', {}, who),
    h(
      'p',
      { id: 'explain-summary' },
      `${count(report.timeline.length, 'message')}, ${count(report.units.length, 'unit')}; total `,
      h('strong', { id: 'explain-total' }, totals.length ? totals.join(' + ') : 'nothing charged'),
      report.pending.length ? `; ${report.pending.length} pending (no delivery yet, not charged)` : '',
      '.',
      findings.length ? ` ${count(findings.length, 'finding')} below.` : '',
    ),
    findings.length ? findingsList(findings) : null,
    chart,
    legend([
      { key: 'customer service window (24 h after the user writes)', color: COLORS.window },
      { key: 'charged conversation / message', color: COLORS.charged },
      { key: 'free conversation / message', color: COLORS.free },
      { key: 'free entry point window', color: COLORS.fep },
      { key: 'user message', color: COLORS.inbound },
    ]),
    h('h3', {}, 'What happened, and the rule that decided'),
    list,
    h('h3', {}, 'Units'),
    h(
      'div',
      { class: 'table-wrap' },
      table(
        'Each unit is priced from the rate card in force on its WABA-local date',
        [
          'Unit',
          'Kind',
          'Category',
          'Type',
          'Opened (UTC)',
          'Opened (WABA local)',
          'Ends (UTC)',
          'Amount',
          'Rate card',
          'Rule',
        ],
        report.units.map((unit) => [
          h('td', { class: 'mono' }, unit.id),
          unit.unit,
          unit.category,
          h(
            'td',
            {},
            h('span', { class: `chip ${unit.type === 'regular' ? 'charged' : 'free'}` }, unit.type),
          ),
          h('td', { class: 'nowrap' }, instant(unit.opened_at)),
          h(
            'td',
            { class: 'nowrap local-date' },
            localTime(unit.opened_at, zones.get(unit.waba)) || '—',
            zones.get(unit.waba) ? h('div', { class: 'muted' }, zones.get(unit.waba)) : null,
          ),
          h('td', { class: 'nowrap' }, instant(unit.closed_at ?? unit.expires_at)),
          h(
            'td',
            { class: 'nowrap' },
            unit.type === 'regular' && unit.amount === null
              ? 'not priced'
              : money(unit.amount, unit.currency),
          ),
          h('td', { class: 'mono' }, unit.rate_card ?? '—'),
          h('td', { class: 'mono' }, unit.rule),
        ]),
        { id: 'explain-units' },
      ),
    ),
  ];
}

/** The story's findings, as the CLI's "Findings" section lists them: `CODE: message (×N)`. */
function findingsList(findings) {
  return h(
    'section',
    { class: 'warning-box', 'aria-labelledby': 'explain-findings-title' },
    h('h3', { id: 'explain-findings-title' }, 'Findings'),
    h(
      'ul',
      { id: 'explain-findings' },
      findings.map((finding) =>
        h(
          'li',
          { 'data-code': finding.code },
          h('strong', { class: 'mono' }, finding.code),
          `: ${serviceWords(finding.message)}`,
          typeof finding.count === 'number' && finding.count > 1 ? ` (×${int(finding.count)})` : '',
        ),
      ),
    ),
  );
}

/**
 * Sums decimal-string amounts per currency exactly (addDecimals: any number of decimals); a charged unit
 * without a price is counted beside its currency's sum, which is then a floor ("at least …, N charged units
 * not priced").
 */
function totalsOf(units) {
  const amounts = new Map();
  const unpriced = new Map();
  for (const unit of units) {
    if (!amounts.has(unit.currency)) amounts.set(unit.currency, []);
    if (unit.amount === null) {
      if (unit.type === 'regular') unpriced.set(unit.currency, (unpriced.get(unit.currency) ?? 0) + 1);
      continue;
    }
    amounts.get(unit.currency).push(unit.amount);
  }
  return [...amounts.entries()].map(([currency, list]) =>
    total(addDecimals(list), currency, unpriced.get(currency) ?? 0),
  );
}

function timelineChart(report, unitsById, zone, onSelect) {
  const times = [];
  const windows = [];
  for (const entry of report.timeline) {
    const atMs = Date.parse(entry.at);
    times.push(atMs);
    if (entry.kind === 'inbound') {
      const last = windows.at(-1);
      if (last && atMs <= last.endMs) last.endMs = atMs + WINDOW_MS;
      else windows.push({ startMs: atMs, endMs: atMs + WINDOW_MS });
    }
  }
  const spans = report.units.map((unit) => ({
    unit,
    startMs: Date.parse(unit.opened_at),
    endMs: unit.closed_at ? Date.parse(unit.closed_at) : unit.expires_at ? Date.parse(unit.expires_at) : null,
  }));
  // Per-message eras: a free entry point opened by a message (FEP_OPEN) keeps every message free for 72 h
  // (Meta, free entry points since 2023-03-01); its window is drawn from that message.
  const fepWindows = report.units
    .filter((unit) => unit.unit === 'message' && unit.rule === 'FEP_OPEN')
    .map((unit) => ({
      startMs: Date.parse(unit.opened_at),
      endMs: Date.parse(unit.opened_at) + FEP_WINDOW_MS,
    }));
  for (const span of spans) times.push(span.startMs, span.endMs ?? span.startMs);
  for (const window of fepWindows) times.push(window.endMs);
  for (const window of windows) times.push(window.endMs);
  const minMs = Math.min(...times) - 2 * HOUR_MS;
  const maxMs = Math.max(...times) + 2 * HOUR_MS;
  const hours = (maxMs - minMs) / HOUR_MS;
  const left = 12;
  const width = Math.round(Math.max(1040, Math.min(16000, left + hours * 10)));
  const x = (ms) => left + ((ms - minMs) / (maxMs - minMs)) * (width - left - 20);
  const lanes = [
    'Customer service windows',
    'Conversations / charges',
    'Free entry point windows',
    'Messages',
  ];
  const laneY = (i) => 34 + i * 44;
  const height = laneY(lanes.length) + 6;
  const svg = s('svg', {
    class: 'timeline',
    id: 'timeline-chart',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    // A group, not an image: an image's content is presentational, and its markers are buttons to reach.
    role: 'group',
    'aria-label': `Timeline of user ${report.user} from ${instant(new Date(minMs).toISOString())} to ${instant(new Date(maxMs).toISOString())}; the axis in ${zone ?? 'UTC'} time`,
    'data-zone': zone ?? 'UTC',
  });
  // Day ticks (midnights of the WABA's clock, or UTC's), and 6-hour ticks on short spans. The first tick always
  // names its date (a span starting after midnight would show hours of no day) and the axis's time zone; a
  // label near the right edge ends at its tick.
  const ticks = axisTicks(minMs, maxMs, zone, hours <= 96 ? 6 : 24);
  ticks.forEach(({ ms: t, day, hour }, index) => {
    const isDay = hour === 0;
    const clock = `${String(hour).padStart(2, '0')}:00`;
    const date = isDay ? day : index === 0 ? `${day} ${clock}` : clock;
    const text = index === 0 ? `${date} (${zone ?? 'UTC'})` : date;
    const nearEnd = x(t) + 3 + text.length * 6.5 > width;
    svg.append(
      s('line', { x1: x(t), x2: x(t), y1: 18, y2: height, stroke: isDay ? '#cbd2d9' : '#eef2f6' }),
      s(
        'text',
        {
          x: nearEnd ? x(t) - 3 : x(t) + 3,
          y: 13,
          'text-anchor': nearEnd ? 'end' : 'start',
          class: 'tick',
          'data-at': new Date(t).toISOString(),
        },
        text,
      ),
    );
  });
  // Lane names stay in view while the time axis scrolls.
  const labels = s('svg', { class: 'timeline lane-labels', width: 200, height, 'aria-hidden': 'true' });
  lanes.forEach((name, i) => {
    labels.append(
      s('rect', { x: 0, y: laneY(i) - 4, width: 196, height: 36, fill: '#f8fafc' }),
      s('text', { class: 'lane-label', x: 8, y: laneY(i) + 17 }, name),
    );
    svg.prepend(s('rect', { x: 0, y: laneY(i) - 4, width, height: 36, fill: i % 2 ? '#ffffff' : '#f6f8fa' }));
  });
  for (const window of windows) {
    svg.append(
      s(
        'rect',
        {
          x: x(window.startMs),
          y: laneY(0),
          width: Math.max(2, x(window.endMs) - x(window.startMs)),
          height: 26,
          rx: 4,
          fill: COLORS.window,
          class: 'window-bar',
        },
        s(
          'title',
          {},
          `Customer service window open ${instant(new Date(window.startMs).toISOString())} → ${instant(new Date(window.endMs).toISOString())}`,
        ),
      ),
    );
  }
  for (const window of fepWindows) {
    svg.append(
      s(
        'rect',
        {
          x: x(window.startMs),
          y: laneY(2) + 6,
          width: Math.max(2, x(window.endMs) - x(window.startMs)),
          height: 14,
          rx: 4,
          fill: COLORS.fep,
          'fill-opacity': 0.35,
          class: 'fep-window',
        },
        s(
          'title',
          {},
          `Free entry point window ${instant(new Date(window.startMs).toISOString())} → ${instant(new Date(window.endMs).toISOString())}`,
        ),
      ),
    );
  }
  for (const { unit, startMs, endMs } of spans) {
    const isFep = unit.type === 'free_entry_point' || unit.category === 'referral_conversion';
    const lane = isFep ? 2 : 1;
    const color = isFep ? COLORS.fep : unit.type === 'regular' ? COLORS.charged : COLORS.free;
    const label = `${unit.unit} ${unit.id}: ${unit.category}, ${unit.type}, ${money(unit.amount, unit.currency)} — rule ${unit.rule}`;
    if (endMs !== null && endMs > startMs) {
      svg.append(
        s(
          'rect',
          {
            x: x(startMs),
            y: laneY(lane) + 3,
            width: Math.max(3, x(endMs) - x(startMs)),
            height: 20,
            rx: 4,
            fill: color,
            'fill-opacity': 0.85,
            class: 'unit-bar',
            'data-unit': unit.id,
          },
          s('title', {}, label),
        ),
      );
    } else {
      const cx = x(startMs);
      const cy = laneY(lane) + 13;
      svg.append(
        s(
          'path',
          {
            d: `M${cx} ${cy - 8}L${cx + 7} ${cy}L${cx} ${cy + 8}L${cx - 7} ${cy}Z`,
            fill: color,
            class: 'unit-bar',
            'data-unit': unit.id,
          },
          s('title', {}, label),
        ),
      );
    }
  }
  report.timeline.forEach((entry, index) => {
    const cx = x(Date.parse(entry.at));
    const cy = laneY(3) + 13;
    const unit = entry.unit_id ? unitsById.get(entry.unit_id) : undefined;
    const isCharged = unit && unit.type === 'regular' && unit.messages[0] === entry.message_id;
    const who = entry.kind === 'inbound' ? 'user wrote' : 'business sent';
    // An inbound entry's reason already starts "user wrote: …": said once.
    const reason = entry.reason.startsWith(`${who}:`) ? entry.reason : `${who}: ${entry.reason}`;
    const text = `${instant(entry.at)} — ${reason}${entry.rule ? ` [${entry.rule}]` : ''}`;
    const shape =
      entry.kind === 'inbound'
        ? s('circle', { cx, cy: cy - 5, r: 6, fill: COLORS.inbound })
        : s('path', {
            d: `M${cx} ${cy - 2}L${cx + 7} ${cy + 11}L${cx - 7} ${cy + 11}Z`,
            fill: isCharged ? COLORS.charged : unit ? COLORS.free : COLORS.pending,
          });
    const marker = s(
      'g',
      { class: 'marker', tabindex: 0, role: 'button', 'aria-label': text, 'data-index': index },
      shape,
      s('title', {}, text),
    );
    marker.addEventListener('click', () => onSelect(index));
    marker.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        onSelect(index);
      }
    });
    svg.append(marker);
  });
  return h('div', { class: 'timeline-frame' }, labels, h('div', { class: 'timeline-wrap' }, svg));
}
