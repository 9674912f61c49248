// The tokenizer against Hugging Face's own output: every record of
// testdata/tokenizers/*/reference.jsonl (made with tokenizers 0.23 / transformers 5.17).
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
    if (!spells_special) EXPECT_EQ(tok.decode(ids, true), text) << r["text"].dump();
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
  std::filesystem::copy_file(src + "/tokenizer.model", dir.file("tokenizer.model"));
  // transformers converts a SentencePiece model to the Metaspace layout when legacy=false.
  json cfg = read_json_file(src + "/tokenizer_config.json");
  json tj = read_json_file(src + "/tokenizer.json");
  if (!tj["pre_tokenizer"].is_null()) cfg["legacy"] = false;
  write_file_atomic(dir.file("tokenizer_config.json"), cfg.dump());
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
