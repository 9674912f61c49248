#include "util/toml.h"

#include <algorithm>
#include <cctype>

#include "util/error.h"

namespace pcm {
namespace {

// Index of the last character of the string opening at text[i] (basic, literal or multi-line),
// counting the newlines it holds; text.size() when it never closes (toml++ reports that).
size_t skip_string(std::string_view text, size_t i, int& line) {
  const char q = text[i];
  const bool multi = text.compare(i, 3, std::string(3, q)) == 0;
  const std::string_view close = multi ? std::string_view(q == '"' ? "\"\"\"" : "'''") : std::string_view(&text[i], 1);
  for (size_t k = i + (multi ? 3 : 1); k < text.size(); ++k) {
    if (text[k] == '\n') {
      if (!multi) return k - 1;  // unterminated: let the newline end the line as usual
      ++line;
    } else if (text[k] == '\\' && q == '"') {
      if (k + 1 < text.size() && text[k + 1] == '\n') ++line;
      ++k;
    } else if (text.compare(k, close.size(), close) == 0) {
      return k + close.size() - 1;
    }
  }
  return text.size();
}

// Counts the dotted parts of keys (`[a.b.c]`, `a."b".c = 1`) with a scanner that only skips strings and
// comments: a dot between bare or quoted key parts continues a chain, anything else ends it (a float's
// one dot counts as two parts, well under the limit).
void check_key_parts(std::string_view text, const std::string& path) {
  int line = 1, parts = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      parts = 1;
    } else if (c == '#') {
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
    } else if (c == '"' || c == '\'') {
      i = skip_string(text, i, line);
    } else if (c == '.') {
      if (++parts > kMaxTomlDepth)
        fail("{}:{}: a key or table header of more than {} dotted parts (TOML may nest at most {} levels)", path,
             line, kMaxTomlDepth, kMaxTomlDepth);
    } else if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == ' ' || c == '\t')) {
      parts = 1;
    }
  }
}

// Depth of tables and arrays below `n`, looking no further than `limit` levels.
int depth_below(const toml::node& n, int limit) {
  if (limit <= 0) return 0;
  int deepest = 0;
  if (const toml::table* t = n.as_table()) {
    for (const auto& [key, child] : *t) deepest = std::max(deepest, 1 + depth_below(child, limit - 1));
  } else if (const toml::array* a = n.as_array()) {
    for (const toml::node& child : *a) deepest = std::max(deepest, 1 + depth_below(child, limit - 1));
  }
  return deepest;
}

}  // namespace

toml::table parse_toml(std::string_view text, const std::string& path) {
  check_key_parts(text, path);
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    fail("{}:{}:{}: TOML error: {}", path, e.source().begin.line, e.source().begin.column, e.description());
  }
  if (depth_below(table, kMaxTomlDepth + 1) > kMaxTomlDepth)
    fail("{}: tables and arrays nest more than {} levels deep", path, kMaxTomlDepth);
  return table;
}

}  // namespace pcm
