// The CPU backend's WebAssembly SIMD matmul: weights live in one wasm memory per backend (a first-fit allocator over
// it, so a re-plan that drops layers gives their bytes back), activations are copied in and out per call.
import { ShoalError } from '../../errors.ts';
import { GEMM_WASM_BASE64, GEMM_WASM_RELAXED_BASE64 } from './gemmWasm.ts';
import type { QuantDtype } from '../../weights/types.ts';

const ALIGN = 64;
const PAGE_BYTES = 65536;
/** wasm32's ceiling: 65536 pages of 64 KiB. */
const MAX_BYTES = 65536 * PAGE_BYTES;

export type HeapKind = 'f32' | 'bf16';
export interface HeapBlock {
  ptr: number;
  bytes: number;
}

/** The module's two builds: 'relaxed' fuses the float kernels' multiply-adds (relaxed SIMD), 'simd' does not. */
export type WasmVariant = 'relaxed' | 'simd';
const SOURCES: Record<WasmVariant, string> = { relaxed: GEMM_WASM_RELAXED_BASE64, simd: GEMM_WASM_BASE64 };
const compiled = new Map<WasmVariant, WebAssembly.Module | null>();

/** A build compiled, or null where this runtime does not run it. Small (about 25 KiB, under the browsers' limits
 * for synchronous compiles): it compiles synchronously. */
function gemmModule(variant: WasmVariant): WebAssembly.Module | null {
  if (!compiled.has(variant)) {
    try {
      const bin = atob(SOURCES[variant]);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      compiled.set(variant, WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null);
    } catch {
      compiled.set(variant, null);
    }
  }
  return compiled.get(variant)!;
}

/** The build this runtime runs best: relaxed SIMD where it validates (Chromium), else plain SIMD; null: neither. */
export function bestWasmVariant(): WasmVariant | null {
  if (typeof WebAssembly !== 'object') return null;
  if (gemmModule('relaxed')) return 'relaxed';
  return gemmModule('simd') ? 'simd' : null;
}

export function wasmSimdSupported(): boolean {
  return bestWasmVariant() !== null;
}

type GemmFn = (x: number, w: number, y: number, T: number, K: number, N: number) => void;
/** gemv_*(x, w, y, K, N, xd): one position; xd: K floats of scratch (bf16 lays x out there). */
type GemvFn = (x: number, w: number, y: number, K: number, N: number, xd: number) => void;
/** qdot_*(x, w, y, xs, K, N): y (N) = W (N, K) . x (K), W in a block format; xs: K/2 bytes of scratch. */
type QdotFn = (x: number, w: number, y: number, xs: number, K: number, N: number) => void;
/** qdoti_*(xq, xd, xs, w, y, K, N): the same with x as i16 quants (xq), f32 scales (xd) and sums (xs) per 32. */
type QdotiFn = (xq: number, xd: number, xs: number, w: number, y: number, K: number, N: number) => void;
/** deq_*(w, out, nBlocks): whole blocks at w as f32 at out. */
type DeqFn = (w: number, out: number, nBlocks: number) => void;
type ScoresFn = (q: number, k: number, stride: number, D: number, n: number, scale: number, s: number) => void;
type ValuesFn = (w: number, v: number, stride: number, D: number, n: number, out: number) => void;
/** silu_mul(g, u, n) and softmax(s, n): in place, n a multiple of 4 (activationWat.ts). */
type SiluMulFn = (g: number, u: number, n: number) => void;
type SoftmaxFn = (s: number, n: number) => void;
const ceil4 = (n: number): number => (n + 3) & ~3;

/** One attention call's shape: T query rows of nHeads heads at positions pos0.., KV rows of kvDim floats. */
export interface AttentionDims {
  T: number;
  pos0: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/** Activation block: 32 values share one int8 scale (llama.cpp's Q8_0 activations; finer than its Q8_K). */
const ACT_BLOCK = 32;
/** quant_act(x, K, xq, xd, xs): x (K f32) as int8 quants stored as i16 (the width `i32x4.dot_i16x8_s` takes), a
 * scale d = max|x|/127 and d * the sum of the quants per 32 values (llama.cpp quantize_row_q8_0 with an f32 scale;
 * the sums are its Q8_K bsums). Q4_K's min term must use the quantized x too: then the dot is exactly the dequantized
 * weights times the quantized x, whose error the min offset partly cancels (the exact sum of x measured 1.6x
 * llama.cpp's logit error). quantIntWat.ts. */
type QuantActFn = (x: number, K: number, xq: number, xd: number, xs: number) => void;

export class WasmGemm {
  private readonly memory: WebAssembly.Memory;
  private readonly fns: Record<HeapKind, GemmFn>;
  private readonly gemvs: Record<HeapKind, GemvFn>;
  private readonly qdots: Record<QuantDtype, QdotFn>;
  private readonly qdotis: Record<QuantDtype, QdotiFn>;
  private readonly deqs: Record<QuantDtype, DeqFn>;
  private readonly quantAct: QuantActFn;
  private readonly scores: ScoresFn;
  private readonly values: ValuesFn;
  private readonly siluMulFn: SiluMulFn;
  private readonly softmax: SoftmaxFn;
  /** Free blocks below `top`, sorted by address, never adjacent (merged on release). */
  private freeList: HeapBlock[] = [];
  private top = ALIGN;
  private used = 0;

  /** Which build runs here. */
  readonly variant: WasmVariant;

  constructor(variant: WasmVariant | null = bestWasmVariant()) {
    const mod = variant ? gemmModule(variant) : null;
    if (!variant || !mod)
      throw new ShoalError(
        'ERR_BACKEND',
        `WebAssembly ${variant === 'relaxed' ? 'relaxed ' : ''}SIMD is not available`,
      );
    this.variant = variant;
    const inst = new WebAssembly.Instance(mod, {});
    const ex = inst.exports as { memory: WebAssembly.Memory } & Record<
      string,
      GemmFn & GemvFn & QdotFn & QdotiFn & DeqFn & QuantActFn & ScoresFn & ValuesFn & SiluMulFn & SoftmaxFn
    >;
    this.memory = ex.memory;
    this.fns = { f32: ex.gemm_f32, bf16: ex.gemm_bf16 };
    this.gemvs = { f32: ex.gemv_f32, bf16: ex.gemv_bf16 };
    this.qdots = {
      Q8_0: ex.qdot_q8_0,
      Q4_0: ex.qdot_q4_0,
      Q5_0: ex.qdot_q5_0,
      Q4_K: ex.qdot_q4_k,
      Q6_K: ex.qdot_q6_k,
    };
    this.qdotis = {
      Q8_0: ex.qdoti_q8_0,
      Q4_0: ex.qdoti_q4_0,
      Q5_0: ex.qdoti_q5_0,
      Q4_K: ex.qdoti_q4_k,
      Q6_K: ex.qdoti_q6_k,
    };
    this.deqs = { Q8_0: ex.deq_q8_0, Q4_0: ex.deq_q4_0, Q5_0: ex.deq_q5_0, Q4_K: ex.deq_q4_k, Q6_K: ex.deq_q6_k };
    this.quantAct = ex.quant_act;
    this.scores = ex.attn_scores;
    this.values = ex.attn_values;
    this.siluMulFn = ex.silu_mul;
    this.softmax = ex.softmax;
  }

  /** g = silu(g) * u in place (the MLP's gate times its up projection). */
  siluMul(g: Float32Array, u: Float32Array): void {
    const n = ceil4(g.length);
    // up to 3 lanes of padding: computed on whatever the heap holds there, never copied back
    const gb = this.alloc(n * 4),
      ub = this.alloc(n * 4);
    try {
      const gv = this.f32(gb, g.length);
      gv.set(g);
      this.f32(ub, g.length).set(u.subarray(0, g.length));
      this.siluMulFn(gb.ptr, ub.ptr, n);
      g.set(gv);
    } finally {
      this.release(ub);
      this.release(gb);
    }
  }

  /** Bytes held by live blocks (weights, plus scratch during a call). */
  get heapBytes(): number {
    return this.used;
  }

  alloc(bytes: number): HeapBlock {
    const size = Math.ceil(Math.max(bytes, 1) / ALIGN) * ALIGN;
    for (let i = 0; i < this.freeList.length; i++) {
      const f = this.freeList[i];
      if (f.bytes < size) continue;
      const block = { ptr: f.ptr, bytes: size };
      if (f.bytes === size) this.freeList.splice(i, 1);
      else this.freeList[i] = { ptr: f.ptr + size, bytes: f.bytes - size };
      this.used += size;
      return block;
    }
    const end = this.top + size;
    if (end > MAX_BYTES)
      throw new ShoalError(
        'ERR_DOES_NOT_FIT',
        `the CPU engine's WebAssembly heap would need ${(end / 2 ** 30).toFixed(2)} GiB; wasm32 allows 4 GiB ` +
          'per engine: give this tab fewer layers',
      );
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / PAGE_BYTES));
      } catch (e) {
        throw new ShoalError(
          'ERR_DOES_NOT_FIT',
          `could not grow the CPU engine's WebAssembly heap to ${(end / 2 ** 20).toFixed(0)} MiB: ${String(e)}`,
        );
      }
    }
    const block = { ptr: this.top, bytes: size };
    this.top = end;
    this.used += size;
    return block;
  }

  release(block: HeapBlock): void {
    this.used -= block.bytes;
    let i = 0;
    while (i < this.freeList.length && this.freeList[i].ptr < block.ptr) i++;
    this.freeList.splice(i, 0, { ...block });
    // merge with the next, then the previous neighbour
    const cur = this.freeList[i];
    const next = this.freeList[i + 1];
    if (next && cur.ptr + cur.bytes === next.ptr) {
      cur.bytes += next.bytes;
      this.freeList.splice(i + 1, 1);
    }
    const prev = this.freeList[i - 1];
    if (prev && prev.ptr + prev.bytes === cur.ptr) {
      prev.bytes += cur.bytes;
      this.freeList.splice(i, 1);
      i--;
    }
    // the last block hands its bytes back to the bump pointer
    const last = this.freeList[this.freeList.length - 1];
    if (last && last.ptr + last.bytes === this.top) {
      this.top = last.ptr;
      this.freeList.pop();
    }
  }

  /** Copy bytes into a new block. */
  store(data: Uint8Array): HeapBlock {
    const block = this.alloc(data.byteLength);
    new Uint8Array(this.memory.buffer, block.ptr, data.byteLength).set(data);
    return block;
  }

  /** A view of a block (valid until the next allocation: growing the memory detaches old views). */
  view(block: HeapBlock, byteLength = block.bytes): Uint8Array {
    return new Uint8Array(this.memory.buffer, block.ptr, byteLength);
  }

  /** A zeroed block of `n` floats (a KV cache's keys or values live in the heap, beside the weights). */
  allocF32(n: number): HeapBlock {
    const b = this.alloc(n * 4);
    new Float32Array(this.memory.buffer, b.ptr, n).fill(0);
    return b;
  }

  /** An f32 view of a block (valid until the next allocation, like `view`). */
  f32(block: HeapBlock, n = block.bytes / 4): Float32Array {
    return new Float32Array(this.memory.buffer, block.ptr, n);
  }

  /**
   * Causal attention of q (T, nHeads*headDim) against keys and values (rows of nKvHeads*headDim floats) in `k`,
   * `v`; query head h reads KV head floor(h / (nHeads/nKvHeads)). headDim must be a multiple of 4. The scores, their
   * softmax and the weighted values run in wasm per head.
   */
  attention(q: Float32Array, k: HeapBlock, v: HeapBlock, dims: AttentionDims): Float32Array {
    const { T, pos0, nHeads, nKvHeads, headDim } = dims;
    const qDim = nHeads * headDim,
      stride = nKvHeads * headDim * 4,
      group = nHeads / nKvHeads,
      scale = 1 / Math.sqrt(headDim);
    const qb = this.alloc(T * qDim * 4),
      ob = this.alloc(T * qDim * 4),
      sb = this.alloc(ceil4(pos0 + T) * 4);
    try {
      const buf = this.memory.buffer; // no allocation below: the views stay attached
      new Float32Array(buf, qb.ptr, T * qDim).set(q.subarray(0, T * qDim));
      const s = new Float32Array(buf, sb.ptr, ceil4(pos0 + T));
      for (let t = 0; t < T; t++) {
        const n = pos0 + t + 1; // causal: positions 0..pos0+t
        for (let h = 0; h < nHeads; h++) {
          const qo = (t * qDim + h * headDim) * 4,
            kvo = Math.floor(h / group) * headDim * 4;
          this.scores(qb.ptr + qo, k.ptr + kvo, stride, headDim, n, scale, sb.ptr);
          s.fill(-Infinity, n, ceil4(n)); // padding the softmax ignores (e^-inf adds nothing)
          this.softmax(sb.ptr, ceil4(n));
          this.values(sb.ptr, v.ptr + kvo, stride, headDim, n, ob.ptr + qo);
        }
      }
      return new Float32Array(buf, ob.ptr, T * qDim).slice();
    } finally {
      this.release(sb);
      this.release(ob);
      this.release(qb);
    }
  }

  /** y (T, N) = x (T, K) . W^T with W the (N, K) weight in `w`. One position runs the row-order gemv unless
   * `rowsAbreast` (the gemm's four rows abreast; for the gemv benchmark). */
  gemm(
    x: Float32Array,
    T: number,
    K: number,
    w: HeapBlock,
    kind: HeapKind,
    N: number,
    rowsAbreast = false,
  ): Float32Array {
    const gemv = T === 1 && !rowsAbreast;
    const xb = this.alloc(T * K * 4 * (gemv ? 2 : 1)); // one position: x, then the gemv's scratch
    const yb = this.alloc(T * N * 4);
    try {
      new Float32Array(this.memory.buffer, xb.ptr, T * K).set(x.subarray(0, T * K));
      if (gemv) this.gemvs[kind](xb.ptr, w.ptr, yb.ptr, K, N, xb.ptr + K * 4);
      else this.fns[kind](xb.ptr, w.ptr, yb.ptr, T, K, N);
      return new Float32Array(this.memory.buffer, yb.ptr, T * N).slice();
    } finally {
      this.release(yb);
      this.release(xb);
    }
  }

  /** y (N) = x (K) . W^T for one position (decode), W (N, K) in block format `dtype` in `w` (the file's bytes). */
  qdot(x: Float32Array, K: number, w: HeapBlock, dtype: QuantDtype, N: number): Float32Array {
    const xb = this.alloc(K * 4 + K / 2); // x, then Q4_K's per-32-value sums of x (16 bytes each)
    const yb = this.alloc(N * 4);
    try {
      new Float32Array(this.memory.buffer, xb.ptr, K).set(x.subarray(0, K));
      this.qdots[dtype](xb.ptr, w.ptr, yb.ptr, xb.ptr + K * 4, K, N);
      return new Float32Array(this.memory.buffer, yb.ptr, N).slice();
    } finally {
      this.release(yb);
      this.release(xb);
    }
  }

  /** y (T, N) = x (T, K) . W^T with each row of x quantized to int8 per 32 values first (not exact: opt-in). */
  qdotInt(x: Float32Array, T: number, K: number, w: HeapBlock, dtype: QuantDtype, N: number): Float32Array {
    const nb = K / ACT_BLOCK;
    const xb = this.alloc(K * 4),
      qb = this.alloc(K * 2),
      db = this.alloc(nb * 4),
      sb = this.alloc(nb * 4),
      yb = this.alloc(N * 4);
    const y = new Float32Array(T * N);
    try {
      const buf = this.memory.buffer; // no allocation below: the views stay attached
      const xv = new Float32Array(buf, xb.ptr, K);
      for (let t = 0; t < T; t++) {
        xv.set(x.subarray(t * K, (t + 1) * K));
        this.quantAct(xb.ptr, K, qb.ptr, db.ptr, sb.ptr);
        this.qdotis[dtype](qb.ptr, db.ptr, sb.ptr, w.ptr, yb.ptr, K, N);
        y.set(new Float32Array(buf, yb.ptr, N), t * N);
      }
      return y;
    } finally {
      for (const b of [yb, sb, db, qb, xb]) this.release(b);
    }
  }

  /** Dequantize `blocks` whole blocks from byte `offset` of `w` into f32 at the start of `out` (both in this heap). */
  dequantize(w: HeapBlock, offset: number, dtype: QuantDtype, blocks: number, out: HeapBlock): void {
    this.deqs[dtype](w.ptr + offset, out.ptr, blocks);
  }
}
