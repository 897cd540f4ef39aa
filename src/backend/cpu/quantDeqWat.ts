// WebAssembly SIMD dequantizers for prefill: a run of whole blocks to f32 in the heap's scratch, which the f32 gemm
// then reads for every position. The same unpacking as the block dots (quantWat.ts), stored instead of summed. Each
// value is d*q (or d*sc*q, d*sc*q - dmin*m) rounded once to f32, as quant.ts computes it: bit-identical to it.
import type { QuantDtype } from '../../weights/types.ts';
import { q5_0Quants } from './quantWat.ts';
import { f16At, get, splat8 } from './watOps.ts';

const load = (off: number): string => `(v128.load offset=${off} ${get('p')})`;
const setQ = (expr: string): string => `(local.set $q ${expr})`;

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
      ${setQ(`(i8x16.sub (v128.and ${load(2)} ${splat8(15)}) ${splat8(8)})`)}
      ${store16(0, get('d'))}
      ${setQ(`(i8x16.sub (i8x16.shr_u ${load(2)} (i32.const 4)) ${splat8(8)})`)}
      ${store16(64, get('d'))}`;
}

function blockQ5_0(): string {
  return `(local.set $d ${f16At(get('p'))})
      (local.set $v ${load(6)})
      (local.set $hb (v128.load32_zero offset=2 ${get('p')}))
      ${setQ(q5_0Quants(`(v128.and ${get('v')} ${splat8(15)})`, get('hb'), 0))}
      ${store16(0, get('d'))}
      ${setQ(q5_0Quants(`(i8x16.shr_u ${get('v')} (i32.const 4))`, get('hb'), 1))}
      ${store16(64, get('d'))}`;
}

/** Q4_K 6-bit scale (which = 0) or min (1) of sub-block j (quant.ts scaleMinK4). */
function scaleMinK4(j: number, which: 0 | 1): string {
  const b = (off: number): string => `(i32.load8_u offset=${4 + off} ${get('p')})`;
  if (j < 4) return `(i32.and ${b(j + 4 * which)} (i32.const 63))`;
  const lowBits = which === 0 ? `(i32.and ${b(j + 4)} (i32.const 15))` : `(i32.shr_u ${b(j + 4)} (i32.const 4))`;
  return `(i32.or ${lowBits} (i32.shl (i32.shr_u ${b(j - 4 + 4 * which)} (i32.const 6)) (i32.const 4)))`;
}

function blockQ4_K(): string {
  const parts: string[] = [];
  for (let j = 0; j < 8; j++) {
    const g = j >> 1;
    const nib = (off: number): string =>
      j & 1 ? `(i8x16.shr_u ${load(off)} (i32.const 4))` : `(v128.and ${load(off)} ${splat8(15)})`;
    const scale = `(f32.mul ${get('d')} (f32.convert_i32_u ${scaleMinK4(j, 0)}))`;
    const min = `(f32.mul ${get('dmin')} (f32.convert_i32_u ${scaleMinK4(j, 1)}))`;
    parts.push(`${setQ(nib(16 + 32 * g))}
      ${store16(128 * j, scale, min)}
      ${setQ(nib(32 + 32 * g))}
      ${store16(128 * j + 64, scale, min)}`);
  }
  return `(local.set $d ${f16At(get('p'))})
      (local.set $dmin ${f16At(`(i32.add ${get('p')} (i32.const 2))`)})
      ${parts.join('\n      ')}`;
}

function blockQ6_K(): string {
  const parts: string[] = [];
  const and = (x: string, m: number): string => `(v128.and ${x} ${splat8(m)})`;
  for (let h = 0; h < 2; h++)
    for (const l0 of [0, 16]) {
      const a = load(64 * h + l0),
        b = load(64 * h + 32 + l0),
        c = get('v');
      const runs = [
        `(v128.or ${and(a, 15)} (i8x16.shl ${and(c, 3)} (i32.const 4)))`,
        `(v128.or ${and(b, 15)} ${and(`(i8x16.shl ${c} (i32.const 2))`, 0x30)})`,
        `(v128.or (i8x16.shr_u ${a} (i32.const 4)) ${and(c, 0x30)})`,
        `(v128.or (i8x16.shr_u ${b} (i32.const 4)) ${and(`(i8x16.shr_u ${c} (i32.const 2))`, 0x30)})`,
      ];
      parts.push(`(local.set $v ${load(128 + 32 * h + l0)})`);
      runs.forEach((run, i) => {
        const sc = `(f32.convert_i32_s (i32.load8_s offset=${192 + 8 * h + (l0 >> 4) + 2 * i} ${get('p')}))`;
        parts.push(`${setQ(`(i8x16.sub ${run} ${splat8(32)})`)}
      ${store16(4 * (128 * h + 32 * i + l0), `(f32.mul ${get('d')} ${sc})`)}`);
      });
    }
  return `(local.set $d ${f16At(`(i32.add ${get('p')} (i32.const 208))`)})
      ${parts.join('\n      ')}`;
}

const KERNELS: Record<QuantDtype, { body: () => string; values: number; bytes: number }> = {
  Q8_0: { body: blockQ8_0, values: 32, bytes: 34 },
  Q4_0: { body: blockQ4_0, values: 32, bytes: 18 },
  Q5_0: { body: blockQ5_0, values: 32, bytes: 22 },
  Q4_K: { body: blockQ4_K, values: 256, bytes: 144 },
  Q6_K: { body: blockQ6_K, values: 256, bytes: 210 },
};

/** deq_<dtype>(w, out, nBlocks): nBlocks whole blocks from w as f32 at out. */
function deqFunc(dtype: QuantDtype): string {
  const k = KERNELS[dtype];
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
