// The coordinator: the tab where the person types. It assigns layer ranges, starts each turn at stage 0,
// collects tokens, load progress and every tab's timeline, and reuses the cached prefix across turns.
import { ShoalError } from '../errors.ts';
import { Emitter } from '../mesh/emitter.ts';
import type { Interval } from '../planner/timeline.ts';
import type { PipelineMessage, SamplingConfig, StageAssignment, Transport, VerifyFlags } from './messages.ts';
import { nowMs } from './recorder.ts';
import { commonPrefixLength } from '../model/prefix.ts';

export interface GenerateOptions {
  maxTokens: number;
  eos: number[];
  sampling?: SamplingConfig;
  onToken?: (token: number, index: number) => void;
}

export interface GenerateResult {
  tokens: number[];
  stoppedBy: 'eos' | 'maxTokens' | 'stop' | 'context';
  /** From the start of generate() (or of the cold assignment) to the first token. */
  ttftMs: number;
  /** Tokens after the first, per second. */
  decodeTokensPerSec: number;
}

export interface LoadProgress { loadedBytes: number; totalBytes: number; layersLoaded: number; layersTotal: number }

export type CoordinatorEvent =
  | { type: 'progress'; peer: string; progress: LoadProgress }
  | { type: 'timeline'; intervals: Interval[] }
  | { type: 'error'; peer: string; message: string };

interface Pending {
  runId: number;
  /** The turn's full context (the cached history is rebuilt from it when the turn ends). */
  ids: number[];
  opts: GenerateOptions;
  tokens: number[];
  t0: number;
  tFirst?: number;
  resolve: (r: GenerateResult) => void;
  reject: (e: unknown) => void;
}

/** The answer to one verification pass (speculative decoding, issue 8). */
export interface VerifyResult {
  pos0: number;
  /** The target's argmax after each kept position. */
  tokens: number[];
  /** With wantLogits: the kept rows' logits (R, vocab). */
  logits?: Float32Array;
  /** From send to answer. */
  roundTripMs: number;
  /** The compute every stage spent on this pass, summed, ms (absent from a peer that does not report it). */
  computeMs?: number;
}

interface PendingVerify { t0: number; resolve: (r: VerifyResult) => void; reject: (e: unknown) => void }

const GREEDY: SamplingConfig = { temperature: 0, topP: 1, seed: 0 };
const CLOCK_PROBES = 5;
const CLOCK_TIMEOUT_MS = 3000;

export class Coordinator {
  planId = '';
  stages: StageAssignment[] = [];
  modelUrl = '';
  /** Timeline intervals reported by every tab for the current plan (shared clock, seconds from runStartMs). */
  intervals: Interval[] = [];
  readonly progress = new Map<string, LoadProgress>();
  runStartMs = 0;
  /** Tokens every stage holds in its KV cache, in order (the reusable prefix for the next turn). */
  private history: number[] = [];
  private runId = 0;
  private pending: Pending | null = null;
  private clockWaiters = new Map<number, (t1: number) => void>();
  private verifies = new Map<number, PendingVerify>();
  private readonly unsubscribe: () => void;
  private readonly events = new Emitter<{ event: [CoordinatorEvent] }>();

  constructor(private readonly transport: Transport) {
    this.unsubscribe = transport.onMessage((from, msg, payload) => this.onMessage(from, msg, payload));
  }

  on(fn: (e: CoordinatorEvent) => void): () => void {
    return this.events.on('event', fn);
  }

  private emit(e: CoordinatorEvent): void {
    this.events.emit('event', e);
  }

  dispose(): void {
    this.unsubscribe();
    this.pending?.reject(new ShoalError('ERR_PIPELINE', 'coordinator closed'));
    this.failVerifies(new ShoalError('ERR_PIPELINE', 'coordinator closed'));
  }

  /** Estimate peer clock - our clock over the data channel (NTP style, the probe with the smallest round trip wins). */
  async clockOffset(peer: string): Promise<number> {
    if (peer === this.transport.selfId) return 0;
    let best = { rtt: Infinity, offset: 0 };
    for (let i = 0; i < CLOCK_PROBES; i++) {
      const t0 = nowMs() + i * 1e-6; // unique key per probe
      const t1 = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => { this.clockWaiters.delete(t0); reject(new ShoalError('ERR_PEER_GONE', `peer ${peer} did not answer a clock probe`)); }, CLOCK_TIMEOUT_MS);
        this.clockWaiters.set(t0, (v) => { clearTimeout(timer); resolve(v); });
        void this.transport.send(peer, { kind: 'clock', t0 }).catch(reject);
      });
      const t2 = nowMs();
      if (t2 - t0 < best.rtt) best = { rtt: t2 - t0, offset: t1 - (t0 + t2) / 2 };
    }
    return best.offset;
  }

  /**
   * Send every member of the room its range (members outside `stages` drop theirs). Loading starts at once on
   * every tab; the run clock starts now.
   */
  async assign(modelUrl: string, stages: StageAssignment[], members: string[], maxSeq: number): Promise<void> {
    if (stages.length === 0) throw new ShoalError('ERR_PIPELINE', 'the plan has no stages');
    const offsets = await Promise.all(members.map((m) => this.clockOffset(m).catch(() => 0)));
    this.pending?.reject(new ShoalError('ERR_PIPELINE', 'superseded by a new plan'));
    this.failVerifies(new ShoalError('ERR_PIPELINE', 'superseded by a new plan'));
    this.pending = null;
    this.planId = `${this.transport.selfId}:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 8)}`;
    this.stages = stages;
    this.modelUrl = modelUrl;
    this.intervals = [];
    this.progress.clear();
    this.history = [];
    this.runStartMs = nowMs();
    await Promise.all(members.map((m, i) => this.transport.send(m, {
      kind: 'assign', planId: this.planId, modelUrl, stages, maxSeq, clockOffsetMs: offsets[i], runStartMs: this.runStartMs,
    })));
  }

  /** Resolves once every stage of the current plan reports all its tensors loaded. */
  whenLoaded(): Promise<void> {
    const done = () => this.stages.every((s) => {
      const p = this.progress.get(s.peer);
      return p !== undefined && p.layersLoaded >= p.layersTotal;
    });
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.on((e) => {
        if (e.type === 'error') { off(); reject(new ShoalError('ERR_PIPELINE', e.message)); }
        else if (done()) { off(); resolve(); }
      });
    });
  }

  /** Drop weights and caches everywhere (Run from cold). */
  async drop(members: string[]): Promise<void> {
    this.history = [];
    this.planId = '';
    await Promise.all(members.map((m) => this.transport.send(m, { kind: 'drop' }).catch(() => {})));
  }

  /** Generate from the full conversation `ids`; the prefix the stages already hold is not recomputed. */
  generate(ids: number[], opts: GenerateOptions): Promise<GenerateResult> {
    if (!this.planId) return Promise.reject(new ShoalError('ERR_PIPELINE', 'no plan: assign layers first'));
    if (this.pending) return Promise.reject(new ShoalError('ERR_PIPELINE', 'a generation is already running'));
    if (this.verifies.size > 0) return Promise.reject(new ShoalError('ERR_PIPELINE', 'a speculative generation is already running'));
    if (ids.length === 0) return Promise.reject(new ShoalError('ERR_BAD_ARGS', 'empty prompt'));
    let common = commonPrefixLength(this.history, ids);
    if (common === ids.length) common--; // at least one new position must run to produce a token
    const runId = ++this.runId;
    return new Promise<GenerateResult>((resolve, reject) => {
      this.pending = { runId, ids, opts, tokens: [], t0: nowMs(), resolve, reject };
      this.history = ids.slice(0, common);
      const msg: PipelineMessage = {
        kind: 'start', planId: this.planId, runId, pos0: common, ids: ids.slice(common),
        maxTokens: opts.maxTokens, eos: opts.eos, sampling: opts.sampling ?? GREEDY,
      };
      this.transport.send(this.stages[0].peer, msg).catch((e) => this.finishWithError(e));
    });
  }

  /** Tokens every stage holds in its KV cache (a speculative controller reads it to reuse the prefix). */
  get cachedHistory(): readonly number[] {
    return this.history;
  }

  /** A speculative controller says what the stages' caches hold after its rounds (the next turn reuses it). */
  adoptHistory(tokens: number[]): void {
    this.history = tokens.slice();
  }

  /**
   * One verification pass: run `ids` at pos0 through every stage (their caches roll back to pos0 first) and return
   * the target's prediction after each position from keepFrom on. Several may be in flight; each stage runs them in
   * order. The caller must not mix this with generate(). With `branch` the stages compute an alternative
   * continuation from pos0 and then restore what their caches held (a hedge; see VerifyFlags).
   */
  verify(pos0: number, ids: number[], opts: { keepFrom: number; wantLogits: boolean; branch?: boolean }): Promise<VerifyResult> {
    if (!this.planId) return Promise.reject(new ShoalError('ERR_PIPELINE', 'no plan: assign layers first'));
    if (this.pending) return Promise.reject(new ShoalError('ERR_PIPELINE', 'a generation is already running'));
    if (ids.length === 0 || !(opts.keepFrom >= 0 && opts.keepFrom < ids.length)) return Promise.reject(new ShoalError('ERR_BAD_ARGS', 'verify needs ids and a keepFrom inside them'));
    const runId = ++this.runId;
    if (!opts.branch) this.history = this.history.slice(0, Math.min(pos0, this.history.length));
    return new Promise<VerifyResult>((resolve, reject) => {
      this.verifies.set(runId, { t0: nowMs(), resolve, reject });
      const flags: VerifyFlags = { keepFrom: opts.keepFrom, wantLogits: opts.wantLogits };
      if (opts.branch) flags.branch = true;
      const msg: PipelineMessage = { kind: 'verify', planId: this.planId, runId, pos0, ids, verify: flags };
      this.transport.send(this.stages[0].peer, msg).catch((e) => { this.verifies.delete(runId); reject(e); });
    });
  }

  private failVerifies(e: unknown): void {
    for (const v of this.verifies.values()) v.reject(e);
    this.verifies.clear();
  }

  /** Stop button: stage 0 stops after the step in flight. */
  stop(): void {
    const p = this.pending;
    if (!p) return;
    void this.transport.send(this.stages[0].peer, { kind: 'stop', planId: this.planId, runId: p.runId }).catch(() => {});
    this.finish('stop');
  }

  /** A peer of the plan left: fail the turn in flight with a plain message. */
  peerLeft(peer: string): void {
    if (!this.stages.some((s) => s.peer === peer)) return;
    const message = `tab ${peer} left the room while holding layers; the next prompt will re-plan over the remaining tabs`;
    this.planId = '';
    this.emit({ type: 'error', peer, message });
    this.finishWithError(new ShoalError('ERR_PEER_GONE', message));
    this.failVerifies(new ShoalError('ERR_PEER_GONE', message));
  }

  private finish(stoppedBy: GenerateResult['stoppedBy']): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    // Every token but the last was fed back through the pipeline.
    this.history = [...p.ids, ...p.tokens.slice(0, -1)];
    const tEnd = nowMs();
    const ttftMs = (p.tFirst ?? tEnd) - p.t0;
    const decodeTokensPerSec = p.tokens.length > 1 && p.tFirst ? ((p.tokens.length - 1) * 1000) / (tEnd - p.tFirst) : 0;
    p.resolve({ tokens: p.tokens, stoppedBy, ttftMs, decodeTokensPerSec });
  }

  private finishWithError(e: unknown): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    this.history = [];
    p.reject(e);
  }

  /** For cold runs the TTFT clock starts at the assignment, not at the prompt. */
  startClockAtAssignment(): void {
    if (this.pending) this.pending.t0 = this.runStartMs;
  }

  private onMessage(from: string, msg: PipelineMessage, payload?: Float32Array): void {
    switch (msg.kind) {
      case 'clockReply': {
        const w = this.clockWaiters.get(msg.t0);
        if (w) { this.clockWaiters.delete(msg.t0); w(msg.t1); }
        return;
      }
      case 'progress':
        if (msg.planId !== this.planId) return;
        this.progress.set(from, msg);
        this.emit({ type: 'progress', peer: from, progress: msg });
        return;
      case 'timeline':
        if (msg.planId !== this.planId) return;
        this.intervals.push(...msg.intervals);
        this.emit({ type: 'timeline', intervals: msg.intervals });
        return;
      case 'error':
        if (msg.planId !== this.planId) return;
        this.emit({ type: 'error', peer: from, message: msg.message });
        this.finishWithError(new ShoalError('ERR_PIPELINE', msg.message));
        this.failVerifies(new ShoalError('ERR_PIPELINE', msg.message));
        return;
      case 'verified': {
        const v = this.verifies.get(msg.runId);
        if (!v || msg.planId !== this.planId) return;
        this.verifies.delete(msg.runId);
        v.resolve({ pos0: msg.pos0, tokens: msg.tokens, logits: payload, roundTripMs: nowMs() - v.t0, computeMs: msg.computeMs });
        return;
      }
      case 'token': {
        const p = this.pending;
        if (!p || msg.planId !== this.planId || msg.runId !== p.runId || msg.index !== p.tokens.length) return;
        if (p.tFirst === undefined) p.tFirst = nowMs();
        p.tokens.push(msg.token);
        p.opts.onToken?.(msg.token, msg.index);
        if (msg.done) this.finish(p.opts.eos.includes(msg.token) ? 'eos' : msg.index + 1 >= p.opts.maxTokens ? 'maxTokens' : 'context');
        return;
      }
      default:
        return;
    }
  }
}
