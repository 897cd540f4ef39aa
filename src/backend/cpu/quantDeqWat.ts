// WebAssembly SIMD dequantizers for prefill: a run of whole blocks to f32 in the heap's scratch, which the f32 gemm
// then reads for every position. The same unpacking as the block dots (blockWat.ts), stored instead of summed. Each
// value is d*q (or d*sc*q, d*sc*q - dmin*m) rounded once to f32, as quant.ts computes it: bit-identical to it.
import { BLOCKS, type QuantDtype } from '../../weights/types.ts';
import { load, q4_0Halves, q4kNibbles, Q5_0_SETUP, q5_0Halves, q6kGroups, scaleMinK4, setQ } from './blockWat.ts';
import { f16At, get } from './watOps.ts';

/** Store the 16 int8 lanes of $q as f32 q*scale (- min) at $o + outOff bytes. Uses $h, $sc, $mn. */
function store16(outOff: number, scale: string, min?: string): string {
  const lanes = [
    `(i32x4.extend_low_i16x8_s (local.tee $h (i16x8.extend_low_i8x16_s ${get('q')})))`,
    `(i32x4.extend_high_i16x8_s ${get('h')})`,
    `(i32x4.extend_low_i16x8_s (local.tee $h (i16x8.extend_high_i8x16_s ${get('q')})))`,
    `(i32x4.extend_high_i16x8_s ${get('h')})`,
  ];
  const value = (l: string): string => {
    const prod = `(f32x4.mul (f32x4.convert_i32x4_s ${l}) ${get('sc')})`;
    return min ? `(f32x4.sub ${prod} ${get('mn')})` : prod;
  };
  return `(local.set $sc (f32x4.splat ${scale}))
      ${min ? `(local.set $mn (f32x4.splat ${min}))` : ''}
      ${lanes.map((l, i) => `(v128.store offset=${outOff + 16 * i} ${get('o')} ${value(l)})`).join('\n      ')}`;
}

function blockQ8_0(): string {
  return `(local.set $d ${f16At(get('p'))})
      ${setQ(load(2))}
      ${store16(0, get('d'))}
      ${setQ(load(18))}
      ${store16(64, get('d'))}`;
}

function blockQ4_0(): string {
  return `(local.set $d ${f16At(get('p'))})
      (local.set $v ${load(2)})
      ${setQ(q4_0Halves()[0])}
      ${store16(0, get('d'))}
      ${setQ(q4_0Halves()[1])}
      ${store16(64, get('d'))}`;
}

function blockQ5_0(): string {
  return `(local.set $d ${f16At(get('p'))})
      ${Q5_0_SETUP}
      ${setQ(q5_0Halves()[0])}
      ${store16(0, get('d'))}
      ${setQ(q5_0Halves()[1])}
      ${store16(64, get('d'))}`;
}

function blockQ4_K(): string {
  const parts: string[] = [];
  for (let j = 0; j < 8; j++) {
    const [lo, hi] = q4kNibbles(j);
    const scale = `(f32.mul ${get('d')} (f32.convert_i32_u ${scaleMinK4(j, 0)}))`;
    const min = `(f32.mul ${get('dmin')} (f32.convert_i32_u ${scaleMinK4(j, 1)}))`;
    parts.push(`${setQ(lo)}
      ${store16(128 * j, scale, min)}
      ${setQ(hi)}
      ${store16(128 * j + 64, scale, min)}`);
  }
  return `(local.set $d ${f16At(get('p'))})
      (local.set $dmin ${f16At(`(i32.add ${get('p')} (i32.const 2))`)})
      ${parts.join('\n      ')}`;
}

function blockQ6_K(): string {
  const parts = q6kGroups().flatMap(({ setup, runs }) => [
    setup,
    ...runs.map(
      (r) => `${setQ(r.quants)}
      ${store16(4 * r.value, `(f32.mul ${get('d')} ${r.scale})`)}`,
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

/** deq_<dtype>(w, out, nBlocks): nBlocks whole blocks from w as f32 at out. */
function deqFunc(dtype: QuantDtype): string {
  const k = { body: KERNELS[dtype], ...BLOCKS[dtype] };
  return `
  (func (export "deq_${dtype.toLowerCase()}") (param $w i32) (param $out i32) (param $nBlocks i32)
    (local $p i32) (local $o i32) (local $end i32) (local $q v128) (local $h v128) (local $v v128) (local $hb v128)
    (local $sc v128) (local $mn v128) (local $d f32) (local $dmin f32)
    (local.set $p ${get('w')})
    (local.set $o ${get('out')})
    (local.set $end (i32.add ${get('w')} (i32.mul ${get('nBlocks')} (i32.const ${k.bytes}))))
    (block $done (loop $loop
      (br_if $done (i32.ge_u ${get('p')} ${get('end')}))
      ${k.body()}
      (local.set $p (i32.add ${get('p')} (i32.const ${k.bytes})))
      (local.set $o (i32.add ${get('o')} (i32.const ${4 * k.values})))
      (br $loop)))
  )`;
}

/** The dequantizers of every block format, for the module in gemmWat.ts. */
export function quantDeqFuncs(): string {
  return (Object.keys(KERNELS) as QuantDtype[]).map(deqFunc).join('\n');
}
