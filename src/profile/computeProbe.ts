// Compute throughput probes (GFLOP/s) on the model's own shapes: a WGSL matmul and gemv on WebGPU, a plain
// JS matmul on a CPU tab. Every timed step pays its emulation debt, so a 4x slowdown measures 4x slower.
import matmulWgsl from './matmul.wgsl?raw';
import { payComputeDebt, sleep } from './emulation.ts';
import type { EmulationKnobs, ProbeShape } from './types.ts';

/** Timed runs per probe; the best is kept. */
export const PROBE_REPS = 5;
/** Work per timed run (sized for SwiftShader, the slowest WebGPU we meet), and the least time one may take. */
export const TARGET_FLOPS_PER_RUN = 16e6;
export const MIN_RUN_MS = 20;
export const MAX_DISPATCHES_PER_RUN = 256;

/**
 * Idle time after each timed run, as a multiple of the run, debt included (untimed). On a busy machine the
 * OS scheduler favours threads that slept (SwiftShader's workers live in the shared GPU process), so a tab
 * paying a 4x slowdown debt measured ~40% faster raw runs than its back-to-back twin. Resting every tab the
 * same way up to a 4x slowdown keeps the comparison fair.
 */
export const REST_FACTOR = 3;

async function rest(runMs: number, debtMs: number): Promise<void> {
  const restMs = REST_FACTOR * runMs - debtMs;
  if (restMs > 1) await sleep(restMs);
}

export const flopsOf = (s: ProbeShape): number => 2 * s.rows * s.inner * s.cols;

function fillRandom(n: number, seed: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 0xffffffff - 0.5) * 0.1;
  }
  return out;
}

/** GFLOP/s of `kernel` ('matmul' or 'gemv') on `shape`, emulation included. */
export async function gpuGflops(device: GPUDevice, kernel: 'matmul' | 'gemv', shape: ProbeShape, knobs: EmulationKnobs): Promise<number> {
  const module = device.createShaderModule({ code: matmulWgsl });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: kernel } });
  const mk = (data: Float32Array<ArrayBuffer>, usage: number): GPUBuffer => {
    const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage: usage | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(b, 0, data);
    return b;
  };
  const dims = mk(new Float32Array(new Uint32Array([shape.rows, shape.inner, shape.cols, 0]).buffer), GPUBufferUsage.UNIFORM);
  const a = mk(fillRandom(shape.rows * shape.inner, 1), GPUBufferUsage.STORAGE);
  const w = mk(fillRandom(shape.cols * shape.inner, 2), GPUBufferUsage.STORAGE);
  const c = device.createBuffer({ size: Math.max(16, shape.rows * shape.cols * 4), usage: GPUBufferUsage.STORAGE });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [dims, a, w, c].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const groups: [number, number] = kernel === 'matmul' ? [Math.ceil(shape.cols / 16), Math.ceil(shape.rows / 16)] : [Math.ceil(shape.cols / 64), 1];
  const run = async (dispatches: number): Promise<number> => {
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let i = 0; i < dispatches; i++) pass.dispatchWorkgroups(groups[0], groups[1]);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  try {
    const oneMs = await run(1); // warm-up: pays for pipeline compilation and buffer residency
    // Dispatches per run from the shape, not from a timed calibration: each submit carries a fixed latency,
    // so two tabs that calibrated differently would measure different GFLOP/s on the same machine. A fast
    // device doubles the count (a power of two, so twins land on the same one) until a run is long enough.
    let dispatches = Math.max(1, Math.min(MAX_DISPATCHES_PER_RUN, Math.ceil(TARGET_FLOPS_PER_RUN / flopsOf(shape))));
    const warmMs = Math.min(oneMs, await run(1));
    while (dispatches * 2 <= MAX_DISPATCHES_PER_RUN && warmMs * dispatches < MIN_RUN_MS) dispatches *= 2;
    // Each timed run pays its emulation debt at once (as the engine does after every step), and the best run
    // is kept: load from other processes only ever slows a run down, so the best is the closest to the device.
    let best = 0;
    for (let r = 0; r < PROBE_REPS; r++) {
      const t0 = performance.now();
      const ms = await run(dispatches);
      const debtMs = await payComputeDebt(ms, knobs);
      best = Math.max(best, (flopsOf(shape) * dispatches) / ((performance.now() - t0) / 1000) / 1e9);
      await rest(ms, debtMs);
    }
    return best;
  } finally {
    for (const b of [dims, a, w, c]) b.destroy();
  }
}

/** C(rows, cols) = A(rows, inner) x W(cols, inner)^T in plain JS: the CPU backend's shape of work. */
export function cpuMatmul(a: Float32Array, w: Float32Array, out: Float32Array, s: ProbeShape): void {
  for (let r = 0; r < s.rows; r++) {
    const aOff = r * s.inner;
    for (let col = 0; col < s.cols; col++) {
      const wOff = col * s.inner;
      let acc = 0;
      for (let k = 0; k < s.inner; k++) acc += a[aOff + k] * w[wOff + k];
      out[r * s.cols + col] = acc;
    }
  }
}

/** GFLOP/s of the JS matmul; yields between runs so heartbeats keep flowing. */
export async function cpuGflops(shape: ProbeShape, knobs: EmulationKnobs): Promise<number> {
  const a = fillRandom(shape.rows * shape.inner, 1);
  const w = fillRandom(shape.cols * shape.inner, 2);
  const out = new Float32Array(shape.rows * shape.cols);
  cpuMatmul(a, w, out, shape); // warm-up (JIT)
  let best = 0;
  for (let r = 0; r < PROBE_REPS; r++) {
    await sleep(0); // one matmul per task, so heartbeats keep flowing
    const t0 = performance.now();
    cpuMatmul(a, w, out, shape);
    const ms = performance.now() - t0;
    const debtMs = await payComputeDebt(ms, knobs);
    best = Math.max(best, flopsOf(shape) / ((performance.now() - t0) / 1000) / 1e9);
    await rest(ms, debtMs);
  }
  return best;
}

/** Host -> GPU upload bandwidth (writeBuffer until the queue drains), bytes/s. */
export async function gpuUploadBytesPerSec(device: GPUDevice, totalBytes = 32 * 1024 * 1024, chunkBytes = 8 * 1024 * 1024): Promise<number> {
  const buf = device.createBuffer({ size: chunkBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const data = new Uint8Array(chunkBytes);
  try {
    device.queue.writeBuffer(buf, 0, data); // warm-up
    await device.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    for (let sent = 0; sent < totalBytes; sent += chunkBytes) device.queue.writeBuffer(buf, 0, data);
    await device.queue.onSubmittedWorkDone();
    return totalBytes / Math.max(1e-6, (performance.now() - t0) / 1000);
  } finally {
    buf.destroy();
  }
}
