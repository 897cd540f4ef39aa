// The speculative acceptance rules: greedy (the draft's token must be the target's argmax) and speculative
// sampling (Leviathan et al. 2023 / Chen et al. 2023): accept x ~ q with probability min(1, p(x)/q(x)), else draw
// from normalise(max(0, p - q)). Either way every emitted token has exactly the target's distribution.
import { argmax, sampleFrom, softmax, topP } from '../model/sampler.ts';

export interface Decision {
  accepted: boolean;
  /** The token to emit: the draft's when accepted, else the target's correction. */
  token: number;
}

/** Greedy: accept iff the draft guessed the target's argmax; otherwise emit the argmax. */
export function acceptGreedy(draftToken: number, targetToken: number): Decision {
  return draftToken === targetToken ? { accepted: true, token: draftToken } : { accepted: false, token: targetToken };
}

/**
 * Speculative sampling for one drafted token x drawn from q. p and q are full distributions over the vocabulary
 * (after the same temperature and top-p). `rand` is the controller's seeded generator.
 */
export function acceptSampled(x: number, p: Float64Array, q: Float64Array, rand: () => number): Decision {
  const px = p[x],
    qx = q[x];
  // q(x) > 0 since x was drawn from q; guard anyway so a bad draft can never accept a token the target rules out.
  if (qx > 0 && rand() < Math.min(1, px / qx)) return { accepted: true, token: x };
  return { accepted: false, token: sampleFrom(residual(p, q), rand) };
}

/** normalise(max(0, p - q)); when p == q everywhere (the rejection had probability 0) fall back to p. */
export function residual(p: Float64Array, q: Float64Array): Float64Array {
  const r = new Float64Array(p.length);
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    r[i] = Math.max(0, p[i] - q[i]);
    sum += r[i];
  }
  if (!(sum > 0)) return p;
  for (let i = 0; i < r.length; i++) r[i] /= sum;
  return r;
}

/** The sampling distribution a Sampler would draw from (temperature, then top-p), for target and draft alike. */
export function samplingProbs(logits: Float32Array, temperature: number, topPMass: number): Float64Array {
  return topP(softmax(logits, temperature), topPMass);
}

/** Greedy prediction of a logits row. */
export function greedyToken(logits: Float32Array): number {
  return argmax(logits);
}
