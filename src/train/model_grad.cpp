#include "train/model_grad.h"

#include "util/error.h"

namespace pcm {

struct GradWorkspace {};

std::unique_ptr<GradWorkspace, void (*)(GradWorkspace*)> make_grad_workspace() {
  return {new GradWorkspace, [](GradWorkspace* w) { delete w; }};
}

LossResult loss_and_grad(const Mamba2Config&, const ParamSet&, const PackedBatch&, ParamSet*, const GradOptions&) {
  fail("loss_and_grad: the gradient engine is being implemented on branch traincore (headers first)");
}

}  // namespace pcm
