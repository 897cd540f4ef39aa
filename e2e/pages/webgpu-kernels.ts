// In-page kernel checks: each WebGPU op against its CPU twin on seeded random inputs at awkward sizes, in every
// weight dtype (block formats: also hand-built blocks against src/weights/quant.ts, exactly). Exposed as
// window.shoalKernels for e2e/webgpu-kernels.spec.ts; each check returns a report.
import { createCpuBackend } from '../../src/backend/cpu/index.ts';
import { createWebGpuBackend } from '../../src/backend/webgpu/index.ts';
import { requestWebGpuDevice } from '../../src/backend/webgpu/device.ts';
import type { GemvKind } from '../../src/backend/webgpu/pipelines.ts';
import type { WebGpuBackend } from '../../src/backend/webgpu/index.ts';
import type { Backend, Tensor } from '../../src/backend/types.ts';
import { BLOCKS, isQuantized, tensorBytes } from '../../src/weights/types.ts';
import type { HostTensor, QuantDtype, WeightDtype } from '../../src/weights/types.ts';
import { allClose } from '../../src/testing/allClose.ts';
import { f32ToBf16, f32ToF16 } from '../../src/weights/dtype.ts';
import { dequantize } from '../../src/weights/quant.ts';
import { quantize } from '../../src/weights/quantize.ts';
import { HAND_BUILT_SHAPES, handBuiltBlocks } from '../../src/testing/quantBlocks.ts';
import { seededRandom as rng } from '../../src/random.ts';

export interface CheckReport {
  label: string;
  ok: boolean;
  maxAbsErr: number;
  mismatches: string[];
}

const ATOL = 1e-4;
const RTOL = 1e-4;

function randn(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/** The same values as file bytes in `dtype` (rounded, or through our quantizer): both backends see the same weights. */
function hostTensor(name: string, values: Float32Array, shape: number[], dtype: WeightDtype): HostTensor {
  if (isQuantized(dtype)) return { name, dtype, shape, data: quantize(dtype, values, shape[shape.length - 1], name) };
  const data =
    dtype === 'F32'
      ? new Uint8Array(values.slice().buffer)
      : new Uint8Array((dtype === 'BF16' ? f32ToBf16(values) : f32ToF16(values)).buffer);
  return { name, dtype, shape, data };
}

/** Vectors (norms, biases) stay F32 in GGUF files: the block formats only hold matrices of whole-block rows. */
const vecDtype = (dtype: WeightDtype): WeightDtype => (isQuantized(dtype) ? 'F32' : dtype);

interface Pair {
  cpu: Backend;
  gpu: WebGpuBackend;
}
const gpus = new Map<number, WebGpuBackend>();

let device: GPUDevice | undefined;
/** The decode matmul kernel under test: each matmul check runs once per kind (see MatmulKind). */
let gemvKind: GemvKind = 'rows';

async function pair(maxBindingBytesOverride = 0): Promise<Pair> {
  const key = maxBindingBytesOverride * 2 + (gemvKind === 'gemv' ? 1 : 0);
  let gpu = gpus.get(key);
  if (!gpu) {
    device ??= (await requestWebGpuDevice()) ?? undefined;
    if (!device) throw new Error('WebGPU is not available in this browser');
    const g = await createWebGpuBackend({
      device,
      gemvKind,
      ...(maxBindingBytesOverride ? { maxBindingBytesOverride } : {}),
    });
    if (!g) throw new Error('WebGPU is not available in this browser');
    gpus.set(key, (gpu = g));
  }
  return { cpu: createCpuBackend(), gpu };
}

async function eachGemvKind(f: () => Promise<CheckReport[]>): Promise<CheckReport[]> {
  const out: CheckReport[] = [];
  device ??= (await requestWebGpuDevice()) ?? undefined;
  const kinds: GemvKind[] = device?.features.has('subgroups') ? ['rows', 'gemv', 'subgroup'] : ['rows', 'gemv'];
  for (const kind of kinds) {
    gemvKind = kind;
    for (const r of await f()) out.push({ ...r, label: `${r.label} [${kind}]` });
  }
  gemvKind = 'rows';
  return out;
}

/** Run the same op on both backends and compare the f32 results. */
async function compare(
  label: string,
  p: Pair,
  op: (b: Backend, w: (h: HostTensor) => Tensor) => Tensor | Promise<Tensor>,
  atol = ATOL,
  rtol = RTOL,
): Promise<CheckReport> {
  const want = await p.cpu.read(await op(p.cpu, (h) => p.cpu.uploadWeight(h)));
  const gpuWeights: Tensor[] = [];
  const got = await p.gpu.read(
    await op(p.gpu, (h) => {
      const t = p.gpu.uploadWeight(h);
      gpuWeights.push(t);
      return t;
    }),
  );
  for (const t of gpuWeights) p.gpu.free(t);
  const r = allClose(got, want, atol, rtol, label);
  return { label, ok: r.ok, maxAbsErr: r.maxAbsErr, mismatches: r.mismatches };
}

// New dtypes go last: the checks' seeds follow the index.
const DTYPES: WeightDtype[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K', 'Q5_0'];
const FLOAT_DTYPES: WeightDtype[] = ['F32', 'F16', 'BF16'];
/** One artificial binding limit for every split check (one device: pipelines compile once): 1 to 39 rows a chunk. */
const SPLIT_BINDING_BYTES = 1100;

async function checkRmsNorm(): Promise<CheckReport[]> {
  const p = await pair();
  const out: CheckReport[] = [];
  let seed = 1;
  for (const dtype of FLOAT_DTYPES)
    for (const T of [1, 7])
      for (const D of [1, 7, 63, 65, 257, 1000]) {
        const r = rng(seed++);
        const x = randn(r, T * D, 3);
        const w = randn(r, D);
        out.push(
          await compare(`rmsNorm ${dtype} T=${T} D=${D}`, p, (b, up) =>
            b.rmsNorm(b.fromHost(x, [T, D]), up(hostTensor('w', w, [D], dtype)), 1e-5),
          ),
        );
      }
  return out;
}

async function checkEmbed(split: boolean): Promise<CheckReport[]> {
  const out: CheckReport[] = [];
  let seed = 100;
  for (const dtype of FLOAT_DTYPES)
    for (const [V, D] of [
      [1, 1],
      [7, 63],
      [65, 7],
      [257, 65],
    ]) {
      // A binding of ~3 rows forces the table into many chunks.
      const p = await pair(split ? Math.max(64, 3 * D * (dtype === 'F32' ? 4 : 2) + 4) : 0);
      const r = rng(seed++);
      const table = randn(r, V * D);
      for (const T of [1, 7]) {
        const ids = Int32Array.from({ length: T }, () => Math.floor(r() * V));
        out.push(
          await compare(`embed${split ? ' split' : ''} ${dtype} V=${V} D=${D} T=${T}`, p, (b, up) =>
            b.embed(b.fromHost(ids, [T]), up(hostTensor('emb', table, [V, D], dtype))),
          ),
        );
      }
    }
  return out;
}

interface MatmulCase {
  T: number;
  K: number;
  N: number;
  bias: boolean;
  residual: boolean;
  norm: boolean;
}

/** Block formats need rows of whole blocks: K is one or two blocks, the other sizes stay awkward. */
function quantShapes(dtype: QuantDtype): [number, number, number][] {
  const b = BLOCKS[dtype].values;
  return [
    [1, b, 1],
    [1, 2 * b, 65],
    [3, b, 7],
    [4, 2 * b, 33],
    [7, b, 257],
    [33, 2 * b, 65],
  ];
}

function matmulCases(dtype: WeightDtype): MatmulCase[] {
  const cases: MatmulCase[] = [];
  const shapes: [number, number, number][] = isQuantized(dtype)
    ? quantShapes(dtype)
    : [
        [1, 1, 1],
        [1, 7, 65],
        [1, 63, 7],
        [1, 257, 33],
        [3, 65, 63],
        [4, 7, 1],
        [7, 65, 257],
        [33, 63, 65],
        [65, 257, 7],
      ];
  let i = 0;
  for (const [T, K, N] of shapes) {
    for (const flags of [
      [false, false, false],
      [true, true, true],
    ]) {
      cases.push({ T, K, N, bias: flags[0], residual: flags[1], norm: flags[2] });
    }
    // One extra mixed case per shape, so every flag is also exercised alone.
    cases.push({ T, K, N, bias: i % 3 === 0, residual: i % 3 === 1, norm: i % 3 === 2 });
    i++;
  }
  return cases;
}

async function checkMatmul(dtype: WeightDtype, split: boolean): Promise<CheckReport[]> {
  const out: CheckReport[] = [];
  let seed = 1000 + DTYPES.indexOf(dtype) * 100;
  for (const c of matmulCases(dtype)) {
    if (split && tensorBytes(dtype, [c.N, c.K]) <= SPLIT_BINDING_BYTES) continue; // would not split
    const p = await pair(split ? SPLIT_BINDING_BYTES : 0);
    const r = rng(seed++);
    const x = randn(r, c.T * c.K);
    const w = randn(r, c.N * c.K, 1 / Math.sqrt(c.K));
    const bias = randn(r, c.N);
    const res = randn(r, c.T * c.N);
    const nw = randn(r, c.K);
    const fused = `${c.bias ? ' +bias' : ''}${c.residual ? ' +residual' : ''}${c.norm ? ' +norm' : ''}`;
    const label = `matmul${split ? ' split' : ''} ${dtype} T=${c.T} K=${c.K} N=${c.N}${fused}`;
    out.push(
      await compare(label, p, (b, up) =>
        b.matmul(b.fromHost(x, [c.T, c.K]), up(hostTensor('w', w, [c.N, c.K], dtype)), {
          bias: c.bias ? up(hostTensor('b', bias, [c.N], vecDtype(dtype))) : undefined,
          residual: c.residual ? b.fromHost(res, [c.T, c.N]) : undefined,
          norm: c.norm ? { weight: up(hostTensor('nw', nw, [c.K], vecDtype(dtype))), eps: 1e-6 } : undefined,
        }),
      ),
    );
  }
  return out;
}

async function checkGateUp(dtype: WeightDtype, split: boolean): Promise<CheckReport[]> {
  const out: CheckReport[] = [];
  let seed = 5000 + DTYPES.indexOf(dtype) * 100;
  const b = isQuantized(dtype) ? BLOCKS[dtype].values : 0;
  const shapes = b
    ? [
        [1, b, 1],
        [1, 2 * b, 63],
        [5, b, 65],
        [33, b, 7],
      ]
    : [
        [1, 7, 1],
        [1, 65, 63],
        [1, 64, 257],
        [5, 63, 65],
        [33, 65, 7],
      ];
  for (const [T, K, H] of shapes) {
    for (const norm of [false, true]) {
      if (split && tensorBytes(dtype, [H, K]) <= SPLIT_BINDING_BYTES) continue; // would not split
      const p = await pair(split ? SPLIT_BINDING_BYTES : 0);
      const r = rng(seed++);
      const x = randn(r, T * K);
      const wg = randn(r, H * K, 2 / Math.sqrt(K));
      const wu = randn(r, H * K, 1 / Math.sqrt(K));
      const nw = randn(r, K);
      out.push(
        await compare(
          `gateUp${split ? ' split' : ''} ${dtype} T=${T} K=${K} H=${H}${norm ? ' +norm' : ''}`,
          p,
          (b, up) =>
            b.gateUp(
              b.fromHost(x, [T, K]),
              up(hostTensor('g', wg, [H, K], dtype)),
              up(hostTensor('u', wu, [H, K], dtype)),
              norm ? { weight: up(hostTensor('nw', nw, [K], vecDtype(dtype))), eps: 1e-5 } : undefined,
            ),
        ),
      );
    }
  }
  return out;
}

function invFreq(headDim: number, theta: number): Float32Array {
  const f = new Float32Array(headDim / 2);
  for (let i = 0; i < f.length; i++) f[i] = Math.pow(theta, (-2 * i) / headDim);
  return f;
}

/**
 * ropeAndCache and attention together: prefill T rows at pos0 after `prior` rows were written by earlier calls,
 * then compare the rotated q and the attention output (which reads every cached k and v row).
 */
async function checkAttention(dtype: WeightDtype): Promise<CheckReport[]> {
  const p = await pair();
  const out: CheckReport[] = [];
  let seed = 9000 + DTYPES.indexOf(dtype) * 100;
  const cases = [
    { nHeads: 1, nKvHeads: 1, headDim: 2, steps: [1, 1, 1] },
    { nHeads: 4, nKvHeads: 2, headDim: 16, steps: [7, 1, 1] },
    { nHeads: 3, nKvHeads: 1, headDim: 8, steps: [63, 1, 1] },
    { nHeads: 2, nKvHeads: 2, headDim: 130, steps: [65, 1] },
    { nHeads: 6, nKvHeads: 2, headDim: 64, steps: [130, 1, 7] },
  ];
  for (const c of cases)
    for (const qkNorm of [false, true]) {
      const r = rng(seed++);
      const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim };
      const qDim = c.nHeads * c.headDim,
        kvDim = c.nKvHeads * c.headDim;
      const maxSeq = c.steps.reduce((a, b) => a + b, 0) + 1;
      const inv = invFreq(c.headDim, 10000);
      const qn = randn(r, c.headDim),
        kn = randn(r, c.headDim);
      const inputs = c.steps.map((T) => ({
        T,
        q: randn(r, T * qDim, 2),
        k: randn(r, T * kvDim, 2),
        v: randn(r, T * kvDim),
      }));
      const run = async (b: Backend): Promise<Float32Array[]> => {
        const cache = b.createKvCache(maxSeq, kvDim);
        const norms = qkNorm
          ? {
              q: b.uploadWeight(hostTensor('qn', qn, [c.headDim], dtype)),
              k: b.uploadWeight(hostTensor('kn', kn, [c.headDim], dtype)),
              eps: 1e-6,
            }
          : undefined;
        const results: Float32Array[] = [];
        let pos0 = 0;
        for (const s of inputs) {
          const qr = b.ropeAndCache(
            b.fromHost(s.q, [s.T, qDim]),
            b.fromHost(s.k, [s.T, kvDim]),
            b.fromHost(s.v, [s.T, kvDim]),
            cache,
            pos0,
            inv,
            shape,
            norms,
          );
          results.push(await b.read(qr));
          results.push(await b.read(b.attention(qr, cache, pos0, shape)));
          pos0 += s.T;
        }
        b.free(cache);
        return results;
      };
      const want = await run(p.cpu);
      const got = await run(p.gpu);
      want.forEach((w, i) => {
        const what = i % 2 === 0 ? 'ropeAndCache q' : 'attention';
        const heads = `heads=${c.nHeads}/${c.nKvHeads} headDim=${c.headDim}`;
        const label = `${what} ${qkNorm ? dtype + ' +qkNorm ' : ''}${heads} step ${i >> 1} (T=${c.steps[i >> 1]})`;
        const rep = allClose(got[i], w, ATOL, RTOL, label);
        out.push({ label, ok: rep.ok, maxAbsErr: rep.maxAbsErr, mismatches: rep.mismatches });
      });
    }
  return out;
}

async function checkArgmaxSlice(): Promise<CheckReport[]> {
  const p = await pair();
  const out: CheckReport[] = [];
  let seed = 20000;
  for (const [T, V] of [
    [1, 1],
    [1, 7],
    [3, 257],
    [2, 1000],
    [5, 65],
  ]) {
    const r = rng(seed++);
    const x = randn(r, T * V);
    // Ties: the lowest index must win, as in the CPU reference.
    if (V > 5)
      for (let t = 0; t < T; t++) {
        x[t * V + 2] = 5;
        x[t * V + V - 1] = 5;
      }
    const want = await p.cpu.readInt(p.cpu.argmax(p.cpu.fromHost(x, [T, V])));
    const got = await p.gpu.readInt(p.gpu.argmax(p.gpu.fromHost(x, [T, V])));
    const same = want.every((v, i) => v === got[i]);
    out.push({
      label: `argmax T=${T} V=${V}`,
      ok: same,
      maxAbsErr: same ? 0 : Infinity,
      mismatches: same ? [] : [`got ${Array.from(got).join(',')}, want ${Array.from(want).join(',')}`],
    });
    if (T > 1) {
      out.push(await compare(`sliceRows T=${T} V=${V}`, p, (b) => b.sliceRows(b.fromHost(x, [T, V]), 1, T - 1)));
      // A batch of conversations stacks their rows back after attention: parts of 1, T-1 and T rows.
      const t = (b: Backend) => b.fromHost(x, [T, V]);
      out.push(
        await compare(`concatRows T=${T} V=${V}`, p, (b) =>
          b.concatRows([b.sliceRows(t(b), 0, 1), b.sliceRows(t(b), 1, T - 1), t(b)]),
        ),
      );
    }
  }
  return out;
}

/** The exact comparison of a dequantizer: every value is one rounding of an exact product (see weight_q*.wgsl). */
function exactReport(label: string, got: Float32Array, want: Float32Array): CheckReport {
  const r = allClose(got, want, 0, 0, label);
  return { label, ok: r.ok, maxAbsErr: r.maxAbsErr, mismatches: r.mismatches };
}

/**
 * The WGSL dequantizer of one block format against quant.ts on hand-built blocks (every byte value in every field,
 * zero, negative, subnormal and maximal f16 scales): embed of every row reads each value through NAME_at, whole and
 * split across bindings; matmul of the identity (K, K) with W gives W^T through NAME_at2 in the rows kernel and
 * through NAME_at in the tiled one. All exact.
 */
async function checkDequant(dtype: QuantDtype): Promise<CheckReport[]> {
  const [N, K] = HAND_BUILT_SHAPES[dtype];
  const h: HostTensor = { name: 'hand', dtype, shape: [N, K], data: handBuiltBlocks(dtype, N, K) };
  const want = new Float32Array(N * K);
  dequantize(dtype, h.data, 0, N * K, want);
  const wantT = new Float32Array(K * N);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wantT[k * N + n] = want[n * K + k];
  const ids = Int32Array.from({ length: N }, (_, i) => i);
  const eye = new Float32Array(K * K);
  for (let k = 0; k < K; k++) eye[k * K + k] = 1;
  const out: CheckReport[] = [];
  const rowBytes = tensorBytes(dtype, [1, K]);
  for (const [what, binding] of [
    ['whole', 0],
    ['split', 3 * rowBytes + 4],
  ] as const) {
    const { gpu } = await pair(binding);
    const w = gpu.uploadWeight(h);
    out.push(exactReport(`${dtype} embed ${what}`, await gpu.read(gpu.embed(gpu.fromHost(ids, [N]), w)), want));
    out.push(
      exactReport(
        `${dtype} I.W^T rows kernel ${what}`,
        await gpu.read(gpu.matmul(gpu.fromHost(eye, [K, K]), w)),
        wantT,
      ),
    );
    gpu.free(w);
  }
  gemvKind = 'gemv';
  const { gpu } = await pair();
  gemvKind = 'rows';
  const w = gpu.uploadWeight(h);
  out.push(exactReport(`${dtype} I.W^T tiled kernel`, await gpu.read(gpu.matmul(gpu.fromHost(eye, [K, K]), w)), wantT));
  gpu.free(w);
  return out;
}

/** One decode step's dispatch and submit counts for a matmul chain: ops must batch into a single submit. */
async function checkOneSubmit(): Promise<{ dispatches: number; submits: number }> {
  const { gpu } = await pair();
  const r = rng(7);
  const w = gpu.uploadWeight(hostTensor('w', randn(r, 65 * 65), [65, 65], 'BF16'));
  gpu.resetStats();
  let x = gpu.fromHost(randn(r, 65), [1, 65]);
  for (let i = 0; i < 5; i++) x = gpu.matmul(x, w, { residual: x });
  await gpu.read(x);
  const s = gpu.stats();
  gpu.free(w);
  return s;
}

/** Must fail with ERR_DOES_NOT_FIT before uploading: a row bigger than a binding, and a budget overrun. */
async function checkDoesNotFit(): Promise<string[]> {
  const { gpu } = await pair(1024);
  const codes: string[] = [];
  for (const attempt of [
    () => gpu.checkFits([{ name: 'wide', shape: [2, 1000], dtype: 'F32' }]),
    () => gpu.uploadWeight(hostTensor('wide', new Float32Array(2000), [2, 1000], 'F32')),
  ]) {
    const before = gpu.weightBytes();
    try {
      attempt();
      codes.push('no error');
    } catch (e) {
      codes.push(`${(e as { code?: string }).code}${gpu.weightBytes() === before ? '' : ' (after uploading)'}`);
    }
  }
  return codes;
}

/** An uncaptured WebGPU error reaches onFailure once, as ERR_BACKEND, and later ops reject with it. */
async function checkFailurePath(): Promise<{ reported: string[]; readRejects: string }> {
  const reported: string[] = [];
  const dev = (await requestWebGpuDevice())!;
  const g = (await createWebGpuBackend({ device: dev, onFailure: (e) => reported.push(e.code) }))!;
  // MAP_READ cannot be combined with STORAGE: a validation error nobody captures.
  dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
  await dev.queue.onSubmittedWorkDone();
  for (let i = 0; i < 50 && reported.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  let readRejects = 'resolved';
  try {
    await g.read(g.fromHost(new Float32Array(4), [1, 4]));
  } catch (e) {
    readRejects = String((e as { code?: string }).code);
  }
  g.destroy();
  dev.destroy();
  return { reported, readRejects };
}

const suite = {
  failurePath: checkFailurePath,
  rmsNorm: checkRmsNorm,
  embed: () => checkEmbed(false),
  embedSplit: () => checkEmbed(true),
  matmul: (dtype: WeightDtype) => eachGemvKind(() => checkMatmul(dtype, false)),
  matmulSplit: (dtype: WeightDtype) => eachGemvKind(() => checkMatmul(dtype, true)),
  gateUp: (dtype: WeightDtype) => eachGemvKind(() => checkGateUp(dtype, false)),
  gateUpSplit: (dtype: WeightDtype) => eachGemvKind(() => checkGateUp(dtype, true)),
  attention: checkAttention,
  dequant: checkDequant,
  argmaxSlice: checkArgmaxSlice,
  oneSubmit: checkOneSubmit,
  doesNotFit: checkDoesNotFit,
};
export type KernelSuite = typeof suite;
(window as unknown as { shoalKernels: KernelSuite }).shoalKernels = suite;
