// The weight files' types: a tensor's dtype and a tensor as read from a weight file (raw bytes). The loader, the
// writer and both backends speak them; they belong to the file formats, not to any engine.
import { ShoalError } from '../errors.ts';

/** Plain floats, one element at a time (safetensors and GGUF). */
export type FloatDtype = 'F32' | 'F16' | 'BF16';
/** llama.cpp block formats (ggml-common.h): a fixed number of values share one block of bytes. */
export type QuantDtype = 'Q8_0' | 'Q4_0' | 'Q5_0' | 'Q4_K' | 'Q6_K';
export type WeightDtype = FloatDtype | QuantDtype;

/** Values per block and bytes per block of each dtype (a float is a block of one). */
export const BLOCKS: Readonly<Record<WeightDtype, { values: number; bytes: number }>> = {
  F32: { values: 1, bytes: 4 },
  F16: { values: 1, bytes: 2 },
  BF16: { values: 1, bytes: 2 },
  Q8_0: { values: 32, bytes: 34 }, // f16 d, 32 x i8
  Q4_0: { values: 32, bytes: 18 }, // f16 d, 16 bytes of nibbles
  Q5_0: { values: 32, bytes: 22 }, // f16 d, u32 of 5th bits, 16 bytes of nibbles
  Q4_K: { values: 256, bytes: 144 }, // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
  Q6_K: { values: 256, bytes: 210 }, // 128 bytes low nibbles, 64 bytes high 2 bits, 16 x i8 scales, f16 d
};

export function isQuantized(d: WeightDtype | 'I32'): d is QuantDtype {
  return d === 'Q8_0' || d === 'Q4_0' || d === 'Q5_0' || d === 'Q4_K' || d === 'Q6_K';
}

/** A tensor as it comes out of a weight file: raw little-endian bytes in the file's dtype. */
export interface HostTensor {
  name: string;
  dtype: WeightDtype;
  shape: number[]; // row-major, the last dimension is the row (Hugging Face order)
  data: Uint8Array; // byte length = tensorBytes(dtype, shape)
}

/** Bytes per element of the float dtypes (I32: the engines' token ids, which travel beside the file dtypes). */
export function dtypeBytes(d: FloatDtype | 'I32'): number {
  return d === 'F32' || d === 'I32' ? 4 : 2;
}

/**
 * Bytes of one row of `n` values. Block formats need whole blocks per row (llama.cpp quantizes along rows), so a
 * row whose length is not a multiple of the block size is an error, not a rounding.
 */
export function rowBytes(dtype: WeightDtype, n: number, what = 'tensor'): number {
  const b = BLOCKS[dtype];
  if (n % b.values !== 0)
    throw new ShoalError(
      'ERR_BAD_GGUF',
      `${what}: rows of ${n} values are not a multiple of the ${dtype} block size (${b.values})`,
    );
  return (n / b.values) * b.bytes;
}

/** Bytes of a whole tensor in `dtype`: every byte size in the loader, planner and backends comes from here. */
export function tensorBytes(dtype: WeightDtype, shape: readonly number[], what = 'tensor'): number {
  const cols = shape.length === 0 ? 1 : shape[shape.length - 1];
  if (cols === 0) return 0;
  return (numel(shape) / cols) * rowBytes(dtype, cols, what);
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}
