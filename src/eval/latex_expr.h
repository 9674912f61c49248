// A LaTeX-to-expression parser over GiNaC for answer checking: numbers (exact rationals from decimals),
// + - · × ÷ / ^, implicit multiplication, \frac, \sqrt[n]{}, \pi, e, i, \infty is refused, functions
// (\sin \cos \tan \ln \log \exp), braces and parentheses, letters as shared symbols, mixed numbers
// (3\frac{1}{2}). Anything else throws ParseError so the caller falls back to string comparison.
// GiNaC is not thread-safe: call from one thread.
#pragma once
#include <ginac/ginac.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace pcm::eval {

struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Limits keep every comparison inside its time budget: expressions longer than this, nested deeper,
// or with larger integer exponents are refused (ParseError), never evaluated.
constexpr size_t kMaxExprChars = 400;
constexpr int kMaxDepth = 40;
constexpr long kMaxExponent = 64;

GiNaC::ex parse_latex_expr(std::string_view latex);

// The symbol named `name`, the same object on every call (so two parsed answers share variables).
const GiNaC::symbol& shared_symbol(const std::string& name);

}  // namespace pcm::eval
