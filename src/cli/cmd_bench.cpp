// pcm bench: prefill and decode throughput on this CPU, for a checkpoint or random weights of a
// published shape (--shape codestral-7b --layers 4).
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/cuda_cli.h"
#include "engine/sampler.h"
#include "model/model.h"
#include "util/error.h"
#include "util/json.h"
#include "util/memory_stats.h"
#include "util/progress.h"
#include "cli/train_bench.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, shape, dtype = "bf16", weights = "file";
  int64_t layers = 0, prompt_tokens = 512, decode_tokens = 32, batch = 1;
  int threads = 0;
  int reps = 3;
  bool exact = false, bandwidth = false, json = false;
  std::string device = "cpu", cuda_batches = "1,16,64,128", cuda_prefill = "4096,16384";
  bool train = false, recompute = false;
  int64_t seq_len = 2048, steps = 5;
  std::string precision = "bf16";
};

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void run(const Options& o) {
  if (o.train) {
    TrainBenchArgs a;
    a.shape = o.shape;
    a.device = o.device;
    a.precision = o.precision;
    a.layers = o.layers;
    a.seq_len = o.seq_len;
    a.batch = o.batch;
    a.steps = o.steps;
    a.recompute = o.recompute;
    run_train_bench(a);
    return;
  }
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
  PCM_CHECK(o.model.empty() != o.shape.empty(), "give exactly one of --model DIR|FILE.gguf or --shape NAME");
  PCM_CHECK(o.prompt_tokens > 0 && o.decode_tokens > 0 && o.batch > 0, "token counts and batch must be > 0");
  // The sizes against this machine's memory first: prompt ids, and per decoded sequence a state and a logits row.
  const auto check_sizes = [&](const Mamba2Config& c) {
    check_fits_in_memory(fmt::format("--prompt-tokens {}", o.prompt_tokens), o.prompt_tokens, 4.0, "prompt ids");
    check_fits_in_memory(fmt::format("--batch {}", o.batch), o.batch, bench_sequence_bytes(c), kBenchSequences);
  };
  std::unique_ptr<Mamba2Model> model;
  std::string what;
  if (!o.model.empty()) {
    model = std::make_unique<Mamba2Model>(load_model(o.model, o.weights));
    check_sizes(model->config());
    what = o.model;
  } else {
    const Mamba2Config c = named_shape(o.shape, o.layers);
    check_sizes(c);
    PCM_CHECK(o.dtype == "bf16" || o.dtype == "f32", "--dtype must be bf16 or f32");
    DType dt = o.dtype == "bf16" ? DType::BF16 : DType::F32;
    double t0 = now_seconds();
    model = std::make_unique<Mamba2Model>(c, random_mamba2_weights(c, dt, 1234));
    what = fmt::format("{} ({} layers, random {} weights, made in {:.1f} s)", o.shape, c.num_layers, o.dtype,
                       now_seconds() - t0);
    if (o.weights == "q8_0") model->quantize_q8_0();
  }
  model->set_exact(o.exact);
  const auto& c = model->config();
  const int64_t V = c.vocab_size;
  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 13) % static_cast<size_t>(V));

  // Prefill: one warm-up pass, then a timed one.
  std::vector<float> logits(static_cast<size_t>(V * o.batch));
  {  // warm-up (its state is freed before the timed passes, so peak RSS counts only the states in use)
    SequenceState warm = model->new_state();
    model->prefill(std::span(prompt.data(), std::min<size_t>(prompt.size(), static_cast<size_t>(c.chunk_size))),
                   warm, logits.data(), false);
  }
  // Prefill: the median of `reps` timed passes.
  SequenceState state = model->new_state();
  std::vector<double> prefill_times;
  for (int r = 0; r < o.reps; ++r) {
    state.reset();
    double t0 = now_seconds();
    model->prefill(prompt, state, logits.data(), false);
    prefill_times.push_back(now_seconds() - t0);
  }
  std::sort(prefill_times.begin(), prefill_times.end());
  const double prefill_s = prefill_times[prefill_times.size() / 2];

  // Decode: `batch` sequences continuing from the prefilled state, greedy.
  std::vector<SequenceState> states(static_cast<size_t>(o.batch) - 1, state);
  states.push_back(std::move(state));
  std::vector<SequenceState*> ptrs;
  for (auto& s : states) ptrs.push_back(&s);
  std::vector<int32_t> next(static_cast<size_t>(o.batch), argmax(logits.data(), V));
  model->decode(next, ptrs, logits.data());  // warm-up step
  double t0 = now_seconds();
  // A progress line on stderr every 2 s once a run is long (a 7B shape on a few cores takes seconds a step); the
  // table goes to stdout unchanged.
  ProgressMeter meter(o.decode_tokens);
  double shown = t0;
  bool progress = false;
  for (int64_t step = 0; step < o.decode_tokens; ++step) {
    model->decode(next, ptrs, logits.data());
    for (int64_t b = 0; b < o.batch; ++b) next[static_cast<size_t>(b)] = argmax(logits.data() + b * V, V);
    meter.update(step + 1, static_cast<double>(o.batch));
    if (const double t = now_seconds(); t - shown >= 2.0 || (progress && step + 1 == o.decode_tokens)) {
      shown = t;
      progress = true;
      print_progress_line(fmt::format("decode step {}/{} | {:.1f} tok/s | ETA {}", step + 1, o.decode_tokens,
                                      meter.rate(), ProgressMeter::format_duration(meter.eta_seconds())),
                          step + 1 == o.decode_tokens);
    }
  }
  const double decode_s = now_seconds() - t0;
  const double step_ms = 1e3 * decode_s / static_cast<double>(o.decode_tokens);
  const double decoded = static_cast<double>(o.decode_tokens * o.batch);
  const double weight_gb = static_cast<double>(model->weights().matrix_bytes()) / 1e9;
  const char* projections = cpu::decode_projection_kind(model->weights().matrix_dtype(), o.exact);
  const size_t peak_rss = peak_rss_bytes();  // before the bandwidth probe allocates its buffer
  double bw = 0.0, floor_ms = 0.0;
  if (o.bandwidth) {
    // A decode step reads every streamed weight once and reads + writes each sequence's state.
    bw = measure_read_bandwidth_gbs();
    const auto& w = model->weights();
    const double streamed =
        static_cast<double>(w.matrix_bytes() - (w.lm_head.data == w.embedding.data ? 0 : w.embedding.bytes()));
    floor_ms = (streamed + 2.0 * static_cast<double>(states[0].bytes()) * static_cast<double>(o.batch)) / (bw * 1e9) * 1e3;
  }
  if (o.json) {
    json j = {{"model", what}, {"threads", threads}, {"weight_dtype", dtype_name(model->weights().matrix_dtype())},
              {"weight_bytes", model->weights().matrix_bytes()}, {"state_bytes", states[0].bytes()},
              {"prompt_tokens", o.prompt_tokens}, {"prefill_seconds", prefill_s},
              {"prefill_tokens_per_s", static_cast<double>(o.prompt_tokens) / prefill_s}, {"batch", o.batch},
              {"decode_ms_per_step", step_ms}, {"decode_tokens_per_s", decoded / decode_s},
              {"peak_rss_bytes", peak_rss}, {"projections", projections}};
    if (o.bandwidth) {
      j["read_bandwidth_gbs"] = bw;
      j["decode_floor_ms"] = floor_ms;
    }
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("%s", fmt::format("model   {}\nweights {:.3f} GB ({}), state {:.2f} MB / sequence, {} threads, {} projections\n",
                                what, weight_gb, dtype_name(model->weights().matrix_dtype()),
                                static_cast<double>(states[0].bytes()) / 1e6, threads, projections).c_str());
  std::printf("| phase | tokens | seconds | tokens/s |\n| --- | --- | --- | --- |\n");
  std::printf("| prefill T=%lld | %lld | %.3f | %.1f |\n", static_cast<long long>(o.prompt_tokens),
              static_cast<long long>(o.prompt_tokens), prefill_s, static_cast<double>(o.prompt_tokens) / prefill_s);
  std::printf("| decode B=%lld | %.0f | %.3f | %.1f (%.2f ms/step) |\n", static_cast<long long>(o.batch), decoded,
              decode_s, decoded / decode_s, step_ms);
  std::printf("peak RSS %.1f MB\n", static_cast<double>(peak_rss) / 1e6);
  if (o.bandwidth)
    std::printf("read bandwidth %.1f GB/s; decode floor %.2f ms/step ((streamed weights + 2 x state) / bandwidth); "
                "decode at %.0f%% of the floor\n", bw, floor_ms, 100.0 * floor_ms / step_ms);
}

PCM_REGISTER_COMMAND({"bench", "Measure prefill and decode throughput (CPU, or --device cuda)", [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--model,-m", o->model, "model directory");
                        sub->add_option("--shape", o->shape, "random weights of a published shape (codestral-7b, mamba2-370m, ...)");
                        add_layers_option(sub, &o->layers, "layers for --shape (default: all)");
                        sub->add_option("--dtype", o->dtype, "weight dtype for --shape: bf16 or f32");
                        sub->add_option("--prompt-tokens", o->prompt_tokens, "prefill length");
                        sub->add_option("--decode-tokens", o->decode_tokens, "decode steps");
                        sub->add_option("--batch", o->batch, "sequences decoded together");
                        sub->add_flag("--exact", o->exact,
                                      "fp32 activations in every projection (default for bf16 weights: bf16 "
                                      "activations over many rows, as PyTorch bf16 inference)");
                        add_weights_option(sub, &o->weights);
                        sub->add_flag("--bandwidth", o->bandwidth,
                                      "also measure read bandwidth and report decode against that floor");
                        sub->add_option("--reps", o->reps, "timed prefill passes (the median is reported)")
                            ->check(positive());
                        sub->add_flag("--json", o->json, "print one JSON object instead of the table");
                        sub->add_option("--device", o->device,
                                        "cpu (default) or cuda (decode at B=1,16,64,128 with fp32 and bf16 "
                                        "state, prefill at T=4096 and 16384, % of the bandwidth roofline)");
                        sub->add_option("--cuda-batches", o->cuda_batches, "cuda: decode batch sizes (default 1,16,64,128)");
                        sub->add_option("--cuda-prefill", o->cuda_prefill, "cuda: prefill lengths (default 4096,16384)");
                        sub->add_flag("--train", o->train,
                                      "time training steps (forward, backward, AdamW) of --shape on random tokens: "
                                      "ms/step, tokens/s, peak device memory");
                        sub->add_option("--seq-len", o->seq_len, "--train: row length (default 2048)");
                        sub->add_option("--steps", o->steps, "--train: timed steps (default 5)");
                        sub->add_option("--precision", o->precision, "--train on cuda: bf16 (default) or fp32");
                        sub->add_flag("--recompute", o->recompute, "--train: per-layer activation recomputation");
                        add_threads_option(sub, &o->threads);
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
