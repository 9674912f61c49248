// --device cpu|cuda and the CUDA engine's options, shared by serve, eval, chat and score.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "engine/cuda_engine.h"

namespace pcm::cli {

struct DeviceOptions {
  std::string device = "cpu";
  std::string state_dtype = "fp32";
  bool fp32_weights = false;

  bool cuda() const;  // validates --device and --state-dtype (errors name the flag)
  // The CUDA engine options for a model directory (or a named random shape when model_dir is empty).
  CudaEngineOptions engine_options(const std::string& model_dir) const;
};

// --device, --state-dtype, --fp32-weights.
void add_device_options(CLI::App* app, DeviceOptions* options);

}  // namespace pcm::cli
