// The live-rating worker thread: its own store connection and its own copy of the server's pricing, so that
// reading a portfolio's events and rating them runs beside the webhook endpoint, not in its event loop.
// It only reads the store, through a read-only connection; the server's thread writes what it answers.

import { parentPort, workerData } from 'node:worker_threads';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/store.js';
import type { BillableUnit, PendingMessage } from '../core/units.js';
import {
  createInProcessLiveRater,
  RATING_PART_ROWS,
  type LiveRater,
  type LiveRating,
  type ScopeRating,
  type WorkerReply,
  type WorkerRequest,
  type WorkerSetup,
  workerErrorKindOf,
} from './live-rater.js';
import { pricingSetupFrom } from './pricing-setup.js';

async function main(port: NonNullable<typeof parentPort>, setup: WorkerSetup): Promise<void> {
  const reply = (message: WorkerReply) => port.postMessage(message);
  // This thread's process warnings go to the server's thread, which logs them as JSON lines: Node would print
  // them here as plain text on stderr, among the service's log lines.
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error & { code?: unknown; detail?: unknown }) =>
    reply({
      type: 'warning',
      name: warning.name,
      message: warning.message,
      ...(typeof warning.code === 'string' ? { code: warning.code } : {}),
      ...(typeof warning.detail === 'string' ? { detail: warning.detail } : {}),
    }),
  );
  let store: Store;
  let rater: LiveRater;
  try {
    const pricing = await pricingSetupFrom(setup);
    if (!pricing.ok) throw new Error(pricing.error);
    // Read-only: the worker only lists events (live-rater.ts, createInProcessLiveRater), and the server's
    // thread, which holds the writer lock, writes what it answers. So no bug here can ever write behind the
    // lock's back, and nothing is created or migrated: the server migrated the store before starting this
    // thread, and a store gone since (a SQLite file deleted) is refused, not made again empty.
    store = await openStore(setup.db, { isReadOnly: true });
    rater = createInProcessLiveRater(store, pricing.value);
  } catch (error) {
    reply({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
    port.close();
    return;
  }
  /** Replies with what `work` answers, or with its error's message and, when its class matters, kind. */
  const answer = async (id: number, work: () => Promise<WorkerReply>) => {
    try {
      reply(await work());
    } catch (error) {
      const kind = workerErrorKindOf(error);
      reply({
        type: 'error',
        id,
        message: error instanceof Error ? error.message : String(error),
        ...(kind === undefined ? {} : { kind }),
      });
    }
  };
  /** Request id → the server's thread taking the part of its rows last sent (`partTaken`). */
  const taken = new Map<number, () => void>();
  /**
   * Sends `units` and `pending` in parts (RATING_PART_ROWS), each once the server's thread took the last, when
   * there are more than one part of them; says whether it did. Read at once, a whole portfolio's rows held up
   * that thread (and every webhook) for seconds.
   */
  const sentInParts = async (
    id: number,
    units: readonly BillableUnit[],
    pending: readonly PendingMessage[],
  ): Promise<boolean> => {
    if (units.length + pending.length <= RATING_PART_ROWS) return false;
    for (let start = 0; start < Math.max(units.length, pending.length); start += RATING_PART_ROWS) {
      const wasTaken = new Promise<void>((resolve) => taken.set(id, resolve));
      reply({
        type: 'ratedPart',
        id,
        units: units.slice(start, start + RATING_PART_ROWS),
        pending: pending.slice(start, start + RATING_PART_ROWS),
      });
      await wasTaken;
    }
    return true;
  };
  /** A live rating, its rows (when it has all of them: `full`) sent first in parts when there are many. */
  const rated = async (id: number, rating: LiveRating): Promise<WorkerReply> => {
    const { full } = rating;
    if (full === null || !(await sentInParts(id, full.units, full.pending))) {
      return { type: 'rated', id, rating };
    }
    return {
      type: 'rated',
      id,
      rating: { ...rating, full: { ...full, units: [], pending: [] } },
      inParts: true,
    };
  };
  /** A whole rating of a scope (a re-rate's), its units and pending messages sent first in parts when many. */
  const ratedScope = async (id: number, rating: ScopeRating): Promise<WorkerReply> => {
    const { output } = rating;
    if (!(await sentInParts(id, output.units, output.pending))) return { type: 'ratedScope', id, rating };
    return {
      type: 'ratedScope',
      id,
      rating: { ...rating, output: { ...output, units: [], pending: [] } },
      inParts: true,
    };
  };
  /**
   * The server's ref of an export read here (its request's id, unique for the server's rater) → this rater's
   * own. A ref from a worker that stopped is unknown here: its reconciliation fails, never reads another
   * request's export.
   */
  const exportRefs = new Map<number, number>();
  const ownRef = (ref: number) => exportRefs.get(ref) ?? -1;
  // One request at a time, in order: a settle always follows the rating it settles.
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (request: WorkerRequest) => {
    // Not queued: the rating in progress is what waits for it.
    if (request.type === 'partTaken') {
      const resolve = taken.get(request.id);
      taken.delete(request.id);
      resolve?.();
      return;
    }
    queue = queue.then(async () => {
      switch (request.type) {
        case 'rate':
          await answer(request.id, async () =>
            rated(request.id, await rater.rate(request.scope, request.options)),
          );
          break;
        case 'rateScope':
          await answer(request.id, async () =>
            ratedScope(request.id, await rater.rateScope(request.scope, request.options)),
          );
          break;
        case 'readAnalytics':
          await answer(request.id, async () => {
            const read = await rater.readAnalyticsBody(request.bytes);
            if (!read.ok) return { type: 'answered', id: request.id, answer: read };
            exportRefs.set(request.id, read.value.ref);
            return {
              type: 'answered',
              id: request.id,
              answer: { ok: true, value: { ...read.value, ref: request.id } },
            };
          });
          break;
        case 'dropAnalytics':
          rater.dropAnalytics(ownRef(request.ref));
          exportRefs.delete(request.ref);
          break;
        case 'reconcile': {
          const { analyticsRef } = request.job;
          const job =
            analyticsRef === undefined ? request.job : { ...request.job, analyticsRef: ownRef(analyticsRef) };
          if (analyticsRef !== undefined) exportRefs.delete(analyticsRef);
          await answer(request.id, async () => ({
            type: 'answered',
            id: request.id,
            answer: await rater.reconcile(job),
          }));
          break;
        }
        case 'estimate':
          await answer(request.id, async () => ({
            type: 'answered',
            id: request.id,
            answer: await rater.estimate(request.job),
          }));
          break;
        case 'settle':
          rater.settle(request.scope, request.isCommitted);
          break;
        case 'forget':
          rater.forget(request.wabas);
          break;
        case 'close':
          await store.close();
          port.close();
          break;
      }
    });
  });
  reply({ type: 'ready' });
}

if (parentPort) void main(parentPort, workerData as WorkerSetup);
