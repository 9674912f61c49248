// Jinja2 lexer with the settings transformers uses for chat templates: trim_blocks, lstrip_blocks,
// `-`/`+` whitespace control, {% raw %}, comments; newlines normalised to "\n" and one trailing
// newline dropped (keep_trailing_newline=False).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pcm::jinja {

enum class Tok : uint8_t {
  Data,        // template text
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,
  Int,
  Float,
  Op,  // operator text in `text`: + - * / // % ** ~ [ ] ( ) { } == != < <= > >= = . : | , ;
  Eof,
};

struct Token {
  Tok type = Tok::Eof;
  int line = 1;
  std::string text;  // Data text, name, decoded string literal, or operator
  int64_t ival = 0;
  double fval = 0.0;
};

// A syntax error at `line` (the parser adds the template name).
struct SyntaxError {
  int line;
  std::string message;
};

// Throws SyntaxError.
std::vector<Token> tokenize(std::string_view source);

std::string describe_token(const Token& t);

}  // namespace pcm::jinja
