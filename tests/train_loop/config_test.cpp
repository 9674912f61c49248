// Curriculum parsing: TOML and JSON, defaults, and errors that name the field.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"
#include "train/train_config.h"
#include "util/error.h"
#include "util/file.h"

namespace pcm {
namespace {

std::string error_of(const std::string& toml) {
  test::TempDir d;
  write_file_atomic(d.file("c.toml"), toml);
  try {
    load_train_config(d.file("c.toml"));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const char* kHead = "shape = \"mamba2-130m\"\n";

TEST(TrainConfig, ShippedConfigsParse) {
  for (const char* name : {"tiny-ci.toml", "promptcot-mamba-7b.toml", "promptcot-mamba-math-7b.toml"}) {
    TrainConfig c = load_train_config(std::string(PCM_TESTDATA) + "/../configs/" + name);
    EXPECT_GE(c.phases.size(), 1u) << name;
  }
  TrainConfig c = load_train_config(std::string(PCM_TESTDATA) + "/../configs/tiny-ci.toml");
  ASSERT_EQ(c.phases.size(), 2u);
  EXPECT_EQ(c.phases[0].name, "foundational");
  EXPECT_EQ(c.phases[0].rows_per_step(), 2);
  EXPECT_EQ(c.phases[1].overlong, OverlongRule::Drop);
  EXPECT_EQ(c.model.hidden_size, 64);
  EXPECT_TRUE(c.model.tie_embeddings);
}

TEST(TrainConfig, JsonWorksToo) {
  test::TempDir d;
  write_file_atomic(d.file("c.json"),
                    R"({"shape": "mamba2-130m", "phases": [{"datasets": ["a.jsonl"], "steps": 3, "seq_len": 8}]})");
  TrainConfig c = load_train_config(d.file("c.json"));
  EXPECT_EQ(c.phases[0].datasets[0].path, d.file("a.jsonl"));  // relative to the config file
  EXPECT_EQ(c.phases[0].batch_tokens, 8);
  EXPECT_EQ(c.model.hidden_size, 768);
}

TEST(TrainConfig, ErrorsNameTheField) {
  std::string phase = "[[phases]]\ndatasets = [\"a.jsonl\"]\nsteps = 2\nseq_len = 8\n";
  auto has = [](const std::string& err, const std::string& what) {
    return err.find(what) != std::string::npos ? ::testing::AssertionSuccess()
                                               : ::testing::AssertionFailure() << "error was: " << err;
  };
  EXPECT_TRUE(has(error_of(std::string(kHead) + phase + "lr = \"fast\"\n"), "phases[0].lr: expected a number"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + phase + "batch_tokens = 12\n"), "phases[0].batch_tokens"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + phase + "decay = \"exp\"\n"), "phases[0].decay"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + phase + "overlong = \"wrap\"\n"), "phases[0].overlong"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + phase + "lrr = 1.0\n"), "phases[0].lrr: unknown field"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + phase + "min_lr = 1.0\n"), "phases[0].min_lr"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + phase + "name = \"a/b\"\n"), "phases[0].name"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + phase + "micro_batch_rows = 3\n"), "phases[0].micro_batch_rows"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + "[[phases]]\ndatasets = [{weight = 2.0}]\nsteps = 1\n"),
                  "phases[0].datasets[0].path"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + "[[phases]]\ndatasets = [\"a\"]\n"), "give epochs > 0 or steps > 0"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + "seed = -1\n" + phase), "seed: must be >= 0"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + "save_dtype = \"q8\"\n" + phase), "save_dtype"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + "device = \"gpu\"\n" + phase), "device: expected cpu or cuda"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + "precision = \"fp8\"\n" + phase), "precision: expected fp32 or bf16"));
  EXPECT_TRUE(has(error_of("shape = \"nope\"\n" + phase), "shape"));
  EXPECT_TRUE(has(error_of(phase), "exactly one model source"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + "init_from = \"x\"\n" + phase), "exactly one model source"));
  EXPECT_TRUE(has(error_of(kHead), "phases: needs a non-empty array"));
  EXPECT_TRUE(has(error_of("shape = \"mamba2-130m\"\n[model]\nhidden_size = \"big\"\n" + phase), "model"));
  EXPECT_TRUE(has(error_of("phases = [ [broken"), "TOML error"));
}

::testing::AssertionResult has(const std::string& err, const std::string& what) {
  return err.find(what) != std::string::npos ? ::testing::AssertionSuccess()
                                             : ::testing::AssertionFailure() << "error was: " << err;
}

TEST(TrainConfig, UnknownModelKeysAreErrors) {
  // [model] took any key (docs say unknown keys are errors); mamba_ssm spellings are not HF config.json keys either.
  std::string phase = "[[phases]]\ndatasets = [\"a.jsonl\"]\nsteps = 2\nseq_len = 8\n";
  EXPECT_TRUE(has(error_of(std::string(kHead) + "[model]\nbogus_key = 1\n" + phase), "c.toml: model.bogus_key: unknown field"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + "[model]\nd_model = 64\n" + phase), "model.d_model: unknown field"));
  EXPECT_EQ(error_of(std::string(kHead) + "[model]\nstate_size = 64\ntime_step_limit = [0.0, 1.0]\n" + phase), "");
}

TEST(TrainConfig, AbsurdSizesFailAtLoadNamingTheField) {
  // Each allocated gigabytes, printed a bare std::bad_alloc or never finished a step.
  auto phase = [](const std::string& extra) {
    return "[[phases]]\ndatasets = [{path = \"a.jsonl\", weight = 1.0}]\nsteps = 2\nseq_len = 8\n" + extra;
  };
  auto model = [](const std::string& fields) { return std::string(kHead) + "[model]\n" + fields; };
  EXPECT_TRUE(has(error_of(std::string(kHead) + "[[phases]]\ndatasets = [\"a\"]\nsteps = 1\nseq_len = 2147483648\n"),
                  "c.toml: phases[0].seq_len: must be <= 1048576, got 2147483648"));
  EXPECT_TRUE(has(error_of(std::string(kHead) + phase("batch_tokens = 256000000000\n")),
                  "phases[0].batch_tokens: must be <= 268435456"));
  EXPECT_TRUE(has(error_of(std::string(kHead) +
                           "[[phases]]\ndatasets = [{path = \"a.jsonl\", weight = 1e12}]\nsteps = 2\nseq_len = 8\n"),
                  "c.toml: phases[0].datasets[0].weight: must be > 0 and <= 1000"));
  EXPECT_TRUE(has(error_of(model("num_hidden_layers = 100000000\n") + phase("")),
                  "c.toml: model: num_hidden_layers must be <= 4096, got 100000000"));
  EXPECT_TRUE(has(error_of(model("state_size = 1000000000\n") + phase("")), "c.toml: model: state_size must be <= 4096"));
  EXPECT_TRUE(has(error_of(model("hidden_size = 1e12\n") + phase("")), "c.toml: model: hidden_size must be <= 65536"));
  EXPECT_TRUE(has(error_of(model("hidden_size = 1e300\n") + phase("")), "hidden_size: expected an integer"));
  EXPECT_TRUE(has(error_of(model("vocab_size = 4000000000\n") + phase("")), "model: vocab_size must be <= 16777216"));
}

TEST(TrainConfig, DeepTomlNestingIsRefusedBeforeParsing) {
  // A table header of 100000 dotted parts crashed toml++ (SIGSEGV); 30000 ran for minutes.
  std::string parts = "a";
  for (int i = 1; i < 100000; ++i) parts += ".a";
  EXPECT_TRUE(has(error_of("[" + parts + "]\n"), "c.toml:1: a key or table header of more than 64 dotted parts"));
  EXPECT_TRUE(has(error_of("x = 1\n" + parts + " = 1\n"), "c.toml:2: a key or table header"));
  EXPECT_TRUE(has(error_of("x = '''\n\n'''\n[\"q\".'r'." + parts + "]\n"), "c.toml:4: a key"));
  // Inline tables a few dotted parts deep each still add up.
  std::string inline_deep = "x = ";
  for (int i = 0; i < 20; ++i) inline_deep += "{a.b.c.d = ";
  inline_deep += "1" + std::string(20, '}') + "\n";
  EXPECT_TRUE(has(error_of(inline_deep), "c.toml: tables and arrays nest more than 64 levels deep"));
  // Dots in strings, comments and numbers are not key parts.
  std::string dots(500, '.');
  EXPECT_TRUE(has(error_of("shape = \"" + dots + "\"\n# " + dots + "\nx = [1.5, 2.5]\n"), "unknown shape"));
}

TEST(TrainConfig, InputsAreCheckedBeforeTraining) {
  test::TempDir d;
  write_file_atomic(d.file("a.jsonl"), "{\"input_ids\": [1, 2, 3]}\n");
  std::filesystem::create_directory(d.file("no_tokenizer"));
  auto config = [&](const std::string& top, const std::string& second_dataset) {
    write_file_atomic(d.file("c.toml"), std::string(kHead) + top +
                                            "[[phases]]\ndatasets = [\"a.jsonl\"]\nsteps = 1\nseq_len = 8\n"
                                            "[[phases]]\ndatasets = [\"a.jsonl\", \"" + second_dataset +
                                            "\"]\nsteps = 1\nseq_len = 8\n");
    return load_train_config(d.file("c.toml"));
  };
  auto error = [](const TrainConfig& c) {
    try {
      check_train_inputs(c);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error(config("", "a.jsonl")), "");
  // A misspelled phase-2 dataset was found only after phase 1 had trained and saved checkpoints.
  EXPECT_TRUE(has(error(config("", "typo.jsonl")),
                  "c.toml: phases[1].datasets[1]: " + d.file("typo.jsonl") + " does not exist"));
  EXPECT_TRUE(has(error(config("", "no_tokenizer")), "phases[1].datasets[1]: " + d.file("no_tokenizer") + " is not a file"));
  // A set tokenizer without tokenizer.json said 'text rows need a tokenizer (set `tokenizer` ...)'.
  EXPECT_TRUE(has(error(config("tokenizer = \"/nonexistent\"\n", "a.jsonl")),
                  "c.toml: tokenizer: /nonexistent is not a directory with a tokenizer.json"));
  EXPECT_TRUE(has(error(config("tokenizer = \"no_tokenizer\"\n", "a.jsonl")),
                  "tokenizer: " + d.file("no_tokenizer") + " has no tokenizer.json"));
}

}  // namespace
}  // namespace pcm
