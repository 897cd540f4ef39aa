// Records this tab's timeline intervals on the coordinator's clock (seconds from the run start), shipped in batches.
import type { Interval, IntervalKind } from '../planner/timeline.ts';

/** Wall clock in ms since the epoch, with sub-ms resolution where the platform has it. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export class TimelineRecorder {
  private pending: Interval[] = [];
  /** coordinatorClock = localClock - offsetMs; times are seconds after runStartMs on the coordinator's clock. */
  constructor(
    readonly device: string,
    private offsetMs = 0,
    private runStartMs = nowMs(),
  ) {}

  rebase(offsetMs: number, runStartMs: number): void {
    this.offsetMs = offsetMs;
    this.runStartMs = runStartMs;
    this.pending = [];
  }

  /** Local ms -> seconds on the shared timeline. */
  toSec(localMs: number): number {
    return (localMs - this.offsetMs - this.runStartMs) / 1000;
  }

  add(kind: IntervalKind, startMs: number, endMs: number, extra: Partial<Interval> = {}): Interval {
    const iv: Interval = {
      ...extra,
      device: this.device,
      kind,
      startSec: this.toSec(startMs),
      endSec: this.toSec(endMs),
    };
    this.pending.push(iv);
    return iv;
  }

  push(iv: Interval): void {
    this.pending.push(iv);
  }

  /** Time an async operation as one interval (`extra` may be a function: details known only once it ends). */
  async time<T>(
    kind: IntervalKind,
    fn: () => Promise<T> | T,
    extra: Partial<Interval> | (() => Partial<Interval>) = {},
  ): Promise<T> {
    const t0 = nowMs();
    try {
      return await fn();
    } finally {
      this.add(kind, t0, nowMs(), typeof extra === 'function' ? extra() : extra);
    }
  }

  /** Take the intervals recorded since the last drain. */
  drain(): Interval[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }
}
