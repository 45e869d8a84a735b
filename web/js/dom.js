// Small DOM helpers: elements are built with textContent only (data from webhooks is never parsed as HTML).

import { isRetryable } from './api.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** h('td', {class: 'num'}, 'text', child…): an element; `on*` attributes become listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'value' && 'value' in el) el.value = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children; null, undefined and false are left out (never shown as "null"). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled form field: <label class="field">Text<input …></label>. */
export function field(labelText, control) {
  return h('label', { class: 'field' }, labelText, control);
}

export function select(name, options, value) {
  return h(
    'select',
    { name, id: `f-${name}` },
    options.map(([optionValue, text]) =>
      h('option', { value: optionValue, selected: optionValue === (value ?? '') }, text),
    ),
  );
}

/** A table with a caption, header cells with scope and the given rows (arrays of cells, <td>s or <th>s). */
export function table(caption, headers, rows, attrs = {}) {
  return h(
    'table',
    attrs,
    caption ? h('caption', {}, caption) : null,
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headers.map((head) => (head instanceof Node ? head : h('th', { scope: 'col' }, head))),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((cells) =>
        h(
          'tr',
          {},
          cells.map((cell) =>
            cell instanceof HTMLElement && (cell.tagName === 'TD' || cell.tagName === 'TH')
              ? cell
              : h('td', {}, cell),
          ),
        ),
      ),
    ),
  );
}

export function numCell(value) {
  return h('td', { class: 'num' }, value);
}

/**
 * A readable error box for a failed call: the server's message and code, never a silent failure. When asking
 * again may help (no answer, 429, 503), a "Try again" button runs `retry`, by default the page drawn again.
 */
export function errorBox(error, what, retry = () => window.dispatchEvent(new Event('wameter:retry'))) {
  const code = error && error.code ? ` (${error.code}${error.status ? `, HTTP ${error.status}` : ''})` : '';
  return h(
    'div',
    { class: 'error-box', role: 'alert' },
    h('strong', {}, what ? `Could not ${what}.` : 'Something went wrong.'),
    `${error && error.message ? error.message : String(error)}${code}`,
    isRetryable(error) && retry
      ? h('div', {}, h('button', { type: 'button', class: 'retry', onclick: () => retry() }, 'Try again'))
      : null,
  );
}

/**
 * A WABA named in the page's address (a bookmark, a colleague's link) that is not among the key's: said, never
 * silently replaced by the key's other WABAs; null when there is nothing to say.
 */
export function wabaNotShown(asked, accounts) {
  if (!asked || accounts.some((account) => account.waba === asked)) return null;
  return h(
    'p',
    { class: 'warning-box', role: 'note', id: 'waba-not-shown' },
    `WABA ${asked}, named in this page’s address, is not among the WABAs this API key may read, so it is ` +
      'not chosen below: what this page shows is not that WABA’s.',
  );
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'muted', role: 'status' }, text);
}

/** Awaits `promise` with `text` shown in `parent` meanwhile (a slow server never leaves a page blank). */
export async function whileLoading(parent, promise, text = 'Loading…') {
  const shown = parent.appendChild(loading(text));
  try {
    return await promise;
  } finally {
    shown.remove();
  }
}

/**
 * Decimal string amount with its currency, e.g. "12,345.678 USD": the server's digits, never rounded or
 * summed as floats here, the whole part grouped by thousands as counts are ("1,204 units").
 */
export function money(amount, currency) {
  if (amount === null || amount === undefined) return 'unpriced';
  return `${groupThousands(String(amount))} ${currency ?? ''}`.trim();
}

/** "-1234567.5" → "-1,234,567.5" (string work only: no digit is lost to a float). */
export function groupThousands(decimal) {
  const match = /^(-?)(\d+)(\.\d+)?$/.exec(decimal);
  if (!match) return decimal;
  return `${match[1]}${match[2].replace(/\B(?=(\d{3})+$)/g, ',')}${match[3] ?? ''}`;
}

/**
 * The exact sum of decimal strings ("0.1" + "0.2" = "0.3", any number of decimals; never floats), trailing
 * zeros of the fraction left out.
 */
export function addDecimals(amounts) {
  let scale = 0;
  for (const amount of amounts) scale = Math.max(scale, (String(amount).split('.')[1] ?? '').length);
  let sum = 0n;
  for (const amount of amounts) {
    const text = String(amount);
    const negative = text.startsWith('-');
    const [whole, fraction = ''] = text.replace(/^[-+]/, '').split('.');
    const value = BigInt(`${whole}${fraction.padEnd(scale, '0')}`);
    sum += negative ? -value : value;
  }
  const sign = sum < 0n ? '-' : '';
  const digits = (sum < 0n ? -sum : sum).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, '');
  return `${sign}${whole}${fraction ? `.${fraction}` : ''}`;
}

/**
 * A total that may leave out charged units without a price: "12.3 USD" when all are priced, else
 * "at least 12.3 USD (2 charged units not priced)" — the figure is then a floor, never the bill.
 */
export function total(amount, currency, unpriced = 0) {
  if (!unpriced) return money(amount, currency);
  const what = `${count(unpriced, 'charged unit')} not priced`;
  if (amount === null || amount === undefined) return `no price known (${what})`;
  return `at least ${money(amount, currency)} (${what})`;
}

export function int(n) {
  return Number(n ?? 0).toLocaleString('en-US');
}

/** "1 unit", "2 units", "1,204 units". */
export function count(n, singular, plural = `${singular}s`) {
  return `${int(n)} ${Number(n) === 1 ? singular : plural}`;
}

/** "2025-10-03T10:05:03.000Z" → "2025-10-03 10:05:03 UTC". */
export function instant(iso) {
  if (!iso) return '';
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/**
 * An instant as the clock of `timeZone` reads it, "2025-09-30 21:54:06" (the WABA's local date decides its
 * calendar: the rate card in force, the month of its allowance); '' when either is missing or unknown.
 */
export function localTime(iso, timeZone) {
  if (!iso || !timeZone) return '';
  try {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat('en-CA', {
        timeZone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hourCycle: 'h23',
      })
        .formatToParts(new Date(iso))
        .map((part) => [part.type, part.value]),
    );
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
  } catch {
    return '';
  }
}

/**
 * For a page action that may be started again before its answer comes (a filter changed, a form sent twice):
 * `const begin = newestOnly()`, then in each run `const isNewest = begin()` and, after every await,
 * `if (!isNewest()) return` — an overtaken run's late answer draws nothing over the newer one's.
 */
export function newestOnly() {
  let runs = 0;
  return () => {
    const run = ++runs;
    return () => run === runs;
  };
}

const HOUR_MS = 3_600_000;

/** Offset of `zone`'s clock from UTC at instant `ms` (0 for UTC or an unknown zone). */
function zoneOffsetMs(ms, zone) {
  const local = localTime(new Date(ms).toISOString(), zone);
  return local ? Date.parse(`${local.replace(' ', 'T')}Z`) - Math.floor(ms / 1000) * 1000 : 0;
}

/**
 * The instant `zone`'s clock reads `day` ("2025-10-01") at `hour`:00 (UTC when no zone): of the offsets a
 * day before and a day after, the one whose instant reads that time (the earlier if both do: a clock set
 * back repeats an hour); when neither does, the clock skipped that time (summer time starting at midnight,
 * as in Santiago) and the day starts at the change itself, the later of the two.
 */
function zoneInstant(day, hour, zone) {
  return wallInstant(Date.parse(`${day}T00:00:00Z`) + hour * HOUR_MS, zone);
}

/** The instant `zone`'s clock reads the wall time `wall` (its digits as if UTC, in ms): as zoneInstant. */
function wallInstant(wall, zone) {
  const candidates = [
    wall - zoneOffsetMs(wall - 24 * HOUR_MS, zone),
    wall - zoneOffsetMs(wall + 24 * HOUR_MS, zone),
  ].sort((a, b) => a - b);
  const reads = (ms) => ms + zoneOffsetMs(ms, zone) === wall;
  return candidates.find(reads) ?? candidates[1];
}

/**
 * The axis's ticks between two instants: local midnights of `zone` (UTC without one), and every 6 hours of
 * its clock on short spans; each with its local day and hour.
 */
export function axisTicks(minMs, maxMs, givenZone, everyHours) {
  // A zone this browser does not know (newer than its time zone data) reads as UTC, never as no day at all.
  const zone = givenZone && localTime(new Date(minMs).toISOString(), givenZone) ? givenZone : undefined;
  const dayOf = (ms) =>
    (zone ? localTime(new Date(ms).toISOString(), zone) : new Date(ms).toISOString()).slice(0, 10);
  const ticks = [];
  const last = dayOf(maxMs);
  for (
    let day = dayOf(minMs);
    day <= last;
    day = new Date(Date.parse(`${day}T12:00:00Z`) + 24 * HOUR_MS).toISOString().slice(0, 10)
  ) {
    for (let hour = 0; hour < 24; hour += everyHours) {
      const ms = zoneInstant(day, hour, zone);
      if (ms >= minMs && ms <= maxMs) ticks.push({ ms, day, hour });
    }
  }
  return ticks;
}

/** The instant `zone`'s clock starts `day` ("2025-10-05"), as "2025-10-04T18:30:00Z" (UTC without a zone). */
export function startOfLocalDay(day, zone) {
  return new Date(zoneInstant(day, 0, zone)).toISOString().replace('.000Z', 'Z');
}

/** The day after `day` ("2025-10-31" → "2025-11-01"). */
export function nextDay(day) {
  return new Date(Date.parse(`${day}T12:00:00Z`) + 24 * HOUR_MS).toISOString().slice(0, 10);
}

/** The day (YYYY-MM-DD) `zone`'s clock reads at `iso` (UTC without a zone). */
export function localDay(iso, zone) {
  return (zone && zone !== 'UTC' ? localTime(iso, zone) : new Date(iso).toISOString()).slice(0, 10);
}

/**
 * The clock whose days a page reads for the WABAs chosen (one WABA, or all the key's when `waba` is empty):
 * their time zone when they share one, else UTC; `zones` lists the zones they keep (for saying so).
 */
export function clockOf(accounts, waba) {
  const chosen = waba ? accounts.filter((account) => account.waba === waba) : accounts;
  const zones = [...new Set(chosen.map((account) => account.time_zone))].sort();
  return { zone: zones.length === 1 ? zones[0] : 'UTC', zones };
}

/**
 * <input type="datetime-local"> value read on `zone`'s clock → ISO instant ("2025-09-30T00:00" in São Paulo
 * → "2025-09-30T03:00:00Z"), or '' when empty or no time.
 */
export function wallTimeToIso(value, zone) {
  const wall = Date.parse(`${value.length === 16 ? `${value}:00` : value}Z`);
  if (!value || Number.isNaN(wall)) return '';
  return new Date(wallInstant(wall, zone)).toISOString().replace('.000Z', 'Z');
}

/** An ISO instant as a datetime-local value on `zone`'s clock ("2025-09-30T03:00:00Z" → "2025-09-30T00:00"). */
export function isoToWallTime(iso, zone) {
  if (!iso || Number.isNaN(Date.parse(iso))) return '';
  const local = zone && zone !== 'UTC' ? localTime(iso, zone) : '';
  return local ? local.slice(0, 16).replace(' ', 'T') : new Date(iso).toISOString().slice(0, 16);
}

/** <input type="datetime-local"> value (read as UTC) → ISO instant, or '' when empty. */
export function localInputToIso(value) {
  if (!value) return '';
  return `${value.length === 16 ? `${value}:00` : value}Z`;
}

export function isoToLocalInput(iso) {
  return iso ? iso.slice(0, 16) : '';
}

/** Distinct colours for chart series (colour-blind-friendly order). */
export const PALETTE = [
  '#0f766e',
  '#d97706',
  '#2563eb',
  '#db2777',
  '#7c3aed',
  '#65a30d',
  '#0891b2',
  '#dc2626',
  '#a16207',
  '#4f46e5',
  '#059669',
  '#9333ea',
  '#ea580c',
  '#0284c7',
  '#be123c',
  '#4d7c0f',
];

/**
 * A finding's or an advice's words as the service's user reads them: the rating names both the command
 * line's flag and the service's setting ("--rate-cards; for the service, WAMETER_RATE_CARDS or …",
 * "--no-reported; for the service, WAMETER_REPORTED_RULES=off or …"); this page runs on the service, where
 * an era other than each date's is chosen by a re-rate (POST /v1/rerate's `as_of_rules`), not `--as-of-rules`.
 */
export function serviceWords(text) {
  return (
    String(text ?? '')
      .replace(/\(--([a-z-]+); for the service, ([^)]*)\)/g, (_, flag, setting) =>
        flag === 'rate-cards'
          ? `(the server’s rate cards: ${setting})`
          : `(the server’s setting: ${setting})`,
      )
      // The service rates each date under its era (the setting above decides PMP-2026-10's reported rules):
      // only a re-rate chooses another era (docs/service.md, "Re-rating and history"), never a flag.
      .replace(
        /that era was chosen with --as-of-rules\b/g,
        'a re-rate chose that era (POST /v1/rerate’s "as_of_rules")',
      )
  );
}

/** The categories of units (contract §4): the Units page's filter, and the categories a link to it may name. */
export const UNIT_CATEGORIES = [
  'marketing',
  'utility',
  'authentication',
  'authentication_international',
  'service',
  'referral_conversion',
  'business_initiated',
  'user_initiated',
];
