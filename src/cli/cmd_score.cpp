// pcm score --model DIR --prompt-ids ... --out logits.safetensors: float32 logits [T, V] of one forward
// (on the CPU in exact mode, or --device cuda with fp32 weights and state).
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/cuda_cli.h"
#include "util/error.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, prompt_ids, out, weights = "file", device = "cpu";
  int threads = 0;
};

void run(const Options& o) {
  apply_threads(o.threads);
  std::vector<int32_t> ids = parse_id_list(o.prompt_ids, "--prompt-ids");
  PCM_CHECK(o.device == "cpu" || o.device == "cuda", "--device must be cpu or cuda, got '{}'", o.device);
  PCM_CHECK(o.device == "cpu" || o.weights == "file", "--weights q8_0 is a CPU option (--device cpu)");
  const int64_t T = static_cast<int64_t>(ids.size());
  int64_t V = 0;
  std::vector<float> logits;
  if (o.device == "cuda") {
    logits = run_cuda_score(o.model, ids, &V);
  } else {
    Mamba2Model model = load_model(o.model, o.weights);
    model.set_exact(true);  // a port-checking tool: fp32 activations, whatever the weight dtype
    V = model.vocab_size();
    logits.resize(static_cast<size_t>(T * V));
    SequenceState state = model.new_state();
    model.prefill(ids, state, logits.data(), /*all_positions=*/true);
  }
  write_safetensors(o.out, {{"logits", DType::F32, {T, V}, logits.data()}, {"input_ids", DType::I32, {T}, ids.data()}},
                    {{"made_by", "pcm score"}, {"model", o.model}, {"device", o.device}});
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
                        sub->add_option("--device", o->device, "cpu (default) or cuda (fp32 weights on the GPU)");
                        add_threads_option(sub, &o->threads);
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
