// Added (and special) tokens, matched in the text before the normalizer and the model see it, as
// HF tokenizers' AddedVocabulary does: tokens with normalized=false are found in the raw text,
// those with normalized=true in the normalized text (their patterns normalized the same way), with
// leftmost-longest matching and the lstrip / rstrip / single_word rules.
#pragma once
#include <array>
#include <cstdint>
#include <unordered_map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/bpe_model.h"
#include "tokenizer/pretokenized.h"

namespace pcm {

class Normalizer;

struct AddedToken {
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// Parses one tokenizer.json "added_tokens" entry (the "id" field is read by the caller).
AddedToken parse_added_token(const json& spec, const std::string& where);

class AddedVocabulary {
 public:
  // HF add_tokens: each token keeps the id its content already has (added or model vocabulary),
  // otherwise takes the next free id; empty contents are ignored. Returns the assigned ids.
  std::vector<int32_t> add_tokens(const std::vector<AddedToken>& tokens, const BpeModel& model,
                                  const Normalizer* normalizer);

  // Step 1 (raw text, normalized=false tokens) and step 2 (normalizes each remaining piece, then
  // normalized=true tokens) of HF extract_and_normalize. With match_special=false, special tokens
  // are not matched, so their text is tokenized as ordinary text (HF encode_special_tokens).
  void extract_and_normalize(std::string_view text, const Normalizer* normalizer, std::vector<Piece>& out,
                             bool match_special = true) const;

  std::optional<int32_t> id_of(std::string_view content) const;
  const AddedToken* token(int32_t id) const;
  // The text decode uses for an added token (HF simple_id_to_token): its content, normalized when
  // normalized=true, so that the decoder inverts the normalizer (e.g. "▁" of Prepend).
  const std::string* decode_text(int32_t id) const;
  bool is_special_content(std::string_view content) const;
  int32_t max_id() const { return max_id_; }
  size_t size() const { return by_id_.size(); }

 private:
  // A byte trie over patterns, for leftmost-longest search.
  struct Trie {
    struct Node {
      int32_t token = -1;  // id of the token ending here
      std::vector<std::pair<uint8_t, int32_t>> next;
    };
    std::vector<Node> nodes;
    std::array<int32_t, 256> root{};
    bool empty() const { return nodes.size() <= 1; }
    void clear();
    void insert(std::string_view pattern, int32_t id);
    // Longest pattern starting at s[i]: returns its end or 0 (patterns are non-empty); sets id.
    size_t longest_at(std::string_view s, size_t i, int32_t* id) const;
  };
  struct Entry {
    AddedToken token;
    std::string pattern;  // what the trie matches: content, normalized when normalized=true
  };

  static Entry make_entry(const AddedToken& t, const Normalizer* normalizer);
  void rebuild(const Normalizer* normalizer);
  void split(const Piece& piece, const Trie& trie, bool match_special, std::vector<Piece>& out) const;

  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> by_content_;
  std::unordered_map<int32_t, Entry> by_id_;
  std::unordered_map<std::string, bool, StringHash, std::equal_to<>> special_contents_;
  Trie raw_trie_, normalized_trie_;
  int32_t max_id_ = -1;
};

}  // namespace pcm
