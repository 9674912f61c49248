// Byte-level BPE training, the algorithm of HF tokenizers' BpeTrainer: pre-tokenise with a split
// regex, count words, start from the 256 byte-level characters (after the special tokens), then
// repeatedly merge the most frequent adjacent pair (ties: the pair of smaller ids, as BpeTrainer)
// until the vocabulary is full. Counts are updated incrementally, so each merge touches only the
// words that contain its pair.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/json.h"

namespace pcm {

struct BpeTrainerOptions {
  int64_t vocab_size = 8192;  // specials + 256 bytes + merges
  int64_t min_frequency = 2;  // a pair seen fewer times is never merged
  // Added tokens (ids 0..), matched whole in text and never merged.
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"};
  // Of those, the ones written with "special": false, so decoding keeps their text: the reasoning tags, as Qwen3's
  // and DeepSeek-R1's tokenizers mark them. An answer's text then holds the tags the model produced, and a chat
  // history sent back tokenizes to the same ids (the server's state cache reuses the previous turn).
  std::vector<std::string> kept_in_text = {"<think>", "</think>"};
  // The Llama-3 / Qwen2 split: letters, 1-3 digit runs, punctuation runs, newlines, spaces.
  std::string split_regex =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options);

  // Pre-tokenises and counts one document (special-token text inside it is split off, never merged).
  void add_text(std::string_view text);
  int64_t documents() const { return documents_; }
  int64_t bytes_seen() const { return bytes_; }
  size_t distinct_words() const { return word_counts_.size(); }

  // Runs the merges. progress(merges_done, merges_wanted) is called now and then.
  void train(const std::function<void(int64_t, int64_t)>& progress = {});

  // Results, valid after train(): token strings by id (byte-level characters) and merges in order.
  const std::vector<std::string>& vocab() const { return vocab_; }
  const std::vector<std::pair<std::string, std::string>>& merges() const { return merges_; }

  // tokenizer.json in HF's layout: BPE model, Split + ByteLevel pre-tokenizer, ByteLevel decoder
  // and post-processor, the special tokens as added tokens.
  json tokenizer_json() const;

 private:
  BpeTrainerOptions options_;
  std::unordered_map<std::string, int64_t> word_counts_;  // byte-level-encoded words
  int64_t documents_ = 0, bytes_ = 0;
  std::vector<std::string> vocab_;
  std::vector<std::pair<std::string, std::string>> merges_;
};

// The ChatML template with <think> that `pcm tokenizer train` writes next to the tokenizer.
const char* chatml_think_template();

}  // namespace pcm
