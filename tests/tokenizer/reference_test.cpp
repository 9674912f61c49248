// The tokenizer against Hugging Face's own output: every record of
// testdata/tokenizers/*/reference.jsonl (made with tokenizers 0.23 / transformers 5.17).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm {
namespace {

using test::testdata;

std::vector<json> records(const std::string& name, const std::string& kind) {
  std::string path = testdata("tokenizers/" + name + "/reference.jsonl");
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json r = parse_json(line, path);
    if (r.value("kind", "") == kind) out.push_back(std::move(r));
  }
  return out;
}

std::vector<int32_t> ids_of(const json& a) { return a.get<std::vector<int32_t>>(); }

// Copies a fixture's tokenizer.model and tokenizer_config.json (without tokenizer.json) to `dir`;
// legacy=false when the fixture's tokenizer.json has the Metaspace layout, as transformers writes it.
void copy_sentencepiece_only(const std::string& src, const test::TempDir& dir) {
  std::filesystem::copy_file(src + "/tokenizer.model", dir.file("tokenizer.model"));
  json cfg = read_json_file(src + "/tokenizer_config.json");
  if (!read_json_file(src + "/tokenizer.json")["pre_tokenizer"].is_null()) cfg["legacy"] = false;
  write_file_atomic(dir.file("tokenizer_config.json"), cfg.dump());
}

class Reference : public ::testing::TestWithParam<std::string> {};

TEST_P(Reference, EncodeRecordsMatchIdsSpecialIdsAndDecoded) {
  Tokenizer tok = Tokenizer::from_dir(testdata("tokenizers/" + GetParam()));
  auto recs = records(GetParam(), "encode");
  ASSERT_GT(recs.size(), 20u);
  for (const json& r : recs) {
    std::string text = r["text"].get<std::string>();
    SCOPED_TRACE("text: " + r["text"].dump());
    EXPECT_EQ(tok.encode(text, false), ids_of(r["ids"]));
    EXPECT_EQ(tok.encode(text, true), ids_of(r["ids_with_special"]));
    std::vector<int32_t> ids = ids_of(r["ids"]);
    EXPECT_EQ(tok.decode(ids, false), r["decoded"].get<std::string>());
  }
}

TEST_P(Reference, DecodeRoundTripsWhereHfDoes) {
  Tokenizer tok = Tokenizer::from_dir(testdata("tokenizers/" + GetParam()));
  size_t checked = 0;
  for (const json& r : records(GetParam(), "encode")) {
    std::string text = r["text"].get<std::string>();
    if (r["decoded"].get<std::string>() != text) continue;
    EXPECT_EQ(tok.decode(tok.encode(text, false), false), text) << r["text"].dump();
    std::vector<int32_t> ids = tok.encode(text, true);
    bool spells_special = false;
    for (int32_t id : tok.encode(text, false)) spells_special = spells_special || tok.is_special(id);
    if (!spells_special) {
      EXPECT_EQ(tok.decode(ids, true), text) << r["text"].dump();
    }
    ++checked;
  }
  EXPECT_GT(checked, 10u);
}

TEST_P(Reference, ChatRendersEncodeWithSpecialTokenText) {
  Tokenizer tok = Tokenizer::from_dir(testdata("tokenizers/" + GetParam()));
  size_t checked = 0;
  for (const json& r : records(GetParam(), "chat")) {
    if (r.contains("error") || !r.contains("rendered")) continue;
    SCOPED_TRACE("rendered: " + r["rendered"].dump());
    EXPECT_EQ(tok.encode(r["rendered"].get<std::string>(), false), ids_of(r["ids"]));
    ++checked;
  }
  EXPECT_GT(checked, 0u);
}

TEST_P(Reference, SentencePieceModelAloneGivesTheSameIds) {
  std::string src = testdata("tokenizers/" + GetParam());
  if (!std::filesystem::exists(src + "/tokenizer.model")) GTEST_SKIP() << "no tokenizer.model";
  test::TempDir dir;
  copy_sentencepiece_only(src, dir);
  Tokenizer tok = Tokenizer::from_dir(dir.path());
  EXPECT_EQ(tok.source(), dir.file("tokenizer.model"));
  Tokenizer ref = Tokenizer::from_dir(src);
  EXPECT_EQ(tok.vocab_size(), ref.vocab_size());
  EXPECT_EQ(tok.bos_id(), ref.bos_id());
  EXPECT_EQ(tok.eos_id(), ref.eos_id());
  for (const json& r : records(GetParam(), "encode")) {
    std::string text = r["text"].get<std::string>();
    SCOPED_TRACE("text: " + r["text"].dump());
    EXPECT_EQ(tok.encode(text, false), ids_of(r["ids"]));
    EXPECT_EQ(tok.encode(text, true), ids_of(r["ids_with_special"]));
    EXPECT_EQ(tok.decode(ids_of(r["ids"]), false), r["decoded"].get<std::string>());
  }
}

TEST_P(Reference, SpecialTokensAndVocabulary) {
  Tokenizer tok = Tokenizer::from_dir(testdata("tokenizers/" + GetParam()));
  ASSERT_GE(tok.bos_id(), 0);
  ASSERT_GE(tok.eos_id(), 0);
  EXPECT_TRUE(tok.is_special(tok.bos_id()));
  EXPECT_TRUE(tok.is_special(tok.eos_id()));
  EXPECT_EQ(tok.token_to_id(tok.bos_token()), tok.bos_id());
  EXPECT_EQ(tok.token_to_id(tok.eos_token()), tok.eos_id());
  std::vector<int32_t> with_eos = tok.encode("Hello", false);
  with_eos.push_back(tok.eos_id());
  EXPECT_EQ(tok.decode(with_eos, true), "Hello");
  EXPECT_EQ(tok.decode(with_eos, false), "Hello" + tok.eos_token());
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Reference, ::testing::Values("gpt-neox", "mistral-v3", "mistral-v3-metaspace"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(Tokenizer, SpecialTokenTextCanBeEncodedAsPlainText) {
  Tokenizer tok = Tokenizer::from_dir(testdata("tokenizers/mistral-v3"));
  std::string text = "<s>[INST] hi [/INST]</s>";
  std::vector<int32_t> parsed = tok.encode(text, false);
  std::vector<int32_t> plain = tok.encode(text, false, /*parse_special_tokens=*/false);
  EXPECT_EQ(parsed, (std::vector<int32_t>{1, 3, 29473, 12782, 29473, 4, 2}));  // as reference.jsonl, plus </s>
  for (int32_t id : plain) EXPECT_FALSE(tok.is_special(id)) << id;
  EXPECT_GT(plain.size(), parsed.size());
  EXPECT_EQ(tok.decode(plain, true), text);
  EXPECT_EQ(tok.encode(text, true, false).front(), 1);  // the post-processor's BOS is still added
}

TEST(Tokenizer, NeoxNamedBosEosComeFromTokenizerConfig) {
  Tokenizer tok = Tokenizer::from_dir(testdata("tokenizers/gpt-neox"));
  EXPECT_EQ(tok.bos_token(), "<|endoftext|>");
  EXPECT_EQ(tok.eos_id(), 0);
  EXPECT_EQ(tok.vocab_size(), 50277u);
  // The tokenizer.json alone has no bos/eos (its post-processor adds nothing).
  Tokenizer bare = Tokenizer::from_json_file(testdata("tokenizers/gpt-neox/tokenizer.json"));
  EXPECT_EQ(bare.bos_id(), -1);
}

TEST(Tokenizer, MistralAddBosEosFlagsFromTokenizerConfig) {
  std::string src = testdata("tokenizers/mistral-v3");
  test::TempDir dir;
  std::filesystem::copy_file(src + "/tokenizer.json", dir.file("tokenizer.json"));
  json cfg = read_json_file(src + "/tokenizer_config.json");
  cfg["add_bos_token"] = false;
  cfg["add_eos_token"] = true;
  write_file_atomic(dir.file("tokenizer_config.json"), cfg.dump());
  Tokenizer tok = Tokenizer::from_dir(dir.path());
  std::vector<int32_t> plain = tok.encode("Hello world", false);
  std::vector<int32_t> special = tok.encode("Hello world", true);
  plain.push_back(2);
  EXPECT_EQ(special, plain);
}

}  // namespace
}  // namespace pcm

namespace pcm {
namespace {

// Seeded random strings (scripts, combining marks, odd whitespace, special-token text, "▁",
// "<0x41>") with HF tokenizers 0.23.2's ids and decode (make_random_reference.mjs).
TEST(Tokenizer, RandomUnicodeMatchesHuggingFace) {
  std::string path = test::testdata("tokenizer/random_unicode.jsonl");
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::map<std::string, Tokenizer> toks;
  for (const char* name : {"gpt-neox", "mistral-v3", "mistral-v3-metaspace"}) {
    toks.emplace(name, Tokenizer::from_dir(test::testdata(std::string("tokenizers/") + name)));
  }
  // The Mistral ones again from tokenizer.model alone.
  test::TempDir sp_legacy, sp_metaspace;
  copy_sentencepiece_only(test::testdata("tokenizers/mistral-v3"), sp_legacy);
  copy_sentencepiece_only(test::testdata("tokenizers/mistral-v3-metaspace"), sp_metaspace);
  std::map<std::string, Tokenizer> sp = {{"mistral-v3", Tokenizer::from_dir(sp_legacy.path())},
                                         {"mistral-v3-metaspace", Tokenizer::from_dir(sp_metaspace.path())}};
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json r = parse_json(line, path);
    std::string text = r["text"].get<std::string>();
    for (auto& [name, tok] : toks) {
      SCOPED_TRACE(name + ": " + r["text"].dump());
      std::vector<int32_t> want = r[name]["ids"].get<std::vector<int32_t>>();
      EXPECT_EQ(tok.encode(text, false), want);
      EXPECT_EQ(tok.decode(want, false), r[name]["decoded"].get<std::string>());
      if (sp.count(name)) {
        EXPECT_EQ(sp.at(name).encode(text, false), want) << "from tokenizer.model";
      }
    }
    ++n;
  }
  EXPECT_EQ(n, 300u);
}

}  // namespace
}  // namespace pcm
