// Overview: spend over time by a chosen dimension (free vs charged units beside it), per currency; the
// free allowance used in a month and the volume-tier position per portfolio × market × category.

import { getJson } from '../api.js';
import { meter, stackedBars } from '../charts.js';
import {
  addDecimals,
  clockOf,
  errorBox,
  field,
  fill,
  h,
  int,
  loading,
  localDay,
  localTime,
  money,
  newestOnly,
  numCell,
  nextDay,
  PALETTE,
  select,
  startOfLocalDay,
  table,
  wabaNotShown,
  whileLoading,
} from '../dom.js';

const BY = [
  ['category', 'Category'],
  ['market', 'Market'],
  ['business', 'Business number'],
  ['waba', 'WABA'],
];

export async function render(main, params, ctx) {
  const state = {
    granularity: params.granularity === 'MONTHLY' ? 'MONTHLY' : 'DAILY',
    by: BY.some(([value]) => value === params.by) ? params.by : 'category',
    waba: params.waba ?? '',
    from: params.from ?? '',
    to: params.to ?? '',
    month: params.month ?? '',
  };
  main.append(h('h1', {}, 'Overview'));
  const accounts = await whileLoading(main, ctx.accounts(), 'Loading your WABAs…').catch((error) => {
    main.append(errorBox(error, 'list your WABAs'));
    return null;
  });
  if (accounts === null) return;

  const toggle = h(
    'div',
    { class: 'toggle', role: 'group', 'aria-label': 'Time step' },
    [
      ['DAILY', 'Day'],
      ['MONTHLY', 'Month'],
    ].map(([value, text]) =>
      h(
        'button',
        {
          type: 'button',
          'aria-pressed': String(state.granularity === value),
          'data-granularity': value,
          onclick: () => {
            state.granularity = value;
            refresh();
          },
        },
        text,
      ),
    ),
  );
  const bySelect = select('by', BY, state.by);
  const wabaSelect = select(
    'waba',
    [['', 'All WABAs'], ...accounts.map((a) => [a.waba, `${a.waba} (${a.time_zone})`])],
    state.waba,
  );
  // From and To are days of the clock the chosen WABAs keep (clockOf): the address keeps the instants they
  // start and end at, so a link means the same period whoever opens it.
  let clock = clockOf(accounts, wabaSelect.value);
  const fromInput = h('input', { type: 'date', name: 'from', id: 'f-from' });
  const toInput = h('input', { type: 'date', name: 'to', id: 'f-to' });
  const fromLabel = h('span', {});
  const toLabel = h('span', {});
  const billMonth = h('input', { type: 'month', name: 'bill-month', id: 'f-bill-month' });
  const billLabel = h('span', {});
  const clockNote = h('p', { class: 'muted clock-note', id: 'clock-note', 'aria-live': 'polite' });
  const exactNote = h('p', { class: 'warning-box', role: 'note', id: 'exact-times', hidden: true });
  /**
   * Instants of the address that are no midnight of the clock (a link made with times, or on another clock)
   * are kept as they are until a day is picked, and said: the days shown would not be what is asked.
   */
  const exact = { from: '', to: '' };
  function showDays() {
    const fromMs = Date.parse(state.from);
    const toMs = Date.parse(state.to);
    fromInput.value = Number.isNaN(fromMs) ? '' : localDay(state.from, clock.zone);
    toInput.value = Number.isNaN(toMs) ? '' : localDay(new Date(toMs - 1).toISOString(), clock.zone);
    // An address value that is no instant is kept too: the server's refusal then says what is wrong with it.
    exact.from =
      state.from &&
      (!fromInput.value || startOfLocalDay(fromInput.value, clock.zone) !== canonical(state.from))
        ? state.from
        : '';
    exact.to =
      state.to &&
      (!toInput.value || startOfLocalDay(nextDay(toInput.value), clock.zone) !== canonical(state.to))
        ? state.to
        : '';
  }
  function showClock() {
    const zone = clock.zone;
    billLabel.textContent = `Bill month (${zone})`;
    fromLabel.textContent = `From, first day (${zone})`;
    toLabel.textContent = `To, last day included (${zone})`;
    const chosen = wabaSelect.value;
    clockNote.textContent =
      clock.zones.length === 0
        ? 'Days are UTC days.'
        : clock.zones.length > 1
          ? `Days are UTC days: these WABAs keep different clocks (${clock.zones.join(', ')}), so a day here is ` +
            'no one WABA’s day. Choose one WABA to see its bill’s days.'
          : chosen
            ? `Days are ${zone} days, the clock of WABA ${chosen}’s bill: From, To and the charts’ days are its days.`
            : `Days are ${zone} days, the clock of ${accounts.length === 1 ? 'this WABA’s bill' : 'these WABAs’ bills'}: ` +
              'From, To and the charts’ days are their days.';
    const asRead = (iso) => localTime(iso, zone) || iso;
    const times = [
      exact.from ? `from ${asRead(exact.from)}` : '',
      exact.to ? `to ${asRead(exact.to)} (not included)` : '',
    ].filter(Boolean);
    exactNote.hidden = times.length === 0;
    exactNote.textContent = times.length
      ? `This page’s address asks ${times.join(' ')} on the ${zone} clock, not whole days: the figures are ` +
        'of those times. Pick a day to replace them.'
      : '';
  }
  /** The bill month shown: From and To are exactly one calendar month's first and last day, else none. */
  function showBillMonth() {
    const [first, last] = [fromInput.value, toInput.value];
    const whole =
      first && last && !exact.from && !exact.to && first.endsWith('-01') && last === lastDayOfMonth(first);
    billMonth.value = whole ? first.slice(0, 7) : '';
  }
  showDays();
  showClock();
  showBillMonth();
  // A bill month is its first and last day, on the clock shown; the allowances below follow it.
  billMonth.addEventListener('change', () => {
    if (!billMonth.value) return;
    fromInput.value = `${billMonth.value}-01`;
    toInput.value = lastDayOfMonth(billMonth.value);
    exact.from = '';
    exact.to = '';
    state.month = billMonth.value;
  });
  fromInput.addEventListener('change', () => {
    exact.from = '';
  });
  toInput.addEventListener('change', () => {
    exact.to = '';
  });
  // Another WABA: the days picked stay the days shown, now on its clock.
  wabaSelect.addEventListener('change', () => {
    clock = clockOf(accounts, wabaSelect.value);
    exact.from = '';
    exact.to = '';
  });
  for (const control of [bySelect, wabaSelect, billMonth, fromInput, toInput])
    control.addEventListener('change', () => refresh());
  main.append(
    h(
      'form',
      { class: 'card row', 'aria-label': 'Overview options', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'field' }, h('span', { class: 'muted' }, 'Step'), toggle),
      field('Break down by', bySelect),
      field('WABA', wabaSelect),
      field(billLabel, billMonth),
      field(fromLabel, fromInput),
      field(toLabel, toInput),
    ),
    clockNote,
    exactNote,
    wabaNotShown(params.waba, accounts) ?? '',
  );
  const spendArea = h(
    'section',
    { 'aria-labelledby': 'spend-title' },
    h('h2', { id: 'spend-title' }, 'Spend over time'),
  );
  const allowanceArea = h('section', { 'aria-labelledby': 'allowance-title' });
  main.append(spendArea, allowanceArea);

  // Filters changed quickly start overlapping requests: only the latest refresh draws (an older answer arriving
  // last would otherwise pick the allowances' month from filters no longer shown).
  const beginRefresh = newestOnly();
  async function refresh() {
    const isNewest = beginRefresh();
    state.by = bySelect.value;
    state.waba = wabaSelect.value;
    state.from = exact.from || (fromInput.value ? startOfLocalDay(fromInput.value, clock.zone) : '');
    state.to = exact.to || (toInput.value ? startOfLocalDay(nextDay(toInput.value), clock.zone) : '');
    showClock();
    showBillMonth();
    for (const button of toggle.querySelectorAll('button')) {
      button.setAttribute('aria-pressed', String(button.dataset.granularity === state.granularity));
    }
    ctx.remember('overview', state);
    const body = spendArea.appendChild(h('div', { id: 'spend-body' }, loading()));
    spendArea.replaceChildren(spendArea.firstChild, body);
    let overview;
    try {
      overview = await getJson('/v1/dashboard/overview', {
        granularity: state.granularity,
        by: state.by,
        waba: state.waba,
        time_zone: clock.zone,
        from: state.from,
        to: state.to,
      });
    } catch (error) {
      if (isNewest()) body.replaceChildren(errorBox(error, 'load the overview', refresh));
      return;
    }
    if (!isNewest()) return;
    // A bill month's daily charts span the whole month, its days without units drawn empty.
    const days = state.granularity === 'DAILY' && billMonth.value ? daysOfMonth(billMonth.value) : null;
    fill(body, ...renderSpend(overview, state, days));
    await renderAllowances(allowanceArea, state, latestMonthOf(overview), ctx);
  }
  await refresh();
}

/** An instant as the address writes it ("2025-10-04T18:30:00Z"), for comparing. */
function canonical(iso) {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toISOString().replace('.000Z', 'Z');
}

/**
 * The month (YYYY-MM) of the latest bucket with data, as the WABA's calendar reads it: the bucket's label is
 * its local date, whereas its `start` is UTC (`2025-09-30T18:30Z` is October 1st in Asia/Kolkata).
 */
export function latestMonthOf(overview) {
  const latest = overview.currencies
    .flatMap((c) => c.buckets)
    .reduce((last, bucket) => (last === null || bucket.start > last.start ? bucket : last), null);
  return latest ? latest.label.slice(0, 7) : '';
}

/** The Units page of the overview's WABA and period, narrowed by `extra` (a category, a market…). */
function unitsHref(state, extra = {}) {
  const query = new URLSearchParams(
    Object.entries({ waba: state.waba, from: state.from, to: state.to, ...extra }).filter(([, v]) => v),
  ).toString();
  return `#/units${query ? `?${query}` : ''}`;
}

/** The last day of the month of `day` or `month` ("2025-09" → "2025-09-30"). */
function lastDayOfMonth(dayOrMonth) {
  const [year, month] = dayOrMonth.split('-').map(Number);
  return new Date(Date.UTC(year, month, 0)).toISOString().slice(0, 10);
}

/** Every day of `month` ("2025-09" → "2025-09-01" … "2025-09-30"). */
function daysOfMonth(month) {
  const last = Number(lastDayOfMonth(month).slice(8));
  return Array.from({ length: last }, (_, i) => `${month}-${String(i + 1).padStart(2, '0')}`);
}

/**
 * The currency's buckets over every one of `days` (labels of the API's local days), those without units
 * empty: the API draws from the first day with units to the last only. Unchanged when a bucket is of
 * another day (the answer is not of these days).
 */
export function overDays(cur, days) {
  if (!days) return cur;
  const byLabel = new Map(cur.buckets.map((bucket) => [bucket.label, bucket]));
  if (cur.buckets.some((bucket) => !days.includes(bucket.label))) return cur;
  return {
    ...cur,
    buckets: days.map(
      (day) =>
        byLabel.get(day) ?? {
          label: day,
          amount: '0',
          charged_units: 0,
          free_units: 0,
          by: Object.create(null),
        },
    ),
  };
}

function renderSpend(overview, state, days = null) {
  const byName = BY.find(([value]) => value === overview.by)?.[1] ?? overview.by;
  if (overview.currencies.length === 0) {
    return [
      h(
        'p',
        { class: 'muted', id: 'no-units' },
        'No units for these filters yet. Send events to POST /v1/events or point Meta’s webhooks at this server.',
      ),
    ];
  }
  // The buckets are days (months) of one clock: the chosen WABA's, or UTC for several (the API's time_zone).
  const step = overview.granularity === 'MONTHLY' ? 'month' : 'day';
  const zoneWords = `${step}s in ${overview.time_zone ?? 'UTC'}`;
  const shown = overview.currencies.map((answered) => {
    const cur = overDays(answered, days);
    const totals = overview.totals[cur.currency] ?? {
      amount: cur.totals.amount,
      units: cur.totals.charged_units + cur.totals.free_units,
    };
    const labels = cur.buckets.map((b) => b.label);
    const keys = cur.keys.slice(0, 12);
    const others = cur.keys.slice(12);
    const series = keys.map((key, i) => ({
      key,
      color: PALETTE[i % PALETTE.length],
      values: cur.buckets.map((b) => Number(b.by[key]?.amount ?? 0)),
      formatted: cur.buckets.map((b) => money(b.by[key]?.amount ?? '0', cur.currency)),
    }));
    if (others.length > 0) {
      series.push({
        key: `${others.length} others`,
        // Every series at least 3:1 against the card (WCAG 1.4.11): this grey 4.0:1, the free units' green 5.0:1.
        color: '#748190',
        values: cur.buckets.map((b) => others.reduce((sum, key) => sum + Number(b.by[key]?.amount ?? 0), 0)),
        // The tooltip's figure is the exact sum of the server's amounts, never the float drawn.
        formatted: cur.buckets.map((b) =>
          money(addDecimals(others.map((key) => b.by[key]?.amount ?? '0')), cur.currency),
        ),
      });
    }
    const unitSeries = [
      { key: 'charged units', color: '#b42318', values: cur.buckets.map((b) => b.charged_units) },
      { key: 'free units', color: '#15803d', values: cur.buckets.map((b) => b.free_units) },
    ];
    return h(
      'section',
      { class: 'card currency', 'data-currency': cur.currency, 'aria-label': `Spend in ${cur.currency}` },
      h('h3', {}, `${cur.currency}`),
      h(
        'div',
        { class: 'stats' },
        stat(
          'Total spend',
          totals.unpriced
            ? `at least ${money(totals.amount, cur.currency)}`
            : money(totals.amount, cur.currency),
          'total-amount',
          totals.unpriced
            ? `${int(totals.unpriced)} charged unit${totals.unpriced === 1 ? '' : 's'} not priced: the total is a floor`
            : null,
        ),
        stat('Units', int(totals.units), 'total-units'),
        stat('Charged units', int(cur.totals.charged_units), 'charged-units'),
        stat('Free units', int(cur.totals.free_units), 'free-units'),
      ),
      h(
        'p',
        { class: 'drill' },
        h('a', { href: unitsHref(state), class: 'units-link' }, 'List these units'),
        ' — each with the rule that priced it, and Export CSV of them.',
      ),
      h(
        'h4',
        { class: 'spend-heading' },
        `Spend per ${step} by ${byName.toLowerCase()} (${cur.currency}; ${zoneWords})`,
      ),
      stackedBars({
        title: `Spend by ${byName.toLowerCase()} in ${cur.currency}`,
        labels,
        series,
        format: (n) => formatAxis(n),
        id: `spend-chart-${cur.currency}`,
      }),
      h('h4', {}, `Charged vs free units (${zoneWords})`),
      stackedBars({
        title: `Charged and free units (${cur.currency})`,
        labels,
        series: unitSeries,
        format: (n) => int(Math.round(n)),
        integer: true,
        height: 170,
      }),
      byTable(cur, byName, (key) => (key === '(unknown)' ? null : unitsHref(state, { [overview.by]: key }))),
      downloadButton(cur, overview, state),
    );
  });
  return overview.truncated ? [truncationNotice(overview), ...shown] : shown;
}

/**
 * The overview draws at most `max_buckets` days (months): the latest ones. Said above the charts, with what
 * was left out, so that a chart starting late is never read as "nothing before".
 */
export function truncationText(overview) {
  const cut = overview.truncated;
  const step = overview.granularity === 'MONTHLY' ? 'months' : 'days';
  const byName = (BY.find(([value]) => value === overview.by)?.[1] ?? overview.by).toLowerCase();
  const leftOut = Object.entries(cut.left_out)
    .map(
      ([currency, totals]) =>
        `${int(totals.units)} unit${totals.units === 1 ? '' : 's'} (${money(totals.amount, currency)})`,
    )
    .join(', ');
  return (
    `At most ${int(cut.max_buckets)} ${step} are drawn, the latest: the charts begin on ${cut.shown_from_label}. ` +
    `Left out, since the first unit on ${cut.earliest_unit_at.slice(0, 10)}: ${leftOut || 'nothing'}. ` +
    `The charts, the charged and free units and the units per ${byName} below cover the ${step} drawn; ` +
    'the total spend and units include what was left out. ' +
    `For earlier ${step}, set "To" before ${cut.shown_from_label}` +
    (overview.granularity === 'DAILY' ? ' or choose Month.' : '.')
  );
}

function truncationNotice(overview) {
  return h('p', { class: 'warning-box', role: 'note', id: 'spend-truncated' }, truncationText(overview));
}

/**
 * Per key: its exact spend (the sum of the buckets' amounts) and its charged and free units, over the buckets
 * shown — the table's rows and the downloaded CSV's.
 */
function perKey(cur) {
  return cur.keys.map((key) => {
    let charged = 0;
    let free = 0;
    for (const bucket of cur.buckets) {
      charged += bucket.by[key]?.charged_units ?? 0;
      free += bucket.by[key]?.free_units ?? 0;
    }
    const spend = addDecimals(cur.buckets.map((bucket) => bucket.by[key]?.amount ?? '0'));
    return { key, spend, charged, free };
  });
}

/** One CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180). */
function csvField(value) {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * "Download CSV of spend per category": the table's lines as a file (exact decimal amounts, as shown), named
 * for its WABA, its first and last day and the clock they are read on — what a provider re-bills a client.
 */
function downloadButton(cur, overview, state) {
  const byName = (BY.find(([value]) => value === overview.by)?.[1] ?? overview.by).toLowerCase();
  const save = () => {
    const lines = [
      [overview.by, 'currency', 'spend', 'charged_units', 'free_units', 'units'].join(','),
      ...perKey(cur).map((row) =>
        [row.key, cur.currency, row.spend, row.charged, row.free, row.charged + row.free]
          .map(csvField)
          .join(','),
      ),
    ];
    const zone = overview.time_zone ?? 'UTC';
    const from = state.from ? localDay(state.from, zone) : (cur.buckets[0]?.label ?? '');
    const to = state.to
      ? localDay(new Date(Date.parse(state.to) - 1).toISOString(), zone)
      : (cur.buckets.at(-1)?.label ?? '');
    const name = ['wameter-spend-by', overview.by, state.waba, from, 'to', to, zone]
      .filter(Boolean)
      .join('-')
      .replace(/[^\w.-]+/g, '-');
    const url = URL.createObjectURL(new Blob([`${lines.join('\r\n')}\r\n`], { type: 'text/csv' }));
    const link = h('a', { href: url, download: `${name}.csv`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  return h(
    'p',
    {},
    h(
      'button',
      { type: 'button', class: 'quiet download-by', onclick: save },
      `Download CSV of spend per ${byName}`,
    ),
  );
}

/** The charts' figures in words: spend (exact sums of the buckets' amounts) and units per key. */
function byTable(cur, byName, hrefOf) {
  const rows = perKey(cur).map(({ key, spend, charged, free }) => {
    const href = hrefOf(key);
    return [
      h('th', { scope: 'row' }, href ? h('a', { href, title: `The units of ${key}` }, key) : key),
      numCell(money(spend, cur.currency)),
      numCell(int(charged)),
      numCell(int(free)),
    ];
  });
  return h(
    'details',
    {},
    h('summary', {}, `Spend and units per ${byName.toLowerCase()}`),
    table(
      null,
      [
        byName,
        h('th', { scope: 'col', class: 'num' }, 'Spend'),
        h('th', { scope: 'col', class: 'num' }, 'Charged units'),
        h('th', { scope: 'col', class: 'num' }, 'Free units'),
      ],
      rows,
      { class: 'by-table', 'data-currency': cur.currency },
    ),
  );
}

function formatAxis(n) {
  if (n === 0) return '0';
  if (n >= 1000) return `${(n / 1000).toLocaleString('en-US', { maximumFractionDigits: 1 })}k`;
  return n.toLocaleString('en-US', { maximumFractionDigits: 4 });
}

function stat(label, value, id, note = null) {
  return h(
    'div',
    { class: 'stat' },
    h('div', { class: 'label' }, label),
    h('div', { class: 'value', 'data-stat': id }, value),
    note ? h('div', { class: 'note', 'data-stat': `${id}-note` }, note) : null,
  );
}

async function renderAllowances(area, state, defaultMonth, ctx) {
  const month = state.month || defaultMonth;
  const monthInput = h('input', { type: 'month', id: 'f-month', name: 'month', value: month });
  const body = h('div', {}, loading());
  area.replaceChildren(
    h('h2', { id: 'allowance-title' }, 'Free allowance and volume tiers'),
    h('div', { class: 'row' }, field('Allowance month', monthInput)),
    body,
  );
  monthInput.addEventListener('change', () => {
    state.month = monthInput.value;
    ctx.remember('overview', state);
    renderAllowances(area, state, defaultMonth, ctx);
  });
  let data;
  try {
    data = await getJson('/v1/dashboard/allowances', { month, waba: state.waba });
  } catch (error) {
    body.replaceChildren(errorBox(error, 'load the allowances'));
    return;
  }
  const parts = [
    h(
      'p',
      {},
      `Rules of ${data.month}: ${data.era}. `,
      h('span', { class: 'muted' }, capitalise(data.allowance.what)),
      '.',
    ),
  ];
  if (data.allowance.limit !== null) {
    const perBusiness = data.allowance.per === 'business';
    parts.push(
      data.allowance.rows.length === 0
        ? h('p', { class: 'muted' }, 'No units this month.')
        : table(
            `Free allowance used in ${data.month} (limit ${int(data.allowance.limit)} per ${perBusiness ? 'business number' : 'WABA'})`,
            [
              'WABA',
              ...(perBusiness ? ['Business number'] : []),
              'Used / limit',
              h('th', { scope: 'col', class: 'num' }, 'Remaining'),
            ],
            data.allowance.rows.map((row) => [
              row.waba,
              ...(perBusiness ? [row.business] : []),
              h('td', {}, meter(row.used, row.limit), ` ${int(row.used)} / ${int(row.limit)}`),
              numCell(int(row.remaining)),
            ]),
            { id: 'allowance-table' },
          ),
    );
  }
  parts.push(
    h('h3', {}, `Volume-tier position in ${data.month}`),
    data.tiers_note
      ? h('p', { class: 'muted' }, `${capitalise(data.tiers_note)}.`)
      : data.tiers.length === 0
        ? h('p', { class: 'muted' }, 'No charged utility or authentication messages this month.')
        : h(
            'div',
            { class: 'table-wrap' },
            table(
              'Charged messages per portfolio × market × category (authentication-international counts with ' +
                'authentication); the band is the whole portfolio’s, read from the rate card in force',
              [
                'Portfolio',
                'Market',
                'Category',
                h('th', { scope: 'col', class: 'num' }, 'Charged this month'),
                'Band',
                'Band rate',
                'Next band from',
                'Rate card',
              ],
              data.tiers.map((row) => [
                row.portfolio,
                row.market,
                categoryCell(row),
                numCell(int(row.charged_this_month)),
                perRateCategory(row, (entry) => entry.band ?? 'no tiers on card'),
                perRateCategory(row, (entry) =>
                  entry.band_rate ? money(entry.band_rate, row.currency) : '—',
                ),
                perRateCategory(row, (entry) => (entry.next_band_from ? int(entry.next_band_from) : '—')),
                h('td', { class: 'mono' }, row.rate_card ?? '—'),
              ]),
              { id: 'tier-table' },
            ),
          ),
  );
  fill(body, ...parts);
}

/**
 * A tier cell: `value(row)` (a string) for a count of one rate category, or when every rate category sharing
 * the count (authentication and authentication-international) has the same; else one line per category.
 */
function perRateCategory(row, value) {
  const entries = row.rate_categories ?? [];
  const values = entries.map(value);
  if (values.every((text) => text === values[0])) return values[0] ?? value(row);
  return entries.map((entry, i) => h('div', {}, `${entry.category}: `, values[i]));
}

/** The category a row counts, with each rate category's share of it when several share the count. */
function categoryCell(row) {
  const entries = row.rate_categories ?? [];
  if (entries.length <= 1) return row.category;
  return [
    row.category,
    ...entries.map((entry) =>
      h('div', { class: 'muted' }, `${entry.category}: ${int(entry.charged_this_month)} charged`),
    ),
  ];
}

function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : '';
}
