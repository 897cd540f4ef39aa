// Compute throughput measured through the engine's own Backend (the kernels a stage will run), so plans use the speed
// the pipeline will actually see; a tab compares its CPU and WebGPU engines and runs on the faster one.
import type { Backend } from '../backend/types.ts';
import { rest } from './computeProbe.ts';
import { payComputeDebt } from './emulation.ts';
import type { EmulationKnobs, ProbeShape } from './types.ts';

export const ENGINE_PROBE_REPS = 5;
/** Shortest timed run, and the most products one run may repeat to reach it (best of 5 such runs: with the SIMD engine
 * a probe is short, and one descheduled run on a busy machine must not decide a tab's figure). */
export const MIN_RUN_MS = 30;
export const MAX_ITERS_PER_RUN = 4096;

function bf16Bytes(n: number, seed: number): Uint8Array {
  // Small random bf16 values (|x| < 0.06): the upper halves of f32s, deterministic from the seed.
  const f = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    f[i] = (s / 2 ** 32 - 0.5) * 0.12;
  }
  const u32 = new Uint32Array(f.buffer);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = u32[i] >>> 16;
  return new Uint8Array(out.buffer);
}

/** GFLOP/s of y = x W^T on `shape` with a bf16 weight, best of a few runs after a warm-up, emulated slowdown in. */
export async function engineGflops(backend: Backend, shape: ProbeShape, knobs: EmulationKnobs): Promise<number> {
  const w = backend.uploadWeight({
    name: 'probe.weight',
    dtype: 'BF16',
    shape: [shape.cols, shape.inner],
    data: bf16Bytes(shape.cols * shape.inner, 7),
  });
  const x = backend.fromHost(new Float32Array(shape.rows * shape.inner).fill(0.5), [shape.rows, shape.inner]);
  try {
    // Warm-up (compiles pipelines, fills pools), and size each timed run to at least MIN_RUN_MS: a decode-shaped
    // product can take a fraction of a millisecond, below what the browser's clock resolves.
    const runOnce = async (iters: number): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < iters; i++) {
        const y = backend.matmul(x, w);
        await backend.read(y);
        backend.free(y);
      }
      return performance.now() - t0;
    };
    await runOnce(1);
    const firstMs = await runOnce(1);
    const iters = Math.min(MAX_ITERS_PER_RUN, Math.max(1, Math.ceil(MIN_RUN_MS / Math.max(firstMs, 0.01))));
    let bestMs = Infinity;
    for (let r = 0; r < ENGINE_PROBE_REPS; r++) {
      const ms = await runOnce(iters);
      const debtMs = await payComputeDebt(ms, knobs);
      bestMs = Math.min(bestMs, (ms + debtMs) / iters);
      await rest(ms, debtMs);
    }
    return (2 * shape.rows * shape.inner * shape.cols) / (Math.max(bestMs, 1e-3) / 1000) / 1e9;
  } finally {
    backend.free(x);
    backend.free(w);
  }
}
