// The CPU engine's quantized kernels (matmul, gateUp, embed on block formats) against the same weights dequantized
// whole and run as F32: dequantizing a run of rows at a time must not change a value; and the SIMD block dot against
// the JavaScript one.
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from './index.ts';
import { dequantize, dotRow } from '../../weights/quant.ts';
import { quantize } from '../../weights/quantize.ts';
import { BLOCKS, rowBytes, type HostTensor, type QuantDtype } from '../../weights/types.ts';
import { WasmGemm } from './wasmGemm.ts';
import { assertAllClose } from '../../testing/allClose.ts';
import { HAND_BUILT_SHAPES, handBuiltBlocks } from '../../testing/quantBlocks.ts';

function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 0.2;
  }
  return out;
}

/** The same (rows, cols) matrix quantized, and its exact dequantized values as F32. */
function weightPair(dtype: QuantDtype, rows: number, cols: number, seed: number): [HostTensor, HostTensor] {
  const blocks = quantize(dtype, random(rows * cols, seed), cols);
  const f = new Float32Array(rows * cols);
  dequantize(dtype, blocks, 0, rows * cols, f);
  return [
    { name: 'w', dtype, shape: [rows, cols], data: blocks },
    { name: 'w', dtype: 'F32', shape: [rows, cols], data: new Uint8Array(f.buffer) },
  ];
}

describe.each(['Q8_0', 'Q4_0', 'Q5_0', 'Q4_K', 'Q6_K'] as const)('CPU %s kernels', (dtype) => {
  // 77 output rows: not a multiple of the scratch's row run, so the last run is partial.
  const N = 77,
    K = 512;
  // T = 1 takes the fused dot (decode), T = 3 the dequantized row runs (prefill).
  it.each([
    [true, 3],
    [false, 3],
    [true, 1],
    [false, 1],
  ])('matmul, gateUp and embed equal the F32 path (simd %s, %i rows)', async (simd, T) => {
    const be = createCpuBackend({ simd });
    const [q, f] = weightPair(dtype, N, K, 1);
    const [q2, f2] = weightPair(dtype, N, K, 2);
    const x = be.fromHost(random(T * K, 3), [T, K]);
    const close = async (a: ReturnType<typeof be.matmul>, b: ReturnType<typeof be.matmul>, what: string) =>
      assertAllClose(await be.read(a), await be.read(b), 1e-6, 1e-5, `${dtype} ${what}`);
    await close(be.matmul(x, be.uploadWeight(q)), be.matmul(x, be.uploadWeight(f)), 'matmul');
    await close(
      be.gateUp(x, be.uploadWeight(q), be.uploadWeight(q2)),
      be.gateUp(x, be.uploadWeight(f), be.uploadWeight(f2)),
      'gateUp',
    );
    const ids = be.fromHost(Int32Array.of(0, 76, 5), [3]);
    await close(be.embed(ids, be.uploadWeight(q)), be.embed(ids, be.uploadWeight(f)), 'embed');
  });
  it('refuses blocks whose byte length does not match the shape', () => {
    const [q] = weightPair(dtype, 2, 256, 1);
    expect(() => createCpuBackend().uploadWeight({ ...q, shape: [3, 256] })).toThrow(/bytes for shape/);
  });
});

// The SIMD block dot (decode) against the fused JavaScript dot: rows of several blocks, block scales from f16
// subnormals (weights near 1e-4) to large (1e3), negative and positive, so every f16 path and sign is met.
describe.each(['Q8_0', 'Q4_0', 'Q5_0', 'Q4_K', 'Q6_K'] as const)('WebAssembly SIMD %s block dot', (dtype) => {
  it('equals quant.ts dotRow at every scale', () => {
    const N = 9,
      K = 768;
    for (const scale of [1e-3, 1, 1e4]) {
      const w = random(N * K, 7).map((v, i) => v * scale * (1 + (i % 5)));
      const blocks = quantize(dtype, w, K);
      const x = random(K, 11);
      const wasm = new WasmGemm();
      const got = wasm.qdot(x, K, wasm.store(blocks), dtype, N);
      const rb = rowBytes(dtype, K);
      const want = Float32Array.from({ length: N }, (_, n) => dotRow(dtype, blocks, n * rb, x, 0, K));
      assertAllClose(got, want, 1e-6 * scale, 1e-5, `${dtype} scale ${scale}`);
    }
  });
});

// The int8-activation dot against the exact one: its only error is the activations' rounding (half a step of
// max|x|/127 per value, at most), so each output is within that bound times the sum of |weights| of its row.
describe.each(['Q8_0', 'Q4_0', 'Q5_0', 'Q4_K', 'Q6_K'] as const)('WebAssembly SIMD %s int8-activation dot', (dtype) => {
  it('is within the activation rounding bound of the exact dot (3 positions)', () => {
    const N = 9,
      K = 512,
      T = 3;
    const blocks = quantize(dtype, random(N * K, 5), K);
    const w = new Float32Array(N * K);
    dequantize(dtype, blocks, 0, N * K, w);
    const x = random(T * K, 9);
    const wasm = new WasmGemm();
    const heap = wasm.store(blocks);
    const got = wasm.qdotInt(x, T, K, heap, dtype, N);
    for (let t = 0; t < T; t++) {
      const exact = wasm.qdot(x.subarray(t * K, (t + 1) * K), K, heap, dtype, N);
      const amax = x.subarray(t * K, (t + 1) * K).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      for (let n = 0; n < N; n++) {
        const wsum = w.subarray(n * K, (n + 1) * K).reduce((m, v) => m + Math.abs(v), 0);
        const bound = (0.5 * amax * wsum) / 127 + 1e-5;
        expect(Math.abs(got[t * N + n] - exact[n]), `${dtype} t ${t} n ${n}`).toBeLessThanOrEqual(bound);
        expect(got[t * N + n]).not.toBe(exact[n]); // the int path really ran
      }
    }
  });

  it('is the dequantized weights times the int8 activations, to f32 rounding (every block, every scale)', () => {
    const N = 7,
      K = 768;
    const blocks = quantize(dtype, random(N * K, 21), K);
    const w = new Float32Array(N * K);
    dequantize(dtype, blocks, 0, N * K, w);
    // activations of very different ranges per 32-value block, so a scale read from the wrong block shows
    const x = random(K, 17).map((v, i) => v * 2 ** ((i >> 5) % 7) - 0.01);
    const wasm = new WasmGemm();
    const got = wasm.qdotInt(x, 1, K, wasm.store(blocks), dtype, N);
    // quant_act's arithmetic in f32 (d = max|x|/127, q = nearest-even(x * (1/d))), then the dot in f64
    const xq = new Float64Array(K);
    for (let b = 0; b < K; b += 32) {
      const d = Math.fround(x.subarray(b, b + 32).reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 127);
      const inv = d ? Math.fround(1 / d) : 0;
      for (let i = b; i < b + 32; i++) xq[i] = roundHalfEven(Math.fround(x[i] * inv)) * d;
    }
    for (let n = 0; n < N; n++) {
      let want = 0,
        mag = 0;
      for (let i = 0; i < K; i++) {
        want += w[n * K + i] * xq[i];
        mag += Math.abs(w[n * K + i] * xq[i]);
      }
      expect(Math.abs(got[n] - want), `${dtype} row ${n}`).toBeLessThanOrEqual(1e-6 * mag);
    }
  });
});

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// The SIMD dequantizer (prefill) against quant.ts: each value is the same single f32 rounding, so bit-identical.
describe.each(['Q8_0', 'Q4_0', 'Q5_0', 'Q4_K', 'Q6_K'] as const)('WebAssembly SIMD %s dequantizer', (dtype) => {
  it('gives exactly the values quant.ts gives, from any block of a row', () => {
    const rows = 5,
      K = 768;
    const blocks = quantize(
      dtype,
      random(rows * K, 13).map((v, i) => v * (i % 7 === 0 ? 1e-3 : 10)),
      K,
    );
    const want = new Float32Array(rows * K);
    dequantize(dtype, blocks, 0, rows * K, want);
    const wasm = new WasmGemm();
    const w = wasm.store(blocks);
    const out = wasm.alloc(rows * K * 4);
    const rb = rowBytes(dtype, K);
    wasm.dequantize(w, rb, dtype, (3 * K) / (dtype.endsWith('K') ? 256 : 32), out); // rows 1..3
    const got = new Float32Array(wasm.view(out).buffer, out.ptr, 3 * K);
    expect(Array.from(got)).toEqual(Array.from(want.subarray(K, 4 * K)));
  });
  it('and on hand-built blocks: every byte value of each field; zero, negative, subnormal, largest f16 scales', () => {
    const [rows, K] = HAND_BUILT_SHAPES[dtype];
    const blocks = handBuiltBlocks(dtype, rows, K);
    const want = new Float32Array(rows * K);
    dequantize(dtype, blocks, 0, rows * K, want);
    const wasm = new WasmGemm();
    const out = wasm.alloc(rows * K * 4);
    wasm.dequantize(wasm.store(blocks), 0, dtype, (rows * K) / BLOCKS[dtype].values, out);
    const got = new Float32Array(wasm.view(out).buffer, out.ptr, rows * K);
    expect(Array.from(got)).toEqual(Array.from(want));
    // the block dot on the same blocks, x = 1 at one value per row: each row's dot is that one dequantized value
    const x = new Float32Array(K);
    for (let k = 0; k < K; k += 37) {
      x.fill(0);
      x[k] = 1;
      const dots = wasm.qdot(x, K, wasm.store(blocks), dtype, rows);
      expect(
        Array.from(dots, (v) => v + 0),
        `value ${k}`,
      ).toEqual(Array.from({ length: rows }, (_, r) => want[r * K + k] + 0));
    }
  });
});
