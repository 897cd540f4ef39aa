// The tokenizer built from a GGUF file's metadata against the Hugging Face tokenizer.json shipped beside it
// (tiny-q-llama): the same vocabulary, merges and special tokens, and the same ids, text and chat rendering.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PreTrainedTokenizer } from '@huggingface/transformers';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixtureDir, fixtureLocation } from '../testing/fixturesNode.ts';
import { fileSource } from '../weights/fileSource.ts';
import { readGgufHeader } from '../weights/gguf.ts';
import { ggufTokenizerFiles } from './ggufTokenizer.ts';
import { loadTokenizer, type Tokenizer } from './index.ts';
import { SAMPLE_MESSAGES as MESSAGES, SAMPLE_TEXTS as TEXTS } from '../testing/tokenizerSamples.ts';

const DIR = fixtureDir('tiny-q-llama');

describe.each(['Q8_0', 'Q4_K_M'])('tokenizer from model-%s.gguf', (quant) => {
  let fromGguf: Tokenizer, fromHf: Tokenizer;
  beforeAll(async () => {
    [fromGguf, fromHf] = await Promise.all([
      loadTokenizer(fixtureLocation(`tiny-q-llama/${quant}`)),
      loadTokenizer(DIR),
    ]);
  });

  it('builds the vocabulary, merges and special tokens of the shipped tokenizer.json', async () => {
    const file = fixtureLocation(`tiny-q-llama/${quant}`);
    const { tokenizerJson, tokenizerConfig } = ggufTokenizerFiles(
      file,
      (await readGgufHeader(fileSource(file))).metadata,
    );
    const hf = JSON.parse(readFileSync(join(DIR, 'tokenizer.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    const model = tokenizerJson.model as Record<string, unknown>;
    expect(model.vocab).toEqual(hf.model.vocab);
    expect(model.merges).toEqual(hf.model.merges);
    expect(tokenizerJson.added_tokens).toEqual(hf.added_tokens);
    expect(tokenizerJson.pre_tokenizer).toEqual(hf.pre_tokenizer);
    const cfg = JSON.parse(readFileSync(join(DIR, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    expect(tokenizerConfig.chat_template).toBe(cfg.chat_template);
    expect(tokenizerConfig.eos_token).toBe(cfg.eos_token);
  });

  it('encodes, decodes and renders the chat as the Hugging Face files do', () => {
    for (const t of TEXTS) {
      expect(fromGguf.encode(t), JSON.stringify(t)).toEqual(fromHf.encode(t));
      expect(fromGguf.decode(fromGguf.encode(t))).toBe(fromHf.decode(fromHf.encode(t)));
    }
    for (const g of [false, true]) {
      expect(fromGguf.chatText(MESSAGES, { addGenerationPrompt: g })).toBe(
        fromHf.chatText(MESSAGES, { addGenerationPrompt: g }),
      );
      expect(fromGguf.applyChatTemplate(MESSAGES, { addGenerationPrompt: g })).toEqual(
        fromHf.applyChatTemplate(MESSAGES, { addGenerationPrompt: g }),
      );
    }
    expect(fromGguf.eosTokenIds).toEqual(fromHf.eosTokenIds);
    expect(fromGguf.vocabSize).toBe(fromHf.vocabSize);
  });
});

describe('GGUF tokenizer variants', () => {
  let md: Record<string, unknown>;
  beforeAll(async () => {
    md = (await readGgufHeader(fileSource(fixtureLocation('tiny-q-llama/Q8_0')))).metadata;
  });
  const build = (extra: Record<string, unknown>) => {
    const { tokenizerJson, tokenizerConfig } = ggufTokenizerFiles('m.gguf', { ...md, ...extra });
    return new PreTrainedTokenizer(tokenizerJson, tokenizerConfig);
  };

  it('adds BOS when tokenizer.ggml.add_bos_token says so', () => {
    const tok = build({ 'tokenizer.ggml.bos_token_id': 311, 'tokenizer.ggml.add_bos_token': true });
    expect(tok.encode('hi')[0]).toBe(311);
    expect(build({}).encode('hi')[0]).not.toBe(311);
  });

  it.each([
    ['gpt-2', 4],
    ['smollm', 5],
    ['qwen2', 5],
  ])('%s: "12345" with a "1 2" merge is %i tokens (digits apart or not)', (pre, n) => {
    const tokens = [...(md['tokenizer.ggml.tokens'] as string[]), '12'];
    const extra = {
      'tokenizer.ggml.tokens': tokens,
      'tokenizer.ggml.token_type': [...(md['tokenizer.ggml.token_type'] as number[]), 1],
      'tokenizer.ggml.merges': ['1 2', ...(md['tokenizer.ggml.merges'] as string[])],
      'tokenizer.ggml.pre': pre,
    };
    expect(build(extra).encode('12345')).toHaveLength(n);
  });
});

describe('GGUF tokenizer errors', () => {
  it('names an unsupported vocabulary type and pre-tokenizer', () => {
    expect(() => ggufTokenizerFiles('m.gguf', { 'tokenizer.ggml.model': 't5' })).toThrow(
      /m\.gguf: tokenizer\.ggml\.model "t5" is not supported/,
    );
    expect(() =>
      ggufTokenizerFiles('m.gguf', {
        'tokenizer.ggml.model': 'gpt2',
        'tokenizer.ggml.tokens': ['a'],
        'tokenizer.ggml.pre': 'xyz',
      }),
    ).toThrow(/tokenizer\.ggml\.pre "xyz" is not supported/);
  });
});
