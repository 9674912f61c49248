#include "synth/compose/composer.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

#include "eval/answer_extract.h"
#include "eval/eval_run.h"
#include "eval/math_grader.h"
#include "io/jsonl.h"
#include "synth/concept_sampler.h"
#include "synth/near_duplicates.h"
#include "util/error.h"

namespace pcm::synth::compose {
namespace {

constexpr int64_t kMaxValue = 100000;  // every intermediate stays a small exact integer (≤ 6 digits)
constexpr int kNumberAttempts = 12;      // fresh inputs tried per part order

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string seed_text(const nlohmann::json& row) {
  for (const char* k : {"question", "problem", "prompt"})
    if (row.contains(k) && row[k].is_string()) return row[k].get<std::string>();
  return "";
}

// Tries to write the chain in this order: a literal first input, then each part reads the previous one.
bool try_chain(const std::vector<const Concept*>& order, std::mt19937_64& rng, std::vector<Part>* parts,
               std::vector<std::string>* names) {
  static const char* kNames[] = {"A", "B", "C", "D", "E", "F"};
  for (int attempt = 0; attempt < kNumberAttempts; ++attempt) {
    parts->clear();
    names->clear();
    int64_t x = uniform_int(rng, order[0]->fresh_lo, order[0]->fresh_hi);
    std::string x_text = std::to_string(x);
    bool ok = true;
    for (size_t i = 0; i < order.size() && ok; ++i) {
      const std::string name = kNames[i];
      auto part = order[i]->make(x, x_text, name, rng);
      if (!part || part->value.num < 1 || part->value.num > kMaxValue) {
        ok = false;
        break;
      }
      if (!part->value.is_integer() && i + 1 != order.size()) {
        ok = false;
        break;
      }
      x = part->value.num;
      x_text = name;
      parts->push_back(std::move(*part));
      names->push_back(name);
    }
    if (ok) return true;
  }
  return false;
}

std::string join_names(const std::vector<const Concept*>& concepts) {
  std::string s;
  for (size_t i = 0; i < concepts.size(); ++i) {
    std::string n = lower(concepts[i]->name);
    s += (i == 0 ? "" : (i + 1 == concepts.size() ? " and " : ", ")) + n;
  }
  return s;
}

}  // namespace

std::string math_user_prompt(const std::string& problem) { return eval::eval_prompt("math", problem, ""); }

SamplerInputs build_sampler_inputs(const std::vector<std::string>& seed_files, size_t seed_limit) {
  SamplerInputs in;
  const auto& bank = concept_bank();
  // Every concept appears once on its own, so each can be drawn even if no seed problem mentions it.
  for (const auto& c : bank) in.lists.push_back({c.name});
  size_t read = 0;
  for (const auto& file : seed_files) {
    for_each_jsonl(file, [&](const nlohmann::json& row, int64_t line) {
      if (seed_limit && read >= seed_limit) return;
      const std::string text = lower(seed_text(row));
      PCM_CHECK(!text.empty(), "{}:{}: no question, problem or prompt field", file, line);
      ++read;
      std::vector<std::string> list;
      for (const auto& c : bank)
        for (const auto& k : c.keywords)
          if (text.find(k) != std::string::npos) {
            list.push_back(c.name);
            break;
          }
      if (list.size() >= 2) in.lists.push_back(std::move(list));
    });
  }
  // Embeddings: one dimension per tag (topic included); concepts sharing tags are similar.
  std::map<std::string, size_t> tag_index;
  for (const auto& c : bank) {
    tag_index.emplace("topic:" + c.topic, tag_index.size());
    for (const auto& t : c.tags) tag_index.emplace(t, tag_index.size());
  }
  for (const auto& c : bank) {
    std::vector<float> e(tag_index.size(), 0.0f);
    e[tag_index.at("topic:" + c.topic)] = 1.0f;
    for (const auto& t : c.tags) e[tag_index.at(t)] = 1.0f;
    in.embeddings[c.name] = std::move(e);
  }
  return in;
}

std::string render_solution(const std::vector<const Concept*>& concepts, const std::vector<Part>& parts,
                            const std::vector<std::string>& names) {
  std::string s = "<think>\n";
  s += fmt::format("Rationale: the problem chains {} concepts ({}); each part's answer is the input of the next, so "
                   "the parts must be solved in order and the final answer is {}.\n",
                   parts.size(), join_names(concepts), names.back());
  s += "Plan:";
  for (size_t i = 0; i < parts.size(); ++i) s += fmt::format(" ({}) {}: {};", i + 1, names[i], parts[i].plan);
  s.back() = '.';
  s += "\n";
  for (size_t i = 0; i < parts.size(); ++i) s += fmt::format("Step {}: {}\n", i + 1, parts[i].work);
  s += fmt::format("So the answer is {} = {}.\n</think>\n\\boxed{{{}}}", names.back(), parts.back().value.latex(),
                   parts.back().value.latex());
  return s;
}

std::vector<ComposedProblem> compose_problems(const ComposeOptions& o, ComposeStats* stats) {
  PCM_CHECK(o.min_concepts >= 1 && o.min_concepts <= o.max_concepts && o.max_concepts <= 6,
            "compose: concepts per problem must satisfy 1 <= min <= max <= 6 (got {}..{})", o.min_concepts, o.max_concepts);
  const SamplerInputs inputs = build_sampler_inputs(o.seed_files, o.seed_limit);
  const ConceptSampler sampler(inputs.lists, inputs.embeddings);

  ContaminationIndex bench(5, 0.5);
  for (const auto& file : o.benchmark_files)
    for_each_jsonl(file, [&](const nlohmann::json& row, int64_t line) {
      const std::string t = seed_text(row);
      if (!t.empty()) bench.add(fmt::format("{}:{}", file, line), t);
    });

  std::mt19937_64 rng(o.seed);
  std::vector<ComposedProblem> out;
  std::unordered_set<std::string> seen_text;
  std::set<std::vector<int>> seen_lists;
  const int64_t max_lists = static_cast<int64_t>(o.count) * 20 + 100;  // a bound, should generation keep failing
  while (out.size() < o.count) {
    PCM_CHECK(stats->lists_sampled < max_lists, "compose: only {} of {} problems after {} concept lists ({} without a "
              "feasible chain, {} rejected by the grader, {} contaminated, {} excluded, {} duplicates)",
              out.size(), o.count, stats->lists_sampled, stats->no_feasible_chain, stats->grader_rejected,
              stats->contaminated, stats->excluded, stats->duplicate_problem);
    const int size = static_cast<int>(uniform_int(rng, o.min_concepts, o.max_concepts));
    std::vector<int> ids = sampler.sample(static_cast<size_t>(size), o.temperature, rng);
    ++stats->lists_sampled;
    std::vector<int> sorted_ids = ids;
    std::sort(sorted_ids.begin(), sorted_ids.end());
    if (seen_lists.insert(sorted_ids).second) ++stats->distinct_lists;

    // Part order: the sampled order, terminal-only concepts last; other orders are tried if it fails.
    std::vector<const Concept*> order;
    for (int id : ids) order.push_back(&concept_by_name(sampler.concepts()[id]));
    std::stable_partition(order.begin(), order.end(), [](const Concept* c) { return !c->terminal_only; });
    std::vector<Part> parts;
    std::vector<std::string> names;
    bool found = false;
    for (int tries = 0; tries < 6 && !found; ++tries) {
      found = try_chain(order, rng, &parts, &names);
      if (!found) {
        std::shuffle(order.begin(), order.end(), rng);
        std::stable_partition(order.begin(), order.end(), [](const Concept* c) { return !c->terminal_only; });
      }
    }
    if (!found) {
      ++stats->no_feasible_chain;
      continue;
    }

    ComposedProblem p;
    p.id = fmt::format("p{}-{}", o.seed, stats->lists_sampled - 1);
    for (const auto* c : order) p.concepts.push_back(c->name);
    for (const auto& part : parts) p.problem += (p.problem.empty() ? "" : " ") + part.question;
    p.problem += fmt::format(" What is the value of {}?", names.back());
    p.solution = render_solution(order, parts, names);
    p.answer = parts.back().value;

    // The grader must read back exactly the computed answer from the written solution.
    const eval::Extraction ex = eval::extract_answer(p.solution, false);
    if (!ex.found() || !eval::grade_math_answer(ex.answer, p.answer.latex()).correct) {
      ++stats->grader_rejected;
      continue;
    }
    if (o.exclude.count(p.problem)) {
      ++stats->excluded;
      continue;
    }
    if (!seen_text.insert(p.problem).second) {
      ++stats->duplicate_problem;
      continue;
    }
    if (bench.size()) {
      const BenchmarkHit hit = bench.check(p.problem);
      if (hit.index >= 0) {
        ++stats->contaminated;
        if (stats->contamination_examples.size() < 10)
          stats->contamination_examples.push_back(p.id + " ~ " + bench.source(hit.index));
        continue;
      }
    }
    for (const auto& c : p.concepts) stats->concept_use[c]++;
    stats->level_histogram[static_cast<int>(p.concepts.size())]++;
    out.push_back(std::move(p));
  }
  stats->kept = static_cast<int64_t>(out.size());
  return out;
}

}  // namespace pcm::synth::compose
