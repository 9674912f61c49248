// Byte-level BPE training: merges on a corpus small enough to count by hand, and a tokenizer trained
// on real text (GSM8K train rows) that our tokenizer loads and round-trips.
#include <gtest/gtest.h>

#include "io/jsonl.h"
#include "test_util.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace pcm {
namespace {

TEST(BpeTrainer, MergesTheMostFrequentPairFirstWithHfTieBreak) {
  BpeTrainerOptions o;
  o.special_tokens = {"<|endoftext|>"};
  o.vocab_size = 1 + 256 + 3;
  o.min_frequency = 1;
  BpeTrainer t(o);
  // Words: "ab", " ab" x2, " cd"; pairs a·b 3, Ġ·a 2, Ġ·c 1, c·d 1.
  t.add_text("ab ab ab cd");
  t.train();
  ASSERT_EQ(t.merges().size(), 3u);
  // "ab" occurs 3 times (once bare, twice after a space): the first merge.
  EXPECT_EQ(t.merges()[0], std::make_pair(std::string("a"), std::string("b")));
  // Then "Ġ" + "ab" (2 occurrences) beats "Ġ"+"c", "c"+"d" (1 each).
  EXPECT_EQ(t.merges()[1], std::make_pair(std::string(byte_level_char(' ')), std::string("ab")));
  EXPECT_EQ(t.vocab().size(), 260u);
  EXPECT_EQ(t.vocab()[0], "<|endoftext|>");
}

TEST(BpeTrainer, SpecialTokenTextIsNeverMerged) {
  BpeTrainerOptions o;
  o.vocab_size = 400;
  o.min_frequency = 1;
  BpeTrainer t(o);
  for (int i = 0; i < 20; ++i) t.add_text("<|im_start|>user hi<|im_end|><think>x</think>");
  t.train();
  for (const auto& m : t.merges()) {
    EXPECT_EQ((m.first + m.second).find("im_"), std::string::npos) << m.first << " " << m.second;
  }
}

TEST(BpeTrainer, TrainedOnGsm8kLoadsAndRoundTrips) {
  BpeTrainerOptions o;
  o.vocab_size = 1200;
  BpeTrainer t(o);
  int rows = 0;
  for_each_jsonl(test::testdata("tokenizer/gsm8k_train_head.jsonl"), [&](const json& r, int64_t) {
    t.add_text(r.at("question").get<std::string>() + "\n" + r.at("answer").get<std::string>());
    ++rows;
  });
  ASSERT_GT(rows, 100);
  t.train();
  EXPECT_EQ(t.vocab().size(), 1200u);
  const json j = t.tokenizer_json();
  BpeTrainer again(o);
  for_each_jsonl(test::testdata("tokenizer/gsm8k_train_head.jsonl"), [&](const json& r, int64_t) {
    again.add_text(r.at("question").get<std::string>() + "\n" + r.at("answer").get<std::string>());
  });
  again.train();
  EXPECT_EQ(again.tokenizer_json(), j) << "training is deterministic";

  Tokenizer tok = Tokenizer::from_json_text(j.dump(), "trained tokenizer.json");
  for (const std::string s : {"Natalia sold clips to 48 of her friends in April.", "x = 3,141 \\boxed{72} 🦙 café\n\n  end",
                              "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<think>\n4\n</think>"}) {
    auto ids = tok.encode(s, false);
    EXPECT_EQ(tok.decode(ids, false), s);
  }
  // Answers keep the reasoning tags (not "special", as in Qwen3's and DeepSeek-R1's tokenizers) and lose the
  // turn markers: a chat history sent back then tokenizes to the ids the model produced.
  const std::string turn = "<think>\n4\n</think>\n\\boxed{4}";
  EXPECT_EQ(tok.decode(tok.encode(turn + "<|im_end|>", false), true), turn);
  EXPECT_EQ(tok.encode(tok.decode(tok.encode(turn, false), true), false), tok.encode(turn, false));
  auto ids = tok.encode("<|im_start|>assistant<|im_end|>", false);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 1);  // <|im_start|> is the second special token
  EXPECT_EQ(ids.back(), 2);
  EXPECT_LT(tok.encode("Natalia sold clips to 48 of her friends", false).size(), 20u) << "merges compress text";
}

}  // namespace
}  // namespace pcm
