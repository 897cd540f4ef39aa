// Pure planning for WebGPU weight storage: how a tensor is split across bindings and whether a stage fits at all.
import { ShoalError } from '../../errors.ts';
import { numel, tensorBytes, type WeightDtype } from '../../weights/types.ts';

/** One binding-sized piece of a weight: rows [rowStart, rowStart + rows) of a (rows, cols) matrix. */
export interface RowChunk {
  rowStart: number;
  rows: number;
  byteOffset: number; // into the tensor's bytes
  byteLength: number; // unpadded
  paddedBytes: number; // rounded up to 4 (16-bit tensors with an odd element count)
}

export function pad4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** Rows and columns as the kernels see a weight: a vector (n) is one row of n columns. */
export function rowsCols(shape: readonly number[]): { rows: number; cols: number } {
  if (shape.length === 0) return { rows: 1, cols: 1 };
  if (shape.length === 1) return { rows: 1, cols: shape[0] };
  const cols = shape[shape.length - 1];
  return { rows: numel(shape) / cols, cols };
}

/**
 * Split a weight by rows so that every piece fits one storage binding of `maxBindingBytes`.
 * A single row larger than a binding cannot be split this way: that is ERR_DOES_NOT_FIT.
 */
export function planRowChunks(
  name: string,
  shape: readonly number[],
  dtype: WeightDtype,
  maxBindingBytes: number,
): RowChunk[] {
  const { rows, cols } = rowsCols(shape);
  const rowBytes = tensorBytes(dtype, [cols], name);
  const total = rows * rowBytes;
  if (pad4(total) <= maxBindingBytes)
    return [{ rowStart: 0, rows, byteOffset: 0, byteLength: total, paddedBytes: pad4(total) }];
  // Leave room for the 4-byte padding of a 16-bit chunk with an odd element count.
  const rowsPerChunk = Math.floor((maxBindingBytes - 4) / rowBytes);
  if (rowsPerChunk < 1) {
    throw new ShoalError(
      'ERR_DOES_NOT_FIT',
      `tensor ${name}: one row of ${rowBytes} bytes exceeds this GPU's storage binding limit ` +
        `of ${maxBindingBytes} bytes`,
    );
  }
  const chunks: RowChunk[] = [];
  for (let r = 0; r < rows; r += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - r);
    chunks.push({
      rowStart: r,
      rows: n,
      byteOffset: r * rowBytes,
      byteLength: n * rowBytes,
      paddedBytes: pad4(n * rowBytes),
    });
  }
  return chunks;
}

export interface FitLimits {
  maxBindingBytes: number;
  maxBufferBytes: number;
  /** Device memory the stage may use; WebGPU does not report it, so it is a caller's (or profiler's) estimate. */
  memoryBudgetBytes?: number;
}

export interface TensorShapeInfo {
  name: string;
  shape: readonly number[];
  dtype: WeightDtype;
}

/**
 * Check, before anything is uploaded, that these weights (plus `extraBytes` for KV cache and
 * activations) fit the device. Returns the bytes the weights will take on the GPU.
 */
export function checkFits(tensors: readonly TensorShapeInfo[], limits: FitLimits, extraBytes = 0): number {
  const perBinding = Math.min(limits.maxBindingBytes, limits.maxBufferBytes);
  let bytes = 0;
  for (const t of tensors) for (const c of planRowChunks(t.name, t.shape, t.dtype, perBinding)) bytes += c.paddedBytes;
  const need = bytes + extraBytes;
  if (limits.memoryBudgetBytes !== undefined && need > limits.memoryBudgetBytes) {
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    throw new ShoalError(
      'ERR_DOES_NOT_FIT',
      `these layers need ${mib(need)} MiB on the GPU but only ${mib(limits.memoryBudgetBytes)} MiB are available: ` +
        'give this device fewer layers',
    );
  }
  return bytes;
}

/** Split a count of workgroups over (x, y) so neither exceeds the per-dimension limit. */
export function grid2d(count: number, maxPerDim = 65535): [number, number] {
  if (count <= maxPerDim) return [Math.max(count, 1), 1];
  const y = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / y), y];
}
