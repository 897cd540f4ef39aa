// The router: scores each query, predicts both sides' latency from what each side has cached, applies the
// policy, runs the turn on one side and feeds the measured time back into the predictor. Each side keeps its
// own KV cache of the conversation; the router only keeps the conversation itself.
import { ShoalError } from '../errors.ts';
import { Emitter } from '../mesh/emitter.ts';
import type { ChatMessage, Tokenizer } from '../tokenizer/index.ts';
import type { DifficultyScorer } from './difficulty.ts';
import type { LatencyPredictor, Prediction, Side, SideParams } from './predictor.ts';
import { decide } from './rule.ts';
import type { Decision, PolicyConfig } from './rule.ts';

export interface SideRun {
  tokens: number[];
  stoppedBy: string;
  ttftMs: number;
  /** First token to last. */
  decodeMs: number;
}

/** One way of answering: the local engine or the mesh. */
export interface RouteSide {
  /** Leading tokens of `ids` this side holds in its KV cache. */
  cachedPrefix(ids: readonly number[]): number;
  /** Raw cost parameters from the live profiles (the predictor corrects them). */
  params(): SideParams;
  generate(
    ids: readonly number[],
    opts: { maxTokens: number; eos: number[]; onToken?: (t: number, i: number) => void },
  ): Promise<SideRun>;
}

export interface TurnRecord {
  index: number;
  side: Side;
  decision: Decision;
  policy: PolicyConfig;
  p: number;
  scorer: string;
  scoreMs: number;
  predicted: Record<Side, Prediction>;
  /** Re-prefill of history the chosen side lacked (predicted, seconds). */
  switchSec: number;
  contextTokens: number;
  /** Where this turn's query starts in the context (the history before it). */
  historyTokens: number;
  /** Context tokens the chosen side took from its cache. */
  reusedTokens: number;
  tokens: number[];
  stoppedBy: string;
  ttftMs: number;
  decodeMs: number;
  /** Scoring + the chosen side's run, as measured. */
  latencyMs: number;
}

export interface RouterStats {
  turns: number;
  largeCalls: number;
  meanLatencyMs: number;
}

const now = (): number => performance.now();

export class Router {
  /** The conversation as ids (contexts and answers), what the next turn's context extends. */
  conversation: number[] = [];
  readonly messages: ChatMessage[] = [];
  readonly records: TurnRecord[] = [];
  private readonly events = new Emitter<{ turn: [TurnRecord] }>();
  busy = false;

  constructor(
    readonly sides: Record<Side, RouteSide>,
    public scorer: DifficultyScorer,
    readonly predictor: LatencyPredictor,
    public policy: PolicyConfig,
    public eos: number[] = [],
  ) {}

  on(fn: (r: TurnRecord) => void): () => void {
    return this.events.on('turn', fn);
  }

  stats(): RouterStats {
    const n = this.records.length;
    return {
      turns: n,
      largeCalls: this.records.filter((r) => r.side === 'large').length,
      meanLatencyMs: n ? this.records.reduce((s, r) => s + r.latencyMs, 0) / n : 0,
    };
  }

  /** Append raw query ids to the conversation and answer them. */
  turnIds(
    queryIds: readonly number[],
    opts: { maxTokens: number; text?: string; onToken?: (t: number, i: number) => void },
  ): Promise<TurnRecord> {
    if (queryIds.length === 0) return Promise.reject(new ShoalError('ERR_BAD_ARGS', 'empty query'));
    const history = this.conversation.length;
    return this.run([...this.conversation, ...queryIds], history, opts.text ?? '', opts, (r) => {
      this.conversation = [...this.conversation, ...queryIds, ...r.tokens];
    });
  }

  /** One chat turn: the conversation through the chat template (both models share the tokenizer). */
  async chat(
    text: string,
    tok: Tokenizer,
    opts: { maxTokens: number; onToken?: (t: number, i: number) => void },
  ): Promise<TurnRecord & { text: string }> {
    const context = tok.applyChatTemplate([...this.messages, { role: 'user', content: text }], {
      addGenerationPrompt: true,
    });
    let history = 0;
    while (
      history < this.conversation.length &&
      history < context.length - 1 &&
      this.conversation[history] === context[history]
    )
      history++;
    const r = await this.run(context, history, text, opts, (run) => {
      const answer = run.stoppedBy === 'eos' ? run.tokens.slice(0, -1) : run.tokens;
      this.messages.push({ role: 'user', content: text }, { role: 'assistant', content: tok.decode(answer) });
      this.conversation = [...context, ...run.tokens];
    });
    const answer = r.stoppedBy === 'eos' ? r.tokens.slice(0, -1) : r.tokens;
    return { ...r, text: tok.decode(answer) };
  }

  /** Predict both sides for a context (what the page shows before a turn, and what run() decides on). */
  predict(context: readonly number[], historyTokens: number): Record<Side, Prediction> {
    const q = (side: Side) => ({
      contextTokens: context.length,
      cachedTokens: this.sides[side].cachedPrefix(context),
      historyTokens,
    });
    for (const side of ['small', 'large'] as const) this.predictor.setParams(side, this.sides[side].params());
    return { small: this.predictor.predict('small', q('small')), large: this.predictor.predict('large', q('large')) };
  }

  newConversation(): void {
    this.conversation = [];
    this.messages.length = 0;
  }

  private async run(
    context: number[],
    historyTokens: number,
    text: string,
    opts: { maxTokens: number; onToken?: (t: number, i: number) => void },
    commit: (r: SideRun) => void,
  ): Promise<TurnRecord> {
    if (this.busy) throw new ShoalError('ERR_PIPELINE', 'a routed turn is already running');
    this.busy = true;
    try {
      const t0 = now();
      const p = await this.scorer.score(text, context);
      const scoreMs = now() - t0;
      // Predicted after scoring: a scorer that runs the small model leaves the context in its cache.
      const predicted = this.predict(context, historyTokens);
      const decision = decide(this.policy, p, predicted.small.totalSec, predicted.large.totalSec);
      const side = decision.side;
      const reusedTokens = this.sides[side].cachedPrefix(context);
      const t1 = now();
      const run = await this.sides[side].generate(context, {
        maxTokens: opts.maxTokens,
        eos: this.eos,
        onToken: opts.onToken,
      });
      const sideMs = now() - t1;
      this.predictor.observe(side, predicted[side], {
        ttftSec: run.ttftMs / 1000,
        decodeSec: run.decodeMs / 1000,
        outTokens: run.tokens.length,
      });
      commit(run);
      const record: TurnRecord = {
        index: this.records.length,
        side,
        decision,
        policy: { ...this.policy },
        p,
        scorer: this.scorer.name,
        scoreMs,
        predicted,
        switchSec: predicted[side].switchSec,
        contextTokens: context.length,
        historyTokens,
        reusedTokens,
        tokens: run.tokens,
        stoppedBy: run.stoppedBy,
        ttftMs: run.ttftMs,
        decodeMs: run.decodeMs,
        latencyMs: scoreMs + sideMs,
      };
      this.records.push(record);
      this.events.emit('turn', record);
      return record;
    } finally {
      this.busy = false;
    }
  }
}
