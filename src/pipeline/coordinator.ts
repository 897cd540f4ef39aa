// The coordinator: one per tab, for the conversations typed (or asked through the API) in that tab. It plans or
// adopts the room's plan (the newest wins everywhere), starts each turn at stage 0, collects its tokens, load
// progress and every tab's timeline, reuses each conversation's cached prefix across turns, and restarts a turn
// from its tokens when the plan changes under it, a stage lost its cache, or a stage's tab left (recovery: the turn
// waits for the room's next plan and goes on from its next token).
import { ShoalError } from '../errors.ts';
import { Emitter } from '../mesh/emitter.ts';
import type { Interval } from '../planner/timeline.ts';
import { DEFAULT_MAX_CONVERSATIONS, planIsNewer } from './messages.ts';
import type { PipelineMessage, SamplingConfig, StageAssignment, Transport, VerifyFlags } from './messages.ts';
import { nowMs } from './recorder.ts';
import { commonPrefixLength } from '../model/prefix.ts';

export interface GenerateOptions {
  maxTokens: number;
  eos: number[];
  sampling?: SamplingConfig;
  /** The conversation this turn continues (default: this tab's own, DEFAULT_CONV); turns of others run at once. */
  conv?: string;
  onToken?: (token: number, index: number) => void;
}

export interface GenerateResult {
  tokens: number[];
  /** 'lost': a tab holding layers left and no plan over the others came in time (the tokens so far stand). */
  stoppedBy: 'eos' | 'maxTokens' | 'stop' | 'context' | 'lost';
  /** From the start of generate() (or of the cold assignment) to the first token. */
  ttftMs: number;
  /** Tokens after the first, per second. */
  decodeTokensPerSec: number;
  /** Times the turn was restarted from its tokens (a re-plan, an evicted cache). */
  restarts: number;
}

export interface LoadProgress {
  loadedBytes: number;
  totalBytes: number;
  layersLoaded: number;
  layersTotal: number;
  /** Bytes from each source: origin, cache, peer. */
  bySource?: { origin: number; cache: number; peer: number };
}

export type CoordinatorEvent =
  | { type: 'progress'; peer: string; progress: LoadProgress }
  | { type: 'timeline'; intervals: Interval[] }
  | { type: 'queue'; peer: string; queued: number }
  /** A plan took effect here: made by this tab, or another tab's adopted (turns in flight continue on it). */
  | { type: 'plan'; by: string; stages: StageAssignment[]; restarted: number }
  /** A turn restarts from its tokens: `positions` are recomputed (an evicted cache, a new plan). */
  | { type: 'restart'; conv: string; positions: number; reason: string }
  /** A tab holding layers left: `paused` turns from this tab wait for the room's next plan. */
  | { type: 'lost'; peer: string; paused: number }
  /** The first token after a restart arrived: the turn goes on. */
  | { type: 'resumed'; conv: string; index: number }
  | { type: 'error'; peer: string; message: string };

interface Pending {
  conv: string;
  runId: number;
  /** The turn's full context (the cached history is rebuilt from it when the turn ends). */
  ids: number[];
  opts: GenerateOptions;
  tokens: number[];
  t0: number;
  tFirst?: number;
  restarts: number;
  /** Restarted: the next token that arrives says the turn resumed. */
  resuming?: boolean;
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

interface PendingVerify {
  t0: number;
  resolve: (r: VerifyResult) => void;
  reject: (e: unknown) => void;
}

type Assign = Extract<PipelineMessage, { kind: 'assign' }>;

export interface AssignOptions {
  strategy?: string;
  /** Conversations whose caches every stage keeps (default DEFAULT_MAX_CONVERSATIONS). */
  maxConversations?: number;
  /** Weight units' sha256 (see the assign message). */
  hashes?: Record<string, string>;
}

const GREEDY: SamplingConfig = { temperature: 0, topP: 1, seed: 0 };
/** How long turns wait for the room's next plan after a tab holding layers left, before they end with their text. */
export const RECOVERY_TIMEOUT_MS = 30_000;
/** How long a restart waits for a stage to say what it holds (then it recomputes that stage's part from 0). */
const HELD_QUERY_TIMEOUT_MS = 2000;
const CLOCK_PROBES = 5;
const CLOCK_TIMEOUT_MS = 3000;
/** This tab's own conversation when the caller names none (the chat box, the speculative controller). */
export const DEFAULT_CONV = '0';

export class Coordinator {
  planId = '';
  /** The current plan's epoch: a plan made here gets one more, so every tab can tell the newest (planIsNewer). */
  epoch = 0;
  stages: StageAssignment[] = [];
  members: string[] = [];
  strategy = '';
  maxConversations = DEFAULT_MAX_CONVERSATIONS;
  modelUrl = '';
  /** Timeline intervals reported by every tab for the current plan (shared clock, seconds from runStartMs). */
  intervals: Interval[] = [];
  readonly progress = new Map<string, LoadProgress>();
  /** Steps queued at each stage, as it last reported. */
  readonly queued = new Map<string, number>();
  runStartMs = 0;
  /** Per conversation: tokens every stage holds in its KV cache, in order (the reusable prefix for the next turn). */
  private histories = new Map<string, number[]>();
  private runId = 0;
  /** Turns in flight, by conversation. */
  private turns = new Map<string, Pending>();
  private clockWaiters = new Map<number, (t1: number) => void>();
  /** Restarts waiting for a stage's held positions, by `${runId}:${peer}`. */
  private heldWaiters = new Map<string, (held: number) => void>();
  private verifies = new Map<number, PendingVerify>();
  private readonly unsubscribe: () => void;
  private readonly events = new Emitter<{ event: [CoordinatorEvent] }>();
  /** The plan a lost tab broke, while turns wait for the next one (its failure notice names it). */
  private lostPlanId = '';
  private recoveryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly transport: Transport,
    private readonly recoveryTimeoutMs = RECOVERY_TIMEOUT_MS,
  ) {
    this.unsubscribe = transport.onMessage((from, msg, payload) => this.onMessage(from, msg, payload));
  }

  on(fn: (e: CoordinatorEvent) => void): () => void {
    return this.events.on('event', fn);
  }

  private emit(e: CoordinatorEvent): void {
    this.events.emit('event', e);
  }

  /** A conversation's id in the room: this tab's id and the caller's name for it. */
  convId(conv = DEFAULT_CONV): string {
    return `${this.transport.selfId}/${conv}`;
  }

  /** Turns in flight from this tab. */
  get turnsInFlight(): number {
    return this.turns.size;
  }

  dispose(): void {
    this.unsubscribe();
    this.endRecovery();
    this.failTurns(new ShoalError('ERR_PIPELINE', 'coordinator closed'));
    this.failVerifies(new ShoalError('ERR_PIPELINE', 'coordinator closed'));
  }

  /** Estimate peer clock - our clock over the data channel (NTP style, the probe with the smallest round trip wins). */
  async clockOffset(peer: string): Promise<number> {
    if (peer === this.transport.selfId) return 0;
    let best = { rtt: Infinity, offset: 0 };
    for (let i = 0; i < CLOCK_PROBES; i++) {
      const t0 = nowMs() + i * 1e-6; // unique key per probe
      const t1 = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.clockWaiters.delete(t0);
          reject(new ShoalError('ERR_PEER_GONE', `peer ${peer} did not answer a clock probe`));
        }, CLOCK_TIMEOUT_MS);
        this.clockWaiters.set(t0, (v) => {
          clearTimeout(timer);
          resolve(v);
        });
        void this.transport.send(peer, { kind: 'clock', t0 }).catch(reject);
      });
      const t2 = nowMs();
      if (t2 - t0 < best.rtt) best = { rtt: t2 - t0, offset: t1 - (t0 + t2) / 2 };
    }
    return best.offset;
  }

  /**
   * Send every member of the room its range (members outside `stages` drop theirs). Loading starts at once on
   * every tab; the run clock starts now. Turns in flight, from this tab or any other, continue on the new plan.
   */
  async assign(
    modelUrl: string,
    stages: StageAssignment[],
    members: string[],
    maxSeq: number,
    opts: AssignOptions = {},
  ): Promise<void> {
    if (stages.length === 0) throw new ShoalError('ERR_PIPELINE', 'the plan has no stages');
    const offsets = await Promise.all(members.map((m) => this.clockOffset(m).catch(() => 0)));
    const planId = `${this.transport.selfId}:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 8)}`;
    const runStartMs = nowMs();
    const base: Omit<Assign, 'clockOffsetMs'> = {
      kind: 'assign',
      planId,
      epoch: this.epoch + 1,
      modelUrl,
      stages,
      maxSeq,
      runStartMs,
      members,
      strategy: opts.strategy ?? '',
      maxConversations: opts.maxConversations ?? DEFAULT_MAX_CONVERSATIONS,
      ...(opts.hashes && Object.keys(opts.hashes).length ? { hashes: opts.hashes } : {}),
    };
    this.adopt(this.transport.selfId, { ...base, clockOffsetMs: 0 });
    await Promise.all(members.map((m, i) => this.transport.send(m, { ...base, clockOffsetMs: offsets[i] })));
  }

  /**
   * Take a plan as the current one if it is newer than ours (the room converges on the newest), and restart every
   * turn in flight on it from its tokens: a re-plan applies between steps and never mixes two plans' caches.
   */
  private adopt(from: string, msg: Assign): void {
    if (this.planId && !planIsNewer(msg, this)) return;
    this.failVerifies(new ShoalError('ERR_PIPELINE', 'superseded by a new plan'));
    Object.assign(this, {
      planId: msg.planId,
      epoch: msg.epoch,
      stages: msg.stages,
      members: msg.members,
      strategy: msg.strategy,
      maxConversations: msg.maxConversations,
      modelUrl: msg.modelUrl,
    });
    this.runStartMs = from === this.transport.selfId ? msg.runStartMs : msg.runStartMs + msg.clockOffsetMs;
    this.endRecovery();
    this.intervals = [];
    this.progress.clear();
    this.queued.clear();
    this.histories.clear();
    const turns = [...this.turns.values()];
    for (const p of turns) this.restart(p, from === this.transport.selfId ? 'a new plan' : `a new plan from ${from}`);
    this.emit({ type: 'plan', by: from, stages: msg.stages, restarted: turns.length });
  }

  /** Resolves once every stage of the current plan reports all its tensors loaded. */
  whenLoaded(): Promise<void> {
    const done = () =>
      this.stages.every((s) => {
        const p = this.progress.get(s.peer);
        return p !== undefined && p.layersLoaded >= p.layersTotal;
      });
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.on((e) => {
        if (e.type === 'error') {
          off();
          reject(new ShoalError('ERR_PIPELINE', e.message));
        } else if (done()) {
          off();
          resolve();
        }
      });
    });
  }

  /**
   * Drop weights and KV caches everywhere (Run from cold), and the persistent weight caches with `cache`. Turns in
   * flight continue on the next plan.
   */
  async drop(members: string[], opts: { cache?: boolean } = {}): Promise<void> {
    this.histories.clear();
    this.planId = '';
    const msg = { kind: 'drop' as const, ...(opts.cache ? { cache: true } : {}) };
    await Promise.all(members.map((m) => this.transport.send(m, msg).catch(() => {})));
  }

  /** Generate from the full conversation `ids`; the prefix the stages already hold is not recomputed. */
  generate(ids: number[], opts: GenerateOptions): Promise<GenerateResult> {
    const conv = this.convId(opts.conv);
    if (!this.planId) return Promise.reject(new ShoalError('ERR_PIPELINE', 'no plan: assign layers first'));
    if (this.turns.has(conv))
      return Promise.reject(new ShoalError('ERR_PIPELINE', 'a turn of this conversation is already running'));
    if (this.verifies.size > 0 && conv === this.convId())
      return Promise.reject(new ShoalError('ERR_PIPELINE', 'a speculative generation is already running'));
    if (ids.length === 0) return Promise.reject(new ShoalError('ERR_BAD_ARGS', 'empty prompt'));
    const history = this.histories.get(conv) ?? [];
    let common = commonPrefixLength(history, ids);
    if (common === ids.length) common--; // at least one new position must run to produce a token
    return new Promise<GenerateResult>((resolve, reject) => {
      const p: Pending = {
        conv,
        runId: ++this.runId,
        ids,
        opts,
        tokens: [],
        t0: nowMs(),
        restarts: 0,
        resolve,
        reject,
      };
      this.turns.set(conv, p);
      this.histories.set(conv, ids.slice(0, common));
      this.sendStart(p, common, ids.slice(common));
    });
  }

  private sendStart(p: Pending, pos0: number, ids: number[], from?: number[]): void {
    const msg: PipelineMessage = {
      kind: 'start',
      planId: this.planId,
      conv: p.conv,
      runId: p.runId,
      pos0,
      index0: p.tokens.length,
      ids,
      maxTokens: p.opts.maxTokens,
      eos: p.opts.eos,
      sampling: p.opts.sampling ?? GREEDY,
      ...(from ? { from } : {}),
    };
    const { planId } = this,
      first = this.stages[0].peer;
    this.transport.send(first, msg).catch((e) => {
      if (!(e instanceof ShoalError && e.code === 'ERR_PEER_GONE')) this.finishWithError(p, e);
      // A plan made while its first tab was leaving: the turn waits for the next plan, as after any loss.
      else if (this.planId === planId) this.peerLeft(first);
    });
  }

  /**
   * Run the turn again from position 0 over its prompt and the tokens it has produced: the stages rebuild its
   * caches and the next token follows. Token k is sampled from draw k of the seed, so the answer is unchanged.
   */
  private restart(p: Pending, reason: string): void {
    const runId = (p.runId = ++this.runId);
    p.restarts++;
    p.resuming = true;
    this.histories.set(p.conv, []);
    const planId = this.planId;
    if (!planId) return; // dropped: the next plan restarts it
    const ids = [...p.ids, ...p.tokens];
    void this.resumePoints(p.conv, runId, ids.length).then((from) => {
      if (p.runId !== runId || this.planId !== planId || this.turns.get(p.conv) !== p) return; // overtaken
      this.emit({ type: 'restart', conv: p.conv, positions: ids.length - from[0], reason });
      this.sendStart(p, from[0], ids.slice(from[0]), from);
    });
  }

  /**
   * Where each stage resumes a restarted turn of n positions: stage k computes from the first position that it or a
   * stage after it lacks (a stage that kept its layers through a re-plan kept its caches too), and every stage
   * computes the last one, which gives the next token. A stage that does not answer in time counts as holding none.
   */
  private async resumePoints(conv: string, runId: number, n: number): Promise<number[]> {
    const planId = this.planId;
    const held = await Promise.all(
      this.stages.map(
        (s) =>
          new Promise<number>((resolve) => {
            const key = `${runId}:${s.peer}`;
            const timer = setTimeout(() => done(0), HELD_QUERY_TIMEOUT_MS);
            const done = (h: number) => {
              clearTimeout(timer);
              this.heldWaiters.delete(key);
              resolve(h);
            };
            this.heldWaiters.set(key, done);
            this.transport.send(s.peer, { kind: 'heldQuery', planId, conv, runId }).catch(() => done(0));
          }),
      ),
    );
    const from = new Array<number>(held.length);
    let need = n - 1;
    for (let k = held.length - 1; k >= 0; k--) from[k] = need = Math.min(need, held[k]);
    return from;
  }

  /** Tokens every stage holds in its KV cache for this tab's own conversation (a speculative controller reuses it). */
  get cachedHistory(): readonly number[] {
    return this.histories.get(this.convId()) ?? [];
  }

  /** A speculative controller says what the stages' caches hold after its rounds (the next turn reuses it). */
  adoptHistory(tokens: number[], conv?: string): void {
    this.histories.set(this.convId(conv), tokens.slice());
  }

  /**
   * One verification pass: run `ids` at pos0 through every stage (their caches roll back to pos0 first) and return
   * the target's prediction after each position from keepFrom on. Several may be in flight; each stage runs them in
   * order. The caller must not mix this with generate() on the same conversation. With `branch` the stages compute
   * an alternative continuation from pos0 and then restore what their caches held (a hedge; see VerifyFlags).
   */
  verify(
    pos0: number,
    ids: number[],
    opts: { keepFrom: number; wantLogits: boolean; branch?: boolean; conv?: string },
  ): Promise<VerifyResult> {
    const conv = this.convId(opts.conv);
    if (!this.planId) return Promise.reject(new ShoalError('ERR_PIPELINE', 'no plan: assign layers first'));
    if (this.turns.has(conv)) return Promise.reject(new ShoalError('ERR_PIPELINE', 'a generation is already running'));
    if (ids.length === 0 || !(opts.keepFrom >= 0 && opts.keepFrom < ids.length))
      return Promise.reject(new ShoalError('ERR_BAD_ARGS', 'verify needs ids and a keepFrom inside them'));
    const runId = ++this.runId;
    if (!opts.branch) {
      const history = this.histories.get(conv) ?? [];
      this.histories.set(conv, history.slice(0, Math.min(pos0, history.length)));
    }
    return new Promise<VerifyResult>((resolve, reject) => {
      this.verifies.set(runId, { t0: nowMs(), resolve, reject });
      const flags: VerifyFlags = { keepFrom: opts.keepFrom, wantLogits: opts.wantLogits };
      if (opts.branch) flags.branch = true;
      const msg: PipelineMessage = { kind: 'verify', planId: this.planId, conv, runId, pos0, ids, verify: flags };
      this.transport.send(this.stages[0].peer, msg).catch((e: unknown) => {
        this.verifies.delete(runId);
        reject(e);
      });
    });
  }

  private failVerifies(e: unknown): void {
    for (const v of this.verifies.values()) v.reject(e);
    this.verifies.clear();
  }

  private failTurns(e: unknown): void {
    for (const p of [...this.turns.values()]) this.finishWithError(p, e);
  }

  /** Stop button: stage 0 stops the conversation's turn after the step in flight. */
  stop(conv?: string): void {
    const p = this.turns.get(this.convId(conv));
    if (!p) return;
    void this.transport
      .send(this.stages[0].peer, { kind: 'stop', planId: this.planId, conv: p.conv, runId: p.runId })
      .catch(() => {});
    this.finish(p, 'stop');
  }

  /**
   * A tab left. If it held layers, the plan is broken: turns in flight pause (their tokens and sampling state live
   * here, where the loss cannot take them) until the room's next plan arrives, then restart from their tokens on it
   * (adopt), so the answer goes on exactly. Without a plan in recoveryTimeoutMs they end with the text so far.
   */
  peerLeft(peer: string): void {
    if (!this.planId || !this.stages.some((s) => s.peer === peer)) return;
    this.lostPlanId = this.planId;
    this.planId = '';
    this.histories.clear();
    this.failVerifies(new ShoalError('ERR_PEER_GONE', `tab ${peer} left the room while holding layers`));
    for (const p of this.turns.values()) p.runId = ++this.runId; // what the old plan still delivers is stale
    this.emit({ type: 'lost', peer, paused: this.turns.size });
    if (this.recoveryTimer !== null) clearTimeout(this.recoveryTimer);
    this.recoveryTimer = setTimeout(
      () =>
        this.recoveryFailed(
          `tab ${peer} left mid-answer and no plan over the remaining tabs came within ` +
            `${Math.round(this.recoveryTimeoutMs / 1000)} s`,
        ),
      this.recoveryTimeoutMs,
    );
  }

  /** The plan a lost tab broke, while this tab waits for the next one ('' when none is broken). */
  get brokenPlanId(): string {
    return this.lostPlanId;
  }

  /**
   * No plan can replace the broken one (the remaining tabs cannot hold the model, or none came in time): every
   * turn waiting for it ends with the tokens it has, and the page says why.
   */
  recoveryFailed(message: string): void {
    if (!this.lostPlanId) return;
    this.endRecovery();
    this.emit({ type: 'error', peer: this.transport.selfId, message: `${message}; the answer so far is kept` });
    for (const p of [...this.turns.values()]) this.finish(p, 'lost');
  }

  /** This tab re-planned after a loss and found no plan: every tab's waiting turns end now, this one's too. */
  abandonRecovery(message: string, members: string[]): void {
    const planId = this.lostPlanId;
    if (!planId) return;
    for (const m of members)
      if (m !== this.transport.selfId) void this.transport.send(m, { kind: 'error', planId, message }).catch(() => {});
    this.recoveryFailed(message);
  }

  private endRecovery(): void {
    this.lostPlanId = '';
    if (this.recoveryTimer !== null) clearTimeout(this.recoveryTimer);
    this.recoveryTimer = null;
  }

  /** The turn is over: every stage may count the conversation idle (its caches go first when memory is short). */
  private endTurn(p: Pending): void {
    this.turns.delete(p.conv);
    if (!this.planId) return;
    for (const s of this.stages)
      void this.transport.send(s.peer, { kind: 'end', planId: this.planId, conv: p.conv }).catch(() => {});
  }

  private finish(p: Pending, stoppedBy: GenerateResult['stoppedBy']): void {
    if (this.turns.get(p.conv) !== p) return;
    this.endTurn(p);
    // Every token but the last was fed back through the pipeline (a lost turn's stages are gone).
    if (stoppedBy === 'lost') this.histories.delete(p.conv);
    else this.histories.set(p.conv, [...p.ids, ...p.tokens.slice(0, -1)]);
    const tEnd = nowMs();
    const ttftMs = (p.tFirst ?? tEnd) - p.t0;
    const decodeTokensPerSec = p.tokens.length > 1 && p.tFirst ? ((p.tokens.length - 1) * 1000) / (tEnd - p.tFirst) : 0;
    p.resolve({ tokens: p.tokens, stoppedBy, ttftMs, decodeTokensPerSec, restarts: p.restarts });
  }

  private finishWithError(p: Pending, e: unknown): void {
    if (this.turns.get(p.conv) !== p) return;
    this.endTurn(p);
    this.histories.delete(p.conv);
    p.reject(e);
  }

  /** For cold runs the TTFT clock starts at the assignment, not at the prompt. */
  startClockAtAssignment(conv?: string): void {
    const p = this.turns.get(this.convId(conv));
    if (p) p.t0 = this.runStartMs;
  }

  private onMessage(from: string, msg: PipelineMessage, payload?: Float32Array): void {
    switch (msg.kind) {
      case 'clockReply': {
        const w = this.clockWaiters.get(msg.t0);
        if (w) {
          this.clockWaiters.delete(msg.t0);
          w(msg.t1);
        }
        return;
      }
      case 'assign':
        if (from !== this.transport.selfId) this.adopt(from, msg);
        return;
      case 'drop':
        if (from !== this.transport.selfId) {
          this.histories.clear();
          this.planId = '';
        }
        return;
      default:
        if ('planId' in msg && msg.planId === this.planId) this.onPlanMessage(from, msg, payload);
        // The tab re-planning after a loss found no plan that fits: the turns waiting for one end now.
        else if (msg.kind === 'error' && this.lostPlanId && msg.planId === this.lostPlanId)
          this.recoveryFailed(msg.message);
    }
  }

  /** Messages about the current plan. */
  private onPlanMessage(from: string, msg: PipelineMessage, payload?: Float32Array): void {
    switch (msg.kind) {
      case 'progress':
        this.progress.set(from, msg);
        this.emit({ type: 'progress', peer: from, progress: msg });
        return;
      case 'timeline':
        this.intervals.push(...msg.intervals);
        this.emit({ type: 'timeline', intervals: msg.intervals });
        if (msg.queued !== undefined) {
          this.queued.set(from, msg.queued);
          this.emit({ type: 'queue', peer: from, queued: msg.queued });
        }
        return;
      case 'error': {
        this.emit({ type: 'error', peer: from, message: msg.message });
        const err = new ShoalError('ERR_PIPELINE', msg.message);
        const p = msg.conv !== undefined ? this.turns.get(msg.conv) : undefined;
        if (p) {
          if (p.runId === msg.runId) this.finishWithError(p, err);
          return;
        }
        if (msg.conv === undefined) {
          this.failTurns(err);
          this.failVerifies(err);
        } else if (msg.runId !== undefined) this.verifies.get(msg.runId)?.reject(err);
        return;
      }
      case 'resync': {
        const p = this.turns.get(msg.conv);
        if (p?.runId === msg.runId) {
          this.restart(p, `tab ${from} holds ${msg.held} of its positions`);
          return;
        }
        const v = this.verifies.get(msg.runId);
        if (v) {
          this.verifies.delete(msg.runId);
          v.reject(
            new ShoalError(
              'ERR_PIPELINE',
              `tab ${from} holds ${msg.held} positions of this conversation, fewer than the pass needs`,
            ),
          );
        }
        return;
      }
      case 'heldReply':
        this.heldWaiters.get(`${msg.runId}:${from}`)?.(msg.held);
        return;
      case 'verified': {
        const v = this.verifies.get(msg.runId);
        if (!v) return;
        this.verifies.delete(msg.runId);
        v.resolve({
          pos0: msg.pos0,
          tokens: msg.tokens,
          logits: payload,
          roundTripMs: nowMs() - v.t0,
          computeMs: msg.computeMs,
        });
        return;
      }
      case 'token': {
        const p = this.turns.get(msg.conv);
        if (!p || msg.runId !== p.runId || msg.index !== p.tokens.length) return;
        if (p.tFirst === undefined) p.tFirst = nowMs();
        if (p.resuming) {
          p.resuming = false;
          this.emit({ type: 'resumed', conv: p.conv, index: msg.index });
        }
        p.tokens.push(msg.token);
        p.opts.onToken?.(msg.token, msg.index);
        if (msg.done)
          this.finish(
            p,
            p.opts.eos.includes(msg.token) ? 'eos' : msg.index + 1 >= p.opts.maxTokens ? 'maxTokens' : 'context',
          );
        return;
      }
      default:
        return;
    }
  }
}
