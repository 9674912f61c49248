#include "tokenizer/gguf_tokenizer.h"

#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm {

namespace {

// GGUF token types (the same numbering as SentencePiece's piece types).
enum TokenType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

std::vector<std::string> string_array(const GgufFile& f, const std::string& key) {
  PCM_CHECK(f.has(key), "{}: metadata '{}' is missing", f.path(), key);
  const json& a = f.metadata().at(key);
  PCM_CHECK(a.is_array(), "{}: metadata '{}' must be an array", f.path(), key);
  std::vector<std::string> out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    PCM_CHECK(a[i].is_string(), "{}: metadata '{}'[{}] must be a string", f.path(), key, i);
    // Checked here: the tokenizer JSON built from these strings failed to dump with nlohmann's bare type_error 316.
    const std::string& s = a[i].get_ref<const std::string&>();
    if (const auto bad = utf8_first_invalid(s))
      fail("{}: metadata '{}'[{}] is not valid UTF-8 (byte 0x{:02X} at offset {})", f.path(), key, i,
           static_cast<uint8_t>(s[*bad]), *bad);
    out.push_back(s);
  }
  return out;
}

template <class T>
std::vector<T> number_array(const GgufFile& f, const std::string& key, size_t n, T fallback) {
  if (!f.has(key)) return std::vector<T>(n, fallback);
  const json& a = f.metadata().at(key);
  PCM_CHECK(a.is_array() && a.size() == n, "{}: metadata '{}' must be an array of {} numbers", f.path(), key, n);
  std::vector<T> out(n);
  for (size_t i = 0; i < n; ++i) {
    PCM_CHECK(a[i].is_number(), "{}: metadata '{}'[{}] must be a number", f.path(), key, i);
    out[i] = a[i].get<T>();
  }
  return out;
}

// A special token's id (bos, eos, unk): -1 (none) or an index into tokenizer.ggml.tokens. An id past the end
// was reported as "unk_token "<unk>" is not in the vocabulary" naming neither the file nor the key, or ignored.
int64_t token_id_or(const GgufFile& f, const std::string& key, int64_t fallback, size_t vocab_size) {
  const int64_t id = f.get_int_or(key, fallback);
  PCM_CHECK(id >= -1 && id < static_cast<int64_t>(vocab_size),
            "{}: metadata '{}' = {} is not a token id (tokenizer.ggml.tokens holds {})", f.path(), key, id, vocab_size);
  return id;
}

// Pre-tokenizer regexes of the tokenizer.ggml.pre kinds we accept, as HF writes them.
json gpt2_pre_tokenizer(const GgufFile& f, const std::string& pre, bool* ignore_merges) {
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  if (pre == "gpt-2" || pre == "default" || pre == "mpt" || pre == "olmo" || pre == "gpt-neox") return byte_level;
  std::string regex;
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    *ignore_merges = true;
  } else if (pre == "qwen2") {
    regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  } else {
    fail("{}: tokenizer.ggml.pre '{}' is not supported (gpt-2, default, mpt, olmo, llama-bpe, qwen2 are)", f.path(), pre);
  }
  json split = {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
  json bl = byte_level;
  bl["use_regex"] = false;
  return {{"type", "Sequence"}, {"pretokenizers", json::array({split, bl})}};
}

json added_tokens_of(const std::vector<std::string>& tokens, const std::vector<int32_t>& types) {
  json added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] != kControl && types[i] != kUserDefined) continue;
    added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", types[i] == kUserDefined}, {"special", types[i] == kControl}});
  }
  return added;
}

json gpt2_tokenizer_json(const GgufFile& f) {
  const auto tokens = string_array(f, "tokenizer.ggml.tokens");
  const auto types = number_array<int32_t>(f, "tokenizer.ggml.token_type", tokens.size(), kNormal);
  const auto merges = string_array(f, "tokenizer.ggml.merges");
  const std::string pre = f.has("tokenizer.ggml.pre") ? f.get_string("tokenizer.ggml.pre") : "default";
  bool ignore_merges = false;
  json pre_tokenizer = gpt2_pre_tokenizer(f, pre, &ignore_merges);
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) {
    PCM_CHECK(!vocab.contains(tokens[i]), "{}: tokenizer.ggml.tokens holds '{}' twice (ids {} and {})", f.path(),
              tokens[i], vocab[tokens[i]].get<size_t>(), i);
    vocab[tokens[i]] = i;
  }
  json post = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  const int64_t bos = token_id_or(f, "tokenizer.ggml.bos_token_id", -1, tokens.size());
  const bool add_bos = f.has("tokenizer.ggml.add_bos_token") && f.metadata().at("tokenizer.ggml.add_bos_token") == true;
  if (add_bos && bos >= 0) {
    const std::string& b = tokens[static_cast<size_t>(bos)];
    post = {{"type", "TemplateProcessing"},
            {"single", json::array({{{"SpecialToken", {{"id", b}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
            {"pair", json::array({{{"SpecialToken", {{"id", b}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                  {{"SpecialToken", {{"id", b}, {"type_id", 1}}}}, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
            {"special_tokens", {{b, {{"id", b}, {"ids", json::array({bos})}, {"tokens", json::array({b})}}}}}};
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added_tokens_of(tokens, types)},
          {"normalizer", nullptr},
          {"pre_tokenizer", pre_tokenizer},
          {"post_processor", post},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
            {"ignore_merges", ignore_merges}, {"vocab", vocab}, {"merges", merges}}}};
}

json llama_tokenizer_json(const GgufFile& f) {
  const auto tokens = string_array(f, "tokenizer.ggml.tokens");
  const auto types = number_array<int32_t>(f, "tokenizer.ggml.token_type", tokens.size(), kNormal);
  const auto scores = number_array<float>(f, "tokenizer.ggml.scores", tokens.size(), 0.0f);
  SentencePieceModel m;
  m.model_type = 2;  // BPE: what llama.cpp's "llama" vocabulary is
  m.pieces.resize(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    PCM_CHECK(types[i] >= kNormal && types[i] <= kByte, "{}: tokenizer.ggml.token_type[{}] = {} is not a token type",
              f.path(), i, types[i]);
    m.pieces[i] = {tokens[i], scores[i], types[i]};
    m.byte_fallback = m.byte_fallback || types[i] == kByte;
  }
  m.unk_id = static_cast<int>(token_id_or(f, "tokenizer.ggml.unknown_token_id", 0, tokens.size()));
  m.bos_id = static_cast<int>(token_id_or(f, "tokenizer.ggml.bos_token_id", 1, tokens.size()));
  m.eos_id = static_cast<int>(token_id_or(f, "tokenizer.ggml.eos_token_id", 2, tokens.size()));
  if (m.unk_id >= 0) m.unk_piece = tokens[static_cast<size_t>(m.unk_id)];
  if (f.has("tokenizer.ggml.add_space_prefix"))
    m.add_dummy_prefix = f.metadata().at("tokenizer.ggml.add_space_prefix") == true;
  json j = sentencepiece_to_tokenizer_json(m, f.path());
  // llama.cpp records whether BOS is added; without it the template drops the <s>.
  if (f.has("tokenizer.ggml.add_bos_token") && f.metadata().at("tokenizer.ggml.add_bos_token") == false)
    j["post_processor"] = nullptr;
  return j;
}

}  // namespace

json tokenizer_json_from_gguf(const GgufFile& f) {
  PCM_CHECK(f.has("tokenizer.ggml.model"), "{}: no tokenizer in this GGUF (tokenizer.ggml.model is missing)", f.path());
  const std::string kind = f.get_string("tokenizer.ggml.model");
  if (kind == "gpt2") return gpt2_tokenizer_json(f);
  if (kind == "llama") return llama_tokenizer_json(f);
  fail("{}: tokenizer.ggml.model '{}' is not supported (gpt2 and llama are)", f.path(), kind);
}

Tokenizer tokenizer_from_gguf(const GgufFile& f) {
  return Tokenizer::from_json_text(tokenizer_json_from_gguf(f).dump(), f.path());
}

}  // namespace pcm
