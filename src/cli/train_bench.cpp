#include "cli/train_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>

#include "model/config.h"
#include "train/optimizer.h"
#include "train/train_backend.h"
#include "util/error.h"

namespace pcm::cli {

void run_train_bench(const TrainBenchArgs& a) {
  PCM_CHECK(!a.shape.empty(), "bench --train needs --shape NAME (e.g. mamba2-1.3b)");
  PCM_CHECK(a.seq_len > 0 && a.batch > 0 && a.steps > 0, "--seq-len, --batch and --steps must be > 0");
  require_train_device(a.device);  // before drawing the weights (a 7B shape takes a minute on the host)
  const Mamba2Config c = named_shape(a.shape, a.layers);
  check_adamw_fits_in_memory(c, "--shape " + a.shape);  // the host's copy, before a minute of drawing weights
  auto t0 = std::chrono::steady_clock::now();
  ParamSet params = ParamSet::random(c, 1);
  AdamWState opt = make_adamw_state(params);
  TrainBackendOptions o;
  o.device = a.device;
  o.precision = a.precision;
  o.recompute_per_layer = a.recompute;
  auto backend = make_train_backend(c, params, opt, o);
  const double setup = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(c.vocab_size - 1));
  PackedBatch b;
  b.rows = a.batch;
  b.seq_len = a.seq_len;
  for (int64_t t = 0; t < a.batch * a.seq_len; ++t) {
    b.tokens.push_back(tok(rng));
    b.targets.push_back(tok(rng));
    b.doc_start.push_back(t % a.seq_len == 0);
  }
  double grad_ms = 0;  // forward + backward of the timed steps (accumulate returns after the device)
  auto step = [&] {
    backend->zero_grads();
    auto s0 = std::chrono::steady_clock::now();
    const LossResult l = backend->accumulate(b);
    grad_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count();
    backend->scale_grads(1.0f / static_cast<float>(l.tokens));
    const double n = backend->grad_norm();
    if (n > 1.0) backend->scale_grads(static_cast<float>(1.0 / n));
    backend->adamw_step({1e-4, 0.9, 0.95, 1e-8, 0.1});
    return l.loss_sum / static_cast<double>(l.tokens);
  };
  double loss = step();  // warm-up: allocations, cuBLAS plans
  grad_ms = 0;
  const std::map<std::string, double> warm = backend->section_ms();
  std::vector<double> ms;
  for (int64_t i = 0; i < a.steps; ++i) {
    auto s = std::chrono::steady_clock::now();
    loss = step();  // returns after the device finished (the norm is read back)
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2], tokens = static_cast<double>(a.batch * a.seq_len);
  std::printf("train bench: %s (%lld layers, %.3fB params), %s %s%s, batch %lld x %lld, setup %.1f s\n",
              a.shape.c_str(), static_cast<long long>(c.num_layers), static_cast<double>(params.total_numel()) / 1e9,
              a.device.c_str(), a.device == "cuda" ? a.precision.c_str() : "fp32", a.recompute ? ", recompute" : "",
              static_cast<long long>(a.batch), static_cast<long long>(a.seq_len), setup);
  std::printf("ms/step %.1f (median of %lld; min %.1f) | tokens/s %.0f | peak device memory %.1f GB | loss %.4f\n",
              med, static_cast<long long>(a.steps), ms.front(), tokens / (med / 1000.0),
              static_cast<double>(backend->peak_device_bytes()) / 1e9, loss);
  const double per_grad = grad_ms / static_cast<double>(a.steps);
  std::printf("forward+backward %.1f ms/step, zero/scale/norm/clip/AdamW %.1f ms/step (means)\n", per_grad,
              std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(a.steps) - per_grad);
  // PCM_TRAIN_PROFILE=1: the forward+backward by section (mean ms per step, the warm-up step excluded).
  for (const auto& [name, total] : backend->section_ms()) {
    const auto w = warm.find(name);
    std::printf("  %-28s %8.2f ms\n", name.c_str(),
                (total - (w == warm.end() ? 0.0 : w->second)) / static_cast<double>(a.steps));
  }
}

}  // namespace pcm::cli
