// The draft model, whole in the person's tab: one Stage holding every draft layer, the embedding and the LM head.
// It keeps its own KV cache in step with the speculative context by longest common prefix, so discarding
// speculative work (a rejection) is a rollback of its cache to where the accepted context diverges.
import type { Backend } from '../backend/types.ts';
import { ShoalError } from '../errors.ts';
import type { ModelSpec } from '../model/config.ts';
import { Stage } from '../model/stage.ts';
import type { WeightProvider } from '../model/stage.ts';
import { commonPrefixLength } from '../model/prefix.ts';
import { argmax } from '../model/sampler.ts';
import { ComputeFloor } from '../profile/emulation.ts';

export interface DraftOptions {
  /**
   * Use only the model's first `layers` layers with its own final norm and LM head (a layer-skip draft of the
   * target itself: it shares tokenizer, embedding and head). Default: every layer of the given model.
   */
  layers?: number;
  maxSeq?: number;
  /**
   * Called after each draft step with its compute time (the tab's emulated slowdown pays its debt here, as the
   * stages do), so a "phone" drafts as slowly as it computes: the step's uncontended time (ComputeFloor).
   */
  afterCompute?: (computeMs: number) => Promise<unknown>;
}

export class DraftModel {
  /** Tokens whose keys and values the draft's cache holds, in order. */
  private cached: number[] = [];
  /** Draft positions computed so far (for ms per token). */
  positions = 0;
  /** Wall time of every step, emulated slowdown included. */
  computeMs = 0;
  /** Steps that ran exactly one position (one drafted token each), and their wall time: the draft's ms per token. */
  tokenSteps = 0;
  tokenStepMs = 0;
  private readonly floor = new ComputeFloor();

  private constructor(readonly stage: Stage, private readonly afterCompute?: (computeMs: number) => Promise<unknown>) {}

  get spec(): ModelSpec {
    return this.stage.spec;
  }

  static async open(model: WeightProvider & { spec: ModelSpec }, backend: Backend, opts: DraftOptions = {}): Promise<DraftModel> {
    const n = opts.layers ?? model.spec.nLayers;
    if (!(Number.isInteger(n) && n >= 1 && n <= model.spec.nLayers)) throw new ShoalError('ERR_BAD_ARGS', `draft layers must be an integer in 1..${model.spec.nLayers} (got ${n})`);
    // A truncated spec makes layer n-1 the last one, so the stage also applies the final norm and LM head.
    const spec: ModelSpec = { ...model.spec, nLayers: n };
    const stage = new Stage(backend, spec, { start: 0, end: n }, opts.maxSeq);
    await stage.loadAll(model);
    return new DraftModel(stage, opts.afterCompute);
  }

  /** Logits of the token that follows `context` (runs only the positions its cache does not already hold). */
  async nextLogits(context: number[]): Promise<Float32Array> {
    if (context.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'the draft needs at least one token of context');
    let common = commonPrefixLength(this.cached, context);
    if (common === context.length) common--; // one position must run to produce logits
    this.stage.rollback(common);
    this.cached.length = common;
    const fresh = context.slice(common);
    const logits = await this.step(fresh);
    this.cached.push(...fresh);
    return logits;
  }

  /** Run `tokens` at the stage's position and return the last logits, with the timing (and slowdown) accounting. */
  private async step(tokens: number[]): Promise<Float32Array> {
    const t0 = performance.now();
    const out = await this.stage.forward(Int32Array.from(tokens), { logits: 'last' });
    // The slowdown scales this step's own compute: not the other tasks (replies, acks) that ran while it yielded, nor
    // the time other tabs on this machine's cores took from it (ComputeFloor).
    if (this.afterCompute) await this.afterCompute(this.floor.observe(tokens.length, performance.now() - t0 - out.yieldedMs));
    const ms = performance.now() - t0;
    this.computeMs += ms;
    this.positions += tokens.length;
    if (tokens.length === 1) { this.tokenSteps++; this.tokenStepMs += ms; }
    return out.logits!;
  }

  /**
   * Greedy continuation of `prefix` + `first` (an alternative to the token the main line drafted after `prefix`),
   * `steps` tokens long, drafted in a branch of the cache: the main line's cached positions past `prefix` stay, so
   * drafting resumes there afterwards without recomputing them. Returns the drafted tokens (after `first`).
   */
  async branch(prefix: number[], first: number, steps: number): Promise<number[]> {
    if (prefix.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'a draft branch needs at least one token of context');
    const out: number[] = [];
    if (steps < 1) return out;
    if (commonPrefixLength(this.cached, prefix) < prefix.length) {
      // The main line's cache does not reach the branch point: draft it on the main line (nothing to keep).
      let ctx = [...prefix, first];
      for (let i = 0; i < steps; i++) { const t = argmax(await this.nextLogits(ctx)); out.push(t); ctx = [...ctx, t]; }
      return out;
    }
    await this.stage.beginBranch(prefix.length, steps);
    try {
      let next = first;
      for (let i = 0; i < steps; i++) {
        next = argmax(await this.step([next]));
        out.push(next);
      }
    } finally {
      await this.stage.endBranch();
    }
    return out;
  }

  /** Forget the cached context (the next call recomputes from position 0), e.g. to time runs from cold. */
  reset(): void {
    this.stage.rollback(0);
    this.cached = [];
  }

  dispose(): void {
    this.stage.dispose();
  }
}
