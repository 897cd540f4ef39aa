// The read-bandwidth measurement itself, free of Node imports so the bench page can run it (roofline.ts assembles
// the module it times).

/** Array size: 256 MiB, twice the largest bench model's quantized weights and far past the caches. */
export const ROOFLINE_BYTES = 256 * 2 ** 20;

/**
 * Best-of-`reps` read GB/s of the sum over `bytes` (in Node, or in a page that imports it). The array is written
 * first so its pages are real memory, not the shared zero page.
 */
export async function measureReadBandwidth(wasmBase64: string, bytes: number, reps: number): Promise<number> {
  const bin = atob(wasmBase64);
  const code = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  const { instance } = await WebAssembly.instantiate(code);
  const ex = instance.exports as { memory: WebAssembly.Memory; sum: (p: number, n: number) => number };
  ex.memory.grow(Math.ceil((bytes + 64) / 65536));
  new Uint8Array(ex.memory.buffer, 64, bytes).fill(1);
  let best = Infinity,
    check = 0;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    check += ex.sum(64, bytes);
    best = Math.min(best, performance.now() - t0);
  }
  if (check === 0) throw new Error('the roofline sum read nothing'); // keeps the sum observable
  return bytes / (best / 1000) / 1e9;
}
