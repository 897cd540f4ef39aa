// The Backend contract: every engine op the Stage needs, at the granularity a GPU wants to fuse.
// The CPU backend (backend/cpu) is the living definition of each op; WebGPU must match it.
//
// Execution model: ops enqueue work and return handles at once; nothing is observable until
// `read*` is awaited. The CPU backend simply runs each op eagerly. The WebGPU backend records
// ops into one command encoder and submits it on the first read, which gives one submit per
// token per stage when the Stage reads once per step.
import { ShoalError } from '../errors.ts';
import type { HostTensor, WeightDtype } from '../weights/types.ts';

/** Opaque device handle. Weights keep their file dtype; activations are f32 (or i32 for ids). */
export interface Tensor {
  readonly shape: readonly number[];
  readonly dtype: WeightDtype | 'I32';
}

/** Per-stage key/value cache for one layer: (maxSeq, nKvHeads * headDim) for K and for V, f32. */
export interface KvCache {
  readonly maxSeq: number;
  readonly kvDim: number;
}

export interface MatmulOptions {
  bias?: Tensor; // (N)
  residual?: Tensor; // (T, N): y += residual
  norm?: { weight: Tensor; eps: number }; // RMSNorm applied to each row of x first
}

export interface AttentionShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

export interface Backend {
  readonly name: 'cpu' | 'webgpu';
  /**
   * Ops compute on the calling thread before they return (the CPU backend): a caller running many of them yields to
   * the event loop between steps, or the page's heartbeats and messages wait for the whole pass. WebGPU records ops
   * and computes on the GPU.
   */
  readonly blocksThread: boolean;

  /** Keep a weight on the device in its file dtype (bf16/f16 and the block formats unpack inside the kernels). */
  uploadWeight(t: HostTensor): Tensor;
  /** f32 activations or i32 ids from the host, shape (rows, cols) or (n). */
  fromHost(data: Float32Array | Int32Array, shape: number[]): Tensor;
  createKvCache(maxSeq: number, kvDim: number): KvCache;
  /**
   * Copy K and V rows [srcRow, srcRow+rows) of one cache into rows dstRow.. of another (or the same) cache, ordered
   * with the recorded ops (a stage saves and restores the rows a branch overwrites this way).
   */
  copyKvRows(src: KvCache, srcRow: number, dst: KvCache, dstRow: number, rows: number): void;
  /** Release device memory; using the handle afterwards is a bug. */
  free(t: Tensor | KvCache): void;

  /** (T) ids -> (T, dim) rows of the table (vocab, dim). */
  embed(ids: Tensor, table: Tensor): Tensor;
  /** (T, D) -> (T, D): x * rsqrt(mean(x^2) + eps) * w. */
  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor;
  /** y (T, N) = norm?(x) (T, K) . W^T (W is (N, K) as in nn.Linear) + bias + residual. */
  matmul(x: Tensor, w: Tensor, opts?: MatmulOptions): Tensor;
  /** silu(norm?(x) Wg^T) * (norm?(x) Wu^T): the MLP's first half, (T, hiddenDim). */
  gateUp(x: Tensor, wGate: Tensor, wUp: Tensor, norm?: { weight: Tensor; eps: number }): Tensor;
  /**
   * Prepare attention inputs for positions pos0 .. pos0+T-1: optional per-head RMSNorm on q and k
   * (qwen3), RoPE (rotate_half convention, inverse frequencies given), then write k and v into
   * the cache rows pos0.. . Returns the rotated q (T, nHeads*headDim).
   */
  ropeAndCache(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cache: KvCache,
    pos0: number,
    invFreq: Float32Array,
    shape: AttentionShape,
    qkNorm?: { q: Tensor; k: Tensor; eps: number },
  ): Tensor;
  /** Causal GQA attention of q (T, nHeads*headDim) at positions pos0.. over cache rows [0, pos0+T). */
  attention(q: Tensor, cache: KvCache, pos0: number, shape: AttentionShape): Tensor;
  /** Row-wise argmax of (T, V) -> (T) i32. */
  argmax(x: Tensor): Tensor;
  /** Row `row` of a (T, D) tensor as (1, D) (e.g. the last position before the LM head). */
  sliceRows(x: Tensor, start: number, count: number): Tensor;
  /**
   * Stack (T_i, D) tensors into one (sum T_i, D), ordered with the recorded ops: a batch of several conversations
   * runs its matmuls over every row at once (one read of each weight) and its attention per conversation.
   */
  concatRows(parts: Tensor[]): Tensor;

  /** Flush pending work and copy to the host. */
  read(t: Tensor): Promise<Float32Array>;
  readInt(t: Tensor): Promise<Int32Array>;
  /** Counters since the last reset: dispatches (ops launched) and submits (host->device flushes). */
  stats(): { dispatches: number; submits: number };
  resetStats(): void;
  destroy(): void;
}

/** Both backends: a copy must stay inside both caches, whose rows must have the same width. */
export function checkKvCopy(src: KvCache, srcRow: number, dst: KvCache, dstRow: number, rows: number): void {
  if (src.kvDim !== dst.kvDim)
    throw new ShoalError('ERR_BACKEND', `copyKvRows: rows of ${src.kvDim} into rows of ${dst.kvDim}`);
  if (!(
    Number.isInteger(rows) &&
    rows >= 0 &&
    srcRow >= 0 &&
    dstRow >= 0 &&
    srcRow + rows <= src.maxSeq &&
    dstRow + rows <= dst.maxSeq
  )) {
    throw new ShoalError(
      'ERR_BACKEND',
      `copyKvRows: rows ${srcRow}+${rows} of ${src.maxSeq} into ${dstRow}+${rows} of ${dst.maxSeq}`,
    );
  }
}
