// AdamW over fp32 master weights (decoupled weight decay as torch.optim.AdamW, skipped for tensors with
// weight_decay == false), global-norm gradient clipping, and the LR schedule.
#pragma once
#include <cstdint>

#include "train/params.h"
#include "train/train_config.h"

namespace pcm {

struct AdamWState {
  ParamSet m, v;     // first and second moments, same layout as the parameters
  int64_t step = 0;  // updates applied so far (bias correction uses step after increment)
};

struct AdamWHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

AdamWState make_adamw_state(const ParamSet& params);
// Refuses a model whose fp32 parameters and AdamW's two moments (12 bytes a parameter, before gradients and
// activations) pass this machine's memory, before any of it is allocated; `label` names where it came from.
void check_adamw_fits_in_memory(const Mamba2Config& c, const std::string& label);
// One update with gradients `grads` (already averaged/clipped): state.step += 1, then for each element
//   p *= 1 - lr*wd (if decayed); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
void adamw_step(ParamSet& params, const ParamSet& grads, AdamWState& state, const AdamWHyper& h);

// sqrt(sum of squares) over every gradient element (in double); NaN/Inf propagate.
double global_grad_norm(const ParamSet& grads);
void scale_grads(ParamSet& grads, float factor);

// The LR at optimizer step `step` (0-based) of a phase with `total` steps: linear warmup from
// lr/warmup to lr over warmup steps, then cosine/linear decay from lr to min_lr at the last step.
double lr_at(const PhaseConfig& phase, int64_t step, int64_t total);

}  // namespace pcm
