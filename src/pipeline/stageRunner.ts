// One tab's part of the pipeline: on assignment it streams its layers in execution order and uploads each as it
// arrives; steps of every conversation in flight queue per conversation (FairQueue) and run in batched passes as
// soon as a layer and their input are ready, each conversation on its own KV cache; results go downstream.
import type { Backend } from '../backend/types.ts';
import { ShoalError, errorMessage } from '../errors.ts';
import { Sampler, argmax } from '../model/sampler.ts';
import { Stage } from '../model/stage.ts';
import type { BatchItem } from '../model/stage.ts';
import { EMBED_UNIT, HEAD_UNIT, layerUnit, type LoadUnit, type ModelSource } from '../weights/model.ts';
import type { Interval } from '../planner/timeline.ts';
import { StepCadence } from './cadence.ts';
import { EarlyMessages } from './earlyMessages.ts';
import { ChunkBudget } from './chunkBudget.ts';
import { FairQueue, MAX_BATCH_ROWS } from './fairQueue.ts';
import type { QueuedStep } from './fairQueue.ts';
import { DEFAULT_MAX_CONVERSATIONS, planIsNewer } from './messages.ts';
import type { PipelineMessage, SamplingConfig, StageAssignment, Transport, VerifyFlags } from './messages.ts';
import { TimelineRecorder, nowMs } from './recorder.ts';

/** Results a stage may have handed to links and not yet sent before it waits (see StageRunner.dispatch). */
const MAX_SENDS_IN_FLIGHT = 8;
/** Shortest gap between two timeline messages from one stage (the page's timeline redraws at most per frame). */
const TIMELINE_FLUSH_MS = 100;
/** Most rows in one pass when one conversation has the stage to itself (a whole short prompt, one pass). */
export const MAX_PASS_ROWS = 512;
/** Prompts up to this many rows run whole beside others' decode steps; longer ones go in chunks (ChunkBudget). */
export const SHORT_PROMPT_ROWS = 64;

type Assign = Extract<PipelineMessage, { kind: 'assign' }>;

export interface RunInfo {
  runId: number;
  maxTokens: number;
  eos: number[];
  sampling: SamplingConfig;
}

export interface StageRunnerDeps {
  transport: Transport;
  backend: () => Promise<Backend>;
  /** Open a model folder URL (with this tab's emulated loading cap, if any). */
  openModel: (url: string) => Promise<ModelSource>;
  /** Emulated compute slowdown: called after each compute step with its measured time. */
  afterCompute?: (computeMs: number) => Promise<void>;
  onEvent?: (e: StageEvent) => void;
  /** ms clock (default: the wall clock); tests inject one where timing decides what runs. */
  clock?: () => number;
}

export type StageEvent =
  | { type: 'assigned'; range: StageAssignment | null; index: number; of: number }
  | {
      type: 'progress';
      layersLoaded: number;
      layersTotal: number;
      loadedBytes: number;
      totalBytes: number;
      /** Bytes loaded so far from each source. */
      bySource: BySource;
    }
  | { type: 'queue'; depths: Record<string, number>; conversations: number }
  | { type: 'error'; message: string }
  | { type: 'dropped' };

export type BySource = { origin: number; cache: number; peer: number };

/** One step of one conversation waiting at this stage. */
interface Step extends QueuedStep {
  runId: number;
  /** The tab whose conversation it is (tokens and errors go there). */
  owner: string;
  pos0: number;
  input: Int32Array | Float32Array;
  /** Index of the token this step leads to (0: the prompt's). */
  index: number;
  run: Omit<RunInfo, 'runId'>;
  /** A prompt chunk before the last: downstream computes it, nobody samples after it. */
  partial: boolean;
  verify?: VerifyFlags;
  /** What the stages before this one spent on this verification pass (passed on, summed). */
  computeBeforeMs: number;
  /** A restarted turn's resume points, per stage (see the 'start' message). */
  from?: number[];
}

interface Active {
  assign: Assign;
  coordinator: string;
  index: number; // position of this tab in the chain
  range: StageAssignment;
  /** Resolves once the model header is read and the Stage exists; its layers may still be loading. */
  stage: Promise<Stage>;
  queue: FairQueue<Step>;
  /** Stage 0: the run in progress per conversation, and its stop flag. */
  runs: Map<string, RunInfo & { owner: string; stopped: boolean }>;
  /** Newest run seen per conversation: steps of an older run (a restarted turn) are dropped. */
  latestRun: Map<string, number>;
  /** Conversations whose turn is in flight (not evictable); the rest are idle. */
  busy: Set<string>;
  /** Prompt rows a pass may carry beside other conversations' decode steps (chunked prefill). */
  chunks: ChunkBudget;
  /** When each decoding conversation's next step is due here. */
  cadence: StepCadence;
  /** Set while a prompt chunk waits for a decode step that is due (see holdMs). */
  holdTimer: ReturnType<typeof setTimeout> | null;
  /** Conversations whose tab left: their caches are freed once no pass runs. */
  orphans: Set<string>;
  /** When each conversation last ran here (the idle one unused longest is evicted first). */
  lastUsed: Map<string, number>;
  pumping: boolean;
}

export class StageRunner {
  private active: Active | null = null;
  private readonly recorder: TimelineRecorder;
  /** Results handed to a link and not yet sent (see dispatch). */
  private sending: Promise<void>[] = [];
  private timelineTimer: ReturnType<typeof setTimeout> | null = null;
  private lastTimelineMs = -Infinity;
  private readonly unsubscribe: () => void;
  private readonly clock: () => number;
  private readonly early = new EarlyMessages();

  constructor(private readonly deps: StageRunnerDeps) {
    this.clock = deps.clock ?? nowMs;
    this.recorder = new TimelineRecorder(deps.transport.selfId);
    this.unsubscribe = deps.transport.onMessage((from, msg, payload) => this.onMessage(from, msg, payload));
  }

  get range(): StageAssignment | null {
    return this.active?.range ?? null;
  }

  /** Conversations with a turn in flight here (0: idle). */
  get conversationsInFlight(): number {
    return this.active?.busy.size ?? 0;
  }

  /** The model of the current assignment and the weight units its stage holds loaded now. */
  async heldUnits(): Promise<{ modelUrl: string; units: LoadUnit[] } | null> {
    const a = this.active;
    const stage = a ? await a.stage.catch(() => null) : null;
    if (!a || !stage || this.active !== a) return null;
    const units = stage.heldLayers(stage.range).map(layerUnit);
    if (stage.isFirst && stage.holdsEmbedding) units.unshift(EMBED_UNIT);
    if (stage.isLast && stage.holdsHead) units.push(HEAD_UNIT);
    return { modelUrl: a.assign.modelUrl, units };
  }

  /** Steps queued here now, per conversation. */
  get queueDepths(): Record<string, number> {
    return this.active?.queue.depths() ?? {};
  }

  dispose(): void {
    this.unsubscribe();
    this.drop();
  }

  // One flat switch over the message kinds, each case short: the protocol reads in one place.
  private onMessage(from: string, msg: PipelineMessage, payload: Float32Array | undefined): void {
    const a = this.active;
    if (this.early.hold(from, msg, payload, this.active?.assign.planId)) return;
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
        if (!a || !this.matches(msg.planId) || a.index !== 0) return;
        this.onStart(a, from, msg);
        return;
      case 'verify':
        // Speculative decoding: one pass over [last accepted, drafts...]; the answer goes to the coordinator only.
        if (!a || !this.matches(msg.planId) || a.index !== 0) return;
        this.push(a, {
          conv: msg.conv,
          rows: msg.ids.length,
          alone: true,
          runId: msg.runId,
          owner: from,
          pos0: msg.pos0,
          input: Int32Array.from(msg.ids),
          index: msg.pos0,
          run: VERIFY_RUN,
          partial: false,
          verify: msg.verify,
          computeBeforeMs: 0,
        });
        return;
      case 'stop': {
        const run = a && this.matches(msg.planId) ? a.runs.get(msg.conv) : undefined;
        if (run?.runId === msg.runId) {
          run.stopped = true;
          a!.queue.drop(msg.conv);
        }
        return;
      }
      case 'end':
        if (a && this.matches(msg.planId)) {
          a.busy.delete(msg.conv);
          a.runs.delete(msg.conv);
          a.cadence.forget(msg.conv);
        }
        return;
      case 'token': {
        // Stage 0 feeds the sampled token back in for the next step.
        const run = a && this.matches(msg.planId) && a.index === 0 ? a.runs.get(msg.conv) : undefined;
        if (!run || run.runId !== msg.runId || msg.done || run.stopped) return;
        this.push(a!, {
          conv: msg.conv,
          rows: 1,
          alone: false,
          runId: msg.runId,
          owner: run.owner,
          pos0: msg.pos + 1,
          input: Int32Array.of(msg.token),
          index: msg.index + 1,
          run,
          partial: false,
          computeBeforeMs: 0,
        });
        return;
      }
      case 'act': {
        if (!a || !this.matches(msg.planId) || !payload) return;
        // The transfer began when the sender handed it to its link (sentAtSec, shared clock).
        const arrivedSec = this.recorder.toSec(nowMs());
        this.recorder.push({
          device: this.deps.transport.selfId,
          kind: 'recv',
          startSec: Math.min(msg.sentAtSec, arrivedSec),
          endSec: arrivedSec,
          bytes: payload.byteLength,
          tokenIndex: msg.index,
          conv: msg.conv,
        });
        this.push(a, {
          conv: msg.conv,
          rows: msg.rows,
          alone: !!msg.verify,
          runId: msg.runId,
          owner: msg.owner,
          pos0: msg.pos0,
          input: payload,
          index: msg.index,
          run: msg,
          partial: !!msg.partial,
          verify: msg.verify,
          computeBeforeMs: msg.computeMs ?? 0,
          from: msg.from,
        });
        return;
      }
      case 'heldQuery':
        // Positions of the conversation this stage holds (0 until its stage exists): a restart skips them.
        if (!a || !this.matches(msg.planId)) return;
        void a.stage
          .then(
            (st) => (st.hasSequence(msg.conv) ? st.sequence(msg.conv).pos : 0),
            () => 0,
          )
          .then((held) =>
            this.deps.transport.send(from, {
              kind: 'heldReply',
              planId: msg.planId,
              conv: msg.conv,
              runId: msg.runId,
              held,
            }),
          )
          .catch(() => {});
        return;
      default:
        return; // coordinator-bound messages are not ours
    }
  }

  /** Stage 0: a turn starts (or restarts); its prompt is cut into chunks when it is its turn (see rowBudget). */
  private onStart(a: Active, from: string, msg: Extract<PipelineMessage, { kind: 'start' }>): void {
    const run = {
      runId: msg.runId,
      maxTokens: msg.maxTokens,
      eos: msg.eos,
      sampling: msg.sampling,
      owner: from,
      stopped: false,
    };
    a.runs.set(msg.conv, run);
    this.push(a, {
      conv: msg.conv,
      rows: msg.ids.length,
      alone: false,
      runId: msg.runId,
      owner: from,
      pos0: msg.pos0,
      input: Int32Array.from(msg.ids),
      index: msg.index0,
      run,
      partial: false,
      computeBeforeMs: 0,
      from: msg.from,
    });
  }

  private matches(planId: string): boolean {
    return this.active !== null && this.active.assign.planId === planId;
  }

  /** Queue a step (dropping what an older run of its conversation left queued) and make sure the pump runs. */
  private push(a: Active, step: Step): void {
    if (!step.verify) {
      const latest = a.latestRun.get(step.conv) ?? -1;
      if (step.runId < latest) return; // a restarted turn's old steps
      if (step.runId > latest) {
        a.latestRun.set(step.conv, step.runId);
        a.queue.drop(step.conv);
      }
    }
    a.busy.add(step.conv);
    if (step.rows === 1 && !step.verify) {
      const quiet = a.chunks.lastChunkAt < a.cadence.lastSeen(step.conv);
      const slowdown = a.cadence.seen(step.conv, quiet);
      if (slowdown !== null) a.chunks.decodeSlowdown(slowdown);
    }
    a.queue.push(step);
    this.reportQueue(a);
    if (!a.pumping) void this.pump(a);
  }

  /** Run passes while steps are queued: each pass is what the fair queue hands out (one step per conversation). */
  private async pump(a: Active): Promise<void> {
    a.pumping = true;
    try {
      while (this.active === a && a.queue.size > 0) {
        const holdMs = this.holdMs(a);
        if (holdMs > 0) {
          if (a.holdTimer !== null) clearTimeout(a.holdTimer);
          a.holdTimer = setTimeout(() => {
            a.holdTimer = null;
            if (!a.pumping) void this.pump(a);
          }, holdMs);
          break;
        }
        const batch = a.queue.next(this.rowBudget(a), splitStep);
        this.reportQueue(a);
        try {
          await this.runPass(a, batch);
        } catch (e) {
          this.fail(e, batch);
        }
      }
    } finally {
      a.pumping = false;
      this.dropOrphans(a);
    }
  }

  /**
   * Rows the next pass may hold: whole prompts while no conversation here is decoding; with others decoding, their
   * decode steps, short prompts whole (up to SHORT_PROMPT_ROWS: a question's first token should not wait seconds
   * behind others' answers), and a chunk of a long prompt when the chunk budget's time share allows one now.
   */
  private rowBudget(a: Active): number {
    if (!this.othersDecoding(a)) return MAX_PASS_ROWS;
    const heads = a.queue.heads();
    const decodeSteps = heads.filter((h) => h.rows <= 1).length;
    const shortRows = heads.filter((h) => h.rows > 1 && h.rows <= SHORT_PROMPT_ROWS).reduce((n, h) => n + h.rows, 0);
    return decodeSteps + shortRows + (a.chunks.waitMs() > 0 ? 0 : a.chunks.promptRows);
  }

  /**
   * How long to hold back a pass that would carry only prompt rows while others are in flight: until the chunk
   * budget's time share allows the next chunk, and while another conversation decoding here has its next step due,
   * so the chunk rides in that step's pass (one pass where there would be two, and that step never waits behind a
   * chunk). A conversation that went quiet stops counting (StepCadence).
   */
  private holdMs(a: Active): number {
    const heads = a.queue.heads();
    if (!this.othersDecoding(a) || heads.some((h) => h.alone || h.rows <= SHORT_PROMPT_ROWS)) return 0;
    const queued = new Set(heads.map((h) => h.conv));
    let hold = a.chunks.waitMs();
    for (const conv of a.busy) if (!queued.has(conv)) hold = Math.max(hold, a.cadence.dueWithinMs(conv));
    return hold;
  }

  /** Some conversation in flight here is decoding (prompts alone share passes whole; only decode steps are hurt). */
  private othersDecoding(a: Active): boolean {
    if (a.busy.size <= 1) return false;
    const prompting = new Set(
      a.queue
        .heads()
        .filter((h) => h.rows > 1)
        .map((h) => h.conv),
    );
    for (const conv of a.busy) if (!prompting.has(conv) && a.cadence.lastSeen(conv) > -Infinity) return true;
    return false;
  }

  private reportQueue(a: Active): void {
    this.deps.onEvent?.({ type: 'queue', depths: a.queue.depths(), conversations: a.busy.size });
  }

  private fail(e: unknown, steps: Step[] = []): void {
    // A tab of the plan is gone (a result could not be sent on): the coordinators re-plan and restart the turns;
    // failing them here would end answers that recovery can save.
    if (e instanceof ShoalError && e.code === 'ERR_PEER_GONE') return;
    const message = errorMessage(e);
    this.deps.onEvent?.({ type: 'error', message });
    const a = this.active;
    if (!a) return;
    const body = (conv?: string, runId?: number): PipelineMessage => ({
      kind: 'error',
      planId: a.assign.planId,
      message: `${this.deps.transport.selfId}: ${message}`,
      ...(conv !== undefined ? { conv, runId } : {}),
    });
    // A failed pass fails the turns in it (their owners are told); a failed load fails the plan for its assigner.
    if (steps.length === 0) void this.deps.transport.send(a.coordinator, body()).catch(() => {});
    for (const s of steps) void this.deps.transport.send(s.owner, body(s.conv, s.runId)).catch(() => {});
  }

  /**
   * A tab left: the turns it coordinated end here (queued steps dropped, caches freed), so no orphan work runs on
   * for a person who is gone. Its conversations are the ones named `<its id>/...`.
   */
  peerLeft(peer: string): void {
    const a = this.active;
    if (!a) return;
    for (const conv of [...a.busy, ...a.lastUsed.keys()]) {
      if (!conv.startsWith(`${peer}/`)) continue;
      a.queue.drop(conv);
      a.busy.delete(conv);
      a.runs.delete(conv);
      a.cadence.forget(conv);
      a.lastUsed.delete(conv);
      a.orphans.add(conv);
    }
    if (!a.pumping) this.dropOrphans(a);
    this.reportQueue(a);
  }

  /** Free the caches of conversations whose tab left, between passes (a pass in flight may still read them). */
  private dropOrphans(a: Active): void {
    const convs = [...a.orphans];
    a.orphans.clear();
    if (convs.length > 0)
      void a.stage.then(
        (s) => convs.forEach((c) => s.dropSequence(c)),
        () => undefined,
      );
  }

  /** Forget the stage, its weights and caches (`keepStage`: the next stage takes its weights over, then frees it). */
  drop(keepStage = false): void {
    this.flushTimeline();
    if (this.active?.holdTimer) clearTimeout(this.active.holdTimer);
    if (keepStage) {
      this.active = null;
      return;
    }
    void this.active?.stage.then(
      (s) => s.dispose(),
      () => undefined,
    );
    this.active = null;
  }

  private newActive(msg: Assign, from: string, index: number, range: StageAssignment, stage: Promise<Stage>): Active {
    return {
      assign: msg,
      coordinator: from,
      index,
      range,
      stage,
      queue: new FairQueue(),
      runs: new Map(),
      latestRun: new Map(),
      busy: new Set(),
      orphans: new Set(),
      lastUsed: new Map(),
      chunks: new ChunkBudget(MAX_BATCH_ROWS, this.clock),
      cadence: new StepCadence(this.clock),
      holdTimer: null,
      pumping: false,
    };
  }

  private onAssign(from: string, msg: Assign): void {
    this.adoptPlan(from, msg);
    // Work of this plan that came before its assignment (another sender's link was faster) runs now.
    if (this.matches(msg.planId))
      for (const e of this.early.release(msg.planId)) this.onMessage(e.from, e.msg, e.payload);
  }

  private adoptPlan(from: string, msg: Assign): void {
    this.early.seen(msg.planId);
    const prev = this.active;
    // Two tabs may plan at once: every tab keeps the newest plan (epoch, then plan id), so they all agree.
    if (prev && !planIsNewer(msg, prev.assign)) return;
    this.recorder.rebase(msg.clockOffsetMs, msg.runStartMs);
    const index = msg.stages.findIndex((s) => s.peer === this.deps.transport.selfId);
    const range = index >= 0 ? msg.stages[index] : null;
    // Same model, same layers: keep the loaded weights and every conversation's cache (a warm run).
    if (
      prev &&
      range &&
      prev.assign.modelUrl === msg.modelUrl &&
      prev.range.start === range.start &&
      prev.range.end === range.end
    ) {
      this.active = {
        ...this.newActive(msg, from, index, range, prev.stage),
        lastUsed: prev.lastUsed,
        chunks: prev.chunks,
        cadence: prev.cadence,
      };
      this.deps.onEvent?.({ type: 'assigned', range, index, of: msg.stages.length });
      return;
    }
    // Same model, other layers: the layers this tab already holds move to the new stage instead of being fetched
    // again (a re-plan after a loss moves only what changed hands).
    const previous = prev && range && prev.assign.modelUrl === msg.modelUrl ? prev.stage : null;
    this.drop(previous !== null);
    this.deps.onEvent?.({ type: 'assigned', range, index, of: msg.stages.length });
    if (!range) return;
    let resolveStage!: (s: Stage) => void, rejectStage!: (e: unknown) => void;
    const stage = new Promise<Stage>((res, rej) => {
      resolveStage = res;
      rejectStage = rej;
    });
    stage.catch(() => undefined);
    this.active = this.newActive(msg, from, index, range, stage);
    void this.load(msg, range, { resolve: resolveStage, reject: rejectStage }, previous).catch((e) => {
      rejectStage(e);
      this.fail(e);
    });
  }

  /** Every tab of the plan hears progress and timelines, so each page can show the mesh whoever planned it. */
  private tellMembers(msg: PipelineMessage): void {
    const a = this.active;
    if (!a) return;
    for (const m of new Set([a.coordinator, ...a.assign.members]))
      void this.deps.transport.send(m, msg).catch(() => {});
  }

  private async load(
    msg: Assign,
    range: StageAssignment,
    settle: { resolve: (s: Stage) => void; reject: (e: unknown) => void },
    previous: Promise<Stage> | null,
  ): Promise<void> {
    // Fetching starts as soon as the model header is read; the engine may still be starting (a tab that has not
    // finished profiling), so uploads queue behind it while the bytes keep coming.
    const mine = this.active!.stage;
    // A newer plan with the same layers keeps this stage (and this load); any other replaces it.
    const stillOurs = () => this.active?.stage === mine;
    const model = await this.deps.openModel(msg.modelUrl);
    // The stage this tab held before (its engine is up, so waiting for the engine costs nothing then).
    const prior = previous ? await previous.catch(() => null) : null;
    const old = prior && prior.backend === (await this.deps.backend()) ? prior : null;
    if (prior && !old) prior.dispose();
    const held = new Set(old?.heldLayers(range) ?? []);
    const nextStage = (backend: Backend): Stage => {
      const stage = new Stage(backend, model.spec, range, msg.maxSeq);
      old?.handOver(stage);
      old?.dispose();
      return stage;
    };
    if (!stillOurs()) {
      // Superseded while opening: the weights held so far pass on to whichever stage comes next.
      if (old) settle.resolve(old);
      else settle.reject(new ShoalError('ERR_PIPELINE', 'superseded by a newer plan'));
      return;
    }
    const isFirst = range.start === 0,
      isLast = range.end === model.spec.nLayers;
    const keepsEmbedding = isFirst && !!old?.isFirst && old.holdsEmbedding,
      keepsHead = isLast && !!old?.isLast && old.holdsHead;
    // Resolved even if superseded meanwhile: a newer plan's stage on this tab takes its weights over from it.
    const stageReady = this.deps.backend().then((backend) => {
      const stage = nextStage(backend);
      settle.resolve(stage);
      return stage;
    });
    const rec = this.recorder;
    const layersTotal = range.end - range.start + (isFirst ? 1 : 0) + (isLast ? 1 : 0);
    // Bytes this load moves: what the tab does not already hold.
    const totalBytes =
      (isFirst && !keepsEmbedding ? model.embeddingBytes() : 0) +
      (isLast && !keepsHead ? model.headBytes() : 0) +
      Array.from({ length: range.end - range.start }, (_, i) => range.start + i)
        .filter((l) => !held.has(l))
        .reduce((x, l) => x + model.layerBytes(l), 0);
    let loadedBytes = 0,
      layersLoaded = 0;
    const bySource: BySource = { origin: 0, cache: 0, peer: 0 };
    const progress = (bytes: number, unit?: LoadUnit) => {
      loadedBytes += bytes;
      layersLoaded++;
      if (unit) bySource[model.sourceOf(unit)?.source ?? 'origin'] += bytes;
      const planId = this.active?.assign.planId ?? msg.planId;
      const p = { planId, loadedBytes, totalBytes, layersLoaded, layersTotal, bySource: { ...bySource } };
      this.deps.onEvent?.({ type: 'progress', ...p });
      this.tellMembers({ kind: 'progress', ...p });
      this.sendTimeline();
    };
    let uploads: Promise<Stage> = stageReady;
    /** Upload in execution order, behind the engine's start, without holding up the next fetch. */
    const upload = (unit: LoadUnit, bytes: number, extra: Partial<Interval>, put: (s: Stage) => void) => {
      uploads = uploads.then(async (stage) => {
        if (stillOurs()) {
          await rec.time('upload', () => put(stage), extra);
          progress(bytes, unit);
        }
        return stage;
      });
    };
    /** Load one unit, its interval labelled with where the bytes came from (known once they came). */
    const fetchUnit = <T>(unit: LoadUnit, extra: Partial<Interval>, load: () => Promise<T>): Promise<T> =>
      rec.time('load', load, () => ({ ...extra, source: model.sourceOf(unit)?.source ?? 'origin' }));
    /** A tensor this tab already holds (handed over from its previous stage): counted as loaded, nothing moves. */
    const alreadyHere = () => {
      uploads = uploads.then((stage) => {
        if (stillOurs()) progress(0);
        return stage;
      });
    };
    try {
      if (keepsEmbedding) alreadyHere();
      else if (isFirst) {
        const t = await fetchUnit(EMBED_UNIT, { label: 'embedding', bytes: model.embeddingBytes() }, () =>
          model.loadEmbedding(),
        );
        upload(EMBED_UNIT, t.data.byteLength, { label: 'embedding' }, (s) => s.setEmbedding(t));
      }
      for (let l = range.start; l < range.end; l++) {
        if (held.has(l)) {
          alreadyHere();
          continue;
        }
        const bytes = model.layerBytes(l);
        // timeline layers are 1-based, as in plans
        const tensors = await fetchUnit(layerUnit(l), { layer: l + 1, bytes }, () => model.loadLayer(l));
        if (!stillOurs()) return; // dropped meanwhile
        upload(layerUnit(l), bytes, { layer: l + 1, bytes }, (s) => s.setLayer(l, tensors));
      }
      if (keepsHead) alreadyHere();
      else if (isLast) {
        const [norm, head] = await fetchUnit(HEAD_UNIT, { label: 'head', bytes: model.headBytes() }, () =>
          model.loadHead(),
        );
        if (!stillOurs()) return;
        upload(HEAD_UNIT, model.headBytes(), { label: 'head' }, (s) => s.setHead(norm, head));
      }
      await uploads;
    } catch (e) {
      void stageReady.then(
        (s) => s.failLoad(e),
        () => undefined,
      );
      throw e;
    }
  }

  /**
   * Make each step's conversation hold exactly the positions before its pos0 here: roll back what is ahead (an
   * edited history, a rejected draft), make room for a new conversation, and ask the owner to rebuild one whose
   * cache is gone (evicted, or the tab took the layers over mid-conversation). Returns the steps that can run.
   */
  private prepare(a: Active, stage: Stage, steps: Step[]): Step[] {
    return steps.filter((s) => {
      if (s.verify?.branch) {
        const held = stage.hasSequence(s.conv) ? stage.sequence(s.conv).pos : 0;
        if (s.pos0 > held)
          throw new ShoalError(
            'ERR_PIPELINE',
            `a branch at ${s.pos0} starts past the ${held} positions this stage holds`,
          );
        return true;
      }
      if (!stage.hasSequence(s.conv)) {
        try {
          this.makeRoom(a, stage);
        } catch (e) {
          a.queue.drop(s.conv);
          this.fail(e, [s]);
          return false;
        }
      }
      const held = stage.sequence(s.conv).pos;
      if (s.pos0 < held) stage.rollback(s.pos0, s.conv);
      if (s.pos0 <= held) return true;
      a.queue.drop(s.conv);
      const resync: PipelineMessage = { kind: 'resync', planId: a.assign.planId, conv: s.conv, runId: s.runId, held };
      void this.deps.transport.send(s.owner, resync).catch(() => {});
      return false;
    });
  }

  /**
   * Memory holds the caches of assign.maxConversations conversations: past that, the idle one unused longest is
   * dropped (its owner rebuilds it from its tokens if it comes back: a slower first token, nothing lost).
   */
  private makeRoom(a: Active, stage: Stage): void {
    const max = a.assign.maxConversations ?? DEFAULT_MAX_CONVERSATIONS;
    const held = stage.sequenceIds();
    if (held.length < max) return;
    const idle = held.filter((c) => !a.busy.has(c)).sort((x, y) => (a.lastUsed.get(x) ?? 0) - (a.lastUsed.get(y) ?? 0));
    if (idle.length === 0) {
      throw new ShoalError(
        'ERR_BUSY',
        `this stage holds the caches of ${max} conversations in flight, the most the plan counts on; ` +
          'wait for one to finish, or re-plan with more conversations',
      );
    }
    stage.dropSequence(idle[0]);
    a.lastUsed.delete(idle[0]);
  }

  /** One pass over a batch of steps (one per conversation), then each result to where it goes. */
  private async runPass(a: Active, batch: Step[]): Promise<void> {
    const stage = await a.stage;
    if (this.active !== a) return;
    const steps = this.prepare(a, stage, batch);
    if (steps.length === 0) return;
    const rec = this.recorder;
    let t0 = nowMs(),
      computeMs = 0;
    const rows = steps.reduce((n, s) => n + s.rows, 0);
    const label = {
      conv: steps.map((s) => s.conv).join(','),
      label: steps.length > 1 ? `batch of ${steps.length}, ${rows} rows` : `${rows} rows`,
    };
    const extra = { tokenIndex: steps[0].index, ...label };
    const onWait = (_layer: number, phase: 'start' | 'end') => {
      const t = nowMs();
      if (phase === 'start') {
        if (t > t0) rec.add('compute', t0, t, extra);
        computeMs += t - t0;
      }
      t0 = t;
    };
    const items = steps.map((s) => this.batchItem(stage, s));
    const branch = steps.length === 1 && steps[0].verify?.branch ? steps[0] : null;
    if (branch) await stage.beginBranch(branch.pos0, branch.rows, branch.conv);
    const out = await stage
      .forwardBatch(items, { onWait })
      .finally(() => (branch ? stage.endBranch(branch.conv) : undefined));
    let t1 = nowMs();
    computeMs = Math.max(0, computeMs + t1 - t0 - out.yieldedMs); // other tasks' time is not this stage's compute
    let passMs = computeMs;
    if (this.deps.afterCompute) {
      await this.deps.afterCompute(computeMs);
      const t = nowMs();
      passMs += t - t1; // an emulated slowdown's wait is this stage's compute too
      t1 = t;
    }
    rec.add('compute', t0, t1, extra);
    const decodeSteps = steps.filter((s) => s.rows === 1 && !s.partial).length;
    // A prompt alone here runs whole and says nothing about sharing the stage.
    if (decodeSteps > 0 || this.othersDecoding(a)) a.chunks.observe(decodeSteps, rows - decodeSteps, passMs);
    for (const s of steps) a.lastUsed.set(s.conv, t1);
    await Promise.all(steps.map((s, i) => this.deliver(a, stage, s, out.items[i], passMs)));
  }

  private batchItem(stage: Stage, s: Step): BatchItem {
    const greedy = s.run.sampling.temperature <= 0;
    if (!stage.isLast || s.partial) return { seq: s.conv, input: s.input, logits: 'none' };
    if (s.verify) return { seq: s.conv, input: s.input, logits: 'all' };
    return { seq: s.conv, input: s.input, logits: greedy ? 'none' : 'last', argmax: greedy };
  }

  /** A step's result: activations downstream, or (last stage) the verification answer or the sampled token. */
  private async deliver(
    a: Active,
    stage: Stage,
    s: Step,
    out: { hidden?: Float32Array; logits?: Float32Array; nextToken?: number },
    passMs: number,
  ): Promise<void> {
    const computeSoFarMs = s.computeBeforeMs + passMs;
    if (!stage.isLast) await this.sendActivations(a, s, out.hidden!, computeSoFarMs);
    else if (s.verify) await this.sendVerified(a, stage, s, s.verify, out.logits!, computeSoFarMs);
    else if (!s.partial) await this.sendToken(a, stage, s, out);
  }

  /** Activations to the next stage, with the step's run and (when verifying) the compute so far. */
  private async sendActivations(a: Active, s: Step, out: Float32Array, computeSoFarMs: number): Promise<void> {
    const next = a.assign.stages[a.index + 1];
    // A restart: the next stage still holds the positions before its resume point, so those rows stay here.
    const skip = Math.max(0, (s.from?.[a.index + 1] ?? 0) - s.pos0);
    if (skip >= s.rows) return; // a prompt chunk the next stage holds entirely (never the last: it has the new row)
    const hidden = skip > 0 ? out.subarray((skip * out.length) / s.rows) : out;
    const act: Extract<PipelineMessage, { kind: 'act' }> = {
      kind: 'act',
      planId: a.assign.planId,
      conv: s.conv,
      owner: s.owner,
      runId: s.runId,
      pos0: s.pos0 + skip,
      rows: s.rows - skip,
      index: s.index,
      maxTokens: s.run.maxTokens,
      eos: s.run.eos,
      sampling: s.run.sampling,
      sentAtSec: this.recorder.toSec(nowMs()),
    };
    if (s.partial) act.partial = true;
    if (s.from) act.from = s.from;
    if (s.verify) {
      act.verify = s.verify;
      act.computeMs = computeSoFarMs;
    }
    await this.dispatch(() => this.deps.transport.send(next.peer, act, hidden), {
      tokenIndex: s.index,
      bytes: hidden.byteLength,
      conv: s.conv,
    });
  }

  /** The target's next-token prediction after each kept position; logits rows too when the controller samples. */
  private async sendVerified(
    a: Active,
    stage: Stage,
    s: Step,
    verify: VerifyFlags,
    allLogits: Float32Array,
    computeSoFarMs: number,
  ): Promise<void> {
    const V = stage.spec.vocabSize;
    const logits = allLogits.subarray(verify.keepFrom * V);
    const tokens = Array.from({ length: s.rows - verify.keepFrom }, (_, r) => argmax(logits, r * V, V));
    const msg: PipelineMessage = {
      kind: 'verified',
      planId: a.assign.planId,
      conv: s.conv,
      runId: s.runId,
      pos0: s.pos0,
      tokens,
      computeMs: computeSoFarMs,
    };
    await this.dispatch(() => this.deps.transport.send(s.owner, msg, verify.wantLogits ? logits.slice() : undefined), {
      tokenIndex: s.index,
      conv: s.conv,
    });
  }

  /** The sampled (or greedy) token, to the turn's owner and to the first stage, which feeds it back in. */
  private async sendToken(
    a: Active,
    stage: Stage,
    s: Step,
    out: { logits?: Float32Array; nextToken?: number },
  ): Promise<void> {
    const greedy = s.run.sampling.temperature <= 0;
    // Token k of a turn is drawn from draw k of the seed, so a restarted turn samples as an uninterrupted one.
    const token = greedy ? out.nextToken! : new Sampler(s.run.sampling).sample(out.logits!, s.index);
    const pos = s.pos0 + s.rows - 1;
    const done = s.run.eos.includes(token) || s.index + 1 >= s.run.maxTokens || pos + 2 > stage.maxSeq;
    const msg: PipelineMessage = {
      kind: 'token',
      planId: a.assign.planId,
      conv: s.conv,
      runId: s.runId,
      index: s.index,
      pos,
      token,
      done,
    };
    const first = a.assign.stages[0].peer;
    await this.dispatch(
      () =>
        Promise.all([
          this.deps.transport.send(s.owner, msg),
          first !== s.owner ? this.deps.transport.send(first, msg) : Promise.resolve(),
        ]),
      { tokenIndex: s.index, conv: s.conv },
    );
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
    const settled = sent
      .then(
        () => undefined,
        (e) => this.fail(e),
      )
      .then(() => this.sendTimeline());
    this.sending.push(settled);
    void settled.then(() => {
      this.sending = this.sending.filter((p) => p !== settled);
    });
    while (this.sending.length > MAX_SENDS_IN_FLIGHT) await this.sending[0];
  }

  /**
   * Report recorded intervals to the plan's tabs, at most one message per TIMELINE_FLUSH_MS (the rest are sent by
   * a timer): with short steps (decode tokens, speculative rounds sent ahead) a message per step kept the person's
   * tab busy handling timeline traffic between its own draft steps.
   */
  private sendTimeline(): void {
    if (this.timelineTimer !== null) return;
    const waitMs = this.lastTimelineMs + TIMELINE_FLUSH_MS - nowMs();
    if (waitMs > 0) {
      this.timelineTimer = setTimeout(() => {
        this.timelineTimer = null;
        this.flushTimeline();
      }, waitMs);
      return;
    }
    this.flushTimeline();
  }

  private flushTimeline(): void {
    if (this.timelineTimer !== null) {
      clearTimeout(this.timelineTimer);
      this.timelineTimer = null;
    }
    this.lastTimelineMs = nowMs();
    const a = this.active;
    const intervals = this.recorder.drain();
    if (!a || intervals.length === 0) return;
    this.tellMembers({ kind: 'timeline', planId: a.assign.planId, intervals, queued: a.queue.size });
  }
}

/** A verification pass samples nothing: the controller reads the target's argmax (and logits) itself. */
const VERIFY_RUN: Omit<RunInfo, 'runId'> = { maxTokens: 0, eos: [], sampling: { temperature: 0, topP: 1, seed: 0 } };

/** Cut a step's first `rows` positions off as a step of their own (a prompt chunk; nothing is sampled after it). */
function splitStep(s: Step, rows: number): [Step, Step] {
  const width = s.input.length / s.rows;
  return [
    { ...s, rows, input: s.input.subarray(0, rows * width), partial: true },
    { ...s, rows: s.rows - rows, pos0: s.pos0 + rows, input: s.input.subarray(rows * width) },
  ];
}
