// The rating history as a key for some WABAs sees it (`GET /v1/ratings`), a page at a time: the ratings that
// touched its WABAs, narrowed to them, without the live ratings that left its share as it was (each arrival
// of a portfolio mate's traffic re-rates the whole portfolio: listing those told the key when its mate's
// messages came in).
//
// Whether a rating is listed depends on it and on the ratings before it only, never on the page it falls in:
// a rating hidden on one page appears on no other, and one listed is listed on whichever page, whatever the
// `limit`. A cursor names the last rating a page listed (never a hidden one, whose time would say when the
// mate's traffic came in), and is refused unless this key's listing lists that rating.

import {
  badRatingsCursor,
  ratingOfCursor,
  ratingsCursor,
  type RatingRecord,
  type Store,
} from '../store/store.js';

/**
 * How many ratings before a live rating are searched for the last one covering each WABA of the key (its
 * share is compared with that one's); and how many ratings a page reads after its cursor at most (a run of
 * that many unlisted ratings ends the listing: never a read of a busy portfolio's whole history).
 */
export const SCOPED_RATINGS_READ = 1000;

/**
 * A rating a key lists: `own`, its WABAs that are the key's; `isWhole` when they are all of them and their
 * portfolios hold no WABA of another key's (shown with its changes).
 */
export interface ListedRating {
  record: RatingRecord;
  own: string[];
  isWhole: boolean;
}

export interface ScopedRatingsPage {
  ratings: ListedRating[];
  /** The cursor of the next page (the last rating listed); null on the last page. */
  nextCursor: string | null;
}

/**
 * One page of the rating history of the key for `scope`, newest first, after `cursor` (`ratingsCursor` of
 * a rating this listing listed: any other is refused, BAD_CURSOR, as an unknown one is).
 *
 * A rating covering WABAs beyond the scope is listed narrowed; one from before the totals were kept per WABA
 * only when every WABA it covers is the key's. Every rating that is not live is listed (a re-rate, an
 * upgrade). A live rating is listed whenever its portfolios (`portfolioOf`: the accounts file's WABAs and the
 * stored ones) are wholly the key's; else, narrowed or covering the key's WABAs alone, when, for some WABA of the key's it covers, the WABA's share of
 * the totals or the rules or cards differ from the last rating before it that covered that WABA (whatever
 * its reason), searched among the `SCOPED_RATINGS_READ` before it; with none there, only when those are all
 * the ratings before it (it is the WABA's first), else it has nothing to be compared with and is not listed.
 *
 * A page reads at most `SCOPED_RATINGS_READ` ratings after its cursor: it may hold fewer than `limit`, with a
 * cursor to go on; a page whose read lists none ends the listing (next cursor null).
 */
export async function scopedRatingsPage(
  store: Store,
  scope: readonly string[],
  page: { limit: number; reasons?: readonly string[] | undefined; cursor?: string | undefined },
  portfolioOf: (waba: string) => Promise<readonly string[]> = (waba) => Promise.resolve([waba]),
): Promise<ScopedRatingsPage> {
  const inScope = new Set(scope);
  /** Whether every WABA of a WABA's portfolio (the accounts file's and the stored ones) is the key's. */
  const isPortfolioOwn = new Map<string, Promise<boolean>>();
  const isAllOwn = async (wabas: readonly string[]) => {
    for (const waba of wabas) {
      let answer = isPortfolioOwn.get(waba);
      if (answer === undefined) {
        answer = portfolioOf(waba).then((mates) => mates.every((mate) => inScope.has(mate)));
        isPortfolioOwn.set(waba, answer);
      }
      if (!(await answer)) return false;
    }
    return true;
  };
  const lookback = SCOPED_RATINGS_READ;
  /** The ratings read, newest first: the cursor's first when there is one. */
  const rows: RatingRecord[] = [];
  /** For each WABA of the scope, the places in `rows` (ascending) of the ratings that can be compared with. */
  const covering = new Map<string, number[]>();
  /** For each WABA, how far into its `covering` the ratings at or before the one looked at lie. */
  const passed = new Map<string, number>();
  let isHistoryRead = false;
  let readAfter = page.cursor;

  const add = (record: RatingRecord) => {
    // A rating from before the totals were kept per WABA, not wholly the key's, is neither listed nor
    // compared with.
    if (isComparable(record, inScope)) {
      for (const waba of record.wabas.filter((w) => inScope.has(w))) {
        const places = covering.get(waba) ?? [];
        places.push(rows.length);
        covering.set(waba, places);
      }
    }
    rows.push(record);
  };
  /** Reads on until `count` ratings are read, or all there are. */
  const readUpTo = async (count: number) => {
    while (rows.length < count && !isHistoryRead) {
      const want = Math.max(lookback, count - rows.length);
      const read = await store.listRatings(want, scope, {
        ...(page.reasons ? { reasons: page.reasons } : {}),
        ...(readAfter === undefined ? {} : { cursor: readAfter }),
      });
      for (const record of read) add(record);
      if (read.length < want) isHistoryRead = true;
      else readAfter = ratingsCursor(read.at(-1)!.id);
    }
  };
  /**
   * The place in `rows` of the last rating before the one at `at` that covered `waba`, among the `lookback`
   * before it; undefined when none of them did. Reads on only as far as that takes. Asked for `at` in
   * ascending order.
   */
  const placeBefore = async (waba: string, at: number): Promise<number | undefined> => {
    for (;;) {
      const places = covering.get(waba) ?? [];
      let next = passed.get(waba) ?? 0;
      while (next < places.length && places[next]! <= at) next += 1;
      passed.set(waba, next);
      const before = places[next];
      if (before !== undefined) return before <= at + lookback ? before : undefined;
      // The ratings to search, and one more: whether there are any before those.
      if (isHistoryRead || rows.length >= at + lookback + 2) return undefined;
      await readUpTo(at + lookback + 2);
    }
  };
  /** The rating at `at` (read), as the key lists it; undefined when it does not. Asked in ascending order. */
  const listed = async (at: number): Promise<ListedRating | undefined> => {
    const record = rows[at]!;
    if (!isComparable(record, inScope)) return undefined;
    const own = record.wabas.filter((w) => inScope.has(w));
    // A rating of the key's WABAs alone is whole (its changes shown) only when their portfolios hold no other
    // key's WABA — the accounts file's mates count before their first event: otherwise it is listed as a
    // narrowed one is. Listed whole until the mate's first event and narrowed after, it told when that came.
    const isWhole = own.length === record.wabas.length && (await isAllOwn(own));
    if (isWhole || record.reason !== 'live') return { record, own, isWhole };
    for (const waba of own) {
      const before = await placeBefore(waba, at);
      const isNews =
        before === undefined
          ? // None of the ratings before it covered the WABA: news when they are all there were (its first).
            rows.length - 1 - at <= lookback
          : shareOf(rows[before]!, waba) !== shareOf(record, waba);
      if (isNews) return { record, own, isWhole };
    }
    return undefined;
  };

  let start = 0;
  if (page.cursor !== undefined) {
    // The rating the cursor names must be one this listing lists (the store refuses one it does not hold).
    const after = await store.getRating(ratingOfCursor(page.cursor));
    if (after === undefined) throw badRatingsCursor();
    add(after);
    // The first read after the cursor: the store checks that this listing (its WABAs, its reasons) holds it.
    await readUpTo(2);
    if ((await listed(0)) === undefined) throw badRatingsCursor();
    start = 1;
  }
  const ratings: ListedRating[] = [];
  for (let at = start; at < start + lookback; at++) {
    if (at >= rows.length) {
      await readUpTo(at + 1);
      if (at >= rows.length) return { ratings, nextCursor: null };
    }
    const rating = await listed(at);
    if (rating === undefined) continue;
    if (ratings.length === page.limit)
      return { ratings, nextCursor: ratingsCursor(ratings.at(-1)!.record.id) };
    ratings.push(rating);
  }
  // As many read as a page reads: the next page goes on after the last listed (none listed: the end).
  return { ratings, nextCursor: ratings.length === 0 ? null : ratingsCursor(ratings.at(-1)!.record.id) };
}

/** A rating the key may be shown: wholly its own, or touching its WABAs with totals kept per WABA. */
function isComparable(record: RatingRecord, inScope: ReadonlySet<string>): boolean {
  const ownCount = record.wabas.filter((w) => inScope.has(w)).length;
  return ownCount === record.wabas.length || (ownCount > 0 && record.totalsByWaba !== undefined);
}

/**
 * What a rating said of one WABA: its share of the totals (a WABA absent from them has no units), the rules
 * and the cards. A rating from before the totals were kept per WABA (listed when wholly the key's) is news
 * each time.
 */
function shareOf(record: RatingRecord, waba: string): string {
  return JSON.stringify([
    record.totalsByWaba === undefined
      ? `${record.id} (no totals per WABA)`
      : (record.totalsByWaba[waba] ?? null),
    record.asOfRules,
    record.rateCards,
    record.rateCardsDigest ?? null,
  ]);
}
