// Tokenizer: loading tokenizer.json / tokenizer.model + tokenizer_config.json, the encode pipeline
// (added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor), decode, and StreamDecoder.
#include "tokenizer/tokenizer.h"

#include "io/gguf.h"
#include "tokenizer/gguf_tokenizer.h"

#include <filesystem>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoders.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/utf8.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm {

namespace detail {

struct TokenizerImpl {
  std::string source;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<Decoder> decoder;
  PostProcessor post;
  AddedVocabulary added;
  int32_t bos = -1, eos = -1;
  size_t vocab_size = 0;
  std::vector<uint8_t> byte_token;  // id -> 1 if a model "<0xNN>" token (not an added token)

  const std::string* token_text(int32_t id) const {
    if (const std::string* t = added.decode_text(id)) return t;
    return model->id_to_token(id);
  }
};

}  // namespace detail

namespace {

using detail::TokenizerImpl;

bool is_null_or_absent(const json& doc, const char* key) { return !doc.contains(key) || doc[key].is_null(); }

std::shared_ptr<TokenizerImpl> build_unchecked(const json& doc, const std::string& origin) {
  PCM_CHECK(doc.is_object(), "{}: expected a JSON object at the top level", origin);
  auto impl = std::make_shared<TokenizerImpl>();
  impl->source = origin;
  PCM_CHECK(!is_null_or_absent(doc, "model"), "{}: missing \"model\"", origin);
  PCM_CHECK(is_null_or_absent(doc, "truncation"),
            "{}: \"truncation\" is set; truncation inside the tokenizer is not supported (set it to null)", origin);
  if (!is_null_or_absent(doc, "padding")) {
    const json& pad = doc["padding"];
    bool fixed = pad.is_object() && pad.contains("strategy") && pad["strategy"].is_object() &&
                 pad["strategy"].contains("Fixed");
    PCM_CHECK(!fixed, "{}: \"padding\" with a Fixed strategy is not supported (set it to null)", origin);
  }
  if (!is_null_or_absent(doc, "normalizer")) impl->normalizer = make_normalizer(doc["normalizer"], origin + ": normalizer");
  if (!is_null_or_absent(doc, "pre_tokenizer"))
    impl->pre_tokenizer = make_pre_tokenizer(doc["pre_tokenizer"], origin + ": pre_tokenizer");
  impl->model = BpeModel::from_json(doc["model"], origin + ": model");
  if (!is_null_or_absent(doc, "decoder")) impl->decoder = make_decoder(doc["decoder"], origin + ": decoder");
  if (!is_null_or_absent(doc, "post_processor"))
    impl->post = PostProcessor::from_json(doc["post_processor"], origin + ": post_processor");

  if (!is_null_or_absent(doc, "added_tokens")) {
    PCM_CHECK(doc["added_tokens"].is_array(), "{}: \"added_tokens\" must be a list", origin);
    // As HF deserializes them: one add_tokens call, so a token whose content is already in the
    // model's vocabulary takes that id and a new one takes the next free id (the file's "id" is
    // only checked for being an integer, exactly as HF only warns about a different one).
    std::vector<AddedToken> tokens;
    size_t i = 0;
    for (const json& e : doc["added_tokens"]) {
      std::string where = fmt::format("{}: added_tokens[{}]", origin, i++);
      tokens.push_back(parse_added_token(e, where));
      PCM_CHECK(e.contains("id") && e["id"].is_number_integer() && e["id"].get<int64_t>() >= 0,
                "{}: missing non-negative integer \"id\"", where);
    }
    impl->added.add_tokens(tokens, *impl->model, impl->normalizer.get());
  }
  impl->vocab_size = static_cast<size_t>(std::max(impl->model->max_id(), impl->added.max_id()) + 1);
  impl->byte_token.assign(impl->vocab_size, 0);
  for (size_t id = 0; id < impl->vocab_size; ++id) {
    auto i = static_cast<int32_t>(id);
    if (impl->added.token(i)) continue;
    const std::string* t = impl->model->id_to_token(i);
    if (t && byte_fallback_value(*t) >= 0) impl->byte_token[id] = 1;
  }
  // Post-processor ids must exist.
  for (int32_t id : {impl->post.bos_id(), impl->post.eos_id()}) {
    PCM_CHECK(id < 0 || static_cast<size_t>(id) < impl->vocab_size,
              "{}: post_processor adds id {} outside the vocabulary (size {})", origin, id, impl->vocab_size);
  }
  impl->bos = impl->post.bos_id();
  impl->eos = impl->post.eos_id();
  return impl;
}

// The components check the fields they interpret; a value of the wrong type anywhere else (a number where a string
// goes) throws nlohmann's type error, which names no file: name it here.
std::shared_ptr<TokenizerImpl> build(const json& doc, const std::string& origin) {
  return naming_json_errors(origin + ": unexpected value in the tokenizer definition",
                            [&] { return build_unchecked(doc, origin); });
}

// tokenizer_config.json / special_tokens_map.json spell a token as "text" or {"content": "text", ...}.
std::optional<std::string> config_token(const json& cfg, const char* key, const std::string& where) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  fail("{}: \"{}\" must be a string or {{\"content\": ...}}, got {}", where, key, it->dump());
}

int32_t resolve_token(const TokenizerImpl& impl, const std::string& text, const char* key, const std::string& where) {
  if (auto id = impl.added.id_of(text)) return *id;
  if (auto id = impl.model->token_to_id(text)) return *id;
  fail("{}: {} \"{}\" is not in the vocabulary", where, key, text);
}

// bos/eos from special_tokens_map.json then tokenizer_config.json (the latter wins, as in
// transformers), and add_bos_token / add_eos_token rebuilding the post-processor as transformers does.
void apply_config(TokenizerImpl& impl, const std::string& dir) {
  namespace fs = std::filesystem;
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    std::string path = (fs::path(dir) / name).string();
    if (!fs::exists(path)) continue;
    json cfg = read_json_file(path);
    PCM_CHECK(cfg.is_object(), "{}: expected a JSON object", path);
    if (auto bos = config_token(cfg, "bos_token", path)) impl.bos = resolve_token(impl, *bos, "bos_token", path);
    if (auto eos = config_token(cfg, "eos_token", path)) impl.eos = resolve_token(impl, *eos, "eos_token", path);
    bool has_add_bos = cfg.contains("add_bos_token") && !cfg["add_bos_token"].is_null();
    bool has_add_eos = cfg.contains("add_eos_token") && !cfg["add_eos_token"].is_null();
    if (!has_add_bos && !has_add_eos) continue;
    PCM_CHECK(!has_add_bos || cfg["add_bos_token"].is_boolean(), "{}: add_bos_token must be true or false", path);
    PCM_CHECK(!has_add_eos || cfg["add_eos_token"].is_boolean(), "{}: add_eos_token must be true or false", path);
    // The flag that is not given keeps what the tokenizer's post-processor already does.
    bool add_bos = has_add_bos ? cfg["add_bos_token"].get<bool>() : impl.post.bos_id() >= 0;
    bool add_eos = has_add_eos ? cfg["add_eos_token"].get<bool>() : impl.post.eos_id() >= 0;
    PCM_CHECK(!add_bos || impl.bos >= 0, "{}: add_bos_token is true but there is no bos_token", path);
    PCM_CHECK(!add_eos || impl.eos >= 0, "{}: add_eos_token is true but there is no eos_token", path);
    impl.post = PostProcessor::bos_eos(add_bos ? impl.bos : -1, add_eos ? impl.eos : -1);
  }
}

}  // namespace

Tokenizer Tokenizer::from_json_text(std::string_view text, const std::string& origin) {
  return Tokenizer(build(parse_json(text, origin), origin));
}

Tokenizer Tokenizer::from_json_file(const std::string& path) {
  PCM_CHECK(std::filesystem::exists(path), "tokenizer file {} does not exist", path);
  return from_json_text(read_text_file(path), path);
}

Tokenizer Tokenizer::from_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (is_gguf_path(dir)) return tokenizer_from_gguf(GgufFile(dir));  // llama.cpp file: tokenizer.ggml.*
  PCM_CHECK(fs::is_directory(dir), "tokenizer directory {} does not exist", dir);
  std::string json_path = (fs::path(dir) / "tokenizer.json").string();
  std::string model_path = (fs::path(dir) / "tokenizer.model").string();
  std::shared_ptr<TokenizerImpl> impl;
  if (fs::exists(json_path)) {
    impl = build(parse_json(read_text_file(json_path), json_path), json_path);
  } else if (fs::exists(model_path)) {
    SentencePieceModel sp = parse_sentencepiece_model(read_text_file(model_path), model_path);
    SentencePieceConversion conv;
    std::string cfg_path = (fs::path(dir) / "tokenizer_config.json").string();
    if (fs::exists(cfg_path)) {
      json cfg = read_json_file(cfg_path);
      if (cfg.is_object()) {
        conv.legacy = json_bool_or(cfg, "legacy", true);
        if (cfg.contains("add_prefix_space") && cfg["add_prefix_space"].is_boolean())
          conv.add_prefix_space = cfg["add_prefix_space"].get<bool>();
      }
    }
    impl = build(sentencepiece_to_tokenizer_json(sp, model_path, conv), model_path);
  } else {
    fail("{}: neither tokenizer.json nor tokenizer.model found", dir);
  }
  apply_config(*impl, dir);
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return encode(text, add_special_tokens, true);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens, bool parse_special_tokens) const {
  if (auto bad = utf8_first_invalid(text)) {
    fail("tokenizer: input is not valid UTF-8 (bad byte 0x{:02X} at offset {})", static_cast<uint8_t>(text[*bad]), *bad);
  }
  const TokenizerImpl& t = *impl_;
  std::vector<Piece> pieces;
  t.added.extract_and_normalize(text, t.normalizer.get(), pieces, parse_special_tokens);
  if (t.pre_tokenizer) t.pre_tokenizer->pre_tokenize(pieces);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const Piece& p : pieces) {
    if (p.id >= 0) ids.push_back(p.id);
    else t.model->tokenize(p.text, ids);
  }
  if (add_special_tokens) t.post.apply(ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const TokenizerImpl& t = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    PCM_CHECK(id >= 0 && static_cast<size_t>(id) < t.vocab_size, "tokenizer: token id {} is out of range [0, {})", id,
              t.vocab_size);
    if (skip_special_tokens && is_special(id)) continue;
    if (const std::string* s = t.token_text(id)) tokens.push_back(*s);
  }
  if (!t.decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  t.decoder->decode_chain(tokens);
  std::string out;
  for (const auto& s : tokens) out += s;
  return out;
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = impl_->added.id_of(token)) return id;
  return impl_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  PCM_CHECK(id >= 0 && static_cast<size_t>(id) < impl_->vocab_size, "tokenizer: token id {} is out of range [0, {})",
            id, impl_->vocab_size);
  if (const AddedToken* t = impl_->added.token(id)) return t->content;  // HF id_to_token: the content
  const std::string* s = impl_->model->id_to_token(id);
  return s ? *s : std::string();
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* t = impl_->added.token(id);
  if (t) return t->special;
  // HF checks by content: a model token whose text is a special added token's content.
  const std::string* s = impl_->model->id_to_token(id);
  return s && impl_->added.is_special_content(*s);
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
std::string Tokenizer::bos_token() const { return impl_->bos >= 0 ? id_to_token(impl_->bos) : std::string(); }
std::string Tokenizer::eos_token() const { return impl_->eos >= 0 ? id_to_token(impl_->eos) : std::string(); }
const std::string& Tokenizer::source() const { return impl_->source; }

bool Tokenizer::decoder_joins_byte_tokens() const { return impl_->decoder && impl_->decoder->joins_byte_tokens(); }

bool Tokenizer::is_byte_token(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->byte_token.size() && impl_->byte_token[static_cast<size_t>(id)];
}

// ---- StreamDecoder ----

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}

std::string StreamDecoder::push(int32_t id) {
  PCM_CHECK(id >= 0 && static_cast<size_t>(id) < tokenizer_.vocab_size(), "tokenizer: token id {} is out of range [0, {})",
            id, tokenizer_.vocab_size());
  // decode() drops a skipped special token before the decoder sees anything, so the window can drop
  // it too: it adds no text and leaves byte runs around it joined.
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  ids_.push_back(id);
  // A run of byte tokens is decoded as a whole (all of it valid UTF-8, or U+FFFD per byte), so
  // nothing after its start is final until a token that is not a byte token closes it.
  if (tokenizer_.decoder_joins_byte_tokens() && tokenizer_.is_byte_token(id)) return {};
  std::string text = tokenizer_.decode(ids_, skip_special_);
  // Text ending in U+FFFD may be an incomplete character that the next token completes.
  if (text.size() <= prefix_.size() || std::string_view(text).ends_with(kReplacementChar)) return {};
  PCM_CHECK(std::string_view(text).starts_with(prefix_),
            "stream decoder: the decoded window no longer starts with the emitted text (decoder is not incremental)");
  std::string chunk = text.substr(prefix_.size());
  // Keep the tokens of this chunk as context for the next one (the Strip / Metaspace decoders treat
  // the first token specially, so the window must start where the previous chunk started).
  size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  prefix_ = tokenizer_.decode(ids_, skip_special_);
  prefix_index_ = new_prefix_index;
  return chunk;
}

std::string StreamDecoder::flush() {
  std::string text = tokenizer_.decode(ids_, skip_special_);
  PCM_CHECK(std::string_view(text).starts_with(prefix_),
            "stream decoder: the decoded window no longer starts with the emitted text (decoder is not incremental)");
  std::string rest = text.substr(prefix_.size());
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return rest;
}

}  // namespace pcm
