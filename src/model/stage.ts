// A pipeline stage: layers [start, end) of one model with their KV caches; the first stage embeds
// tokens, the last applies the final norm and LM head. Layers may arrive one by one (streaming
// load): forward() waits for each layer only when it reaches it.
import { ShoalError } from '../errors.ts';
import type { Backend, HostTensor, KvCache, Tensor } from '../backend/types.ts';
import type { ModelSpec } from './config.ts';
import { EMBED_TENSOR, FINAL_NORM_TENSOR, LM_HEAD_TENSOR } from './config.ts';
import { ropeInvFreq } from './rope.ts';

/** What a stage needs from a model's weights (ModelSource in src/weights implements it). */
export interface WeightProvider {
  loadLayer(layer: number): Promise<Map<string, HostTensor>>;
  loadEmbedding(): Promise<HostTensor>;
  loadFinalNorm(): Promise<HostTensor>;
  loadLmHead(): Promise<HostTensor>;
}

interface LayerWeights {
  inputNorm: Tensor;
  wq: Tensor; wk: Tensor; wv: Tensor;
  bq?: Tensor; bk?: Tensor; bv?: Tensor;
  qNorm?: Tensor; kNorm?: Tensor;
  wo: Tensor;
  postNorm: Tensor;
  wGate: Tensor; wUp: Tensor; wDown: Tensor;
  cache: KvCache;
}

export interface StageRange { start: number; end: number } // 0-based layers, end exclusive

export type LogitsMode = 'all' | 'last' | 'none';

export interface ForwardOptions {
  /** Last stage: which rows of logits to read back (default 'last'). */
  logits?: LogitsMode;
  /** Last stage: also compute the argmax token of the last position on the device. */
  argmax?: boolean;
  /** Called after each layer is enqueued (for timelines); not a completion signal on async backends. */
  onLayer?: (layer: number) => void;
  /** Called when compute must wait for a layer that has not finished loading, and when it arrives. */
  onWait?: (layer: number, phase: 'start' | 'end') => void;
}

export interface ForwardResult {
  /** Non-last stages: the hidden state (T, dim) to send downstream. */
  hidden?: Float32Array;
  /** Last stage: logits rows (R, vocab) as requested. */
  logits?: Float32Array;
  /** Last stage with argmax: greedy token of the last position. */
  nextToken?: number;
  /**
   * Time this step handed the page's thread to other tasks (the CPU engine yields between layers), ms: not this
   * stage's compute, so an emulated slowdown must not multiply it.
   */
  yieldedMs: number;
}

interface Deferred<T> { promise: Promise<T>; settled: boolean; resolve(v: T): void; reject(e: unknown): void }
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void, reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => undefined); // a failed load is reported where it is awaited
  const d: Deferred<T> = {
    promise, settled: false,
    resolve: (v) => { d.settled = true; resolve(v); },
    reject: (e) => { d.settled = true; reject(e); },
  };
  return d;
}

/** A macrotask boundary (setTimeout can be clamped to 4 ms; a MessageChannel hop is not). */
function yieldToEventLoop(): Promise<void> {
  if (typeof MessageChannel === 'undefined') return new Promise((r) => setTimeout(r, 0));
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => { ch.port1.close(); resolve(); };
    ch.port2.postMessage(null);
  });
}

/** Most positions a branch may write (its saved rows live in a per-layer scratch cache of this size). */
export const MAX_BRANCH_ROWS = 64;

export class Stage {
  readonly isFirst: boolean;
  readonly isLast: boolean;
  /** Next position to be written into the KV cache (= tokens processed so far). */
  pos = 0;
  private readonly invFreq: Float32Array;
  private readonly layers: Deferred<LayerWeights>[] = [];
  private embedding = deferred<Tensor>();
  private head = deferred<{ norm: Tensor; lmHead: Tensor }>();
  private uploaded: (Tensor | KvCache)[] = [];
  /** Per layer: rows a branch saves before it overwrites them (allocated on the first branch). */
  private scratch: KvCache[] = [];
  private branchState: { pos: number; from: number; limit: number; rows: number } | null = null;

  constructor(
    readonly backend: Backend,
    readonly spec: ModelSpec,
    readonly range: StageRange,
    readonly maxSeq: number = Math.min(spec.maxSeqLen, 2048),
  ) {
    if (!(range.start >= 0 && range.end <= spec.nLayers && range.start < range.end)) {
      throw new ShoalError('ERR_BAD_ARGS', `stage range [${range.start}, ${range.end}) is not within 0..${spec.nLayers} layers`);
    }
    this.isFirst = range.start === 0;
    this.isLast = range.end === spec.nLayers;
    this.invFreq = ropeInvFreq(spec);
    for (let l = range.start; l < range.end; l++) this.layers.push(deferred());
  }

  /** Upload one layer's tensors (as read from the file) and make it available to forward(). */
  setLayer(layer: number, tensors: Map<string, HostTensor>): void {
    const idx = layer - this.range.start;
    if (idx < 0 || idx >= this.layers.length) throw new ShoalError('ERR_BAD_ARGS', `layer ${layer} is not in this stage [${this.range.start}, ${this.range.end})`);
    const p = `model.layers.${layer}.`;
    const up = (name: string, optional = false): Tensor | undefined => {
      const t = tensors.get(p + name);
      if (!t) {
        if (optional) return undefined;
        throw new ShoalError('ERR_MISSING_TENSOR', `layer ${layer}: tensor ${p + name} is missing`);
      }
      const h = this.backend.uploadWeight(t);
      this.uploaded.push(h);
      return h;
    };
    const s = this.spec;
    const cache = this.backend.createKvCache(this.maxSeq, s.nKvHeads * s.headDim);
    this.uploaded.push(cache);
    const w: LayerWeights = {
      inputNorm: up('input_layernorm.weight')!,
      wq: up('self_attn.q_proj.weight')!, wk: up('self_attn.k_proj.weight')!, wv: up('self_attn.v_proj.weight')!,
      bq: s.qkvBias ? up('self_attn.q_proj.bias') : undefined,
      bk: s.qkvBias ? up('self_attn.k_proj.bias') : undefined,
      bv: s.qkvBias ? up('self_attn.v_proj.bias') : undefined,
      qNorm: s.qkNorm ? up('self_attn.q_norm.weight') : undefined,
      kNorm: s.qkNorm ? up('self_attn.k_norm.weight') : undefined,
      wo: up('self_attn.o_proj.weight')!,
      postNorm: up('post_attention_layernorm.weight')!,
      wGate: up('mlp.gate_proj.weight')!, wUp: up('mlp.up_proj.weight')!, wDown: up('mlp.down_proj.weight')!,
      cache,
    };
    this.layers[idx].resolve(w);
  }

  setEmbedding(t: HostTensor): void {
    if (t.name !== EMBED_TENSOR && t.name !== LM_HEAD_TENSOR) throw new ShoalError('ERR_BAD_ARGS', `unexpected embedding tensor ${t.name}`);
    const h = this.backend.uploadWeight(t);
    this.uploaded.push(h);
    this.embedding.resolve(h);
  }

  setHead(finalNorm: HostTensor, lmHead: HostTensor): void {
    if (finalNorm.name !== FINAL_NORM_TENSOR) throw new ShoalError('ERR_BAD_ARGS', `unexpected final norm tensor ${finalNorm.name}`);
    const norm = this.backend.uploadWeight(finalNorm);
    const lm = this.backend.uploadWeight(lmHead);
    this.uploaded.push(norm, lm);
    this.head.resolve({ norm, lmHead: lm });
  }

  /** True once every layer (and the embedding/head this stage needs) has arrived. */
  get loaded(): boolean {
    return this.layers.every((l) => l.settled) && (!this.isFirst || this.embedding.settled) && (!this.isLast || this.head.settled);
  }

  /** Mark a load failure so that a waiting forward() rejects instead of hanging. */
  failLoad(err: unknown): void {
    for (const l of this.layers) l.reject(err);
    this.embedding.reject(err);
    this.head.reject(err);
  }

  /** Load every tensor this stage needs, in execution order (embedding, layers, head). */
  async loadAll(src: WeightProvider, onLoaded?: (what: string) => void): Promise<void> {
    try {
      if (this.isFirst) { this.setEmbedding(await src.loadEmbedding()); onLoaded?.('embedding'); }
      for (let l = this.range.start; l < this.range.end; l++) { this.setLayer(l, await src.loadLayer(l)); onLoaded?.(`layer ${l}`); }
      if (this.isLast) { this.setHead(await src.loadFinalNorm(), await src.loadLmHead()); onLoaded?.('head'); }
    } catch (e) {
      this.failLoad(e);
      throw e;
    }
  }

  /**
   * Run T new positions through this stage. The first stage takes token ids; the others take the
   * hidden state (T, dim) from upstream.
   */
  async forward(input: Int32Array | Float32Array, opts: ForwardOptions = {}): Promise<ForwardResult> {
    const s = this.spec, b = this.backend;
    const T = this.isFirst ? input.length : input.length / s.dim;
    if (!Number.isInteger(T) || T < 1) throw new ShoalError('ERR_BAD_ARGS', `stage input of ${input.length} values is not a whole number of rows`);
    if (this.pos + T > this.maxSeq) throw new ShoalError('ERR_BAD_ARGS', `context full: ${this.pos + T} positions exceed ${this.maxSeq}`);
    const branch = this.branchState;
    if (branch && this.pos + T > branch.limit) throw new ShoalError('ERR_BAD_ARGS', `this branch holds ${branch.limit - branch.from} positions from ${branch.from}; ${this.pos + T - branch.from} asked`);
    const temps: Tensor[] = [];
    const keep = <X extends Tensor>(t: X): X => { temps.push(t); return t; };
    let x: Tensor;
    if (this.isFirst) {
      if (!(input instanceof Int32Array)) throw new ShoalError('ERR_BAD_ARGS', 'the first stage takes token ids (Int32Array)');
      // Checked here for every backend: a GPU gather would read past the table silently.
      for (const id of input) if (!(id >= 0 && id < s.vocabSize)) throw new ShoalError('ERR_BAD_ARGS', `token id ${id} is outside the vocabulary (${s.vocabSize})`);
      const ids = keep(b.fromHost(input, [T]));
      x = keep(b.embed(ids, await this.waitFor(this.embedding, this.range.start, opts)));
    } else {
      if (!(input instanceof Float32Array)) throw new ShoalError('ERR_BAD_ARGS', 'a downstream stage takes a hidden state (Float32Array)');
      x = keep(b.fromHost(input, [T, s.dim]));
    }
    const pos0 = this.pos;
    const shape = { nHeads: s.nHeads, nKvHeads: s.nKvHeads, headDim: s.headDim };
    let yieldedMs = 0;
    for (let i = 0; i < this.layers.length; i++) {
      const w = await this.waitFor(this.layers[i], this.range.start + i, opts);
      const norm = { weight: w.inputNorm, eps: s.normEps };
      // attention block: x + o(attn(rope(q), cache))
      const q = keep(b.matmul(x, w.wq, { norm, bias: w.bq }));
      const k = keep(b.matmul(x, w.wk, { norm, bias: w.bk }));
      const v = keep(b.matmul(x, w.wv, { norm, bias: w.bv }));
      const qkNorm = w.qNorm && w.kNorm ? { q: w.qNorm, k: w.kNorm, eps: s.normEps } : undefined;
      const qr = keep(b.ropeAndCache(q, k, v, w.cache, pos0, this.invFreq, shape, qkNorm));
      const att = keep(b.attention(qr, w.cache, pos0, shape));
      const h = keep(b.matmul(att, w.wo, { residual: x }));
      // MLP block: h + down(silu(gate(n(h))) * up(n(h)))
      const g = keep(b.gateUp(h, w.wGate, w.wUp, { weight: w.postNorm, eps: s.normEps }));
      x = keep(b.matmul(g, w.wDown, { residual: h }));
      opts.onLayer?.(this.range.start + i);
      // The CPU backend computes on the page's thread: yield between layers so heartbeats and messages get through.
      if (b.name === 'cpu') {
        const t = performance.now();
        await yieldToEventLoop();
        yieldedMs += performance.now() - t;
      }
    }
    this.pos += T;
    try {
      if (!this.isLast) return { hidden: await b.read(x), yieldedMs };
      const head = await this.waitFor(this.head, this.range.end - 1, opts);
      const mode = opts.logits ?? 'last';
      const out: ForwardResult = { yieldedMs };
      const last = T === 1 ? x : keep(b.sliceRows(x, T - 1, 1));
      let lastLogits: Tensor | undefined;
      if (mode === 'all') {
        const logits = keep(b.matmul(x, head.lmHead, { norm: { weight: head.norm, eps: s.normEps } }));
        lastLogits = T === 1 ? logits : keep(b.sliceRows(logits, T - 1, 1));
        if (opts.argmax) out.nextToken = (await b.readInt(keep(b.argmax(lastLogits))))[0];
        out.logits = await b.read(logits);
      } else if (mode === 'last' || opts.argmax) {
        lastLogits = keep(b.matmul(last, head.lmHead, { norm: { weight: head.norm, eps: s.normEps } }));
        if (opts.argmax) out.nextToken = (await b.readInt(keep(b.argmax(lastLogits))))[0];
        if (mode === 'last') out.logits = await b.read(lastLogits);
      }
      return out;
    } finally {
      for (const t of temps) b.free(t);
    }
  }

  /** Await weights that may still be loading, telling the caller (timelines) when compute is blocked on them. */
  private async waitFor<T>(d: Deferred<T>, layer: number, opts: ForwardOptions): Promise<T> {
    if (d.settled) return d.promise;
    opts.onWait?.(layer, 'start');
    try {
      return await d.promise;
    } finally {
      opts.onWait?.(layer, 'end');
    }
  }

  /**
   * Start a branch at `pos`: later forward() calls write at most `rows` positions from there, and endBranch() puts
   * back the cache rows they overwrote and the current position. Speculative decoding verifies (and drafts) an
   * alternative continuation this way while the main line's later positions stay in the cache.
   */
  async beginBranch(pos: number, rows: number): Promise<void> {
    if (this.branchState) throw new ShoalError('ERR_BAD_ARGS', 'a branch is already open on this stage');
    if (!(Number.isInteger(pos) && pos >= 0 && pos <= this.pos)) throw new ShoalError('ERR_BAD_ARGS', `cannot branch at ${pos} (at ${this.pos})`);
    if (!(Number.isInteger(rows) && rows >= 1 && rows <= MAX_BRANCH_ROWS && pos + rows <= this.maxSeq)) {
      throw new ShoalError('ERR_BAD_ARGS', `a branch of ${rows} positions at ${pos} must hold 1..${MAX_BRANCH_ROWS} positions within ${this.maxSeq}`);
    }
    const s = this.spec;
    const saved = Math.min(rows, this.pos - pos); // rows past the current position hold nothing to keep
    for (let i = 0; i < this.layers.length; i++) {
      const w = await this.layers[i].promise;
      if (!this.scratch[i]) {
        this.scratch[i] = this.backend.createKvCache(MAX_BRANCH_ROWS, s.nKvHeads * s.headDim);
        this.uploaded.push(this.scratch[i]);
      }
      if (saved > 0) this.backend.copyKvRows(w.cache, pos, this.scratch[i], 0, saved);
    }
    this.branchState = { pos: this.pos, from: pos, limit: pos + rows, rows: saved };
    this.pos = pos;
  }

  /** Close the branch: the overwritten rows and the position from before beginBranch() come back. */
  async endBranch(): Promise<void> {
    const b = this.branchState;
    if (!b) throw new ShoalError('ERR_BAD_ARGS', 'no branch is open on this stage');
    this.branchState = null;
    for (let i = 0; i < this.layers.length; i++) {
      const w = await this.layers[i].promise;
      if (b.rows > 0) this.backend.copyKvRows(this.scratch[i], 0, w.cache, b.from, b.rows);
    }
    this.pos = b.pos;
  }

  /** Forget every position from `pos` on (speculative decoding rejects drafted tokens this way). */
  rollback(pos: number): void {
    if (!(pos >= 0 && pos <= this.pos)) throw new ShoalError('ERR_BAD_ARGS', `cannot roll back to ${pos} (at ${this.pos})`);
    // Rows >= pos are simply overwritten by later writes; attention only reads rows < pos + T.
    this.pos = pos;
  }

  /** Start a new sequence (keeps the weights). */
  reset(): void {
    this.branchState = null;
    this.pos = 0;
  }

  /** Drop every weight and cache from the device. */
  dispose(): void {
    for (const t of this.uploaded) this.backend.free(t);
    this.uploaded = [];
  }
}
