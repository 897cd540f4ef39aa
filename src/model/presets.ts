// Model shapes the generator knows: the real Hugging Face config.json of small open models, plus
// `demo` (what `npm start` serves) and `tiny` (fast tests). Weights are always random; shapes are real.

export type GenDtype = 'f32' | 'f16' | 'bf16';

export interface PresetConfig {
  /** Human label for menus and logs. */
  label: string;
  /** Where the shape comes from (a Hub repo id), or null for our own presets. */
  hfRepo: string | null;
  /** Dtype the generator writes unless told otherwise. */
  defaultDtype: GenDtype;
  /** The config.json object as published (token ids are rewritten to match the generated tokenizer). */
  config: Record<string, unknown>;
}

// Copied from each repo's config.json (fields and values as published, key order kept).
const SMOLLM2_135M = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: 'silu',
  hidden_size: 576,
  initializer_range: 0.041666666666666664,
  intermediate_size: 1536,
  is_llama_config: true,
  max_position_embeddings: 8192,
  model_type: 'llama',
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_interleaved: false,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.40.1',
  use_cache: true,
  vocab_size: 49152,
};

// The 360M config.json is the 135M one with other sizes (the spread keeps the published key order).
const SMOLLM2_360M = {
  ...SMOLLM2_135M,
  hidden_size: 960,
  initializer_range: 0.02,
  intermediate_size: 2560,
  num_attention_heads: 15,
  num_hidden_layers: 32,
  num_key_value_heads: 5,
};

const QWEN2_5_0_5B = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.40.1',
  use_cache: true,
  use_mrope: false,
  use_sliding_window: false,
  vocab_size: 151936,
};

const QWEN3_0_6B = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.51.0',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const LLAMA_3_2_1B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.45.0.dev0',
  use_cache: true,
  vocab_size: 128256,
};

/** A config.json in the llama layout for our own small presets. */
function llamaConfig(o: {
  nLayers: number;
  dim: number;
  nHeads: number;
  nKvHeads: number;
  hiddenDim: number;
  vocabSize: number;
  tied: boolean;
  maxSeqLen: number;
}) {
  return {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: null,
    eos_token_id: null,
    hidden_act: 'silu',
    hidden_size: o.dim,
    initializer_range: 0.02,
    intermediate_size: o.hiddenDim,
    max_position_embeddings: o.maxSeqLen,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: o.nHeads,
    num_hidden_layers: o.nLayers,
    num_key_value_heads: o.nKvHeads,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000.0,
    tie_word_embeddings: o.tied,
    torch_dtype: 'bfloat16',
    use_cache: true,
    vocab_size: o.vocabSize,
  };
}

export const PRESETS: Record<string, PresetConfig> = {
  demo: {
    label: 'Demo (llama, 12 layers, hidden 256, random weights)',
    hfRepo: null,
    defaultDtype: 'bf16',
    config: llamaConfig({
      nLayers: 12,
      dim: 256,
      nHeads: 8,
      nKvHeads: 4,
      hiddenDim: 768,
      vocabSize: 2048,
      tied: true,
      maxSeqLen: 2048,
    }),
  },
  tiny: {
    // Untied LM head and F16 on purpose: the shared fixtures cover F32 + separate head (tiny-llama)
    // and BF16 + tied (tiny-qwen2); this fills the remaining dtype.
    label: 'Tiny (llama, 4 layers, hidden 64, for tests)',
    hfRepo: null,
    defaultDtype: 'f16',
    config: llamaConfig({
      nLayers: 4,
      dim: 64,
      nHeads: 4,
      nKvHeads: 2,
      hiddenDim: 128,
      vocabSize: 512,
      tied: false,
      maxSeqLen: 512,
    }),
  },
  'smollm2-135m': {
    label: 'SmolLM2 135M shape (llama, 30 layers)',
    hfRepo: 'HuggingFaceTB/SmolLM2-135M',
    defaultDtype: 'bf16',
    config: SMOLLM2_135M,
  },
  'smollm2-360m': {
    label: 'SmolLM2 360M shape (llama, 32 layers)',
    hfRepo: 'HuggingFaceTB/SmolLM2-360M',
    defaultDtype: 'bf16',
    config: SMOLLM2_360M,
  },
  'qwen2.5-0.5b': {
    label: 'Qwen2.5 0.5B shape (qwen2, 24 layers, qkv bias)',
    hfRepo: 'Qwen/Qwen2.5-0.5B',
    defaultDtype: 'bf16',
    config: QWEN2_5_0_5B,
  },
  'qwen3-0.6b': {
    label: 'Qwen3 0.6B shape (qwen3, 28 layers, q/k norm)',
    hfRepo: 'Qwen/Qwen3-0.6B',
    defaultDtype: 'bf16',
    config: QWEN3_0_6B,
  },
  'llama-3.2-1b': {
    label: 'Llama 3.2 1B shape (llama3 rope scaling, 16 layers)',
    hfRepo: 'meta-llama/Llama-3.2-1B',
    defaultDtype: 'bf16',
    config: LLAMA_3_2_1B,
  },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}
