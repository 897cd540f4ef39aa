// SentencePiece ('llama') GGUF vocabularies rebuilt as tokenizer.json: transformers.js must give the ids that
// llama.cpp's SPM tokenizer gives. The reference below is a literal port of llama.cpp's llm_tokenizer_spm_session and
// the SPM branch of llama_tokenize_impl (src/llama-vocab.cpp), run on a small vocabulary trained here as SentencePiece
// BPE would (merged pieces scored by merge order, characters last, <unk> <s> </s> and the 256 byte pieces first).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PreTrainedTokenizer } from '@huggingface/transformers';
import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../random.ts';
import { SAMPLE_TEXTS } from '../testing/tokenizerSamples.ts';
import { writeGguf } from '../weights/ggufWriter.ts';
import { ggufTokenizerFiles } from './ggufTokenizer.ts';
import { loadTokenizer } from './index.ts';
import { SPIECE_UNDERLINE as U, spmMerges } from './spmVocab.ts';

interface Vocab {
  tokens: string[];
  scores: number[];
  types: number[];
}
interface SpmOptions {
  addBos: boolean;
  addEos: boolean;
  addSpacePrefix: boolean;
}
const NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  BYTE = 6;
const BOS = 1,
  EOS = 2;

// ---- the reference: llama.cpp ----

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

/** llm_tokenizer_spm_session::tokenize. The queue is popped by a scan (the same order as its std::priority_queue). */
function spmSession(v: Vocab, textToToken: Map<string, number>, text: string, out: number[]): void {
  const chars = Array.from(text);
  const syms = chars.map((ch, i) => ({ text: ch, prev: i - 1, next: i + 1 < chars.length ? i + 1 : -1 }));
  const queue: Bigram[] = [];
  const tryAddBigram = (left: number, right: number) => {
    if (left === -1 || right === -1) return;
    const merged = syms[left].text + syms[right].text;
    const token = textToToken.get(merged);
    if (token === undefined) return;
    queue.push({ left, right, score: v.scores[token], size: merged.length });
  };
  for (let i = 1; i < syms.length; i++) tryAddBigram(i - 1, i);
  while (queue.length > 0) {
    // llm_bigram_spm::comparator: the highest score, then the smallest left index
    let best = 0;
    for (let i = 1; i < queue.length; i++) {
      const [a, b] = [queue[i], queue[best]];
      if (a.score > b.score || (a.score === b.score && a.left < b.left)) best = i;
    }
    const bigram = queue.splice(best, 1)[0];
    const [l, r] = [syms[bigram.left], syms[bigram.right]];
    if (l.text === '' || r.text === '' || l.text.length + r.text.length !== bigram.size) continue; // merged away
    l.text += r.text;
    r.text = '';
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = bigram.left;
    tryAddBigram(l.prev, bigram.left);
    tryAddBigram(bigram.left, l.next);
  }
  // resegment: every symbol left is a piece or one character; a character outside the vocabulary becomes its bytes
  for (let i = syms.length > 0 ? 0 : -1; i !== -1; i = syms[i].next) {
    const token = textToToken.get(syms[i].text);
    if (token !== undefined) out.push(token);
    else for (const byte of new TextEncoder().encode(syms[i].text)) out.push(byteToToken(textToToken, byte));
  }
}

function byteToToken(textToToken: Map<string, number>, byte: number): number {
  const hex = `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
  const id = textToToken.get(hex) ?? textToToken.get(String.fromCharCode(byte));
  if (id === undefined) throw new Error(`no piece for byte ${hex}`);
  return id;
}

/** tokenizer_st_partition with parse_special: special pieces, longest first, split out of the raw text. */
function partition(v: Vocab, text: string): (string | number)[] {
  const utf8Len = (s: string) => new TextEncoder().encode(s).length;
  const specials = v.tokens
    .map((t, id) => ({ t, id }))
    .filter(({ id }) => [CONTROL, USER_DEFINED, UNKNOWN].includes(v.types[id]))
    .sort((a, b) => utf8Len(b.t) - utf8Len(a.t));
  let fragments: (string | number)[] = text === '' ? [] : [text];
  for (const { t, id } of specials) {
    fragments = fragments.flatMap((f) => {
      if (typeof f === 'number') return [f];
      const parts = f.split(t);
      return parts.flatMap((p, i) => [...(i > 0 ? [id] : []), ...(p === '' ? [] : [p])]);
    });
  }
  return fragments;
}

/** llama_tokenize_impl, LLAMA_VOCAB_TYPE_SPM, add_special and parse_special on. */
function llamaCppTokenize(v: Vocab, text: string, o: SpmOptions): number[] {
  const textToToken = new Map<string, number>();
  v.tokens.forEach((t, id) => textToToken.set(t, id));
  const out: number[] = o.addBos ? [BOS] : [];
  let isPrevSpecial = true;
  for (const f of partition(v, text)) {
    if (typeof f === 'number') {
      out.push(f);
      isPrevSpecial = true;
      continue;
    }
    const raw = (o.addSpacePrefix && isPrevSpecial ? ' ' : '') + f;
    spmSession(v, textToToken, raw.replaceAll(' ', U), out); // llama_escape_whitespace
    isPrevSpecial = false;
  }
  if (o.addEos) out.push(EOS);
  return out;
}

// ---- a vocabulary trained as SentencePiece BPE ----

// Original text for these tests: plain sentences, digits, a little code and whitespace runs.
const CORPUS = `Once upon a time there was a little fox who lived in a green forest. Every morning the fox
went to the river to drink and to look at the sky. One day the fox met a bird who could sing songs about
the sea. The bird said that the sea was wide and blue, and the fox wanted to see it. They walked together for
three days and three nights. On the fourth day they saw the water shining in the sun. Numbers: 1 2 3 10 12 2024
and 3.14 or 42. def main(): return 0 if x else 1  # two  spaces    and four.`;

/** BPE on the corpus words ("▁" + word, as SentencePiece splits), merged pieces scored by rank, characters last. */
function trainSpmVocab(nMerges: number): Vocab {
  const counts = new Map<string, number>();
  for (const w of CORPUS.split(/\s+/).filter(Boolean)) counts.set(U + w, (counts.get(U + w) ?? 0) + 1);
  const words = [...counts].map(([w, n]) => ({ parts: Array.from(w), n }));
  const chars = [...new Set(words.flatMap((w) => w.parts))].sort();
  const pieces: string[] = [];
  while (pieces.length < nMerges) {
    const pairs = new Map<string, number>();
    for (const { parts, n } of words)
      for (let i = 0; i + 1 < parts.length; i++) {
        const key = parts[i] + '\u0000' + parts[i + 1];
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    const best = [...pairs].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (!best) break;
    const [a, b] = best[0].split('\u0000');
    if (!pieces.includes(a + b)) pieces.push(a + b);
    for (const w of words)
      for (let i = 0; i + 1 < w.parts.length; i++)
        if (w.parts[i] === a && w.parts[i + 1] === b) w.parts.splice(i, 2, a + b);
  }
  return spmVocab([...pieces, ...chars], [...pieces.map((_, i) => -i), ...chars.map((_, i) => -nMerges - i)]);
}

/** <unk> <s> </s>, the 256 byte pieces (score 0), then the given normal pieces, as SentencePiece lays them out. */
function spmVocab(pieces: string[], scores: number[]): Vocab {
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  return {
    tokens: ['<unk>', '<s>', '</s>', ...bytes, ...pieces],
    scores: [0, 0, 0, ...bytes.map(() => 0), ...scores],
    types: [UNKNOWN, CONTROL, CONTROL, ...bytes.map(() => BYTE), ...pieces.map(() => NORMAL)],
  };
}

/** Random pieces over a few letters with distinct random scores: a piece may score above or below its parts. */
function randomVocab(rand: () => number, letters: string[], nPieces: number): Vocab {
  const pick = () => letters[Math.floor(rand() * letters.length)];
  const pieces = new Set(letters);
  while (pieces.size < letters.length + nPieces)
    pieces.add(Array.from({ length: 2 + Math.floor(rand() * 4) }, pick).join(''));
  const scores = [...pieces].map((_, i) => i);
  for (let i = scores.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [scores[i], scores[j]] = [scores[j], scores[i]];
  }
  return spmVocab([...pieces], scores);
}

/** The trained vocabulary plus what real ones carry: whitespace runs, a user-defined token, a CJK piece whose
 * characters are not pieces (llama.cpp still joins them), an accented letter. Scores stay distinct. */
function testVocab(): Vocab {
  const v = trainSpmVocab(160);
  const extra: [string, number, number][] = [
    [U + U, -3.5, NORMAL],
    [U + U + U + U, -7.5, NORMAL],
    ['中文', -20.5, NORMAL],
    ['é', -400.5, NORMAL],
    ['<|user|>', 0, USER_DEFINED],
  ];
  for (const [t, s, type] of extra) {
    v.tokens.push(t);
    v.scores.push(s);
    v.types.push(type);
  }
  return v;
}

function ggufMetadata(v: Vocab, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': v.tokens,
    'tokenizer.ggml.scores': v.scores,
    'tokenizer.ggml.token_type': v.types,
    'tokenizer.ggml.bos_token_id': BOS,
    'tokenizer.ggml.eos_token_id': EOS,
    'tokenizer.ggml.unknown_token_id': 0,
    ...extra,
  };
}

function hfTokenizer(v: Vocab, extra: Record<string, unknown> = {}): PreTrainedTokenizer {
  const { tokenizerJson, tokenizerConfig } = ggufTokenizerFiles('m.gguf', ggufMetadata(v, extra));
  return new PreTrainedTokenizer(tokenizerJson, tokenizerConfig);
}

const VOCAB = testVocab();
const DEFAULTS: SpmOptions = { addBos: true, addEos: false, addSpacePrefix: true };

const TEXTS = [
  ...SAMPLE_TEXTS,
  ' ',
  '   ',
  'the fox',
  ' the fox',
  'the fox ',
  'the  fox   went    to the river',
  '\n',
  'one\ntwo\n\nthree\n',
  '\ttabbed\t',
  '12345 2024 3.14',
  'café été é',
  '中文',
  '中文字 文中',
  '😀 emoji 🦊',
  '<s>the fox</s>',
  'Hi <s> there',
  '<unk>',
  '</s></s>',
  'a<|user|>b <|user|> c',
  ' <s> ',
  U + 'literal underline',
  'def main(): return 0',
];

describe('SentencePiece vocabularies rebuilt as BPE (against llama.cpp llm_tokenizer_spm)', () => {
  const hf = hfTokenizer(VOCAB);

  it.each(TEXTS.map((t) => [JSON.stringify(t), t]))('encodes %s as llama.cpp does', (_, text) => {
    expect(hf.encode(text)).toEqual(llamaCppTokenize(VOCAB, text, DEFAULTS));
  });

  it('encodes 400 random strings as llama.cpp does (seeded)', () => {
    const alphabet = ['t', 'h', 'e', 'o', 'f', 'x', 'r', 'i', ' ', '  ', '\n', 'é', '中', '文', '😀', '1', '2', '.'];
    const specials = ['<s>', '</s>', '<unk>', '<|user|>', U];
    const rand = seededRandom(7);
    const pick = (xs: string[]) => xs[Math.floor(rand() * xs.length)];
    for (let n = 0; n < 400; n++) {
      const len = Math.floor(rand() * 24);
      const text = Array.from({ length: len }, () => (rand() < 0.05 ? pick(specials) : pick(alphabet))).join('');
      expect(hf.encode(text), JSON.stringify(text)).toEqual(llamaCppTokenize(VOCAB, text, DEFAULTS));
    }
  });

  it('encodes as llama.cpp does with 40 random vocabularies of distinct scores (seeded)', () => {
    const rand = seededRandom(11);
    const alphabet = ['a', 'b', 'c', ' ', 'd']; // "d" is no piece: byte fallback
    for (let n = 0; n < 40; n++) {
      const v = randomVocab(rand, ['a', 'b', 'c', U], 40);
      const tok = hfTokenizer(v);
      for (let k = 0; k < 50; k++) {
        const text = Array.from({ length: Math.floor(rand() * 16) }, () => alphabet[Math.floor(rand() * 5)]).join('');
        expect(tok.encode(text), `vocabulary ${n}, ${JSON.stringify(text)}`).toEqual(
          llamaCppTokenize(v, text, DEFAULTS),
        );
      }
    }
  });

  it('decodes what it encodes back to the text (special tokens skipped)', () => {
    for (const text of TEXTS.filter((t) => !/<s>|<\/s>|<unk>|<\|user\|>|\u2581|<\|im_/.test(t)))
      expect(hf.decode(hf.encode(text), { skip_special_tokens: true }), JSON.stringify(text)).toBe(text);
  });

  it.each([
    ['no space prefix', { 'tokenizer.ggml.add_space_prefix': false }, { ...DEFAULTS, addSpacePrefix: false }],
    [
      'EOS added, no BOS',
      { 'tokenizer.ggml.add_bos_token': false, 'tokenizer.ggml.add_eos_token': true },
      {
        ...DEFAULTS,
        addBos: false,
        addEos: true,
      },
    ],
  ] as const)('%s: as llama.cpp', (_, extra, opts) => {
    const tok = hfTokenizer(VOCAB, extra);
    for (const text of TEXTS)
      expect(tok.encode(text), JSON.stringify(text)).toEqual(llamaCppTokenize(VOCAB, text, opts));
  });
});

describe('spmMerges', () => {
  it('orders merges as transformers generate_merges: score, then longer left part, then vocabulary order', () => {
    const tokens = ['a', 'b', 'c', 'ab', 'bc', 'abc', 'ca'];
    const scores = [0, 0, 0, -1, -2, -3, -1];
    expect(spmMerges(tokens, scores)).toEqual([
      ['a', 'b'],
      ['c', 'a'],
      ['b', 'c'],
      ['ab', 'c'],
      ['a', 'bc'],
    ]);
  });

  it('joins single characters outside the vocabulary, as llama.cpp does, but not longer unknown parts', () => {
    // "xyz": "x"+"yz" and "xy"+"z" each have a part of two characters that is not a piece, so llama.cpp never forms it
    expect(spmMerges(['中文', 'x', 'xyz'], [-1, 0, -2])).toEqual([['中', '文']]);
    expect(spmMerges(['😀😀'], [0])).toEqual([['😀', '😀']]); // characters are code points, not UTF-16 units
  });

  it('builds the merges of a 32000-piece vocabulary quickly', () => {
    // Each new piece joins two earlier ones, as BPE training makes them, so every piece has a split
    const rand = seededRandom(3);
    const pieces = [...'abcdefghijklmnopqrst', U];
    const set = new Set(pieces);
    while (set.size < 32000) {
      const [a, b] = [0, 1].map(() => pieces[Math.floor(rand() * Math.min(pieces.length, 4000))]);
      if ((a + b).length > 16 || set.has(a + b)) continue;
      pieces.push(a + b);
      set.add(a + b);
    }
    const tokens = [...set];
    const t0 = performance.now();
    const merges = spmMerges(
      tokens,
      tokens.map((_, i) => -i),
    );
    const ms = performance.now() - t0;
    expect(merges.length).toBeGreaterThan(32000 - 21);
    expect(ms).toBeLessThan(2000); // about 200 ms on a busy 2-core machine; the bound catches a quadratic slip
  });
});

describe('SentencePiece GGUF files', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'shoal-spm-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const TEMPLATE = "{% for m in messages %}{{ '<s>' + m['role'] + ': ' + m['content'] + '</s>' }}{% endfor %}";

  it('loads a llama-vocabulary GGUF file: ids as llama.cpp, BOS/EOS, the chat template', async () => {
    const file = join(tmp, 'model.gguf');
    const md = ggufMetadata(VOCAB, { 'tokenizer.ggml.add_bos_token': true, 'tokenizer.chat_template': TEMPLATE });
    writeFileSync(file, writeGguf({ 'general.architecture': 'llama', ...md }, []));
    const tok = await loadTokenizer(file);
    for (const text of TEXTS) expect(tok.encode(text)).toEqual(llamaCppTokenize(VOCAB, text, DEFAULTS));
    expect(tok.eosTokenIds).toEqual([EOS]);
    expect(tok.vocabSize).toBe(VOCAB.tokens.length);
    const chat = tok.applyChatTemplate([{ role: 'user', content: 'the fox' }]);
    expect(chat).toEqual(llamaCppTokenize(VOCAB, '<s>user: the fox</s>', { ...DEFAULTS, addBos: false }));
  });

  it('falls back to llama.cpp defaults without the special-token keys (BOS 1 added, EOS 2, <unk> 0)', () => {
    const md = ggufMetadata(VOCAB);
    for (const k of ['bos', 'eos', 'unknown']) delete md[`tokenizer.ggml.${k}_token_id`];
    const { tokenizerJson, tokenizerConfig } = ggufTokenizerFiles('m.gguf', md);
    expect(tokenizerConfig).toMatchObject({
      bos_token: '<s>',
      eos_token: '</s>',
      unk_token: '<unk>',
      add_bos_token: true,
    });
    expect(new PreTrainedTokenizer(tokenizerJson, tokenizerConfig).encode('the fox')).toEqual(
      llamaCppTokenize(VOCAB, 'the fox', DEFAULTS),
    );
  });

  it.each([
    ['tokenizer.ggml.scores', undefined, /m\.gguf: tokenizer\.ggml\.scores is missing/],
    ['tokenizer.ggml.scores', [0, 1], /m\.gguf: tokenizer\.ggml\.scores has 2 entries for \d+ tokens/],
    ['tokenizer.ggml.scores', ['x'], /m\.gguf: tokenizer\.ggml\.scores is not a list of numbers/],
    ['tokenizer.ggml.token_type', [1], /m\.gguf: tokenizer\.ggml\.token_type has 1 entries for \d+ tokens/],
  ])('names the file and the key when %s is %j', (key, value, message) => {
    const md = ggufMetadata(VOCAB, { [key]: value });
    if (value === undefined) delete md[key];
    expect(() => ggufTokenizerFiles('m.gguf', md)).toThrow(message);
  });
});
