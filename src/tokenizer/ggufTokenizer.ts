// A tokenizer.json + tokenizer_config.json built from a GGUF file's tokenizer.ggml.* metadata, so a GGUF file alone
// is enough for text prompts (llama.cpp's converter wrote these keys from the same Hugging Face files).
// Byte-level BPE ('gpt2': GPT-2, Llama 3, Qwen2/3) takes the file's merges; SentencePiece BPE ('llama': Llama 2,
// TinyLlama, Mistral) gets merges derived from the piece scores (spmVocab.ts). Unigram ('t5') and others are refused.
import { ShoalError } from '../errors.ts';
import { byteLevelBpeJson } from './generate.ts';
import { spmTokenizerJson } from './spmVocab.ts';

/** The GPT-4-style split regex of Llama 3 and Qwen2 (their tokenizer.json Split pattern), which differ in digits. */
function splitPattern(digits: string): string {
  const head = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|";
  return head + digits + '| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
}

const byteLevel = (useRegex: boolean) => ({
  type: 'ByteLevel',
  add_prefix_space: false,
  trim_offsets: true,
  use_regex: useRegex,
});
const splitThenBytes = (pattern: string) => ({
  type: 'Sequence',
  pretokenizers: [
    { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
    byteLevel(false),
  ],
});

/** llama.cpp's pre-tokenizer names (tokenizer.ggml.pre) -> the Hugging Face pre-tokenizer that splits the same. */
const PRE_TOKENIZERS: Record<string, () => Record<string, unknown>> = {
  'gpt-2': () => byteLevel(true), // ByteLevel's own GPT-2 regex
  default: () => byteLevel(true),
  'llama-bpe': () => splitThenBytes(splitPattern('\\p{N}{1,3}')), // Llama 3: digits in groups of up to three
  qwen2: () => splitThenBytes(splitPattern('\\p{N}')), // Qwen2/3: one digit per piece
  // SmolLM/SmolLM2: every digit apart, then GPT-2's split (their tokenizer.json: Digits + ByteLevel)
  smollm: () => ({ type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] }),
};

/** tokenizer.ggml.token_type (llama.cpp llama_token_type): 2 unknown, 3 control (special), 4 user-defined (added). */
const UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4;

function fail(file: string, why: string): never {
  throw new ShoalError('ERR_TOKENIZER', `${file}: ${why}`);
}

function preTokenizer(file: string, pre: unknown): Record<string, unknown> {
  const name = typeof pre === 'string' ? pre : 'default';
  const make = PRE_TOKENIZERS[name];
  if (!make)
    fail(file, `tokenizer.ggml.pre "${name}" is not supported (supported: ${Object.keys(PRE_TOKENIZERS).join(', ')})`);
  return make();
}

/** A per-token list (tokenizer.ggml.scores, token_type) of numbers, one per token; null when absent. */
function perToken(file: string, md: Record<string, unknown>, key: string, n: number): number[] | null {
  const raw = md[`tokenizer.ggml.${key}`];
  if (raw === undefined) return null;
  const v: unknown = ArrayBuffer.isView(raw) ? Array.from(raw as unknown as ArrayLike<number>) : raw;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number'))
    fail(file, `tokenizer.ggml.${key} is not a list of numbers`);
  if (v.length !== n) fail(file, `tokenizer.ggml.${key} has ${v.length} entries for ${n} tokens`);
  return v;
}

/**
 * The tokens llama.cpp splits out of the text before its tokenizer runs (control, user-defined and, for
 * SentencePiece, unknown: its cache_special_tokens), as added tokens; `normalized: false` matches them in the raw text.
 */
function addedTokens(tokens: string[], types: number[], splitTypes: number[]): Record<string, unknown>[] {
  return tokens.flatMap((content, id) =>
    splitTypes.includes(types[id])
      ? [
          {
            id,
            content,
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: false,
            special: types[id] !== USER_DEFINED,
          },
        ]
      : [],
  );
}

/** Byte-level BPE (GPT-2, Llama 3, Qwen2/3): the merges are in the file; `bos` is the BOS to add, if any. */
function gpt2Json(file: string, md: Record<string, unknown>, tokens: string[], types: number[], bos: Special) {
  return byteLevelBpeJson({
    addedTokens: addedTokens(tokens, types, [CONTROL, USER_DEFINED]),
    vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
    merges: (md['tokenizer.ggml.merges'] as string[] | undefined) ?? [],
    preTokenizer: preTokenizer(file, md['tokenizer.ggml.pre']),
    postProcessor: bos
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos.token, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bos.token, type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { [bos.token]: { id: bos.token, ids: [bos.id], tokens: [bos.token] } },
        }
      : null,
  });
}

/** llama.cpp's defaults for SentencePiece vocabularies without the keys: BOS 1, EOS 2, unknown 0. */
const SPM_DEFAULT_IDS: Record<string, number> = { bos: 1, eos: 2, unknown: 0 };

type Special = { token: string; id: number } | null;

function spmJson(file: string, md: Record<string, unknown>, tokens: string[], types: number[], s: Specials) {
  const scores = perToken(file, md, 'scores', tokens.length);
  if (!scores) fail(file, 'tokenizer.ggml.scores is missing (a SentencePiece vocabulary needs a score per token)');
  return spmTokenizerJson({
    tokens,
    scores,
    addedTokens: addedTokens(tokens, types, [UNKNOWN, CONTROL, USER_DEFINED]),
    unkToken: s.unk?.token ?? null,
    addSpacePrefix: md['tokenizer.ggml.add_space_prefix'] !== false, // llama.cpp: true unless the key says no
    bos: s.addBos ? s.bos : null,
    eos: s.addEos ? s.eos : null,
  });
}

interface Specials {
  bos: Special;
  eos: Special;
  unk: Special;
  addBos: boolean;
  addEos: boolean;
}

/** Special tokens and whether llama.cpp adds BOS/EOS (SentencePiece: BOS unless the file says no; gpt2: if told). */
function specials(md: Record<string, unknown>, tokens: string[], spm: boolean): Specials & { pad: Special } {
  const special = (key: string): Special => {
    const v = md[`tokenizer.ggml.${key}_token_id`];
    const id = typeof v === 'number' ? v : spm ? SPM_DEFAULT_IDS[key] : undefined;
    const ok = id !== undefined && Number.isInteger(id) && id >= 0 && id < tokens.length;
    return ok ? { token: tokens[id], id } : null;
  };
  const flag = (key: string, fallback: boolean) => {
    const v = md[`tokenizer.ggml.${key}`];
    return typeof v === 'boolean' ? v : fallback;
  };
  const [bos, eos] = [special('bos'), special('eos')];
  return {
    bos,
    eos,
    unk: special('unknown'),
    pad: special('padding'),
    addBos: bos !== null && flag('add_bos_token', spm),
    addEos: spm && eos !== null && flag('add_eos_token', false),
  };
}

/** The two Hugging Face tokenizer files equivalent to a GGUF file's tokenizer metadata. */
export function ggufTokenizerFiles(
  file: string,
  md: Record<string, unknown>,
): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> } {
  const model = md['tokenizer.ggml.model'];
  if (model !== 'gpt2' && model !== 'llama')
    fail(
      file,
      `tokenizer.ggml.model ${JSON.stringify(model)} is not supported (gpt2: byte-level BPE, llama: SentencePiece BPE)`,
    );
  const tokens = md['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string'))
    fail(file, 'tokenizer.ggml.tokens is missing or not a list of strings');
  const types = perToken(file, md, 'token_type', tokens.length) ?? [];
  const spm = model === 'llama';
  const s = specials(md, tokens, spm);
  const tokenizerJson = spm
    ? spmJson(file, md, tokens, types, s)
    : gpt2Json(file, md, tokens, types, s.addBos ? s.bos : null);
  const tokenizerConfig = {
    tokenizer_class: spm ? 'LlamaTokenizerFast' : 'PreTrainedTokenizerFast',
    bos_token: s.bos?.token ?? null,
    eos_token: s.eos?.token ?? null,
    pad_token: s.pad?.token ?? null,
    unk_token: s.unk?.token ?? null,
    add_bos_token: s.addBos,
    ...(spm ? { add_eos_token: s.addEos } : {}),
    clean_up_tokenization_spaces: false,
    chat_template: typeof md['tokenizer.chat_template'] === 'string' ? md['tokenizer.chat_template'] : undefined,
  };
  return { tokenizerJson, tokenizerConfig };
}

/** The inverse of ggufTokenizerFiles for byte-level BPE files (make-model's GGUF presets): tokenizer.* metadata. */
export function ggufTokenizerMetadata(
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
): Record<string, string | number | string[] | number[] | Int32Array> {
  const model = tokenizerJson.model as { type?: string; vocab: Record<string, number>; merges: (string | string[])[] };
  const pre = tokenizerJson.pre_tokenizer as { type?: string; use_regex?: boolean } | null;
  if (model.type !== 'BPE' || pre?.type !== 'ByteLevel' || !pre.use_regex)
    throw new ShoalError('ERR_TOKENIZER', 'only GPT-2 style byte-level BPE tokenizers are written to GGUF');
  const tokens: string[] = [];
  for (const [t, id] of Object.entries(model.vocab)) tokens[id] = t;
  const added = (tokenizerJson.added_tokens as { id: number; content: string; special: boolean }[] | undefined) ?? [];
  for (const a of added) tokens[a.id] = a.content;
  const types = tokens.map(() => 1);
  for (const a of added) types[a.id] = a.special ? CONTROL : USER_DEFINED;
  const md: Record<string, string | number | string[] | number[] | Int32Array> = {
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': 'gpt-2',
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': Int32Array.from(types), // INT32, as llama.cpp requires
    'tokenizer.ggml.merges': model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m)),
  };
  const idOf = (key: string) => (typeof tokenizerConfig[key] === 'string' ? tokens.indexOf(tokenizerConfig[key]) : -1);
  for (const [key, field] of [
    ['bos', 'bos_token'],
    ['eos', 'eos_token'],
    ['padding', 'pad_token'],
  ] as const)
    if (idOf(field) >= 0) md[`tokenizer.ggml.${key}_token_id`] = idOf(field);
  if (typeof tokenizerConfig.chat_template === 'string') md['tokenizer.chat_template'] = tokenizerConfig.chat_template;
  return md;
}
