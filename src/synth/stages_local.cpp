// The stages that run locally: sample (concept lists), filter (judge verdicts, decontamination, dedup),
// export (training rows + data card), and the stage sequencing of `pcm synth run`.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "io/jsonl.h"
#include "synth/concept_sampler.h"
#include "synth/near_duplicates.h"
#include "synth/parsers.h"
#include "synth/pipeline.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm::synth {

using nlohmann::json;

namespace {

std::string dump_rows(const std::vector<json>& rows) {
  std::string out;
  for (const json& r : rows) out += r.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return out;
}

void require(const RunContext& ctx, const char* name, const char* stage) {
  PCM_CHECK(file_exists(ctx.path(name)), "{}: {} not found; run `pcm synth {}` first", ctx.out_dir, name, stage);
}

void log(const RunContext& ctx, const std::string& line) {
  if (ctx.progress) std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace

void stage_sample(RunContext& ctx) {
  require(ctx, files::kConcepts, "concepts");
  require(ctx, files::kEmbeddings, "embed");
  const SynthConfig& cfg = ctx.config;
  std::string out_path = ctx.path(files::kSamples);
  if (file_exists(out_path)) {
    log(ctx, fmt::format("[sample] {} exists ({} rows); kept as is (delete it to sample again)", out_path,
                         read_rows_sorted(out_path, {"status"}).size()));
    return;
  }
  std::vector<std::vector<std::string>> lists;
  for (const json& row : read_ok_rows(ctx.path(files::kConcepts), {{"concepts", Field::StringList}}, {"concepts"}))
    lists.push_back(row["concepts"].get<std::vector<std::string>>());
  std::map<std::string, std::vector<float>> embeddings;
  for (const json& row : read_ok_rows(ctx.path(files::kEmbeddings), {{"concept", Field::String}, {"embedding", Field::NumberList}}))
    embeddings[row["concept"].get<std::string>()] = row["embedding"].get<std::vector<float>>();
  size_t usable = 0;
  for (const auto& list : lists)
    for (const auto& c : list) usable += embeddings.count(c);
  if (usable == 0) {
    // Every seed was dropped (or nothing embedded): an empty stage, not a crash, so the run completes and
    // the data card shows where items went.
    write_file_atomic(out_path, "");
    log(ctx, "[sample] no extracted concept has an embedding: nothing to sample (see concepts.jsonl reasons)");
    ctx.save_stats();
    return;
  }
  ConceptSampler sampler(lists, embeddings);
  PCM_CHECK(static_cast<size_t>(cfg.list_size) <= sampler.concepts().size(),
            "sample: list_size {} but only {} distinct concepts have embeddings", cfg.list_size, sampler.concepts().size());

  std::mt19937_64 rng(cfg.seed);
  std::set<std::string> seen;
  std::vector<json> rows;
  int64_t draws = 0, duplicates = 0, max_draws = cfg.sample_count * 50 + 1000;
  while (static_cast<int64_t>(rows.size()) < cfg.sample_count && draws < max_draws) {
    ++draws;
    std::vector<int> picked = sampler.sample(cfg.list_size, cfg.sample_temperature, rng);
    std::vector<std::string> concepts;
    for (int i : picked) concepts.push_back(sampler.concepts()[i]);
    std::string key = numbered_list(concepts);
    if (!seen.insert(key).second) {
      ++duplicates;
      continue;
    }
    const std::string& level = cfg.levels[static_cast<size_t>(uniform01(rng) * cfg.levels.size()) % cfg.levels.size()];
    rows.push_back({{"id", stable_id("s", key)}, {"status", "ok"}, {"concepts", concepts}, {"level", level}});
  }
  write_file_atomic(out_path, dump_rows(rows));
  log(ctx, fmt::format("[sample] {} concept lists from {} concepts ({} without embedding skipped); {} exact duplicates "
                       "skipped{}",
                       rows.size(), sampler.concepts().size(), sampler.skipped(), duplicates,
                       static_cast<int64_t>(rows.size()) < cfg.sample_count ? " (pool exhausted before sample.count)" : ""));
  ctx.save_stats();
}

void stage_filter(RunContext& ctx) {
  require(ctx, files::kProblems, "generate");
  require(ctx, files::kJudgements, "judge");
  const SynthConfig& cfg = ctx.config;
  std::vector<std::string> judge_names;
  for (const RoleConfig& j : cfg.judges) judge_names.push_back(j.name.substr(j.name.find(':') + 1));

  // item -> judge -> row
  std::map<std::string, std::map<std::string, json>> verdicts;
  for (json& row : read_rows_sorted(ctx.path(files::kJudgements), {"item", "judge", "verdict"})) {
    check_fields(row, ctx.path(files::kJudgements), {{"item", Field::String}, {"judge", Field::String}});
    if (json_string_or(row, "status", "ok") == "ok") check_fields(row, ctx.path(files::kJudgements), {{"verdict", Field::String}});
    verdicts[row["item"].get<std::string>()][row["judge"].get<std::string>()] = row;
  }

  ContaminationIndex benchmarks(cfg.decontam_ngram, cfg.decontam_threshold);
  if (cfg.decontaminate) {
    for (const auto& file : cfg.benchmark_files) {
      PCM_CHECK(file_exists(file), "filter.benchmarks: {} not found", file);
      std::string name = file.substr(file.find_last_of('/') + 1);
      for_each_jsonl(file, [&](const json& row, int64_t line) {
        for (const char* key : {"problem", "question", "prompt"})
          if (row.is_object() && row.contains(key) && row[key].is_string()) {
            benchmarks.add(fmt::format("{}:{}", name, line), row[key].get<std::string>());
            break;
          }
      });
    }
  }
  MinHashDeduper dedup(cfg.dedup_options);
  std::map<int64_t, std::string> dedup_ids;  // add index -> item id
  int64_t dedup_added = 0;

  std::vector<json> out;
  for (const json& p : read_ok_rows(ctx.path(files::kProblems), {{"problem", Field::String}, {"concepts", Field::StringList}, {"level", Field::String}},
                                           {"problem", "concepts", "level"})) {
    std::string id = p["id"];
    json row = {{"id", id}, {"problem", p["problem"]}, {"concepts", p["concepts"]}, {"level", p["level"]}};
    json judged = json::object();
    int perfect = 0, bad = 0, missing = 0, unparseable = 0;
    for (const auto& name : judge_names) {
      auto it = verdicts[id].find(name);
      if (it == verdicts[id].end()) { ++missing; continue; }
      if (json_string_or(it->second, "status", "ok") != "ok") { ++unparseable; judged[name] = nullptr; continue; }
      std::string v = it->second["verdict"];
      judged[name] = v;
      if (v == "perfect") ++perfect;
      if (v == "bad") ++bad;
    }
    row["verdicts"] = judged;
    int n = static_cast<int>(judge_names.size());
    std::string reason;
    if (missing > 0) reason = "not_judged";
    else if (unparseable > 0) reason = "judge_unparseable";
    else if (cfg.only_perfect ? perfect != n : (perfect == 0 || bad > 0)) reason = "rejected_by_judges";
    if (reason.empty() && cfg.decontaminate) {
      BenchmarkHit hit = benchmarks.check(p["problem"]);
      if (hit.index >= 0) {
        reason = "benchmark_contamination";
        row["benchmark"] = benchmarks.source(hit.index);
        row["similarity"] = hit.similarity;
      }
    }
    if (reason.empty() && cfg.dedup) {
      auto match = dedup.add(p["problem"]);
      int64_t me = dedup_added++;
      if (match.index >= 0) {
        reason = "near_duplicate";
        row["duplicate_of"] = dedup_ids[match.index];
        row["similarity"] = match.similarity;
      } else {
        dedup_ids[me] = id;
      }
    }
    row["status"] = reason.empty() ? "ok" : "dropped";
    if (!reason.empty()) row["reason"] = reason;
    out.push_back(row);
  }
  write_file_atomic(ctx.path(files::kFiltered), dump_rows(out));
  json counts = stage_counts(ctx.path(files::kFiltered));
  log(ctx, fmt::format("[filter] {} problems: {} kept, dropped {} ({} benchmark problems indexed, LSH {}x{})",
                       counts["rows"].get<int64_t>(), counts["ok"].get<int64_t>(), counts["reasons"].dump(),
                       benchmarks.size(), dedup.bands(), dedup.rows()));
  if (counts["reasons"].contains("not_judged"))
    throw IncompleteStage("filter: some problems have no verdict from every judge; run `pcm synth judge` first");
  ctx.save_stats();
}

namespace {

json length_stats(std::vector<int64_t> v) {
  if (v.empty()) return {{"count", 0}};
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (int64_t x : v) sum += static_cast<double>(x);
  auto pct = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]; };
  return {{"count", v.size()}, {"min", v.front()}, {"mean", sum / static_cast<double>(v.size())},
          {"p50", pct(0.5)},   {"p90", pct(0.9)},  {"max", v.back()}};
}

}  // namespace

void stage_export(RunContext& ctx) {
  require(ctx, files::kSolutions, "solve");
  const SynthConfig& cfg = ctx.config;
  std::vector<json> train;
  std::map<std::string, int64_t> levels;
  std::map<std::string, int64_t> concept_use;
  std::vector<int64_t> completion_tokens, problem_words;
  for (const json& row : read_ok_rows(ctx.path(files::kSolutions), {{"problem", Field::String}, {"concepts", Field::StringList}, {"samples", Field::Array}})) {
    if (!row.contains("chosen")) continue;
    PCM_CHECK(row["chosen"].is_number_unsigned() && row["chosen"].get<size_t>() < row["samples"].size(),
              "{}: row {}: \"chosen\" is not an index into \"samples\"", ctx.path(files::kSolutions), row["id"].dump());
    const json& sample = row["samples"][row["chosen"].get<size_t>()];
    std::string completion = sample["completion"];
    // A template that opens <think> in the prompt leaves it out of the answer; training data needs it.
    if (completion.find("<think>") == std::string::npos) completion = "<think>\n" + completion;
    json messages = json::array();
    if (!cfg.system_prompt.empty()) messages.push_back({{"role", "system"}, {"content", cfg.system_prompt}});
    messages.push_back({{"role", "user"}, {"content", fill_template(cfg.prompts.solve, {{"problem", row["problem"].get<std::string>()}})}});
    messages.push_back({{"role", "assistant"}, {"content", completion}});
    train.push_back({{"messages", messages}});
    levels[json_string_or(row, "level", "?")]++;
    for (const auto& c : row["concepts"]) concept_use[c.get<std::string>()]++;
    completion_tokens.push_back(json_int_or(sample, "completion_tokens", 0));
    std::string problem = row["problem"];
    problem_words.push_back(static_cast<int64_t>(std::count(problem.begin(), problem.end(), ' ') + 1));
  }
  write_file_atomic(ctx.path(files::kTrain), dump_rows(train));

  // Concept coverage: how much of the extracted concept pool the exported problems use.
  std::set<std::string> pool;
  if (file_exists(ctx.path(files::kSamples)))
    for (const json& s : read_ok_rows(ctx.path(files::kSamples), {{"concepts", Field::StringList}}, {"concepts"}))
      for (const auto& c : s["concepts"]) pool.insert(c.get<std::string>());
  std::vector<std::pair<std::string, int64_t>> top(concept_use.begin(), concept_use.end());
  std::stable_sort(top.begin(), top.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (top.size() > 20) top.resize(20);
  json top_json = json::array();
  for (const auto& [c, n] : top) top_json.push_back({{"concept", c}, {"count", n}});

  // How the judges rated each criterion, over every problem they judged.
  json ratings = json::object();
  if (file_exists(ctx.path(files::kJudgements)))
    for (const json& j : read_rows_sorted(ctx.path(files::kJudgements), {"judge", "verdict", "criteria"})) {
      if (json_string_or(j, "status", "ok") != "ok" || !j.contains("criteria") || !j["criteria"].is_object()) continue;
      std::string judge = json_string_or(j, "judge", "?");
      json& r = ratings[judge];
      std::string verdict = json_string_or(j, "verdict", "?");
      r["final"][verdict] = json_int_or(r["final"], verdict, 0) + 1;
      for (const auto& [criterion, rating] : j["criteria"].items()) {
        std::string value = rating.is_string() ? rating.get<std::string>() : "missing";
        r[criterion][value] = json_int_or(r[criterion], value, 0) + 1;
      }
    }

  ctx.save_stats();
  json stats = read_json_file(ctx.path(files::kStats));
  json card = {{"rows", train.size()},
               {"file", files::kTrain},
               {"format", "{\"messages\": [user, assistant]} with the assistant turn in <think>...</think> + \\boxed{} form"},
               {"stages", stats["stages"]},
               {"tokens_per_role", stats["tokens"]},
               {"levels", levels},
               {"judge_ratings", ratings},
               {"concept_coverage",
                {{"distinct_concepts_used", concept_use.size()},
                 {"distinct_concepts_sampled", pool.size()},
                 {"fraction", pool.empty() ? 0.0 : static_cast<double>(concept_use.size()) / static_cast<double>(pool.size())},
                 {"most_used", top_json}}},
               {"assistant_completion_tokens", length_stats(completion_tokens)},
               {"problem_words", length_stats(problem_words)},
               {"config",
                {{"source", cfg.source},
                 {"seed", cfg.seed},
                 {"filter_mode", cfg.only_perfect ? "all_perfect" : "perfect_no_bad"},
                 {"judges", cfg.judges.size()},
                 {"dedup_threshold", cfg.dedup_options.threshold},
                 {"decontam_threshold", cfg.decontam_threshold},
                 {"solve_n", cfg.solve_n},
                 {"self_consistency", cfg.self_consistency},
                 {"consensus_threshold", cfg.consensus_threshold}}}};
  write_file_atomic(ctx.path(files::kDataCard), card.dump(2) + "\n");
  log(ctx, fmt::format("[export] {} training rows -> {}; data card {}", train.size(), ctx.path(files::kTrain),
                       ctx.path(files::kDataCard)));
}

void run_stage_unchecked(RunContext& ctx, const std::string& name, const AnswerMatcher& matcher);

const std::vector<std::string>& stage_names() {
  static const std::vector<std::string> names = {"concepts", "embed", "sample", "generate", "judge", "filter", "solve", "export"};
  return names;
}

void run_stage(RunContext& ctx, const std::string& name, const AnswerMatcher& matcher) {
  // A hand-edited row of the wrong shape that the field checks did not anticipate.
  naming_json_errors([&] { return fmt::format("{}: stage {}: unexpected JSON in a stage file", ctx.out_dir, name); },
                     [&] { run_stage_unchecked(ctx, name, matcher); });
}

void run_stage_unchecked(RunContext& ctx, const std::string& name, const AnswerMatcher& matcher) {
  if (name == "concepts") stage_concepts(ctx);
  else if (name == "embed") stage_embed(ctx);
  else if (name == "sample") stage_sample(ctx);
  else if (name == "generate") stage_generate(ctx);
  else if (name == "judge") stage_judge(ctx);
  else if (name == "filter") stage_filter(ctx);
  else if (name == "solve") stage_solve(ctx, matcher);
  else if (name == "export") stage_export(ctx);
  else fail("unknown synth stage '{}'", name);
}

void run_pipeline(RunContext& ctx, const AnswerMatcher& matcher, const std::string& from, const std::string& to) {
  const auto& names = stage_names();
  auto index = [&](const std::string& n, size_t fallback) {
    if (n.empty()) return fallback;
    auto it = std::find(names.begin(), names.end(), n);
    PCM_CHECK(it != names.end(), "unknown synth stage '{}'", n);
    return static_cast<size_t>(it - names.begin());
  };
  size_t a = index(from, 0), b = index(to, names.size() - 1);
  PCM_CHECK(a <= b, "stage '{}' comes after '{}'", from, to);
  for (size_t i = a; i <= b; ++i) run_stage(ctx, names[i], matcher);
}

}  // namespace pcm::synth
