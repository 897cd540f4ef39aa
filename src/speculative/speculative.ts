// Speculative decoding over the pipeline (issue 8, PAPERS.md section 3): the draft in this tab proposes gamma
// tokens, the target across the mesh verifies them in one pass, the accepted prefix plus the target's own token
// is emitted. Parallel mode keeps drafting ahead while a verification is in flight, on the bet that it is accepted;
// a rejection discards that work (the draft's cache rolls back by common prefix, the stages' by the next pos0).
import { ShoalError } from '../errors.ts';
import { seededRandom, sampleFrom } from '../model/sampler.ts';
import type { Coordinator, VerifyResult } from '../pipeline/coordinator.ts';
import type { SamplingConfig } from '../pipeline/messages.ts';
import { acceptGreedy, acceptSampled, samplingProbs } from './acceptance.ts';
import type { Decision } from './acceptance.ts';
import type { DraftModel } from './draft.ts';
import { DraftLengthController } from './draftLength.ts';
import { alternatives, HedgeCalibrator, hedgePays, hitWorth } from './hedge.ts';
import type { Alternative } from './hedge.ts';

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
   * What hedges learn about where the target picks the draft's second or third choice. Pass the same one to every turn of a
   * draft/target pair (SpecSession does): a fresh one starts from the draft's own top-two shares, which on flat
   * logits overstate the chance, so every turn would spend its first rounds learning that again.
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

/**
 * A drafted token; greedy with hedging also keeps the draft's next choices (alts[0] its second, alts[1] its third):
 * each with its logit gap from the top choice (what the calibrator learns from) and its share among the top choices
 * (the calibrator's prior).
 */
interface Drafted { token: number; q?: Float64Array; alts?: Alternative[] }

/** A verification sent to the pipeline: when it left, and whether its reply (or failure) is in. */
interface Sent { promise: Promise<VerifyResult>; sentAtMs: number; settled: boolean }

/** Track a verification just sent (rounds and hedges alike). */
function sent(promise: Promise<VerifyResult>): Sent {
  const s: Sent = { promise, sentAtMs: performance.now(), settled: false };
  promise.then(() => { s.settled = true; }, () => { s.settled = true; });
  return s;
}

/** A hedge in flight: the branch [alt, drafts...] verified from absolute position `pos`. */
interface Hedge extends Sent { pos: number; tokens: number[] }

/**
 * Drafts after a hedge's alternative: at most MAX (row i pays only when the first i are right, and every row costs
 * each stage about as much as a main-line row on the CPU engine), and within a share of a round trip of draft time
 * (drafting them holds up the main line). A slow draft fits none: its hedges are the alternative alone, which costs
 * it no drafting and still gives one token (the target's after it) on a hit; hedgePays weighs that.
 */
const MAX_HEDGE_DRAFTS = 4;
/**
 * Hedges in flight by default in a tab that holds no stage. On the 2-core bench machine with a fast draft (acceptance
 * ~0.8, gammas 4 and auto), second- and third-choice hedges with 6 in flight were -2% to +2% against plain parallel at
 * 20 ms and +7% to +25% at 50 ms, where 10 cost up to 12% at 20 ms and 3 hit too few rejections to pay at 50 ms (before
 * the send-late and wait rules of hedgeTarget and hedgeWaitTooLong, which took the 20 ms cells to -4% to +13% and the
 * 50 ms ones to +16% to +31%).
 */
export const DEFAULT_HEDGES = 6;
const HEDGE_DRAFT_SHARE = 0.05;
/**
 * Alternatives per drafted position a hedge may try: the draft's second and third choices. On the bench pairs at
 * acceptance ~0.8 they held 58% and 25% of the target's tokens at rejected positions (the fourth and later, 17%).
 */
const HEDGE_CHOICES = 2;

interface Round extends Sent {
  gamma: number;
  inputLength: number;
  draftWaitMs: number;
}

const GREEDY: SamplingConfig = { temperature: 0, topP: 1, seed: 0 };

/** Let timers and messages run between draft steps (the pipeline's replies arrive as events). */
function yieldToEvents(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => void };
  if (g.setImmediate) return new Promise((r) => g.setImmediate!(r));
  return new Promise((r) => { const ch = new MessageChannel(); ch.port1.onmessage = () => r(); ch.port2.postMessage(0); });
}

export class SpeculativeDecoder {
  constructor(private readonly coordinator: Coordinator, private readonly draft: DraftModel) {}

  async generate(ids: number[], opts: SpecOptions): Promise<SpecResult> {
    if (ids.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'empty prompt');
    if (opts.gamma !== 'auto' && !(Number.isInteger(opts.gamma) && opts.gamma >= 1)) throw new ShoalError('ERR_BAD_ARGS', `gamma must be a positive integer or 'auto' (got ${opts.gamma})`);
    const sampling = opts.sampling ?? GREEDY;
    const greedy = sampling.temperature <= 0;
    const V = this.draft.spec.vocabSize;
    const rand = seededRandom(sampling.seed);
    const maxSeq = opts.maxSeq ?? Infinity;
    const sharesCompute = opts.sharesCompute ?? true;
    const maxInFlight = opts.parallel ? Math.max(1, Math.floor(opts.maxInFlight ?? (sharesCompute ? 2 : 8))) : 1;
    // A tab that also runs a stage drafts ahead only on good odds (aheadAllowed), so its model stays one in flight.
    const control = new DraftLengthController({ parallel: opts.parallel, maxInFlight: sharesCompute ? 1 : maxInFlight, initial: opts.gamma === 'auto' ? 4 : opts.gamma, gammaMax: opts.gammaMax ?? 16 });
    const fixedGamma = opts.gamma === 'auto' ? null : opts.gamma;
    /** Rounds to keep in flight now: the controller's proposal under 'auto' in a draft-only tab (never above the
     * cap), else the cap (a fixed gamma, or a tab whose drafting ahead is gated by aheadAllowed instead). */
    const inFlightLimit = (): number => (fixedGamma === null && !sharesCompute ? Math.min(maxInFlight, control.inFlight) : maxInFlight);

    const ctx = ids.slice(); // prompt + emitted tokens; every token but the last is in the target's caches after a round
    const out: number[] = [];
    const history = this.coordinator.cachedHistory;
    let targetPos = 0;
    while (targetPos < history.length && targetPos < ids.length - 1 && history[targetPos] === ids[targetPos]) targetPos++;
    let drafts: Drafted[] = []; // drafted continuation of ctx, on the bet that everything is accepted
    let draftIndex = 0;
    const stats = { rounds: 0, drafted: 0, accepted: 0, rejections: 0, draftedAhead: 0, usedAhead: 0, discarded: 0, sentAhead: 0, staleRounds: 0, hedgesSent: 0, hedgeHits: 0, hedgeTokens: 0, hedgesLate: 0, gammas: [] as number[] };
    const maxHedges = opts.parallel && greedy ? Math.max(0, Math.floor(opts.hedges ?? (sharesCompute ? 0 : DEFAULT_HEDGES))) : 0;
    let stoppedBy: SpecResult['stoppedBy'] | null = null;
    const t0 = performance.now();
    const steps0 = this.draft.tokenSteps, stepMs0 = this.draft.tokenStepMs;

    const draftOne = async (): Promise<void> => {
      const logits = await this.draft.nextLogits([...ctx, ...drafts.map((d) => d.token)]);
      let d: Drafted;
      if (greedy) {
        let best = 0;
        for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
        d = { token: best };
        if (maxHedges > 0) d.alts = alternatives(logits, best, HEDGE_CHOICES);
      } else {
        const q = samplingProbs(logits, sampling.temperature, sampling.topP);
        d = { token: sampleFrom(q, rand), q };
      }
      if (opts.corruptDraft?.(draftIndex)) {
        // A token the draft did not propose: as a proposal from a point mass it stays exact under the sampling rule.
        const token = (d.token + 1) % V;
        // The draft's own choice is then the natural alternative to hedge.
        d = greedy ? (maxHedges > 0 ? { token, alts: [{ token: d.token, gap: 0, share: 0.5 }] } : { token }) : { token, q: oneHot(V, token) };
      }
      draftIndex++;
      drafts.push(d);
    };

    const emit = (token: number): boolean => {
      ctx.push(token);
      out.push(token);
      opts.onToken?.(token, out.length - 1);
      if (opts.eos.includes(token)) stoppedBy = 'eos';
      else if (opts.signal?.aborted) stoppedBy = 'stop';
      else if (out.length >= opts.maxTokens) stoppedBy = 'maxTokens';
      else if (ctx.length >= maxSeq) stoppedBy = 'context';
      return stoppedBy === null;
    };

    /** Verification rounds in flight, oldest first: the first verifies drafts[0, gamma); each later one starts at
     * the previous round's candidate (the draft's guess for the target's own token) and verifies gamma more. */
    const inflight: Round[] = [];
    /** Rounds made stale by a rejection, still running through the stages (awaited before returning). */
    const abandoned: Promise<unknown>[] = [];
    let waitMs = 0; // drafting while nothing was in flight: charged to the next round sent
    let stepsMark = this.draft.tokenSteps, stepMsMark = this.draft.tokenStepMs;
    /** Drafts the rounds in flight have sent (candidates of the later rounds included). */
    const covered = (): number => (inflight.length === 0 ? 0 : inflight.reduce((n, r) => n + r.gamma, 0) + inflight.length - 1);
    /** Tokens the rounds in flight emit if all of them are accepted. */
    const projected = (): number => inflight.reduce((n, r) => n + r.gamma + 1, 0);
    /** The next round's draft length (negative: the rounds in flight already reach max tokens or the context's end). */
    const nextGamma = (): number => {
      const p = projected();
      const g = Math.min(fixedGamma ?? control.gamma, maxSeq - (ctx.length + p) - 1, opts.maxTokens - (out.length + p) - 1);
      return inflight.length === 0 ? Math.max(0, g) : g;
    };
    /** Drafts needed before a round of `gamma` can go: a later round also needs the previous round's candidate. */
    const need = (gamma: number): number => covered() + (inflight.length > 0 ? 1 : 0) + gamma;
    /**
     * Drafting ahead (parallel) pays only when the rounds in flight are accepted. A tab that also runs a stage
     * shares its compute with it, so there it drafts past the first candidate, and sends later rounds, only when
     * the measured odds are good; a tab holding only the draft is idle while it waits, and always drafts ahead.
     */
    const aheadAllowed = (): boolean => !sharesCompute || control.alpha ** Math.max(1, fixedGamma ?? control.gamma) >= 0.25;

    const launch = (gamma: number): void => {
      let pos0: number, input: number[], keepFrom: number;
      if (inflight.length === 0) {
        pos0 = targetPos;
        input = [...ctx.slice(targetPos), ...drafts.slice(0, gamma).map((d) => d.token)];
        keepFrom = ctx.length - 1 - targetPos;
      } else {
        const c = covered(); // drafts[c] is the previous round's candidate, at position ctx.length + c
        pos0 = ctx.length + c;
        input = drafts.slice(c, c + 1 + gamma).map((d) => d.token);
        keepFrom = 0;
      }
      const round: Round = Object.assign(sent(this.coordinator.verify(pos0, input, { keepFrom, wantLogits: !greedy })), { gamma, inputLength: input.length, draftWaitMs: waitMs });
      waitMs = 0;
      if (inflight.length > 0) stats.sentAhead++;
      inflight.push(round);
    };

    /** Hedges in flight, and the (position, alternative) pairs already hedged since the last rejection. */
    let hedges: Hedge[] = [];
    const hedged = new Set<string>();
    const calibrator = opts.calibrator ?? new HedgeCalibrator();
    /**
     * The drafted position and alternative most worth hedging now: the pair most likely reached and then rejected in
     * favour of that alternative, if that chance times what a hit saves of a round trip beats what the hedge's pass
     * costs the stages' compute.
     */
    const hedgeTarget = (): { k: number; alt: number; drafts: number } | null => {
      if (maxHedges === 0 || hedges.length >= maxHedges || inflight.length === 0) return null;
      const fit = control.roundTripModel();
      const rtt = fit.baseMs + fit.perPositionMs * (Math.max(1, fixedGamma ?? control.gamma) + 1);
      const L = hedgeDrafts(rtt);
      // What the hedge costs: the stages' compute for a pass of its rows, as they report it; before any report, its
      // rows at the round trip's fitted price per position.
      const costMs = control.passComputeMs(L + 1) ?? (L + 1) * fit.perPositionMs;
      let best: { k: number; alt: number; drafts: number } | null = null, bestValue = 0, reach = 1;
      // A hedge comes back about a round trip after it leaves; past what a hit saves (hitWorth) behind the round
      // that judges its position, waiting for it costs more than its tokens give (hedgeWaitTooLong): too late to send.
      const lateMs = hitWorth(control.alpha, L + 1) * rtt, now = performance.now();
      let j = 0, judgedTo = inflight[0].gamma; // inflight[j] judges drafts up to index judgedTo (its candidate's row)
      // drafts[k] for k <= covered() follows positions every sent round already holds.
      for (let k = 0; k <= Math.min(covered(), drafts.length - 1); k++) {
        while (k > judgedTo && j + 1 < inflight.length) judgedTo += inflight[++j].gamma + 1;
        const fits = ctx.length + k + 1 <= Math.min(maxSeq, this.draft.stage.maxSeq) && now - inflight[j].sentAtMs < lateMs;
        (drafts[k].alts ?? []).forEach((a, i) => {
          const value = reach * calibrator.altWins(a.gap, a.share, i + 1);
          if (fits && !hedged.has(`${ctx.length + k}:${a.token}`) && value > bestValue && hedgePays(value, rtt, L + 1, costMs, control.alpha)) { best = { k, alt: a.token, drafts: L }; bestValue = value; }
        });
        reach *= control.alpha;
      }
      return best;
    };
    /**
     * Whether waiting for a hit's reply costs more than it gives: it is worth waiting up to what a hit saves
     * (hitWorth); past that the next round, sent now, is the better bet (a hedge sent late, just before its round
     * came back).
     */
    const hedgeWaitTooLong = (h: Hedge): boolean => {
      const rttMs = control.costs().roundTripMs(h.tokens.length);
      return h.sentAtMs + rttMs - performance.now() > hitWorth(control.alpha, h.tokens.length) * rttMs;
    };
    /** Drafts a hedge may carry after its alternative, for this round trip (see MAX_HEDGE_DRAFTS). */
    const hedgeDrafts = (rttMs: number): number => Math.min(MAX_HEDGE_DRAFTS, Math.floor((HEDGE_DRAFT_SHARE * rttMs) / Math.max(0.01, control.draftMsPerToken)));
    const launchHedge = async ({ k, alt, drafts: L }: { k: number; alt: number; drafts: number }): Promise<void> => {
      const pos = ctx.length + k;
      hedged.add(`${pos}:${alt}`);
      const room = Math.min(L, maxSeq - pos - 1, this.draft.stage.maxSeq - pos - 1);
      const prefix = [...ctx, ...drafts.slice(0, k).map((x) => x.token)];
      const more = room > 0 ? await this.draft.branch(prefix, alt, room) : [];
      const tokens = [alt, ...more];
      // (sent() handles a failure: a hedge's reply is only awaited on a hit.)
      const h = Object.assign(sent(this.coordinator.verify(pos, tokens, { keepFrom: 0, wantLogits: false, branch: true })), { pos, tokens });
      h.promise.then((r) => { if (r.computeMs !== undefined) control.observePass(tokens.length, r.computeMs); }, () => undefined);
      hedges.push(h);
      stats.hedgesSent++;
    };
    /** Hedges that can no longer be used still run through the stages: awaited before the turn returns. */
    const dropHedges = (keep: (h: Hedge) => boolean): void => {
      const kept: Hedge[] = [];
      for (const h of hedges) {
        if (keep(h)) kept.push(h);
        else abandoned.push(h.promise.catch(() => undefined));
      }
      hedges = kept;
    };

    const resolveOldest = async (): Promise<void> => {
      const round = inflight[0];
      const res: VerifyResult = await round.promise;
      inflight.shift();
      const gamma = round.gamma;
      stats.rounds++;
      stats.gammas.push(gamma);
      stats.drafted += gamma;
      const ctxBefore = ctx.length; // drafts[i] sits at absolute position ctxBefore + i
      // Row i is the target's prediction after ctx's last token (i = 0) or after sent draft i - 1.
      let accepted = 0, emitted = 0, lastAccepted = true;
      for (let i = 0; i <= gamma && stoppedBy === null; i++) {
        const row = res.logits?.subarray(i * V, (i + 1) * V);
        const p = greedy ? null : samplingProbs(row!, sampling.temperature, sampling.topP);
        const cand = drafts[i]; // i == gamma: the candidate for the target's own token, if the draft got that far
        let decision: Decision;
        if (!cand) decision = { accepted: false, token: greedy ? res.tokens[i] : sampleFrom(p!, rand) };
        else decision = greedy ? acceptGreedy(cand.token, res.tokens[i]) : acceptSampled(cand.token, p!, cand.q!, rand);
        cand?.alts?.forEach((a, r) => calibrator.observe(a.gap, !decision.accepted && decision.token === a.token, r + 1));
        emit(decision.token);
        emitted++;
        lastAccepted = decision.accepted;
        if (!decision.accepted) break;
        if (i < gamma) accepted++;
        else stats.usedAhead++;
      }
      stats.accepted += accepted;
      // A rejection among the sent drafts (not an early stop on eos or max tokens, nor a rejected candidate).
      const rejected = !lastAccepted && emitted - 1 < gamma;
      if (rejected) stats.rejections++;
      // A hedge on the rejected position whose alternative is the target's token: its verified tokens follow now.
      const rejectedPos = ctxBefore + emitted - 1;
      let hit = !lastAccepted && stoppedBy === null ? hedges.find((h) => h.pos === rejectedPos && h.tokens[0] === ctx[rejectedPos]) : undefined;
      if (hit && !hit.settled && hedgeWaitTooLong(hit)) { stats.hedgesLate++; hit = undefined; }
      let hedgeTokens = 0, hedgeWaitMs = 0;
      if (hit) {
        const tWait = performance.now();
        const hres = await hit.promise;
        hedgeWaitMs = performance.now() - tWait;
        stats.hedgeHits++;
        // Row r is the target's token after hit.tokens[r]: it confirms the hedge's next draft, or corrects it.
        for (let r = 0; r < hit.tokens.length && stoppedBy === null; r++) {
          emit(hres.tokens[r]);
          emitted++;
          stats.hedgeTokens++;
          hedgeTokens++;
          if (hres.tokens[r] !== hit.tokens[r + 1]) break;
        }
      }
      if (lastAccepted && emitted === gamma + 1) {
        drafts = drafts.slice(emitted); // the next round in flight starts here
        dropHedges((h) => h.pos >= ctx.length);
      } else {
        // A rejection (or a stop) discards every speculative token past it, and the rounds sent on top of them.
        stats.discarded += Math.max(0, drafts.length - emitted);
        drafts = [];
        for (const r of inflight.splice(0)) { stats.staleRounds++; abandoned.push(r.promise.catch(() => undefined)); }
        dropHedges(() => false);
        hedged.clear();
      }
      // After a hedge, the stages hold the main line from its position on: the next round recomputes from there.
      targetPos = hit ? hit.pos : ctx.length - 1;
      const steps = this.draft.tokenSteps - stepsMark, stepMs = this.draft.tokenStepMs - stepMsMark;
      stepsMark = this.draft.tokenSteps;
      stepMsMark = this.draft.tokenStepMs;
      control.observe({ sent: gamma, accepted, rejected, roundTripMs: res.roundTripMs, positions: round.inputLength, draftMsPerToken: steps > 0 ? stepMs / steps : undefined });
      if (res.computeMs !== undefined) control.observePass(round.inputLength, res.computeMs);
      const elapsed = performance.now() - t0;
      opts.onRound?.({ round: stats.rounds, gamma, accepted, emitted, roundTripMs: res.roundTripMs, alpha: control.alpha, nextGamma: fixedGamma ?? control.gamma, draftMsPerToken: control.draftMsPerToken, tokensPerSec: (out.length * 1000) / elapsed, draftWaitMs: round.draftWaitMs, inFlight: inflight.length, nextInFlight: inFlightLimit(), hedgeTokens, hedgeWaitMs });
    };

    try {
      while (stoppedBy === null) {
        // Send every round whose drafts are ready (one at a time sequentially; up to maxInFlight in parallel).
        while (inflight.length < (aheadAllowed() ? inFlightLimit() : 1)) {
          const gamma = nextGamma();
          if (gamma < 0 || drafts.length < need(gamma)) break;
          launch(gamma);
        }
        if (inflight[0]?.settled) { await resolveOldest(); continue; }
        // Hedge the likeliest rejection among the positions sent, before drafting further ahead: sent right behind
        // its round, it reaches every stage (and comes back) just after it.
        const hedge = hedgeTarget();
        if (hedge) { await launchHedge(hedge); await yieldToEvents(); continue; }
        // Draft: the first round's tokens (the pipeline waits), or ahead while rounds are in flight (parallel only):
        // the next round's candidate and tokens, or only the candidate when drafting ahead is not allowed.
        const gamma = nextGamma();
        const cap = inflight.length === 0 ? need(gamma) : !opts.parallel ? 0 : aheadAllowed() && gamma >= 0 ? need(gamma) : covered() + 1;
        if (drafts.length < cap && ctx.length + drafts.length < this.draft.stage.maxSeq) {
          const tDraft = performance.now();
          await draftOne();
          if (inflight.length === 0) waitMs += performance.now() - tDraft;
          else stats.draftedAhead++;
          await yieldToEvents();
          continue;
        }
        if (inflight.length === 0) throw new ShoalError('ERR_BAD_ARGS', `the draft's context (${this.draft.stage.maxSeq} positions) is full`);
        await resolveOldest();
      }
    } finally {
      // Rounds sent on top of the last one (stale) still run through the stages: let them finish, so the next turn
      // finds the stages idle. Their results are not used.
      for (const r of inflight.splice(0)) abandoned.push(r.promise.catch(() => undefined));
      dropHedges(() => false);
    }
    const elapsedMs = performance.now() - t0;
    await Promise.all(abandoned);
    // Every emitted token but the last went through the target (the same convention as a plain turn).
    this.coordinator.adoptHistory(ctx.slice(0, -1));
    return {
      tokens: out, stoppedBy: stoppedBy as SpecResult['stoppedBy'], ...stats,
      acceptanceRate: stats.accepted + stats.rejections > 0 ? stats.accepted / (stats.accepted + stats.rejections) : 0,
      draftMsPerToken: this.draft.tokenSteps > steps0 ? (this.draft.tokenStepMs - stepMs0) / (this.draft.tokenSteps - steps0) : 0,
      elapsedMs, tokensPerSec: (out.length * 1000) / elapsedMs,
    };
  }
}

function oneHot(n: number, i: number): Float64Array {
  const q = new Float64Array(n);
  q[i] = 1;
  return q;
}
