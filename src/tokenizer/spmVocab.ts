// SentencePiece ('llama') GGUF vocabularies as a Hugging Face BPE tokenizer.json, built as transformers'
// LlamaConverter does, so that transformers.js splits text as llama.cpp's SPM tokenizer (llm_tokenizer_spm) does.

/** SentencePiece's stand-in for a space inside pieces. */
export const SPIECE_UNDERLINE = '\u2581';

/**
 * BPE merges that reproduce llama.cpp's SPM merging. llama.cpp starts from the text's characters and repeatedly joins
 * the adjacent pair whose concatenation is a vocabulary piece of the highest score (leftmost on ties); a BPE model does
 * the same with merge ranks in place of scores. So every split of a piece into a left and a right part is a merge,
 * ranked by the piece's score, as transformers' generate_merges (convert_slow_tokenizer.py) orders them: score
 * descending, then left length descending, right length descending, then vocabulary order (a stable sort).
 * That is exact when pieces' scores are distinct: two splits of one piece are never pending at once (the same
 * substring is joined the same way wherever it stands), so no rank decides what llama.cpp's leftmost rule would.
 * Pieces sharing a score (gguf-py's LlamaHfVocab writes -1000 for all) are ordered by rank, not leftmost-first.
 *
 * One difference from generate_merges, on purpose: a part may also be a single character that is not in the
 * vocabulary. llama.cpp's symbols are characters before they are pieces, so it joins "中"+"文" into a piece "中文"
 * even when neither character is a piece; generate_merges would need both in the vocabulary. transformers.js takes
 * such merges; the Rust tokenizers library would refuse them (we only build this file in memory, for transformers.js).
 */
export function spmMerges(tokens: readonly string[], scores: ArrayLike<number>): [string, string][] {
  // A piece written twice keeps its last id, as llama.cpp's token_to_id does; a Map keeps its first position (as
  // Python's dict in generate_merges does), which is the order ties fall back on.
  const idOf = new Map<string, number>();
  tokens.forEach((t, id) => idOf.set(t, id));
  const found: { left: string; right: string; score: number; leftLen: number; rightLen: number }[] = [];
  for (const [piece, id] of idOf) {
    const nChars = codePoints(piece);
    let leftLen = 0;
    for (let k = 1; k < piece.length; k++) {
      if (insidePair(piece, k)) continue;
      leftLen++; // code points, as Python's len and llama.cpp's UTF-8 symbols count them
      const left = piece.slice(0, k);
      if (leftLen > 1 && !idOf.has(left)) continue;
      const right = piece.slice(k);
      if (leftLen === nChars - 1 || idOf.has(right))
        found.push({ left, right, score: scores[id], leftLen, rightLen: nChars - leftLen });
    }
  }
  found.sort((a, b) => b.score - a.score || b.leftLen - a.leftLen || b.rightLen - a.rightLen);
  return found.map((m) => [m.left, m.right]);
}

/** Whether index k of s falls between the two halves of a surrogate pair (one code point). */
function insidePair(s: string, k: number): boolean {
  const hi = s.charCodeAt(k - 1),
    lo = s.charCodeAt(k);
  return hi >= 0xd800 && hi < 0xdc00 && lo >= 0xdc00 && lo < 0xe000;
}

function codePoints(s: string): number {
  let n = s.length;
  for (let k = 1; k < s.length; k++) if (insidePair(s, k)) n--;
  return n;
}

type Json = Record<string, unknown>;

/** BOS before and EOS after each sequence, as llama.cpp adds them (add_bos_token / add_eos_token). */
function templateProcessing(bos: { token: string; id: number } | null, eos: { token: string; id: number } | null) {
  if (!bos && !eos) return null;
  const special = (t: { token: string } | null) => (t ? [{ SpecialToken: { id: t.token, type_id: 0 } }] : []);
  const seq = (id: 'A' | 'B', typeId: number) => [
    ...special(bos),
    { Sequence: { id, type_id: typeId } },
    ...special(eos),
  ];
  const specialTokens: Json = {};
  for (const t of [bos, eos]) if (t) specialTokens[t.token] = { id: t.token, ids: [t.id], tokens: [t.token] };
  return {
    type: 'TemplateProcessing',
    single: seq('A', 0),
    pair: [...seq('A', 0), ...seq('B', 1)],
    special_tokens: specialTokens,
  };
}

export interface SpmJsonSpec {
  tokens: readonly string[];
  scores: ArrayLike<number>;
  addedTokens: Json[];
  unkToken: string | null;
  /** tokenizer.ggml.add_space_prefix: "▁" before the text and after each special token (llama.cpp is_prev_special). */
  addSpacePrefix: boolean;
  bos: { token: string; id: number } | null;
  eos: { token: string; id: number } | null;
}

/**
 * tokenizer.json of a SentencePiece BPE vocabulary (LlamaConverter's shape: meta-llama/Llama-2-7b-hf, TinyLlama).
 * No pre-tokenizer: the whole text between special tokens is one word, as in llama.cpp. transformers.js normalizes
 * each stretch between added tokens apart, so Prepend puts "▁" after every special token, as llama.cpp does.
 */
export function spmTokenizerJson(spec: SpmJsonSpec): Json {
  const replaceSpaces = { type: 'Replace', pattern: { String: ' ' }, content: SPIECE_UNDERLINE };
  const prepend = { type: 'Prepend', prepend: SPIECE_UNDERLINE };
  const decoders: Json[] = [
    { type: 'Replace', pattern: { String: SPIECE_UNDERLINE }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
  ];
  // The prefix space is not part of the text: take it off again (one space, only at the start).
  if (spec.addSpacePrefix) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: spec.addedTokens,
    normalizer: {
      type: 'Sequence',
      normalizers: spec.addSpacePrefix ? [prepend, replaceSpaces] : [replaceSpaces],
    },
    pre_tokenizer: null,
    post_processor: templateProcessing(spec.bos, spec.eos),
    decoder: { type: 'Sequence', decoders },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: spec.unkToken,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true, // characters outside the vocabulary become <0xXX> tokens, as llama.cpp's resegment does
      ignore_merges: false,
      vocab: Object.fromEntries(spec.tokens.map((t, i) => [t, i])),
      merges: spmMerges(spec.tokens, spec.scores),
    },
  };
}
