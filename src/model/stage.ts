// A pipeline stage: layers [start, end) of one model, and one KV cache per conversation (a Sequence); the first
// stage embeds tokens, the last applies the final norm and LM head. Layers may arrive one by one (streaming load):
// forward() waits for each layer only when it reaches it. forwardBatch() runs several conversations in one pass:
// every matmul over all their rows (one read of each weight), attention per conversation over its own cache.
import { ShoalError } from '../errors.ts';
import type { Backend, KvCache, Tensor } from '../backend/types.ts';
import type { HostTensor } from '../weights/types.ts';
import type { ModelSpec } from './config.ts';
import { EMBED_TENSOR, FINAL_NORM_TENSOR, LM_HEAD_TENSOR } from './config.ts';
import { ropeInvFreq } from './rope.ts';

/** What a stage needs from a model's weights (ModelSource in src/weights implements it). */
export interface WeightProvider {
  loadLayer(layer: number): Promise<Map<string, HostTensor>>;
  loadEmbedding(): Promise<HostTensor>;
  /** The final norm and the LM head (the embedding matrix when tied), one piece. */
  loadHead(): Promise<[HostTensor, HostTensor]>;
}

interface LayerWeights {
  inputNorm: Tensor;
  wq: Tensor;
  wk: Tensor;
  wv: Tensor;
  bq?: Tensor;
  bk?: Tensor;
  bv?: Tensor;
  qNorm?: Tensor;
  kNorm?: Tensor;
  wo: Tensor;
  postNorm: Tensor;
  wGate: Tensor;
  wUp: Tensor;
  wDown: Tensor;
}

/** The sequence that callers without conversations (one model, one context: the CLI, a draft, a local model) use. */
export const DEFAULT_SEQUENCE = '';

/** One conversation's state in a stage: a KV cache per layer, (maxSeq, kvDim) each, and the positions they hold. */
export class Sequence {
  /** Next position to be written (= tokens processed so far). */
  pos = 0;
  /** Per layer: rows a branch saves before it overwrites them (allocated on the first branch). */
  scratch: KvCache[] = [];
  branch: { pos: number; from: number; limit: number; rows: number } | null = null;
  constructor(
    readonly id: string,
    readonly caches: KvCache[],
  ) {}
}

/** One conversation's rows in a batched pass (see Stage.forwardBatch). */
export interface BatchItem {
  seq: string;
  /** Token ids (first stage) or hidden rows (T, dim). */
  input: Int32Array | Float32Array;
  /** Last stage: 'last' or 'none' in a batch of several; 'all' only alone. Default 'last'. */
  logits?: LogitsMode;
  argmax?: boolean;
}

export interface StageRange {
  start: number;
  end: number;
} // 0-based layers, end exclusive

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

interface Deferred<T> {
  promise: Promise<T>;
  settled: boolean;
  /** The value, once resolved (a stage hands loaded weights over to its successor). */
  value?: T;
  resolve(v: T): void;
  reject(e: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void, reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // a failed load is reported where it is awaited
  const d: Deferred<T> = {
    promise,
    settled: false,
    resolve: (v) => {
      d.settled = true;
      d.value = v;
      resolve(v);
    },
    reject: (e) => {
      d.settled = true;
      reject(e);
    },
  };
  return d;
}

/** A macrotask boundary (setTimeout can be clamped to 4 ms; a MessageChannel hop is not). */
function yieldToEventLoop(): Promise<void> {
  if (typeof MessageChannel === 'undefined') return new Promise((r) => setTimeout(r, 0));
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(null);
  });
}

/** A thread-blocking backend yields after a pass's first layer, then whenever this much time has passed since it
 * last did: heartbeats and messages still get through several times a token, without a hop after every layer (30
 * hops a token cost a CPU decode step more than a millisecond; scripts/bench/engine-cpu.ts). */
const YIELD_EVERY_MS = 4;

/** Most positions a branch may write (its saved rows live in a per-layer scratch cache of this size). */
export const MAX_BRANCH_ROWS = 64;

export class Stage {
  readonly isFirst: boolean;
  readonly isLast: boolean;
  private readonly invFreq: Float32Array;
  private readonly layers: Deferred<LayerWeights>[] = [];
  private embedding = deferred<Tensor>();
  private head = deferred<{ norm: Tensor; lmHead: Tensor }>();
  private uploaded: (Tensor | KvCache)[] = [];
  private readonly seqs = new Map<string, Sequence>();

  constructor(
    readonly backend: Backend,
    readonly spec: ModelSpec,
    readonly range: StageRange,
    readonly maxSeq: number = Math.min(spec.maxSeqLen, 2048),
  ) {
    if (!(range.start >= 0 && range.end <= spec.nLayers && range.start < range.end)) {
      throw new ShoalError(
        'ERR_BAD_ARGS',
        `stage range [${range.start}, ${range.end}) is not within 0..${spec.nLayers} layers`,
      );
    }
    this.isFirst = range.start === 0;
    this.isLast = range.end === spec.nLayers;
    this.invFreq = ropeInvFreq(spec);
    for (let l = range.start; l < range.end; l++) this.layers.push(deferred());
  }

  /** Upload one layer's tensors (as read from the file) and make it available to forward(). */
  setLayer(layer: number, tensors: Map<string, HostTensor>): void {
    const idx = layer - this.range.start;
    if (idx < 0 || idx >= this.layers.length)
      throw new ShoalError(
        'ERR_BAD_ARGS',
        `layer ${layer} is not in this stage [${this.range.start}, ${this.range.end})`,
      );
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
    const w: LayerWeights = {
      inputNorm: up('input_layernorm.weight')!,
      wq: up('self_attn.q_proj.weight')!,
      wk: up('self_attn.k_proj.weight')!,
      wv: up('self_attn.v_proj.weight')!,
      bq: s.qkvBias ? up('self_attn.q_proj.bias') : undefined,
      bk: s.qkvBias ? up('self_attn.k_proj.bias') : undefined,
      bv: s.qkvBias ? up('self_attn.v_proj.bias') : undefined,
      qNorm: s.qkNorm ? up('self_attn.q_norm.weight') : undefined,
      kNorm: s.qkNorm ? up('self_attn.k_norm.weight') : undefined,
      wo: up('self_attn.o_proj.weight')!,
      postNorm: up('post_attention_layernorm.weight')!,
      wGate: up('mlp.gate_proj.weight')!,
      wUp: up('mlp.up_proj.weight')!,
      wDown: up('mlp.down_proj.weight')!,
    };
    this.layers[idx].resolve(w);
  }

  setEmbedding(t: HostTensor): void {
    if (t.name !== EMBED_TENSOR && t.name !== LM_HEAD_TENSOR)
      throw new ShoalError('ERR_BAD_ARGS', `unexpected embedding tensor ${t.name}`);
    const h = this.backend.uploadWeight(t);
    this.uploaded.push(h);
    this.embedding.resolve(h);
  }

  setHead(finalNorm: HostTensor, lmHead: HostTensor): void {
    if (finalNorm.name !== FINAL_NORM_TENSOR)
      throw new ShoalError('ERR_BAD_ARGS', `unexpected final norm tensor ${finalNorm.name}`);
    const norm = this.backend.uploadWeight(finalNorm);
    const lm = this.backend.uploadWeight(lmHead);
    this.uploaded.push(norm, lm);
    this.head.resolve({ norm, lmHead: lm });
  }

  /** Layers (0-based) of `range` this stage holds, loaded: a successor for `range` need not fetch them. */
  heldLayers(range: StageRange): number[] {
    const out: number[] = [];
    for (let l = Math.max(range.start, this.range.start); l < Math.min(range.end, this.range.end); l++)
      if (this.layers[l - this.range.start].value) out.push(l);
    return out;
  }

  /** The embedding and the head are loaded here (a successor that is first or last takes them over). */
  get holdsEmbedding(): boolean {
    return !!this.embedding.value;
  }

  get holdsHead(): boolean {
    return !!this.head.value;
  }

  /**
   * Give `next` (a stage of the same model on the same backend, for another range) every loaded weight it also
   * needs: layers in both ranges, the embedding if both are first, the head if both are last. They leave this
   * stage's upload list, so disposing this stage no longer frees them. Returns the layers handed over.
   */
  handOver(next: Stage): number[] {
    if (next.backend !== this.backend || JSON.stringify(next.spec) !== JSON.stringify(this.spec))
      throw new ShoalError('ERR_BAD_ARGS', 'a stage hands weights only to a stage of the same model and backend');
    const moved = new Set<Tensor | KvCache>();
    const layers = this.heldLayers(next.range);
    for (const l of layers) {
      const w = this.layers[l - this.range.start].value!;
      for (const t of Object.values(w)) if (t) moved.add(t as Tensor);
      next.layers[l - next.range.start].resolve(w);
    }
    if (this.isFirst && next.isFirst && this.embedding.value) {
      moved.add(this.embedding.value);
      next.embedding.resolve(this.embedding.value);
    }
    if (this.isLast && next.isLast && this.head.value) {
      moved.add(this.head.value.norm).add(this.head.value.lmHead);
      next.head.resolve(this.head.value);
    }
    this.uploaded = this.uploaded.filter((t) => !moved.has(t));
    next.uploaded.push(...moved);
    return layers;
  }

  /** True once every layer (and the embedding/head this stage needs) has arrived. */
  get loaded(): boolean {
    return (
      this.layers.every((l) => l.settled) &&
      (!this.isFirst || this.embedding.settled) &&
      (!this.isLast || this.head.settled)
    );
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
      if (this.isFirst) {
        this.setEmbedding(await src.loadEmbedding());
        onLoaded?.('embedding');
      }
      for (let l = this.range.start; l < this.range.end; l++) {
        this.setLayer(l, await src.loadLayer(l));
        onLoaded?.(`layer ${l}`);
      }
      if (this.isLast) {
        this.setHead(...(await src.loadHead()));
        onLoaded?.('head');
      }
    } catch (e) {
      this.failLoad(e);
      throw e;
    }
  }

  /** Positions the default sequence holds (callers with one context). */
  get pos(): number {
    return this.seqs.get(DEFAULT_SEQUENCE)?.pos ?? 0;
  }

  /** Bytes of KV cache one sequence takes on this stage (K and V, f32, every layer). */
  get kvBytesPerSequence(): number {
    return this.layers.length * 2 * this.maxSeq * this.spec.nKvHeads * this.spec.headDim * 4;
  }

  /** A conversation's state, created (caches allocated) on first use. */
  sequence(id: string): Sequence {
    let q = this.seqs.get(id);
    if (!q) {
      const kvDim = this.spec.nKvHeads * this.spec.headDim;
      q = new Sequence(
        id,
        this.layers.map(() => this.backend.createKvCache(this.maxSeq, kvDim)),
      );
      this.seqs.set(id, q);
    }
    return q;
  }

  hasSequence(id: string): boolean {
    return this.seqs.has(id);
  }

  sequenceIds(): string[] {
    return [...this.seqs.keys()];
  }

  /** Free a conversation's caches (memory ran short, or the conversation ended); it starts from 0 if it comes back. */
  dropSequence(id: string): void {
    const q = this.seqs.get(id);
    if (!q) return;
    this.seqs.delete(id);
    for (const c of [...q.caches, ...q.scratch]) this.backend.free(c);
  }

  /**
   * Run T new positions of one sequence through this stage. The first stage takes token ids; the others take the
   * hidden state (T, dim) from upstream.
   */
  async forward(
    input: Int32Array | Float32Array,
    opts: ForwardOptions = {},
    seq = DEFAULT_SEQUENCE,
  ): Promise<ForwardResult> {
    const r = await this.forwardBatch([{ seq, input, logits: opts.logits, argmax: opts.argmax }], opts);
    return { ...r.items[0], yieldedMs: r.yieldedMs };
  }

  /**
   * Run several sequences' new positions as one pass: the rows are stacked, every matmul reads each weight once
   * for all of them, and RoPE, the cache write and attention run per sequence on its own cache at its own position.
   * A row's result does not depend on the rows beside it, so a batched conversation computes what it would alone.
   */
  async forwardBatch(
    items: BatchItem[],
    opts: Pick<ForwardOptions, 'onLayer' | 'onWait'> = {},
  ): Promise<{ items: Omit<ForwardResult, 'yieldedMs'>[]; yieldedMs: number }> {
    const s = this.spec,
      b = this.backend;
    const rows = this.checkBatch(items);
    const seqs = items.map((it) => this.sequence(it.seq));
    const temps: Tensor[] = [];
    const keep = <X extends Tensor>(t: X): X => {
      temps.push(t);
      return t;
    };
    const offsets = rows.map((_, i) => rows.slice(0, i).reduce((n, r) => n + r, 0));
    let x = await this.stackedInput(items, keep, opts);
    const shape = { nHeads: s.nHeads, nKvHeads: s.nKvHeads, headDim: s.headDim };
    /** A sequence's rows of a stacked tensor (the tensor itself when the batch has one sequence). */
    const part = (t: Tensor, i: number): Tensor => (items.length === 1 ? t : keep(b.sliceRows(t, offsets[i], rows[i])));
    let yieldedMs = 0,
      lastYield = performance.now();
    try {
      for (let i = 0; i < this.layers.length; i++) {
        const w = await this.waitFor(this.layers[i], this.range.start + i, opts);
        const norm = { weight: w.inputNorm, eps: s.normEps };
        // attention block: x + o(attn(rope(q), cache))
        const q = keep(b.matmul(x, w.wq, { norm, bias: w.bq }));
        const k = keep(b.matmul(x, w.wk, { norm, bias: w.bk }));
        const v = keep(b.matmul(x, w.wv, { norm, bias: w.bv }));
        const qkNorm = w.qNorm && w.kNorm ? { q: w.qNorm, k: w.kNorm, eps: s.normEps } : undefined;
        const atts = seqs.map((seq, j) => {
          const cache = seq.caches[i];
          const qr = keep(
            b.ropeAndCache(part(q, j), part(k, j), part(v, j), cache, seq.pos, this.invFreq, shape, qkNorm),
          );
          return keep(b.attention(qr, cache, seq.pos, shape));
        });
        const att = atts.length === 1 ? atts[0] : keep(b.concatRows(atts));
        const h = keep(b.matmul(att, w.wo, { residual: x }));
        // MLP block: h + down(silu(gate(n(h))) * up(n(h)))
        const g = keep(b.gateUp(h, w.wGate, w.wUp, { weight: w.postNorm, eps: s.normEps }));
        x = keep(b.matmul(g, w.wDown, { residual: h }));
        opts.onLayer?.(this.range.start + i);
        // A backend that computes on the page's thread: yield between layers so heartbeats and messages get through.
        if (b.blocksThread && (i === 0 || performance.now() - lastYield >= YIELD_EVERY_MS)) {
          const t = performance.now();
          await yieldToEventLoop();
          lastYield = performance.now();
          yieldedMs += lastYield - t;
        }
      }
      seqs.forEach((seq, j) => (seq.pos += rows[j]));
      if (!this.isLast) {
        const hidden = await b.read(x);
        return {
          items: items.map((_, j) => ({
            hidden: items.length === 1 ? hidden : hidden.slice(offsets[j] * s.dim, (offsets[j] + rows[j]) * s.dim),
          })),
          yieldedMs,
        };
      }
      const head = await this.waitFor(this.head, this.range.end - 1, opts);
      const out =
        items.length === 1
          ? await this.headOne(x, rows[0], items[0], head, keep)
          : await this.headBatch(x, rows, offsets, items, head, keep);
      return { items: out, yieldedMs };
    } finally {
      for (const t of temps) b.free(t);
    }
  }

  /** The batch's inputs as one (rows, dim) tensor: embedded token ids on the first stage, else the hidden rows. */
  private async stackedInput(
    items: BatchItem[],
    keep: <X extends Tensor>(t: X) => X,
    opts: Pick<ForwardOptions, 'onWait'>,
  ): Promise<Tensor> {
    const b = this.backend;
    if (!this.isFirst) {
      const rows = items.map((it) => it.input as Float32Array);
      const hidden = stack(rows, Float32Array);
      return keep(b.fromHost(hidden, [hidden.length / this.spec.dim, this.spec.dim]));
    }
    const parts = items.map((it) => it.input as Int32Array);
    const ids = stack(parts, Int32Array);
    const idsTensor = keep(b.fromHost(ids, [ids.length]));
    return keep(b.embed(idsTensor, await this.waitFor(this.embedding, this.range.start, opts)));
  }

  /** Rows per item, after checking the batch: distinct sequences, whole rows, room in each cache and branch. */
  private checkBatch(items: BatchItem[]): number[] {
    const s = this.spec;
    if (items.length === 0) throw new ShoalError('ERR_BAD_ARGS', 'an empty batch');
    if (new Set(items.map((it) => it.seq)).size !== items.length)
      throw new ShoalError('ERR_BAD_ARGS', 'a batch holds one step per sequence');
    return items.map((it) => {
      const T = this.isFirst ? it.input.length : it.input.length / s.dim;
      if (!Number.isInteger(T) || T < 1)
        throw new ShoalError('ERR_BAD_ARGS', `stage input of ${it.input.length} values is not a whole number of rows`);
      if (this.isFirst) {
        if (!(it.input instanceof Int32Array))
          throw new ShoalError('ERR_BAD_ARGS', 'the first stage takes token ids (Int32Array)');
        // Checked here for every backend: a GPU gather would read past the table silently.
        for (const id of it.input)
          if (!(id >= 0 && id < s.vocabSize))
            throw new ShoalError('ERR_BAD_ARGS', `token id ${id} is outside the vocabulary (${s.vocabSize})`);
      } else if (!(it.input instanceof Float32Array))
        throw new ShoalError('ERR_BAD_ARGS', 'a downstream stage takes a hidden state (Float32Array)');
      if (items.length > 1 && it.logits === 'all')
        throw new ShoalError('ERR_BAD_ARGS', "every row's logits are only read for a pass of one sequence");
      const q = this.seqs.get(it.seq),
        pos = q?.pos ?? 0;
      if (pos + T > this.maxSeq)
        throw new ShoalError('ERR_BAD_ARGS', `context full: ${pos + T} positions exceed ${this.maxSeq}`);
      const br = q?.branch;
      if (br && pos + T > br.limit)
        throw new ShoalError(
          'ERR_BAD_ARGS',
          `this branch holds ${br.limit - br.from} positions from ${br.from}; ${pos + T - br.from} asked`,
        );
      return T;
    });
  }

  /** The LM head for one sequence: every row's logits, or the last row's, and its argmax on the device. */
  private async headOne(
    x: Tensor,
    T: number,
    it: BatchItem,
    head: { norm: Tensor; lmHead: Tensor },
    keep: <X extends Tensor>(t: X) => X,
  ): Promise<Omit<ForwardResult, 'yieldedMs'>[]> {
    const b = this.backend,
      norm = { weight: head.norm, eps: this.spec.normEps };
    const mode = it.logits ?? 'last';
    const out: Omit<ForwardResult, 'yieldedMs'> = {};
    if (mode === 'all') {
      const logits = keep(b.matmul(x, head.lmHead, { norm }));
      const lastLogits = T === 1 ? logits : keep(b.sliceRows(logits, T - 1, 1));
      if (it.argmax) out.nextToken = (await b.readInt(keep(b.argmax(lastLogits))))[0];
      out.logits = await b.read(logits);
    } else if (mode === 'last' || it.argmax) {
      const last = T === 1 ? x : keep(b.sliceRows(x, T - 1, 1));
      const lastLogits = keep(b.matmul(last, head.lmHead, { norm }));
      if (it.argmax) out.nextToken = (await b.readInt(keep(b.argmax(lastLogits))))[0];
      if (mode === 'last') out.logits = await b.read(lastLogits);
    }
    return [out];
  }

  /** The LM head for a batch: the last row of every sequence that wants a token, in one matmul. */
  private async headBatch(
    x: Tensor,
    rows: number[],
    offsets: number[],
    items: BatchItem[],
    head: { norm: Tensor; lmHead: Tensor },
    keep: <X extends Tensor>(t: X) => X,
  ): Promise<Omit<ForwardResult, 'yieldedMs'>[]> {
    const b = this.backend,
      V = this.spec.vocabSize;
    const want = items.map((it, j) => ((it.logits ?? 'last') === 'last' || it.argmax ? j : -1)).filter((j) => j >= 0);
    const out: Omit<ForwardResult, 'yieldedMs'>[] = items.map(() => ({}));
    if (want.length === 0) return out;
    const lasts = keep(b.concatRows(want.map((j) => keep(b.sliceRows(x, offsets[j] + rows[j] - 1, 1)))));
    const logits = keep(b.matmul(lasts, head.lmHead, { norm: { weight: head.norm, eps: this.spec.normEps } }));
    const tokens = want.some((j) => items[j].argmax) ? await b.readInt(keep(b.argmax(logits))) : null;
    const values = want.some((j) => (items[j].logits ?? 'last') === 'last') ? await b.read(logits) : null;
    want.forEach((j, r) => {
      if (items[j].argmax && tokens) out[j].nextToken = tokens[r];
      if ((items[j].logits ?? 'last') === 'last' && values) out[j].logits = values.slice(r * V, (r + 1) * V);
    });
    return out;
  }

  /** Await weights that may still be loading, telling the caller (timelines) when compute is blocked on them. */
  private async waitFor<T>(d: Deferred<T>, layer: number, opts: Pick<ForwardOptions, 'onWait'>): Promise<T> {
    if (d.settled) return d.promise;
    opts.onWait?.(layer, 'start');
    try {
      return await d.promise;
    } finally {
      opts.onWait?.(layer, 'end');
    }
  }

  /**
   * Start a branch of a sequence at `pos`: later forward() calls write at most `rows` positions from there, and
   * endBranch() puts back the cache rows they overwrote and the current position. Speculative decoding verifies
   * (and drafts) an alternative continuation this way while the main line's later positions stay in the cache.
   */
  async beginBranch(pos: number, rows: number, seq = DEFAULT_SEQUENCE): Promise<void> {
    const q = this.sequence(seq);
    if (q.branch) throw new ShoalError('ERR_BAD_ARGS', 'a branch is already open on this stage');
    if (!(Number.isInteger(pos) && pos >= 0 && pos <= q.pos))
      throw new ShoalError('ERR_BAD_ARGS', `cannot branch at ${pos} (at ${q.pos})`);
    if (!(Number.isInteger(rows) && rows >= 1 && rows <= MAX_BRANCH_ROWS && pos + rows <= this.maxSeq)) {
      throw new ShoalError(
        'ERR_BAD_ARGS',
        `a branch of ${rows} positions at ${pos} must hold 1..${MAX_BRANCH_ROWS} positions within ${this.maxSeq}`,
      );
    }
    const s = this.spec;
    const saved = Math.min(rows, q.pos - pos); // rows past the current position hold nothing to keep
    for (let i = 0; i < this.layers.length; i++) {
      await this.layers[i].promise;
      q.scratch[i] ??= this.backend.createKvCache(MAX_BRANCH_ROWS, s.nKvHeads * s.headDim);
      if (saved > 0) this.backend.copyKvRows(q.caches[i], pos, q.scratch[i], 0, saved);
    }
    q.branch = { pos: q.pos, from: pos, limit: pos + rows, rows: saved };
    q.pos = pos;
  }

  /** Close the sequence's branch: the overwritten rows and the position from before beginBranch() come back. */
  async endBranch(seq = DEFAULT_SEQUENCE): Promise<void> {
    const q = this.seqs.get(seq);
    const br = q?.branch;
    if (!q || !br) throw new ShoalError('ERR_BAD_ARGS', 'no branch is open on this stage');
    q.branch = null;
    for (let i = 0; i < this.layers.length; i++) {
      await this.layers[i].promise;
      if (br.rows > 0) this.backend.copyKvRows(q.scratch[i], 0, q.caches[i], br.from, br.rows);
    }
    q.pos = br.pos;
  }

  /** Forget every position of a sequence from `pos` on (speculative decoding rejects drafted tokens this way). */
  rollback(pos: number, seq = DEFAULT_SEQUENCE): void {
    const q = this.sequence(seq);
    if (!(pos >= 0 && pos <= q.pos)) throw new ShoalError('ERR_BAD_ARGS', `cannot roll back to ${pos} (at ${q.pos})`);
    // Rows >= pos are simply overwritten by later writes; attention only reads rows < pos + T.
    q.pos = pos;
  }

  /** Start a sequence over (keeps the weights and the caches' memory). */
  reset(seq = DEFAULT_SEQUENCE): void {
    const q = this.seqs.get(seq);
    if (!q) return;
    q.branch = null;
    q.pos = 0;
  }

  /** Drop every weight and cache from the device. */
  dispose(): void {
    for (const id of [...this.seqs.keys()]) this.dropSequence(id);
    for (const t of this.uploaded) this.backend.free(t);
    this.uploaded = [];
  }
}

/** Concatenate typed arrays (a batch's inputs on the host; one array is passed through). */
function stack<A extends Int32Array | Float32Array>(parts: A[], Ctor: { new (n: number): A }): A {
  if (parts.length === 1) return parts[0];
  const out = new Ctor(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
