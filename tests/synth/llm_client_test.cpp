#include "synth/llm_client.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <mutex>
#include <set>

#include "scripted_server.h"
#include "synth/executor.h"
#include "test_util.h"

namespace pcm::synth {
namespace {

using test::chat_body;
using test::reply_json;
using test::ScriptedServer;

EndpointConfig fast_config(const std::string& url) {
  EndpointConfig cfg;
  cfg.base_url = url;
  cfg.connect_timeout_s = 2.0;
  cfg.read_timeout_s = 5.0;
  cfg.max_retries = 4;
  cfg.backoff_initial_s = 0.001;
  cfg.backoff_max_s = 0.01;
  return cfg;
}

ChatRequest simple_request() {
  ChatRequest r;
  r.model = "m";
  r.messages = {{"user", "hi"}};
  return r;
}

TEST(LlmClient, ChatSendsSamplingFieldsAndParsesChoicesInIndexOrder) {
  nlohmann::json seen;
  std::string auth;
  ScriptedServer server([&](const httplib::Request& req, httplib::Response& res) {
    seen = nlohmann::json::parse(req.body);
    auth = req.get_header_value("Authorization");
    EXPECT_EQ(req.path, "/v1/chat/completions");
    // Choices out of order, one with null content and a reasoning field.
    reply_json(res, R"({"choices":[
      {"index":1,"message":{"role":"assistant","content":null,"reasoning_content":"r"},"finish_reason":"length"},
      {"index":0,"message":{"role":"assistant","content":"first"},"finish_reason":"stop"}],
      "usage":{"prompt_tokens":7,"completion_tokens":3}})");
  });
  RoleUsage usage;
  EndpointConfig cfg = fast_config(server.base_url());
  cfg.api_key = "sk-test";
  LlmClient client(cfg, &usage);
  ChatRequest r = simple_request();
  r.sampling.temperature = 0.6;
  r.sampling.top_p = 0.95;
  r.sampling.max_tokens = 128;
  r.sampling.n = 2;
  r.sampling.seed = 42;
  r.sampling.stop = {"</s>"};
  CompletionResult out = client.chat(r);
  EXPECT_EQ(seen["model"], "m");
  EXPECT_EQ(seen["messages"][0]["content"], "hi");
  EXPECT_DOUBLE_EQ(seen["temperature"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(seen["top_p"].get<double>(), 0.95);
  EXPECT_EQ(seen["max_tokens"], 128);
  EXPECT_EQ(seen["n"], 2);
  EXPECT_EQ(seen["seed"], 42);
  EXPECT_EQ(seen["stop"][0], "</s>");
  EXPECT_EQ(auth, "Bearer sk-test");
  ASSERT_EQ(out.choices.size(), 2u);
  EXPECT_EQ(out.choices[0].text, "first");
  EXPECT_EQ(out.choices[1].text, "");
  EXPECT_EQ(out.choices[1].reasoning, "r");
  EXPECT_EQ(out.choices[1].finish_reason, "length");
  EXPECT_EQ(usage.prompt_tokens.load(), 7);
  EXPECT_EQ(usage.completion_tokens.load(), 3);
  EXPECT_EQ(usage.requests.load(), 1);
}

TEST(LlmClient, UnsetSamplingFieldsAreNotSent) {
  nlohmann::json body = chat_request_body(simple_request());
  EXPECT_FALSE(body.contains("temperature"));
  EXPECT_FALSE(body.contains("n"));
  EXPECT_FALSE(body.contains("stop"));
}

TEST(LlmClient, ApiKeyFromEnvironmentAndMissingVariableIsAnError) {
  EndpointConfig cfg = fast_config("http://127.0.0.1:1/v1");
  cfg.api_key_env = "PCM_TEST_SURELY_UNSET_KEY";
  EXPECT_THROW(LlmClient{cfg}, Error);
  setenv("PCM_TEST_KEY_SET", "abc", 1);
  cfg.api_key_env = "PCM_TEST_KEY_SET";
  EXPECT_NO_THROW(LlmClient{cfg});
}

TEST(LlmClient, BadBaseUrlsAreErrors) {
  EXPECT_THROW(LlmClient{fast_config("127.0.0.1:8080/v1")}, Error);
  EXPECT_THROW(LlmClient{fast_config("ftp://host/v1")}, Error);
  EXPECT_THROW(LlmClient{fast_config("http:///v1")}, Error);
}

TEST(LlmClient, RetriesGarbage429With_RetryAfter_500AndDroppedConnection) {
  std::atomic<int> calls{0};
  ScriptedServer server([&](const httplib::Request&, httplib::Response& res) {
    switch (calls++) {
      case 0: reply_json(res, "<html>502 bad gateway</html> not json"); break;
      case 1:
        res.set_header("Retry-After", "2");
        reply_json(res, R"({"error":{"message":"rate limited"}})", 429);
        break;
      case 2: reply_json(res, "oops", 500); break;
      case 3: test::drop_connection(res); break;
      default: reply_json(res, chat_body({"ok"}));
    }
  });
  RoleUsage usage;
  LlmClient client(fast_config(server.base_url()), &usage);
  std::vector<double> sleeps;
  client.set_sleep_function([&](double s) { sleeps.push_back(s); });
  CompletionResult out = client.chat(simple_request());
  EXPECT_EQ(out.choices[0].text, "ok");
  EXPECT_EQ(out.attempts, 5);
  EXPECT_EQ(calls.load(), 5);
  EXPECT_EQ(usage.retries.load(), 4);
  EXPECT_EQ(usage.failures.load(), 0);
  ASSERT_EQ(sleeps.size(), 4u);
  // The 429's Retry-After (2 s) is honoured; the others follow the tiny test backoff.
  EXPECT_GE(sleeps[1], 2.0);
  EXPECT_LT(sleeps[1], 2.01);
  EXPECT_LT(sleeps[0], 0.01);
  EXPECT_LT(sleeps[2], 0.01);
}

TEST(LlmClient, GivesUpAfterMaxRetriesAndCountsTheFailure) {
  std::atomic<int> calls{0};
  ScriptedServer server([&](const httplib::Request&, httplib::Response& res) {
    calls++;
    reply_json(res, "overloaded", 503);
  });
  RoleUsage usage;
  LlmClient client(fast_config(server.base_url()), &usage);
  client.set_sleep_function([](double) {});
  try {
    client.chat(simple_request());
    FAIL() << "expected LlmError";
  } catch (const LlmError& e) {
    EXPECT_EQ(e.status(), 503);
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("gave up after 5 attempts"), std::string::npos) << e.what();
  }
  EXPECT_EQ(calls.load(), 5);
  EXPECT_EQ(usage.failures.load(), 1);
}

TEST(LlmClient, ClientErrorsAreNotRetried) {
  std::atomic<int> calls{0};
  ScriptedServer server([&](const httplib::Request&, httplib::Response& res) {
    calls++;
    reply_json(res, R"({"error":{"message":"model not found"}})", 404);
  });
  LlmClient client(fast_config(server.base_url()));
  client.set_sleep_function([](double) {});
  try {
    client.chat(simple_request());
    FAIL();
  } catch (const LlmError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_FALSE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("model not found"), std::string::npos);
  }
  EXPECT_EQ(calls.load(), 1);
}

TEST(LlmClient, WrongShapedAnswerIsRetriedThenReported) {
  std::atomic<int> calls{0};
  ScriptedServer server([&](const httplib::Request&, httplib::Response& res) {
    calls++;
    reply_json(res, R"({"choices":[]})");
  });
  LlmClient client(fast_config(server.base_url()));
  client.set_sleep_function([](double) {});
  EXPECT_THROW(client.chat(simple_request()), LlmError);
  EXPECT_EQ(calls.load(), 3);  // the first try plus two re-asks
}

TEST(LlmClient, ReadTimeoutIsRetried) {
  std::atomic<int> calls{0};
  ScriptedServer server([&](const httplib::Request&, httplib::Response& res) {
    if (calls++ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(700));
    reply_json(res, chat_body({"late"}));
  });
  EndpointConfig cfg = fast_config(server.base_url());
  cfg.read_timeout_s = 0.2;
  LlmClient client(cfg);
  client.set_sleep_function([](double) {});
  EXPECT_EQ(client.chat(simple_request()).choices[0].text, "late");
  EXPECT_EQ(calls.load(), 2);
}

TEST(LlmClient, ConnectionRefusedIsRetriedThenFails) {
  int port;
  {
    ScriptedServer gone([](const httplib::Request&, httplib::Response&) {});
    port = gone.port();
  }
  EndpointConfig cfg = fast_config("http://127.0.0.1:" + std::to_string(port) + "/v1");
  cfg.max_retries = 2;
  LlmClient client(cfg);
  int sleeps = 0;
  client.set_sleep_function([&](double) { sleeps++; });
  try {
    client.chat(simple_request());
    FAIL();
  } catch (const LlmError& e) {
    EXPECT_EQ(e.status(), 0);
  }
  EXPECT_EQ(sleeps, 2);
}

TEST(LlmClient, CompletionsAndEmbeddings) {
  ScriptedServer server([&](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/v1/completions") {
      reply_json(res, R"({"choices":[{"index":0,"text":"42","finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1}})");
    } else if (req.path == "/v1/embeddings") {
      auto body = nlohmann::json::parse(req.body);
      ASSERT_EQ(body["input"].size(), 2u);
      // Out of order, as some servers answer.
      reply_json(res, R"({"object":"list","data":[{"index":1,"embedding":[0,1]},{"index":0,"embedding":[1,0]}],
                         "usage":{"prompt_tokens":4,"total_tokens":4}})");
    } else {
      reply_json(res, "{}", 404);
    }
  });
  RoleUsage usage;
  LlmClient client(fast_config(server.base_url()), &usage);
  CompletionRequest c;
  c.model = "m";
  c.prompt = "6*7=";
  EXPECT_EQ(client.complete(c).choices[0].text, "42");
  EmbeddingResult e = client.embed("m", {"a", "b"});
  ASSERT_EQ(e.embeddings.size(), 2u);
  EXPECT_EQ(e.embeddings[0], (std::vector<float>{1, 0}));
  EXPECT_EQ(e.embeddings[1], (std::vector<float>{0, 1}));
  EXPECT_EQ(usage.prompt_tokens.load(), 6);
}

TEST(LlmClient, EmbeddingCountMismatchIsAnError) {
  ScriptedServer server([&](const httplib::Request&, httplib::Response& res) {
    reply_json(res, R"({"data":[{"index":0,"embedding":[1,0]}]})");
  });
  LlmClient client(fast_config(server.base_url()));
  client.set_sleep_function([](double) {});
  EXPECT_THROW(client.embed("m", {"a", "b"}), LlmError);
}

TEST(Backoff, ExponentialWithJitterCappedAndRetryAfterWins) {
  EndpointConfig cfg;
  cfg.backoff_initial_s = 1.0;
  cfg.backoff_max_s = 10.0;
  EXPECT_DOUBLE_EQ(backoff_delay_s(cfg, 0, -1, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(backoff_delay_s(cfg, 0, -1, 0.0), 0.5);
  EXPECT_DOUBLE_EQ(backoff_delay_s(cfg, 3, -1, 1.0), 8.0);
  EXPECT_DOUBLE_EQ(backoff_delay_s(cfg, 10, -1, 1.0), 10.0);
  EXPECT_NEAR(backoff_delay_s(cfg, 0, 30.0, 0.0), 30.0, 1e-9);
  cfg.retry_after_max_s = 5;
  EXPECT_NEAR(backoff_delay_s(cfg, 0, 30.0, 0.0), 5.0, 1e-9);
  EXPECT_DOUBLE_EQ(parse_retry_after("7"), 7.0);
  EXPECT_DOUBLE_EQ(parse_retry_after(" 1.5 "), 1.5);
  EXPECT_DOUBLE_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), 0.0);  // in the past
  EXPECT_LT(parse_retry_after("soon"), 0.0);
}

TEST(UsageLedger, PerRoleCountersAndResume) {
  UsageLedger ledger;
  ledger.role("teacher").completion_tokens += 100;
  ledger.role("judge").prompt_tokens += 5;
  nlohmann::json j = ledger.to_json();
  EXPECT_EQ(j["teacher"]["total_tokens"], 100);
  UsageLedger resumed;
  resumed.add_from_json(j);
  resumed.role("teacher").completion_tokens += 1;
  EXPECT_EQ(resumed.total_tokens(), 106);
}

TEST(Executor, BoundsConcurrencyAndRunsEveryItem) {
  std::atomic<int> in_flight{0}, peak{0};
  std::mutex m;
  std::set<size_t> done;
  ExecutorOptions opt;
  opt.concurrency = 3;
  size_t completed = run_bounded(20, opt, [&](size_t i) {
    int now = ++in_flight;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    --in_flight;
    std::lock_guard<std::mutex> lock(m);
    done.insert(i);
  });
  EXPECT_EQ(completed, 20u);
  EXPECT_EQ(done.size(), 20u);
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 2);
}

// A thread per request in flight: past kMaxConcurrency (or below 1) is refused before any thread starts.
TEST(Executor, ConcurrencyOutsideItsBoundsIsRefused) {
  for (const int c : {0, kMaxConcurrency + 1}) {
    ExecutorOptions opt;
    opt.concurrency = c;
    bool ran = false;
    const std::string message = test::error_of([&] { run_bounded(5, opt, [&](size_t) { ran = true; }); });
    EXPECT_NE(message.find("concurrency must be between 1 and 1024 (got " + std::to_string(c) + ")"),
              std::string::npos)
        << c << ": " << message;
    EXPECT_FALSE(ran);
  }
}

TEST(Executor, FirstErrorStopsNewItemsAndIsRethrown) {
  std::atomic<int> started{0};
  ExecutorOptions opt;
  opt.concurrency = 2;
  EXPECT_THROW(run_bounded(1000, opt,
                           [&](size_t i) {
                             started++;
                             if (i == 3) throw Error("item 3 failed");
                             // Items take a little time, as requests do, so the error is seen before
                             // the other worker can race through all of them on a busy machine.
                             std::this_thread::sleep_for(std::chrono::milliseconds(1));
                           }),
               Error);
  EXPECT_LT(started.load(), 100);
}

TEST(Executor, StopFlagEndsEarly) {
  std::atomic<bool> stop{false};
  ExecutorOptions opt;
  opt.concurrency = 1;
  opt.stop = &stop;
  size_t completed = run_bounded(100, opt, [&](size_t i) {
    if (i == 9) stop = true;
  });
  EXPECT_EQ(completed, 10u);
}

TEST(Executor, ManyThreadsShareOneClient) {
  std::atomic<int> calls{0};
  ScriptedServer server([&](const httplib::Request&, httplib::Response& res) {
    calls++;
    reply_json(res, chat_body({"x"}));
  });
  RoleUsage usage;
  LlmClient client(fast_config(server.base_url()), &usage);
  ExecutorOptions opt;
  opt.concurrency = 6;
  run_bounded(60, opt, [&](size_t) { EXPECT_EQ(client.chat(simple_request()).choices[0].text, "x"); });
  EXPECT_EQ(calls.load(), 60);
  EXPECT_EQ(usage.requests.load(), 60);
}

}  // namespace
}  // namespace pcm::synth

namespace pcm::synth {
namespace {

// https through Debian's OpenSSL-enabled httplib, with a self-signed certificate for 127.0.0.1
// (testdata/synth/tls_*.pem, made for this test only).
TEST(LlmClient, HttpsWithCustomCaAndVerificationFailure) {
  std::string cert = test::testdata("synth/tls_cert.pem"), key = test::testdata("synth/tls_key.pem");
  httplib::SSLServer server(cert.c_str(), key.c_str());
  ASSERT_TRUE(server.is_valid());
  server.Post(".*", [](const httplib::Request&, httplib::Response& res) { reply_json(res, chat_body({"secure"})); });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  for (int i = 0; i < 500 && !server.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EndpointConfig cfg = fast_config("https://127.0.0.1:" + std::to_string(port) + "/v1");
  cfg.ca_cert_path = cert;
  {
    LlmClient client(cfg);
    EXPECT_EQ(client.chat(simple_request()).choices[0].text, "secure");
  }
  cfg.ca_cert_path.clear();  // the system store does not know this certificate
  {
    LlmClient client(cfg);
    int sleeps = 0;
    client.set_sleep_function([&](double) { sleeps++; });
    try {
      client.chat(simple_request());
      ADD_FAILURE() << "expected a verification error";
    } catch (const LlmError& e) {
      EXPECT_FALSE(e.retryable());
      EXPECT_EQ(sleeps, 0);
    }
  }
  cfg.verify_tls = false;
  {
    LlmClient client(cfg);
    EXPECT_EQ(client.chat(simple_request()).choices[0].text, "secure");
  }
  server.stop();
  t.join();
}

}  // namespace
}  // namespace pcm::synth
