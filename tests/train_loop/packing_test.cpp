// Document tokenization (loss masks per format), packing (doc_start, targets, no loss across a
// boundary, truncate/drop counts) and the deterministic shuffled epoch stream.
#include <gtest/gtest.h>

#include "io/jsonl.h"
#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/dataset.h"
#include "util/error.h"
#include "util/file.h"

namespace pcm {
namespace {

Document doc(std::vector<int32_t> ids, std::vector<uint8_t> loss) { return {std::move(ids), std::move(loss)}; }

TEST(Packing, BoundariesTargetsAndPadding) {
  Document a = doc({10, 11, 12}, {0, 1, 1});  // a prompt token, then two loss tokens
  Document b = doc({20, 21}, {1, 1});
  Document c = doc({30, 31, 32, 33}, {1, 1, 1, 1});
  PackStats st;
  PackedBatch p = pack_documents({&a, &b, &c}, 6, OverlongRule::Truncate, &st);
  ASSERT_EQ(p.rows, 2);  // a+b fill 5 of row 0; c does not fit the last slot, so it starts row 1
  EXPECT_EQ(p.tokens, (std::vector<int32_t>{10, 11, 12, 20, 21, 0, 30, 31, 32, 33, 0, 0}));
  EXPECT_EQ(p.targets, (std::vector<int32_t>{11, 12, -1, 21, -1, -1, 31, 32, 33, -1, -1, -1}));
  EXPECT_EQ(p.doc_start, (std::vector<uint8_t>{1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0}));
  EXPECT_EQ(st.loss_tokens, 2 + 1 + 3);
  EXPECT_EQ(st.truncated + st.dropped, 0);
}

TEST(Packing, OverlongTruncatedOrDroppedAndCounted) {
  Document longd = doc({1, 2, 3, 4, 5, 6, 7, 8}, std::vector<uint8_t>(8, 1));
  Document shortd = doc({9, 9}, {1, 1});
  PackStats st;
  PackedBatch t = pack_documents({&longd, &shortd}, 4, OverlongRule::Truncate, &st);
  EXPECT_EQ(st.truncated, 1);
  EXPECT_EQ(st.dropped, 0);
  ASSERT_EQ(t.rows, 2);
  EXPECT_EQ(std::vector<int32_t>(t.tokens.begin(), t.tokens.begin() + 4), (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(t.targets[3], -1);  // the truncated tail is not a target
  PackedBatch d = pack_documents({&longd, &shortd}, 4, OverlongRule::Drop, &st);
  EXPECT_EQ(st.dropped, 1);
  EXPECT_EQ(st.truncated, 0);
  EXPECT_EQ(d.rows, 1);
}

TEST(Documents, PromptCompletionAndTextMasks) {
  Tokenizer tok = Tokenizer::from_dir(test::testdata("models/tiny-mistral-bf16"));
  TextCodec codec{&tok, nullptr};
  Document d = tokenize_row({{"prompt", "Question: 2+2?"}, {"completion", " 4"}}, codec, "row");
  std::vector<int32_t> prompt = tok.encode("Question: 2+2?", true);
  ASSERT_GT(d.ids.size(), prompt.size());
  for (size_t i = 0; i < d.ids.size(); ++i) EXPECT_EQ(d.loss[i], i >= prompt.size()) << i;
  EXPECT_EQ(d.ids.back(), tok.eos_id());
  Document t = tokenize_row({{"text", "hello world"}}, codec, "row");
  for (uint8_t m : t.loss) EXPECT_EQ(m, 1);
  EXPECT_THROW(tokenize_row({{"prompt", 3}, {"completion", "x"}}, codec, "f.jsonl:3"), Error);
  try {
    tokenize_row({{"question", "x"}}, codec, "f.jsonl:7");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f.jsonl:7"), std::string::npos);
  }
  Document ids = tokenize_row({{"input_ids", {5, 6, 7}}, {"loss_mask", {0, 1, 1}}}, {}, "row");
  EXPECT_EQ(ids.loss, (std::vector<uint8_t>{0, 1, 1}));
  EXPECT_THROW(tokenize_row({{"input_ids", {5, -6}}}, {}, "row"), Error);
}

TEST(Documents, ChatLossOnlyOnAssistantTurns) {
  std::string dir = test::testdata("models/tiny-mistral-bf16");
  Tokenizer tok = Tokenizer::from_dir(dir);
  ChatTemplate chat = ChatTemplate::from_dir(dir);
  TextCodec codec{&tok, &chat};
  json messages = json::array({{{"role", "user"}, {"content", "What is 2+3?"}},
                               {{"role", "assistant"}, {"content", "It is 5."}},
                               {{"role", "user"}, {"content", "And 4+4?"}},
                               {{"role", "assistant"}, {"content", "It is 8."}}});
  Document d = tokenize_row({{"messages", messages}}, codec, "row");
  EXPECT_EQ(d.ids, tok.encode(chat.render(messages, false), false));
  // The trained tokens decode to the two answers (plus the template's end-of-turn tokens).
  std::vector<int32_t> trained;
  for (size_t i = 0; i < d.ids.size(); ++i)
    if (d.loss[i]) trained.push_back(d.ids[i]);
  std::string text = tok.decode(trained, true);
  EXPECT_NE(text.find("It is 5."), std::string::npos) << text;
  EXPECT_NE(text.find("It is 8."), std::string::npos) << text;
  EXPECT_EQ(text.find("2+3"), std::string::npos) << text;
  EXPECT_EQ(text.find("4+4"), std::string::npos) << text;
  EXPECT_THROW(tokenize_row({{"messages", json::array({{{"role", "user"}, {"content", "x"}}})}}, codec, "r"), Error);
}

TEST(PhaseData, DeterministicShuffleAndMixture) {
  test::TempDir dir;
  std::string path = dir.file("ids.jsonl");
  std::string text;
  for (int i = 0; i < 12; ++i) text += "{\"input_ids\": [" + std::to_string(100 + i) + ", 1, 2]}\n";
  write_file_atomic(path, text);
  PhaseConfig phase;
  phase.datasets = {{path, 0.5}};
  phase.seq_len = 3;
  auto first_tokens = [&](uint64_t seed, int64_t first, int64_t count) {
    PhaseData data(phase, {}, seed);
    PackedBatch b = data.rows(first, count);
    std::vector<int32_t> t;
    for (int64_t r = 0; r < b.rows; ++r) t.push_back(b.tokens[r * 3]);
    return t;
  };
  PhaseData data(phase, {}, 1);
  EXPECT_EQ(data.rows_per_epoch(), 6);  // weight 0.5 of 12 documents
  EXPECT_EQ(first_tokens(1, 0, 12), first_tokens(1, 0, 12));
  EXPECT_NE(first_tokens(1, 0, 6), first_tokens(2, 0, 6));
  std::vector<int32_t> e0 = first_tokens(1, 0, 6), e1 = first_tokens(1, 6, 6);
  EXPECT_NE(e0, e1);  // epochs reshuffle...
  std::sort(e0.begin(), e0.end());
  std::sort(e1.begin(), e1.end());
  EXPECT_EQ(e0, e1);  // ...the same drawn subset
  std::vector<int32_t> seven = first_tokens(1, 0, 7);
  EXPECT_EQ(first_tokens(1, 4, 3), std::vector<int32_t>(seven.begin() + 4, seven.end()));  // random access
}

}  // namespace
}  // namespace pcm
