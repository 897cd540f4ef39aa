// The round scheduler of a speculative turn (speculative.ts): the context, the drafted line on top of it, the
// verification rounds in flight on that line, and what to send or draft next. It does no I/O: the turn drafts,
// sends and judges, and tells the scheduler what happened.
import type { Sent } from './clock.ts';
import type { DraftLengthController } from './draftLength.ts';
import type { Alternative } from './hedge.ts';

/**
 * A drafted token; greedy with hedging also keeps the draft's next choices (alts[0] its second, alts[1] its third):
 * each with its logit gap from the top choice (what the calibrator learns from) and its share among the top choices
 * (the calibrator's prior). Sampling keeps the draft's distribution q.
 */
export interface Drafted {
  token: number;
  q?: Float64Array;
  alts?: Alternative[];
}

/** A verification round in flight: `gamma` drafts (and, past the first round, the previous one's candidate). */
export interface Round extends Sent {
  gamma: number;
  inputLength: number;
  /** Time the pipeline waited for this round's drafts. */
  draftWaitMs: number;
}

/** What a round sends: `input` from absolute position pos0, with the target's predictions kept from row keepFrom. */
export interface RoundRequest {
  pos0: number;
  input: number[];
  keepFrom: number;
}

export interface SchedulerOptions {
  parallel: boolean;
  /** Whether this tab also runs a stage of the target (see SpecOptions.sharesCompute). */
  sharesCompute: boolean;
  /** Most rounds in flight (1 sequentially). */
  maxInFlight: number;
  /** A fixed draft length, or null for the controller's. */
  fixedGamma: number | null;
  /** Positions the target's caches can hold, and tokens the turn may emit. */
  maxSeq: number;
  maxTokens: number;
}

/** What the scheduler reads of the draft-length controller. */
export type ScheduleControl = Pick<DraftLengthController, 'gamma' | 'inFlight' | 'alpha'>;

export class RoundScheduler {
  /** Prompt + emitted tokens; every token but the last is in the target's caches after a round. */
  readonly ctx: number[];
  /** Drafted continuation of ctx, on the bet that everything is accepted: drafts[i] sits at ctx.length + i. */
  drafts: Drafted[] = [];
  /**
   * Verification rounds in flight, oldest first: the first verifies drafts[0, gamma); each later one starts at the
   * previous round's candidate (the draft's guess for the target's own token) and verifies gamma more.
   */
  readonly inflight: Round[] = [];
  /** Where the next first round starts: the target's caches hold ctx up to here. */
  targetPos = 0;
  private readonly promptLength: number;

  /** `cachedHistory`: what the target's caches hold (the coordinator's record); the prefix it shares is reused. */
  constructor(
    ids: readonly number[],
    cachedHistory: readonly number[],
    private readonly opts: SchedulerOptions,
    private readonly control: ScheduleControl,
  ) {
    this.ctx = ids.slice();
    this.promptLength = ids.length;
    // At least the prompt's last token is sent (its row is the first prediction).
    const h = cachedHistory;
    while (this.targetPos < h.length && this.targetPos < ids.length - 1 && h[this.targetPos] === ids[this.targetPos]) {
      this.targetPos++;
    }
  }

  /** Tokens emitted so far. */
  get emitted(): number {
    return this.ctx.length - this.promptLength;
  }

  /** The draft length rounds go out at: the fixed one, or the controller's proposal. */
  get gamma(): number {
    return this.opts.fixedGamma ?? this.control.gamma;
  }

  /**
   * Rounds to keep in flight now: the controller's proposal under 'auto' in a draft-only tab (never above the cap),
   * else the cap (a fixed gamma, or a tab whose drafting ahead is gated by aheadAllowed instead).
   */
  inFlightLimit(): number {
    const { fixedGamma, sharesCompute, maxInFlight } = this.opts;
    return fixedGamma === null && !sharesCompute ? Math.min(maxInFlight, this.control.inFlight) : maxInFlight;
  }

  /**
   * Drafting ahead (parallel) pays only when the rounds in flight are accepted. A tab that also runs a stage
   * shares its compute with it, so there it drafts past the first candidate, and sends later rounds, only when
   * the measured odds are good; a tab holding only the draft is idle while it waits, and always drafts ahead.
   */
  aheadAllowed(): boolean {
    return !this.opts.sharesCompute || this.control.alpha ** Math.max(1, this.gamma) >= 0.25;
  }

  /** Drafts the rounds in flight have sent (candidates of the later rounds included). */
  covered(): number {
    return this.inflight.length === 0 ? 0 : this.inflight.reduce((n, r) => n + r.gamma, 0) + this.inflight.length - 1;
  }

  /** Tokens the rounds in flight emit if all of them are accepted. */
  projected(): number {
    return this.inflight.reduce((n, r) => n + r.gamma + 1, 0);
  }

  /** The next round's draft length (negative: the rounds in flight already reach max tokens or the context's end). */
  nextGamma(): number {
    const p = this.projected();
    const { maxSeq, maxTokens } = this.opts;
    const g = Math.min(this.gamma, maxSeq - (this.ctx.length + p) - 1, maxTokens - (this.emitted + p) - 1);
    return this.inflight.length === 0 ? Math.max(0, g) : g;
  }

  /** Drafts needed before a round of `gamma` can go: a later round also needs the previous round's candidate. */
  need(gamma: number): number {
    return this.covered() + (this.inflight.length > 0 ? 1 : 0) + gamma;
  }

  /** The draft length of a round that can go now (its drafts are ready and the window has room), or null. */
  ready(): number | null {
    if (this.inflight.length >= (this.aheadAllowed() ? this.inFlightLimit() : 1)) return null;
    const gamma = this.nextGamma();
    return gamma < 0 || this.drafts.length < this.need(gamma) ? null : gamma;
  }

  /**
   * How many drafts the line should hold before the turn waits for a reply: the first round's (the pipeline
   * waits), or ahead while rounds are in flight (parallel only): the next round's candidate and tokens, or only
   * the candidate when drafting ahead is not allowed.
   */
  draftsWanted(): number {
    const gamma = this.nextGamma();
    if (this.inflight.length === 0) return this.need(gamma);
    if (!this.opts.parallel) return 0;
    return this.aheadAllowed() && gamma >= 0 ? this.need(gamma) : this.covered() + 1;
  }

  /** What a round of `gamma` sends: from the target's position, or from the last round's candidate. */
  request(gamma: number): RoundRequest {
    if (this.inflight.length === 0) {
      const input = [...this.ctx.slice(this.targetPos), ...this.drafts.slice(0, gamma).map((d) => d.token)];
      return { pos0: this.targetPos, input, keepFrom: this.ctx.length - 1 - this.targetPos };
    }
    const c = this.covered(); // drafts[c] is the previous round's candidate, at position ctx.length + c
    return { pos0: this.ctx.length + c, input: this.drafts.slice(c, c + 1 + gamma).map((d) => d.token), keepFrom: 0 };
  }

  /** A round went out; true when it was sent ahead (on top of rounds still in flight). */
  add(round: Round): boolean {
    this.inflight.push(round);
    return this.inflight.length > 1;
  }

  /** The oldest round's reply is being judged: it leaves the window. */
  shift(): Round {
    return this.inflight.shift()!;
  }

  /** The judged round was accepted whole and `emitted` tokens followed: the next round in flight starts here. */
  advance(emitted: number): void {
    this.drafts = this.drafts.slice(emitted);
  }

  /**
   * A rejection (or a stop) after `emitted` tokens discards every speculative token past it, and the rounds sent on
   * top of them: returns how many drafts were thrown away, and those rounds (they still run through the stages).
   */
  discard(emitted: number): { discarded: number; stale: Round[] } {
    const discarded = Math.max(0, this.drafts.length - emitted);
    this.drafts = [];
    return { discarded, stale: this.inflight.splice(0) };
  }

  /** The turn ends: every round still in flight. */
  drain(): Round[] {
    return this.inflight.splice(0);
  }
}
