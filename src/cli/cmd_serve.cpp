// pcm serve: the OpenAI-compatible HTTP server (continuous batching over fixed-size state slots).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/device_options.h"
#include "engine/cuda_engine.h"
#include "engine/scheduler.h"
#include "model/model.h"
#include "model/weights.h"
#include "server/http_server.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/memory_stats.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, weights = "file", host = "127.0.0.1", served_name, shape, tokenizer_dir, chat_template;
  DeviceOptions device;
  int64_t shape_layers = 0;
  int port = 8080;
  int64_t max_slots = 0;
  double max_memory_gb = 0.0, state_cache_gb = 1.0, shutdown_grace_s = 30.0, request_deadline_s = 60.0;
  int64_t max_queue = 64, max_batch_tokens = 0, max_prompt_tokens = 32768, max_tokens_limit = 65536;
  int http_threads = 0, threads = 0;
  bool exact = false;
};

std::optional<Tokenizer> load_tokenizer(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir) || (!fs::exists(fs::path(dir) / "tokenizer.json") &&
                                 !fs::exists(fs::path(dir) / "tokenizer.model"))) {
    std::fprintf(stderr, "serve: no tokenizer.json/tokenizer.model in %s: prompts must be token ids\n", dir.c_str());
    return std::nullopt;
  }
  return Tokenizer::from_dir(dir);
}

// SIGINT/SIGTERM only write a byte to this pipe; the waiter thread reads it and drains the server. A handler
// (not sigwait alone) because a thread the CUDA runtime starts may have the signals unblocked, and a
// signal delivered there with the default action would kill the process instead of draining it.
int shutdown_pipe[2] = {-1, -1};

void on_shutdown_signal(int sig) {
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = write(shutdown_pipe[1], &byte, 1);
}

void install_shutdown_handler() {
  PCM_CHECK(pipe(shutdown_pipe) == 0, "serve: cannot create the shutdown pipe");
  struct sigaction action {};
  action.sa_handler = on_shutdown_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int wait_for_shutdown_signal() {
  unsigned char byte = 0;
  while (read(shutdown_pipe[0], &byte, 1) != 1) {
  }
  return byte;
}

void run(const Options& o) {
  // SIGINT/SIGTERM go to the waiting thread, not to whichever thread the kernel picks: block them before
  // any thread (OpenMP's included) exists, so every thread inherits the mask; the waiter unblocks them.
  install_shutdown_handler();
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  PCM_CHECK(!(o.max_slots > 0 && o.max_memory_gb > 0), "give --max-slots or --max-memory, not both");
  PCM_CHECK(o.state_cache_gb >= 0 && std::isfinite(o.state_cache_gb), "--state-cache must be >= 0 GB");
  apply_threads(o.threads);
  const bool cuda = o.device.cuda();
  PCM_CHECK(!cuda || (o.weights == "file" && !o.exact), "--weights q8_0 and --exact are CPU options (--device cpu)");
  PCM_CHECK(o.tokenizer_dir.empty() || !o.shape.empty(), "--tokenizer is for --random-shape (a model directory has its own)");
  std::unique_ptr<Mamba2Model> owned;
  std::unique_ptr<InferenceEngine> cuda_engine;
  std::optional<Tokenizer> tokenizer;
  std::string dir, tokenizer_dir;
  if (!o.shape.empty()) {  // benchmarks: random weights; token-id prompts unless --tokenizer DIR
    PCM_CHECK(o.model.empty(), "give --model or --random-shape, not both");
    dir = o.shape;
    tokenizer_dir = o.tokenizer_dir;
  } else {
    dir = o.model.empty() ? default_model_dir() : o.model;
    PCM_CHECK(!dir.empty(), "no --model given and no shipped model found");
    tokenizer_dir = dir;
  }
  // Every running or queued request holds an HTTP thread while it waits (with fewer threads, extra clients would hang
  // in the connection queue instead of getting a 429), so by default slots + queue + 16 threads, at most
  // server::kMaxHttpThreads: checked on the options before any model is read, and again on the slots derived from
  // memory. (--max-slots 100000 of a tiny model started threads until the machine's limit; then every fork failed.)
  const auto default_http_threads = [&](int64_t slots) { return slots + o.max_queue + 16; };
  const auto check_thread_budget = [&](int64_t slots) {
    if (o.http_threads > 0) return;
    PCM_CHECK(default_http_threads(slots) <= server::kMaxHttpThreads,
              "{} slots + {} queued + 16 = {} HTTP threads (each running or queued request holds one): more than the {} "
              "a server runs; lower --max-slots / --max-memory or --max-queue", slots, o.max_queue,
              default_http_threads(slots), server::kMaxHttpThreads);
  };
  check_thread_budget(o.max_slots);  // 0: derived below
  SchedulerConfig sc;
  sc.max_queue = o.max_queue;
  sc.max_batch_tokens = o.max_batch_tokens;
  sc.state_cache_bytes = static_cast<size_t>(o.state_cache_gb * 1e9);
  size_t state_bytes = 0;
  if (cuda) {
    CudaEngineOptions eo = o.device.engine_options(o.shape.empty() ? dir : "");
    eo.shape = o.shape;
    eo.shape_layers = o.shape_layers;
    eo.max_slots = o.max_slots;
    eo.max_memory_gb = o.max_memory_gb;
    if (o.max_batch_tokens > 0) eo.max_batch_tokens = o.max_batch_tokens;
    cuda_engine = make_cuda_engine(eo);
    sc.max_slots = cuda_engine->slot_count();
    state_bytes = cuda_engine->state_bytes();
  } else if (!o.shape.empty()) {
    const Mamba2Config c = named_shape(o.shape, o.shape_layers);
    owned = std::make_unique<Mamba2Model>(c, random_mamba2_weights(c, DType::BF16, 1234));
    if (o.weights == "q8_0") owned->quantize_q8_0();
  } else {
    owned = std::make_unique<Mamba2Model>(load_model(dir, o.weights));
  }
  if (owned) {
    owned->set_exact(o.exact);
    state_bytes = owned->new_state().bytes();
    if (o.max_slots > 0) check_fits_in_memory(fmt::format("--max-slots {}", o.max_slots), o.max_slots, static_cast<double>(state_bytes), "states");
    const double ram = static_cast<double>(physical_memory_bytes());
    PCM_CHECK(o.max_memory_gb * 1e9 <= ram, "--max-memory {} GB: more than this machine's {:.1f} GB of memory",
              o.max_memory_gb, ram / 1e9);
    sc.max_slots = o.max_memory_gb > 0 ? SchedulerConfig::slots_for_memory(o.max_memory_gb * 1e9, state_bytes)
                                       : (o.max_slots > 0 ? o.max_slots : 8);
  }
  check_thread_budget(sc.max_slots);
  if (!tokenizer_dir.empty()) tokenizer = load_tokenizer(tokenizer_dir);
  const int64_t model_vocab = cuda ? cuda_engine->vocab_size() : owned->vocab_size();
  if (tokenizer && static_cast<int64_t>(tokenizer->vocab_size()) > model_vocab)
    fail("--tokenizer {}: its {} tokens do not fit the model's vocabulary of {}", tokenizer_dir, tokenizer->vocab_size(),
         model_vocab);

  server::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.http_threads = o.http_threads > 0 ? o.http_threads : static_cast<int>(default_http_threads(sc.max_slots));
  so.limits.model_name = o.served_name.empty() ? std::filesystem::path(dir).filename().string() : o.served_name;
  if (so.limits.model_name.empty()) so.limits.model_name = std::filesystem::path(dir).parent_path().filename().string();
  so.limits.max_prompt_tokens = o.max_prompt_tokens;
  so.limits.max_tokens = o.max_tokens_limit;
  so.limits.max_n = sc.max_slots;
  so.request_read_limit = std::chrono::milliseconds(static_cast<int64_t>(o.request_deadline_s * 1000));


  const Tokenizer* tok = tokenizer ? &*tokenizer : nullptr;
  auto scheduler_owner = cuda ? std::make_unique<Scheduler>(std::move(cuda_engine), tok, sc)
                              : std::make_unique<Scheduler>(*owned, tok, sc);
  Scheduler& scheduler = *scheduler_owner;
  scheduler.start();
  // /v1/chat/completions renders the model's chat template (or --chat-template FILE); without one (or
  // without a tokenizer) the endpoint answers 400 chat_template_unavailable and /v1/completions still works.
  server::ChatRenderer renderer;
  if (tokenizer && (!o.chat_template.empty() || ChatTemplate::available(tokenizer_dir))) {
    auto tmpl = std::make_shared<const ChatTemplate>(ChatTemplate::load(tokenizer_dir, o.chat_template));
    renderer = [tmpl](const nlohmann::json& messages, bool add_generation_prompt) {
      return tmpl->render(messages, add_generation_prompt);
    };
    std::fprintf(stderr, "serve: chat template from %s\n", tmpl->origin().c_str());
  } else if (tokenizer) {
    std::fprintf(stderr, "serve: no chat template in %s: /v1/chat/completions is unavailable (give --chat-template FILE)\n",
                 tokenizer_dir.c_str());
  }
  server::HttpServer http(scheduler, tokenizer ? &*tokenizer : nullptr, renderer, so);
  const int port = http.bind();
  std::fprintf(stderr,
               "serve: %s on %s as '%s' on http://%s:%d — %lld slots x %.1f MiB state, state cache %.2f GB, "
               "%lld tokens per step\n",
               dir.c_str(), cuda ? "cuda" : "cpu", so.limits.model_name.c_str(), o.host.c_str(), port, static_cast<long long>(sc.max_slots),
               static_cast<double>(state_bytes) / (1 << 20), o.state_cache_gb,
               static_cast<long long>(scheduler.max_batch_tokens()));
  std::thread waiter([&] {
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    const int sig = wait_for_shutdown_signal();
    std::fprintf(stderr, "serve: %s: refusing new requests, finishing in-flight ones (up to %.0f s)\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", o.shutdown_grace_s);
    http.shutdown(std::chrono::milliseconds(static_cast<int64_t>(o.shutdown_grace_s * 1000)));
  });
  http.run();
  waiter.join();
  scheduler.stop();
  SchedulerStats s = scheduler.stats();
  std::fprintf(stderr, "serve: stopped after %lld requests (%lld cancelled), %lld tokens generated\n",
               static_cast<long long>(s.requests_finished + s.requests_cancelled),
               static_cast<long long>(s.requests_cancelled), static_cast<long long>(s.generated_tokens));
}

PCM_REGISTER_COMMAND({"serve", "OpenAI-compatible HTTP server with continuous batching",
                      [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--model,-m", o->model, "model directory (default: the shipped model)");
                        sub->add_option("--random-shape,--shape", o->shape,
                                        "serve random bf16 weights of a published shape (mamba2-130m, codestral-7b, "
                                        "...) for load tests; token-id prompts unless --tokenizer DIR");
                        sub->add_option("--tokenizer", o->tokenizer_dir,
                                        "with --random-shape: a tokenizer directory (text prompts; its chat template)");
                        sub->add_option("--shape-layers", o->shape_layers, "with --shape: override the layer count")
                            ->check(positive());
                        sub->add_option("--host", o->host, "address to listen on")->capture_default_str();
                        sub->add_option("--chat-template", o->chat_template, "a Jinja file to use instead of the model's chat template");
                        sub->add_option("--port", o->port, "port (0 = any free port)")
                            ->check(in_range(0, 65535))
                            ->capture_default_str();
                        sub->add_option("--max-slots", o->max_slots,
                                        "concurrent sequences (one fixed-size state each; default 8, with --device cuda what fits in "
                                        "the GPU's free memory)")
                            ->check(positive());
                        sub->add_option("--max-memory", o->max_memory_gb,
                                        "GB (host, or GPU with --device cuda) for sequence states: the slot count is derived from it")
                            ->check(positive());
                        sub->add_option("--state-cache", o->state_cache_gb, "GB for the prompt-state cache (0 = off)")
                            ->capture_default_str();
                        sub->add_option("--max-queue", o->max_queue, "requests waiting for a slot before 429")
                            ->check(non_negative())
                            ->capture_default_str();
                        sub->add_option("--max-batch-tokens", o->max_batch_tokens,
                                        "tokens per engine step (decode rows + prefill chunks; default: the model's)")
                            ->check(non_negative());
                        sub->add_option("--max-prompt-tokens", o->max_prompt_tokens, "longest prompt accepted")
                            ->check(positive())
                            ->capture_default_str();
                        sub->add_option("--max-tokens-limit", o->max_tokens_limit,
                                        "largest max_tokens accepted (and the chat default)")
                            ->check(positive())
                            ->capture_default_str();
                        sub->add_option("--served-model-name", o->served_name,
                                        "the model id clients send (default: the model directory's name)");
                        sub->add_option("--http-threads", o->http_threads,
                                        "HTTP worker threads; every running or queued request holds one (default: "
                                        "slots + queue + 16)")
                            ->check(in_range(2, server::kMaxHttpThreads));
                        sub->add_option("--request-deadline", o->request_deadline_s,
                                        "seconds a client may take to send one request, headers and body (0: no "
                                        "limit); a slower connection is closed")
                            ->check(in_range(0, 86400))
                            ->capture_default_str();
                        sub->add_option("--shutdown-grace", o->shutdown_grace_s,
                                        "seconds in-flight requests may take after SIGINT/SIGTERM")
                            ->check(non_negative())
                            ->capture_default_str();
                        sub->add_flag("--exact", o->exact, "fp32 activations in every projection");
                        add_device_options(sub, &o->device);
                        add_weights_option(sub, &o->weights);
                        add_threads_option(sub, &o->threads);
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
