// The speculative turn's time source, injected (SpeculativeDecoder's constructor) so that the hedge rules, which
// compare how long a verification has been out with what waiting for it is worth, can be tested on a fake clock.
import type { VerifyResult } from '../pipeline/coordinator.ts';

export interface Clock {
  nowMs(): number;
}

/** The page's monotonic clock. */
export const performanceClock: Clock = { nowMs: () => performance.now() };

/** A verification sent to the pipeline (a round or a hedge): when it left, and whether its reply (or failure) is in. */
export interface Sent {
  promise: Promise<VerifyResult>;
  sentAtMs: number;
  settled: boolean;
}

/** Track a verification just sent. A failure only settles it: its reply is awaited where it is used. */
export function track(promise: Promise<VerifyResult>, clock: Clock): Sent {
  const s: Sent = { promise, sentAtMs: clock.nowMs(), settled: false };
  promise.then(
    () => {
      s.settled = true;
    },
    () => {
      s.settled = true;
    },
  );
  return s;
}
