// Code benchmarks: the program text that tests a completion. HumanEval: the prompt (for completion-style
// generations) + the model's code + the problem's `test` + check(entry_point). Code is taken from the
// last fenced block after </think>, or the raw completion for completion-style prompts.
#pragma once
#include <initializer_list>
#include <string>
#include <vector>

#include "util/json.h"

namespace pcm::eval {

// The last ``` fenced block (any language tag) after </think>; the text itself when there is none.
std::string extract_code(const std::string& completion);

// row[key] for each of `keys`, as strings, in order: JsonFieldError "key: missing (a <kind> row needs a, b, c)" or
// "key: expected a string, got X" otherwise. The program builders read their fields through it, so checking a row
// (check_code_row) is building its program.
std::vector<std::string> required_strings(const json& row, const char* kind, std::initializer_list<const char*> keys);

// `completion_style`: the model continued the prompt (the function body follows the signature).
std::string humaneval_program(const json& row, const std::string& completion, bool completion_style);

}  // namespace pcm::eval
