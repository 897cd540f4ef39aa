// Per-side latency prediction (PAPERS.md section 2): T = fixed (transfer, per-hop latency) + prefill of the
// context that side has not cached + expected output tokens x time per output token. Each term is scaled by
// an online correction: an EWMA of measured / predicted, fed after every turn that side ran.
import { ShoalError } from '../errors.ts';
import type { DeviceProfile, LinkStats } from '../profile/types.ts';
import type { ModelSpec } from '../model/config.ts';
import { activationBytesPerToken, flopsPerToken } from './cost.ts';

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

interface SideState { params: SideParams; firstRatio: number; decodeRatio: number; outTokens: number; seen: number }

export class LatencyPredictor {
  private readonly state = new Map<Side, SideState>();
  private readonly beta: number;

  constructor(params: Record<Side, SideParams>, opts: PredictorOptions = {}) {
    this.beta = opts.ewmaWeight ?? 0.3;
    if (!(this.beta > 0 && this.beta <= 1)) throw new ShoalError('ERR_BAD_ARGS', `ewmaWeight must be in (0, 1], got ${this.beta}`);
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

  params(side: Side): SideParams { return { ...this.st(side).params }; }
  corrections(side: Side): { firstRatio: number; decodeRatio: number; outTokens: number; seen: number } {
    const s = this.st(side);
    return { firstRatio: s.firstRatio, decodeRatio: s.decodeRatio, outTokens: s.outTokens, seen: s.seen };
  }

  /**
   * Predict one side. `historyTokens` is where this turn's new query starts (the conversation before it):
   * any of it the side has not cached is the switch cost of moving the conversation there.
   */
  predict(side: Side, q: { contextTokens: number; cachedTokens: number; historyTokens: number; outTokens?: number }): Prediction {
    const s = this.st(side);
    const { contextTokens, historyTokens } = q;
    if (!(contextTokens >= 1 && historyTokens >= 0 && historyTokens < contextTokens)) throw new ShoalError('ERR_BAD_ARGS', `bad turn shape: ${historyTokens} history tokens of ${contextTokens}`);
    // At least one position runs to produce a token, even when everything is cached.
    const cachedTokens = Math.min(Math.max(0, q.cachedTokens), contextTokens - 1);
    const prefillTokens = contextTokens - cachedTokens;
    const outTokens = q.outTokens ?? Math.max(1, Math.round(s.outTokens));
    const fixedSec = s.params.fixedSec * s.firstRatio;
    const perPrefill = s.params.prefillSecPerToken * s.firstRatio;
    const prefillSec = prefillTokens * perPrefill;
    const switchSec = Math.max(0, historyTokens - cachedTokens) * perPrefill;
    const decodeSec = Math.max(0, outTokens - 1) * s.params.decodeSecPerToken * s.decodeRatio;
    return { side, contextTokens, cachedTokens, prefillTokens, switchSec, fixedSec, prefillSec, decodeSec, outTokens, totalSec: fixedSec + prefillSec + decodeSec };
  }

  /** Fold a measured turn into that side's corrections (one ratio for time-to-first-token, one for decode). */
  observe(side: Side, predicted: Prediction, measured: Measured): void {
    const s = this.st(side);
    const b = this.beta;
    const ewma = (old: number, ratio: number): number => (Number.isFinite(ratio) ? (1 - b) * old + b * clamp(ratio) : old);
    // Ratios are measured against the uncorrected terms so that the EWMA converges to the true factor.
    const rawFirst = s.params.fixedSec + predicted.prefillTokens * s.params.prefillSecPerToken;
    if (rawFirst > 0 && measured.ttftSec > 0) s.firstRatio = ewma(s.firstRatio, measured.ttftSec / rawFirst);
    const decoded = measured.outTokens - 1;
    const rawDecode = decoded * s.params.decodeSecPerToken;
    if (decoded > 0 && rawDecode > 0 && measured.decodeSec > 0) s.decodeRatio = ewma(s.decodeRatio, measured.decodeSec / rawDecode);
    if (measured.outTokens > 0) s.outTokens = s.seen === 0 ? measured.outTokens : (1 - b) * s.outTokens + b * measured.outTokens;
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
  if (!p || !ok(p.fixedSec) || !ok(p.prefillSecPerToken) || !ok(p.decodeSecPerToken)) {
    throw new ShoalError('ERR_BAD_ARGS', `${side} side: fixedSec, prefillSecPerToken and decodeSecPerToken must be finite numbers >= 0`);
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
  return {
    fixedSec: PER_FORWARD_SEC,
    prefillSecPerToken: flops / ((profile?.matmulGflops || DEFAULT_GFLOPS) * 1e9),
    decodeSecPerToken: PER_FORWARD_SEC + flops / ((profile?.gemvGflops || DEFAULT_GFLOPS) * 1e9),
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
  let prefill = 0, decode = 0, hopSec = 0, hopBytesSec = 0;
  const hop = (from: string, to: string, link: LinkStats | null): void => {
    if (from === to) return;
    hopSec += ((link?.rttMs ?? DEFAULT_RTT_MS) / 2) / 1000;
    hopBytesSec += actBytes / (link?.bytesPerSec || DEFAULT_LINK_BYTES_PER_SEC);
  };
  for (const [i, s] of stages.entries()) {
    const flops = flopsPerToken(spec, s.start, s.end);
    prefill += flops / ((s.profile?.matmulGflops || DEFAULT_GFLOPS) * 1e9);
    decode += PER_FORWARD_SEC + flops / ((s.profile?.gemvGflops || DEFAULT_GFLOPS) * 1e9);
    const next = i + 1 < stages.length ? stages[i + 1].peer : stages[0].peer; // the token loops back to stage 0
    hop(s.peer, next, s.linkToNext);
  }
  const requestHop = coordinator === stages[0].peer ? 0 : hopSec / stages.length;
  return { fixedSec: requestHop + hopSec + PER_FORWARD_SEC * stages.length, prefillSecPerToken: prefill + hopBytesSec, decodeSecPerToken: decode + hopSec + hopBytesSec };
}
