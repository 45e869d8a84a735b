// Which portfolios an explanation rates: those where the asked user has events — of the WABAs the caller may
// read, so that another client's customers are neither rated nor told apart from strangers.
import { describe, expect, it } from 'vitest';
import type { CoreEvent } from '../core/events.js';
import { wabasOfUserPortfolios } from './on-demand.js';

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
