// pcm generate: chunked prefill of the prompt, then recurrent decode. A token-id prompt prints the new ids
// on one line; a text prompt streams the text as it is generated.
#include <cstdio>
#include <memory>
#include <optional>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/cuda_cli.h"
#include "engine/generator.h"
#include "engine/text_stream.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"
#include "model/model.h"
#include "util/error.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, prompt_ids, prompt, weights = "file";
  std::vector<std::string> stops;
  bool chat = false, prompt_given = false, prompt_ids_given = false;
  int64_t max_new_tokens = 32;
  bool ignore_eos = false;
  SamplingParams sampling;
  int threads = 0;
  bool exact = false;
  std::string device = "cpu", state_dtype = "fp32";
  bool fp32_weights = false;
};

void run(const Options& o) {
  apply_threads(o.threads);
  std::string dir = o.model.empty() ? default_model_dir() : o.model;
  PCM_CHECK(!dir.empty(), "no --model given and no shipped model found");
  PCM_CHECK(o.prompt_given != o.prompt_ids_given, "give exactly one of --prompt TEXT or --prompt-ids IDS");
  const bool text_mode = o.prompt_given;
  PCM_CHECK(!text_mode || !o.prompt.empty(), "empty prompt: --prompt is empty");
  std::optional<Tokenizer> tokenizer;
  std::vector<int32_t> ids;
  if (text_mode) {
    tokenizer = Tokenizer::from_dir(dir);
    std::string text = o.prompt;
    if (o.chat) text = ChatTemplate::from_dir(dir).render(json::array({{{"role", "user"}, {"content", o.prompt}}}), true);
    // A chat template writes the special tokens itself (e.g. <s>): don't add them twice.
    ids = tokenizer->encode(text, /*add_special_tokens=*/!o.chat);
  } else {
    ids = parse_id_list(o.prompt_ids, "--prompt-ids");
  }
  if (o.device == "cuda") {
    PCM_CHECK(!text_mode, "--device cuda: use --prompt-ids (text prompts run on the CPU engine)");
    run_cuda_generate({dir, ids, o.max_new_tokens, o.ignore_eos, o.sampling, o.state_dtype, o.fp32_weights});
    return;
  }
  PCM_CHECK(o.device == "cpu", "--device must be cpu or cuda, got '{}'", o.device);
  Mamba2Model model = load_model(dir, o.weights);
  model.set_exact(o.exact);
  GenerateOptions g;
  g.max_new_tokens = o.max_new_tokens;
  g.sampling = o.sampling;
  if (!o.ignore_eos && model.config().eos_token_id >= 0)
    g.stop_ids.push_back(static_cast<int32_t>(model.config().eos_token_id));
  if (!o.ignore_eos && tokenizer && tokenizer->eos_id() >= 0) g.stop_ids.push_back(tokenizer->eos_id());
  SequenceState state = model.new_state();
  GenerateResult r;
  if (text_mode) {
    TextStreamer streamer(*tokenizer, o.stops);
    r = generate(model, state, ids, g, [&](int32_t id) {
      const std::string piece = streamer.push(id);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return !streamer.stopped();
    });
    const std::string rest = streamer.finish();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);  // the text's last line before the stats on stderr, also through a pipe
    if (streamer.stopped()) r.finish_reason = "stop string";
  } else {
    r = generate(model, state, ids, g);
    std::printf("%s\n", join_ids(r.tokens).c_str());
    std::fflush(stdout);
  }
  double decode_tps = r.tokens.size() > 1 ? static_cast<double>(r.tokens.size() - 1) / r.decode_seconds : 0.0;
  std::fprintf(stderr, "prompt %lld tokens in %.3f s (%.1f tok/s), generated %zu tokens (%.1f tok/s), finish: %s\n",
               static_cast<long long>(r.prompt_tokens), r.prefill_seconds,
               static_cast<double>(r.prompt_tokens) / r.prefill_seconds, r.tokens.size(), decode_tps,
               r.finish_reason.c_str());
}

PCM_REGISTER_COMMAND({"generate", "Generate tokens from a prompt (chunked prefill + recurrent decode)",
                      [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--model,-m", o->model, "model directory (default: the shipped model)");
                        auto* ids_opt = sub->add_option("--prompt-ids", o->prompt_ids, "comma-separated prompt token ids (prints the new ids)");
                        auto* text_opt = sub->add_option("--prompt,-p", o->prompt, "a text prompt (streams the generated text)");
                        sub->add_flag("--chat", o->chat, "wrap --prompt as one user message in the model's chat template");
                        sub->add_option("--stop", o->stops, "stop at this text (repeatable); it is not printed");
                        sub->add_option("--max-new-tokens,-n", o->max_new_tokens, "tokens to generate")
                            ->check(in_range(0, 2147483647));
                        sub->add_flag("--ignore-eos", o->ignore_eos, "do not stop at the end-of-sequence token");
                        add_sampling_options(sub, &o->sampling);
                        sub->add_flag("--exact", o->exact,
                                      "fp32 activations in every projection (default for bf16 weights: bf16 "
                                      "activations over many rows, as PyTorch bf16 inference)");
                        add_weights_option(sub, &o->weights);
                        sub->add_option("--device", o->device, "cpu (default) or cuda");
                        sub->add_option("--state-dtype", o->state_dtype, "cuda: SSM state dtype, fp32 (default) or bf16");
                        sub->add_flag("--fp32-weights", o->fp32_weights, "cuda: keep fp32 weights (default: bf16)");
                        add_threads_option(sub, &o->threads);
                        sub->callback([o, ids_opt, text_opt] {
                          o->prompt_ids_given = ids_opt->count() > 0;
                          o->prompt_given = text_opt->count() > 0;
                          run(*o);
                        });
                      }});

}  // namespace
}  // namespace pcm::cli
