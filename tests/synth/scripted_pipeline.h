// A scripted OpenAI-compatible server that plays every synth role deterministically: each answer is a pure
// function of the request (prompt, model, seed), so runs are reproducible whatever the concurrency, and
// the classes of answers (good, garbage, broken tags, duplicates, contaminated problems, unparseable
// judges, inconsistent teachers) are known to the test, which derives the exact expected counts.
// Transport failures are injected once per key: a 429 with Retry-After, a 500, a dropped connection.
// Shared by tests/synth and bench/synth_overhead.
#pragma once
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "scripted_server.h"
#include "synth/run_context.h"

namespace pcm::test {

inline uint64_t script_hash(const std::string& text) {
  return std::stoull(pcm::synth::stable_id("", text), nullptr, 16);
}

// Concept names the extractor hands out (real curriculum topics).
inline const std::vector<std::string>& script_concepts() {
  static const std::vector<std::string> pool = {
      "Ratios and proportional reasoning", "Linear equations in one variable", "Percent change",
      "Arithmetic sequences",            "Area of triangles",               "Prime factorization",
      "Modular arithmetic",              "Counting principles",             "Probability of independent events",
      "Quadratic equations",             "Pythagorean theorem",             "Greatest common divisor"};
  return pool;
}

struct ScriptedPipeline {
  std::vector<std::string> seeds;        // seed problem texts, in file order
  std::vector<std::string> distinct;     // real problems handed out by the generator (MATH-500)
  std::string duplicate_problem;         // handed to every class-2 sample (near-duplicates)
  std::string contaminated_problem;      // an AIME 2024 problem, lightly edited

  // Classes (the test derives expected counts from these).
  static constexpr int kGarbageSeed = 6;    // concepts: never parseable
  static constexpr int kFallbackSeed = 5;   // concepts: garbage, then Knowledge Point lines
  static constexpr int kRateLimitedSeed = 7;  // concepts: a 429 first
  static std::vector<std::string> seed_concepts(int seed) {
    const auto& pool = script_concepts();
    std::vector<std::string> out;
    for (int off : {0, 1, 3, 6, 8}) out.push_back(pool[(seed + off) % pool.size()]);
    return out;
  }
  // generate: 0 missing tags, 1 unclosed problem, 2 duplicate, 3 contaminated, else distinct[h % size]
  static int generate_class(const std::vector<std::string>& concepts) {
    std::string key;
    for (const auto& c : concepts) key += c + "\n";
    return static_cast<int>(script_hash(key) % 8);
  }
  std::string generated_problem(const std::vector<std::string>& concepts) const {
    int cls = generate_class(concepts);
    if (cls == 2) return duplicate_problem;
    if (cls == 3) return contaminated_problem;
    std::string key;
    for (const auto& c : concepts) key += c + "\n";
    return distinct[script_hash(key + "pick") % distinct.size()];
  }
  // judge: 0 a=acceptable b=perfect, 1 b never parseable, 2 b parseable on the re-ask, else both perfect.
  int judge_class(const std::string& problem) const {
    if (problem == duplicate_problem || problem == contaminated_problem) return 3;
    return static_cast<int>(script_hash(problem) % 6);
  }
  // teacher: 0 first attempt of sample 0 unclosed then fine, 1 inconsistent answers, 2 never valid, else fine.
  static int teacher_class(const std::string& problem) { return static_cast<int>(script_hash(problem + "#t") % 5); }

  // Observability and hooks.
  std::atomic<int> requests{0}, solve_requests{0};
  std::function<void(int)> on_solve_request;  // called with the running count of teacher requests
  std::mutex mutex;
  std::map<std::string, int> once;  // keys that already got their injected failure

  bool first_time(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex);
    return once[key]++ == 0;
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    ++requests;
    nlohmann::json body = nlohmann::json::parse(req.body);
    if (req.path == "/v1/embeddings") return embeddings(body, res);
    std::string model = body.value("model", "");
    std::string prompt = body["messages"].back()["content"];
    int64_t seed = body.value("seed", int64_t{100});
    std::string text;
    if (model == "extractor") {
      text = extract(prompt, res);
      if (text.empty()) return;  // a failure was injected
    } else if (model == "generator") {
      text = generate(prompt);
    } else if (model == "judge-a" || model == "judge-b") {
      text = judge(model, prompt, seed, res);
      if (text.empty()) return;
    } else if (model == "teacher") {
      int count = ++solve_requests;
      if (on_solve_request) on_solve_request(count);
      // With "n", choice k is what sample k's first attempt would have been (seed + 2k: format_retries = 1).
      std::vector<std::string> texts;
      int n = body.value("n", 1);
      for (int k = 0; k < n; ++k) texts.push_back(solve(prompt, seed + 2 * k));
      size_t chars = 0;
      for (const auto& t : texts) chars += t.size();
      reply_json(res, chat_body(texts, static_cast<int>(prompt.size() / 4), static_cast<int>(chars / 4)));
      return;
    } else {
      reply_json(res, R"({"error":{"message":"unknown model"}})", 404);
      return;
    }
    reply_json(res, chat_body({text}, static_cast<int>(prompt.size() / 4), static_cast<int>(text.size() / 4)));
  }

  std::string extract(const std::string& prompt, httplib::Response& res) {
    int seed = -1;
    for (size_t i = 0; i < seeds.size(); ++i)
      if (prompt.find(seeds[i]) != std::string::npos) seed = static_cast<int>(i);
    if (seed < 0) return "I do not see a problem.";
    if (seed == kRateLimitedSeed && first_time("429")) {
      res.set_header("Retry-After", "0");
      reply_json(res, R"({"error":{"message":"rate limited"}})", 429);
      return "";
    }
    bool fallback_prompt = prompt.find("Knowledge Point: ") != std::string::npos;
    auto concepts = seed_concepts(seed);
    if (seed == kGarbageSeed) return "The concepts here are hard to name; it is mostly arithmetic.";
    if (seed == kFallbackSeed && !fallback_prompt) return "Concepts: ratios, equations (see above) [incomplete";
    if (fallback_prompt) {
      std::string out;
      for (const auto& c : concepts) out += "Knowledge Point: " + c + "\n";
      return out;
    }
    std::string out = "Let me analyse the problem step by step [it involves rates].\n```python\n[\n";
    for (const auto& c : concepts) out += "    \"" + c + "\",\n";
    return out + "]\n```";
  }

  void embeddings(const nlohmann::json& body, httplib::Response& res) {
    if (first_time("drop")) {  // the first embeddings request loses its connection
      drop_connection(res);
      return;
    }
    nlohmann::json data = nlohmann::json::array();
    int tokens = 0;
    for (size_t i = 0; i < body["input"].size(); ++i) {
      std::string s = body["input"][i];
      uint64_t h = script_hash(s);
      std::vector<float> v(8);
      for (int d = 0; d < 8; ++d) v[d] = static_cast<float>((h >> (d * 8)) & 0xff) / 255.0f - 0.5f;
      data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", v}});
      tokens += static_cast<int>(s.size() / 4);
    }
    reply_json(res, nlohmann::json{{"object", "list"}, {"data", data}, {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}}.dump());
  }

  static std::vector<std::string> concepts_in(const std::string& prompt, const std::string& after, const std::string& until) {
    std::vector<std::string> out;
    size_t a = prompt.find(after), b = prompt.find(until);
    if (a == std::string::npos || b == std::string::npos) return out;
    std::string block = prompt.substr(a + after.size(), b - a - after.size());
    size_t start = 0;
    while (start < block.size()) {
      size_t end = block.find('\n', start);
      if (end == std::string::npos) end = block.size();
      std::string line = block.substr(start, end - start);
      size_t dot = line.find(". ");
      if (!line.empty() && line[0] == '-') out.push_back(line.substr(2));
      else if (dot != std::string::npos && dot < 4) out.push_back(line.substr(dot + 2));
      start = end + 1;
    }
    return out;
  }

  std::string generate(const std::string& prompt) {
    auto concepts = concepts_in(prompt, "Foundational Concepts:\n", "\n\nDifficulty Level:");
    int cls = generate_class(concepts);
    if (cls == 0) return "Here is a problem that combines them: find the value of x.";
    std::string rationale = "<!-- BEGIN RATIONALE -->\nCombine " + std::to_string(concepts.size()) +
                            " concepts into one question.\n<!-- END RATIONALE -->\n";
    if (cls == 1) return rationale + "<!-- BEGIN PROBLEM -->\nA problem whose end tag never comes";
    return rationale + "<!-- BEGIN PROBLEM -->\n" + generated_problem(concepts) + "\n<!-- END PROBLEM -->";
  }

  std::string judge(const std::string& model, const std::string& prompt, int64_t seed, httplib::Response& res) {
    size_t a = prompt.find("<!-- BEGIN PROBLEM -->\n"), b = prompt.find("\n<!-- END PROBLEM -->");
    std::string problem = a == std::string::npos || b == std::string::npos ? "" : prompt.substr(a + 23, b - a - 23);
    int cls = judge_class(problem);
    if (model == "judge-a" && cls == 5 && first_time("500:" + problem)) {
      reply_json(res, "internal error", 500);
      return "";
    }
    auto verdict = [](const char* v) {
      return std::string("1. FORMAT\nRating: Perfect\nJustification: tagged.\n2. FACTUAL ACCURACY\nRating: Perfect\n") +
             "3. DIFFICULTY ALIGNMENT\nRating: " + (std::string(v) == "perfect" ? "Perfect" : "Acceptable") +
             "\n4. CONCEPT COVERAGE\nRating: Perfect\n5. SOLVABILITY\nRating: Perfect\n\nFinal Judgement: " + v;
    };
    if (model == "judge-b" && (cls == 1 || (cls == 2 && seed == 100))) return "This problem looks fine to me overall.";
    if (model == "judge-a" && cls == 0) return verdict("acceptable");
    return verdict("perfect");
  }

  std::string solve(const std::string& prompt, int64_t seed) {
    std::string problem = prompt.substr(0, prompt.find("\n\nPlease reason step by step"));
    int cls = teacher_class(problem);
    int64_t sample = (seed - 100) / 2, attempt = (seed - 100) % 2;  // format_retries = 1
    if (cls == 2) return "The answer is \\boxed{3}.";
    if (cls == 0 && sample == 0 && attempt == 0) return "<think>\nThis goes on and on";
    std::string answer = cls == 1 ? std::to_string(10 + sample) : std::to_string(script_hash(problem) % 97);
    return "<think>\nWork through it carefully.\n</think>\n\nThe answer is $\\boxed{" + answer + "}$.";
  }
};

// The TOML config the tests and the benchmark run with against `base_url`.
inline std::string scripted_config(const std::string& base_url, const std::string& seeds_file,
                                   const std::string& benchmark_file, int concurrency, int64_t samples) {
  std::string role_common = "base_url = \"" + base_url + "\"\nseed = 100\nconcurrency = " + std::to_string(concurrency) +
                            "\nmax_retries = 3\nbackoff_initial_s = 0.001\nbackoff_max_s = 0.01\ntimeout_s = 30\n";
  return "seed = 7\n"
         "[defaults]\n" + role_common +
         "[roles.extractor]\nmodel = \"extractor\"\n"
         "[roles.generator]\nmodel = \"generator\"\n"
         "[roles.teacher]\nmodel = \"teacher\"\n"
         "[roles.embedder]\nmodel = \"embedder\"\nbatch_size = 4\n"
         "[[roles.judges]]\nname = \"a\"\nmodel = \"judge-a\"\n"
         "[[roles.judges]]\nname = \"b\"\nmodel = \"judge-b\"\n"
         "[concepts]\ninputs = [\"" + seeds_file + "\"]\nk = 5\nparse_retries = 1\n"
         "[sample]\ncount = " + std::to_string(samples) + "\n"
         "[judge]\nparse_retries = 1\n"
         "[filter]\nmode = \"all_perfect\"\nbenchmarks = [\"" + benchmark_file + "\"]\n"
         "[solve]\nn = 3\nformat_retries = 1\nself_consistency = true\nconsensus_threshold = 0.6\n";
}

}  // namespace pcm::test
