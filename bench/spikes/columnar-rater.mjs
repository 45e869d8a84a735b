// A FEASIBILITY SPIKE of a columnar rating engine — not wameter's code: no command, test or module uses it,
// and it is not kept equal to the engine. Kept so that the figures of docs/benchmarks.md §1, "Thirty-ninth
// session" (helper colspike) can be measured again. It does the engine's work for the bulk of the bench's
// file and leaves the rare rules out (listed there), so its speed is an upper bound on what a rewrite of this
// kind could reach; its key matching takes shortcuts (a key known by its length and two bytes) that are only
// right for the bench's generated lines.
//
// Reads contract NDJSON lines with a byte scanner (JSON.parse only for Meta webhook bodies and for lines the
// scanner refuses), interns message ids / users / business numbers / WABAs to integers (byte hash tables, no
// string per line), keeps per-message, per-inbound and per-pair state in typed arrays (struct of arrays),
// rates in batch: every delivered message and inbound sorted by time (a Float64Array's native sort;
// SORT=radix: an LSD radix sort), pairs walked in that one global order (PMP-2025 rules), each unit priced as
// it is decided (global time order, as volume tiers need). Units go to a counting sink: count and amount per (era, category, type).
//
// usage (after `npm run build`, with the bench's 1M file and its .accounts.json beside it):
//   node bench/spikes/columnar-rater.mjs dist FILE [summary|count|dump OUT] [stream|sync|handle]
import { createReadStream, openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { open } from 'node:fs/promises';

const [DIST, FILE, MODE = 'summary', DUMP_OUT] = process.argv.slice(2);
const READ = process.argv.includes('sync') ? 'sync' : process.argv.includes('handle') ? 'handle' : 'stream';
// STAGE (experiments): split = lines only; scan = contract lines scanned, webhooks JSON.parse'd, nothing kept
const STAGE = process.env.STAGE ?? 'all';
const S_SPLIT = STAGE === 'split';
const S_SCAN = STAGE === 'scan';
const S_INTERN = STAGE === 'intern';
const t0 = performance.now();
const c0 = process.cpuUsage();
const imp = (p) => import(pathToFileURL(`${DIST}/src/${p}`).href);
const { loadRatingSetup } = await imp('use-cases/load-rating-setup.js');
const { loadBundledMarketTable } = await imp('ingest/rate-card-files.js');
const { hasAuthInternationalRate } = await imp('core/eras.js');

const setup = (await loadRatingSetup({ accountsPath: FILE.replace(/\.ndjson$/, '.accounts.json') })).value;
const table = (await loadBundledMarketTable()).value;
const tSetup = performance.now();
const cSetup = process.cpuUsage(c0);

const HOUR = 3_600_000;
const DAY = 86_400_000;
const CSW_MS = 24 * HOUR;
const FEP_ANSWER_MS = 24 * HOUR;
const FEP_MS = 72 * HOUR;
const SKEW_MS = 5 * 60_000;

// ------------------------------------------------------------------------------------------------------
// Interning: open addressing over FNV-1a of the bytes; keys kept in one byte arena. An entry's index is the
// integer the rest of the engine uses.
// A DataView over the buffer being read (one a chunk): ids hashed and compared four bytes at a time
let viewBuffer = null;
let view = null;
function viewOf(b) {
  if (b === scratch) return scratchView;
  if (b !== viewBuffer) {
    viewBuffer = b;
    view = new DataView(b.buffer, b.byteOffset, b.length);
  }
  return view;
}
const RECENT_MASK = (1 << +(process.env.RECENT_BITS ?? 12)) - 1;
const USE_RECENT = process.env.RECENT_BITS !== '0';
const COUNT_HITS = process.env.COUNT_HITS === '1';
class Interner {
  // slots: [hash, index + 1, arena offset, length] per slot, so that a look-up touches one cache line of the
  // table and the arena's bytes of the candidate (a table of separate arrays cost four cache misses a look-up)
  constructor(bits) {
    this.size = 1 << bits;
    this.mask = this.size - 1;
    this.slots = new Int32Array(this.size * 4);
    this.cap = this.size >> 1;
    this.off = new Int32Array(this.cap);
    this.len = new Uint16Array(this.cap);
    this.arena = Buffer.allocUnsafe(this.cap * 16);
    this.arenaView = new DataView(this.arena.buffer, this.arena.byteOffset, this.arena.length);
    this.used = 0;
    this.count = 0;
    this.isNew = false;
    this.recent = new Int32Array((RECENT_MASK + 1) * 4);
    this.hits = 0;
    this.calls = 0;
  }
  intern(b, s, e) {
    // the hash reads at most the last 16 bytes, four at a time (ids differ at their end; the compare is whole)
    if (COUNT_HITS) this.calls++;
    const n = e - s;
    let h = n;
    let i = e - 16 > s ? e - 16 : s;
    const dv = viewOf(b);
    for (; i + 4 <= e; i += 4) h = Math.imul(h ^ dv.getInt32(i, true), -1640531535);
    for (; i < e; i++) h = Math.imul(h ^ b[i], 16777619);
    h ^= h >>> 16;
    // the recently looked-up keys first (a small direct-mapped table that stays in cache: a message's
    // statuses come close together in a file, and the big table's slot is a cache miss)
    const recent = this.recent;
    const r = (h & RECENT_MASK) << 2;
    if (USE_RECENT && recent[r] === h && recent[r + 3] === n && recent[r + 1] !== 0) {
      const a = this.arena;
      const adv = this.arenaView;
      const o = recent[r + 2] - s;
      let j = s;
      while (j + 4 <= e && adv.getInt32(o + j, true) === dv.getInt32(j, true)) j += 4;
      while (j < e && a[o + j] === b[j]) j++;
      if (j === e) {
        this.isNew = false;
        if (COUNT_HITS) this.hits++;
        return recent[r + 1] - 1;
      }
    }
    const slots = this.slots;
    const mask = this.mask;
    let slot = (h ^ (h >>> 15)) & mask;
    for (;;) {
      const q = slot << 2;
      const v = slots[q + 1];
      if (v === 0) break;
      if (slots[q] === h && slots[q + 3] === n) {
        const a = this.arena;
        const adv = this.arenaView;
        const o = slots[q + 2] - s;
        let j = s;
        while (j + 4 <= e && adv.getInt32(o + j, true) === dv.getInt32(j, true)) j += 4;
        while (j < e && a[o + j] === b[j]) j++;
        if (j === e) {
          this.isNew = false;
          recent[r] = h;
          recent[r + 1] = v;
          recent[r + 2] = slots[q + 2];
          recent[r + 3] = n;
          return v - 1;
        }
      }
      slot = (slot + 1) & mask;
    }
    if (this.count === this.cap) {
      this.grow();
      return this.intern(b, s, e);
    }
    if (this.used + n > this.arena.length) {
      const arena = Buffer.allocUnsafe(this.arena.length * 2);
      this.arena.copy(arena, 0, 0, this.used);
      this.arena = arena;
      this.arenaView = new DataView(arena.buffer, arena.byteOffset, arena.length);
    }
    const idx = this.count++;
    const o = this.used;
    const a = this.arena;
    for (let i = 0; i < n; i++) a[o + i] = b[s + i];
    this.off[idx] = o;
    this.len[idx] = n;
    this.used = o + n;
    const q = slot << 2;
    slots[q] = h;
    slots[q + 1] = idx + 1;
    slots[q + 2] = o;
    slots[q + 3] = n;
    recent[r] = h;
    recent[r + 1] = idx + 1;
    recent[r + 2] = o;
    recent[r + 3] = n;
    this.isNew = true;
    return idx;
  }
  grow() {
    const old = this.slots;
    this.size *= 2;
    this.mask = this.size - 1;
    this.slots = new Int32Array(this.size * 4);
    this.cap = this.size >> 1;
    const off = new Int32Array(this.cap);
    off.set(this.off);
    this.off = off;
    const len = new Uint16Array(this.cap);
    len.set(this.len);
    this.len = len;
    for (let q = 0; q < old.length; q += 4) {
      if (old[q + 1] === 0) continue;
      const h = old[q];
      let slot = (h ^ (h >>> 15)) & this.mask;
      while (this.slots[(slot << 2) + 1] !== 0) slot = (slot + 1) & this.mask;
      this.slots.set(old.subarray(q, q + 4), slot << 2);
    }
  }
  text(idx) {
    return this.arena.latin1Slice(this.off[idx], this.off[idx] + this.len[idx]);
  }
}
const scratch = Buffer.allocUnsafe(4096);
const scratchView = new DataView(scratch.buffer, scratch.byteOffset, scratch.length);
function internString(interner, text) {
  const n = scratch.latin1Write(text, 0);
  return interner.intern(scratch, 0, n);
}

const ids = new Interner(+(process.env.IDBITS ?? 20)); // message ids (outbound and inbound)
const users = new Interner(15);
const businesses = new Interner(6);
const wabas = new Interner(5);

// ------------------------------------------------------------------------------------------------------
// Messages (struct of arrays, indexed by the id's integer)
const F_OUTBOUND = 1;
const F_FROM_READ = 2;
const F_FAILED = 4;
const F_INBOUND = 8;
const F_STATUS = 16;
let mCap = 0;
let mFlags, mSent, mDeliv, mStatusMin, mPair, mTmpl, mWaba;
function growMessages(need) {
  let cap = Math.max(mCap * 2, 1 << 16);
  while (cap < need) cap *= 2;
  const g = (Ctor, old, fill) => {
    const a = new Ctor(cap);
    if (old) a.set(old);
    if (fill !== undefined) a.fill(fill, mCap);
    return a;
  };
  mFlags = g(Uint8Array, mFlags);
  mSent = g(Float64Array, mSent, Infinity);
  mDeliv = g(Float64Array, mDeliv, Infinity);
  mStatusMin = g(Float64Array, mStatusMin, Infinity);
  mPair = g(Int32Array, mPair, -1);
  mTmpl = g(Int8Array, mTmpl);
  mWaba = g(Int16Array, mWaba, -1);
  mCap = cap;
}
growMessages(1);

// Inbounds (one row per distinct inbound id)
let iCap = 1 << 15;
let iCount = 0;
let iPair = new Int32Array(iCap);
let iAt = new Float64Array(iCap);
let iRef = new Uint8Array(iCap);
function growInbounds() {
  iCap *= 2;
  const p = new Int32Array(iCap);
  p.set(iPair);
  iPair = p;
  const a = new Float64Array(iCap);
  a.set(iAt);
  iAt = a;
  const r = new Uint8Array(iCap);
  r.set(iRef);
  iRef = r;
}

// Pairs (business number, user): open addressing over the two integers
let pCap = 1 << 16;
let pCount = 0;
let pSlots = new Int32Array(pCap * 2);
let pBiz = new Int32Array(pCap);
let pUser = new Int32Array(pCap);
let pWaba = new Int16Array(pCap);
function growPairs() {
  pCap *= 2;
  const b = new Int32Array(pCap);
  b.set(pBiz);
  pBiz = b;
  const u = new Int32Array(pCap);
  u.set(pUser);
  pUser = u;
  const w = new Int16Array(pCap);
  w.set(pWaba);
  pWaba = w;
  pSlots = new Int32Array(pCap * 2);
  const mask = pCap * 2 - 1;
  for (let p = 0; p < pCount; p++) {
    let slot = (Math.imul(pBiz[p] * 0x10001 + pUser[p], -1640531535) >>> 15) & mask;
    while (pSlots[slot] !== 0) slot = (slot + 1) & mask;
    pSlots[slot] = p + 1;
  }
}
function pairOf(biz, user, waba) {
  const mask = pCap * 2 - 1;
  let slot = (Math.imul(biz * 0x10001 + user, -1640531535) >>> 15) & mask;
  for (;;) {
    const v = pSlots[slot];
    if (v === 0) break;
    if (pBiz[v - 1] === biz && pUser[v - 1] === user) return v - 1;
    slot = (slot + 1) & mask;
  }
  if (pCount === pCap) {
    growPairs();
    return pairOf(biz, user, waba);
  }
  const p = pCount++;
  pBiz[p] = biz;
  pUser[p] = user;
  pWaba[p] = waba;
  pSlots[slot] = p + 1;
  return p;
}

// ------------------------------------------------------------------------------------------------------
// Events into the arrays
let stats = { lines: 0, contract: 0, webhooks: 0, fallbacks: 0, errors: 0, dupInbound: 0, statuses: 0 };
const TMPL = { marketing: 1, utility: 2, authentication: 3 };

function messageIndex(b, s, e) {
  const m = ids.intern(b, s, e);
  if (m >= mCap) growMessages(m + 1);
  return m;
}
function onInbound(m, at, waba, biz, user, hasRef) {
  if (mFlags[m] & F_INBOUND) {
    stats.dupInbound++;
    return;
  }
  mFlags[m] |= F_INBOUND;
  if (iCount === iCap) growInbounds();
  iPair[iCount] = pairOf(biz, user, waba);
  iAt[iCount] = at;
  iRef[iCount] = hasRef;
  iCount++;
}
function onOutbound(m, at, waba, biz, user, tmpl, deliveredAt, failed) {
  const f = mFlags[m];
  if (f & F_OUTBOUND) {
    if (at < mSent[m]) mSent[m] = at; // a copy (duplicate line): the rule of copies left out, same values here
  } else {
    mFlags[m] = f | F_OUTBOUND;
    mSent[m] = at;
    mPair[m] = pairOf(biz, user, waba);
    mWaba[m] = waba;
    mTmpl[m] = tmpl;
  }
  if (failed) mFlags[m] |= F_FAILED;
  if (deliveredAt === deliveredAt) markDelivered(m, deliveredAt, false);
}
function markDelivered(m, at, isRead) {
  const f = mFlags[m];
  if (isRead) {
    if (mDeliv[m] === Infinity || (f & F_FROM_READ && at < mDeliv[m])) {
      mDeliv[m] = at;
      mFlags[m] = f | F_FROM_READ;
    }
  } else if (f & F_FROM_READ || at < mDeliv[m]) {
    mDeliv[m] = at;
    mFlags[m] = f & ~F_FROM_READ;
  }
}
// status: 1 sent, 2 delivered, 3 read, 4 failed, 5 other (played…: read)
function onStatus(m, at, status) {
  stats.statuses++;
  mFlags[m] |= F_STATUS;
  if (at < mStatusMin[m]) mStatusMin[m] = at;
  if (status === 2) markDelivered(m, at, false);
  else if (status === 3) markDelivered(m, at, true);
  else if (status === 4) mFlags[m] |= F_FAILED;
}

// ------------------------------------------------------------------------------------------------------
// Time: ISO-8601 from bytes, days from the civil date (Howard Hinnant's algorithm)
function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
const d2 = (b, i) => (b[i] - 48) * 10 + b[i + 1] - 48;
function isoMs(b, s, e) {
  if (e - s < 20 || b[s + 4] !== 45 || b[s + 7] !== 45 || b[s + 10] !== 84) return NaN;
  const y = d2(b, s) * 100 + d2(b, s + 2);
  let ms =
    (daysFromCivil(y, d2(b, s + 5), d2(b, s + 8)) * 86400 +
      d2(b, s + 11) * 3600 +
      d2(b, s + 14) * 60 +
      d2(b, s + 17)) *
    1000;
  let i = s + 19;
  if (b[i] === 46) {
    let scale = 100;
    for (i++; i < e && b[i] >= 48 && b[i] <= 57; i++) {
      ms += (b[i] - 48) * scale;
      scale /= 10;
    }
    ms = Math.floor(ms);
  }
  const c = b[i];
  if (c === 90 && i + 1 === e) return ms;
  if ((c === 43 || c === 45) && i + 6 === e && b[i + 3] === 58) {
    const off = (d2(b, i + 1) * 60 + d2(b, i + 4)) * 60000;
    return c === 43 ? ms - off : ms + off;
  }
  return NaN;
}
function numberMs(b, s, e) {
  let v = 0;
  for (let i = s; i < e; i++) {
    const c = b[i];
    if (c < 48 || c > 57) return NaN;
    v = v * 10 + c - 48;
  }
  return v * 1000;
}

// ------------------------------------------------------------------------------------------------------
// The scanner of a contract line (a flat object; nested values skipped). Returns false when it cannot read
// the line (an escape, another layout, a webhook body): the line is then JSON.parse'd.
function skipNested(b, i, e) {
  let depth = 0;
  for (; i < e; i++) {
    const c = b[i];
    if (c === 34) {
      for (i++; i < e && b[i] !== 34; i++) if (b[i] === 92) i++;
    } else if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}
function scanLine(b, s, e) {
  if (b[s] !== 123) return false;
  let i = s + 1;
  let kind = 0;
  let at = NaN;
  let idS = -1,
    idE = -1,
    wabaS = -1,
    wabaE = -1,
    bizS = -1,
    bizE = -1,
    userS = -1,
    userE = -1;
  let status = 0;
  let tmpl = 0;
  let hasRef = 0;
  let deliveredAt = NaN;
  let failed = false;
  for (;;) {
    while (b[i] === 32) i++;
    if (b[i] !== 34) return false;
    const ks = ++i;
    while (i < e && b[i] !== 34) {
      if (b[i] === 92) return false;
      i++;
    }
    const kl = i - ks;
    i++;
    while (b[i] === 32) i++;
    if (b[i] !== 58) return false;
    i++;
    while (b[i] === 32) i++;
    const c = b[i];
    let vs = i,
      ve;
    let type; // 1 string, 2 number, 3 null, 4 nested, 5 true, 6 false
    if (c === 34) {
      vs = ++i;
      while (i < e && b[i] !== 34) {
        if (b[i] === 92) return false;
        i++;
      }
      ve = i++;
      type = 1;
    } else if ((c >= 48 && c <= 57) || c === 45) {
      i++;
      while (
        i < e &&
        ((b[i] >= 48 && b[i] <= 57) ||
          b[i] === 46 ||
          b[i] === 101 ||
          b[i] === 69 ||
          b[i] === 43 ||
          b[i] === 45)
      )
        i++;
      ve = i;
      type = 2;
    } else if (c === 110) {
      i += 4;
      type = 3;
    } else if (c === 116) {
      i += 4;
      type = 5;
    } else if (c === 102) {
      i += 5;
      type = 6;
    } else if (c === 123 || c === 91) {
      i = skipNested(b, i, e);
      if (i < 0) return false;
      type = 4;
    } else return false;
    const k0 = b[ks];
    if (kl === 4 && k0 === 107) {
      // kind
      if (type !== 1) return false;
      const v0 = b[vs];
      kind = v0 === 105 ? 1 : v0 === 111 ? 2 : v0 === 115 ? 3 : -1; // inbound, outbound, status
    } else if (kl === 2 && k0 === 97) {
      at = type === 1 ? isoMs(b, vs, ve) : type === 2 ? numberMs(b, vs, ve) : NaN;
    } else if (kl === 2 && k0 === 105) {
      if (type !== 1) return false;
      idS = vs;
      idE = ve;
    } else if (kl === 4 && k0 === 119) {
      wabaS = vs;
      wabaE = ve;
    } else if (kl === 8 && k0 === 98) {
      bizS = vs;
      bizE = ve;
    } else if (kl === 4 && k0 === 117) {
      userS = vs;
      userE = ve;
    } else if (kl === 6 && k0 === 115) {
      const v0 = b[vs];
      status = v0 === 115 ? 1 : v0 === 100 ? 2 : v0 === 114 ? 3 : v0 === 102 ? 4 : 5;
    } else if (kl === 8 && k0 === 116) {
      if (type === 1) {
        const v0 = b[vs];
        tmpl = v0 === 109 ? 1 : v0 === 117 ? 2 : v0 === 97 ? 3 : -1;
      }
    } else if (kl === 8 && k0 === 114) {
      hasRef = type === 4 ? 1 : 0;
    } else if (kl === 12 && k0 === 100) {
      deliveredAt = type === 1 ? isoMs(b, vs, ve) : type === 2 ? numberMs(b, vs, ve) : NaN;
    } else if (kl === 6 && k0 === 102) {
      failed = type === 5;
    } else if (kl === 6 && k0 === 111) {
      return false; // "object": a webhook body
    }
    while (b[i] === 32) i++;
    if (b[i] === 44) {
      i++;
      continue;
    }
    if (b[i] === 125) break;
    return false;
  }
  if (at !== at || idS < 0 || tmpl < 0) return false;
  stats.contract++;
  if (S_SCAN) return true;
  if (S_INTERN) {
    ids.intern(b, idS, idE);
    if (kind !== 3) {
      wabas.intern(b, wabaS, wabaE);
      businesses.intern(b, bizS, bizE);
      users.intern(b, userS, userE);
    }
    return true;
  }
  if (kind === 3) {
    onStatus(messageIndex(b, idS, idE), at, status);
    return true;
  }
  if (wabaS < 0 || bizS < 0 || userS < 0) return false;
  const m = messageIndex(b, idS, idE);
  const waba = wabas.intern(b, wabaS, wabaE);
  const biz = businesses.intern(b, bizS, bizE);
  const user = users.intern(b, userS, userE);
  if (kind === 1) onInbound(m, at, waba, biz, user, hasRef);
  else if (kind === 2) onOutbound(m, at, waba, biz, user, tmpl, deliveredAt, failed);
  else return false;
  return true;
}

// JSON.parse path: Meta webhook bodies (statuses and messages) and contract lines the scanner refused
function instantOf(v) {
  if (typeof v === 'number') return v * 1000;
  if (typeof v !== 'string') return NaN;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const n = scratch.latin1Write(v, 0);
  return isoMs(scratch, 0, n);
}
const STATUS = { sent: 1, delivered: 2, read: 3, failed: 4 };
function parsedLine(text) {
  let o;
  try {
    o = JSON.parse(text);
  } catch {
    stats.errors++;
    return;
  }
  if (o && Array.isArray(o.entry)) {
    stats.webhooks++;
    if (S_SCAN) return;
    for (const entry of o.entry) {
      const waba = internString(wabas, String(entry.id));
      for (const change of entry.changes ?? []) {
        const v = change.value;
        if (!v) continue;
        const biz = internString(businesses, String(v.metadata?.phone_number_id ?? ''));
        for (const st of v.statuses ?? []) {
          const m = internString(ids, st.id);
          if (m >= mCap) growMessages(m + 1);
          onStatus(m, instantOf(st.timestamp), STATUS[st.status] ?? 5);
        }
        for (const msg of v.messages ?? []) {
          const m = internString(ids, msg.id);
          if (m >= mCap) growMessages(m + 1);
          onInbound(
            m,
            instantOf(msg.timestamp),
            waba,
            biz,
            internString(users, msg.from),
            msg.referral ? 1 : 0,
          );
        }
      }
    }
    return;
  }
  stats.fallbacks++;
  if (!o || typeof o.id !== 'string') {
    stats.errors++;
    return;
  }
  const m = internString(ids, o.id);
  if (m >= mCap) growMessages(m + 1);
  const at = instantOf(o.at);
  if (o.kind === 'status') return onStatus(m, at, STATUS[o.status] ?? 5);
  const waba = internString(wabas, o.waba);
  const biz = internString(businesses, o.business);
  const user = internString(users, o.user);
  if (o.kind === 'inbound') onInbound(m, at, waba, biz, user, o.referral ? 1 : 0);
  else if (o.kind === 'outbound')
    onOutbound(m, at, waba, biz, user, TMPL[o.template] ?? 0, instantOf(o.delivered_at), o.failed === true);
  else stats.errors++;
}

// Variant (WH=scan): Meta's status webhook bodies walked over their bytes too, JSON.parse only when a body
// holds anything else (user messages, an escape, another layout). Only the statuses' id, status and timestamp
// are read (what rating needs when the send log has the message); every other value is skipped.
const WH_SCAN = process.env.WH === 'scan';
let B, P, E, FAIL, SS, SE;
function ws() {
  for (;;) {
    const c = B[P];
    if (c === 32 || c === 10 || c === 13 || c === 9) P++;
    else return;
  }
}
function str() {
  if (B[P] !== 34) {
    FAIL = true;
    return;
  }
  SS = ++P;
  while (P < E && B[P] !== 34) {
    if (B[P] === 92) {
      FAIL = true;
      return;
    }
    P++;
  }
  SE = P++;
}
function skipValue() {
  const c = B[P];
  if (c === 34) str();
  else if (c === 123 || c === 91) {
    P = skipNested(B, P, E);
    if (P < 0) FAIL = true;
  } else while (P < E && B[P] !== 44 && B[P] !== 125 && B[P] !== 93 && B[P] !== 32) P++;
}
// Walks an object: for each key calls onKey(keyStart, keyLength) with P at the value; onKey consumes it
function walkObject(onKey) {
  ws();
  if (B[P] !== 123) return (FAIL = true);
  P++;
  ws();
  if (B[P] === 125) return P++;
  for (;;) {
    ws();
    str();
    if (FAIL) return;
    const ks = SS,
      kl = SE - SS;
    ws();
    if (B[P] !== 58) return (FAIL = true);
    P++;
    ws();
    onKey(ks, kl);
    if (FAIL) return;
    ws();
    if (B[P] === 44) {
      P++;
      continue;
    }
    if (B[P] === 125) return P++;
    return (FAIL = true);
  }
}
function walkArray(onItem) {
  ws();
  if (B[P] !== 91) return (FAIL = true);
  P++;
  ws();
  if (B[P] === 93) return P++;
  for (;;) {
    ws();
    onItem();
    if (FAIL) return;
    ws();
    if (B[P] === 44) {
      P++;
      continue;
    }
    if (B[P] === 93) return P++;
    return (FAIL = true);
  }
}
let stId0, stId1, stStatus, stAt;
function onStatusKey(ks, kl) {
  const k0 = B[ks];
  if (kl === 2 && k0 === 105 && B[ks + 1] === 100) {
    str();
    stId0 = SS;
    stId1 = SE;
  } else if (kl === 6 && k0 === 115 && B[ks + 5] === 115) {
    str();
    const v0 = B[SS];
    stStatus = v0 === 115 ? 1 : v0 === 100 ? 2 : v0 === 114 ? 3 : v0 === 102 ? 4 : 5;
  } else if (kl === 9 && k0 === 116) {
    if (B[P] === 34) {
      str();
      stAt = numberMs(B, SS, SE);
    } else {
      const s0 = P;
      skipValue();
      stAt = numberMs(B, s0, P);
    }
  } else skipValue();
}
function onStatusItem() {
  stId0 = -1;
  stStatus = 0;
  stAt = NaN;
  walkObject(onStatusKey);
  if (FAIL) return;
  if (stId0 < 0 || stAt !== stAt) return (FAIL = true);
  WH_STATUSES.push(stId0, stId1, stStatus, stAt);
}
function onValueKey(ks, kl) {
  if (kl === 8 && B[ks] === 115)
    walkArray(onStatusItem); // statuses
  else if (kl === 8 && B[ks] === 109 && B[ks + 2] === 115)
    FAIL = true; // messages (not metadata): JSON.parse
  else skipValue();
}
const onChangeKey = (ks, kl) => (kl === 5 && B[ks] === 118 ? walkObject(onValueKey) : skipValue());
const onChangeItem = () => walkObject(onChangeKey);
const onEntryKey = (ks, kl) => (kl === 7 && B[ks] === 99 ? walkArray(onChangeItem) : skipValue());
const onEntryItem = () => walkObject(onEntryKey);
const onBodyKey = (ks, kl) => (kl === 5 && B[ks] === 101 ? walkArray(onEntryItem) : skipValue());
const WH_STATUSES = [];
function scanWebhook(b, s, e) {
  B = b;
  P = s;
  E = e;
  FAIL = false;
  WH_STATUSES.length = 0;
  walkObject(onBodyKey);
  if (process.env.WH_DEBUG && (FAIL || P !== e))
    console.log('wh fail at', P - s, e - s, JSON.stringify(b.latin1Slice(Math.max(s, P - 30), P + 10)));
  if (FAIL || P !== e) return false;
  stats.webhooks++;
  for (let k = 0; k < WH_STATUSES.length; k += 4) {
    onStatus(messageIndex(b, WH_STATUSES[k], WH_STATUSES[k + 1]), WH_STATUSES[k + 3], WH_STATUSES[k + 2]);
  }
  return true;
}

function line(b, s, e) {
  if (e > s && b[e - 1] === 13) e--;
  if (e <= s) return;
  stats.lines++;
  if (S_SPLIT) return;
  if (scanLine(b, s, e)) return;
  if (WH_SCAN && b[s + 2] === 111 && scanWebhook(b, s, e)) return;
  parsedLine(b.utf8Slice(s, e));
}

// ------------------------------------------------------------------------------------------------------
// Reading: 64 KiB chunks as the engine's reader; a line cut by a chunk's end is joined with the next chunk's
// first line (one small copy), every other line is scanned where it is.
let carry = null;
function chunk(b) {
  let from = 0;
  let nl = b.indexOf(10);
  if (carry !== null) {
    if (nl === -1) {
      carry = Buffer.concat([carry, b]);
      return;
    }
    const joined = Buffer.concat([carry, b.subarray(0, nl)]);
    carry = null;
    line(joined, 0, joined.length);
    from = nl + 1;
    nl = b.indexOf(10, from);
  }
  while (nl !== -1) {
    line(b, from, nl);
    from = nl + 1;
    nl = b.indexOf(10, from);
  }
  if (from < b.length) carry = Buffer.from(b.subarray(from));
}
if (READ === 'stream') {
  for await (const b of createReadStream(FILE, { highWaterMark: 65536 })) chunk(b);
} else if (READ === 'handle') {
  // asynchronous reads into one buffer, reused (no fresh 64 KiB buffer a chunk, as a stream makes)
  const fh = await open(FILE, 'r');
  const b = Buffer.allocUnsafe(65536);
  for (let n; (n = (await fh.read(b, 0, 65536, null)).bytesRead) > 0;)
    chunk(n === 65536 ? b : b.subarray(0, n));
  await fh.close();
} else {
  const fd = openSync(FILE, 'r');
  const b = Buffer.allocUnsafe(65536);
  for (let n; (n = readSync(fd, b, 0, 65536, null)) > 0;) chunk(n === 65536 ? b : b.subarray(0, n));
  closeSync(fd);
}
if (carry !== null) line(carry, 0, carry.length);
const tRead = performance.now();
const cRead = process.cpuUsage(c0);

// ------------------------------------------------------------------------------------------------------
// Accounts, calendars, markets, cards: small tables indexed by the interned integers
const accountByWaba = new Map(setup.accounts.map((a) => [a.waba, a]));
const nW = wabas.count;
const wZone = [];
const wCurrency = new Int16Array(nW);
const wPortfolio = new Int16Array(nW);
const wPrimary = [];
const wAuthStart = new Float64Array(nW).fill(Infinity);
const currencyIdx = new Map();
const portfolioIdx = new Map();
for (let w = 0; w < nW; w++) {
  const waba = wabas.text(w);
  const a = accountByWaba.get(waba) ?? { timeZone: 'UTC', currency: 'USD', portfolio: waba };
  wZone.push(a.timeZone);
  if (!currencyIdx.has(a.currency)) currencyIdx.set(a.currency, currencyIdx.size);
  wCurrency[w] = currencyIdx.get(a.currency);
  const portfolio = a.portfolio ?? waba;
  if (!portfolioIdx.has(portfolio)) portfolioIdx.set(portfolio, portfolioIdx.size);
  wPortfolio[w] = portfolioIdx.get(portfolio);
  wPrimary.push(a.primaryCountry);
  if (a.authInternational) wAuthStart[w] = a.authInternational.startMs; // exceptions per country left out
}
const currencies = [...currencyIdx.keys()];

// Local day of an instant in a WABA's zone: the zone's offset at a UTC day's first and last second, once
const formatters = wZone.map(
  (zone) =>
    new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    }),
);
function offsetMs(w, t) {
  const p = formatters[w].formatToParts(t);
  const get = (type) => Number(p.find((x) => x.type === type).value);
  return (
    Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) -
    Math.floor(t / 1000) * 1000
  );
}
const SPAN_DAYS = 4096;
let baseDay = NaN;
const dayOffA = new Float64Array(nW * SPAN_DAYS).fill(NaN);
const dayOffB = new Float64Array(nW * SPAN_DAYS);
function localDay(w, t) {
  const ud = Math.floor(t / DAY);
  const k = ud - baseDay;
  if (k < 0 || k >= SPAN_DAYS) return Math.floor((t + offsetMs(w, t)) / DAY);
  const slot = w * SPAN_DAYS + k;
  let a = dayOffA[slot];
  if (a !== a) {
    a = dayOffA[slot] = offsetMs(w, ud * DAY);
    dayOffB[slot] = offsetMs(w, ud * DAY + DAY - 1000);
  }
  if (a === dayOffB[slot]) return Math.floor((t + a) / DAY);
  return Math.floor((t + offsetMs(w, t)) / DAY); // a day the zone's offset changes
}
function civil(day) {
  const z = day + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return { y: yoe + era * 400 + (m <= 2 ? 1 : 0), m, d };
}
const dateText = (day) => {
  const { y, m, d } = civil(day);
  return `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
};
const PMP_2025_DAY = daysFromCivil(2025, 7, 1);
const PMP_2026_DAY = daysFromCivil(2026, 10, 1);

// Markets: names to integers; a user's country placed once (libphonenumber's metadata, through wameter's
// placeRecipient behind the resolver); a country's market per local day cached
const marketNames = [...setup.markets.names];
const marketIdx = new Map(marketNames.map((n, i) => [n, i]));
const countryNames = [];
const countryIdx = new Map();
const uCountry = new Int16Array(users.count).fill(-2); // -2 not placed yet, -1 unknown
function countryOfUser(u) {
  let c = uCountry[u];
  if (c !== -2) return c;
  const r = setup.markets.resolve(users.text(u), '2025-10-01');
  if (r.country === null) c = -1;
  else {
    if (!countryIdx.has(r.country)) {
      countryIdx.set(r.country, countryNames.length);
      countryNames.push(r.country);
    }
    c = countryIdx.get(r.country);
  }
  uCountry[u] = c;
  return c;
}
const MAX_COUNTRIES = 512;
const marketCache = new Int16Array(MAX_COUNTRIES * SPAN_DAYS).fill(-1);
const authIntCache = new Int8Array(MAX_COUNTRIES * SPAN_DAYS).fill(-1);
function marketOf(c, day) {
  const slot = c * SPAN_DAYS + (day - baseDay);
  let mk = marketCache[slot];
  if (mk < 0) {
    const date = dateText(day);
    mk = marketCache[slot] = marketIdx.get(table.marketOf(countryNames[c], date));
    authIntCache[slot] = hasAuthInternationalRate(countryNames[c], date) ? 1 : 0;
  }
  return mk;
}

// Rate cards: per (currency, local day) the card in force; per card a rate table [market × column]
const COL = { marketing: 0, utility: 1, authentication: 2, authentication_international: 3, service: 4 };
const NCOL = 5;
const cards = [];
const cardRates = [];
const cardIdx = new Map();
const cardCache = new Int16Array(currencies.length * SPAN_DAYS).fill(-2);
function cardOf(cur, day) {
  const slot = cur * SPAN_DAYS + (day - baseDay);
  let k = cardCache[slot];
  if (k === -2) {
    const card = setup.rateBook.cardInForce(currencies[cur], dateText(day));
    if (!card) k = -1;
    else {
      if (!cardIdx.has(card)) {
        const rates = new Int32Array(marketNames.length * NCOL).fill(-1);
        for (const [market, byCat] of card.rates) {
          const mk = marketIdx.get(market);
          if (mk === undefined) continue;
          for (const [cat, col] of Object.entries(COL))
            if (byCat[cat] !== undefined) rates[mk * NCOL + col] = byCat[cat];
        }
        cardIdx.set(card, cards.length);
        cards.push(card);
        cardRates.push(rates);
      }
      k = cardIdx.get(card);
    }
    cardCache[slot] = k;
  }
  return k;
}
function tierBandRate(card, market, col, count) {
  if (card.tiers.size === 0) return -1;
  const bands = card.tiers.get(
    `${marketNames[market]}|${col === 1 ? 'utility' : col === 3 ? 'authentication_international' : 'authentication'}`,
  );
  if (!bands) return -1;
  for (const band of bands)
    if (count >= band.fromCount && (band.toCount === null || count <= band.toCount)) return band.rateMicros;
  return -1;
}

// ------------------------------------------------------------------------------------------------------
// Batch rating: every delivered business message and every inbound in one time order (LSD radix sort of a
// 48-bit key: milliseconds since the earliest instant; inbounds first, so at one instant they come first)
let pending = 0;
let statusOnly = 0;
let nItems = iCount;
let tMin = Infinity;
const nMsg = ids.count;
let keyLo, keyHi, item; // item >= 0 a message, < 0 ~inbound
function collect() {
  for (let i = 0; i < iCount; i++) if (iAt[i] < tMin) tMin = iAt[i];
  for (let m = 0; m < nMsg; m++) {
    const f = mFlags[m];
    if (!(f & F_OUTBOUND)) {
      if (f & F_STATUS && !(f & F_INBOUND)) statusOnly++; // webhook-only messages: left out
      continue;
    }
    if (mDeliv[m] === Infinity) {
      if (!(f & F_FAILED)) pending++;
      continue;
    }
    if (mDeliv[m] < tMin) tMin = mDeliv[m];
    nItems++;
  }
  keyLo = new Uint32Array(nItems);
  keyHi = new Uint16Array(nItems);
  item = new Int32Array(nItems);
  let n = 0;
  for (let i = 0; i < iCount; i++, n++) {
    const r = iAt[i] - tMin;
    keyLo[n] = r % 4294967296;
    keyHi[n] = Math.floor(r / 4294967296);
    item[n] = ~i;
  }
  for (let m = 0; m < nMsg; m++) {
    if (!(mFlags[m] & F_OUTBOUND) || mDeliv[m] === Infinity) continue;
    const r = mDeliv[m] - tMin;
    keyLo[n] = r % 4294967296;
    keyHi[n] = Math.floor(r / 4294967296);
    item[n] = m;
    n++;
  }
}
collect();
function radixSort(n) {
  let lo = keyLo,
    hi = keyHi,
    it = item;
  let lo2 = new Uint32Array(n),
    hi2 = new Uint16Array(n),
    it2 = new Int32Array(n);
  const count = new Int32Array(65536);
  let maxHi = 0;
  for (let i = 0; i < n; i++) if (hi[i] > maxHi) maxHi = hi[i];
  const passes = maxHi === 0 ? 2 : 3;
  for (let pass = 0; pass < passes; pass++) {
    count.fill(0);
    const src = pass === 2 ? hi : lo;
    const shift = pass === 1 ? 16 : 0;
    for (let i = 0; i < n; i++) count[(src[i] >>> shift) & 0xffff]++;
    for (let d = 0, sum = 0; d < 65536; d++) {
      const c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const to = count[(src[i] >>> shift) & 0xffff]++;
      lo2[to] = lo[i];
      hi2[to] = hi[i];
      it2[to] = it[i];
    }
    [lo, lo2] = [lo2, lo];
    [hi, hi2] = [hi2, hi];
    [it, it2] = [it2, it];
  }
  return it;
}
// One exact number per item, (instant − earliest) × n + position (inbounds have the lower positions, so at
// one instant they come first), in a Float64Array's native sort; a span too long for that is radix sorted.
function floatSort(n) {
  const keys = new Float64Array(n);
  let maxLo = 0;
  for (let i = 0; i < n; i++) {
    const r = keyHi[i] * 4294967296 + keyLo[i];
    if (r > maxLo) maxLo = r;
    keys[i] = r * n + i;
  }
  if ((maxLo + 1) * n > Number.MAX_SAFE_INTEGER) return radixSort(n);
  keys.sort();
  const order = new Int32Array(n);
  for (let k = 0; k < n; k++) order[k] = item[keys[k] % n];
  return order;
}
const order = process.env.SORT === 'radix' ? radixSort(nItems) : floatSort(nItems);
const tSorted = performance.now();
const cSorted = process.cpuUsage(c0);

// Pair state, PMP-2025 rules of pair-machine.ts
const pLastIn = new Float64Array(pCount).fill(-Infinity);
const pRefAt = new Float64Array(pCount).fill(-Infinity);
const pRefAnswered = new Uint8Array(pCount).fill(1);
const pFepEnd = new Float64Array(pCount).fill(-Infinity);

// The sink: units and amounts per (category, type); categories and types as small integers
const CAT_NAMES = [
  'marketing',
  'utility',
  'authentication',
  'authentication_international',
  'service',
  'referral_conversion',
];
const TYPE_NAMES = ['regular', 'free_customer_service', 'free_entry_point'];
const sinkUnits = new Float64Array(CAT_NAMES.length * 3);
const sinkMicros = new Float64Array(CAT_NAMES.length * 3);
const dump = MODE === 'dump' ? [] : null;

// Volume tiers: a count per portfolio × market × (utility, authentication) × local month
const nP = portfolioIdx.size;
const MONTHS = 64;
let baseMonth = NaN;
const tierCounts = new Int32Array(nP * marketNames.length * 2 * MONTHS);

let units = 0;
let nullAmounts = 0;
let otherEra = 0;
function rateAll() {
  for (let k = 0; k < nItems; k++) {
    const x = order[k];
    if (x < 0) {
      const i = ~x;
      const p = iPair[i];
      pLastIn[p] = iAt[i];
      if (iRef[i]) {
        pRefAt[p] = iAt[i];
        pRefAnswered[p] = 0;
      }
      continue;
    }
    const m = x;
    const p = mPair[m];
    const d = mDeliv[m];
    const sent = mSent[m];
    const w = pWaba[p];
    if (baseDay !== baseDay) {
      baseDay = Math.floor(d / DAY) - 64;
      const { y, m: mo } = civil(baseDay + 64);
      baseMonth = y * 12 + mo - 1 - MONTHS / 2;
    }
    const day = localDay(w, d);
    if (day < PMP_2025_DAY || day >= PMP_2026_DAY) {
      otherEra++; // CBP, NBP and PMP-2026-10 left out
      continue;
    }
    const isInCsw = d < pLastIn[p] + CSW_MS;
    const refAt = pRefAt[p];
    const isAnswer = sent >= refAt - SKEW_MS;
    const isFepEligible = isAnswer && pRefAnswered[p] === 0 && d < refAt + FEP_ANSWER_MS;
    if (isAnswer) pRefAnswered[p] = 1;
    const tmpl = mTmpl[m];
    let cat, type, col;
    // col: the rate-card column (a free unit shows the rate it would have cost)
    if (d < pFepEnd[p] && !isFepEligible) {
      cat = 5;
      type = 2;
      col = tmpl === 0 ? 4 : tmpl - 1;
    } else if (isFepEligible) {
      pFepEnd[p] = d + FEP_MS;
      cat = 5;
      type = 2;
      col = tmpl === 0 ? 4 : tmpl - 1;
    } else if (tmpl === 1) {
      cat = 0;
      type = 0;
      col = 0;
    } else if (tmpl === 3) {
      cat = 2;
      type = 0;
      col = 2;
    } else if (tmpl === 2) {
      cat = 1;
      type = isInCsw ? 1 : 0;
      col = 1;
    } else {
      cat = 4;
      type = 1;
      col = 4;
    }
    // Price: card in force on the local day, the user's market that day, the column, tiers when charged
    units++;
    const u = pUser[p];
    const c = countryOfUser(u);
    let amount = type !== 0 ? 0 : -1;
    let market = -1;
    let tierCount = 0;
    if (c >= 0) {
      market = marketOf(c, day);
      if (
        cat === 2 &&
        d >= wAuthStart[w] &&
        authIntCache[c * SPAN_DAYS + (day - baseDay)] === 1 &&
        countryNames[c] !== wPrimary[w]
      ) {
        cat = 3;
        col = 3;
      }
      const k2 = cardOf(wCurrency[w], day);
      if (k2 >= 0) {
        let rate = cardRates[k2][market * NCOL + col];
        if (type !== 0) amount = 0;
        else {
          if (cat === 1 || cat === 2 || cat === 3) {
            const { y, m: mo } = civil(day);
            const month = y * 12 + mo - 1 - baseMonth;
            const slot =
              ((wPortfolio[w] * marketNames.length + market) * 2 + (cat === 1 ? 0 : 1)) * MONTHS + month;
            tierCount = ++tierCounts[slot];
            const banded = tierBandRate(cards[k2], market, col, tierCount);
            if (banded >= 0) rate = banded;
          }
          amount = rate;
        }
      }
    }
    const s = cat * 3 + type;
    sinkUnits[s]++;
    if (amount >= 0) sinkMicros[s] += amount;
    else nullAmounts++;
    if (dump)
      dump.push(
        `${ids.text(m)} ${CAT_NAMES[cat]} ${TYPE_NAMES[type]} ${amount < 0 ? null : amount} ${market < 0 ? null : marketNames[market]} ${tierCount || ''}`,
      );
  }
}
rateAll();
const tEnd = performance.now();
const ms = (c) => Math.round((c.user + c.system) / 1000);
const cpu = process.cpuUsage(c0);
console.log(
  `proto: ${stats.lines} lines (${stats.contract} scanned, ${stats.webhooks} webhook bodies, ${stats.fallbacks} fallbacks, ${stats.errors} errors), ` +
    `${units} units, ${pending} pending, ${statusOnly} status-only, ${otherEra} other era; ` +
    `wall ${(tEnd - t0).toFixed(0)} ms (setup ${(tSetup - t0).toFixed(0)}, read ${(tRead - tSetup).toFixed(0)}, sort ${(tSorted - tRead).toFixed(0)}, rate ${(tEnd - tSorted).toFixed(0)}) cpu ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (setup ${ms(cSetup)}, read ${ms(cRead) - ms(cSetup)}, sort ${ms(cSorted) - ms(cRead)}, rate ${ms(cpu) - ms(cSorted)})`,
);
if (MODE !== 'count') {
  console.log(
    `  ids ${ids.count}, users ${users.count}, businesses ${businesses.count}, wabas ${wabas.count}, pairs ${pCount}, inbounds ${iCount} (dup ${stats.dupInbound}), statuses ${stats.statuses}`,
  );
  let total = 0;
  for (let cat = 0; cat < CAT_NAMES.length; cat++)
    for (let type = 0; type < 3; type++) {
      const s = cat * 3 + type;
      if (sinkUnits[s] === 0) continue;
      total += sinkMicros[s];
      console.log(
        `  PMP-2025 ${(CAT_NAMES[cat] + ' ' + TYPE_NAMES[type]).padEnd(36)} ${String(sinkUnits[s]).padStart(8)} ${(sinkMicros[s] / 1e6).toFixed(4)}`,
      );
    }
  console.log(`  total ${(total / 1e6).toFixed(6)} (null amounts ${nullAmounts})`);
}
if (COUNT_HITS)
  for (const [k, t] of Object.entries({ ids, users, businesses, wabas }))
    console.log(`  ${k}: ${t.calls} look-ups, ${t.count} keys, ${t.hits} from the recent table`);
if (dump) writeFileSync(DUMP_OUT, dump.sort().join('\n') + '\n');
