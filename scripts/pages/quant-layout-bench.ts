// The block-layout micro-benchmark behind docs/gguf.md (`npm run bench -- engine --quant-layout`): the matmul kernels
// with each block format read from the file's own bytes (u32 words + byte shifts, what the engine ships) against the
// same kernels over blocks padded to a 4-byte multiple at upload (the alternative), and F16/F32 for scale.
import { buildShader } from '../../src/backend/webgpu/shaderGen.ts';
import gemvSrc from '../../src/backend/webgpu/kernels/gemv.wgsl?raw';
import gemvRowsSrc from '../../src/backend/webgpu/kernels/gemv_rows.wgsl?raw';
import tiledSrc from '../../src/backend/webgpu/kernels/matmul_tiled.wgsl?raw';
import { f32ToF16 } from '../../src/weights/dtype.ts';
import { quantize } from '../../src/weights/quantize.ts';
import { BLOCKS, isQuantized, type WeightDtype } from '../../src/weights/types.ts';

/**
 * Padded variants: the same template with the block stride and field offsets moved so every block starts on a word
 * (Q8_0/Q4_0: 2 pad bytes after d, so the quants are word-aligned too; Q6_K: 2 pad bytes after d). Q4_K's 144-byte
 * blocks are aligned already.
 */
const PADDED: Partial<Record<WeightDtype, { bytes: number; padAt: number; edits: [string, string][] }>> = {
  Q8_0: {
    bytes: 36,
    padAt: 2,
    edits: [
      ['* 34u', '* 36u'],
      ['b + 2u + (i & 31u)', 'b + 4u + (i & 31u)'],
    ],
  },
  Q4_0: {
    bytes: 20,
    padAt: 2,
    edits: [
      ['* 18u', '* 20u'],
      ['b + 2u + (j & 15u)', 'b + 4u + (j & 15u)'],
    ],
  },
  Q6_K: { bytes: 212, padAt: 210, edits: [['* 210u', '* 212u']] },
};

/** The file's blocks with PADDED[dtype].bytes - bytes zero bytes inserted at padAt in each block. */
function pad(dtype: WeightDtype, data: Uint8Array): Uint8Array {
  const p = PADDED[dtype]!;
  const { bytes } = BLOCKS[dtype];
  const n = data.length / bytes;
  const out = new Uint8Array(n * p.bytes);
  for (let i = 0; i < n; i++) {
    out.set(data.subarray(i * bytes, i * bytes + p.padAt), i * p.bytes);
    out.set(data.subarray(i * bytes + p.padAt, (i + 1) * bytes), i * p.bytes + p.padAt + p.bytes - bytes);
  }
  return out;
}

function weightBytes(dtype: WeightDtype, values: Float32Array, cols: number): Uint8Array {
  if (isQuantized(dtype)) return quantize(dtype, values, cols);
  if (dtype === 'F16') return new Uint8Array(f32ToF16(values).buffer);
  return new Uint8Array(values.buffer.slice(0));
}

function layoutLabel(dtype: WeightDtype, padded: boolean): string {
  if (padded) return `${dtype} padded ${PADDED[dtype]!.bytes} B`;
  return isQuantized(dtype) ? `${dtype} file ${BLOCKS[dtype].bytes} B` : dtype;
}

const KERNELS = { rows: gemvRowsSrc, gemv: gemvSrc, tiled: tiledSrc } as const;
const ROWS_PER_WG = { rows: 64, gemv: 4, tiled: 32 } as const;
const TOKENS_PER_WG = { rows: 8, gemv: 1, tiled: 32 } as const;
type Kind = keyof typeof KERNELS;

function pipeline(device: GPUDevice, kind: Kind, dtype: WeightDtype, padded: boolean) {
  let code = buildShader({
    consts: { HAS_NORM: false, HAS_BIAS: false, HAS_RESIDUAL: false, GATE_UP: false },
    weights: [
      { name: 'w', binding: 4, dtype },
      { name: 'w_up', binding: 5, dtype: 'F32' },
      { name: 'bias', binding: 6, dtype: 'F32' },
      { name: 'norm_w', binding: 7, dtype: 'F32' },
    ],
    body: KERNELS[kind],
  });
  if (padded) for (const [a, b] of PADDED[dtype]!.edits) code = code.replaceAll(a, b);
  const layout = device.createBindGroupLayout({
    entries: [0, 1, 2, 3, 4, 5, 6, 7].map((binding) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: binding === 0 ? 'uniform' : binding === 2 ? 'storage' : 'read-only-storage' },
    })),
  });
  const p = device.createComputePipeline({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module: device.createShaderModule({ code }), entryPoint: 'main' },
  });
  return { p, layout };
}

function buffer(device: GPUDevice, data: Uint8Array, usage = GPUBufferUsage.STORAGE): GPUBuffer {
  const b = device.createBuffer({
    size: Math.max(16, Math.ceil(data.byteLength / 4) * 4),
    usage,
    mappedAtCreation: true,
  });
  new Uint8Array(b.getMappedRange()).set(data);
  b.unmap();
  return b;
}

/** y as f32 (the padded layouts must compute exactly what the file layout does, or their timing means nothing). */
async function read(device: GPUDevice, y: GPUBuffer): Promise<Float32Array> {
  const staging = device.createBuffer({ size: y.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(y, 0, staging, 0, y.size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return out;
}

export interface LayoutBenchArgs {
  N: number;
  K: number;
  /** Tokens of the prefill (tiled) case; decode is T = 1 with the rows and gemv kernels. */
  prefill: number;
  /** Dispatches per timed submit, and timed submits per case. */
  reps: number;
  rounds: number;
}

const LAYOUTS: [WeightDtype, boolean][] = [
  ['F32', false],
  ['F16', false],
  ['Q8_0', false],
  ['Q8_0', true],
  ['Q4_0', false],
  ['Q4_0', true],
  ['Q5_0', false],
  ['Q4_K', false],
  ['Q6_K', false],
  ['Q6_K', true],
];

interface Case {
  label: string;
  run: (reps: number) => Promise<void>;
}

/** One (layout, kernel) case, compiled, warmed up and checked against the file layout's result. */
async function prepare(
  device: GPUDevice,
  a: LayoutBenchArgs,
  bufs: { x: GPUBuffer; y: GPUBuffer; dummy: GPUBuffer; w: GPUBuffer },
  dtype: WeightDtype,
  padded: boolean,
  kind: Kind,
  fileResults: Map<string, Float32Array>,
): Promise<Case> {
  const T = kind === 'tiled' ? a.prefill : 1;
  const { p, layout } = pipeline(device, kind, dtype, padded);
  const params = new ArrayBuffer(32);
  new Uint32Array(params, 0, 5).set([T, a.K, a.N, 0, a.N]);
  const u = buffer(device, new Uint8Array(params), GPUBufferUsage.UNIFORM);
  const { x, y, dummy, w } = bufs;
  const bind = device.createBindGroup({
    layout,
    entries: [u, x, y, dummy, w, dummy, dummy, dummy].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const run = async (reps: number) => {
    const enc = device.createCommandEncoder();
    for (let r = 0; r < reps; r++) {
      const pass = enc.beginComputePass();
      pass.setPipeline(p);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(Math.ceil(a.N / ROWS_PER_WG[kind]), Math.ceil(T / TOKENS_PER_WG[kind]));
      pass.end();
    }
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await run(1); // compile and warm up outside the timing
  const got = (await read(device, y)).subarray(0, T * a.N); // the rest is left from other kernels
  const same = fileResults.get(`${dtype} ${kind}`);
  if (!padded) fileResults.set(`${dtype} ${kind}`, got);
  else if (!same || got.some((v, i) => v !== same[i])) throw new Error(`${dtype} padded ${kind}: wrong result`);
  return { label: `${layoutLabel(dtype, padded)} ${kind} T=${T}`, run };
}

/**
 * Median ms per dispatch of y (T, N) = x (T, K) . W^T for each layout and kernel over `rounds` rounds, each case
 * once per round (interleaved, so a busy spell on a shared machine hits every case alike).
 */
export async function quantLayoutBench(device: GPUDevice, a: LayoutBenchArgs): Promise<Record<string, number>> {
  const values = new Float32Array(a.N * a.K).map((_, i) => Math.sin(i * 0.37) / Math.sqrt(a.K));
  const x = buffer(device, new Uint8Array(new Float32Array(a.prefill * a.K).fill(0.01).buffer));
  const y = device.createBuffer({ size: a.prefill * a.N * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const dummy = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
  const fileResults = new Map<string, Float32Array>();
  const cases: Case[] = [];
  for (const [dtype, padded] of LAYOUTS) {
    const file = weightBytes(dtype, values, a.K);
    const w = buffer(device, padded ? pad(dtype, file) : file);
    for (const kind of ['rows', 'gemv', 'tiled'] as const)
      cases.push(await prepare(device, a, { x, y, dummy, w }, dtype, padded, kind, fileResults));
  }
  const times = new Map<string, number[]>(cases.map((c) => [c.label, []]));
  for (let r = 0; r < a.rounds; r++)
    for (const c of cases) {
      const t0 = performance.now();
      await c.run(a.reps);
      times.get(c.label)!.push((performance.now() - t0) / a.reps);
    }
  const median = (v: number[]) => v.sort((p, q) => p - q)[v.length >> 1];
  return Object.fromEntries([...times].map(([k, v]) => [k, median(v)]));
}
