// Ids seen recently, forgotten in whole generations: the streaming rater's memory of messages it has
// already rated, so that a late read receipt is not taken for a new message. No per-id timestamps are kept
// (memory is the point); an id is remembered for at least `retentionMs` after the instant it was added at.

export class RecentIds {
  private generations: { untilMs: number; ids: Set<string> }[] = [];

  constructor(
    private readonly retentionMs: number,
    private readonly generationMs: number,
  ) {}

  has(id: string): boolean {
    for (const generation of this.generations) if (generation.ids.has(id)) return true;
    return false;
  }

  add(id: string, atMs: number): void {
    const untilMs = (Math.floor(atMs / this.generationMs) + 1) * this.generationMs;
    let newest = this.generations[this.generations.length - 1];
    if (!newest || newest.untilMs < untilMs) {
      newest = { untilMs, ids: new Set() };
      this.generations.push(newest);
    }
    // An id older than the newest generation joins it: remembered longer than needed, never shorter.
    newest.ids.add(id);
  }

  /** Drops generations whose every id has been remembered for `retentionMs` by `horizonMs`. */
  forgetBefore(horizonMs: number): void {
    while (this.generations.length > 0 && this.generations[0]!.untilMs + this.retentionMs <= horizonMs) {
      this.generations.shift();
    }
  }

  get size(): number {
    let size = 0;
    for (const generation of this.generations) size += generation.ids.size;
    return size;
  }
}
