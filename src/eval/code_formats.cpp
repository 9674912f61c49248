#include "eval/code_formats.h"

#include "eval/code_tasks.h"
#include "util/error.h"

namespace pcm::eval {

namespace {

// A Python string literal holding `s` exactly (JSON string syntax is valid Python for this purpose).
std::string py_literal(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

std::string humaneval_plus_program(const json& row, const std::string& completion, bool completion_style) {
  const auto f = required_strings(row, "HumanEval+", {"prompt", "entry_point", "canonical_solution"});
  const std::string &prompt = f[0], &entry = f[1];
  const std::string candidate = completion_style ? prompt + completion : extract_code(completion);
  const std::string reference = prompt + f[2];
  const std::string inputs = row.contains("plus_input") ? row.at("plus_input").dump() : "[]";
  const double atol = json_double_or(row, "atol", 0.0);
  const std::string base_test = json_string_or(row, "test", "");
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
  const std::string public_tests = required_strings(row, "LiveCodeBench", {"public_test_cases"})[0];
  const std::string private_tests = json_string_or(row, "private_test_cases", "");
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
         "tests = load(" + py_literal(public_tests) + ") + load(" + py_literal(private_tests) + ")\n"
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

void check_code_row(const json& row) { (void)code_program(row, ""); }

}  // namespace pcm::eval
