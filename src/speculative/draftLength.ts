// Adaptive draft length: pick gamma (and, in parallel mode, how many rounds to keep in flight) to maximise expected
// tokens per second from the measured acceptance rate, draft time per token and the pipeline round trip (a linear
// fit in the verified positions).
import { moments } from '../fit.ts';

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

/** Rounds the parallel cycle model follows one by one; past this the remaining mass is summed in closed form. */
const MAX_MODEL_ROUNDS = 256;
/** Choices within this fraction of the best rate count as equal (then fewer rounds in flight, then smaller gamma). */
const RATE_TIE = 0.01;

/** Sequential: draft gamma tokens, then wait for their verification. */
export function sequentialTokensPerSec(gamma: number, c: RoundCosts): number {
  return (1000 * expectedTokens(c.alpha, gamma)) / (gamma * c.draftMsPerToken + c.roundTripMs(gamma + 1));
}

/**
 * Parallel (streaming) mode as a renewal cycle, from a (re)start to the first rejected token. Round 1 verifies
 * `gamma` drafts; each later round verifies the previous round's candidate (the draft's guess of the target's own
 * token) plus gamma more, so every round holds gamma + 1 positions and round j judges tokens
 * (j-1)(gamma+1)+1 .. j(gamma+1) (round 1's bonus row judges its candidate, sent with round 2). The draft works
 * at most one round ahead of the rounds sent (SpeculativeDecoder drafts up to the next round's needs): round 1 is
 * ready at gamma*d, round j at S_{j-1} + (gamma+1)*d, and it is sent at S_j = max(ready_j, T_{j-F}) with
 * T_j = S_j + R(gamma+1) its return. With iid acceptance alpha the first rejection K has P(K=k) = alpha^(k-1)(1-alpha);
 * the cycle emits K tokens and ends at T_ceil(K/(gamma+1)), plus half a draft step on average when the draft is
 * mid-step then (it finishes the step before restarting; not when it waits on the window). Rate = E[K] / E[T]
 * (renewal-reward). While the draft keeps up, ready_j = (j(gamma+1) - 1)*d; the one-round-ahead limit only shows
 * when the window, not the draft, is the bottleneck. Not modelled: stages queueing rounds behind each other (a
 * round trip that grows with the rounds in flight) and acceptance that is not iid.
 */
export function parallelTokensPerSec(gamma: number, inFlight: number, c: RoundCosts): number {
  const d = Math.max(0, c.draftMsPerToken),
    n = gamma + 1,
    rtt = c.roundTripMs(n),
    F = Math.max(1, Math.floor(inFlight));
  // In steady state (every round accepted) rounds leave every max(draft a round, round trip / window) ms.
  const periodMs = Math.max(n * d, rtt / F);
  const alpha = Math.min(1, Math.max(0, c.alpha));
  const q = alpha ** n; // a round's gamma + 1 tokens all accepted
  if (q >= 1 - 1e-12) return (1000 * n) / periodMs;
  // Rounds the cycle reaches with mass above 1e-12, and F + 1 past them to see what the draft is doing then.
  const rounds = Math.min(MAX_MODEL_ROUNDS, q > 0 ? Math.ceil(Math.log(1e-12) / Math.log(q)) : 1);
  const ready: number[] = [],
    sent: number[] = [],
    back: number[] = []; // 0-based round j: ready_j, S_j, T_j
  for (let j = 0; j < rounds + F + 1; j++) {
    ready.push(j === 0 ? gamma * d : sent[j - 1] + n * d);
    sent.push(Math.max(ready[j], j >= F ? back[j - F] : 0));
    back.push(sent[j] + rtt);
  }
  let expectedMs = 0,
    mass = 1; // mass = q^j: the cycle reaches round j + 1
  let m = 1; // the first round not sent before round j returns (a round waiting on that return is not sent)
  for (let j = 0; j < rounds; j++) {
    while (sent[m] < back[j]) m++;
    // A rejection that lands while the draft is mid-step waits for that step (half of one on average).
    const restartMs = ready[m] > back[j] ? d / 2 : 0;
    expectedMs += mass * (1 - q) * (back[j] + restartMs);
    mass *= q;
  }
  // Rounds past the last one followed: T grows by periodMs per round; sum_{k>=1} q^(k-1)(1-q)(T_J + k P).
  if (mass > 0) expectedMs += mass * (back[rounds - 1] + d / 2 + periodMs / (1 - q));
  const expectedK = 1 / (1 - alpha);
  return (1000 * expectedK) / expectedMs;
}

/** Best sequential draft length. */
export function bestSequential(
  c: RoundCosts,
  gammaMin: number,
  gammaMax: number,
): { gamma: number; tokensPerSec: number } {
  let best = { gamma: gammaMin, tokensPerSec: -Infinity };
  for (let g = gammaMin; g <= gammaMax; g++) {
    const rate = sequentialTokensPerSec(g, c);
    if (rate > best.tokensPerSec + 1e-12) best = { gamma: g, tokensPerSec: rate };
  }
  return best;
}

/**
 * Best parallel (gamma, rounds in flight). Among choices within 1% of the best rate it takes the fewest rounds in
 * flight, then the smallest gamma: rounds past the chain the draft is likely to get right only spend the stages'
 * compute (and the model leaves out that stages queue rounds behind each other).
 */
export function bestParallel(
  c: RoundCosts,
  gammaMin: number,
  gammaMax: number,
  inFlightMax: number,
): { gamma: number; inFlight: number; tokensPerSec: number } {
  const fMax = Math.max(1, Math.floor(inFlightMax));
  const rates: number[][] = [];
  let top = -Infinity;
  for (let f = 1; f <= fMax; f++) {
    const row: number[] = [];
    for (let g = gammaMin; g <= gammaMax; g++) {
      const rate = parallelTokensPerSec(g, f, c);
      row.push(rate);
      if (rate > top) top = rate;
    }
    rates.push(row);
  }
  for (let f = 1; f <= fMax; f++) {
    for (let g = gammaMin; g <= gammaMax; g++) {
      const rate = rates[f - 1][g - gammaMin];
      if (rate >= top * (1 - RATE_TIE)) return { gamma: g, inFlight: f, tokensPerSec: rate };
    }
  }
  return { gamma: gammaMin, inFlight: 1, tokensPerSec: top };
}

export interface DraftLengthOptions {
  initial?: number;
  gammaMin?: number;
  gammaMax?: number;
  parallel: boolean;
  /** Parallel: the most rounds in flight the controller may propose (default 8). */
  maxInFlight?: number;
}

/** Keeps running estimates and proposes the next round's gamma (and, in parallel mode, how many rounds in flight). */
export class DraftLengthController {
  gamma: number;
  readonly gammaMin: number;
  readonly gammaMax: number;
  /** Parallel: proposed rounds in flight (1 in sequential mode). */
  inFlight = 1;
  readonly maxInFlight: number;
  /** Running acceptance: successes and trials, decayed so the estimate follows the text. */
  private hits = 3.5;
  private trials = 5;
  draftMsPerToken = 1;
  /** Recent (positions, round trip ms) samples for the linear fit. */
  private samples: [number, number][] = [];
  /** Recent verification passes, rounds and hedges alike: (rows, the stages' summed compute ms). */
  private passes: [number, number][] = [];
  private rounds = 0;

  constructor(private readonly opts: DraftLengthOptions) {
    this.gammaMin = opts.gammaMin ?? 1;
    this.gammaMax = opts.gammaMax ?? 16;
    this.gamma = Math.min(this.gammaMax, Math.max(this.gammaMin, opts.initial ?? 4));
    this.maxInFlight = opts.parallel ? Math.max(1, Math.floor(opts.maxInFlight ?? 8)) : 1;
    // Before the first round is measured nothing is known of the round trip: two in flight (the old fixed default).
    this.inFlight = Math.min(this.maxInFlight, 2);
  }

  get alpha(): number {
    return this.hits / this.trials;
  }

  /** One verified round: `accepted` of `sent` drafts, `rejected` whether it stopped at a mismatch. */
  observe(r: {
    sent: number;
    accepted: number;
    rejected: boolean;
    roundTripMs: number;
    positions: number;
    draftMsPerToken?: number;
  }): void {
    const decay = 0.9;
    this.hits = this.hits * decay + r.accepted;
    this.trials = this.trials * decay + r.accepted + (r.rejected ? 1 : 0);
    if (r.draftMsPerToken !== undefined && Number.isFinite(r.draftMsPerToken))
      this.draftMsPerToken = 0.8 * this.draftMsPerToken + 0.2 * r.draftMsPerToken;
    this.samples.push([r.positions, r.roundTripMs]);
    if (this.samples.length > 24) this.samples.shift();
    this.rounds++;
    let best: number;
    if (this.opts.parallel) {
      const choice = bestParallel(this.costs(), this.gammaMin, this.gammaMax, this.maxInFlight);
      best = choice.gamma;
      this.inFlight = choice.inFlight;
    } else best = bestSequential(this.costs(), this.gammaMin, this.gammaMax).gamma;
    // Every 6th round try one step off the optimum so the round-trip fit sees more than one size.
    const explore = this.rounds % 6 === 0 ? (best < this.gammaMax ? 1 : -1) : 0;
    this.gamma = Math.min(this.gammaMax, Math.max(this.gammaMin, best + explore));
  }

  /** Round trip as a + b * positions (least squares; b >= 0, with a small prior before two sizes were seen). */
  roundTripModel(): { baseMs: number; perPositionMs: number } {
    if (this.samples.length === 0) return { baseMs: 10, perPositionMs: 1 };
    const { mx, my, sxx, sxy } = moments(this.samples);
    const b = sxx > 0 ? Math.max(0, sxy / sxx) : (0.1 * my) / mx;
    return { baseMs: Math.max(0, my - b * mx), perPositionMs: b };
  }

  /** A verification pass of `rows` came back having cost the stages `computeMs` of compute, summed. */
  observePass(rows: number, computeMs: number): void {
    if (!(rows >= 1 && Number.isFinite(computeMs) && computeMs >= 0)) return;
    this.passes.push([rows, computeMs]);
    if (this.passes.length > 48) this.passes.shift();
  }

  /**
   * What a pass of `rows` costs the stages in compute, summed, ms: a least-squares line in rows over the recent passes
   * (a fixed cost per pass plus a cost per row, neither negative), or null before any pass was reported. Unlike the
   * round trip, which the links dominate and whose noise swamps a row's cost, this is measured by the stages
   * themselves.
   */
  passComputeMs(rows: number): number | null {
    if (this.passes.length === 0) return null;
    const { mx, my, sxx, sxy } = moments(this.passes);
    const b = sxx > 0 ? Math.min(my / mx, Math.max(0, sxy / sxx)) : 0;
    return Math.max(0, my - b * mx) + b * rows;
  }

  costs(): RoundCosts {
    const m = this.roundTripModel();
    return {
      alpha: this.alpha,
      draftMsPerToken: this.draftMsPerToken,
      roundTripMs: (p) => m.baseMs + m.perPositionMs * p,
    };
  }
}
