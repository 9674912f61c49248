#include "util/json.h"

#include <cmath>
#include <limits>

#include "util/error.h"
#include "util/file.h"

namespace pcm {

namespace {

// Rewrites bare Infinity/-Infinity/NaN (outside strings) into quoted strings.
std::string quote_nonstandard_floats(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) out += text[++i];
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      continue;
    }
    auto starts = [&](std::string_view word) { return text.substr(i, word.size()) == word; };
    if (starts("-Infinity")) {
      out += "\"-Infinity\"";
      i += 8;
    } else if (starts("Infinity")) {
      out += "\"Infinity\"";
      i += 7;
    } else if (starts("NaN")) {
      out += "\"NaN\"";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<double> special_float(const std::string& s) {
  if (s == "Infinity" || s == "inf" || s == "+Infinity") return std::numeric_limits<double>::infinity();
  if (s == "-Infinity" || s == "-inf") return -std::numeric_limits<double>::infinity();
  if (s == "NaN" || s == "nan") return std::numeric_limits<double>::quiet_NaN();
  return std::nullopt;
}

}  // namespace

json parse_json(std::string_view text, const std::string& origin) {
  try {
    return json::parse(quote_nonstandard_floats(text));
  } catch (const json::parse_error& e) {
    fail("{}: malformed JSON: {}", origin, e.what());
  }
}

json read_json_file(const std::string& path) { return parse_json(read_text_file(path), path); }

double json_to_double(const json& value, const std::string& field) {
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) {
    if (auto v = special_float(value.get<std::string>())) return *v;
  }
  if (value.is_object() && value.contains("__float__") && value["__float__"].is_string()) {
    if (auto v = special_float(value["__float__"].get<std::string>())) return *v;
  }
  fail("{}: expected a number, got {}", field, value.dump());
}

double json_double_or(const json& obj, const std::string& key, double fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  try {
    return json_to_double(*it, key);
  } catch (const Error& e) {
    throw JsonFieldError(e.what());
  }
}

long long json_int_or(const json& obj, const std::string& key, long long fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (it->is_number_integer()) return it->get<long long>();
  if (it->is_number_float()) {
    double v = it->get<double>();  // 1e3 in TOML or JSON; past +-2^63 the cast would give garbage
    if (v == std::floor(v) && v >= -0x1p63 && v < 0x1p63) return static_cast<long long>(v);
  }
  throw JsonFieldError(fmt::format("{}: expected an integer, got {}", key, it->dump()));
}

bool json_bool_or(const json& obj, const std::string& key, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  throw JsonFieldError(fmt::format("{}: expected true or false, got {}", key, it->dump()));
}

std::string json_string_or(const json& obj, const std::string& key, const std::string& fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  throw JsonFieldError(fmt::format("{}: expected a string, got {}", key, it->dump()));
}

}  // namespace pcm
