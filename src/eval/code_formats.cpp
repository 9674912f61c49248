#include "eval/code_formats.h"

#include <fmt/ranges.h>

#include "eval/code_tasks.h"
#include "util/error.h"

namespace pcm::eval {

namespace {

// A Python string literal holding `s` exactly (JSON string syntax is valid Python for this purpose).
std::string py_literal(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

std::string humaneval_plus_program(const json& row, const std::string& completion, bool completion_style) {
  PCM_CHECK(row.contains("prompt") && row.contains("entry_point") && row.contains("canonical_solution"),
            "HumanEval+ row needs prompt, entry_point and canonical_solution");
  const std::string prompt = row.at("prompt"), entry = row.at("entry_point");
  const std::string candidate = completion_style ? prompt + completion : extract_code(completion);
  const std::string reference = prompt + row.at("canonical_solution").get<std::string>();
  const std::string inputs = row.contains("plus_input") ? row.at("plus_input").dump() : "[]";
  const double atol = row.contains("atol") && row.at("atol").is_number() ? row.at("atol").get<double>() : 0.0;
  std::string base_test = row.contains("test") && row.at("test").is_string() ? row.at("test").get<std::string>() : "";
  return "import copy, json, math\n"
         "_cand, _ref = {}, {}\n"
         "exec(compile(" + py_literal(candidate) + ", 'candidate.py', 'exec'), _cand)\n"
         "exec(compile(" + py_literal(reference) + ", 'reference.py', 'exec'), _ref)\n"
         "cand, ref = _cand[" + py_literal(entry) + "], _ref[" + py_literal(entry) + "]\n"
         "def same(a, b, atol):\n"
         "    if isinstance(a, float) or isinstance(b, float):\n"
         "        return math.isclose(a, b, rel_tol=1e-6, abs_tol=max(atol, 1e-9)) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else False\n"
         "    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):\n"
         "        return len(a) == len(b) and all(same(x, y, atol) for x, y in zip(a, b))\n"
         "    return a == b\n"
         "for args in json.loads(" + py_literal(inputs) + "):\n"
         "    got, want = cand(*copy.deepcopy(args)), ref(*copy.deepcopy(args))\n"
         "    assert same(got, want, " + std::to_string(atol) + "), f'input {args!r}: got {got!r}, expected {want!r}'\n" +
         (base_test.empty() ? std::string() : "exec(compile(" + py_literal(base_test) + ", 'test.py', 'exec'), _cand)\n_cand['check'](cand)\n");
}

std::string livecodebench_program(const json& row, const std::string& completion) {
  PCM_CHECK(row.contains("public_test_cases"), "LiveCodeBench row needs public_test_cases");
  auto text = [&](const char* key) { return row.contains(key) && row.at(key).is_string() ? row.at(key).get<std::string>() : std::string(); };
  std::string func_name;
  if (row.contains("metadata")) {
    json meta = row.at("metadata").is_string() ? parse_json(row.at("metadata").get<std::string>(), "metadata") : row.at("metadata");
    if (meta.is_object() && meta.contains("func_name") && meta.at("func_name").is_string()) func_name = meta.at("func_name");
  }
  const std::string code = extract_code(completion);
  return "import base64, json, pickle, subprocess, sys, zlib\n"
         "code = " + py_literal(code) + "\n"
         "func_name = " + py_literal(func_name) + "\n"
         "def load(s):\n"
         "    if not s: return []\n"
         "    try:\n"
         "        return json.loads(s)\n"
         "    except Exception:\n"
         "        return json.loads(pickle.loads(zlib.decompress(base64.b64decode(s.encode()))))\n"
         "tests = load(" + py_literal(text("public_test_cases")) + ") + load(" + py_literal(text("private_test_cases")) + ")\n"
         "def lines(s): return [l.strip() for l in s.strip().splitlines()]\n"
         "for i, t in enumerate(tests):\n"
         "    if t.get('testtype') == 'functional':\n"
         "        ns = {}\n"
         "        exec('from typing import *\\nimport math, collections, itertools, heapq, bisect\\n' + code, ns)\n"
         "        args = [json.loads(l) for l in t['input'].strip().splitlines()]\n"
         "        got = getattr(ns['Solution'](), func_name)(*args)\n"
         "        want = json.loads(t['output'])\n"
         "        assert got == want, f'test {i}: got {got!r}, expected {want!r}'\n"
         "    else:\n"
         "        r = subprocess.run([sys.executable, '-c', code], input=t['input'], capture_output=True, text=True, timeout=10)\n"
         "        assert r.returncode == 0, f'test {i}: exit {r.returncode}: {r.stderr[-300:]}'\n"
         "        assert lines(r.stdout) == lines(t['output']), f'test {i}: got {r.stdout[:200]!r}, expected {t[\"output\"][:200]!r}'\n";
}

std::string code_program(const json& row, const std::string& completion) {
  if (row.contains("public_test_cases")) return livecodebench_program(row, completion);
  if (row.contains("plus_input")) return humaneval_plus_program(row, completion, false);
  return humaneval_program(row, completion, false);
}

void check_code_row(const json& row) {
  const auto need = [&](std::initializer_list<const char*> keys, const char* kind) {
    for (const char* key : keys) {
      const auto it = row.find(key);
      if (it == row.end())
        throw JsonFieldError(fmt::format("{}: missing (a {} row needs {})", key, kind, fmt::join(keys, ", ")));
      if (!it->is_string()) throw JsonFieldError(fmt::format("{}: expected a string, got {}", key, it->dump()));
    }
  };
  if (row.contains("public_test_cases")) {
    need({"public_test_cases"}, "LiveCodeBench");
    json_string_or(row, "private_test_cases", "");
  } else if (row.contains("plus_input")) {
    need({"prompt", "entry_point", "canonical_solution"}, "HumanEval+");
    json_string_or(row, "test", "");
    json_double_or(row, "atol", 0.0);
  } else {
    need({"prompt", "test", "entry_point"}, "HumanEval");
  }
}

}  // namespace pcm::eval
