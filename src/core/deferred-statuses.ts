// A batch's statuses that name no WABA, kept until every line is read (Rater.add, Rater.finish). Most of them
// are a send log's bare lines — an id, a word and an instant — and a million of them kept as the reader's
// objects cost ≈ 80 MB; kept as columns (the id's record in place of the id when that came first) they cost a
// few bytes each. Any other status is kept as it is.

import type { StatusEvent } from './events.js';

const WORDS = ['sent', 'delivered', 'read', 'failed', 'played'] as const;
const WORD_CODES = new Map<string, number>(WORDS.map((word, i) => [word, i]));

/** `Holder`: what a status is kept with in place of its id (the id's record, found already). */
export class DeferredStatuses<Holder extends { readonly id: string }> {
  /** Each bare status's record, or its id when it had none yet. */
  private ids: (Holder | string)[] = [];
  private times = new Float64Array(1024);
  private words = new Uint8Array(1024);
  private others: StatusEvent[] = [];

  get size(): number {
    return this.ids.length + this.others.length;
  }

  /**
   * Keeps `event`; `record`, when given, is its id's record, kept in place of the id (no second copy of the
   * id string) and handed back with it (no second look-up).
   */
  add(event: StatusEvent, record: Holder | undefined): void {
    const code = bareStatusCode(event);
    if (code === undefined) {
      this.others.push(event);
      return;
    }
    const index = this.ids.length;
    if (index === this.times.length) {
      const times = new Float64Array(Math.max(1024, index * 2));
      times.set(this.times);
      this.times = times;
      const words = new Uint8Array(times.length);
      words.set(this.words);
      this.words = words;
    }
    this.ids.push(record ?? event.id);
    this.times[index] = event.atMs;
    this.words[index] = code;
  }

  /** Hands every status back, as events, each with the record it was kept with (if any), and forgets them. */
  drain(apply: (event: StatusEvent, record: Holder | undefined) => void): void {
    const { ids, times, words, others } = this;
    this.ids = [];
    this.others = [];
    this.times = new Float64Array(0);
    this.words = new Uint8Array(0);
    for (let i = 0; i < ids.length; i++) {
      const kept = ids[i]!;
      if (typeof kept === 'string') apply(bareStatus(times[i]!, kept, words[i]!), undefined);
      else apply(bareStatus(times[i]!, kept.id, words[i]!), kept);
    }
    for (const event of others) apply(event, undefined);
  }
}

/**
 * The code of a bare status's word (nothing but the kind, the instant, the id and the word), to be kept as a
 * number and made again by `bareStatus`; undefined for any other status.
 */
export function bareStatusCode(event: StatusEvent): number | undefined {
  const code = WORD_CODES.get(event.status);
  return code === undefined || !isBare(event) ? undefined : code;
}

/** One slot a word code (`bareStatusCode`), each holding no instant yet (Infinity). */
export function bareStatusSlots(): number[] {
  return WORDS.map(() => Infinity);
}

/** The bare status that `bareStatusCode` gave `code` for. */
export function bareStatus(atMs: number, id: string, code: number): StatusEvent {
  return { kind: 'status', atMs, id, status: WORDS[code]! };
}

/** Nothing but the kind, the instant, the id and the word (and no WABA). */
function isBare(event: StatusEvent): boolean {
  for (const key in event) {
    if (
      key !== 'kind' &&
      key !== 'atMs' &&
      key !== 'id' &&
      key !== 'status' &&
      (event as never)[key] !== undefined
    )
      return false;
  }
  return true;
}
