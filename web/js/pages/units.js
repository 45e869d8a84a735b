// Units: the API's filters, one page at a time (cursor pagination) in the order chosen (by opening time, or
// dearest first: `order`), and a CSV export of exactly what the filters select, in that order (GET
// /v1/units.csv with the same query).

import { getJson, request } from '../api.js';
import {
  clockOf,
  count,
  errorBox,
  field,
  h,
  instant,
  isoToWallTime,
  loading,
  localTime,
  newestOnly,
  money,
  select,
  table,
  total,
  UNIT_CATEGORIES,
  wabaNotShown,
  wallTimeToIso,
  whileLoading,
} from '../dom.js';

const TYPES = ['regular', 'free_tier', 'free_entry_point', 'free_customer_service'];
const FILTERS = ['waba', 'business', 'user', 'category', 'type', 'market', 'from', 'to', 'order'];
/** The orders of GET /v1/units (`order`), as the "Order" box and the column headers name them. */
const ORDERS = [
  ['', 'Opening time'],
  ['amount_desc', 'Amount, dearest first'],
];
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
    category: select('category', [['', 'All'], ...UNIT_CATEGORIES.map((c) => [c, c])], params.category),
    type: select('type', [['', 'All'], ...TYPES.map((t) => [t, t])], params.type),
    market: h('input', {
      name: 'market',
      id: 'f-market',
      value: params.market ?? '',
      placeholder: 'e.g. India',
    }),
    from: h('input', { type: 'datetime-local', name: 'from', id: 'f-from' }),
    to: h('input', { type: 'datetime-local', name: 'to', id: 'f-to' }),
    // Not a filter: the order the units are listed in (and exported in). Amounts of different currencies are
    // never compared: the server lists each currency's units dearest first, one currency after the other.
    order: select('order', ORDERS, params.order),
  };
  // "Opened from / before" are read on the clock of the WABAs chosen (one WABA's, the one all the key's keep,
  // else UTC), as the Overview's days: a client's bill month is its own clock's. The address keeps instants.
  let clock = clockOf(accounts, controls.waba.value);
  controls.from.value = isoToWallTime(params.from, clock.zone);
  controls.to.value = isoToWallTime(params.to, clock.zone);
  const labels = {
    waba: 'WABA',
    business: 'Business number',
    user: 'User',
    category: 'Category',
    type: 'Type',
    market: 'Market',
    from: h('span', {}),
    to: h('span', {}),
    order: 'Order',
  };
  function showClock() {
    labels.from.textContent = `Opened from (${clock.zone})`;
    labels.to.textContent = `Opened before (${clock.zone})`;
  }
  showClock();
  // Another WABA: the times typed stay as typed, now read on its clock.
  controls.waba.addEventListener('change', () => {
    clock = clockOf(accounts, controls.waba.value);
    showClock();
  });
  const status = h('p', { class: 'muted', role: 'status', id: 'units-status' });
  const totalsLine = h('p', { id: 'units-totals', 'aria-live': 'polite' });
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
  main.append(form, wabaNotShown(params.waba, accounts) ?? '', status, totalsLine, results);

  const filters = () => {
    const query = {};
    for (const name of FILTERS) {
      const value = controls[name].value.trim();
      if (value) query[name] = name === 'from' || name === 'to' ? wallTimeToIso(value, clock.zone) : value;
    }
    return query;
  };
  const cursors = [];
  /** The filters of the table shown (or being loaded): Export CSV applies the form's first when they differ. */
  let shownQuery = null;

  // "Apply filters" or a page button pressed again before the answer: only the latest load draws.
  const beginLoad = newestOnly();
  async function load(cursor) {
    const isNewest = beginLoad();
    const query = filters();
    // The clock these filters were read on: the table says its times on it, whatever is picked meanwhile.
    const shownClock = clock;
    shownQuery = query;
    ctx.remember('units', query);
    results.replaceChildren(loading());
    // Never the last page's words over a table being replaced (or an error in its place).
    status.textContent = 'Loading units…';
    if (cursor === undefined) {
      totalsLine.textContent = '';
      showTotals(query, isNewest);
    }
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
      const filtered = Object.keys(query).some((name) => name !== 'order');
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
    const isByAmount = query.order === 'amount_desc';
    status.textContent = `Page ${cursors.length + 1}: ${page.units.length} unit${page.units.length === 1 ? '' : 's'}${isByAmount ? ', dearest first (each currency on its own)' : ''}${page.next_cursor ? ', more on the next page' : ''}.`;
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
    // One WABA chosen (or WABAs sharing one clock): its clock first, as the filters above read times; else UTC
    // first, each WABA's own clock below.
    const shared = isOwnClock(shownClock) ? shownClock.zone : null;
    // The two headers the units can be ordered by are buttons that list them so, from the first page (the
    // filters as typed, as "Apply filters" would); `aria-sort` says which one orders the table (its arrow is
    // drawn by the style sheet, so the header's words stay the column's name).
    const sortHeader = (text, order, id, className) => {
      const isSorted = (query.order ?? '') === order;
      const button = h(
        'button',
        {
          type: 'button',
          class: 'sort',
          id,
          'aria-pressed': isSorted ? 'true' : 'false',
          title: `List the units by ${ORDERS.find(([value]) => value === order)[1].toLowerCase()}`,
        },
        text,
      );
      button.addEventListener('click', () => {
        controls.order.value = order;
        cursors.length = 0;
        load(undefined);
      });
      return h(
        'th',
        {
          scope: 'col',
          class: className,
          'aria-sort': isSorted ? (order === '' ? 'ascending' : 'descending') : 'none',
        },
        button,
      );
    };
    results.replaceChildren(
      h(
        'div',
        { class: 'table-wrap' },
        table(
          null,
          [
            sortHeader(
              shared ? `Opened (${shared}; UTC below)` : 'Opened (UTC; the WABA’s clock below)',
              '',
              'sort-opened',
              undefined,
            ),
            'WABA',
            'Business',
            'User',
            'Market',
            'Category',
            'Type',
            sortHeader('Amount', 'amount_desc', 'sort-amount', 'num'),
            'Rule',
            'Unit',
          ],
          page.units.map((unit) => [
            // The WABA's local date decides the unit's day, month and rate card: 01:00 UTC on October 1st is
            // September 30th in São Paulo, and on its September bill.
            openedCell(unit, zones.get(unit.waba), shared),
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

  /** What the filters add up to (GET /v1/totals, the same query): the figure a provider re-bills. */
  async function showTotals(query, isNewest) {
    let answer;
    try {
      // The totals of the filters: the order is no filter (and /v1/totals refuses a parameter it does not take).
      const { order: _order, ...filtersOnly } = query;
      answer = await getJson('/v1/totals', filtersOnly);
    } catch {
      // The table's own request says what failed; the line stays empty rather than wrong.
      return;
    }
    if (!isNewest()) return;
    const parts = Object.entries(answer.totals).map(([currency, totals]) =>
      total(totals.amount, currency, totals.unpriced),
    );
    const units = Object.values(answer.totals).reduce((sum, totals) => sum + totals.units, 0);
    totalsLine.textContent = parts.length
      ? `These filters: ${count(units, 'unit')}, ${parts.join('; ')}.`
      : '';
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    cursors.length = 0;
    load(undefined);
  });
  form.addEventListener('reset', () => {
    setTimeout(() => {
      for (const name of FILTERS) controls[name].value = '';
      clock = clockOf(accounts, '');
      showClock();
      cursors.length = 0;
      load(undefined);
    });
  });
  exportButton.addEventListener('click', async () => {
    exportButton.disabled = true;
    const previousText = exportButton.textContent;
    exportButton.textContent = 'Exporting…';
    try {
      // The filters shown are the file's: applied first, so the table and the file never differ.
      const query = filters();
      if (JSON.stringify(query) !== JSON.stringify(shownQuery)) {
        cursors.length = 0;
        load(undefined);
      }
      const response = await request('/v1/units.csv', { query });
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = h('a', { href: url, download: csvName(query, clock.zone), hidden: true });
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

/**
 * The export's file name, saying what it holds: "wameter-units-<waba>-<from>-to-<to>-<zone>.csv", the times
 * on the clock the filters were typed in (characters a file name may not hold replaced by "-").
 */
function csvName(query, zone) {
  const parts = ['wameter-units', query.waba];
  if (query.from || query.to) {
    parts.push(
      isoToWallTime(query.from, zone) || 'start',
      'to',
      isoToWallTime(query.to, zone) || 'now',
      zone,
    );
  }
  return `${parts
    .filter(Boolean)
    .join('-')
    .replace(/[^\w.-]+/g, '-')}.csv`;
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

/** Whether the clock the filters read is the chosen WABAs' own (one zone, not UTC for want of one). */
function isOwnClock(clock) {
  return clock.zones.length === 1 && clock.zone !== 'UTC';
}

/**
 * A unit's opening: on its WABA's clock first when that is the clock the page reads (`shared`), the UTC
 * instant below; else UTC first, its WABA's clock below.
 */
function openedCell(unit, zone, shared) {
  const local = localTime(unit.opened_at, zone);
  if (shared && zone === shared && local) {
    return h(
      'td',
      { class: 'nowrap local-date' },
      `${local} ${zone}`,
      h('span', { class: 'muted' }, instant(unit.opened_at)),
    );
  }
  return h(
    'td',
    { class: 'nowrap local-date' },
    instant(unit.opened_at),
    local ? h('span', { class: 'muted' }, `${local} ${zone}`) : null,
  );
}
