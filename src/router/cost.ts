// Napkin cost of one model (or one stage range of it) per token, for the latency predictor: matmul FLOPs
// (2 x weights touched), the bytes of one activation row that crosses a hop.
import type { ModelSpec } from '../model/config.ts';

/** Weights of one transformer layer (q, k, v, o, gate, up, down), in parameters. */
export function layerParams(spec: ModelSpec): number {
  const kvDim = spec.nKvHeads * spec.headDim;
  const qDim = spec.nHeads * spec.headDim;
  return spec.dim * qDim + 2 * spec.dim * kvDim + qDim * spec.dim + 3 * spec.dim * spec.hiddenDim;
}

/** FLOPs one token costs in layers [start, end), plus the LM head when the range ends the model. */
export function flopsPerToken(spec: ModelSpec, start = 0, end = spec.nLayers): number {
  const head = end === spec.nLayers ? 2 * spec.dim * spec.vocabSize : 0;
  return 2 * layerParams(spec) * (end - start) + head;
}

/** FLOPs of one token's attention in layers [start, end) per context position it attends over (q.k and weighted v). */
export function attendFlopsPerPosition(spec: ModelSpec, start = 0, end = spec.nLayers): number {
  return 4 * spec.nHeads * spec.headDim * (end - start);
}

/** Bytes of one hidden-state row sent between stages (f32). */
export function activationBytesPerToken(spec: ModelSpec): number {
  return spec.dim * 4;
}
