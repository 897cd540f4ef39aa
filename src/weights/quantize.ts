// Our own quantizer into llama.cpp's block formats (make-model's GGUF presets). Simple per-block rules, not
// llama.cpp's search for the best scales: what must hold is that dequantize() (quant.ts) reads back each value
// within half a quantization step, which the unit tests check against the block definitions.
import { ShoalError } from '../errors.ts';
import { f32ToF16Bits, f16BitsToF32 } from './dtype.ts';
import { BLOCKS, rowBytes, type QuantDtype } from './types.ts';

function putF16(b: Uint8Array, o: number, v: number): number {
  const h = f32ToF16Bits(v);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
  return f16BitsToF32(h); // the scale as stored: quantize against it so rounding never drifts by a step
}

const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

/** Q8_0 (ggml quantize_row_q8_0_ref): d = amax/127, q = round(x/d). */
function q8_0(x: Float32Array, p: number, b: Uint8Array, o: number): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[p + j]));
  const d = putF16(b, o, amax / 127);
  const id = d ? 1 / d : 0;
  for (let j = 0; j < 32; j++) b[o + 2 + j] = clamp(Math.round(x[p + j] * id), -127, 127) & 0xff;
}

/** Q4_0 (ggml quantize_row_q4_0_ref): d = -max/8 with max the value of largest magnitude, q = x/d + 8 in 0..15. */
function q4_0(x: Float32Array, p: number, b: Uint8Array, o: number): void {
  let max = 0;
  for (let j = 0; j < 32; j++) if (Math.abs(x[p + j]) > Math.abs(max)) max = x[p + j];
  const d = putF16(b, o, max / -8);
  const id = d ? 1 / d : 0;
  const q = (v: number) => clamp(Math.round(v * id) + 8, 0, 15);
  for (let j = 0; j < 16; j++) b[o + 2 + j] = q(x[p + j]) | (q(x[p + j + 16]) << 4);
}

/**
 * Q5_0 (ggml quantize_row_q5_0_ref, in its f32 arithmetic): d = -max/16 with max the value of largest magnitude,
 * q = trunc(x/d + 16.5) in 0..31; the low 4 bits as Q4_0's nibbles, the 5th bit of value j as bit j of the u32 qh.
 */
function q5_0(x: Float32Array, p: number, b: Uint8Array, o: number): void {
  let max = 0;
  for (let j = 0; j < 32; j++) if (Math.abs(x[p + j]) > Math.abs(max)) max = x[p + j];
  const d = Math.fround(max / -16);
  putF16(b, o, d); // ggml stores d as f16 but quantizes against the f32 d
  const id = d ? Math.fround(1 / d) : 0;
  const f = Math.fround;
  const q = (v: number) => clamp(Math.trunc(f(f(v * id) + 16.5)), 0, 31);
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const lo = q(x[p + j]),
      hi = q(x[p + j + 16]);
    b[o + 6 + j] = (lo & 0xf) | ((hi & 0xf) << 4);
    qh |= ((lo >> 4) << j) | ((hi >> 4) << (j + 16));
  }
  for (let i = 0; i < 4; i++) b[o + 2 + i] = (qh >>> (8 * i)) & 0xff;
}

/** Pack eight 6-bit scales and mins the way get_scale_min_k4 unpacks them (quant.ts scaleMinK4). */
export function packScaleMinK4(sc: number[], m: number[], b: Uint8Array, o: number): void {
  for (let j = 0; j < 4; j++) {
    b[o + j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6);
    b[o + j + 4] = (m[j] & 63) | ((m[j + 4] >> 4) << 6);
    b[o + j + 8] = (sc[j + 4] & 0xf) | ((m[j + 4] & 0xf) << 4);
  }
}

/**
 * Q4_K: per sub-block of 32, value = d*sc*q - dmin*m with q in 0..15 and 6-bit sc, m. The min and then the scale
 * round up (ceil), so every sub-block's range stays covered even where the shared d and dmin make it coarse.
 */
function q4_K(x: Float32Array, p: number, b: Uint8Array, o: number): void {
  const lo: number[] = [],
    hi: number[] = [];
  for (let s = 0; s < 8; s++) {
    let a = 0,
      z = 0; // the range always holds 0, so the min is never negative
    for (let l = 0; l < 32; l++) {
      a = Math.min(a, x[p + 32 * s + l]);
      z = Math.max(z, x[p + 32 * s + l]);
    }
    lo.push(a);
    hi.push(z);
  }
  const dmin = putF16(b, o + 2, Math.max(...lo.map((v) => -v)) / 63);
  const m = lo.map((v) => (dmin ? clamp(Math.ceil(-v / dmin - 1e-6), 0, 63) : 0));
  const scales = hi.map((v, s) => (v + dmin * m[s]) / 15);
  const d = putF16(b, o, Math.max(...scales) / 63);
  const sc = scales.map((v) => (d ? clamp(Math.ceil(v / d - 1e-6), 0, 63) : 0));
  packScaleMinK4(sc, m, b, o + 4);
  const q = (s: number, v: number) => {
    const step = d * sc[s];
    return step ? clamp(Math.round((v + dmin * m[s]) / step), 0, 15) : 0;
  };
  for (let g = 0; g < 4; g++)
    for (let l = 0; l < 32; l++)
      b[o + 16 + 32 * g + l] = q(2 * g, x[p + 64 * g + l]) | (q(2 * g + 1, x[p + 64 * g + 32 + l]) << 4);
}

/** Q6_K: per sub-block of 16, value = d*sc*(q-32) with int8 sc (rounded up, as in Q4_K) and q in 0..63. */
function q6_K(x: Float32Array, p: number, b: Uint8Array, o: number): void {
  const sub: number[] = [];
  for (let s = 0; s < 16; s++) {
    let amax = 0;
    for (let l = 0; l < 16; l++) amax = Math.max(amax, Math.abs(x[p + 16 * s + l]));
    sub.push(amax / 31);
  }
  const d = putF16(b, o + 208, Math.max(...sub) / 127);
  const sc = sub.map((v) => (d ? clamp(Math.ceil(v / d - 1e-6), 0, 127) : 0));
  for (let s = 0; s < 16; s++) b[o + 192 + s] = sc[s];
  b.fill(0, o, o + 192);
  for (let i = 0; i < 256; i++) {
    const step = d * sc[i >> 4];
    const q = step ? clamp(Math.round(x[p + i] / step), -32, 31) + 32 : 32;
    // Inverse of dequantize's layout: half h, lane l, quarter k (0..3) -> ql nibble and qh bit pair.
    const h = i >> 7,
      r = i & 127,
      k = r >> 5,
      l = r & 31;
    const ql = o + 64 * h + l + (k & 1 ? 32 : 0);
    b[ql] |= (q & 0xf) << (k >= 2 ? 4 : 0);
    b[o + 128 + 32 * h + l] |= (q >> 4) << (2 * k);
  }
}

const ENCODERS: Record<QuantDtype, (x: Float32Array, p: number, b: Uint8Array, o: number) => void> = {
  Q8_0: q8_0,
  Q4_0: q4_0,
  Q5_0: q5_0,
  Q4_K: q4_K,
  Q6_K: q6_K,
};

/** Quantize a row-major (rows, cols) f32 matrix (or a vector as one row) into `dtype` blocks, row by row. */
export function quantize(dtype: QuantDtype, x: Float32Array, cols: number, name = 'tensor'): Uint8Array {
  if (cols <= 0 || x.length % cols !== 0)
    throw new ShoalError('ERR_BAD_ARGS', `${name}: ${x.length} values are not rows of ${cols}`);
  const rb = rowBytes(dtype, cols, name);
  const { values, bytes } = BLOCKS[dtype];
  const out = new Uint8Array((x.length / cols) * rb);
  for (let i = 0, o = 0; i < x.length; i += values, o += bytes) ENCODERS[dtype](x, i, out, o);
  return out;
}
