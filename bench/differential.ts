// Differential tester: generates small adversarial traffic (seeded, mulberry32) and rates it along several
// paths that the contract says must agree with `wameter rate`, then compares what each path bills.
//
//   node dist/bench/differential.js --seeds 1..200 [--paths shuffle,stream-swept,sqlite-chunks,live]
//        [--pg 10] [--minimise] [--out DIR] [--verbose]        (--help for every option)
//
// Paths (each compared with `batch`, the reference: wameter rate --format json --accounts A input.ndjson):
//   shuffle        the same lines shuffled, ~25 % of them duplicated, split across 2–4 files
//   stream         wameter rate --stream --max-lateness 100000h over a time-sorted copy (below 50,000 events a
//                  stream never moves its horizon, so this is nearly batch)
//   stream-swept   the time-sorted copy merged with 100,000–150,000 filler inbound lines of another WABA,
//                  --max-lateness 36h: the stream rates and forgets as it goes
//   sqlite         wameter import (one step) into a fresh SQLite file, read back with wameter serve's
//                  GET /v1/units (paged) and GET /v1/totals
//   sqlite-chunks  the same, imported in 2–4 chunks in random order (lines shuffled, some duplicated)
//   live           a fresh `wameter serve`: event lines to POST /v1/events, webhook bodies signed to
//                  POST /webhooks/whatsapp, in 2–5 requests, with reads between them
//   pg, pg-chunks, live-pg   the same on PostgreSQL (h_diff_* databases); --pg N adds pg and pg-chunks to every
//                  Nth seed
//
// Normalisations (what may legitimately differ): unit `id` is dropped (an id names the unit, not its bill)
// and units are compared as a multiset, sorted by their canonical JSON (`rate` and the store list them in
// different orders). Totals are compared whole. `pending` and findings (code and message) are compared only
// between the `rate` paths (the store's API does not list them), and a difference in findings alone is a
// mismatch only with --findings. Documented differences of `--stream` (docs/decisions.md, "Streaming") are
// said as `doc(…)`, not counted: READ_RECEIPT_ONLY (a stream does not charge a message known only from read
// receipts) and LATE (a batched webhook body whose items lie further apart than the lateness); so is a store
// path missing only the units `rate` bills under a business number no WABA ties (WABA_UNKNOWN), as
// doc(UNATTRIBUTED): the stores rate no such status and count it (docs/storage.md); and a stream's on a seed
// whose inbound lines of one id name two numbers or users, as doc(INBOUND_COPIES) (a stream rates them as two
// messages, decisions.md "Known limits"); and a stream's whose output `rate` gives once the items it takes for
// duplicates of a message it rated and forgot are taken from that message (`forgettingLimit`): a second
// WABA's message of the id met once the stream's horizon is past the first WABA's, doc(SECOND_WABA_FORGOTTEN),
// and a `delivered` coming once it is past the read receipt the stream rated the message at,
// doc(DELIVERED_AFTER_READ), or past an earlier `delivered` it rated the message at, doc(DELIVERED_AGAIN)
// (decisions.md "Known limits" and "Streaming"); any other difference beside them is still one. A stream's
// difference on a seed with business-scoped user ids is said as `F1(…)` (the family this tester found first:
// a stream does not join such an id to its number), so that other families stand out. A difference that does
// not come again on a second run is said as FLAKY.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/cli/options.js';
import { isValidTimeZone } from '../src/core/calendar.js';
import { signMetaBody } from '../src/ingest/signature.js';
import { Rng } from './generate-traffic.js';

// ---------------------------------------------------------------------------------------------------------
// Random numbers

/** The bench generator's seeded generator (mulberry32), with what the tester adds. */
class Rand extends Rng {
  range(lo: number, hi: number): number {
    return this.between(lo, hi);
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Time zones

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

/** The offset (ms) of `tz` from UTC at instant `ms`. */
function tzOffsetMs(tz: string, ms: number): number {
  let f = offsetFormatters.get(tz);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    offsetFormatters.set(tz, f);
  }
  const parts: Record<string, number> = {};
  for (const p of f.formatToParts(new Date(ms))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const asUtc = Date.UTC(
    parts.year as number,
    (parts.month as number) - 1,
    parts.day as number,
    parts.hour as number,
    parts.minute as number,
    parts.second as number,
  );
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The UTC instant of local midnight of `date` (YYYY-MM-DD) in `tz`. */
function localMidnight(date: string, tz: string): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const wall = Date.UTC(y, m - 1, d);
  let guess = wall - tzOffsetMs(tz, wall);
  guess = wall - tzOffsetMs(tz, guess);
  return guess;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** `ms` written with a fixed offset (minutes), as ISO-8601: 2024-03-01T15:30:00+05:30. */
function isoWithOffset(ms: number, offsetMin: number): string {
  const local = new Date(ms + offsetMin * 60_000).toISOString().slice(0, 19);
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${local}${sign}${hh}:${mm}`;
}

// ---------------------------------------------------------------------------------------------------------
// Traffic

interface Waba {
  id: string;
  tz: string;
  portfolio: string;
  numbers: string[];
  listed: boolean;
}

interface User {
  /** The form the send log writes. */
  phone: string;
  /** The form Meta's wa_id may keep (Brazil without its ninth digit, Mexico with its 1). */
  metaForm: string;
}

export interface Line {
  text: string;
  /** Event time (ms), for the time-sorted copy; a webhook body's earliest item. */
  t: number;
}

export interface Traffic {
  seed: number;
  accounts: object;
  lines: Line[];
  events: number;
  /** Rated with the bundled cards plus tiny volume tiers (--rate-cards DIR), so that small inputs cross bands. */
  tiers: boolean;
}

/** Every third seed rates with volume tiers of 2 messages a band (pricing-rules §5.3). */
function tieredSeed(seed: number): boolean {
  return seed % 3 === 0;
}

const TIER_BASE: Record<string, Record<string, Record<string, number>>> = {
  '2024-11-01': {
    India: { Utility: 14, Authentication: 14, 'Authentication-International': 280 },
    Brazil: { Utility: 80, Authentication: 315 },
    Indonesia: { Utility: 200, Authentication: 300, 'Authentication-International': 1360 },
  },
  '2025-10-01': {
    India: { Utility: 14, Authentication: 14, 'Authentication-International': 280 },
    Brazil: { Utility: 68, Authentication: 68 },
    Indonesia: { Utility: 250, Authentication: 250, 'Authentication-International': 1360 },
  },
};

/** A folder with the bundled cards and tier files of bands 1–2, 3–4, 5– (list rate, −20 %, −40 %). */
function writeTierCards(dir: string, repoRoot: string): string {
  const cards = join(dir, 'cards');
  mkdirSync(cards, { recursive: true });
  for (const name of readdirSync(join(repoRoot, 'data/rate-cards'))) {
    if (name.endsWith('.csv')) copyFileSync(join(repoRoot, 'data/rate-cards', name), join(cards, name));
  }
  const title: Record<string, string> = { '2024-11-01': 'November 1, 2024', '2025-10-01': 'October 1, 2025' };
  for (const [date, markets] of Object.entries(TIER_BASE)) {
    const rows = [
      `Volume tiers in USD, effective ${title[date]}`,
      '',
      'Market,Currency,Category,From,To,Rate',
    ];
    const rate = (tenThousandths: number) => (tenThousandths / 10000).toFixed(4);
    for (const [market, cats] of Object.entries(markets)) {
      for (const [cat, list] of Object.entries(cats)) {
        rows.push(`${market},$US,${cat},1,2,${rate(list)}`);
        rows.push(`${market},$US,${cat},3,4,${rate(Math.round(list * 0.8))}`);
        rows.push(`${market},$US,${cat},5,,${rate(Math.round(list * 0.6))}`);
      }
    }
    writeFileSync(join(cards, `usd-${date}-tiers.csv`), rows.join('\n') + '\n');
  }
  return cards;
}

const ZONES = [
  'UTC',
  'Asia/Kolkata',
  'America/Sao_Paulo',
  'Asia/Jakarta',
  'Pacific/Auckland',
  'America/Los_Angeles',
  'Asia/Kathmandu',
  'Pacific/Kiritimati',
  'Pacific/Pago_Pago',
];

/** Era boundaries and other dated facts (pricing-rules §2, §7, §8), plus plain month edges. */
const BOUNDARIES = [
  '2022-02-01',
  '2023-03-01',
  '2023-06-01',
  '2024-06-01',
  '2024-07-01',
  '2024-11-01',
  '2025-02-01',
  '2025-07-01',
  '2025-10-01',
  '2026-10-01',
  '2024-02-01',
  '2025-08-01',
  '2026-01-01',
];

const USERS: User[] = [
  { phone: '919876543210', metaForm: '919876543210' },
  { phone: '919812345678', metaForm: '919812345678' },
  { phone: '5511987654321', metaForm: '551187654321' },
  { phone: '5521998765432', metaForm: '552198765432' },
  { phone: '6281234567890', metaForm: '6281234567890' },
  { phone: '201012345678', metaForm: '201012345678' },
  { phone: '12025550123', metaForm: '12025550123' },
  { phone: '5215512345678', metaForm: '525512345678' },
  { phone: '263771234567', metaForm: '263771234567' },
  { phone: '8801712345678', metaForm: '8801712345678' },
  { phone: '447700900123', metaForm: '447700900123' },
  { phone: '971501234567', metaForm: '971501234567' },
];

const CATEGORIES = ['marketing', 'utility', 'authentication'] as const;
const TEMPLATE_NAMES = ['order_update', 'otp_code', 'promo_1'];

class TrafficBuilder {
  readonly r: Rand;
  readonly lines: Line[] = [];
  events = 0;
  private counter = 0;
  constructor(readonly seed: number) {
    this.r = new Rand(seed);
  }

  nextId(prefix: string): string {
    return `wamid.${prefix}${this.seed}x${this.counter++}`;
  }

  push(obj: unknown, t: number): string {
    const text = JSON.stringify(obj);
    this.lines.push({ text, t });
    return text;
  }

  /** `at` as Z, as Unix seconds, or with an offset. */
  at(ms: number): string | number {
    const roll = this.r.next();
    if (roll < 0.15) return Math.floor(ms / 1000);
    if (roll < 0.3) return isoWithOffset(ms, this.r.pick([330, -180, 345, 780, -660]));
    return iso(ms);
  }
}

/** A Meta webhook body of one WABA's entry, one change of `messages` holding `value` (statuses or messages). */
export function webhookBody(waba: string, business: string, value: Record<string, unknown>): object {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: waba,
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: {
                display_phone_number: `1555${business.replace(/\D/g, '').padStart(7, '0')}`,
                phone_number_id: business,
              },
              ...value,
            },
          },
        ],
      },
    ],
  };
}

function accountUpdate(waba: string, when: number, value: Record<string, unknown>): object {
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: waba, time: Math.floor(when / 1000), changes: [{ field: 'account_update', value }] }],
  };
}

/** Meta's business-scoped id for a user: two letters, a period, digits. */
function scopedId(user: User): string {
  return `US.${user.phone.padStart(20, '7')}`;
}

function countryOf(user: User): string {
  const prefixes: [string, string][] = [
    ['91', 'IN'],
    ['55', 'BR'],
    ['62', 'ID'],
    ['20', 'EG'],
    ['52', 'MX'],
    ['263', 'ZW'],
    ['880', 'BD'],
    ['44', 'GB'],
    ['971', 'AE'],
    ['1', 'US'],
  ];
  return prefixes.find(([p]) => user.phone.startsWith(p))?.[1] ?? 'US';
}

/**
 * Odd seeds: copies of event lines that disagree on one field (business, user, WABA, template, time,
 * referral, status word), statuses naming another WABA, ids shared between an inbound and an outbound, and
 * instants shared by two events (same millisecond).
 */
function chaos(b: TrafficBuilder, wabas: Waba[], users: User[], sentIds: string[]): void {
  const r = b.r;
  const original = [...b.lines];
  for (const line of original) {
    if (!r.chance(0.15)) continue;
    const obj = JSON.parse(line.text) as Record<string, unknown>;
    if (typeof obj.kind !== 'string') continue;
    const copy: Record<string, unknown> = { ...obj };
    let t = line.t;
    const field = r.pick([
      'business',
      'user',
      'waba',
      'template',
      'at',
      'referral',
      'status',
      'same-instant',
      'id',
    ]);
    switch (field) {
      case 'business':
        copy.business = r.pick(r.pick(wabas).numbers);
        break;
      case 'user':
        copy.user = r.pick(users).phone;
        break;
      case 'waba':
        copy.waba = r.pick(wabas).id;
        break;
      case 'template':
        if (obj.kind !== 'outbound') continue;
        copy.template = r.pick([...CATEGORIES, null]);
        break;
      case 'at':
        t = line.t + r.range(-120, 120) * 1000 + r.int(1000);
        copy.at = new Date(t).toISOString();
        break;
      case 'referral':
        if (obj.kind !== 'inbound') continue;
        if (obj.referral === undefined) copy.referral = { source_type: 'ad' };
        else delete copy.referral;
        break;
      case 'status':
        if (obj.kind !== 'status') continue;
        copy.status = r.pick(['delivered', 'read', 'failed', 'sent']);
        break;
      case 'same-instant': {
        // Move this event to another event's instant, in place of copying it.
        const other = r.pick(original);
        const at = other.t;
        obj.at = iso(at);
        line.text = JSON.stringify(obj);
        line.t = at;
        continue;
      }
      case 'id':
        // An inbound that reuses a business message's id, or a status for an unknown id of an inbound.
        if (obj.kind !== 'inbound' || sentIds.length === 0) continue;
        copy.id = r.pick(sentIds);
        break;
    }
    b.lines.push({ text: JSON.stringify(copy), t });
  }
}

interface WebhookShape {
  entry: {
    id: string;
    changes: { value: { metadata: { phone_number_id: string }; statuses?: unknown[] } }[];
  }[];
}

function eraModel(ms: number): string {
  if (ms < Date.parse('2022-02-01T00:00:00Z')) return 'NBP';
  if (ms < Date.parse('2025-07-01T00:00:00Z')) return 'CBP';
  return 'PMP';
}

/** Generates one seed's traffic: small, adversarial, deterministic. */
/**
 * What the WABAs' time zones and the traffic's boundary date are drawn from: ZONES and BOUNDARIES, or the lists
 * --zones and --boundaries give (zones with offsets of 45 minutes, or DST changes on a boundary day).
 */
export interface Draws {
  zones: readonly string[];
  boundaries: readonly string[];
}

export function generate(
  seed: number,
  maxEvents = 40,
  extras = false,
  draws: Draws = { zones: ZONES, boundaries: BOUNDARIES },
): Traffic {
  const b = new TrafficBuilder(seed);
  const r = b.r;
  const tiers = tieredSeed(seed);
  const nW = r.range(2, 4);
  const wabas: Waba[] = [];
  const idStyles = [
    (i: number) => `W${i + 1}`,
    (i: number) => String(1029 + i * 97),
    (i: number) => ['9', '10', '100', 'W1'][i] as string,
  ];
  const idStyle = r.pick(idStyles);
  for (let i = 0; i < nW; i++) {
    const id = idStyle(i);
    const portfolio = i > 0 && r.chance(0.5) ? 'P1' : `P${i + 1}`;
    const numbers: string[] = [];
    for (let j = 0; j < r.range(1, 2); j++) numbers.push(r.chance(0.5) ? `PN${i + 1}${j}` : `10654${i}${j}`);
    wabas.push({ id, tz: r.pick(draws.zones), portfolio, numbers, listed: i === 0 || r.chance(0.85) });
  }
  // A number under two WABAs, now and then.
  if (r.chance(0.3)) (wabas[1] as Waba).numbers.push((wabas[0] as Waba).numbers[0] as string);
  const accounts = {
    accounts: wabas
      .filter((w) => w.listed)
      .map((w) => {
        const a: Record<string, unknown> = {
          waba: w.id,
          timezone: w.tz,
          currency: 'USD',
          portfolio: w.portfolio,
          primary_country: r.pick(['IN', 'ID', 'BR', 'US', 'AE']),
        };
        if (r.chance(0.3)) {
          a.auth_international = r.chance(0.5)
            ? { start: '2024-07-01T00:00:00Z' }
            : { start: '2025-02-01T00:00:00Z', exceptions: { IN: '2025-03-01T00:00:00Z' } };
        }
        return a;
      }),
  };
  const pool = tiers ? USERS.filter((u) => /^(91|55|62)/.test(u.phone)) : USERS;
  const users = r.shuffle([...pool]).slice(0, r.range(3, Math.min(8, pool.length)));
  const boundary = tiers
    ? r.pick(['2025-08-01', '2025-09-01', '2025-10-01', '2025-11-01', '2026-01-01'])
    : r.pick(draws.boundaries);
  const anchorWaba = r.pick(wabas);
  let t = localMidnight(boundary, anchorWaba.tz) - r.int(36 * 3600) * 1000;
  const target = r.range(5, Math.max(5, maxEvents));

  interface Sent extends SentMessage {
    lines: string[];
  }
  const sent: Sent[] = [];
  const advance = () => {
    const roll = r.next();
    if (roll < 0.5) t += r.range(1, 600) * 1000;
    else if (roll < 0.8) t += r.range(600, 4 * 3600) * 1000;
    else if (roll < 0.95) t += r.range(4 * 3600, 26 * 3600) * 1000;
    else t += r.range(26 * 3600, 80 * 3600) * 1000;
  };
  const scoped = r.chance(0.35);
  const pairs: { waba: Waba; business: string; user: User }[] = [];
  for (let i = 0; i < r.range(2, 6); i++) {
    const waba = r.pick(wabas);
    pairs.push({ waba, business: r.pick(waba.numbers), user: r.pick(users) });
  }

  const statusObj = (s: Sent, word: string, at: number, withPricing: boolean): Record<string, unknown> => {
    const o: Record<string, unknown> = {
      id: s.id,
      status: word,
      timestamp: r.chance(0.8) ? String(Math.floor(at / 1000)) : Math.floor(at / 1000),
      recipient_id: r.chance(0.7) ? s.user.metaForm : s.user.phone,
    };
    if (scoped && r.chance(0.3)) {
      // Business-scoped user ids: the id alone, or beside the number.
      if (r.chance(0.5)) o.recipient_id = '';
      o.recipient_user_id = scopedId(s.user);
    }
    if (withPricing) {
      let category: string = s.cat ?? 'service';
      if (r.chance(0.1)) category = r.pick(['marketing', 'utility', 'referral_conversion', 'service']);
      const model = eraModel(at);
      if (model === 'CBP' && at < Date.parse('2023-06-01T00:00:00Z'))
        category = s.cat === null ? 'user_initiated' : 'business_initiated';
      const type =
        category === 'service' ? 'free_customer_service' : r.chance(0.1) ? 'free_entry_point' : 'regular';
      o.pricing = { billable: type === 'regular', pricing_model: model, category, type };
      if (model === 'CBP' && r.chance(0.6)) {
        o.conversation = {
          id: `conv${r.int(1e6)}`,
          expiration_timestamp: String(Math.floor(at / 1000) + 86400),
          origin: { type: category },
        };
      }
    }
    if (word === 'failed') o.errors = [{ code: 131049, title: 'ecosystem' }];
    return o;
  };

  const emitStatus = (s: Sent, word: string, at: number, withPricing: boolean) => {
    b.events++;
    const roll = r.next();
    let text: string;
    if (roll < 0.5) {
      text = b.push(
        webhookBody(s.waba.id, s.business, { statuses: [statusObj(s, word, at, withPricing)] }),
        at,
      );
    } else {
      const line: Record<string, unknown> = { kind: 'status', at: b.at(at), id: s.id, status: word };
      const naming = r.next();
      if (naming < 0.3) {
        line.waba = s.waba.id;
        line.business = s.business;
        line.user = s.user.phone;
      } else if (naming < 0.45) line.business = s.business;
      else if (naming < 0.55) line.user = s.user.phone;
      if (withPricing && r.chance(0.5)) {
        const so = statusObj(s, word, at, true);
        if (so.pricing !== undefined) line.pricing = so.pricing;
        if (so.conversation !== undefined) line.conversation = so.conversation;
      }
      text = b.push(line, at);
    }
    s.lines.push(text);
  };

  const inbound = (pair: (typeof pairs)[number]) => {
    b.events++;
    const id = b.nextId('in');
    const referral = r.chance(0.25) ? { source_type: r.pick(['ad', 'post']), source_id: 'AD1' } : undefined;
    if (r.chance(0.5)) {
      const bsuid = scoped && r.chance(0.4) ? r.pick(['both', 'only']) : 'none';
      const msg: Record<string, unknown> = {
        from: bsuid === 'only' ? '' : pair.user.metaForm,
        id,
        timestamp: String(Math.floor(t / 1000)),
        type: 'text',
        text: { body: 'hi' },
      };
      if (referral !== undefined) msg.referral = referral;
      const contact: Record<string, unknown> = { profile: { name: 'U' }, wa_id: pair.user.metaForm };
      if (bsuid !== 'none') {
        msg.from_user_id = scopedId(pair.user);
        contact.user_id = scopedId(pair.user);
      }
      if (bsuid === 'only') {
        contact.wa_id = '';
        contact.profile = { name: 'U', country_code: countryOf(pair.user) };
      }
      b.push(
        webhookBody(pair.waba.id, pair.business, {
          contacts: [contact],
          messages: [msg],
        }),
        t,
      );
    } else {
      const line: Record<string, unknown> = {
        kind: 'inbound',
        at: b.at(t),
        waba: pair.waba.id,
        business: pair.business,
        user: pair.user.phone,
        id,
      };
      if (referral !== undefined) line.referral = referral;
      b.push(line, t);
      // A CRM's copy without the referral.
      if (referral !== undefined && r.chance(0.3)) {
        const copy = { ...line };
        delete copy.referral;
        b.push(copy, t + r.int(3) * 1000);
      }
    }
  };

  const outbound = (pair: (typeof pairs)[number]) => {
    b.events++;
    const cat = tiers
      ? r.chance(0.9)
        ? r.pick(['utility', 'authentication', 'authentication', 'marketing'])
        : null
      : r.chance(0.7)
        ? r.pick(CATEGORIES)
        : null;
    // Now and then an id another WABA's message already used (MESSAGE_OF_TWO_WABAS).
    const reuse = sent.length > 0 && r.chance(0.08) ? r.pick(sent) : undefined;
    const id = reuse !== undefined && reuse.waba !== pair.waba ? reuse.id : b.nextId('o');
    const s: Sent = { id, ...pair, cat, t, lines: [] };
    sent.push(s);
    const hasLine = r.chance(0.75);
    const outcome = r.pick([
      'delivered',
      'delivered',
      'read',
      'readonly',
      'failed',
      'faildeliv',
      'pending',
      'log',
    ]);
    const dAt = t + r.range(1, r.chance(0.1) ? 40 * 3600 : 90) * 1000;
    if (hasLine) {
      const line: Record<string, unknown> = {
        kind: 'outbound',
        at: b.at(t),
        waba: pair.waba.id,
        business: pair.business,
        user: pair.user.phone,
        id: s.id,
      };
      if (cat !== null || r.chance(0.5)) line.template = cat;
      if (cat !== null && r.chance(0.25)) {
        line.template_name = r.pick(TEMPLATE_NAMES);
        // Meta moves the template to another category, before or after this send.
        if (r.chance(0.4)) {
          const when = t + r.range(-6 * 3600, 6 * 3600) * 1000;
          b.events++;
          b.push(
            {
              object: 'whatsapp_business_account',
              entry: [
                {
                  id: pair.waba.id,
                  time: Math.floor(when / 1000),
                  changes: [
                    {
                      field: 'template_category_update',
                      value: {
                        message_template_id: 1000 + TEMPLATE_NAMES.indexOf(line.template_name as string),
                        message_template_name: line.template_name,
                        message_template_language: 'en',
                        previous_category: cat.toUpperCase(),
                        new_category: r.pick(['MARKETING', 'UTILITY', 'AUTHENTICATION']),
                      },
                    },
                  ],
                },
              ],
            },
            when,
          );
        }
      }
      if (outcome === 'log') {
        if (r.chance(0.7)) line.delivered_at = b.at(dAt);
        else line.failed = true;
      }
      s.lines.push(b.push(line, t));
      // A disagreeing copy of the send log.
      if (r.chance(0.08)) {
        const copy = { ...line, template: r.pick([...CATEGORIES, null]) };
        s.lines.push(b.push(copy, t));
      }
    }
    if (outcome === 'log' && hasLine) return;
    const withSent = r.chance(0.6);
    if (withSent) emitStatus(s, 'sent', t + 1000, true);
    switch (outcome) {
      case 'delivered':
      case 'log':
        emitStatus(s, 'delivered', dAt, !withSent || r.chance(0.5));
        if (r.chance(0.4)) emitStatus(s, 'read', dAt + r.range(5, 7200) * 1000, false);
        break;
      case 'read':
        emitStatus(s, 'delivered', dAt, !withSent);
        emitStatus(s, 'read', dAt + r.range(5, 7200) * 1000, false);
        break;
      case 'readonly':
        emitStatus(s, 'read', dAt, !withSent && r.chance(0.5));
        break;
      case 'failed':
        emitStatus(s, 'failed', dAt, false);
        break;
      case 'faildeliv':
        emitStatus(s, 'failed', dAt, false);
        emitStatus(s, 'delivered', dAt + r.range(60, 3 * 86400) * 1000, true);
        break;
      default:
        break; // pending
    }
  };

  // Meta's account updates: an authentication-international eligibility, a primary location.
  if (r.chance(0.15)) {
    const w = r.pick(wabas);
    const when = t + r.range(0, 48 * 3600) * 1000;
    const start = Math.floor(when / 1000) + r.range(-86400, 86400);
    const value: Record<string, unknown> = {
      event: 'AUTH_INTL_PRICE_ELIGIBILITY_UPDATE',
      auth_international_rate_eligibility: { start_time: start },
    };
    if (r.chance(0.5)) {
      (value.auth_international_rate_eligibility as Record<string, unknown>).exception_countries = [
        { country_code: r.pick(['IN', 'ID', 'EG', 'AE']), start_time: start + r.range(0, 5 * 86400) },
      ];
    }
    b.events++;
    b.push(accountUpdate(w.id, when, value), when);
  }
  if (r.chance(0.1)) {
    const w = r.pick(wabas);
    const when = t + r.range(0, 48 * 3600) * 1000;
    b.events++;
    b.push(
      accountUpdate(w.id, when, {
        event: 'BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE',
        country: r.pick(['IN', 'ID', 'BR']),
      }),
      when,
    );
  }

  while (b.events < target) {
    const pair = r.pick(pairs);
    const roll = r.next();
    if (roll < 0.3) inbound(pair);
    else if (roll < 0.9) outbound(pair);
    else if (b.lines.length > 0) {
      // A duplicate: exact, or a status copy a few seconds off.
      const src = r.pick(b.lines);
      const obj = JSON.parse(src.text) as Record<string, unknown>;
      if (obj.kind === 'status' && r.chance(0.5)) {
        const shift = r.range(1, 30) * 1000;
        obj.at = iso(src.t + shift);
        b.push(obj, src.t + shift);
      } else b.push(obj, src.t);
    }
    advance();
  }
  if (seed % 2 === 1)
    chaos(
      b,
      wabas,
      users,
      sent.map((x) => x.id),
    );
  // Batch some status bodies of one WABA and number into one POST (Meta batches up to 1,000).
  const lines: Line[] = [];
  for (const line of b.lines) {
    const prev = lines[lines.length - 1];
    if (
      prev !== undefined &&
      r.chance(0.3) &&
      line.text.includes('"statuses"') &&
      prev.text.includes('"statuses"')
    ) {
      const a = JSON.parse(prev.text) as WebhookShape;
      const c = JSON.parse(line.text) as WebhookShape;
      const av = a.entry[0]?.changes[0]?.value;
      const cv = c.entry[0]?.changes[0]?.value;
      if (
        av !== undefined &&
        cv !== undefined &&
        a.entry[0]?.id === c.entry[0]?.id &&
        av.metadata.phone_number_id === cv.metadata.phone_number_id
      ) {
        av.statuses = [...(av.statuses ?? []), ...(cv.statuses ?? [])];
        lines[lines.length - 1] = { text: JSON.stringify(a), t: Math.min(prev.t, line.t) };
        continue;
      }
    }
    lines.push(line);
  }
  let events = b.events;
  if (extras) {
    const more = extraTraffic(seed, wabas, users, sent, tiers);
    lines.push(...more.lines);
    events += more.events;
  }
  return { seed, accounts, lines, events, tiers };
}

/** What the spec allows and --extras adds (docs/benchmarks.md): each seed's own generator, so the lines above
 * stay those the seed made before --extras existed. */
interface SentMessage {
  id: string;
  waba: Waba;
  business: string;
  user: User;
  cat: string | null;
  t: number;
}

function monthOf(ms: number, tz: string): string {
  return new Date(ms + tzOffsetMs(tz, ms)).toISOString().slice(0, 7);
}

/**
 * --extras: Meta's tier statements (VOLUME_BASED_PRICING_TIER_UPDATE) for a month the traffic is in, a
 * template_category_update in its other forms (pending with `correct_category`, no id and language),
 * `played` and unknown status words, webhook-only messages priced `authentication_international` and
 * `marketing_lite`, a system message, and one POST with two WABAs' entries. Drawn from a generator of its own
 * (seed-derived), and appended: the seed's other lines are unchanged.
 */
function extraTraffic(
  seed: number,
  wabas: Waba[],
  users: User[],
  sent: SentMessage[],
  tiers: boolean,
): { lines: Line[]; events: number } {
  const x = new Rand((seed * 2654435761) >>> 0 || 1);
  const lines: Line[] = [];
  let events = 0;
  let counter = 0;
  const push = (obj: unknown, t: number) => lines.push({ text: JSON.stringify(obj), t });
  const pickSent = () => (sent.length === 0 ? undefined : x.pick(sent));
  // Tier statements: tiered seeds mostly; a band of the tiny tiers, a market of the tier files (written as
  // Meta does, or in lower case), now and then two in one body with one time.
  if (sent.length > 0 && x.chance(tiers ? 0.8 : 0.25)) {
    for (let k = 0; k < x.range(1, 3); k++) {
      const s = pickSent() as SentMessage;
      // Mostly just before the message, so that it and the month's later ones are priced from the band.
      const when = s.t + x.range(x.chance(0.7) ? -12 * 3600 : 0, 12 * 3600) * 1000;
      const ownMarket = { '91': 'India', '55': 'Brazil', '62': 'Indonesia' }[s.user.phone.slice(0, 2)];
      const market =
        ownMarket !== undefined && x.chance(0.75)
          ? x.chance(0.8)
            ? ownMarket
            : ownMarket.toLowerCase()
          : x.pick(['India', 'Brazil', 'Indonesia', 'Egypt']);
      const ownCategory = s.cat === 'utility' || s.cat === 'authentication' ? s.cat.toUpperCase() : undefined;
      const info = () => ({
        tier_update_time: Math.floor(when / 1000),
        pricing_category:
          ownCategory !== undefined && x.chance(0.7)
            ? ownCategory
            : x.pick(['UTILITY', 'AUTHENTICATION', 'AUTHENTICATION_INTERNATIONAL', 'MARKETING']),
        tier: x.pick(['1:2', '3:4', '5:MAX', '3:4']),
        effective_month: x.chance(0.8) ? monthOf(s.t, s.waba.tz) : monthOf(when + 20 * 86400_000, 'UTC'),
        region: market,
      });
      const changes = [
        {
          field: 'account_update',
          value: { event: 'VOLUME_BASED_PRICING_TIER_UPDATE', volume_tier_info: info() },
        },
      ];
      if (x.chance(0.3))
        changes.push({
          field: 'account_update',
          value: { event: 'VOLUME_BASED_PRICING_TIER_UPDATE', volume_tier_info: info() },
        });
      events += changes.length;
      push(
        {
          object: 'whatsapp_business_account',
          entry: [{ id: s.waba.id, time: Math.floor(when / 1000), changes }],
        },
        when,
      );
    }
  }
  // A template moved in Meta's other forms: pending with the correct category, or without id and language.
  if (sent.length > 0 && x.chance(0.3)) {
    const s = pickSent() as SentMessage;
    const name = x.pick(TEMPLATE_NAMES);
    const when = s.t + x.range(-6 * 3600, 6 * 3600) * 1000;
    const value: Record<string, unknown> = x.chance(0.5)
      ? {
          message_template_id: 1000 + TEMPLATE_NAMES.indexOf(name),
          message_template_name: name,
          message_template_language: 'en',
          new_category: x.pick(['MARKETING', 'UTILITY']),
          correct_category: x.pick(['MARKETING', 'UTILITY', 'AUTHENTICATION']),
          category_update_timestamp: Math.floor(when / 1000) + x.range(0, 86400),
        }
      : {
          message_template_name: name,
          previous_category: 'UTILITY',
          new_category: x.pick(['MARKETING', 'UTILITY', 'AUTHENTICATION']),
        };
    events++;
    push(
      {
        object: 'whatsapp_business_account',
        entry: [
          {
            id: s.waba.id,
            time: Math.floor(when / 1000),
            changes: [{ field: 'template_category_update', value }],
          },
        ],
      },
      when,
    );
  }
  // `played` (a voice message heard) and a word Meta may add: for a message already sent.
  for (let k = 0; k < x.range(0, 2); k++) {
    const s = pickSent();
    if (s === undefined) break;
    const at = s.t + x.range(60, 20 * 3600) * 1000;
    const word = x.pick(['played', 'played', 'deleted']);
    events++;
    // Webhook bodies only: a status line's word is one of the contract's four (contract.md §1).
    push(
      webhookBody(s.waba.id, s.business, {
        statuses: [
          { id: s.id, status: word, timestamp: String(Math.floor(at / 1000)), recipient_id: s.user.metaForm },
        ],
      }),
      at,
    );
  }
  // Webhook-only messages priced under PMP's newer categories (sent, then delivered or read).
  if (sent.length > 0 && x.chance(0.5)) {
    for (let k = 0; k < x.range(1, 3); k++) {
      const s = pickSent() as SentMessage;
      const at = s.t + x.range(1, 30 * 3600) * 1000;
      const category = x.pick([
        'authentication_international',
        'authentication-international',
        'marketing_lite',
        'utility',
      ]);
      const id = `wamid.x${seed}x${counter++}`;
      const model = eraModel(at);
      const pricing = { billable: true, pricing_model: model, category, type: 'regular' };
      const statuses: Record<string, unknown>[] = [];
      if (x.chance(0.6))
        statuses.push({
          id,
          status: 'sent',
          timestamp: String(Math.floor(at / 1000)),
          recipient_id: s.user.metaForm,
          pricing,
        });
      const dAt = at + x.range(1, 600) * 1000;
      statuses.push({
        id,
        status: x.chance(0.8) ? 'delivered' : 'read',
        timestamp: String(Math.floor(dAt / 1000)),
        recipient_id: s.user.metaForm,
        ...(statuses.length === 0 || x.chance(0.5) ? { pricing } : {}),
      });
      events += statuses.length;
      for (const st of statuses) push(webhookBody(s.waba.id, s.business, { statuses: [st] }), at);
    }
  }
  // A system message (the user changed number): no contacts, not a message from the user.
  if (sent.length > 0 && x.chance(0.2)) {
    const s = pickSent() as SentMessage;
    const at = s.t + x.range(-3600, 3600) * 1000;
    events++;
    push(
      webhookBody(s.waba.id, s.business, {
        messages: [
          {
            from: s.user.metaForm,
            id: `wamid.sys${seed}x${counter++}`,
            timestamp: String(Math.floor(at / 1000)),
            system: {
              body: 'User changed number',
              wa_id: x.pick(users).metaForm,
              type: 'user_changed_number',
            },
            type: 'system',
          },
        ],
      }),
      at,
    );
  }
  // A WhatsApp group: a user's message in it (no 1:1 window) and Meta's billed status of a message to it.
  if (sent.length > 0 && x.chance(0.2)) {
    const s = pickSent() as SentMessage;
    const at = s.t + x.range(-3600, 3600) * 1000;
    events += 2;
    push(
      webhookBody(s.waba.id, s.business, {
        contacts: [{ profile: { name: 'U' }, wa_id: s.user.metaForm }],
        messages: [
          {
            from: s.user.metaForm,
            group_id: 'HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA',
            id: `wamid.g${seed}x${counter++}`,
            timestamp: String(Math.floor(at / 1000)),
            type: 'text',
            text: { body: 'hi all' },
          },
        ],
      }),
      at,
    );
    push(
      webhookBody(s.waba.id, s.business, {
        statuses: [
          {
            id: `wamid.g${seed}x${counter++}`,
            status: 'delivered',
            timestamp: String(Math.floor(at / 1000) + 5),
            recipient_id: 'HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA',
            recipient_type: 'group',
            pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' },
          },
        ],
      }),
      at,
    );
  }
  // One POST with two WABAs' entries: a user's message to one, a status of another's message.
  if (sent.length > 0 && wabas.length > 1 && x.chance(0.4)) {
    const s = pickSent() as SentMessage;
    const other = x.pick(wabas.filter((w) => w !== s.waba));
    const at = s.t + x.range(1, 4 * 3600) * 1000;
    const u = x.pick(users);
    const inboundBody = webhookBody(other.id, x.pick(other.numbers), {
      contacts: [{ profile: { name: 'U' }, wa_id: u.metaForm }],
      messages: [
        {
          from: u.metaForm,
          id: `wamid.m${seed}x${counter++}`,
          timestamp: String(Math.floor(at / 1000)),
          type: 'text',
          text: { body: 'hi' },
        },
      ],
    }) as { entry: unknown[] };
    const statusBody = webhookBody(s.waba.id, s.business, {
      statuses: [
        {
          id: s.id,
          status: 'delivered',
          timestamp: String(Math.floor((s.t + 5000) / 1000)),
          recipient_id: s.user.metaForm,
        },
      ],
    }) as { entry: unknown[] };
    events += 2;
    push(
      { object: 'whatsapp_business_account', entry: [...inboundBody.entry, ...statusBody.entry] },
      Math.min(at, s.t + 5000),
    );
  }
  return { lines, events };
}

// ---------------------------------------------------------------------------------------------------------
// Running wameter

const here = dirname(fileURLToPath(import.meta.url));
let CLI = resolve(here, '../src/cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: Record<string, string> = {}): Run {
  const res = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 1 << 28,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

export interface Canon {
  units: string[];
  totals: string;
  pending?: string[];
  findings?: string[];
  findingCodes?: string[];
  note?: string;
  error?: string;
}

function canonUnit(u: Record<string, unknown>): string {
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(u).sort()) if (key !== 'id') copy[key] = u[key];
  return JSON.stringify(copy);
}

function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function canonRate(run: Run): Canon {
  // 2: some lines malformed (named on stderr), the rest rated: the document is still compared.
  if (run.code !== 0 && run.code !== 2 && run.code !== 3) {
    return { units: [], totals: '', error: `exit ${run.code}: ${run.stderr.slice(0, 400)}` };
  }
  const doc = JSON.parse(run.stdout) as {
    units: Record<string, unknown>[];
    pending: Record<string, unknown>[];
    totals: unknown;
    findings: { code: string; message: string }[];
  };
  return {
    units: doc.units.map(canonUnit).sort(),
    totals: sortedJson(doc.totals),
    pending: doc.pending.map((p) => sortedJson(p)).sort(),
    findings: doc.findings.map((f) => sortedJson(f)).sort(),
    findingCodes: doc.findings.map((f) => f.code).sort(),
  };
}

interface Workspace {
  dir: string;
  accounts: string;
  input: string;
  /** The rate-card folder, when the seed is rated with volume tiers. */
  cards?: string;
}

/** The repository whose bundled cards the tier folders copy: the one the CLI was built from. */
function repoRoot(): string {
  return resolve(dirname(CLI), '../../..');
}

function cardFlags(ws: Workspace): string[] {
  return ws.cards === undefined ? [] : ['--rate-cards', ws.cards];
}

function writeWorkspace(dir: string, traffic: Traffic, lines: Line[]): Workspace {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const accounts = join(dir, 'accounts.json');
  const input = join(dir, 'input.ndjson');
  writeFileSync(accounts, JSON.stringify(traffic.accounts, null, 1) + '\n');
  writeFileSync(input, lines.map((l) => l.text).join('\n') + '\n');
  const ws: Workspace = { dir, accounts, input };
  if (traffic.tiers) ws.cards = writeTierCards(dir, repoRoot());
  return ws;
}

const RATE_FLAGS = ['--format', 'json', '--allow-unpriced'];

function batchPath(ws: Workspace): Canon {
  return canonRate(runCli(['rate', ws.input, '--accounts', ws.accounts, ...cardFlags(ws), ...RATE_FLAGS]));
}

/** `wameter rate` (batch) over other lines, with the workspace's accounts and cards. */
function rateLines(ws: Workspace, lines: Line[]): Canon {
  const file = join(ws.dir, 'lines.ndjson');
  writeFileSync(file, lines.map((l) => l.text).join('\n') + '\n');
  const canon = canonRate(runCli(['rate', file, '--accounts', ws.accounts, ...cardFlags(ws), ...RATE_FLAGS]));
  rmSync(file, { force: true });
  return canon;
}

/** --findings: a difference in findings alone counts (a documented limit must then explain them too). */
let strict = false;

/** Shuffled, some lines duplicated, split into 2–4 files. Deterministic in (seed, lines). */
function shuffledFiles(ws: Workspace, lines: Line[], seed: number, sub: string): string[] {
  const r = new Rand(seed ^ 0x5bd1e995);
  const copies = [...lines];
  for (const l of lines) if (r.chance(0.25)) copies.push(l);
  r.shuffle(copies);
  const k = Math.min(copies.length, r.range(2, 4));
  const dir = join(ws.dir, sub);
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < k; i++) {
    const part = copies.filter((_, j) => j % k === i);
    const file = join(dir, `part${i}.ndjson`);
    writeFileSync(file, part.map((l) => l.text).join('\n') + '\n');
    files.push(file);
  }
  return r.shuffle(files);
}

function shufflePath(ws: Workspace, lines: Line[], seed: number): Canon {
  const files = shuffledFiles(ws, lines, seed, 'shuffled');
  return canonRate(runCli(['rate', ...files, '--accounts', ws.accounts, ...cardFlags(ws), ...RATE_FLAGS]));
}

let streamLateness = '100000h';

function streamPath(ws: Workspace, lines: Line[]): Canon {
  // Lines of a given file (--input) have no known time: rated in their own order.
  const sorted = lines.some((l) => Number.isNaN(l.t)) ? lines : [...lines].sort((a, b) => a.t - b.t);
  const file = join(ws.dir, 'sorted.ndjson');
  writeFileSync(file, sorted.map((l) => l.text).join('\n') + '\n');
  const canon = canonRate(
    runCli([
      'rate',
      file,
      '--stream',
      '--max-lateness',
      streamLateness,
      '--accounts',
      ws.accounts,
      ...cardFlags(ws),
      ...RATE_FLAGS,
    ]),
  );
  if (inboundCopiesDisagree(lines)) canon.note = 'INBOUND_COPIES';
  if (canon.findingCodes?.includes('READ_RECEIPT_ONLY')) canon.note = 'READ_RECEIPT_ONLY';
  canon.note ??= forgettingLimit(
    lines,
    parseDuration(streamLateness),
    canon,
    (l) => rateLines(ws, l),
    strict,
  );
  return canon;
}

/**
 * Do inbound lines of one id name two business numbers or users? A stream rates such copies as two messages
 * where a batch keeps one (docs/decisions.md, "Known limits"): its difference is said as doc(INBOUND_COPIES).
 */
function inboundCopiesDisagree(lines: Line[]): boolean {
  const pairOfId = new Map<string, string>();
  for (const line of lines) {
    if (!line.text.startsWith('{"kind":"inbound"')) continue;
    const event = JSON.parse(line.text) as { id?: string; business?: string; user?: string };
    const pair = `${event.business}\u0000${event.user}`;
    const before = pairOfId.get(String(event.id));
    if (before !== undefined && before !== pair) return true;
    pairOfId.set(String(event.id), pair);
  }
  return false;
}

let sweptLateness = '36h';

/**
 * The time-sorted lines merged with 100,000–150,000 inbound lines of an unrelated WABA spread over the same
 * time, so that the stream moves its horizon (every 50,000 events), rates what is behind
 * it and forgets quiet pairs while the seed's traffic is read. The filler opens no unit.
 */
function streamSweptPath(ws: Workspace, lines: Line[], seed: number): Canon {
  const sorted = [...lines].sort((a, b) => a.t - b.t);
  const first = sorted[0]?.t ?? 0;
  const last = sorted[sorted.length - 1]?.t ?? 0;
  // 100,000–150,000 fillers over the seed's own span: the horizon moves at a third to a half of it, and again
  // at two thirds or later.
  const fillers = 100_000 + new Rand(seed).int(50_000);
  const step = Math.max(1, Math.floor((last - first) / fillers));
  const out: string[] = [];
  let j = 0;
  for (let i = 0; i < fillers; i++) {
    const t = first + i * step;
    while (j < sorted.length && (sorted[j] as Line).t <= t) out.push((sorted[j++] as Line).text);
    const user = `1202555${String(i % 100_000).padStart(5, '0')}`.slice(0, 11) + String(i % 10);
    out.push(
      `{"kind":"inbound","at":"${iso(t - (t % 1000))}","waba":"FILLER","business":"FILLERPN","user":"${user}","id":"wamid.filler${i}"}`,
    );
  }
  while (j < sorted.length) out.push((sorted[j++] as Line).text);
  const file = join(ws.dir, 'swept.ndjson');
  writeFileSync(file, out.join('\n') + '\n');
  const canon = canonRate(
    runCli([
      'rate',
      file,
      '--stream',
      '--max-lateness',
      sweptLateness,
      '--accounts',
      ws.accounts,
      ...cardFlags(ws),
      ...RATE_FLAGS,
    ]),
  );
  rmSync(file, { force: true });
  if (inboundCopiesDisagree(lines)) canon.note = 'INBOUND_COPIES';
  if (canon.findingCodes?.includes('READ_RECEIPT_ONLY')) canon.note = 'READ_RECEIPT_ONLY';
  if (canon.findingCodes?.some((c) => c.startsWith('LATE'))) canon.note = 'LATE';
  // The filler WABA is not in the accounts file: drop what is said of it alone.
  if (canon.findings !== undefined) canon.findings = canon.findings.filter((f) => !f.includes('FILLER'));
  canon.note ??= forgettingLimit(lines, parseDuration(sweptLateness), canon, (l) => rateLines(ws, l), strict);
  return canon;
}

// ---------------------------------------------------------------------------------------------------------
// Documented limits of a stream that rates and forgets (docs/decisions.md, "Known limits")

/** One item a line names: an event line, or one status or message of a webhook body. */
export interface Item {
  /** The line's index. */
  line: number;
  /** Where in a webhook body: entry, change, list and index; undefined for an event line. */
  at?: { entry: number; change: number; list: 'statuses' | 'messages'; index: number };
  id: string;
  kind: string;
  waba?: string;
  status?: string;
  /** Event time (ms); NaN when the item says none the tester reads. */
  t: number;
  /** Its place in the stream's order: the lines time-sorted (as `rate --stream` reads them here), then in turn. */
  seq: number;
  /**
   * The stream's newest event time once the item is read (its watermark: the horizon is that less the
   * lateness). A webhook body is placed by its earliest item, so its later items move it ahead of the lines
   * around it.
   */
  wm: number;
}

/** An event line's `at` or a webhook's `timestamp` (Unix seconds, a number or digits, or ISO-8601), in ms. */
function timeOf(at: unknown): number {
  if (typeof at === 'number') return at * 1000;
  if (typeof at !== 'string') return Number.NaN;
  if (/^\d+$/.test(at)) return Number(at) * 1000;
  return Date.parse(at);
}

/** The items of the lines that name a message id. */
export function itemsOf(lines: Line[]): Item[] {
  const items: Item[] = [];
  lines.forEach((line, index) => {
    let doc: unknown;
    try {
      doc = JSON.parse(line.text);
    } catch {
      return;
    }
    if (doc === null || typeof doc !== 'object') return;
    const o = doc as Record<string, unknown>;
    if (typeof o.kind === 'string') {
      if (typeof o.id !== 'string') return;
      items.push({
        line: index,
        id: o.id,
        kind: o.kind,
        ...(typeof o.waba === 'string' ? { waba: o.waba } : {}),
        ...(typeof o.status === 'string' ? { status: o.status } : {}),
        t: timeOf(o.at),
        seq: 0,
        wm: Number.NaN,
      });
      return;
    }
    if (!Array.isArray(o.entry)) return;
    o.entry.forEach((entry: { id?: unknown; changes?: unknown }, e) => {
      if (!Array.isArray(entry?.changes)) return;
      entry.changes.forEach((change: { value?: Record<string, unknown> }, c) => {
        for (const list of ['statuses', 'messages'] as const) {
          const elements = change?.value?.[list];
          if (!Array.isArray(elements)) continue;
          elements.forEach((el: { id?: unknown; status?: unknown; timestamp?: unknown }, i) => {
            if (typeof el?.id !== 'string') return;
            items.push({
              line: index,
              at: { entry: e, change: c, list, index: i },
              id: el.id,
              kind: list === 'statuses' ? 'status' : 'inbound',
              ...(typeof entry.id === 'string' ? { waba: entry.id } : {}),
              ...(typeof el.status === 'string' ? { status: el.status } : {}),
              t: timeOf(el.timestamp),
              seq: 0,
              wm: Number.NaN,
            });
          });
        }
      });
    });
  });
  // The stream's order (streamPath, streamSweptPath): by the line's time, stable; lines of no known time in
  // their own order.
  const order = lines.map((_, i) => i);
  if (!lines.some((l) => Number.isNaN(l.t))) order.sort((a, b) => lines[a]!.t - lines[b]!.t || a - b);
  const itemsOfLine = new Map<number, Item[]>();
  for (const item of items) itemsOfLine.set(item.line, [...(itemsOfLine.get(item.line) ?? []), item]);
  let seq = 0;
  let newest = -Infinity;
  for (const index of order) {
    for (const item of itemsOfLine.get(index) ?? []) {
      if (!Number.isNaN(item.t)) newest = Math.max(newest, item.t);
      item.seq = seq++;
      item.wm = newest;
    }
  }
  return items;
}

/**
 * What a stream does not give a message: the item goes (to none), or, a status line naming no WABA, goes to
 * the WABAs named (a copy of the line naming each).
 */
export interface Change {
  item: Item;
  to: string[];
}

/**
 * The lines with `changes` made: an event line goes whole or is replaced by its copies; a webhook body keeps
 * its other items (a change, an entry or the body left with none goes).
 */
export function withChanges(lines: Line[], changes: Iterable<Change>): Line[] {
  const byLine = new Map<number, Change[]>();
  for (const change of changes)
    byLine.set(change.item.line, [...(byLine.get(change.item.line) ?? []), change]);
  const out: Line[] = [];
  lines.forEach((line, index) => {
    const made = byLine.get(index);
    if (made === undefined) {
      out.push(line);
      return;
    }
    const eventLine = made.find((change) => change.item.at === undefined);
    if (eventLine !== undefined) {
      const event = JSON.parse(line.text) as Record<string, unknown>;
      for (const waba of eventLine.to) out.push({ text: JSON.stringify({ ...event, waba }), t: line.t });
      return;
    }
    const body = JSON.parse(line.text) as {
      entry: { changes: { value: Record<string, unknown[] | undefined> }[] }[];
    };
    for (const { item } of made) {
      const at = item.at!;
      body.entry[at.entry]!.changes[at.change]!.value[at.list]![at.index] = null;
    }
    for (const entry of body.entry) {
      entry.changes = entry.changes.filter((change) => {
        let emptied = false;
        for (const list of ['statuses', 'messages'] as const) {
          const elements = change.value[list];
          if (elements === undefined) continue;
          change.value[list] = elements.filter((el) => el !== null);
          if (change.value[list].length === 0) {
            delete change.value[list];
            emptied = true;
          }
        }
        return !emptied || change.value.statuses !== undefined || change.value.messages !== undefined;
      });
    }
    body.entry = body.entry.filter((entry) => entry.changes.length > 0);
    if (body.entry.length > 0) out.push({ text: JSON.stringify(body), t: line.t });
  });
  return out;
}

/**
 * The items of a WABA met only after another WABA's message of the same id could be rated and forgotten: a
 * stream takes them for duplicates of that message (decisions.md, "Known limits"; seeds 90012, 93070). Those
 * of each WABA (of an id) whose first item comes when the stream's horizon is past the first WABA's earliest
 * item, go; and so do the statuses naming no WABA that come then (seed 93089), but for the messages of the id
 * the stream may still keep (by their earliest item: `withBare` false leaves them as they are, seed 93072).
 */
export function secondWabaChanges(items: Item[], latenessMs: number, withBare = true): Change[] {
  const byId = new Map<string, Item[]>();
  for (const item of items) {
    if (item.waba === undefined || Number.isNaN(item.t)) continue;
    byId.set(item.id, [...(byId.get(item.id) ?? []), item]);
  }
  const changes: Change[] = [];
  for (const ofId of byId.values()) {
    const inOrder = [...ofId].sort((x, y) => x.seq - y.seq);
    const firstWaba = inOrder[0]!.waba;
    const earliest = Math.min(...ofId.filter((i) => i.waba === firstWaba).map((i) => i.t));
    const met = new Set<string>([firstWaba!]);
    const late = new Set<string>();
    for (const item of inOrder) {
      if (met.has(item.waba!)) continue;
      met.add(item.waba!);
      if (earliest < item.wm - latenessMs) late.add(item.waba!);
    }
    for (const item of ofId) if (late.has(item.waba!)) changes.push({ item, to: [] });
    if (late.size === 0 || !withBare) continue;
    // A status naming no WABA that comes once the horizon is past the first WABA's message reaches only the
    // messages of the id the stream still keeps: those of WABAs met in time whose earliest item is not behind
    // that horizon. It goes to those.
    const earliestOf = (waba: string) => Math.min(...ofId.filter((i) => i.waba === waba).map((i) => i.t));
    for (const item of items) {
      if (item.id !== inOrder[0]!.id || item.waba !== undefined || !(earliest < item.wm - latenessMs))
        continue;
      const kept = [...met].filter((w) => !late.has(w) && earliestOf(w) >= item.wm - latenessMs).sort();
      changes.push({ item, to: kept });
    }
  }
  return changes;
}

/**
 * `delivered` reports that come when the stream's horizon is past a read receipt (or a `played`) of their
 * message: a stream that rated the message at its read takes them for its duplicates (decisions.md,
 * "Streaming": the twenty-sixth session's limit; seed 91017). A report naming no WABA still reaches the
 * messages of that id of the other WABAs (as a batch's does every WABA's): it goes to those, but for the
 * WABAs in `gone` (`id` NUL `waba`: their items taken away). A report and a receipt naming two WABAs are not
 * paired.
 */
export function deliveredAfterReadChanges(
  items: Item[],
  latenessMs: number,
  gone: ReadonlySet<string> = new Set(),
  /**
   * The reports a stream rates a message at: a read receipt or a `played` (which imply delivery, rate-events.ts),
   * or — `['delivered']` — an earlier `delivered` itself, for a second `delivered` that comes once the horizon
   * is past the first (decisions.md, "Streaming": seed 93014; its pricing is then not read).
   */
  ratedAt: readonly string[] = ['read', 'played'],
): Change[] {
  const reads = items.filter(
    (item) => item.status !== undefined && ratedAt.includes(item.status) && !Number.isNaN(item.t),
  );
  const changes: Change[] = [];
  for (const item of items) {
    if (item.status !== 'delivered') continue;
    const horizon = Math.max(item.wm, item.t) - latenessMs;
    const earlier = reads.filter(
      (read) =>
        read.id === item.id &&
        read.t < horizon &&
        read.seq < item.seq &&
        (read.waba === undefined || item.waba === undefined || read.waba === item.waba),
    );
    if (earlier.length === 0) continue;
    if (item.waba !== undefined) {
      changes.push({ item, to: [] });
      continue;
    }
    const wabasOfId = new Set(
      items
        .filter((i) => i.id === item.id && i.waba !== undefined && !gone.has(`${i.id}\u0000${i.waba}`))
        .map((i) => i.waba!),
    );
    const rated = earlier.some((read) => read.waba === undefined)
      ? wabasOfId
      : new Set(earlier.map((read) => read.waba!));
    changes.push({ item, to: [...wabasOfId].filter((waba) => !rated.has(waba)).sort() });
  }
  return changes;
}

/**
 * Is a stream's bill one of the documented limits of a stream that forgets? Each names the items the
 * stream takes for duplicates of a message it rated; the stream's output is said as that limit only when
 * `rate` over the lines with those items taken from that message (`withChanges`) gives it — the bill, and the
 * findings too when `strict`. Any other difference, alone or beside these, is not explained. `rateLines` is
 * `wameter rate` (batch) over the lines.
 */
export function forgettingLimit(
  lines: Line[],
  latenessMs: number,
  stream: Canon,
  rateLines: (lines: Line[]) => Canon,
  strict: boolean,
): string | undefined {
  if (stream.error !== undefined) return undefined;
  const items = itemsOf(lines);
  const lateOnly = secondWabaChanges(items, latenessMs, false);
  const second = secondWabaChanges(items, latenessMs);
  const delivered = deliveredAfterReadChanges(items, latenessMs);
  const tries: [string, Change[]][] = [];
  if (lateOnly.length > 0) tries.push(['SECOND_WABA_FORGOTTEN', lateOnly]);
  if (second.length > lateOnly.length) tries.push(['SECOND_WABA_FORGOTTEN', second]);
  if (delivered.length > 0) tries.push(['DELIVERED_AFTER_READ', delivered]);
  const again = deliveredAfterReadChanges(items, latenessMs, new Set(), ['delivered']);
  if (again.length > 0) tries.push(['DELIVERED_AGAIN', again]);
  if (lateOnly.length > 0 && delivered.length > 0) {
    const gone = new Set(lateOnly.map(({ item }) => `${item.id}\u0000${item.waba}`));
    const others = deliveredAfterReadChanges(items, latenessMs, gone);
    const taken = new Set(second.map(({ item }) => item));
    for (const changes of second.length > lateOnly.length ? [second, lateOnly] : [lateOnly]) {
      const more = changes === second ? others.filter(({ item }) => !taken.has(item)) : others;
      tries.push(['SECOND_WABA_FORGOTTEN+DELIVERED_AFTER_READ', [...changes, ...more]]);
    }
  }
  for (const [name, changes] of tries) {
    const diff = compare(rateLines(withChanges(lines, changes)), stream);
    if (diff === undefined || (!strict && !billDiffers(diff))) return name;
  }
  return undefined;
}

let portCounter = 0;
let basePort = 21300;

async function httpGet(url: string): Promise<unknown> {
  const res = await fetch(url, { headers: { authorization: 'Bearer k' } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${body.slice(0, 300)}`);
  return JSON.parse(body) as unknown;
}

/** Reads the stored bill through `wameter serve`'s API (a port in use: the next one, up to 5 tries). */
async function readStore(db: string, ws: Workspace): Promise<Canon> {
  let last: Canon = { units: [], totals: '', error: 'serve not tried' };
  for (let attempt = 0; attempt < 5; attempt++) {
    last = await readStoreOnce(db, ws);
    if (last.error === undefined || !last.error.startsWith('serve did not start')) return last;
  }
  return last;
}

interface Served {
  base: string;
  stop: () => Promise<void>;
  error?: string;
}

const APP_SECRET = 'differential-secret';

/** Is the port free on 127.0.0.1? (A server left by another run must not answer for ours.) */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const probe = createServer();
    probe.once('error', () => res(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => res(true)));
  });
}

/** Serve processes started and not yet stopped: stopped on SIGTERM/SIGINT too. */
const liveChildren = new Set<ChildProcess>();

async function startServe(db: string, ws: Workspace): Promise<Served> {
  let port = basePort + (portCounter++ % 200);
  for (let i = 0; i < 200 && !(await portIsFree(port)); i++) port = basePort + (portCounter++ % 200);
  const config = join(ws.dir, `serve-${port}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      db,
      port,
      host: '127.0.0.1',
      apiKeys: 'k=*',
      appSecrets: [APP_SECRET],
      rateLimit: false,
      accounts: ws.accounts,
      logLevel: 'error',
      ...(ws.cards === undefined ? {} : { rateCards: ws.cards }),
    }),
  );
  const child = spawn(process.execPath, [CLI, 'serve', '--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  liveChildren.add(child);
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    liveChildren.delete(child);
  };
  const base = `http://127.0.0.1:${port}`;
  let up = false;
  for (let i = 0; i < 300 && !up && child.exitCode === null; i++) {
    try {
      const res = await fetch(`${base}/healthz`);
      up = res.status === 200;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  if (!up) {
    await stop();
    return { base, stop, error: `serve did not start: ${stderr.slice(0, 400)}` };
  }
  return { base, stop };
}

async function readApi(base: string): Promise<Canon> {
  const units: Record<string, unknown>[] = [];
  let cursor: string | null = null;
  do {
    const q: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const page = (await httpGet(`${base}/v1/units?limit=1000${q}`)) as {
      units: Record<string, unknown>[];
      next_cursor: string | null;
    };
    units.push(...page.units);
    cursor = page.next_cursor;
  } while (cursor !== null);
  const totals = (await httpGet(`${base}/v1/totals`)) as { totals: unknown };
  return { units: units.map(canonUnit).sort(), totals: sortedJson(totals.totals) };
}

async function readStoreOnce(db: string, ws: Workspace): Promise<Canon> {
  const served = await startServe(db, ws);
  if (served.error !== undefined) return { units: [], totals: '', error: served.error };
  try {
    return await readApi(served.base);
  } finally {
    await served.stop();
  }
}

/**
 * The live service: a fresh store, the lines shuffled (some duplicated) and sent in 2–5 requests — event
 * lines to POST /v1/events, webhook bodies signed to POST /webhooks/whatsapp (or, now and then, as lines of
 * /v1/events) — with a read of /v1/totals between requests (a live rating of what has come so far).
 */
async function livePath(kind: 'sqlite' | 'pg', ws: Workspace, lines: Line[], seed: number): Promise<Canon> {
  const r = new Rand(seed ^ 0x1f2e3d4c);
  let db: string;
  let dbName = '';
  if (kind === 'sqlite') {
    const file = join(ws.dir, 'live.db');
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    db = `sqlite:${file}`;
  } else {
    dbName = `h_diff_${process.pid}_live`;
    psql(`DROP DATABASE IF EXISTS ${dbName}`);
    psql(`CREATE DATABASE ${dbName}`);
    db = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  }
  const copies = [...lines];
  for (const l of lines) if (r.chance(0.25)) copies.push(l);
  r.shuffle(copies);
  const requests = Math.min(copies.length, r.range(2, 5));
  let served: Served | undefined;
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      served = await startServe(db, ws);
      if (served.error === undefined) break;
    }
    if (served === undefined || served.error !== undefined) {
      return { units: [], totals: '', error: served?.error ?? 'serve not started' };
    }
    const base = served.base;
    const log: string[] = [];
    for (let i = 0; i < requests; i++) {
      const part = copies.filter((_, j) => j % requests === i);
      const eventLines: string[] = [];
      for (const l of part) {
        if (l.text.startsWith('{"object"') && r.chance(0.8)) {
          const signature = signMetaBody(l.text, APP_SECRET);
          const res = await fetch(`${base}/webhooks/whatsapp`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
            body: l.text,
          });
          const answer = await res.text();
          if (res.status !== 200) log.push(`webhook ${res.status} ${answer.slice(0, 200)}`);
        } else eventLines.push(l.text);
      }
      if (eventLines.length > 0) {
        const res = await fetch(`${base}/v1/events`, {
          method: 'POST',
          headers: { authorization: 'Bearer k', 'content-type': 'application/x-ndjson' },
          body: eventLines.join('\n') + '\n',
        });
        const answer = await res.text();
        if (res.status !== 200 || answer.includes('"rejected":[{'))
          log.push(`events ${res.status} ${answer.slice(0, 300)}`);
      }
      if (r.chance(0.7)) await httpGet(`${base}/v1/totals`);
    }
    const canon = await readApi(base);
    if (log.length > 0) canon.error = log.join(' | ');
    return canon;
  } finally {
    if (served !== undefined) await served.stop();
    if (kind === 'pg') psql(`DROP DATABASE IF EXISTS ${dbName}`);
  }
}

function importInto(db: string, config: string, files: string[]): string | undefined {
  const run = runCli(['import', ...files, '--db', db, '--config', config, '--allow-unpriced']);
  if (run.code !== 0 && run.code !== 2) return `import exit ${run.code}: ${run.stderr.slice(0, 400)}`;
  return undefined;
}

function psql(sql: string): void {
  spawnSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'test', '-qAtc', sql], { encoding: 'utf8' });
}

async function storePath(
  kind: 'sqlite' | 'pg',
  chunks: boolean,
  ws: Workspace,
  lines: Line[],
  seed: number,
): Promise<Canon> {
  const name = `${kind}${chunks ? '-chunks' : ''}`;
  let db: string;
  let dbName = '';
  if (kind === 'sqlite') {
    const file = join(ws.dir, `${name}.db`);
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    db = `sqlite:${file}`;
  } else {
    dbName = `h_diff_${process.pid}_${chunks ? 'c' : 'o'}`;
    psql(`DROP DATABASE IF EXISTS ${dbName}`);
    psql(`CREATE DATABASE ${dbName}`);
    db = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  }
  const config = join(ws.dir, `import-${name}.json`);
  writeFileSync(
    config,
    JSON.stringify({ accounts: ws.accounts, ...(ws.cards === undefined ? {} : { rateCards: ws.cards }) }),
  );
  try {
    const files = chunks ? shuffledFiles(ws, lines, seed + 17, `chunks-${name}`) : [ws.input];
    for (const f of files) {
      const err = importInto(db, config, [f]);
      if (err !== undefined) return { units: [], totals: '', error: err };
    }
    return await readStore(db, ws);
  } finally {
    if (kind === 'pg') psql(`DROP DATABASE IF EXISTS ${dbName}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Comparing

export interface Difference {
  summary: string;
  detail: string;
}

function multisetDiff(a: string[], b: string[]): { onlyA: string[]; onlyB: string[] } {
  const counts = new Map<string, number>();
  for (const x of a) counts.set(x, (counts.get(x) ?? 0) + 1);
  const onlyB: string[] = [];
  for (const x of b) {
    const c = counts.get(x) ?? 0;
    if (c > 0) counts.set(x, c - 1);
    else onlyB.push(x);
  }
  const onlyA: string[] = [];
  for (const [x, c] of counts) for (let i = 0; i < c; i++) onlyA.push(x);
  return { onlyA, onlyB };
}

/** Compares a path with batch; `undefined` when they agree on what the path can tell. */
function compare(ref: Canon, other: Canon): Difference | undefined {
  if (ref.error !== undefined || other.error !== undefined) {
    if (ref.error === other.error) return undefined;
    return { summary: 'error', detail: `batch: ${ref.error ?? 'ok'}\npath: ${other.error ?? 'ok'}` };
  }
  const parts: string[] = [];
  const details: string[] = [];
  const u = multisetDiff(ref.units, other.units);
  if (u.onlyA.length + u.onlyB.length > 0) {
    parts.push(`units -${u.onlyA.length}+${u.onlyB.length}`);
    details.push(...u.onlyA.map((x) => `- ${x}`), ...u.onlyB.map((x) => `+ ${x}`));
  }
  if (ref.totals !== other.totals) {
    parts.push('totals');
    details.push(`- totals ${ref.totals}`, `+ totals ${other.totals}`);
  }
  if (ref.pending !== undefined && other.pending !== undefined) {
    const p = multisetDiff(ref.pending, other.pending);
    if (p.onlyA.length + p.onlyB.length > 0) {
      parts.push(`pending -${p.onlyA.length}+${p.onlyB.length}`);
      details.push(...p.onlyA.map((x) => `- pending ${x}`), ...p.onlyB.map((x) => `+ pending ${x}`));
    }
  }
  if (ref.findings !== undefined && other.findings !== undefined) {
    const f = multisetDiff(ref.findings, other.findings);
    if (f.onlyA.length + f.onlyB.length > 0) {
      parts.push(`findings -${f.onlyA.length}+${f.onlyB.length}`);
      details.push(...f.onlyA.map((x) => `- finding ${x}`), ...f.onlyB.map((x) => `+ finding ${x}`));
    }
  }
  if (parts.length === 0) return undefined;
  return { summary: parts.join(','), detail: details.join('\n') };
}

/**
 * Is a store path's difference only the units `rate` bills under a business number no WABA ties
 * (WABA_UNKNOWN: statuses alone naming no WABA)? The stores list such statuses with no rating and count them
 * (docs/storage.md, `countUnattributedStatuses`; `wameter import` says how many): documented, not counted.
 */
function onlyUnattributed(ref: Canon, other: Canon): boolean {
  if (other.findings !== undefined || ref.findings === undefined || other.error !== undefined) return false;
  const unknown = new Set<string>();
  for (const f of ref.findings) {
    const finding = JSON.parse(f) as { code?: string; business?: string };
    if (finding.code === 'WABA_UNKNOWN' && finding.business !== undefined) unknown.add(finding.business);
  }
  if (unknown.size === 0) return false;
  const u = multisetDiff(ref.units, other.units);
  return (
    u.onlyB.length === 0 &&
    u.onlyA.length > 0 &&
    u.onlyA.every((x) => unknown.has((JSON.parse(x) as { waba: string }).waba)) &&
    ref.units.filter((x) => !unknown.has((JSON.parse(x) as { waba: string }).waba)).length ===
      other.units.length
  );
}

/** Does the difference concern the bill (units, totals, pending, error), not only the findings? */
function billDiffers(d: Difference): boolean {
  return d.summary.split(',').some((p) => !p.startsWith('findings'));
}

export const ALL_PATHS = [
  'shuffle',
  'stream',
  'stream-swept',
  'sqlite',
  'sqlite-chunks',
  'live',
  'pg',
  'pg-chunks',
  'live-pg',
] as const;
export type PathName = (typeof ALL_PATHS)[number];

async function runPath(path: PathName, ws: Workspace, lines: Line[], seed: number): Promise<Canon> {
  switch (path) {
    case 'shuffle':
      return shufflePath(ws, lines, seed);
    case 'stream':
      return streamPath(ws, lines);
    case 'stream-swept':
      return streamSweptPath(ws, lines, seed);
    case 'sqlite':
      return storePath('sqlite', false, ws, lines, seed);
    case 'sqlite-chunks':
      return storePath('sqlite', true, ws, lines, seed);
    case 'pg':
      return storePath('pg', false, ws, lines, seed);
    case 'pg-chunks':
      return storePath('pg', true, ws, lines, seed);
    case 'live':
      return livePath('sqlite', ws, lines, seed);
    case 'live-pg':
      return livePath('pg', ws, lines, seed);
  }
}

/** The difference of `path` from batch on these lines, if any (findings-only differences count when `strict`). */
async function differenceOn(
  path: PathName,
  traffic: Traffic,
  lines: Line[],
  dir: string,
  strict: boolean,
): Promise<{ diff?: Difference; ref: Canon; other: Canon }> {
  const ws = writeWorkspace(dir, traffic, lines);
  const ref = batchPath(ws);
  const other = await runPath(path, ws, lines, traffic.seed);
  const diff = compare(ref, other);
  if (diff === undefined || (!strict && !billDiffers(diff))) return { ref, other };
  return { diff, ref, other };
}

/** What a difference's summary names: `units`, `totals`, `pending`, `findings`. */
function kindsOf(d: Difference): string[] {
  return d.summary.split(',').map((p) => p.split(' ')[0] as string);
}

/**
 * Deletes lines while the path still differs from batch in the same way: in each part the first difference
 * named (units, totals, pending, findings), and with no documented difference (`Canon.note`) the first had not
 * — else a units difference shrinks to a read receipt alone (READ_RECEIPT_ONLY), another family.
 */
async function minimise(
  path: PathName,
  traffic: Traffic,
  dir: string,
  billOnly: boolean,
  first: Difference,
  note: string | undefined,
): Promise<Line[]> {
  let lines = [...traffic.lines];
  const kinds = kindsOf(first);
  const stillFails = async (candidate: Line[]) => {
    if (candidate.length === 0) return false;
    const { diff, other } = await differenceOn(path, traffic, candidate, join(dir, 'try'), !billOnly);
    if (diff === undefined || (billOnly && !billDiffers(diff)) || other.note !== note) return false;
    const named = kindsOf(diff);
    return kinds.every((kind) => named.includes(kind));
  };
  let chunk = Math.max(1, Math.floor(lines.length / 2));
  while (chunk >= 1) {
    let removed = false;
    for (let start = 0; start < lines.length;) {
      const candidate = [...lines.slice(0, start), ...lines.slice(start + chunk)];
      if (await stillFails(candidate)) {
        lines = candidate;
        removed = true;
      } else start += chunk;
    }
    if (!removed || chunk > 1) chunk = Math.floor(chunk / 2);
  }
  rmSync(join(dir, 'try'), { recursive: true, force: true });
  return lines;
}

function commandsFor(path: PathName, tiers: boolean): string {
  const cli = 'node dist/src/cli/main.js';
  const cards = tiers ? ' --rate-cards cards' : '';
  const cardsKey = tiers ? ',"rateCards":"cards"' : '';
  const batch = `${cli} rate input.ndjson --accounts accounts.json${cards} --format json --allow-unpriced > batch.json`;
  switch (path) {
    case 'shuffle':
      return `${batch}\n${cli} rate shuffled/*.ndjson --accounts accounts.json${cards} --format json --allow-unpriced > path.json\n`;
    case 'stream-swept':
      return `${batch}\n# swept.ndjson: the time-sorted lines merged with 100,000–150,000 filler inbound lines (differential.ts, streamSweptPath)\n${cli} rate swept.ndjson --stream --max-lateness ${sweptLateness} --accounts accounts.json${cards} --format json --allow-unpriced > path.json\n`;
    case 'stream':
      return `${batch}\n${cli} rate sorted.ndjson --stream --max-lateness 100000h --accounts accounts.json${cards} --format json --allow-unpriced > path.json\n`;
    default: {
      const chunks = path.endsWith('chunks');
      const db = path.startsWith('pg') ? 'postgres://postgres@127.0.0.1:5432/h_diff_x' : 'sqlite:store.db';
      const files = chunks ? `each of chunks-${path}/*.ndjson, one import per file` : 'input.ndjson';
      return (
        `${batch}\necho '{"accounts":"accounts.json"${cardsKey}}' > import.json\n` +
        `${cli} import ${files} --db ${db} --config import.json --allow-unpriced\n` +
        `echo '{"db":"${db}","port":21999,"host":"127.0.0.1","apiKeys":"k=*","accounts":"accounts.json"${cardsKey}}' > serve.json\n` +
        `${cli} serve --config serve.json &  # then:\n` +
        `curl -s -H 'Authorization: Bearer k' 'http://127.0.0.1:21999/v1/units?limit=1000' > path-units.json\n` +
        `curl -s -H 'Authorization: Bearer k' http://127.0.0.1:21999/v1/totals > path-totals.json\n`
      );
    }
  }
}

async function saveRepro(path: PathName, traffic: Traffic, lines: Line[], outDir: string, strict: boolean) {
  const dir = join(outDir, `seed${traffic.seed}-${path}`);
  const { diff, ref, other } = await differenceOn(path, traffic, lines, dir, strict);
  writeFileSync(join(dir, 'commands.sh'), commandsFor(path, traffic.tiers));
  writeFileSync(
    join(dir, 'batch.canon.txt'),
    [...ref.units, ref.totals, ...(ref.findings ?? [])].join('\n') + '\n',
  );
  writeFileSync(
    join(dir, 'path.canon.txt'),
    [...other.units, other.totals, ...(other.findings ?? []), other.error ?? ''].join('\n') + '\n',
  );
  writeFileSync(join(dir, 'diff.txt'), `${diff?.summary ?? 'no difference'}\n${diff?.detail ?? ''}\n`);
  return dir;
}

// ---------------------------------------------------------------------------------------------------------
// Command line

const HELP = `Usage: node dist/bench/differential.js [options]

Generates small adversarial traffic per seed (mulberry32) and rates it along paths that must agree with
\`wameter rate\` (batch): shuffle, stream, stream-swept, sqlite, sqlite-chunks, live, pg, pg-chunks, live-pg. One line per seed:
  seed=N lines=L events=E units=U  shuffle=ok stream=DIFF(units -1+1) sqlite=ok …

Options:
  --seeds A..B      seeds to run (default 1..20); a single N is one seed
  --paths LIST      comma-separated paths (default shuffle,stream,sqlite,sqlite-chunks)
  --pg N            also run pg and pg-chunks (PostgreSQL at 127.0.0.1:5432, user postgres) on every Nth seed
  --events N        most events per seed (default 40)
  --findings        count a difference in findings alone as a mismatch (default: only the bill)
  --minimise        minimise each mismatch (delete lines while it still differs) and save it under --out
  --out DIR         where repros go (default /tmp/diff-repro)
  --work DIR        scratch directory (default /tmp/diff-work)
  --port N          first port for wameter serve (default 21300; 200 ports used in turn)
  --cli FILE        wameter's CLI (default: ../src/cli/main.js beside this file)
  --dump SEED       print that seed's generated lines and accounts, and exit
  --verbose         print each difference's detail
  --input FILE      instead of generated seeds, compare the paths over this NDJSON file (e.g. one written by
                    dist/bench/write-traffic.js); the stream reads it in its own order
  --accounts FILE   the accounts file for --input
  --lateness D      --max-lateness of the stream path (default 100000h)
  --swept-lateness D  --max-lateness of the stream-swept path (default 36h): the seed's lines time-sorted and
                    merged with 100,000–150,000 filler inbound lines of another WABA, so that the stream rates and
                    forgets as it goes (it moves its horizon every 50,000 events)
  --f1              count a stream's difference on a seed with business-scoped ids as any other (minimised,
                    detailed) instead of saying it as F1(…)
  --extras          add what the spec allows beyond the seed's own lines (drawn apart, appended, so a seed's
                    lines without it stay as they were): Meta's tier statements, template_category_update in
                    its pending and id-less forms, played and unknown status words, webhook-only messages
                    priced authentication_international or marketing_lite, a system message, a group's message
                    and billed status, one POST with two WABAs' entries
  --zones LIST      comma-separated IANA time zones the WABAs' zones are drawn from, instead of the built-in
                    list (e.g. Pacific/Chatham,America/St_Johns,Africa/Cairo,America/Asuncion)
  --boundaries LIST comma-separated dates (YYYY-MM-DD) the traffic is placed around, instead of the era
                    switches and month ends built in (a seed with volume tiers keeps its own months)
  --keep            keep each seed's scratch folder (input, accounts, cards, path files) under --work
  -h, --help        this help
Exit code: 0 when every path agreed on every seed, 1 otherwise.`;

/** --zones and --boundaries, checked: a zone Intl does not know, or a date not written YYYY-MM-DD, is refused. */
function drawsOf(zones: string | undefined, boundaries: string | undefined): Draws {
  const listOf = (text: string) =>
    text
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  const draws: Draws = {
    zones: zones === undefined ? ZONES : listOf(zones),
    boundaries: boundaries === undefined ? BOUNDARIES : listOf(boundaries),
  };
  if (draws.zones.length === 0) throw new Error('--zones names no time zone');
  if (draws.boundaries.length === 0) throw new Error('--boundaries names no date');
  for (const zone of draws.zones)
    if (!isValidTimeZone(zone)) throw new Error(`--zones: ${JSON.stringify(zone)} is not an IANA time zone`);
  for (const date of draws.boundaries)
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`)))
      throw new Error(`--boundaries: ${JSON.stringify(date)} is not a date written YYYY-MM-DD`);
  return draws;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '1..20' },
      paths: { type: 'string', default: 'shuffle,stream,sqlite,sqlite-chunks' },
      pg: { type: 'string' },
      events: { type: 'string', default: '40' },
      findings: { type: 'boolean', default: false },
      minimise: { type: 'boolean', default: false },
      out: { type: 'string', default: '/tmp/diff-repro' },
      work: { type: 'string', default: '/tmp/diff-work' },
      port: { type: 'string' },
      cli: { type: 'string' },
      dump: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      input: { type: 'string' },
      accounts: { type: 'string' },
      lateness: { type: 'string' },
      'swept-lateness': { type: 'string' },
      f1: { type: 'boolean', default: false },
      extras: { type: 'boolean', default: false },
      zones: { type: 'string' },
      boundaries: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.cli !== undefined) CLI = resolve(values.cli);
  if (values.port !== undefined) basePort = Number(values.port);
  const maxEvents = Number(values.events);
  const draws = drawsOf(values.zones, values.boundaries);
  if (values.dump !== undefined) {
    const traffic = generate(Number(values.dump), maxEvents, values.extras, draws);
    console.log(JSON.stringify(traffic.accounts));
    for (const l of traffic.lines) console.log(l.text);
    return 0;
  }
  strict = values.findings;
  if (values.lateness !== undefined) streamLateness = values.lateness;
  if (values['swept-lateness'] !== undefined) sweptLateness = values['swept-lateness'];
  if (values.input !== undefined) {
    const text = readFileSync(values.input, 'utf8');
    const lines = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => ({ text: l, t: Number.NaN }));
    const accounts: object =
      values.accounts === undefined
        ? { accounts: [] }
        : (JSON.parse(readFileSync(values.accounts, 'utf8')) as object);
    const traffic: Traffic = { seed: 0, accounts, lines, events: lines.length, tiers: false };
    const ws = writeWorkspace(join(values.work, 'input'), traffic, lines);
    const ref = batchPath(ws);
    let bad = 0;
    for (const path of values.paths.split(',') as PathName[]) {
      const diff = compare(ref, await runPath(path, ws, lines, 1));
      const shown = diff === undefined ? 'ok' : `DIFF(${diff.summary})`;
      console.log(`input=${values.input} lines=${lines.length} units=${ref.units.length} ${path}=${shown}`);
      if (diff !== undefined) {
        bad++;
        writeFileSync(join(ws.dir, `${path}.diff.txt`), diff.detail + '\n');
      }
    }
    return bad === 0 ? 0 : 1;
  }
  const m = /^(\d+)(?:\.\.(\d+))?$/.exec(values.seeds);
  if (m === null) throw new Error(`--seeds must be A..B or N, not ${values.seeds}`);
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  const paths = values.paths.split(',').filter((p) => p !== '') as PathName[];
  for (const p of paths)
    if (!(ALL_PATHS as readonly string[]).includes(p)) throw new Error(`unknown path ${p}`);
  const pgEvery = values.pg === undefined ? 0 : Number(values.pg);
  if (!existsSync(CLI)) throw new Error(`no CLI at ${CLI}: build first (npx tsc -p tsconfig.build.json)`);
  console.log(
    `# differential: seeds ${first}..${last}, paths ${paths.join(',')}${pgEvery ? `, pg every ${pgEvery}` : ''}`,
  );
  let failures = 0;
  for (let seed = first; seed <= last; seed++) {
    const traffic = generate(seed, maxEvents, values.extras, draws);
    const dir = join(values.work, `s${seed}`);
    const ws = writeWorkspace(dir, traffic, traffic.lines);
    const ref = batchPath(ws);
    const seedPaths = [...paths];
    if (pgEvery > 0 && seed % pgEvery === 0) {
      for (const p of ['pg', 'pg-chunks'] as const) if (!seedPaths.includes(p)) seedPaths.push(p);
    }
    const cells: string[] = [];
    let keepSeed = false;
    for (const path of seedPaths) {
      const other = await runPath(path, ws, traffic.lines, seed);
      const diff = compare(ref, other);
      if (diff === undefined || (!values.findings && !billDiffers(diff))) {
        cells.push(`${path}=ok${diff === undefined ? '' : '(findings)'}`);
        continue;
      }
      if (path.startsWith('stream') && other.note !== undefined) {
        cells.push(`${path}=doc(${other.note})`);
        continue;
      }
      if (onlyUnattributed(ref, other)) {
        cells.push(`${path}=doc(UNATTRIBUTED)`);
        continue;
      }
      // Family F1 (found by this tester): a stream does not join a business-scoped user id to the number Meta
      // gave with it (docs/decisions.md, "Business-scoped user ids"). Said apart so other families show.
      if (
        !values.f1 &&
        path.startsWith('stream') &&
        traffic.lines.some((l) => l.text.includes('_user_id"'))
      ) {
        cells.push(`${path}=F1(${diff.summary})`);
        continue;
      }
      failures++;
      // Run the path once more: a difference that does not come again is said as FLAKY (timing, load).
      const again = compare(ref, await runPath(path, ws, traffic.lines, seed));
      const stable = again !== undefined && again.summary === diff.summary;
      cells.push(`${path}=${stable ? 'DIFF' : 'FLAKY'}(${diff.summary})`);
      mkdirSync(values.out, { recursive: true });
      writeFileSync(
        join(values.work, `mismatch-${seed}-${path}.txt`),
        `${diff.summary}\n${diff.detail}\nsecond run: ${again === undefined ? 'agreed' : again.summary}\n${again?.detail ?? ''}\n`,
      );
      keepSeed = true;
      if (values.verbose || diff.summary === 'error') console.log(diff.detail.replace(/\n/g, ' | '));
      if (values.minimise) {
        const billOnly = billDiffers(diff);
        const lines = await minimise(
          path,
          traffic,
          join(values.work, `min${seed}`),
          billOnly,
          diff,
          other.note,
        );
        const saved = await saveRepro(path, traffic, lines, values.out, !billOnly);
        cells.push(`→ ${lines.length} lines in ${saved}`);
      }
    }
    const batchCell =
      ref.error !== undefined ? `batch=ERR(${ref.error.split('\n')[0]})` : `units=${ref.units.length}`;
    console.log(
      `seed=${seed} lines=${traffic.lines.length} events=${traffic.events} ${batchCell}  ${cells.join(' ')}`,
    );
    if (!values.keep && !keepSeed) rmSync(dir, { recursive: true, force: true });
  }
  console.log(`# ${failures} mismatch(es)`);
  return failures === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      for (const child of liveChildren) child.kill('SIGTERM');
      process.exit(130);
    });
  }
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(2);
    },
  );
}
