// Build a byte-level BPE tokenizer (Hugging Face tokenizers format) of any vocabulary size, for
// generated models: 256 byte symbols, the ChatML special tokens, then deterministic merges.
import { ShoalError } from '../errors.ts';
import { mulberry32 } from '../random.ts';

export const END_OF_TEXT = '<|endoftext|>';
export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';

/** ChatML, the same template as the shared fixtures. */
export const CHATML_TEMPLATE =
  '{% for message in messages %}' +
  "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}" +
  '{% endfor %}' +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

// Original text written for this generator: plain English with chat words, numbers and a little
// code, so the first merges are the pieces real text is made of.
const CORPUS = `
The quick brown fox jumps over the lazy dog. A model that runs in the browser has to load its
weights before it can say anything, and the first token is the one people wait for. When many
devices share the work, each one holds a few layers and passes the hidden state to the next one.
The user asks a question and the assistant answers it. The system message sets the tone of the
conversation. Hello! How are you today? I am fine, thank you. What is the weather like in the
city this morning? It is sunny and warm, with a light wind from the west.
There are three things to remember: the plan, the people and the time. We need to make sure that
the data is ready before the meeting starts. If you have any questions, please let me know.
Once upon a time there was a small village by the river. The children played in the fields while
their parents worked on the farms. Every evening they would gather around the fire and tell
stories about the old days, when the world was wider and the nights were longer.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 12 16 20 32 64 100 128 256 512 1000 1024 2048 4096 2024 2025.
function add(a, b) { return a + b; }
for (let i = 0; i < n; i++) { sum += x[i] * w[i]; }
def main(): print("hello world") return None
import numpy as np
The cost of a layer depends on how many parameters it holds and how fast the device can read them.
Learning is the process of finding the weights that make the predictions match the data. Good
writing is clear, short and true. Science asks how things work; engineering asks how to build
them so that they keep working. The answer is yes, but only if the question is asked the right way.
She said that they would come back later in the afternoon, after the rain had stopped.
He thought about it for a moment and then decided to take the longer road through the forest.
Information, communication, understanding, development, government, international, important,
different, something, everything, because, between, through, without, another, however.
`;

// GPT-2's byte <-> unicode table: printable bytes map to themselves, the rest to code points 256+.
function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++)
    table[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  return table;
}

// The GPT-2 pre-tokenizer pattern (what the ByteLevel pre-tokenizer with use_regex applies).
const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Classic BPE training on the built-in corpus: merge the most frequent adjacent pair, ties by text. */
function trainMerges(symbols: string[], maxMerges: number): Array<[string, string]> {
  const enc = new TextEncoder();
  const counts = new Map<string, number>();
  for (const m of CORPUS.matchAll(PRETOKENIZE)) {
    const word = Array.from(enc.encode(m[0]), (b) => symbols[b]).join('\u0000');
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  const words = [...counts].map(([w, n]) => ({ parts: w.split('\u0000'), n }));
  const merges: Array<[string, string]> = [];
  while (merges.length < maxMerges) {
    const pairs = new Map<string, number>();
    for (const { parts, n } of words) {
      for (let i = 0; i + 1 < parts.length; i++) {
        const key = parts[i] + '\u0000' + parts[i + 1];
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best = '';
    let bestN = 1; // a pair seen once teaches nothing: leave the rest to the filler
    for (const [key, n] of pairs) if (n > bestN || (n === bestN && bestN > 1 && key < best)) [best, bestN] = [key, n];
    if (!best) break;
    const [a, b] = best.split('\u0000');
    merges.push([a, b]);
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.parts.length; i++) {
        if (i + 1 < w.parts.length && w.parts[i] === a && w.parts[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(w.parts[i]);
      }
      w.parts = out;
    }
  }
  return merges;
}

export interface GeneratedTokenizer {
  /** tokenizer.json contents. */
  tokenizer: Record<string, unknown>;
  /** tokenizer_config.json contents. */
  tokenizerConfig: Record<string, unknown>;
  endOfTextId: number;
  imStartId: number;
  imEndId: number;
}

const SPECIALS = [END_OF_TEXT, IM_START, IM_END];
const MAX_FILLER_TOKEN_CHARS = 16;

/**
 * A byte-level BPE tokenizer with exactly vocabSize entries: ids 0..255 are the bytes, 256..258 the
 * special tokens, the rest merges (first learned from the built-in corpus, then filler merges that
 * glue existing tokens to letters, deterministically). Independent of any seed, so a draft and its
 * target always share it.
 */
/**
 * A byte-level BPE tokenizer.json (GPT-2 style: ByteLevel pre-tokenizer and decoder, no normalizer): ours, and the
 * one rebuilt from a GGUF file's tokenizer.ggml.* metadata (ggufTokenizer.ts), which may split differently first.
 */
export function byteLevelBpeJson(parts: {
  addedTokens: unknown[];
  vocab: Record<string, number>;
  merges: string[];
  preTokenizer?: unknown;
  postProcessor?: unknown;
}) {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: parts.addedTokens,
    normalizer: null,
    pre_tokenizer: parts.preTokenizer ?? {
      type: 'ByteLevel',
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: parts.postProcessor ?? null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: parts.vocab,
      merges: parts.merges,
    },
  };
}

export function generateTokenizer(vocabSize: number, opts: { modelMaxLength?: number } = {}): GeneratedTokenizer {
  const minVocab = 256 + SPECIALS.length;
  if (!Number.isInteger(vocabSize) || vocabSize < minVocab) {
    throw new ShoalError(
      'ERR_TOKENIZER',
      `a byte-level tokenizer needs vocab_size >= ${minVocab} ` +
        `(256 bytes + ${SPECIALS.length} special tokens), got ${vocabSize}`,
    );
  }
  const symbols = bytesToUnicode();
  const vocab = new Map<string, number>();
  symbols.forEach((s, i) => vocab.set(s, i));
  SPECIALS.forEach((s, i) => vocab.set(s, 256 + i));
  const nMerges = vocabSize - minVocab;
  const merges: Array<[string, string]> = [];
  const add = (a: string, b: string) => {
    merges.push([a, b]);
    vocab.set(a + b, vocab.size);
  };
  for (const [a, b] of trainMerges(symbols, nMerges)) add(a, b);

  // Filler: append a letter (or a learned continuation piece) to a random existing token. Keeps
  // tokens word-like so random models emit readable-ish text; the length cap keeps the file small.
  const rand = mulberry32(0x5eed);
  const pieces = [...'abcdefghijklmnopqrstuvwxyz', ...merges.map(([a, b]) => a + b).filter((t) => /^[a-z]+$/.test(t))];
  const starts: string[] = [...'abcdefghijklmnopqrstuvwxyz'].flatMap((c) => [c, 'Ġ' + c]).filter((t) => vocab.has(t));
  for (const [a, b] of merges) if (/^Ġ?[a-z]+$/.test(a + b)) starts.push(a + b);
  while (merges.length < nMerges) {
    const a = starts[rand() % starts.length];
    const b = pieces[rand() % pieces.length];
    const t = a + b;
    if (vocab.has(t) || t.length > MAX_FILLER_TOKEN_CHARS || !vocab.has(a) || !vocab.has(b)) continue;
    add(a, b);
    starts.push(t);
  }

  const addedTokens = SPECIALS.map((content, i) => ({
    id: 256 + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizer = byteLevelBpeJson({
    addedTokens,
    vocab: Object.fromEntries(vocab),
    merges: merges.map(([a, b]) => `${a} ${b}`),
  });
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: null,
    eos_token: IM_END,
    pad_token: END_OF_TEXT,
    unk_token: null,
    model_max_length: opts.modelMaxLength ?? 2048,
    clean_up_tokenization_spaces: false,
    added_tokens_decoder: Object.fromEntries(addedTokens.map(({ id, ...rest }) => [String(id), rest])),
    chat_template: CHATML_TEMPLATE,
  };
  return { tokenizer, tokenizerConfig, endOfTextId: 256, imStartId: 257, imEndId: 258 };
}
