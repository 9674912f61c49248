// Makes testdata/tokenizer/random_unicode.jsonl: seeded random strings that mix scripts, combining
// marks (NFC changes them), odd whitespace, digits, contractions, "▁", "<0x41>"-like text and
// special-token text, with HF tokenizers 0.23.2's ids (no special tokens) and decode for each tokenizer.
// Run: npm install tokenizers@0.23.2 && node tests/tokenizer/make_random_reference.mjs
import { createRequire } from 'module';
import fs from 'fs';
const require = createRequire(import.meta.url);
const { Tokenizer } = require(process.env.TOKENIZERS_MODULE || 'tokenizers');
const root = new URL('../..', import.meta.url).pathname;

let state = 12345;  // xorshift32
const rnd = (n) => {
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state % n;
};
const ranges = [[0x20, 0x7e], [0x20, 0x20], [0x0a, 0x0a], [0x09, 0x09], [0x0d, 0x0d], [0x30, 0x39], [0xa0, 0x17f],
  [0x300, 0x36f], [0x391, 0x3c9], [0x410, 0x44f], [0x5d0, 0x5ea], [0x627, 0x64a], [0x900, 0x97f], [0xe00, 0xe5b],
  [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x1100, 0x11ff], [0x2000, 0x206f], [0x2580, 0x2585],
  [0x3000, 0x3000], [0xff01, 0xff5e], [0x1f300, 0x1f6ff], [0x1d400, 0x1d7ff], [0x10000, 0x10ffff], [0xfb00, 0xfb06]];
const words = ["'s", "'S", "'ll", "'ve", " don't", "<s>", "</s>", "[INST]", "[/INST]", "<|endoftext|>", "<0x41>",
  "\u2581", "\u2581\u2581", "  ", "\n\n", "\r\n", " \t ", "123456", "3.14159", "e\u0301", "A\u030a", "\ufb01", "x\u00b2",
  "\u2028", "\ufeff", "def f(x):\n    return x", "    ", "$\\frac{1}{2}$", "\u00a0", "<unk>"];
const texts = [];
for (let i = 0; i < 300; ++i) {
  let s = '';
  const n = rnd(30);
  for (let k = 0; k < n; ++k) {
    if (rnd(5) === 0) { s += words[rnd(words.length)]; continue; }
    const [lo, hi] = ranges[rnd(ranges.length)];
    let cp = lo + rnd(hi - lo + 1);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
    s += String.fromCodePoint(cp);
  }
  texts.push(s);
}
const toks = {};
for (const name of ['gpt-neox', 'mistral-v3', 'mistral-v3-metaspace']) {
  toks[name] = Tokenizer.fromFile(`${root}/testdata/tokenizers/${name}/tokenizer.json`);
}
const lines = [];
for (const text of texts) {
  const rec = { text };
  for (const [name, tok] of Object.entries(toks)) {
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    rec[name] = { ids, decoded: await tok.decode(ids, false) };
  }
  lines.push(JSON.stringify(rec));
}
fs.writeFileSync(`${root}/testdata/tokenizer/random_unicode.jsonl`, lines.join('\n') + '\n');
