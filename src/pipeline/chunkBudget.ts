// How much of a long prompt a stage runs while other conversations decode there (chunked prefill), and when: chunks
// big enough that a pass's fixed cost is paid for many rows, and prompt work held to a share of the stage's time
// that is steered by what the others feel, their time per token, so it stays within a bounded slowdown whatever
// the engine's cost structure and whatever else shares the machine (measured, not modelled).

/** The decoding conversations' time per token may grow by this factor while prompt chunks run. */
export const DECODE_SLOWDOWN = 1.3;
/** Bounds of the share of a stage's time prompt chunks may take while others decode, and where it starts. */
export const MIN_SHARE = 0.03;
export const MAX_SHARE = 0.5;
const INITIAL_SHARE = 0.1;
/** Share added per decode step that came within the allowed slowdown (halved on one that did not). */
const SHARE_STEP = 0.003;
/** A chunk aims at this many decode-only passes of extra time (its fixed cost then stays a small part of it). */
export const CHUNK_PASSES = 2;
/** Prompt rows per chunk to start from. */
const INITIAL_ROWS = 8;
/** Weight of the newest decode-only pass in the running estimate. */
const DECODE_WEIGHT = 0.2;

export class ChunkBudget {
  private rows = INITIAL_ROWS;
  private decodeMs: number | null = null;
  private shareNow = INITIAL_SHARE;
  /** Clock time from which the next chunk may run, and when the last one ended. */
  private nextAt = -Infinity;
  private lastChunk = -Infinity;

  constructor(
    private readonly maxRows: number,
    private readonly clock: () => number,
  ) {}

  /** Prompt rows the next chunk may carry. */
  get promptRows(): number {
    return this.rows;
  }

  /** The share of the stage's time prompt chunks may take now. */
  get share(): number {
    return this.shareNow;
  }

  /** When the last chunk ended (clock time; -Infinity: none yet). */
  get lastChunkAt(): number {
    return this.lastChunk;
  }

  /** How long from now until the next chunk may run, ms (0: now). */
  waitMs(): number {
    return Math.max(0, this.nextAt - this.clock());
  }

  /**
   * A decoding conversation's time per token over its time without prompt chunks here (StepCadence): within
   * DECODE_SLOWDOWN the share grows a step, over it the share halves (additive increase, multiplicative decrease).
   */
  decodeSlowdown(ratio: number): void {
    if (!(ratio > 0)) return;
    const s = this.shareNow;
    this.shareNow = ratio > DECODE_SLOWDOWN ? Math.max(MIN_SHARE, s / 2) : Math.min(MAX_SHARE, s + SHARE_STEP);
  }

  /**
   * A pass ran with `decodeSteps` decode steps and `promptRows` prompt rows in `passMs`, while other conversations
   * were in flight. Passes of decode steps alone set the reference; a chunk's extra time over it spaces the next
   * chunk (the time share) and rescales the rows toward CHUNK_PASSES decode passes of extra time (at most 2x a
   * step). Small passes cost far more per row than large ones on real engines (a pass's fixed cost), so the rows
   * follow the decode pass's cost rather than shrinking to one.
   */
  observe(decodeSteps: number, promptRows: number, passMs: number): void {
    if (!(passMs >= 0)) return;
    if (promptRows === 0) {
      if (decodeSteps === 0) return;
      this.decodeMs = this.decodeMs === null ? passMs : this.decodeMs + DECODE_WEIGHT * (passMs - this.decodeMs);
      return;
    }
    const extraMs = Math.max(0, passMs - (decodeSteps > 0 ? (this.decodeMs ?? 0) : 0));
    this.lastChunk = this.clock();
    this.nextAt = this.lastChunk + extraMs * (1 / this.shareNow - 1);
    if (this.decodeMs === null || promptRows < this.rows) return; // a prompt's short tail says little about size
    const want = (promptRows * CHUNK_PASSES * this.decodeMs) / Math.max(extraMs, 1e-3);
    const clamped = Math.min(2 * promptRows, Math.max(promptRows / 2, want));
    this.rows = Math.max(1, Math.min(this.maxRows, Math.round(clamped)));
  }
}
