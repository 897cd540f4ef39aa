// The CPU backend: plain TypedArrays, eager, f32 arithmetic. This is the spec every other backend is checked against.
// With `simd`, 2-D weights live in a WebAssembly memory (bf16 kept as bf16) and matmuls run as WebAssembly SIMD
// (wasmGemm.ts); every other op is the same JavaScript either way. Quantized weights (GGUF blocks) stay as their
// file's bytes (in the wasm heap with `simd`): decode runs a WebAssembly SIMD block dot over them (quantWat.ts),
// prefill and embed dequantize a few rows at a time (quantGemm below).
import { ShoalError } from '../../errors.ts';
import type { AttentionShape, Backend, KvCache, MatmulOptions, Tensor } from '../types.ts';
import { checkKvCopy } from '../types.ts';
import {
  BLOCKS,
  isQuantized,
  numel,
  rowBytes,
  tensorBytes,
  type HostTensor,
  type QuantDtype,
  type WeightDtype,
} from '../../weights/types.ts';
import { bf16ToF32, decodeToF32 } from '../../weights/dtype.ts';
import { dequantize, dotRow } from '../../weights/quant.ts';
import { WasmGemm, wasmSimdSupported } from './wasmGemm.ts';
import type { HeapBlock, HeapKind, WasmVariant } from './wasmGemm.ts';

const EMPTY = new Float32Array(0);
/** RoPE tables kept (one per sequence of a batch step). */
const ROPE_TABLES_KEPT = 8;

class CpuTensor implements Tensor {
  constructor(
    readonly shape: readonly number[],
    readonly dtype: WeightDtype | 'I32',
    readonly data: Float32Array | Int32Array,
    /** A weight held in the WebAssembly heap (then `data` is empty); a quantized one keeps its file bytes there. */
    public heap: { block: HeapBlock; kind: HeapKind | QuantDtype } | null = null,
    /** A quantized weight's blocks as in the file, for the JS variant (then `data` is empty). */
    readonly blocks: Uint8Array | null = null,
  ) {}
  get rows(): number {
    return this.shape.length === 1 ? 1 : this.shape[0];
  }
  get cols(): number {
    return this.shape[this.shape.length - 1];
  }
}

/** Keys and values, (maxSeq, kvDim) each: in the wasm heap with `simd` (the attention kernels read them there),
 * else plain arrays. The heap's views are made on each access: growing the heap detaches old ones. */
class CpuKvCache implements KvCache {
  private readonly own: { k: Float32Array; v: Float32Array } | null;
  heap: { k: HeapBlock; v: HeapBlock } | null;
  constructor(
    readonly maxSeq: number,
    readonly kvDim: number,
    private readonly wasm: WasmGemm | null,
  ) {
    const n = maxSeq * kvDim;
    this.heap = wasm ? { k: wasm.allocF32(n), v: wasm.allocF32(n) } : null;
    this.own = wasm ? null : { k: new Float32Array(n), v: new Float32Array(n) };
  }
  get k(): Float32Array {
    return this.own ? this.own.k : this.view('k');
  }
  get v(): Float32Array {
    return this.own ? this.own.v : this.view('v');
  }
  private view(which: 'k' | 'v'): Float32Array {
    if (!this.heap || !this.wasm) throw new ShoalError('ERR_BACKEND', 'KV cache used after it was freed');
    return this.wasm.f32(this.heap[which], this.maxSeq * this.kvDim);
  }
}

/** Softmax in place over each of `rows` consecutive rows of length n (max subtracted first). */
function softmaxRows(x: Float32Array, rows: number, n: number): void {
  for (let j = 0; j < rows; j++) {
    const so = j * n;
    let max = -Infinity;
    for (let p = 0; p < n; p++) if (x[so + p] > max) max = x[so + p];
    let sum = 0;
    for (let p = 0; p < n; p++) {
      const e = Math.exp(x[so + p] - max);
      x[so + p] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let p = 0; p < n; p++) x[so + p] *= inv;
  }
}

function f32(t: Tensor): Float32Array {
  const c = t as CpuTensor;
  if (!(c.data instanceof Float32Array)) throw new ShoalError('ERR_BACKEND', `expected an f32 tensor, got ${c.dtype}`);
  return c.data;
}

/** In-place RMSNorm of row r of x (cols D) into out. */
function rmsRow(
  x: Float32Array,
  xOff: number,
  w: Float32Array,
  eps: number,
  out: Float32Array,
  outOff: number,
  D: number,
): void {
  let ss = 0;
  for (let i = 0; i < D; i++) ss += x[xOff + i] * x[xOff + i];
  const inv = 1 / Math.sqrt(ss / D + eps);
  for (let i = 0; i < D; i++) out[outOff + i] = x[xOff + i] * inv * w[i];
}

function normRows(x: Float32Array, T: number, D: number, norm?: { weight: Tensor; eps: number }): Float32Array {
  if (!norm) return x;
  const out = new Float32Array(T * D);
  const w = f32(norm.weight);
  for (let t = 0; t < T; t++) rmsRow(x, t * D, w, norm.eps, out, t * D, D);
  return out;
}

/**
 * y (T, N) = x (T, K) . W^T, W (N, K) row-major. Four weight rows per pass share each load of x (2.6 -> 4.2 GFLOP/s
 * on smollm2-135m shapes in Node 20 here; the two-accumulator split per row keeps the add chains short).
 */
function gemm(x: Float32Array, W: Float32Array, T: number, K: number, N: number): Float32Array {
  return gemmInto(x, W, T, K, N, new Float32Array(T * N), N, 0);
}

/** gemm writing columns [col0, col0+N) of y, whose rows are ldy long (a chunk of a wider output). */
function gemmInto(
  x: Float32Array,
  W: Float32Array,
  T: number,
  K: number,
  N: number,
  y: Float32Array,
  ldy: number,
  col0: number,
): Float32Array {
  let n = 0;
  for (; n + 3 < N; n += 4) {
    const w0 = n * K,
      w1 = w0 + K,
      w2 = w1 + K,
      w3 = w2 + K;
    for (let t = 0; t < T; t++) {
      const xo = t * K;
      let a0 = 0,
        a1 = 0,
        b0 = 0,
        b1 = 0,
        c0 = 0,
        c1 = 0,
        d0 = 0,
        d1 = 0;
      let k = 0;
      for (; k + 1 < K; k += 2) {
        const x0 = x[xo + k],
          x1 = x[xo + k + 1];
        a0 += x0 * W[w0 + k];
        a1 += x1 * W[w0 + k + 1];
        b0 += x0 * W[w1 + k];
        b1 += x1 * W[w1 + k + 1];
        c0 += x0 * W[w2 + k];
        c1 += x1 * W[w2 + k + 1];
        d0 += x0 * W[w3 + k];
        d1 += x1 * W[w3 + k + 1];
      }
      if (k < K) {
        const x0 = x[xo + k];
        a0 += x0 * W[w0 + k];
        b0 += x0 * W[w1 + k];
        c0 += x0 * W[w2 + k];
        d0 += x0 * W[w3 + k];
      }
      const o = t * ldy + col0 + n;
      y[o] = a0 + a1;
      y[o + 1] = b0 + b1;
      y[o + 2] = c0 + c1;
      y[o + 3] = d0 + d1;
    }
  }
  for (; n < N; n++) {
    const wo = n * K;
    for (let t = 0; t < T; t++) {
      const xo = t * K;
      let a0 = 0;
      for (let k = 0; k < K; k++) a0 += x[xo + k] * W[wo + k];
      y[t * ldy + col0 + n] = a0;
    }
  }
  return y;
}

/** A quantized weight's file bytes: its own array, or a view of the wasm heap (valid until the heap next grows). */
function quantBytes(w: CpuTensor, wasm: WasmGemm | null): Uint8Array {
  if (w.blocks) return w.blocks;
  if (!w.heap || !wasm) throw new ShoalError('ERR_BACKEND', 'a quantized weight without its blocks (freed?)');
  return wasm.view(w.heap.block, tensorBytes(w.dtype as QuantDtype, w.shape));
}

/** Block formats whose prefill runs the int8 dots (faster than dequantize + gemm: npm run bench -- engine-cpu). */
const INT8_PREFILL: ReadonlySet<QuantDtype> = new Set(['Q8_0', 'Q4_0']);

/** f32 values of dequantized weight rows held at once per matmul: 64 KiB, a cache-sized slice, never the matrix. */
const QUANT_SCRATCH_VALUES = 16384;

/**
 * y (T, N) = x (T, K) . W^T with W (N, K) in a block format. Decode (T = 1) on the SIMD engine runs the wasm block
 * dot over the heap's blocks; otherwise dequantize a run of rows into a small f32 scratch, then a gemm over that run
 * for every row of x (WebAssembly SIMD when the backend has it, the scratch then lives in the wasm heap; else the
 * reference gemm). Activations stay f32 (the fixtures' exact path) unless `int8` (opt-in) routes every T to the
 * integer dots.
 */
function quantGemm(
  x: Float32Array,
  w: CpuTensor,
  T: number,
  K: number,
  N: number,
  wasm: WasmGemm | null,
  int8: boolean,
) {
  const dtype = w.dtype as QuantDtype;
  const rb = rowBytes(dtype, K);
  // int8 (opt-in, not exact) for decode, and for prefill where unpacking is cheap: a prefill over the K formats and
  // Q5_0 unpacks each row once per position in the int dots, once per call when dequantized for the gemm.
  if (int8 && wasm && w.heap && (T === 1 || INT8_PREFILL.has(dtype)))
    return wasm.qdotInt(x, T, K, w.heap.block, dtype, N);
  if (T === 1 && wasm && w.heap) return wasm.qdot(x, K, w.heap.block, dtype, N); // decode: the SIMD block dot
  const y = new Float32Array(T * N);
  if (T === 1) {
    // Decode: one position reads each row once, so a fused dot beats writing and re-reading the scratch.
    for (let n = 0; n < N; n++) y[n] = dotRow(dtype, w.blocks!, n * rb, x, 0, K);
    return y;
  }
  const rows = Math.max(1, Math.min(N, Math.floor(QUANT_SCRATCH_VALUES / K)));
  const heap = wasm?.alloc(rows * K * 4);
  const js = heap ? null : new Float32Array(rows * K);
  try {
    for (let n0 = 0; n0 < N; n0 += rows) {
      const r = Math.min(rows, N - n0);
      if (wasm && heap) {
        // the SIMD dequantizer, blocks to scratch inside the heap (uploadWeight put every block format there)
        wasm.dequantize(w.heap!.block, n0 * rb, dtype, (r * K) / BLOCKS[dtype].values, heap);
        const part = wasm.gemm(x, T, K, heap, 'f32', r);
        for (let t = 0; t < T; t++) y.set(part.subarray(t * r, (t + 1) * r), t * N + n0);
      } else {
        dequantize(dtype, quantBytes(w, wasm), n0 * rb, r * K, js!);
        gemmInto(x, js!, T, K, r, y, N, n0);
      }
    }
  } finally {
    if (heap) wasm!.release(heap);
  }
  return y;
}

export interface CpuBackendOptions {
  /** Matmuls in WebAssembly SIMD with weights in a wasm heap (bf16 stays bf16). Default: where supported. */
  simd?: boolean;
  /**
   * 'int8': block-quantized matmuls quantize the activations to int8 per 32 values first and sum in integers, as
   * llama.cpp does (faster, not exact; SIMD only). Default 'f32': exact dequantized weights times f32 activations.
   */
  activations?: 'f32' | 'int8';
  /** Which WebAssembly build: 'relaxed' (fused multiply-adds) where the runtime has relaxed SIMD, else 'simd'. */
  wasm?: WasmVariant;
}

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly blocksThread = true;
  /** Which matmul this engine runs: 'simd' (WebAssembly) or 'js' (the scalar reference). */
  readonly variant: 'simd' | 'js';
  private dispatches = 0;
  private wasm: WasmGemm | null;
  private ropeTables: {
    pos0: number;
    T: number;
    invFreq: Float32Array;
    half: number;
    cos: Float64Array;
    sin: Float64Array;
  }[] = [];
  private readonly int8: boolean;

  constructor(opts: CpuBackendOptions = {}) {
    this.wasm = (opts.simd ?? wasmSimdSupported()) ? new WasmGemm(opts.wasm) : null;
    this.variant = this.wasm ? 'simd' : 'js';
    if (opts.activations === 'int8' && !this.wasm)
      throw new ShoalError('ERR_BACKEND', 'int8 activations need the WebAssembly SIMD engine');
    this.int8 = opts.activations === 'int8';
  }

  uploadWeight(t: HostTensor): Tensor {
    const expected = tensorBytes(t.dtype, t.shape, t.name);
    if (t.data.byteLength !== expected)
      throw new ShoalError(
        'ERR_BACKEND',
        `${t.name}: ${t.data.byteLength} bytes for shape [${t.shape.join(',')}] ${t.dtype} (expected ${expected})`,
      );
    // Blocks as they are: copied into the wasm heap for the SIMD block dot, else a view of the loader's fresh buffer.
    if (isQuantized(t.dtype)) {
      if (!this.wasm) return new CpuTensor([...t.shape], t.dtype, EMPTY, null, t.data);
      return new CpuTensor([...t.shape], t.dtype, EMPTY, { block: this.wasm.store(t.data), kind: t.dtype });
    }
    if (this.wasm && t.shape.length === 2) {
      // bf16 as is (half the bytes to stream per token); f16 widened to f32 once (no cheap in-register unpack)
      const kind: HeapKind = t.dtype === 'BF16' ? 'bf16' : 'f32';
      const bytes = t.dtype === 'F16' ? new Uint8Array(decodeToF32('F16', t.data).buffer) : t.data;
      return new CpuTensor([...t.shape], t.dtype, EMPTY, { block: this.wasm.store(bytes), kind });
    }
    return new CpuTensor([...t.shape], t.dtype, decodeToF32(t.dtype, t.data));
  }

  /** Bytes of weights (and scratch) in the WebAssembly heap; 0 for the JS variant. */
  heapBytes(): number {
    return this.wasm?.heapBytes ?? 0;
  }

  /** y (T, N) = x (T, K) . W^T on whichever matmul holds this weight. */
  private mm(x: Float32Array, w: Tensor, T: number, K: number, N: number): Float32Array {
    const c = w as CpuTensor;
    if (isQuantized(c.dtype)) return quantGemm(x, c, T, K, N, this.wasm, this.int8);
    const h = c.heap;
    if (h && this.wasm) return this.wasm.gemm(x, T, K, h.block, h.kind as HeapKind, N);
    return gemm(x, f32(w), T, K, N);
  }

  fromHost(data: Float32Array | Int32Array, shape: number[]): Tensor {
    if (numel(shape) !== data.length)
      throw new ShoalError('ERR_BACKEND', `fromHost: ${data.length} values for shape [${shape.join(',')}]`);
    return new CpuTensor([...shape], data instanceof Int32Array ? 'I32' : 'F32', data.slice());
  }

  createKvCache(maxSeq: number, kvDim: number): KvCache {
    return new CpuKvCache(maxSeq, kvDim, this.wasm);
  }

  copyKvRows(src: KvCache, srcRow: number, dst: KvCache, dstRow: number, rows: number): void {
    const a = src as CpuKvCache,
      b = dst as CpuKvCache;
    checkKvCopy(a, srcRow, b, dstRow, rows);
    const n = rows * a.kvDim;
    b.k.set(a.k.subarray(srcRow * a.kvDim, srcRow * a.kvDim + n), dstRow * b.kvDim);
    b.v.set(a.v.subarray(srcRow * a.kvDim, srcRow * a.kvDim + n), dstRow * b.kvDim);
  }

  free(t: Tensor | KvCache): void {
    // typed arrays are garbage collected; heap blocks go back to the allocator
    if (t instanceof CpuTensor && t.heap && this.wasm) {
      this.wasm.release(t.heap.block);
      t.heap = null;
    }
    if (t instanceof CpuKvCache && t.heap && this.wasm) {
      this.wasm.release(t.heap.k);
      this.wasm.release(t.heap.v);
      t.heap = null;
    }
  }

  embed(ids: Tensor, table: Tensor): Tensor {
    this.dispatches++;
    const idv = (ids as CpuTensor).data;
    const tab = table as CpuTensor;
    const [V, D] = tab.shape;
    const out = new Float32Array(idv.length * D);
    const heap = tab.heap && this.wasm ? this.wasm.view(tab.heap.block) : null;
    for (let t = 0; t < idv.length; t++) {
      const id = idv[t];
      if (!(id >= 0 && id < V)) throw new ShoalError('ERR_BAD_ARGS', `token id ${id} is outside the vocabulary (${V})`);
      if (isQuantized(tab.dtype)) {
        dequantize(tab.dtype, quantBytes(tab, this.wasm), id * rowBytes(tab.dtype, D), D, out, t * D);
      } else if (heap && tab.heap) {
        if (tab.heap.kind === 'f32') out.set(new Float32Array(heap.buffer, heap.byteOffset + id * D * 4, D), t * D);
        else bf16ToF32(new Uint16Array(heap.buffer, heap.byteOffset + id * D * 2, D), out.subarray(t * D, t * D + D));
      } else out.set(tab.data.subarray(id * D, id * D + D), t * D);
    }
    return new CpuTensor([idv.length, D], 'F32', out);
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
    this.dispatches++;
    const c = x as CpuTensor;
    return new CpuTensor([c.rows, c.cols], 'F32', normRows(f32(x), c.rows, c.cols, { weight, eps }));
  }

  matmul(x: Tensor, w: Tensor, opts: MatmulOptions = {}): Tensor {
    this.dispatches++;
    const xc = x as CpuTensor;
    const [N, K] = w.shape;
    const T = xc.rows;
    if (xc.cols !== K) throw new ShoalError('ERR_BACKEND', `matmul: x has ${xc.cols} columns, weight expects ${K}`);
    const y = this.mm(normRows(f32(x), T, K, opts.norm), w, T, K, N);
    if (opts.bias) {
      const b = f32(opts.bias);
      for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) y[t * N + n] += b[n];
    }
    if (opts.residual) {
      const r = f32(opts.residual);
      for (let i = 0; i < y.length; i++) y[i] += r[i];
    }
    return new CpuTensor([T, N], 'F32', y);
  }

  gateUp(x: Tensor, wGate: Tensor, wUp: Tensor, norm?: { weight: Tensor; eps: number }): Tensor {
    this.dispatches++;
    const xc = x as CpuTensor;
    const [H, K] = wGate.shape;
    const T = xc.rows;
    const xn = normRows(f32(x), T, K, norm);
    const g = this.mm(xn, wGate, T, K, H);
    const u = this.mm(xn, wUp, T, K, H);
    if (this.wasm) this.wasm.siluMul(g, u);
    else for (let i = 0; i < g.length; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
    return new CpuTensor([T, H], 'F32', g);
  }

  ropeAndCache(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cache: KvCache,
    pos0: number,
    invFreq: Float32Array,
    shape: AttentionShape,
    qkNorm?: { q: Tensor; k: Tensor; eps: number },
  ): Tensor {
    this.dispatches++;
    const { nHeads, nKvHeads, headDim } = shape;
    const c = cache as CpuKvCache;
    const T = (q as CpuTensor).rows;
    if (pos0 + T > c.maxSeq)
      throw new ShoalError('ERR_BACKEND', `KV cache full: positions ${pos0}..${pos0 + T - 1} exceed ${c.maxSeq}`);
    const qOut = f32(q).slice();
    const kIn = f32(k).slice();
    const vIn = f32(v);
    const half = headDim / 2;
    const headNorm = (buf: Float32Array, off: number, w: Float32Array, eps: number) =>
      rmsRow(buf, off, w, eps, buf, off, headDim);
    const table = this.ropeTable(pos0, T, invFreq, half);
    const rotate = (buf: Float32Array, off: number, pos: number) => {
      const to = (pos - pos0) * half;
      for (let i = 0; i < half; i++) {
        const cos = table.cos[to + i],
          sin = table.sin[to + i];
        const x1 = buf[off + i],
          x2 = buf[off + i + half];
        buf[off + i] = x1 * cos - x2 * sin;
        buf[off + i + half] = x2 * cos + x1 * sin;
      }
    };
    const qDim = nHeads * headDim,
      kvDim = nKvHeads * headDim;
    for (let t = 0; t < T; t++) {
      const pos = pos0 + t;
      for (let h = 0; h < nHeads; h++) {
        const off = t * qDim + h * headDim;
        if (qkNorm) headNorm(qOut, off, f32(qkNorm.q), qkNorm.eps);
        rotate(qOut, off, pos);
      }
      for (let h = 0; h < nKvHeads; h++) {
        const off = t * kvDim + h * headDim;
        if (qkNorm) headNorm(kIn, off, f32(qkNorm.k), qkNorm.eps);
        rotate(kIn, off, pos);
      }
      c.k.set(kIn.subarray(t * kvDim, (t + 1) * kvDim), pos * kvDim);
      c.v.set(vIn.subarray(t * kvDim, (t + 1) * kvDim), pos * kvDim);
    }
    return new CpuTensor([T, qDim], 'F32', qOut);
  }

  /**
   * cos/sin (f64, as computed) of positions pos0..pos0+T-1: every layer of a step rotates the same positions, so
   * they are computed once per step, not once per head and layer. The last few are kept (a batch has a few
   * sequences at their own positions).
   */
  private ropeTable(pos0: number, T: number, invFreq: Float32Array, half: number) {
    const hit = this.ropeTables.find((e) => e.pos0 === pos0 && e.T === T && e.invFreq === invFreq && e.half === half);
    if (hit) return hit;
    const e = { pos0, T, invFreq, half, cos: new Float64Array(T * half), sin: new Float64Array(T * half) };
    for (let t = 0; t < T; t++)
      for (let i = 0; i < half; i++) {
        const ang = (pos0 + t) * invFreq[i];
        e.cos[t * half + i] = Math.cos(ang);
        e.sin[t * half + i] = Math.sin(ang);
      }
    this.ropeTables.unshift(e);
    this.ropeTables.length = Math.min(this.ropeTables.length, ROPE_TABLES_KEPT);
    return e;
  }

  // With `simd` the scores and the weighted values run in wasm, per head (attentionWat.ts). The JavaScript below is
  // the reference (and serves head sizes not a multiple of 4): one pass per position, llama2.c style, scores for the
  // heads of a KV group in pairs (each key element loaded serves two), softmax, then the weighted values.
  attention(q: Tensor, cache: KvCache, pos0: number, shape: AttentionShape): Tensor {
    this.dispatches++;
    const { nHeads, nKvHeads, headDim } = shape;
    const c = cache as CpuKvCache;
    const qd = f32(q);
    const T = (q as CpuTensor).rows;
    if (this.wasm && c.heap && headDim % 4 === 0) {
      const out = this.wasm.attention(qd, c.heap.k, c.heap.v, { T, pos0, nHeads, nKvHeads, headDim });
      return new CpuTensor([T, nHeads * headDim], 'F32', out);
    }
    const K = c.k,
      V = c.v;
    const qDim = nHeads * headDim,
      kvDim = nKvHeads * headDim;
    const group = nHeads / nKvHeads;
    const scale = 1 / Math.sqrt(headDim);
    const out = new Float32Array(T * qDim);
    // Scores for every head of a KV group (heads go in pairs below, so each key and value element loaded serves two).
    const scores = new Float32Array(group * (pos0 + T));
    const d4 = headDim & ~3;
    for (let t = 0; t < T; t++) {
      const nCtx = pos0 + t + 1; // causal: positions 0..pos0+t
      for (let g = 0; g < nKvHeads; g++) {
        const h0 = g * group,
          kvo = g * headDim;
        let j = 0;
        // Two heads at a time: each key element loaded once serves both dot products.
        for (; j + 1 < group; j += 2) {
          const qa = t * qDim + (h0 + j) * headDim,
            qb = qa + headDim,
            sa = j * nCtx,
            sb = sa + nCtx;
          for (let p = 0; p < nCtx; p++) {
            const ko = p * kvDim + kvo;
            let a0 = 0,
              a1 = 0,
              b0 = 0,
              b1 = 0,
              i = 0;
            for (; i < d4; i += 4) {
              const k0 = K[ko + i],
                k1 = K[ko + i + 1],
                k2 = K[ko + i + 2],
                k3 = K[ko + i + 3];
              a0 += qd[qa + i] * k0 + qd[qa + i + 2] * k2;
              a1 += qd[qa + i + 1] * k1 + qd[qa + i + 3] * k3;
              b0 += qd[qb + i] * k0 + qd[qb + i + 2] * k2;
              b1 += qd[qb + i + 1] * k1 + qd[qb + i + 3] * k3;
            }
            for (; i < headDim; i++) {
              a0 += qd[qa + i] * K[ko + i];
              b0 += qd[qb + i] * K[ko + i];
            }
            scores[sa + p] = (a0 + a1) * scale;
            scores[sb + p] = (b0 + b1) * scale;
          }
        }
        for (; j < group; j++) {
          const qo = t * qDim + (h0 + j) * headDim,
            so = j * nCtx;
          for (let p = 0; p < nCtx; p++) {
            const ko = p * kvDim + kvo;
            let s0 = 0,
              s1 = 0,
              i = 0;
            for (; i < d4; i += 4) {
              s0 += qd[qo + i] * K[ko + i] + qd[qo + i + 2] * K[ko + i + 2];
              s1 += qd[qo + i + 1] * K[ko + i + 1] + qd[qo + i + 3] * K[ko + i + 3];
            }
            for (; i < headDim; i++) s0 += qd[qo + i] * K[ko + i];
            scores[so + p] = (s0 + s1) * scale;
          }
        }
        softmaxRows(scores, group, nCtx);
        let jv = 0;
        for (; jv + 1 < group; jv += 2) {
          const oa = t * qDim + (h0 + jv) * headDim,
            ob = oa + headDim,
            sa = jv * nCtx,
            sb = sa + nCtx;
          for (let p = 0; p < nCtx; p++) {
            const wa = scores[sa + p],
              wb = scores[sb + p];
            const vo = p * kvDim + kvo;
            for (let i = 0; i < headDim; i++) {
              const v = V[vo + i];
              out[oa + i] += wa * v;
              out[ob + i] += wb * v;
            }
          }
        }
        for (; jv < group; jv++) {
          const oo = t * qDim + (h0 + jv) * headDim,
            so = jv * nCtx;
          for (let p = 0; p < nCtx; p++) {
            const wgt = scores[so + p];
            const vo = p * kvDim + kvo;
            for (let i = 0; i < headDim; i++) out[oo + i] += wgt * V[vo + i];
          }
        }
      }
    }
    return new CpuTensor([T, qDim], 'F32', out);
  }

  argmax(x: Tensor): Tensor {
    this.dispatches++;
    const c = x as CpuTensor;
    const d = f32(x);
    const T = c.rows,
      V = c.cols;
    const out = new Int32Array(T);
    for (let t = 0; t < T; t++) {
      let best = 0,
        bv = -Infinity;
      for (let i = 0; i < V; i++)
        if (d[t * V + i] > bv) {
          bv = d[t * V + i];
          best = i;
        }
      out[t] = best;
    }
    return new CpuTensor([T], 'I32', out);
  }

  sliceRows(x: Tensor, start: number, count: number): Tensor {
    const c = x as CpuTensor;
    const D = c.cols;
    return new CpuTensor([count, D], c.dtype, c.data.slice(start * D, (start + count) * D));
  }

  concatRows(parts: Tensor[]): Tensor {
    const cs = parts as CpuTensor[];
    if (cs.length === 0) throw new ShoalError('ERR_BACKEND', 'concatRows: no parts');
    const D = cs[0].cols,
      dtype = cs[0].dtype;
    if (cs.some((c) => c.cols !== D || c.dtype !== dtype))
      throw new ShoalError('ERR_BACKEND', 'concatRows: parts differ in width or type');
    const rows = cs.reduce((n, c) => n + c.rows, 0);
    const data = dtype === 'I32' ? new Int32Array(rows * D) : new Float32Array(rows * D);
    let off = 0;
    for (const c of cs) {
      data.set(c.data.subarray(0, c.rows * D), off);
      off += c.rows * D;
    }
    return new CpuTensor([rows, D], dtype, data);
  }

  // async without await: a wrong-dtype tensor rejects, as the WebGPU backend's reads do, instead of throwing
  /* eslint-disable @typescript-eslint/require-await */
  async read(t: Tensor): Promise<Float32Array> {
    return f32(t).slice();
  }

  async readInt(t: Tensor): Promise<Int32Array> {
    const c = t as CpuTensor;
    if (!(c.data instanceof Int32Array)) throw new ShoalError('ERR_BACKEND', 'readInt on a float tensor');
    return c.data.slice();
  }
  /* eslint-enable @typescript-eslint/require-await */

  stats(): { dispatches: number; submits: number } {
    return { dispatches: this.dispatches, submits: 0 };
  }

  resetStats(): void {
    this.dispatches = 0;
  }

  destroy(): void {
    this.wasm = null; // the heap goes with the instance
  }
}

/** The CPU engine: WebAssembly SIMD matmuls where the runtime has them (every current browser and Node), else JS. */
export function createCpuBackend(opts: CpuBackendOptions = {}): Backend {
  return new CpuBackend(opts);
}
