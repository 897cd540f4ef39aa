// How many prompt rows a stage adds to a pass of other conversations' decode steps (chunked prefill): adjusted from
// what shared passes actually cost against passes of decode steps alone, so a long prompt slows the others' tokens
// by at most about SHARED_PASS_SLOWDOWN whatever the engine's cost structure (kernels switching with the row count,
// attention over a long context, other tabs on the same GPU).

/** A pass that carries prompt rows beside decode steps may take this many times a pass of decode steps alone. */
export const SHARED_PASS_SLOWDOWN = 1.5;
/** Prompt rows per shared pass to start from. */
const INITIAL_ROWS = 4;
/** Weight of the newest decode-only pass in the running estimate. */
const DECODE_WEIGHT = 0.2;

export class ChunkBudget {
  private rows = INITIAL_ROWS;
  private decodeMs: number | null = null;

  constructor(
    private readonly maxRows: number,
    private readonly slowdown = SHARED_PASS_SLOWDOWN,
  ) {}

  /** Prompt rows the next pass may carry beside decode steps. */
  get promptRows(): number {
    return this.rows;
  }

  /**
   * A pass ran with `decodeSteps` decode steps and `promptRows` prompt rows in `passMs`. Passes of decode steps
   * alone set the reference; a shared pass over the allowed slowdown halves the rows, one within it that used its
   * whole allowance adds a row (additive increase, multiplicative decrease).
   */
  observe(decodeSteps: number, promptRows: number, passMs: number): void {
    if (!(passMs >= 0) || decodeSteps === 0) return; // a prompt-only pass says nothing about sharing
    if (promptRows === 0) {
      this.decodeMs = this.decodeMs === null ? passMs : this.decodeMs + DECODE_WEIGHT * (passMs - this.decodeMs);
      return;
    }
    if (this.decodeMs === null) return;
    if (passMs > this.slowdown * this.decodeMs) this.rows = Math.max(1, Math.floor(this.rows / 2));
    else if (promptRows >= this.rows) this.rows = Math.min(this.maxRows, this.rows + 1);
  }
}
