// The tokenizer stored in a GGUF (tokenizer.ggml.*): llama SentencePiece kind from a fixture GGUF made
// by llama.cpp's converter against HF's ids for the same tokenizer, and the gpt2 kind against
// llama.cpp's own reference encodings shipped with its vocab files.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "io/gguf.h"
#include "io/jsonl.h"
#include "test_util.h"
#include "tokenizer/gguf_tokenizer.h"
#include "util/error.h"

namespace pcm {
namespace {

using test::testdata;

TEST(GgufTokenizer, LlamaKindMatchesHfIdsForMistralV3) {
  Tokenizer tok = Tokenizer::from_dir(testdata("gguf/tiny-mistral-bf16.gguf"));
  int checked = 0;
  for (const auto& r : read_jsonl(testdata("tokenizers/mistral-v3/reference.jsonl"))) {
    if (r.at("kind") != "encode") continue;
    const std::string text = r.at("text");
    EXPECT_EQ(tok.encode(text, false), r.at("ids").get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(tok.encode(text, true), r.at("ids_with_special").get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(tok.decode(r.at("ids").get<std::vector<int32_t>>(), false), r.at("decoded").get<std::string>()) << text;
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

std::vector<std::string> split_inputs(const std::string& all) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t at = all.find(sep, pos);
    if (at == std::string::npos) break;
    out.push_back(all.substr(pos, at - pos));
    pos = at + sep.size();
  }
  return out;
}

TEST(GgufTokenizer, Gpt2KindMatchesLlamaCppReferenceEncodings) {
  const std::string base = testdata("gguf/vocab/ggml-vocab-gpt-2.gguf");
  Tokenizer tok = Tokenizer::from_dir(base);
  std::ifstream inp(base + ".inp", std::ios::binary), outp(base + ".out");
  std::stringstream a;
  a << inp.rdbuf();
  auto inputs = split_inputs(a.str());
  std::vector<std::vector<int32_t>> expected;
  for (std::string line; std::getline(outp, line);) {
    std::vector<int32_t> ids;
    std::istringstream ls(line);
    for (int32_t id; ls >> id;) ids.push_back(id);
    expected.push_back(ids);
  }
  ASSERT_EQ(inputs.size(), expected.size());
  for (size_t i = 0; i < inputs.size(); ++i) EXPECT_EQ(tok.encode(inputs[i], false), expected[i]) << "input #" << i;
}

TEST(GgufTokenizer, FileWithoutTokenizerIsAClearError) {
  // A hand-made GGUF: version 3, no tensors, one key (general.architecture = "mamba2").
  std::string b = "GGUF";
  auto u32 = [&](uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); };
  auto str = [&](const std::string& x) { u64(x.size()); b += x; };
  u32(3), u64(0), u64(1);
  str("general.architecture"), u32(8), str("mamba2");
  test::TempDir dir;
  std::ofstream(dir.file("bare.gguf"), std::ios::binary) << b;
  try {
    Tokenizer::from_dir(dir.file("bare.gguf"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bare.gguf: no tokenizer in this GGUF"), std::string::npos) << e.what();
  }
}

TEST(GgufTokenizer, ConverterSyntheticVocabularyLoads) {
  Tokenizer tok = Tokenizer::from_dir(testdata("gguf/tiny-g2-f32.gguf"));
  EXPECT_EQ(tok.vocab_size(), 256u);
}

// A copy of a fixture GGUF with the value of metadata `key` overwritten at `skip` bytes past its type field.
std::string patched_gguf(const test::TempDir& dir, const std::string& fixture, const std::string& key, size_t skip,
                         const std::string& bytes) {
  std::ifstream in(testdata(fixture), std::ios::binary);
  std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = b.find(key);
  EXPECT_NE(at, std::string::npos) << key;
  b.replace(at + key.size() + 4 + skip, bytes.size(), bytes);
  const std::string path = dir.file("patched.gguf");
  std::ofstream(path, std::ios::binary | std::ios::trunc) << b;
  return path;
}

// Audit item 8: a token string that is not UTF-8 gave nlohmann's bare "type_error.316 invalid UTF-8 byte".
TEST(GgufTokenizer, TokenThatIsNotUtf8NamesTheFileAndKey) {
  test::TempDir dir;
  // tokenizer.ggml.tokens: element type (4), count (8), then the first string's length (8) and bytes.
  const std::string path = patched_gguf(dir, "gguf/tiny-g2-f32.gguf", "tokenizer.ggml.tokens", 4 + 8 + 8, "\xFF");
  const std::string message = test::error_of([&] { Tokenizer::from_dir(path); });
  EXPECT_NE(message.find("patched.gguf: metadata 'tokenizer.ggml.tokens'[0] is not valid UTF-8 (byte 0xFF at offset 0)"),
            std::string::npos)
      << message;
}

// Audit item 8: unknown_token_id = 10000000 said 'unk_token "<unk>" is not in the vocabulary' (tiny-g2), or was
// accepted (tiny-mistral, whose vocabulary has "<unk>").
TEST(GgufTokenizer, SpecialTokenIdPastTheVocabularyNamesTheFileAndKey) {
  for (const char* fixture : {"gguf/tiny-g2-f32.gguf", "gguf/tiny-mistral-bf16.gguf"}) {
    test::TempDir dir;
    const uint32_t huge = 10000000;
    const std::string path = patched_gguf(dir, fixture, "tokenizer.ggml.unknown_token_id", 0,
                                          std::string(reinterpret_cast<const char*>(&huge), 4));
    const std::string message = test::error_of([&] { Tokenizer::from_dir(path); });
    EXPECT_NE(message.find("patched.gguf: metadata 'tokenizer.ggml.unknown_token_id' = 10000000 is not a token id"),
              std::string::npos)
        << fixture << ": " << message;
  }
}

}  // namespace
}  // namespace pcm
