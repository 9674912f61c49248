// pcm bench: prefill and decode throughput on this CPU, for a checkpoint or random weights of a
// published shape (--shape codestral-7b --layers 4).
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <numeric>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/cuda_cli.h"
#include "engine/sampler.h"
#include "model/model.h"
#include "util/error.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, shape, dtype = "bf16";
  int64_t layers = 0, prompt_tokens = 512, decode_tokens = 32, batch = 1;
  int threads = 0;
  bool exact = false;
  std::string device = "cpu", cuda_batches = "1,16,64,128", cuda_prefill = "4096,16384";
};

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void run(const Options& o) {
  if (o.device == "cuda") {
    CudaBenchArgs a;
    a.model_dir = o.model;
    a.shape = o.shape;
    a.layers = o.layers;
    a.decode_steps = o.decode_tokens;
    a.batches.clear();
    a.prefill_lengths.clear();
    for (int32_t b : parse_id_list(o.cuda_batches, "--cuda-batches")) a.batches.push_back(b);
    for (int32_t t : parse_id_list(o.cuda_prefill, "--cuda-prefill")) a.prefill_lengths.push_back(t);
    run_cuda_bench(a);
    return;
  }
  PCM_CHECK(o.device == "cpu", "--device must be cpu or cuda, got '{}'", o.device);
  const int threads = apply_threads(o.threads);
  PCM_CHECK(o.model.empty() != o.shape.empty(), "give exactly one of --model DIR or --shape NAME");
  PCM_CHECK(o.prompt_tokens > 0 && o.decode_tokens > 0 && o.batch > 0, "token counts and batch must be > 0");
  std::unique_ptr<Mamba2Model> model;
  std::string what;
  if (!o.model.empty()) {
    model = std::make_unique<Mamba2Model>(Mamba2Model::load(o.model));
    what = o.model;
  } else {
    Mamba2Config c = named_shape(o.shape);
    if (o.layers > 0) c.num_layers = o.layers;
    PCM_CHECK(o.dtype == "bf16" || o.dtype == "f32", "--dtype must be bf16 or f32");
    DType dt = o.dtype == "bf16" ? DType::BF16 : DType::F32;
    double t0 = now_seconds();
    model = std::make_unique<Mamba2Model>(c, random_mamba2_weights(c, dt, 1234));
    what = fmt::format("{} ({} layers, random {} weights, made in {:.1f} s)", o.shape, c.num_layers, o.dtype,
                       now_seconds() - t0);
  }
  model->set_exact(o.exact);
  const auto& c = model->config();
  const int64_t V = c.vocab_size;
  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 13) % static_cast<size_t>(V));

  // Prefill: one warm-up pass, then a timed one.
  std::vector<float> logits(static_cast<size_t>(V * o.batch));
  SequenceState warm = model->new_state();
  model->prefill(std::span(prompt.data(), std::min<size_t>(prompt.size(), static_cast<size_t>(c.chunk_size))), warm,
                 logits.data(), false);
  SequenceState state = model->new_state();
  double t0 = now_seconds();
  model->prefill(prompt, state, logits.data(), false);
  double prefill_s = now_seconds() - t0;

  // Decode: `batch` sequences continuing from the prefilled state, greedy.
  std::vector<SequenceState> states(static_cast<size_t>(o.batch), state);
  std::vector<SequenceState*> ptrs;
  for (auto& s : states) ptrs.push_back(&s);
  std::vector<int32_t> next(static_cast<size_t>(o.batch), argmax(logits.data(), V));
  model->decode(next, ptrs, logits.data());  // warm-up step
  t0 = now_seconds();
  for (int64_t step = 0; step < o.decode_tokens; ++step) {
    model->decode(next, ptrs, logits.data());
    for (int64_t b = 0; b < o.batch; ++b) next[static_cast<size_t>(b)] = argmax(logits.data() + b * V, V);
  }
  double decode_s = now_seconds() - t0;
  const double weight_gb = static_cast<double>(model->weights().matrix_bytes()) / 1e9;
  std::printf("%s", fmt::format("model   {}\nweights {:.3f} GB ({}), state {:.2f} MB / sequence, {} threads, {} projections\n", what,
                                weight_gb, dtype_name(model->weights().matrix_dtype()),
                                static_cast<double>(state.bytes()) / 1e6, threads,
                                o.exact || model->weights().matrix_dtype() != DType::BF16 || !cpu::bf16_gemm_available()
                                    ? "fp32-activation"
                                    : "bf16-activation (AVX512_BF16)").c_str());
  std::printf("| phase | tokens | seconds | tokens/s |\n| --- | --- | --- | --- |\n");
  std::printf("| prefill T=%lld | %lld | %.3f | %.1f |\n", static_cast<long long>(o.prompt_tokens),
              static_cast<long long>(o.prompt_tokens), prefill_s, static_cast<double>(o.prompt_tokens) / prefill_s);
  const double decoded = static_cast<double>(o.decode_tokens * o.batch);
  std::printf("| decode B=%lld | %.0f | %.3f | %.1f (%.2f ms/step) |\n", static_cast<long long>(o.batch), decoded,
              decode_s, decoded / decode_s, 1e3 * decode_s / static_cast<double>(o.decode_tokens));
}

PCM_REGISTER_COMMAND({"bench", "Measure prefill and decode throughput (CPU, or --device cuda)", [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--model,-m", o->model, "model directory");
                        sub->add_option("--shape", o->shape, "random weights of a published shape (codestral-7b, mamba2-370m, ...)");
                        sub->add_option("--layers", o->layers, "layers for --shape (default: all)");
                        sub->add_option("--dtype", o->dtype, "weight dtype for --shape: bf16 or f32");
                        sub->add_option("--prompt-tokens", o->prompt_tokens, "prefill length");
                        sub->add_option("--decode-tokens", o->decode_tokens, "decode steps");
                        sub->add_option("--batch", o->batch, "sequences decoded together");
                        sub->add_flag("--exact", o->exact,
                                      "fp32 activations in every projection (default for bf16 weights: bf16 "
                                      "activations over many rows, as PyTorch bf16 inference)");
                        sub->add_option("--device", o->device,
                                        "cpu (default) or cuda (decode at B=1,16,64,128 with fp32 and bf16 "
                                        "state, prefill at T=4096 and 16384, % of the bandwidth roofline)");
                        sub->add_option("--cuda-batches", o->cuda_batches, "cuda: decode batch sizes (default 1,16,64,128)");
                        sub->add_option("--cuda-prefill", o->cuda_prefill, "cuda: prefill lengths (default 4096,16384)");
                        add_threads_option(sub, &o->threads);
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
