// Float conversions between f32 and the 16-bit weight formats (bf16, IEEE f16), bit-exact and pure, and the one
// decoder of a file's bytes into f32 (the CPU backend, tests and tools all decode here).
import type { WeightDtype } from './types.ts';

// One shared scratch word reinterpreted as f32 / u32, so conversions never allocate per element.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** f32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN instead of rounding to Inf. */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = bits[i];
    if ((b & 0x7fffffff) > 0x7f800000) {
      out[i] = (b >>> 16) | 0x0040;
      continue;
    }
    // Add 0x7fff plus the lowest kept bit: ties go to the even neighbour, carries roll into the exponent.
    out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** bf16 bits -> f32 (exact: bf16 is the top half of an f32), into `out` when given (x.length values). */
export function bf16ToF32(x: Uint16Array, out = new Float32Array(x.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) bits[i] = x[i] << 16;
  return out;
}

/** One f32 value -> f16 bits, round to nearest even, with subnormals, overflow to Inf, NaN kept. */
export function f32ToF16Bits(v: number): number {
  scratchF32[0] = v;
  const b = scratchU32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  // Unbiased exponent e; f16 normals cover e in [-14, 15].
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    // Normal: keep 10 mantissa bits, round the 13 dropped bits to nearest even. A carry out of the
    // mantissa correctly bumps the exponent (and 65520+ becomes Inf).
    let h = ((e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
    return sign | h;
  }
  if (e < -25) return sign; // below half the smallest subnormal (2^-24): rounds to zero
  // Subnormal: value = m * 2^-24 with m = full significand (with hidden bit) shifted right.
  const full = mant | 0x800000;
  const shift = -e - 14 + 13; // 14..24
  let h = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && h & 1)) h++;
  return sign | h;
}

/** f32 -> f16 bits (IEEE binary16), round to nearest even, subnormals kept. */
export function f32ToF16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToF16Bits(x[i]);
  return out;
}

/** One f16 bit pattern -> its exact value. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let f16Table: Float32Array | null = null;

/** Every f16 bit pattern's exact f32 value, built on first use (block scales of the GGUF formats read it too). */
export function f16Values(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** f16 bits -> f32 (exact), through the table of all 65536 values: faster than decoding each. */
export function f16ToF32(x: Uint16Array): Float32Array {
  const t = f16Values(),
    out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = t[x[i]];
  return out;
}

/** Safetensors bytes (little-endian F32, F16 or BF16) -> a fresh f32 array (never a view of `bytes`). */
export function decodeToF32(dtype: WeightDtype, bytes: Uint8Array): Float32Array {
  if (dtype === 'F32') {
    if (bytes.byteOffset % 4 === 0)
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
    return new Float32Array(bytes.slice().buffer);
  }
  const n = bytes.byteLength / 2;
  // A view when aligned, else a copy: a tensor's data may start at any byte of a safetensors file.
  const u16 =
    bytes.byteOffset % 2 === 0
      ? new Uint16Array(bytes.buffer, bytes.byteOffset, n)
      : new Uint16Array(bytes.slice().buffer);
  return dtype === 'BF16' ? bf16ToF32(u16) : f16ToF32(u16);
}
