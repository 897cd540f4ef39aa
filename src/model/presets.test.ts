// Presets: every config parses, and the real shapes give the published parameter counts.
import { describe, expect, it } from 'vitest';
import { EMBED_TENSOR, LM_HEAD_TENSOR, expectedShape, layerParamCount, parseConfig } from './config.ts';
import { PRESETS, presetNames } from './presets.ts';

function paramCount(name: string): number {
  const spec = parseConfig(PRESETS[name].config);
  const embed = expectedShape(spec, EMBED_TENSOR)!.reduce((a, b) => a * b, 1);
  const head = spec.tiedEmbeddings ? 0 : expectedShape(spec, LM_HEAD_TENSOR)!.reduce((a, b) => a * b, 1);
  return embed + spec.nLayers * layerParamCount(spec) + spec.dim + head;
}

describe('presets', () => {
  it('lists every preset, each with a label and a dtype', () => {
    expect(presetNames()).toEqual(
      expect.arrayContaining([
        'demo',
        'tiny',
        'smollm2-135m',
        'smollm2-360m',
        'qwen2.5-0.5b',
        'qwen3-0.6b',
        'llama-3.2-1b',
      ]),
    );
    for (const name of presetNames()) {
      expect(PRESETS[name].label.length).toBeGreaterThan(0);
      expect(['f32', 'f16', 'bf16']).toContain(PRESETS[name].defaultDtype);
    }
  });

  it.each(presetNames())('%s: config.json parses', (name) => {
    const spec = parseConfig(PRESETS[name].config);
    expect(spec.vocabSize).toBe(PRESETS[name].config.vocab_size);
    expect(spec.nLayers).toBe(PRESETS[name].config.num_hidden_layers);
  });

  // Published sizes: the Hub's parameter counts of the real checkpoints (tied embeddings counted once).
  it.each([
    ['smollm2-135m', 134_515_008],
    ['smollm2-360m', 361_821_120],
    ['qwen2.5-0.5b', 494_032_768],
    ['qwen3-0.6b', 596_049_920],
    ['llama-3.2-1b', 1_235_814_400],
  ])('%s has %i parameters', (name, count) => {
    expect(paramCount(name)).toBe(count);
  });

  it('real shapes carry their architecture features', () => {
    const qwen2 = parseConfig(PRESETS['qwen2.5-0.5b'].config);
    expect([qwen2.arch, qwen2.qkvBias, qwen2.headDim, qwen2.nKvHeads, qwen2.ropeTheta, qwen2.normEps]).toEqual([
      'qwen2',
      true,
      64,
      2,
      1e6,
      1e-6,
    ]);
    const qwen3 = parseConfig(PRESETS['qwen3-0.6b'].config);
    expect([qwen3.arch, qwen3.qkNorm, qwen3.headDim, qwen3.nHeads * qwen3.headDim, qwen3.dim]).toEqual([
      'qwen3',
      true,
      128,
      2048,
      1024,
    ]);
    const llama = parseConfig(PRESETS['llama-3.2-1b'].config);
    expect(llama.ropeScaling).toEqual({
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    expect([llama.ropeTheta, llama.tiedEmbeddings, llama.vocabSize]).toEqual([500000, true, 128256]);
    const smol = parseConfig(PRESETS['smollm2-135m'].config);
    expect([smol.nHeads, smol.nKvHeads, smol.headDim, smol.ropeTheta, smol.maxSeqLen, smol.tiedEmbeddings]).toEqual([
      9,
      3,
      64,
      100000,
      8192,
      true,
    ]);
  });

  it('demo and tiny have the small shapes the demo and the tests rely on', () => {
    const demo = parseConfig(PRESETS.demo.config);
    expect([
      demo.arch,
      demo.nLayers,
      demo.dim,
      demo.nHeads,
      demo.nKvHeads,
      demo.hiddenDim,
      demo.vocabSize,
      demo.tiedEmbeddings,
    ]).toEqual(['llama', 12, 256, 8, 4, 768, 2048, true]);
    expect(PRESETS.demo.defaultDtype).toBe('bf16');
    const tiny = parseConfig(PRESETS.tiny.config);
    expect([tiny.nLayers, tiny.dim, tiny.nHeads, tiny.nKvHeads, tiny.hiddenDim, tiny.vocabSize]).toEqual([
      4, 64, 4, 2, 128, 512,
    ]);
  });
});
