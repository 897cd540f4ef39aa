// Which drafted positions are worth a hedge (speculative.ts): the chance that the target rejects a position in favour
// of the draft's second choice there, learnt online from the positions the target has judged, as a function of the
// draft's top-two logit gap (small gap, likely rejection). A fixed reading of the draft's probabilities fails on
// drafts whose logits are flat: their top-two share is near one half everywhere.

/** Judged positions remembered, and how many of the nearest (by gap) an estimate looks at. */
const WINDOW = 256;
const NEIGHBOURS = 24;
/** Weight of the prior (the draft's own top-two share) in pseudo-positions. */
const PRIOR_WEIGHT = 4;

export class HedgeCalibrator {
  private gaps: number[] = [];
  private won: boolean[] = [];
  /** The window sorted by gap, rebuilt on the first estimate after an observation (estimates run per draft step). */
  private sorted: { gap: number; won: boolean }[] | null = null;

  /** A position the target judged: the draft's top-two logit gap there, and whether the second choice was its token. */
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
   * P(the target picks the second choice at a position with this gap): the share among the judged positions with
   * the nearest gaps, pulled towards `prior` (the draft's own top-two share) while few are known.
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
 * Whether a hedge pays: a hit saves about a round trip; the hedge's rows cost every stage about what a round's rows
 * cost, priced at the fitted round trip's slope per position.
 */
export function hedgePays(pHit: number, roundTripMs: number, rows: number, perPositionMs: number): boolean {
  return pHit * roundTripMs > rows * perPositionMs;
}
