// TOML files (training and synth configs) through toml++, guarded against nesting no config needs.
#pragma once
#include <string>
#include <string_view>
#include <toml++/toml.h>

namespace pcm {

// Tables, arrays and dotted key parts a config may nest (real ones use 3 or 4).
inline constexpr int kMaxTomlDepth = 64;

// Parses `text`; errors are pcm::Error "<path>:<line>:<column>: TOML error: ...". Keys of more than
// kMaxTomlDepth dotted parts are refused before toml++ sees them (it recurses once per part: a table
// header of 100000 parts overflowed the stack, 30000 took minutes), deeper nesting after parsing.
toml::table parse_toml(std::string_view text, const std::string& path);

}  // namespace pcm
