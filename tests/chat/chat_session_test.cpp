// Multi-turn chat over one fixed-size state: turn 2 prefills only its new tokens, and the state after it
// equals prefilling the whole rendered conversation at once. Text generation: streaming equals decoding
// the ids, stop strings end the text, and `pcm chat` runs a scripted conversation.
#include <gtest/gtest.h>

#include <fstream>

#include "engine/chat_session.h"
#include "engine/text_stream.h"
#include "test_util.h"

namespace pcm {
namespace {

using test::testdata;

TEST(ChatSession, TurnTwoPrefillsOnlyNewTokensAndMatchesAFullPrefill) {
  const std::string dir = testdata("models/tiny-mistral-bf16");
  Mamba2Model model = Mamba2Model::load(dir);
  model.set_exact(true);
  Tokenizer tok = Tokenizer::from_dir(dir);
  ChatTemplate chat = ChatTemplate::from_dir(dir);
  ChatSession session(model, tok, chat);
  json msgs = json::array({{{"role", "user"}, {"content", "What is 2 + 3?"}}});
  const int64_t first = session.sync(msgs, true);
  EXPECT_EQ(first, static_cast<int64_t>(session.covered().size()));
  // Turn 1's answer as the template writes it, then turn 2.
  msgs.push_back({{"role", "assistant"}, {"content", "It is 5."}});
  msgs.push_back({{"role", "user"}, {"content", "And 5 + 5?"}});
  bool restarted = true;
  const size_t before = session.covered().size();
  const int64_t second = session.sync(msgs, true, &restarted);
  EXPECT_FALSE(restarted);
  const std::vector<int32_t> all = tok.encode(chat.render(msgs, true), false);
  EXPECT_EQ(second, static_cast<int64_t>(all.size() - before)) << "only the new tokens";
  EXPECT_LT(second, static_cast<int64_t>(all.size()));

  SequenceState full = model.new_state();
  model.prefill(all, full, nullptr, false);
  EXPECT_LE(test::rel_error(session.state().ssm, full.ssm), 1e-5);
  EXPECT_LE(test::rel_error(session.state().conv, full.conv), 1e-5);
}

TEST(ChatSession, ReplyLeavesTheStateCoveringEveryGeneratedToken) {
  const std::string dir = testdata("models/tiny-mistral-bf16");
  Mamba2Model model = Mamba2Model::load(dir);
  model.set_exact(true);
  Tokenizer tok = Tokenizer::from_dir(dir);
  ChatTemplate chat = ChatTemplate::from_dir(dir);
  ChatSession session(model, tok, chat);
  session.sync(json::array({{{"role", "user"}, {"content", "Hi"}}}), true);
  GenerateOptions g;
  g.max_new_tokens = 6;
  g.sampling.temperature = 0;
  GenerateResult r;
  session.reply(g, {}, {}, &r);
  SequenceState full = model.new_state();
  model.prefill(session.covered(), full, nullptr, false);
  EXPECT_EQ(session.covered().size(), tok.encode(chat.render(json::array({{{"role", "user"}, {"content", "Hi"}}}), true), false).size() + r.tokens.size());
  EXPECT_LE(test::rel_error(session.state().ssm, full.ssm), 1e-5);
}

TEST(TextStreamer, StopStringsAcrossTokensAreNeverPrinted) {
  Tokenizer tok = Tokenizer::from_dir(testdata("tokenizers/mistral-v3"));
  const auto ids = tok.encode("The answer is 42. STOP here and more", false);
  TextStreamer s(tok, {"STOP"});
  std::string out;
  for (int32_t id : ids) {
    out += s.push(id);
    if (s.stopped()) break;
  }
  out += s.finish();
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(out, "The answer is 42. ");
  TextStreamer none(tok, {});
  std::string all;
  for (int32_t id : ids) all += none.push(id);
  all += none.finish();
  EXPECT_EQ(all, tok.decode(ids, true));
}

TEST(GenerateCli, TextStreamEqualsDecodingTheIdsAndChatRuns) {
  const std::string dir = testdata("models/tiny-mistral-bf16");
  Tokenizer tok = Tokenizer::from_dir(dir);
  const auto prompt_ids = tok.encode("The capital of France is", true);
  std::string ids_arg;
  for (int32_t id : prompt_ids) ids_arg += (ids_arg.empty() ? "" : ",") + std::to_string(id);
  auto by_ids = test::run_pcm("generate --model " + dir + " --prompt-ids " + ids_arg + " -n 12 --temperature 0 --ignore-eos");
  ASSERT_EQ(by_ids.exit_code, 0) << by_ids.all();
  std::vector<int32_t> out_ids;
  for (size_t a = 0; a < by_ids.out.size();) {
    size_t b = by_ids.out.find_first_of(",\n", a);
    if (b > a) out_ids.push_back(std::stoi(by_ids.out.substr(a, b - a)));
    a = b + 1;
  }
  auto by_text = test::run_pcm("generate --model " + dir + " --prompt 'The capital of France is' -n 12 --temperature 0 --ignore-eos");
  ASSERT_EQ(by_text.exit_code, 0) << by_text.all();
  EXPECT_EQ(by_text.out, tok.decode(out_ids, true) + "\n");
  EXPECT_NE(by_text.err.find("tok/s"), std::string::npos);

  auto chat = test::run_pcm("chat --model " + dir + " --system 'Be brief.' -n 4 --temperature 0", "Hello\n/reset\nAgain\n/exit\n");
  ASSERT_EQ(chat.exit_code, 0) << chat.all();
  EXPECT_NE(chat.err.find("prefilled"), std::string::npos) << chat.err;
}

}  // namespace
}  // namespace pcm

namespace pcm {
namespace {

// A typed line with bytes that are not UTF-8 ended the whole session (exit 1) with the tokenizer's offset into
// the rendered prompt (audit item 20); it is now refused alone and the next line is answered.
TEST(ChatCli, ALineThatIsNotUtf8IsRefusedAndTheSessionGoesOn) {
  auto chat = test::run_pcm("chat --model " + test::testdata("models/tiny-mistral-bf16") + " -n 2 --temperature 0 --threads 1",
                            "hello\n\xff\xfe\nstill here?\n/exit\n");
  ASSERT_EQ(chat.exit_code, 0) << chat.all();
  EXPECT_NE(chat.err.find("that line is not valid UTF-8 (byte 0xFF at byte 1 of the line): not sent"), std::string::npos)
      << chat.err;
  size_t turns = 0;
  for (size_t at = chat.err.find("[prefilled"); at != std::string::npos; at = chat.err.find("[prefilled", at + 1)) ++turns;
  EXPECT_EQ(turns, 2u) << chat.err;
}

TEST(RenderCli, PrintsTheTemplatePromptAndNamesBadInput) {
  test::TempDir dir;
  std::ofstream(dir.file("conv.json")) << R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}])";
  auto r = test::run_pcm("render --model " + test::testdata("models/tiny-mistral-bf16") + " --messages " + dir.file("conv.json") +
                         " --add-generation-prompt");
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_EQ(r.out, "<s>[INST] Be brief.\n\nHi[/INST]");
  std::ofstream(dir.file("bad.json")) << R"([{"content":"no role"}])";
  r = test::run_pcm("render --model " + test::testdata("models/tiny-mistral-bf16") + " --messages " + dir.file("bad.json"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("messages[0].role"), std::string::npos) << r.all();
  std::ofstream(dir.file("alt.jinja")) << "{% for m in messages %}<{{ m.role }}>{% endfor %}";
  r = test::run_pcm("render --model " + test::testdata("models/tiny-mistral-bf16") + " --messages " + dir.file("conv.json") +
                    " --chat-template " + dir.file("alt.jinja"));
  EXPECT_EQ(r.out, "<system><user>");
}

}  // namespace
}  // namespace pcm
