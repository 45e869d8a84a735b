// On-demand ratings (explain, re-rate, reconciliation, estimate) run one at a time, taken from the clients
// in turn: one client's pile of heavy requests never holds another client's request behind all of it, and the
// live rating of arrivals, which goes to the rating thread beside them, waits for at most the one running.
// Each client may have a bounded number waiting or running; past it the request is refused at once (429),
// so that no client can make the queue, and everyone's wait, grow without end.

/** The client already has `limit` on-demand ratings waiting or running: refused, nothing was done. */
export class ClientBusyError extends Error {
  readonly retryAfterSeconds = 1;
  constructor(
    readonly limit: number,
    message = `this API key already has ${limit} requests that rate stored events (explain, re-rate, reconciliation, estimate) waiting or running: wait for their answers before sending more`,
  ) {
    super(message);
    this.name = 'ClientBusyError';
  }
}

/** The default bound per client (waiting and running together). */
export const DEFAULT_PER_CLIENT_LIMIT = 4;

export class FairQueue {
  /**
   * Tasks not started yet. Each has a turn: a client's first waiting task takes the turn running now, each
   * next one the turn after its previous one, so a client that has just had a turn waits behind every
   * client that has not (start-time fair queuing, one task a turn).
   */
  private readonly waiting: { client: string; turn: number; arrival: number; start: () => void }[] = [];
  /** Client → its tasks waiting or running. */
  private readonly held = new Map<string, number>();
  /**
   * Client → the turn of its last task, kept while it is ahead of the turn of the day: a client that sends
   * its next request the moment its last one is answered must not come back at the turn of the day, or two
   * such clients would keep the turn from ever moving and starve a third's second request.
   */
  private readonly lastTurn = new Map<string, number>();
  /** The turn of the task started last. */
  private turn = 0;
  private arrivals = 0;
  private isRunning = false;

  constructor(readonly perClientLimit = DEFAULT_PER_CLIENT_LIMIT) {
    if (!Number.isInteger(perClientLimit) || perClientLimit < 1)
      throw new RangeError(`perClientLimit must be a whole number ≥ 1, not ${perClientLimit}`);
  }

  /** Tasks waiting (not running) for `client`, or for all clients. */
  waitingCount(client?: string): number {
    return this.waiting.filter((task) => client === undefined || task.client === client).length;
  }

  /**
   * Runs `work` when its turn comes (see `waiting`): never beside another task, and after the tasks of
   * clients that have had fewer turns. Rejects with `ClientBusyError`, without running it, when `client`
   * already holds `perClientLimit` tasks — unless `isContinuation`: the next step of a request already let in
   * (a re-rate's next portfolio), which takes its turn but is never refused half-way.
   */
  run<T>(client: string, work: () => Promise<T>, options: { isContinuation?: boolean } = {}): Promise<T> {
    const held = this.held.get(client) ?? 0;
    if (held >= this.perClientLimit && !options.isContinuation)
      return Promise.reject(new ClientBusyError(this.perClientLimit));
    this.held.set(client, held + 1);
    const turn = Math.max(this.turn, (this.lastTurn.get(client) ?? -Infinity) + 1);
    this.lastTurn.set(client, turn);
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        let outcome: Promise<T>;
        try {
          outcome = Promise.resolve(work());
        } catch (error) {
          outcome = Promise.reject(error as Error);
        }
        // The client's count is given back before its caller hears the answer (it may send the next).
        outcome.then(
          (value) => {
            this.ended(client);
            resolve(value);
          },
          (error: unknown) => {
            this.ended(client);
            reject(error as Error);
          },
        );
      };
      this.waiting.push({ client, turn, arrival: this.arrivals++, start });
      if (!this.isRunning) this.startNext();
    });
  }

  private ended(client: string): void {
    const left = (this.held.get(client) ?? 1) - 1;
    if (left > 0) this.held.set(client, left);
    else this.held.delete(client);
    this.isRunning = false;
    this.startNext();
  }

  private startNext(): void {
    if (this.waiting.length === 0) return;
    let best = 0;
    for (let i = 1; i < this.waiting.length; i++) {
      const task = this.waiting[i]!;
      const chosen = this.waiting[best]!;
      if (task.turn < chosen.turn || (task.turn === chosen.turn && task.arrival < chosen.arrival)) best = i;
    }
    const [task] = this.waiting.splice(best, 1);
    this.turn = task!.turn;
    // An idle client whose last turn is behind the turn of the day comes back at the turn of the day (no
    // credit for idle time): its entry goes.
    for (const [client, turn] of this.lastTurn) {
      if (turn < this.turn && !this.held.has(client)) this.lastTurn.delete(client);
    }
    this.isRunning = true;
    task!.start();
  }
}
