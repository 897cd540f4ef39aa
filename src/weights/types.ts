// The weight files' types: a tensor's dtype and a tensor as read from a safetensors file (raw bytes). The loader, the
// writer and both backends speak them; they belong to the file format, not to any engine.

export type WeightDtype = 'F32' | 'F16' | 'BF16';

/** A tensor as it comes out of a safetensors file: raw little-endian bytes in the file's dtype. */
export interface HostTensor {
  name: string;
  dtype: WeightDtype;
  shape: number[];
  data: Uint8Array; // byte length = prod(shape) * bytes(dtype)
}

/** Bytes per element (I32: the engines' token ids, which travel beside the file dtypes). */
export function dtypeBytes(d: WeightDtype | 'I32'): number {
  return d === 'F32' || d === 'I32' ? 4 : 2;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}
