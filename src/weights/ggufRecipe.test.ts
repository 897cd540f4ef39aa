// Our GGUF presets give each tensor the type llama.cpp gave it in the reference files (tiny-q-llama), and the
// row-length fallbacks keep every row whole blocks.
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

  it('falls back to Q8_0 where rows are not whole 256-value blocks, and keeps vectors F32', () => {
    const spec = parseConfig({
      model_type: 'llama',
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 128,
      vocab_size: 300,
    });
    const q = 'model.layers.0.self_attn.q_proj.weight';
    expect(recipeDtype('Q4_K_M', q, expectedShape(spec, q)!, 2)).toBe('Q8_0');
    expect(recipeDtype('Q4_0', q, expectedShape(spec, q)!, 2)).toBe('Q4_0');
    expect(recipeDtype('Q6_K', 'model.norm.weight', [64], 2)).toBe('F32');
    expect(recipeDtype('BF16', q, expectedShape(spec, q)!, 2)).toBe('BF16');
    expect(recipeDtype('BF16', 'lm_head.weight', [300, 64], 2)).toBe('BF16');
    expect(recipeDtype('BF16', 'model.norm.weight', [64], 2)).toBe('F32');
    expect(() => recipeDtype('Q5_K_M' as 'Q8_0', q, [64, 64], 2)).toThrow(/GGUF quant must be one of/);
  });
});
