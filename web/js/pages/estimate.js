// Estimate (contract §6): what a template send to each recipient would cost now (or at a chosen time),
// from the real state of each user's windows, the free allowance and the volume tiers.

import { getJson, postJson } from '../api.js';
import {
  errorBox,
  field,
  fill,
  h,
  int,
  loading,
  localInputToIso,
  money,
  newestOnly,
  numCell,
  select,
  serviceWords,
  table,
  total,
  wabaNotShown,
  whileLoading,
} from '../dom.js';

/** A line's own fields (contract §6); any other field is a column of the recipients CSV, echoed. */
const LINE_FIELDS = ['phone', 'country', 'market', 'price', 'currency', 'free', 'reason'];

export async function render(main, params, ctx) {
  main.append(h('h1', {}, 'Estimate a send'));
  const accounts = await whileLoading(main, ctx.accounts(), 'Loading your WABAs…').catch((error) => {
    main.append(errorBox(error, 'list your WABAs'));
    return null;
  });
  if (accounts === null) return;
  const phones = h('textarea', {
    id: 'f-phones',
    name: 'phones',
    rows: 6,
    placeholder: '+91 98765 43210\n+55 11 91234-5678\n…',
    'aria-describedby': 'phones-hint',
  });
  const file = h('input', { type: 'file', id: 'f-csv', name: 'csv', accept: '.csv,text/csv' });
  const template = select(
    'template',
    [
      ['marketing', 'Marketing'],
      ['utility', 'Utility'],
      ['authentication', 'Authentication'],
    ],
    params.template ?? 'marketing',
  );
  const at = h('input', { type: 'datetime-local', id: 'f-at', name: 'at' });
  const waba = select(
    'waba',
    [...(accounts.length === 1 ? [] : [['', 'Choose a WABA']]), ...accounts.map((a) => [a.waba, a.waba])],
    params.waba,
  );
  const business = h('input', {
    id: 'f-business',
    name: 'business',
    placeholder: 'only if the WABA has several numbers',
    list: 'business-numbers',
    autocomplete: 'off',
  });
  // The numbers the chosen WABA has sent from (the overview's units by business number), as suggestions.
  const numbers = h('datalist', { id: 'business-numbers' });
  let numbersFor = null;
  async function offerNumbers() {
    const chosen = waba.value;
    numbersFor = chosen;
    if (!chosen) {
      numbers.replaceChildren();
      return;
    }
    try {
      const overview = await getJson('/v1/dashboard/overview', {
        granularity: 'MONTHLY',
        by: 'business',
        waba: chosen,
      });
      if (numbersFor !== chosen) return;
      const found = [...new Set(overview.currencies.flatMap((cur) => cur.keys))].sort();
      numbers.replaceChildren(...found.map((number) => h('option', { value: number })));
      if (found.length === 1 && !business.value) business.value = found[0];
    } catch {
      // suggestions only: the server names the WABA's numbers if one is needed and missing
    }
  }
  waba.addEventListener('change', () => offerNumbers());
  offerNumbers();
  const result = h('div', { id: 'estimate-result', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'card', 'aria-label': 'Estimate' },
    h(
      'div',
      { class: 'grid-2' },
      h(
        'div',
        {},
        field('Phone numbers, one per line', phones),
        h(
          'p',
          { class: 'hint', id: 'phones-hint' },
          'Or upload a CSV with a "phone" column (other columns are kept: shown in the results and in their CSV).',
        ),
        field('Recipients CSV', file),
      ),
      h(
        'div',
        {},
        field('Template category', template),
        field('Send time (UTC, empty = now)', at),
        field('Sending WABA', waba),
        field('Business number', business),
        numbers,
      ),
    ),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'run-estimate' }, 'Estimate')),
  );
  main.append(form, wabaNotShown(params.waba, accounts) ?? '', result);
  // Sent again before the answer (another template, other numbers): only the latest estimate draws.
  const beginEstimate = newestOnly();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const isNewest = beginEstimate();
    const body = {
      template: template.value,
      at: localInputToIso(at.value) || undefined,
      waba: waba.value || undefined,
      business: business.value.trim() || undefined,
    };
    // Blank pasted lines are not recipients; the pasted line of each one sent is kept for the invalid list.
    let pastedLines = null;
    if (file.files && file.files[0]) {
      body.csv = await file.files[0].text();
    } else {
      body.phones = [];
      pastedLines = [];
      phones.value.split(/\r?\n/).forEach((line, index) => {
        if (line.trim() === '') return;
        body.phones.push(line.trim());
        pastedLines.push(index + 1);
      });
      if (body.phones.length === 0) {
        result.replaceChildren(
          errorBox({ message: 'Paste at least one phone number or choose a CSV file.' }, 'estimate'),
        );
        return;
      }
    }
    fill(result, loading('Estimating…'));
    try {
      const estimate = await postJson('/v1/estimate', body);
      if (!isNewest()) return;
      if (pastedLines) {
        for (const item of estimate.invalid) item.line = pastedLines[item.line - 1] ?? item.line;
      }
      fill(result, ...renderEstimate(estimate));
    } catch (error) {
      if (isNewest()) result.replaceChildren(errorBox(error, 'estimate', () => form.requestSubmit()));
    }
  });
}

/** The CSV's columns echoed on the lines, in their order (a line's own fields left out). */
export function echoedColumns(lines) {
  const columns = [];
  for (const line of lines) {
    for (const name of Object.keys(line)) {
      if (!LINE_FIELDS.includes(name) && !columns.includes(name)) columns.push(name);
    }
  }
  return columns;
}

/** The lines as a CSV: the echoed columns first, then the estimate's fields (RFC 4180 quoting). */
export function linesCsv(lines) {
  const columns = [...echoedColumns(lines), ...LINE_FIELDS];
  const cell = (value) => {
    const text = value === null || value === undefined ? '' : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [columns, ...lines.map((line) => columns.map((name) => line[name]))]
    .map((row) => row.map(cell).join(','))
    .join('\r\n')
    .concat('\r\n');
}

function downloadCsv(lines) {
  const url = URL.createObjectURL(new Blob([linesCsv(lines)], { type: 'text/csv' }));
  const link = h('a', { href: url, download: 'wameter-estimate.csv', hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function renderEstimate(estimate) {
  const totals = estimate.totals;
  const echoed = echoedColumns(estimate.lines);
  const parts = [
    h('h2', {}, 'Estimate'),
    ...(estimate.warnings ?? []).map((warning) =>
      // Said for the service this page runs on: its settings, not the command line's flags (serviceWords).
      h('p', { class: 'warning-box', role: 'note', 'data-warning': '' }, serviceWords(warning)),
    ),
    h(
      'div',
      { class: 'stats' },
      ...Object.entries(totals.by_currency ?? {}).map(([currency, t]) =>
        h(
          'div',
          { class: 'stat' },
          h('div', { class: 'label' }, `Total (${currency})`),
          h('div', { class: 'value', 'data-stat': 'estimate-total' }, total(t.amount, currency, t.unpriced)),
        ),
      ),
      stat('Recipients', int(totals.count)),
      stat('Free', int(totals.free)),
      stat('Charged', int(totals.charged)),
      totals.unpriced ? stat('Charged, price unknown', int(totals.unpriced)) : null,
      stat('Invalid numbers', int(estimate.invalid.length)),
    ),
    estimate.waba
      ? h('p', { class: 'muted' }, `Sent from WABA ${estimate.waba}, business number ${estimate.business}.`)
      : null,
    estimate.lines.length > 0
      ? h(
          'div',
          { class: 'row' },
          h(
            'button',
            { type: 'button', id: 'estimate-csv', onclick: () => downloadCsv(estimate.lines) },
            'Download CSV',
          ),
        )
      : null,
    h(
      'div',
      { class: 'table-wrap' },
      table(
        'Per recipient',
        [
          ...echoed.map((name) => h('th', { scope: 'col', 'data-echoed': '' }, name)),
          'Phone',
          'Country',
          'Market',
          h('th', { scope: 'col', class: 'num' }, 'Price'),
          'Free?',
          'Why',
        ],
        estimate.lines.map((line) => [
          ...echoed.map((name) =>
            line[name] === null || line[name] === undefined ? '' : String(line[name]),
          ),
          h('td', { class: 'mono' }, line.phone),
          line.country ?? '—',
          line.market ?? '—',
          numCell(
            line.free
              ? money('0', line.currency)
              : line.price === null
                ? 'not priced'
                : money(line.price, line.currency),
          ),
          h(
            'td',
            {},
            h('span', { class: `chip ${line.free ? 'free' : 'charged'}` }, line.free ? 'free' : 'charged'),
          ),
          line.reason,
        ]),
        { id: 'estimate-lines' },
      ),
    ),
  ];
  if (estimate.invalid.length > 0) {
    parts.push(
      h('h3', {}, 'Numbers that could not be estimated'),
      table(
        null,
        ['Line', 'Phone', 'Problem'],
        estimate.invalid.map((item) => [
          String(item.line),
          h('td', { class: 'mono' }, item.phone),
          item.error,
        ]),
        { id: 'estimate-invalid' },
      ),
    );
  }
  return parts;
}

function stat(label, value) {
  return h(
    'div',
    { class: 'stat' },
    h('div', { class: 'label' }, label),
    h('div', { class: 'value' }, value),
  );
}
