// Units: the API's filters, one page at a time (cursor pagination), and a CSV export of exactly what the
// filters select (GET /v1/units.csv with the same query).

import { getJson, request } from '../api.js';
import {
  errorBox,
  field,
  h,
  instant,
  isoToLocalInput,
  loading,
  localInputToIso,
  localTime,
  money,
  newestOnly,
  select,
  table,
  wabaNotShown,
  whileLoading,
} from '../dom.js';

const CATEGORIES = [
  'marketing',
  'utility',
  'authentication',
  'authentication_international',
  'service',
  'referral_conversion',
  'business_initiated',
  'user_initiated',
];
const TYPES = ['regular', 'free_tier', 'free_entry_point', 'free_customer_service'];
const FILTERS = ['waba', 'business', 'user', 'category', 'type', 'market', 'from', 'to'];
const PAGE_SIZE = 50;

export async function render(main, params, ctx) {
  main.append(h('h1', {}, 'Units'));
  const accounts = await whileLoading(main, ctx.accounts(), 'Loading your WABAs…').catch((error) => {
    main.append(errorBox(error, 'list your WABAs'));
    return null;
  });
  if (accounts === null) return;
  const zones = new Map(accounts.map((account) => [account.waba, account.time_zone]));

  const controls = {
    waba: select('waba', [['', 'All'], ...accounts.map((a) => [a.waba, a.waba])], params.waba),
    business: h('input', {
      name: 'business',
      id: 'f-business',
      value: params.business ?? '',
      placeholder: 'phone number id',
    }),
    user: h('input', { name: 'user', id: 'f-user', value: params.user ?? '', placeholder: 'wa_id' }),
    category: select('category', [['', 'All'], ...CATEGORIES.map((c) => [c, c])], params.category),
    type: select('type', [['', 'All'], ...TYPES.map((t) => [t, t])], params.type),
    market: h('input', {
      name: 'market',
      id: 'f-market',
      value: params.market ?? '',
      placeholder: 'e.g. India',
    }),
    from: h('input', {
      type: 'datetime-local',
      name: 'from',
      id: 'f-from',
      value: isoToLocalInput(params.from),
    }),
    to: h('input', { type: 'datetime-local', name: 'to', id: 'f-to', value: isoToLocalInput(params.to) }),
  };
  const labels = {
    waba: 'WABA',
    business: 'Business number',
    user: 'User',
    category: 'Category',
    type: 'Type',
    market: 'Market',
    from: 'Opened from (UTC)',
    to: 'Opened before (UTC)',
  };
  const status = h('p', { class: 'muted', role: 'status', id: 'units-status' });
  const exportButton = h('button', { type: 'button', id: 'export-csv' }, 'Export CSV');
  const form = h(
    'form',
    { class: 'card', 'aria-label': 'Unit filters' },
    h(
      'div',
      { class: 'row' },
      FILTERS.map((name) => field(labels[name], controls[name])),
    ),
    h(
      'div',
      { class: 'row', style: undefined },
      h('button', { type: 'submit' }, 'Apply filters'),
      h('button', { type: 'reset', class: 'quiet' }, 'Clear'),
      exportButton,
    ),
  );
  const results = h('div', { id: 'units-results' });
  main.append(form, wabaNotShown(params.waba, accounts) ?? '', status, results);

  const filters = () => {
    const query = {};
    for (const name of FILTERS) {
      const value = controls[name].value.trim();
      if (value) query[name] = name === 'from' || name === 'to' ? localInputToIso(value) : value;
    }
    return query;
  };
  const cursors = [];

  // "Apply filters" or a page button pressed again before the answer: only the latest load draws.
  const beginLoad = newestOnly();
  async function load(cursor) {
    const isNewest = beginLoad();
    const query = filters();
    ctx.remember('units', query);
    results.replaceChildren(loading());
    // Never the last page's words over a table being replaced (or an error in its place).
    status.textContent = 'Loading units…';
    let page;
    try {
      page = await getJson('/v1/units', { ...query, limit: PAGE_SIZE, cursor });
    } catch (error) {
      if (!isNewest()) return;
      status.textContent = 'Units could not be loaded.';
      results.replaceChildren(errorBox(error, 'load units', () => load(cursor)));
      return;
    }
    if (!isNewest()) return;
    if (page.units.length === 0 && cursors.length === 0) {
      status.textContent = '';
      const filtered = Object.keys(query).length > 0;
      results.replaceChildren(
        h(
          'p',
          { class: 'muted', id: 'no-units' },
          filtered
            ? 'No units match these filters: widen them, or press Clear.'
            : 'No units yet. Send events to POST /v1/events or point Meta’s webhooks at this server.',
        ),
      );
      return;
    }
    status.textContent = `Page ${cursors.length + 1}: ${page.units.length} unit${page.units.length === 1 ? '' : 's'}${page.next_cursor ? ', more on the next page' : ''}.`;
    const next = h('button', { type: 'button', id: 'next-page', disabled: !page.next_cursor }, 'Next page');
    const previous = h(
      'button',
      { type: 'button', class: 'quiet', id: 'first-page', disabled: cursors.length === 0 },
      'First page',
    );
    next.addEventListener('click', () => {
      cursors.push(cursor ?? '');
      load(page.next_cursor);
    });
    previous.addEventListener('click', () => {
      cursors.length = 0;
      load(undefined);
    });
    results.replaceChildren(
      h(
        'div',
        { class: 'table-wrap' },
        table(
          null,
          [
            'Opened (UTC; the WABA’s clock below)',
            'WABA',
            'Business',
            'User',
            'Market',
            'Category',
            'Type',
            h('th', { scope: 'col', class: 'num' }, 'Amount'),
            'Rule',
            'Unit',
          ],
          page.units.map((unit) => [
            // The WABA's local date decides the unit's day, month and rate card: 01:00 UTC on October 1st is
            // September 30th in São Paulo, and on its September bill.
            h(
              'td',
              { class: 'nowrap local-date' },
              instant(unit.opened_at),
              localTime(unit.opened_at, zones.get(unit.waba))
                ? h(
                    'span',
                    { class: 'muted' },
                    `${localTime(unit.opened_at, zones.get(unit.waba))} ${zones.get(unit.waba)}`,
                  )
                : null,
            ),
            unit.waba,
            unit.business,
            h(
              'td',
              {},
              h(
                'a',
                {
                  href: `#/explain?user=${encodeURIComponent(unit.user)}&business=${encodeURIComponent(unit.business)}`,
                  title: 'Why was this user charged?',
                },
                unit.user,
              ),
            ),
            unit.market ?? 'unknown',
            unit.category,
            h(
              'td',
              {},
              h('span', { class: `chip ${unit.type === 'regular' ? 'charged' : 'free'}` }, unit.type),
            ),
            h('td', { class: 'num nowrap' }, money(unit.amount, unit.currency)),
            h('td', { class: 'mono' }, unit.rule),
            h('td', { class: 'mono' }, unit.id),
          ]),
          { id: 'units-table' },
        ),
      ),
      h('div', { class: 'pager' }, previous, next),
    );
    rememberUsers(page.units.map((unit) => unit.user));
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    cursors.length = 0;
    load(undefined);
  });
  form.addEventListener('reset', () => {
    setTimeout(() => {
      for (const name of FILTERS) controls[name].value = '';
      cursors.length = 0;
      load(undefined);
    });
  });
  exportButton.addEventListener('click', async () => {
    exportButton.disabled = true;
    const previousText = exportButton.textContent;
    exportButton.textContent = 'Exporting…';
    try {
      const response = await request('/v1/units.csv', { query: filters() });
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = h('a', { href: url, download: 'wameter-units.csv', hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      results.prepend(errorBox(error, 'export the CSV'));
    } finally {
      exportButton.disabled = false;
      exportButton.textContent = previousText;
    }
  });
  await load(undefined);
}

/** Users seen on the units page, offered as suggestions on the "Why was I charged?" page. */
function rememberUsers(users) {
  try {
    const known = JSON.parse(sessionStorage.getItem('wameter.users') ?? '[]');
    const merged = [...new Set([...users, ...known])].slice(0, 200);
    sessionStorage.setItem('wameter.users', JSON.stringify(merged));
  } catch {
    // storage unavailable: suggestions are a convenience only
  }
}
