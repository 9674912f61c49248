// Regular expressions for the tokenizer, on PCRE2 (UTF + UCP, JIT-compiled).
// HF tokenizers runs its Split/Replace patterns and the GPT-2 pre-tokenizer regex with Oniguruma;
// Regex::onig() translates the constructs whose meaning differs between the two engines (\s, \w,
// \h, \uHHHH) and for_each_match() reproduces Oniguruma's find_iter (an empty match right after the
// previous match is skipped by one character). A Regex is immutable and safe to share across threads.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pcm {

class Regex {
 public:
  Regex() = default;
  // `where` (e.g. "tokenizer.json: pre_tokenizer.pattern") is named in compile errors.
  static Regex onig(std::string_view pattern, const std::string& where);
  static Regex pcre(std::string_view pattern, const std::string& where = "regex");
  // Byte semantics (\d, \s, \w and . on single bytes, as std::regex in the C locale), for any bytes, valid
  // UTF-8 or not. Unlike libstdc++'s std::regex, whose matcher recurses once per character and overflowed the
  // stack on answers of ~26k characters, PCRE2 matches long subjects in bounded stack.
  static Regex bytes(std::string_view pattern, const std::string& where = "regex");
  static Regex literal(std::string_view text);  // matches `text` verbatim

  // First match at or after byte `start`; false if none.
  bool search(std::string_view s, size_t start, size_t* match_start, size_t* match_end) const;
  bool matches(std::string_view s) const {
    size_t a, b;
    return search(s, 0, &a, &b);
  }

  // The first match at or after byte `start` with its capture groups: [0] the whole match, [i] group i
  // ({npos, npos} when it took no part). Empty when there is no match.
  std::vector<std::pair<size_t, size_t>> groups(std::string_view s, size_t start = 0) const;
  // The text of one of groups()' spans in `s` ("" for a group that took no part).
  static std::string_view text(std::string_view s, std::pair<size_t, size_t> span) {
    return span.first == std::string_view::npos ? std::string_view() : s.substr(span.first, span.second - span.first);
  }

  // All matches, left to right, with Oniguruma's iteration rules.
  template <class F>
  void for_each_match(std::string_view s, F&& f) const {
    size_t pos = 0, last_match_end = std::string_view::npos;
    while (pos <= s.size()) {
      size_t ms, me;
      if (!search(s, pos, &ms, &me)) break;
      if (ms == me && me == last_match_end) {
        if (me >= s.size()) break;
        pos = me + next_char_len(s, me);
        continue;
      }
      f(ms, me);
      pos = me;
      last_match_end = me;
    }
  }
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;

  const std::string& pattern() const;
  bool empty() const { return !impl_; }

 private:
  struct Impl;
  static Regex compile(std::string_view pattern, std::string_view shown, const std::string& where, bool utf);
  static size_t next_char_len(std::string_view s, size_t i);
  std::shared_ptr<const Impl> impl_;
};

// Rewrites Oniguruma (Ruby syntax) escapes whose meaning differs in PCRE2. Exposed for tests.
std::string onig_to_pcre2(std::string_view pattern);

}  // namespace pcm
