// Every supported component against Hugging Face: variants of the fixture tokenizers (normalizers,
// pre-tokenizers incl. Split behaviours and look-ahead regexes, added-token lstrip/rstrip/
// single_word/normalized, decoders, BPE ignore_merges / continuing_subword_prefix, post-processors)
// with HF tokenizers 0.23.2's ids and decodes from testdata/tokenizer/components.jsonl
// (make_component_reference.mjs).
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm {
namespace {

TEST(TokenizerComponents, VariantsMatchHuggingFace) {
  std::string path = test::testdata("tokenizer/components.jsonl");
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::map<std::string, json> bases;
  std::string line;
  size_t variants = 0, texts = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json v = parse_json(line, path);
    std::string base = v["base"].get<std::string>();
    if (!bases.count(base)) bases[base] = read_json_file(test::testdata("tokenizers/" + base + "/tokenizer.json"));
    json doc = bases[base];
    for (auto it = v["patch"].begin(); it != v["patch"].end(); ++it) doc[it.key()] = it.value();
    const json& extra = v["extra"];
    if (extra.contains("model")) {
      for (auto it = extra["model"].begin(); it != extra["model"].end(); ++it) doc["model"][it.key()] = it.value();
    }
    if (extra.contains("append_added_tokens")) {
      for (const json& t : extra["append_added_tokens"]) doc["added_tokens"].push_back(t);
    }
    std::string label = v["label"].get<std::string>();
    SCOPED_TRACE("variant " + label);
    Tokenizer tok = Tokenizer::from_json_text(doc.dump(), label);
    for (const json& r : v["results"]) {
      std::string text = r["text"].get<std::string>();
      SCOPED_TRACE("text " + r["text"].dump());
      EXPECT_EQ(tok.encode(text, false), r["ids"].get<std::vector<int32_t>>());
      std::vector<int32_t> special = r["ids_with_special"].get<std::vector<int32_t>>();
      EXPECT_EQ(tok.encode(text, true), special);
      EXPECT_EQ(tok.decode(special, false), r["decoded"].get<std::string>());
      EXPECT_EQ(tok.decode(special, true), r["decoded_skip"].get<std::string>());
      // The stream decoder gives the same text through every decoder variant.
      for (bool skip : {false, true}) {
        StreamDecoder stream(tok, skip);
        std::string streamed;
        for (int32_t id : special) streamed += stream.push(id);
        streamed += stream.flush();
        EXPECT_EQ(streamed, r[skip ? "decoded_skip" : "decoded"].get<std::string>()) << "stream, skip=" << skip;
      }
      ++texts;
    }
    ++variants;
  }
  EXPECT_EQ(variants, 22u);
  EXPECT_GT(texts, 400u);
}

}  // namespace
}  // namespace pcm
