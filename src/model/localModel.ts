// A whole small model in this tab, KV reused by common prefix: one Stage over its layers (every one, or a bigger
// model's first `layers` with its final norm and head: a layer-skip draft) whose cache follows the caller's context.
// Each call rolls the cache back to where the new context diverges and runs only the rest, so an edited conversation
// (the router's small side, router/localEngine.ts) or rejected drafts (the speculative draft) cost only what changed.
import type { Backend } from '../backend/types.ts';
import { ShoalError } from '../errors.ts';
import { ComputeFloor } from '../profile/emulation.ts';
import type { ModelSpec } from './config.ts';
import { commonPrefixLength } from './prefix.ts';
import { argmax } from './sampler.ts';
import { Stage } from './stage.ts';
import type { LogitsMode, WeightProvider } from './stage.ts';

/** A model's weights and spec (an opened model folder). */
export type ModelWeights = WeightProvider & { spec: ModelSpec };

export interface LocalModelOptions {
  /**
   * Use only the model's first `layers` layers with its own final norm and LM head (a layer-skip draft of the
   * model itself: it shares tokenizer, embedding and head). Default: every layer.
   */
  layers?: number;
  /** Positions the cache holds (default: the model's, at most 2048). */
  maxSeq?: number;
  /**
   * Called after each forward with its compute time: the tab's emulated slowdown pays its debt here, as the stages
   * do, so a "phone" computes as slowly as it would. The time is the step's uncontended compute (ComputeFloor).
   */
  afterCompute?: (computeMs: number) => Promise<unknown>;
}

/** A forward's output: logits of the rows asked for, and the last row's argmax when asked for. */
export interface LocalStep {
  logits?: Float32Array;
  nextToken?: number;
}

export interface Prefilled extends LocalStep {
  /** Leading context tokens taken from the cache, and those run. */
  reusedTokens: number;
  prefilledTokens: number;
}

export class LocalModel {
  /** Tokens whose keys and values the cache holds, in order. */
  private history: number[] = [];
  /** Positions computed so far (for ms per token). */
  positions = 0;
  /** Wall time of every forward, emulated slowdown included. */
  computeMs = 0;
  /** Forwards that ran exactly one position (one drafted token each), and their wall time: ms per token. */
  tokenSteps = 0;
  tokenStepMs = 0;
  private readonly floor = new ComputeFloor();

  protected constructor(
    readonly stage: Stage,
    private readonly afterCompute?: (computeMs: number) => Promise<unknown>,
  ) {}

  static async open(model: ModelWeights, backend: Backend, opts: LocalModelOptions = {}): Promise<LocalModel> {
    return new LocalModel(await LocalModel.loadStage(model, backend, opts), opts.afterCompute);
  }

  /** The one Stage of a local model, its weights loaded. */
  protected static async loadStage(model: ModelWeights, backend: Backend, opts: LocalModelOptions): Promise<Stage> {
    const L = model.spec.nLayers;
    const n = opts.layers ?? L;
    if (!(Number.isInteger(n) && n >= 1 && n <= L)) {
      throw new ShoalError('ERR_BAD_ARGS', `a local model's layers must be an integer in 1..${L} (got ${n})`);
    }
    // A truncated spec makes layer n-1 the last one, so the stage also applies the final norm and LM head.
    const spec: ModelSpec = n === model.spec.nLayers ? model.spec : { ...model.spec, nLayers: n };
    const stage = new Stage(backend, spec, { start: 0, end: n }, opts.maxSeq);
    await stage.loadAll(model);
    return stage;
  }

  get spec(): ModelSpec {
    return this.stage.spec;
  }

  get maxSeq(): number {
    return this.stage.maxSeq;
  }

  get cached(): readonly number[] {
    return this.history;
  }

  /** Leading tokens of `ids` the cache would reuse (at least one position always runs, to give logits). */
  cachedPrefix(ids: readonly number[]): number {
    return Math.min(commonPrefixLength(this.history, ids), Math.max(0, ids.length - 1));
  }

  /**
   * Bring the cache to exactly `ids`, running only the positions it lacks: the logits of the rows run ('all') or of
   * the last one ('last'), and with `wantArgmax` the last row's greedy token.
   */
  async prefill(ids: readonly number[], logits: LogitsMode = 'last', wantArgmax = false): Promise<Prefilled> {
    this.checkIds(ids);
    if (ids.length > this.maxSeq) {
      const why = `the context (${ids.length} tokens) exceeds the small model's ${this.maxSeq} positions`;
      throw new ShoalError('ERR_BAD_ARGS', `${why}; start a new conversation`);
    }
    const common = this.cachedPrefix(ids);
    this.stage.rollback(common);
    this.history.length = common;
    const r = await this.append(ids.slice(common), logits, wantArgmax);
    return { ...r, reusedTokens: common, prefilledTokens: ids.length - common };
  }

  /** Logits of the token that follows `context` (runs only the positions the cache does not already hold). */
  async nextLogits(context: readonly number[]): Promise<Float32Array> {
    return (await this.prefill(context, 'last')).logits!;
  }

  /** Run `tokens` after the cached context, which they join. */
  async append(tokens: readonly number[], logits: LogitsMode, wantArgmax = false): Promise<LocalStep> {
    try {
      const r = await this.run(tokens, logits, wantArgmax);
      this.history.push(...tokens);
      return r;
    } catch (e) {
      this.reset(); // a failed forward leaves the cache in an unknown state
      throw e;
    }
  }

  /**
   * Greedy continuation of `prefix` + `first` (an alternative to the token the main line drafted after `prefix`),
   * `steps` tokens long, drafted in a branch of the cache: the main line's cached positions past `prefix` stay, so
   * drafting resumes there afterwards without recomputing them. Returns the drafted tokens (after `first`).
   */
  async branch(prefix: readonly number[], first: number, steps: number): Promise<number[]> {
    if (prefix.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'a branch needs at least one token of context');
    const out: number[] = [];
    if (steps < 1) return out;
    if (commonPrefixLength(this.history, prefix) < prefix.length) {
      // The main line's cache does not reach the branch point: draft it on the main line (nothing to keep).
      let ctx = [...prefix, first];
      for (let i = 0; i < steps; i++) {
        const t = argmax(await this.nextLogits(ctx));
        out.push(t);
        ctx = [...ctx, t];
      }
      return out;
    }
    await this.stage.beginBranch(prefix.length, steps);
    try {
      let next = first;
      for (let i = 0; i < steps; i++) {
        next = argmax((await this.run([next], 'last', false)).logits!);
        out.push(next);
      }
    } finally {
      await this.stage.endBranch();
    }
    return out;
  }

  /** Forget the cached context (weights stay): the next call recomputes from position 0. */
  reset(): void {
    this.stage.reset();
    this.history = [];
  }

  dispose(): void {
    this.stage.dispose();
    this.history = [];
  }

  /** One forward of `tokens` at the stage's position, then the emulated slowdown, with the timing accounting. */
  private async run(tokens: readonly number[], logits: LogitsMode, wantArgmax: boolean): Promise<LocalStep> {
    const t0 = performance.now();
    const out = await this.stage.forward(Int32Array.from(tokens), { logits, argmax: wantArgmax });
    // The slowdown scales this step's own compute: not the other tasks (replies, acks) that ran while it yielded, nor
    // the time other tabs on this machine's cores took from it (ComputeFloor).
    if (this.afterCompute) {
      await this.afterCompute(this.floor.observe(tokens.length, performance.now() - t0 - out.yieldedMs));
    }
    const ms = performance.now() - t0;
    this.computeMs += ms;
    this.positions += tokens.length;
    if (tokens.length === 1) {
      this.tokenSteps++;
      this.tokenStepMs += ms;
    }
    return { logits: out.logits, nextToken: out.nextToken };
  }

  private checkIds(ids: readonly number[]): void {
    if (ids.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'empty context');
    const V = this.spec.vocabSize;
    for (const id of ids) {
      if (!(Number.isInteger(id) && id >= 0 && id < V)) {
        throw new ShoalError('ERR_BAD_ARGS', `token id ${id} is outside the small model's vocabulary (${V})`);
      }
    }
  }
}
