// The tokenizer: Hugging Face tokenizers' encode/decode pipeline (added tokens -> normalizer ->
// pre-tokenizer -> BPE model -> post-processor; decoders), reimplemented to give the same ids and
// text as `tokenizers` for the components of tokenizer.json listed in normalizers.h,
// pre_tokenizers.h, bpe_model.h, decoders.h and post_processor.h. Anything else is an error at load
// time, never a silently different tokenization.
//
// A Tokenizer is cheap to copy (shared immutable state) and safe to use from several threads.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pcm {

namespace detail {
struct TokenizerImpl;
}

class Tokenizer {
 public:
  // tokenizer.json from `model_dir`, else tokenizer.model (SentencePiece, converted as transformers
  // does); then tokenizer_config.json and special_tokens_map.json (if present) for bos/eos and
  // add_bos_token/add_eos_token.
  static Tokenizer from_dir(const std::string& model_dir);
  // Only the tokenizer.json (bos/eos from its post-processor).
  static Tokenizer from_json_file(const std::string& tokenizer_json_path);
  // A tokenizer.json document already parsed; `origin` names it in errors.
  static Tokenizer from_json_text(std::string_view text, const std::string& origin);

  // Throws pcm::Error on invalid UTF-8 input, naming the byte offset. Text that spells a special
  // token ("<s>", "[INST]") becomes its id, as in HF.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // The same; with parse_special_tokens=false the text of special tokens is tokenized as ordinary
  // text (HF's encode_special_tokens / transformers' split_special_tokens), e.g. for untrusted
  // user content that must not inject control tokens.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens, bool parse_special_tokens) const;
  // Throws pcm::Error on an id outside [0, vocab_size()). Ids without a token are skipped (as HF).
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  size_t vocab_size() const;  // largest id + 1, added tokens included
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // "" for an id without a token; throws out of range
  bool is_special(int32_t id) const;          // decode(skip_special_tokens=true) drops it
  int32_t bos_id() const;                     // -1 when none
  int32_t eos_id() const;
  std::string bos_token() const;              // "" when none
  std::string eos_token() const;
  // Where the tokenizer came from (tokenizer.json or tokenizer.model path), for messages.
  const std::string& source() const;

  // For the stream decoder: true if a run of <0xNN> tokens may still change its text when more
  // ids follow, and whether `id` is such a byte token.
  bool decoder_joins_byte_tokens() const;
  bool is_byte_token(int32_t id) const;

 private:
  explicit Tokenizer(std::shared_ptr<const detail::TokenizerImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const detail::TokenizerImpl> impl_;
};

// Streaming detokenizer. push() returns the text that is now final; it never emits a broken UTF-8
// sequence, and the concatenation of every push() plus flush() equals
// tokenizer.decode(all ids, skip_special_tokens). Each step decodes a short window (the previous
// chunk's tokens plus the new ones, HF DecodeStream style), so the cost per token is amortized O(1).
class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = true);
  std::string push(int32_t id);
  std::string flush();  // the rest (possibly ending in U+FFFD); resets the stream

 private:
  Tokenizer tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // window: [0, prefix_index_) already emitted, the rest pending
  size_t prefix_index_ = 0;
  std::string prefix_;        // decode(ids_[0, prefix_index_))
};

}  // namespace pcm
