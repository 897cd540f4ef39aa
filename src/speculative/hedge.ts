// Hedges (speculative.ts): short branches verified beside the main line at drafted positions likely to be rejected.
// The calibrator learns the chance that the target rejects a position in favour of the draft's second (or third)
// choice there, online from the positions the target has judged, as a function of the draft's logit gap from its top
// choice to that one (small gap, likely rejection); a fixed reading of the draft's probabilities fails on drafts whose
// logits are flat: their top-two share is near one half everywhere. The policy decides when a hedge goes, when it is
// too late to send, and when a hit is worth waiting for, on an injected clock.
import type { Clock, Sent } from './clock.ts';

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
    if (this.gaps.length > WINDOW) {
      this.gaps.shift();
      this.won.shift();
    }
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
    this.sorted ??= this.gaps.map((g, i) => ({ gap: g, won: this.won[i] })).sort((a, b) => a.gap - b.gap);
    const sorted = this.sorted;
    // Grow [lo, hi) around the insertion point of `gap`, always taking the nearer side.
    let hi = 0,
      top = n;
    while (hi < top) {
      const mid = (hi + top) >> 1;
      if (sorted[mid].gap < gap) hi = mid + 1;
      else top = mid;
    }
    let lo = hi,
      hits = 0;
    const k = Math.min(NEIGHBOURS, n);
    for (let taken = 0; taken < k; taken++) {
      const takeLow = hi >= n || (lo > 0 && gap - sorted[lo - 1].gap <= sorted[hi].gap - gap);
      if (takeLow) lo--;
      else hi++;
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
    if (!w) {
      w = new ChoiceWindow();
      this.ranks.set(rank, w);
    }
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

  /** P(the target picks the draft's `rank`-th alternative where the gap is `gap`), from `prior` while few are known. */
  altWins(gap: number, prior: number, rank = 1): number {
    return this.ranks.get(rank)?.altWins(gap, prior) ?? prior;
  }
}

/** One of the draft's next choices at a drafted position. */
export interface Alternative {
  token: number;
  gap: number;
  share: number;
}

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

/**
 * Drafts after a hedge's alternative: at most MAX (row i pays only when the first i are right, and every row costs
 * each stage about as much as a main-line row on the CPU engine), and within a share of a round trip of draft time
 * (drafting them holds up the main line). A slow draft fits none: its hedges are the alternative alone, which costs
 * it no drafting and still gives one token (the target's after it) on a hit; hedgePays weighs that.
 */
const MAX_HEDGE_DRAFTS = 4;
const HEDGE_DRAFT_SHARE = 0.05;
/**
 * Hedges in flight by default in a tab that holds no stage. On the 2-core bench machine with a fast draft (acceptance
 * ~0.8, gammas 4 and auto), second- and third-choice hedges with 6 in flight were -2% to +2% against plain parallel at
 * 20 ms and +7% to +25% at 50 ms, where 10 cost up to 12% at 20 ms and 3 hit too few rejections to pay at 50 ms (before
 * the late and wait rules, tooLateToSend and HedgePolicy.worthWaiting, which took the 20 ms cells to -4% to +13% and
 * the 50 ms ones to +16% to +31%).
 */
export const DEFAULT_HEDGES = 6;
/**
 * Alternatives per drafted position a hedge may try: the draft's second and third choices. On the bench pairs at
 * acceptance ~0.8 they held 58% and 25% of the target's tokens at rejected positions (the fourth and later, 17%).
 */
export const HEDGE_CHOICES = 2;

/**
 * The late rule: a hedge comes back about a round trip after it leaves, so one sent `sinceRoundMs` after the round
 * that judges its position comes back that long after it. Past what a hit saves (hitWorth) of a round trip, waiting
 * for it would cost more than its tokens give (the wait rule): too late to send.
 */
export function tooLateToSend(sinceRoundMs: number, roundTripMs: number, rows: number, alpha: number): boolean {
  return !(sinceRoundMs < hitWorth(alpha, rows) * roundTripMs);
}

/** What the policy reads of the turn's measurements (DraftLengthController provides them). */
export interface HedgeCosts {
  readonly alpha: number;
  readonly draftMsPerToken: number;
  /** The round trip as baseMs + perPositionMs x positions. */
  roundTripModel(): { baseMs: number; perPositionMs: number };
  /** The stages' summed compute for a pass of `rows`, or null before any was reported. */
  passComputeMs(rows: number): number | null;
}

/** The main line as the policy sees it: drafts[k] sits at absolute position `pos` + k. */
export interface HedgeLine {
  pos: number;
  drafts: readonly { alts?: readonly Alternative[] }[];
  /** Rounds in flight, oldest first: the first judges drafts[0, gamma]; each later one its gamma + 1 after that. */
  rounds: readonly { gamma: number; sentAtMs: number }[];
  /** Drafts the rounds in flight have sent: drafts[k] for k <= covered follows positions every round holds. */
  covered: number;
  /** Positions both the target's and the draft's caches can hold. */
  maxSeq: number;
  /** The draft length rounds go out at (the round trip a hit saves is one of that size). */
  gamma: number;
}

/** A hedge to send: the alternative `alt` at drafts[k], followed by `drafts` tokens drafted after it. */
export interface HedgePick {
  k: number;
  alt: number;
  drafts: number;
}

/** A hedge in flight: the branch [alt, drafts...] verified from absolute position `pos`. */
export interface Hedge extends Sent {
  pos: number;
  tokens: number[];
}

/** The hedges of one turn: those in flight, the (position, alternative) pairs tried, and the rules for sending. */
export class HedgePolicy {
  private inFlight: Hedge[] = [];
  /** (position, alternative) pairs hedged since the last rejection: each is tried once. */
  private readonly tried = new Set<string>();

  constructor(
    readonly maxHedges: number,
    readonly calibrator: HedgeCalibrator,
    private readonly costs: HedgeCosts,
    private readonly clock: Clock,
  ) {}

  get hedges(): readonly Hedge[] {
    return this.inFlight;
  }

  /**
   * The drafted position and alternative most worth hedging now: the pair most likely reached and then rejected in
   * favour of that alternative, if that chance times what a hit saves of a round trip beats what the hedge's pass
   * costs the stages' compute, and its round is not too far gone (tooLateToSend). Null: send none.
   */
  pick(line: HedgeLine): HedgePick | null {
    if (this.maxHedges === 0 || this.inFlight.length >= this.maxHedges || line.rounds.length === 0) return null;
    const { alpha } = this.costs;
    const fit = this.costs.roundTripModel();
    const rtt = fit.baseMs + fit.perPositionMs * (Math.max(1, line.gamma) + 1);
    const L = this.draftsFor(rtt);
    // What the hedge costs: the stages' compute for a pass of its rows, as they report it; before any report, its
    // rows at the round trip's fitted price per position.
    const costMs = this.costs.passComputeMs(L + 1) ?? (L + 1) * fit.perPositionMs;
    const now = this.clock.nowMs();
    let best: HedgePick | null = null,
      bestValue = 0,
      reach = 1;
    let j = 0,
      judgedTo = line.rounds[0].gamma; // rounds[j] judges drafts up to index judgedTo (its candidate's row)
    for (let k = 0; k <= Math.min(line.covered, line.drafts.length - 1); k++) {
      while (k > judgedTo && j + 1 < line.rounds.length) judgedTo += line.rounds[++j].gamma + 1;
      const fits = line.pos + k + 1 <= line.maxSeq && !tooLateToSend(now - line.rounds[j].sentAtMs, rtt, L + 1, alpha);
      (line.drafts[k].alts ?? []).forEach((a, i) => {
        const value = reach * this.calibrator.altWins(a.gap, a.share, i + 1);
        const fresh = !this.tried.has(`${line.pos + k}:${a.token}`);
        if (fits && fresh && value > bestValue && hedgePays(value, rtt, L + 1, costMs, alpha)) {
          best = { k, alt: a.token, drafts: L };
          bestValue = value;
        }
      });
      reach *= alpha;
    }
    return best;
  }

  /** Drafts a hedge may carry after its alternative, for this round trip (see MAX_HEDGE_DRAFTS). */
  draftsFor(roundTripMs: number): number {
    const perToken = Math.max(0.01, this.costs.draftMsPerToken);
    return Math.min(MAX_HEDGE_DRAFTS, Math.floor((HEDGE_DRAFT_SHARE * roundTripMs) / perToken));
  }

  /** A hedge of `alt` at `pos` is being sent: it is not tried again until the next rejection. */
  claim(pos: number, alt: number): void {
    this.tried.add(`${pos}:${alt}`);
  }

  add(h: Hedge): void {
    this.inFlight.push(h);
  }

  /** The hedge in flight at the rejected position `pos` whose alternative is the target's token there, if any. */
  hitAt(pos: number, token: number): Hedge | undefined {
    return this.inFlight.find((h) => h.pos === pos && h.tokens[0] === token);
  }

  /**
   * The wait rule: a hit's reply is worth waiting for up to what a hit saves of a round trip (hitWorth); past that
   * the next round, sent now, is the better bet (a hedge sent late, just before its round came back).
   */
  worthWaiting(h: Hedge): boolean {
    if (h.settled) return true;
    const fit = this.costs.roundTripModel();
    const rttMs = fit.baseMs + fit.perPositionMs * h.tokens.length;
    return !(h.sentAtMs + rttMs - this.clock.nowMs() > hitWorth(this.costs.alpha, h.tokens.length) * rttMs);
  }

  /** Stop tracking the hedges `keep` rejects; returns them (they still run through the stages). */
  drop(keep: (h: Hedge) => boolean): Hedge[] {
    const dropped = this.inFlight.filter((h) => !keep(h));
    this.inFlight = this.inFlight.filter(keep);
    return dropped;
  }

  /** After a rejection: no hedge in flight is of use, and every position may be hedged again. */
  restart(): Hedge[] {
    this.tried.clear();
    return this.drop(() => false);
  }
}
