// Which drafted positions are worth a hedge (speculative.ts): the chance that the target rejects a position in favour
// of the draft's second (or third) choice there, learnt online from the positions the target has judged, as a
// function of the draft's logit gap from its top choice to that one (small gap, likely rejection). A fixed reading of
// the draft's probabilities fails on drafts whose logits are flat: their top-two share is near one half everywhere.

/** Judged positions remembered, and how many of the nearest (by gap) an estimate looks at. */
const WINDOW = 256;
const NEIGHBOURS = 24;
/** Weight of the prior (the draft's own top-two share) in pseudo-positions. */
const PRIOR_WEIGHT = 4;

/** One choice's judged positions (gap, whether that choice was the target's token) and the estimate from them. */
class ChoiceWindow {
  private gaps: number[] = [];
  private won: boolean[] = [];
  /** The window sorted by gap, rebuilt on the first estimate after an observation (estimates run per draft step). */
  private sorted: { gap: number; won: boolean }[] | null = null;

  /** A position the target judged: the draft's logit gap there, and whether this choice was its token. */
  observe(gap: number, altWon: boolean): void {
    if (!Number.isFinite(gap)) return;
    this.gaps.push(gap);
    this.won.push(altWon);
    if (this.gaps.length > WINDOW) { this.gaps.shift(); this.won.shift(); }
    this.sorted = null;
  }

  get samples(): number {
    return this.gaps.length;
  }

  /**
   * P(the target picks this choice at a position with this gap): the share among the judged positions with the
   * nearest gaps, pulled towards `prior` (the draft's own share for it) while few are known.
   */
  altWins(gap: number, prior: number): number {
    const n = this.gaps.length;
    if (n === 0) return prior;
    const sorted = (this.sorted ??= this.gaps.map((g, i) => ({ gap: g, won: this.won[i] })).sort((a, b) => a.gap - b.gap));
    // Grow [lo, hi) around the insertion point of `gap`, always taking the nearer side.
    let hi = 0, top = n;
    while (hi < top) { const mid = (hi + top) >> 1; if (sorted[mid].gap < gap) hi = mid + 1; else top = mid; }
    let lo = hi, hits = 0;
    const k = Math.min(NEIGHBOURS, n);
    for (let taken = 0; taken < k; taken++) {
      const takeLow = hi >= n || (lo > 0 && gap - sorted[lo - 1].gap <= sorted[hi].gap - gap);
      if (takeLow) lo--; else hi++;
      if (sorted[takeLow ? lo : hi - 1].won) hits++;
    }
    return (hits + PRIOR_WEIGHT * prior) / (k + PRIOR_WEIGHT);
  }
}

/**
 * What the target picks at rejected positions, per choice of the draft: rank 1 is its second choice, rank 2 its
 * third. On the bench pairs at acceptance ~0.8, the second choice held 58% of the target's tokens at rejections and
 * the third another 25%, so a third-choice hedge is worth sending where the gap to it is small.
 */
export class HedgeCalibrator {
  private ranks = new Map<number, ChoiceWindow>();

  private window(rank: number): ChoiceWindow {
    let w = this.ranks.get(rank);
    if (!w) { w = new ChoiceWindow(); this.ranks.set(rank, w); }
    return w;
  }

  /** A judged position: the gap from the draft's top logit to its `rank`-th alternative, and whether that won. */
  observe(gap: number, altWon: boolean, rank = 1): void {
    this.window(rank).observe(gap, altWon);
  }

  /** Judged positions remembered for this rank. */
  samples(rank = 1): number {
    return this.ranks.get(rank)?.samples ?? 0;
  }

  /** P(the target picks the draft's `rank`-th alternative at a position with this gap), from `prior` while few are known. */
  altWins(gap: number, prior: number, rank = 1): number {
    return this.ranks.get(rank)?.altWins(gap, prior) ?? prior;
  }
}

/** One of the draft's next choices at a drafted position. */
export interface Alternative { token: number; gap: number; share: number }

/**
 * The draft's `n` best tokens after `best` (the greedy choice), each with its logit gap from `best` and its share of
 * the softmax over the top n + 1 (one pass over the vocabulary, keeping a sorted top list).
 */
export function alternatives(logits: Float32Array, best: number, n: number): Alternative[] {
  const top: number[] = []; // token ids, best first
  for (let i = 0; i < logits.length; i++) {
    if (i === best || (top.length === n && logits[i] <= logits[top[n - 1]])) continue;
    let j = Math.min(top.length, n - 1);
    while (j > 0 && logits[top[j - 1]] < logits[i]) j--;
    top.splice(j, 0, i);
    if (top.length > n) top.pop();
  }
  const z = 1 + top.reduce((s, t) => s + Math.exp(logits[t] - logits[best]), 0);
  return top.map((t) => ({ token: t, gap: logits[best] - logits[t], share: Math.exp(logits[t] - logits[best]) / z }));
}

/**
 * Share of a round trip a hedge hit saves. It emits the hedge's verified tokens at once: with `rows` tokens sent
 * (the alternative and the drafts after it), 1 + alpha + ... + alpha^(rows-1) of them on average, each worth
 * (1 - alpha) of a round trip (a round trip yields 1 / (1 - alpha) tokens): 1 - alpha^rows of one. It also bounds
 * how long a hit is worth waiting for, and how late after its round a hedge is worth sending.
 */
export function hitWorth(alpha: number, rows: number): number {
  return 1 - Math.min(1, Math.max(0, alpha)) ** rows;
}

/**
 * Whether a hedge of `rows` pays: its chance of a hit times what a hit saves beats `costMs`, what computing it costs
 * the stages (measured: the stages report each pass's compute; see DraftLengthController.passComputeMs).
 */
export function hedgePays(pHit: number, roundTripMs: number, rows: number, costMs: number, alpha: number): boolean {
  return pHit * hitWorth(alpha, rows) * roundTripMs > costMs;
}
