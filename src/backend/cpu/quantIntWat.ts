// WebAssembly SIMD integer block dots (opt-in, `activations: 'int8'`): the activations quantized to int8 per 32
// values (f32 scale, as llama.cpp quantizes them to Q8_0/Q8_K before its quantized matmuls), then each 16 weight
// quants times 16 activation quants summed exactly in i32 by `i32x4.dot_i16x8_s`, and one f32 multiply per run
// under one scale. Not exact: the activations lose ~1/254 of each block's range; the f32 kernels (quantWat.ts) stay
// the default and the reference fixtures' path.
import { BLOCKS, type QuantDtype } from '../../weights/types.ts';
import { load, q4_0Halves, q4kNibbles, Q5_0_SETUP, q5_0Halves, q6kGroups, scaleMinK4, setQ } from './blockWat.ts';
import { f16At, get, hsum } from './watOps.ts';

/** i32x4 partial sums of 16 int8 weight lanes (local $q) times 16 i16 activations at $xa + xOff bytes. */
const idot16 = (xOff: number): string =>
  `(i32x4.add
        (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s ${get('q')}) (v128.load offset=${xOff} ${get('xa')}))
        (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s ${get('q')}) (v128.load offset=${xOff + 16} ${get('xa')})))`;

/** Activation scale of 32-value block b of the current weight block (f32 at $xda). */
const xScale = (b: number): string => `(f32.load offset=${4 * b} ${get('xda')})`;

/** $acc += f32(int sums) * splat(scale). The i32 sums are below 2^24, so converting them is exact. */
const accumulate = (sum: string, scale: string): string =>
  `(local.set $acc (f32x4.add ${get('acc')} (f32x4.mul (f32x4.convert_i32x4_s ${sum}) (f32x4.splat ${scale}))))`;

function blockQ8_0(): string {
  return `${setQ(load(2))}
      (local.set $s ${idot16(0)})
      ${setQ(load(18))}
      ${accumulate(`(i32x4.add ${get('s')} ${idot16(32)})`, `(f32.mul ${f16At(get('p'))} ${xScale(0)})`)}`;
}

function blockQ4_0(): string {
  return `(local.set $v ${load(2)})
      ${setQ(q4_0Halves()[0])}
      (local.set $s ${idot16(0)})
      ${setQ(q4_0Halves()[1])}
      ${accumulate(`(i32x4.add ${get('s')} ${idot16(32)})`, `(f32.mul ${f16At(get('p'))} ${xScale(0)})`)}`;
}

function blockQ5_0(): string {
  return `${Q5_0_SETUP}
      ${setQ(q5_0Halves()[0])}
      (local.set $s ${idot16(0)})
      ${setQ(q5_0Halves()[1])}
      ${accumulate(`(i32x4.add ${get('s')} ${idot16(32)})`, `(f32.mul ${f16At(get('p'))} ${xScale(0)})`)}`;
}

/** Q4_K: sub-block j is activation block j; its min term uses the f32 sum of x over it (at $xsa). */
function blockQ4_K(): string {
  const parts: string[] = [];
  for (let j = 0; j < 8; j++) {
    const [lo, hi] = q4kNibbles(j);
    parts.push(`${setQ(lo)}
      (local.set $s ${idot16(64 * j)})
      ${setQ(hi)}
      ${accumulate(
        `(i32x4.add ${get('s')} ${idot16(64 * j + 32)})`,
        `(f32.mul (f32.mul ${get('d')} (f32.convert_i32_u ${scaleMinK4(j, 0)})) ${xScale(j)})`,
      )}
      (local.set $mins (f32.add ${get('mins')} (f32.mul (f32.load offset=${4 * j} ${get('xsa')})
        (f32.mul ${get('dmin')} (f32.convert_i32_u ${scaleMinK4(j, 1)})))))`);
  }
  return `(local.set $d ${f16At(get('p'))})
      (local.set $dmin ${f16At(`(i32.add ${get('p')} (i32.const 2))`)})
      ${parts.join('\n      ')}`;
}

/** Q6_K: each 16-value run (blockWat.ts q6kGroups) under its int8 scale times its activation block's. */
function blockQ6_K(): string {
  const parts = q6kGroups().flatMap(({ setup, runs }) => [
    setup,
    ...runs.map(
      (r) => `${setQ(r.quants)}
      ${accumulate(idot16(2 * r.value), `(f32.mul (f32.mul ${get('d')} ${r.scale}) ${xScale(r.block)})`)}`,
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

/**
 * qdoti_<dtype>(xq, xd, xs, w, y, K, N): y[n] = W[n,:] . x for n < N, x given as i16 quants (xq, K of them), an f32
 * scale per 32 values (xd) and, for Q4_K's min terms, the f32 sum of x per 32 values (xs).
 */
function qdotiFunc(dtype: QuantDtype): string {
  const k = { body: KERNELS[dtype], ...BLOCKS[dtype] };
  return `
  (func (export "qdoti_${dtype.toLowerCase()}")
    (param $xq i32) (param $xd i32) (param $xs i32) (param $w i32) (param $y i32) (param $K i32) (param $N i32)
    (local $n i32) (local $p i32) (local $xa i32) (local $xe i32) (local $xda i32) (local $xsa i32)
    (local $acc v128) (local $s v128) (local $q v128) (local $v v128) (local $hb v128) (local $d f32) (local $dmin f32)
    (local $mins f32)
    (local.set $xe (i32.add ${get('xq')} (i32.shl ${get('K')} (i32.const 1))))
    (local.set $p ${get('w')})
    (block $ndone (loop $nloop
      (br_if $ndone (i32.ge_u ${get('n')} ${get('N')}))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $mins (f32.const 0))
      (local.set $xa ${get('xq')})
      (local.set $xda ${get('xd')})
      (local.set $xsa ${get('xs')})
      (block $bdone (loop $bloop
        (br_if $bdone (i32.ge_u ${get('xa')} ${get('xe')}))
      ${k.body()}
        (local.set $p (i32.add ${get('p')} (i32.const ${k.bytes})))
        (local.set $xa (i32.add ${get('xa')} (i32.const ${2 * k.values})))
        (local.set $xda (i32.add ${get('xda')} (i32.const ${k.values / 8})))
        (local.set $xsa (i32.add ${get('xsa')} (i32.const ${k.values / 8})))
        (br $bloop)))
      (f32.store (i32.add ${get('y')} (i32.shl ${get('n')} (i32.const 2)))
        (f32.sub ${hsum(get('acc'))} ${get('mins')}))
      (local.set $n (i32.add ${get('n')} (i32.const 1)))
      (br $nloop)))
  )`;
}

/**
 * quant_act(x, K, xq, xd, xs): x (K f32, K a multiple of 32) as the qdoti_* inputs: per 32 values d = max|x|/127,
 * q = x/d rounded to nearest (ties to even, as llama.cpp's SIMD quantize_row_q8_0 on x86; its scalar one rounds ties
 * away), stored as i16; xd[b] = d, xs[b] = d * sum(q). It was a tenth of an int8 decode step in JavaScript.
 */
function quantActFunc(): string {
  const xs = Array.from({ length: 8 }, (_, i) => i);
  const lane = (v: string, i: number): string => `(f32x4.extract_lane ${i} ${v})`;
  const q = (i: number): string =>
    `(i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (local.get $x${i}) (local.get $inv))))`;
  return `
  (func (export "quant_act") (param $x i32) (param $K i32) (param $xq i32) (param $xd i32) (param $xs i32)
    (local $end i32) (local $m v128) (local $amax f32) (local $d f32) (local $inv v128) (local $sum v128)
    (local $q0 v128) (local $q1 v128)
    ${xs.map((i) => `(local $x${i} v128)`).join(' ')}
    (local.set $end (i32.add ${get('x')} (i32.shl ${get('K')} (i32.const 2))))
    (block $done (loop $blocks
      (br_if $done (i32.ge_u ${get('x')} ${get('end')}))
      ${xs.map((i) => `(local.set $x${i} (v128.load offset=${16 * i} ${get('x')}))`).join('\n      ')}
      (local.set $m (f32x4.abs ${get('x0')}))
      ${xs
        .slice(1)
        .map((i) => `(local.set $m (f32x4.max ${get('m')} (f32x4.abs ${get(`x${i}`)})))`)
        .join('\n      ')}
      (local.set $amax (f32.max (f32.max ${lane(get('m'), 0)} ${lane(get('m'), 1)})
        (f32.max ${lane(get('m'), 2)} ${lane(get('m'), 3)})))
      (local.set $d (f32.div ${get('amax')} (f32.const 127)))
      (local.set $inv (f32x4.splat (select (f32.div (f32.const 1) ${get('d')}) (f32.const 0)
        (f32.ne ${get('d')} (f32.const 0)))))
      (local.set $sum (v128.const i32x4 0 0 0 0))
      ${[0, 2, 4, 6]
        .map(
          (i) => `(local.set $q0 ${q(i)})
      (local.set $q1 ${q(i + 1)})
      (local.set $sum (i32x4.add ${get('sum')} (i32x4.add ${get('q0')} ${get('q1')})))
      (v128.store offset=${8 * i} ${get('xq')} (i16x8.narrow_i32x4_s ${get('q0')} ${get('q1')}))`,
        )
        .join('\n      ')}
      (f32.store ${get('xd')} ${get('d')})
      (f32.store ${get('xs')} (f32.mul ${get('d')} (f32.convert_i32_s (i32.add
        (i32.add (i32x4.extract_lane 0 ${get('sum')}) (i32x4.extract_lane 1 ${get('sum')}))
        (i32.add (i32x4.extract_lane 2 ${get('sum')}) (i32x4.extract_lane 3 ${get('sum')}))))))
      (local.set $x (i32.add ${get('x')} (i32.const 128)))
      (local.set $xq (i32.add ${get('xq')} (i32.const 64)))
      (local.set $xd (i32.add ${get('xd')} (i32.const 4)))
      (local.set $xs (i32.add ${get('xs')} (i32.const 4)))
      (br $blocks)))
  )`;
}

/** The integer block dots of every block format and the activation quantizer, for the module in gemmWat.ts. */
export function quantIntDotFuncs(): string {
  return [...(Object.keys(KERNELS) as QuantDtype[]).map(qdotiFunc), quantActFunc()].join('\n');
}
