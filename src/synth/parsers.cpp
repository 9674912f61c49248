#include "synth/parsers.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace pcm::synth {

namespace {

std::string lower(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Trims whitespace and markdown emphasis / quotes that models wrap items in.
std::string clean_item(const std::string& s) {
  std::string t = collapse_whitespace(s);
  auto strip = [&](const std::string& chars) {
    bool changed = true;
    while (changed && !t.empty()) {
      changed = false;
      if (chars.find(t.front()) != std::string::npos) { t.erase(t.begin()); changed = true; }
      if (!t.empty() && chars.find(t.back()) != std::string::npos) { t.pop_back(); changed = true; }
    }
    t = collapse_whitespace(t);
  };
  strip("*`\"");
  return t;
}

std::vector<std::string> dedupe_nonempty(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& raw : items) {
    std::string item = clean_item(raw);
    if (!item.empty() && seen.insert(item).second) out.push_back(item);
  }
  return out;
}

// Skips whitespace and Python comments.
size_t skip_ws(const std::string& s, size_t i) {
  while (i < s.size()) {
    if (is_space(s[i])) {
      ++i;
    } else if (s[i] == '#') {
      while (i < s.size() && s[i] != '\n') ++i;
    } else {
      break;
    }
  }
  return i;
}

// A Python string literal at s[i] (quote char, or triple quotes); unknown escapes stay literal, since
// models write LaTeX with single backslashes. Returns npos on failure, else the index after it.
size_t parse_string_literal(const std::string& s, size_t i, std::string* out) {
  if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) return std::string::npos;
  char q = s[i];
  bool triple = s.compare(i, 3, std::string(3, q)) == 0;
  size_t j = i + (triple ? 3 : 1);
  out->clear();
  while (j < s.size()) {
    char c = s[j];
    if (c == '\\' && j + 1 < s.size()) {
      char n = s[j + 1];
      if (n == '\\' || n == '\'' || n == '"') out->push_back(n);
      else if (n == 'n' || n == 't') out->push_back(' ');
      else { out->push_back('\\'); out->push_back(n); }
      j += 2;
      continue;
    }
    if (triple) {
      if (s.compare(j, 3, std::string(3, q)) == 0) return j + 3;
    } else {
      if (c == q) return j + 1;
      if (c == '\n') return std::string::npos;  // an unterminated single-line literal
    }
    out->push_back(c);
    ++j;
  }
  return std::string::npos;
}

// A list of string literals starting at s[i] == '['; npos on failure.
size_t parse_list_at(const std::string& s, size_t i, std::vector<std::string>* items) {
  items->clear();
  size_t j = skip_ws(s, i + 1);
  if (j < s.size() && s[j] == ']') return j + 1;
  while (j < s.size()) {
    std::string item;
    size_t k = parse_string_literal(s, j, &item);
    if (k == std::string::npos) return std::string::npos;
    items->push_back(item);
    j = skip_ws(s, k);
    if (j >= s.size()) return std::string::npos;
    if (s[j] == ']') return j + 1;
    if (s[j] != ',') return std::string::npos;
    j = skip_ws(s, j + 1);
    if (j < s.size() && s[j] == ']') return j + 1;  // trailing comma
  }
  return std::string::npos;
}

// A list written one quoted item per line whose quotes break Python's rules, e.g. 'Vieta's formulas':
// every non-empty line between the last "[" line and the following "]" must open and close with the
// same quote character.
std::optional<std::vector<std::string>> lenient_line_list(const std::string& text) {
  size_t close = text.rfind(']');
  if (close == std::string::npos) return std::nullopt;
  size_t open = text.rfind('[', close);
  if (open == std::string::npos) return std::nullopt;
  std::string block = text.substr(open + 1, close - open - 1);
  if (block.find('\n') == std::string::npos) return std::nullopt;
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= block.size()) {
    size_t end = block.find('\n', start);
    if (end == std::string::npos) end = block.size();
    std::string line = block.substr(start, end - start);
    start = end + 1;
    size_t a = line.find_first_not_of(" \t\r"), b = line.find_last_not_of(" \t\r,");
    if (a == std::string::npos || b == std::string::npos || b < a) continue;
    line = line.substr(a, b - a + 1);
    if (line.size() < 2 || (line.front() != '\'' && line.front() != '"') || line.back() != line.front())
      return std::nullopt;
    items.push_back(line.substr(1, line.size() - 2));
  }
  std::vector<std::string> cleaned = dedupe_nonempty(items);
  if (cleaned.empty()) return std::nullopt;
  return cleaned;
}

}  // namespace

std::string collapse_whitespace(const std::string& s) {
  std::string out;
  bool pending_space = false;
  for (char c : s) {
    if (is_space(c)) {
      pending_space = !out.empty();
    } else {
      if (pending_space) out.push_back(' ');
      pending_space = false;
      out.push_back(c);
    }
  }
  return out;
}

Parsed<std::vector<std::string>> parse_python_string_list(const std::string& text) {
  // The answer is at the end; reasoning before it may hold other brackets, so the last list wins.
  std::optional<std::vector<std::string>> best;
  for (size_t i = text.find('['); i != std::string::npos; i = text.find('[', i + 1)) {
    std::vector<std::string> items;
    size_t end = parse_list_at(text, i, &items);
    if (end == std::string::npos) continue;
    std::vector<std::string> cleaned = dedupe_nonempty(items);
    if (!cleaned.empty()) best = cleaned;
  }
  if (!best) best = lenient_line_list(text);
  if (!best) return {std::nullopt, "no_python_list"};
  return {best, ""};
}

Parsed<std::vector<std::string>> parse_knowledge_points(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    std::string low = lower(line);
    size_t key = low.rfind("knowledge point");
    if (key != std::string::npos) {
      size_t j = key + std::string("knowledge point").size();
      while (j < line.size() && (line[j] == 's' || line[j] == '*' || line[j] == ' ' ||
                                 std::isdigit(static_cast<unsigned char>(line[j]))))
        ++j;
      if (j < line.size() && line[j] == ':') items.push_back(line.substr(j + 1));
    }
    start = end + 1;
  }
  std::vector<std::string> cleaned = dedupe_nonempty(items);
  if (cleaned.empty()) return {std::nullopt, "no_knowledge_points"};
  return {cleaned, ""};
}

Parsed<std::vector<std::string>> parse_concept_list(const std::string& text) {
  auto list = parse_python_string_list(text);
  if (list.ok()) return list;
  auto points = parse_knowledge_points(text);
  if (points.ok()) return points;
  return {std::nullopt, "no_concepts_found"};
}

// ---- rationale / problem ---------------------------------------------------------------------------

namespace {

struct Tag {
  size_t begin, end;  // the comment's extent
  std::string name;   // "BEGIN RATIONALE", ... upper-case, single-spaced
};

std::vector<Tag> find_comment_tags(const std::string& text) {
  std::vector<Tag> tags;
  for (size_t i = text.find("<!--"); i != std::string::npos; i = text.find("<!--", i + 4)) {
    size_t close = text.find("-->", i + 4);
    if (close == std::string::npos) break;
    std::string inner = collapse_whitespace(text.substr(i + 4, close - i - 4));
    for (char& c : inner) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    tags.push_back({i, close + 3, inner});
  }
  return tags;
}

// Finds the single BEGIN/END pair for `what`; on failure returns a reason.
std::string find_block(const std::vector<Tag>& tags, const std::string& what, const std::string& plural,
                       size_t* content_begin, size_t* content_end, size_t* block_begin) {
  std::vector<const Tag*> begins, ends;
  for (const auto& t : tags) {
    if (t.name == "BEGIN " + what) begins.push_back(&t);
    if (t.name == "END " + what) ends.push_back(&t);
  }
  std::string w = lower(what);
  if (begins.empty() && ends.empty()) return "missing_" + w;
  if (begins.size() > 1 || ends.size() > 1) return "multiple_" + plural;
  if (begins.empty()) return "missing_begin_" + w;
  if (ends.empty()) return "unclosed_" + w;
  if (ends[0]->begin < begins[0]->end) return "misordered_" + w + "_tags";
  *content_begin = begins[0]->end;
  *content_end = ends[0]->begin;
  *block_begin = begins[0]->begin;
  return "";
}

}  // namespace

Parsed<RationaleProblem> parse_rationale_problem(const std::string& text) {
  std::vector<Tag> tags = find_comment_tags(text);
  size_t rb = 0, re = 0, rblock = 0, pb = 0, pe = 0, pblock = 0;
  std::string reason = find_block(tags, "RATIONALE", "rationales", &rb, &re, &rblock);
  if (!reason.empty()) return {std::nullopt, reason};
  reason = find_block(tags, "PROBLEM", "problems", &pb, &pe, &pblock);
  if (!reason.empty()) return {std::nullopt, reason};
  if (pblock < re) return {std::nullopt, pblock < rblock ? "problem_before_rationale" : "overlapping_tags"};
  RationaleProblem out;
  out.rationale = text.substr(rb, re - rb);
  out.problem = text.substr(pb, pe - pb);
  auto trim = [](std::string& s) {
    size_t a = s.find_first_not_of(" \t\r\n");
    size_t b = s.find_last_not_of(" \t\r\n");
    s = a == std::string::npos ? "" : s.substr(a, b - a + 1);
  };
  trim(out.rationale);
  trim(out.problem);
  if (out.rationale.empty()) return {std::nullopt, "empty_rationale"};
  if (out.problem.empty()) return {std::nullopt, "empty_problem"};
  return {out, ""};
}

// ---- judgement -------------------------------------------------------------------------------------

const char* rating_name(Rating r) {
  switch (r) {
    case Rating::Perfect: return "perfect";
    case Rating::Acceptable: return "acceptable";
    case Rating::Bad: return "bad";
  }
  return "bad";
}

namespace {

bool word_at(const std::string& low, size_t pos, size_t len) {
  bool left = pos == 0 || !std::isalpha(static_cast<unsigned char>(low[pos - 1]));
  bool right = pos + len >= low.size() || !std::isalpha(static_cast<unsigned char>(low[pos + len]));
  return left && right;
}

// The earliest rating word in low[from, to).
std::optional<Rating> first_rating(const std::string& low, size_t from, size_t to) {
  static const std::pair<const char*, Rating> words[] = {
      {"perfect", Rating::Perfect}, {"acceptable", Rating::Acceptable}, {"bad", Rating::Bad}};
  size_t best = std::string::npos;
  std::optional<Rating> rating;
  for (const auto& [w, r] : words) {
    size_t len = std::string(w).size();
    for (size_t p = low.find(w, from); p != std::string::npos && p + len <= to; p = low.find(w, p + 1)) {
      if (word_at(low, p, len)) {
        if (p < best) { best = p; rating = r; }
        break;
      }
    }
  }
  return rating;
}

}  // namespace

Parsed<Judgement> parse_judgement(const std::string& text) {
  std::string low = lower(text);
  size_t key = std::string::npos, key_len = 0;
  for (const char* k : {"final judgement", "final judgment", "final verdict"}) {
    size_t p = low.rfind(k);
    if (p != std::string::npos && (key == std::string::npos || p > key)) { key = p; key_len = std::string(k).size(); }
  }
  if (key == std::string::npos) return {std::nullopt, "missing_final_judgement"};
  Judgement j;
  size_t after = key + key_len;
  auto verdict = first_rating(low, after, std::min(low.size(), after + 120));
  if (!verdict) return {std::nullopt, "unrecognised_final_judgement"};
  j.final_verdict = *verdict;

  // Criteria in order; each section runs to the next criterion (or the final judgement).
  std::vector<size_t> starts(kJudgeCriteria.size(), std::string::npos);
  size_t from = 0;
  for (size_t c = 0; c < kJudgeCriteria.size(); ++c) {
    size_t p = low.find(kJudgeCriteria[c], from);
    if (p != std::string::npos && p < key) { starts[c] = p; from = p + 1; }
  }
  for (size_t c = 0; c < kJudgeCriteria.size(); ++c) {
    if (starts[c] == std::string::npos) continue;
    size_t end = key;
    for (size_t d = c + 1; d < kJudgeCriteria.size(); ++d)
      if (starts[d] != std::string::npos) { end = starts[d]; break; }
    size_t section = starts[c] + std::string(kJudgeCriteria[c]).size();
    size_t rating_key = low.find("rating", section);
    size_t search_from = rating_key != std::string::npos && rating_key < end ? rating_key : section;
    j.criteria[c] = first_rating(low, search_from, end);
  }
  return {j, ""};
}

// ---- solutions -------------------------------------------------------------------------------------

std::optional<std::string> last_boxed(const std::string& text) {
  size_t pos = std::string::npos, len = 0;
  for (const char* k : {"\\boxed", "\\fbox"}) {
    size_t p = text.rfind(k);
    if (p != std::string::npos && (pos == std::string::npos || p > pos)) { pos = p; len = std::string(k).size(); }
  }
  if (pos == std::string::npos) return std::nullopt;
  size_t i = pos + len;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i < text.size() && text[i] == '{') {
    int depth = 0;
    for (size_t j = i; j < text.size(); ++j) {
      if (text[j] == '{') ++depth;
      else if (text[j] == '}' && --depth == 0) return collapse_whitespace(text.substr(i + 1, j - i - 1));
    }
    return std::nullopt;  // unclosed
  }
  // "\boxed 5": the next token.
  size_t j = i;
  while (j < text.size() && !is_space(text[j]) && text[j] != '$') ++j;
  if (j == i) return std::nullopt;
  return text.substr(i, j - i);
}

Parsed<Solution> parse_solution(const std::string& text) {
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
    return n;
  };
  size_t opens = count("<think>"), closes = count("</think>");
  if (opens > 1 || closes > 1) return {std::nullopt, "multiple_think_blocks"};
  if (closes == 0) return {std::nullopt, opens == 1 ? "unclosed_think" : "missing_think"};
  size_t close = text.find("</think>");
  size_t body = 0;
  if (opens == 1) {
    size_t open = text.find("<think>");
    if (open > close) return {std::nullopt, "misordered_think"};
    if (text.find_first_not_of(" \t\r\n") < open) return {std::nullopt, "text_before_think"};
    body = open + 7;
  }
  Solution s;
  s.reasoning = text.substr(body, close - body);
  s.answer = text.substr(close + 8);
  if (s.answer.find_first_not_of(" \t\r\n") == std::string::npos) return {std::nullopt, "empty_answer"};
  auto boxed = last_boxed(s.answer);
  if (!boxed || boxed->empty()) {
    bool has = s.answer.find("\\boxed") != std::string::npos || s.answer.find("\\fbox") != std::string::npos;
    return {std::nullopt, has ? "unclosed_boxed" : "no_boxed_answer"};
  }
  s.boxed = *boxed;
  return {s, ""};
}

}  // namespace pcm::synth
