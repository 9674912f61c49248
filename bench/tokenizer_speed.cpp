// Single-thread encode speed of the tokenizer on real text: MATH-500 problems + solutions, GSM8K
// train questions + answers and the multilingual texts of testdata/tokenizers/*/reference.jsonl.
// Usage: tokenizer_speed [DATA_DIR (default /work/shared/data)] [PASSES (default 5)]
// Prints MB/s per tokenizer for the first pass (empty word cache) and the best pass; also the speed
// of decode.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "util/json.h"

namespace {

using Clock = std::chrono::steady_clock;

void add_jsonl_fields(const std::string& path, std::initializer_list<const char*> fields, std::vector<std::string>& docs) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(1);
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    pcm::json r = pcm::parse_json(line, path);
    std::string doc;
    for (const char* f : fields) {
      if (r.contains(f) && r[f].is_string()) doc += r[f].get<std::string>() + "\n\n";
    }
    if (!doc.empty()) docs.push_back(std::move(doc));
  }
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  std::string data = argc > 1 ? argv[1] : "/work/shared/data";
  int passes = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  std::vector<std::string> docs;
  add_jsonl_fields(data + "/benchmarks/math500.jsonl", {"problem", "solution"}, docs);
  add_jsonl_fields(data + "/train/gsm8k_train.jsonl", {"question", "answer"}, docs);
  // Multilingual pieces (CJK, Cyrillic, Arabic, emoji, code) from the reference records, 20 copies.
  std::vector<std::string> multi;
  add_jsonl_fields(std::string(PCM_TESTDATA) + "/tokenizers/gpt-neox/reference.jsonl", {"text"}, multi);
  for (int k = 0; k < 20; ++k) docs.insert(docs.end(), multi.begin(), multi.end());
  size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();
  std::printf("text: %zu documents, %.2f MB\n", docs.size(), static_cast<double>(bytes) / 1e6);

  for (const char* name : {"gpt-neox", "mistral-v3", "mistral-v3-metaspace"}) {
    std::string dir = std::string(PCM_TESTDATA) + "/tokenizers/" + name;
    auto t_load = Clock::now();
    pcm::Tokenizer tok = pcm::Tokenizer::from_dir(dir);
    double load_s = seconds_since(t_load);
    double first = 0.0, best = 0.0;
    size_t tokens = 0;
    std::vector<std::vector<int32_t>> encoded(docs.size());
    for (int p = 0; p < passes; ++p) {
      auto t0 = Clock::now();
      tokens = 0;
      for (size_t i = 0; i < docs.size(); ++i) {
        encoded[i] = tok.encode(docs[i], false);
        tokens += encoded[i].size();
      }
      double mbs = static_cast<double>(bytes) / 1e6 / seconds_since(t0);
      if (p == 0) first = mbs;
      best = std::max(best, mbs);
    }
    // The whole text as one call (one long input instead of many documents).
    std::string all;
    for (const auto& d : docs) all += d;
    auto t1 = Clock::now();
    size_t one_call_tokens = tok.encode(all, false).size();
    double one_call = static_cast<double>(bytes) / 1e6 / seconds_since(t1);
    auto t2 = Clock::now();
    size_t out_bytes = 0;
    for (const auto& ids : encoded) out_bytes += tok.decode(ids, false).size();
    double dec = static_cast<double>(out_bytes) / 1e6 / seconds_since(t2);
    std::printf("%-22s load %.2f s  tokens %zu (one call: %zu)  encode first pass %.2f MB/s, best of %d %.2f MB/s, "
                "one call %.2f MB/s  decode %.1f MB/s\n",
                name, load_s, tokens, one_call_tokens, first, passes, best, one_call, dec);
  }
  return 0;
}
