// pcm grad-bench: tokens/s of the CPU gradient engine (loss_and_grad) for a checkpoint or random
// weights of a published shape, forward-only and forward + backward.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/common.h"
#include "train/model_grad.h"
#include "util/error.h"
#include "util/memory_stats.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, shape;
  int64_t layers = 0, seq = 512, rows = 1, iters = 2, vocab_chunk = 8192;
  bool recompute = false;
  int threads = 0;
};

// Process CPU time (all threads): on a shared, overloaded machine tokens per CPU-second is steadier than
// tokens per wall-second.
double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void run(const Options& o) {
  const int threads = apply_threads(o.threads);
  PCM_CHECK(o.model.empty() != o.shape.empty(), "give exactly one of --model DIR or --shape NAME");
  PCM_CHECK(o.seq > 1 && o.rows > 0 && o.iters > 0, "--seq must be > 1, --rows and --iters > 0");
  Mamba2Config c;
  ParamSet params;
  if (!o.model.empty()) {
    params = ParamSet::from_model_path(o.model, &c);
  } else {
    c = named_shape(o.shape, o.layers);
    check_fits_in_memory("--shape " + o.shape, c.parameter_count(), 8.0, "parameters (fp32 weights and gradients)");
    params = ParamSet::random(c, 1234);
  }
  PackedBatch b;
  b.rows = o.rows;
  b.seq_len = o.seq;
  const int64_t T = o.rows * o.seq;
  for (int64_t t = 0; t < T; ++t) {
    b.tokens.push_back(static_cast<int32_t>((t * 7919 + 13) % c.vocab_size));
    b.doc_start.push_back(t % o.seq == 0);
  }
  for (int64_t t = 0; t < T; ++t)
    b.targets.push_back((t + 1) % o.seq == 0 ? -1 : b.tokens[static_cast<size_t>(t + 1)]);
  ParamSet grads = params.zeros_like();
  auto ws = make_grad_workspace();
  GradOptions opt{o.recompute, o.vocab_chunk, ws.get()};
  loss_and_grad(c, params, b, &grads, opt);  // warm-up: sizes the workspace
  double fwd = 0.0, full = 0.0, fwd_cpu = 0.0, full_cpu = 0.0;
  LossResult r{};
  for (int64_t i = 0; i < o.iters; ++i) {
    double t0 = now_seconds(), c0 = cpu_seconds();
    r = loss_and_grad(c, params, b, nullptr, opt);
    double t1 = now_seconds(), c1 = cpu_seconds();
    loss_and_grad(c, params, b, &grads, opt);
    double t2 = now_seconds(), c2 = cpu_seconds();
    fwd += t1 - t0;
    full += t2 - t1;
    fwd_cpu += c1 - c0;
    full_cpu += c2 - c1;
  }
  fwd /= static_cast<double>(o.iters);
  full /= static_cast<double>(o.iters);
  fwd_cpu /= static_cast<double>(o.iters);
  full_cpu /= static_cast<double>(o.iters);
  std::printf("%s", fmt::format("model: {} ({:.1f} M parameters, {} layers, d {}, vocab {})\n"
                                "batch: {} x {} tokens, {} threads, recompute {}\n"
                                "loss {:.4f}\n"
                                "forward only:       {:8.1f} tokens/s ({:.3f} s wall, {:.3f} s CPU: {:.1f} tokens per CPU-second)\n"
                                "forward + backward: {:8.1f} tokens/s ({:.3f} s wall, {:.3f} s CPU: {:.1f} tokens per CPU-second)\n",
                                o.model.empty() ? o.shape : o.model, params.total_numel() / 1e6, c.num_layers,
                                c.hidden_size, c.vocab_size, o.rows, o.seq, threads, o.recompute,
                                r.loss_sum / static_cast<double>(r.tokens), T / fwd, fwd, fwd_cpu, T / fwd_cpu, T / full, full,
                                full_cpu, T / full_cpu)
                        .c_str());
}

PCM_REGISTER_COMMAND({"grad-bench", "Measure loss_and_grad throughput (tokens/s) on this CPU",
                      [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--model,-m", o->model, "model directory or .gguf file");
                        sub->add_option("--shape", o->shape,
                                        "random weights of a published shape (mamba2-130m, codestral-7b, ...)");
                        add_layers_option(sub, &o->layers, "override the shape's layer count");
                        sub->add_option("--seq", o->seq, "tokens per row (default 512)");
                        sub->add_option("--rows", o->rows, "rows per batch (default 1)");
                        sub->add_option("--iters", o->iters, "timed iterations (default 2)");
                        sub->add_option("--vocab-chunk", o->vocab_chunk, "LM-head vocabulary block (default 8192)");
                        sub->add_flag("--recompute", o->recompute, "recompute activations per layer");
                        add_threads_option(sub, &o->threads);
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
