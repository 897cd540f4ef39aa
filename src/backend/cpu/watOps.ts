// WebAssembly text pieces the generated kernels share (gemmWat.ts, attentionWat.ts).

const get = (n: string): string => `(local.get $${n})`;

/**
 * $acc = acc + a * b as one op: `f32x4.relaxed_madd` (a fused multiply-add where the CPU has FMA) in the relaxed
 * variant of the module, else a multiply and an add. The float kernels are compute-bound on a CPU core (bf16 gemv:
 * 9 ops per 16 bytes of weights), so one op less per 4 products matters.
 */
export const madd =
  (relaxed: boolean) =>
  (acc: string, a: string, b: string): string =>
    relaxed
      ? `(local.set $${acc} (f32x4.relaxed_madd ${a} ${b} ${get(acc)}))`
      : `(local.set $${acc} (f32x4.add ${get(acc)} (f32x4.mul ${a} ${b})))`;
