// The OpenAI endpoints' shapes and behaviour, over real HTTP on loopback.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/generator.h"
#include "server/openai_request.h"
#include "server_fixture.h"

namespace pcm::test {
namespace {

std::string greedy_text(TestServer& s, const std::string& prompt, int64_t n) {
  std::vector<int32_t> ids = s.tokenizer->encode(prompt, true);
  Mamba2Model m = Mamba2Model::load(testdata("models/tiny-mistral-bf16"));
  SequenceState st = m.new_state();
  GenerateOptions o;
  o.max_new_tokens = n;
  o.sampling.temperature = 0.0f;
  o.stop_ids = {static_cast<int32_t>(s.tokenizer->eos_id())};
  auto r = generate(m, st, ids, o);
  return s.tokenizer->decode(r.tokens, true);
}

TEST(ServerApi, ModelsHealthAndMetrics) {
  TestServer s;
  auto r = s.client().Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "test-model");
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_TRUE(j["data"][0]["created"].is_number_integer());
  EXPECT_EQ(s.client().Get("/v1/models/test-model")->status, 200);
  expect_openai_error(s.client().Get("/v1/models/other"), 404, "model");
  r = s.client().Get("/health");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["status"], "ok");
  expect_openai_error(s.client().Get("/v1/nothing"), 404);

  ASSERT_EQ(s.post("/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 3}, {"ignore_eos", true}})->status, 200);
  // The engine books a step after its events went out: wait for it.
  for (int i = 0; i < 200 && s.scheduler->stats().requests_finished == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  r = s.client().Get("/metrics");
  ASSERT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  for (const char* name :
       {"pcm_http_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 1", "pcm_requests_finished_total 1",
        "pcm_queue_depth 0", "pcm_slots_used 0", "pcm_slots_total 8", "# TYPE pcm_time_to_first_token_seconds histogram",
        "pcm_time_to_first_token_seconds_count 1", "pcm_inter_token_latency_seconds_count 2",
        "pcm_time_to_first_token_seconds_bucket{le=\"+Inf\"} 1", "pcm_generation_tokens_total 3"})
    EXPECT_NE(r->body.find(name), std::string::npos) << name << "\n" << r->body;
}

// OpenAI's API answers an unknown model with 404 model_not_found (the openai client raises NotFoundError);
// a wrongly typed model is still a 400. Streamed requests fail the same way, before any event.
TEST(ServerApi, UnknownModelIs404ModelNotFound) {
  TestServer s;
  const json chat_msgs = json::array({json{{"role", "user"}, {"content", "hi"}}});
  const std::pair<const char*, json> requests[] = {
      {"/v1/completions", json{{"model", "gpt-4"}, {"prompt", "hi"}, {"max_tokens", 1}}},
      {"/v1/completions", json{{"model", "gpt-4"}, {"prompt", "hi"}, {"max_tokens", 1}, {"stream", true}}},
      {"/v1/chat/completions", json{{"model", "gpt-4"}, {"messages", chat_msgs}, {"max_tokens", 1}}},
      {"/v1/chat/completions", json{{"model", "gpt-4"}, {"messages", chat_msgs}, {"stream", true}}},
      {"/v1/embeddings", json{{"model", "gpt-4"}, {"input", "hi"}}},
  };
  for (const auto& [path, body] : requests) {
    SCOPED_TRACE(std::string(path) + " " + body.dump());
    auto r = s.post(path, body);
    expect_openai_error(r, 404, "model");
    json e = json::parse(r->body)["error"];
    EXPECT_EQ(e["code"], "model_not_found");
    EXPECT_EQ(e["type"], "invalid_request_error");
  }
  expect_openai_error(s.post("/v1/completions", json{{"model", 3}, {"prompt", "hi"}}), 400, "model");
  EXPECT_EQ(s.scheduler->stats().requests_submitted, 0);
}

TEST(ServerApi, CompletionMatchesGenerateAndHasOpenAIShape) {
  TestServer s;
  const std::string prompt = "The quick brown fox";
  auto r = s.post("/v1/completions", json{{"model", "test-model"}, {"prompt", prompt}, {"max_tokens", 12},
                                          {"temperature", 0}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("application/json"), std::string::npos);
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_TRUE(j["created"].is_number_integer());
  EXPECT_EQ(j["model"], "test-model");
  ASSERT_EQ(j["choices"].size(), 1u);
  const json& c = j["choices"][0];
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["text"], greedy_text(s, prompt, 12));
  EXPECT_TRUE(c["finish_reason"] == "length" || c["finish_reason"] == "stop");
  EXPECT_TRUE(c["logprobs"].is_null());
  const int64_t prompt_tokens = static_cast<int64_t>(s.tokenizer->encode(prompt, true).size());
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(j["usage"]["total_tokens"], prompt_tokens + j["usage"]["completion_tokens"].get<int64_t>());
}

TEST(ServerApi, StreamingDeltasConcatenateToTheNonStreamingText) {
  TestServer s;
  json req = {{"prompt", "Once upon a time"}, {"max_tokens", 20}, {"temperature", 0.9}, {"seed", 7}, {"n", 2}};
  auto full = s.post("/v1/completions", req);
  ASSERT_EQ(full->status, 200);
  json fj = json::parse(full->body);
  req["stream"] = true;
  req["stream_options"] = {{"include_usage", true}};
  auto r = s.post("/v1/completions", req);
  ASSERT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  auto events = sse_events(r->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text[2];
  std::string finish[2];
  json usage;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json e = json::parse(events[i]);
    EXPECT_EQ(e["object"], "text_completion");
    if (e.contains("usage")) {
      EXPECT_TRUE(e["choices"].empty());
      usage = e["usage"];
      continue;
    }
    for (const json& c : e["choices"]) {
      int idx = c["index"];
      text[idx] += c["text"].get<std::string>();
      if (!c["finish_reason"].is_null()) finish[idx] = c["finish_reason"];
    }
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(text[i], fj["choices"][i]["text"]) << "choice " << i;
    EXPECT_EQ(finish[i], fj["choices"][i]["finish_reason"]);
  }
  EXPECT_EQ(usage, fj["usage"]);
  EXPECT_NE(text[0], text[1]);  // different seeds per choice
}

TEST(ServerApi, StreamedMultibyteTextArrivesAsWholeCharacters) {
  TestServer s;
  // Multibyte prompt, hot sampling: whatever the model picks (CJK pieces, byte-fallback tokens), the
  // deltas must concatenate to the blocking answer and never carry a broken character.
  json req = {{"prompt", "日本語のテキストと絵文字 😀 について"}, {"max_tokens", 64}, {"temperature", 2.0},
              {"seed", 11}, {"ignore_eos", true}};
  const std::string full = json::parse(s.post("/v1/completions", req)->body)["choices"][0]["text"];
  req["stream"] = true;
  auto ev = sse_events(s.post("/v1/completions", req)->body);
  std::string joined;
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    // A delta that split a character would have had to be replaced (U+FFFD) to become JSON.
    const std::string delta = json::parse(ev[i])["choices"][0]["text"];
    if (full.find("\xEF\xBF\xBD") == std::string::npos) {
      EXPECT_EQ(delta.find("\xEF\xBF\xBD"), std::string::npos) << delta;
    }
    joined += delta;
  }
  EXPECT_EQ(joined, full);
}

TEST(ServerApi, StopStringsCutTheTextAndEndTheChoice) {
  TestServer s;
  auto base = json::parse(s.post("/v1/completions", json{{"prompt", "Hello"}, {"max_tokens", 24}, {"temperature", 0}})->body);
  const std::string text = base["choices"][0]["text"];
  ASSERT_GT(text.size(), 8u) << text;
  const std::string stop = text.substr(text.size() / 2, 3);
  const std::string expect = text.substr(0, text.find(stop));
  for (bool stream : {false, true}) {
    auto r = s.post("/v1/completions", json{{"prompt", "Hello"}, {"max_tokens", 24}, {"temperature", 0},
                                            {"stop", {stop, "never-appears"}}, {"stream", stream}});
    ASSERT_EQ(r->status, 200);
    std::string got, finish;
    if (stream) {
      auto ev = sse_events(r->body);
      for (size_t i = 0; i + 1 < ev.size(); ++i) {
        json e = json::parse(ev[i]);
        got += e["choices"][0]["text"].get<std::string>();
        if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
      }
    } else {
      json j = json::parse(r->body);
      got = j["choices"][0]["text"];
      finish = j["choices"][0]["finish_reason"];
    }
    EXPECT_EQ(got, expect) << "stop '" << stop << "' in '" << text << "'";
    EXPECT_EQ(finish, "stop");
  }
}

// As vLLM: a stop id ends the choice and its id is returned, its text is not (stop strings are left out too).
TEST(ServerApi, StopTokenIdsEndTheChoiceWithoutTheirText) {
  TestServer s;
  const json req = {{"prompt", "Hello"}, {"max_tokens", 24}, {"temperature", 0}, {"return_token_ids", true}};
  auto base = json::parse(s.post("/v1/completions", req)->body);
  const std::vector<int32_t> ids = base["choices"][0]["token_ids"];
  ASSERT_GT(ids.size(), 6u);
  const int32_t stop = ids[4];
  const size_t first = static_cast<size_t>(std::find(ids.begin(), ids.end(), stop) - ids.begin());
  const std::vector<int32_t> before(ids.begin(), ids.begin() + static_cast<long>(first));
  json with_stop = req;
  with_stop["stop_token_ids"] = {stop};
  for (bool stream : {false, true}) {
    with_stop["stream"] = stream;
    auto r = s.post("/v1/completions", with_stop);
    ASSERT_EQ(r->status, 200) << r->body;
    std::string text, finish;
    std::vector<int32_t> got;
    auto take = [&](const json& c) {
      text += c["text"].get<std::string>();
      for (const json& t : c["token_ids"]) got.push_back(t.get<int32_t>());
      if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
    };
    if (stream) {
      auto ev = sse_events(r->body);
      for (size_t i = 0; i + 1 < ev.size(); ++i) take(json::parse(ev[i])["choices"][0]);
    } else {
      take(json::parse(r->body)["choices"][0]);
    }
    EXPECT_EQ(text, s.tokenizer->decode(before, true)) << "stream " << stream;
    EXPECT_EQ(got, std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<long>(first) + 1));
    EXPECT_EQ(finish, "stop");
  }
}

// Parameters without effect here are accepted when well-typed (clients send them by default).
TEST(ServerApi, InertParametersAreAccepted) {
  TestServer s;
  for (const char* tc : {"none", "auto"}) {
    auto r = s.post("/v1/completions", json{{"prompt", "Hello"}, {"max_tokens", 2}, {"tool_choice", tc},
                                            {"parallel_tool_calls", true}, {"user", "u-1"}, {"store", false},
                                            {"metadata", json::object()}, {"service_tier", "auto"},
                                            {"reasoning_effort", "low"}});
    EXPECT_EQ(r->status, 200) << r->body;
  }
}

TEST(ServerApi, TokenIdPromptsWithoutTokenizer) {
  TestServer s({}, {}, /*with_tokenizer=*/false, testdata("models/tiny-g2"));
  auto r = s.post("/v1/completions", json{{"prompt", {5, 6, 7, 8}}, {"max_tokens", 5}, {"temperature", 0}});
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["text"], "");
  EXPECT_EQ(j["choices"][0]["token_ids"].size(), 5u);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 4);
  // Nested token arrays (one prompt) work too.
  auto r2 = s.post("/v1/completions", json{{"prompt", json::array({{5, 6, 7, 8}})}, {"max_tokens", 5}, {"temperature", 0}});
  EXPECT_EQ(json::parse(r2->body)["choices"][0]["token_ids"], j["choices"][0]["token_ids"]);
  expect_openai_error(s.post("/v1/completions", json{{"prompt", "text"}}), 400, "prompt");
  expect_openai_error(s.post("/v1/completions", json{{"prompt", {1, 2}}, {"stop", "x"}}), 400, "stop");
  expect_openai_error(s.post("/v1/completions", json{{"prompt", {1, 999}}}), 400, "prompt");
  expect_openai_error(s.post("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}}), 400);
}

TEST(ServerApi, PromptCacheReportsCachedTokensForAnExtendedPrompt) {
  SchedulerConfig sc;
  sc.state_cache_bytes = 64 << 20;
  TestServer s(sc);
  const std::string system = "You are a careful assistant. Answer briefly and show the key step of the argument.";
  auto a = json::parse(s.post("/v1/completions", json{{"prompt", system}, {"max_tokens", 2}})->body);
  EXPECT_EQ(a["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  auto b = json::parse(s.post("/v1/completions", json{{"prompt", system + " What is 2 + 2?"}, {"max_tokens", 2}})->body);
  const int64_t sys_tokens = static_cast<int64_t>(s.tokenizer->encode(system, true).size());
  EXPECT_GE(b["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>(), sys_tokens - 1);
}

TEST(ServerApi, EmbeddingsFloatAndBase64) {
  TestServer s;
  auto r = s.post("/v1/embeddings", json{{"model", "test-model"}, {"input", {"first text", "second, longer text"}}});
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "test-model");
  ASSERT_EQ(j["data"].size(), 2u);
  const int64_t d = s.model->config().hidden_size;
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(j["data"][i]["object"], "embedding");
    EXPECT_EQ(j["data"][i]["index"], i);
    ASSERT_EQ(j["data"][i]["embedding"].size(), static_cast<size_t>(d));
    double norm = 0;
    for (double v : j["data"][i]["embedding"]) norm += v * v;
    EXPECT_NEAR(norm, 1.0, 1e-4);
  }
  int64_t tokens = 0;
  for (const char* t : {"first text", "second, longer text"})
    tokens += static_cast<int64_t>(s.tokenizer->encode(t, true).size());
  EXPECT_EQ(j["usage"]["prompt_tokens"], tokens);
  EXPECT_EQ(j["usage"]["total_tokens"], tokens);

  auto b = json::parse(
      s.post("/v1/embeddings", json{{"input", "first text"}, {"encoding_format", "base64"}})->body);
  std::vector<float> floats;
  for (double v : j["data"][0]["embedding"]) floats.push_back(static_cast<float>(v));
  EXPECT_EQ(b["data"][0]["embedding"], server::base64_encode(floats.data(), floats.size() * sizeof(float)));
  // Token-id inputs give the same vector as the text they encode.
  auto ids = s.tokenizer->encode("first text", true);
  auto t = json::parse(s.post("/v1/embeddings", json{{"input", json::array({ids})}})->body);
  EXPECT_EQ(t["data"][0]["embedding"], j["data"][0]["embedding"]);
  expect_openai_error(s.post("/v1/embeddings", json{{"input", json::array()}}), 400, "input");
  expect_openai_error(s.post("/v1/embeddings", json{{"input", ""}}), 400, "input");
  expect_openai_error(s.post("/v1/embeddings", json{{"input", "x"}, {"model", "nope"}}), 404, "model");
}

TEST(ServerApi, Base64MatchesRfc4648) {
  EXPECT_EQ(server::base64_encode("", 0), "");
  EXPECT_EQ(server::base64_encode("f", 1), "Zg==");
  EXPECT_EQ(server::base64_encode("fo", 2), "Zm8=");
  EXPECT_EQ(server::base64_encode("foobar", 6), "Zm9vYmFy");
}

}  // namespace
}  // namespace pcm::test
