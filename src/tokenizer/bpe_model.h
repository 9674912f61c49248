// HF tokenizers' BPE model: a word becomes characters (or <0xNN> byte tokens with byte_fallback, or
// unk), then adjacent pairs merge lowest rank first (ties: leftmost) through a priority queue over a
// linked list of symbols, exactly as tokenizers/src/models/bpe/word.rs does. Results for words
// under 256 bytes are cached (sharded, thread-safe).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/json.h"

namespace pcm {

// Open-addressing hash map from a token-id pair to (rank, merged id).
class MergeMap {
 public:
  struct Value {
    uint32_t rank;
    int32_t id;
  };
  void reserve(size_t n);
  void insert_or_assign(int32_t a, int32_t b, Value v);
  const Value* find(int32_t a, int32_t b) const {
    uint64_t key = make_key(a, b);
    size_t i = hash(key) & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == kEmpty) return nullptr;
      i = (i + 1) & mask_;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key = kEmpty;
    Value value{0, 0};
  };
  static uint64_t make_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Parses a tokenizer.json "model" object of type BPE; `where` names the file and field in errors.
  static std::unique_ptr<BpeModel> from_json(const json& spec, const std::string& where);
  ~BpeModel();

  // Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;  // nullptr if the id has no token
  size_t vocab_size() const { return vocab_.size(); }
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }
  const TokenIdMap& vocab() const { return vocab_; }

 private:
  BpeModel() = default;
  struct Symbol {
    int32_t c;
    int32_t prev, next;
    uint32_t len;
  };
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  void tokenize_segment(std::string_view word, std::vector<int32_t>& out) const;
  int32_t unk_id() const;
  int32_t char_id(std::string_view ch, bool first, bool last, std::string& scratch) const;

  TokenIdMap vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<uint8_t> has_token_;
  MergeMap merges_;
  std::vector<int32_t> bmp_ids_;          // code point < 0x10000 -> id of that one-character token, or -1
  std::array<int32_t, 256> byte_ids_{};   // byte -> id of "<0xNN>", or -1
  std::optional<std::string> unk_token_;
  std::string prefix_, suffix_;           // continuing_subword_prefix, end_of_word_suffix
  bool has_prefix_ = false, has_suffix_ = false;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  // No merge can join a character to a following "▁" (see bpe_model.cpp): words may be cut before
  // every "▁" that follows another character, which makes long unsplit inputs cacheable.
  bool split_before_metaspace_ = false;

  struct CacheShard;
  std::unique_ptr<CacheShard[]> cache_;
};

}  // namespace pcm
