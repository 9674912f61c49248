// An OpenAI-compatible HTTP client (chat completions, completions, embeddings) for long unattended jobs:
// per-request timeouts, retries with exponential backoff + jitter on 429 / 5xx / timeouts / dropped
// connections (honouring Retry-After), a pool of keep-alive connections so many threads can share one
// client, and token accounting per role. http:// and https:// (Debian's cpp-httplib is built with
// OpenSSL) base URLs are accepted.
#pragma once
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "util/error.h"

namespace pcm::synth {

using json = nlohmann::json;

struct EndpointConfig {
  std::string base_url = "http://127.0.0.1:8080/v1";  // `pcm serve`; paths /chat/completions etc. follow
  std::string api_key_env;                           // name of an env var holding the key ("" = no key)
  std::string api_key;                               // an explicit key (tests); wins over api_key_env
  double connect_timeout_s = 10.0;
  double read_timeout_s = 3600.0;  // no bytes arrive until a non-streamed answer is done: 32k tokens can take 20 min
  double write_timeout_s = 60.0;
  int max_retries = 8;            // attempts after the first one
  double backoff_initial_s = 1.0;  // attempt k waits uniform(0.5, 1.0) * min(max, initial * 2^k)
  double backoff_max_s = 60.0;
  double retry_after_max_s = 300.0;  // a server's Retry-After is honoured up to this
  bool verify_tls = true;
  std::string ca_cert_path;  // extra CA bundle for https ("" = system default)
};

struct ChatMessage {
  std::string role;
  std::string content;
};

// Optional fields are sent only when set, so a server's own defaults apply otherwise.
struct SamplingOptions {
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> max_tokens;
  std::optional<int64_t> seed;
  int n = 1;
  std::vector<std::string> stop;
  json extra = json::object();  // merged into the request body (e.g. {"top_k": 20})
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  SamplingOptions sampling;
};

struct CompletionRequest {
  std::string model;
  std::string prompt;
  SamplingOptions sampling;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

struct Choice {
  std::string text;           // message.content (chat) or text (completions); null content is ""
  std::string reasoning;      // message.reasoning_content when a server splits reasoning out, else ""
  std::string finish_reason;  // "stop", "length", ... or "" when the server gave none
};

struct CompletionResult {
  std::vector<Choice> choices;  // ordered by the response's `index`
  Usage usage;
  int attempts = 1;  // HTTP attempts this took (1 = no retry)
};

struct EmbeddingResult {
  std::vector<std::vector<float>> embeddings;  // one per input, in input order
  Usage usage;
  int attempts = 1;
};

// A request that failed for good: retries exhausted, or an error retrying cannot fix (4xx other than
// 408/409/429, an unparseable response after retries). `status` is the last HTTP status (0 = no response).
class LlmError : public Error {
 public:
  LlmError(const std::string& message, int status, bool retryable)
      : Error(message), status_(status), retryable_(retryable) {}
  int status() const { return status_; }
  bool retryable() const { return retryable_; }

 private:
  int status_;
  bool retryable_;
};

// Counters for one role (extractor, generator, judge, teacher, embedder). Safe from many threads.
struct RoleUsage {
  std::atomic<int64_t> requests{0};  // requests that succeeded
  std::atomic<int64_t> failures{0};  // requests that failed for good
  std::atomic<int64_t> retries{0};   // extra attempts
  std::atomic<int64_t> prompt_tokens{0};
  std::atomic<int64_t> completion_tokens{0};
  json to_json() const;
  void add_from_json(const json& j);  // resumes totals from an earlier run's stats
};

// Token accounting per role across a whole run; stats.json is written from this.
class UsageLedger {
 public:
  RoleUsage& role(const std::string& name);  // created on first use; the reference stays valid
  json to_json() const;                        // {"role": {...counters...}, ...}
  void add_from_json(const json& j);
  int64_t total_tokens() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<RoleUsage>> roles_;
};

// Delays between attempts. Exposed so tests can check the schedule without sleeping.
// `retry_after_s` < 0 means the server sent no Retry-After.
double backoff_delay_s(const EndpointConfig& cfg, int attempt, double retry_after_s, double unit_random);
// Parses a Retry-After header: delta-seconds (integer or decimal) or an HTTP-date. -1 when absent/garbled.
double parse_retry_after(const std::string& value);

class LlmClient {
 public:
  // `usage` (optional, must outlive the client) receives the counters for every request made.
  explicit LlmClient(EndpointConfig cfg, RoleUsage* usage = nullptr);
  ~LlmClient();
  LlmClient(const LlmClient&) = delete;
  LlmClient& operator=(const LlmClient&) = delete;

  CompletionResult chat(const ChatRequest& request);
  CompletionResult complete(const CompletionRequest& request);
  EmbeddingResult embed(const std::string& model, const std::vector<std::string>& inputs);

  // POSTs `body` to base_url + path with retries; returns the parsed JSON object. Used by the three above.
  json post_json(const std::string& path, const json& body, int* attempts = nullptr);

  const EndpointConfig& config() const { return cfg_; }

  // For tests: replaces the sleep between attempts (seconds) so retry tests run instantly.
  void set_sleep_function(std::function<void(double)> sleep_fn) { sleep_fn_ = std::move(sleep_fn); }

 private:
  struct Pool;
  EndpointConfig cfg_;
  RoleUsage* usage_;
  std::string api_key_;
  std::string scheme_host_port_;
  std::string path_prefix_;
  std::unique_ptr<Pool> pool_;
  std::function<void(double)> sleep_fn_;
};

// Builds a request body (exposed for tests and for servers that log what they received).
json chat_request_body(const ChatRequest& request);
json completion_request_body(const CompletionRequest& request);

}  // namespace pcm::synth
