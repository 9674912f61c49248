#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/normalizers.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm {

namespace {

// The Rust-regex helpers of added_vocabulary.rs: \w$, ^\w, \s*$ and ^\s*.
bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t len;
  return is_rust_word_char(utf8_decode_last(s, s.size(), &len));
}
bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t len;
  return is_rust_word_char(utf8_decode(s, 0, &len));
}
size_t space_leftmost_at_end(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t len;
    if (!is_white_space(utf8_decode_last(s, end, &len))) break;
    end -= len;
  }
  return end;
}
size_t space_rightmost_at_start(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    if (!is_white_space(utf8_decode(s, i, &len))) break;
    i += len;
  }
  return i;
}

}  // namespace

AddedVocabulary::Entry AddedVocabulary::make_entry(const AddedToken& t, const Normalizer* normalizer) {
  Entry e;
  e.token = t;
  e.pattern = t.content;
  if (t.normalized && normalizer) {
    Piece p;
    p.text = t.content;
    normalizer->normalize(p);
    e.pattern = p.text;
  }
  return e;
}

AddedToken parse_added_token(const json& spec, const std::string& where) {
  PCM_CHECK(spec.is_object(), "{}: expected an object, got {}", where, spec.dump());
  PCM_CHECK(spec.contains("content") && spec["content"].is_string(), "{}: missing string \"content\"", where);
  AddedToken t;
  t.content = spec["content"].get<std::string>();
  PCM_CHECK(utf8_valid(t.content), "{}: content is not valid UTF-8", where);
  t.special = json_bool_or(spec, "special", false);
  t.single_word = json_bool_or(spec, "single_word", false);
  t.lstrip = json_bool_or(spec, "lstrip", false);
  t.rstrip = json_bool_or(spec, "rstrip", false);
  t.normalized = json_bool_or(spec, "normalized", !t.special);
  return t;
}

// ---- Trie ----

void AddedVocabulary::Trie::clear() {
  nodes.assign(1, Node{});
  root.fill(-1);
}

void AddedVocabulary::Trie::insert(std::string_view pattern, int32_t id) {
  if (nodes.empty()) clear();
  if (pattern.empty()) return;
  auto first = static_cast<uint8_t>(pattern[0]);
  if (root[first] < 0) {
    root[first] = static_cast<int32_t>(nodes.size());
    nodes.emplace_back();
  }
  int32_t n = root[first];
  for (size_t i = 1; i < pattern.size(); ++i) {
    auto b = static_cast<uint8_t>(pattern[i]);
    int32_t child = -1;
    for (const auto& [byte, idx] : nodes[static_cast<size_t>(n)].next) {
      if (byte == b) child = idx;
    }
    if (child < 0) {
      child = static_cast<int32_t>(nodes.size());
      nodes[static_cast<size_t>(n)].next.emplace_back(b, child);
      nodes.emplace_back();
    }
    n = child;
  }
  nodes[static_cast<size_t>(n)].token = id;
}

size_t AddedVocabulary::Trie::longest_at(std::string_view s, size_t i, int32_t* id) const {
  int32_t n = root[static_cast<uint8_t>(s[i])];
  size_t best = 0;
  size_t j = i + 1;
  while (n >= 0) {
    const Node& node = nodes[static_cast<size_t>(n)];
    if (node.token >= 0) {
      best = j;
      *id = node.token;
    }
    if (j >= s.size()) break;
    auto b = static_cast<uint8_t>(s[j]);
    int32_t child = -1;
    for (const auto& [byte, idx] : node.next) {
      if (byte == b) {
        child = idx;
        break;
      }
    }
    n = child;
    ++j;
  }
  return best;
}

// ---- vocabulary ----

std::vector<int32_t> AddedVocabulary::add_tokens(const std::vector<AddedToken>& tokens, const BpeModel& model,
                                                 const Normalizer* normalizer) {
  const auto model_size = static_cast<int64_t>(model.vocab_size());
  int64_t next_id = model_size;
  if (!by_id_.empty()) {
    int64_t max = -1;
    for (const auto& [id, e] : by_id_) max = std::max<int64_t>(max, id);
    next_id = (max >= model_size || model_size == 0) ? max + 1 : model_size;
  }
  std::vector<int32_t> ids;
  ids.reserve(tokens.size());
  for (const AddedToken& t : tokens) {
    if (t.content.empty()) {
      ids.push_back(-1);
      continue;
    }
    int32_t id;
    if (auto it = by_content_.find(t.content); it != by_content_.end()) {
      id = it->second;
    } else if (auto mid = model.token_to_id(t.content)) {
      id = *mid;
    } else {
      id = static_cast<int32_t>(next_id++);
    }
    by_id_[id] = make_entry(t, normalizer);
    by_content_[t.content] = id;
    if (t.special) special_contents_[t.content] = true;
    max_id_ = std::max(max_id_, id);
    ids.push_back(id);
  }
  rebuild(normalizer);
  return ids;
}

void AddedVocabulary::rebuild(const Normalizer* normalizer) {
  raw_trie_.clear();
  normalized_trie_.clear();
  // Insert in id order so that a pattern shared by two tokens resolves the same way every time.
  std::vector<int32_t> ids;
  ids.reserve(by_id_.size());
  for (const auto& [id, e] : by_id_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (int32_t id : ids) {
    const Entry& e = by_id_.at(id);
    if (e.token.normalized) normalized_trie_.insert(e.pattern, id);
    else raw_trie_.insert(e.token.content, id);
  }
}

std::optional<int32_t> AddedVocabulary::id_of(std::string_view content) const {
  auto it = by_content_.find(content);
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

const AddedToken* AddedVocabulary::token(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second.token;
}

const std::string* AddedVocabulary::decode_text(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second.pattern;
}

bool AddedVocabulary::is_special_content(std::string_view content) const {
  return special_contents_.find(content) != special_contents_.end();
}

void AddedVocabulary::split(const Piece& piece, const Trie& trie, bool match_special, std::vector<Piece>& out) const {
  const std::string& s = piece.text;
  if (s.empty()) return;
  if (trie.empty()) {
    out.push_back(piece);
    return;
  }
  auto emit = [&](size_t a, size_t b, int32_t id) {
    if (a >= b) return;
    Piece p = piece.slice(a, b);
    p.id = id;
    out.push_back(std::move(p));
  };
  size_t start_offset = 0;  // end of what has been emitted
  size_t pos = 0;           // where the matcher resumes: the end of its previous match
  while (pos < s.size()) {
    size_t start = pos, stop = 0;
    int32_t id = -1;
    for (; start < s.size(); ++start) {
      if (trie.root[static_cast<uint8_t>(s[start])] < 0) continue;
      stop = trie.longest_at(s, start, &id);
      if (stop) break;
    }
    if (!stop) break;
    pos = stop;
    const AddedToken& t = by_id_.at(id).token;
    if (!match_special && t.special) continue;
    std::string_view sv(s);
    if (t.single_word) {
      bool start_space = start == 0 || !ends_with_word(sv.substr(0, start));
      bool stop_space = stop == s.size() || !starts_with_word(sv.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) start = std::max(space_leftmost_at_end(sv.substr(0, start)), start_offset);
    if (t.rstrip) stop += space_rightmost_at_start(sv.substr(stop));
    if (start_offset < start) emit(start_offset, start, -1);
    emit(start, stop, id);
    start_offset = stop;
  }
  if (start_offset < s.size()) emit(start_offset, s.size(), -1);
}

void AddedVocabulary::extract_and_normalize(std::string_view text, const Normalizer* normalizer,
                                            std::vector<Piece>& out, bool match_special) const {
  if (text.empty()) return;
  Piece whole;
  whole.text = std::string(text);
  whole.at_start = true;
  whole.zero_prefix = static_cast<uint32_t>(utf8_seq_len(static_cast<uint8_t>(text[0])));
  std::vector<Piece> first;
  split(whole, raw_trie_, match_special, first);
  for (Piece& p : first) {
    if (p.id >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    if (normalizer) normalizer->normalize(p);
    split(p, normalized_trie_, match_special, out);
  }
}

}  // namespace pcm
