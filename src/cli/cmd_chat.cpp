// pcm chat: interactive multi-turn chat with the model's chat template. The state is fixed-size, so each
// turn prefills only the new message (ChatSession), never the whole history.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/common.h"
#include "engine/chat_session.h"
#include "util/error.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, system, chat_template, weights = "file";
  std::vector<std::string> stops;
  int64_t max_new_tokens = 512;
  SamplingParams sampling;
  int threads = 0;
};

void run(const Options& o) {
  apply_threads(o.threads);
  std::string dir = o.model.empty() ? default_model_dir() : o.model;
  PCM_CHECK(!dir.empty(), "no --model given and no shipped model found");
  Mamba2Model model = load_model(dir, o.weights);
  Tokenizer tokenizer = Tokenizer::from_dir(dir);
  ChatTemplate chat = ChatTemplate::load(dir, o.chat_template);
  ChatSession session(model, tokenizer, chat);
  GenerateOptions g;
  g.max_new_tokens = o.max_new_tokens;
  g.sampling = o.sampling;
  if (tokenizer.eos_id() >= 0) g.stop_ids.push_back(tokenizer.eos_id());
  if (model.config().eos_token_id >= 0) g.stop_ids.push_back(static_cast<int32_t>(model.config().eos_token_id));
  json messages = json::array();
  auto start = [&] {
    messages = json::array();
    if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
    session.reset();
  };
  start();
  std::fprintf(stderr, "chat with %s (/reset starts over, /exit or Ctrl-D quits)\n", dir.c_str());
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
    messages.push_back({{"role", "user"}, {"content", line}});
    bool restarted = false;
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t prefilled = session.sync(messages, true, &restarted);
    const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (restarted) std::fprintf(stderr, "(note: the template re-rendered earlier turns differently; prefilled the conversation again)\n");
    GenerateResult r;
    const std::string reply = session.reply(g, o.stops, [](const std::string& piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }, &r);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    messages.push_back({{"role", "assistant"}, {"content", reply}});
    std::fprintf(stderr, "[prefilled %lld new tokens in %.3f s; %zu tokens at %.1f tok/s; the state covers %zu tokens]\n",
                 static_cast<long long>(prefilled), prefill_s, r.tokens.size(),
                 r.decode_seconds > 0 ? static_cast<double>(r.tokens.size()) / r.decode_seconds : 0.0, session.covered().size());
  }
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
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
