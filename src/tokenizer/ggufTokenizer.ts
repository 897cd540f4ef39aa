// A tokenizer.json + tokenizer_config.json built from a GGUF file's tokenizer.ggml.* metadata, so a GGUF file alone
// is enough for text prompts (llama.cpp's converter wrote these keys from the same Hugging Face files).
// Byte-level BPE ('gpt2' vocabularies: GPT-2, Llama 3, Qwen2/3) only; SentencePiece ('llama') is not built yet.
import { ShoalError } from '../errors.ts';
import { byteLevelBpeJson } from './generate.ts';

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

/** tokenizer.ggml.token_type (llama.cpp llama_token_type): 3 control (special), 4 user-defined (added). */
const CONTROL = 3,
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

/** The two Hugging Face tokenizer files equivalent to a GGUF file's tokenizer metadata. */
export function ggufTokenizerFiles(
  file: string,
  md: Record<string, unknown>,
): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> } {
  const model = md['tokenizer.ggml.model'];
  if (model !== 'gpt2')
    fail(file, `tokenizer.ggml.model ${JSON.stringify(model)} is not supported (only gpt2, byte-level BPE)`);
  const tokens = md['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string'))
    fail(file, 'tokenizer.ggml.tokens is missing or not a list of strings');
  const types = (md['tokenizer.ggml.token_type'] as number[] | undefined) ?? [];
  const merges = (md['tokenizer.ggml.merges'] as string[] | undefined) ?? [];
  const tokenOf = (key: string) => {
    const id = md[`tokenizer.ggml.${key}_token_id`];
    return typeof id === 'number' && id >= 0 && id < tokens.length ? tokens[id] : null;
  };
  const addedTokens = tokens.flatMap((content, id) =>
    types[id] === CONTROL || types[id] === USER_DEFINED
      ? [
          {
            id,
            content,
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: false,
            special: types[id] === CONTROL,
          },
        ]
      : [],
  );
  const bos = tokenOf('bos');
  const addBos = md['tokenizer.ggml.add_bos_token'] === true && bos !== null;
  const bosId = tokens.indexOf(bos ?? '');
  const tokenizerJson = byteLevelBpeJson({
    addedTokens,
    vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
    merges,
    preTokenizer: preTokenizer(file, md['tokenizer.ggml.pre']),
    postProcessor: addBos
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bos, type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
        }
      : null,
  });
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: bos,
    eos_token: tokenOf('eos'),
    pad_token: tokenOf('padding'),
    unk_token: tokenOf('unknown'),
    add_bos_token: addBos,
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
