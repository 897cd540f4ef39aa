// Our GGUF presets give each tensor the type llama.cpp gave it in the reference files (tiny-q-llama), and the
// row-length fallbacks are llama.cpp's (llama-quant.cpp tensor_type_fallback).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectedShape, parseConfig } from '../model/config.ts';
import { fixtureDir } from '../testing/fixturesNode.ts';
import { openFixture } from '../testing/fixturesNode.ts';
import { ggufTensorName } from './ggufModel.ts';
import { recipeDtype } from './ggufRecipe.ts';

describe('GGUF recipe', () => {
  it.each(['Q8_0', 'Q4_K_M'] as const)('%s matches llama.cpp on tiny-q-llama, tensor by tensor', async (quant) => {
    const ref = JSON.parse(readFileSync(join(fixtureDir('tiny-q-llama'), `expected-${quant}.json`), 'utf8')) as {
      quant: { tensor_types: Record<string, string> };
    };
    const model = await openFixture(`tiny-q-llama/${quant}`);
    const got = Object.fromEntries(
      model
        .requiredTensors()
        .map((n) => [ggufTensorName(n), recipeDtype(quant, n, expectedShape(model.spec, n)!, model.spec.nLayers)]),
    );
    expect(got).toEqual(ref.quant.tensor_types);
  });

  const spec = parseConfig({
    model_type: 'llama',
    hidden_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    intermediate_size: 128,
    vocab_size: 300,
  });
  const shape = (name: string) => expectedShape(spec, name)!;
  const q = 'model.layers.0.self_attn.q_proj.weight';

  it('rows that are not whole 256-value blocks: Q4_K -> Q5_0, Q6_K -> Q8_0 (llama.cpp tensor_type_fallback)', () => {
    expect(recipeDtype('Q4_K_M', q, shape(q), 2)).toBe('Q5_0');
    const v1 = 'model.layers.1.self_attn.v_proj.weight'; // last eighth: Q6_K, then its fallback
    expect(recipeDtype('Q4_K_M', v1, shape(v1), 2)).toBe('Q8_0');
    expect(recipeDtype('Q4_K_M', 'model.layers.0.self_attn.v_proj.weight', [16, 64], 2)).toBe('Q5_0');
    expect(recipeDtype('Q4_K_M', 'model.layers.0.mlp.down_proj.weight', [64, 128], 2)).toBe('Q5_0');
    expect(recipeDtype('Q6_K', q, shape(q), 2)).toBe('Q8_0');
    // the LM head: Q8_0 at once where its rows are not whole blocks of the file's format, else Q6_K
    for (const quant of ['Q4_K_M', 'Q6_K', 'Q8_0'] as const)
      expect(recipeDtype(quant, 'lm_head.weight', [300, 64], 2)).toBe('Q8_0');
    expect(recipeDtype('Q4_0', 'lm_head.weight', [300, 64], 2)).toBe('Q8_0'); // Q6_K, then its fallback
    expect(recipeDtype('Q5_0', 'lm_head.weight', [300, 256], 2)).toBe('Q6_K');
    expect(recipeDtype('Q4_0', q, shape(q), 2)).toBe('Q4_0');
    expect(recipeDtype('Q5_0', q, shape(q), 2)).toBe('Q5_0');
  });

  it('rows that are not whole 32-value blocks: F16 after a fallback, refused where llama.cpp has none', () => {
    const odd = [64, 40];
    expect(recipeDtype('Q4_K_M', q, odd, 2)).toBe('F16');
    expect(recipeDtype('Q6_K', q, odd, 2)).toBe('F16');
    for (const quant of ['Q8_0', 'Q4_0', 'Q5_0'] as const)
      expect(() => recipeDtype(quant, q, odd, 2)).toThrow(
        new RegExp(`rows of 40 values are not whole ${quant} blocks .*no fallback for ${quant}`),
      );
    // the LM head becomes Q8_0 first, which has none either
    expect(() => recipeDtype('Q4_K_M', 'lm_head.weight', [300, 40], 2)).toThrow(/no fallback for Q8_0/);
  });

  it('a tied embedding is typed as the LM head (llama.cpp quantizes it as output.weight)', () => {
    const e = 'model.embed_tokens.weight';
    expect(recipeDtype('Q4_K_M', e, [300, 256], 2, true)).toBe('Q6_K');
    expect(recipeDtype('Q4_K_M', e, [300, 256], 2, false)).toBe('Q4_K');
    expect(recipeDtype('Q4_K_M', e, [300, 576], 2, true)).toBe('Q8_0');
    expect(recipeDtype('Q4_K_M', e, [300, 576], 2, false)).toBe('Q5_0');
    expect(recipeDtype('Q8_0', e, [300, 256], 2, true)).toBe('Q8_0');
  });

  it('keeps vectors F32 and BF16 files BF16, and refuses an unknown quant', () => {
    expect(recipeDtype('Q6_K', 'model.norm.weight', [64], 2)).toBe('F32');
    expect(recipeDtype('BF16', q, shape(q), 2)).toBe('BF16');
    expect(recipeDtype('BF16', 'lm_head.weight', [300, 64], 2)).toBe('BF16');
    expect(recipeDtype('BF16', 'model.norm.weight', [64], 2)).toBe('F32');
    expect(() => recipeDtype('Q5_K_M' as 'Q8_0', q, [64, 64], 2)).toThrow(/GGUF quant must be one of/);
  });
});
