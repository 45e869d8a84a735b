// Reconciliation (contract §7): where wameter's verdict per message differs from Meta's status webhooks,
// and — with an uploaded analytics export — where day × country × category totals differ, with causes, over
// the days chosen (From, To: days on the export's WABA's clock; by default the export's whole months).

import { getJson, request } from '../api.js';
import {
  clockOf,
  count,
  errorBox,
  field,
  fill,
  h,
  instant,
  int,
  loading,
  money,
  newestOnly,
  nextDay,
  select,
  serviceWords,
  startOfLocalDay,
  table,
  total,
  UNIT_CATEGORIES,
  wabaNotShown,
  whileLoading,
} from '../dom.js';

export async function render(main, params, ctx) {
  main.append(h('h1', {}, 'Reconciliation with Meta'));
  const accounts = await whileLoading(main, ctx.accounts(), 'Loading your WABAs…').catch((error) => {
    main.append(errorBox(error, 'list your WABAs'));
    return null;
  });
  if (accounts === null) return;
  const waba = select('waba', [['', 'All WABAs'], ...accounts.map((a) => [a.waba, a.waba])], params.waba);
  const file = h('input', {
    type: 'file',
    id: 'f-analytics',
    name: 'analytics',
    accept: '.json,application/json',
  });
  // The days compared with an export, as `wameter reconcile --from/--to`: days of the clock of the WABA the
  // export describes (its bill's days, as the Overview's From and To), sent as they are (YYYY-MM-DD). Without
  // an export every stored message is compared, whatever its day: they are then off, and not sent.
  const isDay = (text) => /^\d{4}-\d{2}-\d{2}$/.test(text ?? '');
  const fromInput = h('input', {
    type: 'date',
    name: 'from',
    id: 'f-from',
    value: isDay(params.from) ? params.from : '',
  });
  const toInput = h('input', {
    type: 'date',
    name: 'to',
    id: 'f-to',
    value: isDay(params.to) ? params.to : '',
  });
  const fromLabel = h('span', {});
  const toLabel = h('span', {});
  const periodNote = h('p', { class: 'muted', id: 'period-note', 'aria-live': 'polite' });
  function showPeriod() {
    const hasExport = Boolean(file.files && file.files[0]);
    // The chosen WABA's clock (or the one all the key's WABAs keep); else the one of the WABA the export names
    // (not said "WABA" here: the label would then be the WABA box's too, for a reader finding it by its name).
    const clock = clockOf(accounts, waba.value);
    const zone = clock.zones.length === 1 ? clock.zone : 'the clock of the export’s account';
    fromLabel.textContent = `From, first day (${zone})`;
    toLabel.textContent = `To, last day included (${zone})`;
    fromInput.disabled = !hasExport;
    toInput.disabled = !hasExport;
    periodNote.textContent = hasExport
      ? 'From and To choose the days compared with the export (left empty: the whole months its data points fall in). Ask Meta for the same days.'
      : 'From and To choose the days compared with a Meta analytics export: upload one to choose them. Without one, every stored message is compared with Meta’s status webhooks, whatever its day.';
  }
  showPeriod();
  file.addEventListener('change', showPeriod);
  waba.addEventListener('change', showPeriod);
  const result = h('div', { id: 'reconciliation-result', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'card row', 'aria-label': 'Reconciliation options' },
    field('WABA', waba),
    field('Meta analytics export (optional JSON)', file),
    field(fromLabel, fromInput),
    field(toLabel, toInput),
    h('button', { type: 'submit', id: 'run-reconciliation' }, 'Compare'),
  );
  main.append(
    h(
      'p',
      { class: 'muted' },
      'Each business message’s verdict (pricing model, category, type, conversation) is compared with what Meta’s status webhooks said. Upload a conversation_analytics or pricing_analytics answer to compare totals per day, country and category too.',
    ),
    form,
    periodNote,
    wabaNotShown(params.waba, accounts) ?? '',
    result,
  );
  // Sent again (another WABA, another file) before the answer: only the latest comparison draws.
  const beginRun = newestOnly();
  async function run() {
    const isNewest = beginRun();
    const period = {};
    if (fromInput.value) period.from = fromInput.value;
    if (toInput.value) period.to = toInput.value;
    ctx.remember('reconciliation', { waba: waba.value, ...period });
    result.replaceChildren(loading('Comparing with Meta…'));
    try {
      let data;
      if (file.files && file.files[0]) {
        let analytics;
        try {
          analytics = JSON.parse(await file.files[0].text());
        } catch (error) {
          throw {
            message: `${file.files[0].name} is not JSON (${error.message}). Save Meta's Graph API answer as it came.`,
          };
        }
        // The WABA goes in the body beside the export; the days compared in the query, as GET's filters.
        const answer = await request('/v1/reconciliation', {
          method: 'POST',
          query: period,
          json: { analytics, ...(waba.value ? { waba: waba.value } : {}) },
        });
        data = await answer.json();
      } else {
        data = await getJson('/v1/reconciliation', { waba: waba.value });
      }
      if (isNewest()) fill(result, ...renderReconciliation(data, accounts));
    } catch (error) {
      if (isNewest()) result.replaceChildren(errorBox(error, 'reconcile', run));
    }
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run();
  });
  await run();
}

function renderReconciliation(data, accounts) {
  const messages = data.differences.filter((d) => 'message' in d);
  const buckets = data.differences.filter((d) => 'bucket' in d);
  const causes = {};
  for (const difference of data.differences) causes[difference.cause] = (causes[difference.cause] ?? 0) + 1;
  const parts = [
    h(
      'p',
      { id: 'reconciliation-summary' },
      `Checked ${int(data.checked.messages - data.checked.unverifiable - (data.checked.category_from_webhook ?? 0))} of ${int(data.checked.messages)} delivered messages${data.analytics ? ` of ${data.analytics.period.from} to ${data.analytics.period.to} (${data.analytics.period.basis === 'requested' ? 'the days chosen' : 'the export’s days'})` : ''} (${int(data.checked.unverifiable)} without Meta pricing to compare${data.checked.category_from_webhook ? `, ${int(data.checked.category_from_webhook)} rated from Meta’s own category, with no send log line` : ''}) and ${int(data.checked.buckets)} analytics buckets: `,
      h(
        'strong',
        {},
        data.differences.length > 0
          ? `${int(data.differences.length)} difference${data.differences.length === 1 ? '' : 's'}.`
          : data.nothing_checked
            ? `nothing could be compared, so no agreement is claimed: ${nothingCheckedText(data.nothing_checked)}`
            : 'no differences — wameter and Meta agree.',
      ),
    ),
  ];
  // A stored bill a re-rate under other rules wrote is not what this comparison rated: said first.
  for (const finding of data.findings ?? []) {
    parts.push(h('p', { class: 'notice', 'data-code': finding.code }, finding.message));
  }
  if (data.analytics) parts.push(...renderComparedTotals(data.analytics));
  if (data.differences.length > 0) {
    parts.push(
      h(
        'ul',
        { class: 'legend', 'aria-label': 'Differences by cause' },
        Object.entries(causes).map(([cause, n]) =>
          h('li', {}, h('span', { class: 'chip charged' }, cause), int(n)),
        ),
      ),
    );
  }
  if (messages.length > 0) {
    parts.push(
      h('h2', {}, 'Messages'),
      h(
        'div',
        { class: 'table-wrap' },
        table(
          null,
          ['Message', 'Delivered', 'User', 'Differs in', 'wameter', 'Meta', 'Likely cause'],
          messages.map((d) => [
            h('td', { class: 'mono' }, d.message),
            instant(d.delivered_at),
            h(
              'td',
              {},
              h(
                'a',
                {
                  href: `#/explain?user=${encodeURIComponent(d.user)}&business=${encodeURIComponent(d.business)}`,
                },
                d.user,
              ),
            ),
            d.differs.join(', '),
            h('td', { class: 'mono verdict' }, verdict(d.ours)),
            h('td', { class: 'mono verdict' }, verdict(d.meta)),
            h('td', {}, h('strong', {}, d.cause), h('div', { class: 'muted' }, pageNote(d.note))),
          ]),
          { id: 'message-differences' },
        ),
      ),
    );
  }
  if (buckets.length > 0) {
    parts.push(
      h('h2', {}, 'Analytics buckets'),
      h(
        'div',
        { class: 'table-wrap' },
        table(
          null,
          ['WABA', 'Day', 'Country', 'Category (or type, direction)', 'wameter', 'Meta', 'Likely cause'],
          buckets.map((d) => [
            d.bucket.waba,
            h('td', { class: 'nowrap' }, d.bucket.day),
            d.bucket.country,
            // An export without a category is compared by the type or direction it has.
            d.bucket.category !== '*' || (!d.bucket.type && !d.bucket.direction)
              ? d.bucket.category
              : [d.bucket.type, d.bucket.direction].filter(Boolean).join(' '),
            h(
              'td',
              {},
              `${count(d.ours.units, 'unit')}, ${money(d.ours.amount, d.ours.currency)}`,
              bucketUnitsLink(d.bucket, accounts),
            ),
            `${count(d.meta.units, 'unit')}, ${money(d.meta.amount, d.meta.currency ?? d.ours.currency)}`,
            h('td', {}, h('strong', {}, d.cause), h('div', { class: 'muted' }, pageNote(d.note))),
          ]),
          { id: 'bucket-differences' },
        ),
      ),
    );
  }
  return parts;
}

/**
 * A link to wameter's units behind a bucket: its WABA, its day on the WABA's clock (the export's days are the
 * WABA's), its category; every country of that day (the Units page filters by market, not by country).
 */
function bucketUnitsLink(bucket, accounts) {
  const zone = accounts.find((account) => account.waba === bucket.waba)?.time_zone;
  if (!zone || !/^\d{4}-\d{2}-\d{2}$/.test(bucket.day ?? '')) return null;
  const query = new URLSearchParams({
    waba: bucket.waba,
    from: startOfLocalDay(bucket.day, zone),
    to: startOfLocalDay(nextDay(bucket.day), zone),
  });
  // A bucket of another category (a type, a direction) links without one.
  if (UNIT_CATEGORIES.includes(bucket.category)) query.set('category', bucket.category);
  return h(
    'div',
    {},
    h('a', { href: `#/units?${query}`, title: `Every country’s units of ${bucket.day}` }, 'wameter’s units'),
  );
}

/** The period compared with Meta's export and both totals: the first thing a finance team looks for. */
function renderComparedTotals(analytics) {
  const period = analytics.period;
  const outside = analytics.not_compared.outside_period.units;
  // Against a conversation_analytics export: the units billed per message, which only pricing_analytics counts.
  const perMessage = analytics.not_compared.other_pricing_model.units;
  const left = [];
  if (outside > 0) {
    left.push(
      `${count(outside, 'unit')} of this WABA ${outside === 1 ? 'falls' : 'fall'} outside it and ${outside === 1 ? 'was' : 'were'} not compared`,
    );
  }
  if (perMessage > 0) {
    left.push(
      `${count(perMessage, 'unit')} of this WABA in it ${perMessage === 1 ? 'was' : 'were'} billed per message, which Meta's ${analytics.kind} does not count, and ${perMessage === 1 ? 'was' : 'were'} not compared: upload Meta's pricing_analytics export of these days to compare ${perMessage === 1 ? 'it' : 'them'}`,
    );
  }
  return [
    h(
      'p',
      { id: 'reconciliation-period', class: 'muted' },
      `Meta's ${analytics.kind} export for WABA ${analytics.waba} compared over ${period.from} – ${period.to} (${period.time_zone})` +
        (left.length > 0 ? `; ${left.join('; ')}.` : '.') +
        ` Meta's export states no currency: its amounts are read in ${analytics.currency}.`,
    ),
    h(
      'div',
      { class: 'table-wrap' },
      table(
        'Totals over the period',
        ['Currency', 'wameter', 'Meta', 'Meta − wameter'],
        analytics.totals.map((row) => [
          row.currency,
          `${count(row.ours.units, 'unit')}, ${total(row.ours.amount, row.currency, row.ours.unpriced_units)}`,
          row.meta ? `${count(row.meta.units, 'unit')}, ${money(row.meta.amount, row.currency)}` : '—',
          row.difference
            ? `${count(row.difference.units, 'unit')}, ${money(row.difference.amount, row.currency)}` +
              (row.ours.unpriced_units ? ' (wameter’s amount is a floor)' : '')
            : '—',
        ]),
        { id: 'reconciliation-totals' },
      ),
    ),
  ];
}

/**
 * The server's "nothing could be checked" words (src/use-cases/reconcile.ts, whyNothingWasChecked, told
 * "upload it on this page" by src/server/dashboard-routes.ts) read on this page: the upload named once, and
 * a closing full stop.
 */
export function nothingCheckedText(text) {
  let words = text.replace(/^nothing could be checked against Meta: /, '');
  const upload = ' (upload it on this page)';
  const first = words.indexOf(upload);
  const last = words.lastIndexOf(upload);
  if (first !== -1 && last !== first) words = words.slice(0, last) + words.slice(last + upload.length);
  return /[.!?]$/.test(words) ? words : `${words}.`;
}

/**
 * A cause's advice (src/core/reconcile.ts, WHAT_TO_DO) is written for the CLI: its flags and commands are
 * said as this page's own controls.
 */
export function pageNote(note) {
  const words = (note ?? '')
    .replace(
      ' (choose the period with --from/--to)',
      ' (choose the days compared with From and To above, and ask Meta for the same days)',
    )
    .replace(/run `wameter explain --user …`/g, 'open the user’s “Why was I charged?” page (the user’s link)')
    .replace(/ of `wameter rate`/g, ' on the “Rate cards & findings” page')
    .replace(/\(--rate-cards\)/g, '(the server’s rate cards)');
  return serviceWords(words);
}

function verdict(value) {
  if (!value) return '—';
  return Object.entries(value)
    .map(([key, v]) => `${key}: ${v}`)
    .join('\n');
}
