// The wasm SiLU-times-up and softmax (activationWat.ts, Cephes' expf) against float64 Math.exp: a few f32 roundings
// apart over the whole clamped range, exact 0 and saturation at the ends, and the -Infinity padding ignored.
import { describe, expect, it } from 'vitest';
import { WasmGemm } from './wasmGemm.ts';

function values(n: number, seed: number, scale: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2 * scale;
  });
}

describe('wasm SiLU and softmax', () => {
  it('silu(g) * u is within 1e-6 relative of float64 for |g| up to 100, and exact at 0', () => {
    const g = Float32Array.of(...values(1021, 3, 12), 0, -0, 100, -100, 87, -87, 1e-30);
    const u = values(g.length, 5, 3);
    const want = Array.from(g, (x, i) => (x / (1 + Math.exp(-x))) * u[i]);
    const got = g.slice();
    new WasmGemm().siluMul(got, u);
    for (let i = 0; i < g.length; i++)
      expect(Math.abs(got[i] - want[i]), `g ${g[i]}`).toBeLessThanOrEqual(1e-6 * Math.abs(want[i]) + 1e-37);
    expect(Math.abs(got[1021])).toBe(0); // g = 0 gives a zero (its sign is u's, as in float64)
  });

  it('softmax inside attention matches float64, for contexts of every length mod 4 and wide score ranges', () => {
    const w = new WasmGemm();
    for (const n of [1, 2, 3, 4, 5, 7, 64, 129]) {
      const headDim = 4;
      const k = w.allocF32(n * headDim),
        v = w.allocF32(n * headDim);
      w.f32(k).set(values(n * headDim, n, 30)); // scores up to about +-1800 / 2: the max subtraction matters
      w.f32(v).set(values(n * headDim, n + 1, 1));
      const q = values(headDim, 7, 30);
      const got = w.attention(q, k, v, { T: 1, pos0: n - 1, nHeads: 1, nKvHeads: 1, headDim });
      const kv = w.f32(k),
        vv = w.f32(v);
      const s = Array.from({ length: n }, (_, p) => {
        let d = 0;
        for (let i = 0; i < headDim; i++) d += q[i] * kv[p * headDim + i];
        return d / Math.sqrt(headDim);
      });
      const m = Math.max(...s),
        e = s.map((x) => Math.exp(x - m)),
        z = e.reduce((a, b) => a + b, 0);
      for (let i = 0; i < headDim; i++) {
        let want = 0;
        for (let p = 0; p < n; p++) want += (e[p] / z) * vv[p * headDim + i];
        expect(Math.abs(got[i] - want), `n ${n} i ${i}`).toBeLessThanOrEqual(1e-5);
      }
      w.release(v);
      w.release(k);
    }
  });
});
