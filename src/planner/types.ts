// Planner vocabulary: scenarios (the CLI contract's input), device profiles, per-layer costs and plans.

export type CostModelName = 'csgo' | 'shoal';
export type StrategyName = 'csgo' | 'even' | 'harmonic' | 'memory' | 'single' | 'compute';
export const STRATEGIES: readonly StrategyName[] = ['csgo', 'even', 'harmonic', 'memory', 'single', 'compute'];

/** One device as the planner sees it (a tab, a phone, a GPU box). All rates are effective, measured values. */
export interface DeviceProfile {
  id: string;
  /** Effective FLOP/s (the paper's c_k, utilisation already folded in). */
  flops: number;
  /** Weight-loading speed (disk / network to the tab), bytes per second: the paper's r_k. */
  loadBytesPerSec: number;
  memoryBytes: number;
  uplinkBytesPerSec: number;
  downlinkBytesPerSec: number;
  /** Host -> GPU upload speed ("shoal" only); absent = upload takes no time. */
  uploadBytesPerSec?: number;
  /** One-way latency of this device's link to the access point ("shoal" only); a hop between two devices pays both. */
  latencySec?: number;
  /**
   * Units this device gets at another rate than loadBytesPerSec, bytes/s: from its cache or a peer, or Infinity for
   * what it already holds in memory (so a re-plan moves only what is missing). Layers 0-based.
   */
  unitBytesPerSec?: UnitRates;
}

export interface UnitRates {
  embedding?: number;
  head?: number;
  layers?: Record<number, number>;
}

/** Seconds `dev` takes to bring in `bytes` of a unit (a 0-based layer, the embedding or the head). */
export function unitLoadSec(dev: DeviceProfile, unit: number | 'embedding' | 'head', bytes: number): number {
  const r = dev.unitBytesPerSec;
  const rate = (r && (typeof unit === 'number' ? r.layers?.[unit] : r[unit])) ?? dev.loadBytesPerSec;
  return bytes / rate;
}

/** Cost of one decoder layer. The first three are the paper's P_l, W_l, A_l; the rest are used by "shoal" only. */
export interface LayerCost {
  paramBytes: number;
  /** FLOPs of this layer for the whole prompt (prefill). */
  flops: number;
  /** Bytes of this layer's output activations for the whole prompt (what crosses a cut after this layer). */
  activationBytes: number;
  /** FLOPs of one decode step (one token against the KV cache). */
  decodeFlops?: number;
  /** KV-cache bytes per token of context. */
  kvBytesPerToken?: number;
  /** Scratch memory while this layer runs the prefill. */
  workspaceBytes?: number;
  /** Activation bytes crossing a cut after this layer for one decode step. */
  decodeActivationBytes?: number;
}

/** The embedding (first stage) or the final norm + LM head (last stage), "shoal" only. */
export interface EdgeCost {
  paramBytes: number;
  /** FLOPs during the prefill (the head computes logits for the last position only). */
  flops: number;
  decodeFlops: number;
  /** Scratch memory (logits) beyond the parameters. */
  workspaceBytes: number;
}

/**
 * The bytes a model's weight files really hold (block formats, mixed dtypes): per layer, the embedding, and the
 * head's own (final norm + a separate LM head: no matrix when tied, the embedding is counted for it). With a
 * config, these replace bytesPerParam x parameters.
 */
export interface WeightBytes {
  layers: number[];
  embedding: number;
  head: number;
}

export type ScenarioModel =
  | { config: unknown; bytesPerParam: number; weightBytes?: WeightBytes }
  | { layers: LayerCost[]; embedding?: Partial<EdgeCost>; head?: Partial<EdgeCost>; tiedEmbeddings?: boolean };

/** The plan CLI's scenario (shared/ARCHITECTURE.md), plus optional "shoal" knobs with documented defaults. */
export interface Scenario {
  costModel: CostModelName;
  promptTokens: number;
  model: ScenarioModel;
  devices: DeviceProfile[];
  /** "shoal": tokens generated after the first; objective = TTFT + decodeTokens x per-token latency. Default 0
   * (TTFT only). */
  decodeTokens?: number;
  /** "shoal": KV-cache context the memory check reserves. Default promptTokens + decodeTokens. */
  contextTokens?: number;
  /** "shoal": the last stage returns the last position's logits (f32) instead of one token id. Default false. */
  returnLogits?: boolean;
  /** "shoal", config models: bytes per KV-cache value. Default 4 (the engine keeps its cache in f32). */
  kvBytesPerValue?: number;
  /** "shoal", config models: bytes per activation value on the wire. Default 4 (f32 + header, ARCHITECTURE.md). */
  activationBytesPerValue?: number;
  /** csgo strategy: run the exact DP while its estimated work stays under this many inner steps, else the heuristic. */
  exactWorkLimit?: number;
  /** csgo strategy past the exact limit: the heuristic's time budget. Default 400 ms. */
  heuristicBudgetMs?: number;
}

/** One stage: a device and its layers, 1-based inclusive as in the CLI contract and the paper. */
export interface PlanStage {
  device: string;
  first: number;
  last: number;
}

export interface Plan {
  strategy: StrategyName;
  predictedSeconds: number;
  stages: PlanStage[];
  /** csgo strategy: whether the exact DP or the heuristic produced it. */
  method?: 'exact' | 'heuristic';
  /** False when the plan breaks a device's memory (only baselines can; `single` ignores memory as in the paper). */
  feasible: boolean;
  /** "shoal": time to first token and steady per-token latency behind predictedSeconds. */
  ttftSeconds?: number;
  perTokenSeconds?: number;
}

/** A stage as the engine wants it: layers [start, end), 0-based. */
export interface EngineStage {
  device: string;
  start: number;
  end: number;
}
