#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <queue>

#include "tokenizer/byte_level.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm {

namespace {

using PairKey = uint64_t;
PairKey key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }
int32_t first(PairKey k) { return static_cast<int32_t>(k >> 32); }
int32_t second(PairKey k) { return static_cast<int32_t>(k & 0xffffffffu); }

// Heap entry: the larger count first; on equal counts the smaller pair, as HF's Merge ordering.
struct Candidate {
  int64_t count;
  PairKey pair;
  bool operator<(const Candidate& o) const { return count != o.count ? count < o.count : pair > o.pair; }
};

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

}  // namespace

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : options_(std::move(options)) {
  PCM_CHECK(options_.vocab_size >= static_cast<int64_t>(options_.special_tokens.size()) + 256,
            "--vocab-size {} is smaller than the {} special tokens plus the 256 byte-level characters",
            options_.vocab_size, options_.special_tokens.size());
}

void BpeTrainer::add_text(std::string_view text) {
  static thread_local std::string cached_pattern;
  static thread_local Regex split;
  if (cached_pattern != options_.split_regex) {
    split = Regex::onig(options_.split_regex, "tokenizer train: split regex");
    cached_pattern = options_.split_regex;
  }
  ++documents_;
  bytes_ += static_cast<int64_t>(text.size());
  // Special-token text is cut out first so no merge ever spans it.
  size_t pos = 0;
  while (pos < text.size()) {
    size_t next = std::string_view::npos, len = 0;
    for (const auto& s : options_.special_tokens) {
      size_t at = text.find(s, pos);
      if (at < next) next = at, len = s.size();
    }
    std::string_view piece = text.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
    split.for_each_match(piece, [&](size_t a, size_t b) { ++word_counts_[byte_level_encode(piece.substr(a, b - a))]; });
    if (next == std::string_view::npos) break;
    pos = next + len;
  }
}

void BpeTrainer::train(const std::function<void(int64_t, int64_t)>& progress) {
  vocab_.clear();
  merges_.clear();
  std::unordered_map<std::string, int32_t> ids;
  auto add_token = [&](const std::string& t) {
    auto [it, fresh] = ids.emplace(t, static_cast<int32_t>(vocab_.size()));
    if (fresh) vocab_.push_back(t);
    return it->second;
  };
  for (const auto& s : options_.special_tokens) add_token(s);
  // The 256 byte-level characters, sorted by code point as BpeTrainer sorts its alphabet.
  std::vector<std::pair<uint32_t, std::string>> alphabet;
  for (int b = 0; b < 256; ++b) {
    std::string ch(byte_level_char(static_cast<uint8_t>(b)));
    size_t len = 0;
    alphabet.emplace_back(utf8_decode(ch, 0, &len), ch);
  }
  std::sort(alphabet.begin(), alphabet.end());
  for (const auto& [cp, ch] : alphabet) add_token(ch);

  // Words as symbol ids; pair counts and, per pair, the words that may hold it.
  std::vector<Word> words;
  words.reserve(word_counts_.size());
  for (const auto& [w, count] : word_counts_) {
    Word word{{}, count};
    size_t i = 0;
    while (i < w.size()) {
      size_t n = utf8_seq_len(static_cast<uint8_t>(w[i]));
      word.symbols.push_back(ids.at(w.substr(i, n)));
      i += n;
    }
    words.push_back(std::move(word));
  }
  std::unordered_map<PairKey, int64_t> pair_counts;
  std::unordered_map<PairKey, std::vector<int32_t>> where;
  for (size_t wi = 0; wi < words.size(); ++wi) {
    const auto& s = words[wi].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      PairKey k = key(s[i], s[i + 1]);
      pair_counts[k] += words[wi].count;
      where[k].push_back(static_cast<int32_t>(wi));
    }
  }
  std::priority_queue<Candidate> queue;
  for (const auto& [k, c] : pair_counts) queue.push({c, k});

  const int64_t wanted = options_.vocab_size - static_cast<int64_t>(vocab_.size());
  int64_t done = 0;
  std::unordered_map<PairKey, int64_t> delta;
  while (static_cast<int64_t>(vocab_.size()) < options_.vocab_size && !queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    auto it = pair_counts.find(top.pair);
    const int64_t current = it == pair_counts.end() ? 0 : it->second;
    if (current != top.count) {  // stale entry: requeue with today's count
      if (current > 0) queue.push({current, top.pair});
      continue;
    }
    if (top.count < options_.min_frequency) break;
    const int32_t a = first(top.pair), b = second(top.pair);
    const std::string merged = vocab_[static_cast<size_t>(a)] + vocab_[static_cast<size_t>(b)];
    const int32_t id = add_token(merged);
    merges_.emplace_back(vocab_[static_cast<size_t>(a)], vocab_[static_cast<size_t>(b)]);
    ++done;

    // Rewrite every word holding (a, b); pair counts change by (new pairs - old pairs) x count.
    std::vector<int32_t> touched = std::move(where[top.pair]);
    where.erase(top.pair);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    delta.clear();
    for (int32_t wi : touched) {
      Word& w = words[static_cast<size_t>(wi)];
      auto& s = w.symbols;
      bool found = false;
      for (size_t i = 0; i + 1 < s.size(); ++i) found = found || (s[i] == a && s[i + 1] == b);
      if (!found) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[key(s[i], s[i + 1])] -= w.count;
      std::vector<int32_t> out;
      out.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          out.push_back(id);
          ++i;
        } else {
          out.push_back(s[i]);
        }
      }
      s.swap(out);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        PairKey k = key(s[i], s[i + 1]);
        delta[k] += w.count;
        if (first(k) == id || second(k) == id) where[k].push_back(wi);
      }
    }
    for (const auto& [k, d] : delta) {
      if (d == 0) continue;
      int64_t& c = pair_counts[k];
      c += d;
      if (c <= 0) {
        pair_counts.erase(k);
      } else if (d > 0) {
        queue.push({c, k});
      }
    }
    if (progress && (done % 256 == 0)) progress(done, wanted);
  }
  if (progress) progress(done, wanted);
}

json BpeTrainer::tokenizer_json() const {
  PCM_CHECK(!vocab_.empty(), "tokenizer train: train() has not run");
  json added = json::array();
  for (size_t i = 0; i < options_.special_tokens.size(); ++i) {
    const std::string& t = options_.special_tokens[i];
    const bool kept = std::find(options_.kept_in_text.begin(), options_.kept_in_text.end(), t) != options_.kept_in_text.end();
    added.push_back({{"id", i}, {"content", t}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", !kept}});
  }
  json vocab = json::object();
  for (size_t i = 0; i < vocab_.size(); ++i) vocab[vocab_[i]] = i;
  json merges = json::array();
  for (const auto& [x, y] : merges_) merges.push_back(json::array({x, y}));
  const json split = {{"type", "Split"}, {"pattern", {{"Regex", options_.split_regex}}}, {"behavior", "Isolated"},
                      {"invert", false}};
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                           {"use_regex", false}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", json::array({split, byte_level})}}},
          {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
            {"vocab", vocab}, {"merges", merges}}}};
}

const char* chatml_think_template() {
  return "{%- for message in messages %}"
         "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
         "{%- endfor %}"
         "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
}

}  // namespace pcm
