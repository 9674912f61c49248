// Python `str` semantics over UTF-8 strings, for the Jinja interpreter: code-point indexing,
// Unicode whitespace (str.strip/split), case mapping, repr() and float repr().
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pcm::jinja {

// UTF-8 <-> code points. Decoding is lenient: an invalid byte becomes U+FFFD.
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);
void utf8_append(std::string& out, char32_t cp);
bool utf8_valid(std::string_view s);
size_t utf8_length(std::string_view s);  // len() of a Python str

// str.isspace() for one code point (Unicode whitespace, as Python defines it).
bool py_isspace(char32_t c);

// str.strip/lstrip/rstrip; `chars` = nullptr strips whitespace.
std::string py_strip(std::string_view s, bool left, bool right, const std::string* chars = nullptr);
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_capitalize(std::string_view s);  // str.capitalize()
std::string py_title(std::string_view s);       // str.title()
std::string py_swapcase(std::string_view s);
bool py_is_cased_lower(std::string_view s);  // str.islower()
bool py_is_cased_upper(std::string_view s);  // str.isupper()
bool py_isalpha(char32_t c);
bool py_isdigit(char32_t c);
bool py_isalnum(char32_t c);
bool py_isword(char32_t c);  // regex \w

// str.split(sep, maxsplit) / rsplit; sep = nullopt splits on runs of whitespace.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends = false);
// str.replace(old, new, count); count < 0 replaces all.
std::string py_replace(std::string_view s, std::string_view old_s, std::string_view new_s, int64_t count);
// str.find / rfind as code-point index, -1 when absent.
int64_t py_find(std::string_view s, std::string_view sub, bool reverse);
int64_t py_count(std::string_view s, std::string_view sub);

// repr() of a str: quoted, escaped the way Python prints it.
std::string py_repr_string(std::string_view s);
// repr() of a float: shortest round-trip digits, Python's fixed/exponent switch.
std::string py_float_repr(double v);

}  // namespace pcm::jinja
