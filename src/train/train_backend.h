// Where the numbers of a training step live and are computed: the CPU (host ParamSets, model_grad.cpp)
// or one CUDA GPU (device-resident fp32 params, grads and AdamW moments, model_grad_cuda.cpp). The
// trainer drives both through this interface; the host ParamSet/AdamWState it passes in are the
// checkpoint source, brought up to date by sync_to_host().
#pragma once
#include <map>
#include <memory>
#include <string>

#include "model/config.h"
#include "train/batch.h"
#include "train/model_grad.h"
#include "train/optimizer.h"
#include "train/params.h"

namespace pcm {

struct TrainBackendOptions {
  std::string device = "cpu";     // cpu | cuda
  std::string precision = "fp32"; // cuda only: fp32 (exact projections) | bf16 (bf16 operands, fp32 accumulation)
  bool recompute_per_layer = false;
  int64_t vocab_chunk = 8192;  // cpu: vocabulary rows per LM-head block ([T, vocab_chunk] logits at once)
  int64_t head_rows = 2048;     // cuda: token rows per LM-head block ([head_rows, V] logits at once)
};

class TrainBackend {
 public:
  virtual ~TrainBackend() = default;
  virtual void zero_grads() = 0;
  // Loss over the batch; d(loss_sum)/d(param) added to the gradients (loss_and_grad's contract).
  virtual LossResult accumulate(const PackedBatch& batch) = 0;
  virtual void scale_grads(float factor) = 0;
  virtual double grad_norm() = 0;  // global L2 norm in float64; NaN/Inf propagate
  // One AdamW update with the current gradients; increments the host AdamWState's step.
  virtual void adamw_step(const AdamWHyper& h) = 0;
  // Params and moments into the host ParamSet/AdamWState given at construction (before a checkpoint).
  virtual void sync_to_host() = 0;
  // The accumulated gradients (tests, `pcm grad`), in the params' layout.
  virtual void download_grads(ParamSet& out) = 0;
  // Highest device memory in use seen after a step (0 on the CPU).
  virtual int64_t peak_device_bytes() const { return 0; }
  // Milliseconds per section of loss_and_grad summed over the calls so far (CUDA with
  // PCM_TRAIN_PROFILE=1; empty otherwise).
  virtual std::map<std::string, double> section_ms() const { return {}; }
};

// Fails with a clear message unless `device` can train here: "cpu", or "cuda" in a CUDA build with a
// visible GPU. Callers check it before loading or drawing the weights, so a wrong device costs nothing.
void require_train_device(const std::string& device);

// `params` and `opt` must outlive the backend. device "cuda" fails with a clear message in a build
// without CUDA or on a machine without a GPU.
std::unique_ptr<TrainBackend> make_train_backend(const Mamba2Config& config, ParamSet& params, AdamWState& opt,
                                                 const TrainBackendOptions& options);

#ifdef PCM_HAVE_CUDA
void require_cuda_train_device();  // a clear error when no CUDA GPU is visible
std::unique_ptr<TrainBackend> make_cuda_train_backend(const Mamba2Config& config, ParamSet& params, AdamWState& opt,
                                                      const TrainBackendOptions& options);
#endif

}  // namespace pcm
