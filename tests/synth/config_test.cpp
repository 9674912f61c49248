#include "synth/config.h"

#include <fstream>

#include "test_util.h"

namespace pcm::synth {
namespace {

std::string write(const test::TempDir& dir, const std::string& text) {
  std::string path = dir.file("c.toml");
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::string& path) {
  try {
    load_synth_config(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SynthConfig, ShippedConfigEqualsTheDefaults) {
  SynthConfig c = load_synth_config(test::testdata("../configs/synth.toml"));
  SynthConfig d = default_synth_config();
  EXPECT_EQ(c.extractor.endpoint.base_url, "http://127.0.0.1:8080/v1");
  EXPECT_EQ(c.judges.size(), 1u);
  EXPECT_EQ(c.judges[0].name, "judge:judge0");
  EXPECT_EQ(c.levels, d.levels);
  EXPECT_EQ(c.benchmark_files, d.benchmark_files);
  EXPECT_EQ(c.sample_count, d.sample_count);
  EXPECT_DOUBLE_EQ(c.sample_temperature, 0.2);
  EXPECT_EQ(c.teacher.sampling.max_tokens, 32768);
  EXPECT_EQ(c.embedder.batch_size, 32);
  EXPECT_TRUE(c.only_perfect);
}

TEST(SynthConfig, DefaultsThenRoleOverridesAndJudges) {
  test::TempDir dir;
  SynthConfig c = load_synth_config(write(dir, R"(
[defaults]
base_url = "https://api.example.com/v1"
api_key_env = "HOME"
concurrency = 3
[roles.teacher]
model = "big"
concurrency = 16
extra_body = { top_k = 20, repetition_penalty = 1.05 }
[[roles.judges]]
name = "a"
model = "j1"
[[roles.judges]]
model = "j2"
[filter]
mode = "perfect_no_bad"
)"));
  EXPECT_EQ(c.extractor.endpoint.base_url, "https://api.example.com/v1");
  EXPECT_EQ(c.extractor.concurrency, 3);
  EXPECT_EQ(c.teacher.concurrency, 16);
  EXPECT_EQ(c.teacher.model, "big");
  EXPECT_EQ(c.teacher.sampling.extra["top_k"], 20);
  EXPECT_DOUBLE_EQ(c.teacher.sampling.extra["repetition_penalty"].get<double>(), 1.05);
  ASSERT_EQ(c.judges.size(), 2u);
  EXPECT_EQ(c.judges[0].name, "judge:a");
  EXPECT_EQ(c.judges[1].name, "judge:judge1");
  EXPECT_EQ(c.judges[1].endpoint.base_url, "https://api.example.com/v1");
  EXPECT_EQ(c.judges[1].concurrency, 3);
  EXPECT_FALSE(c.only_perfect);
}

TEST(SynthConfig, ErrorsNameFileAndKey) {
  test::TempDir dir;
  std::string e;
  EXPECT_NE(error_of(write(dir, "[sample]\ncount = \"many\"\n")).find("sample.count: expected an integer"), std::string::npos);
  EXPECT_NE(error_of(write(dir, "[roles.teacher]\ntemprature = 0.6\n")).find("roles.teacher.temprature: unknown key"), std::string::npos);
  EXPECT_NE(error_of(write(dir, "[filter]\nmode = \"best\"\n")).find("filter.mode"), std::string::npos);
  EXPECT_NE(error_of(write(dir, "[[roles.judges]]\nname = \"x\"\n[[roles.judges]]\nname = \"x\"\n")).find("duplicate judge"), std::string::npos);
  EXPECT_NE(error_of(write(dir, "[solve]\nn = 0\n")).find("solve.n"), std::string::npos);
  // a thread per request in flight: past 1024 is refused, naming the role
  e = error_of(write(dir, "[roles.teacher]\nconcurrency = 100000\n"));
  EXPECT_NE(e.find("roles.teacher.concurrency: must be between 1 and 1024"), std::string::npos) << e;
  e = error_of(write(dir, "seed = [1,\n"));
  EXPECT_NE(e.find("c.toml:"), std::string::npos) << e;
}

TEST(SynthConfig, FillTemplate) {
  EXPECT_EQ(fill_template("{problem} has {k} and {unknown} \\boxed{}", {{"problem", "P"}, {"k", "5"}}),
            "P has 5 and {unknown} \\boxed{}");
}

}  // namespace
}  // namespace pcm::synth
