// The WebGPU Backend: weights stay in their file dtype, block formats included (split by rows across bindings when
// too big; the kernels unpack them through kernels/weight_*.wgsl), activations are pooled f32 buffers, and every op
// since the last read goes into one command encoder and one submit.
import { ShoalError, errorMessage } from '../../errors.ts';
import { checkKvCopy } from '../types.ts';
import type { AttentionShape, Backend, KvCache, MatmulOptions, Tensor } from '../types.ts';
import { isQuantized, numel, tensorBytes, type HostTensor, type WeightDtype } from '../../weights/types.ts';
import { requestGpuContext } from './device.ts';
import type { GpuContext } from './device.ts';
import { checkFits, grid2d, pad4, planRowChunks, rowsCols } from './layout.ts';
import type { FitLimits, TensorShapeInfo } from './layout.ts';
import { pipelinesFor } from './pipelines.ts';
import type { GemvKind, Pipelines } from './pipelines.ts';
import { Recorder } from './recorder.ts';

/** From this many rows on, matmul uses the tiled kernel (weights read once per 32 rows) instead of gemv. */
const TILED_MIN_ROWS = 4;
const TILE = 32; // matmul_tiled.wgsl TM = TN
/** Output rows per workgroup of each matmul kernel (gemv.wgsl ROWS, gemv_subgroup.wgsl ROWS_PER_WG, ...). */
const ROWS_PER_WORKGROUP = { gemv: 4, subgroup: 16, rows: 64, tiled: TILE } as const;
/** Tokens per workgroup (gemv_rows.wgsl TB, matmul_tiled.wgsl TM). */
const TOKENS_PER_WORKGROUP = { gemv: 1, subgroup: 1, rows: 8, tiled: TILE } as const;
const MAX_HEAD_DIM = 256; // attention.wgsl MAX_HEAD_DIM
const SMALL_UPLOAD_BYTES = 64 * 1024; // fromHost below this goes through the arena, above it a fresh buffer

export interface WebGpuBackendOptions {
  device?: GPUDevice;
  onFailure?: (err: ShoalError) => void;
  /** Pretend bindings are this small (tests of the split path; phones have 128 MiB). */
  maxBindingBytesOverride?: number;
  /** Force a decode matmul kernel (tests check each); default: subgroup when offered, else rows on CPU adapters, else
   * gemv. */
  gemvKind?: GemvKind;
  /**
   * Run matmul's RMSNorm as one shared dispatch per input (see normedOnce): 10 dispatches per layer instead of 8, which
   * measured faster on SwiftShader's rows kernel (it recomputes the norm per output row). Off by default: the decode
   * target is 8 dispatches per layer, and on SwiftShader the profiler routes stages to the CPU engine anyway.
   */
  separateNorm?: boolean;
  /** Device memory the stage may use, for checkFits (WebGPU does not report it). */
  memoryBudgetBytes?: number;
}

export interface WebGpuBackend extends Backend {
  readonly name: 'webgpu';
  readonly adapterInfo: string;
  readonly limits: FitLimits;
  /** The device, to create further backends on it (they share compiled pipelines). */
  readonly device: GPUDevice;
  /** Throws ERR_DOES_NOT_FIT before any upload when these weights (+ extraBytes) cannot live on this device. */
  checkFits(tensors: readonly TensorShapeInfo[], extraBytes?: number): number;
  /** Bytes of weights currently on the device. */
  weightBytes(): number;
}

interface Chunk {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
}

class GpuTensor implements Tensor {
  constructor(
    readonly shape: readonly number[],
    readonly dtype: WeightDtype | 'I32',
    readonly chunks: Chunk[],
    readonly pooled: boolean,
    public freed = false,
  ) {}
  get buffer(): GPUBuffer {
    return this.chunks[0].buffer;
  }
}

class GpuKvCache implements KvCache {
  freed = false;
  constructor(
    readonly maxSeq: number,
    readonly kvDim: number,
    readonly buffer: GPUBuffer,
  ) {}
}

export async function createWebGpuBackend(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend | null> {
  let failure: ShoalError | null = null;
  const fail = (err: ShoalError) => {
    if (failure) return;
    failure = err;
    if (opts.onFailure) opts.onFailure(err);
    else console.error(`[shoal] ${err.code}: ${err.message}`);
  };
  const ctx = await requestGpuContext(fail, opts.device);
  if (!ctx) return null;
  return new WebGpuBackendImpl(ctx, opts, fail, () => failure);
}

/** Reuses activation buffers by exact byte size; a freed (or garbage-collected) tensor's buffer comes back here. */
class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  constructor(
    private readonly device: GPUDevice,
    private readonly usage: number,
  ) {}
  acquire(size: number): GPUBuffer {
    const list = this.free.get(size);
    const b = list?.pop();
    if (b) return b;
    return this.device.createBuffer({ size, usage: this.usage });
  }
  release(b: GPUBuffer): void {
    let list = this.free.get(b.size);
    if (!list) this.free.set(b.size, (list = []));
    list.push(b);
  }
  destroy(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
  }
}

class WebGpuBackendImpl implements WebGpuBackend {
  readonly name = 'webgpu' as const;
  readonly blocksThread = false;
  readonly adapterInfo: string;
  readonly limits: FitLimits;
  readonly device: GPUDevice;
  private readonly pipes: Pipelines;
  private readonly rec: Recorder;
  private readonly pool: BufferPool;
  private readonly staging: BufferPool;
  private readonly dummy: GPUBuffer;
  private readonly gcRelease: FinalizationRegistry<GPUBuffer>;
  /** Decode matmul kernel: see GemvKind. */
  readonly gemvKind: GemvKind;
  /** Normalise matmul inputs in a separate, shared dispatch instead of inside each matmul (see normedOnce). */
  readonly separateNorm: boolean;
  private ropeCache: { pos0: number; T: number; invFreq: Float32Array; table: GpuTensor }[] = [];
  private readonly normCache = new Map<GpuTensor, { w: GpuTensor; eps: number; out: GpuTensor }[]>();
  private uploadedBytes = 0;
  private destroyed = false;

  constructor(
    private readonly ctx: GpuContext,
    opts: WebGpuBackendOptions,
    private readonly fail: (e: ShoalError) => void,
    private readonly failure: () => ShoalError | null,
  ) {
    this.device = ctx.device;
    this.adapterInfo = ctx.adapterInfo;
    const binding = Math.min(ctx.maxBindingBytes, opts.maxBindingBytesOverride ?? Infinity);
    this.limits = {
      maxBindingBytes: binding,
      maxBufferBytes: ctx.maxBufferBytes,
      memoryBudgetBytes: opts.memoryBudgetBytes,
    };
    this.pipes = pipelinesFor(this.device);
    this.gemvKind = opts.gemvKind ?? (ctx.cpuAdapter ? 'rows' : ctx.subgroups ? 'subgroup' : 'gemv');
    this.separateNorm = opts.separateNorm ?? false;
    if (this.gemvKind === 'subgroup' && !ctx.subgroups)
      throw new ShoalError('ERR_BACKEND', 'gemvKind subgroup needs a device with the subgroups feature');
    this.rec = new Recorder(this.device);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    this.pool = new BufferPool(this.device, usage);
    this.staging = new BufferPool(this.device, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    this.dummy = this.device.createBuffer({ label: 'shoal-dummy', size: 16, usage: GPUBufferUsage.STORAGE });
    // A tensor the caller drops without free() still returns its buffer; GPU work is ordered, so reuse is safe.
    this.gcRelease = new FinalizationRegistry((b) => {
      if (!this.destroyed) this.pool.release(b);
    });
  }

  checkFits(tensors: readonly TensorShapeInfo[], extraBytes = 0): number {
    return checkFits(tensors, this.limits, extraBytes);
  }

  weightBytes(): number {
    return this.uploadedBytes;
  }

  private live(): void {
    const f = this.failure();
    if (f) throw f;
    if (this.destroyed) throw new ShoalError('ERR_BACKEND', 'the WebGPU backend was destroyed');
  }

  private act(shape: number[], dtype: 'F32' | 'I32' = 'F32'): GpuTensor {
    const size = Math.max(16, pad4(numel(shape) * 4));
    const buffer = this.pool.acquire(size);
    const t = new GpuTensor(shape, dtype, [{ buffer, rowStart: 0, rows: shape[0] ?? 1 }], true);
    this.gcRelease.register(t, buffer, t);
    return t;
  }

  private use(t: Tensor, what: string): GpuTensor {
    if (!(t instanceof GpuTensor)) throw new ShoalError('ERR_BACKEND', `${what}: not a WebGPU tensor`);
    if (t.freed) throw new ShoalError('ERR_BACKEND', `${what}: tensor used after free()`);
    return t;
  }

  private weightDtype(t: GpuTensor, what: string): WeightDtype {
    if (t.dtype === 'I32') throw new ShoalError('ERR_BACKEND', `${what}: expected a float tensor`);
    return t.dtype;
  }

  uploadWeight(h: HostTensor): Tensor {
    this.live();
    // Block formats go up as the file's bytes: the WGSL reads their fields from u32 words with byte shifts (see
    // kernels/weight_q8_0.wgsl and docs/gguf.md), so rows of whole blocks split across bindings like any row.
    const expected = tensorBytes(h.dtype, h.shape, `tensor ${h.name}`);
    if (h.data.byteLength !== expected) {
      throw new ShoalError(
        isQuantized(h.dtype) ? 'ERR_BAD_GGUF' : 'ERR_BAD_SAFETENSORS',
        `tensor ${h.name}: ${h.data.byteLength} bytes for shape [${h.shape.join(', ')}] in ${h.dtype} ` +
          `(expected ${expected})`,
      );
    }
    // Vectors (norms, biases) are never split: the kernels index them whole. The artificial binding limit only
    // applies to matrices; a vector above the real device limit still fails in planRowChunks.
    const binding = h.shape.length >= 2 ? this.limits.maxBindingBytes : this.ctx.maxBindingBytes;
    const plan = planRowChunks(h.name, h.shape, h.dtype, Math.min(binding, this.limits.maxBufferBytes));
    const chunks: Chunk[] = plan.map((c) => {
      const buffer = this.device.createBuffer({
        label: h.name,
        size: Math.max(16, c.paddedBytes),
        usage: GPUBufferUsage.STORAGE,
        mappedAtCreation: true,
      });
      new Uint8Array(buffer.getMappedRange()).set(h.data.subarray(c.byteOffset, c.byteOffset + c.byteLength));
      buffer.unmap();
      this.uploadedBytes += buffer.size;
      return { buffer, rowStart: c.rowStart, rows: c.rows };
    });
    return new GpuTensor([...h.shape], h.dtype, chunks, false);
  }

  fromHost(data: Float32Array | Int32Array, shape: number[]): Tensor {
    this.live();
    if (numel(shape) !== data.length)
      throw new ShoalError('ERR_BACKEND', `fromHost: ${data.length} values for shape [${shape.join(', ')}]`);
    const dtype = data instanceof Int32Array ? 'I32' : 'F32';
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength <= SMALL_UPLOAD_BYTES) {
      const t = this.act(shape, dtype);
      this.rec.upload(t.buffer, bytes);
      return t;
    }
    // A fresh buffer: writing a pooled one through the queue could overtake recorded work that still reads it.
    const buffer = this.device.createBuffer({
      size: pad4(bytes.byteLength),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    new Uint8Array(buffer.getMappedRange()).set(bytes);
    buffer.unmap();
    const t = new GpuTensor(shape, dtype, [{ buffer, rowStart: 0, rows: shape[0] ?? 1 }], true);
    this.gcRelease.register(t, buffer, t);
    return t;
  }

  createKvCache(maxSeq: number, kvDim: number): KvCache {
    this.live();
    const bytes = 2 * maxSeq * kvDim * 4;
    if (bytes > this.ctx.maxBindingBytes) {
      throw new ShoalError(
        'ERR_DOES_NOT_FIT',
        `a KV cache of ${maxSeq} positions x ${kvDim} (${bytes} bytes) exceeds this GPU's binding limit of ` +
          `${this.ctx.maxBindingBytes} bytes: use a shorter context`,
      );
    }
    const buffer = this.device.createBuffer({
      label: 'kv-cache',
      size: bytes,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    return new GpuKvCache(maxSeq, kvDim, buffer);
  }

  copyKvRows(src: KvCache, srcRow: number, dst: KvCache, dstRow: number, rows: number): void {
    this.live();
    const a = this.cache(src, 'copyKvRows source'),
      b = this.cache(dst, 'copyKvRows target');
    checkKvCopy(a, srcRow, b, dstRow, rows);
    if (rows === 0) return;
    const row = a.kvDim * 4,
      size = rows * row;
    // K occupies the first maxSeq rows of a cache's buffer, V the next maxSeq.
    this.rec.copy(a.buffer, srcRow * row, b.buffer, dstRow * row, size);
    this.rec.copy(a.buffer, (a.maxSeq + srcRow) * row, b.buffer, (b.maxSeq + dstRow) * row, size);
  }

  free(t: Tensor | KvCache): void {
    if (t instanceof GpuKvCache) {
      // Flush first so no recorded dispatch refers to a destroyed buffer.
      if (!t.freed && this.rec.pending) this.flush();
      if (!t.freed) t.buffer.destroy();
      t.freed = true;
      return;
    }
    if (!(t instanceof GpuTensor) || t.freed) return;
    t.freed = true;
    this.gcRelease.unregister(t);
    if (t.pooled) {
      if (!this.destroyed) this.pool.release(t.buffer);
      return;
    }
    // Weights: flush first so no recorded dispatch refers to a destroyed buffer.
    if (this.rec.pending) this.flush();
    for (const c of t.chunks) {
      this.uploadedBytes -= c.buffer.size;
      c.buffer.destroy();
    }
  }

  embed(ids: Tensor, table: Tensor): Tensor {
    this.live();
    const i = this.use(ids, 'embed ids');
    const w = this.use(table, 'embed table');
    if (i.dtype !== 'I32') throw new ShoalError('ERR_BACKEND', 'embed: ids must be I32');
    const T = numel(i.shape);
    const { cols: dim } = rowsCols(w.shape);
    const y = this.act([T, dim]);
    const kernel = this.pipes.embed(this.weightDtype(w, 'embed'));
    const wgCount = Math.ceil((T * dim) / 256);
    for (const c of w.chunks) {
      const p = new Uint32Array([T, dim, c.rowStart, c.rows, 0, 0, 0, 0]);
      this.rec.dispatch(
        kernel,
        [i.buffer, y.buffer, c.buffer],
        p.buffer,
        grid2d(wgCount, this.ctx.maxWorkgroupsPerDim),
      );
    }
    return y;
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
    this.live();
    const xt = this.use(x, 'rmsNorm x');
    const w = this.use(weight, 'rmsNorm weight');
    const { rows: T, cols: D } = rowsCols(xt.shape);
    const y = this.act([T, D]);
    const p = new ArrayBuffer(16);
    new Uint32Array(p, 0, 2).set([T, D]);
    new Float32Array(p, 8, 1)[0] = eps;
    this.rec.dispatch(this.pipes.rmsNorm(this.weightDtype(w, 'rmsNorm')), [xt.buffer, y.buffer, w.buffer], p, [T]);
    return y;
  }

  private matmulCore(x: Tensor, w: Tensor, wUp: Tensor | null, opts: MatmulOptions, what: string): Tensor {
    this.live();
    const xIn = this.use(x, `${what} x`);
    const wt = this.use(w, `${what} weight`);
    const ut = wUp ? this.use(wUp, `${what} up weight`) : null;
    const { rows: T, cols: K } = rowsCols(xIn.shape);
    const { rows: N, cols: wK } = rowsCols(wt.shape);
    if (wK !== K) throw new ShoalError('ERR_BACKEND', `${what}: x has ${K} columns but the weight has ${wK}`);
    if (ut && (ut.shape.join() !== wt.shape.join() || ut.chunks.length !== wt.chunks.length))
      throw new ShoalError('ERR_BACKEND', `${what}: gate and up weights differ in shape`);
    const bias = opts.bias ? this.use(opts.bias, `${what} bias`) : null;
    const res = opts.residual ? this.use(opts.residual, `${what} residual`) : null;
    let norm = opts.norm ? this.use(opts.norm.weight, `${what} norm`) : null;
    let xt = xIn;
    if (norm && this.separateNorm) {
      xt = this.normedOnce(xIn, norm, opts.norm!.eps);
      norm = null;
    }
    if (res && numel(res.shape) !== T * N)
      throw new ShoalError('ERR_BACKEND', `${what}: residual has ${numel(res.shape)} values, expected ${T * N}`);
    // CPU adapters: the rows kernel blocks tokens itself and beats the barrier-heavy tiled kernel at any T.
    const tiled = T >= TILED_MIN_ROWS && this.gemvKind !== 'rows';
    const kind = tiled ? 'tiled' : this.gemvKind;
    const kernel = this.pipes.matmul({
      kind,
      w: this.weightDtype(wt, what),
      wUp: ut ? this.weightDtype(ut, what) : undefined,
      bias: bias ? this.weightDtype(bias, what) : undefined,
      norm: norm ? this.weightDtype(norm, what) : undefined,
      residual: !!res,
    });
    const y = this.act([T, N]);
    const eps = opts.norm?.eps ?? 0;
    wt.chunks.forEach((c, ci) => {
      const p = new ArrayBuffer(32);
      new Uint32Array(p, 0, 5).set([T, K, N, c.rowStart, c.rows]);
      new Float32Array(p, 20, 1)[0] = eps;
      const buffers = [
        xt.buffer,
        y.buffer,
        res?.buffer ?? this.dummy,
        c.buffer,
        ut?.chunks[ci].buffer ?? this.dummy,
        bias?.buffer ?? this.dummy,
        norm?.buffer ?? this.dummy,
      ];
      const grid: [number, number] = [
        Math.ceil(c.rows / ROWS_PER_WORKGROUP[kind]),
        Math.ceil(T / TOKENS_PER_WORKGROUP[kind]),
      ];
      this.rec.dispatch(kernel, buffers, p, grid);
    });
    return y;
  }

  /**
   * rmsNorm(x) as its own dispatch, once per (x, weight, eps) until the next flush: q, k and v (or gate/up) of
   * one layer share it. Used on CPU adapters, where recomputing the norm inside every matmul row costs as much
   * as the product itself; GPUs fuse it (fewer dispatches matter more there).
   */
  private normedOnce(x: GpuTensor, w: GpuTensor, eps: number): GpuTensor {
    let list = this.normCache.get(x);
    if (!list) this.normCache.set(x, (list = []));
    const hit = list.find((e) => e.w === w && e.eps === eps);
    if (hit) return hit.out;
    const out = this.rmsNorm(x, w, eps) as GpuTensor;
    list.push({ w, eps, out });
    return out;
  }

  /**
   * cos/sin of positions pos0..pos0+T-1, (T, half, 2), computed in f64 on the host exactly as the CPU reference.
   * Every layer of a step uses the same positions: upload once per recording (one copy, not one per layer).
   */
  private ropeTable(pos0: number, T: number, invFreq: Float32Array): GpuTensor {
    const hit = this.ropeCache.find((e) => e.pos0 === pos0 && e.T === T && e.invFreq === invFreq);
    if (hit) return hit.table;
    const half = invFreq.length;
    const cs = new Float32Array(T * half * 2);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        const ang = (pos0 + t) * invFreq[i];
        cs[(t * half + i) * 2] = Math.cos(ang);
        cs[(t * half + i) * 2 + 1] = Math.sin(ang);
      }
    }
    const table = this.fromHost(cs, [T, half * 2]) as GpuTensor;
    this.ropeCache.push({ pos0, T, invFreq, table });
    return table;
  }

  private flush(extra?: (enc: GPUCommandEncoder) => void): void {
    this.rec.flush(extra);
    // The cached norms are only reused within one recording; their buffers go back to the pool (GPU order
    // makes reuse safe even for work already submitted).
    for (const list of this.normCache.values()) for (const e of list) this.free(e.out);
    this.normCache.clear();
    for (const e of this.ropeCache) this.free(e.table);
    this.ropeCache = [];
  }

  matmul(x: Tensor, w: Tensor, opts: MatmulOptions = {}): Tensor {
    return this.matmulCore(x, w, null, opts, 'matmul');
  }

  gateUp(x: Tensor, wGate: Tensor, wUp: Tensor, norm?: { weight: Tensor; eps: number }): Tensor {
    return this.matmulCore(x, wGate, wUp, norm ? { norm } : {}, 'gateUp');
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
    this.live();
    const qt = this.use(q, 'ropeAndCache q');
    const kt = this.use(k, 'ropeAndCache k');
    const vt = this.use(v, 'ropeAndCache v');
    const c = this.cache(cache, 'ropeAndCache');
    const { nHeads, nKvHeads, headDim } = shape;
    const kvDim = nKvHeads * headDim;
    const T = rowsCols(qt.shape).rows;
    const half = headDim / 2;
    if (invFreq.length !== half)
      throw new ShoalError('ERR_BACKEND', `ropeAndCache: ${invFreq.length} inverse frequencies for headDim ${headDim}`);
    if (kvDim !== c.kvDim)
      throw new ShoalError('ERR_BACKEND', `ropeAndCache: kvDim ${kvDim} but the cache has ${c.kvDim}`);
    if (pos0 < 0 || pos0 + T > c.maxSeq)
      throw new ShoalError(
        'ERR_BACKEND',
        `ropeAndCache: positions ${pos0}..${pos0 + T - 1} outside the cache of ${c.maxSeq}`,
      );
    const table = this.ropeTable(pos0, T, invFreq);
    const qOut = this.act([T, nHeads * headDim]);
    const qn = qkNorm ? this.use(qkNorm.q, 'ropeAndCache q norm') : null;
    const kn = qkNorm ? this.use(qkNorm.k, 'ropeAndCache k norm') : null;
    const p = new ArrayBuffer(32);
    new Uint32Array(p, 0, 7).set([T, pos0, nHeads, nKvHeads, headDim, kvDim, c.maxSeq * kvDim]);
    new Float32Array(p, 28, 1)[0] = qkNorm?.eps ?? 0;
    const kernel = this.pipes.rope(
      qn ? this.weightDtype(qn, 'q norm') : undefined,
      kn ? this.weightDtype(kn, 'k norm') : undefined,
    );
    this.rec.dispatch(
      kernel,
      [
        qt.buffer,
        kt.buffer,
        vt.buffer,
        qOut.buffer,
        c.buffer,
        table.buffer,
        qn?.buffer ?? this.dummy,
        kn?.buffer ?? this.dummy,
      ],
      p,
      [nHeads + nKvHeads, T],
    );
    return qOut;
  }

  attention(q: Tensor, cache: KvCache, pos0: number, shape: AttentionShape): Tensor {
    this.live();
    const qt = this.use(q, 'attention q');
    const c = this.cache(cache, 'attention');
    const { nHeads, nKvHeads, headDim } = shape;
    if (headDim > MAX_HEAD_DIM)
      throw new ShoalError(
        'ERR_UNSUPPORTED_ARCH',
        `head_dim ${headDim} is above the ${MAX_HEAD_DIM} the WebGPU attention kernel supports`,
      );
    const T = rowsCols(qt.shape).rows;
    if (pos0 + T > c.maxSeq)
      throw new ShoalError('ERR_BACKEND', `attention: positions up to ${pos0 + T} exceed the cache of ${c.maxSeq}`);
    const y = this.act([T, nHeads * headDim]);
    const p = new ArrayBuffer(32);
    new Uint32Array(p, 0, 7).set([T, pos0, nHeads, nKvHeads, headDim, nKvHeads * headDim, c.maxSeq * c.kvDim]);
    new Float32Array(p, 28, 1)[0] = 1 / Math.sqrt(headDim);
    this.rec.dispatch(this.pipes.attention(), [qt.buffer, c.buffer, y.buffer], p, [nHeads, T]);
    return y;
  }

  argmax(x: Tensor): Tensor {
    this.live();
    const xt = this.use(x, 'argmax x');
    const { rows: T, cols: V } = rowsCols(xt.shape);
    const y = this.act([T], 'I32');
    this.rec.dispatch(this.pipes.argmax(), [xt.buffer, y.buffer], new Uint32Array([T, V, 0, 0]).buffer, [T]);
    return y;
  }

  sliceRows(x: Tensor, start: number, count: number): Tensor {
    this.live();
    const xt = this.use(x, 'sliceRows x');
    const { rows, cols } = rowsCols(xt.shape);
    if (start < 0 || count < 1 || start + count > rows)
      throw new ShoalError('ERR_BACKEND', `sliceRows: rows ${start}..${start + count - 1} of ${rows}`);
    const y = this.act([count, cols], xt.dtype === 'I32' ? 'I32' : 'F32');
    this.rec.copy(xt.buffer, start * cols * 4, y.buffer, 0, count * cols * 4);
    return y;
  }

  concatRows(parts: Tensor[]): Tensor {
    this.live();
    const ts = parts.map((p, i) => this.use(p, `concatRows part ${i}`));
    if (ts.length === 0) throw new ShoalError('ERR_BACKEND', 'concatRows: no parts');
    const cols = rowsCols(ts[0].shape).cols,
      dtype = ts[0].dtype === 'I32' ? 'I32' : 'F32';
    if (ts.some((t) => rowsCols(t.shape).cols !== cols || (t.dtype === 'I32') !== (dtype === 'I32'))) {
      throw new ShoalError('ERR_BACKEND', 'concatRows: parts differ in width or type');
    }
    const y = this.act([ts.reduce((n, t) => n + rowsCols(t.shape).rows, 0), cols], dtype);
    let off = 0;
    for (const t of ts) {
      const bytes = rowsCols(t.shape).rows * cols * 4;
      this.rec.copy(t.buffer, 0, y.buffer, off, bytes);
      off += bytes;
    }
    return y;
  }

  private cache(c: KvCache, what: string): GpuKvCache {
    if (!(c instanceof GpuKvCache)) throw new ShoalError('ERR_BACKEND', `${what}: not a WebGPU KV cache`);
    if (c.freed) throw new ShoalError('ERR_BACKEND', `${what}: KV cache used after free()`);
    return c;
  }

  private async readBytes(t: Tensor, what: string): Promise<ArrayBuffer> {
    this.live();
    const xt = this.use(t, what);
    if (!xt.pooled) throw new ShoalError('ERR_BACKEND', `${what}: weights cannot be read back`);
    const size = pad4(numel(xt.shape) * 4);
    const staging = this.staging.acquire(Math.max(16, size));
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    this.flush((enc) => enc.copyBufferToBuffer(xt.buffer, 0, staging, 0, size));
    const oom = this.device.popErrorScope();
    const invalid = this.device.popErrorScope();
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, size);
    } catch (e) {
      const f = this.failure();
      throw f ?? new ShoalError('ERR_DEVICE_LOST', `reading from the GPU failed: ${errorMessage(e)}`, { cause: e });
    }
    const out = staging.getMappedRange(0, size).slice(0);
    staging.unmap();
    this.staging.release(staging);
    for (const [scope, code] of [
      [await invalid, 'ERR_BACKEND'],
      [await oom, 'ERR_DOES_NOT_FIT'],
    ] as const) {
      if (scope) {
        const err = new ShoalError(
          code,
          `WebGPU ${code === 'ERR_DOES_NOT_FIT' ? 'ran out of memory' : 'rejected a command'}: ${scope.message}`,
        );
        this.fail(err);
        throw err;
      }
    }
    return out;
  }

  async read(t: Tensor): Promise<Float32Array> {
    if ((t as GpuTensor).dtype === 'I32') throw new ShoalError('ERR_BACKEND', 'read: tensor is I32, use readInt');
    return new Float32Array(await this.readBytes(t, 'read'), 0, numel(t.shape));
  }

  async readInt(t: Tensor): Promise<Int32Array> {
    if ((t as GpuTensor).dtype !== 'I32') throw new ShoalError('ERR_BACKEND', 'readInt: tensor is not I32, use read');
    return new Int32Array(await this.readBytes(t, 'readInt'), 0, numel(t.shape));
  }

  stats(): { dispatches: number; submits: number } {
    return { dispatches: this.rec.dispatches, submits: this.rec.submits };
  }

  resetStats(): void {
    this.rec.dispatches = 0;
    this.rec.submits = 0;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.rec.destroy();
    this.pool.destroy();
    this.staging.destroy();
    this.dummy.destroy();
    this.ctx.detach();
    // Only destroy a device we created; a caller's device is theirs.
    if (this.ctx.ownsDevice) this.device.destroy();
  }
}
