// Concurrency: many streaming clients, disconnects, a full queue, graceful shutdown (in-process and of
// the `pcm serve` process on SIGTERM).
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>

#include "serve_process.h"
#include "server_fixture.h"

namespace pcm::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

// Streams one request; returns false on any protocol problem (described in *why). Records time to first
// token and total.
bool stream_once(int port, const json& body, double& ttft_ms, double& total_ms, int& tokens,
                 std::string* why = nullptr) {
  auto fail = [&](std::string w) {
    if (why) *why = std::move(w);
    return false;
  };
  std::string buf;
  const auto t0 = Clock::now();
  ttft_ms = -1;
  const auto r = post_receiving(port, "/v1/completions", body.dump(), [&](const char* data, size_t n) {
    if (ttft_ms < 0 && buf.find("\"text\"") == std::string::npos) {
      std::string piece(data, n);
      if (piece.find("\"text\"") != std::string::npos) ttft_ms = ms_since(t0);
    }
    buf.append(data, n);
    return true;
  });
  if (!r.sent) return fail("transport error " + httplib::to_string(r.error));
  if (r.status != 200) return fail("HTTP " + std::to_string(r.status) + ": " + buf);
  total_ms = ms_since(t0);
  auto events = sse_events(buf);
  if (events.empty() || events.back() != "[DONE]") return fail("no [DONE]: " + buf.substr(0, 300));
  tokens = 0;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json e = json::parse(events[i], nullptr, false);
    if (!e.is_object() || e.contains("error")) return fail("bad event: " + events[i]);
    if (e.contains("usage")) tokens = e["usage"]["completion_tokens"];
  }
  return true;
}

TEST(ServerLoad, ManyConcurrentStreamingClients) {
  SchedulerConfig sc;
  sc.max_slots = 8;
  sc.max_queue = 64;
  TestServer s(sc);
  const int clients = 16, per_client = 2;
  std::atomic<int> errors{0};
  std::vector<double> ttft, total;
  std::mutex mu;
  std::atomic<int64_t> tokens{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      for (int k = 0; k < per_client; ++k) {
        json body = {{"prompt", "Client " + std::to_string(c) + " asks question " + std::to_string(k)},
                     {"max_tokens", 24},        {"temperature", 0.8},
                     {"seed", c * 100 + k},     {"stream", true},
                     {"ignore_eos", true},      {"stream_options", {{"include_usage", true}}}};
        double a = 0, b = 0;
        int n = 0;
        std::string why;
        if (!stream_once(s.port, body, a, b, n, &why) || n != 24) {
          ++errors;
          std::lock_guard lock(mu);
          ADD_FAILURE() << "client " << c << " request " << k << ": " << (why.empty() ? "tokens " + std::to_string(n) : why);
          continue;
        }
        tokens += n;
        std::lock_guard lock(mu);
        ttft.push_back(a);
        total.push_back(b);
      }
    });
  for (auto& t : threads) t.join();
  const double secs = ms_since(t0) / 1000.0;
  EXPECT_EQ(errors.load(), 0);
  EXPECT_TRUE(s.scheduler->wait_idle(5s));
  auto st = s.scheduler->stats();
  EXPECT_EQ(st.slots_used, 0);
  EXPECT_EQ(st.queue_depth, 0);
  EXPECT_EQ(st.requests_finished, clients * per_client);
  std::printf("[load] %d streaming requests from %d clients in %.2f s: %.0f tokens/s, %.1f requests/s; "
              "TTFT p50 %.1f ms p99 %.1f ms; request p50 %.1f ms p99 %.1f ms; mean batch %.1f rows/step\n",
              clients * per_client, clients, secs, static_cast<double>(tokens.load()) / secs,
              clients * per_client / secs, percentile(ttft, 0.5), percentile(ttft, 0.99), percentile(total, 0.5),
              percentile(total, 0.99), static_cast<double>(st.step_rows) / static_cast<double>(std::max<int64_t>(st.steps, 1)));
}

TEST(ServerLoad, ClientThatDisconnectsFreesItsSlot) {
  SchedulerConfig sc;
  sc.max_slots = 2;
  TestServer s(sc);
  int chunks = 0;
  post_receiving(s.port, "/v1/completions",
                 json{{"prompt", "Tell me everything"}, {"max_tokens", 60000}, {"ignore_eos", true}, {"stream", true}}.dump(),
                 [&](const char*, size_t) { return ++chunks < 3; });  // then hang up
  EXPECT_GE(chunks, 3);
  // The server notices at its next write and the engine frees the slot at its next step.
  for (int i = 0; i < 300 && s.scheduler->stats().slots_used > 0; ++i) std::this_thread::sleep_for(10ms);
  auto st = s.scheduler->stats();
  EXPECT_EQ(st.slots_used, 0);
  EXPECT_EQ(st.requests_cancelled, 1);
  EXPECT_LT(st.generated_tokens, 60000);
}

server::ServerOptions impatient() {
  server::ServerOptions so;
  so.blocking_patience = std::chrono::milliseconds(100);
  return so;
}

TEST(ServerLoad, NonStreamingClientThatGivesUpFreesItsSlot) {
  TestServer s({}, impatient());
  // After the server's patience the body starts with heartbeat spaces: hang up on the first bytes.
  post_receiving(s.port, "/v1/completions", R"({"prompt": "long", "max_tokens": 60000, "ignore_eos": true})",
                 [](const char*, size_t) { return false; });
  for (int i = 0; i < 500 && s.scheduler->stats().slots_used > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(s.scheduler->stats().slots_used, 0);
  EXPECT_EQ(s.scheduler->stats().requests_cancelled, 1);
}

TEST(ServerLoad, LongNonStreamingRequestStillGetsItsJson) {
  TestServer s({}, impatient());
  // Outlasts the patience: the body arrives after heartbeat spaces, and still parses as the same JSON.
  auto r = s.post("/v1/completions", json{{"prompt", "go"}, {"max_tokens", 2000}, {"ignore_eos", true}, {"temperature", 0}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json j = json::parse(r->body);
  EXPECT_EQ(j["usage"]["completion_tokens"], 2000);
  EXPECT_EQ(r->body.front(), ' ');
}

TEST(ServerLoad, FullQueueAnswers429WithRetryAfter) {
  SchedulerConfig sc;
  sc.max_slots = 1;
  sc.max_queue = 0;
  TestServer s(sc);
  std::thread hog([&] {
    auto r = s.post("/v1/completions", json{{"prompt", "long"}, {"max_tokens", 60000}, {"ignore_eos", true}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);  // cancelled by the shutdown below
  });
  for (int i = 0; i < 500 && s.scheduler->stats().slots_used == 0; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(s.scheduler->stats().slots_used, 1);
  auto r = s.post("/v1/completions", json{{"prompt", "me too"}, {"max_tokens", 2}});
  expect_openai_error(r, 429);
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_EQ(json::parse(r->body)["error"]["type"], "rate_limit_error");
  s.http->shutdown(0ms);  // no grace: the hog is cancelled
  hog.join();
  s.thread.join();
  s.scheduler->stop();
  EXPECT_EQ(s.scheduler->stats().slots_used, 0);
}

TEST(ServerLoad, ShutdownLetsInFlightStreamsFinishAndRefusesNewWork) {
  TestServer s;
  std::atomic<bool> ok{false};
  std::thread client([&] {
    double a, b;
    int n = 0;
    ok = stream_once(s.port,
                     json{{"prompt", "Finish me"}, {"max_tokens", 200}, {"ignore_eos", true}, {"stream", true},
                          {"stream_options", {{"include_usage", true}}}},
                     a, b, n) &&
         n == 200;
  });
  for (int i = 0; i < 500 && s.scheduler->stats().slots_used == 0; ++i) std::this_thread::sleep_for(2ms);
  std::thread stopper([&] { s.http->shutdown(20s); });
  std::this_thread::sleep_for(20ms);
  auto r = s.post("/v1/completions", json{{"prompt", "late"}, {"max_tokens", 2}});
  if (r) expect_openai_error(r, 503);  // (or the listener is already gone)
  stopper.join();
  client.join();
  EXPECT_TRUE(ok.load());
  s.thread.join();
  s.scheduler->stop();
}

TEST(ServerProcess, SigtermExitsZeroAfterServing) {
  for (int sig : {SIGTERM, SIGINT}) {
    const int port = free_port();
    const pid_t pid = spawn_pcm_serve(
        port, {"--model", testdata("models/tiny-mistral-bf16"), "--threads", "1", "--shutdown-grace", "5"});
    ASSERT_GE(pid, 0);
    EXPECT_TRUE(wait_until_healthy(port, 6s));
    httplib::Client c("127.0.0.1", port);
    auto r = c.Post("/v1/completions", R"({"prompt": "Hello", "max_tokens": 4})", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status)) << "signal " << sig;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "signal " << sig;
  }
}

}  // namespace
}  // namespace pcm::test
