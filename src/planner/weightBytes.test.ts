// A config scenario with the files' real bytes (GGUF blocks, mixed dtypes): the planner sizes each layer, the
// embedding and the head from them instead of parameters x bytesPerParam, and names a malformed list.
import { describe, expect, it } from 'vitest';
import { compileScenario } from './scenario.ts';
import { paperScenario } from './paper.ts';
import type { Scenario } from './types.ts';

const CONFIG = {
  model_type: 'llama',
  hidden_size: 64,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  intermediate_size: 128,
  vocab_size: 100,
  tie_word_embeddings: true,
};

function scenario(weightBytes?: unknown): Scenario {
  const base = paperScenario(16);
  return { ...base, costModel: 'shoal', model: { config: CONFIG, bytesPerParam: 2, weightBytes } as Scenario['model'] };
}

describe('model.weightBytes', () => {
  it('replaces bytesPerParam x parameters per layer, for the embedding and the head', () => {
    const p = compileScenario(scenario({ layers: [1000, 2000, 3000], embedding: 500, head: 64 }));
    expect(p.layers.map((l) => l.paramBytes)).toEqual([1000, 2000, 3000]);
    expect(p.embedding.paramBytes).toBe(500);
    expect(p.head.paramBytes).toBe(564); // tied: the head reads the embedding again, plus its own norm
    const plain = compileScenario(scenario());
    expect(plain.layers[0].paramBytes).toBeGreaterThan(3000);
  });

  it('names a malformed list', () => {
    expect(() => compileScenario(scenario({ layers: [1, 2], embedding: 1, head: 1 }))).toThrow(
      /model\.weightBytes\.layers.*3 non-negative byte counts/,
    );
    expect(() => compileScenario(scenario({ layers: [1, 2, 3], head: 1 }))).toThrow(/model\.weightBytes/);
  });
});
