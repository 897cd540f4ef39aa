// `npm run bench -- gemv [--mb 400] [--runs 5]`: the CPU engine's one-position matmul (decode) on weights far larger
// than the caches, the smollm2-135m shapes (q/o 576x576, gate/up 576->1536, down 1536->576, LM head 576->49152):
// GB/s of weights read by the gemm's four-rows-abreast kernel and by the row-order gemv (plain SIMD and, where the
// runtime has relaxed SIMD, with fused multiply-adds), bf16 and f32, then the block
// formats' dots (exact f32 activations and int8 ones), against the read roofline (a wasm SIMD sum) of the same
// process. Node; the figures go to docs/benchmarks.md.
import '../wasmFlags.ts'; // first: the browsers' relaxed-SIMD build
import { bestWasmVariant, WasmGemm, type HeapBlock, type HeapKind } from '../../src/backend/cpu/wasmGemm.ts';
import { quantize } from '../../src/weights/quantize.ts';
import { tensorBytes, type QuantDtype } from '../../src/weights/types.ts';
import { intFlag, parseFlags, runCli } from '../cli.ts';
import { mdHeader, mdRow } from './lib/table.ts';
import { rooflineWasmBase64 } from './lib/roofline.ts';
import { cpus } from 'node:os';

const SHAPES: [string, number, number][] = [
  ['q/o', 576, 576],
  ['gate/up', 576, 1536],
  ['down', 1536, 576],
  ['LM head', 576, 49152],
];

/** The best GB/s of a wasm SIMD sum over `bytes` (the read roofline). */
async function roofline(bytes: number, runs: number): Promise<number> {
  const { instance } = await WebAssembly.instantiate(Buffer.from(await rooflineWasmBase64(), 'base64'));
  const mem = instance.exports.memory as WebAssembly.Memory;
  mem.grow(Math.ceil(bytes / 65536) + 1);
  new Uint8Array(mem.buffer).fill(1, 0, bytes);
  const sum = instance.exports.sum as (p: number, n: number) => number;
  let best = 0;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    sum(0, bytes);
    best = Math.max(best, bytes / ((performance.now() - t) / 1000) / 1e9);
  }
  return best;
}

/** Best GB/s over `runs` passes of `mul` through weight blocks of `bytes` each. */
function timePasses(ws: HeapBlock[], bytes: number, runs: number, mul: (w: HeapBlock) => void): number {
  for (const w of ws) mul(w);
  let best = 0;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    for (const w of ws) mul(w);
    best = Math.max(best, (bytes * ws.length) / ((performance.now() - t) / 1000) / 1e9);
  }
  return best;
}

/** Copies of one weight (together `totalBytes`, beyond the caches) in the heap, released after `use`. */
function withCopies<R>(g: WasmGemm, data: Uint8Array, totalBytes: number, use: (ws: HeapBlock[]) => R): R {
  const ws = Array.from({ length: Math.max(2, Math.ceil(totalBytes / data.byteLength)) }, () => g.store(data));
  try {
    return use(ws);
  } finally {
    for (const w of ws) g.release(w);
  }
}

/** GB/s of the four-rows-abreast gemm and of the row-order gemv on one float weight, in build g's heap. */
function floatRow(g: WasmGemm, kind: HeapKind, K: number, N: number, total: number, runs: number): number[] {
  const bytes = K * N * (kind === 'bf16' ? 2 : 4);
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 2) data[i + 1] = 0x3c + (i % 3); // modest finite values in both dtypes
  const x = Float32Array.from({ length: K }, (_, i) => Math.sin(i));
  return withCopies(g, data, total, (ws) => [
    timePasses(ws, bytes, runs, (w) => g.gemm(x, 1, K, w, kind, N, true)),
    timePasses(ws, bytes, runs, (w) => g.gemm(x, 1, K, w, kind, N)),
  ]);
}

/** GB/s of the block dot with f32 activations and with int8 ones on one quantized weight. */
function blockRow(g: WasmGemm, dtype: QuantDtype, K: number, N: number, total: number, runs: number): number[] {
  const data = quantize(
    dtype,
    Float32Array.from({ length: K * N }, (_, i) => Math.sin(i * 0.37) * 0.1),
    K,
  );
  const bytes = tensorBytes(dtype, [N, K]);
  const x = Float32Array.from({ length: K }, (_, i) => Math.sin(i));
  return withCopies(g, data, total, (ws) => [
    timePasses(ws, bytes, runs, (b) => g.qdot(x, K, b, dtype, N)),
    timePasses(ws, bytes, runs, (b) => g.qdotInt(x, 1, K, b, dtype, N)),
  ]);
}

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), { values: ['mb', 'runs'], switches: [] });
  const total = intFlag(f, 'mb', 400, 1) * 1e6;
  const runs = intFlag(f, 'runs', 5, 1);
  const roof = await roofline(256 * 2 ** 20, runs);
  const machine = `Node ${process.version}, ${cpus().length} cores: ${cpus()[0]?.model ?? '?'}`;
  console.log(`${machine}; ${total / 1e6} MB of weights per pass`);
  console.log(`read roofline (wasm SIMD sum over 256 MiB, one thread): ${roof.toFixed(2)} GB/s`);
  const pct = (gbs: number): string => `${((100 * gbs) / roof).toFixed(0)}%`;
  const g = new WasmGemm('simd'),
    gr = bestWasmVariant() === 'relaxed' ? new WasmGemm('relaxed') : null;
  const header = ['matrix', 'K x N', 'weights', 'rows abreast GB/s', 'row order GB/s', 'row order, fused GB/s'];
  console.log(mdHeader([...header, 'of roofline (best)']));
  for (const kind of ['bf16', 'f32'] as HeapKind[])
    for (const [name, K, N] of SHAPES) {
      const [abreast, inOrder] = floatRow(g, kind, K, N, total, runs);
      const fused = gr ? floatRow(gr, kind, K, N, total, runs)[1] : NaN;
      const best = Math.max(inOrder, Number.isNaN(fused) ? 0 : fused);
      const cells = [abreast, inOrder, fused].map((v) => (Number.isNaN(v) ? '-' : v.toFixed(2)));
      console.log(mdRow([name, `${K} x ${N}`, kind, ...cells, pct(best)]));
    }
  console.log(
    '\n' + mdHeader(['matrix', 'K x N', 'weights', 'f32 activations GB/s', 'int8 activations GB/s', 'of roofline']),
  );
  for (const dtype of ['Q8_0', 'Q4_K', 'Q6_K'] as QuantDtype[])
    for (const [name, K, N] of SHAPES.filter(([, K]) => K % 256 === 0 || dtype === 'Q8_0')) {
      const [exact, int8] = blockRow(g, dtype, K, N, total, runs);
      console.log(mdRow([name, `${K} x ${N}`, dtype, exact.toFixed(2), int8.toFixed(2), pct(int8)]));
    }
});
