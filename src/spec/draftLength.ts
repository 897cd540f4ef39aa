// Adaptive draft length: pick gamma to maximise expected tokens per second from the measured acceptance rate,
// draft time per token and the pipeline round trip (a linear fit in the verified positions).

/** Expected tokens per round with per-token acceptance alpha: accepted prefix plus the target's own token. */
export function expectedTokens(alpha: number, gamma: number): number {
  if (alpha >= 1) return gamma + 1;
  return (1 - alpha ** (gamma + 1)) / (1 - alpha);
}

export interface RoundCosts {
  alpha: number;
  draftMsPerToken: number;
  /** Round trip of a verification of `positions` rows. */
  roundTripMs: (positions: number) => number;
}

/**
 * Wall time of one round. Sequential: draft gamma tokens, then wait for the verification. Parallel: while a round
 * is verified the draft proposes the candidate for the target's own token and the next round's gamma tokens
 * (gamma + 1 steps), and sends that round at once while fewer than `inFlight` are out; it is used only when the
 * whole round and that candidate are accepted (alpha^(gamma+1)): then it lands gamma + 1 draft steps after the
 * previous one, or a round trip over the rounds in flight after it, whichever is later; otherwise the drafting
 * starts over and both are paid.
 */
export function roundMs(gamma: number, c: RoundCosts, parallel: boolean, inFlight = 1): number {
  const draft = gamma * c.draftMsPerToken, rtt = c.roundTripMs(gamma + 1);
  if (!parallel) return draft + rtt;
  const pNext = c.alpha ** (gamma + 1);
  return pNext * Math.max(draft + c.draftMsPerToken, rtt / Math.max(1, inFlight)) + (1 - pNext) * (draft + rtt);
}

export function bestGamma(c: RoundCosts, parallel: boolean, gammaMin: number, gammaMax: number, inFlight = 1): number {
  let best = gammaMin, bestRate = -Infinity;
  for (let g = gammaMin; g <= gammaMax; g++) {
    const rate = expectedTokens(c.alpha, g) / roundMs(g, c, parallel, inFlight);
    if (rate > bestRate + 1e-12) { best = g; bestRate = rate; }
  }
  return best;
}

export interface DraftLengthOptions {
  initial?: number;
  gammaMin?: number;
  gammaMax?: number;
  parallel: boolean;
  /** Parallel: most rounds in flight at once (see roundMs). */
  inFlight?: number;
}

/** Keeps running estimates and proposes the next round's gamma. */
export class DraftLengthController {
  gamma: number;
  readonly gammaMin: number;
  readonly gammaMax: number;
  /** Running acceptance: successes and trials, decayed so the estimate follows the text. */
  private hits = 3.5;
  private trials = 5;
  draftMsPerToken = 1;
  /** Recent (positions, round trip ms) samples for the linear fit. */
  private samples: [number, number][] = [];
  private rounds = 0;

  constructor(private readonly opts: DraftLengthOptions) {
    this.gammaMin = opts.gammaMin ?? 1;
    this.gammaMax = opts.gammaMax ?? 16;
    this.gamma = Math.min(this.gammaMax, Math.max(this.gammaMin, opts.initial ?? 4));
  }

  get alpha(): number {
    return this.hits / this.trials;
  }

  /** One verified round: `accepted` of `sent` drafts, `rejected` whether it stopped at a mismatch. */
  observe(r: { sent: number; accepted: number; rejected: boolean; roundTripMs: number; positions: number; draftMsPerToken?: number }): void {
    const decay = 0.9;
    this.hits = this.hits * decay + r.accepted;
    this.trials = this.trials * decay + r.accepted + (r.rejected ? 1 : 0);
    if (r.draftMsPerToken !== undefined && Number.isFinite(r.draftMsPerToken)) this.draftMsPerToken = 0.8 * this.draftMsPerToken + 0.2 * r.draftMsPerToken;
    this.samples.push([r.positions, r.roundTripMs]);
    if (this.samples.length > 24) this.samples.shift();
    this.rounds++;
    const best = bestGamma(this.costs(), this.opts.parallel, this.gammaMin, this.gammaMax, this.opts.inFlight ?? 1);
    // Every 6th round try one step off the optimum so the round-trip fit sees more than one size.
    const explore = this.rounds % 6 === 0 ? (best < this.gammaMax ? 1 : -1) : 0;
    this.gamma = Math.min(this.gammaMax, Math.max(this.gammaMin, best + explore));
  }

  /** Round trip as a + b * positions (least squares; b >= 0, with a small prior before two sizes were seen). */
  roundTripModel(): { baseMs: number; perPositionMs: number } {
    const n = this.samples.length;
    if (n === 0) return { baseMs: 10, perPositionMs: 1 };
    const mx = this.samples.reduce((s, [x]) => s + x, 0) / n;
    const my = this.samples.reduce((s, [, y]) => s + y, 0) / n;
    let sxx = 0, sxy = 0;
    for (const [x, y] of this.samples) { sxx += (x - mx) ** 2; sxy += (x - mx) * (y - my); }
    const b = sxx > 0 ? Math.max(0, sxy / sxx) : (0.1 * my) / mx;
    return { baseMs: Math.max(0, my - b * mx), perPositionMs: b };
  }

  costs(): RoundCosts {
    const m = this.roundTripModel();
    return { alpha: this.alpha, draftMsPerToken: this.draftMsPerToken, roundTripMs: (p) => m.baseMs + m.perPositionMs * p };
  }
}
