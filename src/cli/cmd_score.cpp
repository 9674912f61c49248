// pcm score --model DIR --prompt-ids ... --out logits.safetensors: float32 logits [T, V] of one forward.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/common.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, prompt_ids, out, weights = "file";
  int threads = 0;
};

void run(const Options& o) {
  apply_threads(o.threads);
  std::vector<int32_t> ids = parse_id_list(o.prompt_ids, "--prompt-ids");
  Mamba2Model model = load_model(o.model, o.weights);
  model.set_exact(true);  // a port-checking tool: fp32 activations, whatever the weight dtype
  const int64_t T = static_cast<int64_t>(ids.size()), V = model.vocab_size();
  std::vector<float> logits(static_cast<size_t>(T * V));
  SequenceState state = model.new_state();
  model.prefill(ids, state, logits.data(), /*all_positions=*/true);
  write_safetensors(o.out, {{"logits", DType::F32, {T, V}, logits.data()}, {"input_ids", DType::I32, {T}, ids.data()}},
                    {{"made_by", "pcm score"}, {"model", o.model}});
  std::fprintf(stderr, "wrote logits [%lld, %lld] to %s\n", static_cast<long long>(T), static_cast<long long>(V),
               o.out.c_str());
}

PCM_REGISTER_COMMAND({"score", "Write the float32 logits [T, V] of a full forward to a safetensors file",
                      [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--model,-m", o->model, "model directory")->required();
                        sub->add_option("--prompt-ids", o->prompt_ids, "comma-separated token ids")->required();
                        sub->add_option("--out,-o", o->out, "output .safetensors path")->required();
                        add_weights_option(sub, &o->weights);
                        add_threads_option(sub, &o->threads);
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
