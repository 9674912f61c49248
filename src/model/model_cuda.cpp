#include "model/model_cuda.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "io/checkpoint.h"
#include "kernels/cuda/cuda_check.h"
#include "model/conv_rings.h"
#include "model/model_cuda_impl.h"
#include "tensor/dtype.h"

namespace pcm {

using cuda::ChunkTable;
using cuda::PackedSeqs;

namespace {

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

}  // namespace

CudaMamba2Model::Impl::~Impl() {
  for (auto& [b, g] : graphs) cudaGraphExecDestroy(g);
  if (host_ints) cudaFreeHost(host_ints);
  if (params_host) cudaFreeHost(params_host);
  if (ids_host) cudaFreeHost(ids_host);
  gemm.reset();
  side_gemm.reset();
  if (fork_event) cudaEventDestroy(fork_event);
  if (join_event) cudaEventDestroy(join_event);
  if (side_stream) cudaStreamDestroy(side_stream);
  pool_arena.free_all();
  work_arena.free_all();
  weight_arena.free_all();
  if (stream) cudaStreamDestroy(stream);
}

void CudaMamba2Model::Impl::allocate_workspace() {
  const auto& c = config;
  rows = std::max(options.max_batch_tokens, options.max_decode_batch);
  seq_rows = std::max(options.max_prefill_seqs, options.max_decode_batch);
  const size_t act = w.bf16 ? 2 : 4;
  resid = work_arena.alloc_n<float>(rows * c.hidden_size);
  xn = work_arena.alloc(static_cast<size_t>(rows * c.hidden_size) * act);
  zx = work_arena.alloc_n<float>(rows * c.d_in_proj());
  xbc = work_arena.alloc_n<float>(rows * c.conv_dim());
  dt = work_arena.alloc_n<float>(rows * c.num_heads);
  y = work_arena.alloc_n<float>(rows * c.d_inner());
  ssq = work_arena.alloc_n<float>(rows * c.num_heads);
  row_queues = work_arena.alloc_n<unsigned long long>(2);  // zeroed once; each launch leaves its word at zero
  PCM_CUDA(cudaMemsetAsync(row_queues, 0, 2 * sizeof(unsigned long long), stream));
  yn = work_arena.alloc(static_cast<size_t>(rows * c.d_inner()) * act);
  if (side_stream) z_split = work_arena.alloc_n<float>(options.max_decode_batch * c.d_inner());
  xlast = work_arena.alloc_n<float>(seq_rows * c.hidden_size);
  logits = work_arena.alloc_n<float>(seq_rows * c.vocab_size);
  const cuda::SsdDims dims{static_cast<int32_t>(c.num_heads), static_cast<int32_t>(c.head_dim),
                           static_cast<int32_t>(c.n_groups), static_cast<int32_t>(c.state_size)};
  const int64_t max_chunks = options.max_batch_tokens / c.chunk_size + options.max_prefill_seqs;
  // bf16 models whose heads the bf16 SSD kernels take: x, B and C of the prefill in bf16 (run_layers)
  if (w.bf16 && cuda::ssd_bf16_supported(dims, c.chunk_size))
    xb_bf16 = work_arena.alloc(static_cast<size_t>(rows * c.conv_dim()) * 2);
  ssd_scratch = work_arena.alloc_n<float>(cuda::ssd_chunked_scratch_floats(max_chunks, c.chunk_size, dims));
  // prefill: tokens + row_seq (2T), seq_start/seq_slot/seq_chunk/last rows/positions (5S + 2), chunks (2 per chunk);
  // decode: tokens, slots and positions (3 per row)
  ints_capacity = 2 * rows + 5 * seq_rows + 2 + 2 * max_chunks + 16;
  ints = work_arena.alloc_n<int32_t>(ints_capacity);
  PCM_CUDA(cudaMallocHost(reinterpret_cast<void**>(&host_ints), static_cast<size_t>(ints_capacity) * sizeof(int32_t)));
  params_dev = work_arena.alloc_n<cuda::DeviceSampling>(seq_rows);
  PCM_CUDA(cudaMallocHost(reinterpret_cast<void**>(&params_host), static_cast<size_t>(seq_rows) * sizeof(cuda::DeviceSampling)));
  ids_dev = work_arena.alloc_n<int32_t>(seq_rows);
  if (w.bf16) cuda::decode_fused_prepare(std::max(c.hidden_size, c.d_inner()));  // before any graph capture
  if (w.bf16 && options.decode_persistent) {  // its layer table and barrier word; whether it takes this model
    layers_dev = work_arena.alloc_n<cuda::DeviceLayer>(c.num_layers);
    PCM_CUDA(cudaMemcpyAsync(layers_dev, w.layers.data(), w.layers.size() * sizeof(cuda::DeviceLayer),
                             cudaMemcpyHostToDevice, stream));
    PCM_CUDA(cudaStreamSynchronize(stream));  // the host vector may go before the copy ran
    grid_barrier = work_arena.alloc_n<unsigned>(1);
    for (const bool bf16_state : {false, true})
      persistent_ok[bf16_state] = cuda::decode_persistent_prepare(c.hidden_size, c.d_inner(), c.d_inner() / c.n_groups,
                                                                  c.conv_kernel, dims, bf16_state);
  }
  options.decode_persistent = persistent_ok[0] || persistent_ok[1];  // what the model runs (fp32 weights: never)
  PCM_CUDA(cudaMallocHost(reinterpret_cast<void**>(&ids_host), static_cast<size_t>(seq_rows) * sizeof(int32_t)));
}

void CudaMamba2Model::Impl::check_slot(int32_t slot) const {
  PCM_CHECK(slot >= 0 && slot < slots && slot_used[static_cast<size_t>(slot)],
            "state slot {} is not allocated (pool of {})", slot, slots);
}

bool decode_flag_from_env(const char* name, const char* value, bool option) {
  if (!value) return option;
  const std::string v = value;
  PCM_CHECK(v == "0" || v == "1", "{} must be 0 (off) or 1 (on), not '{}'", name, v);
  return v == "1";
}

// Above the fused rows the z columns of in_proj are needed only by the gated norm, after the conv and the SSD step:
// on the side stream their GEMM streams its weights while the conv and the step (latency- and state-bound) run.
// (An in_proj bias would need adding to both parts: such models keep the one GEMM.)
bool CudaMamba2Model::Impl::split_decode_in_proj(const DeviceLayer& lw) const {
  return side_stream && !lw.in_bias;
}

int64_t CudaMamba2Model::Impl::bucket(int64_t Bn) const {
  int64_t b = 1;
  while (b < Bn) b *= 2;
  return std::min(b, options.max_decode_batch);
}

void CudaMamba2Model::Impl::run_layers(int64_t T, bool decode, const PackedSeqs& seqs, const ChunkTable& chunks,
                                       const int32_t* decode_slots, const int32_t* decode_pos) {
  const auto& c = config;
  const int64_t d = c.hidden_size, di = c.d_inner(), dpr = c.d_in_proj(), cd = c.conv_dim(), H = c.num_heads;
  const int64_t L = c.num_layers, K = c.conv_kernel;
  const int64_t hpn = H * c.head_dim * c.state_size;
  const float eps = static_cast<float>(c.norm_eps);
  const cuda::SsdDims dims{static_cast<int32_t>(H), static_cast<int32_t>(c.head_dim), static_cast<int32_t>(c.n_groups),
                           static_cast<int32_t>(c.state_size)};
  const size_t state_elem = state_bf16 ? 2 : 4;
  const int64_t group = di / c.n_groups;
  const bool fused = decode && fused_decode(T);
  if (decode && persistent_step(T)) {  // every layer in one launch (decode_persistent.cu)
    const cuda::PersistentDecode a{layers_dev, static_cast<int32_t>(L), resid, zx, xbc, dt, y, ssq, ssm, state_bf16,
                                   conv, decode_slots, decode_pos, d, di, cd, static_cast<int32_t>(K), dims, group,
                                   eps, static_cast<float>(c.dt_min), static_cast<float>(c.dt_max)};
    cuda::decode_persistent(a, grid_barrier, stream);
    return;
  }
  for (int64_t l = 0; l < L; ++l) {
    const DeviceLayer& lw = w.layers[static_cast<size_t>(l)];
    float* conv_l = conv + l * cd * K;
    void* ssm_l = static_cast<uint8_t*>(ssm) + static_cast<size_t>(l * hpn) * state_elem;
    cuda::SsdIn in{xbc, cd, dt, lw.A, lw.D};
    if (fused) {  // a few rows: three launches per layer (src/kernels/cuda/decode_fused.cu)
      const cuda::DecodeInProjOut o{zx, dpr, xbc, dt, lw.in_bias, di, cd, H, conv_l, L * cd * K, lw.conv_w, lw.conv_b,
                                    static_cast<int32_t>(K), decode_slots, decode_pos, lw.dt_bias,
                                    static_cast<float>(c.dt_min), static_cast<float>(c.dt_max)};
      cuda::decode_in_proj(o, resid, lw.norm, eps, lw.in_proj, T, d, stream, row_queues);
      cuda::ssd_decode(y, in, ssm_l, state_bf16, L * hpn, dims, decode_slots, T, stream, {},
                       cuda::DecodeGate{zx, dpr, ssq});  // y becomes y · silu(z), Σ² per head in ssq
      cuda::decode_out_proj(resid, lw.out_bias, y, ssq, H, lw.gate_norm, group, eps, lw.out_proj, T, d, di, stream);
      continue;
    }
    cuda::rmsnorm(xn, w.bf16, resid, lw.norm, T, d, eps, stream);
    // bf16 models' prefill (shapes the bf16 SSD takes, no in_proj bias): in_proj's output in bf16 for the conv, dt and
    // the gated norm, x, B and C in bf16 only for the SSD (the conv writes them into xb_bf16 [rows, conv_dim]; xbc's
    // fp32 columns stay unwritten and unread), y in bf16 for the gated norm
    const bool bf16_ssd = !decode && xb_bf16 != nullptr;  // allocated only for shapes the bf16 SSD takes
    const bool zx_bf16 = bf16_ssd && !lw.in_bias;
    // in_proj's output as its readers take it: z for the gated norm and xBC | dt for the conv and dt, with their row
    // strides (one [T, dpr] matrix, or with the split z [T, di] in z_split and xBC | dt [T, dpr - di] in zx)
    const float *z = zx, *xbc_dt = zx + di;
    int64_t z_stride = dpr, xbc_dt_stride = dpr;
    const bool split = decode && split_decode_in_proj(lw);
    if (split) {  // z on the side stream, joined before the gated norm
      PCM_CUDA(cudaEventRecord(fork_event, stream));
      PCM_CUDA(cudaStreamWaitEvent(side_stream, fork_event, 0));
      side_gemm->run(z_split, xn, lw.in_proj, w.bf16, T, di, d, 0.0f, side_stream);
      PCM_CUDA(cudaEventRecord(join_event, side_stream));
      const void* w_xbc_dt = static_cast<const char*>(lw.in_proj) + di * d * (w.bf16 ? 2 : 4);  // rows di.. of W_in
      gemm->run(zx, xn, w_xbc_dt, w.bf16, T, dpr - di, d, 0.0f, stream);
      z = z_split, z_stride = di;
      xbc_dt = zx, xbc_dt_stride = dpr - di;
    } else if (zx_bf16) {
      gemm->run_bf16_out(zx, xn, lw.in_proj, T, dpr, d, stream);
    } else {
      gemm->run(zx, xn, lw.in_proj, w.bf16, T, dpr, d, 0.0f, stream);
    }
    if (lw.in_bias) cuda::add_bias(zx, dpr, lw.in_bias, T, dpr, stream);  // never with the split
    if (decode) {  // the step applies dt's activation itself
      cuda::conv1d_silu_decode(xbc, xbc_dt, xbc_dt_stride, conv_l, L * cd * K, lw.conv_w, lw.conv_b, decode_slots,
                               decode_pos, T, cd, K, stream);
      // Not gated here: above 4 rows the gated step cost more than the one-pass norm saved (H200, decode
      // v10: layer at T = 64 / 128, bf16 state, 167.5 / 256.4 µs gated against 161.0 / 245.9).
      cuda::ssd_decode(y, in, ssm_l, state_bf16, L * hpn, dims, decode_slots, T, stream,
                       cuda::RawDt{xbc_dt + cd, xbc_dt_stride, lw.dt_bias, static_cast<float>(c.dt_min),
                                   static_cast<float>(c.dt_max)});
      if (split) PCM_CUDA(cudaStreamWaitEvent(stream, join_event, 0));
    } else {
      const uint16_t* zx16 = reinterpret_cast<const uint16_t*>(zx);
      const void* conv_in = zx_bf16 ? static_cast<const void*>(zx16 + di) : zx + di;
      cuda::conv1d_silu_prefill(xbc, conv_in, dpr, conv_l, L * cd * K, lw.conv_w, lw.conv_b, T, cd, K, seqs, stream,
                                bf16_ssd ? cuda::ConvBf16{xb_bf16, cd, cd, zx_bf16} : cuda::ConvBf16{});
      if (bf16_ssd) {
        in.xbc_bf16 = xb_bf16;
        in.bf16_stride = cd;
      }
      const void* dt_raw = zx_bf16 ? static_cast<const void*>(zx16 + di + cd) : zx + di + cd;
      cuda::dt_softplus(dt, dt_raw, dpr, lw.dt_bias, T, H, static_cast<float>(c.dt_min), static_cast<float>(c.dt_max),
                        stream, zx_bf16);
      cuda::ssd_chunked(y, in, ssm_l, state_bf16, L * hpn, dims, chunks, seqs.seq_slot, seqs.count, ssd_scratch,
                        /*tf32=*/w.bf16, stream);
    }
    // y is bf16 after a prefill with x in bf16 (ssd_chunked), z after a bf16 in_proj
    cuda::gated_rmsnorm(yn, w.bf16, y, z, z_stride, lw.gate_norm, T, di, group, eps, stream, bf16_ssd, zx_bf16);
    gemm->run(resid, yn, lw.out_proj, w.bf16, T, d, di, 1.0f, stream);  // residual add fused (beta = 1)
    if (lw.out_bias) cuda::add_bias(resid, d, lw.out_bias, T, d, stream);
  }
}

void CudaMamba2Model::Impl::head(int64_t n) {
  const auto& c = config;
  cuda::rmsnorm(xn, w.bf16, xlast, w.norm_f, n, c.hidden_size, static_cast<float>(c.norm_eps), stream);
  gemm->run(logits, xn, w.lm_head, w.bf16, n, c.vocab_size, c.hidden_size, 0.0f, stream);
}

bool CudaMamba2Model::Impl::fused_decode(int64_t rows) const {
  const auto& c = config;
  return w.bf16 && cuda::decode_fused_supported(rows, c.hidden_size, c.d_inner(), c.d_inner() / c.n_groups,
                                                c.d_in_proj(), c.conv_kernel);
}

bool CudaMamba2Model::Impl::persistent_step(int64_t rows) const {
  return rows == 1 && fused_decode(1) && persistent_ok[state_bf16];
}

// Device buffers (stage_decode_rows): ints[0..Bn) tokens, ints[maxB..maxB + Bn) slots, ints[2 maxB..2 maxB + Bn)
// positions mod K, maxB = options.max_decode_batch.
void CudaMamba2Model::Impl::decode_step(int64_t Bn) {
  const auto& c = config;
  const int64_t maxB = options.max_decode_batch;
  cuda::embedding_gather(resid, w.embedding, w.bf16, ints, Bn, c.hidden_size, stream);
  run_layers(Bn, true, PackedSeqs{}, ChunkTable{}, ints + maxB, ints + 2 * maxB);
  // The residual rows are the last rows: norm + head straight from resid.
  if (fused_decode(Bn)) {
    const bool pdl = !persistent_step(Bn) || options.decode_persistent_head_pdl;
    cuda::decode_head(logits, resid, w.norm_f, static_cast<float>(c.norm_eps), w.lm_head, Bn, c.vocab_size,
                      c.hidden_size, stream, row_queues + 1, pdl);
    return;
  }
  cuda::rmsnorm(xn, w.bf16, resid, w.norm_f, Bn, c.hidden_size, static_cast<float>(c.norm_eps), stream);
  gemm->run(logits, xn, w.lm_head, w.bf16, Bn, c.vocab_size, c.hidden_size, 0.0f, stream);
}

// ---------------------------------------------------------------------------------------------------

CudaMamba2Model::CudaMamba2Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaMamba2Model::~CudaMamba2Model() = default;

namespace {

std::unique_ptr<CudaMamba2Model::Impl> make_impl(const Mamba2Config& config, const CudaModelOptions& options) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    fail("no CUDA device is available");
  }
  PCM_CHECK(options.device >= 0 && options.device < count, "CUDA device {} does not exist ({} present)",
            options.device, count);
  PCM_CHECK(options.max_slots > 0 && options.max_batch_tokens > 0 && options.max_prefill_seqs > 0 &&
                options.max_decode_batch > 0,
            "CUDA model options: slots, batch tokens, prefill sequences and decode batch must be > 0");
  PCM_CUDA(cudaSetDevice(options.device));
  auto m = std::make_unique<CudaMamba2Model::Impl>();
  m->config = config;
  m->options = options;
  m->options.max_batch_tokens = round_up(options.max_batch_tokens, config.chunk_size);
  // the environment's switches over the options (benchmarks run the same binary both ways)
  const auto env_flag = [](const char* name, bool option) {
    return decode_flag_from_env(name, std::getenv(name), option);
  };
  m->options.decode_split_in_proj = env_flag("PCM_DECODE_SPLIT", options.decode_split_in_proj);
  m->options.decode_persistent = env_flag("PCM_DECODE_PERSISTENT", options.decode_persistent);
  m->options.decode_persistent_graph = env_flag("PCM_DECODE_PERSISTENT_GRAPH", options.decode_persistent_graph);
  m->options.decode_persistent_head_pdl =
      env_flag("PCM_DECODE_PERSISTENT_HEAD_PDL", options.decode_persistent_head_pdl);
  // The split's z GEMM runs at the lower priority: its blocks take the SMs the critical path (xBC GEMM, conv, step)
  // leaves. At equal priority the split gained nothing (H100, decode v14).
  int least = 0, greatest = 0;
  PCM_CUDA(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  const bool split = m->options.decode_split_in_proj;
  PCM_CUDA(cudaStreamCreateWithPriority(&m->stream, cudaStreamNonBlocking, split ? greatest : least));
  m->gemm = std::make_unique<cuda::Gemm>();
  if (split) {
    PCM_CUDA(cudaStreamCreateWithPriority(&m->side_stream, cudaStreamNonBlocking, least));
    PCM_CUDA(cudaEventCreateWithFlags(&m->fork_event, cudaEventDisableTiming));
    PCM_CUDA(cudaEventCreateWithFlags(&m->join_event, cudaEventDisableTiming));
    m->side_gemm = std::make_unique<cuda::Gemm>();
  }
  return m;
}

}  // namespace

std::unique_ptr<CudaMamba2Model> CudaMamba2Model::from_weights(const Mamba2Config& config,
                                                               const Mamba2Weights& weights,
                                                               const CudaModelOptions& options) {
  auto m = make_impl(config, options);
  upload_weights(*m, weights);
  PCM_CUDA(cudaDeviceSynchronize());  // uploads from pageable memory must land before the model's stream reads
  m->allocate_workspace();
  auto model = std::unique_ptr<CudaMamba2Model>(new CudaMamba2Model(std::move(m)));
  model->resize_pool(options.max_slots, options.bf16_state);
  return model;
}

std::unique_ptr<CudaMamba2Model> CudaMamba2Model::load(const std::string& model_dir, const CudaModelOptions& options) {
  Mamba2Config config = load_mamba2_config(model_dir);
  auto files = std::make_shared<const CheckpointFiles>(model_dir);
  Mamba2Weights weights = bind_mamba2_weights(config, files);
  return from_weights(config, weights, options);
}

std::unique_ptr<CudaMamba2Model> CudaMamba2Model::random(const Mamba2Config& config, uint64_t seed,
                                                         const CudaModelOptions& options) {
  auto m = make_impl(config, options);
  random_device_weights(*m, seed);
  PCM_CUDA(cudaDeviceSynchronize());
  m->allocate_workspace();
  auto model = std::unique_ptr<CudaMamba2Model>(new CudaMamba2Model(std::move(m)));
  model->resize_pool(options.max_slots, options.bf16_state);
  return model;
}

const Mamba2Config& CudaMamba2Model::config() const { return impl_->config; }
const CudaModelOptions& CudaMamba2Model::options() const { return impl_->options; }
size_t CudaMamba2Model::weight_bytes() const { return impl_->w.matrix_bytes; }
size_t CudaMamba2Model::decode_weight_bytes() const { return impl_->w.decode_bytes; }
size_t CudaMamba2Model::state_bytes_per_slot() const { return impl_->config.state_bytes(impl_->state_bf16); }

void CudaMamba2Model::resize_pool(int64_t slots, bool bf16_state) {
  Impl& m = *impl_;
  PCM_CHECK(slots > 0, "the state pool needs at least one slot");
  PCM_CUDA(cudaStreamSynchronize(m.stream));
  for (auto& [b, g] : m.graphs) cudaGraphExecDestroy(g);  // they captured the old pool's pointers
  m.graphs.clear();
  m.pool_arena.free_all();
  m.ssm = nullptr;
  m.conv = nullptr;
  const auto& c = m.config;
  m.slots = slots;
  m.state_bf16 = bf16_state;
  m.options.bf16_state = bf16_state;
  m.options.max_slots = slots;
  m.ssm = m.pool_arena.alloc(static_cast<size_t>(slots) * c.ssm_state_bytes(bf16_state));
  m.conv = m.pool_arena.alloc_n<float>(slots * c.conv_state_elems());
  m.slot_used.assign(static_cast<size_t>(slots), 0);
  m.slot_tokens.assign(static_cast<size_t>(slots), 0);
  m.slot_draws.assign(static_cast<size_t>(slots), 0);
  m.seen_scratch.assign(static_cast<size_t>(slots), 0);
}

int32_t CudaMamba2Model::allocate_slot() {
  Impl& m = *impl_;
  for (int64_t s = 0; s < m.slots; ++s)
    if (!m.slot_used[static_cast<size_t>(s)]) {
      m.slot_used[static_cast<size_t>(s)] = 1;
      reset_slot(static_cast<int32_t>(s));
      return static_cast<int32_t>(s);
    }
  fail("all {} state slots are in use", m.slots);
}

void CudaMamba2Model::free_slot(int32_t slot) {
  impl_->check_slot(slot);
  impl_->slot_used[static_cast<size_t>(slot)] = 0;
}

int64_t CudaMamba2Model::free_slot_count() const {
  return std::count(impl_->slot_used.begin(), impl_->slot_used.end(), 0);
}

void CudaMamba2Model::reset_slot(int32_t slot) {
  Impl& m = *impl_;
  m.check_slot(slot);
  const auto& c = m.config;
  const size_t ssm_bytes = c.ssm_state_bytes(m.state_bf16), conv_bytes = c.conv_state_bytes();
  PCM_CUDA(cudaMemsetAsync(static_cast<uint8_t*>(m.ssm) + slot * ssm_bytes, 0, ssm_bytes, m.stream));
  PCM_CUDA(cudaMemsetAsync(reinterpret_cast<uint8_t*>(m.conv) + slot * conv_bytes, 0, conv_bytes, m.stream));
  m.slot_tokens[static_cast<size_t>(slot)] = 0;
  m.slot_draws[static_cast<size_t>(slot)] = 0;
}

void CudaMamba2Model::copy_slot(int32_t from, int32_t to) {
  Impl& m = *impl_;
  m.check_slot(from);
  m.check_slot(to);
  if (from == to) return;
  const auto& c = m.config;
  const size_t ssm_bytes = c.ssm_state_bytes(m.state_bf16), conv_bytes = c.conv_state_bytes();
  auto* ssm = static_cast<uint8_t*>(m.ssm);
  auto* conv = reinterpret_cast<uint8_t*>(m.conv);
  PCM_CUDA(cudaMemcpyAsync(ssm + to * ssm_bytes, ssm + from * ssm_bytes, ssm_bytes, cudaMemcpyDeviceToDevice, m.stream));
  PCM_CUDA(cudaMemcpyAsync(conv + to * conv_bytes, conv + from * conv_bytes, conv_bytes, cudaMemcpyDeviceToDevice,
                           m.stream));
  m.slot_tokens[static_cast<size_t>(to)] = m.slot_tokens[static_cast<size_t>(from)];
}

int64_t CudaMamba2Model::tokens_seen(int32_t slot) const {
  impl_->check_slot(slot);
  return impl_->slot_tokens[static_cast<size_t>(slot)];
}

void CudaMamba2Model::load_state(int32_t slot, const SequenceState& state) {
  Impl& m = *impl_;
  m.check_slot(slot);
  const auto& c = m.config;
  PCM_CHECK(state.fits(c), "load_state: the sequence state was made for another model");
  // Copies on the model's stream, then a synchronisation: a plain cudaMemcpy from pageable memory may
  // return before its DMA lands, and the model's non-blocking stream would not wait for it.
  const size_t n = state.ssm.size();
  std::vector<uint16_t> tmp;
  if (m.state_bf16) {
    tmp.resize(n);
    for (size_t i = 0; i < n; ++i) tmp[i] = f32_to_bf16(state.ssm[i]);
    PCM_CUDA(cudaMemcpyAsync(static_cast<uint16_t*>(m.ssm) + slot * n, tmp.data(), n * 2, cudaMemcpyHostToDevice,
                             m.stream));
  } else {
    PCM_CUDA(cudaMemcpyAsync(static_cast<float*>(m.ssm) + slot * n, state.ssm.data(), n * 4, cudaMemcpyHostToDevice,
                             m.stream));
  }
  std::vector<float> rings(state.conv.size());
  conv_windows_as_rings(state.conv, rings, c.num_layers, c.conv_dim(), c.conv_kernel, state.tokens_seen, true);
  PCM_CUDA(cudaMemcpyAsync(m.conv + slot * rings.size(), rings.data(), rings.size() * 4, cudaMemcpyHostToDevice,
                           m.stream));
  PCM_CUDA(cudaStreamSynchronize(m.stream));
  m.slot_tokens[static_cast<size_t>(slot)] = state.tokens_seen;
}

void CudaMamba2Model::store_state(int32_t slot, SequenceState& state) const {
  Impl& m = *impl_;
  m.check_slot(slot);
  const auto& c = m.config;
  if (!state.fits(c)) state = SequenceState(c);
  const size_t n = state.ssm.size();
  std::vector<uint16_t> tmp;
  if (m.state_bf16) {
    tmp.resize(n);
    PCM_CUDA(cudaMemcpyAsync(tmp.data(), static_cast<uint16_t*>(m.ssm) + slot * n, n * 2, cudaMemcpyDeviceToHost,
                             m.stream));
  } else {
    PCM_CUDA(cudaMemcpyAsync(state.ssm.data(), static_cast<float*>(m.ssm) + slot * n, n * 4, cudaMemcpyDeviceToHost,
                             m.stream));
  }
  std::vector<float> rings(state.conv.size());
  PCM_CUDA(cudaMemcpyAsync(rings.data(), m.conv + slot * rings.size(), rings.size() * 4, cudaMemcpyDeviceToHost,
                           m.stream));
  PCM_CUDA(cudaStreamSynchronize(m.stream));
  if (m.state_bf16)
    for (size_t i = 0; i < n; ++i) state.ssm[i] = bf16_to_f32(tmp[i]);
  state.tokens_seen = m.slot_tokens[static_cast<size_t>(slot)];
  conv_windows_as_rings(rings, state.conv, c.num_layers, c.conv_dim(), c.conv_kernel, state.tokens_seen, false);
}

// ---- prefill ----------------------------------------------------------------------------------------

void CudaMamba2Model::prefill(std::span<const CudaPrefillRequest> requests, float* last_logits) {
  Impl& m = *impl_;
  const auto& c = m.config;
  const int64_t V = c.vocab_size, Q = c.chunk_size, cap = m.options.max_batch_tokens;
  std::fill(m.seen_scratch.begin(), m.seen_scratch.end(), 0);
  for (const auto& r : requests) {
    m.check_slot(r.slot);
    PCM_CHECK(!r.tokens.empty(), "prefill: empty prompt for slot {}", r.slot);
    PCM_CHECK(!m.seen_scratch[static_cast<size_t>(r.slot)], "prefill: slot {} appears twice in one call", r.slot);
    m.seen_scratch[static_cast<size_t>(r.slot)] = 1;
    for (size_t i = 0; i < r.tokens.size(); ++i)
      PCM_CHECK(r.tokens[i] >= 0 && r.tokens[i] < V, "token id {} at position {} is outside the vocabulary (size {})",
                r.tokens[i], i, V);
  }
  std::vector<int64_t> done(requests.size(), 0);
  size_t first_open = 0;
  while (first_open < requests.size()) {
    // Pack pieces of the open requests, in order, into one forward.
    struct Piece { size_t req; int64_t begin, len; };
    std::vector<Piece> pieces;
    int64_t T = 0;
    for (size_t i = first_open; i < requests.size() && T < cap &&
                                static_cast<int64_t>(pieces.size()) < m.options.max_prefill_seqs; ++i) {
      const int64_t left = static_cast<int64_t>(requests[i].tokens.size()) - done[i];
      if (left == 0) continue;
      const int64_t len = std::min(left, cap - T);
      pieces.push_back({i, done[i], len});
      T += len;
    }
    const int64_t S = static_cast<int64_t>(pieces.size());
    // Host index arrays, packed: tokens [T], row_seq [T], seq_start [S+1], seq_slot [S], seq_chunk [S+1],
    // last rows [S], positions mod K [S], chunk_start [C], chunk_len [C].
    int32_t* h = m.host_ints;
    int32_t *tok = h, *row_seq = tok + T, *seq_start = row_seq + T, *seq_slot = seq_start + S + 1,
            *seq_chunk = seq_slot + S, *last_rows = seq_chunk + S + 1, *seq_pos = last_rows + S,
            *chunk_start = seq_pos + S;
    int64_t chunks = 0;
    for (int64_t s = 0; s < S; ++s) chunks += (pieces[static_cast<size_t>(s)].len + Q - 1) / Q;
    int32_t* chunk_len = chunk_start + chunks;
    PCM_CHECK(chunk_len + chunks <= h + m.ints_capacity, "prefill: index buffer too small (internal)");
    int64_t row = 0, ch = 0;
    for (int64_t s = 0; s < S; ++s) {
      const Piece& p = pieces[static_cast<size_t>(s)];
      seq_start[s] = static_cast<int32_t>(row);
      seq_slot[s] = requests[p.req].slot;
      seq_pos[s] = m.conv_pos(seq_slot[s]);
      seq_chunk[s] = static_cast<int32_t>(ch);
      for (int64_t q0 = 0; q0 < p.len; q0 += Q, ++ch) {
        chunk_start[ch] = static_cast<int32_t>(row + q0);
        chunk_len[ch] = static_cast<int32_t>(std::min(Q, p.len - q0));
      }
      for (int64_t t = 0; t < p.len; ++t) {
        tok[row + t] = requests[p.req].tokens[static_cast<size_t>(p.begin + t)];
        row_seq[row + t] = static_cast<int32_t>(s);
      }
      row += p.len;
      last_rows[s] = static_cast<int32_t>(row - 1);
    }
    seq_start[S] = static_cast<int32_t>(row);
    seq_chunk[S] = static_cast<int32_t>(ch);
    const int64_t n_ints = (chunk_len + chunks) - h;
    PCM_CUDA(cudaMemcpyAsync(m.ints, h, static_cast<size_t>(n_ints) * 4, cudaMemcpyHostToDevice, m.stream));
    auto dev = [&](const int32_t* host_ptr) { return m.ints + (host_ptr - h); };
    const PackedSeqs seqs{static_cast<int32_t>(S), dev(seq_start), dev(seq_slot), dev(row_seq), dev(seq_pos)};
    const ChunkTable table{static_cast<int32_t>(chunks), static_cast<int32_t>(Q), dev(chunk_start), dev(chunk_len),
                           dev(seq_chunk)};
    cuda::embedding_gather(m.resid, m.w.embedding, m.w.bf16, dev(tok), T, c.hidden_size, m.stream);
    m.run_layers(T, false, seqs, table, nullptr, nullptr);
    // Requests that finish in this forward get their last row's logits.
    std::vector<std::pair<size_t, int64_t>> finished;  // request, row in logits
    for (int64_t s = 0; s < S; ++s) {
      const Piece& p = pieces[static_cast<size_t>(s)];
      done[p.req] += p.len;
      m.slot_tokens[static_cast<size_t>(requests[p.req].slot)] += p.len;
      if (done[p.req] == static_cast<int64_t>(requests[p.req].tokens.size())) finished.push_back({p.req, s});
    }
    if (last_logits && !finished.empty()) {
      cuda::embedding_gather(m.xlast, m.resid, false, dev(last_rows), S, c.hidden_size, m.stream);
      m.head(S);
      for (const auto& [req, s] : finished)
        PCM_CUDA(cudaMemcpyAsync(last_logits + static_cast<int64_t>(req) * V, m.logits + s * V,
                                 static_cast<size_t>(V) * 4, cudaMemcpyDeviceToHost, m.stream));
    }
    PCM_CUDA(cudaStreamSynchronize(m.stream));  // the pinned index buffer is reused by the next forward
    while (first_open < requests.size() &&
           done[first_open] == static_cast<int64_t>(requests[first_open].tokens.size()))
      ++first_open;
  }
}

namespace {

cuda::DeviceSampling to_device(const SamplingParams& p, uint64_t step, int64_t V) {
  p.validate();
  cuda::DeviceSampling d{};
  d.temperature = p.temperature;
  d.top_p = p.top_p;
  d.min_p = p.min_p;
  d.top_k = static_cast<int32_t>(std::min<int64_t>(p.top_k, V));
  d.seed = p.seed;
  d.step = step;
  return d;
}

}  // namespace

void CudaMamba2Model::prefill_sample(std::span<const CudaPrefillRequest> requests,
                                     std::span<const SamplingParams> params, int32_t* ids) {
  PCM_CHECK(params.size() == requests.size(), "prefill_sample: {} parameter sets for {} requests", params.size(),
            requests.size());
  const size_t V = static_cast<size_t>(impl_->config.vocab_size);
  std::vector<float> logits(requests.size() * V);
  prefill(requests, logits.data());
  std::vector<int32_t> slots;
  std::vector<const float*> rows;
  for (size_t i = 0; i < requests.size(); ++i) {
    slots.push_back(requests[i].slot);
    rows.push_back(logits.data() + i * V);
  }
  sample_logits(slots, rows, params, ids);
}

void CudaMamba2Model::sample_logits(std::span<const int32_t> slots, std::span<const float* const> logits,
                                    std::span<const SamplingParams> params, int32_t* ids) {
  Impl& m = *impl_;
  PCM_CHECK(params.size() == slots.size() && logits.size() == slots.size(),
            "sample_logits: {} slots, {} logits rows, {} parameter sets", slots.size(), logits.size(), params.size());
  for (int32_t s : slots) m.check_slot(s);
  const int64_t V = m.config.vocab_size;
  // In groups that fit the logits buffer.
  for (size_t r0 = 0; r0 < slots.size(); r0 += static_cast<size_t>(m.seq_rows)) {
    const size_t n = std::min(slots.size() - r0, static_cast<size_t>(m.seq_rows));
    for (size_t i = 0; i < n; ++i) {
      const int32_t slot = slots[r0 + i];
      m.params_host[i] = to_device(params[r0 + i], m.slot_draws[static_cast<size_t>(slot)]++, V);
      PCM_CUDA(cudaMemcpyAsync(m.logits + i * static_cast<size_t>(V), logits[r0 + i], static_cast<size_t>(V) * 4,
                               cudaMemcpyHostToDevice, m.stream));
    }
    PCM_CUDA(cudaMemcpyAsync(m.params_dev, m.params_host, n * sizeof(cuda::DeviceSampling), cudaMemcpyHostToDevice,
                             m.stream));
    cuda::sample(m.ids_dev, m.logits, V, m.params_dev, static_cast<int64_t>(n), m.stream);
    PCM_CUDA(cudaMemcpyAsync(ids + r0, m.ids_dev, n * 4, cudaMemcpyDeviceToHost, m.stream));
    PCM_CUDA(cudaStreamSynchronize(m.stream));
  }
}

// ---- decode -------------------------------------------------------------------------------------------

void CudaMamba2Model::Impl::stage_decode_rows(std::span<const int32_t> slot_ids, std::span<const int32_t> tokens,
                                              size_t r0, int64_t Bn, int64_t Bp) {
  const int64_t maxB = options.max_decode_batch;
  for (int64_t b = 0; b < Bp; ++b) {  // padding rows: slot -1 (no state change)
    const bool real = b < Bn;
    host_ints[b] = real ? tokens[r0 + b] : 0;
    host_ints[maxB + b] = real ? slot_ids[r0 + b] : -1;
    host_ints[2 * maxB + b] = real ? conv_pos(slot_ids[r0 + b]) : 0;
  }
  // one copy; the unused rows between the three parts go along unread
  PCM_CUDA(cudaMemcpyAsync(ints, host_ints, static_cast<size_t>(2 * maxB + Bp) * 4, cudaMemcpyHostToDevice, stream));
}

namespace {

void check_decode_args(CudaMamba2Model::Impl& m, std::span<const int32_t> slots, std::span<const int32_t> tokens) {
  PCM_CHECK(slots.size() == tokens.size(), "decode: {} slots for {} tokens", slots.size(), tokens.size());
  std::fill(m.seen_scratch.begin(), m.seen_scratch.end(), 0);
  for (size_t b = 0; b < slots.size(); ++b) {
    m.check_slot(slots[b]);
    PCM_CHECK(!m.seen_scratch[static_cast<size_t>(slots[b])], "decode: slot {} appears twice in one step", slots[b]);
    m.seen_scratch[static_cast<size_t>(slots[b])] = 1;
    PCM_CHECK(tokens[b] >= 0 && tokens[b] < m.config.vocab_size,
              "token id {} at batch row {} is outside the vocabulary (size {})", tokens[b], b, m.config.vocab_size);
  }
}

}  // namespace

void CudaMamba2Model::decode(std::span<const int32_t> slots, std::span<const int32_t> tokens,
                             std::span<const SamplingParams> params, int32_t* ids) {
  Impl& m = *impl_;
  check_decode_args(m, slots, tokens);
  PCM_CHECK(params.size() == slots.size(), "decode: {} parameter sets for {} slots", params.size(), slots.size());
  const int64_t V = m.config.vocab_size, maxB = m.options.max_decode_batch;
  for (size_t r0 = 0; r0 < slots.size(); r0 += static_cast<size_t>(maxB)) {
    const int64_t Bn = std::min<int64_t>(maxB, static_cast<int64_t>(slots.size() - r0));
    const int64_t Bp = m.options.cuda_graphs ? m.bucket(Bn) : Bn;
    m.stage_decode_rows(slots, tokens, r0, Bn, Bp);
    for (int64_t b = 0; b < Bp; ++b)  // padding rows: greedy
      m.params_host[b] = b < Bn ? to_device(params[r0 + b], m.slot_draws[static_cast<size_t>(slots[r0 + b])]++, V)
                                : cuda::DeviceSampling{0.0f, 1.0f, 0.0f, 0, 0, 0};
    PCM_CUDA(cudaMemcpyAsync(m.params_dev, m.params_host, static_cast<size_t>(Bp) * sizeof(cuda::DeviceSampling),
                             cudaMemcpyHostToDevice, m.stream));
    if (m.options.cuda_graphs && (m.options.decode_persistent_graph || !m.persistent_step(Bp))) {
      auto it = m.graphs.find(Bp);
      if (it == m.graphs.end()) {
        cudaGraph_t graph;
        PCM_CUDA(cudaStreamBeginCapture(m.stream, cudaStreamCaptureModeThreadLocal));
        try {
          m.decode_step(Bp);
          cuda::sample(m.ids_dev, m.logits, V, m.params_dev, Bp, m.stream);
        } catch (...) {
          cudaStreamEndCapture(m.stream, &graph);
          throw;
        }
        PCM_CUDA(cudaStreamEndCapture(m.stream, &graph));
        cudaGraphExec_t exec;
        // The split in_proj's nodes keep their streams' priorities (captured per node, used only with this flag).
        PCM_CUDA(cudaGraphInstantiate(&exec, graph, cudaGraphInstantiateFlagUseNodePriority));
        cudaGraphDestroy(graph);
        it = m.graphs.emplace(Bp, exec).first;
      }
      PCM_CUDA(cudaGraphLaunch(it->second, m.stream));
    } else {
      m.decode_step(Bp);
      cuda::sample(m.ids_dev, m.logits, V, m.params_dev, Bp, m.stream);
    }
    PCM_CUDA(cudaMemcpyAsync(m.ids_host, m.ids_dev, static_cast<size_t>(Bn) * 4, cudaMemcpyDeviceToHost, m.stream));
    PCM_CUDA(cudaStreamSynchronize(m.stream));
    std::memcpy(ids + r0, m.ids_host, static_cast<size_t>(Bn) * 4);
    for (int64_t b = 0; b < Bn; ++b) ++m.slot_tokens[static_cast<size_t>(slots[r0 + b])];
  }
}

void CudaMamba2Model::decode_logits(std::span<const int32_t> slots, std::span<const int32_t> tokens, float* logits) {
  Impl& m = *impl_;
  check_decode_args(m, slots, tokens);
  const int64_t V = m.config.vocab_size, maxB = m.options.max_decode_batch;
  for (size_t r0 = 0; r0 < slots.size(); r0 += static_cast<size_t>(maxB)) {
    const int64_t Bn = std::min<int64_t>(maxB, static_cast<int64_t>(slots.size() - r0));
    m.stage_decode_rows(slots, tokens, r0, Bn, Bn);
    m.decode_step(Bn);
    PCM_CUDA(cudaMemcpyAsync(logits + r0 * static_cast<size_t>(V), m.logits, static_cast<size_t>(Bn * V) * 4,
                             cudaMemcpyDeviceToHost, m.stream));
    PCM_CUDA(cudaStreamSynchronize(m.stream));
    for (int64_t b = 0; b < Bn; ++b) ++m.slot_tokens[static_cast<size_t>(slots[r0 + b])];
  }
}

size_t CudaMamba2Model::device_bytes_in_use() const {
  size_t free_b = 0, total_b = 0;
  PCM_CUDA(cudaMemGetInfo(&free_b, &total_b));
  return total_b - free_b;
}

void CudaMamba2Model::synchronize() { PCM_CUDA(cudaStreamSynchronize(impl_->stream)); }

}  // namespace pcm
