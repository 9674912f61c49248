// The README's first command path on the shipped model (models/pcm-mini): found without --model, the
// chat prompt tokenizes to the recorded ids, greedy decoding gives the recorded 16 ids, and the text
// path streams the recorded text with a tokens/s line. When the shipped model changes, re-record with
// scripts/pcm-mini/record_ci_ids.sh (the test names the file and the sha256 it was recorded for).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace pcm {
namespace {

std::string shipped_dir() { return test::testdata("../models/pcm-mini"); }

nlohmann::json recorded() {
  std::ifstream f(test::testdata("pcm-mini/greedy16.json"));
  EXPECT_TRUE(f.good()) << "missing testdata/pcm-mini/greedy16.json: run scripts/pcm-mini/record_ci_ids.sh";
  return nlohmann::json::parse(f);
}

std::string ids_csv(const nlohmann::json& ids) {
  std::string s;
  for (const auto& id : ids) s += fmt::format("{}{}", s.empty() ? "" : ",", id.get<int>());
  return s;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string rstrip_newlines(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// The default model is models/pcm-mini next to the build dir or in the source tree; PCM_MODEL must not
// redirect it during the test.
const char* kNoEnv = "env -u PCM_MODEL ";

TEST(ShippedModel, IsTheRecordedOne) {
  ASSERT_TRUE(std::filesystem::exists(shipped_dir() + "/model.safetensors"));
  auto rec = recorded();
  auto r = test::run_command("sha256sum " + shell_quote(shipped_dir() + "/model.safetensors"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.substr(0, 64), rec["model_safetensors_sha256"].get<std::string>())
      << "models/pcm-mini changed: re-record with scripts/pcm-mini/record_ci_ids.sh";
}

TEST(ShippedModel, GreedyIdsWithoutModelFlag) {
  auto rec = recorded();
  // Tokenizer: the rendered chat prompt gives the recorded ids.
  auto tok = test::run_command(kNoEnv + test::pcm_binary() + " tokenize --text " +
                               shell_quote(rec["rendered_prompt"].get<std::string>()));
  ASSERT_EQ(tok.exit_code, 0) << tok.err;
  EXPECT_EQ(rstrip_newlines(tok.out), ids_csv(rec["prompt_ids"]));
  // Model: greedy decoding from those ids, no --model.
  auto gen = test::run_command(kNoEnv + test::pcm_binary() + " generate --prompt-ids " + ids_csv(rec["prompt_ids"]) +
                               " --max-new-tokens 16 --temperature 0 --ignore-eos --threads 1");
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_EQ(rstrip_newlines(gen.out), ids_csv(rec["generated_ids"]));
}

TEST(ShippedModel, ReadmeCommandStreamsTextWithSpeed) {
  auto rec = recorded();
  auto r = test::run_command(kNoEnv + test::pcm_binary() + " generate --chat --prompt " +
                             shell_quote(rec["question"].get<std::string>()) +
                             " --max-new-tokens 16 --temperature 0 --ignore-eos --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(rstrip_newlines(r.out), rec["generated_text"].get<std::string>());
  EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("generated 16 tokens"), std::string::npos) << r.err;
}

TEST(ShippedModel, PcmModelEnvironmentVariable) {
  auto rec = recorded();
  const std::string args = " generate --prompt-ids " + ids_csv(rec["prompt_ids"]) +
                           " --max-new-tokens 2 --temperature 0 --ignore-eos --threads 1";
  auto ok = test::run_command("PCM_MODEL=" + shell_quote(shipped_dir()) + " " + test::pcm_binary() + args);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  auto bad = test::run_command("PCM_MODEL=/nonexistent/pcm-mini " + test::pcm_binary() + args);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("PCM_MODEL=/nonexistent/pcm-mini: no such model"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace pcm
