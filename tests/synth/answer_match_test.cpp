// Self-consistency through the AnswerMatcher: pcm eval's math grader (the default) versus exact strings.
#include <fstream>
#include <thread>

#include "scripted_server.h"
#include "synth/answer_match.h"
#include "synth/pipeline.h"
#include "test_util.h"
#include "util/file.h"

namespace pcm::synth {
namespace {

TEST(AnswerMatch, ExactNormalisation) {
  ExactAnswerMatcher m;
  EXPECT_TRUE(m.same("$\\dfrac{1}{2}$", "\\frac{1}{2}"));
  EXPECT_TRUE(m.same("\\left( 1, 2 \\right).", "(1,2)"));
  EXPECT_FALSE(m.same("0.5", "\\frac{1}{2}"));
}

TEST(AnswerMatch, MathGraderIsTheDefaultAndThreadSafe) {
  auto m = default_answer_matcher();
  EXPECT_STREQ(m->name(), "math");
  EXPECT_TRUE(m->same("0.5", "\\frac{1}{2}"));
  EXPECT_TRUE(m->same("\\dfrac{1}{2}", "1/2"));
  EXPECT_FALSE(m->same("3", "4"));
  // solve calls the matcher from its worker threads.
  std::vector<std::thread> threads;
  std::atomic<int> agreed{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) agreed += m->same("2\\sqrt{2}", "\\sqrt{8}");
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(agreed.load(), 80);
}

// One problem, three samples that agree only symbolically: kept with the math grader, dropped as
// no_consensus with exact strings.
TEST(AnswerMatch, SelfConsistencyUsesTheMatcher) {
  test::ScriptedServer server([](const httplib::Request& req, httplib::Response& res) {
    int64_t seed = nlohmann::json::parse(req.body).value("seed", int64_t{0});
    const char* answers[] = {"0.5", "\\frac{1}{2}", "1/2"};
    std::string answer = answers[(seed / 3) % 3];  // format_retries = 2: sample k starts at seed 3k
    test::reply_json(res, test::chat_body({"<think>\nhalf\n</think>\n\\boxed{" + answer + "}"}));
  });
  auto run = [&](const AnswerMatcher& matcher) {
    test::TempDir dir;
    SynthConfig cfg = default_synth_config();
    cfg.teacher.endpoint.base_url = server.base_url();
    cfg.teacher.sampling.seed = 0;
    cfg.solve_n = 3;
    cfg.self_consistency = true;
    cfg.consensus_threshold = 0.6;
    RunContext ctx(cfg, dir.file("out"));
    ctx.progress = false;
    std::ofstream(ctx.path(files::kFiltered))
        << R"({"id":"s1","status":"ok","problem":"What is 1/2?","concepts":["Fractions"],"level":"AMC12"})" << "\n";
    stage_solve(ctx, matcher);
    return read_rows_sorted(ctx.path(files::kSolutions)).at(0);
  };
  nlohmann::json with_math = run(*default_answer_matcher());
  EXPECT_EQ(with_math["status"], "ok");
  EXPECT_DOUBLE_EQ(with_math["majority_share"].get<double>(), 1.0);
  EXPECT_EQ(with_math["answer_matcher"], "math");
  nlohmann::json with_exact = run(ExactAnswerMatcher());
  EXPECT_EQ(with_exact["status"], "dropped");
  EXPECT_EQ(with_exact["reason"], "no_consensus");
}

}  // namespace
}  // namespace pcm::synth
