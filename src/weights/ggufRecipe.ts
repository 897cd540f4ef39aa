// Which block format each tensor gets in a GGUF preset: llama.cpp's file types (llama_model_quantize's
// llama_tensor_get_type, the parts that apply to llama/qwen2/qwen3 without an importance matrix).
import { ShoalError } from '../errors.ts';
import { LM_HEAD_TENSOR } from '../model/config.ts';
import { BLOCKS, type WeightDtype } from './types.ts';

export const GGUF_QUANTS = ['Q8_0', 'Q4_0', 'Q4_K_M', 'Q6_K', 'BF16'] as const;
export type GgufQuant = (typeof GGUF_QUANTS)[number];

/** llama.cpp gives attn_v and ffn_down more bits in the first and last eighth of layers and every third between. */
function useMoreBits(layer: number, nLayers: number): boolean {
  const e = Math.floor(nLayers / 8);
  return layer < e || layer >= Math.floor((7 * nLayers) / 8) || (layer - e) % 3 === 2;
}

/**
 * The dtype of tensor `name` with shape `shape` in a `quant` file: vectors stay F32; BF16 files keep every matrix
 * BF16 (no blocks); the LM head is Q6_K (except in
 * Q8_0); Q4_K_M moves some attn_v/ffn_down to Q6_K. A row that is not whole 256-value blocks falls back to Q8_0
 * (llama.cpp falls back to Q5_0/Q8_0 there), one not of 32-value blocks to F32.
 */
export function recipeDtype(quant: GgufQuant, name: string, shape: number[], nLayers: number): WeightDtype {
  if (!(GGUF_QUANTS as readonly string[]).includes(quant))
    throw new ShoalError('ERR_BAD_ARGS', `GGUF quant must be one of ${GGUF_QUANTS.join(', ')} (got ${quant})`);
  if (shape.length < 2) return 'F32';
  if (quant === 'BF16') return 'BF16'; // convert_hf_to_gguf --outtype bf16: every matrix, the LM head included
  let dtype: WeightDtype = quant === 'Q4_K_M' ? 'Q4_K' : quant;
  const layer = /^model\.layers\.(\d+)\./.exec(name);
  if (name === LM_HEAD_TENSOR && quant !== 'Q8_0') dtype = 'Q6_K';
  else if (quant === 'Q4_K_M' && layer && /(v_proj|down_proj)\.weight$/.test(name))
    if (useMoreBits(Number(layer[1]), nLayers)) dtype = 'Q6_K';
  const cols = shape[shape.length - 1];
  if (cols % BLOCKS[dtype].values === 0) return dtype;
  return cols % 32 === 0 ? 'Q8_0' : 'F32';
}
