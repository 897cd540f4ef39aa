// Texts and a chat the tokenizer tests share: awkward whitespace, non-ASCII, special tokens inside text, empty.
export const SAMPLE_TEXTS = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.\n\nNew paragraph\twith a tab.',
  '  leading and trailing spaces  ',
  'üñíçødé — 日本語 🙂',
  '<|im_start|>user\nhi<|im_end|>',
  '',
];

export const SAMPLE_MESSAGES = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi there' },
];
