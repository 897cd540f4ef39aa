// Pipeline messages between tabs (carried as mesh `app` messages on channel "pipeline"), and their validator.
// Activations travel as a binary payload beside the JSON body.
import type { Interval } from '../planner/timeline.ts';

export const PIPELINE_CHANNEL = 'pipeline';

export interface StageAssignment { peer: string; start: number; end: number } // layers [start, end), 0-based

export interface SamplingConfig { temperature: number; topP: number; seed: number }

/**
 * A verification pass: return rows from keepFrom on (earlier rows are prompt positions), with logits when sampling.
 * `branch`: an alternative continuation from pos0 (a hedge): every stage computes it and then restores the cache
 * rows it overwrote and its position, so the main line's rounds sent before and after it stay valid.
 */
export interface VerifyFlags { keepFrom: number; wantLogits: boolean; branch?: boolean }

export type PipelineMessage =
  /** Coordinator -> every tab of the room: the plan. Tabs not in `stages` drop any stage they hold. */
  | { kind: 'assign'; planId: string; modelUrl: string; stages: StageAssignment[]; maxSeq: number; clockOffsetMs: number; runStartMs: number }
  /** Coordinator -> stage 0: start a sequence step at position pos0 (earlier positions stay cached). */
  | { kind: 'start'; planId: string; runId: number; pos0: number; ids: number[]; maxTokens: number; eos: number[]; sampling: SamplingConfig }
  /**
   * Stage k -> stage k+1: hidden state for positions pos0.. (payload: f32 (T, dim)). `verify` marks a verification
   * pass; then computeMs is the compute the stages so far spent on it.
   */
  | { kind: 'act'; planId: string; runId: number; pos0: number; rows: number; index: number; maxTokens: number; eos: number[]; sampling: SamplingConfig; sentAtSec: number; verify?: VerifyFlags; computeMs?: number }
  /**
   * Coordinator -> stage 0 (speculative decoding, issue 8): run ids at pos0 in one pass and answer with the target's
   * prediction at every position from row keepFrom on; nothing is fed back (the speculative controller drives rounds).
   */
  | { kind: 'verify'; planId: string; runId: number; pos0: number; ids: number[]; verify: VerifyFlags }
  /**
   * Last stage -> coordinator: argmax of each kept row; with wantLogits the payload holds those rows' logits (R, vocab).
   * computeMs: the compute every stage spent on the pass, summed (what a pass of this size costs the pipeline).
   */
  | { kind: 'verified'; planId: string; runId: number; pos0: number; tokens: number[]; computeMs?: number }
  /** Last stage -> coordinator and stage 0: the sampled token at position `pos` (the index of the token it follows). */
  | { kind: 'token'; planId: string; runId: number; index: number; pos: number; token: number; done: boolean }
  /** Coordinator -> stage 0: stop generating. */
  | { kind: 'stop'; planId: string; runId: number }
  /** Coordinator -> all: drop weights and caches (Run from cold). */
  | { kind: 'drop' }
  /** Any stage -> coordinator: load progress. */
  | { kind: 'progress'; planId: string; loadedBytes: number; totalBytes: number; layersLoaded: number; layersTotal: number }
  /** Any stage -> coordinator: recorded intervals (times on the coordinator's clock, seconds from runStartMs). */
  | { kind: 'timeline'; planId: string; intervals: Interval[] }
  /** Any tab -> coordinator: something failed on this tab. */
  | { kind: 'error'; planId: string; message: string }
  /** Clock sync: t0 = sender's clock; reply carries the receiver's clock t1. */
  | { kind: 'clock'; t0: number }
  | { kind: 'clockReply'; t0: number; t1: number };

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
/** A duration a peer reports, ms: finite, not negative, under an hour. */
const ms = (x: unknown): x is number => num(x) && x >= 0 && x < 3_600_000;
const uint = (x: unknown): x is number => num(x) && Number.isInteger(x) && x >= 0;
const str = (x: unknown, max = 256): x is string => typeof x === 'string' && x.length <= max;
const uintArr = (x: unknown, max: number): x is number[] => Array.isArray(x) && x.length <= max && x.every(uint);

const INTERVAL_KINDS = new Set(['load', 'upload', 'compute', 'send', 'recv', 'idle']);
const MAX_IDS = 1 << 16;
const MAX_INTERVALS = 4096;

function parseInterval(x: unknown): Interval | null {
  if (!isObj(x) || !str(x.device, 64) || !INTERVAL_KINDS.has(x.kind as string) || !num(x.startSec) || !num(x.endSec)) return null;
  const iv: Interval = { device: x.device, kind: x.kind as Interval['kind'], startSec: x.startSec, endSec: x.endSec };
  if (uint(x.layer)) iv.layer = x.layer;
  if (uint(x.tokenIndex)) iv.tokenIndex = x.tokenIndex;
  if (uint(x.bytes)) iv.bytes = x.bytes;
  if (str(x.label, 128)) iv.label = x.label;
  return iv;
}

function parseVerify(v: unknown): VerifyFlags | null {
  if (!isObj(v) || !uint(v.keepFrom) || typeof v.wantLogits !== 'boolean' || (v.branch !== undefined && typeof v.branch !== 'boolean')) return null;
  const flags: VerifyFlags = { keepFrom: v.keepFrom, wantLogits: v.wantLogits };
  if (v.branch) flags.branch = true;
  return flags;
}

function parseSampling(s: unknown): SamplingConfig | null {
  if (!isObj(s) || !num(s.temperature) || !num(s.topP) || !uint(s.seed)) return null;
  return { temperature: s.temperature, topP: s.topP, seed: s.seed };
}

/** Validate a pipeline body from a peer. Returns an error string instead of throwing. */
export function parsePipelineMessage(x: unknown): PipelineMessage | string {
  if (!isObj(x)) return 'pipeline message is not an object';
  const planOk = str(x.planId, 64);
  switch (x.kind) {
    case 'assign': {
      if (!planOk || !str(x.modelUrl, 2048) || !uint(x.maxSeq) || !num(x.clockOffsetMs) || !num(x.runStartMs)) return 'assign: bad fields';
      if (!Array.isArray(x.stages) || x.stages.length > 256) return 'assign: stages must be a list';
      const stages: StageAssignment[] = [];
      for (const s of x.stages) {
        if (!isObj(s) || !str(s.peer, 64) || !uint(s.start) || !uint(s.end) || s.end <= s.start) return 'assign: bad stage';
        stages.push({ peer: s.peer, start: s.start, end: s.end });
      }
      return { kind: 'assign', planId: x.planId as string, modelUrl: x.modelUrl, stages, maxSeq: x.maxSeq, clockOffsetMs: x.clockOffsetMs, runStartMs: x.runStartMs };
    }
    case 'start': {
      const sampling = parseSampling(x.sampling);
      if (!planOk || !uint(x.runId) || !uint(x.pos0) || !uintArr(x.ids, MAX_IDS) || x.ids.length === 0 || !uint(x.maxTokens) || !uintArr(x.eos, 64)) return 'start: bad fields';
      if (!sampling) return 'start: bad sampling';
      return { kind: 'start', planId: x.planId as string, runId: x.runId, pos0: x.pos0, ids: x.ids, maxTokens: x.maxTokens, eos: x.eos, sampling };
    }
    case 'act': {
      const sampling = parseSampling(x.sampling);
      if (!planOk || !uint(x.runId) || !uint(x.pos0) || !uint(x.rows) || x.rows === 0 || !uint(x.index) || !uint(x.maxTokens) || !uintArr(x.eos, 64) || !num(x.sentAtSec)) return 'act: bad fields';
      if (!sampling) return 'act: bad sampling';
      const act: Extract<PipelineMessage, { kind: 'act' }> = { kind: 'act', planId: x.planId as string, runId: x.runId, pos0: x.pos0, rows: x.rows, index: x.index, maxTokens: x.maxTokens, eos: x.eos, sampling, sentAtSec: x.sentAtSec };
      if (x.verify !== undefined) {
        const verify = parseVerify(x.verify);
        if (!verify) return 'act: bad verify flags';
        act.verify = verify;
      }
      if (x.computeMs !== undefined) {
        if (!ms(x.computeMs)) return 'act: bad computeMs';
        act.computeMs = x.computeMs;
      }
      return act;
    }
    case 'verify': {
      const verify = parseVerify(x.verify);
      if (!planOk || !uint(x.runId) || !uint(x.pos0) || !uintArr(x.ids, MAX_IDS) || x.ids.length === 0 || !verify || verify.keepFrom >= x.ids.length) return 'verify: bad fields';
      return { kind: 'verify', planId: x.planId as string, runId: x.runId, pos0: x.pos0, ids: x.ids, verify };
    }
    case 'verified': {
      if (!planOk || !uint(x.runId) || !uint(x.pos0) || !uintArr(x.tokens, MAX_IDS)) return 'verified: bad fields';
      if (x.computeMs !== undefined && !ms(x.computeMs)) return 'verified: bad computeMs';
      const v: Extract<PipelineMessage, { kind: 'verified' }> = { kind: 'verified', planId: x.planId as string, runId: x.runId, pos0: x.pos0, tokens: x.tokens };
      if (x.computeMs !== undefined) v.computeMs = x.computeMs;
      return v;
    }
    case 'token':
      if (!planOk || !uint(x.runId) || !uint(x.index) || !uint(x.pos) || !uint(x.token) || typeof x.done !== 'boolean') return 'token: bad fields';
      return { kind: 'token', planId: x.planId as string, runId: x.runId, index: x.index, pos: x.pos, token: x.token, done: x.done };
    case 'stop':
      if (!planOk || !uint(x.runId)) return 'stop: bad fields';
      return { kind: 'stop', planId: x.planId as string, runId: x.runId };
    case 'drop':
      return { kind: 'drop' };
    case 'progress':
      if (!planOk || !uint(x.loadedBytes) || !uint(x.totalBytes) || !uint(x.layersLoaded) || !uint(x.layersTotal)) return 'progress: bad fields';
      return { kind: 'progress', planId: x.planId as string, loadedBytes: x.loadedBytes, totalBytes: x.totalBytes, layersLoaded: x.layersLoaded, layersTotal: x.layersTotal };
    case 'timeline': {
      if (!planOk || !Array.isArray(x.intervals) || x.intervals.length > MAX_INTERVALS) return 'timeline: bad fields';
      const intervals: Interval[] = [];
      for (const i of x.intervals) {
        const iv = parseInterval(i);
        if (!iv) return 'timeline: bad interval';
        intervals.push(iv);
      }
      return { kind: 'timeline', planId: x.planId as string, intervals };
    }
    case 'error':
      if (!planOk || !str(x.message, 2000)) return 'error: bad fields';
      return { kind: 'error', planId: x.planId as string, message: x.message };
    case 'clock':
      return num(x.t0) ? { kind: 'clock', t0: x.t0 } : 'clock: bad t0';
    case 'clockReply':
      return num(x.t0) && num(x.t1) ? { kind: 'clockReply', t0: x.t0, t1: x.t1 } : 'clockReply: bad fields';
    default:
      return `unknown pipeline message kind ${JSON.stringify(String(x.kind).slice(0, 32))}`;
  }
}

/** How a tab talks to the others: the mesh in the page, an in-memory bus in unit tests. */
export interface Transport {
  readonly selfId: string;
  /** Deliver to `to` (which may be this tab itself). Resolves when handed to the link (backpressure). */
  send(to: string, msg: PipelineMessage, payload?: Float32Array): Promise<void>;
  onMessage(handler: (from: string, msg: PipelineMessage, payload: Float32Array | undefined) => void): () => void;
}
