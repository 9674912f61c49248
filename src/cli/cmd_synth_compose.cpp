#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/common.h"
#include "cli/synth_compose_cli.h"
#include "io/jsonl.h"
#include "synth/compose/composer.h"
#include "synth/compose/gsm8k_chat.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Files named directly, and the *.jsonl files of named directories (sorted, so runs are reproducible).
std::vector<std::string> expand_jsonl(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    PCM_CHECK(fs::exists(p), "{}: no such file or directory", p);
    if (!fs::is_directory(p)) {
      out.push_back(p);
      continue;
    }
    std::vector<std::string> dir;
    for (const auto& e : fs::directory_iterator(p))
      if (e.path().extension() == ".jsonl") dir.push_back(e.path().string());
    std::sort(dir.begin(), dir.end());
    out.insert(out.end(), dir.begin(), dir.end());
  }
  return out;
}

void write_rows(const std::string& path, const std::vector<json>& rows) {
  std::string text;
  for (const auto& r : rows) text += r.dump() + "\n";
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path());
  write_file_atomic(path, text);
}

void write_stats(const std::string& path, const json& stats) {
  if (path.empty()) return;
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path());
  write_file_atomic(path, stats.dump(2) + "\n");
}

struct ComposeCli {
  synth::compose::ComposeOptions options;
  std::vector<std::string> seed_problems, benchmarks, exclude;
  std::string out, format = "chat", stats;
};

void run_compose(ComposeCli& c) {
  namespace sc = synth::compose;
  c.options.seed_files = expand_jsonl(c.seed_problems);
  c.options.benchmark_files = expand_jsonl(c.benchmarks);
  for (const auto& f : expand_jsonl(c.exclude))
    for_each_jsonl(f, [&](const json& row, int64_t line) {
      PCM_CHECK(row.contains("problem") && row["problem"].is_string(), "{}:{}: --exclude rows need a 'problem' field", f, line);
      c.options.exclude.insert(row["problem"].get<std::string>());
    });
  sc::ComposeStats st;
  const auto problems = sc::compose_problems(c.options, &st);
  std::vector<json> rows;
  for (const auto& p : problems) {
    json r = {{"id", p.id}, {"problem", p.problem}, {"answer", p.answer.latex()}, {"concepts", p.concepts}};
    if (c.format == "chat")
      r["messages"] = json::array({{{"role", "user"}, {"content", sc::math_user_prompt(p.problem)}},
                                   {{"role", "assistant"}, {"content", p.solution}}});
    else
      r["solution"] = p.solution;
    rows.push_back(std::move(r));
  }
  write_rows(c.out, rows);
  json levels = json::object(), use = json::object();
  for (const auto& [k, v] : st.level_histogram) levels[std::to_string(k)] = v;
  for (const auto& [k, v] : st.concept_use) use[k] = v;
  json s = {{"seed", c.options.seed}, {"kept", st.kept}, {"lists_sampled", st.lists_sampled},
            {"distinct_concept_lists", st.distinct_lists}, {"dropped_no_feasible_chain", st.no_feasible_chain},
            {"dropped_grader_rejected", st.grader_rejected}, {"dropped_benchmark_contamination", st.contaminated},
            {"dropped_excluded_overlap", st.excluded}, {"dropped_duplicate_problem", st.duplicate_problem},
            {"excluded_problems_given", c.options.exclude.size()}, {"benchmark_files", c.options.benchmark_files},
            {"contamination_examples", st.contamination_examples}, {"concepts_per_problem", levels},
            {"concept_use", use}, {"sampler_temperature", c.options.temperature}};
  write_stats(c.stats, s);
  std::fprintf(stderr,
               "compose: kept %lld of %lld concept lists (%lld distinct); dropped: no feasible chain %lld, grader "
               "rejected %lld, benchmark contamination %lld, overlap with --exclude %lld, duplicate text %lld\n",
               static_cast<long long>(st.kept), static_cast<long long>(st.lists_sampled),
               static_cast<long long>(st.distinct_lists), static_cast<long long>(st.no_feasible_chain),
               static_cast<long long>(st.grader_rejected), static_cast<long long>(st.contaminated),
               static_cast<long long>(st.excluded), static_cast<long long>(st.duplicate_problem));
}

struct Gsm8kCli {
  std::string in, out, stats;
  std::vector<std::string> benchmarks;
};

void run_gsm8k(const Gsm8kCli& c) {
  synth::compose::Gsm8kChatStats st;
  const auto rows = synth::compose::gsm8k_chat_rows(c.in, expand_jsonl(c.benchmarks), &st);
  write_rows(c.out, rows);
  write_stats(c.stats, {{"rows", st.rows}, {"kept", st.kept}, {"dropped_benchmark_contamination", st.contaminated},
                        {"dropped_grader_rejected", st.grader_rejected}, {"benchmark_files", expand_jsonl(c.benchmarks)},
                        {"contamination_examples", st.contamination_examples}});
  std::fprintf(stderr, "gsm8k-chat: kept %lld of %lld rows; dropped: benchmark contamination %lld, grader rejected %lld\n",
               static_cast<long long>(st.kept), static_cast<long long>(st.rows), static_cast<long long>(st.contaminated),
               static_cast<long long>(st.grader_rejected));
}

}  // namespace

void add_compose_subcommands(CLI::App* synth) {
  {
    auto c = std::make_shared<ComposeCli>();
    CLI::App* sub = synth->add_subcommand(
        "compose", "Compose exact-answer multi-concept problems from sampled concept lists (no teacher model)");
    sub->add_option("--seed", c->options.seed, "seed (the output is a pure function of it and the inputs)");
    sub->add_option("--count", c->options.count, "problems to write")->check(positive());
    sub->add_option("--min-concepts", c->options.min_concepts, "fewest concepts (parts) per problem");
    sub->add_option("--max-concepts", c->options.max_concepts, "most concepts (parts) per problem");
    sub->add_option("--temperature", c->options.temperature, "concept sampler softmax temperature")->check(positive());
    sub->add_option("--seed-problems", c->seed_problems, "JSONL files/dirs whose problems give concept co-occurrence");
    sub->add_option("--seed-limit", c->options.seed_limit, "seed problems read (0: all)");
    sub->add_option("--benchmarks", c->benchmarks, "JSONL files/dirs to decontaminate against");
    sub->add_option("--exclude", c->exclude, "JSONL files/dirs whose 'problem' texts must not be produced");
    sub->add_option("--format", c->format, "chat (messages rows for pcm train) or bench (problem/answer rows for pcm eval)")
        ->check(CLI::IsMember({"chat", "bench"}));
    sub->add_option("--out", c->out, "output JSONL")->required();
    sub->add_option("--stats", c->stats, "write counts and drop reasons here (JSON)");
    sub->callback([c] { run_compose(*c); });
  }
  {
    auto c = std::make_shared<Gsm8kCli>();
    CLI::App* sub = synth->add_subcommand("gsm8k-chat", "Render GSM8K train rows as <think> chat rows (phase 1 data)");
    sub->add_option("--in", c->in, "GSM8K JSONL (question, answer)")->required()->check(CLI::ExistingFile);
    sub->add_option("--benchmarks", c->benchmarks, "JSONL files/dirs to decontaminate against");
    sub->add_option("--out", c->out, "output JSONL")->required();
    sub->add_option("--stats", c->stats, "write counts and drop reasons here (JSON)");
    sub->callback([c] { run_gsm8k(*c); });
  }
}

}  // namespace pcm::cli
