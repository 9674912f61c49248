// Megabytes of real text against Hugging Face: every MATH-500 and GSM8K-train document (and all of
// them as one input) must give the ids HF tokenizers 0.23.2 gives, compared through the counts and
// FNV-1a hashes in testdata/tokenizer/long_reference.json (made by make_long_reference.mjs).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm {
namespace {

using test::testdata;

// The benchmark data: $PCM_SHARED_DATA, shared/data beside the checkout, or /work/shared/data.
std::string shared_data_dir() {
  namespace fs = std::filesystem;
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("PCM_SHARED_DATA")) candidates.emplace_back(env);
  candidates.push_back(testdata("../shared/data"));
  candidates.push_back(testdata("../../shared/data"));
  candidates.emplace_back("/work/shared/data");
  for (const auto& c : candidates) {
    if (fs::exists(c + "/benchmarks/math500.jsonl") && fs::exists(c + "/train/gsm8k_train.jsonl")) return c;
  }
  return {};
}

std::vector<std::string> documents(const std::string& data) {
  std::vector<std::string> out;
  auto add = [&](const std::string& path, std::initializer_list<const char*> fields) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      json r = parse_json(line, path);
      std::string doc;
      for (const char* f : fields) {
        if (r.contains(f) && r[f].is_string()) doc += r[f].get<std::string>() + "\n\n";
      }
      if (!doc.empty()) out.push_back(std::move(doc));
    }
  };
  add(data + "/benchmarks/math500.jsonl", {"problem", "solution"});
  add(data + "/train/gsm8k_train.jsonl", {"question", "answer"});
  return out;
}

uint32_t fold(uint32_t h, uint32_t v) {
  for (int k = 0; k < 4; ++k) {
    h ^= (v >> (8 * k)) & 0xff;
    h *= 16777619u;
  }
  return h;
}

void check_against_reference(const Tokenizer& tok, const std::string& name) {
  std::string data = shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "benchmark data (shared/data) not found; set PCM_SHARED_DATA";
  json ref = read_json_file(testdata("tokenizer/long_reference.json"));
  std::vector<std::string> docs = documents(data);
  ASSERT_EQ(docs.size(), ref["docs"].get<size_t>());
  const json& want = ref["tokenizers"][name];
  uint32_t h = 2166136261u;
  size_t tokens = 0;
  for (const auto& d : docs) {
    std::vector<int32_t> ids = tok.encode(d, false);
    for (int32_t id : ids) h = fold(h, static_cast<uint32_t>(id));
    h = fold(h, 0xffffffffu);
    tokens += ids.size();
  }
  EXPECT_EQ(tokens, want["tokens"].get<size_t>());
  EXPECT_EQ(h, want["hash"].get<uint32_t>());
  std::string all;
  for (const auto& d : docs) all += d;
  std::vector<int32_t> one = tok.encode(all, false);
  uint32_t h2 = 2166136261u;
  for (int32_t id : one) h2 = fold(h2, static_cast<uint32_t>(id));
  EXPECT_EQ(one.size(), want["one_call_tokens"].get<size_t>());
  EXPECT_EQ(h2, want["one_call_hash"].get<uint32_t>());
  EXPECT_TRUE(tok.decode(one, false) == all) << "decode(encode(text)) differs from the text";
}

class LongText : public ::testing::TestWithParam<std::string> {};

TEST_P(LongText, MathAndGsm8kMatchHuggingFace) {
  check_against_reference(Tokenizer::from_dir(testdata("tokenizers/" + GetParam())), GetParam());
}

// The same ids from tokenizer.model alone (converted as transformers does; legacy=false gives the
// Metaspace layout).
TEST_P(LongText, SentencePieceModelAloneMatchesHuggingFace) {
  std::string src = testdata("tokenizers/" + GetParam());
  if (!std::filesystem::exists(src + "/tokenizer.model")) GTEST_SKIP() << "no tokenizer.model";
  test::TempDir dir;
  std::filesystem::copy_file(src + "/tokenizer.model", dir.file("tokenizer.model"));
  json cfg = read_json_file(src + "/tokenizer_config.json");
  if (!read_json_file(src + "/tokenizer.json")["pre_tokenizer"].is_null()) cfg["legacy"] = false;
  write_file_atomic(dir.file("tokenizer_config.json"), cfg.dump());
  check_against_reference(Tokenizer::from_dir(dir.path()), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, LongText, ::testing::Values("gpt-neox", "mistral-v3", "mistral-v3-metaspace"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace pcm
