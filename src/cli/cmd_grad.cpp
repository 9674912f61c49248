// pcm grad --model DIR|FILE.gguf --prompt-ids ... --loss-from K --out grads.safetensors: the masked next-token
// loss of one prompt and the gradient of every parameter (the training engine's backward, on the CPU).
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/common.h"
#include "io/checkpoint.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "train/model_grad.h"
#include "util/error.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, prompt_ids, out;
  int64_t loss_from = 0, vocab_chunk = 8192;
  bool recompute = false;
  int threads = 0;
};

void run(const Options& o) {
  apply_threads(o.threads);
  const std::vector<int32_t> ids = parse_id_list(o.prompt_ids, "--prompt-ids");
  const int64_t T = static_cast<int64_t>(ids.size());
  PCM_CHECK(T >= 2, "--prompt-ids: at least 2 tokens are needed (one prediction), got {}", T);
  PCM_CHECK(o.loss_from >= 0 && o.loss_from <= T - 2,
            "--loss-from {}: must be in 0..{} (position t predicts token t + 1; {} tokens)", o.loss_from, T - 2, T);
  PCM_CHECK(o.vocab_chunk > 0, "--vocab-chunk must be > 0");
  Mamba2Config config;
  const ParamSet params = ParamSet::from_model_path(o.model, &config);

  PackedBatch batch;
  batch.rows = 1;
  batch.seq_len = T;
  batch.tokens = ids;
  batch.targets.assign(static_cast<size_t>(T), -1);
  std::vector<int32_t> mask(static_cast<size_t>(T - 1), 0);
  for (int64_t t = o.loss_from; t + 1 < T; ++t) {
    batch.targets[static_cast<size_t>(t)] = ids[static_cast<size_t>(t + 1)];
    mask[static_cast<size_t>(t)] = 1;
  }
  batch.doc_start.assign(static_cast<size_t>(T), 0);
  batch.doc_start[0] = 1;

  ParamSet grads = params.zeros_like();
  GradOptions opt;
  opt.recompute_per_layer = o.recompute;
  opt.vocab_chunk = o.vocab_chunk;
  const LossResult r = loss_and_grad(config, params, batch, &grads, opt);
  const float loss = static_cast<float>(r.loss_sum / static_cast<double>(r.tokens));
  const float scale = 1.0f / static_cast<float>(r.tokens);  // gradients of the mean

  // Names as the checkpoint spells them (mamba_ssm calls the embedding backbone.embedding.weight).
  // A .gguf gets the HF names.
  const auto files =
      is_gguf_path(o.model) ? std::unique_ptr<CheckpointFiles>() : std::make_unique<CheckpointFiles>(o.model);
  std::vector<TensorToWrite> out;
  std::vector<std::string> names;
  names.reserve(grads.size());
  for (ParamTensor& g : grads.tensors()) {
    for (float& v : g.data) v *= scale;
    std::string name = g.name;
    if (files && name == "backbone.embeddings.weight" && !files->find(name) && files->find("backbone.embedding.weight"))
      name = "backbone.embedding.weight";
    names.push_back(name);
  }
  out.push_back({"loss", DType::F32, {1}, &loss});
  out.push_back({"input_ids", DType::I32, {T}, ids.data()});
  out.push_back({"loss_mask", DType::I32, {T - 1}, mask.data()});
  for (size_t i = 0; i < grads.size(); ++i) out.push_back({names[i], DType::F32, grads[i].shape, grads[i].data.data()});
  write_safetensors(o.out, out, {{"made_by", "pcm grad"}, {"model", o.model}, {"loss", "mean over loss_mask"}});
  std::printf("loss %.8f over %lld positions\n", static_cast<double>(loss), static_cast<long long>(r.tokens));
  std::fprintf(stderr, "wrote loss and %zu gradients to %s\n", grads.size(), o.out.c_str());
}

PCM_REGISTER_COMMAND({"grad",
                      "Write the masked next-token loss of a prompt and the gradient of every parameter "
                      "(float32 safetensors)",
                      [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--model,-m", o->model, "model directory or .gguf file")->required();
                        sub->add_option("--prompt-ids", o->prompt_ids, "comma-separated token ids")->required();
                        sub->add_option("--loss-from", o->loss_from,
                                        "first position whose next-token prediction counts: positions "
                                        "K..T-2 predict tokens K+1..T-1 (default 0)");
                        sub->add_option("--out,-o", o->out,
                                        "output .safetensors: 'loss' [1] = MEAN cross-entropy over the counted "
                                        "positions, 'input_ids', 'loss_mask' [T-1], and d loss / d param under "
                                        "each parameter's checkpoint name")
                            ->required();
                        sub->add_option("--vocab-chunk", o->vocab_chunk,
                                        "vocabulary rows per LM-head block (default 8192)");
                        sub->add_flag("--recompute", o->recompute,
                                      "recompute each layer's activations in the backward pass (less memory)");
                        add_threads_option(sub, &o->threads);
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
