// Rate cards in force and their history (ids, currency, dates, provenance), the rating history, and the
// findings: unknown numbers, missing rates, disagreements with Meta.

import { getJson } from '../api.js';
import { count, errorBox, fill, h, instant, int, loading, serviceWords, table, total } from '../dom.js';

export async function render(main, params, ctx) {
  main.append(h('h1', {}, 'Rate cards & findings'));
  const cardsArea = h(
    'section',
    { 'aria-labelledby': 'cards-title' },
    h('h2', { id: 'cards-title' }, 'Rate cards'),
    loading(),
  );
  const ratingsArea = h(
    'section',
    { 'aria-labelledby': 'ratings-title' },
    h('h2', { id: 'ratings-title' }, 'Rating history'),
    loading(),
  );
  const findingsArea = h(
    'section',
    { 'aria-labelledby': 'findings-title' },
    h('h2', { id: 'findings-title' }, 'Findings'),
    loading(),
  );
  main.append(cardsArea, findingsArea, ratingsArea);
  await Promise.all([
    renderCards(cardsArea),
    renderFindings(findingsArea, params, ctx),
    renderRatings(ratingsArea),
  ]);
}

async function renderCards(area) {
  let data;
  try {
    data = await getJson('/v1/rate-cards');
  } catch (error) {
    area.replaceChildren(area.firstChild, errorBox(error, 'load the rate cards'));
    return;
  }
  const inForce = data.rate_cards.filter((card) => card.in_force);
  area.replaceChildren(
    area.firstChild,
    h(
      'p',
      {},
      // The server's date, UTC: a WABA east or west of it may already (still) be on another day, and its
      // charges use the card of its own local date.
      `In force today (${data.today}, UTC): `,
      inForce.length ? inForce.map((card) => `${card.id} (${card.currency})`).join(', ') : 'none',
      '. A charge is priced from the card in force on its WABA’s local date.',
    ),
    h(
      'div',
      { class: 'table-wrap' },
      table(
        'Every loaded card, newest first per currency; a charge uses the card in force on its local date',
        [
          'Rate card',
          'Currency',
          'Effective from',
          'Until',
          'Status',
          h('th', { scope: 'col', class: 'num' }, 'Markets'),
          'Volume tiers',
          'Title / provenance',
          'Rates',
        ],
        data.rate_cards.map((card) => [
          h('td', { class: 'mono' }, card.id),
          card.currency,
          // A date is never broken at its hyphens ("2025-10-" over "01").
          h('td', { class: 'nowrap' }, card.effective_date),
          h('td', { class: 'nowrap' }, card.until ?? '—'),
          h(
            'td',
            {},
            h(
              'span',
              { class: `chip ${card.in_force ? 'free' : ''}` },
              card.in_force ? 'in force' : card.effective_date > data.today ? 'future' : 'past',
            ),
          ),
          h('td', { class: 'num' }, int(card.markets)),
          card.has_volume_tiers ? 'yes' : 'no',
          h(
            'td',
            {},
            card.title ?? '',
            card.provenance ? h('div', { class: 'muted' }, card.provenance) : null,
          ),
          h('td', {}, ratesDetails(card)),
        ]),
        { id: 'rate-card-table' },
      ),
    ),
  );
}

function ratesDetails(card) {
  const details = h('details', {}, h('summary', {}, 'Show rates'));
  let isLoaded = false;
  details.addEventListener('toggle', async () => {
    if (!details.open || isLoaded) return;
    isLoaded = true;
    details.append(loading());
    try {
      const full = await getJson(`/v1/rate-cards/${encodeURIComponent(card.id)}`);
      const categories = [...new Set(full.rates.flatMap((row) => Object.keys(row.rates)))];
      details.lastChild.replaceWith(
        table(
          `${full.id}: rates per market (${full.currency})`,
          ['Market', ...categories],
          full.rates.map((row) => [row.market, ...categories.map((c) => row.rates[c] ?? 'n/a')]),
        ),
      );
    } catch (error) {
      details.lastChild.replaceWith(errorBox(error, `load rate card ${card.id}`));
    }
  });
  return details;
}

/** Ratings a page of the history shows; older ones come a page at a time ("Older ratings"). */
const RATINGS_PAGE = 20;

async function renderRatings(area) {
  let data;
  try {
    data = await getJson('/v1/ratings', { limit: RATINGS_PAGE });
  } catch (error) {
    area.replaceChildren(area.firstChild, errorBox(error, 'load the rating history'));
    return;
  }
  if (data.ratings.length === 0) {
    area.replaceChildren(area.firstChild, h('p', { class: 'muted' }, 'Nothing rated yet.'));
    return;
  }
  const history = table(
    'The ratings of the bill, newest first (live re-ratings and re-rates), with the cards they used; a total ' +
      'with charged units not priced is a floor',
    ['Rated at', 'Reason', 'WABAs', 'Rules', 'Rate cards', 'Totals'],
    data.ratings.map(ratingRow),
    { id: 'ratings-table' },
  );
  const status = h('div', { class: 'muted', id: 'ratings-status', 'aria-live': 'polite' });
  const older = h('button', { type: 'button', class: 'quiet', id: 'older-ratings' }, 'Older ratings');
  let cursor = data.next_cursor;
  let shown = data.ratings.length;
  const tell = () => {
    status.textContent = `${count(shown, 'rating')} shown${cursor ? '; older ones on request' : ', the whole history'}.`;
    older.hidden = !cursor;
  };
  older.addEventListener('click', async () => {
    older.disabled = true;
    status.textContent = 'Loading older ratings…';
    try {
      const page = await getJson('/v1/ratings', { limit: RATINGS_PAGE, cursor });
      const rows = table('', [], page.ratings.map(ratingRow)).tBodies[0].rows;
      history.tBodies[0].append(...rows);
      shown += page.ratings.length;
      cursor = page.next_cursor;
      tell();
    } catch (error) {
      status.replaceChildren(errorBox(error, 'load older ratings'));
    } finally {
      older.disabled = false;
    }
  });
  tell();
  area.replaceChildren(area.firstChild, h('div', { class: 'table-wrap' }, history), status, older);
}

function ratingRow(rating) {
  return [
    instant(rating.rated_at),
    rating.reason,
    rating.wabas.join(', '),
    rating.as_of_rules ?? 'of each date',
    h('td', { class: 'mono' }, rating.rate_cards.join(', ')),
    Object.entries(rating.totals)
      .map(([currency, t]) => `${total(t.amount, currency, t.unpriced)}, ${count(t.units, 'unit')}`)
      .join('; '),
  ];
}

async function renderFindings(area, params, ctx) {
  const code = params.code ?? '';
  let data;
  try {
    data = await getJson('/v1/findings', { code, limit: 200, offset: params.offset });
  } catch (error) {
    area.replaceChildren(area.firstChild, errorBox(error, 'load the findings'));
    return;
  }
  const codes = Object.keys(data.counts).sort();
  const chips = h(
    'div',
    { class: 'row', role: 'group', 'aria-label': 'Filter findings by code' },
    h(
      'button',
      {
        type: 'button',
        class: 'chip',
        'aria-pressed': String(code === ''),
        onclick: () => ctx.navigate('rate-cards', {}),
      },
      `All (${int(Object.values(data.counts).reduce((a, b) => a + b, 0))})`,
    ),
    codes.map((name) =>
      h(
        'button',
        {
          type: 'button',
          class: 'chip',
          'aria-pressed': String(code === name),
          onclick: () => ctx.navigate('rate-cards', { code: name }),
        },
        `${name} (${int(data.counts[name])})`,
      ),
    ),
  );
  const offset = Number(params.offset ?? 0);
  fill(
    area,
    area.firstChild,
    h(
      'p',
      { class: 'muted' },
      'What you should know about the bill: numbers whose market is unknown or inferred, prices no rate card gives, and where Meta’s webhooks disagree with wameter.',
    ),
    chips,
    data.findings.length === 0
      ? h('p', { class: 'muted', id: 'no-findings' }, 'No findings.')
      : h(
          'div',
          { class: 'table-wrap' },
          table(
            `Findings ${offset + 1}–${offset + data.findings.length} of ${int(data.total)}`,
            ['Code', 'Message', 'Details'],
            data.findings.map((finding) => {
              const { code: findingCode, message, ...details } = finding;
              return [
                h('td', { class: 'mono' }, findingCode),
                serviceWords(message),
                h(
                  'td',
                  { class: 'mono' },
                  Object.entries(details)
                    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
                    .join(' · '),
                ),
              ];
            }),
            { id: 'findings-table' },
          ),
        ),
    data.next_offset !== null
      ? h(
          'div',
          { class: 'pager' },
          h(
            'button',
            { type: 'button', onclick: () => ctx.navigate('rate-cards', { code, offset: data.next_offset }) },
            'More findings',
          ),
        )
      : null,
  );
}
