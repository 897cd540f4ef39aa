// WebAssembly SIMD block dots for decode (one position): y[n] = W[n,:] . x for a weight in llama.cpp's block formats
// (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K), read straight from the file's bytes in the wasm heap. Assembled with gemmWat.ts
// into one module. Each block's integer quants are widened in-register (i8 -> i16 -> i32 -> f32) and multiplied by
// f32 x; the block (or sub-block) scale is factored out of each partial sum, as quant.ts's dotRow does, so the
// products are the exactly dequantized weights' up to f32 rounding. Blocks of 18, 22, 34, 144 and 210 bytes are
// unaligned: wasm loads take any address (the alignment immediate is only a hint), so no copy is needed.
import type { QuantDtype } from '../../weights/types.ts';
import { f16At, get, hsum, splat8, ZERO4 } from './watOps.ts';

/** f32x4 partial sums of 16 signed int8 lanes (local $q) times the 16 f32 at $xa + xOff bytes. Uses local $h. */
function dot16(xOff: number): string {
  const xl = (i: number): string => `(v128.load offset=${xOff + 16 * i} ${get('xa')})`;
  const cvt = (half: 'low' | 'high'): string => `(f32x4.convert_i32x4_s (i32x4.extend_${half}_i16x8_s ${get('h')}))`;
  return `(f32x4.add
        (f32x4.add
          (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s
            (local.tee $h (i16x8.extend_low_i8x16_s ${get('q')})))) ${xl(0)})
          (f32x4.mul ${cvt('high')} ${xl(1)}))
        (f32x4.add
          (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s
            (local.tee $h (i16x8.extend_high_i8x16_s ${get('q')})))) ${xl(2)})
          (f32x4.mul ${cvt('high')} ${xl(3)})))`;
}

/** $acc += sum * splat(scale). */
const accumulate = (sum: string, scale: string): string =>
  `(local.set $acc (f32x4.add ${get('acc')} (f32x4.mul ${sum} (f32x4.splat ${scale}))))`;

/** Address of byte `off` of the current block. */
const at = (off: number): string => `(i32.add ${get('p')} (i32.const ${off}))`;
const setQ = (expr: string): string => `(local.set $q ${expr})`;

/** Q8_0 (34 bytes: f16 d, 32 x i8): d * sum(q x). */
function blockQ8_0(): string {
  return `(local.set $s ${ZERO4})
      ${setQ(`(v128.load offset=2 ${get('p')})`)}
      (local.set $s (f32x4.add ${get('s')} ${dot16(0)}))
      ${setQ(`(v128.load offset=18 ${get('p')})`)}
      (local.set $s (f32x4.add ${get('s')} ${dot16(64)}))
      ${accumulate(get('s'), f16At(get('p')))}`;
}

/** Q4_0 (18 bytes: f16 d, 16 bytes of nibbles; low nibbles are values 0..15, high 16..31): d * sum((q - 8) x). */
function blockQ4_0(): string {
  return `(local.set $v (v128.load offset=2 ${get('p')}))
      ${setQ(`(i8x16.sub (v128.and ${get('v')} ${splat8(15)}) ${splat8(8)})`)}
      (local.set $s ${dot16(0)})
      ${setQ(`(i8x16.sub (i8x16.shr_u ${get('v')} (i32.const 4)) ${splat8(8)})`)}
      (local.set $s (f32x4.add ${get('s')} ${dot16(64)}))
      ${accumulate(get('s'), f16At(get('p')))}`;
}

/** Lane j holds 1 << (j % 8): the bit of its qh byte that lane j reads. */
const LANE_BIT = '(v128.const i8x16 1 2 4 8 16 32 64 128 1 2 4 8 16 32 64 128)';

/**
 * Q5_0's 16 signed quants (-16..15) of values 16*half..16*half+15: `nibbles` (their low 4 bits, 0..15) minus 16
 * where their qh bit is clear. `qh` holds the block's u32 in its low 4 bytes (v128.load32_zero); a shuffle gives lanes
 * 0..7 qh byte 2*half and lanes 8..15 byte 2*half+1, an and/eq with LANE_BIT makes each lane's bit a 0/-1 mask, and
 * andnot keeps 16 where it is clear: 5 ops a half (measured: as fast as a splat + swizzle; the qh bits cost Q5_0
 * about a quarter over Q4_0's block dot). Shared by the block dot, the integer dot (quantIntWat.ts) and the
 * dequantizer (quantDeqWat.ts).
 */
export function q5_0Quants(nibbles: string, qh: string, half: 0 | 1): string {
  const bytes = [...Array<number>(8).fill(2 * half), ...Array<number>(8).fill(2 * half + 1)];
  const bits = `(v128.and (i8x16.shuffle ${bytes.join(' ')} ${qh} ${qh}) ${LANE_BIT})`;
  return `(i8x16.sub ${nibbles} (v128.andnot ${splat8(16)} (i8x16.eq ${bits} ${LANE_BIT})))`;
}

/** Q5_0 (22 bytes: f16 d, u32 qh of 5th bits, 16 bytes of nibbles as Q4_0's): d * sum((q - 16) x). */
function blockQ5_0(): string {
  return `(local.set $v (v128.load offset=6 ${get('p')}))
      (local.set $hb (v128.load32_zero offset=2 ${get('p')}))
      ${setQ(q5_0Quants(`(v128.and ${get('v')} ${splat8(15)})`, get('hb'), 0))}
      (local.set $s ${dot16(0)})
      ${setQ(q5_0Quants(`(i8x16.shr_u ${get('v')} (i32.const 4))`, get('hb'), 1))}
      (local.set $s (f32x4.add ${get('s')} ${dot16(64)}))
      ${accumulate(get('s'), f16At(get('p')))}`;
}

/** Q4_K's 6-bit scale (which = 0) or min (which = 1) of sub-block j, from the 12 bytes at block offset 4
 * (quant.ts scaleMinK4, llama.cpp get_scale_min_k4). */
function scaleMinK4(j: number, which: 0 | 1): string {
  const b = (off: number): string => `(i32.load8_u ${at(4 + off)})`;
  if (j < 4) return `(i32.and ${b(j + 4 * which)} (i32.const 63))`;
  const lowBits = which === 0 ? `(i32.and ${b(j + 4)} (i32.const 15))` : `(i32.shr_u ${b(j + 4)} (i32.const 4))`;
  return `(i32.or ${lowBits} (i32.shl (i32.shr_u ${b(j - 4 + 4 * which)} (i32.const 6)) (i32.const 4)))`;
}

/**
 * Q4_K (144 bytes: f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes; group g's 32 bytes hold sub-block 2g in the
 * low nibbles and 2g+1 in the high ones): per sub-block d*sc*sum(q x) - dmin*m*sum(x), with sum(x) per 32 values
 * computed once per call into the scratch at $xs (x's, not the weight's, so every row shares it).
 */
function blockQ4_K(): string {
  const parts: string[] = [];
  for (let g = 0; g < 4; g++) {
    for (const [j, hi] of [
      [2 * g, false],
      [2 * g + 1, true],
    ] as const) {
      const nib = (off: number): string =>
        hi
          ? `(i8x16.shr_u (v128.load offset=${off} ${get('p')}) (i32.const 4))`
          : `(v128.and (v128.load offset=${off} ${get('p')}) ${splat8(15)})`;
      const xo = 128 * j; // bytes of x before sub-block j
      parts.push(`${setQ(nib(16 + 32 * g))}
      (local.set $s ${dot16(xo)})
      ${setQ(nib(32 + 32 * g))}
      (local.set $s (f32x4.add ${get('s')} ${dot16(xo + 64)}))
      ${accumulate(get('s'), `(f32.mul ${get('d')} (f32.convert_i32_u ${scaleMinK4(j, 0)}))`)}
      (local.set $acc (f32x4.sub ${get('acc')} (f32x4.mul (v128.load offset=${16 * j} ${get('xsa')})
        (f32x4.splat (f32.mul ${get('dmin')} (f32.convert_i32_u ${scaleMinK4(j, 1)}))))))`);
    }
  }
  return `(local.set $d ${f16At(get('p'))})
      (local.set $dmin ${f16At(at(2))})
      ${parts.join('\n      ')}
      (local.set $xsa (i32.add ${get('xsa')} (i32.const 128)))`;
}

/**
 * Q6_K (210 bytes: ql[128] low nibbles, qh[64] high 2 bits, 16 x i8 scales, f16 d; value d*sc*(q-32)). Half h,
 * lanes l0..l0+15 of ql/qh give four 16-value runs (values l, l+32, l+64, l+96 of the half), each under one scale.
 */
function blockQ6_K(): string {
  const parts: string[] = [];
  for (let h = 0; h < 2; h++)
    for (const l0 of [0, 16]) {
      const a = `(v128.load offset=${64 * h + l0} ${get('p')})`;
      const b = `(v128.load offset=${64 * h + 32 + l0} ${get('p')})`;
      const c = get('v');
      const and = (x: string, m: number): string => `(v128.and ${x} ${splat8(m)})`;
      // the four runs' 6-bit quants: low 4 bits from ql, top 2 from qh (quant.ts q6_K)
      const runs = [
        `(v128.or ${and(a, 15)} (i8x16.shl ${and(c, 3)} (i32.const 4)))`,
        `(v128.or ${and(b, 15)} ${and(`(i8x16.shl ${c} (i32.const 2))`, 0x30)})`,
        `(v128.or (i8x16.shr_u ${a} (i32.const 4)) ${and(c, 0x30)})`,
        `(v128.or (i8x16.shr_u ${b} (i32.const 4)) ${and(`(i8x16.shr_u ${c} (i32.const 2))`, 0x30)})`,
      ];
      parts.push(`(local.set $v (v128.load offset=${128 + 32 * h + l0} ${get('p')}))`);
      runs.forEach((run, i) => {
        const sc = `(f32.convert_i32_s (i32.load8_s offset=${192 + 8 * h + (l0 >> 4) + 2 * i} ${get('p')}))`;
        parts.push(`${setQ(`(i8x16.sub ${run} ${splat8(32)})`)}
      ${accumulate(dot16(4 * (128 * h + 32 * i + l0)), `(f32.mul ${get('d')} ${sc})`)}`);
      });
    }
  return `(local.set $d ${f16At(at(208))})
      ${parts.join('\n      ')}`;
}

const KERNELS: Record<QuantDtype, { body: () => string; values: number; bytes: number }> = {
  Q8_0: { body: blockQ8_0, values: 32, bytes: 34 },
  Q4_0: { body: blockQ4_0, values: 32, bytes: 18 },
  Q5_0: { body: blockQ5_0, values: 32, bytes: 22 },
  Q4_K: { body: blockQ4_K, values: 256, bytes: 144 },
  Q6_K: { body: blockQ6_K, values: 256, bytes: 210 },
};

/** Per-32-value partial sums of x (f32x4 each) into $xs: Q4_K's min terms. */
function xSums(): string {
  const loads = Array.from({ length: 8 }, (_, i) => `(v128.load offset=${16 * i} ${get('xa')})`);
  let sum = loads[0];
  for (const l of loads.slice(1)) sum = `(f32x4.add ${sum} ${l})`;
  return `(local.set $xa ${get('x')}) (local.set $xsa ${get('xs')})
    (block $sdone (loop $sloop
      (br_if $sdone (i32.ge_u ${get('xa')} ${get('xe')}))
      (v128.store ${get('xsa')} ${sum})
      (local.set $xa (i32.add ${get('xa')} (i32.const 128)))
      (local.set $xsa (i32.add ${get('xsa')} (i32.const 16)))
      (br $sloop)))`;
}

/** qdot_<dtype>(x, w, y, xs, K, N): y[n] = W[n,:] . x for n < N; xs: K/32 * 16 bytes of scratch (Q4_K only). */
function qdotFunc(dtype: QuantDtype): string {
  const k = KERNELS[dtype];
  return `
  (func (export "qdot_${dtype.toLowerCase()}")
    (param $x i32) (param $w i32) (param $y i32) (param $xs i32) (param $K i32) (param $N i32)
    (local $n i32) (local $p i32) (local $xa i32) (local $xe i32) (local $xsa i32)
    (local $acc v128) (local $s v128) (local $q v128) (local $h v128) (local $v v128) (local $hb v128)
    (local $d f32) (local $dmin f32)
    (local.set $xe (i32.add ${get('x')} (i32.shl ${get('K')} (i32.const 2))))
    ${dtype === 'Q4_K' ? xSums() : ''}
    (local.set $p ${get('w')})
    (block $ndone (loop $nloop
      (br_if $ndone (i32.ge_u ${get('n')} ${get('N')}))
      (local.set $acc ${ZERO4})
      (local.set $xa ${get('x')})
      (local.set $xsa ${get('xs')})
      (block $bdone (loop $bloop
        (br_if $bdone (i32.ge_u ${get('xa')} ${get('xe')}))
      ${k.body()}
        (local.set $p (i32.add ${get('p')} (i32.const ${k.bytes})))
        (local.set $xa (i32.add ${get('xa')} (i32.const ${4 * k.values})))
        (br $bloop)))
      (f32.store (i32.add ${get('y')} (i32.shl ${get('n')} (i32.const 2))) ${hsum(get('acc'))})
      (local.set $n (i32.add ${get('n')} (i32.const 1)))
      (br $nloop)))
  )`;
}

/** The block dots of every block format, for the module in gemmWat.ts. */
export function quantDotFuncs(): string {
  return (Object.keys(KERNELS) as QuantDtype[]).map(qdotFunc).join('\n');
}
