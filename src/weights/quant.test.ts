// Each block format's dequantizer against hand-built blocks (ggml-common.h layouts), and our quantizer's round trip.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { f16BitsToF32, f32ToF16Bits } from './dtype.ts';
import { dequantize, dotRow, scaleMinK4 } from './quant.ts';
import { packScaleMinK4, quantize } from './quantize.ts';
import { BLOCKS, rowBytes, tensorBytes, type QuantDtype } from './types.ts';

function f16(b: Uint8Array, o: number, v: number): number {
  const h = f32ToF16Bits(v);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
  return f16BitsToF32(h);
}

/** Dequantized values as a plain array, -0 read as 0 (a zero scale times a negative q). */
function deq(dtype: QuantDtype, b: Uint8Array, n = BLOCKS[dtype].values): number[] {
  const out = new Float32Array(n);
  dequantize(dtype, b, 0, n, out);
  return Array.from(out, (v) => v + 0);
}

describe('block sizes', () => {
  it('rows are whole blocks; byte sizes by block, not per element', () => {
    expect(rowBytes('Q8_0', 64)).toBe(68);
    expect(rowBytes('Q4_0', 32)).toBe(18);
    expect(tensorBytes('Q5_0', [2, 576])).toBe(2 * 18 * 22);
    expect(tensorBytes('Q4_K', [3, 512])).toBe(3 * 288);
    expect(tensorBytes('Q6_K', [256])).toBe(210);
    expect(tensorBytes('BF16', [3, 5])).toBe(30);
    expect(() => rowBytes('Q4_K', 300, 'blk.0.ffn_down.weight')).toThrow(
      /blk\.0\.ffn_down\.weight: rows of 300 values are not a multiple of the Q4_K block size \(256\)/,
    );
  });
});

describe('Q8_0', () => {
  it('d*q for every int8, with positive, negative and zero scales', () => {
    for (const scale of [0.5, -0.25, 0]) {
      const b = new Uint8Array(34);
      const d = f16(b, 0, scale);
      const qs = Array.from({ length: 32 }, (_, j) => [-128 + (j >> 2), 127 - (j >> 2), -1, j >> 2][j % 4]);
      qs.forEach((q, j) => (b[2 + j] = q & 0xff));
      expect(deq('Q8_0', b)).toEqual(qs.map((q) => Math.fround(d * q) + 0));
    }
  });
  it('reads a block at any byte offset (34-byte blocks are never aligned)', () => {
    const b = new Uint8Array(35);
    f16(b, 1, 2);
    b[3] = 0xff; // -1
    const out = new Float32Array(32);
    dequantize('Q8_0', b, 1, 32, out);
    expect(out[0]).toBe(-2);
  });
});

describe('Q4_0', () => {
  it('low nibbles are values 0..15, high nibbles 16..31, value (q-8)*d', () => {
    const b = new Uint8Array(18);
    const d = f16(b, 0, -1.5);
    for (let j = 0; j < 16; j++) b[2 + j] = j | ((15 - j) << 4);
    const want = [
      ...Array.from({ length: 16 }, (_, j) => (j - 8) * d),
      ...Array.from({ length: 16 }, (_, j) => (7 - j) * d),
    ];
    expect(deq('Q4_0', b)).toEqual(want.map((v) => v + 0));
  });
});

describe('Q5_0', () => {
  /** A block from 32 5-bit quants and d, packed as ggml-common.h block_q5_0 says (qh bit j = 5th bit of value j). */
  function q5Block(q: number[], scale: number): { b: Uint8Array; d: number } {
    const b = new Uint8Array(22);
    const d = f16(b, 0, scale);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      b[6 + j] = (q[j] & 0xf) | ((q[j + 16] & 0xf) << 4);
      qh |= ((q[j] >> 4) << j) | ((q[j + 16] >> 4) << (j + 16));
    }
    new DataView(b.buffer).setUint32(2, qh >>> 0, true);
    return { b, d };
  }
  it('every 5-bit value, (q-16)*d, with positive, negative, zero, subnormal and largest f16 scales', () => {
    const q = Array.from({ length: 32 }, (_, j) => (j * 7) % 32);
    for (const scale of [0.5, -0.25, 0, 2 ** -20, 65504]) {
      const { b, d } = q5Block(q, scale);
      expect(deq('Q5_0', b)).toEqual(q.map((v) => Math.fround((v - 16) * d) + 0));
    }
  });
  it('reads every qh bit for its own value (one bit set at a time, and alternating patterns)', () => {
    for (let bit = 0; bit < 32; bit++) {
      const q = Array.from({ length: 32 }, (_, j) => (j === bit ? 16 : 0) | (j & 15));
      expect(deq('Q5_0', q5Block(q, 1).b)).toEqual(q.map((v) => v - 16));
    }
    for (const pattern of [0x55555555, 0xaaaaaaaa, 0xffff0000, 0x0000ffff]) {
      const q = Array.from({ length: 32 }, (_, j) => (((pattern >>> j) & 1) << 4) | (15 - (j & 15)));
      expect(deq('Q5_0', q5Block(q, -1).b)).toEqual(q.map((v) => (v - 16) * -1 + 0));
    }
  });
  it('quantizes as quantize_row_q5_0_ref: d = max/-16, q = trunc(x/d + 16.5)', () => {
    const x = Float32Array.from({ length: 32 }, (_, j) => j - 16); // max -16: d = 1, q = j
    const { b } = q5Block(
      Array.from({ length: 32 }, (_, j) => j),
      1,
    );
    expect(Array.from(quantize('Q5_0', x, 32))).toEqual(Array.from(b));
  });
});

describe('Q4_K', () => {
  it('unpacks 6-bit scales and mins, the top bits of sub-blocks 4..7 included', () => {
    const sc = [1, 2, 62, 63, 63, 17, 32, 48],
      m = [0, 63, 5, 33, 47, 63, 16, 1];
    const s = new Uint8Array(12);
    packScaleMinK4(sc, m, s, 0);
    for (let j = 0; j < 8; j++) expect(scaleMinK4(s, 0, j), `sub-block ${j}`).toEqual([sc[j], m[j]]);
  });
  it('value d*sc*q - dmin*m; a 64-value group reads low nibbles (sub-block 2j) then high (2j+1)', () => {
    const sc = [1, 2, 62, 63, 63, 17, 32, 0],
      m = [0, 63, 5, 33, 47, 63, 16, 1];
    const b = new Uint8Array(144);
    const d = f16(b, 0, 0.01),
      dmin = f16(b, 2, -0.02); // a negative dmin is legal in the format: the min is then added
    packScaleMinK4(sc, m, b, 4);
    for (let i = 0; i < 128; i++) b[16 + i] = (i * 7) & 0xff;
    const got = deq('Q4_K', b);
    for (let i = 0; i < 256; i++) {
      const s = i >> 5,
        byte = b[16 + 32 * (s >> 1) + (i & 31)];
      const q = s & 1 ? byte >> 4 : byte & 0xf;
      expect(got[i], `value ${i}`).toBeCloseTo(d * sc[s] * q - dmin * m[s], 6);
    }
  });
});

describe('Q6_K', () => {
  it('value d*sc*(q-32) with int8 scales per 16 values (packed as ggml quantize_row_q6_K_ref does)', () => {
    const L = Array.from({ length: 256 }, (_, i) => (i * 37 + 11) % 64);
    L[0] = 0;
    L[255] = 63;
    const sc = Array.from({ length: 16 }, (_, s) => [-128 + s, 127 - s, -3, 0][s % 4]);
    const b = new Uint8Array(210);
    for (let j = 0; j < 256; j += 128) {
      const ql = j / 2,
        qh = 128 + j / 4;
      for (let l = 0; l < 32; l++) {
        b[ql + l] = (L[j + l] & 0xf) | ((L[j + l + 64] & 0xf) << 4);
        b[ql + l + 32] = (L[j + l + 32] & 0xf) | ((L[j + l + 96] & 0xf) << 4);
        b[qh + l] =
          (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6);
      }
    }
    sc.forEach((v, s) => (b[192 + s] = v & 0xff));
    const d = f16(b, 208, 0.003);
    const got = deq('Q6_K', b);
    for (let i = 0; i < 256; i++) expect(got[i], `value ${i}`).toBeCloseTo(d * sc[i >> 4] * (L[i] - 32), 6);
  });
});

describe('quantize round trip', () => {
  const FORMATS: QuantDtype[] = ['Q8_0', 'Q4_0', 'Q5_0', 'Q4_K', 'Q6_K'];
  it.each(FORMATS)('%s reads back every value within one step of its sub-block', (dtype) => {
    fc.assert(
      fc.property(
        fc.float32Array({ minLength: 512, maxLength: 512, noNaN: true, noDefaultInfinity: true, min: -4, max: 4 }),
        (x) => {
          const cols = 512;
          const q = quantize(dtype, x, cols);
          expect(q.length).toBe(tensorBytes(dtype, [1, cols]));
          const back = deq(dtype, q, 512);
          const sub = dtype === 'Q6_K' ? 16 : 32;
          // One step: the sub-block's range over the format's levels; the K formats add the granularity of their
          // shared super-block scales (6-bit for Q4_K, with its mins, 8-bit for Q6_K).
          const levels = { Q8_0: 127, Q4_0: 7, Q5_0: 15, Q4_K: 15, Q6_K: 31 }[dtype];
          const span = dtype === 'Q4_K' ? 2 : 1;
          const amaxOf = (from: number, n: number) =>
            x.subarray(from, from + n).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          for (let s = 0; s < 512; s += sub) {
            const superAmax = amaxOf(s - (s % 256), 256);
            const shared = {
              Q8_0: 0,
              Q4_0: 0,
              Q5_0: 0,
              Q4_K: (span * superAmax) / (15 * 63) + superAmax / 63,
              Q6_K: superAmax / (31 * 127),
            }[dtype];
            const step = (span * amaxOf(s, sub)) / levels + shared;
            for (let i = s; i < s + sub; i++)
              expect(Math.abs(back[i] - x[i]), `${dtype} value ${i}`).toBeLessThanOrEqual(step * 1.01 + 1e-6);
          }
        },
      ),
      { numRuns: 30, seed: 7 },
    );
  });
  it('zeros stay zeros, and a row that is not whole blocks is refused', () => {
    for (const dtype of FORMATS)
      expect(deq(dtype, quantize(dtype, new Float32Array(256), 256), 256)).toEqual(new Array(256).fill(0));
    expect(() => quantize('Q8_0', new Float32Array(40), 40)).toThrow(/not a multiple of the Q8_0 block size/);
  });
});

describe('fused row dot', () => {
  it.each(['Q8_0', 'Q4_0', 'Q5_0', 'Q4_K', 'Q6_K'] as const)('%s equals dequantize then dot', (dtype) => {
    const n = 512;
    const w = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * 0.3);
    const x = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.9));
    const q = quantize(dtype, w, n);
    const back = new Float32Array(n);
    dequantize(dtype, q, 0, n, back);
    const ref = back.reduce((s, v, i) => s + v * x[i], 0);
    const padded = new Uint8Array(q.length + 3);
    padded.set(q, 3); // at an odd offset too
    expect(dotRow(dtype, padded, 3, x, 0, n)).toBeCloseTo(ref, 5);
  });
});
