// One tab's pipeline session: its stage runner (always on), and the coordinator for the conversations started in
// this tab, which plans over the room's live profiles (or reuses the plan another tab made), assigns layers and
// streams the chat. Several conversations, from this tab and others, share the mesh at once.
import type { Backend } from '../backend/types.ts';
import { ShoalError, errorMessage } from '../errors.ts';
import { Emitter } from '../mesh/emitter.ts';
import type { Mesh } from '../mesh/mesh.ts';
import type { PlannerApi } from '../planner/api.ts';
import { wrapPlanner, type RemotePlanner } from '../planner/remote.ts';
import type { Plan, StrategyName } from '../planner/types.ts';
import type { Timeline } from '../planner/timeline.ts';
import type { EmulationKnobs } from '../profile/types.ts';
import { loadTokenizer } from '../tokenizer/index.ts';
import type { ChatMessage, Tokenizer } from '../tokenizer/index.ts';
import { modelBaseUrl } from '../weights/model.ts';
import { openModelAt } from '../weights/locate.ts';
import type { ModelSource } from '../weights/model.ts';
import { Coordinator, DEFAULT_CONV } from './coordinator.ts';
import type { CoordinatorEvent, GenerateResult } from './coordinator.ts';
import { DEFAULT_MAX_CONVERSATIONS } from './messages.ts';
import type { SamplingConfig, StageAssignment } from './messages.ts';
import { meshTransport } from './meshTransport.ts';
import {
  FALLBACK_PROFILE,
  assignmentsToPlan,
  buildScenario,
  planToAssignments,
  repairPlan,
  tabDevice,
} from './scenario.ts';
import { WeightSources } from './weightSources.ts';
import type { Scenario } from '../planner/types.ts';
import type { TabInfo } from './scenario.ts';
import { StageRunner } from './stageRunner.ts';
import type { StageEvent } from './stageRunner.ts';

export interface SessionOptions {
  mesh: Mesh;
  knobs: EmulationKnobs;
  backend: () => Promise<Backend>;
  /** Compute slowdown (emulation) after each step. */
  afterCompute?: (computeMs: number) => Promise<void>;
  planner?: RemotePlanner | PlannerApi;
  /** Where weights may come from besides the origin (default: the persistent cache and peers both on). */
  weights?: { cache?: boolean; peers?: boolean; corruptServe?: boolean };
}

export interface TurnOptions {
  maxTokens: number;
  sampling?: SamplingConfig;
  strategy: StrategyName;
  /** Drop every tab's weights and caches first and time the first token from the assignment. */
  cold?: boolean;
  /** With cold: keep the persistent weight caches (memory starts empty, the cache stays warm). */
  keepCache?: boolean;
  /** Wait until every stage has loaded everything before computing (the no-hiding baseline). */
  loadFirst?: boolean;
  /** Force these stages instead of asking the planner (tests, experiments). */
  stages?: StageAssignment[];
  /** The conversation this turn continues (default: the tab's own chat). Turns of different ones run at once. */
  conv?: string;
  /** Conversations the plan keeps caches for on every stage (default DEFAULT_MAX_CONVERSATIONS). */
  maxConversations?: number;
  onText?: (textSoFar: string, tokens: number[]) => void;
}

export interface TurnResult extends GenerateResult {
  text: string;
  plan: Plan | null;
  stages: StageAssignment[];
}

export type SessionEvent =
  | { type: 'stage'; event: StageEvent }
  | { type: 'coordinator'; event: CoordinatorEvent }
  | { type: 'plan'; plan: Plan | null; stages: StageAssignment[]; planned: Timeline | null }
  | { type: 'peer-left'; peerId: string; wasCoordinator: boolean }
  /** A line for the page: something the mesh did on its own (a re-plan while turns were in flight). */
  | { type: 'notice'; message: string }
  | { type: 'turn'; result: TurnResult; cold: boolean };

/** A re-plan after a loss sizes KV for this context (the planner's scenario; the stages grow caches as needed). */
const RECOVERY_PLAN = { promptTokens: 256, maxTokens: 128 };
const RECOVERY_ATTEMPTS = 3;
/** A tab that joins is used from the next turn only if the planner predicts at least this gain per token. */
export const JOIN_GAIN = 0.1;

const MODEL_BYTES_PER_PARAM: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2 };

export class Session {
  readonly runner: StageRunner;
  readonly coordinator: Coordinator;
  /** This tab's weight sources: its persistent cache, its peers' layers. */
  readonly sources: WeightSources;
  readonly conversation: ChatMessage[] = [];
  private planner: RemotePlanner | PlannerApi | null;
  private tokenizers = new Map<string, Promise<Tokenizer>>();
  private models = new Map<string, Promise<ModelSource>>();
  private lastPlan: Plan | null = null;
  private readonly events = new Emitter<{ event: [SessionEvent] }>();
  /** The tab that last assigned us layers (to say so plainly if it leaves). */
  private coordinatorPeer: string | null = null;
  /** Conversations with a turn in flight from this tab. */
  private readonly busyConvs = new Set<string>();
  /** A recovery re-plan in progress here, and whether another loss came during it. */
  private recovering = false;
  private recoverAgain = false;
  /** The room (sorted ids) for which the current plan was kept although tabs had joined (no gain worth a reload). */
  private keptDespite = '';
  /** The plan being made here: the next ensurePlan waits for it. */
  private planning: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: SessionOptions) {
    const transport = meshTransport(opts.mesh);
    this.sources = new WeightSources({
      mesh: opts.mesh,
      ...opts.weights,
      originBytesPerSec: () =>
        opts.knobs.loadBytesPerSec ||
        opts.mesh.profileOf(opts.mesh.peerId)?.loadBytesPerSec ||
        FALLBACK_PROFILE.loadBytesPerSec,
      onNotice: (message) => this.emit({ type: 'notice', message }),
    });
    this.runner = new StageRunner({
      transport,
      backend: opts.backend,
      openModel: (url) => this.openModel(url),
      afterCompute: opts.afterCompute,
      onEvent: (event) => {
        if (event.type !== 'queue' && event.type !== 'error') this.noteHoldings();
        this.emit({ type: 'stage', event });
      },
    });
    transport.onMessage((from, msg) => {
      if (msg.kind === 'assign') {
        this.coordinatorPeer = from;
        this.sources.adoptPlan(msg.modelUrl, msg.hashes);
      }
      if (msg.kind === 'drop' && msg.cache) {
        this.sources.share.forgetPeers();
        void this.sources.clearCache();
      }
    });
    this.coordinator = new Coordinator(transport);
    this.coordinator.on((event) => {
      if (event.type === 'plan') this.keptDespite = '';
      this.emit({ type: 'coordinator', event });
    });
    this.planner = opts.planner ?? null;
    opts.mesh.on('peer-left', (peerId) => {
      this.runner.peerLeft(peerId);
      this.coordinator.peerLeft(peerId);
      this.emit({ type: 'peer-left', peerId, wasCoordinator: peerId === this.coordinatorPeer });
      // The plan is broken (by this loss, or an earlier one whose re-plan is under way): the room re-plans.
      if (this.coordinator.brokenPlanId) this.recover();
    });
  }

  on(fn: (e: SessionEvent) => void): () => void {
    return this.events.on('event', fn);
  }

  private emit(e: SessionEvent): void {
    this.events.emit('event', e);
  }

  /** True while this tab's own chat has a turn in flight. */
  get busy(): boolean {
    return this.busyConvs.has(DEFAULT_CONV);
  }

  /** What this tab's stage holds now, told to the room (peers fetch from it, planners count it). */
  private noteHoldings(): void {
    void this.runner.heldUnits().then((h) => {
      if (h) this.sources.stageHolds(h.modelUrl, h.units);
      else this.sources.dropped();
    });
  }

  /**
   * Model folders are opened once per tab (config + headers); the loading cap is this tab's emulation knob. Loads
   * go through the tab's cache and its peers before the origin.
   */
  openModel(url: string): Promise<ModelSource> {
    let m = this.models.get(url);
    if (!m) {
      const cap = this.opts.knobs.loadBytesPerSec;
      // a model folder or GGUF file(s)
      m = openModelAt(url, cap ? { maxBytesPerSec: cap } : {}).then(async (model) => {
        await this.sources.attach(url, model);
        return model;
      });
      m.catch(() => this.models.delete(url));
      this.models.set(url, m);
    }
    return m;
  }

  tokenizer(url: string): Promise<Tokenizer> {
    let t = this.tokenizers.get(url);
    if (!t) {
      t = loadTokenizer(url);
      t.catch(() => this.tokenizers.delete(url));
      this.tokenizers.set(url, t);
    }
    return t;
  }

  /** Every tab of the room with an open link, this one first. */
  members(): TabInfo[] {
    const mesh = this.opts.mesh;
    const self: TabInfo = { peerId: mesh.peerId, profile: mesh.profileOf(mesh.peerId), links: mesh.linkStats() };
    return [self, ...mesh.peers().map((p) => ({ peerId: p.peerId, profile: p.profile, links: p.links }))];
  }

  private getPlanner(): RemotePlanner | PlannerApi {
    if (!this.planner) {
      const worker = new Worker(new URL('../planner/planner.worker.ts', import.meta.url), { type: 'module' });
      this.planner = wrapPlanner(worker);
    }
    return this.planner;
  }

  /**
   * Plan over the room (or take forced stages) and assign; a warm plan with the same inputs is reused. Turns started
   * here at once (API requests) plan one after another: the first plans, the others find its plan fits.
   */
  ensurePlan(
    modelLocation: string,
    promptTokens: number,
    opts: TurnOptions,
  ): Promise<{ assigned: boolean; stages: StageAssignment[] }> {
    const next = this.planning.then(() => this.planNow(modelLocation, promptTokens, opts));
    this.planning = next.catch(() => undefined);
    return next;
  }

  private async planNow(
    modelLocation: string,
    promptTokens: number,
    opts: TurnOptions,
  ): Promise<{ assigned: boolean; stages: StageAssignment[] }> {
    const modelUrl = modelBaseUrl(modelLocation);
    const tabs = this.members();
    if (!opts.cold && this.planFits(modelUrl, tabs, opts)) return { assigned: false, stages: this.coordinator.stages };
    const model = await this.openModel(modelUrl);
    let plan: Plan | null = null;
    let planned: Timeline | null = null;
    let stages: StageAssignment[];
    if (opts.stages) stages = opts.stages;
    else {
      const scenario = this.scenario(modelUrl, model, tabs, promptTokens, opts);
      const planner = this.getPlanner();
      plan = await planner.plan(scenario, opts.strategy);
      if (!opts.cold && plan.feasible && !(await this.worthJoining(modelUrl, tabs, opts, scenario, plan)))
        return { assigned: false, stages: this.coordinator.stages };
      if (!plan.feasible)
        throw new ShoalError(
          'ERR_DOES_NOT_FIT',
          `the ${opts.strategy} plan does not fit the tabs' memory; ` +
            'open the page on more devices or pick a smaller model',
        );
      stages = planToAssignments(plan);
      planned = (await planner.simulate(scenario, plan)).timeline;
    }
    const inFlight = this.coordinator.turnsInFlight;
    if (inFlight > 0)
      this.emit({
        type: 'notice',
        message: `re-planning: ${inFlight} turn(s) in flight continue on the new plan from their last token`,
      });
    if (opts.cold)
      await this.coordinator.drop(
        tabs.map((t) => t.peerId),
        { cache: !opts.keepCache },
      );
    const maxSeq = Math.min(model.spec.maxSeqLen, 4096);
    await this.coordinator.assign(
      modelUrl,
      stages,
      tabs.map((t) => t.peerId),
      maxSeq,
      { strategy: opts.strategy, maxConversations: opts.maxConversations, hashes: this.sources.hashesFor(modelUrl) },
    );
    this.lastPlan = plan;
    this.emit({ type: 'plan', plan, stages, planned });
    return { assigned: true, stages };
  }

  /**
   * A tab holding layers left: the room re-plans over the tabs that remain (and any that joined), once. The
   * remaining member of the broken plan with the smallest id does it; every tab adopts the plan and restarts its
   * turns on it from their tokens. A loss during the re-plan (or of the tab doing it) starts another; a plan that
   * cannot fit ends every waiting turn with its text so far.
   */
  private recover(): void {
    if (this.recovering) {
      this.recoverAgain = true;
      return;
    }
    this.recovering = true;
    void this.replanAfterLoss().finally(() => {
      this.recovering = false;
      if (this.recoverAgain) {
        this.recoverAgain = false;
        if (this.coordinator.brokenPlanId || !this.planAlive()) this.recover();
      }
    });
  }

  /** Ids of the tabs in the room now, this one included. */
  private present(): Set<string> {
    return new Set(this.members().map((t) => t.peerId));
  }

  private planAlive(): boolean {
    const alive = this.present();
    return this.coordinator.stages.every((s) => alive.has(s.peer));
  }

  private async replanAfterLoss(): Promise<void> {
    const c = this.coordinator;
    for (let attempt = 0; attempt < RECOVERY_ATTEMPTS; attempt++) {
      const alive = this.present();
      const leader = c.members.filter((m) => alive.has(m)).sort()[0];
      if (leader !== this.opts.mesh.peerId) return; // that tab re-plans; this one adopts its plan
      const opts: TurnOptions = {
        maxTokens: RECOVERY_PLAN.maxTokens,
        strategy: (c.strategy || 'even') as StrategyName,
        maxConversations: c.maxConversations,
      };
      try {
        opts.stages = (await this.repairFits(alive, opts)) ?? undefined;
        await this.ensurePlan(c.modelUrl, RECOVERY_PLAN.promptTokens, opts);
        if (this.planAlive()) return;
      } catch (e) {
        if (e instanceof ShoalError && e.code === 'ERR_DOES_NOT_FIT') {
          c.abandonRecovery(`no plan fits the remaining tabs: ${e.message}`, [...alive]);
          return;
        }
      }
    }
    c.abandonRecovery(
      `re-planning over the remaining tabs failed ${RECOVERY_ATTEMPTS} times`,
      this.opts.mesh.peers().map((p) => p.peerId),
    );
  }

  /** The planner's view: the room's profiles, the model's real bytes, and where each tab gets each unit fastest. */
  private scenario(
    modelUrl: string,
    model: ModelSource,
    tabs: TabInfo[],
    promptTokens: number,
    opts: TurnOptions,
  ): Scenario {
    const dtype = typeof model.config.torch_dtype === 'string' ? model.config.torch_dtype : 'bfloat16';
    const scenario = buildScenario(
      model.config,
      MODEL_BYTES_PER_PARAM[dtype] ?? 2,
      tabs,
      promptTokens,
      opts.maxTokens,
      opts.maxConversations ?? DEFAULT_MAX_CONVERSATIONS,
      // What the files really hold (GGUF blocks, mixed dtypes), not parameters x the config's dtype.
      {
        layers: Array.from({ length: model.spec.nLayers }, (_, l) => model.layerBytes(l)),
        embedding: model.embeddingBytes(),
        head: model.headBytes() + model.finalNormBytes(),
      },
    );
    const dropping = !opts.cold ? 'nothing' : opts.keepCache ? 'memory' : 'all';
    const rates = this.sources.unitRates(modelUrl, model, tabs, (t) => tabDevice(t).loadBytesPerSec, dropping);
    for (const dev of scenario.devices) {
      const r = rates.get(dev.id);
      if (r && (r.embedding || r.head || Object.keys(r.layers ?? {}).length)) dev.unitBytesPerSec = r;
    }
    return scenario;
  }

  /**
   * Tabs joined since the current plan (none of its tabs left, same model and strategy): the plan changes only if
   * the planner predicts the new one at least JOIN_GAIN faster per token, since a change reloads layers. Either
   * way the page says what was decided. True when the new plan should be taken.
   */
  private async worthJoining(
    modelUrl: string,
    tabs: TabInfo[],
    opts: TurnOptions,
    scenario: Scenario,
    next: Plan,
  ): Promise<boolean> {
    const c = this.coordinator;
    const present = new Set(tabs.map((t) => t.peerId));
    const joined = tabs.filter((t) => !c.members.includes(t.peerId)).length;
    if (!c.planId || c.modelUrl !== modelUrl || c.strategy !== opts.strategy || joined === 0) return true;
    if (!c.members.every((m) => present.has(m))) return true;
    const planner = this.getPlanner();
    const current = assignmentsToPlan(c.stages);
    const [now, then] = await Promise.all([planner.simulate(scenario, current), planner.simulate(scenario, next)]);
    const gain = 1 - then.perTokenSeconds / now.perTokenSeconds;
    const take = gain >= JOIN_GAIN;
    const pct = `${Math.round(gain * 100)}%`;
    this.emit({
      type: 'notice',
      message:
        `${joined} tab${joined === 1 ? '' : 's'} joined: ` +
        (take
          ? `re-planning, predicted ${pct} faster per token`
          : `keeping the current plan (predicted gain ${pct}, under ${JOIN_GAIN * 100}%)`),
    });
    if (!take) this.keptDespite = [...present].sort().join(',');
    return take;
  }

  /**
   * The broken plan repaired (the lost layers to a surviving neighbour: only they move) if the planner says it fits
   * the tabs' memory; null: plan afresh over the room.
   */
  private async repairFits(alive: Set<string>, opts: TurnOptions): Promise<StageAssignment[] | null> {
    const c = this.coordinator;
    const repaired = repairPlan(c.stages, alive);
    if (!repaired) return null;
    const model = await this.openModel(c.modelUrl);
    const scenario = this.scenario(c.modelUrl, model, this.members(), RECOVERY_PLAN.promptTokens, opts);
    const check = await this.getPlanner().evaluate(scenario, assignmentsToPlan(repaired), opts.strategy);
    return check.feasible ? repaired : null;
  }

  /**
   * The room's current plan (made here or adopted from another tab) serves this turn: same model, same tabs, and
   * the forced stages or the strategy asked for. Then no tab reloads anything and turns in flight go on untouched.
   */
  private planFits(modelUrl: string, tabs: TabInfo[], opts: TurnOptions): boolean {
    const c = this.coordinator;
    if (!c.planId || c.modelUrl !== modelUrl) return false;
    const room = tabs
      .map((t) => t.peerId)
      .sort()
      .join(',');
    if ([...c.members].sort().join(',') !== room && this.keptDespite !== room) return false;
    return opts.stages ? JSON.stringify(opts.stages) === JSON.stringify(c.stages) : c.strategy === opts.strategy;
  }

  /** Generate from raw ids (tests and benchmarks): same path as chat, without the template. */
  async generateIds(modelLocation: string, ids: number[], opts: TurnOptions): Promise<TurnResult> {
    const conv = opts.conv ?? DEFAULT_CONV;
    if (this.busyConvs.has(conv))
      throw new ShoalError('ERR_PIPELINE', 'a turn of this conversation is already running in this tab');
    this.busyConvs.add(conv);
    try {
      const model = await this.openModel(modelBaseUrl(modelLocation));
      const { assigned, stages } = await this.ensurePlan(modelLocation, ids.length, opts);
      if (opts.loadFirst) await this.coordinator.whenLoaded();
      const tok = await this.tokenizer(modelBaseUrl(modelLocation)).catch(() => null);
      const collected: number[] = [];
      const promise = this.coordinator.generate(ids, {
        maxTokens: opts.maxTokens,
        eos: model.spec.eosTokenIds,
        sampling: opts.sampling,
        conv,
        onToken: (t) => {
          collected.push(t);
          opts.onText?.(tok ? tok.decode(collected) : '', collected);
        },
      });
      if (assigned && opts.cold) this.coordinator.startClockAtAssignment(conv);
      const r = await promise;
      const result: TurnResult = { ...r, text: tok ? tok.decode(r.tokens) : '', plan: this.lastPlan, stages };
      this.emit({ type: 'turn', result, cold: !!opts.cold });
      return result;
    } finally {
      this.busyConvs.delete(conv);
    }
  }

  /** One chat turn: the whole conversation through the chat template; the cached prefix is reused. */
  async chat(modelLocation: string, userText: string, opts: TurnOptions): Promise<TurnResult> {
    const url = modelBaseUrl(modelLocation);
    const tok = await this.tokenizer(url);
    this.conversation.push({ role: 'user', content: userText });
    try {
      const ids = tok.applyChatTemplate(this.conversation, { addGenerationPrompt: true });
      const r = await this.generateIds(modelLocation, ids, opts);
      const answer = r.stoppedBy === 'eos' ? r.tokens.slice(0, -1) : r.tokens; // the template closes the turn itself
      this.conversation.push({ role: 'assistant', content: tok.decode(answer) });
      return r;
    } catch (e) {
      this.conversation.pop();
      throw new ShoalError('ERR_PIPELINE', errorMessage(e), { cause: e });
    }
  }

  stop(conv?: string): void {
    this.coordinator.stop(conv);
  }

  /** Forget the conversation (the caches are rebuilt from the next prompt). */
  newConversation(): void {
    this.conversation.length = 0;
  }
}
