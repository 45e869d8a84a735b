// The benchmark's traffic generator: deterministic, contract-shaped, realistic in its mix, valid phone
// numbers, and streaming (memory follows sessions in flight, not lines). No timing assertions here.

import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { describe, expect, it } from 'vitest';
import {
  COUNTRY_WEIGHTS,
  describeUser,
  describeWabas,
  eventSecond,
  generateAccounts,
  generateEvents,
  generatePhoneNumber,
  generateTraffic,
  NUMBER_PLANS,
  Rng,
  type GenerationProbe,
  type TrafficEvent,
  type TrafficOptions,
} from '../bench/generate-traffic.js';
import { parseEventValue } from '../src/ingest/parse-event.js';

const SMALL: TrafficOptions = { seed: 7, eventsTarget: 20_000, users: 3_000, wabas: 6, days: 7 };

function take<T>(items: Iterable<T>, count: number): T[] {
  const out: T[] = [];
  for (const item of items) {
    if (out.length === count) break;
    out.push(item);
  }
  return out;
}

/** One pass over a generation, collecting what the mix tests need. */
function survey(options: TrafficOptions) {
  const lines: string[] = [];
  for (const line of generateTraffic(options)) lines.push(line);
  const events = lines.map((line) => JSON.parse(line) as TrafficEvent);
  return { lines, events };
}

function statusesOf(event: TrafficEvent): { id: string; status: string; second: number; user?: string }[] {
  if ('kind' in event) {
    return event.kind === 'status'
      ? [{ id: event.id, status: event.status, second: eventSecond(event) }]
      : [];
  }
  return event.entry.flatMap((entry) =>
    entry.changes.flatMap((change) =>
      change.value.statuses.map((s) => ({
        id: s.id,
        status: s.status,
        second: Number(s.timestamp),
        user: s.recipient_id,
      })),
    ),
  );
}

describe('generateTraffic', () => {
  const { lines, events } = survey(SMALL);

  it('gives the same lines for the same seed and different lines for another seed', () => {
    expect(take(generateTraffic(SMALL), 3_000)).toEqual(lines.slice(0, 3_000));
    expect(take(generateTraffic({ ...SMALL, seed: 8 }), 50)).not.toEqual(lines.slice(0, 50));
  });

  it('produces about the number of lines asked for', () => {
    expect(lines.length).toBeGreaterThan(SMALL.eventsTarget! * 0.9);
    expect(lines.length).toBeLessThan(SMALL.eventsTarget! * 1.1);
  });

  it('writes lines that the project reader accepts as contract events or webhook bodies', () => {
    for (const [index, line] of lines.entries()) {
      const parsed = parseEventValue(JSON.parse(line));
      if (!parsed.ok) throw new Error(`line ${index + 1} rejected: ${parsed.error.message}\n${line}`);
      expect(parsed.value.rejected).toEqual([]);
      expect(parsed.value.events.length).toBe(1);
    }
  });

  it('links every status to an outbound message, and gives every message its own id', () => {
    const messageIds = new Set<string>();
    const distinct = new Set(lines);
    for (const line of distinct) {
      const event = JSON.parse(line) as TrafficEvent;
      if ('kind' in event && event.kind !== 'status') {
        expect(messageIds.has(event.id)).toBe(false);
        expect(event.id).toMatch(/^wamid\.[A-Za-z0-9+/]+=$/);
        messageIds.add(event.id);
      }
    }
    for (const event of events)
      for (const status of statusesOf(event)) expect(messageIds.has(status.id)).toBe(true);
  });

  it('contains the realistic mix: every template category, non-templates, referrals, webhooks', () => {
    const outbound = events.filter((e) => 'kind' in e && e.kind === 'outbound');
    const categories = new Map<string, number>();
    for (const e of outbound) {
      const key = String((e as { template: string | null }).template);
      categories.set(key, (categories.get(key) ?? 0) + 1);
    }
    for (const category of ['marketing', 'utility', 'authentication', 'null']) {
      expect(categories.get(category) ?? 0).toBeGreaterThan(outbound.length * 0.05);
    }
    const inbound = events.filter((e) => 'kind' in e && e.kind === 'inbound') as {
      referral?: { source_type: string };
    }[];
    const referrals = inbound.filter((e) => e.referral);
    expect(referrals.length).toBeGreaterThan(inbound.length * 0.03);
    expect(new Set(referrals.map((e) => e.referral!.source_type))).toEqual(new Set(['ad', 'post']));
    const webhooks = events.filter((e) => !('kind' in e));
    const allStatuses = events.flatMap(statusesOf);
    expect(webhooks.length / allStatuses.length).toBeGreaterThan(0.15);
    expect(webhooks.length / allStatuses.length).toBeLessThan(0.25);
    // Both instant spellings of the contract: ISO (with Z or an offset) and Unix seconds.
    const ats = events.flatMap((e) => ('kind' in e ? [e.at] : []));
    expect(ats.some((at) => typeof at === 'number')).toBe(true);
    expect(ats.some((at) => typeof at === 'string' && /[+-]\d\d:\d\d$/.test(at))).toBe(true);
  });

  it('has about 2% failed and 0.5% pending messages, reads with and without delivered, and realistic delays', () => {
    const byMessage = new Map<string, Map<string, number>>();
    for (const event of events) {
      for (const s of statusesOf(event)) {
        const seen = byMessage.get(s.id) ?? new Map<string, number>();
        seen.set(s.status, s.second);
        byMessage.set(s.id, seen);
      }
    }
    const sentAt = new Map<string, number>();
    for (const event of events)
      if ('kind' in event && event.kind === 'outbound') sentAt.set(event.id, eventSecond(event));
    const total = sentAt.size;
    let failed = 0;
    let pending = 0;
    let readWithoutDelivered = 0;
    const deliveryDelays: number[] = [];
    for (const [id, at] of sentAt) {
      const seen = byMessage.get(id);
      expect(seen, `statuses of ${id}`).toBeDefined();
      if (seen!.has('failed')) failed++;
      else if (!seen!.has('delivered') && !seen!.has('read')) pending++;
      else if (!seen!.has('delivered')) readWithoutDelivered++;
      const delivered = seen!.get('delivered');
      if (delivered !== undefined) deliveryDelays.push(delivered - at);
      const read = seen!.get('read');
      if (read !== undefined && delivered !== undefined) expect(read).toBeGreaterThanOrEqual(delivered);
    }
    expect(failed / total).toBeGreaterThan(0.012);
    expect(failed / total).toBeLessThan(0.03);
    expect(pending / total).toBeGreaterThan(0.002);
    expect(pending / total).toBeLessThan(0.01);
    expect(readWithoutDelivered).toBeGreaterThan(0);
    deliveryDelays.sort((a, b) => a - b);
    expect(deliveryDelays[Math.floor(deliveryDelays.length / 2)]).toBeLessThan(30);
    expect(deliveryDelays.at(-1)).toBeGreaterThan(600);
  });

  it('sends non-templates only inside a customer service window opened by the user', () => {
    const ordered = events
      .filter((e): e is Extract<TrafficEvent, { kind: string }> => 'kind' in e && e.kind !== 'status')
      .map((e) => ({ e, second: eventSecond(e) }))
      .sort((a, b) => a.second - b.second || (a.e.kind === 'inbound' ? -1 : 1));
    const lastInbound = new Map<string, number>();
    for (const { e, second } of ordered) {
      if (e.kind === 'status') continue;
      const pair = `${e.business}|${e.user}`;
      if (e.kind === 'inbound') lastInbound.set(pair, second);
      else if (e.template === null) {
        const opened = lastInbound.get(pair);
        expect(opened, `non-template ${e.id} without a user message`).toBeDefined();
        expect(second - opened!).toBeLessThan(24 * 3600);
      }
    }
  });

  it('repeats about the requested fraction of lines and displaces lines by at most the bound', () => {
    const options = { ...SMALL, duplicates: 0.05, disorder: 0.1, disorderMaxMinutes: 10 };
    const { lines: noisy, events: noisyEvents } = survey(options);
    const repeated = noisy.length - new Set(noisy).size;
    expect(repeated / noisy.length).toBeGreaterThan(0.035);
    expect(repeated / noisy.length).toBeLessThan(0.065);
    let latest = -Infinity;
    let displaced = 0;
    for (const event of noisyEvents) {
      const second = eventSecond(event);
      if (second < latest) {
        displaced++;
        expect(latest - second).toBeLessThanOrEqual(10 * 60);
      }
      latest = Math.max(latest, second);
    }
    expect(displaced / noisy.length).toBeGreaterThan(0.03);
  });

  it('emits in timestamp order when asked, duplicates included', () => {
    let latest = -Infinity;
    let count = 0;
    for (const event of generateEvents({ ...SMALL, timeOrdered: true, duplicates: 0.02, disorder: 0.5 })) {
      const second = eventSecond(event);
      expect(second).toBeGreaterThanOrEqual(latest);
      latest = second;
      count++;
    }
    expect(count).toBeGreaterThan(SMALL.eventsTarget! * 0.9);
  });

  it('streams: 200,000 lines never hold more than a few thousand in memory, and the first line comes at once', () => {
    const probe: GenerationProbe = { linesScheduled: 0, maxPendingLines: 0 };
    let count = 0;
    for (const line of generateTraffic({ seed: 3, eventsTarget: 200_000, users: 50_000, days: 30 }, probe)) {
      count += line.length > 0 ? 1 : 0;
    }
    expect(count).toBeGreaterThan(180_000);
    expect(probe.maxPendingLines).toBeLessThan(count / 20);

    const lazy: GenerationProbe = { linesScheduled: 0, maxPendingLines: 0 };
    const iterator = generateTraffic({ seed: 3, eventsTarget: 10_000_000 }, lazy);
    expect(iterator.next().done).toBe(false);
    expect(lazy.linesScheduled).toBeLessThan(1_000);
    iterator.return(undefined);
  });
});

describe('phone numbers', () => {
  it.each(Object.keys(NUMBER_PLANS))(
    'every generated number of %s is valid and placed in that country',
    (country) => {
      const rng = new Rng(country.charCodeAt(0) * 256 + country.charCodeAt(1));
      for (let i = 0; i < 3_000; i++) {
        const number = generatePhoneNumber(country, rng);
        const parsed = parsePhoneNumberFromString(`+${number}`);
        if (!parsed?.isValid() || parsed.country !== country) {
          throw new Error(
            `${number} generated for ${country} reads as ${parsed?.country ?? 'nothing'} (valid: ${parsed?.isValid()})`,
          );
        }
      }
    },
  );

  it('covers every weighted country, including Rest-of markets and shared calling codes', () => {
    expect(Object.keys(COUNTRY_WEIGHTS).sort()).toEqual(Object.keys(NUMBER_PLANS).sort());
    for (const country of ['KE', 'PH', 'PL', 'PR', 'DO', 'JM', 'KZ', 'JE', 'GG', 'IM', 'BS', 'ZW']) {
      expect(NUMBER_PLANS[country]).toBeDefined();
    }
  });

  it('users in traffic are valid for their country, except a small share of deliberately unknown numbers', () => {
    const options = { ...SMALL, users: 20_000 };
    let invalid = 0;
    const countries = new Set<string>();
    for (let index = 0; index < 20_000; index++) {
      const user = describeUser(options, index);
      if (user.country === null) {
        invalid++;
        expect(user.phone).toMatch(/^999\d{9}$/);
        expect(parsePhoneNumberFromString(`+${user.phone}`)?.isValid() ?? false).toBe(false);
        continue;
      }
      countries.add(user.country);
      const parsed = parsePhoneNumberFromString(`+${user.phone}`);
      expect(parsed?.isValid()).toBe(true);
      expect(parsed?.country).toBe(user.country);
    }
    expect(invalid).toBeGreaterThan(0);
    expect(invalid / 20_000).toBeLessThan(0.01);
    expect(countries.size).toBeGreaterThan(40);
  });

  it('every user in the traffic is one of the described users (numbers in lines are the generated ones)', () => {
    const users = new Set<string>();
    for (const event of take(generateEvents(SMALL), 5_000))
      if ('kind' in event && event.kind !== 'status') users.add(event.user);
    for (const user of users) {
      const parsed = parsePhoneNumberFromString(`+${user}`);
      expect(parsed?.isValid() === true || user.startsWith('999')).toBe(true);
    }
  });
});

describe('WABAs and accounts', () => {
  it('gives WABAs several numbers, varied time zones, and some shared portfolios', () => {
    const wabas = describeWabas({ seed: 1, wabas: 12 });
    expect(wabas.every((w) => w.numbers.length >= 2 && w.numbers.length <= 4)).toBe(true);
    expect(new Set(wabas.map((w) => w.timeZone)).size).toBeGreaterThan(8);
    expect(new Set(wabas.map((w) => w.portfolio)).size).toBeLessThan(wabas.length);
    const accounts = generateAccounts({ seed: 1, wabas: 12 }).accounts as {
      waba: string;
      timezone: string;
    }[];
    expect(accounts.map((a) => a.waba)).toEqual(wabas.map((w) => w.waba));
  });
});
