// Bad input gets a clear pcm::Error: invalid UTF-8, ids out of range, malformed tokenizer.json
// (missing model, bad merges, unknown component types), broken tokenizer.model.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm {
namespace {

using test::testdata;

// Runs `fn`, expects a pcm::Error whose message contains every one of `parts`.
template <class Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "expected a pcm::Error";
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
  }
}

// A small valid tokenizer.json to break in various ways.
json tiny_tokenizer() {
  return parse_json(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [{"id": 5, "content": "<eos>", "single_word": false, "lstrip": false, "rstrip": false,
                      "normalized": false, "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "WhitespaceSplit"},
    "post_processor": null,
    "decoder": {"type": "Fuse"},
    "model": {"type": "BPE", "dropout": null, "unk_token": "u", "vocab": {"u": 0, "a": 1, "b": 2, "ab": 3, "c": 4},
              "merges": ["a b"]}
  })", "tiny");
}

Tokenizer load(const json& doc) { return Tokenizer::from_json_text(doc.dump(), "tiny.json"); }

TEST(TokenizerErrors, TinyTokenizerWorks) {
  Tokenizer tok = load(tiny_tokenizer());
  EXPECT_EQ(tok.encode("ab c<eos>", false), (std::vector<int32_t>{3, 4, 5}));
  EXPECT_EQ(tok.encode("abx", false), (std::vector<int32_t>{3, 0}));  // unknown character -> unk
  EXPECT_EQ(tok.vocab_size(), 6u);
  EXPECT_EQ(tok.decode(std::vector<int32_t>{3, 4, 5}, true), "abc");
}

TEST(TokenizerErrors, InvalidUtf8InputNamesTheOffset) {
  Tokenizer tok = Tokenizer::from_dir(testdata("tokenizers/gpt-neox"));
  expect_error([&] { tok.encode("abc\xff" "def", false); }, {"not valid UTF-8", "offset 3", "0xFF"});
  expect_error([&] { tok.encode("ok \xE4\xBD", false); }, {"not valid UTF-8", "offset 3"});   // truncated
  expect_error([&] { tok.encode("\xC0\xAF", false); }, {"not valid UTF-8", "offset 0"});      // overlong
  expect_error([&] { tok.encode("\xED\xA0\x80", false); }, {"not valid UTF-8", "offset 0"});  // surrogate
}

TEST(TokenizerErrors, IdOutOfRange) {
  Tokenizer tok = Tokenizer::from_dir(testdata("tokenizers/mistral-v3"));
  std::vector<int32_t> big = {1, 32768};
  expect_error([&] { tok.decode(big, false); }, {"token id 32768", "out of range"});
  std::vector<int32_t> negative = {-1};
  expect_error([&] { tok.decode(negative, false); }, {"token id -1", "out of range"});
  expect_error([&] { tok.id_to_token(40000); }, {"out of range"});
  StreamDecoder stream(tok);
  expect_error([&] { stream.push(99999); }, {"out of range"});
}

TEST(TokenizerErrors, MalformedTokenizerJson) {
  expect_error([] { Tokenizer::from_json_text("{\"model\": ", "broken.json"); }, {"broken.json"});
  {
    json d = tiny_tokenizer();
    d.erase("model");
    expect_error([&] { load(d); }, {"tiny.json", "missing \"model\""});
  }
  {
    json d = tiny_tokenizer();
    d["model"]["merges"] = json::array({"a"});
    expect_error([&] { load(d); }, {"tiny.json: model.merges[0]", "two tokens"});
  }
  {
    json d = tiny_tokenizer();
    d["model"]["merges"] = json::array({"a zz"});
    expect_error([&] { load(d); }, {"merges[0]", "\"zz\" is not in the vocabulary"});
  }
  {
    json d = tiny_tokenizer();
    d["model"]["merges"] = json::array({json::array({"b", "c"})});
    expect_error([&] { load(d); }, {"merges[0]", "merged token \"bc\""});
  }
  {
    json d = tiny_tokenizer();
    d["model"]["merges"] = json::array({42});
    expect_error([&] { load(d); }, {"merges[0]"});
  }
  {
    json d = tiny_tokenizer();
    d["model"]["type"] = "Unigram";
    expect_error([&] { load(d); }, {"unsupported model type \"Unigram\""});
  }
  {
    json d = tiny_tokenizer();
    d["model"].erase("vocab");
    expect_error([&] { load(d); }, {"missing \"vocab\""});
  }
  {
    json d = tiny_tokenizer();
    d["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "xx"}};
    expect_error([&] { load(d); }, {"tiny.json: normalizer", "unsupported normalizer type \"Precompiled\""});
  }
  {
    json d = tiny_tokenizer();
    d["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({{{"type", "UnicodeScripts"}}})}};
    expect_error([&] { load(d); }, {"pre_tokenizer.pretokenizers[0]", "\"UnicodeScripts\""});
  }
  {
    json d = tiny_tokenizer();
    d["decoder"] = {{"type", "WordPiece"}};
    expect_error([&] { load(d); }, {"decoder", "unsupported decoder type \"WordPiece\""});
  }
  {
    json d = tiny_tokenizer();
    d["post_processor"] = {{"type", "Mystery"}};
    expect_error([&] { load(d); }, {"post_processor", "\"Mystery\""});
  }
  {
    json d = tiny_tokenizer();
    d["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
    expect_error([&] { load(d); }, {"pre_tokenizer", "invalid regex \"(unclosed\""});
  }
  {
    json d = tiny_tokenizer();
    d["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
    expect_error([&] { load(d); }, {"unknown split behavior \"Sideways\""});
  }
  {
    json d = tiny_tokenizer();
    d["truncation"] = {{"max_length", 8}};
    expect_error([&] { load(d); }, {"truncation"});
  }
  {
    json d = tiny_tokenizer();
    d["model"]["vocab"]["c"] = 2000000000;
    expect_error([&] { load(d); }, {"model.vocab", "largest id 2000000000"});
  }
  {
    json d = tiny_tokenizer();
    d["model"]["vocab"]["c"] = -4;
    expect_error([&] { load(d); }, {"model.vocab[\"c\"]", "out of range"});
  }
  {
    json d = tiny_tokenizer();
    d["model"]["dropout"] = 0.1;
    expect_error([&] { load(d); }, {"dropout"});
  }
}

// One-character fields (spec_char): a longer string (of multi-byte characters too), an empty one or a non-string is an
// error naming the component's field, in the pre-tokenizers and the decoders alike; Metaspace's prepend_scheme too.
// Elsewhere a value of the wrong type names the file.
TEST(TokenizerErrors, FieldsOfTheWrongType) {
  const auto with = [](const char* part, json spec) {
    json d = tiny_tokenizer();
    d[part] = std::move(spec);
    return d;
  };
  expect_error([&] { load(with("pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "ab"}})); },
               {"tiny.json: pre_tokenizer.replacement", "exactly one character, got \"ab\""});
  expect_error([&] { load(with("pre_tokenizer", {{"type", "CharDelimiterSplit"}, {"delimiter", ""}})); },
               {"pre_tokenizer.delimiter", "exactly one character"});
  expect_error([&] { load(with("pre_tokenizer", {{"type", "CharDelimiterSplit"}, {"delimiter", 7}})); },
               {"pre_tokenizer.delimiter", "expected a one-character string"});
  expect_error([&] { load(with("decoder", {{"type", "Metaspace"}, {"replacement", "\u2581\u2581"}})); },
               {"decoder.replacement", "exactly one character"});
  expect_error([&] { load(with("decoder", {{"type", "Strip"}, {"content", json::array()}, {"start", 1}})); },
               {"decoder.content", "expected a one-character string"});
  expect_error([&] { load(with("pre_tokenizer", {{"type", "Metaspace"}, {"prepend_scheme", "sometimes"}})); },
               {"pre_tokenizer.prepend_scheme", "unknown value \"sometimes\""});
  expect_error([&] { load(with("pre_tokenizer", {{"type", "Metaspace"}, {"prepend_scheme", 3}})); },
               {"pre_tokenizer.prepend_scheme"});
  // Values of the wrong type where no component check names the field: still an error naming the file.
  expect_error([&] { load(with("post_processor", {{"type", "TemplateProcessing"}, {"single", {{{"Sequence", 5}}}},
                                                  {"pair", nullptr}, {"special_tokens", json::object()}})); },
               {"tiny.json: unexpected value", "value() with number"});
  expect_error([&] { load(with("pre_tokenizer", {{"type", "ByteLevel"}, {"use_regex", 5}})); },
               {"tiny.json: unexpected value", "use_regex: expected true or false, got 5"});
  // Valid ones load: a multi-byte replacement character, and the fallbacks when the field is absent or null.
  EXPECT_NO_THROW(load(with("pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "\u2581"}})));
  EXPECT_NO_THROW(load(with("decoder", {{"type", "Strip"}, {"content", nullptr}, {"start", 1}})));
}

TEST(TokenizerErrors, MissingFilesAndBrokenSentencePieceModel) {
  test::TempDir dir;
  expect_error([&] { Tokenizer::from_dir(dir.path()); }, {dir.path(), "neither tokenizer.json nor tokenizer.model"});
  expect_error([&] { Tokenizer::from_dir(dir.file("nope")); }, {"does not exist"});
  std::string model = read_text_file(testdata("tokenizers/mistral-v3/tokenizer.model"));
  write_file_atomic(dir.file("tokenizer.model"), model.substr(0, model.size() / 2));
  expect_error([&] { Tokenizer::from_dir(dir.path()); }, {"tokenizer.model", "malformed protobuf"});
  write_file_atomic(dir.file("tokenizer.model"), "");
  expect_error([&] { Tokenizer::from_dir(dir.path()); }, {"tokenizer.model", "no pieces"});
}

TEST(TokenizerErrors, BadTokenizerConfig) {
  test::TempDir dir;
  std::filesystem::copy_file(testdata("tokenizers/mistral-v3/tokenizer.json"), dir.file("tokenizer.json"));
  write_file_atomic(dir.file("tokenizer_config.json"), R"({"bos_token": "<nope>"})");
  expect_error([&] { Tokenizer::from_dir(dir.path()); }, {"tokenizer_config.json", "bos_token \"<nope>\""});
  write_file_atomic(dir.file("tokenizer_config.json"), R"({"add_bos_token": "yes"})");
  expect_error([&] { Tokenizer::from_dir(dir.path()); }, {"tokenizer_config.json", "add_bos_token"});
}

}  // namespace
}  // namespace pcm
