// WebAssembly SIMD block dots for decode (one position): y[n] = W[n,:] . x for a weight in llama.cpp's block formats
// (Q8_0, Q4_0, Q5_0, Q4_K, Q6_K), read straight from the file's bytes in the wasm heap. Assembled with gemmWat.ts
// into one module. Each block's integer quants are widened in-register (i8 -> i16 -> i32 -> f32) and multiplied by
// f32 x; the block (or sub-block) scale is factored out of each partial sum, as quant.ts's dotRow does, so the
// products are the exactly dequantized weights' up to f32 rounding. Blocks of 18, 22, 34, 144 and 210 bytes are
// unaligned: wasm loads take any address (the alignment immediate is only a hint), so no copy is needed.
import { BLOCKS, type QuantDtype } from '../../weights/types.ts';
import { load, q4_0Halves, q4kNibbles, Q5_0_SETUP, q5_0Halves, q6kGroups, scaleMinK4, setQ } from './blockWat.ts';
import { f16At, get, hsum, ZERO4 } from './watOps.ts';

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

/** Q8_0 (34 bytes: f16 d, 32 x i8): d * sum(q x). */
function blockQ8_0(): string {
  return `(local.set $s ${ZERO4})
      ${setQ(load(2))}
      (local.set $s (f32x4.add ${get('s')} ${dot16(0)}))
      ${setQ(load(18))}
      (local.set $s (f32x4.add ${get('s')} ${dot16(64)}))
      ${accumulate(get('s'), f16At(get('p')))}`;
}

/** Q4_0 (18 bytes: f16 d, 16 bytes of nibbles; low nibbles are values 0..15, high 16..31): d * sum((q - 8) x). */
function blockQ4_0(): string {
  return `(local.set $v ${load(2)})
      ${setQ(q4_0Halves()[0])}
      (local.set $s ${dot16(0)})
      ${setQ(q4_0Halves()[1])}
      (local.set $s (f32x4.add ${get('s')} ${dot16(64)}))
      ${accumulate(get('s'), f16At(get('p')))}`;
}

/** Q5_0 (22 bytes: f16 d, u32 qh of 5th bits, 16 bytes of nibbles as Q4_0's): d * sum((q - 16) x). */
function blockQ5_0(): string {
  return `${Q5_0_SETUP}
      ${setQ(q5_0Halves()[0])}
      (local.set $s ${dot16(0)})
      ${setQ(q5_0Halves()[1])}
      (local.set $s (f32x4.add ${get('s')} ${dot16(64)}))
      ${accumulate(get('s'), f16At(get('p')))}`;
}

/**
 * Q4_K (144 bytes: f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes; group g's 32 bytes hold sub-block 2g in the
 * low nibbles and 2g+1 in the high ones): per sub-block d*sc*sum(q x) - dmin*m*sum(x), with sum(x) per 32 values
 * computed once per call into the scratch at $xs (x's, not the weight's, so every row shares it).
 */
function blockQ4_K(): string {
  const parts: string[] = [];
  for (let j = 0; j < 8; j++) {
    const [lo, hi] = q4kNibbles(j);
    const xo = 128 * j; // bytes of x before sub-block j
    parts.push(`${setQ(lo)}
      (local.set $s ${dot16(xo)})
      ${setQ(hi)}
      (local.set $s (f32x4.add ${get('s')} ${dot16(xo + 64)}))
      ${accumulate(get('s'), `(f32.mul ${get('d')} (f32.convert_i32_u ${scaleMinK4(j, 0)}))`)}
      (local.set $acc (f32x4.sub ${get('acc')} (f32x4.mul (v128.load offset=${16 * j} ${get('xsa')})
        (f32x4.splat (f32.mul ${get('dmin')} (f32.convert_i32_u ${scaleMinK4(j, 1)}))))))`);
  }
  return `(local.set $d ${f16At(get('p'))})
      (local.set $dmin ${f16At(`(i32.add ${get('p')} (i32.const 2))`)})
      ${parts.join('\n      ')}
      (local.set $xsa (i32.add ${get('xsa')} (i32.const 128)))`;
}

/** Q6_K: each 16-value run (blockWat.ts q6kGroups) times x, under its int8 scale. */
function blockQ6_K(): string {
  const parts = q6kGroups().flatMap(({ setup, runs }) => [
    setup,
    ...runs.map(
      (r) => `${setQ(r.quants)}
      ${accumulate(dot16(4 * r.value), `(f32.mul ${get('d')} ${r.scale})`)}`,
    ),
  ]);
  return `(local.set $d ${f16At(`(i32.add ${get('p')} (i32.const 208))`)})
      ${parts.join('\n      ')}`;
}

/** Each format's block body; its values and bytes per block are BLOCKS' (types.ts). */
const KERNELS: Record<QuantDtype, () => string> = {
  Q8_0: blockQ8_0,
  Q4_0: blockQ4_0,
  Q5_0: blockQ5_0,
  Q4_K: blockQ4_K,
  Q6_K: blockQ6_K,
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
  const k = { body: KERNELS[dtype], ...BLOCKS[dtype] };
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
