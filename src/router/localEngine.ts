// The small model held whole by this tab: one Stage over every layer, its own KV cache and token history.
// Each call rolls the cache back to the common prefix with the new context and prefills only the rest.
import type { Backend } from '../backend/types.ts';
import { ShoalError } from '../errors.ts';
import type { ModelSpec } from '../model/config.ts';
import { loadStages } from '../model/infer.ts';
import { Sampler } from '../model/sampler.ts';
import type { Stage, WeightProvider } from '../model/stage.ts';
import { commonPrefixLength } from '../model/prefix.ts';

export interface LocalGenerateOptions {
  maxTokens: number;
  eos?: number[];
  sampling?: { temperature: number; topP: number; seed: number };
  onToken?: (token: number, index: number) => void;
  /** Checked between tokens; true stops after the token in flight. */
  shouldStop?: () => boolean;
}

export interface LocalGenerateResult {
  tokens: number[];
  stoppedBy: 'eos' | 'maxTokens' | 'stop' | 'context';
  /** Leading context tokens taken from the cache. */
  reusedTokens: number;
  prefilledTokens: number;
  ttftMs: number;
  /** First token to last. */
  decodeMs: number;
}

const now = (): number => performance.now();

export class LocalEngine {
  /** Tokens held in the KV cache, in order. */
  private history: number[] = [];

  private constructor(private readonly stage: Stage, readonly spec: ModelSpec, private readonly afterCompute?: (elapsedMs: number) => Promise<unknown>) {}

  /** `afterCompute` gets each forward's measured time (the tab's emulated compute slowdown pays its debt there). */
  static async load(model: WeightProvider & { spec: ModelSpec }, backend: Backend, maxSeq = Math.min(model.spec.maxSeqLen, 2048), afterCompute?: (elapsedMs: number) => Promise<unknown>): Promise<LocalEngine> {
    const [stage] = await loadStages(model, backend, [{ start: 0, end: model.spec.nLayers }], maxSeq);
    return new LocalEngine(stage, model.spec, afterCompute);
  }

  private async forward(ids: Int32Array, logits: 'all' | 'last' | 'none'): Promise<{ logits?: Float32Array; nextToken?: number }> {
    const t0 = now();
    const r = await this.stage.forward(ids, { logits, argmax: true });
    if (this.afterCompute) await this.afterCompute(now() - t0);
    return r;
  }

  get maxSeq(): number { return this.stage.maxSeq; }
  get cached(): readonly number[] { return this.history; }

  /** Leading tokens of `ids` this engine would reuse (at least one position always runs). */
  cachedPrefix(ids: readonly number[]): number {
    const n = commonPrefixLength(this.history, ids);
    return Math.min(n, Math.max(0, ids.length - 1));
  }

  /** Bring the cache to exactly `ids`; returns the logits of the prefilled rows (mode 'all') or the last one. */
  async prefill(ids: readonly number[], logits: 'all' | 'last' | 'none' = 'last'): Promise<{ logits?: Float32Array; nextToken: number; reusedTokens: number; prefilledTokens: number }> {
    this.checkIds(ids);
    if (ids.length > this.maxSeq) throw new ShoalError('ERR_BAD_ARGS', `the context (${ids.length} tokens) exceeds the small model's ${this.maxSeq} positions; start a new conversation`);
    const common = this.cachedPrefix(ids);
    this.stage.rollback(common);
    this.history = this.history.slice(0, common);
    try {
      const r = await this.forward(Int32Array.from(ids.slice(common)), logits);
      this.history = ids.slice();
      return { logits: r.logits, nextToken: r.nextToken!, reusedTokens: common, prefilledTokens: ids.length - common };
    } catch (e) {
      this.stage.reset(); // a failed forward leaves the cache in an unknown state
      this.history = [];
      throw e;
    }
  }

  /** Generate from the whole conversation `ids`; the cached prefix is not recomputed. */
  async generate(ids: readonly number[], opts: LocalGenerateOptions): Promise<LocalGenerateResult> {
    if (!(Number.isInteger(opts.maxTokens) && opts.maxTokens >= 1)) throw new ShoalError('ERR_BAD_ARGS', `maxTokens must be a positive integer, got ${opts.maxTokens}`);
    const sampler = new Sampler(opts.sampling ?? {});
    const mode = sampler.greedy ? 'none' : 'last';
    const t0 = now();
    const first = await this.prefill(ids, mode);
    const pick = (r: { logits?: Float32Array; nextToken?: number }): number => (sampler.greedy ? r.nextToken! : sampler.sample(r.logits!));
    const tokens: number[] = [pick(first)];
    const tFirst = now();
    opts.onToken?.(tokens[0], 0);
    const eos = opts.eos ?? [];
    let stoppedBy: LocalGenerateResult['stoppedBy'] = 'maxTokens';
    for (;;) {
      const last = tokens[tokens.length - 1];
      if (eos.includes(last)) { stoppedBy = 'eos'; break; }
      if (tokens.length >= opts.maxTokens) { stoppedBy = 'maxTokens'; break; }
      if (opts.shouldStop?.()) { stoppedBy = 'stop'; break; }
      if (this.stage.pos + 1 > this.maxSeq) { stoppedBy = 'context'; break; }
      let r;
      try {
        r = await this.forward(Int32Array.of(last), mode);
      } catch (e) {
        this.stage.reset();
        this.history = [];
        throw e;
      }
      this.history.push(last);
      tokens.push(pick(r));
      opts.onToken?.(tokens[tokens.length - 1], tokens.length - 1);
    }
    return { tokens, stoppedBy, reusedTokens: first.reusedTokens, prefilledTokens: first.prefilledTokens, ttftMs: tFirst - t0, decodeMs: now() - tFirst };
  }

  /** Forget the conversation (weights stay). */
  reset(): void {
    this.stage.reset();
    this.history = [];
  }

  dispose(): void {
    this.stage.dispose();
    this.history = [];
  }

  private checkIds(ids: readonly number[]): void {
    if (ids.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'empty context');
    for (const id of ids) if (!(Number.isInteger(id) && id >= 0 && id < this.spec.vocabSize)) throw new ShoalError('ERR_BAD_ARGS', `token id ${id} is outside the small model's vocabulary (${this.spec.vocabSize})`);
  }
}
