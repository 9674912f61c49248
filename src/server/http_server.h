// The OpenAI-compatible HTTP layer (cpp-httplib) over a running Scheduler:
//   POST /v1/completions, POST /v1/chat/completions (JSON or SSE streaming), POST /v1/embeddings,
//   GET /v1/models, GET /v1/models/{id}, GET /health, GET /metrics (Prometheus text).
// HTTP worker threads parse and validate, tokenize, submit to the scheduler and relay its events; the
// model only ever runs on the scheduler's engine thread.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/scheduler.h"
#include "server/metrics.h"
#include "server/openai_request.h"

namespace httplib {
class Server;
}

namespace pcm {
class Tokenizer;
}

namespace pcm::server {

// Renders validated chat messages to prompt text (the model's chat template). Throws pcm::Error when the
// template refuses the conversation (answered with 400).
using ChatRenderer = std::function<std::string(const nlohmann::json& messages, bool add_generation_prompt)>;

// The most HTTP worker threads a server runs (a thread per connection being read or answered).
constexpr int kMaxHttpThreads = 4096;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 = any free port
  RequestLimits limits;
  int http_threads = 64;          // concurrent connections served (streams hold one each), 2..kMaxHttpThreads
  int retry_after_seconds = 1;    // Retry-After on 429/503
  size_t max_body_bytes = 8u << 20;
  // A non-streaming request still running after this long switches to a chunked body with whitespace
  // heartbeats, so that a client that gave up is noticed (see generate_blocking).
  std::chrono::milliseconds blocking_patience{5000};
  // Longest a client may take to send one request, headers and body (0 = no limit; see request_deadline.h).
  std::chrono::milliseconds request_read_limit{60000};
};

class HttpServer {
 public:
  // `tokenizer` may be null (token-id prompts only); `chat` may be empty (no chat endpoint).
  HttpServer(Scheduler& scheduler, const Tokenizer* tokenizer, ChatRenderer chat, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the port (useful with port 0). Throws pcm::Error on failure.
  int bind();
  // Serves until shutdown(); call after bind().
  void run();
  // Graceful: refuse new work (503), let in-flight requests finish for up to `grace`, cancel the rest,
  // then stop the listener. Thread-safe; run() returns afterwards.
  void shutdown(std::chrono::milliseconds grace);

  std::string metrics_text() const;
  const ServerOptions& options() const { return options_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ServerOptions options_;
};

}  // namespace pcm::server
