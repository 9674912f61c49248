// End to end against the scripted OpenAI-compatible server (loopback): exact counts at every stage,
// resume after a kill with identical output, and CLI behaviour.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "io/jsonl.h"
#include "scripted_pipeline.h"
#include "synth/pipeline.h"
#include "test_util.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm::synth {
namespace {

using nlohmann::json;

std::string repo_file(const std::string& rel) { return test::testdata("../" + rel); }

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::unique_ptr<test::ScriptedPipeline> make_script() {
  auto script = std::make_unique<test::ScriptedPipeline>();
  for (const auto& row : read_jsonl(test::testdata("synth/seeds.jsonl"))) script->seeds.push_back(row["question"]);
  auto math = read_jsonl(repo_file("data/benchmarks/math500.jsonl"));
  script->duplicate_problem = trim(math[0]["problem"]);
  for (size_t i = 1; i < 200; ++i) script->distinct.push_back(trim(math[i]["problem"]));
  std::string aime = read_jsonl(repo_file("data/benchmarks/aime24.jsonl"))[3]["problem"];
  script->contaminated_problem = trim("Suppose that " + aime + " Give the exact value.");
  return script;
}

struct Fixture {
  std::unique_ptr<test::ScriptedPipeline> script = make_script();
  test::ScriptedServer server{[this](const httplib::Request& q, httplib::Response& r) { script->handle(q, r); }};
  test::TempDir dir;
  std::string config_path = dir.file("synth.toml");
  explicit Fixture(int concurrency = 4) {
    std::ofstream(config_path) << test::scripted_config(server.base_url(), test::testdata("synth/seeds.jsonl"),
                                                       repo_file("data/benchmarks/aime24.jsonl"), concurrency, 30);
  }
};

std::map<std::string, int64_t> reasons(const std::string& path) {
  std::map<std::string, int64_t> out;
  json c = stage_counts(path);
  for (const auto& [k, v] : c["reasons"].items()) out[k] = v.get<int64_t>();
  return out;
}

std::vector<json> rows(const std::string& path) { return read_rows_sorted(path); }

void run_all(const std::string& config, const std::string& out) {
  RunContext ctx(load_synth_config(config), out);
  ctx.progress = false;
  auto matcher = default_answer_matcher();
  run_pipeline(ctx, *matcher);
}

TEST(SynthPipeline, ExactCountsAtEveryStage) {
  Fixture f;
  std::string out = f.dir.file("out");
  run_all(f.config_path, out);
  auto path = [&](const char* name) { return out + "/" + name; };

  // concepts: 8 seeds, one never parseable; one recovered through Knowledge Point lines; one behind a 429.
  auto concepts = rows(path(files::kConcepts));
  ASSERT_EQ(concepts.size(), 8u);
  EXPECT_EQ(reasons(path(files::kConcepts)), (std::map<std::string, int64_t>{{"no_concepts_found", 1}}));
  std::set<std::string> distinct_concepts;
  for (const auto& r : concepts) {
    if (r["status"] != "ok") continue;
    for (const auto& c : r["concepts"]) distinct_concepts.insert(c);
    int seed = -1;
    for (size_t i = 0; i < f.script->seeds.size(); ++i)
      if (f.script->seeds[i] == r["problem"]) seed = static_cast<int>(i);
    EXPECT_EQ(r["concepts"].get<std::vector<std::string>>(), test::ScriptedPipeline::seed_concepts(seed));
    EXPECT_EQ(r["attempts"], seed == test::ScriptedPipeline::kFallbackSeed ? 2 : 1);
  }
  // embed: every distinct concept once (the first request's connection was dropped and retried).
  EXPECT_EQ(rows(path(files::kEmbeddings)).size(), distinct_concepts.size());

  // sample: 30 distinct lists of 5.
  auto samples = rows(path(files::kSamples));
  ASSERT_EQ(samples.size(), 30u);
  std::set<std::string> keys;
  for (const auto& s : samples) {
    EXPECT_EQ(s["concepts"].size(), 5u);
    keys.insert(s["concepts"].dump());
  }
  EXPECT_EQ(keys.size(), 30u);

  // generate: classes 0/1 are malformed.
  std::map<std::string, int64_t> want_gen;
  for (const auto& s : samples) {
    int cls = test::ScriptedPipeline::generate_class(s["concepts"].get<std::vector<std::string>>());
    if (cls == 0) want_gen["missing_rationale"]++;
    if (cls == 1) want_gen["unclosed_problem"]++;
  }
  auto problems = rows(path(files::kProblems));
  ASSERT_EQ(problems.size(), 30u);
  EXPECT_EQ(reasons(path(files::kProblems)), want_gen);
  ASSERT_FALSE(want_gen.empty());

  // judge: two judges per well-formed problem; judge b never parses class 1.
  std::vector<json> ok_problems;
  for (const auto& p : problems)
    if (p["status"] == "ok") ok_problems.push_back(p);
  std::map<std::string, int64_t> want_judge;
  for (const auto& p : ok_problems)
    if (f.script->judge_class(p["problem"]) == 1) want_judge["missing_final_judgement"]++;
  EXPECT_EQ(rows(path(files::kJudgements)).size(), 2 * ok_problems.size());
  EXPECT_EQ(reasons(path(files::kJudgements)), want_judge);

  // filter: verdicts, then contamination, then exact/near duplicates in id order.
  std::map<std::string, int64_t> want_filter;
  std::set<std::string> seen;
  std::vector<std::string> kept_problems;
  for (const auto& p : ok_problems) {  // already in id order
    std::string text = p["problem"];
    int jc = f.script->judge_class(text);
    if (jc == 0) want_filter["rejected_by_judges"]++;
    else if (jc == 1) want_filter["judge_unparseable"]++;
    else if (text == f.script->contaminated_problem) want_filter["benchmark_contamination"]++;
    else if (!seen.insert(text).second) want_filter["near_duplicate"]++;
    else kept_problems.push_back(text);
  }
  auto filtered = rows(path(files::kFiltered));
  EXPECT_EQ(filtered.size(), ok_problems.size());
  EXPECT_EQ(reasons(path(files::kFiltered)), want_filter);
  for (const auto& r : filtered)
    if (r.value("reason", "") == "benchmark_contamination") {
      EXPECT_EQ(r["benchmark"], "aime24.jsonl:4");
    }

  // solve: n = 3 with self-consistency 0.6.
  std::map<std::string, int64_t> want_solve;
  int64_t want_train = 0;
  for (const auto& text : kept_problems) {
    int tc = test::ScriptedPipeline::teacher_class(text);
    if (tc == 1) want_solve["no_consensus"]++;
    else if (tc == 2) want_solve["no_valid_solution"]++;
    else ++want_train;
  }
  EXPECT_EQ(rows(path(files::kSolutions)).size(), kept_problems.size());
  EXPECT_EQ(reasons(path(files::kSolutions)), want_solve);
  ASSERT_GT(want_train, 0);

  // export: one messages row per kept solution, in <think> format, and the data card agrees.
  auto train = read_jsonl(path(files::kTrain));
  EXPECT_EQ(static_cast<int64_t>(train.size()), want_train);
  for (const auto& t : train) {
    ASSERT_EQ(t["messages"].size(), 2u);
    EXPECT_EQ(t["messages"][0]["role"], "user");
    std::string answer = t["messages"][1]["content"];
    EXPECT_EQ(answer.rfind("<think>", 0), 0u);
    EXPECT_NE(answer.find("\\boxed{"), std::string::npos);
  }
  json card = read_json_file(path(files::kDataCard));
  EXPECT_EQ(card["rows"], want_train);
  EXPECT_EQ(card["stages"]["concepts"]["dropped"], 1);
  EXPECT_GT(card["concept_coverage"]["distinct_concepts_used"].get<int>(), 0);
  EXPECT_EQ(card["assistant_completion_tokens"]["count"], want_train);
  // judge-a rates "acceptable" exactly for judge class 0; every parsed verdict is counted.
  int64_t class0 = 0;
  for (const auto& p : ok_problems) class0 += f.script->judge_class(p["problem"]) == 0;
  EXPECT_EQ(card["judge_ratings"]["a"]["final"].value("acceptable", 0), class0);
  EXPECT_EQ(card["judge_ratings"]["a"]["final"].value("perfect", 0), static_cast<int64_t>(ok_problems.size()) - class0);
  EXPECT_EQ(card["judge_ratings"]["a"]["solvability"].value("perfect", 0), static_cast<int64_t>(ok_problems.size()));
  json stats = read_json_file(path(files::kStats));
  for (const char* role : {"extractor", "embedder", "generator", "judge:a", "judge:b", "teacher"})
    EXPECT_GT(stats["tokens"][role]["total_tokens"].get<int64_t>(), 0) << role;
  EXPECT_EQ(stats["tokens"]["extractor"]["retries"], 1);  // the 429 (re-asks for unparseable answers are new requests)
  EXPECT_EQ(stats["tokens"]["embedder"]["retries"], 1);   // the dropped connection
}

TEST(SynthPipeline, RerunningFinishedStagesChangesNothingAndSendsNoRequests) {
  Fixture f;
  std::string out = f.dir.file("out");
  run_all(f.config_path, out);
  auto st = test::run_pcm("synth status --out " + out);
  EXPECT_EQ(st.exit_code, 0) << st.all();
  EXPECT_NE(st.out.find("no_concepts_found 1"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("teacher"), std::string::npos) << st.out;
  std::string train = read_text_file(out + "/" + files::kTrain);
  std::string solutions = read_text_file(out + "/" + files::kSolutions);
  int before = f.script->requests.load();
  run_all(f.config_path, out);
  EXPECT_EQ(f.script->requests.load(), before);
  EXPECT_EQ(read_text_file(out + "/" + files::kTrain), train);
  EXPECT_EQ(read_text_file(out + "/" + files::kSolutions), solutions);
}

// Starts `pcm synth run` in the background; returns its pid.
pid_t spawn_pcm(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = freopen(log.c_str(), "w", stderr);
    (void)f;
    std::vector<char*> argv;
    std::string bin = test::pcm_binary();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

TEST(SynthPipeline, KillDuringSolveThenResumeGivesIdenticalOutput) {
  // Reference: an uninterrupted run.
  Fixture ref;
  std::string ref_out = ref.dir.file("out");
  run_all(ref.config_path, ref_out);

  Fixture f;
  std::string out = f.dir.file("out");
  std::atomic<pid_t> child{0};
  f.script->on_solve_request = [&](int n) {
    if (n == 7 && child.load() > 0) kill(child.load(), SIGKILL);  // mid-stage, with requests in flight
  };
  child = spawn_pcm({"synth", "run", "--config", f.config_path, "--out", out}, f.dir.file("log1"));
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << read_text_file(f.dir.file("log1"));
  size_t partial = rows(out + "/" + files::kSolutions).size();
  size_t total = rows(ref_out + "/" + files::kSolutions).size();
  EXPECT_LT(partial, total);
  EXPECT_FALSE(file_exists(out + "/" + files::kTrain));

  f.script->on_solve_request = nullptr;
  int requests_before = f.script->solve_requests.load();
  child = spawn_pcm({"synth", "run", "--config", f.config_path, "--out", out, "--quiet"}, f.dir.file("log2"));
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text_file(f.dir.file("log2"));
  // Only unfinished items were solved again (3 samples each, a re-ask for some).
  EXPECT_LE(f.script->solve_requests.load() - requests_before, static_cast<int>((total - partial) * 3 * 2));

  EXPECT_EQ(read_text_file(out + "/" + files::kTrain), read_text_file(ref_out + "/" + files::kTrain));
  for (const char* name : {files::kConcepts, files::kEmbeddings, files::kSamples, files::kProblems, files::kJudgements,
                           files::kFiltered, files::kSolutions}) {
    auto a = rows(out + "/" + name), b = rows(ref_out + "/" + name);
    ASSERT_EQ(a.size(), b.size()) << name;
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << name << " row " << i;
  }
}

TEST(SynthPipeline, CtrlCFinishesInFlightItemsThenResumes) {
  Fixture ref;
  std::string ref_out = ref.dir.file("out");
  run_all(ref.config_path, ref_out);

  Fixture f;
  std::string out = f.dir.file("out");
  std::atomic<pid_t> child{0};
  std::string log_path = f.dir.file("log1");
  const std::string notice = "interrupt: finishing the items in flight";
  f.script->on_solve_request = [&](int n) {
    if (n < 4 || child.load() <= 0) return;
    if (n == 4) kill(child.load(), SIGINT);
    // Hold this and every later answer until pcm says it took the signal: on a loaded machine the woken thread
    // may wait for a core while the other workers finish their items and start new ones.
    for (int i = 0; i < 3000 && read_text_file(log_path).find(notice) == std::string::npos; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  child = spawn_pcm({"synth", "run", "--config", f.config_path, "--out", out}, log_path);
  int status = 0;
  waitpid(child, &status, 0);
  std::string log = read_text_file(f.dir.file("log1"));
  ASSERT_TRUE(WIFEXITED(status)) << log;
  EXPECT_EQ(WEXITSTATUS(status), 130) << log;
  EXPECT_NE(log.find(notice), std::string::npos) << log;
  EXPECT_NE(log.find("solve: interrupted; finished items are saved, rerun to resume"), std::string::npos) << log;
  // Items in flight when the signal came were finished and written, not lost.
  size_t partial = rows(out + "/" + files::kSolutions).size();
  EXPECT_GT(partial, 0u);
  EXPECT_LT(partial, rows(ref_out + "/" + files::kSolutions).size());

  f.script->on_solve_request = nullptr;
  auto r = test::run_pcm("synth run --quiet --config " + f.config_path + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_EQ(read_text_file(out + "/" + files::kTrain), read_text_file(ref_out + "/" + files::kTrain));
}

TEST(SynthPipeline, EndpointDownStopsWithAClearErrorAndResumesLater) {
  Fixture f;
  std::string config = read_text_file(f.config_path);
  int dead_port;
  {
    test::ScriptedServer gone([](const httplib::Request&, httplib::Response&) {});
    dead_port = gone.port();
  }
  // The teacher points at a closed port: everything up to solve works, solve gives up.
  std::string broken = config;
  std::string teacher = "[roles.teacher]\nmodel = \"teacher\"\n";
  broken.replace(broken.find(teacher), teacher.size(),
                 teacher + "base_url = \"http://127.0.0.1:" + std::to_string(dead_port) + "/v1\"\nmax_retries = 1\n");
  std::ofstream(f.dir.file("broken.toml")) << broken;
  std::string out = f.dir.file("out");
  auto r = test::run_pcm("synth run --quiet --config " + f.dir.file("broken.toml") + " --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.all();
  EXPECT_NE(r.err.find("solve"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rerun"), std::string::npos) << r.err;
  r = test::run_pcm("synth solve --config " + f.dir.file("broken.toml") + " --out " + out);
  EXPECT_NE(r.err.find(" failed "), std::string::npos) << r.err;  // the progress line counts failed items
  EXPECT_FALSE(file_exists(out + "/" + files::kTrain));
  // Same directory, working teacher: completes.
  r = test::run_pcm("synth run --quiet --config " + f.config_path + " --out " + out);
  EXPECT_EQ(r.exit_code, 0) << r.all();
  EXPECT_TRUE(file_exists(out + "/" + files::kTrain));
}

TEST(SynthPipeline, SolveWithNChoicesPerRequestGivesTheSameTrainingData) {
  Fixture ref;
  std::string ref_out = ref.dir.file("out");
  run_all(ref.config_path, ref_out);
  int sequential_requests = ref.script->solve_requests.load();

  Fixture f;
  std::string config = read_text_file(f.config_path);
  config.replace(config.find("[solve]\n"), 8, "[solve]\nuse_n = true\n");
  std::ofstream(f.config_path) << config;
  std::string out = f.dir.file("out");
  run_all(f.config_path, out);
  EXPECT_EQ(read_text_file(out + "/" + files::kTrain), read_text_file(ref_out + "/" + files::kTrain));
  EXPECT_EQ(reasons(out + "/" + files::kSolutions), reasons(ref_out + "/" + files::kSolutions));
  // One request per problem plus the re-asks, instead of n per problem plus the re-asks.
  size_t problems = rows(out + "/" + files::kSolutions).size();
  EXPECT_EQ(f.script->solve_requests.load(), sequential_requests - static_cast<int>(2 * problems));
}

TEST(SynthPipeline, OneRunPerDirectory) {
  test::TempDir dir;
  RunContext first(default_synth_config(), dir.file("out"));
  EXPECT_THROW(RunContext(default_synth_config(), dir.file("out")), Error);
  auto r = test::run_pcm("synth sample --out " + dir.file("out"));
  EXPECT_NE(r.err.find("another pcm synth run is using this directory"), std::string::npos) << r.err;
}

TEST(SynthCli, SingleStagesAndErrors) {
  Fixture f;
  std::string out = f.dir.file("out");
  auto r = test::run_pcm("synth generate --config " + f.config_path + " --out " + out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("run `pcm synth sample` first"), std::string::npos) << r.err;
  r = test::run_pcm("synth concepts --config " + f.config_path + " --out " + out);
  EXPECT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.err.find("[concepts] 8/8"), std::string::npos) << r.err;
  EXPECT_EQ(rows(out + "/" + files::kConcepts).size(), 8u);
  // A hand-edited sample with the wrong shape: the error names the file, the row and the field.
  std::ofstream(out + "/" + files::kSamples) << R"({"id":"s1","status":"ok","concepts":"Algebra","level":"AIME"})" << "\n";
  r = test::run_pcm("synth generate --config " + f.config_path + " --out " + out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("samples.jsonl: row \"s1\": field \"concepts\" must be a list of strings"), std::string::npos) << r.err;
  // An id of another type: the file, the line and the field.
  std::ofstream(out + "/" + files::kSamples) << R"({"id":5,"status":"ok","concepts":["Algebra"],"level":"AIME"})" << "\n";
  r = test::run_pcm("synth generate --config " + f.config_path + " --out " + out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("samples.jsonl:1: row has no string \"id\""), std::string::npos) << r.err;
  std::ofstream(out + "/" + files::kSamples) << "{\"id\": \"s1\", broken\n{}\n";
  r = test::run_pcm("synth generate --config " + f.config_path + " --out " + out);
  EXPECT_NE(r.err.find("samples.jsonl:1: malformed JSON"), std::string::npos) << r.err;
  std::ofstream(f.dir.file("typo.toml")) << "[sample]\ncuont = 3\n";
  r = test::run_pcm("synth sample --config " + f.dir.file("typo.toml") + " --out " + out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("sample.cuont: unknown key"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pcm::synth
