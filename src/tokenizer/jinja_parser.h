// Recursive-descent parser for Jinja templates, following jinja2.parser's grammar and precedence.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/jinja_ast.h"

namespace pcm::jinja {

// Parses `source`. A syntax error, an unknown tag, filter or test, or a construct outside the
// supported subset throws pcm::Error "<origin>:<line>: <what>".
std::shared_ptr<const TemplateAst> parse_template(std::string_view source, const std::string& origin);

// How deeply expressions and blocks may nest (keeps the recursive parser and evaluator off the stack limit).
inline constexpr int kMaxNesting = 96;

}  // namespace pcm::jinja
