// The router's small model: a LocalModel (model/localModel.ts: the whole model in this tab, KV reused by common
// prefix) that also generates a whole reply, with the router's stop rules and its time to first token.
import type { Backend } from '../backend/types.ts';
import { ShoalError } from '../errors.ts';
import { LocalModel } from '../model/localModel.ts';
import type { LocalStep, ModelWeights } from '../model/localModel.ts';
import { Sampler } from '../model/sampler.ts';

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

export class LocalEngine extends LocalModel {
  /**
   * `afterCompute` gets each forward's compute time: the tab's emulated slowdown pays its debt there, on the step's
   * uncontended compute (the rule every LocalModel follows).
   */
  static async load(
    model: ModelWeights,
    backend: Backend,
    maxSeq = Math.min(model.spec.maxSeqLen, 2048),
    afterCompute?: (computeMs: number) => Promise<unknown>,
  ): Promise<LocalEngine> {
    return new LocalEngine(await LocalModel.loadStage(model, backend, { maxSeq }), afterCompute);
  }

  /** Generate from the whole conversation `ids`; the cached prefix is not recomputed. */
  async generate(ids: readonly number[], opts: LocalGenerateOptions): Promise<LocalGenerateResult> {
    if (!(Number.isInteger(opts.maxTokens) && opts.maxTokens >= 1)) {
      throw new ShoalError('ERR_BAD_ARGS', `maxTokens must be a positive integer, got ${opts.maxTokens}`);
    }
    const sampler = new Sampler(opts.sampling ?? {});
    // Greedy takes the argmax on the device and reads no logits; sampling reads the last row.
    const mode = sampler.greedy ? 'none' : 'last';
    const t0 = now();
    const first = await this.prefill(ids, mode, sampler.greedy);
    const pick = (r: LocalStep): number => (sampler.greedy ? r.nextToken! : sampler.sample(r.logits!));
    const tokens: number[] = [pick(first)];
    const tFirst = now();
    opts.onToken?.(tokens[0], 0);
    const eos = opts.eos ?? [];
    let stoppedBy: LocalGenerateResult['stoppedBy'] = 'maxTokens';
    for (;;) {
      const last = tokens[tokens.length - 1];
      if (eos.includes(last)) {
        stoppedBy = 'eos';
        break;
      }
      if (tokens.length >= opts.maxTokens) {
        stoppedBy = 'maxTokens';
        break;
      }
      if (opts.shouldStop?.()) {
        stoppedBy = 'stop';
        break;
      }
      if (this.stage.pos + 1 > this.maxSeq) {
        stoppedBy = 'context';
        break;
      }
      tokens.push(pick(await this.append([last], mode, sampler.greedy)));
      opts.onToken?.(tokens[tokens.length - 1], tokens.length - 1);
    }
    const result = { tokens, stoppedBy, reusedTokens: first.reusedTokens, prefilledTokens: first.prefilledTokens };
    return { ...result, ttftMs: tFirst - t0, decodeMs: now() - tFirst };
  }
}
