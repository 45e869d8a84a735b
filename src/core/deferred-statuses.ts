// A batch's statuses that name no WABA, kept until every line is read (Rater.add, Rater.finish). Most of them
// are a send log's bare lines — an id, a word and an instant — and a million of them kept as the reader's
// objects cost ≈ 80 MB; kept as columns (the id shared with its message's record when that came first) they
// cost a few bytes each. Any other status is kept as it is.

import type { StatusEvent } from './events.js';

const WORDS = ['sent', 'delivered', 'read', 'failed', 'played'] as const;
const WORD_CODES = new Map<string, number>(WORDS.map((word, i) => [word, i]));

export class DeferredStatuses {
  private ids: string[] = [];
  private times = new Float64Array(1024);
  private words = new Uint8Array(1024);
  private others: StatusEvent[] = [];

  get size(): number {
    return this.ids.length + this.others.length;
  }

  /** Keeps `event`; `sharedId` is an equal string already kept elsewhere (the record's id), to keep instead. */
  add(event: StatusEvent, sharedId: string | undefined): void {
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
    this.ids.push(sharedId ?? event.id);
    this.times[index] = event.atMs;
    this.words[index] = code;
  }

  /** Hands every status back, as events, and forgets them. */
  drain(apply: (event: StatusEvent) => void): void {
    const { ids, times, words, others } = this;
    this.ids = [];
    this.others = [];
    this.times = new Float64Array(0);
    this.words = new Uint8Array(0);
    for (let i = 0; i < ids.length; i++) apply(bareStatus(times[i]!, ids[i]!, words[i]!));
    for (const event of others) apply(event);
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
