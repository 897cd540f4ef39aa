// Scenario validation (ERR_BAD_SCENARIO naming the field) and compilation into the Problem every planner part reads.
import { ShoalError, isShoalError, errorMessage } from '../errors.ts';
import { parseConfig } from '../model/config.ts';
import { layerCosts, type LayerCostOptions } from './layerCosts.ts';
import type { CostModelName, DeviceProfile, EdgeCost, LayerCost, Scenario, UnitRates, WeightBytes } from './types.ts';

/** Bytes of one token id on the wire (int32). */
export const TOKEN_ID_BYTES = 4;
/** Exact DP work budget (inner steps) before the csgo strategy switches to the heuristic: K = 10, L = 80 is ~7e7. */
export const DEFAULT_EXACT_WORK_LIMIT = 1.2e8;
export const DEFAULT_HEURISTIC_BUDGET_MS = 400;
const MAX_DEVICES = 256;
const MAX_LAYERS = 4096;

/** A validated scenario with every default filled in; what the cost model, DP, baselines and simulator read. */
export interface Problem {
  costModel: CostModelName;
  promptTokens: number;
  decodeTokens: number;
  contextTokens: number;
  devices: DeviceProfile[];
  layers: Required<LayerCost>[];
  embedding: EdgeCost;
  head: EdgeCost;
  tiedEmbeddings: boolean;
  /** Prompt token ids into the first stage ("shoal"). */
  tokenInBytes: number;
  /** What the last stage returns after the prefill: a token id or the last position's logits ("shoal"). */
  tokenOutBytes: number;
  exactWorkLimit: number;
  heuristicBudgetMs: number;
}

function bad(field: string, why: string): never {
  throw new ShoalError('ERR_BAD_SCENARIO', `scenario: ${field} ${why}`);
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(field, 'must be an object');
  return v as Record<string, unknown>;
}

function num(
  o: Record<string, unknown>,
  key: string,
  field: string,
  opts: { positive?: boolean; integer?: boolean; optional?: boolean } = {},
): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (opts.optional) return undefined;
    bad(field, 'is missing');
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) bad(field, `must be a finite number (got ${JSON.stringify(v)})`);
  if (opts.integer && !Number.isInteger(v)) bad(field, `must be an integer (got ${v})`);
  if (opts.positive ? v <= 0 : v < 0) bad(field, `must be ${opts.positive ? 'positive' : 'non-negative'} (got ${v})`);
  return v;
}

function req(
  o: Record<string, unknown>,
  key: string,
  field: string,
  opts: { positive?: boolean; integer?: boolean } = {},
): number {
  return num(o, key, field, opts) as number;
}

function parseDevice(raw: unknown, i: number): DeviceProfile {
  const f = `devices[${i}]`;
  const o = obj(raw, f);
  if (typeof o.id !== 'string' || o.id.length === 0) bad(`${f}.id`, 'must be a non-empty string');
  const dev: DeviceProfile = {
    id: o.id,
    flops: req(o, 'flops', `${f}.flops`, { positive: true }),
    loadBytesPerSec: req(o, 'loadBytesPerSec', `${f}.loadBytesPerSec`, { positive: true }),
    memoryBytes: req(o, 'memoryBytes', `${f}.memoryBytes`),
    uplinkBytesPerSec: req(o, 'uplinkBytesPerSec', `${f}.uplinkBytesPerSec`, { positive: true }),
    downlinkBytesPerSec: req(o, 'downlinkBytesPerSec', `${f}.downlinkBytesPerSec`, { positive: true }),
  };
  const upload = num(o, 'uploadBytesPerSec', `${f}.uploadBytesPerSec`, { positive: true, optional: true });
  if (upload !== undefined) dev.uploadBytesPerSec = upload;
  const latency = num(o, 'latencySec', `${f}.latencySec`, { optional: true });
  if (latency !== undefined) dev.latencySec = latency;
  if (o.unitBytesPerSec !== undefined) dev.unitBytesPerSec = parseUnitRates(o.unitBytesPerSec, `${f}.unitBytesPerSec`);
  return dev;
}

/** Per-unit load rates: positive bytes/s (Infinity: held in memory), layers keyed by 0-based index. */
function parseUnitRates(raw: unknown, f: string): UnitRates {
  const o = obj(raw, f);
  const rate = (x: unknown, at: string): number => {
    if (typeof x !== 'number' || !(x > 0)) bad(at, 'must be a positive number of bytes/s');
    return x;
  };
  const out: UnitRates = {};
  if (o.embedding !== undefined) out.embedding = rate(o.embedding, `${f}.embedding`);
  if (o.head !== undefined) out.head = rate(o.head, `${f}.head`);
  if (o.layers !== undefined) {
    out.layers = {};
    for (const [k, x] of Object.entries(obj(o.layers, `${f}.layers`))) {
      if (!/^\d+$/.test(k)) bad(`${f}.layers`, `has key "${k}" (layers are 0-based indices)`);
      out.layers[Number(k)] = rate(x, `${f}.layers.${k}`);
    }
  }
  return out;
}

function parseLayer(raw: unknown, i: number, promptTokens: number): Required<LayerCost> {
  const f = `model.layers[${i}]`;
  const o = obj(raw, f);
  const flops = req(o, 'flops', `${f}.flops`);
  const activationBytes = req(o, 'activationBytes', `${f}.activationBytes`);
  return {
    paramBytes: req(o, 'paramBytes', `${f}.paramBytes`),
    flops,
    activationBytes,
    // Explicit layers rarely give decode figures: one prompt token's share is the natural default.
    decodeFlops: num(o, 'decodeFlops', `${f}.decodeFlops`, { optional: true }) ?? flops / promptTokens,
    kvBytesPerToken: num(o, 'kvBytesPerToken', `${f}.kvBytesPerToken`, { optional: true }) ?? 0,
    workspaceBytes: num(o, 'workspaceBytes', `${f}.workspaceBytes`, { optional: true }) ?? 0,
    decodeActivationBytes:
      num(o, 'decodeActivationBytes', `${f}.decodeActivationBytes`, { optional: true }) ??
      activationBytes / promptTokens,
  };
}

function parseEdge(raw: unknown, field: string): EdgeCost {
  if (raw === undefined || raw === null) return { paramBytes: 0, flops: 0, decodeFlops: 0, workspaceBytes: 0 };
  const o = obj(raw, field);
  const flops = num(o, 'flops', `${field}.flops`, { optional: true }) ?? 0;
  return {
    paramBytes: num(o, 'paramBytes', `${field}.paramBytes`, { optional: true }) ?? 0,
    flops,
    decodeFlops: num(o, 'decodeFlops', `${field}.decodeFlops`, { optional: true }) ?? flops,
    workspaceBytes: num(o, 'workspaceBytes', `${field}.workspaceBytes`, { optional: true }) ?? 0,
  };
}

/** The device list: 1 to MAX_DEVICES devices with distinct ids. */
function parseDevices(raw: unknown): DeviceProfile[] {
  if (!Array.isArray(raw) || raw.length === 0) bad('devices', 'must be a non-empty array');
  if (raw.length > MAX_DEVICES) bad('devices', `has ${raw.length} entries (at most ${MAX_DEVICES})`);
  const devices = raw.map(parseDevice);
  const seen = new Set<string>();
  for (const [i, d] of devices.entries()) {
    if (seen.has(d.id)) bad(`devices[${i}].id`, `"${d.id}" is used twice`);
    seen.add(d.id);
  }
  return devices;
}

/** model.weightBytes: {layers: [n per layer], embedding: n, head: n}, non-negative byte counts. */
function parseWeightBytes(raw: unknown, nLayers: number): WeightBytes | undefined {
  if (raw === undefined) return undefined;
  const w = obj(raw, 'model.weightBytes');
  const ok = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (!Array.isArray(w.layers) || w.layers.length !== nLayers || !w.layers.every(ok))
    bad('model.weightBytes.layers', `must be ${nLayers} non-negative byte counts, one per layer`);
  if (!ok(w.embedding) || !ok(w.head))
    bad('model.weightBytes', 'needs non-negative "embedding" and "head" byte counts');
  return { layers: w.layers as number[], embedding: w.embedding as number, head: w.head as number };
}

interface ParsedModel {
  layers: Required<LayerCost>[];
  embedding: EdgeCost;
  head: EdgeCost;
  tiedEmbeddings: boolean;
}

/** The model's costs: computed from a config.json (with bytesPerParam), or given layer by layer. */
function parseModel(model: Record<string, unknown>, o: Omit<LayerCostOptions, 'bytesPerParam'>): ParsedModel {
  if (model.config !== undefined) {
    let spec;
    try {
      spec = parseConfig(model.config);
    } catch (e) {
      bad('model.config', isShoalError(e) ? errorMessage(e) : 'is not a valid config.json');
    }
    const bytesPerParam = req(model, 'bytesPerParam', 'model.bytesPerParam', { positive: true });
    const weightBytes = parseWeightBytes(model.weightBytes, spec.nLayers);
    const costs = layerCosts(spec, { ...o, bytesPerParam, weightBytes });
    return { ...costs, layers: costs.layers as Required<LayerCost>[] };
  }
  if (model.layers === undefined) bad('model', 'needs either "config" (with "bytesPerParam") or "layers"');
  if (!Array.isArray(model.layers) || model.layers.length === 0) bad('model.layers', 'must be a non-empty array');
  if (model.layers.length > MAX_LAYERS)
    bad('model.layers', `has ${model.layers.length} entries (at most ${MAX_LAYERS})`);
  const layers = model.layers.map((l, i) => parseLayer(l, i, o.promptTokens));
  const embedding = parseEdge(model.embedding, 'model.embedding');
  const head = parseEdge(model.head, 'model.head');
  if (model.tiedEmbeddings !== undefined && typeof model.tiedEmbeddings !== 'boolean')
    bad('model.tiedEmbeddings', 'must be true or false');
  return { layers, embedding, head, tiedEmbeddings: model.tiedEmbeddings === true };
}

/** Validate a parsed scenario JSON; throws ShoalError('ERR_BAD_SCENARIO') naming the first bad field. */
export function compileScenario(raw: unknown): Problem {
  const s = obj(raw, '(root)');
  const costModel = s.costModel;
  if (costModel !== 'csgo' && costModel !== 'shoal')
    bad('costModel', `must be "csgo" or "shoal" (got ${JSON.stringify(costModel)})`);
  const promptTokens = req(s, 'promptTokens', 'promptTokens', { positive: true, integer: true });
  const decodeTokens = num(s, 'decodeTokens', 'decodeTokens', { integer: true, optional: true }) ?? 0;
  if (costModel === 'csgo' && decodeTokens > 0)
    bad('decodeTokens', 'needs costModel "shoal" (the paper models the prefill only)');
  const contextTokens =
    num(s, 'contextTokens', 'contextTokens', { integer: true, positive: true, optional: true }) ??
    promptTokens + decodeTokens;
  const kvBytesPerValue = num(s, 'kvBytesPerValue', 'kvBytesPerValue', { positive: true, optional: true });
  const activationBytesPerValue = num(s, 'activationBytesPerValue', 'activationBytesPerValue', {
    positive: true,
    optional: true,
  });
  if (s.returnLogits !== undefined && typeof s.returnLogits !== 'boolean') bad('returnLogits', 'must be true or false');
  const exactWorkLimit = num(s, 'exactWorkLimit', 'exactWorkLimit', { optional: true }) ?? DEFAULT_EXACT_WORK_LIMIT;
  const heuristicBudgetMs =
    num(s, 'heuristicBudgetMs', 'heuristicBudgetMs', { positive: true, optional: true }) ?? DEFAULT_HEURISTIC_BUDGET_MS;

  const devices = parseDevices(s.devices);
  const { layers, embedding, head, tiedEmbeddings } = parseModel(obj(s.model, 'model'), {
    costModel,
    promptTokens,
    contextTokens,
    kvBytesPerValue,
    activationBytesPerValue,
    decodeContextTokens: promptTokens + decodeTokens / 2,
  });
  if (layers.length > MAX_LAYERS) bad('model', `has ${layers.length} layers (at most ${MAX_LAYERS})`);

  const shoal = costModel === 'shoal';
  return {
    costModel,
    promptTokens,
    decodeTokens,
    contextTokens,
    devices,
    layers: shoal
      ? layers
      : layers.map((l) => ({ ...l, decodeFlops: 0, kvBytesPerToken: 0, workspaceBytes: 0, decodeActivationBytes: 0 })),
    embedding: shoal ? embedding : { paramBytes: 0, flops: 0, decodeFlops: 0, workspaceBytes: 0 },
    head: shoal ? head : { paramBytes: 0, flops: 0, decodeFlops: 0, workspaceBytes: 0 },
    tiedEmbeddings,
    tokenInBytes: TOKEN_ID_BYTES * promptTokens,
    tokenOutBytes: s.returnLogits === true ? Math.max(TOKEN_ID_BYTES, head.workspaceBytes) : TOKEN_ID_BYTES,
    exactWorkLimit,
    heuristicBudgetMs,
  };
}

/** Type guard used by the API: a Scenario is whatever compileScenario accepts. */
export function validateScenario(raw: unknown): Scenario {
  compileScenario(raw);
  return raw as Scenario;
}
