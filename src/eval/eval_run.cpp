#include "eval/eval_run.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include <fmt/format.h>

#include "eval/answer_extract.h"
#include "eval/benchmark.h"
#include "eval/code_formats.h"
#include "eval/code_tasks.h"
#include "eval/math_grader.h"
#include "eval/report.h"
#include "eval/sandbox.h"
#include "io/jsonl.h"
#include "synth/executor.h"
#include "util/error.h"
#include "util/file.h"

namespace pcm::eval {

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string key_of(const std::string& bench, const std::string& id, int64_t sample) {
  return bench + "\t" + id + "\t" + std::to_string(sample);
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Item {
  const Benchmark* bench;
  const BenchmarkRow* row;
  int64_t sample;
};

}  // namespace

std::string eval_prompt(const std::string& format, const std::string& problem, const std::string& tmpl) {
  if (!tmpl.empty()) {
    std::string out = tmpl;
    size_t at = out.find("{problem}");
    PCM_CHECK(at != std::string::npos, "--prompt-template: the template has no {{problem}} placeholder");
    return out.replace(at, 9, problem);
  }
  if (format == "code")
    return "Complete the following Python function. Reply with the whole function in one ```python block.\n\n```python\n" +
           problem + "```";
  return problem + "\nPlease reason step by step, and put your final answer within \\boxed{}.";
}

bool think_format_valid(const std::string& text) {
  const size_t close = text.find("</think>");
  if (close == std::string::npos || text.find("</think>", close + 8) != std::string::npos) return false;
  const size_t open = text.find("<think>");
  if (open != std::string::npos && (open > close || text.find("<think>", open + 7) != std::string::npos)) return false;
  const std::string answer = text.substr(close + 8);
  return answer.find_first_not_of(" \t\r\n") != std::string::npos && answer.find("<think>") == std::string::npos;
}

json run_eval(const EvalOptions& o, const GenerateFn& generate) {
  PCM_CHECK(o.n >= 1 && o.max_retries >= 0 && o.concurrency >= 1, "pcm eval: --n, --max-retries, --concurrency must be positive");
  std::filesystem::create_directories(o.out_dir);
  const std::string samples_path = o.out_dir + "/samples.jsonl";
  // What is already done (a resumed run never redoes a finished sample).
  std::set<std::string> done;
  if (file_exists(samples_path)) {
    int64_t on_file = 0;  // a row missing a field: an error naming path:line
    for_each_jsonl(samples_path, [&](const json& r, int64_t) {
      done.insert(key_of(r.at("benchmark"), r.at("id"), r.at("sample").get<int64_t>()));
      ++on_file;
    });
    PCM_CHECK(o.resume || on_file == 0, "{} already holds {} samples: pass --resume to continue that run", samples_path,
              on_file);
  }
  std::vector<Benchmark> benches;
  for (const auto& b : o.benches) benches.push_back(load_benchmark(b, o.data_dir, o.format));
  std::vector<Item> items;
  for (const auto& b : benches) {
    const size_t count = o.limit > 0 ? std::min<size_t>(b.rows.size(), static_cast<size_t>(o.limit)) : b.rows.size();
    for (size_t i = 0; i < count; ++i)
      for (int64_t s = 0; s < o.n; ++s)
        if (!done.count(key_of(b.name, b.rows[i].id, s))) items.push_back({&b, &b.rows[i], s});
  }
  JsonlAppender out(samples_path);
  std::atomic<int64_t> finished{0}, tokens{0};
  const double t0 = now();
  std::mutex progress_mutex;
  synth::ExecutorOptions ex;
  ex.concurrency = o.concurrency;
  synth::run_bounded(items.size(), ex, [&](size_t k) {
    const Item& it = items[k];
    const std::string prompt = eval_prompt(it.bench->format, it.row->problem, o.prompt_template);
    GenerationOutput g;
    uint64_t seed = 0;
    int retries = 0;
    bool valid = true;
    const double s0 = now();
    for (int attempt = 0;; ++attempt) {
      seed = o.seed + fnv1a(it.bench->name + "/" + it.row->id) % 1000000007ull + static_cast<uint64_t>(it.sample) * 1000003ull +
             static_cast<uint64_t>(attempt) * 7919ull;
      g = generate(prompt, seed);
      tokens += g.tokens;
      valid = !o.think || think_format_valid(g.text);
      if (valid || attempt >= o.max_retries) break;
      ++retries;
    }
    json row = {{"benchmark", it.bench->name}, {"id", it.row->id}, {"sample", it.sample}, {"seed", seed},
                {"prompt", prompt}, {"completion", g.text}, {"finish_reason", g.finish_reason},
                {"generated_tokens", g.tokens}, {"seconds", now() - s0}, {"retries", retries}, {"format_valid", valid}};
    if (it.bench->format == "math") {
      Extraction e = extract_answer(g.text, it.bench->numeric_fallbacks);
      GradeResult r{false, "no answer found"};
      if (e.found()) r = grade_math_answer(e.answer, it.row->gold, it.row->grade);
      if (o.think && !valid) r = {false, "invalid <think> format"};
      row["extracted"] = e.answer;
      row["correct"] = r.correct;
      row["reason"] = r.reason;
    } else {
      SandboxResult sr = run_python(code_program(it.row->raw, g.text));
      row["extracted"] = extract_code(g.text);
      row["correct"] = sr.passed() && (!o.think || valid);
      row["reason"] = sr.passed() ? "tests passed" : sr.timed_out ? "timeout" : "tests failed: " + sr.err.substr(0, 300);
    }
    out.append(row);
    const int64_t f = ++finished;
    if (o.progress) {
      std::lock_guard<std::mutex> lock(progress_mutex);
      const double el = now() - t0, rate = static_cast<double>(f) / std::max(el, 1e-9);
      std::fprintf(stderr, "\r%lld / %zu samples, %.2f samples/s, %.0f tokens/s, ETA %.0f s   ", static_cast<long long>(f),
                   items.size(), rate, static_cast<double>(tokens.load()) / std::max(el, 1e-9),
                   rate > 0 ? static_cast<double>(static_cast<int64_t>(items.size()) - f) / rate : 0.0);
    }
  });
  if (o.progress) std::fprintf(stderr, "\n");

  // The report covers every sample on file (this run's and earlier ones').
  std::map<std::string, std::map<std::string, ProblemSamples>> per;
  std::map<std::string, int64_t> retries_total, invalid_total;
  double seconds = 0;
  int64_t gen_tokens = 0;
  for_each_jsonl(samples_path, [&](const json& r, int64_t line) {
    // A row for an id its benchmark no longer has (an edited file, another version of the benchmark) would count
    // as a problem of this run: it is kept on file but left out of the report.
    const std::string bench = r.at("benchmark"), id = r.at("id");
    const auto b = std::find_if(benches.begin(), benches.end(), [&](const Benchmark& x) { return x.name == bench; });
    if (b != benches.end() && !b->find(id)) {
      std::fprintf(stderr, "warning: %s:%lld: id %s is not in benchmark %s; left out of the report\n", samples_path.c_str(),
                   static_cast<long long>(line), id.c_str(), bench.c_str());
      return;
    }
    auto& p = per[r.at("benchmark")][r.at("id")];
    p.id = r.at("id");
    p.correct.push_back(r.at("correct").get<bool>());
    p.lengths.push_back(r.at("generated_tokens").get<int64_t>());
    p.format_valid += r.value("format_valid", true);
    retries_total[r.at("benchmark")] += r.value("retries", 0);
    invalid_total[r.at("benchmark")] += !r.value("format_valid", true);
    seconds += r.value("seconds", 0.0);
    gen_tokens += r.at("generated_tokens").get<int64_t>();
  });
  json report = json::object();
  std::string md = "| benchmark | problems | samples | pass@1 (%) ± s.e. | pass@k (%) |\n| --- | --- | --- | --- | --- |\n";
  for (const auto& b : benches) {
    if (!per.count(b.name)) continue;
    std::vector<ProblemSamples> ps;
    for (auto& [id, p] : per[b.name]) {
      if (const BenchmarkRow* row = b.find(id)) {
        if (!row->subject.empty()) p.groups.push_back(row->subject);
        if (row->level > 0) p.groups.push_back("level " + std::to_string(row->level));
      }
      ps.push_back(p);
    }
    json s = summarize(ps);
    s["retries"] = retries_total[b.name];
    s["invalid_format"] = invalid_total[b.name];
    report[b.name] = s;
    md += markdown_summary(b.name, s);
  }
  report["generated_tokens"] = gen_tokens;
  report["tokens_per_sample_second"] = seconds > 0 ? static_cast<double>(gen_tokens) / seconds : 0.0;
  write_file_atomic(o.out_dir + "/report.json", report.dump(2));
  write_file_atomic(o.out_dir + "/report.md", md);
  return report;
}

}  // namespace pcm::eval
