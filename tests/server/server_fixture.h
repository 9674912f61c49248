// An in-process server on an ephemeral loopback port, and small HTTP/SSE helpers for the tests.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>
#include <omp.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/scheduler.h"
#include "model/model.h"
#include "server/http_server.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace pcm::test {

using nlohmann::json;

// The fixture models are tiny: OpenMP teams on a shared 2-core machine only add barrier spinning.
inline const int kServerTestsSingleThread = (omp_set_num_threads(1), 0);

struct TestServer {
  std::unique_ptr<Mamba2Model> model;
  std::optional<Tokenizer> tokenizer;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<server::HttpServer> http;
  std::thread thread;
  int port = 0;

  // tiny-mistral-bf16 ships tokenizer files (mistral-v3) next to a 32768-vocab model.
  explicit TestServer(SchedulerConfig sc = {}, server::ServerOptions so = {}, bool with_tokenizer = true,
                      const std::string& model_dir = testdata("models/tiny-mistral-bf16"),
                      server::ChatRenderer chat = {}) {
    model = std::make_unique<Mamba2Model>(Mamba2Model::load(model_dir));
    if (with_tokenizer) tokenizer = Tokenizer::from_dir(model_dir);
    scheduler = std::make_unique<Scheduler>(*model, tokenizer ? &*tokenizer : nullptr, sc);
    scheduler->start();
    so.host = "127.0.0.1";
    so.port = 0;
    if (so.limits.model_name.empty()) so.limits.model_name = "test-model";
    so.limits.max_n = sc.max_slots;
    http = std::make_unique<server::HttpServer>(*scheduler, tokenizer ? &*tokenizer : nullptr, std::move(chat), so);
    port = http->bind();
    thread = std::thread([this] { http->run(); });
  }
  ~TestServer() { stop(); }
  void stop() {
    if (!thread.joinable()) return;
    http->shutdown(std::chrono::milliseconds(2000));
    thread.join();
    scheduler->stop();
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60);
    c.set_connection_timeout(5);
    return c;
  }
  httplib::Result post(const std::string& path, const std::string& body) const {
    return client().Post(path.c_str(), body, "application/json");
  }
  httplib::Result post(const std::string& path, const json& body) const { return post(path, body.dump()); }
};

// The `data:` payloads of an SSE body, in order; comments (": ping") are skipped.
inline std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << "unterminated SSE frame: " << body.substr(pos);
      break;
    }
    std::string frame = body.substr(pos, end - pos);
    pos = end + 2;
    if (frame.rfind(":", 0) == 0) continue;
    EXPECT_EQ(frame.rfind("data: ", 0), 0u) << frame;
    out.push_back(frame.substr(6));
  }
  return out;
}

// A 400-class error body as OpenAI writes it.
inline void expect_openai_error(const httplib::Result& r, int status, const std::string& param = "") {
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, status) << r->body;
  json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r->body;
  ASSERT_TRUE(j.contains("error")) << r->body;
  const json& e = j["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << r->body;
  EXPECT_TRUE(e["type"].is_string()) << r->body;
  EXPECT_TRUE(e.contains("param") && e.contains("code")) << r->body;
  if (!param.empty()) {
    EXPECT_EQ(e["param"], param) << r->body;
  }
}

}  // namespace pcm::test
