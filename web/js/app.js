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
  if (seq !== renderSeq) return;
  document.title = `wameter — ${document.querySelector(`#nav a[data-page="${name}"]`)?.textContent ?? ''}`;
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
window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (event) => {
  showNotice(`Unexpected error: ${event.reason?.message ?? event.reason}`, 'error');
});
route();

export { h };
