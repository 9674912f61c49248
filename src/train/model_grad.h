// Loss and gradients of a Mamba-2 language model on a packed batch, on the CPU: an explicit backward
// for every forward op (llm.c style, no autograd). The forward equals Mamba2Model's exact-mode forward.
#pragma once
#include <cstdint>
#include <memory>

#include "model/config.h"
#include "train/batch.h"
#include "train/params.h"

namespace pcm {

struct LossResult {
  double loss_sum = 0.0;  // sum of next-token cross-entropy (nats) over positions with targets >= 0
  int64_t tokens = 0;     // number of such positions
};

struct GradWorkspace;  // activations and scratch, reused across calls (see train/model_grad.cpp)

struct GradOptions {
  // true: keep only each layer's input and recompute its activations during the backward pass
  // (memory O(L·T·d) instead of O(L·T·(2·d_inner + in_proj width))). Gradients are bit-identical.
  bool recompute_per_layer = false;
  // Vocabulary rows per LM-head block: the [T, V] logits are never stored, only [T, vocab_chunk].
  int64_t vocab_chunk = 8192;
  // Optional reusable workspace (no allocation after the first call of a given shape); null = local.
  GradWorkspace* workspace = nullptr;
};

// Owns a workspace; pass .get() in GradOptions::workspace.
std::unique_ptr<GradWorkspace, void (*)(GradWorkspace*)> make_grad_workspace();

// Loss over the batch; when `grads` is not null, d(loss_sum)/d(param) is ADDED to it (same layout as
// params, e.g. params.zeros_like()). Mean loss = loss_sum / tokens; the caller scales.
LossResult loss_and_grad(const Mamba2Config& config, const ParamSet& params, const PackedBatch& batch,
                         ParamSet* grads, const GradOptions& options = {});

}  // namespace pcm
