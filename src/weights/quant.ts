// Dequantization of llama.cpp's block formats (ggml-common.h; ggml-quants.c dequantize_row_*), one run of whole
// blocks at a time into f32: the CPU kernels call this per row chunk, so a quantized matrix is never held as f32.
import { f16Values } from './dtype.ts';
import { BLOCKS, type QuantDtype } from './types.ts';

/**
 * Blocks of 18, 22, 34 and 210 bytes are not 4-byte aligned, so every field is read byte by byte from a Uint8Array
 * (f16 scales as two bytes through the exact f16 table): no typed view over the file's bytes ever needs alignment.
 */
function f16At(b: Uint8Array, o: number): number {
  return f16Values()[b[o] | (b[o + 1] << 8)];
}

/** Q8_0: f16 d, then 32 int8 q; value d*q. */
function q8_0(b: Uint8Array, o: number, out: Float32Array, p: number): void {
  const d = f16At(b, o);
  for (let j = 0; j < 32; j++) out[p + j] = d * ((b[o + 2 + j] << 24) >> 24);
}

/** Q4_0: f16 d, then 16 bytes; low nibbles are values 0..15, high nibbles 16..31; value (q-8)*d. */
function q4_0(b: Uint8Array, o: number, out: Float32Array, p: number): void {
  const d = f16At(b, o);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 2 + j];
    out[p + j] = ((q & 0xf) - 8) * d;
    out[p + j + 16] = ((q >> 4) - 8) * d;
  }
}

/** Q5_0's 5th bits: qh, 4 bytes from `o` as a little-endian u32 (unsigned); bit j belongs to value j. */
function qh32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/**
 * Q5_0: f16 d, u32 qh, 16 bytes; value j is (low nibble of byte j | bit j of qh << 4) - 16, value j+16 the high
 * nibble with bit j+16; times d (ggml dequantize_row_q5_0).
 */
function q5_0(b: Uint8Array, o: number, out: Float32Array, p: number): void {
  const d = f16At(b, o),
    qh = qh32(b, o + 2);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 6 + j];
    out[p + j] = ((q & 0xf) + (((qh >>> j) & 1) << 4) - 16) * d;
    out[p + j + 16] = ((q >> 4) + (((qh >>> (j + 16)) & 1) << 4) - 16) * d;
  }
}

/**
 * Q4_K's 12 scale bytes hold eight 6-bit scales and eight 6-bit mins (get_scale_min_k4): sub-blocks 0..3 in the
 * low 6 bits of bytes 0..3 (scales) and 4..7 (mins); 4..7 split into a low nibble in bytes 8..11 and their top two
 * bits in the spare high bits of bytes 0..3 (scales) and 4..7 (mins).
 */
export function scaleMinK4(s: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [s[o + j] & 63, s[o + j + 4] & 63];
  return [(s[o + j + 4] & 0xf) | ((s[o + j - 4] >> 6) << 4), (s[o + j + 4] >> 4) | ((s[o + j] >> 6) << 4)];
}

/** Q4_K: f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes; each 64-value group is two sub-blocks of 32. */
function q4_K(b: Uint8Array, o: number, out: Float32Array, p: number): void {
  const d = f16At(b, o),
    dmin = f16At(b, o + 2);
  for (let g = 0; g < 4; g++) {
    const [sc1, m1] = scaleMinK4(b, o + 4, 2 * g);
    const [sc2, m2] = scaleMinK4(b, o + 4, 2 * g + 1);
    const d1 = d * sc1,
      mm1 = dmin * m1,
      d2 = d * sc2,
      mm2 = dmin * m2;
    const q = o + 16 + 32 * g,
      y = p + 64 * g;
    for (let l = 0; l < 32; l++) {
      out[y + l] = d1 * (b[q + l] & 0xf) - mm1;
      out[y + 32 + l] = d2 * (b[q + l] >> 4) - mm2;
    }
  }
}

/**
 * Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16] (one per 16 values), f16 d; value
 * d*sc*(q-32). Each half of 128 values reads 64 ql bytes (two nibbles each) and 32 qh bytes (four 2-bit fields).
 */
function q6_K(b: Uint8Array, o: number, out: Float32Array, p: number): void {
  const d = f16At(b, o + 208);
  for (let h = 0; h < 2; h++) {
    const ql = o + 64 * h,
      qh = o + 128 + 32 * h,
      sc = o + 192 + 8 * h,
      y = p + 128 * h;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4,
        hb = b[qh + l];
      const q1 = ((b[ql + l] & 0xf) | ((hb & 3) << 4)) - 32;
      const q2 = ((b[ql + l + 32] & 0xf) | (((hb >> 2) & 3) << 4)) - 32;
      const q3 = ((b[ql + l] >> 4) | (((hb >> 4) & 3) << 4)) - 32;
      const q4 = ((b[ql + l + 32] >> 4) | (((hb >> 6) & 3) << 4)) - 32;
      out[y + l] = d * ((b[sc + is] << 24) >> 24) * q1;
      out[y + l + 32] = d * ((b[sc + is + 2] << 24) >> 24) * q2;
      out[y + l + 64] = d * ((b[sc + is + 4] << 24) >> 24) * q3;
      out[y + l + 96] = d * ((b[sc + is + 6] << 24) >> 24) * q4;
    }
  }
}

const DECODERS: Record<QuantDtype, (b: Uint8Array, o: number, out: Float32Array, p: number) => void> = {
  Q8_0: q8_0,
  Q4_0: q4_0,
  Q5_0: q5_0,
  Q4_K: q4_K,
  Q6_K: q6_K,
};

/**
 * Dequantize `n` values (whole blocks) starting at byte `srcOff` of `src` into out[outOff..outOff+n). The caller
 * checked that n is a multiple of the block size (rowBytes does, at load).
 */
export function dequantize(
  dtype: QuantDtype,
  src: Uint8Array,
  srcOff: number,
  n: number,
  out: Float32Array,
  outOff = 0,
): void {
  const { values, bytes } = BLOCKS[dtype];
  const decode = DECODERS[dtype];
  for (let i = 0, o = srcOff; i < n; i += values, o += bytes) decode(src, o, out, outOff + i);
}

// ---- fused dot products: one weight row . x without writing the dequantized values (decode, one position) ----
// Each factors the block (or sub-block) scale out of its sum: d * sum(q x) instead of sum((d q) x).

function dotQ8_0(b: Uint8Array, o: number, x: Float32Array, p: number): number {
  let s = 0;
  for (let j = 0; j < 32; j++) s += ((b[o + 2 + j] << 24) >> 24) * x[p + j];
  return f16At(b, o) * s;
}

function dotQ4_0(b: Uint8Array, o: number, x: Float32Array, p: number): number {
  let s = 0;
  for (let j = 0; j < 16; j++) {
    const q = b[o + 2 + j];
    s += ((q & 0xf) - 8) * x[p + j] + ((q >> 4) - 8) * x[p + j + 16];
  }
  return f16At(b, o) * s;
}

function dotQ5_0(b: Uint8Array, o: number, x: Float32Array, p: number): number {
  const qh = qh32(b, o + 2);
  let s = 0;
  for (let j = 0; j < 16; j++) {
    const q = b[o + 6 + j];
    s +=
      ((q & 0xf) + (((qh >>> j) & 1) << 4) - 16) * x[p + j] +
      ((q >> 4) + (((qh >>> (j + 16)) & 1) << 4) - 16) * x[p + j + 16];
  }
  return f16At(b, o) * s;
}

/** Q4_K: per sub-block, d*sc*sum(q x) - dmin*m*sum(x). */
function dotQ4_K(b: Uint8Array, o: number, x: Float32Array, p: number): number {
  const d = f16At(b, o),
    dmin = f16At(b, o + 2);
  let acc = 0;
  for (let g = 0; g < 4; g++) {
    const [sc1, m1] = scaleMinK4(b, o + 4, 2 * g);
    const [sc2, m2] = scaleMinK4(b, o + 4, 2 * g + 1);
    const q = o + 16 + 32 * g,
      y = p + 64 * g;
    let s1 = 0,
      s2 = 0,
      x1 = 0,
      x2 = 0;
    for (let l = 0; l < 32; l++) {
      const a = x[y + l],
        c = x[y + 32 + l];
      s1 += (b[q + l] & 0xf) * a;
      s2 += (b[q + l] >> 4) * c;
      x1 += a;
      x2 += c;
    }
    acc += d * (sc1 * s1 + sc2 * s2) - dmin * (m1 * x1 + m2 * x2);
  }
  return acc;
}

const q6Sums = new Float64Array(16);

/** Q6_K: sum(q x) per 16-value scale group, then d * sum(sc * group sum). */
function dotQ6_K(b: Uint8Array, o: number, x: Float32Array, p: number): number {
  q6Sums.fill(0);
  for (let h = 0; h < 2; h++) {
    const ql = o + 64 * h,
      qh = o + 128 + 32 * h,
      y = p + 128 * h;
    for (let l = 0; l < 32; l++) {
      const is = 8 * h + (l >> 4),
        hb = b[qh + l];
      q6Sums[is] += (((b[ql + l] & 0xf) | ((hb & 3) << 4)) - 32) * x[y + l];
      q6Sums[is + 2] += (((b[ql + l + 32] & 0xf) | (((hb >> 2) & 3) << 4)) - 32) * x[y + l + 32];
      q6Sums[is + 4] += (((b[ql + l] >> 4) | (((hb >> 4) & 3) << 4)) - 32) * x[y + l + 64];
      q6Sums[is + 6] += (((b[ql + l + 32] >> 4) | (((hb >> 6) & 3) << 4)) - 32) * x[y + l + 96];
    }
  }
  let acc = 0;
  for (let i = 0; i < 16; i++) acc += ((b[o + 192 + i] << 24) >> 24) * q6Sums[i];
  return f16At(b, o + 208) * acc;
}

const DOTS: Record<QuantDtype, (b: Uint8Array, o: number, x: Float32Array, p: number) => number> = {
  Q8_0: dotQ8_0,
  Q4_0: dotQ4_0,
  Q5_0: dotQ5_0,
  Q4_K: dotQ4_K,
  Q6_K: dotQ6_K,
};

/** The dot product of one quantized row (`n` values, whole blocks, from byte `srcOff`) with x[xOff..xOff+n). */
export function dotRow(dtype: QuantDtype, src: Uint8Array, srcOff: number, x: Float32Array, xOff: number, n: number) {
  const { values, bytes } = BLOCKS[dtype];
  const dot = DOTS[dtype];
  let acc = 0;
  for (let i = 0, o = srcOff; i < n; i += values, o += bytes) acc += dot(src, o, x, xOff + i);
  return acc;
}
