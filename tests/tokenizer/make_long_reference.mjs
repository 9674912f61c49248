// Makes testdata/tokenizer/long_reference.json: HF tokenizers' ids for every MATH-500 and GSM8K-train
// document (and their concatenation as one input), stored as counts + FNV-1a hashes, so that
// long_text_test.cpp can check megabytes of real text without shipping the ids.
// Run: npm install tokenizers@0.23.2 && node tests/tokenizer/make_long_reference.mjs [DATA_DIR]
// With DUMP=dir it also writes the ids (one JSON list per document) for debugging a mismatch.
import { createRequire } from 'module';
import fs from 'fs';
const require = createRequire(import.meta.url);
const { Tokenizer } = require(process.env.TOKENIZERS_MODULE || 'tokenizers');

const data = process.argv[2] || '/work/shared/data';
const root = new URL('../..', import.meta.url).pathname;

function docs() {
  const out = [];
  const add = (path, fields) => {
    for (const line of fs.readFileSync(path, 'utf8').split('\n')) {
      if (!line) continue;
      const r = JSON.parse(line);
      let doc = '';
      for (const f of fields) if (typeof r[f] === 'string') doc += r[f] + '\n\n';
      if (doc) out.push(doc);
    }
  };
  add(data + '/benchmarks/math500.jsonl', ['problem', 'solution']);
  add(data + '/train/gsm8k_train.jsonl', ['question', 'answer']);
  return out;
}

// FNV-1a (32-bit) over the little-endian bytes of each id, then of 0xFFFFFFFF after each document.
function fold(h, v) {
  for (let k = 0; k < 4; ++k) {
    h ^= (v >>> (8 * k)) & 0xff;
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h;
}

const texts = docs();
const result = { docs: texts.length, bytes: texts.reduce((a, d) => a + Buffer.byteLength(d), 0), tokenizers: {} };
for (const name of ['gpt-neox', 'mistral-v3', 'mistral-v3-metaspace']) {
  const tok = Tokenizer.fromFile(`${root}/testdata/tokenizers/${name}/tokenizer.json`);
  let h = 2166136261, tokens = 0;
  const dump = [];
  const t0 = process.hrtime.bigint();
  for (const d of texts) {
    const ids = (await tok.encode(d, null, { addSpecialTokens: false })).getIds();
    for (const id of ids) h = fold(h, id);
    h = fold(h, 0xffffffff);
    tokens += ids.length;
    if (process.env.DUMP) dump.push(JSON.stringify(ids));
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const all = (await tok.encode(texts.join(''), null, { addSpecialTokens: false })).getIds();
  let h2 = 2166136261;
  for (const id of all) h2 = fold(h2, id);
  result.tokenizers[name] = { tokens, hash: h, one_call_tokens: all.length, one_call_hash: h2 };
  console.error(`${name}: ${tokens} tokens, ${(result.bytes / 1e6 / secs).toFixed(2)} MB/s (node binding, per document)`);
  if (process.env.DUMP) fs.writeFileSync(`${process.env.DUMP}/${name}.ids.jsonl`, dump.join('\n') + '\n');
}
fs.writeFileSync(`${root}/testdata/tokenizer/long_reference.json`, JSON.stringify(result, null, 1) + '\n');
