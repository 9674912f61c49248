// JSON as real model files write it: nlohmann::json plus the non-standard floats
// (bare Infinity / -Infinity / NaN, and {"__float__": "Infinity"}) that transformers emits.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace pcm {

using json = nlohmann::json;

// Parses `text`; `origin` (a file name) is named in the error. Bare Infinity/NaN tokens outside strings
// become the strings "Infinity"/"-Infinity"/"NaN", which json_to_double() understands.
json parse_json(std::string_view text, const std::string& origin);
json read_json_file(const std::string& path);

// A number, or one of the non-standard spellings above. Throws naming `field` otherwise.
double json_to_double(const json& value, const std::string& field);

// obj[key] as a number/int/bool/string, or `fallback` when the key is absent or null.
double json_double_or(const json& obj, const std::string& key, double fallback);
long long json_int_or(const json& obj, const std::string& key, long long fallback);
bool json_bool_or(const json& obj, const std::string& key, bool fallback);
std::string json_string_or(const json& obj, const std::string& key, const std::string& fallback);

}  // namespace pcm
