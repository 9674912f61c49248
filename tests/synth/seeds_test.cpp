#include <filesystem>
#include <fstream>

#include "synth/pipeline.h"
#include "test_util.h"

namespace pcm::synth {
namespace {

TEST(SeedProblems, FilesAndDirectoriesDeduplicatedAndLimited) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.file("seeds"));
  std::filesystem::copy_file(test::testdata("synth/seeds.jsonl"), dir.file("seeds/a.jsonl"));
  // A second file in the MATH layout, repeating one GSM8K question.
  std::string first_question;
  {
    std::ifstream in(test::testdata("synth/seeds.jsonl"));
    std::string line;
    std::getline(in, line);
    first_question = nlohmann::json::parse(line)["question"];
  }
  std::ofstream(dir.file("seeds/b.jsonl")) << nlohmann::json{{"problem", "Find $x$ if $2x = 6$."}}.dump() << "\n"
                                           << nlohmann::json{{"problem", first_question}}.dump() << "\n";
  std::ofstream(dir.file("seeds/notes.txt")) << "ignored";
  auto seeds = read_seed_problems({dir.file("seeds")}, 0);
  ASSERT_EQ(seeds.size(), 9u);  // 8 + 1 new; the repeat is counted once
  EXPECT_EQ(seeds.back().text, "Find $x$ if $2x = 6$.");
  EXPECT_EQ(seeds.back().source, dir.file("seeds/b.jsonl") + ":1");
  EXPECT_EQ(read_seed_problems({dir.file("seeds")}, 3).size(), 3u);
  // Stable ids: the same text gives the same id whichever file it came from.
  EXPECT_EQ(seeds[0].id, stable_id("c", first_question));

  std::ofstream(dir.file("bad.jsonl")) << "{\"text\": \"no problem field\"}\n";
  try {
    read_seed_problems({dir.file("bad.jsonl")}, 0);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:1: no string \"problem\" or \"question\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_seed_problems({dir.file("missing.jsonl")}, 0), Error);
  EXPECT_THROW(read_seed_problems({}, 0), Error);
}

}  // namespace
}  // namespace pcm::synth
