// SIGTERM and SIGINT held while the program loads. Loading every module `wameter` imports takes about 0.4 s
// (more on a busy machine), and until a listener is added Node ends the process at a signal with no word
// (exit 143, 130): a supervisor stopping `wameter serve` just after starting it saw no line in the log, and
// a restart loop could stop it so again and again. main.ts holds them first, before importing anything else
// of wameter; the program then lets go of them: `serve` takes over (runUntilSignalled), and any other command
// is ended by a held signal as it would have been.

let held: NodeJS.Signals | undefined;
const hold = (signal: NodeJS.Signals): void => {
  held ??= signal;
};

/** From now until `releaseHeldSignals`: a SIGTERM or SIGINT is kept, not acted on. */
export function holdSignalsWhileLoading(): void {
  process.on('SIGTERM', hold);
  process.on('SIGINT', hold);
}

/**
 * Stops holding signals (the caller has its own listeners now, or wants Node's default back) and returns the
 * first one received meanwhile, if any, for the caller to act on.
 */
export function releaseHeldSignals(): NodeJS.Signals | undefined {
  process.off('SIGTERM', hold);
  process.off('SIGINT', hold);
  const signal = held;
  held = undefined;
  return signal;
}
