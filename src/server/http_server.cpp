#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <random>

#include <fmt/format.h>

#include "server/request_deadline.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace pcm::server {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Replaces invalid UTF-8 rather than throwing: output text comes from the model.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string new_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  return fmt::format("{}{:016x}{:08x}", prefix, salt ^ (counter.fetch_add(1) * 0x9e3779b97f4a7c15ull),
                     static_cast<uint32_t>(std::time(nullptr)));
}

int64_t now_seconds() { return static_cast<int64_t>(std::time(nullptr)); }

// One generation request as the HTTP layer sees it.
struct Job {
  bool chat = false;
  GenerationParams gen;
  std::vector<int32_t> prompt;
  std::string id;
  int64_t created = 0;
  std::string model;
};

json usage_json(const RequestUsage& u) {
  return json{{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

// OpenAI has no finish reason for a cancelled choice; it only reaches clients during shutdown.
json finish_json(const std::string& reason) { return reason.empty() ? json(nullptr) : json(reason); }

// Accumulated output of one choice (non-streaming).
struct ChoiceOut {
  std::string text;
  std::vector<int32_t> tokens;
  std::string finish_reason;
};

}  // namespace

struct HttpServer::Impl {
  Scheduler& scheduler;
  const Tokenizer* tokenizer;
  ChatRenderer chat;
  ServerOptions opt;
  httplib::Server http;
  HttpCounters counters;
  std::atomic<bool> shutting_down{false};
  int listen_fd = -1;
  int64_t started = now_seconds();
  std::unique_ptr<RequestDeadline> deadline;  // made by bind(), once the port is known

  Impl(Scheduler& s, const Tokenizer* t, ChatRenderer c, ServerOptions o)
      : scheduler(s), tokenizer(t), chat(std::move(c)), opt(std::move(o)) {}

  void reply_json(httplib::Response& res, int status, const json& body, const std::string& endpoint) {
    res.status = status;
    res.set_content(dump(body), "application/json");
    counters.add(endpoint, status);
  }

  void reply_error(httplib::Response& res, const ApiError& e, const std::string& endpoint) {
    if (e.status == 429 || e.status == 503) res.set_header("Retry-After", std::to_string(opt.retry_after_seconds));
    reply_json(res, e.status, error_body(e), endpoint);
  }

  std::vector<int32_t> tokenize(const Prompt& p, bool add_special, const char* param) {
    std::vector<int32_t> ids;
    if (p.text) {
      if (!tokenizer)
        throw ApiError(400, "this server has no tokenizer (none was found next to the model): send token ids", param,
                       "tokenizer_unavailable");
      try {
        ids = tokenizer->encode(*p.text, add_special);
      } catch (const Error& e) {
        throw ApiError(400, e.what(), param, "invalid_value");
      }
    } else {
      ids = p.ids;
    }
    if (ids.empty()) throw ApiError(400, fmt::format("'{}' encodes to no tokens", param), param, "invalid_value");
    if (static_cast<int64_t>(ids.size()) > opt.limits.max_prompt_tokens)
      throw ApiError(400, fmt::format("the prompt has {} tokens; this server's limit is {}", ids.size(),
                                      opt.limits.max_prompt_tokens), param, "context_length_exceeded");
    const int64_t V = scheduler.vocab_size();
    for (int32_t t : ids)
      if (t >= V)
        throw ApiError(400, fmt::format("token id {} is outside the vocabulary (size {})", t, V), param, "invalid_value");
    return ids;
  }

  GenerationRequest to_request(const Job& job) {
    GenerationRequest r;
    r.prompt = job.prompt;
    r.n = job.gen.n;
    r.max_tokens = job.gen.max_tokens;
    r.sampling = job.gen.sampling;
    if (!job.gen.seed_given) r.sampling.seed = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
    r.stop_ids = job.gen.stop_token_ids;
    if (!job.gen.ignore_eos) {
      int64_t eos = scheduler.model_config().eos_token_id;
      if (tokenizer && tokenizer->eos_id() >= 0) eos = tokenizer->eos_id();
      if (eos >= 0) r.stop_ids.push_back(static_cast<int32_t>(eos));
    }
    r.stop_strings = job.gen.stop;
    for (int64_t p : job.gen.cache_checkpoints)  // positions past the prompt cannot be checkpoints
      if (p < static_cast<int64_t>(r.prompt.size())) r.cache_checkpoints.push_back(p);
    if (!r.stop_strings.empty() && !tokenizer)
      throw ApiError(400, "'stop' strings need a tokenizer; this server has none (use stop_token_ids)", "stop",
                     "tokenizer_unavailable");
    return r;
  }

  RequestHandle submit(const Job& job) {
    if (shutting_down) throw ApiError(503, "the server is shutting down", "", "server_shutting_down", "server_error");
    SubmitResult r = scheduler.submit(to_request(job));
    switch (r.status) {
      case SubmitStatus::Accepted: return std::move(r.handle);
      case SubmitStatus::QueueFull:
        throw ApiError(429, "the server is busy: " + r.message + "; retry later", "", "rate_limit_exceeded",
                       "rate_limit_error");
      case SubmitStatus::ShuttingDown:
        throw ApiError(503, r.message, "", "server_shutting_down", "server_error");
      case SubmitStatus::Invalid: break;
    }
    throw ApiError(400, r.message, "", "invalid_value");
  }

  json choice_json(const Job& job, int64_t index, const ChoiceOut& c) {
    json ch = {{"index", index}};
    if (job.chat)
      ch["message"] = {{"role", "assistant"}, {"content", c.text}};
    else
      ch["text"] = c.text;
    ch["logprobs"] = nullptr;
    ch["finish_reason"] = finish_json(c.finish_reason);
    if (job.gen.return_token_ids || !tokenizer) ch["token_ids"] = c.tokens;
    return ch;
  }

  // A non-streaming request in progress.
  struct Blocking {
    Job job;
    RequestHandle handle;
    std::vector<ChoiceOut> out;
    std::vector<ChoiceEvent> events;
    bool done = false;
    bool pump(std::chrono::milliseconds wait) {
      events.clear();
      done = handle.poll(events, wait);
      for (ChoiceEvent& ev : events) {
        ChoiceOut& c = out[static_cast<size_t>(ev.index)];
        c.text += ev.text;
        c.tokens.insert(c.tokens.end(), ev.tokens.begin(), ev.tokens.end());
        if (!ev.finish_reason.empty()) c.finish_reason = ev.finish_reason;
      }
      return done;
    }
  };

  // The finished response body; throws ApiError when the engine failed or the shutdown cancelled it.
  json blocking_body(Blocking& b) {
    for (const ChoiceOut& c : b.out) {
      if (c.finish_reason == "error")
        throw ApiError(500, b.handle.error().empty() ? "the engine failed" : b.handle.error(), "", "engine_error",
                       "server_error");
      if (c.finish_reason == "cancelled")
        throw ApiError(503, "the request was cancelled because the server is shutting down", "",
                       "server_shutting_down", "server_error");
    }
    json body = {{"id", b.job.id},
                 {"object", b.job.chat ? "chat.completion" : "text_completion"},
                 {"created", b.job.created},
                 {"model", b.job.model},
                 {"system_fingerprint", nullptr}};
    json choices = json::array();
    for (size_t i = 0; i < b.out.size(); ++i) choices.push_back(choice_json(b.job, static_cast<int64_t>(i), b.out[i]));
    body["choices"] = std::move(choices);
    body["usage"] = usage_json(b.handle.usage());
    return body;
  }

  // Requests that finish within a few seconds get an ordinary response. Longer ones switch to a chunked
  // body that sends a space (JSON allows leading whitespace) every second while the model works: a client
  // that went away is then noticed at a failed write and its request cancelled, as for streams. The
  // status (200) is committed by then, so a later failure is reported in the body only.
  void generate_blocking(const Job& job, httplib::Response& res, const std::string& endpoint) {
    auto b = std::make_shared<Blocking>();
    b->job = job;
    b->handle = submit(job);
    b->out.resize(static_cast<size_t>(job.gen.n));
    const auto deadline = std::chrono::steady_clock::now() + opt.blocking_patience;
    while (!b->pump(std::min<std::chrono::milliseconds>(200ms, opt.blocking_patience)) &&
           std::chrono::steady_clock::now() < deadline) {
    }
    if (b->done) {
      reply_json(res, 200, blocking_body(*b), endpoint);
      return;
    }
    res.status = 200;
    counters.add(endpoint, 200);
    res.set_chunked_content_provider(
        "application/json",
        [this, b](size_t, httplib::DataSink& sink) {
          if (!b->pump(std::min<std::chrono::milliseconds>(1000ms, opt.blocking_patience))) return sink.write(" ", 1);
          std::string body;
          try {
            body = dump(blocking_body(*b));
          } catch (const ApiError& e) {
            body = dump(error_body(e));
          }
          if (!sink.write(body.data(), body.size())) return false;
          sink.done();
          return true;
        },
        [b](bool) {
          if (!b->done) b->handle.cancel();
        });
  }

  // SSE: `data: {chunk}\n\n` per event, then `data: [DONE]\n\n`. A failed write (client gone) ends the
  // stream; dropping the handle cancels the request, freeing its slots at the next engine step.
  using Clock = std::chrono::steady_clock;
  struct Stream {
    Job job;
    bool cancelled = false;
    RequestHandle handle;
    bool finished = false;
    Clock::time_point last_write;
    std::vector<ChoiceEvent> events;
  };

  json chunk(const Job& job, json choices) {
    return json{{"id", job.id},
                {"object", job.chat ? "chat.completion.chunk" : "text_completion"},
                {"created", job.created},
                {"model", job.model},
                {"system_fingerprint", nullptr},
                {"choices", std::move(choices)}};
  }

  static bool send(httplib::DataSink& sink, const std::string& payload) {
    const std::string frame = "data: " + payload + "\n\n";
    return sink.write(frame.data(), frame.size());
  }

  void generate_streaming(const Job& job, httplib::Response& res, const std::string& endpoint) {
    auto st = std::make_shared<Stream>();
    st->job = job;
    st->handle = submit(job);
    st->last_write = Clock::now();
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    counters.add(endpoint, 200);
    const bool with_ids = job.gen.return_token_ids || !tokenizer;
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, st, with_ids](size_t offset, httplib::DataSink& sink) {
          const Job& j = st->job;
          if (offset == 0 && j.chat) {  // the role first, as OpenAI does
            json choices = json::array();
            for (int64_t i = 0; i < j.gen.n; ++i)
              choices.push_back({{"index", i},
                                 {"delta", {{"role", "assistant"}, {"content", ""}}},
                                 {"logprobs", nullptr},
                                 {"finish_reason", nullptr}});
            if (!send(sink, dump(chunk(j, std::move(choices))))) return false;
            st->last_write = Clock::now();
          }
          st->events.clear();
          const bool done = st->handle.poll(st->events, 100ms);
          for (ChoiceEvent& ev : st->events) {
            json c = {{"index", ev.index}};
            if (j.chat) {
              c["delta"] = ev.text.empty() && !ev.finish_reason.empty() ? json::object() : json{{"content", ev.text}};
            } else {
              c["text"] = ev.text;
            }
            c["logprobs"] = nullptr;
            const bool real_finish = ev.finish_reason != "cancelled" && ev.finish_reason != "error";
            c["finish_reason"] = real_finish ? finish_json(ev.finish_reason) : json(nullptr);
            if (with_ids) c["token_ids"] = ev.tokens;
            if (ev.finish_reason == "cancelled") st->cancelled = true;
            // Tokens with no text (skipped special tokens, characters still incomplete) make no chunk.
            if (ev.text.empty() && !real_finish && (!with_ids || ev.tokens.empty())) continue;
            if (!send(sink, dump(chunk(j, json::array({std::move(c)}))))) return false;
            st->last_write = Clock::now();
          }
          if (!done) {
            // An SSE comment now and then: a client that went away is noticed (the write fails) even
            // while nothing is generated, e.g. during a long prefill or in the queue.
            if (Clock::now() - st->last_write > 1s) {
              static const std::string ping = ": ping\n\n";
              if (!sink.write(ping.data(), ping.size())) return false;
              st->last_write = Clock::now();
            }
            return true;
          }
          std::string err = st->handle.error();
          if (!err.empty() || st->cancelled) {
            ApiError e = err.empty() ? ApiError(503, "the request was cancelled because the server is shutting down",
                                                "", "server_shutting_down", "server_error")
                                     : ApiError(500, err, "", "engine_error", "server_error");
            if (!send(sink, dump(error_body(e)))) return false;
          } else if (j.gen.include_usage) {
            json u = chunk(j, json::array());
            u["usage"] = usage_json(st->handle.usage());
            if (!send(sink, dump(u))) return false;
          }
          if (!send(sink, "[DONE]")) return false;
          st->finished = true;
          sink.done();
          return true;
        },
        [st](bool) {
          if (!st->finished) st->handle.cancel();
        });
  }

  // Leading system messages are often shared by many conversations: ask the scheduler to keep the state
  // at their end. Only when the rendered system part tokenizes to an exact prefix of the prompt.
  void system_prompt_checkpoint(const json& messages, Job& job) {
    size_t k = 0;
    while (k < messages.size() && messages[k]["role"] == "system") ++k;
    if (k == 0 || k == messages.size()) return;
    std::vector<int32_t> ids;
    try {
      ids = tokenizer->encode(chat(json(std::vector<json>(messages.begin(), messages.begin() + static_cast<long>(k))),
                                   false),
                              false);
    } catch (const std::exception&) {
      return;  // a template may refuse a system-only conversation: then there is no checkpoint
    }
    if (ids.empty() || ids.size() >= job.prompt.size() || !std::equal(ids.begin(), ids.end(), job.prompt.begin())) return;
    job.gen.cache_checkpoints.insert(job.gen.cache_checkpoints.begin(), static_cast<int64_t>(ids.size()));
    std::sort(job.gen.cache_checkpoints.begin(), job.gen.cache_checkpoints.end());
    job.gen.cache_checkpoints.erase(std::unique(job.gen.cache_checkpoints.begin(), job.gen.cache_checkpoints.end()),
                                    job.gen.cache_checkpoints.end());
  }

  void handle_generation(const httplib::Request& req, httplib::Response& res, bool chat) {
    const std::string endpoint = chat ? "/v1/chat/completions" : "/v1/completions";
    try {
      json body = parse_body(req.body);
      Job job;
      job.chat = chat;
      job.created = now_seconds();
      if (chat) {
        ChatRequest r = parse_chat_request(body, opt.limits);
        job.gen = std::move(r.gen);
        if (!this->chat)
          throw ApiError(400, "this model has no chat template; use /v1/completions", "messages",
                         "chat_template_unavailable");
        if (!tokenizer)
          throw ApiError(400, "this server has no tokenizer; use /v1/completions with token ids", "messages",
                         "tokenizer_unavailable");
        std::string text;
        try {
          text = this->chat(r.messages, true);
        } catch (const std::exception& e) {  // raise_exception() in the template, or a message it cannot use
          throw ApiError(400, std::string("the chat template refused the messages: ") + e.what(), "messages",
                         "invalid_value");
        }
        // The template writes the special tokens (BOS) itself.
        job.prompt = tokenize(Prompt{text, {}}, /*add_special=*/false, "messages");
        system_prompt_checkpoint(r.messages, job);
        job.id = new_id("chatcmpl-");
      } else {
        CompletionRequest r = parse_completion_request(body, opt.limits);
        job.gen = std::move(r.gen);
        job.prompt = tokenize(r.prompt, /*add_special=*/true, "prompt");
        job.id = new_id("cmpl-");
      }
      job.model = job.gen.model.empty() ? opt.limits.model_name : job.gen.model;
      if (job.gen.n > scheduler.config().max_slots)
        throw ApiError(400, fmt::format("'n' must be at most {} (the server's slots)", scheduler.config().max_slots),
                       "n", "invalid_value");
      if (job.gen.stream)
        generate_streaming(job, res, endpoint);
      else
        generate_blocking(job, res, endpoint);
    } catch (const ApiError& e) {
      reply_error(res, e, endpoint);
    }
  }

  void handle_embeddings(const httplib::Request& req, httplib::Response& res) {
    const std::string endpoint = "/v1/embeddings";
    try {
      EmbeddingRequest r = parse_embedding_request(parse_body(req.body), opt.limits);
      std::vector<std::vector<int32_t>> inputs;
      int64_t tokens = 0;
      for (const Prompt& p : r.inputs) {
        inputs.push_back(tokenize(p, /*add_special=*/true, "input"));
        tokens += static_cast<int64_t>(inputs.back().size());
      }
      if (shutting_down) throw ApiError(503, "the server is shutting down", "", "server_shutting_down", "server_error");
      std::future<EmbeddingResult> fut;
      std::string message;
      switch (scheduler.submit_embeddings(std::move(inputs), &fut, &message)) {
        case SubmitStatus::Accepted: break;
        case SubmitStatus::QueueFull: throw ApiError(429, message, "", "rate_limit_exceeded", "rate_limit_error");
        case SubmitStatus::ShuttingDown: throw ApiError(503, message, "", "server_shutting_down", "server_error");
        case SubmitStatus::Invalid: throw ApiError(400, message, "input", "invalid_value");
      }
      EmbeddingResult result = fut.get();
      if (!result.error.empty()) throw ApiError(500, result.error, "", "engine_error", "server_error");
      json data = json::array();
      for (size_t i = 0; i < result.vectors.size(); ++i) {
        const auto& v = result.vectors[i];
        json e = {{"object", "embedding"}, {"index", i}};
        if (r.base64)
          e["embedding"] = base64_encode(v.data(), v.size() * sizeof(float));  // x86: little-endian already
        else
          e["embedding"] = v;
        data.push_back(std::move(e));
      }
      reply_json(res, 200,
                 json{{"object", "list"},
                      {"data", std::move(data)},
                      {"model", r.model.empty() ? opt.limits.model_name : r.model},
                      {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}},
                 endpoint);
    } catch (const ApiError& e) {
      reply_error(res, e, endpoint);
    }
  }

  json model_json() const {
    return json{{"id", opt.limits.model_name}, {"object", "model"}, {"created", started}, {"owned_by", "pcm"}};
  }

  // A route's handler: the request is in (headers and body), so the connection is being answered, not read from,
  // until the logger sees the answer out (RequestDeadline).
  template <class F>
  httplib::Server::Handler serving(F handler) {
    return [this, handler](const httplib::Request& q, httplib::Response& r) {
      if (deadline) deadline->serving(q.remote_addr, q.remote_port);
      handler(q, r);
    };
  }

  void routes() {
    http.set_logger([this](const httplib::Request& q, const httplib::Response&) {
      if (deadline) deadline->answered(q.remote_addr, q.remote_port);
    });
    http.Post("/v1/completions",
              serving([this](const httplib::Request& q, httplib::Response& r) { handle_generation(q, r, false); }));
    http.Post("/v1/chat/completions",
              serving([this](const httplib::Request& q, httplib::Response& r) { handle_generation(q, r, true); }));
    http.Post("/v1/embeddings",
              serving([this](const httplib::Request& q, httplib::Response& r) { handle_embeddings(q, r); }));
    http.Get("/v1/models", serving([this](const httplib::Request&, httplib::Response& r) {
      reply_json(r, 200, json{{"object", "list"}, {"data", json::array({model_json()})}}, "/v1/models");
    }));
    http.Get(R"(/v1/models/(.+))", serving([this](const httplib::Request& q, httplib::Response& r) {
      if (q.matches[1] == opt.limits.model_name)
        reply_json(r, 200, model_json(), "/v1/models");
      else
        reply_error(r, ApiError(404, fmt::format("The model '{}' does not exist", std::string(q.matches[1])), "model",
                                "model_not_found"), "/v1/models");
    }));
    http.Get("/health", serving([this](const httplib::Request&, httplib::Response& r) {
      if (shutting_down)
        reply_json(r, 503, json{{"status", "shutting_down"}}, "/health");
      else
        reply_json(r, 200, json{{"status", "ok"}}, "/health");
    }));
    http.Get("/metrics", serving([this](const httplib::Request&, httplib::Response& r) {
      r.set_content(render_metrics(scheduler.stats(), counters, opt.limits.model_name),
                    "text/plain; version=0.0.4; charset=utf-8");
      counters.add("/metrics", 200);
    }));
    // httplib reads a body whose Content-Length is over the limit (or "-5", which wraps to 2^64 - 5) before it answers
    // 413, until the client has been quiet for the 30 s read timeout: the header is checked before the body is read,
    // and the answer says Connection: close (the unread body is no next request; httplib drops the connection once
    // its keep-alive wait ends).
    http.set_pre_routing_handler([this](const httplib::Request& q, httplib::Response& r) {
      if (!q.has_header("Content-Length")) return httplib::Server::HandlerResponse::Unhandled;
      const std::string v = q.get_header_value("Content-Length");
      uint64_t n = 0;  // one pass: only digits (no sign, no space), and digits past 2^64 are over the limit too
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      const bool digits = !v.empty() && end == v.data() + v.size() && ec != std::errc::invalid_argument;
      const bool fits = digits && ec == std::errc();
      if (fits && n <= opt.max_body_bytes) return httplib::Server::HandlerResponse::Unhandled;
      r.set_header("Connection", "close");
      if (digits)
        reply_json(r, 413, error_body(fmt::format("the request body ({} bytes by Content-Length) exceeds {} bytes",
                                                  v.substr(0, 40), opt.max_body_bytes), "invalid_request_error", "", ""),
                   "other");
      else
        reply_json(r, 400, error_body(fmt::format("Content-Length '{}' is not a byte count", v.substr(0, 40)),
                                      "invalid_request_error", "", ""), "other");
      return httplib::Server::HandlerResponse::Handled;
    });
    http.set_error_handler([this](const httplib::Request& q, httplib::Response& r) {
      if (!r.body.empty()) return;  // a handler already wrote an error body
      std::string msg = r.status == 404   ? fmt::format("no route for {} {}", q.method, q.path)
                        : r.status == 413 ? fmt::format("the request body exceeds {} bytes", opt.max_body_bytes)
                                          : fmt::format("HTTP error {}", r.status);
      r.set_content(dump(error_body(msg, r.status == 404 ? "not_found_error" : "invalid_request_error", "", "")),
                    "application/json");
      counters.add("other", r.status);
    });
    http.set_exception_handler([this](const httplib::Request&, httplib::Response& r, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      r.status = 500;
      r.set_content(dump(error_body(what, "server_error", "", "internal_error")), "application/json");
      counters.add("other", 500);
    });
  }
};

HttpServer::HttpServer(Scheduler& scheduler, const Tokenizer* tokenizer, ChatRenderer chat, ServerOptions options)
    : impl_(std::make_unique<Impl>(scheduler, tokenizer, std::move(chat), options)), options_(std::move(options)) {
  PCM_CHECK(options_.http_threads <= kMaxHttpThreads, "{} HTTP threads: at most {}", options_.http_threads,
            kMaxHttpThreads);
  const int threads = std::max(options_.http_threads, 2);
  impl_->http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  impl_->http.set_payload_max_length(options_.max_body_bytes);
  // httplib listens with a backlog of 5: a burst of clients overflows it and connections stall or fail.
  // Remember the socket so bind() can raise the backlog (listen() again on Linux just updates it).
  impl_->http.set_socket_options([impl = impl_.get()](int fd) {
    httplib::default_socket_options(fd);
    impl->listen_fd = fd;
  });
  // Responses go out in several writes (headers, body, each SSE event). With Nagle's algorithm on, a write
  // behind unacknowledged data waits for the client's delayed ACK (40 ms on Linux): every request on a
  // kept-alive connection (the openai client's pool) took 40+ ms (tests/server/tcp_nodelay_test.cpp).
  // Accepted sockets inherit TCP_NODELAY from the listening socket.
  impl_->http.set_tcp_nodelay(true);
  impl_->http.set_keep_alive_timeout(2);
  impl_->http.set_read_timeout(30);
  impl_->routes();
}

HttpServer::~HttpServer() {
  if (impl_->http.is_running()) impl_->http.stop();
}

int HttpServer::bind() {
  int port = options_.port == 0 ? impl_->http.bind_to_any_port(options_.host)
                                : (impl_->http.bind_to_port(options_.host, options_.port) ? options_.port : -1);
  PCM_CHECK(port > 0, "cannot listen on {}:{} (address in use or not local?)", options_.host, options_.port);
  if (impl_->listen_fd >= 0) ::listen(impl_->listen_fd, SOMAXCONN);
  options_.port = port;
  impl_->deadline = std::make_unique<RequestDeadline>(port, options_.request_read_limit);
  return port;
}

void HttpServer::run() { impl_->http.listen_after_bind(); }

void HttpServer::shutdown(std::chrono::milliseconds grace) {
  impl_->shutting_down = true;
  impl_->scheduler.close();
  if (!impl_->scheduler.wait_idle(grace)) impl_->scheduler.cancel_all();
  // Streams relay their last events ([DONE] or the shutdown error) before the listener goes.
  impl_->scheduler.wait_idle(5s);
  std::this_thread::sleep_for(150ms);
  impl_->http.stop();
}

std::string HttpServer::metrics_text() const {
  return render_metrics(impl_->scheduler.stats(), impl_->counters, options_.limits.model_name);
}

}  // namespace pcm::server
