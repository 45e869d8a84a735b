// Reads event sources and rates them in one pass: the use-case behind `wameter rate`, `explain`,
// `estimate --events` and `reconcile`. Units stream to the sink as they become final.

import { defaultAccount, type CoreEvent } from '../core/events.js';
import { Rater, type RaterSummary, type RatingOptions, type RatingSink } from '../core/rate-events.js';
import type { Era } from '../core/units.js';
import {
  readEventSources,
  type IgnoredNote,
  type ReadSummary,
  type SourceError,
} from '../ingest/read-events.js';
import type { RatingSetup } from './load-rating-setup.js';

export interface RateSourcesOptions {
  asOfRules?: Era;
  maxLatenessMs?: number;
  withDecisions?: boolean;
  trace?: RatingOptions['trace'];
  onSourceError?(error: SourceError): void;
  onIgnored?(note: IgnoredNote): void;
  /** Sees every event as it is read, before the rater (explain finds failed messages this way). */
  onEvent?(event: CoreEvent): void;
  /** Called every `progressEvery` events (default 1,000,000) with the count so far. */
  onProgress?(events: number): void;
  progressEvery?: number;
  stdin?: NodeJS.ReadableStream;
}

export interface RateSourcesResult extends RaterSummary {
  read: ReadSummary;
}

/** The Rater's options for a setup (accounts, cards, markets), as every rating of sources takes them. */
export function ratingOptionsFor(setup: RatingSetup, options: RateSourcesOptions = {}): RatingOptions {
  const accounts = new Map(setup.accounts.map((a) => [a.waba, a]));
  const ratingOptions: RatingOptions = {
    accountFor: (waba) => accounts.get(waba) ?? defaultAccount(waba),
    listedWabas: new Set(accounts.keys()),
    rateBook: setup.rateBook,
    markets: setup.markets,
    isReportedRulesEnabled: setup.isReportedRulesEnabled,
  };
  if (options.asOfRules) ratingOptions.asOfRules = options.asOfRules;
  if (options.maxLatenessMs !== undefined) ratingOptions.maxLatenessMs = options.maxLatenessMs;
  if (options.withDecisions) ratingOptions.withDecisions = true;
  if (options.trace) ratingOptions.trace = options.trace;
  return ratingOptions;
}

export async function rateSources(
  sources: readonly string[],
  setup: RatingSetup,
  sink: RatingSink,
  options: RateSourcesOptions = {},
): Promise<RateSourcesResult> {
  const ratingOptions = ratingOptionsFor(setup, options);
  const rater = new Rater(ratingOptions, sink);
  const progressEvery = options.progressEvery ?? 1_000_000;
  let added = 0;
  const read = await readEventSources(
    sources,
    {
      onEvents(events) {
        for (const event of events) {
          options.onEvent?.(event);
          rater.add(event);
          if (++added % progressEvery === 0) options.onProgress?.(added);
        }
      },
      onError(error) {
        options.onSourceError?.(error);
      },
      onIgnored(note) {
        options.onIgnored?.(note);
      },
    },
    options.stdin ? { stdin: options.stdin } : {},
  );
  return { ...rater.finish(), read };
}
