// The Scheduler's CUDA engine: CudaMamba2Model's slot pool holds every sequence's state on the GPU;
// a step is one packed prefill of the step's chunks plus one decode over the decoding slots, replayed
// from a CUDA graph, with sampling on the device (each slot a (seed, draw) counter stream, so a seeded
// request gives the same tokens whatever shares its batch). The prompt-state cache keeps host copies
// (store_state/load_state); embeddings are not computed on this engine.
// Declared in every build; without CUDA make_cuda_engine fails with "built without CUDA".
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine/engine.h"

namespace pcm {

struct CudaEngineOptions {
  std::string model_dir;       // config.json + safetensors, or:
  std::string shape;           // random bf16 weights of a named shape (model/config.h named_shape), for load tests
  int64_t shape_layers = 0;    // with shape: override the layer count
  uint64_t random_seed = 1234; // with shape: the weights' seed (pcm bench --shape uses 1234)
  bool fp32_weights = false;   // fp32 weights on the device (exactness tests)
  bool bf16_state = false;     // SSM state in bf16 (half the memory per slot)
  int64_t max_slots = 0;       // sequences; 0 = from max_memory_gb, else what fits in the GPU's free memory
  double max_memory_gb = 0.0;  // GB of GPU memory for sequence states (when max_slots is 0)
  int64_t max_batch_tokens = 4096;
  int device = 0;
};

// Loads (or draws) the model and sizes its slot pool; slot_count() tells how many slots it got.
std::unique_ptr<InferenceEngine> make_cuda_engine(const CudaEngineOptions& options);

}  // namespace pcm
