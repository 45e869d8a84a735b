// The dashboard shell: API key box, hash routes (#/page?filters), one page module per route.

import { getJson, getKey, setKey } from './api.js';
import { errorBox, h } from './dom.js';
import * as estimate from './pages/estimate.js';
import * as explain from './pages/explain.js';
import * as overview from './pages/overview.js';
import * as rateCards from './pages/rate-cards.js';
import * as reconciliation from './pages/reconciliation.js';
import * as units from './pages/units.js';

const PAGES = {
  overview,
  units,
  explain,
  'rate-cards': rateCards,
  estimate,
  reconciliation,
};

const main = document.getElementById('main');
const notice = document.getElementById('notice');
let accountsPromise = null;
let renderSeq = 0;

/**
 * What pages share: the WABAs this key sees (cached per key) and navigation. Each render gets its own copy
 * (`forRender`), whose `remember` does nothing once a newer render has started.
 */
const ctx = {
  accounts() {
    accountsPromise ??= getJson('/v1/dashboard/accounts').then((body) => body.accounts);
    accountsPromise.catch(() => {
      accountsPromise = null;
    });
    return accountsPromise;
  },
  navigate(page, params = {}) {
    const query = new URLSearchParams(
      Object.entries(params).filter(([, v]) => v !== undefined && v !== ''),
    ).toString();
    const hash = `#/${page}${query ? `?${query}` : ''}`;
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  /** Replaces the hash's query without reloading the page (filters kept in the address). */
  remember(page, params = {}) {
    const query = new URLSearchParams(
      Object.entries(params).filter(([, v]) => v !== undefined && v !== ''),
    ).toString();
    history.replaceState(null, '', `#/${page}${query ? `?${query}` : ''}`);
  },
  isCurrent(seq) {
    return seq === renderSeq;
  },
};

/** The context of render `seq`: a render that is no longer the latest never rewrites the address. */
function forRender(seq) {
  return {
    ...ctx,
    seq,
    remember(page, params) {
      if (seq === renderSeq) ctx.remember(page, params);
    },
  };
}

function parseHash() {
  const text = location.hash.replace(/^#\/?/, '');
  const [name, query = ''] = text.split('?');
  return { name: PAGES[name] ? name : 'overview', params: Object.fromEntries(new URLSearchParams(query)) };
}

function showNotice(text, kind = 'info') {
  notice.textContent = text;
  notice.className = `notice ${kind}`;
  notice.hidden = !text;
}

async function route() {
  const { name, params } = parseHash();
  const seq = ++renderSeq;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.page === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // Each render builds into its own view: a newer route replaces it, so whatever an earlier render (still
  // awaiting the server) adds later lands in a detached element and is never shown beside the new one.
  const view = h('div', { class: 'view', 'data-page': name });
  main.replaceChildren(view);
  // Named at once, not when the page's answers come: a slow server leaves no other page's title in the tab.
  document.title = `wameter — ${document.querySelector(`#nav a[data-page="${name}"]`)?.textContent ?? ''}`;
  if (!getKey()) {
    showNotice(
      'Enter your API key at the top right to see your data (it is kept in this browser only).',
      'info',
    );
  } else {
    showNotice('');
  }
  try {
    await PAGES[name].render(view, params, forRender(seq));
  } catch (error) {
    if (seq === renderSeq) view.append(errorBox(error, `show this page`));
  }
}

const keyForm = document.getElementById('key-form');
const keyInput = document.getElementById('api-key');
/** The key is never shown back: the box only says whether one is kept in this browser. */
function showKeyState() {
  keyInput.value = '';
  keyInput.placeholder = getKey() ? 'key saved (type to replace)' : 'paste your key';
}
showKeyState();
keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (key) setKey(key);
  showKeyState();
  accountsPromise = null;
  route();
});
document.getElementById('forget-key').addEventListener('click', () => {
  setKey('');
  showKeyState();
  accountsPromise = null;
  route();
});
window.addEventListener('hashchange', () => {
  route();
  // A page chosen from the keyboard (a link, a filter chip) starts reading at its content, not at the top.
  if (document.activeElement === document.body || document.activeElement?.closest('#nav')) main.focus();
});
// "Skip to content" moves the focus: followed as a link, "#main" would be a route and show the overview.
document.querySelector('a.skip').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});
// The link of the page shown draws it again (the address does not change, so no hashchange would).
document.getElementById('nav').addEventListener('click', (event) => {
  const link = event.target.closest('a[data-page]');
  if (link && link.getAttribute('href') === location.hash) {
    event.preventDefault();
    route();
  }
});
// "Try again" of an error box (dom.js, errorBox) draws the page again, its filters kept in the address.
window.addEventListener('wameter:retry', () => route());
window.addEventListener('unhandledrejection', (event) => {
  showNotice(`Unexpected error: ${event.reason?.message ?? event.reason}`, 'error');
});
route();

export { h };
