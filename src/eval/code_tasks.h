// Code benchmarks: the program text that tests a completion. HumanEval: the prompt (for completion-style
// generations) + the model's code + the problem's `test` + check(entry_point). Code is taken from the
// last fenced block after </think>, or the raw completion for completion-style prompts.
#pragma once
#include <string>

#include "util/json.h"

namespace pcm::eval {

// The last ``` fenced block (any language tag) after </think>; the text itself when there is none.
std::string extract_code(const std::string& completion);

// `completion_style`: the model continued the prompt (the function body follows the signature).
std::string humaneval_program(const json& row, const std::string& completion, bool completion_style);

}  // namespace pcm::eval
