// Reads event sources and rates them in one pass: the use-case behind `wameter rate`, `explain`,
// `estimate --events` and `reconcile`. Units stream to the sink as they become final.

import { stat } from 'node:fs/promises';
import { defaultAccount, type CoreEvent } from '../core/events.js';
import { ColumnarRater } from '../core/columnar/columnar-rater.js';
import { readFilesColumnar } from '../ingest/columnar/read-columnar.js';
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
  /**
   * `rater`: always the Rater (rate-events.ts). `auto` (the default): the columnar rater (src/core/columnar)
   * where the input is of its class, else the Rater. Unset, the environment's WAMETER_ENGINE decides
   * (`rater` forces the Rater: for A/B runs, and as a safety switch).
   */
  engine?: 'auto' | 'rater';
  /**
   * How the columnar rater's input is read: `bytes` (the default) the byte reader (ingest/columnar) where it
   * is sure to read as the reader does, else the reader's events; `events` always the reader's events (for
   * A/B runs). Unset, the environment's WAMETER_COLUMNAR_READER decides (`events`).
   */
  columnarReader?: 'bytes' | 'events';
}

export interface RateSourcesResult extends RaterSummary {
  read: ReadSummary;
  /** Which engine rated: the columnar rater, or the Rater (asked for, not eligible, or after a bail). */
  engine: 'columnar' | 'rater';
  /** Why the columnar rater gave the input up to the Rater, when it did (its stable reason). */
  bail?: string;
  /** How the events were read: the columnar byte reader, or `readEventSources`. */
  reader: 'bytes' | 'events';
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
  const progressEvery = options.progressEvery ?? 1_000_000;
  let bail: string | undefined;
  // Progress already told by a columnar read that bailed: the Rater's read of the same sources does not
  // tell it twice.
  let progressTold = 0;
  const isEligible = await isColumnarEligible(sources, options);
  const columnarReader =
    options.columnarReader ?? (process.env.WAMETER_COLUMNAR_READER === 'events' ? 'events' : 'bytes');
  if (isEligible && columnarReader === 'bytes') {
    // Stage 2: the files' bytes straight into the columnar rater, where the byte reader is sure to read them
    // as the reader does; else (`needsReader`) stage 1 reads them again through the reader.
    const columnar = new ColumnarRater(ratingOptions, sink, { bytes: await bytesOf(sources) });
    let added = 0;
    const outcome = await readFilesColumnar(sources, columnar, () => {
      if (++added % progressEvery === 0 && added > progressTold) {
        options.onProgress?.(added);
        progressTold = added;
      }
    });
    if ('read' in outcome) {
      const rated = columnar.finish();
      if (!('bail' in rated)) return { ...rated, read: outcome.read, engine: 'columnar', reader: 'bytes' };
      bail = rated.bail;
    } else if ('bail' in outcome) bail = outcome.bail;
    // Stage 1 would give the input up at the same line (its source error or note): the Rater reads at once.
    else if (outcome.readerSays) bail = 'said by the reader';
  }
  if (isEligible && bail === undefined) {
    const columnar = new ColumnarRater(ratingOptions, sink, { bytes: await bytesOf(sources) });
    let added = 0;
    let read: ReadSummary | undefined;
    try {
      read = await readEventSources(sources, {
        onEvents(events) {
          for (const event of events) {
            columnar.add(event);
            if (++added % progressEvery === 0 && added > progressTold) {
              options.onProgress?.(added);
              progressTold = added;
            }
          }
          // Given up: the rest is not read (a sink's throw stops the reader, readEventSources).
          if (columnar.bailedBecause !== undefined) throw GIVEN_UP;
        },
        // Said by the Rater's read instead, in its order: the fast read gives the input up.
        onError() {
          columnar.bail('source error');
        },
        onIgnored() {
          columnar.bail('ignored item');
        },
      });
    } catch (error) {
      if (error !== GIVEN_UP) throw error;
    }
    const outcome = columnar.finish();
    if (read !== undefined && !('bail' in outcome)) {
      return { ...outcome, read, engine: 'columnar', reader: 'events' };
    }
    bail = 'bail' in outcome ? outcome.bail : 'read stopped';
  }
  const rater = new Rater(ratingOptions, sink);
  let added = 0;
  const read = await readEventSources(
    sources,
    {
      onEvents(events) {
        for (const event of events) {
          options.onEvent?.(event);
          rater.add(event);
          if (++added % progressEvery === 0 && added > progressTold) options.onProgress?.(added);
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
  return {
    ...rater.finish(),
    read,
    engine: 'rater',
    reader: 'events',
    ...(bail === undefined ? {} : { bail }),
  };
}

/** The sizes of the sources that are regular files, summed (the columnar rater's size hint; folders: 0). */
async function bytesOf(sources: readonly string[]): Promise<number> {
  let bytes = 0;
  for (const source of sources) {
    const found = await stat(source).catch(() => undefined);
    if (found?.isFile() === true) bytes += found.size;
  }
  return bytes;
}

/** Thrown by the columnar read's sink once the columnar rater has given the input up: stops the read. */
const GIVEN_UP = new Error('the columnar rater gave the input up');

/**
 * The columnar rater reads the sources once and, if it gives the input up, the Rater reads them again: regular
 * files and folders only (stdin, a named pipe or a shell's `<(…)` cannot be read twice: their second read
 * would find nothing), a plain batch (no what-if, stream, trace, decisions or event hook).
 */
async function isColumnarEligible(sources: readonly string[], options: RateSourcesOptions): Promise<boolean> {
  const engine = options.engine ?? (process.env.WAMETER_ENGINE === 'rater' ? 'rater' : 'auto');
  if (
    engine !== 'auto' ||
    sources.includes('-') ||
    options.asOfRules !== undefined ||
    options.maxLatenessMs !== undefined ||
    options.withDecisions === true ||
    options.trace !== undefined ||
    options.onEvent !== undefined
  ) {
    return false;
  }
  for (const source of sources) {
    try {
      const found = await stat(source);
      if (!found.isFile() && !found.isDirectory()) return false;
    } catch {
      // Missing: the read says so (once, by the Rater after the fast read's bail).
    }
  }
  return true;
}
