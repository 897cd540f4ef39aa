// A GGUF model (one file or split -0000k-of-0000N files) opened as a ModelSource: llama, qwen2 and qwen3 metadata
// into the same ModelSpec as config.json, GGUF tensor names mapped to Hugging Face names, llama q/k rows unpermuted.
import { ShoalError, errorMessage, isShoalError } from '../errors.ts';
import {
  EMBED_TENSOR,
  FINAL_NORM_TENSOR,
  LM_HEAD_TENSOR,
  expectedShape,
  parseConfig,
  type ModelSpec,
} from '../model/config.ts';
import type { GgufWriteValue } from './ggufWriter.ts';
import { readGgufHeader, type GgufHeader, type GgufValue } from './gguf.ts';
import { ModelSource, requiredTensorNames, type GgufEntry, type ModelFiles } from './model.ts';
import { addAliases } from './aliases.ts';

export const GGUF_ARCHS = ['llama', 'qwen2', 'qwen3'] as const;

/** Per-layer GGUF names (blk.N.<key>) -> the Hugging Face name after model.layers.N. */
const LAYER_NAMES: Record<string, string> = {
  'attn_norm.weight': 'input_layernorm.weight',
  'attn_q.weight': 'self_attn.q_proj.weight',
  'attn_k.weight': 'self_attn.k_proj.weight',
  'attn_v.weight': 'self_attn.v_proj.weight',
  'attn_q.bias': 'self_attn.q_proj.bias',
  'attn_k.bias': 'self_attn.k_proj.bias',
  'attn_v.bias': 'self_attn.v_proj.bias',
  'attn_q_norm.weight': 'self_attn.q_norm.weight',
  'attn_k_norm.weight': 'self_attn.k_norm.weight',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'ffn_gate.weight': 'mlp.gate_proj.weight',
  'ffn_up.weight': 'mlp.up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
};
const GLOBAL_NAMES: Record<string, string> = {
  'token_embd.weight': EMBED_TENSOR,
  'output_norm.weight': FINAL_NORM_TENSOR,
  'output.weight': LM_HEAD_TENSOR,
};

/** The Hugging Face name of a GGUF tensor, or null for tensors the engine does not use (rope_freqs, ...). */
export function hfTensorName(ggufName: string): string | null {
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  if (m) return LAYER_NAMES[m[2]] ? `model.layers.${m[1]}.${LAYER_NAMES[m[2]]}` : null;
  return GLOBAL_NAMES[ggufName] ?? null;
}

/** The inverse, for writers (make-model's GGUF presets). */
export function ggufTensorName(hfName: string): string {
  for (const [g, h] of Object.entries(GLOBAL_NAMES)) if (h === hfName) return g;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  const key = m && Object.entries(LAYER_NAMES).find(([, h]) => h === m[2])?.[0];
  if (!m || !key) throw new ShoalError('ERR_BAD_ARGS', `no GGUF name for tensor "${hfName}"`);
  return `blk.${m[1]}.${key}`;
}

function num(md: Record<string, GgufValue>, key: string): number | undefined {
  const v = md[key];
  return typeof v === 'number' ? v : undefined;
}

/** The config.json a Hugging Face checkpoint of this GGUF would carry (then parsed by the same parseConfig). */
export function ggufConfig(file: string, header: GgufHeader): Record<string, unknown> {
  const md = header.metadata;
  const arch = md['general.architecture'];
  if (typeof arch !== 'string' || !(GGUF_ARCHS as readonly string[]).includes(arch))
    throw new ShoalError(
      'ERR_UNSUPPORTED_ARCH',
      `${file}: GGUF architecture ${JSON.stringify(arch)} is not supported (supported: ${GGUF_ARCHS.join(', ')})`,
    );
  const a = (k: string) => num(md, `${arch}.${k}`);
  const tokens = md['tokenizer.ggml.tokens'];
  const nHeads = a('attention.head_count');
  const scaling = md[`${arch}.rope.scaling.type`];
  if (scaling !== undefined && scaling !== 'none')
    throw new ShoalError('ERR_BAD_GGUF', `${file}: ${arch}.rope.scaling.type "${String(scaling)}" is not supported`);
  return {
    model_type: arch,
    hidden_size: a('embedding_length'),
    num_hidden_layers: a('block_count'),
    num_attention_heads: nHeads,
    num_key_value_heads: a('attention.head_count_kv') ?? nHeads,
    head_dim: a('attention.key_length'),
    intermediate_size: a('feed_forward_length'),
    vocab_size: a('vocab_size') ?? (Array.isArray(tokens) ? tokens.length : undefined),
    rms_norm_eps: a('attention.layer_norm_rms_epsilon'),
    rope_theta: a('rope.freq_base'),
    max_position_embeddings: a('context_length'),
    // One matrix for both ends, whichever name it was stored under.
    tie_word_embeddings: !header.tensors.has('output.weight') || !header.tensors.has('token_embd.weight'),
    bos_token_id: num(md, 'tokenizer.ggml.bos_token_id'),
    eos_token_id: num(md, 'tokenizer.ggml.eos_token_id'),
    torch_dtype: 'float32', // activations; the weights keep each tensor's own type
  };
}

/** Tensors of every file under their Hugging Face names; llama q/k marked for unpermuting. */
function tensorIndex(headers: { file: string; header: GgufHeader }[], arch: string, heads: [number, number]) {
  const tensors = new Map<string, GgufEntry>();
  for (const { file, header } of headers)
    for (const [gname, info] of header.tensors) {
      const name = hfTensorName(gname);
      if (!name) continue;
      const kind = name.slice(name.lastIndexOf('.', name.length - '.weight'.length - 1) + 1);
      const permutedHeads =
        arch === 'llama' ? { 'q_proj.weight': heads[0], 'k_proj.weight': heads[1] }[kind] : undefined;
      tensors.set(name, { file, info: { ...info, name, permutedHeads } });
    }
  return tensors;
}

/** Open GGUF file(s) of one model in `files` (all shards of a split model, in order). */
export async function openGgufModel(files: ModelFiles, names: string[]): Promise<ModelSource> {
  const headers = await Promise.all(
    names.map(async (file) => ({ file, header: await readGgufHeader(files.bytes(file)) })),
  );
  const first = files.bytes(names[0]).name;
  const config = ggufConfig(first, headers[0].header);
  let spec;
  try {
    spec = parseConfig(config);
  } catch (e) {
    if (!isShoalError(e)) throw e;
    // parseConfig names config.json fields; say they came from this file's metadata.
    throw new ShoalError(e.code, `${first}: GGUF metadata as config: ${errorMessage(e)}`);
  }
  const tensors = tensorIndex(headers, spec.arch, [spec.nHeads, spec.nKvHeads]);
  addAliases(tensors, requiredTensorNames(spec), {
    tied: spec.tiedEmbeddings,
    rename: (e, name) => ({ ...e, info: { ...e.info, name } }),
  });
  const model = new ModelSource(files, config, spec, { kind: 'gguf', tensors }, 'F32');
  for (const name of model.requiredTensors()) {
    const e = tensors.get(name);
    if (!e) throw new ShoalError('ERR_MISSING_TENSOR', `${first}: no tensor for "${name}" in the GGUF file(s)`);
    const want = expectedShape(spec, name);
    if (want && want.join(',') !== e.info.shape.join(','))
      throw new ShoalError(
        'ERR_BAD_GGUF',
        `${files.bytes(e.file).name}: tensor "${name}" has shape [${e.info.shape.join(', ')}] ` +
          `but the metadata implies [${want.join(', ')}]`,
      );
  }
  return model;
}

/** The GGUF metadata (general.* and the architecture's keys) that ggufConfig reads back as this spec. */
export function ggufModelMetadata(spec: ModelSpec, name: string): Record<string, GgufWriteValue> {
  const a = spec.arch;
  if (!(GGUF_ARCHS as readonly string[]).includes(a))
    throw new ShoalError('ERR_UNSUPPORTED_ARCH', `GGUF output supports ${GGUF_ARCHS.join(', ')}, not ${a}`);
  const md: Record<string, GgufWriteValue> = {
    'general.architecture': a,
    'general.name': name,
    [`${a}.block_count`]: spec.nLayers,
    [`${a}.context_length`]: spec.maxSeqLen,
    [`${a}.embedding_length`]: spec.dim,
    [`${a}.feed_forward_length`]: spec.hiddenDim,
    [`${a}.attention.head_count`]: spec.nHeads,
    [`${a}.attention.head_count_kv`]: spec.nKvHeads,
    [`${a}.attention.key_length`]: spec.headDim,
    [`${a}.attention.value_length`]: spec.headDim,
    [`${a}.rope.freq_base`]: { f32: spec.ropeTheta },
    [`${a}.attention.layer_norm_rms_epsilon`]: { f32: spec.normEps }, // f32, as llama.cpp
    [`${a}.vocab_size`]: spec.vocabSize,
  };
  if (spec.bosTokenId !== null) md['tokenizer.ggml.bos_token_id'] = spec.bosTokenId;
  if (spec.eosTokenIds.length) md['tokenizer.ggml.eos_token_id'] = spec.eosTokenIds[0];
  return md;
}
