// Speculative decoding over the pipeline (issue 8, PAPERS.md section 3): the draft in this tab proposes gamma
// tokens, the target across the mesh verifies them in one pass, the accepted prefix plus the target's own token
// is emitted. Parallel mode keeps drafting ahead while a verification is in flight, on the bet that it is accepted;
// a rejection discards that work (the draft's cache rolls back by common prefix, the stages' by the next pos0).
import { ShoalError } from '../errors.ts';
import { seededRandom, sampleFrom } from '../model/sampler.ts';
import type { Coordinator, VerifyResult } from '../pipeline/coordinator.ts';
import type { SamplingConfig } from '../pipeline/messages.ts';
import type { LocalModel } from '../model/localModel.ts';
import { acceptGreedy, acceptSampled, samplingProbs } from './acceptance.ts';
import type { Decision } from './acceptance.ts';
import { DraftLengthController } from './draftLength.ts';
import { alternatives, DEFAULT_HEDGES, HEDGE_CHOICES, HedgeCalibrator, HedgePolicy } from './hedge.ts';
import type { Hedge, HedgeLine, HedgePick } from './hedge.ts';
import { performanceClock, track } from './clock.ts';
import type { Clock, Sent } from './clock.ts';
import { RoundScheduler } from './rounds.ts';
import type { Drafted, Round } from './rounds.ts';

export interface SpecOptions {
  maxTokens: number;
  eos: number[];
  /** temperature 0 (default): greedy, exactly the target's output. */
  sampling?: SamplingConfig;
  /** A fixed draft length, or 'auto' to adapt it every round. */
  gamma: number | 'auto';
  gammaMax?: number;
  /**
   * Keep drafting while a verification is in flight, and send the next round as soon as its drafts are ready, on
   * the bet that the rounds in flight are accepted (the stages run them in order; a rejection drops the later ones).
   */
  parallel: boolean;
  /**
   * Parallel: most verification rounds in flight at once (1 = draft ahead, send after the reply). In a draft-only
   * tab with gamma 'auto' it caps the controller's proposal (default 8); otherwise it is the window itself (default
   * 2 in a tab that also runs a stage, where drafting ahead competes with the stage and is not modelled; 8 else).
   */
  maxInFlight?: number;
  /**
   * Whether this tab also runs a stage of the target (default true). Then drafting ahead competes with that stage
   * for the tab's compute, so past the first candidate it is done only when the round is likely accepted; a tab
   * that holds only the draft is idle while it waits, and always drafts the whole next round ahead.
   */
  sharesCompute?: boolean;
  /**
   * Greedy parallel mode: most hedges in flight (default DEFAULT_HEDGES in a tab that holds no stage, 0 in one that
   * does, where a hedge's rows would take that stage's compute on top of the draft's). A hedge is a short branch sent
   * while the rounds are in flight: at a drafted position likely to be rejected, the draft's second or third choice
   * plus the few tokens the draft has time to draft after it (none for a slow draft). Every stage computes it beside
   * the main line and restores its cache afterwards (VerifyFlags.branch); when the target rejects that position in
   * favour of that very token, the hedge's verified tokens are used at once instead of costing another round trip.
   */
  hedges?: number;
  /**
   * What hedges learn about where the target picks the draft's second or third choice. Pass the same one to every
   * turn of a draft/target pair (SpecSession does): a fresh one starts from the draft's own top-two shares, which on
   * flat logits overstate the chance, so every turn would spend its first rounds learning that again.
   */
  calibrator?: HedgeCalibrator;
  /** Test hook: replace the k-th drafted token of the turn (0-based) by another, forcing a rejection there. */
  corruptDraft?: (k: number) => boolean;
  /** Positions the target's caches can hold (the plan's maxSeq). */
  maxSeq?: number;
  onToken?: (token: number, index: number) => void;
  /** Stop after the round in flight (the Stop button). */
  signal?: AbortSignal;
  onRound?: (r: RoundReport) => void;
}

export interface RoundReport {
  round: number;
  gamma: number;
  accepted: number;
  emitted: number;
  roundTripMs: number;
  /** Running per-token acceptance estimate and the proposed next gamma. */
  alpha: number;
  nextGamma: number;
  draftMsPerToken: number;
  tokensPerSec: number;
  /** Time the pipeline waited for this round's drafts (0 when they were drafted ahead). */
  draftWaitMs: number;
  /** Rounds still in flight after this one (sent ahead on the bet that this one is accepted). */
  inFlight: number;
  /** Parallel: the most rounds that will be kept in flight next (the controller's proposal under 'auto'). */
  nextInFlight: number;
  /** Tokens a hedge gave after this round's rejection (0: none held the target's token), and the wait for its reply. */
  hedgeTokens: number;
  hedgeWaitMs: number;
}

export interface SpecResult {
  tokens: number[];
  stoppedBy: 'eos' | 'maxTokens' | 'context' | 'stop';
  rounds: number;
  /** Drafted tokens sent for verification, and how many the target accepted. */
  drafted: number;
  accepted: number;
  /** Per-token acceptance: accepted / (accepted + rejections); drafts after a rejection were never judged. */
  acceptanceRate: number;
  /** Drafts made while a verification was in flight; drafts thrown away after a rejection. */
  draftedAhead: number;
  discarded: number;
  /** Hedges sent, hedges whose alternative was the target's token, and the tokens they emitted. */
  hedgesSent: number;
  hedgeHits: number;
  hedgeTokens: number;
  /** Hedges that held the target's token but were left: their reply was further off than their tokens were worth. */
  hedgesLate: number;
  /** Rounds where the first drafted-ahead token was accepted in place of the target's own token. */
  usedAhead: number;
  /** Rounds sent while an earlier one was still in flight, and those of them dropped after a rejection. */
  sentAhead: number;
  staleRounds: number;
  /** The draft's wall time per drafted token (single-position steps, emulated slowdown included), ms. */
  draftMsPerToken: number;
  elapsedMs: number;
  tokensPerSec: number;
  gammas: number[];
}

const GREEDY: SamplingConfig = { temperature: 0, topP: 1, seed: 0 };

/** Let timers and messages run between draft steps (the pipeline's replies arrive as events). */
function yieldToEvents(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => void };
  if (g.setImmediate) return new Promise((r) => g.setImmediate!(r));
  return new Promise((r) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => r();
    ch.port2.postMessage(0);
  });
}

export class SpeculativeDecoder {
  /** `clock` times the rounds and hedges (the hedge rules compare their age with what waiting is worth). */
  constructor(
    private readonly coordinator: Coordinator,
    private readonly draft: LocalModel,
    private readonly clock: Clock = performanceClock,
  ) {}

  async generate(ids: number[], opts: SpecOptions): Promise<SpecResult> {
    if (ids.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'empty prompt');
    if (opts.gamma !== 'auto' && !(Number.isInteger(opts.gamma) && opts.gamma >= 1)) {
      throw new ShoalError('ERR_BAD_ARGS', `gamma must be a positive integer or 'auto' (got ${opts.gamma})`);
    }
    return new SpecTurn(this.coordinator, this.draft, this.clock, ids, opts).run();
  }
}

/** What a turn counts (SpecResult's counters, and the rejections its acceptance rate needs). */
interface TurnStats {
  rounds: number;
  drafted: number;
  accepted: number;
  rejections: number;
  draftedAhead: number;
  usedAhead: number;
  discarded: number;
  sentAhead: number;
  staleRounds: number;
  hedgesSent: number;
  hedgeHits: number;
  hedgeTokens: number;
  hedgesLate: number;
  gammas: number[];
}

/** What a hedge gave after a round's rejection: the hit (if one was used), its tokens, and the wait for its reply. */
interface HedgeUse {
  hit?: Hedge;
  tokens: number;
  waitMs: number;
}
const NO_HEDGE: HedgeUse = { tokens: 0, waitMs: 0 };

/**
 * One call of generate: the turn's state (the scheduler's line and rounds, the hedges, the counters) and the steps
 * of its loop. Each step sends the rounds that are ready, then does one of: judge a reply that is in, send a hedge,
 * draft one token, or wait for the oldest reply.
 */
class SpecTurn {
  private readonly sampling: SamplingConfig;
  private readonly greedy: boolean;
  private readonly vocabSize: number;
  private readonly rand: () => number;
  private readonly maxSeq: number;
  private readonly control: DraftLengthController;
  private readonly line: RoundScheduler;
  private readonly hedges: HedgePolicy;
  private readonly out: number[] = [];
  private readonly stats: TurnStats = {
    rounds: 0,
    drafted: 0,
    accepted: 0,
    rejections: 0,
    draftedAhead: 0,
    usedAhead: 0,
    discarded: 0,
    sentAhead: 0,
    staleRounds: 0,
    hedgesSent: 0,
    hedgeHits: 0,
    hedgeTokens: 0,
    hedgesLate: 0,
    gammas: [],
  };
  private stoppedBy: SpecResult['stoppedBy'] | null = null;
  /** Rounds and hedges that can no longer be used, still running through the stages (awaited before returning). */
  private readonly abandoned: Promise<unknown>[] = [];
  /** Drafting while nothing was in flight: charged to the next round sent. */
  private waitMs = 0;
  /** Drafted tokens so far (what corruptDraft counts). */
  private draftIndex = 0;
  private readonly t0: number;
  /** The draft's single-token steps (count, ms) at the turn's start, and at the last round judged. */
  private readonly steps0: number;
  private readonly stepMs0: number;
  private stepsMark: number;
  private stepMsMark: number;

  constructor(
    private readonly coordinator: Coordinator,
    private readonly draft: LocalModel,
    private readonly clock: Clock,
    ids: number[],
    private readonly opts: SpecOptions,
  ) {
    this.sampling = opts.sampling ?? GREEDY;
    this.greedy = this.sampling.temperature <= 0;
    this.vocabSize = draft.spec.vocabSize;
    this.rand = seededRandom(this.sampling.seed);
    this.maxSeq = opts.maxSeq ?? Infinity;
    const sharesCompute = opts.sharesCompute ?? true;
    const maxInFlight = opts.parallel ? Math.max(1, Math.floor(opts.maxInFlight ?? (sharesCompute ? 2 : 8))) : 1;
    // A tab that also runs a stage drafts ahead only on good odds (aheadAllowed), so its model stays one in flight.
    this.control = new DraftLengthController({
      parallel: opts.parallel,
      maxInFlight: sharesCompute ? 1 : maxInFlight,
      initial: opts.gamma === 'auto' ? 4 : opts.gamma,
      gammaMax: opts.gammaMax ?? 16,
    });
    const fixedGamma = opts.gamma === 'auto' ? null : opts.gamma;
    this.line = new RoundScheduler(
      ids,
      coordinator.cachedHistory,
      {
        parallel: opts.parallel,
        sharesCompute,
        maxInFlight,
        fixedGamma,
        maxSeq: this.maxSeq,
        maxTokens: opts.maxTokens,
      },
      this.control,
    );
    const hedges = opts.hedges ?? (sharesCompute ? 0 : DEFAULT_HEDGES);
    const maxHedges = opts.parallel && this.greedy ? Math.max(0, Math.floor(hedges)) : 0;
    this.hedges = new HedgePolicy(maxHedges, opts.calibrator ?? new HedgeCalibrator(), this.control, clock);
    this.t0 = clock.nowMs();
    this.steps0 = this.stepsMark = draft.tokenSteps;
    this.stepMs0 = this.stepMsMark = draft.tokenStepMs;
  }

  async run(): Promise<SpecResult> {
    try {
      while (this.stoppedBy === null) await this.step();
    } finally {
      // Rounds sent on top of the last one (stale) still run through the stages: let them finish, so the next turn
      // finds the stages idle. Their results are not used.
      this.abandon(this.line.drain());
      this.abandon(this.hedges.drop(() => false));
    }
    const elapsedMs = this.clock.nowMs() - this.t0;
    await Promise.all(this.abandoned);
    // Every emitted token but the last went through the target (the same convention as a plain turn).
    this.coordinator.adoptHistory(this.line.ctx.slice(0, -1));
    const s = this.stats,
      d = this.draft;
    return {
      tokens: this.out,
      stoppedBy: this.stoppedBy,
      ...s,
      acceptanceRate: s.accepted + s.rejections > 0 ? s.accepted / (s.accepted + s.rejections) : 0,
      draftMsPerToken: d.tokenSteps > this.steps0 ? (d.tokenStepMs - this.stepMs0) / (d.tokenSteps - this.steps0) : 0,
      elapsedMs,
      tokensPerSec: (this.out.length * 1000) / elapsedMs,
    };
  }

  private async step(): Promise<void> {
    const line = this.line;
    // Send every round whose drafts are ready (one at a time sequentially; up to the window in parallel).
    for (let gamma = line.ready(); gamma !== null; gamma = line.ready()) this.send(gamma);
    if (line.inflight[0]?.settled) return this.resolveOldest();
    // Hedge the likeliest rejection among the positions sent, before drafting further ahead: sent right behind
    // its round, it reaches every stage (and comes back) just after it.
    const hedge = this.hedges.pick(this.hedgeLine());
    if (hedge) {
      await this.sendHedge(hedge);
      await yieldToEvents();
      return;
    }
    if (line.drafts.length < line.draftsWanted() && line.ctx.length + line.drafts.length < this.draft.maxSeq) {
      const tDraft = this.clock.nowMs();
      await this.draftOne();
      if (line.inflight.length === 0) this.waitMs += this.clock.nowMs() - tDraft;
      else this.stats.draftedAhead++;
      await yieldToEvents();
      return;
    }
    if (line.inflight.length === 0) {
      throw new ShoalError('ERR_BAD_ARGS', `the draft's context (${this.draft.maxSeq} positions) is full`);
    }
    await this.resolveOldest();
  }

  private send(gamma: number): void {
    const { pos0, input, keepFrom } = this.line.request(gamma);
    const verify = this.coordinator.verify(pos0, input, { keepFrom, wantLogits: !this.greedy });
    // Object.assign, not a copy: track() marks this very object settled.
    const round: Round = Object.assign(track(verify, this.clock), {
      gamma,
      inputLength: input.length,
      draftWaitMs: this.waitMs,
    });
    this.waitMs = 0;
    if (this.line.add(round)) this.stats.sentAhead++;
  }

  private async draftOne(): Promise<void> {
    const V = this.vocabSize;
    const logits = await this.draft.nextLogits([...this.line.ctx, ...this.line.drafts.map((d) => d.token)]);
    let d: Drafted;
    if (this.greedy) {
      let best = 0;
      for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
      d = { token: best };
      if (this.hedges.maxHedges > 0) d.alts = alternatives(logits, best, HEDGE_CHOICES);
    } else {
      const q = samplingProbs(logits, this.sampling.temperature, this.sampling.topP);
      d = { token: sampleFrom(q, this.rand), q };
    }
    if (this.opts.corruptDraft?.(this.draftIndex)) {
      // A token the draft did not propose: as a proposal from a point mass it stays exact under the sampling rule.
      const token = (d.token + 1) % V;
      // The draft's own choice is then the natural alternative to hedge.
      const alts = this.hedges.maxHedges > 0 ? [{ token: d.token, gap: 0, share: 0.5 }] : undefined;
      d = this.greedy ? (alts ? { token, alts } : { token }) : { token, q: oneHot(V, token) };
    }
    this.draftIndex++;
    this.line.drafts.push(d);
  }

  /** Append a token to the output; false once the turn must stop (eos, the Stop button, max tokens, context end). */
  private emit(token: number): boolean {
    this.line.ctx.push(token);
    this.out.push(token);
    this.opts.onToken?.(token, this.out.length - 1);
    if (this.opts.eos.includes(token)) this.stoppedBy = 'eos';
    else if (this.opts.signal?.aborted) this.stoppedBy = 'stop';
    else if (this.out.length >= this.opts.maxTokens) this.stoppedBy = 'maxTokens';
    else if (this.line.ctx.length >= this.maxSeq) this.stoppedBy = 'context';
    return this.stoppedBy === null;
  }

  private hedgeLine(): HedgeLine {
    const l = this.line;
    const maxSeq = Math.min(this.maxSeq, this.draft.maxSeq);
    return { pos: l.ctx.length, drafts: l.drafts, rounds: l.inflight, covered: l.covered(), maxSeq, gamma: l.gamma };
  }

  private async sendHedge({ k, alt, drafts: L }: HedgePick): Promise<void> {
    const ctx = this.line.ctx;
    const pos = ctx.length + k;
    this.hedges.claim(pos, alt);
    const room = Math.min(L, this.maxSeq - pos - 1, this.draft.maxSeq - pos - 1);
    const prefix = [...ctx, ...this.line.drafts.slice(0, k).map((x) => x.token)];
    const more = room > 0 ? await this.draft.branch(prefix, alt, room) : [];
    const tokens = [alt, ...more];
    const verify = this.coordinator.verify(pos, tokens, { keepFrom: 0, wantLogits: false, branch: true });
    const h: Hedge = Object.assign(track(verify, this.clock), { pos, tokens });
    h.promise.then(
      (r) => {
        if (r.computeMs !== undefined) this.control.observePass(tokens.length, r.computeMs);
      },
      () => undefined,
    );
    this.hedges.add(h);
    this.stats.hedgesSent++;
  }

  /** Judge the oldest round's reply, use a hedge that holds the target's token at its rejection, move the line on. */
  private async resolveOldest(): Promise<void> {
    const round = this.line.inflight[0];
    const res: VerifyResult = await round.promise;
    this.line.shift();
    const gamma = round.gamma;
    this.stats.rounds++;
    this.stats.gammas.push(gamma);
    this.stats.drafted += gamma;
    const ctxBefore = this.line.ctx.length; // drafts[i] sits at absolute position ctxBefore + i
    const { accepted, emitted: judged, lastAccepted } = this.judge(gamma, res);
    this.stats.accepted += accepted;
    // A rejection among the sent drafts (not an early stop on eos or max tokens, nor a rejected candidate).
    const rejected = !lastAccepted && judged - 1 < gamma;
    if (rejected) this.stats.rejections++;
    const used = !lastAccepted && this.stoppedBy === null ? await this.useHedge(ctxBefore + judged - 1) : NO_HEDGE;
    const emitted = judged + used.tokens;
    if (lastAccepted && emitted === gamma + 1) {
      this.line.advance(emitted); // the next round in flight starts here
      this.abandon(this.hedges.drop((h) => h.pos >= this.line.ctx.length));
    } else {
      // A rejection (or a stop) discards every speculative token past it, and the rounds sent on top of them.
      const { discarded, stale } = this.line.discard(emitted);
      this.stats.discarded += discarded;
      this.stats.staleRounds += stale.length;
      this.abandon(stale);
      this.abandon(this.hedges.restart());
    }
    // After a hedge, the stages hold the main line from its position on: the next round recomputes from there.
    this.line.targetPos = used.hit ? used.hit.pos : this.line.ctx.length - 1;
    this.observe(round, res, accepted, rejected);
    const elapsed = this.clock.nowMs() - this.t0;
    this.opts.onRound?.({
      round: this.stats.rounds,
      gamma,
      accepted,
      emitted,
      roundTripMs: res.roundTripMs,
      alpha: this.control.alpha,
      nextGamma: this.line.gamma,
      draftMsPerToken: this.control.draftMsPerToken,
      tokensPerSec: (this.out.length * 1000) / elapsed,
      draftWaitMs: round.draftWaitMs,
      inFlight: this.line.inflight.length,
      nextInFlight: this.line.inFlightLimit(),
      hedgeTokens: used.tokens,
      hedgeWaitMs: used.waitMs,
    });
  }

  /**
   * Row i of a round's reply is the target's prediction after ctx's last token (i = 0) or after sent draft i - 1:
   * emit the accepted drafts, then the target's token at the first rejection (or after them all).
   */
  private judge(gamma: number, res: VerifyResult): { accepted: number; emitted: number; lastAccepted: boolean } {
    const { greedy, sampling, vocabSize: V } = this;
    const drafts = this.line.drafts;
    let accepted = 0,
      emitted = 0,
      lastAccepted = true;
    for (let i = 0; i <= gamma && this.stoppedBy === null; i++) {
      const row = res.logits?.subarray(i * V, (i + 1) * V);
      const p = greedy ? null : samplingProbs(row!, sampling.temperature, sampling.topP);
      const cand = drafts[i]; // i == gamma: the candidate for the target's own token, if the draft got that far
      let decision: Decision;
      if (!cand) decision = { accepted: false, token: greedy ? res.tokens[i] : sampleFrom(p!, this.rand) };
      else if (greedy) decision = acceptGreedy(cand.token, res.tokens[i]);
      else decision = acceptSampled(cand.token, p!, cand.q!, this.rand);
      const won = (token: number): boolean => !decision.accepted && decision.token === token;
      cand?.alts?.forEach((a, r) => this.hedges.calibrator.observe(a.gap, won(a.token), r + 1));
      this.emit(decision.token);
      emitted++;
      lastAccepted = decision.accepted;
      if (!decision.accepted) break;
      if (i < gamma) accepted++;
      else this.stats.usedAhead++;
    }
    return { accepted, emitted, lastAccepted };
  }

  /** After a rejection at `pos`: the hedge there whose alternative is the target's token gives its verified tokens. */
  private async useHedge(pos: number): Promise<HedgeUse> {
    const hit = this.hedges.hitAt(pos, this.line.ctx[pos]);
    if (!hit) return NO_HEDGE;
    if (!this.hedges.worthWaiting(hit)) {
      this.stats.hedgesLate++;
      return NO_HEDGE;
    }
    const tWait = this.clock.nowMs();
    const res = await hit.promise;
    const waitMs = this.clock.nowMs() - tWait;
    this.stats.hedgeHits++;
    let tokens = 0;
    // Row r is the target's token after hit.tokens[r]: it confirms the hedge's next draft, or corrects it.
    for (let r = 0; r < hit.tokens.length && this.stoppedBy === null; r++) {
      this.emit(res.tokens[r]);
      tokens++;
      this.stats.hedgeTokens++;
      if (res.tokens[r] !== hit.tokens[r + 1]) break;
    }
    return { hit, tokens, waitMs };
  }

  /** Feed the controller a judged round: acceptance, round trip, the draft's ms per token since the last one. */
  private observe(round: Round, res: VerifyResult, accepted: number, rejected: boolean): void {
    const d = this.draft;
    const steps = d.tokenSteps - this.stepsMark,
      stepMs = d.tokenStepMs - this.stepMsMark;
    this.stepsMark = d.tokenSteps;
    this.stepMsMark = d.tokenStepMs;
    this.control.observe({
      sent: round.gamma,
      accepted,
      rejected,
      roundTripMs: res.roundTripMs,
      positions: round.inputLength,
      draftMsPerToken: steps > 0 ? stepMs / steps : undefined,
    });
    if (res.computeMs !== undefined) this.control.observePass(round.inputLength, res.computeMs);
  }

  private abandon(sent: readonly Sent[]): void {
    for (const s of sent) this.abandoned.push(s.promise.catch(() => undefined));
  }
}

function oneHot(n: number, i: number): Float64Array {
  const q = new Float64Array(n);
  q[i] = 1;
  return q;
}
