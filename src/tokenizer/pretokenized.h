// The pieces a text is cut into on its way to the model (HF PreTokenizedString without offsets),
// and HF's NormalizedString::split with its five delimiter behaviours.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/json.h"

namespace pcm {

class Regex;

// One split of the input. HF tracks byte alignments to the original text; the only decision that
// depends on them is Metaspace's prepend_scheme "first" (is this split at original offset 0?), so a
// piece keeps just enough to answer that:
//   at_start: the piece begins the original input (HF: offsets_original().0 == 0);
//   zero_prefix: how many leading bytes of `text` align with the piece's first original byte
//                (a sub-piece cut at byte a < zero_prefix of an at_start piece is at_start too).
struct Piece {
  std::string text;
  int32_t id = -1;  // >= 0: an added token already matched; no further processing
  bool at_start = false;
  uint32_t zero_prefix = 0;

  // The sub-piece [a, b) of this piece.
  Piece slice(size_t a, size_t b) const {
    Piece p;
    p.text.assign(text, a, b - a);
    p.at_start = at_start && a < zero_prefix;
    p.zero_prefix = p.at_start ? static_cast<uint32_t>(std::min<size_t>(zero_prefix, b) - a) : 0;
    return p;
  }
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
SplitBehavior parse_split_behavior(const json& value, const std::string& where);

// A tokenizer.json pattern object, {"String": s} (literal) or {"Regex": r} (Oniguruma syntax), as
// Split, Replace and the Replace decoder use it. `where` names the owning field in errors.
Regex make_pattern(const json& spec, const std::string& where);

// A segment of a piece: [start, end) and whether it matched the pattern. A match list covers the
// whole text, in order (HF Pattern::find_matches).
struct Segment {
  size_t start, end;
  bool is_match;
};

// HF Pattern::find_matches for a regex (Oniguruma iteration), optionally inverted.
void find_regex_segments(const Regex& re, std::string_view s, bool invert, std::vector<Segment>& out);

// HF Pattern::find_matches for a char predicate: every matching character is its own match.
template <class Pred>
void find_char_segments(std::string_view s, Pred pred, std::vector<Segment>& out);

// HF NormalizedString::split: applies `behavior` to `segments` and appends the non-empty
// sub-pieces of `piece` to `out`.
void split_piece(const Piece& piece, const std::vector<Segment>& segments, SplitBehavior behavior,
                 std::vector<Piece>& out);

// Runs `fn(piece, out)` over every piece without an added-token id; pieces with an id are kept
// as they are (HF PreTokenizedString::split).
template <class Fn>
void split_pieces(std::vector<Piece>& pieces, Fn&& fn) {
  std::vector<Piece> next;
  next.reserve(pieces.size() * 2);
  for (Piece& p : pieces) {
    if (p.id >= 0) next.push_back(std::move(p));
    else fn(p, next);
  }
  pieces.swap(next);
}

}  // namespace pcm

#include "tokenizer/utf8.h"

namespace pcm {

template <class Pred>
void find_char_segments(std::string_view s, Pred pred, std::vector<Segment>& out) {
  out.clear();
  if (s.empty()) {
    out.push_back({0, 0, false});
    return;
  }
  size_t last = 0, i = 0;
  while (i < s.size()) {
    size_t len;
    uint32_t cp = utf8_decode(s, i, &len);
    if (pred(cp)) {
      if (last < i) out.push_back({last, i, false});
      out.push_back({i, i + len, true});
      last = i + len;
    }
    i += len;
  }
  if (last < s.size()) out.push_back({last, s.size(), false});
}

}  // namespace pcm
