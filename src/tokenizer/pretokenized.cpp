#include "tokenizer/pretokenized.h"

#include <algorithm>

#include "tokenizer/regex.h"
#include "util/error.h"

namespace pcm {

SplitBehavior parse_split_behavior(const json& value, const std::string& where) {
  PCM_CHECK(value.is_string(), "{}: behavior must be a string, got {}", where, value.dump());
  const auto& s = value.get_ref<const std::string&>();
  if (s == "Removed") return SplitBehavior::Removed;
  if (s == "Isolated") return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (s == "Contiguous") return SplitBehavior::Contiguous;
  fail("{}: unknown split behavior \"{}\" (expected Removed, Isolated, MergedWithPrevious, MergedWithNext "
       "or Contiguous)", where, s);
}

Regex make_pattern(const json& spec, const std::string& where) {
  PCM_CHECK(spec.is_object() && spec.size() == 1, "{}.pattern: expected {{\"String\": ...}} or {{\"Regex\": ...}}, got {}",
            where, spec.dump());
  auto it = spec.begin();
  PCM_CHECK(it.value().is_string(), "{}.pattern.{}: expected a string", where, it.key());
  const auto& text = it.value().get_ref<const std::string&>();
  if (it.key() == "String") return Regex::literal(text);
  if (it.key() == "Regex") return Regex::onig(text, where + ".pattern");
  fail("{}.pattern: unknown pattern kind \"{}\" (expected String or Regex)", where, it.key());
}

void find_regex_segments(const Regex& re, std::string_view s, bool invert, std::vector<Segment>& out) {
  out.clear();
  if (s.empty()) {
    out.push_back({0, 0, invert});
    return;
  }
  size_t prev = 0;
  re.for_each_match(s, [&](size_t a, size_t b) {
    if (prev != a) out.push_back({prev, a, invert});
    out.push_back({a, b, !invert});
    prev = b;
  });
  if (prev != s.size()) out.push_back({prev, s.size(), invert});
}

void split_piece(const Piece& piece, const std::vector<Segment>& segments, SplitBehavior behavior,
                 std::vector<Piece>& out) {
  auto emit = [&](size_t a, size_t b) {
    if (a < b) out.push_back(piece.slice(a, b));
  };
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const auto& s : segments) emit(s.start, s.end);
      return;
    case SplitBehavior::Removed:
      for (const auto& s : segments)
        if (!s.is_match) emit(s.start, s.end);
      return;
    default:
      break;
  }
  // The merging behaviours fold segments into ranges first, exactly as HF does.
  std::vector<std::pair<size_t, size_t>> ranges;
  ranges.reserve(segments.size());
  bool previous_match = false;
  if (behavior == SplitBehavior::Contiguous) {
    for (const auto& s : segments) {
      if (s.is_match == previous_match && !ranges.empty()) ranges.back().second = s.end;
      else ranges.emplace_back(s.start, s.end);
      previous_match = s.is_match;
    }
  } else if (behavior == SplitBehavior::MergedWithPrevious) {
    for (const auto& s : segments) {
      if (s.is_match && !previous_match && !ranges.empty()) ranges.back().second = s.end;
      else ranges.emplace_back(s.start, s.end);
      previous_match = s.is_match;
    }
  } else {  // MergedWithNext: the same fold, right to left
    for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
      if (it->is_match && !previous_match && !ranges.empty()) ranges.back().first = it->start;
      else ranges.emplace_back(it->start, it->end);
      previous_match = it->is_match;
    }
    std::reverse(ranges.begin(), ranges.end());
  }
  for (const auto& [a, b] : ranges) emit(a, b);
}

}  // namespace pcm
