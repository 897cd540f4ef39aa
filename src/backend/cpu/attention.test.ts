// The CPU attention, wasm SIMD (per head, 16- and 4-float steps) and JavaScript (heads of a KV group in pairs), against
// a plain reference, over group sizes 1-4 and head sizes that are and are not multiples of 16 and 4 (the tail loops).
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from './index.ts';

function reference(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  T: number,
  pos0: number,
  nHeads: number,
  nKvHeads: number,
  headDim: number,
): Float32Array {
  const qDim = nHeads * headDim,
    kvDim = nKvHeads * headDim,
    group = nHeads / nKvHeads;
  const out = new Float32Array(T * qDim);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / group),
        n = pos0 + t + 1;
      const s = Array.from({ length: n }, (_, p) => {
        let d = 0;
        for (let i = 0; i < headDim; i++) d += q[t * qDim + h * headDim + i] * k[p * kvDim + kvh * headDim + i];
        return d / Math.sqrt(headDim);
      });
      const m = Math.max(...s),
        e = s.map((x) => Math.exp(x - m)),
        z = e.reduce((a, b) => a + b, 0);
      for (let p = 0; p < n; p++)
        for (let i = 0; i < headDim; i++)
          out[t * qDim + h * headDim + i] += (e[p] / z) * v[p * kvDim + kvh * headDim + i];
    }
  }
  return out;
}

describe.each([
  ['WebAssembly SIMD', true],
  ['JavaScript', false],
])('CPU attention (%s)', (_name, simd) => {
  it.each([
    [4, 4, 8],
    [4, 2, 8],
    [6, 2, 6],
    [8, 2, 5],
    [4, 1, 12],
    [9, 3, 64],
    [4, 2, 20],
    [2, 1, 16],
  ])('%i heads over %i KV heads of size %i matches the plain reference', async (nHeads, nKvHeads, headDim) => {
    const b = createCpuBackend({ simd });
    const kvDim = nKvHeads * headDim,
      maxSeq = 16,
      T = 3,
      pos0 = 9;
    const cache = b.createKvCache(maxSeq, kvDim) as unknown as { k: Float32Array; v: Float32Array };
    let seed = 1;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    cache.k.forEach((_, i, a) => {
      a[i] = rnd();
    });
    cache.v.forEach((_, i, a) => {
      a[i] = rnd();
    });
    const qd = Float32Array.from({ length: T * nHeads * headDim }, rnd);
    const got = await b.read(
      b.attention(b.fromHost(qd, [T, nHeads * headDim]), cache as never, pos0, { nHeads, nKvHeads, headDim }),
    );
    const want = reference(qd, cache.k, cache.v, T, pos0, nHeads, nKvHeads, headDim);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-5);
  });
});
