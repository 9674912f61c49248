// JSON as real model files write it: nlohmann::json plus the non-standard floats
// (bare Infinity / -Infinity / NaN, and {"__float__": "Infinity"}) that transformers emits.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "util/error.h"

namespace pcm {

using json = nlohmann::json;

// Parses `text`; `origin` (a file name) is named in the error. Bare Infinity/NaN tokens outside strings
// become the strings "Infinity"/"-Infinity"/"NaN", which json_to_double() understands.
json parse_json(std::string_view text, const std::string& origin);
json read_json_file(const std::string& path);

// A number, or one of the non-standard spellings above. Throws naming `field` otherwise.
double json_to_double(const json& value, const std::string& field);

// What the *_or readers below throw for a value of another type: its message names the key but not the file,
// which naming_json_errors adds.
class JsonFieldError : public Error {
 public:
  using Error::Error;
};

// obj[key] as a number/int/bool/string, or `fallback` when the key is absent or null; JsonFieldError otherwise.
double json_double_or(const json& obj, const std::string& key, double fallback);
long long json_int_or(const json& obj, const std::string& key, long long fallback);
bool json_bool_or(const json& obj, const std::string& key, bool fallback);
std::string json_string_or(const json& obj, const std::string& key, const std::string& fallback);

// Runs fn(); a JSON type error inside it (a value of another type than the code reads, a key read with at() that is
// not there: shapes the field checks did not anticipate) or a JsonFieldError becomes a pcm::Error "<where>: <its
// message>". `where` is a string, or a callable giving one (built only on the error: per-row callers stay cheap).
template <class Where, class Fn>
decltype(auto) naming_json_errors(Where&& where, Fn&& fn) {
  const auto where_text = [&]() -> std::string {
    if constexpr (std::is_invocable_v<Where>)
      return where();
    else
      return where;
  };
  try {
    return fn();
  } catch (const json::exception& e) {
    fail("{}: {}", where_text(), e.what());
  } catch (const JsonFieldError& e) {
    fail("{}: {}", where_text(), e.what());
  }
}

}  // namespace pcm
