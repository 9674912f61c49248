// Fields that several tokenizer.json components share (Metaspace's replacement and prepend_scheme in the
// pre-tokenizer and the decoder, CharDelimiterSplit's delimiter, Strip's content): read one way, with errors
// naming the component's field.
#pragma once
#include <cstdint>
#include <string>

#include "util/json.h"

namespace pcm {

// spec[key] as one code point: absent or null gives `fallback`; anything but a string of exactly one valid UTF-8
// character is an error naming `where`.key.
uint32_t spec_char(const json& spec, const char* key, const std::string& where, uint32_t fallback);

enum class PrependScheme { Always, First, Never };
// Metaspace's spec["prepend_scheme"]: absent or null is Always; else "always", "first" or "never".
PrependScheme spec_prepend_scheme(const json& spec, const std::string& where);

}  // namespace pcm
