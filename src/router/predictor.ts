// Per-side latency prediction (PAPERS.md section 2): T = fixed (transfer, per-hop latency) + prefill of the
// context that side has not cached + expected output tokens x time per output token. A token's time grows with
// the context it attends over (attention reads the whole KV cache), so each per-token cost has a per-position
// part: without it a long conversation's turns, and the re-prefill of a switch, were predicted far too cheap.
// Each term is scaled by an online correction: an EWMA of measured / predicted, fed after every turn that side ran.
import { ShoalError } from '../errors.ts';
import type { DeviceProfile, LinkStats } from '../profile/types.ts';
import type { ModelSpec } from '../model/config.ts';
import { activationBytesPerToken, attendFlopsPerPosition, flopsPerToken } from './cost.ts';

export type Side = 'small' | 'large';
export const SIDES: readonly Side[] = ['small', 'large'];

/** The uncorrected cost parameters of one side (seconds). */
export interface SideParams {
  /** Per turn: handing the request over and, on the mesh, the hops before the first token. */
  fixedSec: number;
  /** Per context token that must be prefilled. */
  prefillSecPerToken: number;
  /** Per output token (on the mesh: every stage plus the hops of the token loop). */
  decodeSecPerToken: number;
  /** Extra per prefilled token for each context position before it (attention over the cache); default 0. */
  prefillSecPerPosition?: number;
  /** Extra per decoded token for each context position before it; default 0. */
  decodeSecPerPosition?: number;
}

/** Sum of the positions lo..hi-1 (0 when hi <= lo). */
const positionSum = (lo: number, hi: number): number => (hi > lo ? ((lo + hi - 1) * (hi - lo)) / 2 : 0);

/** Uncorrected seconds of one side's terms for a turn shape. */
export function rawTerms(
  p: SideParams,
  t: { contextTokens: number; cachedTokens: number; historyTokens: number; outTokens: number },
): { fixedSec: number; prefillSec: number; switchSec: number; decodeSec: number } {
  const pp = p.prefillSecPerPosition ?? 0,
    dp = p.decodeSecPerPosition ?? 0;
  const prefill = (lo: number, hi: number): number =>
    Math.max(0, hi - lo) * p.prefillSecPerToken + positionSum(lo, hi) * pp;
  // decoded token i (1..out-1) is fed at position context + i - 1
  const decoded = Math.max(0, t.outTokens - 1);
  return {
    fixedSec: p.fixedSec,
    prefillSec: prefill(t.cachedTokens, t.contextTokens),
    switchSec: prefill(t.cachedTokens, t.historyTokens),
    decodeSec: decoded * p.decodeSecPerToken + positionSum(t.contextTokens, t.contextTokens + decoded) * dp,
  };
}

/** What one side would cost for this turn. */
export interface Prediction {
  side: Side;
  /** Context tokens (the whole conversation so far, this query included). */
  contextTokens: number;
  /** Leading tokens that side already holds in its KV cache. */
  cachedTokens: number;
  /** Tokens it must prefill (contextTokens - cachedTokens). */
  prefillTokens: number;
  /** Part of prefillSec spent re-reading history this side lacks (0 when it holds the whole history). */
  switchSec: number;
  fixedSec: number;
  prefillSec: number;
  decodeSec: number;
  outTokens: number;
  totalSec: number;
}

/** What a turn actually took on one side, for the online correction. */
export interface Measured {
  /** Request to first token, seconds (fixed + prefill terms). */
  ttftSec: number;
  /** First token to last, seconds (decode term over outTokens - 1 tokens). */
  decodeSec: number;
  outTokens: number;
}

export interface PredictorOptions {
  /** EWMA weight of the newest measured/predicted ratio (0..1]. */
  ewmaWeight?: number;
  /** Output tokens assumed before any turn was seen (then an EWMA of observed lengths). */
  expectedOutTokens?: number;
}

const RATIO_MIN = 0.02;
const RATIO_MAX = 50;

interface SideState {
  params: SideParams;
  firstRatio: number;
  decodeRatio: number;
  outTokens: number;
  seen: number;
}

export class LatencyPredictor {
  private readonly state = new Map<Side, SideState>();
  private readonly beta: number;

  constructor(params: Record<Side, SideParams>, opts: PredictorOptions = {}) {
    this.beta = opts.ewmaWeight ?? 0.3;
    if (!(this.beta > 0 && this.beta <= 1))
      throw new ShoalError('ERR_BAD_ARGS', `ewmaWeight must be in (0, 1], got ${this.beta}`);
    const out = opts.expectedOutTokens ?? 16;
    for (const side of SIDES) {
      checkParams(side, params[side]);
      this.state.set(side, { params: { ...params[side] }, firstRatio: 1, decodeRatio: 1, outTokens: out, seen: 0 });
    }
  }

  /** Replace a side's raw parameters (profiles changed, a new plan); the learned corrections stay. */
  setParams(side: Side, params: SideParams): void {
    checkParams(side, params);
    this.st(side).params = { ...params };
  }

  params(side: Side): SideParams {
    return { ...this.st(side).params };
  }
  corrections(side: Side): { firstRatio: number; decodeRatio: number; outTokens: number; seen: number } {
    const s = this.st(side);
    return { firstRatio: s.firstRatio, decodeRatio: s.decodeRatio, outTokens: s.outTokens, seen: s.seen };
  }

  /**
   * Predict one side. `historyTokens` is where this turn's new query starts (the conversation before it):
   * any of it the side has not cached is the switch cost of moving the conversation there.
   */
  predict(
    side: Side,
    q: { contextTokens: number; cachedTokens: number; historyTokens: number; outTokens?: number },
  ): Prediction {
    const s = this.st(side);
    const { contextTokens, historyTokens } = q;
    if (!(contextTokens >= 1 && historyTokens >= 0 && historyTokens < contextTokens))
      throw new ShoalError('ERR_BAD_ARGS', `bad turn shape: ${historyTokens} history tokens of ${contextTokens}`);
    // At least one position runs to produce a token, even when everything is cached.
    const cachedTokens = Math.min(Math.max(0, q.cachedTokens), contextTokens - 1);
    const prefillTokens = contextTokens - cachedTokens;
    const outTokens = q.outTokens ?? Math.max(1, Math.round(s.outTokens));
    const raw = rawTerms(s.params, { contextTokens, cachedTokens, historyTokens, outTokens });
    const fixedSec = raw.fixedSec * s.firstRatio;
    const prefillSec = raw.prefillSec * s.firstRatio;
    const switchSec = raw.switchSec * s.firstRatio;
    const decodeSec = raw.decodeSec * s.decodeRatio;
    return {
      side,
      contextTokens,
      cachedTokens,
      prefillTokens,
      switchSec,
      fixedSec,
      prefillSec,
      decodeSec,
      outTokens,
      totalSec: fixedSec + prefillSec + decodeSec,
    };
  }

  /** Fold a measured turn into that side's corrections (one ratio for time-to-first-token, one for decode). */
  observe(side: Side, predicted: Prediction, measured: Measured): void {
    const s = this.st(side);
    const b = this.beta;
    const ewma = (old: number, ratio: number): number =>
      Number.isFinite(ratio) ? (1 - b) * old + b * clamp(ratio) : old;
    // Ratios are measured against the uncorrected terms so that the EWMA converges to the true factor.
    const raw = rawTerms(s.params, {
      contextTokens: predicted.contextTokens,
      cachedTokens: predicted.cachedTokens,
      historyTokens: 0,
      outTokens: measured.outTokens,
    });
    const rawFirst = raw.fixedSec + raw.prefillSec;
    if (rawFirst > 0 && measured.ttftSec > 0) s.firstRatio = ewma(s.firstRatio, measured.ttftSec / rawFirst);
    const decoded = measured.outTokens - 1;
    const rawDecode = raw.decodeSec;
    if (decoded > 0 && rawDecode > 0 && measured.decodeSec > 0)
      s.decodeRatio = ewma(s.decodeRatio, measured.decodeSec / rawDecode);
    if (measured.outTokens > 0)
      s.outTokens = s.seen === 0 ? measured.outTokens : (1 - b) * s.outTokens + b * measured.outTokens;
    s.seen++;
  }

  private st(side: Side): SideState {
    const s = this.state.get(side);
    if (!s) throw new ShoalError('ERR_BAD_ARGS', `unknown side "${String(side)}" (small or large)`);
    return s;
  }
}

function clamp(r: number): number {
  return Math.min(RATIO_MAX, Math.max(RATIO_MIN, r));
}

function checkParams(side: Side, p: SideParams | undefined): void {
  const ok = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (
    !p ||
    !ok(p.fixedSec) ||
    !ok(p.prefillSecPerToken) ||
    !ok(p.decodeSecPerToken) ||
    !ok(p.prefillSecPerPosition ?? 0) ||
    !ok(p.decodeSecPerPosition ?? 0)
  ) {
    throw new ShoalError(
      'ERR_BAD_ARGS',
      `${side} side: fixedSec, prefillSecPerToken, decodeSecPerToken (and the optional per-position terms) ` +
        'must be finite numbers >= 0',
    );
  }
}

/** Fallbacks when a tab has not published a profile yet (the online correction takes over after one turn). */
const DEFAULT_GFLOPS = 1;
const DEFAULT_RTT_MS = 2;
const DEFAULT_LINK_BYTES_PER_SEC = 50e6;
/** One dispatch-bound overhead per forward on the device (keeps tiny models from predicting 0 s). */
const PER_FORWARD_SEC = 1e-3;

export type ProfileLike = Pick<DeviceProfile, 'matmulGflops' | 'gemvGflops'> | null;

/** The small model held whole by this tab: matmul throughput for prefill, gemv for decode. */
export function localParams(spec: ModelSpec, profile: ProfileLike): SideParams {
  const flops = flopsPerToken(spec);
  // attention is a gemv-shaped read of the cache in prefill too
  const attend = attendFlopsPerPosition(spec) / ((profile?.gemvGflops || DEFAULT_GFLOPS) * 1e9);
  return {
    fixedSec: PER_FORWARD_SEC,
    prefillSecPerToken: flops / ((profile?.matmulGflops || DEFAULT_GFLOPS) * 1e9),
    decodeSecPerToken: PER_FORWARD_SEC + flops / ((profile?.gemvGflops || DEFAULT_GFLOPS) * 1e9),
    prefillSecPerPosition: attend,
    decodeSecPerPosition: attend,
  };
}

export interface MeshStageInfo {
  peer: string;
  start: number;
  end: number;
  profile: ProfileLike;
  /** The sender's measured link to the next stage (to the coordinator for the last stage). */
  linkToNext: LinkStats | null;
}

/**
 * The large model over the mesh: stages run one after another for every token, and each hop between
 * different tabs adds half a round trip plus the activation bytes over the link. The request reaches
 * stage 0 over one hop; every decoded token goes back from the last stage to stage 0 over another.
 */
export function meshParams(spec: ModelSpec, stages: MeshStageInfo[], coordinator: string): SideParams {
  if (stages.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'the mesh side needs at least one stage');
  const actBytes = activationBytesPerToken(spec);
  let prefill = 0,
    decode = 0,
    attend = 0,
    hopSec = 0,
    hopBytesSec = 0;
  const hop = (from: string, to: string, link: LinkStats | null): void => {
    if (from === to) return;
    hopSec += (link?.rttMs ?? DEFAULT_RTT_MS) / 2 / 1000;
    hopBytesSec += actBytes / (link?.bytesPerSec || DEFAULT_LINK_BYTES_PER_SEC);
  };
  for (const [i, s] of stages.entries()) {
    const flops = flopsPerToken(spec, s.start, s.end);
    prefill += flops / ((s.profile?.matmulGflops || DEFAULT_GFLOPS) * 1e9);
    decode += PER_FORWARD_SEC + flops / ((s.profile?.gemvGflops || DEFAULT_GFLOPS) * 1e9);
    attend += attendFlopsPerPosition(spec, s.start, s.end) / ((s.profile?.gemvGflops || DEFAULT_GFLOPS) * 1e9);
    const next = i + 1 < stages.length ? stages[i + 1].peer : stages[0].peer; // the token loops back to stage 0
    hop(s.peer, next, s.linkToNext);
  }
  const requestHop = coordinator === stages[0].peer ? 0 : hopSec / stages.length;
  return {
    fixedSec: requestHop + hopSec + PER_FORWARD_SEC * stages.length,
    prefillSecPerToken: prefill + hopBytesSec,
    decodeSecPerToken: decode + hopSec + hopBytesSec,
    prefillSecPerPosition: attend,
    decodeSecPerPosition: attend,
  };
}
