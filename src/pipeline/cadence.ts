// When a conversation's next step is due at a stage, and how much slower its steps come while prompt chunks run: the
// gap between its decode steps (its time per token), learnt as they arrive. A stage holds a prompt chunk back
// briefly while a decoding conversation's next step is due, so the chunk rides in the same pass instead of making
// that step wait behind a pass of its own; the slowdown steers how much of the stage prompt chunks may take.

/** Longest a prompt chunk is held back for a step that is due, ms (a conversation that went quiet stops counting). */
export const MAX_HOLD_MS = 250;
/** A step is due until this many of its usual gaps have passed since the last one (past that it went quiet). */
const DUE_GAPS = 4;
/** Weight of the newest gap in the running estimate. */
const GAP_WEIGHT = 0.3;

export class StepCadence {
  private readonly last = new Map<string, number>();
  private readonly gapMs = new Map<string, number>();
  /** The gap while no prompt chunk ran here (the conversation's own pace, whatever else shares the machine). */
  private readonly quietGapMs = new Map<string, number>();

  constructor(private readonly clock: () => number) {}

  /**
   * A decode step of `conv` arrived now; `quiet`: no prompt chunk ran here since its previous step. Returns its
   * recent gap over its quiet gap after a gap that was not quiet (null when either is unknown).
   */
  seen(conv: string, quiet = true): number | null {
    const t = this.clock(),
      prev = this.last.get(conv);
    this.last.set(conv, t);
    if (prev === undefined) return null;
    const ewma = (m: Map<string, number>) => {
      const g = m.get(conv);
      m.set(conv, g === undefined ? t - prev : g + GAP_WEIGHT * (t - prev - g));
    };
    ewma(this.gapMs);
    if (quiet) ewma(this.quietGapMs);
    const q = this.quietGapMs.get(conv);
    return quiet || q === undefined || q <= 0 ? null : this.gapMs.get(conv)! / q;
  }

  /** When `conv`'s last step arrived (-Infinity: none yet). */
  lastSeen(conv: string): number {
    return this.last.get(conv) ?? -Infinity;
  }

  forget(conv: string): void {
    this.last.delete(conv);
    this.gapMs.delete(conv);
    this.quietGapMs.delete(conv);
  }

  /** How long from now `conv`'s next step is still due, ms (0: not expected, or overdue past the hold). */
  dueWithinMs(conv: string): number {
    const last = this.last.get(conv),
      gap = this.gapMs.get(conv);
    if (last === undefined || gap === undefined) return 0;
    const now = this.clock();
    return Math.max(0, Math.min(last + DUE_GAPS * gap, last + MAX_HOLD_MS) - now);
  }
}
