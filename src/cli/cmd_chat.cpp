// pcm chat: interactive multi-turn chat with the model's chat template. The state is fixed-size, so each
// turn prefills only the new message, never the whole history: ChatSession on the CPU; with --device cuda
// the scheduler over the CUDA engine, whose prompt-state cache keeps the state at the end of each reply.
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/device_options.h"
#include "engine/cuda_engine.h"
#include "engine/scheduler.h"
#include "engine/chat_session.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, system, chat_template, weights = "file";
  std::vector<std::string> stops;
  int64_t max_new_tokens = 512;
  SamplingParams sampling;
  int threads = 0;
  DeviceOptions device;
};

// One turn on a scheduler: streams the reply to stdout, returns it; *prefilled = tokens run (not cached).
std::string scheduler_turn(Scheduler& scheduler, GenerationRequest req, int64_t* prefilled, int64_t* generated) {
  SubmitResult sub = scheduler.submit(std::move(req));
  PCM_CHECK(sub.status == SubmitStatus::Accepted, "chat: the engine refused the turn: {}", sub.message);
  std::string reply;
  std::vector<ChoiceEvent> events;
  bool done = false;
  while (!done) {
    done = sub.handle.poll(events, std::chrono::milliseconds(100));
    for (const ChoiceEvent& ev : events) {
      std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
      std::fflush(stdout);
      reply += ev.text;
      if (ev.finish_reason == "error") fail("chat: {}", sub.handle.error());
    }
    events.clear();
  }
  const RequestUsage u = sub.handle.usage();
  *prefilled = u.prompt_tokens - u.cached_tokens;
  *generated = u.completion_tokens;
  return reply;
}

// The read-reply loop both devices share: the conversation, /reset, /exit, Ctrl-D. `reply_to` streams one
// reply to stdout for the conversation so far (ending in the user's message) and returns its text.
void chat_loop(const Options& o, const std::string& banner, const std::function<void()>& on_reset,
               const std::function<std::string(const json& messages)>& reply_to) {
  PCM_CHECK(utf8_valid(o.system), "--system: not valid UTF-8");
  json messages = json::array();
  auto start = [&] {
    messages = json::array();
    if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
    on_reset();
  };
  start();
  std::fprintf(stderr, "%s (/reset starts over, /exit or Ctrl-D quits)\n", banner.c_str());
  std::string line;
  while (true) {
    std::fprintf(stderr, "> ");
    std::fflush(stderr);
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line == "/reset") {
      start();
      continue;
    }
    if (line.empty()) continue;
    // The tokenizer takes only UTF-8; a bad line (a terminal in Latin-1, a pasted binary) is refused alone,
    // not by the turn's error ending the session.
    if (const auto bad = utf8_first_invalid(line)) {
      std::fprintf(stderr, "that line is not valid UTF-8 (byte 0x%02X at byte %zu of the line): not sent, type it again\n",
                   static_cast<unsigned>(static_cast<uint8_t>(line[*bad])), *bad + 1);
      continue;
    }
    messages.push_back({{"role", "user"}, {"content", line}});
    const std::string reply = reply_to(messages);
    messages.push_back({{"role", "assistant"}, {"content", reply}});
  }
}

void run_cuda(const Options& o, const std::string& dir) {
  Tokenizer tokenizer = Tokenizer::from_dir(dir);
  ChatTemplate chat = ChatTemplate::load(dir, o.chat_template);
  CudaEngineOptions eo = o.device.engine_options(dir);
  eo.max_slots = 1;
  auto engine = make_cuda_engine(eo);
  SchedulerConfig sc;
  sc.max_slots = 1;
  // Room for the conversation's latest states: each reply's end is cached, so the next turn prefills
  // only the new message.
  sc.state_cache_bytes = 3 * (engine->state_bytes() + static_cast<size_t>(engine->vocab_size()) * 4 + (1 << 20));
  Scheduler scheduler(std::move(engine), &tokenizer, sc);
  scheduler.start();
  chat_loop(o, "chat with " + dir + " on cuda", [] {}, [&](const json& messages) {
    GenerationRequest req;
    req.prompt = tokenizer.encode(chat.render(messages, true), false);  // the template writes special tokens
    req.max_tokens = o.max_new_tokens;
    req.sampling = o.sampling;
    req.stop_strings = o.stops;
    if (tokenizer.eos_id() >= 0) req.stop_ids.push_back(tokenizer.eos_id());
    if (scheduler.model_config().eos_token_id >= 0)
      req.stop_ids.push_back(static_cast<int32_t>(scheduler.model_config().eos_token_id));
    const int64_t prompt_tokens = static_cast<int64_t>(req.prompt.size());
    int64_t prefilled = 0, generated = 0;
    const auto t0 = std::chrono::steady_clock::now();
    std::string reply = scheduler_turn(scheduler, std::move(req), &prefilled, &generated);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fputc('\n', stdout);
    std::fflush(stdout);
    std::fprintf(stderr, "[prefilled %lld of %lld prompt tokens; %lld tokens in %.3f s]\n",
                 static_cast<long long>(prefilled), static_cast<long long>(prompt_tokens),
                 static_cast<long long>(generated), s);
    return reply;
  });
  scheduler.stop();
}

void run(const Options& o) {
  apply_threads(o.threads);
  std::string dir = o.model.empty() ? default_model_dir() : o.model;
  PCM_CHECK(!dir.empty(), "no --model given and no shipped model found");
  if (o.device.cuda()) {
    PCM_CHECK(o.weights == "file", "--weights q8_0 is a CPU option (--device cpu)");
    run_cuda(o, dir);
    return;
  }
  Mamba2Model model = load_model(dir, o.weights);
  Tokenizer tokenizer = Tokenizer::from_dir(dir);
  ChatTemplate chat = ChatTemplate::load(dir, o.chat_template);
  ChatSession session(model, tokenizer, chat);
  GenerateOptions g;
  g.max_new_tokens = o.max_new_tokens;
  g.sampling = o.sampling;
  if (tokenizer.eos_id() >= 0) g.stop_ids.push_back(tokenizer.eos_id());
  if (model.config().eos_token_id >= 0) g.stop_ids.push_back(static_cast<int32_t>(model.config().eos_token_id));
  chat_loop(o, "chat with " + dir, [&] { session.reset(); }, [&](const json& messages) {
    bool restarted = false;
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t prefilled = session.sync(messages, true, &restarted);
    const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (restarted) std::fprintf(stderr, "(note: the template re-rendered earlier turns differently; prefilled the conversation again)\n");
    GenerateResult r;
    std::string reply = session.reply(g, o.stops, [](const std::string& piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }, &r);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    std::fprintf(stderr, "[prefilled %lld new tokens in %.3f s; %zu tokens at %.1f tok/s; the state covers %zu tokens]\n",
                 static_cast<long long>(prefilled), prefill_s, r.tokens.size(),
                 r.decode_seconds > 0 ? static_cast<double>(r.tokens.size()) / r.decode_seconds : 0.0, session.covered().size());
    return reply;
  });
}

PCM_REGISTER_COMMAND({"chat", "Interactive multi-turn chat (each turn prefills only the new message)", [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--model,-m", o->model, "model directory or .gguf (default: the shipped model)");
                        sub->add_option("--system", o->system, "a system message");
                        sub->add_option("--chat-template", o->chat_template, "a Jinja file instead of the model's template");
                        sub->add_option("--max-new-tokens,-n", o->max_new_tokens, "tokens per reply");
                        sub->add_option("--stop", o->stops, "end a reply at this text (repeatable)");
                        add_sampling_options(sub, &o->sampling);
                        add_weights_option(sub, &o->weights);
                        add_threads_option(sub, &o->threads);
                        add_device_options(sub, &o->device);
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
