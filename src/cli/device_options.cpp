#include "cli/device_options.h"

#include "util/error.h"

namespace pcm::cli {

bool DeviceOptions::cuda() const {
  PCM_CHECK(device == "cpu" || device == "cuda", "--device must be cpu or cuda, got '{}'", device);
  PCM_CHECK(state_dtype == "fp32" || state_dtype == "bf16", "--state-dtype must be fp32 or bf16, got '{}'", state_dtype);
  PCM_CHECK(device == "cuda" || (state_dtype == "fp32" && !fp32_weights),
            "--state-dtype and --fp32-weights are options of --device cuda");
  return device == "cuda";
}

CudaEngineOptions DeviceOptions::engine_options(const std::string& model_dir) const {
  CudaEngineOptions o;
  o.model_dir = model_dir;
  o.fp32_weights = fp32_weights;
  o.bf16_state = state_dtype == "bf16";
  return o;
}

void add_device_options(CLI::App* app, DeviceOptions* o) {
  app->add_option("--device", o->device, "cpu (default) or cuda (one NVIDIA GPU)");
  app->add_option("--state-dtype", o->state_dtype, "cuda: SSM state dtype, fp32 (default) or bf16 (half the memory)");
  app->add_flag("--fp32-weights", o->fp32_weights, "cuda: keep fp32 weights on the GPU (default: bf16)");
}

}  // namespace pcm::cli
