// WebAssembly text pieces the generated kernels share (gemmWat.ts, attentionWat.ts, quantWat.ts, quantIntWat.ts,
// quantDeqWat.ts): one definition each.

export const get = (n: string): string => `(local.get $${n})`;

export const ZERO4 = '(v128.const f32x4 0 0 0 0)';

/** The sum of an f32x4's four lanes. */
export const hsum = (v: string): string =>
  `(f32.add (f32.add (f32x4.extract_lane 0 ${v}) (f32x4.extract_lane 1 ${v})) ` +
  `(f32.add (f32x4.extract_lane 2 ${v}) (f32x4.extract_lane 3 ${v})))`;

/** 16 bytes of value v. */
export const splat8 = (v: number): string => `(v128.const i8x16 ${Array(16).fill(v).join(' ')})`;

/** f16 bits at address `a` as f32, exact for every finite value: the 15 magnitude bits placed in an f32's
 * exponent/mantissa and scaled by 2^112 (re-biases 15 -> 127, and makes f16 subnormals f32 normals), sign copied. */
export const f16At = (a: string): string =>
  `(f32.copysign (f32.mul (f32.reinterpret_i32 (i32.shl (i32.and (i32.load16_u ${a}) (i32.const 0x7fff)) ` +
  `(i32.const 13))) (f32.const 0x1p112)) (f32.reinterpret_i32 (i32.shl (i32.load16_u ${a}) (i32.const 16))))`;

/**
 * $acc = acc + a * b as one op: `f32x4.relaxed_madd` (a fused multiply-add where the CPU has FMA) in the relaxed
 * variant of the module, else a multiply and an add. Fusing measured 40% on the prefill gemm in Chromium (compute
 * bound); decode's gemv gained little (docs/benchmarks.md).
 */
export const madd =
  (relaxed: boolean) =>
  (acc: string, a: string, b: string): string =>
    relaxed
      ? `(local.set $${acc} (f32x4.relaxed_madd ${a} ${b} ${get(acc)}))`
      : `(local.set $${acc} (f32x4.add ${get(acc)} (f32x4.mul ${a} ${b})))`;
