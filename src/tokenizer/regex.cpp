#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cctype>
#include <memory>

#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm {

struct Regex::Impl {
  std::string pattern;          // as given
  std::string literal;          // non-empty: plain substring search, no PCRE2
  pcre2_code* code = nullptr;
  bool jit = false;
  uint32_t captures = 0;        // the pattern's capture groups (groups() returns captures + 1 pairs)
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

namespace {

// Per-thread match state shared by every Regex: match data (search(): one pair; groups(): its own), a match
// context with a JIT stack that can grow to 16 MiB (long whitespace runs backtrack deeply).
struct ThreadMatchState {
  pcre2_match_data* data = nullptr;  // one pair: search()'s whole match
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_data* group_data = nullptr;  // groups(): grown to the most capture groups a pattern has needed
  ThreadMatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
    if (context && stack) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadMatchState() {
    if (group_data) pcre2_match_data_free(group_data);
    if (stack) pcre2_jit_stack_free(stack);
    if (context) pcre2_match_context_free(context);
    if (data) pcre2_match_data_free(data);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

constexpr std::string_view kOnigWord = "\\p{L}\\p{M}\\p{N}\\p{Pc}";

}  // namespace

std::string onig_to_pcre2(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  int class_depth = 0;
  bool class_start = false;  // just after '[' or '[^': a ']' here is a literal
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[++i];
      bool in_class = class_depth > 0;
      class_start = false;
      switch (e) {
        case 's': out += "\\p{White_Space}"; break;
        case 'S': out += "\\P{White_Space}"; break;
        case 'w':
          if (in_class) out += kOnigWord;
          else out += "[" + std::string(kOnigWord) + "]";
          break;
        case 'W':
          if (in_class) out += "\\W";  // no PCRE2 spelling of a negated union inside a class
          else out += "[^" + std::string(kOnigWord) + "]";
          break;
        case 'h':
          out += in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
          break;
        case 'H':
          out += in_class ? "\\H" : "[^0-9a-fA-F]";
          break;
        case 'u': {
          size_t k = 0;
          while (k < 4 && i + 1 + k < p.size() && std::isxdigit(static_cast<unsigned char>(p[i + 1 + k]))) ++k;
          if (k == 4) {
            out += "\\x{" + std::string(p.substr(i + 1, 4)) + "}";
            i += 4;
          } else {
            out += "\\u";
          }
          break;
        }
        default:
          out += '\\';
          out += e;
      }
      continue;
    }
    if (class_depth > 0) {
      if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
        size_t close = p.find(":]", i + 2);
        if (close != std::string_view::npos) {
          out.append(p.substr(i, close + 2 - i));
          i = close + 1;
          class_start = false;
          continue;
        }
      }
      if (c == ']' && !class_start) --class_depth;
      else if (c == '[') ++class_depth;
      class_start = false;
      out += c;
      continue;
    }
    if (c == '[') {
      ++class_depth;
      out += c;
      class_start = true;
      if (i + 1 < p.size() && p[i + 1] == '^') {
        out += '^';
        ++i;
      }
      continue;
    }
    out += c;
  }
  return out;
}

Regex Regex::compile(std::string_view pattern, std::string_view shown, const std::string& where, bool utf) {
  auto impl = std::make_shared<Impl>();
  impl->pattern = std::string(shown);
  int error = 0;
  PCRE2_SIZE offset = 0;
  impl->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             utf ? PCRE2_UTF | PCRE2_UCP : 0, &error, &offset, nullptr);
  if (!impl->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(error, msg, sizeof msg);
    fail("{}: invalid regex \"{}\": {} at offset {}", where, shown, reinterpret_cast<char*>(msg), offset);
  }
  impl->jit = pcre2_jit_compile(impl->code, PCRE2_JIT_COMPLETE) == 0;
  pcre2_pattern_info(impl->code, PCRE2_INFO_CAPTURECOUNT, &impl->captures);
  Regex r;
  r.impl_ = std::move(impl);
  return r;
}

Regex Regex::pcre(std::string_view pattern, const std::string& where) { return compile(pattern, pattern, where, true); }

Regex Regex::bytes(std::string_view pattern, const std::string& where) {
  return compile(pattern, pattern, where, false);
}

Regex Regex::onig(std::string_view pattern, const std::string& where) {
  return compile(onig_to_pcre2(pattern), pattern, where, true);
}

Regex Regex::literal(std::string_view text) {
  // HF compiles a String pattern as an escaped regex, so "" is the empty regex: an empty match
  // everywhere (with Oniguruma's iteration), not "no match".
  if (text.empty()) return pcre("", "regex");
  auto impl = std::make_shared<Impl>();
  impl->pattern = std::string(text);
  impl->literal = std::string(text);
  Regex r;
  r.impl_ = std::move(impl);
  return r;
}

const std::string& Regex::pattern() const {
  static const std::string none;
  return impl_ ? impl_->pattern : none;
}

size_t Regex::next_char_len(std::string_view s, size_t i) { return utf8_seq_len(static_cast<uint8_t>(s[i])); }

// One match into `data`; false when there is none.
static bool match_into(const pcre2_code* code, bool jit, const std::string& pattern, std::string_view s, size_t start,
                       pcre2_match_data* data, pcre2_match_context* context) {
  auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  int rc = jit ? pcre2_jit_match(code, subject, s.size(), start, PCRE2_NO_UTF_CHECK, data, context)
               : pcre2_match(code, subject, s.size(), start, PCRE2_NO_UTF_CHECK, data, context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    fail("regex \"{}\": match failed: {}", pattern, reinterpret_cast<char*>(msg));
  }
  return true;
}

bool Regex::search(std::string_view s, size_t start, size_t* match_start, size_t* match_end) const {
  if (!impl_ || start > s.size()) return false;
  if (!impl_->code) {
    size_t at = s.find(impl_->literal, start);
    if (at == std::string_view::npos) return false;
    *match_start = at;
    *match_end = at + impl_->literal.size();
    return true;
  }
  ThreadMatchState& st = thread_state();
  PCM_CHECK(st.data && st.context, "regex: out of memory creating PCRE2 match data");
  if (!match_into(impl_->code, impl_->jit, impl_->pattern, s, start, st.data, st.context)) return false;
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
  *match_start = ov[0];
  *match_end = ov[1];
  return true;
}

std::vector<std::pair<size_t, size_t>> Regex::groups(std::string_view s, size_t start) const {
  std::vector<std::pair<size_t, size_t>> out;
  if (!impl_ || start > s.size()) return out;
  if (!impl_->code) {
    size_t a, b;
    if (search(s, start, &a, &b)) out.emplace_back(a, b);
    return out;
  }
  ThreadMatchState& st = thread_state();
  const uint32_t captures = impl_->captures;
  if (!st.group_data || pcre2_get_ovector_count(st.group_data) < captures + 1) {  // grown, not allocated per call
    if (st.group_data) pcre2_match_data_free(st.group_data);
    st.group_data = pcre2_match_data_create(captures + 1, nullptr);
  }
  PCM_CHECK(st.group_data && st.context, "regex: out of memory creating PCRE2 match data");
  if (!match_into(impl_->code, impl_->jit, impl_->pattern, s, start, st.group_data, st.context)) return out;
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.group_data);
  const uint32_t n = captures + 1;  // the data may hold more pairs, for another pattern
  for (uint32_t i = 0; i < n; ++i)
    out.emplace_back(ov[2 * i] == PCRE2_UNSET ? std::string_view::npos : ov[2 * i],
                     ov[2 * i + 1] == PCRE2_UNSET ? std::string_view::npos : ov[2 * i + 1]);
  return out;
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view s) const {
  std::vector<std::pair<size_t, size_t>> out;
  for_each_match(s, [&](size_t a, size_t b) { out.emplace_back(a, b); });
  return out;
}

}  // namespace pcm
