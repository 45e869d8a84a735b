// Group commit: concurrent ingests (one per webhook / API request) queue here and one transaction commits a
// whole group — one fsync (SQLite) or one round of statements and one WAL flush (PostgreSQL) for many
// requests. Each caller's promise resolves only once its group has committed, so "200 only once durable"
// holds for every request of the group.

import { withSha256 } from './engine-checks.js';
import {
  StoreTimeoutError,
  type EventInput,
  type IngestEventsOptions,
  type IngestGroupCounts,
  type IngestItem,
  type IngestItemOutcome,
  type IngestOutcome,
  type WebhookBodyInput,
} from './store.js';

export interface GroupCommitOptions {
  /** Most items in one group. */
  maxItems?: number;
  /** Most events in one group (a group closes at the item that reaches it; a bigger item goes alone). */
  maxEvents?: number;
  /**
   * Most turns of the event loop a group waits for requests still arriving before it commits (`gather`). The
   * default, 1, takes those read in the turn the first came in.
   */
  gatherTurns?: number;
}

interface Waiting {
  item: IngestItem;
  resolve: (outcome: IngestItemOutcome) => void;
  reject: (error: unknown) => void;
}

/**
 * Commits queued items in groups through `commit` (one transaction per call, outcomes in order), one group
 * at a time: items submitted while a group commits form the next group. A group that fails is retried item
 * by item, so one item's failure is that item's alone — unless it failed for lack of time
 * (`StoreTimeoutError`): then every item of it fails with it.
 */
export class GroupCommitQueue {
  private readonly queue: Waiting[] = [];
  private isDraining = false;
  private draining: Promise<void> = Promise.resolve();
  private readonly maxItems: number;
  private readonly maxEvents: number;
  private readonly gatherTurns: number;
  /** Groups committed and items in them (`Store.ingestGroups`: tests, metrics). */
  readonly stats: IngestGroupCounts = { groups: 0, items: 0 };

  constructor(
    private readonly commit: (items: readonly IngestItem[]) => Promise<IngestItemOutcome[]>,
    options: GroupCommitOptions = {},
  ) {
    this.maxItems = options.maxItems ?? 500;
    this.maxEvents = options.maxEvents ?? 20_000;
    this.gatherTurns = options.gatherTurns ?? 1;
  }

  submit(item: IngestItem): Promise<IngestItemOutcome> {
    return new Promise<IngestItemOutcome>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.isDraining) {
        this.isDraining = true;
        this.draining = this.drain();
      }
    });
  }

  /** `Store.ingestWebhook` on either engine: the body and its events, one item of the next group. */
  async submitWebhook(
    raw: WebhookBodyInput,
    events: EventInput[],
  ): Promise<IngestOutcome & { rawId: number; isDuplicate: boolean }> {
    const outcome = await this.submit({ raw: withSha256(raw), events });
    return { ...outcome, rawId: outcome.rawId! };
  }

  /**
   * `Store.ingestEvents` on either engine: events without a body (and the display numbers they came with, and
   * whether their `relistedWabas` is needed).
   */
  async submitEvents(events: EventInput[], options: IngestEventsOptions = {}): Promise<IngestOutcome> {
    const { inserted, duplicates, merged, relistedWabas } = await this.submit({
      raw: null,
      events,
      ...(options.businessNumbers ? { businessNumbers: options.businessNumbers } : {}),
      ...(options.isRelistingNeeded === false ? { isRelistingNeeded: false } : {}),
    });
    return { inserted, duplicates, merged, relistedWabas };
  }

  /** Resolves when everything submitted so far has been committed (or has failed). */
  async idle(): Promise<void> {
    while (this.isDraining) await this.draining;
  }

  private takeGroup(): Waiting[] {
    const group: Waiting[] = [];
    let events = 0;
    while (this.queue.length > 0 && group.length < this.maxItems) {
      const next = this.queue[0]!;
      if (group.length > 0 && events + next.item.events.length > this.maxEvents) break;
      group.push(this.queue.shift()!);
      events += next.item.events.length;
    }
    return group;
  }

  /**
   * Lets the requests arriving now join the group before it commits. Each turn of the event loop
   * (setImmediate) reads every request whose bytes came in meanwhile. While a turn adds items (a burst still
   * coming in, or clients answered by the last commit sending their next request), the group waits one more
   * turn, up to `gatherTurns` in all, so a steady stream never holds a group back for long. A lone request
   * waits one turn, as before.
   *
   * On SQLite a commit runs in the server's thread, so no request is read while it runs, and a group took
   * only those read in one turn; much of a commit's cost is the group's, not its items' (docs/benchmarks.md
   * §3, forty-fourth session). On PostgreSQL requests are read while a group commits, and waiting measured
   * no gain.
   */
  private async gather(): Promise<void> {
    for (let turn = 0; turn < this.gatherTurns; turn++) {
      const before = this.queue.length;
      await new Promise<void>((resolveWait) => setImmediate(resolveWait));
      if (this.queue.length === before || this.queue.length >= this.maxItems) return;
    }
  }

  private async drain(): Promise<void> {
    await this.gather();
    for (;;) {
      // Checked and cleared in one synchronous step: a later submit always finds a drain running or starts one.
      if (this.queue.length === 0) {
        this.isDraining = false;
        return;
      }
      const group = this.takeGroup();
      try {
        const outcomes = await this.commit(group.map((waiting) => waiting.item));
        this.stats.groups += 1;
        this.stats.items += group.length;
        group.forEach((waiting, index) => waiting.resolve(outcomes[index]!));
      } catch (error) {
        // A write the database did not finish in time says nothing of an item: retried one by one, each would
        // wait its own bound again (ten items, eleven bounds before the last is answered).
        if (group.length === 1 || error instanceof StoreTimeoutError) {
          for (const waiting of group) waiting.reject(error);
        } else {
          // Nothing of the group was committed: each item alone, so that one bad item fails alone.
          for (const waiting of group) {
            try {
              waiting.resolve((await this.commit([waiting.item]))[0]!);
            } catch (itemError) {
              waiting.reject(itemError);
            }
          }
        }
      }
      // Let the requests that arrived meanwhile be read, so they join the next group.
      if (this.queue.length > 0 && this.queue.length < this.maxItems) await this.gather();
    }
  }
}
