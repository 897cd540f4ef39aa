// Which block format each tensor gets in a GGUF preset: llama.cpp's file types (llama_model_quantize's
// llama_tensor_get_type and tensor_type_fallback in llama-quant.cpp, the parts that apply to llama/qwen2/qwen3 without
// an importance matrix).
import { ShoalError } from '../errors.ts';
import { EMBED_TENSOR, LM_HEAD_TENSOR } from '../model/config.ts';
import { BLOCKS, type QuantDtype, type WeightDtype } from './types.ts';

export const GGUF_QUANTS = ['Q8_0', 'Q4_0', 'Q5_0', 'Q4_K_M', 'Q6_K', 'BF16'] as const;
export type GgufQuant = (typeof GGUF_QUANTS)[number];

/**
 * Bumped whenever a preset's tensor types change, so cached files made by an older recipe are made again (the
 * benchmarks' model cache and the demo's GGUF key on it). 2: K-format rows that are not whole 256-value blocks fall
 * back to Q5_0 (was Q8_0), rows that are not whole 32-value blocks to F16 (was F32); tied embeddings typed as the
 * LM head.
 */
export const GGUF_RECIPE_VERSION = 2;

/** llama.cpp gives attn_v and ffn_down more bits in the first and last eighth of layers and every third between. */
function useMoreBits(layer: number, nLayers: number): boolean {
  const e = Math.floor(nLayers / 8);
  return layer < e || layer >= Math.floor((7 * nLayers) / 8) || (layer - e) % 3 === 2;
}

/** tensor_type_fallback: the 32-value format each 256-value one falls back to; the others have none. */
const FALLBACK: Partial<Record<QuantDtype, QuantDtype>> = { Q4_K: 'Q5_0', Q6_K: 'Q8_0' };

/**
 * A row of `cols` values that is not whole `dtype` blocks takes the fallback format, and F16 if it is not whole
 * blocks of that either. llama.cpp has no fallback for the 32-value formats and refuses the model; so do we.
 */
function fallback(dtype: QuantDtype, cols: number, name: string): WeightDtype {
  if (cols % BLOCKS[dtype].values === 0) return dtype;
  const next = FALLBACK[dtype];
  if (!next)
    throw new ShoalError(
      'ERR_BAD_ARGS',
      `${name}: rows of ${cols} values are not whole ${dtype} blocks (${BLOCKS[dtype].values} values), and ` +
        `llama.cpp defines no fallback for ${dtype}: choose another quant`,
    );
  return cols % BLOCKS[next].values === 0 ? next : 'F16';
}

/**
 * The dtype of tensor `name` with shape `shape` in a `quant` file: vectors stay F32; BF16 files keep every matrix
 * BF16 (no blocks). The LM head (the embedding too when tied) is Q6_K, or Q8_0 in Q8_0 files and wherever its rows
 * are not whole blocks of the file's format; Q4_K_M moves some attn_v/ffn_down to Q6_K. Then the row-length
 * fallback: Q4_K -> Q5_0, Q6_K -> Q8_0, and F16 for rows that are not whole 32-value blocks.
 */
export function recipeDtype(
  quant: GgufQuant,
  name: string,
  shape: number[],
  nLayers: number,
  tied = false,
): WeightDtype {
  if (!(GGUF_QUANTS as readonly string[]).includes(quant))
    throw new ShoalError('ERR_BAD_ARGS', `GGUF quant must be one of ${GGUF_QUANTS.join(', ')} (got ${quant})`);
  if (shape.length < 2) return 'F32';
  if (quant === 'BF16') return 'BF16'; // convert_hf_to_gguf --outtype bf16: every matrix, the LM head included
  const base: QuantDtype = quant === 'Q4_K_M' ? 'Q4_K' : quant;
  const cols = shape[shape.length - 1];
  let dtype = base;
  const layer = /^model\.layers\.(\d+)\./.exec(name);
  if (name === LM_HEAD_TENSOR || (tied && name === EMBED_TENSOR))
    dtype = cols % BLOCKS[base].values !== 0 ? 'Q8_0' : base === 'Q8_0' ? 'Q8_0' : 'Q6_K';
  else if (quant === 'Q4_K_M' && layer && /(v_proj|down_proj)\.weight$/.test(name))
    if (useMoreBits(Number(layer[1]), nLayers)) dtype = 'Q6_K';
  return fallback(dtype, cols, name);
}
