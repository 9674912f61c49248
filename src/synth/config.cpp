#include "synth/config.h"

#include <set>

#include "synth/executor.h"
#include "util/error.h"
#include "util/file.h"
#include "util/toml.h"

namespace pcm::synth {

namespace {

const char* kConceptsPrompt =
    "You are an experienced designer of mathematics assessments. Study this problem:\n\n"
    "{problem}\n\n"
    "Name {k} foundational concepts a student must command to solve it. Each concept should be:\n"
    "- a standard topic taught in school or university courses;\n"
    "- specific and checkable (not something vague such as 'mathematical thinking');\n"
    "- a building block of the solution, not a trick that only works for this problem.\n\n"
    "Reason about the problem first. Then give your answer as a Python code block holding a single list "
    "of {k} strings, one concept per string.";

const char* kConceptsFallbackPrompt =
    "You are an experienced designer of mathematics assessments. Study this problem:\n\n"
    "{problem}\n\n"
    "Name {k} foundational concepts a student must command to solve it: standard course topics, specific "
    "and checkable, building blocks of the solution rather than problem-specific tricks.\n\n"
    "Reply with exactly {k} lines and nothing else. Each line starts with 'Knowledge Point: ' followed by "
    "one concept.";

const char* kGeneratePrompt =
    "You design competition mathematics problems. Connect the foundational concepts below into one new, "
    "self-contained problem whose difficulty fits the stated level.\n\n"
    "Foundational Concepts:\n{concepts}\n\n"
    "Difficulty Level: {level}\n\n"
    "First write your design reasoning (how the concepts connect, and which choices set the difficulty) "
    "between <!-- BEGIN RATIONALE --> and <!-- END RATIONALE -->. Then write only the final problem "
    "statement between <!-- BEGIN PROBLEM --> and <!-- END PROBLEM -->. The problem must have one "
    "well-defined answer.";

const char* kJudgePrompt =
    "You are a strict reviewer of competition mathematics problems. Assess the submission below.\n\n"
    "Design rationale and problem:\n{rationale_and_problem}\n\n"
    "Foundational concepts it was meant to use:\n{concepts}\n\n"
    "Target difficulty level: {level}\n\n"
    "Rate each criterion as Perfect, Acceptable or Bad, with a one-paragraph justification:\n"
    "1. FORMAT: the rationale sits between <!-- BEGIN RATIONALE --> and <!-- END RATIONALE -->, the problem "
    "between <!-- BEGIN PROBLEM --> and <!-- END PROBLEM -->.\n"
    "2. FACTUAL ACCURACY: no mathematical or logical errors in the problem or the rationale.\n"
    "3. DIFFICULTY ALIGNMENT: the problem's demands match the target level.\n"
    "4. CONCEPT COVERAGE: the problem genuinely uses the given concepts.\n"
    "5. SOLVABILITY: the problem is well posed, gives all needed information and has a valid answer.\n\n"
    "Write each as 'Rating: <Perfect|Acceptable|Bad>' followed by 'Justification: ...'.\n"
    "End with one line 'Final Judgement: <verdict>' where verdict is 'perfect' when FACTUAL ACCURACY and "
    "SOLVABILITY are Perfect, at least two other criteria are Perfect and nothing is Bad; 'bad' when any "
    "criterion is Bad; 'acceptable' otherwise. That line must be the last line of your answer.";

const char* kSolvePrompt = "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{}.";

[[noreturn]] void bad(const std::string& file, const std::string& key, const std::string& what) {
  fail("{}: {}: {}", file, key, what);
}

void check_keys(const toml::table& t, const std::set<std::string>& allowed, const std::string& file,
                const std::string& where) {
  for (auto&& [k, v] : t)
    if (!allowed.count(std::string(k.str())))
      bad(file, where.empty() ? std::string(k.str()) : where + "." + std::string(k.str()), "unknown key");
}

template <class T>
void read(const toml::table& t, const char* key, T* out, const std::string& file, const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return;
  std::string full = where.empty() ? key : where + "." + key;
  if constexpr (std::is_same_v<T, bool>) {
    if (!n->is_boolean()) bad(file, full, "expected true/false");
    *out = n->value<bool>().value();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!n->is_string()) bad(file, full, "expected a string");
    *out = n->value<std::string>().value();
  } else if constexpr (std::is_floating_point_v<T>) {
    auto v = n->value<double>();  // integers convert too
    if (!v) bad(file, full, "expected a number");
    *out = static_cast<T>(*v);
  } else {
    if (!n->is_integer()) bad(file, full, "expected an integer");
    *out = static_cast<T>(n->value<int64_t>().value());
  }
}

void read_strings(const toml::table& t, const char* key, std::vector<std::string>* out, const std::string& file,
                  const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return;
  std::string full = where.empty() ? key : where + "." + key;
  const toml::array* a = n->as_array();
  if (!a) bad(file, full, "expected an array of strings");
  out->clear();
  for (const auto& e : *a) {
    if (!e.is_string()) bad(file, full, "expected an array of strings");
    out->push_back(e.value<std::string>().value());
  }
}

const std::set<std::string> kRoleKeys = {
    "base_url",  "model",        "api_key_env",       "concurrency",   "temperature",        "top_p",
    "max_tokens", "seed",        "stop",              "timeout_s",     "connect_timeout_s",  "max_retries",
    "backoff_initial_s", "backoff_max_s", "batch_size", "name", "verify_tls", "ca_cert_path", "extra_body", "api"};

void apply_role_table(const toml::table& t, RoleConfig* r, const std::string& file, const std::string& where) {
  check_keys(t, kRoleKeys, file, where);
  read(t, "base_url", &r->endpoint.base_url, file, where);
  read(t, "model", &r->model, file, where);
  read(t, "api_key_env", &r->endpoint.api_key_env, file, where);
  read(t, "concurrency", &r->concurrency, file, where);
  read(t, "batch_size", &r->batch_size, file, where);
  read(t, "api", &r->api, file, where);
  if (r->api != "chat" && r->api != "completions")
    bad(file, where + ".api", "must be \"chat\" or \"completions\" (got \"" + r->api + "\")");
  read(t, "timeout_s", &r->endpoint.read_timeout_s, file, where);
  read(t, "connect_timeout_s", &r->endpoint.connect_timeout_s, file, where);
  read(t, "max_retries", &r->endpoint.max_retries, file, where);
  read(t, "backoff_initial_s", &r->endpoint.backoff_initial_s, file, where);
  read(t, "backoff_max_s", &r->endpoint.backoff_max_s, file, where);
  read(t, "verify_tls", &r->endpoint.verify_tls, file, where);
  read(t, "ca_cert_path", &r->endpoint.ca_cert_path, file, where);
  auto opt_double = [&](const char* key, std::optional<double>* out) {
    if (!t.get(key)) return;
    double v = 0;
    read(t, key, &v, file, where);
    *out = v;
  };
  auto opt_int = [&](const char* key, std::optional<int64_t>* out) {
    if (!t.get(key)) return;
    int64_t v = 0;
    read(t, key, &v, file, where);
    *out = v;
  };
  opt_double("temperature", &r->sampling.temperature);
  opt_double("top_p", &r->sampling.top_p);
  opt_int("max_tokens", &r->sampling.max_tokens);
  opt_int("seed", &r->sampling.seed);
  read_strings(t, "stop", &r->sampling.stop, file, where);
  if (const toml::node* n = t.get("extra_body")) {
    const toml::table* et = n->as_table();
    if (!et) bad(file, where + ".extra_body", "expected a table");
    for (auto&& [k, v] : *et) {
      std::string key(k.str());
      if (auto d = v.value<double>(); d && !v.is_boolean()) {
        if (v.is_integer()) r->sampling.extra[key] = v.value<int64_t>().value();
        else r->sampling.extra[key] = *d;
      } else if (v.is_boolean()) {
        r->sampling.extra[key] = v.value<bool>().value();
      } else if (v.is_string()) {
        r->sampling.extra[key] = v.value<std::string>().value();
      } else {
        bad(file, where + ".extra_body." + key, "expected a number, boolean or string");
      }
    }
  }
  if (r->concurrency < 1 || r->concurrency > kMaxConcurrency)
    bad(file, where + ".concurrency", fmt::format("must be between 1 and {}", kMaxConcurrency));
  if (r->batch_size < 1) bad(file, where + ".batch_size", "must be >= 1");
  if (r->endpoint.max_retries < 0) bad(file, where + ".max_retries", "must be >= 0");
}

}  // namespace

std::string fill_template(const std::string& tmpl, const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out;
  out.reserve(tmpl.size());
  size_t i = 0;
  while (i < tmpl.size()) {
    bool replaced = false;
    if (tmpl[i] == '{') {
      for (const auto& [name, value] : values) {
        if (tmpl.compare(i + 1, name.size(), name) == 0 && i + 1 + name.size() < tmpl.size() &&
            tmpl[i + 1 + name.size()] == '}') {
          out += value;
          i += name.size() + 2;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(tmpl[i++]);
  }
  return out;
}

SynthConfig default_synth_config() {
  SynthConfig c;
  c.extractor.name = "extractor";
  c.generator.name = "generator";
  c.teacher.name = "teacher";
  c.embedder.name = "embedder";
  // Reference sampling: generation and judging at temperature 0.6 (PromptCoT's scripts).
  auto reference_sampling = [](RoleConfig& r) {
    r.sampling.temperature = 0.6;
    r.sampling.top_p = 0.95;
  };
  reference_sampling(c.extractor);
  reference_sampling(c.generator);
  reference_sampling(c.teacher);
  c.extractor.sampling.max_tokens = 2048;
  c.generator.sampling.max_tokens = 4096;
  c.teacher.sampling.max_tokens = 32768;
  RoleConfig judge;
  judge.name = "judge:judge";
  judge.sampling.temperature = 0.6;
  judge.sampling.max_tokens = 4096;
  c.judges = {judge};
  c.prompts = {kConceptsPrompt, kConceptsFallbackPrompt, kGeneratePrompt, kJudgePrompt, kSolvePrompt};
  return c;
}

SynthConfig load_synth_config(const std::string& path) {
  const toml::table root = parse_toml(read_text_file(path), path);  // read errors (a directory) name the path
  SynthConfig c = default_synth_config();
  c.source = path;
  check_keys(root,
             {"seed", "max_consecutive_failures", "defaults", "roles", "concepts", "sample", "generate", "judge",
              "filter", "solve", "export", "prompts"},
             path, "");
  read(root, "seed", &c.seed, path, "");
  read(root, "max_consecutive_failures", &c.max_consecutive_failures, path, "");

  auto table_at = [&](const toml::table& t, const char* key, const std::string& where) -> const toml::table* {
    const toml::node* n = t.get(key);
    if (!n) return nullptr;
    if (!n->is_table()) bad(path, where, "expected a table");
    return n->as_table();
  };

  // [defaults] applies to every role, then [roles.<role>] overrides.
  const toml::table* defaults = table_at(root, "defaults", "defaults");
  std::vector<RoleConfig*> all = {&c.extractor, &c.generator, &c.teacher, &c.embedder};
  for (RoleConfig& j : c.judges) all.push_back(&j);
  if (defaults)
    for (RoleConfig* r : all) apply_role_table(*defaults, r, path, "defaults");
  RoleConfig judge_template = c.judges[0];
  if (const toml::table* roles = table_at(root, "roles", "roles")) {
    check_keys(*roles, {"extractor", "generator", "judges", "teacher", "embedder"}, path, "roles");
    for (auto [key, role] : {std::pair{"extractor", &c.extractor}, std::pair{"generator", &c.generator},
                             std::pair{"teacher", &c.teacher}, std::pair{"embedder", &c.embedder}}) {
      if (const toml::table* t = table_at(*roles, key, std::string("roles.") + key))
        apply_role_table(*t, role, path, std::string("roles.") + key);
    }
    if (const toml::node* jn = roles->get("judges")) {
      const toml::array* arr = jn->as_array();
      if (!arr || arr->empty()) bad(path, "roles.judges", "expected a non-empty array of tables ([[roles.judges]])");
      c.judges.clear();
      std::set<std::string> names;
      for (size_t i = 0; i < arr->size(); ++i) {
        const toml::table* t = (*arr)[i].as_table();
        std::string where = "roles.judges[" + std::to_string(i) + "]";
        if (!t) bad(path, where, "expected a table");
        RoleConfig j = judge_template;
        std::string name = "judge" + std::to_string(i);
        read(*t, "name", &name, path, where);
        if (!names.insert(name).second) bad(path, where + ".name", "duplicate judge name '" + name + "'");
        apply_role_table(*t, &j, path, where);
        j.name = "judge:" + name;
        c.judges.push_back(j);
      }
    }
  }

  if (const toml::table* t = table_at(root, "concepts", "concepts")) {
    check_keys(*t, {"inputs", "limit", "k", "min_concepts", "parse_retries"}, path, "concepts");
    read_strings(*t, "inputs", &c.seed_files, path, "concepts");
    read(*t, "limit", &c.seed_limit, path, "concepts");
    read(*t, "k", &c.num_concepts, path, "concepts");
    read(*t, "min_concepts", &c.min_concepts, path, "concepts");
    read(*t, "parse_retries", &c.concept_parse_retries, path, "concepts");
  }
  if (const toml::table* t = table_at(root, "sample", "sample")) {
    check_keys(*t, {"count", "list_size", "temperature", "levels"}, path, "sample");
    read(*t, "count", &c.sample_count, path, "sample");
    read(*t, "list_size", &c.list_size, path, "sample");
    read(*t, "temperature", &c.sample_temperature, path, "sample");
    read_strings(*t, "levels", &c.levels, path, "sample");
  }
  if (const toml::table* t = table_at(root, "generate", "generate")) {
    check_keys(*t, {"parse_retries"}, path, "generate");
    read(*t, "parse_retries", &c.generate_parse_retries, path, "generate");
  }
  if (const toml::table* t = table_at(root, "judge", "judge")) {
    check_keys(*t, {"parse_retries"}, path, "judge");
    read(*t, "parse_retries", &c.judge_parse_retries, path, "judge");
  }
  if (const toml::table* t = table_at(root, "filter", "filter")) {
    check_keys(*t,
               {"mode", "dedup", "dedup_threshold", "dedup_ngram", "num_perm", "decontaminate", "benchmarks",
                "decontam_ngram", "decontam_threshold"},
               path, "filter");
    std::string mode = "all_perfect";
    read(*t, "mode", &mode, path, "filter");
    if (mode != "all_perfect" && mode != "perfect_no_bad")
      bad(path, "filter.mode", "must be \"all_perfect\" or \"perfect_no_bad\" (got \"" + mode + "\")");
    c.only_perfect = mode == "all_perfect";
    read(*t, "dedup", &c.dedup, path, "filter");
    read(*t, "dedup_threshold", &c.dedup_options.threshold, path, "filter");
    read(*t, "dedup_ngram", &c.dedup_options.ngram, path, "filter");
    read(*t, "num_perm", &c.dedup_options.num_perm, path, "filter");
    read(*t, "decontaminate", &c.decontaminate, path, "filter");
    read_strings(*t, "benchmarks", &c.benchmark_files, path, "filter");
    read(*t, "decontam_ngram", &c.decontam_ngram, path, "filter");
    read(*t, "decontam_threshold", &c.decontam_threshold, path, "filter");
  }
  if (const toml::table* t = table_at(root, "solve", "solve")) {
    check_keys(*t, {"n", "use_n", "format_retries", "self_consistency", "consensus_threshold"}, path, "solve");
    read(*t, "use_n", &c.solve_use_n, path, "solve");
    read(*t, "n", &c.solve_n, path, "solve");
    read(*t, "format_retries", &c.solve_format_retries, path, "solve");
    read(*t, "self_consistency", &c.self_consistency, path, "solve");
    read(*t, "consensus_threshold", &c.consensus_threshold, path, "solve");
  }
  if (const toml::table* t = table_at(root, "export", "export")) {
    check_keys(*t, {"system_prompt"}, path, "export");
    read(*t, "system_prompt", &c.system_prompt, path, "export");
  }
  if (const toml::table* t = table_at(root, "prompts", "prompts")) {
    check_keys(*t, {"concepts", "concepts_fallback", "generate", "judge", "solve"}, path, "prompts");
    read(*t, "concepts", &c.prompts.concepts, path, "prompts");
    read(*t, "concepts_fallback", &c.prompts.concepts_fallback, path, "prompts");
    read(*t, "generate", &c.prompts.generate, path, "prompts");
    read(*t, "judge", &c.prompts.judge, path, "prompts");
    read(*t, "solve", &c.prompts.solve, path, "prompts");
  }

  if (c.num_concepts < 1) bad(path, "concepts.k", "must be >= 1");
  if (c.list_size < 1) bad(path, "sample.list_size", "must be >= 1");
  if (c.sample_temperature <= 0) bad(path, "sample.temperature", "must be > 0");
  if (c.levels.empty()) bad(path, "sample.levels", "must not be empty");
  if (c.solve_n < 1) bad(path, "solve.n", "must be >= 1");
  if (c.consensus_threshold <= 0 || c.consensus_threshold > 1)
    bad(path, "solve.consensus_threshold", "must be in (0, 1]");
  if (c.max_consecutive_failures < 1) bad(path, "max_consecutive_failures", "must be >= 1");
  return c;
}

}  // namespace pcm::synth
