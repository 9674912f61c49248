// Shared pieces for the training-loop tests: real GSM8K train rows tokenized with the fixture
// tokenizer, relabelled to a compact vocabulary (ids in order of first use) so a tiny model trains fast.
#pragma once
#include <map>
#include <string>

#include "io/jsonl.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/train_config.h"
#include "util/file.h"

namespace pcm::test {

// Writes `rows` GSM8K rows as {"input_ids", "loss_mask"} (loss on the answer) to `path`; returns the
// compact vocabulary size.
inline int64_t write_compact_gsm8k(const std::string& path, int rows, int64_t max_tokens) {
  Tokenizer tok = Tokenizer::from_dir(testdata("models/tiny-mistral-bf16"));
  std::vector<json> src = read_jsonl(testdata("train_loop/gsm8k8_prompt_completion.jsonl"));
  std::map<int32_t, int32_t> remap;
  std::string out;
  for (int i = 0; i < rows && i < static_cast<int>(src.size()); ++i) {
    std::vector<int32_t> p = tok.encode(src[i]["prompt"].get<std::string>(), true);
    std::vector<int32_t> c = tok.encode(src[i]["completion"].get<std::string>(), false);
    json ids = json::array(), mask = json::array();
    for (size_t k = 0; k < p.size() + c.size() && static_cast<int64_t>(k) < max_tokens; ++k) {
      int32_t id = k < p.size() ? p[k] : c[k - p.size()];
      auto it = remap.emplace(id, static_cast<int32_t>(remap.size())).first;
      ids.push_back(it->second);
      mask.push_back(k < p.size() ? 0 : 1);
    }
    out += json{{"input_ids", ids}, {"loss_mask", mask}}.dump() + "\n";
  }
  write_file_atomic(path, out);
  return static_cast<int64_t>(remap.size());
}

inline std::string tiny_model_toml(int64_t vocab) {
  return "[model]\nvocab_size = " + std::to_string(vocab) +
         "\nhidden_size = 32\nnum_hidden_layers = 2\nnum_heads = 4\nhead_dim = 16\nn_groups = 1\n"
         "state_size = 16\nconv_kernel = 4\nchunk_size = 16\nexpand = 2\ntie_word_embeddings = true\n";
}

}  // namespace pcm::test
