// Tokenizer: a thin wrapper over @huggingface/transformers tokenizers, loaded from a model folder's
// tokenizer.json + tokenizer_config.json wherever the folder lives (local path, URL, Hub repo id), or from a GGUF file.
import * as transformers from '@huggingface/transformers';
import { PreTrainedTokenizer } from '@huggingface/transformers';
import { ShoalError, errorMessage } from '../errors.ts';
import { resolveModelFiles, type ModelFiles } from '../weights/model.ts';
import { FileNotFoundError } from '../weights/source.ts';
import { readGgufHeader } from '../weights/gguf.ts';
import { ggufLocation } from '../weights/locate.ts';
import { ggufTokenizerFiles } from './ggufTokenizer.ts';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface Tokenizer {
  /** Ids of `text`, with the special tokens the tokenizer adds by default (e.g. BOS for llama). */
  encode(text: string): number[];
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  /** Ids of the rendered chat template (special tokens come from the template, none are added). */
  applyChatTemplate(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean }): number[];
  /** The rendered chat template as text. */
  chatText(messages: ChatMessage[], opts?: { addGenerationPrompt?: boolean }): string;
  /** Token ids that end generation (the tokenizer's eos token; callers may add config.json's). */
  eosTokenIds: number[];
  vocabSize: number;
}

type Ctor = new (tokenizerJSON: unknown, tokenizerConfig: unknown) => PreTrainedTokenizer;

/** The class AutoTokenizer would pick: tokenizer_class without its "Fast" suffix, else the base class. */
function tokenizerClass(config: Record<string, unknown>): Ctor {
  const name =
    typeof config.tokenizer_class === 'string' ? config.tokenizer_class.replace(/Fast$/, '') : 'PreTrainedTokenizer';
  const cls = (transformers as unknown as Record<string, unknown>)[name];
  if (typeof cls === 'function' && (cls === PreTrainedTokenizer || cls.prototype instanceof PreTrainedTokenizer))
    return cls as Ctor;
  return PreTrainedTokenizer;
}

async function readJson(files: ModelFiles, name: string, required: boolean): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await files.text(name);
  } catch (e) {
    if (e instanceof FileNotFoundError && !required) return null;
    const why = e instanceof FileNotFoundError ? 'is missing' : `could not be read (${errorMessage(e)})`;
    throw new ShoalError(
      'ERR_TOKENIZER',
      `${files.base}: ${name} ${why}; a model folder needs tokenizer.json and tokenizer_config.json for text prompts`,
      { cause: e },
    );
  }
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('expected a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new ShoalError('ERR_TOKENIZER', `${files.base}: ${name} is not valid JSON (${errorMessage(e)})`);
  }
}

/**
 * Load from a local folder (Node), an http(s) URL of a model folder, a Hub repo id, ModelFiles, or any GGUF
 * location openModelAt takes (the tokenizer then comes from the file's metadata).
 */
export async function loadTokenizer(location: string | ModelFiles): Promise<Tokenizer> {
  const gguf = typeof location === 'string' ? await ggufLocation(location) : null;
  if (gguf) {
    const src = (await resolveModelFiles(gguf.folder)).bytes(gguf.files[0]);
    const { tokenizerJson, tokenizerConfig } = ggufTokenizerFiles(src.name, (await readGgufHeader(src)).metadata);
    return fromJson(tokenizerJson, tokenizerConfig, src.name);
  }
  const files = typeof location === 'string' ? await resolveModelFiles(location) : location;
  const [tokenizerJson, tokenizerConfig] = await Promise.all([
    readJson(files, 'tokenizer.json', true),
    readJson(files, 'tokenizer_config.json', false),
  ]);
  return fromJson(tokenizerJson, tokenizerConfig ?? {}, files.base);
}

function fromJson(tokenizerJson: unknown, tokenizerConfig: Record<string, unknown>, base: string): Tokenizer {
  let tok: PreTrainedTokenizer;
  try {
    tok = new (tokenizerClass(tokenizerConfig))(tokenizerJson, tokenizerConfig);
  } catch (e) {
    throw new ShoalError('ERR_TOKENIZER', `${base}: tokenizer.json could not be loaded (${errorMessage(e)})`, {
      cause: e,
    });
  }
  return wrap(tok, base);
}

function wrap(tok: PreTrainedTokenizer, base: string): Tokenizer {
  const guard = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new ShoalError('ERR_TOKENIZER', `${base}: ${what} failed (${errorMessage(e)})`, { cause: e });
    }
  };
  const render = (messages: ChatMessage[], addGenerationPrompt: boolean): string => {
    if (!tok.chat_template)
      throw new ShoalError(
        'ERR_TOKENIZER',
        `${base}: tokenizer_config.json has no chat_template; use a plain prompt instead of --chat`,
      );
    return guard('applying the chat template', () =>
      tok.apply_chat_template<false>(messages, { add_generation_prompt: addGenerationPrompt, tokenize: false }),
    );
  };
  const eos = tok.eos_token_id;
  return {
    encode: (text) => guard('encoding', () => tok.encode(text)),
    // transformers.js throws on an empty list; an empty generation decodes to ''.
    decode: (ids, opts) =>
      ids.length === 0
        ? ''
        : guard('decoding', () => tok.decode(ids, { skip_special_tokens: opts?.skipSpecialTokens ?? false })),
    // Tokenize the rendered text without adding special tokens: the template already placed them
    // (the same as apply_chat_template with tokenize=true, in both transformers and transformers.js).
    applyChatTemplate: (messages, opts) => {
      const text = render(messages, opts?.addGenerationPrompt ?? false);
      return guard('encoding the chat', () => tok.encode(text, { add_special_tokens: false }));
    },
    chatText: (messages, opts) => render(messages, opts?.addGenerationPrompt ?? false),
    eosTokenIds: typeof eos === 'number' && eos >= 0 ? [eos] : [],
    vocabSize: tok.get_vocab().size,
  };
}
