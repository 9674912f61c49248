// The stages that call models: concepts (extractor), embed (embedder), generate (generator),
// judge (each judge), solve (teacher).
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "io/jsonl.h"
#include "synth/parsers.h"
#include "synth/pipeline.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm::synth {

using nlohmann::json;

namespace {

json usage_json(const Usage& u) { return {{"prompt_tokens", u.prompt_tokens}, {"completion_tokens", u.completion_tokens}}; }

void add_usage(Usage& total, const Usage& u) {
  total.prompt_tokens += u.prompt_tokens;
  total.completion_tokens += u.completion_tokens;
}

// One chat turn; re-asks (round > 0) shift a fixed seed so a deterministic server can answer differently.
CompletionResult ask(LlmClient& client, const RoleConfig& role, const std::string& prompt, int round, int n = 1) {
  if (role.api == "completions") {
    CompletionRequest req;
    req.model = role.model;
    req.prompt = prompt;
    req.sampling = role.sampling;
    req.sampling.n = n;
    if (req.sampling.seed) *req.sampling.seed += round;
    return client.complete(req);
  }
  ChatRequest req;
  req.model = role.model;
  req.messages = {{"user", prompt}};
  req.sampling = role.sampling;
  req.sampling.n = n;
  if (req.sampling.seed) *req.sampling.seed += round;
  return client.chat(req);
}

// Servers with a reasoning parser return the thinking separately; put it back in the <think> format.
std::string full_text(const Choice& c) {
  if (c.reasoning.empty() || c.text.find("</think>") != std::string::npos) return c.text;
  return "<think>\n" + c.reasoning + "\n</think>\n\n" + c.text;
}

void require_file(const RunContext& ctx, const char* name, const char* stage) {
  PCM_CHECK(file_exists(ctx.path(name)), "{}: {} not found; run `pcm synth {}` first", ctx.out_dir, name, stage);
}

std::string bulleted(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += "- " + s + "\n";
  if (!out.empty()) out.pop_back();
  return out;
}

}  // namespace

std::string numbered_list(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += fmt::format("{}. {}\n", i + 1, items[i]);
  if (!out.empty()) out.pop_back();
  return out;
}

std::vector<SeedProblem> read_seed_problems(const std::vector<std::string>& inputs, int64_t limit) {
  PCM_CHECK(!inputs.empty(), "concepts.inputs: no seed files configured");
  // A directory stands for its *.jsonl files, in name order.
  std::vector<std::string> files;
  for (const auto& input : inputs) {
    if (!is_directory(input)) {
      files.push_back(input);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator(input))
      if (entry.is_regular_file() && entry.path().extension() == ".jsonl") found.push_back(entry.path().string());
    PCM_CHECK(!found.empty(), "concepts.inputs: directory {} holds no .jsonl files", input);
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  std::vector<SeedProblem> out;
  std::set<std::string> seen;
  auto full = [&] { return limit > 0 && static_cast<int64_t>(out.size()) >= limit; };
  for (const auto& file : files) {
    if (full()) break;
    PCM_CHECK(file_exists(file), "seed file {} not found", file);
    for_each_jsonl(file, [&](const json& row, int64_t line) {
      if (full()) return;
      PCM_CHECK(row.is_object(), "{}:{}: expected a JSON object", file, line);
      const char* key = row.contains("problem") ? "problem" : row.contains("question") ? "question" : nullptr;
      PCM_CHECK(key && row[key].is_string(), "{}:{}: no string \"problem\" or \"question\"", file, line);
      std::string text = row[key].get<std::string>();
      if (collapse_whitespace(text).empty()) return;
      std::string id = stable_id("c", text);
      if (!seen.insert(id).second) return;
      out.push_back({id, fmt::format("{}:{}", file, line), text});
    });
  }
  return out;
}

void stage_concepts(RunContext& ctx) {
  const SynthConfig& cfg = ctx.config;
  std::vector<WorkItem> items;
  for (auto& seed : read_seed_problems(cfg.seed_files, cfg.seed_limit))
    items.push_back({seed.id, {{"source", seed.source}, {"problem", seed.text}}});
  run_item_stage(ctx, "concepts", ctx.path(files::kConcepts), items, cfg.extractor,
                 [&](const WorkItem& item, LlmClient& client) {
                   const std::string problem = item.input["problem"];
                   std::string k = std::to_string(cfg.num_concepts);
                   Usage total;
                   std::string reason, text;
                   for (int round = 0; round <= cfg.concept_parse_retries; ++round) {
                     const std::string& tmpl = round == 0 ? cfg.prompts.concepts : cfg.prompts.concepts_fallback;
                     CompletionResult r = ask(client, cfg.extractor, fill_template(tmpl, {{"problem", problem}, {"k", k}}), round);
                     add_usage(total, r.usage);
                     text = r.choices[0].text;
                     auto parsed = parse_concept_list(text);
                     if (parsed.ok() && static_cast<int>(parsed.value->size()) >= cfg.min_concepts) {
                       std::vector<std::string> concepts = *parsed.value;
                       if (static_cast<int>(concepts.size()) > cfg.num_concepts) concepts.resize(cfg.num_concepts);
                       return std::vector<json>{{{"id", item.id}, {"status", "ok"}, {"source", item.input["source"]},
                                                 {"problem", problem}, {"concepts", concepts},
                                                 {"attempts", round + 1}, {"usage", usage_json(total)}}};
                     }
                     reason = parsed.ok() ? "too_few_concepts" : parsed.reason;
                   }
                   return std::vector<json>{{{"id", item.id}, {"status", "dropped"}, {"reason", reason},
                                             {"source", item.input["source"]}, {"problem", problem},
                                             {"completion", text}, {"attempts", cfg.concept_parse_retries + 1},
                                             {"usage", usage_json(total)}}};
                 });
}

void stage_embed(RunContext& ctx) {
  require_file(ctx, files::kConcepts, "concepts");
  const RoleConfig& role = ctx.config.embedder;
  std::set<std::string> concepts;
  for (const json& row : read_ok_rows(ctx.path(files::kConcepts), {{"concepts", Field::StringList}}, {"concepts"}))
    for (const auto& c : row["concepts"]) concepts.insert(c.get<std::string>());
  std::set<std::string> done = read_done_ids(ctx.path(files::kEmbeddings));
  std::vector<std::string> todo;
  for (const auto& c : concepts)
    if (!done.count(stable_id("k", c))) todo.push_back(c);
  std::vector<WorkItem> batches;
  for (size_t i = 0; i < todo.size(); i += role.batch_size) {
    json batch = json::array();
    for (size_t j = i; j < std::min(todo.size(), i + role.batch_size); ++j) batch.push_back(todo[j]);
    batches.push_back({fmt::format("batch-{}", i / role.batch_size), batch});
  }
  if (ctx.progress)
    std::fprintf(stderr, "[embed] %zu distinct concepts, %zu already embedded, %zu requests of up to %d\n",
                 concepts.size(), concepts.size() - todo.size(), batches.size(), role.batch_size);
  run_item_stage(ctx, "embed", ctx.path(files::kEmbeddings), batches, role, [&](const WorkItem& item, LlmClient& client) {
    std::vector<std::string> inputs = item.input.get<std::vector<std::string>>();
    EmbeddingResult r = client.embed(role.model, inputs);
    std::vector<json> rows;
    for (size_t i = 0; i < inputs.size(); ++i)
      rows.push_back({{"id", stable_id("k", inputs[i])}, {"status", "ok"}, {"concept", inputs[i]}, {"embedding", r.embeddings[i]}});
    return rows;
  });
}

void stage_generate(RunContext& ctx) {
  require_file(ctx, files::kSamples, "sample");
  const SynthConfig& cfg = ctx.config;
  std::vector<WorkItem> items;
  for (json& row : read_ok_rows(ctx.path(files::kSamples), {{"concepts", Field::StringList}, {"level", Field::String}}))
    items.push_back({row["id"], row});
  run_item_stage(ctx, "generate", ctx.path(files::kProblems), items, cfg.generator, [&](const WorkItem& item, LlmClient& client) {
    std::vector<std::string> concepts = item.input["concepts"].get<std::vector<std::string>>();
    std::string level = item.input["level"];
    std::string prompt = fill_template(cfg.prompts.generate, {{"concepts", numbered_list(concepts)}, {"level", level}});
    Usage total;
    std::string reason, text;
    for (int round = 0; round <= cfg.generate_parse_retries; ++round) {
      CompletionResult r = ask(client, cfg.generator, prompt, round);
      add_usage(total, r.usage);
      text = r.choices[0].text;
      auto parsed = parse_rationale_problem(text);
      if (parsed.ok())
        return std::vector<json>{{{"id", item.id}, {"status", "ok"}, {"concepts", concepts}, {"level", level},
                                  {"rationale", parsed.value->rationale}, {"problem", parsed.value->problem},
                                  {"completion", text}, {"usage", usage_json(total)}}};
      reason = parsed.reason;
    }
    return std::vector<json>{{{"id", item.id}, {"status", "dropped"}, {"reason", reason}, {"concepts", concepts},
                              {"level", level}, {"completion", text}, {"usage", usage_json(total)}}};
  });
}

void stage_judge(RunContext& ctx) {
  require_file(ctx, files::kProblems, "generate");
  const SynthConfig& cfg = ctx.config;
  std::vector<json> problems = read_ok_rows(ctx.path(files::kProblems), {{"concepts", Field::StringList},
      {"level", Field::String}, {"problem", Field::String}, {"completion", Field::String}});
  for (const RoleConfig& judge : cfg.judges) {
    std::string name = judge.name.substr(judge.name.find(':') + 1);
    std::vector<WorkItem> items;
    for (const json& p : problems) items.push_back({p["id"].get<std::string>() + "@" + name, p});
    run_item_stage(ctx, "judge " + name, ctx.path(files::kJudgements), items, judge, [&](const WorkItem& item, LlmClient& client) {
      std::vector<std::string> concepts = item.input["concepts"].get<std::vector<std::string>>();
      std::string prompt = fill_template(cfg.prompts.judge, {{"rationale_and_problem", item.input["completion"].get<std::string>()},
                                                             {"concepts", bulleted(concepts)},
                                                             {"level", item.input["level"].get<std::string>()}});
      Usage total;
      std::string reason, text;
      json base = {{"id", item.id}, {"item", item.input["id"]}, {"judge", name}};
      for (int round = 0; round <= cfg.judge_parse_retries; ++round) {
        CompletionResult r = ask(client, judge, prompt, round);
        add_usage(total, r.usage);
        text = r.choices[0].text;
        auto parsed = parse_judgement(text);
        if (parsed.ok()) {
          json criteria = json::object();
          for (size_t c = 0; c < kJudgeCriteria.size(); ++c)
            criteria[kJudgeCriteria[c]] = parsed.value->criteria[c] ? json(rating_name(*parsed.value->criteria[c])) : json(nullptr);
          json row = base;
          row.update({{"status", "ok"}, {"verdict", rating_name(parsed.value->final_verdict)}, {"criteria", criteria},
                      {"completion", text}, {"usage", usage_json(total)}});
          return std::vector<json>{row};
        }
        reason = parsed.reason;
      }
      json row = base;
      row.update({{"status", "dropped"}, {"reason", reason}, {"completion", text}, {"usage", usage_json(total)}});
      return std::vector<json>{row};
    });
  }
}

void stage_solve(RunContext& ctx, const AnswerMatcher& matcher) {
  require_file(ctx, files::kFiltered, "filter");
  const SynthConfig& cfg = ctx.config;
  std::vector<WorkItem> items;
  for (json& row : read_ok_rows(ctx.path(files::kFiltered), {{"problem", Field::String}}))
    items.push_back({row["id"], row});
  run_item_stage(ctx, "solve", ctx.path(files::kSolutions), items, cfg.teacher, [&](const WorkItem& item, LlmClient& client) {
    const std::string problem = item.input["problem"];
    std::string prompt = fill_template(cfg.prompts.solve, {{"problem", problem}});
    Usage total;
    json samples = json::array();
    int valid = 0;
    // use_n: the first attempt of every sample comes from one request with n choices (the server can share
    // the prompt's prefill); per-sample token counts are then the request's average.
    std::vector<Choice> batch;
    int64_t batch_tokens_each = 0;
    if (cfg.solve_use_n && cfg.solve_n > 1) {
      CompletionResult r = ask(client, cfg.teacher, prompt, 0, cfg.solve_n);
      add_usage(total, r.usage);
      batch = r.choices;
      batch_tokens_each = r.usage.completion_tokens / static_cast<int64_t>(batch.size());
    }
    for (int k = 0; k < cfg.solve_n; ++k) {
      json sample;
      for (int round = 0; round <= cfg.solve_format_retries; ++round) {
        Choice choice;
        int64_t tokens = 0;
        if (round == 0 && k < static_cast<int>(batch.size())) {
          choice = batch[k];
          tokens = batch_tokens_each;
        } else {
          // Sample k uses its own seed range so the n answers differ on a seeded server.
          CompletionResult r = ask(client, cfg.teacher, prompt, k * (cfg.solve_format_retries + 1) + round);
          add_usage(total, r.usage);
          choice = r.choices[0];
          tokens = r.usage.completion_tokens;
        }
        std::string text = full_text(choice);
        auto parsed = parse_solution(text);
        sample = {{"completion", text}, {"completion_tokens", tokens},
                  {"finish_reason", choice.finish_reason}, {"attempts", round + 1}};
        if (parsed.ok()) {
          sample["status"] = "ok";
          sample["answer"] = parsed.value->boxed;
          break;
        }
        sample["status"] = parsed.reason;
      }
      if (sample["status"] == "ok") ++valid;
      samples.push_back(sample);
    }
    json row = {{"id", item.id}, {"problem", problem}, {"level", item.input["level"]},
                {"concepts", item.input["concepts"]}, {"samples", samples}, {"usage", usage_json(total)}};
    if (valid == 0) {
      row["status"] = "dropped";
      row["reason"] = "no_valid_solution";
      return std::vector<json>{row};
    }
    // Majority answer: greedy clusters under the matcher, the largest (earliest on ties) wins.
    std::vector<std::pair<std::string, int>> clusters;
    for (const json& s : samples) {
      if (s["status"] != "ok") continue;
      std::string a = s["answer"];
      bool placed = false;
      for (auto& [rep, count] : clusters)
        if (matcher.same(rep, a)) { ++count; placed = true; break; }
      if (!placed) clusters.push_back({a, 1});
    }
    auto best = std::max_element(clusters.begin(), clusters.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    for (size_t k = 0; k < samples.size(); ++k)
      if (samples[k]["status"] == "ok" && matcher.same(best->first, samples[k]["answer"].get<std::string>())) {
        row["chosen"] = k;  // the sample export turns into training data
        break;
      }
    double share = static_cast<double>(best->second) / static_cast<double>(cfg.solve_n);
    row["majority_answer"] = best->first;
    row["majority_share"] = share;
    row["answer_matcher"] = matcher.name();
    if (cfg.self_consistency && share < cfg.consensus_threshold) {
      row["status"] = "dropped";
      row["reason"] = "no_consensus";
    } else {
      row["status"] = "ok";
    }
    return std::vector<json>{row};
  });
}

}  // namespace pcm::synth
