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

export interface SpecOptions {
  maxTokens: number;
  eos: number[];
  /** temperature 0 (default): greedy, exactly the target's output. */
  sampling?: SamplingConfig;
  /** A fixed draft length, or 'auto' to adapt it every round. */
  gamma: number | 'auto';
  gammaMax?: number;
  /** Keep drafting while a verification is in flight. */
  parallel: boolean;
  /**
   * Whether this tab also runs a stage of the target (default true). Then drafting ahead competes with that stage
   * for the tab's compute, so past the first candidate it is done only when the round is likely accepted; a tab
   * that holds only the draft is idle while it waits, and always drafts the whole next round ahead.
   */
  sharesCompute?: boolean;
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
  /** Time spent drafting before this round could be sent (0 when drafted ahead), and drafts made while it was verified. */
  draftWaitMs: number;
  draftedAhead: number;
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
  /** Rounds where the first drafted-ahead token was accepted in place of the target's own token. */
  usedAhead: number;
  /** The draft's wall time per drafted token (single-position steps, emulated slowdown included), ms. */
  draftMsPerToken: number;
  elapsedMs: number;
  tokensPerSec: number;
  gammas: number[];
}

interface Drafted { token: number; q?: Float64Array }

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
    const control = new DraftLengthController({ parallel: opts.parallel, initial: opts.gamma === 'auto' ? 4 : opts.gamma, gammaMax: opts.gammaMax ?? 16 });
    const fixedGamma = opts.gamma === 'auto' ? null : opts.gamma;

    const ctx = ids.slice(); // prompt + emitted tokens; every token but the last is in the target's caches after a round
    const out: number[] = [];
    const history = this.coordinator.cachedHistory;
    let targetPos = 0;
    while (targetPos < history.length && targetPos < ids.length - 1 && history[targetPos] === ids[targetPos]) targetPos++;
    let drafts: Drafted[] = []; // drafted continuation of ctx, on the bet that everything is accepted
    let draftIndex = 0;
    const stats = { rounds: 0, drafted: 0, accepted: 0, rejections: 0, draftedAhead: 0, usedAhead: 0, discarded: 0, gammas: [] as number[] };
    let stoppedBy: SpecResult['stoppedBy'] | null = null;
    const t0 = performance.now();
    const steps0 = this.draft.tokenSteps, stepMs0 = this.draft.tokenStepMs;
    const sharesCompute = opts.sharesCompute ?? true;

    const draftOne = async (): Promise<void> => {
      const logits = await this.draft.nextLogits([...ctx, ...drafts.map((d) => d.token)]);
      let d: Drafted;
      if (greedy) {
        let best = 0;
        for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
        d = { token: best };
      } else {
        const q = samplingProbs(logits, sampling.temperature, sampling.topP);
        d = { token: sampleFrom(q, rand), q };
      }
      if (opts.corruptDraft?.(draftIndex)) {
        // A token the draft did not propose: as a proposal from a point mass it stays exact under the sampling rule.
        const token = (d.token + 1) % V;
        d = greedy ? { token } : { token, q: oneHot(V, token) };
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

    while (stoppedBy === null) {
      // Room in the caches: the round runs positions targetPos .. ctx.length - 1 + gamma.
      const room = maxSeq - ctx.length;
      const gamma = Math.max(0, Math.min(fixedGamma ?? control.gamma, room - 1, opts.maxTokens - out.length - 1));
      // The draft's cost per token, from this round's single-position steps (ahead ones included: in parallel
      // steady state most drafting happens there; a step that runs the prompt is no per-token figure).
      const roundSteps0 = this.draft.tokenSteps, roundStepMs0 = this.draft.tokenStepMs;
      const waitStart = performance.now(), ahead0 = stats.draftedAhead;
      if (ctx.length + gamma > this.draft.stage.maxSeq) throw new ShoalError('ERR_BAD_ARGS', `the draft's context (${this.draft.stage.maxSeq} positions) is full`);
      while (drafts.length < gamma) await draftOne();
      const draftWaitMs = performance.now() - waitStart;
      const sent = drafts.slice(0, gamma);
      const input = [...ctx.slice(targetPos), ...sent.map((d) => d.token)];
      const keepFrom = ctx.length - 1 - targetPos;
      let settled = false;
      const pending = this.coordinator.verify(targetPos, input, { keepFrom, wantLogits: !greedy });
      pending.then(() => { settled = true; }, () => { settled = true; });
      if (opts.parallel) {
        // Draft the next round while this one is verified; never more than one round ahead.
        // Drafting ahead pays only when the whole round is likely accepted; it shares this tab's compute (which may
        // also run stage 0), so past the first candidate it is skipped when the measured odds are poor.
        const likely = !sharesCompute || control.alpha ** gamma >= 0.25;
        const aheadCap = gamma + 1 + (likely ? Math.max(1, fixedGamma ?? control.gamma) : 0);
        while (!settled && drafts.length < aheadCap && ctx.length + drafts.length < this.draft.stage.maxSeq) {
          await draftOne();
          stats.draftedAhead++;
          await yieldToEvents();
        }
      }
      const res: VerifyResult = await pending;
      stats.rounds++;
      stats.gammas.push(gamma);
      stats.drafted += gamma;
      // Row i is the target's prediction after ctx's last token (i = 0) or after sent draft i - 1.
      let accepted = 0, emitted = 0, lastAccepted = true;
      for (let i = 0; i <= gamma && stoppedBy === null; i++) {
        const row = res.logits?.subarray(i * V, (i + 1) * V);
        const p = greedy ? null : samplingProbs(row!, sampling.temperature, sampling.topP);
        const cand = drafts[i]; // i == gamma: the first drafted-ahead token, if the parallel draft got that far
        let decision: Decision;
        if (!cand) decision = { accepted: false, token: greedy ? res.tokens[i] : sampleFrom(p!, rand) };
        else decision = greedy ? acceptGreedy(cand.token, res.tokens[i]) : acceptSampled(cand.token, p!, cand.q!, rand);
        emit(decision.token);
        emitted++;
        lastAccepted = decision.accepted;
        if (!decision.accepted) break;
        if (i < gamma) accepted++;
        else stats.usedAhead++;
      }
      stats.accepted += accepted;
      // A rejection among the sent drafts (not an early stop on eos or max tokens, nor a rejected ahead token).
      const rejected = !lastAccepted && emitted - 1 < gamma;
      if (rejected) stats.rejections++;
      if (!lastAccepted) stats.discarded += drafts.length - emitted;
      drafts = lastAccepted ? drafts.slice(emitted) : []; // a rejection discards every speculative token past it
      targetPos = ctx.length - 1;
      const roundSteps = this.draft.tokenSteps - roundSteps0;
      control.observe({ sent: gamma, accepted, rejected, roundTripMs: res.roundTripMs, positions: input.length, draftMsPerToken: roundSteps > 0 ? (this.draft.tokenStepMs - roundStepMs0) / roundSteps : undefined });
      const elapsed = performance.now() - t0;
      opts.onRound?.({ round: stats.rounds, gamma, accepted, emitted, roundTripMs: res.roundTripMs, alpha: control.alpha, nextGamma: fixedGamma ?? control.gamma, draftMsPerToken: control.draftMsPerToken, tokensPerSec: (out.length * 1000) / elapsed, draftWaitMs, draftedAhead: stats.draftedAhead - ahead0 });
    }
    // Every emitted token but the last went through the target (the same convention as a plain turn).
    this.coordinator.adoptHistory(ctx.slice(0, -1));
    const elapsedMs = performance.now() - t0;
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
