// The block formats' unpacking in WebAssembly text, shared by the f32 block dots (quantWat.ts), the int8 dots
// (quantIntWat.ts) and the dequantizers (quantDeqWat.ts): each reads the same bytes the same way and differs only in
// what it does with the quants (multiply by f32 x, by int x, or store). $p is the current block's address.
import { get, splat8 } from './watOps.ts';

/** 16 bytes at byte `off` of the current block. */
export const load = (off: number): string => `(v128.load offset=${off} ${get('p')})`;
export const setQ = (expr: string): string => `(local.set $q ${expr})`;

/** Lane j holds 1 << (j % 8): the bit of its qh byte that lane j reads. */
const LANE_BIT = '(v128.const i8x16 1 2 4 8 16 32 64 128 1 2 4 8 16 32 64 128)';

/**
 * Q5_0's 16 signed quants (-16..15) of values 16*half..16*half+15: `nibbles` (their low 4 bits, 0..15) minus 16
 * where their qh bit is clear. `qh` holds the block's u32 in its low 4 bytes (v128.load32_zero); a shuffle gives lanes
 * 0..7 qh byte 2*half and lanes 8..15 byte 2*half+1, an and/eq with LANE_BIT makes each lane's bit a 0/-1 mask, and
 * andnot keeps 16 where it is clear: 5 ops a half (measured: as fast as a splat + swizzle; the qh bits cost Q5_0
 * about a quarter over Q4_0's block dot).
 */
function q5_0Quants(nibbles: string, qh: string, half: 0 | 1): string {
  const bytes = [...Array<number>(8).fill(2 * half), ...Array<number>(8).fill(2 * half + 1)];
  const bits = `(v128.and (i8x16.shuffle ${bytes.join(' ')} ${qh} ${qh}) ${LANE_BIT})`;
  return `(i8x16.sub ${nibbles} (v128.andnot ${splat8(16)} (i8x16.eq ${bits} ${LANE_BIT})))`;
}

/** Q4_0's two runs of 16 quants (-8..7) from the 16 nibble bytes in $v: low nibbles are values 0..15, high 16..31. */
export function q4_0Halves(): [string, string] {
  return [
    `(i8x16.sub (v128.and ${get('v')} ${splat8(15)}) ${splat8(8)})`,
    `(i8x16.sub (i8x16.shr_u ${get('v')} (i32.const 4)) ${splat8(8)})`,
  ];
}

/** Q5_0's nibble bytes into $v and its qh word into $hb (22 bytes: f16 d, u32 qh, 16 bytes of nibbles). */
export const Q5_0_SETUP = `(local.set $v ${load(6)})
      (local.set $hb (v128.load32_zero offset=2 ${get('p')}))`;

/** Q5_0's two runs of 16 quants (-16..15), after Q5_0_SETUP. */
export function q5_0Halves(): [string, string] {
  return [
    q5_0Quants(`(v128.and ${get('v')} ${splat8(15)})`, get('hb'), 0),
    q5_0Quants(`(i8x16.shr_u ${get('v')} (i32.const 4))`, get('hb'), 1),
  ];
}

/** Q4_K's 6-bit scale (which = 0) or min (which = 1) of sub-block j, from the 12 bytes at block offset 4
 * (quant.ts scaleMinK4, llama.cpp get_scale_min_k4). */
export function scaleMinK4(j: number, which: 0 | 1): string {
  const b = (off: number): string => `(i32.load8_u offset=${4 + off} ${get('p')})`;
  if (j < 4) return `(i32.and ${b(j + 4 * which)} (i32.const 63))`;
  const lowBits = which === 0 ? `(i32.and ${b(j + 4)} (i32.const 15))` : `(i32.shr_u ${b(j + 4)} (i32.const 4))`;
  return `(i32.or ${lowBits} (i32.shl (i32.shr_u ${b(j - 4 + 4 * which)} (i32.const 6)) (i32.const 4)))`;
}

/** Q4_K sub-block j's two runs of 16 quants (0..15): group j>>1's 32 bytes, low nibbles for even j, high for odd. */
export function q4kNibbles(j: number): [string, string] {
  const nib = (off: number): string =>
    j & 1 ? `(i8x16.shr_u ${load(off)} (i32.const 4))` : `(v128.and ${load(off)} ${splat8(15)})`;
  const g = 16 + 32 * (j >> 1);
  return [nib(g), nib(g + 16)];
}

/** One 16-value run of a Q6_K block: its quants (-32..31), its int8 scale as f32, where its values start, and the
 * 32-value block they fall in. */
export interface Q6kRun {
  quants: string;
  scale: string;
  value: number;
  block: number;
}

/**
 * Q6_K (210 bytes: ql[128] low nibbles, qh[64] high 2 bits, 16 x i8 scales, f16 d; value d*sc*(q-32)) as four groups:
 * half h, lanes l0..l0+15 of ql/qh give four runs (values l, l+32, l+64, l+96 of the half, as quant.ts q6_K), each
 * under one scale. `setup` loads the group's qh bytes into $v, which its runs read.
 */
export function q6kGroups(): { setup: string; runs: Q6kRun[] }[] {
  const and = (x: string, m: number): string => `(v128.and ${x} ${splat8(m)})`;
  const groups: { setup: string; runs: Q6kRun[] }[] = [];
  for (let h = 0; h < 2; h++)
    for (const l0 of [0, 16]) {
      const a = load(64 * h + l0),
        b = load(64 * h + 32 + l0),
        c = get('v');
      // the four runs' 6-bit quants: low 4 bits from ql, top 2 from qh
      const quants = [
        `(v128.or ${and(a, 15)} (i8x16.shl ${and(c, 3)} (i32.const 4)))`,
        `(v128.or ${and(b, 15)} ${and(`(i8x16.shl ${c} (i32.const 2))`, 0x30)})`,
        `(v128.or (i8x16.shr_u ${a} (i32.const 4)) ${and(c, 0x30)})`,
        `(v128.or (i8x16.shr_u ${b} (i32.const 4)) ${and(`(i8x16.shr_u ${c} (i32.const 2))`, 0x30)})`,
      ];
      groups.push({
        setup: `(local.set $v ${load(128 + 32 * h + l0)})`,
        runs: quants.map((q, i) => ({
          quants: `(i8x16.sub ${q} ${splat8(32)})`,
          scale: `(f32.convert_i32_s (i32.load8_s offset=${192 + 8 * h + (l0 >> 4) + 2 * i} ${get('p')}))`,
          value: 128 * h + 32 * i + l0,
          block: 4 * h + i,
        })),
      });
    }
  return groups;
}
