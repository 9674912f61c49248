// Normalisation of LaTeX answers before comparison (the rules every math harness applies, each
// tested): delimiters and spacing macros, \dfrac/\tfrac, \text{}/\mathrm{}, degrees, percent, dollar
// signs, trailing punctuation, "x =" prefixes, thousands separators, named units.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace pcm::eval {

// `units`: extra unit words to strip (OlympiadBench's `unit` field), e.g. {"cm", "m/s"}.
std::string normalize_answer(std::string_view answer, const std::vector<std::string>& units = {});

// The text inside \text{…}, \mathrm{…}, \textbf{…}, \mbox{…} kept, the macro dropped.
std::string strip_text_macros(std::string_view s);

}  // namespace pcm::eval
