// Which portfolios an explanation rates: those where the asked user has events — of the WABAs the caller may
// read, so that another client's customers are neither rated nor told apart from strangers.
import { describe, expect, it } from 'vitest';
import { fixture } from '../../test/server-kit.js';
import type { CoreEvent } from '../core/events.js';
import { workerError, workerErrorKindOf } from './live-rater.js';
import { ExportDroppedError, KEPT_EXPORTS_LIMITS, KeptExports, wabasOfUserPortfolios } from './on-demand.js';

const SCOPED = 'US.88888888888888888888';
const portfolioOf = (waba: string) => ({ W1: 'P1', W2: 'P1', W3: 'P2' })[waba] ?? waba;
const scope = ['W1', 'W2', 'W3'];
const events: CoreEvent[] = [
  // W2 (P1) pairs the id with a number; W3 (P2) wrote to the number; W1 (P1) only to someone else.
  {
    kind: 'inbound',
    hasReferral: false,
    atMs: 1,
    waba: 'W2',
    business: 'PN2',
    user: '5511987650002',
    scopedUserId: SCOPED,
    id: 'a',
  },
  {
    kind: 'inbound',
    hasReferral: false,
    atMs: 2,
    waba: 'W3',
    business: 'PN3',
    user: '5511987650002',
    id: 'b',
  },
  {
    kind: 'inbound',
    hasReferral: false,
    atMs: 3,
    waba: 'W1',
    business: 'PN1',
    user: '919876543210',
    id: 'c',
  },
];

describe('wabasOfUserPortfolios', () => {
  it('for every WABA: the portfolios of the id, and of the number another event pairs it with', () => {
    expect(wabasOfUserPortfolios(scope, events, SCOPED, portfolioOf)).toEqual(['W1', 'W2', 'W3']);
    expect(wabasOfUserPortfolios(scope, events, '919876543210', portfolioOf)).toEqual(['W1', 'W2']);
  });

  // A key limited to W1 passes W1's own events (live-rater.ts: the store's listing of its WABAs).
  const ofW1 = events.filter((event) => event.waba === 'W1');

  it("for a key limited to W1: none — W2's pairing and W3's messages are not the key's to learn of", () => {
    expect(wabasOfUserPortfolios(scope, ofW1, SCOPED, portfolioOf)).toEqual([]);
    expect(wabasOfUserPortfolios(scope, ofW1, '5511987650002', portfolioOf)).toEqual([]);
    // Its own customer: the whole portfolio (the mate's traffic counts toward tiers), as for every key.
    expect(wabasOfUserPortfolios(scope, ofW1, '919876543210', portfolioOf)).toEqual(['W1', 'W2']);
  });

  it('for a key limited to W1 whose own event pairs the id: the portfolio is rated', () => {
    const own: CoreEvent = { ...(events[0] as CoreEvent & { kind: 'inbound' }), waba: 'W1', id: 'd' };
    expect(wabasOfUserPortfolios(scope, [...ofW1, own], SCOPED, portfolioOf)).toEqual(['W1', 'W2']);
  });

  it('a status naming no WABA among the events: every WABA of the scope (its portfolio is known only rating)', () => {
    const bare: CoreEvent = { kind: 'status', atMs: 4, id: 'x', status: 'delivered', user: '15550001111' };
    expect(wabasOfUserPortfolios(scope, [...events, bare], '15550001111', portfolioOf)).toEqual(scope);
  });
});

describe('KeptExports (the exports of POST /v1/reconciliation bodies, kept in the worker for their turn)', () => {
  const body = fixture('meta-docs/analytics_conversation_half_hour_by_category.json');
  const keep = (exports: KeptExports, ref: number) => {
    const read = exports.read(ref, body);
    if (!read.ok) throw new Error(read.error.detail);
    return read.value;
  };

  it('keeps at most `count` exports: past it the oldest is dropped, and its request told to send it again', () => {
    const exports = new KeptExports({ count: 2, bytes: Number.MAX_SAFE_INTEGER });
    for (const ref of [1, 2, 3]) expect(keep(exports, ref)).toEqual({ ref, waba: '102290129340398' });
    expect(exports.size).toBe(2);
    expect(() => exports.take(1)).toThrow(
      /was dropped before its reconciliation's turn: more than 2 exports, .* were waiting at once; send the request again/,
    );
    expect(exports.take(2).waba).toBe('102290129340398');
    expect(exports.take(3).waba).toBe('102290129340398');
    expect(exports.size).toBe(0);
    // Taken once: the same ref again is no other request's export.
    expect(() => exports.take(3)).toThrow(/no longer kept \(ref 3\)/);
  });

  it('keeps at most `bytes` of bodies, dropping the oldest, yet always the newest whatever its size', () => {
    const exports = new KeptExports({ count: 100, bytes: 2 * body.byteLength });
    for (const ref of [1, 2]) keep(exports, ref);
    expect(exports.size).toBe(2);
    keep(exports, 3);
    expect(exports.size).toBe(2);
    expect(() => exports.take(1)).toThrow(/dropped before its reconciliation's turn/);
    // A body larger than the bound alone (a raised WAMETER_BODY_LIMIT) is still kept for its own request.
    const small = new KeptExports({ count: 100, bytes: 10 });
    keep(small, 1);
    keep(small, 2);
    expect(() => small.take(1)).toThrow(/dropped/);
    expect(small.take(2).waba).toBe('102290129340398');
  });

  it("a dropped export's error crosses from the worker to the server's thread as itself, its words kept", () => {
    const exports = new KeptExports({ count: 1, bytes: KEPT_EXPORTS_LIMITS.bytes });
    const body = new TextEncoder().encode(JSON.stringify({ analytics: { data: [{ data_points: [] }] } }));
    exports.read(1, body);
    exports.read(2, body);
    let dropped: unknown;
    try {
      exports.take(1);
    } catch (error) {
      dropped = error;
    }
    expect(dropped).toBeInstanceOf(ExportDroppedError);
    const message = (dropped as Error).message;
    const crossed = workerError({ message, kind: workerErrorKindOf(dropped)! });
    expect(crossed).toBeInstanceOf(ExportDroppedError);
    expect(crossed.message).toBe(message);
  });

  it('a dropped or taken export frees its place: a steady stream under the bounds loses none', () => {
    const exports = new KeptExports({ count: 2, bytes: 2 * body.byteLength });
    for (let ref = 1; ref <= 50; ref++) {
      keep(exports, ref);
      if (ref % 2 === 0) exports.drop(ref - 1);
      else if (ref > 1) exports.take(ref - 1);
      expect(exports.size).toBeLessThanOrEqual(2);
    }
    expect(exports.take(50).waba).toBe('102290129340398');
  });

  it('by default keeps 32 exports and 64 MiB of their bodies (docs/service.md)', () => {
    expect(KEPT_EXPORTS_LIMITS).toEqual({ count: 32, bytes: 64 * 1024 * 1024 });
    const exports = new KeptExports();
    for (let ref = 1; ref <= 33; ref++) keep(exports, ref);
    expect(exports.size).toBe(32);
    expect(() => exports.take(1)).toThrow(/more than 32 exports, or 64 MiB of them/);
  });
});
