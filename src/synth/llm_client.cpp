#include "synth/llm_client.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <random>
#include <thread>

namespace pcm::synth {

// ---- usage accounting -------------------------------------------------------------------------------

json RoleUsage::to_json() const {
  return {{"requests", requests.load()},           {"failures", failures.load()},
          {"retries", retries.load()},             {"prompt_tokens", prompt_tokens.load()},
          {"completion_tokens", completion_tokens.load()},
          {"total_tokens", prompt_tokens.load() + completion_tokens.load()}};
}

void RoleUsage::add_from_json(const json& j) {
  auto get = [&](const char* key) -> int64_t {
    return j.contains(key) && j[key].is_number_integer() ? j[key].get<int64_t>() : 0;
  };
  requests += get("requests");
  failures += get("failures");
  retries += get("retries");
  prompt_tokens += get("prompt_tokens");
  completion_tokens += get("completion_tokens");
}

RoleUsage& UsageLedger::role(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = roles_[name];
  if (!slot) slot = std::make_unique<RoleUsage>();
  return *slot;
}

json UsageLedger::to_json() const {
  std::lock_guard<std::mutex> lock(mutex_);
  json out = json::object();
  for (const auto& [name, usage] : roles_) out[name] = usage->to_json();
  return out;
}

void UsageLedger::add_from_json(const json& j) {
  if (!j.is_object()) return;
  for (const auto& [name, counters] : j.items())
    if (counters.is_object()) role(name).add_from_json(counters);
}

int64_t UsageLedger::total_tokens() const {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t total = 0;
  for (const auto& [name, usage] : roles_) total += usage->prompt_tokens.load() + usage->completion_tokens.load();
  return total;
}

// ---- backoff ----------------------------------------------------------------------------------------

double parse_retry_after(const std::string& value) {
  std::string v = value;
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
  size_t start = v.find_first_not_of(" \t");
  if (start == std::string::npos) return -1.0;
  v = v.substr(start);
  char* end = nullptr;
  double seconds = std::strtod(v.c_str(), &end);
  if (end && *end == '\0' && std::isfinite(seconds)) return std::max(0.0, seconds);
  // HTTP-date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  const char* rest = strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (!rest) return -1.0;
  time_t when = timegm(&tm);
  double delta = std::difftime(when, std::time(nullptr));
  return std::max(0.0, delta);
}

double backoff_delay_s(const EndpointConfig& cfg, int attempt, double retry_after_s, double unit_random) {
  if (retry_after_s >= 0.0) {
    // The server said when; add a little jitter so many workers do not return in the same instant.
    return std::min(retry_after_s, cfg.retry_after_max_s) + 0.1 * unit_random * std::min(1.0, cfg.backoff_initial_s);
  }
  double base = cfg.backoff_initial_s * std::pow(2.0, std::min(attempt, 30));
  base = std::min(base, cfg.backoff_max_s);
  return base * (0.5 + 0.5 * unit_random);
}

// ---- request bodies ---------------------------------------------------------------------------------

namespace {

void add_sampling(json& body, const SamplingOptions& s) {
  if (s.temperature) body["temperature"] = *s.temperature;
  if (s.top_p) body["top_p"] = *s.top_p;
  if (s.max_tokens) body["max_tokens"] = *s.max_tokens;
  if (s.seed) body["seed"] = *s.seed;
  if (s.n != 1) body["n"] = s.n;
  if (!s.stop.empty()) body["stop"] = s.stop;
  if (s.extra.is_object())
    for (const auto& [k, v] : s.extra.items()) body[k] = v;
}

double unit_random() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   std::hash<std::thread::id>{}(std::this_thread::get_id()));
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

std::string snippet(const std::string& s, size_t n = 300) {
  return s.size() <= n ? s : s.substr(0, n) + "...";
}

bool retryable_status(int status) { return status == 408 || status == 409 || status == 429 || status >= 500; }

void set_timeout(httplib::Client& c, void (httplib::Client::*setter)(time_t, time_t), double seconds) {
  seconds = std::max(seconds, 0.001);
  auto sec = static_cast<time_t>(seconds);
  auto usec = static_cast<time_t>((seconds - static_cast<double>(sec)) * 1e6);
  (c.*setter)(sec, usec);
}

int64_t usage_field(const json& usage, const char* key) {
  if (!usage.is_object() || !usage.contains(key) || !usage[key].is_number()) return 0;
  return usage[key].get<int64_t>();
}

Usage parse_usage(const json& response) {
  Usage u;
  if (response.contains("usage")) {
    u.prompt_tokens = usage_field(response["usage"], "prompt_tokens");
    u.completion_tokens = usage_field(response["usage"], "completion_tokens");
  }
  return u;
}

std::string string_or_empty(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return "";
  return obj[key].get<std::string>();
}

// Throws std::runtime_error (retried as a bad response) when `response` is not a completions answer.
std::vector<Choice> parse_choices(const json& response, bool chat) {
  if (!response.contains("choices") || !response["choices"].is_array() || response["choices"].empty())
    throw std::runtime_error("response has no choices");
  std::vector<std::pair<int64_t, Choice>> indexed;
  int64_t position = 0;
  for (const auto& c : response["choices"]) {
    if (!c.is_object()) throw std::runtime_error("a choice is not an object");
    Choice choice;
    if (chat) {
      if (!c.contains("message") || !c["message"].is_object()) throw std::runtime_error("a choice has no message");
      const json& m = c["message"];
      if (m.contains("content") && !m["content"].is_null() && !m["content"].is_string())
        throw std::runtime_error("message.content is not a string");
      choice.text = string_or_empty(m, "content");
      choice.reasoning = string_or_empty(m, "reasoning_content");
    } else {
      if (!c.contains("text") || !c["text"].is_string()) throw std::runtime_error("a choice has no text");
      choice.text = c["text"].get<std::string>();
    }
    choice.finish_reason = string_or_empty(c, "finish_reason");
    int64_t index = c.contains("index") && c["index"].is_number_integer() ? c["index"].get<int64_t>() : position;
    indexed.emplace_back(index, std::move(choice));
    ++position;
  }
  std::stable_sort(indexed.begin(), indexed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Choice> out;
  for (auto& [i, c] : indexed) out.push_back(std::move(c));
  return out;
}

}  // namespace

json chat_request_body(const ChatRequest& request) {
  json messages = json::array();
  for (const auto& m : request.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  json body = {{"model", request.model}, {"messages", messages}};
  add_sampling(body, request.sampling);
  return body;
}

json completion_request_body(const CompletionRequest& request) {
  json body = {{"model", request.model}, {"prompt", request.prompt}};
  add_sampling(body, request.sampling);
  return body;
}

// ---- connection pool ----------------------------------------------------------------------------------

// httplib::Client serialises its requests, so each thread takes its own keep-alive client from here.
struct LlmClient::Pool {
  std::mutex mutex;
  std::vector<std::unique_ptr<httplib::Client>> idle;
};

LlmClient::LlmClient(EndpointConfig cfg, RoleUsage* usage)
    : cfg_(std::move(cfg)), usage_(usage), pool_(std::make_unique<Pool>()) {
  const std::string& url = cfg_.base_url;
  size_t scheme_end = url.find("://");
  PCM_CHECK(scheme_end != std::string::npos, "endpoint base_url '{}' must start with http:// or https://", url);
  std::string scheme = url.substr(0, scheme_end);
  PCM_CHECK(scheme == "http" || scheme == "https", "endpoint base_url '{}': unsupported scheme '{}'", url, scheme);
  size_t path_start = url.find('/', scheme_end + 3);
  scheme_host_port_ = path_start == std::string::npos ? url : url.substr(0, path_start);
  path_prefix_ = path_start == std::string::npos ? "" : url.substr(path_start);
  while (!path_prefix_.empty() && path_prefix_.back() == '/') path_prefix_.pop_back();
  PCM_CHECK(scheme_host_port_.size() > scheme_end + 3, "endpoint base_url '{}' has no host", url);
  if (!cfg_.api_key.empty()) {
    api_key_ = cfg_.api_key;
  } else if (!cfg_.api_key_env.empty()) {
    const char* key = std::getenv(cfg_.api_key_env.c_str());
    PCM_CHECK(key && *key, "endpoint {}: environment variable {} (api_key_env) is not set", url, cfg_.api_key_env);
    api_key_ = key;
  }
  PCM_CHECK(cfg_.max_retries >= 0, "endpoint {}: max_retries must be >= 0", url);
  sleep_fn_ = [](double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); };
  httplib::Client probe(scheme_host_port_);
  PCM_CHECK(probe.is_valid(), "endpoint base_url '{}' is not a valid URL for the HTTP client", url);
}

LlmClient::~LlmClient() = default;

json LlmClient::post_json(const std::string& path, const json& body, int* attempts_out) {
  const std::string full_path = path_prefix_ + path;
  const std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);
  httplib::Headers headers;
  if (!api_key_.empty()) headers.emplace("Authorization", "Bearer " + api_key_);

  std::string last_error;
  int last_status = 0;
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<httplib::Client> client;
    {
      std::lock_guard<std::mutex> lock(pool_->mutex);
      if (!pool_->idle.empty()) {
        client = std::move(pool_->idle.back());
        pool_->idle.pop_back();
      }
    }
    if (!client) {
      client = std::make_unique<httplib::Client>(scheme_host_port_);
      set_timeout(*client, &httplib::Client::set_connection_timeout, cfg_.connect_timeout_s);
      set_timeout(*client, &httplib::Client::set_read_timeout, cfg_.read_timeout_s);
      set_timeout(*client, &httplib::Client::set_write_timeout, cfg_.write_timeout_s);
      client->set_keep_alive(true);
      client->set_tcp_nodelay(true);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
      client->enable_server_certificate_verification(cfg_.verify_tls);
      if (!cfg_.ca_cert_path.empty()) client->set_ca_cert_path(cfg_.ca_cert_path.c_str());
#endif
    }

    bool retryable = true, healthy = false;
    double retry_after = -1.0;
    auto res = client->Post(full_path.c_str(), headers, payload, "application/json");
    if (!res) {
      last_status = 0;
      last_error = "request failed: " + httplib::to_string(res.error());
      // A certificate that does not verify will not verify on the next attempt either.
      if (res.error() == httplib::Error::SSLServerVerification || res.error() == httplib::Error::SSLLoadingCerts)
        retryable = false;
    } else {
      last_status = res->status;
      healthy = true;
      if (res->status >= 200 && res->status < 300) {
        try {
          json parsed = json::parse(res->body);
          if (!parsed.is_object()) throw std::runtime_error("response is not a JSON object");
          if (parsed.contains("error") && !parsed["error"].is_null())
            throw std::runtime_error("response carries an error: " + snippet(parsed["error"].dump()));
          {
            std::lock_guard<std::mutex> lock(pool_->mutex);
            pool_->idle.push_back(std::move(client));
          }
          if (attempts_out) *attempts_out = attempt + 1;
          return parsed;
        } catch (const std::exception& e) {
          last_error = std::string("unusable response body (") + e.what() + "): " + snippet(res->body);
        }
      } else {
        retryable = retryable_status(res->status);
        last_error = "HTTP " + std::to_string(res->status) + ": " + snippet(res->body);
        if (res->has_header("Retry-After")) retry_after = parse_retry_after(res->get_header_value("Retry-After"));
      }
    }
    if (healthy) {
      std::lock_guard<std::mutex> lock(pool_->mutex);
      pool_->idle.push_back(std::move(client));
    }
    if (!retryable || attempt >= cfg_.max_retries) {
      if (usage_) usage_->failures++;
      throw LlmError(cfg_.base_url + path + ": " + last_error +
                         (retryable ? " (gave up after " + std::to_string(attempt + 1) + " attempts)" : ""),
                     last_status, retryable);
    }
    if (usage_) usage_->retries++;
    sleep_fn_(backoff_delay_s(cfg_, attempt, retry_after, unit_random()));
  }
}

namespace {
// A JSON answer whose shape is wrong is as useless as garbage: parse inside the retry loop.
template <class Parse>
auto post_parsed(LlmClient& client, RoleUsage* usage, const std::string& path, const json& body, int retries_left,
                 Parse parse) {
  for (int round = 0;; ++round) {
    int attempts = 0;
    json response = client.post_json(path, body, &attempts);
    try {
      auto result = parse(response);
      result.attempts = attempts;
      if (usage) {
        usage->requests++;
        usage->prompt_tokens += result.usage.prompt_tokens;
        usage->completion_tokens += result.usage.completion_tokens;
      }
      return result;
    } catch (const std::exception& e) {
      if (round >= retries_left) {
        if (usage) usage->failures++;
        throw LlmError(client.config().base_url + path + ": malformed response (" + e.what() +
                           "): " + snippet(response.dump()),
                       200, true);
      }
      if (usage) usage->retries++;
    }
  }
}
}  // namespace

CompletionResult LlmClient::chat(const ChatRequest& request) {
  return post_parsed(*this, usage_, "/chat/completions", chat_request_body(request), std::min(cfg_.max_retries, 2),
                     [](const json& r) {
                       CompletionResult out;
                       out.choices = parse_choices(r, true);
                       out.usage = parse_usage(r);
                       return out;
                     });
}

CompletionResult LlmClient::complete(const CompletionRequest& request) {
  return post_parsed(*this, usage_, "/completions", completion_request_body(request), std::min(cfg_.max_retries, 2),
                     [](const json& r) {
                       CompletionResult out;
                       out.choices = parse_choices(r, false);
                       out.usage = parse_usage(r);
                       return out;
                     });
}

EmbeddingResult LlmClient::embed(const std::string& model, const std::vector<std::string>& inputs) {
  PCM_CHECK(!inputs.empty(), "embed: no inputs");
  json body = {{"model", model}, {"input", inputs}};
  size_t expected = inputs.size();
  return post_parsed(*this, usage_, "/embeddings", body, std::min(cfg_.max_retries, 2), [expected](const json& r) {
    if (!r.contains("data") || !r["data"].is_array()) throw std::runtime_error("response has no data array");
    if (r["data"].size() != expected)
      throw std::runtime_error("expected " + std::to_string(expected) + " embeddings, got " +
                               std::to_string(r["data"].size()));
    EmbeddingResult out;
    out.embeddings.assign(expected, {});
    std::vector<bool> seen(expected, false);
    size_t position = 0;
    for (const auto& item : r["data"]) {
      size_t index = item.contains("index") && item["index"].is_number_integer() ? item["index"].get<size_t>()
                                                                                   : position;
      ++position;
      if (index >= expected || seen[index]) throw std::runtime_error("embedding index out of range or repeated");
      if (!item.contains("embedding") || !item["embedding"].is_array() || item["embedding"].empty())
        throw std::runtime_error("an item has no embedding array");
      seen[index] = true;
      auto& vec = out.embeddings[index];
      for (const auto& x : item["embedding"]) {
        if (!x.is_number()) throw std::runtime_error("an embedding holds a non-number");
        vec.push_back(x.get<float>());
      }
    }
    size_t dim = out.embeddings[0].size();
    for (const auto& v : out.embeddings)
      if (v.size() != dim) throw std::runtime_error("embeddings differ in dimension");
    out.usage = parse_usage(r);
    return out;
  });
}

}  // namespace pcm::synth
