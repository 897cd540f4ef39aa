// `npm run bench -- gemv [--mb 160] [--runs 5]`: the CPU engine's one-position matmul (decode) on weights far larger
// than the caches, the smollm2-135m shapes (q/o 576x576, gate/up 576->1536, down 1536->576, LM head 576->49152):
// GB/s of weights read by the gemm's four-rows-abreast kernel and by the row-order gemv, bf16 and f32, against the
// read roofline (a wasm SIMD sum) of the same process. Node; the figures go to docs/benchmarks.md.
import { WasmGemm, type HeapKind } from '../../src/backend/cpu/wasmGemm.ts';
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

/** Best GB/s over `runs` passes of y = W x through copies of one shape (together `totalBytes`, beyond the caches). */
function measure(
  g: WasmGemm,
  kind: HeapKind,
  K: number,
  N: number,
  totalBytes: number,
  runs: number,
  abreast: boolean,
) {
  const bytes = K * N * (kind === 'bf16' ? 2 : 4);
  const copies = Math.max(2, Math.ceil(totalBytes / bytes));
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 2) data[i + 1] = 0x3c + (i % 3); // modest finite values in both dtypes
  const ws = Array.from({ length: copies }, () => g.store(data));
  const x = Float32Array.from({ length: K }, (_, i) => Math.sin(i));
  try {
    for (const w of ws) g.gemm(x, 1, K, w, kind, N, abreast);
    let best = 0;
    for (let r = 0; r < runs; r++) {
      const t = performance.now();
      for (const w of ws) g.gemm(x, 1, K, w, kind, N, abreast);
      best = Math.max(best, (bytes * copies) / ((performance.now() - t) / 1000) / 1e9);
    }
    return best;
  } finally {
    for (const w of ws) g.release(w);
  }
}

await runCli(async () => {
  const f = parseFlags(process.argv.slice(2), { values: ['mb', 'runs'], switches: [] });
  const total = intFlag(f, 'mb', 160, 1) * 1e6;
  const runs = intFlag(f, 'runs', 5, 1);
  const roof = await roofline(256 * 2 ** 20, runs);
  const machine = `Node ${process.version}, ${cpus().length} cores: ${cpus()[0]?.model ?? '?'}`;
  console.log(`${machine}; ${total / 1e6} MB of weights per pass`);
  console.log(`read roofline (wasm SIMD sum over 256 MiB, one thread): ${roof.toFixed(2)} GB/s`);
  console.log(mdHeader(['matrix', 'K x N', 'weights', 'rows abreast GB/s', 'row order GB/s', 'of roofline']));
  const g = new WasmGemm();
  for (const kind of ['bf16', 'f32'] as HeapKind[])
    for (const [name, K, N] of SHAPES) {
      const abreast = measure(g, kind, K, N, total, runs, true);
      const inOrder = measure(g, kind, K, N, total, runs, false);
      console.log(
        mdRow([
          name,
          `${K} x ${N}`,
          kind,
          abreast.toFixed(2),
          inOrder.toFixed(2),
          `${((100 * inOrder) / roof).toFixed(0)}%`,
        ]),
      );
    }
});
