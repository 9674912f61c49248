// The published formats of the other code benchmarks, turned into one self-checking Python program per
// sample (run in the sandbox; exit 0 = pass):
// - HumanEval+ (evalplus): the base `test` plus every `plus_input`, the candidate's output compared with
//   the canonical solution's (floats within `atol`).
// - LiveCodeBench `code_generation_lite`: stdin/stdout tests (whitespace-normalised lines) and LeetCode-style
//   functional tests (`class Solution` method named by metadata.func_name, one JSON argument per input
//   line); private tests arrive base64 + zlib (+ pickle) and are decoded inside the sandbox.
#pragma once
#include <string>

#include "util/json.h"

namespace pcm::eval {

std::string humaneval_plus_program(const json& row, const std::string& completion, bool completion_style);
std::string livecodebench_program(const json& row, const std::string& completion);

// The program for any code row: LiveCodeBench (public_test_cases), HumanEval+ (plus_input) or HumanEval,
// for an instruction-style completion (code in a fenced block).
std::string code_program(const json& row, const std::string& completion);

// Throws JsonFieldError naming the field when `row` lacks a field code_program reads for its kind, or holds one of
// another type: load_benchmark calls it so a bad row is reported as file:line before any generation. It builds the
// row's program once (the builders read their fields through required_strings / json_*_or).
void check_code_row(const json& row);

}  // namespace pcm::eval
