// Makes testdata/tokenizer/components.jsonl: variants of the fixture tokenizers (a real tokenizer.json
// with some of its top-level fields replaced by `patch`) exercising every supported normalizer,
// pre-tokenizer, decoder, added-token option, BPE option and post-processor, with HF tokenizers
// 0.23.2's ids (with and without special tokens) and decode (with and without skipping specials).
// Run: npm install tokenizers@0.23.2 && node tests/tokenizer/make_component_reference.mjs
import { createRequire } from 'module';
import fs from 'fs';
const require = createRequire(import.meta.url);
const { Tokenizer } = require(process.env.TOKENIZERS_MODULE || 'tokenizers');
const root = new URL('../..', import.meta.url).pathname;

const texts = [
  '', ' ', 'Hello world', '  Hello   World  ', 'HELLO Wörld ÀÉÎ', "It's what we'll DO, isn't it?",
  'x=12345.678; y=-0.5e10', 'price: $1,299.99!!!', 'tabs\tand\nnewlines\r\n\n end',
  '日本語のテキスト、句読点。', 'Ελληνικά και Русский текст', 'emoji 🦜🦜 and 𝔘𝔫𝔦', 'ﬁne ﬀ ① ² Ｆｕｌｌ',
  'e\u0301 A\u030a cafe\u0301', 'hello<tool>world <tool> x', 'the world worldly helloworld', 'foo bar foobar',
  '<s>[INST] hi [/INST]</s>', '\u2581already\u2581marked', '   leading and trailing   ', 'a-b_c.d/e\\f',
  'def f(x):\n    return x ** 2  # square', 'ab abc abcd bcd', 'Zürich\u00a0Straße\u3000東京', '...',
];

const base = (name) => JSON.parse(fs.readFileSync(`${root}/testdata/tokenizers/${name}/tokenizer.json`, 'utf8'));
const added = (id, content, o = {}) => ({ id, content, single_word: false, lstrip: false, rstrip: false,
  normalized: false, special: false, ...o });
const mistralDecoder = { type: 'Sequence', decoders: [
  { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
  { type: 'Strip', content: ' ', start: 1, stop: 0 }] };
const extraTokens = [
  added(32768, '<tool>', { special: true, lstrip: true, rstrip: true }),
  added(32769, 'world', { single_word: true }),
  added(32770, 'foo', { normalized: true }),
  added(32771, ' bar', { normalized: true, rstrip: true })];
// A variant is [base, label, patch, extra]: `patch` replaces top-level fields; extra.model is merged into
// "model" and extra.append_added_tokens is appended to "added_tokens" (long_text_test applies the same).

const variants = [
  ['mistral-v3', 'nfkc-lowercase-replace-prepend', {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Lowercase' },
      { type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] } }],
  ['mistral-v3', 'strip-nfd-stripaccents-nfc', {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Strip', strip_left: true, strip_right: true },
      { type: 'NFD' }, { type: 'StripAccents' }, { type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: '\u2581' }] } }],
  ['mistral-v3', 'split-digits-punct-metaspace', {
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: '\\d{1,3}(?=(?:\\d{3})*\\b)' }, behavior: 'Isolated', invert: false },
      { type: 'Digits', individual_digits: false }, { type: 'Punctuation', behavior: 'Contiguous' },
      { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true }] } }],
  ['mistral-v3', 'whitespace-metaspace-never', {
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' },
      { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'never', split: false }] } }],
  ['mistral-v3', 'whitespacesplit-digits-individual', {
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' },
      { type: 'Digits', individual_digits: true },
      { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: true }] } }],
  ...['Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'].map((b) => ['mistral-v3', `split-${b}`, {
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { String: ' ' }, behavior: b, invert: false },
      { type: 'Split', pattern: { Regex: '[\\p{P}]+' }, behavior: b, invert: b === 'Contiguous' },
      { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: false }] } }]),
  ['mistral-v3', 'added-token-options', {}, { append_added_tokens: extraTokens }],
  ['mistral-v3-metaspace', 'added-token-options-metaspace', {
    post_processor: { type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } } } },
    { append_added_tokens: extraTokens }],
  ['mistral-v3', 'decoder-strip-both', {
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
      { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 1 }] } }],
  ['mistral-v3-metaspace', 'metaspace-decoder', {
    decoder: { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, { type: 'Metaspace', replacement: '\u2581',
      prepend_scheme: 'first', split: false }] } }],
  ['gpt-neox', 'bytelevel-prefix-space-no-regex', {
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: false } }],
  ['gpt-neox', 'bytelevel-prefix-split-before', {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: false }] },
    post_processor: { type: 'Sequence', processors: [{ type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }], special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [0], tokens: ['<|endoftext|>'] } } }] } }],
  ['gpt-neox', 'ignore-merges', {}, { model: { ignore_merges: true } }],
  // continuing_subword_prefix, an unknown character, no decoder (tokens joined by spaces).
  ['gpt-neox', 'subword-prefix-no-decoder', {
    normalizer: { type: 'Lowercase' }, added_tokens: [added(0, '<unk>', { special: true })],
    pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: '##', end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab: { '<unk>': 0, h: 1, '##e': 2, '##l': 3, '##o': 4, he: 5, hel: 6, hell: 7, hello: 8, '##ll': 9, w: 10,
        '##r': 11, '##d': 12, wo: 13, wor: 14, worl: 15, world: 16, e: 17, l: 18, o: 19, d: 20, x: 21, '##x': 22, '##lo': 23,
        '##h': 24, '##w': 25, t: 26, '##t': 27, '##he': 28, the: 29 },
      merges: ['h ##e', 'he ##l', '##l ##l', 'hel ##l', 'w ##o', 'wo ##r', 'wor ##l', 'worl ##d', '##l ##o', 'hell ##o',
        'he ##ll', '##h ##e', 't ##he'] } }],
  ['gpt-neox', 'nmt-nfkc-bytelevel-normalizers', {
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Nmt' }, { type: 'NFKC' }, { type: 'ByteLevel' }] },
    pre_tokenizer: { type: 'Split', pattern: { String: '\u0120' }, behavior: 'MergedWithNext', invert: false } }],
  ['mistral-v3', 'chardelimiter-bert', {
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'CharDelimiterSplit', delimiter: 'o' },
      { type: 'BertPreTokenizer' }, { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: false }] } }],
  ['gpt-neox', 'roberta-processing', {
    post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', 0], cls: ['<|padding|>', 1], trim_offsets: true,
      add_prefix_space: false } }],
  // end_of_word_suffix (the original BPE / CLIP style) with the BPEDecoder.
  ['gpt-neox', 'end-of-word-suffix', {
    normalizer: { type: 'Lowercase' }, added_tokens: [added(0, '<unk>', { special: true })],
    pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: { type: 'BPEDecoder', suffix: '</w>' },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: '</w>',
      fuse_unk: true, byte_fallback: false, ignore_merges: false,
      vocab: { '<unk>': 0, h: 1, e: 2, l: 3, o: 4, w: 5, r: 6, d: 7, 'o</w>': 8, 'd</w>': 9, 'l</w>': 10, 'x</w>': 11,
        'e</w>': 12, 'h</w>': 13, he: 14, hel: 15, hell: 16, 'hello</w>': 17, wo: 18, wor: 19, worl: 20, 'world</w>': 21,
        'lo</w>': 22, x: 23, t: 24, 'th': 25, 'the</w>': 26, 's</w>': 27, 'r</w>': 28 },
      merges: ['h e', 'he l', 'hel l', 'hell o</w>', 'w o', 'wo r', 'wor l', 'worl d</w>', 'l o</w>', 't h', 'th e</w>'] } }],
  // Both a continuing_subword_prefix and an end_of_word_suffix.
  ['gpt-neox', 'prefix-and-suffix', {
    normalizer: { type: 'Lowercase' }, added_tokens: [added(0, '<unk>', { special: true })],
    pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: { type: 'BPEDecoder', suffix: '</w>' },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: '##', end_of_word_suffix: '</w>',
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab: { '<unk>': 0, h: 1, '##e': 2, '##l': 3, '##o</w>': 4, w: 5, '##o': 6, '##r': 7, '##d</w>': 8, 'x</w>': 9,
        he: 10, hel: 11, hell: 12, 'hello</w>': 13, wo: 14, wor: 15, worl: 16, 'world</w>': 17, t: 18, '##h': 19,
        '##e</w>': 20, th: 21, 'the</w>': 22, 'a</w>': 23, '##s</w>': 24 },
      merges: ['h ##e', 'he ##l', 'hel ##l', 'hell ##o</w>', 'w ##o', 'wo ##r', 'wor ##l', 'worl ##d</w>', 't ##h',
        'th ##e</w>'] } }],
];

const lines = [];
for (const [name, label, patch, extra = {}] of variants) {
  const doc = { ...base(name), ...patch };
  if (extra.model) doc.model = { ...doc.model, ...extra.model };
  if (extra.append_added_tokens) doc.added_tokens = [...doc.added_tokens, ...extra.append_added_tokens];
  const json = JSON.stringify(doc);
  let tok;
  try { tok = Tokenizer.fromString(json); } catch (e) { console.error(label, 'failed to load in HF:', e.message); continue; }
  const results = []; if (process.env.DEBUG) console.error('variant', label);
  for (const text of texts) {
    // HF's Strip decoder with stop > 0 panics on a token shorter than start + stop characters.
    if (process.env.DEBUG) console.error('text', JSON.stringify(text));
    if (label === 'decoder-strip-both' && [...text.trim()].length < 2) continue;
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    const special = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
    results.push({ text, ids, ids_with_special: special, decoded: await tok.decode(special, false),
      decoded_skip: await tok.decode(special, true) });
  }
  lines.push(JSON.stringify({ base: name, label, patch, extra, results }));
}
fs.writeFileSync(`${root}/testdata/tokenizer/components.jsonl`, lines.join('\n') + '\n');
console.error(`${lines.length} variants`);
