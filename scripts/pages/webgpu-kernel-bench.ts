// Per-op timings of the WebGPU backend at one model's decode shapes (loaded by the engine page, called by
// `npm run bench -- engine --ops`): each op is recorded `reps` times between reads, so the figure is ms per dispatch.
import { createWebGpuBackend } from '../../src/backend/webgpu/index.ts';
import type { WebGpuBackend } from '../../src/backend/webgpu/index.ts';
import type { Tensor } from '../../src/backend/types.ts';
import type { GemvKind } from '../../src/backend/webgpu/pipelines.ts';

export interface OpShape {
  dim: number;
  hiddenDim: number;
  vocabSize: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  prefill: number;
  ctx: number;
}

export async function kernelBench(
  s: OpShape,
  device?: GPUDevice,
  gemvKind?: GemvKind,
): Promise<Record<string, number>> {
  const g = (await createWebGpuBackend({ device, gemvKind })) as WebGpuBackend;
  const res: Record<string, number> = {};
  const { dim: D, hiddenDim: H, vocabSize: V, nHeads, nKvHeads, headDim } = s;
  const qDim = nHeads * headDim,
    kvDim = nKvHeads * headDim;
  const bf16 = (n: number) => new Uint8Array(n * 2).fill(60); // small positive bf16 values
  const W = (n: number, k: number) => g.uploadWeight({ name: 'w', dtype: 'BF16', shape: [n, k], data: bf16(n * k) });
  const wq = W(qDim, D),
    wk = W(kvDim, D),
    wo = W(D, qDim),
    wg = W(H, D),
    wu = W(H, D),
    wd = W(D, H),
    lm = W(V, D);
  const norm = { weight: g.uploadWeight({ name: 'n', dtype: 'BF16', shape: [D], data: bf16(D) }), eps: 1e-5 };
  const cache = g.createKvCache(s.ctx + s.prefill + 1, kvDim);
  const inv = new Float32Array(headDim / 2).fill(0.01);
  const shape = { nHeads, nKvHeads, headDim };
  const row = (n: number, T = 1) => g.fromHost(new Float32Array(T * n).fill(0.01), [T, n]);
  const x = row(D),
    q = row(qDim),
    k = row(kvDim),
    h = row(H),
    logits = row(V);
  const ids = g.fromHost(Int32Array.of(3), [1]);
  async function time(name: string, f: () => Tensor, reps = 20): Promise<void> {
    const sync = (t: Tensor) => (t.dtype === 'I32' ? g.readInt(t) : g.read(t));
    let last = f();
    await sync(last);
    const t = performance.now();
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < reps; i++) last = f();
      await sync(last);
    }
    res[name] = (performance.now() - t) / 3 / reps;
  }
  await time('read round trip (no work)', () => row(4), 1);
  await time('embed', () => g.embed(ids, lm));
  await time(`q proj ${qDim}x${D} +norm`, () => g.matmul(x, wq, { norm }));
  await time(`k proj ${kvDim}x${D} +norm`, () => g.matmul(x, wk, { norm }));
  await time(`ropeAndCache`, () => g.ropeAndCache(q, k, k, cache, s.ctx, inv, shape));
  await time(`attention over ${s.ctx + 1}`, () => g.attention(q, cache, s.ctx, shape));
  await time(`o proj ${D}x${qDim} +residual`, () => g.matmul(q, wo, { residual: x }));
  await time(`gateUp 2x${H}x${D} +norm`, () => g.gateUp(x, wg, wu, norm));
  await time(`down ${D}x${H} +residual`, () => g.matmul(h, wd, { residual: x }));
  await time(`lm head ${V}x${D} +norm`, () => g.matmul(x, lm, { norm }));
  await time(`argmax ${V}`, () => g.argmax(logits));
  const xp = row(D, s.prefill),
    qp = row(qDim, s.prefill);
  await time(`prefill T=${s.prefill} q proj`, () => g.matmul(xp, wq, { norm }), 3);
  await time(`prefill T=${s.prefill} gateUp`, () => g.gateUp(xp, wg, wu, norm), 3);
  await time(`prefill T=${s.prefill} attention`, () => g.attention(qp, cache, 0, shape), 3);
  g.destroy();
  return res;
}
