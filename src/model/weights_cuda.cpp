// Uploading weights to the device (converted to bf16, or fp32 when asked) and drawing random ones there.
#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/cuda/cuda_check.h"
#include "model/model_cuda_impl.h"
#include "tensor/dtype.h"

namespace pcm {

DeviceArena::~DeviceArena() { free_all(); }

void* DeviceArena::alloc(size_t bytes) {
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, std::max<size_t>(bytes, 16));
  if (err != cudaSuccess) {
    size_t free_b = 0, total_b = 0;
    cudaGetLastError();
    cudaMemGetInfo(&free_b, &total_b);
    fail("out of GPU memory: asked for {:.2f} GiB with {:.2f} GiB free of {:.2f} GiB", bytes / 1073741824.0,
         free_b / 1073741824.0, total_b / 1073741824.0);
  }
  blocks_.push_back(p);
  return p;
}

void DeviceArena::free_all() {
  for (void* p : blocks_) cudaFree(p);
  blocks_.clear();
}

float* upload_f32(DeviceArena& arena, const std::vector<float>& v) {
  if (v.empty()) return nullptr;
  float* d = arena.alloc_n<float>(static_cast<int64_t>(v.size()));
  PCM_CUDA(cudaMemcpy(d, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
  return d;
}

namespace {

// A matrix in the device dtype, converted row block by row block through a host staging buffer.
const void* upload_matrix(CudaMamba2Model::Impl& m, const MatrixRef& mat) {
  const bool bf16 = m.w.bf16;
  const size_t elem = bf16 ? 2 : 4;
  void* dst = m.weight_arena.alloc(static_cast<size_t>(mat.rows * mat.cols) * elem);
  if ((bf16 && mat.dtype == DType::BF16) || (!bf16 && mat.dtype == DType::F32)) {
    PCM_CUDA(cudaMemcpy(dst, mat.data, mat.bytes(), cudaMemcpyHostToDevice));
    return dst;
  }
  const int64_t block_rows = std::max<int64_t>(1, (int64_t{16} << 20) / std::max<int64_t>(1, mat.cols));
  std::vector<float> row(static_cast<size_t>(mat.cols));
  std::vector<uint8_t> stage(static_cast<size_t>(block_rows * mat.cols) * elem);
  for (int64_t r0 = 0; r0 < mat.rows; r0 += block_rows) {
    const int64_t nr = std::min(block_rows, mat.rows - r0);
    for (int64_t r = 0; r < nr; ++r) {
      mat.row_to_f32(r0 + r, row.data());
      if (bf16) {
        auto* out = reinterpret_cast<uint16_t*>(stage.data()) + r * mat.cols;
        for (int64_t k = 0; k < mat.cols; ++k) out[k] = f32_to_bf16(row[static_cast<size_t>(k)]);
      } else {
        std::copy(row.begin(), row.end(), reinterpret_cast<float*>(stage.data()) + r * mat.cols);
      }
    }
    PCM_CUDA(cudaMemcpy(static_cast<uint8_t*>(dst) + static_cast<size_t>(r0 * mat.cols) * elem, stage.data(),
                        static_cast<size_t>(nr * mat.cols) * elem, cudaMemcpyHostToDevice));
  }
  return dst;
}

void count_bytes(CudaMamba2Model::Impl& m) {
  const auto& c = m.config;
  const size_t elem = m.w.bf16 ? 2 : 4;
  const size_t layer = static_cast<size_t>(c.d_in_proj() * c.hidden_size + c.hidden_size * c.d_inner()) * elem;
  const size_t table = static_cast<size_t>(c.vocab_size * c.hidden_size) * elem;
  m.w.decode_bytes = layer * static_cast<size_t>(c.num_layers) + table;
  m.w.matrix_bytes = m.w.decode_bytes + (c.tie_embeddings ? 0 : table);
}

}  // namespace

void upload_weights(CudaMamba2Model::Impl& m, const Mamba2Weights& weights) {
  m.w.bf16 = !m.options.fp32_weights;
  m.w.embedding = upload_matrix(m, weights.embedding);
  m.w.lm_head = weights.lm_head.data == weights.embedding.data ? m.w.embedding : upload_matrix(m, weights.lm_head);
  m.w.norm_f = upload_f32(m.weight_arena, weights.norm_f);
  for (const LayerWeights& l : weights.layers) {
    DeviceLayer d;
    d.norm = upload_f32(m.weight_arena, l.norm);
    d.in_proj = upload_matrix(m, l.in_proj);
    d.in_bias = upload_f32(m.weight_arena, l.in_proj_bias);
    d.conv_w = upload_f32(m.weight_arena, l.conv_weight);
    d.conv_b = upload_f32(m.weight_arena, l.conv_bias);
    d.dt_bias = upload_f32(m.weight_arena, l.dt_bias);
    d.A = upload_f32(m.weight_arena, l.A);
    d.D = upload_f32(m.weight_arena, l.D);
    d.gate_norm = upload_f32(m.weight_arena, l.gate_norm);
    d.out_proj = upload_matrix(m, l.out_proj);
    d.out_bias = upload_f32(m.weight_arena, l.out_proj_bias);
    m.w.layers.push_back(d);
  }
  count_bytes(m);
}

// Same distributions as random_mamba2_weights (uniform with the std of N(0, 0.02) for the projections);
// the large matrices are drawn on the device, the per-channel vectors here.
void random_device_weights(CudaMamba2Model::Impl& m, uint64_t seed) {
  PCM_CHECK(!m.options.fp32_weights, "random device weights are bf16 only");
  const auto& c = m.config;
  m.w.bf16 = true;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  auto matrix = [&](int64_t rows, int64_t cols, float stddev) {
    auto* p = m.weight_arena.alloc_n<uint16_t>(rows * cols);
    cuda::fill_uniform_bf16(p, rows * cols, stddev, rng(), m.stream);
    return static_cast<const void*>(p);
  };
  auto vec = [&](int64_t n, float lo, float hi) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = lo + (hi - lo) * uni(rng);
    return upload_f32(m.weight_arena, v);
  };
  const int64_t d = c.hidden_size, H = c.num_heads;
  m.w.embedding = matrix(c.vocab_size, d, 0.02f);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    DeviceLayer l;
    l.norm = vec(d, 0.9f, 1.1f);
    l.in_proj = matrix(c.d_in_proj(), d, 0.02f);
    if (c.use_bias) l.in_bias = vec(c.d_in_proj(), -0.01f, 0.01f);
    l.conv_w = vec(c.conv_dim() * c.conv_kernel, -0.5f, 0.5f);
    l.conv_b = vec(c.conv_dim(), -0.5f, 0.5f);
    std::vector<float> dt_bias(static_cast<size_t>(H));
    for (float& b : dt_bias) {
      float dt = std::exp(std::log(1e-3f) + uni(rng) * (std::log(1e-1f) - std::log(1e-3f)));
      b = dt + std::log(-std::expm1(-dt));  // inverse softplus
    }
    l.dt_bias = upload_f32(m.weight_arena, dt_bias);
    l.A = vec(H, -16.0f, -1.0f);
    l.D = vec(H, 0.9f, 1.1f);
    l.gate_norm = vec(c.d_inner(), 0.9f, 1.1f);
    l.out_proj = matrix(d, c.d_inner(), 0.02f / std::sqrt(2.0f * static_cast<float>(c.num_layers)));
    if (c.use_bias) l.out_bias = vec(d, -0.01f, 0.01f);
    m.w.layers.push_back(l);
  }
  m.w.norm_f = vec(d, 0.9f, 1.1f);
  m.w.lm_head = c.tie_embeddings ? m.w.embedding : matrix(c.vocab_size, d, 0.02f);
  PCM_CUDA(cudaStreamSynchronize(m.stream));
  count_bytes(m);
}

}  // namespace pcm
