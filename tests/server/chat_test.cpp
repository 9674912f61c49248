// /v1/chat/completions shapes and streaming, with a stand-in renderer (the real chat template engine is
// wired in cmd_serve; these tests pin the HTTP side).
#include "server_fixture.h"
#include "tokenizer/chat_template.h"
#include "util/error.h"

namespace pcm::test {
namespace {

// Mistral-style rendering, enough to exercise the endpoint; refuses a conversation ending with the assistant.
std::string render(const json& messages, bool add_generation_prompt) {
  std::string out = "<s>";
  for (const json& m : messages) {
    if (m["role"] == "assistant")
      out += m["content"].get<std::string>() + "</s>";
    else
      out += "[INST] " + m["content"].get<std::string>() + " [/INST]";
  }
  if (messages.back()["role"] == "assistant") pcm::fail("the last message must come from the user");
  (void)add_generation_prompt;
  return out;
}


TEST(ServerChat, NonStreamingShape) {
  SchedulerConfig sc;
  TestServer s(sc, {}, true, testdata("models/tiny-mistral-bf16"), render);
  json req = {{"model", "test-model"},
              {"messages", {{{"role", "system"}, {"content", "Be brief."}},
                            {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "What is 2+2?"}}}}}}},
              {"max_tokens", 10},
              {"temperature", 0},
              {"n", 2}};
  auto r = s.post("/v1/chat/completions", req);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  ASSERT_EQ(j["choices"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const json& c = j["choices"][i];
    EXPECT_EQ(c["index"], i);
    EXPECT_EQ(c["message"]["role"], "assistant");
    EXPECT_TRUE(c["message"]["content"].is_string());
    EXPECT_TRUE(c["finish_reason"] == "stop" || c["finish_reason"] == "length");
  }
  EXPECT_EQ(j["choices"][0]["message"], j["choices"][1]["message"]);  // greedy: both choices agree
  const std::string text = "<s>[INST] Be brief. [/INST][INST] What is 2+2? [/INST]";
  EXPECT_EQ(j["usage"]["prompt_tokens"], static_cast<int64_t>(s.tokenizer->encode(text, false).size()));
}

TEST(ServerChat, StreamingDeltasRoleFirstThenContentThenFinish) {
  TestServer s(SchedulerConfig{}, {}, true, testdata("models/tiny-mistral-bf16"), render);
  json req = {{"messages", {{{"role", "user"}, {"content", "Tell a story"}}}},
              {"max_tokens", 16},
              {"temperature", 0.7},
              {"seed", 3}};
  std::string full = json::parse(s.post("/v1/chat/completions", req)->body)["choices"][0]["message"]["content"];
  req["stream"] = true;
  auto r = s.post("/v1/chat/completions", req);
  ASSERT_EQ(r->status, 200);
  auto ev = sse_events(r->body);
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(ev.back(), "[DONE]");
  json first = json::parse(ev[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string text, finish;
  for (size_t i = 1; i + 1 < ev.size(); ++i) {
    json e = json::parse(ev[i]);
    EXPECT_EQ(e["id"], first["id"]);
    const json& c = e["choices"][0];
    if (c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
    if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
  }
  EXPECT_EQ(text, full);
  EXPECT_FALSE(finish.empty());
}

TEST(ServerChat, SharedSystemPromptIsCachedAcrossConversations) {
  SchedulerConfig sc;
  sc.state_cache_bytes = 64 << 20;
  TestServer s(sc, {}, true, testdata("models/tiny-mistral-bf16"), render);
  const std::string system = "You are a meticulous assistant who explains each step of a calculation.";
  auto ask = [&](const std::string& q) {
    auto r = s.post("/v1/chat/completions",
                    json{{"messages", {{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", q}}}},
                         {"max_tokens", 2}});
    return json::parse(r->body)["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>();
  };
  EXPECT_EQ(ask("What is 3 + 4?"), 0);
  const int64_t system_tokens =
      static_cast<int64_t>(s.tokenizer->encode("<s>[INST] " + system + " [/INST]", false).size());
  EXPECT_EQ(ask("Name a prime above 10."), system_tokens);
}

// The model's own template (tiny-mistral-bf16 ships Mistral's chat_template.jinja), as cmd_serve wires it.
server::ChatRenderer model_template() {
  auto t = std::make_shared<const ChatTemplate>(ChatTemplate::from_dir(testdata("models/tiny-mistral-bf16")));
  return [t](const json& m, bool add) { return t->render(m, add); };
}

TEST(ServerChat, RealTemplateMultiTurnReusesTheConversationState) {
  SchedulerConfig sc;
  sc.state_cache_bytes = 64 << 20;
  TestServer s(sc, {}, true, testdata("models/tiny-mistral-bf16"), model_template());
  const ChatTemplate tmpl = ChatTemplate::from_dir(testdata("models/tiny-mistral-bf16"));
  json messages = {{{"role", "user"}, {"content", "Hello, who are you?"}}};
  auto r1 = s.post("/v1/chat/completions", json{{"messages", messages}, {"max_tokens", 8}, {"temperature", 0}});
  ASSERT_EQ(r1->status, 200) << r1->body;
  json j1 = json::parse(r1->body);
  const int64_t p1 = static_cast<int64_t>(s.tokenizer->encode(tmpl.render(messages, true), false).size());
  EXPECT_EQ(j1["usage"]["prompt_tokens"], p1);
  messages.push_back({{"role", "assistant"}, {"content", j1["choices"][0]["message"]["content"]}});
  messages.push_back({{"role", "user"}, {"content", "And what can you do?"}});
  auto r2 = s.post("/v1/chat/completions", json{{"messages", messages}, {"max_tokens", 8}, {"temperature", 0}});
  ASSERT_EQ(r2->status, 200) << r2->body;
  json j2 = json::parse(r2->body);
  EXPECT_EQ(j2["usage"]["prompt_tokens"],
            static_cast<int64_t>(s.tokenizer->encode(tmpl.render(messages, true), false).size()));
  EXPECT_GE(j2["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>(), p1);
  // Mistral's template refuses roles that do not alternate.
  json bad = {{{"role", "user"}, {"content", "a"}}, {{"role", "user"}, {"content", "b"}}};
  expect_openai_error(s.post("/v1/chat/completions", json{{"messages", bad}}), 400, "messages");
}

// A reasoning model's answer: the shipped model opens with <think> and closes it before the answer. The tags are
// not "special" in its tokenizer (as in Qwen3's and DeepSeek-R1's), so the content keeps them, the history a client
// sends back tokenizes to what the model produced, and the next turn restores the state after the whole answer
// (when they were dropped from the content, only the first prompt was reused).
TEST(ServerChat, ReasoningAnswerSentBackReusesTheWholeTurn) {
  SchedulerConfig sc;
  sc.state_cache_bytes = 64 << 20;
  const std::string dir = testdata("../models/pcm-mini");
  auto tmpl = std::make_shared<const ChatTemplate>(ChatTemplate::from_dir(dir));
  TestServer s(sc, {}, true, dir, [tmpl](const json& m, bool add) { return tmpl->render(m, add); });
  json messages = {{{"role", "user"}, {"content", "A baker makes 24 muffins and sells 3/4 of them. How many are left?"}}};
  auto r1 = s.post("/v1/chat/completions", json{{"messages", messages}, {"max_tokens", 48}, {"temperature", 0}});
  ASSERT_EQ(r1->status, 200) << r1->body;
  json j1 = json::parse(r1->body);
  const std::string content = j1["choices"][0]["message"]["content"];
  EXPECT_EQ(content.rfind("<think>", 0), 0u) << content;
  const int64_t turn1 = j1["usage"]["total_tokens"].get<int64_t>();
  messages.push_back({{"role", "assistant"}, {"content", content}});
  messages.push_back({{"role", "user"}, {"content", "And if he bakes 8 more?"}});
  auto r2 = s.post("/v1/chat/completions", json{{"messages", messages}, {"max_tokens", 2}, {"temperature", 0}});
  ASSERT_EQ(r2->status, 200) << r2->body;
  // Everything but the answer's last token, which was sampled and never fed.
  EXPECT_EQ(json::parse(r2->body)["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>(), turn1 - 1);
}

TEST(ServerChat, TemplateRefusalAndMissingTemplateAre400) {
  TestServer s(SchedulerConfig{}, {}, true, testdata("models/tiny-mistral-bf16"), render);
  expect_openai_error(s.post("/v1/chat/completions",
                             json{{"messages", {{{"role", "user"}, {"content", "hi"}}, {{"role", "assistant"}, {"content", "x"}}}}}),
                      400, "messages");
  TestServer plain;  // no renderer
  auto r = plain.post("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}});
  expect_openai_error(r, 400, "messages");
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "chat_template_unavailable");
}

}  // namespace
}  // namespace pcm::test
