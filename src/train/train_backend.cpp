#include "train/train_backend.h"

#include "util/error.h"

namespace pcm {
namespace {

// The host path: the ParamSets are the working copies.
class CpuTrainBackend : public TrainBackend {
 public:
  CpuTrainBackend(const Mamba2Config& config, ParamSet& params, AdamWState& opt, const TrainBackendOptions& o)
      : config_(config), params_(params), opt_(opt), grads_(params.zeros_like()), workspace_(make_grad_workspace()) {
    gopt_.recompute_per_layer = o.recompute_per_layer;
    gopt_.vocab_chunk = o.vocab_chunk;
    gopt_.workspace = workspace_.get();
  }
  void zero_grads() override { grads_.set_zero(); }
  LossResult accumulate(const PackedBatch& b) override { return loss_and_grad(config_, params_, b, &grads_, gopt_); }
  void scale_grads(float f) override { pcm::scale_grads(grads_, f); }
  double grad_norm() override { return global_grad_norm(grads_); }
  void adamw_step(const AdamWHyper& h) override { pcm::adamw_step(params_, grads_, opt_, h); }
  void sync_to_host() override {}
  void download_grads(ParamSet& out) override { out = grads_; }

 private:
  const Mamba2Config config_;
  ParamSet& params_;
  AdamWState& opt_;
  ParamSet grads_;
  std::unique_ptr<GradWorkspace, void (*)(GradWorkspace*)> workspace_;
  GradOptions gopt_;
};

}  // namespace

void require_train_device(const std::string& device) {
  if (device == "cpu") return;
  if (device != "cuda") fail("unknown training device '{}' (expected cpu or cuda)", device);
#ifdef PCM_HAVE_CUDA
  require_cuda_train_device();
#else
  fail("device 'cuda': this pcm was built without the CUDA backend");
#endif
}

std::unique_ptr<TrainBackend> make_train_backend(const Mamba2Config& config, ParamSet& params, AdamWState& opt,
                                                 const TrainBackendOptions& o) {
  require_train_device(o.device);  // "cpu", or "cuda" in a CUDA build with a GPU
#ifdef PCM_HAVE_CUDA
  if (o.device == "cuda") return make_cuda_train_backend(config, params, opt, o);
#endif
  return std::make_unique<CpuTrainBackend>(config, params, opt, o);
}

}  // namespace pcm
