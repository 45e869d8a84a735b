// Estimate (contract §6): what a template send to each recipient would cost now (or at a chosen time),
// from the real state of each user's windows, the free allowance and the volume tiers.

import { postJson } from '../api.js';
import { errorBox, field, h, int, loading, localInputToIso, money, numCell, select, table } from '../dom.js';

export async function render(main, params, ctx) {
  main.append(h('h1', {}, 'Estimate a send'));
  const accounts = await ctx.accounts().catch((error) => {
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
  });
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
          'Or upload a CSV with a "phone" column (other columns are kept).',
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
      ),
    ),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'run-estimate' }, 'Estimate')),
  );
  main.append(form, result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
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
    result.replaceChildren(loading('Estimating…'));
    try {
      const estimate = await postJson('/v1/estimate', body);
      if (pastedLines) {
        for (const item of estimate.invalid) item.line = pastedLines[item.line - 1] ?? item.line;
      }
      result.replaceChildren(...renderEstimate(estimate));
    } catch (error) {
      result.replaceChildren(errorBox(error, 'estimate'));
    }
  });
}

function renderEstimate(estimate) {
  const totals = estimate.totals;
  const parts = [
    h('h2', {}, 'Estimate'),
    ...(estimate.warnings ?? []).map((warning) =>
      h('p', { class: 'warning-box', role: 'note', 'data-warning': '' }, warning),
    ),
    h(
      'div',
      { class: 'stats' },
      ...Object.entries(totals.by_currency ?? {}).map(([currency, t]) =>
        h(
          'div',
          { class: 'stat' },
          h('div', { class: 'label' }, `Total (${currency})`),
          h('div', { class: 'value', 'data-stat': 'estimate-total' }, money(t.amount, currency)),
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
    h(
      'div',
      { class: 'table-wrap' },
      table(
        'Per recipient',
        ['Phone', 'Country', 'Market', h('th', { scope: 'col', class: 'num' }, 'Price'), 'Free?', 'Why'],
        estimate.lines.map((line) => [
          h('td', { class: 'mono' }, line.phone),
          line.country ?? '—',
          line.market ?? '—',
          numCell(line.free ? money('0', line.currency) : money(line.price, line.currency)),
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
