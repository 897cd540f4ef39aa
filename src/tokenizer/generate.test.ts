// The generated tokenizer: exact vocabulary size, valid merges, and it loads with the real
// @huggingface/transformers AutoTokenizer, round-trips text and applies its ChatML template.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { afterAll, describe, expect, it } from 'vitest';
import { END_OF_TEXT, IM_END, IM_START, generateTokenizer } from './generate.ts';

const root = mkdtempSync(join(tmpdir(), 'shoal-tok-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function load(vocabSize: number) {
  const g = generateTokenizer(vocabSize);
  const name = `v${vocabSize}`;
  mkdirSync(join(root, name), { recursive: true });
  writeFileSync(join(root, name, 'tokenizer.json'), JSON.stringify(g.tokenizer));
  writeFileSync(join(root, name, 'tokenizer_config.json'), JSON.stringify(g.tokenizerConfig));
  env.allowRemoteModels = false;
  env.localModelPath = root;
  return { g, tok: await AutoTokenizer.from_pretrained(name) };
}

const TEXTS = [
  'The quick brown fox jumps over the lazy dog.',
  'Hello, world! 12345 + 678 = 13023',
  '  leading spaces,\ttabs\nand new lines\n\n',
  'Ünïcødé: naïve café, 日本語, emoji 🐟🌊, ✓',
  'code: for (let i = 0; i < n; i++) { x[i] += 1; }',
];

describe('generateTokenizer', () => {
  it.each([259, 512, 2048, 49152])(
    'vocab %i: exactly that many distinct ids, valid merges, special ids in range',
    (v) => {
      const { tokenizer, endOfTextId, imStartId, imEndId } = generateTokenizer(v);
      const model = tokenizer.model as { vocab: Record<string, number>; merges: string[] };
      const ids = Object.values(model.vocab);
      expect(ids.length).toBe(v);
      expect(new Set(ids).size).toBe(v);
      expect(Math.min(...ids)).toBe(0);
      expect(Math.max(...ids)).toBe(v - 1);
      expect([model.vocab[END_OF_TEXT], model.vocab[IM_START], model.vocab[IM_END]]).toEqual([
        endOfTextId,
        imStartId,
        imEndId,
      ]);
      for (const id of [endOfTextId, imStartId, imEndId]) expect(id).toBeLessThan(v);
      expect(model.merges.length).toBe(v - 259);
      // Each merge joins two tokens that exist by the time it applies into the token with the next id.
      const bad = model.merges.findIndex((m, i) => {
        const [a, b] = m.split(' ');
        return !(model.vocab[a] < 259 + i && model.vocab[b] < 259 + i && model.vocab[a + b] === 259 + i);
      });
      expect(bad, `merge ${bad}: ${model.merges[bad]}`).toBe(-1);
    },
  );

  it('is deterministic', () => {
    expect(JSON.stringify(generateTokenizer(3000))).toBe(JSON.stringify(generateTokenizer(3000)));
  });

  it('learns common English pieces first', () => {
    const merges = (generateTokenizer(600).tokenizer.model as { merges: string[] }).merges;
    expect(merges.slice(0, 40)).toContain('Ġt he');
  });

  it('rejects a vocabulary too small for bytes + special tokens', () => {
    expect(() => generateTokenizer(258)).toThrow(/vocab_size >= 259/);
  });

  it.each([512, 2048])('vocab %i: loads with AutoTokenizer, round-trips text, applies the chat template', async (v) => {
    const { g, tok } = await load(v);
    for (const text of TEXTS) {
      const ids = tok.encode(text);
      for (const id of ids) expect(id).toBeLessThan(v);
      expect(tok.decode(ids)).toBe(text);
    }
    // Merges shorten text: fewer tokens than bytes.
    expect(tok.encode(TEXTS[0]).length).toBeLessThan(new TextEncoder().encode(TEXTS[0]).length * 0.7);
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi there' },
    ];
    const text = tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true });
    expect(text).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n',
    );
    const ids = Array.from(
      tok.apply_chat_template<true, false, false>(messages, {
        add_generation_prompt: true,
        return_tensor: false,
        return_dict: false,
      }),
    );
    expect(ids[0]).toBe(g.imStartId);
    expect(ids.filter((id) => id === g.imEndId)).toHaveLength(2);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.decode(ids, { skip_special_tokens: true })).toBe('system\nBe brief.\nuser\nHi there\nassistant\n');
    expect(tok.eos_token_id).toBe(g.imEndId);
    expect(tok.pad_token_id).toBe(g.endOfTextId);
  });
});
