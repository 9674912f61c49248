#include "tokenizer/spec_fields.h"

#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm {

uint32_t spec_char(const json& spec, const char* key, const std::string& where, uint32_t fallback) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return fallback;
  PCM_CHECK(it->is_string(), "{}.{}: expected a one-character string", where, key);
  const auto& s = it->get_ref<const std::string&>();
  PCM_CHECK(!s.empty() && utf8_valid(s) && utf8_count(s) == 1, "{}.{}: expected exactly one character, got \"{}\"",
            where, key, s);
  size_t len;
  return utf8_decode(s, 0, &len);
}

PrependScheme spec_prepend_scheme(const json& spec, const std::string& where) {
  auto it = spec.find("prepend_scheme");
  if (it == spec.end() || it->is_null()) return PrependScheme::Always;
  PCM_CHECK(it->is_string(), "{}.prepend_scheme: expected a string (always, first or never), got {}", where,
            it->dump());
  const auto& s = it->get_ref<const std::string&>();
  if (s == "always") return PrependScheme::Always;
  if (s == "first") return PrependScheme::First;
  PCM_CHECK(s == "never", "{}.prepend_scheme: unknown value \"{}\" (expected always, first or never)", where, s);
  return PrependScheme::Never;
}

}  // namespace pcm
