import { WasmGemm } from '../src/backend/cpu/wasmGemm.ts';
const g = new WasmGemm();
const kind = (process.argv[2] ?? 'bf16') as 'bf16';
const shapes = [[576, 1536], [1536, 576], [576, 49152]];
for (const [K, N] of shapes) {
  const copies = Math.max(1, Math.ceil(160e6 / (K * N * 2)));
  const ws = Array.from({ length: copies }, () => { const b = new Uint8Array(K * N * 2); for (let i = 0; i < b.length; i += 2) { b[i] = i & 255; b[i + 1] = 0x3c + (i % 3); } return g.store(b); });
  const x = Float32Array.from({ length: K }, (_, i) => Math.sin(i));
  for (const w of ws) g.gemm(x, 1, K, w, kind, N);
  let best = Infinity;
  for (let r = 0; r < 5; r++) { const t = performance.now(); for (const w of ws) g.gemm(x, 1, K, w, kind, N); best = Math.min(best, (performance.now() - t) / copies); }
  console.log(`${kind} K=${K} N=${N} x${copies}: ${(best * 1000).toFixed(0)} us, ${(K * N * 2 / best / 1e6).toFixed(2)} GB/s`);
  for (const w of ws) g.release(w);
}
