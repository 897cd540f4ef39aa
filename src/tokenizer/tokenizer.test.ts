// The fixture tokenizer from disk and over HTTP: text round-trips, the ChatML template renders and tokenizes as
// transformers.js does.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShoalError } from '../errors.ts';
import { FIXTURES_DIR } from '../testing/fixturesNode.ts';
import { caught } from '../testing/assertions.ts';
import { serveDir, type TestServer } from '../weights/testServer.ts';
import { loadTokenizer, type Tokenizer } from './index.ts';
import { SAMPLE_MESSAGES as MESSAGES, SAMPLE_TEXTS as TEXTS } from '../testing/tokenizerSamples.ts';

const FIXTURES = FIXTURES_DIR;
const CHATML = '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n';

let server: TestServer;
let tmp: string;

beforeAll(async () => {
  server = await serveDir(FIXTURES);
  tmp = mkdtempSync(join(tmpdir(), 'shoal-tok-'));
  const cfg = JSON.parse(readFileSync(join(FIXTURES, 'tiny-llama', 'tokenizer_config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const tokJson = readFileSync(join(FIXTURES, 'tiny-llama', 'tokenizer.json'), 'utf8');
  mkdirSync(join(tmp, 'no-tokenizer'));
  mkdirSync(join(tmp, 'corrupt'));
  writeFileSync(join(tmp, 'corrupt', 'tokenizer.json'), tokJson.slice(0, 100));
  mkdirSync(join(tmp, 'no-template'));
  writeFileSync(join(tmp, 'no-template', 'tokenizer.json'), tokJson);
  writeFileSync(
    join(tmp, 'no-template', 'tokenizer_config.json'),
    JSON.stringify({ ...cfg, chat_template: undefined }),
  );
});

afterAll(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe.each([
  ['disk', 'tiny-llama'],
  ['disk', 'tiny-qwen2'],
  ['http', 'tiny-llama'],
  ['http', 'tiny-qwen2'],
] as const)('fixture tokenizer from %s (%s)', (where, name) => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(where === 'disk' ? join(FIXTURES, name) : server.url + name);
  });

  it('round-trips text', () => {
    for (const text of TEXTS) {
      const ids = tok.encode(text);
      for (const id of ids) expect(id).toBeLessThan(tok.vocabSize);
      expect(tok.decode(ids)).toBe(text);
    }
    expect(tok.encode('Hello world').length).toBeLessThan('Hello world'.length); // merges happen
    expect(tok.decode([])).toBe('');
  });

  it('renders the ChatML template exactly', () => {
    expect(tok.chatText(MESSAGES)).toBe(CHATML);
    expect(tok.chatText(MESSAGES, { addGenerationPrompt: true })).toBe(CHATML + '<|im_start|>assistant\n');
  });

  it('tokenizes the chat with special tokens as single ids, as AutoTokenizer does', async () => {
    const ids = tok.applyChatTemplate(MESSAGES, { addGenerationPrompt: true });
    const imStart = tok.encode('<|im_start|>');
    const imEnd = tok.encode('<|im_end|>');
    expect(imStart).toHaveLength(1);
    expect(imEnd).toEqual(tok.eosTokenIds);
    expect(ids[0]).toBe(imStart[0]);
    expect(ids.filter((id) => id === imStart[0])).toHaveLength(3);
    expect(ids.filter((id) => id === imEnd[0])).toHaveLength(2);
    expect(tok.decode(ids)).toBe(CHATML + '<|im_start|>assistant\n');
    // Independent path: transformers.js loading the folder itself.
    env.allowRemoteModels = false;
    env.localModelPath = FIXTURES + '/';
    const auto = await AutoTokenizer.from_pretrained(name);
    expect(ids).toEqual(
      auto.apply_chat_template(MESSAGES, {
        add_generation_prompt: true,
        tokenize: true,
        return_tensor: false,
        return_dict: false,
      }),
    );
    expect(tok.encode(TEXTS[1])).toEqual(auto.encode(TEXTS[1]));
  });

  it('reports the eos token of the config', () => {
    const config = JSON.parse(readFileSync(join(FIXTURES, name, 'config.json'), 'utf8')) as { eos_token_id: number };
    expect(tok.eosTokenIds).toEqual([config.eos_token_id]);
  });
});

describe('tokenizer errors', () => {
  async function caughtTokenizerError(p: Promise<unknown>): Promise<ShoalError> {
    const e = await caught(p);
    expect(e.code).toBe('ERR_TOKENIZER');
    return e;
  }

  it('names a missing tokenizer.json, locally and over HTTP', async () => {
    expect((await caughtTokenizerError(loadTokenizer(join(tmp, 'no-tokenizer')))).message).toMatch(
      /tokenizer\.json is missing/,
    );
    expect((await caughtTokenizerError(loadTokenizer(server.url + 'nowhere'))).message).toMatch(
      /nowhere\/: tokenizer\.json is missing/,
    );
  });

  it('names a corrupt tokenizer.json', async () => {
    expect((await caughtTokenizerError(loadTokenizer(join(tmp, 'corrupt')))).message).toMatch(
      /tokenizer\.json is not valid JSON/,
    );
  });

  it('says when there is no chat template', async () => {
    const tok = await loadTokenizer(join(tmp, 'no-template'));
    expect(tok.decode(tok.encode('still works'))).toBe('still works');
    expect(() => tok.applyChatTemplate(MESSAGES)).toThrow(/has no chat_template/);
  });
});
