// Private to model_cuda.cpp / weights_cuda.cpp: the device-side weights and buffers of CudaMamba2Model.
#pragma once
#include <cuda_runtime_api.h>

#include <map>
#include <memory>
#include <span>
#include <vector>

#include "kernels/cuda/gemm_cuda.h"
#include "kernels/cuda/ops.h"
#include "model/model_cuda.h"

namespace pcm {

// Owns device allocations made through it; frees them when it goes.
class DeviceArena {
 public:
  ~DeviceArena();
  void* alloc(size_t bytes);
  template <class T>
  T* alloc_n(int64_t n) {
    return static_cast<T*>(alloc(static_cast<size_t>(n) * sizeof(T)));
  }
  void free_all();

 private:
  std::vector<void*> blocks_;
};

using DeviceLayer = cuda::DeviceLayer;

struct DeviceWeights {
  bool bf16 = true;
  const void* embedding = nullptr;  // [V, d]
  const void* lm_head = nullptr;    // [V, d]
  const float* norm_f = nullptr;
  std::vector<DeviceLayer> layers;
  size_t matrix_bytes = 0;
  size_t decode_bytes = 0;  // in_proj + out_proj of every layer + lm_head
};

// Host-side small vectors of one layer, uploaded as fp32.
float* upload_f32(DeviceArena& arena, const std::vector<float>& v);

struct CudaMamba2Model::Impl {
  Mamba2Config config;
  CudaModelOptions options;
  cudaStream_t stream = nullptr;
  DeviceArena weight_arena, work_arena, pool_arena;
  DeviceWeights w;
  std::unique_ptr<cuda::Gemm> gemm;
  // Decode's split in_proj (CudaModelOptions::decode_split_in_proj): the z GEMM's stream, its own cuBLASLt
  // workspace (two GEMMs in flight must not share one), the fork/join events and z [rows, d_inner].
  cudaStream_t side_stream = nullptr;
  cudaEvent_t fork_event = nullptr, join_event = nullptr;
  std::unique_ptr<cuda::Gemm> side_gemm;
  float* z_split = nullptr;

  // Slot pool: ssm [slots, L, H, P, N] (fp32 or bf16), conv [slots, L, K, conv_dim] fp32, rings (ops.h, PackedSeqs).
  int64_t slots = 0;
  bool state_bf16 = false;
  void* ssm = nullptr;
  float* conv = nullptr;
  std::vector<char> slot_used;
  std::vector<int64_t> slot_tokens;
  std::vector<uint64_t> slot_draws;  // random draws taken per slot (the sampler's stream position)

  // Workspace for up to `rows` rows.
  int64_t rows = 0, seq_rows = 0;
  float *resid = nullptr, *zx = nullptr, *xbc = nullptr, *dt = nullptr, *y = nullptr, *xlast = nullptr,
        *logits = nullptr, *ssd_scratch = nullptr;
  float* ssq = nullptr;  // fused decode: Σ g² per (row, head) from the gated SSD step
  // fused decode: the row queues (one word each, zero between launches; decode_fused.cu): [0] in_proj's, [1] the head's
  unsigned long long* row_queues = nullptr;
  // one-row decode in one launch (CudaModelOptions::decode_persistent): the layer table on the device, the grid
  // barrier's word, and whether the kernel takes this model with an fp32 [0] or bf16 [1] state
  cuda::DeviceLayer* layers_dev = nullptr;
  unsigned* grid_barrier = nullptr;
  bool persistent_ok[2] = {false, false};
  void *xn = nullptr, *yn = nullptr, *xb_bf16 = nullptr;
  int32_t* ints = nullptr;     // packed per-call index arrays (tokens, sequences, chunks)
  int32_t* host_ints = nullptr;  // pinned mirror
  int64_t ints_capacity = 0;
  cuda::DeviceSampling* params_dev = nullptr;
  cuda::DeviceSampling* params_host = nullptr;  // pinned
  int32_t* ids_dev = nullptr;
  int32_t* ids_host = nullptr;  // pinned
  std::map<int64_t, cudaGraphExec_t> graphs;  // decode step per batch bucket
  std::vector<char> seen_scratch;

  ~Impl();
  void allocate_workspace();
  // The layers over T rows already embedded in `resid`; decode when every sequence has one row.
  // decode_slots / decode_pos: each row's slot and position mod K (decode only).
  void run_layers(int64_t T, bool decode, const cuda::PackedSeqs& seqs, const cuda::ChunkTable& chunks,
                  const int32_t* decode_slots, const int32_t* decode_pos);
  void head(int64_t n);  // final norm + lm_head over xlast[0..n) -> logits
  void decode_step(int64_t Bn);  // whole decode step on the device buffers (captured into graphs)
  // Rows [r0, r0 + Bn) of a decode step into `ints` as decode_step reads them, rows Bn..Bp as padding (slot -1).
  void stage_decode_rows(std::span<const int32_t> slot_ids, std::span<const int32_t> tokens, size_t r0, int64_t Bn,
                         int64_t Bp);
  // The slot's next position in its conv ring: tokens seen mod K.
  int32_t conv_pos(int32_t slot) const {
    return static_cast<int32_t>(slot_tokens[static_cast<size_t>(slot)] % config.conv_kernel);
  }
  // A decode step of `rows` sequences runs the fused kernels (src/kernels/cuda/decode_fused.cu): bf16 weights
  // and a few rows of a shape they take. The layers and the head decide with this one rule.
  bool fused_decode(int64_t rows) const;
  // ... and one of `rows` rows runs every layer as one persistent launch (CudaModelOptions::decode_persistent).
  bool persistent_step(int64_t rows) const;
  bool split_decode_in_proj(const DeviceLayer& lw) const;
  int64_t bucket(int64_t Bn) const;
  void check_slot(int32_t slot) const;
};

void upload_weights(CudaMamba2Model::Impl& m, const Mamba2Weights& weights);
void random_device_weights(CudaMamba2Model::Impl& m, uint64_t seed);

}  // namespace pcm
