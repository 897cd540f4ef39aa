// Per-layer parameter bytes, FLOPs and activation bytes of a ModelSpec, in the paper's form ("csgo") or ours ("shoal").
import { layerParamCount, type ModelSpec } from '../model/config.ts';
import type { CostModelName, EdgeCost, LayerCost, WeightBytes } from './types.ts';

export interface LayerCostOptions {
  costModel: CostModelName;
  promptTokens: number;
  bytesPerParam: number;
  /** "shoal": context the KV cache must hold. Default promptTokens. */
  contextTokens?: number;
  /** "shoal": default 4 (f32 cache). */
  kvBytesPerValue?: number;
  /** Default 2 for "csgo" (the paper's bf16 factor), 4 for "shoal" (f32 on the wire). */
  activationBytesPerValue?: number;
  /** "shoal": average context a decode step attends over. Default contextTokens. */
  decodeContextTokens?: number;
  /** The files' real bytes (quantized or mixed-dtype weights): they replace bytesPerParam x parameters. */
  weightBytes?: WeightBytes;
}

export interface ModelCosts {
  layers: LayerCost[];
  embedding: EdgeCost;
  head: EdgeCost;
  tiedEmbeddings: boolean;
}

const ZERO_EDGE: EdgeCost = { paramBytes: 0, flops: 0, decodeFlops: 0, workspaceBytes: 0 };

/**
 * "csgo" (PAPERS.md section 1, the bf16 factor folded into bytesPerParam / activation bytes):
 *   W_l = 4 t d_head (d_model h_q + d_model h_k + t h_q) + 6 t d_model d_ff
 *   P_l = bytesPerParam * (2 d_model d_head (h_q + h_k) + 3 d_model d_ff)   (= 4 d d_head (h_q+h_k) + 6 d d_ff at bf16)
 *   A_l = activationBytesPerValue * t * d_model                            (= 2 t d_model at bf16)
 * No embedding, no head (the paper leaves them out).
 *
 * "shoal" (ours, what the engine actually holds and runs):
 *   P_l = bytesPerParam * every tensor of the layer (norms, biases, q/k norms included: layerParamCount)
 *   W_l = 2 t M + 4 t^2 d_head h_q, with M = matmul weights of the layer; the attention term is the full
 *         t x t square (scores and weighted sum), as an engine that masks rather than skips computes it
 *   A_l = activationBytesPerValue * t * d_model, decode: activationBytesPerValue * d_model
 *   decode W_l = 2 M + 4 c d_head h_q, c = decodeContextTokens (one query against c cached positions)
 *   KV_l = 2 h_k d_head kvBytesPerValue bytes per token of context
 *   workspace_l = 4 t (2 d_model + d_q + 2 d_kv + 2 d_ff) + 4 h_q t^2  (f32 hidden, q/k/v, MLP gate/up, and the
 *         score matrices of all heads of one layer: an upper bound for an engine that materialises them)
 *   embedding: vocab d_model bytesPerParam, no FLOPs (a lookup);
 *   head: final norm + LM head (vocab d_model, the same matrix again if tied), 2 d_model vocab FLOPs for the
 *         last position only, 4 vocab bytes of logits.
 */
export function layerCosts(spec: ModelSpec, opts: LayerCostOptions): ModelCosts {
  const t = opts.promptTokens;
  const d = spec.dim;
  const qDim = spec.nHeads * spec.headDim;
  const kvDim = spec.nKvHeads * spec.headDim;
  if (opts.costModel === 'csgo') {
    const actBytes = opts.activationBytesPerValue ?? 2;
    const paramBytes =
      opts.bytesPerParam * (2 * d * spec.headDim * (spec.nHeads + spec.nKvHeads) + 3 * d * spec.hiddenDim);
    const flops =
      4 * t * spec.headDim * (d * spec.nHeads + d * spec.nKvHeads + t * spec.nHeads) + 6 * t * d * spec.hiddenDim;
    const layer: LayerCost = { paramBytes, flops, activationBytes: actBytes * t * d };
    return {
      layers: Array.from({ length: spec.nLayers }, () => ({ ...layer })),
      embedding: { ...ZERO_EDGE },
      head: { ...ZERO_EDGE },
      tiedEmbeddings: false,
    };
  }
  const actBytes = opts.activationBytesPerValue ?? 4;
  const kvBytes = opts.kvBytesPerValue ?? 4;
  const ctx = opts.contextTokens ?? t;
  const decodeCtx = opts.decodeContextTokens ?? ctx;
  const matmul = d * (qDim + 2 * kvDim) + qDim * d + 3 * d * spec.hiddenDim;
  const layer: LayerCost = {
    paramBytes: opts.bytesPerParam * layerParamCount(spec),
    flops: 2 * t * matmul + 4 * t * t * spec.headDim * spec.nHeads,
    activationBytes: actBytes * t * d,
    decodeFlops: 2 * matmul + 4 * decodeCtx * spec.headDim * spec.nHeads,
    kvBytesPerToken: 2 * kvDim * kvBytes,
    workspaceBytes: 4 * t * (2 * d + qDim + 2 * kvDim + 2 * spec.hiddenDim) + 4 * spec.nHeads * t * t,
    decodeActivationBytes: actBytes * d,
  };
  const matrixBytes = opts.bytesPerParam * spec.vocabSize * d;
  const real = opts.weightBytes;
  return {
    layers: Array.from({ length: spec.nLayers }, (_, l) => ({
      ...layer,
      paramBytes: real?.layers[l] ?? layer.paramBytes,
    })),
    embedding: { paramBytes: real?.embedding ?? matrixBytes, flops: 0, decodeFlops: 0, workspaceBytes: 0 },
    head: {
      // tied: the head re-reads the embedding, which a last stage that is also the first already holds (costModel)
      paramBytes: real ? real.head + (spec.tiedEmbeddings ? real.embedding : 0) : matrixBytes + opts.bytesPerParam * d,
      flops: 2 * d * spec.vocabSize,
      decodeFlops: 2 * d * spec.vocabSize,
      workspaceBytes: 4 * spec.vocabSize,
    },
    tiedEmbeddings: spec.tiedEmbeddings,
  };
}
