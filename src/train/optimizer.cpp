#include "train/optimizer.h"

#include <cmath>

#include "util/error.h"
#include "util/memory_stats.h"

namespace pcm {

AdamWState make_adamw_state(const ParamSet& params) { return {params.zeros_like(), params.zeros_like(), 0}; }

void check_adamw_fits_in_memory(const Mamba2Config& c, const std::string& label) {
  check_fits_in_memory(label, c.parameter_count(), 12.0, "parameters (fp32 weights and AdamW's two moments)");
}

void adamw_step(ParamSet& params, const ParamSet& grads, AdamWState& s, const AdamWHyper& h) {
  PCM_CHECK(grads.size() == params.size() && s.m.size() == params.size(), "adamw: layout mismatch");
  s.step++;
  const double bc1 = 1.0 - std::pow(h.beta1, static_cast<double>(s.step));
  const double bc2 = 1.0 - std::pow(h.beta2, static_cast<double>(s.step));
  const float b1 = static_cast<float>(h.beta1), b2 = static_cast<float>(h.beta2);
  const float step_size = static_cast<float>(h.lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float eps = static_cast<float>(h.eps);
  for (size_t t = 0; t < params.size(); ++t) {
    ParamTensor& p = params[t];
    const float* g = grads[t].data.data();
    float* m = s.m[t].data.data();
    float* v = s.v[t].data.data();
    const float decay = p.weight_decay ? static_cast<float>(1.0 - h.lr * h.weight_decay) : 1.0f;
    const int64_t n = p.numel();
    float* w = p.data.data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      w[i] = w[i] * decay - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
    }
  }
}

double global_grad_norm(const ParamSet& grads) {
  double sum = 0.0;
  for (const ParamTensor& t : grads.tensors()) {
    double part = 0.0;  // fixed summation order: deterministic across runs
    for (float x : t.data) part += static_cast<double>(x) * x;
    sum += part;
  }
  return std::sqrt(sum);
}

void scale_grads(ParamSet& grads, float factor) {
  for (ParamTensor& t : grads.tensors())
    for (float& x : t.data) x *= factor;
}

double lr_at(const PhaseConfig& p, int64_t step, int64_t total) {
  if (p.warmup_steps > 0 && step < p.warmup_steps)
    return p.lr * static_cast<double>(step + 1) / static_cast<double>(p.warmup_steps);
  if (p.decay == DecayKind::Constant) return p.lr;
  const int64_t span = total - p.warmup_steps - 1;
  if (span <= 0) return p.lr;
  double frac = std::min(1.0, static_cast<double>(step - p.warmup_steps) / static_cast<double>(span));
  double shape = p.decay == DecayKind::Cosine ? 0.5 * (1.0 + std::cos(M_PI * frac)) : 1.0 - frac;
  return p.min_lr + (p.lr - p.min_lr) * shape;
}

}  // namespace pcm
