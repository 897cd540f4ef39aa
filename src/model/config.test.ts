import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseConfig, layerParamCount } from './config.ts';
import { FIXTURES_DIR } from '../testing/fixturesNode.ts';
import { ropeInvFreq } from './rope.ts';

const llama = JSON.parse(readFileSync(resolve(FIXTURES_DIR, 'tiny-llama/config.json'), 'utf8')) as Record<
  string,
  unknown
>;
const qwen2 = JSON.parse(readFileSync(resolve(FIXTURES_DIR, 'tiny-qwen2/config.json'), 'utf8')) as Record<
  string,
  unknown
>;

describe('parseConfig', () => {
  it('reads the fixtures', () => {
    const a = parseConfig(llama);
    expect(a).toMatchObject({
      arch: 'llama',
      nLayers: 4,
      dim: 64,
      nHeads: 4,
      nKvHeads: 2,
      headDim: 16,
      tiedEmbeddings: false,
      qkvBias: false,
      eosTokenIds: [312],
    });
    const b = parseConfig(qwen2);
    expect(b).toMatchObject({
      arch: 'qwen2',
      nLayers: 6,
      dim: 96,
      qkvBias: true,
      tiedEmbeddings: true,
      ropeTheta: 1e6,
      normEps: 1e-6,
    });
    expect(layerParamCount(a)).toBe(64 * (64 + 32 + 32) + 64 * 64 + 3 * 64 * 176 + 2 * 64);
  });

  it('qwen3: explicit head_dim and q/k norm', () => {
    const s = parseConfig({ ...qwen2, model_type: 'qwen3', head_dim: 32, architectures: ['Qwen3ForCausalLM'] });
    expect(s).toMatchObject({ arch: 'qwen3', headDim: 32, qkNorm: true, qkvBias: false });
  });

  it('names the unsupported architecture', () => {
    expect(() => parseConfig({ ...llama, model_type: 'gpt2' })).toThrow(/model_type "gpt2" is not supported/);
  });

  it.each([
    ['hidden_size', { hidden_size: undefined }, /hidden_size is missing/],
    ['num_hidden_layers', { num_hidden_layers: 0 }, /num_hidden_layers must be a positive integer/],
    ['kv heads', { num_key_value_heads: 3 }, /num_key_value_heads \(3\) must divide/],
    ['head dim', { hidden_size: 66 }, /hidden_size \(66\) is not divisible/],
    ['activation', { hidden_act: 'gelu' }, /hidden_act "gelu"/],
    ['rope', { rope_scaling: { rope_type: 'yarn', factor: 4 } }, /rope_scaling type "yarn"/],
    ['eos', { eos_token_id: 999 }, /eos_token_id \(999\) is outside/],
    ['mistral window', { model_type: 'mistral', sliding_window: 64 }, /sliding_window/],
  ])('rejects a bad %s', (_n, patch, re) => {
    const c: Record<string, unknown> = { ...llama, ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete c[k];
    expect(() => parseConfig(c)).toThrow(re);
  });

  it('llama3 rope scaling matches the transformers formula at the band edges', () => {
    const spec = parseConfig({
      ...llama,
      hidden_size: 2048,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      rope_theta: 500000,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 32,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    });
    const f = ropeInvFreq(spec);
    const plain = ropeInvFreq({ ...spec, ropeScaling: null });
    expect(f[0]).toBeCloseTo(plain[0], 12); // high frequency: unscaled
    expect(f[31] / plain[31]).toBeCloseTo(1 / 32, 10); // lowest frequency: divided by factor
    const mid = f.findIndex((v, i) => v !== plain[i] && Math.abs(v / plain[i] - 1 / 32) > 1e-9);
    expect(mid).toBeGreaterThan(0); // a smoothed medium band exists
  });
});
