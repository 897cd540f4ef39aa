// Token sampling: greedy, or temperature + top-p with a seeded generator (reproducible runs).
import { seededDraw, seededRandom } from '../random.ts';

export { seededRandom };

export function argmax(logits: Float32Array, offset = 0, length = logits.length - offset): number {
  let best = 0,
    bv = -Infinity;
  for (let i = 0; i < length; i++)
    if (logits[offset + i] > bv) {
      bv = logits[offset + i];
      best = i;
    }
  return best;
}

/** Softmax of logits / temperature, as float64 probabilities. */
export function softmax(logits: Float32Array, temperature = 1): Float64Array {
  const p = new Float64Array(logits.length);
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    p[i] = Math.exp((logits[i] - max) / temperature);
    sum += p[i];
  }
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

/** Keep the smallest set of most likely tokens whose mass reaches topP; renormalise. */
export function topP(probs: Float64Array, p: number): Float64Array {
  if (p >= 1) return probs;
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]);
  const out = new Float64Array(probs.length);
  let mass = 0;
  for (const i of order) {
    out[i] = probs[i];
    mass += probs[i];
    if (mass >= p) break;
  }
  for (let i = 0; i < out.length; i++) out[i] /= mass;
  return out;
}

/** Draw an index from a discrete distribution. */
export function sampleFrom(probs: Float64Array, rand: () => number): number {
  let r = rand();
  for (let i = 0; i < probs.length; i++) {
    r -= probs[i];
    if (r < 0) return i;
  }
  for (let i = probs.length - 1; i >= 0; i--) if (probs[i] > 0) return i; // rounding left r >= 0
  return 0;
}

export interface SamplerOptions {
  temperature?: number;
  topP?: number;
  seed?: number;
}

/**
 * Greedy, or temperature + top-p sampling where token k uses draw k of the seed (seededDraw): the k-th token depends
 * only on its logits, the seed and k, never on what this object saw before, so a turn resumed at token k (a re-plan,
 * a lost tab) samples exactly as an uninterrupted one.
 */
export class Sampler {
  /** Index of the next token when the caller does not give one. */
  private next = 0;
  constructor(readonly opts: SamplerOptions = {}) {}
  get greedy(): boolean {
    return !this.opts.temperature || this.opts.temperature <= 0;
  }
  sample(logits: Float32Array, index = this.next): number {
    this.next = index + 1;
    if (this.greedy) return argmax(logits);
    const seed = this.opts.seed ?? 0;
    return sampleFrom(topP(softmax(logits, this.opts.temperature), this.opts.topP ?? 1), () => seededDraw(seed, index));
  }
}
