// The sampling rule is exact: over a tiny vocabulary, the tokens speculative sampling emits follow the target's
// distribution (chi-square goodness of fit at a fixed seed), even when the draft is far from the target.
import { describe, expect, it } from 'vitest';
import { seededRandom, sampleFrom } from '../model/sampler.ts';
import { acceptGreedy, acceptSampled, residual } from './acceptance.ts';

/** Chi-square statistic of observed counts against expected probabilities. */
function chiSquare(counts: number[], probs: ArrayLike<number>, n: number): number {
  let x2 = 0;
  for (let i = 0; i < counts.length; i++) {
    const e = probs[i] * n;
    if (e > 0) x2 += (counts[i] - e) ** 2 / e;
    else if (counts[i] > 0) return Infinity; // emitted a token the target rules out
  }
  return x2;
}

// 99.9th percentiles of chi-square with k degrees of freedom (tables): a true match fails 1 time in 1000.
const CHI2_999: Record<number, number> = { 2: 13.82, 3: 16.27, 4: 18.47 };

function emitOne(p: Float64Array, q: Float64Array, rand: () => number): { token: number; accepted: boolean } {
  const x = sampleFrom(q, rand); // the draft proposes from q
  return acceptSampled(x, p, q, rand);
}

describe('speculative sampling rule', () => {
  const cases: [string, number[], number[]][] = [
    ['close draft', [0.4, 0.3, 0.15, 0.1, 0.05], [0.35, 0.35, 0.1, 0.1, 0.1]],
    ['far draft', [0.05, 0.1, 0.6, 0.05, 0.2], [0.7, 0.1, 0.05, 0.1, 0.05]],
    ['draft misses a token', [0.25, 0.25, 0.25, 0.25, 0], [0, 0.5, 0.2, 0.2, 0.1]],
    ['target rules a token out', [0.5, 0, 0.3, 0.2], [0.25, 0.25, 0.25, 0.25]],
  ];
  it.each(cases)('%s: emitted tokens follow the target (chi-square, seed 7)', (_name, pArr, qArr) => {
    const p = Float64Array.from(pArr),
      q = Float64Array.from(qArr);
    const rand = seededRandom(7);
    const n = 40_000;
    const counts = new Array<number>(p.length).fill(0);
    let accepted = 0;
    for (let i = 0; i < n; i++) {
      const r = emitOne(p, q, rand);
      counts[r.token]++;
      if (r.accepted) accepted++;
    }
    const support = pArr.filter((v) => v > 0).length;
    expect(chiSquare(counts, p, n)).toBeLessThan(CHI2_999[support - 1]);
    // acceptance rate = sum_x min(p, q) (the overlap of the two distributions)
    const overlap = pArr.reduce((s, v, i) => s + Math.min(v, qArr[i]), 0);
    expect(Math.abs(accepted / n - overlap)).toBeLessThan(0.01);
  });

  it('the test can fail: emitting the draft token unconditionally is far from the target', () => {
    const p = Float64Array.from([0.05, 0.1, 0.6, 0.05, 0.2]),
      q = Float64Array.from([0.7, 0.1, 0.05, 0.1, 0.05]);
    const rand = seededRandom(7);
    const counts = [0, 0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) counts[sampleFrom(q, rand)]++;
    expect(chiSquare(counts, p, 40_000)).toBeGreaterThan(CHI2_999[4]);
  });

  it('residual is the normalised positive part of p - q, and p when p == q', () => {
    const r = residual(Float64Array.from([0.5, 0.3, 0.2]), Float64Array.from([0.2, 0.5, 0.3]));
    expect(Array.from(r)).toEqual([1, 0, 0]);
    const p = Float64Array.from([0.5, 0.5]);
    expect(residual(p, p)).toBe(p);
  });

  it('greedy accepts exactly the target argmax', () => {
    expect(acceptGreedy(3, 3)).toEqual({ accepted: true, token: 3 });
    expect(acceptGreedy(3, 4)).toEqual({ accepted: false, token: 4 });
  });
});
