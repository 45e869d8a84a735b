// Seeded, deterministic generator of realistic WhatsApp Business traffic as contract §1 event lines (and
// whole Meta webhook bodies). For benchmarks and generative tests; it must never use Math.random or the clock,
// and its memory follows the sessions in flight, never the number of lines (it streams 10 million lines).

/** What to generate. Every field but `seed` has a default suited to a benchmark. */
export interface TrafficOptions {
  seed: number;
  /** Size of the user population (phone numbers); activity is skewed: a few users write often. */
  users?: number;
  /** Number of WABAs; each has 2–4 business numbers, its own time zone; some pairs share a portfolio. */
  wabas?: number;
  /** First instant of the traffic, ISO-8601. */
  start?: string;
  /** Length of the period in days (session starts spread over it, with a daily rhythm). */
  days?: number;
  /** Approximate number of lines; generation stops starting sessions once it is reached. */
  eventsTarget?: number;
  /** Fraction of lines displaced later than their timestamp order by up to `disorderMaxMinutes`. */
  disorder?: number;
  disorderMaxMinutes?: number;
  /** Fraction of lines emitted a second time (Meta's retries; a sender's log replayed). */
  duplicates?: number;
  /** Fraction of statuses emitted as a whole Meta webhook body on one line instead of a contract line. */
  webhookFraction?: number;
  /** Emit in timestamp order (disorder is ignored; a duplicate follows its original at once). */
  timeOrdered?: boolean;
}

type ResolvedOptions = Required<TrafficOptions>;

export const DEFAULT_TRAFFIC_OPTIONS: Omit<ResolvedOptions, 'seed'> = {
  users: 20_000,
  wabas: 12,
  start: '2025-10-01T00:00:00Z',
  days: 30,
  eventsTarget: 200_000,
  disorder: 0.02,
  disorderMaxMinutes: 30,
  duplicates: 0.01,
  webhookFraction: 0.2,
  timeOrdered: false,
};

export function resolveTrafficOptions(options: TrafficOptions): ResolvedOptions {
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const resolved = { ...DEFAULT_TRAFFIC_OPTIONS, ...defined } as ResolvedOptions;
  if (!Number.isInteger(resolved.seed)) throw new Error(`seed must be an integer, got ${resolved.seed}`);
  if (!(resolved.users >= 1 && resolved.wabas >= 1 && resolved.days > 0 && resolved.eventsTarget >= 1)) {
    throw new Error('users, wabas, days and eventsTarget must be positive');
  }
  if (Number.isNaN(Date.parse(resolved.start)))
    throw new Error(`start is not an ISO instant: ${resolved.start}`);
  for (const key of ['disorder', 'duplicates', 'webhookFraction'] as const) {
    if (!(resolved[key] >= 0 && resolved[key] <= 1)) throw new Error(`${key} must be in [0, 1]`);
  }
  return resolved;
}

// ---------------------------------------------------------------------------------------------------------
// Randomness: mulberry32, small and fast; every derived stream is seeded from (seed, purpose, index).

export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [min, max]. */
  between(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }
  /** Log-uniform in [min, max]: many short delays, a few long ones. */
  logUniform(min: number, max: number): number {
    return min * Math.pow(max / min, this.next());
  }
}

/** A 32-bit hash of integers (murmur3 finaliser), to derive independent streams without storing them. */
export function mix32(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const value of values) {
    h = Math.imul(h ^ (value >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

const STREAM_USER = 1;
const STREAM_WABA = 2;
const STREAM_CALIBRATE = 3;

/** Picks from weights given as a cumulative table. */
class WeightedTable<T> {
  private readonly cumulative: number[] = [];
  private readonly items: T[] = [];
  private total = 0;
  constructor(entries: readonly (readonly [T, number])[]) {
    for (const [item, weight] of entries) {
      this.total += weight;
      this.cumulative.push(this.total);
      this.items.push(item);
    }
  }
  pick(rng: Rng): T {
    const x = rng.next() * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (x < (this.cumulative[mid] as number)) hi = mid;
      else lo = mid + 1;
    }
    return this.items[lo] as T;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Phone numbers. Each country's mobile ranges as national-number templates: a digit stands for itself,
// `#` for any digit, `[…]` for a class (`[2-9]`, `[0-46-9]`). Ranges were checked against libphonenumber's
// full metadata (libphonenumber-js/max): every number they produce is valid and belongs to that country —
// test/generate-traffic.test.ts keeps them honest. Shared codes are deliberate: +1 (US, CA, PR, DO, JM, BS),
// +7 (RU, KZ), +44 (GB and the Crown Dependencies JE, GG, IM).

interface NumberPlan {
  callingCode: string;
  templates: readonly string[];
}

const BRAZIL_AREAS = [
  11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, 41, 42, 43, 44, 45, 46,
  47, 48, 49, 51, 53, 54, 55, 61, 62, 63, 64, 65, 66, 67, 68, 69, 71, 73, 74, 75, 77, 79, 81, 82, 83, 84, 85,
  86, 87, 88, 89, 91, 92, 93, 94, 95, 96, 97, 98, 99,
];
const US_AREAS = [212, 415, 646, 718, 917, 310, 312, 305, 404, 617, 206, 512, 713, 702, 347, 929];
const CA_AREAS = [416, 604, 514, 647, 403];
const PH_PREFIXES = [
  905, 906, 915, 916, 917, 926, 927, 935, 936, 945, 955, 956, 965, 966, 975, 977, 995, 997, 908, 918, 919,
  920, 921, 928, 929, 939, 946, 947, 949, 951, 961, 998, 999,
];
const AT_PREFIXES = [664, 660, 676, 699, 650, 680, 681, 688];

export const NUMBER_PLANS: Readonly<Record<string, NumberPlan>> = {
  IN: { callingCode: '91', templates: ['[7-9]#########', '6[23]########'] },
  US: { callingCode: '1', templates: US_AREAS.map((area) => `${area}[2-9]######`) },
  CA: { callingCode: '1', templates: CA_AREAS.map((area) => `${area}[2-9]######`) },
  BR: { callingCode: '55', templates: BRAZIL_AREAS.map((area) => `${area}9[6-9]#######`) },
  ID: {
    callingCode: '62',
    templates: [
      '81[1-3]########',
      '82[1-3]########',
      '85[1-35-9]########',
      '87[78]########',
      '89[5-9]########',
    ],
  },
  GB: {
    callingCode: '44',
    templates: [
      '74[0-46-9]#######',
      '75[13-9]#######',
      '77[1-7]#######',
      '78[4-9]#######',
      '79[024568]#######',
    ],
  },
  JE: { callingCode: '44', templates: ['7797######', '7509######', '7829######'] },
  GG: { callingCode: '44', templates: ['7781######', '7839######'] },
  IM: { callingCode: '44', templates: ['7624[0-4689]#####'] },
  DE: { callingCode: '49', templates: ['15[1279]########', '16[023]########', '17#########'] },
  MX: {
    callingCode: '52',
    templates: ['55########', '33########', '81########', '(222|442|664|998|477)#######'],
  },
  AR: { callingCode: '54', templates: ['911[0-8]#######'] },
  CO: { callingCode: '57', templates: ['30[0-245]#######', '31########', '32[0-3]#######', '35[01]#######'] },
  CL: { callingCode: '56', templates: ['9[2458]#######'] },
  PE: { callingCode: '51', templates: ['9########'] },
  ES: { callingCode: '34', templates: ['6########', '7[1-4]#######'] },
  IT: { callingCode: '39', templates: ['3[1-9]########'] },
  FR: { callingCode: '33', templates: ['6[0-24-8]#######', '7[3-9]#######'] },
  NL: { callingCode: '31', templates: ['6[1-5]#######'] },
  NG: {
    callingCode: '234',
    templates: ['80[235-9]#######', '70[13568]#######', '81[02-8]#######', '90[1235-9]#######'],
  },
  ZA: { callingCode: '27', templates: ['6[0-8]#######', '7[1-46-9]#######', '8[1-4]#######'] },
  EG: { callingCode: '20', templates: ['1[0125]########'] },
  SA: { callingCode: '966', templates: ['5[03-689]#######'] },
  AE: { callingCode: '971', templates: ['5[024568]#######'] },
  TR: { callingCode: '90', templates: ['5[0345]########'] },
  PK: { callingCode: '92', templates: ['3[0-24]########', '33[0-79]#######'] },
  MY: {
    callingCode: '60',
    templates: ['12#######', '13[1-9]######', '16#######', '17[1-9]######', '11[1-5]#######'],
  },
  RU: { callingCode: '7', templates: ['9[0-25689]########'] },
  KZ: { callingCode: '7', templates: ['70[0-2578]#######', '747#######', '77[15-8]#######'] },
  IL: { callingCode: '972', templates: ['50[02-9]######', '52[02-9]######', '54[2-9]######', '53#######'] },
  KE: { callingCode: '254', templates: ['7########', '11#######'] },
  GH: { callingCode: '233', templates: ['2[0346-8]#######', '5[045]#######'] },
  ZW: { callingCode: '263', templates: ['7[178]#######'] },
  PH: { callingCode: '63', templates: PH_PREFIXES.map((prefix) => `${prefix}#######`) },
  VN: {
    callingCode: '84',
    templates: ['9[0134678]#######', '3[2-9]#######', '7[06-9]#######', '8[1-68]#######'],
  },
  AU: { callingCode: '61', templates: ['4[0-36]#######'] },
  PL: { callingCode: '48', templates: ['5[0137]#######', '6[069]#######', '7[2389]#######', '88#######'] },
  RO: { callingCode: '40', templates: ['7[2-7]#######'] },
  PR: { callingCode: '1', templates: ['787[2-9]######', '939[2-9]######'] },
  DO: { callingCode: '1', templates: ['809[2-9]######', '829[2-9]######', '849[2-9]######'] },
  JM: { callingCode: '1', templates: ['876[348]######'] },
  BS: { callingCode: '1', templates: ['24235#####', '24247#####'] },
  EC: { callingCode: '593', templates: ['9[89]#######'] },
  GT: { callingCode: '502', templates: ['[345]#######'] },
  QA: { callingCode: '974', templates: ['3[013]######', '5[05]######', '66######', '7[0147]######'] },
  JO: { callingCode: '962', templates: ['7[789][0-25-9]######'] },
  AT: { callingCode: '43', templates: AT_PREFIXES.map((prefix) => `${prefix}########`) },
  BE: { callingCode: '32', templates: ['4[6-9]#######'] },
  PT: { callingCode: '351', templates: ['9[1236]#######'] },
  SE: { callingCode: '46', templates: ['7[02369]#######'] },
  CH: { callingCode: '41', templates: ['7[5-9]#######'] },
};

/** Share of WhatsApp business traffic by recipient country (rough, for realism only). */
export const COUNTRY_WEIGHTS: Readonly<Record<string, number>> = {
  IN: 22,
  BR: 12,
  ID: 8,
  MX: 6,
  US: 4,
  CA: 0.6,
  GB: 2.5,
  DE: 2.5,
  ES: 2,
  IT: 2,
  FR: 1.5,
  NL: 0.8,
  AR: 3,
  CO: 3,
  CL: 1,
  PE: 1,
  NG: 2,
  ZA: 1.5,
  EG: 2,
  SA: 2,
  AE: 1.5,
  TR: 2,
  PK: 2,
  MY: 1.5,
  RU: 1,
  KZ: 0.5,
  IL: 0.7,
  KE: 0.8,
  GH: 0.5,
  ZW: 0.2,
  PH: 1,
  VN: 0.8,
  AU: 0.5,
  PL: 0.6,
  RO: 0.5,
  PR: 0.3,
  DO: 0.4,
  JM: 0.2,
  EC: 0.5,
  GT: 0.4,
  QA: 0.3,
  JO: 0.3,
  AT: 0.3,
  BE: 0.3,
  PT: 0.4,
  SE: 0.3,
  CH: 0.3,
  BS: 0.05,
  JE: 0.03,
  GG: 0.03,
  IM: 0.03,
};

/** Share of users whose number is deliberately not a phone number anyone can place (calling code 999). */
export const INVALID_NUMBER_FRACTION = 0.003;

type DigitChoices = readonly string[];

/** Expands a template into one list of allowed digits per position; `(a|b)` alternatives become templates. */
function compileTemplate(template: string): DigitChoices[][] {
  const alternation = /\(([^)]*)\)/.exec(template);
  if (alternation) {
    const [whole, inner = ''] = alternation;
    return inner.split('|').flatMap((choice) => compileTemplate(template.replace(whole, choice)));
  }
  const positions: DigitChoices[] = [];
  for (let i = 0; i < template.length; i++) {
    const ch = template[i] as string;
    if (ch === '#') positions.push('0123456789'.split(''));
    else if (ch === '[') {
      const end = template.indexOf(']', i);
      const body = template.slice(i + 1, end).replace(/ /g, '');
      const digits: string[] = [];
      for (let j = 0; j < body.length; j++) {
        const from = body[j] as string;
        if (body[j + 1] === '-') {
          for (let d = Number(from); d <= Number(body[j + 2]); d++) digits.push(String(d));
          j += 2;
        } else digits.push(from);
      }
      positions.push(digits);
      i = end;
    } else if (ch >= '0' && ch <= '9') positions.push([ch]);
    else throw new Error(`bad number template ${template}`);
  }
  return [positions];
}

const COMPILED_PLANS = new Map<string, { callingCode: string; templates: DigitChoices[][] }>(
  Object.entries(NUMBER_PLANS).map(([country, plan]) => [
    country,
    { callingCode: plan.callingCode, templates: plan.templates.flatMap(compileTemplate) },
  ]),
);

/** A valid mobile number of `country` in E.164 digits without '+' (a WhatsApp `wa_id`). */
export function generatePhoneNumber(country: string, rng: Rng): string {
  const plan = COMPILED_PLANS.get(country);
  if (!plan) throw new Error(`no number plan for ${country}`);
  const positions = rng.pick(plan.templates);
  let digits = plan.callingCode;
  for (const choices of positions) digits += rng.pick(choices);
  return digits;
}

/** A number under the unassigned calling code +999: no library and no market table can place it. */
export function generateInvalidNumber(rng: Rng): string {
  let digits = '999';
  for (let i = 0; i < 9; i++) digits += String(rng.int(10));
  return digits;
}

const GLOBAL_COUNTRIES = new WeightedTable(Object.entries(COUNTRY_WEIGHTS));

// ---------------------------------------------------------------------------------------------------------
// WABAs and users, derived from (seed, index) so that nothing per user is stored.

export interface BusinessNumber {
  phoneNumberId: string;
  displayPhoneNumber: string;
}

export interface WabaProfile {
  waba: string;
  timeZone: string;
  portfolio: string;
  primaryCountry: string;
  numbers: BusinessNumber[];
  /** Eligible for authentication-international rates from this instant (ISO), when set. */
  authInternationalStart?: string;
  /** Relative size: how much of the traffic goes through this WABA. */
  weight: number;
}

const WABA_HOMES: readonly (readonly [country: string, timeZone: string])[] = [
  ['IN', 'Asia/Kolkata'],
  ['BR', 'America/Sao_Paulo'],
  ['ID', 'Asia/Jakarta'],
  ['MX', 'America/Mexico_City'],
  ['US', 'America/New_York'],
  ['DE', 'Europe/Berlin'],
  ['GB', 'Europe/London'],
  ['AE', 'Asia/Dubai'],
  ['NG', 'Africa/Lagos'],
  ['ES', 'Europe/Madrid'],
  ['US', 'America/Los_Angeles'],
  ['ZA', 'Africa/Johannesburg'],
  ['CO', 'America/Bogota'],
  ['TR', 'Europe/Istanbul'],
  ['SA', 'Asia/Riyadh'],
  ['AR', 'America/Argentina/Buenos_Aires'],
  ['EG', 'Africa/Cairo'],
  ['MY', 'Asia/Kuala_Lumpur'],
  ['PK', 'Asia/Karachi'],
  ['IT', 'Europe/Rome'],
];

function digitsFrom(rng: Rng, count: number): string {
  let digits = String(rng.between(1, 9));
  while (digits.length < count) digits += String(rng.int(10));
  return digits;
}

/** The WABAs of a run: ids, time zones, portfolios (WABAs 4k and 4k+1 share one), business numbers. */
export function describeWabas(options: TrafficOptions): WabaProfile[] {
  const { seed, wabas } = resolveTrafficOptions(options);
  const profiles: WabaProfile[] = [];
  for (let i = 0; i < wabas; i++) {
    const rng = new Rng(mix32(seed, STREAM_WABA, i));
    const [primaryCountry, timeZone] = WABA_HOMES[i % WABA_HOMES.length] as readonly [string, string];
    const waba = digitsFrom(rng, 15);
    const numberCount = rng.between(2, 4);
    const numbers: BusinessNumber[] = [];
    for (let n = 0; n < numberCount; n++) {
      numbers.push({
        phoneNumberId: digitsFrom(rng, 15),
        displayPhoneNumber: generatePhoneNumber(primaryCountry, rng),
      });
    }
    const sharesPortfolio = i % 4 === 1;
    const profile: WabaProfile = {
      waba,
      timeZone,
      portfolio: sharesPortfolio
        ? (profiles[i - 1] as WabaProfile).portfolio
        : `portfolio-${digitsFrom(rng, 12)}`,
      primaryCountry,
      numbers,
      // A few big accounts, a long tail of small ones.
      weight: 1 / (1 + i * 0.35),
    };
    if (i % 3 === 2) profile.authInternationalStart = '2024-07-01T00:00:00Z';
    profiles.push(profile);
  }
  return profiles;
}

/** The accounts file (contract §2) for the WABAs of a run. */
export function generateAccounts(options: TrafficOptions): { accounts: object[] } {
  return {
    accounts: describeWabas(options).map((profile) => ({
      waba: profile.waba,
      timezone: profile.timeZone,
      currency: 'USD',
      portfolio: profile.portfolio,
      primary_country: profile.primaryCountry,
      ...(profile.authInternationalStart
        ? { auth_international: { start: profile.authInternationalStart } }
        : {}),
    })),
  };
}

export interface UserProfile {
  /** wa_id: E.164 digits without '+'. */
  phone: string;
  /** ISO country the number was generated for, or `null` for a deliberately invalid number. */
  country: string | null;
  wabaIndex: number;
  numberIndex: number;
}

/** User `index` of a run, derived from the seed alone (nothing is stored per user). */
export function describeUser(options: TrafficOptions, index: number): UserProfile {
  const wabas = describeWabas(options);
  return userAt(options.seed, index, wabas, wabaWeights(wabas));
}

function wabaWeights(wabas: readonly WabaProfile[]): WeightedTable<number> {
  return new WeightedTable(wabas.map((profile, i) => [i, profile.weight] as const));
}

function userAt(
  seed: number,
  index: number,
  wabas: readonly WabaProfile[],
  wabaTable: WeightedTable<number>,
): UserProfile {
  const rng = new Rng(mix32(seed, STREAM_USER, index));
  const wabaIndex = wabaTable.pick(rng);
  const waba = wabas[wabaIndex] as WabaProfile;
  const numberIndex = rng.int(waba.numbers.length);
  if (rng.chance(INVALID_NUMBER_FRACTION)) {
    return { phone: generateInvalidNumber(rng), country: null, wabaIndex, numberIndex };
  }
  const country = rng.chance(0.65) ? waba.primaryCountry : GLOBAL_COUNTRIES.pick(rng);
  return { phone: generatePhoneNumber(country, rng), country, wabaIndex, numberIndex };
}

// ---------------------------------------------------------------------------------------------------------
// Lines.

export type TemplateCategory = 'marketing' | 'utility' | 'authentication';
type Status = 'sent' | 'delivered' | 'read' | 'failed';

export interface InboundLine {
  kind: 'inbound';
  at: string | number;
  waba: string;
  business: string;
  user: string;
  id: string;
  referral?: { source_type: 'ad' | 'post'; source_id: string; source_url: string; ctwa_clid?: string };
}
export interface OutboundLine {
  kind: 'outbound';
  at: string | number;
  waba: string;
  business: string;
  user: string;
  id: string;
  template: TemplateCategory | null;
}
export interface StatusLine {
  kind: 'status';
  at: string | number;
  id: string;
  status: Status;
}
export interface WebhookStatusBody {
  object: 'whatsapp_business_account';
  entry: {
    id: string;
    changes: {
      field: 'messages';
      value: {
        messaging_product: 'whatsapp';
        metadata: { display_phone_number: string; phone_number_id: string };
        statuses: {
          id: string;
          status: Status;
          timestamp: string;
          recipient_id: string;
          errors?: { code: number; title: string }[];
        }[];
      };
    }[];
  }[];
}
export type TrafficEvent = InboundLine | OutboundLine | StatusLine | WebhookStatusBody;

/** A min-heap of lines keyed by (emission second, sequence): the sequence makes ties deterministic. */
class LineHeap {
  private keys: number[] = [];
  private seqs: number[] = [];
  private values: TrafficEvent[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.keys.length;
  }
  peekKey(): number {
    return this.keys[0] ?? Infinity;
  }
  push(key: number, value: TrafficEvent): void {
    const seq = this.nextSeq++;
    let i = this.keys.length;
    this.keys.push(key);
    this.seqs.push(seq);
    this.values.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(key, seq, parent)) break;
      this.move(parent, i);
      i = parent;
    }
    this.set(i, key, seq, value);
  }
  pop(): TrafficEvent {
    const top = this.values[0] as TrafficEvent;
    const key = this.keys.pop() as number;
    const seq = this.seqs.pop() as number;
    const value = this.values.pop() as TrafficEvent;
    const n = this.keys.length;
    if (n === 0) return top;
    // Sift the last entry down from the root.
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.isBefore(right, left) ? right : left;
      const childKey = this.keys[child] as number;
      if (childKey > key || (childKey === key && (this.seqs[child] as number) > seq)) break;
      this.move(child, i);
      i = child;
    }
    this.set(i, key, seq, value);
    return top;
  }
  /** Is (key, seq) before the entry at index j? */
  private less(key: number, seq: number, j: number): boolean {
    const other = this.keys[j] as number;
    return key < other || (key === other && seq < (this.seqs[j] as number));
  }
  private isBefore(a: number, b: number): boolean {
    return this.less(this.keys[a] as number, this.seqs[a] as number, b);
  }
  private move(from: number, to: number): void {
    this.keys[to] = this.keys[from] as number;
    this.seqs[to] = this.seqs[from] as number;
    this.values[to] = this.values[from] as TrafficEvent;
  }
  private set(i: number, key: number, seq: number, value: TrafficEvent): void {
    this.keys[i] = key;
    this.seqs[i] = seq;
    this.values[i] = value;
  }
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function isoSeconds(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().slice(0, 19) + 'Z';
}

function utcOffsetMinutes(timeZone: string, atMs: number): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
  }).formatToParts(new Date(atMs));
  const get = (type: string): number => Number(parts.find((part) => part.type === type)?.value);
  const localMs = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'));
  return Math.round((localMs - Math.floor(atMs / 60_000) * 60_000) / 60_000);
}

function isoWithOffset(epochSeconds: number, offsetMinutes: number): string {
  if (offsetMinutes === 0) return isoSeconds(epochSeconds);
  const local = new Date((epochSeconds + offsetMinutes * 60) * 1000).toISOString().slice(0, 19);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** Share of the day's sessions by local hour: quiet at night, busy late morning and evening. */
function diurnalWeight(localHour: number): number {
  if (localHour < 6) return 0.15;
  if (localHour < 9) return 0.5;
  if (localHour < 13) return 1;
  if (localHour < 17) return 0.8;
  if (localHour < 22) return 0.95;
  return 0.4;
}

type SessionKind = 'support' | 'ad_click' | 'marketing' | 'utility' | 'authentication';
const SESSION_KINDS = new WeightedTable<SessionKind>([
  ['support', 28],
  ['ad_click', 8],
  ['marketing', 29],
  ['utility', 20],
  ['authentication', 15],
]);

/** Fate of a business message: how Meta reports it. Rates are the realistic mix the engine must handle. */
const FAILED_FRACTION = 0.02;
const PENDING_FRACTION = 0.005;
const READ_WITHOUT_DELIVERED_FRACTION = 0.04;
const AT_AS_UNIX_SECONDS_FRACTION = 0.05;
const AT_WITH_OFFSET_FRACTION = 0.03;

class TrafficSimulator {
  private readonly rng: Rng;
  private readonly heap = new LineHeap();
  private readonly wabaProfiles: WabaProfile[];
  private readonly wabaOffsetsMinutes: number[];
  private readonly wabaTable: WeightedTable<number>;
  private idCounter = 0;
  /** Lines scheduled so far (including duplicates); generation stops starting sessions at the target. */
  linesScheduled = 0;

  constructor(
    private readonly options: ResolvedOptions,
    rngSeed: number,
  ) {
    this.rng = new Rng(rngSeed);
    this.wabaProfiles = describeWabas(options);
    const startMs = Date.parse(options.start);
    this.wabaOffsetsMinutes = this.wabaProfiles.map((profile) => utcOffsetMinutes(profile.timeZone, startMs));
    this.wabaTable = wabaWeights(this.wabaProfiles);
  }

  get pendingLines(): number {
    return this.heap.size;
  }
  nextEmissionSecond(): number {
    return this.heap.peekKey();
  }
  popLine(): TrafficEvent {
    return this.heap.pop();
  }

  /** Picks a user and, with the daily rhythm of their WABA, decides whether a session starts at `second`. */
  trySession(second: number): boolean {
    const rng = this.rng;
    // Skewed activity: low indices write far more often than the tail.
    const userIndex = Math.floor(this.options.users * Math.pow(rng.next(), 2));
    const user = userAt(this.options.seed, userIndex, this.wabaProfiles, this.wabaTable);
    const offset = this.wabaOffsetsMinutes[user.wabaIndex] as number;
    const localHour = Math.floor(((((second / 60 + offset) % 1440) + 1440) % 1440) / 60);
    if (!rng.chance(diurnalWeight(localHour))) return false;
    const waba = this.wabaProfiles[user.wabaIndex] as WabaProfile;
    // Now and then the user reaches another number of the same WABA.
    const number = rng.chance(0.1)
      ? rng.pick(waba.numbers)
      : (waba.numbers[user.numberIndex] as BusinessNumber);
    this.session(second, SESSION_KINDS.pick(rng), waba, offset, number, user.phone);
    return true;
  }

  private session(
    t0: number,
    kind: SessionKind,
    waba: WabaProfile,
    offset: number,
    number: BusinessNumber,
    user: string,
  ): void {
    const rng = this.rng;
    const ctx: SessionContext = { waba, offset, number, user };
    switch (kind) {
      case 'support': {
        let lastInbound = t0;
        this.inbound(ctx, t0, false);
        let t = t0 + Math.round(rng.logUniform(20, 900));
        this.outbound(ctx, t, null);
        const turns = rng.between(0, 3);
        for (let turn = 0; turn < turns; turn++) {
          t += Math.round(rng.logUniform(30, 600));
          lastInbound = t;
          this.inbound(ctx, t, false);
          t += Math.round(rng.logUniform(15, 600));
          this.outbound(ctx, t, null);
        }
        if (rng.chance(0.3)) {
          // An order confirmation or a ticket update inside the customer service window.
          const at = Math.min(t + Math.round(rng.logUniform(60, 3 * 3600)), lastInbound + 23 * 3600);
          this.outbound(ctx, at, 'utility');
        }
        break;
      }
      case 'ad_click': {
        this.inbound(ctx, t0, true);
        // The business answers within 24 h (free entry point): mostly at once, sometimes with a template later.
        let t: number;
        if (rng.chance(0.7)) {
          t = t0 + Math.round(rng.logUniform(10, 1800));
          this.outbound(ctx, t, null);
        } else {
          t = t0 + Math.round(rng.logUniform(600, 20 * 3600));
          this.outbound(ctx, t, 'marketing');
        }
        const turns = rng.between(0, 2);
        for (let turn = 0; turn < turns; turn++) {
          t += Math.round(rng.logUniform(30, 900));
          this.inbound(ctx, t, false);
          t += Math.round(rng.logUniform(15, 600));
          this.outbound(ctx, t, null);
        }
        if (rng.chance(0.2)) {
          // A follow-up offer while the 72 h free-entry-point window is still open.
          this.outbound(ctx, t + Math.round(rng.logUniform(3600, 40 * 3600)), 'marketing');
        }
        break;
      }
      case 'marketing': {
        this.outbound(ctx, t0, 'marketing');
        if (rng.chance(0.12)) {
          let t = t0 + Math.round(rng.logUniform(60, 4 * 3600));
          this.inbound(ctx, t, false);
          const replies = rng.between(1, 2);
          for (let reply = 0; reply < replies; reply++) {
            t += Math.round(rng.logUniform(20, 900));
            this.outbound(ctx, t, null);
          }
        }
        break;
      }
      case 'utility': {
        // Order confirmed, shipped, delivered.
        let t = t0;
        const updates = rng.between(1, 3);
        for (let update = 0; update < updates; update++) {
          if (update > 0) t += Math.round(rng.logUniform(600, 8 * 3600));
          this.outbound(ctx, t, 'utility');
        }
        if (rng.chance(0.1)) {
          t += Math.round(rng.logUniform(60, 3600));
          this.inbound(ctx, t, false);
          this.outbound(ctx, t + Math.round(rng.logUniform(20, 900)), null);
        }
        break;
      }
      case 'authentication': {
        this.outbound(ctx, t0, 'authentication');
        // The user asks for the code again.
        if (rng.chance(0.1)) this.outbound(ctx, t0 + rng.between(30, 120), 'authentication');
        break;
      }
    }
  }

  private wamid(): string {
    const rng = this.rng;
    let id = 'wamid.HBgM';
    let counter = this.idCounter++;
    for (let i = 0; i < 8; i++) {
      id += BASE64[counter & 63];
      counter = Math.floor(counter / 64);
    }
    for (let i = 0; i < 20; i++) id += BASE64[rng.int(64)];
    return id + '=';
  }

  private at(ctx: SessionContext, second: number): string | number {
    const roll = this.rng.next();
    if (roll < AT_AS_UNIX_SECONDS_FRACTION) return second;
    if (roll < AT_AS_UNIX_SECONDS_FRACTION + AT_WITH_OFFSET_FRACTION)
      return isoWithOffset(second, ctx.offset);
    return isoSeconds(second);
  }

  private inbound(ctx: SessionContext, second: number, hasReferral: boolean): void {
    const line: InboundLine = {
      kind: 'inbound',
      at: this.at(ctx, second),
      waba: ctx.waba.waba,
      business: ctx.number.phoneNumberId,
      user: ctx.user,
      id: this.wamid(),
    };
    if (hasReferral) {
      const sourceId = String(120000000000000 + this.rng.int(1e9));
      line.referral = this.rng.chance(0.8)
        ? {
            source_type: 'ad',
            source_id: sourceId,
            source_url: `https://fb.me/${sourceId.slice(-8)}`,
            ctwa_clid: this.wamid().slice(10, 30),
          }
        : { source_type: 'post', source_id: sourceId, source_url: `https://www.facebook.com/${sourceId}` };
    }
    this.schedule(second, line);
  }

  private outbound(ctx: SessionContext, second: number, template: TemplateCategory | null): void {
    const rng = this.rng;
    const id = this.wamid();
    this.schedule(second, {
      kind: 'outbound',
      at: this.at(ctx, second),
      waba: ctx.waba.waba,
      business: ctx.number.phoneNumberId,
      user: ctx.user,
      id,
      template,
    });
    const sentAt = second + rng.between(0, 2);
    const fate = rng.next();
    if (fate < FAILED_FRACTION) {
      if (rng.chance(0.7)) this.status(ctx, id, 'sent', sentAt);
      this.status(ctx, id, 'failed', sentAt + Math.round(rng.logUniform(1, 600)));
      return;
    }
    this.status(ctx, id, 'sent', sentAt);
    if (fate < FAILED_FRACTION + PENDING_FRACTION) return; // never delivered: pending
    const delayRoll = rng.next();
    const deliveryDelay =
      delayRoll < 0.9
        ? rng.logUniform(1, 20)
        : delayRoll < 0.98
          ? rng.logUniform(20, 600)
          : rng.logUniform(600, 6 * 3600);
    const deliveredAt = sentAt + Math.round(deliveryDelay);
    const readChance =
      template === null ? 0.85 : template === 'marketing' ? 0.45 : template === 'utility' ? 0.6 : 0.5;
    const isRead = rng.chance(readChance);
    if (!isRead || !rng.chance(READ_WITHOUT_DELIVERED_FRACTION))
      this.status(ctx, id, 'delivered', deliveredAt);
    if (isRead) this.status(ctx, id, 'read', deliveredAt + Math.round(rng.logUniform(2, 4 * 3600)));
  }

  private status(ctx: SessionContext, id: string, status: Status, second: number): void {
    if (this.rng.chance(this.options.webhookFraction)) {
      const item: WebhookStatusBody['entry'][number]['changes'][number]['value']['statuses'][number] = {
        id,
        status,
        timestamp: String(second),
        recipient_id: ctx.user,
      };
      if (status === 'failed') item.errors = [{ code: 131026, title: 'Message undeliverable' }];
      this.schedule(second, {
        object: 'whatsapp_business_account',
        entry: [
          {
            id: ctx.waba.waba,
            changes: [
              {
                field: 'messages',
                value: {
                  messaging_product: 'whatsapp',
                  metadata: {
                    display_phone_number: ctx.number.displayPhoneNumber,
                    phone_number_id: ctx.number.phoneNumberId,
                  },
                  statuses: [item],
                },
              },
            ],
          },
        ],
      });
    } else {
      this.schedule(second, { kind: 'status', at: this.at(ctx, second), id, status });
    }
  }

  private schedule(second: number, line: TrafficEvent): void {
    const { options, rng } = this;
    const maxDisplacement = options.disorderMaxMinutes * 60;
    const isDisplaced = !options.timeOrdered && rng.chance(options.disorder);
    this.heap.push(isDisplaced ? second + 1 + rng.int(maxDisplacement) : second, line);
    this.linesScheduled++;
    if (rng.chance(options.duplicates)) {
      this.heap.push(options.timeOrdered ? second : second + rng.int(maxDisplacement + 1), line);
      this.linesScheduled++;
    }
  }
}

interface SessionContext {
  waba: WabaProfile;
  /** The WABA's UTC offset in minutes at the start of the run (for local hours and `at` offsets). */
  offset: number;
  number: BusinessNumber;
  user: string;
}

/** Lines per session candidate, measured once per option set on a separate stream (cheap, deterministic). */
function linesPerCandidate(options: ResolvedOptions): number {
  const simulator = new TrafficSimulator(
    { ...options, users: Math.min(options.users, 5000) },
    mix32(options.seed, STREAM_CALIBRATE),
  );
  const startSecond = Math.floor(Date.parse(options.start) / 1000);
  const candidates = 4000;
  for (let i = 0; i < candidates; i++) simulator.trySession(startSecond + i * 21.6 * 24);
  return simulator.linesScheduled / candidates;
}

/** Optional window on a running generation: how much it holds in memory (tests, progress reports). */
export interface GenerationProbe {
  /** Lines scheduled so far (emitted or waiting). */
  linesScheduled: number;
  /** The most lines ever waiting at once: memory follows this, never the number of lines. */
  maxPendingLines: number;
}

/**
 * The traffic as objects: contract §1 lines and whole webhook bodies. A duplicate is the same object yielded
 * twice. Memory follows the sessions in flight (lines not yet due), never the number of lines.
 */
export function* generateEvents(options: TrafficOptions, probe?: GenerationProbe): Generator<TrafficEvent> {
  const resolved = resolveTrafficOptions(options);
  const simulator = new TrafficSimulator(resolved, mix32(resolved.seed, 0));
  const startSecond = Math.floor(Date.parse(resolved.start) / 1000);
  const endSecond = startSecond + resolved.days * 86_400;
  // Session candidates arrive as a Poisson process sized so that the period holds about eventsTarget lines.
  const candidatesWanted = resolved.eventsTarget / linesPerCandidate(resolved);
  const meanGapSeconds = (endSecond - startSecond) / candidatesWanted;
  const arrivals = new Rng(mix32(resolved.seed, 4));
  let second = startSecond + arrivals.exponential(meanGapSeconds);
  while (second < endSecond && simulator.linesScheduled < resolved.eventsTarget) {
    const whole = Math.floor(second);
    // Everything due before this session starts can go: later sessions only add lines at or after `whole`.
    while (simulator.nextEmissionSecond() <= whole) yield simulator.popLine();
    simulator.trySession(whole);
    if (probe) {
      probe.linesScheduled = simulator.linesScheduled;
      probe.maxPendingLines = Math.max(probe.maxPendingLines, simulator.pendingLines);
    }
    second += arrivals.exponential(meanGapSeconds);
  }
  while (simulator.pendingLines > 0) yield simulator.popLine();
}

/** The traffic as NDJSON lines (no trailing newline). */
export function* generateTraffic(options: TrafficOptions, probe?: GenerationProbe): Generator<string> {
  for (const event of generateEvents(options, probe)) yield JSON.stringify(event);
}

/** The instant of a generated line in epoch seconds (for tests and checks of order). */
export function eventSecond(event: TrafficEvent): number {
  if ('kind' in event) return typeof event.at === 'number' ? event.at : Date.parse(event.at) / 1000;
  const status = event.entry[0]?.changes[0]?.value.statuses[0];
  if (!status) throw new Error('webhook body without a status');
  return Number(status.timestamp);
}
