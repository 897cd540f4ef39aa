// One tab's part of the pipeline: on assignment it streams its layers in execution order and uploads each as it
// arrives; activations are computed as soon as a layer and its input are ready, then passed downstream.
import type { Backend } from '../backend/types.ts';
import { errorMessage } from '../errors.ts';
import { Sampler } from '../model/sampler.ts';
import { Stage } from '../model/stage.ts';
import type { ModelSource } from '../weights/model.ts';
import { argmax } from '../model/sampler.ts';
import type { PipelineMessage, SamplingConfig, StageAssignment, Transport, VerifyFlags } from './messages.ts';
import { TimelineRecorder, nowMs } from './recorder.ts';
import type { Interval } from '../planner/timeline.ts';

/** Results a stage may have handed to links and not yet sent before it waits (see StageRunner.dispatch). */
const MAX_SENDS_IN_FLIGHT = 8;
/** Shortest gap between two timeline messages from one stage (the page's timeline redraws at most per frame). */
const TIMELINE_FLUSH_MS = 100;

type Assign = Extract<PipelineMessage, { kind: 'assign' }>;

export interface RunInfo { runId: number; maxTokens: number; eos: number[]; sampling: SamplingConfig }

export interface StageRunnerDeps {
  transport: Transport;
  backend: () => Promise<Backend>;
  /** Open a model folder URL (with this tab's emulated loading cap, if any). */
  openModel: (url: string) => Promise<ModelSource>;
  /** Emulated compute slowdown: called after each compute step with its measured time. */
  afterCompute?: (computeMs: number) => Promise<void>;
  onEvent?: (e: StageEvent) => void;
}

export type StageEvent =
  | { type: 'assigned'; range: StageAssignment | null; index: number; of: number }
  | { type: 'progress'; layersLoaded: number; layersTotal: number; loadedBytes: number; totalBytes: number }
  | { type: 'error'; message: string }
  | { type: 'dropped' };

interface Active {
  assign: Assign;
  coordinator: string;
  index: number; // position of this tab in the chain
  range: StageAssignment;
  /** Resolves once the model header is read and the Stage exists; its layers may still be loading. */
  stage: Promise<Stage>;
  sampler?: { runId: number; sampler: Sampler };
  /** Stage 0: the run in progress and its stop flag. */
  run?: RunInfo & { stopped: boolean };
}

export class StageRunner {
  private active: Active | null = null;
  private readonly recorder: TimelineRecorder;
  /** Serialises compute: steps run one after another in arrival order. */
  private queue: Promise<void> = Promise.resolve();
  /** Results handed to a link and not yet sent (see dispatch). */
  private sending: Promise<void>[] = [];
  private timelineTimer: ReturnType<typeof setTimeout> | null = null;
  private lastTimelineMs = -Infinity;
  private readonly unsubscribe: () => void;

  constructor(private readonly deps: StageRunnerDeps) {
    this.recorder = new TimelineRecorder(deps.transport.selfId);
    this.unsubscribe = deps.transport.onMessage((from, msg, payload) => this.onMessage(from, msg, payload));
  }

  get range(): StageAssignment | null {
    return this.active?.range ?? null;
  }

  dispose(): void {
    this.unsubscribe();
    this.drop();
  }

  private onMessage(from: string, msg: PipelineMessage, payload: Float32Array | undefined): void {
    switch (msg.kind) {
      case 'clock':
        void this.deps.transport.send(from, { kind: 'clockReply', t0: msg.t0, t1: nowMs() }).catch(() => {});
        return;
      case 'assign':
        this.onAssign(from, msg);
        return;
      case 'drop':
        this.drop();
        this.deps.onEvent?.({ type: 'dropped' });
        return;
      case 'start':
        if (!this.matches(msg.planId) || this.active!.index !== 0) return;
        this.active!.run = { runId: msg.runId, maxTokens: msg.maxTokens, eos: msg.eos, sampling: msg.sampling, stopped: false };
        this.enqueue(() => this.step(msg.runId, msg.pos0, Int32Array.from(msg.ids), 0, msg.planId));
        return;
      case 'verify': {
        // Speculative decoding: one pass over [last accepted, drafts...]; the answer goes to the coordinator only.
        if (!this.matches(msg.planId) || this.active!.index !== 0) return;
        const a = this.active!;
        const run = { maxTokens: 0, eos: [], sampling: { temperature: 0, topP: 1, seed: 0 } };
        this.enqueue(() => this.compute(msg.runId, msg.pos0, Int32Array.from(msg.ids), msg.pos0, run, a, msg.verify));
        return;
      }
      case 'stop':
        if (this.matches(msg.planId) && this.active!.run?.runId === msg.runId) this.active!.run.stopped = true;
        return;
      case 'token': {
        // Stage 0 feeds the sampled token back in for the next step.
        const a = this.active;
        if (!this.matches(msg.planId) || a!.index !== 0 || !a!.run || a!.run.runId !== msg.runId) return;
        if (msg.done || a!.run.stopped) return;
        this.enqueue(() => this.step(msg.runId, msg.pos + 1, Int32Array.of(msg.token), msg.index + 1, msg.planId));
        return;
      }
      case 'act': {
        if (!this.matches(msg.planId) || !payload) return;
        const a = this.active!;
        // The transfer began when the sender handed it to its link (sentAtSec, shared clock).
        const arrivedSec = this.recorder.toSec(nowMs());
        this.recorder.push({ device: this.deps.transport.selfId, kind: 'recv', startSec: Math.min(msg.sentAtSec, arrivedSec), endSec: arrivedSec, bytes: payload.byteLength, tokenIndex: msg.index });
        this.enqueue(() => this.compute(msg.runId, msg.pos0, payload, msg.index, msg, a, msg.verify, msg.computeMs ?? 0));
        return;
      }
      default:
        return; // coordinator-bound messages are not ours
    }
  }

  private matches(planId: string): boolean {
    return this.active !== null && this.active.assign.planId === planId;
  }

  private enqueue(fn: () => Promise<void>): void {
    this.queue = this.queue.then(fn).catch((e) => this.fail(e));
  }

  private fail(e: unknown): void {
    const message = errorMessage(e);
    this.deps.onEvent?.({ type: 'error', message });
    const a = this.active;
    if (a) void this.deps.transport.send(a.coordinator, { kind: 'error', planId: a.assign.planId, message: `${this.deps.transport.selfId}: ${message}` }).catch(() => {});
  }

  /** Forget the stage, its weights and caches. */
  drop(): void {
    this.flushTimeline();
    void this.active?.stage.then((s) => s.dispose(), () => undefined);
    this.active = null;
  }

  private onAssign(from: string, msg: Assign): void {
    this.recorder.rebase(msg.clockOffsetMs, msg.runStartMs);
    const index = msg.stages.findIndex((s) => s.peer === this.deps.transport.selfId);
    const range = index >= 0 ? msg.stages[index] : null;
    const prev = this.active;
    // Same model, same layers: keep the loaded weights and caches (a warm run); anything else starts over.
    if (prev && range && prev.assign.modelUrl === msg.modelUrl && prev.range.start === range.start && prev.range.end === range.end) {
      this.active = { ...prev, assign: msg, coordinator: from, index, run: undefined, sampler: undefined };
      this.deps.onEvent?.({ type: 'assigned', range, index, of: msg.stages.length });
      return;
    }
    this.drop();
    this.deps.onEvent?.({ type: 'assigned', range, index, of: msg.stages.length });
    if (!range) return;
    let resolveStage!: (s: Stage) => void, rejectStage!: (e: unknown) => void;
    const stage = new Promise<Stage>((res, rej) => { resolveStage = res; rejectStage = rej; });
    stage.catch(() => undefined);
    this.active = { assign: msg, coordinator: from, index, range, stage };
    void this.load(msg, from, range, resolveStage).catch((e) => { rejectStage(e); this.fail(e); });
  }

  private async load(msg: Assign, coordinator: string, range: StageAssignment, resolveStage: (s: Stage) => void): Promise<void> {
    // Fetching starts as soon as the model header is read; the engine may still be starting (a tab that has not
    // finished profiling), so uploads queue behind it while the bytes keep coming.
    const model = await this.deps.openModel(msg.modelUrl);
    const a = this.active;
    if (!a || a.assign.planId !== msg.planId) return; // superseded while opening
    const stillOurs = () => this.active === a;
    const stageReady = this.deps.backend().then((backend) => {
      const stage = new Stage(backend, model.spec, range, msg.maxSeq);
      if (stillOurs()) resolveStage(stage);
      return stage;
    });
    const isFirst = range.start === 0, isLast = range.end === model.spec.nLayers;
    const rec = this.recorder;
    const layersTotal = range.end - range.start + (isFirst ? 1 : 0) + (isLast ? 1 : 0);
    const totalBytes = (isFirst ? model.embeddingBytes() : 0) + (isLast ? model.headBytes() : 0)
      + Array.from({ length: range.end - range.start }, (_, i) => model.layerBytes(range.start + i)).reduce((x, y) => x + y, 0);
    let loadedBytes = 0, layersLoaded = 0;
    const progress = (bytes: number) => {
      loadedBytes += bytes;
      layersLoaded++;
      const p = { planId: msg.planId, loadedBytes, totalBytes, layersLoaded, layersTotal };
      this.deps.onEvent?.({ type: 'progress', ...p });
      void this.deps.transport.send(coordinator, { kind: 'progress', ...p }).catch(() => {});
      this.sendTimeline();
    };
    let uploads: Promise<Stage> = stageReady;
    /** Upload in execution order, behind the engine's start, without holding up the next fetch. */
    const upload = (bytes: number, extra: Partial<Interval>, put: (s: Stage) => void) => {
      uploads = uploads.then(async (stage) => {
        if (stillOurs()) {
          await rec.time('upload', () => put(stage), extra);
          progress(bytes);
        }
        return stage;
      });
    };
    try {
      if (isFirst) {
        const t = await rec.time('load', () => model.loadEmbedding(), { label: 'embedding', bytes: model.embeddingBytes() });
        upload(t.data.byteLength, { label: 'embedding' }, (s) => s.setEmbedding(t));
      }
      for (let l = range.start; l < range.end; l++) {
        const bytes = model.layerBytes(l);
        const tensors = await rec.time('load', () => model.loadLayer(l), { layer: l + 1, bytes }); // timeline layers are 1-based, as in plans
        if (!stillOurs()) return; // dropped meanwhile
        upload(bytes, { layer: l + 1, bytes }, (s) => s.setLayer(l, tensors));
      }
      if (isLast) {
        const [norm, head] = await rec.time('load', () => Promise.all([model.loadFinalNorm(), model.loadLmHead()]), { label: 'head', bytes: model.headBytes() });
        if (!stillOurs()) return;
        upload(model.headBytes(), { label: 'head' }, (s) => s.setHead(norm, head));
      }
      await uploads;
    } catch (e) {
      void stageReady.then((s) => s.failLoad(e), () => undefined);
      throw e;
    }
  }

  /** Stage 0: embed and run ids at pos0. */
  private async step(runId: number, pos0: number, ids: Int32Array, index: number, planId: string): Promise<void> {
    const a = this.active;
    if (!a || a.assign.planId !== planId || !a.run || a.run.runId !== runId || a.run.stopped) return;
    await this.compute(runId, pos0, ids, index, a.run, a);
  }

  /** computeBeforeMs: what the stages before this one spent on this verification pass (passed on, summed). */
  private async compute(runId: number, pos0: number, input: Int32Array | Float32Array, index: number, run: Omit<RunInfo, 'runId'>, a: Active, verify?: VerifyFlags, computeBeforeMs = 0): Promise<void> {
    if (this.active !== a) return;
    const stage = await a.stage;
    const rows = stage.isFirst ? input.length : input.length / stage.spec.dim;
    if (verify?.branch) {
      // An alternative continuation (speculative hedge): computed from pos0 on, then the main line's rows come back.
      if (pos0 > stage.pos) throw new Error(`a branch at ${pos0} starts past the ${stage.pos} positions this stage holds`);
      await stage.beginBranch(pos0, rows);
    } else {
      if (pos0 < stage.pos) stage.rollback(pos0);
      if (pos0 !== stage.pos) throw new Error(`stage holds ${stage.pos} positions but the step starts at ${pos0}; run from cold to rebuild the caches`);
    }
    const rec = this.recorder;
    let t0 = nowMs();
    let computeMs = 0;
    const greedy = run.sampling.temperature <= 0;
    const out = await stage.forward(input, {
      logits: stage.isLast && verify ? 'all' : stage.isLast && !greedy ? 'last' : 'none',
      argmax: stage.isLast && greedy && !verify,
      onWait: (layer, phase) => {
        const t = nowMs();
        if (phase === 'start') {
          if (t > t0) rec.add('compute', t0, t, { tokenIndex: index });
          computeMs += t - t0;
        }
        t0 = t;
        void layer;
      },
    }).finally(() => (verify?.branch ? stage.endBranch() : undefined));
    let t1 = nowMs();
    computeMs = Math.max(0, computeMs + t1 - t0 - out.yieldedMs); // other tasks' time is not this stage's compute
    let passMs = computeMs;
    if (this.deps.afterCompute) {
      await this.deps.afterCompute(computeMs);
      const t = nowMs();
      passMs += t - t1; // an emulated slowdown's wait is this stage's compute too
      t1 = t;
    }
    const computeSoFarMs = computeBeforeMs + passMs;
    rec.add('compute', t0, t1, { tokenIndex: index });
    const planId = a.assign.planId;
    if (!stage.isLast) {
      const next = a.assign.stages[a.index + 1];
      const act: Extract<PipelineMessage, { kind: 'act' }> = { kind: 'act', planId, runId, pos0, rows, index, maxTokens: run.maxTokens, eos: run.eos, sampling: run.sampling, sentAtSec: rec.toSec(nowMs()) };
      if (verify) { act.verify = verify; act.computeMs = computeSoFarMs; }
      await this.dispatch(() => this.deps.transport.send(next.peer, act, out.hidden!), { tokenIndex: index, bytes: out.hidden!.byteLength });
    } else if (verify) {
      // The target's next-token prediction after each kept position; logits rows too when the controller samples.
      const V = stage.spec.vocabSize;
      const logits = out.logits!.subarray(verify.keepFrom * V);
      const tokens = Array.from({ length: rows - verify.keepFrom }, (_, r) => argmax(logits, r * V, V));
      const msg: PipelineMessage = { kind: 'verified', planId, runId, pos0, tokens, computeMs: computeSoFarMs };
      await this.dispatch(() => this.deps.transport.send(a.coordinator, msg, verify.wantLogits ? logits.slice() : undefined), { tokenIndex: index });
    } else {
      if (!a.sampler || a.sampler.runId !== runId) a.sampler = { runId, sampler: new Sampler({ temperature: run.sampling.temperature, topP: run.sampling.topP, seed: run.sampling.seed }) };
      const token = greedy ? out.nextToken! : a.sampler.sampler.sample(out.logits!);
      const pos = pos0 + rows - 1;
      const done = run.eos.includes(token) || index + 1 >= run.maxTokens || pos + 2 > stage.maxSeq;
      const msg: PipelineMessage = { kind: 'token', planId, runId, index, pos, token, done };
      const first = a.assign.stages[0].peer;
      await this.dispatch(() => Promise.all([
        this.deps.transport.send(a.coordinator, msg),
        first !== a.coordinator ? this.deps.transport.send(first, msg) : Promise.resolve(),
      ]), { tokenIndex: index });
    }
  }

  /**
   * Hand a result to its link without holding the compute queue until it is sent: a link's latency does not
   * occupy the sender, so the next step (a verification round sent ahead, the next prefill chunk) computes while
   * this one travels. Messages keep their order (each link queues them as they are handed over); past
   * MAX_SENDS_IN_FLIGHT unsent results the stage waits for the oldest (back-pressure on a bandwidth-capped link).
   */
  private async dispatch(send: () => Promise<unknown>, extra: Partial<Interval>): Promise<void> {
    const sent = this.recorder.time('send', send, extra);
    // The step's intervals (its send included) go to the coordinator's timeline once the send is done.
    const settled = sent.then(() => undefined, (e) => this.fail(e)).then(() => this.sendTimeline());
    this.sending.push(settled);
    void settled.then(() => { this.sending = this.sending.filter((p) => p !== settled); });
    while (this.sending.length > MAX_SENDS_IN_FLIGHT) await this.sending[0];
  }

  /**
   * Report recorded intervals to the coordinator, at most one message per TIMELINE_FLUSH_MS (the rest are sent by
   * a timer): with short steps (decode tokens, speculative rounds sent ahead) a message per step kept the person's
   * tab busy handling timeline traffic between its own draft steps.
   */
  private sendTimeline(): void {
    if (this.timelineTimer !== null) return;
    const waitMs = this.lastTimelineMs + TIMELINE_FLUSH_MS - nowMs();
    if (waitMs > 0) {
      this.timelineTimer = setTimeout(() => { this.timelineTimer = null; this.flushTimeline(); }, waitMs);
      return;
    }
    this.flushTimeline();
  }

  private flushTimeline(): void {
    if (this.timelineTimer !== null) { clearTimeout(this.timelineTimer); this.timelineTimer = null; }
    this.lastTimelineMs = nowMs();
    const a = this.active;
    const intervals = this.recorder.drain();
    if (!a || intervals.length === 0) return;
    void this.deps.transport.send(a.coordinator, { kind: 'timeline', planId: a.assign.planId, intervals }).catch(() => {});
  }
}
