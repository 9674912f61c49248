#include "eval/benchmark.h"

#include <algorithm>
#include <filesystem>

#include <fmt/ranges.h>

#include "eval/answer_extract.h"
#include "eval/code_formats.h"
#include "io/jsonl.h"
#include "util/error.h"

namespace pcm::eval {

namespace {

std::string as_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return v.dump();
  return "";
}

std::string first_field(const json& row, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (row.contains(n) && !row.at(n).is_null()) return as_text(row.at(n));
  return "";
}

}  // namespace

std::vector<std::string> shipped_benchmarks() {
  return {"math500", "aime24", "aime25", "amc23", "gsm8k", "olympiadbench", "minerva", "humaneval"};
}

const BenchmarkRow* Benchmark::find(const std::string& id) const {
  for (const auto& r : rows)
    if (r.id == id) return &r;
  return nullptr;
}

Benchmark load_benchmark(const std::string& name_or_path, const std::string& data_dir, const std::string& format) {
  Benchmark b;
  std::string path;
  const auto shipped = shipped_benchmarks();
  if (std::find(shipped.begin(), shipped.end(), name_or_path) != shipped.end()) {
    b.name = name_or_path;
    path = data_dir + "/" + (name_or_path == "minerva" ? std::string("minerva_math") : name_or_path) + ".jsonl";
    b.format = name_or_path == "humaneval" ? "code" : "math";
    PCM_CHECK(std::filesystem::exists(path), "benchmark '{}': {} not found (see --data-dir)", name_or_path, path);
  } else {
    PCM_CHECK(std::filesystem::exists(name_or_path), "--bench: '{}' is neither a shipped benchmark ({}) nor a file",
              name_or_path, fmt::join(shipped, ", "));
    PCM_CHECK(format == "math" || format == "code", "--bench {}: a file needs --format math or --format code", name_or_path);
    path = name_or_path;
    b.name = std::filesystem::path(path).stem().string();
    b.format = format;
  }
  b.numeric_fallbacks = b.name == "gsm8k";
  for_each_jsonl(path, [&](const json& row, int64_t line) {
    PCM_CHECK(row.is_object(), "{}:{}: expected a JSON object", path, line);
    BenchmarkRow r;
    r.raw = row;
    r.id = first_field(row, {"unique_id", "id", "task_id", "question_id", "idx"});
    if (r.id.empty()) r.id = std::to_string(b.rows.size());
    r.problem = first_field(row, {"problem", "question", "prompt", "question_content"});
    if (b.format == "code" && row.contains("starter_code") && row.at("starter_code").is_string() &&
        !row.at("starter_code").get<std::string>().empty())  // LiveCodeBench functional problems
      r.problem += "\n\nStart from:\n```python\n" + row.at("starter_code").get<std::string>() + "\n```";
    PCM_CHECK(!r.problem.empty(), "{}:{}: no problem/question/prompt field", path, line);
    if (b.format == "code") naming_json_errors(fmt::format("{}:{}", path, line), [&] { check_code_row(row); });
    if (b.format == "math") {
      if (b.name == "gsm8k") {
        std::string a = first_field(row, {"answer"});
        size_t h = a.rfind("####");
        r.gold = h == std::string::npos ? a : a.substr(h + 4);
      } else if (b.name == "olympiadbench") {
        PCM_CHECK(row.contains("final_answer") && row.at("final_answer").is_array() && !row.at("final_answer").empty(),
                  "{}:{}: final_answer must be a non-empty list", path, line);
        for (const auto& a : row.at("final_answer")) r.gold += (r.gold.empty() ? "" : ",") + as_text(a);
        if (row.contains("unit") && row.at("unit").is_string()) r.grade.units = {row.at("unit").get<std::string>()};
        if (row.contains("error") && row.at("error").is_string()) {
          try {
            r.grade.numeric_tolerance = std::stod(row.at("error").get<std::string>());
          } catch (const std::exception&) {
            fail("{}:{}: error '{}' is not a number", path, line, row.at("error").get<std::string>());
          }
        }
      } else {
        r.gold = first_field(row, {"answer", "final_answer"});
        if (r.gold.empty() && row.contains("solution") && row.at("solution").is_string())
          if (auto boxed = last_boxed(row.at("solution").get<std::string>())) r.gold = *boxed;
      }
      const size_t a = r.gold.find_first_not_of(" \t\n"), z = r.gold.find_last_not_of(" \t\n");
      r.gold = a == std::string::npos ? "" : r.gold.substr(a, z - a + 1);
      PCM_CHECK(!r.gold.empty(), "{}:{}: no gold answer (answer, final_answer, or a \\boxed{{}} solution)", path, line);
    }
    if (row.contains("subject") && row.at("subject").is_string()) r.subject = row.at("subject");
    if (row.contains("level") && row.at("level").is_number_integer()) r.level = row.at("level");
    b.rows.push_back(std::move(r));
  });
  PCM_CHECK(!b.rows.empty(), "{}: no rows", path);
  return b;
}

}  // namespace pcm::eval
