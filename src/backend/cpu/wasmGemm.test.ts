// The WebAssembly SIMD matmul against the scalar JavaScript reference on shapes with every kind of tail, its heap
// allocator, and that the committed wasm bytes are exactly what the WebAssembly text in gemmWat.ts assembles to.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assembleGemm } from '../../../scripts/wasm-assemble.ts';
import { CpuBackend } from './index.ts';
import { bestWasmVariant, WasmGemm, wasmSimdSupported } from './wasmGemm.ts';
import { GEMM_WASM_BASE64, GEMM_WASM_RELAXED_BASE64 } from './gemmWasm.ts';
import type { WeightDtype } from '../../weights/types.ts';

function weightBytes(w: Float32Array, dtype: WeightDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(w.slice().buffer);
  const u = new Uint16Array(w.length);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(w.slice().buffer);
    for (let i = 0; i < u.length; i++) u[i] = bits[i] >>> 16;
  } else {
    for (let i = 0; i < u.length; i++) u[i] = 0x3800 + ((i * 37) % 0x0800); // f16 values in [0.5, 1)
  }
  return new Uint8Array(u.buffer);
}

describe('WebAssembly SIMD gemm', () => {
  it('is available in this runtime, relaxed SIMD included (Chromium; Node 20 with the flag in vitest setup)', () => {
    expect(wasmSimdSupported()).toBe(true);
    expect(bestWasmVariant()).toBe('relaxed');
  });

  it('the committed modules are the assembly of gemmWat.ts (run scripts/build-wasm.ts after editing it)', async () => {
    expect(Buffer.from(await assembleGemm(false)).toString('base64')).toBe(GEMM_WASM_BASE64);
    expect(Buffer.from(await assembleGemm(true)).toString('base64')).toBe(GEMM_WASM_RELAXED_BASE64);
  });

  it.each(['relaxed', 'simd'] as const)(
    '%s build matches the JavaScript matmul (bias, residual, norm) at random shapes and weight dtypes (property)',
    async (wasm) => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 9 }),
          fc.integer({ min: 1, max: 70 }),
          fc.integer({ min: 1, max: 13 }),
          fc.constantFrom<WeightDtype>('F32', 'BF16', 'F16'),
          fc.integer({ min: 0, max: 1000 }),
          async (T, K, N, dtype, seed) => {
            const val = (i: number): number => Math.sin((i + 1) * 12.9898 + seed * 78.233) * 0.8;
            const w = Float32Array.from({ length: N * K }, (_, i) => val(i));
            const x = Float32Array.from({ length: T * K }, (_, i) => val(i + 7777));
            const bias = Float32Array.from({ length: N }, (_, i) => val(i + 99));
            const res = Float32Array.from({ length: T * N }, (_, i) => val(i + 333));
            const norm = Float32Array.from({ length: K }, (_, i) => 1 + val(i + 5) / 4);
            const run = async (b: CpuBackend): Promise<Float32Array> => {
              const wt = b.uploadWeight({ name: 'w', dtype, shape: [N, K], data: weightBytes(w, dtype) });
              const opts = {
                bias: b.fromHost(bias, [N]),
                residual: b.fromHost(res, [T, N]),
                norm: { weight: b.fromHost(norm, [K]), eps: 1e-5 },
              };
              return b.read(b.matmul(b.fromHost(x, [T, K]), wt, opts));
            };
            const ref = await run(new CpuBackend({ simd: false }));
            const got = await run(new CpuBackend({ simd: true, wasm }));
            for (let i = 0; i < ref.length; i++)
              expect(Math.abs(got[i] - ref[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(ref[i])));
          },
        ),
        { numRuns: 150 },
      );
    },
  );

  it('embeds rows of a bf16 table held in the heap exactly as the reference does', async () => {
    const [V, D] = [11, 24];
    const table = Float32Array.from({ length: V * D }, (_, i) => Math.cos(i) * 3);
    const ids = Int32Array.of(0, 10, 3, 3);
    const out = async (b: CpuBackend): Promise<Float32Array> =>
      b.read(
        b.embed(
          b.fromHost(ids, [ids.length]),
          b.uploadWeight({ name: 'e', dtype: 'BF16', shape: [V, D], data: weightBytes(table, 'BF16') }),
        ),
      );
    expect(await out(new CpuBackend({ simd: true }))).toEqual(await out(new CpuBackend({ simd: false })));
  });

  it('the heap allocator reuses and merges freed blocks, and free() gives weights back', () => {
    const g = new WasmGemm();
    const a = g.alloc(1000),
      b = g.alloc(5000),
      c = g.alloc(100);
    expect(new Set([a.ptr, b.ptr, c.ptr]).size).toBe(3);
    g.release(a);
    g.release(b); // merges with a
    const d = g.alloc(5900); // fits in a+b merged
    expect(d.ptr).toBe(a.ptr);
    g.release(d);
    g.release(c); // everything free again
    expect(g.heapBytes).toBe(0);
    expect(g.alloc(10).ptr).toBe(a.ptr);

    const be = new CpuBackend({ simd: true });
    const w = be.uploadWeight({ name: 'w', dtype: 'BF16', shape: [64, 64], data: new Uint8Array(64 * 64 * 2) });
    expect(be.heapBytes()).toBeGreaterThanOrEqual(64 * 64 * 2);
    be.free(w);
    expect(be.heapBytes()).toBe(0);
  });
});
