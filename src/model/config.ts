// Parse and validate a Hugging Face config.json into one ModelSpec (llama, mistral, qwen2, qwen3).
import { ShoalError } from '../errors.ts';

export type Arch = 'llama' | 'mistral' | 'qwen2' | 'qwen3';

export interface RopeScalingLlama3 {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface ModelSpec {
  arch: Arch;
  nLayers: number;
  dim: number; // hidden_size
  hiddenDim: number; // intermediate_size (MLP)
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  normEps: number;
  ropeTheta: number;
  ropeScaling: RopeScalingLlama3 | null;
  qkvBias: boolean; // qwen2: q/k/v projections carry a bias
  qkNorm: boolean; // qwen3: per-head RMSNorm on q and k before RoPE
  tiedEmbeddings: boolean; // LM head = embedding matrix
  maxSeqLen: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

const ARCH_BY_MODEL_TYPE: Record<string, Arch> = { llama: 'llama', mistral: 'mistral', qwen2: 'qwen2', qwen3: 'qwen3' };

function fail(field: string, why: string): never {
  throw new ShoalError('ERR_BAD_CONFIG', `config.json: ${field} ${why}`);
}

type Config = Record<string, unknown>;

/** A required positive number (an integer when `kind` says so), or `fallback` when the field is absent. */
function positive(c: Config, field: string, kind: 'integer' | 'number', fallback?: number): number {
  const v = c[field] ?? fallback;
  if (v === undefined || v === null) fail(field, 'is missing');
  if (typeof v !== 'number' || !(kind === 'integer' ? Number.isInteger(v) : Number.isFinite(v)) || v <= 0)
    fail(field, `must be a positive ${kind} (got ${JSON.stringify(v)})`);
  return v;
}

const posInt = (c: Config, field: string, fallback?: number): number => positive(c, field, 'integer', fallback);
const posNum = (c: Config, field: string, fallback?: number): number => positive(c, field, 'number', fallback);

function tokenIds(v: unknown, field: string): number[] {
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  for (const x of arr)
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0)
      fail(field, `must be a token id or a list of them (got ${JSON.stringify(v)})`);
  return arr as number[];
}

/** head_dim when given, else hidden_size / num_attention_heads; even, as RoPE rotates pairs. */
function headDimOf(c: Config, dim: number, nHeads: number): number {
  let headDim: number;
  if (c.head_dim !== undefined && c.head_dim !== null) headDim = posInt(c, 'head_dim');
  else {
    if (dim % nHeads !== 0)
      fail('hidden_size', `(${dim}) is not divisible by num_attention_heads (${nHeads}) and no head_dim is given`);
    headDim = dim / nHeads;
  }
  if (headDim % 2 !== 0) fail('head_dim', `(${headDim}) must be even for RoPE`);
  return headDim;
}

/** Features the engine does not implement: sliding windows, biases other than qwen2's q/k/v. */
function rejectUnsupported(c: Config, arch: Arch): void {
  if (arch === 'mistral' && c.sliding_window !== undefined && c.sliding_window !== null) {
    const maxPos = typeof c.max_position_embeddings === 'number' ? c.max_position_embeddings : Infinity;
    if (typeof c.sliding_window === 'number' && c.sliding_window < maxPos) {
      fail('sliding_window', `(${c.sliding_window}) is not supported: Shoal runs mistral with full attention only`);
    }
  }
  if ((arch === 'qwen2' || arch === 'qwen3') && c.use_sliding_window === true)
    fail('use_sliding_window', 'is not supported');
  if (c.attention_bias === true && arch !== 'qwen2') fail('attention_bias', `is not supported for ${arch}`);
  if (c.mlp_bias === true) fail('mlp_bias', 'is not supported');
}

/** rope_scaling: absent or "default" (none), or llama3's frequency-dependent scaling. */
function ropeScalingOf(rs: unknown): RopeScalingLlama3 | null {
  if (rs === undefined || rs === null) return null;
  if (typeof rs !== 'object') fail('rope_scaling', 'must be an object');
  const r = rs as Config;
  const type = r.rope_type ?? r.type;
  if (type === 'default') return null;
  if (type !== 'llama3') fail('rope_scaling', `type "${String(type)}" is not supported (only llama3)`);
  const ropeScaling: RopeScalingLlama3 = {
    type: 'llama3',
    factor: posNum(r, 'factor'),
    lowFreqFactor: posNum(r, 'low_freq_factor'),
    highFreqFactor: posNum(r, 'high_freq_factor'),
    originalMaxPositionEmbeddings: posInt(r, 'original_max_position_embeddings'),
  };
  if (ropeScaling.highFreqFactor <= ropeScaling.lowFreqFactor)
    fail('rope_scaling.high_freq_factor', 'must exceed low_freq_factor');
  return ropeScaling;
}

/** Validate a parsed config.json. Throws ShoalError naming the offending field. */
export function parseConfig(raw: unknown): ModelSpec {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ShoalError('ERR_BAD_CONFIG', 'config.json: expected a JSON object');
  const c = raw as Config;
  const modelType = c.model_type;
  if (typeof modelType !== 'string') fail('model_type', 'is missing');
  const arch = ARCH_BY_MODEL_TYPE[modelType];
  if (!arch) {
    throw new ShoalError(
      'ERR_UNSUPPORTED_ARCH',
      `config.json: model_type "${modelType}" is not supported ` +
        `(supported: ${Object.keys(ARCH_BY_MODEL_TYPE).join(', ')})`,
    );
  }
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') fail('hidden_act', `${JSON.stringify(act)} is not supported (only silu)`);

  const dim = posInt(c, 'hidden_size');
  const nLayers = posInt(c, 'num_hidden_layers');
  const nHeads = posInt(c, 'num_attention_heads');
  const nKvHeads = posInt(c, 'num_key_value_heads', nHeads);
  const hiddenDim = posInt(c, 'intermediate_size');
  const vocabSize = posInt(c, 'vocab_size');
  if (nHeads % nKvHeads !== 0) fail('num_key_value_heads', `(${nKvHeads}) must divide num_attention_heads (${nHeads})`);
  const headDim = headDimOf(c, dim, nHeads);
  rejectUnsupported(c, arch);
  const ropeScaling = ropeScalingOf(c.rope_scaling);

  const eos = tokenIds(c.eos_token_id, 'eos_token_id');
  for (const id of eos) if (id >= vocabSize) fail('eos_token_id', `(${id}) is outside the vocabulary (${vocabSize})`);
  const bos = tokenIds(c.bos_token_id, 'bos_token_id');
  return {
    arch,
    nLayers,
    dim,
    hiddenDim,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    normEps: posNum(c, 'rms_norm_eps', 1e-6),
    ropeTheta: posNum(c, 'rope_theta', 10000),
    ropeScaling,
    qkvBias: arch === 'qwen2' || c.attention_bias === true,
    qkNorm: arch === 'qwen3',
    tiedEmbeddings: c.tie_word_embeddings === true,
    maxSeqLen: posInt(c, 'max_position_embeddings', 2048),
    bosTokenId: bos[0] ?? null,
    eosTokenIds: eos,
  };
}

/** Hugging Face tensor names of one decoder layer, in the order the layer uses them. */
export function layerTensorNames(spec: ModelSpec, layer: number): string[] {
  const p = `model.layers.${layer}.`;
  const names = [
    p + 'input_layernorm.weight',
    p + 'self_attn.q_proj.weight',
    p + 'self_attn.k_proj.weight',
    p + 'self_attn.v_proj.weight',
  ];
  if (spec.qkvBias) names.push(p + 'self_attn.q_proj.bias', p + 'self_attn.k_proj.bias', p + 'self_attn.v_proj.bias');
  if (spec.qkNorm) names.push(p + 'self_attn.q_norm.weight', p + 'self_attn.k_norm.weight');
  names.push(
    p + 'self_attn.o_proj.weight',
    p + 'post_attention_layernorm.weight',
    p + 'mlp.gate_proj.weight',
    p + 'mlp.up_proj.weight',
    p + 'mlp.down_proj.weight',
  );
  return names;
}

export const EMBED_TENSOR = 'model.embed_tokens.weight';
export const FINAL_NORM_TENSOR = 'model.norm.weight';
export const LM_HEAD_TENSOR = 'lm_head.weight';

/** Expected shape of every tensor in a layer, for validation against the file's header. */
export function expectedShape(spec: ModelSpec, name: string): number[] | null {
  const q = spec.nHeads * spec.headDim;
  const kv = spec.nKvHeads * spec.headDim;
  if (name === EMBED_TENSOR || name === LM_HEAD_TENSOR) return [spec.vocabSize, spec.dim];
  if (name === FINAL_NORM_TENSOR) return [spec.dim];
  const m = /^model\.layers\.\d+\.(.+)$/.exec(name);
  if (!m) return null;
  switch (m[1]) {
    case 'input_layernorm.weight':
    case 'post_attention_layernorm.weight':
      return [spec.dim];
    case 'self_attn.q_proj.weight':
      return [q, spec.dim];
    case 'self_attn.k_proj.weight':
    case 'self_attn.v_proj.weight':
      return [kv, spec.dim];
    case 'self_attn.q_proj.bias':
      return [q];
    case 'self_attn.k_proj.bias':
    case 'self_attn.v_proj.bias':
      return [kv];
    case 'self_attn.q_norm.weight':
    case 'self_attn.k_norm.weight':
      return [spec.headDim];
    case 'self_attn.o_proj.weight':
      return [spec.dim, q];
    case 'mlp.gate_proj.weight':
    case 'mlp.up_proj.weight':
      return [spec.hiddenDim, spec.dim];
    case 'mlp.down_proj.weight':
      return [spec.dim, spec.hiddenDim];
    default:
      return null;
  }
}

/** Per-layer parameter count (weights of one decoder layer). */
export function layerParamCount(spec: ModelSpec): number {
  const q = spec.nHeads * spec.headDim;
  const kv = spec.nKvHeads * spec.headDim;
  let n = spec.dim * (q + 2 * kv) + q * spec.dim + 3 * spec.dim * spec.hiddenDim + 2 * spec.dim;
  if (spec.qkvBias) n += q + 2 * kv;
  if (spec.qkNorm) n += 2 * spec.headDim;
  return n;
}
